//! The harness HTTP API (axum; `floodgate harness` serves it on
//! 127.0.0.1:8090 by default).
//!
//! Every route — method, path, scope, query parameters, body type — is a
//! line of the contract's table (`floodgate_harness_contract::routes::ROUTES`);
//! [`router`] serves each line with its handler here, the access layer
//! reads the same table, and `GET /v1/openapi.json` describes it
//! (docs/catalog/harness-openapi.json).
//!
//! Errors are the contract's `{"error": {"kind", "field", "message"}}`
//! (ticket files add `line`). Store calls run on blocking threads.
//! Access control: [`serve_with_tokens`] wraps the router in
//! [`crate::api::auth::layer`] (bearer tokens with scopes; a route missing
//! from the table is admin-only). Without tokens the CLI binds loopback
//! only.

pub mod auth;

use crate::change::proposal::{ProposalRequest, Stage};
use crate::observe::selector::Selector;
use crate::run::observer::HarnessState;
use crate::run::pipeline::{Pipeline, PipelineError};
use crate::run::state::Target;
use crate::store::ledger::MAX_PAGE;
use crate::store::notices::NoticeFilter;
use crate::store::tickets::IntakeAction;
use crate::store::tickets::TicketFilter;
use crate::store::{StoreError, MAX_LIST};
use crate::tickets::alertmanager;
use crate::tickets::notices::{NoticeDraft, NoticeState};
use crate::tickets::{
    parse_ticket_yaml, Command, Source, TicketFileError, TicketState, MAX_ACTOR_BYTES,
    MAX_TICKET_FILE_BYTES,
};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use floodgate_contract::client::{ClientError, EventQuery, ServiceApi};
use floodgate_harness_contract::routes::{query_names, Method as RouteMethod, Operation, ROUTES};
use floodgate_harness_contract::types::{
    ClaimRequest, CommentRequest, Decision, LeaseRequest, LinkRequest, QuestionRequest, StepRequest,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// Where `floodgate harness` serves by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8090";
/// The largest request body (an Alertmanager payload's bound).
pub const MAX_BODY_BYTES: usize = alertmanager::MAX_PAYLOAD_BYTES;
/// The longest `?file=` name echoed in errors.
pub const MAX_FILE_NAME_BYTES: usize = 256;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub field: String,
    pub message: String,
    pub line: Option<usize>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, field: &str, message: String) -> ApiError {
        ApiError {
            status,
            kind,
            field: field.to_owned(),
            message,
            line: None,
        }
    }

    fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            field,
            message.into(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({
            "kind": self.kind,
            "field": self.field,
            "message": self.message,
        });
        if let Some(line) = self.line {
            error["line"] = json!(line);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        let message = error.to_string();
        match error {
            StoreError::NotFound(id) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "id",
                format!("no ticket {id}"),
            ),
            StoreError::NoSuch { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "id", message)
            }
            StoreError::Conflict { field, .. } => {
                ApiError::new(StatusCode::CONFLICT, "precondition_failed", field, message)
            }
            StoreError::Transition(_) => ApiError::new(
                StatusCode::CONFLICT,
                "precondition_failed",
                "state",
                message,
            ),
            StoreError::Invalid { field, .. } => ApiError::invalid(field, message),
            StoreError::Sqlite(_) | StoreError::Io(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store", "", message)
            }
            StoreError::Corrupt(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "", message)
            }
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> ApiError {
        let status = rejection.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "invalid_argument"
        };
        ApiError::new(status, kind, "body", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::invalid("query", rejection.body_text())
    }
}

fn ticket_file_error(error: TicketFileError) -> ApiError {
    let mut api = ApiError::invalid(&error.path, error.to_string());
    api.line = error.line;
    api
}

type Shared = Arc<HarnessState>;
type Answer = Result<Response, ApiError>;

/// Runs a store call on a blocking thread.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(call).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(error) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "",
            format!("the store call failed: {error}"),
        )),
    }
}

fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

/// The handler of `operation`, on `method` (MCP is mounted beside the
/// API by the CLI: `None`).
fn handler(operation: Operation, method: MethodFilter) -> Option<MethodRouter<Shared>> {
    use Operation as Op;
    let handler = match operation {
        Op::Health => on(method, health),
        Op::OpenApi => on(method, openapi),
        Op::Slos => on(method, slos),
        Op::Invariants => on(method, invariants),
        Op::Anomalies => on(method, anomalies),
        Op::ListTickets => on(method, list_tickets),
        Op::CreateTicket => on(method, create_ticket),
        Op::ShowTicket => on(method, show_ticket),
        Op::CommentTicket => on(method, comment_ticket),
        Op::CancelTicket => on(method, cancel_ticket),
        Op::LinkTicket => on(method, link_ticket),
        Op::ListIncidents => on(method, list_incidents),
        Op::TicketCriteria => on(method, ticket_criteria),
        Op::Alertmanager => on(method, alertmanager_webhook),
        Op::Ledger => on(method, ledger),
        Op::Claim => on(method, agent_claim),
        Op::Release => on(method, release_ticket),
        Op::Renew => on(method, renew_ticket),
        Op::Escalate => on(method, escalate_ticket),
        Op::Propose => on(method, propose),
        Op::TicketProposals => on(method, ticket_proposals),
        Op::Ask => on(method, ask_question),
        Op::Step => on(method, agent_step),
        Op::ApproveTicket => on(method, approve_ticket),
        Op::RejectTicket => on(method, reject_ticket),
        Op::ShowProposal => on(method, show_proposal),
        Op::ApproveProposal => on(method, approve_proposal),
        Op::RejectProposal => on(method, reject_proposal),
        Op::RevertProposal => on(method, revert_proposal),
        Op::Actions => on(method, actions),
        Op::ObserveSeries => on(method, observe_series),
        Op::ObserveState => on(method, observe_state),
        Op::ObserveEvents => on(method, observe_events),
        Op::Evidence => on(method, evidence),
        Op::Pipeline => on(method, pipeline_status),
        Op::Pause => on(method, pause),
        Op::Resume => on(method, resume),
        Op::ListTrajectories => on(method, list_trajectories),
        Op::ShowTrajectory => on(method, show_trajectory),
        Op::Reflect => on(method, reflect_now),
        Op::Reflection => on(method, reflection_state),
        Op::ListNotices => on(method, list_notices),
        Op::CreateNotice => on(method, create_notice),
        Op::ShowNotice => on(method, show_notice),
        Op::ExpireNotice => on(method, expire_notice),
        Op::Mcp => return None,
    };
    Some(handler)
}

