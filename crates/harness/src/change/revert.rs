//! Reverting a change from the ledger: `POST /v1/proposals/{pid}/revert`
//! (`floodgate revert P-0003`). The changes a finished proposal applied
//! are undone by a *new* proposal whose actions are their recorded inverse
//! calls, newest first, filed on a ticket of its own and run through the
//! same pipeline as any change — tested, approved when gated, canaried,
//! deployed, verified, and rolled back if it fails
//! (docs/adr/0008-agents-and-pipeline.md).
//!
//! This module is pure: [`plan`] decides from the stored proposal whether
//! it can be reverted and with which actions, and [`draft`] writes the
//! revert ticket. [`crate::run::pipeline::Pipeline::revert`] files, claims and
//! proposes.
//!
//! The pipeline applies each action of a proposal to every service, so the
//! applied list holds one entry per service per action. A revert takes its
//! actions from one service's entries, and is refused unless every service
//! the proposal touched still carries the same changes with the same
//! inverses (and the harness's services are the ones it touched): one
//! revert proposal must mean the same thing everywhere it runs.

use crate::change::proposal::{ActionCall, Applied, Proposal, MAX_RATIONALE_BYTES};
use crate::tickets::criteria::{Condition, Criterion};
use crate::tickets::{NewTicket, Objective, Priority, Source, TicketType, MAX_DESCRIPTION_BYTES};
use floodgate_contract::actions::{InverseCall, CATALOG};
use serde_json::json;

/// Revert tickets carry this fingerprint prefix, then the proposal id
/// (`revert:P-0003`): one revert at a time per proposal.
pub const FINGERPRINT_PREFIX: &str = "revert:";
/// The longest reason a human gives for a revert, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// The acceptance criterion of every revert ticket: undoing a change must
/// not make the service answer more errors than it did when the revert
/// was asked for (the baseline is captured at filing). What the revert
/// restores is checked by the test stage's dry runs and the applied
/// inverses themselves; this criterion is what verification can observe.
pub const CRITERION_METRIC: &str = "error_ratio";
pub const CRITERION_CONDITION: &str = "no regression";

/// The fingerprint of the revert ticket of `proposal_id`.
pub fn fingerprint(proposal_id: &str) -> String {
    format!("{FINGERPRINT_PREFIX}{proposal_id}")
}

/// What a revert runs: the inverse calls, newest first, and what they undo.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The revert proposal's actions.
    pub actions: Vec<ActionCall>,
    /// The services the original changed (each gets every action again).
    pub services: Vec<String>,
    /// The original's changes the actions undo, in the actions' order
    /// (from the first service's entries).
    pub undoes: Vec<Applied>,
    /// Actions that changed nothing when applied (no inverse was recorded
    /// because there was nothing to undo), by action name.
    pub unchanged: Vec<String>,
}

/// Decides whether `proposal` can be reverted on a harness whose services
/// are `services`, and with which actions. `Err` says why not, naming the
/// proposal and what stands in the way (answered as 409).
pub fn plan(proposal: &Proposal, services: &[String]) -> Result<Plan, String> {
    let id = &proposal.id;
    if !proposal.stage.is_terminal() {
        return Err(format!(
            "{id} is still {}: a change is reverted once the pipeline has finished with it \
             (reject it, or wait for its outcome)",
            proposal.stage.as_str()
        ));
    }
    if proposal.applied.is_empty() {
        return Err(format!(
            "{id} applied nothing (it ended {}{}): there is nothing to revert",
            proposal.stage.as_str(),
            outcome_note(proposal)
        ));
    }
    if proposal.applied.iter().all(|applied| applied.undone) {
        return Err(format!(
            "every change {id} applied was already undone (it ended {}{}): there is nothing to revert",
            proposal.stage.as_str(),
            outcome_note(proposal)
        ));
    }
    for applied in proposal.applied.iter().filter(|a| !a.undone) {
        if applied.inverse.is_none() {
            if let Some(def) = CATALOG.iter().find(|def| def.name == applied.action) {
                if def.inverse.is_none() {
                    return Err(format!(
                        "{id} applied {} on {}, which has no inverse: {}",
                        applied.action, applied.target, def.undo
                    ));
                }
            } else {
                return Err(format!(
                    "{id} applied {} on {}, which is not an action of the catalog: it cannot be undone from here",
                    applied.action, applied.target
                ));
            }
        }
    }

    // Per service, in the order the pipeline applied them: the entries not
    // undone.
    let mut touched: Vec<&str> = Vec::new();
    for applied in &proposal.applied {
        if !touched.contains(&applied.target.as_str()) {
            touched.push(&applied.target);
        }
    }
    let live = |target: &str| -> Vec<&Applied> {
        proposal
            .applied
            .iter()
            .filter(|a| a.target == target && !a.undone)
            .collect()
    };
    let reference_target = touched[0];
    let reference = live(reference_target);
    for target in &touched[1..] {
        let other = live(target);
        let same = other.len() == reference.len()
            && other
                .iter()
                .zip(&reference)
                .all(|(a, b)| a.action == b.action && a.inverse == b.inverse);
        if !same {
            return Err(format!(
                "{id}'s changes differ between {reference_target} ({}) and {target} ({}): \
                 a revert runs the same inverse calls on every service, so restore them one by one \
                 (the inverse calls are in the proposal's applied list)",
                describe(&reference),
                describe(&other)
            ));
        }
    }
    let mut current: Vec<&str> = services.iter().map(String::as_str).collect();
    current.sort_unstable();
    let mut was: Vec<&str> = touched.clone();
    was.sort_unstable();
    if current != was {
        return Err(format!(
            "{id} changed {}, but this harness's services are now {}: a revert runs on every service",
            was.join(", "),
            current.join(", ")
        ));
    }

    let mut actions = Vec::new();
    let mut undoes = Vec::new();
    let mut unchanged = Vec::new();
    for applied in reference.iter().rev() {
        match &applied.inverse {
            Some(InverseCall { action, params }) => {
                actions.push(ActionCall {
                    action: action.clone(),
                    params: params.clone(),
                });
                undoes.push((*applied).clone());
            }
            None => unchanged.push(applied.action.clone()),
        }
    }
    if actions.is_empty() {
        return Err(format!(
            "{id}'s actions changed nothing on {} ({}): there is nothing to revert",
            touched.join(", "),
            unchanged.join(", ")
        ));
    }
    Ok(Plan {
        actions,
        services: touched.iter().map(|s| (*s).to_owned()).collect(),
        undoes,
        unchanged,
    })
}

