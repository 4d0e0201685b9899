//! Trajectories: every ticket's work as (state, action, observation …
//! outcome), written as it happens and serialised as ATIF v1.x-compatible
//! JSON with the operations fields (docs/trajectories.md).
//!
//! The store appends one [`Step`] in the same transaction as each ledger
//! entry about a worked ticket ([`step_from_entry`]); the initial state is
//! captured when an agent first claims the ticket; the outcome and the
//! reward ([`reward`]) are written when the ticket closes. Reading a
//! trajectory concatenates what was written — nothing is reconstructed.
//!
//! Pure: no I/O, no clock.

use crate::change::proposal::Proposal;
use crate::quantity::format_time_ms;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The ATIF version this writes.
pub const SCHEMA_VERSION: &str = "ATIF-v1.4";
/// The longest message or observation content kept in one step; longer
/// text is cut with a marker (the ledger keeps it whole).
pub const MAX_STEP_TEXT_BYTES: usize = 8 * 1024;

/// ATIF: who produced a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepSource {
    /// The harness: filing, the pipeline's stages, claim expiry.
    System,
    /// A human: approvals, rejections, comments, cancellations.
    User,
    /// The agent working the ticket.
    Agent,
}

pub use floodgate_harness_contract::types::{Observation, ObservationResult, ToolCall};

/// A human decision point, labelled so it can be mined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HumanDecision {
    /// `approval`, `rejection`, `escalation`, `cancellation`, `comment`.
    pub kind: String,
    pub by: String,
    /// `approved`, `rejected`, `escalated`, … (what was decided).
    pub decision: String,
}

/// Floodgate's operations fields on a step (ATIF's `extra`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepOps {
    /// The ledger entry this step was written with.
    pub ledger_seq: u64,
    /// The ledger kind (`ticket.transitioned`, `proposal.deployed`, …).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<String>,
    /// The pipeline stage the step belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_stage: Option<String>,
    /// The ticket's state after the step, when it moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_state: Option<String>,
    /// The highest catalog risk among a proposal's actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human: Option<HumanDecision>,
}

/// ATIF: one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// 1, 2, … within the trajectory.
    pub step_id: u64,
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub source: StepSource,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
    pub extra: StepOps,
}

/// ATIF: the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentInfo {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
}

/// How the work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not closed yet.
    Open,
    /// Resolved: a change passed verification (or a human resolved it).
    Resolved,
    /// Failed.
    Failed,
    /// Handed to a human.
    Escalated,
    /// Cancelled by a human.
    Cancelled,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Open => "open",
            Outcome::Resolved => "resolved",
            Outcome::Failed => "failed",
            Outcome::Escalated => "escalated",
            Outcome::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        [
            Outcome::Open,
            Outcome::Resolved,
            Outcome::Failed,
            Outcome::Escalated,
            Outcome::Cancelled,
        ]
        .into_iter()
        .find(|outcome| outcome.as_str() == text)
    }
}

/// The reward and what it is made of (docs/trajectories.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reward {
    pub value: f64,
    /// Each term: (name, contribution).
    pub terms: Vec<(String, f64)>,
}

/// ATIF's `final_metrics`, with counts a trainer filters on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FinalMetrics {
    pub total_steps: u64,
    pub proposals: u64,
    pub actions_applied: u64,
    pub rollbacks: u64,
    pub human_decisions: u64,
    /// Milliseconds from the first claim to the close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// Floodgate's operations fields on a trajectory (ATIF's `extra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrajectoryOps {
    pub ticket_id: String,
    /// `slo`, `invariant`, `anomaly`, `human`, `alertmanager`, `reflection`.
    pub source: String,
    pub fingerprint: String,
    /// The ticket as filed: objective, acceptance criteria, constraints.
    pub goal: Value,
    /// When the agent first claimed it: SLOs and budgets, invariants, the
    /// services' config versions and hashes, the ticket's metrics now.
    pub initial_state: Value,
    /// At the close: the same snapshot (absent while open).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub final_state: Value,
    pub started_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_ms: Option<u64>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_terms: Option<Vec<(String, f64)>>,
}

/// One ticket's trajectory: ATIF v1.x root plus Gym's reward, terminated
/// and truncated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Trajectory {
    pub schema_version: String,
    /// The ticket id.
    pub session_id: String,
    pub agent: AgentInfo,
    pub steps: Vec<Step>,
    pub final_metrics: FinalMetrics,
    /// The reward of the whole episode (absent while open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<f64>,
    /// The episode reached a natural end: resolved or failed.
    pub terminated: bool,
    /// The episode was cut short: escalated to a human or cancelled.
    pub truncated: bool,
    pub extra: TrajectoryOps,
}

