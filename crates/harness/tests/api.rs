//! The harness HTTP API over real loopback HTTP (reqwest), on a harness
//! with the example objectives and a simulated clock.

mod common;

use common::{scratch_dir, T0_MS};
use floodgate_harness::{
    api, observe::objectives, Harness, HarnessConfig, HarnessState, ManualClock, Store,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Api {
    base: String,
    client: reqwest::Client,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Api {
    async fn start(name: &str) -> Api {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/objectives.yaml");
        let text = std::fs::read_to_string(&path).expect("examples/objectives.yaml");
        let objectives = objectives::parse("objectives.yaml", &text).expect("parses");
        let harness = Harness::new(objectives, HarnessConfig::default()).expect("harness");
        let dir = scratch_dir(name);
        let store = Store::open(&dir).expect("store");
        let state = HarnessState::new(harness, store, Arc::new(ManualClock::at_ms(T0_MS)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(api::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Api {
            base,
            client: reqwest::Client::new(),
            dir,
            stop: Some(stop),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON answer"))
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON answer"))
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const TICKET: &str = "ticket:
  type: improvement
  objective:
    description: Reduce p99 latency of rate limit checks below 500us
  acceptance_criteria:
    - metric: latency_p99
      condition: < 500us
      duration: 1h sustained
    - metric: error_ratio
      condition: no regression
  constraints:
    - Must not change the external API
  priority: medium
";

fn alert_payload() -> Value {
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"HighErrorRate\"}",
        "status": "firing",
        "receiver": "floodgate-harness",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
        "commonAnnotations": {"summary": "Error rate above 1% for 5 minutes"},
        "externalURL": "http://alertmanager.example:9093",
        "truncatedAlerts": 0,
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "severity": "critical", "instance": "a:8080"},
            "annotations": {"summary": "Error rate above 1% for 5 minutes"},
            "startsAt": "2026-01-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph",
            "fingerprint": "c2a1f5e0d1b3a4f6"
        }]
    })
}

#[tokio::test]
async fn the_same_alertmanager_payload_twice_makes_one_ticket() {
    let api = Api::start("api-alertmanager").await;
    let body = serde_json::to_vec(&alert_payload()).expect("json");
    let (status, first) = api.post("/v1/alertmanager", body.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["filed"][0]["action"], "created");
    let (status, second) = api.post("/v1/alertmanager", body).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["filed"][0]["action"], "duplicate");
    assert_eq!(second["filed"][0]["id"], first["filed"][0]["id"]);

    let (status, list) = api.get("/v1/tickets?source=alertmanager").await;
    assert_eq!(status, 200);
    let tickets = list["tickets"].as_array().expect("tickets");
    assert_eq!(tickets.len(), 1, "{list}");
    assert_eq!(tickets[0]["priority"], "critical");
    assert_eq!(tickets[0]["occurrences"], 1);
    assert_eq!(
        tickets[0]["objective"]["description"],
        "Error rate above 1% for 5 minutes"
    );

    let (status, error) = api
        .post(
            "/v1/alertmanager",
            r#"{"version": "3", "groupKey": "g", "status": "firing", "alerts": []}"#,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["field"], "version");
    let (status, error) = api.post("/v1/alertmanager", "{\"version\": 4}").await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["kind"], "invalid_argument");
    assert_eq!(error["error"]["field"], "version", "{error}");
}

#[tokio::test]
async fn bad_ticket_yaml_is_refused_naming_line_and_field() {
    let api = Api::start("api-bad-ticket").await;
    let unknown_metric = TICKET.replace("metric: error_ratio", "metric: cold_start_p99");
    let (status, error) = api
        .post("/v1/tickets?file=ticket.yaml", unknown_metric)
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["kind"], "invalid_argument");
    assert_eq!(
        error["error"]["field"],
        "ticket.acceptance_criteria[1].metric"
    );
    assert_eq!(error["error"]["line"], 9, "{error}");
    let message = error["error"]["message"].as_str().expect("message");
    assert!(message.starts_with("ticket.yaml: line 9: "), "{message}");
    assert!(message.contains("cold_start_p99"), "{message}");

    let bad_condition = TICKET.replace("< 500us", "about 500us");
    let (status, error) = api.post("/v1/tickets", bad_condition).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(
        error["error"]["field"],
        "ticket.acceptance_criteria[0].condition"
    );
    assert_eq!(error["error"]["line"], 7, "{error}");

    let bad_type = TICKET.replace("type: improvement", "type: wish");
    let (status, error) = api.post("/v1/tickets", bad_type).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["field"], "ticket.type", "{error}");
    assert_eq!(error["error"]["line"], 2, "{error}");

    let (status, list) = api.get("/v1/tickets").await;
    assert_eq!(status, 200);
    assert_eq!(list["tickets"], json!([]), "nothing was filed");
}

