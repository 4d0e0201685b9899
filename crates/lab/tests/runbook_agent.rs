//! The runbook agent end to end under simulated time: the shipped
//! runbooks (`runbooks/`), a real service and the real harness (the lab's
//! world, see `support/fixture.rs`), the agent polling the harness API each tick. The SLO
//! evaluator files the ticket, the agent picks the runbook by the ticket's
//! source and fingerprint, and the pipeline tests, canaries, deploys and
//! verifies its change.

#[path = "support/fixture.rs"]
mod fixture;

use fixture::*;
use floodgate_agent::client::HarnessClient;
use floodgate_agent::runbook::{load_dir, PollReport, RunbookAgent};
use serde_json::{json, Value};
use std::path::Path;

/// A daily quota the tenant outgrows after 100 minutes at 24 hits a minute.
const LIMITS: &str = "
domain: api
descriptors:
  - key: tenant
    rate_limits:
      - {name: tenant_per_second, unit: second, requests_per_unit: 100}
      - {name: tenant_per_day, unit: day, requests_per_unit: 2400}
";

/// Every limit's hits, whatever its name (the override the runbook adds
/// has a name of its own).
const OBJECTIVES: &str = "
alerting:
  min_events: 20
slos:
  - name: limiting_correctness
    service: floodgate
    target: 99.99%
    window: 7d
    sli:
      ratio:
        good: floodgate_rate_limit_within_limit_total
        total: floodgate_rate_limit_hits_total
";

fn agent(world: &TestWorld) -> RunbookAgent {
    let runbooks = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runbooks"))
        .unwrap_or_else(|error| panic!("{error}"));
    let client = HarnessClient::new(world.harness.clone()).with_agent("runbook-1");
    RunbookAgent::new(client, "runbook-1", runbooks)
}

async fn ticket(world: &TestWorld, id: &str) -> Value {
    world.get(&format!("/v1/tickets/{id}")).await
}

/// The comments on a shown ticket (`GET /v1/tickets/{id}`), oldest first.
fn comments(shown: &Value) -> Vec<&str> {
    shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|entry| entry["kind"] == "ticket.commented")
        .filter_map(|entry| entry["data"]["text"].as_str())
        .collect()
}

/// The on-call: approves every proposal waiting for a human.
async fn on_call_approves(world: &TestWorld, id: &str) -> usize {
    let mut approved = 0;
    for proposal in ticket(world, id).await["proposals"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if proposal["stage"] == "awaiting_approval" {
            let pid = proposal["id"].as_str().expect("id");
            let (status, answer) = world
                .post(
                    &format!("/v1/proposals/{pid}/approve"),
                    json!({"actor": "human:on-call", "reason": "go ahead"}),
                )
                .await;
            assert_eq!(status, 200, "{answer}");
            approved += 1;
        }
    }
    approved
}

