//! The behaviour every counter store must have, as one suite run against
//! each store: the memory store, the Redis store on one real
//! `redis-server`, and the Redis store on a real three-node Redis Cluster.
//!
//! Each case is a generic `async fn(&impl Backend)`; `cases!` lists them
//! once and `suites!` instantiates one test per case for the memory store
//! and for Redis (each Redis test starts its own server), plus one test
//! that runs every case in turn on one cluster (each case with its own hash
//! tag, so the cases' keys spread over the nodes).
//!
//! The reference is the pure core: `floodgate_limiter::decide` applied
//! with the stores' semantics (`Model`), which is `decide_all` plus "only
//! an admitted consumption creates a key".
//!
//! Redis tests need `redis-server` installed; without it they fail with the
//! fix in the message.

mod support;

use floodgate_contract::rng::splitmix64;
use floodgate_limiter::{
    decide, Algorithm, Cost, KeyState, Nanos, Rate, Unit, Verdict, NANOS_PER_SECOND,
};
use floodgate_store::{
    domain_tag, undescribed, CounterStore, Item, MemoryStore, RedisOptions, RedisStore,
};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use support::{RedisCluster, RedisServer, Reply};

/// 2023-11-14T22:13:20Z: 800 s into an hour and 20 s into a minute.
const T0: Nanos = 1_700_000_000 * NANOS_PER_SECOND;
const MS: Nanos = 1_000_000;
const SECOND: Nanos = NANOS_PER_SECOND;
/// The Redis tests' TTL grace: long enough that no key the simulated clock
/// still needs can expire in real time while a test runs, however slow the
/// machine.
const TEST_TTL_GRACE: Duration = Duration::from_secs(120);

// ---- backends ------------------------------------------------------------

/// Whether a store holds a key, and (Redis) its TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Missing,
    /// `ttl_ms`: the key's remaining time to live, `None` if it has none.
    Stored {
        ttl_ms: Option<i64>,
    },
}

trait Backend {
    type Store: CounterStore;
    fn store(&self) -> &Self::Store;
    /// The tag every item of this backend's requests carries.
    fn tag(&self) -> u64;
    /// Whether `key` (with this backend's tag) is stored.
    fn presence(&self, key: u128) -> Presence;
    /// The TTL grace of a store whose keys have TTLs (`None`: no TTLs).
    fn ttl_grace(&self) -> Option<Duration>;
}

struct Memory {
    store: MemoryStore,
}

impl Memory {
    fn new() -> Memory {
        Memory {
            store: MemoryStore::with_shards(100_000, 8),
        }
    }
}

impl Backend for Memory {
    type Store = MemoryStore;

    fn store(&self) -> &MemoryStore {
        &self.store
    }

    fn tag(&self) -> u64 {
        0
    }

    fn presence(&self, key: u128) -> Presence {
        if self.store.contains(key) {
            Presence::Stored { ttl_ms: None }
        } else {
            Presence::Missing
        }
    }

    fn ttl_grace(&self) -> Option<Duration> {
        None
    }
}

enum Host<'a> {
    Server(RedisServer),
    Cluster(&'a RedisCluster),
}

struct Redis<'a> {
    host: Host<'a>,
    store: RedisStore,
    tag: u64,
}

impl<'a> Redis<'a> {
    fn options(url: String) -> RedisOptions {
        RedisOptions {
            ttl_grace: TEST_TTL_GRACE,
            // Generous: a loaded CI machine must not fail a behaviour test
            // on time (the timeout itself is tested in tests/redis.rs).
            command_timeout: Duration::from_secs(5),
            ..RedisOptions::new(url)
        }
    }

    /// A Redis store on a fresh server of its own.
    async fn standalone() -> Redis<'static> {
        let server = RedisServer::start();
        let store = RedisStore::connect(Redis::options(server.url()))
            .await
            .expect("connect to the test redis-server");
        Redis {
            host: Host::Server(server),
            store,
            tag: domain_tag("behaviour"),
        }
    }

    /// A Redis store on a shared cluster; `case` picks the hash tag.
    async fn on_cluster(cluster: &'a RedisCluster, case: &str) -> Redis<'a> {
        let store = RedisStore::connect(Redis::options(cluster.url()))
            .await
            .expect("connect to the test Redis Cluster");
        Redis {
            host: Host::Cluster(cluster),
            store,
            tag: domain_tag(case),
        }
    }

    fn command(&self, args: &[&str]) -> Reply {
        match &self.host {
            Host::Server(server) => server.command(args),
            Host::Cluster(cluster) => cluster.keyed_command(args),
        }
    }
}

