//! The HTTP API: `POST /v1/check`, `GET /metrics`, and the control plane
//! (`crate::control`: state, health, events, config, actions) merged in.
//!
//! `/v1/check` takes the Envoy request as JSON (proto3 JSON field names, in
//! snake_case or camelCase) and answers the Envoy response as JSON, with the
//! rate-limit headers set on the HTTP response itself. Over the limit, the
//! status is 429 so plain HTTP clients need not parse the body.

use crate::engine::{Engine, RequestError};
use crate::limits::{MAX_MESSAGE_BYTES, REQUEST_TIMEOUT};
use crate::stats::{self, Api, ErrorKind, Outcome, RenderInput};
use crate::ServiceInfo;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::{
    Entry, RateLimitOverride,
};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::UInt64Value;
use floodgate_limiter::{LeaseId, Unit};
use floodgate_store::CounterStore;
use http_body_util::{BodyExt, Limited};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// The shared state of HTTP handlers.
pub struct HttpState<S> {
    pub engine: Arc<Engine<S>>,
    pub info: ServiceInfo,
    /// The control plane: state, health, events, config, actions.
    pub control: Arc<crate::control::Control<S>>,
    /// Whether bearer tokens are required (reported in `/v1/state`).
    pub access_control: bool,
    /// What the listeners count (`/metrics`).
    pub listeners: crate::Listeners,
}

/// Builds the router for the HTTP API.
pub fn router<S: CounterStore>(state: Arc<HttpState<S>>) -> Router {
    Router::new()
        .route("/v1/check", post(check::<S>))
        .route("/metrics", get(metrics::<S>))
        .route("/v1/openapi.json", get(crate::openapi::serve))
        .merge(crate::control::routes::<S>())
        .method_not_allowed_fallback(floodgate_edge::refusal::method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(state)
}

/// A JSON error: `{"error": {"kind", "field", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: ErrorKind,
    pub field: String,
    pub message: String,
}

impl ApiError {
    fn from_request(error: RequestError) -> ApiError {
        let status = match error.kind {
            ErrorKind::Store => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError {
            status,
            kind: error.kind,
            field: error.field,
            message: error.message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "kind": self.kind.as_str(),
                "field": self.field,
                "message": self.message,
            }
        });
        (self.status, Json(body)).into_response()
    }
}

