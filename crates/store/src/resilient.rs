//! [`ResilientStore`]: a remote [`Backend`] (a [`RedisStore`] in
//! production) with a failure policy.
//!
//! Decisions go to Redis while it is healthy. On a transient error
//! ([`StoreError::is_transient`]: unreachable or timed out) the store marks
//! the backend unhealthy (`down` for [`StoreError::Unavailable`],
//! `degraded` for [`StoreError::Timeout`]) and decides that request, and
//! every request after it, with the active [`FailurePolicy`] without
//! calling Redis. One background probe then sends `PING` every
//! `probe_interval` (never per request); the first success marks the
//! backend `up` again and decisions go back to Redis. (With
//! [`ResilientOptions::background_probe`] off, nothing is spawned: the
//! owner probes through a [`Prober`] on its own clock, as the lab's
//! simulated worlds do.) So no request waits
//! on a dead Redis more than once per outage, and that once is bounded by
//! the command timeout.
//!
//! The policy lives in one atomic ([`Resilience::policy`]) that the
//! service's `set_failure_policy` action writes, so it switches at run
//! time. Every health transition is handed to a listener (the service
//! turns it into a `backend_health_changed` event).
//!
//! Why here and not in the service: it is a [`CounterStore`] made of two
//! stores of this crate, the engine stays generic over the trait, and the
//! store's own tests can drive it against a real Redis. Why generic over
//! [`Backend`]: the fault lab puts a simulated backend it can slow down or
//! take away behind the very same failure handling production runs.

use crate::{
    CounterStore, Describe, Item, KeySelect, LimitUsage, MemoryStore, RedisStore, StoreError,
    StoreStats,
};
use floodgate_limiter::{Cost, Nanos, Verdict};
use parking_lot::Mutex;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often the probe pings an unhealthy backend, and so the shortest
/// time requests skip Redis after it failed (the backoff): long enough
/// that a dead Redis costs one `PING` per interval, not one per request;
/// short enough that recovery is noticed within a fraction of a second.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// What to do with a request while the backend cannot decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FailurePolicy {
    /// Admit every request; verdicts report the full quota remaining.
    FailOpen = 0,
    /// Reject every request that consumes from a non-shadow limit.
    FailClosed = 1,
    /// Decide with the in-process fallback store, each limit's quota
    /// scaled by the configured share (rounded down, at least 1).
    LocalFallback = 2,
}

impl FailurePolicy {
    /// The name metrics and docs use.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::FailOpen => "fail_open",
            FailurePolicy::FailClosed => "fail_closed",
            FailurePolicy::LocalFallback => "local_fallback",
        }
    }

    /// Every policy, in label order.
    pub const ALL: [FailurePolicy; 3] = [
        FailurePolicy::FailOpen,
        FailurePolicy::FailClosed,
        FailurePolicy::LocalFallback,
    ];

    fn from_u8(value: u8) -> FailurePolicy {
        match value {
            1 => FailurePolicy::FailClosed,
            2 => FailurePolicy::LocalFallback,
            _ => FailurePolicy::FailOpen,
        }
    }
}

/// The backend's health as the store judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BackendHealth {
    /// Decisions go to Redis.
    Up = 0,
    /// Redis timed out (slow or stalled): the policy decides until a probe
    /// succeeds.
    Degraded = 1,
    /// Redis is unreachable (refused, reset, no connection): the policy
    /// decides until a probe succeeds.
    Down = 2,
}

impl BackendHealth {
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendHealth::Up => "up",
            BackendHealth::Degraded => "degraded",
            BackendHealth::Down => "down",
        }
    }

    fn from_u8(value: u8) -> BackendHealth {
        match value {
            1 => BackendHealth::Degraded,
            2 => BackendHealth::Down,
            _ => BackendHealth::Up,
        }
    }

    fn of(error: &StoreError) -> BackendHealth {
        match error {
            StoreError::Timeout(_) => BackendHealth::Degraded,
            _ => BackendHealth::Down,
        }
    }
}

