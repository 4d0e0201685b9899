//! The Redis counter store: counters shared by every instance that points
//! at the same Redis or Redis Cluster.
//!
//! # One request, one script, one round trip
//!
//! [`RedisStore::decide`] sends one `EVALSHA` of `lua/decide.lua` carrying
//! every item of the request: the script reads the distinct keys' states,
//! runs the same algorithms as `floodgate-limiter` (ported to Lua, with
//! exact 64-bit arithmetic on pairs of 32-bit halves since Lua numbers are
//! doubles), and writes back all or nothing, exactly as
//! [`floodgate_limiter::decide_all`] decides. Redis runs a script
//! atomically, so concurrent requests from any number of instances are
//! serialised per shard. The script answers with whether the request was
//! admitted and the states the keys held before; this side replays the pure
//! core on those states to build the verdicts (remaining, reset, lease ids),
//! and refuses the answer if the replay disagrees with the script.
//!
//! Time is the caller's `now`, never Redis `TIME`: tests drive the clock,
//! and a clock stepping back never admits extra (the states remember the
//! latest time they saw, as in the core).
//!
//! # Keys and TTLs
//!
//! A key is named `{prefix}:{{tag}}:{key}`: the prefix option (default
//! `floodgate`), the item's [`Item::tag`] as 16 hex digits in braces (the
//! Redis Cluster hash tag: a domain's keys share one slot), and the 128-bit
//! counter key as 32 hex digits. Every write sets the key's TTL to its
//! state's expiry (`KeyState::expires_at`) minus `now`, rounded up to whole
//! milliseconds, plus [`RedisOptions::ttl_grace`], so Redis memory stays
//! bounded by the keys live in the last period. See ADR 0006.
//!
//! # Connections and failures
//!
//! A pool of [`RedisOptions::pool_size`] multiplexed connections
//! (`ConnectionManager` for one server, `ClusterConnection` for a cluster),
//! used round robin: concurrent requests are pipelined on them. Every
//! command is bounded by [`RedisOptions::command_timeout`] (default 50 ms),
//! reconnection happens in the background, and the script is reloaded when
//! Redis answers `NOSCRIPT` (after a restart or a `SCRIPT FLUSH`).

use crate::{CounterStore, Describe, Item, KeySelect, LimitUsage, StoreError, StoreStats};
use floodgate_limiter::{decide, Algorithm, Cost, KeyState, Lease, Nanos, Rate, Verdict};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, RedisError, RedisFuture, Script, ServerErrorKind, Value};
use std::fmt;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The script that decides one request. Loaded once per server (by SHA,
/// reloaded on `NOSCRIPT`).
pub const DECIDE_SCRIPT: &str = include_str!("lua/decide.lua");

/// Default key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "floodgate";
/// Default connections per store: two multiplexed connections keep one
/// slow reply from stalling every request while staying cheap for Redis.
pub const DEFAULT_POOL_SIZE: usize = 2;
/// The most connections one store opens (each is multiplexed, so more
/// rarely helps; Redis's `maxclients` is shared by every instance).
pub const MAX_POOL_SIZE: usize = 64;
/// Default bound on establishing one connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default bound on one command, the decision's whole round trip included:
/// small, so no request waits long on a dead or stalled Redis
/// (envoyproxy/ratelimit#462).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(50);
/// Default time a key outlives its state's expiry: instances whose clocks
/// differ by up to this much never see a live state vanish early.
pub const DEFAULT_TTL_GRACE: Duration = Duration::from_secs(1);

/// Reconnection attempts per outage episode before the pending connection
/// fails (the next command starts another episode), and the backoff
/// between them: short, so a restarted Redis is found again within about
/// a second.
const RECONNECT_RETRIES: usize = 2;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(10);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
/// Redis Cluster redirection and retry attempts inside one command (each
/// still bounded by the command timeout).
const CLUSTER_RETRIES: u32 = 3;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 20;

/// Where the store's Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (`redis://host:port[/db]`).
    Single(String),
    /// A Redis Cluster, by one or more seed node URLs.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// Parses the `url` option:
    ///
    /// - `redis://host:port[/db]` (or `unix://…`): one server;
    /// - `redis+cluster://host:port[,host:port…]`: a cluster, by seed nodes;
    /// - `redis://a:1,redis://b:2,…` (two or more URLs, comma separated):
    ///   a cluster, by seed nodes.
    pub fn parse(url: &str) -> Result<RedisTarget, StoreError> {
        let url = url.trim();
        let invalid = |why: &str| StoreError::Backend(format!("invalid Redis url {url:?}: {why}"));
        if let Some(nodes) = url.strip_prefix("redis+cluster://") {
            let nodes: Vec<String> = nodes
                .split(',')
                .map(str::trim)
                .map(|node| format!("redis://{node}"))
                .collect();
            if nodes.iter().any(|node| node == "redis://") {
                return Err(invalid("an empty cluster node"));
            }
            return Ok(RedisTarget::Cluster(nodes));
        }
        let urls: Vec<String> = url.split(',').map(|u| u.trim().to_string()).collect();
        if urls.iter().any(String::is_empty) {
            return Err(invalid("an empty url"));
        }
        if urls.len() == 1 {
            Ok(RedisTarget::Single(
                urls.into_iter().next().unwrap_or_default(),
            ))
        } else {
            Ok(RedisTarget::Cluster(urls))
        }
    }
}

