//! The simulated world: a real service (its own HTTP router, in process,
//! on a manual clock), the real harness (observe loop, SQLite queue,
//! pipeline, reflection, API router) on a manual clock, a seeded workload
//! sending checks each tick, and the fault API. Only the clocks are
//! driven; nothing sleeps.

use crate::backend::{Condition, SimBackend, Switch};
use crate::fault::FaultKind;
use crate::workload::{Generator, Send};
use anyhow::{anyhow, Context as _};
use floodgate_agent::mcp::CancellationToken;
use floodgate_contract::client::{HttpTransport, Method, RawRequest, ServiceApi, Transport};
use floodgate_contract::state::ConfigApplyRequest;
use floodgate_harness::policy::Policy;
use floodgate_harness::{
    api, objectives, pipeline::Pipeline, Harness, HarnessConfig, HarnessState, ManualClock,
    Observer, Store, Target,
};
use floodgate_limiter::config::{self, ConfigSource};
use floodgate_service::auth::Access;
use floodgate_service::clock::ManualClock as ServiceClock;
use floodgate_service::engine::EngineOptions;
use floodgate_service::inprocess::InProcessTransport;
use floodgate_service::ServiceParts;
use floodgate_store::{FailurePolicy, MemoryStore, Prober, ResilientOptions, ResilientStore};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// 2026-01-01T00:00:00Z, a Thursday: every run starts here.
pub const T0_MS: u64 = 1_767_225_600_000;

/// The config a scenario gets unless it brings its own: every tenant 50
/// checks a second (all of a tick's checks arrive in the same instant) and a
/// million a day.
pub const DEFAULT_LIMITS: &str = "
domain: api
descriptors:
  - key: tenant
    rate_limits:
      - {name: tenant_per_second, unit: second, requests_per_unit: 50}
      - {name: tenant_per_day, unit: day, requests_per_unit: 1000000}
";

/// The harness's objectives in the lab (those of `examples/objectives.yaml`
/// the runbooks act on, with the low-traffic guard scaled to the lab's
/// traffic).
pub const OBJECTIVES: &str = "
alerting:
  min_events: 20
slos:
  - name: limiting_correctness
    service: floodgate
    target: 99.99%
    window: 7d
    sli:
      ratio:
        good: floodgate_rate_limit_within_limit_total{domain=\"api\",limit=\"tenant_per_day\"}
        total: floodgate_rate_limit_hits_total{domain=\"api\",limit=\"tenant_per_day\"}
invariants:
  - name: capacity_headroom
    condition: capacity.available_ratio > 0.2
    for: 3
    on_violation: ticket
  - name: store_healthy
    condition: state.store.healthy
    on_violation: ticket
anomalies:
  - name: request_rate
    series: floodgate_requests_total
    rate_window: 1m
    threshold: 6
    min_relative_scale: 0.05
    on_violation: ticket
";

/// Where the service keeps its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendSpec {
    /// The in-process memory store (it cannot fail).
    Memory,
    /// A simulated remote backend ([`crate::backend::SimBackend`]) behind
    /// the production failure handling, starting with this failure policy.
    Remote {
        failure_policy: FailurePolicy,
        /// Commands one key takes in a tick before it times out (0: no
        /// bound): a hot key saturates the backend.
        key_ops_per_tick: u64,
    },
}

/// What a world is built from.
#[derive(Debug, Clone)]
pub struct WorldSpec {
    pub limits: String,
    pub objectives: String,
    pub policy: String,
    pub store_capacity: u64,
    pub backend: BackendSpec,
    /// The harness's data directory (created; must not hold another run).
    pub data: PathBuf,
    /// Serve the service's and the harness's HTTP APIs on 127.0.0.1 and
    /// speak to them over real HTTP (`--realtime`); in process otherwise.
    pub network: bool,
}

/// One tick's traffic as sent: tenant → (sent, admitted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    pub tenants: BTreeMap<String, (u32, u32)>,
    /// Checks of good tenants (well-behaved, bursty) and how many were rejected.
    pub good_sent: u32,
    pub good_rejected: u32,
    pub total_sent: u32,
}

/// The remote backend's handles: the fault switch and the prober (the
/// world probes once a tick, on its own clock).
pub struct RemoteBackend {
    pub switch: Arc<Switch>,
    pub prober: Prober<SimBackend>,
    /// When the current backend fault ends (world time, ms).
    pub fault_until: Option<u64>,
}

