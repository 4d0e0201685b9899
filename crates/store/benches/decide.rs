//! Microbenchmarks of one rate-limit decision: the pure algorithm, then the
//! in-memory store around it (hot key, two threads on one key, a working set
//! of a million keys, a three-key request), then the Redis store on a real
//! `redis-server` started on loopback (hot key; skipped, with the reason
//! printed, only when no `redis-server` binary exists).
//!
//! Run: `cargo bench -p floodgate-store --bench decide`.

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use floodgate_contract::rng::Rng;
use floodgate_limiter::{decide, Algorithm, Cost, KeyState, Nanos, Rate, Unit, Verdict};
use floodgate_store::{undescribed, CounterStore, Item, MemoryStore, RedisOptions, RedisStore};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// 2023-11-14T22:13:20Z.
const T0: Nanos = 1_700_000_000_000_000_000;
/// How far the clock moves per decision: keeps every algorithm on its
/// admitting path without ever reaching its limit.
const TICK: Nanos = 10;
const WORKING_SET: u64 = 1_000_000;
const SEED: u64 = 0x0F10_0D6A_7E5E_ED01;

/// Key number `i`, well mixed as the service's xxh3-128 keys are.
fn key(i: u64) -> u128 {
    let mut stream = Rng::from_state(i);
    let high = stream.next_u64();
    (u128::from(high) << 64) | u128::from(stream.next_u64())
}

/// A rate per algorithm that admits every benchmarked decision.
fn rate(algorithm: Algorithm) -> Rate {
    match algorithm {
        Algorithm::FixedWindow | Algorithm::SlidingWindow => {
            Rate::new(algorithm, 1 << 40, Unit::Hour)
        }
        // One token per nanosecond, refilling faster than TICK spends it.
        Algorithm::TokenBucket => {
            Rate::new(algorithm, 1_000_000_000, Unit::Second).with_burst(1_000)
        }
        Algorithm::Concurrency => Rate::new(algorithm, 1_000, Unit::Minute),
    }
}

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
}

/// One `limiter::decide` on one state. For `concurrency` one iteration is an
/// acquire and its release (two decisions), so the state stays the same size.
fn algorithm(c: &mut Criterion) {
    let mut group = c.benchmark_group("algorithm");
    configure(&mut group);
    for algorithm in Algorithm::ALL {
        let rate = rate(algorithm);
        let mut state = KeyState::Empty;
        let mut now = T0;
        group.bench_function(algorithm.as_str(), |b| {
            b.iter(|| {
                now += TICK;
                let verdict = decide(&rate, &mut state, black_box(Cost::Consume(1)), now);
                if let Some(lease) = verdict.lease {
                    decide(&rate, &mut state, Cost::Release(lease), now);
                }
                black_box(verdict)
            })
        });
    }
    group.finish();
}

/// One `MemoryStore::decide_sync` of one item on a hot key.
fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory_store/uncontended");
    configure(&mut group);
    for algorithm in Algorithm::ALL {
        let store = MemoryStore::new(1 << 16);
        let rate = rate(algorithm);
        let mut acquire = [Item::new(key(1), rate, Cost::Consume(1))];
        let mut release = acquire;
        let mut verdicts: Vec<Verdict> = Vec::with_capacity(4);
        let mut now = T0;
        group.bench_function(algorithm.as_str(), |b| {
            b.iter(|| {
                now += TICK;
                acquire[0].cost = black_box(Cost::Consume(1));
                let admitted = store.decide_sync(&acquire, now, &mut verdicts);
                if let Some(lease) = verdicts[0].lease {
                    release[0].cost = Cost::Release(lease);
                    store.decide_sync(&release, now, &mut verdicts);
                }
                black_box(admitted)
            })
        });
    }
    group.finish();
}

/// Two threads deciding on one key at once. Each thread makes `iters`
/// decisions; the time reported is the wall time over `iters`, i.e. the
/// latency of one decision as each thread sees it while the other competes
/// (the pair's throughput is twice its inverse).
fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory_store");
    configure(&mut group);
    let store = MemoryStore::new(1 << 16);
    let item = [Item::new(
        key(1),
        rate(Algorithm::FixedWindow),
        Cost::Consume(1),
    )];
    group.bench_function("contended_2_threads", |b| {
        b.iter_custom(|iters| {
            let start = Barrier::new(3);
            std::thread::scope(|scope| {
                for _ in 0..2 {
                    scope.spawn(|| {
                        let mut verdicts = Vec::with_capacity(4);
                        start.wait();
                        for i in 0..iters {
                            black_box(store.decide_sync(&item, T0 + i, &mut verdicts));
                        }
                    });
                }
                start.wait();
                let began = Instant::now();
                // Leaving the scope joins both threads.
                began
            })
            .elapsed()
        })
    });
    group.finish();
}

