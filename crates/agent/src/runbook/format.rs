//! The runbook format: YAML in, a validated [`Runbook`] out, and
//! [`select`].

use super::expr::{is_identifier, Expr, Leaf, Template};
use floodgate_contract::actions::{self, ActionDef, Risk};
use regex::Regex;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// The largest runbook file, in bytes.
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// The most steps one runbook may hold.
pub const MAX_STEPS: usize = 256;
/// The most runbooks [`load_dir`] loads.
pub const MAX_RUNBOOKS: usize = 1024;
/// The longest duration a runbook may name (a run, a step, a wait): a week.
pub const MAX_DURATION_MS: u64 = 7 * 24 * 3_600_000;
/// The longest series window an observation may ask for: a day.
pub const MAX_WINDOW_MS: u64 = 24 * 3_600_000;

// ---------------------------------------------------------------------------
// errors

/// A refused runbook: the file, the step (when the problem is in one), the
/// field, the line where it is written (when it can be found) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookError {
    pub file: String,
    pub line: Option<usize>,
    /// The step's name, when the problem is in a step.
    pub step: Option<String>,
    /// The field, relative to the step when there is one (`branch[0].when`,
    /// `propose[0].params.requests_per_unit`), else from the top
    /// (`match.fingerprint`); empty for a YAML syntax error.
    pub field: String,
    pub message: String,
}

impl fmt::Display for RunbookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ": line {line}")?;
        }
        if let Some(step) = &self.step {
            write!(f, ": step {step}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RunbookError {}

// ---------------------------------------------------------------------------
// the raw YAML

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunbook {
    name: String,
    version: u32,
    description: String,
    #[serde(rename = "match")]
    matcher: RawMatch,
    timeout: String,
    #[serde(default)]
    vars: BTreeMap<String, Value>,
    steps: RawSteps,
    start: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    source: Vec<Source>,
    fingerprint: String,
}

/// Steps as a map (name → step) or a list of steps with `name`.
#[derive(Debug)]
struct RawSteps(Vec<(String, RawStep)>, StepsForm);

/// How a runbook writes its steps: where a step's fields are in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepsForm {
    /// `steps: {NAME: {...}}`: a step is at `steps.NAME`.
    Map,
    /// `steps: [{name: NAME, ...}]`: a step is at `steps[i]`.
    List,
}

impl<'de> Deserialize<'de> for RawSteps {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StepsVisitor;
        impl<'de> Visitor<'de> for StepsVisitor {
            type Value = RawSteps;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of named steps or a list of steps with `name`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawSteps, A::Error> {
                let mut steps = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let step: RawStep = map.next_value()?;
                    if let Some(inner) = &step.name {
                        if inner != &name {
                            return Err(de::Error::custom(format!(
                                "step {name:?} says name {inner:?}: leave name out of the map form"
                            )));
                        }
                    }
                    steps.push((name, step));
                }
                Ok(RawSteps(steps, StepsForm::Map))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawSteps, A::Error> {
                let mut steps = Vec::new();
                while let Some(step) = seq.next_element::<RawStep>()? {
                    let Some(name) = step.name.clone() else {
                        return Err(de::Error::custom(format!(
                            "step {} has no name (the list form needs `name`)",
                            steps.len()
                        )));
                    };
                    steps.push((name, step));
                }
                Ok(RawSteps(steps, StepsForm::List))
            }
        }
        deserializer.deserialize_any(StepsVisitor)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Option<String>,
    // kinds
    observe: Option<RawQuery>,
    set: Option<BTreeMap<String, String>>,
    branch: Option<Vec<RawCase>>,
    propose: Option<Vec<RawAction>>,
    approval: Option<String>,
    wait: Option<String>,
    escalate: Option<String>,
    resolve: Option<String>,
    done: Option<String>,
    // fields
    into: Option<String>,
    next: Option<String>,
    default: Option<String>,
    risk: Option<Risk>,
    rationale: Option<String>,
    interim: Option<bool>,
    on_success: Option<String>,
    on_approve: Option<String>,
    on_reject: Option<String>,
    timeout: Option<String>,
    on_failure: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    series: Option<String>,
    window: Option<String>,
    reduce: Option<Reduce>,
    state: Option<String>,
    evidence: Option<String>,
    ticket: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    when: String,
    next: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    #[serde(default)]
    for_each: Option<String>,
    action: String,
    #[serde(default = "empty_object")]
    params: Value,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

// ---------------------------------------------------------------------------
// the validated runbook

/// Where a ticket came from (the harness's ticket sources a runbook can
/// answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Slo,
    Invariant,
    Anomaly,
    Alertmanager,
    Human,
}

impl Source {
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Slo => "slo",
            Source::Invariant => "invariant",
            Source::Anomaly => "anomaly",
            Source::Alertmanager => "alertmanager",
            Source::Human => "human",
        }
    }
}

/// How a series window becomes one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduce {
    /// The newest sample.
    Last,
    /// The largest sample.
    Max,
    /// The mean of the samples.
    Avg,
    /// Per-second increase of a counter over the window (counter resets
    /// count from zero).
    Rate,
    /// Per-second slope of a gauge over the window, by least squares (as
    /// Prometheus' `deriv`): how fast it grows (negative: shrinks).
    Deriv,
}