/// How to reach Redis and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// `redis://host:port[/db]`, `redis+cluster://host:port[,host:port…]`,
    /// or comma-separated cluster node URLs (see [`RedisTarget::parse`]).
    pub url: String,
    /// Multiplexed connections to open (1..=[`MAX_POOL_SIZE`]); requests
    /// use them round robin, pipelined.
    pub pool_size: usize,
    /// Bound on establishing one connection (background reconnects too).
    pub connect_timeout: Duration,
    /// Bound on one decision's round trip (or one health probe); past it
    /// the call fails with [`StoreError::Timeout`].
    pub command_timeout: Duration,
    /// Prefix of every key name; no braces (they would change the hash
    /// tag), not empty.
    pub key_prefix: String,
    /// How long a key outlives its state's expiry (clock skew between
    /// instances; see [`DEFAULT_TTL_GRACE`]). At least a millisecond is
    /// always kept so a key never lives without a TTL.
    pub ttl_grace: Duration,
}

impl RedisOptions {
    /// Options for `url` with every default.
    pub fn new(url: impl Into<String>) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            key_prefix: DEFAULT_KEY_PREFIX.to_string(),
            ttl_grace: DEFAULT_TTL_GRACE,
        }
    }

    fn validate(&self) -> Result<RedisTarget, StoreError> {
        let invalid = |why: String| StoreError::Backend(format!("invalid Redis options: {why}"));
        if !(1..=MAX_POOL_SIZE).contains(&self.pool_size) {
            return Err(invalid(format!(
                "pool_size {} is not in 1..={MAX_POOL_SIZE}",
                self.pool_size
            )));
        }
        if self.connect_timeout.is_zero() || self.command_timeout.is_zero() {
            return Err(invalid("timeouts must be positive".to_string()));
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(['{', '}']) {
            return Err(invalid(format!(
                "key_prefix {:?} must be non-empty and without braces",
                self.key_prefix
            )));
        }
        RedisTarget::parse(&self.url)
    }
}

/// One pooled connection; both kinds multiplex and reconnect by themselves.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// The Redis counter store. See the module docs.
pub struct RedisStore {
    pool: Box<[Conn]>,
    next: AtomicUsize,
    script: Script,
    options: RedisOptions,
    target: RedisTarget,
    /// `ttl_grace` in whole milliseconds (at least 1), as the script's
    /// argument.
    grace_ms: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .field("pool_size", &self.pool.len())
            .field("command_timeout", &self.options.command_timeout)
            .field("key_prefix", &self.options.key_prefix)
            .finish()
    }
}

impl RedisStore {
    /// A store for `options`, connecting lazily: no I/O happens here, so a
    /// service can start while Redis is down (its decisions fail with
    /// [`StoreError::Unavailable`] or [`StoreError::Timeout`] until Redis
    /// answers). Fails only on invalid options. Must be called within a
    /// Tokio runtime (the connections' background tasks are spawned on it).
    pub fn new(options: RedisOptions) -> Result<RedisStore, StoreError> {
        let target = options.validate()?;
        let pool = (0..options.pool_size)
            .map(|_| connection(&target, &options))
            .collect::<Result<Box<[Conn]>, StoreError>>()?;
        let grace_ms = options.ttl_grace.as_millis().max(1).to_string();
        Ok(RedisStore {
            pool,
            next: AtomicUsize::new(0),
            script: Script::new(DECIDE_SCRIPT),
            options,
            target,
            grace_ms,
        })
    }

