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

/// `text` cut to at most `max_bytes` bytes on a character boundary; a cut
/// text ends with a marker saying how long the whole was (the marker fits
/// within `max_bytes` too, unless `max_bytes` is tiny).
pub(crate) fn truncate(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let marker = format!("… [{} bytes, cut]", text.len());
    floodgate_contract::text::cut_marked(text, max_bytes, &marker)
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_respects_the_bound_and_character_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        let long = "é".repeat(100);
        let cut = truncate(&long, 50);
        assert!(cut.len() <= 50, "{} bytes: {cut}", cut.len());
        assert!(cut.ends_with("[200 bytes, cut]"), "{cut}");
        assert!(cut.starts_with('é'));
    }
}
