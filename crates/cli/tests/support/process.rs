//! Real processes for the CLI's tests, in one place: `floodgate` (and the
//! other servers a test runs beside it) spawned with every listener on
//! port 0 of loopback, the addresses read from the ready file the process
//! writes once all are bound (`--ready-file`: no port is chosen by the
//! test, so none can be taken before the process binds it); killed (and
//! reaped) on drop; polled until ready a bounded number of times; plain
//! HTTP/1.1 over a socket to talk to them. Included by path (`#[path =
//! "support/process.rs"] mod process;`): only this crate's tests can name
//! the `floodgate` binary (`CARGO_BIN_EXE_floodgate`). `redis-server`
//! processes are `crates/store/tests/support/mod.rs`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
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

/// A fresh directory for one test's files.
pub fn scratch() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "floodgate-cli-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A loopback address nobody answers on, for as long as it lives: a
/// socket bound to a port the system picked and never listening, so a
/// connection there is refused (no other process can take the port).
#[derive(Debug)]
pub struct ClosedPort {
    socket: tokio::net::TcpSocket,
    pub addr: SocketAddr,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind 127.0.0.1:0");
        let addr = socket.local_addr().expect("bound address");
        ClosedPort { socket, addr }
    }
}

/// The addresses a process bound, by listener name, from its ready file
/// (`{"listeners": [{"name", "address"}]}`).
#[derive(Debug, Clone)]
pub struct Listeners(BTreeMap<String, String>);

