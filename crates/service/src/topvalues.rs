//! Which descriptor values a limit sees the most of: a bounded
//! heavy-hitters sketch per limit and minute (space-saving, Metwally et
//! al. 2005), kept by the service itself so `/v1/state` answers alike on
//! every store. Pure: the caller passes the time.
//!
//! Bounds: [`TOP_VALUES_PER_LIMIT`] values of at most
//! [`TOP_VALUE_MAX_BYTES`] each, in two minutes (the previous and the
//! current), whatever the traffic. A value that arrives when the sketch is
//! full displaces the one with the fewest hits and inherits its count as
//! `error` (so a count overstates by at most `error`, and every value with
//! more than `total / capacity` hits in a minute is kept).

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use floodgate_contract::state::{
    DescriptorEntry, TopValues, ValueUsage, TOP_VALUES_PER_LIMIT, TOP_VALUE_MAX_BYTES,
};

const NANOS_PER_MINUTE: u64 = 60_000_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

#[derive(Debug, Clone)]
struct Slot {
    hash: u64,
    entries: Vec<DescriptorEntry>,
    hits: u64,
    over: u64,
    error: u64,
}

#[derive(Debug, Clone, Default)]
struct Minute {
    /// Minutes since the clock's epoch.
    minute: u64,
    slots: Vec<Slot>,
}

impl Minute {
    fn record(&mut self, hash: u64, entries: &[Entry], hits: u64, over: u64) {
        if let Some(slot) = self
            .slots
            .iter_mut()
            .find(|slot| slot.hash == hash && same(&slot.entries, entries))
        {
            slot.hits += hits;
            slot.over += over;
            return;
        }
        let fresh = || -> Vec<DescriptorEntry> {
            entries
                .iter()
                .map(|entry| DescriptorEntry {
                    key: entry.key.clone(),
                    value: entry.value.clone(),
                })
                .collect()
        };
        if self.slots.len() < TOP_VALUES_PER_LIMIT {
            self.slots.push(Slot {
                hash,
                entries: fresh(),
                hits,
                over,
                error: 0,
            });
            return;
        }
        // Space-saving: the least counted value gives up its slot; the
        // newcomer inherits its count as the bound on its overstatement.
        let weight = |slot: &Slot| slot.hits.max(slot.over);
        let Some(least) = self
            .slots
            .iter_mut()
            .min_by_key(|slot| (weight(slot), slot.hash))
        else {
            return;
        };
        let inherited = weight(least);
        *least = Slot {
            hash,
            entries: fresh(),
            hits: inherited + hits,
            over: least.over.min(inherited) + over,
            error: inherited,
        };
    }
}

fn same(kept: &[DescriptorEntry], entries: &[Entry]) -> bool {
    kept.len() == entries.len()
        && kept
            .iter()
            .zip(entries)
            .all(|(a, b)| a.key == b.key && a.value == b.value)
}

/// The text of a value: `key=value|key=value`.
pub fn value_text(entries: &[DescriptorEntry]) -> String {
    let mut text = String::new();
    for (index, entry) in entries.iter().enumerate() {
        if index > 0 {
            text.push('|');
        }
        text.push_str(&entry.key);
        text.push('=');
        text.push_str(&entry.value);
    }
    text
}

/// One limit's sketch: the current minute and the one before.
#[derive(Debug, Clone, Default)]
pub struct TopSketch {
    current: Minute,
    previous: Minute,
}

impl TopSketch {
    /// Counts `hits` (already weighted when sampled) and `over` rejected
    /// hits of one descriptor value at `now` (nanoseconds of the service's
    /// clock). A value longer than [`TOP_VALUE_MAX_BYTES`] is not kept.
    pub fn record(&mut self, entries: &[Entry], hits: u64, over: u64, now: u64) {
        if hits == 0 && over == 0 {
            return;
        }
        let bytes: usize = entries
            .iter()
            .map(|entry| entry.key.len() + entry.value.len() + 2)
            .sum();
        if bytes > TOP_VALUE_MAX_BYTES {
            return;
        }
        self.roll(now / NANOS_PER_MINUTE);
        self.current.record(hash(entries), entries, hits, over);
    }

    fn roll(&mut self, minute: u64) {
        if minute == self.current.minute {
            return;
        }
        if minute < self.current.minute {
            // The clock went back (never on a monotonic clock): keep
            // counting in the current minute.
            return;
        }
        let current = std::mem::take(&mut self.current);
        self.previous = if minute == current.minute + 1 {
            current
        } else {
            Minute::default()
        };
        self.current.minute = minute;
    }

