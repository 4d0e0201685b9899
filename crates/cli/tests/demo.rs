//! `floodgate demo` as a user runs it, time compressed (the lab's `demo`
//! scenario run through the lab's world, rendered live): the whole loop —
//! fault, SLO burn, ticket, pipeline stages, resolution, trajectory — ends
//! by itself, and its data directory holds a verifiable ledger and the
//! trajectory.

use std::process::Command;

#[test]
fn the_demo_shows_the_whole_loop_and_leaves_its_data() {
    let data = std::env::temp_dir().join(format!("floodgate-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let output = Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .args([
            "demo",
            "--speed",
            "1000000",
            "--http-addr",
            "127.0.0.1:0",
            "--service-addr",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(&data)
        .output()
        .expect("floodgate runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "fault: acme's traffic grows 3x",
        "SLO limiting_correctness is burning its budget",
        "ticket INF-0001 filed (slo:limiting_correctness)",
        // acme needs more than 2x its quota: the runbook raises it in
        // stages of at most 2x, the first an interim mitigation verified
        // for relief (the ticket stays in progress), then the last.
        "P-0001 verifying: passed",
        "ticket INF-0001 is in_progress",
        "P-0002 testing: passed",
        "P-0002 canary: successful",
        "P-0002 deploying: applied",
        "P-0002 verifying: passed",
        "ticket INF-0001 is resolved",
        "trajectory saved: INF-0001",
        "outcome resolved",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let verify = Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .args(["ledger", "verify", "--data"])
        .arg(&data)
        .output()
        .expect("floodgate runs");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let show = Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .args(["trajectory", "show", "INF-0001", "--data"])
        .arg(&data)
        .output()
        .expect("floodgate runs");
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("outcome resolved"), "{text}");
    assert!(text.contains("propose_change"), "{text}");
    // A second demo refuses to write over the first one's data.
    let again = Command::new(env!("CARGO_BIN_EXE_floodgate"))
        .args(["demo", "--data"])
        .arg(&data)
        .output()
        .expect("floodgate runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a harness database"));
    let _ = std::fs::remove_dir_all(&data);
}
