//! The in-process counter store: sharded, bounded, O(1) per check.
//!
//! Keys are spread over a power-of-two number of shards. Each shard is one
//! [`parking_lot::Mutex`] (padded to its own cache lines) around a table:
//!
//! - an index `HashMap<u128, u32>` from key to slab slot, hashed by passing
//!   the key's low 64 bits through (keys are already well-mixed hashes);
//! - a slab `Vec<Entry>` whose free slots form a singly linked free list;
//! - an intrusive doubly linked LRU list through the entries (`prev`/`next`
//!   slot numbers), most recently used at the head.
//!
//! A decision locks the shards of its keys (in ascending shard order, so two
//! requests can never deadlock), runs the limiter's pure algorithms and
//! moves the touched entries to the head of their LRU list.
//!
//! # Bounds
//!
//! The store holds at most [`MemoryStore::capacity`] keys, split evenly over
//! the shards (at least one per shard). A shard that is full and must insert
//! a new key evicts one first: an expired entry (its state is equivalent to
//! an empty one) among the [`EVICTION_SCAN`] least recently used, or else the
//! least recently used entry. Keys are only inserted when a request actually
//! consumed from them, so check-only (`Consume(0)`) requests, refunds and
//! rejected requests on unknown keys never take memory.
//!
//! An entry whose state has expired but that is still in the table needs no
//! special handling: the limiter treats an expired state exactly like an
//! empty one (windows roll over, buckets refill, leases lapse). It is kept
//! as is, so concurrency lease ids keep increasing for its key.

use crate::{
    undescribed, CounterStore, Describe, HotKey, Item, KeyInfo, KeySelect, LimitUsage, StoreError,
    StoreStats,
};
use floodgate_limiter::{decide, Cost, KeyState, Nanos, Rate, Verdict};
use parking_lot::{Mutex, MutexGuard};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::mem;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Shards per available CPU. A thread finds its shard held by another only
/// when both pick the same one; with `4 × CPUs` shards and every CPU busy,
/// that happens to at most about a quarter of the lock attempts of one
/// instant, and each shard costs only a few hundred bytes when empty.
pub const SHARDS_PER_CPU: usize = 4;

/// How many entries, from the least recently used end, a full shard looks
/// at for an expired one before it evicts the least recently used entry.
/// Small enough that an insert stays O(1) (a few cache misses), large enough
/// that stale keys usually go before live ones.
pub const EVICTION_SCAN: usize = 16;

/// The most shards a store will use, whatever it is asked for.
const MAX_SHARDS: usize = 1 << 16;

/// "No slot": the end of a list.
const NIL: u32 = u32::MAX;

/// The most keys one shard can hold (slots are `u32`, `NIL` excluded).
const MAX_SHARD_KEYS: u64 = (u32::MAX - 1) as u64;

/// Keys the store evicted to stay within capacity, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evictions {
    /// Entries whose state had expired (equivalent to empty).
    pub expired: u64,
    /// Live entries evicted because they were the least recently used.
    pub lru: u64,
}

/// Why one entry was evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evicted {
    Expired,
    Lru,
}

/// Hashes a `u128` key by taking its low 64 bits: keys are already
/// well-mixed hashes, so mixing them again would only cost time.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }

    /// Not used for `u128` keys; a plain FNV-1a fold for completeness.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type KeyIndex = HashMap<u128, u32, BuildHasherDefault<KeyHasher>>;

/// One key's counter, in a shard's slab.
struct Entry {
    key: u128,
    state: KeyState,
    /// The rate the state was last decided under (to compute expiry and
    /// usage).
    rate: Rate,
    /// When the state becomes equivalent to empty.
    expires_at: Nanos,
    /// The limit's index in the config table.
    limit: u32,
    /// What the caller told about the key when it was inserted (boxed: one
    /// pointer per entry, and only introspection reads it).
    info: Option<Box<KeyInfo>>,
    /// The more recently used neighbour (`NIL` at the head).
    prev: u32,
    /// The less recently used neighbour (`NIL` at the tail); for a free
    /// slot, the next free slot.
    next: u32,
}

/// What one shard's lock protects.
struct Table {
    index: KeyIndex,
    slab: Vec<Entry>,
    /// The first free slot (`NIL` when the slab has none).
    free: u32,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    len: u32,
    cap: u32,
    /// The latest `now` a decision brought; capacity changes judge expiry
    /// by it, so the store itself never reads a clock.
    seen: Nanos,
}

