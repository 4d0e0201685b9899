//! An MCP client that no part of Floodgate provides — the official Python
//! SDK (`mcp` on PyPI), through `crates/agent/tests/mcp_client.py` — takes
//! one ticket from claim to verified against real processes: a `floodgate
//! serve` with live traffic, a `floodgate harness` observing it every
//! second, and the tools over stdio (`floodgate mcp --harness URL`, spawned
//! by the SDK) and over streamable HTTP (the harness's `/mcp`).
//!
//! The pipeline runs in real time, so the policy makes it short: a 10 s
//! canary judged on one sample a side (the canary samples 10 s steps), and
//! `verify.criteria_window: 3s`, so the ticket's criterion (no duration) is
//! judged over the 3 s starting after the deploy rather than 5 minutes.
//!
//! Needs python3 with the `mcp` package (`scripts/test.sh` installs it);
//! without them the tests fail, naming what to install.

#[path = "support/process.rs"]
mod process;

use process::{floodgate, harness_with, http, scratch, serve_with, READY_ATTEMPTS};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Polls of the harness's series store before the canary's baseline
/// window is covered (about 12 s of observation; 60 s allowed).
const HISTORY_ATTEMPTS: u32 = 2400;
/// The pace of the background traffic: 20 checks a second, far over the
/// 60 a minute `per_tenant` allows. (Load pacing, not synchronisation.)
const TRAFFIC_PACE: Duration = Duration::from_millis(50);
/// The canary's duration in the policy below, in milliseconds.
const CANARY_MS: u64 = 10_000;
/// Seconds the Python client waits for a terminal stage (canary 10 s,
/// verify 3 s, one-second ticks: about 15 s expected).
const CLIENT_TIMEOUT_SECONDS: &str = "120";
/// The limit the client proposes (from 60).
const NEW_LIMIT: u64 = 6000;

const LIMITS: &str = "domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: minute, requests_per_unit: 60, name: per_tenant}
";

const OBJECTIVES: &str = "slos:
  - name: availability
    service: floodgate
    target: 99.9%
    window: 30d
    sli:
      ratio:
        good: floodgate_requests_total{code!=\"error\"}
        total: floodgate_requests_total
";

/// A short pipeline for real time: one canary sample a side (a 10 s window
/// is one 10 s step), and criteria without a duration judged over 3 s.
const POLICY: &str = "canary:
  duration: 10s
  metrics:
    - name: error_ratio
      direction: increase
      critical: true
      effect_size: {max_relative_change: 0.1, min_absolute_change: 0.001}
      min_samples: 1
    - name: over_limit_ratio
      direction: increase
      critical: true
      effect_size: {max_relative_change: 0.2, min_absolute_change: 0.01}
      min_samples: 1
verify:
  criteria_window: 3s
  max_duration: 1m
";

const CHECK: &str =
    r#"{"domain":"api","descriptors":[{"entries":[{"key":"tenant","value":"acme"}]}]}"#;

fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/mcp_client.py")
}

/// Fails (never skips) without python3 or its `mcp` package, naming what
/// to install.
fn require_python_mcp() {
    let output = Command::new("python3")
        .args([
            "-c",
            "import mcp, importlib.metadata as m; print(m.version('mcp'))",
        ])
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "python3 is not installed ({error}): this test needs python3 and its `mcp` \
                 package (`apt-get install python3 python3-pip`, then \
                 `python3 -m pip install 'mcp>=1.0'`; scripts/test.sh installs both)"
            )
        });
    assert!(
        output.status.success(),
        "the Python `mcp` package is missing: `python3 -m pip install 'mcp>=1.0'` \
         (scripts/test.sh installs it)\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A GET that must answer 200 with JSON.
fn get_json(addr: &str, path: &str) -> Value {
    let (status, body) = http(addr, "GET", path, None, "").unwrap_or_else(|| panic!("GET {path}"));
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("GET {path}: {error}: {body}"))
}

