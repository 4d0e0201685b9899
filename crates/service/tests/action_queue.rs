//! Actions over the real HTTP API on loopback while one is held in the
//! middle of its run (by the control plane's test hook, never by a
//! sleep): reads and checks are answered meanwhile, the queue of actions is
//! bounded (503 naming `MAX_PENDING_ACTIONS`), and an action past its
//! timeout is refused with nothing changed (503 while waiting, 504 once
//! planned).

mod common;

use common::{request, TestServer};
use floodgate_contract::actions::ActionRequest;
use floodgate_service::control::{ActionHook, ControlOptions};
use serde_json::{json, Value};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const CONFIG: &str = "
domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: hour, requests_per_unit: 100, name: per_tenant}
";

/// The reason that makes the hook hold an action until released.
const HOLD: &str = "hold";
/// A guard on every wait below, so a regression fails instead of hanging:
/// a read that waited on the held action would never be answered.
const GUARD: Duration = Duration::from_secs(60);

/// A hook holding every action whose reason is [`HOLD`]: it says which
/// action entered, then waits for a release (or for the test to end).
struct Holder {
    entered: UnboundedReceiver<String>,
    release: mpsc::Sender<()>,
}

fn holding_hook() -> (ActionHook, Holder) {
    let (entered_tx, entered) = unbounded_channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let hook: ActionHook = Arc::new(move |action: &str, request: &ActionRequest| {
        if request.reason == HOLD {
            let _ = entered_tx.send(action.to_string());
            let waiting = release_rx.lock().expect("release lock");
            let _ = waiting.recv();
        }
    });
    (hook, Holder { entered, release })
}

/// A server with the holding hook and these queue bounds.
async fn start(max_pending_actions: usize, action_timeout: Duration) -> (TestServer, Holder) {
    let (hook, holder) = holding_hook();
    let control = ControlOptions {
        max_pending_actions,
        action_timeout,
        action_hook: Some(hook),
        ..ControlOptions::default()
    };
    (TestServer::start_controlled(CONFIG, control).await, holder)
}

async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer while an action is held"))
}

fn set_limit(requests: u64, reason: &str, dry_run: bool) -> Value {
    json!({
        "params": {"domain": "api", "limit": "per_tenant", "requests_per_unit": requests},
        "reason": reason,
        "dry_run": dry_run,
    })
}

async fn post(server: &TestServer, path: &str, body: Value) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .expect("HTTP response");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.json().await.expect("JSON body");
    (status, retry_after, body)
}

