//! The default suite as CI runs it (debug build, simulated time): fails if
//! the mitigation rate falls below `scenarios/baseline.json`, if any
//! control run raises a false alarm, or if any run is ERROR. Also: the same
//! seed gives the same result, and bad scenario files are refused with
//! their file, line and field.

use floodgate_lab::run::{run_scenario, run_suite, suite, AgentKind, Options};
use floodgate_lab::{load_dir, parse, report};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn options(name: &str) -> Options {
    let out = std::env::temp_dir().join(format!("floodgate-lab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    Options {
        runbooks: repo().join("runbooks"),
        llm: None,
        mcp_command: None,
        realtime: None,
        out,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_suite_meets_the_committed_baseline() {
    let scenarios = load_dir(&repo().join("scenarios")).expect("scenarios parse");
    let chosen = suite(&scenarios, "default");
    assert!(chosen.len() >= 13, "{} scenarios", chosen.len());
    let options = options("suite");
    let started = std::time::Instant::now();
    let results = run_suite(&chosen, 1, AgentKind::Runbook, &options)
        .await
        .expect("suite");
    let table = report::table(&results);
    let aggregate = report::aggregate(&results);
    println!("{table}\n{}", report::aggregate_table(&aggregate));
    println!(
        "seeds: {:?}",
        results
            .iter()
            .map(|r| (&r.scenario, r.seed))
            .collect::<Vec<_>>()
    );
    println!("wall clock: {:.1}s", started.elapsed().as_secs_f64());
    let baseline: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("scenarios/baseline.json")).expect("baseline.json"),
    )
    .expect("baseline.json is JSON");
    let committed = baseline["mitigation_rate"]
        .as_f64()
        .expect("mitigation_rate");
    assert_eq!(
        aggregate.false_alarms, 0,
        "false alarms on control runs:\n{table}"
    );
    assert_eq!(aggregate.error, 0, "runs in ERROR:\n{table}");
    assert!(
        aggregate.mitigation_rate >= committed,
        "mitigation rate {:.3} below the committed {committed:.3}:\n{table}",
        aggregate.mitigation_rate
    );
    let escalations = baseline["escalated_correctly"].as_u64().unwrap_or(0) as usize;
    assert!(
        aggregate.escalated_correctly >= escalations,
        "escalated correctly {} below the committed {escalations}:\n{table}",
        aggregate.escalated_correctly
    );
}

#[tokio::test]
async fn the_same_seed_gives_the_same_result() {
    let scenarios = load_dir(&repo().join("scenarios")).expect("scenarios parse");
    let scenario = scenarios
        .iter()
        .find(|s| s.name == "key-flood")
        .expect("key-flood");
    let seed = scenario.seed;
    println!("seed {seed}");
    let first = run_scenario(scenario, seed, AgentKind::Runbook, &options("same-1")).await;
    let second = run_scenario(scenario, seed, AgentKind::Runbook, &options("same-2")).await;
    assert_eq!(
        serde_json::to_value(&first.figures).unwrap(),
        serde_json::to_value(&second.figures).unwrap()
    );
    assert_eq!(first.verdict, second.verdict);
    assert_eq!(first.why, second.why);
}

#[test]
fn bad_scenario_files_are_refused_with_file_line_and_field() {
    let good = std::fs::read_to_string(repo().join("scenarios/abusive-surge.yaml")).unwrap();
    let cases = [
        (
            good.replace("tenant: mallory", "tenant: bob"),
            "faults[0].tenant",
            "not a tenant",
        ),
        (
            good.replace(
                "per_minute: 480\nexpect",
                "per_minute: 480\n    colour: red\nexpect",
            ),
            "faults[0]",
            "colour",
        ),
        (
            good.replace("duration: 1h30m", "duration: soon"),
            "duration",
            "",
        ),
        (
            good.replace("outcome: mitigate", "outcome: maybe"),
            "expect.outcome",
            "maybe",
        ),
        (
            good.replace("at: 30m", "at: 3h"),
            "faults[0].at",
            "not before the end",
        ),
        (
            good.replace(
                "kind: surge\n    tenant: mallory\n    per_minute: 480",
                "kind: backend_outage\n    for: 10m",
            ),
            "faults[0].kind",
            "needs a remote backend",
        ),
        (
            good.replace(
                "kind: surge\n    tenant: mallory\n    per_minute: 480",
                "kind: backend_latency\n    for: 10m",
            )
            .replace("seed: 11", "seed: 11\nbackend: {kind: remote}"),
            "faults[0].latency",
            "needs latency",
        ),
        (
            good.replace(
                "seed: 11",
                "seed: 11\nbackend: {kind: memory, failure_policy: fail_open}",
            ),
            "backend.failure_policy",
            "only a remote backend",
        ),
        (
            good.replace(
                "seed: 11",
                "seed: 11\nbackend: {kind: remote, failure_policy: fail_sometimes}",
            ),
            "backend.failure_policy",
            "fail_sometimes",
        ),
        (
            good.replace("kind: surge", "kind: meteor"),
            "faults[0].kind",
            "backend_outage",
        ),
    ];
    for (text, field, message) in cases {
        let error = parse("scenarios/x.yaml", &text).expect_err(field);
        let shown = error.to_string();
        assert!(shown.starts_with("scenarios/x.yaml: line "), "{shown}");
        assert!(error.field.starts_with(field), "{field}: {shown}");
        assert!(shown.contains(message), "{message}: {shown}");
    }
}
