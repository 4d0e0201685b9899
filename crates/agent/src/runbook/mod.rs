//! Runbooks: YAML decision trees for known failure modes, and the pure
//! engine that walks them (`runbooks/README.md` has the format).
//!
//! - [`Runbook::parse`] / [`load_file`] / [`load_dir`] / [`parse_files`]:
//!   load and validate a runbook. Every error names the file, the step and the field (and the
//!   line where it can be found): unknown fields, unknown next steps,
//!   unreachable steps, cycles without a wait or an observation, a branch
//!   without `default`, unknown actions, parameters the action's schema
//!   refuses, a declared risk below the catalog's, a high-risk proposal
//!   reachable without an approval, unknown variables.
//! - [`select`]: the runbook for a ticket, by source and fingerprint, the
//!   most specific first; `None` when none matches (the agent escalates).
//! - [`RunbookAgent`]: the runbook agent, driving runs against the harness
//!   API one [`RunbookAgent::poll`] at a time (no sleeps: simulated or
//!   real time alike).
//! - [`Runbook::start`] and [`Run::next`]: the engine. It does no I/O and
//!   reads no clock: the agent runs each [`Command`], feeds back its
//!   [`Outcome`] with the time, and the run keeps a [`TraceEntry`] of
//!   everything for the ticket's record.

mod agent;
mod engine;
pub mod expr;
mod format;

pub use agent::{PollReport, RunbookAgent, CLAIM_TTL_MS, MAX_COMMANDS_PER_POLL};
pub use engine::{
    Approval, Command, Outcome, ProposalStatus, ProposedAction, Run, TraceEntry, TraceEvent,
    MAX_TRANSITIONS,
};
pub use format::{
    load_dir, load_file, parse_duration, parse_files, select, ActionSpec, Case, ObserveSource,
    Query, Reduce, Runbook, RunbookError, Source, Step, StepKind, MAX_FOR_EACH,
};
