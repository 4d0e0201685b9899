//! The canary judge: compares a canary's metric samples with a baseline's
//! and answers Successful, Failed, Inconclusive or Error (ADR 0008, §4).
//!
//! Each [`MetricCheck`] names a metric, the [`Direction`] in which a change
//! is bad, whether a failure is critical, the least number of samples each
//! side needs, and a [`Method`]:
//!
//! - [`Method::EffectSize`] compares medians: the metric fails when the
//!   canary's median moved in the bad direction by more than
//!   `max_relative_change` of the baseline's median *and* by more than
//!   `min_absolute_change` in absolute terms (the second bound keeps a move
//!   from 0.0001 to 0.0002 — +100% — from failing a canary).
//! - [`Method::MannWhitney`] runs a Mann-Whitney U test
//!   ([`mann_whitney_u`]): one-sided in the bad direction (two-sided for
//!   [`Direction::Either`]); the metric fails when p < `alpha`.
//!
//! The verdict ([`judge`]):
//!
//! 1. a check with invalid parameters, a metric with a non-finite sample,
//!    or a check naming a metric neither side reported is an `Error`, and
//!    any `Error` makes the verdict `Error` (never a pass);
//! 2. a metric with fewer than `min_samples` (at least 1) on either side is
//!    `NoData`; when every metric is `NoData` (or there is none) the verdict
//!    is `Inconclusive`;
//! 3. any critical `Fail` makes the verdict `Failed`;
//! 4. otherwise score = 100 · pass / (pass + fail): at least
//!    [`Thresholds::pass`] → `Successful`, below [`Thresholds::marginal`] →
//!    `Failed`, in between → `Inconclusive`.
//!
//! Pure: no I/O, no clock, no randomness; the same samples always give the
//! same verdict.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Which change of a metric is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A rise is bad (error ratio, latency).
    Increase,
    /// A fall is bad (throughput, success ratio).
    Decrease,
    /// Any change is bad.
    Either,
}

impl Direction {
    /// `increase`, `decrease` or `either`, as written in a policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Increase => "increase",
            Direction::Decrease => "decrease",
            Direction::Either => "either",
        }
    }
}

/// How a metric's canary samples are compared with its baseline samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Compare medians: fail when the change in the bad direction exceeds
    /// `max_relative_change` (a fraction of the baseline's median: 0.1 is
    /// 10%) and its absolute size exceeds `min_absolute_change`. With a
    /// baseline median of 0 only the absolute bound applies.
    EffectSize {
        /// The largest tolerated relative change (≥ 0).
        max_relative_change: f64,
        /// Changes this small or smaller never fail (≥ 0).
        min_absolute_change: f64,
    },
    /// Mann-Whitney U test: fail when p < `alpha` (0 < alpha < 1) and the
    /// medians differ in the bad direction by more than
    /// `min_absolute_change`: a significant but immaterial shift (tens of
    /// microseconds of p99) passes.
    MannWhitney {
        /// The significance level.
        alpha: f64,
        /// Shifts of the median this small or smaller never fail (≥ 0).
        #[serde(default)]
        min_absolute_change: f64,
    },
}

/// One metric to judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricCheck {
    /// The metric's key in the canary and baseline maps.
    pub name: String,
    /// Which change is bad.
    pub direction: Direction,
    /// A critical metric's failure fails the whole canary.
    pub critical: bool,
    /// How the samples are compared.
    pub method: Method,
    /// Fewer samples than this on either side → `NoData` (0 counts as 1).
    pub min_samples: usize,
}

/// Score thresholds on a 0–100 scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// A score at or above this is `Successful` (default 95).
    pub pass: f64,
    /// A score below this is `Failed` (default 75); in between is
    /// `Inconclusive`.
    pub marginal: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

