//! The pipeline policy file (`--policy`, ADR 0008 §5): approval gates,
//! freeze windows, per-ticket budgets, the canary's checks and the verify
//! stage's cap.
//!
//! ```yaml
//! approval:
//!   min_risk: high          # low | medium | high | never: actions at or above need a human
//!   actions: [set_failure_policy]   # these always need a human
//!   timeout: 30m            # no answer by then → the ticket escalates
//! freeze_windows:
//!   - name: peak-hours
//!     days: [mon, tue, wed, thu, fri]   # weekly, UTC; omitted = every day
//!     start: "17:00"
//!     end: "21:00"          # end <= start wraps past midnight
//!   - name: launch-day
//!     from: 2026-12-01T00:00:00Z        # one-off (RFC 3339, UTC 'Z' or offset)
//!     until: 2026-12-02T00:00:00Z
//! budgets:
//!   proposals_per_ticket: 3
//!   actions_per_ticket: 10
//!   time_per_ticket: 2h
//! canary:
//!   duration: 2m
//!   thresholds: {pass: 95, marginal: 75}
//!   metrics:
//!     - name: error_ratio
//!       direction: increase
//!       critical: true
//!       effect_size: {max_relative_change: 0.1, min_absolute_change: 0.001}
//!       min_samples: 3
//! verify:
//!   max_duration: 2h        # cap on waiting for criteria to be met and held
//!   fail_after: 15m         # optional: criteria still plainly not met this long after judging begins fail
//!   criteria_window: 5m     # a criterion without a duration: held over this long after the deploy
//! ```
//!
//! Every section and every field with a default may be omitted; an empty
//! file is [`Policy::default`]. The defaults:
//!
//! | field | default |
//! |---|---|
//! | `approval.min_risk` | `high` |
//! | `approval.actions` | none |
//! | `approval.timeout` | `30m` |
//! | `freeze_windows` | none |
//! | `freeze_windows[].days` | every day |
//! | `budgets.proposals_per_ticket` | 3 |
//! | `budgets.actions_per_ticket` | 10 |
//! | `budgets.time_per_ticket` | `2h` |
//! | `canary.duration` | `2m` |
//! | `canary.thresholds` | `{pass: 95, marginal: 75}` |
//! | `canary.metrics` | `error_ratio` (increase, critical, effect size 10% and 0.001) and `latency_p99` (increase, Mann-Whitney alpha 0.05) |
//! | `canary.metrics[].critical` | `false` |
//! | `canary.metrics[].min_samples` | 5 |
//! | `canary.metrics[].effect_size.min_absolute_change` | 0 |
//! | `canary.metrics[].mann_whitney.alpha` | 0.05 |
//! | `verify.max_duration` | `2h` |
//! | `verify.fail_after` | none (wait for `max_duration`) |
//! | `verify.criteria_window` | `5m` (1s to 5m) |
//!
//! Canary metric names are the acceptance-criteria metrics
//! ([`crate::tickets::criteria::MetricRegistry`]): the pipeline samples each on the
//! canary and on the baseline.
//!
//! `verify.criteria_window` is how long after the deploy, and over what
//! window, the verify stage judges a criterion that states no duration
//! (everywhere else such a criterion is judged over the last 5 minutes,
//! [`crate::tickets::criteria::CRITERIA_STEP_MS`]). It may only shorten that: a
//! longer wait belongs in the criterion's own `duration`. Sustained
//! criteria keep their duration and 5-minute slices.
//!
//! Freeze windows: a weekly window starts on each of its `days` at `start`
//! (UTC) and lasts until `end`; `end` at or before `start` ends on the next
//! day (`end` equal to `start`: 24 hours), so a Friday 22:00–02:00 window
//! covers Saturday 01:00. A one-off window covers `from` up to `until`.
//! Starts are inclusive, ends exclusive.
//!
//! Errors name the file, the line, the field and the problem, displayed
//! `policy.yaml: line 7: freeze_windows[0].start: "25:00" is not a time of day (expected HH:MM, 00:00 to 23:59)`;
//! unknown fields are refused.

