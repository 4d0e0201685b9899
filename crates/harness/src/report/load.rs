//! The review's views, built from the store's rows: what a period did
//! ([`ReportData`]), from a live [`Store`] or a data directory read-only.

use crate::change::proposal::{Proposal, Stage};
use crate::learn::reflection::Finding;
use crate::learn::trajectory;
use crate::report::{
    cut_chars, AppliedItem, ApprovalItem, ChangeItem, EscalatedItem, FindingItem, HelpItem,
    NoticeEffect, NoticeItem, OutcomeCounts, ReportData, SloBudget, StageLine, Waiting,
    MAX_DETAIL_CHARS, MAX_REPORT_ITEMS,
};
use crate::store::archive::{check_schema, table_exists};
use crate::store::rows::{load, parse_doc, parse_notice, parse_proposal, source_name};
use crate::store::slo::for_each_slo_snapshot;
use crate::store::tickets::group_incidents;

use crate::store::{open_connection, to_sql_ms, Store, StoreError, DB_FILE};
use crate::tickets::notices::Notice;
use crate::tickets::{Ticket, TicketState, TicketType};
use rusqlite::{params, Connection};
use std::collections::BTreeMap;
use std::path::Path;

/// Opens a data directory read-only and reads its human review (see
/// [`ReportData::load`]); a directory without a harness database, or with
/// something else in its place, is refused naming what is missing.
pub fn read_report(data_dir: &Path, since_ms: u64, now_ms: u64) -> Result<ReportData, StoreError> {
    if !data_dir.is_dir() {
        return Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} is not a directory", data_dir.display()),
        )));
    }
    let conn = open_connection(data_dir, true).map_err(|error| match error {
        StoreError::Io(_) => StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "{} holds no {DB_FILE}: not a harness data directory",
                data_dir.display()
            ),
        )),
        other => other,
    })?;
    ReportData::load(&conn, since_ms, now_ms)
}

/// Parses each `doc` the query answers, keeps those `keep` accepts (at
/// most [`MAX_REPORT_ITEMS`]) and counts the rest under `list`.
pub(crate) fn report_docs<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    list: &str,
    omitted: &mut BTreeMap<String, usize>,
    mut keep: impl FnMut(&str) -> Result<Option<T>, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare(sql)?;
    let mut rows = statement.query(params)?;
    let mut out = Vec::new();
    let mut left_out = 0;
    while let Some(row) = rows.next()? {
        let doc: String = row.get(0)?;
        if let Some(item) = keep(&doc)? {
            if out.len() < MAX_REPORT_ITEMS {
                out.push(item);
            } else {
                left_out += 1;
            }
        }
    }
    if left_out > 0 {
        omitted.insert(list.to_owned(), left_out);
    }
    Ok(out)
}

pub(crate) fn compact(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

pub(crate) fn reflection_finding(ticket: &Ticket) -> Option<Finding> {
    ticket
        .context
        .get("reflection")
        .and_then(|finding| serde_json::from_value(finding.clone()).ok())
}

pub(crate) fn change_item(
    conn: &Connection,
    proposal: &Proposal,
) -> Result<ChangeItem, StoreError> {
    let ticket = load(conn, &proposal.ticket_id)?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "proposal {} names missing ticket {}",
            proposal.id, proposal.ticket_id
        ))
    })?;
    let decision = proposal
        .approval
        .as_ref()
        .and_then(|approval| approval.decision.as_ref())
        .map(|decision| {
            format!(
                "{} by {}: {}",
                if decision.approved {
                    "approved"
                } else {
                    "rejected"
                },
                decision.actor,
                decision.reason
            )
        });
    Ok(ChangeItem {
        proposal: proposal.id.clone(),
        ticket: ticket.id.clone(),
        ticket_description: ticket.objective.description.clone(),
        ticket_source: source_name(ticket.source),
        ticket_state: ticket.state.as_str().to_owned(),
        agent: proposal.agent.clone(),
        rationale: proposal.rationale.clone(),
        stage: proposal.stage.as_str().to_owned(),
        outcome: proposal.outcome.clone(),
        created_ms: proposal.created_ms,
        stages: proposal
            .records
            .iter()
            .map(|record| StageLine {
                stage: record.stage.as_str().to_owned(),
                result: record.result.clone(),
                time_ms: record.time_ms,
                detail: cut_chars(&record.detail, MAX_DETAIL_CHARS),
            })
            .collect(),
        applied: proposal
            .applied
            .iter()
            .map(|applied| AppliedItem {
                target: applied.target.clone(),
                action: applied.action.clone(),
                params: compact(&applied.params),
                time_ms: applied.time_ms,
                inverse: applied
                    .inverse
                    .as_ref()
                    .map(|inverse| (inverse.action.clone(), compact(&inverse.params))),
                undone: applied.undone,
            })
            .collect(),
        decision,
    })
}

