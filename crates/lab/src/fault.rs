//! Faults the lab injects through its own fault API
//! ([`crate::world::World::inject`]): never through the service's action
//! catalog, and never wired by `floodgate serve`.

use floodgate_harness::quantity::parse_duration_ms;
use serde::Deserialize;
use std::collections::BTreeSet;

/// What goes wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// A tenant turns abusive: it surges to `per_minute` (for a while, or
    /// for good). Its checks are not good traffic while it surges. With
    /// `backs_off`, it honours rejections (at most twice what it was
    /// admitted last tick); without, it keeps hammering.
    Surge {
        tenant: String,
        per_minute: u64,
        for_ms: Option<u64>,
        backs_off: bool,
    },
    /// A tenant's legitimate traffic grows to `per_minute` (linearly over
    /// `ramp_ms`, at once without), for good or for `for_ms`: still good
    /// traffic, so every rejection of it counts against the objective.
    Growth {
        tenant: String,
        per_minute: u64,
        ramp_ms: u64,
        for_ms: Option<u64>,
    },
    /// Unique keys, `keys_per_tick` new ones each tick, for `for_ms`.
    KeyFlood { keys_per_tick: u32, for_ms: u64 },
    /// A human pushes `limits` (a whole config) and, if `ticket`, files a
    /// ticket `config:…` naming the version just pushed. With
    /// `reconcile_ms`, a deploy controller holds that config as its desired
    /// state and pushes it again (with the ticket) once the service has
    /// drifted from it that long: fixing the config provokes its return.
    BadConfig {
        limits: String,
        ticket: bool,
        reconcile_ms: Option<u64>,
        /// Pushed by a deploy controller (`controller:deploy`) rather than
        /// a human (`human:operator`).
        by_controller: bool,
    },
    /// The remote counter backend refuses connections for `for_ms`.
    BackendOutage { for_ms: u64 },
    /// Every backend command takes `latency_ms` for `for_ms` (past the
    /// command timeout, commands time out).
    BackendLatency { latency_ms: u64, for_ms: u64 },
    /// A client hammers one key (`key`, a descriptor value no workload
    /// tenant uses) at `per_minute`, for `for_ms` or for good. Its checks
    /// are sent first each tick and never count as good traffic.
    HotKey {
        key: String,
        per_minute: u64,
        for_ms: Option<u64>,
    },
    /// New keys that live long (a day limit each), `keys_per_tick` of them
    /// each tick, for good: the store's memory grows slowly.
    KeyGrowth { keys_per_tick: u32 },
}

