//! The control plane over HTTP; merged into the API router by
//! [`crate::http::router`].

use super::actions::ActionError;
use super::events::{TypeFilter, EVENT_PAGE_DEFAULT, EVENT_PAGE_MAX};
use super::history::{CONFIG_PAGE_DEFAULT, CONFIG_PAGE_MAX};
use super::{Actor, Admitted, Control, ANONYMOUS};
use crate::http::HttpState;
use crate::limits::{MAX_DOMAIN_BYTES, TRAFFIC_PAGE_DEFAULT, TRAFFIC_PAGE_MAX};
use crate::stats::ActionRefusal;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use floodgate_contract::actions::{self as catalog, ActionInfo, ActionRequest};
use floodgate_contract::events::Event;
use floodgate_contract::state::{ConfigApplyRequest, ConfigView};
use floodgate_store::CounterStore;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Bytes of a control request body: a whole config travels in one
/// (`apply_config`), so this is larger than the check API's bound; it also
/// bounds each config version kept in the history.
pub const MAX_CONTROL_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Events one server-sent-events step reads from the ring at a time.
const STREAM_BATCH: usize = 256;

type Shared<S> = State<Arc<HttpState<S>>>;

/// The control plane's routes.
pub fn routes<S: CounterStore>() -> Router<Arc<HttpState<S>>> {
    Router::new()
        .route("/v1/state", get(state::<S>))
        .route("/v1/health", get(health::<S>))
        .route("/v1/events", get(events::<S>))
        .route("/v1/events/stream", get(stream::<S>))
        .route("/v1/config", get(config::<S>).post(apply_config::<S>))
        .route("/v1/config/versions", get(versions::<S>))
        .route("/v1/config/rollback", post(rollback::<S>))
        .route("/v1/traffic", get(traffic::<S>))
        .route("/v1/actions", get(actions))
        .route("/v1/actions/{name}", post(run_action::<S>))
}

impl IntoResponse for ActionError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// The actor of a request: the access layer's, else `anonymous`.
fn default_actor(
    actor: Option<Extension<Actor>>,
    caller: Option<Extension<crate::auth::Caller>>,
) -> String {
    match (actor, caller) {
        (Some(Extension(Actor(name))), _) => name,
        (None, Some(Extension(caller))) => caller.name,
        (None, None) => ANONYMOUS.to_string(),
    }
}

/// Reads a JSON body (empty: `{}`), naming the field at fault.
async fn read_json<T: DeserializeOwned>(body: Body, capacity: usize) -> Result<T, ActionError> {
    // Read into one buffer of `capacity` (the declared size), each frame
    // freed as it is copied: collecting the frames and joining them held a
    // large body twice.
    let too_large = || {
        ActionError::new_too_large(format!(
            "request body larger than {MAX_CONTROL_BODY_BYTES} bytes"
        ))
    };
    let mut body = Limited::new(body, MAX_CONTROL_BODY_BYTES);
    let mut bytes = Vec::with_capacity(capacity.min(MAX_CONTROL_BODY_BYTES));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| too_large())?;
        if let Some(data) = frame.data_ref() {
            bytes.extend_from_slice(data);
        }
    }
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    parsed.map_err(|error| {
        let message = error.inner().to_string();
        let field = floodgate_contract::state::error_field(&error.path().to_string(), &message)
            .unwrap_or_else(|| "body".to_owned());
        ActionError::invalid(field, message)
    })
}

impl ActionError {
    fn new_too_large(message: String) -> ActionError {
        ActionError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: "too_large",
            field: "body".to_string(),
            message,
        }
    }
}

