//! Reflection: synthetic histories for each pattern are caught, a healthy
//! history of the same length raises nothing, flapping has hysteresis,
//! thresholds files are parsed with exact errors, and `reflect` never
//! panics and is deterministic on arbitrary histories.

use floodgate_harness::learn::reflection::{
    help_ticket, percent_state_change, reflect, CollisionRecord, Finding, FindingKind, FixRecord,
    History, Outcome, ReflectionState, Thresholds, TicketRecord,
};
use floodgate_harness::tickets::criteria::MetricRegistry;
use floodgate_harness::tickets::{NewTicket, Objective, Priority, Source, TicketState, TicketType};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::json;

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;
/// 2026-01-01T00:00:00Z: histories start here.
const T0: u64 = 1_767_225_600_000;

#[allow(clippy::too_many_arguments)]
fn fix(
    time_ms: u64,
    ticket: u32,
    proposal: u32,
    fingerprint: &str,
    target: &str,
    action: &str,
    params: serde_json::Value,
    outcome: Outcome,
) -> FixRecord {
    FixRecord {
        time_ms,
        ticket_id: format!("INF-{ticket:04}"),
        proposal_id: format!("P-{proposal:04}"),
        fingerprint: fingerprint.to_owned(),
        problem_type: fingerprint.to_owned(),
        target: target.to_owned(),
        action: action.to_owned(),
        params,
        outcome,
        agent: "runbook-agent".to_owned(),
    }
}

fn set_limit(rpu: u64) -> serde_json::Value {
    json!({"domain": "api", "limit": "tenant_per_day", "requests_per_unit": rpu})
}

fn ticket(id: u32, fingerprint: &str, created_ms: u64, state: TicketState) -> TicketRecord {
    let closed = matches!(
        state,
        TicketState::Resolved | TicketState::Failed | TicketState::Cancelled
    );
    TicketRecord {
        id: format!("INF-{id:04}"),
        fingerprint: fingerprint.to_owned(),
        problem_type: fingerprint.to_owned(),
        created_ms,
        closed_ms: closed.then_some(created_ms + HOUR),
        final_state: state,
        attempts: 1,
        escalated: state == TicketState::Escalated,
        criteria_met_ever: state == TicketState::Resolved,
    }
}

fn run(history: &History, now_ms: u64) -> Vec<Finding> {
    let (findings, _) = reflect(
        history,
        &Thresholds::default(),
        &ReflectionState::default(),
        now_ms,
    );
    findings
}

fn kinds(findings: &[Finding]) -> Vec<(FindingKind, String)> {
    findings
        .iter()
        .map(|finding| (finding.kind, finding.key.clone()))
        .collect()
}

// ---------------------------------------------------------------------------
// the patterns

/// The known failure: a limit raised 64 → 128 → 256 → 512 and the problem
/// came back each time.
fn escalating_history() -> History {
    let fp = "slo:limiting_correctness";
    let fixes = [64, 128, 256, 512]
        .iter()
        .enumerate()
        .map(|(index, rpu)| {
            let n = index as u32;
            fix(
                T0 + n as u64 * 6 * HOUR,
                3 + 4 * n,
                1 + n,
                fp,
                "api/tenant_per_day",
                "set_limit",
                set_limit(*rpu),
                Outcome::Succeeded,
            )
        })
        .collect();
    let tickets = (0..4)
        .map(|n| {
            ticket(
                3 + 4 * n,
                fp,
                T0 + n as u64 * 6 * HOUR - HOUR,
                TicketState::Resolved,
            )
        })
        .collect();
    History {
        fixes,
        tickets,
        ..Default::default()
    }
}

#[test]
fn a_limit_raised_64_128_256_512_is_caught() {
    let history = escalating_history();
    let findings = run(&history, T0 + 19 * HOUR);
    assert_eq!(
        kinds(&findings),
        vec![
            (
                FindingKind::Hysteresis,
                "hysteresis:slo:limiting_correctness".to_owned()
            ),
            (
                FindingKind::EscalatingFix,
                "escalating_fix:api/tenant_per_day#requests_per_unit".to_owned()
            ),
        ]
    );
    let hysteresis = &findings[0];
    assert_eq!(
        hysteresis.message,
        "I have fixed slo:limiting_correctness 4 times in 24h (INF-0003, INF-0007, INF-0011, \
         INF-0015) and it keeps coming back: I raised api/tenant_per_day requests_per_unit \
         64 → 128 → 256 → 512. The fix does not hold, so I am stopping automatic work on \
         slo:limiting_correctness until a human answers."
    );
    assert!(hysteresis.suspend);
    assert_eq!(hysteresis.fingerprints, vec!["slo:limiting_correctness"]);
    assert_eq!(
        hysteresis.evidence.proposals,
        vec!["P-0001", "P-0002", "P-0003", "P-0004"]
    );
    assert_eq!(hysteresis.evidence.timeline.len(), 4);
    assert_eq!(
        hysteresis.evidence.timeline[3].what,
        "INF-0015 P-0004 by runbook-agent: set_limit on api/tenant_per_day \
         requests_per_unit=512 (succeeded)"
    );
    let escalating = &findings[1];
    assert!(escalating.suspend);
    assert!(
        escalating.message.starts_with(
            "I raised api/tenant_per_day requests_per_unit 64 → 128 → 256 → 512 in 4 fixes"
        ),
        "{}",
        escalating.message
    );
    assert_eq!(escalating.evidence.newest_ms, T0 + 18 * HOUR);
}

