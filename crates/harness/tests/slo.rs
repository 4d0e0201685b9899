//! Multi-window multi-burn-rate alerting under a simulated clock: the
//! harness ticks every 10 s over a synthetic service's `/metrics`.

mod common;

use common::{SyntheticService, T0_MS, TICK_MS};
use floodgate_harness::observe::objectives::{self, Severity};
use floodgate_harness::quantity::{DAY_MS, HOUR_MS, MINUTE_MS};
use floodgate_harness::tickets::{Priority, Source};
use floodgate_harness::{Harness, HarnessConfig, Observation, TickOutput};

const OBJECTIVES: &str = "
slos:
  - name: availability
    target: 99.9%
    window: 30d
    sli:
      ratio:
        good: floodgate_requests_total{code!=\"error\"}
        total: floodgate_requests_total
";

fn harness() -> Harness {
    let objectives =
        objectives::parse("slo.yaml", OBJECTIVES).unwrap_or_else(|error| panic!("{error}"));
    Harness::new(objectives, HarnessConfig::default()).unwrap_or_else(|error| panic!("{error}"))
}

/// Runs the harness for `duration_ms` of simulated time from `start_ms`,
/// one scrape every `tick_ms`, serving `traffic(elapsed)` = (requests,
/// errors) per tick; calls `check` with the elapsed time and each tick's
/// output.
fn run(
    harness: &mut Harness,
    service: &mut SyntheticService,
    start_ms: u64,
    duration_ms: u64,
    tick_ms: u64,
    traffic: impl Fn(u64) -> (u64, u64),
    mut check: impl FnMut(u64, &TickOutput),
) {
    let mut elapsed = 0;
    while elapsed <= duration_ms {
        let (requests, errors) = traffic(elapsed);
        service.serve(requests, errors, 0);
        let output = harness.tick(&Observation {
            time_ms: start_ms + elapsed,
            metrics_text: Some(service.render()),
            ..Observation::default()
        });
        assert!(output.errors.is_empty(), "{:?}", output.errors);
        check(elapsed, &output);
        elapsed += tick_ms;
    }
}

fn firing_rules(output: &TickOutput) -> Vec<String> {
    output.slos[0]
        .rules
        .iter()
        .filter(|rule| rule.firing)
        .map(|rule| rule.name.clone())
        .collect()
}

#[test]
fn a_constant_14_4x_burn_pages_after_the_short_window_and_not_before() {
    // 10,000 decisions per tick, 144 of them errors: 1.44% bad against a
    // 0.1% budget is exactly 14.4x, from the first scrape on.
    let mut harness = harness();
    let mut service = SyntheticService::new();
    let mut first_page = None;
    let mut violations = Vec::new();
    run(
        &mut harness,
        &mut service,
        T0_MS,
        25 * MINUTE_MS,
        TICK_MS,
        |_| (10_000, 144),
        |elapsed, output| {
            let firing = firing_rules(output);
            if elapsed < 5 * MINUTE_MS {
                assert!(
                    firing.is_empty(),
                    "fired at {elapsed} ms, before the 5m window was covered: {firing:?}"
                );
                let held = &output.slos[0].rules[0].held_back;
                if elapsed > 0 {
                    assert!(
                        held.as_deref().is_some_and(|why| why.contains("covered")),
                        "{held:?}"
                    );
                }
            } else {
                // From 5m on, only the fast page: the 6x rule needs 30m covered.
                assert_eq!(firing, ["page 14.4x 1h/5m"], "at {elapsed} ms");
                first_page.get_or_insert(elapsed);
            }
            violations.extend(
                output
                    .violations
                    .iter()
                    .map(|violation| (elapsed, violation.clone())),
            );
        },
    );
    assert_eq!(first_page, Some(5 * MINUTE_MS));
    assert_eq!(violations.len(), 1, "one ticket, not one per tick");
    let (at, violation) = &violations[0];
    assert_eq!(*at, 5 * MINUTE_MS);
    assert_eq!(violation.draft.source, Source::Slo);
    assert_eq!(violation.draft.priority, Priority::Critical);
    assert_eq!(violation.draft.fingerprint, "slo:availability");
    assert_eq!(
        violation.draft.acceptance_criteria[0].condition.to_string(),
        ">= 99.9%"
    );
    let report = &harness
        .tick(&Observation {
            time_ms: T0_MS + 26 * MINUTE_MS,
            ..Observation::default()
        })
        .slos[0];
    let burn_5m = report
        .burn_rates
        .iter()
        .find(|burn| burn.window == "5m")
        .and_then(|burn| burn.burn_rate);
    assert!(
        burn_5m.is_some_and(|burn| (burn - 14.4).abs() < 1e-6),
        "{burn_5m:?}"
    );
    // 1h at 14.4x spends 2% of a 30-day budget; the store covers 26 minutes
    // of it all burning, so the covered budget is overspent.
    assert!(report.error_budget_remaining.is_some_and(|left| left < 0.0));
    assert_eq!(report.time_to_exhaustion_ms, Some(0));
}

#[test]
fn after_a_clean_history_the_fast_page_waits_for_the_long_window() {
    // Two clean hours, then 14.4x: the 5m window burns at once, but the 1h
    // window reaches 14.4x only when the whole hour is burning.
    let mut harness = harness();
    let mut service = SyntheticService::new();
    let burn_from = 2 * HOUR_MS;
    let mut first = None;
    run(
        &mut harness,
        &mut service,
        T0_MS,
        burn_from + 70 * MINUTE_MS,
        TICK_MS,
        |elapsed| {
            if elapsed > burn_from {
                (10_000, 144)
            } else {
                (10_000, 0)
            }
        },
        |elapsed, output| {
            // (The slower rules fire earlier here: 31 minutes of 14.4x in a
            // store holding 2.5 hours is a 3x burn over the "1d" window.)
            if firing_rules(output)
                .iter()
                .any(|rule| rule == "page 14.4x 1h/5m")
                && first.is_none()
            {
                first = Some(elapsed);
            }
        },
    );
    assert_eq!(first, Some(burn_from + HOUR_MS));
}

#[test]
fn a_1x_burn_files_only_the_slow_ticket_alert() {
    // 0.1% bad: exactly the budget's pace. Over three days only the
    // "ticket 1x over 3d & 6h" rule may fire, once its 6h window is covered.
    // Three simulated days scrape once a minute (10 s would only be slower).
    let mut harness = harness();
    let mut service = SyntheticService::new();
    let mut violations = Vec::new();
    run(
        &mut harness,
        &mut service,
        T0_MS,
        3 * DAY_MS + HOUR_MS,
        MINUTE_MS,
        |_| (60_000, 60),
        |elapsed, output| {
            let firing = firing_rules(output);
            if elapsed < 6 * HOUR_MS {
                assert!(firing.is_empty(), "at {elapsed} ms: {firing:?}");
            } else {
                assert_eq!(firing, ["ticket 1x 3d/6h"], "at {elapsed} ms");
                assert_eq!(output.slos[0].firing, Some(Severity::Ticket));
            }
            for violation in &output.violations {
                violations.push((elapsed, violation.reminder, violation.draft.priority));
            }
        },
    );
    assert_eq!(
        violations.first(),
        Some(&(6 * HOUR_MS, false, Priority::Medium))
    );
    // Still firing: reminders (absorbed by the same ticket), never a page.
    assert!(violations[1..]
        .iter()
        .all(|(_, reminder, priority)| *reminder && *priority == Priority::Medium));
}

#[test]
fn low_traffic_alerts_nothing() {
    // One request every 5 minutes, every one failing (a 1000x burn): 72
    // events per 6 hours, under the 100-event guard of every short window.
    let mut harness = harness();
    let mut service = SyntheticService::new();
    let mut held_for_traffic = false;
    run(
        &mut harness,
        &mut service,
        T0_MS,
        3 * DAY_MS,
        MINUTE_MS,
        |elapsed| {
            if elapsed % (5 * MINUTE_MS) == 0 {
                (1, 1)
            } else {
                (0, 0)
            }
        },
        |elapsed, output| {
            assert!(firing_rules(output).is_empty(), "at {elapsed} ms");
            assert!(output.violations.is_empty(), "at {elapsed} ms");
            held_for_traffic |= output.slos[0].rules.iter().any(|rule| {
                rule.held_back
                    .as_deref()
                    .is_some_and(|why| why.starts_with("low traffic"))
            });
        },
    );
    assert!(
        held_for_traffic,
        "the guard, not a missing burn, kept it quiet"
    );
}

/// 30 minutes burning at 5% bad (50x), a deploy, then 10 minutes at
/// `errors_after_deploy` per 1,000: the harness, and each tick's time.
fn burn_then(errors_after_deploy: u64) -> (Harness, Vec<u64>) {
    let mut harness = harness();
    let mut service = SyntheticService::new();
    let mut ticks = Vec::new();
    run(
        &mut harness,
        &mut service,
        T0_MS,
        40 * MINUTE_MS,
        TICK_MS,
        |elapsed| {
            if elapsed <= 30 * MINUTE_MS {
                (1_000, 50)
            } else {
                (1_000, errors_after_deploy)
            }
        },
        |elapsed, _| ticks.push(T0_MS + elapsed),
    );
    (harness, ticks)
}

/// The pipeline's fail-fast rule for an SLO ticket's fix
/// (`slo::burn_not_falling`): judged over the fastest rule's short window
/// (5m for the default rules) lying wholly after the deploy.
#[test]
fn a_burn_that_goes_on_after_a_deploy_is_seen_once_the_short_window_lies_after_it() {
    let judge = |errors_after_deploy: u64| {
        let deployed = T0_MS + 30 * MINUTE_MS;
        let (harness, verdicts) = burn_then(errors_after_deploy);
        // Judged after the run at each tick's time (the store keeps the
        // whole run): the same answers the pipeline got tick by tick.
        let slo = harness.objectives().slos[0].clone();
        verdicts
            .iter()
            .map(|now| {
                (
                    *now,
                    floodgate_harness::observe::slo::burn_not_falling(
                        &slo,
                        harness.tsdb(),
                        deployed,
                        *now,
                    ),
                )
            })
            .collect::<Vec<_>>()
    };
    let deployed = T0_MS + 30 * MINUTE_MS;
    // The burn goes on (5% bad = 50x): nothing said while the window still
    // reaches before the deploy, then the fastest rule's name and the burn.
    let kept = judge(50);
    for (now, verdict) in &kept {
        if *now < deployed + 5 * MINUTE_MS {
            assert_eq!(*verdict, None, "at {}", now - T0_MS);
        }
    }
    let (_, last) = kept.last().expect("ticks");
    let (rule, burn) = last.clone().expect("the burn went on");
    assert_eq!(rule, "page 14.4x 1h/5m");
    assert!((burn - 50.0).abs() < 1.0, "{burn}");
    // The fix held: no error after the deploy, nothing to say.
    let held = judge(0);
    assert!(
        held.iter().all(|(_, verdict)| verdict.is_none()),
        "{held:?}"
    );
}

/// The pipeline's keep-or-roll-back rule for a fix that did not end an
/// SLO's burn (`slo::burn_relief`, ADR 0025): kept when the burn over the
/// fastest rule's short window after the deploy is at most half the burn
/// over the same window before it.
#[test]
fn a_fix_that_halved_the_burn_relieved_it_one_that_did_not_did_not() {
    let judge = |errors_after_deploy: u64| {
        let (harness, _) = burn_then(errors_after_deploy);
        let slo = harness.objectives().slos[0].clone();
        let deployed = T0_MS + 30 * MINUTE_MS;
        (
            // While the short window still reaches before the deploy,
            // nothing is said.
            floodgate_harness::observe::slo::burn_relief(
                &slo,
                harness.tsdb(),
                deployed,
                deployed,
                deployed + 4 * MINUTE_MS,
            ),
            floodgate_harness::observe::slo::burn_relief(
                &slo,
                harness.tsdb(),
                deployed,
                deployed,
                deployed + 10 * MINUTE_MS,
            ),
        )
    };
    // 2% bad after: 20x, still over the 14.4x rule, but under half of 50x.
    let (early, relieved) = judge(20);
    assert_eq!(early, None);
    let (before, after) = relieved.expect("relieved");
    assert!((before - 50.0).abs() < 1.0, "{before}");
    assert!((after - 20.0).abs() < 1.0, "{after}");
    // 4% bad after: 40x, more than half of before: no relief.
    assert_eq!(judge(40).1, None);
}

/// Violations filed over three hours of a 50x burn for the first 30
/// minutes, then `later` (errors per 10,000 from `later_from` on).
fn episode_then(later_from: u64, later_errors: u64) -> (Vec<u64>, Vec<String>) {
    let mut harness = harness();
    let mut service = SyntheticService::new();
    let mut filed = Vec::new();
    let mut held = Vec::new();
    run(
        &mut harness,
        &mut service,
        T0_MS,
        3 * HOUR_MS,
        TICK_MS,
        |elapsed| {
            if elapsed < 30 * MINUTE_MS {
                (10_000, 500)
            } else if elapsed >= later_from {
                (10_000, later_errors)
            } else {
                (10_000, 0)
            }
        },
        |elapsed, output| {
            filed.extend(
                output
                    .violations
                    .iter()
                    .filter(|violation| !violation.reminder)
                    .map(|_| elapsed),
            );
            held.extend(
                output.slos[0]
                    .rules
                    .iter()
                    .filter_map(|rule| rule.held_back.clone())
                    .filter(|why| why.contains("still reads the burn")),
            );
        },
    );
    (filed, held)
}

#[test]
fn a_slow_rule_that_only_reaches_an_ended_burn_files_nothing_a_new_burn_files() {
    // The burn pages at 5m and stops at 30m; the alert stops once the 6x
    // rule's 30m window is clean (1h). At 2h the 1d/2h ticket rule covers
    // its short window for the first time and its 2h still holds the first
    // 30 minutes' burn (12.5x): the tail of the episode that ended, not a
    // new one.
    let (filed, held) = episode_then(u64::MAX, 0);
    assert_eq!(filed, [5 * MINUTE_MS], "one ticket for one episode");
    assert!(!held.is_empty(), "the 1d/2h rule was held back, naming why");
    // A new burn after the alert stopped (10x from 1h40m) is filed, though
    // every long window still holds the first.
    let (filed, _) = episode_then(100 * MINUTE_MS, 100);
    assert_eq!(filed.len(), 2, "{filed:?}");
    assert_eq!(filed[0], 5 * MINUTE_MS);
    assert!(
        (100 * MINUTE_MS..=135 * MINUTE_MS).contains(&filed[1]),
        "the new burn filed at {} ms",
        filed[1]
    );
}
