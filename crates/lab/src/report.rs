//! The suite's figures: per run, per family and overall, as tables, JSON,
//! Markdown and a hand-written SVG chart.

use crate::oracle::Verdict;
use crate::run::RunResult;
use crate::scenario::Outcome;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The figures over a set of runs (one family, or all of them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    /// The family, or `all`.
    pub family: String,
    pub runs: usize,
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub self_healing: usize,
    pub unverified: usize,
    /// Runs with a fault that should harm, not in ERROR.
    pub incidents: usize,
    pub detected: usize,
    pub detected_pct: Option<f64>,
    /// Incidents expecting mitigation, and how many passed.
    pub mitigable: usize,
    pub mitigated: usize,
    pub mitigated_pct: Option<f64>,
    /// Incidents expecting a human to be asked, and how many passed.
    pub unmitigable: usize,
    pub escalated_correctly: usize,
    pub escalated_pct: Option<f64>,
    /// Runs expecting quiet (controls), their simulated days, and the
    /// tickets they raised.
    pub control_runs: usize,
    pub control_days: f64,
    pub control_false_alarms: usize,
    /// Control false alarms per 30 simulated control-days.
    pub false_alarms_per_30_days: Option<f64>,
    /// Tickets no fault explains, on incident runs.
    pub incident_false_alarms: usize,
    /// Error budget burned (% of the 30-day budget), with the agent and
    /// without, over the incidents; and their ratio.
    pub budget_burned_pct: f64,
    pub baseline_budget_burned_pct: f64,
    pub budget_ratio: Option<f64>,
    pub ttd_p50_s: Option<u64>,
    pub ttd_p90_s: Option<u64>,
    pub ttm_p50_s: Option<u64>,
    pub ttm_p90_s: Option<u64>,
    /// Changes applied (all runs), and per incident.
    pub changes: usize,
    pub changes_per_incident: Option<f64>,
    pub rollbacks: usize,
    /// Changes still in flight at the end of their run.
    pub unverified_changes: usize,
    /// Tickets never claimed / claimed but unfinished at the end (all runs;
    /// those the horizon explains included).
    pub unworked: usize,
    pub unfinished: usize,
}

