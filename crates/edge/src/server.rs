//! One accept loop for every listener (the service's gRPC and HTTP, the
//! harness's HTTP): a connection cap that sheds idle connections first,
//! timeouts on every phase of a connection, an accept that backs off on
//! errors, and graceful shutdown.
//!
//! The loop owns the listener and the cap; what runs on each accepted
//! connection is the caller's, given a [`Connection`] to report requests in
//! flight and a [`Shutdown`] to watch. Around it the loop runs a watchdog:
//!
//! - a connection that has not had a request yet is closed
//!   [`ListenerOptions::handshake_timeout`] after accept (TCP, the HTTP/2
//!   preface and SETTINGS, the first request's headers);
//! - a connection with no request in flight is closed
//!   [`ListenerOptions::idle_timeout`] after its last request ended;
//! - at [`ListenerOptions::max_connections`], a new connection sheds the
//!   connection idle the longest; only when every connection has a request
//!   in flight is the new one closed at accept;
//! - an accept error (out of file descriptors, …) is counted, sheds the
//!   longest-idle connection when descriptors ran out, and pauses the loop
//!   (doubling from [`ACCEPT_BACKOFF_MIN`] to [`ACCEPT_BACKOFF_MAX`]):
//!   never a spin.
//!
//! [`serve_connections`] runs hyper (HTTP/1.1 and HTTP/2) on the loop,
//! with HTTP/1's header read timeout and a deadline on every request body
//! ([`ListenerOptions::body_read_timeout`]: answered 408, connection
//! closed). On shutdown the loop closes the listener, tells every
//! connection, and waits up to [`SHUTDOWN_GRACE`] for all of them.

use crate::limits::{
    ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, BODY_READ_TIMEOUT, CONNECTION_WINDOW_BYTES,
    HANDSHAKE_TIMEOUT, HEADER_READ_TIMEOUT, HYPER_MAX_HEADERS, IDLE_TIMEOUT, MAX_CONNECTIONS,
    MAX_HEADER_LIST_BYTES, MAX_REQUEST_HEADERS, MAX_STREAMS_PER_CONNECTION, SHUTDOWN_GRACE,
    STREAM_WINDOW_BYTES,
};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::{Instant, Sleep};
use tokio_util::task::TaskTracker;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which HTTP versions a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/2 with prior knowledge only (gRPC, as Envoy and h2load speak it).
    Http2Only,
    /// HTTP/1.1 and HTTP/2 (the JSON APIs).
    Auto,
}

/// A listener's bounds; [`Default`] is the constants of
/// [`crate::limits`]. Flags may lower them (tests use short timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerOptions {
    /// Open connections; at the cap the longest-idle one is shed.
    pub max_connections: usize,
    /// Accept to the first request's headers.
    pub handshake_timeout: Duration,
    /// An HTTP/1 request's headers.
    pub header_read_timeout: Duration,
    /// A request's body, from its headers ([`serve_connections`] only;
    /// gRPC bounds a whole call by its own time limit).
    pub body_read_timeout: Duration,
    /// No request in flight.
    pub idle_timeout: Duration,
}

impl Default for ListenerOptions {
    fn default() -> ListenerOptions {
        ListenerOptions {
            max_connections: MAX_CONNECTIONS,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

impl ListenerOptions {
    /// Refuses a zero cap or a zero timeout, naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("--max-connections: must be at least 1".to_string());
        }
        for (flag, value) in [
            ("--handshake-timeout", self.handshake_timeout),
            ("--header-read-timeout", self.header_read_timeout),
            ("--body-read-timeout", self.body_read_timeout),
            ("--idle-timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(format!("{flag}: must be more than zero"));
            }
        }
        Ok(())
    }
}

/// What a listener did, counted for metrics.
#[derive(Debug, Default)]
pub struct ListenerStats {
    open: AtomicU64,
    accepted: AtomicU64,
    accept_errors: AtomicU64,
    shed_idle: AtomicU64,
    refused_busy: AtomicU64,
    handshake_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    body_timeouts: AtomicU64,
}

/// A snapshot of [`ListenerStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerFigures {
    /// Connections open now.
    pub open: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Accept calls that failed (out of file descriptors, …).
    pub accept_errors: u64,
    /// Idle connections closed to make room for a new one.
    pub shed_idle: u64,
    /// New connections closed at accept: every connection was busy.
    pub refused_busy: u64,
    /// Connections closed without a first request in time.
    pub handshake_timeouts: u64,
    /// Connections closed after the idle timeout.
    pub idle_timeouts: u64,
    /// Requests whose body did not arrive in time (answered 408).
    pub body_timeouts: u64,
}