/// The JSON Schema of [`Trajectory`] (docs/catalog/schemas/trajectory.json).
pub fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(Trajectory)).unwrap_or(Value::Null)
}

fn cut(text: &str) -> String {
    if text.len() <= MAX_STEP_TEXT_BYTES {
        return text.to_owned();
    }
    format!(
        "{}… [{} bytes in all]",
        floodgate_contract::text::cut(text, MAX_STEP_TEXT_BYTES),
        text.len()
    )
}

/// Who an actor is, for a step's `source`.
pub fn source_of(actor: &str, agents: &[String]) -> StepSource {
    if actor == crate::tickets::HARNESS_ACTOR {
        StepSource::System
    } else if agents.iter().any(|agent| agent == actor) || actor.starts_with("agent:") {
        StepSource::Agent
    } else {
        StepSource::User
    }
}

/// The step a ledger entry about a ticket makes, or `None` for entries
/// that are not part of the work (claim renewals). `agents` are the names
/// that claimed the ticket (their comments are the agent's words).
pub fn step_from_entry(
    step_id: u64,
    seq: u64,
    time_ms: u64,
    kind: &str,
    data: &Value,
    agents: &[String],
) -> Option<Step> {
    let text = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let mut ops = StepOps {
        ledger_seq: seq,
        kind: kind.to_owned(),
        proposal: data
            .get("proposal")
            .and_then(Value::as_str)
            .map(str::to_owned),
        pipeline_stage: data.get("stage").and_then(Value::as_str).map(str::to_owned),
        ..StepOps::default()
    };
    let observe = |content: String| Observation {
        results: vec![ObservationResult {
            source_call_id: None,
            content: cut(&content),
        }],
    };
    let (source, message, tool_calls, observation) = match kind {
        "ticket.claim_renewed" => return None,
        "ticket.created" => {
            let description = data
                .pointer("/ticket/objective/description")
                .and_then(Value::as_str)
                .unwrap_or("");
            ops.ticket_state = Some("open".into());
            (
                StepSource::System,
                format!("ticket filed: {description}"),
                Vec::new(),
                None,
            )
        }
        "ticket.occurred" => (
            StepSource::System,
            format!(
                "the problem occurred again ({} times in all)",
                data.get("occurrences").and_then(Value::as_u64).unwrap_or(0)
            ),
            Vec::new(),
            Some(observe(
                data.get("evidence")
                    .map(Value::to_string)
                    .unwrap_or_default(),
            )),
        ),
        "ticket.transitioned" => {
            let actor = text("actor");
            let to = text("to");
            let source = source_of(&actor, agents);
            if source == StepSource::User || (to == "escalated" && source != StepSource::Agent) {
                ops.human = match to.as_str() {
                    "cancelled" => Some(HumanDecision {
                        kind: "cancellation".into(),
                        by: actor.clone(),
                        decision: "cancelled".into(),
                    }),
                    "resolved" | "open" | "failed" => Some(HumanDecision {
                        kind: "ticket".into(),
                        by: actor.clone(),
                        decision: to.clone(),
                    }),
                    _ => None,
                };
            }
            if to == "escalated" {
                ops.human = Some(HumanDecision {
                    kind: "escalation".into(),
                    by: actor.clone(),
                    decision: "escalated".into(),
                });
            }
            ops.ticket_state = Some(to.clone());
            (
                source,
                format!("{} → {to}: {}", text("from"), text("reason")),
                Vec::new(),
                None,
            )
        }
        "ticket.commented" => {
            let actor = text("actor");
            let source = source_of(&actor, agents);
            if source == StepSource::User {
                ops.human = Some(HumanDecision {
                    kind: "comment".into(),
                    by: actor.clone(),
                    decision: "commented".into(),
                });
            }
            (source, cut(&text("text")), Vec::new(), None)
        }
        "agent.step" => {
            let tool_calls: Vec<ToolCall> = data
                .get("tool_calls")
                .and_then(|calls| serde_json::from_value(calls.clone()).ok())
                .unwrap_or_default();
            let observation = data
                .get("observation")
                .and_then(|o| serde_json::from_value::<Observation>(o.clone()).ok())
                .map(|mut o| {
                    for result in &mut o.results {
                        result.content = cut(&result.content);
                    }
                    o
                });
            let mut step = Step {
                step_id,
                timestamp: format_time_ms(time_ms),
                source: StepSource::Agent,
                message: cut(&text("message")),
                reasoning_content: data.get("reasoning").and_then(Value::as_str).map(cut),
                tool_calls,
                observation,
                extra: ops,
            };
            if step.message.is_empty() && step.tool_calls.is_empty() {
                step.message = "(no message)".into();
            }
            return Some(step);
        }
        "proposal.created" => {
            let call = ToolCall {
                tool_call_id: text("proposal"),
                function_name: "propose_change".into(),
                arguments: json!({
                    "rationale": data.get("rationale").cloned().unwrap_or(Value::Null),
                    "actions": data.get("actions").cloned().unwrap_or(Value::Null),
                }),
            };
            ops.pipeline_stage = Some("testing".into());
            ops.risk = data.get("risk").and_then(Value::as_str).map(str::to_owned);
            (StepSource::Agent, cut(&text("rationale")), vec![call], None)
        }
        "proposal.approved" | "proposal.rejected" => {
            let approved = kind == "proposal.approved";
            ops.human = Some(HumanDecision {
                kind: if approved { "approval" } else { "rejection" }.into(),
                by: text("actor"),
                decision: if approved { "approved" } else { "rejected" }.into(),
            });
            (
                StepSource::User,
                format!(
                    "{} {}: {}",
                    text("actor"),
                    if approved { "approved" } else { "rejected" },
                    text("reason")
                ),
                Vec::new(),
                None,
            )
        }
        other if other.starts_with("proposal.") => {
            let mut result = data.clone();
            if let Value::Object(map) = &mut result {
                map.remove("proposal");
                map.remove("stage");
            }
            (
                StepSource::System,
                format!(
                    "pipeline: {} ({})",
                    other.trim_start_matches("proposal."),
                    ops.pipeline_stage.clone().unwrap_or_default()
                ),
                Vec::new(),
                Some(Observation {
                    results: vec![ObservationResult {
                        source_call_id: ops.proposal.clone(),
                        content: cut(&result.to_string()),
                    }],
                }),
            )
        }
        _ => (
            StepSource::System,
            kind.to_owned(),
            Vec::new(),
            Some(observe(data.to_string())),
        ),
    };
    Some(Step {
        step_id,
        timestamp: format_time_ms(time_ms),
        source,
        message,
        reasoning_content: None,
        tool_calls,
        observation,
        extra: ops,
    })
}

