//! Machine-checkable acceptance criteria: `{metric, condition, duration}`.
//!
//! - `metric` names a [`CriterionMetric`] of the [`MetricRegistry`]: the
//!   built-ins over the service's catalog metrics (`throughput`,
//!   `error_ratio`, `latency_p99`, …), every SLO by name (its SLI), every
//!   invariant by name (the fraction of ticks it held) and every anomaly by
//!   name (its mean absolute score; a `within … of reference` condition
//!   reads its judged values instead).
//! - `condition` is a comparison (`< 500ms`, `>= 99.9%`, `> 100/s`,
//!   `< 0.2`), `no regression` (not worse than the baseline captured when
//!   the ticket was filed, by at most 5% relative, or the tolerance stated
//!   as `no regression within 2%`), or `within 6 scales of reference` (an
//!   anomaly's series back within `median ± 6 × scale` of the
//!   [`Reference`] frozen when the ticket was filed: the level before the
//!   anomaly, whatever the detector has learned since). A comparison's unit
//!   must suit its metric: a latency takes a duration, a ratio a
//!   percentage.
//! - `duration` (`1h sustained`, or `1h`) asks that the condition held over
//!   every 5-minute slice of the last hour; without it the condition is
//!   checked over the last 5 minutes (the pipeline's verify stage may
//!   shorten that window: `verify.criteria_window`, [`Criterion::evaluate_over`]).

use crate::observe::anomaly::Direction;
use crate::observe::objectives::{Objectives, Sli};
use crate::observe::selector::Selector;
use crate::observe::tsdb::Tsdb;
use crate::quantity::{
    format_duration_ms, parse_duration_ms, parse_percent, parse_seconds, trim_float, MINUTE_MS,
};
use floodgate_contract::metrics as catalog;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// The tolerance of a bare `no regression`: 5% relative.
pub const DEFAULT_REGRESSION_TOLERANCE: f64 = 0.05;
/// The window of a criterion without a duration, and the slice of a
/// sustained one.
pub const CRITERIA_STEP_MS: u64 = 5 * MINUTE_MS;
/// The window a `no regression` baseline is measured over, before filing.
pub const BASELINE_WINDOW_MS: u64 = crate::quantity::HOUR_MS;
/// The longest sustained duration: what the time-series store keeps.
pub const MAX_SUSTAIN_MS: u64 = 3 * crate::quantity::DAY_MS;
/// Harness series: 1 when an invariant held at a tick, 0 when it did not.
pub const INVARIANT_HOLDS_SERIES: &str = "floodgate_harness_invariant_holds";
/// Harness series: an anomaly detector's absolute robust score per tick.
pub const ANOMALY_SCORE_SERIES: &str = "floodgate_harness_anomaly_score";
/// Harness series: the value an anomaly detector judged at a tick (its
/// series after the transform, e.g. a rate): what a `within … of
/// reference` condition reads.
pub const ANOMALY_VALUE_SERIES: &str = "floodgate_harness_anomaly_value";

/// What a metric's values are, which decides the units a condition on it
/// may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A fraction 0..1 (written `99.9%` or `0.999`).
    Ratio,
    /// A latency in seconds (written `500ms`, `0.5s`).
    Seconds,
    /// Events per second (written `100/s` or `100`).
    PerSecond,
    /// A plain number.
    Number,
}

/// Which way is better (for `no regression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// How a criterion metric is computed over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricQuery {
    /// An SLO's SLI (good / total).
    Sli { sli: Sli },
    /// increase(numerator) / increase(denominator) of counters.
    CounterRatio {
        numerator: Selector,
        denominator: Selector,
    },
    /// Per-second rate of counters.
    Rate { selector: Selector },
    /// The `q` quantile of a histogram (its `_bucket` series).
    Quantile { q: f64, buckets: Selector },
    /// mean(numerator) / mean(denominator) of gauges.
    GaugeRatio {
        numerator: Selector,
        denominator: Selector,
    },
    /// The mean of a gauge.
    Mean { selector: Selector },
}

impl MetricQuery {
    /// The series families (metric names) the query reads.
    pub fn families(&self) -> Vec<String> {
        let selectors: Vec<&Selector> = match self {
            MetricQuery::Sli { sli } => match sli {
                Sli::Ratio { good, bad, total } => {
                    good.iter().chain(bad.iter()).chain([total]).collect()
                }
                Sli::Latency { good, total, .. } => vec![good, total],
            },
            MetricQuery::CounterRatio {
                numerator,
                denominator,
            }
            | MetricQuery::GaugeRatio {
                numerator,
                denominator,
            } => vec![numerator, denominator],
            MetricQuery::Rate { selector } | MetricQuery::Mean { selector } => vec![selector],
            MetricQuery::Quantile { buckets, .. } => vec![buckets],
        };
        selectors.into_iter().map(|s| s.name.clone()).collect()
    }
}

