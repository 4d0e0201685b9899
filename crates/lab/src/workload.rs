//! A seeded workload: tenants with contracts, a diurnal shape and bursts.
//! [`Generator::plan`] is pure given its state and the seed: the same seed
//! gives the same checks, tick after tick.

use crate::rng::Rng;
use floodgate_harness::quantity::parse_duration_ms;
use serde::Deserialize;
use std::collections::BTreeMap;

/// How a tenant behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contract {
    /// Steady traffic within its limits: every rejection of it is a fault.
    WellBehaved,
    /// Steady traffic with short bursts, still within its limits.
    Bursty,
    /// Sends what a fault tells it to; backs off only when rejected (at most
    /// twice what was admitted last tick, as a client honouring 429s).
    Abusive,
}

impl Contract {
    /// Whether the tenant's rejections count against the objective.
    pub fn is_good(self) -> bool {
        !matches!(self, Contract::Abusive)
    }
}

/// A tenant as written in a scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    pub name: String,
    pub contract: Contract,
    /// Mean checks per minute at the diurnal mean.
    pub per_minute: u64,
    #[serde(default)]
    pub burst_every: Option<String>,
    #[serde(default)]
    pub burst_for: Option<String>,
    #[serde(default)]
    pub burst_factor: Option<f64>,
}

/// A tenant, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub name: String,
    pub contract: Contract,
    pub per_minute: u64,
    /// Mean time between bursts (bursty tenants).
    pub burst_every_ms: Option<u64>,
    pub burst_for_ms: u64,
    pub burst_factor: f64,
}

impl TenantSpec {
    /// Checks and compiles; errors are (field, message).
    pub fn compile(&self) -> Result<Tenant, (String, String)> {
        let duration =
            |field: &str, text: &Option<String>| -> Result<Option<u64>, (String, String)> {
                text.as_ref()
                    .map(|text| parse_duration_ms(text).map_err(|e| (field.to_owned(), e)))
                    .transpose()
            };
        let burst_every_ms = duration("burst_every", &self.burst_every)?;
        if burst_every_ms == Some(0) {
            return Err(("burst_every".into(), "must be positive".into()));
        }
        let burst_for_ms = duration("burst_for", &self.burst_for)?.unwrap_or(60_000);
        let burst_factor = self.burst_factor.unwrap_or(2.0);
        if !(1.0..=10.0).contains(&burst_factor) {
            return Err((
                "burst_factor".into(),
                format!("{burst_factor}: between 1 and 10"),
            ));
        }
        Ok(Tenant {
            name: self.name.clone(),
            contract: self.contract,
            per_minute: self.per_minute,
            burst_every_ms,
            burst_for_ms,
            burst_factor,
        })
    }
}

/// The tenants and the day's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// The domain and the descriptor key every check carries: one entry,
    /// `key` = the tenant's name.
    pub domain: String,
    pub key: String,
    pub tenants: Vec<Tenant>,
    /// Relative swing of the diurnal shape (0: flat), peaking at 14:00 UTC.
    pub diurnal_amplitude: f64,
}

/// One tenant's checks in one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Send {
    pub tenant: String,
    pub count: u32,
    /// Counts against the objective when rejected.
    pub good: bool,
}

/// A fault's hold on one tenant's rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The rate when the override began (per minute, before the diurnal
    /// shape), and the rate it goes to.
    pub from_per_minute: u64,
    pub to_per_minute: u64,
    /// The ramp from one to the other (`start == end`: at once).
    pub ramp_start_ms: u64,
    pub ramp_end_ms: u64,
    /// When the override ends (`u64::MAX`: never).
    pub until_ms: u64,
    /// A surge: the tenant is abusive while it lasts (its checks are not
    /// good traffic, and the diurnal shape does not scale them).
    pub surge: bool,
    /// It honours rejections (abusive contracts always do).
    pub backs_off: bool,
}

impl Override {
    /// The rate (per minute) at `now_ms`.
    pub fn per_minute(&self, now_ms: u64) -> f64 {
        let (from, to) = (self.from_per_minute as f64, self.to_per_minute as f64);
        if now_ms >= self.ramp_end_ms || self.ramp_end_ms <= self.ramp_start_ms {
            return to;
        }
        let done = now_ms.saturating_sub(self.ramp_start_ms) as f64
            / (self.ramp_end_ms - self.ramp_start_ms) as f64;
        from + (to - from) * done
    }
}

