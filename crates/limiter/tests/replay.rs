//! Tests of the replay (`replay.rs`): exact counts on hand-built windows,
//! and properties over random windows.

use floodgate_limiter::config::{load, ConfigSource};
use floodgate_limiter::replay::{replay, Descriptor, KeyFlips, LimitFlips, Request, TOP_KEYS};
use floodgate_limiter::{Cost, Nanos, Table, NANOS_PER_SECOND};
use proptest::prelude::*;

const SEC: Nanos = NANOS_PER_SECOND;
/// A whole second, so windows start with the test.
const T0: Nanos = 1_767_225_600 * SEC;

fn table(text: &str) -> Table {
    match load(&[ConfigSource::new("t.yaml", text)]) {
        Ok(table) => table,
        Err(error) => panic!("{error}"),
    }
}

fn flips(domain: &str, limit: &str, requests: u64, to_limited: u64, to_allowed: u64) -> LimitFlips {
    LimitFlips {
        domain: domain.to_string(),
        limit: limit.to_string(),
        requests,
        allowed_to_limited: to_limited,
        limited_to_allowed: to_allowed,
    }
}

fn key(key: &str, to_limited: u64, to_allowed: u64) -> KeyFlips {
    KeyFlips {
        key: key.to_string(),
        allowed_to_limited: to_limited,
        limited_to_allowed: to_allowed,
    }
}

const TENANTS: &str = "
domain: api
descriptors:
  - key: tenant
    rate_limit: {name: per_tenant, unit: second, requests_per_unit: 5}
  - key: ip
    rate_limit: {name: per_ip, unit: minute, requests_per_unit: 100}
";

#[test]
fn lowering_a_limit_flips_exactly_the_requests_over_the_new_quota() {
    let before = table(TENANTS);
    let after = table(&TENANTS.replace("requests_per_unit: 5}", "requests_per_unit: 2}"));
    let mut window = Vec::new();
    // Second 0: tenant a sends 6 (5 allowed before, 2 after), b sends 3
    // (3 before, 2 after). Second 1: a sends 1 (allowed either way).
    for _ in 0..6 {
        window.push(Request::new(T0, "api", &[&[("tenant", "a")]]));
    }
    for _ in 0..3 {
        window.push(Request::new(T0 + SEC / 2, "api", &[&[("tenant", "b")]]));
    }
    window.push(Request::new(T0 + SEC, "api", &[&[("tenant", "a")]]));
    // Unmatched and other-limit traffic flips nothing.
    window.push(Request::new(T0, "api", &[&[("ip", "10.0.0.1")]]));
    window.push(Request::new(T0, "other", &[&[("tenant", "a")]]));

    let report = replay(&before, &after, &window);
    assert_eq!(report.requests, 12);
    assert_eq!(report.allowed_before, 5 + 3 + 1 + 2);
    assert_eq!(report.allowed_after, 2 + 2 + 1 + 2);
    assert_eq!(report.flips, [flips("api", "per_tenant", 10, 4, 0)]);
    assert_eq!(
        report.top_keys,
        [
            key("api|tenant=a#per_tenant", 3, 0),
            key("api|tenant=b#per_tenant", 1, 0),
        ]
    );

    // The other way round: raising it flips the same requests back.
    let back = replay(&after, &before, &window);
    assert_eq!(back.allowed_before, report.allowed_after);
    assert_eq!(back.allowed_after, report.allowed_before);
    assert_eq!(back.flips, [flips("api", "per_tenant", 10, 0, 4)]);
}

#[test]
fn shadow_limits_never_limit() {
    let before = table(TENANTS);
    let shadowed = table(&TENANTS.replace("  - key: ip\n", "  - key: ip\n    shadow_mode: true\n"));
    let lowered = table(
        &TENANTS
            .replace("requests_per_unit: 100", "requests_per_unit: 1")
            .replace("  - key: ip\n", "  - key: ip\n    shadow_mode: true\n"),
    );
    let window: Vec<Request> = (0..10)
        .map(|i| Request::new(T0 + i, "api", &[&[("ip", "x")]]))
        .collect();
    let report = replay(&before, &lowered, &window);
    assert_eq!(report.allowed_before, 10);
    assert_eq!(
        report.allowed_after, 10,
        "a shadow limit of 1 limits nothing"
    );
    assert!(report.flips.is_empty());
    // Taking a limit out of shadow mode makes it count.
    let enforced = replay(
        &shadowed,
        &table(&TENANTS.replace("requests_per_unit: 100", "requests_per_unit: 4")),
        &window,
    );
    assert_eq!(enforced.allowed_before, 10);
    assert_eq!(enforced.allowed_after, 4);
    assert_eq!(enforced.flips, [flips("api", "per_ip", 10, 6, 0)]);
}

