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
//! - [`RedisStore`]: shared by every instance that points at the same Redis
//!   (or Redis Cluster). One Lua script decides all items of one request in
//!   one round trip; every key carries a TTL (ADR 0006).
//!
//! The trait returns a future and a [`StoreError`] because remote stores
//! wait and fail.

use floodgate_limiter::{Cost, Nanos, Rate, Verdict};
use std::future::Future;
use std::time::Duration;

pub mod memory;
pub mod redis;
pub mod resilient;

pub use memory::{Evictions, MemoryStore, EVICTION_SCAN, SHARDS_PER_CPU};
pub use redis::{RedisOptions, RedisStore, RedisTarget};
pub use resilient::{
    Backend, BackendFigures, BackendHealth, FailurePolicy, HealthChange, Prober, Resilience,
    ResilientOptions, ResilientStore,
};

/// What a store keeps about a key besides its counter: which limit it
/// counts for and a readable form. Given by the caller of
/// [`CounterStore::decide`] when, and only when, a key is inserted, so keys
/// already stored cost nothing (the hot path stays allocation-free).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The identity of the limit (the limiter's `LimitId`: domain,
    /// descriptor path, slot, algorithm, unit). A counter key is derived
    /// from it, so a key belongs to one identity for ever, whatever config
    /// tables come and go. `None` for request-supplied override limits.
    pub limit: Option<u64>,
    /// The readable key, e.g. `api|tenant=acme#per_tenant` (the caller
    /// bounds its length).
    pub text: Box<str>,
}

/// Describes item `i` of a request when its key is inserted.
pub type Describe<'a> = &'a (dyn Fn(usize) -> Option<KeyInfo> + Sync);

/// A [`Describe`] that tells nothing (keys are stored without info).
pub fn undescribed(_item: usize) -> Option<KeyInfo> {
    None
}

/// Which stored keys an introspection or eviction call is about. Keys
/// stored without [`KeyInfo`] match neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySelect<'a> {
    /// Every key of the limit with this identity.
    Limit(u64),
    /// Every key whose readable text starts with this prefix.
    Prefix(&'a str),
}

impl KeySelect<'_> {
    /// Whether a key with this info is selected.
    pub fn matches(&self, info: &KeyInfo) -> bool {
        match self {
            KeySelect::Limit(limit) => info.limit == Some(*limit),
            KeySelect::Prefix(prefix) => info.text.starts_with(prefix),
        }
    }
}

/// One key in use, for usage summaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotKey {
    pub key: u128,
    /// Its readable text, when it was given on insert.
    pub text: Option<Box<str>>,
    /// Units in use now: hits in the window, tokens spent, leases held.
    pub used: u64,
}

/// The most used keys of one limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitUsage {
    /// The limit's identity ([`KeyInfo::limit`]).
    pub limit: u64,
    /// Most used first; keys using nothing are left out.
    pub hottest: Vec<HotKey>,
}

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
    /// Which group of keys this item's key belongs with: the engine sets it
    /// to [`domain_tag`] of the request's domain, so every item of one
    /// request carries the same tag. The Redis store puts it in the key
    /// name as the Redis Cluster hash tag, so one request's keys (and all
    /// of a domain's keys) live in one slot and one script can decide them
    /// atomically (ADR 0006). The memory store ignores it. `0` is fine
    /// where there is no domain (tests, a single Redis).
    pub tag: u64,
}

impl Item {
    /// An item of limit index 0, not shadow, tag 0; set the other fields
    /// directly or with [`Item::with_tag`].
    pub const fn new(key: u128, rate: Rate, cost: Cost) -> Item {
        Item {
            key,
            limit: 0,
            rate,
            cost,
            shadow: false,
            tag: 0,
        }
    }

    /// The same item with another tag.
    pub const fn with_tag(mut self, tag: u64) -> Item {
        self.tag = tag;
        self
    }
}

/// The tag of every item of a request in `domain` (xxh3-64 of its bytes,
/// seed 0). Stable across versions and instances: instances sharing one
/// Redis must compute the same tag for the same domain, or they would
/// count in different keys.
pub fn domain_tag(domain: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(domain.as_bytes())
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
    /// resolves to whether the request is admitted. `describe(i)` is called
    /// only when item `i`'s key is inserted, and what it gives is kept with
    /// the key for introspection ([`CounterStore::usage`],
    /// [`CounterStore::evict_keys`]); pass `&undescribed` to keep nothing.
    fn decide<'a>(
        &'a self,
        items: &'a [Item],
        now: Nanos,
        verdicts: &'a mut Vec<Verdict>,
        describe: Describe<'a>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'a;

    /// Size and eviction figures, for metrics, health and state.
    fn stats(&self) -> StoreStats;

    // Maintenance and introspection: operator calls, never on the hot
    // path. They may walk every key.

    /// Changes the most keys held. Shrinking evicts at once (expired keys
    /// first, then the least recently used), counted as evictions.
    fn set_capacity(&self, max_keys: u64);

    /// How many stored keys `select` matches.
    fn count_keys(&self, select: KeySelect<'_>) -> u64;

    /// Drops every stored key `select` matches; returns how many. Not
    /// counted as evictions (they were asked for).
    fn evict_keys(&self, select: KeySelect<'_>) -> u64;

    /// For every limit identity with keys in use at `now`, up to
    /// `per_limit` of its most used keys.
    fn usage(&self, per_limit: usize, now: Nanos) -> Vec<LimitUsage>;

    /// The backend's health, failure policy and figures, for a store that
    /// fronts a remote backend ([`ResilientStore`]); `None` for stores that
    /// cannot fail (the memory store).
    fn resilience(&self) -> Option<&std::sync::Arc<Resilience>> {
        None
    }
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
