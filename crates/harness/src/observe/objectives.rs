//! Objectives files: what the harness watches.
//!
//! One file may hold several YAML documents, each either
//!
//! - the seed's compact form:
//!   ```yaml
//!   slos:
//!     - name: availability
//!       target: 99.9%
//!       window: 30d
//!       burn_rate_alert: 14.4x
//!       sli:
//!         ratio:
//!           good: floodgate_requests_total{code!="error"}
//!           total: floodgate_requests_total
//!   invariants:
//!     - name: capacity_headroom
//!       condition: capacity.available_ratio > 0.2
//!       on_violation: ticket
//!   anomalies:
//!     - name: request_rate
//!       series: floodgate_requests_total
//!   ```
//!
//!   (`sli` may be left out of an SLO named `availability` only: it then
//!   means [`AVAILABILITY_GOOD`] over [`AVAILABILITY_TOTAL`], so the seed's
//!   example, which names no SLI, loads as written.)
//! - or an OpenSLO v1 document (`apiVersion: openslo/v1`) of kind `SLO`
//!   (with an inline `indicator` or an `indicatorRef` to a kind `SLI`
//!   document), `SLI`, or `Service`/`DataSource` (accepted, not used).
//!
//! Errors name the file, the line and the field:
//! `objectives.yaml: line 7: slos[0].target: "99.9" is not a percentage (expected e.g. 99.9%)`.

use crate::observe::anomaly::{DetectorConfig, Direction};
use crate::observe::selector::Selector;
use crate::quantity::{
    format_duration_ms, parse_seconds, trim_float, Factor, Percent, Span, DAY_MS, HOUR_MS,
    MINUTE_MS,
};
use serde::de::{self, Deserializer, IgnoredAny};
use serde::{Deserialize, Serialize};

/// The most objectives (SLOs + invariants + anomalies) one harness
/// evaluates: each is evaluated every tick, so this bounds a tick's work.
pub const MAX_OBJECTIVES: usize = 256;
/// The most burn-rate rules one SLO may have.
pub const MAX_RULES_PER_SLO: usize = 8;
/// The longest objectives file accepted.
pub const MAX_OBJECTIVES_BYTES: usize = 1024 * 1024;
/// Default minimum events in the short window before a burn-rate rule may
/// fire: below it a handful of failures is noise, not a burn (100 events in
/// 5 minutes is one request every 3 seconds).
pub const DEFAULT_MIN_EVENTS: u64 = 100;

/// Everything one or more objectives files define.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Objectives {
    pub slos: Vec<Slo>,
    pub invariants: Vec<InvariantDef>,
    pub anomalies: Vec<AnomalyDef>,
}

/// A service level objective over a metric SLI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slo {
    pub name: String,
    pub description: String,
    pub service: String,
    /// The objective as a fraction (0.999 for 99.9%).
    pub target: f64,
    pub window_ms: u64,
    pub sli: Sli,
    /// The multi-window multi-burn-rate rules, fastest first.
    pub rules: Vec<BurnRule>,
    /// Minimum events in a rule's short window before it may fire.
    pub min_events: u64,
}

/// How good and total events are counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sli {
    /// good / total (or 1 − bad / total) over counters.
    Ratio {
        #[serde(skip_serializing_if = "Option::is_none")]
        good: Option<Selector>,
        #[serde(skip_serializing_if = "Option::is_none")]
        bad: Option<Selector>,
        total: Selector,
    },
    /// Observations at or below a histogram bucket bound / all observations.
    Latency {
        /// The bucket series selected at the threshold (`…_bucket{le="0.001"}`).
        good: Selector,
        /// The `…_count` series.
        total: Selector,
        threshold_seconds: f64,
    },
}

/// How loud an alert is. Both file tickets ("alerts don't page humans;
/// alerts create tickets"); `page` tickets get a higher priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Page,
    Ticket,
}

/// One row of the multi-window multi-burn-rate table: fires when the burn
/// rate over both windows is at least `burn_rate`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnRule {
    pub severity: Severity,
    #[serde(
        rename = "burn_rate",
        serialize_with = "ser_factor",
        deserialize_with = "de_factor"
    )]
    pub burn_rate: f64,
    #[serde(
        rename = "long",
        serialize_with = "ser_span",
        deserialize_with = "de_span"
    )]
    pub long_ms: u64,
    #[serde(
        rename = "short",
        serialize_with = "ser_span",
        deserialize_with = "de_span"
    )]
    pub short_ms: u64,
}

impl BurnRule {
    /// A stable name: `page 14.4x 1h/5m`.
    pub fn name(&self) -> String {
        let severity = match self.severity {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        };
        format!(
            "{severity} {}x {}/{}",
            trim_float(self.burn_rate),
            format_duration_ms(self.long_ms),
            format_duration_ms(self.short_ms)
        )
    }
}

