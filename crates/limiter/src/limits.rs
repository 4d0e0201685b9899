//! Every bound this crate enforces, named, with the reason for its value.
//! The table in the crate's README lists them.

/// Most descriptors (nodes of every domain's descriptor tree, nested ones
/// included) one config may define, over all its files. A dry run compiles
/// and replays the whole config; this keeps one to a bounded time and
/// memory (`floodgate-service`'s `benches/config_actions.rs` measures
/// checking, dry-running and applying configs of 1k, 8k and 32k
/// descriptors: linear, ADR 0021), and it fits the YAML gate's node bound
/// (`floodgate_contract::limits::YAML_MAX_NODES`, about 12 nodes a
/// descriptor).
pub const MAX_DESCRIPTORS: usize = 32_768;
