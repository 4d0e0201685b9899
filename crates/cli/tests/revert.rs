//! `floodgate revert CHANGE_ID` as a user runs it: what is not a change id
//! is refused, and an unreachable harness is named. The revert itself,
//! through the pipeline, is tested on the lab's world
//! (`crates/lab/tests/revert.rs`).

use std::process::Command;

fn floodgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floodgate"))
}

#[test]
fn the_cli_refuses_what_is_not_a_change_id_and_names_an_unreachable_harness() {
    let output = floodgate()
        .args(["revert", "INF-0001"])
        .output()
        .expect("run floodgate");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"INF-0001\" is not a change id")
            && stderr.contains("such as P-0003")
            && stderr.contains("<CHANGE_ID>"),
        "{stderr}"
    );

    let output = floodgate().args(["revert"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("CHANGE_ID"));

    // Port 1 on loopback: nothing listens, the connection is refused.
    let output = floodgate()
        .args([
            "revert",
            "P-0003",
            "--harness",
            "http://127.0.0.1:1",
            "--token-env",
            "FLOODGATE_REVERT_TEST_UNSET",
        ])
        .output()
        .expect("run floodgate");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("revert P-0003")
            && stderr.contains("is `floodgate harness` running at http://127.0.0.1:1?"),
        "{stderr}"
    );
}
