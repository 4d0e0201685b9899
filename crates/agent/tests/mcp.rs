//! The MCP server: rmcp's own client over an in-memory duplex stream lists
//! exactly the catalog with its annotations and calls tools against the
//! stand-in harness; the streamable HTTP router answers the MCP handshake
//! and `tools/list` over real HTTP on loopback.

mod support;

use floodgate_agent::client::HarnessClient;
use floodgate_agent::mcp::{streamable_http_router, FloodgateMcp, MCP_PATH};
use floodgate_agent::tools::CATALOG;
use rmcp::model::CallToolRequestParams;
use rmcp::ServiceExt;
use serde_json::{json, Value};
use support::StandInHarness;

async fn connect(harness: &StandInHarness) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let client = HarnessClient::http(harness.base.clone(), None).with_agent("mcp-test");
    let (server_side, client_side) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        let running = FloodgateMcp::new(client).serve(server_side).await.unwrap();
        let _ = running.waiting().await;
    });
    ().serve(client_side).await.unwrap()
}

fn object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(object) => object,
        other => panic!("not an object: {other}"),
    }
}

#[tokio::test]
async fn tools_are_listed_with_their_annotations() {
    let harness = StandInHarness::start(vec![]).await;
    let client = connect(&harness).await;
    let info = client.peer_info().expect("the server introduced itself");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("floodgate")
    );

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    let expected: Vec<&str> = CATALOG.iter().map(|tool| tool.name).collect();
    assert_eq!(names, expected);
    for (tool, def) in tools.iter().zip(CATALOG) {
        let annotations = tool.annotations.as_ref().expect("annotated");
        assert_eq!(
            annotations.read_only_hint,
            Some(def.read_only),
            "{}",
            def.name
        );
        assert_eq!(
            annotations.destructive_hint,
            Some(def.destructive),
            "{}",
            def.name
        );
        assert_eq!(annotations.open_world_hint, Some(false));
        assert_eq!(tool.title.as_deref(), Some(def.title));
        assert_eq!(tool.description.as_deref(), Some(def.description));
        assert_eq!(
            Value::Object((*tool.input_schema).clone()),
            def.input_schema_json()
        );
    }
    client.cancel().await.unwrap();
    assert!(harness.calls().is_empty(), "listing calls nothing");
}

#[tokio::test]
async fn a_read_only_tool_call_reaches_the_harness_and_errors_name_the_field() {
    let harness = StandInHarness::start(vec![]).await;
    let client = connect(&harness).await;

    let result = client
        .call_tool(
            CallToolRequestParams::new("get_ticket")
                .with_arguments(object(json!({"ticket": "INF-0009"}))),
        )
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false));
    let answer = result.structured_content.expect("structured");
    assert_eq!(answer["ticket"]["id"], "INF-0009");
    assert_eq!(harness.calls()[0].uri, "/v1/tickets/INF-0009");

    let result = client
        .call_tool(
            CallToolRequestParams::new("observe_series")
                .with_arguments(object(json!({"selector": "up", "window_ms": 0}))),
        )
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    let error = result.structured_content.expect("structured error");
    assert_eq!(error["error"]["field"], "window_ms");
    assert_eq!(harness.calls().len(), 1, "a refused call sends nothing");

    // A harness refusal is a tool error too, with the harness's field.
    let result = client
        .call_tool(
            CallToolRequestParams::new("get_ticket")
                .with_arguments(object(json!({"ticket": "NOPE-1"}))),
        )
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    let error = result.structured_content.expect("structured error");
    assert_eq!(error["error"]["kind"], "not_found");
    assert_eq!(error["error"]["status"], 404);

    // Claims act as the connection's agent.
    client
        .call_tool(CallToolRequestParams::new("claim_ticket"))
        .await
        .unwrap();
    assert_eq!(harness.calls()[2].body, json!({"agent": "mcp-test"}));

    // An unknown tool is a protocol error.
    let error = client
        .call_tool(CallToolRequestParams::new("rm_rf"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("rm_rf"), "{error}");
    client.cancel().await.unwrap();
}

/// Reads the first JSON-RPC message of an MCP HTTP answer, SSE or JSON.
async fn first_message(mut response: reqwest::Response) -> Value {
    let sse = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if !sse {
            continue;
        }
        for line in text.lines() {
            if let Some(data) = line.strip_prefix("data:") {
                if let Ok(message) = serde_json::from_str::<Value>(data.trim()) {
                    if message.get("id").is_some() {
                        return message;
                    }
                }
            }
        }
    }
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("no JSON-RPC message in {text:?}"))
}

#[tokio::test]
async fn the_streamable_http_router_serves_the_catalog() {
    let harness = StandInHarness::start(vec![]).await;
    let client = HarnessClient::http(harness.base.clone(), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{MCP_PATH}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, streamable_http_router(client))
            .await
            .unwrap();
    });
    let http = reqwest::Client::new();
    let post = |body: Value, session: Option<String>| {
        let mut request = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };

    let response = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "floodgate-test", "version": "0"}
        }}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|value| value.to_str().unwrap().to_owned());
    let initialized = first_message(response).await;
    assert_eq!(initialized["result"]["serverInfo"]["name"], "floodgate");
    assert!(initialized["result"]["capabilities"]["tools"].is_object());

    let response = post(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        session.clone(),
    )
    .await
    .unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    let response = post(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        session.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let listed = first_message(response).await;
    let tools = listed["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), CATALOG.len());
    let propose = tools
        .iter()
        .find(|tool| tool["name"] == "propose_change")
        .expect("propose_change is listed");
    assert_eq!(propose["annotations"]["destructiveHint"], true);
    assert_eq!(propose["annotations"]["readOnlyHint"], false);
    assert_eq!(tools[1]["annotations"]["readOnlyHint"], true);

    let response = post(
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "list_slos", "arguments": {}
        }}),
        session,
    )
    .await
    .unwrap();
    let called = first_message(response).await;
    assert_eq!(
        called["result"]["structuredContent"]["slos"][0]["name"],
        "checkout-availability"
    );
    assert_eq!(harness.calls()[0].uri, "/v1/slos");
}