impl Backend for Redis<'_> {
    type Store = RedisStore;

    fn store(&self) -> &RedisStore {
        &self.store
    }

    fn tag(&self) -> u64 {
        self.tag
    }

    fn presence(&self, key: u128) -> Presence {
        let name = self
            .store
            .key_name(&Item::new(key, fixed(1, Unit::Second), Cost::Consume(0)).with_tag(self.tag));
        match self.command(&["PTTL", &name]) {
            Reply::Int(-2) => Presence::Missing,
            Reply::Int(-1) => Presence::Stored { ttl_ms: None },
            Reply::Int(ms) => Presence::Stored { ttl_ms: Some(ms) },
            other => panic!("PTTL {name}: {other:?}"),
        }
    }

    fn ttl_grace(&self) -> Option<Duration> {
        Some(TEST_TTL_GRACE)
    }
}

// ---- helpers ---------------------------------------------------------------

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

fn shadow(mut item: Item) -> Item {
    item.shadow = true;
    item
}

/// Decides with the backend's tag and returns (admitted, verdicts).
async fn run<B: Backend>(b: &B, items: &[Item], now: Nanos) -> (bool, Vec<Verdict>) {
    let items: Vec<Item> = items.iter().map(|it| it.with_tag(b.tag())).collect();
    let mut verdicts = vec![Verdict {
        admitted: true,
        remaining: 99,
        reset_after: 99,
        lease: None,
    }];
    let admitted = b
        .store()
        .decide(&items, now, &mut verdicts, &undescribed)
        .await
        .unwrap_or_else(|error| panic!("decide {items:?} at {now}: {error}"));
    assert_eq!(verdicts.len(), items.len(), "one verdict per item");
    (admitted, verdicts)
}

/// What is left of `key`'s quota, by a check-only request.
async fn remaining<B: Backend>(b: &B, key: u128, rate: Rate, now: Nanos) -> u64 {
    let (admitted, verdicts) = run(b, &[hits(key, rate, 0)], now).await;
    assert!(admitted, "a check-only request is admitted");
    verdicts[0].remaining
}

fn stored<B: Backend>(b: &B, key: u128) -> bool {
    b.presence(key) != Presence::Missing
}

/// The stores' semantics on a plain map: `decide` on working copies; if
/// admitted, keep the states of keys already stored or consumed from; if
/// rejected, only refunds and releases apply to stored states, then each
/// limit's quota is read as the request left it.
#[derive(Debug, Default, Clone)]
struct Model {
    stored: HashMap<u128, KeyState>,
}

impl Model {
    fn decide(&mut self, items: &[Item], now: Nanos) -> (bool, Vec<Verdict>) {
        let mut work: HashMap<u128, KeyState> = HashMap::new();
        let mut creates = HashSet::new();
        let mut admitted = true;
        let mut verdicts = Vec::new();
        for it in items {
            let state = work
                .entry(it.key)
                .or_insert_with(|| self.stored.get(&it.key).cloned().unwrap_or_default());
            let verdict = decide(&it.rate, state, it.cost, now);
            if verdict.admitted && it.cost.consumed() > 0 {
                creates.insert(it.key);
            }
            admitted &= verdict.admitted || it.shadow;
            verdicts.push(verdict);
        }
        if admitted {
            for (key, state) in work {
                if self.stored.contains_key(&key) || creates.contains(&key) {
                    self.stored.insert(key, state);
                }
            }
            return (true, verdicts);
        }
        for it in items {
            if let (Some(state), false) = (
                self.stored.get_mut(&it.key),
                matches!(it.cost, Cost::Consume(_)),
            ) {
                decide(&it.rate, state, it.cost, now);
            }
        }
        for (verdict, it) in verdicts.iter_mut().zip(items) {
            let left = match self.stored.get_mut(&it.key) {
                Some(state) => decide(&it.rate, state, Cost::Consume(0), now),
                None => decide(&it.rate, &mut KeyState::Empty, Cost::Consume(0), now),
            };
            verdict.remaining = left.remaining;
            verdict.reset_after = left.reset_after;
            verdict.lease = None;
        }
        (false, verdicts)
    }
}

/// Decides on the backend and on the model; asserts they agree.
async fn both<B: Backend>(
    b: &B,
    model: &mut Model,
    items: &[Item],
    now: Nanos,
    context: &str,
) -> (bool, Vec<Verdict>) {
    let expected = model.decide(items, now);
    let got = run(b, items, now).await;
    assert_eq!(got, expected, "{context}: {items:?} at {now}");
    got
}

// ---- the cases ---------------------------------------------------------------

