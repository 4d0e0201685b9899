//! Human review: what the harness saw and did over a period, for a human
//! to read — tickets by source and outcome, SLO error budgets over the
//! period, every change applied with its reasoning and a link to its
//! trajectory, reflection findings, and what waits on a human.
//!
//! [`ReportData`] is read from a data directory by the store
//! ([`ReportData::load`], [`crate::report::load::read_report`]); this module only
//! renders it: [`render_markdown`] and [`render_html`] (a standalone page:
//! inline CSS, no script, no external asset, every text escaped).
//!
//! Pure: no I/O, no clock (the period's end is an argument).

pub mod load;

use crate::learn::trajectory::Outcome;
use crate::quantity::{format_duration_ms, format_time_ms};
use crate::store::slo::SloSnapshot;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The most items one list of the report holds (changes, findings, each
/// waiting list); the rest are counted in [`ReportData::omitted`].
pub const MAX_REPORT_ITEMS: usize = 1000;
/// Stage record details are cut to this many characters (the trajectory
/// and the ledger keep them whole).
pub const MAX_DETAIL_CHARS: usize = 300;

/// Tickets per outcome (a ticket's state now, as its trajectory's outcome).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    /// Open, claimed, in progress or verifying.
    pub open: u64,
    pub resolved: u64,
    pub failed: u64,
    pub escalated: u64,
    pub cancelled: u64,
}

impl OutcomeCounts {
    pub fn add(&mut self, outcome: Outcome, count: u64) {
        let slot = match outcome {
            Outcome::Open => &mut self.open,
            Outcome::Resolved => &mut self.resolved,
            Outcome::Failed => &mut self.failed,
            Outcome::Escalated => &mut self.escalated,
            Outcome::Cancelled => &mut self.cancelled,
        };
        *slot += count;
    }

    pub fn total(&self) -> u64 {
        self.open + self.resolved + self.failed + self.escalated + self.cancelled
    }

    fn columns(&self) -> [u64; 6] {
        [
            self.open,
            self.resolved,
            self.failed,
            self.escalated,
            self.cancelled,
            self.total(),
        ]
    }
}

const OUTCOME_COLUMNS: [&str; 6] = [
    "open",
    "resolved",
    "failed",
    "escalated",
    "cancelled",
    "total",
];

/// One SLO's error budget at a moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetPoint {
    pub time_ms: u64,
    /// Fraction of the error budget left (negative when overspent).
    pub budget: Option<f64>,
    pub sli: Option<f64>,
}

/// One SLO over the period, from its snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloBudget {
    pub name: String,
    pub snapshots: u64,
    pub first: BudgetPoint,
    pub last: BudgetPoint,
    /// The lowest budget seen (the first such snapshot); `None` when no
    /// snapshot had one.
    pub min: Option<BudgetPoint>,
    /// Snapshots taken while an alert rule fired.
    pub firing_snapshots: u64,
    /// The loudest severity seen firing (`page` before `ticket`).
    pub loudest: Option<String>,
}

impl SloBudget {
    /// Starts an SLO's summary with its first snapshot.
    pub fn start(snapshot: &SloSnapshot) -> SloBudget {
        let point = point_of(snapshot);
        let mut budget = SloBudget {
            name: snapshot.name.clone(),
            snapshots: 0,
            first: point.clone(),
            last: point,
            min: None,
            firing_snapshots: 0,
            loudest: None,
        };
        budget.add(snapshot);
        budget
    }

    /// Folds in the SLO's next snapshot (oldest first).
    pub fn add(&mut self, snapshot: &SloSnapshot) {
        let point = point_of(snapshot);
        self.snapshots += 1;
        if let Some(value) = point.budget {
            if self
                .min
                .as_ref()
                .and_then(|min| min.budget)
                .is_none_or(|min| value < min)
            {
                self.min = Some(point.clone());
            }
        }
        if let Some(severity) = &snapshot.firing {
            self.firing_snapshots += 1;
            let louder = match self.loudest.as_deref() {
                None => true,
                Some(known) => severity_rank(severity) < severity_rank(known),
            };
            if louder {
                self.loudest = Some(severity.clone());
            }
        }
        if point.time_ms < self.first.time_ms {
            self.first = point;
        } else if point.time_ms >= self.last.time_ms {
            self.last = point;
        }
    }
}

fn point_of(snapshot: &SloSnapshot) -> BudgetPoint {
    BudgetPoint {
        time_ms: snapshot.time_ms,
        budget: snapshot.error_budget_remaining.filter(|v| v.is_finite()),
        sli: snapshot.sli.filter(|v| v.is_finite()),
    }
}

fn severity_rank(severity: &str) -> u8 {
    match severity {
        "page" => 0,
        "ticket" => 1,
        _ => 2,
    }
}

/// Summarises snapshots (any order) per SLO, sorted by name.
pub fn slo_budgets(snapshots: &[SloSnapshot]) -> Vec<SloBudget> {
    let mut sorted: Vec<&SloSnapshot> = snapshots.iter().collect();
    sorted.sort_by(|a, b| (&a.name, a.time_ms).cmp(&(&b.name, b.time_ms)));
    let mut out: BTreeMap<String, SloBudget> = BTreeMap::new();
    for snapshot in sorted {
        match out.get_mut(&snapshot.name) {
            Some(budget) => budget.add(snapshot),
            None => {
                out.insert(snapshot.name.clone(), SloBudget::start(snapshot));
            }
        }
    }
    out.into_values().collect()
}

/// One stage record of a proposal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageLine {
    pub stage: String,
    pub result: String,
    pub time_ms: u64,
    /// Cut to [`MAX_DETAIL_CHARS`].
    pub detail: String,
}

