//! The decision engine: one rate-limit request in, one answer out,
//! independent of the wire (gRPC and HTTP both call [`Engine::check`]).
//!
//! A request is decided as a unit: every limit of every descriptor is
//! checked against the store in one call, and if any non-shadow limit
//! rejects, the request is OVER_LIMIT and consumes from none of its limits.

use crate::clock::Clock;
use crate::limits::{
    MAX_DESCRIPTORS, MAX_DOMAIN_BYTES, MAX_ENTRIES, MAX_KEY_BYTES, MAX_VALUE_BYTES,
    NEAR_LIMIT_PERCENT,
};
use crate::stats::{ErrorKind, LimitStats, LimitStatsRegistry, ServiceMetrics, Unmatched};
use arc_swap::ArcSwap;
use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit as LimitInfo,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration as ProtoDuration;
use floodgate_limiter::table::{counter_key, Resolved, Table};
use floodgate_limiter::{Algorithm, Cost, LeaseId, Nanos, Rate, Unit, Verdict, NANOS_PER_SECOND};
use floodgate_store::{CounterStore, Item};
use smallvec::SmallVec;
use std::fmt::Write as _;
use std::sync::Arc;
use xxhash_rust::xxh3::Xxh3;

/// A request the engine refuses, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RequestError {
    pub kind: ErrorKind,
    /// The offending field, e.g. `descriptors[0].entries[1].key`.
    pub field: String,
    pub message: String,
}

impl RequestError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> RequestError {
        RequestError {
            kind: ErrorKind::InvalidArgument,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A compiled config and the counters of its limits, swapped atomically.
#[derive(Debug)]
pub struct Snapshot {
    pub table: Table,
    /// `stats[i]` counts `table.limit(i)`.
    pub stats: Vec<Arc<LimitStats>>,
}

/// Options that change what answers carry.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineOptions {
    /// Also set `X-RateLimit-Limit`, `-Remaining` and `-Reset`.
    pub x_ratelimit_headers: bool,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub response: RateLimitResponse,
    /// For each descriptor, the concurrency lease it acquired (HTTP only
    /// reports it; gRPC callers release with negative hits).
    pub leases: SmallVec<[Option<LeaseId>; 4]>,
}

/// The decision engine, generic over the counter store.
pub struct Engine<S> {
    snapshot: ArcSwap<Snapshot>,
    registry: LimitStatsRegistry,
    store: S,
    clock: Arc<dyn Clock>,
    pub metrics: ServiceMetrics,
    options: EngineOptions,
}

impl<S> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// Inline capacity for per-request buffers: most requests carry one to a
/// few descriptors with one or two limits each, so they never allocate.
const INLINE: usize = 8;

/// The limit index used for request-supplied override limits (not in the
/// table, so never evicted by limit).
const OVERRIDE_LIMIT: u32 = u32::MAX;

impl<S: CounterStore> Engine<S> {
    pub fn new(table: Table, store: S, clock: Arc<dyn Clock>, options: EngineOptions) -> Self {
        let registry = LimitStatsRegistry::default();
        let snapshot = Snapshot {
            stats: stats_for(&registry, &table),
            table,
        };
        Engine {
            snapshot: ArcSwap::from_pointee(snapshot),
            registry,
            store,
            clock,
            metrics: ServiceMetrics::default(),
            options,
        }
    }

