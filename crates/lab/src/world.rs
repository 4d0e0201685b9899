//! The simulated world: a real service (its own HTTP router, in process,
//! on a manual clock), the real harness (observe loop, SQLite queue,
//! pipeline, reflection, API router) on a manual clock, a seeded workload
//! sending checks each tick, and the fault API. Only the clocks are
//! driven; nothing sleeps.

use crate::backend::{Condition, SimBackend, Switch};
use crate::fault::FaultKind;
use crate::rng::Rng;
use crate::workload::{Generator, Send};
use anyhow::{anyhow, Context as _};
use floodgate_agent::mcp::CancellationToken;
use floodgate_contract::client::{HttpTransport, Method, RawRequest, ServiceApi, Transport};
use floodgate_contract::state::ConfigApplyRequest;
use floodgate_harness::change::policy::Policy;
use floodgate_harness::{
    api, observe::objectives, run::pipeline::Pipeline, Harness, HarnessConfig, HarnessState,
    ManualClock, Observer, Store, Target,
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
use std::net::SocketAddr;
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

/// The harness's objectives in the lab: what an operator watches on any
/// rate-limit service, naming no domain, limit or tenant (every world,
/// generated or committed, is watched the same way), with the low-traffic
/// guard scaled to the lab's traffic. The SLO counts every limit's hits:
/// rejections burn it, whoever is rejected (the harness cannot tell a
/// good tenant from an abusive one; the evidence can), except those of
/// deliberate throttles (`throttle@…`, put in through the pipeline; ADR
/// 0015): a limit's bad events are its own rejections (`over_limit`), so a
/// request a throttle rejects does not count against the other limits it
/// hit. The anomaly watches the admitted rate: the load the protected
/// service takes ([`objectives`] adds the capacity it is planned for, when
/// the scenario declares one). Its reference is the last hour (`history:
/// 360` values at the lab's 10 s tick), and an episode files only when it
/// lasts ten minutes (`sustain: 10m`) or goes past the declared capacity: a
/// tenant's contractual burst (minutes at a few times its rate, harming
/// nothing known) is not an incident, and the hour-long reference does not
/// learn a surge as normal while the episode waits.
pub const OBJECTIVES: &str = r#"
alerting:
  min_events: 20
slos:
  - name: limiting_correctness
    service: floodgate
    target: 99.99%
    window: 7d
    sli:
      ratio:
        bad: floodgate_rate_limit_over_limit_total{limit!~"throttle@.*"}
        total: floodgate_rate_limit_hits_total{limit!~"throttle@.*"}
invariants:
  - name: capacity_headroom
    condition: capacity.available_ratio > 0.2
    for: 3
    on_violation: ticket
  - name: store_healthy
    condition: state.store.healthy
    on_violation: ticket
anomalies:
  - name: admitted_rate
    series: floodgate_requests_total{code="ok"}
    rate_window: 1m
    threshold: 6
    min_relative_scale: 0.05
    history: 360
    sustain: 10m
    on_violation: ticket
"#;

/// The lab's objectives for a world whose protected service is planned for
/// `max_load_per_minute` admitted checks a minute (when the scenario says
/// so): the operator declares that capacity on the admitted-rate anomaly
/// (`capacity:`, per second; ADR 0022), as an operator who knows the
/// service behind the limiter would. Without one the anomaly declares
/// none.
pub fn objectives(max_load_per_minute: Option<u64>) -> String {
    match max_load_per_minute {
        Some(max) => OBJECTIVES.replacen(
            "    min_relative_scale: 0.05\n",
            &format!(
                "    min_relative_scale: 0.05\n    capacity: {}\n",
                max as f64 / 60.0
            ),
            1,
        ),
        None => OBJECTIVES.to_owned(),
    }
}

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
    /// Service instances behind the load balancer (at least 1).
    pub instances: u32,
    /// When the run starts (epoch ms).
    pub t0_ms: u64,
    /// Seeds where in its tick each check arrives.
    pub seed: u64,
    /// The harness's data directory (created; must not hold another run).
    pub data: PathBuf,
    /// Serve the service's and the harness's HTTP APIs on loopback and
    /// speak to them over real HTTP (`--realtime`, the demo); in process
    /// otherwise.
    pub network: Option<Network>,
}

/// Where a world on the network serves its APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// The instances' HTTP APIs, in order; an instance past the end of
    /// the list is served on a port of 127.0.0.1 the system picks.
    pub service_addrs: Vec<SocketAddr>,
    /// The harness's API.
    pub harness_addr: SocketAddr,
}

