//! The pipeline policy file: parsing, errors with file, line and field,
//! approval rules, freeze windows and budgets.

use floodgate_contract::actions::Risk;
use floodgate_contract::time::parse_rfc3339_ms;
use floodgate_harness::change::judge::{Direction, Method, MetricCheck, Thresholds};
use floodgate_harness::change::policy::{
    parse_time_of_day, ActiveFreeze, BudgetExceeded, BudgetKind, BudgetUsage, FreezeWindow,
    MinRisk, Policy, Schedule, Weekday, FREEZE_LOOKAHEAD_MS,
};
use floodgate_harness::quantity::{DAY_MS, HOUR_MS, MINUTE_MS};
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn parse(file: &str, text: &str) -> Policy {
    Policy::parse(file, text).unwrap_or_else(|error| panic!("{error}"))
}

/// 2026-06-01T00:00:00Z, a Monday.
const MONDAY: u64 = 1_780_272_000_000;

fn at(day: u64, hour: u64, minute: u64) -> u64 {
    MONDAY + day * DAY_MS + hour * HOUR_MS + minute * MINUTE_MS
}

// ---------------------------------------------------------------------------
// parsing

#[test]
fn the_example_policy_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policy.yaml");
    let policy = parse("policy.yaml", &read(&path));
    assert_eq!(policy.approval.min_risk, MinRisk::High);
    assert_eq!(policy.approval.actions, ["set_failure_policy"]);
    assert_eq!(policy.approval.timeout_ms, 30 * MINUTE_MS);
    assert_eq!(
        policy.freeze_windows,
        [
            FreezeWindow {
                name: "peak-hours".into(),
                schedule: Schedule::Weekly {
                    days: vec![
                        Weekday::Mon,
                        Weekday::Tue,
                        Weekday::Wed,
                        Weekday::Thu,
                        Weekday::Fri
                    ],
                    start_minute: 17 * 60,
                    duration_minutes: 4 * 60,
                },
            },
            FreezeWindow {
                name: "launch-day".into(),
                schedule: Schedule::Once {
                    from_ms: 1_796_083_200_000,
                    until_ms: 1_796_083_200_000 + DAY_MS,
                },
            },
        ]
    );
    assert_eq!(policy.budgets.proposals_per_ticket, 3);
    assert_eq!(policy.budgets.actions_per_ticket, 10);
    assert_eq!(policy.budgets.time_per_ticket_ms, 2 * HOUR_MS);
    assert_eq!(policy.canary.duration_ms, 2 * MINUTE_MS);
    assert_eq!(policy.canary.thresholds, Thresholds::default());
    assert_eq!(
        policy.canary_checks(),
        [MetricCheck {
            name: "error_ratio".into(),
            direction: Direction::Increase,
            critical: true,
            method: Method::EffectSize {
                max_relative_change: 0.1,
                min_absolute_change: 0.001,
            },
            min_samples: 3,
        }]
    );
    assert_eq!(policy.verify.max_duration_ms, 2 * HOUR_MS);
    assert_eq!(policy.verify.criteria_window_ms, 5 * MINUTE_MS);
}

