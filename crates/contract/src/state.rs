//! The documents a service answers: state, health, config and its history.

use crate::actions::FailurePolicy;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `GET /v1/state`: everything the service knows, in one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct State {
    pub version: String,
    pub uptime_seconds: u64,
    pub config: ConfigSummary,
    pub store: StoreState,
    pub limits: Vec<LimitState>,
    pub drain: DrainState,
    pub events: EventsState,
    /// Whether bearer tokens are required on the HTTP API.
    pub access_control: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigSummary {
    pub version: u64,
    /// `sha256:` + hex of the canonical config YAML.
    pub hash: String,
    pub domains: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StoreState {
    /// `memory` or `redis`.
    pub backend: String,
    pub healthy: bool,
    pub keys: u64,
    pub capacity: u64,
    pub used_ratio: f64,
    pub evictions: Evictions,
    pub failure_policy: FailurePolicy,
    /// The counter backend's latest health changes, oldest first (at most
    /// [`MAX_STORE_TRANSITIONS`]; empty for a store without a backend, or
    /// one that has not changed since the service started): how long the
    /// present state has lasted, and whether the backend flaps.
    #[serde(default)]
    pub transitions: Vec<StoreTransition>,
}

/// The most backend health changes [`StoreState::transitions`] keeps.
pub const MAX_STORE_TRANSITIONS: usize = 32;

/// One change of the counter backend's health, as the service saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoreTransition {
    /// When (the service's clock, epoch ms).
    pub time_ms: u64,
    /// Whether the backend became healthy (`true`) or unhealthy.
    pub healthy: bool,
    /// Why: the error that made it unhealthy, or the probe that found it
    /// back (at most 256 bytes).
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Evictions {
    pub expired: u64,
    pub lru: u64,
}

/// One limit of the active config, with its usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LimitState {
    pub domain: String,
    pub name: String,
    /// Where it is defined, e.g. `descriptors[0].rate_limits[1]`.
    pub path: String,
    /// The descriptor node it is defined at, level by level: a request
    /// reaches it through that many entries, with these keys and, where a
    /// level has one, this value (a level without a value matches every
    /// value).
    #[serde(default)]
    pub descriptor: Vec<NodeEntry>,
    pub algorithm: String,
    pub requests_per_unit: u64,
    pub unit: String,
    pub burst: u64,
    pub shadow: bool,
    pub detailed_metric: bool,
    pub hits: u64,
    pub within_limit: u64,
    pub over_limit: u64,
    pub near_limit: u64,
    pub shadow_over_limit: u64,
    /// The most used keys right now (at most `HOTTEST_KEYS_PER_LIMIT`).
    pub hottest: Vec<KeyUsage>,
    /// For concurrency limits: leases held now across the hottest keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leases_in_flight: Option<u64>,
    /// The descriptor values that send this limit the most hits and those
    /// it rejects the most, over the last `window_seconds`, whatever the
    /// store (see [`TopValues`]).
    #[serde(default)]
    pub top_values: TopValues,
}

/// Which descriptor values a limit sees the most of: a bounded
/// heavy-hitters sketch (space-saving, [`TOP_VALUES_PER_LIMIT`] values) kept
/// by the service itself, so it answers alike on every store. Every
/// rejection is counted; hits are sampled one in [`TOP_VALUES_HIT_SAMPLE`]
/// and counted with that weight, so a value's `hits` is an estimate within
/// about that many of the truth (plus `error`). The window is the previous
/// whole minute of the service's clock and the current one so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TopValues {
    /// Seconds the counts cover (60 plus the current minute so far).
    pub window_seconds: u64,
    /// Most hits first.
    pub values: Vec<ValueUsage>,
}

/// How many descriptor values [`TopValues`] keeps per limit and minute.
pub const TOP_VALUES_PER_LIMIT: usize = 16;
/// One hit in this many is counted (with this weight) by [`TopValues`].
pub const TOP_VALUES_HIT_SAMPLE: u64 = 8;
/// A descriptor value longer than this (bytes, as `k=v|k=v`) is not kept.
pub const TOP_VALUE_MAX_BYTES: usize = 512;

/// One descriptor value of a limit and what it sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ValueUsage {
    /// The request's descriptor entries that matched the limit, as
    /// `key=value|key=value`.
    pub value: String,
    /// The same entries, ready to use as an `add_limit` path.
    pub entries: Vec<DescriptorEntry>,
    /// Hits (estimated: sampled) in the window.
    pub hits: u64,
    /// Hits the limit rejected in the window (not shadow ones).
    pub over: u64,
    /// The most the counts may overstate (space-saving's inherited count
    /// when the value displaced another).
    pub error: u64,
}

/// One level of a descriptor node of the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeEntry {
    pub key: String,
    /// `None` for a key-only level (it matches every value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One descriptor entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DescriptorEntry {
    pub key: String,
    pub value: String,
}