/// The router over a shared harness, built from the contract's route
/// table: every line of [`ROUTES`] is served on its method and path (MCP's
/// aside), so the router, the access layer and the OpenAPI document
/// cannot disagree.
pub fn router(state: Arc<HarnessState>) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        let method = match route.method {
            RouteMethod::Get => MethodFilter::GET,
            RouteMethod::Post => MethodFilter::POST,
            RouteMethod::Delete => MethodFilter::DELETE,
        };
        if let Some(handler) = handler(route.operation, method) {
            router = router.route(route.path, handler);
        }
    }
    router
        .method_not_allowed_fallback(floodgate_edge::refusal::method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes (open, with
/// the default listener bounds).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<HarnessState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app_with(
        listener,
        router(state),
        Arc::default(),
        Listener::default(),
        shutdown,
    )
    .await
}

/// How the harness's listener is bounded and guarded: the edge's listener
/// options (connection cap, handshake, header, body and idle timeouts) and,
/// without tokens, the open-mode guard's allowed names (ADR 0004).
#[derive(Debug, Clone, Default)]
pub struct Listener {
    pub options: floodgate_edge::server::ListenerOptions,
    pub open_mode: floodgate_edge::guard::OpenMode,
}

/// Serves `app` (the harness router, maybe with more routes merged in,
/// such as `/mcp`) behind the access layer until `shutdown` completes:
/// with `tokens` non-empty every call needs a bearer token whose scope
/// grants it ([`crate::api::auth`]); without, the open-mode guard refuses
/// foreign Host and Origin headers and POSTs without a JSON content type.
/// The listener is the edge's (`floodgate_edge::server`), bounded by
/// `listener.options`.
pub async fn serve_app_with(
    listener: tokio::net::TcpListener,
    app: Router,
    tokens: Arc<crate::api::auth::Tokens>,
    settings: Listener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let open = tokens.is_empty();
    let app = crate::api::auth::layer(app, tokens);
    let app = if open {
        let on_refused: floodgate_edge::guard::RefusedHook =
            Arc::new(|refused: &floodgate_edge::guard::Refused| {
                floodgate_edge::guard::log("harness", refused);
            });
        floodgate_edge::guard::layer(app, settings.open_mode, on_refused)
    } else {
        app
    };
    floodgate_edge::server::serve_router(listener, settings.options, Arc::default(), app, shutdown)
        .await;
    Ok(())
}

/// [`serve_app_with`] with the default listener bounds.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    tokens: Arc<crate::api::auth::Tokens>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app_with(listener, app, tokens, Listener::default(), shutdown).await
}

/// [`serve_app`] of the harness router.
pub async fn serve_with_tokens(
    listener: tokio::net::TcpListener,
    state: Arc<HarnessState>,
    tokens: Arc<crate::api::auth::Tokens>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app(listener, router(state), tokens, shutdown).await
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "path",
        "no such endpoint".into(),
    )
}

/// `GET /v1/openapi.json`: the harness's OpenAPI document, built once per
/// process.
async fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT
        .get_or_init(|| floodgate_harness_contract::openapi::document().to_string())
        .clone();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn health(State(state): State<Shared>) -> Answer {
    let status = state.status();
    let stats = state.harness().tsdb().stats();
    let unreachable = status.targets.iter().filter(|t| !t.up).count();
    ok(json!({
        "status": if status.ticks > 0 && unreachable > 0 { "degraded" } else { "ok" },
        "time_ms": state.now_ms(),
        "ticks": status.ticks,
        "last_tick_ms": status.last_tick.as_ref().map(|tick| tick.time_ms),
        "last_errors": status.last_tick.as_ref().map(|tick| tick.errors.clone()).unwrap_or_default(),
        "targets": status.targets,
        "tsdb": stats,
    }))
}

