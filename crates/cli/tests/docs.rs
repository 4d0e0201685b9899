//! Every doc page that names code names code that exists.
//!
//! The pages: README.md, AGENTS.md, ARCHITECTURE.md, crates/*/README.md,
//! and every Markdown file under docs/, examples/, runbooks/ and
//! scenarios/. In each, the repository paths it names are checked
//! against the working tree:
//!
//! - relative Markdown links (`[text](path)`, `[text]: path`), resolved
//!   from the page's folder, the `#fragment` dropped;
//! - words in backticks and in fenced code blocks that start with a
//!   top-level folder of the repository (`crates/`, `docs/`, `scripts/`,
//!   `.ci/`, `examples/`, …), or with a crate's folder under `crates/`
//!   (`harness/src/pipeline.rs`, as AGENTS.md's table writes them);
//! - words in backticks that start with `src/`, `tests/` or `benches/`,
//!   read in the crate the page is the README of, or else in the crate
//!   the same line named last (`crates/store/` … `src/redis.rs`).
//!
//! A word may stand for many files: `*` matches within one path segment
//! (`docs/man/floodgate*.1`), and a segment that is a placeholder
//! (`<target>`, `{pid}`, `NAME.rs`, `NNNN-…`) is not checked, only what
//! comes before it. A failure names the page, the line and the path.
//!
//! ARCHITECTURE.md's code map must also name every crate in crates/.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// The pages checked, relative to the repository root.
fn pages(root: &Path) -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = ["README.md", "AGENTS.md", "ARCHITECTURE.md"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let mut folders: Vec<PathBuf> = ["docs", "examples", "runbooks", "scenarios"]
        .iter()
        .map(PathBuf::from)
        .filter(|folder| root.join(folder).is_dir())
        .collect();
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(root.join(&folder)).expect("a readable folder") {
            let entry = entry.expect("a directory entry");
            let relative = folder.join(entry.file_name());
            if entry.file_type().expect("a file type").is_dir() {
                folders.push(relative);
            } else if relative.extension().is_some_and(|ext| ext == "md") {
                pages.push(relative);
            }
        }
    }
    for entry in std::fs::read_dir(root.join("crates")).expect("crates/ is readable") {
        let readme = Path::new("crates")
            .join(entry.expect("a directory entry").file_name())
            .join("README.md");
        if root.join(&readme).exists() {
            pages.push(readme);
        }
    }
    pages.sort();
    pages
}

/// The repository's top-level folders (and dot-folders) a word may start
/// with to be read as a path.
fn top_folders(root: &Path) -> BTreeSet<String> {
    std::fs::read_dir(root)
        .expect("the root is readable")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name != ".git" && name != "target")
        .collect()
}

/// The crate folders under crates/.
fn crate_folders(root: &Path) -> BTreeSet<String> {
    std::fs::read_dir(root.join("crates"))
        .expect("crates/ is readable")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect()
}

/// One path a page names: where, and as written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    line: usize,
    /// Relative to the repository root.
    path: String,
}

/// What the page at `page` (relative to the root) names on each line.
struct Scanner {
    top: BTreeSet<String>,
    crates: BTreeSet<String>,
}

impl Scanner {
    /// The repository path a word stands for, if it looks like one.
    fn word_path(&self, word: &str) -> Option<String> {
        let word = word
            .trim_start_matches(['(', '[', '"', '\'', '='])
            .trim_end_matches([',', ';', ':', ')', ']', '"', '\'', '.', '`']);
        // `--config=examples/limits.yaml`, `path:42`, `file.md#section`.
        let word = word.rsplit_once('=').map_or(word, |(_, after)| after);
        let word = word.split('#').next().unwrap_or(word);
        let word = strip_line_number(word);
        let word = word.strip_prefix("./").unwrap_or(word);
        let (first, rest) = word.split_once('/')?;
        if rest.contains("://") || word.contains("//") {
            return None;
        }
        if self.top.contains(first) {
            return Some(word.to_string());
        }
        // AGENTS.md writes `harness/src/pipeline.rs` for crates/harness/….
        let (second, _) = rest.split_once('/')?;
        if self.crates.contains(first) && matches!(second, "src" | "tests" | "benches" | "lua") {
            return Some(format!("crates/{word}"));
        }
        None
    }