#[tokio::test]
async fn a_human_ticket_goes_through_the_api() {
    let api = Api::start("api-lifecycle").await;
    let (status, created) = api.post("/v1/tickets", TICKET).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["action"], "created");
    let id = created["ticket"]["id"].as_str().expect("id").to_owned();
    assert_eq!(id, "INF-0001");
    assert_eq!(created["ticket"]["source"], "human");
    assert_eq!(created["ticket"]["state"], "open");

    // The same file again is the same ticket; JSON works as well.
    let (status, again) = api.post("/v1/tickets", TICKET).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["action"], "absorbed");
    let json_ticket = json!({
        "type": "task",
        "objective": {"description": "Raise the store capacity to 2M keys"},
        "acceptance_criteria": [{"metric": "store_used_ratio", "condition": "< 50%"}],
    });
    let (status, second) = api
        .post(
            "/v1/tickets",
            serde_json::to_vec(&json_ticket).expect("json"),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["ticket"]["id"], "INF-0002");

    let (status, shown) = api.get(&format!("/v1/tickets/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(shown["ticket"]["occurrences"], 2);
    assert_eq!(shown["history"][0]["kind"], "ticket.created");

    let (status, commented) = api
        .post(
            &format!("/v1/tickets/{id}/comment"),
            r#"{"text": "looking at the histogram", "actor": "ana"}"#,
        )
        .await;
    assert_eq!(status, 200, "{commented}");
    let (status, error) = api
        .post(&format!("/v1/tickets/{id}/comment"), r#"{"txt": "typo"}"#)
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["field"], "txt", "{error}");

    let (status, criteria) = api.get(&format!("/v1/tickets/{id}/criteria")).await;
    assert_eq!(status, 200, "{criteria}");
    assert_eq!(criteria["criteria"].as_array().map(Vec::len), Some(2));
    assert_eq!(criteria["criteria"][0]["verdict"], "pending");
    assert_eq!(criteria["all_met"], false);

    let (status, cancelled) = api
        .post(&format!("/v1/tickets/{id}/cancel"), r#"{"reason": "dup"}"#)
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["ticket"]["state"], "cancelled");
    let (status, error) = api.post(&format!("/v1/tickets/{id}/cancel"), "").await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"]["kind"], "precondition_failed");

    let (_, open) = api.get("/v1/tickets?state=open").await;
    assert_eq!(open["tickets"].as_array().map(Vec::len), Some(1));
    assert_eq!(open["tickets"][0]["id"], "INF-0002");
    let (status, error) = api.get("/v1/tickets?state=done").await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["field"], "state");
    let (status, error) = api.get("/v1/tickets/INF-0099").await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["kind"], "not_found");

    let (status, page) = api.get("/v1/ledger?after=0&limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["next_after"], 2);
    let head = page["head_seq"].as_u64().expect("head");
    let (_, rest) = api.get("/v1/ledger?after=2").await;
    assert_eq!(
        rest["entries"].as_array().map(Vec::len),
        Some(head as usize - 2)
    );
    assert_eq!(rest["entries"][0]["prev_hash"], page["entries"][1]["hash"]);
    assert!(floodgate_harness::verify(&api.dir).is_ok());
}