async fn slos(State(state): State<Shared>) -> Answer {
    let status = state.status();
    let now = state.now_ms();
    let (time_ms, slos) = match status.last_tick {
        Some(tick) => (tick.time_ms, tick.slos),
        // Before the first tick: evaluate now (no alert state yet).
        None => {
            let harness = state.harness();
            let reports = harness
                .objectives()
                .slos
                .iter()
                .map(|slo| crate::observe::slo::evaluate(slo, harness.tsdb(), now))
                .collect();
            (now, reports)
        }
    };
    ok(json!({ "time_ms": time_ms, "slos": slos }))
}

async fn invariants(State(state): State<Shared>) -> Answer {
    let tick = state.status().last_tick.unwrap_or_default();
    let defined: Vec<Value> = state
        .harness()
        .objectives()
        .invariants
        .iter()
        .map(|def| json!({ "name": def.name, "condition": def.condition }))
        .collect();
    ok(json!({ "time_ms": tick.time_ms, "defined": defined, "invariants": tick.invariants }))
}

async fn anomalies(State(state): State<Shared>) -> Answer {
    let tick = state.status().last_tick.unwrap_or_default();
    ok(json!({ "time_ms": tick.time_ms, "anomalies": tick.anomalies }))
}

/// Refuses a query parameter `operation`'s route does not list, naming it.
fn only_params(query: &BTreeMap<String, String>, operation: Operation) -> Result<(), ApiError> {
    let allowed = query_names(operation);
    match query.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(ApiError::invalid(
            key,
            format!("unknown parameter (expected {})", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn parse_u64(query: &BTreeMap<String, String>, field: &str) -> Result<Option<u64>, ApiError> {
    query
        .get(field)
        .map(|text| {
            text.parse::<u64>()
                .map_err(|_| ApiError::invalid(field, format!("{text:?} is not a whole number")))
        })
        .transpose()
}

/// `after` (an id of `what`, or its number) and `limit` (1 to
/// [`MAX_LIST`], default the cap) of a list call.
fn paging(
    query: &BTreeMap<String, String>,
    what: &str,
    number_of: fn(&str) -> Option<u64>,
) -> Result<(u64, usize), ApiError> {
    let after = match query.get("after") {
        Some(after) => number_of(after)
            .or_else(|| after.parse().ok())
            .ok_or_else(|| {
                ApiError::invalid("after", format!("{after:?} is not a {what} id or number"))
            })?,
        None => 0,
    };
    let limit = parse_u64(query, "limit")?.map_or(MAX_LIST, |limit| {
        usize::try_from(limit)
            .unwrap_or(MAX_LIST)
            .clamp(1, MAX_LIST)
    });
    Ok((after, limit))
}

async fn list_tickets(
    State(state): State<Shared>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Answer {
    let Query(query) = query?;
    let mut filter = TicketFilter::default();
    only_params(&query, Operation::ListTickets)?;
    if let Some(states) = query.get("state") {
        for name in states.split(',').filter(|name| !name.is_empty()) {
            let parsed = TicketState::parse(name).ok_or_else(|| {
                ApiError::invalid(
                    "state",
                    format!(
                        "{name:?} is not a state (expected one of {})",
                        TicketState::ALL.map(TicketState::as_str).join(", ")
                    ),
                )
            })?;
            filter.states.push(parsed);
        }
    }
    if let Some(source) = query.get("source") {
        filter.source = Some(
            serde_json::from_value::<Source>(Value::String(source.clone())).map_err(|_| {
                ApiError::invalid(
                    "source",
                    format!("{source:?} is not a source (expected slo, invariant, anomaly, human, alertmanager, reflection)"),
                )
            })?,
        );
    }
    (filter.after_number, filter.limit) = paging(&query, "ticket", crate::tickets::ticket_number)?;
    let store = Arc::clone(state.store());
    let tickets = blocking(move || store.list(&filter)).await?;
    ok(json!({ "tickets": tickets }))
}

async fn create_ticket(
    State(state): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let Query(query) = query?;
    let body = body?;
    if body.len() > MAX_TICKET_FILE_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "body",
            format!(
                "{} bytes, more than the {MAX_TICKET_FILE_BYTES} a ticket may be (MAX_TICKET_FILE_BYTES)",
                body.len()
            ),
        ));
    }
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::invalid("body", "not UTF-8"))?;
    let file = match query.get("file") {
        Some(name) if name.len() <= MAX_FILE_NAME_BYTES && !name.is_empty() => name.clone(),
        Some(_) => {
            return Err(ApiError::invalid(
                "file",
                format!("must be 1 to {MAX_FILE_NAME_BYTES} bytes"),
            ))
        }
        None => "request body".to_owned(),
    };
    let key = match headers.get("idempotency-key") {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::invalid("Idempotency-Key", "not visible ASCII"))?
                .to_owned(),
        ),
        None => None,
    };
    // JSON (the same document, or just the ticket object) or YAML. JSON is
    // YAML, so both go through the one parser that names lines and fields.
    let document = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) if !object.contains_key("ticket") => {
            serde_json::to_string_pretty(&json!({ "ticket": object })).unwrap_or_default()
        }
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_default(),
        Err(_) => text.to_owned(),
    };
    let now = state.now_ms();
    let draft = {
        let harness = state.harness();
        let mut draft =
            parse_ticket_yaml(&file, &document, harness.registry()).map_err(ticket_file_error)?;
        harness.prepare(&mut draft, now).map_err(|refused| {
            ApiError::invalid(&format!("ticket.{}", refused.path), refused.to_string())
        })?;
        draft
    };
    let store = Arc::clone(state.store());
    // A report filed again is a new report (a repeat of one report carries
    // its intake key and changes nothing): after its ticket went to a
    // human, it opens a new episode an agent can work rather than
    // attaching to the escalated ticket unseen.
    let outcome = blocking(move || store.intake_as(&draft, key.as_deref(), now, true)).await?;
    let status = if outcome.action == IntakeAction::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(outcome))).into_response())
}