async fn fixed_window_admits_up_to_its_limit<B: Backend>(b: &B) {
    let (k, r) = (key(1), fixed(3, Unit::Minute));
    for i in 0..3 {
        let (admitted, verdicts) = run(b, &[hits(k, r, 1)], T0 + i * MS).await;
        assert!(admitted);
        assert_eq!(verdicts[0].remaining, 2 - i);
    }
    let (admitted, verdicts) = run(b, &[hits(k, r, 1)], T0 + 10 * MS).await;
    assert!(!admitted);
    assert_eq!(verdicts[0].remaining, 0);
    // T0 is 20 s into its minute.
    assert_eq!(verdicts[0].reset_after, 40 * SECOND - 10 * MS);
    // The next window starts whole; a cost larger than the quota never fits.
    assert!(!run(b, &[hits(k, r, 4)], T0 + 40 * SECOND).await.0);
    let (admitted, verdicts) = run(b, &[hits(k, r, 3)], T0 + 40 * SECOND).await;
    assert!(admitted);
    assert_eq!(verdicts[0].remaining, 0);
}

async fn token_bucket_bursts_then_refills<B: Backend>(b: &B) {
    // 4 per second (one every 250 ms), burst 3.
    let (k, r) = (
        key(2),
        rate(Algorithm::TokenBucket, 4, Unit::Second).with_burst(3),
    );
    for left in [2, 1, 0] {
        let (admitted, verdicts) = run(b, &[hits(k, r, 1)], T0).await;
        assert!(admitted);
        assert_eq!(verdicts[0].remaining, left);
    }
    let (admitted, verdicts) = run(b, &[hits(k, r, 1)], T0).await;
    assert!(!admitted);
    assert_eq!(verdicts[0].reset_after, 750 * MS);
    let (admitted, verdicts) = run(b, &[hits(k, r, 1)], T0 + 250 * MS).await;
    assert!(admitted, "one token came back");
    assert_eq!(verdicts[0].remaining, 0);
    assert_eq!(remaining(b, k, r, T0 + 2 * SECOND).await, 3, "full again");
}

async fn sliding_window_weighs_the_previous_window<B: Backend>(b: &B) {
    let (k, r) = (key(3), rate(Algorithm::SlidingWindow, 10, Unit::Minute));
    assert!(run(b, &[hits(k, r, 10)], T0).await.0);
    assert!(!run(b, &[hits(k, r, 1)], T0 + 39 * SECOND).await.0);
    // The next window starts at T0 + 40 s; 15 s into it the previous
    // window still weighs 45/60 × 10 = 7.5 hits: 2 fit, a third does not.
    let now = T0 + 55 * SECOND;
    assert_eq!(remaining(b, k, r, now).await, 2);
    assert!(run(b, &[hits(k, r, 2)], now).await.0);
    assert!(!run(b, &[hits(k, r, 1)], now).await.0);
    // 30 s in: 5 carried + 2 current, so 3 more.
    assert_eq!(remaining(b, k, r, T0 + 70 * SECOND).await, 3);
    // Two windows on, nothing is carried.
    assert_eq!(remaining(b, k, r, T0 + 160 * SECOND).await, 10);
}

async fn concurrency_leases_release_and_expire<B: Backend>(b: &B) {
    let (k, r) = (key(4), rate(Algorithm::Concurrency, 2, Unit::Minute));
    let (admitted, first) = run(b, &[hits(k, r, 1)], T0).await;
    assert!(admitted && first[0].lease == Some(1));
    let (admitted, second) = run(b, &[hits(k, r, 1)], T0).await;
    assert!(admitted && second[0].lease == Some(2));
    let (admitted, third) = run(b, &[hits(k, r, 1)], T0).await;
    assert!(!admitted);
    assert_eq!((third[0].lease, third[0].remaining), (None, 0));
    assert_eq!(
        third[0].reset_after,
        60 * SECOND,
        "the soonest lease expiry"
    );

    let later = T0 + 10 * SECOND;
    let (admitted, released) = run(b, &[item(k, r, Cost::Release(1))], later).await;
    assert!(admitted);
    assert_eq!(released[0].remaining, 1);
    let (admitted, unknown) = run(b, &[item(k, r, Cost::Release(99))], later).await;
    assert!(admitted, "releasing an unknown lease is a no-op");
    assert_eq!(unknown[0].remaining, 1);
    let (admitted, fourth) = run(b, &[hits(k, r, 1)], later).await;
    assert!(
        admitted && fourth[0].lease == Some(3),
        "lease ids keep increasing"
    );

    // A minute after T0 lease 2 has expired; lease 3 is still held.
    let expiry = T0 + 60 * SECOND;
    assert_eq!(remaining(b, k, r, expiry).await, 1);
    let (admitted, fifth) = run(b, &[hits(k, r, 1)], expiry).await;
    assert!(admitted && fifth[0].lease == Some(4));
    // A refund releases the oldest leases, never below zero.
    let (admitted, refunded) = run(b, &[item(k, r, Cost::Refund(5))], expiry).await;
    assert!(admitted);
    assert_eq!(refunded[0].remaining, 2);
}

