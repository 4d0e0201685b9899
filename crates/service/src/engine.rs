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
use crate::traffic::Traffic;
use arc_swap::ArcSwap;
use bytes::BytesMut;
use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit as LimitInfo,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration as ProtoDuration;
use floodgate_contract::state::TOP_VALUES_HIT_SAMPLE;
use floodgate_limiter::table::{counter_key, Resolved, Table};
use floodgate_limiter::{Algorithm, Cost, LeaseId, Nanos, Rate, Unit, Verdict, NANOS_PER_SECOND};
use floodgate_store::{CounterStore, Item};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use smallvec::SmallVec;
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
    /// The recent check requests (disabled unless [`Engine::with_traffic`]).
    traffic: Traffic,
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
            traffic: Traffic::disabled(),
        }
    }

    /// The same engine recording the last `capacity` check requests (0:
    /// none) for `GET /v1/traffic` and dry-run replays.
    pub fn with_traffic(mut self, capacity: usize) -> Self {
        self.traffic = Traffic::new(capacity);
        self
    }

    /// The recorder of recent check requests.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Records a decided request (the APIs call this with the request they
    /// own once it is answered). Cheap and never waits.
    #[inline]
    pub fn record(&self, request: RateLimitRequest) {
        if self.traffic.enabled() {
            if self.snapshot.load().table.has_domain(&request.domain) {
                self.traffic.record(self.clock.now_ns(), request);
            } else {
                self.traffic.count_unknown_domain();
            }
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
        let mut response = RateLimitResponse::default();
        let leases = self.decide(request, releases, &mut response).await?;
        Ok(Checked { response, leases })
    }

    /// Decides one request like [`Engine::check`] (no releases) and appends
    /// the answer to `out` as an encoded `RateLimitResponse`: the bytes
    /// prost would write for [`Checked::response`], without building it
    /// first (gRPC's hot path). Returns the overall code. On error nothing
    /// is appended.
    pub async fn check_encoded(
        &self,
        request: &RateLimitRequest,
        out: &mut BytesMut,
    ) -> Result<Code, RequestError> {
        let mut encoder = ResponseEncoder {
            out,
            overall: Code::Unknown,
        };
        self.decide(request, &[], &mut encoder).await?;
        Ok(encoder.overall)
    }

    /// Decides one request, counts it, and writes the answer to `answer`;
    /// returns the concurrency lease acquired per descriptor. Nothing is
    /// written unless the request is decided.
    async fn decide<A: Answer>(
        &self,
        request: &RateLimitRequest,
        releases: &[Option<LeaseId>],
        answer: &mut A,
    ) -> Result<SmallVec<[Option<LeaseId>; 4]>, RequestError> {
        validate(request)?;
        let snapshot = self.snapshot.load();
        let table = &snapshot.table;
        let now = self.clock.now_ns();
        // The Redis store's hash tag: one request's keys share one slot.
        let tag = floodgate_store::domain_tag(&request.domain);
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
                    tag,
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
                            tag,
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
            // Called by the store only when it inserts a key: existing keys
            // cost nothing here.
            let describe = |position: usize| {
                crate::control::keys::key_info(table, request, &items, &owners, position)
            };
            self.store
                .decide(&items, now, &mut verdicts, &describe)
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
                let sampled = self.count(stats, item, verdict, admitted);
                let entries = &request.descriptors[owner].entries;
                let over = match item.cost {
                    Cost::Consume(hits) if !verdict.admitted && !item.shadow => hits,
                    _ => 0,
                };
                let limit = table.limit(item.limit as usize);
                if sampled > 0 || over > 0 {
                    // The entries that reach the limit's node: a value is
                    // what the config tells apart, not the rest of the
                    // request's descriptor.
                    let depth = limit.descriptor.len().min(entries.len());
                    stats.record_top(&entries[..depth], sampled, over, now);
                }
                if limit.detailed_metric {
                    let value = detailed_value(entries);
                    let over = !verdict.admitted && !item.shadow;
                    stats.record_detailed(&value, over, item.cost.consumed());
                }
            }
        }

        answer.overall(
            if admitted { Code::Ok } else { Code::OverLimit },
            descriptors,
        );
        let mut tightest: Option<(usize, &Verdict)> = None;
        for owner_choice in chosen.iter() {
            let Some(position) = *owner_choice else {
                answer.status(None);
                continue;
            };
            let item = &items[position];
            let verdict = &verdicts[position];
            let over = !verdict.admitted && !item.shadow;
            let name = if item.limit == OVERRIDE_LIMIT {
                ""
            } else {
                table.limit(item.limit as usize).name.as_str()
            };
            answer.status(Some(&Status {
                code: if over { Code::OverLimit } else { Code::Ok },
                name,
                requests_per_unit: clamp_u32(item.rate.requests_per_unit),
                unit: item.rate.unit.envoy_code(),
                remaining: clamp_u32(verdict.remaining),
                reset: proto_duration(verdict.reset_after),
            }));
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
            self.headers(answer, name, &item.rate, verdict);
        }
        Ok(leases)
    }

    /// Counts one item's hits in its limit's counters; answers the weight
    /// the top-values sketch counts them with (hits are sampled one in
    /// [`TOP_VALUES_HIT_SAMPLE`], decided by the limit's own hit counter,
    /// so sampling costs no extra atomic).
    fn count(&self, stats: &LimitStats, item: &Item, verdict: &Verdict, admitted: bool) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let Cost::Consume(hits) = item.cost else {
            return 0;
        };
        let before = stats.hits.fetch_add(hits, Relaxed);
        let sampled = (before.saturating_add(hits) / TOP_VALUES_HIT_SAMPLE
            - before / TOP_VALUES_HIT_SAMPLE)
            * TOP_VALUES_HIT_SAMPLE;
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
        sampled
    }

    fn headers<A: Answer>(&self, answer: &mut A, name: &str, rate: &Rate, verdict: &Verdict) {
        let window = rate.unit.seconds();
        let reset = verdict.reset_after.div_ceil(NANOS_PER_SECOND);
        let quota = rate.requests_per_unit;
        // One stack buffer formats every value (no String per header).
        let mut value = HeaderText::default();
        value.push_quoted(name);
        value.push_str(";q=");
        value.push_number(quota);
        value.push_str(";w=");
        value.push_number(window);
        answer.header("RateLimit-Policy", &value);
        value.clear();
        value.push_quoted(name);
        value.push_str(";r=");
        value.push_number(verdict.remaining);
        value.push_str(";t=");
        value.push_number(reset);
        answer.header("RateLimit", &value);
        if self.options.x_ratelimit_headers {
            for (key, number) in [
                ("X-RateLimit-Limit", quota),
                ("X-RateLimit-Remaining", verdict.remaining),
                ("X-RateLimit-Reset", reset),
            ] {
                value.clear();
                value.push_number(number);
                answer.header(key, &value);
            }
        }
    }
}

