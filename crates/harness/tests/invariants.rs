//! Invariants under a simulated clock, filed into a real store.

mod common;

use common::{scratch_dir, SyntheticService, T0_MS, TICK_MS};
use floodgate_harness::observe::invariants::InvariantState;
use floodgate_harness::observe::objectives;
use floodgate_harness::store::tickets::TicketFilter;
use floodgate_harness::tickets::{Source, TicketState};
use floodgate_harness::{file_violations, Harness, HarnessConfig, Observation, Store};

const OBJECTIVES: &str = "
invariants:
  - name: capacity_headroom
    condition: capacity.available_ratio > 0.2
    for: 3
    on_violation:
      auto_remediate: raise_store_capacity
  - name: store_below_capacity
    condition: state.store.keys < state.store.capacity
    on_violation: event
";

#[test]
fn a_breach_held_for_many_ticks_makes_exactly_one_ticket() {
    let objectives =
        objectives::parse("inv.yaml", OBJECTIVES).unwrap_or_else(|error| panic!("{error}"));
    let mut harness = Harness::new(objectives, HarnessConfig::default())
        .unwrap_or_else(|error| panic!("{error}"));
    let dir = scratch_dir("invariant");
    let store = Store::open(&dir).unwrap_or_else(|error| panic!("{error}"));
    let mut service = SyntheticService::new();
    let mut breached_at = None;
    // 3 hours at 10 s: healthy for 10 minutes, then 90% full for the rest.
    let ticks = 3 * 3600 * 1000 / TICK_MS;
    for tick in 0..=ticks {
        let now = T0_MS + tick * TICK_MS;
        service.keys = if tick < 60 { 50_000 } else { 90_000 };
        service.serve(100, 0, 0);
        let output = harness.tick(&Observation {
            time_ms: now,
            metrics_text: Some(service.render()),
            state_json: Some(service.state()),
            ..Observation::default()
        });
        let headroom = &output.invariants[0];
        match (tick, &headroom.state) {
            (0..60, InvariantState::Holds) => {}
            (60 | 61, InvariantState::Failing { .. }) => {}
            (62.., InvariantState::Breached { since_ms, .. }) => {
                breached_at.get_or_insert(*since_ms);
            }
            other => panic!("unexpected {other:?}"),
        }
        // The other invariant holds (0.9 full is still below capacity).
        assert_eq!(output.invariants[1].state, InvariantState::Holds);
        file_violations(&store, &output.violations, now)
            .unwrap_or_else(|(_, error)| panic!("{error}"));
    }
    assert_eq!(
        breached_at,
        Some(T0_MS + 62 * TICK_MS),
        "held for `for: 3` ticks first"
    );
    let tickets = store
        .list(&TicketFilter::default())
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    let ticket = &tickets[0];
    assert_eq!(ticket.id, "INF-0001");
    assert_eq!(ticket.source, Source::Invariant);
    assert_eq!(ticket.state, TicketState::Open);
    assert_eq!(ticket.fingerprint, "invariant:capacity_headroom");
    assert_eq!(ticket.context["auto_remediate"], "raise_store_capacity");
    assert_eq!(
        ticket.context["evidence"]["capacity"]["available_ratio"]
            .as_f64()
            .map(|r| (r * 100.0).round()),
        Some(10.0)
    );
    // Held for ~2h50m: the first report plus hourly reminders, absorbed.
    assert_eq!(ticket.occurrences, 3);
    // The fix criterion: the invariant held for 30 minutes. It has not.
    let results = harness.evaluate_criteria(ticket, T0_MS + ticks * TICK_MS);
    assert_eq!(results[0].metric, "capacity_headroom");
    assert!(
        matches!(
            results[0].verdict,
            floodgate_harness::tickets::criteria::Verdict::NotMet { .. }
        ),
        "{results:?}"
    );
    assert_eq!(results[0].value, Some(0.0));
    floodgate_harness::verify(&dir).unwrap_or_else(|error| panic!("{error}"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_event_invariant_files_no_ticket_and_errors_are_not_breaches() {
    let objectives =
        objectives::parse("inv.yaml", OBJECTIVES).unwrap_or_else(|error| panic!("{error}"));
    let mut harness = Harness::new(objectives, HarnessConfig::default())
        .unwrap_or_else(|error| panic!("{error}"));
    // No state yet: `state.store…` cannot be evaluated; that is an error for
    // the tick, not a breach.
    let output = harness.tick(&Observation {
        time_ms: T0_MS,
        ..Observation::default()
    });
    assert!(
        matches!(output.invariants[1].state, InvariantState::Error { .. }),
        "{:?}",
        output.invariants[1]
    );
    assert!(output.violations.is_empty());
    // Over capacity: the event invariant reports an event, files nothing.
    let mut service = SyntheticService::new();
    service.keys = service.capacity + 1;
    let output = harness.tick(&Observation {
        time_ms: T0_MS + TICK_MS,
        state_json: Some(service.state()),
        ..Observation::default()
    });
    assert_eq!(output.events.len(), 1);
    assert_eq!(output.events[0].kind, "invariant.breached");
    assert!(
        output.violations.is_empty(),
        "capacity_headroom needs 3 ticks; the event needs none"
    );
}