async fn requests_are_all_or_nothing<B: Backend>(b: &B) {
    let [a, bk, c, d] = [10, 11, 12, 13].map(key);
    let (ra, rb) = (fixed(10, Unit::Hour), fixed(1, Unit::Hour));
    let rc = rate(Algorithm::TokenBucket, 5, Unit::Hour);
    let rd = rate(Algorithm::Concurrency, 2, Unit::Hour);
    let rs = rate(Algorithm::SlidingWindow, 4, Unit::Hour);
    let s = key(14);
    assert!(run(b, &[hits(a, ra, 3), hits(bk, rb, 1)], T0).await.0);

    // bk is exhausted: the whole request is rejected and the others keep
    // their quota; the verdicts still say which limit refused.
    let request = [
        hits(a, ra, 2),
        hits(c, rc, 1),
        hits(d, rd, 1),
        hits(s, rs, 3),
        hits(bk, rb, 1),
    ];
    let (admitted, verdicts) = run(b, &request, T0 + SECOND).await;
    assert!(!admitted);
    let said_yes: Vec<bool> = verdicts.iter().map(|v| v.admitted).collect();
    assert_eq!(said_yes, [true, true, true, true, false]);
    let left: Vec<u64> = verdicts.iter().map(|v| v.remaining).collect();
    assert_eq!(
        left,
        [7, 5, 2, 4, 0],
        "each limit reports its unchanged quota"
    );
    assert_eq!(verdicts[2].lease, None, "no lease from a rejected request");
    assert_eq!(remaining(b, a, ra, T0 + SECOND).await, 7);
    assert_eq!(remaining(b, c, rc, T0 + SECOND).await, 5);
    assert_eq!(remaining(b, d, rd, T0 + SECOND).await, 2);
    assert_eq!(remaining(b, s, rs, T0 + SECOND).await, 4);
    assert!(
        !stored(b, c) && !stored(b, d) && !stored(b, s),
        "never stored"
    );

    // A refund in a rejected request still applies.
    let request = [item(a, ra, Cost::Refund(2)), hits(bk, rb, 1)];
    let (admitted, verdicts) = run(b, &request, T0 + SECOND).await;
    assert!(!admitted);
    assert_eq!(verdicts[0].remaining, 9);
    assert_eq!(remaining(b, a, ra, T0 + SECOND).await, 9);

    // So does a lease release.
    let (admitted, acquired) = run(b, &[hits(d, rd, 1)], T0 + SECOND).await;
    assert!(admitted);
    let lease = acquired[0].lease.expect("a lease");
    let request = [item(d, rd, Cost::Release(lease)), hits(bk, rb, 1)];
    assert!(!run(b, &request, T0 + SECOND).await.0);
    assert_eq!(remaining(b, d, rd, T0 + SECOND).await, 2);

    // Once bk's window ends, the same request is admitted whole.
    let next_hour = T0 + 3_600 * SECOND;
    let (admitted, verdicts) = run(b, &[hits(a, ra, 2), hits(bk, rb, 1)], next_hour).await;
    assert!(admitted);
    assert_eq!((verdicts[0].remaining, verdicts[1].remaining), (8, 0));
}

async fn shadow_limits_never_reject<B: Backend>(b: &B) {
    let (a, s) = (key(20), key(21));
    let (ra, rs) = (fixed(10, Unit::Hour), fixed(1, Unit::Hour));
    assert!(run(b, &[hits(s, rs, 1)], T0).await.0);
    let (admitted, verdicts) = run(b, &[hits(a, ra, 1), shadow(hits(s, rs, 1))], T0).await;
    assert!(admitted, "an over-limit shadow limit does not reject");
    assert!(!verdicts[1].admitted, "but it says it is over");
    assert_eq!(remaining(b, a, ra, T0).await, 9);

    // In a rejected request a shadow limit consumes nothing either.
    let (x, rx) = (key(22), fixed(5, Unit::Hour));
    let request = [shadow(hits(x, rx, 2)), hits(a, ra, 50)];
    assert!(!run(b, &request, T0).await.0);
    assert_eq!(remaining(b, x, rx, T0).await, 5);
}

