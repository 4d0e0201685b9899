//! The events catalog: every effect on a service, as a typed, structured
//! event with a sequence number.
//!
//! `GET /v1/events?after=SEQ&type=…&limit=N` pages them by cursor;
//! `GET /v1/events/stream` follows them (server-sent events).

use crate::actions::{Change, InverseCall};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One event. `seq` increases by one per event, from 1, for the life of the
/// process; `time_ms` is the service clock in milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    pub seq: u64,
    pub time_ms: u64,
    /// Who caused it (`system` for the service itself).
    pub actor: String,
    /// Why, when given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(flatten)]
    pub body: EventBody,
}

/// What happened. Serialised with the variant's name in `type` and its
/// fields in `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum EventBody {
    /// The service started serving.
    ServiceStarted {
        version: String,
        config_version: u64,
        backend: String,
    },
    /// The service began shutting down (in-flight requests finish).
    ServiceStopping {},
    /// An action was asked for (before validation).
    ActionRequested {
        action: String,
        dry_run: bool,
        params: serde_json::Value,
    },
    /// A dry run: what the action would change.
    ActionPreviewed {
        action: String,
        changes: Vec<Change>,
    },
    /// The action changed the service.
    ActionApplied {
        action: String,
        params: serde_json::Value,
        changes: Vec<Change>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inverse: Option<InverseCall>,
    },
    /// The action was refused before changing anything (bad parameters, a
    /// failed precondition, insufficient scope).
    ActionRefused { action: String, error: String },
    /// The action failed while being applied; nothing was changed.
    ActionFailed { action: String, error: String },
    /// A new config version became current.
    ConfigApplied {
        version: u64,
        hash: String,
        previous_version: u64,
        limits: u64,
        /// The action that made it (`apply_config`, `set_limit`, …).
        via: String,
    },
    /// A request was refused for lack of a valid token or scope.
    AccessDenied {
        method: String,
        path: String,
        status: u16,
        needed: String,
    },
    /// A request was refused by the open-mode guard (no tokens configured):
    /// a foreign Host or Origin (403), or a POST without a JSON content
    /// type (415). `field` is `host`, `origin` or `content-type`; `value`
    /// what was sent, cut to 256 bytes.
    RequestRefused {
        method: String,
        path: String,
        status: u16,
        field: String,
        value: String,
    },
    /// The store's key count crossed the warning share of its capacity.
    CapacityWarning {
        keys: u64,
        capacity: u64,
        used_ratio: f64,
    },
    /// The counter backend's health changed (down, degraded, recovered).
    BackendHealthChanged {
        backend: String,
        healthy: bool,
        detail: String,
    },
    /// The backend failure policy changed.
    FailurePolicyChanged { from: String, to: String },
    /// Draining was set or cleared.
    DrainChanged { draining: bool },
}

impl EventBody {
    /// The `type` string of this event.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::ServiceStarted { .. } => "service_started",
            EventBody::ServiceStopping { .. } => "service_stopping",
            EventBody::ActionRequested { .. } => "action_requested",
            EventBody::ActionPreviewed { .. } => "action_previewed",
            EventBody::ActionApplied { .. } => "action_applied",
            EventBody::ActionRefused { .. } => "action_refused",
            EventBody::ActionFailed { .. } => "action_failed",
            EventBody::ConfigApplied { .. } => "config_applied",
            EventBody::AccessDenied { .. } => "access_denied",
            EventBody::RequestRefused { .. } => "request_refused",
            EventBody::CapacityWarning { .. } => "capacity_warning",
            EventBody::BackendHealthChanged { .. } => "backend_health_changed",
            EventBody::FailurePolicyChanged { .. } => "failure_policy_changed",
            EventBody::DrainChanged { .. } => "drain_changed",
        }
    }
}

/// One entry of the catalog: an event type and what it means.
#[derive(Debug, Clone, Copy)]
pub struct EventDef {
    pub name: &'static str,
    pub meaning: &'static str,
}

/// Every event type, in the order the docs list them.
pub const CATALOG: &[EventDef] = &[
    EventDef { name: "service_started", meaning: "The service started serving: version, config version, backend." },
    EventDef { name: "service_stopping", meaning: "Shutdown began: no new connections; in-flight requests finish." },
    EventDef { name: "action_requested", meaning: "An action was asked for, before validation (actor and reason on the event)." },
    EventDef { name: "action_previewed", meaning: "A dry run answered what the action would change; nothing changed." },
    EventDef { name: "action_applied", meaning: "An action changed the service: its changes and the inverse call that undoes it." },
    EventDef { name: "action_refused", meaning: "An action was refused before changing anything: bad parameters or a failed precondition." },
    EventDef { name: "action_failed", meaning: "An action failed while being applied; nothing was changed." },
    EventDef { name: "config_applied", meaning: "A new config version became current (through apply_config, rollback_config or a limit action)." },
    EventDef { name: "access_denied", meaning: "An HTTP call was refused: no or unknown token (401) or insufficient scope (403)." },
    EventDef { name: "request_refused", meaning: "In open mode (no tokens), a request with a foreign Host or Origin (403) or a POST without a JSON content type (415) was refused (ADR 0004)." },
    EventDef { name: "capacity_warning", meaning: "The store holds more than 80% of its capacity (raised once per crossing)." },
    EventDef { name: "backend_health_changed", meaning: "The counter backend went down, degraded or recovered." },
    EventDef { name: "failure_policy_changed", meaning: "The backend failure policy changed." },
    EventDef { name: "drain_changed", meaning: "Draining was set or cleared." },
];

/// A page of events (`GET /v1/events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Pass as `after` to get the next page.
    pub next_after: u64,
    /// The oldest sequence number still held (older ones were dropped from
    /// the bounded ring).
    pub oldest_seq: u64,
    /// The newest sequence number so far.
    pub newest_seq: u64,
}

/// Renders the catalog as `docs/catalog/events.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Events catalog\n\n\
         Generated from `crates/contract/src/events.rs` by `floodgate catalog --write`; \
         do not edit by hand. Every event has `seq` (increasing by one from 1), `time_ms`, \
         `actor`, optional `reason`, `type` and `data`; the JSON Schema is \
         `docs/catalog/schemas/event.json`.\n\n| type | meaning |\n|---|---|\n",
    );
    for def in CATALOG {
        out.push_str(&format!("| `{}` | {} |\n", def.name, def.meaning));
    }
    out
}
