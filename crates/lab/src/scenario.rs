//! Scenarios as data: one YAML file each (`scenarios/*.yaml`). Parsing is
//! pure; every error names the file, the line (when it can be found) and
//! the field.

use crate::fault::{Fault, FaultSpec};
use crate::workload::{Contract, TenantSpec, Workload};
use crate::world::BackendSpec;
use floodgate_harness::quantity::parse_duration_ms;
use floodgate_store::FailurePolicy;
use serde::Deserialize;
use std::path::Path;

/// The simulated tick: traffic is sent and the harness observes once per tick.
pub const TICK_MS: u64 = 10_000;
/// The longest scenario (bounds a run's cost).
pub const MAX_DURATION_MS: u64 = 12 * 3_600_000;
/// The most service instances a world runs (each is a service with its
/// own router, and the harness scrapes each every tick).
pub const MAX_INSTANCES: u32 = 8;
/// The instances a world runs unless its scenario says otherwise: the
/// canary is one of several, judged against the others.
pub const DEFAULT_INSTANCES: u32 = 3;
/// Applied changes on a fault's tickets before the human is asked, at
/// most, unless the scenario says otherwise: the endless-fixes rule.
pub const DEFAULT_MAX_CHANGES: u32 = 3;
/// The most `expect.unfinished` entries a scenario may give.
pub const MAX_UNFINISHED: usize = 16;

/// Why a scenario file was refused: file, line, field path and problem
/// (the contract's one YAML error).
pub type ScenarioError = floodgate_contract::yaml::FileError;

/// What the oracle expects the loop to end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The objective holds again, and keeps holding for the hold window.
    Mitigate,
    /// A human is asked: the fault's ticket is escalated, or reflection
    /// files a help ticket; never an endless series of fixes.
    Escalate,
    /// Control: no ticket at all (a fault that should harm nothing, like a
    /// backend slower than usual but within its timeout, may be present).
    Quiet,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Mitigate => "mitigate",
            Outcome::Escalate => "escalate",
            Outcome::Quiet => "quiet",
        }
    }
}

/// One scenario, parsed and checked.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub file: String,
    pub name: String,
    /// The family it belongs to (generated scenarios: the generator's
    /// family; committed ones name theirs); figures are given per family.
    pub family: String,
    pub description: String,
    /// Milliseconds after midnight UTC at which the run starts (the
    /// diurnal shape and freeze windows follow the time of day).
    pub start_ms: u64,
    /// Service instances behind the world's load balancer.
    pub instances: u32,
    pub suites: Vec<String>,
    pub duration_ms: u64,
    pub seed: u64,
    /// Seeds this scenario always runs with at least (control runs: 2).
    pub min_seeds: u32,
    pub workload: Workload,
    pub store_capacity: u64,
    /// Where the service keeps its counters (memory unless told).
    pub backend: BackendSpec,
    pub limits: Option<String>,
    pub policy: String,
    /// The simulated on-call approves what agents and the pipeline ask.
    pub human_approves: bool,
    pub faults: Vec<Fault>,
    /// Expected-change notices filed during the run.
    pub notices: Vec<Notice>,
    pub outcome: Outcome,
    pub hold_ms: u64,
    /// Requests per minute the protected service is planned for (an
    /// objective of the lab's own: what every tenant together is admitted).
    pub max_load_per_minute: Option<u64>,
    /// The escalation must come with reflection's help ticket naming the
    /// fault's tickets (the traps whose honest end is a human asked by
    /// reflection).
    pub help_required: bool,
    /// Applied changes on the fault's tickets before the human is asked,
    /// at most (escalations; the endless-fixes rule).
    pub max_changes: u32,
    /// Tickets the run's horizon leaves unfinished, and why: (fingerprint
    /// pattern, reason). Any other ticket still open, claimed, in progress
    /// or verifying at the end fails the run.
    pub unfinished: Vec<(regex::Regex, String)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[serde(default)]
    family: Option<String>,
    description: String,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    instances: Option<u32>,
    #[serde(default)]
    suites: Option<Vec<String>>,
    duration: String,
    seed: u64,
    #[serde(default)]
    min_seeds: Option<u32>,
    workload: RawWorkload,
    #[serde(default)]
    store_capacity: Option<u64>,
    #[serde(default)]
    backend: Option<RawBackend>,
    #[serde(default)]
    limits: Option<String>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    human: Option<RawHuman>,
    #[serde(default)]
    notices: Vec<RawNotice>,
    #[serde(default)]
    faults: Vec<FaultSpec>,
    expect: RawExpect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotice {
    at: String,
    #[serde(rename = "for")]
    for_: String,
    author: String,
    reason: String,
    #[serde(default)]
    max_factor: Option<f64>,
    matchers: Vec<RawMatcher>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatcher {
    name: String,
    value: String,
}

/// An expected-change notice the scenario files with the harness (as a
/// deploy system or a human announcing a launch does) at `at_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub at_ms: u64,
    pub for_ms: u64,
    pub author: String,
    pub reason: String,
    pub max_factor: Option<f64>,
    /// (label, value): service, limit, tenant, metric, anomaly, slo or
    /// invariant.
    pub matchers: Vec<(String, String)>,
}

