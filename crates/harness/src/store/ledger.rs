//! The append-only, hash-chained ledger.
//!
//! Every ticket event is one ledger entry, written in the same SQLite
//! transaction as the ticket row it changes; so is every notice event
//! (`notice.created`, `notice.expired`, `notice.suppressed`,
//! `notice.exceeded`: [`crate::tickets::notices::NoticeEvent`]) with its notice row. An entry's *body* is the
//! canonical JSON (keys sorted, no whitespace) of
//! `{seq, time_ms, subject, kind, data}`, and its hash is
//! `sha256(prev_hash ‖ "\n" ‖ body)` in hex; the first entry's `prev_hash`
//! is [`GENESIS_HASH`]. The newest seq and hash are also kept in the
//! `meta` table (the *head*).
//!
//! [`verify`] re-reads everything and checks, in order: seqs run 1, 2, 3…;
//! each `prev_hash` is the previous entry's hash; each hash recomputes; each
//! body is canonical and agrees with its row's columns; the head matches the
//! last entry; replaying the ticket events rebuilds exactly the tickets
//! table (so an edited ticket row is caught as well as an edited entry),
//! and replaying the notice events exactly the notices table; and
//! the idempotency keys match the ones the entries recorded. Any edit, insert,
//! deletion or reordering short of rewriting the whole chain from the edit
//! onwards *and* the head is detected; comparing the head hash with one
//! recorded elsewhere (`VerifyReport::head_hash`) catches even that.

use crate::store::{open_connection, StoreError, GENESIS_HASH};
use crate::tickets::notices::{self, Notice, NoticeEvent};
use crate::tickets::{apply, Ticket, TicketEvent};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// The most entries one page of the ledger answers.
pub const MAX_PAGE: usize = 1000;

/// One ledger entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerEntry {
    pub seq: u64,
    pub time_ms: u64,
    /// What the entry is about (a ticket id).
    pub subject: String,
    /// `ticket.created`, `ticket.transitioned`, …
    pub kind: String,
    pub data: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// JSON with object keys sorted at every level and no whitespace: the one
/// spelling of a value that is hashed.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            out.push('{');
            let sorted: BTreeMap<&String, &serde_json::Value> = map.iter().collect();
            for (index, (key, item)) in sorted.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key).unwrap_or_default());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&serde_json::to_string(scalar).unwrap_or_default()),
    }
}

/// The canonical body of an entry.
pub fn entry_body(
    seq: u64,
    time_ms: u64,
    subject: &str,
    kind: &str,
    data: &serde_json::Value,
) -> String {
    canonical_json(&serde_json::json!({
        "seq": seq,
        "time_ms": time_ms,
        "subject": subject,
        "kind": kind,
        "data": data,
    }))
}

/// `sha256(prev_hash ‖ "\n" ‖ body)`, hex.
pub fn chain_hash(prev_hash: &str, body: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(body.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Appends one entry inside the caller's transaction; answers it.
pub(crate) fn append(
    tx: &rusqlite::Transaction<'_>,
    time_ms: u64,
    subject: &str,
    kind: &str,
    data: &serde_json::Value,
) -> Result<LedgerEntry, StoreError> {
    let (head_seq, head_hash) = head(tx)?;
    let seq = head_seq + 1;
    let body = entry_body(seq, time_ms, subject, kind, data);
    let hash = chain_hash(&head_hash, &body);
    tx.execute(
        "INSERT INTO ledger (seq, time_ms, subject, kind, body, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![seq as i64, time_ms as i64, subject, kind, body, head_hash, hash],
    )?;
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'head_seq'",
        params![seq.to_string()],
    )?;
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'head_hash'",
        params![hash],
    )?;
    Ok(LedgerEntry {
        seq,
        time_ms,
        subject: subject.to_owned(),
        kind: kind.to_owned(),
        data: data.clone(),
        prev_hash: head_hash,
        hash,
    })
}

/// The head: the newest seq (0 when empty) and its hash.
pub(crate) fn head(conn: &rusqlite::Connection) -> Result<(u64, String), StoreError> {
    let read = |key: &str| -> Result<Option<String>, StoreError> {
        Ok(conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()?)
    };
    let seq = read("head_seq")?
        .ok_or_else(|| StoreError::Corrupt("meta has no head_seq".into()))?
        .parse::<u64>()
        .map_err(|_| StoreError::Corrupt("meta head_seq is not a number".into()))?;
    let hash =
        read("head_hash")?.ok_or_else(|| StoreError::Corrupt("meta has no head_hash".into()))?;
    Ok((seq, hash))
}

fn row_to_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<(LedgerEntry, String)> {
    let body: String = row.get(4)?;
    let data = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value.get("data").cloned())
        .unwrap_or(serde_json::Value::Null);
    Ok((
        LedgerEntry {
            seq: row.get::<_, i64>(0)? as u64,
            time_ms: row.get::<_, i64>(1)? as u64,
            subject: row.get(2)?,
            kind: row.get(3)?,
            data,
            prev_hash: row.get(5)?,
            hash: row.get(6)?,
        },
        body,
    ))
}