    /// The relative link target `target`, resolved from `page`'s folder.
    fn link_path(&self, page: &Path, target: &str) -> Option<String> {
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        let target = target.split_whitespace().next()?;
        if target.is_empty()
            || target.starts_with('#')
            || target.contains("://")
            || target.starts_with("mailto:")
        {
            return None;
        }
        let target = target.split('#').next().unwrap_or(target);
        let folder = page.parent().unwrap_or(Path::new(""));
        Some(normalise(&folder.join(target)))
    }

    /// The crate a page is the README of (`crates/cli/README.md` → `cli`).
    fn page_crate(&self, page: &Path) -> Option<String> {
        let mut parts = page.iter().map(|part| part.to_string_lossy());
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(first), Some(name), Some(file), None)
                if first == "crates" && file == "README.md" && self.crates.contains(&*name) =>
            {
                Some(name.into_owned())
            }
            _ => None,
        }
    }

    /// A word read with the crate in context: `src/…`, `tests/…`,
    /// `benches/…` are that crate's; a word naming `crates/NAME/…` makes
    /// NAME the context for the rest of the line.
    fn word_in_crate(&self, word: &str, context: &mut Option<String>) -> Option<String> {
        if let Some(path) = self.word_path(word) {
            if let Some(name) = path
                .strip_prefix("crates/")
                .and_then(|rest| rest.split('/').next())
                .filter(|name| self.crates.contains(*name))
            {
                *context = Some(name.to_string());
            }
            return Some(path);
        }
        let name = context.as_ref()?;
        let word = word
            .trim_start_matches(['(', '[', '"', '\''])
            .trim_end_matches([',', ';', ':', ')', ']', '"', '\'', '.']);
        let word = strip_line_number(word.split('#').next().unwrap_or(word));
        let (first, _) = word.split_once('/')?;
        matches!(first, "src" | "tests" | "benches").then(|| format!("crates/{name}/{word}"))
    }

    fn scan(&self, page: &Path, text: &str) -> Vec<Named> {
        let mut found = Vec::new();
        let mut fenced = false;
        let page_crate = self.page_crate(page);
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                fenced = !fenced;
                continue;
            }
            let mut context = page_crate.clone();
            let mut push = |path: String| {
                found.push(Named {
                    line: line_no,
                    path,
                })
            };
            if fenced {
                for word in line.split_whitespace() {
                    if let Some(path) = self.word_path(word) {
                        push(path);
                    }
                }
                continue;
            }
            for span in code_spans(line) {
                for word in span.split_whitespace() {
                    if let Some(path) = self.word_in_crate(word, &mut context) {
                        push(path);
                    }
                }
            }
            let outside = without_code_spans(line);
            for target in link_targets(&outside) {
                if let Some(path) = self.link_path(page, &target) {
                    push(path);
                }
            }
        }
        found
    }
}

/// `a/b/../c` → `a/c`, `./a` → `a`.
fn normalise(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                if parts.pop().is_none() {
                    parts.push("..".to_string());
                }
            }
            std::path::Component::CurDir => {}
            other => parts.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    let mut joined = parts.join("/");
    if path.to_string_lossy().ends_with('/') {
        joined.push('/');
    }
    joined
}

/// `crates/a.rs:42` → `crates/a.rs`.
fn strip_line_number(word: &str) -> &str {
    match word.rsplit_once(':') {
        Some((before, after))
            if !after.is_empty() && after.chars().all(|c| c.is_ascii_digit() || c == '-') =>
        {
            before
        }
        _ => word,
    }
}

/// The text inside each pair of backticks on a line.
fn code_spans(line: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let fence = &rest[start..start + ticks];
        let after = &rest[start + ticks..];
        let Some(end) = after.find(fence) else { break };
        spans.push(after[..end].to_string());
        rest = &after[end + ticks..];
    }
    spans
}

/// The line with its code spans blanked out (links are not read in code).
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let fence = &rest[start..start + ticks];
        let after = &rest[start + ticks..];
        let Some(end) = after.find(fence) else { break };
        out.push_str(&rest[..start]);
        out.push_str("``");
        rest = &after[end + ticks..];
    }
    out.push_str(rest);
    out
}

/// Targets of `[text](target)` links and `[label]: target` definitions.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        if let Some((label, target)) = trimmed.split_once("]:") {
            if !label.contains(']') {
                targets.push(target.trim().to_string());
            }
        }
    }
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        // The target ends at the parenthesis that closes this one.
        let mut depth = 0usize;
        let mut end = None;
        for (index, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => {
                    end = Some(index);
                    break;
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        let Some(end) = end else { break };
        targets.push(after[..end].to_string());
        rest = &after[end..];
    }
    targets
}