impl Reduce {
    /// Reduces samples `(time_ms, value)` (oldest first) to one number;
    /// `None` without samples (or, for `rate`, without two samples apart
    /// in time).
    pub fn apply(self, samples: &[(u64, f64)]) -> Option<f64> {
        let values = samples.iter().map(|(_, v)| *v).filter(|v| v.is_finite());
        match self {
            Reduce::Last => samples
                .iter()
                .rev()
                .map(|(_, v)| *v)
                .find(|v| v.is_finite()),
            Reduce::Max => values.fold(None, |max: Option<f64>, v| {
                Some(max.map_or(v, |m| m.max(v)))
            }),
            Reduce::Avg => {
                let (sum, count) = values.fold((0.0, 0u64), |(s, c), v| (s + v, c + 1));
                (count > 0).then(|| sum / count as f64)
            }
            Reduce::Rate => {
                let (first, last) = (samples.first()?, samples.last()?);
                if last.0 <= first.0 {
                    return None;
                }
                let mut increase = 0.0;
                for pair in samples.windows(2) {
                    let (before, after) = (pair[0].1, pair[1].1);
                    if !(before.is_finite() && after.is_finite()) {
                        continue;
                    }
                    increase += if after >= before {
                        after - before
                    } else {
                        after
                    };
                }
                Some(increase * 1000.0 / (last.0 - first.0) as f64)
            }
            Reduce::Deriv => {
                let points: Vec<(f64, f64)> = samples
                    .iter()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(t, v)| (*t as f64 / 1000.0, *v))
                    .collect();
                let n = points.len() as f64;
                if points.len() < 2 {
                    return None;
                }
                let mean_t = points.iter().map(|(t, _)| t).sum::<f64>() / n;
                let mean_v = points.iter().map(|(_, v)| v).sum::<f64>() / n;
                let spread: f64 = points.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
                if spread <= 0.0 {
                    return None;
                }
                let covariance: f64 = points
                    .iter()
                    .map(|(t, v)| (t - mean_t) * (v - mean_v))
                    .sum();
                Some(covariance / spread)
            }
        }
    }
}

/// What an `observe` step reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObserveSource {
    /// A series from the harness's store (`GET /v1/observe/series`); the
    /// selector may hold `${name}` and `{{ EXPR }}`.
    Series {
        selector: String,
        window_ms: u64,
        reduce: Reduce,
    },
    /// A JSON pointer into the service's `/v1/state` document.
    State { pointer: String },
    /// A JSON pointer into the harness's evidence document (`GET
    /// /v1/evidence`: every instance merged).
    Evidence { pointer: String },
    /// A JSON pointer into the ticket (answered by the engine itself).
    Ticket { pointer: String },
}

/// A query the agent runs for an `observe` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Query {
    /// Fetch `selector`'s samples over the last `window_ms` and reduce them
    /// ([`Reduce::apply`]); answer the number, or null without samples.
    Series {
        selector: String,
        window_ms: u64,
        reduce: Reduce,
    },
    /// Fetch the service's state and answer the value at `pointer`
    /// ([`Query::resolve_state`]); null when there is none.
    State { pointer: String },
    /// Fetch the harness's evidence (`GET /v1/evidence`) and answer the
    /// value at `pointer`; null when there is none.
    Evidence { pointer: String },
}

impl Query {
    /// The value at this query's pointer in a state document (null when the
    /// pointer leads nowhere or this is not a state query).
    pub fn resolve_state(&self, state: &Value) -> Value {
        match self {
            Query::State { pointer } | Query::Evidence { pointer } => {
                state.pointer(pointer).cloned().unwrap_or(Value::Null)
            }
            Query::Series { .. } => Value::Null,
        }
    }
}

/// One branch case: when `when` holds, go to `next`.
#[derive(Debug, Clone)]
pub struct Case {
    pub when: Expr,
    pub next: String,
}

/// One action of a `propose` step.
#[derive(Debug, Clone)]
pub struct ActionSpec {
    pub def: &'static ActionDef,
    pub params: Template,
    /// A CEL list: the action is proposed once per element, which its
    /// params read as `vars.item` (at most [`MAX_FOR_EACH`]).
    pub for_each: Option<Expr>,
}

/// The most elements a `for_each` may expand an action to.
pub const MAX_FOR_EACH: usize = 16;

/// Where an action's params hold a name (of a domain, a limit, a
/// descriptor key or value): these must come from an observation, never a
/// literal or a constant (ADR 0015). Pointers, `*` standing for an index.
const NAME_FIELDS: &[&str] = &[
    "/domain",
    "/limit",
    "/path",
    "/path/*",
    "/path/*/key",
    "/path/*/value",
    "/rate_limit/name",
];

fn is_name_field(pointer: &str) -> bool {
    NAME_FIELDS.iter().any(|pattern| {
        let mut want = pattern.split('/');
        let mut have = pointer.split('/');
        loop {
            match (want.next(), have.next()) {
                (None, None) => return true,
                (Some("*"), Some(part)) if part.parse::<usize>().is_ok() => {}
                (Some(a), Some(b)) if a == b => {}
                _ => return false,
            }
        }
    })
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum StepKind {
    Observe {
        source: ObserveSource,
        into: String,
        next: String,
    },
    /// Evaluates each expression (all over the variables as they were
    /// before the step) and stores it.
    Set {
        exprs: Vec<(String, Expr)>,
        next: String,
    },
    Branch {
        cases: Vec<Case>,
        default: String,
    },
    Propose {
        actions: Vec<ActionSpec>,
        risk: Risk,
        rationale: Template,
        /// An interim mitigation: verified, the ticket stays with the
        /// agent instead of resolving.
        interim: bool,
        on_success: String,
    },
    Approval {
        question: Template,
        on_approve: String,
        on_reject: String,
    },
    Wait {
        duration_ms: u64,
        next: String,
    },
    Escalate {
        reason: Template,
    },
    Done {
        summary: Template,
    },
}

impl StepKind {
    /// The step kind's YAML key.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Observe { .. } => "observe",
            StepKind::Set { .. } => "set",
            StepKind::Branch { .. } => "branch",
            StepKind::Propose { .. } => "propose",
            StepKind::Approval { .. } => "approval",
            StepKind::Wait { .. } => "wait",
            StepKind::Escalate { .. } => "escalate",
            StepKind::Done { .. } => "resolve",
        }
    }

    /// The steps this one can go to (without `on_failure`), with the field
    /// naming each.
    fn successors(&self) -> Vec<(String, &str)> {
        match self {
            StepKind::Observe { next, .. }
            | StepKind::Set { next, .. }
            | StepKind::Wait { next, .. } => {
                vec![("next".into(), next)]
            }
            StepKind::Branch { cases, default } => cases
                .iter()
                .enumerate()
                .map(|(index, case)| (format!("branch[{index}].next"), case.next.as_str()))
                .chain(std::iter::once(("default".to_owned(), default.as_str())))
                .collect(),
            StepKind::Propose { on_success, .. } => vec![("on_success".into(), on_success)],
            StepKind::Approval {
                on_approve,
                on_reject,
                ..
            } => vec![
                ("on_approve".into(), on_approve.as_str()),
                ("on_reject".into(), on_reject.as_str()),
            ],
            StepKind::Escalate { .. } | StepKind::Done { .. } => Vec::new(),
        }
    }
}

