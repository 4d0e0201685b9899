//! The tick: one observation in, reports and ticket drafts out.
//!
//! [`Harness::tick`] is a pure step of (state, observation) → output: time
//! is the observation's `time_ms`, nothing is read from a clock, and no I/O
//! happens. The caller (the scrape loop, a simulation) gathers observations
//! through the contract client and files the output's violations with
//! [`crate::run::observer::file_violations`] — the only effect, at the edge.
//!
//! Expected-change notices ([`crate::tickets::notices`], ADR 0011) are given to the
//! harness by the caller ([`Harness::set_notices`]); the tick decides what
//! they hold back: an anomaly an active notice covers files no ticket (an
//! [`ANOMALY_EXPECTED`] event instead), one beyond its `max_factor` files
//! its ticket naming it ([`ANOMALY_BEYOND_NOTICE`]), and a detector whose
//! episode a notice held back re-learns from the new level when the notice
//! ends. SLO and invariant violations are never held back.
//!
//! An anomaly that declares `capacity:` (the most its series may read
//! without harm, ADR 0022) files no ticket for a rise its capacity
//! absorbs: the episode is recorded as [`ANOMALY_WITHIN_CAPACITY`] and
//! held back while it stays within; the first value of the same episode
//! past the capacity files the ticket. A drop is never absorbed.
//!
//! An anomaly that declares `sustain:` files only an episode that lasts
//! that long (a burst that comes and goes is recorded as
//! [`ANOMALY_TRANSIENT`] when it ends), unless its value is past the
//! declared capacity: harm known at once files at once. The ticket's
//! reference is the level frozen when the episode began, not the one the
//! detector learned while it waited.

use crate::observe::anomaly::{Detector, DetectorState};
use crate::observe::exposition;
use crate::observe::invariants::{
    Breach, Inputs, InvariantConfig, InvariantEvaluator, InvariantReport,
};
use crate::observe::objectives::{AnomalyDef, Objectives, OnViolation, Severity, Transform};
use crate::observe::slo::{SloAlert, SloEvaluator, SloReport};
use crate::observe::tsdb::{SeriesKind, Tsdb, TsdbLimits};
use crate::quantity::{trim_float, HOUR_MS, MINUTE_MS};
use crate::tickets::criteria::{
    capture_baselines, Condition, Criterion, CriterionResult, MetricQuery, MetricRegistry,
    Reference, Sustain, ANOMALY_SCORE_SERIES, ANOMALY_VALUE_SERIES, INVARIANT_HOLDS_SERIES,
};
use crate::tickets::notices::{
    band, within_band, CompiledNotice, LabelName, Notice, NoticeState, Signal, MAX_LIVE_NOTICES,
};
use crate::tickets::{
    bound_context, FieldError, NewTicket, Objective, Priority, Source, Ticket, TicketType,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// The event a tick records when an active notice keeps an anomaly from
/// filing a ticket (once per episode; the observe loop records it in the
/// ledger as `notice.suppressed`).
pub const ANOMALY_EXPECTED: &str = "anomaly.expected";
/// The event a tick records when an anomaly goes beyond what the notices
/// matching it announced (their `max_factor`): its ticket is filed, naming
/// them (the ledger's `notice.exceeded`).
pub const ANOMALY_BEYOND_NOTICE: &str = "anomaly.beyond_notice";
/// The event a tick records when an anomaly's rise stays within the
/// capacity its definition declares: no ticket (once per episode; a value
/// of the same episode past the capacity files it).
pub const ANOMALY_WITHIN_CAPACITY: &str = "anomaly.within_capacity";
/// The event a tick records when an episode ends before its anomaly's
/// `sustain:` elapsed (and it never went past a declared capacity): a
/// transient rise or fall, no ticket.
pub const ANOMALY_TRANSIENT: &str = "anomaly.transient";

/// The window of the `rate` map invariant expressions see.
pub const INVARIANT_RATE_WINDOW_MS: u64 = 5 * MINUTE_MS;
/// How long a harness-filed ticket's criterion must hold to count as fixed.
pub const FIX_SUSTAIN_MS: u64 = 30 * MINUTE_MS;
/// How long an SLO ticket's criterion (the SLI at its target) must hold to
/// count as fixed, for a page and a slow-burn ticket alike (ADR 0026).
pub const SLO_FIX_SUSTAIN_MS: u64 = HOUR_MS;

/// What the harness saw of one service at one moment. Every field but the
/// time is optional: a failed scrape is an observation with less in it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Milliseconds since the Unix epoch (simulated or real).
    pub time_ms: u64,
    /// Which service (added as the `instance` label when not empty).
    pub instance: String,
    /// The `/metrics` body.
    pub metrics_text: Option<String>,
    /// `GET /v1/state`, as JSON.
    pub state_json: Option<serde_json::Value>,
    /// `GET /v1/health`, as JSON.
    pub health_json: Option<serde_json::Value>,
}

/// Settings of a harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HarnessConfig {
    pub tsdb: TsdbLimits,
    /// While an SLO alert or an invariant breach persists, repeat its
    /// violation this often (absorbed by the open ticket; after resolution,
    /// the reopen policy applies).
    pub renotify_ms: u64,
}

