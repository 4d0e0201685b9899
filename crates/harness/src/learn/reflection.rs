//! Self-reflection: the agents look back at their own work across tickets
//! and notice when they should stop and ask a human
//! (docs/adr/0009-reflection-thresholds.md).
//!
//! Six patterns, five with named thresholds ([`Thresholds`]):
//!
//! | finding | when | suspends? |
//! |---|---|---|
//! | [`FindingKind::Hysteresis`] | one fingerprint fixed (a proposal succeeded, or was kept because it relieved the problem, ADR 0025) `same_fix_count` times within `same_fix_window`; or the same restoring fix (`rollback_config`, [`RESTORING_ACTIONS`]) that many times across fingerprints | yes |
//! | [`FindingKind::EscalatingFix`] | the last `escalation_min_values` values one target's parameter was set to each differ from the one before by `escalation_factor` or more, the same way (64 → 128 → 256 → 512) | yes |
//! | [`FindingKind::Oscillation`] | a target's setting flaps: weighted percent state change over its last `flap_window` changes above `flap_high`, until below `flap_low` | yes |
//! | [`FindingKind::NonConvergence`] | a ticket with `max_failed_attempts` failed or rolled-back proposals, or open `never_met_after` with its criteria never met | no |
//! | [`FindingKind::RepeatedEscalation`] | a problem type whose recent tickets ended with a human `escalation_ratio` of the time | no |
//! | [`FindingKind::Contested`] | someone outside the pipeline changed the config under an agent's change (a proposal's `collided` record: an undo refused, or a kept change the config moved past, ADR 0023, ADR 0026); once is enough | yes |
//!
//! Pure: the caller builds a [`History`] from stored tickets and proposals,
//! calls [`reflect`] with the previous [`ReflectionState`] and the time, and
//! gets findings and the next state. Nothing here reads a clock or does I/O;
//! records dated after `now_ms` are ignored. [`help_ticket`] turns a finding
//! into the ticket a human answers.
//!
//! Keys: every finding has a stable [`Finding::key`] naming the pattern's
//! subject (a fingerprint, a target's parameter, a ticket, a problem type),
//! so a caller that re-runs reflection files one help ticket per pattern
//! (the key is the help ticket's fingerprint). When a human answers, the
//! caller calls [`ReflectionState::answer`]: evidence up to that moment no
//! longer counts for that key, so the finding stops until the pattern forms
//! again from new evidence.
//!
//! Oscillation is judged as Nagios and Sensu judge flapping: the series'
//! last `flap_window` states, each state change weighted from
//! [`FLAP_WEIGHT_OLDEST`] (oldest) to [`FLAP_WEIGHT_NEWEST`] (newest),
//! as a percentage of the changes possible. The window counts changes,
//! not time, so a slow oscillation (one move a day) is caught as surely as
//! a fast one. The states of a series:
//! - a numeric parameter (`requests_per_unit`, `max_keys`): the direction of
//!   each move (up or down; setting the same value again is no move), so a
//!   change of state is a reversal and a steady climb is not flapping (it is
//!   an escalating fix);
//! - a boolean or short string parameter (`shadow`, `policy`, `unit`): the
//!   value set;
//! - an action with an inverse of another name (`add_limit`/`remove_limit`,
//!   `drain`/`undrain`, from the contract's catalog): which of the two ran.

use crate::change::proposal::Stage;
use crate::observe::objectives::FileError;
use crate::quantity::{format_duration_ms, trim_float, Factor, Percent, Span, HOUR_MS};
use crate::tickets::{
    bound_context, FieldError, NewTicket, Objective, Priority, Source, TicketState, TicketType,
    MAX_CONSTRAINT_BYTES, MAX_DESCRIPTION_BYTES, MAX_FINGERPRINT_BYTES,
};
use floodgate_contract::text::clip as cut;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The largest thresholds file accepted.
pub const MAX_THRESHOLDS_BYTES: usize = 64 * 1024;
/// The largest `flap_window`: Nagios keeps 21 states; a window much longer
/// would take weeks of changes to stop flapping.
pub const MAX_FLAP_WINDOW: u32 = 100;
/// The largest `escalation_lookback`, in tickets.
pub const MAX_ESCALATION_LOOKBACK: u32 = 1000;
/// The weight of the oldest state change in the flap window (Sensu's
/// curve; Nagios weights recent changes more the same way).
pub const FLAP_WEIGHT_OLDEST: f64 = 0.8;
/// The weight of the newest state change in the flap window.
pub const FLAP_WEIGHT_NEWEST: f64 = 1.2;
/// Evidence kept per finding (timeline entries, ticket and proposal ids):
/// the newest are kept, the rest counted in [`Evidence::omitted`].
pub const MAX_EVIDENCE_ITEMS: usize = 64;
/// Ids named in a finding's message before "and N more".
pub const MAX_MESSAGE_IDS: usize = 8;
/// Values shown in a trajectory (`64 → 128 → 256 → 512`), the newest.
pub const MAX_TRAJECTORY_VALUES: usize = 8;
/// The longest message; longer ones are cut at a character boundary.
pub const MAX_MESSAGE_BYTES: usize = 2048;
/// The longest key: a longer subject is replaced by its hash, so the help
/// ticket's fingerprint (`reflection:` + key) stays within bounds.
pub const MAX_KEY_BYTES: usize = 200;
/// Answers remembered by [`ReflectionState`]; the oldest are forgotten.
pub const MAX_ANSWERED: usize = 10_000;
/// How deep [`FixRecord::numeric_params`] looks into nested objects, and
/// how many values it returns.
pub const MAX_PARAM_DEPTH: usize = 4;
pub const MAX_NUMERIC_PARAMS: usize = 64;
/// The longest string parameter treated as a setting (longer strings are
/// documents, like a whole config).
pub const MAX_SETTING_BYTES: usize = 64;
/// Parameters that name what is changed, or carry a document, rather than
/// the value it is set to: never a series of their own.
pub const IDENTIFIER_PARAMS: &[&str] = &[
    "domain",
    "limit",
    "path",
    "key_prefix",
    "yaml",
    "to_version",
    "reason",
    "actor",
];

// ---------------------------------------------------------------------------
// input

/// How a proposal ended, from the pipeline's terminal stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Deployed and verified: the fix held its criteria.
    Succeeded,
    /// Refused by the test stage, or the canary judged it bad.
    Failed,
    /// Applied everywhere, then undone (verification or deploy failed).
    RolledBack,
    /// Applied everywhere and left in place: verification failed, but it
    /// relieved the burn (ADR 0025).
    Kept,
    /// A human rejected it, or nobody answered in time.
    Rejected,
    /// The pipeline could not judge it.
    Error,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled_back",
            Outcome::Kept => "kept",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
        }
    }

    /// The outcome of a terminal pipeline stage; `None` while in flight.
    pub const fn from_stage(stage: Stage) -> Option<Outcome> {
        match stage {
            Stage::Succeeded => Some(Outcome::Succeeded),
            Stage::Failed => Some(Outcome::Failed),
            Stage::RolledBack => Some(Outcome::RolledBack),
            Stage::Kept => Some(Outcome::Kept),
            Stage::Rejected => Some(Outcome::Rejected),
            Stage::Error => Some(Outcome::Error),
            _ => None,
        }
    }

    /// Applied to every service (it stuck, or it was undone afterwards):
    /// what the agent tried, for the escalating-fix check.
    pub const fn was_applied(self) -> bool {
        matches!(
            self,
            Outcome::Succeeded | Outcome::RolledBack | Outcome::Kept
        )
    }

    /// An attempt that did not fix the ticket, for non-convergence.
    pub const fn is_failed_attempt(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::RolledBack | Outcome::Kept)
    }
}

