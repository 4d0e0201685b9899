//! The typed client of the harness API, one method per route, over the
//! contract's raw [`Transport`] (HTTP, or the harness router in process).
//!
//! Every call is built from its line of [`ROUTES`](crate::routes::ROUTES):
//! the method and the path pattern come from the table (each `{name}`
//! replaced by a percent-encoded argument, so an id can never address
//! another endpoint), and request bodies are the [`types`](crate::types).
//! Answers are [`serde_json::Value`]s: the client checks the status and
//! that the body is JSON, and leaves the shapes to the caller (the tool
//! catalog hands them to a model as they are). Errors are the contract's
//! [`ClientError`]: an error status with the harness's
//! `{"error": {"kind", "field", "message"}}` body is
//! [`ClientError::Api`]; anything else unexpected is
//! [`ClientError::Decode`]; an unreachable or silent harness is
//! [`ClientError::Transport`] (every call is bounded by
//! [`HarnessClient::with_timeout`]).

use crate::routes::{self, Method as RouteMethod, Operation};
use crate::types::{
    ClaimRequest, CommentRequest, Decision, LeaseRequest, LinkRequest, NoticeRequest,
    ProposalRequest, QuestionRequest, ServiceEventsQuery, StepRequest, TicketQuery,
};
#[cfg(feature = "http")]
use floodgate_contract::client::HttpTransport;
use floodgate_contract::client::{percent_encode, Method, RawRequest, RawResponse};
pub use floodgate_contract::client::{ClientError, Transport};
use floodgate_contract::state::ErrorBody;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The agent name a client uses unless told otherwise.
pub const DEFAULT_AGENT: &str = "agent";
/// The bound on one call unless told otherwise: a harness that does not
/// answer within it is treated as unreachable.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest body quoted in a decode error.
const PREVIEW_BYTES: usize = 256;

/// The harness API over one transport.
#[derive(Clone)]
pub struct HarnessClient {
    transport: Arc<dyn Transport>,
    agent: String,
    timeout: Duration,
}

impl std::fmt::Debug for HarnessClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HarnessClient")
            .field("agent", &self.agent)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A query string under construction.
#[derive(Debug, Default)]
struct Query {
    text: String,
}

impl Query {
    fn add(&mut self, key: &str, value: &str) -> &mut Query {
        self.text.push(if self.text.is_empty() { '?' } else { '&' });
        self.text.push_str(key);
        self.text.push('=');
        self.text.push_str(&percent_encode(value));
        self
    }

    fn add_some(&mut self, key: &str, value: Option<impl ToString>) -> &mut Query {
        if let Some(value) = value {
            self.add(key, &value.to_string());
        }
        self
    }
}

