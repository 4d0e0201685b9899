//! The pipeline end to end under simulated time: a real service (its own
//! HTTP router, in process, on a manual clock), the real harness (observe
//! loop, SQLite queue, API router), and an agent speaking the harness API.
//! Every stage — test, approval, canary, deploy, verify, rollback — runs
//! exactly as in production; only the clocks are driven by the test.

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
const T0_MS: u64 = 1_767_225_600_000;
const TICK_MS: u64 = 10_000;
/// 15 checks per 10 s tick: 90 a minute against a limit of 60.
const CHECKS_PER_TICK: usize = 15;

const LIMITS: &str = "
domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: minute, requests_per_unit: 60, name: per_tenant}
";

const OBJECTIVES: &str = "
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

fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "floodgate-pipeline-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

struct World {
    service_clock: Arc<ServiceClock>,
    clock: Arc<ManualClock>,
    /// The canary, `svc-a`.
    service: InProcessTransport,
    services: Vec<InProcessTransport>,
    harness: InProcessTransport,
    observer: Observer,
    data: PathBuf,
}

impl World {
    fn new(name: &str, policy: &str) -> World {
        World::with_services(name, policy, 1)
    }

    /// `count` services (`svc-a` is the canary), each with its own store,
    /// behind one harness; traffic goes to every one.
    fn with_services(name: &str, policy: &str, count: usize) -> World {
        let service_clock = Arc::new(ServiceClock::new(T0_MS * 1_000_000));
        let services: Vec<InProcessTransport> = (0..count)
            .map(|_| {
                let parts = ServiceParts {
                    table: config::load(&[ConfigSource::new("limits.yaml", LIMITS)])
                        .expect("limits"),
                    store: MemoryStore::new(10_000),
                    clock: service_clock.clone(),
                    options: EngineOptions::default(),
                    access: Access::open(),
                    control: Default::default(),
                };
                InProcessTransport::new(floodgate_service::assemble(parts).router, None)
            })
            .collect();
        let service = services[0].clone();

        let objectives = objectives::parse("objectives.yaml", OBJECTIVES).expect("objectives");
        let harness = Harness::new(objectives, HarnessConfig::default()).expect("harness");
        let data = scratch(name);
        let store = Store::open(&data).expect("store");
        let clock = Arc::new(ManualClock::new(T0_MS));
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
        }
    }

    fn now(&self) -> u64 {
        floodgate_harness::Clock::now_ms(self.clock.as_ref())
    }

    /// One tick: traffic, then the harness observes (and advances the
    /// pipeline), then both clocks move on.
    async fn tick(&mut self) {
        for service in &self.services {
            for _ in 0..CHECKS_PER_TICK {
                let request = json!({
                    "domain": "api",
                    "descriptors": [{"entries": [{"key": "tenant", "value": "acme"}]}],
                });
                service.check(&request).await.expect("check");
            }
        }
        let now = self.now();
        let report = self.observer.observe_once(now).await;
        assert!(
            report.errors.is_empty(),
            "tick at {now}: {:?}",
            report.errors
        );
        self.clock.advance(TICK_MS);
        self.service_clock.advance(TICK_MS * 1_000_000);
    }

    async fn ticks(&mut self, count: u64) {
        for _ in 0..count {
            self.tick().await;
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
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

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::Post, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, value) = self.call(Method::Get, path, None).await;
        assert_eq!(status, 200, "GET {path}: {value}");
        value
    }

    /// Files the human ticket "acme is limited too strictly" and claims it.
    async fn file_and_claim(&self, criterion: &str) -> String {
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

    async fn propose(&self, ticket: &str, actions: Value) -> (u16, Value) {
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

    async fn proposal(&self, id: &str) -> Value {
        self.get(&format!("/v1/proposals/{id}")).await["proposal"].clone()
    }

    async fn ticket_state(&self, id: &str) -> String {
        self.get(&format!("/v1/tickets/{id}")).await["ticket"]["state"]
            .as_str()
            .expect("state")
            .to_owned()
    }

    async fn limit(&self) -> u64 {
        self.limit_of(0).await
    }

    async fn limit_of(&self, service: usize) -> u64 {
        let state = self.services[service].state().await.expect("state");
        state
            .limits
            .iter()
            .find(|limit| limit.name == "per_tenant")
            .expect("per_tenant")
            .requests_per_unit
    }

    async fn config_hash(&self) -> String {
        self.service.state().await.expect("state").config.hash
    }
}

fn raise_to(value: u64) -> Value {
    json!([{
        "action": "set_limit",
        "params": {"domain": "api", "limit": "per_tenant", "requests_per_unit": value},
    }])
}

fn stages(proposal: &Value) -> Vec<String> {
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

#[tokio::test]
async fn a_good_fix_is_tested_canaried_deployed_verified_and_resolves_the_ticket() {
    let mut world = World::new("good", "");
    world.ticks(40).await;
    let ticket = world.file_and_claim("< 1%").await;

    let (status, answer) = world.propose(&ticket, raise_to(120)).await;
    assert_eq!(status, 201, "{answer}");
    let proposal = &answer["proposal"];
    let id = proposal["id"].as_str().expect("id").to_owned();
    // Tested (a dry run on the service), then applied to the canary, which
    // with one service is judged against its own window before the change.
    assert_eq!(proposal["stage"], "canary", "{proposal}");
    assert_eq!(
        proposal["test"][0]["changes"][0]["after"], 120,
        "{proposal}"
    );
    assert_eq!(proposal["canary"]["baseline"], "before_after");
    assert_eq!(world.limit().await, 120);
    assert_eq!(world.ticket_state(&ticket).await, "in_progress");

    // Two minutes of canary, then deploy (nothing left to deploy to) and
    // verification.
    world.ticks(13).await;
    let proposal = world.proposal(&id).await;
    assert_eq!(proposal["stage"], "verifying", "{:?}", stages(&proposal));
    assert_eq!(
        proposal["canary"]["verdict"]["outcome"], "successful",
        "{proposal}"
    );
    assert_eq!(world.ticket_state(&ticket).await, "verifying");

    // The criterion (over_limit_ratio < 1% for 5m) is judged once five
    // minutes lie wholly after the deploy.
    world.ticks(31).await;
    let proposal = world.proposal(&id).await;
    assert_eq!(proposal["stage"], "succeeded", "{:?}", stages(&proposal));
    assert_eq!(
        stages(&proposal),
        [
            "testing:passed",
            "canary:applied",
            "canary:successful",
            "deploying:applied",
            "verifying:passed"
        ]
    );
    assert_eq!(world.ticket_state(&ticket).await, "resolved");
    assert_eq!(world.limit().await, 120);

    // Every stage is in the ticket's ledger, and the chain verifies.
    let shown = world.get(&format!("/v1/tickets/{ticket}")).await;
    let kinds: Vec<&str> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|entry| entry["kind"].as_str())
        .collect();
    for kind in [
        "proposal.created",
        "proposal.tested",
        "proposal.canary_started",
        "proposal.canary_judged",
        "proposal.deployed",
        "proposal.verified",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let report = floodgate_harness::verify(&world.data).expect("ledger verifies");
    assert!(report.entries > 10, "{report:?}");
}

#[tokio::test]
async fn a_fix_that_does_not_meet_the_criteria_is_rolled_back_to_the_exact_prior_state() {
    let mut world = World::new("rollback", "verify:\n  max_duration: 5m\n");
    world.ticks(40).await;
    let before_hash = world.config_hash().await;
    let ticket = world.file_and_claim("< 1%").await;

    // 70/min still rejects a fifth of acme's 90/min.
    let (status, answer) = world.propose(&ticket, raise_to(70)).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["proposal"]["id"].as_str().expect("id").to_owned();
    assert_eq!(world.limit().await, 70);

    world.ticks(13 + 31 + 31).await;
    let proposal = world.proposal(&id).await;
    assert_eq!(proposal["stage"], "rolled_back", "{:?}", stages(&proposal));
    assert!(
        proposal["outcome"]
            .as_str()
            .is_some_and(|outcome| outcome.contains("over_limit_ratio")),
        "{proposal}"
    );
    // The inverse restored the limit and the very config (same hash).
    assert_eq!(world.limit().await, 60);
    assert_eq!(world.config_hash().await, before_hash);
    // The ticket is back with its agent, evidence attached.
    assert_eq!(world.ticket_state(&ticket).await, "in_progress");
    let applied = proposal["applied"].as_array().expect("applied");
    assert!(applied.iter().all(|a| a["undone"] == true), "{proposal}");

    // Only now may the agent try again.
    let (status, answer) = world.propose(&ticket, raise_to(120)).await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn only_one_change_at_a_time_and_only_by_the_claimant() {
    let mut world = World::new("conflicts", "");
    world.ticks(3).await;
    let ticket = world.file_and_claim("< 1%").await;
    let (status, answer) = world
        .post(
            &format!("/v1/tickets/{ticket}/proposals"),
            json!({"agent": "someone-else", "rationale": "mine", "actions": raise_to(120)}),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("held by agent-1"));

    let (status, _) = world.propose(&ticket, raise_to(120)).await;
    assert_eq!(status, 201);
    let (status, answer) = world.propose(&ticket, raise_to(130)).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("one change at a time"));
}

#[tokio::test]
async fn bad_parameters_fail_the_test_stage_and_change_nothing() {
    let mut world = World::new("bad-params", "");
    world.ticks(3).await;
    let before = world.config_hash().await;
    let ticket = world.file_and_claim("< 1%").await;
    let (status, answer) = world
        .propose(
            &ticket,
            json!([{"action": "set_limit", "params": {"domain": "api", "limit": "no_such_limit", "requests_per_unit": 5}}]),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let proposal = &answer["proposal"];
    assert_eq!(proposal["stage"], "failed", "{proposal}");
    let outcome = proposal["outcome"].as_str().expect("outcome");
    assert!(
        outcome.contains("actions[0] (set_limit) refused by svc-a"),
        "{outcome}"
    );
    assert!(outcome.contains("no_such_limit"), "{outcome}");
    assert_eq!(world.config_hash().await, before);

    // An action outside the catalog is refused before the pipeline.
    let (status, answer) = world
        .propose(&ticket, json!([{"action": "reboot_host", "params": {}}]))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "actions[0].action");
}

#[tokio::test]
async fn a_high_risk_action_waits_for_a_human_and_a_silent_human_escalates() {
    let mut world = World::new("approval", "approval:\n  timeout: 5m\n");
    world.ticks(3).await;
    let ticket = world.file_and_claim("< 1%").await;
    let remove =
        json!([{"action": "remove_limit", "params": {"domain": "api", "limit": "per_tenant"}}]);
    let (status, answer) = world.propose(&ticket, remove.clone()).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["proposal"]["id"].as_str().expect("id").to_owned();
    assert_eq!(answer["proposal"]["stage"], "awaiting_approval");
    assert_eq!(world.limit().await, 60, "nothing applied before approval");

    // Nobody answers: after the timeout the proposal is rejected and the
    // ticket escalated to a human.
    world.ticks(31).await;
    let proposal = world.proposal(&id).await;
    assert_eq!(proposal["stage"], "rejected", "{:?}", stages(&proposal));
    assert_eq!(world.ticket_state(&ticket).await, "escalated");
    assert_eq!(world.limit().await, 60);
}

#[tokio::test]
async fn an_approved_high_risk_action_proceeds_and_a_rejected_one_does_not() {
    let mut world = World::new("approve", "");
    world.ticks(3).await;
    let ticket = world.file_and_claim("< 1%").await;
    let remove =
        json!([{"action": "remove_limit", "params": {"domain": "api", "limit": "per_tenant"}}]);
    let (_, answer) = world.propose(&ticket, remove.clone()).await;
    let id = answer["proposal"]["id"].as_str().expect("id").to_owned();
    let (status, rejected) = world
        .post(
            &format!("/v1/tickets/{ticket}/reject"),
            json!({"actor": "alice", "reason": "removing the limit is too broad"}),
        )
        .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["proposal"]["stage"], "rejected");
    assert_eq!(world.ticket_state(&ticket).await, "in_progress");

    let (_, answer) = world.propose(&ticket, remove).await;
    let second = answer["proposal"]["id"].as_str().expect("id").to_owned();
    assert_ne!(second, id);
    let (status, approved) = world
        .post(
            &format!("/v1/proposals/{second}/approve"),
            json!({"actor": "alice", "reason": "ok for the test tenant"}),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["proposal"]["stage"], "canary", "{approved}");
    let state = world.service.state().await.expect("state");
    assert!(state.limits.iter().all(|limit| limit.name != "per_tenant"));
    let decision = &approved["proposal"]["approval"]["decision"];
    assert_eq!(decision["actor"], "alice");
    assert_eq!(decision["approved"], true);
}

#[tokio::test]
async fn a_freeze_window_holds_changes_until_it_ends() {
    // A one-off window covering the first ten minutes.
    let policy = "freeze_windows:\n  - name: launch\n    from: 2026-01-01T00:00:00Z\n    until: 2026-01-01T00:10:00Z\n";
    let mut world = World::new("freeze", policy);
    world.ticks(3).await;
    let ticket = world.file_and_claim("< 1%").await;
    let (status, answer) = world.propose(&ticket, raise_to(120)).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["proposal"]["id"].as_str().expect("id").to_owned();
    assert_eq!(answer["proposal"]["stage"], "canary");
    assert!(
        answer["proposal"]["held"]
            .as_str()
            .unwrap_or("")
            .contains("freeze window launch"),
        "{answer}"
    );
    assert_eq!(world.limit().await, 60);
    let status = world.get("/v1/pipeline").await;
    assert_eq!(status["freeze"]["name"], "launch");

    // 00:00:30 now; the window ends at 00:10:00.
    world.ticks(56).await;
    assert_eq!(world.limit().await, 60, "still frozen at {}", world.now());
    world.ticks(2).await;
    assert_eq!(world.limit().await, 120);
    let proposal = world.proposal(&id).await;
    assert!(proposal["held"].is_null(), "{proposal}");
}

#[tokio::test]
async fn the_pause_refuses_new_proposals_and_holds_those_in_flight() {
    let mut world = World::new("pause", "approval:\n  min_risk: medium\n");
    world.ticks(3).await;
    let ticket = world.file_and_claim("< 1%").await;
    let (_, answer) = world.propose(&ticket, raise_to(120)).await;
    let id = answer["proposal"]["id"].as_str().expect("id").to_owned();
    assert_eq!(answer["proposal"]["stage"], "awaiting_approval");

    let (status, paused) = world
        .post(
            "/v1/pause",
            json!({"actor": "alice", "reason": "incident review"}),
        )
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["paused"], true);
    let (status, approved) = world
        .post(
            &format!("/v1/proposals/{id}/approve"),
            json!({"actor": "alice"}),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    // Approved, but held by the pause: nothing reaches the service.
    assert_eq!(approved["proposal"]["stage"], "canary");
    assert_eq!(approved["proposal"]["held"], "the pipeline is paused");
    world.ticks(6).await;
    assert_eq!(world.limit().await, 60);

    let other = world.file_and_claim("< 2%").await;
    let (status, refused) = world.propose(&other, raise_to(100)).await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("paused"));

    let (status, _) = world.post("/v1/resume", json!({"actor": "alice"})).await;
    assert_eq!(status, 200);
    world.ticks(1).await;
    assert_eq!(world.limit().await, 120);
    // Both are in the ledger.
    let ledger = world.get("/v1/ledger?after=0&limit=1000").await;
    let kinds: Vec<&str> = ledger["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|entry| entry["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"pipeline.paused") && kinds.contains(&"pipeline.resumed"));
}