#[test]
fn a_slow_escalation_across_fingerprints_is_caught_without_hysteresis() {
    // One raise a week, each for a different ticket and fingerprint, and a
    // rolled-back attempt in the middle: no hysteresis (never 3 in 24h),
    // but the fix keeps growing.
    let fixes = vec![
        fix(
            T0,
            1,
            1,
            "slo:a",
            "store",
            "set_store_capacity",
            json!({"max_keys": 10_000}),
            Outcome::Succeeded,
        ),
        fix(
            T0 + 7 * DAY,
            2,
            2,
            "slo:b",
            "store",
            "set_store_capacity",
            json!({"max_keys": 20_000}),
            Outcome::RolledBack,
        ),
        fix(
            T0 + 14 * DAY,
            3,
            3,
            "anomaly:c",
            "store",
            "set_store_capacity",
            json!({"max_keys": 40_000}),
            Outcome::Succeeded,
        ),
    ];
    let findings = run(
        &History {
            fixes,
            tickets: vec![],
            ..Default::default()
        },
        T0 + 15 * DAY,
    );
    assert_eq!(
        kinds(&findings),
        vec![(
            FindingKind::EscalatingFix,
            "escalating_fix:store#max_keys".to_owned()
        )]
    );
    assert_eq!(
        findings[0].fingerprints,
        vec!["anomaly:c", "slo:a", "slo:b"]
    );
    // Two values are not yet a pattern, nor is a failed (never applied) one.
    let fixes = vec![
        fix(
            T0,
            1,
            1,
            "slo:a",
            "store",
            "set_store_capacity",
            json!({"max_keys": 10_000}),
            Outcome::Succeeded,
        ),
        fix(
            T0 + DAY,
            2,
            2,
            "slo:b",
            "store",
            "set_store_capacity",
            json!({"max_keys": 20_000}),
            Outcome::Failed,
        ),
        fix(
            T0 + 2 * DAY,
            3,
            3,
            "slo:c",
            "store",
            "set_store_capacity",
            json!({"max_keys": 40_000}),
            Outcome::Succeeded,
        ),
    ];
    assert_eq!(
        run(
            &History {
                fixes,
                tickets: vec![],
                ..Default::default()
            },
            T0 + 3 * DAY
        ),
        vec![]
    );
    // Lowering each time by 1.5× or more escalates too.
    let fixes = [900u64, 600, 300]
        .iter()
        .enumerate()
        .map(|(n, rpu)| {
            let n = n as u32;
            fix(
                T0 + n as u64 * DAY,
                n,
                n,
                "slo:x",
                "api/per_ip",
                "set_limit",
                json!({"requests_per_unit": rpu}),
                Outcome::Succeeded,
            )
        })
        .collect();
    let findings = run(
        &History {
            fixes,
            tickets: vec![],
            ..Default::default()
        },
        T0 + 3 * DAY,
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(findings[0]
        .message
        .starts_with("I lowered api/per_ip requests_per_unit 900 → 600 → 300"));
}

#[test]
fn the_same_rollback_three_times_in_a_day_is_hysteresis_whichever_ticket_asked() {
    // A deploy job re-pushes a bad config: each push files a report and
    // burns an SLO, and the rollback lands on either ticket.
    let rollback = |hour: u64, ticket: u32, fingerprint: &str| {
        fix(
            T0 + hour * HOUR,
            ticket,
            100 + hour as u32,
            fingerprint,
            "config",
            "rollback_config",
            json!({"to_version": ticket}),
            Outcome::Succeeded,
        )
    };
    let history = History {
        fixes: vec![
            rollback(0, 1, "config:bad-push"),
            rollback(2, 3, "slo:limiting_correctness"),
            rollback(3, 3, "slo:limiting_correctness"),
        ],
        ..Default::default()
    };
    let findings = run(&history, T0 + 4 * HOUR);
    assert_eq!(kinds(&findings).len(), 1, "{findings:#?}");
    assert_eq!(findings[0].kind, FindingKind::Hysteresis);
    assert_eq!(
        findings[0].fingerprints,
        vec!["config:bad-push", "slo:limiting_correctness"]
    );
    assert!(
        findings[0].message.starts_with(
            "I have fixed config:bad-push, slo:limiting_correctness 3 times in 24h (INF-0001, INF-0003)"
        ),
        "{}",
        findings[0].message
    );
    // One fingerprint rolled back three times is its own finding: the
    // rollbacks of the others do not make a second help ticket.
    let mut four = history.fixes.clone();
    four.push(rollback(4, 3, "slo:limiting_correctness"));
    let findings = run(
        &History {
            fixes: four,
            ..Default::default()
        },
        T0 + 5 * HOUR,
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].fingerprints, vec!["slo:limiting_correctness"]);
    // Two rollbacks are not three; and three changes of other kinds on
    // three fingerprints are three problems, not one fix that does not hold.
    let two = History {
        fixes: history.fixes[..2].to_vec(),
        ..Default::default()
    };
    assert!(run(&two, T0 + 4 * HOUR).is_empty());
    let raises = History {
        fixes: (0..3)
            .map(|n| {
                fix(
                    T0 + n * HOUR,
                    n as u32 + 1,
                    n as u32 + 10,
                    &format!("slo:tenant-{n}"),
                    "api/tenant_per_day",
                    "set_limit",
                    set_limit(100 + n),
                    Outcome::Succeeded,
                )
            })
            .collect(),
        ..Default::default()
    };
    assert!(run(&raises, T0 + 4 * HOUR).is_empty());
}

