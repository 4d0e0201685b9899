//! Shared test support: a seeded random source, a synthetic rate-limit
//! service that renders `/metrics` like the real one (and a fake one that
//! answers the service API through the contract's `Transport`), and
//! scratch data directories.
#![allow(dead_code)]

use async_trait::async_trait;
use floodgate_contract::client::{ClientError, Method, RawRequest, RawResponse, Transport};
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The one seeded generator (SplitMix64); tests start it with
/// `Rng::from_state(seed)`.
#[allow(unused_imports)]
pub use floodgate_contract::rng::Rng;

/// The seed of a test: `FLOODGATE_TEST_SEED` when set, else `default`.
/// Printed so a failure can be replayed.
pub fn seed(default: u64) -> u64 {
    let seed = std::env::var("FLOODGATE_TEST_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default);
    eprintln!("seed: {seed} (replay with FLOODGATE_TEST_SEED={seed})");
    seed
}

/// A rate-limit service as its metrics show it: cumulative counters
/// rendered in the exposition format, with the catalog's names.
#[derive(Debug, Clone, Default)]
pub struct SyntheticService {
    pub ok: u64,
    pub over_limit: u64,
    pub errors: u64,
    /// Cumulative observations per bucket bound of the duration histogram.
    pub fast: u64,
    pub within: u64,
    pub over: u64,
    pub keys: u64,
    pub capacity: u64,
}

impl SyntheticService {
    pub fn new() -> SyntheticService {
        SyntheticService {
            capacity: 100_000,
            ..SyntheticService::default()
        }
    }

    /// One tick of traffic: `requests` decisions of which `errors` failed,
    /// `slow` slower than 1 ms.
    pub fn serve(&mut self, requests: u64, errors: u64, slow: u64) {
        let errors = errors.min(requests);
        self.errors += errors;
        self.ok += requests - errors;
        self.fast += requests - slow.min(requests);
        self.within += requests - errors;
    }

    pub fn requests(&self) -> u64 {
        self.ok + self.over_limit + self.errors
    }

    pub fn render(&self) -> String {
        let total = self.requests();
        let mut out = String::new();
        out.push_str("# HELP floodgate_requests_total Rate-limit decisions answered.\n");
        out.push_str("# TYPE floodgate_requests_total counter\n");
        out.push_str(&format!(
            "floodgate_requests_total{{api=\"grpc\",code=\"ok\"}} {}\n",
            self.ok
        ));
        out.push_str(&format!(
            "floodgate_requests_total{{api=\"grpc\",code=\"over_limit\"}} {}\n",
            self.over_limit
        ));
        out.push_str(&format!(
            "floodgate_requests_total{{api=\"grpc\",code=\"error\"}} {}\n",
            self.errors
        ));
        out.push_str("# TYPE floodgate_request_duration_seconds histogram\n");
        for bound in floodgate_contract::metrics::DURATION_BUCKETS_SECONDS {
            let count = if *bound >= 0.001 {
                total
            } else {
                self.fast / 2
            };
            let count = if (*bound - 0.001).abs() < 1e-12 {
                self.fast
            } else {
                count
            };
            out.push_str(&format!(
                "floodgate_request_duration_seconds_bucket{{api=\"grpc\",le=\"{bound}\"}} {count}\n"
            ));
        }
        out.push_str(&format!(
            "floodgate_request_duration_seconds_bucket{{api=\"grpc\",le=\"+Inf\"}} {total}\n"
        ));
        out.push_str(&format!(
            "floodgate_request_duration_seconds_sum{{api=\"grpc\"}} {}\n",
            total as f64 * 0.0004
        ));
        out.push_str(&format!(
            "floodgate_request_duration_seconds_count{{api=\"grpc\"}} {total}\n"
        ));
        out.push_str("# TYPE floodgate_rate_limit_hits_total counter\n");
        out.push_str(&format!(
            "floodgate_rate_limit_hits_total{{domain=\"api\",limit=\"per_tenant\"}} {}\n",
            self.within + self.over
        ));
        out.push_str("# TYPE floodgate_rate_limit_within_limit_total counter\n");
        out.push_str(&format!(
            "floodgate_rate_limit_within_limit_total{{domain=\"api\",limit=\"per_tenant\"}} {}\n",
            self.within
        ));
        out.push_str("# TYPE floodgate_store_keys gauge\n");
        out.push_str(&format!(
            "floodgate_store_keys{{backend=\"memory\"}} {}\n",
            self.keys
        ));
        out.push_str("# TYPE floodgate_store_capacity_keys gauge\n");
        out.push_str(&format!(
            "floodgate_store_capacity_keys{{backend=\"memory\"}} {}\n",
            self.capacity
        ));
        out
    }

    /// The `/v1/state` document's store part.
    pub fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "version": "test",
            "store": {
                "backend": "memory",
                "healthy": true,
                "keys": self.keys,
                "capacity": self.capacity,
                "used_ratio": self.keys as f64 / self.capacity as f64,
            }
        })
    }
}