/// One descriptor's status, as both kinds of answer carry it.
struct Status<'a> {
    code: Code,
    /// The limit's name; empty for a request-supplied override.
    name: &'a str,
    requests_per_unit: u32,
    unit: i32,
    remaining: u32,
    reset: ProtoDuration,
}

/// Where [`Engine::decide`] writes an answer, in this order: the overall
/// code, one status per descriptor, then the headers. A
/// `RateLimitResponse` (for [`Engine::check`]) or protobuf bytes (for
/// [`Engine::check_encoded`]): one decision, two encodings of it.
trait Answer: Send {
    fn overall(&mut self, code: Code, descriptors: usize);
    /// `None`: the descriptor has no limit (OK, nothing to report).
    fn status(&mut self, status: Option<&Status<'_>>);
    fn header(&mut self, key: &str, value: &HeaderText);
}

impl Answer for RateLimitResponse {
    fn overall(&mut self, code: Code, descriptors: usize) {
        self.overall_code = code as i32;
        self.statuses.reserve(descriptors);
    }

    fn status(&mut self, status: Option<&Status<'_>>) {
        self.statuses.push(match status {
            None => DescriptorStatus {
                code: Code::Ok as i32,
                ..DescriptorStatus::default()
            },
            Some(status) => DescriptorStatus {
                code: status.code as i32,
                current_limit: Some(LimitInfo {
                    name: status.name.to_string(),
                    requests_per_unit: status.requests_per_unit,
                    unit: status.unit,
                }),
                limit_remaining: status.remaining,
                duration_until_reset: Some(status.reset),
                quota: None,
            },
        });
    }