#[tokio::test]
async fn a_report_filed_again_after_its_ticket_went_to_a_human_is_a_new_episode() {
    let api = Api::start("api-episode").await;
    let (status, first) = api.post("/v1/tickets", TICKET).await;
    assert_eq!(status, 201, "{first}");
    let id = first["ticket"]["id"].as_str().expect("id").to_owned();
    let (status, escalated) = api
        .post(
            &format!("/v1/tickets/{id}/escalate"),
            r#"{"reason": "the agent cannot tell which push", "actor": "agent:runbook-1"}"#,
        )
        .await;
    assert_eq!(status, 200, "{escalated}");
    assert_eq!(escalated["ticket"]["state"], "escalated");

    // The same report again: a new ticket linked to the escalated one, not
    // an occurrence of it nobody works.
    let (status, again) = api.post("/v1/tickets", TICKET).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["action"], "created");
    assert_ne!(again["ticket"]["id"], first["ticket"]["id"]);
    assert_eq!(again["ticket"]["context"]["previous_ticket"], id.as_str());
    assert_eq!(again["ticket"]["state"], "open");
    let (_, shown) = api.get(&format!("/v1/tickets/{id}")).await;
    assert_eq!(shown["ticket"]["occurrences"], 1, "{shown}");
    assert_eq!(shown["ticket"]["state"], "escalated");

    // While that one is open, the same report is absorbed into it.
    let (status, absorbed) = api.post("/v1/tickets", TICKET).await;
    assert_eq!(status, 200, "{absorbed}");
    assert_eq!(absorbed["action"], "absorbed");
    assert_eq!(absorbed["ticket"]["id"], again["ticket"]["id"]);
}

#[tokio::test]
async fn every_route_of_the_scope_table_exists() {
    // The scope table is the access contract: a line for a route the
    // router does not have is a promise nobody keeps (and hides a typo).
    let api = Api::start("api-scope-table").await;
    let mut missing = Vec::new();
    for route in floodgate_harness_contract::routes::ROUTES {
        // `/mcp` is the agent crate's router (`floodgate_agent::mcp`),
        // merged in by `floodgate harness`; `cli/tests/mcp_e2e.rs` drives it.
        if route.path == "/mcp" {
            continue;
        }
        let path: String = route
            .path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "X-0001"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method =
            reqwest::Method::from_bytes(route.method.as_str().as_bytes()).expect("a method");
        let response = api
            .client
            .request(method.clone(), format!("{}{path}", api.base))
            .header("content-type", "application/json")
            .body("{}")
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .expect("an answer");
        let status = response.status().as_u16();
        // Only the router's own 404 is read: a stream (GET /mcp) answers
        // 200 and never ends.
        let unrouted = status == 405
            || (status == 404
                && response
                    .text()
                    .await
                    .unwrap_or_default()
                    .contains("no such endpoint"));
        if unrouted {
            missing.push(format!("{method} {} ({status})", route.path));
        }
    }
    assert!(
        missing.is_empty(),
        "in the scope table, not routed: {missing:?}"
    );
}

#[tokio::test]
async fn the_openapi_document_is_served_as_generated() {
    let api = Api::start("api-openapi").await;
    let (status, document) = api.get("/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(document, floodgate_harness_contract::openapi::document());
    assert_eq!(
        document["paths"]["/v1/agent/claim"]["post"]["x-floodgate-scope"],
        "operate"
    );
}

#[tokio::test]
async fn reports_answer_before_the_first_tick() {
    let api = Api::start("api-reports").await;
    let (status, slos) = api.get("/v1/slos").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = slos["slos"]
        .as_array()
        .expect("slos")
        .iter()
        .filter_map(|slo| slo["name"].as_str())
        .collect();
    assert_eq!(names, ["availability", "latency", "limiting_correctness"]);
    let (status, invariants) = api.get("/v1/invariants").await;
    assert_eq!(status, 200);
    assert_eq!(invariants["defined"].as_array().map(Vec::len), Some(3));
    let (status, health) = api.get("/v1/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["ticks"], 0);
    assert_eq!(health["status"], "ok");
    let (status, error) = api.get("/v1/nothing").await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["kind"], "not_found");
}

const NOTICE: &str = r#"{
  "matchers": [{"name": "tenant", "value": "acme"}, {"name": "anomaly", "regex": "request_.*"}],
  "duration_ms": 7200000,
  "reason": "acme launches: five times the traffic",
  "author": "deploy:ci",
  "max_factor": 10
}"#;