/// How many of the hottest keys each limit lists in `/v1/state`.
pub const HOTTEST_KEYS_PER_LIMIT: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KeyUsage {
    /// `domain|k1=v1|k2=v2#limit`, or the key's hash when its text is not
    /// known.
    pub key: String,
    /// Units used now: hits in the window, tokens spent, leases held.
    pub used: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DrainState {
    pub draining: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventsState {
    pub oldest_seq: u64,
    pub newest_seq: u64,
    /// The ring's bound.
    pub capacity: u64,
}

/// `GET /v1/health`: SLI-level facts and named checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok`, `degraded` (a check fails) or `draining`.
    pub status: String,
    pub version: String,
    pub uptime_seconds: u64,
    pub config: HealthConfig,
    pub store: StoreState,
    /// Facts over recent windows, shortest first.
    pub windows: Vec<HealthWindow>,
    pub checks: Vec<HealthCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HealthConfig {
    pub version: u64,
    pub domains: u64,
    pub limits: u64,
}

/// What happened over one recent window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HealthWindow {
    pub seconds: u64,
    pub requests: u64,
    pub over_limit: u64,
    pub errors: u64,
    /// errors / requests (0 without requests).
    pub error_ratio: f64,
    /// over_limit / requests.
    pub over_limit_ratio: f64,
    /// Decision latency percentiles from the histogram, in seconds (upper
    /// bucket bounds); absent without requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HealthCheck {
    pub name: String,
    pub pass: bool,
    pub reason: String,
}

/// `GET /v1/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigView {
    pub version: u64,
    pub hash: String,
    /// The whole config as YAML (the form `apply_config` takes).
    pub yaml: String,
    /// The same, as JSON: one object per domain.
    pub domains: Vec<serde_json::Value>,
}

/// One entry of `GET /v1/config/versions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigVersion {
    pub version: u64,
    pub hash: String,
    pub time_ms: u64,
    pub actor: String,
    pub reason: String,
    /// The action that made it (`startup`, `apply_config`, `set_limit`, …).
    pub via: String,
}

/// A page of config versions, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigVersionPage {
    pub versions: Vec<ConfigVersion>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
    /// The bound on versions kept.
    pub capacity: u64,
}

/// `POST /v1/config`: apply a whole config, or patch one limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigApplyRequest {
    /// A whole config as YAML (exclusive with `patch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yaml: Option<String>,
    /// A patch to one limit: the `set_limit` parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<crate::actions::SetLimitParams>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub actor: String,
    /// Apply only if the config is still at this version (409
    /// `config_moved` otherwise): see `ActionRequest::expect_config_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_config_version: Option<u64>,
}

/// `GET /v1/traffic`: the recorded window and its most recent requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrafficPage {
    pub window: TrafficWindow,
    /// The most recent requests (of `domain` when given; below `before`
    /// when given), newest first.
    pub requests: Vec<TrafficRequest>,
    /// Pass as `before` for the next (older) page; absent when the ring
    /// holds no more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

/// What the traffic recorder holds: the window a dry run replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TrafficWindow {
    /// When the oldest request held was decided (0 when none is held).
    pub start_ms: u64,
    /// When the newest request held was decided (0 when none is held).
    pub end_ms: u64,
    /// The most requests the ring holds (`serve --traffic-capacity`; 0:
    /// recording is off).
    pub capacity: u64,
    /// Requests held now.
    pub held: u64,
    /// Requests recorded since start.
    pub recorded: u64,
    /// Requests not recorded because their slot was busy (the recorder
    /// never waits); since start.
    pub dropped: u64,
    /// Bytes the records held take now (each request with its heap).
    #[serde(default)]
    pub bytes: u64,
    /// The most bytes the records may take (16 MiB, the service's
    /// `limits::DEFAULT_TRAFFIC_BYTES`).
    #[serde(default)]
    pub budget_bytes: u64,
    /// Requests not recorded because one was larger than the per-request
    /// cap; since start.
    #[serde(default)]
    pub too_large: u64,
    /// Requests not recorded because they would have crossed the byte
    /// budget; since start.
    #[serde(default)]
    pub over_budget: u64,
    /// Requests for a domain the config does not define: counted, never
    /// recorded; since start.
    #[serde(default)]
    pub unknown_domain: u64,
}

/// One recorded check request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrafficRequest {
    /// Its place in the order of recording (`before` pages by it).
    pub seq: u64,
    pub time_ms: u64,
    pub domain: String,
    pub descriptors: Vec<TrafficDescriptor>,
    /// The request's hits (0 means 1).
    pub hits_addend: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrafficDescriptor {
    pub entries: Vec<TrafficEntry>,
    /// The descriptor's own hits, overriding the request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hits_addend: Option<u64>,
    /// Hits given back (a released concurrency lease is recorded so).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_negative_hits: bool,
    /// A request-supplied limit (fixed window) instead of the config's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<TrafficOverride>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TrafficEntry {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TrafficOverride {
    pub requests_per_unit: u32,
    /// `second` … `year`.
    pub unit: String,
}

/// The field a deserialization error names, from `serde_path_to_error`'s
/// path and the inner message: the path, and for a missing field the
/// field itself, which serde names only in its message
/// (`actions[0].action`). `None` when the document as a whole is at fault
/// (the caller names it: `body`, `arguments`, …).
pub fn error_field(path: &str, message: &str) -> Option<String> {
    let mut field = if matches!(path, "." | "?" | "") {
        String::new()
    } else {
        path.to_owned()
    };
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(missing);
    }
    (!field.is_empty()).then_some(field)
}

/// The error body of every refused HTTP call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// `invalid_argument`, `not_found`, `unauthorized`, `forbidden`,
    /// `precondition_failed`, `config_moved`, `too_large`, `timeout`, `store`,
    /// `internal`.
    pub kind: String,
    /// The field or parameter at fault (`params.requests_per_unit`), or
    /// what was refused.
    pub field: String,
    pub message: String,
}

#[cfg(test)]
mod error_field_tests {
    use super::error_field;

    #[test]
    fn a_missing_field_is_named_in_full() {
        assert_eq!(error_field(".", "invalid type"), None);
        assert_eq!(error_field("?", "x"), None);
        assert_eq!(
            error_field(".", "missing field `reason`").as_deref(),
            Some("reason")
        );
        assert_eq!(
            error_field("actions[0]", "missing field `action`").as_deref(),
            Some("actions[0].action")
        );
        assert_eq!(
            error_field("matchers[1].name", "unknown variant `x`").as_deref(),
            Some("matchers[1].name")
        );
    }
}