/// One named step.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub kind: StepKind,
    /// How long the step may take before it fails.
    pub timeout_ms: Option<u64>,
    /// Where a failure goes; without it, a failure escalates.
    pub on_failure: Option<String>,
}

impl Step {
    /// Every step this one can go to, `on_failure` included.
    fn all_successors(&self) -> Vec<(String, &str)> {
        let mut out = self.kind.successors();
        if let Some(on_failure) = &self.on_failure {
            out.push(("on_failure".into(), on_failure));
        }
        out
    }

    /// Whether reaching this step again can only happen after time passes
    /// or the world is looked at (a wait, or an observation of a series or
    /// the state).
    fn breaks_cycles(&self) -> bool {
        matches!(
            self.kind,
            StepKind::Wait { .. }
                | StepKind::Observe {
                    source: ObserveSource::Series { .. }
                        | ObserveSource::State { .. }
                        | ObserveSource::Evidence { .. },
                    ..
                }
        )
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) file: String,
    pub(crate) name: String,
    pub(crate) version: u32,
    pub(crate) description: String,
    pub(crate) sources: Vec<Source>,
    pub(crate) fingerprint_text: String,
    pub(crate) fingerprint: Regex,
    pub(crate) timeout_ms: u64,
    pub(crate) vars: BTreeMap<String, Value>,
    pub(crate) steps: Vec<Step>,
    pub(crate) index: HashMap<String, usize>,
    pub(crate) start: usize,
}

/// A validated runbook (cheap to clone).
#[derive(Debug, Clone)]
pub struct Runbook {
    pub(crate) inner: Arc<Inner>,
}

impl Runbook {
    /// Parses and validates a runbook; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Runbook, RunbookError> {
        floodgate_contract::yaml::gate(file, text, MAX_FILE_BYTES).map_err(RunbookError::from)?;
        let raw: RawRunbook = {
            let deserializer = serde_norway::Deserializer::from_str(text);
            serde_path_to_error::deserialize(deserializer).map_err(|error| {
                RunbookError::from(floodgate_contract::yaml::FileError::deserializing(
                    file, "", &error,
                ))
            })?
        };
        let steps = raw
            .steps
            .0
            .iter()
            .enumerate()
            .map(|(index, (name, _))| {
                let at = match raw.steps.1 {
                    StepsForm::Map => format!("steps.{name}"),
                    StepsForm::List => format!("steps[{index}]"),
                };
                (name.clone(), at)
            })
            .collect();
        Validator { file, text, steps }.build(raw)
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn version(&self) -> u32 {
        self.inner.version
    }

    pub fn description(&self) -> &str {
        &self.inner.description
    }

    /// The file it was loaded from.
    pub fn file(&self) -> &str {
        &self.inner.file
    }

    /// The ticket sources it answers.
    pub fn sources(&self) -> &[Source] {
        &self.inner.sources
    }

    /// The fingerprint pattern as written (matched whole).
    pub fn fingerprint(&self) -> &str {
        &self.inner.fingerprint_text
    }

    /// The longest a run may take before it escalates.
    pub fn timeout_ms(&self) -> u64 {
        self.inner.timeout_ms
    }

    /// The constants every run starts with (`vars:`).
    pub fn vars(&self) -> &BTreeMap<String, Value> {
        &self.inner.vars
    }

    /// The steps, in the order written.
    pub fn steps(&self) -> &[Step] {
        &self.inner.steps
    }

    /// The first step's name.
    pub fn start_step(&self) -> &str {
        &self.inner.steps[self.inner.start].name
    }

    pub fn step(&self, name: &str) -> Option<&Step> {
        self.inner.index.get(name).map(|&i| &self.inner.steps[i])
    }

    /// Whether this runbook answers `ticket` (a ticket as the harness API
    /// serves it: `source` and `fingerprint`).
    pub fn matches(&self, ticket: &Value) -> bool {
        let source = ticket
            .get("source")
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_value::<Source>(Value::String(s.to_owned())).ok());
        let fingerprint = ticket.get("fingerprint").and_then(Value::as_str);
        match (source, fingerprint) {
            (Some(source), Some(fingerprint)) => {
                self.inner.sources.contains(&source) && self.inner.fingerprint.is_match(fingerprint)
            }
            _ => false,
        }
    }

    /// How specific the match is, larger first: a fingerprint without
    /// pattern syntax beats a pattern; then more literal characters; then
    /// fewer sources.
    pub fn specificity(&self) -> (bool, usize, std::cmp::Reverse<usize>) {
        let text = &self.inner.fingerprint_text;
        let literal = regex::escape(text) == *text;
        let literal_chars = text
            .chars()
            .filter(|c| !"\\.+*?()|[]{}^$".contains(*c))
            .count();
        (
            literal,
            literal_chars,
            std::cmp::Reverse(self.inner.sources.len()),
        )
    }
}