async fn show_ticket(State(state): State<Shared>, Path(id): Path<String>) -> Answer {
    let store = Arc::clone(state.store());
    let (ticket, history, proposals) = blocking(move || {
        let ticket = store
            .get(&id)?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let history = store.history(&id)?;
        let proposals = store.proposals_of(&id)?;
        Ok((ticket, history, proposals))
    })
    .await?;
    ok(json!({ "ticket": ticket, "history": history, "proposals": proposals }))
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let message = error.inner().to_string();
        let field = floodgate_contract::state::error_field(&error.path().to_string(), &message)
            .unwrap_or_else(|| "body".to_owned());
        ApiError::invalid(&field, message)
    })
}

fn actor(actor: Option<String>) -> Result<String, ApiError> {
    let actor = actor.unwrap_or_else(|| "human".to_owned());
    if actor.trim().is_empty() || actor.len() > MAX_ACTOR_BYTES {
        return Err(ApiError::invalid(
            "actor",
            format!("must be 1 to {MAX_ACTOR_BYTES} bytes"),
        ));
    }
    Ok(actor)
}

async fn run_command(state: &Shared, id: String, command: Command) -> Answer {
    let now = state.now_ms();
    let store = Arc::clone(state.store());
    let ticket = blocking(move || store.command(&id, &command, now)).await?;
    ok(json!({ "ticket": ticket }))
}

async fn comment_ticket(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body: CommentRequest = parse_body(&body?)?;
    // The text's size is the request's fault whatever the ticket's state.
    if body.text.len() > crate::tickets::MAX_COMMENT_BYTES {
        return Err(ApiError::invalid(
            "text",
            format!(
                "{} bytes, longer than {} bytes",
                body.text.len(),
                crate::tickets::MAX_COMMENT_BYTES
            ),
        ));
    }
    let command = Command::Comment {
        actor: actor(body.actor)?,
        text: body.text,
    };
    run_command(&state, id, command).await
}

async fn link_ticket(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body: LinkRequest = parse_body(&body?)?;
    let command = Command::Link {
        actor: actor(body.actor)?,
        incident: body.incident,
        reason: body.reason,
    };
    run_command(&state, id, command).await
}

async fn list_incidents(
    State(state): State<Shared>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Answer {
    let Query(query) = query?;
    only_params(&query, Operation::ListIncidents)?;
    let limit = match query.get("limit") {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=crate::store::MAX_LIST).contains(limit))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("{text:?}: expected 1 to {}", crate::store::MAX_LIST),
                )
            })?,
        None => 100,
    };
    let store = Arc::clone(state.store());
    let incidents = blocking(move || store.incidents(limit)).await?;
    ok(json!({ "incidents": incidents }))
}

async fn cancel_ticket(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = body?;
    let body: Decision = body_or_default(&body)?;
    let command = Command::Cancel {
        actor: actor(body.actor)?,
        reason: body.reason.unwrap_or_else(|| "cancelled".to_owned()),
    };
    run_command(&state, id, command).await
}

async fn ticket_criteria(State(state): State<Shared>, Path(id): Path<String>) -> Answer {
    let store = Arc::clone(state.store());
    let lookup = id.clone();
    let ticket = blocking(move || {
        store
            .get(&lookup)?
            .ok_or_else(|| StoreError::NotFound(lookup.clone()))
    })
    .await?;
    let now = state.now_ms();
    let results = state.harness().evaluate_criteria(&ticket, now);
    let met = results
        .iter()
        .all(|result| matches!(result.verdict, crate::tickets::criteria::Verdict::Met));
    ok(json!({ "id": id, "time_ms": now, "all_met": met, "criteria": results }))
}