/// One metric a criterion may name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriterionMetric {
    pub name: String,
    pub unit: Unit,
    pub better: Better,
    pub meaning: String,
    pub query: MetricQuery,
    /// The series a `within … of reference` condition reads (an anomaly's
    /// judged values); `None` for metrics that have no reference level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<MetricQuery>,
}

impl CriterionMetric {
    /// The same metric over one service's series only (its `instance`
    /// label); `None` for SLI metrics, whose selectors are the objective's.
    pub fn for_instance(&self, instance: &str) -> Option<CriterionMetric> {
        let one = |selector: &Selector| selector.clone().with("instance", instance);
        let query = match &self.query {
            MetricQuery::Sli { .. } => return None,
            MetricQuery::CounterRatio {
                numerator,
                denominator,
            } => MetricQuery::CounterRatio {
                numerator: one(numerator),
                denominator: one(denominator),
            },
            MetricQuery::Rate { selector } => MetricQuery::Rate {
                selector: one(selector),
            },
            MetricQuery::Quantile { q, buckets } => MetricQuery::Quantile {
                q: *q,
                buckets: one(buckets),
            },
            MetricQuery::GaugeRatio {
                numerator,
                denominator,
            } => MetricQuery::GaugeRatio {
                numerator: one(numerator),
                denominator: one(denominator),
            },
            MetricQuery::Mean { selector } => MetricQuery::Mean {
                selector: one(selector),
            },
        };
        Some(CriterionMetric {
            query,
            ..self.clone()
        })
    }

    /// The metric's value over `(end - window, end]`.
    pub fn value(&self, tsdb: &Tsdb, window_ms: u64, end_ms: u64) -> Option<f64> {
        query_value(&self.query, tsdb, window_ms, end_ms)
    }

    /// The metric's reference level over `(end - window, end]` (see
    /// [`CriterionMetric::level`]).
    pub fn level_value(&self, tsdb: &Tsdb, window_ms: u64, end_ms: u64) -> Option<f64> {
        query_value(self.level.as_ref()?, tsdb, window_ms, end_ms)
    }
}

/// A query's value over `(end - window, end]`.
fn query_value(query: &MetricQuery, tsdb: &Tsdb, window_ms: u64, end_ms: u64) -> Option<f64> {
    let increase = |selector: &Selector| {
        tsdb.increase(selector, window_ms, end_ms)
            .map(|inc| inc.value)
    };
    match query {
        MetricQuery::Sli { sli } => {
            let (good, total) = crate::observe::slo::count_events(sli, tsdb, window_ms, end_ms)?;
            (total > 0.0).then(|| good / total)
        }
        MetricQuery::CounterRatio {
            numerator,
            denominator,
        } => {
            let denominator = increase(denominator)?;
            (denominator > 0.0).then(|| increase(numerator).unwrap_or(0.0) / denominator)
        }
        MetricQuery::Rate { selector } => tsdb.rate(selector, window_ms, end_ms),
        MetricQuery::Quantile { q, buckets } => {
            tsdb.histogram_quantile(*q, buckets, window_ms, end_ms)
        }
        MetricQuery::GaugeRatio {
            numerator,
            denominator,
        } => {
            let denominator = tsdb.mean(denominator, window_ms, end_ms)?;
            (denominator > 0.0)
                .then(|| tsdb.mean(numerator, window_ms, end_ms).unwrap_or(0.0) / denominator)
        }
        MetricQuery::Mean { selector } => tsdb.mean(selector, window_ms, end_ms),
    }
}

/// Every metric criteria may name: built-ins plus the objectives' names.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricRegistry {
    metrics: BTreeMap<String, CriterionMetric>,
}

