//! Evidence: what a runbook or a model needs to act on an incident
//! without knowing any name in advance — which limits reject, for which
//! descriptor values, and how the demand compares with the limit — merged
//! over every instance of the fleet (a tenant may live on one instance of
//! a memory fleet, or be spread over all of them on a shared store).
//!
//! Pure: built from the services' `/v1/state` documents (their
//! `limits[].top_values`, docs/catalog/schemas/state.json); `GET
//! /v1/evidence` fetches them and calls [`build`].

use floodgate_contract::state::{
    ConfigVersion, DescriptorEntry, NodeEntry, State, StoreTransition,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The most values listed per limit.
pub const MAX_VALUES_PER_LIMIT: usize = 16;
/// The most values in [`Evidence::rejected`].
pub const MAX_REJECTED: usize = 64;
/// How many standard deviations of a window's arrival count (random
/// arrivals: the square root of the mean) a need for a limit of an hour or
/// less covers above the mean: a quota at the mean rejects in about half
/// the windows; four deviations above it, in about 1 window in 30,000 of
/// independent arrivals (real traffic, burstier, more).
pub const ARRIVAL_NOISE_SIGMAS: f64 = 4.0;

/// The most config versions in [`Evidence::config_changes`].
pub const MAX_CONFIG_CHANGES: usize = 8;

/// The evidence document (`GET /v1/evidence`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// When it was built (the harness's clock, epoch ms).
    pub at_ms: u64,
    /// The instances whose state it merges.
    pub services: Vec<String>,
    /// Every limit of the config, the most rejected first (then the most
    /// hit).
    pub limits: Vec<LimitEvidence>,
    /// The first limit that rejects hits, if any (`limits[0]` when it
    /// rejects): the one a rejection incident is most likely about.
    pub rejecting: Option<LimitEvidence>,
    /// Every value a limit (not in shadow mode) rejects, over all limits,
    /// the most rejected first (at most [`MAX_REJECTED`]).
    pub rejected: Vec<ValueEvidence>,
    /// The value with the most demand over all limits relative to the
    /// limit's rate (demand ratio), if any.
    pub busiest: Option<ValueEvidence>,
    /// The value with the most admitted hits per second over all limits,
    /// if any: the one a load incident is most likely about.
    pub heaviest: Option<ValueEvidence>,
    /// The value asking the most hits per second over all limits, admitted
    /// or not, if any: the key a hot-key incident (one key saturating the
    /// counter backend) is most likely about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hottest: Option<ValueEvidence>,
    /// How many times the hits per second of the next value (any other
    /// descriptor value, of any limit) the hottest asks; absent when no
    /// other value asks anything (one value alone cannot be told hot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hottest_lead: Option<f64>,
    /// Each instance's store health and config version.
    pub instances: Vec<InstanceEvidence>,
    /// What changed the config lately, newest first (of the first instance
    /// that answered; at most [`MAX_CONFIG_CHANGES`]): when, who (`agent:…`
    /// for a harness proposal, else the human or deploy system that
    /// pushed) and through which action (`apply_config` for a whole
    /// config pushed).
    pub config_changes: Vec<ConfigVersion>,
}

/// One limit, merged over the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitEvidence {
    pub domain: String,
    pub name: String,
    /// Where the config defines it (`descriptors[0].rate_limits[1]`).
    pub path: String,
    /// Its descriptor node's path (`descriptors[0]`): limits with the same
    /// node apply to the same requests.
    pub node: String,
    /// The node, level by level (a level without a value matches every
    /// value).
    pub descriptor: Vec<NodeEntry>,
    pub algorithm: String,
    pub unit: String,
    /// The unit's length (month: 30 days, year: 365 days).
    pub unit_seconds: u64,
    pub requests_per_unit: u64,
    pub burst: u64,
    /// `requests_per_unit / unit_seconds`.
    pub quota_per_second: f64,
    pub shadow: bool,
    /// Over the top values' window (the last one to two minutes): hits and
    /// rejected hits per second, of the listed values.
    pub hits_per_second: f64,
    pub over_per_second: f64,
    /// The values, the most rejected first, then the most hit.
    pub values: Vec<ValueEvidence>,
}