#[test]
fn the_same_fingerprint_fixed_three_times_in_a_day_is_hysteresis() {
    let fp = "invariant:store_not_full";
    let evict = json!({"key_prefix": "api|tenant=a"});
    let burst = |hours: [u64; 3]| History {
        fixes: hours
            .iter()
            .enumerate()
            .map(|(n, hour)| {
                let n = n as u32;
                fix(
                    T0 + hour * HOUR,
                    3 + 4 * n,
                    10 + n,
                    fp,
                    "store",
                    "evict_keys",
                    evict.clone(),
                    Outcome::Succeeded,
                )
            })
            .collect(),
        tickets: vec![],
        ..Default::default()
    };
    let findings = run(&burst([0, 8, 20]), T0 + 21 * HOUR);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(
        findings[0].message,
        "I have fixed invariant:store_not_full 3 times in 24h (INF-0003, INF-0007, INF-0011) \
         and it keeps coming back: each time I applied evict_keys on store \
         key_prefix=api|tenant=a. The fix does not hold, so I am stopping automatic work on \
         invariant:store_not_full until a human answers."
    );
    assert_eq!(
        findings[0].evidence.tried,
        vec!["evict_keys on store key_prefix=api|tenant=a"]
    );
    // The window ends now: once the first fix is older than 24h, it no
    // longer counts.
    assert_eq!(run(&burst([0, 8, 20]), T0 + 24 * HOUR), vec![]);
    // Spread over three days: no finding.
    assert_eq!(run(&burst([0, 30, 60]), T0 + 61 * HOUR), vec![]);
    // Failed fixes are not fixes.
    let mut failed = burst([0, 8, 20]);
    failed.fixes[1].outcome = Outcome::RolledBack;
    assert_eq!(run(&failed, T0 + 21 * HOUR), vec![]);
}

#[test]
fn a_human_answer_stops_a_finding_until_the_pattern_forms_again() {
    let history = escalating_history();
    let now = T0 + 19 * HOUR;
    let (findings, mut state) = reflect(
        &history,
        &Thresholds::default(),
        &ReflectionState::default(),
        now,
    );
    assert_eq!(findings.len(), 2);
    for finding in &findings {
        state.answer(&finding.key, now);
    }
    let (findings, state) = reflect(&history, &Thresholds::default(), &state, now + HOUR);
    assert_eq!(findings, vec![], "answered: nothing new");
    // It comes back: three more fixes after the answer.
    let mut more = history.clone();
    for n in 0..3u32 {
        more.fixes.push(fix(
            now + (n as u64 + 2) * HOUR,
            40 + n,
            40 + n,
            "slo:limiting_correctness",
            "api/tenant_per_day",
            "set_limit",
            set_limit(1024 << n),
            Outcome::Succeeded,
        ));
    }
    let (findings, _) = reflect(&more, &Thresholds::default(), &state, now + 6 * HOUR);
    assert_eq!(
        kinds(&findings),
        vec![
            (
                FindingKind::Hysteresis,
                "hysteresis:slo:limiting_correctness".to_owned()
            ),
            (
                FindingKind::EscalatingFix,
                "escalating_fix:api/tenant_per_day#requests_per_unit".to_owned()
            ),
        ],
        "the same keys: one help ticket per pattern"
    );
    assert_eq!(
        findings[0].evidence.proposals,
        vec!["P-0040", "P-0041", "P-0042"]
    );
    assert!(
        findings[1].message.contains("1024 → 2048 → 4096"),
        "{}",
        findings[1].message
    );
}

/// `values[i]` applied to `target` on day `i`, each by its own ticket and
/// fingerprint: slow, and no hysteresis.
fn slow_series(target: &str, action: &str, params: &[serde_json::Value]) -> History {
    History {
        fixes: params
            .iter()
            .enumerate()
            .map(|(n, params)| {
                let n = n as u32;
                fix(
                    T0 + n as u64 * 2 * DAY,
                    100 + n,
                    100 + n,
                    &format!("slo:fp{n}"),
                    target,
                    action,
                    params.clone(),
                    Outcome::Succeeded,
                )
            })
            .collect(),
        tickets: vec![],
        ..Default::default()
    }
}

#[test]
fn a_slow_oscillation_over_days_is_caught() {
    // set_limit up, down, up, down, one move every two days.
    let values = [100, 200, 100, 200, 100];
    let params: Vec<_> = values.iter().map(|v| set_limit(*v)).collect();
    let history = slow_series("api/tenant_per_day", "set_limit", &params);
    let findings = run(&history, T0 + 9 * DAY);
    assert_eq!(
        kinds(&findings),
        vec![(
            FindingKind::Oscillation,
            "oscillation:api/tenant_per_day#requests_per_unit".to_owned()
        )]
    );
    let finding = &findings[0];
    assert!(finding.suspend);
    assert_eq!(
        finding.fingerprints,
        vec!["slo:fp1", "slo:fp2", "slo:fp3", "slo:fp4"]
    );
    assert_eq!(finding.evidence.score, Some(100.0));
    assert_eq!(
        finding.message,
        "I have moved api/tenant_per_day requests_per_unit back and forth: 100 → 200 → 100 → \
         200 → 100 (3 changes of direction in my last 4 changes, a weighted state change of \
         100%, above the 50% flapping threshold). I keep undoing my own fixes across tickets \
         (INF-0101, INF-0102, INF-0103, INF-0104); I am stopping automatic work on slo:fp1, \
         slo:fp2, slo:fp3, slo:fp4 until a human answers."
    );
}

