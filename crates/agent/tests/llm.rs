//! The LLM agent against a scripted chat-completions endpoint and the
//! recording stand-in harness, both on loopback: tool calls reach the
//! harness with the model's arguments, results go back with matching
//! `tool_call_id`s, bounds escalate, and the transcript is on the ticket.

mod support;

use floodgate_agent::client::HarnessClient;
use floodgate_agent::llm::{Bounds, Clock, End, LlmAgent, LlmOptions, TRANSCRIPT_ENTRY_BYTES};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{final_message, ticket, tool_calls, ScriptedModel, StandInHarness};

/// A clock that moves `step` forward every time it is read.
struct SteppingClock {
    now_ns: Mutex<u64>,
    step: Duration,
}

impl Clock for SteppingClock {
    fn now_ns(&self) -> u64 {
        let mut now = self.now_ns.lock().unwrap();
        let current = *now;
        *now += u64::try_from(self.step.as_nanos()).unwrap();
        current
    }
}

fn stepping(step: Duration) -> Arc<SteppingClock> {
    Arc::new(SteppingClock {
        now_ns: Mutex::new(1_767_225_600_000_000_000),
        step,
    })
}

fn agent(
    harness: &StandInHarness,
    model: &ScriptedModel,
    bounds: Bounds,
    clock: Arc<dyn Clock>,
) -> LlmAgent {
    let client = HarnessClient::http(harness.base.clone(), None).with_agent("llm-test");
    let mut options = LlmOptions::new(model.endpoint.clone(), "scripted-1");
    options.api_key = Some("sk-test".into());
    options.bounds = bounds;
    LlmAgent::new(client, options, clock).unwrap()
}

fn roomy() -> Bounds {
    Bounds {
        max_steps: 10,
        max_tokens: 100_000,
        max_wall: Duration::from_secs(600),
    }
}

fn escalations(harness: &StandInHarness, id: &str) -> Vec<Value> {
    harness
        .calls_to("POST", &format!("/v1/tickets/{id}/"), "/escalate")
        .into_iter()
        .map(|call| call.body)
        .collect()
}

