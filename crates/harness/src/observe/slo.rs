//! SLO math: SLI, error budget remaining, burn rate per window, time to
//! exhaustion, and multi-window multi-burn-rate alerting.
//!
//! Definitions (Google SRE workbook):
//! - bad ratio over a window = bad events / total events;
//! - burn rate = bad ratio / (1 − target): 1× spends the budget exactly over
//!   the SLO window, 14.4× spends 2% of a 30-day budget in an hour;
//! - a rule fires when the burn rate over its long *and* its short window are
//!   both at least its factor, the short window is wholly covered by data,
//!   and the short window saw at least `min_events` events (the low-traffic
//!   guard: three failures out of five requests are not a burn);
//! - once an alert stopped, a rule whose short window still reaches back
//!   before that moment fires again only on the burn since (the tail of an
//!   ended episode is not a new one: [`SloEvaluator`]);
//! - budget remaining = 1 − bad ratio / (1 − target) over the SLO window, or
//!   over the part of it the store covers (at most 3 days; `budget_window_ms`
//!   says which);
//! - time to exhaustion = remaining × window / (1-hour burn rate).
//!
//! Everything here is a pure function of (objective, store, now).

use crate::observe::objectives::{BurnRule, Severity, Sli, Slo};
use crate::observe::tsdb::Tsdb;
use crate::quantity::{format_duration_ms, HOUR_MS};
use serde::Serialize;
use std::collections::BTreeMap;

/// Relative slack in burn-rate comparisons, so that a burn of exactly the
/// factor (14.4× against 14.4×) fires despite float rounding.
pub const BURN_EPSILON: f64 = 1e-9;
/// The window whose burn rate time-to-exhaustion extrapolates.
pub const EXHAUSTION_WINDOW_MS: u64 = HOUR_MS;

/// Good and total events over one window, and the burn rate they imply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowBurn {
    pub window_ms: u64,
    /// `5m`, `1h`, … (for display).
    pub window: String,
    pub good: f64,
    pub total: f64,
    /// bad / total; `None` without events.
    pub bad_ratio: Option<f64>,
    pub burn_rate: Option<f64>,
    /// How much of the window has data.
    pub coverage_ms: u64,
}

/// One burn-rate rule's state at a tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleState {
    pub rule: BurnRule,
    pub name: String,
    pub firing: bool,
    pub long_burn: Option<f64>,
    pub short_burn: Option<f64>,
    pub short_events: f64,
    /// Why it does not fire although both windows burn (coverage, traffic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_back: Option<String>,
}

/// One SLO at one tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloReport {
    pub name: String,
    pub target: f64,
    pub window_ms: u64,
    /// The SLI (good / total) over the budget window.
    pub sli: Option<f64>,
    /// The window the budget figures cover: the SLO window, capped by what
    /// the store keeps.
    pub budget_window_ms: u64,
    pub events: f64,
    /// Fraction of the error budget left (negative when overspent).
    pub error_budget_remaining: Option<f64>,
    /// At the last hour's burn rate; `None` when the budget is not burning.
    pub time_to_exhaustion_ms: Option<u64>,
    /// Every window the rules use, shortest first.
    pub burn_rates: Vec<WindowBurn>,
    pub rules: Vec<RuleState>,
    /// The loudest firing severity.
    pub firing: Option<Severity>,
}

impl SloReport {
    /// Named numbers for invariant expressions (`slo.availability.sli`).
    pub fn numbers(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        if let Some(sli) = self.sli {
            out.insert("sli".to_owned(), sli);
        }
        if let Some(remaining) = self.error_budget_remaining {
            out.insert("budget_remaining".to_owned(), remaining);
        }
        for burn in &self.burn_rates {
            if let Some(rate) = burn.burn_rate {
                out.insert(format!("burn_rate_{}", burn.window), rate);
            }
        }
        out
    }
}

