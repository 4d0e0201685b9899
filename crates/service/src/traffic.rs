//! The traffic recorder: a bounded ring of the most recent check requests
//! (gRPC and HTTP), for `GET /v1/traffic` and for the replay a dry run of a
//! config change answers (`floodgate_limiter::replay`).
//!
//! It sits on the hot path, so recording is cheap and never waits:
//!
//! - the request the API already decoded and owns is moved into the ring
//!   (no copy, no allocation); the request it displaces is freed after
//!   the slot is unlocked — the same free the request would have cost;
//! - one atomic sequence number per request picks the slot (`seq %
//!   capacity`), so the ring is sharded down to the slot: two writers
//!   only meet on one slot when one laps the other, and the sequence
//!   numbers give the window an exact order across threads;
//! - each slot is taken with `try_lock`: a slot held by a reader (or, in a
//!   tiny ring, by a writer a whole lap ahead) costs that request its
//!   record, counted as dropped, never a wait.
//!
//! Readers lock slot by slot and copy what they need; what a reader reads
//! is the most recent `capacity` sequence numbers minus those dropped.
//!
//! It is bounded in bytes as well as in requests: every record is sized
//! (its heap included, [`record_bytes`]); a request larger than
//! [`MAX_TRAFFIC_RECORD_BYTES`] is counted, not kept, and the records held
//! never add up to more than the budget ([`DEFAULT_TRAFFIC_BYTES`] unless
//! given): a request that would cross it frees its slot and is counted as
//! over budget. Requests for a domain the config does not know are counted
//! by the engine, never kept (no limit applies to them, and a flood of them
//! would push the window a dry run replays out of the ring).

use crate::limits::{DEFAULT_TRAFFIC_BYTES, MAX_TRAFFIC_CAPACITY, MAX_TRAFFIC_RECORD_BYTES};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use floodgate_contract::state::{
    TrafficDescriptor, TrafficEntry, TrafficOverride, TrafficPage, TrafficRequest, TrafficWindow,
};
use floodgate_limiter::replay::Recorded;
use floodgate_limiter::{Algorithm, Cost, Nanos, Rate, Unit};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// One recorded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its place in the order of recording, from 0.
    pub seq: u64,
    /// When it was decided (the service clock).
    pub time: Nanos,
    pub request: RateLimitRequest,
}

/// The recorder's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficFigures {
    pub capacity: u64,
    /// Requests recorded since start.
    pub recorded: u64,
    /// Requests not recorded because their slot was busy.
    pub dropped: u64,
    /// Bytes the records held take now, and the most they may take.
    pub bytes: u64,
    pub budget_bytes: u64,
    /// Requests not recorded because one was larger than
    /// [`MAX_TRAFFIC_RECORD_BYTES`].
    pub too_large: u64,
    /// Requests not recorded because the records held would have crossed
    /// the byte budget.
    pub over_budget: u64,
    /// Requests for a domain the config does not define: counted only.
    pub unknown_domain: u64,
}

/// The ring. A capacity of 0 records nothing.
pub struct Traffic {
    slots: Box<[Mutex<Option<Record>>]>,
    /// Sequence numbers handed out (recorded + dropped).
    next: AtomicU64,
    dropped: AtomicU64,
    /// Bytes held ([`record_bytes`] of every record in the ring).
    bytes: AtomicU64,
    budget: u64,
    too_large: AtomicU64,
    over_budget: AtomicU64,
    unknown_domain: AtomicU64,
}

impl std::fmt::Debug for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traffic")
            .field("figures", &self.figures())
            .finish_non_exhaustive()
    }
}

impl Traffic {
    /// A ring of `capacity` requests (capped at [`MAX_TRAFFIC_CAPACITY`])
    /// within [`DEFAULT_TRAFFIC_BYTES`].
    pub fn new(capacity: usize) -> Traffic {
        Traffic::with_budget(capacity, DEFAULT_TRAFFIC_BYTES)
    }

    /// A ring of `capacity` requests whose records take at most
    /// `budget_bytes`.
    pub fn with_budget(capacity: usize, budget_bytes: usize) -> Traffic {
        let capacity = capacity.min(MAX_TRAFFIC_CAPACITY);
        Traffic {
            slots: (0..capacity).map(|_| Mutex::new(None)).collect(),
            next: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            budget: budget_bytes as u64,
            too_large: AtomicU64::new(0),
            over_budget: AtomicU64::new(0),
            unknown_domain: AtomicU64::new(0),
        }
    }