/// The labels a notice may match on.
pub const NOTICE_LABELS: [&str; 7] = [
    "service",
    "limit",
    "tenant",
    "metric",
    "anomaly",
    "slo",
    "invariant",
];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawBackendKind {
    Memory,
    Remote,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawFailurePolicy {
    FailOpen,
    FailClosed,
    LocalFallback,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    kind: RawBackendKind,
    #[serde(default)]
    failure_policy: Option<RawFailurePolicy>,
    #[serde(default)]
    key_ops_per_tick: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHuman {
    #[serde(default)]
    approve: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    key: Option<String>,
    tenants: Vec<TenantSpec>,
    #[serde(default)]
    diurnal_amplitude: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    outcome: Outcome,
    hold: String,
    #[serde(default)]
    max_load_per_minute: Option<u64>,
    #[serde(default)]
    help: Option<bool>,
    #[serde(default)]
    max_changes: Option<u32>,
    #[serde(default)]
    unfinished: Vec<RawUnfinished>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnfinished {
    fingerprint: String,
    why: String,
}

/// A name the world sends as a domain or a descriptor key, or a tenant's
/// name: letters, digits, `-`, `_` and `.`, at most 64 bytes.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `HH:MM` → milliseconds after midnight.
fn parse_time_of_day(text: &str) -> Option<u64> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: u64 = hours.parse().ok()?;
    let minutes: u64 = minutes.parse().ok()?;
    (hours < 24 && minutes < 60).then_some((hours * 60 + minutes) * 60_000)
}

/// Parses `text` (the contents of `file`).
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    // No bound of its own: scenarios are the repository's files (and the
    // generator's), read by `load_dir`.
    let raw: Raw = floodgate_contract::yaml::load(file, text, usize::MAX)?;
    build(file, raw).map_err(|mut error| {
        // A field refused after parsing: its line, or its nearest
        // ancestor's when it is missing.
        if error.line.is_none() {
            error.line = floodgate_contract::yaml::line_of(text, &error.path);
        }
        error
    })
}

/// The scenario `raw` describes, validated; errors name their field, and
/// [`parse`] finds its line.
fn build(file: &str, raw: Raw) -> Result<Scenario, ScenarioError> {
    let err = |field: &str, message: String| ScenarioError::new(file, field, message);
    if raw.name.is_empty()
        || !raw
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(err(
            "name",
            format!("{:?}: lowercase letters, digits and - only", raw.name),
        ));
    }
    let duration_ms = parse_duration_ms(&raw.duration).map_err(|e| err("duration", e))?;
    if !(TICK_MS..=MAX_DURATION_MS).contains(&duration_ms) {
        return Err(err(
            "duration",
            format!("{}: must be between 10s and 12h", raw.duration),
        ));
    }
    let hold_ms = parse_duration_ms(&raw.expect.hold).map_err(|e| err("expect.hold", e))?;
    if raw.workload.tenants.is_empty() {
        return Err(err("workload.tenants", "at least one tenant".into()));
    }
    let mut names = std::collections::BTreeSet::new();
    for (index, tenant) in raw.workload.tenants.iter().enumerate() {
        let field = |f: &str| format!("workload.tenants[{index}].{f}");
        if !names.insert(tenant.name.clone()) {
            return Err(ScenarioError {
                file: file.into(),
                line: None,
                path: field("name"),
                message: format!("{:?} appears twice", tenant.name),
            });
        }
        if tenant.per_minute > 6_000 {
            return Err(ScenarioError {
                file: file.into(),
                line: None,
                path: field("per_minute"),
                message: format!("{}: at most 6000", tenant.per_minute),
            });
        }
        if tenant.contract == Contract::Bursty && tenant.burst_every.is_none() {
            return Err(ScenarioError {
                file: file.into(),
                line: None,
                path: field("burst_every"),
                message: "a bursty tenant needs burst_every".into(),
            });
        }
    }
    for (index, tenant) in raw.workload.tenants.iter().enumerate() {
        if !is_name(&tenant.name) || tenant.name.starts_with(crate::workload::FLOOD_PREFIX) {
            return Err(ScenarioError {
                file: file.into(),
                line: None,
                path: format!("workload.tenants[{index}].name"),
                message: format!(
                    "{:?}: letters, digits, -, _ and . only (at most 64), not starting with {}",
                    tenant.name,
                    crate::workload::FLOOD_PREFIX
                ),
            });
        }
    }
    let domain = raw.workload.domain.clone().unwrap_or_else(|| "api".into());
    let key = raw.workload.key.clone().unwrap_or_else(|| "tenant".into());
    for (field, value) in [("domain", &domain), ("key", &key)] {
        if !is_name(value) {
            return Err(err(
                &format!("workload.{field}"),
                format!("{value:?}: letters, digits, -, _ and . only (at most 64)"),
            ));
        }
    }
    let start_ms = match &raw.start {
        None => 0,
        Some(text) => parse_time_of_day(text).ok_or_else(|| {
            err(
                "start",
                format!("{text:?} is not a time of day (HH:MM, 00:00 to 23:59)"),
            )
        })?,
    };
    let instances = raw.instances.unwrap_or(DEFAULT_INSTANCES);
    if !(1..=MAX_INSTANCES).contains(&instances) {
        return Err(err(
            "instances",
            format!("{instances}: between 1 and {MAX_INSTANCES}"),
        ));
    }
    let family = raw.family.clone().unwrap_or_else(|| raw.name.clone());
    if !is_name(&family) {
        return Err(err(
            "family",
            format!("{family:?}: letters, digits, -, _ and . only (at most 64)"),
        ));
    }
    if raw.expect.unfinished.len() > MAX_UNFINISHED {
        return Err(err(
            "expect.unfinished",
            format!("at most {MAX_UNFINISHED} entries"),
        ));
    }
    let mut unfinished = Vec::new();
    for (index, entry) in raw.expect.unfinished.iter().enumerate() {
        let field = |f: &str| format!("expect.unfinished[{index}].{f}");
        let pattern =
            regex::Regex::new(&format!("^(?:{})$", entry.fingerprint)).map_err(|error| {
                ScenarioError {
                    file: file.into(),
                    line: None,
                    path: field("fingerprint"),
                    message: format!("not a pattern: {error}"),
                }
            })?;
        if entry.why.trim().is_empty() {
            return Err(ScenarioError {
                file: file.into(),
                line: None,
                path: field("why"),
                message: "say why the run's horizon leaves it unfinished".into(),
            });
        }
        unfinished.push((pattern, entry.why.trim().to_owned()));
    }
    let amplitude = raw.workload.diurnal_amplitude.unwrap_or(0.0);
    if !(0.0..=0.9).contains(&amplitude) {
        return Err(err(
            "workload.diurnal_amplitude",
            format!("{amplitude}: between 0 and 0.9"),
        ));
    }
    let tenants = raw
        .workload
        .tenants
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            spec.compile().map_err(|(f, message)| ScenarioError {
                file: file.into(),
                line: None,
                path: format!("workload.tenants[{index}].{f}"),
                message,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut faults = Vec::new();
    for (index, spec) in raw.faults.iter().enumerate() {
        let fault = spec.compile(&names).map_err(|(f, message)| ScenarioError {
            file: file.into(),
            line: None,
            path: format!("faults[{index}].{f}"),
            message,
        })?;
        if fault.at_ms >= duration_ms {
            return Err(ScenarioError {
                file: file.into(),
                line: None,
                path: format!("faults[{index}].at"),
                message: format!("{}: not before the end of the run", spec.at),
            });
        }
        faults.push(fault);
    }
    let backend = match &raw.backend {
        None
        | Some(RawBackend {
            kind: RawBackendKind::Memory,
            failure_policy: None,
            key_ops_per_tick: None,
        }) => BackendSpec::Memory,
        Some(RawBackend {
            kind: RawBackendKind::Memory,
            failure_policy,
            ..
        }) => {
            let field = if failure_policy.is_some() {
                "failure_policy"
            } else {
                "key_ops_per_tick"
            };
            return Err(ScenarioError {
                file: file.into(),
                line: None,
                path: format!("backend.{field}"),
                message: "only a remote backend has a failure policy or key_ops_per_tick".into(),
            });
        }
        Some(RawBackend {
            kind: RawBackendKind::Remote,
            failure_policy,
            key_ops_per_tick,
        }) => BackendSpec::Remote {
            key_ops_per_tick: key_ops_per_tick.unwrap_or(0),
            failure_policy: match failure_policy {
                None | Some(RawFailurePolicy::FailOpen) => FailurePolicy::FailOpen,
                Some(RawFailurePolicy::FailClosed) => FailurePolicy::FailClosed,
                Some(RawFailurePolicy::LocalFallback) => FailurePolicy::LocalFallback,
            },
        },
    };
    if backend == BackendSpec::Memory {
        if let Some(index) = faults.iter().position(|f| f.kind.needs_remote_backend()) {
            return Err(ScenarioError {
                file: file.into(),
                line: None,
                path: format!("faults[{index}].kind"),
                message: format!(
                    "{} needs a remote backend (backend: {{kind: remote}})",
                    faults[index].kind.name()
                ),
            });
        }
    }
    if raw.expect.outcome != Outcome::Quiet && faults.is_empty() {
        return Err(err(
            "expect.outcome",
            "a scenario without faults can only expect `quiet`".into(),
        ));
    }
    if raw.expect.help == Some(true) && raw.expect.outcome != Outcome::Escalate {
        return Err(err(
            "expect.help",
            "only an escalation can require reflection's help ticket".into(),
        ));
    }
    if let Some(policy) = &raw.policy {
        floodgate_harness::change::policy::Policy::parse("policy", policy)
            .map_err(|error| err("policy", error.to_string()))?;
    }
    for (field, limits) in std::iter::once(("limits".to_owned(), raw.limits.as_deref())).chain(
        faults
            .iter()
            .enumerate()
            .map(|(index, fault)| (format!("faults[{index}].limits"), fault.kind.limits())),
    ) {
        let Some(limits) = limits else { continue };
        let table =
            floodgate_limiter::config::load(&[floodgate_limiter::config::ConfigSource::new(
                "limits", limits,
            )])
            .map_err(|error| err(&field, error.to_string()))?;
        if !table.domains().any(|d| d.domain == domain) {
            return Err(err(
                &field,
                format!("the config has no domain {domain:?}, which the workload sends (workload.domain)"),
            ));
        }
    }
    if raw.limits.is_none() && (domain != "api" || key != "tenant") {
        return Err(err("limits",
            format!(
                "a workload sending {domain:?}/{key:?} needs its own limits (the default config limits api/tenant)"
            ),
        ));
    }
    let mut notices = Vec::new();
    for (index, notice) in raw.notices.iter().enumerate() {
        let field = |f: &str| format!("notices[{index}].{f}");
        let fail = |f: &str, message: String| ScenarioError {
            file: file.into(),
            line: None,
            path: field(f),
            message,
        };
        let at_ms = parse_duration_ms(&notice.at).map_err(|e| fail("at", e))?;
        let for_ms = parse_duration_ms(&notice.for_).map_err(|e| fail("for", e))?;
        if at_ms >= duration_ms {
            return Err(fail(
                "at",
                format!("{}: not before the end of the run", notice.at),
            ));
        }
        if for_ms == 0 {
            return Err(fail("for", "must be positive".into()));
        }
        if notice.author.trim().is_empty() || notice.reason.trim().is_empty() {
            return Err(fail(
                "reason",
                "a notice needs an author and a reason".into(),
            ));
        }
        if notice
            .max_factor
            .is_some_and(|f| !(f.is_finite() && f > 1.0))
        {
            return Err(fail("max_factor", "greater than 1".into()));
        }
        if notice.matchers.is_empty() {
            return Err(fail("matchers", "at least one matcher".into()));
        }
        let mut matchers = Vec::new();
        for matcher in &notice.matchers {
            if !NOTICE_LABELS.contains(&matcher.name.as_str()) {
                return Err(fail(
                    "matchers",
                    format!(
                        "{:?} is not a label (expected one of {})",
                        matcher.name,
                        NOTICE_LABELS.join(", ")
                    ),
                ));
            }
            matchers.push((matcher.name.clone(), matcher.value.clone()));
        }
        notices.push(Notice {
            at_ms,
            for_ms,
            author: notice.author.trim().to_owned(),
            reason: notice.reason.trim().to_owned(),
            max_factor: notice.max_factor,
            matchers,
        });
    }
    let max_changes = raw.expect.max_changes.unwrap_or(DEFAULT_MAX_CHANGES);
    Ok(Scenario {
        file: file.to_owned(),
        family,
        start_ms,
        instances,
        help_required: raw.expect.help.unwrap_or(false),
        max_changes,
        unfinished,
        name: raw.name,
        description: raw.description.trim().to_owned(),
        suites: raw.suites.unwrap_or_else(|| vec!["default".into()]),
        duration_ms,
        seed: raw.seed,
        min_seeds: raw.min_seeds.unwrap_or(1).max(1),
        workload: Workload {
            domain,
            key,
            tenants,
            diurnal_amplitude: amplitude,
        },
        store_capacity: raw.store_capacity.unwrap_or(10_000),
        backend,
        limits: raw.limits,
        policy: raw.policy.unwrap_or_default(),
        human_approves: raw.human.map(|h| h.approve).unwrap_or(false),
        faults,
        notices,
        outcome: raw.expect.outcome,
        hold_ms,
        max_load_per_minute: raw.expect.max_load_per_minute,
    })
}

/// Every `*.yaml` in `dir` (sorted by file name), parsed; the first bad
/// file is the error.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<Scenario>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|error| anyhow::anyhow!("{}: {error}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        out.push(parse(&path.display().to_string(), &text)?);
    }
    Ok(out)
}