impl MetricRegistry {
    /// The built-in metrics over the rate-limit service's catalog.
    pub fn builtin() -> MetricRegistry {
        let requests = Selector::metric(catalog::REQUESTS.name);
        let buckets = Selector::metric(&format!("{}_bucket", catalog::REQUEST_DURATION.name));
        let mut registry = MetricRegistry::default();
        let mut add = |name: &str, unit, better, meaning: &str, query| {
            registry.metrics.insert(
                name.to_owned(),
                CriterionMetric {
                    name: name.to_owned(),
                    unit,
                    better,
                    meaning: meaning.to_owned(),
                    query,
                    level: None,
                },
            );
        };
        add(
            "throughput",
            Unit::PerSecond,
            Better::Higher,
            "rate-limit decisions answered per second",
            MetricQuery::Rate {
                selector: requests.clone(),
            },
        );
        add(
            "error_ratio",
            Unit::Ratio,
            Better::Lower,
            "decisions answered with code error / all decisions",
            MetricQuery::CounterRatio {
                numerator: requests.clone().with("code", "error"),
                denominator: requests.clone(),
            },
        );
        add(
            "over_limit_ratio",
            Unit::Ratio,
            Better::Lower,
            "decisions answered over_limit / all decisions",
            MetricQuery::CounterRatio {
                numerator: requests.clone().with("code", "over_limit"),
                denominator: requests,
            },
        );
        for (name, q) in [
            ("latency_p50", 0.5),
            ("latency_p99", 0.99),
            ("latency_p999", 0.999),
        ] {
            add(
                name,
                Unit::Seconds,
                Better::Lower,
                "decision latency quantile from the request duration histogram",
                MetricQuery::Quantile {
                    q,
                    buckets: buckets.clone(),
                },
            );
        }
        add(
            "store_used_ratio",
            Unit::Ratio,
            Better::Lower,
            "counter keys held / store capacity",
            MetricQuery::GaugeRatio {
                numerator: Selector::metric(catalog::STORE_KEYS.name),
                denominator: Selector::metric(catalog::STORE_CAPACITY.name),
            },
        );
        add(
            "store_evictions_rate",
            Unit::PerSecond,
            Better::Lower,
            "counter keys evicted per second",
            MetricQuery::Rate {
                selector: Selector::metric(catalog::STORE_EVICTIONS.name),
            },
        );
        registry
    }

    /// The built-ins plus one metric per SLO, invariant and anomaly. Fails
    /// when an objective's name shadows a built-in.
    pub fn for_objectives(objectives: &Objectives) -> Result<MetricRegistry, String> {
        let mut registry = MetricRegistry::builtin();
        let mut add = |metric: CriterionMetric| -> Result<(), String> {
            if registry.metrics.contains_key(&metric.name) {
                return Err(format!(
                    "objective name {:?} is also a criterion metric; rename the objective",
                    metric.name
                ));
            }
            registry.metrics.insert(metric.name.clone(), metric);
            Ok(())
        };
        for slo in &objectives.slos {
            add(CriterionMetric {
                name: slo.name.clone(),
                unit: Unit::Ratio,
                better: Better::Higher,
                meaning: format!("the SLI of SLO {}", slo.name),
                query: MetricQuery::Sli {
                    sli: slo.sli.clone(),
                },
                level: None,
            })?;
        }
        for invariant in &objectives.invariants {
            add(CriterionMetric {
                name: invariant.name.clone(),
                unit: Unit::Ratio,
                better: Better::Higher,
                meaning: format!("the fraction of ticks invariant {} held", invariant.name),
                query: MetricQuery::Mean {
                    selector: Selector::metric(INVARIANT_HOLDS_SERIES)
                        .with("invariant", &invariant.name),
                },
                level: None,
            })?;
        }
        for anomaly in &objectives.anomalies {
            add(CriterionMetric {
                name: anomaly.name.clone(),
                unit: Unit::Number,
                better: Better::Lower,
                meaning: format!(
                    "the mean absolute robust score of anomaly detector {}",
                    anomaly.name
                ),
                query: MetricQuery::Mean {
                    selector: Selector::metric(ANOMALY_SCORE_SERIES).with("anomaly", &anomaly.name),
                },
                level: Some(MetricQuery::Mean {
                    selector: Selector::metric(ANOMALY_VALUE_SERIES).with("anomaly", &anomaly.name),
                }),
            })?;
        }
        Ok(registry)
    }

    pub fn get(&self, name: &str) -> Option<&CriterionMetric> {
        self.metrics.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.metrics.keys().map(String::as_str)
    }

    pub fn metrics(&self) -> impl Iterator<Item = &CriterionMetric> {
        self.metrics.values()
    }
}

// ---------------------------------------------------------------------------
// conditions

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CompareOp {
    #[serde(rename = "<")]
    Less,
    #[serde(rename = "<=")]
    LessOrEqual,
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = ">=")]
    GreaterOrEqual,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Less => "<",
            CompareOp::LessOrEqual => "<=",
            CompareOp::Greater => ">",
            CompareOp::GreaterOrEqual => ">=",
        }
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            CompareOp::Less => value < threshold,
            CompareOp::LessOrEqual => value <= threshold,
            CompareOp::Greater => value > threshold,
            CompareOp::GreaterOrEqual => value >= threshold,
        }
    }
}

/// The unit a threshold was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Written {
    Percent,
    Duration,
    PerSecond,
    Bare,
}

