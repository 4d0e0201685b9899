//! What only the Redis store has: key layout, failures (Redis killed,
//! stalled, restarted empty, scripts flushed, nothing listening, garbage in
//! a key), several instances sharing one Redis, and Redis Cluster slots.
//! Its behaviour as a counter store is `tests/behaviour.rs`.
//!
//! Every test starts its own `redis-server` (or cluster) on ephemeral
//! loopback ports; without `redis-server` installed they fail with the fix
//! in the message.

mod support;

use floodgate_limiter::{Algorithm, Cost, Nanos, Rate, Unit, Verdict, NANOS_PER_SECOND};
use floodgate_store::{
    domain_tag, undescribed, CounterStore, Item, RedisOptions, RedisStore, StoreError,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{RedisCluster, RedisServer, Reply};

const T0: Nanos = 1_700_000_000 * NANOS_PER_SECOND;
/// Recovery polls after Redis comes back, `RECOVERY_POLL` apart: the store
/// reconnects in the background with a short backoff.
const RECOVERY_ATTEMPTS: usize = 400;
const RECOVERY_POLL: Duration = Duration::from_millis(25);

fn key(i: u64) -> u128 {
    u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) ^ 0x5555
}

fn fixed(limit: u64, unit: Unit) -> Rate {
    Rate::new(Algorithm::FixedWindow, limit, unit)
}

fn hits(key: u128, rate: Rate, hits: u64) -> Item {
    Item::new(key, rate, Cost::Consume(hits))
}

async fn decide(
    store: &RedisStore,
    items: &[Item],
    now: Nanos,
) -> Result<(bool, Vec<Verdict>), StoreError> {
    let mut verdicts = Vec::new();
    let admitted = store
        .decide(items, now, &mut verdicts, &undescribed)
        .await?;
    Ok((admitted, verdicts))
}

/// Decides until the store answers again (Redis came back), at most
/// `RECOVERY_ATTEMPTS` times; every failure on the way must be transient.
async fn decide_once_recovered(
    store: &RedisStore,
    items: &[Item],
    now: Nanos,
) -> (bool, Vec<Verdict>) {
    for _ in 0..RECOVERY_ATTEMPTS {
        match decide(store, items, now).await {
            Ok(answer) => return answer,
            Err(error) => {
                assert!(error.is_transient(), "while recovering: {error}");
                tokio::time::sleep(RECOVERY_POLL).await;
            }
        }
    }
    panic!("the store did not recover after {RECOVERY_ATTEMPTS} attempts");
}

fn script_cached(server: &RedisServer, store: &RedisStore) -> bool {
    match server.command(&["SCRIPT", "EXISTS", store.script_sha1()]) {
        Reply::Array(flags) => flags == [Reply::Int(1)],
        other => panic!("SCRIPT EXISTS: {other:?}"),
    }
}

#[tokio::test]
async fn keys_carry_prefix_hash_tag_and_counter_key_and_hold_the_state() {
    let server = RedisServer::start();
    let options = RedisOptions {
        key_prefix: "fg-test".into(),
        ..RedisOptions::new(server.url())
    };
    let store = RedisStore::connect(options).await.expect("connect");
    let it = hits(
        0x0123_4567_89ab_cdef_0011_2233_4455_6677,
        fixed(5, Unit::Hour),
        2,
    )
    .with_tag(0xabc);
    assert!(decide(&store, &[it], T0).await.unwrap().0);
    let name = store.key_name(&it);
    assert_eq!(
        name,
        "fg-test:{0000000000000abc}:0123456789abcdef0011223344556677"
    );
    let start = T0 - T0 % (3_600 * NANOS_PER_SECOND);
    assert_eq!(
        server.command(&["GET", &name]),
        Reply::Bulk(Some(format!("w:{start:016x}:{:016x}", 2).into_bytes()))
    );
    // The TTL: the window's end (800 s after T0) plus the default 1 s grace.
    let Reply::Int(ttl) = server.command(&["PTTL", &name]) else {
        panic!("PTTL")
    };
    assert!((1..=2_801_000).contains(&ttl), "{ttl}");
    assert_eq!(server.command(&["DBSIZE"]), Reply::Int(1));
    let stats = store.stats();
    assert_eq!((stats.backend, stats.keys, stats.capacity), ("redis", 0, 0));
}

