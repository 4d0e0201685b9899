//! Every route of the harness API, in one table: what the router serves,
//! what the access layer asks for, what the OpenAPI document describes and
//! what the client calls all come from [`ROUTES`].
//!
//! A path's `{name}` is one non-empty path segment (axum's syntax, which
//! the harness router is built with). A method and path the table does
//! not list needs `admin` ([`needed`]), so a route added without a line
//! here is closed, not open.

use crate::scope::Scope;
use crate::types;
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// An HTTP method of the harness API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// One operation of the harness API: the name a handler is found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Health,
    OpenApi,
    Slos,
    Invariants,
    Anomalies,
    ListTickets,
    CreateTicket,
    ShowTicket,
    CommentTicket,
    CancelTicket,
    LinkTicket,
    ListIncidents,
    TicketCriteria,
    Alertmanager,
    Ledger,
    Claim,
    Release,
    Renew,
    Escalate,
    Propose,
    TicketProposals,
    Ask,
    Step,
    ApproveTicket,
    RejectTicket,
    ShowProposal,
    ApproveProposal,
    RejectProposal,
    RevertProposal,
    Actions,
    ObserveSeries,
    ObserveState,
    ObserveEvents,
    Evidence,
    Pipeline,
    Pause,
    Resume,
    ListTrajectories,
    ShowTrajectory,
    Reflect,
    Reflection,
    ListNotices,
    CreateNotice,
    ShowNotice,
    ExpireNotice,
    /// MCP over streamable HTTP, mounted beside the API by `floodgate
    /// harness serve` (its tools are the agent interface).
    Mcp,
}

/// A query parameter: its name and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub description: &'static str,
}

const fn param(name: &'static str, description: &'static str) -> Param {
    Param { name, description }
}

/// Describes a JSON body's type in the OpenAPI document.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What a route's request body is.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    None,
    /// A JSON document of one type; `optional` when an empty body stands
    /// for its default.
    Json {
        schema: SchemaFn,
        optional: bool,
    },
    /// A ticket file: the seed's YAML (`ticket: {...}`) or JSON (the same,
    /// or the inner object).
    TicketFile,
    /// An Alertmanager webhook (version 4) payload.
    AlertmanagerWebhook,
    /// MCP's JSON-RPC messages.
    JsonRpc,
}

const fn json(schema: SchemaFn) -> Body {
    Body::Json {
        schema,
        optional: false,
    }
}

const fn json_or_empty(schema: SchemaFn) -> Body {
    Body::Json {
        schema,
        optional: true,
    }
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub operation: Operation,
    pub method: Method,
    pub path: &'static str,
    pub scope: Scope,
    pub summary: &'static str,
    pub query: &'static [Param],
    pub body: Body,
    /// The answer: its top-level fields and what they hold.
    pub answer: &'static str,
    /// The status of a successful answer.
    pub status: u16,
}

const AFTER: Param = param("after", "only items after this id (or its number)");
const LIMIT: Param = param("limit", "at most this many (capped by the harness)");
const SERVICE: Param = param("service", "the service's name in the harness's objectives");

const fn get(
    operation: Operation,
    path: &'static str,
    summary: &'static str,
    query: &'static [Param],
    answer: &'static str,
) -> Route {
    Route {
        operation,
        method: Method::Get,
        path,
        scope: Scope::Read,
        summary,
        query,
        body: Body::None,
        answer,
        status: 200,
    }
}

const fn post(
    operation: Operation,
    path: &'static str,
    scope: Scope,
    summary: &'static str,
    body: Body,
    answer: &'static str,
) -> Route {
    Route {
        operation,
        method: Method::Post,
        path,
        scope,
        summary,
        query: &[],
        body,
        answer,
        status: 200,
    }
}

const fn created(route: Route) -> Route {
    Route {
        status: 201,
        ..route
    }
}

use Operation as Op;

