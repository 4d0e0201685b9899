//! The tickets table: intake (dedup, reopen, incidents), commands, claims
//! and their expiry, listing, and the incidents tickets form.

use crate::store::rows::{active_tickets, claim_expiry, load, parse_doc, save, source_name};
use crate::store::trajectories::record;
use crate::store::{load_doc, to_json, Store, StoreError, MAX_LIST};
use crate::tickets::{
    apply, decide, expire_claim, new_ticket, plan_intake, ticket_id, Command, IntakePlan,
    NewTicket, Source, Ticket, TicketEvent, TicketState, TransitionError, HARNESS_ACTOR,
    MAX_FINGERPRINT_BYTES,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

/// The most claims one `expire_claims` call expires (the rest wait for the
/// next tick).
pub const MAX_EXPIRE_BATCH: usize = 256;

/// The longest idempotency key.
pub const MAX_INTAKE_KEY_BYTES: usize = 256;

/// What an intake did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntakeAction {
    /// A new ticket was filed.
    Created,
    /// An active ticket with the same fingerprint absorbed it.
    Absorbed,
    /// A recently resolved ticket was reopened (or escalated).
    Reopened,
    /// The idempotency key was seen before: nothing changed.
    Duplicate,
}

/// The outcome of an intake: the ticket it concerns, after the change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntakeOutcome {
    pub action: IntakeAction,
    pub ticket: Ticket,
}

/// Which tickets a list answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    /// Only these states (empty: all).
    pub states: Vec<TicketState>,
    pub source: Option<Source>,
    /// Only tickets numbered above this (paging).
    pub after_number: u64,
    /// At most this many (capped at [`MAX_LIST`]; 0 means the cap).
    pub limit: usize,
}

/// Members grouped under their owners (loaded), in the members' order; a
/// member whose owner is gone is left out.
pub(crate) fn group_incidents(
    conn: &Connection,
    members: &[Ticket],
) -> Result<Vec<Incident>, StoreError> {
    let mut incidents: Vec<Incident> = Vec::new();
    for member in members {
        let Some(owner_id) = &member.incident else {
            continue;
        };
        match incidents
            .iter_mut()
            .find(|incident| &incident.owner.id == owner_id)
        {
            Some(incident) => incident.members.push(IncidentTicket::of(member)),
            None => {
                if let Some(owner) = load(conn, owner_id)? {
                    incidents.push(Incident {
                        owner: IncidentTicket::of(&owner),
                        members: vec![IncidentTicket::of(member)],
                    });
                }
            }
        }
    }
    Ok(incidents)
}

/// One incident: its owner and the tickets linked to it
/// (`GET /v1/incidents`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub owner: IncidentTicket,
    /// Newest first.
    pub members: Vec<IncidentTicket>,
}

/// A ticket as an incident lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentTicket {
    pub id: String,
    pub state: TicketState,
    pub source: Source,
    pub fingerprint: String,
    pub objective: String,
    pub causes: Vec<String>,
    pub created_ms: u64,
}

impl IncidentTicket {
    fn of(ticket: &Ticket) -> IncidentTicket {
        IncidentTicket {
            id: ticket.id.clone(),
            state: ticket.state,
            source: ticket.source,
            fingerprint: ticket.fingerprint.clone(),
            objective: ticket.objective.description.clone(),
            causes: crate::tickets::incidents::causes_of(&ticket.context),
            created_ms: ticket.created_ms,
        }
    }
}

pub(crate) fn run_ticket_command(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    command: &Command,
    now_ms: u64,
) -> Result<(), StoreError> {
    let ticket = load(tx, id)?.ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
    let event = decide(&ticket, command, now_ms)?;
    if let Command::Link {
        incident: Some(owner),
        ..
    } = command
    {
        check_owner(tx, owner)?;
    }
    let before = ticket.state;
    let ticket =
        apply(Some(ticket), &event, now_ms).map_err(|error| StoreError::Corrupt(error.0))?;
    record(tx, now_ms, id, event.kind(), &to_json(&event)?)?;
    save(tx, &ticket)?;
    if ticket.state != before {
        follow_owner(tx, &ticket, now_ms)?;
    }
    Ok(())
}

/// Whether `ticket` is a member of an incident whose owner is still
/// active: its owner works it, nobody else is handed it.
pub(crate) fn owned_elsewhere(conn: &Connection, ticket: &Ticket) -> Result<bool, StoreError> {
    let Some(owner) = &ticket.incident else {
        return Ok(false);
    };
    Ok(load(conn, owner)?.is_some_and(|owner| owner.state.is_active()))
}

