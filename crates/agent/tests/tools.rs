//! The tool catalog: its shape, argument validation (errors name the
//! field, nothing is sent), and calls reaching the stand-in harness with
//! the client's agent name.

mod support;

use floodgate_agent::client::HarnessClient;
use floodgate_agent::tools::{self, ToolError, CATALOG};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::StandInHarness;

const EXPECTED: [&str; 21] = [
    "claim_ticket",
    "get_ticket",
    "list_tickets",
    "get_criteria",
    "observe_series",
    "get_service_state",
    "get_evidence",
    "list_incidents",
    "link_ticket",
    "get_service_events",
    "list_slos",
    "list_invariants",
    "list_anomalies",
    "list_actions",
    "propose_change",
    "get_proposal",
    "comment_ticket",
    "escalate_ticket",
    "release_ticket",
    "list_notices",
    "create_notice",
];

#[test]
fn the_catalog_has_every_tool_once_with_object_schemas_and_coherent_flags() {
    let names: Vec<&str> = CATALOG.iter().map(|tool| tool.name).collect();
    assert_eq!(names, EXPECTED);
    assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), names.len());
    for tool in CATALOG {
        let schema = tool.input_schema_json();
        assert_eq!(schema["type"], "object", "{}: {schema}", tool.name);
        assert_eq!(schema["additionalProperties"], false, "{}", tool.name);
        assert!(
            schema.get("$ref").is_none() && schema.get("$defs").is_none(),
            "{}",
            tool.name
        );
        assert!(!(tool.read_only && tool.destructive), "{}", tool.name);
        assert!(!tool.title.is_empty() && !tool.description.is_empty());
    }
    // Exactly the observing tools only read; only proposing may destroy.
    let read_only: Vec<&str> = CATALOG
        .iter()
        .filter(|t| t.read_only)
        .map(|t| t.name)
        .collect();
    assert_eq!(
        read_only,
        [
            "get_ticket",
            "list_tickets",
            "get_criteria",
            "observe_series",
            "get_service_state",
            "get_evidence",
            "list_incidents",
            "get_service_events",
            "list_slos",
            "list_invariants",
            "list_anomalies",
            "list_actions",
            "get_proposal",
            "list_notices"
        ]
    );
    let destructive: Vec<&str> = CATALOG
        .iter()
        .filter(|t| t.destructive)
        .map(|t| t.name)
        .collect();
    assert_eq!(destructive, ["propose_change"]);
    let propose = tools::find("propose_change").unwrap().input_schema_json();
    assert_eq!(
        propose["required"],
        json!(["ticket", "rationale", "actions"])
    );
    assert_eq!(
        propose["properties"]["actions"]["items"]["properties"]["params"]["type"],
        "object"
    );
}

#[test]
fn the_markdown_page_lists_every_tool_with_its_schema() {
    let page = tools::tools_markdown();
    for tool in CATALOG {
        assert!(
            page.contains(&format!("## `{}`", tool.name)),
            "{}",
            tool.name
        );
    }
    assert!(page.contains("| `propose_change` | no | yes |"));
    assert!(page.contains("| `list_slos` | yes | no |"));
    assert_eq!(tools::generated_doc().path, "docs/catalog/agent-tools.md");
    // The committed page is the generated one (floodgate catalog --check says so too).
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/catalog/agent-tools.md"
    ))
    .expect("docs/catalog/agent-tools.md exists: run `floodgate catalog --write`");
    assert_eq!(committed, page, "run `floodgate catalog --write`");
}