/// One health transition, as the listener receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    pub from: BackendHealth,
    pub to: BackendHealth,
    /// Why: the error, or the probe's round trip.
    pub detail: String,
}

/// Called on every health transition (from a request or the probe task):
/// must be quick and must not block.
pub type HealthListener = Arc<dyn Fn(HealthChange) + Send + Sync>;

/// Backend error kinds, as `floodgate_backend_errors_total{kind}` labels.
pub const ERROR_KINDS: [&str; 3] = ["unavailable", "timeout", "backend"];

fn error_kind(error: &StoreError) -> usize {
    match error {
        StoreError::Unavailable(_) => 0,
        StoreError::Timeout(_) => 1,
        StoreError::Backend(_) => 2,
    }
}

/// The backend's figures at one moment, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendFigures {
    pub health: BackendHealth,
    /// The latency histogram's upper bounds, in seconds.
    pub latency_bounds_seconds: &'static [f64],
    /// Non-cumulative counts per bucket of the bounds given to
    /// [`ResilientOptions::latency_bounds_seconds`], then +Inf.
    pub latency_counts: Vec<u64>,
    pub latency_sum_seconds: f64,
    /// Per [`ERROR_KINDS`].
    pub errors: [u64; 3],
    /// Decisions made by the policy instead of Redis, per
    /// [`FailurePolicy::ALL`].
    pub fallback_decisions: [u64; 3],
}

/// The state shared by the store, its probe task and the service: health,
/// policy, listener and counters.
pub struct Resilience {
    health: AtomicU8,
    policy: AtomicU8,
    detail: Mutex<String>,
    listener: Mutex<Option<HealthListener>>,
    bounds: &'static [f64],
    latency: Box<[AtomicU64]>,
    latency_sum_nanos: AtomicU64,
    errors: [AtomicU64; 3],
    fallback: [AtomicU64; 3],
    probe_interval: Duration,
}

impl std::fmt::Debug for Resilience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resilience")
            .field("health", &self.health())
            .field("policy", &self.policy())
            .finish_non_exhaustive()
    }
}

impl Resilience {
    /// The active failure policy.
    pub fn policy(&self) -> FailurePolicy {
        FailurePolicy::from_u8(self.policy.load(Ordering::SeqCst))
    }

    /// Switches the failure policy (takes effect on the next request).
    pub fn set_policy(&self, policy: FailurePolicy) {
        self.policy.store(policy as u8, Ordering::SeqCst);
    }

    pub fn health(&self) -> BackendHealth {
        BackendHealth::from_u8(self.health.load(Ordering::SeqCst))
    }

    /// Why the backend is in its current health (the last error, or the
    /// last successful probe).
    pub fn detail(&self) -> String {
        self.detail.lock().clone()
    }

    /// Sets the listener of health transitions (replacing any other).
    pub fn set_listener(&self, listener: HealthListener) {
        *self.listener.lock() = Some(listener);
    }

    pub fn figures(&self) -> BackendFigures {
        BackendFigures {
            health: self.health(),
            latency_bounds_seconds: self.bounds,
            latency_counts: self
                .latency
                .iter()
                .map(|count| count.load(Ordering::Relaxed))
                .collect(),
            latency_sum_seconds: self.latency_sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            errors: std::array::from_fn(|i| self.errors[i].load(Ordering::Relaxed)),
            fallback_decisions: std::array::from_fn(|i| self.fallback[i].load(Ordering::Relaxed)),
        }
    }

    /// The upper bounds of the latency buckets, in seconds.
    pub fn latency_bounds_seconds(&self) -> &'static [f64] {
        self.bounds
    }

    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = self
            .bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(self.bounds.len());
        self.latency[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Moves to `to` if the health is `from`; tells the listener. Returns
    /// whether this call made the transition.
    fn transition(&self, from: BackendHealth, to: BackendHealth, detail: String) -> bool {
        if from == to
            || self
                .health
                .compare_exchange(from as u8, to as u8, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return false;
        }
        detail.clone_into(&mut self.detail.lock());
        let listener = self.listener.lock().clone();
        if let Some(listener) = listener {
            listener(HealthChange { from, to, detail });
        }
        true
    }
}

