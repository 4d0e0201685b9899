//! The SLO snapshots table: budgets over time for the report.

use crate::observe::slo::SloReport;
use crate::store::{to_text, Store, StoreError};
use rusqlite::{params, Connection, TransactionBehavior};
use serde::{Deserialize, Serialize};

/// The observe loop keeps at most one snapshot of each SLO per this much
/// of the injected clock's time (`slo_snapshots`; what a report's budgets
/// over a period read).
pub const SLO_SNAPSHOT_INTERVAL_MS: u64 = 5 * 60_000;

/// Snapshots older than this are deleted when new ones are written: a
/// 30-day SLO window and a few days' margin (at most 10,080 rows per SLO).
pub const SLO_SNAPSHOT_RETENTION_MS: u64 = 35 * 24 * 3_600_000;

/// The most snapshots one [`Store::slo_history`] call answers.
pub const MAX_SLO_HISTORY: usize = 100_000;

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

impl Store {
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
}

/// Calls `each` with the snapshots taken from `since_ms` to `until_ms`
/// (inclusive), ordered by `order` (a fixed column list), at most `limit`.
pub(crate) fn for_each_slo_snapshot(
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
