//! The service's metrics: lock-free counters on the hot path, rendered as
//! Prometheus text from the catalog in `floodgate-contract`.
//!
//! Per-limit counters live in a [`LimitStats`] shared by every config
//! snapshot that has a limit with the same (domain, name), so a config
//! change never resets them. The hot path reaches them by index, never by a
//! label lookup.

use crate::limits::MAX_DETAILED_SERIES_PER_LIMIT;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use floodgate_contract::metrics::{self as catalog, MetricDef, MetricKind};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counters of one limit.
#[derive(Debug, Default)]
pub struct LimitStats {
    pub hits: AtomicU64,
    pub over_limit: AtomicU64,
    pub near_limit: AtomicU64,
    pub within_limit: AtomicU64,
    pub shadow_over_limit: AtomicU64,
    /// Per-descriptor-value counters for `detailed_metric` limits:
    /// value → (within, over). Bounded by [`MAX_DETAILED_SERIES_PER_LIMIT`].
    detailed: Mutex<HashMap<String, [u64; 2]>>,
    /// The values this limit sees the most of (`/v1/state`'s
    /// `limits[].top_values`).
    top: Mutex<crate::topvalues::TopSketch>,
}

/// The label value that collects descriptor values past the bound.
pub const OTHER_DESCRIPTOR: &str = "__other__";

impl LimitStats {
    /// Counts one descriptor value's hits (weighted when sampled) and
    /// rejected hits in the top-values sketch.
    pub fn record_top(&self, entries: &[Entry], hits: u64, over: u64, now: u64) {
        self.top.lock().record(entries, hits, over, now);
    }

    /// The top values at `now`.
    pub fn top_values(&self, now: u64) -> floodgate_contract::state::TopValues {
        self.top.lock().snapshot(now)
    }

    /// Counts hits for one descriptor value of a `detailed_metric` limit.
    pub fn record_detailed(&self, value: &str, over: bool, hits: u64) {
        let mut detailed = self.detailed.lock();
        let slot = usize::from(over);
        if let Some(counts) = detailed.get_mut(value) {
            counts[slot] += hits;
            return;
        }
        let key = if detailed.len() < MAX_DETAILED_SERIES_PER_LIMIT {
            value.to_string()
        } else {
            OTHER_DESCRIPTOR.to_string()
        };
        detailed.entry(key).or_insert([0, 0])[slot] += hits;
    }
}

/// Per-limit counters by (domain, limit name), kept across config changes.
#[derive(Debug, Default)]
pub struct LimitStatsRegistry {
    by_name: Mutex<HashMap<(String, String), Arc<LimitStats>>>,
}

impl LimitStatsRegistry {
    /// The counters of a limit, created on first use.
    pub fn get(&self, domain: &str, name: &str) -> Arc<LimitStats> {
        self.by_name
            .lock()
            .entry((domain.to_string(), name.to_string()))
            .or_default()
            .clone()
    }

    fn sorted(&self) -> Vec<((String, String), Arc<LimitStats>)> {
        let mut all: Vec<_> = self
            .by_name
            .lock()
            .iter()
            .map(|(key, stats)| (key.clone(), stats.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// The API a request arrived through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Grpc = 0,
    Http = 1,
}

impl Api {
    const ALL: [Api; 2] = [Api::Grpc, Api::Http];

    pub const fn as_str(self) -> &'static str {
        match self {
            Api::Grpc => "grpc",
            Api::Http => "http",
        }
    }
}

/// The overall outcome of a request, for `floodgate_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok = 0,
    OverLimit = 1,
    Error = 2,
}

impl Outcome {
    const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::OverLimit, Outcome::Error];

    const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::OverLimit => "over_limit",
            Outcome::Error => "error",
        }
    }
}

/// Why a request failed, for `floodgate_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument = 0,
    TooLarge = 1,
    Unimplemented = 2,
    Timeout = 3,
    Store = 4,
    Internal = 5,
}

impl ErrorKind {
    const ALL: [ErrorKind; 6] = [
        ErrorKind::InvalidArgument,
        ErrorKind::TooLarge,
        ErrorKind::Unimplemented,
        ErrorKind::Timeout,
        ErrorKind::Store,
        ErrorKind::Internal,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Unimplemented => "unimplemented",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Store => "store",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Why a descriptor was answered OK without a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    UnknownDomain = 0,
    NoMatch = 1,
    Unlimited = 2,
}

impl Unmatched {
    const ALL: [Unmatched; 3] = [
        Unmatched::UnknownDomain,
        Unmatched::NoMatch,
        Unmatched::Unlimited,
    ];

    const fn as_str(self) -> &'static str {
        match self {
            Unmatched::UnknownDomain => "unknown_domain",
            Unmatched::NoMatch => "no_match",
            Unmatched::Unlimited => "unlimited",
        }
    }
}