    /// [`RedisStore::new`], then connects every pooled connection and loads
    /// the script, each within the command timeout (after a connect
    /// timeout's worth of tries): fails if Redis cannot be reached now.
    pub async fn connect(options: RedisOptions) -> Result<RedisStore, StoreError> {
        let store = RedisStore::new(options)?;
        let deadline = store.options.connect_timeout + store.options.command_timeout;
        for conn in store.pool.iter() {
            let mut conn = conn.clone();
            let script = &store.script;
            bounded(deadline, async move { script.load_async(&mut conn).await }).await?;
        }
        Ok(store)
    }

    /// The options the store was built with.
    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// Whether this store talks to one server or a cluster.
    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// The Redis key name of `item`'s counter:
    /// `{prefix}:{{tag as 16 hex digits}}:{key as 32 hex digits}`.
    pub fn key_name(&self, item: &Item) -> String {
        key_name(&self.options.key_prefix, item.tag, item.key)
    }

    /// The SHA-1 of the decide script (what `EVALSHA` names).
    pub fn script_sha1(&self) -> &str {
        self.script.get_hash()
    }

    /// The health probe: one `PING` on the next pooled connection (every
    /// node for a cluster), bounded by the command timeout. Returns the
    /// round-trip time.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let mut conn = self.pick();
        let started = Instant::now();
        let ping = redis::cmd("PING");
        bounded(self.options.command_timeout, async move {
            ping.query_async::<Value>(&mut conn).await
        })
        .await?;
        Ok(started.elapsed())
    }

    fn pick(&self) -> Conn {
        let index = self.next.fetch_add(1, Relaxed) % self.pool.len();
        self.pool[index].clone()
    }

    async fn decide_remote(
        &self,
        items: &[Item],
        now: Nanos,
        verdicts: &mut Vec<Verdict>,
    ) -> Result<bool, StoreError> {
        verdicts.clear();
        if items.is_empty() {
            return Ok(true);
        }
        // The distinct keys, in order of first appearance.
        let mut distinct: Vec<(u64, u128)> = Vec::with_capacity(items.len());
        let mut local_of: Vec<usize> = Vec::with_capacity(items.len());
        for item in items {
            let id = (item.tag, item.key);
            let local = match distinct.iter().position(|&seen| seen == id) {
                Some(local) => local,
                None => {
                    distinct.push(id);
                    distinct.len() - 1
                }
            };
            local_of.push(local);
        }
        if matches!(self.target, RedisTarget::Cluster(_))
            && distinct.iter().any(|&(tag, _)| tag != distinct[0].0)
        {
            return Err(StoreError::Backend(
                "one request's items carry different tags: their keys may live in \
                 different Redis Cluster slots and cannot be decided atomically"
                    .to_string(),
            ));
        }

        let mut invocation = self.script.prepare_invoke();
        for &(tag, key) in &distinct {
            invocation.key(key_name(&self.options.key_prefix, tag, key));
        }
        invocation.arg(format!("{now:016x}")).arg(&self.grace_ms);
        let mut field = String::new();
        for (item, &local) in items.iter().zip(&local_of) {
            for arg in item_args(item, local + 1, now) {
                field.clear();
                let _ = write!(field, "{arg}");
                invocation.arg(field.as_str());
            }
        }

        let mut conn = self.pick();
        let reply: Value = bounded(self.options.command_timeout, async move {
            invocation.invoke_async(&mut conn).await
        })
        .await?;

        let (scripted, raw) = parse_reply(reply, distinct.len())?;
        let originals = raw
            .iter()
            .map(|value| match value.as_slice() {
                [] => Ok(None),
                bytes => parse_state(bytes).map(Some),
            })
            .collect::<Result<Vec<Option<KeyState>>, StoreError>>()?;
        let admitted = replay(items, &local_of, originals, now, verdicts);
        if admitted != scripted {
            verdicts.clear();
            return Err(StoreError::Backend(format!(
                "the decide script said admitted={scripted} but the core says {admitted} \
                 (a bug: script and core disagree)"
            )));
        }
        Ok(admitted)
    }
}

