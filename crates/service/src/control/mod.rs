//! The control plane: everything an operator (human or agent) can see and
//! change, through one enumerated action API, with every effect recorded
//! as an event.
//!
//! - [`Control`] owns the event log, the config history, the drain flag and
//!   the failure policy, next to the [`Engine`] it steers;
//! - [`routes`] serves it over HTTP (`/v1/state`, `/v1/health`,
//!   `/v1/events[/stream]`, `/v1/config[/versions|/rollback]`,
//!   `/v1/actions[/{name}]`), merged into the router of [`crate::http`];
//! - every change runs as one of the actions of
//!   `floodgate_contract::actions::CATALOG` ([`Control::run_action`]),
//!   serialised by one lock, so config, store and flags change one action
//!   at a time and each action's events are contiguous.
//!
//! Architecture invariant: after start no file is read again; the config
//! changes only through these actions, and atomically
//! ([`Engine::swap_table`]).

mod actions;
mod diff;
pub mod events;
mod health;
pub mod history;
pub mod keys;
mod routes;

pub use actions::ActionError;
pub use health::{
    CAPACITY_WARNING_RATIO, HEALTH_SAMPLE_CAPACITY, HEALTH_WINDOWS_SECONDS, MAX_ERROR_RATIO,
    SAMPLE_INTERVAL, STORE_CAPACITY_FAIL_RATIO,
};
pub use routes::routes;

use crate::clock::Clock;
use crate::engine::Engine;
use crate::limits::{ACTION_TIMEOUT, MAX_PENDING_ACTIONS, MAX_PENDING_ACTION_BYTES};
use crate::ServiceInfo;
use events::{EventLog, EventsFile};
use floodgate_contract::actions::ActionRequest;
use floodgate_contract::actions::FailurePolicy;
use floodgate_contract::events::EventBody;
use floodgate_contract::state::{StoreTransition, MAX_STORE_TRANSITIONS};
use floodgate_store::CounterStore;
use history::History;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Who is asking, as the access-control layer identified them: put into a
/// request's extensions, it becomes the default actor of the actions and
/// events the request causes (a request body's `actor` still wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

/// The actor recorded when nobody says who asks.
pub const ANONYMOUS: &str = "anonymous";
/// The actor of what the service does by itself.
pub const SYSTEM: &str = "system";

/// Called by every action once it has its turn (after `action_requested`
/// is recorded, before anything is planned), with the action's name and
/// request: a test holds an action there to see what waits on it.
pub type ActionHook = Arc<dyn Fn(&str, &ActionRequest) + Send + Sync>;

/// Options of the control plane.
pub struct ControlOptions {
    /// Also append every event to this JSONL file (see
    /// [`events::EVENTS_FILE_MAX_BYTES`] for its bound).
    pub events_file: Option<EventsFile>,
    /// The failure policy at start (`serve --failure-policy`) when the
    /// store has no backend to apply it; a store with one
    /// ([`CounterStore::resilience`]) holds its own, which wins.
    pub failure_policy: Option<FailurePolicy>,
    /// Actions taken over the API at once, the running one included; one
    /// more is refused (503). [`MAX_PENDING_ACTIONS`] by default.
    pub max_pending_actions: usize,
    /// Bytes of request bodies those actions may hold at once (one action
    /// alone is always admitted). [`MAX_PENDING_ACTION_BYTES`] by default.
    pub max_pending_action_bytes: usize,
    /// How long an action taken over the API may wait for its turn and be
    /// planned before it is refused with nothing changed.
    /// [`ACTION_TIMEOUT`] by default.
    pub action_timeout: Duration,
    /// See [`ActionHook`]; none by default.
    pub action_hook: Option<ActionHook>,
}

impl Default for ControlOptions {
    fn default() -> ControlOptions {
        ControlOptions {
            events_file: None,
            failure_policy: None,
            max_pending_actions: MAX_PENDING_ACTIONS,
            max_pending_action_bytes: MAX_PENDING_ACTION_BYTES,
            action_timeout: ACTION_TIMEOUT,
            action_hook: None,
        }
    }
}

impl std::fmt::Debug for ControlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlOptions")
            .field("events_file", &self.events_file)
            .field("failure_policy", &self.failure_policy)
            .field("max_pending_actions", &self.max_pending_actions)
            .field("max_pending_action_bytes", &self.max_pending_action_bytes)
            .field("action_timeout", &self.action_timeout)
            .field("action_hook", &self.action_hook.is_some())
            .finish()
    }
}

