//! The action catalog: every change an operator (human or agent) can make to
//! a service, with its parameters, effects, risk and inverse.
//!
//! Architecture invariant: there is no other way to change a running
//! service. Config changes (`POST /v1/config`, rollback) run through the
//! same actions.

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

/// How much harm a wrong use can do; decides which token scope may run it
/// (`operate`: low and medium; `admin`: high) and, in the harness, whether
/// a human must approve.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

/// What an action changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Effects {
    /// Paths in the `/v1/state` document the action changes.
    pub state: &'static [&'static str],
    /// Metrics whose values the action changes (directly or by changing
    /// decisions).
    pub metrics: &'static [&'static str],
}

/// One entry of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct ActionDef {
    pub name: &'static str,
    pub description: &'static str,
    pub risk: Risk,
    pub effects: Effects,
    /// How the action is undone: the inverse action's name, or `None` when
    /// it cannot be undone.
    pub inverse: Option<&'static str>,
    /// What the inverse restores, and what it cannot.
    pub undo: &'static str,
    /// Conditions checked before it runs; it is refused when one fails.
    pub preconditions: &'static [&'static str],
    /// The JSON Schema of its parameters.
    pub params_schema: fn() -> Schema,
}

/// The catalog as served by `GET /v1/actions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionInfo {
    pub name: String,
    pub description: String,
    pub risk: Risk,
    pub effects: EffectsInfo,
    pub inverse: Option<String>,
    pub undo: String,
    pub preconditions: Vec<String>,
    /// JSON Schema (draft 2020-12) of `params`.
    pub params_schema: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EffectsInfo {
    pub state: Vec<String>,
    pub metrics: Vec<String>,
}

impl ActionDef {
    pub fn info(&self) -> ActionInfo {
        ActionInfo {
            name: self.name.to_string(),
            description: self.description.to_string(),
            risk: self.risk,
            effects: EffectsInfo {
                state: self.effects.state.iter().map(|s| s.to_string()).collect(),
                metrics: self.effects.metrics.iter().map(|s| s.to_string()).collect(),
            },
            inverse: self.inverse.map(str::to_string),
            undo: self.undo.to_string(),
            preconditions: self.preconditions.iter().map(|s| s.to_string()).collect(),
            params_schema: (self.params_schema)().to_value(),
        }
    }
}

/// `POST /v1/actions/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// The action's parameters (see its `params_schema`).
    #[serde(default)]
    pub params: serde_json::Value,
    /// Preview only: validate and report what would change; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Why (recorded in the event and the config history).
    #[serde(default)]
    pub reason: String,
    /// Who asks (a person or an agent id); recorded. Defaults to the token's name.
    #[serde(default)]
    pub actor: String,
    /// Run only if the config is still at this version (as
    /// `GET /v1/state`'s `config.version` answers it): a config that moved
    /// since the caller planned is refused with 409 `config_moved`, naming
    /// the version it is at and who made it. Checked atomically with the
    /// action. Absent: no check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_config_version: Option<u64>,
}

/// The call that undoes an applied action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InverseCall {
    pub action: String,
    pub params: serde_json::Value,
}

/// One change an action makes (or would make, in a dry run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// The state path, e.g. `limits[api/per_tenant].requests_per_unit`.
    pub path: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// The answer to `POST /v1/actions/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionResult {
    pub action: String,
    pub dry_run: bool,
    /// Whether the service changed (false for dry runs and no-ops).
    pub applied: bool,
    pub changes: Vec<Change>,
    /// For config changes: a readable unified diff of the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The call that undoes this one (absent for dry runs and for actions
    /// that cannot be undone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverse: Option<InverseCall>,
    /// The config version after the action, when it changed the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<u64>,
    /// The sequence number of the event recording the outcome.
    pub event_seq: u64,
    /// For a dry run that changes the config: the recorded traffic window
    /// replayed under the current and the candidate config. Absent for
    /// applied runs, no-ops, other actions, and when the service records
    /// no traffic (`serve --traffic-capacity 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayReport>,
}