fn outcome_note(proposal: &Proposal) -> String {
    if proposal.outcome.is_empty() {
        String::new()
    } else {
        format!(": {}", proposal.outcome)
    }
}

/// `set_limit → set_limit, add_limit → remove_limit` or `nothing left`.
fn describe(entries: &[&Applied]) -> String {
    if entries.is_empty() {
        return "nothing left to undo".into();
    }
    entries
        .iter()
        .map(|applied| match &applied.inverse {
            Some(inverse) => format!(
                "{} undone by {} {}",
                applied.action, inverse.action, inverse.params
            ),
            None => format!("{} (unchanged)", applied.action),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub use floodgate_contract::text::clip;

/// The revert proposal's rationale: `revert of P-0003: REASON`.
pub fn rationale(proposal: &Proposal, reason: &str) -> String {
    clip(
        &format!("revert of {}: {reason}", proposal.id),
        MAX_RATIONALE_BYTES,
    )
}

/// The revert ticket: a high-priority human task with the fingerprint
/// `revert:{pid}`, its context linking the original proposal and ticket,
/// and one acceptance criterion ([`CRITERION_METRIC`]
/// [`CRITERION_CONDITION`], its baseline captured at filing by
/// [`crate::Harness::prepare`]).
pub fn draft(proposal: &Proposal, plan: &Plan, actor: &str, reason: &str) -> NewTicket {
    let condition = Condition::parse(CRITERION_CONDITION).unwrap_or(Condition::NoRegression {
        tolerance: crate::tickets::criteria::DEFAULT_REGRESSION_TOLERANCE,
    });
    let description = clip(
        &format!("Revert {} ({})", proposal.id, proposal.rationale.trim()),
        MAX_DESCRIPTION_BYTES,
    );
    let undoes: Vec<serde_json::Value> = plan
        .undoes
        .iter()
        .map(|applied| {
            json!({
                "action": applied.action,
                "params": applied.params,
                "applied_ms": applied.time_ms,
                "event_seq": applied.event_seq,
            })
        })
        .collect();
    NewTicket {
        kind: TicketType::Task,
        objective: Objective { description },
        acceptance_criteria: vec![Criterion {
            metric: CRITERION_METRIC.to_owned(),
            condition,
            duration: None,
            baseline: None,
            reference: None,
        }],
        constraints: vec![format!(
            "run only the recorded inverse calls of {}, newest first",
            proposal.id
        )],
        context: crate::tickets::bound_context(json!({
            "revert": {
                "proposal": proposal.id,
                "ticket": proposal.ticket_id,
                "stage": proposal.stage.as_str(),
                "rationale": proposal.rationale,
                "agent": proposal.agent,
                "requested_by": actor,
                "reason": reason,
                "services": plan.services,
                "undoes": undoes,
                "unchanged": plan.unchanged,
            }
        })),
        source: Source::Human,
        priority: Priority::High,
        fingerprint: fingerprint(&proposal.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::proposal::Stage;
    use serde_json::Value;

    fn applied(target: &str, action: &str, inverse: Option<(&str, Value)>) -> Applied {
        Applied {
            target: target.into(),
            action: action.into(),
            params: json!({"n": 1}),
            time_ms: 1,
            inverse: inverse.map(|(action, params)| InverseCall {
                action: action.into(),
                params,
            }),
            undone: false,
            event_seq: 7,
        }
    }

    fn proposal(stage: Stage, applied: Vec<Applied>) -> Proposal {
        Proposal {
            id: "P-0003".into(),
            ticket_id: "INF-0001".into(),
            agent: "agent-1".into(),
            rationale: "raise it".into(),
            actions: Vec::new(),
            risks: Vec::new(),
            stage,
            created_ms: 0,
            updated_ms: 0,
            records: Vec::new(),
            test: Value::Null,
            approval: None,
            canary: None,
            canary_passed: true,
            interim: false,
            applied,
            verify: None,
            outcome: String::new(),
            held: String::new(),
            rollback_then: None,
            pending_command: None,
            base_config: None,
            bases: Default::default(),
            locks: Vec::new(),
        }
    }

    fn services(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn inverses_of_one_service_newest_first() {
        let set = || Some(("set_limit", json!({"requests_per_unit": 60})));
        let remove = || Some(("remove_limit", json!({"limit": "x"})));
        let p = proposal(
            Stage::Succeeded,
            vec![
                applied("a", "set_limit", set()),
                applied("a", "add_limit", remove()),
                applied("b", "set_limit", set()),
                applied("b", "add_limit", remove()),
            ],
        );
        let plan = plan(&p, &services(&["b", "a"])).expect("plan");
        let names: Vec<&str> = plan.actions.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(names, ["remove_limit", "set_limit"]);
        assert_eq!(plan.services, ["a", "b"]);
        assert_eq!(plan.undoes.len(), 2);
    }

    #[test]
    fn refusals_name_the_proposal_and_the_reason() {
        let set = || Some(("set_limit", json!({"requests_per_unit": 60})));
        let a = services(&["a"]);
        let cases: Vec<(Proposal, &str)> = vec![
            (
                proposal(Stage::Canary, vec![applied("a", "set_limit", set())]),
                "is still canary",
            ),
            (proposal(Stage::Failed, vec![]), "applied nothing"),
            (
                proposal(
                    Stage::RolledBack,
                    vec![Applied {
                        undone: true,
                        ..applied("a", "set_limit", set())
                    }],
                ),
                "already undone",
            ),
            (
                proposal(Stage::Succeeded, vec![applied("a", "evict_keys", None)]),
                "evict_keys on a, which has no inverse",
            ),
            (
                proposal(Stage::Succeeded, vec![applied("a", "set_limit", None)]),
                "changed nothing",
            ),
        ];
        for (p, expected) in cases {
            let refused = plan(&p, &a).expect_err(expected);
            assert!(
                refused.contains("P-0003") && refused.contains(expected),
                "{refused}"
            );
        }
        // Undone on one service, not on the other.
        let p = proposal(
            Stage::Error,
            vec![
                applied("a", "set_limit", set()),
                Applied {
                    undone: true,
                    ..applied("b", "set_limit", set())
                },
            ],
        );
        let refused = plan(&p, &services(&["a", "b"])).expect_err("mixed");
        assert!(
            refused.contains("differ between a") && refused.contains("nothing left"),
            "{refused}"
        );
        // A service set that changed since.
        let p = proposal(Stage::Succeeded, vec![applied("a", "set_limit", set())]);
        let refused = plan(&p, &services(&["a", "c"])).expect_err("services");
        assert!(refused.contains("now a, c"), "{refused}");
    }

    #[test]
    fn the_ticket_is_a_high_priority_human_task_linking_the_original() {
        let p = proposal(
            Stage::Succeeded,
            vec![applied("a", "set_limit", Some(("set_limit", json!({}))))],
        );
        let plan = plan(&p, &services(&["a"])).expect("plan");
        let draft = draft(&p, &plan, "alice", "too generous");
        assert_eq!(draft.fingerprint, "revert:P-0003");
        assert_eq!(draft.objective.description, "Revert P-0003 (raise it)");
        assert_eq!(draft.kind, TicketType::Task);
        assert_eq!(draft.source, Source::Human);
        assert_eq!(draft.priority, Priority::High);
        assert_eq!(draft.context["revert"]["ticket"], "INF-0001");
        assert_eq!(
            draft.acceptance_criteria[0].condition.to_string(),
            "no regression"
        );
        draft
            .validate(&crate::tickets::criteria::MetricRegistry::builtin())
            .expect("valid");
        assert_eq!(
            rationale(&p, "too generous"),
            "revert of P-0003: too generous"
        );
        assert_eq!(clip("ab€cd", 5), "ab…");
    }
}