/// Good and total events of an SLI over `(end - window, end]`.
pub fn count_events(sli: &Sli, tsdb: &Tsdb, window_ms: u64, end_ms: u64) -> Option<(f64, f64)> {
    let increase = |selector| {
        tsdb.increase(selector, window_ms, end_ms)
            .map(|inc| inc.value)
    };
    match sli {
        Sli::Ratio { good, bad, total } => {
            let total_events = increase(total)?;
            let good_events = match (good, bad) {
                (Some(good), _) => increase(good).unwrap_or(0.0),
                (None, Some(bad)) => total_events - increase(bad).unwrap_or(0.0),
                (None, None) => return None,
            };
            Some((good_events.clamp(0.0, total_events), total_events))
        }
        Sli::Latency { good, total, .. } => {
            let total_events = increase(total)?;
            let good_events = increase(good).unwrap_or(0.0);
            Some((good_events.clamp(0.0, total_events), total_events))
        }
    }
}

/// The fastest rule (shortest short window; of equals, the highest rate),
/// once its short window lies wholly after `deployed_ms`.
fn fastest_rule_after(slo: &Slo, deployed_ms: u64, now_ms: u64) -> Option<&BurnRule> {
    let rule = slo.rules.iter().min_by(|a, b| {
        a.short_ms
            .cmp(&b.short_ms)
            .then(b.burn_rate.total_cmp(&a.burn_rate))
    })?;
    (now_ms >= deployed_ms.saturating_add(rule.short_ms)).then_some(rule)
}

/// Whether a change plainly failed to stop an SLO's burn (the pipeline's
/// fail-fast rule for an SLO ticket's fix): over the shortest window any of
/// its rules reads (the fastest rule's short window; of equals, the rule
/// with the highest rate), lying wholly after `deployed_ms`, the budget
/// still burns at or above that rule's rate, on at least the SLO's
/// `min_events` events. Answers the rule's name and the burn; `None`
/// while that window still reaches before the deploy, or when the burn
/// fell below the rate.
pub fn burn_not_falling(
    slo: &Slo,
    tsdb: &Tsdb,
    deployed_ms: u64,
    now_ms: u64,
) -> Option<(String, f64)> {
    let rule = fastest_rule_after(slo, deployed_ms, now_ms)?;
    let burn = window_burn(slo, tsdb, rule.short_ms, now_ms);
    let rate = burn.burn_rate?;
    (burn.total >= slo.min_events as f64 && rate >= rule.burn_rate).then(|| (rule.name(), rate))
}

/// A change that failed its verification relieved the burn at least this
/// much to be kept rather than rolled back (ADR 0025): the burn over the
/// fastest rule's short window after the deploy at most this share of the
/// burn over the same window just before it.
pub const RELIEF_SHARE: f64 = 0.5;

/// Whether a change relieved an SLO's burn without ending it (the
/// pipeline's keep-or-roll-back rule for a failed fix, ADR 0025): the burn
/// over the fastest rule's short window, lying wholly after `deployed_ms`,
/// is at most [`RELIEF_SHARE`] of the burn over the same window ending
/// when the change first went live (`applied_ms`: on the canary), each
/// window holding at least the SLO's `min_events` events, the one before
/// burning. Answers the burns before and after; `None` when there was no
/// relief (or too little to tell).
pub fn burn_relief(
    slo: &Slo,
    tsdb: &Tsdb,
    applied_ms: u64,
    deployed_ms: u64,
    now_ms: u64,
) -> Option<(f64, f64)> {
    let rule = fastest_rule_after(slo, deployed_ms, now_ms)?;
    let before = window_burn(slo, tsdb, rule.short_ms, applied_ms.min(deployed_ms));
    let after = window_burn(slo, tsdb, rule.short_ms, now_ms);
    let (before_rate, after_rate) = (before.burn_rate?, after.burn_rate?);
    (before.total >= slo.min_events as f64
        && after.total >= slo.min_events as f64
        && before_rate > 0.0
        && after_rate <= RELIEF_SHARE * before_rate)
        .then_some((before_rate, after_rate))
}

fn window_burn(slo: &Slo, tsdb: &Tsdb, window_ms: u64, now_ms: u64) -> WindowBurn {
    let (good, total) = count_events(&slo.sli, tsdb, window_ms, now_ms).unwrap_or((0.0, 0.0));
    let bad_ratio = (total > 0.0).then(|| (total - good) / total);
    let allowed = 1.0 - slo.target;
    WindowBurn {
        window_ms,
        window: format_duration_ms(window_ms),
        good,
        total,
        bad_ratio,
        burn_rate: bad_ratio.map(|ratio| ratio / allowed),
        coverage_ms: tsdb.coverage_ms(window_ms, now_ms),
    }
}

