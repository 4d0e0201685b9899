//! What runs: the drivers that wire the pure cores to the store and to the
//! services. The observe loop ([`observer`]: the clock, the targets, the
//! state the loop and the API share), the pipeline ([`pipeline`]: test →
//! canary → deploy → verify, ADR 0008) and reflection at work
//! ([`reflector`]).
//!
//! Depends on every folder but [`crate::api`], which serves it.

pub mod observer;
pub mod pipeline;
pub mod reflector;
pub mod state;
