//! The metrics catalog: every metric Floodgate exports, defined once.
//!
//! The service renders `/metrics` from these definitions, and
//! `floodgate catalog --write` generates `docs/catalog/metrics.md` from them.
//! A test fails when `/metrics` shows a metric that is not here, or when the
//! committed doc drifts from this file.

use serde::Serialize;

/// The Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    /// The name used on the `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One metric: its name, type, unit, labels and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MetricDef {
    /// The full Prometheus name (counters end in `_total`).
    pub name: &'static str,
    pub kind: MetricKind,
    /// The base unit (`seconds`, `bytes`, `hits`, `keys`, …).
    pub unit: &'static str,
    /// Label names. Values are always bounded: config-defined names or small
    /// enumerations, never raw request data (except `descriptor`, which only
    /// limits with `detailed_metric: true` set, and which is capped).
    pub labels: &'static [&'static str],
    /// What it means, in one or two sentences (the `# HELP` text).
    pub help: &'static str,
}

/// Label: the rate-limit domain (from the config).
pub const LABEL_DOMAIN: &str = "domain";
/// Label: the limit's name (from the config).
pub const LABEL_LIMIT: &str = "limit";
/// Label: the API a request came through (`grpc`, `http`).
pub const LABEL_API: &str = "api";

macro_rules! metric {
    ($ident:ident, $name:literal, $kind:ident, $unit:literal, [$($label:expr),*], $help:literal) => {
        #[doc = $help]
        pub const $ident: MetricDef = MetricDef {
            name: $name,
            kind: MetricKind::$kind,
            unit: $unit,
            labels: &[$($label),*],
            help: $help,
        };
    };
}

metric!(
    HITS,
    "floodgate_rate_limit_hits_total",
    Counter,
    "hits",
    [LABEL_DOMAIN, LABEL_LIMIT],
    "Hits requested against a limit (the sum of hits_addend over matched descriptors)."
);
metric!(
    OVER_LIMIT,
    "floodgate_rate_limit_over_limit_total",
    Counter,
    "hits",
    [LABEL_DOMAIN, LABEL_LIMIT],
    "Hits a limit rejected (the request was answered OVER_LIMIT)."
);
metric!(
    NEAR_LIMIT,
    "floodgate_rate_limit_near_limit_total",
    Counter,
    "hits",
    [LABEL_DOMAIN, LABEL_LIMIT],
    "Admitted hits that left the limit at 80% or more of its quota used."
);
metric!(
    WITHIN_LIMIT,
    "floodgate_rate_limit_within_limit_total",
    Counter,
    "hits",
    [LABEL_DOMAIN, LABEL_LIMIT],
    "Hits a limit admitted."
);
metric!(
    SHADOW_OVER_LIMIT,
    "floodgate_rate_limit_shadow_over_limit_total",
    Counter,
    "hits",
    [LABEL_DOMAIN, LABEL_LIMIT],
    "Hits a shadow-mode limit would have rejected; they were admitted and reported OK."
);
metric!(DETAILED_HITS, "floodgate_rate_limit_detailed_hits_total", Counter, "hits", [LABEL_DOMAIN, LABEL_LIMIT, "descriptor", "outcome"],
    "Per-descriptor-value hits, only for limits with detailed_metric: true; at most 100 values per limit, the rest under descriptor=\"__other__\". outcome is within_limit or over_limit.");
metric!(
    REQUESTS,
    "floodgate_requests_total",
    Counter,
    "requests",
    [LABEL_API, "code"],
    "Rate-limit decisions answered, by API and overall code (ok, over_limit, error)."
);
metric!(
    REQUEST_DURATION,
    "floodgate_request_duration_seconds",
    Histogram,
    "seconds",
    [LABEL_API],
    "Time from a decoded request to its encoded answer, by API."
);
metric!(UNMATCHED, "floodgate_unmatched_descriptors_total", Counter, "descriptors", ["reason"],
    "Request descriptors answered OK because nothing limits them: reason is unknown_domain, no_match or unlimited.");