/// How a [`ResilientStore`] behaves.
#[derive(Debug, Clone)]
pub struct ResilientOptions {
    /// The policy at start.
    pub policy: FailurePolicy,
    /// The share of each limit's quota this instance takes under
    /// `local_fallback` (0 < share ≤ 1; e.g. 1 / instances).
    pub local_share: f64,
    /// The most keys the fallback memory store holds.
    pub fallback_max_keys: u64,
    /// How often an unhealthy backend is probed ([`PROBE_INTERVAL`]).
    pub probe_interval: Duration,
    /// Upper bounds of the backend latency histogram, in seconds.
    pub latency_bounds_seconds: &'static [f64],
    /// Whether an unhealthy backend is probed by a spawned task every
    /// `probe_interval` (true), or only when the owner calls
    /// [`Prober::probe`] (false: deterministic, for simulated time).
    pub background_probe: bool,
}

impl Default for ResilientOptions {
    fn default() -> ResilientOptions {
        ResilientOptions {
            policy: FailurePolicy::FailOpen,
            local_share: 1.0,
            fallback_max_keys: 100_000,
            probe_interval: PROBE_INTERVAL,
            latency_bounds_seconds: &[0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05],
            background_probe: true,
        }
    }
}

/// A remote counter store the [`ResilientStore`] can front: it decides
/// like any [`CounterStore`], may fail with transient errors, and answers
/// a cheap health probe.
pub trait Backend: CounterStore + std::fmt::Debug {
    /// One health probe (Redis: `PING`), bounded by the backend's own
    /// timeout. Returns the round-trip time.
    fn ping(&self) -> impl Future<Output = Result<Duration, StoreError>> + Send + '_;
}

impl Backend for RedisStore {
    fn ping(&self) -> impl Future<Output = Result<Duration, StoreError>> + Send + '_ {
        RedisStore::ping(self)
    }
}

/// A remote store that keeps deciding when the remote cannot: see the
/// module docs.
pub struct ResilientStore<B: Backend = RedisStore> {
    backend: Arc<B>,
    fallback: MemoryStore,
    share: f64,
    shared: Arc<Resilience>,
    background_probe: bool,
}

impl<B: Backend> std::fmt::Debug for ResilientStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientStore")
            .field("backend", &self.backend)
            .field("share", &self.share)
            .field("resilience", &self.shared)
            .finish_non_exhaustive()
    }
}

/// Probes a [`ResilientStore`]'s backend on the owner's schedule (see
/// [`ResilientOptions::background_probe`]). Cheap to clone; holds the
/// store's shared state, not the store.
pub struct Prober<B: Backend = RedisStore> {
    backend: Arc<B>,
    shared: Arc<Resilience>,
}

