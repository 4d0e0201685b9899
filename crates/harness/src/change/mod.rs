//! A change and what gates it, pure: the proposal (the one write an agent
//! makes, and its stage records), the pipeline policy (approvals, freezes,
//! budgets, the canary), the canary judge, and a revert's plan.
//!
//! The driver that moves a proposal through its stages, calling services
//! and the store, is [`crate::run::pipeline`]: the store persists these
//! types, so they sit below it and the driver above it.
//!
//! Depends on [`crate::tickets`], [`crate::observe`] and [`crate::quantity`].

pub mod judge;
pub mod policy;
pub mod proposal;
pub mod revert;
