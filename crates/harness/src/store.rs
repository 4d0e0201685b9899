//! The durable ticket queue: SQLite under the data directory.
//!
//! - One file, `harness.sqlite3`, in WAL mode with `synchronous=FULL`: a
//!   call that returned `Ok` has its transaction's WAL frames fsynced, so
//!   it survives `kill -9` and power loss alike.
//! - Every change is one `BEGIN IMMEDIATE` transaction that updates the
//!   ticket row *and* appends its events to the ledger ([`crate::ledger`]),
//!   so the two never disagree, whatever the moment of a crash.
//! - The ledger table refuses `UPDATE` and `DELETE` (triggers); `verify`
//!   detects edits made around them.
//! - One process owns a data directory; calls are serialized by a mutex
//!   over one connection (SQLite's own locking refuses a second writer).
//!
//! Store calls are blocking (a few hundred microseconds to a few
//! milliseconds, bound by fsync): call them from a blocking thread in async
//! code.

use crate::ledger::{self, LedgerEntry, GENESIS_HASH};
use crate::proposal::Proposal;
use crate::tickets::{
    apply, decide, expire_claim, new_ticket, plan_intake, ticket_id, Command, IntakePlan,
    IntakePolicy, NewTicket, Source, Ticket, TicketEvent, TicketState, TransitionError,
    MAX_FINGERPRINT_BYTES,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The database file inside the data directory.
pub const DB_FILE: &str = "harness.sqlite3";
/// The schema this code writes; a database with another is refused.
pub const SCHEMA_VERSION: &str = "1";
/// The most tickets one list answers.
pub const MAX_LIST: usize = 1000;
/// The most claims one `expire_claims` call expires (the rest wait for the
/// next tick).
pub const MAX_EXPIRE_BATCH: usize = 256;
/// The longest idempotency key.
pub const MAX_INTAKE_KEY_BYTES: usize = 256;
/// How long a call waits for SQLite's lock (another process reading).
pub const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Why a store call failed.
#[derive(Debug)]
pub enum StoreError {
    /// SQLite or the file system failed (retrying may help: see
    /// [`StoreError::is_transient`]).
    Sqlite(rusqlite::Error),
    Io(std::io::Error),
    NotFound(String),
    Transition(TransitionError),
    /// A bad argument (an empty fingerprint, an over-long key).
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The database is not what this code wrote.
    Corrupt(String),
}

impl StoreError {
    /// Whether retrying later may help (a busy database, a full disk).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Sqlite(_) | StoreError::Io(_))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sqlite(error) => write!(f, "sqlite: {error}"),
            StoreError::Io(error) => write!(f, "data directory: {error}"),
            StoreError::NotFound(id) => write!(f, "no ticket {id}"),
            StoreError::Transition(error) => write!(f, "{error}"),
            StoreError::Invalid { field, message } => write!(f, "{field}: {message}"),
            StoreError::Corrupt(message) => {
                write!(f, "the database is not a harness store: {message}")
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Sqlite(error)
    }
}

impl From<TransitionError> for StoreError {
    fn from(error: TransitionError) -> Self {
        StoreError::Transition(error)
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tickets (
    number           INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    fingerprint      TEXT NOT NULL,
    state            TEXT NOT NULL,
    source           TEXT NOT NULL,
    priority_rank    INTEGER NOT NULL,
    claim_expires_ms INTEGER,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    doc              TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_by_fingerprint ON tickets (fingerprint, number);
CREATE INDEX IF NOT EXISTS tickets_by_state ON tickets (state, priority_rank, number);
CREATE INDEX IF NOT EXISTS tickets_by_claim ON tickets (claim_expires_ms) WHERE claim_expires_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS ledger (
    seq       INTEGER PRIMARY KEY,
    time_ms   INTEGER NOT NULL,
    subject   TEXT NOT NULL,
    kind      TEXT NOT NULL,
    body      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_by_subject ON ledger (subject, seq);
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TABLE IF NOT EXISTS proposals (
    number     INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    ticket_id  TEXT NOT NULL,
    stage      TEXT NOT NULL,
    terminal   INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS proposals_by_ticket ON proposals (ticket_id, number);
CREATE INDEX IF NOT EXISTS proposals_active ON proposals (terminal, number);
CREATE TABLE IF NOT EXISTS intake_keys (
    key       TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL,
    time_ms   INTEGER NOT NULL
);
";

/// Opens (and for writing, creates) the database of a data directory.
pub(crate) fn open_connection(data_dir: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let path = data_dir.join(DB_FILE);
    let conn = if read_only {
        if !path.exists() {
            return Err(StoreError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} does not exist", path.display()),
            )));
        }
        Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?
    } else {
        std::fs::create_dir_all(data_dir).map_err(StoreError::Io)?;
        let conn = Connection::open(&path)?;
        // WAL: readers never block the writer; FULL: fsync the WAL on every
        // commit, so an acknowledged write survives kill -9 and power loss.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "journal_mode is {mode}, not wal"
            )));
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        conn
    };
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    Ok(conn)
}

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