#[test]
fn a_full_policy_parses_to_the_expected_values() {
    let policy = parse("full.yaml", &read(&fixture_dir().join("full.yaml")));
    assert_eq!(policy.approval.min_risk, MinRisk::Medium);
    assert_eq!(policy.approval.actions, ["drain", "set_failure_policy"]);
    assert_eq!(policy.approval.timeout_ms, 90 * MINUTE_MS);
    let schedules: Vec<(&str, &Schedule)> = policy
        .freeze_windows
        .iter()
        .map(|window| (window.name.as_str(), &window.schedule))
        .collect();
    assert_eq!(
        schedules,
        [
            (
                "overnight",
                &Schedule::Weekly {
                    days: vec![Weekday::Fri, Weekday::Sat],
                    start_minute: 22 * 60,
                    duration_minutes: 4 * 60,
                }
            ),
            (
                "all-day-sunday",
                &Schedule::Weekly {
                    days: vec![Weekday::Sun],
                    start_minute: 0,
                    duration_minutes: 24 * 60,
                }
            ),
            (
                "daily-lunch",
                &Schedule::Weekly {
                    days: Weekday::ALL.to_vec(),
                    start_minute: 12 * 60,
                    duration_minutes: 90,
                }
            ),
            (
                "launch",
                // 09:30 at +01:00 is 08:30Z.
                &Schedule::Once {
                    from_ms: 1_796_083_200_000 + 8 * HOUR_MS + 30 * MINUTE_MS,
                    until_ms: 1_796_083_200_000 + 12 * HOUR_MS + 250,
                }
            ),
        ]
    );
    assert_eq!(policy.budgets.proposals_per_ticket, 5);
    assert_eq!(policy.budgets.actions_per_ticket, 20);
    assert_eq!(policy.budgets.time_per_ticket_ms, 4 * HOUR_MS);
    assert_eq!(policy.canary.duration_ms, 10 * MINUTE_MS);
    assert_eq!(
        policy.canary.thresholds,
        Thresholds {
            pass: 90.0,
            marginal: 60.5
        }
    );
    assert_eq!(
        policy.canary_checks(),
        [
            MetricCheck {
                name: "error_ratio".into(),
                direction: Direction::Increase,
                critical: true,
                method: Method::EffectSize {
                    max_relative_change: 0.2,
                    min_absolute_change: 0.0,
                },
                min_samples: 5,
            },
            MetricCheck {
                name: "throughput".into(),
                direction: Direction::Decrease,
                critical: false,
                method: Method::MannWhitney {
                    alpha: 0.05,
                    min_absolute_change: 0.0
                },
                min_samples: 10,
            },
            MetricCheck {
                name: "latency_p99".into(),
                direction: Direction::Either,
                critical: false,
                method: Method::MannWhitney {
                    alpha: 0.01,
                    min_absolute_change: 0.0
                },
                min_samples: 5,
            },
        ]
    );
    assert_eq!(policy.verify.max_duration_ms, 45 * MINUTE_MS);
}

#[test]
fn an_empty_file_is_the_default_policy() {
    let defaults = Policy::default();
    for text in ["", "# nothing here\n", "---\n", "approval: {}\n"] {
        assert_eq!(parse("empty.yaml", text), defaults, "{text:?}");
    }
    assert_eq!(defaults.approval.min_risk, MinRisk::High);
    assert!(defaults.approval.actions.is_empty());
    assert_eq!(defaults.approval.timeout_ms, 30 * MINUTE_MS);
    assert!(defaults.freeze_windows.is_empty());
    assert_eq!(
        (
            defaults.budgets.proposals_per_ticket,
            defaults.budgets.actions_per_ticket,
            defaults.budgets.time_per_ticket_ms
        ),
        (3, 10, 2 * HOUR_MS)
    );
    assert_eq!(defaults.canary.duration_ms, 2 * MINUTE_MS);
    let names: Vec<String> = defaults
        .canary_checks()
        .into_iter()
        .map(|check| check.name)
        .collect();
    assert_eq!(names, ["error_ratio", "latency_p99"]);
    assert_eq!(defaults.verify.max_duration_ms, 2 * HOUR_MS);
    assert_eq!(defaults.verify.criteria_window_ms, 5 * MINUTE_MS);
    // Sections given in part keep the other fields' defaults.
    let partial = parse(
        "partial.yaml",
        "budgets: {actions_per_ticket: 4}\ncanary: {duration: 5m}\n",
    );
    assert_eq!(partial.budgets.actions_per_ticket, 4);
    assert_eq!(partial.budgets.proposals_per_ticket, 3);
    assert_eq!(partial.canary.metrics, defaults.canary.metrics);
    assert_eq!(partial.canary.duration_ms, 5 * MINUTE_MS);
}

