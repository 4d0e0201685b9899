//! Access control on the harness API over real loopback HTTP: bearer
//! tokens with the scopes read, operate, admin and intake; 401/403 with
//! the contract's error body; routes missing from the table admin-only.

mod common;

use common::{scratch_dir, T0_MS};
use floodgate_harness::api::auth::Tokens;
use floodgate_harness::{
    api, observe::objectives, Harness, HarnessConfig, HarnessState, ManualClock, Store,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const READ: &str = "read-token-0123456789";
const OPERATE: &str = "operate-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";
const INTAKE: &str = "intake-token-0123456789";

const TICKET: &str = r#"{"type": "improvement",
  "objective": {"description": "Keep p99 below 500us"},
  "acceptance_criteria": [{"metric": "latency_p99", "condition": "< 500us", "duration": "1h sustained"}]}"#;

struct Api {
    base: String,
    client: reqwest::Client,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Api {
    async fn start(name: &str, tokens: Tokens) -> Api {
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
        tokio::spawn(api::serve_with_tokens(
            listener,
            state,
            Arc::new(tokens),
            async move {
                let _ = stopped.await;
            },
        ));
        Api {
            base,
            client: reqwest::Client::new(),
            dir,
            stop: Some(stop),
        }
    }

    /// One call: status, `WWW-Authenticate` (if any), JSON body.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, Option<String>, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|value| value.to_str().expect("ascii").to_owned());
        (
            status,
            challenge,
            response.json().await.expect("a JSON answer"),
        )
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let (status, _, body) = self.call(reqwest::Method::GET, path, token, "").await;
        (status, body)
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let (status, _, body) = self.call(reqwest::Method::POST, path, token, body).await;
        (status, body)
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

fn tokens() -> Tokens {
    Tokens::parse_file(
        "tokens.txt",
        &format!(
            "read dash {READ}\noperate agent-1 {OPERATE}\nadmin ops {ADMIN}\nintake alertmanager {INTAKE}\n"
        ),
    )
    .expect("tokens")
}

fn assert_refused(status: u16, body: &Value, expected: u16, kind: &str, field: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["kind"], kind, "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn each_scope_may_do_its_calls_and_nothing_more() {
    let api = Api::start("auth-scopes", tokens()).await;

    // No token, or an unknown one: 401 with a challenge.
    let (status, challenge, body) = api.call(reqwest::Method::GET, "/v1/health", None, "").await;
    assert_refused(status, &body, 401, "unauthorized", "authorization");
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer realm=\"floodgate-harness\"")
    );
    let (status, body) = api.get("/v1/health", Some("not-a-token-0123456789")).await;
    assert_refused(status, &body, 401, "unauthorized", "authorization");

    // intake files tickets (and Alertmanager payloads reach their handler)
    // but cannot read the queue.
    let (status, created) = api.post("/v1/tickets", Some(INTAKE), TICKET).await;
    assert_eq!(status, 201, "{created}");
    let id = created["ticket"]["id"].as_str().expect("an id").to_owned();
    let (status, body) = api.post("/v1/alertmanager", Some(INTAKE), "{}").await;
    assert_refused(status, &body, 400, "invalid_argument", "body");
    let (status, body) = api.get("/v1/tickets", Some(INTAKE)).await;
    assert_refused(status, &body, 403, "forbidden", "scope");
    assert_eq!(
        body["error"]["message"],
        "GET /v1/tickets needs scope read; token alertmanager has scope intake"
    );

    // read reads, and nothing else.
    for path in ["/v1/health", "/v1/tickets", "/v1/ledger", "/v1/slos"] {
        let (status, body) = api.get(path, Some(READ)).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = api.get(&format!("/v1/tickets/{id}"), Some(READ)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api.post("/v1/tickets", Some(READ), TICKET).await;
    assert_refused(status, &body, 403, "forbidden", "scope");
    let comment = json!({"text": "looking", "actor": "agent-1"}).to_string();
    let (status, challenge, body) = api
        .call(
            reqwest::Method::POST,
            &format!("/v1/tickets/{id}/comment"),
            Some(READ),
            &comment,
        )
        .await;
    assert_refused(status, &body, 403, "forbidden", "scope");
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer realm=\"floodgate-harness\", error=\"insufficient_scope\", scope=\"operate\"")
    );