async fn same_key_twice_shares_one_state<B: Backend>(b: &B) {
    let (k, other) = (key(30), key(31));
    let r = fixed(3, Unit::Hour);
    // 2 + 2 > 3: the second sees the first's hits, so all is rejected.
    let (admitted, verdicts) = run(b, &[hits(k, r, 2), hits(k, r, 2)], T0).await;
    assert!(!admitted);
    assert!(verdicts[0].admitted && !verdicts[1].admitted);
    assert_eq!((verdicts[0].remaining, verdicts[1].remaining), (3, 3));
    assert!(!stored(b, k));

    let request = [hits(k, r, 1), hits(other, r, 1), hits(k, r, 2)];
    let (admitted, verdicts) = run(b, &request, T0).await;
    assert!(admitted);
    assert_eq!((verdicts[0].remaining, verdicts[2].remaining), (2, 0));
    assert_eq!(remaining(b, k, r, T0).await, 0);
    assert_eq!(remaining(b, other, r, T0).await, 2);

    // A refund then a consume of one stored key in one request.
    let request = [item(k, r, Cost::Refund(2)), hits(k, r, 1)];
    let (admitted, verdicts) = run(b, &request, T0).await;
    assert!(admitted);
    assert_eq!((verdicts[0].remaining, verdicts[1].remaining), (2, 1));
    assert_eq!(remaining(b, k, r, T0).await, 1);
}

async fn refunds_never_go_below_zero<B: Backend>(b: &B) {
    for (index, algorithm) in Algorithm::ALL.into_iter().enumerate() {
        let (k, r) = (key(40 + index as u64), rate(algorithm, 5, Unit::Minute));
        let (admitted, verdicts) = run(b, &[hits(k, r, 2)], T0).await;
        assert!(admitted);
        assert_eq!(verdicts[0].remaining, 3, "{algorithm}");
        let (admitted, verdicts) = run(b, &[item(k, r, Cost::Refund(5))], T0).await;
        assert!(admitted);
        assert_eq!(
            verdicts[0].remaining, 5,
            "{algorithm}: a whole quota, no more"
        );
        assert_eq!(remaining(b, k, r, T0).await, 5, "{algorithm}");
        assert!(run(b, &[hits(k, r, 5)], T0).await.0, "{algorithm}");
        assert!(!run(b, &[hits(k, r, 1)], T0).await.0, "{algorithm}");
        // A refund on a key never used changes nothing and stores nothing.
        let fresh = key(50 + index as u64);
        let (admitted, verdicts) = run(b, &[item(fresh, r, Cost::Refund(3))], T0).await;
        assert!(admitted);
        assert_eq!(verdicts[0].remaining, 5, "{algorithm}");
        assert!(!stored(b, fresh), "{algorithm}");
    }
}

async fn check_only_consumes_and_stores_nothing<B: Backend>(b: &B) {
    for (index, algorithm) in Algorithm::ALL.into_iter().enumerate() {
        let (k, r) = (key(60 + index as u64), rate(algorithm, 4, Unit::Minute));
        for _ in 0..3 {
            let (admitted, verdicts) = run(b, &[hits(k, r, 0)], T0).await;
            assert!(admitted, "{algorithm}");
            assert_eq!(verdicts[0].remaining, 4, "{algorithm}");
            assert_eq!(
                verdicts[0].lease, None,
                "{algorithm}: a check takes no lease"
            );
        }
        assert!(!stored(b, k), "{algorithm}: a check stores nothing");
        assert!(run(b, &[hits(k, r, 1)], T0).await.0);
        for _ in 0..3 {
            assert_eq!(remaining(b, k, r, T0).await, 3, "{algorithm}");
        }
        assert!(run(b, &[hits(k, r, 3)], T0).await.0, "{algorithm}");
        let (admitted, verdicts) = run(b, &[hits(k, r, 0)], T0).await;
        assert!(admitted, "{algorithm}: a check of a full limit is admitted");
        assert_eq!(verdicts[0].remaining, 0, "{algorithm}");
    }
}

