//! Proposals: the one write an agent makes. A proposal names actions of
//! the service's catalog with their parameters and a rationale; the
//! pipeline ([`crate::run::pipeline`]) moves it through its stages and records
//! every result here (docs/adr/0008-agents-and-pipeline.md).
//!
//! Pure data and checks: no I/O, no clock.

use floodgate_contract::actions::{InverseCall, Risk};
use serde::{Deserialize, Serialize};

/// The most actions one proposal carries.
pub const MAX_ACTIONS: usize = 16;
/// The longest rationale, in bytes.
pub const MAX_RATIONALE_BYTES: usize = 4096;
/// The largest `params` of one action, serialised, in bytes.
pub const MAX_PARAMS_BYTES: usize = 256 * 1024;
/// Stage records kept per proposal (the oldest are dropped first; the
/// ledger keeps them all).
pub const MAX_STAGE_RECORDS: usize = 64;

pub use floodgate_harness_contract::types::{ActionCall, ProposalRequest};

/// Where a proposal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Dry runs on every service (validation and replay).
    Testing,
    /// Waiting for a human: a gated action, or an inconclusive canary.
    AwaitingApproval,
    /// Applied to the canary; judged when the window ends.
    Canary,
    /// The canary passed: applying to every other service (held while a
    /// freeze window or the pause is in force).
    Deploying,
    /// Applied everywhere; the ticket's criteria are being checked.
    Verifying,
    /// Undoing what was applied, newest first.
    RollingBack,
    /// Verified: the ticket is resolved.
    Succeeded,
    /// Refused by the test stage, or the canary judged it bad (the canary
    /// change was undone).
    Failed,
    /// A human rejected it, or nobody answered in time.
    Rejected,
    /// Applied and undone: verification failed, or deploying did.
    RolledBack,
    /// Applied and left in place: verification failed, but the change
    /// relieved its SLO's burn (ADR 0025). The agent builds on it; a human
    /// may revert it.
    Kept,
    /// The pipeline could not judge (a service unreachable, an undo that
    /// failed). Never a pass; a human is asked.
    Error,
}

impl Stage {
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Testing => "testing",
            Stage::AwaitingApproval => "awaiting_approval",
            Stage::Canary => "canary",
            Stage::Deploying => "deploying",
            Stage::Verifying => "verifying",
            Stage::RollingBack => "rolling_back",
            Stage::Succeeded => "succeeded",
            Stage::Failed => "failed",
            Stage::Rejected => "rejected",
            Stage::RolledBack => "rolled_back",
            Stage::Kept => "kept",
            Stage::Error => "error",
        }
    }

    /// No further step happens.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            Stage::Succeeded
                | Stage::Failed
                | Stage::Rejected
                | Stage::RolledBack
                | Stage::Kept
                | Stage::Error
        )
    }
}

/// One stage's result, as recorded (and as a ledger entry).
/// A [`StageRecord::result`]: an undo refused because someone changed the
/// config after the change (theirs stands; a human decides), or a kept
/// change whose config someone moved while it verified (ADR 0026).
/// Reflection reads it as a contested change (ADR 0023).
pub const RESULT_COLLIDED: &str = "collided";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage: Stage,
    pub time_ms: u64,
    /// `passed`, `failed`, `held`, `approved`, `rejected`, `applied`,
    /// `rolled_back`, `error`, `successful`, `inconclusive`, …
    pub result: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub evidence: serde_json::Value,
}

/// A change applied to one service, with how to undo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub target: String,
    pub action: String,
    pub params: serde_json::Value,
    pub time_ms: u64,
    /// The service's inverse call; `None` for actions that cannot be undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverse: Option<InverseCall>,
    /// Already undone (by a rollback).
    #[serde(default)]
    pub undone: bool,
    /// The service's event recording it.
    pub event_seq: u64,
}

/// Why a human is asked, and what they said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Why approval is needed (a gated action, an inconclusive canary).
    pub reasons: Vec<String>,
    pub requested_ms: u64,
    pub deadline_ms: u64,
    /// The stage an approval continues to.
    pub then: Stage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// A human's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub approved: bool,
    pub actor: String,
    pub reason: String,
    pub time_ms: u64,
}