/// `operation`'s path with each `{name}` replaced by the next of `ids`,
/// percent-encoded.
fn path_of(operation: Operation, ids: &[&str]) -> String {
    let mut ids = ids.iter();
    routes::route(operation)
        .path
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                percent_encode(ids.next().copied().unwrap_or_default())
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn preview(body: &[u8]) -> String {
    floodgate_contract::text::cut(&String::from_utf8_lossy(body), PREVIEW_BYTES).to_owned()
}

impl HarnessClient {
    /// A client over `transport`, acting as [`DEFAULT_AGENT`].
    pub fn new(transport: Arc<dyn Transport>) -> HarnessClient {
        HarnessClient {
            transport,
            agent: DEFAULT_AGENT.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A client over HTTP: `base` like `http://127.0.0.1:8090`, `token`
    /// sent as a bearer token when given.
    #[cfg(feature = "http")]
    pub fn http(base: impl Into<String>, token: Option<String>) -> HarnessClient {
        HarnessClient::new(Arc::new(HttpTransport::new(base, token)))
    }

    /// The same client acting as `agent` (the name the tool layer puts in
    /// claims, proposals, comments and escalations).
    pub fn with_agent(mut self, agent: impl Into<String>) -> HarnessClient {
        self.agent = agent.into();
        self
    }

    /// The same client with every call bounded by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> HarnessClient {
        self.timeout = timeout;
        self
    }

    /// The name this client acts as.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// One call of `operation`: the path from its route with `ids`, the
    /// query, and a body already serialised.
    async fn exchange(
        &self,
        operation: Operation,
        ids: &[&str],
        query: &Query,
        body: Option<Vec<u8>>,
    ) -> Result<Value, ClientError> {
        let route = routes::route(operation);
        let method = match route.method {
            RouteMethod::Get => Method::Get,
            RouteMethod::Post => Method::Post,
            RouteMethod::Delete => {
                return Err(ClientError::Transport(format!(
                    "DELETE {} is not an API call",
                    route.path
                )))
            }
        };
        let path = format!("{}{}", path_of(operation, ids), query.text);
        let request = RawRequest {
            method,
            path: path.clone(),
            body,
        };
        let response: RawResponse =
            match tokio::time::timeout(self.timeout, self.transport.send(request)).await {
                Ok(result) => result?,
                Err(_) => {
                    return Err(ClientError::Transport(format!(
                        "{path}: no answer within {} ms",
                        self.timeout.as_millis()
                    )))
                }
            };
        if !(200..300).contains(&response.status) {
            let error = serde_json::from_slice::<ErrorBody>(&response.body).map_err(|_| {
                ClientError::Decode(format!(
                    "HTTP {} with a body that is not an error document: {}",
                    response.status,
                    preview(&response.body)
                ))
            })?;
            return Err(ClientError::Api {
                status: response.status,
                error,
            });
        }
        serde_json::from_slice(&response.body).map_err(|error| {
            ClientError::Decode(format!(
                "HTTP {} with a body that is not JSON ({error}): {}",
                response.status,
                preview(&response.body)
            ))
        })
    }

    async fn get(&self, operation: Operation, ids: &[&str]) -> Result<Value, ClientError> {
        self.exchange(operation, ids, &Query::default(), None).await
    }

    async fn post(
        &self,
        operation: Operation,
        ids: &[&str],
        body: &(impl Serialize + ?Sized),
    ) -> Result<Value, ClientError> {
        let body =
            serde_json::to_vec(body).map_err(|error| ClientError::Decode(error.to_string()))?;
        self.exchange(operation, ids, &Query::default(), Some(body))
            .await
    }

    // ---- the loop ----

    /// `GET /v1/health`.
    pub async fn health(&self) -> Result<Value, ClientError> {
        self.get(Operation::Health, &[]).await
    }

    /// `GET /v1/slos`.
    pub async fn slos(&self) -> Result<Value, ClientError> {
        self.get(Operation::Slos, &[]).await
    }

    /// `GET /v1/invariants`.
    pub async fn invariants(&self) -> Result<Value, ClientError> {
        self.get(Operation::Invariants, &[]).await
    }

    /// `GET /v1/anomalies`.
    pub async fn anomalies(&self) -> Result<Value, ClientError> {
        self.get(Operation::Anomalies, &[]).await
    }

    // ---- tickets ----

    /// `POST /v1/tickets?file=NAME`: a ticket file's text (YAML, or JSON)
    /// as is; `{ticket, action}` (`created`, or what happened to the
    /// ticket it matched).
    pub async fn create_ticket(
        &self,
        file: Option<&str>,
        text: &str,
    ) -> Result<Value, ClientError> {
        let mut query = Query::default();
        query.add_some("file", file);
        self.exchange(
            Operation::CreateTicket,
            &[],
            &query,
            Some(text.as_bytes().to_vec()),
        )
        .await
    }

    /// `POST /v1/tickets`: a ticket as JSON (the inner object).
    pub async fn create_ticket_json(&self, ticket: &Value) -> Result<Value, ClientError> {
        self.post(Operation::CreateTicket, &[], ticket).await
    }

    /// `GET /v1/tickets?…`: `{tickets}`.
    pub async fn list_tickets(&self, query: &TicketQuery) -> Result<Value, ClientError> {
        let mut params = Query::default();
        if !query.states.is_empty() {
            params.add("state", &query.states.join(","));
        }
        params
            .add_some("source", query.source.as_deref())
            .add_some("after", query.after.as_deref())
            .add_some("limit", query.limit);
        self.exchange(Operation::ListTickets, &[], &params, None)
            .await
    }

    /// `GET /v1/tickets/{id}`: `{ticket, history, proposals}`.
    pub async fn get_ticket(&self, id: &str) -> Result<Value, ClientError> {
        self.get(Operation::ShowTicket, &[id]).await
    }

    /// `GET /v1/tickets/{id}/criteria`: the acceptance criteria, evaluated
    /// now.
    pub async fn criteria(&self, id: &str) -> Result<Value, ClientError> {
        self.get(Operation::TicketCriteria, &[id]).await
    }

    /// `POST /v1/tickets/{id}/comment`: `{ticket}`.
    pub async fn comment(&self, id: &str, request: &CommentRequest) -> Result<Value, ClientError> {
        self.post(Operation::CommentTicket, &[id], request).await
    }

    /// `POST /v1/tickets/{id}/cancel`: `{ticket}`.
    pub async fn cancel(&self, id: &str, decision: &Decision) -> Result<Value, ClientError> {
        self.post(Operation::CancelTicket, &[id], decision).await
    }

    /// `POST /v1/tickets/{id}/link`: join the incident `incident` owns, or
    /// leave one (`None`): `{ticket}`.
    pub async fn link(&self, id: &str, request: &LinkRequest) -> Result<Value, ClientError> {
        self.post(Operation::LinkTicket, &[id], request).await
    }

    /// `GET /v1/incidents`: tickets grouped under their owners.
    pub async fn incidents(&self) -> Result<Value, ClientError> {
        self.get(Operation::ListIncidents, &[]).await
    }

    // ---- the agent's calls ----

    /// `POST /v1/agent/claim`: `{"ticket": Ticket | null}`.
    pub async fn claim(&self, request: &ClaimRequest) -> Result<Value, ClientError> {
        self.post(Operation::Claim, &[], request).await
    }

    /// `POST /v1/tickets/{id}/release`: `{ticket}`.
    pub async fn release(&self, id: &str, agent: &str) -> Result<Value, ClientError> {
        let request = LeaseRequest {
            agent: agent.to_owned(),
            ttl_ms: None,
        };
        self.post(Operation::Release, &[id], &request).await
    }

    /// `POST /v1/tickets/{id}/renew`: `{ticket}`.
    pub async fn renew(
        &self,
        id: &str,
        agent: &str,
        ttl_ms: Option<u64>,
    ) -> Result<Value, ClientError> {
        let request = LeaseRequest {
            agent: agent.to_owned(),
            ttl_ms,
        };
        self.post(Operation::Renew, &[id], &request).await
    }

    /// `POST /v1/tickets/{id}/escalate`: `{ticket}`.
    pub async fn escalate(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Value, ClientError> {
        let decision = Decision {
            actor: Some(actor.to_owned()),
            reason: Some(reason.to_owned()),
        };
        self.post(Operation::Escalate, &[id], &decision).await
    }

    /// `POST /v1/tickets/{id}/proposals`: `201 {"proposal"}` after the test
    /// stage.
    pub async fn propose(&self, id: &str, request: &ProposalRequest) -> Result<Value, ClientError> {
        self.post(Operation::Propose, &[id], request).await
    }

    /// `GET /v1/tickets/{id}/proposals`: `{proposals}`.
    pub async fn ticket_proposals(&self, id: &str) -> Result<Value, ClientError> {
        self.get(Operation::TicketProposals, &[id]).await
    }

    /// `POST /v1/tickets/{id}/questions`: `201 {"proposal"}`, a question to
    /// a human (no actions), answered by approve or reject.
    pub async fn ask(&self, id: &str, agent: &str, question: &str) -> Result<Value, ClientError> {
        let request = QuestionRequest {
            agent: agent.to_owned(),
            question: question.to_owned(),
        };
        self.post(Operation::Ask, &[id], &request).await
    }

    /// `POST /v1/tickets/{id}/steps`: records one step of the agent's work
    /// (message, reasoning, tool calls, observation) in the ticket's
    /// trajectory.
    pub async fn step(&self, id: &str, step: &StepRequest) -> Result<Value, ClientError> {
        self.post(Operation::Step, &[id], step).await
    }

    // ---- proposals and the pipeline ----

    /// `GET /v1/proposals/{pid}`: `{"proposal"}`.
    pub async fn get_proposal(&self, id: &str) -> Result<Value, ClientError> {
        self.get(Operation::ShowProposal, &[id]).await
    }

    /// `POST /v1/proposals/{pid}/approve`: `{"proposal"}`.
    pub async fn approve(&self, id: &str, decision: &Decision) -> Result<Value, ClientError> {
        self.post(Operation::ApproveProposal, &[id], decision).await
    }

    /// `POST /v1/proposals/{pid}/reject`: `{"proposal"}`.
    pub async fn reject(&self, id: &str, decision: &Decision) -> Result<Value, ClientError> {
        self.post(Operation::RejectProposal, &[id], decision).await
    }

    /// `POST /v1/tickets/{id}/approve`: the proposal the ticket awaits,
    /// approved: `{"proposal"}`.
    pub async fn approve_ticket(
        &self,
        id: &str,
        decision: &Decision,
    ) -> Result<Value, ClientError> {
        self.post(Operation::ApproveTicket, &[id], decision).await
    }

    /// `POST /v1/tickets/{id}/reject`: `{"proposal"}`.
    pub async fn reject_ticket(&self, id: &str, decision: &Decision) -> Result<Value, ClientError> {
        self.post(Operation::RejectTicket, &[id], decision).await
    }

    /// `POST /v1/proposals/{pid}/revert`: `201 {ticket, proposal}`.
    pub async fn revert(&self, id: &str, decision: &Decision) -> Result<Value, ClientError> {
        self.post(Operation::RevertProposal, &[id], decision).await
    }

    /// `GET /v1/pipeline`: paused?, the active freeze window, proposals in
    /// flight.
    pub async fn pipeline(&self) -> Result<Value, ClientError> {
        self.get(Operation::Pipeline, &[]).await
    }

    /// `POST /v1/pause`: `GET /v1/pipeline`'s answer.
    pub async fn pause(&self, decision: &Decision) -> Result<Value, ClientError> {
        self.post(Operation::Pause, &[], decision).await
    }

    /// `POST /v1/resume`: `GET /v1/pipeline`'s answer.
    pub async fn resume(&self, decision: &Decision) -> Result<Value, ClientError> {
        self.post(Operation::Resume, &[], decision).await
    }

    // ---- observation through the harness ----

    /// `GET /v1/actions`: the service action catalog with risk and gates.
    pub async fn actions(&self) -> Result<Value, ClientError> {
        self.get(Operation::Actions, &[]).await
    }

    /// `GET /v1/observe/series?selector=…&window_ms=…`.
    pub async fn observe_series(
        &self,
        selector: &str,
        window_ms: Option<u64>,
    ) -> Result<Value, ClientError> {
        let mut query = Query::default();
        query
            .add("selector", selector)
            .add_some("window_ms", window_ms);
        self.exchange(Operation::ObserveSeries, &[], &query, None)
            .await
    }

    /// `GET /v1/evidence`: every instance's state merged into evidence
    /// (which limits reject, for which values, demand against the limit).
    pub async fn evidence(&self) -> Result<Value, ClientError> {
        self.get(Operation::Evidence, &[]).await
    }

    /// `GET /v1/observe/state?service=NAME`: that service's `/v1/state`
    /// (an empty name: the harness's first service).
    pub async fn observe_state(&self, service: &str) -> Result<Value, ClientError> {
        let mut query = Query::default();
        query.add_some("service", Some(service).filter(|s| !s.is_empty()));
        self.exchange(Operation::ObserveState, &[], &query, None)
            .await
    }

    /// `GET /v1/observe/events?service=NAME&after=SEQ&limit=N`.
    pub async fn observe_events(&self, query: &ServiceEventsQuery) -> Result<Value, ClientError> {
        let mut params = Query::default();
        params
            .add("service", &query.service)
            .add_some("after", query.after)
            .add_some("limit", query.limit);
        self.exchange(Operation::ObserveEvents, &[], &params, None)
            .await
    }

    // ---- notices ----

    /// `GET /v1/notices?state=…`: `{time_ms, notices}` (`state`: active,
    /// pending, expired or all; all when absent).
    pub async fn list_notices(&self, state: Option<&str>) -> Result<Value, ClientError> {
        let mut query = Query::default();
        query.add_some("state", state);
        self.exchange(Operation::ListNotices, &[], &query, None)
            .await
    }

    /// `GET /v1/notices/{id}`: `{notice, history}`.
    pub async fn get_notice(&self, id: &str) -> Result<Value, ClientError> {
        self.get(Operation::ShowNotice, &[id]).await
    }

    /// `POST /v1/notices`: `201 {"notice"}` (needs the `intake` scope).
    pub async fn create_notice(&self, request: &NoticeRequest) -> Result<Value, ClientError> {
        self.post(Operation::CreateNotice, &[], request).await
    }

    /// `POST /v1/notices/{id}/expire`: `{"notice"}` (needs `intake`).
    pub async fn expire_notice(&self, id: &str, decision: &Decision) -> Result<Value, ClientError> {
        self.post(Operation::ExpireNotice, &[id], decision).await
    }

    // ---- trajectories, reflection, the ledger ----

    /// `GET /v1/trajectories?after=ID&limit=N`.
    pub async fn trajectories(
        &self,
        after: Option<&str>,
        limit: Option<u64>,
    ) -> Result<Value, ClientError> {
        let mut query = Query::default();
        query.add_some("after", after).add_some("limit", limit);
        self.exchange(Operation::ListTrajectories, &[], &query, None)
            .await
    }

    /// `GET /v1/trajectories/{id}`.
    pub async fn trajectory(&self, id: &str) -> Result<Value, ClientError> {
        self.get(Operation::ShowTrajectory, &[id]).await
    }

    /// `POST /v1/reflect`: reflect now.
    pub async fn reflect(&self) -> Result<Value, ClientError> {
        self.exchange(Operation::Reflect, &[], &Query::default(), None)
            .await
    }

    /// `GET /v1/reflection`: what reflection keeps.
    pub async fn reflection(&self) -> Result<Value, ClientError> {
        self.get(Operation::Reflection, &[]).await
    }

    /// `GET /v1/ledger?after=SEQ&limit=N`: `{entries, head}`.
    pub async fn ledger(
        &self,
        after: Option<u64>,
        limit: Option<u64>,
    ) -> Result<Value, ClientError> {
        let mut query = Query::default();
        query.add_some("after", after).add_some("limit", limit);
        self.exchange(Operation::Ledger, &[], &query, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_come_from_the_table_with_ids_encoded() {
        assert_eq!(
            path_of(Operation::CommentTicket, &["INF-0001"]),
            "/v1/tickets/INF-0001/comment"
        );
        assert_eq!(
            path_of(Operation::ShowTicket, &["../v1/pause"]),
            "/v1/tickets/..%2Fv1%2Fpause"
        );
        assert_eq!(path_of(Operation::Slos, &[]), "/v1/slos");
        let mut query = Query::default();
        query
            .add("selector", "up{service=\"a\"}")
            .add_some("window_ms", Some(1000))
            .add_some("limit", None::<u64>);
        assert_eq!(
            query.text,
            "?selector=up%7Bservice%3D%22a%22%7D&window_ms=1000"
        );
    }

    #[test]
    fn previews_cut_on_a_char_boundary() {
        let body = "é".repeat(PREVIEW_BYTES);
        let cut = preview(body.as_bytes());
        assert!(cut.len() <= PREVIEW_BYTES && cut.chars().all(|c| c == 'é'));
    }
}