async fn invalid(client: &HarnessClient, name: &str, args: Value) -> (String, String) {
    match tools::call(client, name, args).await {
        Err(ToolError::InvalidArgument { field, message }) => (field, message),
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test]
async fn bad_arguments_name_the_field_and_send_nothing() {
    let harness = StandInHarness::start(vec![]).await;
    let client = HarnessClient::http(harness.base.clone(), None);
    let cases = [
        ("get_ticket", json!({}), "ticket", "missing field"),
        ("get_ticket", json!({"ticket": 7}), "ticket", "invalid type"),
        ("get_ticket", json!({"ticket": " "}), "ticket", "empty"),
        (
            "get_ticket",
            json!({"ticket": "INF-1", "x": 1}),
            "x",
            "unknown field",
        ),
        ("get_ticket", json!("INF-1"), "arguments", "object"),
        (
            "list_slos",
            json!({"verbose": true}),
            "verbose",
            "unknown field",
        ),
        ("claim_ticket", json!({"ttl_ms": 0}), "ttl_ms", "at least 1"),
        (
            "claim_ticket",
            json!({"ttl_ms": 90_000_000_000u64}),
            "ttl_ms",
            "at most",
        ),
        (
            "claim_ticket",
            json!({"sources": ["slo", ""]}),
            "sources[1]",
            "empty",
        ),
        (
            "list_tickets",
            json!({"limit": -1}),
            "limit",
            "invalid value",
        ),
        (
            "observe_series",
            json!({"window_ms": 5}),
            "selector",
            "missing field",
        ),
        (
            "propose_change",
            json!({"ticket": "INF-1", "rationale": "r", "actions": []}),
            "actions",
            "1 to 16",
        ),
        (
            "propose_change",
            json!({"ticket": "INF-1", "rationale": "r", "actions": [{"action": "set_limit", "params": {}}, {"params": {}}]}),
            "actions[1].action",
            "missing field",
        ),
        (
            "propose_change",
            json!({"ticket": "INF-1", "rationale": "r", "actions": [{"action": "set_limit", "params": [1]}]}),
            "actions[0].params",
            "JSON object",
        ),
        (
            "comment_ticket",
            json!({"ticket": "INF-1", "text": "x".repeat(tools::MAX_TEXT_BYTES + 1)}),
            "text",
            "at most 8192 bytes",
        ),
        (
            "escalate_ticket",
            json!({"ticket": "INF-1"}),
            "reason",
            "missing field",
        ),
        (
            "create_notice",
            json!({"matchers": [{"name": "tenant", "value": "acme"}], "duration_ms": 1000}),
            "reason",
            "missing field",
        ),
        (
            "create_notice",
            json!({"matchers": [], "duration_ms": 1000, "reason": "launch"}),
            "matchers",
            "1 to 16",
        ),
        (
            "create_notice",
            json!({"matchers": [{"name": "tenant", "value": "a", "regex": "a"}], "reason": "launch"}),
            "matchers[0]",
            "exactly one",
        ),
        (
            "create_notice",
            json!({"matchers": [{"name": "tenant", "value": "a"}], "reason": "launch", "max_factor": 0.5}),
            "max_factor",
            "above 1",
        ),
        ("list_notices", json!({"state": ""}), "state", "empty"),
    ];
    for (name, args, field, needle) in cases {
        let (got_field, message) = invalid(&client, name, args.clone()).await;
        assert_eq!(got_field, field, "{name} {args}: {message}");
        assert!(message.contains(needle), "{name} {args}: {message}");
    }
    assert_eq!(harness.calls(), vec![], "nothing reaches the harness");

    let error = tools::call(&client, "drop_tables", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error, ToolError::UnknownTool("drop_tables".into()));
    assert_eq!(error.to_json()["error"]["kind"], "unknown_tool");
    assert!(error.to_json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("propose_change"));
}

#[tokio::test]
async fn calls_reach_the_harness_as_the_clients_agent() {
    let harness = StandInHarness::start(vec![support::ticket("INF-0003", "claimed")]).await;
    let client = HarnessClient::http(harness.base.clone(), None).with_agent("claude");

    let claimed = tools::call(&client, "claim_ticket", Value::Null)
        .await
        .unwrap();
    assert_eq!(claimed["ticket"]["id"], "INF-0003");
    let proposal = tools::call(
        &client,
        "propose_change",
        json!({"ticket": "INF-0003", "rationale": "raise it", "actions": [
            {"action": "set_limit", "params": {"requests_per_unit": 200}}
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(proposal["proposal"]["agent"], "claude");
    tools::call(
        &client,
        "comment_ticket",
        json!({"ticket": "INF-0003", "text": "hi"}),
    )
    .await
    .unwrap();
    tools::call(
        &client,
        "escalate_ticket",
        json!({"ticket": "INF-0003", "reason": "unsure"}),
    )
    .await
    .unwrap();
    tools::call(&client, "release_ticket", json!({"ticket": "INF-0003"}))
        .await
        .unwrap();
    tools::call(
        &client,
        "get_service_events",
        json!({"service": "edge", "after": 3}),
    )
    .await
    .unwrap();
    let notice = tools::call(
        &client,
        "create_notice",
        json!({"matchers": [{"name": "tenant", "value": "acme"}], "duration_ms": 7_200_000,
               "reason": "acme launches", "max_factor": 10.0}),
    )
    .await
    .unwrap();
    assert_eq!(notice["notice"]["author"], "agent:claude");
    tools::call(&client, "list_notices", json!({"state": "active"}))
        .await
        .unwrap();

    let bodies: Vec<(String, Value)> = harness
        .calls()
        .into_iter()
        .map(|call| (call.uri, call.body))
        .collect();
    assert_eq!(
        bodies,
        vec![
            ("/v1/agent/claim".into(), json!({"agent": "claude"})),
            (
                "/v1/tickets/INF-0003/proposals".into(),
                json!({"agent": "claude", "rationale": "raise it", "actions": [
                    {"action": "set_limit", "params": {"requests_per_unit": 200}}
                ]})
            ),
            (
                "/v1/tickets/INF-0003/comment".into(),
                json!({"actor": "claude", "text": "hi"})
            ),
            (
                "/v1/tickets/INF-0003/escalate".into(),
                json!({"actor": "claude", "reason": "unsure"})
            ),
            (
                "/v1/tickets/INF-0003/release".into(),
                json!({"agent": "claude"})
            ),
            (
                "/v1/observe/events?service=edge&after=3".into(),
                Value::Null
            ),
            (
                "/v1/notices".into(),
                json!({"matchers": [{"name": "tenant", "value": "acme"}], "duration_ms": 7_200_000,
                       "reason": "acme launches", "author": "agent:claude", "max_factor": 10.0})
            ),
            ("/v1/notices?state=active".into(), Value::Null),
        ]
    );

    // A harness refusal comes back as a tool error with the harness's field.
    let error = tools::call(&client, "get_ticket", json!({"ticket": "NOPE-1"}))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_json(),
        json!({"error": {"kind": "not_found", "field": "id", "message": "no ticket NOPE-1", "status": 404}})
    );
}