/// The generator's state: the seeded stream, overrides set by faults, and
/// what the tenants saw last tick.
#[derive(Debug, Clone)]
pub struct Generator {
    workload: Workload,
    rng: Rng,
    /// Tenant → the rate a fault set (surge, growth).
    pub overrides: BTreeMap<String, Override>,
    /// Unique keys to send each tick (a key flood), and until when.
    pub flood: Option<(u32, u64)>,
    /// A hot key: (key, per minute, until when).
    pub hot: Option<(String, u64, u64)>,
    flood_next: u64,
    burst_until: BTreeMap<String, u64>,
    /// Tenant → (sent, admitted) in the last tick.
    last: BTreeMap<String, (u32, u32)>,
}

const DAY_MS: u64 = 86_400_000;

impl Generator {
    pub fn new(workload: Workload, seed: u64) -> Generator {
        Generator {
            workload,
            rng: Rng::new(seed),
            overrides: BTreeMap::new(),
            flood: None,
            hot: None,
            flood_next: 0,
            burst_until: BTreeMap::new(),
            last: BTreeMap::new(),
        }
    }

    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// The diurnal factor at `now_ms` (epoch ms): 1 ± amplitude, peak 14:00.
    pub fn diurnal(&self, now_ms: u64) -> f64 {
        diurnal(self.workload.diurnal_amplitude, now_ms)
    }

    /// The tenant's own rate now (per minute, before the diurnal shape):
    /// its contract's, or the override's.
    fn base_per_minute(&self, tenant: &Tenant, now_ms: u64) -> f64 {
        self.overrides
            .get(&tenant.name)
            .map_or(tenant.per_minute as f64, |o| o.per_minute(now_ms))
    }

    /// A tenant surges to `per_minute` from `now_ms` until `until_ms`.
    pub fn surge(
        &mut self,
        tenant: &str,
        per_minute: u64,
        now_ms: u64,
        until_ms: u64,
        backs_off: bool,
    ) {
        self.overrides.insert(
            tenant.to_owned(),
            Override {
                from_per_minute: per_minute,
                to_per_minute: per_minute,
                ramp_start_ms: now_ms,
                ramp_end_ms: now_ms,
                until_ms,
                surge: true,
                backs_off,
            },
        );
    }

    /// A tenant's legitimate traffic grows to `per_minute` over `ramp_ms`
    /// from `now_ms`, until `until_ms`.
    pub fn grow(
        &mut self,
        tenant: &str,
        per_minute: u64,
        now_ms: u64,
        ramp_ms: u64,
        until_ms: u64,
    ) {
        let from = self
            .workload
            .tenants
            .iter()
            .find(|t| t.name == tenant)
            .map_or(0, |t| t.per_minute);
        self.overrides.insert(
            tenant.to_owned(),
            Override {
                from_per_minute: from,
                to_per_minute: per_minute,
                ramp_start_ms: now_ms,
                ramp_end_ms: now_ms.saturating_add(ramp_ms),
                until_ms,
                surge: false,
                backs_off: false,
            },
        );
    }

    /// The checks of the tick at `now_ms` lasting `tick_ms`.
    pub fn plan(&mut self, now_ms: u64, tick_ms: u64) -> Vec<Send> {
        let diurnal = self.diurnal(now_ms);
        self.overrides.retain(|_, o| now_ms < o.until_ms);
        let mut out = Vec::with_capacity(self.workload.tenants.len() + 2);
        if let Some((key, per_minute, until)) = self.hot.clone() {
            if now_ms < until {
                let mean = per_minute as f64 * tick_ms as f64 / 60_000.0;
                out.push(Send {
                    tenant: key,
                    count: (mean + self.rng.unit()).floor() as u32,
                    good: false,
                });
            } else {
                self.hot = None;
            }
        }
        let tenants = self.workload.tenants.clone();
        for tenant in &tenants {
            let surge = self
                .overrides
                .get(&tenant.name)
                .filter(|o| o.surge)
                .cloned();
            let mut mean = self.base_per_minute(tenant, now_ms) * tick_ms as f64 / 60_000.0;
            if surge.is_none() {
                mean *= diurnal;
            }
            if let Some(every) = tenant.burst_every_ms {
                let until = self.burst_until.get(&tenant.name).copied().unwrap_or(0);
                if now_ms >= until && self.rng.unit() < tick_ms as f64 / every as f64 {
                    self.burst_until
                        .insert(tenant.name.clone(), now_ms + tenant.burst_for_ms);
                }
                if surge.is_none()
                    && now_ms < self.burst_until.get(&tenant.name).copied().unwrap_or(0)
                {
                    mean *= tenant.burst_factor;
                }
            }
            let mut count = (mean + self.rng.unit()).floor() as u32;
            let backs_off = match &surge {
                Some(o) => o.backs_off,
                None => tenant.contract == Contract::Abusive,
            };
            if backs_off {
                if let Some((sent, admitted)) = self.last.get(&tenant.name) {
                    if admitted * 2 < *sent {
                        count = count.min(admitted * 2 + 1);
                    }
                }
            }
            out.push(Send {
                tenant: tenant.name.clone(),
                count,
                good: tenant.contract.is_good() && surge.is_none(),
            });
        }
        if let Some((per_tick, until)) = self.flood {
            if now_ms < until {
                for _ in 0..per_tick {
                    self.flood_next += 1;
                    out.push(Send {
                        tenant: format!("{FLOOD_PREFIX}{}", self.flood_next),
                        count: 1,
                        good: false,
                    });
                }
            } else {
                self.flood = None;
            }
        }
        out
    }