use crate::change::judge::{Direction, Method, MetricCheck, Thresholds};
use crate::quantity::{format_duration_ms, parse_scalar, DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};
use crate::tickets::criteria::CRITERIA_STEP_MS;
use floodgate_contract::actions::{self, Risk};
use floodgate_contract::time::parse_rfc3339_ms;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest policy file accepted.
pub const MAX_POLICY_BYTES: usize = 256 * 1024;
/// The most freeze windows: each is checked on every pipeline step.
pub const MAX_FREEZE_WINDOWS: usize = 64;
/// The most canary metrics: each is sampled on every target for the
/// canary's duration.
pub const MAX_CANARY_METRICS: usize = 32;
/// The most actions `approval.actions` may name (the catalog is smaller).
pub const MAX_APPROVAL_ACTIONS: usize = 64;
/// How far past `now` [`Policy::active_freeze`] follows a chain of
/// overlapping or adjacent windows: a schedule frozen around the clock
/// reports an end this far ahead (the pipeline asks again every step).
pub const FREEZE_LOOKAHEAD_MS: u64 = 8 * DAY_MS;
/// The shortest `verify.criteria_window`: one observe tick or so (a
/// window with no scrape in it has no value to judge).
pub const MIN_CRITERIA_WINDOW_MS: u64 = SECOND_MS;
/// The default `min_samples` of a canary metric.
pub const DEFAULT_MIN_SAMPLES: usize = 5;
/// The default Mann-Whitney significance level.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// The default canary's latency check: a shift of the p99 median this
/// small (seconds) never fails, however significant (half the 1 ms
/// latency objective of examples/objectives.yaml).
pub const DEFAULT_LATENCY_SHIFT_SECONDS: f64 = 0.0005;

// ---------------------------------------------------------------------------
// the policy

/// A pipeline policy. [`Policy::default`] is what runs without a file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Which actions need a human.
    pub approval: Approval,
    /// When deploys are held.
    pub freeze_windows: Vec<FreezeWindow>,
    /// What one ticket may spend.
    pub budgets: Budgets,
    /// How the canary is judged.
    pub canary: CanaryPolicy,
    /// The verify stage.
    pub verify: VerifyPolicy,
}

impl Default for Policy {
    /// Approval for high-risk actions, 30 minutes to answer; no freeze
    /// windows; 3 proposals, 10 actions and 2 hours per ticket; a 2-minute
    /// canary judged on `error_ratio` (critical) and `latency_p99` (a
    /// significant shift above 0.5 ms fails) with
    /// thresholds 95/75; verify waits at most 2 hours.
    fn default() -> Self {
        Policy {
            approval: Approval::default(),
            freeze_windows: Vec::new(),
            budgets: Budgets::default(),
            canary: CanaryPolicy::default(),
            verify: VerifyPolicy::default(),
        }
    }
}

/// The least risk that needs a human, or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MinRisk {
    /// Every action needs a human.
    Low,
    /// Medium- and high-risk actions need a human.
    Medium,
    /// High-risk actions need a human.
    High,
    /// No action needs a human for its risk (`approval.actions` still do).
    Never,
}

/// Approval gates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    /// Actions at or above this risk need a human (default `high`).
    pub min_risk: MinRisk,
    /// Actions that always need a human, whatever their risk.
    pub actions: Vec<String>,
    /// No answer within this long → the ticket escalates (default 30m).
    pub timeout_ms: u64,
}

impl Default for Approval {
    fn default() -> Self {
        Approval {
            min_risk: MinRisk::High,
            actions: Vec::new(),
            timeout_ms: 30 * MINUTE_MS,
        }
    }
}

/// A day of the week (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Every day, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// The weekday of a day counted from the Unix epoch (a Thursday).
    pub fn of_epoch_day(day: u64) -> Weekday {
        Weekday::ALL[((day + 3) % 7) as usize]
    }
}

/// A named period during which deploys are held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FreezeWindow {
    /// Its name, unique in the file.
    pub name: String,
    /// When it applies.
    pub schedule: Schedule,
}