/// One descriptor value of a limit, merged over the fleet, with the facts
/// of its limit a change needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueEvidence {
    pub domain: String,
    pub limit: String,
    /// `key=value|key=value`.
    pub value: String,
    /// The entries that reach the limit's node, ready to use as an
    /// `add_limit` path.
    pub entries: Vec<DescriptorEntry>,
    /// The limit's node (`descriptors[0]`), unit, quota and algorithm.
    pub node: String,
    pub unit: String,
    pub requests_per_unit: u64,
    pub algorithm: String,
    /// The quota the rest of the key gets from the limit of the same unit
    /// at the key-only node of this node's keys (the limit's own quota when
    /// the limit is at such a node, or no such limit exists).
    pub key_requests_per_unit: u64,
    /// Whether the limit is at this value's own node (every level has a
    /// value, the value's): a change to it touches no other value.
    pub own_limit: bool,
    pub hits_per_second: f64,
    pub over_per_second: f64,
    /// `hits_per_second - over_per_second`.
    pub admitted_per_second: f64,
    /// Its demand in units of its limit: `hits_per_second /
    /// quota_per_second` (2.0: it asks twice what the limit admits).
    pub demand_ratio: f64,
    /// The multiple of the quota it would take for the limit to stop
    /// rejecting it: for units of an hour or less (the next windows come
    /// within the incident), the mean demand of a window plus
    /// [`ARRIVAL_NOISE_SIGMAS`] deviations of its arrival count (`(m +
    /// 4·√m) / quota`, `m` the hits a window at the observed rate: a quota
    /// at the mean rejects every other window); for longer units, the quota
    /// already spent plus what it is rejected at over the rest of the
    /// current window (`1 + over × seconds left / quota`): the next window
    /// is hours away, and is better judged when it comes. An estimate from
    /// one to two minutes of traffic.
    pub needed_ratio: f64,
    /// Its share of the limit's listed hits (0 to 1).
    pub share: f64,
    /// Since when the harness has seen this limit reject this value at
    /// every observation (epoch ms; [`RejectingSince`]); absent when not
    /// known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_since_ms: Option<u64>,
}

/// The most (limit, value) pairs [`RejectingSince`] remembers: every
/// instance's top values (16 per limit) for a few hundred limits.
pub const MAX_REJECTING: usize = 4096;

/// Since when each limit has rejected each descriptor value, as the
/// observe loop saw it: a pair enters when a tick first sees the limit
/// reject the value (on any instance) and leaves at the first tick that
/// sees it no longer rejected. Bounded by [`MAX_REJECTING`] (the newest
/// pairs are not added past it). Pure: the caller passes the time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RejectingSince {
    since: BTreeMap<(String, String, String), u64>,
}

impl RejectingSince {
    /// One tick's states (`/v1/state` documents of every instance, as
    /// JSON: read in place, not decoded whole).
    pub fn observe<'a>(
        &mut self,
        states: impl IntoIterator<Item = &'a serde_json::Value>,
        now_ms: u64,
    ) {
        let mut now: BTreeSet<(String, String, String)> = BTreeSet::new();
        for state in states {
            for limit in state["limits"].as_array().into_iter().flatten() {
                let (Some(domain), Some(name)) = (limit["domain"].as_str(), limit["name"].as_str())
                else {
                    continue;
                };
                for value in limit["top_values"]["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|value| value["over"].as_u64().is_some_and(|over| over > 0))
                {
                    if let Some(text) = value["value"].as_str() {
                        now.insert((domain.to_owned(), name.to_owned(), text.to_owned()));
                    }
                }
            }
        }
        self.since.retain(|key, _| now.contains(key));
        for key in now {
            if self.since.len() >= MAX_REJECTING {
                break;
            }
            self.since.entry(key).or_insert(now_ms);
        }
    }

    /// Since when `limit` of `domain` has rejected `value`.
    pub fn get(&self, domain: &str, limit: &str, value: &str) -> Option<u64> {
        self.since
            .get(&(domain.to_owned(), limit.to_owned(), value.to_owned()))
            .copied()
    }

    /// Writes `rejected_since_ms` into every value of `evidence`.
    pub fn mark(&self, evidence: &mut Evidence) {
        let mark = |value: &mut ValueEvidence| {
            value.rejected_since_ms = self.get(&value.domain, &value.limit, &value.value);
        };
        for limit in &mut evidence.limits {
            limit.values.iter_mut().for_each(mark);
        }
        if let Some(rejecting) = &mut evidence.rejecting {
            rejecting.values.iter_mut().for_each(mark);
        }
        evidence.rejected.iter_mut().for_each(mark);
        evidence.busiest.iter_mut().for_each(mark);
        evidence.heaviest.iter_mut().for_each(mark);
        evidence.hottest.iter_mut().for_each(mark);
    }
}