/// One action of one finished proposal: the unit reflection reasons over.
/// A proposal with two actions is two records with the same `proposal_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixRecord {
    /// When the proposal ended (ms since the epoch).
    pub time_ms: u64,
    pub ticket_id: String,
    pub proposal_id: String,
    /// The ticket's fingerprint: what a suspension covers.
    pub fingerprint: String,
    /// The kind of problem, e.g. the ticket's source and objective name
    /// (`slo:limiting_correctness`).
    pub problem_type: String,
    /// What the action changes, e.g. `api/per_tenant` (a limit),
    /// `store`, `failure_policy`.
    pub target: String,
    /// The action's name in the service's catalog.
    pub action: String,
    pub params: serde_json::Value,
    pub outcome: Outcome,
    pub agent: String,
}

impl FixRecord {
    /// The numeric values this action sets, by parameter name: top-level
    /// numbers (`requests_per_unit`, `max_keys`, `burst`) and numbers in
    /// nested objects by dotted path (`rate_limit.requests_per_unit`).
    /// Identifiers ([`IDENTIFIER_PARAMS`], e.g. `to_version`) and
    /// non-finite values are left out; at most [`MAX_NUMERIC_PARAMS`].
    pub fn numeric_params(&self) -> BTreeMap<String, f64> {
        fn walk(
            prefix: &str,
            value: &serde_json::Value,
            depth: usize,
            out: &mut BTreeMap<String, f64>,
        ) {
            match value {
                serde_json::Value::Number(number) if !prefix.is_empty() => {
                    if let Some(value) = number.as_f64().filter(|value| value.is_finite()) {
                        if out.len() < MAX_NUMERIC_PARAMS {
                            out.insert(prefix.to_owned(), value);
                        }
                    }
                }
                serde_json::Value::Object(map) if depth < MAX_PARAM_DEPTH => {
                    for (key, value) in map {
                        if depth == 0 && IDENTIFIER_PARAMS.contains(&key.as_str()) {
                            continue;
                        }
                        let path = if prefix.is_empty() {
                            key.clone()
                        } else {
                            format!("{prefix}.{key}")
                        };
                        walk(&path, value, depth + 1, out);
                    }
                }
                _ => {}
            }
        }
        let mut out = BTreeMap::new();
        walk("", &self.params, 0, &mut out);
        out
    }

    /// The settings this action makes that are not numbers: top-level
    /// booleans and short strings, not identifiers (`shadow`, `policy`,
    /// `unit`, `algorithm`).
    fn setting_params(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let serde_json::Value::Object(map) = &self.params {
            for (key, value) in map {
                if IDENTIFIER_PARAMS.contains(&key.as_str()) {
                    continue;
                }
                let text = match value {
                    serde_json::Value::Bool(flag) => flag.to_string(),
                    serde_json::Value::String(text) if text.len() <= MAX_SETTING_BYTES => {
                        text.clone()
                    }
                    _ => continue,
                };
                out.insert(key.clone(), text);
            }
        }
        out
    }

    /// `set_limit on api/per_tenant requests_per_unit=128`.
    fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let serde_json::Value::Object(map) = &self.params {
            for (key, value) in map {
                if matches!(key.as_str(), "domain" | "limit" | "reason" | "actor") {
                    continue;
                }
                let text = match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                parts.push(format!("{key}={}", cut(&text, 48)));
            }
        }
        let params = if parts.is_empty() {
            String::new()
        } else {
            format!(" {}", parts.join(" "))
        };
        cut(&format!("{} on {}{params}", self.action, self.target), 160)
    }
}

/// One ticket, as reflection sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketRecord {
    pub id: String,
    pub fingerprint: String,
    /// As in [`FixRecord::problem_type`].
    pub problem_type: String,
    pub created_ms: u64,
    /// When it was resolved, failed or cancelled (none while active or
    /// escalated).
    #[serde(default)]
    pub closed_ms: Option<u64>,
    /// Its state now.
    pub final_state: TicketState,
    /// Proposals made for it.
    pub attempts: u32,
    /// It was escalated to a human at some point.
    pub escalated: bool,
    /// Its acceptance criteria were met at least once.
    pub criteria_met_ever: bool,
}

/// Everything reflection looks at, built by the caller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub fixes: Vec<FixRecord>,
    pub tickets: Vec<TicketRecord>,
    /// Changes someone outside the pipeline overrode (for
    /// [`FindingKind::Contested`]).
    #[serde(default)]
    pub collisions: Vec<CollisionRecord>,
}

/// A change of an agent's that someone outside the pipeline overrode: the
/// config moved under it after it was applied (a human's push, a deploy
/// controller reconciling), and undoing it was refused so as not to
/// overwrite theirs (the pipeline's `collided` record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollisionRecord {
    /// When the pipeline found the config moved (ms since the epoch).
    pub time_ms: u64,
    pub ticket_id: String,
    pub proposal_id: String,
    /// The ticket's fingerprint: what a suspension covers.
    pub fingerprint: String,
    /// As in [`FixRecord::problem_type`].
    pub problem_type: String,
    /// What the pipeline saw (the version now current and who made it).
    pub detail: String,
}

