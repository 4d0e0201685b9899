//! Expected-change notices under a simulated clock: the observe loop, the
//! store and a fake service with seeded traffic. A planned step in the
//! request rate that a notice announces files no anomaly ticket, is
//! recorded once, and stays quiet after the notice ends; the same step
//! unannounced, or beyond the notice's `max_factor`, is ticketed. A rise
//! within the capacity an anomaly declares files no ticket until it passes
//! the capacity; a drop is ticketed whatever the capacity. An anomaly that
//! declares `sustain:` files only an episode that lasts that long (or goes
//! past its capacity), against the level before it.

mod common;

use common::{scratch_dir, seed, FakeService, Rng, T0_MS, TICK_MS};
use floodgate_harness::harness::{
    ANOMALY_BEYOND_NOTICE, ANOMALY_EXPECTED, ANOMALY_TRANSIENT, ANOMALY_WITHIN_CAPACITY,
};
use floodgate_harness::observe::anomaly::DetectorState;
use floodgate_harness::quantity::MINUTE_MS;
use floodgate_harness::run::observer::Observer;
use floodgate_harness::run::state::{Target, TickReport};
use floodgate_harness::store::tickets::TicketFilter;
use floodgate_harness::tickets::notices::{LabelName, NoticeDraft, NoticeMatcher, NoticeState};
use floodgate_harness::tickets::{Source, Ticket};
use floodgate_harness::{
    observe::objectives, Clock, Harness, HarnessConfig, HarnessState, ManualClock, Store,
};
use std::sync::Arc;

const OBJECTIVES: &str = "
anomalies:
  - name: request_rate
    series: floodgate_requests_total
    rate_window: 1m
";

/// Decisions per 10 s tick before the step (100 a second).
const MEAN_PER_TICK: f64 = 1_000.0;
/// Ticks per minute.
const PER_MINUTE: u64 = MINUTE_MS / TICK_MS;

struct World {
    state: Arc<HarnessState>,
    clock: Arc<ManualClock>,
    observer: Observer,
    service: Arc<FakeService>,
    rng: Rng,
    dir: std::path::PathBuf,
    seed: u64,
    /// Every tick's report so far.
    reports: Vec<TickReport>,
}

impl World {
    /// A harness watching one service, after an hour of steady traffic.
    async fn start(name: &str, seed: u64) -> World {
        World::start_with(name, seed, OBJECTIVES).await
    }

    /// The same, with these objectives.
    async fn start_with(name: &str, seed: u64, objectives: &str) -> World {
        let objectives = objectives::parse("objectives.yaml", objectives).expect("objectives");
        let harness = Harness::new(objectives, HarnessConfig::default()).expect("harness");
        let dir = scratch_dir(name);
        let store = Store::open(&dir).expect("store");
        let clock = Arc::new(ManualClock::at_ms(T0_MS));
        let state = HarnessState::new(harness, store, clock.clone());
        let service = FakeService::new();
        let observer = Observer::new(
            state.clone(),
            vec![Target {
                name: "edge".into(),
                transport: service.clone(),
            }],
        )
        .expect("observer");
        let mut world = World {
            state,
            clock,
            observer,
            service,
            rng: Rng::from_state(seed),
            dir,
            seed,
            reports: Vec::new(),
        };
        world.run(60 * PER_MINUTE, MEAN_PER_TICK).await;
        assert_eq!(world.tickets().len(), 0, "seed {seed}: a steady hour");
        world
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// `ticks` ticks at `mean` decisions a tick.
    async fn run(&mut self, ticks: u64, mean: f64) {
        for _ in 0..ticks {
            self.clock.advance_ms(TICK_MS);
            let requests = self.rng.poisson(mean);
            self.service
                .metrics
                .lock()
                .expect("metrics")
                .serve(requests, 0, 0);
            let report = self.observer.observe_once(self.now()).await;
            assert!(
                report.errors.is_empty(),
                "seed {}: {:?}",
                self.seed,
                report.errors
            );
            self.reports.push(report);
        }
    }

    /// Announces a change of every matcher's `tenant=acme` /
    /// `metric=floodgate_requests_total` from now, for `minutes`.
    fn announce(&self, minutes: u64, max_factor: Option<f64>) -> String {
        let draft = NoticeDraft {
            matchers: vec![
                NoticeMatcher {
                    name: LabelName::Tenant,
                    value: Some("acme".into()),
                    regex: None,
                },
                NoticeMatcher {
                    name: LabelName::Metric,
                    value: Some("floodgate_requests_total".into()),
                    regex: None,
                },
            ],
            starts_ms: None,
            ends_ms: None,
            duration_ms: Some(minutes * MINUTE_MS),
            reason: "acme launches: five times the traffic".into(),
            author: "deploy:ci".into(),
            max_factor,
        };
        let notice = draft.validate(self.now()).expect("a valid notice");
        self.state
            .store()
            .create_notice(&notice, self.now())
            .expect("stored")
            .id
    }

    fn tickets(&self) -> Vec<Ticket> {
        self.state
            .store()
            .list(&TicketFilter::default())
            .expect("tickets")
    }

    /// The events of one kind every tick so far reported.
    fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.reports
            .iter()
            .flat_map(|report| &report.events)
            .filter(|event| event.kind == kind)
            .map(|event| event.detail.clone())
            .collect()
    }

