//! Envoy's rate-limit service, `envoy.service.ratelimit.v3`, over gRPC.
//!
//! Served on the `h2` crate directly rather than through hyper or a generic
//! gRPC stack (see docs/adr/0002-grpc-on-hyper.md): one unary method needs
//! only the 5-byte message frame, the prost types from `envoy-types` and the
//! `grpc-status` trailer.
//!
//! Each connection is one task that also answers its streams; no task is
//! spawned per stream. One turn of the connection accepts every stream whose
//! request has arrived, answers each in place (its body is almost always
//! already buffered, and the memory store decides without waiting), and
//! only then lets `h2` write, so the answers to a burst of requests leave in
//! one write. A stream that cannot be answered at once (body still arriving,
//! a store that waits) is parked with its own time limit and polled when
//! woken.

use crate::engine::{Engine, RequestError};
use crate::limits::{
    CONNECTION_WINDOW_BYTES, MAX_HEADER_LIST_BYTES, MAX_MESSAGE_BYTES, MAX_SEND_BUFFER_BYTES,
    MAX_STREAMS_PER_CONNECTION, REQUEST_TIMEOUT, STREAM_WINDOW_BYTES,
};
use crate::server::{accept_loop, Connection, ListenerOptions, ListenerStats, Shutdown};
use crate::stats::{Api, ErrorKind, Outcome};
use bytes::{BufMut, Bytes, BytesMut};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use floodgate_store::CounterStore;
use futures_util::stream::{FuturesUnordered, StreamExt};
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderMap, HeaderValue, Request, Response};
use prost::Message;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::net::{TcpListener, TcpStream};

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

/// Serves gRPC on every connection `listener` accepts until `shutdown`
/// completes, under the cap and timeouts of `options` (see
/// [`accept_loop`]); then each connection sends GOAWAY, finishes its open
/// streams and closes.
pub async fn serve<S: CounterStore>(
    listener: TcpListener,
    engine: Arc<Engine<S>>,
    options: ListenerOptions,
    stats: Arc<ListenerStats>,
    shutdown: impl Future<Output = ()>,
) {
    accept_loop(
        listener,
        options,
        stats,
        shutdown,
        move |stream, connection, stop| serve_connection(engine.clone(), stream, connection, stop),
    )
    .await;
}

/// The HTTP/2 settings of a gRPC connection.
fn h2_builder() -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .max_header_list_size(MAX_HEADER_LIST_BYTES)
        .initial_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_send_buffer_size(MAX_SEND_BUFFER_BYTES);
    builder
}

type Accepted = (Request<RecvStream>, SendResponse<Bytes>);

/// Room for a usual framed response (a few statuses and headers); more is
/// allocated when needed.
const RESPONSE_CAPACITY: usize = 512;

/// Serves one HTTP/2 connection: every stream is answered inside this task,
/// which tells `activity` how many are waiting (the idle timeout and the
/// shedding at the cap spare a connection with streams in flight).
async fn serve_connection<S: CounterStore>(
    engine: Arc<Engine<S>>,
    stream: TcpStream,
    activity: Connection,
    stop: Shutdown,
) {
    let mut stop = pin!(stop.requested());
    let mut connection = tokio::select! {
        handshake = h2_builder().handshake::<_, Bytes>(stream) => match handshake {
            Ok(connection) => connection,
            Err(error) => {
                tracing::debug!(%error, "HTTP/2 handshake failed");
                return;
            }
        },
        () = stop.as_mut() => return,
    };
    let engine = &*engine;
    let mut stopping = false;
    // Streams accepted in this turn, answered before h2 writes again.
    let mut batch: Vec<Accepted> = Vec::new();
    // Streams that could not be answered at once.
    let mut parked = FuturesUnordered::new();
    poll_fn(|cx| {
        if !stopping && stop.as_mut().poll(cx).is_ready() {
            // GOAWAY; h2 closes the connection once its open streams are
            // answered.
            stopping = true;
            connection.graceful_shutdown();
        }
        loop {
            // Accepting also drives the connection: it reads every frame
            // that has arrived and writes everything queued since.
            loop {
                match connection.poll_accept(cx) {
                    Poll::Ready(Some(Ok(accepted))) => batch.push(accepted),
                    Poll::Ready(Some(Err(error))) => {
                        tracing::debug!(%error, "HTTP/2 connection error");
                        return Poll::Ready(());
                    }
                    // Closed: open streams cannot be answered any more.
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => break,
                }
            }
            let mut answered = !batch.is_empty();
            for (request, respond) in batch.drain(..) {
                let mut stream = Box::pin(serve_stream(engine, request, respond));
                if stream.as_mut().poll(cx).is_pending() {
                    parked.push(stream);
                }
            }
            while let Poll::Ready(Some(())) = parked.poll_next_unpin(cx) {
                answered = true;
            }
            activity.set_in_flight(parked.len(), answered);
            if !answered {
                return Poll::Pending;
            }
            // Answers were queued: go round again so that h2 writes them.
        }
    })
    .await;
}