    /// The values at `now`, most hits first (then most rejected, then by
    /// text), over the previous minute and the current one so far.
    pub fn snapshot(&self, now: u64) -> TopValues {
        let minute = now / NANOS_PER_MINUTE;
        let window_seconds = 60 + (now % NANOS_PER_MINUTE) / NANOS_PER_SECOND;
        let mut merged: Vec<ValueUsage> = Vec::new();
        for kept in [&self.previous, &self.current] {
            if kept.minute + 1 < minute || kept.minute > minute || kept.slots.is_empty() {
                continue;
            }
            for slot in &kept.slots {
                match merged
                    .iter_mut()
                    .find(|value| value.entries == slot.entries)
                {
                    Some(value) => {
                        value.hits += slot.hits;
                        value.over += slot.over;
                        value.error += slot.error;
                    }
                    None => merged.push(ValueUsage {
                        value: value_text(&slot.entries),
                        entries: slot.entries.clone(),
                        hits: slot.hits,
                        over: slot.over,
                        error: slot.error,
                    }),
                }
            }
        }
        merged.sort_by(|a, b| {
            b.hits
                .cmp(&a.hits)
                .then(b.over.cmp(&a.over))
                .then(a.value.cmp(&b.value))
        });
        merged.truncate(TOP_VALUES_PER_LIMIT);
        TopValues {
            window_seconds,
            values: merged,
        }
    }
}

fn hash(entries: &[Entry]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for entry in entries {
        hasher.update(entry.key.as_bytes());
        hasher.update(&[0]);
        hasher.update(entry.value.as_bytes());
        hasher.update(&[0xff]);
    }
    hasher.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str) -> Entry {
        Entry {
            key: key.to_string(),
            value: value.to_string(),
        }
    }

    const SECOND: u64 = NANOS_PER_SECOND;

    #[test]
    fn counts_values_over_two_minutes_and_forgets_older_ones() {
        let mut sketch = TopSketch::default();
        let acme = [entry("tenant", "acme")];
        let beta = [entry("tenant", "beta")];
        sketch.record(&acme, 10, 0, 10 * SECOND);
        sketch.record(&beta, 4, 2, 20 * SECOND);
        sketch.record(&acme, 5, 1, 70 * SECOND);
        let top = sketch.snapshot(75 * SECOND);
        assert_eq!(top.window_seconds, 75);
        assert_eq!(top.values.len(), 2);
        assert_eq!(top.values[0].value, "tenant=acme");
        assert_eq!((top.values[0].hits, top.values[0].over), (15, 1));
        assert_eq!(top.values[0].entries[0].value, "acme");
        assert_eq!((top.values[1].hits, top.values[1].over), (4, 2));
        // Two minutes on, the first minute is gone; three on, all of it.
        let later = sketch.snapshot(125 * SECOND);
        assert_eq!(later.values.len(), 1);
        assert_eq!(later.values[0].hits, 5);
        assert!(sketch.snapshot(185 * SECOND).values.is_empty());
        // A record after a gap starts afresh.
        sketch.record(&beta, 1, 0, 300 * SECOND);
        let after_gap = sketch.snapshot(300 * SECOND);
        assert_eq!(after_gap.values.len(), 1);
        assert_eq!(after_gap.values[0].value, "tenant=beta");
    }

    #[test]
    fn a_heavy_hitter_survives_many_rare_values_and_the_bound_holds() {
        let mut sketch = TopSketch::default();
        let hot = [entry("tenant", "hot")];
        for round in 0..200u64 {
            sketch.record(&hot, 3, 1, SECOND);
            let rare = [entry("tenant", &format!("rare-{round}"))];
            sketch.record(&rare, 1, 0, SECOND);
        }
        let top = sketch.snapshot(2 * SECOND);
        assert_eq!(top.values.len(), TOP_VALUES_PER_LIMIT);
        assert_eq!(top.values[0].value, "tenant=hot");
        assert_eq!((top.values[0].hits, top.values[0].over), (600, 200));
        assert_eq!(top.values[0].error, 0);
        // Every other kept value's count is within its error of the truth
        // (each rare value was sent once).
        for value in &top.values[1..] {
            assert!(
                value.hits >= 1 && value.hits - value.error <= 1,
                "{value:?}"
            );
        }
    }

    #[test]
    fn overlong_values_are_not_kept() {
        let mut sketch = TopSketch::default();
        let long = [entry("tenant", &"x".repeat(TOP_VALUE_MAX_BYTES))];
        sketch.record(&long, 5, 5, SECOND);
        assert!(sketch.snapshot(SECOND).values.is_empty());
    }

    #[test]
    fn values_with_the_same_text_but_other_entries_stay_apart() {
        let mut sketch = TopSketch::default();
        sketch.record(&[entry("a", "b|c=d")], 1, 0, SECOND);
        sketch.record(&[entry("a", "b"), entry("c", "d")], 2, 0, SECOND);
        let top = sketch.snapshot(SECOND);
        assert_eq!(top.values.len(), 2);
        assert_eq!(top.values[0].entries.len(), 2);
        assert_eq!(top.values[1].entries.len(), 1);
    }
}
