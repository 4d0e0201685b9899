//! OpenAPI conformance over real HTTP on loopback: every endpoint is called
//! (a success and at least one error each), every real answer is validated
//! against the schema the document declares for its path, method and
//! status, and every route the router serves must be in the document.

use floodgate_limiter::config::{self, ConfigSource};
use floodgate_service::auth::{Access, Tokens};
use floodgate_service::clock::ManualClock;
use floodgate_service::engine::EngineOptions;
use floodgate_service::{openapi, ServiceParts};
use floodgate_store::MemoryStore;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const CONFIG: &str = r#"
domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: minute, requests_per_unit: 1, name: per_tenant}
  - key: path
    rate_limit: {unit: second, requests_per_unit: 100, name: per_path}
"#;

const READ: &str = "read-token-000000000001";
const CHECK: &str = "check-token-00000000002";
const OPERATE: &str = "operate-token-000000003";
const ADMIN: &str = "admin-token-00000000004";
/// Not configured.
const UNKNOWN: &str = "unknown-token-000000005";

/// The most bytes read from the event stream while looking for one event.
const MAX_STREAM_BYTES: usize = 64 * 1024;

struct Server {
    base: String,
    client: reqwest::Client,
    document: Value,
    /// (method, path template, status) seen.
    seen: BTreeSet<(String, String, u16)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Server {
    async fn start() -> Server {
        let table = config::load(&[ConfigSource::new("test.yaml", CONFIG)]).expect("config");
        let tokens = Tokens::parse_env(
            "test",
            &format!("read:reader:{READ},check:envoy:{CHECK},operate:operator:{OPERATE},admin:root:{ADMIN}"),
        )
        .expect("tokens");
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", http.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let parts = ServiceParts {
            table,
            store: MemoryStore::new(1000),
            clock: Arc::new(ManualClock::at_ns(1_767_225_600 * 1_000_000_000)),
            options: EngineOptions::default(),
            access: Access::with_tokens(tokens),
            control: Default::default(),
            traffic_capacity: floodgate_service::limits::DEFAULT_TRAFFIC_CAPACITY,
        };
        tokio::spawn(floodgate_service::run(parts, grpc, http, async move {
            let _ = stopped.await;
        }));
        Server {
            base,
            client: reqwest::Client::new(),
            document: openapi::document(),
            seen: BTreeSet::new(),
            stop: Some(stop),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        request.send().await.expect("HTTP answer")
    }

    /// Calls `method path` and validates the answer against the document's
    /// entry for `template` (the path as the document spells it).
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let response = self
            .send(
                method,
                path,
                token,
                body.map(|body| body.to_string().into_bytes()),
            )
            .await;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.bytes().await.expect("body").to_vec();
        let answer = Answer {
            status,
            content_type,
            body,
        };
        self.conforms(method, template, &answer);
        answer
    }

    fn conforms(&mut self, method: &str, template: &str, answer: &Answer) {
        let what = format!("{method} {template} → {}", answer.status);
        let operation = &self.document["paths"][template][method.to_ascii_lowercase()];
        assert!(
            operation.is_object(),
            "{what}: the operation is not documented"
        );
        let response = &operation["responses"][answer.status.to_string()];
        assert!(
            response.is_object(),
            "{what}: the status is not documented; body {}",
            String::from_utf8_lossy(&answer.body)
        );
        let content = response["content"].as_object().expect("content");
        let mime = answer
            .content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        let media = content
            .get(mime)
            .unwrap_or_else(|| panic!("{what}: content type {mime} not documented ({content:?})"));
        if mime == "application/json" {
            let body: Value = serde_json::from_slice(&answer.body)
                .unwrap_or_else(|error| panic!("{what}: not JSON: {error}"));
            self.validate(&what, &media["schema"], &body);
        }
        self.seen
            .insert((method.to_string(), template.to_string(), answer.status));
    }

    fn validate(&self, what: &str, schema: &Value, instance: &Value) {
        let errors = schema_errors(&self.document, schema, instance);
        assert!(
            errors.is_empty(),
            "{what}: the answer does not match its schema:\n  {}\nbody: {instance:#}",
            errors.join("\n  ")
        );
    }

    fn json(answer: &Answer) -> Value {
        serde_json::from_slice(&answer.body).expect("JSON body")
    }
}

/// What is wrong with `instance` under `schema`, whose `$ref`s point into
/// the document's components.
fn schema_errors(document: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let mut root = schema.as_object().cloned().unwrap_or_default();
    root.insert("components".to_string(), document["components"].clone());
    let root = Value::Object(root);
    let validator = jsonschema::draft202012::new(&root)
        .unwrap_or_else(|error| panic!("the schema does not compile: {error}"));
    validator
        .iter_errors(instance)
        .map(|error| format!("{} at {}", error, error.instance_path))
        .collect()
}