async fn not_found() -> Response {
    let body =
        json!({"error": {"kind": "not_found", "field": "path", "message": "no such endpoint"}});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

// ---- /v1/check ---------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRequest {
    domain: String,
    #[serde(default)]
    descriptors: Vec<JsonDescriptor>,
    #[serde(default, alias = "hitsAddend")]
    hits_addend: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonDescriptor {
    #[serde(default)]
    entries: Vec<JsonEntry>,
    #[serde(default)]
    limit: Option<JsonOverride>,
    #[serde(default, alias = "hitsAddend")]
    hits_addend: Option<u64>,
    #[serde(default, alias = "isNegativeHits")]
    is_negative_hits: bool,
    /// Floodgate extension: release this concurrency lease.
    #[serde(default, alias = "releaseLease")]
    release_lease: Option<LeaseId>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEntry {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonOverride {
    #[serde(alias = "requestsPerUnit")]
    requests_per_unit: u32,
    unit: String,
}

#[derive(Debug, Serialize)]
struct JsonResponse {
    overall_code: &'static str,
    statuses: Vec<JsonStatus>,
    response_headers_to_add: Vec<JsonHeader>,
}

#[derive(Debug, Serialize)]
struct JsonStatus {
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_limit: Option<JsonLimit>,
    limit_remaining: u32,
    /// proto3 JSON form of a Duration: seconds with an `s` suffix.
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_until_reset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_id: Option<LeaseId>,
}

#[derive(Debug, Serialize)]
struct JsonLimit {
    name: String,
    requests_per_unit: u32,
    unit: String,
}

#[derive(Debug, Serialize)]
struct JsonHeader {
    key: String,
    value: String,
}

fn code_name(code: i32) -> &'static str {
    match Code::try_from(code) {
        Ok(Code::Ok) => "OK",
        Ok(Code::OverLimit) => "OVER_LIMIT",
        _ => "UNKNOWN",
    }
}

/// Parses a `/v1/check` body into the Envoy request and, per descriptor,
/// the concurrency lease it releases; the error names the field. The
/// engine validates the request's shape afterwards
/// ([`crate::engine::validate`]). Public for the fuzz targets (`fuzz/`).
pub fn parse_request(
    body: &[u8],
) -> Result<(RateLimitRequest, Vec<Option<LeaseId>>), RequestError> {
    // serde reads a struct from a JSON array too (fields by position):
    // a check request is an object, nothing else.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(RequestError::invalid(
            "body",
            "expected a JSON object (a check request), e.g. {\"domain\": …, \"descriptors\": […]}",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed: JsonRequest =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            // The root (or a syntax error before any field) has no path.
            let field = if matches!(path.as_str(), "." | "?" | "") {
                "body".to_string()
            } else {
                path
            };
            RequestError::invalid(field, error.inner().to_string())
        })?;
    let mut releases = Vec::with_capacity(parsed.descriptors.len());
    let mut descriptors = Vec::with_capacity(parsed.descriptors.len());
    for (index, descriptor) in parsed.descriptors.into_iter().enumerate() {
        let limit = match descriptor.limit {
            None => None,
            Some(limit) => {
                let unit = Unit::parse(&limit.unit).ok_or_else(|| {
                    RequestError::invalid(
                        format!("descriptors[{index}].limit.unit"),
                        format!(
                            "unknown unit \"{}\" (expected one of second, minute, hour, day, week, month, year)",
                            limit.unit
                        ),
                    )
                })?;
                Some(RateLimitOverride {
                    requests_per_unit: limit.requests_per_unit,
                    unit: unit.envoy_code(),
                })
            }
        };
        releases.push(descriptor.release_lease);
        descriptors.push(RateLimitDescriptor {
            entries: descriptor
                .entries
                .into_iter()
                .map(|entry| Entry {
                    key: entry.key,
                    value: entry.value,
                })
                .collect(),
            limit,
            hits_addend: descriptor.hits_addend.map(|value| UInt64Value { value }),
            is_negative_hits: descriptor.is_negative_hits,
        });
    }
    let request = RateLimitRequest {
        domain: parsed.domain,
        descriptors,
        hits_addend: parsed.hits_addend.unwrap_or(0),
    };
    Ok((request, releases))
}

/// The request as the traffic recorder keeps it: a descriptor that
/// released a concurrency lease is kept as a refund of its hits (a replay
/// has no lease ids), which gives back what the lease held when it held
/// that many.
fn recorded_form(mut request: RateLimitRequest, releases: &[Option<LeaseId>]) -> RateLimitRequest {
    for (descriptor, release) in request.descriptors.iter_mut().zip(releases) {
        if release.is_some() {
            descriptor.is_negative_hits = true;
        }
    }
    request
}

fn to_json(response: &RateLimitResponse, leases: &[Option<LeaseId>]) -> JsonResponse {
    JsonResponse {
        overall_code: code_name(response.overall_code),
        statuses: response
            .statuses
            .iter()
            .enumerate()
            .map(|(index, status)| JsonStatus {
                code: code_name(status.code),
                current_limit: status.current_limit.as_ref().map(|limit| JsonLimit {
                    name: limit.name.clone(),
                    requests_per_unit: limit.requests_per_unit,
                    unit: Unit::from_envoy_code(limit.unit).map_or("UNKNOWN".to_string(), |unit| {
                        unit.as_str().to_ascii_uppercase()
                    }),
                }),
                limit_remaining: status.limit_remaining,
                duration_until_reset: status.duration_until_reset.map(|duration| {
                    let nanos = duration.nanos.max(0);
                    if nanos == 0 {
                        format!("{}s", duration.seconds)
                    } else {
                        let fraction = format!("{nanos:09}");
                        format!("{}.{}s", duration.seconds, fraction.trim_end_matches('0'))
                    }
                }),
                lease_id: leases.get(index).copied().flatten(),
            })
            .collect(),
        response_headers_to_add: response
            .response_headers_to_add
            .iter()
            .map(|header| JsonHeader {
                key: header.key.clone(),
                value: header.value.clone(),
            })
            .collect(),
    }
}