impl Default for HarnessConfig {
    fn default() -> Self {
        HarnessConfig {
            tsdb: TsdbLimits::default(),
            renotify_ms: HOUR_MS,
        }
    }
}

/// One anomaly detector's report for a tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyReport {
    pub name: String,
    pub series: String,
    pub value: Option<f64>,
    pub median: Option<f64>,
    pub score: Option<f64>,
    pub state: DetectorState,
    pub alarms: u64,
}

/// A violation to file as a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub draft: NewTicket,
    /// A repeat of a violation already reported (the queue absorbs it).
    pub reminder: bool,
}

/// Something worth recording that files no ticket (`on_violation: event`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HarnessEvent {
    pub time_ms: u64,
    /// `invariant.breached`, `anomaly.detected`.
    pub kind: String,
    pub name: String,
    pub detail: serde_json::Value,
}

/// Everything one tick produced.
#[derive(Debug, Clone, PartialEq)]
pub struct TickOutput {
    pub time_ms: u64,
    pub slos: Vec<SloReport>,
    pub invariants: Vec<InvariantReport>,
    pub anomalies: Vec<AnomalyReport>,
    pub violations: Vec<Violation>,
    pub events: Vec<HarnessEvent>,
    /// Problems with the observation (a malformed exposition).
    pub errors: Vec<String>,
}

/// Why a harness could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

/// The harness's deterministic core.
pub struct Harness {
    objectives: Objectives,
    registry: MetricRegistry,
    tsdb: Tsdb,
    slos: SloEvaluator,
    invariants: InvariantEvaluator,
    anomalies: Vec<(AnomalyDef, Detector)>,
    /// Per anomaly detector (same index): its signal and the notice that
    /// holds back its current episode.
    expectations: Vec<Expectation>,
    /// The notices not yet expired, by id, as last given
    /// ([`Harness::set_notices`]).
    notices: BTreeMap<String, CompiledNotice>,
    /// What each active notice saw of each detector it matches, by
    /// (notice id, detector index).
    coverage: BTreeMap<(String, usize), Coverage>,
    /// The latest state and health seen per service (instance; `""` for
    /// observations without one), so a tick whose scrape of them failed
    /// still evaluates against the last known documents.
    documents: BTreeMap<String, ServiceDocuments>,
    /// Since when each limit has rejected each value (evidence's
    /// `rejected_since_ms`).
    rejecting: crate::observe::evidence::RejectingSince,
}

/// One anomaly detector as notices see it.
#[derive(Debug, Clone)]
struct Expectation {
    /// The labels a notice matches (see [`anomaly_signal`]).
    signal: Signal,
    /// The notice that held back the current episode's ticket, while the
    /// episode lasts.
    suppressed_by: Option<String>,
    /// The current episode is a rise within the declared capacity: held
    /// back while it stays within.
    absorbed: bool,
    /// The current episode alarmed and waits for its anomaly's `sustain:`
    /// before it files.
    pending: Option<Pending>,
}

/// An episode waiting for its anomaly's `sustain:`.
#[derive(Debug, Clone)]
struct Pending {
    /// When it alarmed.
    since_ms: u64,
    /// The level before it (the ticket's reference when it files).
    reference: Option<Reference>,
    /// The detail of its alarm (the transient event's, when it ends).
    first: serde_json::Value,
}

/// What one active notice saw of one detector.
#[derive(Debug, Clone, Default)]
struct Coverage {
    /// The detector's median when the notice started covering it.
    level: Option<f64>,
    /// It held back an episode of this detector.
    engaged: bool,
    /// Values of that episode (from its first exceeding value) the
    /// detector has learned: what it re-learns from when the notice ends.
    episode_values: usize,
}

/// A matching active notice and the level it judges a `max_factor` from.
struct Covered<'a> {
    notice: &'a Notice,
    level: Option<f64>,
}

impl Covered<'_> {
    /// Whether the notice still covers `value`: always without a
    /// `max_factor` (or before a level is known), else within
    /// `[level / F, level × F]`.
    fn holds(&self, value: f64) -> bool {
        match (self.notice.max_factor, self.level) {
            (Some(factor), Some(level)) => within_band(value, level, factor),
            _ => true,
        }
    }

    fn band(&self) -> Option<(f64, f64)> {
        Some(band(self.level?, self.notice.max_factor?))
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.notice.id,
            "author": self.notice.author,
            "reason": self.notice.reason,
            "ends_ms": self.notice.end_ms(),
            "max_factor": self.notice.max_factor,
            "level": self.level,
            "band": self.band().map(|(low, high)| [low, high]),
        })
    }
}