impl Network {
    /// Every API on a port of 127.0.0.1 the system picks.
    pub fn ephemeral() -> Network {
        Network {
            service_addrs: Vec::new(),
            harness_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    fn service_addr(&self, index: usize) -> SocketAddr {
        self.service_addrs
            .get(index)
            .copied()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

/// One tick's traffic as sent: tenant → (sent, admitted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    pub tenants: BTreeMap<String, (u32, u32)>,
    /// Checks of good tenants (well-behaved, bursty, not surging) and how
    /// many were rejected.
    pub good_sent: u32,
    pub good_rejected: u32,
    pub total_sent: u32,
    /// Checks admitted, of every sender: the load the protected service
    /// takes.
    pub total_admitted: u32,
}

/// The remote backend's handles: the fault switch and one prober per
/// instance (the world probes once a tick, on its own clock).
pub struct RemoteBackend {
    pub switch: Arc<Switch>,
    pub probers: Vec<Prober<SimBackend>>,
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

/// How the load balancer spreads checks over the instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// By a hash of the descriptor value: each tenant's counters live on
    /// one instance (memory stores, as with a ring-hash load balancer).
    ByKey,
    /// In turn: every instance sees every tenant (counters shared in a
    /// remote backend).
    RoundRobin,
}

pub struct World {
    pub remote: Option<RemoteBackend>,
    pub reconciler: Option<Reconciler>,
    pub service_clock: Arc<ServiceClock>,
    pub clock: Arc<ManualClock>,
    /// The instances, in the harness's target order (the first is the
    /// pipeline's canary).
    pub services: Vec<Arc<dyn Transport>>,
    pub harness: Arc<dyn Transport>,
    /// Where the APIs are served when the world is on the network.
    pub service_urls: Vec<String>,
    pub harness_url: Option<String>,
    shutdown: CancellationToken,
    pub observer: Observer,
    pub data: PathBuf,
    pub generator: Generator,
    pub balance: Balance,
    /// When the run started (epoch ms).
    pub t0_ms: u64,
    /// Where in its tick each check arrives.
    spread: Rng,
    next_instance: usize,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serves `router` over HTTP on `addr` (port 0: one the system picks)
/// until `shutdown`; returns its base URL. Must run inside the runtime.
fn expose(
    router: axum::Router,
    addr: SocketAddr,
    shutdown: &CancellationToken,
) -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
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

/// The name of instance `index` in the harness (`svc-a`, `svc-b`, …).
pub fn instance_name(index: usize) -> String {
    format!("svc-{}", (b'a' + (index % 26) as u8) as char)
}

/// FNV-1a: the load balancer's hash of a descriptor value (stable across
/// platforms and runs).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl World {
    pub fn build(spec: &WorldSpec, generator: Generator) -> anyhow::Result<World> {
        let instances = spec.instances.max(1) as usize;
        let service_clock = Arc::new(ServiceClock::at_ns(spec.t0_ms * 1_000_000));
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
        let mut routers = Vec::with_capacity(instances);
        let (remote, balance) = match spec.backend {
            BackendSpec::Memory => {
                for _ in 0..instances {
                    let store = MemoryStore::new(spec.store_capacity);
                    let service = parts(table.clone(), store, service_clock.clone());
                    routers.push(floodgate_service::assemble(service).router);
                }
                (None, Balance::ByKey)
            }
            BackendSpec::Remote {
                failure_policy,
                key_ops_per_tick,
            } => {
                let switch = Arc::new(Switch::default());
                let backend = SimBackend::new(spec.store_capacity, switch.clone())
                    .with_key_ops_per_tick(key_ops_per_tick, crate::scenario::TICK_MS * 1_000_000);
                let mut probers = Vec::with_capacity(instances);
                for _ in 0..instances {
                    let store = ResilientStore::new(
                        backend.clone(),
                        ResilientOptions {
                            policy: failure_policy,
                            local_share: 1.0 / instances as f64,
                            fallback_max_keys: spec.store_capacity,
                            background_probe: false,
                            ..ResilientOptions::default()
                        },
                    )
                    .map_err(|error| anyhow!("backend: {error}"))?;
                    probers.push(store.prober());
                    let service = parts(table.clone(), store, service_clock.clone());
                    routers.push(floodgate_service::assemble(service).router);
                }
                let remote = RemoteBackend {
                    switch,
                    probers,
                    fault_until: None,
                };
                (Some(remote), Balance::RoundRobin)
            }
        };
        let shutdown = CancellationToken::new();
        let mut services: Vec<Arc<dyn Transport>> = Vec::with_capacity(instances);
        let mut service_urls = Vec::new();
        for (index, router) in routers.into_iter().enumerate() {
            if let Some(network) = &spec.network {
                let url = expose(router, network.service_addr(index), &shutdown)?;
                services.push(Arc::new(HttpTransport::new(url.clone(), None)));
                service_urls.push(url);
            } else {
                services.push(Arc::new(InProcessTransport::new(router, None)));
            }
        }
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
        let clock = Arc::new(ManualClock::at_ms(spec.t0_ms));
        let state = HarnessState::new(harness, store, clock.clone());
        let targets: Vec<Target> = services
            .iter()
            .enumerate()
            .map(|(index, transport)| Target {
                name: instance_name(index),
                transport: transport.clone(),
            })
            .collect();
        let policy =
            Policy::parse("policy.yaml", &spec.policy).map_err(|error| anyhow!("{error}"))?;
        let pipeline = Pipeline::new(&state, targets.clone(), policy)
            .map_err(|error| anyhow!("pipeline: {error}"))?;
        state
            .set_pipeline(pipeline)
            .map_err(|_| anyhow!("one pipeline"))?;
        let observer =
            Observer::new(state.clone(), targets).map_err(|error| anyhow!("observer: {error}"))?;
        let (harness, harness_url): (Arc<dyn Transport>, Option<String>) =
            if let Some(network) = &spec.network {
                let url = expose(api::router(state), network.harness_addr, &shutdown)?;
                (Arc::new(HttpTransport::new(url.clone(), None)), Some(url))
            } else {
                (
                    Arc::new(InProcessTransport::new(api::router(state), None)),
                    None,
                )
            };
        Ok(World {
            service_urls,
            harness_url,
            shutdown,
            remote,
            reconciler: None,
            service_clock,
            clock,
            services,
            harness,
            observer,
            data: spec.data.clone(),
            generator,
            balance,
            t0_ms: spec.t0_ms,
            spread: Rng::new(spec.seed).fork("arrivals"),
            next_instance: 0,
        })
    }

    pub fn now(&self) -> u64 {
        floodgate_harness::Clock::now_ms(self.clock.as_ref())
    }

    /// The first instance (the pipeline's canary when it serves traffic).
    pub fn service(&self) -> &Arc<dyn Transport> {
        &self.services[0]
    }

    /// The backend's tick: a backend fault that has run its course ends,
    /// and an unhealthy backend is probed once by every instance (the
    /// service's own probe, on the world's clock instead of a timer).
    pub async fn backend_tick(&mut self) {
        let now = self.now();
        if let Some(remote) = &mut self.remote {
            if remote.fault_until.is_some_and(|until| now >= until) {
                remote.switch.set(Condition::Up);
                remote.fault_until = None;
            }
            for prober in &remote.probers {
                prober.probe().await;
            }
        }
    }

    /// The instance the load balancer sends a check for `value` to.
    fn route(&mut self, value: &str) -> usize {
        let count = self.services.len();
        match self.balance {
            Balance::ByKey => (fnv1a(value) % count as u64) as usize,
            Balance::RoundRobin => {
                self.next_instance = (self.next_instance + 1) % count;
                self.next_instance
            }
        }
    }

    /// Sends this tick's checks (in process, through each instance's HTTP
    /// router, or over HTTP on the network) through the load balancer,
    /// each at its own moment of the `tick_ms` that end now (the service's
    /// clock moves to it, so the harness observing now sees the whole
    /// tick); records what each tenant got.
    pub async fn send(&mut self, plan: &[Send], tick_ms: u64) -> anyhow::Result<Traffic> {
        let tick_ns = tick_ms * 1_000_000;
        let start_ns = (self.now() * 1_000_000).saturating_sub(tick_ns);
        let mut arrivals: Vec<(u64, usize)> = Vec::new();
        for (index, send) in plan.iter().enumerate() {
            for _ in 0..send.count {
                arrivals.push((self.spread.next_u64() % tick_ns, index));
            }
        }
        arrivals.sort_unstable();
        let domain = self.generator.workload().domain.clone();
        let key = self.generator.workload().key.clone();
        let mut admitted = vec![0u32; plan.len()];
        for (offset, index) in arrivals {
            let send = &plan[index];
            let request = json!({
                "domain": domain,
                "descriptors": [{"entries": [{"key": key, "value": send.tenant}]}],
            });
            self.service_clock.set_ns(start_ns + offset);
            let instance = self.route(&send.tenant);
            let answer = self.services[instance]
                .check(&request)
                .await
                .map_err(|error| anyhow!("check on {}: {error}", instance_name(instance)))?;
            match answer["overall_code"].as_str() {
                Some("OK") => admitted[index] += 1,
                Some("OVER_LIMIT") => {}
                other => return Err(anyhow!("check answered {other:?}: {answer}")),
            }
        }
        self.service_clock.set_ns(start_ns + tick_ns);
        let mut traffic = Traffic::default();
        for (send, admitted) in plan.iter().zip(admitted) {
            traffic.total_sent += send.count;
            traffic.total_admitted += admitted;
            if send.good {
                traffic.good_sent += send.count;
                traffic.good_rejected += send.count - admitted;
            }
            self.generator.record(&send.tenant, send.count, admitted);
            if !send.tenant.starts_with(crate::workload::FLOOD_PREFIX) {
                let entry = traffic.tenants.entry(send.tenant.clone()).or_default();
                entry.0 += send.count;
                entry.1 += admitted;
            }
        }
        Ok(traffic)
    }

    /// The harness observes once (and advances the pipeline, and reflects
    /// when due); answers the tick's report as the harness API shows it
    /// (SLOs, invariants, anomalies, tickets filed). Its errors are the
    /// harness's, reported, never a verdict.
    pub async fn observe(&mut self) -> anyhow::Result<Value> {
        let now = self.now();
        let report = self.observer.observe_once(now).await;
        if report.errors.is_empty() {
            Ok(serde_json::to_value(&report)?)
        } else {
            Err(anyhow!("harness tick at {now}: {:?}", report.errors))
        }
    }

    /// Both clocks move on.
    pub fn advance(&self, ms: u64) {
        self.clock.advance_ms(ms);
        self.service_clock.set_ns(self.now() * 1_000_000);
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
                backs_off,
            } => {
                let until = for_ms.map_or(u64::MAX, |for_ms| now + for_ms);
                self.generator
                    .surge(tenant, *per_minute, now, until, *backs_off);
            }
            FaultKind::Growth {
                tenant,
                per_minute,
                ramp_ms,
                for_ms,
            } => {
                let until = for_ms.map_or(u64::MAX, |for_ms| now + for_ms);
                self.generator
                    .grow(tenant, *per_minute, now, *ramp_ms, until);
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
                by_controller,
            } => {
                let actor = if *by_controller {
                    "controller:deploy"
                } else {
                    "human:operator"
                };
                let hash = self.push_config(limits, *ticket, actor).await?;
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
        let mut version = Value::Null;
        for (index, service) in self.services.iter().enumerate() {
            let applied = service
                .apply_config(&ConfigApplyRequest {
                    yaml: Some(limits.to_owned()),
                    patch: None,
                    dry_run: false,
                    reason: "tightening limits".into(),
                    actor: actor.into(),
                    expect_config_version: None,
                })
                .await
                .map_err(|error| {
                    anyhow!(
                        "the config push by {actor} to {}: {error}",
                        instance_name(index)
                    )
                })?;
            if index == 0 {
                let applied = serde_json::to_value(&applied)?;
                version = applied
                    .pointer("/config_version")
                    .cloned()
                    .unwrap_or(Value::Null);
            }
        }
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

    /// Files an expected-change notice with the harness, as a deploy
    /// system or a human announcing a launch does.
    pub async fn announce(&self, notice: &crate::scenario::Notice) -> anyhow::Result<()> {
        let now = self.now();
        let mut body = json!({
            "matchers": notice
                .matchers
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect::<Vec<_>>(),
            "starts_ms": now,
            "ends_ms": now + notice.for_ms,
            "reason": notice.reason,
            "author": notice.author,
        });
        if let Some(factor) = notice.max_factor {
            body["max_factor"] = json!(factor);
        }
        let (status, answer) = self.post("/v1/notices", body).await?;
        if !(200..300).contains(&status) {
            return Err(anyhow!(
                "the notice of {}: {status} {answer}",
                notice.author
            ));
        }
        Ok(())
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

    /// The first instance's `/v1/state`.
    pub async fn service_state(&self) -> anyhow::Result<floodgate_contract::state::State> {
        self.service()
            .state()
            .await
            .map_err(|error| anyhow!("service state: {error}"))
    }

    /// The fullest counter store of the fleet (its used ratio).
    pub async fn fleet_used_ratio(&self) -> anyhow::Result<f64> {
        let mut most: f64 = 0.0;
        for (index, service) in self.services.iter().enumerate() {
            let state = service
                .state()
                .await
                .map_err(|error| anyhow!("state of {}: {error}", instance_name(index)))?;
            most = most.max(state.store.used_ratio);
        }
        Ok(most)
    }

    pub fn data(&self) -> &Path {
        &self.data
    }
}