impl ListenerFigures {
    /// Closed connections by reason, in the order of [`CLOSE_REASONS`].
    pub fn closed(&self) -> [u64; 5] {
        [
            self.shed_idle,
            self.refused_busy,
            self.handshake_timeouts,
            self.idle_timeouts,
            self.body_timeouts,
        ]
    }
}

/// Why the edge closed a connection (metric label values).
pub const CLOSE_REASONS: [&str; 5] = [
    "shed_idle",
    "refused_busy",
    "handshake_timeout",
    "idle_timeout",
    "body_timeout",
];

impl ListenerStats {
    pub fn figures(&self) -> ListenerFigures {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ListenerFigures {
            open: get(&self.open),
            accepted: get(&self.accepted),
            accept_errors: get(&self.accept_errors),
            shed_idle: get(&self.shed_idle),
            refused_busy: get(&self.refused_busy),
            handshake_timeouts: get(&self.handshake_timeouts),
            idle_timeouts: get(&self.idle_timeouts),
            body_timeouts: get(&self.body_timeouts),
        }
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Tells a connection that shutdown has begun: it should stop taking new
/// requests (HTTP/2: GOAWAY), finish the ones in flight, then close.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Completes once shutdown has begun (at once if it already has).
    pub async fn requested(mut self) {
        // An error means the accept loop is gone, which is shutdown too.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// The address a request arrived on (a request extension set by
/// [`serve_connections`]): the open-mode guard compares Host with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddr(pub SocketAddr);

/// One connection's activity, shared by its task, its watchdog and the
/// accept loop.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    /// Whether a request has started (the handshake timeout is over).
    served: AtomicBool,
    /// Nanoseconds since `base` of the last request start or end.
    last_active: AtomicU64,
    base: Instant,
    shed: Notify,
    local: SocketAddr,
}

impl Activity {
    fn touch(&self) {
        let nanos = u64::try_from(
            Instant::now()
                .saturating_duration_since(self.base)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX);
        self.last_active.store(nanos, Ordering::Release);
    }

    fn last_active(&self) -> Instant {
        self.base + Duration::from_nanos(self.last_active.load(Ordering::Acquire))
    }
}

/// A connection as its server sees it: report requests in flight, so the
/// idle timeout and the shedding spare busy connections.
#[derive(Debug, Clone)]
pub struct Connection(Arc<Activity>);

impl Connection {
    /// The address the connection was accepted on.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local
    }

    /// A request has started; it is in flight until the guard is dropped.
    pub fn begin(&self) -> InFlight {
        self.0.in_flight.fetch_add(1, Ordering::AcqRel);
        self.0.served.store(true, Ordering::Release);
        self.0.touch();
        InFlight(self.0.clone())
    }

    /// For a server that counts its own streams (gRPC): `waiting` requests
    /// are in flight now; `active` says whether any request started or
    /// ended since the last call.
    pub fn set_in_flight(&self, waiting: usize, active: bool) {
        if active {
            self.0.served.store(true, Ordering::Release);
            self.0.touch();
        }
        self.0.in_flight.store(waiting, Ordering::Release);
    }
}

/// A request in flight on a [`Connection`] (see [`Connection::begin`]).
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, Arc<Activity>>,
}

impl Registry {
    /// Closes the connection idle the longest (never sent a request, or
    /// none in flight); false when every connection is busy.
    fn shed_oldest_idle(&mut self, stats: &ListenerStats) -> bool {
        let victim = self
            .open
            .iter()
            .filter(|(_, activity)| activity.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, activity)| activity.last_active.load(Ordering::Acquire))
            .map(|(id, _)| *id);
        let Some(activity) = victim.and_then(|id| self.open.remove(&id)) else {
            return false;
        };
        activity.shed.notify_one();
        ListenerStats::bump(&stats.shed_idle);
        stats.open.store(self.open.len() as u64, Ordering::Relaxed);
        true
    }
}

