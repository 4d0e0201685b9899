//! The observe loop: services in, ticks and tickets out.
//!
//! Every interval, for each [`Target`] (a name and a contract
//! [`Transport`]): fetch `/metrics`, `/v1/health` and `/v1/state`, and read
//! `/v1/events` onwards from a cursor; feed the samples of every target to
//! the [`Harness`], give it the notices not yet expired
//! ([`Harness::set_notices`]), run one [`Harness::tick`], file the tick's
//! violations into the [`Store`] and record what notices held back
//! (`notice.suppressed`, `notice.exceeded`: once per detector episode).
//!
//! - Time comes from an injected [`Clock`] (milliseconds): the step,
//!   [`Observer::observe_once`]`(now)`, can be called directly under a
//!   simulated clock; [`Observer::run`] only calls it on a tokio interval.
//! - A target that cannot be reached (or answers nonsense) is recorded as an
//!   observation error and as `up{instance="NAME"} 0` in the time-series
//!   store, so an invariant such as `metrics.up == 1.0` can ticket it. It is
//!   never a panic, and it never stops the loop.
//! - Every call is bounded by [`CALL_TIMEOUT`]; a tick's event reading by
//!   [`EVENTS_PER_TICK`]. Events are kept per target in a ring of
//!   [`RECENT_EVENTS`] and linked from the tickets a tick files.
//! - With several targets, every target's samples are kept apart by their
//!   `instance` label, and invariants over `state` and `health` are judged
//!   per target (each with its own documents; tickets name the instance).

use crate::exposition::{self, Exposition};
use crate::harness::{
    file_violations, AnomalyReport, Harness, HarnessEvent, Observation, ANOMALY_BEYOND_NOTICE,
    ANOMALY_EXPECTED,
};
use crate::invariants::InvariantReport;
use crate::notices::NoticeEvent;
use crate::prometheus::PrometheusSource;
use crate::slo::SloReport;
use crate::store::{IntakeAction, SloSnapshot, Store};
use crate::tickets::bound_context;
use crate::tsdb::SeriesKind;
use floodgate_contract::client::{ClientError, EventQuery, ServiceApi, Transport};
use serde::Serialize;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The default observation interval.
pub const DEFAULT_INTERVAL_MS: u64 = 10_000;
/// The shortest interval accepted (each tick fsyncs its filings).
pub const MIN_INTERVAL_MS: u64 = 1_000;
/// The longest interval accepted (the SLO short windows are 5 minutes).
pub const MAX_INTERVAL_MS: u64 = 5 * 60_000;
/// The longest one call to a service may take before the target counts as
/// unreachable for the tick.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Events read from one target per tick (the rest wait for the next tick;
/// the service's ring may drop some meanwhile, which is counted).
pub const EVENTS_PER_TICK: u64 = 500;
/// Recent events kept per target, for links from tickets.
pub const RECENT_EVENTS: usize = 256;
/// Event links added to one ticket's context.
pub const EVENT_LINKS_PER_TICKET: usize = 20;
/// The most targets one harness observes.
pub const MAX_TARGETS: usize = 32;
/// The longest target name (it becomes a label value).
pub const MAX_TARGET_NAME_BYTES: usize = 128;
/// The most observation errors the last tick's report keeps.
pub const MAX_TICK_ERRORS: usize = 64;
/// The series the loop records per target: 1 when `/metrics` (or, reading
/// from Prometheus, `/v1/health`) answered this tick, else 0.
pub const UP_SERIES: &str = "up";

/// Time, real or simulated: the contract's one clock, read here in
/// milliseconds (`now_ms`).
pub use floodgate_contract::clock::{Clock, ManualClock, SystemClock};

/// One service to observe.
#[derive(Clone)]
pub struct Target {
    /// The `instance` label of its samples (`127.0.0.1:8080`).
    pub name: String,
    pub transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("name", &self.name).finish()
    }
}

/// What the loop knows of one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TargetStatus {
    pub name: String,
    /// Whether the last tick reached it.
    pub up: bool,
    pub last_ok_ms: Option<u64>,
    /// The last tick's errors for this target (empty when all went well).
    pub errors: Vec<String>,
    pub consecutive_failures: u64,
    /// The `/v1/events` cursor (the last seq read).
    pub events_after: u64,
    pub events_seen: u64,
    /// Events the service's ring dropped before the loop read them.
    pub events_missed: u64,
}

