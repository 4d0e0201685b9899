//! `floodgate harness`, `floodgate ticket` and `floodgate ledger verify` as
//! a user runs them: real `floodgate serve` and `floodgate harness`
//! processes on free loopback ports, and real data directories.

use floodgate_harness::criteria::MetricRegistry;
use floodgate_harness::tickets::parse_ticket_yaml;
use floodgate_harness::Store;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Readiness polls before giving up on a starting process.
const READY_ATTEMPTS: u32 = 400;
/// Between two readiness polls.
const READY_POLL: Duration = Duration::from_millis(25);
/// The longest one HTTP answer may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest HTTP answer read.
const MAX_ANSWER_BYTES: u64 = 4 * 1024 * 1024;

const TICKET: &str = "ticket:
  type: improvement
  objective:
    description: Reduce p99 latency of rate limit checks below 500us
  acceptance_criteria:
    - metric: latency_p99
      condition: < 500us
      duration: 1h sustained
  constraints:
    - Must not change the external API
";

fn floodgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floodgate"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch() -> PathBuf {
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

/// One HTTP/1.1 GET over a plain socket: status and body, if any answer.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
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

/// A child process killed (and reaped) on drop, its output in a log file.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(mut command: Command, log: PathBuf) -> Process {
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

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `path` until `ready` accepts the answer (a bounded number of
    /// times; fails naming the log if the process exits or never gets there).
    fn wait_for(&mut self, addr: &str, path: &str, ready: impl Fn(u16, &str) -> bool) {
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

fn run(args: &[&str]) -> Output {
    floodgate().args(args).output().expect("run floodgate")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_human_ticket_is_filed_through_a_running_harness_and_the_ledger_verifies() {
    let dir = scratch();
    let data = dir.join("data");
    let service_addr = format!("127.0.0.1:{}", free_port());
    let harness_addr = format!("127.0.0.1:{}", free_port());

    let mut serve = floodgate();
    serve
        .args(["serve", "--config"])
        .arg(repo().join("examples/limits.yaml"))
        .args(["--grpc-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--http-addr", &service_addr]);
    let mut service = Process::spawn(serve, dir.join("serve.log"));
    service.wait_for(&service_addr, "/v1/health", |status, _| status == 200);

    let mut command = floodgate();
    command
        .arg("harness")
        .args(["--service", &format!("http://{service_addr}")])
        .arg("--objectives")
        .arg(repo().join("examples/objectives.yaml"))
        .arg("--data")
        .arg(&data)
        .args(["--http-addr", &harness_addr, "--interval", "1s"]);
    let mut harness = Process::spawn(command, dir.join("harness.log"));
    // Ready once it has observed the service at least once.
    harness.wait_for(&harness_addr, "/v1/health", |status, body| {
        let health: Value = serde_json::from_str(body).unwrap_or_default();
        status == 200 && health["targets"][0]["up"] == true
    });

    let (status, slos) = http_get(&harness_addr, "/v1/slos").expect("GET /v1/slos");
    assert_eq!(status, 200, "{slos}");
    assert!(slos.contains("\"availability\""), "{slos}");

    let file = dir.join("ticket.yaml");
    std::fs::write(&file, TICKET).expect("ticket file");
    let url = format!("http://{harness_addr}");
    let file_arg = file.display().to_string();
    let created = stdout(&run(&[
        "ticket",
        "--harness",
        &url,
        "create",
        "-f",
        &file_arg,
    ]));
    let id = created.split(':').next().expect("an id").trim().to_owned();
    assert!(id.starts_with("INF-"), "{created}");
    assert!(created.contains("created"), "{created}");

    let (status, body) = http_get(&harness_addr, "/v1/tickets?source=human").expect("GET");
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("JSON");
    let tickets = list["tickets"].as_array().expect("tickets");
    assert_eq!(tickets.len(), 1, "{body}");
    assert_eq!(tickets[0]["id"], id.as_str());
    assert_eq!(tickets[0]["state"], "open");

    let listed = stdout(&run(&[
        "ticket",
        "--harness",
        &url,
        "list",
        "--state",
        "open",
    ]));
    assert!(listed.contains(&id), "{listed}");
    stdout(&run(&[
        "ticket",
        "--harness",
        &url,
        "comment",
        &id,
        "on it",
    ]));
    let cancelled = stdout(&run(&["ticket", "--harness", &url, "cancel", &id]));
    assert_eq!(cancelled.trim(), format!("{id}: cancelled"));

    // A bad file is refused naming the file, line and field.
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, TICKET.replace("latency_p99", "cold_start_p99")).expect("bad file");
    let refused = run(&[
        "ticket",
        "--harness",
        &url,
        "create",
        "-f",
        &bad.display().to_string(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("bad.yaml: line 6: ticket.acceptance_criteria[0].metric"),
        "{stderr}"
    );

    drop(harness);
    let verified = stdout(&run(&[
        "ledger",
        "verify",
        "--data",
        &data.display().to_string(),
    ]));
    assert!(verified.starts_with("ok: "), "{verified}");
    drop(service);
    let _ = std::fs::remove_dir_all(dir);
}

/// A data directory with one ticket, its store closed (WAL checkpointed).
fn data_dir_with_a_ticket() -> PathBuf {
    let dir = scratch();
    let store = Store::open(&dir).expect("store");
    let draft =
        parse_ticket_yaml("ticket.yaml", TICKET, &MetricRegistry::builtin()).expect("ticket");
    store
        .intake(&draft, None, 1_700_000_000_000)
        .expect("intake");
    drop(store);
    dir
}

#[test]
fn ledger_verify_passes_a_good_data_dir_and_names_the_first_bad_entry() {
    let dir = data_dir_with_a_ticket();
    let data = dir.display().to_string();
    let good = stdout(&run(&["ledger", "verify", "--data", &data]));
    assert!(
        good.starts_with("ok: 1 entries, 1 tickets; head seq 1 hash "),
        "{good}"
    );

    // Edit the description wherever the file holds it, as someone with the
    // file (not the ledger's triggers) would.
    let db = dir.join("harness.sqlite3");
    // Closing the store checkpointed its WAL into the file (a read-only
    // `verify` may leave an empty WAL behind).
    let wal = std::fs::metadata(dir.join("harness.sqlite3-wal")).map_or(0, |meta| meta.len());
    assert_eq!(wal, 0, "everything is in the database file");
    let mut bytes = std::fs::read(&db).expect("database");
    let needle = b"below 500us";
    let mut edits = 0;
    let mut at = 0;
    while let Some(found) = bytes[at..]
        .windows(needle.len())
        .position(|window| window == needle)
    {
        let start = at + found;
        bytes[start..start + needle.len()].copy_from_slice(b"below 900us");
        at = start + needle.len();
        edits += 1;
    }
    assert!(edits >= 1, "the description is in the file");
    std::fs::write(&db, bytes).expect("tamper");

    let tampered = run(&["ledger", "verify", "--data", &data]);
    assert_eq!(tampered.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&tampered.stderr);
    assert_eq!(
        stderr.trim(),
        "error: ledger entry 1: the hash does not match the entry's content"
    );

    let missing = run(&[
        "ledger",
        "verify",
        "--data",
        &dir.join("nothing").display().to_string(),
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read the ledger"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}