/// Why a call failed: what is counted, the status and its message.
#[derive(Debug)]
pub struct Failure {
    pub kind: ErrorKind,
    pub code: GrpcCode,
    pub message: String,
}

impl Failure {
    fn new(kind: ErrorKind, code: GrpcCode, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            code,
            message: message.into(),
        }
    }
}

/// Answers one stream: one framed message and `grpc-status: 0`, or a
/// trailers-only error.
async fn serve_stream<S: CounterStore>(
    engine: &Engine<S>,
    request: Request<RecvStream>,
    respond: SendResponse<Bytes>,
) {
    let result = match within_time_limit(answer(engine, request)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(Failure::new(
            ErrorKind::Timeout,
            GrpcCode::DeadlineExceeded,
            "request took longer than the service's time limit",
        )),
    };
    match result {
        Ok(message) => send_message(respond, message),
        Err(failure) => {
            engine.metrics.error(Api::Grpc, failure.kind);
            send_status(respond, failure.code, &failure.message);
        }
    }
}

/// Runs `future` under [`REQUEST_TIMEOUT`]. A request answered on its first
/// poll (nearly all) never arms a timer.
async fn within_time_limit<F: Future>(future: F) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut future = pin!(future);
    let first = poll_fn(|cx| Poll::Ready(poll_once(future.as_mut(), cx))).await;
    match first {
        Some(output) => Ok(output),
        None => tokio::time::timeout(REQUEST_TIMEOUT, future).await,
    }
}