#[tokio::test]
async fn a_conversation_calls_tools_proposes_and_records_its_transcript() {
    let harness = StandInHarness::start(vec![ticket("INF-0042", "claimed")]).await;
    let proposal_args = json!({
        "ticket": "INF-0042",
        "rationale": "per_user is too tight for checkout bursts",
        "actions": [{"action": "set_limit", "params": {"domain": "checkout", "limit": "per_user", "requests_per_unit": 150}}]
    });
    let model = ScriptedModel::start(
        vec![
            (
                200,
                tool_calls(
                    &[
                        ("call_a", "get_ticket", json!({"ticket": "INF-0042"})),
                        ("call_b", "list_slos", json!({})),
                    ],
                    100,
                ),
            ),
            (
                200,
                tool_calls(&[("call_c", "propose_change", proposal_args.clone())], 200),
            ),
            (200, final_message("Proposed raising per_user to 150.", 300)),
        ],
        None,
    )
    .await;
    let agent = agent(
        &harness,
        &model,
        roomy(),
        stepping(Duration::from_millis(1)),
    );

    let run = agent
        .work_one()
        .await
        .unwrap()
        .expect("a ticket was claimed");
    assert_eq!(run.ticket, "INF-0042");
    assert_eq!(run.end, End::Proposed);
    assert_eq!(run.steps, 3);
    assert_eq!(run.tokens, 600);
    assert_eq!(run.tool_calls, 3);
    assert_eq!(
        run.final_message.as_deref(),
        Some("Proposed raising per_user to 150.")
    );

    // The harness saw the claim and the model's tool calls, as the agent.
    let calls = harness.calls();
    assert_eq!(calls[0].uri, "/v1/agent/claim");
    assert_eq!(calls[0].body["agent"], "llm-test");
    let uris: Vec<&str> = calls
        .iter()
        // The transcript: comments, and steps (which this stand-in does
        // not take, so their content also arrives as comments).
        .filter(|call| !call.uri.ends_with("/comment") && !call.uri.ends_with("/steps"))
        .map(|call| call.uri.as_str())
        .collect();
    assert_eq!(
        uris,
        [
            "/v1/agent/claim",
            "/v1/tickets/INF-0042",
            "/v1/slos",
            "/v1/tickets/INF-0042/proposals"
        ]
    );
    let proposal = harness.calls_to("POST", "/v1/tickets/INF-0042/", "/proposals");
    assert_eq!(
        proposal[0].body,
        json!({
            "agent": "llm-test",
            "rationale": proposal_args["rationale"],
            "actions": proposal_args["actions"],
        })
    );
    assert!(escalations(&harness, "INF-0042").is_empty());

    // The model got the real wire format: tools, tool_choice, the key, and
    // each tool result answered with its tool_call_id.
    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    let first = &requests[0].body;
    assert_eq!(requests[0].authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(first["model"], "scripted-1");
    assert_eq!(first["tool_choice"], "auto");
    let tools = first["tools"].as_array().unwrap();
    assert_eq!(tools.len(), floodgate_agent::tools::CATALOG.len());
    assert_eq!(tools[0]["type"], "function");
    assert_eq!(tools[0]["function"]["name"], "claim_ticket");
    assert_eq!(tools[0]["function"]["parameters"]["type"], "object");
    let messages = first["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert!(messages[0]["content"]
        .as_str()
        .unwrap()
        .contains("INF-0042"));
    assert!(messages[0]["content"]
        .as_str()
        .unwrap()
        .contains("do not raise any limit above 2x"));
    assert_eq!(messages[1]["role"], "user");

    let second = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(second.len(), 5, "system, user, assistant, two tool results");
    assert_eq!(second[2]["role"], "assistant");
    assert_eq!(second[2]["tool_calls"][0]["id"], "call_a");
    assert_eq!(second[2]["tool_calls"][1]["function"]["name"], "list_slos");
    assert_eq!(second[3]["role"], "tool");
    assert_eq!(second[3]["tool_call_id"], "call_a");
    let ticket_answer: Value =
        serde_json::from_str(second[3]["content"].as_str().unwrap()).unwrap();
    assert_eq!(ticket_answer["ticket"]["id"], "INF-0042");
    assert_eq!(second[4]["tool_call_id"], "call_b");
    let slos: Value = serde_json::from_str(second[4]["content"].as_str().unwrap()).unwrap();
    assert_eq!(slos["slos"][0]["name"], "checkout-availability");

    let third = requests[2].body["messages"].as_array().unwrap();
    assert_eq!(third.len(), 7);
    assert_eq!(third[6]["tool_call_id"], "call_c");
    let proposed: Value = serde_json::from_str(third[6]["content"].as_str().unwrap()).unwrap();
    assert_eq!(proposed["proposal"]["id"], "P-0001");

    // The transcript: every message and tool call, as the agent, bounded.
    let comments = harness.comments("INF-0042");
    for call in harness.calls_to("POST", "/v1/tickets/INF-0042/", "/comment") {
        assert_eq!(call.body["actor"], "llm-test");
    }
    let find = |needle: &str| {
        assert!(
            comments.iter().any(|comment| comment.contains(needle)),
            "no comment with {needle:?} in {comments:#?}"
        );
    };
    find("on model scripted-1");
    find("system: You are an operations agent");
    find("user: Work ticket INF-0042.");
    find("[step 1, 100 tokens] assistant: (calls get_ticket, list_slos)");
    find("[step 1] tool get_ticket {\"ticket\":\"INF-0042\"} -> ok");
    find("[step 1] tool list_slos {} -> ok");
    find("[step 2] tool propose_change");
    find("[step 3, 600 tokens] assistant: Proposed raising per_user to 150.");
    find("finished after 3 model calls and 600 tokens: a change was proposed");
    assert!(comments.iter().all(|c| c.len() <= TRANSCRIPT_ENTRY_BYTES));
}

#[tokio::test]
async fn the_step_bound_escalates_with_the_reason() {
    let harness = StandInHarness::start(vec![ticket("INF-0001", "claimed")]).await;
    let looping = tool_calls(&[("call_x", "list_anomalies", json!({}))], 10);
    let model = ScriptedModel::start(vec![], Some(looping)).await;
    let bounds = Bounds {
        max_steps: 3,
        ..roomy()
    };
    let run = agent(&harness, &model, bounds, stepping(Duration::from_millis(1)))
        .work_one()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(model.requests().len(), 3);
    assert_eq!(run.steps, 3);
    let reason = "step bound reached: 3 model calls of at most 3";
    assert_eq!(
        run.end,
        End::Escalated {
            reason: reason.into()
        }
    );
    assert_eq!(
        escalations(&harness, "INF-0001"),
        vec![json!({"actor": "llm-test", "reason": reason})]
    );
    assert_eq!(harness.calls_to("GET", "/v1/anomalies", "").len(), 3);
}

#[tokio::test]
async fn the_token_bound_escalates_with_the_reason() {
    let harness = StandInHarness::start(vec![ticket("INF-0002", "claimed")]).await;
    let looping = tool_calls(&[("call_x", "list_invariants", json!({}))], 600);
    let model = ScriptedModel::start(vec![], Some(looping)).await;
    let bounds = Bounds {
        max_tokens: 1000,
        ..roomy()
    };
    let run = agent(&harness, &model, bounds, stepping(Duration::from_millis(1)))
        .work_one()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(model.requests().len(), 2, "600 + 600 passes 1000");
    assert_eq!(run.tokens, 1200);
    let reason = "token bound reached: 1200 tokens used of at most 1000";
    assert_eq!(escalations(&harness, "INF-0002")[0]["reason"], reason);
    assert_eq!(
        run.end,
        End::Escalated {
            reason: reason.into()
        }
    );
}

#[tokio::test]
async fn the_wall_time_bound_reads_the_injected_clock() {
    let harness = StandInHarness::start(vec![ticket("INF-0003", "claimed")]).await;
    let looping = tool_calls(&[("call_x", "list_slos", json!({}))], 1);
    let model = ScriptedModel::start(vec![], Some(looping)).await;
    let bounds = Bounds {
        max_wall: Duration::from_secs(25),
        ..roomy()
    };
    // Read once at the start and once before each step: 0, 10, 20, 30 s.
    let run = agent(&harness, &model, bounds, stepping(Duration::from_secs(10)))
        .work_one()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(model.requests().len(), 2);
    let reason = "wall-time bound reached: 30 s spent of at most 25 s";
    assert_eq!(
        run.end,
        End::Escalated {
            reason: reason.into()
        }
    );
    assert_eq!(escalations(&harness, "INF-0003")[0]["reason"], reason);
    // Half the claim's TTL (5 min) never passed: no renewal.
    assert!(harness
        .calls_to("POST", "/v1/tickets/", "/renew")
        .is_empty());
}

#[tokio::test]
async fn the_claim_is_renewed_when_half_its_ttl_has_passed() {
    let harness = StandInHarness::start(vec![ticket("INF-0004", "claimed")]).await;
    let model = ScriptedModel::start(
        vec![
            (200, tool_calls(&[("c1", "list_slos", json!({}))], 1)),
            (
                200,
                tool_calls(
                    &[(
                        "c2",
                        "escalate_ticket",
                        json!({"ticket": "INF-0004", "reason": "needs a human"}),
                    )],
                    1,
                ),
            ),
            (200, final_message("escalated", 1)),
        ],
        None,
    )
    .await;
    // Each read moves 4 minutes; the claim lasts 10 (renewed at 5).
    let run = agent(
        &harness,
        &model,
        Bounds {
            max_wall: Duration::from_secs(3600),
            ..roomy()
        },
        stepping(Duration::from_secs(240)),
    )
    .work_one()
    .await
    .unwrap()
    .unwrap();
    assert_eq!(run.end, End::HandedBack);
    let renewals = harness.calls_to("POST", "/v1/tickets/INF-0004/", "/renew");
    // Reads at 4, 8, 12 min after the 0 start: renewed at 8 (≥ 5 since 0), not at 12 (4 since 8).
    assert_eq!(renewals.len(), 1);
    assert_eq!(
        renewals[0].body,
        json!({"agent": "llm-test", "ttl_ms": 600000})
    );
    // The model's own escalation stands: the agent adds none.
    assert_eq!(
        escalations(&harness, "INF-0004"),
        vec![json!({"actor": "llm-test", "reason": "needs a human"})]
    );
}

#[tokio::test]
async fn bad_tool_calls_are_answered_with_the_error_and_the_model_goes_on() {
    let harness = StandInHarness::start(vec![ticket("INF-0005", "claimed")]).await;
    let mut broken = tool_calls(&[("c1", "get_ticket", json!({}))], 5);
    // Arguments that are not JSON, and a tool that does not exist.
    broken["choices"][0]["message"]["tool_calls"]
        .as_array_mut()
        .unwrap()
        .extend([
            json!({"id": "c2", "type": "function", "function": {"name": "get_ticket", "arguments": "{oops"}}),
            json!({"id": "c3", "type": "function", "function": {"name": "rm_rf", "arguments": "{}"}}),
        ]);
    let model = ScriptedModel::start(
        vec![(200, broken), (200, final_message("I give up.", 5))],
        None,
    )
    .await;
    let run = agent(
        &harness,
        &model,
        roomy(),
        stepping(Duration::from_millis(1)),
    )
    .work_one()
    .await
    .unwrap()
    .unwrap();
    let requests = model.requests();
    let messages = requests[1].body["messages"].as_array().unwrap();
    let result = |index: usize| -> Value {
        serde_json::from_str(messages[index]["content"].as_str().unwrap()).unwrap()
    };
    assert_eq!(messages[3]["tool_call_id"], "c1");
    assert_eq!(result(3)["error"]["field"], "ticket");
    assert_eq!(messages[4]["tool_call_id"], "c2");
    assert_eq!(result(4)["error"]["field"], "arguments");
    assert_eq!(messages[5]["tool_call_id"], "c3");
    assert_eq!(result(5)["error"]["kind"], "unknown_tool");
    // Nothing but the claim, the transcript and the escalation reached the harness.
    assert!(harness
        .calls()
        .iter()
        .all(|call| call.uri == "/v1/agent/claim"
            || call.uri.ends_with("/comment")
            || call.uri.ends_with("/steps")
            || call.uri.ends_with("/escalate")));
    // Stopping without a proposal hands the ticket to a human.
    let reason = "the model stopped without proposing a change: I give up.";
    assert_eq!(
        run.end,
        End::Escalated {
            reason: reason.into()
        }
    );
    assert_eq!(escalations(&harness, "INF-0005")[0]["reason"], reason);
    assert!(harness
        .comments("INF-0005")
        .iter()
        .any(|c| c.starts_with("[step 1] tool get_ticket {oops -> error")));
}

#[tokio::test]
async fn transcripts_stay_bounded_whatever_the_model_says() {
    let harness = StandInHarness::start(vec![ticket("INF-0006", "claimed")]).await;
    let huge = "blah ".repeat(10_000);
    let model = ScriptedModel::start(
        vec![
            (
                200,
                tool_calls(
                    &[(
                        "c1",
                        "comment_ticket",
                        json!({"ticket": "INF-0006", "text": "x".repeat(8000)}),
                    )],
                    5,
                ),
            ),
            (200, final_message(&huge, 5)),
        ],
        None,
    )
    .await;
    agent(
        &harness,
        &model,
        roomy(),
        stepping(Duration::from_millis(1)),
    )
    .work_one()
    .await
    .unwrap()
    .unwrap();
    let transcript: Vec<_> = harness
        .calls_to("POST", "/v1/tickets/INF-0006/", "/comment")
        .into_iter()
        .filter(|call| call.body["text"].as_str().unwrap().len() != 8000)
        .collect();
    assert!(transcript.len() >= 5);
    for call in &transcript {
        let text = call.body["text"].as_str().unwrap();
        assert!(text.len() <= TRANSCRIPT_ENTRY_BYTES, "{} bytes", text.len());
    }
    let escalation = &escalations(&harness, "INF-0006")[0]["reason"];
    assert!(escalation.as_str().unwrap().len() < 1024);
}

#[tokio::test]
async fn no_ticket_means_no_model_call() {
    let harness = StandInHarness::start(vec![]).await;
    let model = ScriptedModel::start(vec![], None).await;
    let run = agent(
        &harness,
        &model,
        roomy(),
        stepping(Duration::from_millis(1)),
    )
    .work_one()
    .await
    .unwrap();
    assert_eq!(run, None);
    assert!(model.requests().is_empty());
    assert_eq!(harness.calls().len(), 1);
}

#[tokio::test]
async fn a_failing_model_releases_the_ticket_instead_of_escalating() {
    let harness = StandInHarness::start(vec![ticket("INF-0008", "claimed")]).await;
    let model = ScriptedModel::start(
        vec![(503, json!({"error": {"message": "overloaded"}}))],
        None,
    )
    .await;
    let error = agent(
        &harness,
        &model,
        roomy(),
        stepping(Duration::from_millis(1)),
    )
    .work_one()
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("HTTP 503") && text.contains("overloaded"),
        "{text}"
    );
    assert_eq!(
        harness.calls_to("POST", "/v1/tickets/INF-0008/", "/release")[0].body,
        json!({"agent": "llm-test"})
    );
    assert!(escalations(&harness, "INF-0008").is_empty());
    assert!(harness
        .comments("INF-0008")
        .iter()
        .any(|c| c.starts_with("model call failed, releasing the ticket")));
}