#[test]
fn an_action_and_its_inverse_alternating_is_oscillation() {
    /// Name, target, the calls in order, the finding's key.
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, serde_json::Value)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "shadow mode true/false",
            "api/per_tenant",
            [true, false, true, false]
                .iter()
                .map(|s| {
                    (
                        "set_shadow_mode",
                        json!({"domain": "api", "limit": "per_tenant", "shadow": s}),
                    )
                })
                .collect(),
            "oscillation:api/per_tenant#shadow",
        ),
        (
            "failure policy A → B → A",
            "failure_policy",
            ["fail_open", "fail_closed", "fail_open"]
                .iter()
                .map(|p| ("set_failure_policy", json!({"policy": p})))
                .collect(),
            "oscillation:failure_policy#policy",
        ),
        (
            "add_limit / remove_limit",
            "api/burst_guard",
            vec![
                (
                    "add_limit",
                    json!({"domain": "api", "path": [], "rate_limit": {"name": "burst_guard", "unit": "second", "requests_per_unit": 50}}),
                ),
                (
                    "remove_limit",
                    json!({"domain": "api", "limit": "burst_guard"}),
                ),
                (
                    "add_limit",
                    json!({"domain": "api", "path": [], "rate_limit": {"name": "burst_guard", "unit": "second", "requests_per_unit": 50}}),
                ),
            ],
            "oscillation:api/burst_guard#add_limit|remove_limit",
        ),
        (
            "drain / undrain",
            "service",
            vec![
                ("drain", json!({})),
                ("undrain", json!({})),
                ("drain", json!({})),
                ("undrain", json!({})),
            ],
            "oscillation:service#drain|undrain",
        ),
    ];
    for (name, target, calls, key) in cases {
        let history = History {
            fixes: calls
                .iter()
                .enumerate()
                .map(|(n, (action, params))| {
                    let n = n as u32;
                    fix(
                        T0 + n as u64 * 3 * DAY,
                        n,
                        n,
                        &format!("fp{n}"),
                        target,
                        action,
                        params.clone(),
                        Outcome::Succeeded,
                    )
                })
                .collect(),
            tickets: vec![],
            ..Default::default()
        };
        let findings = run(&history, T0 + 30 * DAY);
        assert_eq!(
            kinds(&findings),
            vec![(FindingKind::Oscillation, key.to_owned())],
            "{name}: {findings:#?}"
        );
    }
    // A setting changed once, or moved the same way, is not flapping.
    let once = slow_series(
        "api/per_tenant",
        "set_shadow_mode",
        &[json!({"shadow": true}), json!({"shadow": false})],
    );
    assert_eq!(run(&once, T0 + 30 * DAY), vec![]);
}

#[test]
fn the_weighted_state_change_is_nagios_like() {
    assert_eq!(percent_state_change::<u8>(&[]), 0.0);
    assert_eq!(percent_state_change(&[1]), 0.0);
    assert_eq!(percent_state_change(&[1, 2]), 100.0);
    assert_eq!(percent_state_change(&[1, 1, 1]), 0.0);
    assert_eq!(percent_state_change(&[1, 2, 1, 2]), 100.0);
    // One change among 20 transitions: oldest weighs 0.8, newest 1.2.
    let mut oldest = vec![1; 21];
    oldest[0] = 2;
    let mut newest = vec![1; 21];
    newest[20] = 2;
    assert!((percent_state_change(&oldest) - 4.0).abs() < 1e-9);
    assert!((percent_state_change(&newest) - 6.0).abs() < 1e-9);
}

#[test]
fn flapping_starts_above_high_and_stops_only_below_low() {
    // Up, down, up, down, then a steady climb by 1 (never 1.5×, never a
    // reversal): the weighted change falls as steady moves fill the window.
    let mut values = vec![100u64, 200, 100, 200, 100];
    values.extend((1..=20).map(|step| 200 + step));
    let params: Vec<_> = values.iter().map(|v| set_limit(*v)).collect();
    let key = "oscillation:api/tenant_per_day#requests_per_unit";
    let thresholds = Thresholds::default();
    let mut state = ReflectionState::default();
    let mut seen_between = false;
    let mut stopped_at = None;
    let mut started_since = None;
    for count in 1..=values.len() {
        let history = slow_series("api/tenant_per_day", "set_limit", &params[..count]);
        let now = T0 + count as u64 * 2 * DAY;
        let (findings, next) = reflect(&history, &thresholds, &state, now);
        let flapping = findings.iter().any(|finding| finding.key == key);
        assert_eq!(flapping, next.flapping.contains_key(key));
        let fresh = reflect(&history, &thresholds, &ReflectionState::default(), now).0;
        let fresh_flapping = fresh.iter().any(|finding| finding.key == key);
        let score = findings
            .iter()
            .find(|finding| finding.key == key)
            .and_then(|finding| finding.evidence.score);
        match (state.flapping.get(key), flapping) {
            (None, true) => {
                // Starts: above the high threshold.
                assert!(score.is_some_and(|s| s > 50.0), "{count}: {score:?}");
                started_since = Some(next.flapping[key].since_ms);
                assert_eq!(started_since, Some(now));
            }
            (Some(_), true) => {
                let s = score.expect("a score");
                assert!(
                    s >= 25.0,
                    "{count}: stays flapping only at or above 25%: {s}"
                );
                // The start time is kept across evaluations.
                assert_eq!(Some(next.flapping[key].since_ms), started_since);
                if s <= 50.0 {
                    seen_between = true;
                    assert!(
                        !fresh_flapping,
                        "{count}: {s}% would not start flapping afresh"
                    );
                }
            }
            (Some(previous), false) => {
                assert!(previous.percent >= 25.0);
                assert!(stopped_at.is_none());
                stopped_at = Some(count);
            }
            (None, false) => {
                if started_since.is_some() {
                    assert!(!fresh_flapping, "{count}: no restart");
                }
            }
        }
        state = next;
    }
    assert!(started_since.is_some(), "it started flapping");
    assert!(seen_between, "it stayed flapping between the thresholds");
    assert!(
        stopped_at.is_some(),
        "it stopped once below the low threshold"
    );
}