/// Reward terms, named once (docs/trajectories.md).
pub mod terms {
    /// Resolved: the change held its criteria for their duration.
    pub const RESOLVED: f64 = 1.0;
    /// Escalated to a human.
    pub const ESCALATED: f64 = -0.5;
    /// Failed.
    pub const FAILED: f64 = -1.0;
    /// Each proposal rolled back (applied, then undone).
    pub const ROLLBACK: f64 = -0.5;
    /// Each proposal refused by the test stage or the canary.
    pub const REFUSED: f64 = -0.2;
    /// Each human decision the work needed (approval, rejection).
    pub const HUMAN: f64 = -0.1;
    /// Each action applied to a service (changes cost).
    pub const ACTION: f64 = -0.02;
}

/// The reward of an episode that ended with `outcome`, given its
/// proposals: see [`terms`]. Cancelled episodes score 0 (a human ended
/// them; no verdict on the agent).
pub fn reward(outcome: Outcome, proposals: &[Proposal]) -> Reward {
    let mut parts: Vec<(String, f64)> = Vec::new();
    match outcome {
        Outcome::Open => {}
        Outcome::Cancelled => {
            return Reward {
                value: 0.0,
                terms: vec![("cancelled".into(), 0.0)],
            }
        }
        Outcome::Resolved => parts.push(("resolved".into(), terms::RESOLVED)),
        Outcome::Escalated => parts.push(("escalated".into(), terms::ESCALATED)),
        Outcome::Failed => parts.push(("failed".into(), terms::FAILED)),
    }
    let count = |stage: crate::change::proposal::Stage| {
        proposals
            .iter()
            .filter(|p| p.stage == stage && !p.actions.is_empty())
            .count() as f64
    };
    let rollbacks = count(crate::change::proposal::Stage::RolledBack);
    if rollbacks > 0.0 {
        parts.push(("rollbacks".into(), rollbacks * terms::ROLLBACK));
    }
    let refused = count(crate::change::proposal::Stage::Failed);
    if refused > 0.0 {
        parts.push(("refused".into(), refused * terms::REFUSED));
    }
    let humans = proposals
        .iter()
        .filter(|p| p.approval.as_ref().is_some_and(|a| a.decision.is_some()))
        .count() as f64;
    if humans > 0.0 {
        parts.push(("human_decisions".into(), humans * terms::HUMAN));
    }
    let actions = proposals.iter().map(|p| p.applied.len()).sum::<usize>() as f64;
    if actions > 0.0 {
        parts.push(("actions".into(), actions * terms::ACTION));
    }
    let value = parts.iter().map(|(_, v)| v).sum::<f64>();
    Reward {
        value: (value * 1e6).round() / 1e6,
        terms: parts,
    }
}

