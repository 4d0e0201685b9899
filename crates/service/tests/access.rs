//! Access control over real HTTP on loopback (and through the in-process
//! transport, which must behave the same): 401 and 403 with the contract
//! error, `access_denied` events, scopes by action risk, and the token's
//! name as the actor.

use floodgate_contract::actions::ActionRequest;
use floodgate_contract::client::{ClientError, EventQuery, ServiceApi};
use floodgate_limiter::config::{self, ConfigSource};
use floodgate_service::auth::{Access, Tokens};
use floodgate_service::clock::ManualClock;
use floodgate_service::engine::EngineOptions;
use floodgate_service::inprocess::InProcessTransport;
use floodgate_service::ServiceParts;
use floodgate_store::MemoryStore;
use serde_json::{json, Value};
use std::sync::Arc;

const CONFIG: &str = r#"
domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: minute, requests_per_unit: 10, name: per_tenant}
"#;

const READ: &str = "read-token-000000000001";
const CHECK: &str = "check-token-00000000002";
const OPERATE: &str = "operate-token-000000003";
const ADMIN: &str = "admin-token-00000000004";

fn parts(tokens: bool) -> ServiceParts<MemoryStore> {
    let access = if tokens {
        Access::with_tokens(
            Tokens::parse_env(
                "test",
                &format!(
                    "read:dashboard:{READ},check:envoy:{CHECK},operate:oncall:{OPERATE},admin:root:{ADMIN}"
                ),
            )
            .expect("tokens"),
        )
    } else {
        Access::open()
    };
    ServiceParts {
        table: config::load(&[ConfigSource::new("test.yaml", CONFIG)]).expect("config"),
        store: MemoryStore::new(1000),
        clock: Arc::new(ManualClock::at_ns(1_767_225_600 * 1_000_000_000)),
        options: EngineOptions::default(),
        access,
        control: Default::default(),
        traffic_capacity: floodgate_service::limits::DEFAULT_TRAFFIC_CAPACITY,
    }
}

struct Server {
    base: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    async fn start(tokens: bool) -> Server {
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", http.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(floodgate_service::run(
            parts(tokens),
            grpc,
            http,
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            base,
            client: reqwest::Client::new(),
            stop: Some(stop),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Option<String>, Value) {
        let post = method == reqwest::Method::POST;
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if post {
            request = request.header("content-type", "application/json");
        }
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("answer");
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let body = response.json().await.unwrap_or(Value::Null);
        (status, challenge, body)
    }

    async fn events(&self, kind: &str) -> Vec<Value> {
        let (status, _, page) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/events?type={kind}&limit=1000"),
                Some(&format!("Bearer {READ}")),
                None,
            )
            .await;
        assert_eq!(status, 200);
        page["events"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn missing_and_unknown_tokens_are_401_with_an_event() {
    use reqwest::Method;
    let server = Server::start(true).await;
    for authorization in [
        None,
        Some("Bearer wrong-token-0000000000".to_string()),
        Some(format!("Basic {READ}")),
        Some("Bearer ".to_string()),
    ] {
        let (status, challenge, body) = server
            .call(Method::GET, "/v1/state", authorization.as_deref(), None)
            .await;
        assert_eq!(status, 401, "{authorization:?}");
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"floodgate\""));
        assert_eq!(body["error"]["kind"], "unauthorized");
        assert_eq!(body["error"]["field"], "authorization");
    }
    // The scheme is case-insensitive.
    let (status, _, _) = server
        .call(
            Method::GET,
            "/v1/state",
            Some(&format!("bearer {READ}")),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let denied = server.events("access_denied").await;
    assert_eq!(denied.len(), 4, "{denied:#?}");
    for event in &denied {
        assert_eq!(event["actor"], "anonymous");
        assert_eq!(
            event["data"],
            json!({"method": "GET", "path": "/v1/state", "status": 401, "needed": "read"})
        );
    }
}

#[tokio::test]
async fn wrong_scope_is_403_naming_the_scope_and_recorded() {
    use reqwest::Method;
    let server = Server::start(true).await;
    let cases = [
        (Method::GET, "/v1/state", CHECK, "read", "envoy"),
        (Method::POST, "/v1/check", READ, "check", "dashboard"),
        (Method::POST, "/v1/check", OPERATE, "check", "oncall"),
        (Method::POST, "/v1/config", OPERATE, "admin", "oncall"),
        (
            Method::POST,
            "/v1/config/rollback",
            OPERATE,
            "admin",
            "oncall",
        ),
        (
            Method::POST,
            "/v1/actions/drain",
            OPERATE,
            "admin",
            "oncall",
        ),
        // Percent-escaped, the router still runs `drain`: still admin only.
        (
            Method::POST,
            "/v1/actions/dr%61in",
            OPERATE,
            "admin",
            "oncall",
        ),
        (
            Method::POST,
            "/v1/actions/set_shadow_mode",
            READ,
            "operate",
            "dashboard",
        ),
    ];
    for (method, path, token, needed, name) in &cases {
        let (status, challenge, body) = server
            .call(method.clone(), path, Some(&bearer(token)), Some(json!({})))
            .await;
        assert_eq!(status, 403, "{method} {path}");
        assert_eq!(body["error"]["kind"], "forbidden");
        assert_eq!(body["error"]["field"], "scope");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("needs scope {needed}")) && message.contains(name),
            "{message}"
        );
        assert_eq!(
            challenge,
            Some(format!(
                "Bearer realm=\"floodgate\", error=\"insufficient_scope\", scope=\"{needed}\""
            ))
        );
    }
    let denied = server.events("access_denied").await;
    assert_eq!(denied.len(), cases.len());
    for (event, (method, path, _, needed, name)) in denied.iter().zip(&cases) {
        assert_eq!(event["actor"], *name);
        assert_eq!(
            event["data"],
            json!({"method": method.as_str(), "path": path, "status": 403, "needed": needed})
        );
    }
}