/// A link from a ticket to a service event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventLink {
    pub service: String,
    pub seq: u64,
    pub time_ms: u64,
    #[serde(rename = "type")]
    pub kind: String,
}

/// A ticket filed (or touched) by a tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filed {
    pub id: String,
    pub action: IntakeAction,
    pub fingerprint: String,
}

/// The last tick, as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TickReport {
    pub time_ms: u64,
    pub slos: Vec<SloReport>,
    pub invariants: Vec<InvariantReport>,
    pub anomalies: Vec<AnomalyReport>,
    /// Events the tick reported instead of filing tickets.
    pub events: Vec<HarnessEvent>,
    pub filed: Vec<Filed>,
    /// Claims the tick returned to `open`.
    pub expired_claims: Vec<String>,
    /// Observation, evaluation and store errors (at most
    /// [`MAX_TICK_ERRORS`]).
    pub errors: Vec<String>,
}

/// Loop-wide status.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ObserveStatus {
    pub ticks: u64,
    pub targets: Vec<TargetStatus>,
    /// `None` before the first tick.
    pub last_tick: Option<TickReport>,
}

/// What the loop and the API share: the harness, the queue, the clock, and
/// the loop's status. Locks are never held across an await.
pub struct HarnessState {
    harness: Mutex<Harness>,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    status: Mutex<ObserveStatus>,
    /// The pipeline agents' proposals go through (absent: the harness
    /// files tickets but changes nothing).
    pipeline: std::sync::OnceLock<Arc<crate::pipeline::Pipeline>>,
    /// Reflection's thresholds (default until set).
    reflection: std::sync::OnceLock<crate::reflection::Thresholds>,
}

impl std::fmt::Debug for HarnessState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HarnessState")
            .field("store", &self.store)
            .finish()
    }
}

fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic under the lock leaves plain data behind: keep using it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl HarnessState {
    pub fn new(harness: Harness, store: Store, clock: Arc<dyn Clock>) -> Arc<HarnessState> {
        Arc::new(HarnessState {
            harness: Mutex::new(harness),
            store: Arc::new(store),
            clock,
            status: Mutex::new(ObserveStatus::default()),
            pipeline: std::sync::OnceLock::new(),
            reflection: std::sync::OnceLock::new(),
        })
    }

    /// Sets reflection's thresholds (once).
    pub fn set_reflection(&self, thresholds: crate::reflection::Thresholds) -> Result<(), String> {
        self.reflection
            .set(thresholds)
            .map_err(|_| "the harness already has reflection thresholds".to_owned())
    }

    pub fn reflection_thresholds(&self) -> crate::reflection::Thresholds {
        self.reflection.get().cloned().unwrap_or_default()
    }

    /// Reflects now (blocking: store calls).
    pub fn reflect(
        &self,
        now_ms: u64,
    ) -> Result<crate::reflector::RunReport, crate::store::StoreError> {
        crate::reflector::run(&self.store, &self.reflection_thresholds(), now_ms)
    }

    /// Installs the pipeline (once; a second call is refused).
    pub fn set_pipeline(&self, pipeline: crate::pipeline::Pipeline) -> Result<(), String> {
        self.pipeline
            .set(Arc::new(pipeline))
            .map_err(|_| "the harness already has a pipeline".to_owned())
    }

    pub fn pipeline(&self) -> Option<&Arc<crate::pipeline::Pipeline>> {
        self.pipeline.get()
    }

    pub fn harness(&self) -> MutexGuard<'_, Harness> {
        relock(&self.harness)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn status(&self) -> ObserveStatus {
        relock(&self.status).clone()
    }

    /// What a trajectory records as its initial or final state: SLOs and
    /// budgets, invariants (at the last tick), each service's config
    /// version and hash and store, and the ticket's criteria now.
    pub fn snapshot(
        &self,
        ticket: Option<&crate::tickets::Ticket>,
        now_ms: u64,
    ) -> serde_json::Value {
        let tick = self.status().last_tick;
        let harness = self.harness();
        let slos: Vec<serde_json::Value> = harness
            .objectives()
            .slos
            .iter()
            .map(|slo| {
                let report = crate::slo::evaluate(slo, harness.tsdb(), now_ms);
                serde_json::json!({
                    "name": report.name,
                    "sli": report.sli,
                    "error_budget_remaining": report.error_budget_remaining,
                    "burn_rates": report.burn_rates,
                    "firing": report.firing,
                })
            })
            .collect();
        let invariants: Vec<serde_json::Value> = tick
            .as_ref()
            .map(|tick| {
                tick.invariants
                    .iter()
                    .map(|report| serde_json::to_value(report).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        let services: Vec<serde_json::Value> = harness
            .service_documents()
            .map(|(instance, state)| {
                serde_json::json!({
                    "instance": instance,
                    "config_version": state.and_then(|s| s.pointer("/config/version")).cloned(),
                    "config_hash": state.and_then(|s| s.pointer("/config/hash")).cloned(),
                    "store": state.and_then(|s| s.get("store")).cloned(),
                })
            })
            .collect();
        let criteria = ticket.map(|ticket| harness.evaluate_criteria(ticket, now_ms));
        serde_json::json!({
            "time_ms": now_ms,
            "slos": slos,
            "invariants": invariants,
            "services": services,
            "criteria": criteria,
        })
    }

    /// Fills every trajectory snapshot still missing (initial after a
    /// claim, final after a close). Answers the problems met.
    pub fn fill_snapshots(&self, now_ms: u64) -> Vec<String> {
        let store = self.store();
        let missing = match store.snapshots_missing() {
            Ok(missing) => missing,
            Err(error) => return vec![format!("trajectories: {error}")],
        };
        let mut errors = Vec::new();
        for (ticket_id, initial) in missing {
            let ticket = store.get(&ticket_id).ok().flatten();
            let snapshot = self.snapshot(ticket.as_ref(), now_ms);
            if let Err(error) = store.fill_snapshot(&ticket_id, initial, &snapshot) {
                errors.push(format!("trajectory {ticket_id}: {error}"));
            }
        }
        errors
    }
}

/// What a tick's events did to notices, for the ledger: each
/// `anomaly.expected` is a [`NoticeEvent::Suppressed`] of the notice it
/// names, each `anomaly.beyond_notice` a [`NoticeEvent::Exceeded`] of
/// every notice it names. The harness raises these once per detector
/// episode, so the ledger grows per episode, never per tick.
fn notice_events(events: &[HarnessEvent]) -> Vec<(String, NoticeEvent)> {
    let mut out = Vec::new();
    for event in events {
        let ids: Vec<String> = match event.kind.as_str() {
            ANOMALY_EXPECTED => event.detail["notice"]
                .as_str()
                .map(str::to_owned)
                .into_iter()
                .collect(),
            ANOMALY_BEYOND_NOTICE => event.detail["notices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect(),
            _ => continue,
        };
        for id in ids {
            let notice_event = if event.kind == ANOMALY_EXPECTED {
                NoticeEvent::Suppressed {
                    anomaly: event.name.clone(),
                    detail: event.detail.clone(),
                }
            } else {
                NoticeEvent::Exceeded {
                    anomaly: event.name.clone(),
                    detail: event.detail.clone(),
                }
            };
            out.push((id, notice_event));
        }
    }
    out
}

/// Keeps the tick's SLO budgets for reports (`slo_snapshots`: at most one
/// per SLO per [`crate::store::SLO_SNAPSHOT_INTERVAL_MS`]), on a blocking
/// thread. Answers the problem met, if any.
async fn keep_slo_history(
    state: &Arc<HarnessState>,
    slos: &[SloReport],
    now_ms: u64,
) -> Option<String> {
    if slos.is_empty() {
        return None;
    }
    let snapshots: Vec<SloSnapshot> = slos.iter().map(|r| SloSnapshot::of(r, now_ms)).collect();
    let store = Arc::clone(state.store());
    match tokio::task::spawn_blocking(move || store.record_slo_snapshots(&snapshots)).await {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => Some(format!("store: SLO history: {error}")),
        Err(error) => Some(format!("store: the SLO history task failed: {error}")),
    }
}

struct TargetRuntime {
    target: Target,
    status: TargetStatus,
    /// `None` until the first page of events was read.
    cursor: Option<u64>,
    recent: VecDeque<EventLink>,
}

/// The loop. Owns the per-target cursors; shares the rest.
pub struct Observer {
    state: Arc<HarnessState>,
    /// When reflection last ran (`None`: at the first tick).
    last_reflect_ms: Option<u64>,
    targets: Vec<TargetRuntime>,
    prometheus: Option<PrometheusSource>,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("targets", &self.targets.len())
            .field("prometheus", &self.prometheus.is_some())
            .finish()
    }
}

async fn bounded<T>(call: impl Future<Output = Result<T, ClientError>>) -> Result<T, ClientError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Transport(format!(
            "no answer within {}s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

/// One target's fetches for one tick.
struct Fetched {
    exposition: Option<Exposition>,
    state: Option<serde_json::Value>,
    health: Option<serde_json::Value>,
    up: bool,
}

impl Observer {
    /// An observer of `targets` (names unique, at most [`MAX_TARGETS`]).
    pub fn new(state: Arc<HarnessState>, targets: Vec<Target>) -> Result<Observer, String> {
        if targets.len() > MAX_TARGETS {
            return Err(format!(
                "{} services, more than {MAX_TARGETS}",
                targets.len()
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for target in &targets {
            if target.name.is_empty() || target.name.len() > MAX_TARGET_NAME_BYTES {
                return Err(format!(
                    "service name {:?}: must be 1 to {MAX_TARGET_NAME_BYTES} bytes",
                    target.name
                ));
            }
            if !seen.insert(target.name.clone()) {
                return Err(format!("service {} is given twice", target.name));
            }
        }
        let targets = targets
            .into_iter()
            .map(|target| TargetRuntime {
                status: TargetStatus {
                    name: target.name.clone(),
                    ..TargetStatus::default()
                },
                target,
                cursor: None,
                recent: VecDeque::new(),
            })
            .collect();
        Ok(Observer {
            state,
            last_reflect_ms: None,
            targets,
            prometheus: None,
        })
    }

    /// Reads the series from a Prometheus server instead of `/metrics`
    /// (the targets still answer health, state and events).
    pub fn with_prometheus(mut self, source: PrometheusSource) -> Observer {
        self.prometheus = Some(source);
        self
    }

    pub fn state(&self) -> &Arc<HarnessState> {
        &self.state
    }

    async fn fetch(
        runtime: &mut TargetRuntime,
        scrape: bool,
        now_ms: u64,
        errors: &mut Vec<String>,
    ) -> Fetched {
        let transport = runtime.target.transport.as_ref();
        let query = EventQuery {
            after: runtime.cursor.unwrap_or(0),
            types: Vec::new(),
            limit: Some(EVENTS_PER_TICK),
            wait_ms: None,
        };
        let metrics = async {
            if scrape {
                Some(bounded(transport.metrics()).await)
            } else {
                None
            }
        };
        let (metrics, health, state, events) = tokio::join!(
            metrics,
            bounded(transport.health()),
            bounded(transport.state()),
            bounded(transport.events(&query)),
        );
        let name = runtime.target.name.clone();
        let mut mine = Vec::new();
        let exposition = match metrics {
            None => None,
            Some(Ok(text)) => match exposition::parse(&text) {
                Ok(parsed) => Some(parsed),
                Err(error) => {
                    mine.push(format!("{name}: /metrics: {error}"));
                    None
                }
            },
            Some(Err(error)) => {
                mine.push(format!("{name}: /metrics: {error}"));
                None
            }
        };
        let health = match health {
            Ok(health) => serde_json::to_value(health).ok(),
            Err(error) => {
                mine.push(format!("{name}: /v1/health: {error}"));
                None
            }
        };
        let state = match state {
            Ok(state) => serde_json::to_value(state).ok(),
            Err(error) => {
                mine.push(format!("{name}: /v1/state: {error}"));
                None
            }
        };
        match events {
            Ok(page) => {
                let after = runtime.cursor.unwrap_or(0);
                if runtime.cursor.is_some() && page.oldest_seq > after + 1 {
                    runtime.status.events_missed += page.oldest_seq - after - 1;
                }
                for event in &page.events {
                    let kind = serde_json::to_value(&event.body)
                        .ok()
                        .and_then(|value| {
                            value
                                .get("type")
                                .and_then(|t| t.as_str().map(str::to_owned))
                        })
                        .unwrap_or_default();
                    if runtime.recent.len() >= RECENT_EVENTS {
                        runtime.recent.pop_front();
                    }
                    runtime.recent.push_back(EventLink {
                        service: name.clone(),
                        seq: event.seq,
                        time_ms: event.time_ms,
                        kind,
                    });
                }
                runtime.status.events_seen += page.events.len() as u64;
                let next = page.next_after.max(after);
                runtime.cursor = Some(next);
                runtime.status.events_after = next;
            }
            Err(error) => mine.push(format!("{name}: /v1/events: {error}")),
        }
        let up = if scrape {
            exposition.is_some()
        } else {
            health.is_some()
        };
        runtime.status.up = up;
        if up {
            runtime.status.last_ok_ms = Some(now_ms);
            runtime.status.consecutive_failures = 0;
        } else {
            runtime.status.consecutive_failures += 1;
        }
        runtime.status.errors.clone_from(&mine);
        errors.extend(mine);
        Fetched {
            exposition,
            state,
            health,
            up,
        }
    }

    /// One step at `now_ms`: observe every target, tick, file. Never
    /// panics on what services answer; every problem is in the report's
    /// `errors`.
    pub async fn observe_once(&mut self, now_ms: u64) -> TickReport {
        let mut errors = Vec::new();
        let scrape = self.prometheus.is_none();
        let mut fetched = Vec::with_capacity(self.targets.len());
        for runtime in &mut self.targets {
            fetched.push(Self::fetch(runtime, scrape, now_ms, &mut errors).await);
        }
        let from_prometheus = match &mut self.prometheus {
            Some(source) => match source.fetch(now_ms).await {
                Ok(instants) => instants,
                Err(error) => {
                    errors.push(format!("prometheus: {error}"));
                    Vec::new()
                }
            },
            None => Vec::new(),
        };

        // The notices not yet expired: the tick matches anomalies against
        // them (a failed read keeps the last ones the harness was given).
        let notices = {
            let store = Arc::clone(&self.state.store);
            match tokio::task::spawn_blocking(move || store.live_notices(now_ms)).await {
                Ok(Ok(notices)) => Some(notices),
                Ok(Err(error)) => {
                    errors.push(format!("store: notices: {error}"));
                    None
                }
                Err(error) => {
                    errors.push(format!("store: the notices task failed: {error}"));
                    None
                }
            }
        };
        let (output, links) = {
            let mut harness = self.state.harness();
            if let Some(notices) = notices {
                errors.extend(harness.set_notices(notices));
            }
            for (time_ms, exposition) in &from_prometheus {
                harness.ingest(*time_ms, "", exposition);
            }
            for (runtime, fetched) in self.targets.iter().zip(&fetched) {
                if let Some(exposition) = &fetched.exposition {
                    harness.ingest(now_ms, &runtime.target.name, exposition);
                }
                harness.record(
                    now_ms,
                    UP_SERIES,
                    vec![("instance".into(), runtime.target.name.clone())],
                    if fetched.up { 1.0 } else { 0.0 },
                    SeriesKind::Gauge,
                );
            }
            // Each service's state and health are its own invariant inputs.
            for (runtime, fetched) in self.targets.iter().zip(&fetched) {
                harness.observe_service(
                    &runtime.target.name,
                    fetched.state.clone(),
                    fetched.health.clone(),
                );
            }
            let output = harness.tick(&Observation {
                time_ms: now_ms,
                ..Observation::default()
            });
            let links: Vec<EventLink> = {
                let mut all: Vec<&EventLink> =
                    self.targets.iter().flat_map(|t| t.recent.iter()).collect();
                all.sort_by_key(|link| link.time_ms);
                all.iter()
                    .rev()
                    .take(EVENT_LINKS_PER_TICKET)
                    .rev()
                    .map(|link| (*link).clone())
                    .collect()
            };
            (output, links)
        };
        errors.extend(output.errors.iter().cloned());

        let mut violations = output.violations.clone();
        if !links.is_empty() {
            for violation in &mut violations {
                if let serde_json::Value::Object(map) = &mut violation.draft.context {
                    map.insert(
                        "recent_events".into(),
                        serde_json::to_value(&links).unwrap_or_default(),
                    );
                }
                violation.draft.context = bound_context(violation.draft.context.take());
            }
        }
        let notice_events = notice_events(&output.events);
        let store = Arc::clone(&self.state.store);
        let filing = tokio::task::spawn_blocking(move || {
            let filed = file_violations(&store, &violations, now_ms);
            let expired = store.expire_claims(now_ms);
            let noticed: Vec<String> = notice_events
                .iter()
                .filter_map(|(id, event)| {
                    store
                        .record_notice_event(id, event, now_ms)
                        .err()
                        .map(|error| format!("store: notice {id}: {error}"))
                })
                .collect();
            (filed, expired, noticed)
        })
        .await;
        let mut filed = Vec::new();
        let mut expired_claims = Vec::new();
        match filing {
            Ok((outcomes, expired, noticed)) => {
                errors.extend(noticed);
                let outcomes = match outcomes {
                    Ok(outcomes) => outcomes,
                    Err((outcomes, error)) => {
                        errors.push(format!("store: {error} (the rest is filed next tick)"));
                        outcomes
                    }
                };
                filed = outcomes
                    .into_iter()
                    .map(|outcome| Filed {
                        id: outcome.ticket.id,
                        action: outcome.action,
                        fingerprint: outcome.ticket.fingerprint,
                    })
                    .collect();
                match expired {
                    Ok(ids) => expired_claims = ids,
                    Err(error) => errors.push(format!("store: expiring claims: {error}")),
                }
            }
            Err(error) => errors.push(format!("store: the filing task failed: {error}")),
        }
        errors.extend(keep_slo_history(&self.state, &output.slos, now_ms).await);
        if let Some(pipeline) = self.state.pipeline().cloned() {
            errors.extend(pipeline.advance(&self.state, now_ms).await);
        }
        {
            let state = Arc::clone(&self.state);
            match tokio::task::spawn_blocking(move || state.fill_snapshots(now_ms)).await {
                Ok(problems) => errors.extend(problems),
                Err(error) => errors.push(format!("trajectories: {error}")),
            }
        }
        // Every interval, and at once when a fixed problem came back (a
        // ticket reopened): the fix that keeps coming back is a finding
        // before an agent applies it again (ADR 0026).
        let reopened = self.state.store().take_reopened();
        let due = reopened
            || self.last_reflect_ms.is_none_or(|last| {
                now_ms >= last.saturating_add(crate::reflector::REFLECT_INTERVAL_MS)
            });
        if due {
            self.last_reflect_ms = Some(now_ms);
            let state = Arc::clone(&self.state);
            match tokio::task::spawn_blocking(move || state.reflect(now_ms)).await {
                Ok(Ok(report)) => {
                    for finding in &report.findings {
                        tracing::warn!(kind = ?finding.kind, key = %finding.key, "reflection: {}", finding.message);
                    }
                }
                Ok(Err(error)) => errors.push(format!("reflection: {error}")),
                Err(error) => errors.push(format!("reflection: {error}")),
            }
        }
        for error in &errors {
            tracing::warn!(%error, "observe");
        }
        for item in &filed {
            tracing::info!(id = %item.id, action = ?item.action, fingerprint = %item.fingerprint, "ticket");
        }
        errors.truncate(MAX_TICK_ERRORS);
        let report = TickReport {
            time_ms: now_ms,
            slos: output.slos,
            invariants: output.invariants,
            anomalies: output.anomalies,
            events: output.events,
            filed,
            expired_claims,
            errors,
        };
        let mut status = relock(&self.state.status);
        status.ticks += 1;
        status.targets = self.targets.iter().map(|t| t.status.clone()).collect();
        status.last_tick = Some(report.clone());
        report
    }

    /// Calls [`Observer::observe_once`] every `interval` of real time (the
    /// time it passes is the clock's) until `shutdown` completes. A slow
    /// tick delays the next rather than bunching them up.
    pub async fn run(mut self, interval: Duration, shutdown: impl Future<Output = ()>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticker.tick() => {
                    let now = self.state.now_ms();
                    self.observe_once(now).await;
                }
            }
        }
    }
}