/// Each `bad-*.yaml` fixture starts with `# error: ` and the exact error it
/// must give.
#[test]
fn every_bad_field_is_reported_with_file_line_and_path() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .unwrap_or_else(|error| panic!("{error}"))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("bad-"))
        })
        .collect();
    paths.sort();
    assert!(paths.len() >= 30, "{} bad fixtures", paths.len());
    let mut mismatches = Vec::new();
    for path in &paths {
        let text = read(path);
        let file = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        let expected = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# error: "))
            .unwrap_or_else(|| panic!("{file}: no `# error: ` line"));
        match Policy::parse(file, &text) {
            Ok(_) => mismatches.push(format!("{file}: parsed\n  expected {expected}")),
            Err(error) if error.to_string() != expected => mismatches.push(format!(
                "{file}:\n  expected {expected}\n  got      {error}"
            )),
            Err(error) => {
                assert_eq!(error.file, file);
                assert!(error.line.is_some(), "{error}");
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_verify_criteria_window_may_only_shorten_the_default() {
    let policy = parse("p.yaml", "verify:\n  criteria_window: 2s\n");
    assert_eq!(policy.verify.criteria_window_ms, 2000);
    assert_eq!(policy.verify.max_duration_ms, 2 * HOUR_MS);
    let policy = parse(
        "p.yaml",
        "verify: {criteria_window: 5m, max_duration: 1m}\n",
    );
    assert_eq!(policy.verify.criteria_window_ms, 5 * MINUTE_MS);
    assert_eq!(policy.verify.max_duration_ms, MINUTE_MS);
    for (text, value) in [("6m", "6m"), ("1h", "1h"), ("500ms", "500ms")] {
        let error = Policy::parse("p.yaml", &format!("verify:\n  criteria_window: {text}\n"))
            .err()
            .unwrap_or_else(|| panic!("{text} accepted"));
        assert_eq!(error.path, "verify.criteria_window", "{text}");
        assert_eq!(error.line, Some(2), "{text}");
        assert_eq!(
            error.message,
            format!(
                "must be from 1s to 5m (a longer wait belongs in the criterion's duration), not {value}"
            )
        );
    }
}

#[test]
fn error_fields_and_display() {
    let error = Policy::parse("p.yaml", "budgets:\n  proposals_per_ticket: 0\n")
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    assert_eq!(error.file, "p.yaml");
    assert_eq!(error.line, Some(2));
    assert_eq!(error.path, "budgets.proposals_per_ticket");
    assert_eq!(error.message, "must be at least 1");
    assert_eq!(
        error.to_string(),
        "p.yaml: line 2: budgets.proposals_per_ticket: must be at least 1"
    );
    let huge = "#".repeat(300 * 1024);
    let error = Policy::parse("huge.yaml", &huge)
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    assert_eq!(
        error.to_string(),
        "huge.yaml: 307200 bytes, larger than 262144 bytes"
    );
}

#[test]
fn times_of_day_and_timestamps() {
    assert_eq!(parse_time_of_day("00:00"), Ok(0));
    assert_eq!(parse_time_of_day("23:59"), Ok(23 * 60 + 59));
    for bad in ["24:00", "7:00", "07:60", "0700", "07:00:00", "-1:00", " : "] {
        assert!(parse_time_of_day(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
    assert_eq!(parse_rfc3339_ms("2026-06-01T00:00:00Z"), Ok(MONDAY));
    assert_eq!(parse_rfc3339_ms("2026-06-01t00:00:00.5z"), Ok(MONDAY + 500));
    assert_eq!(
        parse_rfc3339_ms("2026-06-01T00:00:00.123456789Z"),
        Ok(MONDAY + 123)
    );
    assert_eq!(
        parse_rfc3339_ms("2026-06-01T05:30:00+05:30"),
        Ok(MONDAY),
        "offsets are subtracted"
    );
    assert_eq!(parse_rfc3339_ms("2026-05-31T20:00:00-04:00"), Ok(MONDAY));
    assert_eq!(
        parse_rfc3339_ms("2024-02-29T00:00:00Z"),
        Ok(1_709_164_800_000)
    );
    assert_eq!(
        parse_rfc3339_ms("2000-02-29T12:00:00Z"),
        Ok(951_825_600_000)
    );
    for bad in [
        "2026-06-01",
        "2026-06-01T00:00:00",
        "2026-06-01 00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2026-06-31T00:00:00Z",
        "2026-06-01T24:00:00Z",
        "2026-06-01T00:00:60Z",
        "2026-06-01T00:00:00.Z",
        "2026-06-01T00:00:00+0100",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",
        "２026-06-01T00:00:00Z",
    ] {
        assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------
// approval

#[test]
fn approval_by_risk_and_by_name() {
    let policy = Policy::default();
    assert_eq!(
        policy.needs_approval("drain", Risk::High).as_deref(),
        Some("drain is high risk, at or above approval.min_risk (high)")
    );
    assert_eq!(policy.needs_approval("set_limit", Risk::Medium), None);
    assert_eq!(policy.needs_approval("set_shadow_mode", Risk::Low), None);

    let policy = parse(
        "p.yaml",
        "approval: {min_risk: medium, actions: [set_shadow_mode]}\n",
    );
    assert_eq!(
        policy.needs_approval("set_limit", Risk::Medium).as_deref(),
        Some("set_limit is medium risk, at or above approval.min_risk (medium)")
    );
    assert!(policy.needs_approval("drain", Risk::High).is_some());
    assert_eq!(
        policy
            .needs_approval("set_shadow_mode", Risk::Low)
            .as_deref(),
        Some("approval.actions names set_shadow_mode")
    );
    assert_eq!(policy.needs_approval("evict_keys", Risk::Low), None);

    let low = parse("p.yaml", "approval: {min_risk: low}\n");
    assert!(low.needs_approval("set_shadow_mode", Risk::Low).is_some());

    let never = parse(
        "p.yaml",
        "approval: {min_risk: never, actions: [set_failure_policy]}\n",
    );
    assert_eq!(never.needs_approval("drain", Risk::High), None);
    assert!(never
        .needs_approval("set_failure_policy", Risk::High)
        .is_some());
}

// ---------------------------------------------------------------------------
// freeze windows

fn freeze(policy: &Policy, now: u64) -> Option<(String, u64)> {
    policy
        .active_freeze(now)
        .map(|ActiveFreeze { name, ends_ms }| (name, ends_ms))
}

#[test]
fn weekly_windows_start_inclusive_end_exclusive_on_their_days() {
    let policy = parse(
        "p.yaml",
        "freeze_windows:\n  - name: peak\n    days: [mon, tue, wed, thu, fri]\n    start: \"17:00\"\n    end: \"21:00\"\n",
    );
    let monday_end = at(0, 21, 0);
    assert_eq!(freeze(&policy, at(0, 16, 59)), None);
    assert_eq!(freeze(&policy, at(0, 17, 0) - 1), None);
    assert_eq!(
        freeze(&policy, at(0, 17, 0)),
        Some(("peak".into(), monday_end))
    );
    assert_eq!(
        freeze(&policy, monday_end - 1),
        Some(("peak".into(), monday_end))
    );
    assert_eq!(freeze(&policy, monday_end), None);
    // Friday yes, Saturday and Sunday no.
    assert_eq!(
        freeze(&policy, at(4, 18, 0)),
        Some(("peak".into(), at(4, 21, 0)))
    );
    assert_eq!(freeze(&policy, at(5, 18, 0)), None);
    assert_eq!(freeze(&policy, at(6, 18, 0)), None);
    // Days are UTC days, counted from the epoch (a Thursday).
    assert_eq!(Weekday::of_epoch_day(0), Weekday::Thu);
    assert_eq!(Weekday::of_epoch_day(MONDAY / DAY_MS), Weekday::Mon);
}

#[test]
fn windows_wrap_past_midnight() {
    let policy = parse(
        "p.yaml",
        "freeze_windows:\n  - name: overnight\n    days: [fri]\n    start: \"22:00\"\n    end: \"02:00\"\n",
    );
    let saturday_end = at(5, 2, 0);
    assert_eq!(freeze(&policy, at(4, 21, 59)), None);
    assert_eq!(
        freeze(&policy, at(4, 22, 0)),
        Some(("overnight".into(), saturday_end))
    );
    // Saturday 01:00 is covered by Friday's window although Saturday is
    // not listed.
    assert_eq!(
        freeze(&policy, at(5, 1, 0)),
        Some(("overnight".into(), saturday_end))
    );
    assert_eq!(freeze(&policy, saturday_end), None);
    // Thursday night is not Friday night; Friday 01:00 belongs to Thursday.
    assert_eq!(freeze(&policy, at(3, 23, 0)), None);
    assert_eq!(freeze(&policy, at(4, 1, 0)), None);
    // start == end lasts 24 hours.
    let all_day = parse(
        "p.yaml",
        "freeze_windows:\n  - name: sunday\n    days: [sun]\n    start: \"06:00\"\n    end: \"06:00\"\n",
    );
    assert_eq!(freeze(&all_day, at(6, 5, 59)), None);
    assert_eq!(
        freeze(&all_day, at(6, 6, 0)),
        Some(("sunday".into(), at(7, 6, 0)))
    );
    assert_eq!(
        freeze(&all_day, at(7, 5, 59)),
        Some(("sunday".into(), at(7, 6, 0)))
    );
    assert_eq!(freeze(&all_day, at(7, 6, 0)), None);
}

#[test]
fn one_off_windows() {
    let policy = parse(
        "p.yaml",
        "freeze_windows:\n  - name: launch\n    from: 2026-06-03T09:00:00+02:00\n    until: 2026-06-03T12:00:00Z\n",
    );
    let (from, until) = (at(2, 7, 0), at(2, 12, 0));
    assert_eq!(freeze(&policy, from - 1), None);
    assert_eq!(freeze(&policy, from), Some(("launch".into(), until)));
    assert_eq!(freeze(&policy, until - 1), Some(("launch".into(), until)));
    assert_eq!(freeze(&policy, until), None);
    // The same hours a week later: one-off, so not frozen.
    assert_eq!(freeze(&policy, from + 7 * DAY_MS), None);
}

#[test]
fn overlapping_and_adjacent_windows_chain_to_the_latest_end() {
    let policy = parse(
        "p.yaml",
        "freeze_windows:
  - name: evening
    days: [mon]
    start: \"17:00\"
    end: \"21:00\"
  - name: late
    days: [mon]
    start: \"20:00\"
    end: \"22:00\"
  - name: night
    days: [mon]
    start: \"22:00\"
    end: \"01:00\"
  - name: maintenance
    from: 2026-06-02T00:30:00Z
    until: 2026-06-02T03:00:00Z
  - name: unrelated
    days: [tue]
    start: \"03:01\"
    end: \"04:00\"
",
    );
    // evening 17–21 overlaps late 20–22, which touches night 22–01, which
    // overlaps maintenance until 03:00; 03:01 is a gap.
    let chain_end = at(1, 3, 0);
    assert_eq!(
        freeze(&policy, at(0, 17, 0)),
        Some(("evening".into(), chain_end))
    );
    assert_eq!(
        freeze(&policy, at(0, 20, 30)),
        Some(("evening".into(), chain_end))
    );
    assert_eq!(
        freeze(&policy, at(0, 21, 0)),
        Some(("late".into(), chain_end))
    );
    assert_eq!(
        freeze(&policy, at(0, 23, 0)),
        Some(("night".into(), chain_end))
    );
    assert_eq!(
        freeze(&policy, at(1, 2, 0)),
        Some(("maintenance".into(), chain_end))
    );
    assert_eq!(freeze(&policy, chain_end), None);
    assert_eq!(
        freeze(&policy, at(1, 3, 1)),
        Some(("unrelated".into(), at(1, 4, 0)))
    );
}

#[test]
fn a_freeze_around_the_clock_reports_an_end_within_the_lookahead() {
    let policy = parse(
        "p.yaml",
        "freeze_windows:\n  - name: always\n    start: \"00:00\"\n    end: \"00:00\"\n",
    );
    let now = at(2, 13, 17);
    let Some(ActiveFreeze { name, ends_ms }) = policy.active_freeze(now) else {
        panic!("not frozen");
    };
    assert_eq!(name, "always");
    assert!(ends_ms >= now + FREEZE_LOOKAHEAD_MS, "{ends_ms}");
    assert!(ends_ms <= now + FREEZE_LOOKAHEAD_MS + DAY_MS, "{ends_ms}");
    assert_eq!(ends_ms % DAY_MS, 0, "ends at a midnight");
    // The end of time: no overflow.
    assert!(policy.active_freeze(u64::MAX - 1).is_some());
    assert!(policy.active_freeze(u64::MAX).is_none());
}

// ---------------------------------------------------------------------------
// budgets

#[test]
fn budgets_allow_up_to_their_limits() {
    let policy = Policy::default();
    let within = BudgetUsage {
        proposals: 3,
        actions: 10,
        elapsed_ms: 2 * HOUR_MS,
    };
    assert_eq!(policy.check_budget(within), Ok(()));
    assert_eq!(policy.check_budget(BudgetUsage::default()), Ok(()));
    let exceeded = policy.check_budget(BudgetUsage {
        proposals: 4,
        ..within
    });
    assert_eq!(
        exceeded,
        Err(BudgetExceeded {
            which: BudgetKind::Proposals,
            limit: 3,
            used: 4
        })
    );
    assert_eq!(
        exceeded.err().map(|error| error.to_string()).as_deref(),
        Some("budgets.proposals_per_ticket exceeded: 4 used, the limit is 3")
    );
    let actions = policy
        .check_budget(BudgetUsage {
            actions: 11,
            ..within
        })
        .err()
        .map(|error| error.to_string());
    assert_eq!(
        actions.as_deref(),
        Some("budgets.actions_per_ticket exceeded: 11 used, the limit is 10")
    );
    let time = policy
        .check_budget(BudgetUsage {
            elapsed_ms: 2 * HOUR_MS + 1_000,
            ..within
        })
        .err();
    assert_eq!(time.map(|error| error.which), Some(BudgetKind::Time));
    assert_eq!(
        time.map(|error| error.to_string()).as_deref(),
        Some("budgets.time_per_ticket exceeded: 2h1s used, the limit is 2h")
    );
    // Proposals are checked first.
    let all = policy.check_budget(BudgetUsage {
        proposals: 9,
        actions: 99,
        elapsed_ms: 9 * HOUR_MS,
    });
    assert_eq!(
        all.err().map(|error| error.which),
        Some(BudgetKind::Proposals)
    );
    // The file's limits apply.
    let tight = parse("p.yaml", "budgets: {proposals_per_ticket: 1}\n");
    assert!(tight
        .check_budget(BudgetUsage {
            proposals: 2,
            ..BudgetUsage::default()
        })
        .is_err());
}

#[test]
fn the_policy_serializes() {
    let policy = parse("full.yaml", &read(&fixture_dir().join("full.yaml")));
    let json = serde_json::to_value(&policy).unwrap_or_default();
    assert_eq!(json["approval"]["min_risk"], "medium");
    assert_eq!(
        json["freeze_windows"][0]["schedule"]["weekly"]["days"][0],
        "fri"
    );
    assert_eq!(json["canary"]["metrics"][1]["direction"], "decrease");
}

// ---------------------------------------------------------------------------
// never a panic

const FRAGMENTS: &[&str] = &[
    "approval:\n",
    "  min_risk: high\n",
    "  actions: [drain]\n",
    "  timeout: 30m\n",
    "freeze_windows:\n",
    "  - name: a\n",
    "    days: [mon]\n",
    "    start: \"17:00\"\n",
    "    end: 02:00\n",
    "    from: 2026-12-01T00:00:00Z\n",
    "    until: 2026-12-01T00:00:00.5+01:00\n",
    "budgets:\n",
    "  proposals_per_ticket: 3\n",
    "canary:\n",
    "  thresholds: {pass: 95, marginal: 75}\n",
    "  metrics:\n",
    "    - name: m\n",
    "      direction: either\n",
    "      effect_size: {max_relative_change: 0.1}\n",
    "      mann_whitney: {alpha: 0.05}\n",
    "verify:\n",
    "  max_duration: 2h\n",
    "  criteria_window: 10s\n",
    "- ",
    ": ",
    "[",
    "{",
    "&a ",
    "*a",
    "\t",
    "\n",
    "~",
];

proptest::proptest! {
    #[test]
    fn arbitrary_text_is_an_error_or_a_policy(text in ".{0,200}") {
        if let Err(error) = Policy::parse("fuzz.yaml", &text) {
            proptest::prop_assert!(error.to_string().starts_with("fuzz.yaml"));
        }
        let _ = parse_rfc3339_ms(&text);
        let _ = parse_time_of_day(&text);
    }

    #[test]
    fn shuffled_fragments_are_an_error_or_a_policy(
        picks in proptest::collection::vec(0..FRAGMENTS.len(), 0..30),
        now in 0u64..4_000_000_000_000,
    ) {
        let text: String = picks.iter().map(|&index| FRAGMENTS[index]).collect();
        match Policy::parse("fuzz.yaml", &text) {
            Ok(policy) => {
                // Whatever parsed can be asked anything.
                if let Some(freeze) = policy.active_freeze(now) {
                    proptest::prop_assert!(freeze.ends_ms > now);
                }
                let _ = policy.check_budget(BudgetUsage { proposals: 1, actions: 1, elapsed_ms: now });
                let _ = policy.needs_approval("drain", Risk::High);
            }
            Err(error) => proptest::prop_assert!(!error.message.is_empty()),
        }
    }
}
