//! Two `floodgate serve --backend redis://…` processes sharing one real
//! `redis-server` enforce one global limit.
//!
//! Tolerance: 0. Each decision is one Lua script run, and Redis runs
//! scripts one at a time, so the two processes' requests are serialised
//! on the shared counter: exactly L of them are admitted, whichever
//! process they went through. (Fixed window per day, so the window does
//! not roll during the test.)

#[path = "../../store/tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;
use support::RedisServer;

/// Readiness polls of `/v1/health` before giving up on a starting server.
const READY_ATTEMPTS: u32 = 400;
/// Between two readiness polls.
const READY_POLL: Duration = Duration::from_millis(25);
/// The shared limit.
const LIMIT: u64 = 40;
/// Requests sent in all, alternating between the two processes.
const REQUESTS: u64 = 200;

const CONFIG: &str = "domain: shared\ndescriptors:\n  - key: user\n    rate_limit: {name: per_user, unit: day, requests_per_unit: 40}\n";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

/// One HTTP/1.1 request over a plain socket: (status, body).
fn http(addr: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())?;
    Some((status, body))
}

struct Serve {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Serve {
    fn start(config: &PathBuf, redis: &str, dir: &std::path::Path, name: &str) -> Serve {
        let addr = format!("127.0.0.1:{}", free_port());
        let grpc = format!("127.0.0.1:{}", free_port());
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_floodgate"))
            .args(["serve", "--config"])
            .arg(config)
            .args(["--grpc-addr", &grpc, "--http-addr", &addr])
            .args(["--backend", redis, "--failure-policy", "fail_closed"])
            .args(["--redis-command-timeout", "1s"])
            .env_remove("FLOODGATE_TOKENS")
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("spawn floodgate serve");
        let mut serve = Serve { child, addr, log };
        for _ in 0..READY_ATTEMPTS {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("floodgate serve exited ({status}): {}", serve.log());
            }
            if http(&serve.addr, "GET", "/v1/health", "").is_some_and(|(s, _)| s == 200) {
                return serve;
            }
            std::thread::sleep(READY_POLL);
        }
        let _ = serve.child.kill();
        panic!("floodgate serve not ready: {}", serve.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_processes_sharing_one_redis_enforce_one_global_limit() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("floodgate-redis-shared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let config = dir.join("limits.yaml");
    std::fs::write(&config, CONFIG).expect("config");
    let a = Serve::start(&config, &redis.url(), &dir, "a");
    let b = Serve::start(&config, &redis.url(), &dir, "b");
    let body =
        r#"{"domain":"shared","descriptors":[{"entries":[{"key":"user","value":"alice"}]}]}"#;
    let (mut admitted, mut rejected) = ([0u64; 2], [0u64; 2]);
    for n in 0..REQUESTS {
        let index = (n % 2) as usize;
        let server = [&a, &b][index];
        let (status, text) = http(&server.addr, "POST", "/v1/check", body)
            .unwrap_or_else(|| panic!("request {n}: no answer: {}", server.log()));
        match status {
            200 => admitted[index] += 1,
            429 => rejected[index] += 1,
            other => panic!("request {n}: status {other}: {text}\n{}", server.log()),
        }
    }
    assert_eq!(
        admitted[0] + admitted[1],
        LIMIT,
        "one global limit across both processes (a {admitted:?}, rejected {rejected:?})"
    );
    assert!(
        admitted[0] > 0 && admitted[1] > 0,
        "both served: {admitted:?}"
    );
    assert_eq!(rejected[0] + rejected[1], REQUESTS - LIMIT);
    // Neither instance ever fell back: every decision was Redis's.
    for server in [&a, &b] {
        let (_, state) = http(&server.addr, "GET", "/v1/state", "").expect("state");
        let state: serde_json::Value = serde_json::from_str(&state).expect("state json");
        assert_eq!(state["store"]["backend"], "redis", "{state}");
        assert_eq!(state["store"]["healthy"], true, "{state}");
        assert_eq!(state["store"]["failure_policy"], "fail_closed", "{state}");
        let (_, metrics) = http(&server.addr, "GET", "/metrics", "").expect("metrics");
        assert!(metrics.contains("floodgate_backend_up 1"), "{metrics}");
        assert!(
            metrics
                .contains("floodgate_backend_fallback_decisions_total{policy=\"fail_closed\"} 0"),
            "{metrics}"
        );
    }
}