/// The `p`-th percentile (nearest rank) of `values`.
pub fn percentile(values: &[u64], p: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn pct(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// The aggregate of `results` (labelled `family`).
pub fn aggregate_of(family: &str, results: &[&RunResult]) -> Aggregate {
    let count = |verdict: Verdict| results.iter().filter(|r| r.verdict == verdict).count();
    let expected = |outcome: Outcome| {
        results
            .iter()
            .filter(move |r| r.expected == outcome.as_str() && r.verdict != Verdict::Error)
    };
    let incidents: Vec<&&RunResult> = results
        .iter()
        .filter(|r| r.expected != Outcome::Quiet.as_str() && r.verdict != Verdict::Error)
        .collect();
    let controls: Vec<&&RunResult> = results
        .iter()
        .filter(|r| r.expected == Outcome::Quiet.as_str() && r.verdict != Verdict::Error)
        .collect();
    let mitigable = expected(Outcome::Mitigate).count();
    let mitigated = expected(Outcome::Mitigate)
        .filter(|r| r.verdict == Verdict::Pass)
        .count();
    let unmitigable = expected(Outcome::Escalate).count();
    let escalated_correctly = expected(Outcome::Escalate)
        .filter(|r| r.verdict == Verdict::Pass)
        .count();
    let detected = incidents.iter().filter(|r| r.figures.detected).count();
    // Folds from +0.0: an empty float sum is -0.0, which prints "-0".
    let control_days = controls
        .iter()
        .map(|r| r.duration_s as f64 / 86_400.0)
        .fold(0.0, |sum, days| sum + days);
    let control_false_alarms: usize = controls.iter().map(|r| r.figures.false_alarms).sum();
    let ttd: Vec<u64> = incidents.iter().filter_map(|r| r.figures.ttd_s).collect();
    let ttm: Vec<u64> = incidents.iter().filter_map(|r| r.figures.ttm_s).collect();
    let budget = incidents
        .iter()
        .map(|r| r.figures.budget_burned_pct)
        .fold(0.0, |sum, pct| sum + pct);
    let baseline_budget = incidents
        .iter()
        .map(|r| r.figures.baseline_budget_burned_pct)
        .fold(0.0, |sum, pct| sum + pct);
    let changes: usize = results.iter().map(|r| r.figures.changes).sum();
    Aggregate {
        family: family.to_owned(),
        runs: results.len(),
        pass: count(Verdict::Pass),
        fail: count(Verdict::Fail),
        error: count(Verdict::Error),
        self_healing: count(Verdict::SelfHealing),
        unverified: count(Verdict::Unverified),
        incidents: incidents.len(),
        detected,
        detected_pct: pct(detected, incidents.len()),
        mitigable,
        mitigated,
        mitigated_pct: pct(mitigated, mitigable),
        unmitigable,
        escalated_correctly,
        escalated_pct: pct(escalated_correctly, unmitigable),
        control_runs: controls.len(),
        control_days,
        control_false_alarms,
        false_alarms_per_30_days: (control_days > 0.0)
            .then(|| control_false_alarms as f64 * 30.0 / control_days),
        incident_false_alarms: incidents.iter().map(|r| r.figures.false_alarms).sum(),
        budget_burned_pct: budget,
        baseline_budget_burned_pct: baseline_budget,
        budget_ratio: (baseline_budget > 0.0).then(|| budget / baseline_budget),
        ttd_p50_s: percentile(&ttd, 50.0),
        ttd_p90_s: percentile(&ttd, 90.0),
        ttm_p50_s: percentile(&ttm, 50.0),
        ttm_p90_s: percentile(&ttm, 90.0),
        changes,
        changes_per_incident: (!incidents.is_empty()).then(|| {
            incidents.iter().map(|r| r.figures.changes).sum::<usize>() as f64
                / incidents.len() as f64
        }),
        rollbacks: results.iter().map(|r| r.figures.rollbacks).sum(),
        unverified_changes: results.iter().map(|r| r.figures.unverified).sum(),
        unworked: results.iter().map(|r| r.figures.unworked).sum(),
        unfinished: results.iter().map(|r| r.figures.unfinished).sum(),
    }
}

/// The aggregate over every run.
pub fn aggregate(results: &[RunResult]) -> Aggregate {
    aggregate_of("all", &results.iter().collect::<Vec<_>>())
}

/// One aggregate per family (sorted by name), then `all`.
pub fn by_family(results: &[RunResult]) -> Vec<Aggregate> {
    let mut families: BTreeMap<&str, Vec<&RunResult>> = BTreeMap::new();
    for result in results {
        families.entry(&result.family).or_default().push(result);
    }
    let mut out: Vec<Aggregate> = families
        .iter()
        .map(|(family, runs)| aggregate_of(family, runs))
        .collect();
    out.push(aggregate(results));
    out
}

fn secs(value: Option<u64>) -> String {
    value.map_or("-".into(), |v| format!("{v}s"))
}

fn percent(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.0}%"))
}

/// The results table, one row a run (Markdown; also what the command
/// prints).
pub fn table(results: &[RunResult]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | family | seed | agent | expected | verdict | detected | TTD | TTM | escalated | false alarms | changes | rollbacks | budget burned (agent / none) | why |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        let f = &r.figures;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0}% / {:.0}% | {} |",
            r.scenario,
            r.family,
            r.seed,
            r.agent.as_str(),
            r.expected,
            r.verdict.as_str(),
            if f.detected { "yes" } else { "no" },
            secs(f.ttd_s),
            secs(f.ttm_s),
            if f.escalated { "yes" } else { "no" },
            f.false_alarms,
            f.changes,
            f.rollbacks,
            f.budget_burned_pct,
            f.baseline_budget_burned_pct,
            r.why.replace('|', "/"),
        );
    }
    out
}