#[test]
fn a_change_overridden_from_outside_is_contested_once_and_suspends_its_fingerprint() {
    let collision = |ticket: u32, proposal: u32, at: u64| CollisionRecord {
        time_ms: at,
        ticket_id: format!("INF-{ticket:04}"),
        proposal_id: format!("P-{proposal:04}"),
        fingerprint: "slo:limiting_correctness".into(),
        problem_type: "slo:limiting_correctness".into(),
        detail: "undoing rollback_config on svc-a with rollback_config failed: the config moved: \
                 expected version 3, it is at version 4 (made by controller:deploy)"
            .into(),
    };
    let history = History {
        collisions: vec![collision(2, 4, T0 + HOUR)],
        ..Default::default()
    };
    history.validate().expect("a well-formed history");
    let findings = run(&history, T0 + 2 * HOUR);
    assert_eq!(
        kinds(&findings),
        vec![(
            FindingKind::Contested,
            "contested:slo:limiting_correctness".to_owned()
        )]
    );
    let finding = &findings[0];
    assert!(
        finding.suspend,
        "the agents stop fighting until a human answers"
    );
    assert_eq!(finding.fingerprints, vec!["slo:limiting_correctness"]);
    assert_eq!(finding.evidence.tickets, vec!["INF-0002"]);
    assert_eq!(finding.evidence.proposals, vec!["P-0004"]);
    assert!(
        finding.message.contains("controller:deploy") && finding.message.contains("P-0004"),
        "{}",
        finding.message
    );
    let help = help_ticket(finding);
    help.validate(&MetricRegistry::builtin())
        .expect("a help ticket is valid");
    assert!(
        help.objective
            .description
            .contains("whose change should stand"),
        "{}",
        help.objective.description
    );

    // Not before it happened; and once a human answered, only a newer
    // collision counts.
    assert_eq!(run(&history, T0 + HOUR - 1), vec![]);
    let mut state = ReflectionState::default();
    state.answer(&finding.key, T0 + 2 * HOUR);
    let (after, _) = reflect(&history, &Thresholds::default(), &state, T0 + 3 * HOUR);
    assert_eq!(after, vec![]);
    let mut again = history.clone();
    again.collisions.push(collision(3, 6, T0 + 4 * HOUR));
    let (renewed, _) = reflect(&again, &Thresholds::default(), &state, T0 + 5 * HOUR);
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].evidence.tickets, vec!["INF-0003"]);
    assert!(
        renewed[0].message.contains("1 time(s) so far"),
        "{}",
        renewed[0].message
    );

    // A malformed record is named.
    let mut bad = history.clone();
    bad.collisions[0].fingerprint = " ".into();
    assert_eq!(
        bad.validate().unwrap_err().path,
        "collisions[0].fingerprint"
    );
}

#[test]
fn non_convergence_failed_attempts_and_criteria_never_met() {
    let failing = |n: u32, outcome| {
        fix(
            T0 + n as u64 * HOUR,
            1,
            n,
            "slo:a",
            "api/per_ip",
            "set_limit",
            json!({"requests_per_unit": 100 + n}),
            outcome,
        )
    };
    let mut open = ticket(1, "slo:a", T0, TicketState::InProgress);
    open.attempts = 3;
    let history = History {
        fixes: vec![
            failing(1, Outcome::RolledBack),
            failing(2, Outcome::Failed),
            failing(3, Outcome::RolledBack),
        ],
        tickets: vec![open.clone()],
        ..Default::default()
    };
    let findings = run(&history, T0 + 4 * HOUR);
    assert_eq!(
        kinds(&findings),
        vec![(
            FindingKind::NonConvergence,
            "non_convergence:INF-0001".to_owned()
        )]
    );
    assert!(!findings[0].suspend);
    assert!(
        findings[0].message.starts_with(
            "I have tried 3 fixes for INF-0001 (slo:a) and none worked: P-0001, P-0002, P-0003 \
             failed or were rolled back."
        ),
        "{}",
        findings[0].message
    );
    // Two failures, or a resolved ticket, or rejections: no finding.
    let mut two = history.clone();
    two.fixes[2].outcome = Outcome::Rejected;
    assert_eq!(run(&two, T0 + 4 * HOUR), vec![]);
    let mut resolved = history.clone();
    resolved.tickets[0] = ticket(1, "slo:a", T0, TicketState::Resolved);
    assert_eq!(run(&resolved, T0 + 4 * HOUR), vec![]);

    // Open 6h with criteria never met: a finding; 5h59m, or met once: none.
    let never = History {
        fixes: vec![],
        tickets: vec![open.clone()],
        ..Default::default()
    };
    assert_eq!(run(&never, T0 + 6 * HOUR - 60_000), vec![]);
    let findings = run(&never, T0 + 6 * HOUR);
    assert_eq!(findings.len(), 1);
    assert_eq!(
        findings[0].message,
        "INF-0001 (slo:a) has been open for 6h and its acceptance criteria have never been \
         met, after 3 proposals. I am not converging on a fix: I need a human."
    );
    let mut met = never.clone();
    met.tickets[0].criteria_met_ever = true;
    assert_eq!(run(&met, T0 + 7 * HOUR), vec![]);
}

#[test]
fn a_problem_type_that_mostly_ends_with_a_human_is_repeated_escalation() {
    let tickets = |escalated: &[bool]| History {
        fixes: vec![],
        tickets: escalated
            .iter()
            .enumerate()
            .map(|(n, escalated)| {
                let state = if *escalated {
                    TicketState::Escalated
                } else {
                    TicketState::Resolved
                };
                ticket(n as u32 + 1, "anomaly:latency", T0 + n as u64 * DAY, state)
            })
            .collect(),
        ..Default::default()
    };
    let findings = run(&tickets(&[true, false, true, false, true]), T0 + 10 * DAY);
    assert_eq!(
        kinds(&findings),
        vec![(
            FindingKind::RepeatedEscalation,
            "repeated_escalation:anomaly:latency".to_owned()
        )]
    );
    assert_eq!(findings[0].evidence.score, Some(60.0));
    assert_eq!(findings[0].fingerprints, vec!["anomaly:latency"]);
    assert!(findings[0].message.starts_with(
        "3 of the last 5 anomaly:latency tickets ended with a human (INF-0001, INF-0003, INF-0005)."
    ));
    assert_eq!(
        run(&tickets(&[true, false, false, false, true]), T0 + 10 * DAY),
        vec![]
    );
    assert_eq!(
        run(&tickets(&[true, true, true]), T0 + 10 * DAY),
        vec![],
        "fewer than 4"
    );
    // Only the last 10 count: old escalations age out.
    let mut long = vec![true; 6];
    long.extend([false; 10]);
    assert_eq!(run(&tickets(&long), T0 + 30 * DAY), vec![]);
}

