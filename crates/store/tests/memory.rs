//! Behaviour of the in-memory store: the limiter's semantics, the bounds and
//! the eviction policy, concurrency, and a model check against
//! `floodgate_limiter::decide_all` on a plain map.

use floodgate_contract::rng::splitmix64;
use floodgate_limiter::{
    decide, decide_all, Algorithm, Check, Cost, KeyState, Nanos, Rate, Unit, Verdict,
    NANOS_PER_SECOND,
};
use floodgate_store::{
    undescribed, CounterStore, Evictions, Item, KeyInfo, KeySelect, MemoryStore,
};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

/// 2023-11-14T22:13:20Z: 800 s into an hour, so hour windows do not roll
/// over in these tests, while second windows end at `T0 + 1 s`.
const T0: Nanos = 1_700_000_000 * NANOS_PER_SECOND;
const MS: Nanos = 1_000_000;
const SECOND: Nanos = NANOS_PER_SECOND;

/// A well-mixed key, as the service derives them.
fn key(i: u64) -> u128 {
    (u128::from(splitmix64(i)) << 64) | u128::from(splitmix64(i ^ 0x5555_5555_5555_5555))
}

fn rate(algorithm: Algorithm, limit: u64, unit: Unit) -> Rate {
    Rate::new(algorithm, limit, unit)
}

fn fixed(limit: u64, unit: Unit) -> Rate {
    rate(Algorithm::FixedWindow, limit, unit)
}

fn item(key: u128, rate: Rate, cost: Cost) -> Item {
    Item::new(key, rate, cost)
}

fn hits(key: u128, rate: Rate, hits: u64) -> Item {
    item(key, rate, Cost::Consume(hits))
}

/// Decides and returns (admitted, verdicts).
fn run(store: &MemoryStore, items: &[Item], now: Nanos) -> (bool, Vec<Verdict>) {
    let mut verdicts = vec![Verdict {
        admitted: true,
        remaining: 99,
        reset_after: 99,
        lease: None,
    }];
    let admitted = store.decide_sync(items, now, &mut verdicts);
    assert_eq!(verdicts.len(), items.len(), "one verdict per item");
    (admitted, verdicts)
}

/// What is left of `key`'s quota, by a check-only request.
fn remaining(store: &MemoryStore, key: u128, rate: Rate, now: Nanos) -> u64 {
    let (admitted, verdicts) = run(store, &[hits(key, rate, 0)], now);
    assert!(admitted);
    verdicts[0].remaining
}

