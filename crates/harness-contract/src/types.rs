//! The request bodies of the harness API: the harness deserialises them
//! (unknown fields refused), clients serialise them, and the OpenAPI
//! document describes them, so the three cannot disagree.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a ticket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Slo,
    Invariant,
    Anomaly,
    Human,
    Alertmanager,
    Reflection,
}

impl Source {
    pub const ALL: [Source; 6] = [
        Source::Slo,
        Source::Invariant,
        Source::Anomaly,
        Source::Human,
        Source::Alertmanager,
        Source::Reflection,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Slo => "slo",
            Source::Invariant => "invariant",
            Source::Anomaly => "anomaly",
            Source::Human => "human",
            Source::Alertmanager => "alertmanager",
            Source::Reflection => "reflection",
        }
    }

    pub fn parse(text: &str) -> Option<Source> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == text)
    }
}

/// `POST /v1/agent/claim`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// Who claims.
    pub agent: String,
    /// How long the claim lasts before the ticket goes back to the queue
    /// (the harness's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// Only tickets from these sources (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
    /// This ticket rather than the most urgent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

/// `POST /v1/tickets/{id}/release` and `/renew`: the claimant, and for a
/// renewal how long the claim lasts from now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

/// A human's (or an agent's) decision with its reason: approve, reject,
/// revert, cancel, escalate, pause, resume and expire. An empty body is
/// the default where the route says so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Who decides (the harness defaults it to `human`, or the token's
    /// name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /v1/tickets/{id}/comment`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// `POST /v1/tickets/{id}/link`: make the ticket a member of the incident
/// `incident` owns, or (`null`) take it out (ADR 0016).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    pub incident: Option<String>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// `POST /v1/tickets/{id}/questions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionRequest {
    pub agent: String,
    pub question: String,
}

/// ATIF: one tool call an agent made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolCall {
    pub tool_call_id: String,
    pub function_name: String,
    pub arguments: Value,
}

/// ATIF: one result an observation holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ObservationResult {
    /// The tool call this answers, when it answers one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_call_id: Option<String>,
    pub content: String,
}

/// ATIF: what came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Observation {
    pub results: Vec<ObservationResult>,
}

/// `POST /v1/tickets/{id}/steps`: a step of the claimant's work (it says
/// something or calls a tool).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
}

/// One action to run: a name from the service's catalog and its params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionCall {
    /// The service action's name (`set_limit`, …; see `GET /v1/actions`).
    pub action: String,
    /// Its parameters, as the action catalog describes them.
    #[serde(default)]
    pub params: Value,
}

/// `POST /v1/tickets/{id}/proposals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalRequest {
    /// The agent proposing; must hold the ticket's claim.
    pub agent: String,
    /// Why this change fixes the ticket (recorded with every stage and sent
    /// to the service as the action's reason).
    pub rationale: String,
    /// What to change, in order.
    pub actions: Vec<ActionCall>,
    /// An interim mitigation, not the fix: once verified, the ticket goes
    /// back to the agent (in progress) instead of resolving, so it can
    /// finish the work (e.g. restore a failure policy once the backend is
    /// back). Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interim: bool,
    /// The config hash (`GET /v1/state`'s `config.hash`) the change was
    /// planned against: refused (409 `collision`) when a service's config
    /// is no longer at it (the agent re-plans with the new state). Absent:
    /// the versions the test stage finds are the base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_config: Option<String>,
}

/// One matcher of a notice: `name` (service, limit, tenant, metric,
/// anomaly, slo, invariant) and either an exact `value` or a `regex`
/// (anchored: the whole label value must match).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeMatcher {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// `POST /v1/notices`: an expected change (ADR 0011). `starts_ms`
/// defaults to now; the end is `ends_ms` or `duration_ms` after the start
/// (exactly one of the two).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeRequest {
    pub matchers: Vec<NoticeMatcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub reason: String,
    /// `KIND:NAME`: `human:alice`, `deploy:ci`, `agent:runbook`.
    pub author: String,
    /// How many times its level the matched series may move and still be
    /// covered (above 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_factor: Option<f64>,
}

/// `GET /v1/tickets` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketQuery {
    /// Only tickets in these states (empty: all).
    pub states: Vec<String>,
    /// Only tickets from this source (the harness names the sources when
    /// it refuses one).
    pub source: Option<String>,
    /// Only tickets after this id or number.
    pub after: Option<String>,
    /// At most this many (the harness caps it).
    pub limit: Option<u64>,
}

/// `GET /v1/observe/events` query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceEventsQuery {
    /// The service's name in the harness's objectives.
    pub service: String,
    /// Only events after this sequence number.
    pub after: Option<u64>,
    /// At most this many.
    pub limit: Option<u64>,
}
