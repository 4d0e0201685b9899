//! The settings table: the harness's own state kept with the queue
//! (`pipeline.paused`).

use crate::store::trajectories::record;
use crate::store::{Store, StoreError};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

impl Store {
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