async fn rejected_requests_store_nothing<B: Backend>(b: &B) {
    let mut i = 100;
    let mut next = || {
        i += 1;
        key(i)
    };
    let mut untouched = Vec::new();
    for algorithm in Algorithm::ALL {
        let r = rate(algorithm, 10, Unit::Minute);
        let over = next();
        assert!(!run(b, &[hits(over, r, 11)], T0).await.0, "over the limit");
        let release = next();
        assert!(run(b, &[item(release, r, Cost::Release(1))], T0).await.0);
        let shadowed = next();
        let (admitted, verdicts) = run(b, &[shadow(hits(shadowed, r, 11))], T0).await;
        assert!(admitted && !verdicts[0].admitted, "shadow over the limit");
        let (c1, c2, refund) = (next(), next(), next());
        let request = [
            hits(c1, r, 0),
            hits(c2, r, 0),
            item(refund, r, Cost::Refund(1)),
        ];
        assert!(run(b, &request, T0).await.0);
        untouched.extend([over, release, shadowed, c1, c2, refund]);
    }
    for k in untouched {
        assert!(!stored(b, k));
    }

    // A rejected multi-item request does not store its admissible new keys.
    let (limited, one) = (next(), fixed(1, Unit::Hour));
    assert!(run(b, &[hits(limited, one, 1)], T0).await.0);
    let fresh = next();
    let request = [hits(fresh, fixed(10, Unit::Hour), 1), hits(limited, one, 1)];
    assert!(!run(b, &request, T0).await.0);
    assert!(!stored(b, fresh));

    // An admitted one stores only the keys it consumed from.
    let (consumed, checked) = (next(), next());
    let request = [hits(consumed, one, 1), hits(checked, one, 0)];
    assert!(run(b, &request, T0).await.0);
    assert!(stored(b, consumed) && !stored(b, checked));
}

async fn every_stored_key_has_a_ttl<B: Backend>(b: &B) {
    let rates = [
        fixed(5, Unit::Minute),
        rate(Algorithm::TokenBucket, 5, Unit::Minute).with_burst(10),
        rate(Algorithm::SlidingWindow, 5, Unit::Minute),
        rate(Algorithm::Concurrency, 5, Unit::Minute),
        fixed(5, Unit::Year),
    ];
    let mut model = Model::default();
    // A key's TTL is set when its state is written: its expiry minus the
    // `now` of that write (at least T0, at most the latest `now`), plus the
    // grace. An unchanged state is not rewritten, so the simulated clock
    // moving on does not shorten the TTL (in production `now` is real time
    // and Redis counts the TTL down itself).
    let check = |model: &Model, k: u128, r: &Rate, now: Nanos, what: &str| {
        let expires_at = model
            .stored
            .get(&k)
            .expect("the model stores it")
            .expires_at(r);
        match (b.presence(k), b.ttl_grace()) {
            (Presence::Stored { ttl_ms: Some(ttl) }, Some(grace)) => {
                let grace = grace.as_millis() as u64;
                let most = expires_at.saturating_sub(T0).div_ceil(MS) + grace;
                let least = expires_at.saturating_sub(now).div_ceil(MS) + grace;
                assert!(ttl > 0, "{what}: {ttl}");
                assert!(ttl as u64 <= most, "{what}: TTL {ttl} ms > {most} ms");
                // Not much less either: only real milliseconds went by.
                assert!(
                    ttl as u64 + 60_000 >= least,
                    "{what}: TTL {ttl} ms ≪ {least} ms"
                );
            }
            (Presence::Stored { ttl_ms: None }, None) => {}
            (presence, grace) => panic!("{what}: {presence:?} (grace {grace:?})"),
        }
    };
    for (index, r) in rates.iter().enumerate() {
        let k = key(200 + index as u64);
        let what = format!("{} per {}", r.algorithm, r.unit);
        both(b, &mut model, &[hits(k, *r, 2)], T0, &what).await;
        check(&model, k, r, T0, &what);
        // Rejected and check-only requests on a stored key keep a TTL.
        both(b, &mut model, &[hits(k, *r, 50)], T0 + SECOND, &what).await;
        check(&model, k, r, T0 + SECOND, &what);
        both(b, &mut model, &[hits(k, *r, 0)], T0 + 2 * SECOND, &what).await;
        check(&model, k, r, T0 + 2 * SECOND, &what);
        // Emptied by a refund, the key still lives only the grace.
        both(
            b,
            &mut model,
            &[item(k, *r, Cost::Refund(50))],
            T0 + 3 * SECOND,
            &what,
        )
        .await;
        check(&model, k, r, T0 + 3 * SECOND, &what);
    }
}

