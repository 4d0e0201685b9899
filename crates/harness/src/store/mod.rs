//! The durable ticket queue: SQLite under the data directory.
//!
//! - One file, `harness.sqlite3`, in WAL mode with `synchronous=FULL`: a
//!   call that returned `Ok` has its transaction's WAL frames fsynced, so
//!   it survives `kill -9` and power loss alike.
//! - Every change is one `BEGIN IMMEDIATE` transaction that updates the
//!   ticket row *and* appends its events to the ledger ([`crate::store::ledger`]),
//!   so the two never disagree, whatever the moment of a crash.
//! - The ledger table refuses `UPDATE` and `DELETE` (triggers); `verify`
//!   detects edits made around them.
//! - One process owns a data directory; calls are serialized by a mutex
//!   over one connection (SQLite's own locking refuses a second writer).
//!
//! Store calls are blocking (a few hundred microseconds to a few
//! milliseconds, bound by fsync): call them from a blocking thread in async
//! code.

pub mod ledger;

use crate::change::proposal::{Proposal, Stage};
use crate::learn::reflection::Finding;
use crate::learn::trajectory::{self, Trajectory};
use crate::observe::slo::SloReport;
use crate::report::{
    cut_chars, AppliedItem, ApprovalItem, ChangeItem, EscalatedItem, FindingItem, HelpItem,
    NoticeEffect, NoticeItem, OutcomeCounts, ReportData, SloBudget, StageLine, Waiting,
    MAX_DETAIL_CHARS, MAX_REPORT_ITEMS,
};
use crate::store::ledger::{LedgerEntry, GENESIS_HASH};
use crate::tickets::notices::{self, Notice, NoticeEvent, NoticeState, MAX_LIVE_NOTICES};
use crate::tickets::{
    apply, decide, expire_claim, new_ticket, plan_intake, ticket_id, Command, IntakePlan,
    IntakePolicy, NewTicket, Source, Ticket, TicketEvent, TicketState, TicketType, TransitionError,
    HARNESS_ACTOR, MAX_FINGERPRINT_BYTES,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
/// The observe loop keeps at most one snapshot of each SLO per this much
/// of the injected clock's time (`slo_snapshots`; what a report's budgets
/// over a period read).
pub const SLO_SNAPSHOT_INTERVAL_MS: u64 = 5 * 60_000;
/// Snapshots older than this are deleted when new ones are written: a
/// 30-day SLO window and a few days' margin (at most 10,080 rows per SLO).
pub const SLO_SNAPSHOT_RETENTION_MS: u64 = 35 * 24 * 3_600_000;
/// The most snapshots one [`Store::slo_history`] call answers.
pub const MAX_SLO_HISTORY: usize = 100_000;

/// Why a store call failed.
#[derive(Debug)]
pub enum StoreError {
    /// SQLite or the file system failed (retrying may help: see
    /// [`StoreError::is_transient`]).
    Sqlite(rusqlite::Error),
    Io(std::io::Error),
    NotFound(String),
    /// No such thing of another kind than a ticket (`notice`, …).
    NoSuch {
        what: &'static str,
        id: String,
    },
    /// The call does not apply now (a notice already expired, too many
    /// notices live).
    Conflict {
        field: &'static str,
        message: String,
    },
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
            StoreError::NoSuch { what, id } => write!(f, "no {what} {id}"),
            StoreError::Conflict { field, message } => write!(f, "{field}: {message}"),
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
CREATE TABLE IF NOT EXISTS trajectories (
    ticket_id     TEXT PRIMARY KEY,
    agents        TEXT NOT NULL,
    started_ms    INTEGER NOT NULL,
    initial_state TEXT NOT NULL,
    final_state   TEXT NOT NULL,
    closed_ms     INTEGER,
    outcome       TEXT NOT NULL,
    reward        REAL,
    reward_terms  TEXT
);
CREATE TABLE IF NOT EXISTS trajectory_steps (
    ticket_id TEXT NOT NULL,
    step_id   INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    doc       TEXT NOT NULL,
    PRIMARY KEY (ticket_id, step_id)
);
CREATE TABLE IF NOT EXISTS slo_snapshots (
    name                   TEXT NOT NULL,
    time_ms                INTEGER NOT NULL,
    sli                    REAL,
    error_budget_remaining REAL,
    firing                 TEXT,
    burn_rates             TEXT NOT NULL,
    PRIMARY KEY (name, time_ms)
);
CREATE INDEX IF NOT EXISTS slo_snapshots_by_time ON slo_snapshots (time_ms);
CREATE TABLE IF NOT EXISTS notices (
    number     INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    starts_ms  INTEGER NOT NULL,
    end_ms     INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_by_end ON notices (end_ms, number);
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

/// Which notices a list answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoticeFilter {
    /// Only notices in this state at the list's time (`None`: all).
    pub state: Option<NoticeState>,
    /// Only notices numbered above this (paging).
    pub after_number: u64,
    /// At most this many (capped at [`MAX_LIST`]; 0 means the cap).
    pub limit: usize,
}

/// One SLO at one moment, as the observe loop keeps it for reports
/// (`slo_snapshots`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloSnapshot {
    pub time_ms: u64,
    pub name: String,
    pub sli: Option<f64>,
    /// Fraction of the error budget left (negative when overspent).
    pub error_budget_remaining: Option<f64>,
    /// The loudest severity firing (`page`, `ticket`), if any.
    pub firing: Option<String>,
    /// `[{"window": "5m", "burn_rate": 0.4}, …]`, shortest window first.
    pub burn_rates: serde_json::Value,
}

impl SloSnapshot {
    /// The snapshot of an SLO's report at `time_ms`.
    pub fn of(report: &SloReport, time_ms: u64) -> SloSnapshot {
        let burn_rates = report
            .burn_rates
            .iter()
            .map(|burn| {
                serde_json::json!({
                    "window": burn.window,
                    "burn_rate": burn.burn_rate.filter(|rate| rate.is_finite()),
                })
            })
            .collect();
        SloSnapshot {
            time_ms,
            name: report.name.clone(),
            sli: report.sli.filter(|sli| sli.is_finite()),
            error_budget_remaining: report
                .error_budget_remaining
                .filter(|budget| budget.is_finite()),
            firing: report.firing.and_then(|severity| {
                serde_json::to_value(severity)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_owned))
            }),
            burn_rates: serde_json::Value::Array(burn_rates),
        }
    }
}