impl History {
    /// Checks what the caller built: ids, fingerprints, targets and actions
    /// present and bounded, closing after creation. [`reflect`] accepts any
    /// history (it never panics); this says what is wrong with a bad one,
    /// naming the field (`fixes[3].target`).
    pub fn validate(&self) -> Result<(), FieldError> {
        let refuse = |path: String, message: &str| {
            Err(FieldError {
                path,
                message: message.to_owned(),
            })
        };
        let bounded = |text: &str| !text.trim().is_empty() && text.len() <= MAX_FINGERPRINT_BYTES;
        let must = "must be 1 to 256 bytes, not blank";
        for (index, fix) in self.fixes.iter().enumerate() {
            for (field, value) in [
                ("ticket_id", &fix.ticket_id),
                ("proposal_id", &fix.proposal_id),
                ("fingerprint", &fix.fingerprint),
                ("problem_type", &fix.problem_type),
                ("target", &fix.target),
                ("action", &fix.action),
                ("agent", &fix.agent),
            ] {
                if !bounded(value) {
                    return refuse(format!("fixes[{index}].{field}"), must);
                }
            }
        }
        for (index, collision) in self.collisions.iter().enumerate() {
            for (field, value) in [
                ("ticket_id", &collision.ticket_id),
                ("proposal_id", &collision.proposal_id),
                ("fingerprint", &collision.fingerprint),
                ("problem_type", &collision.problem_type),
            ] {
                if !bounded(value) {
                    return refuse(format!("collisions[{index}].{field}"), must);
                }
            }
        }
        for (index, ticket) in self.tickets.iter().enumerate() {
            for (field, value) in [
                ("id", &ticket.id),
                ("fingerprint", &ticket.fingerprint),
                ("problem_type", &ticket.problem_type),
            ] {
                if !bounded(value) {
                    return refuse(format!("tickets[{index}].{field}"), must);
                }
            }
            if ticket
                .closed_ms
                .is_some_and(|closed| closed < ticket.created_ms)
            {
                return refuse(
                    format!("tickets[{index}].closed_ms"),
                    "must not be before created_ms",
                );
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// thresholds

/// Every threshold of reflection, named; each field may be omitted from the
/// file (its default applies). See docs/adr/0009-reflection-thresholds.md.
///
/// ```yaml
/// same_fix_count: 3          # hysteresis: fixes of one fingerprint…
/// same_fix_window: 24h       # …within this long
/// escalation_factor: 1.5x    # escalating fix: each value at least this × the last…
/// escalation_min_values: 3   # …for this many values in a row
/// flap_window: 21            # oscillation: the last K states of a setting
/// flap_min_states: 3         # fewer states are not judged
/// flap_high: 50%             # flapping starts above this weighted state change…
/// flap_low: 25%              # …and stops below this one
/// max_failed_attempts: 3     # non-convergence: failed or rolled-back proposals
/// never_met_after: 6h        # non-convergence: open this long, criteria never met
/// escalation_min_tickets: 4  # repeated escalation: at least this many finished tickets…
/// escalation_lookback: 10    # …of the last this many of a problem type…
/// escalation_ratio: 60%      # …ended with a human at least this often
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Hysteresis: this many successful fixes of one fingerprint… (3)
    pub same_fix_count: u32,
    /// …within this window, ending now (24h).
    pub same_fix_window: Span,
    /// Escalating fix: each value at least this many times the previous
    /// (or at most the previous divided by it) (1.5x).
    pub escalation_factor: Factor,
    /// Escalating fix: this many values in a row, the newest included (3:
    /// two moves of 1.5× or more the same way).
    pub escalation_min_values: u32,
    /// Oscillation: the last this many states of a setting (21, as Nagios).
    pub flap_window: u32,
    /// Oscillation: a setting with fewer states is not judged (3: up, down,
    /// up is the shortest oscillation).
    pub flap_min_states: u32,
    /// Oscillation: flapping starts above this weighted percent state
    /// change (50%).
    pub flap_high: Percent,
    /// Oscillation: flapping stops below this one (25%).
    pub flap_low: Percent,
    /// Non-convergence: this many failed or rolled-back proposals on one
    /// ticket (3).
    pub max_failed_attempts: u32,
    /// Non-convergence: open this long with its criteria never met (6h).
    pub never_met_after: Span,
    /// Repeated escalation: at least this many finished tickets of a
    /// problem type are judged (4).
    pub escalation_min_tickets: u32,
    /// Repeated escalation: the last this many finished tickets (10).
    pub escalation_lookback: u32,
    /// Repeated escalation: the share that ended with a human (60%).
    pub escalation_ratio: Percent,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            same_fix_count: 3,
            same_fix_window: Span(24 * HOUR_MS),
            escalation_factor: Factor(1.5),
            escalation_min_values: 3,
            flap_window: 21,
            flap_min_states: 3,
            flap_high: Percent(0.50),
            flap_low: Percent(0.25),
            max_failed_attempts: 3,
            never_met_after: Span(6 * HOUR_MS),
            escalation_min_tickets: 4,
            escalation_lookback: 10,
            escalation_ratio: Percent(0.60),
        }
    }
}

/// A refused thresholds file: file, line, field and problem.
pub type ThresholdsError = FileError;

impl Thresholds {
    /// Parses a thresholds file (YAML); `file` names it in errors. An empty
    /// file is [`Thresholds::default`]. Unknown fields are refused.
    pub fn parse(file: &str, text: &str) -> Result<Thresholds, ThresholdsError> {
        let parsed: Option<Thresholds> =
            floodgate_contract::yaml::load(file, text, MAX_THRESHOLDS_BYTES)?;
        let thresholds = parsed.unwrap_or_default();
        thresholds.validate().map_err(|refused| {
            ThresholdsError::at_path(file, text, refused.path, refused.message)
        })?;
        Ok(thresholds)
    }

    /// Checks the values make sense together; the error names the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        let refuse = |path: &str, message: String| {
            Err(FieldError {
                path: path.to_owned(),
                message,
            })
        };
        if self.same_fix_count < 2 {
            return refuse(
                "same_fix_count",
                format!(
                    "must be at least 2 (one fix is not a pattern), got {}",
                    self.same_fix_count
                ),
            );
        }
        if self.escalation_factor.0 <= 1.0 {
            return refuse(
                "escalation_factor",
                format!("must be above 1x, got {}", self.escalation_factor),
            );
        }
        if self.escalation_min_values < 3 {
            return refuse(
                "escalation_min_values",
                format!(
                    "must be at least 3 (two moves the same way), got {}",
                    self.escalation_min_values
                ),
            );
        }
        if !(3..=MAX_FLAP_WINDOW).contains(&self.flap_window) {
            return refuse(
                "flap_window",
                format!("must be 3 to {MAX_FLAP_WINDOW}, got {}", self.flap_window),
            );
        }
        if self.flap_min_states < 3 || self.flap_min_states > self.flap_window {
            return refuse(
                "flap_min_states",
                format!(
                    "must be 3 to flap_window ({}), got {}",
                    self.flap_window, self.flap_min_states
                ),
            );
        }
        if self.flap_low.0 >= self.flap_high.0 {
            return refuse(
                "flap_low",
                format!(
                    "must be below flap_high ({}), got {}",
                    self.flap_high, self.flap_low
                ),
            );
        }
        if self.max_failed_attempts < 1 {
            return refuse("max_failed_attempts", "must be at least 1, got 0".into());
        }
        if self.escalation_lookback < 1 || self.escalation_lookback > MAX_ESCALATION_LOOKBACK {
            return refuse(
                "escalation_lookback",
                format!(
                    "must be 1 to {MAX_ESCALATION_LOOKBACK}, got {}",
                    self.escalation_lookback
                ),
            );
        }
        if self.escalation_min_tickets < 1 || self.escalation_min_tickets > self.escalation_lookback
        {
            return refuse(
                "escalation_min_tickets",
                format!(
                    "must be 1 to escalation_lookback ({}), got {}",
                    self.escalation_lookback, self.escalation_min_tickets
                ),
            );
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// state and findings

/// A setting judged flapping, and since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flapping {
    /// When reflection first judged it flapping.
    pub since_ms: u64,
    /// The weighted percent state change at the last evaluation (0–100).
    pub percent: f64,
}

/// What reflection carries from one evaluation to the next: which settings
/// are flapping (the hysteresis between `flap_high` and `flap_low`), and
/// which findings a human answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReflectionState {
    /// Flapping settings, by finding key.
    #[serde(default)]
    pub flapping: BTreeMap<String, Flapping>,
    /// Finding keys a human answered, and when: evidence up to then no
    /// longer counts for that key.
    #[serde(default)]
    pub answered: BTreeMap<String, u64>,
}

