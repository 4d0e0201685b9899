//! Floodgate's agents: everything that works tickets from the outside of
//! the harness (docs/adr/0008-agents-and-pipeline.md).
//!
//! | module | what |
//! |---|---|
//! | [`client`] | the harness agent API over the contract's raw `Transport` |
//! | [`tools`] | one tool catalog, shared by MCP and the LLM agent |
//! | [`mcp`] | the MCP server (rmcp): stdio and streamable HTTP |
//! | [`llm`] | the LLM agent over an OpenAI-compatible chat-completions API |
//! | [`runbook`] | runbooks (YAML decision trees) and the runbook agent |
//!
//! An agent never calls a service: its only write is a proposal, which the
//! harness's pipeline tests, canaries, deploys and verifies.

pub mod client;
pub mod llm;
pub mod mcp;
pub mod runbook;
pub mod tools;
