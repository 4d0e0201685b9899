//! What the observe loop, the pipeline and the API share: the clock, the
//! targets, the harness behind its lock, the queue, and the loop's status.
//! Below both the loop ([`crate::run::observer`]) and the pipeline
//! ([`crate::run::pipeline`]), so neither imports the other's state.

use crate::harness::{AnomalyReport, Harness, HarnessEvent};
use crate::observe::invariants::InvariantReport;
use crate::observe::slo::SloReport;
use crate::store::tickets::IntakeAction;
use crate::store::Store;
use floodgate_contract::client::Transport;
use serde::Serialize;
use std::sync::{Arc, Mutex, MutexGuard};

/// Time, real or simulated: the contract's one clock, read here in
/// milliseconds (`now_ms`).
pub use floodgate_contract::clock::{Clock, ManualClock, SystemClock};

/// One service to observe.
#[derive(Clone)]
pub struct Target {
    /// The `instance` label of its samples (`127.0.0.1:8080`).
    pub name: String,
    pub transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("name", &self.name).finish()
    }
}

/// What the loop knows of one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TargetStatus {
    pub name: String,
    /// Whether the last tick reached it.
    pub up: bool,
    pub last_ok_ms: Option<u64>,
    /// The last tick's errors for this target (empty when all went well).
    pub errors: Vec<String>,
    pub consecutive_failures: u64,
    /// The `/v1/events` cursor (the last seq read).
    pub events_after: u64,
    pub events_seen: u64,
    /// Events the service's ring dropped before the loop read them.
    pub events_missed: u64,
}

/// A link from a ticket to a service event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventLink {
    pub service: String,
    pub seq: u64,
    pub time_ms: u64,
    #[serde(rename = "type")]
    pub kind: String,
}

/// A ticket filed (or touched) by a tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filed {
    pub id: String,
    pub action: IntakeAction,
    pub fingerprint: String,
}

/// The last tick, as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TickReport {
    pub time_ms: u64,
    pub slos: Vec<SloReport>,
    pub invariants: Vec<InvariantReport>,
    pub anomalies: Vec<AnomalyReport>,
    /// Events the tick reported instead of filing tickets.
    pub events: Vec<HarnessEvent>,
    pub filed: Vec<Filed>,
    /// Claims the tick returned to `open`.
    pub expired_claims: Vec<String>,
    /// Observation, evaluation and store errors (at most
    /// [`crate::run::observer::MAX_TICK_ERRORS`]).
    pub errors: Vec<String>,
}

/// Loop-wide status.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ObserveStatus {
    pub ticks: u64,
    pub targets: Vec<TargetStatus>,
    /// `None` before the first tick.
    pub last_tick: Option<TickReport>,
}

/// The state the loop, the pipeline and the API share. Locks are never
/// held across an await.
pub struct Shared {
    harness: Mutex<Harness>,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    status: Mutex<ObserveStatus>,
}

fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic under the lock leaves plain data behind: keep using it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(harness: Harness, store: Store, clock: Arc<dyn Clock>) -> Shared {
        Shared {
            harness: Mutex::new(harness),
            store: Arc::new(store),
            clock,
            status: Mutex::new(ObserveStatus::default()),
        }
    }

    /// The loop's status, to update after a tick.
    pub(crate) fn status_mut(&self) -> MutexGuard<'_, ObserveStatus> {
        relock(&self.status)
    }
}

impl Shared {
    pub fn harness(&self) -> MutexGuard<'_, Harness> {
        relock(&self.harness)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn status(&self) -> ObserveStatus {
        relock(&self.status).clone()
    }

    /// What a trajectory records as its initial or final state: SLOs and
    /// budgets, invariants (at the last tick), each service's config
    /// version and hash and store, and the ticket's criteria now.
    pub fn snapshot(
        &self,
        ticket: Option<&crate::tickets::Ticket>,
        now_ms: u64,
    ) -> serde_json::Value {
        let tick = self.status().last_tick;
        let harness = self.harness();
        let slos: Vec<serde_json::Value> = harness
            .objectives()
            .slos
            .iter()
            .map(|slo| {
                let report = crate::observe::slo::evaluate(slo, harness.tsdb(), now_ms);
                serde_json::json!({
                    "name": report.name,
                    "sli": report.sli,
                    "error_budget_remaining": report.error_budget_remaining,
                    "burn_rates": report.burn_rates,
                    "firing": report.firing,
                })
            })
            .collect();
        let invariants: Vec<serde_json::Value> = tick
            .as_ref()
            .map(|tick| {
                tick.invariants
                    .iter()
                    .map(|report| serde_json::to_value(report).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        let services: Vec<serde_json::Value> = harness
            .service_documents()
            .map(|(instance, state)| {
                serde_json::json!({
                    "instance": instance,
                    "config_version": state.and_then(|s| s.pointer("/config/version")).cloned(),
                    "config_hash": state.and_then(|s| s.pointer("/config/hash")).cloned(),
                    "store": state.and_then(|s| s.get("store")).cloned(),
                })
            })
            .collect();
        let criteria = ticket.map(|ticket| harness.evaluate_criteria(ticket, now_ms));
        serde_json::json!({
            "time_ms": now_ms,
            "slos": slos,
            "invariants": invariants,
            "services": services,
            "criteria": criteria,
        })
    }

    /// Fills every trajectory snapshot still missing (initial after a
    /// claim, final after a close). Answers the problems met.
    pub fn fill_snapshots(&self, now_ms: u64) -> Vec<String> {
        let store = self.store();
        let missing = match store.snapshots_missing() {
            Ok(missing) => missing,
            Err(error) => return vec![format!("trajectories: {error}")],
        };
        let mut errors = Vec::new();
        for (ticket_id, initial) in missing {
            let ticket = store.get(&ticket_id).ok().flatten();
            let snapshot = self.snapshot(ticket.as_ref(), now_ms);
            if let Err(error) = store.fill_snapshot(&ticket_id, initial, &snapshot) {
                errors.push(format!("trajectory {ticket_id}: {error}"));
            }
        }
        errors
    }
}
