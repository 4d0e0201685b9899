//! The harness API's contract, defined once (docs/adr/0028-harness-api-contract.md):
//!
//! - [`routes`]: every route — method, path, the scope it needs, its query
//!   parameters and body — in one table ([`routes::ROUTES`]); the
//!   harness's router and access layer are built from it;
//! - [`scope`]: the harness's token scopes (the parser is the contract's
//!   [`floodgate_contract::tokens`], shared with the service);
//! - [`types`]: the request bodies, shared by the harness (which reads
//!   them) and every client (which writes them);
//! - [`client`]: the typed client ([`client::HarnessClient`]) over the
//!   contract's [`floodgate_contract::client::Transport`], used by agents,
//!   the CLI and the lab;
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the table and
//!   the types, served at `GET /v1/openapi.json` and committed as
//!   `docs/catalog/harness-openapi.json`.
//!
//! Architecture invariant: this crate depends on `floodgate-contract`
//! alone, so a client of the harness never depends on the harness.

pub mod client;
pub mod openapi;
pub mod routes;
pub mod scope;
pub mod types;