/// The query's parameters, refusing unknown ones.
fn query_pairs(
    query: Option<String>,
    known: &[&str],
) -> Result<Vec<(String, String)>, ActionError> {
    let query = query.unwrap_or_default();
    let pairs: Vec<(String, String)> = serde_urlencoded_pairs(&query)?;
    for (name, _) in &pairs {
        if !known.contains(&name.as_str()) {
            let mut shown = name.clone();
            super::keys::cut(&mut shown, 64);
            return Err(ActionError::invalid(
                shown,
                format!(
                    "unknown query parameter (expected one of {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(pairs)
}

fn serde_urlencoded_pairs(query: &str) -> Result<Vec<(String, String)>, ActionError> {
    use axum::extract::Query;
    let uri: axum::http::Uri = format!("/?{query}")
        .parse()
        .map_err(|_| ActionError::invalid("query", "not a valid query string"))?;
    Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|Query(pairs)| pairs)
        .map_err(|error| ActionError::invalid("query", error.body_text()))
}

fn number(pairs: &[(String, String)], name: &str) -> Result<Option<u64>, ActionError> {
    match pairs.iter().rev().find(|(key, _)| key == name) {
        None => Ok(None),
        Some((_, value)) => value.trim().parse().map(Some).map_err(|_| {
            ActionError::invalid(name, format!("\"{value}\" is not a non-negative integer"))
        }),
    }
}

fn page_limit(
    pairs: &[(String, String)],
    default: usize,
    max: usize,
) -> Result<usize, ActionError> {
    Ok(match number(pairs, "limit")? {
        None => default,
        Some(0) => return Err(ActionError::invalid("limit", "must be at least 1")),
        Some(limit) => usize::try_from(limit).unwrap_or(max).min(max),
    })
}

fn type_filter(pairs: &[(String, String)]) -> Result<TypeFilter, ActionError> {
    let text: Vec<&str> = pairs
        .iter()
        .filter(|(key, _)| key == "type")
        .map(|(_, value)| value.as_str())
        .collect();
    TypeFilter::parse(&text.join(",")).map_err(|message| ActionError::invalid("type", message))
}

// ---- state and health ------------------------------------------------------

async fn state<S: CounterStore>(State(shared): Shared<S>) -> Response {
    let (control, access_control) = (shared.control.clone(), shared.access_control);
    match off_the_workers(move || control.state(access_control)).await {
        Ok(state) => Json(state).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn health<S: CounterStore>(State(shared): Shared<S>) -> Response {
    let (health, draining) = shared.control.health();
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(health)).into_response()
}

// ---- events ----------------------------------------------------------------

async fn events<S: CounterStore>(State(shared): Shared<S>, RawQuery(query): RawQuery) -> Response {
    let parsed = (|| {
        let pairs = query_pairs(query, &["after", "type", "limit", "wait_ms"])?;
        Ok::<_, ActionError>((
            number(&pairs, "after")?.unwrap_or(0),
            type_filter(&pairs)?,
            page_limit(&pairs, EVENT_PAGE_DEFAULT, EVENT_PAGE_MAX)?,
            number(&pairs, "wait_ms")?.unwrap_or(0),
        ))
    })();
    let (after, filter, limit, wait_ms) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return error.into_response(),
    };
    let control = &shared.control;
    let page = if wait_ms == 0 {
        control.events().page(after, &filter, limit)
    } else {
        control
            .events()
            .wait_page(
                after,
                &filter,
                limit,
                Duration::from_millis(wait_ms),
                control.stopping_signal(),
            )
            .await
    };
    Json(page).into_response()
}

struct Following<S> {
    control: Arc<Control<S>>,
    cursor: u64,
    filter: TypeFilter,
    buffered: VecDeque<Event>,
    newest: watch::Receiver<u64>,
    stopping: watch::Receiver<bool>,
}

fn sse_event(event: &Event) -> SseEvent {
    SseEvent::default()
        .id(event.seq.to_string())
        .event(event.body.type_name())
        .data(serde_json::to_string(event).unwrap_or_default())
}

/// `GET /v1/events/stream?after=SEQ&type=…`: every event after `after` (or
/// the `Last-Event-ID` a reconnecting client sends), in order, then each
/// new one as it happens, as server-sent events (`id` = seq, `event` =
/// type, `data` = the event's JSON). Ends when the service shuts down.
async fn stream<S: CounterStore>(
    State(shared): Shared<S>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let parsed = (|| {
        let pairs = query_pairs(query, &["after", "type"])?;
        Ok::<_, ActionError>((number(&pairs, "after")?, type_filter(&pairs)?))
    })();
    let (after, filter) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return error.into_response(),
    };
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let control = shared.control.clone();
    let following = Following {
        cursor: after.or(last_event_id).unwrap_or(0),
        filter,
        buffered: VecDeque::new(),
        newest: control.events().subscribe(),
        stopping: control.stopping_signal(),
        control,
    };
    let stream = futures_util::stream::unfold(following, |mut state| async move {
        loop {
            if let Some(event) = state.buffered.pop_front() {
                return Some((Ok::<_, Infallible>(sse_event(&event)), state));
            }
            state.newest.borrow_and_update();
            let page = state
                .control
                .events()
                .page(state.cursor, &state.filter, STREAM_BATCH);
            state.cursor = page.next_after;
            if !page.events.is_empty() {
                state.buffered.extend(page.events);
                continue;
            }
            // Everything so far is delivered: end on shutdown, else wait.
            if *state.stopping.borrow() {
                return None;
            }
            tokio::select! {
                changed = state.newest.changed() => if changed.is_err() { return None },
                changed = state.stopping.changed() => if changed.is_err() { return None },
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

// ---- config ----------------------------------------------------------------

async fn config<S: CounterStore>(State(shared): Shared<S>) -> Response {
    Json(shared.control.config_view()).into_response()
}

async fn versions<S: CounterStore>(
    State(shared): Shared<S>,
    RawQuery(query): RawQuery,
) -> Response {
    let parsed = (|| {
        let pairs = query_pairs(query, &["before", "limit"])?;
        Ok::<_, ActionError>((
            number(&pairs, "before")?,
            page_limit(&pairs, CONFIG_PAGE_DEFAULT, CONFIG_PAGE_MAX)?,
        ))
    })();
    match parsed {
        Ok((before, limit)) => Json(shared.control.config_versions(before, limit)).into_response(),
        Err(error) => error.into_response(),
    }
}

// ---- traffic ---------------------------------------------------------------

async fn traffic<S: CounterStore>(State(shared): Shared<S>, RawQuery(query): RawQuery) -> Response {
    let parsed = (|| {
        let pairs = query_pairs(query, &["limit", "domain", "before"])?;
        let domain = match pairs.iter().rev().find(|(key, _)| key == "domain") {
            None => None,
            Some((_, domain)) if domain.is_empty() => {
                return Err(ActionError::invalid("domain", "must not be empty"))
            }
            Some((_, domain)) if domain.len() > MAX_DOMAIN_BYTES => {
                return Err(ActionError::invalid(
                    "domain",
                    format!(
                        "{} bytes, more than the {MAX_DOMAIN_BYTES} allowed",
                        domain.len()
                    ),
                ))
            }
            Some((_, domain)) => Some(domain.clone()),
        };
        Ok::<_, ActionError>((
            page_limit(&pairs, TRAFFIC_PAGE_DEFAULT, TRAFFIC_PAGE_MAX)?,
            domain,
            number(&pairs, "before")?,
        ))
    })();
    let (limit, domain, before) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return error.into_response(),
    };
    let engine = shared.engine.clone();
    // The window's figures walk the whole ring.
    match off_the_workers(move || engine.traffic().page(limit, before, domain.as_deref())).await {
        Ok(page) => Json(page).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn apply_config<S: CounterStore>(
    State(shared): Shared<S>,
    actor: Option<Extension<Actor>>,
    caller: Option<Extension<crate::auth::Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (admitted, request) =
        match admit_and_read::<S, ConfigApplyRequest>(&shared.control, &headers, body).await {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal,
        };
    let (action, params) = match (request.yaml, request.patch) {
        (Some(yaml), None) => (catalog::APPLY_CONFIG.name, json!({ "yaml": yaml })),
        (None, Some(patch)) => (
            catalog::SET_LIMIT.name,
            serde_json::to_value(patch).unwrap_or_default(),
        ),
        _ => {
            return ActionError::invalid("yaml", "give exactly one of yaml and patch")
                .into_response()
        }
    };
    let request = ActionRequest {
        params,
        dry_run: request.dry_run,
        reason: request.reason,
        actor: request.actor,
        expect_config_version: request.expect_config_version,
    };
    act(
        &shared.control,
        admitted,
        action.to_string(),
        request,
        default_actor(actor, caller),
    )
    .await
}

/// `POST /v1/config/rollback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    to_version: u64,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    expect_config_version: Option<u64>,
}

async fn rollback<S: CounterStore>(
    State(shared): Shared<S>,
    actor: Option<Extension<Actor>>,
    caller: Option<Extension<crate::auth::Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (admitted, request) =
        match admit_and_read::<S, RollbackRequest>(&shared.control, &headers, body).await {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal,
        };
    let request = ActionRequest {
        params: json!({ "to_version": request.to_version }),
        dry_run: request.dry_run,
        reason: request.reason,
        actor: request.actor,
        expect_config_version: request.expect_config_version,
    };
    act(
        &shared.control,
        admitted,
        catalog::ROLLBACK_CONFIG.name.to_string(),
        request,
        default_actor(actor, caller),
    )
    .await
}

// ---- actions ---------------------------------------------------------------

async fn actions() -> Json<Vec<ActionInfo>> {
    Json(catalog::CATALOG.iter().map(|def| def.info()).collect())
}

async fn run_action<S: CounterStore>(
    State(shared): Shared<S>,
    Path(name): Path<String>,
    actor: Option<Extension<Actor>>,
    caller: Option<Extension<crate::auth::Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (admitted, request) =
        match admit_and_read::<S, ActionRequest>(&shared.control, &headers, body).await {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal,
        };
    act(
        &shared.control,
        admitted,
        name,
        request,
        default_actor(actor, caller),
    )
    .await
}

/// Admits an action taken over the API before its body is read (a
/// refusal is the 503 of [`overloaded`]), then reads its JSON body. Its
/// share of `MAX_PENDING_ACTION_BYTES` is the body's `Content-Length`, or
/// the whole `MAX_CONTROL_BODY_BYTES` when it declares none (a larger one
/// is refused by [`read_json`]); the body is read into a buffer of the
/// declared size.
async fn admit_and_read<S: CounterStore, T: DeserializeOwned>(
    control: &Control<S>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Admitted, T), Response> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<usize>().ok())
        .map(|declared| declared.min(MAX_CONTROL_BODY_BYTES));
    let admitted = control
        .admit_action(declared.unwrap_or(MAX_CONTROL_BODY_BYTES))
        .map_err(|refusal| {
            control
                .engine()
                .metrics
                .action_refused(ActionRefusal::Overloaded);
            overloaded(refusal)
        })?;
    let request = read_json(body, declared.unwrap_or(0))
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((admitted, request))
}

/// Runs `work` on the blocking pool: actions compile whole configs and walk
/// every key, and `/v1/state` walks every key, so they must not hold an
/// async worker (the check path's).
async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ActionError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ActionError::internal("request", format!("the task failed: {error}")))
}

/// Runs an action taken over the API, admitted by [`admit_and_read`]
/// before its body was read (else 503 `overloaded`), then waiting
/// (asynchronously, holding no thread) for its turn until
/// [`Control::action_timeout`] (else 503 `timeout`, never run), then run
/// on the blocking pool; refused with nothing changed when its planning
/// ends past that timeout (504). Reads and checks never
/// wait on it: they take neither the turn nor the action lock.
async fn act<S: CounterStore>(
    control: &Arc<Control<S>>,
    admitted: Admitted,
    name: String,
    request: ActionRequest,
    actor: String,
) -> Response {
    let refused = |reason: ActionRefusal| control.engine().metrics.action_refused(reason);
    let timeout = control.action_timeout();
    let deadline = tokio::time::Instant::now() + timeout;
    let turn = match tokio::time::timeout_at(deadline, control.action_turn().acquire_owned()).await
    {
        Ok(Ok(turn)) => turn,
        Ok(Err(closed)) => {
            return ActionError::internal("action", format!("the action queue is closed: {closed}"))
                .into_response()
        }
        Err(_) => {
            refused(ActionRefusal::QueueTimeout);
            return overloaded(ActionError::queue_timeout(format!(
                "the action did not get its turn within {timeout:?} (ACTION_TIMEOUT): the actions before it took that long; it never ran, nothing changed"
            )));
        }
    };
    let control = control.clone();
    let run = move || {
        let result = control.run_action_until(&name, request, &actor, Some(deadline));
        drop((turn, admitted));
        result
    };
    match off_the_workers(run).await {
        Ok(Ok(result)) => Json(result).into_response(),
        Ok(Err(error)) | Err(error) => error.into_response(),
    }
}

/// A 503 refusal of an action with `Retry-After: 1`.
fn overloaded(error: ActionError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    response
}

impl<S: CounterStore> Control<S> {
    /// `GET /v1/config`.
    pub fn config_view(&self) -> ConfigView {
        let history = self.history.lock();
        let current = history.current();
        ConfigView {
            version: current.meta.version,
            hash: current.meta.hash.clone(),
            yaml: current.yaml.to_string(),
            domains: current
                .domains
                .iter()
                .map(|domain| serde_json::to_value(domain).unwrap_or_default())
                .collect(),
        }
    }

    /// A page of the config history (newest first).
    pub fn config_versions(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> floodgate_contract::state::ConfigVersionPage {
        self.history
            .lock()
            .page(before, limit.clamp(1, CONFIG_PAGE_MAX))
    }
}
