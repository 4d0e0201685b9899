//! The workspace crate graph, as an explicit allow-list (ADR 0001,
//! ADR 0005): [`ALLOWED`] names, for every workspace crate, the workspace
//! crates it may depend on, with any kind of dependency (normal, dev or
//! build). The test fails on any edge not in the list, on a workspace
//! crate without a row, and on a row for a crate that is not in the
//! workspace; so adding a crate or a dependency between crates is a
//! decision written here.
//!
//! The rules the list keeps (`the_allow_list_keeps_the_rules` checks the
//! list itself):
//!
//! 1. `floodgate-contract` depends on no other workspace crate;
//! 2. only `floodgate-lab`, `floodgate` (the CLI) and `floodgate-fuzz`
//!    reach `floodgate-service`, directly or through other workspace
//!    crates: the harness and the agents reach a service only through the
//!    contract.
//!
//! `cargo metadata --no-deps` lists every workspace member with its
//! declared dependencies (by package name, also when renamed). A crate
//! directory that is not a member fails
//! `every_crate_directory_is_a_workspace_member`. The checking function is
//! tested on synthetic metadata below: a direct, a dev, a renamed and a
//! transitive dependency, a crate without a row, a stale row.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const CONTRACT: &str = "floodgate-contract";
const SERVICE: &str = "floodgate-service";

/// Workspace crate → the workspace crates it may depend on.
const ALLOWED: &[(&str, &[&str])] = &[
    // The contract depends on no workspace crate; the edge on the contract only.
    (CONTRACT, &[]),
    // The edge takes the contract's one text-cut helper.
    ("floodgate-edge", &[CONTRACT]),
    // The rate-limit path.
    ("floodgate-limiter", &[CONTRACT]),
    ("floodgate-store", &[CONTRACT, "floodgate-limiter"]),
    (
        SERVICE,
        &[
            CONTRACT,
            "floodgate-edge",
            "floodgate-limiter",
            "floodgate-store",
        ],
    ),
    // Operators: the contracts, never the service. The harness API's
    // contract depends on the service's contract alone (ADR 0028).
    ("floodgate-harness-contract", &[CONTRACT]),
    (
        "floodgate-harness",
        &[CONTRACT, "floodgate-edge", "floodgate-harness-contract"],
    ),
    ("floodgate-agent", &[CONTRACT, "floodgate-harness-contract"]),
    // The proof, the fuzz targets and the binary: everything.
    (
        "floodgate-lab",
        &[
            "floodgate-agent",
            CONTRACT,
            "floodgate-harness",
            "floodgate-limiter",
            SERVICE,
            "floodgate-store",
        ],
    ),
    (
        "floodgate-fuzz",
        &[
            "floodgate-agent",
            CONTRACT,
            "floodgate-harness",
            "floodgate-lab",
            "floodgate-limiter",
            SERVICE,
            "floodgate-store",
        ],
    ),
    (
        "floodgate",
        &[
            "floodgate-agent",
            CONTRACT,
            "floodgate-edge",
            "floodgate-harness",
            "floodgate-harness-contract",
            "floodgate-lab",
            "floodgate-limiter",
            SERVICE,
            "floodgate-store",
        ],
    ),
];

/// The crates that may reach the service (rule 2).
const SERVICE_USERS: &[&str] = &["floodgate-lab", "floodgate-fuzz", "floodgate"];

type Graph = BTreeMap<String, BTreeSet<String>>;

fn allowed() -> Graph {
    ALLOWED
        .iter()
        .map(|(name, dependencies)| {
            (
                name.to_string(),
                dependencies.iter().map(|d| d.to_string()).collect(),
            )
        })
        .collect()
}