/// A parsed condition. Serializes as the text it was parsed from (in its
/// canonical spelling).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare {
        op: CompareOp,
        /// In the metric's base unit: a fraction, seconds, per second.
        threshold: f64,
        written: Written,
    },
    NoRegression {
        /// Relative: 0.05 = 5% worse than the baseline at most.
        tolerance: f64,
    },
    /// `within 6 scales of reference`: the metric's reference level (an
    /// anomaly's judged series) is back within `median ± threshold ×
    /// scale` of the criterion's frozen [`Reference`] (on the side(s) its
    /// direction watches).
    WithinReference {
        /// How many scales from the reference median a value may be.
        threshold: f64,
    },
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, String> {
        let expected = || {
            format!("{text:?} is not a condition (expected e.g. \"< 500ms\", \"> 99.9%\", \"no regression\", \"no regression within 2%\", \"within 6 scales of reference\")")
        };
        let trimmed = text.trim();
        if let Some(rest) = trimmed.strip_prefix("within ") {
            let number = rest
                .strip_suffix("scales of reference")
                .or_else(|| rest.strip_suffix("scale of reference"))
                .map(str::trim)
                .ok_or_else(expected)?;
            let threshold: f64 = number.parse().map_err(|_| expected())?;
            if !(threshold.is_finite() && threshold > 0.0) {
                return Err(format!("{text:?}: the number of scales must be above 0"));
            }
            return Ok(Condition::WithinReference { threshold });
        }
        if let Some(rest) = trimmed.strip_prefix("no regression") {
            let rest = rest.trim();
            if rest.is_empty() {
                return Ok(Condition::NoRegression {
                    tolerance: DEFAULT_REGRESSION_TOLERANCE,
                });
            }
            let tolerance_text = rest
                .strip_prefix("within")
                .map(str::trim)
                .or_else(|| {
                    rest.strip_prefix('(')
                        .and_then(|r| r.strip_suffix(')'))
                        .map(str::trim)
                })
                .ok_or_else(expected)?;
            let tolerance = parse_percent(tolerance_text).map_err(|_| expected())?;
            if !(0.0..1.0).contains(&tolerance) {
                return Err(format!(
                    "{text:?}: the tolerance must be at least 0% and below 100%"
                ));
            }
            return Ok(Condition::NoRegression { tolerance });
        }
        let (op, rest) = if let Some(rest) = trimmed.strip_prefix("<=") {
            (CompareOp::LessOrEqual, rest)
        } else if let Some(rest) = trimmed.strip_prefix(">=") {
            (CompareOp::GreaterOrEqual, rest)
        } else if let Some(rest) = trimmed.strip_prefix('<') {
            (CompareOp::Less, rest)
        } else if let Some(rest) = trimmed.strip_prefix('>') {
            (CompareOp::Greater, rest)
        } else {
            return Err(expected());
        };
        let quantity = rest.trim();
        let (threshold, written) = if quantity.ends_with('%') {
            (
                parse_percent(quantity).map_err(|_| expected())?,
                Written::Percent,
            )
        } else if let Some(number) = quantity.strip_suffix("/s") {
            (
                number.trim().parse::<f64>().map_err(|_| expected())?,
                Written::PerSecond,
            )
        } else if quantity.ends_with(|c: char| c.is_ascii_alphabetic()) {
            (
                parse_seconds(quantity).map_err(|_| expected())?,
                Written::Duration,
            )
        } else {
            (
                quantity.parse::<f64>().map_err(|_| expected())?,
                Written::Bare,
            )
        };
        if !threshold.is_finite() {
            return Err(expected());
        }
        Ok(Condition::Compare {
            op,
            threshold,
            written,
        })
    }

    /// Whether this condition can apply to a metric of `unit`.
    pub fn check_unit(&self, metric: &str, unit: Unit) -> Result<(), String> {
        let Condition::Compare { written, .. } = self else {
            return Ok(());
        };
        let fits = matches!(
            (unit, written),
            (Unit::Ratio, Written::Percent | Written::Bare)
                | (Unit::Seconds, Written::Duration)
                | (Unit::PerSecond, Written::PerSecond | Written::Bare)
                | (Unit::Number, Written::Bare)
        );
        if fits {
            return Ok(());
        }
        let example = match unit {
            Unit::Ratio => "> 99.9%",
            Unit::Seconds => "< 500ms",
            Unit::PerSecond => "> 100/s",
            Unit::Number => "< 3",
        };
        let unit_name = match unit {
            Unit::Ratio => "a ratio",
            Unit::Seconds => "a latency",
            Unit::PerSecond => "a rate",
            Unit::Number => "a plain number",
        };
        Err(format!(
            "{:?} does not suit {metric}, which is {unit_name} (expected e.g. {example:?})",
            self.to_string()
        ))
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Compare {
                op,
                threshold,
                written,
            } => {
                let quantity = match written {
                    Written::Percent => format!("{}%", trim_float(threshold * 100.0)),
                    Written::Duration if *threshold < 1.0 => {
                        format!("{}ms", trim_float(threshold * 1000.0))
                    }
                    Written::Duration => format!("{}s", trim_float(*threshold)),
                    Written::PerSecond => format!("{}/s", trim_float(*threshold)),
                    Written::Bare => trim_float(*threshold),
                };
                write!(f, "{} {quantity}", op.as_str())
            }
            Condition::NoRegression { tolerance }
                if (*tolerance - DEFAULT_REGRESSION_TOLERANCE).abs() < 1e-12 =>
            {
                f.write_str("no regression")
            }
            Condition::NoRegression { tolerance } => {
                write!(f, "no regression within {}%", trim_float(tolerance * 100.0))
            }
            Condition::WithinReference { threshold } => {
                write!(f, "within {} scales of reference", trim_float(*threshold))
            }
        }
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::quantity::parse_scalar(
            deserializer,
            "a condition such as \"< 500ms\"",
            Condition::parse,
        )
    }
}

