//! Floodgate's hermetic contract: what the service exposes, defined once.
//!
//! Today: the metrics catalog ([`metrics`]). The service renders its
//! `/metrics` from it, and the docs under `docs/catalog/` are generated from
//! it. Architecture invariant: this crate depends on no other Floodgate crate
//! and does no I/O, so operators (the harness, agents) can depend on it
//! without depending on the service.

pub mod metrics;

/// A generated document: where it lives in the repository and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedDoc {
    /// Path relative to the repository root.
    pub path: &'static str,
    pub content: String,
}

/// Every document generated from the catalogs.
pub fn generated_docs() -> Vec<GeneratedDoc> {
    vec![GeneratedDoc {
        path: "docs/catalog/metrics.md",
        content: metrics::markdown(),
    }]
}