#[tokio::test]
async fn the_runbook_agent_raises_an_outgrown_quota_and_the_pipeline_verifies_it() {
    let mut world = TestWorld::build("runbook-outgrown", LIMITS, OBJECTIVES, "", 1);
    world.traffic = vec![(
        json!({"domain": "api", "descriptors": [{"entries": [{"key": "tenant", "value": "acme"}]}]}),
        4,
    )];
    let mut agent = agent(&world);
    let mut finished = None;
    let mut claimed_at = None;
    let mut approvals = 0;
    // Three simulated hours at most.
    for tick in 0..1_080u64 {
        world.observe().await;
        let report = agent.poll(world.now()).await.expect("the harness answers");
        if claimed_at.is_none() && agent.current_ticket().is_some() {
            claimed_at = Some(tick);
        }
        if let Some(id) = agent.current_ticket() {
            approvals += on_call_approves(&world, id).await;
        }
        if let PollReport::Finished { ticket, outcome } = report {
            finished = Some((ticket, outcome));
            break;
        }
        world.advance();
    }
    let (id, outcome) = finished.expect("the agent finished its ticket within three hours");
    // The quota ran out after 100 minutes; the page came soon after.
    let claimed_at = claimed_at.expect("claimed");
    assert!(
        (600..=700).contains(&claimed_at),
        "claimed at tick {claimed_at}"
    );
    assert!(outcome.starts_with("done (resolved)"), "{outcome}");

    let shown = ticket(&world, &id).await;
    assert_eq!(shown["ticket"]["fingerprint"], "slo:limiting_correctness");
    assert_eq!(shown["ticket"]["state"], "resolved");
    let proposals = shown["proposals"].as_array().expect("proposals");
    // The rest of the day needs about 3.2x the quota (9700 with headroom):
    // no change more than x2, nobody asked. P-0001, an interim stage:
    // acme's own limits (copies of its key's two, the daily one at 4800);
    // P-0002, a second interim stage (9600); P-0003, the last: 9700.
    assert_eq!(approvals, 0);
    assert_eq!(proposals.len(), 3, "{proposals:?}");
    let actions = proposals[0]["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(actions.iter().all(|a| a["action"] == "add_limit"
        && a["params"]["path"] == json!([{"key": "tenant", "value": "acme"}])));
    let quotas: Vec<&Value> = proposals[1..]
        .iter()
        .map(|p| &p["actions"][0]["params"]["requests_per_unit"])
        .collect();
    assert_eq!(quotas, vec![&json!(9600), &json!(9700)]);
    assert!(proposals.iter().all(|p| p["stage"] == "succeeded"));
    assert_eq!(proposals[0]["interim"], true);
    assert_eq!(proposals[1]["interim"], true);
    assert!(proposals[2]["interim"].is_null() || proposals[2]["interim"] == false);
    // What the agent did is on the ticket.
    let comments = comments(&shown);
    assert!(
        comments
            .iter()
            .any(|text| text.starts_with("runbook tenant-outgrew-limit v9")),
        "{comments:?}"
    );
    assert!(
        comments.iter().any(|text| text.contains("proposed P-0003")),
        "{comments:?}"
    );
    // Only acme's quota changed: the key's stays as it was.
    let state = world.service_state().await;
    let quota = |name: &str| {
        state["limits"]
            .as_array()
            .expect("limits")
            .iter()
            .find(|limit| limit["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))["requests_per_unit"]
            .as_u64()
            .expect("a quota")
    };
    assert_eq!(quota("tenant_per_day"), 2400);
    assert_eq!(quota("tenant_per_second@tenant=acme"), 100);
    assert!(quota("tenant_per_day@tenant=acme") > 2 * 2400);
    floodgate_harness::verify(&world.data).expect("the ledger verifies");
}

#[tokio::test]
async fn a_ticket_no_runbook_matches_is_escalated_not_guessed_at() {
    let mut world = TestWorld::new("runbook-none", "");
    world.ticks(3).await;
    let (status, filed) = world
        .post(
            "/v1/tickets",
            json!({
                "type": "task",
                "objective": {"description": "Move the limits to a new datacenter"},
                "acceptance_criteria": [{"metric": "error_ratio", "condition": "< 1%"}],
                "constraints": [],
                "priority": "low",
            }),
        )
        .await;
    assert_eq!(status, 201, "{filed}");
    let id = filed["ticket"]["id"].as_str().expect("id").to_owned();
    let mut agent = agent(&world);
    let report = agent.poll(world.now()).await.expect("poll");
    match report {
        PollReport::Finished { ticket, outcome } => {
            assert_eq!(ticket, id);
            assert!(
                outcome.contains("no runbook matches source human"),
                "{outcome}"
            );
        }
        other => panic!("expected an escalation, got {other:?}"),
    }
    assert_eq!(world.ticket_state(&id).await, "escalated");
    let config_before = world.service_state().await["config"]["version"].clone();
    assert_eq!(config_before, 1, "nothing was changed");
    // Nothing left to work.
    assert_eq!(
        agent.poll(world.now()).await.expect("poll"),
        PollReport::Idle
    );
}

#[tokio::test]
async fn a_change_that_collides_is_re_planned_once_the_holder_ends() {
    // acme sends 24 a minute against 16: it needs half as much again.
    const PER_MINUTE: &str = "
domain: api
descriptors:
  - key: tenant
    rate_limit: {name: tenant_per_minute, unit: minute, requests_per_unit: 16}
";
    // Humans answer within the day: the held change waits for one.
    let mut world = TestWorld::build(
        "runbook-collision",
        PER_MINUTE,
        OBJECTIVES,
        "approval:\n  timeout: 12h\n",
        1,
    );
    world.traffic = vec![(
        json!({"domain": "api", "descriptors": [{"entries": [{"key": "tenant", "value": "acme"}]}]}),
        4,
    )];
    world.ticks(3).await;
    // Another ticket holds the whole config: a rollback waiting for a human.
    let held = world.file_and_claim("< 1%").await;
    let (status, answer) = world
        .post(
            &format!("/v1/tickets/{held}/proposals"),
            json!({
                "agent": "agent-1",
                "rationale": "back to the config we started from",
                "actions": [{"action": "rollback_config", "params": {"to_version": 1}}],
            }),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let holder = answer["proposal"]["id"].as_str().expect("id").to_owned();
    assert_eq!(answer["proposal"]["stage"], "awaiting_approval");

    let mut agent = agent(&world);
    let mut finished = None;
    let mut released = false;
    let mut runbook_ticket = None;
    for _ in 0..1_440u64 {
        world.observe().await;
        let report = agent.poll(world.now()).await.expect("the harness answers");
        if let Some(id) = agent.current_ticket().map(str::to_owned) {
            runbook_ticket = Some(id.clone());
            on_call_approves(&world, &id).await;
            // Once the agent has met the collision, the holder's change is
            // rejected: the lock is free and the agent's re-plan goes in.
            let collided = ticket(&world, &id).await["history"]
                .as_array()
                .expect("history")
                .iter()
                .any(|entry| entry["kind"] == "proposal.refused");
            if collided && !released {
                let (status, answer) = world
                    .post(
                        &format!("/v1/proposals/{holder}/reject"),
                        json!({"actor": "human:on-call", "reason": "not now"}),
                    )
                    .await;
                assert_eq!(status, 200, "{answer}");
                released = true;
            }
        }
        if let PollReport::Finished { ticket, outcome } = report {
            finished = Some((ticket, outcome));
            break;
        }
        world.advance();
    }
    assert!(released, "the agent never met the collision");
    let (id, outcome) = finished.expect("the agent finished its ticket");
    assert_eq!(Some(id.clone()), runbook_ticket);
    assert!(outcome.starts_with("done (resolved)"), "{outcome}");
    let shown = ticket(&world, &id).await;
    let comments = comments(&shown);
    assert!(
        comments.iter().any(
            |text| text.contains("refused the change as a collision") && text.contains(&holder)
        ),
        "{comments:?}"
    );
    floodgate_harness::verify(&world.data).expect("the ledger verifies");
}

/// The store's headroom, watched per instance.
const HEADROOM: &str = "
invariants:
  - name: capacity_headroom
    condition: capacity.available_ratio > 0.2
    on_violation: ticket
";

#[tokio::test]
async fn an_instance_s_ticket_is_judged_on_that_instance_s_state() {
    use floodgate_contract::client::ServiceApi;
    let mut world = TestWorld::build("runbook-instance", LIMITS, HEADROOM, "", 2);
    // svc-b's store holds 100 keys, svc-a's 10,000: a new tenant a tick
    // fills svc-b past 80% long before svc-a.
    world.services[1]
        .run_action(
            "set_store_capacity",
            &floodgate_contract::actions::ActionRequest {
                params: json!({"max_keys": 100}),
                dry_run: false,
                reason: "a small instance".into(),
                actor: "alice".into(),
                expect_config_version: None,
            },
        )
        .await
        .expect("svc-b takes 100 keys");
    let mut agent = agent(&world);
    let mut proposal = None;
    for tick in 0..200u64 {
        world.traffic = vec![(
            json!({"domain": "api", "descriptors": [{"entries": [{"key": "tenant", "value": format!("t{tick}")}]}]}),
            1,
        )];
        world.observe().await;
        let report = agent.poll(world.now()).await.expect("the harness answers");
        if let Some(id) = agent.current_ticket() {
            let shown = ticket(&world, id).await;
            assert_eq!(
                shown["ticket"]["fingerprint"], "invariant:capacity_headroom:svc-b",
                "only svc-b ran out of headroom"
            );
            if let Some(first) = shown["proposals"].as_array().and_then(|all| all.first()) {
                proposal = Some(first.clone());
                break;
            }
        }
        assert!(
            !matches!(report, PollReport::Finished { .. }),
            "the agent finished without a change: {report:?}"
        );
        world.advance();
    }
    let proposal = proposal.expect("the agent proposed a change for svc-b");
    // Sized from svc-b's store (100 keys), not svc-a's (10,000): a new
    // tenant a tick is more growth than x8 holds for six hours, so the
    // raise is x8 of svc-b's capacity.
    assert_eq!(
        proposal["actions"][0]["params"]["max_keys"], 800,
        "{proposal}"
    );
    assert!(
        proposal["rationale"]
            .as_str()
            .unwrap_or("")
            .contains("keys grew"),
        "{proposal}"
    );
    assert!(
        proposal["rationale"]
            .as_str()
            .unwrap_or("")
            .contains("of 100 keys"),
        "{proposal}"
    );
}