impl Table {
    fn new(cap: u32) -> Table {
        Table {
            index: KeyIndex::default(),
            slab: Vec::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
            len: 0,
            cap,
            seen: 0,
        }
    }

    #[inline]
    fn slot(&self, key: u128) -> Option<u32> {
        self.index.get(&key).copied()
    }

    #[inline]
    fn entry(&mut self, slot: u32) -> &mut Entry {
        &mut self.slab[slot as usize]
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next) = {
            let entry = self.entry(slot);
            (entry.prev, entry.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.entry(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.entry(next).prev = prev;
        }
    }

    fn push_front(&mut self, slot: u32) {
        let head = self.head;
        let entry = self.entry(slot);
        entry.prev = NIL;
        entry.next = head;
        if head == NIL {
            self.tail = slot;
        } else {
            self.entry(head).prev = slot;
        }
        self.head = slot;
    }

    /// Marks `slot` as the most recently used.
    #[inline]
    fn touch(&mut self, slot: u32) {
        if self.head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
    }

    /// Records that `slot` was just decided under `rate` for `limit`:
    /// refreshes its expiry and LRU position.
    #[inline]
    fn refresh(&mut self, slot: u32, rate: Rate, limit: u32) {
        let entry = self.entry(slot);
        entry.rate = rate;
        entry.limit = limit;
        entry.expires_at = entry.state.expires_at(&rate);
        self.touch(slot);
    }

    /// Decides one item against the state in `slot`, in place.
    #[inline]
    fn decide_in_place(&mut self, slot: u32, item: &Item, now: Nanos) -> Verdict {
        let verdict = decide(&item.rate, &mut self.entry(slot).state, item.cost, now);
        self.refresh(slot, item.rate, item.limit);
        verdict
    }

    /// Inserts a key that is not in the table, evicting one entry first if
    /// the table is full.
    fn insert(
        &mut self,
        key: u128,
        limit: u32,
        rate: Rate,
        state: KeyState,
        now: Nanos,
        info: Option<KeyInfo>,
    ) -> Option<Evicted> {
        let evicted = (self.len >= self.cap).then(|| self.evict_one(now));
        let entry = Entry {
            key,
            expires_at: state.expires_at(&rate),
            state,
            rate,
            limit,
            info: info.map(Box::new),
            prev: NIL,
            next: NIL,
        };
        let slot = if self.free == NIL {
            let slot = u32::try_from(self.slab.len()).expect("shard slots fit u32");
            self.slab.push(entry);
            slot
        } else {
            let slot = self.free;
            self.free = self.entry(slot).next;
            *self.entry(slot) = entry;
            slot
        };
        self.index.insert(key, slot);
        self.push_front(slot);
        self.len += 1;
        evicted
    }

    /// Drops the entry in `slot` and frees the slot.
    fn remove(&mut self, slot: u32) {
        self.unlink(slot);
        let free = self.free;
        let entry = self.entry(slot);
        let key = entry.key;
        entry.state = KeyState::Empty;
        entry.info = None;
        entry.prev = NIL;
        entry.next = free;
        self.free = slot;
        self.index.remove(&key);
        self.len -= 1;
    }

    /// Evicts one entry from a non-empty table: an expired one among the
    /// [`EVICTION_SCAN`] least recently used, else the least recently used.
    fn evict_one(&mut self, now: Nanos) -> Evicted {
        let mut slot = self.tail;
        for _ in 0..EVICTION_SCAN {
            if slot == NIL {
                break;
            }
            let entry = &self.slab[slot as usize];
            if entry.expires_at <= now {
                self.remove(slot);
                return Evicted::Expired;
            }
            slot = entry.prev;
        }
        self.remove(self.tail);
        Evicted::Lru
    }

    /// Evicts down to capacity: every expired entry first (least recently
    /// used first), then the least recently used.
    fn shrink(&mut self, now: Nanos) -> Evictions {
        let mut evictions = Evictions::default();
        let mut slot = self.tail;
        while self.len > self.cap && slot != NIL {
            let entry = &self.slab[slot as usize];
            let prev = entry.prev;
            if entry.expires_at <= now {
                self.remove(slot);
                evictions.expired += 1;
            }
            slot = prev;
        }
        while self.len > self.cap {
            self.remove(self.tail);
            evictions.lru += 1;
        }
        evictions
    }

    /// Removes every entry for which `drop` says so; returns how many.
    fn remove_where(&mut self, mut drop: impl FnMut(&mut Entry) -> bool) -> u64 {
        let mut removed = 0;
        let mut slot = self.head;
        while slot != NIL {
            let entry = self.entry(slot);
            let next = entry.next;
            if drop(entry) {
                self.remove(slot);
                removed += 1;
            }
            slot = next;
        }
        removed
    }

    /// Checks the structure's invariants (tests only).
    #[cfg(test)]
    fn check(&self) {
        let mut count = 0;
        let mut prev = NIL;
        let mut slot = self.head;
        while slot != NIL {
            let entry = &self.slab[slot as usize];
            assert_eq!(entry.prev, prev, "prev link of slot {slot}");
            assert_eq!(
                self.index.get(&entry.key),
                Some(&slot),
                "index of slot {slot}"
            );
            count += 1;
            prev = slot;
            slot = entry.next;
        }
        assert_eq!(self.tail, prev, "tail");
        assert_eq!(count, self.len, "list length");
        assert_eq!(self.index.len(), self.len as usize, "index length");
        assert!(
            self.len <= self.cap,
            "len {} over cap {}",
            self.len,
            self.cap
        );
        let mut free = 0;
        let mut slot = self.free;
        while slot != NIL {
            free += 1;
            slot = self.slab[slot as usize].next;
        }
        assert_eq!(free + count as usize, self.slab.len(), "free list");
    }
}

/// One shard: its lock and the gauges read without it, alone on its cache
/// lines (128 bytes: the unit adjacent-line prefetchers pull on x86, and the
/// line size on Apple and POWER cores), so shards never share a line.
#[repr(align(128))]
struct Shard {
    table: Mutex<Table>,
    keys: AtomicU64,
    expired: AtomicU64,
    lru: AtomicU64,
}

impl Shard {
    /// Publishes the table's key count, and an eviction if there was one.
    /// Called with the lock held, so the atomics stay on this shard's line.
    #[inline]
    fn publish(&self, table: &Table, evicted: Option<Evicted>) {
        self.keys.store(u64::from(table.len), Relaxed);
        match evicted {
            Some(Evicted::Expired) => self.count(Evictions { expired: 1, lru: 0 }),
            Some(Evicted::Lru) => self.count(Evictions { expired: 0, lru: 1 }),
            None => {}
        }
    }