impl ReflectionState {
    /// A human answered the finding `key` at `time_ms` (its help ticket was
    /// resolved): evidence up to then no longer counts for it, and a
    /// flapping setting starts afresh. Keeps at most [`MAX_ANSWERED`]
    /// answers, forgetting the oldest.
    pub fn answer(&mut self, key: &str, time_ms: u64) {
        let entry = self.answered.entry(key.to_owned()).or_insert(time_ms);
        *entry = (*entry).max(time_ms);
        self.flapping.remove(key);
        while self.answered.len() > MAX_ANSWERED {
            let oldest = self
                .answered
                .iter()
                .min_by_key(|(key, time)| (**time, (*key).clone()))
                .map(|(key, _)| key.clone());
            match oldest {
                Some(oldest) => self.answered.remove(&oldest),
                None => break,
            };
        }
    }

    fn counts(&self, key: &str, time_ms: u64) -> bool {
        self.answered
            .get(key)
            .is_none_or(|answered| time_ms > *answered)
    }
}

/// The pattern a finding reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Hysteresis,
    EscalatingFix,
    Oscillation,
    NonConvergence,
    RepeatedEscalation,
    Contested,
}

impl FindingKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            FindingKind::Hysteresis => "hysteresis",
            FindingKind::EscalatingFix => "escalating_fix",
            FindingKind::Oscillation => "oscillation",
            FindingKind::NonConvergence => "non_convergence",
            FindingKind::RepeatedEscalation => "repeated_escalation",
            FindingKind::Contested => "contested",
        }
    }

    /// Whether automatic work on the finding's fingerprints stops until a
    /// human answers.
    pub const fn suspends(self) -> bool {
        matches!(
            self,
            FindingKind::Hysteresis
                | FindingKind::EscalatingFix
                | FindingKind::Oscillation
                | FindingKind::Contested
        )
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a finding's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub time_ms: u64,
    pub what: String,
}

/// What a finding rests on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The tickets involved (each ticket's trajectory has its id), oldest
    /// first.
    pub tickets: Vec<String>,
    /// The proposals involved, oldest first.
    pub proposals: Vec<String>,
    /// What happened, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// Each distinct change tried (`set_limit on api/per_tenant
    /// requests_per_unit=128`).
    pub tried: Vec<String>,
    /// The time of the newest evidence.
    pub newest_ms: u64,
    /// Oscillation: the weighted percent state change (0–100); repeated
    /// escalation: the percent of tickets that ended with a human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Entries left out of the lists above ([`MAX_EVIDENCE_ITEMS`] each).
    #[serde(default)]
    pub omitted: usize,
}

/// A pattern reflection found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The fingerprints concerned (what a suspension covers), sorted.
    pub fingerprints: Vec<String>,
    /// Stable for the pattern: `{kind}:{subject}` (the fingerprint, the
    /// `target#parameter`, the ticket id or the problem type).
    pub key: String,
    /// Stop automatic work on `fingerprints` until a human answers.
    pub suspend: bool,
    pub evidence: Evidence,
    /// The agent's own words, first person.
    pub message: String,
}

// ---------------------------------------------------------------------------
// reflect

/// Looks at `history` as of `now_ms` and answers the findings, ordered by
/// kind then key, and the state to pass to the next call. Deterministic:
/// the same arguments give the same answer. Never panics, whatever the
/// history; thresholds that fail [`Thresholds::validate`] give answers
/// that are well defined but of little use.
pub fn reflect(
    history: &History,
    thresholds: &Thresholds,
    state: &ReflectionState,
    now_ms: u64,
) -> (Vec<Finding>, ReflectionState) {
    // Oldest first; ties broken by proposal, ticket, then input order.
    let mut fixes: Vec<(usize, &FixRecord)> = history
        .fixes
        .iter()
        .enumerate()
        .filter(|(_, fix)| fix.time_ms <= now_ms)
        .collect();
    fixes.sort_by(|(ia, a), (ib, b)| {
        (a.time_ms, &a.proposal_id, &a.ticket_id, ia).cmp(&(
            b.time_ms,
            &b.proposal_id,
            &b.ticket_id,
            ib,
        ))
    });
    let fixes: Vec<&FixRecord> = fixes.into_iter().map(|(_, fix)| fix).collect();

    let mut next = ReflectionState {
        flapping: BTreeMap::new(),
        answered: state.answered.clone(),
    };
    let mut findings = Vec::new();
    findings.extend(hysteresis(&fixes, thresholds, state, now_ms));
    findings.extend(escalating_fixes(&fixes, thresholds, state));
    findings.extend(oscillations(&fixes, thresholds, state, &mut next, now_ms));
    findings.extend(non_convergence(
        &history.tickets,
        &fixes,
        thresholds,
        state,
        now_ms,
    ));
    findings.extend(repeated_escalations(
        &history.tickets,
        thresholds,
        state,
        now_ms,
    ));
    findings.extend(contested(&history.collisions, state, now_ms));
    findings.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    (findings, next)
}

/// The weighted percent state change of `states`, oldest first (0–100):
/// each change between neighbours weighs from [`FLAP_WEIGHT_OLDEST`] (the
/// oldest) to [`FLAP_WEIGHT_NEWEST`] (the newest), linearly, and the sum is
/// divided by the number of transitions (the weights average 1, so all
/// changes is 100%). Fewer than two states: 0.
pub fn percent_state_change<T: PartialEq>(states: &[T]) -> f64 {
    let transitions = states.len().saturating_sub(1);
    if transitions == 0 {
        return 0.0;
    }
    let mut sum = 0.0;
    for (index, pair) in states.windows(2).enumerate() {
        if pair[0] != pair[1] {
            sum += if transitions == 1 {
                1.0
            } else {
                FLAP_WEIGHT_OLDEST
                    + (FLAP_WEIGHT_NEWEST - FLAP_WEIGHT_OLDEST) * index as f64
                        / (transitions - 1) as f64
            };
        }
    }
    100.0 * sum / transitions as f64
}

/// Fix actions that restore a state that ran before: the same restoring fix
/// repeated means something outside keeps undoing it, whichever ticket
/// asked for it (a deploy job re-pushing a bad config files a new report
/// and burns an SLO each time; the rollback lands on either ticket).
pub const RESTORING_ACTIONS: &[&str] = &["rollback_config"];