/// Why a change is beyond what was announced, in a sentence.
fn beyond_text(covered: &[Covered<'_>], value: f64) -> String {
    let parts: Vec<String> = covered
        .iter()
        .map(
            |item| match (item.band(), item.level, item.notice.max_factor) {
                (Some((low, high)), Some(level), Some(factor)) => format!(
                    "{} allowed [{}, {}] ({}× its level of {} when it started)",
                    item.notice.id,
                    trim_float(low),
                    trim_float(high),
                    trim_float(factor),
                    trim_float(level)
                ),
                _ => item.notice.id.clone(),
            },
        )
        .collect();
    format!(
        "the change went beyond what was announced: {} is outside what {}",
        trim_float(value),
        parts.join("; ")
    )
}

/// The labels an anomaly's would-be ticket carries: `anomaly` (the
/// detector's name), `metric` (its series' metric name), and `service`,
/// `limit`, `tenant` when its selector pins them with an equality matcher
/// (`instance` or `service` for `service`).
fn anomaly_signal(def: &AnomalyDef) -> Signal {
    let mut signal = Signal::new([
        (LabelName::Anomaly, def.name.clone()),
        (LabelName::Metric, def.series.name.clone()),
    ]);
    for matcher in &def.series.matchers {
        if matcher.op != crate::observe::selector::MatchOp::Equal {
            continue;
        }
        let name = match matcher.label.as_str() {
            "instance" | "service" => LabelName::Service,
            "limit" => LabelName::Limit,
            "tenant" => LabelName::Tenant,
            _ => continue,
        };
        signal.set(name, matcher.value.clone());
    }
    signal
}

/// The last known documents of one service.
#[derive(Debug, Clone, Default, PartialEq)]
struct ServiceDocuments {
    state: Option<serde_json::Value>,
    health: Option<serde_json::Value>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("slos", &self.objectives.slos.len())
            .field("invariants", &self.objectives.invariants.len())
            .field("anomalies", &self.objectives.anomalies.len())
            .finish()
    }
}

impl Harness {
    pub fn new(objectives: Objectives, config: HarnessConfig) -> Result<Harness, HarnessError> {
        let registry = MetricRegistry::for_objectives(&objectives).map_err(HarnessError)?;
        let invariants = InvariantEvaluator::new(
            &objectives.invariants,
            InvariantConfig {
                renotify_ms: config.renotify_ms,
            },
        )
        .map_err(HarnessError)?;
        let anomalies = objectives
            .anomalies
            .iter()
            .map(|def| (def.clone(), Detector::new(def.detector)))
            .collect();
        let expectations = objectives
            .anomalies
            .iter()
            .map(|def| Expectation {
                signal: anomaly_signal(def),
                suppressed_by: None,
                absorbed: false,
                pending: None,
            })
            .collect();
        // The store keeps what the harness's queries read first (SLIs,
        // criteria metrics, anomaly series) when its series cap is reached.
        let mut tsdb = Tsdb::new(config.tsdb);
        tsdb.want(
            registry
                .metrics()
                .flat_map(|metric| {
                    metric
                        .query
                        .families()
                        .into_iter()
                        .chain(metric.level.iter().flat_map(MetricQuery::families))
                })
                .chain(
                    objectives
                        .anomalies
                        .iter()
                        .map(|def| def.series.name.clone()),
                ),
        );
        Ok(Harness {
            expectations,
            notices: BTreeMap::new(),
            coverage: BTreeMap::new(),
            slos: SloEvaluator::new(&objectives.slos, config.renotify_ms),
            invariants,
            anomalies,
            registry,
            tsdb,
            objectives,
            documents: BTreeMap::new(),
            rejecting: crate::observe::evidence::RejectingSince::default(),
        })
    }

    pub fn objectives(&self) -> &Objectives {
        &self.objectives
    }

    pub fn registry(&self) -> &MetricRegistry {
        &self.registry
    }

    pub fn tsdb(&self) -> &Tsdb {
        &self.tsdb
    }

    /// Ingests one parsed scrape (or one instant of a Prometheus range
    /// query) without evaluating anything: the observe loop feeds every
    /// target's samples this way, then runs one [`Harness::tick`].
    /// `instance`, when not empty, becomes the `instance` label.
    pub fn ingest(&mut self, time_ms: u64, instance: &str, exposition: &exposition::Exposition) {
        self.tsdb.ingest(time_ms, instance, exposition);
    }

    /// Records one value of one series (the observe loop's `up`).
    pub fn record(
        &mut self,
        time_ms: u64,
        name: &str,
        labels: Vec<(String, String)>,
        value: f64,
        kind: SeriesKind,
    ) {
        self.tsdb.record(time_ms, name, labels, value, kind);
    }

    /// Records what one service answered for `/v1/state` and `/v1/health`
    /// (a `None` keeps the last known document). Every service recorded is
    /// judged by the per-service invariants of the following ticks, with
    /// its own documents, even before any arrived (then as an error).
    pub fn observe_service(
        &mut self,
        instance: &str,
        state: Option<serde_json::Value>,
        health: Option<serde_json::Value>,
    ) {
        let documents = self.documents.entry(instance.to_owned()).or_default();
        if state.is_some() {
            documents.state = state;
        }
        if health.is_some() {
            documents.health = health;
        }
    }

    /// Since when each limit has rejected each value, as the ticks saw it.
    pub fn rejecting_since(&self) -> &crate::observe::evidence::RejectingSince {
        &self.rejecting
    }

    /// Each service's last `/v1/state`, by instance.
    pub fn service_documents(&self) -> impl Iterator<Item = (&str, Option<&serde_json::Value>)> {
        self.documents
            .iter()
            .map(|(instance, documents)| (instance.as_str(), documents.state.as_ref()))
    }