/// How long a condition must hold: `1h sustained` (or `1h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sustain(pub u64);

impl Sustain {
    pub fn parse(text: &str) -> Result<Sustain, String> {
        let trimmed = text.trim();
        let span = trimmed.strip_suffix("sustained").unwrap_or(trimmed).trim();
        let ms = parse_duration_ms(span).map_err(|_| {
            format!("{text:?} is not a duration (expected e.g. \"1h sustained\" or \"30m\")")
        })?;
        if ms > MAX_SUSTAIN_MS {
            return Err(format!(
                "{text:?} is longer than the harness keeps data ({})",
                format_duration_ms(MAX_SUSTAIN_MS)
            ));
        }
        if ms < CRITERIA_STEP_MS {
            return Err(format!(
                "{text:?} is shorter than one evaluation slice ({})",
                format_duration_ms(CRITERIA_STEP_MS)
            ));
        }
        Ok(Sustain(ms))
    }
}

impl fmt::Display for Sustain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sustained", format_duration_ms(self.0))
    }
}

impl Serialize for Sustain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Sustain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::quantity::parse_scalar(
            deserializer,
            "a duration such as \"1h sustained\"",
            Sustain::parse,
        )
    }
}

/// The level a `within … of reference` condition is judged against,
/// frozen when the ticket was filed: the anomaly detector's median and
/// scale at that moment (the level before the anomaly), and the side(s)
/// the detector watches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub median: f64,
    /// The detector's scale (1.4826 × MAD, floored); above 0.
    pub scale: f64,
    #[serde(default = "both")]
    pub direction: Direction,
    /// The capacity the anomaly declares (ADR 0022), if any: a rise at or
    /// under it harms nothing, so it meets the condition too (ADR 0024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<f64>,
}

fn both() -> Direction {
    Direction::Both
}

impl Reference {
    /// Whether `value` is within `threshold` scales of the median on the
    /// watched side(s), or a rise at or under the declared capacity.
    pub fn holds(&self, value: f64, threshold: f64) -> bool {
        let reach = threshold * self.scale;
        let harmless_rise =
            value > self.median && self.capacity.is_some_and(|capacity| value <= capacity);
        match self.direction {
            Direction::Both => (value - self.median).abs() <= reach || harmless_rise,
            Direction::Up => value <= self.median + reach || harmless_rise,
            Direction::Down => value >= self.median - reach,
        }
    }

    /// The band as text: `100 ± 15` (or `≤ 115`, `≥ 85` for one side),
    /// then `, or a rise to at most 300 (the declared capacity)`.
    pub fn band_text(&self, threshold: f64) -> String {
        let reach = threshold * self.scale;
        let band = match self.direction {
            Direction::Both => format!("{} ± {}", trim_float(self.median), trim_float(reach)),
            Direction::Up => format!("≤ {}", trim_float(self.median + reach)),
            Direction::Down => format!("≥ {}", trim_float(self.median - reach)),
        };
        match (self.direction, self.capacity) {
            (Direction::Down, _) | (_, None) => band,
            (_, Some(capacity)) => format!(
                "{band}, or a rise to at most {} (the declared capacity)",
                trim_float(capacity)
            ),
        }
    }

    fn check(&self) -> Result<(), String> {
        if !self.median.is_finite() {
            return Err(format!("reference.median {} is not a number", self.median));
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(format!("reference.scale {} must be above 0", self.scale));
        }
        if let Some(capacity) = self.capacity {
            if !(capacity.is_finite() && capacity > 0.0) {
                return Err(format!("reference.capacity {capacity} must be above 0"));
            }
        }
        Ok(())
    }
}

