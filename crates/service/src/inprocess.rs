//! The contract without a socket: [`InProcessTransport`] hands each raw
//! request to the service's own HTTP router (the same one [`crate::run`]
//! serves, access layer included) with `tower::ServiceExt::oneshot`, so a
//! simulation under a simulated clock gets exactly the HTTP semantics:
//! the same routing, parsing, status codes and bodies.
//!
//! ```no_run
//! # async fn demo(parts: floodgate_service::ServiceParts<floodgate_store::MemoryStore>) {
//! use floodgate_contract::client::ServiceApi;
//! let assembled = floodgate_service::assemble(parts);
//! let api = floodgate_service::inprocess::InProcessTransport::new(assembled.router, None);
//! let state = api.state().await;
//! # }
//! ```

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Request};
use axum::Router;
use floodgate_contract::client::{ClientError, Method, RawRequest, RawResponse, Transport};
use http_body_util::{BodyExt, Limited};
use tower::ServiceExt;

/// Bytes of one response the in-process transport reads: the largest
/// answer (a full `/v1/state` or a page of events) is a few MiB; an endless
/// body (the event stream) is cut here rather than read for ever.
pub const MAX_INPROCESS_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A [`Transport`] that calls a service's router in this process.
#[derive(Clone)]
pub struct InProcessTransport {
    router: Router,
    token: Option<String>,
}

impl std::fmt::Debug for InProcessTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessTransport")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl InProcessTransport {
    /// Calls `router` (from [`crate::assemble`]); `token` is sent as a
    /// bearer token when given, as [`floodgate_contract::client::HttpTransport`]
    /// does.
    pub fn new(router: Router, token: Option<String>) -> InProcessTransport {
        InProcessTransport { router, token }
    }
}

#[async_trait]
impl Transport for InProcessTransport {
    async fn send(&self, request: RawRequest) -> Result<RawResponse, ClientError> {
        let method = match request.method {
            Method::Get => axum::http::Method::GET,
            Method::Post => axum::http::Method::POST,
        };
        let mut builder = Request::builder().method(method).uri(&request.path);
        if let Some(token) = &self.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        // Every POST says JSON, body or not, as over HTTP (ADR 0004).
        if matches!(request.method, Method::Post) {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let body = request.body.map_or_else(Body::empty, Body::from);
        let http_request = builder
            .body(body)
            .map_err(|error| ClientError::Transport(format!("{}: {error}", request.path)))?;
        let response = match self.router.clone().oneshot(http_request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_INPROCESS_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|error| ClientError::Transport(format!("{}: {error}", request.path)))?
            .to_bytes()
            .to_vec();
        Ok(RawResponse { status, body })
    }
}
