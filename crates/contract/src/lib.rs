//! Floodgate's hermetic contract: what a service exposes, defined once.
//!
//! - [`metrics`], [`events`], [`actions`]: the catalogs, with semantic
//!   metadata (meaning, unit, labels, risk, effects, inverse);
//! - [`state`]: the documents a service answers (state, health, config);
//! - [`client`]: the typed client ([`client::ServiceApi`]) over one raw
//!   [`client::Transport`], with an HTTP transport here and an in-process
//!   one in the service crate;
//! - [`dashboard`]: the Grafana dashboard, generated from the metrics
//!   catalog;
//! - one of each shared helper: [`yaml`] (the bounded YAML gate and
//!   loader, errors naming file, line and field), [`clock`] (time, named
//!   by unit, with a manual clock), [`rng`] (the seeded SplitMix64),
//!   [`text`] (cutting at a character boundary), [`time`] (RFC 3339).
//!
//! Architecture invariant: this crate depends on no other Floodgate crate,
//! so operators (the harness, agents) depend on the contract, never on the
//! service. Its only I/O is the HTTP transport (feature `http`).

pub mod actions;
pub mod client;
pub mod clock;
pub mod dashboard;
pub mod events;
pub mod limits;
pub mod metrics;
pub mod rng;
pub mod state;
pub mod text;
pub mod time;
pub mod tokens;
pub mod yaml;

/// A generated document: where it lives in the repository and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedDoc {
    /// Path relative to the repository root.
    pub path: String,
    pub content: String,
}

fn schema_doc<T: schemars::JsonSchema>(name: &str) -> GeneratedDoc {
    let schema = schemars::schema_for!(T);
    let mut content = serde_json::to_string_pretty(&schema.to_value()).unwrap_or_default();
    content.push('\n');
    GeneratedDoc {
        path: format!("docs/catalog/schemas/{name}.json"),
        content,
    }
}

/// Every document generated from the catalogs.
pub fn generated_docs() -> Vec<GeneratedDoc> {
    let mut docs = vec![
        GeneratedDoc {
            path: "docs/catalog/metrics.md".into(),
            content: metrics::markdown(),
        },
        GeneratedDoc {
            path: "docs/catalog/events.md".into(),
            content: events::markdown(),
        },
        GeneratedDoc {
            path: "docs/catalog/actions.md".into(),
            content: actions::markdown(),
        },
        schema_doc::<events::Event>("event"),
        schema_doc::<events::EventPage>("event_page"),
        schema_doc::<state::State>("state"),
        schema_doc::<state::Health>("health"),
        schema_doc::<state::ConfigView>("config"),
        schema_doc::<state::ConfigVersionPage>("config_versions"),
        schema_doc::<state::ConfigApplyRequest>("config_apply_request"),
        schema_doc::<state::TrafficPage>("traffic"),
        schema_doc::<state::ErrorBody>("error"),
        schema_doc::<actions::ActionInfo>("action_info"),
        schema_doc::<actions::ActionRequest>("action_request"),
        schema_doc::<actions::ActionResult>("action_result"),
        dashboard::generated_doc(),
    ];
    for def in actions::CATALOG {
        let mut content =
            serde_json::to_string_pretty(&(def.params_schema)().to_value()).unwrap_or_default();
        content.push('\n');
        docs.push(GeneratedDoc {
            path: format!("docs/catalog/schemas/actions/{}.json", def.name),
            content,
        });
    }
    docs
}