// ---------------------------------------------------------------------------
// a healthy history raises nothing

/// Every pattern above, in one history.
fn pattern_history() -> History {
    let mut history = escalating_history();
    let values = [100, 200, 100, 200, 100];
    let params: Vec<_> = values.iter().map(|v| set_limit(*v)).collect();
    let slow = slow_series("api/other", "set_limit", &params);
    history.fixes.extend(slow.fixes);
    for n in 0..3u32 {
        history.fixes.push(fix(
            T0 + n as u64 * HOUR,
            60,
            60 + n,
            "slo:stuck",
            "api/per_ip",
            "set_limit",
            json!({"requests_per_unit": 10 + n}),
            Outcome::RolledBack,
        ));
    }
    history
        .tickets
        .push(ticket(60, "slo:stuck", T0, TicketState::InProgress));
    for n in 0..5u32 {
        let state = if n % 2 == 0 {
            TicketState::Escalated
        } else {
            TicketState::Resolved
        };
        history.tickets.push(ticket(
            70 + n,
            "anomaly:latency",
            T0 + n as u64 * HOUR,
            state,
        ));
    }
    history
}

/// The same number of fixes and tickets: varied fingerprints, fixes that
/// hold, limits tuned once each, an occasional single escalation.
fn healthy_history() -> History {
    let pattern = pattern_history();
    let problems = [
        "slo:availability",
        "slo:latency",
        "invariant:store_not_full",
        "anomaly:throughput",
    ];
    let fixes = (0..pattern.fixes.len() as u32)
        .map(|n| {
            let problem = problems[n as usize % problems.len()];
            // Limits tuned by a few percent, the same problem at most once
            // every 40 hours (one fix every 10 hours).
            let mut record = fix(
                T0 + n as u64 * 10 * HOUR,
                200 + n,
                200 + n,
                &format!("{problem}#{n}"),
                &format!("api/limit_{}", n % 6),
                "set_limit",
                json!({"domain": "api", "limit": format!("limit_{}", n % 6), "requests_per_unit": 100 + (n % 5) * 5}),
                Outcome::Succeeded,
            );
            record.problem_type = problem.to_owned();
            record
        })
        .collect();
    let tickets = (0..pattern.tickets.len() as u32)
        .map(|n| {
            let problem = problems[n as usize % problems.len()];
            // One ticket in seven needed a human.
            let state = if n % 7 == 3 {
                TicketState::Escalated
            } else {
                TicketState::Resolved
            };
            let mut record = ticket(
                200 + n,
                &format!("{problem}#{n}"),
                T0 + n as u64 * 10 * HOUR,
                state,
            );
            record.problem_type = problem.to_owned();
            record
        })
        .collect();
    History {
        fixes,
        tickets,
        ..Default::default()
    }
}

#[test]
fn a_healthy_history_of_the_same_length_raises_nothing() {
    let pattern = pattern_history();
    let healthy = healthy_history();
    assert_eq!(pattern.fixes.len(), healthy.fixes.len());
    assert_eq!(pattern.tickets.len(), healthy.tickets.len());
    let now = T0 + 30 * DAY;
    // Every kind is caught in the pattern history…
    let found: std::collections::BTreeSet<FindingKind> = run(&pattern, T0 + 19 * HOUR)
        .iter()
        .chain(run(&pattern, now).iter())
        .map(|finding| finding.kind)
        .collect();
    assert_eq!(found.len(), 5, "{found:?}");
    // …and nothing in the healthy one, at any point of it.
    for hours in (0..=30 * 24).step_by(5) {
        let findings = run(&healthy, T0 + hours * HOUR);
        assert_eq!(findings, vec![], "at +{hours}h");
    }
}

// ---------------------------------------------------------------------------
// help tickets

#[test]
fn a_finding_becomes_a_valid_help_ticket() {
    let findings = run(&escalating_history(), T0 + 19 * HOUR);
    let registry = MetricRegistry::builtin();
    for finding in &findings {
        let ticket = help_ticket(finding);
        ticket.validate(&registry).expect("a help ticket is valid");
        assert_eq!(ticket.kind, TicketType::Help);
        assert_eq!(ticket.source, Source::Reflection);
        assert_eq!(ticket.priority, Priority::High);
        assert_eq!(ticket.fingerprint, format!("reflection:{}", finding.key));
        assert!(ticket.acceptance_criteria.is_empty());
        assert!(ticket.objective.description.starts_with(&finding.message));
        assert!(ticket
            .objective
            .description
            .ends_with("Automatic work on slo:limiting_correctness is suspended until a human answers this ticket."));
        assert_eq!(ticket.context["reflection"]["key"], json!(finding.key));
        assert_eq!(
            ticket.context["reflection"]["evidence"]["proposals"],
            json!(finding.evidence.proposals)
        );
        let text = serde_json::to_value(&ticket).expect("serialises");
        assert_eq!(text["type"], "help");
        assert_eq!(text["source"], "reflection");
    }
    // The exception is for reflection's help tickets only: any other type
    // still needs a criterion…
    let task = NewTicket {
        kind: TicketType::Task,
        objective: Objective {
            description: "look".into(),
        },
        acceptance_criteria: vec![],
        constraints: vec![],
        context: json!({}),
        source: Source::Reflection,
        priority: Priority::High,
        fingerprint: "fp".into(),
    };
    assert_eq!(
        task.validate(&registry).map_err(|e| e.path),
        Err("acceptance_criteria".to_owned())
    );
    // …and so does a help ticket that reflection did not file.
    let human_help = NewTicket {
        kind: TicketType::Help,
        source: Source::Human,
        ..task
    };
    assert_eq!(
        human_help.validate(&registry).map_err(|e| e.path),
        Err("acceptance_criteria".to_owned())
    );
}

