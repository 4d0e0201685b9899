//! A simulated remote counter backend for the fault lab: a
//! [`MemoryStore`] behind a switch the fault API turns. Up, it decides
//! like Redis would (atomically, one round trip); down, every command and
//! probe fails as a refused connection does; slow, every command and probe
//! takes longer than the command timeout and fails as Redis's timeout
//! does. The service fronts it with the production
//! [`floodgate_store::ResilientStore`], so the failure policy, health
//! transitions, events and metrics the harness sees are the real ones.
//!
//! Nothing here sleeps: a slow backend answers [`StoreError::Timeout`] at
//! once (simulated time does not pass inside a tick).

use floodgate_limiter::{Nanos, Verdict};
use floodgate_store::{
    Backend, CounterStore, Describe, Item, KeySelect, LimitUsage, MemoryStore, StoreError,
    StoreStats,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The lab's Redis command timeout.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(50);

/// The backend's condition, as the fault API sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Up,
    /// Connections refused.
    Down,
    /// Every command takes this long (ms); at or past the command timeout
    /// it fails as a timeout.
    Slow {
        latency_ms: u64,
    },
}

/// The switch the fault API holds; the backend reads it on every command.
#[derive(Debug, Default)]
pub struct Switch {
    /// 0 up, 1 down, 2 slow.
    mode: AtomicU8,
    latency_ms: AtomicU64,
    /// Commands refused or timed out, for the lab's own ground truth.
    failed: AtomicU64,
}

impl Switch {
    pub fn set(&self, condition: Condition) {
        match condition {
            Condition::Up => self.mode.store(0, Ordering::SeqCst),
            Condition::Down => self.mode.store(1, Ordering::SeqCst),
            Condition::Slow { latency_ms } => {
                self.latency_ms.store(latency_ms, Ordering::SeqCst);
                self.mode.store(2, Ordering::SeqCst);
            }
        }
    }

    pub fn condition(&self) -> Condition {
        match self.mode.load(Ordering::SeqCst) {
            1 => Condition::Down,
            2 => Condition::Slow {
                latency_ms: self.latency_ms.load(Ordering::SeqCst),
            },
            _ => Condition::Up,
        }
    }

    /// Commands that failed so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The error a command meets now, if any.
    fn fault(&self) -> Option<StoreError> {
        let error = match self.condition() {
            Condition::Up => return None,
            Condition::Down => StoreError::Unavailable("connection refused (simulated)".into()),
            Condition::Slow { latency_ms } => {
                if Duration::from_millis(latency_ms) < COMMAND_TIMEOUT {
                    return None;
                }
                StoreError::Timeout(COMMAND_TIMEOUT)
            }
        };
        self.failed.fetch_add(1, Ordering::Relaxed);
        Some(error)
    }
}

/// The simulated remote backend. A clone is another connection to the
/// same backend (the same counters, switch and load): every instance of a
/// world holds one.
#[derive(Debug, Clone)]
pub struct SimBackend {
    store: Arc<MemoryStore>,
    switch: Arc<Switch>,
    /// Commands one key takes per window before timing out (0: no bound).
    key_ops: u64,
    window_ns: u64,
    /// (window, key → commands in it).
    load: Arc<Mutex<(u64, HashMap<u128, u64>)>>,
}

impl SimBackend {
    /// A backend holding at most `max_keys`, turned by `switch`.
    pub fn new(max_keys: u64, switch: Arc<Switch>) -> SimBackend {
        SimBackend {
            store: Arc::new(MemoryStore::new(max_keys)),
            switch,
            key_ops: 0,
            window_ns: 1,
            load: Arc::new(Mutex::new((0, HashMap::new()))),
        }
    }

    /// One key takes at most `ops` commands per `window_ns` of decision
    /// time; past that, its commands time out (a hot key saturating the
    /// shard that holds it). 0: no bound.
    pub fn with_key_ops_per_tick(mut self, ops: u64, window_ns: u64) -> SimBackend {
        self.key_ops = ops;
        self.window_ns = window_ns.max(1);
        self
    }

    /// Counts one command on each distinct key of `items`; whether one of
    /// them is past its bound.
    fn overloaded(&self, items: &[Item], now: Nanos) -> bool {
        if self.key_ops == 0 {
            return false;
        }
        let window = now / self.window_ns;
        let mut load = self.load.lock();
        if load.0 != window {
            *load = (window, HashMap::new());
        }
        let mut over = false;
        for (index, item) in items.iter().enumerate() {
            if items[..index].iter().any(|earlier| earlier.key == item.key) {
                continue;
            }
            let count = load.1.entry(item.key).or_insert(0);
            *count += 1;
            over |= *count > self.key_ops;
        }
        over
    }
}