/// Every route of the harness API.
pub static ROUTES: &[Route] = &[
    get(Op::Health, "/v1/health", "The loop's status: ticks, targets (up, errors, event cursor), the series store.", &[], "`{status, time_ms, ticks, last_tick_ms, last_errors, targets, tsdb}`"),
    get(Op::OpenApi, "/v1/openapi.json", "This document (also committed as docs/catalog/harness-openapi.json).", &[], "the OpenAPI 3.1 document"),
    get(Op::Slos, "/v1/slos", "Every SLO at the last tick: SLI, budget remaining, burn rate per window, time to exhaustion, alert rules.", &[], "`{time_ms, slos}`"),
    get(Op::Invariants, "/v1/invariants", "Every invariant at the last tick.", &[], "`{time_ms, defined, invariants}`"),
    get(Op::Anomalies, "/v1/anomalies", "Every anomaly detector at the last tick.", &[], "`{time_ms, anomalies}`"),
    get(Op::ListTickets, "/v1/tickets", "Tickets, oldest first.", &[param("state", "comma-separated ticket states"), param("source", "slo, invariant, anomaly, human, alertmanager or reflection"), AFTER, LIMIT], "`{tickets}`"),
    created(Route { query: &[param("file", "the file name errors name (1 to 256 bytes)")], ..post(Op::CreateTicket, "/v1/tickets", Scope::Intake, "File a ticket (`Idempotency-Key` header optional; 200 when the key or fingerprint was already filed).", Body::TicketFile, "`{ticket, action}`") }),
    get(Op::ShowTicket, "/v1/tickets/{id}", "A ticket with its history and proposals.", &[], "`{ticket, history, proposals}`"),
    post(Op::CommentTicket, "/v1/tickets/{id}/comment", Scope::Operate, "Comment on a ticket.", json(schema_of::<types::CommentRequest>), "`{ticket}`"),
    post(Op::CancelTicket, "/v1/tickets/{id}/cancel", Scope::Admin, "Cancel a ticket.", json_or_empty(schema_of::<types::Decision>), "`{ticket}`"),
    post(Op::LinkTicket, "/v1/tickets/{id}/link", Scope::Operate, "Make an open ticket a member of the incident an active ticket owns, or take it out (ADR 0016).", json(schema_of::<types::LinkRequest>), "`{ticket}`"),
    get(Op::ListIncidents, "/v1/incidents", "Incidents with members, newest first: owner, its causes and state, members (ADR 0016).", &[param("limit", "1 to the list cap; default 100")], "`{incidents}`"),
    get(Op::TicketCriteria, "/v1/tickets/{id}/criteria", "A ticket's acceptance criteria, evaluated now.", &[], "`{ticket, time_ms, criteria, met}`"),
    post(Op::Alertmanager, "/v1/alertmanager", Scope::Intake, "Alertmanager webhook v4 (idempotent by groupKey + fingerprint + startsAt).", Body::AlertmanagerWebhook, "`{filed, resolved}`"),
    get(Op::Ledger, "/v1/ledger", "Ledger entries after a sequence number, and the head.", &[param("after", "only entries after this sequence number"), LIMIT], "`{entries, head}`"),
    post(Op::Claim, "/v1/agent/claim", Scope::Operate, "Claim the most urgent open ticket (or a named one); `{\"ticket\": null}` when none.", json(schema_of::<types::ClaimRequest>), "`{ticket}`"),
    post(Op::Release, "/v1/tickets/{id}/release", Scope::Operate, "Give a claimed ticket back to the queue.", json(schema_of::<types::LeaseRequest>), "`{ticket}`"),
    post(Op::Renew, "/v1/tickets/{id}/renew", Scope::Operate, "Extend a claim.", json(schema_of::<types::LeaseRequest>), "`{ticket}`"),
    post(Op::Escalate, "/v1/tickets/{id}/escalate", Scope::Operate, "Hand a ticket to a human (`reason` required).", json_or_empty(schema_of::<types::Decision>), "`{ticket}`"),
    created(post(Op::Propose, "/v1/tickets/{id}/proposals", Scope::Operate, "Propose changes: into the pipeline; answers after the test stage.", json(schema_of::<types::ProposalRequest>), "`{proposal}`")),
    get(Op::TicketProposals, "/v1/tickets/{id}/proposals", "A ticket's proposals with every stage's record.", &[], "`{proposals}`"),
    created(post(Op::Ask, "/v1/tickets/{id}/questions", Scope::Operate, "Ask a human (a proposal with no actions, awaiting approval).", json(schema_of::<types::QuestionRequest>), "`{proposal}`")),
    created(post(Op::Step, "/v1/tickets/{id}/steps", Scope::Operate, "The claimant records a step of its work (at most 64 KiB).", json(schema_of::<types::StepRequest>), "`{recorded}`")),
    post(Op::ApproveTicket, "/v1/tickets/{id}/approve", Scope::Admin, "Approve the proposal a ticket awaits.", json_or_empty(schema_of::<types::Decision>), "`{proposal}`"),
    post(Op::RejectTicket, "/v1/tickets/{id}/reject", Scope::Admin, "Reject the proposal a ticket awaits.", json_or_empty(schema_of::<types::Decision>), "`{proposal}`"),
    get(Op::ShowProposal, "/v1/proposals/{pid}", "A proposal with every stage's record.", &[], "`{proposal}`"),
    post(Op::ApproveProposal, "/v1/proposals/{pid}/approve", Scope::Admin, "A human approves a proposal awaiting approval.", json_or_empty(schema_of::<types::Decision>), "`{proposal}`"),
    post(Op::RejectProposal, "/v1/proposals/{pid}/reject", Scope::Admin, "A human rejects a proposal awaiting approval.", json_or_empty(schema_of::<types::Decision>), "`{proposal}`"),
    created(post(Op::RevertProposal, "/v1/proposals/{pid}/revert", Scope::Admin, "Undo a finished proposal's applied changes with their recorded inverses, as a new ticket and proposal through the pipeline (409 naming why not).", json_or_empty(schema_of::<types::Decision>), "`{ticket, proposal}`")),
    get(Op::Actions, "/v1/actions", "The service action catalog, with risk and whether the policy gates each action.", &[], "`{actions}`"),
    get(Op::ObserveSeries, "/v1/observe/series", "Points from the harness's series store.", &[param("selector", "a metric selector, e.g. floodgate_requests_total{code=\"over_limit\"} (required)"), param("window_ms", "how far back (default 15 minutes)"), param("step_ms", "the step between points"), param("rate", "true: per-second rates of a counter")], "`{selector, series}`"),
    get(Op::ObserveState, "/v1/observe/state", "A service's state, through the harness.", &[SERVICE], "the service's `GET /v1/state`"),
    get(Op::ObserveEvents, "/v1/observe/events", "A service's events, through the harness.", &[SERVICE, param("after", "only events after this sequence number"), LIMIT, param("type", "comma-separated event types")], "the service's `GET /v1/events`"),
    get(Op::Evidence, "/v1/evidence", "Which limits reject, for which descriptor values, demand against the limit, store health, the latest config changes: every instance merged (ADR 0014).", &[], "the evidence document"),
    get(Op::Pipeline, "/v1/pipeline", "The pipeline: paused?, freeze window, proposals in flight.", &[], "`{paused, …}`"),
    post(Op::Pause, "/v1/pause", Scope::Admin, "Pause the pipeline.", json_or_empty(schema_of::<types::Decision>), "the pipeline's status"),
    post(Op::Resume, "/v1/resume", Scope::Admin, "Resume the pipeline.", json_or_empty(schema_of::<types::Decision>), "the pipeline's status"),
    get(Op::ListTrajectories, "/v1/trajectories", "Trajectories (ATIF v1.x + operations fields), oldest first.", &[AFTER, LIMIT], "`{trajectories}`"),
    get(Op::ShowTrajectory, "/v1/trajectories/{id}", "One trajectory.", &[], "the trajectory"),
    post(Op::Reflect, "/v1/reflect", Scope::Admin, "Reflect now: findings, help tickets, suspensions.", Body::None, "the reflection's outcome"),
    get(Op::Reflection, "/v1/reflection", "What reflection keeps.", &[], "`{findings, suspended, …}`"),
    get(Op::ListNotices, "/v1/notices", "Expected-change notices, oldest first (ADR 0011).", &[param("state", "active, pending, expired or all"), AFTER, LIMIT], "`{notices}`"),
    created(post(Op::CreateNotice, "/v1/notices", Scope::Intake, "Announce an expected change (ADR 0011).", json(schema_of::<types::NoticeRequest>), "`{notice}`")),
    get(Op::ShowNotice, "/v1/notices/{id}", "A notice and its history.", &[], "`{notice, history}`"),
    post(Op::ExpireNotice, "/v1/notices/{id}/expire", Scope::Intake, "End a notice now (409 when already expired).", json(schema_of::<types::Decision>), "`{notice}`"),
    post(Op::Mcp, "/mcp", Scope::Operate, "MCP over streamable HTTP: the agent interface's tools.", Body::JsonRpc, "JSON-RPC"),
    Route { method: Method::Get, ..post(Op::Mcp, "/mcp", Scope::Operate, "MCP's server-to-client stream.", Body::None, "an event stream") },
    Route { method: Method::Delete, ..post(Op::Mcp, "/mcp", Scope::Operate, "Ends an MCP session.", Body::None, "no content") },
];

