//! Compiles the repository's scenario suite (`scenarios/*.yaml`) and
//! runbooks (`runbooks/*.yaml`) into the binary: `floodgate scenarios
//! run`, `floodgate agent` and `floodgate demo` use them when no
//! `--scenarios` / `--runbooks` directory is given, so the binary works
//! from any working directory (src/embedded.rs).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: cannot list: {error}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

fn table(out: &mut String, name: &str, doc: &str, repo: &Path, dir: &str) {
    let path = repo.join(dir);
    println!("cargo:rerun-if-changed={}", path.display());
    writeln!(out, "/// {doc}").unwrap();
    writeln!(out, "pub const {name}: &[(&str, &str)] = &[").unwrap();
    for file in yaml_files(&path) {
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        let absolute = file.canonicalize().expect("a file that exists");
        writeln!(
            out,
            "    ({:?}, include_str!({:?})),",
            format!("{dir}/{file_name}"),
            absolute.display().to_string()
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let repo = manifest.join("../..");
    let mut out = String::new();
    table(
        &mut out,
        "SCENARIOS",
        "The committed scenario suite: (path in the repository, text).",
        &repo,
        "scenarios",
    );
    table(
        &mut out,
        "RUNBOOKS",
        "The shipped runbooks: (path in the repository, text).",
        &repo,
        "runbooks",
    );
    let target =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("embedded.rs");
    std::fs::write(&target, out)
        .unwrap_or_else(|error| panic!("{}: cannot write: {error}", target.display()));
}
