//! Floodgate's fuzz targets: one entry point per parser of outside input.
//!
//! Each function takes arbitrary bytes, feeds them to the parser exactly as
//! the program does (the same public functions, nothing copied), and checks
//! what must hold for every input: no panic, an error that names its file
//! and field, and for the check requests the engine's own invariants (one
//! status per descriptor; the gRPC hot path's hand-written encoding equal
//! to prost's). A broken property panics, which is what a fuzzer reports.
//!
//! Two drivers call them (ADR 0020):
//! - `fuzz/` (outside the workspace): one libFuzzer binary per target,
//!   coverage-guided, run by `scripts/fuzz.sh`;
//! - `tests/corpus.rs`: every file of `fuzz/corpus/<target>/` replayed as
//!   an ordinary test, so the seeds and every crash once found stay
//!   covered by `cargo nextest run` in CI.

use bytes::Bytes;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use floodgate_limiter::config::{load, ConfigSource};
use floodgate_service::clock::ManualClock;
use floodgate_service::engine::{self, Engine, EngineOptions};
use floodgate_store::MemoryStore;
use prost::Message;
use std::sync::{Arc, OnceLock};

/// The file name the targets hand to parsers that name their file.
pub const FILE: &str = "fuzz.yaml";

/// One fuzz target: its name (the libFuzzer binary and the corpus folder
/// `fuzz/corpus/<name>/`), what it feeds, and the entry point.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub what: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order `scripts/fuzz.sh` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "limits_config",
        what: "a limits config file: the YAML gate, parse_file, compile",
        run: limits_config,
    },
    Target {
        name: "rls_request",
        what: "a gRPC RateLimitRequest: framing, protobuf decode, validate, the engine",
        run: rls_request,
    },
    Target {
        name: "json_check",
        what: "a POST /v1/check body: JSON parse, validate, the engine",
        run: json_check,
    },
    Target {
        name: "tickets",
        what: "a ticket file (`floodgate ticket create -f`, POST /v1/tickets)",
        run: tickets,
    },
    Target {
        name: "objectives",
        what: "an objectives file (SLOs, invariants, anomalies) and its metric registry",
        run: objectives,
    },
    Target {
        name: "runbooks",
        what: "a runbook file: parse and every load-time check",
        run: runbooks,
    },
    Target {
        name: "scenarios",
        what: "a lab scenario file",
        run: scenarios,
    },
    Target {
        name: "exposition",
        what: "a Prometheus text exposition (a scrape) and its ingestion into the harness's tsdb",
        run: exposition,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}

/// Files are read as UTF-8 text (`read_to_string`, JSON and YAML bodies):
/// other bytes never reach the parsers.
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A limits config file, through the contract's YAML gate, `parse_file`
/// and `compile` (`config::load`, as `serve --config` and the config
/// actions call it).
pub fn limits_config(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let gate = floodgate_contract::yaml::check(text);
    match load(&[ConfigSource::new(FILE, text)]) {
        Ok(_table) => assert!(
            gate.is_ok(),
            "a config the YAML gate refuses was loaded: {gate:?}"
        ),
        Err(error) => {
            assert_eq!(error.file, FILE, "the error names another file: {error}");
            assert!(!error.message.is_empty(), "an error without a message");
        }
    }
}