#[tokio::test]
async fn notices_are_created_listed_shown_and_expired() {
    let api = Api::start("api-notices").await;
    let (status, created) = api.post("/v1/notices", NOTICE).await;
    assert_eq!(status, 201, "{created}");
    let notice = &created["notice"];
    assert_eq!(notice["id"], "N-0001");
    assert_eq!(notice["state"], "active");
    assert_eq!(notice["starts_ms"], T0_MS);
    assert_eq!(notice["ends_ms"], T0_MS + 7_200_000);
    assert_eq!(notice["created_ms"], T0_MS);
    assert_eq!(notice["author"], "deploy:ci");
    assert_eq!(notice["max_factor"], 10.0);
    assert_eq!(
        notice["matchers"],
        json!([{"name": "tenant", "value": "acme"}, {"name": "anomaly", "regex": "request_.*"}])
    );
    assert_eq!(
        (notice["suppressed"].as_u64(), notice["exceeded"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(notice.get("expired").is_none(), "{notice}");

    // A second one, an hour from now: pending.
    let later = json!({
        "matchers": [{"name": "service", "value": "edge-1"}],
        "starts_ms": T0_MS + 3_600_000,
        "ends_ms": T0_MS + 5_400_000,
        "reason": "migrate edge-1 to the new store",
        "author": "human:alice",
    });
    let (status, created) = api.post("/v1/notices", later.to_string()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["notice"]["id"], "N-0002");
    assert_eq!(created["notice"]["state"], "pending");
    assert!(created["notice"].get("max_factor").is_none());

    let ids = |body: &Value| -> Vec<String> {
        body["notices"]
            .as_array()
            .expect("notices")
            .iter()
            .map(|n| n["id"].as_str().expect("id").to_owned())
            .collect()
    };
    for (query, expected) in [
        ("", vec!["N-0001", "N-0002"]),
        ("?state=all", vec!["N-0001", "N-0002"]),
        ("?state=active", vec!["N-0001"]),
        ("?state=pending", vec!["N-0002"]),
        ("?state=expired", vec![]),
        ("?after=N-0001", vec!["N-0002"]),
        ("?limit=1", vec!["N-0001"]),
    ] {
        let (status, body) = api.get(&format!("/v1/notices{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(ids(&body), expected, "{query}");
    }

    let (status, body) = api
        .post(
            "/v1/notices/N-0001/expire",
            r#"{"actor": "human:bob", "reason": "launch postponed"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["notice"]["state"], "expired");
    assert_eq!(
        body["notice"]["expired"],
        json!({"time_ms": T0_MS, "actor": "human:bob", "reason": "launch postponed"})
    );
    let (status, body) = api.get("/v1/notices?state=expired").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body), vec!["N-0001"]);

    let (status, body) = api.get("/v1/notices/N-0001").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["notice"]["state"], "expired");
    let kinds: Vec<&str> = body["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|entry| entry["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["notice.created", "notice.expired"]);

    // Expiring again, or a notice that does not exist.
    let (status, body) = api
        .post("/v1/notices/N-0001/expire", r#"{"reason": "again"}"#)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["kind"], "precondition_failed");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("already expired")));
    let (status, body) = api.get("/v1/notices/N-0099").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["message"], "no notice N-0099");
    let (status, body) = api
        .post("/v1/notices/N-0099/expire", r#"{"reason": "x"}"#)
        .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn bad_notices_are_refused_naming_the_field() {
    let api = Api::start("api-notices-bad").await;
    let base: Value = serde_json::from_str(NOTICE).expect("json");
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        if value.is_null() {
            body.as_object_mut().expect("object").remove(key);
        } else {
            body[key] = value;
        }
        body.to_string()
    };
    for (body, field, needle) in [
        ("not json".to_owned(), "body", "expected"),
        (with("reason", Value::Null), "reason", "missing field"),
        (with("author", Value::Null), "author", "missing field"),
        (with("matchers", json!([])), "matchers", "1 to 16"),
        (
            with("matchers", json!([{"name": "colour", "value": "red"}])),
            "matchers[0].name",
            "unknown variant",
        ),
        (
            with("matchers", json!([{"name": "tenant", "regex": "("}])),
            "matchers[0].regex",
            "not a valid regex",
        ),
        (
            with("matchers", json!([{"name": "tenant"}])),
            "matchers[0]",
            "exactly one",
        ),
        (
            with(
                "matchers",
                json!([{"name": "tenant", "value": "a", "flavour": "x"}]),
            ),
            "matchers[0].flavour",
            "unknown field",
        ),
        (with("duration_ms", Value::Null), "ends_ms", "required"),
        (
            with("duration_ms", json!(8 * 24 * 3_600_000u64)),
            "ends_ms",
            "longer than 7d",
        ),
        (with("ends_ms", json!(T0_MS + 1)), "duration_ms", "not both"),
        (with("starts_ms", json!(-1)), "starts_ms", "invalid value"),
        (with("reason", json!("")), "reason", "1 to 1024"),
        (with("author", json!("alice")), "author", "KIND:NAME"),
        (with("max_factor", json!(1)), "max_factor", "above 1"),
        (
            with("max_factor", json!("ten")),
            "max_factor",
            "invalid type",
        ),
        (with("colour", json!("red")), "colour", "unknown field"),
    ] {
        let (status, answer) = api.post("/v1/notices", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["kind"], "invalid_argument", "{answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|message| message.contains(needle)),
            "{body}: {answer}"
        );
    }
    for (query, field) in [
        ("?state=soon", "state"),
        ("?after=x", "after"),
        ("?colour=red", "colour"),
    ] {
        let (status, answer) = api.get(&format!("/v1/notices{query}")).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, created) = api.post("/v1/notices", NOTICE).await;
    assert_eq!(status, 201, "{created}");
    let (status, answer) = api
        .post("/v1/notices/N-0001/expire", r#"{"actor": "human:bob"}"#)
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "reason");
    // Nothing was stored but the one good notice.
    let (_, listed) = api.get("/v1/notices").await;
    assert_eq!(listed["notices"].as_array().map(Vec::len), Some(1));
}

/// Open mode (no tokens): a page's cross-site POST (text/plain, a foreign
/// Origin) and a rebound name's GET are refused naming the header; the
/// same host's JSON POST is served (ADR 0004).
#[tokio::test]
async fn open_mode_refuses_cross_site_requests_and_rebound_hosts() {
    let api = Api::start("open-mode").await;
    let response = api
        .client
        .post(format!("{}/v1/pause", api.base))
        .header("origin", "http://evil.example")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 403);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["field"], "origin", "{body}");
    let response = api
        .client
        .get(format!("{}/v1/tickets", api.base))
        .header("host", "evil.example")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 403);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["field"], "host", "{body}");
    let response = api
        .client
        .post(format!("{}/v1/pause", api.base))
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 415);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["field"], "content-type", "{body}");
    let (status, filed) = api.post("/v1/tickets", TICKET).await;
    assert_eq!(status, 201, "{filed}");
}