    /// One step: ingest the observation, evaluate everything at its time.
    pub fn tick(&mut self, observation: &Observation) -> TickOutput {
        let now = observation.time_ms;
        let mut output = TickOutput {
            time_ms: now,
            slos: Vec::new(),
            invariants: Vec::new(),
            anomalies: Vec::new(),
            violations: Vec::new(),
            events: Vec::new(),
            errors: Vec::new(),
        };
        if let Some(text) = &observation.metrics_text {
            match exposition::parse(text) {
                Ok(parsed) => self.tsdb.ingest(now, &observation.instance, &parsed),
                Err(error) => output.errors.push(error.to_string()),
            }
        }
        if observation.state_json.is_some() || observation.health_json.is_some() {
            self.observe_service(
                &observation.instance,
                observation.state_json.clone(),
                observation.health_json.clone(),
            );
        }

        self.rejecting.observe(
            self.documents
                .values()
                .filter_map(|documents| documents.state.as_ref()),
            now,
        );
        let (slo_reports, slo_alerts) = self.slos.tick(&self.tsdb, now);
        for alert in &slo_alerts {
            output.violations.push(self.slo_violation(alert));
        }

        let (invariant_reports, breaches) = if self.objectives.invariants.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let services = self.inputs(now, &slo_reports);
            self.invariants.tick_services(&services, now)
        };
        // One series per invariant: 1 when it held for every service judged
        // this tick (so a ticket's fix criterion means "holds everywhere").
        let mut holds_now: BTreeMap<&str, bool> = BTreeMap::new();
        for report in &invariant_reports {
            if let Some(holds) = match report.state {
                crate::observe::invariants::InvariantState::Error { .. } => None,
                _ => report.last_result,
            } {
                let all = holds_now.entry(report.name.as_str()).or_insert(true);
                *all = *all && holds;
            }
        }
        for (name, holds) in holds_now {
            self.tsdb.record(
                now,
                INVARIANT_HOLDS_SERIES,
                vec![("invariant".into(), name.to_owned())],
                if holds { 1.0 } else { 0.0 },
                SeriesKind::Gauge,
            );
        }
        for breach in breaches {
            match &breach.on_violation {
                OnViolation::Event => output.events.push(HarnessEvent {
                    time_ms: now,
                    kind: "invariant.breached".into(),
                    name: breach.name.clone(),
                    detail: serde_json::to_value(&breach).unwrap_or_default(),
                }),
                _ => output.violations.push(invariant_violation(&breach)),
            }
        }

        self.tick_anomalies(now, &mut output);
        self.name_causes(now, &mut output.violations);
        // Causes before symptoms: an invariant says what broke, a burn or
        // an anomaly what it did, so the invariant's ticket is filed first
        // and owns the incident they share (`incidents::owner_for` picks
        // the oldest).
        output
            .violations
            .sort_by_key(|violation| filing_rank(violation.draft.source));

