//! `floodgate harness`, `floodgate ticket` and `floodgate ledger verify` as
//! a user runs them: real `floodgate serve` and `floodgate harness`
//! processes on loopback ports they pick (reported in their ready files), and real data directories.

#[path = "support/process.rs"]
mod process;

use floodgate_harness::tickets::criteria::MetricRegistry;
use floodgate_harness::tickets::parse_ticket_yaml;
use floodgate_harness::Store;
use process::{
    failed, floodgate, harness_with, http, http_get, repo, run, scratch, serve_with, start_harness,
    stdout, Process, READY_POLL,
};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

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

#[test]
fn a_human_ticket_is_filed_through_a_running_harness_and_the_ledger_verifies() {
    let dir = scratch();
    let data = dir.join("data");
    let mut serve = floodgate();
    serve
        .args(["serve", "--config"])
        .arg(repo().join("examples/limits.yaml"));
    let (mut service, service_addr) = serve_with(serve, &dir, "serve");
    service.wait_for(&service_addr, "/v1/health", |status, _| status == 200);

    let mut command = floodgate();
    command
        .arg("harness")
        .args(["--service", &format!("http://{service_addr}")])
        .arg("--objectives")
        .arg(repo().join("examples/objectives.yaml"))
        .arg("--data")
        .arg(&data)
        .args(["--interval", "1s"]);
    let (mut harness, harness_addr) = harness_with(command, &dir);
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
    // A second ticket about the same thing joins the first's incident,
    // and leaves it when the owner is cancelled.
    let second = stdout(&run(&[
        "ticket",
        "--harness",
        &url,
        "create",
        "--type",
        "investigation",
        "--description",
        "Checks got slower since this morning",
        "--criterion",
        "latency_p99 < 1ms",
    ]));
    let second = second.split(':').next().expect("an id").trim().to_owned();
    let linked = stdout(&run(&[
        "ticket",
        "--harness",
        &url,
        "link",
        &second,
        "--to",
        &id,
        "--reason",
        "the same slowness",
    ]));
    assert_eq!(
        linked.trim(),
        format!("{second}: in the incident {id} owns")
    );
    let incidents = stdout(&run(&["ticket", "--harness", &url, "incidents"]));
    assert!(
        incidents.starts_with(&format!("{id} open"))
            && incidents.contains(&format!("└ {second} open")),
        "{incidents}"
    );
    let cancelled = stdout(&run(&["ticket", "--harness", &url, "cancel", &id]));
    assert_eq!(cancelled.trim(), format!("{id}: cancelled"));
    let (status, body) = http_get(&harness_addr, &format!("/v1/tickets/{second}")).expect("GET");
    assert_eq!(status, 200, "{body}");
    let released: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(released["ticket"]["state"], "open", "{body}");
    assert!(released["ticket"].get("incident").is_none(), "{body}");

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
        good.starts_with("ok: 1 entries, 1 tickets, 0 notices; head seq 1 hash "),
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

#[test]
fn tickets_are_filed_from_flags_and_refusals_name_the_flag() {
    let dir = scratch();
    let (harness, addr) = start_harness(&dir, &[], 200);
    let url = format!("http://{addr}");
    let create = |flags: &[&str]| {
        let mut args = vec!["ticket", "--harness", &url, "--json", "create"];
        args.extend_from_slice(flags);
        run(&args)
    };
    let flags = [
        "--type",
        "improvement",
        "--description",
        "Reduce p99 latency of rate limit checks below 500us",
        "--criterion",
        "latency_p99 < 500us for 1h",
        "--criterion",
        "error_ratio no regression",
        "--constraint",
        "Must not change the external API",
        "--constraint",
        "No new dependencies",
        "--priority",
        "high",
    ];
    let answer: Value = serde_json::from_str(&stdout(&create(&flags))).expect("JSON");
    assert_eq!(answer["action"], "created", "{answer}");
    let ticket = &answer["ticket"];
    assert_eq!(ticket["type"], "improvement");
    assert_eq!(ticket["source"], "human");
    assert_eq!(ticket["priority"], "high");
    assert_eq!(
        ticket["objective"]["description"],
        "Reduce p99 latency of rate limit checks below 500us"
    );
    assert_eq!(ticket["acceptance_criteria"][0]["metric"], "latency_p99");
    assert_eq!(ticket["acceptance_criteria"][0]["condition"], "< 0.5ms");
    assert_eq!(ticket["acceptance_criteria"][0]["duration"], "1h sustained");
    assert_eq!(ticket["acceptance_criteria"][1]["metric"], "error_ratio");
    assert_eq!(
        ticket["constraints"],
        serde_json::json!(["Must not change the external API", "No new dependencies"])
    );
    // The default fingerprint is derived as for a ticket file: the same
    // ticket filed again is absorbed, not duplicated.
    let fingerprint = ticket["fingerprint"].as_str().expect("fingerprint");
    assert!(fingerprint.starts_with("human:"), "{fingerprint}");
    let again: Value = serde_json::from_str(&stdout(&create(&flags))).expect("JSON");
    assert_eq!(again["ticket"]["id"], ticket["id"], "{again}");
    assert_ne!(again["action"], "created", "{again}");
    // An explicit fingerprint and the default type (task).
    let own: Value = serde_json::from_str(&stdout(&create(&[
        "--description",
        "Rotate the tokens",
        "--criterion",
        "error_ratio < 1%",
        "--fingerprint",
        "rotation-2026",
    ])))
    .expect("JSON");
    assert_eq!(own["ticket"]["fingerprint"], "rotation-2026", "{own}");
    assert_eq!(own["ticket"]["type"], "task", "{own}");
    assert_eq!(own["ticket"]["priority"], "medium", "{own}");

    // Refusals name the flag: checked here (condition, duration, type,
    // priority, description) or by the harness (an unknown metric).
    for (flags, expected) in [
        (
            vec!["--description", "x", "--criterion", "latency_p99 fast"],
            "--criterion 1 (\"latency_p99 fast\"): \"fast\" is not a condition",
        ),
        (
            vec![
                "--description",
                "x",
                "--criterion",
                "latency_p99 < 1ms",
                "--criterion",
                "latency_p99 < 1ms for a while",
            ],
            "--criterion 2 (\"latency_p99 < 1ms for a while\"): ",
        ),
        (
            vec!["--description", "x", "--criterion", "latency_p99"],
            "--criterion 1 (\"latency_p99\"): expected `METRIC CONDITION [for DURATION]`",
        ),
        (
            vec![
                "--description",
                "x",
                "--criterion",
                "error_ratio < 1%",
                "--type",
                "chore",
            ],
            "--type \"chore\": expected one of incident, improvement, investigation, task",
        ),
        (
            vec![
                "--description",
                "x",
                "--criterion",
                "error_ratio < 1%",
                "--priority",
                "urgent",
            ],
            "--priority \"urgent\": expected one of critical, high, medium, low",
        ),
        (
            vec!["--type", "task"],
            "--description: give the ticket's objective",
        ),
        (
            vec!["--description", "x"],
            "--criterion: a ticket needs at least one acceptance criterion",
        ),
        (
            vec![
                "--description",
                "x",
                "--criterion",
                "latency_p99 < 1ms",
                "--criterion",
                "cold_start_p99 < 1ms",
            ],
            "--criterion 2 (\"cold_start_p99 < 1ms\"): ",
        ),
    ] {
        let stderr = failed(&create(&flags));
        assert!(
            stderr.starts_with(&format!("error: {expected}")),
            "{flags:?}: {stderr}"
        );
    }
    let stderr = failed(&create(&[
        "--description",
        "x",
        "--criterion",
        "cold_start_p99 < 1ms",
    ]));
    assert!(stderr.contains("cold_start_p99"), "{stderr}");
    assert!(stderr.contains("HTTP 400 invalid_argument"), "{stderr}");
    // -f and the flags do not mix.
    let output = run(&[
        "ticket",
        "--harness",
        &url,
        "create",
        "-f",
        "t.yaml",
        "--type",
        "task",
    ]);
    assert_eq!(output.status.code(), Some(2));
    drop(harness);
    let _ = std::fs::remove_dir_all(dir);
}

const READ_TOKEN: &str = "read-token-0123456789";
const INTAKE_TOKEN: &str = "intake-token-0123456789";

#[test]
fn with_tokens_the_harness_api_needs_them_and_without_them_binds_loopback_only() {
    let dir = scratch();
    // No tokens: a non-loopback address is refused, naming the flag.
    let refused = run(&[
        "harness",
        "--service",
        "http://127.0.0.1:9",
        "--objectives",
        &repo()
            .join("examples/objectives.yaml")
            .display()
            .to_string(),
        "--data",
        &dir.join("refused").display().to_string(),
        "--http-addr",
        "0.0.0.0:0",
    ]);
    let stderr = failed(&refused);
    assert!(
        stderr.starts_with("error: --http-addr 0.0.0.0:0: refusing to bind a non-loopback address"),
        "{stderr}"
    );
    assert!(stderr.contains("--tokens-file"), "{stderr}");
    // A bad tokens file is refused naming the file and line.
    let bad = dir.join("bad-tokens.txt");
    std::fs::write(
        &bad,
        format!("read dash {READ_TOKEN}\ncheck envoy {INTAKE_TOKEN}\n"),
    )
    .expect("tokens file");
    let stderr = failed(&run(&[
        "harness",
        "--service",
        "http://127.0.0.1:9",
        "--objectives",
        &repo()
            .join("examples/objectives.yaml")
            .display()
            .to_string(),
        "--data",
        &dir.join("refused").display().to_string(),
        "--tokens-file",
        &bad.display().to_string(),
    ]));
    assert!(
        stderr.contains(&format!(
            "--tokens-file {}:2: unknown scope \"check\"",
            bad.display()
        )),
        "{stderr}"
    );

    let tokens = dir.join("tokens.txt");
    std::fs::write(
        &tokens,
        format!("# harness callers\nread dash {READ_TOKEN}\nintake alerts {INTAKE_TOKEN}\n"),
    )
    .expect("tokens file");
    // Ready when the API answers (401: it wants a token).
    let (harness, addr) =
        start_harness(&dir, &["--tokens-file", &tokens.display().to_string()], 401);
    let (status, body) = http(&addr, "GET", "/v1/health", Some(READ_TOKEN), "").expect("GET");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(&addr, "GET", "/v1/health", None, "").expect("GET");
    assert_eq!(status, 401, "{body}");
    let error: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(error["error"]["kind"], "unauthorized");

    // `floodgate ticket` sends the token of --token-env.
    let url = format!("http://{addr}");
    let ticket = |var_value: Option<&str>, args: &[&str]| {
        let mut command = floodgate();
        command
            .args(["ticket", "--harness", &url, "--token-env", "FG_TEST_TOKEN"])
            .args(args)
            .env_remove("FG_TEST_TOKEN");
        if let Some(value) = var_value {
            command.env("FG_TEST_TOKEN", value);
        }
        command.output().expect("run floodgate")
    };
    let stderr = failed(&ticket(None, &["list"]));
    assert!(stderr.contains("HTTP 401 unauthorized"), "{stderr}");
    let created = stdout(&ticket(
        Some(INTAKE_TOKEN),
        &[
            "create",
            "--description",
            "Filed with an intake token",
            "--criterion",
            "error_ratio < 1%",
        ],
    ));
    assert!(created.contains("created"), "{created}");
    let stderr = failed(&ticket(Some(INTAKE_TOKEN), &["list"]));
    assert!(
        stderr.contains("GET /v1/tickets needs scope read; token alerts has scope intake"),
        "{stderr}"
    );
    let listed = stdout(&ticket(Some(READ_TOKEN), &["list"]));
    assert!(listed.contains("Filed with an intake token"), "{listed}");
    let stderr = failed(&ticket(Some(READ_TOKEN), &["cancel", "INF-0001"]));
    assert!(stderr.contains("needs scope admin"), "{stderr}");
    drop(harness);
    let _ = std::fs::remove_dir_all(dir);
}

/// Debian's `prometheus` binary; fails (never skips) without it.
fn prometheus_binary() -> PathBuf {
    let candidates = [PathBuf::from("/usr/bin/prometheus")];
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("prometheus"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    candidates
        .into_iter()
        .chain(on_path)
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "prometheus is not installed: this test needs Debian's package \
                 (`apt-get install prometheus`; scripts/test.sh installs it)"
            )
        })
}

