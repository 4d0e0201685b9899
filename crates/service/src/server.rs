//! One accept loop for every listener: a connection bound and graceful
//! shutdown (stop accepting, let in-flight requests finish, then close) —
//! written once, used by gRPC (on `h2`, see `grpc.rs`) and HTTP (on hyper,
//! [`serve_connections`]).
//!
//! The loop owns the listener and the connection bound; what runs on each
//! accepted connection is the caller's, given a [`Shutdown`] to watch. On
//! shutdown the loop closes the listener, tells every connection, and waits
//! up to [`SHUTDOWN_GRACE`] for all of them to finish.

use crate::limits::{
    CONNECTION_WINDOW_BYTES, MAX_CONNECTIONS, MAX_HEADER_LIST_BYTES, MAX_STREAMS_PER_CONNECTION,
    SHUTDOWN_GRACE, STREAM_WINDOW_BYTES,
};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Which HTTP versions a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/2 with prior knowledge only (gRPC, as Envoy and h2load speak it).
    Http2Only,
    /// HTTP/1.1 and HTTP/2 (the JSON API).
    Auto,
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

/// Accepts connections on `listener` until `shutdown` completes, running
/// `serve(stream, signal)` on its own task for each, at most
/// [`MAX_CONNECTIONS`] at once (further connections are closed at accept).
/// Then closes the listener, signals every connection and waits up to
/// [`SHUTDOWN_GRACE`] for them to finish.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    mut serve: F,
) where
    F: FnMut(TcpStream, Shutdown) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and similar: back off
                        // briefly instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    tracing::warn!(limit = MAX_CONNECTIONS, "connection limit reached; closing new connection");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let connection = serve(stream, Shutdown(stop_rx.clone()));
                tokio::spawn(async move {
                    connection.await;
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    stop_tx.send_replace(true);
    // Every connection holds a permit until it has finished.
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the shutdown grace period");
    }
}

/// Serves a hyper `service` on every connection `listener` accepts until
/// `shutdown` completes (see [`accept_loop`]).
pub async fn serve_connections<S, B>(
    listener: TcpListener,
    protocol: Protocol,
    service: S,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
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
    accept_loop(listener, shutdown, move |stream, stop| {
        let connection = builder
            .serve_connection(TokioIo::new(stream), service.clone())
            .into_owned();
        async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = stop.requested() => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        }
    })
    .await;
}
