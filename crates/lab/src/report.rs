//! The suite's figures: per run and in aggregate, as a table, JSON,
//! Markdown and a hand-written SVG chart.

use crate::oracle::Verdict;
use crate::run::RunResult;
use crate::scenario::Outcome;
use serde::Serialize;
use std::fmt::Write as _;

/// The aggregate over a suite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    pub runs: usize,
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    /// Fault runs expecting mitigation, and how many were mitigated.
    pub mitigate_runs: usize,
    pub mitigated: usize,
    /// mitigated / mitigate_runs (1 when there are none).
    pub mitigation_rate: f64,
    pub escalate_runs: usize,
    pub escalated_correctly: usize,
    pub control_runs: usize,
    /// Tickets on control runs (CI fails on any).
    pub false_alarms: usize,
    /// Tickets filed before the first injection of fault runs.
    pub early_alarms: usize,
    pub detected: usize,
    pub fault_runs: usize,
    pub mean_ttd_s: Option<f64>,
    pub mean_ttm_s: Option<f64>,
    pub actions: usize,
    pub rollbacks: usize,
    pub bad_minutes: f64,
    pub baseline_bad_minutes: f64,
    pub budget_burned_pct: f64,
    pub baseline_budget_burned_pct: f64,
}

fn mean(values: &[u64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<u64>() as f64 / values.len() as f64)
}

pub fn aggregate(results: &[RunResult]) -> Aggregate {
    let with = |outcome: Outcome| {
        results
            .iter()
            .filter(move |r| r.expected == outcome.as_str())
    };
    let mitigate_runs = with(Outcome::Mitigate).count();
    let mitigated = with(Outcome::Mitigate)
        .filter(|r| r.verdict == Verdict::Pass)
        .count();
    let faults: Vec<&RunResult> = results
        .iter()
        .filter(|r| r.expected != Outcome::Quiet.as_str())
        .collect();
    let ttd: Vec<u64> = faults.iter().filter_map(|r| r.figures.ttd_s).collect();
    let ttm: Vec<u64> = faults.iter().filter_map(|r| r.figures.ttm_s).collect();
    Aggregate {
        runs: results.len(),
        pass: results
            .iter()
            .filter(|r| r.verdict == Verdict::Pass)
            .count(),
        fail: results
            .iter()
            .filter(|r| r.verdict == Verdict::Fail)
            .count(),
        error: results
            .iter()
            .filter(|r| r.verdict == Verdict::Error)
            .count(),
        mitigate_runs,
        mitigated,
        mitigation_rate: if mitigate_runs == 0 {
            1.0
        } else {
            mitigated as f64 / mitigate_runs as f64
        },
        escalate_runs: with(Outcome::Escalate).count(),
        escalated_correctly: with(Outcome::Escalate)
            .filter(|r| r.verdict == Verdict::Pass)
            .count(),
        control_runs: with(Outcome::Quiet).count(),
        false_alarms: with(Outcome::Quiet).map(|r| r.figures.false_alarms).sum(),
        early_alarms: faults.iter().map(|r| r.figures.false_alarms).sum(),
        detected: faults.iter().filter(|r| r.figures.detected).count(),
        fault_runs: faults.len(),
        mean_ttd_s: mean(&ttd),
        mean_ttm_s: mean(&ttm),
        actions: results.iter().map(|r| r.figures.actions).sum(),
        rollbacks: results.iter().map(|r| r.figures.rollbacks).sum(),
        bad_minutes: results.iter().map(|r| r.figures.bad_minutes).sum(),
        baseline_bad_minutes: results.iter().map(|r| r.figures.baseline_bad_minutes).sum(),
        budget_burned_pct: results.iter().map(|r| r.figures.budget_burned_pct).sum(),
        baseline_budget_burned_pct: results
            .iter()
            .map(|r| r.figures.baseline_budget_burned_pct)
            .sum(),
    }
}

fn opt(value: Option<u64>) -> String {
    value.map_or("-".into(), |v| format!("{v}s"))
}