/// Whether a path segment stands for a name rather than being one:
/// `<target>`, `{pid}`, `NAME.rs`, `NNNN-title.md`, `…`.
fn is_placeholder(segment: &str) -> bool {
    if segment.contains(['<', '>', '{', '}', '…', '$']) || segment.contains("...") {
        return true;
    }
    let stem = segment.split('.').next().unwrap_or(segment);
    let stem = stem.split('-').next().unwrap_or(stem);
    let letters: Vec<char> = stem.chars().filter(char::is_ascii_alphabetic).collect();
    letters.len() >= 2
        && letters.iter().all(char::is_ascii_uppercase)
        && ![
            "README",
            "AGENTS",
            "ARCHITECTURE",
            "LICENSE",
            "CHANGELOG",
            "STYLE",
        ]
        .contains(&stem)
}

/// `*` within one segment, as a shell reads it.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `path` (relative to `root`) names something in the tree.
fn exists(root: &Path, path: &str) -> bool {
    let mut candidates = vec![root.to_path_buf()];
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        if is_placeholder(segment) {
            return !candidates.is_empty();
        }
        let mut next = Vec::new();
        for candidate in &candidates {
            if segment.contains('*') {
                let Ok(entries) = std::fs::read_dir(candidate) else {
                    continue;
                };
                for entry in entries.filter_map(Result::ok) {
                    if glob_matches(segment, &entry.file_name().to_string_lossy()) {
                        next.push(entry.path());
                    }
                }
            } else {
                let joined = candidate.join(segment);
                if joined.exists() {
                    next.push(joined);
                }
            }
        }
        if next.is_empty() {
            return false;
        }
        candidates = next;
    }
    true
}

/// Every path each page names.
fn named(root: &Path) -> Vec<(PathBuf, Named)> {
    let scanner = Scanner {
        top: top_folders(root),
        crates: crate_folders(root),
    };
    let mut found = Vec::new();
    for page in pages(root) {
        let text = std::fs::read_to_string(root.join(&page)).expect("a readable page");
        for named in scanner.scan(&page, &text) {
            found.push((page.clone(), named));
        }
    }
    found
}

/// Every named path that does not exist: `page:line: path`.
fn missing(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for (page, named) in named(root) {
        if !exists(root, &named.path) {
            problems.push(format!(
                "{}:{}: names `{}`, which does not exist",
                page.display(),
                named.line,
                named.path
            ));
        }
    }
    problems
}

