//! The typed client of the contract.
//!
//! Every typed call is built once, here, on top of one raw exchange
//! ([`Transport::send`]: method, path, JSON body → status, body). Two
//! transports implement it: [`HttpTransport`] over real HTTP, and the
//! service's in-process transport, which hands the same request to the same
//! router without a socket. Because the typed layer is shared and the
//! in-process transport runs the real router, the two cannot disagree
//! (docs/adr/0005-contract-over-http-json.md).

use crate::actions::{ActionInfo, ActionRequest, ActionResult};
use crate::events::EventPage;
use crate::state::{
    ConfigApplyRequest, ConfigVersionPage, ConfigView, ErrorBody, Health, State, TrafficPage,
};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;

/// One raw request: method, path with query, optional JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    pub method: Method,
    pub path: String,
    pub body: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One raw response: status and body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientError {
    /// The service could not be reached (connection refused, timed out).
    Transport(String),
    /// The service answered with an error status and body.
    Api { status: u16, error: ErrorBody },
    /// The answer was not what the contract says.
    Decode(String),
}

impl ClientError {
    /// Whether retrying later may help.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Api { status, .. } => *status >= 500,
            ClientError::Decode(_) => false,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Transport(message) => write!(f, "cannot reach the service: {message}"),
            ClientError::Api { status, error } => write!(
                f,
                "HTTP {status} {}: {}: {}",
                error.error.kind, error.error.field, error.error.message
            ),
            ClientError::Decode(message) => write!(f, "unexpected answer: {message}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Moves one raw request to a service and back.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, request: RawRequest) -> Result<RawResponse, ClientError>;
}

/// Query of `GET /v1/events`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events with a larger sequence number.
    pub after: u64,
    /// Only these types (empty: all).
    pub types: Vec<String>,
    /// At most this many (the service caps it).
    pub limit: Option<u64>,
    /// Wait up to this many milliseconds for a first event (long poll).
    pub wait_ms: Option<u64>,
}

impl EventQuery {
    fn path(&self) -> String {
        let mut path = format!("/v1/events?after={}", self.after);
        if !self.types.is_empty() {
            path.push_str("&type=");
            path.push_str(&self.types.join(","));
        }
        if let Some(limit) = self.limit {
            path.push_str(&format!("&limit={limit}"));
        }
        if let Some(wait) = self.wait_ms {
            path.push_str(&format!("&wait_ms={wait}"));
        }
        path
    }
}

/// Query of `GET /v1/traffic`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficQuery {
    /// At most this many requests (the service caps it).
    pub limit: Option<u64>,
    /// Only requests of this domain.
    pub domain: Option<String>,
    /// Only requests recorded before this sequence number (a page's
    /// `next_before`).
    pub before: Option<u64>,
}

impl TrafficQuery {
    fn path(&self) -> String {
        let mut parts = Vec::new();
        if let Some(limit) = self.limit {
            parts.push(format!("limit={limit}"));
        }
        if let Some(domain) = &self.domain {
            parts.push(format!("domain={}", percent_encode(domain)));
        }
        if let Some(before) = self.before {
            parts.push(format!("before={before}"));
        }
        if parts.is_empty() {
            "/v1/traffic".to_string()
        } else {
            format!("/v1/traffic?{}", parts.join("&"))
        }
    }
}

/// `text` with everything but RFC 3986's unreserved characters
/// (`A–Z a–z 0–9 - . _ ~`) percent-encoded: safe as one path segment (an
/// id with `/` or `..` stays inside its segment) and as a query value.
/// The one encoder every client of the project's APIs uses.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The typed contract. Implemented for every [`Transport`].
#[async_trait]
pub trait ServiceApi: Send + Sync {
    async fn state(&self) -> Result<State, ClientError>;
    async fn health(&self) -> Result<Health, ClientError>;
    /// Prometheus text of `/metrics`.
    async fn metrics(&self) -> Result<String, ClientError>;
    async fn config(&self) -> Result<ConfigView, ClientError>;
    async fn config_versions(
        &self,
        before: Option<u64>,
        limit: Option<u64>,
    ) -> Result<ConfigVersionPage, ClientError>;
    async fn apply_config(&self, request: &ConfigApplyRequest)
        -> Result<ActionResult, ClientError>;
    async fn rollback_config(
        &self,
        to_version: u64,
        request: &ActionRequest,
    ) -> Result<ActionResult, ClientError>;
    async fn actions(&self) -> Result<Vec<ActionInfo>, ClientError>;
    async fn run_action(
        &self,
        name: &str,
        request: &ActionRequest,
    ) -> Result<ActionResult, ClientError>;
    async fn events(&self, query: &EventQuery) -> Result<EventPage, ClientError>;
    /// The recorded traffic window and its most recent requests.
    async fn traffic(&self, query: &TrafficQuery) -> Result<TrafficPage, ClientError>;
    /// `POST /v1/check` with an Envoy request as JSON; answers the JSON
    /// response (200 or 429 alike).
    async fn check(&self, request: &serde_json::Value) -> Result<serde_json::Value, ClientError>;
}