async fn get(server: &TestServer, path: &str) -> (u16, String) {
    let response = reqwest::get(server.url(path)).await.expect("HTTP response");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// `floodgate_actions_refused_total{reason="REASON"}` as `/metrics` shows it.
async fn refused_total(server: &TestServer, reason: &str) -> u64 {
    let (status, text) = get(server, "/metrics").await;
    assert_eq!(status, 200);
    let series = format!("floodgate_actions_refused_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
        .trim()
        .parse()
        .expect("a count")
}

fn spawn_action(server: &TestServer, body: Value) -> tokio::task::JoinHandle<(u16, Value)> {
    let url = server.url("/v1/actions/set_limit");
    tokio::spawn(async move {
        let response = reqwest::Client::new()
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("HTTP response");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    })
}

/// Waits until `pending` actions are admitted (running or queued): the
/// queue's own count, polled a bounded number of times.
async fn until_pending(server: &TestServer, pending: usize) {
    for _ in 0..10_000 {
        if server.control.pending_actions() == pending {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "{} actions pending, never {pending}",
        server.control.pending_actions()
    );
}

async fn config_version(server: &TestServer) -> u64 {
    let (status, body) = get(server, "/v1/config").await;
    assert_eq!(status, 200, "{body}");
    let view: Value = serde_json::from_str(&body).expect("JSON");
    view["version"].as_u64().expect("version")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_checks_never_wait_on_an_action_and_the_queue_is_bounded() {
    let (server, mut holder) = start(3, Duration::from_secs(600)).await;

    let held = spawn_action(&server, set_limit(50, HOLD, false));
    let entered = guarded("the held action", holder.entered.recv()).await;
    assert_eq!(entered.as_deref(), Some("set_limit"));

    // Reads and checks, over HTTP and gRPC, while the action is held.
    for path in [
        "/v1/state",
        "/metrics",
        "/v1/health",
        "/v1/config",
        "/v1/events",
    ] {
        let (status, body) = guarded(path, get(&server, path)).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = guarded("/v1/state", get(&server, "/v1/state")).await;
    assert_eq!(status, 200);
    let state: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(state["config"]["version"], 1, "{state}");
    let (status, _, answer) = guarded(
        "/v1/check",
        post(
            &server,
            "/v1/check",
            json!({"domain": "api", "descriptors": [{"entries": [{"key": "tenant", "value": "a"}]}]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["overall_code"], "OK");
    let mut grpc = server.grpc_client().await;
    let answer = guarded(
        "gRPC check",
        grpc.should_rate_limit(request("api", &[&[("tenant", "b")]])),
    )
    .await
    .expect("gRPC answer");
    assert_eq!(answer.get_ref().overall_code, 1, "OK");

    // Two more wait their turn; the queue (3) is then full.
    let queued = [
        spawn_action(&server, set_limit(60, "queued", true)),
        spawn_action(&server, set_limit(70, "queued", true)),
    ];
    until_pending(&server, 3).await;
    let (status, retry_after, refused) = guarded(
        "a refused action",
        post(
            &server,
            "/v1/actions/set_limit",
            set_limit(80, "one too many", false),
        ),
    )
    .await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(refused["error"]["kind"], "overloaded", "{refused}");
    assert_eq!(refused["error"]["field"], "action", "{refused}");
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(message.contains("MAX_PENDING_ACTIONS = 3"), "{message}");
    // The config and the other routes to actions are refused the same way.
    let (status, _, refused) = post(
        &server,
        "/v1/config",
        json!({"patch": {"domain": "api", "limit": "per_tenant", "requests_per_unit": 1}}),
    )
    .await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["kind"], "overloaded", "{refused}");
    assert_eq!(config_version(&server).await, 1);
    // Both refusals are counted, and nothing else is.
    assert_eq!(refused_total(&server, "overloaded").await, 2);
    assert_eq!(refused_total(&server, "queue_timeout").await, 0);
    assert_eq!(refused_total(&server, "planning_timeout").await, 0);

    holder.release.send(()).expect("release");
    let (status, applied) = guarded("the held action", held).await.expect("task");
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["applied"], true, "{applied}");
    for task in queued {
        let (status, previewed) = guarded("a queued action", task).await.expect("task");
        assert_eq!(status, 200, "{previewed}");
        assert_eq!(previewed["dry_run"], true, "{previewed}");
    }
    assert_eq!(server.control.pending_actions(), 0);
    assert_eq!(config_version(&server).await, 2);
    // Room again.
    let (status, _, applied) = post(
        &server,
        "/v1/actions/set_limit",
        set_limit(90, "after", false),
    )
    .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(config_version(&server).await, 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_past_its_timeout_changes_nothing() {
    let (server, mut holder) = start(4, Duration::from_secs(1)).await;
    let (_, body) = get(&server, "/v1/events").await;
    let after = serde_json::from_str::<Value>(&body).expect("JSON")["next_after"]
        .as_u64()
        .expect("next_after");

    let held = spawn_action(&server, set_limit(50, HOLD, false));
    guarded("the held action", holder.entered.recv()).await;
    // Queued behind it, this one's timeout passes while it waits: never run.
    let (status, _, refused) = guarded(
        "a waiting action",
        post(
            &server,
            "/v1/actions/set_limit",
            set_limit(60, "waits", false),
        ),
    )
    .await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["kind"], "timeout", "{refused}");
    assert_eq!(refused["error"]["field"], "action", "{refused}");
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("ACTION_TIMEOUT") && message.contains("never ran"),
        "{message}"
    );

    // The held one started before it, so its timeout has passed too: once
    // released, it is refused before its effect.
    holder.release.send(()).expect("release");
    let (status, refused) = guarded("the held action", held).await.expect("task");
    assert_eq!(status, 504, "{refused}");
    assert_eq!(refused["error"]["kind"], "timeout", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("nothing changed")),
        "{refused}"
    );
    assert_eq!(config_version(&server).await, 1);
    let (_, body) = get(&server, &format!("/v1/events?after={after}")).await;
    let page: Value = serde_json::from_str(&body).expect("JSON");
    let types: Vec<&str> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["type"].as_str())
        .collect();
    assert_eq!(types, ["action_requested", "action_failed"], "{page}");
    assert_eq!(server.control.pending_actions(), 0);
    assert_eq!(refused_total(&server, "queue_timeout").await, 1);
    assert_eq!(refused_total(&server, "planning_timeout").await, 1);
    assert_eq!(refused_total(&server, "overloaded").await, 0);

    // The queue is free again, and an action within its timeout runs.
    let (status, _, applied) = post(
        &server,
        "/v1/actions/set_limit",
        set_limit(70, "after", false),
    )
    .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(config_version(&server).await, 2);
    server.stop().await;
}
