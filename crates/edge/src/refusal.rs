//! The one JSON error both APIs answer with, `{"error": {"kind", "field",
//! "message"}}`, for the refusals the edge and the routers make themselves:
//! a method a path does not take (405), request headers over their bound
//! (431, [`crate::server`]), a body that did not arrive in time (408).

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{Method, StatusCode, Uri};

/// The error document.
pub fn body(kind: &str, field: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"error": {"kind": kind, "field": field, "message": message}})
}

/// A JSON error answer.
pub fn response(status: StatusCode, kind: &str, field: &str, message: &str) -> Response {
    (status, Json(body(kind, field, message))).into_response()
}

/// The answer to a method a path does not take: 405 naming the method
/// (axum adds the `Allow` header). Install it with
/// `Router::method_not_allowed_fallback` after every route is added.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let path = crate::guard::cut(uri.path());
    response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method",
        &format!("{method} is not allowed on {path} (the Allow header lists what is)"),
    )
}