/// The runbook for `ticket`: every runbook matching its source and
/// fingerprint, the most specific first ([`Runbook::specificity`], then by
/// name). `None` when none matches: the agent escalates, never guesses.
pub fn select<'a>(runbooks: &'a [Runbook], ticket: &Value) -> Option<&'a Runbook> {
    runbooks
        .iter()
        .filter(|runbook| runbook.matches(ticket))
        .max_by(|a, b| {
            a.specificity()
                .cmp(&b.specificity())
                .then_with(|| b.name().cmp(a.name()))
        })
}

/// Loads one runbook file (the I/O edge).
pub fn load_file(path: &Path) -> Result<Runbook, RunbookError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| RunbookError {
        file: file.clone(),
        line: None,
        step: None,
        field: String::new(),
        message: format!("cannot read: {error}"),
    })?;
    Runbook::parse(&file, &text)
}

/// Loads every `*.yaml` / `*.yml` file of `dir` (sorted by name); two
/// runbooks with one name are refused.
pub fn load_dir(dir: &Path) -> Result<Vec<Runbook>, RunbookError> {
    let error = |message: String| RunbookError {
        file: dir.display().to_string(),
        line: None,
        step: None,
        field: String::new(),
        message,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| error(format!("cannot list: {e}")))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| error(format!("cannot list: {e}")))?
            .path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.len() > MAX_RUNBOOKS {
        return Err(error(format!("more than {MAX_RUNBOOKS} runbooks")));
    }
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| RunbookError {
            file: file.clone(),
            line: None,
            step: None,
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        files.push((file, text));
    }
    parse_files(&files)
}

/// Parses runbook texts named by their files (as [`load_dir`] does once
/// it has read them: the runbooks compiled into a program use this); two
/// runbooks with one name are refused.
pub fn parse_files<F: AsRef<str>, T: AsRef<str>>(
    files: &[(F, T)],
) -> Result<Vec<Runbook>, RunbookError> {
    if files.len() > MAX_RUNBOOKS {
        return Err(RunbookError {
            file: files[0].0.as_ref().to_owned(),
            line: None,
            step: None,
            field: String::new(),
            message: format!("more than {MAX_RUNBOOKS} runbooks"),
        });
    }
    let mut runbooks: Vec<Runbook> = Vec::with_capacity(files.len());
    for (file, text) in files {
        let runbook = Runbook::parse(file.as_ref(), text.as_ref())?;
        if let Some(other) = runbooks.iter().find(|r| r.name() == runbook.name()) {
            return Err(RunbookError {
                file: runbook.file().to_owned(),
                line: None,
                step: None,
                field: "name".into(),
                message: format!("{:?} is also the name of {}", runbook.name(), other.file()),
            });
        }
        runbooks.push(runbook);
    }
    Ok(runbooks)
}

/// Parses `500ms`, `30s`, `5m`, `2h`, `1d` (a whole number and a unit).
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 30s, 5m, 2h, 1d)"))?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?} is not a duration (e.g. 30s, 5m, 2h, 1d)")),
    };
    let ms = number
        .checked_mul(scale)
        .filter(|ms| *ms <= MAX_DURATION_MS)
        .ok_or_else(|| format!("{text:?} is longer than 7d"))?;
    if ms == 0 {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(ms)
}

// ---------------------------------------------------------------------------
// YAML errors

impl From<floodgate_contract::yaml::FileError> for RunbookError {
    /// A YAML error: `steps.NAME.…` (map form) or `steps[i].…` (list
    /// form) names a step.
    fn from(error: floodgate_contract::yaml::FileError) -> RunbookError {
        let mut step = None;
        let mut field = error.path.as_str();
        if let Some(rest) = field.strip_prefix("steps") {
            let (name, tail) = match rest.strip_prefix('.') {
                Some(rest) => rest.split_once('.').unwrap_or((rest, "")),
                None if rest.starts_with('[') => {
                    let end = rest.find(']').map_or(rest.len(), |end| end + 1);
                    (&rest[..end], rest[end..].trim_start_matches('.'))
                }
                None => ("", rest),
            };
            if !name.is_empty() {
                step = Some(name.to_owned());
                field = tail;
            }
        }
        RunbookError {
            file: error.file.clone(),
            line: error.line,
            step,
            field: field.to_owned(),
            message: error.message.clone(),
        }
    }
}

// ---------------------------------------------------------------------------
// validation

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
    /// Each step's path in the text (`steps.NAME` or `steps[i]`), for the
    /// line of an error.
    steps: HashMap<String, String>,
}

type Fail = RunbookError;