impl Thresholds {
    /// Checks 0 ≤ marginal ≤ pass ≤ 100; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        for (field, value) in [("pass", self.pass), ("marginal", self.marginal)] {
            if !(0.0..=100.0).contains(&value) {
                return Err(format!("{field} must be between 0 and 100, not {value}"));
            }
        }
        if self.marginal > self.pass {
            return Err(format!(
                "marginal ({}) must not be above pass ({})",
                self.marginal, self.pass
            ));
        }
        Ok(())
    }
}

/// The canary's overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Deploy on.
    Successful,
    /// Undo the canary change.
    Failed,
    /// Not enough evidence either way: a human decides.
    Inconclusive,
    /// The judgement itself went wrong (bad data or checks); never a pass.
    Error,
}

/// One metric's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricOutcome {
    /// No bad change found.
    Pass,
    /// A bad change found.
    Fail,
    /// Too few samples on a side to judge.
    NoData,
    /// The data or the check is unusable.
    Error,
}

/// A side's samples in brief. `median` and `mean` are absent when the side
/// has no samples or a non-finite one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How many samples the side has.
    pub count: usize,
    /// Their median (the mean of the middle two for an even count).
    pub median: Option<f64>,
    /// Their arithmetic mean.
    pub mean: Option<f64>,
}

impl Summary {
    /// Summarises samples.
    pub fn of(values: &[f64]) -> Summary {
        if values.is_empty() || values.iter().any(|value| !value.is_finite()) {
            return Summary {
                count: values.len(),
                median: None,
                mean: None,
            };
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        Summary {
            count: values.len(),
            median: Some(median),
            mean: Some(mean),
        }
    }
}

/// One metric's judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricVerdict {
    /// The metric.
    pub name: String,
    /// Its outcome.
    pub outcome: MetricOutcome,
    /// Whether the check was critical.
    pub critical: bool,
    /// The canary's samples in brief.
    pub canary: Summary,
    /// The baseline's samples in brief.
    pub baseline: Summary,
    /// (canary median − baseline median) / |baseline median|, when both
    /// medians exist and the baseline's is not 0.
    pub relative_change: Option<f64>,
    /// The Mann-Whitney p-value (in the bad direction), for that method.
    pub p_value: Option<f64>,
    /// Why, in a sentence.
    pub reason: String,
}

/// The judge's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The overall outcome.
    pub outcome: Outcome,
    /// 100 · pass / (pass + fail) over the metrics that passed or failed;
    /// absent when none did.
    pub score: Option<f64>,
    /// Each check's judgement, in the order of the checks.
    pub metrics: Vec<MetricVerdict>,
    /// Why, in a sentence.
    pub reason: String,
}