    /// What a tenant got in the tick just sent (for adaptive clients).
    pub fn record(&mut self, tenant: &str, sent: u32, admitted: u32) {
        self.last.insert(tenant.to_owned(), (sent, admitted));
    }
}

/// Descriptor values of flood keys start with this (never a tenant's).
pub const FLOOD_PREFIX: &str = "flood-";

/// The diurnal factor of `amplitude` at `now_ms` (epoch ms): 1 ± amplitude,
/// peak at 14:00 UTC.
pub fn diurnal(amplitude: f64, now_ms: u64) -> f64 {
    let phase = ((now_ms % DAY_MS) as f64 / DAY_MS as f64 - 8.0 / 24.0) * std::f64::consts::TAU;
    1.0 + amplitude * phase.sin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload {
            tenants: vec![
                TenantSpec {
                    name: "acme".into(),
                    contract: Contract::WellBehaved,
                    per_minute: 30,
                    burst_every: None,
                    burst_for: None,
                    burst_factor: None,
                }
                .compile()
                .unwrap(),
                TenantSpec {
                    name: "spiky".into(),
                    contract: Contract::Bursty,
                    per_minute: 12,
                    burst_every: Some("5m".into()),
                    burst_for: Some("1m".into()),
                    burst_factor: Some(3.0),
                }
                .compile()
                .unwrap(),
            ],
            diurnal_amplitude: 0.3,
            domain: "api".into(),
            key: "tenant".into(),
        }
    }

    fn run(seed: u64) -> Vec<Vec<Send>> {
        let mut generator = Generator::new(workload(), seed);
        (0..360)
            .map(|tick| generator.plan(tick * 10_000, 10_000))
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_checks_and_another_seed_does_not() {
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn the_mean_rate_follows_the_contract_and_bursts_happen() {
        let ticks = run(3);
        let acme: u32 = ticks.iter().map(|t| t[0].count).sum();
        // 30/min for an hour near midnight (diurnal factor about 0.7–0.75).
        assert!((1100..=1500).contains(&acme), "{acme}");
        let spiky_max = ticks.iter().map(|t| t[1].count).max().unwrap();
        assert!(spiky_max >= 4, "bursts: {spiky_max}");
    }

    #[test]
    fn an_abusive_client_backs_off_when_rejected() {
        let mut generator = Generator::new(
            Workload {
                tenants: vec![TenantSpec {
                    name: "mallory".into(),
                    contract: Contract::Abusive,
                    per_minute: 6,
                    burst_every: None,
                    burst_for: None,
                    burst_factor: None,
                }
                .compile()
                .unwrap()],
                diurnal_amplitude: 0.0,
                domain: "api".into(),
                key: "tenant".into(),
            },
            1,
        );
        generator.surge("mallory", 600, 0, u64::MAX, true);
        assert_eq!(generator.plan(0, 10_000)[0].count, 100);
        generator.record("mallory", 100, 20);
        assert_eq!(generator.plan(10_000, 10_000)[0].count, 41);
        generator.record("mallory", 41, 30);
        assert_eq!(generator.plan(20_000, 10_000)[0].count, 100);
    }
}