fn ser_factor<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    Factor(*value).serialize(serializer)
}

fn de_factor<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Factor::deserialize(deserializer).map(|factor| factor.0)
}

fn ser_span<S: serde::Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    Span(*value).serialize(serializer)
}

fn de_span<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Span::deserialize(deserializer).map(Span::ms)
}

/// The Google SRE workbook's table for a 30-day SLO: page 14.4× over 1h and
/// 5m, page 6× over 6h and 30m, ticket 3× over 1d and 2h, ticket 1× over 3d
/// and 6h. Burn rates are relative to the SLO's own window (1× exhausts the
/// budget exactly at the window's end), so the table applies unchanged to
/// other windows; override it with `alerts:` where another suits better.
pub fn default_rules() -> Vec<BurnRule> {
    vec![
        BurnRule {
            severity: Severity::Page,
            burn_rate: 14.4,
            long_ms: HOUR_MS,
            short_ms: 5 * MINUTE_MS,
        },
        BurnRule {
            severity: Severity::Page,
            burn_rate: 6.0,
            long_ms: 6 * HOUR_MS,
            short_ms: 30 * MINUTE_MS,
        },
        BurnRule {
            severity: Severity::Ticket,
            burn_rate: 3.0,
            long_ms: DAY_MS,
            short_ms: 2 * HOUR_MS,
        },
        BurnRule {
            severity: Severity::Ticket,
            burn_rate: 1.0,
            long_ms: 3 * DAY_MS,
            short_ms: 6 * HOUR_MS,
        },
    ]
}

/// What a breached invariant does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnViolation {
    /// File a ticket (source `invariant`).
    Ticket,
    /// File a ticket naming the runbook an agent should run.
    AutoRemediate { runbook: String },
    /// Only report it (an event in the tick's output), no ticket.
    Event,
}

impl<'de> Deserialize<'de> for OnViolation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Map(std::collections::BTreeMap<String, String>),
        }
        let expected = "expected ticket, event, auto_remediate or {auto_remediate: RUNBOOK}";
        match Raw::deserialize(deserializer).map_err(|_| de::Error::custom(expected))? {
            Raw::Word(word) => match word.as_str() {
                "ticket" => Ok(OnViolation::Ticket),
                "event" => Ok(OnViolation::Event),
                "auto_remediate" => Ok(OnViolation::AutoRemediate {
                    runbook: String::new(),
                }),
                other => Err(de::Error::custom(format!(
                    "{other:?} is not an action ({expected})"
                ))),
            },
            Raw::Map(map) => match (map.len(), map.get("auto_remediate")) {
                (1, Some(runbook)) if !runbook.trim().is_empty() => {
                    Ok(OnViolation::AutoRemediate {
                        runbook: runbook.trim().to_owned(),
                    })
                }
                _ => Err(de::Error::custom(expected)),
            },
        }
    }
}

/// An invariant: a CEL condition that must hold at every tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvariantDef {
    pub name: String,
    pub description: String,
    /// The CEL expression (after percent-literal sugar: `20%` → `0.2`).
    pub condition: String,
    pub on_violation: OnViolation,
    /// Consecutive failing ticks before it counts as breached (debounce).
    pub hold_ticks: u32,
}

/// How an anomaly's series is read each tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Per-second rate over `rate_window` (counters).
    Rate,
    /// The value as scraped (gauges).
    Value,
}

/// The longest `sustain:` an anomaly may declare.
pub const MAX_SUSTAIN_MS: u64 = DAY_MS;

/// An anomaly detector on one series (see [`crate::observe::anomaly`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyDef {
    pub name: String,
    pub series: Selector,
    pub transform: Transform,
    pub rate_window_ms: u64,
    pub detector: DetectorConfig,
    /// The most the series may read without harm, in its transformed unit
    /// (per second for a rate): e.g. the load the protected service is
    /// planned for. Optional; an anomaly ticket carries it as
    /// `context.capacity`, so an agent can tell a rise that harms from
    /// one the plan absorbs (ADR 0022).
    pub capacity: Option<f64>,
    /// How long an episode must last before it files (`sustain:`, 0 by
    /// default: at its alarm), unless its value is past `capacity`: a
    /// burst that harms nothing known and comes and goes is not an
    /// incident.
    pub sustain_ms: u64,
    /// `Ticket` or `Event` (auto-remediation is for invariants).
    pub on_violation: OnViolation,
}

// ---------------------------------------------------------------------------
// errors

/// An error in an input file (objectives, ticket, policy, thresholds):
/// file, line (when known), field path and problem, displayed as
/// `file: line N: path: problem` (the contract's one YAML error).
pub use floodgate_contract::yaml::FileError;

/// An objectives file error.
pub type ObjectivesError = FileError;

