//! Generated incidents: scenario files drawn from documented families, in
//! the suite's own format (so they can be read, kept and rerun).
//!
//! The seed draws the whole incident, not only its noise: the world (domain,
//! descriptor key, tenants and their names, contracts and rates, limits and
//! their names and quotas, per-tenant overrides, the store, the backend,
//! instances, the time of day, the diurnal swing, the on-call, freeze
//! windows) and the fault (which tenant, which limit, how much, how long,
//! once or repeated, by whom). Nothing a runbook could rely on is fixed.
//!
//! Each family is a distribution (docs/scenarios.md, "Generated
//! incidents", lists them). Its expected outcome follows from the drawn
//! numbers by a documented rule, never from which agent will run it:
//! - a quota outgrown by at most [`MITIGABLE_FACTOR`] is mitigable; past
//!   [`UNMITIGABLE_FACTOR`] it needs a human (beyond the ×8 an agent may
//!   raise a limit within one ticket); nothing is drawn in between. How
//!   much a quota is outgrown is measured as quotas are sized: at the
//!   diurnal peak, with bursts and the arrival-noise margin;
//! - traps (a fix that does not stick, a controller that undoes it, a
//!   flapping backend) expect reflection's help ticket;
//! - controls expect quiet.
//!
//! Quotas are sized from each tenant's peak demand over the run (the
//! diurnal shape at the run's hours, bursts) with a margin for arrival
//! noise, so a control run's good tenants are never rejected; the lab's
//! suite test checks that on a sample (its no-agent baselines never break
//! the objective, and every generated incident's fault takes effect).

use crate::rng::Rng;
use crate::workload::{diurnal, Contract};
use std::fmt::Write as _;

/// The families, in the order `--generated N` cycles through them.
pub const FAMILIES: [&str; 9] = [
    "outgrown_quota",
    "abusive_surge",
    "bad_config",
    "backend",
    "hot_key",
    "key_pressure",
    "two_at_once",
    "reflection",
    "control",
];

/// A quota outgrown by at most this factor (the new demand over the
/// limit) is mitigable by raising it.
pub const MITIGABLE_FACTOR: f64 = 5.0;
/// A quota outgrown by at least this factor needs a human: past the ×8 an
/// agent may raise a limit within one ticket (with headroom on top).
pub const UNMITIGABLE_FACTOR: f64 = 12.0;
/// The most incidents one `generate` call writes.
pub const MAX_COUNT: u32 = 10_000;
/// The most checks a minute a generated tenant sends at its peak: bounds a
/// run's cost.
const MAX_TENANT_PER_MINUTE: f64 = 3_000.0;
/// Drawing a world that fits a family is retried at most this often.
const MAX_ATTEMPTS: u32 = 64;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;

/// One generated scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub name: String,
    pub family: String,
    /// The scenario file's text.
    pub text: String,
}

/// Why nothing was generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateError(pub String);

impl std::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GenerateError {}

/// `count` incidents of `families` (cycled in order; every family when
/// empty) from `seed`: incident `i` is drawn from its own stream, so the
/// same seed and index give the same file whatever the count.
pub fn generate(
    families: &[String],
    count: u32,
    seed: u64,
) -> Result<Vec<Generated>, GenerateError> {
    if count > MAX_COUNT {
        return Err(GenerateError(format!(
            "--count {count}: at most {MAX_COUNT}"
        )));
    }
    let chosen: Vec<&str> = if families.is_empty() {
        FAMILIES.to_vec()
    } else {
        families
            .iter()
            .map(|family| {
                FAMILIES
                    .iter()
                    .find(|known| **known == family.as_str())
                    .copied()
                    .ok_or_else(|| {
                        GenerateError(format!(
                            "--family {family:?}: expected one of {}",
                            FAMILIES.join(", ")
                        ))
                    })
            })
            .collect::<Result<_, _>>()?
    };
    (0..count)
        .map(|index| {
            let family = chosen[index as usize % chosen.len()];
            one(family, seed, index)
        })
        .collect()
}

/// Incident `index` of `family` from `seed`.
pub fn one(family: &str, seed: u64, index: u32) -> Result<Generated, GenerateError> {
    let mut root = Rng::new(seed);
    let mut rng = root.fork(&format!("{family}#{index}"));
    for _ in 0..MAX_ATTEMPTS {
        let needs = needs(family, &mut rng);
        let mut draft = draw_world(&mut rng, needs);
        let planted = match family {
            "outgrown_quota" => outgrown_quota(&mut draft, &mut rng, None),
            "abusive_surge" => abusive_surge(&mut draft, &mut rng),
            "bad_config" => bad_config(&mut draft, &mut rng),
            "backend" => backend(&mut draft, &mut rng),
            "hot_key" => hot_key(&mut draft, &mut rng),
            "key_pressure" => key_pressure(&mut draft, &mut rng),
            "two_at_once" => two_at_once(&mut draft, &mut rng),
            "reflection" => reflection(&mut draft, &mut rng),
            "control" => control(&mut draft, &mut rng),
            other => {
                return Err(GenerateError(format!(
                    "{other:?} is not a family (expected one of {})",
                    FAMILIES.join(", ")
                )))
            }
        };
        if planted.is_some() {
            draft.name = format!("gen-{}-s{seed}-{index}", family.replace('_', "-"));
            draft.family = family.to_owned();
            let text = draft.render();
            return Ok(Generated {
                name: draft.name,
                family: family.to_owned(),
                text,
            });
        }
    }
    Err(GenerateError(format!(
        "{family} #{index} (seed {seed}): no world fitting the family in {MAX_ATTEMPTS} draws"
    )))
}

// ---------------------------------------------------------------------------
// the model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Second,
    Minute,
    Hour,
    Day,
}

impl Unit {
    const ALL: [Unit; 4] = [Unit::Second, Unit::Minute, Unit::Hour, Unit::Day];

    fn name(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
        }
    }

    fn minutes(self) -> f64 {
        match self {
            Unit::Second => 1.0 / 60.0,
            Unit::Minute => 1.0,
            Unit::Hour => 60.0,
            Unit::Day => 1440.0,
        }
    }
}

#[derive(Debug, Clone)]
struct Limit {
    name: String,
    unit: Unit,
    quota: u64,
}

/// A descriptor node: the key alone (every tenant, each counted on its
/// own) or one tenant's value (an override: its limits replace the key's).
#[derive(Debug, Clone)]
struct Node {
    value: Option<String>,
    limits: Vec<Limit>,
}

#[derive(Debug, Clone)]
struct Burst {
    every_min: u64,
    for_min: u64,
    factor: f64,
}

#[derive(Debug, Clone)]
struct Tenant {
    name: String,
    contract: Contract,
    per_minute: u64,
    burst: Option<Burst>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Backend {
    Memory {
        capacity: u64,
    },
    Remote {
        policy: &'static str,
        key_ops: u64,
        capacity: u64,
    },
}

#[derive(Debug, Clone, Default)]
struct Needs {
    remote: bool,
    memory: bool,
    /// A tenant with the abusive contract.
    abuser: bool,
}

/// A fault as it will be written (its fields, in file order).
#[derive(Debug, Clone)]
struct FaultDraft {
    at_ms: u64,
    fields: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone)]
