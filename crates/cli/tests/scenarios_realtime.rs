//! `floodgate scenarios run --realtime`: the same scenario with the service
//! and the harness served on 127.0.0.1 and spoken to over real HTTP, each
//! tick paced by the wall clock, gives the same figures as the simulated
//! run of the same seed (the transport changes nothing the verifier sees).
//! Both run outside the repository: the suite and the runbooks are built
//! into the binary.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(out: &Path, extra: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .current_dir(std::env::temp_dir())
        .args(["scenarios", "run", "--scenario", "bad-config", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("floodgate runs");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).expect("results"))
        .expect("JSON")
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("floodgate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_realtime_run_over_loopback_http_matches_the_simulated_run() {
    let simulated_dir = temp("simulated");
    let realtime_dir = temp("realtime");
    let simulated = run(&simulated_dir, &[]);
    // 1h30m of scenario at 3000x: about 2 s of pacing per run.
    let realtime = run(&realtime_dir, &["--realtime", "--speed", "3000"]);
    assert!(
        realtime["command"]
            .as_str()
            .is_some_and(|c| c.contains("--realtime --speed 3000")),
        "{}",
        realtime["command"]
    );
    let (a, b) = (&simulated["runs"][0], &realtime["runs"][0]);
    assert_eq!(b["verdict"], "PASS", "{b}");
    assert_eq!(a["figures"], b["figures"], "simulated {a}\nrealtime {b}");
    assert_eq!(a["why"], b["why"]);

    // The run's harness data, reported without --since: its simulated
    // dates are long past, so the report covers the run's own period.
    let data = a["data"].as_str().expect("data");
    let review = simulated_dir.join("review");
    let output = Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .args(["report", "--data", data, "--out"])
        .arg(&review)
        .output()
        .expect("floodgate runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let md = std::fs::read_to_string(review.join("report.md")).expect("report.md");
    assert!(
        md.contains("# Floodgate review: 2026-01-01T00:00:00Z to "),
        "{md}"
    );
    assert!(md.contains("`rollback_config on svc-a"), "{md}");
    let _ = std::fs::remove_dir_all(simulated_dir);
    let _ = std::fs::remove_dir_all(realtime_dir);
}

#[test]
fn the_built_in_suite_is_listed_from_anywhere_and_a_missing_directory_is_named() {
    let floodgate = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_floodgate"))
            .current_dir(std::env::temp_dir())
            .args(args)
            .output()
            .expect("floodgate runs")
    };
    let listed = floodgate(&["scenarios", "list", "--suite", "default"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let stdout = String::from_utf8_lossy(&listed.stdout);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let committed = floodgate_lab::load_dir(&repo.join("scenarios")).expect("scenarios");
    for scenario in committed
        .iter()
        .filter(|s| s.suites.iter().any(|n| n == "default"))
    {
        assert!(
            stdout
                .lines()
                .any(|line| line.starts_with(&format!("{} ", scenario.name))),
            "{} not listed:\n{stdout}",
            scenario.name
        );
    }
    assert!(
        stdout.contains("scenarios built into floodgate"),
        "{stdout}"
    );
    for (flag, command) in [
        ("--scenarios", "run"),
        ("--runbooks", "run"),
        ("--scenarios", "list"),
    ] {
        let output = floodgate(&["scenarios", command, flag, "no-such-dir"]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("{flag} no-such-dir: "))
                && stderr.contains(&format!("leave {flag} out")),
            "{flag} {command}: {stderr}"
        );
    }
}

#[test]
fn speed_needs_realtime_and_a_sane_value() {
    let out = temp("speed");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let refused = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_floodgate"))
            .current_dir(&repo)
            .args(["scenarios", "run", "--out"])
            .arg(&out)
            .args(args)
            .output()
            .expect("floodgate runs");
        assert!(!output.status.success(), "{args:?} was accepted");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(refused(&["--speed", "10"]).contains("--realtime"));
    assert!(refused(&["--realtime", "--speed", "0"]).contains("--speed 0"));
    assert!(refused(&["--agent", "mcp"]).contains("--mcp-command"));
    assert!(refused(&["--agent", "llm"]).contains("--llm-endpoint"));
}