/// A notice for the report, with what it did during the period (its
/// `notice.suppressed` and `notice.exceeded` ledger entries, at most
/// [`MAX_REPORT_ITEMS`] of them).
pub(crate) fn notice_item(
    conn: &Connection,
    notice: &Notice,
    since_ms: u64,
    now_ms: u64,
) -> Result<NoticeItem, StoreError> {
    let mut statement = conn.prepare(
        "SELECT time_ms, kind, body FROM ledger
         WHERE subject = ?1 AND kind IN ('notice.suppressed', 'notice.exceeded')
         AND time_ms >= ?2 AND time_ms <= ?3 ORDER BY seq LIMIT ?4",
    )?;
    let mut rows = statement.query(params![
        notice.id,
        to_sql_ms(since_ms),
        to_sql_ms(now_ms),
        MAX_REPORT_ITEMS as i64
    ])?;
    let mut suppressed = Vec::new();
    let mut exceeded = Vec::new();
    while let Some(row) = rows.next()? {
        let kind: String = row.get(1)?;
        let body: String = row.get(2)?;
        let data = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|body| body.get("data").cloned())
            .unwrap_or_default();
        let effect = NoticeEffect {
            time_ms: row.get::<_, i64>(0)?.max(0) as u64,
            anomaly: data["anomaly"].as_str().unwrap_or_default().to_owned(),
            value: data["detail"]["value"].as_f64(),
            beyond: cut_chars(
                data["detail"]["beyond"].as_str().unwrap_or_default(),
                MAX_DETAIL_CHARS,
            ),
        };
        if kind == "notice.exceeded" {
            exceeded.push(effect);
        } else {
            suppressed.push(effect);
        }
    }
    Ok(NoticeItem {
        id: notice.id.clone(),
        author: notice.author.clone(),
        reason: notice.reason.clone(),
        matchers: notice.matchers_text(),
        starts_ms: notice.starts_ms,
        ends_ms: notice.ends_ms,
        max_factor: notice.max_factor,
        state: notice.state(now_ms).as_str().to_owned(),
        expired: notice
            .expired
            .as_ref()
            .map(|expiry| (expiry.time_ms, expiry.actor.clone(), expiry.reason.clone())),
        suppressed,
        exceeded,
    })
}

pub(crate) fn escalated_item(
    conn: &Connection,
    ticket: &Ticket,
) -> Result<EscalatedItem, StoreError> {
    let mut statement = conn.prepare(
        "SELECT time_ms, body FROM ledger WHERE subject = ?1 AND kind = 'ticket.transitioned'
         ORDER BY seq DESC",
    )?;
    let mut rows = statement.query(params![ticket.id])?;
    let mut found = None;
    while let Some(row) = rows.next()? {
        let body: String = row.get(1)?;
        let data = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|body| body.get("data").cloned())
            .unwrap_or_default();
        if data.get("to").and_then(serde_json::Value::as_str) == Some("escalated") {
            let text = |key: &str| {
                data.get(key)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            found = Some((
                row.get::<_, i64>(0)?.max(0) as u64,
                text("actor"),
                text("reason"),
            ));
            break;
        }
    }
    let (since_ms, by, reason) =
        found.unwrap_or((ticket.updated_ms, "unknown".to_owned(), String::new()));
    Ok(EscalatedItem {
        ticket: ticket.id.clone(),
        description: ticket.objective.description.clone(),
        source: source_name(ticket.source),
        since_ms,
        by,
        reason,
    })
}