    fn count(&self, evictions: Evictions) {
        if evictions.expired > 0 {
            self.expired.fetch_add(evictions.expired, Relaxed);
        }
        if evictions.lru > 0 {
            self.lru.fetch_add(evictions.lru, Relaxed);
        }
    }
}

/// Whether a verdict on a key that is not stored yet must insert it: only a
/// consumption that was admitted (for `concurrency`, a lease) changes the
/// state from empty.
#[inline]
fn creates(cost: Cost, verdict: &Verdict) -> bool {
    verdict.admitted && cost.consumed() > 0
}

/// One distinct key of a multi-item request, while its shard is locked.
struct Local {
    key: u128,
    shard: usize,
    /// Index into the request's guards.
    guard: usize,
    /// Its slot in the shard, or `NIL` if the key is not stored.
    slot: u32,
    /// The working copy of its state.
    state: KeyState,
    rate: Rate,
    limit: u32,
    /// The first item with this key (the one described on insert).
    item: usize,
    /// Whether an admitted consumption needs the key stored.
    creates: bool,
}

/// Shards a multi-item request can lock without allocating; more spill
/// into a vector. Requests rarely touch more than a handful of keys.
const INLINE_GUARDS: usize = 8;

/// The shard locks one multi-item request holds, in the order taken.
struct Guards<'a> {
    inline: [Option<MutexGuard<'a, Table>>; INLINE_GUARDS],
    spill: Vec<MutexGuard<'a, Table>>,
    len: usize,
}

impl<'a> Guards<'a> {
    fn new() -> Guards<'a> {
        Guards {
            inline: [const { None }; INLINE_GUARDS],
            spill: Vec::new(),
            len: 0,
        }
    }

    /// Keeps `guard`; returns its index.
    fn push(&mut self, guard: MutexGuard<'a, Table>) -> usize {
        let index = self.len;
        match self.inline.get_mut(index) {
            Some(free) => *free = Some(guard),
            None => self.spill.push(guard),
        }
        self.len += 1;
        index
    }

