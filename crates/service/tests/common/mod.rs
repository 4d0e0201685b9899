//! A real server on ephemeral loopback ports, and real clients for it.

#![allow(dead_code)]

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use floodgate_contract::client::HttpTransport;
use floodgate_limiter::config::{self, ConfigSource};
use floodgate_service::clock::ManualClock;
use floodgate_service::control::{Control, ControlOptions};
use floodgate_service::engine::{Engine, EngineOptions};
use floodgate_service::inprocess::InProcessTransport;
use floodgate_service::ServiceParts;
use floodgate_store::MemoryStore;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A fixed start time: 2026-01-01T00:00:00Z, on a whole second.
pub const T0: u64 = 1_767_225_600 * 1_000_000_000;

/// A running service and the means to stop it.
pub struct TestServer {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub clock: Arc<ManualClock>,
    /// The service's HTTP router, for the in-process transport.
    pub router: axum::Router,
    pub control: Arc<Control<MemoryStore>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Arc<Engine<MemoryStore>>>>,
}

impl TestServer {
    pub async fn start(config: &str) -> TestServer {
        TestServer::start_with(config, EngineOptions::default(), 10_000).await
    }

    pub async fn start_with(config: &str, options: EngineOptions, max_keys: u64) -> TestServer {
        TestServer::start_full(
            config,
            options,
            max_keys,
            floodgate_service::limits::DEFAULT_TRAFFIC_CAPACITY,
        )
        .await
    }

    /// A server whose traffic recorder keeps `traffic_capacity` requests.
    pub async fn start_recording(config: &str, traffic_capacity: usize) -> TestServer {
        TestServer::start_full(config, EngineOptions::default(), 10_000, traffic_capacity).await
    }

    pub async fn start_full(
        config: &str,
        options: EngineOptions,
        max_keys: u64,
        traffic_capacity: usize,
    ) -> TestServer {
        TestServer::start_parts(
            config,
            options,
            max_keys,
            traffic_capacity,
            ControlOptions::default(),
        )
        .await
    }

    /// A server whose control plane has `control`'s options (the action
    /// queue's bounds, a hook).
    pub async fn start_controlled(config: &str, control: ControlOptions) -> TestServer {
        TestServer::start_parts(
            config,
            EngineOptions::default(),
            10_000,
            floodgate_service::limits::DEFAULT_TRAFFIC_CAPACITY,
            control,
        )
        .await
    }

    async fn start_parts(
        config: &str,
        options: EngineOptions,
        max_keys: u64,
        traffic_capacity: usize,
        control: ControlOptions,
    ) -> TestServer {
        let table =
            config::load(&[ConfigSource::new("test.yaml", config)]).expect("valid test config");
        let clock = Arc::new(ManualClock::at_ns(T0));
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind grpc");
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind http");
        let grpc_addr = grpc.local_addr().expect("grpc addr");
        let http_addr = http.local_addr().expect("http addr");
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let parts = ServiceParts {
            table,
            store: MemoryStore::new(max_keys),
            clock: clock.clone(),
            options,
            access: floodgate_service::auth::Access::open(),
            control,
            traffic_capacity,
        };
        let assembled = floodgate_service::assemble(parts);
        let router = assembled.router.clone();
        let control = assembled.control.clone();
        let task = tokio::spawn(floodgate_service::serve(
            assembled,
            grpc,
            http,
            async move {
                let _ = stop_rx.await;
            },
        ));
        TestServer {
            grpc: grpc_addr,
            http: http_addr,
            clock,
            router,
            control,
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    pub async fn grpc_client(&self) -> RateLimitServiceClient<tonic::transport::Channel> {
        RateLimitServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .expect("gRPC connect")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// The typed contract client over real HTTP.
    pub fn api(&self) -> HttpTransport {
        HttpTransport::new(format!("http://{}", self.http), None)
    }

    /// The typed contract client through the same router, without a socket.
    pub fn in_process(&self) -> InProcessTransport {
        InProcessTransport::new(self.router.clone(), None)
    }

    /// Stops the server and waits until it has finished every request.
    pub async fn stop(mut self) -> Arc<Engine<MemoryStore>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .take()
            .expect("running")
            .await
            .expect("server task")
    }
}

/// A descriptor from (key, value) pairs.
pub fn descriptor(entries: &[(&str, &str)]) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: entries
            .iter()
            .map(|(key, value)| Entry {
                key: key.to_string(),
                value: value.to_string(),
            })
            .collect(),
        ..RateLimitDescriptor::default()
    }
}

/// A request with one descriptor per list.
pub fn request(domain: &str, descriptors: &[&[(&str, &str)]]) -> RateLimitRequest {
    RateLimitRequest {
        domain: domain.to_string(),
        descriptors: descriptors
            .iter()
            .map(|entries| descriptor(entries))
            .collect(),
        hits_addend: 0,
    }
}

/// The value of a metric series in Prometheus text, e.g.
/// `floodgate_rate_limit_hits_total{domain="api",limit="x"}`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|value| value.trim().parse().ok())
}
