//! Two `floodgate serve --backend redis://…` processes sharing one real
//! `redis-server` enforce one global limit.
//!
//! Tolerance: 0. Each decision is one Lua script run, and Redis runs
//! scripts one at a time, so the two processes' requests are serialised
//! on the shared counter: exactly L of them are admitted, whichever
//! process they went through. (Fixed window per day, so the window does
//! not roll during the test.)

#[path = "support/process.rs"]
mod process;
#[path = "../../store/tests/support/mod.rs"]
mod support;

use process::{floodgate, http, http_get, serve_with, Process};
use std::path::Path;
use support::RedisServer;

/// The shared limit.
const LIMIT: u64 = 40;
/// Requests sent in all, alternating between the two processes.
const REQUESTS: u64 = 200;

const CONFIG: &str = "domain: shared\ndescriptors:\n  - key: user\n    rate_limit: {name: per_user, unit: day, requests_per_unit: 40}\n";

/// A `floodgate serve` of `config` with counters in `redis`, on loopback
/// ports it picks; ready once `/v1/health` answers 200.
fn serve(config: &Path, redis: &str, dir: &Path, name: &str) -> (Process, String) {
    let mut command = floodgate();
    command
        .args(["serve", "--config"])
        .arg(config)
        .args(["--backend", redis, "--failure-policy", "fail_closed"])
        .args(["--redis-command-timeout", "1s"]);
    let (mut server, addr) = serve_with(command, dir, name);
    server.wait_for(&addr, "/v1/health", |status, _| status == 200);
    (server, addr)
}

#[test]
fn two_processes_sharing_one_redis_enforce_one_global_limit() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("floodgate-redis-shared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let config = dir.join("limits.yaml");
    std::fs::write(&config, CONFIG).expect("config");
    let a = serve(&config, &redis.url(), &dir, "a");
    let b = serve(&config, &redis.url(), &dir, "b");
    let body =
        r#"{"domain":"shared","descriptors":[{"entries":[{"key":"user","value":"alice"}]}]}"#;
    let (mut admitted, mut rejected) = ([0u64; 2], [0u64; 2]);
    for n in 0..REQUESTS {
        let index = (n % 2) as usize;
        let server = [&a, &b][index];
        let (status, text) = http(&server.1, "POST", "/v1/check", None, body)
            .unwrap_or_else(|| panic!("request {n}: no answer: {}", server.0.log()));
        match status {
            200 => admitted[index] += 1,
            429 => rejected[index] += 1,
            other => panic!("request {n}: status {other}: {text}\n{}", server.0.log()),
        }
    }
    assert_eq!(
        admitted[0] + admitted[1],
        LIMIT,
        "one global limit across both processes (a {admitted:?}, rejected {rejected:?})"
    );
    assert!(
        admitted[0] > 0 && admitted[1] > 0,
        "both served: {admitted:?}"
    );
    assert_eq!(rejected[0] + rejected[1], REQUESTS - LIMIT);
    // Neither instance ever fell back: every decision was Redis's.
    for server in [&a, &b] {
        let (_, state) = http_get(&server.1, "/v1/state").expect("state");
        let state: serde_json::Value = serde_json::from_str(&state).expect("state json");
        assert_eq!(state["store"]["backend"], "redis", "{state}");
        assert_eq!(state["store"]["healthy"], true, "{state}");
        assert_eq!(state["store"]["failure_policy"], "fail_closed", "{state}");
        let (_, metrics) = http_get(&server.1, "/metrics").expect("metrics");
        assert!(metrics.contains("floodgate_backend_up 1"), "{metrics}");
        assert!(
            metrics
                .contains("floodgate_backend_fallback_decisions_total{policy=\"fail_closed\"} 0"),
            "{metrics}"
        );
    }
}