    /// The active config snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Replaces the config atomically: requests see the old or the new
    /// table, never a mix. Counters of limits whose identity did not change
    /// keep their state (their counter keys are unchanged).
    pub fn swap_table(&self, table: Table) {
        let snapshot = Snapshot {
            stats: stats_for(&self.registry, &table),
            table,
        };
        self.snapshot.store(Arc::new(snapshot));
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store's size and eviction figures, for metrics and health.
    pub fn store_figures(&self) -> crate::stats::StoreFigures {
        let stats = self.store.stats();
        crate::stats::StoreFigures {
            backend: stats.backend,
            keys: stats.keys,
            capacity: stats.capacity,
            evicted_expired: stats.evicted_expired,
            evicted_lru: stats.evicted_lru,
        }
    }

    pub fn registry(&self) -> &LimitStatsRegistry {
        &self.registry
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// Decides one request. `releases[i]`, when given, releases that
    /// concurrency lease for descriptor `i` instead of consuming.
    pub async fn check(
        &self,
        request: &RateLimitRequest,
        releases: &[Option<LeaseId>],
    ) -> Result<Checked, RequestError> {
        validate(request)?;
        let snapshot = self.snapshot.load();
        let table = &snapshot.table;
        let now = self.clock.now();
        let request_hits = if request.hits_addend == 0 {
            1
        } else {
            u64::from(request.hits_addend)
        };

        // Build one store item per (descriptor, limit).
        let mut items: SmallVec<[Item; INLINE]> = SmallVec::new();
        let mut owners: SmallVec<[u16; INLINE]> = SmallVec::new();
        let mut replaced: SmallVec<[&str; 2]> = SmallVec::new();
        for (index, descriptor) in request.descriptors.iter().enumerate() {
            let owner = u16::try_from(index).unwrap_or(u16::MAX);
            let hits = descriptor
                .hits_addend
                .map_or(request_hits, |addend| addend.value);
            let cost = match releases.get(index).copied().flatten() {
                Some(lease) => Cost::Release(lease),
                None if descriptor.is_negative_hits => Cost::Refund(hits),
                None => Cost::Consume(hits),
            };
            let entries = &descriptor.entries[..];
            if let Some(limit) = descriptor.limit {
                let field = || format!("descriptors[{index}].limit.unit");
                let unit = Unit::from_envoy_code(limit.unit).ok_or_else(|| {
                    RequestError::invalid(field(), format!("unknown unit code {}", limit.unit))
                })?;
                let rate = Rate::new(
                    Algorithm::FixedWindow,
                    u64::from(limit.requests_per_unit),
                    unit,
                );
                items.push(Item {
                    key: override_key(&request.domain, entries, &rate),
                    limit: OVERRIDE_LIMIT,
                    rate,
                    cost,
                    shadow: false,
                });
                owners.push(owner);
                continue;
            }
            match table.resolve(&request.domain, entries, entry_kv) {
                Resolved::UnknownDomain => self.metrics.unmatched(Unmatched::UnknownDomain),
                Resolved::NoMatch => self.metrics.unmatched(Unmatched::NoMatch),
                Resolved::Unlimited => self.metrics.unmatched(Unmatched::Unlimited),
                Resolved::Limits(indexes) => {
                    for &limit_index in indexes {
                        let limit = table.limit(limit_index);
                        replaced.extend(limit.replaces.iter().map(String::as_str));
                        items.push(Item {
                            key: counter_key(limit, entries, entry_kv),
                            limit: u32::try_from(limit_index).unwrap_or(OVERRIDE_LIMIT),
                            rate: limit.rate,
                            cost,
                            shadow: limit.shadow,
                        });
                        owners.push(owner);
                    }
                }
            }
        }
        if !replaced.is_empty() {
            // A limit named in another matched limit's `replaces` no longer
            // applies to this request.
            let kept: SmallVec<[(Item, u16); INLINE]> = items
                .iter()
                .zip(&owners)
                .filter(|(item, _)| {
                    item.limit == OVERRIDE_LIMIT
                        || !replaced.contains(&table.limit(item.limit as usize).name.as_str())
                })
                .map(|(item, owner)| (*item, *owner))
                .collect();
            items = kept.iter().map(|(item, _)| *item).collect();
            owners = kept.iter().map(|(_, owner)| *owner).collect();
        }

        let mut verdicts: Vec<Verdict> = Vec::with_capacity(items.len());
        let admitted = if items.is_empty() {
            true
        } else {
            self.store
                .decide(&items, now, &mut verdicts)
                .await
                .map_err(|error| RequestError {
                    kind: ErrorKind::Store,
                    field: "store".to_string(),
                    message: error.to_string(),
                })?
        };

        // Statuses: per descriptor, the limit that rejected it, else the one
        // with the least quota left.
        let descriptors = request.descriptors.len();
        let mut chosen: SmallVec<[Option<usize>; 4]> = SmallVec::from_elem(None, descriptors);
        let mut leases: SmallVec<[Option<LeaseId>; 4]> = SmallVec::from_elem(None, descriptors);
        for (position, (item, verdict)) in items.iter().zip(&verdicts).enumerate() {
            let owner = usize::from(owners[position]);
            if verdict.lease.is_some() && admitted {
                leases[owner] = verdict.lease;
            }
            let blocks = |p: usize| !verdicts[p].admitted && !items[p].shadow;
            let better = match chosen[owner] {
                None => true,
                Some(current) => {
                    (blocks(position) && !blocks(current))
                        || (blocks(position) == blocks(current)
                            && verdict.remaining < verdicts[current].remaining)
                }
            };
            if better {
                chosen[owner] = Some(position);
            }
            if item.limit != OVERRIDE_LIMIT {
                let stats = &snapshot.stats[item.limit as usize];
                self.count(stats, item, verdict, admitted);
                let limit = table.limit(item.limit as usize);
                if limit.detailed_metric {
                    let entries = &request.descriptors[owner].entries;
                    let value = detailed_value(entries);
                    let over = !verdict.admitted && !item.shadow;
                    stats.record_detailed(&value, over, item.cost.consumed());
                }
            }
        }

        let mut response = RateLimitResponse {
            overall_code: if admitted { Code::Ok } else { Code::OverLimit } as i32,
            statuses: Vec::with_capacity(descriptors),
            ..RateLimitResponse::default()
        };
        let mut tightest: Option<(usize, &Verdict)> = None;
        for owner_choice in chosen.iter() {
            let Some(position) = *owner_choice else {
                response.statuses.push(DescriptorStatus {
                    code: Code::Ok as i32,
                    ..DescriptorStatus::default()
                });
                continue;
            };
            let item = &items[position];
            let verdict = &verdicts[position];
            let over = !verdict.admitted && !item.shadow;
            let name = if item.limit == OVERRIDE_LIMIT {
                String::new()
            } else {
                table.limit(item.limit as usize).name.clone()
            };
            response.statuses.push(DescriptorStatus {
                code: if over { Code::OverLimit } else { Code::Ok } as i32,
                current_limit: Some(LimitInfo {
                    name,
                    requests_per_unit: clamp_u32(item.rate.requests_per_unit),
                    unit: item.rate.unit.envoy_code(),
                }),
                limit_remaining: clamp_u32(verdict.remaining),
                duration_until_reset: Some(proto_duration(verdict.reset_after)),
                quota: None,
            });
            let tighter = match tightest {
                None => true,
                Some((current, best)) => {
                    let current_over = !best.admitted && !items[current].shadow;
                    (over && !current_over)
                        || (over == current_over && verdict.remaining < best.remaining)
                }
            };
            if tighter {
                tightest = Some((position, verdict));
            }
        }
        if let Some((position, verdict)) = tightest {
            let item = &items[position];
            let name = if item.limit == OVERRIDE_LIMIT {
                "override"
            } else {
                table.limit(item.limit as usize).name.as_str()
            };
            self.headers(&mut response, name, &item.rate, verdict);
        }
        Ok(Checked { response, leases })
    }

    fn count(&self, stats: &LimitStats, item: &Item, verdict: &Verdict, admitted: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let Cost::Consume(hits) = item.cost else {
            return;
        };
        stats.hits.fetch_add(hits, Relaxed);
        if !verdict.admitted {
            if item.shadow {
                stats.shadow_over_limit.fetch_add(hits, Relaxed);
            } else {
                stats.over_limit.fetch_add(hits, Relaxed);
            }
        }
        if admitted && (verdict.admitted || item.shadow) {
            stats.within_limit.fetch_add(hits, Relaxed);
            let quota = item.rate.requests_per_unit.max(item.rate.burst).max(1);
            let used = quota.saturating_sub(verdict.remaining);
            if u128::from(used) * 100 >= u128::from(quota) * u128::from(NEAR_LIMIT_PERCENT) {
                stats.near_limit.fetch_add(hits, Relaxed);
            }
        }
    }

    fn headers(
        &self,
        response: &mut RateLimitResponse,
        name: &str,
        rate: &Rate,
        verdict: &Verdict,
    ) {
        let window = rate.unit.seconds();
        let reset = verdict.reset_after.div_ceil(NANOS_PER_SECOND);
        let quota = rate.requests_per_unit;
        let mut policy = String::with_capacity(48);
        policy.push('"');
        push_sf_string(&mut policy, name);
        let _ = write!(policy, "\";q={quota};w={window}");
        let mut current = String::with_capacity(48);
        current.push('"');
        push_sf_string(&mut current, name);
        let _ = write!(current, "\";r={};t={reset}", verdict.remaining);
        let headers = &mut response.response_headers_to_add;
        headers.push(header("RateLimit-Policy", policy));
        headers.push(header("RateLimit", current));
        if self.options.x_ratelimit_headers {
            headers.push(header("X-RateLimit-Limit", quota.to_string()));
            headers.push(header(
                "X-RateLimit-Remaining",
                verdict.remaining.to_string(),
            ));
            headers.push(header("X-RateLimit-Reset", reset.to_string()));
        }
    }
}

fn stats_for(registry: &LimitStatsRegistry, table: &Table) -> Vec<Arc<LimitStats>> {
    table
        .limits()
        .iter()
        .map(|limit| registry.get(&limit.domain, &limit.name))
        .collect()
}

fn entry_kv(entry: &Entry) -> (&str, &str) {
    (entry.key.as_str(), entry.value.as_str())
}

fn header(key: &str, value: String) -> HeaderValue {
    HeaderValue {
        key: key.to_string(),
        value,
        raw_value: Vec::new(),
    }
}

/// Escapes a structured-field string body (RFC 8941: `\` and `"`), dropping
/// characters it cannot carry.
fn push_sf_string(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '"' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            ' '..='~' => out.push(ch),
            _ => out.push('?'),
        }
    }
}

fn detailed_value(entries: &[Entry]) -> String {
    let mut value = String::new();
    for (index, entry) in entries.iter().enumerate() {
        if index > 0 {
            value.push('.');
        }
        value.push_str(&entry.key);
        if !entry.value.is_empty() {
            value.push('_');
            value.push_str(&entry.value);
        }
    }
    value
}

fn override_key(domain: &str, entries: &[Entry], rate: &Rate) -> u128 {
    let mut hasher = Xxh3::new();
    hasher.update(b"override\0");
    hasher.update(&(domain.len() as u64).to_le_bytes());
    hasher.update(domain.as_bytes());
    for entry in entries {
        for part in [&entry.key, &entry.value] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    }
    hasher.update(&rate.requests_per_unit.to_le_bytes());
    hasher.update(&rate.unit.seconds().to_le_bytes());
    hasher.digest128()
}

fn clamp_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn proto_duration(nanos: Nanos) -> ProtoDuration {
    ProtoDuration {
        seconds: i64::try_from(nanos / NANOS_PER_SECOND).unwrap_or(i64::MAX),
        nanos: i32::try_from(nanos % NANOS_PER_SECOND).unwrap_or(0),
    }
}

/// Checks the request's shape before anything is looked up.
pub fn validate(request: &RateLimitRequest) -> Result<(), RequestError> {
    if request.domain.is_empty() {
        return Err(RequestError::invalid("domain", "must not be empty"));
    }
    if request.domain.len() > MAX_DOMAIN_BYTES {
        return Err(RequestError::invalid(
            "domain",
            format!(
                "{} bytes, more than the {MAX_DOMAIN_BYTES} allowed",
                request.domain.len()
            ),
        ));
    }
    if request.descriptors.is_empty() {
        return Err(RequestError::invalid("descriptors", "must not be empty"));
    }
    if request.descriptors.len() > MAX_DESCRIPTORS {
        return Err(RequestError::invalid(
            "descriptors",
            format!(
                "{} descriptors, more than the {MAX_DESCRIPTORS} allowed",
                request.descriptors.len()
            ),
        ));
    }
    for (index, descriptor) in request.descriptors.iter().enumerate() {
        if descriptor.entries.is_empty() {
            return Err(RequestError::invalid(
                format!("descriptors[{index}].entries"),
                "must not be empty",
            ));
        }
        if descriptor.entries.len() > MAX_ENTRIES {
            return Err(RequestError::invalid(
                format!("descriptors[{index}].entries"),
                format!(
                    "{} entries, more than the {MAX_ENTRIES} allowed",
                    descriptor.entries.len()
                ),
            ));
        }
        for (position, entry) in descriptor.entries.iter().enumerate() {
            let field = |name: &str| format!("descriptors[{index}].entries[{position}].{name}");
            if entry.key.is_empty() {
                return Err(RequestError::invalid(field("key"), "must not be empty"));
            }
            if entry.key.len() > MAX_KEY_BYTES {
                return Err(RequestError::invalid(
                    field("key"),
                    format!(
                        "{} bytes, more than the {MAX_KEY_BYTES} allowed",
                        entry.key.len()
                    ),
                ));
            }
            if entry.value.len() > MAX_VALUE_BYTES {
                return Err(RequestError::invalid(
                    field("value"),
                    format!(
                        "{} bytes, more than the {MAX_VALUE_BYTES} allowed",
                        entry.value.len()
                    ),
                ));
            }
        }
        if let Some(limit) = descriptor.limit {
            if Unit::from_envoy_code(limit.unit).is_none() {
                return Err(RequestError::invalid(
                    format!("descriptors[{index}].limit.unit"),
                    format!("unknown unit code {}", limit.unit),
                ));
            }
        }
    }
    Ok(())
}