/// The counters and stable gauges compared between the service's
/// `/metrics` and what the harness reads from Prometheus.
const COMPARED: &[&str] = &[
    "floodgate_requests_total",
    "floodgate_rate_limit_hits_total",
    "floodgate_rate_limit_within_limit_total",
    "floodgate_request_duration_seconds_count",
    "floodgate_config_limits",
    "floodgate_store_capacity_keys",
];

/// Prometheus polls: readiness and the first scrape (it scrapes every
/// second; start-up takes a few).
const PROMETHEUS_ATTEMPTS: u32 = 1200;

#[test]
fn the_harness_reads_a_real_prometheus_and_sees_what_the_service_exposes() {
    use floodgate_harness::observe::exposition;
    use floodgate_harness::observe::prometheus::{PrometheusSource, DEFAULT_MATCH};
    use floodgate_harness::observe::selector::Selector;
    use floodgate_harness::run::observer::Observer;
    use floodgate_harness::run::state::{Clock, SystemClock};
    use floodgate_harness::{observe::objectives, Harness, HarnessConfig, HarnessState};
    use std::sync::Arc;

    let binary = prometheus_binary();
    let dir = scratch();
    let mut serve = floodgate();
    serve
        .args(["serve", "--config"])
        .arg(repo().join("examples/limits.yaml"));
    let (mut service, service_addr) = serve_with(serve, &dir, "serve");
    service.wait_for(&service_addr, "/v1/health", |status, _| status == 200);

    // Traffic before Prometheus starts, none after: every scrape sees the
    // same counters.
    const CHECKS: u64 = 25;
    let body = r#"{"domain":"api","descriptors":[{"entries":[{"key":"tenant","value":"acme"}]}]}"#;
    for n in 0..CHECKS {
        let (status, text) = http(&service_addr, "POST", "/v1/check", None, body)
            .unwrap_or_else(|| panic!("check {n}: no answer: {}", service.log()));
        assert_eq!(status, 200, "check {n}: {text}");
    }
    let (status, text) = http_get(&service_addr, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    let exposed = exposition::parse(&text).expect("the service's /metrics parses");

    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: floodgate\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['{service_addr}']\n"
        ),
    )
    .expect("prometheus.yml");
    let mut command = Command::new(&binary);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .current_dir(&dir);
    let mut prometheus = Process::spawn(command, dir.join("prometheus.log"));
    // Prometheus reports the port the system gave it in its log:
    // `msg="Listening on" address=127.0.0.1:PORT`.
    let prometheus_addr = prometheus.wait_log("the address Prometheus listens on", |log| {
        log.lines()
            .find(|line| line.contains("msg=\"Listening on\""))
            .and_then(|line| line.split("address=").nth(1))
            .map(|rest| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
    });
    let ready =
        |prometheus: &mut Process, what: &str, path: &str, done: &dyn Fn(u16, &str) -> bool| {
            for _ in 0..PROMETHEUS_ATTEMPTS {
                if let Ok(Some(status)) = prometheus.child.try_wait() {
                    panic!("prometheus exited ({status}): {}", prometheus.log());
                }
                if let Some((status, body)) = http_get(&prometheus_addr, path) {
                    if done(status, &body) {
                        return;
                    }
                }
                std::thread::sleep(READY_POLL);
            }
            panic!(
                "prometheus: {what} not seen after {PROMETHEUS_ATTEMPTS} polls of {path}: {}",
                prometheus.log()
            );
        };
    ready(&mut prometheus, "readiness", "/-/ready", &|status, _| {
        status == 200
    });
    // The first scrape: the request counter as the service exposes it.
    let want = format!("\"{CHECKS}\"");
    ready(
        &mut prometheus,
        "the first scrape",
        "/api/v1/query?query=sum(floodgate_requests_total)",
        &|status, body| status == 200 && body.contains(&want),
    );

    // The harness reads the series through its Prometheus option.
    let objectives = objectives::parse("objectives.yaml", "slos: []\n").expect("objectives");
    let harness = Harness::new(objectives, HarnessConfig::default()).expect("harness");
    let store = floodgate_harness::Store::open(&dir.join("data")).expect("store");
    let clock = Arc::new(SystemClock);
    let state = HarnessState::new(harness, store, clock.clone());
    let mut observer = Observer::new(Arc::clone(&state), Vec::new())
        .expect("observer")
        .with_prometheus(PrometheusSource::new(
            &format!("http://{prometheus_addr}"),
            DEFAULT_MATCH,
            1000,
        ));
    let now = clock.now_ms();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let report = runtime.block_on(observer.observe_once(now));
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let harness = state.harness();
    let mut compared = 0;
    for sample in exposed
        .samples
        .iter()
        .filter(|sample| COMPARED.contains(&sample.name.as_str()))
    {
        let mut selector = Selector::metric(&sample.name)
            .with("instance", &service_addr)
            .with("job", "floodgate");
        for (label, value) in &sample.labels {
            selector = selector.with(label, value);
        }
        assert_eq!(
            harness.tsdb().value_at(&selector, now),
            Some(sample.value),
            "{selector}"
        );
        compared += 1;
    }
    assert!(compared >= COMPARED.len(), "compared {compared} series");
    let requests = Selector::metric("floodgate_requests_total");
    assert_eq!(harness.tsdb().value_at(&requests, now), Some(CHECKS as f64));
    drop(harness);
    drop(prometheus);
    drop(service);
    let _ = std::fs::remove_dir_all(dir);
}
