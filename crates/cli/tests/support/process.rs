//! Real `floodgate` processes for CLI tests: spawned on free loopback
//! ports, killed (and reaped) on drop, polled until ready a bounded number
//! of times; plain HTTP/1.1 over a socket to talk to them. Included by
//! path (`#[path = "support/process.rs"] mod process;`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Readiness polls before giving up on a starting process.
pub const READY_ATTEMPTS: u32 = 400;
/// Between two readiness polls.
pub const READY_POLL: Duration = Duration::from_millis(25);
/// The longest one HTTP answer may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest HTTP answer read.
pub const MAX_ANSWER_BYTES: u64 = 4 * 1024 * 1024;

pub fn floodgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floodgate"))
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn scratch() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "floodgate-harness-e2e-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

/// One HTTP/1.1 GET over a plain socket: status and body, if any answer.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    http(addr, "GET", path, None, "")
}

/// One HTTP/1.1 request over a plain socket with an optional bearer token:
/// status and body, if any answer.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).ok()?;
    let auth = token.map_or_else(String::new, |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    stream
        .take(MAX_ANSWER_BYTES)
        .read_to_string(&mut answer)
        .ok()?;
    let status = answer.get(9..12)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// A process's resident set size in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The most RSS an attack may add to a process (the abuse suite's bound:
/// the store's documented size, empty in these tests, plus 64 MiB).
pub const RSS_BOUND_KIB: u64 = 64 * 1024;

/// Fails unless `process`'s RSS grew by less than [`RSS_BOUND_KIB`] since
/// `before_kib`; prints both.
pub fn assert_rss_bounded(process: &Process, before_kib: u64) {
    let after = rss_kib(process.child.id());
    let grown = after.saturating_sub(before_kib);
    eprintln!("RSS {before_kib} KiB before, {after} KiB after (+{grown} KiB)");
    assert!(
        grown < RSS_BOUND_KIB,
        "RSS grew by {grown} KiB ({before_kib} → {after}), over {RSS_BOUND_KIB} KiB"
    );
}

/// A child process killed (and reaped) on drop, its output in a log file.
pub struct Process {
    pub child: Child,
    log: PathBuf,
}

impl Process {
    pub fn spawn(mut command: Command, log: PathBuf) -> Process {
        let file = std::fs::File::create(&log).expect("log file");
        command
            .env_remove("FLOODGATE_TOKENS")
            .env_remove("FLOODGATE_TOKEN")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        Process {
            child: command.spawn().expect("spawn floodgate"),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `path` until `ready` accepts the answer (a bounded number of
    /// times; fails naming the log if the process exits or never gets there).
    pub fn wait_for(&mut self, addr: &str, path: &str, ready: impl Fn(u16, &str) -> bool) {
        for _ in 0..READY_ATTEMPTS {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("floodgate exited ({status}): {}", self.log());
            }
            if let Some((status, body)) = http_get(addr, path) {
                if ready(status, &body) {
                    return;
                }
            }
            std::thread::sleep(READY_POLL);
        }
        panic!("not ready ({path}): {}", self.log());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(args: &[&str]) -> Output {
    floodgate().args(args).output().expect("run floodgate")
}

pub fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A `floodgate serve` of `examples/limits.yaml` on free loopback ports
/// with `extra` arguments, its log in `dir`; ready once `/v1/health`
/// answers 200. The process and its HTTP address.
pub fn serve_example(dir: &Path, extra: &[&str]) -> (Process, String) {
    serve_example_with(floodgate(), dir, extra)
}

/// [`serve_example`] run by `command` (the `floodgate` binary, or a shell
/// that sets a resource limit and execs the arguments it is given).
pub fn serve_example_with(mut command: Command, dir: &Path, extra: &[&str]) -> (Process, String) {
    let http_addr = format!("127.0.0.1:{}", free_port());
    let grpc_addr = format!("127.0.0.1:{}", free_port());
    command
        .arg("serve")
        .arg("--config")
        .arg(repo().join("examples/limits.yaml"))
        .args(["--http-addr", &http_addr, "--grpc-addr", &grpc_addr])
        .args(extra);
    let mut server = Process::spawn(command, dir.join("serve.log"));
    server.wait_for(&http_addr, "/v1/health", |status, _| status == 200);
    (server, http_addr)
}

/// A `floodgate harness` on a free loopback port observing `service` (a
/// URL; nothing needs to answer there), with `extra` arguments; ready once
/// its API answers `ready_status` on `/v1/health`.
pub fn start_harness(dir: &Path, extra: &[&str], ready_status: u16) -> (Process, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut command = floodgate();
    command
        .arg("harness")
        .args(["--service", &format!("http://127.0.0.1:{}", free_port())])
        .arg("--objectives")
        .arg(repo().join("examples/objectives.yaml"))
        .arg("--data")
        .arg(dir.join("data"))
        .args(["--http-addr", &addr, "--interval", "1s"])
        .args(extra);
    let mut process = Process::spawn(command, dir.join("harness.log"));
    process.wait_for(&addr, "/v1/health", |status, _| status == ready_status);
    (process, addr)
}

pub fn failed(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}