metric!(ERRORS, "floodgate_errors_total", Counter, "errors", [LABEL_API, "kind"],
    "Requests refused or failed, by API and kind (invalid_argument, too_large, unimplemented, timeout, store, internal).");
metric!(
    STORE_KEYS,
    "floodgate_store_keys",
    Gauge,
    "keys",
    ["backend"],
    "Counter keys held by the store."
);
metric!(
    STORE_CAPACITY,
    "floodgate_store_capacity_keys",
    Gauge,
    "keys",
    ["backend"],
    "The most keys the store will hold before it evicts."
);
metric!(STORE_EVICTIONS, "floodgate_store_evictions_total", Counter, "keys", ["backend", "reason"],
    "Keys the store dropped to stay within capacity: reason expired (stale first) or lru (least recently used).");
metric!(BACKEND_DURATION, "floodgate_backend_duration_seconds", Histogram, "seconds", [],
    "Round trips of decisions sent to the counter backend (Redis), errors and timeouts included; same buckets as floodgate_request_duration_seconds. Empty with the memory store.");
metric!(BACKEND_ERRORS, "floodgate_backend_errors_total", Counter, "errors", ["kind"],
    "Decisions the counter backend (Redis) failed, by kind: unavailable, timeout (both transient: the failure policy decides) or backend (answered 503).");
metric!(BACKEND_UP, "floodgate_backend_up", Gauge, "bool", [],
    "1 while the counter backend (Redis) is up, 0 while down or degraded (the failure policy decides); absent with the memory store.");
metric!(BACKEND_FALLBACK_DECISIONS, "floodgate_backend_fallback_decisions_total", Counter, "requests", ["policy"],
    "Requests decided by the failure policy (fail_open, fail_closed, local_fallback) because the counter backend was unhealthy.");
metric!(TRAFFIC_RECORDED, "floodgate_traffic_recorded_total", Counter, "requests", [],
    "Check requests (gRPC and HTTP) the traffic recorder kept in its ring, for GET /v1/traffic and dry-run replays; the ring holds the most recent ones.");
metric!(TRAFFIC_DROPPED, "floodgate_traffic_dropped_total", Counter, "requests", [],
    "Check requests the traffic recorder did not keep because their slot was busy (it never waits); a replay misses them.");
metric!(TRAFFIC_BYTES, "floodgate_traffic_bytes", Gauge, "bytes", [],
    "Bytes the traffic recorder's records take now (each request with its heap); never more than its budget (16 MiB).");
metric!(TRAFFIC_NOT_RECORDED, "floodgate_traffic_not_recorded_total", Counter, "requests", ["reason"],
    "Check requests the traffic recorder counted but did not keep: too_large (over the per-request cap), over_budget (would have crossed the byte budget), unknown_domain (a domain the config does not define).");
metric!(ACTIONS_REFUSED, "floodgate_actions_refused_total", Counter, "actions", ["reason"],
    "Actions taken over the API refused with nothing changed: overloaded (MAX_PENDING_ACTIONS already running or waiting, or their bodies past MAX_PENDING_ACTION_BYTES, 503), queue_timeout (no turn within ACTION_TIMEOUT, 503) or planning_timeout (planned past ACTION_TIMEOUT, 504).");
metric!(
    CONFIG_LIMITS,
    "floodgate_config_limits",
    Gauge,
    "limits",
    [],
    "Limits in the active configuration."
);
metric!(
    BUILD_INFO,
    "floodgate_build_info",
    Gauge,
    "info",
    ["version"],
    "Always 1; the label carries the build version."
);
metric!(
    START_TIME,
    "floodgate_process_start_time_seconds",
    Gauge,
    "seconds",
    [],
    "When the service started, in seconds since the Unix epoch."
);