impl Validator<'_> {
    fn top(&self, field: &str, message: impl Into<String>) -> Fail {
        RunbookError {
            file: self.file.to_owned(),
            line: floodgate_contract::yaml::line_of(self.text, field),
            step: None,
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn step(&self, step: &str, field: &str, message: impl Into<String>) -> Fail {
        RunbookError {
            file: self.file.to_owned(),
            line: self.steps.get(step).and_then(|at| {
                floodgate_contract::yaml::line_of(self.text, &format!("{at}.{field}"))
            }),
            step: Some(step.to_owned()),
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn build(&self, raw: RawRunbook) -> Result<Runbook, Fail> {
        if !is_name(&raw.name) {
            return Err(self.top(
                "name",
                format!(
                    "{:?} is not a runbook name (lowercase letters, digits, - and _)",
                    raw.name
                ),
            ));
        }
        if raw.version == 0 {
            return Err(self.top("version", "versions start at 1"));
        }
        if raw.description.trim().is_empty() {
            return Err(self.top("description", "must not be empty"));
        }
        if raw.matcher.source.is_empty() {
            return Err(self.top("match.source", "name at least one ticket source"));
        }
        let mut sources = raw.matcher.source.clone();
        sources.sort();
        sources.dedup();
        if raw.matcher.fingerprint.trim().is_empty() {
            return Err(self.top("match.fingerprint", "must not be empty"));
        }
        let fingerprint = regex::RegexBuilder::new(&format!("^(?:{})$", raw.matcher.fingerprint))
            .size_limit(1 << 20)
            .build()
            .map_err(|error| {
                self.top(
                    "match.fingerprint",
                    format!(
                        "{:?} is not a valid pattern: {error}",
                        raw.matcher.fingerprint
                    ),
                )
            })?;
        let timeout_ms = parse_duration(&raw.timeout).map_err(|m| self.top("timeout", m))?;
        for name in raw.vars.keys() {
            if !is_identifier(name) {
                return Err(self.top(
                    &format!("vars.{name}"),
                    "a variable name is letters, digits and _ (not first)",
                ));
            }
        }
        if raw.steps.0.is_empty() {
            return Err(self.top("steps", "a runbook needs at least one step"));
        }
        if raw.steps.0.len() > MAX_STEPS {
            return Err(self.top("steps", format!("more than {MAX_STEPS} steps")));
        }
        let mut index = HashMap::new();
        for (position, (name, _)) in raw.steps.0.iter().enumerate() {
            if !is_identifier(name) {
                return Err(self.step(
                    name,
                    "name",
                    "a step name is letters, digits and _ (not first)",
                ));
            }
            if index.insert(name.clone(), position).is_some() {
                return Err(self.step(name, "name", "two steps have this name"));
            }
        }
        let mut steps = Vec::with_capacity(raw.steps.0.len());
        for (name, step) in raw.steps.0 {
            steps.push(self.step_of(&name, step, &raw.vars)?);
        }
        let start = *index.get(&raw.start).ok_or_else(|| {
            self.top(
                "start",
                format!("{:?} is not a step of this runbook", raw.start),
            )
        })?;
        // references
        for step in &steps {
            for (field, target) in step.all_successors() {
                if !index.contains_key(target) {
                    return Err(self.step(
                        &step.name,
                        &field,
                        format!("{target:?} is not a step of this runbook"),
                    ));
                }
            }
        }
        // variables: constants and what observe steps store
        let mut known: BTreeSet<String> = raw.vars.keys().cloned().collect();
        for step in &steps {
            match &step.kind {
                StepKind::Observe { into, .. } => {
                    known.insert(into.clone());
                }
                StepKind::Set { exprs, .. } => {
                    known.extend(exprs.iter().map(|(name, _)| name.clone()));
                }
                _ => {}
            }
        }
        for step in &steps {
            for (field, names) in step_var_names(step) {
                if let Some(unknown) = names.iter().find(|name| !known.contains(*name)) {
                    return Err(self.step(
                        &step.name,
                        &field,
                        format!(
                            "reads vars.{unknown}, which no observe step stores and vars does not define"
                        ),
                    ));
                }
            }
        }
        let inner = Inner {
            file: self.file.to_owned(),
            name: raw.name,
            version: raw.version,
            description: raw.description,
            sources,
            fingerprint_text: raw.matcher.fingerprint,
            fingerprint,
            timeout_ms,
            vars: raw.vars,
            steps,
            index,
            start,
        };
        self.check_graph(&inner)?;
        Ok(Runbook {
            inner: Arc::new(inner),
        })
    }

    fn step_of(
        &self,
        name: &str,
        raw: RawStep,
        constants: &BTreeMap<String, Value>,
    ) -> Result<Step, Fail> {
        let kinds: Vec<&str> = [
            ("observe", raw.observe.is_some()),
            ("set", raw.set.is_some()),
            ("branch", raw.branch.is_some()),
            ("propose", raw.propose.is_some()),
            ("approval", raw.approval.is_some()),
            ("wait", raw.wait.is_some()),
            ("escalate", raw.escalate.is_some()),
            ("resolve", raw.resolve.is_some()),
            ("done", raw.done.is_some()),
        ]
        .into_iter()
        .filter_map(|(kind, present)| present.then_some(kind))
        .collect();
        let kind = match kinds.as_slice() {
            [kind] => *kind,
            [] => {
                return Err(self.step(
                    name,
                    "",
                    "a step needs one of observe, set, branch, propose, approval, wait, escalate, resolve, done",
                ))
            }
            [first, second, ..] => {
                return Err(self.step(
                    name,
                    second,
                    format!("a step is one kind: it has both {first} and {second}"),
                ))
            }
        };
        // Fields each kind takes (besides its own key).
        let allowed: &[&str] = match kind {
            "observe" => &["into", "next", "timeout", "on_failure"],
            "set" => &["next", "timeout", "on_failure"],
            "branch" => &["default", "timeout", "on_failure"],
            "propose" => &[
                "risk",
                "rationale",
                "interim",
                "on_success",
                "timeout",
                "on_failure",
            ],
            "approval" => &["on_approve", "on_reject", "timeout", "on_failure"],
            "wait" => &["next", "timeout", "on_failure"],
            _ => &[],
        };
        let present = [
            ("into", raw.into.is_some()),
            ("next", raw.next.is_some()),
            ("default", raw.default.is_some()),
            ("risk", raw.risk.is_some()),
            ("rationale", raw.rationale.is_some()),
            ("interim", raw.interim.is_some()),
            ("on_success", raw.on_success.is_some()),
            ("on_approve", raw.on_approve.is_some()),
            ("on_reject", raw.on_reject.is_some()),
            ("timeout", raw.timeout.is_some()),
            ("on_failure", raw.on_failure.is_some()),
        ];
        for (field, is_present) in present {
            if is_present && !allowed.contains(&field) {
                return Err(self.step(
                    name,
                    field,
                    if allowed.is_empty() {
                        format!("a {kind} step ends the run and takes no other field")
                    } else {
                        format!(
                            "not a field of a {kind} step (it takes {})",
                            allowed.join(", ")
                        )
                    },
                ));
            }
        }
        let need = |value: Option<String>, field: &str| -> Result<String, Fail> {
            value.ok_or_else(|| self.step(name, field, format!("a {kind} step needs {field}")))
        };
        let text = |value: String, field: &str| -> Result<Template, Fail> {
            if value.trim().is_empty() {
                return Err(self.step(name, field, "must not be empty"));
            }
            Template::parse_text(&value).map_err(|m| self.step(name, field, m))
        };
        let timeout_ms = raw
            .timeout
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(|m| self.step(name, "timeout", m))?;
        let step_kind = match kind {
            "observe" => {
                let query = raw.observe.unwrap_or_default();
                let source = self.observe_source(name, query)?;
                let into = need(raw.into, "into")?;
                if !is_identifier(&into) {
                    return Err(self.step(
                        name,
                        "into",
                        format!("{into:?} is not a variable name (letters, digits and _)"),
                    ));
                }
                if constants.contains_key(&into) {
                    return Err(self.step(
                        name,
                        "into",
                        format!("{into:?} is a constant of vars and cannot be overwritten"),
                    ));
                }
                StepKind::Observe {
                    source,
                    into,
                    next: need(raw.next, "next")?,
                }
            }
            "set" => {
                let raw_exprs = raw.set.unwrap_or_default();
                if raw_exprs.is_empty() {
                    return Err(self.step(name, "set", "set at least one variable"));
                }
                let mut exprs = Vec::with_capacity(raw_exprs.len());
                for (var, text) in raw_exprs {
                    let field = format!("set.{var}");
                    if !is_identifier(&var) {
                        return Err(self.step(
                            name,
                            &field,
                            format!("{var:?} is not a variable name (letters, digits and _)"),
                        ));
                    }
                    if constants.contains_key(&var) || var == "item" {
                        return Err(self.step(
                            name,
                            &field,
                            format!("{var:?} is a constant of vars (or the reserved `item`) and cannot be overwritten"),
                        ));
                    }
                    let expr = Expr::compile(&text).map_err(|m| self.step(name, &field, m))?;
                    exprs.push((var, expr));
                }
                StepKind::Set {
                    exprs,
                    next: need(raw.next, "next")?,
                }
            }
            "branch" => {
                let raw_cases = raw.branch.unwrap_or_default();
                if raw_cases.is_empty() {
                    return Err(self.step(name, "branch", "a branch needs at least one case"));
                }
                let mut cases = Vec::with_capacity(raw_cases.len());
                for (position, case) in raw_cases.into_iter().enumerate() {
                    let when = Expr::compile(&case.when)
                        .map_err(|m| self.step(name, &format!("branch[{position}].when"), m))?;
                    cases.push(Case {
                        when,
                        next: case.next,
                    });
                }
                StepKind::Branch {
                    cases,
                    default: need(raw.default, "default")?,
                }
            }
            "propose" => {
                let raw_actions = raw.propose.unwrap_or_default();
                if raw_actions.is_empty() {
                    return Err(self.step(name, "propose", "propose at least one action"));
                }
                let risk = raw.risk.ok_or_else(|| {
                    self.step(
                        name,
                        "risk",
                        "a propose step needs risk (low, medium or high)",
                    )
                })?;
                let mut specs = Vec::with_capacity(raw_actions.len());
                for (position, action) in raw_actions.into_iter().enumerate() {
                    specs.push(self.action(name, position, action, risk, constants)?);
                }
                StepKind::Propose {
                    actions: specs,
                    risk,
                    rationale: text(need(raw.rationale, "rationale")?, "rationale")?,
                    interim: raw.interim.unwrap_or(false),
                    on_success: need(raw.on_success, "on_success")?,
                }
            }
            "approval" => StepKind::Approval {
                question: text(raw.approval.unwrap_or_default(), "approval")?,
                on_approve: need(raw.on_approve, "on_approve")?,
                on_reject: need(raw.on_reject, "on_reject")?,
            },
            "wait" => StepKind::Wait {
                duration_ms: parse_duration(raw.wait.as_deref().unwrap_or_default())
                    .map_err(|m| self.step(name, "wait", m))?,
                next: need(raw.next, "next")?,
            },
            "escalate" => StepKind::Escalate {
                reason: text(raw.escalate.unwrap_or_default(), "escalate")?,
            },
            "resolve" => StepKind::Done {
                summary: text(raw.resolve.unwrap_or_default(), "resolve")?,
            },
            _ => StepKind::Done {
                summary: text(raw.done.unwrap_or_default(), "done")?,
            },
        };
        Ok(Step {
            name: name.to_owned(),
            kind: step_kind,
            timeout_ms,
            on_failure: raw.on_failure,
        })
    }

    fn observe_source(&self, name: &str, query: RawQuery) -> Result<ObserveSource, Fail> {
        let forms = [
            ("series", query.series.is_some()),
            ("state", query.state.is_some()),
            ("evidence", query.evidence.is_some()),
            ("ticket", query.ticket.is_some()),
        ];
        let named: Vec<&str> = forms
            .iter()
            .filter_map(|(form, present)| present.then_some(*form))
            .collect();
        if named.len() != 1 {
            return Err(self.step(
                name,
                "observe",
                "observe exactly one of series, state, evidence or ticket",
            ));
        }
        if query.series.is_none() {
            for (field, present) in [
                ("window", query.window.is_some()),
                ("reduce", query.reduce.is_some()),
            ] {
                if present {
                    return Err(self.step(
                        name,
                        &format!("observe.{field}"),
                        "only a series observation takes window and reduce",
                    ));
                }
            }
        }
        let pointer = |pointer: String, field: &str| -> Result<String, Fail> {
            if pointer.is_empty() || pointer.starts_with('/') {
                Ok(pointer)
            } else {
                Err(self.step(
                    name,
                    &format!("observe.{field}"),
                    format!("{pointer:?} is not a JSON pointer (empty, or starting with /)"),
                ))
            }
        };
        if let Some(selector) = query.series {
            self.check_selector(name, &selector)?;
            let window = query.window.ok_or_else(|| {
                self.step(name, "observe.window", "a series observation needs window")
            })?;
            let window_ms =
                parse_duration(&window).map_err(|m| self.step(name, "observe.window", m))?;
            if window_ms > MAX_WINDOW_MS {
                return Err(self.step(name, "observe.window", "longer than 1d"));
            }
            let reduce = query.reduce.ok_or_else(|| {
                self.step(
                    name,
                    "observe.reduce",
                    "a series observation needs reduce (last, max, avg or rate)",
                )
            })?;
            return Ok(ObserveSource::Series {
                selector,
                window_ms,
                reduce,
            });
        }
        if let Some(state) = query.state {
            return Ok(ObserveSource::State {
                pointer: pointer(state, "state")?,
            });
        }
        if let Some(evidence) = query.evidence {
            return Ok(ObserveSource::Evidence {
                pointer: pointer(evidence, "evidence")?,
            });
        }
        Ok(ObserveSource::Ticket {
            pointer: pointer(query.ticket.unwrap_or_default(), "ticket")?,
        })
    }

    /// A selector names a catalog metric (or one of the harness's own
    /// `floodgate_harness_*` series) and only its labels; label values may
    /// be templated.
    fn check_selector(&self, name: &str, selector: &str) -> Result<(), Fail> {
        let field = "observe.series";
        Template::parse_text(selector).map_err(|m| self.step(name, field, m))?;
        let (metric, rest) = match selector.find('{') {
            Some(open) => (selector[..open].trim(), Some(&selector[open..])),
            None => (selector.trim(), None),
        };
        let def = floodgate_contract::metrics::find(metric);
        if def.is_none() && !metric.starts_with("floodgate_harness_") {
            return Err(self.step(
                name,
                field,
                format!("{metric:?} is not a metric of the catalog (docs/catalog/metrics.md)"),
            ));
        }
        let Some(rest) = rest else { return Ok(()) };
        let Some(body) = rest
            .strip_prefix('{')
            .and_then(|r| r.trim_end().strip_suffix('}'))
        else {
            return Err(self.step(name, field, format!("{selector:?}: unbalanced braces")));
        };
        static MATCHER: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
        let matcher = MATCHER.get_or_init(|| {
            Regex::new(
                r#"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)"#,
            )
            .expect("a valid pattern")
        });
        let mut rest = body.trim();
        while !rest.is_empty() {
            let Some(caps) = matcher.captures(rest) else {
                return Err(self.step(
                    name,
                    field,
                    format!("{selector:?}: cannot read the label matchers at {rest:?}"),
                ));
            };
            let label = &caps[1];
            if let Some(def) = def {
                let allowed = label == "instance" || label == "job" || label == "service";
                if !allowed && !def.labels.contains(&label) {
                    return Err(self.step(
                        name,
                        field,
                        format!(
                            "{metric} has no label {label:?} (its labels: {})",
                            if def.labels.is_empty() {
                                "none".to_owned()
                            } else {
                                def.labels.join(", ")
                            }
                        ),
                    ));
                }
            }
            rest = rest[caps[0].len()..].trim_start();
        }
        Ok(())
    }

    fn action(
        &self,
        name: &str,
        position: usize,
        raw: RawAction,
        risk: Risk,
        constants: &BTreeMap<String, Value>,
    ) -> Result<ActionSpec, Fail> {
        let at = format!("propose[{position}]");
        let for_each = raw
            .for_each
            .as_deref()
            .map(Expr::compile)
            .transpose()
            .map_err(|m| self.step(name, &format!("{at}.for_each"), m))?;
        let def = actions::find(&raw.action).ok_or_else(|| {
            self.step(
                name,
                &format!("{at}.action"),
                format!(
                    "{:?} is not an action of the catalog ({})",
                    raw.action,
                    actions::CATALOG
                        .iter()
                        .map(|def| def.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if risk < def.risk {
            return Err(self.step(
                name,
                "risk",
                format!(
                    "declares {} but {} is {} risk in the action catalog",
                    risk_name(risk),
                    def.name,
                    risk_name(def.risk)
                ),
            ));
        }
        if !raw.params.is_object() {
            return Err(self.step(name, &format!("{at}.params"), "params must be a map"));
        }
        let params = Template::parse(&raw.params)
            .map_err(|(path, m)| self.step(name, &format!("{at}.params{path}"), m))?;
        let schema = (def.params_schema)().to_value();
        let validator = jsonschema::validator_for(&schema).map_err(|error| {
            self.step(
                name,
                &format!("{at}.action"),
                format!(
                    "the catalog's schema of {} does not compile: {error}",
                    def.name
                ),
            )
        })?;
        // Names come from observations (ADR 0015): a literal, or a
        // template that reads only constants, is a name fitted to one
        // world.
        for (pointer, leaf) in params.leaves() {
            if !is_name_field(&pointer) {
                continue;
            }
            let field = pointer_to_field(&format!("{at}.params"), &pointer);
            match leaf {
                Leaf::Literal(value) => {
                    return Err(self.step(
                        name,
                        &field,
                        format!(
                            "a literal name ({value}): names of domains, limits and descriptor values must come from an observation (evidence, state, ticket), through a template"
                        ),
                    ))
                }
                Leaf::Templated(names) => {
                    let observed = names
                        .iter()
                        .any(|var| var == "item" || !constants.contains_key(var));
                    if !observed {
                        return Err(self.step(
                            name,
                            &field,
                            "a name filled from constants alone: names of domains, limits and descriptor values must come from an observation (evidence, state, ticket)",
                        ));
                    }
                }
            }
        }
        let templated = params.templated_pointers();
        let skeleton = params.skeleton();
        for error in validator.iter_errors(&skeleton) {
            let pointer = error.instance_path.as_str().to_owned();
            let under_template = templated
                .iter()
                .any(|t| pointer == *t || pointer.starts_with(&format!("{t}/")));
            if under_template {
                continue;
            }
            let field = pointer_to_field(&format!("{at}.params"), &pointer);
            return Err(self.step(name, &field, format!("{} refuses it: {error}", def.name)));
        }
        Ok(ActionSpec {
            def,
            params,
            for_each,
        })
    }

    fn check_graph(&self, inner: &Inner) -> Result<(), Fail> {
        let steps = &inner.steps;
        let successors: Vec<Vec<usize>> = steps
            .iter()
            .map(|step| {
                step.all_successors()
                    .into_iter()
                    .filter_map(|(_, target)| inner.index.get(target).copied())
                    .collect()
            })
            .collect();
        // reachability
        let reached = reach(inner.start, &successors, |_| true);
        if let Some(lost) = steps.iter().enumerate().find(|(i, _)| !reached[*i]) {
            return Err(self.step(
                &lost.1.name,
                "name",
                format!(
                    "unreachable: no path from start ({}) leads here",
                    steps[inner.start].name
                ),
            ));
        }
        // cycles must pass a wait or an observation of the world
        let mut color = vec![0u8; steps.len()];
        for root in 0..steps.len() {
            if steps[root].breaks_cycles() || color[root] != 0 {
                continue;
            }
            if let Some(cycle) = find_cycle(root, steps, &successors, &mut color) {
                let names: Vec<&str> = cycle.iter().map(|&i| steps[i].name.as_str()).collect();
                return Err(self.step(
                    &steps[cycle[0]].name,
                    "next",
                    format!(
                        "a cycle without a wait or a series/state observation: {}",
                        names.join(" → ")
                    ),
                ));
            }
        }
        // high risk only behind an approval
        let without_approval = reach(inner.start, &successors, |i| {
            !matches!(steps[i].kind, StepKind::Approval { .. })
        });
        for (i, step) in steps.iter().enumerate() {
            if let StepKind::Propose { actions, .. } = &step.kind {
                if let Some(high) = actions.iter().find(|a| a.def.risk == Risk::High) {
                    if without_approval[i] {
                        return Err(self.step(
                            &step.name,
                            "propose",
                            format!(
                                "{} is high risk in the action catalog: every path to this step must pass an approval step",
                                high.def.name
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Steps reachable from `start`, entering only steps `enter` accepts (the
/// start itself always).
fn reach(start: usize, successors: &[Vec<usize>], enter: impl Fn(usize) -> bool) -> Vec<bool> {
    let mut seen = vec![false; successors.len()];
    let mut stack = vec![start];
    seen[start] = true;
    while let Some(at) = stack.pop() {
        for &next in &successors[at] {
            if !seen[next] && enter(next) {
                seen[next] = true;
                stack.push(next);
            }
        }
    }
    seen
}

/// A cycle through steps that do not break cycles, found by depth-first
/// search from `root` (iterative: no recursion on user input).
fn find_cycle(
    root: usize,
    steps: &[Step],
    successors: &[Vec<usize>],
    color: &mut [u8],
) -> Option<Vec<usize>> {
    // color: 0 new, 1 on the stack, 2 done
    let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
    color[root] = 1;
    while let Some(&mut (node, ref mut edge)) = stack.last_mut() {
        if let Some(&next) = successors[node].get(*edge) {
            *edge += 1;
            if steps[next].breaks_cycles() {
                continue;
            }
            match color[next] {
                0 => {
                    color[next] = 1;
                    stack.push((next, 0));
                }
                1 => {
                    let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                    let mut cycle: Vec<usize> = stack[from..].iter().map(|(n, _)| *n).collect();
                    cycle.push(next);
                    return Some(cycle);
                }
                _ => {}
            }
        } else {
            color[node] = 2;
            stack.pop();
        }
    }
    None
}

fn step_var_names(step: &Step) -> Vec<(String, BTreeSet<String>)> {
    let mut out = Vec::new();
    match &step.kind {
        StepKind::Observe {
            source: ObserveSource::Series { selector, .. },
            ..
        } => {
            if let Ok(template) = Template::parse_text(selector) {
                out.push(("observe.series".to_owned(), template.var_names()));
            }
        }
        StepKind::Observe { .. } | StepKind::Wait { .. } => {}
        StepKind::Set { exprs, .. } => {
            for (name, expr) in exprs {
                out.push((format!("set.{name}"), expr.var_names()));
            }
        }
        StepKind::Branch { cases, .. } => {
            for (i, case) in cases.iter().enumerate() {
                out.push((format!("branch[{i}].when"), case.when.var_names()));
            }
        }
        StepKind::Propose {
            actions, rationale, ..
        } => {
            for (i, action) in actions.iter().enumerate() {
                let mut names = action.params.var_names();
                if let Some(list) = &action.for_each {
                    // `vars.item` is the element for_each binds.
                    names.remove("item");
                    out.push((format!("propose[{i}].for_each"), list.var_names()));
                }
                out.push((format!("propose[{i}].params"), names));
            }
            out.push(("rationale".to_owned(), rationale.var_names()));
        }
        StepKind::Approval { question, .. } => {
            out.push(("approval".to_owned(), question.var_names()))
        }
        StepKind::Escalate { reason } => out.push(("escalate".to_owned(), reason.var_names())),
        StepKind::Done { summary } => out.push(("resolve".to_owned(), summary.var_names())),
    }
    out
}

fn risk_name(risk: Risk) -> &'static str {
    match risk {
        Risk::Low => "low",
        Risk::Medium => "medium",
        Risk::High => "high",
    }
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `/path/0/value` under `prefix` → `prefix.path[0].value`.
fn pointer_to_field(prefix: &str, pointer: &str) -> String {
    let mut out = prefix.to_owned();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.chars().all(|c| c.is_ascii_digit()) && !segment.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    out
}