/// Entries with seq > `after`, oldest first, at most `limit` (capped at
/// [`MAX_PAGE`]).
pub(crate) fn page(
    conn: &rusqlite::Connection,
    after: u64,
    limit: usize,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let mut statement = conn.prepare(
        "SELECT seq, time_ms, subject, kind, body, prev_hash, hash FROM ledger WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = statement.query_map(
        params![after as i64, limit.min(MAX_PAGE) as i64],
        row_to_entry,
    )?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.0);
    }
    Ok(out)
}

/// Entries about one subject, oldest first (at most [`MAX_PAGE`]).
pub(crate) fn history(
    conn: &rusqlite::Connection,
    subject: &str,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let mut statement = conn.prepare(
        "SELECT seq, time_ms, subject, kind, body, prev_hash, hash FROM ledger WHERE subject = ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = statement.query_map(params![subject, MAX_PAGE as i64], row_to_entry)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.0);
    }
    Ok(out)
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub tickets: u64,
    /// Expected-change notices, each rebuilt from its entries.
    pub notices: u64,
    pub head_seq: u64,
    /// Record this elsewhere to detect a rewrite of the whole chain later.
    pub head_hash: String,
}

/// A failed verification: the first problem found, with the entry (seq) or
/// ticket it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The data directory or database could not be read.
    Unreadable(String),
    /// The ledger or the tickets table was altered.
    Tampered { seq: Option<u64>, message: String },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Unreadable(message) => write!(f, "cannot read the ledger: {message}"),
            VerifyError::Tampered {
                seq: Some(seq),
                message,
            } => write!(f, "ledger entry {seq}: {message}"),
            VerifyError::Tampered { seq: None, message } => write!(f, "ledger: {message}"),
        }
    }
}

impl std::error::Error for VerifyError {}

fn tampered(seq: Option<u64>, message: impl Into<String>) -> VerifyError {
    VerifyError::Tampered {
        seq,
        message: message.into(),
    }
}

