//! Floodgate's counter stores: where the per-key rate-limit state lives.
//!
//! Every store implements [`CounterStore`]: it decides the items of one
//! request atomically, with exactly the semantics of
//! [`floodgate_limiter::decide_all`] (all or nothing; items sharing a key
//! share one state and are decided in order). The pure algorithms live in
//! `floodgate-limiter`; a store only keeps states, applies those algorithms
//! under its own atomicity, and bounds what it holds.
//!
//! - [`MemoryStore`]: sharded, bounded, in-process. Its `decide` is a
//!   ready future around the synchronous [`MemoryStore::decide_sync`].
//!
//! A Redis store will implement the same trait later, which is why the trait
//! returns a future and a [`StoreError`].

use floodgate_limiter::{Cost, Nanos, Rate, Verdict};
use std::future::Future;
use std::time::Duration;

pub mod memory;

pub use memory::{Evictions, MemoryStore, EVICTION_SCAN, SHARDS_PER_CPU};

/// One limit's part in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// The counter key: a well-mixed 128-bit hash of (limit, descriptor
    /// values). Stores use its bits directly to pick shards and buckets.
    pub key: u128,
    /// The index of the limit in the config table, for per-limit eviction
    /// and usage summaries.
    pub limit: u32,
    /// The rate the limit enforces.
    pub rate: Rate,
    /// What the request asks of this limit.
    pub cost: Cost,
    /// A shadow limit is counted and reported but never rejects.
    pub shadow: bool,
}

/// A store that keeps counter states and decides requests against them.
pub trait CounterStore: Send + Sync + 'static {
    /// Decides one request's items atomically with
    /// [`floodgate_limiter::decide_all`] semantics: the request is admitted
    /// only if every non-shadow item admits it, a rejected request consumes
    /// nothing (refunds and releases still apply), and items with the same
    /// key share one state and are decided in order.
    ///
    /// Fills `verdicts` (cleared first) with one verdict per item, in order;
    /// resolves to whether the request is admitted.
    fn decide<'a>(
        &'a self,
        items: &'a [Item],
        now: Nanos,
        verdicts: &'a mut Vec<Verdict>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'a;

    /// Size and eviction figures, for metrics, health and state.
    fn stats(&self) -> StoreStats;
}

/// A store's size and eviction figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// The backend's name as metrics label it (`memory`, `redis`).
    pub backend: &'static str,
    /// Counter keys held now.
    pub keys: u64,
    /// The most keys held before eviction.
    pub capacity: u64,
    /// Keys dropped because they had expired.
    pub evicted_expired: u64,
    /// Live keys dropped because the store was full (least recently used).
    pub evicted_lru: u64,
}

/// Why a store could not decide. The in-memory store never fails; these
/// describe remote stores.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached right now (connection refused or
    /// reset, no connection available).
    #[error("counter store unavailable: {0}")]
    Unavailable(String),
    /// The backend did not answer in time.
    #[error("counter store timed out after {0:?}")]
    Timeout(Duration),
    /// The backend answered with something this store cannot use (a script
    /// error, a value of the wrong type). Retrying will not help.
    #[error("counter store backend error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::Timeout(_) => true,
            StoreError::Backend(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors() {
        assert!(StoreError::Unavailable("refused".into()).is_transient());
        assert!(StoreError::Timeout(Duration::from_millis(20)).is_transient());
        assert!(!StoreError::Backend("WRONGTYPE".into()).is_transient());
        assert_eq!(
            StoreError::Timeout(Duration::from_millis(20)).to_string(),
            "counter store timed out after 20ms"
        );
    }
}