impl ReportData {
    /// Reads the human review of the period from `since_ms` to `now_ms`
    /// (both inclusive) from a harness database (the caller opened it,
    /// read-only or not):
    ///
    /// - tickets filed during the period, by source and by their outcome
    ///   now;
    /// - per SLO, the first, last and lowest error budget among the
    ///   snapshots the observe loop kept during the period;
    /// - every proposal that applied something during the period, with
    ///   its rationale, agent, stage records, applied changes and
    ///   inverses;
    /// - the help tickets reflection filed during the period (each
    ///   ticket's context carries its finding);
    /// - the expected-change notices whose window overlaps the period or
    ///   that were announced during it, with the anomaly episodes each held
    ///   back (and those that went beyond it) during the period;
    /// - what waits on a human now, whatever the period: proposals in
    ///   `awaiting_approval`, escalated tickets, help tickets not closed.
    ///
    /// Each list holds at most [`MAX_REPORT_ITEMS`] (the rest are counted
    /// in `omitted`).
    pub fn load(conn: &Connection, since_ms: u64, now_ms: u64) -> Result<ReportData, StoreError> {
        if since_ms > now_ms {
            return Err(StoreError::Invalid {
                field: "since",
                message: format!("{since_ms} is after the period's end {now_ms}"),
            });
        }
        check_schema(conn)?;
        let since = since_ms.min(i64::MAX as u64) as i64;
        let now = now_ms.min(i64::MAX as u64) as i64;
        let mut omitted = BTreeMap::new();

        let mut tickets: BTreeMap<String, OutcomeCounts> = BTreeMap::new();
        {
            let mut statement = conn.prepare(
                "SELECT source, state, COUNT(*) FROM tickets
                 WHERE created_ms >= ?1 AND created_ms <= ?2 GROUP BY source, state",
            )?;
            let mut rows = statement.query(params![since, now])?;
            while let Some(row) = rows.next()? {
                let source: String = row.get(0)?;
                let state: String = row.get(1)?;
                let count: i64 = row.get(2)?;
                let state = TicketState::parse(&state).ok_or_else(|| {
                    StoreError::Corrupt(format!("a ticket row's state {state:?}"))
                })?;
                tickets
                    .entry(source)
                    .or_default()
                    .add(trajectory::outcome_of(state), count.max(0) as u64);
            }
        }

        let slo_history_kept = table_exists(conn, "slo_snapshots")?;
        let mut budgets: BTreeMap<String, SloBudget> = BTreeMap::new();
        if slo_history_kept {
            for_each_slo_snapshot(
                conn,
                "name, time_ms",
                since_ms,
                now_ms,
                usize::MAX,
                |snapshot| match budgets.get_mut(&snapshot.name) {
                    Some(budget) => budget.add(&snapshot),
                    None => {
                        budgets.insert(snapshot.name.clone(), SloBudget::start(&snapshot));
                    }
                },
            )?;
        }

        // Proposals updated during the period include every one that
        // applied something then (an application updates the proposal).
        let changes = report_docs(
            conn,
            "SELECT doc FROM proposals WHERE updated_ms >= ?1 ORDER BY number",
            params![since],
            "changes",
            &mut omitted,
            |doc| {
                let proposal = parse_proposal(doc)?;
                let applied_then = proposal
                    .applied
                    .iter()
                    .any(|applied| (since_ms..=now_ms).contains(&applied.time_ms));
                if applied_then {
                    Ok(Some(change_item(conn, &proposal)?))
                } else {
                    Ok(None)
                }
            },
        )?;

        let findings = report_docs(
            conn,
            "SELECT doc FROM tickets WHERE source = 'reflection' AND created_ms >= ?1 AND created_ms <= ?2 ORDER BY number",
            params![since, now],
            "findings",
            &mut omitted,
            |doc| {
                let ticket = parse_doc(doc)?;
                if ticket.kind != TicketType::Help {
                    return Ok(None);
                }
                let finding = reflection_finding(&ticket);
                Ok(Some(FindingItem {
                    ticket: ticket.id.clone(),
                    state: ticket.state.as_str().to_owned(),
                    created_ms: ticket.created_ms,
                    kind: finding.as_ref().map(|f| f.kind.as_str().to_owned()),
                    key: finding.as_ref().map(|f| f.key.clone()),
                    message: finding
                        .as_ref()
                        .map_or_else(|| ticket.objective.description.clone(), |f| f.message.clone()),
                    fingerprints: finding
                        .as_ref()
                        .map(|f| f.fingerprints.clone())
                        .unwrap_or_default(),
                    suspend: finding.as_ref().is_some_and(|f| f.suspend),
                    tickets: finding
                        .as_ref()
                        .map(|f| f.evidence.tickets.clone())
                        .unwrap_or_default(),
                    tried: finding
                        .as_ref()
                        .map(|f| f.evidence.tried.clone())
                        .unwrap_or_default(),
                }))
            },
        )?;

        let approvals = report_docs(
            conn,
            "SELECT doc FROM proposals WHERE terminal = 0 AND stage = ?1 ORDER BY number",
            params![Stage::AwaitingApproval.as_str()],
            "approvals",
            &mut omitted,
            |doc| {
                let proposal = parse_proposal(doc)?;
                Ok(Some(ApprovalItem {
                    proposal: proposal.id.clone(),
                    ticket: proposal.ticket_id.clone(),
                    agent: proposal.agent.clone(),
                    rationale: proposal.rationale.clone(),
                    actions: proposal
                        .actions
                        .iter()
                        .map(|call| format!("{} {}", call.action, compact(&call.params)))
                        .collect(),
                    reasons: proposal
                        .approval
                        .as_ref()
                        .map(|approval| approval.reasons.clone())
                        .unwrap_or_default(),
                    requested_ms: proposal.approval.as_ref().map(|a| a.requested_ms),
                    deadline_ms: proposal.approval.as_ref().map(|a| a.deadline_ms),
                }))
            },
        )?;

        let escalated = report_docs(
            conn,
            "SELECT doc FROM tickets WHERE state = 'escalated' ORDER BY number",
            params![],
            "escalated",
            &mut omitted,
            |doc| {
                let ticket = parse_doc(doc)?;
                if ticket.kind == TicketType::Help {
                    return Ok(None);
                }
                Ok(Some(escalated_item(conn, &ticket)?))
            },
        )?;

        let help = report_docs(
            conn,
            "SELECT doc FROM tickets WHERE source = 'reflection'
             AND state IN ('open', 'claimed', 'in_progress', 'verifying', 'escalated') ORDER BY number",
            params![],
            "help tickets",
            &mut omitted,
            |doc| {
                let ticket = parse_doc(doc)?;
                if ticket.kind != TicketType::Help {
                    return Ok(None);
                }
                Ok(Some(HelpItem {
                    ticket: ticket.id.clone(),
                    state: ticket.state.as_str().to_owned(),
                    created_ms: ticket.created_ms,
                    kind: reflection_finding(&ticket).map(|f| f.kind.as_str().to_owned()),
                    description: ticket.objective.description.clone(),
                }))
            },
        )?;

        let notices = if table_exists(conn, "notices")? {
            report_docs(
                conn,
                "SELECT doc FROM notices
                 WHERE (starts_ms <= ?2 AND end_ms >= ?1) OR (created_ms >= ?1 AND created_ms <= ?2)
                 ORDER BY number",
                params![since, now],
                "notices",
                &mut omitted,
                |doc| {
                    Ok(Some(notice_item(
                        conn,
                        &parse_notice(doc)?,
                        since_ms,
                        now_ms,
                    )?))
                },
            )?
        } else {
            Vec::new()
        };

        // Incidents: members filed during the period, under their owners.
        let members = report_docs(
            conn,
            "SELECT doc FROM tickets WHERE created_ms >= ?1 AND created_ms <= ?2
             AND json_extract(doc, '$.incident') IS NOT NULL ORDER BY number",
            params![since, now],
            "incidents",
            &mut omitted,
            |doc| Ok(Some(parse_doc(doc)?)),
        )?;
        let incidents = group_incidents(conn, &members)?;

        Ok(ReportData {
            since_ms,
            now_ms,
            tickets,
            slos: budgets.into_values().collect(),
            slo_history_kept,
            changes,
            findings,
            notices,
            incidents,
            waiting: Waiting {
                approvals,
                escalated,
                help,
            },
            omitted,
        })
    }
}

impl ReportData {
    /// The human review of the period from `since_ms` to `now_ms` over a
    /// live store (see [`ReportData::load`]).
    pub fn from_store(store: &Store, since_ms: u64, now_ms: u64) -> Result<ReportData, StoreError> {
        ReportData::load(&store.lock(), since_ms, now_ms)
    }
}