/// A gRPC request body: the input as the message (framed here, so the
/// fuzzer need not find the length prefix), and as a whole body.
pub fn rls_request(data: &[u8]) {
    let mut framed = Vec::with_capacity(data.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    framed.extend_from_slice(data);
    for body in [Bytes::from(framed), Bytes::copy_from_slice(data)] {
        match floodgate_service::grpc::decode_request(&body) {
            Ok(request) => decide_both_ways(&request),
            Err(failure) => assert!(!failure.message.is_empty(), "a failure without a message"),
        }
    }
}

/// A `POST /v1/check` body.
pub fn json_check(data: &[u8]) {
    match floodgate_service::http::parse_request(data) {
        Ok((request, releases)) => {
            let (engine, _) = example_engine();
            let checked = block_on(engine.check(&request, &releases));
            check_answer(&request, checked.as_ref().map(|checked| &checked.response));
        }
        Err(error) => {
            assert!(
                !error.field.is_empty(),
                "an error naming no field: {error:?}"
            );
            assert!(!error.message.is_empty(), "an error without a message");
        }
    }
}

/// A ticket file, validated against the built-in metrics.
pub fn tickets(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let registry = floodgate_harness::tickets::criteria::MetricRegistry::builtin();
    if let Err(error) = floodgate_harness::tickets::parse_ticket_yaml(FILE, text, &registry) {
        assert_eq!(error.file, FILE, "the error names another file: {error}");
        assert!(!error.message.is_empty(), "an error without a message");
    }
}

/// An objectives file, and the metric registry built from it.
pub fn objectives(data: &[u8]) {
    let Some(text) = text(data) else { return };
    match floodgate_harness::observe::objectives::parse(FILE, text) {
        Ok(objectives) => {
            // A registry may refuse the objectives (an error), never panic.
            let _ =
                floodgate_harness::tickets::criteria::MetricRegistry::for_objectives(&objectives);
        }
        Err(error) => {
            assert_eq!(error.file, FILE, "the error names another file: {error}");
            assert!(!error.message.is_empty(), "an error without a message");
        }
    }
}

/// A runbook file, with every load-time check.
pub fn runbooks(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Err(error) = floodgate_agent::runbook::Runbook::parse(FILE, text) {
        assert_eq!(error.file, FILE, "the error names another file: {error}");
        assert!(!error.message.is_empty(), "an error without a message");
    }
}

/// A lab scenario file.
pub fn scenarios(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Err(error) = floodgate_lab::scenario::parse(FILE, text) {
        assert_eq!(error.file, FILE, "the error names another file: {error}");
        assert!(!error.message.is_empty(), "an error without a message");
    }
}

/// A scrape: the harness reads it as text (invalid UTF-8 replaced), parses
/// it, and ingests it into its time series twice, one scrape apart.
pub fn exposition(data: &[u8]) {
    use floodgate_harness::observe::tsdb::{Tsdb, TsdbLimits};
    let text = String::from_utf8_lossy(data);
    match floodgate_harness::observe::exposition::parse(&text) {
        Ok(exposition) => {
            let mut tsdb = Tsdb::new(TsdbLimits::default());
            tsdb.ingest(0, "fuzz", &exposition);
            tsdb.ingest(15_000, "fuzz", &exposition);
        }
        Err(error) => {
            assert!(
                error.line <= text.lines().count(),
                "line {} of a text of {} lines",
                error.line,
                text.lines().count()
            );
            assert!(!error.message.is_empty(), "an error without a message");
        }
    }
}

/// The example config (`examples/limits.yaml`) the engine targets decide
/// against: every algorithm, wildcards, `replaces`, shadow mode.
const EXAMPLE_LIMITS: &str = include_str!("../../../examples/limits.yaml");

/// When the engine targets' clock starts (2023-11-14, in nanoseconds).
const START: u64 = 1_700_000_000_000_000_000;

/// A fresh engine over the example config and an empty memory store, and
/// its clock: every input starts from the same state, so a crash replays.
fn example_engine() -> (Engine<MemoryStore>, Arc<ManualClock>) {
    let table = load(&[ConfigSource::new("examples/limits.yaml", EXAMPLE_LIMITS)])
        .unwrap_or_else(|error| panic!("the example config: {error}"));
    let clock = Arc::new(ManualClock::at_ns(START));
    let engine = Engine::new(
        table,
        MemoryStore::new(1_024),
        clock.clone(),
        EngineOptions {
            x_ratelimit_headers: true,
        },
    );
    (engine, clock)
}

/// Decides `request` twice, a second apart, by `Engine::check` on one
/// engine and by the gRPC hot path (`check_encoded`) on another: the two
/// answers must be the same, byte for byte once decoded.
fn decide_both_ways(request: &RateLimitRequest) {
    let (built, built_clock) = example_engine();
    let (encoded, encoded_clock) = example_engine();
    for _ in 0..2 {
        let checked = block_on(built.check(request, &[]));
        check_answer(request, checked.as_ref().map(|checked| &checked.response));
        let mut out = bytes::BytesMut::new();
        let code = block_on(encoded.check_encoded(request, &mut out));
        match (&checked, code) {
            (Ok(checked), Ok(code)) => {
                let decoded = RateLimitResponse::decode(&out[..])
                    .unwrap_or_else(|error| panic!("check_encoded wrote no response: {error}"));
                assert_eq!(
                    decoded, checked.response,
                    "check_encoded and check answer differently"
                );
                assert_eq!(code as i32, checked.response.overall_code);
            }
            (Err(built), Err(encoded)) => {
                assert_eq!(built.field, encoded.field);
                assert!(out.is_empty(), "check_encoded wrote an answer on error");
            }
            (built, encoded) => {
                panic!("check and check_encoded disagree: {built:?} / {encoded:?}")
            }
        }
        built_clock.advance_ns(1_000_000_000);
        encoded_clock.advance_ns(1_000_000_000);
    }
}

/// What every decision must satisfy: refused exactly when `validate`
/// refuses (the memory store never fails), and one status per descriptor.
fn check_answer(
    request: &RateLimitRequest,
    answer: Result<&RateLimitResponse, &engine::RequestError>,
) {
    match (engine::validate(request), answer) {
        (Ok(()), Ok(response)) => assert_eq!(
            response.statuses.len(),
            request.descriptors.len(),
            "one status per descriptor"
        ),
        (Err(refused), Err(error)) => {
            assert_eq!(refused.field, error.field);
            assert!(!error.field.is_empty(), "an error naming no field");
        }
        (Ok(()), Err(error)) => panic!("a valid request refused: {error:?}"),
        (Err(refused), Ok(_)) => panic!("decided a request validate refuses: {refused:?}"),
    }
}

/// Runs a future to completion on one current-thread runtime (built once).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap_or_else(|error| panic!("a tokio runtime: {error}"))
        })
        .block_on(future)
}