impl CounterStore for RedisStore {
    /// Decides in one script run (see the module docs). `describe` is not
    /// called: Redis keeps only the counter state under each key (see
    /// [`RedisStore::usage`](CounterStore::usage)).
    fn decide<'a>(
        &'a self,
        items: &'a [Item],
        now: Nanos,
        verdicts: &'a mut Vec<Verdict>,
        _describe: Describe<'a>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'a {
        self.decide_remote(items, now, verdicts)
    }

    /// Redis bounds its memory by TTLs, not by a capacity, and counting its
    /// keys would cost a round trip (`DBSIZE` counts every key of the
    /// database anyway): `keys` and `capacity` are 0, meaning "bounded by
    /// TTL", and nothing is ever evicted for room.
    fn stats(&self) -> StoreStats {
        StoreStats {
            backend: "redis",
            keys: 0,
            capacity: 0,
            evicted_expired: 0,
            evicted_lru: 0,
        }
    }

    /// No effect: Redis memory is bounded by the keys' TTLs (and by Redis's
    /// own `maxmemory`), not by a key count.
    fn set_capacity(&self, _max_keys: u64) {}

    /// Always 0: the Redis store keeps no [`KeyInfo`](crate::KeyInfo) with
    /// its keys (selecting them would mean a `SCAN` of the whole keyspace,
    /// and these calls are synchronous).
    fn count_keys(&self, _select: KeySelect<'_>) -> u64 {
        0
    }

    /// Always 0 (see [`count_keys`](CounterStore::count_keys)): keys leave
    /// Redis by TTL.
    fn evict_keys(&self, _select: KeySelect<'_>) -> u64 {
        0
    }

    /// Always empty (see [`count_keys`](CounterStore::count_keys)).
    fn usage(&self, _per_limit: usize, _now: Nanos) -> Vec<LimitUsage> {
        Vec::new()
    }
}

/// One lazily connected pooled connection.
fn connection(target: &RedisTarget, options: &RedisOptions) -> Result<Conn, StoreError> {
    match target {
        RedisTarget::Single(url) => {
            let client = redis::Client::open(url.as_str()).map_err(map_error)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(options.connect_timeout))
                .set_response_timeout(Some(options.command_timeout))
                .set_number_of_retries(RECONNECT_RETRIES)
                .set_min_delay(RECONNECT_MIN_DELAY)
                .set_max_delay(RECONNECT_MAX_DELAY);
            ConnectionManager::new_lazy_with_config(client, config)
                .map(Conn::Single)
                .map_err(map_error)
        }
        RedisTarget::Cluster(nodes) => {
            let client = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                .connection_timeout(options.connect_timeout)
                .response_timeout(options.command_timeout)
                .retries(CLUSTER_RETRIES)
                .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
                .build()
                .map_err(map_error)?;
            let config = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(options.connect_timeout)
                .set_response_timeout(options.command_timeout);
            Ok(Conn::Cluster(
                client.get_pending_async_connection_with_config(config),
            ))
        }
    }
}

/// Runs `command` within `limit`, mapping its errors.
async fn bounded<T>(
    limit: Duration,
    command: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, command).await {
        Err(_elapsed) => Err(StoreError::Timeout(limit)),
        Ok(Err(error)) if error.is_timeout() => Err(StoreError::Timeout(limit)),
        Ok(Err(error)) => Err(map_error(error)),
        Ok(Ok(value)) => Ok(value),
    }
}

/// Sorts a Redis error into the store's kinds: the connection or the
/// cluster is (for now) not serving → `Unavailable` (transient); anything
/// else (a script error, a reply of the wrong shape, bad options) →
/// `Backend`.
fn map_error(error: RedisError) -> StoreError {
    let transient = match error.kind() {
        ErrorKind::Io | ErrorKind::ClusterConnectionNotFound => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
        ),
        // BUSY: another script is running past its time limit; OOM: Redis
        // is full (noeviction) until keys expire.
        ErrorKind::Extension => matches!(error.code(), Some("BUSY" | "OOM")),
        _ => false,
    };
    if transient {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Backend(error.to_string())
    }
}

fn key_name(prefix: &str, tag: u64, key: u128) -> String {
    format!("{prefix}:{{{tag:016x}}}:{key:032x}")
}

/// One script argument, formatted without allocating per number.
enum Arg {
    Index(usize),
    Text(&'static str),
    /// A u64 as the script keeps it: exactly 16 hex digits.
    U64(u64),
    /// A u128 as hex of any width.
    Wide(u128),
    Decimal(u64),
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Index(index) => write!(f, "{index}"),
            Arg::Text(text) => f.write_str(text),
            Arg::U64(value) => write!(f, "{value:016x}"),
            Arg::Wide(value) => write!(f, "{value:x}"),
            Arg::Decimal(value) => write!(f, "{value}"),
        }
    }
}

