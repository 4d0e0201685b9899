//! One row of each table in and out of its JSON document, inside the
//! caller's transaction: what the repositories and the archive share.

use crate::change::proposal::Proposal;
use crate::store::{load_doc, StoreError, MAX_LIST};
use crate::tickets::notices::Notice;
use crate::tickets::{Source, Ticket};
use rusqlite::{params, Connection};

pub(crate) fn source_name(source: Source) -> String {
    serde_json::to_value(source)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(crate) fn parse_notice(doc: &str) -> Result<Notice, StoreError> {
    serde_json::from_str(doc)
        .map_err(|error| StoreError::Corrupt(format!("a notice row is not a notice: {error}")))
}

pub(crate) fn load_notice(conn: &Connection, id: &str) -> Result<Option<Notice>, StoreError> {
    load_doc(
        conn,
        "SELECT doc FROM notices WHERE id = ?1",
        id,
        parse_notice,
    )
}

pub(crate) fn proposals_in(
    conn: &Connection,
    ticket_id: &str,
) -> Result<Vec<Proposal>, StoreError> {
    let mut statement =
        conn.prepare("SELECT doc FROM proposals WHERE ticket_id = ?1 ORDER BY number LIMIT ?2")?;
    let rows = statement.query_map(params![ticket_id, MAX_LIST as i64], |row| {
        row.get::<_, String>(0)
    })?;
    rows.map(|doc| parse_proposal(&doc?)).collect()
}

pub(crate) fn proposal_doc(proposal: &Proposal) -> Result<String, StoreError> {
    serde_json::to_string(proposal).map_err(|error| StoreError::Corrupt(error.to_string()))
}

pub(crate) fn parse_proposal(doc: &str) -> Result<Proposal, StoreError> {
    serde_json::from_str(doc)
        .map_err(|error| StoreError::Corrupt(format!("a proposal row is not a proposal: {error}")))
}

pub(crate) fn parse_doc(doc: &str) -> Result<Ticket, StoreError> {
    serde_json::from_str(doc)
        .map_err(|error| StoreError::Corrupt(format!("a ticket row is not a ticket: {error}")))
}

pub(crate) fn claim_expiry(ticket: &Ticket) -> Option<i64> {
    ticket
        .claim
        .as_ref()
        .map(|claim| claim.expires_ms.min(i64::MAX as u64) as i64)
}

pub(crate) fn load(conn: &Connection, id: &str) -> Result<Option<Ticket>, StoreError> {
    load_doc(conn, "SELECT doc FROM tickets WHERE id = ?1", id, parse_doc)
}

pub(crate) fn save(tx: &rusqlite::Transaction<'_>, ticket: &Ticket) -> Result<(), StoreError> {
    let changed = tx.execute(
        "UPDATE tickets SET state = ?2, priority_rank = ?3, claim_expires_ms = ?4, updated_ms = ?5, doc = ?6 WHERE id = ?1",
        params![
            ticket.id,
            ticket.state.as_str(),
            i64::from(ticket.priority.rank()),
            claim_expiry(ticket),
            ticket.updated_ms as i64,
            serde_json::to_string(ticket).map_err(|error| StoreError::Corrupt(error.to_string()))?,
        ],
    )?;
    if changed != 1 {
        return Err(StoreError::NotFound(ticket.id.clone()));
    }
    Ok(())
}

/// Active tickets (open, claimed, in progress, verifying), newest first,
/// at most [`MAX_LIST`].
pub(crate) fn active_tickets(conn: &Connection) -> Result<Vec<Ticket>, StoreError> {
    let mut statement = conn.prepare(
        "SELECT doc FROM tickets WHERE state IN ('open', 'claimed', 'in_progress', 'verifying')
         ORDER BY number DESC LIMIT ?1",
    )?;
    let docs: Vec<String> = statement
        .query_map(params![MAX_LIST as i64], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    docs.iter().map(|doc| parse_doc(doc)).collect()
}