#[tokio::test]
async fn redis_killed_fails_fast_then_recovers_when_restarted_empty() {
    let mut server = RedisServer::start();
    let store = RedisStore::connect(RedisOptions::new(server.url()))
        .await
        .expect("connect");
    let r = fixed(5, Unit::Hour);
    let it = [hits(key(1), r, 1)];
    let (admitted, verdicts) = decide(&store, &it, T0).await.unwrap();
    assert!(admitted && verdicts[0].remaining == 4);
    assert!(store.ping().await.is_ok());

    server.kill();
    for _ in 0..3 {
        let error = decide(&store, &it, T0).await.unwrap_err();
        assert!(
            matches!(error, StoreError::Unavailable(_) | StoreError::Timeout(_)),
            "{error:?}"
        );
        assert!(error.is_transient());
        assert!(store.ping().await.unwrap_err().is_transient());
    }

    // An empty Redis on the same port: no keys, no cached script. The same
    // store reconnects, reloads its script on NOSCRIPT, and starts afresh.
    server.restart();
    assert_eq!(server.command(&["DBSIZE"]), Reply::Int(0));
    let (admitted, verdicts) = decide_once_recovered(&store, &it, T0).await;
    assert!(admitted);
    assert_eq!(
        verdicts[0].remaining, 4,
        "the counter started again from empty"
    );
    assert!(
        script_cached(&server, &store),
        "the script was loaded again"
    );
    assert!(store.ping().await.is_ok());
}

#[tokio::test]
async fn a_stalled_redis_times_out_then_answers_again() {
    let server = RedisServer::start();
    let store = RedisStore::connect(RedisOptions::new(server.url()))
        .await
        .expect("connect");
    let it = [hits(key(2), fixed(5, Unit::Hour), 1)];
    assert!(decide(&store, &it, T0).await.unwrap().0);

    // SIGSTOP: the connection stays open and nothing answers.
    server.pause();
    let error = decide(&store, &it, T0).await.unwrap_err();
    assert!(
        matches!(error, StoreError::Timeout(limit) if limit == Duration::from_millis(50)),
        "{error:?}"
    );
    assert!(matches!(store.ping().await, Err(StoreError::Timeout(_))));
    server.resume();

    // The timed-out decision may still have run once Redis resumed (the
    // caller could not know): so 3 or 2 left after this one.
    let (admitted, verdicts) = decide_once_recovered(&store, &it, T0).await;
    assert!(admitted);
    assert!((2..=3).contains(&verdicts[0].remaining), "{verdicts:?}");
}

#[tokio::test]
async fn a_flushed_script_cache_is_reloaded_on_noscript() {
    let server = RedisServer::start();
    let store = RedisStore::connect(RedisOptions::new(server.url()))
        .await
        .expect("connect");
    let it = [hits(key(3), fixed(5, Unit::Hour), 1)];
    assert!(decide(&store, &it, T0).await.unwrap().0);
    assert!(script_cached(&server, &store));
    assert_eq!(
        server.command(&["SCRIPT", "FLUSH"]),
        Reply::Status("OK".into())
    );
    assert!(!script_cached(&server, &store));
    let (admitted, verdicts) = decide(&store, &it, T0).await.expect("reloaded on NOSCRIPT");
    assert!(admitted);
    assert_eq!(verdicts[0].remaining, 3, "the counter is intact");
    assert!(script_cached(&server, &store));
}

#[tokio::test]
async fn nothing_listening_fails_fast_with_a_transient_error() {
    // A port nobody listens on: bound and never listening (connections
    // are refused), held for the whole test so no other process takes it.
    let closed = tokio::net::TcpSocket::new_v4().expect("a socket");
    closed
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind 127.0.0.1:0");
    let port = closed.local_addr().expect("bound address").port();
    let options = RedisOptions::new(format!("redis://127.0.0.1:{port}"));
    let error = RedisStore::connect(options.clone()).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    // Built lazily, the store exists; its decisions fail transiently.
    let store = RedisStore::new(options).expect("lazy store");
    let error = decide(&store, &[hits(key(4), fixed(5, Unit::Hour), 1)], T0)
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    // Invalid options are not transient.
    let bad = RedisOptions {
        pool_size: 0,
        ..RedisOptions::new("redis://127.0.0.1:1")
    };
    assert!(!RedisStore::new(bad).unwrap_err().is_transient());
}

#[tokio::test]
async fn garbage_in_a_key_is_a_backend_error() {
    let server = RedisServer::start();
    let store = RedisStore::connect(RedisOptions::new(server.url()))
        .await
        .expect("connect");
    let it = hits(key(5), fixed(5, Unit::Hour), 1);
    let name = store.key_name(&it);
    server.command(&["SET", &name, "not a state"]);
    let error = decide(&store, &[it], T0).await.unwrap_err();
    assert!(
        matches!(error, StoreError::Backend(_)) && !error.is_transient(),
        "{error:?}"
    );
    server.command(&["DEL", &name]);
    server.command(&["HSET", &name, "a", "b"]);
    let error = decide(&store, &[it], T0).await.unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    // Other keys are unaffected.
    assert!(
        decide(&store, &[hits(key(6), fixed(5, Unit::Hour), 1)], T0)
            .await
            .unwrap()
            .0
    );
}