/// The ticket queue.
pub struct Store {
    /// One connection: SQLite serializes writers anyway, and one connection
    /// keeps every call's view consistent.
    conn: Mutex<Connection>,
    policy: IntakePolicy,
    data_dir: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

fn source_name(source: Source) -> String {
    serde_json::to_value(source)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Store {
    /// Opens the store of a data directory, creating it if needed.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let conn = open_connection(data_dir, false)?;
        conn.execute_batch(SCHEMA)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        match version {
            None => {
                conn.execute_batch(&format!(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
                     INSERT INTO meta (key, value) VALUES ('next_number', '1');
                     INSERT INTO meta (key, value) VALUES ('head_seq', '0');
                     INSERT INTO meta (key, value) VALUES ('head_hash', '{GENESIS_HASH}');"
                ))?;
            }
            Some(version) if version == SCHEMA_VERSION => {}
            Some(version) => {
                return Err(StoreError::Corrupt(format!(
                    "schema version {version}, this build reads {SCHEMA_VERSION}"
                )))
            }
        }
        Ok(Store {
            conn: Mutex::new(conn),
            policy: IntakePolicy::default(),
            data_dir: data_dir.to_owned(),
        })
    }

    /// Replaces the dedup and reopen policy.
    pub fn with_policy(mut self, policy: IntakePolicy) -> Store {
        self.policy = policy;
        self
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written
        // transaction (it rolls back on drop), so the connection is usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

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
        if let Some(key) = intake_key {
            let seen: Option<String> = tx
                .query_row(
                    "SELECT ticket_id FROM intake_keys WHERE key = ?1",
                    params![key],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(id) = seen {
                let ticket = load(&tx, &id)?
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
        let outcome = match plan_intake(latest.as_ref(), draft, intake_key, &self.policy, now_ms) {
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
                ledger::append(&tx, now_ms, &ticket.id, event.kind(), &to_json(&event)?)?;
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
                for event in &events {
                    ticket = apply(Some(ticket), event, now_ms)
                        .map_err(|error| StoreError::Corrupt(error.0))?;
                    ledger::append(&tx, now_ms, &id, event.kind(), &to_json(event)?)?;
                }
                save(&tx, &ticket)?;
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
        tx.commit()?;
        Ok(outcome)
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
                ledger::append(&tx, now_ms, &id, event.kind(), &to_json(&event)?)?;
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

    /// The most urgent open ticket (priority, then age): what an agent
    /// picks next.
    pub fn next_open(&self) -> Result<Option<Ticket>, StoreError> {
        let conn = self.lock();
        let doc: Option<String> = conn
            .query_row(
                "SELECT doc FROM tickets WHERE state = 'open' ORDER BY priority_rank, number LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()?;
        doc.map(|doc| parse_doc(&doc)).transpose()
    }

    /// A ticket's ledger entries, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        ledger::history(&self.lock(), id)
    }

    /// Ledger entries after `after_seq` (paging `GET /v1/ledger?after=SEQ`).
    pub fn ledger_page(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        ledger::page(&self.lock(), after_seq, limit)
    }

    /// The newest ledger seq and hash.
    pub fn head(&self) -> Result<(u64, String), StoreError> {
        ledger::head(&self.lock())
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
            if (sources.is_empty() || sources.contains(&ticket.source)) && !skip(&ticket) {
                return Ok(Some(ticket));
            }
        }
        Ok(None)
    }

    /// Stores a new proposal (its id assigned here), appends
    /// `proposal.created` to the ledger under the ticket, and runs
    /// `ticket_command` on the ticket, all in one transaction. A refused
    /// command refuses the whole call.
    pub fn create_proposal(
        &self,
        proposal: &Proposal,
        ticket_command: Option<&Command>,
        now_ms: u64,
    ) -> Result<Proposal, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if load(&tx, &proposal.ticket_id)?.is_none() {
            return Err(StoreError::NotFound(proposal.ticket_id.clone()));
        }
        let number: u64 = tx
            .query_row(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM proposals",
                [],
                |row| row.get::<_, i64>(0),
            )?
            .try_into()
            .map_err(|_| StoreError::Corrupt("a proposal number is negative".into()))?;
        let mut proposal = proposal.clone();
        proposal.id = format!("P-{number:04}");
        if let Some(command) = ticket_command {
            run_ticket_command(&tx, &proposal.ticket_id, command, now_ms)?;
        }
        let data = serde_json::json!({
            "proposal": proposal.id,
            "agent": proposal.agent,
            "rationale": proposal.rationale,
            "actions": proposal.actions,
        });
        ledger::append(&tx, now_ms, &proposal.ticket_id, "proposal.created", &data)?;
        tx.execute(
            "INSERT INTO proposals (number, id, ticket_id, stage, terminal, updated_ms, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                number as i64,
                proposal.id,
                proposal.ticket_id,
                proposal.stage.as_str(),
                proposal.stage.is_terminal(),
                proposal.updated_ms as i64,
                proposal_doc(&proposal)?,
            ],
        )?;
        tx.commit()?;
        Ok(proposal)
    }

    /// Saves a proposal's new state with its ledger entry (`kind`, `data`,
    /// under the ticket) and, when given, a command on its ticket, in one
    /// transaction. A refused ticket command does not refuse the save: it
    /// is recorded in the ledger entry (`ticket_command_refused`) and
    /// answered, so the pipeline's record never stalls on a ticket a human
    /// moved meanwhile.
    pub fn save_proposal(
        &self,
        proposal: &Proposal,
        kind: &str,
        data: serde_json::Value,
        ticket_command: Option<&Command>,
        now_ms: u64,
    ) -> Result<Option<TransitionError>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut data = data;
        let mut refused = None;
        if let Some(command) = ticket_command {
            match run_ticket_command(&tx, &proposal.ticket_id, command, now_ms) {
                Ok(()) => {}
                Err(StoreError::Transition(error)) => {
                    if let serde_json::Value::Object(map) = &mut data {
                        map.insert(
                            "ticket_command_refused".into(),
                            serde_json::Value::String(error.to_string()),
                        );
                    }
                    refused = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        ledger::append(&tx, now_ms, &proposal.ticket_id, kind, &data)?;
        let changed = tx.execute(
            "UPDATE proposals SET stage = ?2, terminal = ?3, updated_ms = ?4, doc = ?5 WHERE id = ?1",
            params![
                proposal.id,
                proposal.stage.as_str(),
                proposal.stage.is_terminal(),
                proposal.updated_ms as i64,
                proposal_doc(proposal)?,
            ],
        )?;
        if changed != 1 {
            return Err(StoreError::NotFound(proposal.id.clone()));
        }
        tx.commit()?;
        Ok(refused)
    }

    pub fn get_proposal(&self, id: &str) -> Result<Option<Proposal>, StoreError> {
        let conn = self.lock();
        let doc: Option<String> = conn
            .query_row(
                "SELECT doc FROM proposals WHERE id = ?1",
                params![id],
                |row| row.get(0),
            )
            .optional()?;
        doc.map(|doc| parse_proposal(&doc)).transpose()
    }

    /// A ticket's proposals, oldest first.
    pub fn proposals_of(&self, ticket_id: &str) -> Result<Vec<Proposal>, StoreError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare("SELECT doc FROM proposals WHERE ticket_id = ?1 ORDER BY number LIMIT ?2")?;
        let rows = statement.query_map(params![ticket_id, MAX_LIST as i64], |row| {
            row.get::<_, String>(0)
        })?;
        rows.map(|doc| parse_proposal(&doc?)).collect()
    }

    /// Proposals not yet in a terminal stage, oldest first.
    pub fn active_proposals(&self) -> Result<Vec<Proposal>, StoreError> {
        let conn = self.lock();
        let mut statement =
            conn.prepare("SELECT doc FROM proposals WHERE terminal = 0 ORDER BY number LIMIT ?1")?;
        let rows = statement.query_map(params![MAX_LIST as i64], |row| row.get::<_, String>(0))?;
        rows.map(|doc| parse_proposal(&doc?)).collect()
    }

    /// A setting of the harness kept with the queue (`pipeline.paused`).
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![format!("setting:{key}")],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Changes a setting and records it in the ledger (`subject`, `kind`,
    /// `data`) in one transaction.
    pub fn set_setting(
        &self,
        key: &str,
        value: &str,
        subject: &str,
        kind: &str,
        data: &serde_json::Value,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![format!("setting:{key}"), value],
        )?;
        ledger::append(&tx, now_ms, subject, kind, data)?;
        tx.commit()?;
        Ok(())
    }
}

fn to_json(event: &TicketEvent) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(event).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn run_ticket_command(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    command: &Command,
    now_ms: u64,
) -> Result<(), StoreError> {
    let ticket = load(tx, id)?.ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
    let event = decide(&ticket, command, now_ms)?;
    let ticket =
        apply(Some(ticket), &event, now_ms).map_err(|error| StoreError::Corrupt(error.0))?;
    ledger::append(tx, now_ms, id, event.kind(), &to_json(&event)?)?;
    save(tx, &ticket)
}

fn proposal_doc(proposal: &Proposal) -> Result<String, StoreError> {
    serde_json::to_string(proposal).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn parse_proposal(doc: &str) -> Result<Proposal, StoreError> {
    serde_json::from_str(doc)
        .map_err(|error| StoreError::Corrupt(format!("a proposal row is not a proposal: {error}")))
}

fn parse_doc(doc: &str) -> Result<Ticket, StoreError> {
    serde_json::from_str(doc)
        .map_err(|error| StoreError::Corrupt(format!("a ticket row is not a ticket: {error}")))
}

fn claim_expiry(ticket: &Ticket) -> Option<i64> {
    ticket
        .claim
        .as_ref()
        .map(|claim| claim.expires_ms.min(i64::MAX as u64) as i64)
}

fn load(conn: &Connection, id: &str) -> Result<Option<Ticket>, StoreError> {
    let doc: Option<String> = conn
        .query_row(
            "SELECT doc FROM tickets WHERE id = ?1",
            params![id],
            |row| row.get(0),
        )
        .optional()?;
    doc.map(|doc| parse_doc(&doc)).transpose()
}

fn save(tx: &rusqlite::Transaction<'_>, ticket: &Ticket) -> Result<(), StoreError> {
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
