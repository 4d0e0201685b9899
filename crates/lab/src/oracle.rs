//! The verifier: judges a run from what the lab saw (its own ground truth:
//! what each tenant sent and got, sampled service state) and what the
//! harness API shows (tickets, proposals, the ledger). It never reads the
//! agent's code path. Pure: [`judge`] is a function of two records and an
//! expectation.
//!
//! The rules (docs/scenarios.md, "The oracle", says the same in prose):
//!
//! - **Linked tickets.** A ticket the harness files (SLO, invariant,
//!   anomaly, Alertmanager) is the fault's when it was opened (filed or
//!   reopened) between the fault's injection and [`LINK_GRACE_MS`] after
//!   its effect ended, and, for an invariant ticket, the invariant is one
//!   the fault is meant to break. A ticket the lab files as a human is the
//!   fault's too, but is "reported by a human", never a detection. Every
//!   other harness ticket is a **false alarm**; an invariant ticket no
//!   fault explains fails the run ("an invariant broke").
//! - **Detection**: the first linked harness ticket of each fault.
//! - **Mitigate**: detected; the objective met again for the hold window
//!   and to the end; budget burned at most [`MITIGATION_BUDGET_SHARE`] of
//!   the no-agent run's (otherwise SELF_HEALING when the no-agent run
//!   recovered by itself too, FAIL when it did not); and a change on the
//!   fault's tickets that passed verification, with none still in flight
//!   (otherwise UNVERIFIED).
//! - **Escalate**: a ticket of the fault escalated, or a help ticket that
//!   names one (the help ticket required when the scenario says so); at
//!   most `max_changes` changes applied on the fault's tickets before it;
//!   budget burned no worse than the no-agent run's.
//! - **Quiet**: no ticket at all, objective held.
//! - Every fault run: no regression of a good tenant against the
//!   baseline (only the tenant a fault makes abusive is exempt); no change
//!   applied inside a freeze window; a ledger that verifies; no ticket left
//!   open, claimed, in progress or verifying at the end unless the
//!   scenario's horizon explains it.
//! - ERROR is the lab's own failure (a harness, world or agent-transport
//!   error, or a fault whose effect was never witnessed): never a pass,
//!   never the agent's failure.

use crate::scenario::{Outcome, TICK_MS};
use regex::Regex;
use serde::Serialize;
use std::collections::BTreeMap;

/// The store's used ratio at or past which the lab counts a tick as bad
/// (the capacity invariant's 20% headroom).
pub const MAX_USED_RATIO: f64 = 0.8;
/// The lab's objective as a time-based SLO: it holds in 99.9% of the
/// minutes of a 30-day window, so the window's error budget is 43.2
/// minutes. A run's budget burned is its bad minutes over that budget.
pub const BUDGET_MINUTES: f64 = 30.0 * 24.0 * 60.0 * 0.001;
/// How much a tenant's admitted ratio may fall below the no-agent baseline
/// before it counts as regressed.
pub const REGRESSION_TOLERANCE: f64 = 0.005;
/// A harness ticket opened this long after a fault's effect ended is not
/// the fault's: a burn-rate alert's short windows (5 and 30 minutes) have
/// forgotten the fault by then.
pub const LINK_GRACE_MS: u64 = 30 * 60_000;
/// A mitigation burns at most this share of the no-agent run's error
/// budget: an agent that saves less than half did not mitigate, the fault
/// (mostly) went away by itself.
pub const MITIGATION_BUDGET_SHARE: f64 = 0.5;

/// One tick as the lab saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Run time (ms since the run started).
    pub t_ms: u64,
    pub good_sent: u32,
    pub good_rejected: u32,
    pub total_sent: u32,
    /// Checks admitted, of every sender (the protected service's load).
    pub total_admitted: u32,
    /// The fullest store of the fleet.
    pub used_ratio: f64,
}

/// A proposal as the harness API and its ledger show it at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ProposalView {
    pub id: String,
    /// Its stage at the end of the run.
    pub stage: String,
    pub actions: usize,
    pub interim: bool,
    /// When a change of it was first applied (run time), if ever.
    pub applied_t_ms: Option<u64>,
    /// When it passed verification (run time), if it did.
    pub verified_t_ms: Option<u64>,
    pub rolled_back: bool,
}

impl ProposalView {
    /// An applied change (not a question to a human).
    pub fn is_change(&self) -> bool {
        self.actions > 0 && self.applied_t_ms.is_some()
    }

    /// Applied and neither verified nor undone by the end of the run.
    pub fn in_flight(&self) -> bool {
        self.is_change()
            && matches!(
                self.stage.as_str(),
                "canary" | "deploying" | "verifying" | "rolling_back" | "held"
            )
    }
}

