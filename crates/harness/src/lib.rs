//! Floodgate's harness, part 1: watch services, judge them against their
//! objectives, and turn every violation or request into a ticket in a
//! durable, verifiable queue.
//!
//! Deterministic cores, effects at the edges:
//!
//! | module | what | pure? |
//! |---|---|---|
//! | [`objectives`] | objectives files: compact YAML and OpenSLO v1 | yes |
//! | [`exposition`] | Prometheus text format parser | yes |
//! | [`selector`] | series selectors (`name{label="v"}`) | yes |
//! | [`tsdb`] | bounded in-memory time-series store | yes |
//! | [`slo`] | SLI, budget, burn rates, multi-window multi-burn-rate alerts | yes |
//! | [`invariants`] | CEL conditions over metrics and state | yes |
//! | [`anomaly`] | median/MAD detector with warm-up | yes |
//! | [`criteria`] | acceptance criteria: metrics, conditions, evaluation | yes |
//! | [`tickets`] | ticket format, state machine, dedup policy, ticket YAML | yes |
//! | [`alertmanager`] | Alertmanager webhook v4 → ticket drafts | yes |
//! | [`notices`] | expected-change notices: matchers, windows, the factor band (ADR 0011) | yes |
//! | [`reflection`] | self-reflection across tickets: hysteresis, escalating fixes, oscillation, non-convergence, repeated escalation, contested changes → help tickets | yes |
//! | [`report`] | the human review: Markdown and a standalone HTML page | yes |
//! | [`harness`] | the tick: [`Observation`] → [`TickOutput`] | yes |
//! | [`judge`] | the canary judge: effect size, Mann-Whitney U, verdict | yes |
//! | [`policy`] | the pipeline policy file: approval, freezes, budgets, canary | yes |
//! | [`proposal`] | proposals: the one write an agent makes, and their stage records | yes |
//! | [`reflector`] | reflection at work: history from the store, help tickets, suspensions | effects |
//! | [`trajectory`] | trajectories: ATIF steps, outcome, reward | yes |
//! | [`pipeline`] | test → canary → deploy → verify, rollback, gates, pause (ADR 0008) | effects |
//! | [`store`] | SQLite (WAL, synchronous=FULL) ticket queue | effects |
//! | [`ledger`] | the hash chain and `verify(data_dir)` | effects |
//! | [`observe`] | the observe loop: contract client → ticks → tickets | effects |
//! | [`prometheus`] | series from a Prometheus server's query API | effects |
//! | [`api`] | the harness HTTP API (axum) | effects |
//! | [`auth`] | bearer tokens and scopes for the API (a tower layer) | effects |
//!
//! Time is always an argument (milliseconds since the epoch): nothing here
//! reads a clock, so the same code runs under a simulated clock.
//!
//! Architecture invariant: this crate depends on `floodgate-contract` only,
//! never on `floodgate-service` (a test checks the manifest).

pub mod alertmanager;
pub mod anomaly;
pub mod api;
pub mod auth;
pub mod criteria;
pub mod evidence;
pub mod exposition;
pub mod harness;
pub mod incidents;
pub mod invariants;
pub mod judge;
pub mod ledger;
pub mod notices;
pub mod objectives;
pub mod observe;
pub mod pipeline;
pub mod policy;
pub mod prometheus;
pub mod proposal;
pub mod quantity;
pub mod reflection;
pub mod reflector;
pub mod report;
pub mod revert;
pub mod selector;
pub mod slo;
pub mod store;
pub mod tickets;
pub mod trajectory;
pub mod tsdb;

pub use harness::{file_violations, Harness, HarnessConfig, Observation, TickOutput, Violation};
pub use ledger::{verify, VerifyError, VerifyReport};
pub use objectives::Objectives;
pub use observe::{Clock, HarnessState, ManualClock, Observer, SystemClock, Target};
pub use store::Store;
pub use tickets::{NewTicket, Ticket};
