//! Floodgate's rate-limit server.
//!
//! - [`grpc`]: Envoy's `envoy.service.ratelimit.v3.RateLimitService` on
//!   HTTP/2;
//! - [`http`]: the JSON API (`/v1/check`, `/metrics`, `/v1/health`);
//! - [`engine`]: the wire-independent decision engine both call;
//! - [`stats`]: metrics, rendered from the catalog in `floodgate-contract`;
//! - [`server`]: the one accept loop with connection bounds and graceful
//!   shutdown.
//!
//! The caller supplies the listeners, the clock and the shutdown signal
//! ([`run`]), so tests bind ephemeral ports and simulations drive time.

pub mod clock;
pub mod engine;
pub mod grpc;
pub mod http;
pub mod limits;
pub mod server;
pub mod stats;

use crate::clock::Clock;
use crate::engine::{Engine, EngineOptions};
use crate::server::{serve_connections, Protocol};
use floodgate_limiter::table::Table;
use floodgate_limiter::Nanos;
use floodgate_store::CounterStore;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The build version reported in metrics and health.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Facts about this running service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceInfo {
    /// When the service started (clock time).
    pub started_at: Nanos,
}

/// What [`run`] needs.
pub struct ServiceParts<S> {
    pub table: Table,
    pub store: S,
    pub clock: Arc<dyn Clock>,
    pub options: EngineOptions,
}

/// Serves gRPC on `grpc` and HTTP on `http` until `shutdown` completes,
/// then lets in-flight requests finish. Returns the engine so a caller can
/// inspect final state.
pub async fn run<S: CounterStore>(
    parts: ServiceParts<S>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Arc<Engine<S>> {
    let info = ServiceInfo {
        started_at: parts.clock.now(),
    };
    let engine = Arc::new(Engine::new(
        parts.table,
        parts.store,
        parts.clock,
        parts.options,
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let grpc_service = grpc::GrpcService::new(engine.clone());
    let grpc_task = tokio::spawn(serve_connections(
        grpc,
        Protocol::Http2Only,
        grpc_service,
        stopped(stop_rx.clone()),
    ));
    let router = http::router(Arc::new(http::HttpState {
        engine: engine.clone(),
        info,
    }));
    let http_task = tokio::spawn(serve_connections(
        http,
        Protocol::Auto,
        TowerToHyperService::new(router),
        stopped(stop_rx),
    ));
    shutdown.await;
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    let _ = stop_tx.send(true);
    let _ = grpc_task.await;
    let _ = http_task.await;
    engine
}