/// A recorded window of check requests decided again, with fresh
/// counters, under the current and the candidate config (each request all
/// or nothing, as the service decides it; shadow-mode limits never limit).
/// Counters from before the window are unknown, so its first requests
/// replay leniently; dropped requests are missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplayReport {
    /// When the oldest request replayed was decided (0 when none).
    pub window_start_ms: u64,
    /// When the newest request replayed was decided (0 when none).
    pub window_end_ms: u64,
    /// Requests replayed.
    pub requests: u64,
    /// Requests the recorder dropped since start (see `GET /v1/traffic`).
    pub dropped: u64,
    /// Requests allowed under the current config.
    pub allowed_before: u64,
    /// Requests allowed under the candidate config.
    pub allowed_after: u64,
    /// Per limit with at least one flip, most flips first (at most 100). A
    /// request flipping to limited counts under each candidate limit that
    /// refused it; one flipping to allowed, under each current limit that
    /// refused it.
    pub flips: Vec<LimitFlips>,
    /// The counter keys with the most flips, most first (at most 10).
    pub top_keys: Vec<KeyFlips>,
}

/// The requests one limit flips.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LimitFlips {
    pub domain: String,
    pub limit: String,
    /// Requests of the window the limit applied to, under either config.
    pub requests: u64,
    pub allowed_to_limited: u64,
    pub limited_to_allowed: u64,
}

/// The requests of one counter key that flip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyFlips {
    /// `domain|k1=v1|k2=v2#limit`.
    pub key: String,
    pub allowed_to_limited: u64,
    pub limited_to_allowed: u64,
}

// ---- parameters ------------------------------------------------------------