const BUCKETS: usize = catalog::DURATION_BUCKETS_SECONDS.len();
/// Slots of the latency histogram: one per catalog bucket, then +Inf.
pub const DURATION_SLOTS: usize = BUCKETS + 1;

/// A latency histogram with the catalog's fixed buckets.
#[derive(Debug, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [AtomicU64; BUCKETS + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = catalog::DURATION_BUCKETS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS);
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// Why an action taken over the API was refused with nothing changed
/// (`floodgate_actions_refused_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionRefusal {
    /// The queue already held `MAX_PENDING_ACTIONS`, or their bodies and
    /// this one would pass `MAX_PENDING_ACTION_BYTES` (503 `overloaded`).
    Overloaded = 0,
    /// No turn within `ACTION_TIMEOUT` (503 `timeout`).
    QueueTimeout = 1,
    /// Planned past `ACTION_TIMEOUT` (504 `timeout`).
    PlanningTimeout = 2,
}

impl ActionRefusal {
    pub const ALL: [ActionRefusal; 3] = [
        ActionRefusal::Overloaded,
        ActionRefusal::QueueTimeout,
        ActionRefusal::PlanningTimeout,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ActionRefusal::Overloaded => "overloaded",
            ActionRefusal::QueueTimeout => "queue_timeout",
            ActionRefusal::PlanningTimeout => "planning_timeout",
        }
    }
}

/// Service-wide counters.
#[derive(Debug, Default)]
pub struct ServiceMetrics {
    requests: [[AtomicU64; 3]; 2],
    errors: [[AtomicU64; 6]; 2],
    unmatched: [AtomicU64; 3],
    durations: [Histogram; 2],
    actions_refused: [AtomicU64; 3],
}