/// The aggregate table: one row per family and one for all runs.
pub fn aggregate_table(aggregates: &[Aggregate]) -> String {
    let mut out = String::from(
        "| family | runs | pass | fail | self-healing | unverified | error | detected | mitigated (of mitigable) | escalated correctly (of unmitigable) | false alarms per 30 control-days (controls: days) | false alarms on incidents | budget burned agent / none (ratio) | TTD p50 / p90 | TTM p50 / p90 | changes per incident | rollbacks | unverified changes | unworked / unfinished tickets |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for a in aggregates {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {}/{} ({}) | {}/{} ({}) | {}/{} ({}) | {} ({}: {:.1} d) | {} | {:.0}% / {:.0}% ({}) | {} / {} | {} / {} | {} | {} | {} | {} / {} |",
            a.family,
            a.runs,
            a.pass,
            a.fail,
            a.self_healing,
            a.unverified,
            a.error,
            a.detected,
            a.incidents,
            percent(a.detected_pct),
            a.mitigated,
            a.mitigable,
            percent(a.mitigated_pct),
            a.escalated_correctly,
            a.unmitigable,
            percent(a.escalated_pct),
            a.false_alarms_per_30_days
                .map_or("-".into(), |v| format!("{v:.1}")),
            a.control_runs,
            a.control_days,
            a.incident_false_alarms,
            a.budget_burned_pct,
            a.baseline_budget_burned_pct,
            a.budget_ratio.map_or("-".into(), |v| format!("{v:.2}")),
            secs(a.ttd_p50_s),
            secs(a.ttd_p90_s),
            secs(a.ttm_p50_s),
            secs(a.ttm_p90_s),
            a.changes_per_incident
                .map_or("-".into(), |v| format!("{v:.2}")),
            a.rollbacks,
            a.unverified_changes,
            a.unworked,
            a.unfinished,
        );
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One chart row: a label, the budget burned with and without the agent,
/// and two times (TTD, TTM) in seconds.
struct Row {
    label: String,
    budget: f64,
    baseline_budget: f64,
    ttd_s: Option<u64>,
    ttm_s: Option<u64>,
}

/// Two bar groups per row: error budget burned with and without the
/// agent (% of the 30-day budget), and TTD / TTM in minutes. One row a run
/// for up to [`CHART_MAX_RUN_ROWS`] runs; past that, one row a family
/// (budget summed, times at the median).
pub fn chart(results: &[RunResult]) -> String {
    let rows: Vec<Row> = if results.len() <= CHART_MAX_RUN_ROWS {
        results
            .iter()
            .map(|r| Row {
                label: format!("{} s{} [{}]", r.scenario, r.seed, r.verdict.as_str()),
                budget: r.figures.budget_burned_pct,
                baseline_budget: r.figures.baseline_budget_burned_pct,
                ttd_s: r.figures.ttd_s,
                ttm_s: r.figures.ttm_s,
            })
            .collect()
    } else {
        by_family(results)
            .into_iter()
            .map(|a| Row {
                label: format!("{} ({}/{} pass)", a.family, a.pass, a.runs),
                budget: a.budget_burned_pct,
                baseline_budget: a.baseline_budget_burned_pct,
                ttd_s: a.ttd_p50_s,
                ttm_s: a.ttm_p50_s,
            })
            .collect()
    };
    let per_run = results.len() <= CHART_MAX_RUN_ROWS;
    let row = 28.0;
    let label_w = 260.0;
    let bar_w = 260.0;
    let height = 70.0 + row * rows.len() as f64;
    let gap = 120.0;
    let width = label_w + 2.0 * bar_w + gap + 60.0;
    let max_bad = rows
        .iter()
        .map(|r| r.budget.max(r.baseline_budget))
        .fold(1.0, f64::max);
    let max_time = rows
        .iter()
        .flat_map(|r| [r.ttd_s, r.ttm_s])
        .flatten()
        .max()
        .unwrap_or(60)
        .max(60) as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let x1 = label_w;
    let x2 = label_w + bar_w + gap;
    let _ = writeln!(
        svg,
        r##"<text x="{x1}" y="16" font-weight="bold">budget burned (% of 30 days): <tspan fill="#c0392b">no agent</tspan> / <tspan fill="#27ae60">agent</tspan></text>"##
    );
    let times = if per_run { "" } else { " p50" };
    let _ = writeln!(
        svg,
        r##"<text x="{x2}" y="16" font-weight="bold">minutes after injection: <tspan fill="#2980b9">TTD{times}</tspan> / <tspan fill="#8e44ad">TTM{times}</tspan> (max {:.0})</text>"##,
        max_time / 60.0
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 40.0 + row * i as f64;
        let _ = writeln!(
            svg,
            r#"<text x="4" y="{}">{}</text>"#,
            y + 14.0,
            escape(&r.label)
        );
        for (j, (value, colour)) in [(r.baseline_budget, "#c0392b"), (r.budget, "#27ae60")]
            .into_iter()
            .enumerate()
        {
            let w = bar_w * value / max_bad;
            let _ = writeln!(
                svg,
                r#"<rect x="{x1}" y="{}" width="{w:.1}" height="10" fill="{colour}"/><text x="{}" y="{}">{value:.0}%</text>"#,
                y + 11.0 * j as f64,
                x1 + w + 3.0,
                y + 9.0 + 11.0 * j as f64
            );
        }
        for (j, (value, colour)) in [(r.ttd_s, "#2980b9"), (r.ttm_s, "#8e44ad")]
            .into_iter()
            .enumerate()
        {
            let Some(value) = value else { continue };
            let w = bar_w * value as f64 / max_time;
            let _ = writeln!(
                svg,
                r#"<rect x="{x2}" y="{}" width="{w:.1}" height="10" fill="{colour}"/><text x="{}" y="{}">{:.1}</text>"#,
                y + 11.0 * j as f64,
                x2 + w + 3.0,
                y + 9.0 + 11.0 * j as f64,
                value as f64 / 60.0
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// Runs past this many are charted one row a family.
pub const CHART_MAX_RUN_ROWS: usize = 40;

/// The Markdown report: the command, the aggregates and every run.
pub fn markdown(command: &str, results: &[RunResult]) -> String {
    format!(
        "# Scenario results\n\nMade by `{command}`.\n\n## By family\n\n{}\n## Runs\n\n{}",
        aggregate_table(&by_family(results)),
        table(results)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 90.0), Some(7));
        let values: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&values, 50.0), Some(5));
        assert_eq!(percentile(&values, 90.0), Some(9));
        assert_eq!(percentile(&values, 100.0), Some(10));
    }
}