/// `n` keys that live in pairwise different shards.
fn keys_in_distinct_shards(store: &MemoryStore, n: usize) -> Vec<u128> {
    let mut seen = HashSet::new();
    let keys: Vec<u128> = (0..)
        .map(key)
        .filter(|&k| seen.insert(store.shard_of(k)))
        .take(n)
        .collect();
    assert_eq!(keys.len(), n);
    keys
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

#[test]
fn single_key_admission_matches_limiter_decide() {
    let rates = [
        fixed(5, Unit::Second),
        rate(Algorithm::TokenBucket, 4, Unit::Second).with_burst(3),
        rate(Algorithm::SlidingWindow, 6, Unit::Second),
        rate(Algorithm::Concurrency, 3, Unit::Second),
    ];
    for (index, rate) in rates.into_iter().enumerate() {
        let store = MemoryStore::with_shards(100, 4);
        let k = key(index as u64);
        let mut state = KeyState::Empty;
        let mut now = T0;
        let mut x = 42 + index as u64;
        let mut admitted_count = 0;
        for step in 0..2_000 {
            x = splitmix64(x);
            let cost = match x % 10 {
                0 => Cost::Refund(x % 3),
                1 => Cost::Release((x >> 8) % 6),
                2 => Cost::Consume(0),
                _ => Cost::Consume(1 + (x >> 16) % 2),
            };
            now += (x >> 32) % (150 * MS);
            let expected = decide(&rate, &mut state, cost, now);
            let (admitted, verdicts) = run(&store, &[item(k, rate, cost)], now);
            assert_eq!(verdicts[0], expected, "{rate:?} step {step} cost {cost:?}");
            assert_eq!(admitted, expected.admitted);
            admitted_count += u64::from(expected.admitted && cost.consumed() > 0);
        }
        assert!(
            admitted_count > 100,
            "{rate:?}: the sequence exercised admissions"
        );
    }
}

#[test]
fn rejected_request_leaves_every_key_unchanged() {
    let store = MemoryStore::with_shards(1_000, 16);
    let [a, b, c, d] = keys_in_distinct_shards(&store, 4)[..] else {
        unreachable!()
    };
    let (ra, rb) = (fixed(10, Unit::Hour), fixed(1, Unit::Hour));
    let rc = rate(Algorithm::TokenBucket, 5, Unit::Hour);
    let rd = rate(Algorithm::Concurrency, 2, Unit::Hour);
    assert!(run(&store, &[hits(a, ra, 3), hits(b, rb, 1)], T0).0);
    assert_eq!(store.keys(), 2);

    // b is exhausted: the whole request is rejected and a, c, d keep their
    // quota; the verdicts still say which limit refused.
    let request = [
        hits(a, ra, 2),
        hits(c, rc, 1),
        hits(d, rd, 1),
        hits(b, rb, 1),
    ];
    let (admitted, verdicts) = run(&store, &request, T0 + SECOND);
    assert!(!admitted);
    let said_yes: Vec<bool> = verdicts.iter().map(|v| v.admitted).collect();
    assert_eq!(said_yes, [true, true, true, false]);
    assert_eq!(verdicts[0].remaining, 7, "a reports its unchanged quota");
    assert_eq!(verdicts[1].remaining, 5);
    assert_eq!(verdicts[2].remaining, 2);
    assert_eq!(verdicts[2].lease, None, "no lease from a rejected request");
    assert_eq!(remaining(&store, a, ra, T0 + SECOND), 7);
    assert_eq!(remaining(&store, c, rc, T0 + SECOND), 5);
    assert_eq!(remaining(&store, d, rd, T0 + SECOND), 2);
    assert_eq!(store.keys(), 2, "c and d were never stored");

    // A refund in a rejected request still applies.
    let request = [item(a, ra, Cost::Refund(2)), hits(b, rb, 1)];
    let (admitted, verdicts) = run(&store, &request, T0 + SECOND);
    assert!(!admitted);
    assert_eq!(verdicts[0].remaining, 9);
    assert_eq!(remaining(&store, a, ra, T0 + SECOND), 9);

    // And a shadow limit never rejects.
    let mut shadow_b = hits(b, rb, 1);
    shadow_b.shadow = true;
    let (admitted, verdicts) = run(&store, &[hits(a, ra, 1), shadow_b], T0 + SECOND);
    assert!(admitted);
    assert!(!verdicts[1].admitted);
    assert_eq!(remaining(&store, a, ra, T0 + SECOND), 8);
}

#[test]
fn requests_spanning_many_shards_are_all_or_nothing() {
    let store = MemoryStore::with_shards(10_000, 64);
    let keys = keys_in_distinct_shards(&store, 40);
    let r = fixed(2, Unit::Hour);
    let request: Vec<Item> = keys.iter().map(|&k| hits(k, r, 1)).collect();
    assert!(run(&store, &request, T0).0);
    assert_eq!(store.keys(), 40);
    // Exhaust the last key alone; then the 40-key request must fail whole.
    assert!(run(&store, &request[39..], T0).0);
    let (admitted, verdicts) = run(&store, &request, T0);
    assert!(!admitted);
    assert!(verdicts[..39]
        .iter()
        .all(|v| v.admitted && v.remaining == 1));
    assert!(!verdicts[39].admitted);
    assert!(keys[..39].iter().all(|&k| remaining(&store, k, r, T0) == 1));
}

#[test]
fn same_key_twice_shares_one_state() {
    let store = MemoryStore::with_shards(100, 4);
    let (k, other) = (key(1), key(2));
    let r = fixed(3, Unit::Hour);
    // 2 + 2 > 3: the second sees the first's hits, so all is rejected.
    let (admitted, verdicts) = run(&store, &[hits(k, r, 2), hits(k, r, 2)], T0);
    assert!(!admitted);
    assert!(verdicts[0].admitted && !verdicts[1].admitted);
    assert_eq!((verdicts[0].remaining, verdicts[1].remaining), (3, 3));
    assert_eq!(store.keys(), 0);

    let request = [hits(k, r, 1), hits(other, r, 1), hits(k, r, 2)];
    let (admitted, verdicts) = run(&store, &request, T0);
    assert!(admitted);
    assert_eq!(verdicts[0].remaining, 2);
    assert_eq!(verdicts[2].remaining, 0);
    assert_eq!(remaining(&store, k, r, T0), 0);
    assert_eq!(remaining(&store, other, r, T0), 2);

    // Stored key twice: a refund then a consume in one request.
    let request = [item(k, r, Cost::Refund(2)), hits(k, r, 1)];
    let (admitted, verdicts) = run(&store, &request, T0);
    assert!(admitted);
    assert_eq!((verdicts[0].remaining, verdicts[1].remaining), (2, 1));
    assert_eq!(remaining(&store, k, r, T0), 1);
}

#[test]
fn capacity_bound_holds_under_a_unique_key_flood() {
    let store = MemoryStore::with_shards(1_000, 16);
    assert_eq!(store.capacity(), 1_000);
    let r = fixed(10, Unit::Hour);
    let mut verdicts = Vec::new();
    let mut peak = 0;
    for i in 0..100_000 {
        assert!(store.decide_sync(&[hits(key(i), r, 1)], T0, &mut verdicts));
        if i % 100 == 0 {
            peak = peak.max(store.keys());
            assert!(store.keys() <= store.capacity(), "at {i}: {}", store.keys());
        }
    }
    assert_eq!(store.keys(), 1_000, "every shard ends full");
    assert!(peak <= 1_000);
    let evictions = store.evictions();
    assert_eq!(
        evictions,
        Evictions {
            expired: 0,
            lru: 99_000
        },
        "all live: LRU only"
    );

    // The same flood from several threads.
    let store = MemoryStore::new(1_000);
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let store = &store;
            scope.spawn(move || {
                let mut verdicts = Vec::new();
                for i in 0..25_000 {
                    store.decide_sync(&[hits(key(t << 32 | i), r, 1)], T0, &mut verdicts);
                    if i % 500 == 0 {
                        assert!(store.keys() <= store.capacity());
                    }
                }
            });
        }
    });
    assert!(store.keys() <= store.capacity());
    let evictions = store.evictions();
    assert_eq!(evictions.lru + evictions.expired + store.keys(), 100_000);
}

