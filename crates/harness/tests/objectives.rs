//! Objectives files: the compact form, OpenSLO v1, and errors that name the
//! file, line and field.

use floodgate_harness::observe::objectives::{self, OnViolation, Severity, Sli};
use floodgate_harness::quantity::{DAY_MS, HOUR_MS, MINUTE_MS};

fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|error| panic!("{}: {error}", full.display()))
}

#[test]
fn the_example_objectives_file_loads() {
    let objectives = objectives::parse(
        "objectives.yaml",
        &repo_file("../../examples/objectives.yaml"),
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let names: Vec<&str> = objectives
        .slos
        .iter()
        .map(|slo| slo.name.as_str())
        .collect();
    assert_eq!(names, ["availability", "latency", "limiting_correctness"]);
    let availability = &objectives.slos[0];
    assert!((availability.target - 0.999).abs() < 1e-12);
    assert_eq!(availability.window_ms, 30 * DAY_MS);
    assert_eq!(availability.min_events, 100);
    assert_eq!(availability.rules.len(), 4);
    assert_eq!(availability.rules[0].burn_rate, 14.4);
    assert_eq!(
        (
            availability.rules[0].long_ms,
            availability.rules[0].short_ms
        ),
        (HOUR_MS, 5 * MINUTE_MS)
    );
    assert_eq!(availability.rules[3].severity, Severity::Ticket);
    assert_eq!(
        (
            availability.rules[3].long_ms,
            availability.rules[3].short_ms
        ),
        (3 * DAY_MS, 6 * HOUR_MS)
    );
    match &objectives.slos[1].sli {
        Sli::Latency {
            good,
            total,
            threshold_seconds,
        } => {
            assert_eq!(
                good.to_string(),
                "floodgate_request_duration_seconds_bucket{le=\"0.001\"}"
            );
            assert_eq!(
                total.to_string(),
                "floodgate_request_duration_seconds_count"
            );
            assert_eq!(*threshold_seconds, 0.001);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(objectives.invariants.len(), 3);
    assert_eq!(
        objectives.invariants[0].on_violation,
        OnViolation::AutoRemediate {
            runbook: "raise_store_capacity".into()
        }
    );
    assert_eq!(objectives.invariants[0].hold_ticks, 3);
    assert_eq!(objectives.anomalies.len(), 2);
}

#[test]
fn openslo_documents_mix_with_the_compact_form() {
    let objectives = objectives::parse("openslo.yaml", &repo_file("tests/fixtures/openslo.yaml"))
        .unwrap_or_else(|error| panic!("{error}"));
    let names: Vec<&str> = objectives
        .slos
        .iter()
        .map(|slo| slo.name.as_str())
        .collect();
    assert_eq!(names, ["availability", "fast"]);
    assert_eq!(objectives.slos[0].window_ms, 28 * DAY_MS);
    assert!(matches!(
        &objectives.slos[0].sli,
        Sli::Ratio {
            good: None,
            bad: Some(_),
            ..
        }
    ));
    assert!((objectives.slos[1].target - 0.99).abs() < 1e-12);
    assert_eq!(objectives.invariants[0].condition, "available > 0.2");
    assert_eq!(
        objectives.invariants[0].on_violation,
        OnViolation::AutoRemediate {
            runbook: String::new()
        }
    );
}

/// One bad file and the exact error it must produce.
fn check_error(text: &str, expected: &str) {
    match objectives::parse("objectives.yaml", text) {
        Ok(parsed) => panic!("accepted, expected {expected:?}: {parsed:?}"),
        Err(error) => match expected.strip_suffix('…') {
            Some(prefix) => assert!(
                error.to_string().starts_with(prefix),
                "{error}\nfor:\n{text}"
            ),
            None => assert_eq!(error.to_string(), expected, "for:\n{text}"),
        },
    }
}

const RATIO: &str = "    sli:\n      ratio:\n        good: floodgate_requests_total{code!=\"error\"}\n        total: floodgate_requests_total\n";

#[test]
fn bad_objectives_name_the_line_and_field() {
    // A target without its unit.
    check_error(
        "# availability\n\nslos:\n  - name: availability\n    window: 30d\n    sli:\n      ratio: {good: a_total, total: b_total}\n    target: 99.9\n",
        "objectives.yaml: line 8: slos[0].target: \"99.9\" is not a percentage (expected e.g. 99.9%)",
    );
    check_error(
        &format!("slos:\n  - name: availability\n    target: 99.9%\n    window: 30 days\n{RATIO}"),
        "objectives.yaml: line 4: slos[0].window: \"30 days\" is not a duration (expected e.g. 500ms, 30s, 5m, 1h, 30d)",
    );
    check_error(
        &format!("slos:\n  - name: availability\n    target: 99.9%\n    window: 30d\n    burn_rate_alert: fast\n{RATIO}"),
        "objectives.yaml: line 5: slos[0].burn_rate_alert: \"fast\" is not a factor (expected e.g. 14.4x)",
    );
    check_error(
        "slos:\n  - name: availability\n    target: 99.9%\n    window: 30d\n    sli:\n      ratio:\n        good: rate(x_total[5m])\n        total: x_total\n",
        "objectives.yaml: line 7: slos[0].sli.ratio.good: \"rate(x_total[5m])\" is not a selector (expected a selector such as floodgate_requests_total{code!=\"error\"}; only selectors are supported, not full PromQL)",
    );
    check_error(
        &format!("slos:\n  - name: availability\n    target: 99.9%\n    window: 30d\n    windo: 1d\n{RATIO}"),
        "objectives.yaml: line 5: slos[0]: unknown field \"windo\" (expected one of name, description, service, target, window, burn_rate_alert, alerts, min_events, sli)",
    );
    check_error(
        "invariants:\n  - name: headroom\n    condition: capacity.available_ratio >\n",
        "objectives.yaml: line 3: invariants[0].condition: \"capacity.available_ratio >\" is not a valid CEL expression (at 1:27: Syntax error: mismatched input…",
    );
    check_error(
        "slos:\n  - name: latency\n    target: 99%\n    window: 30d\n    sli:\n      latency:\n        histogram: floodgate_request_duration_seconds\n        threshold: 2ms\n",
        "objectives.yaml: line 8: slos[0].sli.latency.threshold: 0.002s is not a bucket bound of floodgate_request_duration_seconds (expected one of 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)",
    );
    check_error(
        "invariants:\n  - name: a\n    condition: 'true'\n  - name: a\n    condition: 'false'\n",
        "objectives.yaml: line 4: invariants[1].name: duplicate invariant name \"a\"",
    );
    check_error(
        "slos:\n  - name: x\n    target: 99%\n  window: 1d\n",
        "objectives.yaml: line 4: not valid YAML: while parsing a block collection, did not find expected '-' indicator",
    );
    check_error(
        "apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: x\nspec:\n  service: s\n  indicatorRef: y\n  timeWindow:\n    - duration: 7d\n  budgetingMethod: Timeslices\n  objectives:\n    - target: 0.99\n",
        "objectives.yaml: line 7: spec.indicatorRef: no SLI named \"y\" in this file",
    );
    check_error(
        "apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: x\nspec:\n  budgetingMethod: Weekly\n",
        "objectives.yaml: line 6: spec.budgetingMethod: unknown variant Weekly, expected one of Occurrences, Timeslices, RatioTimeslices",
    );
}
