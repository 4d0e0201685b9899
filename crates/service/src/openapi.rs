//! The OpenAPI 3.1 document of the whole HTTP API, built in code and served
//! at `GET /v1/openapi.json` (and written to `docs/catalog/openapi.json` by
//! `floodgate catalog --write`).
//!
//! Component schemas come from the contract types through schemars, so the
//! document cannot describe a shape the contract does not have; the scope
//! each operation needs comes from [`auth::needed`], so the document cannot
//! disagree with the access layer. `crates/service/tests/openapi.rs` checks
//! real responses against it and fails when a served route is missing.

use crate::auth::{self, Needed, Scope};
use axum::http::Method;
use floodgate_contract::actions::{ActionInfo, ActionRequest, ActionResult, Risk};
use floodgate_contract::events::EventPage;
use floodgate_contract::state::{
    ConfigApplyRequest, ConfigVersionPage, ConfigView, ErrorBody, Health, State, TrafficPage,
};
use floodgate_contract::GeneratedDoc;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// Where `floodgate catalog --write` puts the document.
pub const DOC_PATH: &str = "docs/catalog/openapi.json";

/// The JSON pointer (without `#`) under which component schemas live.
const SCHEMAS: &str = "/components/schemas";

/// The document, as `docs/catalog/openapi.json` holds it.
pub fn generated_doc() -> GeneratedDoc {
    let mut content = serde_json::to_string_pretty(&document()).unwrap_or_default();
    content.push('\n');
    GeneratedDoc {
        path: DOC_PATH.to_string(),
        content,
    }
}