struct NoticeDraft {
    at_ms: u64,
    for_ms: u64,
    matchers: Vec<(&'static str, String)>,
    reason: String,
    author: String,
    max_factor: Option<f64>,
}

#[derive(Debug, Clone)]
struct Draft {
    name: String,
    seed: u64,
    family: String,
    description: Vec<String>,
    domain: String,
    key: String,
    tenants: Vec<Tenant>,
    amplitude: f64,
    start_ms: u64,
    instances: u32,
    backend: Backend,
    nodes: Vec<Node>,
    freeze: Option<(u64, u64)>,
    human_approves: bool,
    faults: Vec<FaultDraft>,
    notices: Vec<NoticeDraft>,
    duration_ms: u64,
    outcome: &'static str,
    hold_ms: u64,
    max_load: Option<u64>,
    help: bool,
    unfinished: Vec<(String, String)>,
}

// ---------------------------------------------------------------------------
// names

const DOMAINS: [&str; 12] = [
    "api",
    "edge",
    "gateway",
    "public",
    "partner",
    "inference",
    "billing",
    "search",
    "ingest",
    "mobile",
    "checkout",
    "graph",
];
const KEYS: [&str; 10] = [
    "tenant",
    "customer",
    "org",
    "account",
    "client_id",
    "project",
    "app",
    "workspace",
    "api_key",
    "team",
];
const ONSETS: [&str; 16] = [
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "tr",
];
const VOWELS: [&str; 6] = ["a", "e", "i", "o", "u", "ai"];

/// A pronounceable made-up name, maybe with a number: no two worlds share
/// their tenants' names, and no runbook can know them.
fn made_up_name(rng: &mut Rng) -> String {
    let syllables = rng.range(2, 3);
    let mut name = String::new();
    for _ in 0..syllables {
        let onset: &&str = rng.pick(&ONSETS);
        name.push_str(onset);
        let vowel: &&str = rng.pick(&VOWELS);
        name.push_str(vowel);
    }
    if rng.chance(0.3) {
        let _ = write!(name, "-{}", rng.range(2, 99));
    }
    name
}

/// A limit's name in one of the styles configs use.
fn limit_name(rng: &mut Rng, key: &str, unit: Unit, taken: &[String]) -> String {
    for _ in 0..16 {
        let name = match rng.range(0, 4) {
            0 => format!("{key}_per_{}", unit.name()),
            1 => format!("{}_{}", made_up_name(rng).replace('-', "_"), unit.name()),
            2 => format!("q{}_{}", rng.range(1, 999), &unit.name()[..3]),
            3 => format!(
                "{}-{}ly",
                made_up_name(rng),
                unit.name().trim_end_matches('y')
            ),
            _ => format!("{key}-{}-{}", unit.name(), rng.range(1, 99)),
        };
        if !taken.contains(&name) {
            return name;
        }
    }
    format!("limit_{}_{}", unit.name(), taken.len())
}

// ---------------------------------------------------------------------------
// demand

/// The highest diurnal factor over `[start, start + duration]` (epoch ms of
/// the time of day), sampled every ten minutes.
fn peak_diurnal(amplitude: f64, start_ms: u64, duration_ms: u64) -> f64 {
    (0..=duration_ms / (10 * MINUTE_MS))
        .map(|step| diurnal(amplitude, start_ms + step * 10 * MINUTE_MS))
        .fold(0.0, f64::max)
}

/// The mean diurnal factor over the span.
fn mean_diurnal(amplitude: f64, start_ms: u64, duration_ms: u64) -> f64 {
    let steps = duration_ms / (10 * MINUTE_MS) + 1;
    (0..steps)
        .map(|step| diurnal(amplitude, start_ms + step * 10 * MINUTE_MS))
        .sum::<f64>()
        / steps as f64
}

/// The most a window of `unit` sees from a sender at `per_minute` (mean)
/// with margin for arrival noise: Poisson-like counts stay under
/// mean + 4.5·√mean + 3 over many windows.
fn window_peak(per_minute: f64, unit: Unit) -> f64 {
    let mean = per_minute * unit.minutes();
    match unit {
        Unit::Second | Unit::Minute => mean + 4.5 * mean.sqrt() + 3.0,
        Unit::Hour | Unit::Day => mean * 1.15 + 10.0,
    }
}

impl Tenant {
    /// Its peak rate (per minute) over a span with this diurnal peak.
    fn peak_per_minute(&self, peak_diurnal: f64) -> f64 {
        let burst = self.burst.as_ref().map_or(1.0, |b| b.factor);
        self.per_minute as f64 * peak_diurnal * burst
    }
}

impl Draft {
    /// The node whose limits apply to `tenant` (its override, or the key's).
    fn node_of(&self, tenant: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.value.as_deref() == Some(tenant))
            .unwrap_or(0)
    }

    fn peak_diurnal(&self) -> f64 {
        peak_diurnal(self.amplitude, self.start_ms, self.duration_ms.max(HOUR_MS))
    }

    /// The checks a minute every tenant together is admitted at the peak,
    /// before any fault.
    fn peak_load(&self) -> f64 {
        let peak = self.peak_diurnal();
        self.tenants.iter().map(|t| t.peak_per_minute(peak)).sum()
    }

    /// A quota for `unit` that admits `per_minute` at its peak, with
    /// `headroom`.
    fn quota_for(
        &self,
        per_minute_peak: f64,
        per_minute_mean: f64,
        unit: Unit,
        headroom: f64,
    ) -> u64 {
        let need = match unit {
            Unit::Second | Unit::Minute => window_peak(per_minute_peak, unit),
            Unit::Hour => window_peak(per_minute_peak, unit),
            // A day quota admits a whole day of the tenant's usual demand.
            Unit::Day => window_peak(per_minute_mean, Unit::Day)
                .max(window_peak(per_minute_peak, Unit::Hour) * 4.0),
        };
        (need * headroom).ceil().max(1.0) as u64
    }

    /// Sizes every quota of node `index` for the tenants it applies to.
    fn size_node(&mut self, index: usize, rng: &mut Rng) {
        let peak = self.peak_diurnal();
        let mean = mean_diurnal(self.amplitude, 0, DAY_MS);
        let users: Vec<Tenant> = self
            .tenants
            .iter()
            .filter(|t| self.node_of(&t.name) == index)
            .cloned()
            .collect();
        let biggest_peak = users
            .iter()
            .map(|t| t.peak_per_minute(peak))
            .fold(1.0, f64::max);
        let biggest_mean = users
            .iter()
            .map(|t| t.per_minute as f64 * mean)
            .fold(1.0, f64::max);
        for limit_index in 0..self.nodes[index].limits.len() {
            let unit = self.nodes[index].limits[limit_index].unit;
            let headroom = rng.uniform(1.5, 4.0);
            self.nodes[index].limits[limit_index].quota =
                self.quota_for(biggest_peak, biggest_mean, unit, headroom);
        }
    }

    /// Keys one check of a new descriptor value creates (one a limit of
    /// the key's node).
    fn keys_per_value(&self) -> u64 {
        self.nodes[0].limits.len().max(1) as u64
    }

    fn tenant_index(&self, name: &str) -> usize {
        self.tenants
            .iter()
            .position(|t| t.name == name)
            .unwrap_or(0)
    }