/// How the canary ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryRun {
    /// The service that took the change first.
    pub target: String,
    /// `instances` (canary against the other services over the same window)
    /// or `before_after` (one service: the window before the change is the
    /// baseline).
    pub baseline: String,
    pub started_ms: u64,
    pub ends_ms: u64,
    /// The judge's verdict, once the window ended.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub verdict: serde_json::Value,
    /// With one service (`before_after`): what the canary admitted, by
    /// descriptor value, in the window before the change
    /// ([`crate::change::judge::admission_of`]); the harm check's baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission_before: Option<crate::change::judge::Admission>,
}

/// The limits a proposal's actions change, as `DOMAIN/NAME`, for the
/// canary's harm check: `None` when it replaces the whole config (every
/// limit), empty when it changes no limit.
pub fn limits_changed(actions: &[ActionCall]) -> Option<Vec<String>> {
    let locks = locks_of(actions);
    if locks.iter().any(|lock| lock == "config") {
        return None;
    }
    Some(
        locks
            .iter()
            .filter_map(|lock| lock.strip_prefix("limit:").map(str::to_owned))
            .collect(),
    )
}

/// The descriptor values a proposal means to limit (`DOMAIN/k=v|k=v`: each
/// `add_limit`'s path): the canary may reject them.
pub fn values_named(actions: &[ActionCall]) -> Vec<String> {
    actions
        .iter()
        .filter(|call| call.action == "add_limit")
        .filter_map(|call| {
            let domain = call.params.get("domain")?.as_str()?;
            let path: Vec<String> = call
                .params
                .get("path")?
                .as_array()?
                .iter()
                .map(|entry| {
                    Some(format!(
                        "{}={}",
                        entry.get("key")?.as_str()?,
                        entry.get("value")?.as_str()?
                    ))
                })
                .collect::<Option<_>>()?;
            (!path.is_empty()).then(|| format!("{domain}/{}", path.join("|")))
        })
        .collect()
}

/// Verification of the ticket's criteria after deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyRun {
    pub started_ms: u64,
    /// Criteria are judged from here on (the longest criterion's duration
    /// must lie wholly after the deploy).
    pub judge_from_ms: u64,
    /// Not met by then: roll back.
    pub deadline_ms: u64,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub last: serde_json::Value,
}

/// A proposal and everything the pipeline did with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// `P-0001`, … (assigned by the store).
    pub id: String,
    pub ticket_id: String,
    pub agent: String,
    pub rationale: String,
    pub actions: Vec<ActionCall>,
    /// The catalog's risk of each action, in order.
    pub risks: Vec<Risk>,
    pub stage: Stage,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// What each stage found, oldest first.
    pub records: Vec<StageRecord>,
    /// Dry-run results per service and action (the test stage).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub test: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryRun>,
    /// Whether the canary window passed (deploy then covers the rest).
    #[serde(default)]
    pub canary_passed: bool,
    /// An interim mitigation ([`ProposalRequest::interim`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interim: bool,
    /// Every change applied, in order, with its inverse.
    pub applied: Vec<Applied>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyRun>,
    /// What a terminal stage means, in a sentence.
    #[serde(default)]
    pub outcome: String,
    /// Why it is held now (a freeze window, the pause); empty when not held.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub held: String,
    /// Where a rollback in progress ends (rolled_back, failed, rejected,
    /// error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_then: Option<Stage>,
    /// The ticket command to run when the rollback ends (rework after a
    /// failed verification, escalate after an approval timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_command: Option<crate::tickets::Command>,
    /// The config hash the agent planned against
    /// ([`ProposalRequest::base_config`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_config: Option<String>,
    /// Per service, the config version every config action of this
    /// proposal expects to find (recorded by the test stage, moved by each
    /// of its own applies): a service whose config moved otherwise refuses
    /// the action (`expect_config_version`), so a change never lands on,
    /// or undoes, a config it was not planned against.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub bases: std::collections::BTreeMap<String, u64>,
    /// What it holds while in flight ([`locks_of`]): no other proposal
    /// touching one of them enters the pipeline until this one ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locks: Vec<String>,
}