/// A service as its HTTP API answers: synthetic metrics, a state and health
/// document, and a ring of events; `down` makes every call fail like a
/// refused connection.
pub struct FakeService {
    pub metrics: Mutex<SyntheticService>,
    pub events: Mutex<Vec<serde_json::Value>>,
    pub down: AtomicBool,
}

impl FakeService {
    pub fn new() -> Arc<FakeService> {
        Arc::new(FakeService {
            metrics: Mutex::new(SyntheticService::new()),
            events: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
        })
    }

    pub fn push_event(&self, seq: u64, time_ms: u64) {
        self.events.lock().expect("events").push(json!({
            "seq": seq,
            "time_ms": time_ms,
            "actor": "system",
            "type": "service_stopping",
            "data": {},
        }));
    }

    fn store(&self) -> serde_json::Value {
        let metrics = self.metrics.lock().expect("metrics");
        json!({
            "backend": "memory",
            "healthy": true,
            "keys": metrics.keys,
            "capacity": metrics.capacity,
            "used_ratio": metrics.keys as f64 / metrics.capacity as f64,
            "evictions": {"expired": 0, "lru": 0},
            "failure_policy": "fail_open",
        })
    }
}

fn answer(status: u16, body: serde_json::Value) -> Result<RawResponse, ClientError> {
    Ok(RawResponse {
        status,
        body: serde_json::to_vec(&body).expect("json"),
    })
}

#[async_trait]
impl Transport for FakeService {
    async fn send(&self, request: RawRequest) -> Result<RawResponse, ClientError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ClientError::Transport("connection refused".into()));
        }
        assert_eq!(request.method, Method::Get);
        let path = request.path.as_str();
        if path == "/metrics" {
            let text = self.metrics.lock().expect("metrics").render();
            return Ok(RawResponse {
                status: 200,
                body: text.into_bytes(),
            });
        }
        if path == "/v1/health" {
            return answer(
                200,
                json!({
                    "status": "ok", "version": "test", "uptime_seconds": 1,
                    "config": {"version": 1, "domains": 1, "limits": 1},
                    "store": self.store(), "windows": [], "checks": [],
                }),
            );
        }
        if path == "/v1/state" {
            return answer(
                200,
                json!({
                    "version": "test", "uptime_seconds": 1,
                    "config": {"version": 1, "hash": "sha256:00", "domains": ["api"]},
                    "store": self.store(), "limits": [], "drain": {"draining": false},
                    "events": {"oldest_seq": 1, "newest_seq": 1, "capacity": 1000},
                    "access_control": false,
                }),
            );
        }
        if let Some(query) = path.strip_prefix("/v1/events?after=") {
            let after: u64 = query
                .split('&')
                .next()
                .and_then(|after| after.parse().ok())
                .expect("after is a number");
            let events = self.events.lock().expect("events");
            let page: Vec<_> = events
                .iter()
                .filter(|event| event["seq"].as_u64() > Some(after))
                .cloned()
                .collect();
            let newest = events.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
            let oldest = events.first().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
            return answer(
                200,
                json!({
                    "events": page, "next_after": newest.max(after),
                    "oldest_seq": oldest, "newest_seq": newest,
                }),
            );
        }
        answer(
            404,
            json!({"error": {"kind": "not_found", "field": "path", "message": path}}),
        )
    }
}

/// A fresh, empty directory under the system temp dir, unique per call.
pub fn scratch_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "floodgate-harness-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creates a scratch directory");
    dir
}

/// 2023-11-14T22:13:20Z: simulated clocks start here.
pub const T0_MS: u64 = 1_700_000_000_000;
/// The scrape interval of simulations.
pub const TICK_MS: u64 = 10_000;