    fn header(&mut self, key: &str, value: &HeaderText) {
        self.response_headers_to_add.push(HeaderValue {
            key: key.to_string(),
            value: value.to_string(),
            raw_value: Vec::new(),
        });
    }
}

/// Writes a `RateLimitResponse` in protobuf's wire format as it is decided:
/// fields in tag order and defaults omitted, as prost encodes them, so the
/// bytes equal prost's encoding of the response [`Engine::check`] builds
/// (tested below).
struct ResponseEncoder<'a> {
    out: &'a mut BytesMut,
    overall: Code,
}

// Field numbers of envoy.service.ratelimit.v3.RateLimitResponse and the
// messages it holds.
const RESPONSE_OVERALL_CODE: u32 = 1;
const RESPONSE_STATUSES: u32 = 2;
const RESPONSE_HEADERS_TO_ADD: u32 = 3;
const STATUS_CODE: u32 = 1;
const STATUS_CURRENT_LIMIT: u32 = 2;
const STATUS_LIMIT_REMAINING: u32 = 3;
const STATUS_DURATION_UNTIL_RESET: u32 = 4;
const LIMIT_REQUESTS_PER_UNIT: u32 = 1;
const LIMIT_UNIT: u32 = 2;
const LIMIT_NAME: u32 = 3;
const DURATION_SECONDS: u32 = 1;
const DURATION_NANOS: u32 = 2;
const HEADER_KEY: u32 = 1;
const HEADER_VALUE: u32 = 2;

impl Answer for ResponseEncoder<'_> {
    fn overall(&mut self, code: Code, descriptors: usize) {
        self.overall = code;
        self.out.reserve(16 + 48 * descriptors);
        put_varint_field(self.out, RESPONSE_OVERALL_CODE, code as u64);
    }

    fn status(&mut self, status: Option<&Status<'_>>) {
        let out = &mut *self.out;
        let Some(status) = status else {
            let code = varint_field_len(STATUS_CODE, Code::Ok as u64);
            put_message_head(out, RESPONSE_STATUSES, code);
            put_varint_field(out, STATUS_CODE, Code::Ok as u64);
            return;
        };
        // Enums and int32 are sign-extended to 64 bits on the wire.
        let unit = i64::from(status.unit) as u64;
        let seconds = status.reset.seconds as u64;
        let nanos = i64::from(status.reset.nanos) as u64;
        let limit = varint_field_len(LIMIT_REQUESTS_PER_UNIT, status.requests_per_unit.into())
            + varint_field_len(LIMIT_UNIT, unit)
            + bytes_field_len(LIMIT_NAME, status.name.len());
        let reset =
            varint_field_len(DURATION_SECONDS, seconds) + varint_field_len(DURATION_NANOS, nanos);
        let length = varint_field_len(STATUS_CODE, status.code as u64)
            + message_field_len(STATUS_CURRENT_LIMIT, limit)
            + varint_field_len(STATUS_LIMIT_REMAINING, status.remaining.into())
            + message_field_len(STATUS_DURATION_UNTIL_RESET, reset);
        put_message_head(out, RESPONSE_STATUSES, length);
        put_varint_field(out, STATUS_CODE, status.code as u64);
        put_message_head(out, STATUS_CURRENT_LIMIT, limit);
        put_varint_field(
            out,
            LIMIT_REQUESTS_PER_UNIT,
            status.requests_per_unit.into(),
        );
        put_varint_field(out, LIMIT_UNIT, unit);
        put_bytes_field(out, LIMIT_NAME, status.name.as_bytes());
        put_varint_field(out, STATUS_LIMIT_REMAINING, status.remaining.into());
        put_message_head(out, STATUS_DURATION_UNTIL_RESET, reset);
        put_varint_field(out, DURATION_SECONDS, seconds);
        put_varint_field(out, DURATION_NANOS, nanos);
    }

    fn header(&mut self, key: &str, value: &HeaderText) {
        let out = &mut *self.out;
        let value = value.as_bytes();
        let length =
            bytes_field_len(HEADER_KEY, key.len()) + bytes_field_len(HEADER_VALUE, value.len());
        put_message_head(out, RESPONSE_HEADERS_TO_ADD, length);
        put_bytes_field(out, HEADER_KEY, key.as_bytes());
        put_bytes_field(out, HEADER_VALUE, value);
    }
}