// ---------------------------------------------------------------------------
// thresholds

#[test]
fn thresholds_parse_with_defaults_and_exact_errors() {
    assert_eq!(Thresholds::parse("r.yaml", ""), Ok(Thresholds::default()));
    assert_eq!(
        Thresholds::parse("r.yaml", "# nothing\n"),
        Ok(Thresholds::default())
    );
    let full = "same_fix_count: 4\nsame_fix_window: 12h\nescalation_factor: 2x\n\
                escalation_min_values: 4\nflap_window: 15\nflap_min_states: 4\n\
                flap_high: 60%\nflap_low: 20%\nmax_failed_attempts: 2\nnever_met_after: 1h30m\n\
                escalation_min_tickets: 5\nescalation_lookback: 20\nescalation_ratio: 75%\n";
    let parsed = Thresholds::parse("r.yaml", full).expect("parses");
    assert_eq!(parsed.same_fix_count, 4);
    assert_eq!(parsed.same_fix_window.ms(), 12 * HOUR);
    assert_eq!(parsed.escalation_factor.0, 2.0);
    assert_eq!(parsed.flap_window, 15);
    assert!((parsed.flap_high.0 - 0.6).abs() < 1e-12);
    assert_eq!(parsed.never_met_after.ms(), 90 * 60_000);
    assert!((parsed.escalation_ratio.0 - 0.75).abs() < 1e-12);
    // Serialised, it reads back the same.
    let text = serde_norway::to_string(&parsed).expect("serialises");
    assert_eq!(Thresholds::parse("again.yaml", &text), Ok(parsed));

    let error = |text: &str| {
        Thresholds::parse("r.yaml", text)
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        error("same_fix_count: 3\nflap_high: 20%\n"),
        "r.yaml: flap_low: must be below flap_high (20%), got 25%"
    );
    assert_eq!(
        error("flap_low: 30%\nflap_high: 20%\n"),
        "r.yaml: line 1: flap_low: must be below flap_high (20%), got 30%"
    );
    assert_eq!(
        error("same_fix_count: 1\n"),
        "r.yaml: line 1: same_fix_count: must be at least 2 (one fix is not a pattern), got 1"
    );
    assert_eq!(
        error("escalation_factor: 1x\n"),
        "r.yaml: line 1: escalation_factor: must be above 1x, got 1x"
    );
    assert_eq!(
        error("flap_window: 21\nflap_min_states: 30\n"),
        "r.yaml: line 2: flap_min_states: must be 3 to flap_window (21), got 30"
    );
    assert_eq!(
        error("escalation_lookback: 3\n"),
        "r.yaml: escalation_min_tickets: must be 1 to escalation_lookback (3), got 4"
    );
    assert_eq!(
        error("same_fix_window: 24\n"),
        "r.yaml: line 1: same_fix_window: \"24\" is not a duration (expected e.g. 500ms, 30s, 5m, 1h, 30d)"
    );
    assert_eq!(
        error("flap_high: 0.5\n"),
        "r.yaml: line 1: flap_high: \"0.5\" is not a percentage (expected e.g. 99.9%)"
    );
    assert_eq!(
        error("max_failed_attempts: -1\n"),
        "r.yaml: line 1: max_failed_attempts: invalid type: integer -1, expected u32"
    );
    let unknown = error("same_fix_cnt: 3\n");
    assert!(
        unknown.starts_with("r.yaml: line 1: unknown field \"same_fix_cnt\" (expected one of same_fix_count, same_fix_window,"),
        "{unknown}"
    );
}

// ---------------------------------------------------------------------------
// arbitrary histories

fn arb_params() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (0u64..2000).prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|value| serde_json::Number::from_f64(value)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "[a-z_]{0,8}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("requests_per_unit".to_owned()),
                    Just("shadow".to_owned()),
                    "[a-z]{1,4}"
                ],
                inner,
                0..3
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    });
    prop_oneof![
        value.clone(),
        prop::collection::btree_map(
            prop_oneof![
                Just("requests_per_unit".to_owned()),
                Just("max_keys".to_owned()),
                Just("shadow".to_owned()),
                Just("policy".to_owned()),
                Just("domain".to_owned()),
                Just("to_version".to_owned()),
            ],
            value,
            0..4
        )
        .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
    ]
}

fn arb_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Succeeded),
        Just(Outcome::Failed),
        Just(Outcome::RolledBack),
        Just(Outcome::Rejected),
        Just(Outcome::Error),
    ]
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ab]".prop_map(String::from),
        Just(String::new()),
        ".{0,300}".prop_map(String::from),
    ]
}

fn arb_time() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..10 * DAY, Just(0), Just(u64::MAX), any::<u64>()]
}

fn arb_fix() -> impl Strategy<Value = FixRecord> {
    (
        arb_time(),
        "[12]",
        "[123]",
        arb_name(),
        arb_name(),
        prop_oneof![
            Just("set_limit".to_owned()),
            Just("add_limit".to_owned()),
            Just("remove_limit".to_owned()),
            Just("drain".to_owned()),
            Just("undrain".to_owned()),
            arb_name(),
        ],
        arb_params(),
        arb_outcome(),
    )
        .prop_map(
            |(time_ms, ticket, proposal, fingerprint, target, action, params, outcome)| FixRecord {
                time_ms,
                ticket_id: ticket,
                proposal_id: proposal,
                problem_type: fingerprint.clone(),
                fingerprint,
                target,
                action,
                params,
                outcome,
                agent: "agent".into(),
            },
        )
}