#[test]
fn the_validator_rejects_answers_that_break_the_schema() {
    let document = openapi::document();
    let state = json!({"$ref": "#/components/schemas/State"});
    assert!(!schema_errors(&document, &state, &json!({"version": 5})).is_empty());
    let check = json!({"$ref": "#/components/schemas/CheckResponse"});
    let answer = json!({"overall_code": "OK", "statuses": [{"code": "MAYBE", "limit_remaining": 1}], "response_headers_to_add": []});
    let errors = schema_errors(&document, &check, &answer);
    assert!(
        errors
            .iter()
            .any(|error| error.contains("/statuses/0/code")),
        "{errors:?}"
    );
    let good = json!({"overall_code": "OK", "statuses": [{"code": "OK", "limit_remaining": 1}], "response_headers_to_add": []});
    assert_eq!(
        schema_errors(&document, &check, &good),
        Vec::<String>::new()
    );
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn tenant(value: &str) -> Value {
    json!({"domain": "api", "descriptors": [{"entries": [{"key": "tenant", "value": value}]}]})
}

#[tokio::test]
async fn every_endpoint_answers_as_the_document_says() {
    let mut server = Server::start().await;

    // ---- /v1/openapi.json: served, equal to the built document ----------
    let answer = server
        .call(
            "GET",
            "/v1/openapi.json",
            "/v1/openapi.json",
            Some(READ),
            None,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(Server::json(&answer), server.document);
    let answer = server
        .call("GET", "/v1/openapi.json", "/v1/openapi.json", None, None)
        .await;
    assert_eq!(answer.status, 401);

    // ---- /v1/check --------------------------------------------------------
    let answer = server
        .call(
            "POST",
            "/v1/check",
            "/v1/check",
            Some(CHECK),
            Some(tenant("acme")),
        )
        .await;
    assert_eq!(answer.status, 200);
    let answer = server
        .call(
            "POST",
            "/v1/check",
            "/v1/check",
            Some(ADMIN),
            Some(tenant("acme")),
        )
        .await;
    assert_eq!(
        answer.status, 429,
        "admin includes check; second hit is over"
    );
    let answer = server
        .call(
            "POST",
            "/v1/check",
            "/v1/check",
            Some(CHECK),
            Some(json!({"domain": 5})),
        )
        .await;
    assert_eq!(answer.status, 400);
    let big = json!({"domain": "x".repeat(floodgate_service::limits::MAX_MESSAGE_BYTES)});
    let answer = server
        .call("POST", "/v1/check", "/v1/check", Some(CHECK), Some(big))
        .await;
    assert_eq!(answer.status, 413);
    let answer = server
        .call(
            "POST",
            "/v1/check",
            "/v1/check",
            Some(READ),
            Some(tenant("acme")),
        )
        .await;
    assert_eq!(answer.status, 403, "read does not include check");
    let answer = server
        .call("POST", "/v1/check", "/v1/check", None, Some(tenant("acme")))
        .await;
    assert_eq!(answer.status, 401);

    // ---- /metrics -----------------------------------------------------------
    let answer = server
        .call("GET", "/metrics", "/metrics", Some(READ), None)
        .await;
    assert_eq!(answer.status, 200);
    assert!(String::from_utf8_lossy(&answer.body).contains("floodgate_"));
    let answer = server
        .call("GET", "/metrics", "/metrics", Some(CHECK), None)
        .await;
    assert_eq!(answer.status, 403);

    // ---- /v1/state, /v1/actions, /v1/config ----------------------------------
    for path in ["/v1/state", "/v1/actions", "/v1/config"] {
        let answer = server.call("GET", path, path, Some(OPERATE), None).await;
        assert_eq!(answer.status, 200, "{path}");
        let answer = server.call("GET", path, path, Some(UNKNOWN), None).await;
        assert_eq!(answer.status, 401, "{path}");
        let answer = server.call("GET", path, path, Some(CHECK), None).await;
        assert_eq!(answer.status, 403, "{path}");
    }

    // ---- /v1/config/versions ----------------------------------------------------
    let template = "/v1/config/versions";
    let answer = server
        .call(
            "GET",
            template,
            "/v1/config/versions?limit=5",
            Some(READ),
            None,
        )
        .await;
    assert_eq!(answer.status, 200);
    let answer = server
        .call(
            "GET",
            template,
            "/v1/config/versions?before=abc",
            Some(READ),
            None,
        )
        .await;
    assert_eq!(answer.status, 400);

    // ---- /v1/traffic ---------------------------------------------------------------
    let template = "/v1/traffic";
    let answer = server
        .call("GET", template, "/v1/traffic?limit=5", Some(READ), None)
        .await;
    assert_eq!(answer.status, 200);
    let answer = server
        .call("GET", template, "/v1/traffic?limit=0", Some(READ), None)
        .await;
    assert_eq!(answer.status, 400);
    let answer = server
        .call("GET", template, "/v1/traffic", Some(CHECK), None)
        .await;
    assert_eq!(answer.status, 403);

    // ---- POST /v1/config ------------------------------------------------------------
    let yaml = CONFIG.replace("requests_per_unit: 100", "requests_per_unit: 200");
    let answer = server
        .call(
            "POST",
            "/v1/config",
            "/v1/config",
            Some(ADMIN),
            Some(json!({"yaml": yaml, "dry_run": true, "reason": "conformance"})),
        )
        .await;
    assert_eq!(answer.status, 200);
    let answer = server
        .call(
            "POST",
            "/v1/config",
            "/v1/config",
            Some(ADMIN),
            Some(json!({"yaml": "domain: [", "dry_run": true})),
        )
        .await;
    assert_eq!(answer.status, 400);
    let answer = server
        .call(
            "POST",
            "/v1/config",
            "/v1/config",
            Some(OPERATE),
            Some(json!({"yaml": yaml, "dry_run": true})),
        )
        .await;
    assert_eq!(answer.status, 403, "config apply needs admin");

    // ---- POST /v1/config/rollback ------------------------------------------------------
    let template = "/v1/config/rollback";
    let answer = server
        .call(
            "POST",
            template,
            template,
            Some(ADMIN),
            Some(json!({"to_version": 1, "dry_run": true})),
        )
        .await;
    assert_eq!(answer.status, 200);
    let answer = server
        .call(
            "POST",
            template,
            template,
            Some(ADMIN),
            Some(json!({"to_version": 999, "dry_run": true})),
        )
        .await;
    assert!(answer.status >= 400, "no version 999: {}", answer.status);
    let answer = server
        .call(
            "POST",
            template,
            template,
            Some(OPERATE),
            Some(json!({"to_version": 1})),
        )
        .await;
    assert_eq!(answer.status, 403);

    // ---- POST /v1/actions/{name} -----------------------------------------------------------
    let template = "/v1/actions/{name}";
    let answer = server
        .call(
            "POST",
            template,
            "/v1/actions/set_shadow_mode",
            Some(OPERATE),
            Some(json!({"params": {"domain": "api", "limit": "per_tenant", "shadow": true}, "dry_run": true})),
        )
        .await;
    assert_eq!(answer.status, 200);
    let answer = server
        .call(
            "POST",
            template,
            "/v1/actions/set_shadow_mode",
            Some(OPERATE),
            Some(json!({"params": {"domain": "api", "limit": "per_tenant", "shadow": "yes"}})),
        )
        .await;
    assert_eq!(answer.status, 400);
    let answer = server
        .call(
            "POST",
            template,
            "/v1/actions/no_such_action",
            Some(OPERATE),
            Some(json!({})),
        )
        .await;
    assert_eq!(answer.status, 404);
    let answer = server
        .call(
            "POST",
            template,
            "/v1/actions/drain",
            Some(OPERATE),
            Some(json!({})),
        )
        .await;
    assert_eq!(answer.status, 403, "drain is high-risk: admin only");

    // ---- /v1/health, and 503 while draining ----------------------------------------------------
    let answer = server
        .call("GET", "/v1/health", "/v1/health", Some(READ), None)
        .await;
    assert_eq!(answer.status, 200);
    let answer = server
        .call(
            "POST",
            template,
            "/v1/actions/drain",
            Some(ADMIN),
            Some(json!({"reason": "conformance"})),
        )
        .await;
    assert_eq!(answer.status, 200);
    let answer = server
        .call("GET", "/v1/health", "/v1/health", Some(READ), None)
        .await;
    assert_eq!(answer.status, 503);
    let answer = server
        .call(
            "POST",
            template,
            "/v1/actions/undrain",
            Some(OPERATE),
            Some(json!({})),
        )
        .await;
    assert_eq!(answer.status, 200);
    let answer = server
        .call("GET", "/v1/health", "/v1/health", None, None)
        .await;
    assert_eq!(answer.status, 401);

    // ---- /v1/events ------------------------------------------------------------------------
    let answer = server
        .call(
            "GET",
            "/v1/events",
            "/v1/events?after=0&limit=100",
            Some(READ),
            None,
        )
        .await;
    assert_eq!(answer.status, 200);
    let page = Server::json(&answer);
    assert!(
        page["events"]
            .as_array()
            .is_some_and(|events| events.iter().any(|event| event["type"] == "access_denied")),
        "refusals are events: {page:#}"
    );
    let answer = server
        .call(
            "GET",
            "/v1/events",
            "/v1/events?after=abc",
            Some(READ),
            None,
        )
        .await;
    assert_eq!(answer.status, 400);

    // ---- /v1/events/stream: the first event validates as an Event ----------------------------
    let template = "/v1/events/stream";
    let response = server
        .send("GET", "/v1/events/stream?after=0", Some(READ), None)
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let data = first_sse_data(response).await;
    let event: Value = serde_json::from_str(&data).expect("SSE data is JSON");
    let event_schema = json!({"$ref": "#/components/schemas/Event"});
    server.validate("SSE event", &event_schema, &event);
    server
        .seen
        .insert(("GET".to_string(), template.to_string(), 200));
    let answer = server
        .call(
            "GET",
            template,
            "/v1/events/stream?after=abc",
            Some(READ),
            None,
        )
        .await;
    assert_eq!(answer.status, 400);

    // ---- every documented operation was exercised: a success and an error ------------------
    for (method, path) in openapi::operations_list() {
        let statuses: Vec<u16> = server
            .seen
            .iter()
            .filter(|(m, p, _)| m == method.as_str() && p == path)
            .map(|(_, _, status)| *status)
            .collect();
        assert!(
            statuses.iter().any(|status| *status < 300),
            "{method} {path}: no success exercised ({statuses:?})"
        );
        assert!(
            statuses.iter().any(|status| *status >= 400),
            "{method} {path}: no error exercised ({statuses:?})"
        );
    }
}

/// Reads the stream until the first complete `data:` line.
async fn first_sse_data(mut response: reqwest::Response) -> String {
    let mut text = String::new();
    while text.len() < MAX_STREAM_BYTES {
        let chunk = response
            .chunk()
            .await
            .expect("stream chunk")
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(line) = text
            .split('\n')
            .rev()
            .skip(1)
            .find_map(|line| line.strip_prefix("data:"))
        {
            return line.trim().to_string();
        }
    }
    panic!("no event within {MAX_STREAM_BYTES} bytes: {text}");
}

// ---- every served route is documented ------------------------------------------

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The path of every `.route("…", …)` in the service's source. Routers are
/// built only with `.route` (a `.nest` would hide a prefix from this scan,
/// so it is refused here).
fn routed_paths() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut paths = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        assert!(
            !text.contains(".nest(") && !text.contains(".route_service("),
            "{}: routes must be registered with .route(\"PATH\", …) so the OpenAPI test sees them",
            file.display()
        );
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = rest[at + ".route(".len()..].trim_start();
            if let Some(literal) = rest.strip_prefix('"') {
                if let Some(end) = literal.find('"') {
                    paths.insert(literal[..end].to_string());
                }
            }
        }
    }
    paths
}