impl<B: Backend> Clone for Prober<B> {
    fn clone(&self) -> Prober<B> {
        Prober {
            backend: self.backend.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<B: Backend> Prober<B> {
    /// Probes once if the backend is not up (a healthy backend is never
    /// probed: requests are its probe), moving the health as the answer
    /// says. Returns the health after.
    pub async fn probe(&self) -> BackendHealth {
        let current = self.shared.health();
        if current != BackendHealth::Up {
            probe_once(self.backend.as_ref(), &self.shared, current).await;
        }
        self.shared.health()
    }
}

/// One probe of an unhealthy backend: up on an answer, otherwise the health
/// the error says. Returns whether the backend answered.
async fn probe_once<B: Backend>(backend: &B, shared: &Resilience, current: BackendHealth) -> bool {
    match backend.ping().await {
        Ok(rtt) => {
            shared.transition(
                current,
                BackendHealth::Up,
                format!("probe answered in {rtt:?}"),
            );
            true
        }
        Err(error) => {
            shared.transition(current, BackendHealth::of(&error), error.to_string());
            false
        }
    }
}

impl<B: Backend> ResilientStore<B> {
    /// Wraps `redis`. Fails (naming the option) when `local_share` is not
    /// in (0, 1] or `fallback_max_keys` is 0.
    pub fn new(redis: B, options: ResilientOptions) -> Result<ResilientStore<B>, String> {
        if !(options.local_share > 0.0 && options.local_share <= 1.0) {
            return Err(format!(
                "local_share: {} is not in (0, 1]",
                options.local_share
            ));
        }
        if options.fallback_max_keys == 0 {
            return Err("fallback_max_keys: must be at least 1".to_string());
        }
        let bounds = options.latency_bounds_seconds;
        Ok(ResilientStore {
            backend: Arc::new(redis),
            fallback: MemoryStore::new(options.fallback_max_keys),
            share: options.local_share,
            shared: Arc::new(Resilience {
                health: AtomicU8::new(BackendHealth::Up as u8),
                policy: AtomicU8::new(options.policy as u8),
                detail: Mutex::new("no error yet".to_string()),
                listener: Mutex::new(None),
                bounds,
                latency: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                latency_sum_nanos: AtomicU64::new(0),
                errors: Default::default(),
                fallback: Default::default(),
                probe_interval: options.probe_interval,
            }),
            background_probe: options.background_probe,
        })
    }

    /// The remote backend (the Redis store).
    pub fn redis(&self) -> &B {
        &self.backend
    }

    /// A handle that probes the backend on the caller's schedule.
    pub fn prober(&self) -> Prober<B> {
        Prober {
            backend: self.backend.clone(),
            shared: self.shared.clone(),
        }
    }

    pub fn fallback(&self) -> &MemoryStore {
        &self.fallback
    }

    pub fn resilience(&self) -> &Arc<Resilience> {
        &self.shared
    }

    async fn decide_resilient(
        &self,
        items: &[Item],
        now: Nanos,
        verdicts: &mut Vec<Verdict>,
        describe: Describe<'_>,
    ) -> Result<bool, StoreError> {
        let shared = &self.shared;
        if shared.health() == BackendHealth::Up {
            let started = Instant::now();
            let result = self.backend.decide(items, now, verdicts, describe).await;
            shared.observe(started.elapsed());
            match result {
                Ok(admitted) => return Ok(admitted),
                Err(error) => {
                    shared.errors[error_kind(&error)].fetch_add(1, Ordering::Relaxed);
                    if !error.is_transient() {
                        return Err(error);
                    }
                    let to = BackendHealth::of(&error);
                    if shared.transition(BackendHealth::Up, to, error.to_string()) {
                        self.spawn_probe();
                    }
                }
            }
        }
        let policy = shared.policy();
        shared.fallback[policy as usize].fetch_add(1, Ordering::Relaxed);
        Ok(match policy {
            FailurePolicy::FailOpen => open(items, verdicts),
            FailurePolicy::FailClosed => closed(items, verdicts),
            FailurePolicy::LocalFallback => {
                let scaled: Vec<Item> = items
                    .iter()
                    .map(|item| {
                        let mut item = *item;
                        item.rate.requests_per_unit =
                            scale(item.rate.requests_per_unit, self.share);
                        item.rate.burst = scale(item.rate.burst, self.share);
                        item
                    })
                    .collect();
                self.fallback
                    .decide_sync_described(&scaled, now, verdicts, describe)
            }
        })
    }

    /// Starts the probe: `PING` every `probe_interval` until one succeeds
    /// (then the backend is up again) or the store is dropped. Nothing when
    /// the owner probes ([`ResilientOptions::background_probe`] off).
    fn spawn_probe(&self) {
        if !self.background_probe {
            return;
        }
        let backend = self.backend.clone();
        let shared: Weak<Resilience> = Arc::downgrade(&self.shared);
        let interval = self.shared.probe_interval;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let current = shared.health();
                if probe_once(backend.as_ref(), &shared, current).await {
                    return;
                }
            }
        });
    }
}

