//! What the harness watches and what it judges it against: the Prometheus
//! text format, series selectors, the bounded time-series store, series
//! from a Prometheus server, the objectives files, and their evaluators
//! (SLO burn rates, CEL invariants, anomaly detectors), plus the evidence
//! read from the services' states.
//!
//! The lowest concern folder: it depends on [`crate::quantity`] only.
//! Everything here is pure but [`prometheus`]'s fetch (one HTTP query).

pub mod anomaly;
pub mod condition;
pub mod evidence;
pub mod exposition;
pub mod invariants;
pub mod objectives;
pub mod prometheus;
pub mod selector;
pub mod slo;
pub mod tsdb;