/// A concrete path for a template (`{name}` → a real action).
fn concrete(template: &str) -> String {
    template.replace("{name}", "undrain")
}

#[tokio::test]
async fn every_served_route_and_method_is_documented() {
    let server = Server::start().await;
    let paths = routed_paths();
    assert!(paths.contains("/v1/check"), "{paths:?}");
    let documented: BTreeSet<(String, String)> = openapi::operations_list()
        .into_iter()
        .map(|(method, path)| (method.as_str().to_string(), path.to_string()))
        .collect();
    let mut served = BTreeSet::new();
    for path in &paths {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            // An unknown field: every body is refused before anything runs.
            let body = (method != "GET").then(|| br#"{"__probe__": true}"#.to_vec());
            let response = server
                .send(method, &concrete(path), Some(ADMIN), body)
                .await;
            if response.status().as_u16() != 405 {
                served.insert((method.to_string(), path.clone()));
            }
        }
    }
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in the OpenAPI document: {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "in the OpenAPI document but not served: {unserved:?}"
    );
}

#[test]
fn the_committed_document_matches_the_code() {
    let doc = openapi::generated_doc();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(&doc.path);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}; run `floodgate catalog --write`", doc.path));
    assert!(
        committed == doc.content,
        "{} is out of date; run `floodgate catalog --write`",
        doc.path
    );
}