/// One change applied to one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppliedItem {
    pub target: String,
    pub action: String,
    /// The parameters, as compact JSON.
    pub params: String,
    pub time_ms: u64,
    /// The recorded inverse (`action` and compact JSON parameters); `None`
    /// when the action cannot be undone.
    pub inverse: Option<(String, String)>,
    /// Undone by a rollback.
    pub undone: bool,
}

/// A proposal that applied something during the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeItem {
    pub proposal: String,
    pub ticket: String,
    pub ticket_description: String,
    pub ticket_source: String,
    pub ticket_state: String,
    pub agent: String,
    pub rationale: String,
    /// The proposal's stage now (`succeeded`, `rolled_back`, …).
    pub stage: String,
    /// What a terminal stage means, in a sentence (empty while in flight).
    pub outcome: String,
    pub created_ms: u64,
    pub stages: Vec<StageLine>,
    pub applied: Vec<AppliedItem>,
    /// A human's answer, when one was asked (`approved by …: reason`).
    pub decision: Option<String>,
}

impl ChangeItem {
    /// The harness API call answering the ticket's trajectory.
    pub fn trajectory_api(&self) -> String {
        trajectory_api(&self.ticket)
    }

    /// The command showing the ticket's trajectory.
    pub fn trajectory_cli(&self) -> String {
        trajectory_cli(&self.ticket)
    }
}

/// `GET /v1/trajectories/{ticket}`.
pub fn trajectory_api(ticket: &str) -> String {
    format!("GET /v1/trajectories/{ticket}")
}

/// `floodgate trajectory show {ticket}`.
pub fn trajectory_cli(ticket: &str) -> String {
    format!("floodgate trajectory show {ticket}")
}

/// A reflection finding: a help ticket filed during the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingItem {
    pub ticket: String,
    pub state: String,
    pub created_ms: u64,
    /// `hysteresis`, `oscillation`, … (`None` when the ticket's context
    /// carries no readable finding).
    pub kind: Option<String>,
    pub key: Option<String>,
    /// The agent's own words (else the ticket's description).
    pub message: String,
    pub fingerprints: Vec<String>,
    /// Automatic work on `fingerprints` stops until a human answers.
    pub suspend: bool,
    /// The tickets the evidence names.
    pub tickets: Vec<String>,
    /// Each distinct change tried.
    pub tried: Vec<String>,
}

/// A proposal waiting for a human's approval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalItem {
    pub proposal: String,
    pub ticket: String,
    pub agent: String,
    pub rationale: String,
    /// `action {params}` each.
    pub actions: Vec<String>,
    pub reasons: Vec<String>,
    pub requested_ms: Option<u64>,
    pub deadline_ms: Option<u64>,
}

impl ApprovalItem {
    /// An agent's question (a proposal with no actions).
    pub fn is_question(&self) -> bool {
        self.actions.is_empty()
    }
}

/// A ticket handed to a human.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EscalatedItem {
    pub ticket: String,
    pub description: String,
    pub source: String,
    /// When it was escalated (from the ledger; else its last update).
    pub since_ms: u64,
    pub by: String,
    pub reason: String,
}

/// A help ticket nobody has answered yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HelpItem {
    pub ticket: String,
    pub state: String,
    pub created_ms: u64,
    pub kind: Option<String>,
    pub description: String,
}

/// What one notice did to one anomaly episode (from the ledger).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoticeEffect {
    pub time_ms: u64,
    /// The anomaly detector.
    pub anomaly: String,
    /// The value the detector judged.
    pub value: Option<f64>,
    /// Why it went beyond the notice (empty for a suppression).
    pub beyond: String,
}

/// An expected-change notice of the period: its window overlaps the
/// period, or it was announced during it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoticeItem {
    pub id: String,
    pub author: String,
    pub reason: String,
    /// `tenant=acme, anomaly=~request_.*`.
    pub matchers: String,
    pub starts_ms: u64,
    pub ends_ms: u64,
    pub max_factor: Option<f64>,
    /// Its state at the report's end (`pending`, `active`, `expired`).
    pub state: String,
    /// Expired early: when, by whom, why.
    pub expired: Option<(u64, String, String)>,
    /// Anomaly episodes it kept from filing a ticket during the period.
    pub suppressed: Vec<NoticeEffect>,
    /// Anomaly episodes that went beyond it during the period (their
    /// tickets name it).
    pub exceeded: Vec<NoticeEffect>,
}

/// What waits on a human now (whatever the period).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Waiting {
    pub approvals: Vec<ApprovalItem>,
    /// Escalated tickets other than help tickets (those are in `help`).
    pub escalated: Vec<EscalatedItem>,
    pub help: Vec<HelpItem>,
}

impl Waiting {
    pub fn count(&self) -> usize {
        self.approvals.len() + self.escalated.len() + self.help.len()
    }
}

/// Everything a report shows, read from a data directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportData {
    /// The period: from `since_ms` (inclusive) to `now_ms`.
    pub since_ms: u64,
    pub now_ms: u64,
    /// Tickets filed during the period, by source (`slo`, `human`, …),
    /// each by its outcome now.
    pub tickets: BTreeMap<String, OutcomeCounts>,
    /// Per SLO, from the snapshots the observe loop kept during the period.
    pub slos: Vec<SloBudget>,
    /// Whether the data directory keeps SLO snapshots at all (one written
    /// before they existed does not).
    pub slo_history_kept: bool,
    /// Proposals that applied something during the period, oldest first.
    pub changes: Vec<ChangeItem>,
    /// Help tickets filed during the period, oldest first.
    pub findings: Vec<FindingItem>,
    /// Expected-change notices of the period, oldest first, with what
    /// they suppressed.
    pub notices: Vec<NoticeItem>,
    /// Incidents with members filed during the period (ADR 0016): each
    /// owner and the tickets linked to it, oldest member first.
    pub incidents: Vec<crate::store::tickets::Incident>,
    pub waiting: Waiting,
    /// Items left out of a list past [`MAX_REPORT_ITEMS`], by list.
    pub omitted: BTreeMap<String, usize>,
}