#[test]
fn expired_keys_are_evicted_before_live_lru_ones() {
    let store = MemoryStore::with_shards(3, 1);
    let (a, b, c, d, e) = (key(1), key(2), key(3), key(4), key(5));
    let second = fixed(10, Unit::Second);
    let hour = fixed(10, Unit::Hour);
    assert!(run(&store, &[hits(a, second, 1)], T0).0);
    assert!(run(&store, &[hits(b, hour, 1)], T0).0);
    assert!(run(&store, &[hits(c, hour, 1)], T0).0);
    // a becomes the most recently used; b is the LRU tail.
    assert!(run(&store, &[hits(a, second, 1)], T0 + 500 * MS).0);

    // At T0 + 2 s a's window has ended: it goes, not b.
    assert!(run(&store, &[hits(d, hour, 1)], T0 + 2 * SECOND).0);
    assert!(!store.contains(a));
    assert!(store.contains(b) && store.contains(c) && store.contains(d));
    assert_eq!(store.evictions(), Evictions { expired: 1, lru: 0 });

    // Nothing is expired now: the LRU tail (b) goes.
    assert!(run(&store, &[hits(e, hour, 1)], T0 + 2 * SECOND).0);
    assert!(!store.contains(b));
    assert!(store.contains(c) && store.contains(d) && store.contains(e));
    assert_eq!(store.evictions(), Evictions { expired: 1, lru: 1 });
}

