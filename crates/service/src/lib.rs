//! Floodgate's rate-limit server.
//!
//! - [`grpc`]: Envoy's `envoy.service.ratelimit.v3.RateLimitService` on
//!   HTTP/2;
//! - [`http`]: the JSON API (`/v1/check`, `/metrics`, `/v1/health`);
//! - [`engine`]: the wire-independent decision engine both call;
//! - [`stats`]: metrics, rendered from the catalog in `floodgate-contract`;
//! - [`traffic`]: the bounded ring of recent check requests (`/v1/traffic`,
//!   dry-run replays);
//! - [`auth`]: bearer tokens and scopes on the HTTP API;
//! - [`openapi`]: the OpenAPI 3.1 document of the HTTP API;
//! - [`control`]: the control plane (state, health, events, config,
//!   actions) and [`inprocess`], the contract without a socket;
//! - [`server`]: the one accept loop with connection bounds and graceful
//!   shutdown.
//!
//! The caller supplies the listeners, the clock and the shutdown signal
//! ([`run`]), so tests bind ephemeral ports and simulations drive time.

pub mod auth;
pub mod clock;
pub mod control;
pub mod engine;
pub mod grpc;
pub mod http;
pub mod inprocess;
pub mod limits;
pub mod openapi;
pub mod server;
pub mod stats;
pub mod topvalues;
pub mod traffic;

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
    /// Bearer tokens on the HTTP API ([`auth::Access::open`]: none).
    pub access: auth::Access,
    /// The control plane's options (the events file).
    pub control: control::ControlOptions,
    /// Check requests the traffic recorder keeps (0: record nothing);
    /// [`limits::DEFAULT_TRAFFIC_CAPACITY`] unless told otherwise.
    pub traffic_capacity: usize,
}

/// A service put together but not yet serving: what [`run`] serves, and
/// what [`inprocess::InProcessTransport`] drives without a socket.
pub struct Assembled<S> {
    pub engine: Arc<Engine<S>>,
    pub control: Arc<control::Control<S>>,
    /// The whole HTTP API, access layer (or, without tokens, the open-mode
    /// guard) included.
    pub router: axum::Router,
    /// What the two listeners count (rendered in `/metrics`).
    pub listeners: Listeners,
}

/// The figures of the two listeners.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    pub grpc: Arc<server::ListenerStats>,
    pub http: Arc<server::ListenerStats>,
}

/// The bounds of the two listeners ([`serve_with`]); `Default` is the
/// constants of [`limits`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ListenerSettings {
    pub grpc: server::ListenerOptions,
    pub http: server::ListenerOptions,
}

/// Builds the engine, the control plane (recording `service_started`) and
/// the HTTP router from `parts`. Spawns nothing: [`run`] adds the
/// listeners and the health sampler.
pub fn assemble<S: CounterStore>(parts: ServiceParts<S>) -> Assembled<S> {
    let info = ServiceInfo {
        started_at: parts.clock.now_ns(),
    };
    let clock = parts.clock.clone();
    let engine = Arc::new(
        Engine::new(parts.table, parts.store, parts.clock, parts.options)
            .with_traffic(parts.traffic_capacity),
    );
    let control = Arc::new(control::Control::new(
        engine.clone(),
        clock,
        info,
        parts.control,
    ));
    control.started();
    listen_to_backend(&control);
    let access_control = parts.access.enabled();
    let listeners = Listeners::default();
    let router = http::router(Arc::new(http::HttpState {
        engine: engine.clone(),
        info,
        control: control.clone(),
        access_control,
        listeners: listeners.clone(),
    }));
    let events = control.clone();
    let on_denied: auth::DeniedHook = Arc::new(move |denied: auth::Denied| {
        events.events().emit(
            &denied.actor,
            "",
            floodgate_contract::events::EventBody::AccessDenied {
                method: denied.method.clone(),
                path: denied.path.clone(),
                status: denied.status,
                needed: denied.needed.clone(),
            },
        );
        log_denied(denied);
    });
    let open_mode = (!parts.access.enabled()).then(|| parts.access.open_mode().clone());
    let router = auth::layer(router, parts.access, on_denied);
    let router = match open_mode {
        Some(policy) => {
            let events = control.clone();
            let on_refused: floodgate_edge::guard::RefusedHook =
                Arc::new(move |refused: &floodgate_edge::guard::Refused| {
                    floodgate_edge::guard::log("service", refused);
                    events.events().emit(
                        control::ANONYMOUS,
                        "",
                        floodgate_contract::events::EventBody::RequestRefused {
                            method: refused.method.clone(),
                            path: refused.path.clone(),
                            status: refused.refusal.status.as_u16(),
                            field: refused.refusal.field.to_string(),
                            value: refused.refusal.value.clone(),
                        },
                    );
                });
            floodgate_edge::guard::layer(router, policy, on_refused)
        }
        None => router,
    };
    Assembled {
        engine,
        control,
        router,
        listeners,
    }
}

