//! The `floodgate` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn floodgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floodgate"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bad(name: &str) -> PathBuf {
    repo()
        .join("crates/limiter/tests/fixtures/config/bad")
        .join(name)
}

#[test]
fn config_check_accepts_the_example() {
    let output = floodgate()
        .args(["config", "check"])
        .arg(repo().join("examples/limits.yaml"))
        .output()
        .expect("run floodgate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("limits.yaml: ok (1 domains"), "{stdout}");
}

#[test]
fn config_check_stops_at_the_first_bad_file_naming_file_path_and_problem() {
    let example = repo().join("examples/limits.yaml");
    let unknown_unit = bad("unknown_unit.yaml");
    let output = floodgate()
        .args(["config", "check"])
        .arg(&example)
        .arg(&unknown_unit)
        .arg(bad("empty_key.yaml"))
        .output()
        .expect("run floodgate");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "error: {}: descriptors[1].rate_limit.unit: unknown unit \"minutes\" (expected one of second, minute, hour, day, week, month, year)\n",
        unknown_unit.display()
    );
    assert_eq!(stderr, expected);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("limits.yaml: ok"),
        "the good file before it was checked: {stdout}"
    );
    assert!(
        !stderr.contains("empty_key"),
        "stopped at the first bad file"
    );
}

#[test]
fn config_check_reports_a_domain_defined_in_two_files() {
    let dir = repo().join("crates/limiter/tests/fixtures/config/bad/duplicate_domain");
    let output = floodgate()
        .args(["config", "check"])
        .arg(dir.join("a.yaml"))
        .arg(dir.join("b.yaml"))
        .output()
        .expect("run floodgate");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("b.yaml: domain: duplicate domain"),
        "{stderr}"
    );
}

#[test]
fn config_check_names_a_missing_file() {
    let output = floodgate()
        .args(["config", "check", "/nonexistent/limits.yaml"])
        .output()
        .expect("run floodgate");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: /nonexistent/limits.yaml: cannot read"),
        "{stderr}"
    );
}

#[test]
fn catalog_check_passes_on_the_committed_docs() {
    let output = floodgate()
        .args(["catalog", "--check", "--root"])
        .arg(repo())
        .output()
        .expect("run floodgate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