#[tokio::test]
async fn a_spent_budget_escalates_the_ticket() {
    let mut world = World::new("budget", "budgets:\n  proposals_per_ticket: 1\n");
    world.ticks(3).await;
    let ticket = world.file_and_claim("< 1%").await;
    let (_, answer) = world
        .propose(
            &ticket,
            json!([{"action": "set_limit", "params": {"domain": "api", "limit": "nope", "requests_per_unit": 5}}]),
        )
        .await;
    assert_eq!(answer["proposal"]["stage"], "failed");
    let (status, refused) = world.propose(&ticket, raise_to(120)).await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("budget"));
    assert_eq!(world.ticket_state(&ticket).await, "escalated");
}

#[tokio::test]
async fn with_two_services_the_canary_is_judged_against_the_other_then_deployed_to_it() {
    let mut world = World::with_services("two", "", 2);
    world.ticks(40).await;
    let ticket = world.file_and_claim("< 1%").await;
    let (status, answer) = world.propose(&ticket, raise_to(120)).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["proposal"]["id"].as_str().expect("id").to_owned();
    assert_eq!(answer["proposal"]["canary"]["baseline"], "instances");
    assert_eq!(answer["proposal"]["canary"]["target"], "svc-a");
    // Only the canary has it during the canary window.
    assert_eq!(
        (world.limit_of(0).await, world.limit_of(1).await),
        (120, 60)
    );
    world.ticks(13).await;
    let proposal = world.proposal(&id).await;
    assert_eq!(
        proposal["stage"], "verifying",
        "{:#}",
        proposal["canary"]["verdict"]
    );
    assert_eq!(
        (world.limit_of(0).await, world.limit_of(1).await),
        (120, 120)
    );
    let targets: Vec<&str> = proposal["applied"]
        .as_array()
        .expect("applied")
        .iter()
        .filter_map(|applied| applied["target"].as_str())
        .collect();
    assert_eq!(targets, ["svc-a", "svc-b"]);
    world.ticks(31).await;
    assert_eq!(world.proposal(&id).await["stage"], "succeeded");
    assert_eq!(world.ticket_state(&ticket).await, "resolved");
}