fn lock(registry: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why the watchdog closed a connection.
enum Expired {
    Handshake,
    Idle,
}

/// Completes when the connection has been idle too long: before its first
/// request, `handshake_timeout` after accept; after it,
/// `idle_timeout` after the last request ended. A connection with a
/// request in flight is looked at again one timeout later.
async fn watchdog(activity: &Activity, options: &ListenerOptions) -> Expired {
    loop {
        let served = activity.served.load(Ordering::Acquire);
        let limit = if served {
            options.idle_timeout
        } else {
            options.handshake_timeout
        };
        if activity.in_flight.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(limit).await;
            continue;
        }
        let deadline = activity.last_active() + limit;
        if Instant::now() >= deadline {
            return if served {
                Expired::Idle
            } else {
                Expired::Handshake
            };
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// Whether an accept error means the process ran out of descriptors
/// (EMFILE, ENFILE), so closing an idle connection makes room.
fn out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(23 | 24))
}

/// Accepts connections on `listener` until `shutdown` completes, running
/// `serve(stream, connection, signal)` on its own task for each, under the
/// watchdog and the cap of `options` (see the module docs). Then closes the
/// listener, signals every connection and waits up to [`SHUTDOWN_GRACE`]
/// for them to finish.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    options: ListenerOptions,
    stats: Arc<ListenerStats>,
    shutdown: impl Future<Output = ()>,
    mut serve: F,
) where
    F: FnMut(TcpStream, Connection, Shutdown) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let base = Instant::now();
    let registry = Arc::new(Mutex::new(Registry::default()));
    let tracker = TaskTracker::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut backoff: Option<Duration> = None;
    let fallback_local = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                backoff = None;
                stream
            }
            Err(error) => {
                ListenerStats::bump(&stats.accept_errors);
                let shed = out_of_descriptors(&error) && lock(&registry).shed_oldest_idle(&stats);
                let pause = backoff.map_or(ACCEPT_BACKOFF_MIN, |previous| {
                    (previous * 2).min(ACCEPT_BACKOFF_MAX)
                });
                if backoff.is_none() {
                    tracing::warn!(%error, ?pause, shed, "accept failed; backing off");
                } else {
                    tracing::debug!(%error, ?pause, shed, "accept failed again");
                }
                backoff = Some(pause);
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        ListenerStats::bump(&stats.accepted);
        let activity = Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            last_active: AtomicU64::new(0),
            base,
            shed: Notify::new(),
            local: stream.local_addr().unwrap_or(fallback_local),
        });
        activity.touch();
        let id = {
            let mut registry = lock(&registry);
            if registry.open.len() >= options.max_connections && !registry.shed_oldest_idle(&stats)
            {
                ListenerStats::bump(&stats.refused_busy);
                tracing::debug!(
                    limit = options.max_connections,
                    "every connection is busy; closing the new one"
                );
                continue;
            }
            let id = registry.next_id;
            registry.next_id += 1;
            registry.open.insert(id, activity.clone());
            stats
                .open
                .store(registry.open.len() as u64, Ordering::Relaxed);
            id
        };
        let _ = stream.set_nodelay(true);
        let connection = serve(
            stream,
            Connection(activity.clone()),
            Shutdown(stop_rx.clone()),
        );
        let registry = registry.clone();
        let stats = stats.clone();
        tracker.spawn(async move {
            tokio::select! {
                () = connection => {}
                () = activity.shed.notified() => {}
                expired = watchdog(&activity, &options) => match expired {
                    Expired::Handshake => ListenerStats::bump(&stats.handshake_timeouts),
                    Expired::Idle => ListenerStats::bump(&stats.idle_timeouts),
                },
            }
            let mut registry = lock(&registry);
            registry.open.remove(&id);
            stats
                .open
                .store(registry.open.len() as u64, Ordering::Relaxed);
        });
    }
    drop(listener);
    stop_tx.send_replace(true);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the shutdown grace period");
    }
}

/// Serves a hyper `service` on every connection `listener` accepts until
/// `shutdown` completes (see [`accept_loop`]). Every request carries its
/// [`LocalAddr`]; its body must arrive within `body_read_timeout`, else the
/// answer is 408 with a JSON error naming `body`, and the connection is
/// closed.
pub async fn serve_connections<S, B>(
    listener: TcpListener,
    protocol: Protocol,
    options: ListenerOptions,
    stats: Arc<ListenerStats>,
    service: S,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<DeadlineBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_headers(HYPER_MAX_HEADERS);
    builder
        .http2()
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .max_header_list_size(MAX_HEADER_LIST_BYTES)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES);
    let builder = match protocol {
        Protocol::Http2Only => builder.http2_only(),
        Protocol::Auto => builder,
    };
    let builder = Arc::new(builder);
    let loop_stats = stats.clone();
    accept_loop(
        listener,
        options,
        loop_stats,
        shutdown,
        move |stream, connection, stop| {
            let tracked = Tracked {
                inner: service.clone(),
                connection,
                body_timeout: options.body_read_timeout,
                stats: stats.clone(),
            };
            let connection = builder
                .serve_connection(TokioIo::new(stream), tracked)
                .into_owned();
            async move {
                tokio::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => return,
                    () = stop.requested() => connection.as_mut().graceful_shutdown(),
                }
                let _ = connection.await;
            }
        },
    )
    .await;
}