#[test]
fn least_recently_used_key_is_evicted() {
    let store = MemoryStore::with_shards(3, 1);
    let hour = fixed(10, Unit::Hour);
    let [a, b, c, d, e] = [1, 2, 3, 4, 5].map(key);
    for k in [a, b, c] {
        assert!(run(&store, &[hits(k, hour, 1)], T0).0);
    }
    // A check-only request counts as a use of a stored key.
    assert_eq!(remaining(&store, a, hour, T0), 9);
    assert!(run(&store, &[hits(d, hour, 1)], T0).0);
    assert!(!store.contains(b), "b was least recently used");
    // Rejected requests are uses too (an over-limit key stays limited).
    assert!(!run(&store, &[hits(c, hour, 50)], T0).0);
    assert!(run(&store, &[hits(e, hour, 1)], T0).0);
    assert!(!store.contains(a), "a was least recently used");
    assert!(store.contains(c) && store.contains(d) && store.contains(e));
    assert_eq!(store.evictions(), Evictions { expired: 0, lru: 2 });
}

#[test]
fn check_only_and_rejected_requests_do_not_insert_keys() {
    let store = MemoryStore::with_shards(1_000, 8);
    let algorithms = Algorithm::ALL.map(|algorithm| rate(algorithm, 10, Unit::Minute));
    let mut i = 0;
    let mut next = || {
        i += 1;
        key(i)
    };
    for r in algorithms {
        assert!(run(&store, &[hits(next(), r, 0)], T0).0, "check only");
        assert!(!run(&store, &[hits(next(), r, 11)], T0).0, "over the limit");
        assert!(run(&store, &[item(next(), r, Cost::Refund(3))], T0).0);
        assert!(run(&store, &[item(next(), r, Cost::Release(1))], T0).0);
        let mut shadow = hits(next(), r, 11);
        shadow.shadow = true;
        let (admitted, verdicts) = run(&store, &[shadow], T0);
        assert!(admitted && !verdicts[0].admitted, "shadow over the limit");
        let request = [
            hits(next(), r, 0),
            hits(next(), r, 0),
            item(next(), r, Cost::Refund(1)),
        ];
        assert!(run(&store, &request, T0).0);
    }
    assert_eq!(store.keys(), 0);

    // A rejected multi-item request does not insert its admissible new keys.
    let limited = next();
    let one = fixed(1, Unit::Hour);
    assert!(run(&store, &[hits(limited, one, 1)], T0).0);
    let fresh = next();
    let request = [hits(fresh, fixed(10, Unit::Hour), 1), hits(limited, one, 1)];
    assert!(!run(&store, &request, T0).0);
    assert!(!store.contains(fresh));

    // An admitted one inserts only the keys it consumed from.
    let (consumed, checked) = (next(), next());
    let request = [hits(consumed, one, 1), hits(checked, one, 0)];
    assert!(run(&store, &request, T0).0);
    assert!(store.contains(consumed) && !store.contains(checked));
    assert_eq!(store.keys(), 2);
    assert_eq!(store.evictions(), Evictions::default());
}