/// A ticket may own an incident: it exists, is active, and is no member.
pub(crate) fn check_owner(tx: &rusqlite::Transaction<'_>, owner: &str) -> Result<(), StoreError> {
    let ticket = load(tx, owner)?.ok_or_else(|| StoreError::NotFound(owner.to_owned()))?;
    let invalid = |message: String| StoreError::Invalid {
        field: "incident",
        message,
    };
    if !ticket.state.is_active() {
        return Err(invalid(format!(
            "{owner} is {}: only an active ticket owns an incident",
            ticket.state.as_str()
        )));
    }
    if let Some(theirs) = &ticket.incident {
        return Err(invalid(format!(
            "{owner} is itself a member of {theirs}'s incident: link to {theirs}"
        )));
    }
    Ok(())
}

/// A ticket just filed joins the incident of an active ticket it shares a
/// cause with ([`crate::tickets::incidents::owner_for`]); the owner's history says
/// who joined.
pub(crate) fn join_incident(
    tx: &rusqlite::Transaction<'_>,
    ticket: Ticket,
    now_ms: u64,
) -> Result<Ticket, StoreError> {
    let causes = crate::tickets::incidents::causes_of(&ticket.context);
    if causes.is_empty() {
        return Ok(ticket);
    }
    let candidates: Vec<Ticket> = active_tickets(tx)?
        .into_iter()
        .filter(|candidate| candidate.id != ticket.id)
        .collect();
    let Some((owner, shared)) = crate::tickets::incidents::owner_for(&causes, &candidates, now_ms)
    else {
        return Ok(ticket);
    };
    let owner_id = owner.id.clone();
    let linked = TicketEvent::Linked {
        actor: HARNESS_ACTOR.to_owned(),
        incident: Some(owner_id.clone()),
        reason: format!(
            "shares {shared} with {owner_id}, filed {} ago: one incident, worked by its owner",
            crate::quantity::format_duration_ms(now_ms.saturating_sub(owner.created_ms))
        ),
    };
    let ticket =
        apply(Some(ticket), &linked, now_ms).map_err(|error| StoreError::Corrupt(error.0))?;
    record(tx, now_ms, &ticket.id, linked.kind(), &to_json(&linked)?)?;
    save(tx, &ticket)?;
    let note = TicketEvent::Commented {
        actor: HARNESS_ACTOR.to_owned(),
        text: format!("{} joined this incident (it shares {shared})", ticket.id),
    };
    let owner =
        apply(Some(owner.clone()), &note, now_ms).map_err(|error| StoreError::Corrupt(error.0))?;
    record(tx, now_ms, &owner.id, note.kind(), &to_json(&note)?)?;
    save(tx, &owner)?;
    Ok(ticket)
}

/// The members of `owner`'s incident follow its move
/// ([`crate::tickets::incidents::follow`]): resolved or escalated with it, or
/// released to be worked on their own.
pub(crate) fn follow_owner(
    tx: &rusqlite::Transaction<'_>,
    owner: &Ticket,
    now_ms: u64,
) -> Result<(), StoreError> {
    use crate::tickets::incidents::Follow;
    if owner.incident.is_some() {
        return Ok(());
    }
    if crate::tickets::incidents::follow(owner.state, owner.kind, owner.kind) == Follow::Stay {
        return Ok(());
    }
    let members: Vec<Ticket> = active_tickets(tx)?
        .into_iter()
        .filter(|ticket| ticket.incident.as_deref() == Some(owner.id.as_str()))
        .collect();
    for member in members {
        let how = crate::tickets::incidents::follow(owner.state, owner.kind, member.kind);
        let event = match how {
            Follow::Resolve | Follow::Escalate => TicketEvent::Transitioned {
                from: member.state,
                to: if how == Follow::Resolve {
                    TicketState::Resolved
                } else {
                    TicketState::Escalated
                },
                actor: HARNESS_ACTOR.to_owned(),
                reason: format!(
                    "its incident's owner {} was {}",
                    owner.id,
                    owner.state.as_str()
                ),
                claim: None,
            },
            Follow::Release | Follow::Stay => TicketEvent::Linked {
                actor: HARNESS_ACTOR.to_owned(),
                incident: None,
                reason: format!(
                    "its incident's owner {} {}: worked on its own",
                    owner.id,
                    owner.state.as_str()
                ),
            },
        };
        let member =
            apply(Some(member), &event, now_ms).map_err(|error| StoreError::Corrupt(error.0))?;
        record(tx, now_ms, &member.id, event.kind(), &to_json(&event)?)?;
        save(tx, &member)?;
    }
    Ok(())
}