#[tokio::test]
async fn a_canary_that_rejects_more_traffic_fails_and_is_undone_before_deploy() {
    // Judge the canary on the share of decisions over the limit: a change
    // that rejects clearly more than the baseline fails.
    let policy = "canary:\n  duration: 2m\n  metrics:\n    - name: over_limit_ratio\n      direction: increase\n      critical: true\n      effect_size: {max_relative_change: 0.2, min_absolute_change: 0.01}\n      min_samples: 3\n";
    let mut world = World::with_services("canary-fails", policy, 2);
    world.ticks(40).await;
    let before = world.config_hash().await;
    let ticket = world.file_and_claim("< 1%").await;
    // Tightening 60 → 30 doubles acme's rejections on the canary.
    let (status, answer) = world.propose(&ticket, raise_to(30)).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["proposal"]["id"].as_str().expect("id").to_owned();
    assert_eq!(world.limit_of(0).await, 30);
    world.ticks(13).await;
    let proposal = world.proposal(&id).await;
    assert_eq!(proposal["stage"], "failed", "{:?}", stages(&proposal));
    assert_eq!(
        proposal["canary"]["verdict"]["outcome"], "failed",
        "{proposal}"
    );
    // The canary change was undone; the other service never saw it.
    assert_eq!((world.limit_of(0).await, world.limit_of(1).await), (60, 60));
    assert_eq!(world.config_hash().await, before);
    assert_eq!(world.ticket_state(&ticket).await, "in_progress");
}