/// Identifies one limit by domain and name (as `/v1/state` lists them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitRef {
    pub domain: String,
    /// The limit's name: its `name` in the config, or the generated
    /// `domain.key_value…` name.
    pub limit: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLimitParams {
    pub domain: String,
    pub limit: String,
    /// New quota per unit (or leases held, for concurrency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_unit: Option<u64>,
    /// New token-bucket capacity (token_bucket only), at least 1; `null`
    /// removes it (the bucket then holds `requests_per_unit`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub burst: Option<Option<u64>>,
    /// New algorithm: fixed_window, token_bucket, sliding_window, concurrency;
    /// `null` removes it (fixed_window, the default, applies). Changing it
    /// starts the limit's counters afresh; leaving token_bucket drops the
    /// limit's `burst` (the inverse call puts it back).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub algorithm: Option<Option<String>>,
    /// New unit: second … year. Changing it starts the counters afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// For fields where absent (leave as is) differs from `null` (remove):
/// a present field, `null` included, is `Some`.
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetShadowParams {
    pub domain: String,
    pub limit: String,
    /// true: count and report but never reject; false: enforce.
    pub shadow: bool,
}

/// One level of a descriptor path: `key`, and `value` unless the level
/// matches every value of the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathEntry {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLimitParams {
    pub domain: String,
    /// The descriptor path from the domain's root; missing levels are
    /// created. The limit is added to the last level.
    pub path: Vec<PathEntry>,
    /// The limit, in the config file's `rate_limit` form
    /// (`{name, unit, requests_per_unit, algorithm?, burst?}`); `name` is
    /// required so the limit can be addressed and removed.
    pub rate_limit: serde_json::Value,
    /// Start in shadow mode.
    #[serde(default)]
    pub shadow_mode: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveLimitParams {
    pub domain: String,
    pub limit: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyConfigParams {
    /// The whole config as YAML: one or more domain documents in
    /// envoyproxy/ratelimit's format (with Floodgate's extensions).
    pub yaml: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackConfigParams {
    /// The version to make current again (its content becomes a new version).
    pub to_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCapacityParams {
    /// The most counter keys the store holds, at least 1. Shrinking evicts
    /// (expired keys first, then least recently used).
    pub max_keys: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvictKeysParams {
    /// Evict every key of this limit…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitRef>,
    /// …or every key whose readable form (`domain|k=v|…#limit`) starts with
    /// this prefix. Exactly one of the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
}

/// What the service does when its counter store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Admit every request and count it.
    FailOpen,
    /// Reject every request.
    FailClosed,
    /// Decide with the in-memory store, each instance taking its share of
    /// each limit, until the backend is back.
    LocalFallback,
}

impl FailurePolicy {
    pub const fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::FailOpen => "fail_open",
            FailurePolicy::FailClosed => "fail_closed",
            FailurePolicy::LocalFallback => "local_fallback",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetFailurePolicyParams {
    pub policy: FailurePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

// ---- the catalog -------------------------------------------------------------

fn schema<T: JsonSchema>() -> Schema {
    schemars::schema_for!(T)
}

const LIMIT_METRICS: &[&str] = &[
    "floodgate_rate_limit_within_limit_total",
    "floodgate_rate_limit_over_limit_total",
    "floodgate_rate_limit_near_limit_total",
];

pub const SET_LIMIT: ActionDef = ActionDef {
    name: "set_limit",
    description: "Change a limit's rate: requests_per_unit, burst, algorithm or unit (`null` removes burst or algorithm). Counters survive a change of quota or burst; a change of algorithm or unit starts them afresh. Leaving token_bucket drops the limit's burst.",
    risk: Risk::Medium,
    effects: Effects { state: &["config", "limits[].rate"], metrics: LIMIT_METRICS },
    inverse: Some("set_limit"),
    undo: "set_limit with the previous values restores the config exactly (rollback_config instead when requests_per_unit was absent); counters of the previous algorithm and unit come back with it unless they were evicted or expired.",
    preconditions: &["the limit exists", "the resulting config validates"],
    params_schema: schema::<SetLimitParams>,
};

pub const SET_SHADOW_MODE: ActionDef = ActionDef {
    name: "set_shadow_mode",
    description: "Set or clear shadow mode on a limit: in shadow mode it is counted and reported but never rejects.",
    risk: Risk::Low,
    effects: Effects { state: &["config", "limits[].shadow"], metrics: &["floodgate_rate_limit_shadow_over_limit_total", "floodgate_rate_limit_over_limit_total"] },
    inverse: Some("set_shadow_mode"),
    undo: "set_shadow_mode with the previous flag restores it exactly.",
    preconditions: &["the limit exists"],
    params_schema: schema::<SetShadowParams>,
};

pub const ADD_LIMIT: ActionDef = ActionDef {
    name: "add_limit",
    description:
        "Add a named limit at a descriptor path of a domain (creating the path's levels as needed).",
    risk: Risk::Medium,
    effects: Effects {
        state: &["config", "limits"],
        metrics: LIMIT_METRICS,
    },
    inverse: Some("remove_limit"),
    undo: "remove_limit removes it and any descriptor levels it created (a descriptor's two-element rate_limits list becomes rate_limit again).",
    preconditions: &[
        "the domain exists",
        "no limit of that name exists in the domain",
        "the resulting config validates",
    ],
    params_schema: schema::<AddLimitParams>,
};

pub const REMOVE_LIMIT: ActionDef = ActionDef {
    name: "remove_limit",
    description: "Remove a limit from a domain, and the descriptor levels it leaves empty. Requests it limited are then answered by the remaining limits, or OK. Limits after it in the same rate_limits list move up a slot, so their counters start afresh.",
    risk: Risk::High,
    effects: Effects { state: &["config", "limits"], metrics: LIMIT_METRICS },
    inverse: Some("rollback_config"),
    undo: "rollback_config to the version before restores the config exactly; the limit's counters come back unless they were evicted or expired meanwhile.",
    preconditions: &["the limit exists", "no other limit replaces it by name", "the resulting config validates"],
    params_schema: schema::<RemoveLimitParams>,
};

pub const APPLY_CONFIG: ActionDef = ActionDef {
    name: "apply_config",
    description: "Replace the whole config with a new one (YAML). Validated first; applied atomically; counters of unchanged limits survive.",
    risk: Risk::High,
    effects: Effects { state: &["config", "limits"], metrics: &["floodgate_config_limits"] },
    inverse: Some("rollback_config"),
    undo: "rollback_config to the previous version restores the config exactly (as a new version).",
    preconditions: &["the config validates"],
    params_schema: schema::<ApplyConfigParams>,
};

pub const ROLLBACK_CONFIG: ActionDef = ActionDef {
    name: "rollback_config",
    description: "Make an earlier config version current again; its content becomes a new version.",
    risk: Risk::High,
    effects: Effects {
        state: &["config", "limits"],
        metrics: &["floodgate_config_limits"],
    },
    inverse: Some("rollback_config"),
    undo: "rollback_config to the version that was current before.",
    preconditions: &["the version is still in the history"],
    params_schema: schema::<RollbackConfigParams>,
};

pub const SET_STORE_CAPACITY: ActionDef = ActionDef {
    name: "set_store_capacity",
    description: "Change the most counter keys the store holds. Shrinking evicts at once (expired keys first, then least recently used).",
    risk: Risk::Medium,
    effects: Effects { state: &["store.capacity", "store.keys"], metrics: &["floodgate_store_capacity_keys", "floodgate_store_keys", "floodgate_store_evictions_total"] },
    inverse: Some("set_store_capacity"),
    undo: "set_store_capacity with the previous value restores the capacity; keys evicted by a shrink are not restored.",
    preconditions: &["max_keys is at least 1", "max_keys is at most 100,000,000"],
    params_schema: schema::<SetCapacityParams>,
};

pub const EVICT_KEYS: ActionDef = ActionDef {
    name: "evict_keys",
    description: "Drop the counters of one limit, or of every key with a given prefix, so those clients start with a full quota.",
    risk: Risk::Medium,
    effects: Effects { state: &["store.keys", "limits[].hottest"], metrics: &["floodgate_store_keys"] },
    inverse: None,
    undo: "Cannot be undone: the evicted counters are gone (clients gain quota, never lose it).",
    preconditions: &["exactly one of limit and key_prefix", "the limit exists"],
    params_schema: schema::<EvictKeysParams>,
};

pub const SET_FAILURE_POLICY: ActionDef = ActionDef {
    name: "set_failure_policy",
    description: "Choose what happens when the counter store fails: fail_open (admit and count), fail_closed (reject), local_fallback (decide in memory with this instance's share).",
    risk: Risk::Medium,
    effects: Effects { state: &["store.failure_policy"], metrics: &["floodgate_requests_total"] },
    inverse: Some("set_failure_policy"),
    undo: "set_failure_policy with the previous policy restores it exactly.",
    preconditions: &[],
    params_schema: schema::<SetFailurePolicyParams>,
};

pub const DRAIN: ActionDef = ActionDef {
    name: "drain",
    description: "Mark the instance draining: /v1/health answers 503 so load balancers stop sending, while requests that still arrive are decided as usual.",
    risk: Risk::High,
    effects: Effects { state: &["drain.draining"], metrics: &[] },
    inverse: Some("undrain"),
    undo: "undrain restores it exactly.",
    preconditions: &[],
    params_schema: schema::<NoParams>,
};

pub const UNDRAIN: ActionDef = ActionDef {
    name: "undrain",
    description: "Clear draining: /v1/health answers 200 again.",
    risk: Risk::Low,
    effects: Effects {
        state: &["drain.draining"],
        metrics: &[],
    },
    inverse: Some("drain"),
    undo: "drain restores it exactly.",
    preconditions: &[],
    params_schema: schema::<NoParams>,
};

/// Every action, in the order `/v1/actions` and the docs list them.
pub const CATALOG: &[ActionDef] = &[
    SET_LIMIT,
    SET_SHADOW_MODE,
    ADD_LIMIT,
    REMOVE_LIMIT,
    APPLY_CONFIG,
    ROLLBACK_CONFIG,
    SET_STORE_CAPACITY,
    EVICT_KEYS,
    SET_FAILURE_POLICY,
    DRAIN,
    UNDRAIN,
];

pub fn find(name: &str) -> Option<&'static ActionDef> {
    CATALOG.iter().find(|def| def.name == name)
}

/// Renders the catalog as `docs/catalog/actions.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Actions catalog\n\n\
         Generated from `crates/contract/src/actions.rs` by `floodgate catalog --write`; \
         do not edit by hand. Run one with `POST /v1/actions/{name}` and \
         `{\"params\": {…}, \"dry_run\": false, \"reason\": \"…\", \"actor\": \"…\"}`; \
         the parameter schemas are in `docs/catalog/schemas/actions/`.\n\n\
         | action | risk | undo | description |\n|---|---|---|---|\n",
    );
    for def in CATALOG {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            def.name,
            serde_json::to_value(def.risk)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            def.inverse
                .map_or("—".to_string(), |inverse| format!("`{inverse}`")),
            def.description
        ));
    }
    for def in CATALOG {
        out.push_str(&format!("\n## `{}`\n\n{}\n\n", def.name, def.description));
        out.push_str(&format!("- **Risk:** {:?}\n", def.risk));
        out.push_str(&format!("- **Undo:** {}\n", def.undo));
        out.push_str(&format!(
            "- **Changes state:** {}\n",
            list(def.effects.state)
        ));
        out.push_str(&format!(
            "- **Changes metrics:** {}\n",
            list(def.effects.metrics)
        ));
        out.push_str(&format!(
            "- **Preconditions:** {}\n",
            if def.preconditions.is_empty() {
                "none".to_string()
            } else {
                def.preconditions.join("; ")
            }
        ));
        let schema =
            serde_json::to_string_pretty(&(def.params_schema)().to_value()).unwrap_or_default();
        out.push_str(&format!("\nParameters:\n\n```json\n{schema}\n```\n"));
    }
    out
}

fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "—".to_string()
    } else {
        items
            .iter()
            .map(|item| format!("`{item}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