/// The queue of actions taken over the API ([`routes`]): how many are
/// admitted (running or waiting), the one turn they wait for, and their
/// bounds. Waiting is asynchronous, so a queued action holds no thread and
/// the blocking pool stays free for reads (`/v1/state`, `/v1/traffic`).
struct ActionQueue {
    turn: Arc<tokio::sync::Semaphore>,
    pending: Arc<Mutex<Pending>>,
    max_pending: usize,
    max_pending_bytes: usize,
    timeout: Duration,
    hook: Option<ActionHook>,
}

/// The actions admitted (running or waiting) and the body bytes they hold.
#[derive(Debug, Default)]
struct Pending {
    actions: usize,
    bytes: usize,
}

/// An admitted action's place in the queue and its share of the body
/// bytes; given back when it is answered (or its caller goes away).
pub(crate) struct Admitted {
    pending: Arc<Mutex<Pending>>,
    bytes: usize,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut pending = self.pending.lock();
        pending.actions -= 1;
        pending.bytes -= self.bytes;
    }
}

/// The control plane of one service.
pub struct Control<S> {
    engine: Arc<Engine<S>>,
    info: ServiceInfo,
    events: EventLog,
    history: Mutex<History>,
    draining: AtomicBool,
    failure_policy: Mutex<FailurePolicy>,
    /// Serialises actions: one changes the service at a time.
    acting: Mutex<()>,
    /// Actions taken over the API wait here for their turn.
    queue: ActionQueue,
    sampler: Mutex<health::Sampler>,
    /// The backend's latest health changes, oldest first (at most
    /// [`MAX_STORE_TRANSITIONS`]).
    store_transitions: Mutex<VecDeque<StoreTransition>>,
    stopping: watch::Sender<bool>,
}

impl<S> std::fmt::Debug for Control<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl<S: CounterStore> Control<S> {
    /// The control plane of `engine` (reading time from `clock`, the
    /// engine's clock), whose current table becomes config version 1.
    pub fn new(
        engine: Arc<Engine<S>>,
        clock: Arc<dyn Clock>,
        info: ServiceInfo,
        options: ControlOptions,
    ) -> Control<S> {
        let clock_ms = info.started_at / 1_000_000;
        let domains = engine.snapshot().table.domains().cloned().collect();
        let events = EventLog::new(clock, options.events_file);
        let sampler = health::Sampler::new(&engine, info.started_at);
        let failure_policy = options.failure_policy.unwrap_or(FailurePolicy::FailOpen);
        Control {
            engine,
            info,
            events,
            history: Mutex::new(History::new(domains, clock_ms)),
            draining: AtomicBool::new(false),
            failure_policy: Mutex::new(failure_policy),
            acting: Mutex::new(()),
            queue: ActionQueue {
                turn: Arc::new(tokio::sync::Semaphore::new(1)),
                pending: Arc::new(Mutex::new(Pending::default())),
                max_pending: options.max_pending_actions.max(1),
                max_pending_bytes: options.max_pending_action_bytes,
                timeout: options.action_timeout,
                hook: options.action_hook,
            },
            sampler: Mutex::new(sampler),
            store_transitions: Mutex::new(VecDeque::new()),
            stopping: watch::channel(false).0,
        }
    }

    /// Admits one more action taken over the API whose body holds up to
    /// `bytes`, unless `max_pending_actions` are already running or
    /// waiting, or their bodies and this one would pass
    /// `max_pending_action_bytes` (an action alone is always admitted):
    /// 503 naming the bound.
    pub(crate) fn admit_action(&self, bytes: usize) -> Result<Admitted, ActionError> {
        let queue = &self.queue;
        let mut pending = queue.pending.lock();
        if pending.actions >= queue.max_pending {
            return Err(ActionError::overloaded(format!(
                "{} actions are already running or waiting, the most the service queues (MAX_PENDING_ACTIONS = {}); nothing changed, retry later",
                pending.actions, queue.max_pending
            )));
        }
        if pending.actions > 0 && pending.bytes.saturating_add(bytes) > queue.max_pending_bytes {
            return Err(ActionError::overloaded(format!(
                "the {} actions running or waiting hold {} bytes of request bodies, and this one's {bytes} would pass the {} the service holds at once (MAX_PENDING_ACTION_BYTES); nothing changed, retry later",
                pending.actions, pending.bytes, queue.max_pending_bytes
            )));
        }
        pending.actions += 1;
        pending.bytes += bytes;
        Ok(Admitted {
            pending: queue.pending.clone(),
            bytes,
        })
    }

    /// Actions taken over the API now running or waiting for their turn.
    pub fn pending_actions(&self) -> usize {
        self.queue.pending.lock().actions
    }

    /// The one turn actions over the API wait for (one permit).
    pub(crate) fn action_turn(&self) -> Arc<tokio::sync::Semaphore> {
        self.queue.turn.clone()
    }