/// All or nothing: a request the lowered limit now stops consumes nothing
/// from its other limit, so a later request that other limit stopped gets
/// through. Lowering a limit can turn limited into allowed.
#[test]
fn lowering_one_limit_can_free_another() {
    let config = "
domain: api
descriptors:
  - key: tenant
    rate_limit: {name: per_tenant, unit: second, requests_per_unit: 10}
  - key: ip
    rate_limit: {name: per_ip, unit: second, requests_per_unit: 2}
";
    let before = table(config);
    let after = table(&config.replace("requests_per_unit: 10", "requests_per_unit: 1"));
    let window = [
        Request::new(T0, "api", &[&[("tenant", "a")], &[("ip", "x")]]),
        Request::new(T0, "api", &[&[("tenant", "a")], &[("ip", "x")]]),
        Request::new(T0, "api", &[&[("tenant", "b")], &[("ip", "x")]]),
    ];
    let report = replay(&before, &after, &window);
    assert_eq!(report.allowed_before, 2);
    assert_eq!(report.allowed_after, 2);
    assert_eq!(
        report.flips,
        [
            flips("api", "per_ip", 3, 0, 1),
            flips("api", "per_tenant", 3, 1, 0),
        ]
    );
    assert_eq!(
        report.top_keys,
        [
            key("api|ip=x#per_ip", 0, 1),
            key("api|tenant=a#per_tenant", 1, 0),
        ]
    );
}

#[test]
fn replaces_overrides_and_refunds_are_decided_like_the_service() {
    let config = "
domain: api
descriptors:
  - key: generic
    rate_limit: {name: generic, unit: hour, requests_per_unit: 1}
  - key: premium
    rate_limit:
      name: premium
      unit: hour
      requests_per_unit: 3
      replaces: [{name: generic}]
";
    let current = table(config);
    // Both descriptors: premium replaces generic, so 3 are allowed, not 1.
    let both: &[&[(&str, &str)]] = &[&[("generic", "g")], &[("premium", "p")]];
    let mut window: Vec<Request> = (0..4).map(|i| Request::new(T0 + i, "api", both)).collect();
    // A refund gives one back.
    let mut refund = Request::new(T0 + 10, "api", &[&[("premium", "p")]]);
    refund.descriptors[0] = refund.descriptors[0].clone().with_cost(Cost::Refund(1));
    window.push(refund);
    window.push(Request::new(T0 + 11, "api", &[&[("premium", "p")]]));
    // An override limit of 1 per hour: the second is limited under both.
    let mut overridden = Request::new(T0, "api", &[&[("anything", "v")]]);
    overridden.descriptors[0].limit_override = Some(floodgate_limiter::Rate::new(
        floodgate_limiter::Algorithm::FixedWindow,
        1,
        floodgate_limiter::Unit::Hour,
    ));
    window.push(overridden.clone());
    window.push(overridden);
    let report = replay(&current, &current, &window);
    assert_eq!(report.requests, 8);
    // 3 of the 4 pairs, the refund, the request after it, one override.
    assert_eq!(report.allowed_before, 3 + 1 + 1 + 1);
    assert_eq!(report.allowed_after, report.allowed_before);
    assert!(report.flips.is_empty() && report.top_keys.is_empty());
}

#[test]
fn top_keys_are_bounded() {
    let before = table(TENANTS);
    let after = table(&TENANTS.replace("requests_per_unit: 5}", "requests_per_unit: 1}"));
    let mut window = Vec::new();
    for tenant in 0..(TOP_KEYS as u64 + 5) {
        for _ in 0..=tenant.min(4) + 1 {
            window.push(Request {
                time: T0,
                domain: "api".to_string(),
                descriptors: vec![Descriptor::new(&[("tenant", &format!("t{tenant:02}"))])],
            });
        }
    }
    let report = replay(&before, &after, &window);
    assert_eq!(report.top_keys.len(), TOP_KEYS);
    // Most flips first, then by key.
    // t00 … t02 send 2 … 4 (1 … 3 flips); t03 and later 5 or 6 (4 flips).
    assert_eq!(report.top_keys[0], key("api|tenant=t03#per_tenant", 4, 0));
    let totals: Vec<u64> = report
        .top_keys
        .iter()
        .map(|k| k.allowed_to_limited)
        .collect();
    assert!(
        totals.windows(2).all(|pair| pair[0] >= pair[1]),
        "{totals:?}"
    );
}

// ---- properties ------------------------------------------------------------

const ALGORITHMS: &str = "
domain: api
descriptors:
  - key: a
    rate_limit: {name: fixed, unit: second, requests_per_unit: RPU_A}
  - key: b
    rate_limit: {name: bucket, algorithm: token_bucket, burst: 4, unit: second, requests_per_unit: RPU_B}
  - key: c
    rate_limit: {name: sliding, algorithm: sliding_window, unit: second, requests_per_unit: RPU_C}
  - key: d
    rate_limit: {name: leases, algorithm: concurrency, unit: second, requests_per_unit: RPU_D}
  - key: e
    shadow_mode: true
    rate_limit: {name: shadow, unit: second, requests_per_unit: 1}
