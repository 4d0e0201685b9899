//! Reflection at work under simulated time: an agent "fixes" the same
//! problem three times, raising one limit 60 → 120 → 240 → 480; reflection
//! notices (hysteresis and an escalating fix), files a help ticket in the
//! agent's own words, and suspends automatic work on that fingerprint until
//! a human answers — then work resumes.

#[path = "support/fixture.rs"]
mod fixture;

use fixture::*;
use serde_json::{json, Value};

const TICKET: &str = "acme keeps hitting per_tenant";

async fn file(world: &TestWorld) -> String {
    let (status, filed) = world
        .post(
            "/v1/tickets",
            json!({
                "type": "incident",
                "objective": {"description": TICKET},
                "acceptance_criteria": [{"metric": "over_limit_ratio", "condition": "< 1%", "duration": "5m sustained"}],
                "constraints": [],
                "priority": "high",
            }),
        )
        .await;
    assert!(status == 200 || status == 201, "{filed}");
    filed["ticket"]["id"].as_str().expect("id").to_owned()
}

async fn claim(world: &TestWorld) -> Value {
    let (status, claimed) = world
        .post("/v1/agent/claim", json!({"agent": "agent-1"}))
        .await;
    assert_eq!(status, 200, "{claimed}");
    claimed["ticket"].clone()
}

/// Claims the ticket, raises per_tenant to `value`, and runs the pipeline
/// until the proposal succeeds.
async fn fix(world: &mut TestWorld, value: u64) -> String {
    let ticket = claim(world).await;
    let id = ticket["id"].as_str().expect("a ticket to claim").to_owned();
    let (status, answer) = world
        .propose(
            &id,
            json!([{"action": "set_limit", "params": {"domain": "api", "limit": "per_tenant", "requests_per_unit": value}}]),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let pid = answer["proposal"]["id"].as_str().expect("id").to_owned();
    world.ticks(13 + 31).await;
    assert_eq!(world.proposal(&pid).await["stage"], "succeeded");
    assert_eq!(world.ticket_state(&id).await, "resolved");
    id
}

#[tokio::test]
async fn the_same_fix_escalating_three_times_asks_a_human_and_suspends_the_work() {
    let mut world = TestWorld::new("reflect-escalating", "");
    world.ticks(40).await;
    let mut fingerprint = String::new();
    for value in [120, 240, 480] {
        let id = file(&world).await;
        fingerprint = world.get(&format!("/v1/tickets/{id}")).await["ticket"]["fingerprint"]
            .as_str()
            .expect("fingerprint")
            .to_owned();
        fix(&mut world, value).await;
    }

    let (status, report) = world.post("/v1/reflect", json!({})).await;
    assert_eq!(status, 200, "{report}");
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|finding| finding["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"hysteresis"), "{kinds:?}");
    assert!(kinds.contains(&"escalating_fix"), "{kinds:?}");
    let escalating = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|finding| finding["kind"] == "escalating_fix")
        .expect("escalating fix");
    let message = escalating["message"].as_str().expect("message");
    assert!(message.contains("120 → 240 → 480"), "{message}");
    assert!(
        message.starts_with('I'),
        "in the agent's own words: {message}"
    );
    let waiting: Vec<String> = report["suspended"][&fingerprint]
        .as_array()
        .expect("the fingerprint is suspended")
        .iter()
        .filter_map(|id| id.as_str().map(str::to_owned))
        .collect();
    assert_eq!(waiting.len(), 2, "one help ticket per finding: {waiting:?}");
    let help = waiting[0].clone();
    let help_ticket = world.get(&format!("/v1/tickets/{help}")).await["ticket"].clone();
    assert_eq!(help_ticket["type"], "help");
    assert_eq!(help_ticket["source"], "reflection");
    assert_eq!(help_ticket["state"], "open");

    // The problem comes back: the agent is not handed it while suspended,
    // and cannot propose on it either.
    let again = file(&world).await;
    let claimed = claim(&world).await;
    assert!(
        claimed.is_null(),
        "a suspended or help ticket was handed out: {claimed}"
    );
    let (status, refused) = world
        .post(
            "/v1/agent/claim",
            json!({"agent": "agent-1", "ticket": again}),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains(&help));

    // A human answers one help ticket: work stays suspended while the
    // other waits; answering both lifts it and the work resumes.
    let (status, _) = world
        .post(
            &format!("/v1/tickets/{}/cancel", waiting[0]),
            json!({"actor": "alice", "reason": "raised the plan's quota in the contract; carry on"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, report) = world.post("/v1/reflect", json!({})).await;
    assert_eq!(report["resumed"], json!([]), "{report}");
    let (status, _) = world
        .post(
            &format!("/v1/tickets/{}/cancel", waiting[1]),
            json!({"actor": "alice", "reason": "same answer"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, report) = world.post("/v1/reflect", json!({})).await;
    assert!(
        report["resumed"]
            .as_array()
            .expect("resumed")
            .iter()
            .any(|f| f == fingerprint.as_str()),
        "{report}"
    );
    // The recurrence reopened the ticket while the work was suspended:
    // reflection handed it to the humans too, naming the help ticket it
    // waited on (ADR 0025), so it is theirs now, not an agent's.
    let shown = world.get(&format!("/v1/tickets/{again}")).await;
    assert_eq!(shown["ticket"]["state"], "escalated", "{shown}");
    let history = shown["history"].to_string();
    assert!(
        history.contains("waits on that answer") && waiting.iter().any(|w| history.contains(w)),
        "names a help ticket it waits on: {history}"
    );
    let (status, claimed) = world
        .post(
            "/v1/agent/claim",
            json!({"agent": "agent-1", "ticket": again}),
        )
        .await;
    assert_eq!(status, 409, "{claimed}");
    floodgate_harness::verify(&world.data).expect("the ledger verifies");
}

#[tokio::test]
async fn a_fixed_problem_that_comes_back_is_reflected_on_at_once() {
    // Three fixes that held, each undone by the problem coming back; the
    // fourth recurrence is a finding on the very next tick — not up to
    // ten minutes later, when an agent may have applied the fix again.
    let mut world = TestWorld::new("reflect-on-reopen", "");
    world.ticks(40).await;
    for value in [120, 240, 480] {
        file(&world).await;
        fix(&mut world, value).await;
    }
    let again = file(&world).await;
    world.tick().await;
    let shown = world.get(&format!("/v1/tickets/{again}")).await;
    assert_eq!(shown["ticket"]["state"], "escalated", "{shown}");
    let claimed = claim(&world).await;
    assert!(claimed.is_null(), "handed out: {claimed}");
    let reflection = world.get("/v1/reflection").await;
    assert!(
        reflection.to_string().contains("hysteresis"),
        "{reflection}"
    );
}

#[tokio::test]
async fn a_healthy_history_of_different_fixes_raises_nothing() {
    let mut world = TestWorld::new("reflect-healthy", "");
    world.ticks(40).await;
    let id = file(&world).await;
    assert!(!id.is_empty());
    fix(&mut world, 120).await;
    let (status, report) = world.post("/v1/reflect", json!({})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["findings"], json!([]), "{report}");
    assert_eq!(report["suspended"], json!({}));
}
