//! The trajectories tables: each ledger entry about a ticket an agent has
//! worked becomes its trajectory step in the same transaction
//! (`record`); a trajectory is read back whole.

use crate::learn::trajectory::{self, Trajectory};
use crate::store::ledger;
use crate::store::ledger::LedgerEntry;
use crate::store::rows::{load, proposals_in, source_name};
use crate::store::{to_text, Store, StoreError, MAX_LIST};
use crate::tickets::{TicketState, TransitionError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// Appends a ledger entry and, when it is about a ticket an agent has
/// worked, the trajectory step it makes — in the caller's transaction, so
/// the trajectory is written as the work happens and never disagrees with
/// the ledger.
pub(crate) fn record(
    tx: &rusqlite::Transaction<'_>,
    time_ms: u64,
    subject: &str,
    kind: &str,
    data: &serde_json::Value,
) -> Result<LedgerEntry, StoreError> {
    let entry = ledger::append(tx, time_ms, subject, kind, data)?;
    let claimed_by = (kind == "ticket.transitioned"
        && data.get("to").and_then(serde_json::Value::as_str) == Some("claimed"))
    .then(|| data.get("actor").and_then(serde_json::Value::as_str))
    .flatten();
    let row: Option<String> = tx
        .query_row(
            "SELECT agents FROM trajectories WHERE ticket_id = ?1",
            params![subject],
            |row| row.get(0),
        )
        .optional()?;
    let mut agents: Vec<String> = match &row {
        Some(text) => serde_json::from_str(text)
            .map_err(|error| StoreError::Corrupt(format!("trajectory agents: {error}")))?,
        None => Vec::new(),
    };
    if row.is_none() {
        // A trajectory begins when an agent first claims the ticket; the
        // ticket's filing is its first step.
        let Some(agent) = claimed_by else {
            return Ok(entry);
        };
        agents.push(agent.to_owned());
        tx.execute(
            "INSERT INTO trajectories (ticket_id, agents, started_ms, initial_state, final_state, outcome) VALUES (?1, ?2, ?3, 'null', 'null', 'open')",
            params![subject, to_text(&agents)?, time_ms as i64],
        )?;
        for earlier in ledger::history(tx, subject)? {
            if earlier.seq != entry.seq && earlier.kind == "ticket.created" {
                append_step(tx, subject, &earlier, &agents)?;
            }
        }
    } else if let Some(agent) = claimed_by {
        if !agents.iter().any(|known| known == agent) {
            agents.push(agent.to_owned());
            tx.execute(
                "UPDATE trajectories SET agents = ?2 WHERE ticket_id = ?1",
                params![subject, to_text(&agents)?],
            )?;
        }
    }
    append_step(tx, subject, &entry, &agents)?;
    if kind == "ticket.transitioned" {
        let to = data
            .get("to")
            .and_then(serde_json::Value::as_str)
            .and_then(TicketState::parse);
        if let Some(to) = to {
            let outcome = trajectory::outcome_of(to);
            if outcome == trajectory::Outcome::Open {
                tx.execute(
                    "UPDATE trajectories SET outcome = 'open', closed_ms = NULL, reward = NULL, reward_terms = NULL, final_state = 'null' WHERE ticket_id = ?1",
                    params![subject],
                )?;
            } else {
                let proposals = proposals_in(tx, subject)?;
                let reward = trajectory::reward(outcome, &proposals);
                tx.execute(
                    "UPDATE trajectories SET outcome = ?2, closed_ms = ?3, reward = ?4, reward_terms = ?5 WHERE ticket_id = ?1",
                    params![
                        subject,
                        outcome.as_str(),
                        time_ms as i64,
                        reward.value,
                        to_text(&reward.terms)?,
                    ],
                )?;
            }
        }
    }
    Ok(entry)
}

pub(crate) fn append_step(
    tx: &rusqlite::Transaction<'_>,
    ticket_id: &str,
    entry: &LedgerEntry,
    agents: &[String],
) -> Result<(), StoreError> {
    let count: i64 = tx.query_row(
        "SELECT COUNT(*) FROM trajectory_steps WHERE ticket_id = ?1",
        params![ticket_id],
        |row| row.get(0),
    )?;
    let step_id = count as u64 + 1;
    if let Some(step) = trajectory::step_from_entry(
        step_id,
        entry.seq,
        entry.time_ms,
        &entry.kind,
        &entry.data,
        agents,
    ) {
        tx.execute(
            "INSERT INTO trajectory_steps (ticket_id, step_id, seq, doc) VALUES (?1, ?2, ?3, ?4)",
            params![ticket_id, step_id as i64, entry.seq as i64, to_text(&step)?],
        )?;
    }
    Ok(())
}

/// Assembles a trajectory from what was written: its row, its steps, the
/// ticket (goal) and its proposals (final metrics).
pub(crate) fn read_trajectory(
    conn: &Connection,
    ticket_id: &str,
) -> Result<Option<Trajectory>, StoreError> {
    type Row = (
        String,
        i64,
        String,
        String,
        Option<i64>,
        String,
        Option<f64>,
        Option<String>,
    );
    let row: Option<Row> = conn
        .query_row(
            "SELECT agents, started_ms, initial_state, final_state, closed_ms, outcome, reward, reward_terms
             FROM trajectories WHERE ticket_id = ?1",
            params![ticket_id],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                ))
            },
        )
        .optional()?;
    let Some((agents, started_ms, initial, final_state, closed_ms, outcome, reward, terms)) = row
    else {
        return Ok(None);
    };
    let corrupt = |what: &str, error: serde_json::Error| {
        StoreError::Corrupt(format!("trajectory {ticket_id}: {what}: {error}"))
    };
    let agents: Vec<String> = serde_json::from_str(&agents).map_err(|e| corrupt("agents", e))?;
    let ticket =
        load(conn, ticket_id)?.ok_or_else(|| StoreError::NotFound(ticket_id.to_owned()))?;
    let steps: Vec<trajectory::Step> = {
        let mut statement =
            conn.prepare("SELECT doc FROM trajectory_steps WHERE ticket_id = ?1 ORDER BY step_id")?;
        let rows = statement.query_map(params![ticket_id], |row| row.get::<_, String>(0))?;
        let mut steps = Vec::new();
        for doc in rows {
            steps.push(serde_json::from_str(&doc?).map_err(|e| corrupt("step", e))?);
        }
        steps
    };
    let proposals = proposals_in(conn, ticket_id)?;
    let outcome = trajectory::Outcome::parse(&outcome).ok_or_else(|| {
        StoreError::Corrupt(format!("trajectory {ticket_id}: outcome {outcome:?}"))
    })?;
    let started_ms = started_ms.max(0) as u64;
    let closed_ms = closed_ms.map(|ms| ms.max(0) as u64);
    let final_metrics = trajectory::final_metrics(&steps, &proposals, started_ms, closed_ms);
    let reward_terms: Option<Vec<(String, f64)>> = terms
        .map(|text| serde_json::from_str(&text).map_err(|e| corrupt("reward terms", e)))
        .transpose()?;
    Ok(Some(Trajectory {
        schema_version: trajectory::SCHEMA_VERSION.to_owned(),
        session_id: ticket_id.to_owned(),
        agent: trajectory::AgentInfo {
            name: agents.join(","),
            version: format!("floodgate {}", env!("CARGO_PKG_VERSION")),
            model_name: None,
        },
        steps,
        final_metrics,
        reward,
        terminated: matches!(
            outcome,
            trajectory::Outcome::Resolved | trajectory::Outcome::Failed
        ),
        truncated: matches!(
            outcome,
            trajectory::Outcome::Escalated | trajectory::Outcome::Cancelled
        ),
        extra: trajectory::TrajectoryOps {
            ticket_id: ticket_id.to_owned(),
            source: source_name(ticket.source),
            fingerprint: ticket.fingerprint.clone(),
            goal: serde_json::json!({
                "type": ticket.kind,
                "objective": ticket.objective,
                "acceptance_criteria": ticket.acceptance_criteria,
                "constraints": ticket.constraints,
                "priority": ticket.priority,
            }),
            initial_state: serde_json::from_str(&initial)
                .map_err(|e| corrupt("initial state", e))?,
            final_state: serde_json::from_str(&final_state)
                .map_err(|e| corrupt("final state", e))?,
            started_ms,
            closed_ms,
            outcome,
            reward_terms,
        },
    }))
}

