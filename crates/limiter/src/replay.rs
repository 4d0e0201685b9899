//! Replay: a recorded window of requests decided again, with fresh
//! counters, under two compiled configs (the current one and a candidate),
//! to say how many requests a config change would flip between allowed and
//! limited — before it is applied.
//!
//! Each request is decided exactly as the service decides it: its
//! descriptors matched with [`Table::resolve`], `replaces` applied,
//! request-supplied override limits (fixed window) kept, then all its
//! limits decided at once, all or nothing (a request is allowed only if
//! every non-shadow limit admits it; a limited request consumes from none
//! of its limits; refunds always apply). Items of one request that share a
//! counter key share one state, as in the stores. Shadow-mode limits never
//! limit.
//!
//! What a replay cannot know: the counters from before the window (every
//! key starts empty, so the first requests of a window are replayed more
//! leniently than they were decided), and requests the recorder dropped.
//!
//! Attribution: a request that flips from allowed to limited counts under
//! every limit of the candidate config that said no to it; one that flips
//! from limited to allowed, under every limit of the current config that
//! said no. A request can therefore count under several limits. Lowering a
//! limit can turn requests limited into allowed: with all or nothing, a
//! request the lowered limit now stops no longer consumes from its other
//! limits, which leaves room for later requests (and with varying costs, a
//! large request refused leaves room for a small one).
//!
//! Pure: no I/O, no clock (each request carries its time).

use crate::algo::{decide, Cost, KeyState, Verdict};
use crate::model::{Nanos, Rate};
use crate::table::{counter_key, counter_key_text, Resolved, Table};
use std::collections::HashMap;
use xxhash_rust::xxh3::Xxh3Default;

/// The most limits a [`Report`] lists in [`Report::flips`] (those with the
/// most flips; a config rarely has more flipping at once, and an answer
/// must stay small).
pub const MAX_LIMIT_FLIPS: usize = 100;
/// The most keys a [`Report`] lists in [`Report::top_keys`].
pub const TOP_KEYS: usize = 10;

/// One recorded request, as the replay reads it. Implemented by the
/// service for what its recorder keeps (without copying), and by
/// [`Request`].
pub trait Recorded {
    /// One descriptor entry.
    type Entry;
    /// When the request was decided.
    fn time(&self) -> Nanos;
    fn domain(&self) -> &str;
    fn descriptor_count(&self) -> usize;
    /// The entries of descriptor `index` (`index < descriptor_count()`).
    fn entries(&self, index: usize) -> &[Self::Entry];
    /// An entry's key and value.
    fn entry(entry: &Self::Entry) -> (&str, &str);
    /// What descriptor `index` asked: `Consume(hits)` or `Refund(hits)`.
    fn cost(&self, index: usize) -> Cost;
    /// The request-supplied override limit of descriptor `index`, if any
    /// (decided instead of the config's limits, the same under both
    /// configs).
    fn override_rate(&self, index: usize) -> Option<Rate>;
}

/// An owned recorded request (tests, tools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub time: Nanos,
    pub domain: String,
    pub descriptors: Vec<Descriptor>,
}

/// One descriptor of a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub entries: Vec<(String, String)>,
    pub cost: Cost,
    pub limit_override: Option<Rate>,
}

impl Descriptor {
    /// A descriptor asking one hit.
    pub fn new(entries: &[(&str, &str)]) -> Descriptor {
        Descriptor {
            entries: entries
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            cost: Cost::Consume(1),
            limit_override: None,
        }
    }

    /// The same descriptor with another cost.
    pub fn with_cost(mut self, cost: Cost) -> Descriptor {
        self.cost = cost;
        self
    }
}

impl Request {
    /// A request of one hit per descriptor.
    pub fn new(time: Nanos, domain: &str, descriptors: &[&[(&str, &str)]]) -> Request {
        Request {
            time,
            domain: domain.to_string(),
            descriptors: descriptors
                .iter()
                .map(|entries| Descriptor::new(entries))
                .collect(),
        }
    }
}

impl Recorded for Request {
    type Entry = (String, String);

    fn time(&self) -> Nanos {
        self.time
    }

    fn domain(&self) -> &str {
        &self.domain
    }

    fn descriptor_count(&self) -> usize {
        self.descriptors.len()
    }

    fn entries(&self, index: usize) -> &[(String, String)] {
        self.descriptors
            .get(index)
            .map_or(&[], |descriptor| &descriptor.entries[..])
    }

    fn entry(entry: &(String, String)) -> (&str, &str) {
        (&entry.0, &entry.1)
    }

    fn cost(&self, index: usize) -> Cost {
        self.descriptors
            .get(index)
            .map_or(Cost::Consume(0), |descriptor| descriptor.cost)
    }

    fn override_rate(&self, index: usize) -> Option<Rate> {
        self.descriptors
            .get(index)
            .and_then(|descriptor| descriptor.limit_override)
    }
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Requests replayed.
    pub requests: u64,
    /// Requests allowed under the current config.
    pub allowed_before: u64,
    /// Requests allowed under the candidate config.
    pub allowed_after: u64,
    /// Limits with at least one flip, most flips first (at most
    /// [`MAX_LIMIT_FLIPS`]).
    pub flips: Vec<LimitFlips>,
    /// Counter keys with the most flips, most first (at most
    /// [`TOP_KEYS`]).
    pub top_keys: Vec<KeyFlips>,
}