    /// Counts a request for a domain the config does not define (the
    /// engine calls this instead of [`Traffic::record`]).
    #[inline]
    pub fn count_unknown_domain(&self) {
        if !self.slots.is_empty() {
            self.unknown_domain.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A recorder that records nothing.
    pub fn disabled() -> Traffic {
        Traffic::new(0)
    }

    pub fn enabled(&self) -> bool {
        !self.slots.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Records `request`, decided at `time`. Never waits.
    #[inline]
    pub fn record(&self, time: Nanos, request: RateLimitRequest) {
        if self.slots.is_empty() {
            return;
        }
        let size = record_bytes(&request);
        if size > MAX_TRAFFIC_RECORD_BYTES as u64 {
            self.too_large.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = &self.slots[(seq % self.slots.len() as u64) as usize];
        let displaced = match slot.try_lock() {
            // A writer a whole lap ahead got here first: keep its record.
            Some(guard) if guard.as_ref().is_some_and(|held| held.seq > seq) => None,
            Some(mut guard) => {
                // The slot's old record goes either way: its bytes first,
                // then the new one's if the budget has room for them.
                let old = guard.take();
                if let Some(old) = &old {
                    self.bytes
                        .fetch_sub(record_bytes(&old.request), Ordering::Relaxed);
                }
                let after = self.bytes.fetch_add(size, Ordering::Relaxed) + size;
                if after > self.budget {
                    self.bytes.fetch_sub(size, Ordering::Relaxed);
                    self.over_budget.fetch_add(1, Ordering::Relaxed);
                } else {
                    *guard = Some(Record { seq, time, request });
                }
                Some(old)
            }
            None => None,
        };
        match displaced {
            // Freed here, after the slot is unlocked.
            Some(old) => drop(old),
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn figures(&self) -> TrafficFigures {
        // `dropped` first: recorded never reads as more than it was.
        let dropped = self.dropped.load(Ordering::Relaxed);
        let over_budget = self.over_budget.load(Ordering::Relaxed);
        let handed_out = self.next.load(Ordering::Relaxed);
        TrafficFigures {
            capacity: self.slots.len() as u64,
            recorded: handed_out.saturating_sub(dropped + over_budget),
            dropped,
            bytes: self.bytes.load(Ordering::Relaxed),
            budget_bytes: self.budget,
            too_large: self.too_large.load(Ordering::Relaxed),
            over_budget,
            unknown_domain: self.unknown_domain.load(Ordering::Relaxed),
        }
    }

    /// The record with sequence number `seq`, if the ring still holds it,
    /// through `read` (under the slot's lock).
    fn read<T>(&self, seq: u64, read: impl FnOnce(&Record) -> T) -> Option<T> {
        let slot = &self.slots[(seq % self.slots.len() as u64) as usize];
        let guard = slot.lock();
        guard.as_ref().filter(|record| record.seq == seq).map(read)
    }

    /// The sequence numbers the ring may hold now, oldest first.
    fn span(&self) -> std::ops::Range<u64> {
        let end = self.next.load(Ordering::Acquire);
        end.saturating_sub(self.slots.len() as u64)..end
    }

    /// Up to `limit` of the most recent records with a sequence number
    /// below `before` (all when `None`) and of `domain` (any when `None`),
    /// newest first; and the sequence number to pass as `before` for the
    /// next (older) page, when the ring may hold more.
    pub fn recent(
        &self,
        limit: usize,
        before: Option<u64>,
        domain: Option<&str>,
    ) -> (Vec<Record>, Option<u64>) {
        let mut out = Vec::new();
        if self.slots.is_empty() || limit == 0 {
            return (out, None);
        }
        let span = self.span();
        let end = before.map_or(span.end, |before| before.min(span.end));
        let mut seq = end;
        while seq > span.start && out.len() < limit {
            seq -= 1;
            let record = self.read(seq, |record| {
                domain
                    .is_none_or(|domain| record.request.domain == domain)
                    .then(|| record.clone())
            });
            if let Some(Some(record)) = record {
                out.push(record);
            }
        }
        let next = (out.len() == limit && seq > span.start).then_some(seq);
        (out, next)
    }

    /// The time of the oldest and the newest record held, and how many are
    /// held (`(0, 0, 0)` when none).
    pub fn window(&self) -> (Nanos, Nanos, u64) {
        if self.slots.is_empty() {
            return (0, 0, 0);
        }
        let span = self.span();
        let mut held = 0;
        let mut oldest = None;
        let mut newest = 0;
        for seq in span {
            if let Some(time) = self.read(seq, |record| record.time) {
                held += 1;
                oldest.get_or_insert(time);
                newest = time;
            }
        }
        (oldest.unwrap_or(0), newest, held)
    }

    /// Every record held, oldest first (copies: the ring keeps recording
    /// meanwhile).
    pub fn snapshot(&self) -> Vec<Record> {
        if self.slots.is_empty() {
            return Vec::new();
        }
        let span = self.span();
        let mut out = Vec::with_capacity((span.end - span.start) as usize);
        for seq in span {
            if let Some(record) = self.read(seq, Record::clone) {
                out.push(record);
            }
        }
        out
    }
}

impl Traffic {
    /// The `GET /v1/traffic` answer: the window, and up to `limit` of the
    /// most recent requests below `before`, of `domain`, newest first.
    pub fn page(&self, limit: usize, before: Option<u64>, domain: Option<&str>) -> TrafficPage {
        let (requests, next_before) = self.recent(limit, before, domain);
        TrafficPage {
            window: self.window_document(),
            requests: requests.iter().map(Record::document).collect(),
            next_before,
        }
    }

    /// The window's figures, as the contract states them.
    pub fn window_document(&self) -> TrafficWindow {
        let figures = self.figures();
        let (start, end, held) = self.window();
        TrafficWindow {
            start_ms: start / 1_000_000,
            end_ms: end / 1_000_000,
            capacity: figures.capacity,
            held,
            recorded: figures.recorded,
            dropped: figures.dropped,
            bytes: figures.bytes,
            budget_bytes: figures.budget_bytes,
            too_large: figures.too_large,
            over_budget: figures.over_budget,
            unknown_domain: figures.unknown_domain,
        }
    }
}

/// What a record of `request` takes in memory: the record itself and every
/// heap allocation the request owns (by capacity), so the byte budget
/// bounds what the ring really holds.
pub fn record_bytes(request: &RateLimitRequest) -> u64 {
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
    use std::mem::size_of;
    let mut bytes = size_of::<Mutex<Option<Record>>>() + request.domain.capacity();
    bytes += request.descriptors.capacity() * size_of::<RateLimitDescriptor>();
    for descriptor in &request.descriptors {
        bytes += descriptor.entries.capacity() * size_of::<Entry>();
        for entry in &descriptor.entries {
            bytes += entry.key.capacity() + entry.value.capacity();
        }
        if descriptor.limit.is_some() {
            bytes += 64;
        }
    }
    bytes as u64
}

impl Record {
    /// The contract's form of the record.
    pub fn document(&self) -> TrafficRequest {
        TrafficRequest {
            seq: self.seq,
            time_ms: self.time / 1_000_000,
            domain: self.request.domain.clone(),
            descriptors: self
                .request
                .descriptors
                .iter()
                .map(|descriptor| TrafficDescriptor {
                    entries: descriptor
                        .entries
                        .iter()
                        .map(|entry| TrafficEntry {
                            key: entry.key.clone(),
                            value: entry.value.clone(),
                        })
                        .collect(),
                    hits_addend: descriptor.hits_addend.map(|addend| addend.value),
                    is_negative_hits: descriptor.is_negative_hits,
                    limit: descriptor.limit.map(|limit| TrafficOverride {
                        requests_per_unit: limit.requests_per_unit,
                        unit: Unit::from_envoy_code(limit.unit)
                            .map_or("unknown", Unit::as_str)
                            .to_string(),
                    }),
                })
                .collect(),
            hits_addend: self.request.hits_addend,
        }
    }
}

impl Recorded for Record {
    type Entry = Entry;

    fn time(&self) -> Nanos {
        self.time
    }

    fn domain(&self) -> &str {
        &self.request.domain
    }

    fn descriptor_count(&self) -> usize {
        self.request.descriptors.len()
    }

    fn entries(&self, index: usize) -> &[Entry] {
        self.request
            .descriptors
            .get(index)
            .map_or(&[], |descriptor| &descriptor.entries[..])
    }

    fn entry(entry: &Entry) -> (&str, &str) {
        (entry.key.as_str(), entry.value.as_str())
    }

    /// As the engine reads it: the descriptor's `hits_addend`, else the
    /// request's, 0 meaning 1; a refund when `is_negative_hits`.
    fn cost(&self, index: usize) -> Cost {
        let request_hits = match self.request.hits_addend {
            0 => 1,
            hits => u64::from(hits),
        };
        let Some(descriptor) = self.request.descriptors.get(index) else {
            return Cost::Consume(0);
        };
        let hits = descriptor
            .hits_addend
            .map_or(request_hits, |addend| addend.value);
        if descriptor.is_negative_hits {
            Cost::Refund(hits)
        } else {
            Cost::Consume(hits)
        }
    }

    fn override_rate(&self, index: usize) -> Option<Rate> {
        let limit = self.request.descriptors.get(index)?.limit?;
        let unit = Unit::from_envoy_code(limit.unit)?;
        Some(Rate::new(
            Algorithm::FixedWindow,
            u64::from(limit.requests_per_unit),
            unit,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;

    fn request(domain: &str, value: &str) -> RateLimitRequest {
        RateLimitRequest {
            domain: domain.to_string(),
            descriptors: vec![RateLimitDescriptor {
                entries: vec![Entry {
                    key: "k".to_string(),
                    value: value.to_string(),
                }],
                ..RateLimitDescriptor::default()
            }],
            hits_addend: 0,
        }
    }

    fn values(records: &[Record]) -> Vec<&str> {
        records
            .iter()
            .map(|record| record.request.descriptors[0].entries[0].value.as_str())
            .collect()
    }

    #[test]
    fn keeps_the_most_recent_in_order() {
        let traffic = Traffic::new(3);
        for (time, value) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            traffic.record(time as u64 * 1_000_000, request("api", value));
        }
        let figures = traffic.figures();
        assert_eq!(
            (figures.capacity, figures.recorded, figures.dropped),
            (3, 5, 0)
        );
        assert_eq!(values(&traffic.snapshot()), ["c", "d", "e"]);
        assert_eq!(traffic.window(), (2_000_000, 4_000_000, 3));
        let (page, next) = traffic.recent(2, None, None);
        assert_eq!(values(&page), ["e", "d"]);
        assert_eq!(next, Some(3));
        let (page, next) = traffic.recent(2, next, None);
        assert_eq!(values(&page), ["c"]);
        assert_eq!(next, None);
    }

    #[test]
    fn filters_by_domain() {
        let traffic = Traffic::new(10);
        for (index, domain) in ["a", "b", "a", "b", "a"].iter().enumerate() {
            traffic.record(0, request(domain, &index.to_string()));
        }
        let (page, next) = traffic.recent(10, None, Some("b"));
        assert_eq!(values(&page), ["3", "1"]);
        assert_eq!(next, None);
        let (page, next) = traffic.recent(1, None, Some("a"));
        assert_eq!(values(&page), ["4"]);
        assert_eq!(next, Some(4));
    }

    #[test]
    fn a_busy_slot_drops_instead_of_waiting() {
        let traffic = Traffic::new(2);
        traffic.record(0, request("api", "a"));
        let held = traffic.slots[1].lock();
        traffic.record(0, request("api", "b"));
        drop(held);
        traffic.record(0, request("api", "c"));
        let figures = traffic.figures();
        assert_eq!((figures.recorded, figures.dropped), (2, 1));
        assert_eq!(values(&traffic.snapshot()), ["c"]);
    }

    #[test]
    fn capacity_zero_records_nothing() {
        let traffic = Traffic::disabled();
        traffic.record(0, request("api", "a"));
        assert!(!traffic.enabled());
        assert_eq!(
            traffic.figures(),
            TrafficFigures {
                budget_bytes: DEFAULT_TRAFFIC_BYTES as u64,
                ..TrafficFigures::default()
            }
        );
        assert!(traffic.snapshot().is_empty());
        assert_eq!(traffic.recent(5, None, None).0.len(), 0);
    }

    #[test]
    fn the_byte_budget_and_the_per_request_cap_hold() {
        let one = record_bytes(&request("api", "aaaa"));
        // Room for three records of this size, in a ring of ten.
        let traffic = Traffic::with_budget(10, (one * 3) as usize);
        for value in ["aaaa", "bbbb", "cccc", "dddd", "eeee"] {
            traffic.record(0, request("api", value));
        }
        let figures = traffic.figures();
        assert_eq!((figures.bytes, figures.over_budget), (one * 3, 2));
        assert_eq!(values(&traffic.snapshot()), ["aaaa", "bbbb", "cccc"]);
        // Lapping the ring frees slots: newer records take their place.
        for _ in 0..10 {
            traffic.record(0, request("api", "ffff"));
        }
        assert!(traffic.figures().bytes <= one * 3);
        assert!(values(&traffic.snapshot())
            .iter()
            .all(|value| *value == "ffff"));

        let huge = "x".repeat(MAX_TRAFFIC_RECORD_BYTES);
        traffic.record(0, request("api", &huge));
        assert_eq!(traffic.figures().too_large, 1);
        assert!(traffic.figures().bytes <= one * 3);
        traffic.count_unknown_domain();
        assert_eq!(traffic.figures().unknown_domain, 1);
    }
}
