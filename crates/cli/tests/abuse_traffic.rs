//! The traffic recorder under hostile checks, against a real
//! `floodgate serve` process on loopback: large checks for an unknown
//! domain are counted, never kept; large checks for a known domain are
//! over the per-request cap; many mid-sized ones meet the byte budget. The
//! recorder's own figures (`GET /v1/traffic`, `/metrics`) stay within the
//! budget, and the process's RSS grows by less than the budget plus
//! 64 MiB (before the byte bound, such checks were kept whole: ~1.5 GB).

#[path = "support/process.rs"]
mod process;

use process::{http, http_get, rss_kib, scratch, serve_example};
use serde_json::Value;

/// Checks of each kind sent.
const LARGE_UNKNOWN: usize = 400;
const LARGE_KNOWN: usize = 200;
const MID_KNOWN: usize = 6_000;
/// The byte budget the service documents (`limits::DEFAULT_TRAFFIC_BYTES`).
const BUDGET: u64 = 16 << 20;

/// A check body for `domain` with `descriptors` descriptors of one entry
/// whose value is `value_bytes` long.
fn check(domain: &str, descriptors: usize, value_bytes: usize, salt: usize) -> String {
    let value = format!("{salt:08}{}", "x".repeat(value_bytes - 8));
    let descriptors: Vec<String> = (0..descriptors)
        .map(|_| format!(r#"{{"entries":[{{"key":"tenant","value":"{value}"}}]}}"#))
        .collect();
    format!(
        r#"{{"domain":"{domain}","descriptors":[{}]}}"#,
        descriptors.join(",")
    )
}

fn post(addr: &str, body: &str) {
    let (status, text) = http(addr, "POST", "/v1/check", None, body).expect("an answer");
    assert!(status == 200 || status == 429, "{status} {text}");
}

#[test]
fn hostile_checks_stay_within_the_recorders_byte_budget() {
    let (server, http_addr) = serve_example(&scratch(), &[]);
    let pid = server.child.id();
    // Warm the paths once, then take the baseline.
    post(&http_addr, &check("api", 1, 64, 0));
    let before = rss_kib(pid);

    for salt in 0..LARGE_UNKNOWN {
        post(
            &http_addr,
            &check("nobody-configured-this", 50, 4_000, salt),
        );
    }
    for salt in 0..LARGE_KNOWN {
        post(&http_addr, &check("api", 50, 4_000, salt));
    }
    for salt in 0..MID_KNOWN {
        post(&http_addr, &check("api", 1, 3_500, salt));
    }

    let (status, body) = http_get(&http_addr, "/v1/traffic?limit=1").expect("traffic");
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).expect("json");
    let window = &page["window"];
    let figure = |name: &str| {
        window[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {window}"))
    };
    assert_eq!(figure("budget_bytes"), BUDGET, "{window}");
    assert!(figure("bytes") <= BUDGET, "{window}");
    assert_eq!(figure("unknown_domain"), LARGE_UNKNOWN as u64, "{window}");
    assert_eq!(figure("too_large"), LARGE_KNOWN as u64, "{window}");
    assert!(figure("over_budget") > 0, "{window}");
    assert!(
        figure("held") > 0 && figure("held") < MID_KNOWN as u64,
        "{window}"
    );

    let (_, metrics) = http_get(&http_addr, "/metrics").expect("metrics");
    let unknown = format!(
        "floodgate_traffic_not_recorded_total{{reason=\"unknown_domain\"}} {LARGE_UNKNOWN}"
    );
    assert!(metrics.contains(&unknown), "{metrics}");
    assert!(metrics.contains("floodgate_traffic_bytes "), "{metrics}");

    let after = rss_kib(pid);
    let grown = after.saturating_sub(before);
    eprintln!("RSS {before} KiB before, {after} KiB after (+{grown} KiB)");
    assert!(
        grown < (BUDGET >> 10) + 64 * 1024,
        "RSS grew by {grown} KiB ({before} → {after})"
    );
}
