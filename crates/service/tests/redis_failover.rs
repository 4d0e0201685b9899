//! Redis killed under load, against a real `redis-server`: the failure
//! policy decides every request while Redis is down (switched at run time
//! through `set_failure_policy`; counted by the service's fallback
//! metric), no request hangs on the dead backend (the client gives up on
//! a request after `MAX_WAIT`, and that fails the test), the outage and
//! the recovery are events, and after Redis comes back empty on the same
//! port the service decides in Redis again without a restart. Synchronised
//! on events (`/v1/events?wait_ms=`), never on sleeps; nothing is timed.

#[path = "../../store/tests/support/mod.rs"]
mod support;

use floodgate_limiter::config::{self, ConfigSource};
use floodgate_service::clock::SystemClock;
use floodgate_service::engine::EngineOptions;
use floodgate_service::ServiceParts;
use floodgate_store::{FailurePolicy, RedisOptions, RedisStore, ResilientOptions, ResilientStore};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{RedisServer, Reply};

const CONFIG: &str = "domain: api\ndescriptors:\n  - key: user\n    rate_limit: {name: per_user, unit: day, requests_per_unit: 10}\n";
/// The per-user limit above.
const LIMIT: u64 = 10;
/// The Redis command timeout under test.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(50);
/// The client's bound on one request: past it the request fails, and the
/// test with it. What is tested is that no request hangs on a dead backend
/// (a connect or read left to the OS takes seconds to minutes); the bound
/// is a hundred command timeouts, so that a loaded machine running a debug
/// build beside other tests never trips it. A guard against hanging, not
/// a measurement: latency is measured by the benchmarks.
const MAX_WAIT: Duration = Duration::from_secs(5);
/// Long polls for one event, each up to `EVENT_WAIT_MS`: 60 s in all.
const EVENT_POLLS: usize = 12;
const EVENT_WAIT_MS: u64 = 5_000;
/// Concurrent request loops while Redis is killed.
const LOAD_TASKS: usize = 4;
/// Requests each load task sends after the outage was reported.
const REQUESTS_AFTER_DOWN: usize = 25;
/// The most requests one load task sends (a bound; the outage is reported
/// long before).
const MAX_LOAD_REQUESTS: usize = 100_000;