/// Judges a canary against its baseline. `canary` and `baseline` map metric
/// names to samples (any order); metrics no check names are ignored.
pub fn judge(
    checks: &[MetricCheck],
    canary: &BTreeMap<String, Vec<f64>>,
    baseline: &BTreeMap<String, Vec<f64>>,
    thresholds: Thresholds,
) -> Verdict {
    let mut seen = BTreeSet::new();
    let metrics: Vec<MetricVerdict> = checks
        .iter()
        .map(|check| {
            let duplicate = !seen.insert(check.name.as_str());
            judge_metric(check, canary, baseline, duplicate)
        })
        .collect();
    let count = |outcome: MetricOutcome| {
        metrics
            .iter()
            .filter(|metric| metric.outcome == outcome)
            .count()
    };
    let (pass, fail) = (count(MetricOutcome::Pass), count(MetricOutcome::Fail));
    let score = (pass + fail > 0).then(|| 100.0 * pass as f64 / (pass + fail) as f64);
    let names = |keep: &dyn Fn(&MetricVerdict) -> bool| {
        metrics
            .iter()
            .filter(|metric| keep(metric))
            .map(|metric| metric.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let verdict = |outcome: Outcome, reason: String| Verdict {
        outcome,
        score,
        metrics: metrics.clone(),
        reason,
    };
    if let Err(message) = thresholds.validate() {
        return verdict(Outcome::Error, format!("invalid thresholds: {message}"));
    }
    if count(MetricOutcome::Error) > 0 {
        return verdict(
            Outcome::Error,
            format!(
                "could not judge {}",
                names(&|metric| metric.outcome == MetricOutcome::Error)
            ),
        );
    }
    if metrics.is_empty() {
        return verdict(Outcome::Inconclusive, "no metrics to judge".into());
    }
    if pass + fail == 0 {
        return verdict(
            Outcome::Inconclusive,
            "too few samples to judge any metric".into(),
        );
    }
    let critical = names(&|metric| metric.critical && metric.outcome == MetricOutcome::Fail);
    if !critical.is_empty() {
        return verdict(
            Outcome::Failed,
            format!("critical metric failed: {critical}"),
        );
    }
    let score_value = 100.0 * pass as f64 / (pass + fail) as f64;
    let summary = format!(
        "score {} ({pass} passed, {fail} failed)",
        crate::quantity::trim_float(score_value)
    );
    if score_value >= thresholds.pass {
        verdict(
            Outcome::Successful,
            format!("{summary} is at or above pass ({})", thresholds.pass),
        )
    } else if score_value < thresholds.marginal {
        verdict(
            Outcome::Failed,
            format!("{summary} is below marginal ({})", thresholds.marginal),
        )
    } else {
        verdict(
            Outcome::Inconclusive,
            format!(
                "{summary} is between marginal ({}) and pass ({})",
                thresholds.marginal, thresholds.pass
            ),
        )
    }
}

/// Checks a check's own parameters; the error says which.
fn validate_check(check: &MetricCheck) -> Result<(), String> {
    match check.method {
        Method::EffectSize {
            max_relative_change,
            min_absolute_change,
        } => {
            if !(max_relative_change.is_finite() && max_relative_change >= 0.0) {
                return Err(format!(
                    "max_relative_change must be a number ≥ 0, not {max_relative_change}"
                ));
            }
            if !(min_absolute_change.is_finite() && min_absolute_change >= 0.0) {
                return Err(format!(
                    "min_absolute_change must be a number ≥ 0, not {min_absolute_change}"
                ));
            }
        }
        Method::MannWhitney {
            alpha,
            min_absolute_change,
        } => {
            if !(alpha > 0.0 && alpha < 1.0) {
                return Err(format!("alpha must be above 0 and below 1, not {alpha}"));
            }
            if !(min_absolute_change.is_finite() && min_absolute_change >= 0.0) {
                return Err(format!(
                    "min_absolute_change must be a number ≥ 0, not {min_absolute_change}"
                ));
            }
        }
    }
    Ok(())
}

fn judge_metric(
    check: &MetricCheck,
    canary: &BTreeMap<String, Vec<f64>>,
    baseline: &BTreeMap<String, Vec<f64>>,
    duplicate: bool,
) -> MetricVerdict {
    let canary_values = canary.get(&check.name);
    let baseline_values = baseline.get(&check.name);
    let canary_samples = canary_values.map(Vec::as_slice).unwrap_or_default();
    let baseline_samples = baseline_values.map(Vec::as_slice).unwrap_or_default();
    let mut verdict = MetricVerdict {
        name: check.name.clone(),
        outcome: MetricOutcome::Error,
        critical: check.critical,
        canary: Summary::of(canary_samples),
        baseline: Summary::of(baseline_samples),
        relative_change: None,
        p_value: None,
        reason: String::new(),
    };
    let error = |mut verdict: MetricVerdict, reason: String| {
        verdict.outcome = MetricOutcome::Error;
        verdict.reason = reason;
        verdict
    };
    if duplicate {
        return error(verdict, "the metric is checked more than once".into());
    }
    if let Err(message) = validate_check(check) {
        return error(verdict, format!("invalid check: {message}"));
    }
    if canary_values.is_none() && baseline_values.is_none() {
        return error(
            verdict,
            "neither the canary nor the baseline reported the metric".into(),
        );
    }
    for (side, samples) in [("canary", canary_samples), ("baseline", baseline_samples)] {
        if let Some(bad) = samples.iter().find(|value| !value.is_finite()) {
            return error(
                verdict,
                format!("the {side} has a non-finite sample ({bad})"),
            );
        }
    }
    let needed = check.min_samples.max(1);
    if canary_samples.len() < needed || baseline_samples.len() < needed {
        verdict.outcome = MetricOutcome::NoData;
        verdict.reason = format!(
            "{} canary and {} baseline samples; {needed} needed on each side",
            canary_samples.len(),
            baseline_samples.len()
        );
        return verdict;
    }
    // Both sides are non-empty and finite here, so both medians exist.
    let (Some(canary_median), Some(baseline_median)) =
        (verdict.canary.median, verdict.baseline.median)
    else {
        return error(verdict, "no median".into());
    };
    let change = canary_median - baseline_median;
    verdict.relative_change = (baseline_median != 0.0).then(|| change / baseline_median.abs());
    let (failed, reason) = match check.method {
        Method::EffectSize {
            max_relative_change,
            min_absolute_change,
        } => {
            // The change in the bad direction: positive when bad.
            let bad_change = match check.direction {
                Direction::Increase => change,
                Direction::Decrease => -change,
                Direction::Either => change.abs(),
            };
            let relative_exceeded = match verdict.relative_change {
                Some(_) => bad_change / baseline_median.abs() > max_relative_change,
                None => true,
            };
            let absolute_exceeded = bad_change > min_absolute_change;
            let failed = relative_exceeded && absolute_exceeded;
            let moved = format!("median {} → {}", fmt(baseline_median), fmt(canary_median));
            let reason = match verdict.relative_change {
                Some(relative) if failed => format!(
                    "{moved} ({}%): beyond {}% and {} in the bad direction ({})",
                    signed(relative * 100.0),
                    fmt(max_relative_change * 100.0),
                    fmt(min_absolute_change),
                    check.direction.as_str()
                ),
                Some(relative) => format!(
                    "{moved} ({}%): within {}% or {} in the bad direction ({})",
                    signed(relative * 100.0),
                    fmt(max_relative_change * 100.0),
                    fmt(min_absolute_change),
                    check.direction.as_str()
                ),
                None if failed => format!(
                    "{moved}: the baseline is 0 and the change exceeds {} in the bad direction ({})",
                    fmt(min_absolute_change),
                    check.direction.as_str()
                ),
                None => format!(
                    "{moved}: the baseline is 0 and the change is within {} in the bad direction ({})",
                    fmt(min_absolute_change),
                    check.direction.as_str()
                ),
            };
            (failed, reason)
        }
        Method::MannWhitney {
            alpha,
            min_absolute_change,
        } => {
            let test = mann_whitney_u(canary_samples, baseline_samples);
            let (p, alternative) = match check.direction {
                Direction::Increase => (test.p_greater, "canary greater than baseline"),
                Direction::Decrease => (test.p_less, "canary less than baseline"),
                Direction::Either => (test.p_two_sided, "canary differs from baseline"),
            };
            verdict.p_value = Some(p);
            let shift = match (verdict.canary.median, verdict.baseline.median) {
                (Some(canary), Some(baseline)) => match check.direction {
                    Direction::Increase => canary - baseline,
                    Direction::Decrease => baseline - canary,
                    Direction::Either => (canary - baseline).abs(),
                },
                _ => f64::INFINITY,
            };
            let significant = p < alpha;
            let material = shift > min_absolute_change;
            let failed = significant && material;
            let mut reason = format!(
                "Mann-Whitney U = {}, p = {} for {alternative}: {} alpha {}",
                fmt(test.u_a),
                format_p(p),
                if significant { "below" } else { "not below" },
                fmt(alpha)
            );
            if significant && !material {
                reason.push_str(&format!(
                    ", but the median moved {} in the bad direction, within {}",
                    fmt(shift.max(0.0)),
                    fmt(min_absolute_change)
                ));
            }
            (failed, reason)
        }
    };
    verdict.outcome = if failed {
        MetricOutcome::Fail
    } else {
        MetricOutcome::Pass
    };
    verdict.reason = reason;
    verdict
}

fn fmt(value: f64) -> String {
    crate::quantity::trim_float(value)
}

fn signed(value: f64) -> String {
    if value >= 0.0 {
        format!("+{}", fmt(value))
    } else {
        fmt(value)
    }
}

/// A p-value to four significant digits (`0.006093`, `0.05310`), in
/// scientific notation below 10⁻⁴.
fn format_p(p: f64) -> String {
    if p != 0.0 && p < 1e-4 {
        return format!("{p:.3e}");
    }
    if p == 0.0 {
        return "0".into();
    }
    let decimals = (3 - p.log10().floor() as i32).max(0) as usize;
    format!("{p:.decimals$}")
}

// ---------------------------------------------------------------------------
// Mann-Whitney U

/// The result of a Mann-Whitney U test of samples `a` and `b`.
///
/// `u_a` counts the pairs (x from `a`, y from `b`) with x > y, plus half
/// the ties; `u_b` the reverse, so `u_a + u_b = n·m`. `z` is
/// (u_a − n·m/2) / σ without continuity correction (positive when `a`
/// tends to be larger). The p-values use the normal approximation with the
/// tie correction of σ and a continuity correction of 0.5, as SciPy's
/// `mannwhitneyu(a, b, method="asymptotic")` does: `p_greater` for the
/// alternative "a is stochastically greater than b", `p_less` for "a is
/// less", `p_two_sided` for "they differ" (capped at 1). When σ is 0 (an
/// empty side, or every value equal) there is no evidence of a difference:
/// `z` is 0 and every p-value 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// U for `a`.
    pub u_a: f64,
    /// U for `b`.
    pub u_b: f64,
    /// The standardised U of `a`, uncorrected for continuity.
    pub z: f64,
    /// P(U this small or smaller) for "a is less than b".
    pub p_less: f64,
    /// P(U this large or larger) for "a is greater than b".
    pub p_greater: f64,
    /// Two-sided p-value.
    pub p_two_sided: f64,
}

/// The Mann-Whitney U test of `a` against `b` (see [`MannWhitney`]). Ties
/// get average ranks. Values are compared with `f64::total_cmp`; callers
/// should pass finite values ([`judge`] refuses others).
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> MannWhitney {
    let (n, m) = (a.len() as f64, b.len() as f64);
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&value| (value, true))
        .chain(b.iter().map(|&value| (value, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let total = all.len();
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0; // Σ (t³ − t) over groups of ties
    let mut start = 0;
    while start < total {
        let mut end = start + 1;
        while end < total && all[end].0.total_cmp(&all[start].0).is_eq() {
            end += 1;
        }
        // Ranks start..end (0-based) share the average 1-based rank.
        let average = (start + 1 + end) as f64 / 2.0;
        let in_a = all[start..end].iter().filter(|(_, from_a)| *from_a).count();
        rank_sum_a += average * in_a as f64;
        let tied = (end - start) as f64;
        tie_term += tied * tied * tied - tied;
        start = end;
    }
    let u_a = rank_sum_a - n * (n + 1.0) / 2.0;
    let u_b = n * m - u_a;
    let mean = n * m / 2.0;
    let big_n = n + m;
    let variance = if big_n > 1.0 {
        n * m / 12.0 * ((big_n + 1.0) - tie_term / (big_n * (big_n - 1.0)))
    } else {
        0.0
    };
    // Rounding can leave a hair above zero when every value ties.
    if variance <= 1e-12 * (n * m).max(1.0) {
        return MannWhitney {
            u_a,
            u_b,
            z: 0.0,
            p_less: 1.0,
            p_greater: 1.0,
            p_two_sided: 1.0,
        };
    }
    let sigma = variance.sqrt();
    let p_greater = normal_sf((u_a - mean - 0.5) / sigma);
    let p_less = normal_sf((u_b - mean - 0.5) / sigma);
    let p_two_sided = (2.0 * normal_sf((u_a.max(u_b) - mean - 0.5) / sigma)).min(1.0);
    MannWhitney {
        u_a,
        u_b,
        z: (u_a - mean) / sigma,
        p_less: p_less.min(1.0),
        p_greater: p_greater.min(1.0),
        p_two_sided,
    }
}

// ---------------------------------------------------------------------------
// the normal distribution

/// The complementary error function erfc(x) = 1 − erf(x), by the Chebyshev
/// fit of Numerical Recipes (2nd ed., §6.2, `erfcc`): fractional error
/// below 1.2 × 10⁻⁷ everywhere, so tail probabilities keep their relative
/// accuracy (unlike 1 − erf(x) with an absolute-error approximation).
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * poly.exp();
    if x >= 0.0 {
        value
    } else {
        2.0 - value
    }
}

/// The standard normal CDF Φ(x) = erfc(−x/√2)/2, relative error below
/// 1.2 × 10⁻⁷ (see [`erfc`]).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The standard normal survival function 1 − Φ(x) = erfc(x/√2)/2, with the
/// same relative accuracy in the upper tail.
pub fn normal_sf(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

// ---- harm: the values a change newly rejects ------------------------------

/// What one side of a canary admitted, by descriptor value
/// (`DOMAIN/k=v|k=v`): hits and rejected hits over the services' top-values
/// window ([`admission_of`]).
pub type Admission = BTreeMap<String, (u64, u64)>;

/// Hits a value must show on the canary before its rejections are judged
/// (two samples of the services' one-in-eight hit sampling).
pub const HARM_MIN_HITS: u64 = 16;
/// How much more of a value's hits the canary may reject than the baseline
/// before it is harm: ten points.
pub const HARM_MIN_RISE: f64 = 0.1;

/// A value the canary rejects and the baseline admits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Harm {
    /// `DOMAIN/k=v|k=v`.
    pub value: String,
    pub canary_hits: u64,
    /// Share of its hits the canary rejected.
    pub canary_rejected: f64,
    /// Share the baseline rejected (0 when the baseline did not see it).
    pub baseline_rejected: f64,
}

/// What each descriptor value sent and had rejected by the limits `only`
/// names (`DOMAIN/NAME`; `None`: every limit), summed over the given
/// `/v1/state` documents (their limits' `top_values`). A value several
/// limits count is counted once per document, as the most any one limit
/// saw, with the most any one limit rejected.
pub fn admission_of<'a>(
    states: impl IntoIterator<Item = &'a serde_json::Value>,
    only: Option<&[String]>,
) -> Admission {
    let mut total = Admission::new();
    for state in states {
        let mut this = Admission::new();
        for limit in state["limits"].as_array().into_iter().flatten() {
            let domain = limit["domain"].as_str().unwrap_or("");
            let name = limit["name"].as_str().unwrap_or("");
            if only.is_some_and(|only| !only.iter().any(|l| *l == format!("{domain}/{name}"))) {
                continue;
            }
            for usage in limit["top_values"]["values"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let Some(value) = usage["value"].as_str() else {
                    continue;
                };
                let hits = usage["hits"].as_u64().unwrap_or(0);
                let over = usage["over"].as_u64().unwrap_or(0);
                let entry = this.entry(format!("{domain}/{value}")).or_default();
                entry.0 = entry.0.max(hits);
                entry.1 = entry.1.max(over);
            }
        }
        for (value, (hits, over)) in this {
            let entry = total.entry(value).or_default();
            entry.0 = entry.0.saturating_add(hits);
            entry.1 = entry.1.saturating_add(over);
        }
    }
    total
}

/// The values a change harms: those it does not name (`named`, as
/// `DOMAIN/k=v|k=v`: what the change means to limit) that the canary
/// rejects, with at least [`HARM_MIN_HITS`] hits, at least
/// [`HARM_MIN_RISE`] more of than the baseline does. A change may reject
/// what it names; anything else it newly rejects is a tenant it hurts.
/// Most harmed first.
pub fn harm(canary: &Admission, baseline: &Admission, named: &[String]) -> Vec<Harm> {
    let share = |(hits, over): (u64, u64)| {
        if hits == 0 {
            0.0
        } else {
            over.min(hits) as f64 / hits as f64
        }
    };
    let mut harmed: Vec<Harm> = canary
        .iter()
        .filter(|(value, _)| !named.iter().any(|name| name == *value))
        .filter(|(_, (hits, _))| *hits >= HARM_MIN_HITS)
        .filter_map(|(value, counts)| {
            let canary_rejected = share(*counts);
            let baseline_rejected = baseline.get(value).map_or(0.0, |counts| share(*counts));
            (canary_rejected - baseline_rejected >= HARM_MIN_RISE).then(|| Harm {
                value: value.clone(),
                canary_hits: counts.0,
                canary_rejected,
                baseline_rejected,
            })
        })
        .collect();
    harmed.sort_by(|a, b| {
        (b.canary_rejected - b.baseline_rejected)
            .total_cmp(&(a.canary_rejected - a.baseline_rejected))
    });
    harmed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(domain: &str, values: &[(&str, u64, u64)]) -> serde_json::Value {
        limit_state(domain, "per_org", values)
    }

    fn limit_state(domain: &str, name: &str, values: &[(&str, u64, u64)]) -> serde_json::Value {
        let values: Vec<serde_json::Value> = values
            .iter()
            .map(|(value, hits, over)| {
                serde_json::json!({"value": value, "entries": [], "hits": hits, "over": over, "error": 0})
            })
            .collect();
        serde_json::json!({"limits": [{
            "domain": domain,
            "name": name,
            "top_values": {"window_seconds": 60, "values": values},
        }]})
    }

    #[test]
    fn a_value_the_canary_newly_rejects_is_harm_unless_the_change_names_it() {
        let canary = admission_of(
            [&state(
                "api",
                &[
                    ("org=big", 400, 300),
                    ("org=small", 80, 40),
                    ("org=tiny", 8, 8),
                    ("org=ok", 100, 0),
                ],
            )],
            None,
        );
        let baseline = admission_of(
            [
                &state(
                    "api",
                    &[("org=big", 200, 0), ("org=small", 40, 0), ("org=ok", 50, 0)],
                ),
                &state("api", &[("org=big", 200, 0), ("org=small", 40, 20)]),
            ],
            None,
        );
        assert_eq!(baseline["api/org=small"], (80, 20));
        // The throttle names org=big: rejecting it is the point.
        let harmed = harm(&canary, &baseline, &["api/org=big".to_owned()]);
        assert_eq!(harmed.len(), 1, "{harmed:?}");
        assert_eq!(harmed[0].value, "api/org=small");
        assert!((harmed[0].canary_rejected - 0.5).abs() < 1e-9);
        assert!((harmed[0].baseline_rejected - 0.25).abs() < 1e-9);
        // Unnamed, org=big is harmed too, and first; too few hits are not judged.
        let harmed = harm(&canary, &baseline, &[]);
        let values: Vec<&str> = harmed.iter().map(|h| h.value.as_str()).collect();
        assert_eq!(values, ["api/org=big", "api/org=small"]);
        // Rejected as much as before: no harm.
        assert!(harm(&baseline, &baseline, &[]).is_empty());
        // Only the limits the change touched are judged: a limit it left
        // alone may reject as it did (a failure policy's local share, say).
        let other = limit_state("api", "per_key", &[("org=small", 80, 80)]);
        let touched = vec!["api/per_org".to_owned()];
        assert_eq!(admission_of([&other], Some(&touched)), Admission::new());
        assert_eq!(admission_of([&other], Some(&[])), Admission::new());
        assert_eq!(admission_of([&other], None)["api/org=small"], (80, 80));
    }
}