#[tokio::test]
async fn scopes_grant_what_they_should_and_the_token_name_is_the_actor() {
    use reqwest::Method;
    let server = Server::start(true).await;
    let check =
        json!({"domain": "api", "descriptors": [{"entries": [{"key": "tenant", "value": "a"}]}]});
    for token in [CHECK, ADMIN] {
        let (status, _, _) = server
            .call(
                Method::POST,
                "/v1/check",
                Some(&bearer(token)),
                Some(check.clone()),
            )
            .await;
        assert_eq!(status, 200);
    }
    for token in [READ, OPERATE, ADMIN] {
        for path in ["/v1/state", "/v1/health", "/v1/actions", "/v1/openapi.json"] {
            let (status, _, _) = server
                .call(Method::GET, path, Some(&bearer(token)), None)
                .await;
            assert_eq!(status, 200, "{path}");
        }
    }
    // A low-risk action with operate; the token's name is the actor…
    let shadow = json!({"params": {"domain": "api", "limit": "per_tenant", "shadow": true}});
    let (status, _, _) = server
        .call(
            Method::POST,
            "/v1/actions/set_shadow_mode",
            Some(&bearer(OPERATE)),
            Some(shadow),
        )
        .await;
    assert_eq!(status, 200);
    // …unless the body names one.
    let (status, _, _) = server
        .call(
            Method::POST,
            "/v1/actions/drain",
            Some(&bearer(ADMIN)),
            Some(json!({"actor": "agent-7", "reason": "maintenance"})),
        )
        .await;
    assert_eq!(status, 200);
    let applied = server.events("action_applied").await;
    let actors: Vec<&Value> = applied.iter().map(|event| &event["actor"]).collect();
    assert_eq!(actors, vec!["oncall", "agent-7"]);
    // An unknown action needs any valid token and is a 404.
    let (status, _, body) = server
        .call(
            Method::POST,
            "/v1/actions/no_such_action",
            Some(&bearer(READ)),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    // Unknown routes are closed: a read token cannot even learn they are 404.
    let (status, _, _) = server
        .call(Method::GET, "/v1/nothing", Some(&bearer(READ)), None)
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = server
        .call(Method::GET, "/v1/nothing", Some(&bearer(ADMIN)), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn without_tokens_everything_is_open() {
    use reqwest::Method;
    let server = Server::start(false).await;
    let (status, _, state) = server.call(Method::GET, "/v1/state", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(state["access_control"], false);
    let (status, _, _) = server
        .call(
            Method::POST,
            "/v1/actions/drain",
            Some("Bearer anything-at-all-here"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_in_process_transport_enforces_the_same_scopes() {
    let assembled = floodgate_service::assemble(parts(true));
    let operator = InProcessTransport::new(assembled.router.clone(), Some(OPERATE.to_string()));
    let anonymous = InProcessTransport::new(assembled.router.clone(), None);
    let reader = InProcessTransport::new(assembled.router, Some(READ.to_string()));
    match operator
        .run_action(
            "drain",
            &ActionRequest {
                params: Value::Null,
                dry_run: true,
                reason: String::new(),
                actor: String::new(),
                expect_config_version: None,
            },
        )
        .await
    {
        Err(ClientError::Api { status, error }) => {
            assert_eq!(status, 403);
            assert_eq!(error.error.kind, "forbidden");
        }
        other => panic!("expected 403, got {other:?}"),
    }
    match anonymous.state().await {
        Err(ClientError::Api { status, error }) => {
            assert_eq!(status, 401);
            assert_eq!(error.error.kind, "unauthorized");
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let state = reader.state().await.expect("read may read");
    assert!(state.access_control);
    let page = reader
        .events(&EventQuery {
            types: vec!["access_denied".to_string()],
            ..EventQuery::default()
        })
        .await
        .expect("events");
    assert_eq!(page.events.len(), 2);
    assert_eq!(page.events[0].actor, "oncall");
}

/// Two Authorization headers are refused (401 naming the header), never
/// the first taken; the scheme's case and spaces around the token are
/// accepted (ADR 0004).
#[tokio::test]
async fn two_authorization_headers_are_refused_and_bearer_casing_is_accepted() {
    let server = Server::start(true).await;
    let response = server
        .client
        .get(format!("{}/v1/state", server.base))
        .header("authorization", format!("Bearer {READ}"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["field"], "authorization", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("more than one")),
        "{body}"
    );
    for value in [format!("bearer {READ}"), format!("BEARER   {READ}  ")] {
        let (status, _, body) = server
            .call(reqwest::Method::GET, "/v1/state", Some(&value), None)
            .await;
        assert_eq!(status, 200, "{value}: {body}");
    }
}
