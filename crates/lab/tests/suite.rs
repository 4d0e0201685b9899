//! The default suite and a fixed sample of generated incidents, as CI runs
//! them (debug build, simulated time), gated by `scenarios/baseline.json`:
//! the test fails on any drop (a run that passed no longer passes; fewer
//! incidents detected, mitigated or escalated correctly; more false
//! alarms; any ERROR). Also: the same seed gives the same result, and bad
//! scenario files are refused with their file, line and field.
//!
//! After a change that moves the figures up, bless the new baseline with
//! `FLOODGATE_BLESS=1 cargo test -p floodgate-lab --test suite --
//! the_suite_and_a_generated_sample_meet_the_committed_baseline` and commit
//! `scenarios/baseline.json` with it.

use floodgate_lab::generate;
use floodgate_lab::oracle::Verdict;
use floodgate_lab::run::{run_scenario, run_suite, suite, AgentKind, Options, RunResult};
use floodgate_lab::{load_dir, parse, report, Scenario};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The generated sample CI runs: one incident of each family, drawn with
/// this seed.
const SAMPLE_SEED: u64 = 1;
const SAMPLE_COUNT: u32 = generate::FAMILIES.len() as u32;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn options(name: &str) -> Options {
    let out = std::env::temp_dir().join(format!("floodgate-lab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    Options {
        runbooks: floodgate_agent::runbook::load_dir(&repo().join("runbooks"))
            .expect("runbooks load"),
        llm: None,
        mcp_command: None,
        realtime: None,
        out,
    }
}

fn key(result: &RunResult) -> String {
    format!("{} s{}", result.scenario, result.seed)
}

/// The figures the gate compares.
fn totals(results: &[RunResult]) -> Value {
    let all = report::aggregate(results);
    json!({
        "runs": all.runs,
        "pass": all.pass,
        "error": all.error,
        "detected": all.detected,
        "mitigated": all.mitigated,
        "escalated_correctly": all.escalated_correctly,
        "control_false_alarms": all.control_false_alarms,
        "incident_false_alarms": all.incident_false_alarms,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_and_a_generated_sample_meet_the_committed_baseline() {
    let committed = load_dir(&repo().join("scenarios")).expect("scenarios parse");
    let generated: Vec<Scenario> = generate::generate(&[], SAMPLE_COUNT, SAMPLE_SEED)
        .expect("generate")
        .iter()
        .map(|file| parse(&file.name, &file.text).expect("generated files parse"))
        .collect();
    let mut chosen = suite(&committed, "default");
    assert!(chosen.len() >= 13, "{} scenarios", chosen.len());
    chosen.extend(generated.iter());
    let options = options("suite");
    let started = std::time::Instant::now();
    let results = run_suite(&chosen, 1, AgentKind::Runbook, &options)
        .await
        .expect("suite");
    let table = report::table(&results);
    println!(
        "{table}\n{}",
        report::aggregate_table(&report::by_family(&results))
    );
    println!("generated sample: seed {SAMPLE_SEED}, {SAMPLE_COUNT} incidents");
    println!("wall clock: {:.1}s", started.elapsed().as_secs_f64());
    let now = json!({
        "made_by": "FLOODGATE_BLESS=1 cargo test -p floodgate-lab --test suite -- the_suite_and_a_generated_sample_meet_the_committed_baseline",
        "generated": {"seed": SAMPLE_SEED, "count": SAMPLE_COUNT},
        "totals": totals(&results),
        "runs": results
            .iter()
            .map(|r| (key(r), Value::from(r.verdict.as_str())))
            .collect::<serde_json::Map<String, Value>>(),
    });
    let path = repo().join("scenarios/baseline.json");
    if std::env::var_os("FLOODGATE_BLESS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&now).unwrap() + "\n")
            .expect("writing the baseline");
        println!("blessed {}", path.display());
        return;
    }
    let baseline: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("scenarios/baseline.json"))
            .expect("baseline.json is JSON");
    let mut drops = Vec::new();
    for result in &results {
        if result.verdict == Verdict::Error {
            drops.push(format!("{} is ERROR: {}", key(result), result.why));
        }
        let was = baseline["runs"][key(result)].as_str().unwrap_or("(new)");
        if was == "PASS" && result.verdict != Verdict::Pass {
            drops.push(format!(
                "{} passed in the baseline and is {} now: {}",
                key(result),
                result.verdict.as_str(),
                result.why
            ));
        }
    }
    for (name, higher_is_better) in [
        ("pass", true),
        ("detected", true),
        ("mitigated", true),
        ("escalated_correctly", true),
        ("control_false_alarms", false),
        ("incident_false_alarms", false),
    ] {
        let before = baseline["totals"][name].as_u64().unwrap_or(0);
        let after = now["totals"][name].as_u64().unwrap_or(0);
        let worse = if higher_is_better {
            after < before
        } else {
            after > before
        };
        if worse {
            drops.push(format!("{name}: {after}, the baseline has {before}"));
        }
    }
    assert!(
        drops.is_empty(),
        "below the committed baseline (scenarios/baseline.json):\n- {}\n\n{table}",
        drops.join("\n- ")
    );
    if now["totals"] != baseline["totals"] {
        println!(
            "the figures moved from the baseline ({} -> {}): bless them with FLOODGATE_BLESS=1",
            baseline["totals"], now["totals"]
        );
    }
}

/// Generated controls and incidents are what they claim, before any agent
/// acts: no generated control breaks the objective on its own, and every
/// generated incident's fault takes effect (its no-agent run breaks the
/// objective). A generator that drew a harmless incident or a harmful
/// control would make the suite's figures lie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_incidents_take_effect_and_generated_controls_stay_healthy() {
    let seed = 5;
    let families: Vec<String> = ["control", "outgrown_quota", "bad_config", "key_pressure"]
        .iter()
        .map(|f| (*f).to_owned())
        .collect();
    let scenarios: Vec<Scenario> = generate::generate(&families, 8, seed)
        .expect("generate")
        .iter()
        .map(|file| parse(&file.name, &file.text).expect("generated files parse"))
        .collect();
    let chosen: Vec<&Scenario> = scenarios.iter().collect();
    let results = run_suite(&chosen, 1, AgentKind::None, &options("generated-truth"))
        .await
        .expect("runs");
    println!("generator seed {seed}\n{}", report::table(&results));
    for result in &results {
        if result.expected == "quiet" {
            assert_eq!(
                result.figures.bad_minutes, 0.0,
                "seed {seed}: control {} broke the objective by itself",
                result.scenario
            );
        } else {
            assert!(
                result.figures.witnessed,
                "seed {seed}: {} never took effect",
                result.scenario
            );
        }
        assert_ne!(
            result.verdict,
            Verdict::Error,
            "seed {seed}: {}",
            result.why
        );
    }
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
        assert!(error.path.starts_with(field), "{field}: {shown}");
        assert!(shown.contains(message), "{message}: {shown}");
    }
}