async fn clock_stepping_back_never_admits_extra<B: Backend>(b: &B) {
    let mut model = Model::default();
    for (index, algorithm) in Algorithm::ALL.into_iter().enumerate() {
        for (u, unit) in [Unit::Second, Unit::Minute, Unit::Hour]
            .into_iter()
            .enumerate()
        {
            let k = key(300 + 10 * index as u64 + u as u64);
            let r = rate(algorithm, 3, unit);
            let what = format!("{algorithm} per {unit}");
            let at = T0 + 30 * SECOND;
            let (admitted, _) = both(b, &mut model, &[hits(k, r, 3)], at, &what).await;
            assert!(admitted, "{what}");
            for back in [
                MS,
                SECOND,
                10 * SECOND,
                30 * SECOND,
                3_600 * SECOND,
                86_400 * SECOND,
            ] {
                let (admitted, verdicts) =
                    both(b, &mut model, &[hits(k, r, 1)], at - back, &what).await;
                assert!(!admitted, "{what}: {back} ns back admitted {verdicts:?}");
            }
            // And forward again, time has not moved past `at` for the key.
            let (admitted, _) = both(b, &mut model, &[hits(k, r, 1)], at, &what).await;
            assert!(!admitted, "{what}");
        }
    }
}

/// After a limit is exhausted, the first instant the core admits one more
/// hit (found by bisection on the model): the store must reject one
/// nanosecond before it and admit at it.
async fn admission_boundaries_are_exact_to_the_nanosecond<B: Backend>(b: &B) {
    let rates = [
        fixed(3, Unit::Second),
        fixed(7, Unit::Day),
        rate(Algorithm::TokenBucket, 3, Unit::Second).with_burst(2),
        rate(Algorithm::TokenBucket, 7, Unit::Hour).with_burst(5),
        rate(Algorithm::SlidingWindow, 4, Unit::Second),
        rate(Algorithm::SlidingWindow, 7, Unit::Minute),
        rate(Algorithm::SlidingWindow, 1_000_003, Unit::Day),
        rate(Algorithm::Concurrency, 3, Unit::Second),
    ];
    let mut model = Model::default();
    for (index, r) in rates.iter().enumerate() {
        let k = key(500 + index as u64);
        let what = format!("{} {} per {}", r.algorithm, r.requests_per_unit, r.unit);
        // Use it up over two odd instants; then, three times, find the
        // next admission's boundary and use up what it left.
        let mut now = T0 + 123_456_789;
        let quota = r.burst.min(r.requests_per_unit);
        for part in [quota / 2, quota - quota / 2] {
            both(b, &mut model, &[hits(k, *r, part)], now, &what).await;
            now += 7_777_777;
        }
        for _ in 0..3 {
            let left = model.clone().decide(&[hits(k, *r, 0)], now).1[0].remaining;
            if left > 0 {
                both(b, &mut model, &[hits(k, *r, left)], now, &what).await;
            }
            let admits = |at: Nanos| model.clone().decide(&[hits(k, *r, 1)], at).0;
            let (mut low, mut high) = (now, now + 3 * r.period());
            assert!(!admits(low) && admits(high), "{what}");
            while high - low > 1 {
                let mid = low + (high - low) / 2;
                if admits(mid) {
                    high = mid;
                } else {
                    low = mid;
                }
            }
            let (before, _) = both(b, &mut model, &[hits(k, *r, 1)], high - 1, &what).await;
            let (at, _) = both(b, &mut model, &[hits(k, *r, 1)], high, &what).await;
            assert!(!before && at, "{what}: boundary at {high}");
            now = high;
        }
    }
}

/// The rates of the random requests' key pool: key `i` is always decided
/// under `pool_rate(i)` (a counter key belongs to one limit).
fn pool_rate(index: usize) -> Rate {
    match index {
        0 => fixed(3, Unit::Second),
        1 => rate(Algorithm::TokenBucket, 2, Unit::Second).with_burst(3),
        2 => rate(Algorithm::SlidingWindow, 4, Unit::Second),
        3 => rate(Algorithm::Concurrency, 2, Unit::Second),
        4 => fixed(5, Unit::Minute),
        5 => rate(Algorithm::SlidingWindow, 7, Unit::Minute),
        6 => rate(Algorithm::Concurrency, 5, Unit::Minute),
        _ => rate(Algorithm::TokenBucket, 3, Unit::Minute),
    }
}
const POOL: u64 = 8;

async fn random_requests_match_the_core<B: Backend>(b: &B) {
    let mut model = Model::default();
    let mut x = 0x00F1_00D6_A7E5_EED1_u64;
    let mut draw = |bound: u64| {
        x = splitmix64(x);
        x % bound
    };
    let mut now = T0;
    for step in 0..2_500 {
        // Mostly forward; one step in eight, back by up to 3 s; to the
        // nanosecond.
        if draw(8) == 0 {
            now -= draw(3 * SECOND);
        } else {
            now += draw(1_500 * MS);
        }
        let items: Vec<Item> = (0..1 + draw(4))
            .map(|_| {
                let index = draw(POOL);
                let cost = match draw(10) {
                    0 => Cost::Refund(draw(3)),
                    1 => Cost::Release(draw(6)),
                    _ => Cost::Consume(draw(4)),
                };
                let it = item(key(1_000 + index), pool_rate(index as usize), cost);
                if draw(7) == 0 {
                    shadow(it)
                } else {
                    it
                }
            })
            .collect();
        both(b, &mut model, &items, now, &format!("step {step}")).await;
    }
    for index in 0..POOL {
        let k = key(1_000 + index);
        let check = [hits(k, pool_rate(index as usize), 0)];
        both(b, &mut model, &check, now, "final quota").await;
        assert_eq!(stored(b, k), model.stored.contains_key(&k), "key {index}");
    }
}