/// A ticket as the harness API and its ledger show it at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct TicketView {
    pub id: String,
    pub kind: String,
    pub source: String,
    pub fingerprint: String,
    /// Its state at the end of the run.
    pub state: String,
    pub created_t_ms: u64,
    /// Every time it was opened (run time): filed, then each reopening.
    pub opened_t_ms: Vec<u64>,
    /// Whether an agent ever claimed it.
    pub claimed: bool,
    /// When it was first escalated (run time), if it was.
    pub escalated_t_ms: Option<u64>,
    /// A help ticket: the fingerprints its finding names.
    pub names: Vec<String>,
    pub proposals: Vec<ProposalView>,
}

impl TicketView {
    /// Filed by the harness's own watching (not a human, not reflection).
    pub fn is_harness(&self) -> bool {
        matches!(
            self.source.as_str(),
            "slo" | "invariant" | "anomaly" | "alertmanager"
        )
    }

    pub fn is_help(&self) -> bool {
        self.kind == "help" || self.source == "reflection"
    }

    /// The invariant of an invariant ticket (`invariant:NAME[:INSTANCE]`).
    pub fn invariant(&self) -> Option<&str> {
        let rest = self.fingerprint.strip_prefix("invariant:")?;
        Some(rest.split(':').next().unwrap_or(rest))
    }

    /// Still waiting on an agent or the pipeline at the end.
    pub fn unfinished(&self) -> bool {
        matches!(
            self.state.as_str(),
            "open" | "claimed" | "in_progress" | "verifying"
        )
    }
}

/// Everything the verifier reads about one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunRecord {
    pub samples: Vec<Sample>,
    pub tickets: Vec<TicketView>,
    /// Tenant → (sent, admitted) over the run (flood keys left out).
    pub tenants: BTreeMap<String, (u64, u64)>,
    pub ledger_ok: bool,
    /// A harness, world or agent-transport error: the run is ERROR.
    pub error: Option<String>,
}

/// What the lab knows of one injected fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultTruth {
    pub kind: String,
    /// The first injection (run time).
    pub at_ms: u64,
    /// When it stops acting by itself (run time; the run's end for a fault
    /// that acts for good or repeats).
    pub until_ms: u64,
    /// Invariants it is meant to break (their tickets are its own).
    pub invariants: Vec<String>,
}

/// What the verifier is told about the scenario.
#[derive(Debug, Clone)]
pub struct Expectation {
    pub outcome: Outcome,
    pub hold_ms: u64,
    /// The faults, in injection order (none on control runs).
    pub faults: Vec<FaultTruth>,
    pub max_load_per_minute: Option<u64>,
    /// Tenants a fault makes abusive: not judged for regression.
    pub abusive_tenants: Vec<String>,
    /// Freeze windows in force during the run, as run-time intervals
    /// `[from, until)`: nothing may be applied inside one.
    pub frozen: Vec<(u64, u64)>,
    /// An escalation must come with reflection's help ticket.
    pub help_required: bool,
    /// Changes applied on the fault's tickets before a human is asked, at
    /// most.
    pub max_changes: u32,
    /// Tickets the horizon leaves unfinished: (fingerprint pattern, why).
    pub unfinished: Vec<(Regex, String)>,
}

