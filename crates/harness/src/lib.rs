//! Floodgate's harness: watch services, judge them against their
//! objectives, and turn every violation or request into a ticket in a
//! durable, verifiable queue; move agents' proposals through a pipeline;
//! learn from the work.
//!
//! Arranged by concern (ADR 0029), each folder depending only on the ones
//! above it in this table (`tests/layout.rs` fails on a cycle):
//!
//! | module | what | pure? |
//! |---|---|---|
//! | [`quantity`] | units: durations, times, percentages, factors | yes |
//! | [`observe`] | signals and objectives: exposition, selectors, tsdb, objectives, SLOs, invariants, anomalies, evidence, Prometheus | yes (but the Prometheus fetch) |
//! | [`tickets`] | tickets and their state machine, criteria, incidents, notices, Alertmanager intake | yes |
//! | [`change`] | proposals, the pipeline policy, the canary judge, reverts | yes |
//! | [`learn`] | trajectories and reflection | yes |
//! | [`harness`] | the tick: [`Observation`] → [`TickOutput`] | yes |
//! | [`store`] | SQLite (WAL, synchronous=FULL): one repository per table, the hash-chained ledger, the read-only archive | effects |
//! | [`report`] | the human review: views over the archive, Markdown and HTML | effects (reads) |
//! | [`run`] | the drivers: the observe loop, the pipeline, reflection at work | effects |
//! | [`api`] | the harness HTTP API (axum) and its tokens | effects |
//!
//! Time is always an argument (milliseconds since the epoch): nothing here
//! reads a clock, so the same code runs under a simulated clock.
//!
//! Architecture invariant: this crate depends on `floodgate-contract` only,
//! never on `floodgate-service` (a test checks the manifest).

pub mod api;
pub mod change;
pub mod harness;
pub mod learn;
pub mod observe;
pub mod quantity;
pub mod report;
pub mod run;
pub mod store;
pub mod tickets;

pub use harness::{Harness, HarnessConfig, Observation, TickOutput, Violation};
pub use observe::objectives::Objectives;
pub use run::observer::{file_violations, HarnessState, Observer};
pub use run::state::{Clock, ManualClock, SystemClock, Target};
pub use store::ledger::{verify, VerifyError, VerifyReport};
pub use store::Store;
pub use tickets::{NewTicket, Ticket};