/// `GET /v1/openapi.json`: the document, built once per process.
pub async fn serve() -> axum::response::Response {
    use axum::response::IntoResponse;
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(|| document().to_string()).clone();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// What an operation's response carries.
enum Content {
    Json(Value),
    Text(&'static str),
}

struct Response {
    status: u16,
    description: &'static str,
    content: Content,
}

struct Operation {
    method: Method,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: &'static str,
    parameters: Vec<Value>,
    request: Option<Value>,
    responses: Vec<Response>,
}

struct Builder {
    /// Response bodies are described as the service serialises them.
    responses: SchemaGenerator,
    /// Request bodies as the service deserialises them.
    requests: SchemaGenerator,
}

fn settings() -> SchemaSettings {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = SCHEMAS.into();
    settings
}

impl Builder {
    fn new() -> Builder {
        Builder {
            responses: settings().for_serialize().into_generator(),
            requests: settings().for_deserialize().into_generator(),
        }
    }

    fn output<T: JsonSchema>(&mut self) -> Value {
        self.responses.subschema_for::<T>().to_value()
    }

    fn input<T: JsonSchema>(&mut self) -> Value {
        self.requests.subschema_for::<T>().to_value()
    }

    /// The component schemas of both directions. A type used in both whose
    /// serialised and deserialised shapes differ gets its request shape
    /// under `NameInput` (none today; `schemas_of_both_directions_agree`
    /// tests that).
    fn components(mut self) -> Map<String, Value> {
        let mut schemas = self.responses.take_definitions(true);
        for (name, schema) in self.requests.take_definitions(true) {
            match schemas.get(&name) {
                Some(existing) if *existing != schema => {
                    schemas.insert(format!("{name}Input"), schema);
                }
                _ => {
                    schemas.insert(name, schema);
                }
            }
        }
        schemas.extend(check_schemas());
        schemas
    }
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#{SCHEMAS}/{name}") })
}

fn error_response(status: u16, description: &'static str) -> Response {
    Response {
        status,
        description,
        content: Content::Json(schema_ref("ErrorBody")),
    }
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn uint() -> Value {
    json!({"type": "integer", "minimum": 0})
}

/// The `/v1/check` bodies. They are the Envoy request and response in
/// proto3 JSON, not contract types, so their schemas are written here; the
/// conformance test holds real answers to them.
fn check_schemas() -> Map<String, Value> {
    let schemas = json!({
        "CheckRequest": {
            "type": "object",
            "description": "Envoy's RateLimitRequest as JSON (field names in snake_case; the camelCase proto3 JSON names are accepted too).",
            "required": ["domain"],
            "properties": {
                "domain": {"type": "string"},
                "descriptors": {"type": "array", "items": schema_ref("CheckDescriptor")},
                "hits_addend": {"type": "integer", "minimum": 0, "description": "Cost of each descriptor without its own (default 1; 0 checks without consuming)."}
            }
        },
        "CheckDescriptor": {
            "type": "object",
            "properties": {
                "entries": {"type": "array", "items": schema_ref("CheckEntry")},
                "limit": {
                    "type": "object",
                    "description": "A request-supplied limit: a fixed window on this descriptor.",
                    "required": ["requests_per_unit", "unit"],
                    "properties": {
                        "requests_per_unit": {"type": "integer", "minimum": 0},
                        "unit": {"enum": ["second", "minute", "hour", "day", "week", "month", "year"]}
                    }
                },
                "hits_addend": {"type": "integer", "minimum": 0},
                "is_negative_hits": {"type": "boolean", "description": "Refund instead of consume."},
                "release_lease": {"type": "integer", "minimum": 0, "description": "Release this concurrency lease (from an earlier answer's lease_id)."}
            }
        },
        "CheckEntry": {
            "type": "object",
            "required": ["key"],
            "properties": {"key": {"type": "string"}, "value": {"type": "string"}}
        },
        "CheckResponse": {
            "type": "object",
            "description": "Envoy's RateLimitResponse as JSON. The rate-limit headers are also set on the HTTP response.",
            "required": ["overall_code", "statuses", "response_headers_to_add"],
            "additionalProperties": false,
            "properties": {
                "overall_code": schema_ref("CheckCode"),
                "statuses": {"type": "array", "items": schema_ref("CheckStatus")},
                "response_headers_to_add": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["key", "value"],
                        "additionalProperties": false,
                        "properties": {"key": {"type": "string"}, "value": {"type": "string"}}
                    }
                }
            }
        },
        "CheckCode": {"enum": ["OK", "OVER_LIMIT", "UNKNOWN"]},
        "CheckStatus": {
            "type": "object",
            "required": ["code", "limit_remaining"],
            "additionalProperties": false,
            "properties": {
                "code": schema_ref("CheckCode"),
                "current_limit": {
                    "type": "object",
                    "required": ["name", "requests_per_unit", "unit"],
                    "additionalProperties": false,
                    "properties": {
                        "name": {"type": "string"},
                        "requests_per_unit": {"type": "integer", "minimum": 0},
                        "unit": {"enum": ["SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "YEAR", "UNKNOWN"]}
                    }
                },
                "limit_remaining": {"type": "integer", "minimum": 0},
                "duration_until_reset": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]{1,9})?s$", "description": "proto3 JSON Duration: seconds with an `s` suffix."},
                "lease_id": {"type": "integer", "minimum": 0, "description": "For concurrency limits: the lease taken, to release later."}
            }
        },
        "RollbackRequest": {
            "type": "object",
            "description": "POST /v1/config/rollback.",
            "required": ["to_version"],
            "properties": {
                "to_version": {"type": "integer", "minimum": 1, "description": "The version to make current again (its content becomes a new version)."},
                "dry_run": {"type": "boolean", "default": false},
                "reason": {"type": "string", "default": ""},
                "actor": {"type": "string", "default": ""}
            }
        }
    });
    match schemas {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn operations(builder: &mut Builder) -> Vec<Operation> {
    vec![
        Operation {
            method: Method::POST,
            path: "/v1/check",
            id: "check",
            tag: "data plane",
            summary: "Decide a rate-limit request (Envoy's ShouldRateLimit as JSON)",
            description: "All or nothing: admitted only if every non-shadow limit admits it; a rejected request consumes from none of its limits. Answers 429 over the limit, with `Retry-After`, `RateLimit-Policy` and `RateLimit` headers.",
            parameters: vec![],
            request: Some(schema_ref("CheckRequest")),
            responses: vec![
                Response { status: 200, description: "Admitted (overall_code OK).", content: Content::Json(schema_ref("CheckResponse")) },
                Response { status: 429, description: "Over the limit (overall_code OVER_LIMIT).", content: Content::Json(schema_ref("CheckResponse")) },
                error_response(400, "Invalid request: the error names the field."),
                error_response(413, "Body larger than the service's bound."),
                error_response(503, "The counter store failed."),
                error_response(500, "An internal error."),
                error_response(504, "The decision took longer than the service's time limit."),
            ],
        },
        Operation {
            method: Method::GET,
            path: "/metrics",
            id: "metrics",
            tag: "observe",
            summary: "Prometheus metrics (every one in docs/catalog/metrics.md)",
            description: "Prometheus text exposition format 0.0.4.",
            parameters: vec![],
            request: None,
            responses: vec![Response { status: 200, description: "The metrics.", content: Content::Text("text/plain") }],
        },
        Operation {
            method: Method::GET,
            path: "/v1/health",
            id: "health",
            tag: "observe",
            summary: "SLI-level facts over recent windows and named checks",
            description: "Status `ok`, `degraded` (a check fails) or `draining`.",
            parameters: vec![],
            request: None,
            responses: vec![
                Response { status: 200, description: "Serving.", content: Content::Json(builder.output::<Health>()) },
                Response { status: 503, description: "Draining: load balancers should stop sending; the same document.", content: Content::Json(builder.output::<Health>()) },
            ],
        },
        Operation {
            method: Method::GET,
            path: "/v1/state",
            id: "state",
            tag: "observe",
            summary: "Everything the service knows, in one document",
            description: "Build, uptime, config version, store and its health, per-limit usage with the hottest keys, drain status, events ring.",
            parameters: vec![],
            request: None,
            responses: vec![Response { status: 200, description: "The state.", content: Content::Json(builder.output::<State>()) }],
        },
        Operation {
            method: Method::GET,
            path: "/v1/config",
            id: "config",
            tag: "config",
            summary: "The current config with its version and content hash",
            description: "The YAML is the form `POST /v1/config` and `apply_config` take.",
            parameters: vec![],
            request: None,
            responses: vec![Response { status: 200, description: "The current config.", content: Content::Json(builder.output::<ConfigView>()) }],
        },
        Operation {
            method: Method::GET,
            path: "/v1/config/versions",
            id: "config_versions",
            tag: "config",
            summary: "The config history, newest first, paged",
            description: "Bounded: the oldest versions are dropped past `capacity`.",
            parameters: vec![
                query("before", "Only versions older than this (the previous page's `next_before`).", uint()),
                query("limit", "At most this many (the service caps it).", uint()),
            ],
            request: None,
            responses: vec![
                Response { status: 200, description: "A page of versions.", content: Content::Json(builder.output::<ConfigVersionPage>()) },
                error_response(400, "A bad query parameter, named."),
            ],
        },
        Operation {
            method: Method::GET,
            path: "/v1/traffic",
            id: "traffic",
            tag: "observe",
            summary: "The recorded window of recent check requests, and the most recent ones",
            description: "The service keeps a bounded ring of the most recent check requests, gRPC and HTTP (`serve --traffic-capacity`, default 100000; 0 records nothing); dry runs of config-changing actions replay it (`ActionResult.replay`). Requests come newest first; page to older ones with `before`. The recorder never waits: requests whose slot was busy are counted in `dropped`.",
            parameters: vec![
                query("limit", "At most this many requests (default 100, at most 1000).", uint()),
                query("domain", "Only requests of this domain.", json!({"type": "string", "minLength": 1})),
                query("before", "Only requests recorded before this sequence number (the previous page's `next_before`).", uint()),
            ],
            request: None,
            responses: vec![
                Response { status: 200, description: "The window and a page of requests.", content: Content::Json(builder.output::<TrafficPage>()) },
                error_response(400, "A bad query parameter, named."),
            ],
        },
        Operation {
            method: Method::POST,
            path: "/v1/config",
            id: "apply_config",
            tag: "config",
            summary: "Apply a whole config or patch one limit (dry_run previews)",
            description: "Validated first, applied atomically; counters of unchanged limits survive. A dry run returns the validation result and a readable diff and changes nothing. Runs the `apply_config` (whole) or `set_limit` (patch) action.",
            parameters: vec![],
            request: Some(builder.input::<ConfigApplyRequest>()),
            responses: vec![
                Response { status: 200, description: "Applied (or previewed).", content: Content::Json(builder.output::<ActionResult>()) },
                error_response(400, "Invalid body or config: the error names the field."),
                error_response(404, "The patched limit does not exist."),
                error_response(409, "A precondition failed."),
                error_response(413, "Body larger than the control plane's bound."),
                error_response(500, "The action failed while being applied; nothing was changed."),
                error_response(503, "`overloaded`: MAX_PENDING_ACTIONS actions already running or waiting (with Retry-After), or `timeout`: it did not get its turn within ACTION_TIMEOUT; it never ran."),
                error_response(504, "`timeout`: its planning ended past ACTION_TIMEOUT; nothing was changed."),
            ],
        },
        Operation {
            method: Method::POST,
            path: "/v1/config/rollback",
            id: "rollback_config",
            tag: "config",
            summary: "Make an earlier config version current again",
            description: "Its content becomes a new version. Runs the `rollback_config` action.",
            parameters: vec![],
            request: Some(schema_ref("RollbackRequest")),
            responses: vec![
                Response { status: 200, description: "Rolled back (or previewed).", content: Content::Json(builder.output::<ActionResult>()) },
                error_response(400, "Invalid body: the error names the field."),
                error_response(404, "The version is not in the history."),
                error_response(409, "A precondition failed."),
                error_response(413, "Body larger than the control plane's bound."),
                error_response(500, "The action failed while being applied; nothing was changed."),
                error_response(503, "`overloaded`: MAX_PENDING_ACTIONS actions already running or waiting (with Retry-After), or `timeout`: it did not get its turn within ACTION_TIMEOUT; it never ran."),
                error_response(504, "`timeout`: its planning ended past ACTION_TIMEOUT; nothing was changed."),
            ],
        },
        Operation {
            method: Method::GET,
            path: "/v1/actions",
            id: "actions",
            tag: "actions",
            summary: "The action catalog",
            description: "Each action's parameters (JSON Schema), effects, risk, inverse and preconditions.",
            parameters: vec![],
            request: None,
            responses: vec![Response { status: 200, description: "Every action.", content: Content::Json(builder.output::<Vec<ActionInfo>>()) }],
        },
        Operation {
            method: Method::POST,
            path: "/v1/actions/{name}",
            id: "run_action",
            tag: "actions",
            summary: "Run an action (dry_run previews)",
            description: "Needs scope `operate` for low- and medium-risk actions and `admin` for high-risk ones (see each action's `risk`). The result of a real run includes the inverse call that undoes it.",
            parameters: vec![json!({"name": "name", "in": "path", "required": true, "description": "The action's name (GET /v1/actions).", "schema": {"type": "string"}})],
            request: Some(builder.input::<ActionRequest>()),
            responses: vec![
                Response { status: 200, description: "Applied (or previewed).", content: Content::Json(builder.output::<ActionResult>()) },
                error_response(400, "Bad parameters: the error names the field (`params.…`)."),
                error_response(404, "No such action, or the limit or version it names does not exist."),
                error_response(409, "A precondition failed."),
                error_response(413, "Body larger than the control plane's bound."),
                error_response(500, "The action failed while being applied; nothing was changed."),
                error_response(503, "`overloaded`: MAX_PENDING_ACTIONS actions already running or waiting (with Retry-After), or `timeout`: it did not get its turn within ACTION_TIMEOUT; it never ran."),
                error_response(504, "`timeout`: its planning ended past ACTION_TIMEOUT; nothing was changed."),
            ],
        },
        Operation {
            method: Method::GET,
            path: "/v1/events",
            id: "events",
            tag: "events",
            summary: "Events after a sequence number, cursor-paged",
            description: "Kept in a bounded ring; `oldest_seq` says what is still held. With `wait_ms`, waits for a first event (long poll).",
            parameters: vec![
                query("after", "Only events with a larger sequence number (the previous page's `next_after`).", uint()),
                query("type", "Only these types, comma-separated (docs/catalog/events.md).", json!({"type": "string"})),
                query("limit", "At most this many (the service caps it).", uint()),
                query("wait_ms", "Wait up to this many milliseconds for a first event (the service caps it).", uint()),
            ],
            request: None,
            responses: vec![
                Response { status: 200, description: "A page of events.", content: Content::Json(builder.output::<EventPage>()) },
                error_response(400, "A bad query parameter, named."),
            ],
        },
        Operation {
            method: Method::GET,
            path: "/v1/events/stream",
            id: "events_stream",
            tag: "events",
            summary: "Follow events as server-sent events",
            description: "Each SSE `data:` line is one event (the schema of `Event`), its `id:` the sequence number.",
            parameters: vec![
                query("after", "Start after this sequence number.", uint()),
                query("type", "Only these types, comma-separated.", json!({"type": "string"})),
            ],
            request: None,
            responses: vec![
                Response { status: 200, description: "The stream.", content: Content::Text("text/event-stream") },
                error_response(400, "A bad query parameter, named."),
            ],
        },
        Operation {
            method: Method::GET,
            path: "/v1/openapi.json",
            id: "openapi",
            tag: "observe",
            summary: "This document",
            description: "OpenAPI 3.1; also committed as docs/catalog/openapi.json.",
            parameters: vec![],
            request: None,
            responses: vec![Response { status: 200, description: "The document.", content: Content::Json(json!({"type": "object", "required": ["openapi", "paths", "components"]})) }],
        },
    ]
}

/// The scopes of the `bearer` requirement an operation lists.
fn scopes(operation: &Operation) -> Vec<&'static str> {
    if operation.path == "/v1/actions/{name}" {
        return vec![Scope::Operate.as_str(), Scope::Admin.as_str()];
    }
    match auth::needed(&operation.method, operation.path) {
        Needed::Scope(scope) => vec![scope.as_str()],
        Needed::AnyToken => vec![],
    }
}

fn render(operation: &Operation) -> Value {
    let mut responses = Map::new();
    for response in &operation.responses {
        let content = match &response.content {
            Content::Json(schema) => json!({"application/json": {"schema": schema}}),
            Content::Text(mime) => json!({ *mime: {"schema": {"type": "string"}} }),
        };
        responses.insert(
            response.status.to_string(),
            json!({"description": response.description, "content": content}),
        );
    }
    let scopes = scopes(operation);
    for (status, description) in [
        (
            401,
            "No bearer token, or an unknown one (only when the service has tokens).",
        ),
        (
            403,
            "The token's scope does not grant this operation; the message names the scope needed.",
        ),
    ] {
        responses.insert(
            status.to_string(),
            json!({"description": description, "content": {"application/json": {"schema": schema_ref("ErrorBody")}}}),
        );
    }
    let mut rendered = json!({
        "operationId": operation.id,
        "tags": [operation.tag],
        "summary": operation.summary,
        "description": format!(
            "{} Scope: {}.",
            operation.description,
            scopes.join(" or ")
        ),
        // Alternatives: any one of the listed scopes (for an action, the
        // one its risk needs).
        "security": scopes.iter().map(|scope| json!({"bearer": [scope]})).collect::<Vec<_>>(),
        "x-floodgate-scope": scopes,
        "responses": responses,
    });
    if operation.path == "/v1/actions/{name}" {
        rendered["x-floodgate-scope-by-risk"] = json!({
            "low": Scope::for_risk(Risk::Low).as_str(),
            "medium": Scope::for_risk(Risk::Medium).as_str(),
            "high": Scope::for_risk(Risk::High).as_str(),
        });
    }
    if !operation.parameters.is_empty() {
        rendered["parameters"] = Value::Array(operation.parameters.clone());
    }
    if let Some(schema) = &operation.request {
        rendered["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": schema}},
        });
    }
    rendered
}