/// The rows `sql` answers (`id`, `doc`, then the indexed columns
/// `columns_agree` reads) must be exactly the `replayed` documents of
/// `what`: each row's document its replay, its columns agreeing, none
/// missing, none extra. Answers how many rows there are.
fn check_table<T: serde::Serialize>(
    conn: &rusqlite::Connection,
    what: &str,
    sql: &str,
    replayed: &BTreeMap<String, T>,
    columns_agree: impl Fn(&rusqlite::Row<'_>, &T) -> rusqlite::Result<bool>,
) -> Result<u64, VerifyError> {
    let unreadable = |error: rusqlite::Error| VerifyError::Unreadable(error.to_string());
    let mut statement = conn.prepare(sql).map_err(unreadable)?;
    let mut rows = statement.query([]).map_err(unreadable)?;
    let mut seen = BTreeSet::new();
    while let Some(row) = rows.next().map_err(unreadable)? {
        let id: String = row.get(0).map_err(unreadable)?;
        let doc: String = row.get(1).map_err(unreadable)?;
        let Some(item) = replayed.get(&id) else {
            return Err(tampered(
                None,
                format!("{what} {id} has no history in the ledger"),
            ));
        };
        let stored: serde_json::Value = serde_json::from_str(&doc)
            .map_err(|_| tampered(None, format!("{what} {id}: the row is not JSON")))?;
        let expected = serde_json::to_value(item).unwrap_or(serde_json::Value::Null);
        if canonical_json(&stored) != canonical_json(&expected)
            || !columns_agree(row, item).map_err(unreadable)?
        {
            return Err(tampered(
                None,
                format!("{what} {id} differs from its ledger history"),
            ));
        }
        seen.insert(id);
    }
    if let Some(missing) = replayed.keys().find(|id| !seen.contains(*id)) {
        return Err(tampered(
            None,
            format!("{what} {missing} is in the ledger but not in the {what}s table"),
        ));
    }
    Ok(seen.len() as u64)
}

/// Verifies the ledger and the tickets table under `data_dir` (read-only).
pub fn verify(data_dir: &Path) -> Result<VerifyReport, VerifyError> {
    let conn = open_connection(data_dir, true)
        .map_err(|error| VerifyError::Unreadable(error.to_string()))?;
    let unreadable = |error: rusqlite::Error| VerifyError::Unreadable(error.to_string());
    let mut statement = conn
        .prepare(
            "SELECT seq, time_ms, subject, kind, body, prev_hash, hash FROM ledger ORDER BY seq",
        )
        .map_err(unreadable)?;
    let mut rows = statement.query([]).map_err(unreadable)?;
    let mut expected_seq = 1u64;
    let mut previous_hash = GENESIS_HASH.to_owned();
    let mut tickets: BTreeMap<String, Ticket> = BTreeMap::new();
    let mut notices: BTreeMap<String, Notice> = BTreeMap::new();
    let mut intake_keys: BTreeMap<String, String> = BTreeMap::new();
    while let Some(row) = rows.next().map_err(unreadable)? {
        let (entry, body) = row_to_entry(row).map_err(unreadable)?;
        let seq = Some(entry.seq);
        if entry.seq != expected_seq {
            return Err(tampered(
                seq,
                format!("expected seq {expected_seq}: an entry is missing or inserted"),
            ));
        }
        if entry.prev_hash != previous_hash {
            return Err(tampered(seq, "prev_hash is not the previous entry's hash"));
        }
        if chain_hash(&entry.prev_hash, &body) != entry.hash {
            return Err(tampered(seq, "the hash does not match the entry's content"));
        }
        let parsed: serde_json::Value =
            serde_json::from_str(&body).map_err(|_| tampered(seq, "the body is not JSON"))?;
        if canonical_json(&parsed) != body {
            return Err(tampered(seq, "the body is not in canonical form"));
        }
        let expected_body = entry_body(
            entry.seq,
            entry.time_ms,
            &entry.subject,
            &entry.kind,
            &entry.data,
        );
        if expected_body != body {
            return Err(tampered(
                seq,
                "the row's columns disagree with its hashed body",
            ));
        }
        if entry.kind.starts_with("ticket.") {
            let event: TicketEvent = serde_json::from_value(entry.data.clone())
                .map_err(|error| tampered(seq, format!("not a ticket event: {error}")))?;
            if event.kind() != entry.kind {
                return Err(tampered(seq, "kind disagrees with the event"));
            }
            if let Some(key) = event.intake_key() {
                if intake_keys
                    .insert(key.to_owned(), entry.subject.clone())
                    .is_some()
                {
                    return Err(tampered(seq, "an intake key is used twice"));
                }
            }
            let current = tickets.remove(&entry.subject);
            let next =
                apply(current, &event, entry.time_ms).map_err(|error| tampered(seq, error.0))?;
            if next.id != entry.subject {
                return Err(tampered(seq, "the subject is not the ticket's id"));
            }
            tickets.insert(entry.subject.clone(), next);
        }
        if entry.kind.starts_with("notice.") {
            let event: NoticeEvent = serde_json::from_value(entry.data.clone())
                .map_err(|error| tampered(seq, format!("not a notice event: {error}")))?;
            if event.kind() != entry.kind {
                return Err(tampered(seq, "kind disagrees with the event"));
            }
            let current = notices.remove(&entry.subject);
            let next = notices::apply(current, &event, entry.time_ms)
                .map_err(|error| tampered(seq, error))?;
            if next.id != entry.subject {
                return Err(tampered(seq, "the subject is not the notice's id"));
            }
            notices.insert(entry.subject.clone(), next);
        }
        previous_hash = entry.hash;
        expected_seq += 1;
    }
    drop(rows);
    drop(statement);
    let entries = expected_seq - 1;
    let (head_seq, head_hash) = head(&conn).map_err(|error| tampered(None, error.to_string()))?;
    if head_seq != entries || head_hash != previous_hash {
        return Err(tampered(
            None,
            format!("the head (seq {head_seq}) does not match the last entry (seq {entries}): entries were removed or added"),
        ));
    }
    // The tickets and notices tables must be exactly the replay.
    let ticket_rows = check_table(
        &conn,
        "ticket",
        "SELECT id, doc, state, fingerprint FROM tickets ORDER BY number",
        &tickets,
        |row, ticket| {
            Ok(row.get::<_, String>(2)? == ticket.state.as_str()
                && row.get::<_, String>(3)? == ticket.fingerprint)
        },
    )?;
    let notices_kept: bool = conn
        .query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'notices'",
            [],
            |row| row.get(0),
        )
        .map_err(unreadable)?;
    // A data directory from before notices has no table, and no entries.
    let notice_rows = check_table(
        &conn,
        "notice",
        if notices_kept {
            "SELECT id, doc, end_ms FROM notices ORDER BY number"
        } else {
            "SELECT '', '', 0 WHERE 0"
        },
        &notices,
        |row, notice| Ok(row.get::<_, i64>(2)?.max(0) as u64 == notice.end_ms()),
    )?;
    let mut statement = conn
        .prepare("SELECT key, ticket_id FROM intake_keys")
        .map_err(unreadable)?;
    let mut rows = statement.query([]).map_err(unreadable)?;
    let mut stored_keys = BTreeMap::new();
    while let Some(row) = rows.next().map_err(unreadable)? {
        stored_keys.insert(
            row.get::<_, String>(0).map_err(unreadable)?,
            row.get::<_, String>(1).map_err(unreadable)?,
        );
    }
    if stored_keys != intake_keys {
        return Err(tampered(
            None,
            "the intake keys differ from the ones the ledger recorded",
        ));
    }
    Ok(VerifyReport {
        entries,
        tickets: ticket_rows,
        notices: notice_rows,
        head_seq,
        head_hash,
    })
}

impl crate::store::Store {
    /// A ticket's ledger entries, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        history(&self.lock(), id)
    }

    /// Ledger entries after `after_seq` (paging `GET /v1/ledger?after=SEQ`).
    pub fn ledger_page(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        page(&self.lock(), after_seq, limit)
    }

    /// The newest ledger seq and hash.
    pub fn head(&self) -> Result<(u64, String), StoreError> {
        head(&self.lock())
    }
}