    fn queue_hook(&self) -> Option<ActionHook> {
        self.queue.hook.clone()
    }

    /// How long an action over the API may wait and be planned.
    pub(crate) fn action_timeout(&self) -> Duration {
        self.queue.timeout
    }

    /// Remembers a change of the counter backend's health (the store's
    /// health listener calls it), at the service's clock; the oldest is
    /// forgotten past [`MAX_STORE_TRANSITIONS`].
    pub fn store_health_changed(&self, healthy: bool, detail: &str) {
        let mut detail = detail.to_owned();
        keys::cut(&mut detail, crate::limits::STORE_TRANSITION_DETAIL_BYTES);
        let time_ms = self.engine.clock().now_ns() / 1_000_000;
        let mut transitions = self.store_transitions.lock();
        if transitions.len() >= MAX_STORE_TRANSITIONS {
            transitions.pop_front();
        }
        transitions.push_back(StoreTransition {
            time_ms,
            healthy,
            detail,
        });
    }

    /// The backend's latest health changes, oldest first.
    pub fn store_transitions(&self) -> Vec<StoreTransition> {
        self.store_transitions.lock().iter().cloned().collect()
    }

    pub fn engine(&self) -> &Arc<Engine<S>> {
        &self.engine
    }

    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Records that the service started serving.
    pub fn started(&self) -> u64 {
        let config_version = self.history.lock().current().meta.version;
        self.events.emit(
            SYSTEM,
            "",
            EventBody::ServiceStarted {
                version: crate::VERSION.to_string(),
                config_version,
                backend: self.engine.store().stats().backend.to_string(),
            },
        )
    }

    /// Records that shutdown began and ends every event stream and long
    /// poll, so they do not hold up the graceful shutdown.
    pub fn stopping(&self) -> u64 {
        let seq = self.events.emit(SYSTEM, "", EventBody::ServiceStopping {});
        self.stopping.send_replace(true);
        seq
    }

    /// Completes when [`Control::stopping`] has been called.
    pub fn stopping_signal(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The backend failure policy. With a backend that can fail
    /// ([`CounterStore::resilience`], the Redis store) the one source of
    /// truth is the store's atomic, which the store acts on; otherwise it
    /// is only stored and reported here.
    pub fn failure_policy(&self) -> FailurePolicy {
        match self.engine.store().resilience() {
            Some(resilience) => policy_from_store(resilience.policy()),
            None => *self.failure_policy.lock(),
        }
    }

    /// Sets the failure policy (the `set_failure_policy` action's effect);
    /// returns the previous one.
    fn replace_failure_policy(&self, policy: FailurePolicy) -> FailurePolicy {
        let before = self.failure_policy();
        *self.failure_policy.lock() = policy;
        if let Some(resilience) = self.engine.store().resilience() {
            resilience.set_policy(policy_to_store(policy));
        }
        before
    }

    /// The current config version and hash.
    pub fn config_version(&self) -> (u64, String) {
        let history = self.history.lock();
        let meta = &history.current().meta;
        (meta.version, meta.hash.clone())
    }

    /// Takes one health sample now (the 1 s ticker calls this) and raises
    /// a capacity warning when the store crosses
    /// [`CAPACITY_WARNING_RATIO`].
    pub fn sample(&self) {
        let warning = self.sampler.lock().sample(&self.engine);
        if let Some(body) = warning {
            self.events.emit(SYSTEM, "", body);
        }
    }

    /// Samples every [`SAMPLE_INTERVAL`] until the service stops.
    pub async fn run_sampler(self: Arc<Self>) {
        let mut stopping = self.stopping_signal();
        let mut ticker = tokio::time::interval(SAMPLE_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.sample(),
                _ = stopping.wait_for(|stop| *stop) => return,
            }
        }
    }
}

/// The contract's policy as the store's.
pub fn policy_to_store(policy: FailurePolicy) -> floodgate_store::FailurePolicy {
    match policy {
        FailurePolicy::FailOpen => floodgate_store::FailurePolicy::FailOpen,
        FailurePolicy::FailClosed => floodgate_store::FailurePolicy::FailClosed,
        FailurePolicy::LocalFallback => floodgate_store::FailurePolicy::LocalFallback,
    }
}

/// The store's policy as the contract's.
pub fn policy_from_store(policy: floodgate_store::FailurePolicy) -> FailurePolicy {
    match policy {
        floodgate_store::FailurePolicy::FailOpen => FailurePolicy::FailOpen,
        floodgate_store::FailurePolicy::FailClosed => FailurePolicy::FailClosed,
        floodgate_store::FailurePolicy::LocalFallback => FailurePolicy::LocalFallback,
    }
}
