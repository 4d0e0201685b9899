//! The crate graph keeps the contract the only way into a service
//! (ADR 0001, ADR 0005):
//!
//! 1. `floodgate-contract` depends on no other workspace crate;
//! 2. no workspace crate whose name contains `harness`, `agent` or `sim`
//!    depends on `floodgate-service`, directly or through other workspace
//!    crates, with any kind of dependency (normal, dev or build).
//!
//! Why this fails when such a crate is added: `cargo metadata --no-deps`
//! lists every workspace member with its declared dependencies (by package
//! name, also when renamed). A new crate is either a member — then it is in
//! the metadata, and `violations` walks its dependencies through every
//! workspace crate to `floodgate-service` — or it is not, and then
//! `every_crate_directory_is_a_workspace_member` fails first. The checking
//! function itself is tested on synthetic metadata below, including a
//! direct, a dev, a renamed and a transitive dependency.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const CONTRACT: &str = "floodgate-contract";
const SERVICE: &str = "floodgate-service";
/// Name fragments of crates that must reach a service only through the
/// contract.
const OPERATOR_FRAGMENTS: &[&str] = &["harness", "agent", "sim"];

/// Workspace crate name → the workspace crates it depends on (any kind).
fn workspace_graph(metadata: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let members: BTreeSet<String> = packages
        .iter()
        .filter_map(|package| package["name"].as_str().map(str::to_string))
        .collect();
    packages
        .iter()
        .filter_map(|package| {
            let name = package["name"].as_str()?.to_string();
            let dependencies = package["dependencies"]
                .as_array()
                .map(|dependencies| {
                    dependencies
                        .iter()
                        .filter_map(|dependency| dependency["name"].as_str())
                        .filter(|dependency| members.contains(*dependency) && *dependency != name)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Some((name, dependencies))
        })
        .collect()
}

/// The path from `from` to `to` through the graph, if there is one.
fn path_to(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut previous: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from.to_string()]);
    let mut seen = BTreeSet::from([from.to_string()]);
    while let Some(current) = queue.pop_front() {
        for next in graph.get(&current).into_iter().flatten() {
            if !seen.insert(next.clone()) {
                continue;
            }
            previous.insert(next.clone(), current.clone());
            if next == to {
                let mut path = vec![to.to_string()];
                let mut at = to.to_string();
                while let Some(before) = previous.get(&at) {
                    path.push(before.clone());
                    at = before.clone();
                }
                path.reverse();
                return Some(path);
            }
            queue.push_back(next.clone());
        }
    }
    None
}

/// Every breach of the two rules, described.
fn violations(metadata: &Value) -> Vec<String> {
    let graph = workspace_graph(metadata);
    let mut found = Vec::new();
    match graph.get(CONTRACT) {
        None => found.push(format!("{CONTRACT} is not in the workspace")),
        Some(dependencies) => {
            for dependency in dependencies {
                found.push(format!("{CONTRACT} depends on {dependency}"));
            }
        }
    }
    for name in graph.keys() {
        let lower = name.to_ascii_lowercase();
        if !OPERATOR_FRAGMENTS
            .iter()
            .any(|fragment| lower.contains(fragment))
        {
            continue;
        }
        if let Some(path) = path_to(&graph, name, SERVICE) {
            found.push(format!(
                "{name} depends on {SERVICE}: {}",
                path.join(" -> ")
            ));
        }
    }
    found
}

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo())
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn the_workspace_crate_graph_keeps_operators_on_the_contract() {
    let metadata = metadata();
    let graph = workspace_graph(&metadata);
    assert!(graph.contains_key(SERVICE), "{SERVICE} missing: {graph:?}");
    assert_eq!(violations(&metadata), Vec::<String>::new());
}