    fn get(&self, index: usize) -> &Table {
        match self.inline.get(index) {
            Some(guard) => guard.as_deref().expect("guard pushed"),
            None => &self.spill[index - INLINE_GUARDS],
        }
    }

    fn get_mut(&mut self, index: usize) -> &mut Table {
        match self.inline.get_mut(index) {
            Some(guard) => guard.as_deref_mut().expect("guard pushed"),
            None => &mut self.spill[index - INLINE_GUARDS],
        }
    }
}

/// Per-thread buffers for multi-item requests, reused so the hot path does
/// not allocate (they grow to the largest request the thread has seen).
struct Scratch {
    /// (shard, key, item index), sorted: the lock order and the distinct
    /// keys.
    order: Vec<(usize, u128, usize)>,
    /// Item index to its index in `locals`.
    local_of: Vec<usize>,
    locals: Vec<Local>,
}

impl Scratch {
    const fn new() -> Scratch {
        Scratch {
            order: Vec::new(),
            local_of: Vec::new(),
            locals: Vec::new(),
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch::new()) };
}

/// The sharded, bounded, in-process counter store. See the module docs.
pub struct MemoryStore {
    shards: Box<[Shard]>,
    capacity: AtomicU64,
    /// Serializes capacity changes.
    resize: Mutex<()>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .field("keys", &self.keys())
            .field("capacity", &self.capacity())
            .field("evictions", &self.evictions())
            .finish()
    }
}

/// The capacity of shard `index` of `shards` when the store holds
/// `max_keys`: an even split (the first `max_keys % shards` shards get one
/// more), at least one.
fn shard_capacity(max_keys: u64, shards: usize, index: usize) -> u32 {
    let shards = shards as u64;
    let extra = u64::from((index as u64) < max_keys % shards);
    let cap = (max_keys / shards + extra).clamp(1, MAX_SHARD_KEYS);
    u32::try_from(cap).expect("clamped to u32")
}

impl MemoryStore {
    /// A store holding at most `max_keys` keys, with
    /// [`SHARDS_PER_CPU`] × available CPUs shards (rounded up to a power of
    /// two).
    pub fn new(max_keys: u64) -> MemoryStore {
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        MemoryStore::with_shards(max_keys, cpus.saturating_mul(SHARDS_PER_CPU))
    }

