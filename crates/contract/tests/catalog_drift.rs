//! The committed catalog docs must match what the code generates.

use std::path::Path;

#[test]
fn committed_catalog_docs_match_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for doc in floodgate_contract::generated_docs() {
        let path = root.join(&doc.path);
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!("{}: {error}; run `floodgate catalog --write`", doc.path)
        });
        assert!(
            committed == doc.content,
            "{} has drifted from the code; run `cargo run -p floodgate -- catalog --write`",
            doc.path
        );
    }
}