/// Workspace crate name → the workspace crates it depends on (any kind).
fn workspace_graph(metadata: &Value) -> Graph {
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
fn path_to(graph: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
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

/// Every edge of `graph` the allow-list `allowed` does not hold, every
/// crate without a row, every row without a crate.
fn violations_against(graph: &Graph, allowed: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    for (name, dependencies) in graph {
        let Some(may) = allowed.get(name) else {
            found.push(format!(
                "{name} is not in the allow-list: add its row to ALLOWED"
            ));
            continue;
        };
        for dependency in dependencies.difference(may) {
            found.push(format!("{name} depends on {dependency}, not allowed"));
        }
    }
    for name in allowed.keys() {
        if !graph.contains_key(name) {
            found.push(format!("{name} has a row but is not in the workspace"));
        }
    }
    found
}

fn violations(metadata: &Value) -> Vec<String> {
    violations_against(&workspace_graph(metadata), &allowed())
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
fn the_workspace_crate_graph_is_the_allowed_one() {
    let metadata = metadata();
    let graph = workspace_graph(&metadata);
    assert!(graph.contains_key(SERVICE), "{SERVICE} missing: {graph:?}");
    assert_eq!(violations(&metadata), Vec::<String>::new());
}

#[test]
fn the_allow_list_keeps_the_rules() {
    let allowed = allowed();
    assert_eq!(ALLOWED.len(), allowed.len(), "a crate has two rows");
    assert_eq!(allowed[CONTRACT], BTreeSet::new(), "rule 1");
    let reach: Vec<&String> = allowed
        .keys()
        .filter(|name| path_to(&allowed, name, SERVICE).is_some())
        .collect();
    assert_eq!(reach, {
        let mut users: Vec<&str> = SERVICE_USERS.to_vec();
        users.sort_unstable();
        users
    });
    for (name, dependencies) in &allowed {
        for dependency in dependencies {
            assert!(
                allowed.contains_key(dependency),
                "{name}'s row names {dependency}, which has no row"
            );
        }
    }
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

/// The allow-list as metadata: every crate with every dependency it may
/// have.
fn base() -> Vec<Value> {
    ALLOWED
        .iter()
        .map(|(name, dependencies)| {
            let dependencies: Vec<(&str, &str)> = dependencies.iter().map(|d| (*d, "")).collect();
            package(name, &dependencies)
        })
        .collect()
}

fn with(mut packages: Vec<Value>, name: &str, dependency: &str, kind: &str) -> Vec<Value> {
    let package = packages
        .iter_mut()
        .find(|package| package["name"] == name)
        .expect("a crate of the list");
    let kind = if kind.is_empty() {
        Value::Null
    } else {
        json!(kind)
    };
    package["dependencies"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": dependency, "kind": kind, "rename": null}));
    packages
}

#[test]
fn the_allowed_graph_has_no_violations() {
    let packages = with(base(), "floodgate-harness", "serde", "");
    assert_eq!(violations(&synthetic(packages)), Vec::<String>::new());
}

#[test]
fn the_contract_depending_on_a_workspace_crate_is_caught() {
    let packages = with(base(), CONTRACT, "floodgate-limiter", "");
    assert_eq!(
        violations(&synthetic(packages)),
        vec![format!(
            "{CONTRACT} depends on floodgate-limiter, not allowed"
        )]
    );
}

#[test]
fn operators_depending_on_the_service_are_caught_whatever_the_kind() {
    for (name, kind) in [
        ("floodgate-harness", ""),
        ("floodgate-agent", "dev"),
        ("floodgate-harness", "build"),
    ] {
        let packages = with(base(), name, SERVICE, kind);
        assert_eq!(
            violations(&synthetic(packages)),
            vec![format!("{name} depends on {SERVICE}, not allowed")],
            "{name} ({kind})"
        );
    }
}

#[test]
fn a_renamed_dependency_is_caught_by_its_package_name() {
    let mut packages = base();
    let agent = packages
        .iter_mut()
        .find(|package| package["name"] == "floodgate-agent")
        .unwrap();
    agent["dependencies"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": SERVICE, "rename": "backend", "kind": null}));
    assert_eq!(
        violations(&synthetic(packages)),
        vec![format!("floodgate-agent depends on {SERVICE}, not allowed")]
    );
}

#[test]
fn a_way_to_the_service_through_another_crate_is_an_edge_not_allowed() {
    // The harness reaching the service through the lab: the edge
    // harness -> lab is what fails.
    let packages = with(base(), "floodgate-harness", "floodgate-lab", "");
    assert_eq!(
        violations(&synthetic(packages)),
        vec!["floodgate-harness depends on floodgate-lab, not allowed".to_string()]
    );
}

#[test]
fn a_crate_without_a_row_and_a_row_without_a_crate_are_caught() {
    let mut packages = base();
    packages.push(package("floodgate-sim", &[(CONTRACT, "")]));
    packages.retain(|package| package["name"] != "floodgate-edge");
    let packages = packages
        .into_iter()
        .map(|mut package| {
            // Drop the edges to the removed crate so only the row is stale.
            if let Some(dependencies) = package["dependencies"].as_array_mut() {
                dependencies.retain(|dependency| dependency["name"] != "floodgate-edge");
            }
            package
        })
        .collect();
    assert_eq!(
        violations(&synthetic(packages)),
        vec![
            "floodgate-sim is not in the allow-list: add its row to ALLOWED".to_string(),
            "floodgate-edge has a row but is not in the workspace".to_string(),
        ]
    );
}

#[test]
fn a_missing_contract_is_caught() {
    let packages = base()
        .into_iter()
        .filter(|package| package["name"] != CONTRACT)
        .map(|mut package| {
            if let Some(dependencies) = package["dependencies"].as_array_mut() {
                dependencies.retain(|dependency| dependency["name"] != CONTRACT);
            }
            package
        })
        .collect();
    assert_eq!(
        violations(&synthetic(packages)),
        vec![format!("{CONTRACT} has a row but is not in the workspace")]
    );
}