/// The full quota of a rate: the bucket capacity for `token_bucket` (none
/// at a zero rate), as `floodgate_limiter` computes it.
fn bucket_quota(rate: &Rate) -> u64 {
    if rate.requests_per_unit == 0 {
        0
    } else {
        rate.burst
    }
}

/// The script's arguments for one item (see `lua/decide.lua`): everything
/// that depends only on the rate, the cost and `now` is computed here.
fn item_args(item: &Item, key_index: usize, now: Nanos) -> impl Iterator<Item = Arg> {
    let rate = &item.rate;
    let (kind, amount) = match item.cost {
        Cost::Consume(hits) => ("c", hits),
        Cost::Refund(hits) => ("r", hits),
        Cost::Release(id) => ("l", id),
    };
    let period = rate.period();
    let window = now - now % period;
    let limit = rate.requests_per_unit;
    let (algorithm, params): (&'static str, [Option<Arg>; 5]) = match rate.algorithm {
        Algorithm::FixedWindow => (
            "w",
            [
                Some(Arg::U64(limit)),
                Some(Arg::U64(period)),
                Some(Arg::U64(window)),
                None,
                None,
            ],
        ),
        Algorithm::TokenBucket => {
            let interval = u128::from(rate.emission_interval());
            // Clamped to u64 without changing a decision: a candidate
            // arrival time above u64::MAX is refused anyway, so the capacity
            // compared with `candidate - now` (at most u64::MAX) can be
            // clamped, and a cost beyond u64::MAX is "inf" (never admitted;
            // as a refund, it empties the bucket).
            let capacity = u128::from(bucket_quota(rate)) * interval;
            let capacity = u64::try_from(capacity).unwrap_or(u64::MAX);
            let scaled = match item.cost {
                Cost::Consume(hits) | Cost::Refund(hits) => u128::from(hits) * interval,
                Cost::Release(_) => 0,
            };
            let scaled = match u64::try_from(scaled) {
                Ok(scaled) => Arg::U64(scaled),
                Err(_) => Arg::Text("inf"),
            };
            (
                "g",
                [Some(Arg::U64(capacity)), Some(scaled), None, None, None],
            )
        }
        Algorithm::SlidingWindow => (
            "s",
            [
                Some(Arg::U64(limit)),
                Some(Arg::U64(period)),
                Some(Arg::U64(window)),
                Some(Arg::Wide(u128::from(limit) * u128::from(period))),
                Some(Arg::Decimal(rate.unit.seconds())),
            ],
        ),
        Algorithm::Concurrency => (
            "c",
            [
                Some(Arg::U64(limit)),
                Some(Arg::U64(period)),
                None,
                None,
                None,
            ],
        ),
    };
    [
        Arg::Index(key_index),
        Arg::Text(algorithm),
        Arg::Text(kind),
        Arg::U64(amount),
        Arg::Text(if item.shadow { "1" } else { "0" }),
    ]
    .into_iter()
    .chain(params.into_iter().flatten())
}