/// Two stores (two service instances) on one Redis, four tasks each, all
/// at once: one global limit, enforced exactly, and all or nothing across a
/// shared and a per-task key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_one_redis_enforce_one_limit_exactly() {
    const LIMIT: u64 = 1_000;
    const TASKS_PER_INSTANCE: u64 = 4;
    const REQUESTS_PER_TASK: u64 = 400;
    let server = RedisServer::start();
    let options = RedisOptions {
        // Generous: this test counts, it does not time.
        command_timeout: Duration::from_secs(5),
        ..RedisOptions::new(server.url())
    };
    let instances = [
        Arc::new(RedisStore::connect(options.clone()).await.expect("connect")),
        Arc::new(RedisStore::connect(options).await.expect("connect")),
    ];
    let shared = fixed(LIMIT, Unit::Hour);
    let own = fixed(u64::MAX / 2, Unit::Hour);
    let admitted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, store) in instances.iter().enumerate() {
        for t in 0..TASKS_PER_INSTANCE {
            let (store, admitted) = (Arc::clone(store), Arc::clone(&admitted));
            let task = 10 * i as u64 + t;
            tasks.push(tokio::spawn(async move {
                let request = [hits(key(100 + task), own, 1), hits(key(99), shared, 1)];
                for _ in 0..REQUESTS_PER_TASK {
                    if decide(&store, &request, T0).await.expect("decide").0 {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(admitted.load(Ordering::Relaxed), LIMIT);
    let mut used = 0;
    for i in 0..2u64 {
        for t in 0..TASKS_PER_INSTANCE {
            let check = [hits(key(100 + 10 * i + t), own, 0)];
            used += u64::MAX / 2 - decide(&instances[0], &check, T0).await.unwrap().1[0].remaining;
        }
    }
    assert_eq!(used, LIMIT, "own keys consumed only with the shared one");
}

/// Domains spread over the nodes; one request's keys share its node;
/// mixed tags are refused; a slot moved to another node (with its keys,
/// onto a node whose script cache was flushed) keeps its counters.
#[tokio::test]
async fn cluster_slots_follow_the_domain_tag_and_survive_a_move() {
    let cluster = RedisCluster::start(3);
    let store = RedisStore::connect(RedisOptions::new(cluster.url()))
        .await
        .expect("connect to the cluster");
    assert!(store.ping().await.is_ok());
    let r = fixed(10, Unit::Hour);
    let mut owners = HashSet::new();
    for d in 0..30 {
        let tag = domain_tag(&format!("domain-{d}"));
        let request = [
            hits(key(1), r, 1).with_tag(tag),
            hits(key(2), r, 2).with_tag(tag),
        ];
        assert!(decide(&store, &request, T0).await.unwrap().0);
        let [a, b] = request.map(|it| cluster.owner_of(&store.key_name(&it)));
        assert_eq!(a, b, "one request's keys live on one node");
        owners.insert(a);
    }
    assert_eq!(
        owners.len(),
        3,
        "thirty domains spread over all three nodes"
    );

    let mixed = [
        hits(key(1), r, 1).with_tag(1),
        hits(key(2), r, 1).with_tag(2),
    ];
    let error = decide(&store, &mixed, T0).await.unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");

    // Move the slot of domain-0 to another node, as resharding does.
    let tag = domain_tag("domain-0");
    let it = hits(key(1), r, 1).with_tag(tag);
    let name = store.key_name(&it);
    let source = cluster.owner_of(&name);
    let target = (source + 1) % 3;
    let (src, dst) = (&cluster.nodes[source], &cluster.nodes[target]);
    let Reply::Int(slot) = src.command(&["CLUSTER", "KEYSLOT", &name]) else {
        panic!("KEYSLOT")
    };
    let slot = slot.to_string();
    let id = |node: &RedisServer| match node.command(&["CLUSTER", "MYID"]) {
        Reply::Bulk(Some(id)) => String::from_utf8(id).expect("node id"),
        other => panic!("MYID: {other:?}"),
    };
    let (src_id, dst_id) = (id(src), id(dst));
    dst.command(&["SCRIPT", "FLUSH"]);
    let ok = Reply::Status("OK".into());
    assert_eq!(
        dst.command(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &src_id]),
        ok
    );
    assert_eq!(
        src.command(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &dst_id]),
        ok
    );
    let Reply::Array(keys) = src.command(&["CLUSTER", "GETKEYSINSLOT", &slot, "100"]) else {
        panic!("GETKEYSINSLOT")
    };
    assert_eq!(keys.len(), 2);
    let port = dst.port().to_string();
    let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
    let names: Vec<String> = keys
        .iter()
        .map(|k| match k {
            Reply::Bulk(Some(k)) => String::from_utf8(k.clone()).expect("key name"),
            other => panic!("{other:?}"),
        })
        .collect();
    migrate.extend(names.iter().map(String::as_str));
    assert_eq!(src.command(&migrate), ok);
    for node in &cluster.nodes {
        assert_eq!(
            node.command(&["CLUSTER", "SETSLOT", &slot, "NODE", &dst_id]),
            ok
        );
    }
    assert_eq!(cluster.owner_of(&name), target);

    // The store follows the MOVED redirection and reloads its script there;
    // the counter moved with the key (1 used before, 1 now).
    let (admitted, verdicts) = decide_once_recovered(&store, &[it], T0).await;
    assert!(admitted);
    assert_eq!(verdicts[0].remaining, 8);
}