impl ReportData {
    /// All tickets filed during the period, by outcome.
    pub fn ticket_totals(&self) -> OutcomeCounts {
        let mut totals = OutcomeCounts::default();
        for counts in self.tickets.values() {
            totals.open += counts.open;
            totals.resolved += counts.resolved;
            totals.failed += counts.failed;
            totals.escalated += counts.escalated;
            totals.cancelled += counts.cancelled;
        }
        totals
    }

    fn title(&self) -> String {
        format!(
            "Floodgate review: {} to {}",
            format_time_ms(self.since_ms),
            format_time_ms(self.now_ms)
        )
    }

    fn summary(&self) -> String {
        let rolled_back = self
            .changes
            .iter()
            .filter(|change| change.applied.iter().any(|applied| applied.undone))
            .count();
        let suppressed: usize = self.notices.iter().map(|n| n.suppressed.len()).sum();
        format!(
            "Over the last {}: {} filed, {} applied ({rolled_back} undone), {}, {} ({} held back); {} on a human.",
            seconds(self.now_ms.saturating_sub(self.since_ms)),
            count(self.ticket_totals().total() as usize, "ticket", "tickets"),
            count(self.changes.len(), "change", "changes"),
            count(
                self.findings.len(),
                "reflection finding",
                "reflection findings"
            ),
            count(self.notices.len(), "expected-change notice", "expected-change notices"),
            count(suppressed, "anomaly", "anomalies"),
            count(self.waiting.count(), "item waits", "items wait"),
        )
    }
}

// ---------------------------------------------------------------------------
// formatting helpers

fn percent(value: Option<f64>) -> String {
    match value {
        Some(value) if value.is_finite() => format!("{:.1}%", value * 100.0),
        _ => "n/a".to_owned(),
    }
}

fn budget_change(budget: &SloBudget) -> String {
    match (budget.first.budget, budget.last.budget) {
        (Some(first), Some(last)) => {
            let points = (last - first) * 100.0;
            if points.abs() < 0.05 {
                "±0.0 pp".to_owned()
            } else {
                format!("{points:+.1} pp")
            }
        }
        _ => "n/a".to_owned(),
    }
}

fn firing_text(budget: &SloBudget) -> String {
    match &budget.loudest {
        Some(loudest) => format!(
            "{} of {} snapshots ({loudest})",
            budget.firing_snapshots, budget.snapshots
        ),
        None => "never".to_owned(),
    }
}

/// A duration to the second (`59m59s`, not `59m59s713ms`).
fn seconds(ms: u64) -> String {
    format_duration_ms(ms / 1000 * 1000)
}

fn deadline_text(deadline_ms: Option<u64>, now_ms: u64) -> String {
    match deadline_ms {
        Some(deadline) if deadline >= now_ms => format!(
            "{} (in {})",
            format_time_ms(deadline),
            seconds(deadline - now_ms)
        ),
        Some(deadline) => format!(
            "{} (overdue by {})",
            format_time_ms(deadline),
            seconds(now_ms - deadline)
        ),
        None => "none".to_owned(),
    }
}

fn value_text(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), crate::quantity::trim_float)
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Cuts `text` to `max` characters, marking the cut.
pub fn cut_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn applied_text(applied: &AppliedItem) -> (String, String) {
    let what = format!(
        "{} on {} {}",
        applied.action, applied.target, applied.params
    );
    let inverse = match &applied.inverse {
        Some((action, params)) => format!("{action} {params}"),
        None => "none (cannot be undone)".to_owned(),
    };
    (what, inverse)
}

// ---------------------------------------------------------------------------
// Markdown

/// Escapes text for Markdown: no character of it starts a link, code,
/// strong text, a table cell, HTML or an entity, and it stays on one line
/// (underscores are left alone: within words they are plain text, and
/// identifiers such as `rolled_back` stay readable in the raw file).
pub fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '&' | '|' => {
                out.push('\\');
                out.push(c);
            }
            // Line breaks and runs of blanks become one space.
            c if c.is_whitespace() => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A code span holding `text` literally (one line).