impl Proposal {
    /// Appends a stage record (bounded).
    pub fn record(
        &mut self,
        time_ms: u64,
        result: &str,
        detail: impl Into<String>,
        evidence: serde_json::Value,
    ) {
        if self.records.len() >= MAX_STAGE_RECORDS {
            self.records.remove(0);
        }
        self.records.push(StageRecord {
            stage: self.stage,
            time_ms,
            result: result.to_owned(),
            detail: detail.into(),
            evidence,
        });
        self.updated_ms = time_ms;
    }

    /// The latest record.
    pub fn last_record(&self) -> Option<&StageRecord> {
        self.records.last()
    }

    /// Changes applied and not undone, newest first (the rollback order).
    pub fn to_undo(&self) -> impl Iterator<Item = (usize, &Applied)> {
        self.applied
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, applied)| !applied.undone)
    }
}

/// Why a proposal request was refused before it entered the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// `actions[1].action`, `rationale`, …
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for RequestError {}

/// Checks a request's shape and that every action is in the catalog;
/// answers each action's risk. Parameters are checked by the services'
/// dry runs (the test stage), which know the config they apply to.
pub fn check_request(request: &ProposalRequest) -> Result<Vec<Risk>, RequestError> {
    let error = |field: String, message: String| Err(RequestError { field, message });
    if request.agent.trim().is_empty() || request.agent.len() > crate::tickets::MAX_ACTOR_BYTES {
        return error(
            "agent".into(),
            format!("must be 1 to {} bytes", crate::tickets::MAX_ACTOR_BYTES),
        );
    }
    if request.rationale.trim().is_empty() {
        return error(
            "rationale".into(),
            "must say why the change fixes the ticket".into(),
        );
    }
    if request.rationale.len() > MAX_RATIONALE_BYTES {
        return error(
            "rationale".into(),
            format!("longer than {MAX_RATIONALE_BYTES} bytes"),
        );
    }
    if request.actions.is_empty() {
        return error("actions".into(), "must name at least one action".into());
    }
    if request.actions.len() > MAX_ACTIONS {
        return error(
            "actions".into(),
            format!("{} actions, more than {MAX_ACTIONS}", request.actions.len()),
        );
    }
    let catalog = floodgate_contract::actions::CATALOG;
    let mut risks = Vec::with_capacity(request.actions.len());
    for (index, call) in request.actions.iter().enumerate() {
        let Some(def) = catalog.iter().find(|def| def.name == call.action) else {
            let known: Vec<&str> = catalog.iter().map(|def| def.name).collect();
            return error(
                format!("actions[{index}].action"),
                format!(
                    "{:?} is not an action of the catalog (known: {})",
                    call.action,
                    known.join(", ")
                ),
            );
        };
        let size = serde_json::to_vec(&call.params).map_or(usize::MAX, |bytes| bytes.len());
        if size > MAX_PARAMS_BYTES {
            return error(
                format!("actions[{index}].params"),
                format!("{size} bytes, more than {MAX_PARAMS_BYTES}"),
            );
        }
        risks.push(def.risk);
    }
    Ok(risks)
}

/// The things a proposal's actions change, as lock names: `limit:DOMAIN/NAME`
/// for one limit, `config` for the whole config (`apply_config`,
/// `rollback_config`), `store` (capacity, eviction), `failure_policy`,
/// `drain`. Sorted, without repeats. An action whose parameters do not name
/// its limit (refused later by the dry run) locks the whole config.
pub fn locks_of(actions: &[ActionCall]) -> Vec<String> {
    let text = |value: &serde_json::Value, key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let mut locks: Vec<String> = actions
        .iter()
        .map(|call| {
            let params = &call.params;
            let limit = match call.action.as_str() {
                "set_limit" | "set_shadow_mode" | "remove_limit" => {
                    text(params, "domain").zip(text(params, "limit"))
                }
                "add_limit" => text(params, "domain")
                    .zip(params.get("rate_limit").and_then(|rate| text(rate, "name"))),
                "set_store_capacity" | "evict_keys" => return "store".to_owned(),
                "set_failure_policy" => return "failure_policy".to_owned(),
                "drain" | "undrain" => return "drain".to_owned(),
                _ => None,
            };
            match limit {
                Some((domain, name)) => format!("limit:{domain}/{name}"),
                None => "config".to_owned(),
            }
        })
        .collect();
    locks.sort();
    locks.dedup();
    locks
}