async fn exchange<T: DeserializeOwned>(
    transport: &(impl Transport + ?Sized),
    method: Method,
    path: String,
    body: Option<&(impl Serialize + Sync + ?Sized)>,
    ok: &[u16],
) -> Result<T, ClientError> {
    let body = match body {
        Some(body) => {
            Some(serde_json::to_vec(body).map_err(|error| ClientError::Decode(error.to_string()))?)
        }
        None => None,
    };
    let response = transport.send(RawRequest { method, path, body }).await?;
    if !ok.contains(&response.status) {
        let error = serde_json::from_slice::<ErrorBody>(&response.body).map_err(|_| {
            ClientError::Decode(format!(
                "HTTP {} with a body that is not an error document: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ))
        })?;
        return Err(ClientError::Api {
            status: response.status,
            error,
        });
    }
    serde_json::from_slice(&response.body).map_err(|error| ClientError::Decode(error.to_string()))
}

const NO_BODY: Option<&()> = None;

#[async_trait]
impl<T: Transport + ?Sized> ServiceApi for T {
    async fn state(&self) -> Result<State, ClientError> {
        exchange(self, Method::Get, "/v1/state".into(), NO_BODY, &[200]).await
    }

    async fn health(&self) -> Result<Health, ClientError> {
        // 503 while draining still carries the health document.
        exchange(self, Method::Get, "/v1/health".into(), NO_BODY, &[200, 503]).await
    }

    async fn metrics(&self) -> Result<String, ClientError> {
        let response = self
            .send(RawRequest {
                method: Method::Get,
                path: "/metrics".into(),
                body: None,
            })
            .await?;
        if response.status != 200 {
            return Err(ClientError::Decode(format!(
                "/metrics answered HTTP {}",
                response.status
            )));
        }
        String::from_utf8(response.body).map_err(|error| ClientError::Decode(error.to_string()))
    }

    async fn config(&self) -> Result<ConfigView, ClientError> {
        exchange(self, Method::Get, "/v1/config".into(), NO_BODY, &[200]).await
    }

    async fn config_versions(
        &self,
        before: Option<u64>,
        limit: Option<u64>,
    ) -> Result<ConfigVersionPage, ClientError> {
        let mut path = "/v1/config/versions?".to_string();
        if let Some(before) = before {
            path.push_str(&format!("before={before}&"));
        }
        if let Some(limit) = limit {
            path.push_str(&format!("limit={limit}"));
        }
        exchange(self, Method::Get, path, NO_BODY, &[200]).await
    }

    async fn apply_config(
        &self,
        request: &ConfigApplyRequest,
    ) -> Result<ActionResult, ClientError> {
        exchange(
            self,
            Method::Post,
            "/v1/config".into(),
            Some(request),
            &[200],
        )
        .await
    }

    async fn rollback_config(
        &self,
        to_version: u64,
        request: &ActionRequest,
    ) -> Result<ActionResult, ClientError> {
        let mut body = serde_json::json!({
            "to_version": to_version,
            "dry_run": request.dry_run,
            "reason": request.reason,
            "actor": request.actor,
        });
        if let Some(version) = request.expect_config_version {
            body["expect_config_version"] = version.into();
        }
        exchange(
            self,
            Method::Post,
            "/v1/config/rollback".into(),
            Some(&body),
            &[200],
        )
        .await
    }

    async fn actions(&self) -> Result<Vec<ActionInfo>, ClientError> {
        exchange(self, Method::Get, "/v1/actions".into(), NO_BODY, &[200]).await
    }

    async fn run_action(
        &self,
        name: &str,
        request: &ActionRequest,
    ) -> Result<ActionResult, ClientError> {
        exchange(
            self,
            Method::Post,
            format!("/v1/actions/{name}"),
            Some(request),
            &[200],
        )
        .await
    }

    async fn events(&self, query: &EventQuery) -> Result<EventPage, ClientError> {
        exchange(self, Method::Get, query.path(), NO_BODY, &[200]).await
    }

    async fn traffic(&self, query: &TrafficQuery) -> Result<TrafficPage, ClientError> {
        exchange(self, Method::Get, query.path(), NO_BODY, &[200]).await
    }

    async fn check(&self, request: &serde_json::Value) -> Result<serde_json::Value, ClientError> {
        exchange(
            self,
            Method::Post,
            "/v1/check".into(),
            Some(request),
            &[200, 429],
        )
        .await
    }
}

/// The contract over real HTTP.
#[cfg(feature = "http")]
#[derive(Debug, Clone)]
pub struct HttpTransport {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

#[cfg(feature = "http")]
impl HttpTransport {
    /// `base` like `http://127.0.0.1:8080`; `token` is sent as a bearer
    /// token when given.
    pub fn new(base: impl Into<String>, token: Option<String>) -> HttpTransport {
        HttpTransport {
            base: base.into().trim_end_matches('/').to_string(),
            token,
            client: reqwest::Client::new(),
        }
    }
}

#[cfg(feature = "http")]
#[async_trait]
impl Transport for HttpTransport {
    async fn send(&self, request: RawRequest) -> Result<RawResponse, ClientError> {
        let url = format!("{}{}", self.base, request.path);
        let mut builder = match request.method {
            Method::Get => self.client.get(&url),
            Method::Post => self.client.post(&url),
        };
        if let Some(token) = &self.token {
            builder = builder.bearer_auth(token);
        }
        // Every POST says JSON, body or not: an open-mode API refuses a POST
        // without it (415; ADR 0004).
        if matches!(request.method, Method::Post) {
            builder = builder.header("content-type", "application/json");
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let response = builder
            .send()
            .await
            .map_err(|error| ClientError::Transport(format!("{url}: {error}")))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|error| ClientError::Transport(format!("{url}: {error}")))?
            .to_vec();
        Ok(RawResponse { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn percent_encoding_keeps_a_value_inside_its_segment() {
        assert_eq!(percent_encode("INF-0001"), "INF-0001");
        assert_eq!(percent_encode("a.b_c~d"), "a.b_c~d");
        // A slash, a dot-dot or a query character cannot leave the
        // segment (the CLI's own encoder once left `/` as it was).
        assert_eq!(percent_encode("../admin?x=1"), "..%2Fadmin%3Fx%3D1");
        assert_eq!(percent_encode("a b/é#%"), "a%20b%2F%C3%A9%23%25");
    }
}