fn at_least(value: Option<f64>, factor: f64) -> bool {
    value.is_some_and(|value| value >= factor * (1.0 - BURN_EPSILON))
}

/// Evaluates one SLO at `now_ms`.
pub fn evaluate(slo: &Slo, tsdb: &Tsdb, now_ms: u64) -> SloReport {
    let mut windows: Vec<u64> = slo
        .rules
        .iter()
        .flat_map(|rule| [rule.long_ms, rule.short_ms])
        .chain(std::iter::once(EXHAUSTION_WINDOW_MS))
        .collect();
    windows.sort_unstable();
    windows.dedup();
    let burns: Vec<WindowBurn> = windows
        .iter()
        .map(|window| window_burn(slo, tsdb, *window, now_ms))
        .collect();
    let find = |window: u64| burns.iter().find(|burn| burn.window_ms == window);

    let mut rules = Vec::with_capacity(slo.rules.len());
    let mut firing: Option<Severity> = None;
    for rule in &slo.rules {
        let long = find(rule.long_ms);
        let short = find(rule.short_ms);
        let long_burn = long.and_then(|burn| burn.burn_rate);
        let short_burn = short.and_then(|burn| burn.burn_rate);
        let short_events = short.map_or(0.0, |burn| burn.total);
        let short_coverage = short.map_or(0, |burn| burn.coverage_ms);
        let burning = at_least(long_burn, rule.burn_rate) && at_least(short_burn, rule.burn_rate);
        let held_back = if !burning {
            None
        } else if short_coverage < rule.short_ms {
            Some(format!(
                "the short window ({}) is covered for {} only",
                format_duration_ms(rule.short_ms),
                format_duration_ms(short_coverage)
            ))
        } else if short_events < slo.min_events as f64 {
            Some(format!(
                "low traffic: {} events in the short window, fewer than {}",
                crate::quantity::trim_float(short_events),
                slo.min_events
            ))
        } else {
            None
        };
        let fires = burning && held_back.is_none();
        if fires {
            firing = Some(match firing {
                Some(current) => current.min(rule.severity),
                None => rule.severity,
            });
        }
        rules.push(RuleState {
            rule: *rule,
            name: rule.name(),
            firing: fires,
            long_burn,
            short_burn,
            short_events,
            held_back,
        });
    }

    let budget_window_ms = slo.window_ms.min(tsdb.limits().retention_ms);
    let budget = window_burn(slo, tsdb, budget_window_ms, now_ms);
    let sli = (budget.total > 0.0).then(|| budget.good / budget.total);
    let error_budget_remaining = budget.burn_rate.map(|burn| 1.0 - burn);
    let hourly = find(EXHAUSTION_WINDOW_MS).and_then(|burn| burn.burn_rate);
    let time_to_exhaustion_ms = match (error_budget_remaining, hourly) {
        (Some(remaining), _) if remaining <= 0.0 => Some(0),
        (Some(remaining), Some(burn)) if burn > 0.0 => {
            let ms = remaining * slo.window_ms as f64 / burn;
            Some(if ms.is_finite() && ms < u64::MAX as f64 {
                ms as u64
            } else {
                u64::MAX
            })
        }
        _ => None,
    };
    SloReport {
        name: slo.name.clone(),
        target: slo.target,
        window_ms: slo.window_ms,
        sli,
        budget_window_ms,
        events: budget.total,
        error_budget_remaining,
        time_to_exhaustion_ms,
        burn_rates: burns,
        rules,
        firing,
    }
}

/// An SLO alert to act on: it started firing, got louder, or is still
/// firing after a reminder interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloAlert {
    pub slo: String,
    pub severity: Severity,
    pub since_ms: u64,
    pub reminder: bool,
    /// The report that raised it (the ticket's evidence).
    pub report: SloReport,
}

#[derive(Debug, Clone, Default)]
struct AlertMemory {
    severity: Option<Severity>,
    since_ms: u64,
    last_notified_ms: u64,
    /// When the SLO's last alert stopped firing (`None`: none has yet).
    cleared_ms: Option<u64>,
}

