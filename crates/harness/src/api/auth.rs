//! Access control for the harness API: bearer tokens with scopes, as the
//! service's (docs/adr/0004-access-control.md), for the harness's callers.
//!
//! Tokens come from `floodgate harness --tokens-file FILE`: the service's
//! format, one `SCOPE NAME TOKEN` per line, `#` comments, parsed by the
//! contract's [`floodgate_contract::tokens`], with the harness's scopes
//! ([`floodgate_harness_contract::scope`]: `read`, `operate`, `admin`,
//! `intake`). What each call needs is its line of the route table
//! ([`floodgate_harness_contract::routes::needed`]).
//!
//! [`layer`] wraps the whole router (a tower layer): a method and path the
//! table does not list needs `admin`, so a route added later is closed
//! until it gets a line.
//! A missing or unknown token is answered 401, an insufficient scope 403,
//! both with the contract's error body. An accepted token's [`Caller`] is
//! put into the request's extensions.
//!
//! Without tokens the API is open and `floodgate harness` refuses a
//! non-loopback `--http-addr`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use floodgate_contract::tokens::Presented;
use std::sync::Arc;

pub use floodgate_contract::tokens::TokensError;
pub use floodgate_harness_contract::routes::needed;
pub use floodgate_harness_contract::scope::{Scope, Tokens};

/// Who made a request, put into its extensions by the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub scope: Scope,
}

fn refusal(status: StatusCode, kind: &str, field: &str, message: String, scope: Scope) -> Response {
    let body = serde_json::json!({
        "error": { "kind": kind, "field": field, "message": message },
    });
    let challenge = if status == StatusCode::FORBIDDEN {
        format!(
            "Bearer realm=\"floodgate-harness\", error=\"insufficient_scope\", scope=\"{scope}\""
        )
    } else {
        "Bearer realm=\"floodgate-harness\"".to_owned()
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

async fn check(State(tokens): State<Arc<Tokens>>, mut request: Request, next: Next) -> Response {
    let scope = needed(request.method().as_str(), request.uri().path());
    // As the service's layer: two Authorization headers are refused, the
    // scheme matches in any case, spaces around the token are ignored.
    let presented = Presented::of(
        request
            .headers()
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes),
    );
    let token = match presented {
        Presented::Bearer(secret) => tokens.authenticate(secret),
        Presented::Missing | Presented::Repeated => None,
    };
    let Some(token) = token else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authorization",
            presented.refusal().to_owned(),
            scope,
        );
    };
    if !token.scope.grants(scope) {
        return refusal(
            StatusCode::FORBIDDEN,
            "forbidden",
            "scope",
            format!(
                "{} {} needs scope {scope}; token {} has scope {}",
                request.method(),
                request.uri().path(),
                token.name,
                token.scope
            ),
            scope,
        );
    }
    request.extensions_mut().insert(Caller {
        name: token.name.clone(),
        scope: token.scope,
    });
    next.run(request).await
}

/// Wraps `router` in the access check (a tower layer over every route,
/// the fallback included). With no tokens the router is returned as is.
pub fn layer(router: Router, tokens: Arc<Tokens>) -> Router {
    if tokens.is_empty() {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(tokens, check))
}

async fn check_as(State(caller): State<Arc<Caller>>, mut request: Request, next: Next) -> Response {
    let scope = needed(request.method().as_str(), request.uri().path());
    if !caller.scope.grants(scope) {
        return refusal(
            StatusCode::FORBIDDEN,
            "forbidden",
            "scope",
            format!(
                "{} {} needs scope {scope}; {} acts with scope {}",
                request.method(),
                request.uri().path(),
                caller.name,
                caller.scope
            ),
            scope,
        );
    }
    request.extensions_mut().insert((*caller).clone());
    next.run(request).await
}

/// Wraps `router` so that every call through it is judged as `caller`,
/// without a token: what a door already checked hands on (the harness's
/// `/mcp` needs `operate`, so the tools it serves act with `operate`, never
/// with more: announcing a notice through it is refused, as it is for an
/// `operate` token).
pub fn layer_as(router: Router, caller: Caller) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        Arc::new(caller),
        check_as,
    ))
}