        output.slos = slo_reports;
        output.invariants = invariant_reports;
        output
    }

    /// Writes each new violation's causes into its context
    /// (`context.causes`, [`crate::tickets::incidents::violation_causes`]) from the
    /// evidence of the services' last states: what groups it with the
    /// tickets of the same incident.
    fn name_causes(&self, now: u64, violations: &mut [Violation]) {
        if violations.iter().all(|violation| violation.reminder) {
            return;
        }
        let states: Vec<(String, floodgate_contract::state::State)> = self
            .documents
            .iter()
            .filter_map(|(instance, documents)| {
                let state = serde_json::from_value(documents.state.clone()?).ok()?;
                Some((instance.clone(), state))
            })
            .collect();
        let evidence = (!states.is_empty()).then(|| {
            let mut evidence = crate::observe::evidence::build(&states, &[], now);
            self.rejecting.mark(&mut evidence);
            evidence
        });
        for violation in violations
            .iter_mut()
            .filter(|violation| !violation.reminder)
        {
            let total = violation.draft.context["slo"].as_str().and_then(|name| {
                self.objectives
                    .slos
                    .iter()
                    .find(|slo| slo.name == name)
                    .and_then(|slo| match &slo.sli {
                        crate::observe::objectives::Sli::Ratio { total, .. } => Some(total),
                        _ => None,
                    })
            });
            let causes = crate::tickets::incidents::violation_causes(
                &violation.draft,
                evidence.as_ref(),
                total,
            );
            if !causes.is_empty() {
                if let serde_json::Value::Object(map) = &mut violation.draft.context {
                    map.insert("causes".into(), serde_json::json!(causes));
                }
            }
        }
    }

    /// Gives the harness the notices not yet expired (the caller reads
    /// them from the store each tick; at most
    /// [`crate::tickets::notices::MAX_LIVE_NOTICES`]). A notice no longer given, or
    /// no longer active at a tick, ends its coverage there. Answers the
    /// notices refused (matchers that do not compile: never, for notices
    /// the store accepted).
    pub fn set_notices(&mut self, notices: Vec<Notice>) -> Vec<String> {
        let mut errors = Vec::new();
        let mut next = BTreeMap::new();
        for notice in notices.into_iter().take(MAX_LIVE_NOTICES) {
            let compiled = match self.notices.remove(&notice.id) {
                // Matchers never change; expiry and counters may.
                Some(mut known) if known.notice.matchers == notice.matchers => {
                    known.notice = notice;
                    known
                }
                _ => match CompiledNotice::new(notice.clone()) {
                    Ok(compiled) => compiled,
                    Err(error) => {
                        errors.push(format!("notice {}: {error}", notice.id));
                        continue;
                    }
                },
            };
            next.insert(compiled.notice.id.clone(), compiled);
        }
        self.notices = next;
        errors
    }

    /// The notices the harness holds (as last given).
    pub fn notices(&self) -> impl Iterator<Item = &Notice> {
        self.notices.values().map(|compiled| &compiled.notice)
    }

    /// Ends the coverage of every notice that is no longer active: a
    /// detector whose episode a notice held back, and that is still out of
    /// its band (exceeding or anomalous), re-learns its reference from the
    /// values since that episode began, the new level ([`Detector::rebase`];
    /// fewer than `warmup` of them: it warms up again), so a new level that
    /// persists does not page at the window's end (ADR 0011).
    fn end_notices(&mut self, now: u64) {
        let ended: Vec<(String, usize)> = self
            .coverage
            .keys()
            .filter(|(id, _)| {
                self.notices
                    .get(id)
                    .is_none_or(|known| known.notice.state(now) != NoticeState::Active)
            })
            .cloned()
            .collect();
        for key in ended {
            let Some(coverage) = self.coverage.remove(&key) else {
                continue;
            };
            let (id, index) = key;
            let Some((_, detector)) = self.anomalies.get_mut(index) else {
                continue;
            };
            let settled = matches!(
                detector.state(),
                DetectorState::Normal | DetectorState::WarmingUp { .. }
            );
            if coverage.engaged && !settled {
                detector.rebase(coverage.episode_values);
            }
            if let Some(expectation) = self.expectations.get_mut(index) {
                if expectation.suppressed_by.as_deref() == Some(id.as_str()) {
                    expectation.suppressed_by = None;
                }
            }
        }
    }

    /// Every anomaly detector for this tick: score, record, and file (or,
    /// under an active notice that holds, record as expected).
    fn tick_anomalies(&mut self, now: u64, output: &mut TickOutput) {
        self.end_notices(now);
        for (index, (def, detector)) in self.anomalies.iter_mut().enumerate() {
            let value = match def.transform {
                Transform::Rate => self.tsdb.rate(&def.series, def.rate_window_ms, now),
                Transform::Value => self.tsdb.value_at(&def.series, now),
            };
            let Some(value) = value else {
                output.anomalies.push(AnomalyReport {
                    name: def.name.clone(),
                    series: def.series.to_string(),
                    value: None,
                    median: None,
                    score: None,
                    state: DetectorState::WarmingUp {
                        seen: 0,
                        needed: def.detector.warmup,
                    },
                    alarms: detector.alarms,
                });
                continue;
            };
            let expectation = &mut self.expectations[index];
            // The active notices matching this detector, in id order.
            let matched: Vec<&CompiledNotice> = self
                .notices
                .values()
                .filter(|known| {
                    known.notice.state(now) == NoticeState::Active
                        && known.matches(&expectation.signal)
                })
                .collect();
            let verdict = detector.observe(now, value);
            for known in &matched {
                let coverage = self
                    .coverage
                    .entry((known.notice.id.clone(), index))
                    .or_default();
                if coverage.engaged && value.is_finite() {
                    coverage.episode_values += 1;
                }
                // The level when the notice starts: the median of what the
                // detector knew before this value.
                if coverage.level.is_none() {
                    coverage.level = verdict.median;
                }
            }
            if value.is_finite() {
                self.tsdb.record(
                    now,
                    ANOMALY_VALUE_SERIES,
                    vec![("anomaly".into(), def.name.clone())],
                    value,
                    SeriesKind::Gauge,
                );
            }
            if let Some(score) = verdict.score {
                self.tsdb.record(
                    now,
                    ANOMALY_SCORE_SERIES,
                    vec![("anomaly".into(), def.name.clone())],
                    score.abs(),
                    SeriesKind::Gauge,
                );
            }
            let detail = || {
                serde_json::json!({
                    "series": def.series.to_string(),
                    "transform": def.transform,
                    "value": verdict.value,
                    "median": verdict.median,
                    "scale": verdict.scale,
                    "score": verdict.score,
                    "threshold": def.detector.threshold,
                })
            };
            let event = |kind: &str, detail: serde_json::Value| HarnessEvent {
                time_ms: now,
                kind: kind.into(),
                name: def.name.clone(),
                detail,
            };
            if !matches!(verdict.state, DetectorState::Anomalous { .. }) {
                expectation.suppressed_by = None;
                expectation.absorbed = false;
                if let Some(pending) = expectation.pending.take() {
                    // Over before its `sustain:`: a transient, no ticket.
                    let mut detail = pending.first;
                    detail["lasted_ms"] = now.saturating_sub(pending.since_ms).into();
                    detail["sustain_ms"] = def.sustain_ms.into();
                    output.events.push(event(ANOMALY_TRANSIENT, detail));
                }
            }
            // An alarm, or an episode a notice held back (or one waiting
            // for its `sustain:` past what a notice announced) that goes
            // on: is it still what a notice announced?
            let judged = verdict.alarm
                || expectation.suppressed_by.is_some()
                || expectation.pending.is_some();
            if judged && !matched.is_empty() {
                let covered: Vec<Covered<'_>> = matched
                    .iter()
                    .map(|known| Covered {
                        notice: &known.notice,
                        level: self
                            .coverage
                            .get(&(known.notice.id.clone(), index))
                            .and_then(|coverage| coverage.level),
                    })
                    .collect();
                match covered.iter().find(|item| item.holds(value)) {
                    Some(holder) => {
                        if verdict.alarm {
                            let mut detail = detail();
                            detail["notice"] = holder.notice.id.clone().into();
                            detail["expected"] = holder.describe();
                            output.events.push(event(ANOMALY_EXPECTED, detail));
                        }
                        // The notice holds this episode back: count its
                        // values from its first exceeding one (a new
                        // episode starts the count again).
                        if let Some(coverage) =
                            self.coverage.get_mut(&(holder.notice.id.clone(), index))
                        {
                            if verdict.alarm || !coverage.engaged {
                                coverage.engaged = true;
                                coverage.episode_values = match verdict.state {
                                    DetectorState::Anomalous { values, .. } => {
                                        usize::try_from(values).unwrap_or(usize::MAX)
                                    }
                                    _ => 1,
                                };
                            }
                        }
                        expectation.suppressed_by = Some(holder.notice.id.clone());
                        expectation.pending = None;
                    }
                    None => {
                        // Beyond what every matching notice announced: the
                        // ticket is filed, naming them (once due).
                        expectation.suppressed_by = None;
                        if let Some(reference) =
                            due(def, &verdict, now, &mut expectation.pending, detail)
                        {
                            let ids: Vec<String> =
                                covered.iter().map(|item| item.notice.id.clone()).collect();
                            let beyond = beyond_text(&covered, value);
                            let mut detail = detail();
                            detail["notices"] = ids.clone().into();
                            detail["beyond"] = beyond.clone().into();
                            output
                                .events
                                .push(event(ANOMALY_BEYOND_NOTICE, detail.clone()));
                            let expected = serde_json::json!({
                                "notices": covered.iter().map(Covered::describe).collect::<Vec<_>>(),
                                "beyond": beyond,
                            });
                            match def.on_violation {
                                OnViolation::Event => {
                                    output.events.push(event("anomaly.detected", detail))
                                }
                                _ => {
                                    let mut violation = anomaly_violation(def, detail, reference);
                                    violation.draft.objective.description.push_str(&format!(
                                        "; it went beyond what {} announced",
                                        ids.join(", ")
                                    ));
                                    violation.draft.context["expected_change"] = expected;
                                    violation.draft.context =
                                        bound_context(violation.draft.context.take());
                                    output.violations.push(violation);
                                }
                            }
                        }
                    }
                }
            } else if verdict.alarm || expectation.absorbed || expectation.pending.is_some() {
                if rise_within_capacity(def, &verdict) == Some(true) {
                    if verdict.alarm {
                        let mut detail = detail();
                        detail["capacity"] = def.capacity.into();
                        output.events.push(event(ANOMALY_WITHIN_CAPACITY, detail));
                    }
                    expectation.absorbed = true;
                } else if let Some(reference) =
                    due(def, &verdict, now, &mut expectation.pending, detail)
                {
                    // The alarm, the first value of an absorbed episode
                    // past the capacity, or an episode that lasted its
                    // `sustain:`.
                    expectation.absorbed = false;
                    match def.on_violation {
                        OnViolation::Event => {
                            output.events.push(event("anomaly.detected", detail()))
                        }
                        _ => output
                            .violations
                            .push(anomaly_violation(def, detail(), reference)),
                    }
                } else {
                    expectation.absorbed = false;
                }
            }
            output.anomalies.push(AnomalyReport {
                name: def.name.clone(),
                series: def.series.to_string(),
                value: Some(value),
                median: verdict.median,
                score: verdict.score,
                state: verdict.state,
                alarms: detector.alarms,
            });
        }
    }

    /// What the invariants see, per service (state and health its own,
    /// the rest shared); one view without documents when no service was
    /// recorded.
    fn inputs(&self, now: u64, slo_reports: &[SloReport]) -> Vec<(String, Inputs)> {
        let shared = self.shared_inputs(now, slo_reports);
        if self.documents.is_empty() {
            return vec![(String::new(), shared)];
        }
        self.documents
            .iter()
            .map(|(instance, documents)| {
                let mut inputs = shared.clone();
                inputs.state.clone_from(&documents.state);
                inputs.health.clone_from(&documents.health);
                (instance.clone(), inputs)
            })
            .collect()
    }

    fn shared_inputs(&self, now: u64, slo_reports: &[SloReport]) -> Inputs {
        let metrics = self.tsdb.latest_by_name();
        let rates = metrics
            .keys()
            .filter(|name| name.ends_with("_total"))
            .filter_map(|name| {
                let rate = self.tsdb.rate(
                    &crate::observe::selector::Selector::metric(name),
                    INVARIANT_RATE_WINDOW_MS,
                    now,
                )?;
                Some((name.clone(), rate))
            })
            .collect();
        Inputs {
            state: None,
            health: None,
            metrics,
            rates,
            slos: slo_reports
                .iter()
                .map(|report| (report.name.clone(), report.numbers()))
                .collect(),
        }
    }

    fn slo_violation(&self, alert: &SloAlert) -> Violation {
        let report = &alert.report;
        let firing: Vec<&crate::observe::slo::RuleState> =
            report.rules.iter().filter(|rule| rule.firing).collect();
        let loudest = firing.first();
        let target = self
            .objectives
            .slos
            .iter()
            .find(|slo| slo.name == alert.slo)
            .map_or(report.target, |slo| slo.target);
        let burn = loudest
            .and_then(|rule| rule.short_burn)
            .map_or_else(|| "?".to_owned(), trim_float);
        let description = format!(
            "SLO {} is burning its error budget at {burn}x ({}){}",
            alert.slo,
            loudest.map_or_else(String::new, |rule| rule.name.clone()),
            report
                .error_budget_remaining
                .map_or_else(String::new, |left| format!(
                    "; {}% of the budget left",
                    trim_float(left * 100.0)
                ))
        );
        // A fix is verified by the SLO holding its target for an hour,
        // whatever the alert's severity (ADR 0026): severity says how soon
        // a human must look, not how long a fix takes to show. A relapse
        // after that hour fires the burn alert again and reopens the
        // ticket (the reopen window), so verification need not block the
        // ticket for the six hours a slow burn's window spans.
        let sustain = SLO_FIX_SUSTAIN_MS;
        let context = bound_context(serde_json::json!({
            "slo": alert.slo,
            "severity": alert.severity,
            "since_ms": alert.since_ms,
            "report": report,
        }));
        Violation {
            reminder: alert.reminder,
            draft: NewTicket {
                kind: TicketType::Incident,
                objective: Objective { description },
                acceptance_criteria: vec![Criterion {
                    metric: alert.slo.clone(),
                    condition: Condition::Compare {
                        op: crate::tickets::criteria::CompareOp::GreaterOrEqual,
                        threshold: target,
                        written: crate::tickets::criteria::Written::Percent,
                    },
                    duration: Some(Sustain(sustain)),
                    baseline: None,
                    reference: None,
                }],
                constraints: Vec::new(),
                context,
                source: Source::Slo,
                priority: match alert.severity {
                    Severity::Page => Priority::Critical,
                    Severity::Ticket => Priority::Medium,
                },
                fingerprint: format!("slo:{}", alert.slo),
            },
        }
    }

    /// Validates a draft from outside (a human, an API) against this
    /// harness's metrics and captures its `no regression` baselines.
    pub fn prepare(&self, draft: &mut NewTicket, now_ms: u64) -> Result<(), FieldError> {
        draft.validate(&self.registry)?;
        capture_baselines(
            &mut draft.acceptance_criteria,
            &self.registry,
            &self.tsdb,
            now_ms,
        );
        Ok(())
    }

    /// Evaluates a ticket's acceptance criteria now.
    pub fn evaluate_criteria(&self, ticket: &Ticket, now_ms: u64) -> Vec<CriterionResult> {
        self.evaluate_criteria_over(ticket, now_ms, crate::tickets::criteria::CRITERIA_STEP_MS)
    }

    /// As [`Harness::evaluate_criteria`], judging criteria without a
    /// duration over the last `window_ms` ([`crate::tickets::criteria::Criterion::evaluate_over`]).
    pub fn evaluate_criteria_over(
        &self,
        ticket: &Ticket,
        now_ms: u64,
        window_ms: u64,
    ) -> Vec<CriterionResult> {
        ticket
            .acceptance_criteria
            .iter()
            .map(|criterion| criterion.evaluate_over(&self.registry, &self.tsdb, now_ms, window_ms))
            .collect()
    }
}

