//! Test stand-ins on loopback: a harness that answers the agent API's
//! shapes (docs/adr/0008-agents-and-pipeline.md) and records every call,
//! and a chat-completions endpoint that replays a script and records every
//! request. Both are real axum servers on 127.0.0.1:0.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// One request the stand-in harness received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    /// Path and query as sent (still percent-encoded).
    pub uri: String,
    /// The JSON body (`null` when empty).
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct HarnessState {
    calls: Mutex<Vec<Call>>,
    queue: Mutex<VecDeque<Value>>,
}

/// A recording stand-in harness.
pub struct StandInHarness {
    pub base: String,
    state: Arc<HarnessState>,
}

/// A ticket as the harness shows it.
pub fn ticket(id: &str, state: &str) -> Value {
    json!({
        "id": id,
        "type": "incident",
        "objective": {"summary": "checkout requests are limited too often"},
        "acceptance_criteria": [{"slo": "checkout-availability"}],
        "constraints": ["do not raise any limit above 2x"],
        "context": {"slo": "checkout-availability", "burn_rate": 14.2},
        "source": "slo",
        "priority": "high",
        "fingerprint": "slo:checkout-availability",
        "state": state,
        "occurrences": 1,
        "created_ms": 0,
        "updated_ms": 0,
        "last_seen_ms": 0,
        "reopened": 0
    })
}

fn error(status: StatusCode, kind: &str, field: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"kind": kind, "field": field, "message": message}})),
    )
        .into_response()
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

async fn harness(
    State(state): State<Arc<HarnessState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_argument",
                    "body",
                    "not JSON",
                )
            }
        }
    };
    state.calls.lock().unwrap().push(Call {
        method: method.to_string(),
        uri: uri.to_string(),
        body: body.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    });
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let post = method == Method::POST;
    let q = query(&uri);
    let answer = match (post, segments.as_slice()) {
        (true, ["v1", "agent", "claim"]) => {
            let ticket = match body.get("ticket").and_then(Value::as_str) {
                Some(id) => ticket(id, "claimed"),
                None => state
                    .queue
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(Value::Null),
            };
            json!({ "ticket": ticket })
        }
        (false, ["v1", "tickets"]) => json!({"tickets": [ticket("INF-0001", "open")]}),
        (false, ["v1", "tickets", "BROKEN"]) => {
            return (StatusCode::BAD_GATEWAY, "upstream exploded").into_response()
        }
        (false, ["v1", "tickets", id]) if id.starts_with("INF-") => json!({
            "ticket": ticket(id, "claimed"), "history": [], "proposals": []
        }),
        (false, ["v1", "tickets", id]) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                "id",
                &format!("no ticket {id}"),
            )
        }
        (true, ["v1", "tickets", id, "release"]) => json!({"ticket": ticket(id, "open")}),
        (true, ["v1", "tickets", id, "renew"]) => json!({"ticket": ticket(id, "claimed")}),
        (true, ["v1", "tickets", id, "escalate"]) => json!({"ticket": ticket(id, "escalated")}),
        (true, ["v1", "tickets", id, "comment"]) => {
            if body.get("text").and_then(Value::as_str).is_none() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_argument",
                    "text",
                    "missing",
                );
            }
            json!({"ticket": ticket(id, "claimed")})
        }
        (false, ["v1", "tickets", id, "criteria"]) => json!({
            "id": id, "time_ms": 5, "all_met": false,
            "criteria": [{"slo": "checkout-availability", "verdict": "not_met"}]
        }),
        (true, ["v1", "tickets", id, "proposals"]) => {
            return (
                StatusCode::CREATED,
                Json(json!({"proposal": {
                    "id": "P-0001", "ticket": id, "state": "canary",
                    "agent": body["agent"], "actions": body["actions"],
                }})),
            )
                .into_response()
        }
        (false, ["v1", "proposals", pid]) => json!({"proposal": {"id": pid, "state": "succeeded"}}),
        (true, ["v1", "proposals", pid, verb @ ("approve" | "reject")]) => {
            json!({"proposal": {"id": pid, "state": if *verb == "approve" { "canary" } else { "rejected" }}})
        }
        (false, ["v1", "actions"]) => json!({"actions": [
            {"name": "set_limit", "risk": "medium", "gated": false}
        ]}),
        (false, ["v1", "observe", "series"]) => json!({
            "selector": q.get("selector"), "window_ms": q.get("window_ms"),
            "series": [{"labels": {}, "samples": [[0, 1.0]]}]
        }),
        (false, ["v1", "observe", "state"]) => {
            json!({"service": q.get("service"), "state": {"config_version": 3}})
        }
        (false, ["v1", "observe", "events"]) => json!({
            "service": q.get("service"), "events": [], "next_after": q.get("after")
        }),
        (false, ["v1", "slos"]) => {
            json!({"time_ms": 5, "slos": [{"name": "checkout-availability", "budget_remaining": 0.2}]})
        }
        (false, ["v1", "invariants"]) => json!({"time_ms": 5, "defined": [], "invariants": []}),
        (false, ["v1", "anomalies"]) => json!({"time_ms": 5, "anomalies": []}),
        (false, ["v1", "pipeline"]) => json!({"paused": false, "freeze": null, "in_flight": []}),
        (true, ["v1", "pause"]) => json!({"paused": true, "freeze": null, "in_flight": []}),
        (true, ["v1", "resume"]) => json!({"paused": false, "freeze": null, "in_flight": []}),
        (true, ["v1", "notices"]) => {
            let mut notice = body.clone();
            notice["id"] = json!("N-0001");
            notice["state"] = json!("active");
            return (StatusCode::CREATED, Json(json!({ "notice": notice }))).into_response();
        }
        (false, ["v1", "notices"]) => json!({"time_ms": 5, "notices": []}),
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                "path",
                "no such endpoint",
            )
        }
    };
    Json(answer).into_response()
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