/// The whole document.
pub fn document() -> Value {
    let mut builder = Builder::new();
    let operations = operations(&mut builder);
    let mut paths = Map::new();
    for operation in &operations {
        let item = paths
            .entry(operation.path.to_string())
            .or_insert_with(|| json!({}));
        item[operation.method.as_str().to_ascii_lowercase()] = render(operation);
    }
    // ErrorBody is referenced by name; make sure it is generated.
    let _ = builder.output::<ErrorBody>();
    let schemas = builder.components();
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Floodgate HTTP API",
            "version": crate::VERSION,
            "summary": "Rate-limit decisions, state, config, actions and events of one Floodgate service.",
            "description": "The contract of docs/adr/0005-contract-over-http-json.md. Errors are `{\"error\": {\"kind\", \"field\", \"message\"}}`. When the service has tokens, every call needs `Authorization: Bearer TOKEN` with the scope named per operation (docs/adr/0004-access-control.md); without tokens it binds loopback only and nothing is checked. Envoy's gRPC data plane is a separate, unauthenticated listener and not described here.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "http://127.0.0.1:8080", "description": "the default --http-addr"}],
        "tags": [
            {"name": "data plane", "description": "Rate-limit decisions (scope check)."},
            {"name": "observe", "description": "State, health, metrics (scope read)."},
            {"name": "config", "description": "The config and its history; changes need admin."},
            {"name": "actions", "description": "The enumerated actions; operate or admin by risk."},
            {"name": "events", "description": "Structured events (scope read)."},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from --tokens-file or FLOODGATE_TOKENS. Scopes: read (state, events, metrics, health, config, actions list), check (POST /v1/check), operate (read + low- and medium-risk actions), admin (everything). admin ⊇ operate ⊇ read; admin includes check.",
                }
            },
        },
    })
}