/// A deploy controller holding a config as its desired state: it pushes it
/// again whenever the service drifts from it for `delay_ms`.
#[derive(Debug, Clone)]
pub struct Reconciler {
    pub limits: String,
    pub ticket: bool,
    pub delay_ms: u64,
    pub desired_hash: String,
    /// When the service's config was first seen to differ.
    pub drift_since: Option<u64>,
}

pub struct World {
    pub remote: Option<RemoteBackend>,
    pub reconciler: Option<Reconciler>,
    pub service_clock: Arc<ServiceClock>,
    pub clock: Arc<ManualClock>,
    pub service: Arc<dyn Transport>,
    pub harness: Arc<dyn Transport>,
    /// Where the APIs are served when the world is on the network.
    pub service_url: Option<String>,
    pub harness_url: Option<String>,
    shutdown: CancellationToken,
    pub observer: Observer,
    pub data: PathBuf,
    pub generator: Generator,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serves `router` over HTTP on an ephemeral port of 127.0.0.1 until
/// `shutdown`; returns its base URL. Must run inside the runtime.
fn expose(router: axum::Router, shutdown: &CancellationToken) -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}", listener.local_addr()?);
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    Ok(url)
}

impl World {
    pub fn build(spec: &WorldSpec, generator: Generator) -> anyhow::Result<World> {
        let service_clock = Arc::new(ServiceClock::new(T0_MS * 1_000_000));
        let table = config::load(&[ConfigSource::new("limits.yaml", &spec.limits)])
            .map_err(|error| anyhow!("limits: {error}"))?;
        fn parts<S>(
            table: floodgate_limiter::table::Table,
            store: S,
            clock: Arc<ServiceClock>,
        ) -> ServiceParts<S> {
            ServiceParts {
                table,
                store,
                clock,
                options: EngineOptions::default(),
                access: Access::open(),
                control: Default::default(),
                traffic_capacity: floodgate_service::limits::DEFAULT_TRAFFIC_CAPACITY,
            }
        }
        let (router, remote) = match spec.backend {
            BackendSpec::Memory => {
                let store = MemoryStore::new(spec.store_capacity);
                let service = parts(table, store, service_clock.clone());
                (floodgate_service::assemble(service).router, None)
            }
            BackendSpec::Remote {
                failure_policy,
                key_ops_per_tick,
            } => {
                let switch = Arc::new(Switch::default());
                let backend = SimBackend::new(spec.store_capacity, switch.clone())
                    .with_key_ops_per_tick(key_ops_per_tick, crate::scenario::TICK_MS * 1_000_000);
                let store = ResilientStore::new(
                    backend,
                    ResilientOptions {
                        policy: failure_policy,
                        fallback_max_keys: spec.store_capacity,
                        background_probe: false,
                        ..ResilientOptions::default()
                    },
                )
                .map_err(|error| anyhow!("backend: {error}"))?;
                let prober = store.prober();
                let service = parts(table, store, service_clock.clone());
                let remote = RemoteBackend {
                    switch,
                    prober,
                    fault_until: None,
                };
                (floodgate_service::assemble(service).router, Some(remote))
            }
        };
        let shutdown = CancellationToken::new();
        let (service, service_url): (Arc<dyn Transport>, Option<String>) = if spec.network {
            let url = expose(router, &shutdown)?;
            (Arc::new(HttpTransport::new(url.clone(), None)), Some(url))
        } else {
            (Arc::new(InProcessTransport::new(router, None)), None)
        };
        let objectives = objectives::parse("objectives.yaml", &spec.objectives)
            .map_err(|error| anyhow!("objectives: {error}"))?;
        let harness = Harness::new(objectives, HarnessConfig::default())
            .map_err(|error| anyhow!("harness: {error}"))?;
        if spec.data.exists() {
            std::fs::remove_dir_all(&spec.data)
                .with_context(|| format!("clearing {}", spec.data.display()))?;
        }
        std::fs::create_dir_all(&spec.data)
            .with_context(|| format!("creating {}", spec.data.display()))?;
        let store = Store::open(&spec.data).map_err(|error| anyhow!("store: {error}"))?;
        let clock = Arc::new(ManualClock::new(T0_MS));
        let state = HarnessState::new(harness, store, clock.clone());
        let targets = vec![Target {
            name: "svc-a".into(),
            transport: service.clone(),
        }];
        let policy =
            Policy::parse("policy.yaml", &spec.policy).map_err(|error| anyhow!("{error}"))?;
        let pipeline = Pipeline::new(&state, targets.clone(), policy)
            .map_err(|error| anyhow!("pipeline: {error}"))?;
        state
            .set_pipeline(pipeline)
            .map_err(|_| anyhow!("one pipeline"))?;
        let observer =
            Observer::new(state.clone(), targets).map_err(|error| anyhow!("observer: {error}"))?;
        let (harness, harness_url): (Arc<dyn Transport>, Option<String>) = if spec.network {
            let url = expose(api::router(state), &shutdown)?;
            (Arc::new(HttpTransport::new(url.clone(), None)), Some(url))
        } else {
            (
                Arc::new(InProcessTransport::new(api::router(state), None)),
                None,
            )
        };
        Ok(World {
            service_url,
            harness_url,
            shutdown,
            remote,
            reconciler: None,
            service_clock,
            clock,
            service,
            harness,
            observer,
            data: spec.data.clone(),
            generator,
        })
    }