fn code(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    if longest > 0 || text.starts_with(' ') || text.ends_with(' ') {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

/// `text` as a block quote, indented by `indent`, each line escaped.
fn quote(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        if line.trim().is_empty() {
            let _ = writeln!(out, "{indent}>");
        } else {
            let _ = writeln!(out, "{indent}> {}", markdown_escape(line));
        }
    }
    if text.trim().is_empty() {
        let _ = writeln!(out, "{indent}> (none)");
    }
}

/// The report as Markdown.
pub fn render_markdown(data: &ReportData) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", data.title());
    let _ = writeln!(out, "{}\n", data.summary());

    // What waits on a human first: it is what a reader acts on.
    let _ = writeln!(out, "## Waiting on a human\n");
    let _ = writeln!(out, "### Approvals ({})\n", data.waiting.approvals.len());
    if data.waiting.approvals.is_empty() {
        let _ = writeln!(out, "None.\n");
    }
    for item in &data.waiting.approvals {
        let what = if item.is_question() {
            "question"
        } else {
            "proposal"
        };
        let _ = writeln!(
            out,
            "- **{}** ({what}) on {} by {}: deadline {}",
            markdown_escape(&item.proposal),
            markdown_escape(&item.ticket),
            markdown_escape(&item.agent),
            deadline_text(item.deadline_ms, data.now_ms)
        );
        for reason in &item.reasons {
            let _ = writeln!(out, "  - why a human: {}", markdown_escape(reason));
        }
        for action in &item.actions {
            let _ = writeln!(out, "  - action: {}", code(action));
        }
        let _ = writeln!(out, "  - rationale:\n");
        quote(&mut out, "    ", &item.rationale);
        let _ = writeln!(
            out,
            "\n  - answer: {} or {}",
            code(&format!("floodgate ticket approve {}", item.ticket)),
            code(&format!("floodgate ticket reject {}", item.ticket))
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "### Escalated tickets ({})\n",
        data.waiting.escalated.len()
    );
    if data.waiting.escalated.is_empty() {
        let _ = writeln!(out, "None.\n");
    }
    for item in &data.waiting.escalated {
        let _ = writeln!(
            out,
            "- **{}** ({}) escalated {} by {}: {} — {}",
            markdown_escape(&item.ticket),
            markdown_escape(&item.source),
            format_time_ms(item.since_ms),
            markdown_escape(&item.by),
            markdown_escape(&item.reason),
            markdown_escape(&item.description)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "### Open help tickets ({})\n", data.waiting.help.len());
    if data.waiting.help.is_empty() {
        let _ = writeln!(out, "None.\n");
    }
    for item in &data.waiting.help {
        let _ = writeln!(
            out,
            "- **{}** ({}, {}) filed {}: {}",
            markdown_escape(&item.ticket),
            markdown_escape(item.kind.as_deref().unwrap_or("help")),
            markdown_escape(&item.state),
            format_time_ms(item.created_ms),
            markdown_escape(&cut_chars(&item.description, MAX_DETAIL_CHARS))
        );
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "## Tickets by source and outcome\n");
    let _ = writeln!(
        out,
        "Tickets filed during the period, by their outcome now.\n"
    );
    let _ = writeln!(out, "| source | {} |", OUTCOME_COLUMNS.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(OUTCOME_COLUMNS.len()));
    for (source, counts) in &data.tickets {
        let cells: Vec<String> = counts.columns().iter().map(u64::to_string).collect();
        let _ = writeln!(
            out,
            "| {} | {} |",
            markdown_escape(source),
            cells.join(" | ")
        );
    }
    let totals: Vec<String> = data
        .ticket_totals()
        .columns()
        .iter()
        .map(|n| format!("**{n}**"))
        .collect();
    let _ = writeln!(out, "| **all** | {} |\n", totals.join(" | "));

    let _ = writeln!(out, "## Incidents ({})\n", data.incidents.len());
    if data.incidents.is_empty() {
        let _ = writeln!(out, "No ticket joined another's incident.\n");
    } else {
        let _ = writeln!(
            out,
            "Tickets with a common cause, worked by their owner (ADR 0016): a member waits while its owner is active, and is resolved or escalated with it.\n"
        );
    }
    for incident in &data.incidents {
        let owner = &incident.owner;
        let _ = writeln!(
            out,
            "- **{}** ({}, {}): {} — causes {}",
            markdown_escape(&owner.id),
            owner.state.as_str(),
            markdown_escape(&owner.fingerprint),
            markdown_escape(&owner.objective),
            code(&owner.causes.join(", "))
        );
        for member in &incident.members {
            let _ = writeln!(
                out,
                "  - {} ({}, {}) — causes {}",
                markdown_escape(&member.id),
                member.state.as_str(),
                markdown_escape(&member.fingerprint),
                code(&member.causes.join(", "))
            );
        }
    }
    if !data.incidents.is_empty() {
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "## SLO error budgets\n");
    if !data.slo_history_kept {
        let _ = writeln!(
            out,
            "This data directory keeps no SLO history (written by a harness without `slo_snapshots`).\n"
        );
    } else if data.slos.is_empty() {
        let _ = writeln!(out, "No SLO snapshot during the period.\n");
    } else {
        let _ = writeln!(
            out,
            "Error budget remaining, from the observe loop's snapshots.\n"
        );
        let _ = writeln!(
            out,
            "| SLO | first | last | change | lowest | firing |\n|---|---:|---:|---:|---:|---|"
        );
        for budget in &data.slos {
            let lowest = match &budget.min {
                Some(min) => format!("{} at {}", percent(min.budget), format_time_ms(min.time_ms)),
                None => "n/a".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                markdown_escape(&budget.name),
                percent(budget.first.budget),
                percent(budget.last.budget),
                budget_change(budget),
                lowest,
                firing_text(budget)
            );
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "## Expected changes ({})\n", data.notices.len());
    if data.notices.is_empty() {
        let _ = writeln!(out, "None.\n");
    } else {
        let _ = writeln!(
            out,
            "Notices announced for the period (ADR 0011): an anomaly an active notice covers files no ticket; SLO and invariant tickets are never held back.\n"
        );
    }
    for notice in &data.notices {
        let factor = notice.max_factor.map_or_else(
            || "any move".to_owned(),
            |f| format!("up to {f}× the level"),
        );
        let _ = writeln!(
            out,
            "### {} ({}): {}\n",
            markdown_escape(&notice.id),
            markdown_escape(&notice.state),
            markdown_escape(&notice.reason)
        );
        let _ = writeln!(
            out,
            "- by {}, {} to {}; matches {}; expects {factor}",
            markdown_escape(&notice.author),
            format_time_ms(notice.starts_ms),
            format_time_ms(notice.ends_ms),
            code(&notice.matchers)
        );
        if let Some((time_ms, actor, reason)) = &notice.expired {
            let _ = writeln!(
                out,
                "- expired early {} by {}: {}",
                format_time_ms(*time_ms),
                markdown_escape(actor),
                markdown_escape(reason)
            );
        }
        let _ = writeln!(
            out,
            "- held back {}{}",
            count(
                notice.suppressed.len(),
                "anomaly episode",
                "anomaly episodes"
            ),
            if notice.suppressed.is_empty() {
                ""
            } else {
                ":"
            }
        );
        for effect in &notice.suppressed {
            let _ = writeln!(
                out,
                "  - {} {} at {}",
                format_time_ms(effect.time_ms),
                markdown_escape(&effect.anomaly),
                value_text(effect.value)
            );
        }
        for effect in &notice.exceeded {
            let _ = writeln!(
                out,
                "- went beyond it (ticketed): {} {}: {}",
                format_time_ms(effect.time_ms),
                markdown_escape(&effect.anomaly),
                markdown_escape(&effect.beyond)
            );
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "## Changes made ({})\n", data.changes.len());
    if data.changes.is_empty() {
        let _ = writeln!(out, "None.\n");
    }
    for change in &data.changes {
        let _ = writeln!(
            out,
            "### {} on {}: {}\n",
            markdown_escape(&change.proposal),
            markdown_escape(&change.ticket),
            markdown_escape(&change.stage)
        );
        let _ = writeln!(
            out,
            "- ticket: {} ({}, now {})",
            markdown_escape(&change.ticket_description),
            markdown_escape(&change.ticket_source),
            markdown_escape(&change.ticket_state)
        );
        let _ = writeln!(
            out,
            "- agent: {}, proposed {}",
            markdown_escape(&change.agent),
            format_time_ms(change.created_ms)
        );
        let _ = writeln!(out, "- rationale:\n");
        quote(&mut out, "  ", &change.rationale);
        let _ = writeln!(out);
        let _ = writeln!(out, "- applied:");
        for applied in &change.applied {
            let (what, inverse) = applied_text(applied);
            let undone = if applied.undone { " (undone)" } else { "" };
            let _ = writeln!(
                out,
                "  - {} {}{undone}; inverse {}",
                format_time_ms(applied.time_ms),
                code(&what),
                code(&inverse)
            );
        }
        let _ = writeln!(out, "- stages:");
        for line in &change.stages {
            let detail = if line.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", markdown_escape(&line.detail))
            };
            let _ = writeln!(
                out,
                "  - {} {} {}{detail}",
                format_time_ms(line.time_ms),
                markdown_escape(&line.stage),
                markdown_escape(&line.result)
            );
        }
        if let Some(decision) = &change.decision {
            let _ = writeln!(out, "- human: {}", markdown_escape(decision));
        }
        if !change.outcome.is_empty() {
            let _ = writeln!(out, "- outcome: {}", markdown_escape(&change.outcome));
        }
        let _ = writeln!(
            out,
            "- trajectory: {} · {}\n",
            code(&change.trajectory_api()),
            code(&change.trajectory_cli())
        );
    }

    let _ = writeln!(out, "## Reflection findings ({})\n", data.findings.len());
    if data.findings.is_empty() {
        let _ = writeln!(out, "None.\n");
    }
    for finding in &data.findings {
        let _ = writeln!(
            out,
            "### {}: {} ({})\n",
            markdown_escape(&finding.ticket),
            markdown_escape(finding.kind.as_deref().unwrap_or("help")),
            markdown_escape(&finding.state)
        );
        quote(&mut out, "", &finding.message);
        let _ = writeln!(out);
        let _ = writeln!(out, "- filed {}", format_time_ms(finding.created_ms));
        if !finding.fingerprints.is_empty() {
            let suspended = if finding.suspend {
                " (automatic work suspended until a human answers)"
            } else {
                ""
            };
            let names: Vec<String> = finding.fingerprints.iter().map(|f| code(f)).collect();
            let _ = writeln!(out, "- fingerprints: {}{suspended}", names.join(", "));
        }
        if !finding.tickets.is_empty() {
            let _ = writeln!(
                out,
                "- evidence: {}",
                markdown_escape(&finding.tickets.join(", "))
            );
        }
        for tried in &finding.tried {
            let _ = writeln!(out, "- tried: {}", code(tried));
        }
        let _ = writeln!(out);
    }

    if !data.omitted.is_empty() {
        let _ = writeln!(out, "## Left out\n");
        for (list, count) in &data.omitted {
            let _ = writeln!(
                out,
                "- {}: {count} more than the {MAX_REPORT_ITEMS} shown",
                markdown_escape(list)
            );
        }
        let _ = writeln!(out);
    }
    out
}

// ---------------------------------------------------------------------------
// HTML

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d232b;background:#f6f7f9;margin:0}
main{max-width:1060px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{margin-top:36px;border-bottom:2px solid #d8dde3;padding-bottom:4px}
h3{margin:22px 0 8px}
.summary{color:#47515e}
nav a{margin-right:14px}
table{border-collapse:collapse;background:#fff;margin:8px 0}
th,td{border:1px solid #d8dde3;padding:5px 10px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;background:#eef1f4}
.card{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:12px 16px;margin:12px 0}
.card h3{margin-top:0}
.tag{display:inline-block;border-radius:10px;padding:0 8px;font-size:.85em;background:#e6e9ee}
.tag.succeeded,.tag.resolved{background:#d7f0dc}
.tag.rolled_back,.tag.failed,.tag.error,.tag.rejected,.tag.escalated,.tag.overdue{background:#f8d9d6}
.tag.awaiting_approval,.tag.open,.tag.canary,.tag.deploying,.tag.verifying{background:#fdf0c9}
blockquote{margin:6px 0;padding:6px 12px;border-left:4px solid #9aa7b6;background:#f2f4f7;white-space:pre-wrap}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef1f4;padding:1px 4px;border-radius:3px;word-break:break-all}
ul{padding-left:22px}
.bar{display:inline-block;width:80px;height:8px;background:#e6e9ee;border-radius:4px;vertical-align:middle;margin-left:6px}
.bar span{display:block;height:8px;border-radius:4px;background:#3f8f55}
.bar span.low{background:#c0392b}
.muted{color:#6b7682}
";

fn tag(text: &str) -> String {
    let class: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    format!("<span class=\"tag {class}\">{}</span>", html_escape(text))
}

fn bar(value: Option<f64>) -> String {
    let Some(value) = value.filter(|v| v.is_finite()) else {
        return String::new();
    };
    let width = (value * 100.0).clamp(0.0, 100.0);
    let class = if value < 0.25 { " class=\"low\"" } else { "" };
    format!("<span class=\"bar\"><span{class} style=\"width:{width:.0}%\"></span></span>")
}

fn html_quote(text: &str) -> String {
    if text.trim().is_empty() {
        return "<blockquote class=\"muted\">(none)</blockquote>".to_owned();
    }
    format!("<blockquote>{}</blockquote>", html_escape(text.trim_end()))
}

/// The report as a standalone HTML page (inline CSS; no script, no
/// external asset; every text escaped).
pub fn render_html(data: &ReportData) -> String {
    let e = html_escape;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        e(&data.title())
    );
    let _ = writeln!(out, "<h1>{}</h1>", e(&data.title()));
    let _ = writeln!(out, "<p class=\"summary\">{}</p>", e(&data.summary()));
    let _ = writeln!(
        out,
        "<nav><a href=\"#waiting\">Waiting on a human</a><a href=\"#tickets\">Tickets</a><a href=\"#slos\">SLO budgets</a><a href=\"#notices\">Expected changes</a><a href=\"#changes\">Changes</a><a href=\"#findings\">Findings</a></nav>"
    );

    // Waiting on a human.
    let _ = writeln!(
        out,
        "<section id=\"waiting\">\n<h2>Waiting on a human ({})</h2>",
        data.waiting.count()
    );
    let _ = writeln!(out, "<h3>Approvals ({})</h3>", data.waiting.approvals.len());
    if data.waiting.approvals.is_empty() {
        let _ = writeln!(out, "<p class=\"muted\">None.</p>");
    }
    for item in &data.waiting.approvals {
        let overdue = item.deadline_ms.is_some_and(|d| d < data.now_ms);
        let what = if item.is_question() {
            "question"
        } else {
            "proposal"
        };
        let _ =
            writeln!(
            out,
            "<div class=\"card\"><h3>{} <span class=\"muted\">({what}) on {} by {}</span> {}</h3>",
            e(&item.proposal),
            e(&item.ticket),
            e(&item.agent),
            if overdue { tag("overdue") } else { tag("awaiting_approval") }
        );
        let _ = writeln!(
            out,
            "<p>Deadline: {}</p>",
            e(&deadline_text(item.deadline_ms, data.now_ms))
        );
        if !item.reasons.is_empty() {
            let _ = writeln!(out, "<p>Why a human:</p><ul>");
            for reason in &item.reasons {
                let _ = writeln!(out, "<li>{}</li>", e(reason));
            }
            let _ = writeln!(out, "</ul>");
        }
        if !item.actions.is_empty() {
            let _ = writeln!(out, "<p>Actions:</p><ul>");
            for action in &item.actions {
                let _ = writeln!(out, "<li><code>{}</code></li>", e(action));
            }
            let _ = writeln!(out, "</ul>");
        }
        let _ = writeln!(out, "<p>Rationale:</p>{}", html_quote(&item.rationale));
        let _ = writeln!(
            out,
            "<p>Answer: <code>floodgate ticket approve {t}</code> or <code>floodgate ticket reject {t}</code></p></div>",
            t = e(&item.ticket)
        );
    }
    let _ = writeln!(
        out,
        "<h3>Escalated tickets ({})</h3>",
        data.waiting.escalated.len()
    );
    if data.waiting.escalated.is_empty() {
        let _ = writeln!(out, "<p class=\"muted\">None.</p>");
    } else {
        let _ = writeln!(
            out,
            "<table><tr><th>ticket</th><th>source</th><th>escalated</th><th>by</th><th>reason</th><th>description</th></tr>"
        );
        for item in &data.waiting.escalated {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&item.ticket),
                e(&item.source),
                e(&format_time_ms(item.since_ms)),
                e(&item.by),
                e(&item.reason),
                e(&item.description)
            );
        }
        let _ = writeln!(out, "</table>");
    }
    let _ = writeln!(
        out,
        "<h3>Open help tickets ({})</h3>",
        data.waiting.help.len()
    );
    if data.waiting.help.is_empty() {
        let _ = writeln!(out, "<p class=\"muted\">None.</p>");
    } else {
        let _ = writeln!(
            out,
            "<table><tr><th>ticket</th><th>finding</th><th>state</th><th>filed</th><th>description</th></tr>"
        );
        for item in &data.waiting.help {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&item.ticket),
                e(item.kind.as_deref().unwrap_or("help")),
                tag(&item.state),
                e(&format_time_ms(item.created_ms)),
                e(&cut_chars(&item.description, MAX_DETAIL_CHARS))
            );
        }
        let _ = writeln!(out, "</table>");
    }
    let _ = writeln!(out, "</section>");

    // Tickets.
    let _ = writeln!(
        out,
        "<section id=\"tickets\">\n<h2>Tickets by source and outcome</h2>\n<p class=\"muted\">Tickets filed during the period, by their outcome now.</p>"
    );
    let _ = write!(out, "<table><tr><th>source</th>");
    for column in OUTCOME_COLUMNS {
        let _ = write!(out, "<th>{column}</th>");
    }
    let _ = writeln!(out, "</tr>");
    for (source, counts) in &data.tickets {
        let _ = write!(out, "<tr><td>{}</td>", e(source));
        for n in counts.columns() {
            let _ = write!(out, "<td class=\"n\">{n}</td>");
        }
        let _ = writeln!(out, "</tr>");
    }
    let _ = write!(out, "<tr class=\"total\"><td>all</td>");
    for n in data.ticket_totals().columns() {
        let _ = write!(out, "<td class=\"n\">{n}</td>");
    }
    let _ = writeln!(out, "</tr></table>");
    let _ = writeln!(out, "<h3>Incidents ({})</h3>", data.incidents.len());
    if data.incidents.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"muted\">No ticket joined another's incident.</p>"
        );
    } else {
        let _ = writeln!(
            out,
            "<p class=\"muted\">Tickets with a common cause, worked by their owner (ADR 0016): a member waits while its owner is active, and is resolved or escalated with it.</p>\n<ul>"
        );
        for incident in &data.incidents {
            let owner = &incident.owner;
            let _ = write!(
                out,
                "<li><b>{}</b> ({}, {}): {} — causes <code>{}</code><ul>",
                e(&owner.id),
                owner.state.as_str(),
                e(&owner.fingerprint),
                e(&owner.objective),
                e(&owner.causes.join(", "))
            );
            for member in &incident.members {
                let _ = write!(
                    out,
                    "<li>{} ({}, {}) — causes <code>{}</code></li>",
                    e(&member.id),
                    member.state.as_str(),
                    e(&member.fingerprint),
                    e(&member.causes.join(", "))
                );
            }
            let _ = writeln!(out, "</ul></li>");
        }
        let _ = writeln!(out, "</ul>");
    }
    let _ = writeln!(out, "</section>");

    // SLO budgets.
    let _ = writeln!(out, "<section id=\"slos\">\n<h2>SLO error budgets</h2>");
    if !data.slo_history_kept {
        let _ = writeln!(
            out,
            "<p class=\"muted\">This data directory keeps no SLO history (written by a harness without <code>slo_snapshots</code>).</p>"
        );
    } else if data.slos.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"muted\">No SLO snapshot during the period.</p>"
        );
    } else {
        let _ = writeln!(
            out,
            "<table><tr><th>SLO</th><th>first</th><th>last</th><th>change</th><th>lowest</th><th>firing</th></tr>"
        );
        for budget in &data.slos {
            let lowest = match &budget.min {
                Some(min) => format!(
                    "{} <span class=\"muted\">at {}</span>",
                    e(&percent(min.budget)),
                    e(&format_time_ms(min.time_ms))
                ),
                None => "n/a".to_owned(),
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}{}</td><td class=\"n\">{}</td><td class=\"n\">{lowest}</td><td>{}</td></tr>",
                e(&budget.name),
                e(&percent(budget.first.budget)),
                e(&percent(budget.last.budget)),
                bar(budget.last.budget),
                e(&budget_change(budget)),
                e(&firing_text(budget))
            );
        }
        let _ = writeln!(out, "</table>");
    }
    let _ = writeln!(out, "</section>");

    // Expected changes.
    let _ = writeln!(
        out,
        "<section id=\"notices\">\n<h2>Expected changes ({})</h2>",
        data.notices.len()
    );
    if data.notices.is_empty() {
        let _ = writeln!(out, "<p class=\"muted\">None.</p>");
    } else {
        let _ = writeln!(
            out,
            "<p class=\"muted\">Notices announced for the period (ADR 0011): an anomaly an active notice covers files no ticket; SLO and invariant tickets are never held back.</p>"
        );
        let _ = writeln!(
            out,
            "<table><tr><th>notice</th><th>state</th><th>by</th><th>window</th><th>matches</th><th>max factor</th><th>reason</th><th>held back</th><th>went beyond</th></tr>"
        );
        for notice in &data.notices {
            let expired =
                notice
                    .expired
                    .as_ref()
                    .map_or_else(String::new, |(time_ms, actor, reason)| {
                        format!(
                            "<br><span class=\"muted\">expired early {} by {}: {}</span>",
                            e(&format_time_ms(*time_ms)),
                            e(actor),
                            e(reason)
                        )
                    });
            let effects = |effects: &[NoticeEffect], beyond: bool| -> String {
                if effects.is_empty() {
                    return "0".to_owned();
                }
                let items: Vec<String> = effects
                    .iter()
                    .map(|effect| {
                        let why = if beyond {
                            format!(": {}", e(&effect.beyond))
                        } else {
                            String::new()
                        };
                        format!(
                            "<li>{} {} at {}{why}</li>",
                            e(&format_time_ms(effect.time_ms)),
                            e(&effect.anomaly),
                            e(&value_text(effect.value))
                        )
                    })
                    .collect();
                format!("{}<ul>{}</ul>", effects.len(), items.join(""))
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}{expired}</td><td>{}</td><td>{} to {}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&notice.id),
                tag(&notice.state),
                e(&notice.author),
                e(&format_time_ms(notice.starts_ms)),
                e(&format_time_ms(notice.ends_ms)),
                e(&notice.matchers),
                notice
                    .max_factor
                    .map_or_else(|| "none".to_owned(), |f| format!("{f}×")),
                e(&notice.reason),
                effects(&notice.suppressed, false),
                effects(&notice.exceeded, true)
            );
        }
        let _ = writeln!(out, "</table>");
    }
    let _ = writeln!(out, "</section>");

    // Changes.
    let _ = writeln!(
        out,
        "<section id=\"changes\">\n<h2>Changes made ({})</h2>",
        data.changes.len()
    );
    if data.changes.is_empty() {
        let _ = writeln!(out, "<p class=\"muted\">None.</p>");
    }
    for change in &data.changes {
        let _ = writeln!(
            out,
            "<div class=\"card\"><h3>{} <span class=\"muted\">on {}</span> {}</h3>",
            e(&change.proposal),
            e(&change.ticket),
            tag(&change.stage)
        );
        let _ = writeln!(
            out,
            "<p>Ticket: {} <span class=\"muted\">({}, now {})</span><br>Agent: {}, proposed {}</p>",
            e(&change.ticket_description),
            e(&change.ticket_source),
            e(&change.ticket_state),
            e(&change.agent),
            e(&format_time_ms(change.created_ms))
        );
        let _ = writeln!(out, "<p>Rationale:</p>{}", html_quote(&change.rationale));
        let _ = writeln!(
            out,
            "<table><tr><th>applied</th><th>change</th><th>inverse</th><th></th></tr>"
        );
        for applied in &change.applied {
            let (what, inverse) = applied_text(applied);
            let _ =
                writeln!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                e(&format_time_ms(applied.time_ms)),
                e(&what),
                e(&inverse),
                if applied.undone { tag("undone") } else { String::new() }
            );
        }
        let _ = writeln!(out, "</table>\n<p>Stages:</p><ul>");
        for line in &change.stages {
            let detail = if line.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", e(&line.detail))
            };
            let _ = writeln!(
                out,
                "<li><span class=\"muted\">{}</span> {} {}{detail}</li>",
                e(&format_time_ms(line.time_ms)),
                e(&line.stage),
                e(&line.result)
            );
        }
        let _ = writeln!(out, "</ul>");
        if let Some(decision) = &change.decision {
            let _ = writeln!(out, "<p>Human: {}</p>", e(decision));
        }
        if !change.outcome.is_empty() {
            let _ = writeln!(out, "<p>Outcome: {}</p>", e(&change.outcome));
        }
        let _ = writeln!(
            out,
            "<p>Trajectory: <code>{}</code> · <code>{}</code></p></div>",
            e(&change.trajectory_api()),
            e(&change.trajectory_cli())
        );
    }
    let _ = writeln!(out, "</section>");

    // Findings.
    let _ = writeln!(
        out,
        "<section id=\"findings\">\n<h2>Reflection findings ({})</h2>",
        data.findings.len()
    );
    if data.findings.is_empty() {
        let _ = writeln!(out, "<p class=\"muted\">None.</p>");
    }
    for finding in &data.findings {
        let _ = writeln!(
            out,
            "<div class=\"card\"><h3>{} <span class=\"muted\">{}</span> {}</h3>",
            e(&finding.ticket),
            e(finding.kind.as_deref().unwrap_or("help")),
            tag(&finding.state)
        );
        let _ = writeln!(out, "{}", html_quote(&finding.message));
        let _ = writeln!(
            out,
            "<ul><li>filed {}</li>",
            e(&format_time_ms(finding.created_ms))
        );
        if !finding.fingerprints.is_empty() {
            let names: Vec<String> = finding
                .fingerprints
                .iter()
                .map(|f| format!("<code>{}</code>", e(f)))
                .collect();
            let suspended = if finding.suspend {
                " (automatic work suspended until a human answers)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<li>fingerprints: {}{suspended}</li>",
                names.join(", ")
            );
        }
        if !finding.tickets.is_empty() {
            let _ = writeln!(out, "<li>evidence: {}</li>", e(&finding.tickets.join(", ")));
        }
        for tried in &finding.tried {
            let _ = writeln!(out, "<li>tried: <code>{}</code></li>", e(tried));
        }
        let _ = writeln!(out, "</ul></div>");
    }
    let _ = writeln!(out, "</section>");

    if !data.omitted.is_empty() {
        let _ = writeln!(out, "<section id=\"omitted\">\n<h2>Left out</h2><ul>");
        for (list, count) in &data.omitted {
            let _ = writeln!(
                out,
                "<li>{}: {count} more than the {MAX_REPORT_ITEMS} shown</li>",
                e(list)
            );
        }
        let _ = writeln!(out, "</ul></section>");
    }
    let _ = writeln!(
        out,
        "<p class=\"muted\">Generated {} by floodgate {}.</p>\n</main>\n</body>\n</html>",
        e(&format_time_ms(data.now_ms)),
        env!("CARGO_PKG_VERSION")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(
        name: &str,
        time_ms: u64,
        budget: Option<f64>,
        firing: Option<&str>,
    ) -> SloSnapshot {
        SloSnapshot {
            time_ms,
            name: name.to_owned(),
            sli: Some(0.999),
            error_budget_remaining: budget,
            firing: firing.map(str::to_owned),
            burn_rates: serde_json::Value::Array(Vec::new()),
        }
    }

    #[test]
    fn budgets_keep_first_last_and_lowest_per_slo_whatever_the_order() {
        let snapshots = vec![
            snapshot("latency", 3_000, Some(0.5), Some("ticket")),
            snapshot("availability", 2_000, Some(0.4), Some("ticket")),
            snapshot("availability", 1_000, Some(0.9), None),
            snapshot("availability", 4_000, None, Some("page")),
            snapshot("availability", 3_000, Some(0.7), None),
        ];
        let budgets = slo_budgets(&snapshots);
        assert_eq!(budgets.len(), 2);
        let availability = &budgets[0];
        assert_eq!(availability.name, "availability");
        assert_eq!(availability.snapshots, 4);
        assert_eq!(availability.first.time_ms, 1_000);
        assert_eq!(availability.first.budget, Some(0.9));
        assert_eq!(availability.last.time_ms, 4_000);
        assert_eq!(availability.last.budget, None);
        let min = availability.min.as_ref().expect("a lowest budget");
        assert_eq!((min.time_ms, min.budget), (2_000, Some(0.4)));
        assert_eq!(availability.firing_snapshots, 2);
        assert_eq!(availability.loudest.as_deref(), Some("page"));
        assert_eq!(budgets[1].name, "latency");
        assert_eq!(budgets[1].snapshots, 1);
    }

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            html_escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(
            markdown_escape("<b>*x*</b> | [l](u)\n\n  next"),
            "\\<b\\>\\*x\\*\\</b\\> \\| \\[l\\](u) next"
        );
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(cut_chars("héllo", 2), "hé…");
        assert_eq!(cut_chars("hé", 2), "hé");
    }
}
