//! Architecture invariant: the harness reaches services through the
//! contract, never through the service's code. It depends on
//! floodgate-contract, its own API's contract (floodgate-harness-contract,
//! which depends on floodgate-contract alone) and the edge (which depends
//! on the contract alone); the contract depends on none.

use std::path::Path;

/// The Floodgate crates a manifest's dependency tables name.
fn floodgate_dependencies(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(manifest))
        .unwrap_or_else(|error| panic!("{manifest}: {error}"));
    let mut in_dependencies = false;
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line.contains("dependencies");
            continue;
        }
        if in_dependencies {
            if let Some(name) = line.split(['=', '.', ' ']).next() {
                if name.starts_with("floodgate") {
                    found.push(name.to_owned());
                }
            }
        }
    }
    found
}

#[test]
fn the_harness_depends_on_the_contract_only() {
    // The edge (listeners, the open-mode guard; ADR 0019) is no service: it
    // serves what it is given and depends on no Floodgate crate but the
    // contract (for its shared helpers: the text cut).
    assert_eq!(
        floodgate_dependencies("Cargo.toml"),
        [
            "floodgate-contract",
            "floodgate-harness-contract",
            "floodgate-edge"
        ]
    );
    assert_eq!(
        floodgate_dependencies("../harness-contract/Cargo.toml"),
        ["floodgate-contract"]
    );
    assert_eq!(
        floodgate_dependencies("../edge/Cargo.toml"),
        ["floodgate-contract"]
    );
    assert_eq!(
        floodgate_dependencies("../contract/Cargo.toml"),
        Vec::<String>::new()
    );
}