/// The results table (Markdown; also what the command prints).
pub fn table(results: &[RunResult]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | seed | agent | expected | verdict | detected | TTD | TTM | escalated | false alarms | actions | rollbacks | budget burned (agent / none) | why |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        let f = &r.figures;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0}% / {:.0}% | {} |",
            r.scenario,
            r.seed,
            r.agent.as_str(),
            r.expected,
            r.verdict.as_str(),
            if f.detected { "yes" } else { "no" },
            opt(f.ttd_s),
            opt(f.ttm_s),
            if f.escalated { "yes" } else { "no" },
            f.false_alarms,
            f.actions,
            f.rollbacks,
            f.budget_burned_pct,
            f.baseline_budget_burned_pct,
            r.why.replace('|', "/"),
        );
    }
    out
}

pub fn aggregate_table(a: &Aggregate) -> String {
    let secs = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}s"));
    format!(
        "| runs | pass | fail | error | mitigated | escalated correctly | detected | false alarms (control runs) | alarms before a fault | mean TTD | mean TTM | actions | rollbacks | budget burned (agent / none) | bad minutes (agent / none) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n\
         | {} | {} | {} | {} | {}/{} ({:.0}%) | {}/{} | {}/{} | {} ({}) | {} | {} | {} | {} | {} | {:.0}% / {:.0}% | {:.1} / {:.1} |\n",
        a.runs,
        a.pass,
        a.fail,
        a.error,
        a.mitigated,
        a.mitigate_runs,
        a.mitigation_rate * 100.0,
        a.escalated_correctly,
        a.escalate_runs,
        a.detected,
        a.fault_runs,
        a.false_alarms,
        a.control_runs,
        a.early_alarms,
        secs(a.mean_ttd_s),
        secs(a.mean_ttm_s),
        a.actions,
        a.rollbacks,
        a.budget_burned_pct,
        a.baseline_budget_burned_pct,
        a.bad_minutes,
        a.baseline_bad_minutes,
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Two bar groups per run: error budget burned with and without the
/// agent (% of the 30-day budget), and TTD / TTM in minutes.
pub fn chart(results: &[RunResult]) -> String {
    let row = 28.0;
    let label_w = 230.0;
    let bar_w = 260.0;
    let height = 70.0 + row * results.len() as f64;
    let gap = 120.0;
    let width = label_w + 2.0 * bar_w + gap + 60.0;
    let max_bad = results
        .iter()
        .map(|r| {
            r.figures
                .budget_burned_pct
                .max(r.figures.baseline_budget_burned_pct)
        })
        .fold(1.0, f64::max);
    let max_time = results
        .iter()
        .flat_map(|r| [r.figures.ttd_s, r.figures.ttm_s])
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
    let _ = writeln!(
        svg,
        r##"<text x="{x2}" y="16" font-weight="bold">minutes after injection: <tspan fill="#2980b9">TTD</tspan> / <tspan fill="#8e44ad">TTM</tspan> (max {:.0})</text>"##,
        max_time / 60.0
    );
    for (i, r) in results.iter().enumerate() {
        let y = 40.0 + row * i as f64;
        let _ = writeln!(
            svg,
            r#"<text x="4" y="{}">{} s{} [{}]</text>"#,
            y + 14.0,
            escape(&r.scenario),
            r.seed,
            r.verdict.as_str()
        );
        let f = &r.figures;
        for (j, (value, colour)) in [
            (f.baseline_budget_burned_pct, "#c0392b"),
            (f.budget_burned_pct, "#27ae60"),
        ]
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
        for (j, (value, colour)) in [(f.ttd_s, "#2980b9"), (f.ttm_s, "#8e44ad")]
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

/// The Markdown report: the command, the aggregate and every run.
pub fn markdown(command: &str, results: &[RunResult]) -> String {
    format!(
        "# Scenario results\n\nMade by `{command}`.\n\n## Aggregate\n\n{}\n## Runs\n\n{}",
        aggregate_table(&aggregate(results)),
        table(results)
    )
}