/// `quota × share`, rounded down, at least 1.
fn scale(quota: u64, share: f64) -> u64 {
    ((quota as f64 * share).floor() as u64).max(1)
}

/// `fail_open`: every item admitted with its whole quota remaining.
fn open(items: &[Item], verdicts: &mut Vec<Verdict>) -> bool {
    verdicts.clear();
    verdicts.extend(items.iter().map(|item| Verdict {
        admitted: true,
        remaining: item.rate.requests_per_unit.max(item.rate.burst),
        reset_after: 0,
        lease: None,
    }));
    true
}

/// `fail_closed`: the request is rejected when it consumes from any
/// non-shadow limit (refunds, releases and check-only items alone are
/// admitted: refusing them protects nothing).
fn closed(items: &[Item], verdicts: &mut Vec<Verdict>) -> bool {
    let consumes = |item: &Item| matches!(item.cost, Cost::Consume(hits) if hits > 0);
    let admitted = !items.iter().any(|item| !item.shadow && consumes(item));
    verdicts.clear();
    verdicts.extend(items.iter().map(|item| Verdict {
        admitted: !consumes(item),
        remaining: 0,
        reset_after: item.rate.unit.seconds().saturating_mul(1_000_000_000),
        lease: None,
    }));
    admitted
}

impl<B: Backend> CounterStore for ResilientStore<B> {
    fn decide<'a>(
        &'a self,
        items: &'a [Item],
        now: Nanos,
        verdicts: &'a mut Vec<Verdict>,
        describe: Describe<'a>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'a {
        self.decide_resilient(items, now, verdicts, describe)
    }

    /// The Redis store's figures (`backend: "redis"`); the fallback's keys
    /// are not counted (they live only through an outage).
    fn stats(&self) -> StoreStats {
        self.backend.stats()
    }

    /// Sets the fallback store's capacity (Redis has none).
    fn set_capacity(&self, max_keys: u64) {
        self.fallback.set_capacity(max_keys);
    }

    fn count_keys(&self, select: KeySelect<'_>) -> u64 {
        self.backend.count_keys(select) + self.fallback.count_keys(select)
    }

    fn evict_keys(&self, select: KeySelect<'_>) -> u64 {
        self.backend.evict_keys(select) + self.fallback.evict_keys(select)
    }

    fn usage(&self, per_limit: usize, now: Nanos) -> Vec<LimitUsage> {
        self.backend.usage(per_limit, now)
    }

    fn resilience(&self) -> Option<&Arc<Resilience>> {
        Some(&self.shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_limiter::{Algorithm, Rate, Unit};

    #[test]
    fn shares_round_down_to_at_least_one() {
        assert_eq!(scale(10, 0.5), 5);
        assert_eq!(scale(10, 0.33), 3);
        assert_eq!(scale(1, 0.1), 1);
        assert_eq!(scale(7, 1.0), 7);
    }

    #[test]
    fn open_and_closed_verdicts() {
        let rate = Rate::new(Algorithm::FixedWindow, 5, Unit::Minute);
        let mut shadow = Item::new(2, rate, Cost::Consume(1));
        shadow.shadow = true;
        let items = [Item::new(1, rate, Cost::Consume(1)), shadow];
        let mut verdicts = Vec::new();
        assert!(open(&items, &mut verdicts));
        assert!(verdicts.iter().all(|v| v.admitted && v.remaining == 5));
        assert!(!closed(&items, &mut verdicts));
        assert!(!verdicts[0].admitted);
        assert!(closed(&items[1..], &mut verdicts), "shadow only");
        let refund = [Item::new(1, rate, Cost::Refund(1))];
        assert!(closed(&refund, &mut verdicts));
    }
}