    /// A store holding at most `max_keys` keys in `shards` shards (rounded
    /// up to a power of two, at most 65,536). Every shard holds at least one
    /// key, so the capacity is at least the shard count.
    pub fn with_shards(max_keys: u64, shards: usize) -> MemoryStore {
        let count = shards.clamp(1, MAX_SHARDS).next_power_of_two();
        let mut capacity = 0;
        let shards: Box<[Shard]> = (0..count)
            .map(|index| {
                let cap = shard_capacity(max_keys, count, index);
                capacity += u64::from(cap);
                Shard {
                    table: Mutex::new(Table::new(cap)),
                    keys: AtomicU64::new(0),
                    expired: AtomicU64::new(0),
                    lru: AtomicU64::new(0),
                }
            })
            .collect();
        MemoryStore {
            shards,
            capacity: AtomicU64::new(capacity),
            resize: Mutex::new(()),
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The shard `key` lives in. The key's halves are folded and mixed once
    /// more, so the shard choice never correlates with the bits the shard's
    /// index uses for buckets (and even sequential keys spread evenly).
    #[inline]
    pub fn shard_of(&self, key: u128) -> usize {
        let folded = (key as u64) ^ ((key >> 64) as u64);
        let mixed = folded.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // Multiply-shift range reduction: uses the well-mixed high bits.
        ((u128::from(mixed) * self.shards.len() as u128) >> 64) as usize
    }

    /// Decides one request's items atomically, with
    /// [`floodgate_limiter::decide_all`] semantics; see
    /// [`CounterStore::decide`]. Fills `verdicts` (cleared first) one per
    /// item and returns whether the request is admitted.
    pub fn decide_sync(&self, items: &[Item], now: Nanos, verdicts: &mut Vec<Verdict>) -> bool {
        self.decide_sync_described(items, now, verdicts, &undescribed)
    }

    /// [`MemoryStore::decide_sync`], keeping `describe(i)` with item `i`'s
    /// key when it is inserted (see [`CounterStore::decide`]).
    pub fn decide_sync_described(
        &self,
        items: &[Item],
        now: Nanos,
        verdicts: &mut Vec<Verdict>,
        describe: Describe<'_>,
    ) -> bool {
        match items {
            [] => {
                verdicts.clear();
                true
            }
            [item] => self.decide_one(item, now, verdicts, describe),
            _ => self.decide_many(items, now, verdicts, describe),
        }
    }

    /// The fast path: one item, one shard, no copies.
    fn decide_one(
        &self,
        item: &Item,
        now: Nanos,
        verdicts: &mut Vec<Verdict>,
        describe: Describe<'_>,
    ) -> bool {
        verdicts.clear();
        let shard = &self.shards[self.shard_of(item.key)];
        let mut table = shard.table.lock();
        table.seen = table.seen.max(now);
        let verdict = match table.slot(item.key) {
            Some(slot) => table.decide_in_place(slot, item, now),
            None => {
                let mut state = KeyState::Empty;
                let verdict = decide(&item.rate, &mut state, item.cost, now);
                if creates(item.cost, &verdict) {
                    let evicted =
                        table.insert(item.key, item.limit, item.rate, state, now, describe(0));
                    shard.publish(&table, evicted);
                }
                verdict
            }
        };
        drop(table);
        verdicts.push(verdict);
        verdict.admitted || item.shadow
    }

    /// Several items: lock their shards in ascending order, decide on local
    /// copies of the distinct keys' states, then write back (admitted) or
    /// apply only refunds and releases to the stored states (rejected),
    /// exactly as `decide_all` does. (`decide_all` itself cannot be called
    /// here: items sharing a key must share one state, which its
    /// `&mut KeyState` checks cannot alias; the stored states serve as its
    /// undo log instead.)
    fn decide_many(
        &self,
        items: &[Item],
        now: Nanos,
        verdicts: &mut Vec<Verdict>,
        describe: Describe<'_>,
    ) -> bool {
        let mut run =
            |scratch: &mut Scratch| self.decide_many_in(items, now, verdicts, scratch, describe);
        // The buffers are only unavailable while the thread is exiting.
        match SCRATCH.try_with(|scratch| scratch.try_borrow_mut().ok().map(|mut s| run(&mut s))) {
            Ok(Some(admitted)) => admitted,
            _ => run(&mut Scratch::new()),
        }
    }

    fn decide_many_in(
        &self,
        items: &[Item],
        now: Nanos,
        verdicts: &mut Vec<Verdict>,
        scratch: &mut Scratch,
        describe: Describe<'_>,
    ) -> bool {
        verdicts.clear();
        let Scratch {
            order,
            local_of,
            locals,
        } = scratch;
        order.clear();
        order.extend(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| (self.shard_of(item.key), item.key, index)),
        );
        order.sort_unstable();
        local_of.clear();
        local_of.resize(items.len(), 0);
        locals.clear();
        let mut guards = Guards::new();
        for &(shard, key, index) in order.iter() {
            let new_shard = locals.last().is_none_or(|last| last.shard != shard);
            if new_shard {
                let mut table = self.shards[shard].table.lock();
                table.seen = table.seen.max(now);
                guards.push(table);
            }
            if new_shard || locals.last().is_some_and(|last| last.key != key) {
                let guard = guards.len - 1;
                let table = guards.get(guard);
                let slot = table.slot(key).unwrap_or(NIL);
                let state = match slot {
                    NIL => KeyState::Empty,
                    slot => table.slab[slot as usize].state.clone(),
                };
                locals.push(Local {
                    key,
                    shard,
                    guard,
                    slot,
                    state,
                    rate: items[index].rate,
                    limit: items[index].limit,
                    item: index,
                    creates: false,
                });
            }
            local_of[index] = locals.len() - 1;
        }

        let mut admitted = true;
        for (item, &local) in items.iter().zip(local_of.iter()) {
            let local = &mut locals[local];
            let verdict = decide(&item.rate, &mut local.state, item.cost, now);
            local.creates |= creates(item.cost, &verdict);
            local.rate = item.rate;
            local.limit = item.limit;
            admitted &= verdict.admitted || item.shadow;
            verdicts.push(verdict);
        }

        if admitted {
            // Write stored keys back before inserting new ones, so an
            // insert's eviction can never hit a slot still to be written.
            for local in locals.iter_mut().filter(|local| local.slot != NIL) {
                let table = guards.get_mut(local.guard);
                table.entry(local.slot).state = mem::take(&mut local.state);
                table.refresh(local.slot, local.rate, local.limit);
            }
            for local in locals.drain(..) {
                if local.slot == NIL && local.creates {
                    let table = guards.get_mut(local.guard);
                    let info = describe(local.item);
                    let evicted =
                        table.insert(local.key, local.limit, local.rate, local.state, now, info);
                    self.shards[local.shard].publish(table, evicted);
                }
            }
            return true;
        }

        // Rejected: the stored states are the originals. Apply refunds and
        // releases to them, then report each limit's quota as the request
        // left it. Keys not stored stay empty (a refund on nothing is
        // nothing).
        for (item, &local) in items.iter().zip(local_of.iter()) {
            let local = &locals[local];
            if local.slot != NIL && !matches!(item.cost, Cost::Consume(_)) {
                let state = &mut guards.get_mut(local.guard).entry(local.slot).state;
                decide(&item.rate, state, item.cost, now);
            }
        }
        for ((item, &local), verdict) in items.iter().zip(local_of.iter()).zip(verdicts.iter_mut())
        {
            let local = &locals[local];
            let left = if local.slot == NIL {
                decide(&item.rate, &mut KeyState::Empty, Cost::Consume(0), now)
            } else {
                let state = &mut guards.get_mut(local.guard).entry(local.slot).state;
                decide(&item.rate, state, Cost::Consume(0), now)
            };
            verdict.remaining = left.remaining;
            verdict.reset_after = left.reset_after;
            verdict.lease = None;
        }
        for local in locals.drain(..) {
            if local.slot != NIL {
                guards
                    .get_mut(local.guard)
                    .refresh(local.slot, local.rate, local.limit);
            }
        }
        false
    }

    /// Keys held now (a gauge summed from per-shard atomics; no locks).
    pub fn keys(&self) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard.keys.load(Relaxed))
            .sum()
    }

    /// The most keys the store holds before it evicts.
    pub fn capacity(&self) -> u64 {
        self.capacity.load(Relaxed)
    }

    /// Keys evicted so far to stay within capacity, by reason.
    pub fn evictions(&self) -> Evictions {
        self.shards
            .iter()
            .fold(Evictions::default(), |total, shard| Evictions {
                expired: total.expired + shard.expired.load(Relaxed),
                lru: total.lru + shard.lru.load(Relaxed),
            })
    }

    /// Whether `key` is stored.
    pub fn contains(&self, key: u128) -> bool {
        self.shards[self.shard_of(key)]
            .table
            .lock()
            .slot(key)
            .is_some()
    }

    /// Changes the capacity. Shrinking evicts down to it at once, expired
    /// entries first (judged by the latest time a decision brought), then
    /// the least recently used; these count as evictions.
    pub fn set_capacity(&self, max_keys: u64) {
        let _resizing = self.resize.lock();
        let mut capacity = 0;
        for (index, shard) in self.shards.iter().enumerate() {
            let cap = shard_capacity(max_keys, self.shards.len(), index);
            capacity += u64::from(cap);
            let mut table = shard.table.lock();
            table.cap = cap;
            let seen = table.seen;
            let evictions = table.shrink(seen);
            shard.publish(&table, None);
            shard.count(evictions);
        }
        self.capacity.store(capacity, Relaxed);
    }

    /// Drops every key of limit `limit`; returns how many. Not counted as
    /// evictions.
    pub fn evict_limit(&self, limit: u32) -> u64 {
        self.remove_where(|entry| entry.limit == limit)
    }

    /// Remaps each entry's limit index through `keep` (after a config
    /// change); entries it maps to `None` are dropped. Returns how many were
    /// dropped. `keep` runs under shard locks: keep it cheap.
    pub fn retain_limits(&self, keep: impl Fn(u32) -> Option<u32>) -> u64 {
        self.remove_where(|entry| match keep(entry.limit) {
            Some(limit) => {
                entry.limit = limit;
                false
            }
            None => true,
        })
    }

    fn remove_where(&self, drop: impl Fn(&mut Entry) -> bool) -> u64 {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut table = shard.table.lock();
            removed += table.remove_where(&drop);
            shard.publish(&table, None);
        }
        removed
    }

    /// Drops every key and frees the memory they held. Not counted as
    /// evictions.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut table = shard.table.lock();
            let (cap, seen) = (table.cap, table.seen);
            *table = Table::new(cap);
            table.seen = seen;
            shard.publish(&table, None);
        }
    }

    /// Up to `n` keys of limit `limit` with the most units in use at `now`
    /// (hits in the window, tokens spent, leases held), most used first;
    /// keys using nothing are left out. Walks every shard, holding one
    /// shard's lock at a time: meant for introspection, not the hot path.
    pub fn hottest(&self, limit: u32, n: usize, now: Nanos) -> Vec<(u128, u64)> {
        if n == 0 {
            return Vec::new();
        }
        // A min-heap of the best `n` so far; on equal use, smaller keys win.
        let mut best: BinaryHeap<Reverse<(u64, Reverse<u128>)>> = BinaryHeap::new();
        for shard in self.shards.iter() {
            let table = shard.table.lock();
            let mut slot = table.head;
            while slot != NIL {
                let entry = &table.slab[slot as usize];
                slot = entry.next;
                if entry.limit != limit {
                    continue;
                }
                let used = entry.state.used(&entry.rate, now);
                if used == 0 {
                    continue;
                }
                best.push(Reverse((used, Reverse(entry.key))));
                if best.len() > n {
                    best.pop();
                }
            }
        }
        let mut hottest: Vec<(u128, u64)> = best
            .into_iter()
            .map(|Reverse((used, Reverse(key)))| (key, used))
            .collect();
        hottest.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        hottest
    }
}