/// The lock two proposals would both hold, if any: the same lock, or the
/// whole config against any limit.
pub fn collision(ours: &[String], theirs: &[String]) -> Option<String> {
    let config = |lock: &String| lock == "config" || lock.starts_with("limit:");
    for mine in ours {
        for other in theirs {
            if mine == other {
                return Some(mine.clone());
            }
            if (mine == "config" && config(other)) || (other == "config" && config(mine)) {
                return Some(if mine == "config" {
                    other.clone()
                } else {
                    mine.clone()
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(action: &str, params: serde_json::Value) -> ActionCall {
        ActionCall {
            action: action.into(),
            params,
        }
    }

    #[test]
    fn locks_name_what_each_action_changes() {
        let locks = locks_of(&[
            call(
                "set_limit",
                json!({"domain": "api", "limit": "per_tenant", "requests_per_unit": 5}),
            ),
            call(
                "add_limit",
                json!({"domain": "api", "path": [], "rate_limit": {"name": "throttle@org=a"}}),
            ),
            call(
                "set_shadow_mode",
                json!({"domain": "api", "limit": "per_tenant", "shadow": true}),
            ),
            call("set_failure_policy", json!({"policy": "fail_open"})),
            call("evict_keys", json!({"key_prefix": "api|"})),
        ]);
        assert_eq!(
            locks,
            [
                "failure_policy",
                "limit:api/per_tenant",
                "limit:api/throttle@org=a",
                "store"
            ]
        );
        assert_eq!(
            locks_of(&[call("rollback_config", json!({"to_version": 3}))]),
            ["config"]
        );
        // Parameters that do not name a limit lock the whole config.
        assert_eq!(
            locks_of(&[call("set_limit", json!({"domain": "api"}))]),
            ["config"]
        );
    }

    #[test]
    fn the_canary_judges_harm_on_the_limits_a_change_touches_sparing_the_values_it_names() {
        let throttle = call(
            "add_limit",
            json!({"domain": "api", "path": [{"key": "org", "value": "big"}, {"key": "path", "value": "/x"}],
                   "rate_limit": {"name": "throttle@org=big"}}),
        );
        assert_eq!(
            values_named(std::slice::from_ref(&throttle)),
            ["api/org=big|path=/x"]
        );
        assert_eq!(
            limits_changed(std::slice::from_ref(&throttle)),
            Some(vec!["api/throttle@org=big".to_owned()])
        );
        assert_eq!(
            limits_changed(&[call("rollback_config", json!({"to_version": 2}))]),
            None
        );
        assert_eq!(
            limits_changed(&[call("set_failure_policy", json!({"policy": "fail_open"}))]),
            Some(vec![])
        );
        // A key-only level names no value.
        assert!(values_named(&[call(
            "add_limit",
            json!({"domain": "api", "path": [{"key": "org"}], "rate_limit": {"name": "x"}})
        )])
        .is_empty());
    }

    #[test]
    fn the_whole_config_collides_with_every_limit_but_not_with_the_store() {
        let config = vec!["config".to_owned()];
        let limit = vec!["limit:api/a".to_owned()];
        let other = vec!["limit:api/b".to_owned()];
        let store = vec!["store".to_owned()];
        assert_eq!(collision(&config, &limit).as_deref(), Some("limit:api/a"));
        assert_eq!(collision(&limit, &config).as_deref(), Some("limit:api/a"));
        assert_eq!(collision(&config, &config).as_deref(), Some("config"));
        assert_eq!(collision(&limit, &limit).as_deref(), Some("limit:api/a"));
        assert_eq!(collision(&limit, &other), None);
        assert_eq!(collision(&config, &store), None);
        assert_eq!(collision(&store, &store).as_deref(), Some("store"));
    }
}