fn invariant_violation(breach: &Breach) -> Violation {
    let mut description = if breach.instance.is_empty() {
        format!(
            "Invariant {} is breached: {} is false",
            breach.name, breach.condition
        )
    } else {
        format!(
            "Invariant {} is breached on {}: {} is false",
            breach.name, breach.instance, breach.condition
        )
    };
    if !breach.description.is_empty() {
        description.push_str(&format!(" ({})", breach.description));
    }
    let mut context = serde_json::json!({
        "invariant": breach.name,
        "condition": breach.condition,
        "instance": breach.instance,
        "since_ms": breach.since_ms,
        "evidence": breach.evidence,
    });
    let mut constraints = Vec::new();
    if let OnViolation::AutoRemediate { runbook } = &breach.on_violation {
        let runbook = if runbook.is_empty() {
            breach.name.as_str()
        } else {
            runbook.as_str()
        };
        context["auto_remediate"] = serde_json::Value::String(runbook.to_owned());
        constraints.push(format!("remediate with runbook {runbook}"));
    }
    Violation {
        reminder: breach.reminder,
        draft: NewTicket {
            kind: TicketType::Incident,
            objective: Objective { description },
            acceptance_criteria: vec![Criterion {
                metric: breach.name.clone(),
                condition: Condition::Compare {
                    op: crate::tickets::criteria::CompareOp::GreaterOrEqual,
                    threshold: 1.0,
                    written: crate::tickets::criteria::Written::Percent,
                },
                duration: Some(Sustain(FIX_SUSTAIN_MS)),
                baseline: None,
                reference: None,
            }],
            constraints,
            context: bound_context(context),
            source: Source::Invariant,
            priority: Priority::High,
            // Per service: one ticket per (invariant, instance).
            fingerprint: if breach.instance.is_empty() {
                format!("invariant:{}", breach.name)
            } else {
                format!("invariant:{}:{}", breach.name, breach.instance)
            },
        },
    }
}