fn hysteresis(
    fixes: &[&FixRecord],
    thresholds: &Thresholds,
    state: &ReflectionState,
    now_ms: u64,
) -> Vec<Finding> {
    let window_ms = thresholds.same_fix_window.ms();
    // A kept change (ADR 0025) relieved the problem without ending it,
    // and it went on or came back: a fix that did not hold.
    let held: Vec<&FixRecord> = fixes
        .iter()
        .copied()
        .filter(|fix| {
            matches!(fix.outcome, Outcome::Succeeded | Outcome::Kept)
                && now_ms - fix.time_ms < window_ms
        })
        .collect();
    let mut groups: BTreeMap<String, Vec<&FixRecord>> = BTreeMap::new();
    for fix in &held {
        groups.entry(fix.fingerprint.clone()).or_default().push(fix);
    }
    // A group's key and the fixes it counts (those after its last answer).
    fn counted<'a>(
        subject: &str,
        all: &[&'a FixRecord],
        state: &ReflectionState,
    ) -> (String, Vec<&'a FixRecord>) {
        let key = make_key(FindingKind::Hysteresis, subject);
        let recent = all
            .iter()
            .copied()
            .filter(|fix| state.counts(&key, fix.time_ms))
            .collect();
        (key, recent)
    }
    let enough = |recent: &[&FixRecord]| {
        distinct(recent.iter().map(|fix| fix.proposal_id.as_str())).len()
            >= thresholds.same_fix_count as usize
    };
    // The same restoring action across fingerprints: one group when it
    // spans several and no one fingerprint's own group is a finding
    // already (one help ticket for one fix that does not hold).
    for action in RESTORING_ACTIONS {
        let restoring: Vec<&FixRecord> = held
            .iter()
            .copied()
            .filter(|fix| fix.action == *action)
            .collect();
        let fingerprints = distinct(restoring.iter().map(|fix| fix.fingerprint.as_str()));
        let one_is_a_finding = fingerprints.iter().any(|fingerprint| {
            groups
                .get(*fingerprint)
                .is_some_and(|group| enough(&counted(fingerprint, group, state).1))
        });
        if fingerprints.len() > 1 && !one_is_a_finding {
            groups.insert(format!("action:{action}"), restoring);
        }
    }
    let mut out = Vec::new();
    for (subject, all) in groups {
        let (key, recent) = counted(&subject, &all, state);
        if !enough(&recent) {
            continue;
        }
        let proposals = distinct(recent.iter().map(|fix| fix.proposal_id.as_str()));
        let tickets = distinct(recent.iter().map(|fix| fix.ticket_id.as_str()));
        let problem = distinct(recent.iter().map(|fix| fix.problem_type.as_str())).join(", ");
        let fingerprints = distinct(recent.iter().map(|fix| fix.fingerprint.clone()));
        // The settings these fixes changed, as the target saw them.
        let mut stories = Vec::new();
        let touched = distinct(recent.iter().flat_map(|fix| {
            fix.numeric_params()
                .into_keys()
                .map(|param| (fix.target.clone(), param))
                .collect::<Vec<_>>()
        }));
        for (target, param) in touched {
            let values: Vec<f64> = fixes
                .iter()
                .filter(|fix| fix.outcome == Outcome::Succeeded && fix.target == target)
                .filter_map(|fix| fix.numeric_params().get(&param).copied())
                .collect();
            let values = dedup_consecutive(&values);
            if values.len() >= 2 {
                stories.push(format!(
                    "I {} {} {} {}",
                    verb(&values),
                    target,
                    param,
                    trajectory(&values)
                ));
            }
        }
        let tried = distinct(recent.iter().map(|fix| fix.summary()));
        let how = if stories.is_empty() {
            format!("each time I applied {}", tried.join("; "))
        } else {
            stories.join("; ")
        };
        let message = format!(
            "I have fixed {problem} {} times in {} ({}) and it keeps coming back: {how}. \
             The fix does not hold, so I am stopping automatic work on {} until a human answers.",
            proposals.len(),
            span(window_ms),
            name_ids(&tickets),
            fingerprints.join(", "),
        );
        out.push(finding(
            FindingKind::Hysteresis,
            key,
            fingerprints,
            evidence_of(&recent, None),
            message,
        ));
    }
    out
}

fn escalating_fixes(
    fixes: &[&FixRecord],
    thresholds: &Thresholds,
    state: &ReflectionState,
) -> Vec<Finding> {
    let factor = thresholds.escalation_factor.0;
    let mut series: BTreeMap<(String, String), Vec<(f64, &FixRecord)>> = BTreeMap::new();
    for fix in fixes.iter().filter(|fix| fix.outcome.was_applied()) {
        for (param, value) in fix.numeric_params() {
            series
                .entry((fix.target.clone(), param))
                .or_default()
                .push((value, fix));
        }
    }
    let mut out = Vec::new();
    for ((target, param), points) in series {
        let key = make_key(FindingKind::EscalatingFix, &format!("{target}#{param}"));
        // Counted points; a value set again (a retry) is one step.
        let mut steps: Vec<(f64, &FixRecord)> = Vec::new();
        for (value, fix) in points
            .into_iter()
            .filter(|(_, fix)| state.counts(&key, fix.time_ms))
        {
            match steps.last_mut() {
                Some(last) if last.0 == value => *last = (value, fix),
                _ => steps.push((value, fix)),
            }
        }
        let up = |before: f64, after: f64| before > 0.0 && after >= before * factor;
        let down = |before: f64, after: f64| after > 0.0 && before >= after * factor;
        let run_of = |moves: &dyn Fn(f64, f64) -> bool| {
            let mut start = steps.len().saturating_sub(1);
            while start > 0 && moves(steps[start - 1].0, steps[start].0) {
                start -= 1;
            }
            steps.len() - start
        };
        let (length, rising) = {
            let rising = run_of(&up);
            let falling = run_of(&down);
            if rising >= falling {
                (rising, true)
            } else {
                (falling, false)
            }
        };
        if length < thresholds.escalation_min_values as usize || length < 2 {
            continue;
        }
        let run = &steps[steps.len() - length..];
        let values: Vec<f64> = run.iter().map(|(value, _)| *value).collect();
        let records: Vec<&FixRecord> = run.iter().map(|(_, fix)| *fix).collect();
        let tickets = distinct(records.iter().map(|fix| fix.ticket_id.as_str()));
        let fingerprints = distinct(records.iter().map(|fix| fix.fingerprint.as_str()));
        let message = format!(
            "I {} {target} {param} {} in {} fixes ({}), each {} the one before, and the problem \
             has not gone away ({}). A bigger change is not a fix: I am stopping automatic work \
             on it until a human answers.",
            if rising { "raised" } else { "lowered" },
            trajectory(&values),
            records.len(),
            name_ids(&tickets),
            if rising {
                format!("at least {}× ", trim_float(factor))
            } else {
                format!("at most 1/{} of ", trim_float(factor))
            },
            fingerprints.join(", "),
        );
        out.push(finding(
            FindingKind::EscalatingFix,
            key,
            records.iter().map(|fix| fix.fingerprint.clone()).collect(),
            evidence_of(&records, None),
            message,
        ));
    }
    out
}

/// A state of a setting's series (see the module doc).
#[derive(Debug, Clone, PartialEq)]
enum SeriesKind {
    Numeric,
    Setting,
    Pair,
}