    pub fn now(&self) -> u64 {
        floodgate_harness::Clock::now_ms(self.clock.as_ref())
    }

    /// The backend's tick: a backend fault that has run its course ends,
    /// and an unhealthy backend is probed once (the service's own probe,
    /// on the world's clock instead of a timer).
    pub async fn backend_tick(&mut self) {
        let now = self.now();
        if let Some(remote) = &mut self.remote {
            if remote.fault_until.is_some_and(|until| now >= until) {
                remote.switch.set(Condition::Up);
                remote.fault_until = None;
            }
            remote.prober.probe().await;
        }
    }

    /// Sends this tick's checks (in process, through the service's HTTP
    /// router) and records what each tenant got.
    pub async fn send(&mut self, plan: &[Send]) -> anyhow::Result<Traffic> {
        let mut traffic = Traffic::default();
        for send in plan {
            let request = json!({
                "domain": "api",
                "descriptors": [{"entries": [{"key": "tenant", "value": send.tenant}]}],
            });
            let mut admitted = 0;
            for _ in 0..send.count {
                let answer = self
                    .service
                    .check(&request)
                    .await
                    .map_err(|error| anyhow!("check: {error}"))?;
                match answer["overall_code"].as_str() {
                    Some("OK") => admitted += 1,
                    Some("OVER_LIMIT") => {}
                    other => return Err(anyhow!("check answered {other:?}: {answer}")),
                }
            }
            traffic.total_sent += send.count;
            if send.good {
                traffic.good_sent += send.count;
                traffic.good_rejected += send.count - admitted;
            }
            self.generator.record(&send.tenant, send.count, admitted);
            if !send.tenant.starts_with("flood-") {
                traffic
                    .tenants
                    .insert(send.tenant.clone(), (send.count, admitted));
            }
        }
        Ok(traffic)
    }

    /// The harness observes once (and advances the pipeline, and reflects
    /// when due). Its errors are the harness's, reported, never a verdict.
    pub async fn observe(&mut self) -> anyhow::Result<()> {
        let now = self.now();
        let report = self.observer.observe_once(now).await;
        if report.errors.is_empty() {
            Ok(())
        } else {
            Err(anyhow!("harness tick at {now}: {:?}", report.errors))
        }
    }

    /// Both clocks move on.
    pub fn advance(&self, ms: u64) {
        self.clock.advance(ms);
        self.service_clock.advance(ms * 1_000_000);
    }