/// A varint field; proto3 omits a zero.
fn put_varint_field(out: &mut BytesMut, tag: u32, value: u64) {
    if value != 0 {
        encode_key(tag, WireType::Varint, out);
        encode_varint(value, out);
    }
}

fn varint_field_len(tag: u32, value: u64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(value)
    }
}

/// A string or bytes field; proto3 omits an empty one.
fn put_bytes_field(out: &mut BytesMut, tag: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        encode_key(tag, WireType::LengthDelimited, out);
        encode_varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
}

fn bytes_field_len(tag: u32, length: usize) -> usize {
    if length == 0 {
        0
    } else {
        message_field_len(tag, length)
    }
}

/// The key and length of an embedded message (always written when set,
/// even if empty); its fields follow.
fn put_message_head(out: &mut BytesMut, tag: u32, length: usize) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(length as u64, out);
}

fn message_field_len(tag: u32, length: usize) -> usize {
    key_len(tag) + encoded_len_varint(length as u64) + length
}

/// A header value being formatted, on the stack for usual lengths. Only
/// ASCII is ever written to it.
#[derive(Default)]
struct HeaderText(SmallVec<[u8; 96]>);

impl HeaderText {
    fn clear(&mut self) {
        self.0.clear();
    }

    fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn push_str(&mut self, text: &'static str) {
        self.0.extend_from_slice(text.as_bytes());
    }

    fn push_number(&mut self, mut number: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (number % 10) as u8;
            number /= 10;
            if number == 0 {
                break;
            }
        }
        self.0.extend_from_slice(&digits[start..]);
    }

    /// `"text"` as a structured-field string (RFC 8941): `\` and `"`
    /// escaped, characters it cannot carry replaced by `?`.
    fn push_quoted(&mut self, text: &str) {
        self.0.push(b'"');
        let plain = |byte: u8| matches!(byte, b' '..=b'~') && !matches!(byte, b'"' | b'\\');
        if text.bytes().all(plain) {
            self.0.extend_from_slice(text.as_bytes());
        } else {
            for ch in text.chars() {
                match ch {
                    '"' | '\\' => self.0.extend_from_slice(&[b'\\', ch as u8]),
                    ' '..='~' => self.0.push(ch as u8),
                    _ => self.0.push(b'?'),
                }
            }
        }
        self.0.push(b'"');
    }
}

impl std::fmt::Display for HeaderText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::RateLimitOverride;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
    use envoy_types::pb::google::protobuf::UInt64Value;
    use floodgate_limiter::config::{load, ConfigSource};
    use floodgate_store::MemoryStore;
    use prost::Message;

    const CONFIG: &str = r#"
domain: api
descriptors:
  - key: tenant
    rate_limits:
      - name: per_second
        unit: second
        requests_per_unit: 3
      - name: per_day
        unit: day
        requests_per_unit: 5000000000
  - key: ip
    rate_limit: {name: per_ip, unit: minute, requests_per_unit: 2}
    shadow_mode: true
  - key: bucket
    rate_limit:
      name: bucket
      algorithm: token_bucket
      unit: second
      requests_per_unit: 10
      burst: 4
  - key: generic
    rate_limit: {name: generic, unit: hour, requests_per_unit: 100}
  - key: premium
    rate_limit:
      name: "premium \"gold\" ü"
      unit: hour
      requests_per_unit: 1000
      replaces:
        - name: generic
  - key: internal
    rate_limit:
      unlimited: true