fn poll_once<F: Future>(future: Pin<&mut F>, cx: &mut Context<'_>) -> Option<F::Output> {
    match future.poll(cx) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// Decides one call; the framed response message on success.
async fn answer<S: CounterStore>(
    engine: &Engine<S>,
    request: Request<RecvStream>,
) -> Result<Bytes, Failure> {
    if request.uri().path() != SHOULD_RATE_LIMIT_PATH {
        return Err(Failure::new(
            ErrorKind::Unimplemented,
            GrpcCode::Unimplemented,
            format!("unknown method {}", request.uri().path()),
        ));
    }
    let body = read_body(request.into_body()).await?;
    let started = Instant::now();
    let decoded = decode_request(&body)?;
    // The 5-byte message prefix, its length filled in once encoded.
    let mut framed = BytesMut::with_capacity(RESPONSE_CAPACITY);
    framed.put_bytes(0, 5);
    let code =
        engine
            .check_encoded(&decoded, &mut framed)
            .await
            .map_err(|error: RequestError| {
                let code = match error.kind {
                    ErrorKind::Store => GrpcCode::Unavailable,
                    ErrorKind::Timeout => GrpcCode::DeadlineExceeded,
                    _ => GrpcCode::InvalidArgument,
                };
                Failure::new(error.kind, code, error.to_string())
            })?;
    // The decoded request is ours: it moves into the traffic ring.
    engine.record(decoded);
    let length = u32::try_from(framed.len() - 5).unwrap_or(u32::MAX);
    framed[1..5].copy_from_slice(&length.to_be_bytes());
    let outcome = if code == Code::OverLimit {
        Outcome::OverLimit
    } else {
        Outcome::Ok
    };
    engine
        .metrics
        .request(Api::Grpc, outcome, started.elapsed());
    Ok(framed.freeze())
}

/// Decodes a whole unary request body (the 5-byte prefix, then one
/// `RateLimitRequest`): the wire's part of every call, before the engine
/// validates and decides it. Public for the fuzz targets (`fuzz/`).
pub fn decode_request(body: &Bytes) -> Result<RateLimitRequest, Failure> {
    let message = unframe(body)?;
    RateLimitRequest::decode(message).map_err(|error| {
        Failure::new(
            ErrorKind::InvalidArgument,
            GrpcCode::InvalidArgument,
            format!("malformed RateLimitRequest: {error}"),
        )
    })
}

/// Reads a request body of at most one maximal message with its prefix.
async fn read_body(mut body: RecvStream) -> Result<Bytes, Failure> {
    let too_large = || {
        Failure::new(
            ErrorKind::TooLarge,
            GrpcCode::ResourceExhausted,
            format!("request message larger than {MAX_MESSAGE_BYTES} bytes"),
        )
    };
    // Nearly always one DATA frame: keep it as it came, without copying.
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    while let Some(chunk) = body.data().await {
        // A body that fails (stream reset by the client, connection lost)
        // is counted as `too_large`, as hyper's `Limited` reported it
        // before; the answer cannot reach the client anyway.
        let chunk = chunk.map_err(|_| too_large())?;
        let _ = body.flow_control().release_capacity(chunk.len());
        let received = first.as_ref().map_or(0, Bytes::len) + joined.len() + chunk.len();
        if received > MAX_MESSAGE_BYTES + 5 {
            return Err(too_large());
        }
        match first.take() {
            None if joined.is_empty() => first = Some(chunk),
            None => joined.extend_from_slice(&chunk),
            Some(earlier) => {
                joined.extend_from_slice(&earlier);
                joined.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| joined.freeze()))
}

/// Splits the one length-prefixed message out of a unary request body.
fn unframe(body: &Bytes) -> Result<Bytes, Failure> {
    let invalid = |message: String| {
        Failure::new(
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
        return Err(Failure::new(
            ErrorKind::Unimplemented,
            GrpcCode::Unimplemented,
            "grpc frame: compressed messages are not supported",
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

const CONTENT_TYPE: HeaderValue = HeaderValue::from_static("application/grpc");

/// Sends response headers, the one message and the `grpc-status: 0`
/// trailer. A stream the client has reset is dropped silently.
fn send_message(mut respond: SendResponse<Bytes>, message: Bytes) {
    let mut response = Response::new(());
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, CONTENT_TYPE);
    let Ok(mut send) = respond.send_response(response, false) else {
        return;
    };
    if send.send_data(message, false).is_err() {
        return;
    }
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let _ = send.send_trailers(trailers);
}

/// Sends a trailers-only error response.
fn send_status(mut respond: SendResponse<Bytes>, code: GrpcCode, message: &str) {
    let _ = respond.send_response(status_only(code, message), true);
}

/// The headers of a trailers-only error response (gRPC over HTTP/2: status
/// 200, `grpc-status` and a percent-encoded `grpc-message`).
pub fn status_only(code: GrpcCode, message: &str) -> Response<()> {
    let mut response = Response::new(());
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, CONTENT_TYPE);
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

    /// The connection-level paths the integration suite cannot reach on
    /// purpose: a stream parked because its body is still arriving, its
    /// time limit, and graceful shutdown while it is parked. Driven by the
    /// `h2` client so a request body can be sent in parts.
    mod parked {
        use super::super::*;
        use crate::clock::ManualClock;
        use crate::engine::EngineOptions;
        use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
        use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
        use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitResponse;
        use floodgate_limiter::config::{load, ConfigSource};
        use floodgate_store::MemoryStore;
        use std::net::SocketAddr;
        use tokio::sync::oneshot;

        const CONFIG: &str = "domain: api\ndescriptors:\n  - key: tenant\n    rate_limit: {unit: second, requests_per_unit: 100, name: per_tenant}\n";

        struct Server {
            addr: SocketAddr,
            engine: Arc<Engine<MemoryStore>>,
            stop: Option<oneshot::Sender<()>>,
            task: tokio::task::JoinHandle<()>,
        }

        async fn start() -> Server {
            let table = match load(&[ConfigSource::new("test.yaml", CONFIG)]) {
                Ok(table) => table,
                Err(error) => panic!("{error}"),
            };
            let engine = Arc::new(Engine::new(
                table,
                MemoryStore::new(100),
                Arc::new(ManualClock::at_ns(1_767_225_600_000_000_000)),
                EngineOptions::default(),
            ));
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("address");
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(serve(
                listener,
                engine.clone(),
                crate::server::ListenerOptions::default(),
                Arc::default(),
                async move {
                    let _ = stopped.await;
                },
            ));
            Server {
                addr,
                engine,
                stop: Some(stop),
                task,
            }
        }

        type Client = h2::client::SendRequest<Bytes>;

        async fn connect(addr: SocketAddr) -> (Client, tokio::task::JoinHandle<()>) {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (client, connection) = h2::client::handshake(stream).await.expect("handshake");
            let driver = tokio::spawn(async move {
                let _ = connection.await;
            });
            (client, driver)
        }

        fn framed(tenant: &str) -> Bytes {
            let request = RateLimitRequest {
                domain: "api".to_string(),
                descriptors: vec![RateLimitDescriptor {
                    entries: vec![Entry {
                        key: "tenant".to_string(),
                        value: tenant.to_string(),
                    }],
                    ..RateLimitDescriptor::default()
                }],
                hits_addend: 0,
            };
            let message = request.encode_to_vec();
            let mut framed = BytesMut::new();
            framed.put_u8(0);
            framed.put_u32(message.len() as u32);
            framed.put_slice(&message);
            framed.freeze()
        }

        /// Starts a call whose body is sent in two parts; sends the first.
        async fn start_call(
            client: &mut Client,
            body: &Bytes,
        ) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
            let request = Request::post(format!("http://test{SHOULD_RATE_LIMIT_PATH}"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .expect("request");
            poll_fn(|cx| client.poll_ready(cx)).await.expect("ready");
            let (response, mut send) = client.send_request(request, false).expect("send");
            send.send_data(body.slice(..3), false).expect("first part");
            (response, send)
        }

        /// A whole call on the same connection. Streams are accepted in
        /// order, so once it is answered an earlier partial call has been
        /// accepted and parked.
        async fn whole_call(client: &mut Client, body: Bytes) -> (String, RateLimitResponse) {
            let (response, mut send) = start_call(client, &body).await;
            send.send_data(body.slice(3..), true).expect("rest");
            read(response).await
        }

        /// grpc-status and the decoded message (default if none).
        async fn read(response: h2::client::ResponseFuture) -> (String, RateLimitResponse) {
            let response = response.await.expect("response");
            let headers = response.headers().clone();
            let mut body = response.into_body();
            let mut message = BytesMut::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.expect("data");
                let _ = body.flow_control().release_capacity(chunk.len());
                message.extend_from_slice(&chunk);
            }
            let trailers = body.trailers().await.expect("trailers").unwrap_or_default();
            let status = headers
                .get("grpc-status")
                .or_else(|| trailers.get("grpc-status"))
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_string();
            let decoded = if message.len() > 5 {
                RateLimitResponse::decode(&message[5..]).expect("message")
            } else {
                RateLimitResponse::default()
            };
            (status, decoded)
        }

        #[tokio::test]
        async fn a_body_that_arrives_later_is_answered() {
            let server = start().await;
            let (mut client, _driver) = connect(server.addr).await;
            let slow = framed("slow");
            let (pending, mut rest) = start_call(&mut client, &slow).await;
            let (status, answer) = whole_call(&mut client, framed("fast")).await;
            assert_eq!(
                (status.as_str(), answer.statuses[0].limit_remaining),
                ("0", 99)
            );
            rest.send_data(slow.slice(3..), true).expect("rest");
            let (status, answer) = read(pending).await;
            assert_eq!(status, "0");
            assert_eq!(answer.statuses[0].limit_remaining, 99);
        }

        #[tokio::test(start_paused = true)]
        async fn a_body_that_never_completes_is_answered_deadline_exceeded() {
            let server = start().await;
            let (mut client, _driver) = connect(server.addr).await;
            let (pending, _rest) = start_call(&mut client, &framed("stuck")).await;
            // Paused time jumps to the time limit once everything is idle.
            let (status, _) = read(pending).await;
            assert_eq!(status, "4", "DEADLINE_EXCEEDED");
            assert_eq!(
                server.engine.metrics.errors(Api::Grpc, ErrorKind::Timeout),
                1
            );
            let (status, _) = whole_call(&mut client, framed("after")).await;
            assert_eq!(status, "0", "the connection still serves");
        }

        #[tokio::test]
        async fn shutdown_answers_parked_streams_then_closes() {
            let mut server = start().await;
            let (mut client, driver) = connect(server.addr).await;
            let slow = framed("slow");
            let (pending, mut rest) = start_call(&mut client, &slow).await;
            let (status, _) = whole_call(&mut client, framed("fast")).await;
            assert_eq!(status, "0");
            if let Some(stop) = server.stop.take() {
                let _ = stop.send(());
            }
            // The listener closes; the open connection finishes its stream.
            while TcpStream::connect(server.addr).await.is_ok() {
                tokio::task::yield_now().await;
            }
            rest.send_data(slow.slice(3..), true).expect("rest");
            let (status, answer) = read(pending).await;
            assert_eq!(status, "0");
            assert_eq!(answer.statuses[0].limit_remaining, 99);
            // Then GOAWAY: the connection ends and so does the server.
            driver.await.expect("client connection ends");
            server.task.await.expect("server stops");
            assert_eq!(server.engine.metrics.requests(Api::Grpc, Outcome::Ok), 2);
        }
    }

    #[test]
    fn status_only_carries_code_and_encoded_message() {
        let response = status_only(GrpcCode::InvalidArgument, "bad é");
        let headers = response.headers();
        assert_eq!(headers["grpc-status"], "3");
        assert_eq!(headers["grpc-message"], "bad %C3%A9");
        assert_eq!(headers["content-type"], "application/grpc");
    }
}