    /// The fault API: what the lab does to the world. Traffic faults change
    /// the workload; a bad config is pushed the way a human pushes one
    /// (the config API, as `floodgate ctl` does), and its ticket filed the
    /// way a human files one (the harness's ticket API).
    pub async fn inject(&mut self, fault: &FaultKind) -> anyhow::Result<()> {
        let now = self.now();
        match fault {
            FaultKind::Surge {
                tenant,
                per_minute,
                for_ms,
            } => {
                self.generator.overrides.insert(tenant.clone(), *per_minute);
                if let Some(for_ms) = for_ms {
                    self.generator
                        .overrides_until
                        .insert(tenant.clone(), now + for_ms);
                }
            }
            FaultKind::Growth { tenant, per_minute } => {
                self.generator.overrides.insert(tenant.clone(), *per_minute);
            }
            FaultKind::KeyFlood {
                keys_per_tick,
                for_ms,
            } => {
                self.generator.flood = Some((*keys_per_tick, now + for_ms));
            }
            FaultKind::HotKey {
                key,
                per_minute,
                for_ms,
            } => {
                let until = for_ms.map_or(u64::MAX, |for_ms| now + for_ms);
                self.generator.hot = Some((key.clone(), *per_minute, until));
            }
            FaultKind::KeyGrowth { keys_per_tick } => {
                self.generator.flood = Some((*keys_per_tick, u64::MAX));
            }
            FaultKind::BackendOutage { for_ms } => {
                self.backend_fault(Condition::Down, now + for_ms)?;
            }
            FaultKind::BackendLatency { latency_ms, for_ms } => {
                self.backend_fault(
                    Condition::Slow {
                        latency_ms: *latency_ms,
                    },
                    now + for_ms,
                )?;
            }
            FaultKind::BadConfig {
                limits,
                ticket,
                reconcile_ms,
            } => {
                let hash = self.push_config(limits, *ticket, "human:operator").await?;
                if let Some(delay_ms) = reconcile_ms {
                    self.reconciler = Some(Reconciler {
                        limits: limits.clone(),
                        ticket: *ticket,
                        delay_ms: *delay_ms,
                        desired_hash: hash,
                        drift_since: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Pushes `limits` as `actor` through the config API (as `floodgate
    /// ctl` does) and, if `ticket`, files the human's ticket naming the
    /// version pushed. Returns the config hash now current.
    async fn push_config(
        &mut self,
        limits: &str,
        ticket: bool,
        actor: &str,
    ) -> anyhow::Result<String> {
        let applied = self
            .service
            .apply_config(&ConfigApplyRequest {
                yaml: Some(limits.to_owned()),
                patch: None,
                dry_run: false,
                reason: "tightening limits".into(),
                actor: actor.into(),
            })
            .await
            .map_err(|error| anyhow!("the config push by {actor}: {error}"))?;
        let applied = serde_json::to_value(&applied)?;
        let version = applied
            .pointer("/config_version")
            .cloned()
            .unwrap_or(Value::Null);
        if ticket {
            let (status, filed) = self
                .post(
                    "/v1/tickets",
                    json!({
                        "type": "incident",
                        "objective": {"description": "a good tenant is rejected since the last config push"},
                        "acceptance_criteria": [{"metric": "over_limit_ratio", "condition": "< 1%", "duration": "5m sustained"}],
                        "constraints": [],
                        "priority": "high",
                        "fingerprint": "config:bad-push",
                        "context": {"config_version": version},
                    }),
                )
                .await?;
            if !(200..300).contains(&status) {
                return Err(anyhow!("the ticket of {actor}: {status} {filed}"));
            }
        }
        Ok(self.service_state().await?.config.hash)
    }

    /// The reconciler's tick: once the service's config has differed from
    /// the one it holds for its delay, it pushes that config again (and its
    /// deploy job files the ticket again).
    pub async fn reconcile(&mut self) -> anyhow::Result<()> {
        let Some(mut reconciler) = self.reconciler.take() else {
            return Ok(());
        };
        let now = self.now();
        let current = self.service_state().await?.config.hash;
        if current == reconciler.desired_hash {
            reconciler.drift_since = None;
        } else {
            let since = *reconciler.drift_since.get_or_insert(now);
            if now.saturating_sub(since) >= reconciler.delay_ms {
                reconciler.desired_hash = self
                    .push_config(&reconciler.limits, reconciler.ticket, "controller:deploy")
                    .await?;
                reconciler.drift_since = None;
            }
        }
        self.reconciler = Some(reconciler);
        Ok(())
    }

    fn backend_fault(&mut self, condition: Condition, until: u64) -> anyhow::Result<()> {
        let remote = self
            .remote
            .as_mut()
            .ok_or_else(|| anyhow!("a backend fault needs a remote backend (backend: remote)"))?;
        remote.switch.set(condition);
        remote.fault_until = Some(until);
        Ok(())
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let response = self
            .harness
            .send(RawRequest {
                method,
                path: path.to_owned(),
                body: body.map(|body| serde_json::to_vec(&body)).transpose()?,
            })
            .await
            .map_err(|error| anyhow!("harness {path}: {error}"))?;
        let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        Ok((response.status, value))
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        self.call(Method::Post, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let (status, value) = self.call(Method::Get, path, None).await?;
        if status != 200 {
            return Err(anyhow!("GET {path}: {status} {value}"));
        }
        Ok(value)
    }

    /// The service's `/v1/state`.
    pub async fn service_state(&self) -> anyhow::Result<floodgate_contract::state::State> {
        self.service
            .state()
            .await
            .map_err(|error| anyhow!("service state: {error}"))
    }

    pub fn data(&self) -> &Path {
        &self.data
    }
}
