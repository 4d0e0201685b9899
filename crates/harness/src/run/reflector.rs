//! Reflection at work: builds the [`History`] reflection reasons over from
//! the stored tickets and proposals, runs [`reflect`], files one help
//! ticket per finding, and suspends automatic work on the fingerprints a
//! finding names until a human answers its help ticket (resolves or
//! cancels it). Runs on a schedule in the observe loop and on demand
//! (`POST /v1/reflect`, `floodgate reflect`).
//!
//! Suspension is enforced where agents get work: `POST /v1/agent/claim`
//! skips open tickets whose fingerprint is suspended, and each run
//! escalates the open tickets the harness filed (SLO, invariant, anomaly,
//! alert) or a recurrence reopened on a suspended fingerprint, not members
//! of an incident, naming the help ticket they wait on.

use crate::change::proposal::{Proposal, Stage, RESULT_COLLIDED};
use crate::learn::reflection::{
    help_ticket, reflect, CollisionRecord, Finding, FixRecord, History, Outcome, ReflectionState,
    Thresholds, TicketRecord,
};
use crate::store::tickets::IntakeAction;
use crate::store::tickets::TicketFilter;
use crate::store::{Store, StoreError};
use crate::tickets::{Command, Source, Ticket, TicketState, TicketType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The setting holding [`Suspensions`] and the reflection state.
pub const STATE_SETTING: &str = "reflection.state";
/// How often the observe loop reflects (of the injected clock).
pub const REFLECT_INTERVAL_MS: u64 = 10 * 60 * 1000;
/// The most tickets (newest) one reflection reads.
pub const MAX_TICKETS_READ: usize = 1000;

/// What reflection keeps between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub state: ReflectionState,
    /// Suspended fingerprint → the help tickets a human must answer (all
    /// of them) before agents work it again.
    pub suspended: BTreeMap<String, BTreeSet<String>>,
    /// Finding key → its help ticket.
    pub help: BTreeMap<String, String>,
    /// When reflection last ran.
    pub last_ms: Option<u64>,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    pub time_ms: u64,
    pub findings: Vec<Finding>,
    /// Help tickets filed (or touched) by this run.
    pub help_tickets: Vec<String>,
    /// Fingerprints suspended now, with the help tickets they wait on.
    pub suspended: BTreeMap<String, BTreeSet<String>>,
    /// Fingerprints a human's answer released in this run.
    pub resumed: Vec<String>,
    /// Open tickets of suspended fingerprints this run escalated (they
    /// wait on the help ticket's answer).
    pub escalated: Vec<String>,
}

/// Whether the harness filed tickets of this source on its own (an SLO,
/// an invariant, an anomaly, an alert): a human's own ticket, or a help
/// ticket, is the human's to decide about.
fn machine_filed(source: Source) -> bool {
    matches!(
        source,
        Source::Slo | Source::Invariant | Source::Anomaly | Source::Alertmanager
    )
}

/// The actor reflection acts as on tickets.
pub const REFLECTION_ACTOR: &str = "harness:reflection";