fn oscillations(
    fixes: &[&FixRecord],
    thresholds: &Thresholds,
    state: &ReflectionState,
    next: &mut ReflectionState,
    now_ms: u64,
) -> Vec<Finding> {
    // (target, parameter) → kind and (value shown, fix), oldest first.
    type Points<'a> = Vec<(String, f64, &'a FixRecord)>;
    let mut series: BTreeMap<(String, String), (SeriesKind, Points)> = BTreeMap::new();
    fn push<'a>(
        series: &mut BTreeMap<(String, String), (SeriesKind, Points<'a>)>,
        target: &str,
        param: String,
        kind: SeriesKind,
        point: (String, f64, &'a FixRecord),
    ) {
        let entry = series
            .entry((target.to_owned(), param))
            .or_insert_with(|| (kind.clone(), Vec::new()));
        // A parameter that is a number in one fix and a word in another
        // keeps the kind it was first seen with.
        if entry.0 == kind {
            entry.1.push(point);
        }
    }
    for fix in fixes.iter().filter(|fix| fix.outcome == Outcome::Succeeded) {
        for (param, value) in fix.numeric_params() {
            push(
                &mut series,
                &fix.target,
                param,
                SeriesKind::Numeric,
                (trim_float(value), value, fix),
            );
        }
        for (param, value) in fix.setting_params() {
            push(
                &mut series,
                &fix.target,
                param,
                SeriesKind::Setting,
                (value, 0.0, fix),
            );
        }
        if let Some(pair) = inverse_pair(&fix.action) {
            push(
                &mut series,
                &fix.target,
                pair,
                SeriesKind::Pair,
                (fix.action.clone(), 0.0, fix),
            );
        }
    }
    let window = thresholds.flap_window as usize;
    let mut out = Vec::new();
    for ((target, param), (kind, points)) in series {
        let key = make_key(FindingKind::Oscillation, &format!("{target}#{param}"));
        let points: Points = points
            .into_iter()
            .filter(|(_, _, fix)| state.counts(&key, fix.time_ms))
            .collect();
        // The states and the fix that made each.
        let mut states: Vec<(String, &FixRecord)> = Vec::new();
        let mut shown: Vec<String> = Vec::new();
        match kind {
            SeriesKind::Numeric => {
                let mut previous: Option<f64> = None;
                for (text, value, fix) in &points {
                    match previous {
                        Some(before) if *value > before => states.push(("up".into(), fix)),
                        Some(before) if *value < before => states.push(("down".into(), fix)),
                        Some(_) => continue,
                        None => {}
                    }
                    previous = Some(*value);
                    shown.push(text.clone());
                }
            }
            SeriesKind::Setting | SeriesKind::Pair => {
                for (text, _, fix) in &points {
                    states.push((text.clone(), fix));
                    shown.push(text.clone());
                }
            }
        }
        let recent = &states[states.len().saturating_sub(window)..];
        let percent = if recent.len() < thresholds.flap_min_states as usize {
            0.0
        } else {
            let values: Vec<&str> = recent.iter().map(|(state, _)| state.as_str()).collect();
            percent_state_change(&values)
        };
        let was = state.flapping.get(&key);
        let flapping = match was {
            Some(_) => percent >= thresholds.flap_low.0 * 100.0,
            None => percent > thresholds.flap_high.0 * 100.0,
        };
        if !flapping {
            continue;
        }
        let since_ms = was.map_or(now_ms, |was| was.since_ms);
        next.flapping
            .insert(key.clone(), Flapping { since_ms, percent });
        let records: Vec<&FixRecord> = recent.iter().map(|(_, fix)| *fix).collect();
        let changes = recent
            .windows(2)
            .filter(|pair| pair[0].0 != pair[1].0)
            .count();
        let shown = &shown[shown.len().saturating_sub(MAX_TRAJECTORY_VALUES)..];
        let what = match kind {
            SeriesKind::Numeric => format!("moved {target} {param} back and forth"),
            SeriesKind::Setting => format!("set {target} {param} back and forth"),
            SeriesKind::Pair => format!("alternated {param} on {target}"),
        };
        let fingerprints = distinct(records.iter().map(|fix| fix.fingerprint.as_str()));
        let message = format!(
            "I have {what}: {} ({changes} changes of direction in my last {} changes, a weighted \
             state change of {}%, above the {} flapping threshold). I keep undoing my own fixes \
             across tickets ({}); I am stopping automatic work on {} until a human answers.",
            shown.join(" → "),
            recent.len(),
            trim_float((percent * 10.0).round() / 10.0),
            thresholds.flap_high,
            name_ids(&distinct(records.iter().map(|fix| fix.ticket_id.as_str()))),
            fingerprints.join(", "),
        );
        out.push(finding(
            FindingKind::Oscillation,
            key,
            records.iter().map(|fix| fix.fingerprint.clone()).collect(),
            evidence_of(&records, Some(percent)),
            message,
        ));
    }
    out
}