/// Every `(method, path)` the document describes, for tests.
pub fn operations_list() -> Vec<(Method, &'static str)> {
    let mut builder = Builder::new();
    operations(&mut builder)
        .into_iter()
        .map(|operation| (operation.method, operation.path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let text = document.to_string();
        let schemas = &document["components"]["schemas"];
        let mut rest = text.as_str();
        let marker = "\"$ref\":\"#/components/schemas/";
        let mut count = 0;
        while let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            let name = rest.split('"').next().unwrap_or_default();
            assert!(schemas.get(name).is_some(), "dangling $ref to {name}");
            count += 1;
        }
        assert!(count > 10, "{count} references");
    }

    #[test]
    fn schemas_of_both_directions_agree() {
        let document = document();
        let schemas = document["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let inputs: Vec<&String> = schemas
            .keys()
            .filter(|name| name.ends_with("Input"))
            .collect();
        assert!(
            inputs.is_empty(),
            "request shapes differ from response shapes: {inputs:?}"
        );
    }

    #[test]
    fn every_operation_has_an_explicit_scope_and_error_responses() {
        let document = document();
        for (method, path) in operations_list() {
            let operation = &document["paths"][path][method.as_str().to_ascii_lowercase()];
            for status in ["401", "403"] {
                assert!(
                    operation["responses"].get(status).is_some(),
                    "{method} {path} lacks {status}"
                );
            }
            let scopes = operation["security"][0]["bearer"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(!scopes.is_empty(), "{method} {path} names no scope");
            // Listed explicitly in the access table, not admin by default.
            let listed = (method == Method::GET && auth::READ_PATHS.contains(&path))
                || (method == Method::POST
                    && (path == "/v1/check"
                        || path == "/v1/actions/{name}"
                        || auth::ADMIN_POST_PATHS.contains(&path)));
            assert!(listed, "{method} {path} is not in auth::needed's table");
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_with_contract_schemas() {
        let document = document();
        assert_eq!(document["openapi"], "3.1.0");
        for name in [
            "State",
            "Health",
            "ConfigView",
            "ActionResult",
            "ActionInfo",
            "EventPage",
            "Event",
            "ErrorBody",
            "CheckResponse",
        ] {
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "{name} missing"
            );
        }
    }
}