/// One instance's health facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceEvidence {
    pub service: String,
    pub config_version: u64,
    pub config_hash: String,
    pub store_backend: String,
    pub store_healthy: bool,
    pub store_used_ratio: f64,
    /// `fail_open`, `fail_closed` or `local_fallback`.
    pub store_failure_policy: String,
    /// How long the store has been in its present health (ms): since its
    /// latest health change, or since the service started when it has not
    /// changed.
    pub store_steady_ms: u64,
    /// How many times the backend went down within the last
    /// [`OUTAGE_WINDOW_MS`] (two or more: it flaps).
    pub store_outages_last_hour: u32,
    /// The backend's latest health changes, oldest first (the service's
    /// `store.transitions`).
    pub store_transitions: Vec<StoreTransition>,
}

/// The window [`InstanceEvidence::store_outages_last_hour`] counts over.
pub const OUTAGE_WINDOW_MS: u64 = 3_600_000;

impl InstanceEvidence {
    /// One instance's health facts from its state, at `now_ms`.
    pub fn of(service: &str, state: &State, now_ms: u64) -> InstanceEvidence {
        let store = &state.store;
        let steady_ms = match store.transitions.last() {
            Some(latest) => now_ms.saturating_sub(latest.time_ms),
            None => state.uptime_seconds.saturating_mul(1_000),
        };
        let outages = store
            .transitions
            .iter()
            .filter(|t| !t.healthy && now_ms.saturating_sub(t.time_ms) <= OUTAGE_WINDOW_MS)
            .count();
        InstanceEvidence {
            service: service.to_owned(),
            config_version: state.config.version,
            config_hash: state.config.hash.clone(),
            store_backend: store.backend.clone(),
            store_healthy: store.healthy,
            store_used_ratio: store.used_ratio,
            store_failure_policy: store.failure_policy.as_str().to_owned(),
            store_steady_ms: steady_ms,
            store_outages_last_hour: u32::try_from(outages).unwrap_or(u32::MAX),
            store_transitions: store.transitions.clone(),
        }
    }
}

/// A unit's length in seconds (month 30 days, year 365 days); 0 when not
/// known. The limiter's `Unit::seconds`, restated: the harness depends on
/// the contract only, where units are names.
pub fn unit_seconds(unit: &str) -> u64 {
    match unit {
        "second" => 1,
        "minute" => 60,
        "hour" => 3_600,
        "day" => 86_400,
        "week" => 604_800,
        "month" => 2_592_000,
        "year" => 31_536_000,
        _ => 0,
    }
}

/// A limit's node path: its path without the last `.rate_limit…` part.
fn node_of(path: &str) -> String {
    match path.rfind(".rate_limit") {
        Some(at) => path[..at].to_owned(),
        None => path.to_owned(),
    }
}

