//! The observe loop under a simulated clock, against fake services behind
//! the contract's `Transport`: what it scrapes lands in the harness, events
//! are followed by cursor, and an unreachable service is an observation
//! error (and `up == 0`), never a panic.

mod common;

use common::{scratch_dir, FakeService, T0_MS, TICK_MS};
use floodgate_harness::observe::selector::Selector;
use floodgate_harness::run::observer::{Observer, UP_SERIES};
use floodgate_harness::run::state::Target;
use floodgate_harness::store::slo::SLO_SNAPSHOT_INTERVAL_MS;
use floodgate_harness::store::tickets::TicketFilter;
use floodgate_harness::tickets::Source;
use floodgate_harness::{
    observe::objectives, Clock, Harness, HarnessConfig, HarnessState, ManualClock, Store,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;

const OBJECTIVES: &str = "
slos:
  - name: availability
    target: 99.9%
    window: 30d
    sli:
      ratio:
        good: floodgate_requests_total{code!=\"error\"}
        total: floodgate_requests_total
invariants:
  - name: service_up
    condition: metrics.up == 1.0
    for: 2
    on_violation: ticket
  - name: store_healthy
    condition: state.store.healthy
    on_violation: ticket
";

fn setup(name: &str) -> (Arc<HarnessState>, Arc<ManualClock>, std::path::PathBuf) {
    let objectives = objectives::parse("objectives.yaml", OBJECTIVES).expect("objectives parse");
    let harness = Harness::new(objectives, HarnessConfig::default()).expect("harness");
    let dir = scratch_dir(name);
    let store = Store::open(&dir).expect("store");
    let clock = Arc::new(ManualClock::at_ms(T0_MS));
    let state = HarnessState::new(harness, store, clock.clone());
    (state, clock, dir)
}

#[tokio::test]
async fn a_reachable_service_is_scraped_and_its_events_followed() {
    let (state, clock, dir) = setup("observe-ok");
    let service = FakeService::new();
    service.push_event(1, T0_MS - 5);
    let mut observer = Observer::new(
        state.clone(),
        vec![Target {
            name: "svc-a".into(),
            transport: service.clone(),
        }],
    )
    .expect("observer");
    for tick in 0..30u64 {
        service.metrics.lock().expect("metrics").serve(1000, 0, 0);
        if tick == 10 {
            service.push_event(2, clock.now_ms());
        }
        let report = observer.observe_once(clock.now_ms()).await;
        assert!(report.errors.is_empty(), "tick {tick}: {:?}", report.errors);
        assert!(report.filed.is_empty(), "tick {tick}: {:?}", report.filed);
        clock.advance_ms(TICK_MS);
    }
    let status = state.status();
    assert_eq!(status.ticks, 30);
    let target = &status.targets[0];
    assert!(target.up);
    assert_eq!(target.events_after, 2);
    assert_eq!(target.events_seen, 2);
    assert_eq!(target.consecutive_failures, 0);
    let tick = status.last_tick.expect("a tick");
    assert_eq!(tick.slos.len(), 1);
    assert_eq!(tick.slos[0].name, "availability");
    {
        let harness = state.harness();
        let requests =
            Selector::parse("floodgate_requests_total{instance=\"svc-a\"}").expect("selector");
        let rate = harness
            .tsdb()
            .rate(&requests, 60_000, clock.now_ms() - TICK_MS)
            .expect("a rate");
        assert!((rate - 100.0).abs() < 1e-6, "{rate}");
        assert_eq!(
            harness
                .tsdb()
                .value_at(&Selector::metric(UP_SERIES), clock.now_ms() - TICK_MS),
            Some(1.0)
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_loop_keeps_one_slo_snapshot_per_interval() {
    let (state, clock, dir) = setup("observe-slo-history");
    let service = FakeService::new();
    let mut observer = Observer::new(
        state.clone(),
        vec![Target {
            name: "svc-a".into(),
            transport: service.clone(),
        }],
    )
    .expect("observer");
    // 12 minutes of ticks: snapshots at 0, 5 and 10 minutes.
    let ticks = 12 * 60_000 / TICK_MS;
    for tick in 0..ticks {
        service.metrics.lock().expect("metrics").serve(1000, 1, 0);
        let report = observer.observe_once(clock.now_ms()).await;
        assert!(report.errors.is_empty(), "tick {tick}: {:?}", report.errors);
        clock.advance_ms(TICK_MS);
    }
    let history = state.store().slo_history(0).expect("history");
    let times: Vec<u64> = history.iter().map(|s| s.time_ms - T0_MS).collect();
    assert_eq!(
        times,
        vec![0, SLO_SNAPSHOT_INTERVAL_MS, 2 * SLO_SNAPSHOT_INTERVAL_MS]
    );
    assert!(history.iter().all(|s| s.name == "availability"));
    let last = history.last().expect("a snapshot");
    let report = state.status().last_tick.expect("a tick");
    assert!(last.sli.is_some(), "{last:?}");
    assert!(last
        .burn_rates
        .as_array()
        .is_some_and(|rates| !rates.is_empty() && rates[0]["window"].is_string()));
    assert_eq!(report.slos[0].name, last.name);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_unreachable_service_is_an_error_and_one_ticket_never_a_panic() {
    let (state, clock, dir) = setup("observe-down");
    let service = FakeService::new();
    let mut observer = Observer::new(
        state.clone(),
        vec![Target {
            name: "svc-b".into(),
            transport: service.clone(),
        }],
    )
    .expect("observer");
    for _ in 0..3 {
        let report = observer.observe_once(clock.now_ms()).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        clock.advance_ms(TICK_MS);
    }
    service.down.store(true, Ordering::SeqCst);
    let mut filed = Vec::new();
    for _ in 0..20 {
        let report = observer.observe_once(clock.now_ms()).await;
        assert!(
            report
                .errors
                .iter()
                .any(|error| error.contains("svc-b: /metrics: cannot reach the service")),
            "{:?}",
            report.errors
        );
        filed.extend(report.filed);
        clock.advance_ms(TICK_MS);
    }
    let status = state.status();
    assert!(!status.targets[0].up);
    assert_eq!(status.targets[0].consecutive_failures, 20);
    // `service_up` held for 2 ticks → one ticket; the state invariant saw
    // the last known state (healthy), so nothing else.
    assert_eq!(filed.len(), 1, "{filed:?}");
    assert_eq!(filed[0].fingerprint, "invariant:service_up");
    let store = state.store().clone();
    let tickets = store
        .list(&TicketFilter {
            source: Some(Source::Invariant),
            ..TicketFilter::default()
        })
        .expect("list");
    assert_eq!(tickets.len(), 1);
    assert!(tickets[0].objective.description.contains("service_up"));
    assert!(floodgate_harness::verify(&dir).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn observers_refuse_duplicate_and_empty_names() {
    let (state, _clock, dir) = setup("observe-names");
    let service = FakeService::new();
    let target = |name: &str| Target {
        name: name.into(),
        transport: service.clone(),
    };
    assert!(Observer::new(state.clone(), vec![target("a"), target("a")]).is_err());
    assert!(Observer::new(state, vec![target("")]).is_err());
    let _ = std::fs::remove_dir_all(dir);
}

const PER_SERVICE_OBJECTIVES: &str = "
invariants:
  - name: store_headroom
    condition: state.store.used_ratio < 0.8 && health.status == 'ok'
    for: 2
    on_violation: ticket
  - name: anything_served
    condition: metrics.up >= 1.0
    on_violation: ticket
";

#[tokio::test]
async fn state_invariants_judge_each_service_and_only_the_one_in_breach_is_ticketed() {
    let objectives =
        objectives::parse("objectives.yaml", PER_SERVICE_OBJECTIVES).expect("objectives parse");
    let harness = Harness::new(objectives, HarnessConfig::default()).expect("harness");
    let dir = scratch_dir("observe-per-service");
    let store = Store::open(&dir).expect("store");
    let clock = Arc::new(ManualClock::at_ms(T0_MS));
    let state = HarnessState::new(harness, store, clock.clone());
    let roomy = FakeService::new();
    let full = FakeService::new();
    {
        let mut metrics = roomy.metrics.lock().expect("metrics");
        metrics.keys = metrics.capacity / 2;
    }
    {
        let mut metrics = full.metrics.lock().expect("metrics");
        metrics.keys = metrics.capacity * 9 / 10;
    }
    let mut observer = Observer::new(
        state.clone(),
        vec![
            Target {
                name: "svc-a".into(),
                transport: roomy.clone(),
            },
            Target {
                name: "svc-b".into(),
                transport: full.clone(),
            },
        ],
    )
    .expect("observer");
    let mut filed = Vec::new();
    let mut last = None;
    for _ in 0..10 {
        for service in [&roomy, &full] {
            service.metrics.lock().expect("metrics").serve(100, 0, 0);
        }
        let report = observer.observe_once(clock.now_ms()).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        filed.extend(report.filed.clone());
        last = Some(report);
        clock.advance_ms(TICK_MS);
    }
    // One ticket, for the service in breach, its fingerprint naming it.
    assert_eq!(filed.len(), 1, "{filed:?}");
    assert_eq!(filed[0].fingerprint, "invariant:store_headroom:svc-b");
    let tickets = state.store().list(&TicketFilter::default()).expect("list");
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    let ticket = &tickets[0];
    assert!(
        ticket
            .objective
            .description
            .starts_with("Invariant store_headroom is breached on svc-b:"),
        "{}",
        ticket.objective.description
    );
    assert_eq!(ticket.context["instance"], "svc-b");
    assert_eq!(ticket.context["evidence"]["instance"], "svc-b");
    assert_eq!(
        ticket.context["evidence"]["state_store"]["keys"].as_f64(),
        Some(full.metrics.lock().expect("metrics").keys as f64)
    );
    // The reports: the state invariant once per service, the metrics-only
    // one once.
    let report = last.expect("a tick");
    let judged: Vec<(String, String, bool)> = report
        .invariants
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                r.instance.clone(),
                matches!(
                    r.state,
                    floodgate_harness::observe::invariants::InvariantState::Holds
                ),
            )
        })
        .collect();
    assert_eq!(
        judged,
        [
            ("store_headroom".into(), "svc-a".into(), true),
            ("store_headroom".into(), "svc-b".into(), false),
            ("anything_served".into(), String::new(), true),
        ]
    );

    // The roomy service fills up too: its own breach, its own ticket; the
    // ticket of svc-b absorbs nothing of it.
    {
        let mut metrics = roomy.metrics.lock().expect("metrics");
        metrics.keys = metrics.capacity;
    }
    let mut more = Vec::new();
    for _ in 0..3 {
        let report = observer.observe_once(clock.now_ms()).await;
        more.extend(report.filed);
        clock.advance_ms(TICK_MS);
    }
    assert_eq!(more.len(), 1, "{more:?}");
    assert_eq!(more[0].fingerprint, "invariant:store_headroom:svc-a");
    assert_ne!(more[0].id, filed[0].id);
    assert!(floodgate_harness::verify(&dir).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}