/// When a freeze window applies.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Every listed day (UTC) from `start_minute` after midnight, for
    /// `duration_minutes` (at most 24 hours: past midnight when the end is
    /// at or before the start).
    Weekly {
        /// The days it starts on.
        days: Vec<Weekday>,
        /// Minutes after midnight UTC it starts (0–1439).
        start_minute: u32,
        /// How long it lasts, in minutes (1–1440).
        duration_minutes: u32,
    },
    /// Once, from `from_ms` (inclusive) to `until_ms` (exclusive).
    Once {
        /// Milliseconds since the epoch.
        from_ms: u64,
        /// Milliseconds since the epoch, after `from_ms`.
        until_ms: u64,
    },
}

impl FreezeWindow {
    /// The end of this window's occurrence covering `time_ms`, if one does.
    pub fn covering(&self, time_ms: u64) -> Option<u64> {
        match &self.schedule {
            Schedule::Once { from_ms, until_ms } => {
                (*from_ms <= time_ms && time_ms < *until_ms).then_some(*until_ms)
            }
            Schedule::Weekly {
                days,
                start_minute,
                duration_minutes,
            } => {
                let today = time_ms / DAY_MS;
                // An occurrence lasts at most a day: it began today or
                // yesterday.
                [today.checked_sub(1), Some(today)]
                    .into_iter()
                    .flatten()
                    .filter(|day| days.contains(&Weekday::of_epoch_day(*day)))
                    .filter_map(|day| {
                        // day · DAY_MS ≤ time_ms: only the additions can
                        // overflow, near the end of time.
                        let start =
                            (day * DAY_MS).saturating_add(u64::from(*start_minute) * MINUTE_MS);
                        let end = start.saturating_add(u64::from(*duration_minutes) * MINUTE_MS);
                        (start <= time_ms && time_ms < end).then_some(end)
                    })
                    .max()
            }
        }
    }
}

/// The freeze in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveFreeze {
    /// The first window (in file order) covering now.
    pub name: String,
    /// When deploys may resume: the end of the chain of windows that
    /// overlap or touch the one covering now.
    pub ends_ms: u64,
}

/// Per-ticket budgets, counted over the ticket's current episode (the
/// proposals since it was last closed: a reopened ticket starts afresh).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budgets {
    /// Change proposals one ticket may have (default 3); questions to a
    /// human (proposals without actions) do not count.
    pub proposals_per_ticket: u64,
    /// Actions its proposals may hold in all (default 10).
    pub actions_per_ticket: u64,
    /// Wall time from its first proposal (default 2h).
    pub time_per_ticket_ms: u64,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            proposals_per_ticket: 3,
            actions_per_ticket: 10,
            time_per_ticket_ms: 2 * HOUR_MS,
        }
    }
}

/// What a ticket has spent, counting what is about to be spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BudgetUsage {
    /// Proposals, the new one included.
    pub proposals: u64,
    /// Actions in all its proposals, the new one's included.
    pub actions: u64,
    /// Milliseconds since its first proposal.
    pub elapsed_ms: u64,
}

/// Which budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetKind {
    /// `budgets.proposals_per_ticket`.
    Proposals,
    /// `budgets.actions_per_ticket`.
    Actions,
    /// `budgets.time_per_ticket` (milliseconds).
    Time,
}

impl BudgetKind {
    /// The field of the policy file: `budgets.proposals_per_ticket`.
    pub fn field(self) -> &'static str {
        match self {
            BudgetKind::Proposals => "budgets.proposals_per_ticket",
            BudgetKind::Actions => "budgets.actions_per_ticket",
            BudgetKind::Time => "budgets.time_per_ticket",
        }
    }
}

/// A budget used up: `used` is above `limit` (milliseconds for time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetExceeded {
    /// Which budget.
    pub which: BudgetKind,
    /// Its limit.
    pub limit: u64,
    /// What was used.
    pub used: u64,
}

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (used, limit) = match self.which {
            BudgetKind::Time => (
                format_duration_ms(self.used),
                format_duration_ms(self.limit),
            ),
            _ => (self.used.to_string(), self.limit.to_string()),
        };
        write!(
            f,
            "{} exceeded: {used} used, the limit is {limit}",
            self.which.field()
        )
    }
}