    fn good_tenants(&self) -> Vec<usize> {
        (0..self.tenants.len())
            .filter(|i| self.tenants[*i].contract != Contract::Abusive)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// the world

fn needs(family: &str, rng: &mut Rng) -> Needs {
    match family {
        "backend" | "hot_key" => Needs {
            remote: true,
            ..Needs::default()
        },
        "key_pressure" => Needs {
            memory: true,
            ..Needs::default()
        },
        "abusive_surge" => Needs {
            abuser: rng.chance(0.6),
            ..Needs::default()
        },
        "reflection" => Needs {
            remote: rng.chance(0.34),
            ..Needs::default()
        },
        _ => Needs::default(),
    }
}

fn draw_world(rng: &mut Rng, needs: Needs) -> Draft {
    let domain = rng.pick(&DOMAINS).to_string();
    let key = rng.pick(&KEYS).to_string();
    let count = rng.range(3, 6) as usize;
    let mut tenants: Vec<Tenant> = Vec::new();
    while tenants.len() < count {
        let name = made_up_name(rng);
        if tenants.iter().any(|t| t.name == name) {
            continue;
        }
        let abusive = (needs.abuser && !tenants.iter().any(|t| t.contract == Contract::Abusive))
            || (tenants.len() > 1 && rng.chance(0.1));
        let (contract, per_minute, burst) = if abusive {
            (Contract::Abusive, rng.range(2, 10), None)
        } else if rng.chance(0.25) {
            (
                Contract::Bursty,
                rng.log_uniform(6.0, 90.0).round() as u64,
                Some(Burst {
                    every_min: rng.range(15, 60),
                    for_min: rng.range(1, 3),
                    factor: (rng.uniform(1.5, 3.0) * 10.0).round() / 10.0,
                }),
            )
        } else {
            (
                Contract::WellBehaved,
                rng.log_uniform(6.0, 150.0).round() as u64,
                None,
            )
        };
        tenants.push(Tenant {
            name,
            contract,
            per_minute,
            burst,
        });
    }
    // At least two good tenants.
    for tenant in tenants.iter_mut().take(2) {
        if tenant.contract == Contract::Abusive && !needs.abuser {
            tenant.contract = Contract::WellBehaved;
            tenant.per_minute = rng.log_uniform(6.0, 150.0).round() as u64;
        }
    }
    if needs.abuser && !tenants.iter().any(|t| t.contract == Contract::Abusive) {
        let last = tenants.len() - 1;
        tenants[last].contract = Contract::Abusive;
        tenants[last].per_minute = rng.range(2, 10);
        tenants[last].burst = None;
    }
    let remote = needs.remote || (!needs.memory && rng.chance(0.25));
    let backend = if remote {
        Backend::Remote {
            policy: "fail_closed",
            key_ops: 0,
            capacity: 100_000,
        }
    } else {
        Backend::Memory {
            capacity: rng.range(20, 200) * 500,
        }
    };
    let mut units: Vec<Unit> = Vec::new();
    // A short window guard most configs have, and a longer quota.
    units.push(if rng.chance(0.7) {
        Unit::Second
    } else {
        Unit::Minute
    });
    if rng.chance(0.75) {
        let long = *rng.pick(&[Unit::Minute, Unit::Hour, Unit::Hour, Unit::Day, Unit::Day]);
        if !units.contains(&long) {
            units.push(long);
        }
    }
    if rng.chance(0.2) {
        let extra = *rng.pick(&Unit::ALL);
        if !units.contains(&extra) {
            units.push(extra);
        }
    }
    let mut taken = Vec::new();
    let mut limits = Vec::new();
    for unit in units {
        let name = limit_name(rng, &key, unit, &taken);
        taken.push(name.clone());
        limits.push(Limit {
            name,
            unit,
            quota: 0,
        });
    }
    let mut draft = Draft {
        name: String::new(),
        seed: rng.range(1, 1_000_000),
        family: String::new(),
        description: Vec::new(),
        domain,
        key,
        tenants,
        amplitude: (rng.uniform(0.0, 0.5) * 100.0).round() / 100.0,
        start_ms: rng.range(0, 143) * 10 * MINUTE_MS,
        instances: *rng.pick(&[2, 3, 3, 3, 4]),
        backend,
        nodes: vec![Node {
            value: None,
            limits,
        }],
        freeze: None,
        human_approves: rng.chance(0.85),
        faults: Vec::new(),
        notices: Vec::new(),
        duration_ms: 4 * HOUR_MS,
        outcome: "quiet",
        hold_ms: 20 * MINUTE_MS,
        max_load: None,
        help: false,
        unfinished: Vec::new(),
    };
    // Big tenants get an override node of their own (an enterprise plan):
    // its limits replace the key's for that tenant.
    let overrides = rng.range(0, 2) as usize;
    let mut by_size: Vec<usize> = draft.good_tenants();
    by_size.sort_by_key(|i| std::cmp::Reverse(draft.tenants[*i].per_minute));
    for index in by_size.into_iter().take(overrides) {
        let value = draft.tenants[index].name.clone();
        let mut limits = draft.nodes[0].limits.clone();
        let mut taken: Vec<String> = draft
            .nodes
            .iter()
            .flat_map(|n| n.limits.iter().map(|l| l.name.clone()))
            .collect();
        for limit in &mut limits {
            limit.name = limit_name(rng, &draft.key, limit.unit, &taken);
            taken.push(limit.name.clone());
        }
        draft.nodes.push(Node {
            value: Some(value),
            limits,
        });
    }
    for index in 0..draft.nodes.len() {
        draft.size_node(index, rng);
    }
    draft
}

/// Re-sizes every node after the run's hours or tenants changed.
fn resize(draft: &mut Draft, rng: &mut Rng) {
    for index in 0..draft.nodes.len() {
        draft.size_node(index, rng);
    }
}

/// A warm-up before the first fault (the anomaly detector learns the
/// usual band; burn-rate windows fill).
fn warmup(rng: &mut Rng) -> u64 {
    rng.range(3, 9) * 10 * MINUTE_MS
}

/// The minutes over which a pushed limit of `unit` must reject someone for
/// the push to take effect: one window, and for a day's quota the first
/// hour after the push (its counters may start afresh; the run must see
/// the harm while there is time to act on it).
fn effect_minutes(unit: Unit) -> f64 {
    match unit {
        Unit::Day => 60.0,
        unit => unit.minutes(),
    }
}

/// Sets the run's length: `effect_ms` after the start for the fault to
/// take effect, then `after_ms` to detect, mitigate, verify and hold;
/// capped at 12 hours.
fn finish(draft: &mut Draft, effect_ms: u64, after_ms: u64) {
    draft.duration_ms = (effect_ms + after_ms).clamp(HOUR_MS, 12 * HOUR_MS);
}

/// Maybe a freeze window over part of the incident (changes must wait).
fn maybe_freeze(draft: &mut Draft, rng: &mut Rng, at_ms: u64) {
    if rng.chance(0.1) {
        let from = at_ms + rng.range(1, 3) * 5 * MINUTE_MS;
        let until = from + rng.range(2, 4) * 10 * MINUTE_MS;
        draft.freeze = Some((from, until));
        draft
            .description
            .push("A change freeze covers part of the incident.".into());
    }
}

// ---------------------------------------------------------------------------
// families

/// A good tenant's legitimate demand grows past one of its limits (any
/// unit), ×1.3–×5 the limit (mitigable) or ×12–×30 (a human decides), with
/// a ramp of 0–90 minutes. `mitigable`: forced (two at once), else drawn
/// (70% mitigable).
fn outgrown_quota(draft: &mut Draft, rng: &mut Rng, mitigable: Option<bool>) -> Option<()> {
    let good = draft.good_tenants();
    let tenant = *rng.pick(&good);
    let name = draft.tenants[tenant].name.clone();
    let node = draft.node_of(&name);
    let limit_index = rng.range(0, draft.nodes[node].limits.len() as u64 - 1) as usize;
    let limit = draft.nodes[node].limits[limit_index].clone();
    let mitigable = mitigable.unwrap_or_else(|| rng.chance(0.7));
    let factor = if mitigable {
        rng.uniform(1.3, MITIGABLE_FACTOR)
    } else {
        rng.uniform(UNMITIGABLE_FACTOR, 30.0)
    };
    let at = warmup(rng);
    let ramp = if rng.chance(0.2) {
        0
    } else {
        rng.range(1, 9) * 10 * MINUTE_MS
    };
    let tenant_ref = &draft.tenants[tenant];
    let before = tenant_ref.per_minute as f64;
    // The new demand (per minute, at the diurnal mean) so that a window of
    // the limit's unit sees `factor` × its quota.
    let mut after_ms = 3 * HOUR_MS;
    let new_per_minute = match limit.unit {
        Unit::Day => {
            // The day quota runs out within the run: the new demand over the
            // rest of the day is `factor` × the quota.
            let midnight = DAY_MS - (draft.start_ms + at) % DAY_MS;
            let minutes_left = midnight as f64 / MINUTE_MS as f64;
            let per_minute = factor * limit.quota as f64 / minutes_left;
            // It must run out, and leave time to act, before midnight
            // resets the window.
            let exhausted_min = limit.quota as f64 / per_minute + ramp as f64 / MINUTE_MS as f64;
            let end = at as f64 / MINUTE_MS as f64 + exhausted_min + 150.0;
            if end > (at + midnight) as f64 / MINUTE_MS as f64 - 10.0 || exhausted_min > 8.0 * 60.0
            {
                return None;
            }
            after_ms = (exhausted_min * MINUTE_MS as f64) as u64 + 150 * MINUTE_MS;
            after_ms = after_ms.min(midnight - 10 * MINUTE_MS);
            per_minute
        }
        unit => factor * limit.quota as f64 / unit.minutes() / 1.0,
    };
    let diurnal_now = diurnal(draft.amplitude, draft.start_ms + at);
    let new_per_minute = (new_per_minute / diurnal_now.max(0.3)).ceil();
    if new_per_minute > MAX_TENANT_PER_MINUTE || new_per_minute < before * 1.2 {
        return None;
    }
    // Every limit of the tenant's node must agree with the class: the
    // one outgrown the most decides, and none may fall between the bands.
    // A limit is outgrown by what its windows will see, measured as the
    // quotas were sized: the diurnal peak over the rest of the run, the
    // tenant's bursts (a burst spans a window of a second or a minute, a
    // share of an hour's), and arrival noise (`window_peak`); a day's
    // quota by the demand over the rest of the day.
    let midnight_min = (DAY_MS - (draft.start_ms + at) % DAY_MS) as f64 / MINUTE_MS as f64;
    let diurnal_peak =
        peak_diurnal(draft.amplitude, draft.start_ms + at, ramp + after_ms).max(diurnal_now);
    let burst = tenant_ref.burst.clone();
    let outgrown = |l: &Limit| -> f64 {
        let quota = l.quota.max(1) as f64;
        let burst_share = |window_min: f64| {
            burst.as_ref().map_or(1.0, |b| {
                let share = (b.for_min as f64 / window_min).min(1.0);
                1.0 + (b.factor - 1.0) * share
            })
        };
        match l.unit {
            Unit::Day => new_per_minute * diurnal_now * midnight_min / quota,
            unit => {
                let rate = new_per_minute * diurnal_peak * burst_share(unit.minutes());
                window_peak(rate, unit) / quota
            }
        }
    };
    let worst = draft.nodes[node]
        .limits
        .iter()
        .map(outgrown)
        .fold(0.0, f64::max);
    let fits = if mitigable {
        worst <= MITIGABLE_FACTOR
    } else {
        worst >= UNMITIGABLE_FACTOR
    };
    let between = draft.nodes[node].limits.iter().any(|l| {
        let f = outgrown(l);
        f > MITIGABLE_FACTOR && f < UNMITIGABLE_FACTOR
    });
    if !fits || between {
        return None;
    }
    let mut fields = vec![
        ("kind", "growth".to_owned()),
        ("tenant", name.clone()),
        ("per_minute", format!("{new_per_minute}")),
    ];
    if ramp > 0 {
        fields.push(("ramp", duration(ramp)));
    }
    draft.faults.push(FaultDraft { at_ms: at, fields });
    draft.description.push(format!(
        "{name}'s legitimate demand grows from {before} to {new_per_minute} checks a minute{}, {factor:.1}x its {} limit {} ({} a {}) on average (its most outgrown limit sees {worst:.1}x at the peaks).",
        if ramp > 0 { format!(" over {}", duration(ramp)) } else { " at once".into() },
        limit.unit.name(),
        limit.name,
        limit.quota,
        limit.unit.name(),
    ));
    if draft.faults.len() == 1 {
        finish(draft, at + ramp, after_ms);
        maybe_freeze(draft, rng, at);
        draft.outcome = if mitigable { "mitigate" } else { "escalate" };
        if !mitigable {
            draft.description.push(format!(
                "Past {UNMITIGABLE_FACTOR}x a limit is beyond what an agent may raise: a human decides."
            ));
        }
    }
    Some(())
}

/// A tenant (an abusive one, or a good one turning abusive) surges past
/// what the protected service is planned for (1.3–2× its peak load), for
/// 40 minutes to 3 hours or for good, backing off when rejected or not.
fn abusive_surge(draft: &mut Draft, rng: &mut Rng) -> Option<()> {
    let abuser = match draft
        .tenants
        .iter()
        .position(|t| t.contract == Contract::Abusive)
    {
        Some(index) if rng.chance(0.7) => index,
        _ => *rng.pick(&draft.good_tenants()),
    };
    let name = draft.tenants[abuser].name.clone();
    let at = warmup(rng);
    let for_ms = if rng.chance(0.4) {
        None
    } else {
        Some(rng.range(4, 18) * 10 * MINUTE_MS)
    };
    finish(
        draft,
        at,
        for_ms.unwrap_or(3 * HOUR_MS).max(2 * HOUR_MS) + HOUR_MS,
    );
    let peak = draft.peak_load();
    let plan = (peak * rng.uniform(1.3, 2.0)).ceil();
    // What the abuser's own limits admit at most, per minute.
    let node = draft.node_of(&name);
    let admits = draft.nodes[node]
        .limits
        .iter()
        .map(|l| l.quota as f64 / l.unit.minutes())
        .fold(f64::INFINITY, f64::min);
    let others = peak - draft.tenants[abuser].peak_per_minute(draft.peak_diurnal());
    let needed = plan - others;
    // The abuser's admitted checks alone must break the plan by a margin:
    // its limits must let that much through (or the config already holds
    // it, and nothing needs mitigating).
    if needed <= 0.0 || admits < needed * 1.3 {
        return None;
    }
    let rate = (needed * rng.uniform(1.5, 4.0)).ceil();
    if rate > MAX_TENANT_PER_MINUTE {
        return None;
    }
    let backs_off = rng.chance(0.5);
    let mut fields = vec![
        ("kind", "surge".to_owned()),
        ("tenant", name.clone()),
        ("per_minute", format!("{rate}")),
    ];
    if let Some(for_ms) = for_ms {
        fields.push(("for", duration(for_ms)));
    }
    fields.push(("backs_off", backs_off.to_string()));
    draft.faults.push(FaultDraft { at_ms: at, fields });
    draft.max_load = Some(plan as u64);
    draft.description.push(format!(
        "{name} surges to {rate} checks a minute{} ({}), past the {plan} a minute the service is planned for.",
        for_ms.map_or(" for good".into(), |ms| format!(" for {}", duration(ms))),
        if backs_off { "backing off when rejected" } else { "ignoring rejections" },
    ));
    draft.outcome = "mitigate";
    maybe_freeze(draft, rng, at);
    Some(())
}

/// The limits a config change leaves, as file text.
fn render_limits(domain: &str, key: &str, nodes: &[Node]) -> String {
    let mut out = format!("domain: {domain}\ndescriptors:\n");
    for node in nodes {
        let _ = writeln!(out, "  - key: {key}");
        if let Some(value) = &node.value {
            let _ = writeln!(out, "    value: {value}");
        }
        if node.limits.is_empty() {
            let _ = writeln!(out, "    rate_limit: {{unlimited: true}}");
            continue;
        }
        out.push_str("    rate_limits:\n");
        for limit in &node.limits {
            let _ = writeln!(
                out,
                "      - {{name: {}, unit: {}, requests_per_unit: {}}}",
                limit.name,
                limit.unit.name(),
                limit.quota
            );
        }
    }
    out
}

/// A config push that hurts: a limit made much tighter for every tenant,
/// one good tenant blocked by an override of its own, a tenant's override
/// removed (it falls back to the key's smaller limits), or an abusive
/// tenant's override loosened while it hammers. Pushed once, by a human
/// (who files a ticket, or not) or a deploy controller.
fn bad_config(draft: &mut Draft, rng: &mut Rng) -> Option<()> {
    draft.human_approves = true;
    let at = warmup(rng);
    let variant = rng.range(0, 3);
    let mut nodes = draft.nodes.clone();
    let what = match variant {
        0 => {
            // Tighter for every tenant of the key's node.
            let index = rng.range(0, nodes[0].limits.len() as u64 - 1) as usize;
            let users: Vec<usize> = draft
                .good_tenants()
                .into_iter()
                .filter(|t| draft.node_of(&draft.tenants[*t].name) == 0)
                .collect();
            if users.is_empty() {
                return None;
            }
            let limit = &mut nodes[0].limits[index];
            let divisor = rng.log_uniform(5.0, 1000.0);
            let old = limit.quota;
            limit.quota = (old as f64 / divisor).floor() as u64;
            // Someone must now be rejected: the smallest user's mean
            // demand over one window (a day's: its first hour) passes the
            // new quota.
            let smallest = users
                .iter()
                .map(|t| draft.tenants[*t].per_minute as f64 * 0.5 * effect_minutes(limit.unit))
                .fold(f64::INFINITY, f64::min);
            if smallest < (limit.quota as f64 + 1.0) * 1.5 {
                return None;
            }
            format!(
                "{} cut from {old} to {} a {}",
                limit.name,
                limit.quota,
                limit.unit.name()
            )
        }
        1 => {
            // One good tenant blocked by an override of its own.
            let good = draft.good_tenants();
            let victim = draft.tenants[*rng.pick(&good)].name.clone();
            nodes.retain(|n| n.value.as_deref() != Some(victim.as_str()));
            let taken: Vec<String> = nodes
                .iter()
                .flat_map(|n| n.limits.iter().map(|l| l.name.clone()))
                .collect();
            let unit = *rng.pick(&[Unit::Second, Unit::Minute]);
            nodes.push(Node {
                value: Some(victim.clone()),
                limits: vec![Limit {
                    name: limit_name(rng, &draft.key, unit, &taken),
                    unit,
                    quota: 0,
                }],
            });
            format!("a new override blocks {victim}")
        }
        _ => {
            // A tenant's override removed: back to the key's limits.
            let position = nodes.iter().position(|n| n.value.is_some())?;
            let value = nodes[position].value.clone().unwrap_or_default();
            let tenant = &draft.tenants[draft.tenant_index(&value)];
            let peak = tenant.peak_per_minute(draft.peak_diurnal());
            let key_admits = nodes[0]
                .limits
                .iter()
                .map(|l| l.quota as f64 / effect_minutes(l.unit))
                .fold(f64::INFINITY, f64::min);
            if peak * 0.6 < key_admits * 1.5 {
                return None;
            }
            nodes.remove(position);
            format!("{value}'s override removed (the key's smaller limits now apply to it)")
        }
    };
    let limits = render_limits(&draft.domain, &draft.key, &nodes);
    let by_controller = rng.chance(0.3);
    let ticket = !by_controller || rng.chance(0.5);
    draft.faults.push(FaultDraft {
        at_ms: at,
        fields: vec![
            ("kind", "bad_config".into()),
            (
                "by",
                if by_controller { "controller" } else { "human" }.into(),
            ),
            ("ticket", ticket.to_string()),
            ("limits", limits),
        ],
    });
    draft.description.push(format!(
        "A config push by {}: {what}{}.",
        if by_controller {
            "a deploy controller"
        } else {
            "a human"
        },
        if ticket {
            "; a human files a ticket"
        } else {
            ""
        },
    ));
    finish(draft, at, 3 * HOUR_MS);
    draft.outcome = "mitigate";
    Some(())
}

/// The remote counter backend fails for 20 minutes to 2 hours: it refuses
/// connections, or every command takes 60–500 ms (past the 50 ms command
/// timeout). The service starts fail_closed, so every check is rejected.
fn backend(draft: &mut Draft, rng: &mut Rng) -> Option<()> {
    let at = warmup(rng);
    let for_ms = rng.range(2, 12) * 10 * MINUTE_MS;
    let fields = if rng.chance(0.5) {
        vec![("kind", "backend_outage".into()), ("for", duration(for_ms))]
    } else {
        let latency = rng.range(60, 500);
        vec![
            ("kind", "backend_latency".into()),
            ("latency", format!("{latency}ms")),
            ("for", duration(for_ms)),
        ]
    };
    draft.description.push(format!(
        "The counter backend {} for {}; the service rejects every check while it fails (fail_closed).",
        if fields[0].1 == "backend_outage" {
            "refuses connections".to_owned()
        } else {
            format!("takes {} a command", fields[1].1)
        },
        duration(for_ms)
    ));
    draft.faults.push(FaultDraft { at_ms: at, fields });
    finish(draft, at, for_ms + 2 * HOUR_MS);
    draft.outcome = "mitigate";
    maybe_freeze(draft, rng, at);
    Some(())
}

/// A runaway client hammers one key of its own 1.5–4× past what the
/// backend takes on one key in a tick (30–120 commands), for 30 minutes to
/// 2 hours or for good; its commands time out and degrade the backend for
/// everyone.
fn hot_key(draft: &mut Draft, rng: &mut Rng) -> Option<()> {
    let key_ops = rng.range(30, 120);
    if let Backend::Remote { capacity, .. } = draft.backend {
        draft.backend = Backend::Remote {
            policy: "fail_closed",
            key_ops,
            capacity,
        };
    }
    // Every good tenant stays under the bound itself.
    let peak = draft.peak_diurnal();
    if draft
        .tenants
        .iter()
        .any(|t| t.peak_per_minute(peak) / 6.0 * 1.5 > key_ops as f64)
    {
        return None;
    }
    let at = warmup(rng);
    let rate = (key_ops as f64 * 6.0 * rng.uniform(1.5, 4.0)).ceil();
    let for_ms = if rng.chance(0.3) {
        None
    } else {
        Some(rng.range(3, 12) * 10 * MINUTE_MS)
    };
    let key = loop {
        let key = made_up_name(rng);
        if !draft.tenants.iter().any(|t| t.name == key) {
            break key;
        }
    };
    let mut fields = vec![
        ("kind", "hot_key".to_owned()),
        ("key", key.clone()),
        ("per_minute", format!("{rate}")),
    ];
    if let Some(for_ms) = for_ms {
        fields.push(("for", duration(for_ms)));
    } else {
        draft.unfinished.push((
            "invariant:store_healthy.*".into(),
            "the hot key never stops: the backend stays degraded to the end of the run".into(),
        ));
    }
    draft.faults.push(FaultDraft { at_ms: at, fields });
    draft.description.push(format!(
        "A runaway client hammers key {key} at {rate} checks a minute{}; the backend takes {key_ops} commands a key a tick.",
        for_ms.map_or(" for good".into(), |ms| format!(" for {}", duration(ms))),
    ));
    finish(draft, at, for_ms.unwrap_or(2 * HOUR_MS) + 2 * HOUR_MS);
    draft.outcome = "mitigate";
    Some(())
}

/// The memory store runs out of room: a flood of unique keys (a minute or
/// a few) past its capacity, or slow growth (new long-lived keys every
/// tick, for good) that fills it in 30–90 minutes.
fn key_pressure(draft: &mut Draft, rng: &mut Rng) -> Option<()> {
    let at = warmup(rng);
    let instances = u64::from(draft.instances);
    let per_value = draft.keys_per_value();
    let usual = draft.tenants.len() as u64 * per_value * 2;
    if rng.chance(0.5) {
        let for_min = rng.range(1, 4);
        let per_tick = rng.range(20, 200);
        let keys = per_tick * for_min * 6 * per_value / instances;
        // The flood fills each instance's store past its capacity.
        let capacity = ((keys as f64) / rng.uniform(1.1, 2.0)).ceil() as u64 + usual;
        draft.backend = Backend::Memory {
            capacity: capacity.max(100),
        };
        draft.faults.push(FaultDraft {
            at_ms: at,
            fields: vec![
                ("kind", "key_flood".into()),
                ("keys_per_tick", per_tick.to_string()),
                ("for", format!("{for_min}m")),
            ],
        });
        draft.description.push(format!(
            "A flood of {per_tick} new keys a tick for {for_min}m fills counter stores of {} keys.",
            capacity.max(100)
        ));
        finish(draft, at, 3 * HOUR_MS);
    } else {
        let per_tick = rng.range(1, 4);
        let fill_min = rng.range(30, 90);
        let keys = per_tick * fill_min * 6 * per_value / instances;
        let capacity = ((keys + usual) as f64 / 0.85).ceil() as u64;
        draft.backend = Backend::Memory {
            capacity: capacity.max(100),
        };
        draft.faults.push(FaultDraft {
            at_ms: at,
            fields: vec![
                ("kind", "key_growth".into()),
                ("keys_per_tick", per_tick.to_string()),
            ],
        });
        draft.description.push(format!(
            "Slow growth: {per_tick} new long-lived keys a tick, for good, fill counter stores of {} keys in about {fill_min} minutes.",
            capacity.max(100)
        ));
        finish(draft, at + fill_min * MINUTE_MS, 3 * HOUR_MS);
    }
    draft.outcome = "mitigate";
    Some(())
}

/// Two incidents at once: two of the mitigable families (outgrown quota,
/// abusive surge, backend, key pressure), 0–20 minutes apart.
fn two_at_once(draft: &mut Draft, rng: &mut Rng) -> Option<()> {
    let pairs: [(&str, &str); 5] = [
        ("outgrown_quota", "abusive_surge"),
        ("outgrown_quota", "backend"),
        ("abusive_surge", "backend"),
        ("outgrown_quota", "key_pressure"),
        ("abusive_surge", "key_pressure"),
    ];
    let (first, second) = *rng.pick(&pairs);
    let plant = |family: &str, draft: &mut Draft, rng: &mut Rng| -> Option<()> {
        match family {
            "outgrown_quota" => outgrown_quota(draft, rng, Some(true)),
            "abusive_surge" => abusive_surge(draft, rng),
            "backend" => {
                draft.backend = Backend::Remote {
                    policy: "fail_closed",
                    key_ops: 0,
                    capacity: 100_000,
                };
                backend(draft, rng)
            }
            _ => key_pressure(draft, rng),
        }
    };
    if (first == "key_pressure" || second == "key_pressure")
        && matches!(draft.backend, Backend::Remote { .. })
    {
        return None;
    }
    plant(first, draft, rng)?;
    let first_duration = draft.duration_ms;
    let first_at = draft.faults[0].at_ms;
    plant(second, draft, rng)?;
    // The second starts 0–20 minutes after the first.
    let offset = rng.range(0, 4) * 5 * MINUTE_MS;
    let last = draft.faults.len() - 1;
    let shift = (first_at + offset) as i64 - draft.faults[last].at_ms as i64;
    draft.faults[last].at_ms = (draft.faults[last].at_ms as i64 + shift).max(0) as u64;
    draft.duration_ms = first_duration.max(draft.duration_ms).min(12 * HOUR_MS);
    if draft.faults.iter().any(|f| f.fields[0].1 == "growth") && draft.max_load.is_some() {
        // The grown tenant's legitimate load must fit the plan once it is
        // admitted again.
        let grown: f64 = draft
            .faults
            .iter()
            .filter(|f| f.fields[0].1 == "growth")
            .filter_map(|f| f.fields.iter().find(|(k, _)| *k == "per_minute"))
            .filter_map(|(_, v)| v.parse::<f64>().ok())
            .sum();
        let plan = draft.max_load.unwrap_or(0) as f64;
        if grown * draft.peak_diurnal() + draft.peak_load() > plan {
            return None;
        }
    }
    draft.outcome = "mitigate";
    draft.freeze = None;
    Some(())
}

/// The traps, whose honest end is reflection asking a human: a bad push a
/// deploy job repeats every 30–90 minutes (the fix does not stick), a
/// controller that re-pushes it 2–10 minutes after each rollback (the fix
/// provokes its undoing), or a backend that flaps (down 2–8 minutes every
/// 12–30 minutes, for good).
fn reflection(draft: &mut Draft, rng: &mut Rng) -> Option<()> {
    draft.human_approves = true;
    let at = warmup(rng);
    let variant = if matches!(draft.backend, Backend::Remote { .. }) {
        2
    } else {
        rng.range(0, 1)
    };
    if variant == 2 {
        let down = rng.range(2, 8);
        let every = rng.range(12, 30).max(down * 3);
        draft.faults.push(FaultDraft {
            at_ms: at,
            fields: vec![
                ("every", format!("{every}m")),
                ("kind", "backend_outage".into()),
                ("for", format!("{down}m")),
            ],
        });
        draft.description.push(format!(
            "The counter backend flaps: down {down} minutes every {every} minutes, for good (fail_closed)."
        ));
        finish(draft, at, (every * 6).max(180) * MINUTE_MS);
    } else {
        // A block of one good tenant, pushed again and again.
        let good = draft.good_tenants();
        let victim = draft.tenants[*rng.pick(&good)].name.clone();
        let mut nodes = draft.nodes.clone();
        nodes.retain(|n| n.value.as_deref() != Some(victim.as_str()));
        let taken: Vec<String> = nodes
            .iter()
            .flat_map(|n| n.limits.iter().map(|l| l.name.clone()))
            .collect();
        nodes.push(Node {
            value: Some(victim.clone()),
            limits: vec![Limit {
                name: limit_name(rng, &draft.key, Unit::Second, &taken),
                unit: Unit::Second,
                quota: 0,
            }],
        });
        let limits = render_limits(&draft.domain, &draft.key, &nodes);
        let ticket = rng.chance(0.7);
        if variant == 0 {
            let every = rng.range(3, 9) * 10;
            draft.faults.push(FaultDraft {
                at_ms: at,
                fields: vec![
                    ("every", format!("{every}m")),
                    ("kind", "bad_config".into()),
                    ("by", "controller".into()),
                    ("ticket", ticket.to_string()),
                    ("limits", limits),
                ],
            });
            draft.description.push(format!(
                "A deploy job pushes a config that blocks {victim} every {every} minutes: each rollback works until the next push."
            ));
            finish(draft, at, (every * 4).max(180) * MINUTE_MS);
        } else {
            let after = rng.range(2, 10);
            draft.faults.push(FaultDraft {
                at_ms: at,
                fields: vec![
                    ("kind", "bad_config".into()),
                    ("by", "controller".into()),
                    ("ticket", ticket.to_string()),
                    ("reconcile_after", format!("{after}m")),
                    ("limits", limits),
                ],
            });
            draft.description.push(format!(
                "A deploy controller holds a config that blocks {victim} and re-pushes it {after} minutes after any rollback."
            ));
            finish(draft, at, 3 * HOUR_MS);
        }
    }
    draft.outcome = "escalate";
    draft.help = true;
    Some(())
}

/// No incident: a quiet night, bursty tenants within their contracts, a
/// planned launch announced in advance (a tenant's traffic ×3–×10 within
/// its limits), a diurnal peak, or a backend slower than usual but within
/// its command timeout. Anything filed is a false alarm.
fn control(draft: &mut Draft, rng: &mut Rng) -> Option<()> {
    let variant = rng.range(0, 4);
    draft.hold_ms = 30 * MINUTE_MS;
    match variant {
        0 => {
            draft.start_ms = (rng.range(0, 5) * 60 + 22 * 60) % 1440 * MINUTE_MS;
            for tenant in &mut draft.tenants {
                tenant.per_minute = (tenant.per_minute / 3).max(1);
            }
            draft.duration_ms = rng.range(6, 10) * HOUR_MS;
            draft.description.push("A quiet night.".into());
        }
        1 => {
            for tenant in draft
                .tenants
                .iter_mut()
                .filter(|t| t.contract != Contract::Abusive)
            {
                if rng.chance(0.6) {
                    tenant.contract = Contract::Bursty;
                    tenant.burst = Some(Burst {
                        every_min: rng.range(10, 40),
                        for_min: rng.range(1, 4),
                        factor: (rng.uniform(2.0, 4.0) * 10.0).round() / 10.0,
                    });
                }
            }
            draft.duration_ms = rng.range(4, 8) * HOUR_MS;
            draft
                .description
                .push("Bursty tenants, every burst within their contracts.".into());
        }
        2 => {
            let good = draft.good_tenants();
            let tenant = *rng.pick(&good);
            let name = draft.tenants[tenant].name.clone();
            let factor = rng.uniform(3.0, 10.0);
            let at = warmup(rng) + rng.range(1, 6) * 10 * MINUTE_MS;
            let new = (draft.tenants[tenant].per_minute as f64 * factor).ceil();
            if new > MAX_TENANT_PER_MINUTE {
                return None;
            }
            draft.duration_ms = at + rng.range(3, 6) * HOUR_MS;
            // The launch's traffic fits the tenant's limits: size them for
            // it (the operator planned it).
            let before = draft.tenants[tenant].per_minute;
            draft.tenants[tenant].per_minute = new as u64;
            resize(draft, rng);
            draft.tenants[tenant].per_minute = before;
            let ramp = rng.range(0, 3) * 10 * MINUTE_MS;
            let mut fields = vec![
                ("kind", "growth".to_owned()),
                ("tenant", name.clone()),
                ("per_minute", format!("{new}")),
            ];
            if ramp > 0 {
                fields.push(("ramp", duration(ramp)));
            }
            draft.faults.push(FaultDraft { at_ms: at, fields });
            // Announced 10–50 minutes ahead, but no earlier than ten
            // minutes into the run (a notice starts after the run does).
            let lead = (rng.range(1, 6) * 10 * MINUTE_MS).min(at.saturating_sub(10 * MINUTE_MS));
            draft.notices.push(NoticeDraft {
                at_ms: at.saturating_sub(lead),
                for_ms: lead + ramp + rng.range(1, 3) * HOUR_MS,
                matchers: vec![
                    ("tenant", name.clone()),
                    ("metric", "floodgate_requests_total".into()),
                ],
                reason: format!(
                    "{name} launches: traffic about {factor:.0}x from {}",
                    clock(draft.start_ms + at)
                ),
                author: if rng.chance(0.5) {
                    "deploy:launch-pipeline".into()
                } else {
                    "human:product".into()
                },
                max_factor: Some((factor * 2.0).ceil()),
            });
            draft.description.push(format!(
                "A planned launch: {name}'s traffic grows {factor:.1}x within its limits, announced {} in advance.",
                duration(lead)
            ));
            return finish_control(draft);
        }
        3 => {
            draft.amplitude = (rng.uniform(0.4, 0.6) * 100.0).round() / 100.0;
            draft.start_ms = rng.range(8, 12) * HOUR_MS;
            draft.duration_ms = rng.range(6, 10) * HOUR_MS;
            draft
                .description
                .push("A day's peak: the diurnal swing at its widest, across 14:00.".into());
        }
        _ => {
            let capacity = 100_000;
            draft.backend = Backend::Remote {
                policy: "fail_closed",
                key_ops: 0,
                capacity,
            };
            let at = warmup(rng);
            let latency = rng.range(5, 40);
            let for_ms = rng.range(3, 12) * 10 * MINUTE_MS;
            draft.faults.push(FaultDraft {
                at_ms: at,
                fields: vec![
                    ("kind", "backend_latency".into()),
                    ("latency", format!("{latency}ms")),
                    ("for", duration(for_ms)),
                ],
            });
            draft.duration_ms = at + for_ms + 2 * HOUR_MS;
            draft.description.push(format!(
                "The counter backend is slower than usual ({latency} ms a command, within its 50 ms timeout) for {}: nothing is harmed.",
                duration(for_ms)
            ));
        }
    }
    resize(draft, rng);
    finish_control(draft)
}

fn finish_control(draft: &mut Draft) -> Option<()> {
    draft.outcome = "quiet";
    draft.max_load = None;
    draft.freeze = None;
    Some(())
}

// ---------------------------------------------------------------------------
// rendering

/// Milliseconds as the scenario format writes durations (`1h30m`, `40m`,
/// `0s`).
fn duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let (hours, minutes, seconds) = (
        ms / HOUR_MS,
        ms % HOUR_MS / MINUTE_MS,
        ms % MINUTE_MS / 1000,
    );
    let mut out = String::new();
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    if seconds > 0 {
        let _ = write!(out, "{seconds}s");
    }
    out
}

/// `HH:MM` of a time of day.
fn clock(ms: u64) -> String {
    let minutes = ms % DAY_MS / MINUTE_MS;
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// An RFC 3339 time on the lab's first day (the run starts on
/// 2026-01-01 at its time of day; times past midnight fall on the 2nd).
fn timestamp(ms: u64) -> String {
    let day = 1 + ms / DAY_MS;
    format!("2026-01-{day:02}T{}:00Z", clock(ms))
}

fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    text.lines().map(|line| format!("{pad}{line}\n")).collect()
}

impl Draft {
    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Generated by `floodgate scenarios generate` (family {}).",
            self.family
        );
        let _ = writeln!(out, "name: {}", self.name);
        let _ = writeln!(out, "family: {}", self.family);
        out.push_str("description: >\n");
        out.push_str(&indent(&self.description.join(" "), 2));
        let _ = writeln!(out, "suites: [generated]");
        let _ = writeln!(out, "duration: {}", duration(self.duration_ms));
        let _ = writeln!(out, "seed: {}", self.seed);
        let _ = writeln!(out, "start: \"{}\"", clock(self.start_ms));
        let _ = writeln!(out, "instances: {}", self.instances);
        match self.backend {
            Backend::Memory { capacity } => {
                let _ = writeln!(out, "store_capacity: {capacity}");
            }
            Backend::Remote {
                policy,
                key_ops,
                capacity,
            } => {
                let _ = writeln!(out, "store_capacity: {capacity}");
                let _ = write!(out, "backend: {{kind: remote, failure_policy: {policy}");
                if key_ops > 0 {
                    let _ = write!(out, ", key_ops_per_tick: {key_ops}");
                }
                out.push_str("}\n");
            }
        }
        if self.human_approves {
            out.push_str("human:\n  approve: true\n");
        }
        if let Some((from, until)) = self.freeze {
            out.push_str("policy: |\n  freeze_windows:\n    - name: generated-freeze\n");
            let _ = writeln!(out, "      from: {}", timestamp(self.start_ms + from));
            let _ = writeln!(out, "      until: {}", timestamp(self.start_ms + until));
        }
        out.push_str("limits: |\n");
        out.push_str(&indent(
            &render_limits(&self.domain, &self.key, &self.nodes),
            2,
        ));
        out.push_str("workload:\n");
        let _ = writeln!(out, "  domain: {}", self.domain);
        let _ = writeln!(out, "  key: {}", self.key);
        let _ = writeln!(out, "  diurnal_amplitude: {}", self.amplitude);
        out.push_str("  tenants:\n");
        for tenant in &self.tenants {
            let contract = match tenant.contract {
                Contract::WellBehaved => "well_behaved",
                Contract::Bursty => "bursty",
                Contract::Abusive => "abusive",
            };
            let _ = write!(
                out,
                "    - {{name: {}, contract: {contract}, per_minute: {}",
                tenant.name, tenant.per_minute
            );
            if let Some(burst) = &tenant.burst {
                let _ = write!(
                    out,
                    ", burst_every: {}m, burst_for: {}m, burst_factor: {}",
                    burst.every_min, burst.for_min, burst.factor
                );
            }
            out.push_str("}\n");
        }
        if !self.notices.is_empty() {
            out.push_str("notices:\n");
            for notice in &self.notices {
                let _ = writeln!(out, "  - at: {}", duration(notice.at_ms));
                let _ = writeln!(out, "    for: {}", duration(notice.for_ms));
                let _ = writeln!(out, "    author: \"{}\"", notice.author);
                let _ = writeln!(out, "    reason: \"{}\"", notice.reason.replace('"', "'"));
                if let Some(factor) = notice.max_factor {
                    let _ = writeln!(out, "    max_factor: {factor}");
                }
                out.push_str("    matchers:\n");
                for (name, value) in &notice.matchers {
                    let _ = writeln!(out, "      - {{name: {name}, value: {value}}}");
                }
            }
        }
        if !self.faults.is_empty() {
            out.push_str("faults:\n");
            for fault in &self.faults {
                let _ = writeln!(out, "  - at: {}", duration(fault.at_ms));
                for (name, value) in &fault.fields {
                    if value.contains('\n') {
                        let _ = writeln!(out, "    {name}: |");
                        out.push_str(&indent(value, 6));
                    } else {
                        let _ = writeln!(out, "    {name}: {value}");
                    }
                }
            }
        }
        out.push_str("expect:\n");
        let _ = writeln!(out, "  outcome: {}", self.outcome);
        let _ = writeln!(out, "  hold: {}", duration(self.hold_ms));
        if let Some(max) = self.max_load {
            let _ = writeln!(out, "  max_load_per_minute: {max}");
        }
        if self.help {
            out.push_str("  help: true\n");
        }
        if !self.unfinished.is_empty() {
            out.push_str("  unfinished:\n");
            for (pattern, why) in &self.unfinished {
                let _ = writeln!(out, "    - fingerprint: \"{pattern}\"");
                let _ = writeln!(out, "      why: \"{}\"", why.replace('"', "'"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_index_give_the_same_file_and_another_seed_another_world() {
        for family in FAMILIES {
            let a = one(family, 7, 3).expect(family);
            let b = one(family, 7, 3).expect(family);
            let c = one(family, 8, 3).expect(family);
            assert_eq!(a, b, "{family}");
            assert_ne!(a.text, c.text, "{family}");
        }
    }

    #[test]
    fn every_generated_file_parses_in_the_suite_format() {
        for seed in 0..4 {
            for generated in generate(&[], 45, seed).expect("generate") {
                let parsed = crate::scenario::parse(&generated.name, &generated.text)
                    .unwrap_or_else(|error| panic!("seed {seed}: {error}\n{}", generated.text));
                assert_eq!(parsed.family, generated.family);
                assert_eq!(parsed.suites, vec!["generated".to_owned()]);
            }
        }
        // Controls carry notices (a planned launch announced ahead): many
        // of them, so every draw of a notice's start is parsed.
        for seed in 0..40 {
            for generated in generate(&["control".into()], 100, seed).expect("generate") {
                crate::scenario::parse(&generated.name, &generated.text)
                    .unwrap_or_else(|error| panic!("seed {seed}: {error}\n{}", generated.text));
            }
        }
    }

    #[test]
    fn names_are_drawn_not_fixed() {
        let generated = generate(&["outgrown_quota".into()], 20, 11).expect("generate");
        let domains: std::collections::BTreeSet<String> = generated
            .iter()
            .map(|g| crate::scenario::parse(&g.name, &g.text).expect("parses"))
            .map(|s| format!("{}/{}", s.workload.domain, s.workload.key))
            .collect();
        assert!(domains.len() > 5, "{domains:?}");
    }

    #[test]
    fn an_unknown_family_is_named() {
        let error = generate(&["meteor".into()], 1, 1).expect_err("unknown");
        assert!(
            error.0.contains("meteor") && error.0.contains("outgrown_quota"),
            "{error}"
        );
    }
}