impl StandInHarness {
    /// A stand-in with `queue` as the tickets claims hand out, in order.
    pub async fn start(queue: Vec<Value>) -> StandInHarness {
        let state = Arc::new(HarnessState {
            calls: Mutex::new(Vec::new()),
            queue: Mutex::new(queue.into()),
        });
        let router = axum::Router::new()
            .fallback(harness)
            .with_state(Arc::clone(&state));
        StandInHarness {
            base: serve(router).await,
            state,
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Calls to paths starting with `prefix` and `suffix`.
    pub fn calls_to(&self, method: &str, prefix: &str, suffix: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| {
                call.method == method
                    && call.uri.starts_with(prefix)
                    && call.uri.split('?').next().unwrap_or("").ends_with(suffix)
            })
            .collect()
    }

    /// The texts of the comments posted to `ticket`.
    pub fn comments(&self, ticket: &str) -> Vec<String> {
        self.calls_to("POST", &format!("/v1/tickets/{ticket}/"), "/comment")
            .into_iter()
            .map(|call| call.body["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

// ---- the scripted chat-completions endpoint -----------------------------------

/// One request the chat endpoint received.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct ChatState {
    script: Mutex<VecDeque<(u16, Value)>>,
    requests: Mutex<Vec<ChatRequest>>,
    /// Answer this forever once the script is done (`None`: 500).
    repeat: Mutex<Option<Value>>,
}

/// A chat-completions endpoint replaying a script.
pub struct ScriptedModel {
    /// The API base (`…/v1`).
    pub endpoint: String,
    state: Arc<ChatState>,
}

async fn chat(
    State(state): State<Arc<ChatState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    state.requests.lock().unwrap().push(ChatRequest {
        authorization: headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        body,
    });
    let next = state.script.lock().unwrap().pop_front();
    match next {
        Some((status, answer)) => {
            (StatusCode::from_u16(status).unwrap(), Json(answer)).into_response()
        }
        None => match state.repeat.lock().unwrap().clone() {
            Some(answer) => Json(answer).into_response(),
            None => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": {"message": "the script is exhausted"}})),
            )
                .into_response(),
        },
    }
}

impl ScriptedModel {
    /// An endpoint answering `script` in order (status, body).
    pub async fn start(script: Vec<(u16, Value)>, repeat: Option<Value>) -> ScriptedModel {
        let state = Arc::new(ChatState {
            script: Mutex::new(script.into()),
            requests: Mutex::new(Vec::new()),
            repeat: Mutex::new(repeat),
        });
        let router = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(chat))
            .with_state(Arc::clone(&state));
        ScriptedModel {
            endpoint: format!("{}/v1", serve(router).await),
            state,
        }
    }

    pub fn requests(&self) -> Vec<ChatRequest> {
        self.state.requests.lock().unwrap().clone()
    }
}

/// An assistant answer calling tools: `(id, name, arguments)`.
pub fn tool_calls(calls: &[(&str, &str, Value)], tokens: u64) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| {
            json!({
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": args.to_string()},
            })
        })
        .collect();
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "scripted",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": null, "tool_calls": calls},
            "finish_reason": "tool_calls"
        }],
        "usage": {"prompt_tokens": tokens - tokens / 4, "completion_tokens": tokens / 4, "total_tokens": tokens}
    })
}

/// A final assistant answer.
pub fn final_message(text: &str, tokens: u64) -> Value {
    json!({
        "id": "chatcmpl-2",
        "object": "chat.completion",
        "created": 0,
        "model": "scripted",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
    })
}
