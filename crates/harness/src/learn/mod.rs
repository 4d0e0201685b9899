//! What the harness learns from its own work, pure: trajectories (ATIF
//! steps, outcome, reward) and reflection across tickets (findings, help
//! tickets). The store writes trajectory steps in the transaction of the
//! work they record, so these sit below it; reflection at work (history
//! from the store, suspensions) is [`crate::run::reflector`].
//!
//! Depends on [`crate::change`], [`crate::tickets`], [`crate::observe`]
//! and [`crate::quantity`].

pub mod reflection;
pub mod trajectory;
