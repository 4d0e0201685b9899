//! `floodgate notice create | list | show | expire` as a user runs them,
//! against a real `floodgate harness` process on a free loopback port
//! (docs/adr/0011-expected-change-notices.md).

#[path = "support/process.rs"]
mod process;

use floodgate_harness::quantity::format_time_ms;
use process::{failed, floodgate, run, scratch, start_harness, stdout};
use serde_json::Value;

const READ_TOKEN: &str = "read-token-0123456789abcdef";
const INTAKE_TOKEN: &str = "intake-token-0123456789abcdef";

fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// `floodgate notice --harness URL ARGS…`.
fn notice(url: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["notice", "--harness", url];
    all.extend_from_slice(args);
    run(&all)
}

fn ids(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn notices_are_announced_listed_shown_and_expired_through_a_running_harness() {
    let dir = scratch();
    let (_harness, addr) = start_harness(&dir, &[], 200);
    let url = format!("http://{addr}");

    let created = stdout(&notice(
        &url,
        &[
            "create",
            "--match",
            "tenant=acme",
            "--match-regex",
            "anomaly=request_.*",
            "--for",
            "2h",
            "--reason",
            "acme launches: five times the traffic",
            "--author",
            "deploy:ci",
            "--max-factor",
            "10",
        ],
    ));
    assert!(created.starts_with("N-0001  active "), "{created}");
    assert!(
        created.contains(
            " deploy:ci  tenant=acme,anomaly=~request_.* ×10  held back 0  acme launches"
        ),
        "{created}"
    );

    // One an hour from now, for an hour, as JSON.
    let from = format_time_ms(wall_clock_ms() + 3_600_000);
    let until = format_time_ms(wall_clock_ms() + 7_200_000);
    let answer: Value = serde_json::from_str(&stdout(&notice(
        &url,
        &[
            "--json",
            "create",
            "--match",
            "service=edge-1",
            "--from",
            &from,
            "--until",
            &until,
            "--reason",
            "migrate edge-1 to the new store",
        ],
    )))
    .expect("JSON");
    let pending = &answer["notice"];
    assert_eq!(pending["id"], "N-0002");
    assert_eq!(pending["state"], "pending");
    assert_eq!(
        pending["matchers"],
        serde_json::json!([{"name": "service", "value": "edge-1"}])
    );
    let user = std::env::var("USER")
        .ok()
        .filter(|user| !user.is_empty())
        .unwrap_or_else(|| "human".into());
    assert_eq!(pending["author"], format!("human:{user}"));
    assert_eq!(
        format_time_ms(pending["starts_ms"].as_u64().expect("starts")),
        from
    );

    assert_eq!(ids(&stdout(&notice(&url, &["list"]))), ["N-0001", "N-0002"]);
    assert_eq!(
        ids(&stdout(&notice(&url, &["list", "--state", "active"]))),
        ["N-0001"]
    );
    assert_eq!(
        ids(&stdout(&notice(&url, &["list", "--state", "pending"]))),
        ["N-0002"]
    );

    let expired = stdout(&notice(
        &url,
        &[
            "expire",
            "N-0001",
            "--reason",
            "launch postponed",
            "--actor",
            "alice",
        ],
    ));
    assert!(expired.starts_with("N-0001  expired "), "{expired}");
    assert_eq!(
        ids(&stdout(&notice(&url, &["list", "--state", "expired"]))),
        ["N-0001"]
    );
    let shown = stdout(&notice(&url, &["show", "N-0001"]));
    assert!(
        shown.contains("\"reason\": \"launch postponed\""),
        "{shown}"
    );
    assert!(shown.contains(" notice.created "), "{shown}");
    assert!(shown.contains(" notice.expired "), "{shown}");

    // The ledger holds them: it verifies, notices included.
    let verified = stdout(&run(&[
        "ledger",
        "verify",
        "--data",
        &dir.join("data").display().to_string(),
    ]));
    assert!(verified.contains(" 2 notices; "), "{verified}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn refusals_name_the_flag() {
    let dir = scratch();
    let (_harness, addr) = start_harness(&dir, &[], 200);
    let url = format!("http://{addr}");
    let create = |extra: &[&str]| {
        let mut args = vec!["create", "--reason", "a launch"];
        args.extend_from_slice(extra);
        failed(&notice(&url, &args))
    };
    for (extra, expected) in [
        (
            vec!["--match", "tenant=acme"],
            "error: --for or --until: how long is the change expected?",
        ),
        (
            vec!["--for", "2h"],
            "error: --match: say what the change touches",
        ),
        (
            vec!["--match", "colour=red", "--for", "2h"],
            "error: --match 1 (\"colour=red\"): \"colour\" is not a label a notice matches",
        ),
        (
            vec!["--match", "tenant", "--for", "2h"],
            "error: --match 1 (\"tenant\"): expected NAME=VALUE",
        ),
        (
            vec!["--match", "tenant=acme", "--for", "soon"],
            "error: --for: \"soon\" is not a duration",
        ),
        (
            vec!["--match", "tenant=acme", "--until", "tomorrow"],
            "error: --until: \"tomorrow\" is not an RFC 3339 timestamp",
        ),
        // Refused by the harness, named by the CLI.
        (
            vec![
                "--match",
                "tenant=acme",
                "--match-regex",
                "anomaly=(",
                "--for",
                "2h",
            ],
            "error: --match-regex 1 (\"anomaly=(\"): \"(\" is not a valid regex",
        ),
        (
            vec!["--match", "tenant=acme", "--for", "8d"],
            "error: --for: the window is 8d, longer than 7d (HTTP 400 invalid_argument)",
        ),
        (
            vec!["--match", "tenant=acme", "--for", "2h", "--max-factor", "1"],
            "error: --max-factor: 1 must be above 1",
        ),
        (
            vec!["--match", "tenant=acme", "--for", "2h", "--author", "alice"],
            "error: --author: \"alice\" is not KIND:NAME",
        ),
    ] {
        let stderr = create(&extra);
        assert!(stderr.starts_with(expected), "{extra:?}: {stderr}");
    }
    let stderr = failed(&notice(&url, &["expire", "N-0099", "--reason", "x"]));
    assert!(
        stderr.starts_with("error: no notice N-0099 (HTTP 404 not_found)"),
        "{stderr}"
    );
    let stderr = failed(&notice(&url, &["list", "--state", "soon"]));
    assert!(stderr.contains("\"soon\" is not a state"), "{stderr}");
    assert_eq!(ids(&stdout(&notice(&url, &["list"]))), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn with_tokens_an_intake_token_announces_and_a_read_token_only_reads() {
    let dir = scratch();
    let tokens = dir.join("tokens.txt");
    std::fs::write(
        &tokens,
        format!("read dash {READ_TOKEN}\nintake deploy {INTAKE_TOKEN}\n"),
    )
    .expect("tokens file");
    let (_harness, addr) =
        start_harness(&dir, &["--tokens-file", &tokens.display().to_string()], 401);
    let url = format!("http://{addr}");
    let with_token = |token: &str, args: &[&str]| {
        let mut command = floodgate();
        command
            .args(["notice", "--harness", &url, "--token-env", "FG_TEST_TOKEN"])
            .args(args)
            .env("FG_TEST_TOKEN", token);
        command.output().expect("run floodgate")
    };
    let create = [
        "create",
        "--match",
        "tenant=acme",
        "--for",
        "1h",
        "--reason",
        "acme launches",
        "--author",
        "deploy:ci",
    ];
    let stderr = failed(&with_token(READ_TOKEN, &create));
    assert!(
        stderr.contains("needs scope intake; token dash has scope read (HTTP 403 forbidden)"),
        "{stderr}"
    );
    let created = stdout(&with_token(INTAKE_TOKEN, &create));
    assert!(created.starts_with("N-0001  active "), "{created}");
    let stderr = failed(&with_token(INTAKE_TOKEN, &["list"]));
    assert!(stderr.contains("needs scope read"), "{stderr}");
    assert_eq!(ids(&stdout(&with_token(READ_TOKEN, &["list"]))), ["N-0001"]);
    let _ = std::fs::remove_dir_all(dir);
}
