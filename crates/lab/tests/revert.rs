//! `POST /v1/proposals/{pid}/revert` (`floodgate revert CHANGE_ID`) under
//! simulated time: real in-process services and the real harness on manual
//! clocks (the lab's world, `support/fixture.rs`). A change an agent made is
//! undone by a new proposal of its recorded inverses, which passes the same pipeline and
//! lands in the ledger; the service ends exactly where it was before.

#[path = "support/fixture.rs"]
mod fixture;

use fixture::*;
use floodgate_contract::client::ServiceApi;
use serde_json::{json, Value};

/// What defines each limit in `/v1/state` (everything but its counters).
async fn definitions(
    service: &std::sync::Arc<dyn floodgate_contract::client::Transport>,
) -> Vec<Value> {
    let state = service.state().await.expect("state");
    state
        .limits
        .iter()
        .map(|limit| {
            json!({
                "domain": limit.domain,
                "name": limit.name,
                "path": limit.path,
                "algorithm": limit.algorithm,
                "requests_per_unit": limit.requests_per_unit,
                "unit": limit.unit,
                "burst": limit.burst,
                "shadow": limit.shadow,
                "detailed_metric": limit.detailed_metric,
            })
        })
        .collect()
}

async fn history_kinds(world: &TestWorld, ticket: &str) -> Vec<(String, Value)> {
    world.get(&format!("/v1/tickets/{ticket}")).await["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|entry| {
            (
                entry["kind"].as_str().unwrap_or("?").to_owned(),
                entry["data"].clone(),
            )
        })
        .collect()
}

/// An agent's proposal, taken through canary and verification to its end.
async fn agent_change(world: &mut TestWorld, criterion: &str, actions: Value) -> (String, String) {
    let ticket = world.file_and_claim(criterion).await;
    let (status, answer) = world.propose(&ticket, actions).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["proposal"]["id"].as_str().expect("id").to_owned();
    world.ticks(13 + 31).await;
    (ticket, id)
}

async fn revert(world: &TestWorld, pid: &str, body: Value) -> (u16, Value) {
    world
        .post(&format!("/v1/proposals/{pid}/revert"), body)
        .await
}

