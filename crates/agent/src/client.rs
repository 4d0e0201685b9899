//! The harness's agent API (docs/adr/0008-agents-and-pipeline.md, "The
//! agent API"), one method per call, over the contract's raw
//! [`Transport`].
//!
//! Answers are [`serde_json::Value`]s: the client checks the status and
//! that the body is JSON, and leaves the shapes to the caller (the tool
//! catalog hands them to a model as they are). Errors are the contract's
//! [`ClientError`]: an error status with the harness's
//! `{"error": {"kind", "field", "message"}}` body is
//! [`ClientError::Api`]; anything else unexpected is
//! [`ClientError::Decode`]; an unreachable or silent harness is
//! [`ClientError::Transport`] (every call is bounded by
//! [`HarnessClient::with_timeout`]).
//!
//! Path segments (ticket and proposal ids) and query values are
//! percent-encoded, so an id can never address another endpoint.

use floodgate_contract::client::{percent_encode, HttpTransport, Method, RawRequest, RawResponse};
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

/// `POST /v1/agent/claim`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClaimRequest {
    /// Who claims.
    pub agent: String,
    /// How long the claim lasts before the ticket goes back to the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// Only tickets from these sources (`slo`, `invariant`, `human`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    /// This ticket rather than the most urgent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

/// `GET /v1/tickets` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketQuery {
    /// Only tickets in these states (empty: all).
    pub states: Vec<String>,
    /// Only tickets from this source.
    pub source: Option<String>,
    /// Only tickets after this id or number.
    pub after: Option<String>,
    /// At most this many (the harness caps it).
    pub limit: Option<u64>,
}

/// One action of a proposal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposedAction {
    /// The service action's name (`set_limit`, …; see `GET /v1/actions`).
    pub action: String,
    /// Its parameters, as the action catalog describes them.
    pub params: Value,
}

/// `POST /v1/tickets/{id}/proposals`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposalRequest {
    /// Who proposes.
    pub agent: String,
    /// Why this change fixes the ticket.
    pub rationale: String,
    /// What to change, in order.
    pub actions: Vec<ProposedAction>,
    /// An interim mitigation: once verified the ticket stays with the
    /// agent (in progress) instead of resolving.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interim: bool,
    /// The config hash the change was planned against (evidence's
    /// `instances[].config_hash`, or a service's `config.hash`): the
    /// pipeline refuses the proposal (409 `collision`) when a service's
    /// config is no longer at it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_config: Option<String>,
}

/// The body of approve, reject, pause and resume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Who decides (the harness defaults it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /v1/observe/events` query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceEventsQuery {
    /// The service's name in the harness's objectives.
    pub service: String,
    /// Only events after this sequence number.
    pub after: Option<u64>,
    /// At most this many.
    pub limit: Option<u64>,
}

/// One matcher of a notice: `name` (service, limit, tenant, metric,
/// anomaly, slo, invariant) and either an exact `value` or a `regex`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeMatcher {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// `POST /v1/notices`: an expected change (docs/adr/0011-expected-change-notices.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NoticeRequest {
    pub matchers: Vec<NoticeMatcher>,
    /// When it starts (ms since the epoch; the harness's now when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_ms: Option<u64>,
    /// When it ends; give this or `duration_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_ms: Option<u64>,
    /// How long it lasts from its start; give this or `ends_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub reason: String,
    /// `KIND:NAME`: `human:alice`, `deploy:ci`, `agent:runbook`.
    pub author: String,
    /// How many times its level the matched series may move and still be
    /// covered (above 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_factor: Option<f64>,
}