impl CounterStore for SimBackend {
    fn decide<'a>(
        &'a self,
        items: &'a [Item],
        now: Nanos,
        verdicts: &'a mut Vec<Verdict>,
        describe: Describe<'a>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'a {
        let result = match self.switch.fault() {
            Some(error) => Err(error),
            None if self.overloaded(items, now) => {
                self.switch.failed.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Timeout(COMMAND_TIMEOUT))
            }
            None => Ok(self
                .store
                .decide_sync_described(items, now, verdicts, describe)),
        };
        std::future::ready(result)
    }

    /// The memory store's figures, labelled `simulated`.
    fn stats(&self) -> StoreStats {
        StoreStats {
            backend: "simulated",
            ..self.store.stats()
        }
    }

    fn set_capacity(&self, max_keys: u64) {
        self.store.set_capacity(max_keys);
    }

    fn count_keys(&self, select: KeySelect<'_>) -> u64 {
        self.store.count_keys(select)
    }

    fn evict_keys(&self, select: KeySelect<'_>) -> u64 {
        self.store.evict_keys(select)
    }

    fn usage(&self, per_limit: usize, now: Nanos) -> Vec<LimitUsage> {
        self.store.usage(per_limit, now)
    }
}

impl Backend for SimBackend {
    fn ping(&self) -> impl Future<Output = Result<Duration, StoreError>> + Send + '_ {
        std::future::ready(match self.switch.fault() {
            Some(error) => Err(error),
            None => Ok(Duration::ZERO),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_limiter::{Algorithm, Cost, Rate, Unit};
    use floodgate_store::{
        undescribed, BackendHealth, FailurePolicy, ResilientOptions, ResilientStore,
    };

    fn store(policy: FailurePolicy) -> (ResilientStore<SimBackend>, Arc<Switch>) {
        let switch = Arc::new(Switch::default());
        let store = ResilientStore::new(
            SimBackend::new(100, switch.clone()),
            ResilientOptions {
                policy,
                background_probe: false,
                ..ResilientOptions::default()
            },
        )
        .expect("options");
        (store, switch)
    }

    async fn admitted(store: &ResilientStore<SimBackend>) -> bool {
        let rate = Rate::new(Algorithm::FixedWindow, 1, Unit::Hour);
        let items = [Item::new(7, rate, Cost::Consume(1))];
        let mut verdicts = Vec::new();
        store
            .decide(&items, 1, &mut verdicts, &undescribed)
            .await
            .expect("the resilient store decides")
    }

    #[tokio::test]
    async fn an_outage_goes_through_the_failure_policy_until_a_probe_answers() {
        let (store, switch) = store(FailurePolicy::FailClosed);
        let prober = store.prober();
        assert!(admitted(&store).await, "the backend admits the first hit");
        assert!(!admitted(&store).await, "and counts it: 1 an hour");
        switch.set(Condition::Down);
        assert_eq!(
            prober.probe().await,
            BackendHealth::Up,
            "never probed while up"
        );
        assert!(!admitted(&store).await, "fail_closed rejects");
        let health = store.resilience().health();
        assert_eq!(health, BackendHealth::Down);
        assert_eq!(prober.probe().await, BackendHealth::Down);
        switch.set(Condition::Up);
        assert_eq!(prober.probe().await, BackendHealth::Up);
        assert!(switch.failed() >= 2);
    }

    #[tokio::test]
    async fn a_hot_key_times_out_past_its_bound_and_recovers_in_the_next_window() {
        let switch = Arc::new(Switch::default());
        let backend = SimBackend::new(100, switch.clone()).with_key_ops_per_tick(2, 10);
        let rate = Rate::new(Algorithm::FixedWindow, 100, Unit::Hour);
        let hot = [Item::new(1, rate, Cost::Consume(1))];
        let cold = [Item::new(2, rate, Cost::Consume(1))];
        let mut verdicts = Vec::new();
        for _ in 0..2 {
            assert!(backend
                .decide(&hot, 3, &mut verdicts, &undescribed)
                .await
                .is_ok());
        }
        let third = backend.decide(&hot, 3, &mut verdicts, &undescribed).await;
        assert!(matches!(third, Err(StoreError::Timeout(_))), "{third:?}");
        assert!(backend
            .decide(&cold, 3, &mut verdicts, &undescribed)
            .await
            .is_ok());
        assert!(backend.ping().await.is_ok(), "a ping touches no key");
        assert!(backend
            .decide(&hot, 12, &mut verdicts, &undescribed)
            .await
            .is_ok());
        assert_eq!(switch.failed(), 1);
    }

    #[tokio::test]
    async fn a_slow_backend_times_out_only_past_the_command_timeout() {
        let (store, switch) = store(FailurePolicy::FailOpen);
        switch.set(Condition::Slow { latency_ms: 10 });
        assert!(admitted(&store).await);
        assert!(!admitted(&store).await, "still decided by the backend");
        switch.set(Condition::Slow { latency_ms: 80 });
        assert!(admitted(&store).await, "fail_open admits");
        let health = store.resilience().health();
        assert_eq!(health, BackendHealth::Degraded);
    }
}
