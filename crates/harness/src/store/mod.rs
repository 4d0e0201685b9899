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
//!
//! This module holds the [`Store`], its schema and [`StoreError`]; each
//! table's calls are `impl Store` blocks in their own module: [`tickets`]
//! (intake, commands, claims, incidents), [`proposals`], [`notices`],
//! [`slo`] (snapshots), [`trajectories`] (written in the transaction of the
//! work they record), [`settings`], and [`ledger`] (the hash chain).
//! [`rows`] turns one row into its document and back for all of them;
//! [`archive`] reads a data directory read-only. The store hands out rows
//! and documents: views (the report) are built by their owners.

pub mod archive;
pub mod ledger;
pub mod notices;
pub mod proposals;
pub mod rows;
pub mod settings;
pub mod slo;
pub mod tickets;
pub mod trajectories;

use crate::tickets::{IntakePolicy, TicketEvent, TransitionError};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The database file inside the data directory.
pub const DB_FILE: &str = "harness.sqlite3";

/// The schema this code writes; a database with another is refused.
pub const SCHEMA_VERSION: &str = "1";

/// The most tickets one list answers.
pub const MAX_LIST: usize = 1000;

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

pub(crate) fn to_json(event: &TicketEvent) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(event).map_err(|error| StoreError::Corrupt(error.to_string()))
}

/// The number the next row of `table` (`proposals`, `notices`) gets.
pub(crate) fn next_number(
    tx: &rusqlite::Transaction<'_>,
    table: &'static str,
) -> Result<u64, StoreError> {
    tx.query_row(
        &format!("SELECT COALESCE(MAX(number), 0) + 1 FROM {table}"),
        [],
        |row| row.get::<_, i64>(0),
    )?
    .try_into()
    .map_err(|_| StoreError::Corrupt(format!("a number of {table} is negative")))
}

pub(crate) fn to_sql_ms(ms: u64) -> i64 {
    ms.min(i64::MAX as u64) as i64
}

pub(crate) fn to_value(value: &impl Serialize) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}

pub(crate) fn to_text(value: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}

/// The document of the one row `sql` (one parameter) answers, parsed.
pub(crate) fn load_doc<T>(
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

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written
        // transaction (it rolls back on drop), so the connection is usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
