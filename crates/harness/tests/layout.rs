//! The harness is arranged by concern (ADR 0029): folders under `src/`
//! whose dependencies form no cycle, and modules within a folder that form
//! none either. This test reads the source tree, collects every `crate::`
//! path (and top-level `use super::`) outside comments, and fails naming
//! the cycle it finds and a line that makes each of its edges.
//!
//! It also keeps files short: a file over [`MAX_LINES`] lines must be in
//! [`LONG`] with the reason it is long (and leaves it once it is short).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a source file may be without a reason.
const MAX_LINES: usize = 800;

/// Files allowed over [`MAX_LINES`], each with why (paths under `src/`).
/// An entry whose file is no longer long fails the test: remove it.
const LONG: &[(&str, &str)] = &[
    (
        "api/mod.rs",
        "every route's handler and its parameter parsing, beside the route table; \
         being rewritten onto the harness contract (issue 16, item 1)",
    ),
    (
        "change/judge.rs",
        "the canary judge's statistics (Mann-Whitney U, the normal tail) and \
         their tests against SciPy's values",
    ),
    (
        "change/policy.rs",
        "one file format with its validation, and a unit test per refusal",
    ),
    (
        "harness.rs",
        "the tick: SLOs, invariants and anomalies judged and filed in one \
         ordered pass, plus its unit tests",
    ),
    (
        "learn/reflection.rs",
        "six detectors over one history, each with its thresholds and tests",
    ),
    (
        "observe/evidence.rs",
        "the evidence document and how it is built from the services' states",
    ),
    (
        "observe/objectives.rs",
        "two file formats (compact YAML and OpenSLO v1) with field/line errors \
         and a unit test per refusal",
    ),
    (
        "observe/tsdb.rs",
        "the bounded store: raw and bucketed series, eviction, and the queries \
         over both",
    ),
    (
        "report/mod.rs",
        "the review's view types and two renderings of every section \
         (Markdown and a standalone HTML page)",
    ),
    (
        "run/pipeline.rs",
        "one state machine (test, canary, deploy, verify, roll back) whose \
         stages call services; deciding and calling are not yet apart",
    ),
    (
        "tickets/criteria.rs",
        "the criteria grammar, the metric registry and their evaluation over \
         the time-series store",
    ),
    (
        "tickets/mod.rs",
        "the ticket format, its state machine, the intake policy and the \
         ticket file parser, with a unit test per transition",
    ),
    (
        "tickets/notices.rs",
        "notice drafts, matching, the band and the ledger fold, with their \
         unit tests",
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A file's module path: `lib.rs` → `[]`, `store/mod.rs` → `[store]`,
/// `store/ledger.rs` → `[store, ledger]`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

/// One reference from a module to another, and where it is written.
#[derive(Debug, Clone)]
struct Reference {
    target: Vec<String>,
    file: String,
    line: usize,
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a use tree starting at `text` names: `a::b::{c, d::e}` →
/// `a::b::c`, `a::b::d::e`. Stops at anything that is not a path.
fn use_tree(text: &str, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let mut path = prefix.to_vec();
    let mut i = 0;
    loop {
        if chars.get(i) == Some(&'{') {
            i += 1;
            loop {
                while chars.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
                    i += 1;
                }
                if i >= chars.len() || chars[i] == '}' {
                    return i + 1;
                }
                let rest: String = chars[i..].iter().collect();
                let used = use_tree(&rest, &path, out);
                if used == 0 {
                    return i;
                }
                i += used;
            }
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        if i > start {
            path.push(chars[start..i].iter().collect());
        }
        if i > start && chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i += 2;
            continue;
        }
        if path.len() > prefix.len() {
            out.push(path);
        }
        return i;
    }
}

/// The modules `file` refers to: every `crate::` path (its longest prefix
/// that is a module), and top-level `use super::` paths.
fn references(
    file: &str,
    module: &[String],
    text: &str,
    modules: &BTreeSet<Vec<String>>,
    root_items: &mut Vec<String>,
) -> Vec<Reference> {
    let mut found = Vec::new();
    // A multi-line `use crate::{...}` is read whole: join until balanced.
    let mut pending = String::new();
    let mut pending_line = 0;
    for (number, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = match code.find("//") {
            Some(at) if !code[..at].contains('"') => &code[..at],
            _ => code,
        };
        if pending.is_empty() {
            pending_line = number + 1;
        }
        pending.push_str(code);
        pending.push(' ');
        let opens_use = ["use ", "pub use ", "pub(crate) use "]
            .iter()
            .any(|start| pending.starts_with(start));
        if opens_use && pending.matches('{').count() > pending.matches('}').count() {
            continue;
        }
        let joined = std::mem::take(&mut pending);
        let mut paths = Vec::new();
        let mut rest = joined.as_str();
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| is_ident(c) || c == '$') {
                continue;
            }
            use_tree(rest, &[], &mut paths);
        }
        if line.starts_with("use super::") || line.starts_with("pub use super::") {
            let parent = &module[..module.len().saturating_sub(1)];
            let after = &joined[joined.find("super::").expect("super") + "super::".len()..];
            let mut relative = Vec::new();
            use_tree(after, parent, &mut relative);
            paths.extend(relative);
        }
        for path in paths {
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|prefix| modules.contains(prefix))
                .unwrap_or_default();
            if target.is_empty() {
                root_items.push(format!("{file}:{pending_line}: crate::{}", path.join("::")));
                continue;
            }
            found.push(Reference {
                target,
                file: file.to_owned(),
                line: pending_line,
            });
        }
    }
    found
}