/// Whether `path` is an instance of `pattern` (`{name}`: one non-empty
/// segment).
pub fn matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(segment), Some(actual))
                if segment.starts_with('{') && segment.ends_with('}') && !actual.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The route serving `method path` (`HEAD` as `GET`), if any.
pub fn find(method: &str, path: &str) -> Option<&'static Route> {
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES
        .iter()
        .find(|route| route.method.as_str() == method && matches(route.path, path))
}

/// What a request for `method path` needs: its route's scope, else
/// `admin`.
pub fn needed(method: &str, path: &str) -> Scope {
    find(method, path).map_or(Scope::Admin, |route| route.scope)
}

/// The route of `operation` (the first, for MCP's three).
pub fn route(operation: Operation) -> &'static Route {
    ROUTES
        .iter()
        .find(|route| route.operation == operation)
        .expect("every operation has a route (tested)")
}

/// The query parameter names `operation` accepts.
pub fn query_names(operation: Operation) -> Vec<&'static str> {
    route(operation)
        .query
        .iter()
        .map(|param| param.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_scopes_reads_agents_admins_and_intake() {
        for (method, path, scope) in [
            ("GET", "/v1/health", Scope::Read),
            ("HEAD", "/v1/tickets", Scope::Read),
            ("GET", "/v1/tickets/INF-0001", Scope::Read),
            ("GET", "/v1/tickets/INF-0001/criteria", Scope::Read),
            ("GET", "/v1/openapi.json", Scope::Read),
            ("POST", "/v1/tickets/INF-0001/comment", Scope::Operate),
            ("POST", "/v1/agent/claim", Scope::Operate),
            ("POST", "/v1/tickets/INF-0001/proposals", Scope::Operate),
            ("POST", "/v1/proposals/P-1/approve", Scope::Admin),
            ("POST", "/v1/proposals/P-1/revert", Scope::Admin),
            ("POST", "/v1/pause", Scope::Admin),
            ("POST", "/v1/tickets/INF-0001/cancel", Scope::Admin),
            ("POST", "/v1/tickets", Scope::Intake),
            ("POST", "/v1/alertmanager", Scope::Intake),
            ("GET", "/v1/notices", Scope::Read),
            ("GET", "/v1/notices/N-0001", Scope::Read),
            ("POST", "/v1/notices", Scope::Intake),
            ("POST", "/v1/notices/N-0001/expire", Scope::Intake),
            ("DELETE", "/mcp", Scope::Operate),
            // Not in the table: admin only.
            ("POST", "/v1/notices/N-0001", Scope::Admin),
            ("GET", "/v1/secret", Scope::Admin),
            ("DELETE", "/v1/tickets/INF-0001", Scope::Admin),
            ("POST", "/v1/tickets/INF-0001/resolve", Scope::Admin),
            ("GET", "/v1/tickets//criteria", Scope::Admin),
            ("GET", "/v1/tickets/INF-0001/criteria/x", Scope::Admin),
        ] {
            assert_eq!(needed(method, path), scope, "{method} {path}");
        }
    }

    #[test]
    fn every_operation_has_a_route_and_no_route_is_listed_twice() {
        let mut seen = std::collections::BTreeSet::new();
        for route in ROUTES {
            assert!(
                seen.insert((route.method.as_str(), route.path)),
                "{} {} is listed twice",
                route.method.as_str(),
                route.path
            );
            assert!(route.path.starts_with('/'), "{}", route.path);
            assert!(!route.summary.is_empty(), "{}", route.path);
            if route.method == Method::Get {
                assert!(
                    matches!(route.body, Body::None),
                    "{} has a body",
                    route.path
                );
            }
        }
        // `route` panics when an operation has no line.
        for operation in ALL_OPERATIONS {
            assert_eq!(route(operation).operation, operation);
        }
    }

    const ALL_OPERATIONS: [Operation; 46] = [
        Op::Health,
        Op::OpenApi,
        Op::Slos,
        Op::Invariants,
        Op::Anomalies,
        Op::ListTickets,
        Op::CreateTicket,
        Op::ShowTicket,
        Op::CommentTicket,
        Op::CancelTicket,
        Op::LinkTicket,
        Op::ListIncidents,
        Op::TicketCriteria,
        Op::Alertmanager,
        Op::Ledger,
        Op::Claim,
        Op::Release,
        Op::Renew,
        Op::Escalate,
        Op::Propose,
        Op::TicketProposals,
        Op::Ask,
        Op::Step,
        Op::ApproveTicket,
        Op::RejectTicket,
        Op::ShowProposal,
        Op::ApproveProposal,
        Op::RejectProposal,
        Op::RevertProposal,
        Op::Actions,
        Op::ObserveSeries,
        Op::ObserveState,
        Op::ObserveEvents,
        Op::Evidence,
        Op::Pipeline,
        Op::Pause,
        Op::Resume,
        Op::ListTrajectories,
        Op::ShowTrajectory,
        Op::Reflect,
        Op::Reflection,
        Op::ListNotices,
        Op::CreateNotice,
        Op::ShowNotice,
        Op::ExpireNotice,
        Op::Mcp,
    ];
}