impl std::error::Error for BudgetExceeded {}

/// The canary stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryPolicy {
    /// How long the canary runs before it is judged (default 2m).
    pub duration_ms: u64,
    /// Score thresholds (default 95 / 75).
    pub thresholds: Thresholds,
    /// The metrics judged.
    pub metrics: Vec<MetricCheck>,
}

impl Default for CanaryPolicy {
    fn default() -> Self {
        CanaryPolicy {
            duration_ms: 2 * MINUTE_MS,
            thresholds: Thresholds::default(),
            metrics: vec![
                MetricCheck {
                    name: "error_ratio".into(),
                    direction: Direction::Increase,
                    critical: true,
                    method: Method::EffectSize {
                        max_relative_change: 0.1,
                        min_absolute_change: 0.001,
                    },
                    min_samples: DEFAULT_MIN_SAMPLES,
                },
                MetricCheck {
                    name: "latency_p99".into(),
                    direction: Direction::Increase,
                    critical: false,
                    method: Method::MannWhitney {
                        alpha: DEFAULT_ALPHA,
                        min_absolute_change: DEFAULT_LATENCY_SHIFT_SECONDS,
                    },
                    min_samples: DEFAULT_MIN_SAMPLES,
                },
            ],
        }
    }
}

/// The verify stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VerifyPolicy {
    /// The longest wait for the criteria to be met and held (default 2h).
    pub max_duration_ms: u64,
    /// Fail fast: once judging has begun, criteria still not met this
    /// long after (at least one judged not met, not merely pending) fail
    /// verification without waiting for `max_duration` (default: none).
    pub fail_after_ms: Option<u64>,
    /// The window a criterion without a duration is judged over, from
    /// this long after the deploy (default and at most
    /// [`CRITERIA_STEP_MS`], at least [`MIN_CRITERIA_WINDOW_MS`]).
    pub criteria_window_ms: u64,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        VerifyPolicy {
            max_duration_ms: 2 * HOUR_MS,
            fail_after_ms: None,
            criteria_window_ms: CRITERIA_STEP_MS,
        }
    }
}

impl Policy {
    /// Parses a policy file; `file` names it in errors. An empty file (or
    /// one of comments only) is the default policy.
    pub fn parse(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let raw: Option<RawPolicy> = floodgate_contract::yaml::load(file, text, MAX_POLICY_BYTES)
            .map_err(|error| PolicyError {
            message: plain_types(&error.message),
            ..error
        })?;
        let raw = raw.unwrap_or_default();
        raw.build()
            .map_err(|(path, message)| PolicyError::at_path(file, text, path, message))
    }

    /// Why `action` (of catalog risk `risk`) needs a human's approval, or
    /// `None` when it does not.
    pub fn needs_approval(&self, action: &str, risk: Risk) -> Option<String> {
        if self.approval.actions.iter().any(|named| named == action) {
            return Some(format!("approval.actions names {action}"));
        }
        let threshold = match self.approval.min_risk {
            MinRisk::Never => return None,
            MinRisk::Low => Risk::Low,
            MinRisk::Medium => Risk::Medium,
            MinRisk::High => Risk::High,
        };
        (risk >= threshold).then(|| {
            format!(
                "{action} is {} risk, at or above approval.min_risk ({})",
                risk_name(risk),
                risk_name(threshold)
            )
        })
    }