fn message(answer: &Value) -> String {
    answer["error"]["message"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn reverting_a_raised_limit_restores_the_exact_prior_state_through_the_pipeline() {
    let mut world = TestWorld::new("set-limit", "");
    world.ticks(40).await;
    let before_limits = definitions(world.service()).await;
    let before_hash = world.config_hash().await;
    let before_version = world.service_state().await["config"]["version"].clone();
    assert_eq!(world.limit().await, 60);

    // The agent's change: 60 → 120, verified, ticket resolved.
    let (original_ticket, original) = agent_change(&mut world, "< 1%", raise_to(120)).await;
    assert_eq!(original, "P-0001");
    let proposal = world.proposal(&original).await;
    assert_eq!(proposal["stage"], "succeeded", "{:?}", stages(&proposal));
    assert_eq!(world.ticket_state(&original_ticket).await, "resolved");
    assert_eq!(world.limit().await, 120);
    assert_ne!(world.config_hash().await, before_hash);

    // A human reverts it.
    let (status, answer) = revert(
        &world,
        &original,
        json!({"actor": "alice", "reason": "120 is too generous for acme"}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let ticket = &answer["ticket"];
    let revert_ticket = ticket["id"].as_str().expect("ticket id").to_owned();
    assert_ne!(revert_ticket, original_ticket);
    assert_eq!(ticket["type"], "task");
    assert_eq!(ticket["source"], "human");
    assert_eq!(ticket["priority"], "high");
    assert_eq!(ticket["fingerprint"], "revert:P-0001");
    assert_eq!(ticket["state"], "in_progress", "{ticket}");
    assert_eq!(ticket["claim"]["agent"], "alice");
    assert!(
        ticket["objective"]["description"]
            .as_str()
            .is_some_and(|text| text.starts_with("Revert P-0001 (acme's steady 90/min")),
        "{ticket}"
    );
    assert_eq!(ticket["context"]["revert"]["proposal"], "P-0001");
    assert_eq!(
        ticket["context"]["revert"]["ticket"],
        original_ticket.as_str()
    );
    assert_eq!(ticket["acceptance_criteria"][0]["metric"], "error_ratio");
    assert_eq!(
        ticket["acceptance_criteria"][0]["condition"],
        "no regression"
    );
    assert!(
        ticket["acceptance_criteria"][0]["baseline"].is_number(),
        "the baseline is captured at filing: {ticket}"
    );

    // The revert proposal is the recorded inverse, and it went through the
    // test stage into the canary like any change.
    let proposal = &answer["proposal"];
    let revert_id = proposal["id"].as_str().expect("id").to_owned();
    assert_eq!(revert_id, "P-0002");
    assert_eq!(proposal["ticket_id"], revert_ticket.as_str());
    assert_eq!(proposal["agent"], "alice");
    assert_eq!(
        proposal["rationale"],
        "revert of P-0001: 120 is too generous for acme"
    );
    let recorded = world.proposal(&original).await["applied"][0]["inverse"].clone();
    assert_eq!(proposal["actions"], json!([recorded]), "{proposal}");
    assert_eq!(proposal["actions"][0]["action"], "set_limit");
    assert_eq!(
        stages(proposal),
        ["testing:passed", "canary:applied"],
        "{proposal}"
    );
    assert_eq!(world.limit().await, 60, "the canary took the inverse");

    // Canary, deploy, verify.
    world.ticks(13).await;
    assert_eq!(world.proposal(&revert_id).await["stage"], "verifying");
    world.ticks(31).await;
    let done = world.proposal(&revert_id).await;
    assert_eq!(done["stage"], "succeeded", "{:?}", stages(&done));
    assert_eq!(
        stages(&done),
        [
            "testing:passed",
            "canary:applied",
            "canary:successful",
            "deploying:applied",
            "verifying:passed"
        ]
    );
    assert_eq!(world.ticket_state(&revert_ticket).await, "resolved");

    // The exact prior state: every limit's definition and the config hash
    // (the content; the version moved on, as every change makes one).
    assert_eq!(definitions(world.service()).await, before_limits);
    assert_eq!(world.config_hash().await, before_hash);
    assert_ne!(
        world.service_state().await["config"]["version"],
        before_version
    );

    // Recorded: every stage under the revert ticket, a pointer on the
    // original's, and the chain verifies.
    let kinds = history_kinds(&world, &revert_ticket).await;
    for kind in [
        "ticket.created",
        "proposal.created",
        "proposal.tested",
        "proposal.canary_started",
        "proposal.canary_judged",
        "proposal.deployed",
        "proposal.verified",
    ] {
        assert!(
            kinds.iter().any(|(k, _)| k == kind),
            "{kind} missing from the revert ticket's ledger: {kinds:?}"
        );
    }
    let original_kinds = history_kinds(&world, &original_ticket).await;
    let pointer = original_kinds
        .iter()
        .find(|(kind, _)| kind == "ticket.commented")
        .map(|(_, data)| data["text"].as_str().unwrap_or("").to_owned())
        .expect("a comment on the original ticket");
    assert!(
        pointer.contains("P-0001")
            && pointer.contains(&revert_ticket)
            && pointer.contains("P-0002"),
        "{pointer}"
    );
    assert_eq!(world.ticket_state(&original_ticket).await, "resolved");
    let report = floodgate_harness::verify(&world.data).expect("ledger verifies");
    assert!(report.entries > 20, "{report:?}");

    // Once is enough: the revert is recorded as done.
    let (status, again) = revert(&world, &original, json!({"actor": "alice"})).await;
    assert_eq!(status, 409, "{again}");
    assert!(message(&again).contains("already reverted"), "{again}");
    assert!(message(&again).contains(&revert_ticket), "{again}");

    // And the revert itself is a change like any other: it can be reverted.
    let (status, undo) = revert(&world, &revert_id, json!({})).await;
    assert_eq!(status, 201, "{undo}");
    assert_eq!(undo["ticket"]["fingerprint"], "revert:P-0002");
    assert_eq!(undo["ticket"]["claim"]["agent"], "human");
    assert_eq!(
        undo["proposal"]["rationale"],
        "revert of P-0002: requested by human"
    );
    assert_eq!(world.limit().await, 120);
}

#[tokio::test]
async fn with_two_services_the_revert_takes_one_services_inverses_and_restores_both() {
    let mut world = TestWorld::with_services("two", "", 2);
    world.ticks(40).await;
    let before = (
        definitions(&world.services[0]).await,
        definitions(&world.services[1]).await,
    );
    let (_, original) = agent_change(&mut world, "< 1%", raise_to(120)).await;
    let proposal = world.proposal(&original).await;
    assert_eq!(proposal["stage"], "succeeded", "{:?}", stages(&proposal));
    assert_eq!(proposal["applied"].as_array().map(Vec::len), Some(2));

    let (status, answer) = revert(&world, &original, json!({"actor": "alice"})).await;
    assert_eq!(status, 201, "{answer}");
    let revert_id = answer["proposal"]["id"].as_str().expect("id").to_owned();
    // One action (the pipeline runs it on each service), not one per service.
    assert_eq!(
        answer["proposal"]["actions"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        (world.limit_of(0).await, world.limit_of(1).await),
        (60, 120),
        "the canary first"
    );
    world.ticks(13 + 31).await;
    let done = world.proposal(&revert_id).await;
    assert_eq!(done["stage"], "succeeded", "{:?}", stages(&done));
    let targets: Vec<&str> = done["applied"]
        .as_array()
        .expect("applied")
        .iter()
        .filter_map(|applied| applied["target"].as_str())
        .collect();
    assert_eq!(targets, ["svc-a", "svc-b"]);
    assert_eq!(
        (
            definitions(&world.services[0]).await,
            definitions(&world.services[1]).await
        ),
        before
    );
}

#[tokio::test]
async fn a_revert_is_refused_naming_why_when_there_is_nothing_to_undo() {
    let mut world = TestWorld::new("refusals", "verify:\n  max_duration: 5m\n");
    world.ticks(40).await;

    // Unknown: 404.
    let (status, answer) = revert(&world, "P-0099", json!({})).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(message(&answer), "no proposal P-0099");

    // Applied nothing: refused by its test stage.
    let ticket = world.file_and_claim("< 1%").await;
    let (_, answer) = world
        .propose(
            &ticket,
            json!([{"action": "set_limit", "params": {"domain": "api", "limit": "nope", "requests_per_unit": 5}}]),
        )
        .await;
    assert_eq!(answer["proposal"]["stage"], "failed", "{answer}");
    let failed = answer["proposal"]["id"].as_str().expect("id").to_owned();
    let (status, answer) = revert(&world, &failed, json!({})).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        message(&answer).contains(&format!("{failed} applied nothing")),
        "{answer}"
    );

    // Still in flight: in its canary.
    let (_, answer) = world.propose(&ticket, raise_to(70)).await;
    let in_flight = answer["proposal"]["id"].as_str().expect("id").to_owned();
    assert_eq!(answer["proposal"]["stage"], "canary");
    let (status, answer) = revert(&world, &in_flight, json!({})).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        message(&answer).contains(&format!("{in_flight} is still canary")),
        "{answer}"
    );

    // Rolled back: 70/min does not meet the criterion, so verification
    // undid it; nothing is left to revert.
    world.ticks(13 + 31 + 31).await;
    let proposal = world.proposal(&in_flight).await;
    assert_eq!(proposal["stage"], "rolled_back", "{:?}", stages(&proposal));
    let (status, answer) = revert(&world, &in_flight, json!({})).await;
    assert_eq!(status, 409, "{answer}");
    assert!(message(&answer).contains("already undone"), "{answer}");
    assert!(message(&answer).contains("rolled_back"), "{answer}");

    // Bad input names the field.
    let (status, answer) = revert(&world, &in_flight, json!({"actor": ""})).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "actor");
    let (status, answer) = revert(&world, &in_flight, json!({"who": "x"})).await;
    assert_eq!(status, 400, "{answer}");
    assert!(message(&answer).contains("who"), "{answer}");

    // No refusal filed a ticket.
    let tickets = world.get("/v1/tickets").await;
    assert_eq!(tickets["tickets"].as_array().map(Vec::len), Some(1));
    floodgate_harness::verify(&world.data).expect("ledger verifies");
}

#[tokio::test]
async fn a_change_without_an_inverse_is_refused_naming_the_action() {
    let mut world = TestWorld::new("no-inverse", "");
    world.ticks(40).await;
    // Evicting acme's counters cannot be undone (they are gone).
    let (_, evicted) = agent_change(
        &mut world,
        "< 50%",
        json!([{"action": "evict_keys", "params": {"limit": {"domain": "api", "limit": "per_tenant"}}}]),
    )
    .await;
    let proposal = world.proposal(&evicted).await;
    assert_eq!(proposal["stage"], "succeeded", "{:?}", stages(&proposal));
    let (status, answer) = revert(&world, &evicted, json!({})).await;
    assert_eq!(status, 409, "{answer}");
    let text = message(&answer);
    assert!(
        text.contains("applied evict_keys on svc-a, which has no inverse"),
        "{text}"
    );
}

#[tokio::test]
async fn reverting_an_added_limit_waits_for_approval_then_restores_the_limit_set() {
    let mut world = TestWorld::new("add-limit", "");
    world.ticks(40).await;
    let before_limits = definitions(world.service()).await;
    let before_hash = world.config_hash().await;
    let add = json!([{
        "action": "add_limit",
        "params": {
            "domain": "api",
            "path": [{"key": "tenant", "value": "globex"}],
            "rate_limit": {"name": "globex", "unit": "minute", "requests_per_unit": 10},
        },
    }]);
    let (_, original) = agent_change(&mut world, "< 50%", add).await;
    let proposal = world.proposal(&original).await;
    assert_eq!(proposal["stage"], "succeeded", "{:?}", stages(&proposal));
    let names = |limits: &[Value]| -> Vec<String> {
        limits
            .iter()
            .map(|l| l["name"].as_str().unwrap_or("?").to_owned())
            .collect()
    };
    assert!(names(&definitions(world.service()).await).contains(&"globex".to_owned()));

    // The inverse, remove_limit, is high risk: a human approves it first.
    let (status, answer) = revert(
        &world,
        &original,
        json!({"actor": "alice", "reason": "globex is not a customer yet"}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let revert_ticket = answer["ticket"]["id"].as_str().expect("id").to_owned();
    let revert_id = answer["proposal"]["id"].as_str().expect("id").to_owned();
    assert_eq!(answer["proposal"]["actions"][0]["action"], "remove_limit");
    assert_eq!(answer["proposal"]["stage"], "awaiting_approval", "{answer}");
    world.ticks(3).await;
    assert!(
        names(&definitions(world.service()).await).contains(&"globex".to_owned()),
        "nothing applied before approval"
    );
    let (status, approved) = world
        .post(
            &format!("/v1/tickets/{revert_ticket}/approve"),
            json!({"actor": "bob", "reason": "agreed"}),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["proposal"]["id"], revert_id.as_str());
    assert_eq!(approved["proposal"]["stage"], "canary");
    world.ticks(13 + 31).await;
    let done = world.proposal(&revert_id).await;
    assert_eq!(done["stage"], "succeeded", "{:?}", stages(&done));
    assert_eq!(definitions(world.service()).await, before_limits);
    assert_eq!(world.config_hash().await, before_hash);
    assert_eq!(world.ticket_state(&revert_ticket).await, "resolved");
    // The approval is in the revert ticket's ledger.
    let kinds = history_kinds(&world, &revert_ticket).await;
    assert!(
        kinds.iter().any(|(kind, _)| kind == "proposal.approved"),
        "{kinds:?}"
    );
    floodgate_harness::verify(&world.data).expect("ledger verifies");
}