    /// A notice's ledger entry kinds, oldest first.
    fn history(&self, id: &str) -> Vec<String> {
        self.state
            .store()
            .history(id)
            .expect("history")
            .into_iter()
            .map(|entry| entry.kind)
            .collect()
    }

    fn detector_state(&self) -> DetectorState {
        let tick = self.reports.last().expect("a tick");
        tick.anomalies[0].state.clone()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn an_announced_step_files_no_ticket_and_stays_quiet_after_the_notice() {
    let seed = seed(41);
    let mut world = World::start("notice-quiet", seed).await;
    let id = world.announce(30, Some(10.0));
    // Five minutes in, the rate steps up five times, and stays there for
    // two hours: well past the notice's end.
    world.run(5 * PER_MINUTE, MEAN_PER_TICK).await;
    world.run(120 * PER_MINUTE, MEAN_PER_TICK * 5.0).await;

    assert_eq!(world.tickets(), vec![], "seed {seed}: no ticket");
    let expected = world.events(ANOMALY_EXPECTED);
    assert_eq!(expected.len(), 1, "seed {seed}: one episode: {expected:?}");
    assert_eq!(expected[0]["notice"], id.as_str());
    assert_eq!(expected[0]["expected"]["max_factor"], 10.0);
    let level = expected[0]["expected"]["level"].as_f64().expect("a level");
    assert!((level - 100.0).abs() < 5.0, "seed {seed}: level {level}");
    assert!(world.events(ANOMALY_BEYOND_NOTICE).is_empty());
    // Recorded once in the ledger, however many ticks the episode lasted.
    assert_eq!(world.history(&id), ["notice.created", "notice.suppressed"]);
    let notice = world
        .state
        .store()
        .get_notice(&id)
        .expect("read")
        .expect("stored");
    assert_eq!((notice.suppressed, notice.exceeded), (1, 0));
    assert_eq!(notice.state(world.now()), NoticeState::Expired);
    // The detector learned the new level: normal again.
    assert_eq!(world.detector_state(), DetectorState::Normal);
    let verified = floodgate_harness::verify(&world.dir).expect("the ledger verifies");
    assert_eq!(verified.notices, 1);
}

#[tokio::test]
async fn a_notice_that_ends_before_the_detector_adapted_leaves_it_on_the_new_level() {
    let seed = seed(43);
    let mut world = World::start("notice-rebase", seed).await;
    world.announce(10, Some(10.0));
    world.run(3 * PER_MINUTE, MEAN_PER_TICK).await;
    // The step, seven minutes before the notice ends: at its end the
    // detector's window (90 values) still holds mostly the old level.
    world.run(7 * PER_MINUTE - 1, MEAN_PER_TICK * 5.0).await;
    assert!(
        matches!(world.detector_state(), DetectorState::Anomalous { .. }),
        "seed {seed}: {:?}",
        world.detector_state()
    );
    // The tick the notice ends: the detector re-learned its reference
    // from the values since the step (more than warm-up's worth), so the
    // new level is its normal…
    world.run(1, MEAN_PER_TICK * 5.0).await;
    assert_eq!(world.detector_state(), DetectorState::Normal, "seed {seed}");
    // …and it stays quiet while the level persists.
    world.run(60 * PER_MINUTE, MEAN_PER_TICK * 5.0).await;
    assert_eq!(world.tickets(), vec![], "seed {seed}");
    assert_eq!(world.events(ANOMALY_EXPECTED).len(), 1, "seed {seed}");
}

#[tokio::test]
async fn the_same_step_unannounced_files_an_anomaly_ticket() {
    let seed = seed(41);
    let mut world = World::start("notice-none", seed).await;
    world.run(5 * PER_MINUTE, MEAN_PER_TICK).await;
    world.run(10 * PER_MINUTE, MEAN_PER_TICK * 5.0).await;
    let tickets = world.tickets();
    assert_eq!(tickets.len(), 1, "seed {seed}: {tickets:?}");
    assert_eq!(tickets[0].source, Source::Anomaly);
    assert_eq!(tickets[0].fingerprint, "anomaly:request_rate");
    assert!(tickets[0].context.get("expected_change").is_none());
    assert!(world.events(ANOMALY_EXPECTED).is_empty());
}

#[tokio::test]
async fn a_step_beyond_the_notices_factor_files_a_ticket_naming_it() {
    let seed = seed(47);
    let mut world = World::start("notice-beyond", seed).await;
    let id = world.announce(30, Some(10.0));
    world.run(5 * PER_MINUTE, MEAN_PER_TICK).await;
    // Fifty times the level: five times what the notice allowed.
    world.run(10 * PER_MINUTE, MEAN_PER_TICK * 50.0).await;
    let tickets = world.tickets();
    assert_eq!(tickets.len(), 1, "seed {seed}: {tickets:?}");
    let ticket = &tickets[0];
    assert_eq!(ticket.source, Source::Anomaly);
    assert!(
        ticket
            .objective
            .description
            .ends_with(&format!("it went beyond what {id} announced")),
        "{}",
        ticket.objective.description
    );
    let expected = &ticket.context["expected_change"];
    assert_eq!(expected["notices"][0]["id"], id.as_str());
    assert_eq!(expected["notices"][0]["max_factor"], 10.0);
    let beyond = expected["beyond"].as_str().expect("a sentence");
    assert!(
        beyond.starts_with("the change went beyond what was announced: ")
            && beyond.contains(&format!("{id} allowed [")),
        "{beyond}"
    );
    assert!(world.events(ANOMALY_EXPECTED).is_empty());
    assert_eq!(world.events(ANOMALY_BEYOND_NOTICE).len(), 1);
    assert_eq!(world.history(&id), ["notice.created", "notice.exceeded"]);
    // Its criterion is judged against the level before the step.
    let criterion = &ticket.acceptance_criteria[0];
    assert_eq!(
        criterion.condition.to_string(),
        "within 6 scales of reference"
    );
    let reference = criterion.reference.expect("a reference");
    assert!((reference.median - 100.0).abs() < 5.0, "{reference:?}");
}

#[tokio::test]
async fn a_notice_expired_early_covers_nothing() {
    let seed = seed(41);
    let mut world = World::start("notice-expired", seed).await;
    let id = world.announce(60, None);
    world.run(PER_MINUTE, MEAN_PER_TICK).await;
    let expired = world
        .state
        .store()
        .expire_notice(&id, "human:alice", "launch postponed", world.now())
        .expect("expires");
    assert_eq!(expired.state(world.now()), NoticeState::Expired);
    world.run(5 * PER_MINUTE, MEAN_PER_TICK).await;
    world.run(10 * PER_MINUTE, MEAN_PER_TICK * 5.0).await;
    assert_eq!(world.tickets().len(), 1, "seed {seed}");
    assert_eq!(world.history(&id), ["notice.created", "notice.expired"]);
    // Expiring twice is refused, naming why.
    let error = world
        .state
        .store()
        .expire_notice(&id, "human:alice", "again", world.now())
        .expect_err("already expired");
    assert!(error.to_string().contains("already expired"), "{error}");
}

/// The anomaly of [`OBJECTIVES`] with a declared capacity of 300 a second
/// (the steady level is 100).
const WITH_CAPACITY: &str = "
anomalies:
  - name: request_rate
    series: floodgate_requests_total
    rate_window: 1m
    capacity: 300
";

#[tokio::test]
async fn a_rise_within_the_declared_capacity_files_no_ticket_until_it_passes_it() {
    let seed = seed(53);
    let mut world = World::start_with("capacity-absorbs", seed, WITH_CAPACITY).await;
    // Two and a half times the level: an anomaly, but within the capacity.
    world.run(5 * PER_MINUTE, MEAN_PER_TICK * 2.5).await;
    assert!(
        matches!(world.detector_state(), DetectorState::Anomalous { .. }),
        "seed {seed}: {:?}",
        world.detector_state()
    );
    // (The detector learns the new level meanwhile.)
    world.run(5 * PER_MINUTE, MEAN_PER_TICK * 2.5).await;
    assert_eq!(world.tickets(), vec![], "seed {seed}: absorbed");
    let absorbed = world.events(ANOMALY_WITHIN_CAPACITY);
    assert_eq!(
        absorbed.len(),
        1,
        "seed {seed}: once an episode: {absorbed:?}"
    );
    assert_eq!(absorbed[0]["capacity"], 300.0);
    // The rise goes on past the capacity: now it harms, and is ticketed
    // once.
    world.run(10 * PER_MINUTE, MEAN_PER_TICK * 5.0).await;
    let tickets = world.tickets();
    assert_eq!(tickets.len(), 1, "seed {seed}: {tickets:?}");
    assert_eq!(tickets[0].fingerprint, "anomaly:request_rate");
    assert_eq!(tickets[0].context["capacity"], 300.0);
}

#[tokio::test]
async fn a_drop_is_ticketed_whatever_the_capacity() {
    let seed = seed(59);
    let mut world = World::start_with("capacity-drop", seed, WITH_CAPACITY).await;
    world.run(10 * PER_MINUTE, MEAN_PER_TICK * 0.2).await;
    let tickets = world.tickets();
    assert_eq!(tickets.len(), 1, "seed {seed}: {tickets:?}");
    assert!(world.events(ANOMALY_WITHIN_CAPACITY).is_empty());
}

/// An anomaly that files only an episode lasting ten minutes, over an
/// hour's reference; with a capacity of three times the level, or none.
fn sustained(capacity: Option<u32>) -> String {
    let mut text = "
anomalies:
  - name: request_rate
    series: floodgate_requests_total
    rate_window: 1m
    min_relative_scale: 0.05
    history: 360
    sustain: 10m
"
    .to_owned();
    if let Some(capacity) = capacity {
        text.push_str(&format!("    capacity: {capacity}\n"));
    }
    text
}

#[tokio::test]
async fn a_burst_shorter_than_the_sustain_is_transient_and_a_longer_rise_is_ticketed_against_the_level_before_it(
) {
    let seed = seed(61);
    let mut world = World::start_with("sustain", seed, &sustained(None)).await;
    // A four-minute burst at two and a half times the level.
    world.run(4 * PER_MINUTE, MEAN_PER_TICK * 2.5).await;
    assert!(
        matches!(world.detector_state(), DetectorState::Anomalous { .. }),
        "seed {seed}: the burst is an anomaly: {:?}",
        world.detector_state()
    );
    world.run(10 * PER_MINUTE, MEAN_PER_TICK).await;
    assert_eq!(
        world.tickets(),
        vec![],
        "seed {seed}: a burst files nothing"
    );
    let transient = world.events(ANOMALY_TRANSIENT);
    assert_eq!(transient.len(), 1, "seed {seed}: {transient:?}");
    let lasted = transient[0]["lasted_ms"].as_u64().expect("lasted_ms");
    assert!(
        lasted > 2 * MINUTE_MS && lasted < 10 * MINUTE_MS,
        "seed {seed}: {transient:?}"
    );
    assert_eq!(transient[0]["sustain_ms"], 600_000);
    // The same rise, sustained: ticketed once, after ten minutes, and its
    // criterion judges against the level before it (about 100 a second),
    // not what the detector learned while it waited.
    world.run(9 * PER_MINUTE, MEAN_PER_TICK * 2.5).await;
    assert_eq!(
        world.tickets(),
        vec![],
        "seed {seed}: nine minutes are not ten"
    );
    world.run(4 * PER_MINUTE, MEAN_PER_TICK * 2.5).await;
    let tickets = world.tickets();
    assert_eq!(tickets.len(), 1, "seed {seed}: {tickets:?}");
    let reference = tickets[0].acceptance_criteria[0]
        .reference
        .as_ref()
        .expect("a reference");
    assert!(
        (reference.median - 100.0).abs() < 10.0,
        "seed {seed}: the level before the rise: {reference:?}"
    );
}

#[tokio::test]
async fn a_rise_past_the_capacity_is_ticketed_at_once_whatever_the_sustain() {
    let seed = seed(67);
    let mut world = World::start_with("sustain-capacity", seed, &sustained(Some(300))).await;
    // Five times the level: past the capacity of 300 a second.
    world.run(2 * PER_MINUTE, MEAN_PER_TICK * 5.0).await;
    let tickets = world.tickets();
    assert_eq!(tickets.len(), 1, "seed {seed}: {tickets:?}");
    assert!(world.events(ANOMALY_TRANSIENT).is_empty());
}
