//! `floodgate ctl` and `floodgate serve`'s access control, against a real
//! `floodgate serve` process on loopback.

#[path = "support/process.rs"]
mod process;

use process::{floodgate, repo, scratch, serve_with, Process, READY_ATTEMPTS};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const READ: &str = "read-token-0000000000001";
const OPERATE: &str = "operate-token-0000000002";
const ADMIN: &str = "admin-token-000000000003";

/// The longest a `--follow` child may live before the watchdog ends it (so
/// a broken follow fails the test instead of hanging it).
const FOLLOW_WATCHDOG: Duration = Duration::from_secs(60);
/// Lines read from a follower while looking for one event.
const MAX_FOLLOW_LINES: usize = 1000;

struct Server {
    process: Process,
    addr: String,
    dir: PathBuf,
}

impl Server {
    /// `floodgate serve` on the example config, with tokens of every scope
    /// unless `tokens` is false.
    fn start(tokens: bool) -> Server {
        let dir = scratch();
        let mut command = floodgate();
        command
            .args(["serve", "--config"])
            .arg(repo().join("examples/limits.yaml"));
        if tokens {
            let file = dir.join("tokens");
            std::fs::write(
                &file,
                format!(
                    "# scope name token\nread dashboard {READ}\noperate oncall {OPERATE}\nadmin root {ADMIN}\n"
                ),
            )
            .expect("tokens file");
            command.arg("--tokens-file").arg(&file);
        }
        let (mut process, addr) = serve_with(command, &dir, "serve");
        process.wait_for_n(
            &addr,
            "/v1/health",
            Some(READ),
            READY_ATTEMPTS,
            "floodgate serve healthy",
            |status, _| status == 200,
        );
        Server { process, addr, dir }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `floodgate ctl --url … ARGS` with `FLOODGATE_TOKEN` set to `token`.
    fn ctl(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut command = floodgate();
        command.arg("ctl").args(["--url", &self.url()]).args(args);
        match token {
            Some(token) => command.env("FLOODGATE_TOKEN", token),
            None => command.env_remove("FLOODGATE_TOKEN"),
        };
        command.output().expect("run floodgate ctl")
    }

    /// Like [`Server::ctl`], asserting success; answers stdout.
    fn ok(&self, token: Option<&str>, args: &[&str]) -> String {
        let output = self.ctl(token, args);
        assert!(
            output.status.success(),
            "ctl {args:?}: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn json(&self, token: Option<&str>, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(token, &all)).expect("--json prints JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.child.kill();
        let _ = self.process.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn shadow_of(state: &Value, name: &str) -> Value {
    state["limits"]
        .as_array()
        .and_then(|limits| limits.iter().find(|limit| limit["name"] == name))
        .map(|limit| limit["shadow"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn state_and_actions_print_text_and_json() {
    let server = Server::start(true);
    let text = server.ok(Some(READ), &["state"]);
    assert!(text.contains("access control on"), "{text}");
    assert!(text.contains("config  version 1"), "{text}");
    assert!(text.contains("tenant_per_second"), "{text}");
    let state = server.json(Some(READ), &["state"]);
    assert_eq!(state["config"]["version"], 1);
    assert_eq!(state["access_control"], true);

    let text = server.ok(Some(READ), &["actions"]);
    assert!(text.starts_with("ACTION"), "{text}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("drain") && line.contains("high")),
        "{text}"
    );
    let actions = server.json(Some(READ), &["actions"]);
    assert!(actions
        .as_array()
        .is_some_and(|actions| actions.iter().any(|action| action["name"] == "set_limit")));
}

#[test]
fn run_previews_applies_and_prints_the_undo() {
    let server = Server::start(true);
    let args = [
        "run",
        "set_shadow_mode",
        "--param",
        "domain=api",
        "--param",
        "limit=tenant_per_second",
        "--param",
        "shadow=true",
        "--reason",
        "trial",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let text = server.ok(Some(OPERATE), &dry);
    assert!(
        text.contains("set_shadow_mode dry run: would change"),
        "{text}"
    );
    let state = server.json(Some(READ), &["state"]);
    assert_eq!(shadow_of(&state, "tenant_per_second"), false);

    let text = server.ok(Some(OPERATE), &args);
    assert!(text.contains("set_shadow_mode applied"), "{text}");
    let undo = text
        .lines()
        .find_map(|line| {
            line.strip_prefix("undo: floodgate ctl run set_shadow_mode --params-json '")
        })
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or_else(|| panic!("no undo line: {text}"))
        .to_string();
    let state = server.json(Some(READ), &["state"]);
    assert_eq!(shadow_of(&state, "tenant_per_second"), true);

    // The printed inverse, run as printed, restores the flag.
    let result = server.json(
        Some(OPERATE),
        &["run", "set_shadow_mode", "--params-json", &undo],
    );
    assert_eq!(result["applied"], true);
    let state = server.json(Some(READ), &["state"]);
    assert_eq!(shadow_of(&state, "tenant_per_second"), false);

    // The events record the actor (the token's name unless --actor says).
    let page = server.json(Some(READ), &["events", "--type", "action_applied"]);
    let events = page["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 2, "{page:#}");
    assert!(
        events.iter().all(|event| event["actor"] == "oncall"),
        "{page:#}"
    );
    assert_eq!(events[0]["reason"], "trial");
    let text = server.ok(Some(READ), &["events", "--type", "action_applied"]);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("action_applied"), "{text}");
}

#[test]
fn config_show_versions_diff_apply_and_rollback() {
    let server = Server::start(true);
    let shown = server.ok(Some(READ), &["config", "show"]);
    assert!(shown.starts_with("# version 1  sha256:"), "{shown}");

    let original = std::fs::read_to_string(repo().join("examples/limits.yaml")).expect("example");
    let changed = original.replace("requests_per_unit: 100\n", "requests_per_unit: 150\n");
    assert_ne!(changed, original);
    let file = server.dir.join("changed.yaml");
    std::fs::write(&file, &changed).expect("write config");
    let file = file.to_string_lossy().into_owned();

    let diff = server.ok(Some(ADMIN), &["config", "diff", &file]);
    assert!(
        diff.lines()
            .any(|line| line.starts_with('-') && line.contains("100")),
        "{diff}"
    );
    assert!(
        diff.lines()
            .any(|line| line.starts_with('+') && line.contains("150")),
        "{diff}"
    );
    assert_eq!(server.json(Some(READ), &["config", "show"])["version"], 1);

    let dry = server.ok(Some(ADMIN), &["config", "apply", &file, "--dry-run"]);
    assert!(dry.contains("dry run"), "{dry}");
    let applied = server.ok(Some(ADMIN), &["config", "apply", &file, "--reason", "more"]);
    assert!(applied.contains("applied (config version 2)"), "{applied}");

    let versions = server.ok(Some(READ), &["config", "versions"]);
    let rows: Vec<&str> = versions.lines().collect();
    assert!(rows[0].starts_with("VERSION"), "{versions}");
    assert!(
        rows[1].starts_with("2 ") && rows[1].contains("root") && rows[1].contains("more"),
        "{versions}"
    );
    assert!(rows[2].starts_with("1 "), "{versions}");

    let rolled = server.ok(Some(ADMIN), &["config", "rollback", "1"]);
    assert!(rolled.contains("applied (config version 3)"), "{rolled}");
    let view = server.json(Some(READ), &["config", "show"]);
    assert_eq!(view["version"], 3);
    assert!(view["yaml"]
        .as_str()
        .is_some_and(|yaml| yaml.contains("requests_per_unit: 100")));
}

#[test]
fn errors_print_the_contract_error_and_exit_1() {
    let server = Server::start(true);
    for (token, args, expected) in [
        (
            Some(OPERATE),
            vec!["run", "drain"],
            vec!["HTTP 403 forbidden", "field: scope", "needs scope admin"],
        ),
        (
            None,
            vec!["state"],
            vec!["HTTP 401 unauthorized", "field: authorization"],
        ),
        (
            Some("wrong-token-0000000000000"),
            vec!["state"],
            vec!["HTTP 401 unauthorized", "unknown bearer token"],
        ),
        (
            Some(OPERATE),
            vec![
                "run",
                "set_shadow_mode",
                "--param",
                "domain=api",
                "--param",
                "limit=tenant_per_second",
                "--param",
                "shadow=yes",
            ],
            vec!["HTTP 400 invalid_argument", "field: params.shadow"],
        ),
        (
            Some(OPERATE),
            vec!["run", "no_such_action"],
            vec!["HTTP 404 not_found"],
        ),
        (
            Some(READ),
            vec!["run", "set_shadow_mode", "--param", "novalue"],
            vec!["--param novalue: expected KEY=VALUE"],
        ),
    ] {
        let output = server.ctl(token, &args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for part in expected {
            assert!(stderr.contains(part), "{args:?}: {stderr} lacks {part}");
        }
    }
    // --json also prints the raw error body.
    let output = server.ctl(Some(OPERATE), &["--json", "run", "drain"]);
    assert_eq!(output.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&output.stdout).expect("error JSON");
    assert_eq!(body["error"]["kind"], "forbidden");
    // The refusals are events.
    let page = server.json(Some(READ), &["events", "--type", "access_denied"]);
    assert!(
        page["events"]
            .as_array()
            .is_some_and(|events| events.len() >= 4),
        "{page:#}"
    );
}

#[test]
fn events_follow_prints_new_events_as_they_happen() {
    let server = Server::start(true);
    let mut child = floodgate()
        .args([
            "ctl",
            "--url",
            &server.url(),
            "events",
            "--follow",
            "--json",
            "--type",
            "drain_changed",
        ])
        .env("FLOODGATE_TOKEN", READ)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn follower");
    let stdout = child.stdout.take().expect("stdout");
    let pid = child.id();
    // The watchdog ends the follower if the test has not by then.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(FOLLOW_WATCHDOG).is_err() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    });
    let mut lines = BufReader::new(stdout).lines();
    let mut next_event = || -> Value {
        for _ in 0..MAX_FOLLOW_LINES {
            let line = lines
                .next()
                .expect("the follower stays open")
                .expect("a line");
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                return event;
            }
        }
        panic!("no event in {MAX_FOLLOW_LINES} lines");
    };
    server.ok(Some(ADMIN), &["run", "drain", "--reason", "maintenance"]);
    let event = next_event();
    assert_eq!(event["type"], "drain_changed");
    assert_eq!(event["data"]["draining"], true);
    server.ok(Some(OPERATE), &["run", "undrain"]);
    let event = next_event();
    assert_eq!(event["data"]["draining"], false);
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "still following"
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = done_tx.send(());
    let _ = watchdog.join();
}

#[test]
fn serve_without_tokens_says_so_and_refuses_non_loopback_addresses() {
    let server = Server::start(false);
    assert!(
        server.process.log().contains("access control is off"),
        "{}",
        server.process.log()
    );
    let state = server.json(None, &["state"]);
    assert_eq!(state["access_control"], false);
    drop(server);

    for flag in ["--http-addr", "--grpc-addr"] {
        let output = floodgate()
            .args(["serve", "--config"])
            .arg(repo().join("examples/limits.yaml"))
            .args([flag, "0.0.0.0:0"])
            .env_remove("FLOODGATE_TOKENS")
            .output()
            .expect("run floodgate serve");
        assert_eq!(output.status.code(), Some(1), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "{flag} 0.0.0.0:0: refusing to bind a non-loopback address"
            )),
            "{stderr}"
        );
        assert!(stderr.contains("--tokens-file"), "{stderr}");
    }
}

#[test]
fn serve_names_the_file_and_line_of_a_bad_token() {
    let dir = scratch();
    let file = dir.join("tokens");
    std::fs::write(&file, format!("# ok\nread a {READ}\nroot b {ADMIN}\n")).expect("write");
    let output = floodgate()
        .args(["serve", "--config"])
        .arg(repo().join("examples/limits.yaml"))
        .arg("--tokens-file")
        .arg(&file)
        .env_remove("FLOODGATE_TOKENS")
        .output()
        .expect("run floodgate serve");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:3: unknown scope \"root\"", file.display())),
        "{stderr}"
    );
    let output = floodgate()
        .args(["serve", "--config"])
        .arg(repo().join("examples/limits.yaml"))
        .env("FLOODGATE_TOKENS", format!("read:a:{READ},admin:b"))
        .output()
        .expect("run floodgate serve");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FLOODGATE_TOKENS:2: expected `scope:name:token`"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