impl CounterStore for MemoryStore {
    fn decide<'a>(
        &'a self,
        items: &'a [Item],
        now: Nanos,
        verdicts: &'a mut Vec<Verdict>,
        describe: Describe<'a>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'a {
        std::future::ready(Ok(
            self.decide_sync_described(items, now, verdicts, describe)
        ))
    }

    fn set_capacity(&self, max_keys: u64) {
        MemoryStore::set_capacity(self, max_keys);
    }

    fn count_keys(&self, select: KeySelect<'_>) -> u64 {
        let mut count = 0;
        for shard in self.shards.iter() {
            let table = shard.table.lock();
            let mut slot = table.head;
            while slot != NIL {
                let entry = &table.slab[slot as usize];
                slot = entry.next;
                if entry
                    .info
                    .as_deref()
                    .is_some_and(|info| select.matches(info))
                {
                    count += 1;
                }
            }
        }
        count
    }

    fn evict_keys(&self, select: KeySelect<'_>) -> u64 {
        self.remove_where(|entry| {
            entry
                .info
                .as_deref()
                .is_some_and(|info| select.matches(info))
        })
    }

    fn usage(&self, per_limit: usize, now: Nanos) -> Vec<LimitUsage> {
        if per_limit == 0 {
            return Vec::new();
        }
        // Per limit, a min-heap of its best `per_limit` so far; on equal
        // use, smaller keys win.
        type Best = BinaryHeap<Reverse<(u64, Reverse<u128>, Option<Box<str>>)>>;
        let mut best: HashMap<u64, Best> = HashMap::new();
        for shard in self.shards.iter() {
            let table = shard.table.lock();
            let mut slot = table.head;
            while slot != NIL {
                let entry = &table.slab[slot as usize];
                slot = entry.next;
                let Some(limit) = entry.info.as_deref().and_then(|info| info.limit) else {
                    continue;
                };
                let used = entry.state.used(&entry.rate, now);
                if used == 0 {
                    continue;
                }
                let heap = best.entry(limit).or_default();
                let worst = heap
                    .peek()
                    .map(|Reverse((used, Reverse(key), _))| (*used, *key));
                let better = heap.len() < per_limit
                    || worst.is_some_and(|(w_used, w_key)| {
                        used > w_used || (used == w_used && entry.key < w_key)
                    });
                if better {
                    let text = entry.info.as_deref().map(|info| info.text.clone());
                    heap.push(Reverse((used, Reverse(entry.key), text)));
                    if heap.len() > per_limit {
                        heap.pop();
                    }
                }
            }
        }
        let mut usage: Vec<LimitUsage> = best
            .into_iter()
            .map(|(limit, heap)| {
                let mut hottest: Vec<HotKey> = heap
                    .into_iter()
                    .map(|Reverse((used, Reverse(key), text))| HotKey { key, text, used })
                    .collect();
                hottest.sort_unstable_by(|a, b| b.used.cmp(&a.used).then(a.key.cmp(&b.key)));
                LimitUsage { limit, hottest }
            })
            .collect();
        usage.sort_unstable_by_key(|usage| usage.limit);
        usage
    }