metric!(
    CONNECTIONS_OPEN,
    "floodgate_connections_open",
    Gauge,
    "connections",
    ["listener"],
    "Connections open now on a listener (`grpc`, `http`)."
);
metric!(
    CONNECTIONS_ACCEPTED,
    "floodgate_connections_accepted_total",
    Counter,
    "connections",
    ["listener"],
    "Connections a listener accepted."
);
metric!(
    ACCEPT_ERRORS,
    "floodgate_accept_errors_total",
    Counter,
    "errors",
    ["listener"],
    "Accept calls that failed (out of file descriptors, ...); each pauses the listener briefly (doubling up to 1 s) instead of spinning."
);
metric!(
    CONNECTIONS_CLOSED,
    "floodgate_connections_closed_total",
    Counter,
    "connections",
    ["listener", "reason"],
    "Connections the service closed itself: `shed_idle` (the longest-idle one, to make room at the cap), `refused_busy` (at the cap with every connection busy), `handshake_timeout`, `idle_timeout`, `body_timeout` (requests answered 408)."
);

/// Every metric, in the order `/metrics` and the docs list them.
pub const CATALOG: &[MetricDef] = &[
    HITS,
    OVER_LIMIT,
    NEAR_LIMIT,
    WITHIN_LIMIT,
    SHADOW_OVER_LIMIT,
    DETAILED_HITS,
    REQUESTS,
    REQUEST_DURATION,
    UNMATCHED,
    ERRORS,
    STORE_KEYS,
    STORE_CAPACITY,
    STORE_EVICTIONS,
    BACKEND_DURATION,
    BACKEND_ERRORS,
    BACKEND_UP,
    BACKEND_FALLBACK_DECISIONS,
    TRAFFIC_RECORDED,
    TRAFFIC_DROPPED,
    TRAFFIC_BYTES,
    TRAFFIC_NOT_RECORDED,
    ACTIONS_REFUSED,
    CONFIG_LIMITS,
    CONNECTIONS_OPEN,
    CONNECTIONS_ACCEPTED,
    ACCEPT_ERRORS,
    CONNECTIONS_CLOSED,
    BUILD_INFO,
    START_TIME,
];

/// The upper bounds of [`REQUEST_DURATION`]'s buckets, in seconds.
pub const DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 1.0,
];

/// Looks a metric up by its exposed series name (histogram series
/// `_bucket`, `_sum` and `_count` resolve to their histogram).
pub fn find(series: &str) -> Option<&'static MetricDef> {
    CATALOG.iter().find(|def| {
        def.name == series
            || (def.kind == MetricKind::Histogram
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| series.strip_suffix(suffix) == Some(def.name)))
    })
}

/// Renders the catalog as the Markdown page `docs/catalog/metrics.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Metrics catalog\n\n\
         Generated from `crates/contract/src/metrics.rs` by `floodgate catalog --write`; \
         do not edit by hand (a test fails when this file drifts).\n\n\
         | name | type | unit | labels | meaning |\n|---|---|---|---|---|\n",
    );
    for def in CATALOG {
        let labels = if def.labels.is_empty() {
            "—".to_string()
        } else {
            def.labels
                .iter()
                .map(|label| format!("`{label}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            def.name,
            def.kind.as_str(),
            def.unit,
            labels,
            def.help.replace('|', "\\|")
        ));
    }
    out.push_str("\nHistogram buckets of `floodgate_request_duration_seconds` (seconds): ");
    let buckets: Vec<String> = DURATION_BUCKETS_SECONDS
        .iter()
        .map(|b| b.to_string())
        .collect();
    out.push_str(&buckets.join(", "));
    out.push_str(".\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        for (index, def) in CATALOG.iter().enumerate() {
            assert!(def.name.starts_with("floodgate_"), "{}", def.name);
            assert_eq!(
                def.kind == MetricKind::Counter,
                def.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                def.name
            );
            assert!(
                CATALOG[index + 1..]
                    .iter()
                    .all(|other| other.name != def.name),
                "{} listed twice",
                def.name
            );
        }
    }

    #[test]
    fn histogram_series_resolve() {
        assert_eq!(
            find("floodgate_request_duration_seconds_bucket").map(|d| d.name),
            Some(REQUEST_DURATION.name)
        );
        assert!(find("floodgate_hits_bucket").is_none());
    }
}