/// The script's reply: `[admitted (0/1), previous value of each key or ""]`.
fn parse_reply(reply: Value, keys: usize) -> Result<(bool, Vec<Vec<u8>>), StoreError> {
    let shape = |what: &str| StoreError::Backend(format!("unexpected decide reply: {what}"));
    let Value::Array(values) = reply else {
        return Err(shape("not an array"));
    };
    if values.len() != keys + 1 {
        return Err(shape("wrong length"));
    }
    let mut values = values.into_iter();
    let admitted = match values.next() {
        Some(Value::Int(1)) => true,
        Some(Value::Int(0)) => false,
        _ => return Err(shape("no admitted flag")),
    };
    let raw = values
        .map(|value| match value {
            Value::BulkString(bytes) => Ok(bytes),
            Value::SimpleString(text) => Ok(text.into_bytes()),
            _ => Err(shape("a key's state is not a string")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((admitted, raw))
}

/// Parses a stored state (`lua/decide.lua`'s `encode`): colon-separated
/// lower-case hex numbers after a one-letter algorithm tag.
fn parse_state(bytes: &[u8]) -> Result<KeyState, StoreError> {
    let malformed = || {
        StoreError::Backend(format!(
            "malformed counter state {:?}",
            String::from_utf8_lossy(bytes)
        ))
    };
    let text = std::str::from_utf8(bytes).map_err(|_| malformed())?;
    let mut fields = text.split(':');
    let tag = fields.next().ok_or_else(malformed)?;
    let numbers = fields
        .map(|field| u64::from_str_radix(field, 16))
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|_| malformed())?;
    let state = match (tag, numbers.as_slice()) {
        ("w", &[start, count]) => KeyState::Window { start, count },
        ("g", &[tat, seen]) => KeyState::Gcra { tat, seen },
        ("s", &[start, previous, current, seen]) => KeyState::Sliding {
            start,
            previous,
            current,
            seen,
        },
        ("c", [next_id, seen, leases @ ..]) if leases.len() % 3 == 0 => KeyState::Leases {
            held: leases
                .chunks_exact(3)
                .map(|lease| Lease {
                    id: lease[0],
                    units: lease[1],
                    expires_at: lease[2],
                })
                .collect(),
            next_id: *next_id,
            seen: *seen,
        },
        _ => return Err(malformed()),
    };
    Ok(state)
}

/// Replays the store semantics on the states the keys held before the
/// script ran (`None`: no key), exactly as the memory store decides: every
/// item in order on working copies; if rejected, refunds and releases on
/// the stored states, then each limit's quota as the request left it.
/// Fills `verdicts`; returns whether the request is admitted.
fn replay(
    items: &[Item],
    local_of: &[usize],
    originals: Vec<Option<KeyState>>,
    now: Nanos,
    verdicts: &mut Vec<Verdict>,
) -> bool {
    let mut work: Vec<KeyState> = originals
        .iter()
        .map(|state| state.clone().unwrap_or_default())
        .collect();
    let mut admitted = true;
    for (item, &local) in items.iter().zip(local_of) {
        let verdict = decide(&item.rate, &mut work[local], item.cost, now);
        admitted &= verdict.admitted || item.shadow;
        verdicts.push(verdict);
    }
    if admitted {
        return true;
    }
    let mut stored = originals;
    for (item, &local) in items.iter().zip(local_of) {
        if let (Some(state), false) = (&mut stored[local], matches!(item.cost, Cost::Consume(_))) {
            decide(&item.rate, state, item.cost, now);
        }
    }
    for ((item, &local), verdict) in items.iter().zip(local_of).zip(verdicts.iter_mut()) {
        let left = match &mut stored[local] {
            Some(state) => decide(&item.rate, state, Cost::Consume(0), now),
            None => decide(&item.rate, &mut KeyState::Empty, Cost::Consume(0), now),
        };
        verdict.remaining = left.remaining;
        verdict.reset_after = left.reset_after;
        verdict.lease = None;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate_limiter::Unit;

    #[test]
    fn targets_parse() {
        assert_eq!(
            RedisTarget::parse("redis://127.0.0.1:6379").unwrap(),
            RedisTarget::Single("redis://127.0.0.1:6379".into())
        );
        assert_eq!(
            RedisTarget::parse("redis+cluster://a:1, b:2,c:3").unwrap(),
            RedisTarget::Cluster(vec![
                "redis://a:1".into(),
                "redis://b:2".into(),
                "redis://c:3".into()
            ])
        );
        assert_eq!(
            RedisTarget::parse("redis://a:1,redis://b:2").unwrap(),
            RedisTarget::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        assert!(RedisTarget::parse("redis+cluster://a:1,").is_err());
        assert!(RedisTarget::parse("").is_err());
        assert!(RedisTarget::parse("redis://a:1,,redis://b:2").is_err());
    }

    #[test]
    fn options_are_validated() {
        let good = RedisOptions::new("redis://127.0.0.1:1");
        assert_eq!(good.command_timeout, Duration::from_millis(50));
        assert!(good.validate().is_ok());
        for bad in [
            RedisOptions {
                pool_size: 0,
                ..good.clone()
            },
            RedisOptions {
                pool_size: MAX_POOL_SIZE + 1,
                ..good.clone()
            },
            RedisOptions {
                command_timeout: Duration::ZERO,
                ..good.clone()
            },
            RedisOptions {
                key_prefix: "a{b".into(),
                ..good.clone()
            },
            RedisOptions {
                key_prefix: String::new(),
                ..good.clone()
            },
        ] {
            let error = bad.validate().unwrap_err();
            assert!(!error.is_transient(), "{error}");
        }
    }

    #[test]
    fn key_names_carry_the_hash_tag() {
        assert_eq!(
            key_name("floodgate", 0xab, 0x1234),
            "floodgate:{00000000000000ab}:00000000000000000000000000001234"
        );
    }

    #[test]
    fn states_round_trip_through_the_text_form() {
        for (text, state) in [
            (
                "w:17979b4d4ee6e000:3",
                KeyState::Window {
                    start: 0x1797_9b4d_4ee6_e000,
                    count: 3,
                },
            ),
            (
                "g:ffffffffffffffff:0",
                KeyState::Gcra {
                    tat: u64::MAX,
                    seen: 0,
                },
            ),
            (
                "s:10:1:2:11",
                KeyState::Sliding {
                    start: 16,
                    previous: 1,
                    current: 2,
                    seen: 17,
                },
            ),
            (
                "c:3:a:1:1:f:2:4:ffffffffffffffff",
                KeyState::Leases {
                    held: vec![
                        Lease {
                            id: 1,
                            units: 1,
                            expires_at: 15,
                        },
                        Lease {
                            id: 2,
                            units: 4,
                            expires_at: u64::MAX,
                        },
                    ],
                    next_id: 3,
                    seen: 10,
                },
            ),
            (
                "c:1:5",
                KeyState::Leases {
                    held: vec![],
                    next_id: 1,
                    seen: 5,
                },
            ),
        ] {
            assert_eq!(parse_state(text.as_bytes()).unwrap(), state, "{text}");
        }
        for bad in [
            "",
            "w:1",
            "x:1:2",
            "w:1:zz",
            "c:1:2:3",
            "w:1:10000000000000000",
        ] {
            assert!(parse_state(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn item_arguments_per_algorithm() {
        let now = 1_700_000_000_123_456_789;
        let text = |item: &Item| {
            item_args(item, 2, now)
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
        };
        let hex = |value: u64| format!("{value:016x}");
        let fixed = Item::new(
            1,
            Rate::new(Algorithm::FixedWindow, 10, Unit::Second),
            Cost::Consume(3),
        );
        assert_eq!(
            text(&fixed),
            [
                "2".into(),
                "w".into(),
                "c".into(),
                hex(3),
                "0".into(),
                hex(10),
                hex(1_000_000_000),
                hex(1_700_000_000_000_000_000),
            ]
        );
        // Interval 250 ms; capacity 8 x 250 ms; refund 2 x 250 ms.
        let bucket = Rate::new(Algorithm::TokenBucket, 4, Unit::Second).with_burst(8);
        assert_eq!(
            text(&Item::new(1, bucket, Cost::Refund(2)))[5..],
            [hex(2_000_000_000), hex(500_000_000)]
        );
        // Beyond u64: the capacity is clamped, the cost is "inf".
        let huge = Rate::new(Algorithm::TokenBucket, 1, Unit::Year).with_burst(u64::MAX);
        assert_eq!(
            text(&Item::new(1, huge, Cost::Consume(u64::MAX)))[5..],
            [hex(u64::MAX), "inf".into()]
        );
        let mut sliding = Item::new(
            1,
            Rate::new(Algorithm::SlidingWindow, 5, Unit::Minute),
            Cost::Consume(0),
        );
        sliding.shadow = true;
        let args = text(&sliding);
        assert_eq!(args[..5], ["2", "s", "c", &hex(0), "1"]);
        assert_eq!(args[8], format!("{:x}", 5 * 60 * 1_000_000_000u128));
        assert_eq!(args[9], "60");
        let lease = Item::new(
            1,
            Rate::new(Algorithm::Concurrency, 2, Unit::Hour),
            Cost::Release(7),
        );
        assert_eq!(
            text(&lease),
            [
                "2".into(),
                "c".into(),
                "l".into(),
                hex(7),
                "0".into(),
                hex(2),
                hex(3_600_000_000_000)
            ]
        );
    }

    #[test]
    fn redis_errors_map_to_store_errors() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(map_error(io), StoreError::Unavailable(_)));
        let script = RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "boom"));
        assert!(matches!(map_error(script), StoreError::Backend(_)));
        let down = RedisError::from((ErrorKind::Server(ServerErrorKind::ClusterDown), "down"));
        assert!(map_error(down).is_transient());
    }
}