    fn stats(&self) -> StoreStats {
        let evictions = self.evictions();
        StoreStats {
            backend: "memory",
            keys: self.keys(),
            capacity: self.capacity(),
            evicted_expired: evictions.expired,
            evicted_lru: evictions.lru,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_limiter::{Algorithm, Unit, NANOS_PER_SECOND};

    const T0: Nanos = 1_700_000_000 * NANOS_PER_SECOND;

    fn item(key: u128, limit: u64, unit: Unit, hits: u64) -> Item {
        Item::new(
            key,
            Rate::new(Algorithm::FixedWindow, limit, unit),
            Cost::Consume(hits),
        )
    }

    fn check_all(store: &MemoryStore) {
        let mut keys = 0;
        for shard in store.shards.iter() {
            let table = shard.table.lock();
            table.check();
            assert_eq!(shard.keys.load(Relaxed), u64::from(table.len));
            keys += u64::from(table.len);
        }
        assert_eq!(store.keys(), keys);
        assert!(keys <= store.capacity());
    }

    #[test]
    fn pass_through_hash_takes_low_bits() {
        let mut hasher = KeyHasher::default();
        hasher.write_u128((7 << 64) | 0xdead_beef);
        assert_eq!(hasher.finish(), 0xdead_beef);
    }

    #[test]
    fn shards_are_padded_and_a_power_of_two() {
        assert_eq!(mem::align_of::<Shard>(), 128);
        assert_eq!(mem::size_of::<Shard>() % 128, 0);
        assert_eq!(MemoryStore::with_shards(10, 5).shards(), 8);
        assert_eq!(MemoryStore::with_shards(10, 0).shards(), 1);
        let store = MemoryStore::new(10);
        assert!(store.shards().is_power_of_two());
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert!(store.shards() >= SHARDS_PER_CPU * cpus);
    }

    #[test]
    fn capacity_splits_exactly() {
        assert_eq!(MemoryStore::with_shards(1000, 16).capacity(), 1000);
        assert_eq!(MemoryStore::with_shards(1001, 16).capacity(), 1001);
        // At least one key per shard.
        assert_eq!(MemoryStore::with_shards(3, 16).capacity(), 16);
    }

    #[test]
    fn sequential_keys_spread_over_shards() {
        let store = MemoryStore::with_shards(1 << 20, 16);
        let mut counts = [0u32; 16];
        for key in 0..16_000u128 {
            counts[store.shard_of(key)] += 1;
        }
        for count in counts {
            assert!((800..1200).contains(&count), "{counts:?}");
        }
    }

    /// Random inserts, touches, evictions and removals keep the lists, the
    /// index, the free list and the gauges consistent.
    #[test]
    fn structure_stays_consistent() {
        let store = MemoryStore::with_shards(64, 4);
        let mut verdicts = Vec::new();
        let mut x: u64 = 0x1234_5678;
        let mut now = T0;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = u128::from(x % 200);
            let unit = if x.is_multiple_of(3) {
                Unit::Second
            } else {
                Unit::Hour
            };
            let first = item(key, 5, unit, x % 3);
            let second = item(u128::from((x >> 20) % 200), 5, Unit::Hour, 1);
            if x.is_multiple_of(2) {
                store.decide_sync(&[first], now, &mut verdicts);
            } else {
                store.decide_sync(&[first, second, first], now, &mut verdicts);
            }
            now += x % (NANOS_PER_SECOND / 4);
            match step % 5000 {
                1000 => {
                    store.evict_limit(0);
                }
                2000 => store.set_capacity(10),
                3000 => store.set_capacity(100),
                4000 => store.clear(),
                _ => {}
            }
            if step % 97 == 0 {
                check_all(&store);
            }
        }
        check_all(&store);
        let evictions = store.evictions();
        assert!(evictions.expired > 0 && evictions.lru > 0, "{evictions:?}");
    }

    #[test]
    fn slots_are_reused() {
        let store = MemoryStore::with_shards(4, 1);
        let mut verdicts = Vec::new();
        for key in 0..100 {
            store.decide_sync(&[item(key, 5, Unit::Hour, 1)], T0, &mut verdicts);
        }
        let table = store.shards[0].table.lock();
        assert_eq!(table.slab.len(), 4);
        assert_eq!(table.len, 4);
    }
}