impl Listeners {
    /// The address (`127.0.0.1:PORT`) of listener `name`.
    pub fn addr(&self, name: &str) -> String {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name:?} in {:?}", self.0))
            .clone()
    }
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
    /// Addresses kept closed while the process runs (see [`ClosedPort`]).
    held: Vec<ClosedPort>,
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
            child: command.spawn().expect("spawn the process"),
            log,
            held: Vec::new(),
        }
    }

    /// Adds `--ready-file DIR/NAME.ready` to `command` (a `floodgate`
    /// command whose listeners are given port 0), spawns it with its log
    /// in `DIR/NAME.log` and waits for the ready file: the process and the
    /// addresses its listeners got.
    pub fn spawn_ready(mut command: Command, dir: &Path, name: &str) -> (Process, Listeners) {
        let ready = dir.join(format!("{name}.ready"));
        let _ = std::fs::remove_file(&ready);
        command.arg("--ready-file").arg(&ready);
        let mut process = Process::spawn(command, dir.join(format!("{name}.log")));
        let listeners = process.wait_ready_file(&ready);
        (process, listeners)
    }

    /// Polls for the ready file at `path` (a bounded number of times;
    /// fails naming the log if the process exits or never writes it).
    /// The file appears whole or not at all (written, then renamed).
    pub fn wait_ready_file(&mut self, path: &Path) -> Listeners {
        for _ in 0..READY_ATTEMPTS {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the process exited ({status}): {}", self.log());
            }
            if let Ok(text) = std::fs::read_to_string(path) {
                let document: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|error| panic!("{}: {error}: {text}", path.display()));
                let listeners = document["listeners"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{}: no listeners: {text}", path.display()))
                    .iter()
                    .map(|listener| {
                        let field = |name: &str| {
                            listener[name].as_str().unwrap_or_else(|| {
                                panic!("{}: a listener without {name}: {text}", path.display())
                            })
                        };
                        (field("name").to_owned(), field("address").to_owned())
                    })
                    .collect();
                return Listeners(listeners);
            }
            std::thread::sleep(READY_POLL);
        }
        panic!("no ready file at {}: {}", path.display(), self.log());
    }

    /// Polls the log until `find` finds what it looks for in it (a bounded
    /// number of times; fails naming the log if the process exits or never
    /// writes it): for a server that reports its bound address in a log
    /// line rather than a ready file.
    pub fn wait_log<T>(&mut self, what: &str, find: impl Fn(&str) -> Option<T>) -> T {
        for _ in 0..READY_ATTEMPTS {
            if let Some(found) = find(&self.log()) {
                return found;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the process exited ({status}) before {what}: {}",
                    self.log()
                );
            }
            std::thread::sleep(READY_POLL);
        }
        panic!("{what} never in the log: {}", self.log());
    }

    /// Keeps `closed` closed for as long as this process runs.
    pub fn hold(&mut self, closed: ClosedPort) {
        self.held.push(closed);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `path` until `ready` accepts the answer (a bounded number of
    /// times; fails naming the log if the process exits or never gets there).
    pub fn wait_for(&mut self, addr: &str, path: &str, ready: impl Fn(u16, &str) -> bool) {
        self.wait_for_n(addr, path, None, READY_ATTEMPTS, "ready", ready);
    }

    /// [`Process::wait_for`] with a bearer token, at most `attempts`
    /// times, failing with `what`.
    pub fn wait_for_n(
        &mut self,
        addr: &str,
        path: &str,
        token: Option<&str>,
        attempts: u32,
        what: &str,
        ready: impl Fn(u16, &str) -> bool,
    ) {
        for _ in 0..attempts {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the process exited ({status}): {}", self.log());
            }
            if let Some((status, body)) = http(addr, "GET", path, token, "") {
                if ready(status, &body) {
                    return;
                }
            }
            std::thread::sleep(READY_POLL);
        }
        panic!(
            "{what}: not seen after {attempts} polls of {path}: {}",
            self.log()
        );
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

/// A `floodgate serve` of `examples/limits.yaml` on loopback (ports the
/// system picks) with `extra` arguments, its log in `dir`; ready once
/// `/v1/health` answers 200. The process and its HTTP address.
pub fn serve_example(dir: &Path, extra: &[&str]) -> (Process, String) {
    serve_example_with(floodgate(), dir, extra)
}

/// [`serve_example`] run by `command` (the `floodgate` binary, or a shell
/// that sets a resource limit and execs the arguments it is given).
pub fn serve_example_with(mut command: Command, dir: &Path, extra: &[&str]) -> (Process, String) {
    command
        .arg("serve")
        .arg("--config")
        .arg(repo().join("examples/limits.yaml"))
        .args(extra);
    let (mut server, http_addr) = serve_with(command, dir, "serve");
    server.wait_for(&http_addr, "/v1/health", |status, _| status == 200);
    (server, http_addr)
}

/// `command` (a `floodgate serve …`) with both listeners on port 0 of
/// loopback, spawned and waited for until its ready file names them (its
/// log in `DIR/NAME.log`): the process and its HTTP address. Nothing is
/// asked of its API: the caller waits for what it needs.
pub fn serve_with(mut command: Command, dir: &Path, name: &str) -> (Process, String) {
    command.args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"]);
    let (server, listeners) = Process::spawn_ready(command, dir, name);
    (server, listeners.addr("http"))
}

/// `command` (a `floodgate harness …`) with its API on port 0 of
/// loopback, spawned and waited for until its ready file names it (its
/// log in `DIR/harness.log`): the process and the API's address.
pub fn harness_with(mut command: Command, dir: &Path) -> (Process, String) {
    command.args(["--http-addr", "127.0.0.1:0"]);
    let (harness, listeners) = Process::spawn_ready(command, dir, "harness");
    (harness, listeners.addr("http"))
}

/// A `floodgate harness` on loopback observing a service nobody answers
/// for (a [`ClosedPort`], held while it runs), with `extra` arguments;
/// ready once its API answers `ready_status` on `/v1/health`.
pub fn start_harness(dir: &Path, extra: &[&str], ready_status: u16) -> (Process, String) {
    let closed = ClosedPort::new();
    let mut command = floodgate();
    command
        .arg("harness")
        .args(["--service", &format!("http://{}", closed.addr)])
        .arg("--objectives")
        .arg(repo().join("examples/objectives.yaml"))
        .arg("--data")
        .arg(dir.join("data"))
        .args(["--interval", "1s"])
        .args(extra);
    let (mut process, addr) = harness_with(command, dir);
    process.hold(closed);
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