/// The flips one limit caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitFlips {
    pub domain: String,
    pub limit: String,
    /// Requests of the window this limit applied to, under either config.
    pub requests: u64,
    /// Requests allowed now that the candidate limits with this limit.
    pub allowed_to_limited: u64,
    /// Requests limited now by this limit that the candidate allows.
    pub limited_to_allowed: u64,
}

/// The flips of one counter key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFlips {
    /// The key's readable form, `domain|k1=v1|k2=v2#limit`.
    pub key: String,
    pub allowed_to_limited: u64,
    pub limited_to_allowed: u64,
}

/// One limit of one request, ready to decide.
#[derive(Debug, Clone, Copy)]
struct Item {
    key: u128,
    rate: Rate,
    cost: Cost,
    shadow: bool,
    /// The table index of the limit; `None` for an override.
    limit: Option<usize>,
    /// The request descriptor it belongs to.
    descriptor: usize,
}

/// One config's side of the replay: its table and the counters so far.
struct Side<'t> {
    table: &'t Table,
    states: HashMap<u128, KeyState>,
    items: Vec<Item>,
    verdicts: Vec<Verdict>,
    /// Per item, the index into `locals`.
    local_of: Vec<usize>,
    locals: Vec<(u128, KeyState)>,
}

impl<'t> Side<'t> {
    fn new(table: &'t Table) -> Side<'t> {
        Side {
            table,
            states: HashMap::new(),
            items: Vec::new(),
            verdicts: Vec::new(),
            local_of: Vec::new(),
            locals: Vec::new(),
        }
    }

    /// The items of `request` under this table, as the engine builds them.
    fn build<R: Recorded>(&mut self, request: &R) {
        let table = self.table;
        self.items.clear();
        let mut replaced: Vec<&str> = Vec::new();
        let domain = request.domain();
        for descriptor in 0..request.descriptor_count() {
            let entries = request.entries(descriptor);
            let cost = request.cost(descriptor);
            if let Some(rate) = request.override_rate(descriptor) {
                self.items.push(Item {
                    key: override_key(domain, entries, R::entry, &rate),
                    rate,
                    cost,
                    shadow: false,
                    limit: None,
                    descriptor,
                });
                continue;
            }
            if let Resolved::Limits(indexes) = table.resolve(domain, entries, R::entry) {
                for &index in indexes {
                    let limit = table.limit(index);
                    replaced.extend(limit.replaces.iter().map(String::as_str));
                    self.items.push(Item {
                        key: counter_key(limit, entries, R::entry),
                        rate: limit.rate,
                        cost,
                        shadow: limit.shadow,
                        limit: Some(index),
                        descriptor,
                    });
                }
            }
        }
        if !replaced.is_empty() {
            self.items.retain(|item| {
                item.limit
                    .is_none_or(|index| !replaced.contains(&table.limit(index).name.as_str()))
            });
        }
    }

    /// Decides the built items at `now`, all or nothing; fills `verdicts`.
    fn decide(&mut self, now: Nanos) -> bool {
        self.verdicts.clear();
        self.locals.clear();
        self.local_of.clear();
        for item in &self.items {
            let local = match self.locals.iter().position(|(key, _)| *key == item.key) {
                Some(local) => local,
                None => {
                    let state = self.states.get(&item.key).cloned().unwrap_or_default();
                    self.locals.push((item.key, state));
                    self.locals.len() - 1
                }
            };
            self.local_of.push(local);
        }
        let mut admitted = true;
        for (item, &local) in self.items.iter().zip(&self.local_of) {
            let verdict = decide(&item.rate, &mut self.locals[local].1, item.cost, now);
            admitted &= verdict.admitted || item.shadow;
            self.verdicts.push(verdict);
        }
        if admitted {
            for (key, state) in self.locals.drain(..) {
                self.states.insert(key, state);
            }
        } else {
            // The stored states are the originals: apply only refunds.
            for item in &self.items {
                if !matches!(item.cost, Cost::Consume(_)) {
                    if let Some(state) = self.states.get_mut(&item.key) {
                        decide(&item.rate, state, item.cost, now);
                    }
                }
            }
        }
        admitted
    }

    /// The items that said no (non-shadow, not admitted).
    fn blocking(&self) -> impl Iterator<Item = &Item> {
        self.items
            .iter()
            .zip(&self.verdicts)
            .filter(|(item, verdict)| !verdict.admitted && !item.shadow)
            .map(|(item, _)| item)
    }
}

fn override_key<E>(
    domain: &str,
    entries: &[E],
    kv: impl Fn(&E) -> (&str, &str),
    rate: &Rate,
) -> u128 {
    let mut hasher = Xxh3Default::new();
    hasher.update(b"override\0");
    hasher.update(&(domain.len() as u64).to_le_bytes());
    hasher.update(domain.as_bytes());
    for entry in entries {
        let (key, value) = kv(entry);
        for part in [key, value] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    }
    hasher.update(&rate.requests_per_unit.to_le_bytes());
    hasher.update(&rate.unit.seconds().to_le_bytes());
    hasher.digest128()
}

/// The limits of both tables by (domain, name): one tally slot each.
struct Slots {
    before: Vec<usize>,
    after: Vec<usize>,
    tallies: Vec<LimitFlips>,
}

impl Slots {
    fn new(before: &Table, after: &Table) -> Slots {
        let mut index: HashMap<(&str, &str), usize> = HashMap::new();
        let mut tallies = Vec::new();
        let mut sides = [Vec::new(), Vec::new()];
        for (slots, table) in sides.iter_mut().zip([before, after]) {
            slots.reserve(table.limits().len());
            for limit in table.limits() {
                let key = (limit.domain.as_str(), limit.name.as_str());
                let slot = *index.entry(key).or_insert_with(|| {
                    tallies.push(LimitFlips {
                        domain: limit.domain.clone(),
                        limit: limit.name.clone(),
                        requests: 0,
                        allowed_to_limited: 0,
                        limited_to_allowed: 0,
                    });
                    tallies.len() - 1
                });
                slots.push(slot);
            }
        }
        let [before, after] = sides;
        Slots {
            before,
            after,
            tallies,
        }
    }
}

/// Replays `requests`, in order, under `before` (the current config) and
/// `after` (the candidate), each with fresh counters.
pub fn replay<'r, R: Recorded + 'r>(
    before: &Table,
    after: &Table,
    requests: impl IntoIterator<Item = &'r R>,
) -> Report {
    let mut slots = Slots::new(before, after);
    let mut old = Side::new(before);
    let mut new = Side::new(after);
    let mut report = Report::default();
    let mut keys: HashMap<String, (u64, u64)> = HashMap::new();
    let mut touched: Vec<usize> = Vec::new();
    let mut blocking: Vec<(usize, String)> = Vec::new();
    for request in requests {
        let now = request.time();
        old.build(request);
        new.build(request);
        let allowed_before = old.decide(now);
        let allowed_after = new.decide(now);
        report.requests += 1;
        report.allowed_before += u64::from(allowed_before);
        report.allowed_after += u64::from(allowed_after);

        touched.clear();
        touched.extend(
            old.items
                .iter()
                .filter_map(|item| item.limit.map(|index| slots.before[index])),
        );
        touched.extend(
            new.items
                .iter()
                .filter_map(|item| item.limit.map(|index| slots.after[index])),
        );
        touched.sort_unstable();
        touched.dedup();
        for &slot in &touched {
            slots.tallies[slot].requests += 1;
        }

        let (side, slot_of, to_limited) = match (allowed_before, allowed_after) {
            (true, false) => (&new, &slots.after, true),
            (false, true) => (&old, &slots.before, false),
            _ => continue,
        };
        // Each request counts once per limit and once per key, however
        // many of its items said no.
        blocking.clear();
        blocking.extend(side.blocking().filter_map(|item| {
            let index = item.limit?;
            let key = counter_key_text(
                side.table.limit(index),
                request.entries(item.descriptor),
                R::entry,
            );
            Some((slot_of[index], key))
        }));
        touched.clear();
        touched.extend(blocking.iter().map(|(slot, _)| *slot));
        touched.sort_unstable();
        touched.dedup();
        for &slot in &touched {
            let tally = &mut slots.tallies[slot];
            if to_limited {
                tally.allowed_to_limited += 1;
            } else {
                tally.limited_to_allowed += 1;
            }
        }
        blocking.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        blocking.dedup_by(|a, b| a.1 == b.1);
        for (_, key) in blocking.drain(..) {
            let counts = keys.entry(key).or_default();
            if to_limited {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }

    let flips = |a: u64, b: u64| a.saturating_add(b);
    let mut limits: Vec<LimitFlips> = slots
        .tallies
        .into_iter()
        .filter(|tally| flips(tally.allowed_to_limited, tally.limited_to_allowed) > 0)
        .collect();
    limits.sort_by(|a, b| {
        flips(b.allowed_to_limited, b.limited_to_allowed)
            .cmp(&flips(a.allowed_to_limited, a.limited_to_allowed))
            .then_with(|| a.domain.cmp(&b.domain))
            .then_with(|| a.limit.cmp(&b.limit))
    });
    limits.truncate(MAX_LIMIT_FLIPS);
    report.flips = limits;

    let mut top: Vec<KeyFlips> = keys
        .into_iter()
        .map(|(key, (to_limited, to_allowed))| KeyFlips {
            key,
            allowed_to_limited: to_limited,
            limited_to_allowed: to_allowed,
        })
        .collect();
    top.sort_by(|a, b| {
        flips(b.allowed_to_limited, b.limited_to_allowed)
            .cmp(&flips(a.allowed_to_limited, a.limited_to_allowed))
            .then_with(|| a.key.cmp(&b.key))
    });
    top.truncate(TOP_KEYS);
    report.top_keys = top;
    report
}