/// Whether this value files its episode's ticket now: it is past the
/// declared capacity, or the episode lasted the anomaly's `sustain:`. The
/// ticket's reference then is the level frozen when the episode began.
/// Until then the episode waits in `pending` (`None` returned).
fn due(
    def: &AnomalyDef,
    verdict: &crate::observe::anomaly::Verdict,
    now: u64,
    pending: &mut Option<Pending>,
    detail: impl Fn() -> serde_json::Value,
) -> Option<Option<Reference>> {
    let since_ms = match verdict.state {
        DetectorState::Anomalous { since_ms, .. } => since_ms,
        _ => now,
    };
    if rise_within_capacity(def, verdict) == Some(false)
        || now.saturating_sub(since_ms) >= def.sustain_ms
    {
        return Some(match pending.take() {
            Some(pending) => pending.reference,
            None => reference_of(verdict, def),
        });
    }
    if pending.is_none() {
        *pending = Some(Pending {
            since_ms,
            reference: reference_of(verdict, def),
            first: detail(),
        });
    }
    None
}

/// Where a rise stands against the anomaly's declared capacity: `Some(true)`
/// at or under it (absorbed: it harms nothing), `Some(false)` past it
/// (harm known at once). `None` without a capacity, or for a drop (a
/// value not above the level before, the detector's median).
fn rise_within_capacity(
    def: &AnomalyDef,
    verdict: &crate::observe::anomaly::Verdict,
) -> Option<bool> {
    let capacity = def.capacity?;
    let rise = verdict.value.is_finite() && verdict.value > verdict.median?;
    rise.then_some(verdict.value <= capacity)
}

