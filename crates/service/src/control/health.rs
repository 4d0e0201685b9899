//! `/v1/state` and `/v1/health`: everything the service knows, and
//! SLI-level facts over recent windows with named checks.
//!
//! Windows are computed from a bounded ring of counter samples (requests,
//! over-limit answers, errors, the latency histogram) taken by a ticker
//! every [`SAMPLE_INTERVAL`] and on each health call, stamped with the
//! service clock. A window's figures are the counters now minus the oldest
//! sample taken within the window (so a window never covers more than its
//! length; with the ticker running, samples are a second apart and it
//! covers all of it). Without a sample in the window (a simulation that
//! moves its clock in big steps), the newest sample is the baseline.

use super::Control;
use crate::engine::Engine;
use crate::stats::{Api, Outcome, DURATION_SLOTS};
use floodgate_contract::events::EventBody;
use floodgate_contract::metrics::DURATION_BUCKETS_SECONDS;
use floodgate_contract::state::{
    ConfigSummary, DrainState, Evictions, Health, HealthCheck, HealthConfig, HealthWindow,
    KeyUsage, LimitState, NodeEntry, State, StoreState, HOTTEST_KEYS_PER_LIMIT,
};
use floodgate_limiter::{Algorithm, Nanos, NANOS_PER_SECOND};
use floodgate_store::{BackendHealth, CounterStore};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// How often the ticker samples the counters.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// The windows `/v1/health` reports, shortest first (1 and 5 minutes, as
/// load averages and most SLO burn alerts use).
pub const HEALTH_WINDOWS_SECONDS: [u64; 2] = [60, 300];
/// Samples kept: one per interval over the longest window, plus the two
/// ends. Older samples are dropped.
pub const HEALTH_SAMPLE_CAPACITY: usize = 300 + 2;
/// The share of the store's capacity from which a `capacity_warning` event
/// is raised (once per crossing: it is raised again only after the store
/// fell below it).
pub const CAPACITY_WARNING_RATIO: f64 = 0.8;
/// The share of capacity from which the `store_capacity` check fails: the
/// store is about to evict live keys, which resets their counters.
pub const STORE_CAPACITY_FAIL_RATIO: f64 = 0.9;
/// The error ratio over the shortest window above which the `error_ratio`
/// check fails (1%: a rate limiter's errors fail requests open or closed).
pub const MAX_ERROR_RATIO: f64 = 0.01;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Nanos,
    requests: u64,
    over_limit: u64,
    errors: u64,
    latency: [u64; DURATION_SLOTS],
}

impl Sample {
    fn take<S: CounterStore>(engine: &Engine<S>, at: Nanos) -> Sample {
        let metrics = &engine.metrics;
        let count = |outcome| {
            [Api::Grpc, Api::Http]
                .into_iter()
                .map(|api| metrics.requests(api, outcome))
                .sum::<u64>()
        };
        let over_limit = count(Outcome::OverLimit);
        let errors = count(Outcome::Error);
        Sample {
            at,
            requests: count(Outcome::Ok) + over_limit + errors,
            over_limit,
            errors,
            latency: metrics.duration_counts(),
        }
    }
}

/// The ring of samples and the capacity-warning latch.
#[derive(Debug)]
pub(super) struct Sampler {
    ring: VecDeque<Sample>,
    warned: bool,
}

impl Sampler {
    pub(super) fn new<S: CounterStore>(engine: &Engine<S>, started_at: Nanos) -> Sampler {
        Sampler {
            ring: VecDeque::from([Sample::take(engine, started_at)]),
            warned: false,
        }
    }

    /// Takes a sample now: keeps it when the newest kept one is at least
    /// [`SAMPLE_INTERVAL`] old, and answers a capacity warning to raise.
    pub(super) fn sample<S: CounterStore>(&mut self, engine: &Engine<S>) -> Option<EventBody> {
        let now = engine.clock().now_ns();
        let interval = u64::try_from(SAMPLE_INTERVAL.as_nanos()).unwrap_or(u64::MAX);
        let due = self
            .ring
            .back()
            .is_none_or(|last| now >= last.at.saturating_add(interval));
        if due {
            self.ring.push_back(Sample::take(engine, now));
            while self.ring.len() > HEALTH_SAMPLE_CAPACITY {
                self.ring.pop_front();
            }
        }
        let stats = engine.store().stats();
        let ratio = ratio(stats.keys, stats.capacity);
        if ratio >= CAPACITY_WARNING_RATIO {
            if !self.warned {
                self.warned = true;
                return Some(EventBody::CapacityWarning {
                    keys: stats.keys,
                    capacity: stats.capacity,
                    used_ratio: ratio,
                });
            }
        } else {
            self.warned = false;
        }
        None
    }

