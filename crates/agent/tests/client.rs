//! Every `HarnessClient` call over real HTTP against the recording
//! stand-in harness: method, path, query encoding and body as ADR 0008
//! says, answers handed back as they came, errors mapped to the contract's
//! `ClientError`.

mod support;

use floodgate_agent::client::{
    ActionCall, ClaimRequest, ClientError, CommentRequest, Decision, HarnessClient,
    ProposalRequest, ServiceEventsQuery, Source, TicketQuery,
};
use serde_json::{json, Value};
use support::{ticket, Call, StandInHarness};

fn call(method: &str, uri: &str, body: Value) -> Call {
    Call {
        method: method.into(),
        uri: uri.into(),
        body,
        authorization: Some("Bearer s3cret".into()),
    }
}

#[tokio::test]
async fn every_call_reaches_its_endpoint_with_its_body() {
    let harness = StandInHarness::start(vec![ticket("INF-0007", "claimed")]).await;
    let client = HarnessClient::http(harness.base.clone(), Some("s3cret".into()));
    let decision = Decision {
        actor: Some("ops".into()),
        reason: Some("looks right".into()),
    };

    let claimed = client
        .claim(&ClaimRequest {
            agent: "llm".into(),
            ttl_ms: Some(60_000),
            sources: vec![Source::Slo],
            ticket: None,
        })
        .await
        .unwrap();
    assert_eq!(claimed["ticket"]["id"], "INF-0007");
    assert_eq!(
        client.get_ticket("INF-0007").await.unwrap()["ticket"]["state"],
        "claimed"
    );
    let listed = client
        .list_tickets(&TicketQuery {
            states: vec!["open".into(), "claimed".into()],
            source: Some("slo".into()),
            after: Some("INF-0001".into()),
            limit: Some(5),
        })
        .await
        .unwrap();
    assert_eq!(listed["tickets"][0]["id"], "INF-0001");
    client.release("INF-0007", "llm").await.unwrap();
    client.renew("INF-0007", "llm", Some(30_000)).await.unwrap();
    let escalated = client
        .escalate("INF-0007", "llm", "no safe change")
        .await
        .unwrap();
    assert_eq!(escalated["ticket"]["state"], "escalated");
    client
        .comment(
            "INF-0007",
            &CommentRequest {
                text: "looked at the SLO".into(),
                actor: Some("llm".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(client.criteria("INF-0007").await.unwrap()["all_met"], false);
    let proposal = client
        .propose(
            "INF-0007",
            &ProposalRequest {
                agent: "llm".into(),
                rationale: "the limit is too tight".into(),
                actions: vec![ActionCall {
                    action: "set_limit".into(),
                    params: json!({"domain": "checkout", "limit": "per_user", "requests_per_unit": 200}),
                }],
                interim: false,
                base_config: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(proposal["proposal"]["id"], "P-0001");
    assert_eq!(
        client.get_proposal("P-0001").await.unwrap()["proposal"]["state"],
        "succeeded"
    );
    client.approve("P-0001", &decision).await.unwrap();
    client.reject("P-0001", &Decision::default()).await.unwrap();
    assert_eq!(
        client.actions().await.unwrap()["actions"][0]["name"],
        "set_limit"
    );
    client
        .observe_series("floodgate_requests_total{service=\"edge\"}", Some(60_000))
        .await
        .unwrap();
    client.observe_state("edge").await.unwrap();
    client
        .observe_events(&ServiceEventsQuery {
            service: "edge".into(),
            after: Some(41),
            limit: Some(10),
        })
        .await
        .unwrap();
    client.slos().await.unwrap();
    client.invariants().await.unwrap();
    client.anomalies().await.unwrap();
    assert_eq!(client.pipeline().await.unwrap()["paused"], false);
    assert_eq!(client.pause(&decision).await.unwrap()["paused"], true);
    assert_eq!(
        client.resume(&Decision::default()).await.unwrap()["paused"],
        false
    );

    assert_eq!(
        harness.calls(),
        vec![
            call(
                "POST",
                "/v1/agent/claim",
                json!({"agent": "llm", "ttl_ms": 60000, "sources": ["slo"]})
            ),
            call("GET", "/v1/tickets/INF-0007", Value::Null),
            call(
                "GET",
                "/v1/tickets?state=open%2Cclaimed&source=slo&after=INF-0001&limit=5",
                Value::Null
            ),
            call("POST", "/v1/tickets/INF-0007/release", json!({"agent": "llm"})),
            call(
                "POST",
                "/v1/tickets/INF-0007/renew",
                json!({"agent": "llm", "ttl_ms": 30000})
            ),
            call(
                "POST",
                "/v1/tickets/INF-0007/escalate",
                json!({"actor": "llm", "reason": "no safe change"})
            ),
            call(
                "POST",
                "/v1/tickets/INF-0007/comment",
                json!({"actor": "llm", "text": "looked at the SLO"})
            ),
            call("GET", "/v1/tickets/INF-0007/criteria", Value::Null),
            call(
                "POST",
                "/v1/tickets/INF-0007/proposals",
                json!({"agent": "llm", "rationale": "the limit is too tight", "actions": [
                    {"action": "set_limit", "params": {"domain": "checkout", "limit": "per_user", "requests_per_unit": 200}}
                ]})
            ),
            call("GET", "/v1/proposals/P-0001", Value::Null),
            call(
                "POST",
                "/v1/proposals/P-0001/approve",
                json!({"actor": "ops", "reason": "looks right"})
            ),
            call("POST", "/v1/proposals/P-0001/reject", json!({})),
            call("GET", "/v1/actions", Value::Null),
            call(
                "GET",
                "/v1/observe/series?selector=floodgate_requests_total%7Bservice%3D%22edge%22%7D&window_ms=60000",
                Value::Null
            ),
            call("GET", "/v1/observe/state?service=edge", Value::Null),
            call(
                "GET",
                "/v1/observe/events?service=edge&after=41&limit=10",
                Value::Null
            ),
            call("GET", "/v1/slos", Value::Null),
            call("GET", "/v1/invariants", Value::Null),
            call("GET", "/v1/anomalies", Value::Null),
            call("GET", "/v1/pipeline", Value::Null),
            call(
                "POST",
                "/v1/pause",
                json!({"actor": "ops", "reason": "looks right"})
            ),
            call("POST", "/v1/resume", json!({})),
        ]
    );
}

#[tokio::test]
async fn ids_are_encoded_so_they_stay_in_their_segment() {
    let harness = StandInHarness::start(vec![]).await;
    let client = HarnessClient::http(harness.base.clone(), None);
    let error = client.get_ticket("../actions?x=1").await.unwrap_err();
    assert!(
        matches!(error, ClientError::Api { status: 404, .. }),
        "{error:?}"
    );
    assert_eq!(harness.calls()[0].uri, "/v1/tickets/..%2Factions%3Fx%3D1");
    assert_eq!(harness.calls()[0].authorization, None);
}

#[tokio::test]
async fn refusals_map_to_the_contract_errors() {
    let harness = StandInHarness::start(vec![]).await;
    let client = HarnessClient::http(harness.base.clone(), None);

    match client.get_ticket("X-1").await.unwrap_err() {
        ClientError::Api { status, error } => {
            assert_eq!(status, 404);
            assert_eq!(error.error.kind, "not_found");
            assert_eq!(error.error.field, "id");
        }
        other => panic!("{other:?}"),
    }
    // An error status whose body is not the error document.
    match client.get_ticket("BROKEN").await.unwrap_err() {
        ClientError::Decode(message) => {
            assert!(message.contains("HTTP 502"), "{message}");
            assert!(message.contains("upstream exploded"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // An empty queue answers a null ticket, which is not an error.
    let answer = client
        .claim(&ClaimRequest {
            agent: "a".into(),
            ..ClaimRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(answer, json!({"ticket": null}));
}

#[tokio::test]
async fn an_unreachable_harness_is_a_transient_transport_error() {
    // Bind and drop: nothing listens on the port afterwards.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = HarnessClient::http(format!("http://{addr}"), None);
    let error = client.slos().await.unwrap_err();
    assert!(matches!(error, ClientError::Transport(_)), "{error:?}");
    assert!(error.is_transient());
}