/// The per-connection service: counts the request in flight until its
/// response body is done, puts [`LocalAddr`] in, and puts a deadline on
/// the request body.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    connection: Connection,
    body_timeout: Duration,
    stats: Arc<ListenerStats>,
}

impl<S, B> Service<Request<Incoming>> for Tracked<S>
where
    S: Service<Request<DeadlineBody>, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<EdgeBody<B>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.connection.begin();
        if let Some(message) = oversized_headers(request.headers()) {
            return Box::pin(std::future::ready(Ok(fixed_json(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too_large",
                "headers",
                &message,
                in_flight,
            ))));
        }
        let expired = Arc::new(AtomicBool::new(false));
        let (mut parts, body) = request.into_parts();
        parts
            .extensions
            .insert(LocalAddr(self.connection.local_addr()));
        let body = DeadlineBody {
            inner: body,
            deadline: Instant::now() + self.body_timeout,
            sleep: None,
            expired: expired.clone(),
        };
        let answer = self.inner.call(Request::from_parts(parts, body));
        let stats = self.stats.clone();
        let timeout = self.body_timeout;
        Box::pin(async move {
            let response = match answer.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if expired.load(Ordering::Acquire) {
                ListenerStats::bump(&stats.body_timeouts);
                return Ok(body_timeout_response(timeout, in_flight));
            }
            Ok(response.map(|body| EdgeBody {
                inner: Inner::Service(body),
                _in_flight: in_flight,
            }))
        })
    }
}

fn body_timeout_response<B>(timeout: Duration, in_flight: InFlight) -> Response<EdgeBody<B>> {
    fixed_json(
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
        "body",
        &format!("the request body did not arrive within {timeout:?}"),
        in_flight,
    )
}

/// Why a request's headers are over their bounds ([`MAX_REQUEST_HEADERS`]
/// fields, [`MAX_HEADER_LIST_BYTES`] bytes counted as HTTP/2 counts them),
/// if they are.
fn oversized_headers(headers: &http::HeaderMap) -> Option<String> {
    if headers.len() > MAX_REQUEST_HEADERS {
        return Some(format!(
            "{} header fields, more than the {MAX_REQUEST_HEADERS} allowed (MAX_REQUEST_HEADERS)",
            headers.len()
        ));
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum();
    (bytes > MAX_HEADER_LIST_BYTES as usize).then(|| {
        format!(
            "{bytes} bytes of header fields (name, value and 32 per field), more than the {MAX_HEADER_LIST_BYTES} allowed (MAX_HEADER_LIST_BYTES)"
        )
    })
}

/// A JSON error answered by the edge itself; the connection is closed
/// after it (the request's body, if any, is left unread).
fn fixed_json<B>(
    status: StatusCode,
    kind: &str,
    field: &str,
    message: &str,
    in_flight: InFlight,
) -> Response<EdgeBody<B>> {
    let body = crate::refusal::body(kind, field, message);
    let mut response = Response::new(EdgeBody {
        inner: Inner::Fixed(Some(Bytes::from(body.to_string()))),
        _in_flight: in_flight,
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // HTTP/1: hyper closes the connection after this answer.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body that fails once its deadline has passed (the request's
/// headers plus the body read timeout). The timer is armed only when the
/// body is not already there.
pub struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl std::fmt::Debug for DeadlineBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineBody")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The body of a request did not arrive in time.
#[derive(Debug)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.expired.load(Ordering::Acquire) {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => return Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {}
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.store(true, Ordering::Release);
                Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

enum Inner<B> {
    Service(B),
    Fixed(Option<Bytes>),
}

/// A response body that keeps its request in flight until it is done (an
/// event stream is a request in flight, never idle).
pub struct EdgeBody<B> {
    inner: Inner<B>,
    _in_flight: InFlight,
}

impl<B> std::fmt::Debug for EdgeBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeBody").finish_non_exhaustive()
    }
}

impl<B> Body for EdgeBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.inner {
            Inner::Service(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(Into::into))),
            Inner::Fixed(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Service(body) => body.is_end_stream(),
            Inner::Fixed(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Service(body) => body.size_hint(),
            Inner::Fixed(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

/// [`serve_connections`] of an axum `router` (HTTP/1.1 and HTTP/2).
pub async fn serve_router(
    listener: TcpListener,
    options: ListenerOptions,
    stats: Arc<ListenerStats>,
    router: axum::Router,
    shutdown: impl Future<Output = ()>,
) {
    serve_connections(
        listener,
        Protocol::Auto,
        options,
        stats,
        hyper_util::service::TowerToHyperService::new(router),
        shutdown,
    )
    .await;
}