async fn alertmanager_webhook(
    State(state): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = body?;
    let invalid = |error: alertmanager::PayloadError| {
        let field = if error.field.is_empty() || error.field == "." {
            "body".to_owned()
        } else {
            error.field
        };
        ApiError::invalid(&field, error.message)
    };
    let payload = alertmanager::parse(&body).map_err(invalid)?;
    let conversion = alertmanager::convert(&payload).map_err(invalid)?;
    let now = state.now_ms();
    let store = Arc::clone(state.store());
    let resolved = conversion.resolved;
    let outcomes = blocking(move || {
        conversion
            .intakes
            .iter()
            // A firing Alertmanager sends again has the same intake key
            // (its startsAt): only a new firing gets here, fresh.
            .map(|intake| store.intake_as(&intake.draft, Some(&intake.intake_key), now, true))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    let filed: Vec<Value> = outcomes
        .iter()
        .map(|outcome| json!({ "id": outcome.ticket.id, "action": outcome.action }))
        .collect();
    ok(json!({ "filed": filed, "resolved": resolved }))
}

async fn ledger(
    State(state): State<Shared>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Answer {
    let Query(query) = query?;
    let after = parse_u64(&query, "after")?.unwrap_or(0);
    let limit = parse_u64(&query, "limit")?.map_or(MAX_PAGE, |limit| {
        usize::try_from(limit)
            .unwrap_or(MAX_PAGE)
            .clamp(1, MAX_PAGE)
    });
    let store = Arc::clone(state.store());
    let (entries, (head_seq, head_hash)) =
        blocking(move || Ok((store.ledger_page(after, limit)?, store.head()?))).await?;
    let next_after = entries.last().map_or(after, |entry| entry.seq);
    ok(json!({
        "entries": entries,
        "next_after": next_after,
        "head_seq": head_seq,
        "head_hash": head_hash,
    }))
}

// ---- the agent interface (docs/adr/0008-agents-and-pipeline.md) -----------

/// The claim an agent gets when it names no TTL.
pub const DEFAULT_CLAIM_TTL_MS: u64 = 15 * crate::quantity::MINUTE_MS;
/// The most points one `GET /v1/observe/series` answers.
pub const MAX_SERIES_POINTS: u64 = 1_000;

impl From<PipelineError> for ApiError {
    fn from(error: PipelineError) -> ApiError {
        match error {
            PipelineError::Invalid { field, message } => ApiError::invalid(&field, message),
            PipelineError::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "id",
                format!("no {what}"),
            ),
            PipelineError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", "state", message)
            }
            PipelineError::Collision(message) => {
                ApiError::new(StatusCode::CONFLICT, "collision", "actions", message)
            }
            PipelineError::Store(error) => ApiError::from(error),
        }
    }
}

fn pipeline_of(state: &Shared) -> Result<Arc<Pipeline>, ApiError> {
    state.pipeline().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "pipeline",
            "this harness has no pipeline (it observes services but changes nothing)".into(),
        )
    })
}

fn body_or_default<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_body(body)
    }
}

async fn agent_claim(State(state): State<Shared>, body: Result<Bytes, BytesRejection>) -> Answer {
    let body: ClaimRequest = parse_body(&body?)?;
    let agent = actor(Some(body.agent))?;
    let ttl_ms = body.ttl_ms.unwrap_or(DEFAULT_CLAIM_TTL_MS);
    // Refused here, before any ticket is looked at: an out-of-range lease
    // is a bad request, never "no ticket".
    let range = crate::tickets::MIN_CLAIM_TTL_MS..=crate::tickets::MAX_CLAIM_TTL_MS;
    if !range.contains(&ttl_ms) {
        return Err(ApiError::invalid(
            "ttl_ms",
            format!("{ttl_ms} is outside {}..={}", range.start(), range.end()),
        ));
    }
    let now = state.now_ms();
    let store = Arc::clone(state.store());
    let claimed = blocking(move || {
        let command = Command::Claim {
            agent: agent.clone(),
            ttl_ms,
        };
        // Reflection suspends automatic work on a fingerprint until a
        // human answers its help ticket.
        let suspended = crate::run::reflector::suspended(&store)?;
        if let Some(id) = body.ticket {
            if let Some(ticket) = store.get(&id)? {
                if ticket.kind == crate::tickets::TicketType::Help {
                    return Err(StoreError::Invalid {
                        field: "ticket",
                        message: format!("{id} is a help ticket: a human answers it, not an agent"),
                    });
                }
                if let Some(help) = suspended.get(&ticket.fingerprint) {
                    return Err(StoreError::Invalid {
                        field: "ticket",
                        message: format!(
                            "work on {} is suspended until a human answers {help}",
                            ticket.fingerprint
                        ),
                    });
                }
                if let Some(owner) = &ticket.incident {
                    if store.get(owner)?.is_some_and(|owner| owner.state.is_active()) {
                        return Err(StoreError::Invalid {
                            field: "ticket",
                            message: format!(
                                "{id} belongs to the incident {owner} owns: work {owner}, or unlink {id} first"
                            ),
                        });
                    }
                }
            }
            return store.command(&id, &command, now).map(Some);
        }
        // Another agent may take the same ticket between the pick and the
        // claim: try the next one, a bounded number of times.
        for _ in 0..8 {
            // Help tickets are addressed to a human, never to an agent.
            let skip = |ticket: &crate::tickets::Ticket| {
                ticket.kind == crate::tickets::TicketType::Help
                    || suspended.contains_key(&ticket.fingerprint)
            };
            let Some(next) = store.next_open_matching(&body.sources, &skip)? else {
                return Ok(None);
            };
            match store.command(&next.id, &command, now) {
                Ok(ticket) => return Ok(Some(ticket)),
                Err(StoreError::Transition(_)) => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    })
    .await?;
    if let Some(ticket) = &claimed {
        let snapshot = state.snapshot(Some(ticket), now);
        let store = Arc::clone(state.store());
        let id = ticket.id.clone();
        blocking(move || store.fill_snapshot(&id, true, &snapshot)).await?;
    }
    ok(json!({ "ticket": claimed }))
}

async fn release_ticket(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body: LeaseRequest = parse_body(&body?)?;
    let command = Command::Release {
        agent: actor(Some(body.agent))?,
    };
    run_command(&state, id, command).await
}

async fn renew_ticket(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body: LeaseRequest = parse_body(&body?)?;
    let command = Command::Renew {
        agent: actor(Some(body.agent))?,
        ttl_ms: body.ttl_ms.unwrap_or(DEFAULT_CLAIM_TTL_MS),
    };
    run_command(&state, id, command).await
}

async fn escalate_ticket(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body: Decision = body_or_default(&body?)?;
    let reason = body
        .reason
        .filter(|reason| !reason.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("reason", "say why a human is needed"))?;
    let command = Command::Escalate {
        actor: actor(body.actor)?,
        reason,
    };
    run_command(&state, id, command).await
}

async fn propose(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let request: ProposalRequest = parse_body(&body?)?;
    let pipeline = pipeline_of(&state)?;
    let now = state.now_ms();
    let proposal = pipeline.propose(&state, &id, request, now).await?;
    Ok((StatusCode::CREATED, Json(json!({ "proposal": proposal }))).into_response())
}

async fn ticket_proposals(State(state): State<Shared>, Path(id): Path<String>) -> Answer {
    let store = Arc::clone(state.store());
    let proposals = blocking(move || {
        store
            .get(&id)?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        store.proposals_of(&id)
    })
    .await?;
    ok(json!({ "proposals": proposals }))
}

async fn show_proposal(State(state): State<Shared>, Path(pid): Path<String>) -> Answer {
    let store = Arc::clone(state.store());
    let lookup = pid.clone();
    let proposal = blocking(move || store.get_proposal(&lookup)).await?;
    match proposal {
        Some(proposal) => ok(json!({ "proposal": proposal })),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "id",
            format!("no proposal {pid}"),
        )),
    }
}