/// The source tree: each module and what it refers to.
struct Tree {
    modules: BTreeMap<Vec<String>, (String, Vec<Reference>)>,
    root_items: Vec<String>,
}

fn read_tree() -> Tree {
    let root = src();
    let files: Vec<(String, Vec<String>, String)> = rust_files(&root)
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&root).expect("under src").to_path_buf();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (
                relative.to_string_lossy().into_owned(),
                module_of(&relative),
                text,
            )
        })
        .collect();
    let names: BTreeSet<Vec<String>> = files.iter().map(|(_, module, _)| module.clone()).collect();
    let mut root_items = Vec::new();
    let modules = files
        .iter()
        .map(|(file, module, text)| {
            let refs = references(file, module, text, &names, &mut root_items);
            (module.clone(), (file.clone(), refs))
        })
        .collect();
    Tree {
        modules,
        root_items,
    }
}

/// Edges between nodes, each with the first reference that makes it.
type Graph = BTreeMap<String, BTreeMap<String, Reference>>;

/// The first cycle in `graph` (depth first, in name order), as its nodes.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

fn describe(cycle: &[String], graph: &Graph) -> String {
    let mut text = format!("import cycle: {}\n", cycle.join(" -> "));
    for pair in cycle.windows(2) {
        let reference = &graph[&pair[0]][&pair[1]];
        text.push_str(&format!(
            "  {} -> {}: src/{}:{} uses crate::{}\n",
            pair[0],
            pair[1],
            reference.file,
            reference.line,
            reference.target.join("::")
        ));
    }
    text
}

fn folder_graph(tree: &Tree) -> Graph {
    let mut graph = Graph::new();
    for (module, (_, refs)) in &tree.modules {
        let Some(from) = module.first() else { continue }; // lib.rs declares
        for reference in refs {
            let to = &reference.target[0];
            if to != from {
                graph
                    .entry(from.clone())
                    .or_default()
                    .entry(to.clone())
                    .or_insert_with(|| reference.clone());
            }
        }
        graph.entry(from.clone()).or_default();
    }
    graph
}

/// Within each folder: its modules (`mod.rs` by the folder's name).
fn module_graphs(tree: &Tree) -> BTreeMap<String, Graph> {
    let mut graphs: BTreeMap<String, Graph> = BTreeMap::new();
    for (module, (_, refs)) in &tree.modules {
        let Some(folder) = module.first() else {
            continue;
        };
        let name = |path: &[String]| path.get(1).cloned().unwrap_or_else(|| "mod".to_owned());
        let graph = graphs.entry(folder.clone()).or_default();
        let from = name(module);
        graph.entry(from.clone()).or_default();
        for reference in refs {
            if reference.target.first() != Some(folder) {
                continue;
            }
            let to = name(&reference.target);
            if to != from {
                graph
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| reference.clone());
            }
        }
    }
    graphs
}

