//! Every bound this crate enforces, named, with the reason for its value.
//! The table in the crate's README lists them.

/// Deepest nesting of collections (mappings and sequences) a YAML document
/// may have. Floodgate's deepest documents (limits configs with nested
/// descriptors: each level is a sequence and a mapping) stay far below it;
/// serde_norway gives up at 128 anyway, but only after loading every event
/// first (a 10,000-level flow took seconds to refuse), so the pre-scan
/// refuses as soon as the bound is crossed.
pub const YAML_MAX_DEPTH: usize = 64;

/// Most nodes (scalars, mappings, sequences) a YAML text may hold, over all
/// its documents. The deserialiser keeps every event of a document in
/// memory (about 100 bytes each), so this bounds a load at a few tens of
/// MiB whatever the text; the largest config the service accepts
/// (`floodgate_limiter::limits::MAX_DESCRIPTORS` descriptors, about 12
/// nodes each) fits.
pub const YAML_MAX_NODES: usize = 500_000;

/// Longest key or field name a refusal quotes in its path, in bytes.
pub const YAML_PATH_KEY_BYTES: usize = 64;