#[test]
fn set_capacity_shrinks_expired_first_then_lru() {
    let store = MemoryStore::with_shards(200, 1);
    let second = fixed(10, Unit::Second);
    let hour = fixed(10, Unit::Hour);
    for i in 0..100 {
        // Interleaved, so expired keys are spread along the LRU list.
        let (k, r) = if i % 2 == 0 {
            (key(i), second)
        } else {
            (key(i), hour)
        };
        assert!(run(&store, &[hits(k, r, 1)], T0).0);
    }
    // A later decision tells the store the time.
    assert!(run(&store, &[hits(key(1), hour, 1)], T0 + 5 * SECOND).0);
    store.set_capacity(50);
    assert_eq!(store.capacity(), 50);
    assert_eq!(store.keys(), 50);
    assert_eq!(
        store.evictions(),
        Evictions {
            expired: 50,
            lru: 0
        }
    );
    assert!((0..100).all(|i| store.contains(key(i)) == (i % 2 == 1)));

    store.set_capacity(10);
    assert_eq!(store.keys(), 10);
    assert_eq!(
        store.evictions(),
        Evictions {
            expired: 50,
            lru: 40
        }
    );
    assert!(store.contains(key(1)), "the most recently used key stays");
    let kept: Vec<u64> = (0..100).filter(|&i| store.contains(key(i))).collect();
    assert_eq!(kept, [1, 83, 85, 87, 89, 91, 93, 95, 97, 99]);

    // Growing keeps everything; sharded stores shrink too.
    store.set_capacity(1_000);
    assert_eq!((store.keys(), store.capacity()), (10, 1_000));
    let store = MemoryStore::with_shards(1_000, 8);
    for i in 0..5_000 {
        assert!(run(&store, &[hits(key(i), hour, 1)], T0).0);
    }
    assert_eq!(store.keys(), 1_000);
    store.set_capacity(100);
    assert_eq!((store.keys(), store.capacity()), (100, 100));
    assert_eq!(store.evictions().lru, 4_900);
}

#[test]
fn evict_limit_drops_exactly_one_limit() {
    let store = MemoryStore::with_shards(10_000, 8);
    let r = fixed(10, Unit::Hour);
    for i in 0..300 {
        let mut it = hits(key(i), r, 1);
        it.limit = (i % 3) as u32;
        assert!(run(&store, &[it], T0).0);
    }
    assert_eq!(store.evict_limit(1), 100);
    assert_eq!(store.keys(), 200);
    assert!((0..300).all(|i| store.contains(key(i)) == (i % 3 != 1)));
    assert_eq!(store.evict_limit(1), 0);
    assert_eq!(store.evict_limit(7), 0);
    assert_eq!(store.evictions(), Evictions::default(), "not evictions");
    // Dropped keys start afresh.
    assert_eq!(remaining(&store, key(1), r, T0), 10);
    assert_eq!(remaining(&store, key(0), r, T0), 9);
}

#[test]
fn retain_limits_remaps_and_drops() {
    let store = MemoryStore::with_shards(10_000, 8);
    let r = fixed(100, Unit::Hour);
    for i in 0..30u64 {
        let mut it = hits(key(i), r, i + 1);
        it.limit = (i % 3) as u32;
        assert!(run(&store, &[it], T0).0);
    }
    // Limit 0 is gone from the config; 1 and 2 move down one place.
    let dropped = store.retain_limits(|limit| limit.checked_sub(1));
    assert_eq!(dropped, 10);
    assert_eq!(store.keys(), 20);
    let hottest = store.hottest(0, 3, T0);
    assert_eq!(hottest, [(key(28), 29), (key(25), 26), (key(22), 23)]);
    let hottest = store.hottest(1, 100, T0);
    assert_eq!(hottest.len(), 10);
    assert_eq!(hottest[0], (key(29), 30));
    assert!(store.hottest(2, 10, T0).is_empty());
}