struct Service {
    http: SocketAddr,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Service {
    async fn start(redis_url: &str, policy: FailurePolicy, share: f64) -> Service {
        let table =
            config::load(&[ConfigSource::new("test.yaml", CONFIG)]).expect("valid test config");
        let mut options = RedisOptions::new(redis_url);
        options.command_timeout = COMMAND_TIMEOUT;
        let redis = RedisStore::new(options).expect("redis options");
        let store = ResilientStore::new(
            redis,
            ResilientOptions {
                policy,
                local_share: share,
                ..ResilientOptions::default()
            },
        )
        .expect("resilient options");
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let http_addr = http.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let parts = ServiceParts {
            table,
            store,
            clock: Arc::new(SystemClock),
            options: EngineOptions::default(),
            access: floodgate_service::auth::Access::open(),
            control: floodgate_service::control::ControlOptions::default(),
            traffic_capacity: floodgate_service::limits::DEFAULT_TRAFFIC_CAPACITY,
        };
        let task = tokio::spawn(async move {
            floodgate_service::run(parts, grpc, http, async move {
                let _ = stopped.await;
            })
            .await;
        });
        Service {
            http: http_addr,
            client: reqwest::Client::builder()
                .timeout(MAX_WAIT)
                .build()
                .expect("client"),
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// One check for `user`: admitted or not. A request the service does
    /// not answer within the client's `MAX_WAIT` fails the test.
    async fn check(&self, user: &str) -> bool {
        let body = json!({"domain": "api", "descriptors": [{"entries": [{"key": "user", "value": user}]}]});
        let response = self
            .client
            .post(self.url("/v1/check"))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|error| {
                panic!("check {user} not answered within {MAX_WAIT:?}: {error}")
            });
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        match status {
            200 => true,
            429 => false,
            other => panic!("check {user}: status {other}: {text}"),
        }
    }

    /// The service's `floodgate_backend_fallback_decisions_total` for
    /// `policy` (0 when not exposed yet).
    async fn fallback_decisions(&self, policy: &str) -> u64 {
        let metrics = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let prefix = format!("floodgate_backend_fallback_decisions_total{{policy=\"{policy}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .map_or(0, |value| {
                value.trim().parse::<f64>().expect("a count") as u64
            })
    }

    async fn get(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    async fn set_policy(&self, policy: &str) {
        let response = self
            .client
            .post(self.url("/v1/actions/set_failure_policy"))
            .json(&json!({"params": {"policy": policy}, "reason": "test"}))
            .send()
            .await
            .expect("action");
        assert!(
            response.status().is_success(),
            "{:?}",
            response.text().await
        );
    }

    /// Waits (long polls, bounded) for the next `backend_health_changed`
    /// event after `after` whose `healthy` is `healthy`; returns its seq.
    async fn wait_backend_event(&self, after: u64, healthy: bool) -> (u64, Value) {
        let mut cursor = after;
        for _ in 0..EVENT_POLLS {
            let page = self
                .get(&format!(
                    "/v1/events?after={cursor}&type=backend_health_changed&wait_ms={EVENT_WAIT_MS}"
                ))
                .await;
            for event in page["events"].as_array().into_iter().flatten() {
                if event["data"]["healthy"] == healthy {
                    return (event["seq"].as_u64().unwrap_or(0), event["data"].clone());
                }
            }
            cursor = page["next_after"].as_u64().unwrap_or(cursor);
        }
        panic!("no backend_health_changed (healthy: {healthy}) event after seq {after}");
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

fn dbsize(redis: &RedisServer) -> i64 {
    match redis.command(&["DBSIZE"]) {
        Reply::Int(n) => n,
        other => panic!("DBSIZE: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_under_load_policies_hold_and_recovery_is_detected() {
    let mut redis = RedisServer::start();
    let service = Arc::new(Service::start(&redis.url(), FailurePolicy::FailClosed, 0.5).await);

    // Healthy: Redis decides (the keys land in Redis).
    for _ in 0..3 {
        assert!(service.check("warmup").await);
    }
    assert!(dbsize(&redis) >= 1, "decisions went to Redis");
    let state = service.get("/v1/state").await;
    assert_eq!(state["store"]["healthy"], true, "{state}");
    assert_eq!(state["store"]["failure_policy"], "fail_closed", "{state}");
    let newest = state["events"]["newest_seq"].as_u64().unwrap_or(0);

    // Load from several tasks, each request on a fresh user (so Redis
    // admits every one while it is up), recording whether Redis had been
    // killed when each started.
    let killed = Arc::new(AtomicBool::new(false));
    let (down_tx, down_rx) = tokio::sync::watch::channel(false);
    let mut load = Vec::new();
    for task in 0..LOAD_TASKS {
        let service = service.clone();
        let down = down_rx.clone();
        let killed = Arc::clone(&killed);
        load.push(tokio::spawn(async move {
            let mut results = Vec::new();
            let mut after_down = 0;
            for n in 0..MAX_LOAD_REQUESTS {
                // Read before the request starts: a request counted as
                // after the outage was reported surely started after the
                // kill (read after it, one that started before the kill
                // could be counted, and the tally fell one short).
                let reported = *down.borrow();
                let after_kill = killed.load(Ordering::SeqCst);
                let admitted = service.check(&format!("load-{task}-{n}")).await;
                results.push((after_kill, admitted));
                if reported {
                    after_down += 1;
                    if after_down == REQUESTS_AFTER_DOWN {
                        break;
                    }
                }
            }
            results
        }));
    }

    // Kill Redis while the load runs.
    let fail_closed_before = service.fallback_decisions("fail_closed").await;
    redis.kill();
    killed.store(true, Ordering::SeqCst);
    let (down_seq, event) = service.wait_backend_event(newest, false).await;
    assert_eq!(event["backend"], "redis", "{event}");
    let detail = event["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("down") || detail.starts_with("degraded"),
        "{event}"
    );
    let _ = down_tx.send(true);
    let mut during_outage = 0;
    for task in load {
        for (after_kill, admitted) in task.await.expect("load task") {
            if after_kill {
                during_outage += 1;
                assert!(
                    !admitted,
                    "fail_closed admitted a request during the outage"
                );
            }
        }
    }
    assert!(during_outage >= LOAD_TASKS * REQUESTS_AFTER_DOWN);
    // Each of them was decided by the failure policy, not by a backend
    // that answered late.
    let decided = service.fallback_decisions("fail_closed").await - fail_closed_before;
    assert!(
        decided >= during_outage as u64,
        "{decided} fail_closed decisions for {during_outage} requests during the outage"
    );

    // Reported as down in state and health.
    let state = service.get("/v1/state").await;
    assert_eq!(state["store"]["healthy"], false, "{state}");
    // The health history says when and why it went down.
    let transitions = state["store"]["transitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let down_at = transitions.len();
    assert!(down_at >= 1, "{state}");
    assert!(transitions.iter().all(|t| t["healthy"] == false), "{state}");
    assert!(
        transitions[0]["time_ms"].as_u64().is_some_and(|t| t > 0),
        "{state}"
    );
    assert!(
        !transitions[0]["detail"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{state}"
    );
    let health = service.get("/v1/health").await;
    assert_eq!(health["status"], "degraded", "{health}");
    let check = health["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == "backend"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(check["pass"], false, "{health}");

    // fail_open, switched at run time: every request admitted, none waits.
    service.set_policy("fail_open").await;
    let fail_open_before = service.fallback_decisions("fail_open").await;
    for _ in 0..20 {
        assert!(
            service.check("open").await,
            "fail_open rejected during the outage"
        );
    }
    assert_eq!(
        service.fallback_decisions("fail_open").await - fail_open_before,
        20,
        "fail_open decided every request"
    );
    // local_fallback: this instance's share (0.5 of 10 = 5), decided in memory.
    service.set_policy("local_fallback").await;
    let mut admitted = 0;
    for _ in 0..(2 * LIMIT) {
        admitted += u64::from(service.check("local").await);
    }
    assert_eq!(admitted, LIMIT / 2, "local fallback gives half the quota");
    let metrics = service
        .client
        .get(service.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("floodgate_backend_up 0"), "{metrics}");
    for policy in ["fail_open", "fail_closed", "local_fallback"] {
        let line = format!("floodgate_backend_fallback_decisions_total{{policy=\"{policy}\"}} 0\n");
        assert!(
            !metrics.contains(&line),
            "{policy} decided nothing: {metrics}"
        );
    }

    // Redis back, empty, on the same port: the probe notices, without a
    // service restart, and decisions go to Redis again.
    service.set_policy("fail_closed").await;
    redis.restart();
    assert_eq!(dbsize(&redis), 0);
    let (_, event) = service.wait_backend_event(down_seq, true).await;
    assert!(
        event["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("up"),
        "{event}"
    );
    let state = service.get("/v1/state").await;
    assert_eq!(state["store"]["healthy"], true, "{state}");
    let transitions = state["store"]["transitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(transitions.len(), down_at + 1, "{state}");
    assert_eq!(transitions[down_at]["healthy"], true, "{state}");
    assert!(transitions[down_at]["time_ms"].as_u64() >= transitions[0]["time_ms"].as_u64());
    let fail_closed_before = service.fallback_decisions("fail_closed").await;
    for _ in 0..LIMIT {
        assert!(
            service.check("after").await,
            "Redis admits again under fail_closed"
        );
    }
    assert!(!service.check("after").await, "Redis enforces the limit");
    assert_eq!(
        service.fallback_decisions("fail_closed").await,
        fail_closed_before,
        "Redis decided, not the policy"
    );
    assert!(dbsize(&redis) >= 1, "decisions went to Redis again");
    let health = service.get("/v1/health").await;
    assert_eq!(health["status"], "ok", "{health}");

    match Arc::try_unwrap(service) {
        Ok(service) => service.stop().await,
        Err(_) => panic!("service still shared"),
    }
}
