//! The LLM agent against the real harness under simulated time: a scripted
//! chat-completions endpoint on loopback speaks the real wire format (tool
//! calls, then a final message); the agent's tool calls become structured
//! steps of the ticket's trajectory, and its proposal goes through the
//! pipeline like any other.

#[path = "support/fixture.rs"]
mod fixture;

use axum::routing::post;
use axum::{Json, Router};
use fixture::*;
use floodgate_agent::client::HarnessClient;
use floodgate_agent::llm::{LlmAgent, LlmOptions, SystemClock};
use floodgate_harness::learn::trajectory::Trajectory;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn reply(message: Value) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    })
}

fn call(id: &str, name: &str, arguments: Value) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments.to_string()}})
}

/// Serves the script, one answer per request, and keeps what it was sent.
async fn scripted(script: Vec<Value>) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(script.into_iter()));
    let (seen_in, answers_in) = (Arc::clone(&seen), Arc::clone(&answers));
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |Json(body): Json<Value>| {
            let seen = Arc::clone(&seen_in);
            let answers = Arc::clone(&answers_in);
            async move {
                // `{{ticket}}` in a scripted reply stands for the ticket the
                // agent claimed (the first ticket id its messages name).
                let messages = body["messages"].to_string();
                let ticket = messages
                    .find("INF-")
                    .map(|at| messages[at..at + 8].to_owned())
                    .unwrap_or_default();
                seen.lock().expect("seen").push(body);
                let next = answers.lock().expect("script").next();
                let next =
                    next.unwrap_or_else(|| reply(json!({"role": "assistant", "content": "done"})));
                Json(
                    serde_json::from_str::<Value>(&next.to_string().replace("{{ticket}}", &ticket))
                        .expect("a scripted reply stays JSON"),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_llm_agent_proposes_through_the_pipeline_and_its_tool_calls_are_trajectory_steps() {
    let mut world = TestWorld::new("llm-agent", "");
    world.ticks(40).await;
    let (status, filed) = world
        .post(
            "/v1/tickets",
            json!({
                "type": "incident",
                "objective": {"description": "acme is limited too strictly"},
                "acceptance_criteria": [{"metric": "over_limit_ratio", "condition": "< 1%", "duration": "5m sustained"}],
                "constraints": [],
                "priority": "high",
            }),
        )
        .await;
    assert_eq!(status, 201, "{filed}");
    let ticket = filed["ticket"]["id"].as_str().expect("id").to_owned();

    let (endpoint, seen) = scripted(vec![
        reply(json!({"role": "assistant", "content": null, "tool_calls": [
            call("c1", "observe_series", json!({"selector": "floodgate_requests_total{code=\"over_limit\"}", "window_ms": 600000})),
        ]})),
        reply(json!({"role": "assistant", "content": null, "tool_calls": [
            call("c2", "propose_change", json!({
                "ticket": ticket,
                "rationale": "acme sends 90/min against 60/min; raise per_tenant to 120",
                "actions": [{"action": "set_limit", "params": {"domain": "api", "limit": "per_tenant", "requests_per_unit": 120}}],
            })),
        ]})),
        reply(json!({"role": "assistant", "content": "Proposed raising per_tenant to 120; the pipeline verifies it."})),
    ])
    .await;
    let client = HarnessClient::new(world.harness.clone()).with_agent("llm-1");
    let agent = LlmAgent::new(
        client,
        LlmOptions::new(endpoint, "scripted"),
        Arc::new(SystemClock),
    )
    .expect("options");
    let run = agent
        .work_one()
        .await
        .expect("the agent works")
        .expect("a ticket");
    assert_eq!(run.ticket, ticket);
    // The model was offered the tools and got each result back by id.
    let requests = seen.lock().expect("seen").clone();
    assert_eq!(requests.len(), 3);
    assert!(requests[0]["tools"]
        .as_array()
        .is_some_and(|tools| !tools.is_empty()));
    let last = requests[2]["messages"].as_array().expect("messages");
    assert!(last
        .iter()
        .any(|m| m["role"] == "tool" && m["tool_call_id"] == "c2"));

    // The pipeline takes it from there.
    world.ticks(13 + 31).await;
    assert_eq!(world.ticket_state(&ticket).await, "resolved");
    assert_eq!(world.limit().await, 120);

    // The trajectory holds the tool calls as structured steps.
    let shown = world.get(&format!("/v1/trajectories/{ticket}")).await;
    let trajectory: Trajectory =
        serde_json::from_value(shown["trajectory"].clone()).expect("typed");
    let observed = trajectory
        .steps
        .iter()
        .find(|s| {
            s.tool_calls
                .iter()
                .any(|c| c.function_name == "observe_series")
        })
        .expect("the observe_series call as a step");
    assert_eq!(observed.tool_calls[0].tool_call_id, "c1");
    let result = &observed
        .observation
        .as_ref()
        .expect("its observation")
        .results[0];
    assert_eq!(result.source_call_id.as_deref(), Some("c1"));
    assert!(result.content.contains("points"), "{}", result.content);
    assert!(trajectory.steps.iter().any(|s| s
        .tool_calls
        .iter()
        .any(|c| c.function_name == "propose_change" && c.tool_call_id == "c2")));
    assert_eq!(
        trajectory.extra.outcome,
        floodgate_harness::learn::trajectory::Outcome::Resolved
    );
}

/// The lab drives the LLM agent like the runbook agent: the bad-config
/// scenario (a human pushes a config blocking acme and files a ticket),
/// the scripted model rolls the config back, the on-call approves, and the
/// verifier (not the agent) judges the run against its no-agent baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_runs_a_scenario_with_the_llm_agent_and_the_verifier_judges_it() {
    use floodgate_lab::run::{run_scenario, AgentKind, Options};
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(repo.join("scenarios/bad-config.yaml")).expect("scenario");
    let scenario = floodgate_lab::parse("scenarios/bad-config.yaml", &text).expect("parses");
    let (base, seen) = scripted(vec![
        reply(json!({"role": "assistant", "content": null, "tool_calls": [
            call("c1", "propose_change", json!({
                "ticket": "{{ticket}}",
                "rationale": "version 2 blocks acme (0 a second); version 1 admitted it",
                "actions": [{"action": "rollback_config", "params": {"to_version": 1}}],
            })),
        ]})),
        reply(json!({"role": "assistant", "content": "Rolled back to version 1; the pipeline verifies it."})),
    ])
    .await;
    let out = std::env::temp_dir().join(format!("floodgate-lab-llm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let options = Options {
        runbooks: Vec::new(),
        llm: Some(LlmOptions::new(base, "scripted")),
        mcp_command: None,
        realtime: None,
        out: out.clone(),
    };
    let result = run_scenario(&scenario, scenario.seed, AgentKind::Llm, &options).await;
    assert_eq!(result.agent, AgentKind::Llm);
    assert_eq!(
        result.verdict,
        floodgate_lab::Verdict::Pass,
        "{}: {:?}",
        result.why,
        result.figures
    );
    assert_eq!(result.figures.changes, 1, "{:?}", result.figures);
    assert!(result.figures.bad_minutes < result.figures.baseline_bad_minutes);
    // The model was asked about the human's ticket, with the tool catalog.
    let seen = seen.lock().expect("seen").clone();
    assert!(seen.len() >= 2, "{} model calls", seen.len());
    assert!(seen[0].to_string().contains("INF-0001"), "{}", seen[0]);
    assert!(seen[0]["tools"]
        .as_array()
        .is_some_and(|tools| !tools.is_empty()));
    // Its tool call is a structured step of the ticket's trajectory.
    let archive =
        floodgate_harness::store::archive::Archive::open(std::path::Path::new(&result.data))
            .expect("data");
    let trajectory = archive
        .trajectory("INF-0001")
        .expect("read")
        .expect("stored");
    let text = serde_json::to_string(&trajectory).expect("json");
    assert!(text.contains("propose_change"), "{text}");
    let _ = std::fs::remove_dir_all(&out);
}