impl Store {
    /// Files a violation or request: creates a ticket, or absorbs it into
    /// the active ticket with its fingerprint, or reopens a recently resolved
    /// one (see [`crate::tickets`]). With an `intake_key`, a second call with
    /// the same key changes nothing (answers `Duplicate`). The caller has
    /// validated the draft ([`NewTicket::validate`]).
    pub fn intake(
        &self,
        draft: &NewTicket,
        intake_key: Option<&str>,
        now_ms: u64,
    ) -> Result<IntakeOutcome, StoreError> {
        self.intake_as(draft, intake_key, now_ms, false)
    }

    /// [`Store::intake`] of an evaluator's violation: `fresh` when it is a
    /// new firing, not a reminder (a fresh violation after an escalation
    /// opens a new episode: [`crate::tickets::plan_intake`]).
    pub fn intake_as(
        &self,
        draft: &NewTicket,
        intake_key: Option<&str>,
        now_ms: u64,
        fresh: bool,
    ) -> Result<IntakeOutcome, StoreError> {
        if draft.fingerprint.is_empty() || draft.fingerprint.len() > MAX_FINGERPRINT_BYTES {
            return Err(StoreError::Invalid {
                field: "fingerprint",
                message: format!("must be 1 to {MAX_FINGERPRINT_BYTES} bytes"),
            });
        }
        if intake_key.is_some_and(|key| key.is_empty() || key.len() > MAX_INTAKE_KEY_BYTES) {
            return Err(StoreError::Invalid {
                field: "intake_key",
                message: format!("must be 1 to {MAX_INTAKE_KEY_BYTES} bytes"),
            });
        }
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let outcome = self.intake_in(&tx, draft, intake_key, now_ms, fresh)?;
        tx.commit()?;
        if outcome.action == IntakeAction::Reopened {
            self.reopened
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(outcome)
    }

    /// Whether a ticket was reopened since the last call (and forgets it):
    /// the observe loop reflects at once when a fixed problem came back,
    /// before an agent starts the same fix again.
    pub fn take_reopened(&self) -> bool {
        self.reopened
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Files a new ticket and runs `command` on it (a claim) in one
    /// transaction: nobody else can take it in between. Refused, filing
    /// nothing, when the draft's fingerprint has an active ticket or a
    /// recently resolved one (it would be absorbed or reopened instead).
    pub fn file_and_run(
        &self,
        draft: &NewTicket,
        command: &Command,
        now_ms: u64,
    ) -> Result<Ticket, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let outcome = self.intake_in(&tx, draft, None, now_ms, false)?;
        if outcome.action != IntakeAction::Created {
            return Err(StoreError::Transition(TransitionError::Invalid {
                field: "fingerprint",
                message: format!(
                    "{} already has ticket {} ({})",
                    draft.fingerprint,
                    outcome.ticket.id,
                    outcome.ticket.state.as_str()
                ),
            }));
        }
        run_ticket_command(&tx, &outcome.ticket.id, command, now_ms)?;
        let ticket = load(&tx, &outcome.ticket.id)?
            .ok_or_else(|| StoreError::Corrupt(format!("{} vanished", outcome.ticket.id)))?;
        tx.commit()?;
        Ok(ticket)
    }

    fn intake_in(
        &self,
        tx: &rusqlite::Transaction<'_>,
        draft: &NewTicket,
        intake_key: Option<&str>,
        now_ms: u64,
        fresh: bool,
    ) -> Result<IntakeOutcome, StoreError> {
        if let Some(key) = intake_key {
            let seen: Option<String> = tx
                .query_row(
                    "SELECT ticket_id FROM intake_keys WHERE key = ?1",
                    params![key],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(id) = seen {
                let ticket = load(tx, &id)?
                    .ok_or_else(|| StoreError::Corrupt(format!("intake key names missing {id}")))?;
                return Ok(IntakeOutcome {
                    action: IntakeAction::Duplicate,
                    ticket,
                });
            }
        }
        let latest_doc: Option<String> = tx
            .query_row(
                "SELECT doc FROM tickets WHERE fingerprint = ?1 ORDER BY number DESC LIMIT 1",
                params![draft.fingerprint],
                |row| row.get(0),
            )
            .optional()?;
        let latest = latest_doc.map(|doc| parse_doc(&doc)).transpose()?;
        let outcome = match plan_intake(
            latest.as_ref(),
            draft,
            intake_key,
            &self.policy,
            now_ms,
            fresh,
        ) {
            IntakePlan::Create { previous } => {
                let number: u64 = tx
                    .query_row(
                        "SELECT value FROM meta WHERE key = 'next_number'",
                        [],
                        |row| row.get::<_, String>(0),
                    )?
                    .parse()
                    .map_err(|_| StoreError::Corrupt("next_number is not a number".into()))?;
                tx.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'next_number'",
                    params![(number + 1).to_string()],
                )?;
                let ticket = new_ticket(ticket_id(number), draft, previous.as_deref(), now_ms);
                let event = TicketEvent::Created {
                    ticket: Box::new(ticket),
                    intake_key: intake_key.map(str::to_owned),
                };
                let ticket =
                    apply(None, &event, now_ms).map_err(|error| StoreError::Corrupt(error.0))?;
                record(tx, now_ms, &ticket.id, event.kind(), &to_json(&event)?)?;
                tx.execute(
                    "INSERT INTO tickets (number, id, fingerprint, state, source, priority_rank, claim_expires_ms, created_ms, updated_ms, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        number as i64,
                        ticket.id,
                        ticket.fingerprint,
                        ticket.state.as_str(),
                        source_name(ticket.source),
                        i64::from(ticket.priority.rank()),
                        claim_expiry(&ticket),
                        ticket.created_ms as i64,
                        ticket.updated_ms as i64,
                        serde_json::to_string(&ticket).map_err(|error| StoreError::Corrupt(error.to_string()))?,
                    ],
                )?;
                let ticket = join_incident(tx, ticket, now_ms)?;
                IntakeOutcome {
                    action: IntakeAction::Created,
                    ticket,
                }
            }
            IntakePlan::Update {
                id,
                reopened,
                events,
            } => {
                let mut ticket =
                    latest.ok_or_else(|| StoreError::Corrupt("update without a ticket".into()))?;
                let before = ticket.state;
                for event in &events {
                    ticket = apply(Some(ticket), event, now_ms)
                        .map_err(|error| StoreError::Corrupt(error.0))?;
                    record(tx, now_ms, &id, event.kind(), &to_json(event)?)?;
                }
                save(tx, &ticket)?;
                if ticket.state != before {
                    follow_owner(tx, &ticket, now_ms)?;
                }
                let action = if reopened {
                    IntakeAction::Reopened
                } else {
                    IntakeAction::Absorbed
                };
                IntakeOutcome { action, ticket }
            }
        };
        if let Some(key) = intake_key {
            tx.execute(
                "INSERT INTO intake_keys (key, ticket_id, time_ms) VALUES (?1, ?2, ?3)",
                params![key, outcome.ticket.id, now_ms as i64],
            )?;
        }
        Ok(outcome)
    }