/// Key info is taken on insert only, and drives usage summaries and
/// eviction by limit identity or text prefix.
#[test]
fn described_keys_feed_usage_and_selective_eviction() {
    let store = MemoryStore::with_shards(1_000, 4);
    let r = fixed(100, Unit::Hour);
    let calls = AtomicU64::new(0);
    let describe = |i: u64| {
        move |_item: usize| {
            Some(KeyInfo {
                limit: Some(i % 2),
                text: format!("api|tenant=t{i}#l{}", i % 2).into(),
            })
        }
    };
    for i in 0..10u64 {
        let info = describe(i);
        let counted = |item: usize| {
            calls.fetch_add(1, Ordering::Relaxed);
            info(item)
        };
        let mut verdicts = Vec::new();
        for _ in 0..=i {
            assert!(store.decide_sync_described(
                &[hits(key(i), r, 1)],
                T0,
                &mut verdicts,
                &counted
            ));
        }
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        10,
        "described on insert only"
    );
    let usage = store.usage(2, T0);
    assert_eq!(usage.len(), 2);
    assert_eq!((usage[0].limit, usage[1].limit), (0, 1));
    let top: Vec<(Option<&str>, u64)> = usage[1]
        .hottest
        .iter()
        .map(|hot| (hot.text.as_deref(), hot.used))
        .collect();
    assert_eq!(
        top,
        [
            (Some("api|tenant=t9#l1"), 10),
            (Some("api|tenant=t7#l1"), 8)
        ]
    );
    assert_eq!(store.count_keys(KeySelect::Limit(0)), 5);
    assert_eq!(store.count_keys(KeySelect::Prefix("api|tenant=t1")), 1);
    assert_eq!(store.evict_keys(KeySelect::Prefix("api|tenant=t1")), 1);
    assert_eq!(store.evict_keys(KeySelect::Limit(0)), 5);
    assert_eq!(store.keys(), 4);
    assert_eq!(store.evictions(), Evictions::default(), "not evictions");
    // Keys stored without info match nothing.
    assert!(run(&store, &[hits(key(99), r, 1)], T0).0);
    assert_eq!(store.count_keys(KeySelect::Prefix("")), 4);
    assert_eq!(store.keys(), 5);
}

#[test]
fn hottest_ranks_by_use_and_skips_idle_keys() {
    let store = MemoryStore::with_shards(1_000, 4);
    let fw = fixed(100, Unit::Minute);
    let leases = rate(Algorithm::Concurrency, 10, Unit::Minute);
    for (i, n) in [(1u64, 5u64), (2, 50), (3, 20), (4, 1)] {
        assert!(run(&store, &[hits(key(i), fw, n)], T0).0);
    }
    let mut lease_item = hits(key(9), leases, 1);
    lease_item.limit = 1;
    for _ in 0..3 {
        assert!(run(&store, &[lease_item], T0).0);
    }
    assert_eq!(
        store.hottest(0, 3, T0),
        [(key(2), 50), (key(3), 20), (key(1), 5)]
    );
    assert_eq!(store.hottest(1, 5, T0), [(key(9), 3)]);
    assert!(store.hottest(0, 0, T0).is_empty());
    // A minute later every window has rolled over: nothing is in use.
    assert!(store.hottest(0, 10, T0 + 60 * SECOND).is_empty());
    assert!(store.hottest(1, 10, T0 + 60 * SECOND).is_empty());
}

#[test]
fn clear_drops_every_key() {
    let store = MemoryStore::with_shards(1_000, 4);
    let r = fixed(1, Unit::Hour);
    for i in 0..100 {
        assert!(run(&store, &[hits(key(i), r, 1)], T0).0);
    }
    assert!(!run(&store, &[hits(key(5), r, 1)], T0).0);
    store.clear();
    assert_eq!(store.keys(), 0);
    assert_eq!(store.capacity(), 1_000);
    assert!(run(&store, &[hits(key(5), r, 1)], T0).0);
}

