//! `floodgate scenarios run --realtime`: the same scenario with the service
//! and the harness served on 127.0.0.1 and spoken to over real HTTP, each
//! tick paced by the wall clock, gives the same figures as the simulated
//! run of the same seed (the transport changes nothing the verifier sees).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(out: &Path, extra: &[&str]) -> Value {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .current_dir(&repo)
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
    let _ = std::fs::remove_dir_all(simulated_dir);
    let _ = std::fs::remove_dir_all(realtime_dir);
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