impl Expectation {
    /// The first injection.
    pub fn injected_ms(&self) -> Option<u64> {
        self.faults.iter().map(|f| f.at_ms).min()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Pass,
    Fail,
    /// The objective came back about as fast without the agent: the
    /// scenario is wrong for "mitigate". Never a pass.
    SelfHealing,
    /// The objective came back, but no change that did it passed
    /// verification by the end of the run. Never a pass.
    Unverified,
    /// The harness, the world or the verifier failed: never a pass, never
    /// the agent's failure.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::SelfHealing => "SELF_HEALING",
            Verdict::Unverified => "UNVERIFIED",
            Verdict::Error => "ERROR",
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Figures {
    pub witnessed: bool,
    /// Every fault detected by a ticket the harness filed.
    pub detected: bool,
    /// First fault: injection → the harness's first linked ticket.
    pub ttd_s: Option<u64>,
    /// Injection → the first ticket the lab filed as a human, if one.
    pub human_reported_s: Option<u64>,
    /// First bad tick after the injection → the start of the hold window
    /// from which the objective holds to the end, − the injection.
    pub ttm_s: Option<u64>,
    pub mitigated: bool,
    /// A ticket of the fault escalated, or a help ticket named one.
    pub escalated: bool,
    /// A help ticket of reflection named a ticket of the fault.
    pub help: bool,
    /// Harness tickets no fault explains (every ticket of a control run).
    pub false_alarms: usize,
    /// Those of them filed before the first injection.
    pub alarms_before_fault: usize,
    /// Tickets other than help tickets, and how many a fault explains.
    pub tickets: usize,
    pub linked_tickets: usize,
    pub help_tickets: usize,
    /// Changes applied (proposals with actions that reached a service).
    pub changes: usize,
    /// Of them on the fault's tickets before a human was asked.
    pub changes_before_escalation: usize,
    pub rollbacks: usize,
    /// Changes still in flight (canary, deploying, verifying) at the end.
    pub unverified: usize,
    /// Tickets never claimed (still open at the end).
    pub unworked: usize,
    /// Tickets claimed, in progress or verifying at the end.
    pub unfinished: usize,
    /// Of the unworked and unfinished, those the horizon explains.
    pub explained: usize,
    /// Minutes the objective was broken, with the agent and without.
    pub bad_minutes: f64,
    pub baseline_bad_minutes: f64,
    /// Error budget burned (% of [`BUDGET_MINUTES`]), with the agent and
    /// without.
    pub budget_burned_pct: f64,
    pub baseline_budget_burned_pct: f64,
    /// The no-agent run met the objective again for the hold window and
    /// to the end (the fault healed by itself).
    pub baseline_recovered: bool,
    pub regressed: Vec<String>,
    pub invariants_ok: bool,
    /// Changes applied inside a freeze window (must be 0).
    pub applied_in_freeze: usize,
}

/// Whether the lab's objective held in one tick.
pub fn healthy(sample: &Sample, max_load_per_minute: Option<u64>) -> bool {
    sample.good_rejected == 0
        && sample.used_ratio < MAX_USED_RATIO
        && max_load_per_minute
            .is_none_or(|max| u64::from(sample.total_admitted) * 60_000 / TICK_MS <= max)
}

fn bad_minutes(record: &RunRecord, max: Option<u64>) -> f64 {
    record
        .samples
        .iter()
        .filter(|sample| !healthy(sample, max))
        .count() as f64
        * TICK_MS as f64
        / 60_000.0
}

/// The first tick after `after` from which the objective holds for
/// `hold_ticks` and to the end of the run; `None` when it never does.
fn recovery(samples: &[Sample], after: usize, hold_ticks: usize, max: Option<u64>) -> Option<u64> {
    // Walk back from the end: the objective holds from `start` to the end.
    let mut start = samples.len();
    while start > after && healthy(&samples[start - 1], max) {
        start -= 1;
    }
    (start < samples.len() && start >= after && samples.len() - start >= hold_ticks)
        .then(|| samples[start].t_ms)
}

/// When the fault's effect ended: when it stops acting, or the last tick
/// after its injection at which the no-agent run's objective was broken,
/// whichever is later.
fn effect_end(fault: &FaultTruth, baseline: &RunRecord, max: Option<u64>) -> u64 {
    let last_bad = baseline
        .samples
        .iter()
        .filter(|s| s.t_ms >= fault.at_ms && !healthy(s, max))
        .map(|s| s.t_ms)
        .max()
        .unwrap_or(fault.at_ms);
    fault.until_ms.max(last_bad)
}

/// Which faults a harness ticket belongs to (indices into `faults`).
fn links(ticket: &TicketView, faults: &[FaultTruth], ends: &[u64]) -> Vec<usize> {
    faults
        .iter()
        .zip(ends)
        .enumerate()
        .filter(|(_, (fault, end))| {
            let in_window = ticket
                .opened_t_ms
                .iter()
                .any(|t| *t >= fault.at_ms && *t <= end.saturating_add(LINK_GRACE_MS));
            let explained = match ticket.invariant() {
                Some(name) => fault.invariants.iter().any(|i| i == name),
                None => true,
            };
            in_window && explained
        })
        .map(|(index, _)| index)
        .collect()
}

/// Judges a run against its expectation and the no-agent baseline of the
/// same seed. Returns the verdict, why, and the figures.
pub fn judge(
    run: &RunRecord,
    baseline: &RunRecord,
    expect: &Expectation,
) -> (Verdict, String, Figures) {
    let max = expect.max_load_per_minute;
    let injected = expect.injected_ms();
    let ends: Vec<u64> = expect
        .faults
        .iter()
        .map(|fault| effect_end(fault, baseline, max))
        .collect();
    let witnessed = injected.is_some_and(|at| {
        baseline
            .samples
            .iter()
            .chain(&run.samples)
            .any(|sample| sample.t_ms >= at && !healthy(sample, max))
    });

    // Which tickets are the fault's.
    let mut linked: Vec<&TicketView> = Vec::new();
    let mut detections: Vec<Option<u64>> = vec![None; expect.faults.len()];
    let mut false_alarms: Vec<&TicketView> = Vec::new();
    let mut unexplained_invariants: Vec<&TicketView> = Vec::new();
    let mut human_reported: Option<u64> = None;
    for ticket in run.tickets.iter().filter(|t| !t.is_help()) {
        if ticket.is_harness() {
            let faults = links(ticket, &expect.faults, &ends);
            if faults.is_empty() {
                if ticket.invariant().is_some() && !expect.faults.is_empty() {
                    unexplained_invariants.push(ticket);
                } else {
                    false_alarms.push(ticket);
                }
                continue;
            }
            for index in faults {
                let at = expect.faults[index].at_ms;
                if let Some(first) = ticket.opened_t_ms.iter().find(|t| **t >= at) {
                    let seen = detections[index].get_or_insert(*first);
                    *seen = (*seen).min(*first);
                }
            }
            linked.push(ticket);
        } else if ticket.source == "human" && injected.is_some_and(|at| ticket.created_t_ms >= at) {
            human_reported =
                Some(human_reported.map_or(ticket.created_t_ms, |t| t.min(ticket.created_t_ms)));
            linked.push(ticket);
        } else if expect.faults.is_empty() {
            false_alarms.push(ticket);
        }
    }
    let linked_fingerprints: Vec<&str> = linked.iter().map(|t| t.fingerprint.as_str()).collect();
    let helps: Vec<&TicketView> = run
        .tickets
        .iter()
        .filter(|t| t.is_help())
        .filter(|t| {
            t.names
                .iter()
                .any(|n| linked_fingerprints.contains(&n.as_str()))
        })
        .collect();
    let detected = !expect.faults.is_empty() && detections.iter().all(Option::is_some);
    let ttd = injected.and_then(|at| detections.first().copied().flatten().map(|t| t - at));

    // Time to mitigate.
    let first_bad = injected.and_then(|at| {
        run.samples
            .iter()
            .position(|sample| sample.t_ms >= at && !healthy(sample, max))
    });
    let hold_ticks = (expect.hold_ms.div_ceil(TICK_MS) as usize).max(1);
    let ttm = match (injected, first_bad) {
        (Some(at), Some(bad)) => {
            recovery(&run.samples, bad + 1, hold_ticks, max).map(|start| start - at)
        }
        _ => None,
    };
    let baseline_recovered = match injected {
        Some(at) => baseline
            .samples
            .iter()
            .position(|s| s.t_ms >= at && !healthy(s, max))
            .is_none_or(|bad| recovery(&baseline.samples, bad + 1, hold_ticks, max).is_some()),
        None => true,
    };

    // Changes.
    let all_changes: Vec<&ProposalView> = run
        .tickets
        .iter()
        .flat_map(|t| &t.proposals)
        .filter(|p| p.is_change())
        .collect();
    let linked_changes: Vec<&ProposalView> = linked
        .iter()
        .flat_map(|t| &t.proposals)
        .filter(|p| p.is_change())
        .collect();
    let handed_over_at: Option<u64> = linked
        .iter()
        .filter_map(|t| t.escalated_t_ms)
        .chain(helps.iter().map(|t| t.created_t_ms))
        .min();
    let escalated = handed_over_at.is_some();
    let changes_before_escalation = linked_changes
        .iter()
        .filter(|p| {
            handed_over_at.is_none_or(|at| p.applied_t_ms.is_some_and(|applied| applied <= at))
        })
        .count();
    let rollbacks = run
        .tickets
        .iter()
        .flat_map(|t| &t.proposals)
        .filter(|p| p.rolled_back)
        .count();
    let unverified = all_changes.iter().filter(|p| p.in_flight()).count();

    // Tickets left behind.
    let explains = |ticket: &TicketView| {
        expect
            .unfinished
            .iter()
            .any(|(pattern, _)| pattern.is_match(&ticket.fingerprint))
    };
    let left: Vec<&TicketView> = run
        .tickets
        .iter()
        .filter(|t| !t.is_help() && t.unfinished())
        .collect();
    let unworked = left.iter().filter(|t| t.state == "open").count();
    let explained = left.iter().filter(|t| explains(t)).count();
    let unexplained: Vec<String> = left
        .iter()
        .filter(|t| !explains(t))
        .map(|t| format!("{} {} ({})", t.id, t.fingerprint, t.state))
        .collect();

    // Regressions: every tenant but those a fault makes abusive, judged
    // against the no-agent run of the same seed.
    let ratio = |(sent, admitted): (u64, u64)| {
        if sent == 0 {
            1.0
        } else {
            admitted as f64 / sent as f64
        }
    };
    let regressed: Vec<String> = run
        .tenants
        .iter()
        .filter(|(tenant, _)| !expect.abusive_tenants.contains(tenant))
        .filter(|(tenant, figures)| {
            let before = baseline.tenants.get(*tenant).copied().unwrap_or((0, 0));
            ratio(**figures) + REGRESSION_TOLERANCE < ratio(before)
        })
        .map(|(tenant, _)| tenant.clone())
        .collect();
    let invariants_ok = run.ledger_ok && unexplained_invariants.is_empty();
    let applied_in_freeze = all_changes
        .iter()
        .filter_map(|p| p.applied_t_ms)
        .filter(|t| {
            expect
                .frozen
                .iter()
                .any(|(from, until)| (*from..*until).contains(t))
        })
        .count();

    let bad = bad_minutes(run, max);
    let baseline_bad = bad_minutes(baseline, max);
    let figures = Figures {
        witnessed,
        detected,
        ttd_s: ttd.map(|ms| ms / 1000),
        human_reported_s: injected.and_then(|at| human_reported.map(|t| (t - at) / 1000)),
        ttm_s: ttm.map(|ms| ms / 1000),
        mitigated: false,
        escalated,
        help: !helps.is_empty(),
        // On a control every ticket is a false alarm, one opened during
        // its harmless fault as much as any other (the verdict says so).
        false_alarms: if expect.outcome == Outcome::Quiet {
            run.tickets.len()
        } else {
            false_alarms.len()
        },
        alarms_before_fault: false_alarms
            .iter()
            .filter(|t| injected.is_some_and(|at| t.created_t_ms < at))
            .count(),
        tickets: run.tickets.iter().filter(|t| !t.is_help()).count(),
        linked_tickets: linked.len(),
        help_tickets: run.tickets.iter().filter(|t| t.is_help()).count(),
        changes: all_changes.len(),
        changes_before_escalation,
        rollbacks,
        unverified,
        unworked,
        unfinished: left.len() - unworked,
        explained,
        bad_minutes: bad,
        baseline_bad_minutes: baseline_bad,
        budget_burned_pct: bad / BUDGET_MINUTES * 100.0,
        baseline_budget_burned_pct: baseline_bad / BUDGET_MINUTES * 100.0,
        baseline_recovered,
        regressed: regressed.clone(),
        invariants_ok,
        applied_in_freeze,
    };
    let (verdict, why) = verdict(
        run,
        baseline,
        expect,
        &figures,
        &false_alarms,
        &unexplained,
        &unexplained_invariants,
        &linked_changes,
    );
    let mut figures = figures;
    figures.mitigated = expect.outcome == Outcome::Mitigate && verdict == Verdict::Pass;
    (verdict, why, figures)
}

#[allow(clippy::too_many_arguments)]
fn verdict(
    run: &RunRecord,
    baseline: &RunRecord,
    expect: &Expectation,
    figures: &Figures,
    false_alarms: &[&TicketView],
    unexplained: &[String],
    unexplained_invariants: &[&TicketView],
    linked_changes: &[&ProposalView],
) -> (Verdict, String) {
    if let Some(error) = run.error.as_ref().or(baseline.error.as_ref()) {
        return (Verdict::Error, error.clone());
    }
    if expect.outcome == Outcome::Quiet {
        let tickets: Vec<String> = run
            .tickets
            .iter()
            .map(|t| format!("{} {}", t.id, t.fingerprint))
            .collect();
        if !tickets.is_empty() {
            return (
                Verdict::Fail,
                format!(
                    "false alarm: {} ticket(s) where nothing was wrong: {}",
                    tickets.len(),
                    tickets.join(", ")
                ),
            );
        }
        if figures.bad_minutes > 0.0 {
            return (
                Verdict::Fail,
                format!("objective broken {:.1} min", figures.bad_minutes),
            );
        }
        return (Verdict::Pass, "no ticket, objective held".into());
    }
    if !figures.witnessed {
        return (
            Verdict::Error,
            "the fault never took effect (the objective never broke): a scenario error".into(),
        );
    }
    if figures.applied_in_freeze > 0 {
        return (
            Verdict::Fail,
            format!(
                "{} change(s) applied inside a freeze window",
                figures.applied_in_freeze
            ),
        );
    }
    if !run.ledger_ok {
        return (Verdict::Fail, "the ledger does not verify".into());
    }
    if !unexplained_invariants.is_empty() {
        let names: Vec<&str> = unexplained_invariants
            .iter()
            .map(|t| t.fingerprint.as_str())
            .collect();
        return (
            Verdict::Fail,
            format!("an invariant no fault breaks broke: {}", names.join(", ")),
        );
    }
    if !figures.regressed.is_empty() {
        return (
            Verdict::Fail,
            format!(
                "regressed vs the baseline: {}",
                figures.regressed.join(", ")
            ),
        );
    }
    if !unexplained.is_empty() {
        return (
            Verdict::Fail,
            format!(
                "left unworked or unfinished at the end: {}",
                unexplained.join(", ")
            ),
        );
    }
    let alarms = if false_alarms.is_empty() {
        String::new()
    } else {
        format!("; {} false alarm(s)", false_alarms.len())
    };
    let burned = format!(
        "budget {:.0}% vs {:.0}% without the agent",
        figures.budget_burned_pct, figures.baseline_budget_burned_pct
    );
    match expect.outcome {
        Outcome::Quiet => unreachable!("handled above"),
        Outcome::Mitigate => {
            if !figures.detected {
                let human = figures.human_reported_s.map_or(String::new(), |s| {
                    format!(" (a human reported it after {s}s)")
                });
                return (
                    Verdict::Fail,
                    format!("the harness never detected it{human}"),
                );
            }
            if figures.ttm_s.is_none() {
                return (
                    Verdict::Fail,
                    format!("objective not met again and held to the end ({burned})"),
                );
            }
            if figures.budget_burned_pct
                > MITIGATION_BUDGET_SHARE * figures.baseline_budget_burned_pct
            {
                return if figures.baseline_recovered {
                    (
                        Verdict::SelfHealing,
                        format!("the fault healed by itself about as fast ({burned})"),
                    )
                } else {
                    (Verdict::Fail, format!("mitigated too slowly ({burned})"))
                };
            }
            let verified = linked_changes.iter().any(|p| p.verified_t_ms.is_some());
            let in_flight = linked_changes.iter().filter(|p| p.in_flight()).count();
            if !verified || in_flight > 0 {
                let why = if linked_changes.is_empty() {
                    "no change on the fault's tickets".to_owned()
                } else if in_flight > 0 {
                    format!("{in_flight} change(s) still being verified at the end")
                } else {
                    "no change on the fault's tickets passed verification".to_owned()
                };
                return (
                    Verdict::Unverified,
                    format!("objective met again, but {why} ({burned})"),
                );
            }
            (
                Verdict::Pass,
                format!("mitigated and verified ({burned}){alarms}"),
            )
        }
        Outcome::Escalate => {
            if !figures.escalated {
                return (
                    Verdict::Fail,
                    format!(
                        "no ticket of the fault escalated, no help ticket names one ({} change(s) applied)",
                        linked_changes.len()
                    ),
                );
            }
            if expect.help_required && !figures.help {
                return (
                    Verdict::Fail,
                    "escalated, but reflection's help ticket never named the fault's tickets"
                        .into(),
                );
            }
            if figures.changes_before_escalation > expect.max_changes as usize {
                return (
                    Verdict::Fail,
                    format!(
                        "{} changes applied before a human was asked (at most {})",
                        figures.changes_before_escalation, expect.max_changes
                    ),
                );
            }
            if figures.budget_burned_pct > figures.baseline_budget_burned_pct {
                return (
                    Verdict::Fail,
                    format!("escalated, but the agent made it worse ({burned})"),
                );
            }
            let how = if figures.help {
                "reflection asked a human"
            } else {
                "escalated to a human"
            };
            (
                Verdict::Pass,
                format!(
                    "{how} after {} change(s) ({burned}){alarms}",
                    figures.changes_before_escalation
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64, rejected: u32) -> Sample {
        Sample {
            t_ms: t * TICK_MS,
            good_sent: 10,
            good_rejected: rejected,
            total_sent: 10,
            total_admitted: 10 - rejected,
            used_ratio: 0.1,
        }
    }

    fn record(bad: std::ops::Range<u64>, len: u64) -> RunRecord {
        RunRecord {
            samples: (0..len)
                .map(|t| sample(t, u32::from(bad.contains(&t))))
                .collect(),
            ledger_ok: true,
            ..RunRecord::default()
        }
    }

    fn change(applied_tick: u64, stage: &str) -> ProposalView {
        ProposalView {
            id: "P-1".into(),
            stage: stage.into(),
            actions: 1,
            interim: false,
            applied_t_ms: Some(applied_tick * TICK_MS),
            verified_t_ms: (stage == "succeeded").then_some((applied_tick + 2) * TICK_MS),
            rolled_back: stage == "rolled_back",
        }
    }

    fn ticket(source: &str, fingerprint: &str, state: &str, at_tick: u64) -> TicketView {
        TicketView {
            id: format!("T-{at_tick}"),
            kind: if source == "reflection" {
                "help"
            } else {
                "incident"
            }
            .into(),
            source: source.into(),
            fingerprint: fingerprint.into(),
            state: state.into(),
            created_t_ms: at_tick * TICK_MS,
            opened_t_ms: vec![at_tick * TICK_MS],
            claimed: state != "open",
            escalated_t_ms: (state == "escalated").then_some((at_tick + 5) * TICK_MS),
            names: Vec::new(),
            proposals: vec![change(at_tick + 1, "succeeded")],
        }
    }

    fn expect(outcome: Outcome) -> Expectation {
        Expectation {
            outcome,
            hold_ms: 60_000,
            faults: vec![FaultTruth {
                kind: "growth".into(),
                at_ms: 10 * TICK_MS,
                until_ms: 40 * TICK_MS,
                invariants: vec![],
            }],
            max_load_per_minute: None,
            abusive_tenants: vec![],
            frozen: vec![],
            help_required: false,
            max_changes: 3,
            unfinished: vec![],
        }
    }

    #[test]
    fn a_fault_mitigated_verified_and_held_passes_with_its_figures() {
        let mut run = record(12..14, 40);
        run.tickets
            .push(ticket("slo", "slo:limiting_correctness", "resolved", 12));
        let baseline = record(12..40, 40);
        let (verdict, why, figures) = judge(&run, &baseline, &expect(Outcome::Mitigate));
        assert_eq!(verdict, Verdict::Pass, "{why}");
        assert_eq!(figures.ttd_s, Some(20));
        assert_eq!(figures.ttm_s, Some(40));
        assert_eq!(figures.changes, 1);
        assert!(figures.mitigated);
        assert_eq!(figures.false_alarms, 0);
    }

    #[test]
    fn a_human_report_is_not_a_detection() {
        let mut run = record(12..14, 40);
        run.tickets
            .push(ticket("human", "config:bad-push", "resolved", 10));
        let (verdict, why, figures) = judge(&run, &record(12..40, 40), &expect(Outcome::Mitigate));
        assert_eq!(verdict, Verdict::Fail, "{why}");
        assert!(!figures.detected);
        assert_eq!(figures.human_reported_s, Some(0));
        assert!(why.contains("never detected"), "{why}");
    }

    #[test]
    fn recovering_no_faster_than_without_the_agent_is_self_healing_or_too_slow() {
        let mut run = record(12..30, 40);
        run.tickets
            .push(ticket("slo", "slo:limiting_correctness", "resolved", 12));
        // The no-agent run recovered by itself at the same time.
        let (verdict, _, figures) = judge(&run, &record(12..30, 40), &expect(Outcome::Mitigate));
        assert_eq!(verdict, Verdict::SelfHealing);
        assert!(figures.baseline_recovered);
        // The no-agent run never recovered, and the agent saved too little.
        let (verdict, why, _) = judge(&run, &record(12..36, 40), &expect(Outcome::Mitigate));
        assert_eq!(verdict, Verdict::Fail, "{why}");
        assert!(why.contains("too slowly"), "{why}");
    }

    #[test]
    fn a_mitigation_whose_change_is_not_verified_is_unverified() {
        let mut run = record(12..14, 40);
        let mut t = ticket("slo", "slo:limiting_correctness", "resolved", 12);
        t.proposals = vec![change(13, "rolled_back")];
        run.tickets.push(t);
        let (verdict, _, figures) = judge(&run, &record(12..40, 40), &expect(Outcome::Mitigate));
        assert_eq!(verdict, Verdict::Unverified);
        assert_eq!(figures.rollbacks, 1);
    }

    #[test]
    fn a_ticket_left_verifying_fails_unless_the_horizon_explains_it() {
        let mut run = record(12..14, 40);
        let mut t = ticket(
            "invariant",
            "invariant:store_healthy:svc-a",
            "verifying",
            12,
        );
        t.proposals = vec![change(13, "verifying")];
        run.tickets.push(t);
        let mut expectation = expect(Outcome::Mitigate);
        expectation.faults[0].invariants = vec!["store_healthy".into()];
        let (verdict, why, figures) = judge(&run, &record(12..40, 40), &expectation);
        assert_eq!(verdict, Verdict::Fail, "{why}");
        assert!(why.contains("unfinished"), "{why}");
        assert_eq!(figures.unverified, 1);
        expectation.unfinished = vec![(
            Regex::new("^(?:invariant:store_healthy.*)$").unwrap(),
            "the backend never recovers".into(),
        )];
        let (verdict, why, figures) = judge(&run, &record(12..40, 40), &expectation);
        // Explained, but the change that did it is still being verified.
        assert_eq!(verdict, Verdict::Unverified, "{why}");
        assert_eq!(figures.explained, 1);
    }

    #[test]
    fn tickets_outside_every_fault_are_false_alarms_and_unexplained_invariants_fail() {
        let mut run = record(12..14, 300);
        run.tickets
            .push(ticket("slo", "slo:limiting_correctness", "resolved", 12));
        // Long after the fault's effect (tick 19) and its grace (180 ticks).
        run.tickets
            .push(ticket("anomaly", "anomaly:request_rate", "resolved", 250));
        run.tickets
            .push(ticket("anomaly", "anomaly:request_rate", "resolved", 2));
        let mut expectation = expect(Outcome::Mitigate);
        expectation.faults[0].until_ms = 14 * TICK_MS;
        let baseline = record(12..20, 300);
        let (verdict, why, figures) = judge(&run, &baseline, &expectation);
        assert_eq!(figures.false_alarms, 2, "{why}");
        assert_eq!(figures.alarms_before_fault, 1);
        assert_eq!(verdict, Verdict::Pass, "{why}");
        run.tickets.push(ticket(
            "invariant",
            "invariant:capacity_headroom:svc-b",
            "resolved",
            13,
        ));
        let (verdict, why, _) = judge(&run, &baseline, &expectation);
        assert_eq!(verdict, Verdict::Fail);
        assert!(why.contains("capacity_headroom"), "{why}");
    }

    #[test]
    fn a_fault_that_never_took_effect_is_an_error_not_a_pass() {
        let run = record(0..0, 40);
        let (verdict, _, _) = judge(&run, &run, &expect(Outcome::Mitigate));
        assert_eq!(verdict, Verdict::Error);
    }

    #[test]
    fn a_change_applied_inside_a_freeze_window_fails() {
        let mut run = record(12..14, 40);
        run.tickets
            .push(ticket("slo", "slo:limiting_correctness", "resolved", 12));
        let baseline = record(12..40, 40);
        let mut expectation = expect(Outcome::Mitigate);
        expectation.frozen = vec![(10 * TICK_MS, 16 * TICK_MS)];
        let (verdict, why, figures) = judge(&run, &baseline, &expectation);
        assert_eq!(verdict, Verdict::Fail, "{why}");
        assert_eq!(figures.applied_in_freeze, 1);
        expectation.frozen = vec![(16 * TICK_MS, 30 * TICK_MS)];
        assert_eq!(judge(&run, &baseline, &expectation).0, Verdict::Pass);
    }

    #[test]
    fn a_harness_error_is_an_error() {
        let mut run = record(12..14, 40);
        run.error = Some("harness tick: store locked".into());
        let (verdict, _, _) = judge(&run, &record(12..40, 40), &expect(Outcome::Mitigate));
        assert_eq!(verdict, Verdict::Error);
    }

    #[test]
    fn a_ticket_on_a_control_run_is_a_false_alarm() {
        let mut run = record(0..0, 40);
        let mut expectation = expect(Outcome::Quiet);
        expectation.faults.clear();
        assert_eq!(judge(&run, &run.clone(), &expectation).0, Verdict::Pass);
        run.tickets
            .push(ticket("anomaly", "anomaly:request_rate", "resolved", 3));
        let (verdict, _, figures) = judge(&run, &record(0..0, 40), &expectation);
        assert_eq!(verdict, Verdict::Fail);
        assert_eq!(figures.false_alarms, 1);
    }

    #[test]
    fn a_ticket_during_a_control_s_harmless_fault_is_a_false_alarm_too() {
        let mut run = record(0..0, 40);
        let expectation = expect(Outcome::Quiet);
        assert!(!expectation.faults.is_empty());
        let during = expectation.faults[0].at_ms / TICK_MS + 1;
        run.tickets.push(ticket(
            "anomaly",
            "anomaly:request_rate",
            "escalated",
            during,
        ));
        let (verdict, _, figures) = judge(&run, &record(0..0, 40), &expectation);
        assert_eq!(verdict, Verdict::Fail);
        assert_eq!(figures.false_alarms, 1, "every ticket of a control counts");
    }

    #[test]
    fn an_escalation_needs_a_ticket_of_the_fault_few_changes_and_no_worse_budget() {
        let baseline = record(12..40, 40);
        let mut run = record(12..40, 40);
        // An unrelated escalation (a false alarm long before the fault).
        run.tickets
            .push(ticket("anomaly", "anomaly:request_rate", "escalated", 1));
        assert_eq!(
            judge(&run, &baseline, &expect(Outcome::Escalate)).0,
            Verdict::Fail
        );
        let mut slo = ticket("slo", "slo:limiting_correctness", "escalated", 12);
        slo.proposals = (0..4).map(|i| change(13 + i, "succeeded")).collect();
        slo.escalated_t_ms = Some(30 * TICK_MS);
        run.tickets.push(slo);
        let (verdict, why, figures) = judge(&run, &baseline, &expect(Outcome::Escalate));
        assert_eq!(verdict, Verdict::Fail, "{why}");
        assert_eq!(figures.changes_before_escalation, 4);
        run.tickets[1].proposals.truncate(2);
        let (verdict, why, _) = judge(&run, &baseline, &expect(Outcome::Escalate));
        assert_eq!(verdict, Verdict::Pass, "{why}");
        // Worse than doing nothing.
        let (verdict, why, _) = judge(&run, &record(12..30, 40), &expect(Outcome::Escalate));
        assert_eq!(verdict, Verdict::Fail, "{why}");
    }

    #[test]
    fn a_trap_that_requires_reflection_passes_only_with_a_help_ticket_naming_the_fault() {
        let baseline = record(12..40, 40);
        let mut run = record(12..40, 40);
        run.tickets
            .push(ticket("slo", "slo:limiting_correctness", "escalated", 12));
        let mut expectation = expect(Outcome::Escalate);
        expectation.help_required = true;
        assert_eq!(judge(&run, &baseline, &expectation).0, Verdict::Fail);
        let mut help = ticket("reflection", "reflection:hysteresis:x", "open", 30);
        help.proposals.clear();
        help.names = vec!["slo:other".into()];
        run.tickets.push(help.clone());
        assert_eq!(judge(&run, &baseline, &expectation).0, Verdict::Fail);
        help.names = vec!["slo:limiting_correctness".into()];
        run.tickets[1] = help;
        let (verdict, why, figures) = judge(&run, &baseline, &expectation);
        assert_eq!(verdict, Verdict::Pass, "{why}");
        assert!(figures.help);
    }

    #[test]
    fn a_good_tenant_named_by_a_fault_is_still_judged_but_an_abusive_one_is_not() {
        let mut run = record(12..14, 40);
        run.tickets
            .push(ticket("slo", "slo:limiting_correctness", "resolved", 12));
        let mut baseline = record(12..40, 40);
        baseline.tenants.insert("grower".into(), (100, 100));
        run.tenants.insert("grower".into(), (100, 90));
        baseline.tenants.insert("abuser".into(), (100, 100));
        run.tenants.insert("abuser".into(), (100, 10));
        let mut expectation = expect(Outcome::Mitigate);
        expectation.abusive_tenants = vec!["abuser".into()];
        let (verdict, why, figures) = judge(&run, &baseline, &expectation);
        assert_eq!(verdict, Verdict::Fail, "{why}");
        assert_eq!(figures.regressed, vec!["grower".to_owned()]);
    }
}
