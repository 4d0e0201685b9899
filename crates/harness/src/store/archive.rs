//! A data directory opened read-only (`floodgate trajectory`, `floodgate
//! report`), and the checks that it is one this build can read.

use crate::learn::trajectory::Trajectory;
use crate::store::trajectories::read_trajectory;
use crate::store::{open_connection, StoreError, MAX_LIST, SCHEMA_VERSION};
use rusqlite::{params, Connection, OptionalExtension};
use std::fmt;
use std::path::Path;

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

pub(crate) fn check_schema(conn: &Connection) -> Result<(), StoreError> {
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

pub(crate) fn table_exists(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            params![name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