#[test]
fn every_path_a_doc_page_names_exists() {
    let root = repo();
    // The scan itself must see the pages' paths: a scanner that finds
    // nothing would pass on anything.
    let named = named(&root);
    let pages: BTreeSet<&PathBuf> = named.iter().map(|(page, _)| page).collect();
    for page in [
        "README.md",
        "AGENTS.md",
        "ARCHITECTURE.md",
        "crates/harness/README.md",
    ] {
        assert!(
            pages.contains(&PathBuf::from(page)),
            "{page}: no path found"
        );
    }
    assert!(named.len() > 300, "only {} paths found", named.len());
    let problems = missing(&root);
    assert!(
        problems.is_empty(),
        "{} stale reference(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The `## Code map` section of ARCHITECTURE.md.
fn code_map(architecture: &str) -> &str {
    let start = architecture
        .find("\n## Code map")
        .expect("ARCHITECTURE.md has a `## Code map` section");
    let section = &architecture[start + 1..];
    let end = section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3);
    &section[..end]
}

#[test]
fn the_code_map_names_every_crate() {
    let root = repo();
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let map = code_map(&architecture);
    let absent: Vec<String> = crate_folders(&root)
        .into_iter()
        .filter(|name| !map.contains(&format!("crates/{name}/")))
        .collect();
    assert!(
        absent.is_empty(),
        "ARCHITECTURE.md's code map does not name crates/{{{}}}/",
        absent.join(",")
    );
}

// ---- the scanner on small pages ---------------------------------------------

fn scanner() -> Scanner {
    Scanner {
        top: ["crates", "docs", "scripts", ".ci"]
            .into_iter()
            .map(String::from)
            .collect(),
        crates: ["harness", "cli"].into_iter().map(String::from).collect(),
    }
}

fn paths(page: &str, text: &str) -> Vec<(usize, String)> {
    scanner()
        .scan(Path::new(page), text)
        .into_iter()
        .map(|named| (named.line, named.path))
        .collect()
}

#[test]
fn backticked_linked_and_fenced_paths_are_read() {
    let text = "intro `crates/cli/src/main.rs` and `cargo test -p x`\n\
                see [the ADR](../docs/adr/0001-x.md#why) and [site](https://x.org/a)\n\
                ```sh\n./scripts/test.sh --config=docs/a.yaml\n```\n\
                `harness/src/store.rs:42`, `.ci/run`.\n\
                [ref]: ../README.md\n\
                prose crates/not/read.rs and `not/a/root.rs`\n";
    assert_eq!(
        paths("crates/cli/README.md", text),
        vec![
            (1, "crates/cli/src/main.rs".to_string()),
            (2, "crates/docs/adr/0001-x.md".to_string()),
            (4, "scripts/test.sh".to_string()),
            (4, "docs/a.yaml".to_string()),
            (6, "crates/harness/src/store.rs".to_string()),
            (6, ".ci/run".to_string()),
            (7, "crates/README.md".to_string()),
        ]
    );
}

#[test]
fn crate_relative_paths_are_read_in_their_crate() {
    let text = "`src/main.rs` and `tests/cli.rs:3`\n\
                | `crates/harness/` | `src/api.rs`, `tests/x.rs` |\n\
                `src/next_line.rs`\n";
    assert_eq!(
        paths("crates/cli/README.md", text),
        vec![
            (1, "crates/cli/src/main.rs".to_string()),
            (1, "crates/cli/tests/cli.rs".to_string()),
            (2, "crates/harness/".to_string()),
            (2, "crates/harness/src/api.rs".to_string()),
            (2, "crates/harness/tests/x.rs".to_string()),
            (3, "crates/cli/src/next_line.rs".to_string()),
        ]
    );
    assert_eq!(paths("README.md", "`src/main.rs`\n"), vec![]);
}

#[test]
fn links_in_code_spans_are_not_links() {
    assert_eq!(
        paths("README.md", "`[a](b.md)` and [c](d.md)\n"),
        vec![(1, "d.md".to_string())]
    );
}

#[test]
fn placeholders_and_globs_check_what_they_can() {
    let root = repo();
    assert!(exists(&root, "docs/man/floodgate*.1"));
    assert!(exists(&root, "crates/*/README.md"));
    assert!(exists(&root, "fuzz/corpus/<target>/"));
    assert!(exists(&root, "docs/adr/NNNN-title.md"));
    assert!(exists(&root, "crates/cli/README.md"));
    assert!(!exists(&root, "docs/man/nothing*.1"));
    assert!(!exists(&root, "crates/nothing/<target>"));
    assert!(!exists(&root, "crates/cli/src/nothing.rs"));
    assert!(
        !is_placeholder("README.md"),
        "a real upper-case file name is checked"
    );
}

#[test]
fn a_missing_path_is_named_with_page_and_line() {
    let scratch = std::env::temp_dir().join(format!("floodgate-docs-{}", std::process::id()));
    std::fs::create_dir_all(scratch.join("crates/a/src")).unwrap();
    std::fs::create_dir_all(scratch.join("docs")).unwrap();
    std::fs::write(scratch.join("crates/a/Cargo.toml"), "").unwrap();
    std::fs::write(scratch.join("crates/a/src/lib.rs"), "").unwrap();
    std::fs::write(scratch.join("README.md"), "`crates/a/src/lib.rs`\n").unwrap();
    std::fs::write(scratch.join("AGENTS.md"), "\n`a/src/gone.rs`\n").unwrap();
    std::fs::write(scratch.join("ARCHITECTURE.md"), "").unwrap();
    std::fs::write(scratch.join("docs/x.md"), "[up](../crates/a/README.md)\n").unwrap();
    let problems = missing(&scratch);
    std::fs::remove_dir_all(&scratch).unwrap();
    assert_eq!(
        problems,
        vec![
            "AGENTS.md:2: names `crates/a/src/gone.rs`, which does not exist".to_string(),
            "docs/x.md:1: names `crates/a/README.md`, which does not exist".to_string(),
        ]
    );
}