async fn check<S: CounterStore>(State(state): State<Arc<HttpState<S>>>, body: Body) -> Response {
    let engine = &state.engine;
    let started = Instant::now();
    let decided = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let body: Bytes = Limited::new(body, MAX_MESSAGE_BYTES)
            .collect()
            .await
            .map_err(|_| RequestError {
                kind: ErrorKind::TooLarge,
                field: "body".to_string(),
                message: format!("request body larger than {MAX_MESSAGE_BYTES} bytes"),
            })?
            .to_bytes();
        let (request, releases) = parse_request(&body)?;
        let checked = engine.check(&request, &releases).await?;
        Ok::<_, RequestError>((request, releases, checked))
    })
    .await;
    let checked = match decided {
        Ok(Ok((request, releases, checked))) => {
            engine.record(recorded_form(request, &releases));
            checked
        }
        Ok(Err(error)) => {
            engine.metrics.error(Api::Http, error.kind);
            return ApiError::from_request(error).into_response();
        }
        Err(_elapsed) => {
            engine.metrics.error(Api::Http, ErrorKind::Timeout);
            return ApiError::from_request(RequestError {
                kind: ErrorKind::Timeout,
                field: "request".to_string(),
                message: "request took longer than the service's time limit".to_string(),
            })
            .into_response();
        }
    };
    let over = checked.response.overall_code == Code::OverLimit as i32;
    let outcome = if over {
        Outcome::OverLimit
    } else {
        Outcome::Ok
    };
    engine
        .metrics
        .request(Api::Http, outcome, started.elapsed());
    let status = if over {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    let json = to_json(&checked.response, &checked.leases);
    let mut response = (status, Json(json)).into_response();
    let headers = response.headers_mut();
    for added in &checked.response.response_headers_to_add {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(added.key.as_bytes()),
            HeaderValue::from_str(&added.value),
        ) {
            headers.append(name, value);
        }
    }
    if over {
        if let Some(reset) = checked
            .response
            .statuses
            .iter()
            .filter(|status| status.code == Code::OverLimit as i32)
            .filter_map(|status| status.duration_until_reset)
            .map(|duration| duration.seconds + i64::from(duration.nanos > 0))
            .max()
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(reset.max(0)));
        }
    }
    response
}

// ---- /metrics -------------------------------------------------------------

async fn metrics<S: CounterStore>(State(state): State<Arc<HttpState<S>>>) -> Response {
    let engine = &state.engine;
    let snapshot = engine.snapshot();
    let text = stats::render(&RenderInput {
        service: &engine.metrics,
        limits: engine.registry(),
        store: engine.store_figures(),
        backend: engine.store().resilience().map(|r| r.figures()),
        config_limits: snapshot.table.limits().len() as u64,
        traffic: engine.traffic().figures(),
        listeners: [
            ("grpc", state.listeners.grpc.figures()),
            ("http", state.listeners.http.figures()),
        ],
        version: crate::VERSION,
        start_time_seconds: state.info.started_at as f64 / 1e9,
    });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_field() {
        let error =
            parse_request(br#"{"domain": "a", "descriptors": [{"entries": [{"key": 5}]}]}"#)
                .expect_err("key must be a string");
        assert_eq!(error.field, "descriptors[0].entries[0].key");
        let error = parse_request(br#"{"domain": "a", "descriptors": [{"entries": [], "limit": {"requests_per_unit": 1, "unit": "minutes"}}]}"#)
            .expect_err("bad unit");
        assert_eq!(error.field, "descriptors[0].limit.unit");
        let error = parse_request(b"{not json").expect_err("malformed");
        assert_eq!(error.field, "body");
        let error = parse_request(br#"["a", []]"#).expect_err("an array");
        assert_eq!(error.field, "body");
        assert!(error.message.contains("JSON object"), "{}", error.message);
    }
}