/// Merges the instances' states into one evidence document, at `now_ms`
/// (epoch ms, for how much of a long window is left).
pub fn build(
    states: &[(String, State)],
    config_changes: &[ConfigVersion],
    now_ms: u64,
) -> Evidence {
    let mut limits: Vec<LimitEvidence> = Vec::new();
    for (_, state) in states {
        for limit in &state.limits {
            let index = match limits
                .iter()
                .position(|known| known.domain == limit.domain && known.name == limit.name)
            {
                Some(index) => index,
                None => {
                    let seconds = unit_seconds(&limit.unit);
                    limits.push(LimitEvidence {
                        domain: limit.domain.clone(),
                        name: limit.name.clone(),
                        path: limit.path.clone(),
                        node: node_of(&limit.path),
                        descriptor: limit.descriptor.clone(),
                        algorithm: limit.algorithm.clone(),
                        unit: limit.unit.clone(),
                        unit_seconds: seconds,
                        requests_per_unit: limit.requests_per_unit,
                        burst: limit.burst,
                        quota_per_second: if seconds == 0 {
                            0.0
                        } else {
                            limit.requests_per_unit as f64 / seconds as f64
                        },
                        shadow: limit.shadow,
                        hits_per_second: 0.0,
                        over_per_second: 0.0,
                        values: Vec::new(),
                    });
                    limits.len() - 1
                }
            };
            let merged = &mut limits[index];
            let window = limit.top_values.window_seconds.max(1) as f64;
            for value in &limit.top_values.values {
                let hits = value.hits as f64 / window;
                let over = value.over as f64 / window;
                merged.hits_per_second += hits;
                merged.over_per_second += over;
                match merged
                    .values
                    .iter_mut()
                    .find(|known| known.entries == value.entries)
                {
                    Some(known) => {
                        known.hits_per_second += hits;
                        known.over_per_second += over;
                    }
                    None => merged.values.push(ValueEvidence {
                        domain: limit.domain.clone(),
                        limit: limit.name.clone(),
                        value: value.value.clone(),
                        entries: value.entries.clone(),
                        node: merged.node.clone(),
                        unit: limit.unit.clone(),
                        requests_per_unit: limit.requests_per_unit,
                        algorithm: limit.algorithm.clone(),
                        key_requests_per_unit: limit.requests_per_unit,
                        own_limit: false,
                        hits_per_second: hits,
                        over_per_second: over,
                        admitted_per_second: 0.0,
                        demand_ratio: 0.0,
                        needed_ratio: 0.0,
                        share: 0.0,
                        rejected_since_ms: None,
                    }),
                }
            }
        }
    }
    // The quota of the same unit at each key-only node.
    let key_quota = |limit: &LimitEvidence| -> u64 {
        if limit.descriptor.iter().all(|level| level.value.is_none()) {
            return limit.requests_per_unit;
        }
        let keys: Vec<&str> = limit.descriptor.iter().map(|l| l.key.as_str()).collect();
        let candidates: Vec<&LimitEvidence> = limits
            .iter()
            .filter(|other| {
                other.domain == limit.domain
                    && other.unit == limit.unit
                    && other.descriptor.iter().all(|level| level.value.is_none())
                    && other
                        .descriptor
                        .iter()
                        .map(|l| l.key.as_str())
                        .eq(keys.iter().copied())
            })
            .collect();
        candidates
            .iter()
            .find(|other| limit.name.starts_with(&other.name))
            .or(candidates.first())
            .map_or(limit.requests_per_unit, |other| other.requests_per_unit)
    };
    let key_quotas: Vec<u64> = limits.iter().map(key_quota).collect();
    let now_seconds = now_ms / 1000;
    for (limit, key_requests_per_unit) in limits.iter_mut().zip(key_quotas) {
        let left = match limit.unit_seconds {
            0 => 0,
            unit => unit - now_seconds % unit,
        };
        for value in &mut limit.values {
            // A rejected hit is demand too: the sampled hits may miss a
            // value whose hits are mostly rejected.
            value.hits_per_second = value.hits_per_second.max(value.over_per_second);
            value.admitted_per_second = value.hits_per_second - value.over_per_second;
            value.key_requests_per_unit = key_requests_per_unit;
            value.own_limit = limit.descriptor.len() == value.entries.len()
                && limit
                    .descriptor
                    .iter()
                    .zip(&value.entries)
                    .all(|(level, entry)| {
                        level.key == entry.key && level.value.as_deref() == Some(&entry.value)
                    });
            value.demand_ratio = if limit.quota_per_second > 0.0 {
                value.hits_per_second / limit.quota_per_second
            } else {
                0.0
            };
            value.needed_ratio = if limit.requests_per_unit == 0 {
                value.demand_ratio
            } else if limit.unit_seconds <= 3_600 {
                // A window's count of random arrivals swings about its
                // mean: a quota at the mean rejects in half the windows.
                let mean = value.hits_per_second * limit.unit_seconds as f64;
                (mean + ARRIVAL_NOISE_SIGMAS * mean.sqrt()) / limit.requests_per_unit as f64
            } else {
                1.0 + value.over_per_second * left as f64 / limit.requests_per_unit as f64
            };
            value.share = if limit.hits_per_second > 0.0 {
                (value.hits_per_second / limit.hits_per_second).min(1.0)
            } else {
                0.0
            };
        }
        limit.values.sort_by(|a, b| {
            b.over_per_second
                .total_cmp(&a.over_per_second)
                .then(b.hits_per_second.total_cmp(&a.hits_per_second))
                .then(a.value.cmp(&b.value))
        });
        limit.values.truncate(MAX_VALUES_PER_LIMIT);
    }
    limits.sort_by(|a, b| {
        b.over_per_second
            .total_cmp(&a.over_per_second)
            .then(b.hits_per_second.total_cmp(&a.hits_per_second))
            .then(a.domain.cmp(&b.domain))
            .then(a.name.cmp(&b.name))
    });
    let rejecting = limits
        .iter()
        .find(|limit| !limit.shadow && limit.over_per_second > 0.0)
        .cloned();
    let mut rejected: Vec<ValueEvidence> = limits
        .iter()
        .filter(|limit| !limit.shadow)
        .flat_map(|limit| limit.values.iter())
        .filter(|value| value.over_per_second > 0.0)
        .cloned()
        .collect();
    rejected.sort_by(|a, b| {
        b.over_per_second
            .total_cmp(&a.over_per_second)
            .then(a.value.cmp(&b.value))
            .then(a.limit.cmp(&b.limit))
    });
    rejected.truncate(MAX_REJECTED);
    let all_values = || limits.iter().flat_map(|limit| limit.values.iter());
    let busiest = all_values()
        .max_by(|a, b| {
            a.demand_ratio
                .total_cmp(&b.demand_ratio)
                .then(b.value.cmp(&a.value))
        })
        .cloned();
    let heaviest = all_values()
        .filter(|value| value.admitted_per_second > 0.0)
        .max_by(|a, b| {
            a.admitted_per_second
                .total_cmp(&b.admitted_per_second)
                .then(b.value.cmp(&a.value))
                .then(b.limit.cmp(&a.limit))
        })
        .cloned();
    let hottest = all_values()
        .filter(|value| value.hits_per_second > 0.0)
        .max_by(|a, b| {
            a.hits_per_second
                .total_cmp(&b.hits_per_second)
                .then(b.value.cmp(&a.value))
                .then(b.limit.cmp(&a.limit))
        })
        .cloned();
    // The same value under another limit is the same traffic: the lead is
    // over the other values.
    let hottest_lead = hottest.as_ref().and_then(|hot| {
        let next = all_values()
            .filter(|value| value.domain != hot.domain || value.value != hot.value)
            .map(|value| value.hits_per_second)
            .fold(0.0_f64, f64::max);
        (next > 0.0).then(|| hot.hits_per_second / next)
    });
    let instances = states
        .iter()
        .map(|(service, state)| InstanceEvidence::of(service, state, now_ms))
        .collect();
    Evidence {
        at_ms: now_ms,
        services: states.iter().map(|(name, _)| name.clone()).collect(),
        limits,
        rejecting,
        rejected,
        busiest,
        heaviest,
        hottest,
        hottest_lead,
        instances,
        config_changes: config_changes
            .iter()
            .take(MAX_CONFIG_CHANGES)
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_value_is_rejected_since_the_first_tick_that_saw_it_until_one_does_not() {
        let doc = |over: u64| {
            json!({"limits": [{"domain": "api", "name": "per_org", "top_values": {"window_seconds": 60, "values": [
                {"value": "org=a", "entries": [], "hits": 40, "over": over, "error": 0},
                {"value": "org=b", "entries": [], "hits": 40, "over": 0, "error": 0},
            ]}}]})
        };
        let mut since = RejectingSince::default();
        since.observe([&doc(0)], 1_000);
        assert_eq!(since.get("api", "per_org", "org=a"), None);
        since.observe([&doc(5), &doc(0)], 2_000);
        since.observe([&doc(0), &doc(7)], 3_000);
        assert_eq!(since.get("api", "per_org", "org=a"), Some(2_000));
        assert_eq!(since.get("api", "per_org", "org=b"), None);
        // A tick that sees it admitted everywhere ends the episode.
        since.observe([&doc(0)], 4_000);
        assert_eq!(since.get("api", "per_org", "org=a"), None);
        since.observe([&doc(1)], 5_000);
        assert_eq!(since.get("api", "per_org", "org=a"), Some(5_000));
    }

    fn state(limits: serde_json::Value) -> State {
        serde_json::from_value(json!({
            "version": "test", "uptime_seconds": 1,
            "config": {"version": 3, "hash": "sha256:x", "domains": ["api"]},
            "store": {"backend": "memory", "healthy": true, "keys": 1, "capacity": 10,
                      "used_ratio": 0.1, "evictions": {"expired": 0, "lru": 0},
                      "failure_policy": "fail_open"},
            "limits": limits,
            "drain": {"draining": false},
            "events": {"oldest_seq": 0, "newest_seq": 0, "capacity": 10},
            "access_control": false
        }))
        .expect("a state")
    }

    /// A limit at `descriptors[node]` with key `tenant` and, when `own` is
    /// given, that value.
    fn limit_at(
        name: &str,
        unit: &str,
        quota: u64,
        node: usize,
        own: Option<&str>,
        values: serde_json::Value,
    ) -> serde_json::Value {
        let level = match own {
            Some(value) => json!({"key": "tenant", "value": value}),
            None => json!({"key": "tenant"}),
        };
        json!({"domain": "api", "name": name,
               "path": format!("descriptors[{node}].rate_limits[0]"),
               "descriptor": [level], "algorithm": "fixed_window",
               "requests_per_unit": quota, "unit": unit, "burst": 0, "shadow": false,
               "detailed_metric": false, "hits": 0, "within_limit": 0, "over_limit": 0,
               "near_limit": 0, "shadow_over_limit": 0, "hottest": [],
               "top_values": {"window_seconds": 100, "values": values}})
    }

    fn limit(name: &str, unit: &str, quota: u64, values: serde_json::Value) -> serde_json::Value {
        limit_at(name, unit, quota, 0, None, values)
    }

    fn value(tenant: &str, hits: u64, over: u64) -> serde_json::Value {
        json!({"value": format!("tenant={tenant}"),
               "entries": [{"key": "tenant", "value": tenant}],
               "hits": hits, "over": over, "error": 0})
    }

    #[test]
    fn merges_instances_and_ranks_the_rejecting_limit_and_value_first() {
        let a = state(json!([
            limit("per_min", "minute", 600, json!([value("x", 800, 0)])),
            limit(
                "per_day",
                "day",
                8640,
                json!([value("y", 400, 200), value("z", 50, 0)])
            ),
        ]));
        let b = state(json!([
            limit("per_min", "minute", 600, json!([])),
            limit("per_day", "day", 8640, json!([value("y", 400, 100)])),
        ]));
        // Six hours before midnight: 21,600 s left of the day's window.
        let evidence = build(&[("a".into(), a), ("b".into(), b)], &[], 64_800_000);
        assert_eq!(evidence.services, ["a", "b"]);
        let rejecting = evidence.rejecting.expect("a rejecting limit");
        assert_eq!(rejecting.name, "per_day");
        assert_eq!(rejecting.node, "descriptors[0]");
        assert_eq!(rejecting.quota_per_second, 0.1);
        let y = &rejecting.values[0];
        assert_eq!(y.value, "tenant=y");
        assert_eq!(y.hits_per_second, 8.0);
        assert_eq!(y.over_per_second, 3.0);
        assert_eq!(y.admitted_per_second, 5.0);
        assert_eq!(y.demand_ratio, 80.0);
        // The day's quota is spent; 3/s rejected for 21,600 s more needs
        // 64,800 on top of 8,640: 8.5x.
        assert_eq!(y.needed_ratio, 8.5);
        assert!(!y.own_limit);
        assert_eq!(y.key_requests_per_unit, 8640);
        assert!((y.share - 8.0 / 8.5).abs() < 1e-9);
        assert_eq!(evidence.rejected.len(), 1);
        assert_eq!(evidence.rejected[0].value, "tenant=y");
        // Busiest relative to its limit: y asks 80x per_day; x asks 0.8x
        // per_min. Heaviest in admitted hits: x (8/s) over y (5/s).
        assert_eq!(evidence.busiest.expect("busiest").value, "tenant=y");
        let heaviest = evidence.heaviest.expect("heaviest");
        assert_eq!(
            (heaviest.value.as_str(), heaviest.limit.as_str()),
            ("tenant=x", "per_min")
        );
        // A minute limit: the mean (480 a minute) and 4 deviations above it.
        assert!(
            (heaviest.needed_ratio - (480.0 + 4.0 * 480f64.sqrt()) / 600.0).abs() < 1e-9,
            "{}",
            heaviest.needed_ratio
        );
        assert_eq!(evidence.limits[1].name, "per_min");
        assert_eq!(evidence.instances.len(), 2);
    }

    #[test]
    fn a_values_own_limit_is_told_apart_and_measured_against_its_keys_quota() {
        let a = state(json!([
            limit("per_min", "minute", 600, json!([value("x", 100, 0)])),
            limit_at(
                "per_min@tenant=big",
                "minute",
                1200,
                1,
                Some("big"),
                json!([value("big", 3000, 1000)])
            ),
        ]));
        let evidence = build(&[("a".into(), a)], &[], 0);
        let big = &evidence.rejected[0];
        assert_eq!(big.limit, "per_min@tenant=big");
        assert_eq!(big.node, "descriptors[1]");
        assert!(big.own_limit);
        assert_eq!(big.key_requests_per_unit, 600);
        assert_eq!(big.requests_per_unit, 1200);
        // 30 hits/s against 20/s: 1800 a minute, and 4 deviations of a
        // minute's count (4 x sqrt(1800)) above it, against 1200.
        assert!(
            (big.needed_ratio - (1800.0 + 4.0 * 1800f64.sqrt()) / 1200.0).abs() < 1e-9,
            "{}",
            big.needed_ratio
        );
        assert_eq!(big.demand_ratio, 1.5);
        let x = &evidence
            .limits
            .iter()
            .find(|l| l.name == "per_min")
            .unwrap()
            .values[0];
        assert!(!x.own_limit);
        assert_eq!(x.key_requests_per_unit, 600);
    }

    #[test]
    fn the_hottest_value_asks_the_most_hits_admitted_or_not_and_leads_the_next_other_value() {
        // Everything rejected (the backend is down, fail_closed): heaviest
        // has nothing admitted to go by; hottest goes by what is asked.
        let a = state(json!([
            limit(
                "per_sec",
                "second",
                50,
                json!([value("hot", 4000, 4000), value("x", 500, 500)])
            ),
            limit("per_day", "day", 1_000_000, json!([value("hot", 4000, 0)])),
        ]));
        let b = state(json!([limit(
            "per_sec",
            "second",
            50,
            json!([value("hot", 2000, 2000), value("y", 800, 800)])
        )]));
        let evidence = build(&[("a".into(), a), ("b".into(), b)], &[], 0);
        let hottest = evidence.hottest.expect("a hottest value");
        assert_eq!(hottest.value, "tenant=hot");
        assert_eq!(hottest.hits_per_second, 60.0);
        // The same value under per_day is not the next value: y (8/s) is.
        assert_eq!(evidence.hottest_lead, Some(7.5));
        // One value alone: no lead to tell it hot by.
        let alone = state(json!([limit(
            "per_sec",
            "second",
            50,
            json!([value("hot", 4000, 0)])
        )]));
        let evidence = build(&[("a".into(), alone)], &[], 0);
        assert_eq!(evidence.hottest.expect("hottest").value, "tenant=hot");
        assert_eq!(evidence.hottest_lead, None);
        let quiet = state(json!([limit("per_sec", "second", 50, json!([]))]));
        let evidence = build(&[("a".into(), quiet)], &[], 0);
        assert!(evidence.hottest.is_none() && evidence.hottest_lead.is_none());
    }

    #[test]
    fn nothing_rejecting_is_none() {
        let a = state(json!([limit(
            "per_min",
            "minute",
            600,
            json!([value("x", 60, 0)])
        )]));
        let evidence = build(&[("a".into(), a)], &[], 0);
        assert!(evidence.rejecting.is_none());
        assert!(evidence.rejected.is_empty());
        assert_eq!(evidence.busiest.expect("busiest").demand_ratio, 0.06);
    }

    #[test]
    fn an_instance_says_how_long_its_store_has_been_steady_and_how_often_it_went_down() {
        let mut flapping = state(json!([]));
        flapping.store.backend = "redis".into();
        flapping.store.healthy = true;
        let change = |minute: u64, healthy: bool| StoreTransition {
            time_ms: minute * 60_000,
            healthy,
            detail: String::new(),
        };
        // Down at 10 (outside the hour at 100), then down at 50 and 80, up
        // again at 90.
        flapping.store.transitions = vec![
            change(10, false),
            change(15, true),
            change(50, false),
            change(55, true),
            change(80, false),
            change(90, true),
        ];
        let steady = state(json!([]));
        let evidence = build(
            &[("a".into(), flapping), ("b".into(), steady)],
            &[],
            100 * 60_000,
        );
        let a = &evidence.instances[0];
        assert_eq!(a.store_outages_last_hour, 2);
        assert_eq!(a.store_steady_ms, 10 * 60_000);
        assert_eq!(a.store_transitions.len(), 6);
        assert_eq!(a.store_failure_policy, "fail_open");
        // No change since it started: steady for its uptime (1 s).
        let b = &evidence.instances[1];
        assert_eq!(b.store_outages_last_hour, 0);
        assert_eq!(b.store_steady_ms, 1_000);
    }
}