/// Checks sent to the service from a background thread until dropped, so
/// the harness has decisions to measure before and after the change.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(u64, Vec<String>)>>,
}

impl Traffic {
    fn start(addr: String) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut sent, mut failures) = (0u64, Vec::new());
            while !flag.load(Ordering::Relaxed) {
                match http(&addr, "POST", "/v1/check", None, CHECK) {
                    Some((200 | 429, _)) => sent += 1,
                    other => {
                        if failures.len() < 5 {
                            failures.push(format!("{other:?}"));
                        }
                    }
                }
                std::thread::sleep(TRAFFIC_PACE);
            }
            (sent, failures)
        });
        Traffic {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the traffic: how many checks were answered, and the first
    /// failures.
    fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|thread| thread.join().expect("traffic thread"))
            .unwrap_or_default()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    /// The SDK spawns `floodgate mcp --harness URL`.
    Stdio,
    /// The SDK connects to the harness's `/mcp`.
    StreamableHttp,
}

fn stages(proposal: &Value) -> Vec<String> {
    proposal["records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|record| {
                    format!(
                        "{}:{}",
                        record["stage"].as_str().unwrap_or("?"),
                        record["result"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn one_ticket_from_claim_to_verified(transport: Transport) {
    require_python_mcp();
    let dir = scratch();
    let data = dir.join("data");
    for (name, text) in [
        ("limits.yaml", LIMITS),
        ("objectives.yaml", OBJECTIVES),
        ("policy.yaml", POLICY),
    ] {
        std::fs::write(dir.join(name), text).expect("write a config file");
    }

    let mut serve = floodgate();
    serve
        .args(["serve", "--config"])
        .arg(dir.join("limits.yaml"));
    let (mut service, service_addr) = serve_with(serve, &dir, "serve");
    service.wait_for_n(
        &service_addr,
        "/v1/health",
        None,
        READY_ATTEMPTS,
        "service health",
        |status, _| status == 200,
    );
    let traffic = Traffic::start(service_addr.clone());

    let mut command = floodgate();
    command
        .arg("harness")
        .args(["--service", &format!("http://{service_addr}")])
        .arg("--objectives")
        .arg(dir.join("objectives.yaml"))
        .arg("--policy")
        .arg(dir.join("policy.yaml"))
        .arg("--data")
        .arg(&data)
        .args(["--interval", "1s"]);
    let (mut harness, harness_addr) = harness_with(command, &dir);
    harness.wait_for_n(
        &harness_addr,
        "/v1/health",
        None,
        READY_ATTEMPTS,
        "the harness observing the service",
        |status, body| {
            let health: Value = serde_json::from_str(body).unwrap_or_default();
            status == 200 && health["targets"][0]["up"] == true
        },
    );
    // The canary is judged against the service's own window before the
    // change: wait until the harness has seen rejections for longer than
    // that window.
    let series = "/v1/observe/series?selector=floodgate_requests_total%7Bcode%3D%22over_limit%22%7D&window_ms=60000&step_ms=1000";
    harness.wait_for_n(
        &harness_addr,
        series,
        None,
        HISTORY_ATTEMPTS,
        "over-limit decisions observed for longer than the canary's baseline window",
        |status, body| {
            let answer: Value = serde_json::from_str(body).unwrap_or_default();
            let points = answer["points"].as_array().cloned().unwrap_or_default();
            let time = |point: Option<&Value>| point.and_then(|p| p[0].as_u64()).unwrap_or(0);
            let value = |point: Option<&Value>| point.and_then(|p| p[1].as_f64()).unwrap_or(0.0);
            status == 200
                && time(points.last()).saturating_sub(time(points.first())) > CANARY_MS + 1000
                && value(points.last()) > value(points.first())
        },
    );

    // A human files the ticket.
    let (status, body) = http(
        &harness_addr,
        "POST",
        "/v1/tickets",
        None,
        &json!({
            "type": "incident",
            "objective": {"description": "acme is limited too strictly"},
            "acceptance_criteria": [{"metric": "over_limit_ratio", "condition": "< 1%"}],
            "constraints": ["Change per_tenant only"],
            "priority": "high",
        })
        .to_string(),
    )
    .expect("POST /v1/tickets");
    assert_eq!(status, 201, "{body}");
    let filed: Value = serde_json::from_str(&body).expect("JSON");
    let ticket = filed["ticket"]["id"].as_str().expect("id").to_owned();
    assert_eq!(filed["ticket"]["state"], "open", "{filed}");

    // The Python SDK works it: claim, read, propose, follow.
    let harness_url = format!("http://{harness_addr}");
    let (target, agent) = match transport {
        Transport::Stdio => (
            format!(
                "'{}' mcp --harness {harness_url} --agent mcp-stdio",
                env!("CARGO_BIN_EXE_floodgate")
            ),
            "mcp-stdio",
        ),
        Transport::StreamableHttp => (format!("{harness_url}/mcp"), "mcp"),
    };
    let change = json!({
        "rationale": "acme sends about 20 checks a second against 60 a minute",
        "actions": [{
            "action": "set_limit",
            "params": {"domain": "api", "limit": "per_tenant", "requests_per_unit": NEW_LIMIT},
        }],
    });
    let output: Output = Command::new("python3")
        .arg(client_script())
        .arg(match transport {
            Transport::Stdio => "stdio",
            Transport::StreamableHttp => "http",
        })
        .arg(&target)
        .args(["--ticket", &ticket, "--change", &change.to_string()])
        .args(["--timeout", CLIENT_TIMEOUT_SECONDS, "--poll", "0.25"])
        .env_remove("FLOODGATE_HARNESS_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{transport:?}: the client failed ({}):\n{stdout}\n{stderr}\nharness log:\n{}",
        output.status,
        harness.log()
    );
    let answer: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}\n{stderr}"));

    // The tools as the SDK listed them: every catalog tool, annotated as
    // the catalog says.
    let tools = answer["tools"].as_array().expect("tools");
    assert_eq!(
        tools.len(),
        floodgate_agent::tools::CATALOG.len(),
        "{tools:?}"
    );
    for def in floodgate_agent::tools::CATALOG {
        let tool = tools
            .iter()
            .find(|tool| tool["name"] == def.name)
            .unwrap_or_else(|| panic!("{} not listed: {tools:?}", def.name));
        assert_eq!(tool["readOnlyHint"], def.read_only, "{tool}");
        assert_eq!(tool["destructiveHint"], def.destructive, "{tool}");
    }
    let hint = |name: &str, key: &str| {
        tools
            .iter()
            .find(|tool| tool["name"] == name)
            .map(|tool| tool[key].clone())
    };
    assert_eq!(hint("get_ticket", "readOnlyHint"), Some(json!(true)));
    assert_eq!(hint("get_proposal", "readOnlyHint"), Some(json!(true)));
    assert_eq!(hint("propose_change", "destructiveHint"), Some(json!(true)));

    // What the client read, and where its proposal went.
    assert_eq!(
        answer["ticket"]["ticket"]["id"],
        ticket.as_str(),
        "{answer}"
    );
    assert_eq!(answer["ticket"]["ticket"]["state"], "claimed", "{answer}");
    assert_eq!(
        answer["ticket"]["ticket"]["claim"]["agent"], agent,
        "{answer}"
    );
    let proposal = &answer["proposal"];
    assert_eq!(proposal["agent"], agent, "{proposal}");
    assert_eq!(
        proposal["stage"],
        "succeeded",
        "{transport:?}: {:?} {}\n{}",
        stages(proposal),
        proposal["outcome"],
        harness.log()
    );
    assert_eq!(
        stages(proposal),
        [
            "testing:passed",
            "canary:applied",
            "canary:successful",
            "deploying:applied",
            "verifying:passed"
        ]
    );
    assert_eq!(proposal["canary"]["baseline"], "before_after", "{proposal}");
    assert_eq!(
        proposal["canary"]["verdict"]["outcome"], "successful",
        "{proposal}"
    );
    assert_eq!(
        proposal["test"][0]["changes"][0]["after"], NEW_LIMIT,
        "{proposal}"
    );
    let seen: Vec<&str> = answer["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(seen.first(), Some(&"canary"), "{seen:?}");
    assert_eq!(seen.last(), Some(&"succeeded"), "{seen:?}");

    // The service runs the new limit.
    let state = get_json(&service_addr, "/v1/state");
    let limit = state["limits"]
        .as_array()
        .expect("limits")
        .iter()
        .find(|limit| limit["name"] == "per_tenant")
        .unwrap_or_else(|| panic!("per_tenant: {state}"))
        .clone();
    assert_eq!(limit["requests_per_unit"], NEW_LIMIT, "{limit}");

    // The ticket is resolved, every stage in its history.
    let shown = get_json(&harness_addr, &format!("/v1/tickets/{ticket}"));
    assert_eq!(shown["ticket"]["state"], "resolved", "{shown}");
    let kinds: Vec<&str> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|entry| entry["kind"].as_str())
        .collect();
    for kind in [
        "proposal.created",
        "proposal.tested",
        "proposal.canary_started",
        "proposal.canary_judged",
        "proposal.deployed",
        "proposal.verified",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }

    let (sent, failures) = traffic.finish();
    assert!(failures.is_empty(), "checks failed: {failures:?}");
    assert!(sent > 0);
    // The ledger's chain verifies, read from the data directory once the
    // harness has stopped.
    drop(harness);
    drop(service);
    let verified = floodgate()
        .args(["ledger", "verify", "--data"])
        .arg(&data)
        .output()
        .expect("run floodgate ledger verify");
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success() && report.starts_with("ok: "),
        "{report}\n{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_python_sdk_over_stdio_takes_a_ticket_from_claim_to_verified() {
    one_ticket_from_claim_to_verified(Transport::Stdio);
}

#[test]
fn the_python_sdk_over_streamable_http_takes_a_ticket_from_claim_to_verified() {
    one_ticket_from_claim_to_verified(Transport::StreamableHttp);
}

/// `floodgate scenarios run --agent mcp`: the lab serves the harness's MCP
/// endpoint on loopback and runs an external agent (a Python script on the
/// official SDK) once a simulated tick while a ticket waits. On the
/// bad-config scenario it rolls the human's push back through the pipeline,
/// and the verifier (not the agent) passes the run against its baseline; on
/// the control runs it is never started for want of a ticket.
#[test]
fn an_external_mcp_agent_works_the_lab_scenarios() {
    require_python_mcp();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::temp_dir().join(format!("floodgate-lab-mcp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/mcp_step_agent.py");
    let output = floodgate()
        .current_dir(&repo)
        .args(["scenarios", "run", "--agent", "mcp", "--mcp-command"])
        .arg(format!("python3 {}", script.display()))
        .args(["--scenario", "bad-config", "--scenario", "control", "--out"])
        .arg(&out)
        .output()
        .expect("floodgate runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).expect("results.json"),
    )
    .expect("JSON");
    let runs = results["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3, "{stdout}");
    for run in runs {
        assert_eq!(run["agent"], "mcp", "{run}");
        assert_eq!(run["verdict"], "PASS", "{run}");
    }
    let bad = runs
        .iter()
        .find(|run| run["scenario"] == "bad-config")
        .expect("bad-config ran");
    assert_eq!(bad["figures"]["changes"], 1, "{bad}");
    // The external agent's calls are in the ticket's trajectory, under its name.
    let data = bad["data"].as_str().expect("data");
    let exported = floodgate()
        .args(["trajectory", "export", "--data", data])
        .output()
        .expect("export");
    let text = String::from_utf8_lossy(&exported.stdout);
    assert!(text.contains("\"name\":\"mcp\""), "{text}");
    assert!(text.contains("rollback_config"), "{text}");
    let _ = std::fs::remove_dir_all(&out);
}
