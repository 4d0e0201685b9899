//! A simulated world for pipeline and agent tests: real services (their
//! own HTTP routers, in process, on a manual clock), the real harness
//! (observe loop, SQLite queue, pipeline, API router) on a manual clock,
//! and traffic sent every tick. Only the clocks are driven by the test.

#![allow(dead_code)]

use floodgate_contract::client::{Method, RawRequest, ServiceApi, Transport};
use floodgate_harness::policy::Policy;
use floodgate_harness::{
    api, objectives, pipeline::Pipeline, Harness, HarnessConfig, HarnessState, ManualClock,
    Observer, Store, Target,
};
use floodgate_limiter::config::{self, ConfigSource};
use floodgate_service::auth::Access;
use floodgate_service::clock::ManualClock as ServiceClock;
use floodgate_service::engine::EngineOptions;
use floodgate_service::inprocess::InProcessTransport;
use floodgate_service::ServiceParts;
use floodgate_store::MemoryStore;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// 2026-01-01T00:00:00Z, a Thursday.
pub const T0_MS: u64 = 1_767_225_600_000;
pub const TICK_MS: u64 = 10_000;
/// 15 checks per 10 s tick: 90 a minute against a limit of 60.
pub const CHECKS_PER_TICK: usize = 15;

pub const LIMITS: &str = "
domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: minute, requests_per_unit: 60, name: per_tenant}
";

pub const OBJECTIVES: &str = "
slos:
  - name: availability
    service: floodgate
    target: 99.9%
    window: 30d
    sli:
      ratio:
        good: floodgate_requests_total{code!=\"error\"}
        total: floodgate_requests_total
";

pub fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "floodgate-pipeline-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub struct World {
    pub service_clock: Arc<ServiceClock>,
    pub clock: Arc<ManualClock>,
    /// The canary, `svc-a`.
    pub service: InProcessTransport,
    pub services: Vec<InProcessTransport>,
    pub harness: InProcessTransport,
    pub observer: Observer,
    pub data: PathBuf,
    /// What each tick sends to every service: (request, times).
    pub traffic: Vec<(Value, usize)>,
    /// Services no traffic reaches (indices), as a load balancer hashing
    /// few tenants may leave one idle.
    pub idle: Vec<usize>,
}

/// The scratch data directory goes with the world (a failing test's
/// assertion names what it needs; the directory is no evidence kept).
impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

impl World {
    pub fn new(name: &str, policy: &str) -> World {
        World::with_services(name, policy, 1)
    }

    pub fn with_services(name: &str, policy: &str, count: usize) -> World {
        World::build(name, LIMITS, OBJECTIVES, policy, count)
    }

    /// `count` services (`svc-a` is the canary), each with its own store,
    /// behind one harness; traffic goes to every one.
    pub fn build(name: &str, limits: &str, objectives: &str, policy: &str, count: usize) -> World {
        let service_clock = Arc::new(ServiceClock::at_ns(T0_MS * 1_000_000));
        let services: Vec<InProcessTransport> = (0..count)
            .map(|_| {
                let parts = ServiceParts {
                    table: config::load(&[ConfigSource::new("limits.yaml", limits)])
                        .expect("limits"),
                    store: MemoryStore::new(10_000),
                    clock: service_clock.clone(),
                    options: EngineOptions::default(),
                    access: Access::open(),
                    control: Default::default(),
                    traffic_capacity: floodgate_service::limits::DEFAULT_TRAFFIC_CAPACITY,
                };
                InProcessTransport::new(floodgate_service::assemble(parts).router, None)
            })
            .collect();
        let service = services[0].clone();

        let objectives = objectives::parse("objectives.yaml", objectives).expect("objectives");
        let harness = Harness::new(objectives, HarnessConfig::default()).expect("harness");
        let data = scratch(name);
        let store = Store::open(&data).expect("store");
        let clock = Arc::new(ManualClock::at_ms(T0_MS));
        let state = HarnessState::new(harness, store, clock.clone());
        let targets: Vec<Target> = services
            .iter()
            .enumerate()
            .map(|(index, transport)| Target {
                name: format!("svc-{}", (b'a' + index as u8) as char),
                transport: Arc::new(transport.clone()),
            })
            .collect();
        let policy = Policy::parse("policy.yaml", policy).unwrap_or_else(|error| panic!("{error}"));
        let pipeline = Pipeline::new(&state, targets.clone(), policy).expect("pipeline");
        state.set_pipeline(pipeline).expect("one pipeline");
        let observer = Observer::new(state.clone(), targets).expect("observer");
        let harness = InProcessTransport::new(api::router(state), None);
        World {
            service_clock,
            clock,
            service,
            services,
            harness,
            observer,
            data,
            traffic: vec![(
                json!({
                    "domain": "api",
                    "descriptors": [{"entries": [{"key": "tenant", "value": "acme"}]}],
                }),
                CHECKS_PER_TICK,
            )],
            idle: Vec::new(),
        }
    }