/// The outcome a ticket state means.
pub fn outcome_of(state: crate::tickets::TicketState) -> Outcome {
    use crate::tickets::TicketState::*;
    match state {
        Resolved => Outcome::Resolved,
        Failed => Outcome::Failed,
        Escalated => Outcome::Escalated,
        Cancelled => Outcome::Cancelled,
        Open | Claimed | InProgress | Verifying => Outcome::Open,
    }
}

/// Final metrics from the steps and proposals.
pub fn final_metrics(
    steps: &[Step],
    proposals: &[Proposal],
    started_ms: u64,
    closed_ms: Option<u64>,
) -> FinalMetrics {
    FinalMetrics {
        total_steps: steps.len() as u64,
        proposals: proposals.iter().filter(|p| !p.actions.is_empty()).count() as u64,
        actions_applied: proposals.iter().map(|p| p.applied.len() as u64).sum(),
        rollbacks: proposals
            .iter()
            .filter(|p| p.stage == crate::change::proposal::Stage::RolledBack)
            .count() as u64,
        human_decisions: steps.iter().filter(|s| s.extra.human.is_some()).count() as u64,
        duration_ms: closed_ms.map(|closed| closed.saturating_sub(started_ms)),
    }
}

/// Reads trajectories back from JSON Lines (one per line, as `floodgate
/// trajectory export` writes them); errors name the line.
pub fn parse_jsonl(text: &str) -> Result<Vec<Trajectory>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|error| format!("line {}: {error}", index + 1))
        })
        .collect()
}

/// Export statistics: count, success rate, steps and time per outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    /// resolved / closed (open ones excluded); `None` when none closed.
    pub success_rate: Option<f64>,
    /// Per outcome: how many, mean steps, mean milliseconds from claim to close.
    pub by_outcome: Vec<OutcomeStats>,
    pub human_decisions: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeStats {
    pub outcome: Outcome,
    pub count: u64,
    pub mean_steps: f64,
    pub mean_duration_ms: Option<f64>,
}

pub fn summarize(trajectories: &[Trajectory]) -> Summary {
    let mut summary = Summary {
        count: trajectories.len() as u64,
        ..Summary::default()
    };
    let mut groups: std::collections::BTreeMap<&str, Vec<&Trajectory>> = Default::default();
    for trajectory in trajectories {
        groups
            .entry(trajectory.extra.outcome.as_str())
            .or_default()
            .push(trajectory);
        summary.human_decisions += trajectory.final_metrics.human_decisions;
    }
    for (name, group) in groups {
        let Some(outcome) = Outcome::parse(name) else {
            continue;
        };
        let durations: Vec<f64> = group
            .iter()
            .filter_map(|t| t.final_metrics.duration_ms.map(|d| d as f64))
            .collect();
        summary.by_outcome.push(OutcomeStats {
            outcome,
            count: group.len() as u64,
            mean_steps: group.iter().map(|t| t.steps.len() as f64).sum::<f64>()
                / group.len() as f64,
            mean_duration_ms: (!durations.is_empty())
                .then(|| durations.iter().sum::<f64>() / durations.len() as f64),
        });
    }
    let closed = trajectories
        .iter()
        .filter(|t| t.extra.outcome != Outcome::Open)
        .count();
    let resolved = trajectories
        .iter()
        .filter(|t| t.extra.outcome == Outcome::Resolved)
        .count();
    summary.success_rate = (closed > 0).then(|| resolved as f64 / closed as f64);
    summary
}

/// The generated schema file (docs/catalog/schemas/trajectory.json).
pub fn generated_doc() -> floodgate_contract::GeneratedDoc {
    let mut content = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    content.push('\n');
    floodgate_contract::GeneratedDoc {
        path: "docs/catalog/schemas/trajectory.json".into(),
        content,
    }
}