async fn decide_proposal(state: &Shared, pid: &str, approved: bool, body: &[u8]) -> Answer {
    let body: Decision = body_or_default(body)?;
    let who = actor(body.actor)?;
    let reason = body.reason.unwrap_or_else(|| {
        if approved {
            "approved".to_owned()
        } else {
            "rejected".to_owned()
        }
    });
    let pipeline = pipeline_of(state)?;
    let now = state.now_ms();
    let proposal = pipeline
        .decide(state, pid, approved, &who, &reason, now)
        .await?;
    ok(json!({ "proposal": proposal }))
}

async fn approve_proposal(
    State(state): State<Shared>,
    Path(pid): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    decide_proposal(&state, &pid, true, &body?).await
}

async fn reject_proposal(
    State(state): State<Shared>,
    Path(pid): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    decide_proposal(&state, &pid, false, &body?).await
}

/// `POST /v1/proposals/{pid}/revert` ([`Pipeline::revert`]).
async fn revert_proposal(
    State(state): State<Shared>,
    Path(pid): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body: Decision = body_or_default(&body?)?;
    let who = actor(body.actor)?;
    let pipeline = pipeline_of(&state)?;
    let now = state.now_ms();
    let (ticket, proposal) = pipeline
        .revert(&state, &pid, &who, body.reason.as_deref(), now)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "ticket": ticket, "proposal": proposal })),
    )
        .into_response())
}

/// The ticket's proposal awaiting approval (`floodgate ticket approve ID`).
async fn awaiting_of(state: &Shared, id: String) -> Result<String, ApiError> {
    let store = Arc::clone(state.store());
    let lookup = id.clone();
    let proposals = blocking(move || {
        store
            .get(&lookup)?
            .ok_or_else(|| StoreError::NotFound(lookup.clone()))?;
        store.proposals_of(&lookup)
    })
    .await?;
    proposals
        .iter()
        .find(|p| p.stage == Stage::AwaitingApproval)
        .map(|p| p.id.clone())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "state",
                format!("{id} has no proposal awaiting approval"),
            )
        })
}

async fn approve_ticket(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = body?;
    let pid = awaiting_of(&state, id).await?;
    decide_proposal(&state, &pid, true, &body).await
}

async fn reject_ticket(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = body?;
    let pid = awaiting_of(&state, id).await?;
    decide_proposal(&state, &pid, false, &body).await
}

async fn actions(State(state): State<Shared>) -> Answer {
    let pipeline = state.pipeline().cloned();
    let actions: Vec<Value> = floodgate_contract::actions::CATALOG
        .iter()
        .map(|def| {
            let gated = pipeline
                .as_ref()
                .and_then(|p| p.policy().needs_approval(def.name, def.risk));
            let mut info = serde_json::to_value(def.info()).unwrap_or_default();
            if let Value::Object(map) = &mut info {
                map.insert("needs_approval".into(), json!(gated.is_some()));
                map.insert("approval_reason".into(), json!(gated));
            }
            info
        })
        .collect();
    ok(json!({ "actions": actions }))
}