/// Turns the store's backend health transitions (if it has a backend)
/// into `backend_health_changed` events. Holds the control plane weakly:
/// the store outlives no cycle.
fn listen_to_backend<S: CounterStore>(control: &Arc<control::Control<S>>) {
    let Some(resilience) = control.engine().store().resilience() else {
        return;
    };
    let weak = Arc::downgrade(control);
    resilience.set_listener(Arc::new(move |change: floodgate_store::HealthChange| {
        let Some(control) = weak.upgrade() else {
            return;
        };
        let backend = control.engine().store().stats().backend.to_string();
        let healthy = change.to == floodgate_store::BackendHealth::Up;
        let detail = format!("{}: {}", change.to.as_str(), change.detail);
        control.store_health_changed(healthy, &detail);
        tracing::warn!(
            backend = %backend,
            from = change.from.as_str(),
            to = change.to.as_str(),
            detail = %change.detail,
            "counter backend health changed"
        );
        control.events().emit(
            control::SYSTEM,
            "",
            floodgate_contract::events::EventBody::BackendHealthChanged {
                backend,
                healthy,
                detail,
            },
        );
    }));
}

/// Reports a refused HTTP call.
fn log_denied(denied: auth::Denied) {
    tracing::warn!(
        method = %denied.method,
        path = %denied.path,
        status = denied.status,
        needed = %denied.needed,
        actor = %denied.actor,
        "access denied"
    );
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
    serve(assemble(parts), grpc, http, shutdown).await
}

/// [`run`] for a service already [`assemble`]d (so a caller can keep its
/// router, e.g. for an [`inprocess::InProcessTransport`] next to the
/// sockets).
pub async fn serve<S: CounterStore>(
    assembled: Assembled<S>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Arc<Engine<S>> {
    serve_with(assembled, grpc, http, ListenerSettings::default(), shutdown).await
}

/// [`serve`] with the listeners' bounds given (`floodgate serve`'s
/// `--max-connections`, `--idle-timeout`, …).
pub async fn serve_with<S: CounterStore>(
    assembled: Assembled<S>,
    grpc: TcpListener,
    http: TcpListener,
    settings: ListenerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Arc<Engine<S>> {
    let Assembled {
        engine,
        control,
        router,
        listeners,
    } = assembled;
    let sampler = tokio::spawn(control.clone().run_sampler());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let grpc_task = tokio::spawn(grpc::serve(
        grpc,
        engine.clone(),
        settings.grpc,
        listeners.grpc,
        stopped(stop_rx.clone()),
    ));
    let http_task = tokio::spawn(serve_connections(
        http,
        Protocol::Auto,
        settings.http,
        listeners.http,
        TowerToHyperService::new(router),
        stopped(stop_rx),
    ));
    shutdown.await;
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    // Records service_stopping and ends event streams and long polls, so
    // they do not hold the graceful shutdown up.
    control.stopping();
    let _ = stop_tx.send(true);
    let _ = grpc_task.await;
    let _ = http_task.await;
    let _ = sampler.await;
    engine
}