    /// The freeze covering `now_ms`, if any: the first window (in file
    /// order) covering it, and when the chain of windows overlapping or
    /// touching it ends (followed at most [`FREEZE_LOOKAHEAD_MS`] ahead).
    pub fn active_freeze(&self, now_ms: u64) -> Option<ActiveFreeze> {
        let latest_end = |time_ms: u64| {
            self.freeze_windows
                .iter()
                .filter_map(|window| window.covering(time_ms))
                .max()
        };
        let name = self
            .freeze_windows
            .iter()
            .find(|window| window.covering(now_ms).is_some())?
            .name
            .clone();
        let mut ends_ms = latest_end(now_ms)?;
        let horizon = now_ms.saturating_add(FREEZE_LOOKAHEAD_MS);
        // Each step moves the end forward by at least a minute, and stops
        // at the horizon: bounded.
        while ends_ms < horizon {
            match latest_end(ends_ms) {
                Some(next) if next > ends_ms => ends_ms = next,
                _ => break,
            }
        }
        Some(ActiveFreeze { name, ends_ms })
    }

    /// Checks a ticket's spending against the budgets: the first budget
    /// whose use is above its limit (proposals, then actions, then time).
    pub fn check_budget(&self, usage: BudgetUsage) -> Result<(), BudgetExceeded> {
        for (which, limit, used) in [
            (
                BudgetKind::Proposals,
                self.budgets.proposals_per_ticket,
                usage.proposals,
            ),
            (
                BudgetKind::Actions,
                self.budgets.actions_per_ticket,
                usage.actions,
            ),
            (
                BudgetKind::Time,
                self.budgets.time_per_ticket_ms,
                usage.elapsed_ms,
            ),
        ] {
            if used > limit {
                return Err(BudgetExceeded { which, limit, used });
            }
        }
        Ok(())
    }

    /// The canary's checks, for [`crate::change::judge::judge`].
    pub fn canary_checks(&self) -> Vec<MetricCheck> {
        self.canary.metrics.clone()
    }
}

fn risk_name(risk: Risk) -> &'static str {
    match risk {
        Risk::Low => "low",
        Risk::Medium => "medium",
        Risk::High => "high",
    }
}

// ---------------------------------------------------------------------------
// errors

/// A refused policy file: file, line (when known), field path
/// (`freeze_windows[0].start`; empty for a syntax error) and problem.
pub type PolicyError = floodgate_contract::yaml::FileError;