async fn observe_series(
    State(state): State<Shared>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Answer {
    let Query(query) = query?;
    only_params(&query, Operation::ObserveSeries)?;
    let text = query.get("selector").ok_or_else(|| {
        ApiError::invalid(
            "selector",
            "required, e.g. floodgate_requests_total{code=\"over_limit\"}",
        )
    })?;
    let selector = Selector::parse(text).map_err(|error| ApiError::invalid("selector", error))?;
    let window_ms = parse_u64(&query, "window_ms")?.unwrap_or(15 * crate::quantity::MINUTE_MS);
    if window_ms == 0 || window_ms > crate::tickets::criteria::MAX_SUSTAIN_MS {
        return Err(ApiError::invalid(
            "window_ms",
            format!("must be 1 to {}", crate::tickets::criteria::MAX_SUSTAIN_MS),
        ));
    }
    let step_ms = parse_u64(&query, "step_ms")?
        .unwrap_or_else(|| (window_ms / 60).max(crate::quantity::SECOND_MS));
    if step_ms == 0 || window_ms / step_ms > MAX_SERIES_POINTS {
        return Err(ApiError::invalid(
            "step_ms",
            format!("must be at least window_ms / {MAX_SERIES_POINTS} and above 0"),
        ));
    }
    let rate = match query.get("rate").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "rate",
                format!("{other:?} is not true or false"),
            ))
        }
    };
    let now = state.now_ms();
    let points = state.harness().tsdb().range(
        &selector,
        rate.then_some(step_ms.max(crate::quantity::MINUTE_MS)),
        now.saturating_sub(window_ms),
        now,
        step_ms,
    );
    ok(json!({
        "selector": text,
        "time_ms": now,
        "window_ms": window_ms,
        "step_ms": step_ms,
        "rate": rate,
        "points": points,
    }))
}

fn service_of(state: &Shared, query: &BTreeMap<String, String>) -> Result<Target, ApiError> {
    let pipeline = pipeline_of(state)?;
    let targets = pipeline.targets();
    match query.get("service") {
        None => Ok(targets[0].clone()),
        Some(name) => targets
            .iter()
            .find(|target| &target.name == name)
            .cloned()
            .ok_or_else(|| {
                let known: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
                ApiError::invalid(
                    "service",
                    format!(
                        "{name:?} is not a service of this harness (known: {})",
                        known.join(", ")
                    ),
                )
            }),
    }
}

fn upstream(error: ClientError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "upstream",
        "service",
        error.to_string(),
    )
}

async fn observe_state(
    State(state): State<Shared>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Answer {
    let Query(query) = query?;
    only_params(&query, Operation::ObserveState)?;
    let target = service_of(&state, &query)?;
    let service_state = target.transport.state().await.map_err(upstream)?;
    ok(json!({ "service": target.name, "state": service_state }))
}

async fn evidence(
    State(state): State<Shared>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Answer {
    let Query(query) = query?;
    only_params(&query, Operation::Evidence)?;
    let pipeline = pipeline_of(&state)?;
    let mut states = Vec::new();
    let mut unreachable = Vec::new();
    let mut config_changes = None;
    for target in pipeline.targets() {
        match target.transport.state().await {
            Ok(service_state) => {
                states.push((target.name.clone(), service_state));
                if config_changes.is_none() {
                    let limit = crate::observe::evidence::MAX_CONFIG_CHANGES as u64;
                    config_changes = target
                        .transport
                        .config_versions(None, Some(limit))
                        .await
                        .ok()
                        .map(|page| page.versions);
                }
            }
            Err(error) => {
                unreachable.push(json!({"service": target.name, "error": error.to_string()}))
            }
        }
    }
    if states.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream",
            "service",
            format!("no service answered: {unreachable:?}"),
        ));
    }
    let mut evidence = crate::observe::evidence::build(
        &states,
        &config_changes.unwrap_or_default(),
        state.now_ms(),
    );
    state.harness().rejecting_since().mark(&mut evidence);
    let mut document = json!(evidence);
    document["unreachable"] = json!(unreachable);
    ok(document)
}

async fn observe_events(
    State(state): State<Shared>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Answer {
    let Query(query) = query?;
    only_params(&query, Operation::ObserveEvents)?;
    let target = service_of(&state, &query)?;
    let events_query = EventQuery {
        after: parse_u64(&query, "after")?.unwrap_or(0),
        types: query
            .get("type")
            .map(|types| {
                types
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        limit: parse_u64(&query, "limit")?,
        wait_ms: None,
    };
    let page = target
        .transport
        .events(&events_query)
        .await
        .map_err(upstream)?;
    ok(json!({ "service": target.name, "page": page }))
}

async fn pipeline_status(State(state): State<Shared>) -> Answer {
    let pipeline = pipeline_of(&state)?;
    let status = pipeline.status(&state, state.now_ms()).await?;
    ok(json!(status))
}

async fn set_pause(state: Shared, paused: bool, body: &[u8]) -> Answer {
    let body: Decision = body_or_default(body)?;
    let who = actor(body.actor)?;
    let reason = body.reason.unwrap_or_default();
    let pipeline = pipeline_of(&state)?;
    let status = pipeline
        .set_paused(&state, paused, &who, &reason, state.now_ms())
        .await?;
    ok(json!(status))
}

async fn pause(State(state): State<Shared>, body: Result<Bytes, BytesRejection>) -> Answer {
    set_pause(state, true, &body?).await
}

async fn resume(State(state): State<Shared>, body: Result<Bytes, BytesRejection>) -> Answer {
    set_pause(state, false, &body?).await
}

async fn ask_question(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body: QuestionRequest = parse_body(&body?)?;
    let agent = actor(Some(body.agent))?;
    let pipeline = pipeline_of(&state)?;
    let now = state.now_ms();
    let proposal = pipeline
        .ask(&state, &id, &agent, &body.question, now)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "proposal": proposal }))).into_response())
}

/// The largest agent step accepted, serialised.
pub const MAX_STEP_BYTES: usize = 64 * 1024;