// ---------------------------------------------------------------------------
// the compact form

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompactDoc {
    #[serde(default)]
    slos: Vec<CompactSlo>,
    #[serde(default)]
    invariants: Vec<CompactInvariant>,
    #[serde(default)]
    anomalies: Vec<CompactAnomaly>,
    /// Defaults for every SLO of this document.
    #[serde(default)]
    alerting: Option<CompactAlerting>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompactAlerting {
    #[serde(default)]
    min_events: Option<u64>,
    #[serde(default)]
    rules: Option<Vec<BurnRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompactSlo {
    name: Name,
    #[serde(default)]
    description: String,
    #[serde(default)]
    service: String,
    target: Percent,
    window: Span,
    /// The fastest page rule's burn rate; the rest of the table is kept.
    #[serde(default)]
    burn_rate_alert: Option<Factor>,
    /// The whole table (replaces the default).
    #[serde(default)]
    alerts: Option<Vec<BurnRule>>,
    #[serde(default)]
    min_events: Option<u64>,
    /// Required, except for an SLO named `availability`: the seed's
    /// example leaves it out, and it means the service's availability
    /// ([`AVAILABILITY_GOOD`] over [`AVAILABILITY_TOTAL`]).
    #[serde(default)]
    sli: Option<CompactSli>,
}

/// The SLI an SLO named `availability` has when it names none: decisions
/// answered without an error, over every decision.
pub const AVAILABILITY_GOOD: &str = r#"floodgate_requests_total{code!="error"}"#;
/// See [`AVAILABILITY_GOOD`].
pub const AVAILABILITY_TOTAL: &str = "floodgate_requests_total";

/// Exactly one of `ratio` and `latency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompactSli {
    #[serde(default)]
    ratio: Option<RatioSpec>,
    #[serde(default)]
    latency: Option<LatencySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatioSpec {
    #[serde(default)]
    good: Option<Selector>,
    #[serde(default)]
    bad: Option<Selector>,
    total: Selector,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencySpec {
    /// The histogram, by its base name, with optional matchers
    /// (`floodgate_request_duration_seconds{api="grpc"}`).
    histogram: Selector,
    /// The latency bound: `1ms`, `0.001`; must be one of the histogram's
    /// bucket bounds.
    threshold: Seconds,
}

/// A latency written `1ms`, `250us` or a bare number of seconds.
#[derive(Debug, Clone, Copy)]
struct Seconds(f64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::quantity::parse_scalar(deserializer, "a latency such as 1ms", |text| {
            parse_seconds(text).map(Seconds)
        })
    }
}

/// An objective's name: a short identifier (it becomes part of ticket
/// fingerprints, metric names in criteria and CEL keys).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name(String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::quantity::parse_scalar(deserializer, "a name", |text| {
            let valid = !text.is_empty()
                && text.len() <= 64
                && text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(format!(
                "{text:?} is not a name (expected letters, digits, _ or -, starting with a letter, at most 64)"
            ));
            }
            Ok(Name(text.to_owned()))
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompactInvariant {
    name: Name,
    #[serde(default)]
    description: String,
    condition: Condition,
    #[serde(default = "default_on_violation")]
    on_violation: OnViolation,
    /// Consecutive failing ticks before a breach counts.
    #[serde(default = "one", rename = "for")]
    hold_ticks: u32,
}

fn default_on_violation() -> OnViolation {
    OnViolation::Ticket
}

fn one() -> u32 {
    1
}

/// A CEL condition, checked for syntax as it is read (so the error has its
/// line).
#[derive(Debug, Clone)]
struct Condition(String);

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::quantity::parse_scalar(deserializer, "a CEL expression", |text| {
            crate::observe::condition::compile(text)?;
            Ok(Condition(crate::observe::condition::desugar_percent(text)))
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompactAnomaly {
    name: Name,
    series: Selector,
    #[serde(default)]
    transform: Option<Transform>,
    #[serde(default)]
    rate_window: Option<Span>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    history: Option<usize>,
    #[serde(default)]
    warmup: Option<usize>,
    #[serde(default)]
    consecutive: Option<u32>,
    #[serde(default)]
    direction: Option<Direction>,
    #[serde(default)]
    min_relative_scale: Option<f64>,
    #[serde(default)]
    capacity: Option<f64>,
    #[serde(default)]
    sustain: Option<Span>,
    #[serde(default = "default_on_violation")]
    on_violation: OnViolation,
}

// ---------------------------------------------------------------------------
// OpenSLO v1

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OsloMetadata {
    name: Name,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OsloSloDoc {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    metadata: OsloMetadata,
    spec: OsloSloSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OsloSloSpec {
    #[serde(default)]
    description: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    indicator: Option<OsloInlineSli>,
    #[serde(default)]
    indicator_ref: Option<String>,
    time_window: Vec<OsloTimeWindow>,
    budgeting_method: BudgetingMethod,
    objectives: Vec<OsloObjective>,
}

#[derive(Debug, Deserialize)]
enum BudgetingMethod {
    Occurrences,
    Timeslices,
    RatioTimeslices,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OsloInlineSli {
    metadata: OsloMetadata,
    spec: OsloSliSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OsloSliDoc {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    metadata: OsloMetadata,
    spec: OsloSliSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OsloSliSpec {
    #[serde(default)]
    ratio_metric: Option<OsloRatio>,
    #[serde(default)]
    threshold_metric: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OsloRatio {
    #[serde(default)]
    counter: Option<bool>,
    #[serde(default)]
    good: Option<OsloMetric>,
    #[serde(default)]
    bad: Option<OsloMetric>,
    total: OsloMetric,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OsloMetric {
    metric_source: OsloMetricSource,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OsloMetricSource {
    #[serde(default, rename = "type")]
    source_type: Option<String>,
    spec: OsloQuery,
}

#[derive(Debug, Deserialize)]
struct OsloQuery {
    query: Selector,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OsloTimeWindow {
    duration: Span,
    #[serde(default = "yes")]
    is_rolling: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OsloObjective {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    target: Option<f64>,
    #[serde(default)]
    target_percent: Option<f64>,
}

// ---------------------------------------------------------------------------
// loading

/// Where in the file each document starts and ends (1-based lines,
/// inclusive), for errors found after parsing.
fn document_lines(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 1;
    let mut last = 0;
    for (index, line) in text.lines().enumerate() {
        last = index + 1;
        if line == "---" || line.starts_with("--- ") {
            if index + 1 > start {
                out.push((start, index));
            }
            start = index + 2;
        }
    }
    if last >= start {
        out.push((start, last));
    }
    out
}

/// The first line in `range` holding `needle` (after `from`).
fn find_line(text: &str, range: (usize, usize), needle: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line))
        .filter(|(number, _)| *number >= range.0 && *number <= range.1)
        .find(|(_, line)| line.contains(needle))
        .map(|(number, _)| number)
}

struct Loader<'a> {
    file: &'a str,
    text: &'a str,
    objectives: Objectives,
    /// OpenSLO SLI documents by name, for `indicatorRef`.
    slis: Vec<(String, OsloSliSpec, usize)>,
    /// SLOs waiting for an `indicatorRef`: (slo doc, document position,
    /// path prefix).
    pending: Vec<(OsloSloDoc, usize, String)>,
    documents: Vec<(usize, usize)>,
}

/// Parses one objectives file.
pub fn parse(file: &str, text: &str) -> Result<Objectives, ObjectivesError> {
    let mut objectives = Objectives::default();
    parse_into(&mut objectives, file, text)?;
    Ok(objectives)
}

/// Parses several files into one set of objectives (names must be unique
/// across all of them).
pub fn parse_files(files: &[(String, String)]) -> Result<Objectives, ObjectivesError> {
    let mut objectives = Objectives::default();
    for (file, text) in files {
        parse_into(&mut objectives, file, text)?;
    }
    Ok(objectives)
}

fn parse_into(objectives: &mut Objectives, file: &str, text: &str) -> Result<(), ObjectivesError> {
    floodgate_contract::yaml::gate(file, text, MAX_OBJECTIVES_BYTES)?;
    let mut loader = Loader {
        file,
        text,
        objectives: std::mem::take(objectives),
        slis: Vec::new(),
        pending: Vec::new(),
        documents: document_lines(text),
    };
    let result = loader.run();
    *objectives = loader.objectives;
    result
}

impl Loader<'_> {
    fn error(
        &self,
        line: Option<usize>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> ObjectivesError {
        ObjectivesError {
            file: self.file.to_owned(),
            line,
            path: path.into(),
            message: message.into(),
        }
    }

    fn serde_error(
        &self,
        prefix: &str,
        error: &serde_path_to_error::Error<serde_norway::Error>,
    ) -> ObjectivesError {
        FileError::deserializing(self.file, prefix, error)
    }

    fn range(&self, document: usize) -> (usize, usize) {
        self.documents
            .get(document)
            .copied()
            .unwrap_or((1, usize::MAX))
    }

    fn run(&mut self) -> Result<(), ObjectivesError> {
        // Pass 1: syntax, and what each document is.
        let mut kinds = Vec::new();
        for document in serde_norway::Deserializer::from_str(self.text) {
            match <Option<Probe>>::deserialize(document) {
                Ok(probe) => kinds.push(probe),
                Err(error) => {
                    let line = error.location().map(|location| location.line());
                    let mut message = error.to_string();
                    if let Some(location) = error.location() {
                        let at =
                            format!(" at line {} column {}", location.line(), location.column());
                        message = message.replace(&at, "");
                    }
                    return Err(self.error(line, "", message));
                }
            }
        }
        let several = kinds.iter().filter(|kind| kind.is_some()).count() > 1;
        // Pass 2: each document with its own shape.
        let mut index = 0usize;
        for (position, document) in serde_norway::Deserializer::from_str(self.text).enumerate() {
            let Some(Some(probe)) = kinds.get(position) else {
                continue;
            };
            let prefix = if several {
                format!("document[{index}]")
            } else {
                String::new()
            };
            index += 1;
            match (&probe.api_version, probe.kind.as_deref()) {
                (None, _) => {
                    let doc: CompactDoc = serde_path_to_error::deserialize(document)
                        .map_err(|error| self.serde_error(&prefix, &error))?;
                    self.add_compact(doc, &prefix, position)?;
                }
                (Some(version), kind) if version == "openslo/v1" => match kind {
                    Some("SLO") => {
                        let doc: OsloSloDoc = serde_path_to_error::deserialize(document)
                            .map_err(|error| self.serde_error(&prefix, &error))?;
                        self.pending.push((doc, position, prefix.clone()));
                    }
                    Some("SLI") => {
                        let doc: OsloSliDoc = serde_path_to_error::deserialize(document)
                            .map_err(|error| self.serde_error(&prefix, &error))?;
                        self.slis.push((doc.metadata.name.0, doc.spec, position));
                    }
                    Some(
                        "Service"
                        | "DataSource"
                        | "AlertPolicy"
                        | "AlertCondition"
                        | "AlertNotificationTarget",
                    ) => {}
                    other => {
                        let line = find_line(self.text, self.range(position), "kind:");
                        return Err(self.error(
                            line,
                            join(&prefix, "kind"),
                            format!(
                                "{:?} is not a supported OpenSLO kind (expected SLO, SLI, Service, DataSource, AlertPolicy, AlertCondition or AlertNotificationTarget)",
                                other.unwrap_or("")
                            ),
                        ));
                    }
                },
                (Some(version), _) => {
                    let line = find_line(self.text, self.range(position), "apiVersion");
                    return Err(self.error(
                        line,
                        join(&prefix, "apiVersion"),
                        format!("{version:?} is not supported (expected openslo/v1, or no apiVersion for the compact form)"),
                    ));
                }
            }
        }
        let pending = std::mem::take(&mut self.pending);
        for (doc, position, prefix) in pending {
            self.add_openslo(doc, position, &prefix)?;
        }
        Ok(())
    }

    fn check_unique(
        &self,
        kind: &str,
        name: &str,
        document: usize,
        path: &str,
    ) -> Result<(), ObjectivesError> {
        let taken = match kind {
            "slo" => self.objectives.slos.iter().any(|slo| slo.name == name),
            "invariant" => self
                .objectives
                .invariants
                .iter()
                .any(|inv| inv.name == name),
            _ => self
                .objectives
                .anomalies
                .iter()
                .any(|anomaly| anomaly.name == name),
        };
        if taken {
            // The second `name: X` of the document is the duplicate.
            let range = self.range(document);
            let needle = format!("name: {name}");
            let first = find_line(self.text, range, &needle);
            let line = first
                .and_then(|first| find_line(self.text, (first + 1, range.1), &needle))
                .or(first);
            return Err(self.error(line, path, format!("duplicate {kind} name {name:?}")));
        }
        let total = self.objectives.slos.len()
            + self.objectives.invariants.len()
            + self.objectives.anomalies.len();
        if total >= MAX_OBJECTIVES {
            return Err(self.error(None, path, format!("more than {MAX_OBJECTIVES} objectives")));
        }
        Ok(())
    }

    fn add_compact(
        &mut self,
        doc: CompactDoc,
        prefix: &str,
        position: usize,
    ) -> Result<(), ObjectivesError> {
        let range = self.range(position);
        let (default_min_events, document_rules) = match &doc.alerting {
            Some(alerting) => (alerting.min_events, alerting.rules.clone()),
            None => (None, None),
        };
        if let Some(rules) = &document_rules {
            self.check_rules(rules, &join(prefix, "alerting.rules"), range)?;
        }
        for (index, slo) in doc.slos.into_iter().enumerate() {
            let path = join(prefix, &format!("slos[{index}]"));
            self.check_unique("slo", &slo.name.0, position, &join(&path, "name"))?;
            let mut rules = slo
                .alerts
                .clone()
                .or_else(|| document_rules.clone())
                .unwrap_or_else(default_rules);
            if let Some(alerts) = &slo.alerts {
                self.check_rules(alerts, &join(&path, "alerts"), range)?;
            }
            if let Some(factor) = slo.burn_rate_alert {
                if let Some(fastest) = rules.iter_mut().min_by_key(|rule| rule.long_ms) {
                    fastest.burn_rate = factor.0;
                }
            }
            let sli = match slo.sli {
                None => self.unnamed_sli(&slo.name.0, &path, range)?,
                Some(CompactSli { ratio, latency }) => match (ratio, latency) {
                    (Some(ratio), None) => self.ratio_sli(
                        ratio.good,
                        ratio.bad,
                        ratio.total,
                        &join(&path, "sli.ratio"),
                        range,
                    )?,
                    (None, Some(latency)) => {
                        self.latency_sli(latency, &join(&path, "sli.latency"), range)?
                    }
                    _ => {
                        return Err(self.error(
                            find_line(self.text, range, "sli:"),
                            join(&path, "sli"),
                            "needs exactly one of ratio and latency",
                        ))
                    }
                },
            };
            self.objectives.slos.push(Slo {
                name: slo.name.0,
                description: slo.description,
                service: slo.service,
                target: slo.target.0,
                window_ms: slo.window.0,
                sli,
                rules,
                min_events: slo
                    .min_events
                    .or(default_min_events)
                    .unwrap_or(DEFAULT_MIN_EVENTS),
            });
        }
        for (index, invariant) in doc.invariants.into_iter().enumerate() {
            let path = join(prefix, &format!("invariants[{index}]"));
            self.check_unique(
                "invariant",
                &invariant.name.0,
                position,
                &join(&path, "name"),
            )?;
            if invariant.hold_ticks == 0 {
                let line = find_line(self.text, range, "for:");
                return Err(self.error(line, join(&path, "for"), "must be at least 1 tick"));
            }
            self.objectives.invariants.push(InvariantDef {
                name: invariant.name.0,
                description: invariant.description,
                condition: invariant.condition.0,
                on_violation: invariant.on_violation,
                hold_ticks: invariant.hold_ticks,
            });
        }
        for (index, anomaly) in doc.anomalies.into_iter().enumerate() {
            let path = join(prefix, &format!("anomalies[{index}]"));
            self.check_unique("anomaly", &anomaly.name.0, position, &join(&path, "name"))?;
            let counter_like = ["_total", "_count", "_sum", "_bucket"]
                .iter()
                .any(|suffix| anomaly.series.name.ends_with(suffix));
            let transform = anomaly.transform.unwrap_or(if counter_like {
                Transform::Rate
            } else {
                Transform::Value
            });
            let mut detector = DetectorConfig::default();
            if let Some(threshold) = anomaly.threshold {
                detector.threshold = threshold;
            }
            if let Some(history) = anomaly.history {
                detector.history = history;
            }
            if let Some(warmup) = anomaly.warmup {
                detector.warmup = warmup;
            }
            if let Some(consecutive) = anomaly.consecutive {
                detector.consecutive = consecutive;
            }
            if let Some(direction) = anomaly.direction {
                detector.direction = direction;
            }
            if let Some(floor) = anomaly.min_relative_scale {
                detector.min_relative_scale = floor;
            }
            if let Err(message) = detector.validate() {
                let line = find_line(self.text, range, &format!("name: {}", anomaly.name.0));
                return Err(self.error(line, path, message));
            }
            if let Some(capacity) = anomaly.capacity {
                if !(capacity.is_finite() && capacity > 0.0) {
                    let line = find_line(self.text, range, "capacity");
                    return Err(self.error(
                        line,
                        join(&path, "capacity"),
                        format!(
                            "{capacity} is not a capacity: a positive number in the series' unit (per second for a rate), e.g. capacity: 8 for 480 a minute"
                        ),
                    ));
                }
            }
            if let Some(sustain) = anomaly.sustain {
                if sustain.ms() > MAX_SUSTAIN_MS {
                    let line = find_line(self.text, range, "sustain");
                    return Err(self.error(
                        line,
                        join(&path, "sustain"),
                        format!(
                            "{} ms is longer than the {MAX_SUSTAIN_MS} ms (a day) an episode may wait before it files",
                            sustain.ms()
                        ),
                    ));
                }
            }
            if let OnViolation::AutoRemediate { .. } = anomaly.on_violation {
                let line = find_line(self.text, range, "on_violation");
                return Err(self.error(
                    line,
                    join(&path, "on_violation"),
                    "an anomaly files a ticket or an event (auto_remediate is for invariants)",
                ));
            }
            self.objectives.anomalies.push(AnomalyDef {
                name: anomaly.name.0,
                series: anomaly.series,
                transform,
                rate_window_ms: anomaly.rate_window.map_or(MINUTE_MS, Span::ms),
                detector,
                capacity: anomaly.capacity,
                sustain_ms: anomaly.sustain.map_or(0, Span::ms),
                on_violation: anomaly.on_violation,
            });
        }
        Ok(())
    }

    fn check_rules(
        &self,
        rules: &[BurnRule],
        path: &str,
        range: (usize, usize),
    ) -> Result<(), ObjectivesError> {
        let line = find_line(self.text, range, path.rsplit('.').next().unwrap_or(path));
        if rules.is_empty() || rules.len() > MAX_RULES_PER_SLO {
            return Err(self.error(line, path, format!("needs 1 to {MAX_RULES_PER_SLO} rules")));
        }
        for (index, rule) in rules.iter().enumerate() {
            if rule.short_ms >= rule.long_ms {
                return Err(self.error(
                    line,
                    format!("{path}[{index}].short"),
                    format!(
                        "the short window ({}) must be shorter than the long one ({})",
                        format_duration_ms(rule.short_ms),
                        format_duration_ms(rule.long_ms)
                    ),
                ));
            }
            if rule.long_ms > crate::observe::tsdb::RETENTION_MS {
                return Err(self.error(
                    line,
                    format!("{path}[{index}].long"),
                    format!(
                        "{} is longer than the time-series store keeps ({})",
                        format_duration_ms(rule.long_ms),
                        format_duration_ms(crate::observe::tsdb::RETENTION_MS)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The SLI of a compact SLO that names none: the service's
    /// availability for an SLO named `availability` (the seed's example),
    /// an error showing the fix for any other.
    fn unnamed_sli(
        &self,
        name: &str,
        path: &str,
        range: (usize, usize),
    ) -> Result<Sli, ObjectivesError> {
        let line = find_line(self.text, range, &format!("name: {name}"));
        if name != "availability" {
            return Err(self.error(
                line,
                join(path, "sli"),
                format!(
                    "missing: say what the SLO {name:?} measures, as a ratio of two counters \
                     or a latency threshold, e.g. `sli: {{ratio: {{good: '{AVAILABILITY_GOOD}', \
                     total: {AVAILABILITY_TOTAL}}}}}` (only an SLO named availability may leave \
                     sli out: it then means decisions answered without an error)"
                ),
            ));
        }
        let selector = |text: &str| {
            Selector::parse(text).map_err(|error| self.error(line, join(path, "sli"), error))
        };
        Ok(Sli::Ratio {
            good: Some(selector(AVAILABILITY_GOOD)?),
            bad: None,
            total: selector(AVAILABILITY_TOTAL)?,
        })
    }

    fn ratio_sli(
        &self,
        good: Option<Selector>,
        bad: Option<Selector>,
        total: Selector,
        path: &str,
        range: (usize, usize),
    ) -> Result<Sli, ObjectivesError> {
        match (&good, &bad) {
            (Some(_), None) | (None, Some(_)) => Ok(Sli::Ratio { good, bad, total }),
            _ => {
                let line = find_line(self.text, range, "total");
                Err(self.error(line, path, "needs exactly one of good and bad, and total"))
            }
        }
    }

    fn latency_sli(
        &self,
        latency: LatencySpec,
        path: &str,
        range: (usize, usize),
    ) -> Result<Sli, ObjectivesError> {
        let threshold = latency.threshold.0;
        let base = &latency.histogram.name;
        let line = find_line(self.text, range, "threshold");
        if base.ends_with("_bucket") || base.ends_with("_count") {
            return Err(self.error(
                find_line(self.text, range, "histogram"),
                join(path, "histogram"),
                format!(
                    "name the histogram by its base name ({:?}), not a series of it",
                    base.trim_end_matches("_bucket").trim_end_matches("_count")
                ),
            ));
        }
        if base == floodgate_contract::metrics::REQUEST_DURATION.name {
            let buckets = floodgate_contract::metrics::DURATION_BUCKETS_SECONDS;
            let known = buckets
                .iter()
                .any(|bound| (bound - threshold).abs() <= 1e-9 * bound.abs());
            if !known {
                let list: Vec<String> = buckets.iter().map(|b| trim_float(*b)).collect();
                return Err(self.error(
                    line,
                    join(path, "threshold"),
                    format!(
                        "{}s is not a bucket bound of {base} (expected one of {})",
                        trim_float(threshold),
                        list.join(", ")
                    ),
                ));
            }
        }
        let mut good = Selector::metric(&format!("{base}_bucket"));
        let mut total = Selector::metric(&format!("{base}_count"));
        for matcher in &latency.histogram.matchers {
            good.matchers.push(matcher.clone());
            total.matchers.push(matcher.clone());
        }
        let good = good.with_number("le", threshold);
        Ok(Sli::Latency {
            good,
            total,
            threshold_seconds: threshold,
        })
    }

    fn add_openslo(
        &mut self,
        doc: OsloSloDoc,
        position: usize,
        prefix: &str,
    ) -> Result<(), ObjectivesError> {
        let range = self.range(position);
        let name = doc.metadata.name.0.clone();
        let spec = doc.spec;
        self.check_unique("slo", &name, position, &join(prefix, "metadata.name"))?;
        let at = |needle: &str| find_line(self.text, range, needle);
        let sli_spec = match (spec.indicator, &spec.indicator_ref) {
            (Some(inline), None) => {
                let _ = inline.metadata;
                inline.spec
            }
            (None, Some(reference)) => {
                let Some(index) = self.slis.iter().position(|(sli, _, _)| sli == reference) else {
                    return Err(self.error(
                        at("indicatorRef"),
                        join(prefix, "spec.indicatorRef"),
                        format!("no SLI named {reference:?} in this file"),
                    ));
                };
                let (_, spec, _) = self.slis.swap_remove(index);
                spec
            }
            _ => {
                return Err(self.error(
                    at("spec:"),
                    join(prefix, "spec"),
                    "needs exactly one of indicator and indicatorRef",
                ))
            }
        };
        if sli_spec.threshold_metric.is_some() {
            return Err(self.error(
                at("thresholdMetric"),
                join(prefix, "spec.indicator.spec.thresholdMetric"),
                "only ratioMetric SLIs are supported",
            ));
        }
        let Some(ratio) = sli_spec.ratio_metric else {
            return Err(self.error(
                at("indicator"),
                join(prefix, "spec.indicator.spec"),
                "needs a ratioMetric",
            ));
        };
        if ratio.counter == Some(false) {
            return Err(self.error(
                at("counter"),
                join(prefix, "spec.indicator.spec.ratioMetric.counter"),
                "only counter ratios (counter: true) are supported",
            ));
        }
        for source in [ratio.good.as_ref(), ratio.bad.as_ref(), Some(&ratio.total)]
            .into_iter()
            .flatten()
        {
            if let Some(kind) = &source.metric_source.source_type {
                if !kind.eq_ignore_ascii_case("prometheus") {
                    return Err(self.error(
                        at("type:"),
                        join(prefix, "spec.indicator.spec.ratioMetric"),
                        format!(
                            "metricSource type {kind:?} is not supported (expected Prometheus)"
                        ),
                    ));
                }
            }
        }
        let sli = self.ratio_sli(
            ratio.good.map(|metric| metric.metric_source.spec.query),
            ratio.bad.map(|metric| metric.metric_source.spec.query),
            ratio.total.metric_source.spec.query,
            &join(prefix, "spec.indicator.spec.ratioMetric"),
            range,
        )?;
        let window_ms = match spec.time_window.as_slice() {
            [window] if window.is_rolling => window.duration.0,
            [_] => {
                return Err(self.error(
                    at("isRolling"),
                    join(prefix, "spec.timeWindow[0].isRolling"),
                    "only rolling windows are supported",
                ))
            }
            _ => {
                return Err(self.error(
                    at("timeWindow"),
                    join(prefix, "spec.timeWindow"),
                    "needs exactly one time window",
                ))
            }
        };
        if !matches!(spec.budgeting_method, BudgetingMethod::Occurrences) {
            return Err(self.error(
                at("budgetingMethod"),
                join(prefix, "spec.budgetingMethod"),
                "only Occurrences is supported",
            ));
        }
        if spec.objectives.is_empty() {
            return Err(self.error(
                at("objectives"),
                join(prefix, "spec.objectives"),
                "needs a target",
            ));
        }
        let count = spec.objectives.len();
        for (index, objective) in spec.objectives.iter().enumerate() {
            let path = join(prefix, &format!("spec.objectives[{index}]"));
            let target = match (objective.target, objective.target_percent) {
                (Some(target), None) => target,
                (None, Some(percent)) => percent / 100.0,
                _ => {
                    return Err(self.error(
                        at("target"),
                        path,
                        "needs exactly one of target (0-1) and targetPercent (0-100)",
                    ))
                }
            };
            if !(target > 0.0 && target < 1.0) {
                return Err(self.error(
                    at("target"),
                    join(&path, "target"),
                    format!(
                        "{} must be above 0 and below 1 (e.g. 0.999)",
                        trim_float(target)
                    ),
                ));
            }
            let slo_name = if count == 1 {
                name.clone()
            } else {
                match &objective.display_name {
                    Some(display) if !display.is_empty() => format!("{name}-{}", slug(display)),
                    _ => format!("{name}-{index}"),
                }
            };
            if count > 1 {
                self.check_unique("slo", &slo_name, position, &path)?;
            }
            self.objectives.slos.push(Slo {
                name: slo_name,
                description: if spec.description.is_empty() {
                    doc.metadata.display_name.clone().unwrap_or_default()
                } else {
                    spec.description.clone()
                },
                service: spec.service.clone(),
                target,
                window_ms,
                sli: sli.clone(),
                rules: default_rules(),
                min_events: DEFAULT_MIN_EVENTS,
            });
        }
        Ok(())
    }
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(32)
        .collect()
}

fn join(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        path.to_owned()
    } else if path.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}.{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_helpers_line_up() {
        assert_eq!(crate::quantity::parse_duration_ms("30d"), Ok(30 * DAY_MS));
        assert_eq!(document_lines("a: 1\n---\nb: 2\n"), vec![(1, 1), (3, 3)]);
    }
}