impl ServiceMetrics {
    /// One action over the API refused with nothing changed.
    pub fn action_refused(&self, reason: ActionRefusal) {
        self.actions_refused[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Actions refused so far for `reason`.
    pub fn actions_refused(&self, reason: ActionRefusal) -> u64 {
        self.actions_refused[reason as usize].load(Ordering::Relaxed)
    }

    pub fn request(&self, api: Api, outcome: Outcome, elapsed: Duration) {
        self.requests[api as usize][outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.durations[api as usize].observe(elapsed);
    }

    pub fn error(&self, api: Api, kind: ErrorKind) {
        self.errors[api as usize][kind as usize].fetch_add(1, Ordering::Relaxed);
        self.requests[api as usize][Outcome::Error as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn unmatched(&self, reason: Unmatched) {
        self.unmatched[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered, by API and outcome (for health summaries).
    pub fn requests(&self, api: Api, outcome: Outcome) -> u64 {
        self.requests[api as usize][outcome as usize].load(Ordering::Relaxed)
    }

    /// Errors of one kind on one API.
    pub fn errors(&self, api: Api, kind: ErrorKind) -> u64 {
        self.errors[api as usize][kind as usize].load(Ordering::Relaxed)
    }

    /// Decision latencies so far, summed over both APIs: non-cumulative
    /// counts per bucket of the catalog's `DURATION_BUCKETS_SECONDS`, the
    /// last slot +Inf (for health windows).
    pub fn duration_counts(&self) -> [u64; DURATION_SLOTS] {
        let mut counts = [0; DURATION_SLOTS];
        for histogram in &self.durations {
            for (count, bucket) in counts.iter_mut().zip(&histogram.buckets) {
                *count += bucket.load(Ordering::Relaxed);
            }
        }
        counts
    }
}

/// The store's figures at render time.
#[derive(Debug, Clone, Copy)]
pub struct StoreFigures {
    pub backend: &'static str,
    pub keys: u64,
    pub capacity: u64,
    pub evicted_expired: u64,
    pub evicted_lru: u64,
}

/// Everything `/metrics` shows, gathered at render time.
#[derive(Debug)]
pub struct RenderInput<'a> {
    pub service: &'a ServiceMetrics,
    pub limits: &'a LimitStatsRegistry,
    pub store: StoreFigures,
    /// The counter backend's figures (`None` for the memory store).
    pub backend: Option<floodgate_store::BackendFigures>,
    pub config_limits: u64,
    /// The traffic recorder's figures.
    pub traffic: crate::traffic::TrafficFigures,
    /// Each listener's name and figures.
    pub listeners: [(&'static str, crate::server::ListenerFigures); 2],
    pub version: &'a str,
    pub start_time_seconds: f64,
}

/// Writes Prometheus text for every metric of the catalog.
pub fn render(input: &RenderInput<'_>) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let limits = input.limits.sorted();
    for def in catalog::CATALOG {
        header(&mut out, def);
        match def.name {
            n if n == catalog::HITS.name => per_limit(&mut out, def, &limits, |s| &s.hits),
            n if n == catalog::OVER_LIMIT.name => {
                per_limit(&mut out, def, &limits, |s| &s.over_limit)
            }
            n if n == catalog::NEAR_LIMIT.name => {
                per_limit(&mut out, def, &limits, |s| &s.near_limit)
            }
            n if n == catalog::WITHIN_LIMIT.name => {
                per_limit(&mut out, def, &limits, |s| &s.within_limit)
            }
            n if n == catalog::SHADOW_OVER_LIMIT.name => {
                per_limit(&mut out, def, &limits, |s| &s.shadow_over_limit)
            }
            n if n == catalog::DETAILED_HITS.name => {
                for ((domain, name), stats) in &limits {
                    let detailed = stats.detailed.lock();
                    let mut values: Vec<_> = detailed.iter().collect();
                    values.sort();
                    for (value, counts) in values {
                        for (outcome, count) in
                            [("within_limit", counts[0]), ("over_limit", counts[1])]
                        {
                            series(
                                &mut out,
                                def.name,
                                &[domain, name, value, outcome],
                                def,
                                count,
                            );
                        }
                    }
                }
            }
            n if n == catalog::REQUESTS.name => {
                for api in Api::ALL {
                    for outcome in Outcome::ALL {
                        let value = input.service.requests(api, outcome);
                        series(
                            &mut out,
                            def.name,
                            &[api.as_str(), outcome.as_str()],
                            def,
                            value,
                        );
                    }
                }
            }
            n if n == catalog::REQUEST_DURATION.name => {
                for api in Api::ALL {
                    histogram(&mut out, def, api, &input.service.durations[api as usize]);
                }
            }
            n if n == catalog::UNMATCHED.name => {
                for reason in Unmatched::ALL {
                    let value = input.service.unmatched[reason as usize].load(Ordering::Relaxed);
                    series(&mut out, def.name, &[reason.as_str()], def, value);
                }
            }
            n if n == catalog::ERRORS.name => {
                for api in Api::ALL {
                    for kind in ErrorKind::ALL {
                        let value = input.service.errors(api, kind);
                        series(
                            &mut out,
                            def.name,
                            &[api.as_str(), kind.as_str()],
                            def,
                            value,
                        );
                    }
                }
            }
            n if n == catalog::STORE_KEYS.name => series(
                &mut out,
                def.name,
                &[input.store.backend],
                def,
                input.store.keys,
            ),
            n if n == catalog::STORE_CAPACITY.name => series(
                &mut out,
                def.name,
                &[input.store.backend],
                def,
                input.store.capacity,
            ),
            n if n == catalog::STORE_EVICTIONS.name => {
                let store = input.store;
                series(
                    &mut out,
                    def.name,
                    &[store.backend, "expired"],
                    def,
                    store.evicted_expired,
                );
                series(
                    &mut out,
                    def.name,
                    &[store.backend, "lru"],
                    def,
                    store.evicted_lru,
                );
            }
            n if n == catalog::BACKEND_DURATION.name => {
                if let Some(backend) = &input.backend {
                    backend_histogram(&mut out, def, backend);
                }
            }
            n if n == catalog::BACKEND_ERRORS.name => {
                if let Some(backend) = &input.backend {
                    let kinds = floodgate_store::resilient::ERROR_KINDS;
                    for (kind, count) in kinds.iter().zip(backend.errors) {
                        series(&mut out, def.name, &[kind], def, count);
                    }
                }
            }
            n if n == catalog::BACKEND_UP.name => {
                if let Some(backend) = &input.backend {
                    let up = u64::from(backend.health == floodgate_store::BackendHealth::Up);
                    series(&mut out, def.name, &[], def, up);
                }
            }
            n if n == catalog::BACKEND_FALLBACK_DECISIONS.name => {
                if let Some(backend) = &input.backend {
                    let policies = floodgate_store::FailurePolicy::ALL;
                    for (policy, count) in policies.iter().zip(backend.fallback_decisions) {
                        series(&mut out, def.name, &[policy.as_str()], def, count);
                    }
                }
            }
            n if n == catalog::TRAFFIC_RECORDED.name => {
                series(&mut out, def.name, &[], def, input.traffic.recorded)
            }
            n if n == catalog::TRAFFIC_DROPPED.name => {
                series(&mut out, def.name, &[], def, input.traffic.dropped)
            }
            n if n == catalog::TRAFFIC_BYTES.name => {
                series(&mut out, def.name, &[], def, input.traffic.bytes)
            }
            n if n == catalog::TRAFFIC_NOT_RECORDED.name => {
                let reasons = [
                    ("too_large", input.traffic.too_large),
                    ("over_budget", input.traffic.over_budget),
                    ("unknown_domain", input.traffic.unknown_domain),
                ];
                for (reason, count) in reasons {
                    series(&mut out, def.name, &[reason], def, count);
                }
            }
            n if n == catalog::ACTIONS_REFUSED.name => {
                for reason in ActionRefusal::ALL {
                    let count = input.service.actions_refused(reason);
                    series(&mut out, def.name, &[reason.as_str()], def, count);
                }
            }
            n if n == catalog::CONFIG_LIMITS.name => {
                series(&mut out, def.name, &[], def, input.config_limits)
            }
            n if n == catalog::CONNECTIONS_OPEN.name => {
                for (listener, figures) in &input.listeners {
                    series(&mut out, def.name, &[listener], def, figures.open);
                }
            }
            n if n == catalog::CONNECTIONS_ACCEPTED.name => {
                for (listener, figures) in &input.listeners {
                    series(&mut out, def.name, &[listener], def, figures.accepted);
                }
            }
            n if n == catalog::ACCEPT_ERRORS.name => {
                for (listener, figures) in &input.listeners {
                    series(&mut out, def.name, &[listener], def, figures.accept_errors);
                }
            }
            n if n == catalog::CONNECTIONS_CLOSED.name => {
                for (listener, figures) in &input.listeners {
                    let reasons = crate::server::CLOSE_REASONS;
                    for (reason, count) in reasons.iter().zip(figures.closed()) {
                        series(&mut out, def.name, &[listener, reason], def, count);
                    }
                }
            }
            n if n == catalog::BUILD_INFO.name => {
                series(&mut out, def.name, &[input.version], def, 1)
            }
            n if n == catalog::START_TIME.name => {
                let _ = writeln!(out, "{} {}", def.name, input.start_time_seconds);
            }
            other => {
                // A catalog entry without a renderer is a bug caught by the
                // drift test; render nothing rather than invent a value.
                debug_assert!(false, "no renderer for {other}");
            }
        }
    }
    out
}

fn header(out: &mut String, def: &MetricDef) {
    let _ = writeln!(out, "# HELP {} {}", def.name, def.help);
    let _ = writeln!(out, "# TYPE {} {}", def.name, def.kind.as_str());
}

fn per_limit(
    out: &mut String,
    def: &MetricDef,
    limits: &[((String, String), Arc<LimitStats>)],
    counter: impl Fn(&LimitStats) -> &AtomicU64,
) {
    for ((domain, name), stats) in limits {
        let value = counter(stats).load(Ordering::Relaxed);
        series(out, def.name, &[domain, name], def, value);
    }
}

fn series(out: &mut String, name: &str, values: &[&str], def: &MetricDef, value: u64) {
    out.push_str(name);
    labels(out, def.labels, values, None);
    let _ = writeln!(out, " {value}");
}

fn labels(out: &mut String, names: &[&str], values: &[&str], extra: Option<(&str, &str)>) {
    if names.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let pairs = names
        .iter()
        .copied()
        .zip(values.iter().copied())
        .chain(extra);
    for (name, value) in pairs {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        for ch in value.chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                ch => out.push(ch),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn histogram(out: &mut String, def: &MetricDef, api: Api, histogram: &Histogram) {
    debug_assert_eq!(def.kind, MetricKind::Histogram);
    let mut cumulative = 0u64;
    let api_label = [api.as_str()];
    for (slot, bound) in catalog::DURATION_BUCKETS_SECONDS
        .iter()
        .map(|bound| bound.to_string())
        .chain(std::iter::once("+Inf".to_string()))
        .enumerate()
    {
        cumulative += histogram.buckets[slot].load(Ordering::Relaxed);
        let _ = write!(out, "{}_bucket", def.name);
        labels(out, def.labels, &api_label, Some(("le", &bound)));
        let _ = writeln!(out, " {cumulative}");
    }
    let sum = histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    let _ = write!(out, "{}_sum", def.name);
    labels(out, def.labels, &api_label, None);
    let _ = writeln!(out, " {sum}");
    let _ = write!(out, "{}_count", def.name);
    labels(out, def.labels, &api_label, None);
    let _ = writeln!(out, " {cumulative}");
}

fn backend_histogram(out: &mut String, def: &MetricDef, backend: &floodgate_store::BackendFigures) {
    let mut cumulative = 0u64;
    for (count, bound) in backend.latency_counts.iter().zip(
        backend
            .latency_bounds_seconds
            .iter()
            .map(|bound| bound.to_string())
            .chain(std::iter::once("+Inf".to_string())),
    ) {
        cumulative += count;
        let _ = write!(out, "{}_bucket", def.name);
        labels(out, &[], &[], Some(("le", &bound)));
        let _ = writeln!(out, " {cumulative}");
    }
    let _ = writeln!(out, "{}_sum {}", def.name, backend.latency_sum_seconds);
    let _ = writeln!(out, "{}_count {cumulative}", def.name);
}