#[test]
fn the_folders_of_the_harness_import_no_cycle() {
    let tree = read_tree();
    let graph = folder_graph(&tree);
    assert!(graph.len() > 5, "too few folders read: {:?}", graph.keys());
    if let Some(cycle) = find_cycle(&graph) {
        panic!("{}", describe(&cycle, &graph));
    }
}

#[test]
fn the_modules_of_each_folder_import_no_cycle() {
    let tree = read_tree();
    let mut cycles = Vec::new();
    for (folder, graph) in module_graphs(&tree) {
        if let Some(cycle) = find_cycle(&graph) {
            cycles.push(format!("in {folder}/: {}", describe(&cycle, &graph)));
        }
    }
    assert!(cycles.is_empty(), "{}", cycles.join("\n"));
}

#[test]
fn modules_name_what_they_use_by_its_module_not_the_crate_root() {
    // The root re-exports are for other crates; inside the crate a path
    // through them would hide an edge from the cycle check.
    let tree = read_tree();
    assert!(
        tree.root_items.is_empty(),
        "use the item's module path:\n{}",
        tree.root_items.join("\n")
    );
}

#[test]
fn the_cycle_check_sees_a_cycle_and_names_it() {
    let modules: BTreeSet<Vec<String>> = [vec!["a".to_owned()], vec!["b".to_owned()]].into();
    let mut root_items = Vec::new();
    let a = references(
        "a.rs",
        &["a".to_owned()],
        "use crate::b::{self, B};\n",
        &modules,
        &mut root_items,
    );
    let b = references(
        "b.rs",
        &["b".to_owned()],
        "// crate::a in a comment is no edge\nfn f() {\n    crate::a::g();\n}\n",
        &modules,
        &mut root_items,
    );
    let tree = Tree {
        modules: [
            (vec!["a".to_owned()], ("a.rs".to_owned(), a)),
            (vec!["b".to_owned()], ("b.rs".to_owned(), b)),
        ]
        .into(),
        root_items,
    };
    let graph = folder_graph(&tree);
    let cycle = find_cycle(&graph).expect("a cycle");
    let text = describe(&cycle, &graph);
    assert_eq!(
        text,
        "import cycle: a -> b -> a\n  a -> b: src/a.rs:1 uses crate::b\n  b -> a: src/b.rs:3 uses crate::a\n"
    );
}

#[test]
fn a_multi_line_use_group_is_read_whole() {
    let modules: BTreeSet<Vec<String>> = [
        vec!["x".to_owned()],
        vec!["x".to_owned(), "y".to_owned()],
        vec!["z".to_owned()],
    ]
    .into();
    let mut root_items = Vec::new();
    let text = "use crate::{\n    x::y::{Y, W},\n    z::Z,\n};\nuse crate::Root;\n";
    let refs = references("t.rs", &["t".to_owned()], text, &modules, &mut root_items);
    let targets: Vec<String> = refs.iter().map(|r| r.target.join("::")).collect();
    assert_eq!(targets, ["x::y", "x::y", "z"]);
    assert_eq!(root_items, ["t.rs:5: crate::Root"]);
}

#[test]
fn no_file_is_long_without_a_reason() {
    let root = src();
    let listed: BTreeMap<&str, &str> = LONG.iter().copied().collect();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for path in rust_files(&root) {
        let relative = path
            .strip_prefix(&root)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let lines = std::fs::read_to_string(&path)
            .expect("source")
            .lines()
            .count();
        let reason = listed.get(relative.as_str());
        if reason.is_some() {
            seen.insert(relative.clone());
        }
        match (lines > MAX_LINES, reason) {
            (true, None) => problems.push(format!(
                "src/{relative}: {lines} lines (over {MAX_LINES}): split it, or add it to LONG with why"
            )),
            (false, Some(_)) => problems.push(format!(
                "src/{relative}: {lines} lines, no longer long: remove it from LONG"
            )),
            _ => {}
        }
    }
    for name in listed.keys() {
        if !seen.contains(*name) {
            problems.push(format!("LONG names src/{name}, which does not exist"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