fn non_convergence(
    tickets: &[TicketRecord],
    fixes: &[&FixRecord],
    thresholds: &Thresholds,
    state: &ReflectionState,
    now_ms: u64,
) -> Vec<Finding> {
    let mut failed: BTreeMap<&str, Vec<&FixRecord>> = BTreeMap::new();
    for fix in fixes.iter().filter(|fix| fix.outcome.is_failed_attempt()) {
        failed.entry(&fix.ticket_id).or_default().push(fix);
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for ticket in sorted_tickets(tickets) {
        let open = matches!(
            ticket.final_state,
            TicketState::Open
                | TicketState::Claimed
                | TicketState::InProgress
                | TicketState::Verifying
        );
        if ticket.created_ms > now_ms
            || !(open || ticket.final_state == TicketState::Failed)
            || !seen.insert(ticket.id.as_str())
        {
            continue;
        }
        let key = make_key(FindingKind::NonConvergence, &ticket.id);
        let attempts: Vec<&FixRecord> = failed
            .get(ticket.id.as_str())
            .map(|records| {
                records
                    .iter()
                    .copied()
                    .filter(|fix| state.counts(&key, fix.time_ms))
                    .collect()
            })
            .unwrap_or_default();
        let proposals = distinct(attempts.iter().map(|fix| fix.proposal_id.as_str()));
        let since_ms = state
            .answered
            .get(&key)
            .map_or(ticket.created_ms, |answered| {
                (*answered).max(ticket.created_ms)
            });
        let never_met = open
            && ticket.closed_ms.is_none()
            && !ticket.criteria_met_ever
            && now_ms - since_ms.min(now_ms) >= thresholds.never_met_after.ms();
        let message = if proposals.len() >= thresholds.max_failed_attempts as usize {
            let tried = distinct(attempts.iter().map(|fix| fix.summary()));
            format!(
                "I have tried {} fixes for {} ({}) and none worked: {} failed or were rolled \
                 back. I tried {}. I do not know how to fix this: I need a human.",
                proposals.len(),
                ticket.id,
                ticket.problem_type,
                name_ids(&proposals),
                tried.join("; "),
            )
        } else if never_met {
            format!(
                "{} ({}) has been open for {} and its acceptance criteria have never been met, \
                 after {} proposals. I am not converging on a fix: I need a human.",
                ticket.id,
                ticket.problem_type,
                span(now_ms - ticket.created_ms.min(now_ms)),
                ticket.attempts,
            )
        } else {
            continue;
        };
        let mut evidence = evidence_of(&attempts, None);
        evidence.tickets = vec![ticket.id.clone()];
        evidence.timeline.insert(
            0,
            TimelineEntry {
                time_ms: ticket.created_ms,
                what: format!("{} opened ({})", ticket.id, ticket.problem_type),
            },
        );
        evidence.timeline.truncate(MAX_EVIDENCE_ITEMS);
        evidence.newest_ms = evidence.newest_ms.max(ticket.created_ms);
        out.push(finding(
            FindingKind::NonConvergence,
            key,
            vec![ticket.fingerprint.clone()],
            evidence,
            message,
        ));
    }
    out
}

fn repeated_escalations(
    tickets: &[TicketRecord],
    thresholds: &Thresholds,
    state: &ReflectionState,
    now_ms: u64,
) -> Vec<Finding> {
    let mut by_type: BTreeMap<&str, Vec<(u64, &TicketRecord)>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for ticket in sorted_tickets(tickets) {
        let finished = matches!(
            ticket.final_state,
            TicketState::Resolved
                | TicketState::Failed
                | TicketState::Cancelled
                | TicketState::Escalated
        );
        let ended_ms = ticket.closed_ms.unwrap_or(ticket.created_ms);
        if !finished || ended_ms > now_ms || !seen.insert(ticket.id.as_str()) {
            continue;
        }
        by_type
            .entry(&ticket.problem_type)
            .or_default()
            .push((ended_ms, ticket));
    }
    let mut out = Vec::new();
    for (problem, mut ended) in by_type {
        let key = make_key(FindingKind::RepeatedEscalation, problem);
        ended.retain(|(time, _)| state.counts(&key, *time));
        ended.sort_by(|(ta, a), (tb, b)| (ta, &a.id).cmp(&(tb, &b.id)));
        let last = &ended[ended
            .len()
            .saturating_sub(thresholds.escalation_lookback as usize)..];
        let escalated: Vec<&TicketRecord> = last
            .iter()
            .filter(|(_, ticket)| ticket.escalated)
            .map(|(_, ticket)| *ticket)
            .collect();
        if last.is_empty() || last.len() < thresholds.escalation_min_tickets as usize {
            continue;
        }
        let share = escalated.len() as f64 / last.len() as f64;
        if share < thresholds.escalation_ratio.0 {
            continue;
        }
        let ids = distinct(escalated.iter().map(|ticket| ticket.id.as_str()));
        let message = format!(
            "{} of the last {} {problem} tickets ended with a human ({}). I am not handling \
             this kind of problem well: a human should look at how it gets fixed (a runbook, \
             a policy, or a change I cannot make).",
            escalated.len(),
            last.len(),
            name_ids(&ids),
        );
        let mut timeline: Vec<TimelineEntry> = last
            .iter()
            .map(|(time, ticket)| TimelineEntry {
                time_ms: *time,
                what: format!(
                    "{} ended {}{}",
                    ticket.id,
                    ticket.final_state,
                    if ticket.escalated {
                        " (escalated to a human)"
                    } else {
                        ""
                    }
                ),
            })
            .collect();
        timeline.truncate(MAX_EVIDENCE_ITEMS);
        let evidence = Evidence {
            tickets: last.iter().map(|(_, ticket)| ticket.id.clone()).collect(),
            proposals: Vec::new(),
            timeline,
            tried: Vec::new(),
            newest_ms: last.last().map_or(0, |(time, _)| *time),
            score: Some(share * 100.0),
            omitted: 0,
        };
        out.push(finding(
            FindingKind::RepeatedEscalation,
            key,
            escalated
                .iter()
                .map(|ticket| ticket.fingerprint.clone())
                .collect(),
            evidence,
            message,
        ));
    }
    out
}

// ---------------------------------------------------------------------------
// the help ticket

/// The ticket a finding opens: type `help`, source `reflection`, priority
/// high, addressed to a human. Its fingerprint is `reflection:` and the
/// finding's key (so re-running reflection adds occurrences to the same
/// ticket); its context carries the finding whole (kind, key, suspend,
/// fingerprints, evidence, message). It has no acceptance criterion: a
/// human answers it, no metric shows that ([`NewTicket::validate`] allows
/// that for type `help` from source `reflection` only).
pub fn help_ticket(finding: &Finding) -> NewTicket {
    let ask = match finding.kind {
        FindingKind::Hysteresis => {
            "Why does this keep coming back, and what would fix it for good?"
        }
        FindingKind::EscalatingFix => "Is a still bigger change right, or is something else wrong?",
        FindingKind::Oscillation => "Which setting is right, and should it stay?",
        FindingKind::NonConvergence => "How should this ticket be fixed, or should it be closed?",
        FindingKind::RepeatedEscalation => {
            "How should this kind of problem be handled (a runbook, a policy change)?"
        }
        FindingKind::Contested => {
            "Who else changes this, and whose change should stand: should they stop, or the agents?"
        }
    };
    let suspended = if finding.suspend {
        format!(
            "\n\nAutomatic work on {} is suspended until a human answers this ticket.",
            finding.fingerprints.join(", ")
        )
    } else {
        String::new()
    };
    let description = cut(
        &format!(
            "{}\n\nWhat I need from a human: {ask}{suspended}",
            finding.message
        ),
        MAX_DESCRIPTION_BYTES,
    );
    let constraints = if finding.suspend {
        vec![cut(
            &format!(
                "no automatic change for {} until a human answers",
                finding.fingerprints.join(", ")
            ),
            MAX_CONSTRAINT_BYTES,
        )]
    } else {
        Vec::new()
    };
    NewTicket {
        kind: TicketType::Help,
        objective: Objective { description },
        acceptance_criteria: Vec::new(),
        constraints,
        context: bound_context(serde_json::json!({ "reflection": finding })),
        source: Source::Reflection,
        priority: Priority::High,
        fingerprint: cut(
            &format!("reflection:{}", finding.key),
            MAX_FINGERPRINT_BYTES,
        ),
    }
}

// ---------------------------------------------------------------------------
// helpers

/// Contested: someone outside the pipeline changed the config under an
/// agent's change (a human's push, a controller putting its own config
/// back), and undoing the change was refused so as not to overwrite
/// theirs, or the change was kept and the config had moved past it. Once
/// is enough: the agents and that actor are changing the same thing, each
/// fix the agents make will be overridden the same way, and only a human
/// can say whose change stands. One finding per
/// fingerprint; automatic work on it stops until a human answers.
fn contested(collisions: &[CollisionRecord], state: &ReflectionState, now_ms: u64) -> Vec<Finding> {
    let mut by_fingerprint: BTreeMap<&str, Vec<&CollisionRecord>> = BTreeMap::new();
    for collision in collisions.iter().filter(|c| c.time_ms <= now_ms) {
        by_fingerprint
            .entry(collision.fingerprint.as_str())
            .or_default()
            .push(collision);
    }
    let mut out = Vec::new();
    for (fingerprint, mut records) in by_fingerprint {
        let key = make_key(FindingKind::Contested, fingerprint);
        records.retain(|c| state.counts(&key, c.time_ms));
        records.sort_by(|a, b| (a.time_ms, &a.proposal_id).cmp(&(b.time_ms, &b.proposal_id)));
        let Some(newest) = records.last() else {
            continue;
        };
        let tickets = distinct(records.iter().map(|c| c.ticket_id.clone()));
        let proposals = distinct(records.iter().map(|c| c.proposal_id.clone()));
        let mut timeline: Vec<TimelineEntry> = records
            .iter()
            .map(|c| TimelineEntry {
                time_ms: c.time_ms,
                what: cut(
                    &format!("{} {}: {}", c.ticket_id, c.proposal_id, c.detail),
                    MAX_MESSAGE_BYTES / 4,
                ),
            })
            .collect();
        let mut evidence = Evidence {
            tickets,
            proposals,
            timeline: Vec::new(),
            tried: Vec::new(),
            newest_ms: newest.time_ms,
            score: None,
            omitted: 0,
        };
        evidence.omitted += keep_newest(&mut evidence.tickets);
        evidence.omitted += keep_newest(&mut evidence.proposals);
        evidence.omitted += keep_newest(&mut timeline);
        evidence.timeline = timeline;
        let message = format!(
            "Someone outside the harness changed the config under my change {} for {} ({}): \
             {}. Undoing it would overwrite theirs, and any fix I make will be overridden the \
             same way while they keep changing it ({} time(s) so far): I need a human to \
             decide whose change stands.",
            newest.proposal_id,
            newest.ticket_id,
            newest.problem_type,
            cut(&newest.detail, 400),
            records.len(),
        );
        out.push(finding(
            FindingKind::Contested,
            key,
            vec![fingerprint.to_owned()],
            evidence,
            message,
        ));
    }
    out
}

fn make_key(kind: FindingKind, subject: &str) -> String {
    let key = format!("{}:{subject}", kind.as_str());
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(subject.as_bytes());
    let hex: String = digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{}:sha256:{hex}", kind.as_str())
}

fn finding(
    kind: FindingKind,
    key: String,
    fingerprints: Vec<String>,
    evidence: Evidence,
    message: String,
) -> Finding {
    let fingerprints: BTreeSet<String> = fingerprints.into_iter().collect();
    Finding {
        kind,
        fingerprints: fingerprints.into_iter().collect(),
        key,
        suspend: kind.suspends(),
        evidence,
        message: cut(&message, MAX_MESSAGE_BYTES),
    }
}

fn evidence_of(records: &[&FixRecord], score: Option<f64>) -> Evidence {
    let mut tickets = distinct(records.iter().map(|fix| fix.ticket_id.clone()));
    let mut proposals = distinct(records.iter().map(|fix| fix.proposal_id.clone()));
    let mut tried = distinct(records.iter().map(|fix| fix.summary()));
    let mut timeline: Vec<TimelineEntry> = records
        .iter()
        .map(|fix| TimelineEntry {
            time_ms: fix.time_ms,
            what: format!(
                "{} {} by {}: {} ({})",
                fix.ticket_id,
                fix.proposal_id,
                cut(&fix.agent, 64),
                fix.summary(),
                fix.outcome.as_str()
            ),
        })
        .collect();
    let mut omitted = 0;
    for list in [&mut tickets, &mut proposals, &mut tried] {
        omitted += keep_newest(list);
    }
    omitted += keep_newest(&mut timeline);
    Evidence {
        tickets,
        proposals,
        timeline,
        tried,
        newest_ms: records.iter().map(|fix| fix.time_ms).max().unwrap_or(0),
        score,
        omitted,
    }
}

fn keep_newest<T>(list: &mut Vec<T>) -> usize {
    let extra = list.len().saturating_sub(MAX_EVIDENCE_ITEMS);
    list.drain(..extra);
    extra
}

/// Distinct items in first-seen order.
fn distinct<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(item.clone()))
        .collect()
}