"#;

    fn engine(x_ratelimit_headers: bool) -> Engine<MemoryStore> {
        let table = match load(&[ConfigSource::new("test.yaml", CONFIG)]) {
            Ok(table) => table,
            Err(error) => panic!("{error}"),
        };
        // Half a second past a whole second, so resets have nanos.
        let clock = Arc::new(ManualClock::at_ns(1_767_225_600_500_000_000));
        let options = EngineOptions {
            x_ratelimit_headers,
        };
        Engine::new(table, MemoryStore::new(1000), clock, options)
    }

    fn descriptor(entries: &[(&str, &str)]) -> RateLimitDescriptor {
        RateLimitDescriptor {
            entries: entries
                .iter()
                .map(|(key, value)| Entry {
                    key: key.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            ..RateLimitDescriptor::default()
        }
    }

    fn request(descriptors: Vec<RateLimitDescriptor>) -> RateLimitRequest {
        RateLimitRequest {
            domain: "api".to_string(),
            descriptors,
            hits_addend: 0,
        }
    }

    /// Every shape of answer: unmatched, unlimited, several limits, shadow,
    /// token bucket, replaces, overrides (no name), over the limit, big
    /// numbers, names that need escaping.
    fn requests() -> Vec<RateLimitRequest> {
        let mut all = Vec::new();
        for _ in 0..5 {
            all.push(request(vec![descriptor(&[("tenant", "a")])]));
            all.push(request(vec![
                descriptor(&[("generic", "g")]),
                descriptor(&[("internal", "x")]),
                descriptor(&[("nothing", "y")]),
                descriptor(&[("ip", "10.0.0.1")]),
            ]));
            all.push(request(vec![descriptor(&[("bucket", "k")])]));
            all.push(request(vec![
                descriptor(&[("generic", "z")]),
                descriptor(&[("premium", "z")]),
            ]));
        }
        let mut overridden = request(vec![descriptor(&[("anything", "v")])]);
        overridden.descriptors[0].limit = Some(RateLimitOverride {
            requests_per_unit: 1,
            unit: 2,
        });
        all.push(overridden.clone());
        all.push(overridden);
        let mut heavy = request(vec![descriptor(&[("generic", "h")])]);
        heavy.descriptors[0].hits_addend = Some(UInt64Value { value: 1_000 });
        all.push(heavy);
        let mut many = request(vec![descriptor(&[("tenant", "many")])]);
        many.hits_addend = 300;
        all.push(many);
        all.push(request(vec![descriptor(&[("premium", "p")])]));
        let mut unknown = request(vec![descriptor(&[("tenant", "a")])]);
        unknown.domain = "nope".to_string();
        all.push(unknown);
        all
    }

    /// `check_encoded` writes exactly prost's encoding of what `check`
    /// answers, request after request (two engines in the same state).
    #[tokio::test]
    async fn encoded_answer_equals_prost_encoding_of_check() {
        for x_ratelimit_headers in [false, true] {
            let built = engine(x_ratelimit_headers);
            let encoded = engine(x_ratelimit_headers);
            for (index, request) in requests().iter().enumerate() {
                let checked = match built.check(request, &[]).await {
                    Ok(checked) => checked,
                    Err(error) => panic!("request {index}: {error}"),
                };
                let mut out = BytesMut::from(&b"prefix"[..]);
                let code = match encoded.check_encoded(request, &mut out).await {
                    Ok(code) => code,
                    Err(error) => panic!("request {index}: {error}"),
                };
                assert_eq!(
                    code as i32, checked.response.overall_code,
                    "request {index}"
                );
                assert_eq!(&out[..6], b"prefix", "appends");
                assert_eq!(
                    &out[6..],
                    &checked.response.encode_to_vec()[..],
                    "request {index}: {:?}",
                    checked.response
                );
            }
        }
    }

    #[tokio::test]
    async fn encoded_answer_refuses_like_check_and_writes_nothing() {
        let engine = engine(false);
        let mut out = BytesMut::new();
        let bad = request(vec![descriptor(&[("", "v")])]);
        let checked = engine.check(&bad, &[]).await.err();
        let encoded = engine.check_encoded(&bad, &mut out).await.err();
        assert!(checked.is_some());
        assert_eq!(checked, encoded);
        assert!(out.is_empty());
    }
}