#[test]
fn concurrent_hits_keep_an_exact_global_count() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 10_000;
    const LIMIT: u64 = 50_000;
    let global = key(0);
    let window = fixed(LIMIT, Unit::Hour);

    // One hot key, the single-item path.
    let store = MemoryStore::new(10_000);
    let admitted = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let mut verdicts = Vec::new();
                for _ in 0..PER_THREAD {
                    if store.decide_sync(&[hits(global, window, 1)], T0, &mut verdicts) {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(admitted.load(Ordering::Relaxed), LIMIT);
    assert_eq!(remaining(&store, global, window, T0), 0);

    // Multi-item requests over shared keys in clashing orders: an exact
    // count, and no deadlock.
    let store = MemoryStore::new(10_000);
    let admitted = AtomicU64::new(0);
    let big = fixed(u64::MAX / 2, Unit::Hour);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (store, admitted) = (&store, &admitted);
            scope.spawn(move || {
                let own = hits(key(100 + t), big, 1);
                let pair = hits(key(200 + t / 2), big, 1);
                let shared = hits(global, window, 1);
                let request = if t % 2 == 0 {
                    [own, shared, pair]
                } else {
                    [pair, shared, own]
                };
                let mut verdicts = Vec::new();
                for _ in 0..PER_THREAD {
                    if block_on(store.decide(&request, T0, &mut verdicts, &undescribed))
                        .expect("memory")
                    {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(admitted.load(Ordering::Relaxed), LIMIT);
    let used: u64 = (0..THREADS)
        .map(|t| u64::MAX / 2 - remaining(&store, key(100 + t), big, T0))
        .sum();
    assert_eq!(used, LIMIT, "own keys consumed only with the shared one");
    let used: u64 = (0..THREADS / 2)
        .map(|p| u64::MAX / 2 - remaining(&store, key(200 + p), big, T0))
        .sum();
    assert_eq!(used, LIMIT);
}

#[test]
fn async_decide_wraps_decide_sync() {
    let store = MemoryStore::with_shards(10, 2);
    let r = fixed(1, Unit::Hour);
    let mut verdicts = Vec::new();
    let request = [hits(key(1), r, 1)];
    assert!(block_on(store.decide(&request, T0, &mut verdicts, &undescribed)).unwrap());
    assert!(!block_on(store.decide(&request, T0, &mut verdicts, &undescribed)).unwrap());
    assert_eq!(verdicts.len(), 1);
    assert!(block_on(store.decide(&[], T0, &mut verdicts, &undescribed)).unwrap());
    assert!(verdicts.is_empty());
    let stats = store.stats();
    assert_eq!(
        (stats.backend, stats.keys, stats.capacity),
        ("memory", 1, 10)
    );
    assert_eq!((stats.evicted_expired, stats.evicted_lru), (0, 0));
}

// ---- model check -------------------------------------------------------

/// The rates of the model's key pool: key `i` is always decided under
/// `POOL[i]` (a counter key belongs to one limit).
fn pool_rate(index: usize) -> Rate {
    match index {
        0 => fixed(3, Unit::Second),
        1 => rate(Algorithm::TokenBucket, 2, Unit::Second).with_burst(3),
        2 => rate(Algorithm::SlidingWindow, 4, Unit::Second),
        3 => rate(Algorithm::Concurrency, 2, Unit::Second),
        4 => fixed(5, Unit::Minute),
        _ => rate(Algorithm::TokenBucket, 3, Unit::Minute),
    }
}
const POOL: usize = 6;

/// The reference semantics, written plainly on a map: decide every item in
/// order on a copy; commit it if admitted, else apply only refunds and
/// releases to the original and report each limit's quota as left.
fn reference(
    map: &mut HashMap<u128, KeyState>,
    items: &[Item],
    now: Nanos,
) -> (bool, Vec<Verdict>) {
    let mut trial = map.clone();
    let mut admitted = true;
    let mut verdicts = Vec::new();
    for it in items {
        let verdict = decide(&it.rate, trial.entry(it.key).or_default(), it.cost, now);
        admitted &= verdict.admitted || it.shadow;
        verdicts.push(verdict);
    }
    if admitted {
        *map = trial;
        return (true, verdicts);
    }
    for it in items
        .iter()
        .filter(|it| !matches!(it.cost, Cost::Consume(_)))
    {
        decide(&it.rate, map.entry(it.key).or_default(), it.cost, now);
    }
    for (verdict, it) in verdicts.iter_mut().zip(items) {
        let left = decide(
            &it.rate,
            map.entry(it.key).or_default(),
            Cost::Consume(0),
            now,
        );
        verdict.remaining = left.remaining;
        verdict.reset_after = left.reset_after;
        verdict.lease = None;
    }
    (false, verdicts)
}

/// `limiter::decide_all` itself, for requests whose keys are distinct.
fn via_decide_all(
    map: &mut HashMap<u128, KeyState>,
    items: &[Item],
    now: Nanos,
) -> (bool, Vec<Verdict>) {
    let mut states: Vec<KeyState> = items
        .iter()
        .map(|it| map.get(&it.key).cloned().unwrap_or_default())
        .collect();
    let mut checks: Vec<Check<'_>> = items
        .iter()
        .zip(states.iter_mut())
        .map(|(it, state)| Check {
            rate: &it.rate,
            state,
            cost: it.cost,
            shadow: it.shadow,
        })
        .collect();
    let mut verdicts = Vec::new();
    let admitted = decide_all(&mut checks, now, &mut verdicts);
    for (it, state) in items.iter().zip(states) {
        map.insert(it.key, state);
    }
    (admitted, verdicts)
}

fn cost_strategy() -> impl Strategy<Value = Cost> {
    prop_oneof![
        6 => (0u64..4).prop_map(Cost::Consume),
        1 => (0u64..3).prop_map(Cost::Refund),
        1 => (0u64..5).prop_map(Cost::Release),
    ]
}

fn request_strategy() -> impl Strategy<Value = (Vec<(usize, Cost, bool)>, u64)> {
    (
        prop::collection::vec((0..POOL, cost_strategy(), prop::bool::weighted(0.15)), 1..5),
        0u64..1_500,
    )
}

fn to_items(spec: &[(usize, Cost, bool)]) -> Vec<Item> {
    spec.iter()
        .map(|&(index, cost, shadow)| Item {
            key: key(index as u64),
            limit: index as u32,
            rate: pool_rate(index),
            cost,
            shadow,
            tag: 0,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn store_matches_decide_all_on_a_map(
        requests in prop::collection::vec(request_strategy(), 1..60),
        shards in prop::sample::select(vec![1usize, 2, 8]),
    ) {
        let store = MemoryStore::with_shards(1_000, shards);
        let mut model: HashMap<u128, KeyState> = HashMap::new();
        let mut now = T0;
        let mut verdicts = Vec::new();
        for (step, (spec, advance_ms)) in requests.iter().enumerate() {
            now += advance_ms * MS;
            let items = to_items(spec);
            let distinct = items.iter().map(|it| it.key).collect::<HashSet<_>>().len() == items.len();
            let expected = if distinct {
                // Anchor the reference to decide_all itself.
                let mut anchored = model.clone();
                let by_decide_all = via_decide_all(&mut anchored, &items, now);
                let by_reference = reference(&mut model, &items, now);
                prop_assert_eq!(&by_decide_all, &by_reference, "step {}", step);
                prop_assert_eq!(&anchored, &model);
                by_reference
            } else {
                reference(&mut model, &items, now)
            };
            let admitted = store.decide_sync(&items, now, &mut verdicts);
            prop_assert_eq!((admitted, &verdicts), (expected.0, &expected.1), "step {} {:?}", step, spec);
            prop_assert!(store.keys() <= POOL as u64);
        }
        // Every key ends with the same quota in both.
        for index in 0..POOL {
            let it = to_items(&[(index, Cost::Consume(0), false)])[0];
            let expected = reference(&mut model, &[it], now).1;
            store.decide_sync(&[it], now, &mut verdicts);
            prop_assert_eq!(&verdicts, &expected);
        }
    }

    #[test]
    fn tiny_store_stays_bounded(
        requests in prop::collection::vec(request_strategy(), 1..80),
    ) {
        let store = MemoryStore::with_shards(2, 2);
        let mut now = T0;
        let mut verdicts = Vec::new();
        for (spec, advance_ms) in &requests {
            now += advance_ms * MS;
            let items = to_items(spec);
            store.decide_sync(&items, now, &mut verdicts);
            prop_assert_eq!(verdicts.len(), items.len());
            prop_assert!(store.keys() <= 2);
        }
    }
}