    /// The highest ticket number filed (0 when none).
    pub fn last_ticket_number(&self) -> Result<u64, StoreError> {
        let conn = self.lock();
        let number: Option<i64> =
            conn.query_row("SELECT MAX(number) FROM tickets", [], |row| row.get(0))?;
        Ok(number.unwrap_or(0).max(0) as u64)
    }

    /// The newest ticket with this fingerprint.
    pub fn latest_with_fingerprint(&self, fingerprint: &str) -> Result<Option<Ticket>, StoreError> {
        load_doc(
            &self.lock(),
            "SELECT doc FROM tickets WHERE fingerprint = ?1 ORDER BY number DESC LIMIT 1",
            fingerprint,
            parse_doc,
        )
    }

    /// Runs a command on a ticket (claim, start, resolve, comment, …).
    pub fn command(&self, id: &str, command: &Command, now_ms: u64) -> Result<Ticket, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        run_ticket_command(&tx, id, command, now_ms)?;
        let ticket = load(&tx, id)?.ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        tx.commit()?;
        Ok(ticket)
    }

    /// Returns tickets whose claim ran out to `open` (at most
    /// [`MAX_EXPIRE_BATCH`] per call); answers their ids.
    pub fn expire_claims(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let docs: Vec<String> = {
            let mut statement = tx.prepare(
                "SELECT doc FROM tickets WHERE claim_expires_ms IS NOT NULL AND claim_expires_ms <= ?1
                 AND state IN ('claimed', 'in_progress') ORDER BY number LIMIT ?2",
            )?;
            let rows = statement
                .query_map(params![now_ms as i64, MAX_EXPIRE_BATCH as i64], |row| {
                    row.get(0)
                })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut expired = Vec::new();
        for doc in docs {
            let ticket = parse_doc(&doc)?;
            if let Some(event) = expire_claim(&ticket, now_ms) {
                let id = ticket.id.clone();
                let ticket = apply(Some(ticket), &event, now_ms)
                    .map_err(|error| StoreError::Corrupt(error.0))?;
                record(&tx, now_ms, &id, event.kind(), &to_json(&event)?)?;
                save(&tx, &ticket)?;
                expired.push(id);
            }
        }
        tx.commit()?;
        Ok(expired)
    }

    pub fn get(&self, id: &str) -> Result<Option<Ticket>, StoreError> {
        load(&self.lock(), id)
    }

    /// Tickets by number, filtered (see [`TicketFilter`]).
    pub fn list(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        let conn = self.lock();
        let limit = if filter.limit == 0 {
            MAX_LIST
        } else {
            filter.limit.min(MAX_LIST)
        };
        let mut statement = conn
            .prepare("SELECT doc, state, source FROM tickets WHERE number > ?1 ORDER BY number")?;
        let mut rows = statement.query(params![filter.after_number as i64])?;
        let source = filter.source.map(source_name);
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            if out.len() >= limit {
                break;
            }
            let state: String = row.get(1)?;
            let row_source: String = row.get(2)?;
            let state_ok =
                filter.states.is_empty() || filter.states.iter().any(|s| s.as_str() == state);
            let source_ok = source.as_ref().is_none_or(|wanted| *wanted == row_source);
            if state_ok && source_ok {
                out.push(parse_doc(&row.get::<_, String>(0)?)?);
            }
        }
        Ok(out)
    }

    /// The active members of the incident `owner_id` owns (tickets linked
    /// to it, not yet ended), newest first.
    pub fn members_of(&self, owner_id: &str) -> Result<Vec<Ticket>, StoreError> {
        let conn = self.lock();
        Ok(active_tickets(&conn)?
            .into_iter()
            .filter(|ticket| ticket.incident.as_deref() == Some(owner_id))
            .collect())
    }

    /// Incidents with members, newest owner first (at most `limit`): each
    /// owner with its state and causes, and its members.
    pub fn incidents(&self, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let conn = self.lock();
        let mut statement = conn.prepare(
            "SELECT doc FROM tickets WHERE json_extract(doc, '$.incident') IS NOT NULL
             ORDER BY number DESC LIMIT ?1",
        )?;
        let docs: Vec<String> = statement
            .query_map(params![MAX_LIST as i64], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let members: Vec<Ticket> = docs
            .iter()
            .map(|doc| parse_doc(doc))
            .collect::<Result<_, _>>()?;
        let mut incidents = group_incidents(&conn, &members)?;
        incidents.sort_by_key(|incident| {
            std::cmp::Reverse(crate::tickets::ticket_number(&incident.owner.id))
        });
        incidents.truncate(limit);
        Ok(incidents)
    }

    /// The most urgent open ticket (priority, then age): what an agent
    /// picks next.
    pub fn next_open(&self) -> Result<Option<Ticket>, StoreError> {
        self.next_open_matching(&[], &|_| false)
    }

    /// The most urgent open ticket from one of `sources` (all when empty)
    /// whose fingerprint is not in `skip`: what `POST /v1/agent/claim`
    /// hands out.
    pub fn next_open_matching(
        &self,
        sources: &[Source],
        skip: &dyn Fn(&Ticket) -> bool,
    ) -> Result<Option<Ticket>, StoreError> {
        let conn = self.lock();
        let mut statement = conn.prepare(
            "SELECT doc FROM tickets WHERE state = 'open' ORDER BY priority_rank, number LIMIT ?1",
        )?;
        let mut rows = statement.query(params![MAX_LIST as i64])?;
        while let Some(row) = rows.next()? {
            let ticket = parse_doc(&row.get::<_, String>(0)?)?;
            if (sources.is_empty() || sources.contains(&ticket.source))
                && !skip(&ticket)
                && !owned_elsewhere(&conn, &ticket)?
            {
                return Ok(Some(ticket));
            }
        }
        Ok(None)
    }

    /// Records a decision about a ticket that changes no stored document
    /// (a proposal refused before it entered the pipeline): its ledger
    /// entry and trajectory step.
    pub fn record_event(
        &self,
        subject: &str,
        kind: &str,
        data: &serde_json::Value,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        record(&tx, now_ms, subject, kind, data)?;
        tx.commit()?;
        Ok(())
    }
}