";

fn config(quotas: [u64; 4]) -> Table {
    let mut text = ALGORITHMS.to_string();
    for (name, quota) in ["RPU_A", "RPU_B", "RPU_C", "RPU_D"].iter().zip(quotas) {
        text = text.replace(name, &quota.to_string());
    }
    table(&text)
}

/// A random window: requests of one to three descriptors over keys a–e
/// and values 0–2, costs 0–3 (some refunds), at increasing times (with
/// occasional steps back).
fn window() -> impl Strategy<Value = Vec<Request>> {
    let descriptor = (0usize..5, 0u8..3, 0u64..4, prop::bool::weighted(0.1)).prop_map(
        |(key, value, hits, refund)| {
            let key = ["a", "b", "c", "d", "e"][key];
            let value = value.to_string();
            let cost = if refund {
                Cost::Refund(hits)
            } else {
                Cost::Consume(hits)
            };
            Descriptor::new(&[(key, &value)]).with_cost(cost)
        },
    );
    let request = (
        prop::collection::vec(descriptor, 1..4),
        0u64..400,
        prop::bool::weighted(0.05),
    );
    prop::collection::vec(request, 0..120).prop_map(|requests| {
        let mut time = T0;
        requests
            .into_iter()
            .map(|(descriptors, step_ms, back)| {
                time = if back {
                    time.saturating_sub(step_ms * 1_000_000)
                } else {
                    time + step_ms * 1_000_000
                };
                Request {
                    time,
                    domain: "api".to_string(),
                    descriptors,
                }
            })
            .collect()
    })
}

/// One hit per request, one descriptor on the fixed-window limit.
fn unit_window() -> impl Strategy<Value = Vec<Request>> {
    prop::collection::vec((0u8..4, 0u64..300), 0..200).prop_map(|requests| {
        let mut time = T0;
        requests
            .into_iter()
            .map(|(value, step_ms)| {
                time += step_ms * 1_000_000;
                Request::new(time, "api", &[&[("a", &value.to_string())]])
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The same config decides every request the same way.
    #[test]
    fn same_config_flips_nothing(quotas in prop::array::uniform4(1u64..6), window in window()) {
        let current = config(quotas);
        let again = config(quotas);
        let report = replay(&current, &again, &window);
        prop_assert_eq!(report.requests, window.len() as u64);
        prop_assert_eq!(report.allowed_before, report.allowed_after);
        prop_assert!(report.flips.is_empty(), "{:?}", report.flips);
        prop_assert!(report.top_keys.is_empty());
    }

    /// Counts add up: allowed counts differ by exactly the net flips, and
    /// every flipped request is attributed to at least one limit.
    #[test]
    fn counts_are_consistent(
        quotas in prop::array::uniform4(1u64..6),
        other in prop::array::uniform4(1u64..6),
        window in window(),
    ) {
        let report = replay(&config(quotas), &config(other), &window);
        prop_assert!(report.allowed_before <= report.requests);
        prop_assert!(report.allowed_after <= report.requests);
        let to_limited: u64 = report.flips.iter().map(|f| f.allowed_to_limited).sum();
        let to_allowed: u64 = report.flips.iter().map(|f| f.limited_to_allowed).sum();
        // Each flipped request counts under at least one limit (no
        // overrides here), so the net change is bounded by the tallies.
        prop_assert!(report.allowed_before.saturating_sub(report.allowed_after) <= to_limited);
        prop_assert!(report.allowed_after.saturating_sub(report.allowed_before) <= to_allowed);
        for flip in &report.flips {
            prop_assert!(flip.allowed_to_limited + flip.limited_to_allowed <= flip.requests);
        }
    }

    /// Lowering a fixed-window limit, with one hit per request and one
    /// limit per request, never turns a limited request into an allowed
    /// one, and flips exactly the difference.
    #[test]
    fn lowering_a_limit_never_allows_what_was_limited(
        high in 1u64..8,
        lower_by in 0u64..8,
        window in unit_window(),
    ) {
        let low = high.saturating_sub(lower_by).max(1);
        let report = replay(&config([high, 1, 1, 1]), &config([low, 1, 1, 1]), &window);
        prop_assert!(report.allowed_after <= report.allowed_before);
        let to_allowed: u64 = report.flips.iter().map(|f| f.limited_to_allowed).sum();
        prop_assert_eq!(to_allowed, 0);
        let to_limited: u64 = report.flips.iter().map(|f| f.allowed_to_limited).sum();
        prop_assert_eq!(to_limited, report.allowed_before - report.allowed_after);
    }
}