    /// The oldest sample taken at or after `since`, else the newest.
    fn baseline(&self, since: Nanos) -> Option<&Sample> {
        self.ring
            .iter()
            .find(|sample| sample.at >= since)
            .or_else(|| self.ring.back())
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The upper bound of the bucket holding quantile `q` of `counts` (the
/// largest finite bound when it falls in +Inf); `None` without samples.
fn quantile(counts: &[u64; DURATION_SLOTS], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let target = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut cumulative = 0;
    for (slot, count) in counts.iter().enumerate() {
        cumulative += count;
        if cumulative >= target {
            return DURATION_BUCKETS_SECONDS
                .get(slot)
                .or(DURATION_BUCKETS_SECONDS.last())
                .copied();
        }
    }
    DURATION_BUCKETS_SECONDS.last().copied()
}

impl<S: CounterStore> Control<S> {
    fn store_state(&self) -> StoreState {
        let stats = self.engine.store().stats();
        StoreState {
            backend: stats.backend.to_string(),
            healthy: self
                .engine
                .store()
                .resilience()
                .is_none_or(|backend| backend.health() == BackendHealth::Up),
            keys: stats.keys,
            capacity: stats.capacity,
            used_ratio: ratio(stats.keys, stats.capacity),
            evictions: Evictions {
                expired: stats.evicted_expired,
                lru: stats.evicted_lru,
            },
            failure_policy: self.failure_policy(),
            transitions: self.store_transitions(),
        }
    }

    fn uptime_seconds(&self, now: Nanos) -> u64 {
        now.saturating_sub(self.info.started_at) / NANOS_PER_SECOND
    }

    /// `GET /v1/state`.
    pub fn state(&self, access_control: bool) -> State {
        let now = self.engine.clock().now_ns();
        // The config version and the table are read together (actions
        // change both under this lock).
        let (config, snapshot) = {
            let history = self.history.lock();
            let meta = &history.current().meta;
            let snapshot = self.engine.snapshot();
            let config = ConfigSummary {
                version: meta.version,
                hash: meta.hash.clone(),
                domains: snapshot
                    .table
                    .domains()
                    .map(|domain| domain.domain.clone())
                    .collect(),
            };
            (config, snapshot)
        };
        let usage: HashMap<u64, Vec<floodgate_store::HotKey>> = self
            .engine
            .store()
            .usage(HOTTEST_KEYS_PER_LIMIT, now)
            .into_iter()
            .map(|usage| (usage.limit, usage.hottest))
            .collect();
        let limits = snapshot
            .table
            .limits()
            .iter()
            .zip(&snapshot.stats)
            .map(|(limit, stats)| {
                use std::sync::atomic::Ordering::Relaxed;
                let hottest: Vec<KeyUsage> = usage
                    .get(&limit.id)
                    .map(|keys| {
                        keys.iter()
                            .map(|hot| KeyUsage {
                                key: hot
                                    .text
                                    .as_deref()
                                    .map_or_else(|| format!("{:032x}", hot.key), str::to_string),
                                used: hot.used,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let leases_in_flight = (limit.rate.algorithm == Algorithm::Concurrency)
                    .then(|| hottest.iter().map(|key| key.used).sum());
                LimitState {
                    domain: limit.domain.clone(),
                    name: limit.name.clone(),
                    path: limit.path.clone(),
                    descriptor: limit
                        .descriptor
                        .iter()
                        .map(|(key, value)| NodeEntry {
                            key: key.clone(),
                            value: value.clone(),
                        })
                        .collect(),
                    algorithm: limit.rate.algorithm.as_str().to_string(),
                    requests_per_unit: limit.rate.requests_per_unit,
                    unit: limit.rate.unit.as_str().to_string(),
                    burst: limit.rate.burst,
                    shadow: limit.shadow,
                    detailed_metric: limit.detailed_metric,
                    hits: stats.hits.load(Relaxed),
                    within_limit: stats.within_limit.load(Relaxed),
                    over_limit: stats.over_limit.load(Relaxed),
                    near_limit: stats.near_limit.load(Relaxed),
                    shadow_over_limit: stats.shadow_over_limit.load(Relaxed),
                    hottest,
                    leases_in_flight,
                    top_values: stats.top_values(now),
                }
            })
            .collect();
        State {
            version: crate::VERSION.to_string(),
            uptime_seconds: self.uptime_seconds(now),
            config,
            store: self.store_state(),
            limits,
            drain: DrainState {
                draining: self.draining(),
            },
            events: self.events.figures(),
            access_control,
        }
    }

    /// `GET /v1/health`: the document, and whether the service is draining
    /// (answered 503).
    pub fn health(&self) -> (Health, bool) {
        self.sample();
        let now = self.engine.clock().now_ns();
        let current = Sample::take(&self.engine, now);
        let windows: Vec<HealthWindow> = {
            let sampler = self.sampler.lock();
            HEALTH_WINDOWS_SECONDS
                .iter()
                .map(|&seconds| {
                    let since = now.saturating_sub(seconds.saturating_mul(NANOS_PER_SECOND));
                    let base = sampler.baseline(since).copied().unwrap_or(current);
                    let requests = current.requests.saturating_sub(base.requests);
                    let over_limit = current.over_limit.saturating_sub(base.over_limit);
                    let errors = current.errors.saturating_sub(base.errors);
                    let mut latency = [0; DURATION_SLOTS];
                    for (slot, count) in latency.iter_mut().enumerate() {
                        *count = current.latency[slot].saturating_sub(base.latency[slot]);
                    }
                    HealthWindow {
                        seconds,
                        requests,
                        over_limit,
                        errors,
                        error_ratio: ratio(errors, requests),
                        over_limit_ratio: ratio(over_limit, requests),
                        latency_p50_seconds: quantile(&latency, 0.5),
                        latency_p99_seconds: quantile(&latency, 0.99),
                    }
                })
                .collect()
        };
        let (version, table_limits, domains) = {
            let history = self.history.lock();
            let snapshot = self.engine.snapshot();
            (
                history.current().meta.version,
                snapshot.table.limits().len() as u64,
                snapshot.table.domains().count() as u64,
            )
        };
        let store = self.store_state();
        let draining = self.draining();
        let mut checks = Vec::with_capacity(5);
        checks.push(HealthCheck {
            name: "config_loaded".to_string(),
            pass: table_limits > 0,
            reason: if table_limits > 0 {
                format!("config version {version}: {table_limits} limits in {domains} domains")
            } else {
                format!("config version {version} has no limits: every descriptor is answered OK")
            },
        });
        checks.push(HealthCheck {
            name: "store_capacity".to_string(),
            pass: store.used_ratio < STORE_CAPACITY_FAIL_RATIO,
            reason: format!(
                "{} of {} keys used ({:.1}%; fails from {:.0}%)",
                store.keys,
                store.capacity,
                store.used_ratio * 100.0,
                STORE_CAPACITY_FAIL_RATIO * 100.0
            ),
        });
        if let Some(shortest) = windows.first() {
            checks.push(HealthCheck {
                name: "error_ratio".to_string(),
                pass: shortest.error_ratio <= MAX_ERROR_RATIO,
                reason: format!(
                    "{} errors in {} requests over the last {} s ({:.2}%; fails above {:.0}%)",
                    shortest.errors,
                    shortest.requests,
                    shortest.seconds,
                    shortest.error_ratio * 100.0,
                    MAX_ERROR_RATIO * 100.0
                ),
            });
        }
        if let Some(backend) = self.engine.store().resilience() {
            let health = backend.health();
            checks.push(HealthCheck {
                name: "backend".to_string(),
                pass: health == BackendHealth::Up,
                reason: format!(
                    "{} is {}: {} (failure policy {})",
                    store.backend,
                    health.as_str(),
                    backend.detail(),
                    store.failure_policy.as_str()
                ),
            });
        }
        checks.push(HealthCheck {
            name: "draining".to_string(),
            pass: !draining,
            reason: if draining {
                "draining: load balancers should stop sending (undrain to end it)".to_string()
            } else {
                "not draining".to_string()
            },
        });
        let status = if draining {
            "draining"
        } else if checks.iter().all(|check| check.pass) {
            "ok"
        } else {
            "degraded"
        };
        let health = Health {
            status: status.to_string(),
            version: crate::VERSION.to_string(),
            uptime_seconds: self.uptime_seconds(now),
            config: HealthConfig {
                version,
                domains,
                limits: table_limits,
            },
            store,
            windows,
            checks,
        };
        (health, draining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let mut counts = [0u64; DURATION_SLOTS];
        assert_eq!(quantile(&counts, 0.5), None);
        counts[0] = 98;
        counts[3] = 2;
        assert_eq!(quantile(&counts, 0.5), Some(DURATION_BUCKETS_SECONDS[0]));
        assert_eq!(quantile(&counts, 0.99), Some(DURATION_BUCKETS_SECONDS[3]));
        let mut slow = [0u64; DURATION_SLOTS];
        slow[DURATION_SLOTS - 1] = 1;
        assert_eq!(
            quantile(&slow, 0.5),
            DURATION_BUCKETS_SECONDS.last().copied()
        );
    }

    #[test]
    fn the_sample_ring_covers_the_longest_window() {
        let longest = HEALTH_WINDOWS_SECONDS.iter().max().copied().unwrap_or(0);
        assert!(HEALTH_SAMPLE_CAPACITY as u64 >= longest / SAMPLE_INTERVAL.as_secs() + 2);
    }
}