#[tokio::test]
async fn an_agent_may_ask_a_human_a_question_and_gets_the_answer() {
    let mut world = World::new("question", "");
    world.ticks(3).await;
    let ticket = world.file_and_claim("< 1%").await;
    let (status, asked) = world
        .post(
            &format!("/v1/tickets/{ticket}/questions"),
            json!({"agent": "agent-1", "question": "Double per_tenant a second time?"}),
        )
        .await;
    assert_eq!(status, 201, "{asked}");
    let id = asked["proposal"]["id"].as_str().expect("id").to_owned();
    assert_eq!(asked["proposal"]["stage"], "awaiting_approval");
    // A proposal may not overtake the open question.
    let (status, _) = world.propose(&ticket, raise_to(120)).await;
    assert_eq!(status, 409);
    let (status, answered) = world
        .post(
            &format!("/v1/tickets/{ticket}/approve"),
            json!({"actor": "alice", "reason": "yes"}),
        )
        .await;
    assert_eq!(status, 200, "{answered}");
    assert_eq!(answered["proposal"]["id"], id.as_str());
    assert_eq!(answered["proposal"]["stage"], "succeeded");
    assert_eq!(world.limit().await, 60, "a question changes nothing");
    // Someone else's question is refused.
    let (status, refused) = world
        .post(
            &format!("/v1/tickets/{ticket}/questions"),
            json!({"agent": "intruder", "question": "?"}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
}