/// Tickets ordered by id then creation, so duplicates resolve the same way
/// whatever the input order.
fn sorted_tickets(tickets: &[TicketRecord]) -> Vec<&TicketRecord> {
    let mut sorted: Vec<(usize, &TicketRecord)> = tickets.iter().enumerate().collect();
    sorted.sort_by(|(ia, a), (ib, b)| (&a.id, a.created_ms, ia).cmp(&(&b.id, b.created_ms, ib)));
    sorted.into_iter().map(|(_, ticket)| ticket).collect()
}

fn dedup_consecutive(values: &[f64]) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    for value in values {
        if out.last() != Some(value) {
            out.push(*value);
        }
    }
    out
}

/// A duration as people say it: whole hours up to three days in hours
/// (`24h`, `6h`), anything else as objectives write it (`3d`, `1h30m`).
fn span(ms: u64) -> String {
    if ms > 0 && ms.is_multiple_of(HOUR_MS) && ms <= 72 * HOUR_MS {
        format!("{}h", ms / HOUR_MS)
    } else {
        format_duration_ms(ms)
    }
}

fn trajectory(values: &[f64]) -> String {
    values[values.len().saturating_sub(MAX_TRAJECTORY_VALUES)..]
        .iter()
        .map(|value| trim_float(*value))
        .collect::<Vec<_>>()
        .join(" → ")
}

fn verb(values: &[f64]) -> &'static str {
    if values.windows(2).all(|pair| pair[1] > pair[0]) {
        "raised"
    } else if values.windows(2).all(|pair| pair[1] < pair[0]) {
        "lowered"
    } else {
        "changed"
    }
}

/// `INF-0003, INF-0007, INF-0011`, or the first few and "and N more".
fn name_ids<T: AsRef<str>>(ids: &[T]) -> String {
    let shown: Vec<&str> = ids
        .iter()
        .take(MAX_MESSAGE_IDS)
        .map(AsRef::as_ref)
        .collect();
    let mut text = shown.join(", ");
    if ids.len() > MAX_MESSAGE_IDS {
        text.push_str(&format!(" and {} more", ids.len() - MAX_MESSAGE_IDS));
    }
    text
}

/// The inverse pair an action belongs to, when its inverse is another
/// action of the catalog (not a config rollback): `add_limit|remove_limit`,
/// `drain|undrain`.
fn inverse_pair(action: &str) -> Option<String> {
    use floodgate_contract::actions::CATALOG;
    CATALOG.iter().find_map(|def| {
        let inverse = def.inverse?;
        if inverse == def.name || inverse == "rollback_config" {
            return None;
        }
        (def.name == action || inverse == action).then(|| {
            let (a, b) = if def.name < inverse {
                (def.name, inverse)
            } else {
                (inverse, def.name)
            };
            format!("{a}|{b}")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_pairs_come_from_the_catalog() {
        assert_eq!(
            inverse_pair("add_limit").as_deref(),
            Some("add_limit|remove_limit")
        );
        assert_eq!(
            inverse_pair("remove_limit").as_deref(),
            Some("add_limit|remove_limit")
        );
        assert_eq!(inverse_pair("drain").as_deref(), Some("drain|undrain"));
        assert_eq!(inverse_pair("undrain").as_deref(), Some("drain|undrain"));
        assert_eq!(inverse_pair("set_limit"), None);
        assert_eq!(inverse_pair("apply_config"), None);
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("abc", 3), "abc");
        let cut_text = cut("ééééé", 6);
        assert!(cut_text.len() <= 6, "{cut_text}");
        assert!(cut_text.ends_with('…'));
    }

    #[test]
    fn long_subjects_are_hashed_into_bounded_keys() {
        let key = make_key(FindingKind::Oscillation, &"x".repeat(500));
        assert!(key.starts_with("oscillation:sha256:"));
        assert!(key.len() <= MAX_KEY_BYTES);
    }
}