#[test]
fn every_crate_directory_is_a_workspace_member() {
    let metadata = metadata();
    let manifests: BTreeSet<std::path::PathBuf> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|package| package["manifest_path"].as_str())
        .filter_map(|path| Path::new(path).canonicalize().ok())
        .collect();
    let entries = std::fs::read_dir(repo().join("crates")).expect("crates/");
    for entry in entries {
        let manifest = entry.expect("directory entry").path().join("Cargo.toml");
        if !manifest.exists() {
            continue;
        }
        let manifest = manifest.canonicalize().expect("canonical path");
        assert!(
            manifests.contains(&manifest),
            "{} is not a workspace member, so the crate-graph check cannot see it",
            manifest.display()
        );
    }
}

// ---- the checking function on synthetic metadata ---------------------------

fn package(name: &str, dependencies: &[(&str, &str)]) -> Value {
    json!({
        "name": name,
        "dependencies": dependencies
            .iter()
            .map(|(dependency, kind)| {
                let kind = if kind.is_empty() { Value::Null } else { json!(kind) };
                json!({"name": dependency, "kind": kind, "rename": null})
            })
            .collect::<Vec<_>>(),
    })
}

fn synthetic(packages: Vec<Value>) -> Value {
    json!({"packages": packages, "version": 1})
}

fn base() -> Vec<Value> {
    vec![
        package("floodgate-limiter", &[("serde", "")]),
        package(CONTRACT, &[("serde", ""), ("schemars", "")]),
        package(SERVICE, &[(CONTRACT, ""), ("floodgate-limiter", "")]),
        package("floodgate", &[(SERVICE, ""), (CONTRACT, "")]),
    ]
}

#[test]
fn a_clean_graph_has_no_violations() {
    let mut packages = base();
    packages.push(package(
        "floodgate-harness",
        &[(CONTRACT, ""), ("serde", "")],
    ));
    assert_eq!(violations(&synthetic(packages)), Vec::<String>::new());
}

#[test]
fn the_contract_depending_on_a_workspace_crate_is_caught() {
    let mut packages = base();
    packages[1] = package(CONTRACT, &[("floodgate-limiter", "")]);
    assert_eq!(
        violations(&synthetic(packages)),
        vec![format!("{CONTRACT} depends on floodgate-limiter")]
    );
}

#[test]
fn a_missing_contract_is_caught() {
    let mut packages = base();
    packages.remove(1);
    assert_eq!(
        violations(&synthetic(packages)),
        vec![format!("{CONTRACT} is not in the workspace")]
    );
}

#[test]
fn operator_crates_depending_on_the_service_are_caught() {
    for (name, kind) in [
        ("floodgate-harness", ""),
        ("floodgate-agent", "dev"),
        ("floodgate-sim", "build"),
        ("Floodgate-Agents-Runner", ""),
    ] {
        let mut packages = base();
        packages.push(package(name, &[(CONTRACT, ""), (SERVICE, kind)]));
        assert_eq!(
            violations(&synthetic(packages)),
            vec![format!("{name} depends on {SERVICE}: {name} -> {SERVICE}")],
            "{name} ({kind})"
        );
    }
}

#[test]
fn a_renamed_dependency_is_caught_by_its_package_name() {
    let mut packages = base();
    packages.push(json!({
        "name": "floodgate-harness",
        "dependencies": [{"name": SERVICE, "rename": "backend", "kind": null}],
    }));
    assert_eq!(violations(&synthetic(packages)).len(), 1);
}

#[test]
fn a_transitive_dependency_through_workspace_crates_is_caught() {
    let mut packages = base();
    packages.push(package("floodgate-sim", &[("floodgate-runtime", "")]));
    packages.push(package("floodgate-runtime", &[("floodgate", "")]));
    assert_eq!(
        violations(&synthetic(packages)),
        vec![format!(
            "floodgate-sim depends on {SERVICE}: floodgate-sim -> floodgate-runtime -> floodgate -> {SERVICE}"
        )]
    );
}

#[test]
fn other_crates_may_depend_on_the_service() {
    let mut packages = base();
    packages.push(package("floodgate-bench", &[(SERVICE, "")]));
    assert_eq!(violations(&synthetic(packages)), Vec::<String>::new());
}