/// A rule that starts firing after an alert of the same SLO stopped, with
/// a short window that still reaches back before that moment, may be
/// reading the ended episode's tail: a slow rule's short window remembers
/// a burn for hours (the 1d rule's, two), and one that only now covers its
/// window fires on it for the first time. Such a rule fires only if the
/// burn since the alert stopped, on its own, is at least the rule's rate
/// on at least the SLO's `min_events` events; otherwise it is held back,
/// naming the episode. A rule whose short window lies wholly after the
/// alert stopped is not touched, and neither is any rule while nothing has
/// fired yet.
fn hold_back_tail(slo: &Slo, tsdb: &Tsdb, report: &mut SloReport, cleared_ms: u64, now_ms: u64) {
    let since = window_burn(slo, tsdb, now_ms.saturating_sub(cleared_ms), now_ms);
    let fresh = |rate: f64| since.total >= slo.min_events as f64 && at_least(since.burn_rate, rate);
    let mut firing: Option<Severity> = None;
    for state in &mut report.rules {
        if state.firing
            && now_ms.saturating_sub(state.rule.short_ms) < cleared_ms
            && !fresh(state.rule.burn_rate)
        {
            state.firing = false;
            state.held_back = Some(format!(
                "its short window ({}) still reads the burn of the alert that stopped {} ago; \
                 since then {}x on {} events",
                format_duration_ms(state.rule.short_ms),
                format_duration_ms(now_ms.saturating_sub(cleared_ms)),
                since
                    .burn_rate
                    .map_or_else(|| "-".to_owned(), crate::quantity::trim_float),
                crate::quantity::trim_float(since.total)
            ));
        }
        if state.firing {
            firing = Some(firing.map_or(state.rule.severity, |f| f.min(state.rule.severity)));
        }
    }
    report.firing = firing;
}

/// Evaluates every SLO each tick and remembers which are firing, so that an
/// alert is raised on its rising edge (and when it escalates from ticket to
/// page, and as a reminder every `renotify_ms` while it keeps firing).
#[derive(Debug, Clone)]
pub struct SloEvaluator {
    slos: Vec<Slo>,
    memory: Vec<AlertMemory>,
    renotify_ms: u64,
}

impl SloEvaluator {
    pub fn new(slos: &[Slo], renotify_ms: u64) -> SloEvaluator {
        SloEvaluator {
            slos: slos.to_vec(),
            memory: vec![AlertMemory::default(); slos.len()],
            renotify_ms,
        }
    }

    pub fn slos(&self) -> &[Slo] {
        &self.slos
    }

    pub fn tick(&mut self, tsdb: &Tsdb, now_ms: u64) -> (Vec<SloReport>, Vec<SloAlert>) {
        let mut reports = Vec::with_capacity(self.slos.len());
        let mut alerts = Vec::new();
        for (slo, memory) in self.slos.iter().zip(self.memory.iter_mut()) {
            let mut report = evaluate(slo, tsdb, now_ms);
            if let (None, Some(cleared_ms)) = (memory.severity, memory.cleared_ms) {
                hold_back_tail(slo, tsdb, &mut report, cleared_ms, now_ms);
            }
            match (memory.severity, report.firing) {
                (previous, None) => {
                    *memory = AlertMemory {
                        cleared_ms: match previous {
                            Some(_) => Some(now_ms),
                            None => memory.cleared_ms,
                        },
                        ..AlertMemory::default()
                    }
                }
                (None, Some(severity)) => {
                    *memory = AlertMemory {
                        severity: Some(severity),
                        since_ms: now_ms,
                        last_notified_ms: now_ms,
                        cleared_ms: memory.cleared_ms,
                    };
                    alerts.push(SloAlert {
                        slo: slo.name.clone(),
                        severity,
                        since_ms: now_ms,
                        reminder: false,
                        report: report.clone(),
                    });
                }
                (Some(previous), Some(severity)) => {
                    let louder = severity < previous;
                    let remind = now_ms.saturating_sub(memory.last_notified_ms) >= self.renotify_ms;
                    memory.severity = Some(severity);
                    if louder || remind {
                        memory.last_notified_ms = now_ms;
                        alerts.push(SloAlert {
                            slo: slo.name.clone(),
                            severity,
                            since_ms: memory.since_ms,
                            reminder: !louder,
                            report: report.clone(),
                        });
                    }
                }
            }
            reports.push(report);
        }
        (reports, alerts)
    }
}