// ---------------------------------------------------------------------------
// the file as written

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    approval: Option<RawApproval>,
    #[serde(default)]
    freeze_windows: Option<Vec<RawWindow>>,
    #[serde(default)]
    budgets: Option<RawBudgets>,
    #[serde(default)]
    canary: Option<RawCanary>,
    #[serde(default)]
    verify: Option<RawVerify>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    #[serde(default)]
    min_risk: Option<MinRisk>,
    #[serde(default)]
    actions: Option<Vec<String>>,
    #[serde(default)]
    timeout: Option<crate::quantity::Span>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    name: String,
    #[serde(default)]
    days: Option<Vec<Weekday>>,
    #[serde(default)]
    start: Option<TimeOfDay>,
    #[serde(default)]
    end: Option<TimeOfDay>,
    #[serde(default)]
    from: Option<Timestamp>,
    #[serde(default)]
    until: Option<Timestamp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudgets {
    #[serde(default)]
    proposals_per_ticket: Option<Count>,
    #[serde(default)]
    actions_per_ticket: Option<Count>,
    #[serde(default)]
    time_per_ticket: Option<crate::quantity::Span>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCanary {
    #[serde(default)]
    duration: Option<crate::quantity::Span>,
    #[serde(default)]
    thresholds: Option<Thresholds>,
    #[serde(default)]
    metrics: Option<Vec<RawMetric>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    name: String,
    direction: Direction,
    #[serde(default)]
    critical: bool,
    #[serde(default)]
    effect_size: Option<RawEffectSize>,
    #[serde(default)]
    mann_whitney: Option<RawMannWhitney>,
    #[serde(default)]
    min_samples: Option<Count>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEffectSize {
    max_relative_change: f64,
    #[serde(default)]
    min_absolute_change: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMannWhitney {
    #[serde(default = "default_alpha")]
    alpha: f64,
    #[serde(default)]
    min_absolute_change: f64,
}

fn default_alpha() -> f64 {
    DEFAULT_ALPHA
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    #[serde(default)]
    max_duration: Option<crate::quantity::Span>,
    #[serde(default)]
    fail_after: Option<crate::quantity::Span>,
    #[serde(default)]
    criteria_window: Option<crate::quantity::Span>,
}

/// A refusal found after parsing: the field's path and the problem.
type Refusal = (String, String);

impl RawPolicy {
    fn build(self) -> Result<Policy, Refusal> {
        let defaults = Policy::default();
        let approval = self.approval.unwrap_or_default();
        let actions = approval.actions.unwrap_or_default();
        if actions.len() > MAX_APPROVAL_ACTIONS {
            return Err((
                "approval.actions".into(),
                format!("more than {MAX_APPROVAL_ACTIONS} actions"),
            ));
        }
        for (index, action) in actions.iter().enumerate() {
            if actions::find(action).is_none() {
                return Err((
                    format!("approval.actions[{index}]"),
                    format!("{action:?} is not an action of the catalog (docs/catalog/actions.md)"),
                ));
            }
        }
        let approval = Approval {
            min_risk: approval.min_risk.unwrap_or(defaults.approval.min_risk),
            actions,
            timeout_ms: approval
                .timeout
                .map_or(defaults.approval.timeout_ms, |span| span.ms()),
        };

        let raw_windows = self.freeze_windows.unwrap_or_default();
        if raw_windows.len() > MAX_FREEZE_WINDOWS {
            return Err((
                "freeze_windows".into(),
                format!("more than {MAX_FREEZE_WINDOWS} windows"),
            ));
        }
        let mut freeze_windows: Vec<FreezeWindow> = Vec::with_capacity(raw_windows.len());
        for (index, raw) in raw_windows.into_iter().enumerate() {
            let window = raw.build(&format!("freeze_windows[{index}]"))?;
            if freeze_windows.iter().any(|other| other.name == window.name) {
                return Err((
                    format!("freeze_windows[{index}].name"),
                    format!("{:?} names another window too", window.name),
                ));
            }
            freeze_windows.push(window);
        }

        let budgets = self.budgets.unwrap_or_default();
        let budgets = Budgets {
            proposals_per_ticket: budgets
                .proposals_per_ticket
                .map_or(defaults.budgets.proposals_per_ticket, |count| count.0),
            actions_per_ticket: budgets
                .actions_per_ticket
                .map_or(defaults.budgets.actions_per_ticket, |count| count.0),
            time_per_ticket_ms: budgets
                .time_per_ticket
                .map_or(defaults.budgets.time_per_ticket_ms, |span| span.ms()),
        };

        let canary = self.canary.unwrap_or_default();
        let thresholds = canary.thresholds.unwrap_or_default();
        for (field, value) in [("pass", thresholds.pass), ("marginal", thresholds.marginal)] {
            if !(0.0..=100.0).contains(&value) {
                return Err((
                    format!("canary.thresholds.{field}"),
                    format!("must be between 0 and 100, not {value}"),
                ));
            }
        }
        if thresholds.marginal > thresholds.pass {
            return Err((
                "canary.thresholds.marginal".into(),
                format!(
                    "must not be above pass ({}), not {}",
                    thresholds.pass, thresholds.marginal
                ),
            ));
        }
        let metrics = match canary.metrics {
            None => defaults.canary.metrics,
            Some(raw_metrics) => {
                if raw_metrics.len() > MAX_CANARY_METRICS {
                    return Err((
                        "canary.metrics".into(),
                        format!("more than {MAX_CANARY_METRICS} metrics"),
                    ));
                }
                let mut metrics: Vec<MetricCheck> = Vec::with_capacity(raw_metrics.len());
                for (index, raw) in raw_metrics.into_iter().enumerate() {
                    let check = raw.build(&format!("canary.metrics[{index}]"))?;
                    if metrics.iter().any(|other| other.name == check.name) {
                        return Err((
                            format!("canary.metrics[{index}].name"),
                            format!("{:?} is checked twice", check.name),
                        ));
                    }
                    metrics.push(check);
                }
                metrics
            }
        };
        let canary = CanaryPolicy {
            duration_ms: canary
                .duration
                .map_or(defaults.canary.duration_ms, |span| span.ms()),
            thresholds,
            metrics,
        };

        let verify = self.verify.unwrap_or_default();
        let criteria_window_ms = verify
            .criteria_window
            .map_or(defaults.verify.criteria_window_ms, |span| span.ms());
        if !(MIN_CRITERIA_WINDOW_MS..=CRITERIA_STEP_MS).contains(&criteria_window_ms) {
            return Err((
                "verify.criteria_window".into(),
                format!(
                    "must be from {} to {} (a longer wait belongs in the criterion's duration), not {}",
                    format_duration_ms(MIN_CRITERIA_WINDOW_MS),
                    format_duration_ms(CRITERIA_STEP_MS),
                    format_duration_ms(criteria_window_ms)
                ),
            ));
        }
        let verify = VerifyPolicy {
            max_duration_ms: verify
                .max_duration
                .map_or(defaults.verify.max_duration_ms, |span| span.ms()),
            fail_after_ms: verify
                .fail_after
                .map(|span| span.ms())
                .or(defaults.verify.fail_after_ms),
            criteria_window_ms,
        };
        Ok(Policy {
            approval,
            freeze_windows,
            budgets,
            canary,
            verify,
        })
    }
}

impl RawWindow {
    fn build(self, path: &str) -> Result<FreezeWindow, Refusal> {
        let refuse = |field: &str, message: String| {
            let at = if field.is_empty() {
                path.to_owned()
            } else {
                format!("{path}.{field}")
            };
            Err((at, message))
        };
        if self.name.trim().is_empty() {
            return refuse("name", "must not be empty".into());
        }
        let weekly = self.start.is_some() || self.end.is_some() || self.days.is_some();
        let once = self.from.is_some() || self.until.is_some();
        let schedule = match (weekly, once) {
            (true, true) => {
                let field = if self.from.is_some() { "from" } else { "until" };
                return refuse(
                    field,
                    "a window is either weekly (days, start, end) or one-off (from, until), not both"
                        .into(),
                );
            }
            (false, false) => {
                return refuse(
                    "",
                    "a window needs start and end (weekly) or from and until (one-off)".into(),
                );
            }
            (true, false) => {
                let Some(TimeOfDay(start)) = self.start else {
                    return refuse("", "a weekly window needs start".into());
                };
                let Some(TimeOfDay(end)) = self.end else {
                    return refuse("", "a weekly window needs end".into());
                };
                let days = match self.days {
                    None => Weekday::ALL.to_vec(),
                    Some(days) if days.is_empty() => {
                        return refuse(
                            "days",
                            "must name at least one day (omit it for every day)".into(),
                        );
                    }
                    Some(mut days) => {
                        days.sort();
                        days.dedup();
                        days
                    }
                };
                let duration_minutes = if end > start {
                    end - start
                } else {
                    end + 24 * 60 - start
                };
                Schedule::Weekly {
                    days,
                    start_minute: start,
                    duration_minutes,
                }
            }
            (false, true) => {
                let Some(Timestamp(from_ms)) = self.from else {
                    return refuse("", "a one-off window needs from".into());
                };
                let Some(Timestamp(until_ms)) = self.until else {
                    return refuse("", "a one-off window needs until".into());
                };
                if until_ms <= from_ms {
                    return refuse("until", "must be after from".into());
                }
                Schedule::Once { from_ms, until_ms }
            }
        };
        Ok(FreezeWindow {
            name: self.name,
            schedule,
        })
    }
}

impl RawMetric {
    fn build(self, path: &str) -> Result<MetricCheck, Refusal> {
        let refuse = |field: &str, message: String| {
            let at = if field.is_empty() {
                path.to_owned()
            } else {
                format!("{path}.{field}")
            };
            Err((at, message))
        };
        if self.name.trim().is_empty() {
            return refuse("name", "must not be empty".into());
        }
        let method = match (self.effect_size, self.mann_whitney) {
            (Some(_), Some(_)) => {
                return refuse(
                    "mann_whitney",
                    "a metric has one method: effect_size or mann_whitney, not both".into(),
                );
            }
            (None, None) => {
                return refuse(
                    "",
                    "a metric needs a method: effect_size or mann_whitney".into(),
                );
            }
            (Some(effect), None) => {
                for (field, value) in [
                    ("max_relative_change", effect.max_relative_change),
                    ("min_absolute_change", effect.min_absolute_change),
                ] {
                    if !(value.is_finite() && value >= 0.0) {
                        return refuse(
                            &format!("effect_size.{field}"),
                            format!("must be a number at or above 0, not {value}"),
                        );
                    }
                }
                Method::EffectSize {
                    max_relative_change: effect.max_relative_change,
                    min_absolute_change: effect.min_absolute_change,
                }
            }
            (None, Some(test)) => {
                if !(test.alpha > 0.0 && test.alpha < 1.0) {
                    return refuse(
                        "mann_whitney.alpha",
                        format!("must be above 0 and below 1, not {}", test.alpha),
                    );
                }
                if !(test.min_absolute_change.is_finite() && test.min_absolute_change >= 0.0) {
                    return refuse(
                        "mann_whitney.min_absolute_change",
                        format!("must be a number ≥ 0, not {}", test.min_absolute_change),
                    );
                }
                Method::MannWhitney {
                    alpha: test.alpha,
                    min_absolute_change: test.min_absolute_change,
                }
            }
        };
        let min_samples = match self.min_samples {
            Some(Count(value)) => usize::try_from(value).unwrap_or(usize::MAX),
            None => DEFAULT_MIN_SAMPLES,
        };
        Ok(MetricCheck {
            name: self.name,
            direction: self.direction,
            critical: self.critical,
            method,
            min_samples,
        })
    }
}

// ---------------------------------------------------------------------------
// counts, times of day and timestamps

/// A whole number of at least 1 (a budget, a sample count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_scalar(
            deserializer,
            "a whole number of at least 1",
            |text| match text.trim().parse::<u64>() {
                Ok(0) => Err("must be at least 1".into()),
                Ok(value) => Ok(Count(value)),
                Err(_) => Err(format!(
                    "{text:?} is not a count (expected a whole number of at least 1)"
                )),
            },
        )
    }
}

