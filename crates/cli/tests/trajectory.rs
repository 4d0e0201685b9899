//! Trajectories under simulated time: written as the work happens, valid
//! against the generated JSON Schema, and exported / imported by the real
//! binary without loss. The world is the lab's (its test view,
//! `crates/lab/tests/support/fixture.rs`, included by path); the test stays
//! here because it runs the `floodgate` binary.

#[path = "../../lab/tests/support/fixture.rs"]
mod fixture;

use fixture::*;
use floodgate_harness::learn::trajectory::{self, Trajectory};
use serde_json::{json, Value};
use std::process::Command;

async fn trajectories(world: &TestWorld) -> Vec<Value> {
    world.get("/v1/trajectories").await["trajectories"]
        .as_array()
        .expect("trajectories")
        .clone()
}

#[tokio::test]
async fn every_ticket_worked_is_a_trajectory_written_as_it_happens() {
    let mut world = TestWorld::new(
        "trajectory",
        "approval:\n  min_risk: medium\nverify:\n  max_duration: 5m\n",
    );
    world.ticks(40).await;

    // One resolved after a human approval, with the agent's own step.
    let first = world.file_and_claim("< 1%").await;
    let (status, _) = world
        .post(
            &format!("/v1/tickets/{first}/steps"),
            json!({
                "agent": "agent-1",
                "message": "acme sends 90/min against 60/min; raising per_tenant",
                "reasoning": "the over-limit ratio is a third and steady: a quota problem, not abuse",
                "tool_calls": [{"tool_call_id": "c1", "function_name": "observe_series",
                                "arguments": {"selector": "floodgate_requests_total{code=\"over_limit\"}"}}],
                "observation": {"results": [{"source_call_id": "c1", "content": "30/min over the limit"}]},
            }),
        )
        .await;
    assert_eq!(status, 201);
    // Before any work is done, the trajectory already has its start.
    let early = world.get(&format!("/v1/trajectories/{first}")).await["trajectory"].clone();
    assert_eq!(early["extra"]["outcome"], "open");
    assert!(early["reward"].is_null());
    assert!(!early["extra"]["initial_state"]["slos"]
        .as_array()
        .expect("slos")
        .is_empty());
    assert_eq!(
        early["extra"]["initial_state"]["services"][0]["config_version"], 1,
        "{:#}",
        early["extra"]["initial_state"]
    );

    let (_, answer) = world.propose(&first, raise_to(120)).await;
    let pid = answer["proposal"]["id"].as_str().expect("id").to_owned();
    let (status, _) = world
        .post(
            &format!("/v1/proposals/{pid}/approve"),
            json!({"actor": "alice", "reason": "fine"}),
        )
        .await;
    assert_eq!(status, 200);
    world.ticks(13 + 31).await;
    assert_eq!(world.ticket_state(&first).await, "resolved");

    // One undone (65 a minute rejects acme again: the canary's harm check
    // fails it) and then escalated by its agent.
    let second = world.file_and_claim("< 2%").await;
    let (_, answer) = world.propose(&second, raise_to(65)).await;
    let pid = answer["proposal"]["id"].as_str().expect("id").to_owned();
    world
        .post(
            &format!("/v1/proposals/{pid}/approve"),
            json!({"actor": "alice"}),
        )
        .await;
    world.ticks(13 + 31 + 31 + 2).await;
    assert_eq!(world.proposal(&pid).await["stage"], "failed");
    let (status, _) = world
        .post(
            &format!("/v1/tickets/{second}/escalate"),
            json!({"actor": "agent-1", "reason": "a raise did not hold; a human should look at acme's contract"}),
        )
        .await;
    assert_eq!(status, 200);
    world.ticks(1).await;

    let all = trajectories(&world).await;
    assert_eq!(all.len(), 2);
    // Every stored trajectory validates against the generated schema.
    let schema = trajectory::schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    for t in &all {
        let errors: Vec<String> = validator
            .iter_errors(t)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", t["session_id"]);
    }

    let first_t: Trajectory = serde_json::from_value(all[0].clone()).expect("typed");
    assert_eq!(first_t.schema_version, trajectory::SCHEMA_VERSION);
    assert_eq!(first_t.extra.outcome, trajectory::Outcome::Resolved);
    assert!(first_t.terminated && !first_t.truncated);
    // Resolved (+1), one human decision (-0.1), one action applied (-0.02).
    assert_eq!(first_t.reward, Some(0.88));
    let agent_step = first_t
        .steps
        .iter()
        .find(|s| s.extra.kind == "agent.step")
        .expect("the agent's step");
    assert_eq!(agent_step.tool_calls[0].function_name, "observe_series");
    assert!(agent_step
        .reasoning_content
        .as_deref()
        .unwrap_or("")
        .contains("quota problem"));
    let proposed = first_t
        .steps
        .iter()
        .find(|s| {
            s.tool_calls
                .iter()
                .any(|c| c.function_name == "propose_change")
        })
        .expect("the proposal as a tool call");
    assert_eq!(
        proposed.tool_calls[0].arguments["actions"][0]["params"]["requests_per_unit"],
        120
    );
    let human = first_t
        .steps
        .iter()
        .find(|s| s.extra.human.as_ref().is_some_and(|h| h.kind == "approval"))
        .expect("the approval, labelled");
    assert_eq!(human.extra.human.as_ref().expect("human").by, "alice");
    assert!(first_t
        .steps
        .iter()
        .any(|s| s.extra.pipeline_stage.as_deref() == Some("verifying")));
    // Step ids count up; the final state was captured at the close.
    for (index, step) in first_t.steps.iter().enumerate() {
        assert_eq!(step.step_id, index as u64 + 1);
    }
    assert!(
        first_t.extra.final_state["criteria"].is_array(),
        "{:#}",
        first_t.extra.final_state
    );

    let second_t: Trajectory = serde_json::from_value(all[1].clone()).expect("typed");
    assert_eq!(second_t.extra.outcome, trajectory::Outcome::Escalated);
    assert!(second_t.truncated && !second_t.terminated);
    // The canary undid it before any deploy: no rollback of a deployed
    // change. Escalated (-0.5), a change the pipeline refused (-0.2), a
    // human decision (-0.1), one action applied (-0.02).
    assert_eq!(second_t.final_metrics.rollbacks, 0);
    assert_eq!(second_t.reward, Some(-0.82));

    // Export with the real binary; import gives the same trajectories.
    let out = world.data.join("export.jsonl");
    let export = Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .args(["trajectory", "export", "--data"])
        .arg(&world.data)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("floodgate runs");
    let stdout = String::from_utf8_lossy(&export.stdout);
    assert!(
        export.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert!(
        stdout.contains("2 trajectories; success rate 50.0%"),
        "{stdout}"
    );
    let imported =
        trajectory::parse_jsonl(&std::fs::read_to_string(&out).expect("export")).expect("import");
    let from_api: Vec<Trajectory> = all
        .iter()
        .map(|t| serde_json::from_value(t.clone()).expect("typed"))
        .collect();
    assert_eq!(imported, from_api);

    let filtered = Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .args(["trajectory", "export", "--outcome", "escalated", "--data"])
        .arg(&world.data)
        .output()
        .expect("floodgate runs");
    let lines =
        trajectory::parse_jsonl(&String::from_utf8_lossy(&filtered.stdout)).expect("import");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].session_id, second);

    let show = Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .args(["trajectory", "show", &first, "--data"])
        .arg(&world.data)
        .output()
        .expect("floodgate runs");
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("[human decision]"), "{text}");
    assert!(text.contains("propose_change"), "{text}");

    let bad = Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .args(["trajectory", "export", "--outcome", "won", "--data"])
        .arg(&world.data)
        .output()
        .expect("floodgate runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--outcome \"won\""));
}