/// The ticket queue.
pub struct Store {
    /// One connection: SQLite serializes writers anyway, and one connection
    /// keeps every call's view consistent.
    conn: Mutex<Connection>,
    policy: IntakePolicy,
    data_dir: PathBuf,
    /// A ticket was reopened (a fixed problem came back) since the last
    /// [`Store::take_reopened`]: reflection looks at once (ADR 0026).
    reopened: std::sync::atomic::AtomicBool,
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
            reopened: std::sync::atomic::AtomicBool::new(false),
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
            if (sources.is_empty() || sources.contains(&ticket.source))
                && !skip(&ticket)
                && !owned_elsewhere(&conn, &ticket)?
            {
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
        let number = next_number(&tx, "proposals")?;
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
        record(&tx, now_ms, &proposal.ticket_id, "proposal.created", &data)?;
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
        record(&tx, now_ms, &proposal.ticket_id, kind, &data)?;
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
        load_doc(
            &self.lock(),
            "SELECT doc FROM proposals WHERE id = ?1",
            id,
            parse_proposal,
        )
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

    /// Keeps SLO snapshots, each unless its SLO has one younger than
    /// [`SLO_SNAPSHOT_INTERVAL_MS`] (by the snapshots' own times: the
    /// injected clock's), and deletes those older than
    /// [`SLO_SNAPSHOT_RETENTION_MS`] before the newest, in one
    /// transaction. Answers how many were written.
    pub fn record_slo_snapshots(&self, snapshots: &[SloSnapshot]) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut written = 0;
        let mut newest = 0;
        for snapshot in snapshots {
            let last: Option<i64> = tx.query_row(
                "SELECT MAX(time_ms) FROM slo_snapshots WHERE name = ?1",
                params![snapshot.name],
                |row| row.get(0),
            )?;
            let due = last.is_none_or(|last| {
                snapshot.time_ms >= (last.max(0) as u64).saturating_add(SLO_SNAPSHOT_INTERVAL_MS)
            });
            if !due {
                continue;
            }
            tx.execute(
                "INSERT INTO slo_snapshots (name, time_ms, sli, error_budget_remaining, firing, burn_rates)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    snapshot.name,
                    snapshot.time_ms.min(i64::MAX as u64) as i64,
                    snapshot.sli,
                    snapshot.error_budget_remaining,
                    snapshot.firing,
                    to_text(&snapshot.burn_rates)?,
                ],
            )?;
            written += 1;
            newest = newest.max(snapshot.time_ms);
        }
        if written > 0 {
            let horizon = newest.saturating_sub(SLO_SNAPSHOT_RETENTION_MS);
            tx.execute(
                "DELETE FROM slo_snapshots WHERE time_ms < ?1",
                params![horizon.min(i64::MAX as u64) as i64],
            )?;
        }
        tx.commit()?;
        Ok(written)
    }

    /// SLO snapshots taken at or after `since_ms`, oldest first (then by
    /// name), at most [`MAX_SLO_HISTORY`].
    pub fn slo_history(&self, since_ms: u64) -> Result<Vec<SloSnapshot>, StoreError> {
        let conn = self.lock();
        let mut out = Vec::new();
        for_each_slo_snapshot(
            &conn,
            "time_ms, name",
            since_ms,
            u64::MAX,
            MAX_SLO_HISTORY,
            |snapshot| out.push(snapshot),
        )?;
        Ok(out)
    }

    /// The human review of the period from `since_ms` to `now_ms` (see
    /// [`ReportData::load`]).
    pub fn report(&self, since_ms: u64, now_ms: u64) -> Result<ReportData, StoreError> {
        ReportData::load(&self.lock(), since_ms, now_ms)
    }

    // ---- expected-change notices (crate::tickets::notices, ADR 0011) ---------------

    /// Stores a new notice (validated by [`crate::tickets::notices::NoticeDraft::validate`];
    /// its id assigned here) with its `notice.created` ledger entry, in one
    /// transaction. Refused when [`MAX_LIVE_NOTICES`] notices are not yet
    /// expired at `now_ms`.
    pub fn create_notice(&self, notice: &Notice, now_ms: u64) -> Result<Notice, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let live: i64 = tx.query_row(
            "SELECT COUNT(*) FROM notices WHERE end_ms > ?1",
            params![to_sql_ms(now_ms)],
            |row| row.get(0),
        )?;
        if live.max(0) as usize >= MAX_LIVE_NOTICES {
            return Err(StoreError::Conflict {
                field: "notices",
                message: format!(
                    "{MAX_LIVE_NOTICES} notices are not yet expired: expire one before announcing another"
                ),
            });
        }
        let number = next_number(&tx, "notices")?;
        let mut notice = notice.clone();
        notice.id = notices::notice_id(number);
        let event = NoticeEvent::Created {
            notice: Box::new(notice.clone()),
        };
        record(&tx, now_ms, &notice.id, event.kind(), &to_value(&event)?)?;
        tx.execute(
            "INSERT INTO notices (number, id, starts_ms, end_ms, created_ms, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                number as i64,
                notice.id,
                to_sql_ms(notice.starts_ms),
                to_sql_ms(notice.end_ms()),
                to_sql_ms(notice.created_ms),
                to_text(&notice)?,
            ],
        )?;
        tx.commit()?;
        Ok(notice)
    }

    pub fn get_notice(&self, id: &str) -> Result<Option<Notice>, StoreError> {
        load_notice(&self.lock(), id)
    }

    /// Notices by number, filtered by their state at `now_ms`.
    pub fn list_notices(
        &self,
        filter: &NoticeFilter,
        now_ms: u64,
    ) -> Result<Vec<Notice>, StoreError> {
        let conn = self.lock();
        let limit = if filter.limit == 0 {
            MAX_LIST
        } else {
            filter.limit.min(MAX_LIST)
        };
        let now = to_sql_ms(now_ms);
        let condition = match filter.state {
            None => "1",
            Some(NoticeState::Pending) => "starts_ms > ?2 AND end_ms > ?2",
            Some(NoticeState::Active) => "starts_ms <= ?2 AND end_ms > ?2",
            Some(NoticeState::Expired) => "end_ms <= ?2",
        };
        let mut statement = conn.prepare(&format!(
            "SELECT doc FROM notices WHERE number > ?1 AND {condition} ORDER BY number LIMIT ?3"
        ))?;
        let rows = statement.query_map(
            params![
                filter.after_number.min(i64::MAX as u64) as i64,
                now,
                limit as i64
            ],
            |row| row.get::<_, String>(0),
        )?;
        rows.map(|doc| parse_notice(&doc?)).collect()
    }

    /// The notices not yet expired at `now_ms` (pending or active), oldest
    /// first, at most [`MAX_LIVE_NOTICES`]: what each tick matches.
    pub fn live_notices(&self, now_ms: u64) -> Result<Vec<Notice>, StoreError> {
        let conn = self.lock();
        let mut statement =
            conn.prepare("SELECT doc FROM notices WHERE end_ms > ?1 ORDER BY number LIMIT ?2")?;
        let rows = statement
            .query_map(params![to_sql_ms(now_ms), MAX_LIVE_NOTICES as i64], |row| {
                row.get::<_, String>(0)
            })?;
        rows.map(|doc| parse_notice(&doc?)).collect()
    }

    /// Expires a notice before its end (pending or active) with its
    /// `notice.expired` entry; a notice already expired is refused.
    pub fn expire_notice(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Notice, StoreError> {
        let event = NoticeEvent::Expired {
            actor: actor.to_owned(),
            reason: reason.to_owned(),
        };
        self.change_notice(id, &event, now_ms)
    }

    /// Records what a notice did to an anomaly episode
    /// ([`NoticeEvent::Suppressed`] or [`NoticeEvent::Exceeded`]): its
    /// ledger entry and counter, in one transaction.
    pub fn record_notice_event(
        &self,
        id: &str,
        event: &NoticeEvent,
        now_ms: u64,
    ) -> Result<Notice, StoreError> {
        if !matches!(
            event,
            NoticeEvent::Suppressed { .. } | NoticeEvent::Exceeded { .. }
        ) {
            return Err(StoreError::Invalid {
                field: "event",
                message: format!("{} is not recorded this way", event.kind()),
            });
        }
        self.change_notice(id, event, now_ms)
    }

    /// Applies `event` to a notice with its ledger entry, in one
    /// transaction; an event that cannot happen (expiring an expired
    /// notice) is refused.
    fn change_notice(
        &self,
        id: &str,
        event: &NoticeEvent,
        now_ms: u64,
    ) -> Result<Notice, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let notice = load_notice(&tx, id)?.ok_or_else(|| StoreError::NoSuch {
            what: "notice",
            id: id.to_owned(),
        })?;
        let notice = apply_notice(&tx, notice, event, now_ms)?;
        tx.commit()?;
        Ok(notice)
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

    /// Changes a setting without a ledger entry (bookkeeping that records
    /// no decision: reflection's counters).
    pub fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![format!("setting:{key}"), value],
        )?;
        Ok(())
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
        record(&tx, now_ms, subject, kind, data)?;
        tx.commit()?;
        Ok(())
    }
}