/// One acceptance criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    pub metric: String,
    pub condition: Condition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Sustain>,
    /// For `no regression`: the metric's value before the ticket was filed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// For `within … of reference`: the level before the anomaly, frozen
    /// when the ticket was filed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
}

/// A criterion's verdict now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Met,
    NotMet {
        reason: String,
    },
    /// Not decidable yet: too little data, no baseline.
    Pending {
        reason: String,
    },
}

/// The evaluation of one criterion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriterionResult {
    pub metric: String,
    pub condition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// The value over the last slice.
    pub value: Option<f64>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

impl Criterion {
    /// Checks the metric exists and the condition suits it.
    pub fn validate(&self, registry: &MetricRegistry) -> Result<(), CriterionError> {
        let Some(metric) = registry.get(&self.metric) else {
            let known: Vec<&str> = registry.names().collect();
            return Err(CriterionError::UnknownMetric(format!(
                "unknown metric {:?} (known: {})",
                self.metric,
                known.join(", ")
            )));
        };
        self.condition
            .check_unit(&self.metric, metric.unit)
            .map_err(CriterionError::Condition)?;
        if let Condition::WithinReference { .. } = self.condition {
            if metric.level.is_none() {
                return Err(CriterionError::Condition(format!(
                    "{:?} applies to an anomaly's metric only; {} has no reference level",
                    self.condition.to_string(),
                    self.metric
                )));
            }
            let reference = self.reference.as_ref().ok_or_else(|| {
                CriterionError::Reference(
                    "a `within … of reference` condition needs its reference {median, scale}"
                        .to_owned(),
                )
            })?;
            reference.check().map_err(CriterionError::Reference)?;
        }
        Ok(())
    }

    /// Whether the condition holds for `value`.
    fn holds(&self, better: Better, value: f64) -> Result<bool, String> {
        match self.condition {
            Condition::Compare { op, threshold, .. } => Ok(op.holds(value, threshold)),
            Condition::WithinReference { threshold } => {
                let reference = self
                    .reference
                    .ok_or("no reference was captured when the ticket was filed")?;
                Ok(reference.holds(value, threshold))
            }
            Condition::NoRegression { tolerance } => {
                let baseline = self
                    .baseline
                    .ok_or("no baseline was captured when the ticket was filed")?;
                Ok(match better {
                    Better::Higher => value >= baseline - tolerance * baseline.abs(),
                    Better::Lower => value <= baseline + tolerance * baseline.abs(),
                })
            }
        }
    }

    /// Evaluates the criterion at `now_ms`: without a duration, over the
    /// last [`CRITERIA_STEP_MS`].
    pub fn evaluate(&self, registry: &MetricRegistry, tsdb: &Tsdb, now_ms: u64) -> CriterionResult {
        self.evaluate_over(registry, tsdb, now_ms, CRITERIA_STEP_MS)
    }

    /// Evaluates the criterion at `now_ms`, judging one without a duration
    /// over the last `window_ms` (the pipeline's `verify.criteria_window`);
    /// a sustained one is judged over every [`CRITERIA_STEP_MS`] slice of
    /// its duration, whatever `window_ms`.
    pub fn evaluate_over(
        &self,
        registry: &MetricRegistry,
        tsdb: &Tsdb,
        now_ms: u64,
        window_ms: u64,
    ) -> CriterionResult {
        let mut result = CriterionResult {
            metric: self.metric.clone(),
            condition: self.condition.to_string(),
            duration: self.duration.map(|sustain| sustain.to_string()),
            value: None,
            verdict: Verdict::Pending {
                reason: String::new(),
            },
        };
        let Some(metric) = registry.get(&self.metric) else {
            result.verdict = Verdict::NotMet {
                reason: format!("unknown metric {:?}", self.metric),
            };
            return result;
        };
        let (span, slice_ms) = match self.duration {
            Some(sustain) => (sustain.0, CRITERIA_STEP_MS),
            None => (window_ms.max(1), window_ms.max(1)),
        };
        let covered = tsdb.coverage_ms(span, now_ms);
        if covered < span {
            result.verdict = Verdict::Pending {
                reason: format!(
                    "{} of {} observed",
                    format_duration_ms(covered),
                    format_duration_ms(span)
                ),
            };
            return result;
        }
        let slice_text = format_duration_ms(slice_ms);
        let slices = span.div_ceil(slice_ms).max(1);
        for slice in 0..slices {
            let end = now_ms.saturating_sub(slice * slice_ms);
            let value = match self.condition {
                Condition::WithinReference { .. } => metric.level_value(tsdb, slice_ms, end),
                _ => metric.value(tsdb, slice_ms, end),
            };
            let Some(value) = value else {
                result.verdict = Verdict::Pending {
                    reason: format!(
                        "no data for the {slice_text} ending {} ago",
                        format_duration_ms(now_ms - end)
                    ),
                };
                return result;
            };
            if slice == 0 {
                result.value = Some(value);
            }
            match self.holds(metric.better, value) {
                Err(reason) => {
                    result.verdict = Verdict::Pending { reason };
                    return result;
                }
                Ok(false) => {
                    let when = if slice == 0 {
                        format!("the last {slice_text}")
                    } else {
                        format!(
                            "the {slice_text} ending {} ago",
                            format_duration_ms(now_ms - end)
                        )
                    };
                    let outside = match (&self.condition, &self.reference) {
                        (Condition::WithinReference { threshold }, Some(reference)) => format!(
                            ", outside {} (the level before the anomaly)",
                            reference.band_text(*threshold)
                        ),
                        _ => String::new(),
                    };
                    result.verdict = Verdict::NotMet {
                        reason: format!(
                            "{} was {} over {when}{outside}",
                            self.metric,
                            trim_float(value)
                        ),
                    };
                    return result;
                }
                Ok(true) => {}
            }
        }
        result.verdict = Verdict::Met;
        result
    }
}