/// A million distinct keys stored; each iteration decides a key drawn by a
/// seeded splitmix64 (its cost, two splitmix64 rounds for the key, is
/// included), so most lookups miss the CPU caches as in production.
fn working_set(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory_store");
    configure(&mut group);
    let store = MemoryStore::new(1 << 20);
    let rate = rate(Algorithm::FixedWindow);
    let mut verdicts = Vec::with_capacity(4);
    let mut item = [Item::new(0, rate, Cost::Consume(1))];
    for i in 0..WORKING_SET {
        item[0].key = key(i);
        assert!(store.decide_sync(&item, T0, &mut verdicts));
    }
    assert_eq!(
        store.keys(),
        WORKING_SET,
        "the working set fits: nothing evicted"
    );
    println!("memory_store/working_set_1m: splitmix64 seed {SEED:#018x}");
    let mut prng = Rng::from_state(SEED);
    let mut now = T0;
    group.bench_function("working_set_1m", |b| {
        b.iter(|| {
            now += TICK;
            item[0].key = key(prng.next_u64() % WORKING_SET);
            black_box(store.decide_sync(&item, now, &mut verdicts))
        })
    });
    assert_eq!(store.keys(), WORKING_SET);
    group.finish();
}

/// One request of three limits on three keys (three shards at most): the
/// all-or-nothing path.
fn multi_item(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory_store");
    configure(&mut group);
    let store = MemoryStore::new(1 << 16);
    let items: Vec<Item> = (1..=3)
        .map(|i| Item::new(key(i), rate(Algorithm::FixedWindow), Cost::Consume(1)))
        .collect();
    let mut verdicts = Vec::with_capacity(4);
    let mut now = T0;
    group.bench_function("multi_item_3_keys", |b| {
        b.iter(|| {
            now += TICK;
            black_box(store.decide_sync(black_box(&items), now, &mut verdicts))
        })
    });
    group.finish();
}

/// One `RedisStore::decide` of one item on a hot key, on a `redis-server`
/// started on loopback for the run: the whole round trip (EVALSHA, the
/// script, the reply and its replay through the core), one request at a
/// time. For `concurrency` one iteration is an acquire and its release (two
/// round trips), as for the memory store.
fn redis_uncontended(c: &mut Criterion) {
    if !support::have_redis_server() {
        println!(
            "redis_store/uncontended: skipped: no redis-server binary on PATH \
             (apt-get install redis-server)"
        );
        return;
    }
    let server = support::RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let options = RedisOptions {
        // Measure, never fail on a slow sample.
        command_timeout: Duration::from_secs(1),
        ..RedisOptions::new(server.url())
    };
    let store = runtime
        .block_on(RedisStore::connect(options))
        .expect("connect to the benchmark's redis-server");
    let mut group = c.benchmark_group("redis_store/uncontended");
    configure(&mut group);
    for algorithm in Algorithm::ALL {
        let rate = rate(algorithm);
        let mut acquire = [Item::new(key(1), rate, Cost::Consume(1))];
        let mut release = acquire;
        let mut verdicts: Vec<Verdict> = Vec::with_capacity(4);
        let mut now = T0;
        group.bench_function(algorithm.as_str(), |b| {
            b.iter(|| {
                now += TICK;
                acquire[0].cost = black_box(Cost::Consume(1));
                runtime.block_on(async {
                    let admitted = store
                        .decide(&acquire, now, &mut verdicts, &undescribed)
                        .await
                        .expect("decide");
                    if let Some(lease) = verdicts[0].lease {
                        release[0].cost = Cost::Release(lease);
                        store
                            .decide(&release, now, &mut verdicts, &undescribed)
                            .await
                            .expect("release");
                    }
                    black_box(admitted)
                })
            })
        });
    }
    group.finish();
    drop(server);
}

criterion_group!(
    benches,
    algorithm,
    uncontended,
    contended,
    working_set,
    multi_item,
    redis_uncontended
);
criterion_main!(benches);