/// The level before an anomaly, as the detector knew it when it alarmed.
fn reference_of(verdict: &crate::observe::anomaly::Verdict, def: &AnomalyDef) -> Option<Reference> {
    Some(Reference {
        median: verdict.median?,
        scale: verdict.scale?,
        direction: def.detector.direction,
        capacity: def.capacity,
    })
}

/// An anomaly's ticket. Its criterion is judged against `reference`, the
/// level before the anomaly frozen now (ADR 0011): the series must come
/// back within `median ± threshold × scale` of it for [`FIX_SUSTAIN_MS`],
/// whatever the detector learns meanwhile. Without a reference (no
/// median yet: cannot happen on an alarm) the detector's own score is
/// judged instead.
fn anomaly_violation(
    def: &AnomalyDef,
    detail: serde_json::Value,
    reference: Option<Reference>,
) -> Violation {
    let condition = match reference {
        Some(_) => Condition::WithinReference {
            threshold: def.detector.threshold,
        },
        None => Condition::Compare {
            op: crate::tickets::criteria::CompareOp::Less,
            threshold: def.detector.threshold,
            written: crate::tickets::criteria::Written::Bare,
        },
    };
    Violation {
        reminder: false,
        draft: NewTicket {
            kind: TicketType::Investigation,
            objective: Objective {
                description: format!(
                    "Anomaly {}: {} left its usual band (robust score beyond {}); find out whether it matters",
                    def.name,
                    def.series,
                    trim_float(def.detector.threshold)
                ),
            },
            acceptance_criteria: vec![Criterion {
                metric: def.name.clone(),
                condition,
                duration: Some(Sustain(FIX_SUSTAIN_MS)),
                baseline: None,
                reference,
            }],
            constraints: Vec::new(),
            context: bound_context({
                let mut context = serde_json::json!({ "anomaly": def.name, "detail": detail });
                if let Some(capacity) = def.capacity {
                    context["capacity"] = serde_json::json!(capacity);
                }
                context
            }),
            source: Source::Anomaly,
            priority: Priority::Low,
            fingerprint: format!("anomaly:{}", def.name),
        },
    }
}

/// The order a tick files its violations in: invariants (what broke),
/// then burn-rate alerts and anomalies (what it did), then the rest.
fn filing_rank(source: Source) -> u8 {
    match source {
        Source::Invariant => 0,
        Source::Slo => 1,
        Source::Anomaly => 2,
        Source::Human | Source::Alertmanager | Source::Reflection => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anomaly_signal_carries_its_name_metric_and_pinned_labels() {
        let objectives = crate::observe::objectives::parse(
            "a.yaml",
            "anomalies:\n  - name: acme_rate\n    series: floodgate_requests_total{instance=\"edge-1\",tenant=\"acme\",code!=\"error\",limit=~\"per_.*\"}\n",
        )
        .expect("objectives");
        let signal = anomaly_signal(&objectives.anomalies[0]);
        assert_eq!(
            signal.labels(),
            [
                (LabelName::Service, "edge-1".to_owned()),
                (LabelName::Tenant, "acme".to_owned()),
                (LabelName::Metric, "floodgate_requests_total".to_owned()),
                (LabelName::Anomaly, "acme_rate".to_owned()),
            ]
        );
    }
}