/// Why a criterion was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CriterionError {
    UnknownMetric(String),
    Condition(String),
    /// A `within … of reference` condition without a usable reference.
    Reference(String),
}

/// Fills the baseline of every `no regression` criterion that lacks one,
/// from the hour before `now_ms`.
pub fn capture_baselines(
    criteria: &mut [Criterion],
    registry: &MetricRegistry,
    tsdb: &Tsdb,
    now_ms: u64,
) {
    for criterion in criteria {
        if let (Condition::NoRegression { .. }, None) = (&criterion.condition, criterion.baseline) {
            criterion.baseline = registry
                .get(&criterion.metric)
                .and_then(|metric| metric.value(tsdb, BASELINE_WINDOW_MS, now_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_print() {
        for (text, canonical) in [
            ("< 500ms", "< 500ms"),
            (">= 99.9%", ">= 99.9%"),
            ("> 99.9 %", "> 99.9%"),
            ("< 2s", "< 2s"),
            ("> 100/s", "> 100/s"),
            ("< 0.2", "< 0.2"),
            ("no regression", "no regression"),
            ("no regression within 2%", "no regression within 2%"),
            ("no regression (10%)", "no regression within 10%"),
            (
                "within 6 scales of reference",
                "within 6 scales of reference",
            ),
            (
                "within 1.5 scale of reference",
                "within 1.5 scales of reference",
            ),
        ] {
            let condition =
                Condition::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
            assert_eq!(condition.to_string(), canonical);
            assert_eq!(Condition::parse(canonical), Ok(condition));
        }
        for bad in [
            "",
            "500ms",
            "<< 5",
            "< fast",
            "no regression at all",
            "= 5",
            "< 5 parsecs",
            "within 0 scales of reference",
            "within six scales of reference",
            "within 6 scales",
        ] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn units_must_suit_the_metric() {
        let registry = MetricRegistry::builtin();
        let criterion = |metric: &str, condition: &str| Criterion {
            metric: metric.into(),
            condition: Condition::parse(condition).expect("parses"),
            duration: None,
            baseline: None,
            reference: None,
        };
        assert!(criterion("latency_p99", "< 500ms")
            .validate(&registry)
            .is_ok());
        assert!(criterion("error_ratio", "< 0.1%")
            .validate(&registry)
            .is_ok());
        assert!(matches!(
            criterion("latency_p99", "< 0.5").validate(&registry),
            Err(CriterionError::Condition(_))
        ));
        assert!(matches!(
            criterion("cold_start_p99", "< 500ms").validate(&registry),
            Err(CriterionError::UnknownMetric(_))
        ));
        assert_eq!(
            Sustain::parse("1h sustained"),
            Ok(Sustain(crate::quantity::HOUR_MS))
        );
        assert!(Sustain::parse("4d sustained").is_err());
        assert!(Sustain::parse("soon").is_err());
    }

    #[test]
    fn a_rise_at_or_under_the_declared_capacity_meets_a_reference_and_a_drop_never_does() {
        let mut reference = Reference {
            median: 100.0,
            scale: 2.0,
            direction: Direction::Both,
            capacity: None,
        };
        // The band is 100 ± 12.
        assert!(reference.holds(110.0, 6.0));
        assert!(!reference.holds(200.0, 6.0));
        assert!(!reference.holds(80.0, 6.0));
        reference.capacity = Some(250.0);
        assert!(reference.holds(200.0, 6.0));
        assert!(reference.holds(250.0, 6.0));
        assert!(!reference.holds(251.0, 6.0));
        assert!(!reference.holds(80.0, 6.0), "a drop is no rise");
        assert_eq!(
            reference.band_text(6.0),
            "100 ± 12, or a rise to at most 250 (the declared capacity)"
        );
        reference.direction = Direction::Down;
        assert!(!reference.holds(80.0, 6.0));
        assert_eq!(reference.band_text(6.0), "≥ 88");
        reference.capacity = Some(f64::NAN);
        assert!(reference.check().is_err());
    }

    #[test]
    fn a_reference_condition_needs_an_anomaly_metric_and_its_reference() {
        let objectives = crate::observe::objectives::parse(
            "a.yaml",
            "anomalies:\n  - name: request_rate\n    series: floodgate_requests_total\n",
        )
        .expect("objectives");
        let registry = MetricRegistry::for_objectives(&objectives).expect("registry");
        let reference = Reference {
            median: 100.0,
            scale: 2.0,
            direction: Direction::Both,
            capacity: None,
        };
        let criterion = |metric: &str, reference: Option<Reference>| Criterion {
            metric: metric.into(),
            condition: Condition::parse("within 6 scales of reference").expect("parses"),
            duration: None,
            baseline: None,
            reference,
        };
        assert_eq!(
            criterion("request_rate", Some(reference)).validate(&registry),
            Ok(())
        );
        assert!(matches!(
            criterion("throughput", Some(reference)).validate(&registry),
            Err(CriterionError::Condition(message)) if message.contains("anomaly's metric only")
        ));
        assert!(matches!(
            criterion("request_rate", None).validate(&registry),
            Err(CriterionError::Reference(_))
        ));
        let flat = Reference {
            scale: 0.0,
            ..reference
        };
        assert!(matches!(
            criterion("request_rate", Some(flat)).validate(&registry),
            Err(CriterionError::Reference(message)) if message.contains("scale")
        ));
        // The band: 100 ± 12 both ways; one side for a directed detector.
        assert!(reference.holds(112.0, 6.0) && reference.holds(88.0, 6.0));
        assert!(!reference.holds(112.5, 6.0) && !reference.holds(87.5, 6.0));
        let up = Reference {
            direction: Direction::Up,
            ..reference
        };
        assert!(up.holds(10.0, 6.0) && !up.holds(112.5, 6.0));
        assert_eq!(reference.band_text(6.0), "100 ± 12");
        assert_eq!(up.band_text(6.0), "≤ 112");
    }

    #[test]
    fn a_criterion_without_a_duration_is_judged_over_the_window_asked_for() {
        use crate::observe::tsdb::TsdbLimits;
        use crate::quantity::SECOND_MS;
        // Ten minutes of half the decisions over the limit, then ten
        // seconds of none, one scrape a second.
        let mut tsdb = Tsdb::new(TsdbLimits::default());
        let (mut ok, mut over) = (0u64, 0u64);
        for second in 0..=610u64 {
            ok += 10;
            if second <= 600 {
                over += 10;
            }
            let text = format!(
                "# TYPE floodgate_requests_total counter\n\
                 floodgate_requests_total{{code=\"ok\"}} {ok}\n\
                 floodgate_requests_total{{code=\"over_limit\"}} {over}\n"
            );
            let exposition = crate::observe::exposition::parse(&text).expect("exposition");
            tsdb.ingest(second * SECOND_MS, "", &exposition);
        }
        let registry = MetricRegistry::builtin();
        let criterion = |duration: Option<Sustain>| Criterion {
            metric: "over_limit_ratio".into(),
            condition: Condition::parse("< 1%").expect("parses"),
            duration,
            baseline: None,
            reference: None,
        };
        let now = 610 * SECOND_MS;
        let plain = criterion(None);
        // The default window (5m) still holds the rejections.
        assert!(matches!(
            plain.evaluate(&registry, &tsdb, now).verdict,
            Verdict::NotMet { .. }
        ));
        // The last ten seconds hold none.
        let result = plain.evaluate_over(&registry, &tsdb, now, 10 * SECOND_MS);
        assert_eq!(result.verdict, Verdict::Met, "{result:?}");
        assert_eq!(result.value, Some(0.0));
        // Five seconds earlier, the window still reaches back before the
        // change, and the reason names it.
        let result = plain.evaluate_over(&registry, &tsdb, now - 5 * SECOND_MS, 10 * SECOND_MS);
        match result.verdict {
            Verdict::NotMet { reason } => assert!(
                reason.starts_with("over_limit_ratio was ")
                    && reason.ends_with("over the last 10s"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        // A sustained criterion keeps its duration and 5-minute slices.
        let sustained = criterion(Some(Sustain(CRITERIA_STEP_MS)));
        assert!(matches!(
            sustained
                .evaluate_over(&registry, &tsdb, now, 10 * SECOND_MS)
                .verdict,
            Verdict::NotMet { .. }
        ));
    }
}