impl Store {
    /// Records an agent's step on a ticket it holds (its message,
    /// reasoning, tool calls and what came back): a ledger entry
    /// `agent.step` and the trajectory step it makes.
    pub fn agent_step(
        &self,
        ticket_id: &str,
        agent: &str,
        step: &serde_json::Value,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ticket =
            load(&tx, ticket_id)?.ok_or_else(|| StoreError::NotFound(ticket_id.to_owned()))?;
        let holder = ticket
            .claim
            .as_ref()
            .filter(|claim| claim.expires_ms > now_ms)
            .map(|claim| claim.agent.as_str());
        if holder != Some(agent) {
            return Err(StoreError::Transition(TransitionError::NotClaimant {
                id: ticket_id.to_owned(),
                holder: holder.unwrap_or("nobody").to_owned(),
            }));
        }
        let mut data = step.clone();
        if let serde_json::Value::Object(map) = &mut data {
            map.insert("agent".into(), serde_json::Value::String(agent.to_owned()));
        }
        record(&tx, now_ms, ticket_id, "agent.step", &data)?;
        tx.commit()?;
        Ok(())
    }

    /// Fills a trajectory's initial state (when still empty) or, for a
    /// closed one, its final state (when still empty): the snapshots are
    /// taken by the caller, who holds the harness's view.
    pub fn fill_snapshot(
        &self,
        ticket_id: &str,
        initial: bool,
        snapshot: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let conn = self.lock();
        let sql = if initial {
            "UPDATE trajectories SET initial_state = ?2 WHERE ticket_id = ?1 AND initial_state = 'null'"
        } else {
            "UPDATE trajectories SET final_state = ?2 WHERE ticket_id = ?1 AND final_state = 'null' AND outcome != 'open'"
        };
        Ok(conn.execute(sql, params![ticket_id, to_text(snapshot)?])? == 1)
    }

    /// Trajectories whose initial (or, once closed, final) snapshot is
    /// still missing.
    pub fn snapshots_missing(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let conn = self.lock();
        let mut statement = conn.prepare(
            "SELECT ticket_id, initial_state = 'null' FROM trajectories
             WHERE initial_state = 'null' OR (final_state = 'null' AND outcome != 'open') LIMIT ?1",
        )?;
        let rows = statement.query_map(params![MAX_LIST as i64], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The ids of trajectories, oldest first (`after` a ticket number).
    pub fn trajectory_ids(
        &self,
        after_number: u64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut statement = conn.prepare(
            "SELECT t.ticket_id FROM trajectories t JOIN tickets k ON k.id = t.ticket_id
             WHERE k.number > ?1 ORDER BY k.number LIMIT ?2",
        )?;
        let rows = statement.query_map(
            params![after_number as i64, limit.min(MAX_LIST) as i64],
            |row| row.get::<_, String>(0),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One ticket's trajectory as written so far.
    pub fn trajectory(&self, ticket_id: &str) -> Result<Option<Trajectory>, StoreError> {
        read_trajectory(&self.lock(), ticket_id)
    }
}