/// Validation errors are 400s naming the field, whatever the queue holds:
/// a claim's `ttl_ms` out of range while a ticket is open (not 200 with
/// no ticket), a comment over 8,192 bytes (not 409 on `state`).
#[tokio::test]
async fn out_of_range_claims_and_oversized_comments_name_their_field() {
    let api = Api::start("validation").await;
    let (status, created) = api.post("/v1/tickets", TICKET).await;
    assert_eq!(status, 201, "{created}");
    let id = created["ticket"]["id"].as_str().expect("id").to_owned();
    for ttl_ms in [1, 365 * 24 * 3_600_000_u64] {
        let body = json!({"agent": "agent:a", "ttl_ms": ttl_ms}).to_string();
        let (status, answer) = api.post("/v1/agent/claim", body).await;
        assert_eq!(status, 400, "{ttl_ms}: {answer}");
        assert_eq!(answer["error"]["field"], "ttl_ms", "{answer}");
    }
    let body = json!({"actor": "human:a", "text": "x".repeat(8_193)}).to_string();
    let (status, answer) = api.post(&format!("/v1/tickets/{id}/comment"), body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "text", "{answer}");
    let body = json!({"actor": "human:a", "text": "x".repeat(8_192)}).to_string();
    let (status, answer) = api.post(&format!("/v1/tickets/{id}/comment"), body).await;
    assert_eq!(status, 200, "{answer}");
}

