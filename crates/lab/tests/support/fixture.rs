//! The pipeline and agent tests' view of the lab's world
//! ([`floodgate_lab::world::World`]: real services, each its own HTTP
//! router in process on a manual clock, and the real harness — observe
//! loop, SQLite queue, pipeline, API router — on a manual clock): a fixed
//! traffic sent to every instance each tick instead of the seeded
//! workload, the pipeline policy as given (no lab canary), and the calls
//! these tests make, failing the test where the world's would return an
//! error. Only the clocks are driven by the test. Included by path
//! (`#[path = "support/fixture.rs"] mod fixture;`; also by the CLI's
//! trajectory test).

#![allow(dead_code)]

use floodgate_contract::client::{Method, ServiceApi};
use floodgate_lab::workload::{Generator, Workload};
use floodgate_lab::world::{BackendSpec, World, WorldSpec};
use serde_json::{json, Value};
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// 2026-01-01T00:00:00Z, a Thursday: the lab's start.
pub const T0_MS: u64 = floodgate_lab::world::T0_MS;
/// The lab's tick.
pub const TICK_MS: u64 = floodgate_lab::scenario::TICK_MS;
/// 15 checks per 10 s tick: 90 a minute against a limit of 60.
pub const CHECKS_PER_TICK: usize = 15;
/// Counter keys each instance's memory store holds.
pub const STORE_CAPACITY: u64 = 10_000;

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
    std::env::temp_dir().join(format!(
        "floodgate-pipeline-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The lab's world, with the traffic these tests send.
pub struct TestWorld {
    pub world: World,
    /// What each tick sends to every service: (request, times).
    pub traffic: Vec<(Value, usize)>,
    /// Services no traffic reaches (indices), as a load balancer hashing
    /// few tenants may leave one idle.
    pub idle: Vec<usize>,
}

impl Deref for TestWorld {
    type Target = World;
    fn deref(&self) -> &World {
        &self.world
    }
}

impl DerefMut for TestWorld {
    fn deref_mut(&mut self) -> &mut World {
        &mut self.world
    }
}

/// The scratch data directory goes with the world (a failing test's
/// assertion names what it needs; the directory is no evidence kept).
impl Drop for TestWorld {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.world.data());
    }
}

impl TestWorld {
    pub fn new(name: &str, policy: &str) -> TestWorld {
        TestWorld::with_services(name, policy, 1)
    }

    pub fn with_services(name: &str, policy: &str, count: usize) -> TestWorld {
        TestWorld::build(name, LIMITS, OBJECTIVES, policy, count)
    }

    /// `count` services (`svc-a` is the canary), each with its own memory
    /// store, behind one harness; traffic goes to every one.
    pub fn build(
        name: &str,
        limits: &str,
        objectives: &str,
        policy: &str,
        count: usize,
    ) -> TestWorld {
        let spec = WorldSpec {
            limits: limits.to_owned(),
            objectives: objectives.to_owned(),
            policy: policy.to_owned(),
            store_capacity: STORE_CAPACITY,
            backend: BackendSpec::Memory,
            instances: u32::try_from(count).expect("a few services"),
            t0_ms: T0_MS,
            seed: 0,
            data: scratch(name),
            network: None,
        };
        // The seeded workload stays empty: these tests send their own.
        let workload = Workload {
            domain: "api".into(),
            key: "tenant".into(),
            tenants: Vec::new(),
            diurnal_amplitude: 0.0,
        };
        let world = World::build(&spec, Generator::new(workload, 0))
            .unwrap_or_else(|error| panic!("{error:#}"));
        TestWorld {
            world,
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

    /// One tick: traffic, then the harness observes (and advances the
    /// pipeline), then both clocks move on.
    pub async fn tick(&mut self) {
        self.observe().await;
        self.advance();
    }

    /// This tick's traffic, then the harness observes (and advances the
    /// pipeline). The clocks do not move.
    pub async fn observe(&mut self) {
        for (index, service) in self.world.services.iter().enumerate() {
            if self.idle.contains(&index) {
                continue;
            }
            for (request, times) in &self.traffic {
                for _ in 0..*times {
                    service.check(request).await.expect("check");
                }
            }
        }
        if let Err(error) = self.world.observe().await {
            panic!("{error:#}");
        }
    }

    /// Both clocks move on by one tick.
    pub fn advance(&self) {
        self.world.advance(TICK_MS);
    }

    pub async fn ticks(&mut self, count: u64) {
        for _ in 0..count {
            self.tick().await;
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.world
            .call(method, path, body)
            .await
            .unwrap_or_else(|error| panic!("{error:#}"))
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
        let state = self.world.services[service].state().await.expect("state");
        state
            .limits
            .iter()
            .find(|limit| limit.name == "per_tenant")
            .expect("per_tenant")
            .requests_per_unit
    }

    /// The canary's `/v1/state`, as JSON.
    pub async fn service_state(&self) -> Value {
        serde_json::to_value(self.world.service().state().await.expect("state")).expect("json")
    }

    pub async fn config_hash(&self) -> String {
        self.world
            .service()
            .state()
            .await
            .expect("state")
            .config
            .hash
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