/// The harness's agent API over one transport.
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

    async fn send(&self, request: RawRequest) -> Result<RawResponse, ClientError> {
        let path = request.path.clone();
        match tokio::time::timeout(self.timeout, self.transport.send(request)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Transport(format!(
                "{path}: no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        path: String,
        body: Option<Vec<u8>>,
        ok: &[u16],
    ) -> Result<Value, ClientError> {
        let response = self.send(RawRequest { method, path, body }).await?;
        if !ok.contains(&response.status) {
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

    async fn get(&self, path: String) -> Result<Value, ClientError> {
        self.exchange(Method::Get, path, None, &[200]).await
    }

    async fn post(
        &self,
        path: String,
        body: &(impl Serialize + ?Sized),
        ok: &[u16],
    ) -> Result<Value, ClientError> {
        let body =
            serde_json::to_vec(body).map_err(|error| ClientError::Decode(error.to_string()))?;
        self.exchange(Method::Post, path, Some(body), ok).await
    }

    /// `POST /v1/agent/claim`: `{"ticket": Ticket | null}`.
    pub async fn claim(&self, request: &ClaimRequest) -> Result<Value, ClientError> {
        self.post("/v1/agent/claim".into(), request, &[200]).await
    }

    /// `GET /v1/tickets/{id}`: `{ticket, history, proposals}`.
    pub async fn get_ticket(&self, id: &str) -> Result<Value, ClientError> {
        self.get(format!("/v1/tickets/{}", segment(id))).await
    }

    /// `GET /v1/tickets?…`: `{tickets}`.
    pub async fn list_tickets(&self, query: &TicketQuery) -> Result<Value, ClientError> {
        let mut params = Query::default();
        if !query.states.is_empty() {
            params.add("state", &query.states.join(","));
        }
        if let Some(source) = &query.source {
            params.add("source", source);
        }
        if let Some(after) = &query.after {
            params.add("after", after);
        }
        if let Some(limit) = query.limit {
            params.add("limit", &limit.to_string());
        }
        self.get(params.finish("/v1/tickets")).await
    }

    /// `POST /v1/tickets/{id}/release`: `{ticket}`.
    pub async fn release(&self, id: &str, agent: &str) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "agent": agent });
        self.post(
            format!("/v1/tickets/{}/release", segment(id)),
            &body,
            &[200],
        )
        .await
    }

    /// `POST /v1/tickets/{id}/renew`: `{ticket}`.
    pub async fn renew(
        &self,
        id: &str,
        agent: &str,
        ttl_ms: Option<u64>,
    ) -> Result<Value, ClientError> {
        let mut body = serde_json::json!({ "agent": agent });
        if let Some(ttl_ms) = ttl_ms {
            body["ttl_ms"] = ttl_ms.into();
        }
        self.post(format!("/v1/tickets/{}/renew", segment(id)), &body, &[200])
            .await
    }

    /// `POST /v1/tickets/{id}/escalate`: `{ticket}`.
    pub async fn escalate(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "actor": actor, "reason": reason });
        self.post(
            format!("/v1/tickets/{}/escalate", segment(id)),
            &body,
            &[200],
        )
        .await
    }

    /// `POST /v1/tickets/{id}/comment`: `{ticket}`.
    pub async fn comment(
        &self,
        id: &str,
        actor: Option<&str>,
        text: &str,
    ) -> Result<Value, ClientError> {
        let mut body = serde_json::json!({ "text": text });
        if let Some(actor) = actor {
            body["actor"] = actor.into();
        }
        self.post(
            format!("/v1/tickets/{}/comment", segment(id)),
            &body,
            &[200],
        )
        .await
    }

    /// `GET /v1/tickets/{id}/criteria`: the acceptance criteria, evaluated
    /// now.
    pub async fn criteria(&self, id: &str) -> Result<Value, ClientError> {
        self.get(format!("/v1/tickets/{}/criteria", segment(id)))
            .await
    }

    /// `POST /v1/tickets/{id}/proposals`: `201 {"proposal"}` after the test
    /// stage.
    pub async fn propose(&self, id: &str, request: &ProposalRequest) -> Result<Value, ClientError> {
        self.post(
            format!("/v1/tickets/{}/proposals", segment(id)),
            request,
            &[200, 201],
        )
        .await
    }

    /// `POST /v1/tickets/{id}/questions`: `201 {"proposal"}`, a question to
    /// a human (no actions), answered by approve or reject.
    pub async fn ask(&self, id: &str, agent: &str, question: &str) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "agent": agent, "question": question });
        self.post(
            format!("/v1/tickets/{}/questions", segment(id)),
            &body,
            &[200, 201],
        )
        .await
    }

    /// `POST /v1/tickets/{id}/steps`: records one step of the agent's work
    /// (message, reasoning, tool calls, observation) in the ticket's
    /// trajectory.
    pub async fn step(&self, id: &str, step: &Value) -> Result<Value, ClientError> {
        self.post(
            format!("/v1/tickets/{}/steps", segment(id)),
            step,
            &[200, 201],
        )
        .await
    }

    /// `GET /v1/proposals/{pid}`: `{"proposal"}`.
    pub async fn get_proposal(&self, id: &str) -> Result<Value, ClientError> {
        self.get(format!("/v1/proposals/{}", segment(id))).await
    }

    /// `POST /v1/proposals/{pid}/approve`: `{"proposal"}`.
    pub async fn approve(&self, id: &str, decision: &Decision) -> Result<Value, ClientError> {
        self.post(
            format!("/v1/proposals/{}/approve", segment(id)),
            decision,
            &[200],
        )
        .await
    }

    /// `POST /v1/proposals/{pid}/reject`: `{"proposal"}`.
    pub async fn reject(&self, id: &str, decision: &Decision) -> Result<Value, ClientError> {
        self.post(
            format!("/v1/proposals/{}/reject", segment(id)),
            decision,
            &[200],
        )
        .await
    }

    /// `GET /v1/actions`: the service action catalog with risk and gates.
    pub async fn actions(&self) -> Result<Value, ClientError> {
        self.get("/v1/actions".into()).await
    }

    /// `GET /v1/observe/series?selector=…&window_ms=…`.
    pub async fn observe_series(
        &self,
        selector: &str,
        window_ms: Option<u64>,
    ) -> Result<Value, ClientError> {
        let mut params = Query::default();
        params.add("selector", selector);
        if let Some(window_ms) = window_ms {
            params.add("window_ms", &window_ms.to_string());
        }
        self.get(params.finish("/v1/observe/series")).await
    }

    /// `GET /v1/evidence`: every instance's state merged into evidence
    /// (which limits reject, for which values, demand against the limit).
    pub async fn evidence(&self) -> Result<Value, ClientError> {
        self.get("/v1/evidence".to_string()).await
    }

    /// `GET /v1/incidents`: tickets grouped under their owners.
    pub async fn incidents(&self) -> Result<Value, ClientError> {
        self.get("/v1/incidents".to_string()).await
    }

    /// `POST /v1/tickets/{id}/link`: join the incident `incident` owns, or
    /// leave one (`None`).
    pub async fn link(
        &self,
        id: &str,
        incident: Option<&str>,
        actor: &str,
        reason: &str,
    ) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "incident": incident, "actor": actor, "reason": reason });
        self.post(format!("/v1/tickets/{}/link", segment(id)), &body, &[200])
            .await
    }

    /// `GET /v1/observe/state?service=NAME`: that service's `/v1/state`
    /// (an empty name: the harness's first service).
    pub async fn observe_state(&self, service: &str) -> Result<Value, ClientError> {
        let mut params = Query::default();
        if !service.is_empty() {
            params.add("service", service);
        }
        self.get(params.finish("/v1/observe/state")).await
    }

    /// `GET /v1/observe/events?service=NAME&after=SEQ&limit=N`.
    pub async fn observe_events(&self, query: &ServiceEventsQuery) -> Result<Value, ClientError> {
        let mut params = Query::default();
        params.add("service", &query.service);
        if let Some(after) = query.after {
            params.add("after", &after.to_string());
        }
        if let Some(limit) = query.limit {
            params.add("limit", &limit.to_string());
        }
        self.get(params.finish("/v1/observe/events")).await
    }

    /// `GET /v1/slos`.
    pub async fn slos(&self) -> Result<Value, ClientError> {
        self.get("/v1/slos".into()).await
    }

    /// `GET /v1/invariants`.
    pub async fn invariants(&self) -> Result<Value, ClientError> {
        self.get("/v1/invariants".into()).await
    }

    /// `GET /v1/anomalies`.
    pub async fn anomalies(&self) -> Result<Value, ClientError> {
        self.get("/v1/anomalies".into()).await
    }

    /// `GET /v1/notices?state=…`: `{time_ms, notices}` (`state`: active,
    /// pending, expired or all; all when absent).
    pub async fn list_notices(&self, state: Option<&str>) -> Result<Value, ClientError> {
        let mut params = Query::default();
        if let Some(state) = state {
            params.add("state", state);
        }
        self.get(params.finish("/v1/notices")).await
    }

    /// `GET /v1/notices/{id}`: `{notice, history}`.
    pub async fn get_notice(&self, id: &str) -> Result<Value, ClientError> {
        self.get(format!("/v1/notices/{}", segment(id))).await
    }

    /// `POST /v1/notices`: `201 {"notice"}` (needs the `intake` scope).
    pub async fn create_notice(&self, request: &NoticeRequest) -> Result<Value, ClientError> {
        self.post("/v1/notices".into(), request, &[201]).await
    }

    /// `POST /v1/notices/{id}/expire`: `{"notice"}` (needs `intake`).
    pub async fn expire_notice(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "actor": actor, "reason": reason });
        self.post(format!("/v1/notices/{}/expire", segment(id)), &body, &[200])
            .await
    }

    /// `GET /v1/pipeline`: paused?, the active freeze window, proposals in
    /// flight.
    pub async fn pipeline(&self) -> Result<Value, ClientError> {
        self.get("/v1/pipeline".into()).await
    }

    /// `POST /v1/pause`: `GET /v1/pipeline`'s answer.
    pub async fn pause(&self, decision: &Decision) -> Result<Value, ClientError> {
        self.post("/v1/pause".into(), decision, &[200]).await
    }

    /// `POST /v1/resume`: `GET /v1/pipeline`'s answer.
    pub async fn resume(&self, decision: &Decision) -> Result<Value, ClientError> {
        self.post("/v1/resume".into(), decision, &[200]).await
    }
}

/// The longest body quoted in a decode error.
const PREVIEW_BYTES: usize = 256;

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    crate::truncate(&text, PREVIEW_BYTES)
}

/// A query string under construction.
#[derive(Default)]
struct Query {
    text: String,
}

impl Query {
    fn add(&mut self, key: &str, value: &str) {
        self.text.push(if self.text.is_empty() { '?' } else { '&' });
        self.text.push_str(key);
        self.text.push('=');
        self.text.push_str(&percent_encode(value));
    }

    fn finish(self, path: &str) -> String {
        format!("{path}{}", self.text)
    }
}

/// A path segment, percent-encoded.
fn segment(value: &str) -> String {
    percent_encode(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_join_their_parameters() {
        let mut query = Query::default();
        query.add("selector", "up{service=\"a\"}");
        query.add("window_ms", "1000");
        assert_eq!(
            query.finish("/v1/observe/series"),
            "/v1/observe/series?selector=up%7Bservice%3D%22a%22%7D&window_ms=1000"
        );
        assert_eq!(Query::default().finish("/v1/slos"), "/v1/slos");
    }
}