/// Members grouped under their owners (loaded), in the members' order; a
/// member whose owner is gone is left out.
fn group_incidents(conn: &Connection, members: &[Ticket]) -> Result<Vec<Incident>, StoreError> {
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

fn to_json(event: &TicketEvent) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(event).map_err(|error| StoreError::Corrupt(error.to_string()))
}

/// Appends a ledger entry and, when it is about a ticket an agent has
/// worked, the trajectory step it makes — in the caller's transaction, so
/// the trajectory is written as the work happens and never disagrees with
/// the ledger.
fn record(
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

/// The number the next row of `table` (`proposals`, `notices`) gets.
fn next_number(tx: &rusqlite::Transaction<'_>, table: &'static str) -> Result<u64, StoreError> {
    tx.query_row(
        &format!("SELECT COALESCE(MAX(number), 0) + 1 FROM {table}"),
        [],
        |row| row.get::<_, i64>(0),
    )?
    .try_into()
    .map_err(|_| StoreError::Corrupt(format!("a number of {table} is negative")))
}

fn to_sql_ms(ms: u64) -> i64 {
    ms.min(i64::MAX as u64) as i64
}

fn to_value(value: &impl Serialize) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn parse_notice(doc: &str) -> Result<Notice, StoreError> {
    serde_json::from_str(doc)
        .map_err(|error| StoreError::Corrupt(format!("a notice row is not a notice: {error}")))
}

fn load_notice(conn: &Connection, id: &str) -> Result<Option<Notice>, StoreError> {
    load_doc(
        conn,
        "SELECT doc FROM notices WHERE id = ?1",
        id,
        parse_notice,
    )
}

/// Applies a notice event, appends its ledger entry and saves the row.
fn apply_notice(
    tx: &rusqlite::Transaction<'_>,
    notice: Notice,
    event: &NoticeEvent,
    now_ms: u64,
) -> Result<Notice, StoreError> {
    let id = notice.id.clone();
    let notice =
        notices::apply(Some(notice), event, now_ms).map_err(|message| StoreError::Conflict {
            field: "state",
            message,
        })?;
    record(tx, now_ms, &id, event.kind(), &to_value(event)?)?;
    let changed = tx.execute(
        "UPDATE notices SET end_ms = ?2, doc = ?3 WHERE id = ?1",
        params![id, to_sql_ms(notice.end_ms()), to_text(&notice)?],
    )?;
    if changed != 1 {
        return Err(StoreError::NoSuch { what: "notice", id });
    }
    Ok(notice)
}

fn to_text(value: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn append_step(
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

fn proposals_in(conn: &Connection, ticket_id: &str) -> Result<Vec<Proposal>, StoreError> {
    let mut statement =
        conn.prepare("SELECT doc FROM proposals WHERE ticket_id = ?1 ORDER BY number LIMIT ?2")?;
    let rows = statement.query_map(params![ticket_id, MAX_LIST as i64], |row| {
        row.get::<_, String>(0)
    })?;
    rows.map(|doc| parse_proposal(&doc?)).collect()
}

fn run_ticket_command(
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
fn owned_elsewhere(conn: &Connection, ticket: &Ticket) -> Result<bool, StoreError> {
    let Some(owner) = &ticket.incident else {
        return Ok(false);
    };
    Ok(load(conn, owner)?.is_some_and(|owner| owner.state.is_active()))
}

/// Active tickets (open, claimed, in progress, verifying), newest first,
/// at most [`MAX_LIST`].
fn active_tickets(conn: &Connection) -> Result<Vec<Ticket>, StoreError> {
    let mut statement = conn.prepare(
        "SELECT doc FROM tickets WHERE state IN ('open', 'claimed', 'in_progress', 'verifying')
         ORDER BY number DESC LIMIT ?1",
    )?;
    let docs: Vec<String> = statement
        .query_map(params![MAX_LIST as i64], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    docs.iter().map(|doc| parse_doc(doc)).collect()
}

/// A ticket may own an incident: it exists, is active, and is no member.
fn check_owner(tx: &rusqlite::Transaction<'_>, owner: &str) -> Result<(), StoreError> {
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
fn join_incident(
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
fn follow_owner(
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
    load_doc(conn, "SELECT doc FROM tickets WHERE id = ?1", id, parse_doc)
}

/// The document of the one row `sql` (one parameter) answers, parsed.
fn load_doc<T>(
    conn: &Connection,
    sql: &str,
    param: &str,
    parse: fn(&str) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let doc: Option<String> = conn
        .query_row(sql, params![param], |row| row.get(0))
        .optional()?;
    doc.map(|doc| parse(&doc)).transpose()
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

/// A data directory opened read-only (for `floodgate trajectory`,
/// `floodgate report`): never writes, safe beside a running harness.
pub struct Archive {
    conn: Connection,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Archive").finish_non_exhaustive()
    }
}

impl Archive {
    pub fn open(data_dir: &Path) -> Result<Archive, StoreError> {
        let conn = open_connection(data_dir, true)?;
        let has_table: bool = conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'trajectories'",
                [],
                |row| row.get(0),
            )
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        if !has_table {
            return Err(StoreError::Corrupt(
                "no trajectories table (a harness data directory from before trajectories?)".into(),
            ));
        }
        Ok(Archive { conn })
    }

    /// Trajectory ids (ticket ids), oldest ticket first.
    pub fn trajectory_ids(
        &self,
        after_number: u64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT t.ticket_id FROM trajectories t JOIN tickets k ON k.id = t.ticket_id
             WHERE k.number > ?1 ORDER BY k.number LIMIT ?2",
        )?;
        let rows = statement.query_map(params![after_number as i64, limit as i64], |row| {
            row.get::<_, String>(0)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every trajectory, oldest first (paged internally).
    pub fn trajectories(&self) -> Result<Vec<Trajectory>, StoreError> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let ids = self.trajectory_ids(after, MAX_LIST)?;
            let Some(last) = ids.last() else {
                break;
            };
            after = crate::tickets::ticket_number(last).unwrap_or(u64::MAX);
            for id in &ids {
                if let Some(trajectory) = read_trajectory(&self.conn, id)? {
                    out.push(trajectory);
                }
            }
            if ids.len() < MAX_LIST {
                break;
            }
        }
        Ok(out)
    }

    pub fn trajectory(&self, ticket_id: &str) -> Result<Option<Trajectory>, StoreError> {
        read_trajectory(&self.conn, ticket_id)
    }
}

// ---------------------------------------------------------------------------
// Human review (read-only)

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

/// The first and last moments a harness data directory recorded anything
/// (a ticket, a ledger entry, an SLO snapshot), read only; `None` when it
/// holds nothing. `floodgate report` reports this period when the data is
/// older than the default one (a scenario run's simulated dates).
pub fn read_period(data_dir: &Path) -> Result<Option<(u64, u64)>, StoreError> {
    let conn = open_connection(data_dir, true)?;
    let period: (Option<i64>, Option<i64>) = conn.query_row(
        "SELECT MIN(first), MAX(last) FROM (
                 SELECT MIN(created_ms) AS first, MAX(updated_ms) AS last FROM tickets
                 UNION ALL SELECT MIN(time_ms), MAX(time_ms) FROM ledger
                 UNION ALL SELECT MIN(time_ms), MAX(time_ms) FROM slo_snapshots)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(match period {
        (Some(first), Some(last)) if first >= 0 && last >= first => {
            Some((first as u64, last as u64))
        }
        _ => None,
    })
}

fn check_schema(conn: &Connection) -> Result<(), StoreError> {
    let version: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(|error| StoreError::Corrupt(format!("no readable meta table ({error})")))?;
    match version {
        Some(version) if version == SCHEMA_VERSION => Ok(()),
        Some(version) => Err(StoreError::Corrupt(format!(
            "schema version {version}, this build reads {SCHEMA_VERSION}"
        ))),
        None => Err(StoreError::Corrupt("no schema version".into())),
    }
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            params![name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Calls `each` with the snapshots taken from `since_ms` to `until_ms`
/// (inclusive), ordered by `order` (a fixed column list), at most `limit`.
fn for_each_slo_snapshot(
    conn: &Connection,
    order: &'static str,
    since_ms: u64,
    until_ms: u64,
    limit: usize,
    mut each: impl FnMut(SloSnapshot),
) -> Result<(), StoreError> {
    let mut statement = conn.prepare(&format!(
        "SELECT time_ms, name, sli, error_budget_remaining, firing, burn_rates FROM slo_snapshots
         WHERE time_ms >= ?1 AND time_ms <= ?2 ORDER BY {order} LIMIT ?3"
    ))?;
    let mut rows = statement.query(params![
        since_ms.min(i64::MAX as u64) as i64,
        until_ms.min(i64::MAX as u64) as i64,
        limit.min(i64::MAX as usize) as i64
    ])?;
    while let Some(row) = rows.next()? {
        let burn_rates: String = row.get(5)?;
        each(SloSnapshot {
            time_ms: row.get::<_, i64>(0)?.max(0) as u64,
            name: row.get(1)?,
            sli: row.get(2)?,
            error_budget_remaining: row.get(3)?,
            firing: row.get(4)?,
            burn_rates: serde_json::from_str(&burn_rates).map_err(|error| {
                StoreError::Corrupt(format!("an slo_snapshots row's burn_rates: {error}"))
            })?,
        });
    }
    Ok(())
}

/// Parses each `doc` the query answers, keeps those `keep` accepts (at
/// most [`MAX_REPORT_ITEMS`]) and counts the rest under `list`.
fn report_docs<T>(
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

fn compact(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn reflection_finding(ticket: &Ticket) -> Option<Finding> {
    ticket
        .context
        .get("reflection")
        .and_then(|finding| serde_json::from_value(finding.clone()).ok())
}

fn change_item(conn: &Connection, proposal: &Proposal) -> Result<ChangeItem, StoreError> {
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
fn notice_item(
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

fn escalated_item(conn: &Connection, ticket: &Ticket) -> Result<EscalatedItem, StoreError> {
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