async fn agent_step(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = body?;
    if body.len() > MAX_STEP_BYTES {
        return Err(ApiError::invalid(
            "body",
            format!("{} bytes, more than {MAX_STEP_BYTES}", body.len()),
        ));
    }
    let step: StepRequest = parse_body(&body)?;
    let agent = actor(Some(step.agent))?;
    if step.message.as_deref().is_none_or(str::is_empty) && step.tool_calls.is_empty() {
        return Err(ApiError::invalid(
            "message",
            "a step says something or calls a tool",
        ));
    }
    let data = json!({
        "message": step.message,
        "reasoning": step.reasoning,
        "tool_calls": step.tool_calls,
        "observation": step.observation,
    });
    let now = state.now_ms();
    let store = Arc::clone(state.store());
    blocking(move || store.agent_step(&id, &agent, &data, now)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "recorded": true }))).into_response())
}

async fn list_trajectories(
    State(state): State<Shared>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Answer {
    let Query(query) = query?;
    only_params(&query, Operation::ListTrajectories)?;
    let after = match query.get("after") {
        Some(after) => crate::tickets::ticket_number(after)
            .or_else(|| after.parse().ok())
            .ok_or_else(|| {
                ApiError::invalid("after", format!("{after:?} is not a ticket id or number"))
            })?,
        None => 0,
    };
    let limit = parse_u64(&query, "limit")?.map_or(100, |limit| limit.clamp(1, 1000) as usize);
    let store = Arc::clone(state.store());
    let trajectories = blocking(move || {
        let ids = store.trajectory_ids(after, limit)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(trajectory) = store.trajectory(&id)? {
                out.push(trajectory);
            }
        }
        Ok(out)
    })
    .await?;
    ok(json!({ "trajectories": trajectories }))
}

async fn show_trajectory(State(state): State<Shared>, Path(id): Path<String>) -> Answer {
    let store = Arc::clone(state.store());
    let lookup = id.clone();
    match blocking(move || store.trajectory(&lookup)).await? {
        Some(trajectory) => ok(json!({ "trajectory": trajectory })),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "id",
            format!("no trajectory for {id} (no agent has claimed it)"),
        )),
    }
}

async fn reflect_now(State(state): State<Shared>) -> Answer {
    let now = state.now_ms();
    let shared = Arc::clone(&state);
    let report = blocking(move || shared.reflect(now)).await?;
    ok(json!(report))
}

async fn reflection_state(State(state): State<Shared>) -> Answer {
    let store = Arc::clone(state.store());
    let stored = blocking(move || crate::run::reflector::load(&store)).await?;
    ok(json!({
        "last_ms": stored.last_ms,
        "suspended": stored.suspended,
        "help": stored.help,
        "flapping": stored.state.flapping,
    }))
}

// ---- expected-change notices (docs/adr/0011-expected-change-notices.md) ----

async fn create_notice(State(state): State<Shared>, body: Result<Bytes, BytesRejection>) -> Answer {
    let draft: NoticeDraft = parse_body(&body?)?;
    let now = state.now_ms();
    let notice = draft
        .validate(now)
        .map_err(|refused| ApiError::invalid(&refused.path, refused.message))?;
    let store = Arc::clone(state.store());
    let notice = blocking(move || store.create_notice(&notice, now)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "notice": notice.view(now) })),
    )
        .into_response())
}

async fn list_notices(
    State(state): State<Shared>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Answer {
    let Query(query) = query?;
    only_params(&query, Operation::ListNotices)?;
    let mut filter = NoticeFilter::default();
    match query.get("state").map(String::as_str) {
        None | Some("all") => {}
        Some(name) => {
            filter.state = Some(NoticeState::parse(name).ok_or_else(|| {
                ApiError::invalid(
                    "state",
                    format!("{name:?} is not a state (expected active, pending, expired or all)"),
                )
            })?);
        }
    }
    (filter.after_number, filter.limit) =
        paging(&query, "notice", crate::tickets::notices::notice_number)?;
    let now = state.now_ms();
    let store = Arc::clone(state.store());
    let notices = blocking(move || store.list_notices(&filter, now)).await?;
    let notices: Vec<Value> = notices.iter().map(|notice| notice.view(now)).collect();
    ok(json!({ "time_ms": now, "notices": notices }))
}

async fn show_notice(State(state): State<Shared>, Path(id): Path<String>) -> Answer {
    let store = Arc::clone(state.store());
    let (notice, history) = blocking(move || {
        let notice = store.get_notice(&id)?.ok_or_else(|| StoreError::NoSuch {
            what: "notice",
            id: id.clone(),
        })?;
        let history = store.history(&id)?;
        Ok((notice, history))
    })
    .await?;
    ok(json!({ "notice": notice.view(state.now_ms()), "history": history }))
}

async fn expire_notice(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body: Decision = body_or_default(&body?)?;
    let who = actor(body.actor)?;
    let reason = body
        .reason
        .filter(|reason| !reason.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("reason", "say why the change is no longer expected"))?;
    if reason.len() > crate::tickets::notices::MAX_REASON_BYTES {
        return Err(ApiError::invalid(
            "reason",
            format!(
                "longer than {} bytes",
                crate::tickets::notices::MAX_REASON_BYTES
            ),
        ));
    }
    let now = state.now_ms();
    let store = Arc::clone(state.store());
    let notice = blocking(move || store.expire_notice(&id, &who, &reason, now)).await?;
    ok(json!({ "notice": notice.view(now) }))
}
