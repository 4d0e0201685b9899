//! Every fuzz target's committed corpus (`fuzz/corpus/<target>/`: the seeds
//! and every crash input once found) replayed through its entry point, as
//! an ordinary test: what the coverage-guided run (`scripts/fuzz.sh`, ADR
//! 0020) once found stays fixed in CI, which has no time for that run.

use floodgate_fuzz::{target, TARGETS};
use std::path::{Path, PathBuf};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// The files of one target's corpus, sorted.
fn corpus(name: &str) -> Vec<PathBuf> {
    let dir = corpus_root().join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|error| panic!("{}: {error}", dir.display())))
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `name`'s entry point over every file of its corpus; a panic names
/// the file.
fn replay(name: &str) {
    let target = target(name).unwrap_or_else(|| panic!("no fuzz target {name}"));
    let files = corpus(name);
    assert!(!files.is_empty(), "fuzz/corpus/{name} holds no input");
    for file in files {
        let data =
            std::fs::read(&file).unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        let outcome = std::panic::catch_unwind(|| (target.run)(&data));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("{name}: {}: {message}", file.display());
        }
    }
}

#[test]
fn every_target_has_a_corpus_and_every_corpus_a_target() {
    let mut folders: Vec<String> = std::fs::read_dir(corpus_root())
        .unwrap_or_else(|error| panic!("fuzz/corpus: {error}"))
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    folders.sort();
    let mut names: Vec<String> = TARGETS
        .iter()
        .map(|target| target.name.to_owned())
        .collect();
    names.sort();
    assert_eq!(folders, names);
}

#[test]
fn every_target_has_a_libfuzzer_binary() {
    let manifest = std::fs::read_to_string(corpus_root().join("../Cargo.toml"))
        .unwrap_or_else(|error| panic!("fuzz/Cargo.toml: {error}"));
    for target in TARGETS {
        let name = target.name;
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        let source =
            std::fs::read_to_string(corpus_root().join(format!("../fuzz_targets/{name}.rs")))
                .unwrap_or_else(|error| panic!("fuzz/fuzz_targets/{name}.rs: {error}"));
        assert!(
            source.contains(&format!("floodgate_fuzz::{name}(data)")),
            "fuzz/fuzz_targets/{name}.rs does not call floodgate_fuzz::{name}"
        );
    }
}

#[test]
fn limits_config() {
    replay("limits_config");
}

#[test]
fn rls_request() {
    replay("rls_request");
}

#[test]
fn json_check() {
    replay("json_check");
}

#[test]
fn tickets() {
    replay("tickets");
}

#[test]
fn objectives() {
    replay("objectives");
}

#[test]
fn runbooks() {
    replay("runbooks");
}

#[test]
fn scenarios() {
    replay("scenarios");
}

#[test]
fn exposition() {
    replay("exposition");
}

/// The properties the targets check are real: an input that breaks one
/// panics (the fuzzer's crash), and the seeds do reach the parsers' success
/// paths, not only their refusals.
#[test]
fn the_targets_check_something() {
    // The example config loads, and a request for it is decided.
    let example = std::fs::read(corpus_root().join("limits_config/example.yaml")).expect("seed");
    let text = std::str::from_utf8(&example).expect("utf-8");
    floodgate_limiter::config::load(&[floodgate_limiter::config::ConfigSource::new("x", text)])
        .unwrap_or_else(|error| panic!("{error}"));
    let request = std::fs::read(corpus_root().join("json_check/tenant.json")).expect("seed");
    let (parsed, _) = floodgate_service::http::parse_request(&request)
        .unwrap_or_else(|error| panic!("{error:?}"));
    assert_eq!(parsed.domain, "api");
    // A gRPC seed decodes to the same request.
    let body = std::fs::read(corpus_root().join("rls_request/tenant.bin")).expect("seed");
    let mut framed = vec![0];
    framed.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes());
    framed.extend_from_slice(&body);
    let decoded = floodgate_service::grpc::decode_request(&framed.into())
        .unwrap_or_else(|failure| panic!("{}", failure.message));
    assert_eq!(decoded, parsed);
    // Not UTF-8: the YAML targets return without parsing (files are read
    // as text), and nothing panics.
    for target in TARGETS {
        (target.run)(&[0xff, 0xfe, b'\n', 0]);
    }
}