/// Minutes after midnight, written `HH:MM` (00:00 to 23:59).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeOfDay(u32);

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_scalar(deserializer, "a time of day such as \"17:00\"", |text| {
            parse_time_of_day(text).map(TimeOfDay)
        })
    }
}

/// Parses `HH:MM` (24-hour, 00:00 to 23:59) into minutes after midnight.
pub fn parse_time_of_day(text: &str) -> Result<u32, String> {
    let expected = || format!("{text:?} is not a time of day (expected HH:MM, 00:00 to 23:59)");
    let (hours, minutes) = text.trim().split_once(':').ok_or_else(expected)?;
    if hours.len() != 2 || minutes.len() != 2 {
        return Err(expected());
    }
    let hours = digits(hours).ok_or_else(expected)?;
    let minutes = digits(minutes).ok_or_else(expected)?;
    if hours > 23 || minutes > 59 {
        return Err(expected());
    }
    Ok(hours * 60 + minutes)
}

/// A moment in milliseconds since the epoch, written in RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timestamp(u64);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_scalar(
            deserializer,
            "an RFC 3339 timestamp such as 2026-12-01T00:00:00Z",
            |text| {
                parse_rfc3339_ms(text)
                    .map(Timestamp)
                    .map_err(|error| error.to_string())
            },
        )
    }
}

/// Replaces the Rust type names serde puts in its messages (`expected
/// struct RawApproval`) with what a reader of the file would call them.
fn plain_types(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("struct Raw") {
        out.push_str(&rest[..start]);
        rest = &rest[start + "struct Raw".len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        out.push_str("a mapping");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// All-ASCII-digit text as a number (no sign, no spaces).
fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