impl FaultKind {
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Surge { .. } => "surge",
            FaultKind::Growth { .. } => "growth",
            FaultKind::KeyFlood { .. } => "key_flood",
            FaultKind::BadConfig { .. } => "bad_config",
            FaultKind::BackendOutage { .. } => "backend_outage",
            FaultKind::BackendLatency { .. } => "backend_latency",
            FaultKind::KeyGrowth { .. } => "key_growth",
            FaultKind::HotKey { .. } => "hot_key",
        }
    }

    /// Whether the fault is the counter backend's (the world needs a
    /// remote backend for it).
    pub fn needs_remote_backend(&self) -> bool {
        matches!(
            self,
            FaultKind::BackendOutage { .. } | FaultKind::BackendLatency { .. }
        )
    }

    /// The invariants the fault is meant to break (their tickets are the
    /// fault's, not a breakage the agent caused).
    pub fn breaks_invariants(&self) -> &'static [&'static str] {
        match self {
            FaultKind::KeyFlood { .. } | FaultKind::KeyGrowth { .. } => {
                &["capacity_headroom", "store_below_capacity"]
            }
            FaultKind::BackendOutage { .. }
            | FaultKind::BackendLatency { .. }
            | FaultKind::HotKey { .. } => &["store_healthy"],
            _ => &[],
        }
    }

    /// The tenant the fault is about, if one.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            FaultKind::Surge { tenant, .. } | FaultKind::Growth { tenant, .. } => Some(tenant),
            FaultKind::HotKey { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The tenant the fault makes abusive (exempt from the regression
    /// check: rejecting it is the point).
    pub fn abusive_tenant(&self) -> Option<&str> {
        match self {
            FaultKind::Surge { tenant, .. } => Some(tenant),
            FaultKind::HotKey { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The config a bad push brings.
    pub fn limits(&self) -> Option<&str> {
        match self {
            FaultKind::BadConfig { limits, .. } => Some(limits),
            _ => None,
        }
    }

    /// How long one injection acts, when it ends by itself (`None`: it
    /// acts to the end of the run, or until someone undoes it).
    pub fn acts_for_ms(&self) -> Option<u64> {
        match self {
            FaultKind::Surge { for_ms, .. }
            | FaultKind::Growth { for_ms, .. }
            | FaultKind::HotKey { for_ms, .. } => *for_ms,
            FaultKind::KeyFlood { for_ms, .. }
            | FaultKind::BackendOutage { for_ms }
            | FaultKind::BackendLatency { for_ms, .. } => Some(*for_ms),
            FaultKind::KeyGrowth { .. } | FaultKind::BadConfig { .. } => None,
        }
    }
}

/// Every fault kind a scenario may name.
pub const KINDS: [&str; 8] = [
    "surge",
    "growth",
    "key_flood",
    "key_growth",
    "hot_key",
    "bad_config",
    "backend_outage",
    "backend_latency",
];

/// A fault and when it is injected (again every `every_ms`, if set).
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub at_ms: u64,
    pub every_ms: Option<u64>,
    pub kind: FaultKind,
}

impl Fault {
    /// Whether the fault is injected at run time `t_ms` (a multiple of the tick).
    pub fn fires_at(&self, t_ms: u64, tick_ms: u64) -> bool {
        if t_ms < self.at_ms {
            return false;
        }
        match self.every_ms {
            None => t_ms < self.at_ms + tick_ms,
            Some(every) => (t_ms - self.at_ms) % every < tick_ms,
        }
    }
}

/// A fault as written in a scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub at: String,
    #[serde(default)]
    pub every: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub per_minute: Option<u64>,
    #[serde(default, rename = "for")]
    pub for_: Option<String>,
    #[serde(default)]
    pub keys_per_tick: Option<u32>,
    #[serde(default)]
    pub limits: Option<String>,
    #[serde(default)]
    pub ticket: Option<bool>,
    #[serde(default)]
    pub latency: Option<String>,
    #[serde(default)]
    pub reconcile_after: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub backs_off: Option<bool>,
    #[serde(default)]
    pub ramp: Option<String>,
    /// bad_config: `human` (the default) or `controller`.
    #[serde(default)]
    pub by: Option<String>,
}

type FieldError = (String, String);

impl FaultSpec {
    /// Checks and compiles against the workload's tenant names.
    /// The optional fields given (by their names in the file).
    fn given(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let fields: [(&'static str, bool); 12] = [
            ("tenant", self.tenant.is_some()),
            ("per_minute", self.per_minute.is_some()),
            ("for", self.for_.is_some()),
            ("keys_per_tick", self.keys_per_tick.is_some()),
            ("limits", self.limits.is_some()),
            ("ticket", self.ticket.is_some()),
            ("latency", self.latency.is_some()),
            ("reconcile_after", self.reconcile_after.is_some()),
            ("key", self.key.is_some()),
            ("backs_off", self.backs_off.is_some()),
            ("ramp", self.ramp.is_some()),
            ("by", self.by.is_some()),
        ];
        for (name, set) in fields {
            if set {
                out.push(name);
            }
        }
        out
    }

    pub fn compile(&self, tenants: &BTreeSet<String>) -> Result<Fault, FieldError> {
        let duration = |field: &str, text: &str| {
            parse_duration_ms(text).map_err(|error| (field.to_owned(), error))
        };
        let takes: &[&str] = match self.kind.as_str() {
            "surge" => &["tenant", "per_minute", "for", "backs_off"],
            "growth" => &["tenant", "per_minute", "for", "ramp"],
            "key_flood" => &["keys_per_tick", "for"],
            "key_growth" => &["keys_per_tick"],
            "hot_key" => &["key", "per_minute", "for"],
            "bad_config" => &["limits", "ticket", "reconcile_after", "by"],
            "backend_outage" => &["for"],
            "backend_latency" => &["latency", "for"],
            _ => &[],
        };
        if KINDS.contains(&self.kind.as_str()) {
            if let Some(extra) = self.given().into_iter().find(|f| !takes.contains(f)) {
                return Err((
                    extra.to_owned(),
                    format!(
                        "{} does not take {extra} (it takes {})",
                        self.kind,
                        takes.join(", ")
                    ),
                ));
            }
        }
        let at_ms = duration("at", &self.at)?;
        let every_ms = self
            .every
            .as_deref()
            .map(|every| duration("every", every))
            .transpose()?;
        if every_ms.is_some_and(|every| every < 60_000) {
            return Err(("every".into(), "at least 1m".into()));
        }
        let for_ms = self
            .for_
            .as_deref()
            .map(|f| duration("for", f))
            .transpose()?;
        let tenant = || -> Result<String, FieldError> {
            let tenant = self
                .tenant
                .clone()
                .ok_or_else(|| ("tenant".to_owned(), format!("{} needs a tenant", self.kind)))?;
            if !tenants.contains(&tenant) {
                return Err((
                    "tenant".into(),
                    format!("{tenant:?} is not a tenant of the workload"),
                ));
            }
            Ok(tenant)
        };
        let per_minute = || {
            self.per_minute
                .filter(|rate| *rate <= 60_000)
                .ok_or_else(|| {
                    (
                        "per_minute".to_owned(),
                        format!("{} needs per_minute (at most 60000)", self.kind),
                    )
                })
        };
        let keys_per_tick = || {
            self.keys_per_tick
                .filter(|keys| (1..=1000).contains(keys))
                .ok_or_else(|| {
                    (
                        "keys_per_tick".to_owned(),
                        format!("{} needs keys_per_tick (1 to 1000)", self.kind),
                    )
                })
        };
        let for_ms_needed =
            || for_ms.ok_or_else(|| ("for".to_owned(), format!("{} needs for", self.kind)));
        let kind = match self.kind.as_str() {
            "surge" => FaultKind::Surge {
                tenant: tenant()?,
                per_minute: per_minute()?,
                for_ms,
                backs_off: self.backs_off.unwrap_or(true),
            },
            "growth" => FaultKind::Growth {
                tenant: tenant()?,
                per_minute: per_minute()?,
                ramp_ms: self
                    .ramp
                    .as_deref()
                    .map(|ramp| duration("ramp", ramp))
                    .transpose()?
                    .unwrap_or(0),
                for_ms,
            },
            "key_flood" => FaultKind::KeyFlood {
                keys_per_tick: keys_per_tick()?,
                for_ms: for_ms_needed()?,
            },
            "hot_key" => {
                let key = self
                    .key
                    .clone()
                    .filter(|key| {
                        !key.is_empty()
                            && key.len() <= 64
                            && key
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    })
                    .ok_or_else(|| {
                        (
                            "key".to_owned(),
                            "hot_key needs key: letters, digits, - and _ (at most 64)".to_owned(),
                        )
                    })?;
                if tenants.contains(&key) || key.starts_with("flood-") {
                    return Err((
                        "key".into(),
                        format!(
                            "{key:?} is a workload tenant's key: a hot key is a key of its own"
                        ),
                    ));
                }
                FaultKind::HotKey {
                    key,
                    per_minute: per_minute()?,
                    for_ms,
                }
            }
            "key_growth" => FaultKind::KeyGrowth {
                keys_per_tick: keys_per_tick()?,
            },
            "backend_outage" => FaultKind::BackendOutage {
                for_ms: for_ms_needed()?,
            },
            "backend_latency" => FaultKind::BackendLatency {
                latency_ms: duration(
                    "latency",
                    self.latency.as_deref().ok_or_else(|| {
                        (
                            "latency".to_owned(),
                            "backend_latency needs latency".to_owned(),
                        )
                    })?,
                )?,
                for_ms: for_ms_needed()?,
            },
            "bad_config" => {
                let limits = self
                    .limits
                    .clone()
                    .ok_or_else(|| ("limits".to_owned(), "bad_config needs limits".to_owned()))?;
                floodgate_limiter::config::load(&[floodgate_limiter::config::ConfigSource::new(
                    "limits", &limits,
                )])
                .map_err(|error| ("limits".to_owned(), error.to_string()))?;
                FaultKind::BadConfig {
                    limits,
                    ticket: self.ticket.unwrap_or(true),
                    reconcile_ms: self
                        .reconcile_after
                        .as_deref()
                        .map(|text| duration("reconcile_after", text))
                        .transpose()?,
                    by_controller: match self.by.as_deref() {
                        None | Some("human") => false,
                        Some("controller") => true,
                        Some(other) => {
                            return Err(("by".into(), format!("{other:?}: human or controller")))
                        }
                    },
                }
            }
            other => {
                return Err((
                    "kind".into(),
                    format!(
                        "{other:?} is not a fault (expected one of {})",
                        KINDS.join(", ")
                    ),
                ))
            }
        };
        Ok(Fault {
            at_ms,
            every_ms,
            kind,
        })
    }
}