fn arb_state() -> impl Strategy<Value = TicketState> {
    prop::sample::select(TicketState::ALL.to_vec())
}

fn arb_ticket() -> impl Strategy<Value = TicketRecord> {
    (
        "[123]",
        arb_name(),
        arb_time(),
        prop::option::of(arb_time()),
        arb_state(),
        any::<u32>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                id,
                fingerprint,
                created_ms,
                closed_ms,
                final_state,
                attempts,
                escalated,
                criteria_met_ever,
            )| TicketRecord {
                id,
                problem_type: fingerprint.clone(),
                fingerprint,
                created_ms,
                closed_ms,
                final_state,
                attempts,
                escalated,
                criteria_met_ever,
            },
        )
}

fn arb_thresholds() -> impl Strategy<Value = Thresholds> {
    use floodgate_harness::quantity::{Factor, Percent, Span};
    prop_oneof![
        Just(Thresholds::default()),
        (
            (
                0u32..6,
                any::<u64>(),
                0.0f64..4.0,
                0u32..6,
                0u32..40,
                0u32..40
            ),
            (
                0.0f64..1.0,
                0.0f64..1.0,
                0u32..5,
                any::<u64>(),
                0u32..8,
                0u32..12,
                0.0f64..1.0
            ),
        )
            .prop_map(
                |(
                    (count, window, factor, min_values, flap_window, min_states),
                    (high, low, failed, never, min_tickets, lookback, ratio),
                )| Thresholds {
                    same_fix_count: count,
                    same_fix_window: Span(window),
                    escalation_factor: Factor(factor),
                    escalation_min_values: min_values,
                    flap_window,
                    flap_min_states: min_states,
                    flap_high: Percent(high),
                    flap_low: Percent(low),
                    max_failed_attempts: failed,
                    never_met_after: Span(never),
                    escalation_min_tickets: min_tickets,
                    escalation_lookback: lookback,
                    escalation_ratio: Percent(ratio),
                }
            ),
    ]
}

/// The seed: `FLOODGATE_PROPTEST_SEED` or a fixed default, printed on failure.
fn seed() -> u64 {
    std::env::var("FLOODGATE_PROPTEST_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0x5EED_0009)
}

#[test]
fn reflect_never_panics_and_is_deterministic_on_arbitrary_histories() {
    let seed = seed();
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 300,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    let strategy = (
        prop::collection::vec(arb_fix(), 0..40),
        prop::collection::vec(arb_ticket(), 0..12),
        arb_thresholds(),
        arb_time(),
        arb_time(),
    );
    let registry = MetricRegistry::builtin();
    let result = runner.run(&strategy, |(fixes, tickets, thresholds, now, later)| {
        let history = History {
            fixes,
            tickets,
            ..Default::default()
        };
        let first = reflect(&history, &thresholds, &ReflectionState::default(), now);
        let again = reflect(&history, &thresholds, &ReflectionState::default(), now);
        prop_assert_eq!(&first, &again, "same input, same output");
        // Carry the state forward, answer everything, and go on.
        let (findings, mut state) = first;
        for finding in &findings {
            prop_assert!(!finding.key.is_empty() && finding.key.len() <= 200);
            prop_assert_eq!(finding.suspend, finding.kind.suspends());
            let ticket = help_ticket(finding);
            prop_assert!(
                ticket.validate(&registry).is_ok(),
                "{:?}",
                ticket.validate(&registry)
            );
        }
        let second = reflect(&history, &thresholds, &state, later);
        prop_assert_eq!(&second, &reflect(&history, &thresholds, &state, later));
        if let Some(finding) = findings.first() {
            state.answer(&finding.key, now);
            let _ = reflect(&history, &thresholds, &state, later);
        }
        let _ = history.validate();
        Ok(())
    });
    if let Err(failure) = result {
        panic!("seed {seed} (rerun with FLOODGATE_PROPTEST_SEED={seed}): {failure}");
    }
}

#[test]
fn the_example_thresholds_file_is_the_defaults() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/reflection.yaml");
    let text = std::fs::read_to_string(&path).expect("examples/reflection.yaml");
    let parsed =
        floodgate_harness::learn::reflection::Thresholds::parse("examples/reflection.yaml", &text)
            .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        parsed,
        floodgate_harness::learn::reflection::Thresholds::default()
    );
}

/// A change the pipeline kept because it relieved the problem without
/// ending it (ADR 0025) is a fix that did not hold: three of them (or
/// kept and succeeded together) within the window are hysteresis; rolled
/// back ones are not fixes.
#[test]
fn kept_changes_count_as_fixes_that_did_not_hold() {
    let fp = "slo:limiting_correctness";
    let rollback = json!({"to_version": 1});
    let history = |outcomes: [Outcome; 3]| History {
        fixes: outcomes
            .iter()
            .enumerate()
            .map(|(n, outcome)| {
                let n = n as u32;
                fix(
                    T0 + u64::from(n) * HOUR,
                    1,
                    2 + 2 * n,
                    fp,
                    "config",
                    "rollback_config",
                    rollback.clone(),
                    *outcome,
                )
            })
            .collect(),
        tickets: vec![],
        ..Default::default()
    };
    let findings = run(
        &history([Outcome::Kept, Outcome::Kept, Outcome::Succeeded]),
        T0 + 3 * HOUR,
    );
    assert!(
        findings.iter().any(|f| f
            .message
            .starts_with("I have fixed slo:limiting_correctness 3 times")),
        "{findings:#?}"
    );
    let findings = run(
        &history([Outcome::RolledBack, Outcome::Kept, Outcome::Succeeded]),
        T0 + 3 * HOUR,
    );
    assert!(
        !findings
            .iter()
            .any(|f| f.message.starts_with("I have fixed")),
        "{findings:#?}"
    );
}
