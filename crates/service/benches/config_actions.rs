//! What a config change costs, by the config's size in descriptors (1k, 8k,
//! 32k; a config holds at most `floodgate_limiter::limits::MAX_DESCRIPTORS`,
//! 32,768): validating and compiling it (`floodgate config check`), a dry
//! run of `apply_config` replacing the running config with it (validation,
//! compilation, the per-limit changes and the unified diff), the same
//! action applied (the swap and a new config version), and a one-limit
//! `set_limit` dry run on a service already running it (what an agent's
//! proposal costs).
//!
//! Each should grow linearly with the descriptors (issue 15 item 5: the diff
//! was quadratic, 8k descriptors took 2.7 s and 60k more than 120 s).
//!
//! Run: `cargo bench -p floodgate-service --bench config_actions`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use floodgate_contract::actions::ActionRequest;
use floodgate_limiter::config::{self, ConfigSource};
use floodgate_service::clock::ManualClock;
use floodgate_service::control::Control;
use floodgate_service::engine::EngineOptions;
use floodgate_service::ServiceParts;
use floodgate_store::MemoryStore;
use serde_json::json;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600 * 1_000_000_000;
/// The config a service starts with before a whole config replaces it.
const SMALL: &str = "domain: api\ndescriptors:\n- key: tenant\n  rate_limit: {unit: second, requests_per_unit: 10}\n";
const SIZES: [usize; 3] = [1_000, 8_000, 32_000];

/// A config of `count` descriptors: tenants with their own limit, every
/// tenth with two nested paths (so the tree has depth too).
fn config_text(count: usize) -> String {
    let mut text = String::from("domain: big\ndescriptors:\n");
    let mut made = 0;
    let mut tenant = 0;
    while made < count {
        text.push_str(&format!(
            "- key: tenant\n  value: t{tenant}\n  rate_limit: {{unit: second, requests_per_unit: {}}}\n",
            tenant + 1
        ));
        made += 1;
        if tenant % 10 == 0 && made + 2 <= count {
            text.push_str("  descriptors:\n");
            for path in ["/upload", "/search"] {
                text.push_str(&format!(
                    "  - key: path\n    value: {path}\n    rate_limits:\n    - {{unit: minute, requests_per_unit: 60}}\n    - {{unit: hour, requests_per_unit: 1000, algorithm: sliding_window}}\n"
                ));
            }
            made += 2;
        }
        tenant += 1;
    }
    text
}

fn service(text: &str) -> Arc<Control<MemoryStore>> {
    let table = config::load(&[ConfigSource::new("bench.yaml", text)]).expect("valid config");
    floodgate_service::assemble(ServiceParts {
        table,
        store: MemoryStore::new(10_000),
        clock: Arc::new(ManualClock::at_ns(T0)),
        options: EngineOptions::default(),
        access: floodgate_service::auth::Access::open(),
        control: floodgate_service::control::ControlOptions::default(),
        traffic_capacity: 0,
    })
    .control
}

fn request(params: serde_json::Value, dry_run: bool) -> ActionRequest {
    ActionRequest {
        params,
        dry_run,
        reason: "bench".to_string(),
        actor: "bench".to_string(),
        expect_config_version: None,
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("config");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for count in SIZES {
        let text = config_text(count);
        let parsed = config::parse_file("bench.yaml", &text).expect("valid");
        let descriptors: usize = parsed[0]
            .descriptors
            .iter()
            .map(|d| 1 + d.descriptors.len())
            .sum();
        assert_eq!(descriptors, count, "the generated config's size");

        group.bench_function(format!("check/{count}"), |b| {
            b.iter(|| config::load(&[ConfigSource::new("bench.yaml", black_box(&text))]))
        });

        let small = service(SMALL);
        let params = json!({ "yaml": text });
        group.bench_function(format!("dry_run_apply_config/{count}"), |b| {
            b.iter(|| {
                let result = small
                    .run_action("apply_config", request(params.clone(), true), "bench")
                    .expect("dry run");
                assert!(result.diff.is_some());
                result
            })
        });

        group.bench_function(format!("apply_config/{count}"), |b| {
            b.iter_batched(
                || service(SMALL),
                |fresh| {
                    let result = fresh
                        .run_action("apply_config", request(params.clone(), false), "bench")
                        .expect("applied");
                    assert!(result.applied);
                    (result, fresh)
                },
                BatchSize::PerIteration,
            )
        });

        let running = service(&text);
        let set_limit = json!({"domain": "big", "limit": "big.tenant_t7", "requests_per_unit": 5});
        group.bench_function(format!("dry_run_set_limit/{count}"), |b| {
            b.iter(|| {
                running
                    .run_action("set_limit", request(set_limit.clone(), true), "bench")
                    .expect("dry run")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