/// What a change targets, for reflection: a limit, the store, the
/// failure policy, the config, the drain switch.
pub fn target_of(action: &str, params: &Value) -> String {
    let text = |key: &str| params.get(key).and_then(Value::as_str).unwrap_or("?");
    match action {
        "set_limit" | "remove_limit" => format!("{}/{}", text("domain"), text("limit")),
        "set_shadow_mode" => format!("{}/{}#shadow", text("domain"), text("limit")),
        "add_limit" => format!(
            "{}/{}",
            text("domain"),
            params
                .pointer("/rate_limit/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
        ),
        "set_store_capacity" | "evict_keys" => "store".into(),
        "set_failure_policy" => "failure_policy".into(),
        "drain" | "undrain" => "drain".into(),
        "apply_config" | "rollback_config" => "config".into(),
        other => other.to_owned(),
    }
}

pub(crate) fn problem_type(ticket: &Ticket) -> String {
    // `slo:NAME`, `invariant:NAME[:instance]`, `anomaly:NAME`: the part
    // before a per-instance suffix names the kind of problem.
    let mut parts = ticket.fingerprint.splitn(3, ':');
    match (parts.next(), parts.next()) {
        (Some(kind), Some(name)) if !name.is_empty() => format!("{kind}:{name}"),
        _ => ticket.fingerprint.clone(),
    }
}

/// The history reflection reads: every finished proposal's actions and
/// every ticket (help tickets excluded: they are reflection's own).
pub fn history(tickets: &[Ticket], proposals: &BTreeMap<String, Vec<Proposal>>) -> History {
    let mut out = History::default();
    for ticket in tickets {
        if ticket.kind == TicketType::Help {
            continue;
        }
        let mine = proposals.get(&ticket.id).map(Vec::as_slice).unwrap_or(&[]);
        let problem = problem_type(ticket);
        for proposal in mine.iter().filter(|p| !p.actions.is_empty()) {
            let Some(outcome) = Outcome::from_stage(proposal.stage) else {
                continue;
            };
            for call in &proposal.actions {
                out.fixes.push(FixRecord {
                    time_ms: proposal.updated_ms,
                    ticket_id: ticket.id.clone(),
                    proposal_id: proposal.id.clone(),
                    fingerprint: ticket.fingerprint.clone(),
                    problem_type: problem.clone(),
                    target: target_of(&call.action, &call.params),
                    action: call.action.clone(),
                    params: call.params.clone(),
                    outcome,
                    agent: proposal.agent.clone(),
                });
            }
        }
        for proposal in mine {
            for record in proposal
                .records
                .iter()
                .filter(|r| r.result == RESULT_COLLIDED)
            {
                out.collisions.push(CollisionRecord {
                    time_ms: record.time_ms,
                    ticket_id: ticket.id.clone(),
                    proposal_id: proposal.id.clone(),
                    fingerprint: ticket.fingerprint.clone(),
                    problem_type: problem.clone(),
                    detail: record.detail.clone(),
                });
            }
        }
        out.tickets.push(TicketRecord {
            id: ticket.id.clone(),
            fingerprint: ticket.fingerprint.clone(),
            problem_type: problem,
            created_ms: ticket.created_ms,
            closed_ms: ticket.closed_ms,
            final_state: ticket.state,
            attempts: mine.iter().filter(|p| !p.actions.is_empty()).count() as u32,
            escalated: ticket.state == TicketState::Escalated,
            criteria_met_ever: mine.iter().any(|p| p.stage == Stage::Succeeded),
        });
    }
    out.fixes.sort_by_key(|fix| fix.time_ms);
    out
}

/// Reads what reflection kept.
pub fn load(store: &Store) -> Result<Stored, StoreError> {
    match store.setting(STATE_SETTING)? {
        Some(text) => serde_json::from_str(&text)
            .map_err(|error| StoreError::Corrupt(format!("{STATE_SETTING}: {error}"))),
        None => Ok(Stored::default()),
    }
}

/// The fingerprints agents may not claim now, each with one help ticket
/// it waits on.
pub fn suspended(store: &Store) -> Result<BTreeMap<String, String>, StoreError> {
    Ok(load(store)?
        .suspended
        .into_iter()
        .filter_map(|(fingerprint, help)| Some((fingerprint, help.into_iter().next()?)))
        .collect())
}

/// One reflection at `now_ms`: release what humans answered, reflect, file
/// help tickets, suspend. Blocking (store calls).
pub fn run(store: &Store, thresholds: &Thresholds, now_ms: u64) -> Result<RunReport, StoreError> {
    let mut stored = load(store)?;
    let mut report = RunReport {
        time_ms: now_ms,
        ..RunReport::default()
    };
    // A help ticket a human closed answers its finding and lifts its
    // suspensions.
    let answered: Vec<(String, String)> = stored
        .help
        .iter()
        .filter_map(|(key, id)| {
            let ticket = store.get(id).ok().flatten()?;
            matches!(ticket.state, TicketState::Resolved | TicketState::Cancelled)
                .then(|| (key.clone(), id.clone()))
        })
        .collect();
    for (key, id) in answered {
        stored.state.answer(&key, now_ms);
        stored.help.remove(&key);
        let mut released = Vec::new();
        for (fingerprint, waiting) in &mut stored.suspended {
            if waiting.remove(&id) && waiting.is_empty() {
                released.push(fingerprint.clone());
            }
        }
        for fingerprint in released {
            stored.suspended.remove(&fingerprint);
            report.resumed.push(fingerprint);
        }
    }

    // The newest tickets: reflection is about what happens now.
    let last = store.last_ticket_number()?;
    let tickets = store.list(&TicketFilter {
        after_number: last.saturating_sub(MAX_TICKETS_READ as u64),
        limit: MAX_TICKETS_READ,
        ..TicketFilter::default()
    })?;
    let mut proposals = BTreeMap::new();
    for ticket in &tickets {
        proposals.insert(ticket.id.clone(), store.proposals_of(&ticket.id)?);
    }
    let history = history(&tickets, &proposals);
    let (findings, state) = reflect(&history, thresholds, &stored.state, now_ms);
    stored.state = state;
    for finding in &findings {
        let draft = help_ticket(finding);
        let outcome = store.intake(&draft, None, now_ms)?;
        let id = outcome.ticket.id.clone();
        if outcome.action != IntakeAction::Duplicate {
            report.help_tickets.push(id.clone());
        }
        stored.help.insert(finding.key.clone(), id.clone());
        if finding.suspend {
            for fingerprint in &finding.fingerprints {
                stored
                    .suspended
                    .entry(fingerprint.clone())
                    .or_default()
                    .insert(id.clone());
            }
        }
    }
    // An open ticket the harness filed on a suspended fingerprint waits on
    // a human's answer, not on an agent: escalated now, naming what it
    // waits on, so no ticket sits open unworked (a recurrence after the
    // answer opens a new episode). A member of an incident follows its
    // owner instead; a human's own ticket stays as the human left it,
    // unless it is a recurrence: reopened, or a new episode of a ticket
    // that went to a human (`context.previous_ticket`) — the violation
    // came back, the harness's episode now (e.g. a controller re-pushing
    // a bad config, each push filed as a report).
    for ticket in &tickets {
        let Some(help) = stored
            .suspended
            .get(&ticket.fingerprint)
            .and_then(|waiting| waiting.iter().next())
        else {
            continue;
        };
        if ticket.state != TicketState::Open
            || ticket.incident.is_some()
            || !(machine_filed(ticket.source)
                || ticket.reopened > 0
                || ticket.context.get("previous_ticket").is_some())
        {
            continue;
        }
        let command = Command::Escalate {
            actor: REFLECTION_ACTOR.into(),
            reason: format!(
                "automatic work on {} is suspended until a human answers {help}: this ticket waits on that answer",
                ticket.fingerprint
            ),
        };
        match store.command(&ticket.id, &command, now_ms) {
            Ok(_) => report.escalated.push(ticket.id.clone()),
            // Claimed or closed since it was read: its worker decides.
            Err(StoreError::Transition(_)) => {}
            Err(error) => return Err(error),
        }
    }
    report.findings = findings;
    report.suspended = stored.suspended.clone();
    stored.last_ms = Some(now_ms);
    let text =
        serde_json::to_string(&stored).map_err(|error| StoreError::Corrupt(error.to_string()))?;
    let data = serde_json::json!({
        "findings": report.findings.iter().map(|f| serde_json::json!({
            "kind": f.kind, "key": f.key, "fingerprints": f.fingerprints, "suspend": f.suspend,
        })).collect::<Vec<_>>(),
        "help_tickets": report.help_tickets,
        "suspended": report.suspended,
        "resumed": report.resumed,
        "escalated": report.escalated,
    });
    let changed = !report.findings.is_empty()
        || !report.help_tickets.is_empty()
        || !report.resumed.is_empty()
        || !report.escalated.is_empty();
    if changed {
        store.set_setting(
            STATE_SETTING,
            &text,
            "reflection",
            "reflection.ran",
            &data,
            now_ms,
        )?;
    } else {
        // Nothing found, nothing released: no ledger entry every interval.
        store.put_setting(STATE_SETTING, &text)?;
    }
    Ok(report)
}