#[tokio::test]
async fn a_conversation_the_model_refuses_is_escalated_not_given_back() {
    // A 400 (a context too long for the model, say) repeats on every try:
    // giving the ticket back would only have it claimed again.
    let harness = StandInHarness::start(vec![ticket("INF-0009", "claimed")]).await;
    let model = ScriptedModel::start(
        vec![(
            400,
            json!({"error": {"message": "context_length_exceeded: 4103 > 4096 tokens"}}),
        )],
        None,
    )
    .await;
    let run = agent(
        &harness,
        &model,
        roomy(),
        stepping(Duration::from_millis(1)),
    )
    .work_one()
    .await
    .expect("worked")
    .expect("a ticket");
    match run.end {
        End::Escalated { reason } => assert!(
            reason.contains("refused the conversation") && reason.contains("context_length"),
            "{reason}"
        ),
        other => panic!("expected an escalation, got {other:?}"),
    }
    assert!(harness
        .calls_to("POST", "/v1/tickets/INF-0009/", "/release")
        .is_empty());
    assert_eq!(escalations(&harness, "INF-0009").len(), 1);
}

#[tokio::test]
async fn a_model_failing_again_and_again_on_one_ticket_escalates_it_after_three() {
    let queue = (0..3).map(|_| ticket("INF-0010", "claimed")).collect();
    let harness = StandInHarness::start(queue).await;
    let overloaded = (500, json!({"error": {"message": "the model crashed"}}));
    let model = ScriptedModel::start(vec![overloaded.clone(); 3], None).await;
    let llm = agent(
        &harness,
        &model,
        roomy(),
        stepping(Duration::from_millis(1)),
    );
    for attempt in 1..=2 {
        let error = llm.work_one().await.unwrap_err();
        assert!(error.to_string().contains("HTTP 500"), "{attempt}: {error}");
    }
    assert_eq!(
        harness
            .calls_to("POST", "/v1/tickets/INF-0010/", "/release")
            .len(),
        2
    );
    let run = llm.work_one().await.expect("worked").expect("a ticket");
    match run.end {
        End::Escalated { reason } => assert!(
            reason.contains("failed 3 times in a row") && reason.contains("the model crashed"),
            "{reason}"
        ),
        other => panic!("expected an escalation, got {other:?}"),
    }
    assert_eq!(escalations(&harness, "INF-0010").len(), 1);
}

#[tokio::test]
async fn a_reply_of_tool_calls_goes_back_with_empty_content_not_null() {
    let harness = StandInHarness::start(vec![ticket("INF-0011", "claimed")]).await;
    let model = ScriptedModel::start(
        vec![
            (
                200,
                tool_calls(&[("c1", "get_ticket", json!({"ticket": "INF-0011"}))], 10),
            ),
            (200, final_message("nothing to do", 10)),
        ],
        None,
    )
    .await;
    agent(
        &harness,
        &model,
        roomy(),
        stepping(Duration::from_millis(1)),
    )
    .work_one()
    .await
    .expect("worked");
    let second = &model.requests()[1].body;
    let echoed = second["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["role"] == "assistant")
        .expect("the model's turn comes back");
    assert_eq!(echoed["content"], "", "{echoed}");
    assert_eq!(echoed["tool_calls"][0]["id"], "c1");
}