    // operate comments (an agent call) but cannot cancel (admin's).
    let (status, body) = api
        .post(
            &format!("/v1/tickets/{id}/comment"),
            Some(OPERATE),
            &comment,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api
        .post(&format!("/v1/tickets/{id}/cancel"), Some(OPERATE), "")
        .await;
    assert_refused(status, &body, 403, "forbidden", "scope");
    let (status, body) = api.post("/v1/tickets", Some(OPERATE), TICKET).await;
    assert_refused(status, &body, 403, "forbidden", "scope");

    // admin does everything.
    let (status, body) = api
        .post(&format!("/v1/tickets/{id}/cancel"), Some(ADMIN), "")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ticket"]["state"], "cancelled");
    let (status, body) = api.post("/v1/tickets", Some(ADMIN), TICKET).await;
    assert_eq!(status, 201, "{body}");
}

const NOTICE: &str = r#"{"matchers": [{"name": "tenant", "value": "acme"}],
  "duration_ms": 3600000, "reason": "acme launches", "author": "deploy:ci"}"#;

#[tokio::test]
async fn notices_are_announced_with_intake_and_read_with_read() {
    let api = Api::start("auth-notices", tokens()).await;
    // read and operate tokens cannot announce or expire.
    for token in [READ, OPERATE] {
        let (status, body) = api.post("/v1/notices", Some(token), NOTICE).await;
        assert_refused(status, &body, 403, "forbidden", "scope");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|message| message.contains("needs scope intake")),
            "{body}"
        );
    }
    // intake announces, but cannot read the list.
    let (status, body) = api.post("/v1/notices", Some(INTAKE), NOTICE).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api.get("/v1/notices", Some(INTAKE)).await;
    assert_refused(status, &body, 403, "forbidden", "scope");
    // read reads.
    let (status, body) = api.get("/v1/notices?state=active", Some(READ)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["notices"][0]["id"], "N-0001");
    let (status, body) = api.get("/v1/notices/N-0001", Some(READ)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api
        .post(
            "/v1/notices/N-0001/expire",
            Some(READ),
            r#"{"reason": "postponed"}"#,
        )
        .await;
    assert_refused(status, &body, 403, "forbidden", "scope");
    // intake and admin expire.
    let (status, body) = api
        .post(
            "/v1/notices/N-0001/expire",
            Some(INTAKE),
            r#"{"reason": "postponed"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api.post("/v1/notices", Some(ADMIN), NOTICE).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["notice"]["id"], "N-0002");
}

#[tokio::test]
async fn calls_judged_as_a_caller_get_that_callers_scope_and_no_more() {
    // The harness's `/mcp` hands its tools' calls to the router in process
    // judged as `operate`: reading works, announcing a notice does not.
    let objectives = objectives::parse("o.yaml", "slos: []\n").expect("objectives");
    let harness = Harness::new(objectives, HarnessConfig::default()).expect("harness");
    let dir = scratch_dir("auth-layer-as");
    let state = HarnessState::new(
        harness,
        Store::open(&dir).expect("store"),
        Arc::new(ManualClock::at_ms(T0_MS)),
    );
    let router = floodgate_harness::api::auth::layer_as(
        api::router(state),
        floodgate_harness::api::auth::Caller {
            name: "mcp".into(),
            scope: floodgate_harness::api::auth::Scope::Operate,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    let client = reqwest::Client::new();
    let answer = client
        .get(format!("{base}/v1/notices"))
        .send()
        .await
        .expect("GET");
    assert_eq!(answer.status().as_u16(), 200);
    let answer = client
        .post(format!("{base}/v1/notices"))
        .body(NOTICE)
        .send()
        .await
        .expect("POST");
    assert_eq!(answer.status().as_u16(), 403);
    let body: Value = answer.json().await.expect("JSON");
    assert_refused(403, &body, 403, "forbidden", "scope");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("needs scope intake; mcp acts with scope operate")),
        "{body}"
    );
    let _ = stop.send(());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_route_missing_from_the_table_is_admin_only() {
    let api = Api::start("auth-default-deny", tokens()).await;
    for token in [READ, OPERATE, INTAKE] {
        let (status, body) = api.get("/v1/not-yet-a-route", Some(token)).await;
        assert_refused(status, &body, 403, "forbidden", "scope");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|message| message.contains("needs scope admin")),
            "{body}"
        );
    }
    // Admin passes the layer and reaches the router's 404.
    let (status, body) = api.get("/v1/not-yet-a-route", Some(ADMIN)).await;
    assert_refused(status, &body, 404, "not_found", "path");
}

#[tokio::test]
async fn without_tokens_the_api_is_open() {
    let api = Api::start("auth-open", Tokens::default()).await;
    let (status, body) = api.get("/v1/tickets", None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api.post("/v1/tickets", None, TICKET).await;
    assert_eq!(status, 201, "{body}");
}