/// An Alertmanager `startsAt` that is not a time is refused naming it (it
/// is part of the alert's identity), and files nothing.
#[tokio::test]
async fn an_alert_starting_yesterday_is_refused_naming_starts_at() {
    let api = Api::start("api-alertmanager-starts-at").await;
    let mut payload = alert_payload();
    payload["alerts"][0]["startsAt"] = json!("yesterday");
    let body = serde_json::to_vec(&payload).expect("json");
    let (status, error) = api.post("/v1/alertmanager", body).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["field"], "alerts[0].startsAt", "{error}");
    let (status, list) = api.get("/v1/tickets").await;
    assert_eq!(status, 200);
    assert_eq!(list["tickets"], json!([]), "{list}");
}

/// Refusals the router and the edge make themselves carry the JSON error:
/// a method a path does not take (405, with `Allow`), headers over their
/// bound (431), a ticket over `MAX_TICKET_FILE_BYTES` (413, not 400); a
/// ticket of exactly that size is filed.
#[tokio::test]
async fn method_header_and_ticket_size_refusals_are_json_errors() {
    let api = Api::start("refusals").await;
    let response = api
        .client
        .delete(format!("{}/v1/tickets", api.base))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status().as_u16(), 405);
    let allow = response
        .headers()
        .get("allow")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    assert_eq!(allow.as_deref(), Some("GET,HEAD,POST"));
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["kind"], "method_not_allowed", "{body}");
    assert_eq!(body["error"]["field"], "method", "{body}");

    let response = api
        .client
        .get(format!("{}/v1/health", api.base))
        .header("x-padding", "p".repeat(20 * 1024))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 431);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["field"], "headers", "{body}");

    let bound = floodgate_harness::tickets::MAX_TICKET_FILE_BYTES;
    let padded = |bytes: usize| format!("{TICKET}# {}\n", "x".repeat(bytes - TICKET.len() - 3));
    let (status, answer) = api.post("/v1/tickets", padded(bound + 1)).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["kind"], "too_large", "{answer}");
    assert_eq!(answer["error"]["field"], "body", "{answer}");
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(message.contains("MAX_TICKET_FILE_BYTES"), "{message}");
    let (status, answer) = api.post("/v1/tickets", padded(bound)).await;
    assert_eq!(status, 201, "{answer}");
}

#[test]
fn the_contract_notice_request_is_what_the_harness_reads() {
    // The notice body is a contract type for clients; the harness reads
    // it as its own draft (typed label names). Every field of one must
    // survive as the other.
    use floodgate_harness_contract::types::{NoticeMatcher, NoticeRequest};
    let request = NoticeRequest {
        matchers: vec![
            NoticeMatcher {
                name: "tenant".into(),
                value: Some("acme".into()),
                regex: None,
            },
            NoticeMatcher {
                name: "limit".into(),
                value: None,
                regex: Some("api-.*".into()),
            },
        ],
        starts_ms: Some(1_000),
        ends_ms: Some(2_000),
        duration_ms: Some(500),
        reason: "launch".into(),
        author: "human:alice".into(),
        max_factor: Some(3.0),
    };
    let sent = serde_json::to_value(&request).expect("serialises");
    let draft: floodgate_harness::tickets::notices::NoticeDraft =
        serde_json::from_value(sent.clone()).expect("the harness reads it");
    assert_eq!(serde_json::to_value(&draft).expect("serialises"), sent);
    let back: NoticeRequest =
        serde_json::from_value(serde_json::to_value(&draft).unwrap()).expect("and back");
    assert_eq!(back, request);
}