    pub fn now(&self) -> u64 {
        floodgate_harness::Clock::now_ms(self.clock.as_ref())
    }

    /// One tick: traffic, then the harness observes (and advances the
    /// pipeline), then both clocks move on.
    pub async fn tick(&mut self) {
        self.observe().await;
        self.advance();
    }

    /// This tick's traffic, then the harness observes (and advances the
    /// pipeline). The clocks do not move.
    pub async fn observe(&mut self) {
        for (index, service) in self.services.iter().enumerate() {
            if self.idle.contains(&index) {
                continue;
            }
            for (request, times) in &self.traffic {
                for _ in 0..*times {
                    service.check(request).await.expect("check");
                }
            }
        }
        let now = self.now();
        let report = self.observer.observe_once(now).await;
        assert!(
            report.errors.is_empty(),
            "tick at {now}: {:?}",
            report.errors
        );
    }

    /// Both clocks move on by one tick.
    pub fn advance(&self) {
        self.clock.advance_ms(TICK_MS);
        self.service_clock.advance_ns(TICK_MS * 1_000_000);
    }

    pub async fn ticks(&mut self, count: u64) {
        for _ in 0..count {
            self.tick().await;
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = self
            .harness
            .send(RawRequest {
                method,
                path: path.to_owned(),
                body: body.map(|body| serde_json::to_vec(&body).expect("json")),
            })
            .await
            .expect("harness answers");
        let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        (response.status, value)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::Post, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, value) = self.call(Method::Get, path, None).await;
        assert_eq!(status, 200, "GET {path}: {value}");
        value
    }

    /// Files the human ticket "acme is limited too strictly" and claims it.
    pub async fn file_and_claim(&self, criterion: &str) -> String {
        let (status, filed) = self
            .post(
                "/v1/tickets",
                json!({
                    "type": "incident",
                    "objective": {"description": "acme is limited too strictly"},
                    "acceptance_criteria": [
                        {"metric": "over_limit_ratio", "condition": criterion, "duration": "5m sustained"}
                    ],
                    "constraints": [],
                    "priority": "high",
                }),
            )
            .await;
        assert_eq!(status, 201, "{filed}");
        let id = filed["ticket"]["id"].as_str().expect("id").to_owned();
        let (status, claimed) = self
            .post("/v1/agent/claim", json!({"agent": "agent-1"}))
            .await;
        assert_eq!(status, 200, "{claimed}");
        assert_eq!(claimed["ticket"]["id"], id.as_str());
        assert_eq!(claimed["ticket"]["state"], "claimed");
        id
    }

    pub async fn propose(&self, ticket: &str, actions: Value) -> (u16, Value) {
        self.post(
            &format!("/v1/tickets/{ticket}/proposals"),
            json!({
                "agent": "agent-1",
                "rationale": "acme's steady 90/min is over its 60/min limit",
                "actions": actions,
            }),
        )
        .await
    }

    pub async fn proposal(&self, id: &str) -> Value {
        self.get(&format!("/v1/proposals/{id}")).await["proposal"].clone()
    }

    pub async fn ticket_state(&self, id: &str) -> String {
        self.get(&format!("/v1/tickets/{id}")).await["ticket"]["state"]
            .as_str()
            .expect("state")
            .to_owned()
    }

    pub async fn limit(&self) -> u64 {
        self.limit_of(0).await
    }

    pub async fn limit_of(&self, service: usize) -> u64 {
        let state = self.services[service].state().await.expect("state");
        state
            .limits
            .iter()
            .find(|limit| limit.name == "per_tenant")
            .expect("per_tenant")
            .requests_per_unit
    }

    /// The canary's `/v1/state`, as JSON.
    pub async fn service_state(&self) -> Value {
        serde_json::to_value(self.service.state().await.expect("state")).expect("json")
    }

    pub async fn config_hash(&self) -> String {
        self.service.state().await.expect("state").config.hash
    }
}

/// One `set_limit` of per_tenant to `value`, as a proposal's actions.
pub fn raise_to(value: u64) -> Value {
    json!([{
        "action": "set_limit",
        "params": {"domain": "api", "limit": "per_tenant", "requests_per_unit": value},
    }])
}

/// A proposal's records as `stage:result`, oldest first.
pub fn stages(proposal: &Value) -> Vec<String> {
    proposal["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|record| {
            format!(
                "{}:{}",
                record["stage"].as_str().unwrap_or("?"),
                record["result"].as_str().unwrap_or("?")
            )
        })
        .collect()
}
