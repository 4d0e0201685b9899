//! Envoy's rate-limit service, `envoy.service.ratelimit.v3`, over gRPC.
//!
//! Served directly on hyper's HTTP/2 rather than through a generic gRPC
//! stack: one unary method needs only the 5-byte message frame, the prost
//! types from `envoy-types` and the `grpc-status` trailer, and skipping the
//! generic layers (boxed bodies, streaming codecs, tower stacks) is most of
//! the per-request cost (see docs/adr/0002-grpc-on-hyper.md).

use crate::engine::{Engine, RequestError};
use crate::limits::{MAX_MESSAGE_BYTES, REQUEST_TIMEOUT};
use crate::stats::{Api, ErrorKind, Outcome};
use bytes::{BufMut, Bytes, BytesMut};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use floodgate_store::CounterStore;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use prost::Message;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// The one method this service answers.
pub const SHOULD_RATE_LIMIT_PATH: &str =
    "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

/// gRPC status codes used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcCode {
    Ok = 0,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    ResourceExhausted = 8,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
}

/// A response body of at most one message, followed by trailers.
#[derive(Debug)]
pub struct GrpcBody {
    message: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(message) = self.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        Poll::Ready(
            self.trailers
                .take()
                .map(|trailers| Ok(Frame::trailers(trailers))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.message.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let length = self
            .message
            .as_ref()
            .map_or(0, |message| message.len() as u64);
        SizeHint::with_exact(length)
    }
}

/// The hyper service answering gRPC requests.
#[derive(Debug)]
pub struct GrpcService<S> {
    engine: Arc<Engine<S>>,
}

impl<S> Clone for GrpcService<S> {
    fn clone(&self) -> Self {
        GrpcService {
            engine: self.engine.clone(),
        }
    }
}

impl<S: CounterStore> GrpcService<S> {
    pub fn new(engine: Arc<Engine<S>>) -> Self {
        GrpcService { engine }
    }
}

impl<S: CounterStore> hyper::service::Service<Request<Incoming>> for GrpcService<S> {
    type Response = Response<GrpcBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<GrpcBody>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let engine = self.engine.clone();
        Box::pin(async move {
            let response =
                match tokio::time::timeout(REQUEST_TIMEOUT, answer(&engine, request)).await {
                    Ok(Ok(response)) => response,
                    Ok(Err((kind, code, message))) => {
                        engine.metrics.error(Api::Grpc, kind);
                        status_only(code, &message)
                    }
                    Err(_elapsed) => {
                        engine.metrics.error(Api::Grpc, ErrorKind::Timeout);
                        status_only(
                            GrpcCode::DeadlineExceeded,
                            "request took longer than the service's time limit",
                        )
                    }
                };
            Ok(response)
        })
    }
}

type Failure = (ErrorKind, GrpcCode, String);

async fn answer<S: CounterStore>(
    engine: &Engine<S>,
    request: Request<Incoming>,
) -> Result<Response<GrpcBody>, Failure> {
    if request.uri().path() != SHOULD_RATE_LIMIT_PATH {
        return Err((
            ErrorKind::Unimplemented,
            GrpcCode::Unimplemented,
            format!("unknown method {}", request.uri().path()),
        ));
    }
    let body = Limited::new(request.into_body(), MAX_MESSAGE_BYTES + 5)
        .collect()
        .await
        .map_err(|_| {
            (
                ErrorKind::TooLarge,
                GrpcCode::ResourceExhausted,
                format!("request message larger than {MAX_MESSAGE_BYTES} bytes"),
            )
        })?
        .to_bytes();
    let started = Instant::now();
    let message = unframe(&body)?;
    let decoded = RateLimitRequest::decode(message).map_err(|error| {
        (
            ErrorKind::InvalidArgument,
            GrpcCode::InvalidArgument,
            format!("malformed RateLimitRequest: {error}"),
        )
    })?;
    let checked = engine
        .check(&decoded, &[])
        .await
        .map_err(|error: RequestError| {
            let code = match error.kind {
                ErrorKind::Store => GrpcCode::Unavailable,
                ErrorKind::Timeout => GrpcCode::DeadlineExceeded,
                _ => GrpcCode::InvalidArgument,
            };
            (error.kind, code, error.to_string())
        })?;
    let outcome = if checked.response.overall_code == Code::OverLimit as i32 {
        Outcome::OverLimit
    } else {
        Outcome::Ok
    };
    let length = checked.response.encoded_len();
    let mut framed = BytesMut::with_capacity(5 + length);
    framed.put_u8(0);
    framed.put_u32(u32::try_from(length).unwrap_or(u32::MAX));
    checked
        .response
        .encode(&mut framed)
        .map_err(|error| (ErrorKind::Internal, GrpcCode::Internal, error.to_string()))?;
    engine
        .metrics
        .request(Api::Grpc, outcome, started.elapsed());
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut response = Response::new(GrpcBody {
        message: Some(framed.freeze()),
        trailers: Some(trailers),
    });
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    Ok(response)
}

/// Splits the one length-prefixed message out of a unary request body.
fn unframe(body: &Bytes) -> Result<Bytes, Failure> {
    let invalid = |message: String| {
        (
            ErrorKind::InvalidArgument,
            GrpcCode::InvalidArgument,
            message,
        )
    };
    if body.len() < 5 {
        return Err(invalid(format!(
            "grpc frame: {} bytes, shorter than the 5-byte message prefix",
            body.len()
        )));
    }
    if body[0] != 0 {
        return Err((
            ErrorKind::Unimplemented,
            GrpcCode::Unimplemented,
            "grpc frame: compressed messages are not supported".to_string(),
        ));
    }
    let declared = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if declared != body.len() - 5 {
        return Err(invalid(format!(
            "grpc frame: prefix declares {declared} bytes but {} follow (one message per call)",
            body.len() - 5
        )));
    }
    Ok(body.slice(5..))
}

/// A trailers-only error response.
pub fn status_only(code: GrpcCode, message: &str) -> Response<GrpcBody> {
    let mut response = Response::new(GrpcBody {
        message: None,
        trailers: None,
    });
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(code as u16));
    if let Ok(value) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert("grpc-message", value);
    }
    response
}

/// grpc-message is percent-encoded (gRPC over HTTP/2 spec).
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unframe_checks_prefix() {
        assert!(unframe(&Bytes::from_static(&[0, 0, 0])).is_err());
        assert!(unframe(&Bytes::from_static(&[1, 0, 0, 0, 0])).is_err());
        assert!(unframe(&Bytes::from_static(&[0, 0, 0, 0, 2, 1])).is_err());
        let ok = unframe(&Bytes::from_static(&[0, 0, 0, 0, 1, 7])).expect("valid frame");
        assert_eq!(&ok[..], &[7]);
    }

    #[test]
    fn percent_encodes_non_ascii() {
        assert_eq!(percent_encode("a%b é"), "a%25b %C3%A9");
    }
}