/// Limits, costs and times at the ends of their ranges: the Redis script's
/// 64-bit arithmetic (Lua numbers are doubles) against the core's.
async fn extreme_values_match_the_core<B: Backend>(b: &B) {
    let rates = [
        fixed(u64::MAX, Unit::Second),
        fixed(u64::MAX / 2 + 7, Unit::Year),
        rate(Algorithm::TokenBucket, u64::MAX, Unit::Second).with_burst(u64::MAX),
        rate(Algorithm::TokenBucket, 1, Unit::Year).with_burst(u64::MAX / 3),
        rate(Algorithm::TokenBucket, 3, Unit::Week).with_burst(1 << 60),
        rate(Algorithm::SlidingWindow, u64::MAX, Unit::Year),
        rate(Algorithm::SlidingWindow, (1 << 53) + 1, Unit::Day),
        rate(Algorithm::Concurrency, u64::MAX, Unit::Year),
        rate(Algorithm::Concurrency, 1 << 60, Unit::Second),
    ];
    let costs = [
        0,
        1,
        2,
        (1 << 53) - 1,
        1 << 53,
        (1 << 53) + 1,
        u64::MAX / 3,
        u64::MAX / 2,
        u64::MAX - 1,
        u64::MAX,
    ];
    let starts = [
        1,
        (1 << 53) + 3,
        T0 + 123_456_789,
        1 << 63,
        u64::MAX - 40 * SECOND,
        u64::MAX - 2,
    ];
    let mut model = Model::default();
    let mut x = 0x5EED_0FE4_7E4E_u64;
    let mut draw = |bound: u64| {
        x = splitmix64(x);
        x % bound
    };
    for (s, &start) in starts.iter().enumerate() {
        let mut now = start;
        for step in 0..120 {
            now = match draw(6) {
                0 => now.saturating_sub(draw(5 * SECOND)),
                1 => now.saturating_add(draw(1 << 62)),
                _ => now.saturating_add(draw(3 * SECOND)),
            };
            let items: Vec<Item> = (0..1 + draw(3))
                .map(|_| {
                    let index = draw(rates.len() as u64);
                    let amount = costs[draw(costs.len() as u64) as usize];
                    let cost = match draw(8) {
                        0 | 1 => Cost::Refund(amount),
                        2 => Cost::Release(draw(4)),
                        _ => Cost::Consume(amount),
                    };
                    let k = key(2_000 + 100 * s as u64 + index);
                    item(k, rates[index as usize], cost)
                })
                .collect();
            both(
                b,
                &mut model,
                &items,
                now,
                &format!("start {start} step {step}"),
            )
            .await;
        }
    }
}

// ---- instantiation -----------------------------------------------------------

macro_rules! cases {
    ($then:ident) => {
        $then! {
            fixed_window_admits_up_to_its_limit,
            token_bucket_bursts_then_refills,
            sliding_window_weighs_the_previous_window,
            concurrency_leases_release_and_expire,
            requests_are_all_or_nothing,
            shadow_limits_never_reject,
            same_key_twice_shares_one_state,
            refunds_never_go_below_zero,
            check_only_consumes_and_stores_nothing,
            rejected_requests_store_nothing,
            every_stored_key_has_a_ttl,
            clock_stepping_back_never_admits_extra,
            admission_boundaries_are_exact_to_the_nanosecond,
            random_requests_match_the_core,
            extreme_values_match_the_core,
        }
    };
}

macro_rules! suites {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&super::Memory::new()).await;
                }
            )*
        }

        mod redis {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&super::Redis::standalone().await).await;
                }
            )*
        }

        /// The whole suite on a three-node Redis Cluster started for it.
        #[tokio::test]
        async fn redis_cluster_runs_the_whole_suite() {
            let cluster = RedisCluster::start(3);
            $(
                $case(&Redis::on_cluster(&cluster, stringify!($case)).await).await;
            )*
        }
    };
}

cases!(suites);
