//! Reading series from a Prometheus server's query API: the answer's
//! parsing (fixtures in Prometheus's `query_range` format), and a fetch
//! over loopback HTTP from a stand-in server answering the fixture.

use axum::extract::Query;
use axum::routing::get;
use floodgate_harness::observe::exposition::MetricType;
use floodgate_harness::observe::prometheus::{parse_query_range, PrometheusSource, DEFAULT_MATCH};
use floodgate_harness::observe::selector::Selector;
use floodgate_harness::observe::tsdb::{Tsdb, TsdbLimits};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/prometheus")
            .join(name),
    )
    .expect("fixture")
}

const T0_MS: u64 = 1_700_000_000_000;

#[test]
fn a_matrix_becomes_one_exposition_per_instant() {
    let instants = parse_query_range(&fixture("query_range.json")).expect("parses");
    let times: Vec<u64> = instants.iter().map(|(time, _)| *time).collect();
    assert_eq!(
        times,
        [T0_MS, T0_MS + 10_000, T0_MS + 20_000, T0_MS + 30_000]
    );
    let (_, first) = &instants[0];
    // The series without __name__ is skipped.
    assert_eq!(first.samples.len(), 4);
    let ok = first
        .samples
        .iter()
        .find(|sample| sample.labels.contains(&("code".into(), "ok".into())))
        .expect("the ok series");
    assert_eq!(ok.name, "floodgate_requests_total");
    assert_eq!(ok.value, 1000.0);
    assert!(ok
        .labels
        .contains(&("instance".into(), "127.0.0.1:8080".into())));
    assert!(!ok.labels.iter().any(|(label, _)| label == "__name__"));
    assert_eq!(
        first.type_of("floodgate_requests_total"),
        MetricType::Counter
    );
    assert_eq!(
        first.type_of("floodgate_request_duration_seconds_bucket"),
        MetricType::Counter
    );
    assert_eq!(first.type_of("floodgate_store_keys"), MetricType::Gauge);
    let inf = first
        .samples
        .iter()
        .find(|sample| sample.name.ends_with("_bucket"))
        .expect("bucket");
    assert!(inf.labels.contains(&("le".into(), "+Inf".into())));
    let (_, second) = &instants[1];
    let keys = second
        .samples
        .iter()
        .find(|sample| sample.name == "floodgate_store_keys")
        .expect("keys");
    assert!(keys.value.is_nan());
}

#[test]
fn fed_to_the_tsdb_counters_survive_a_reset() {
    let mut tsdb = Tsdb::new(TsdbLimits::default());
    for (time, exposition) in parse_query_range(&fixture("query_range.json")).expect("parses") {
        tsdb.ingest(time, "", &exposition);
    }
    let ok = Selector::parse("floodgate_requests_total{code=\"ok\"}").expect("selector");
    let increase = tsdb
        .increase(&ok, 30_000, T0_MS + 30_000)
        .expect("an increase");
    // 1000 → 2000 → 3000 → (restart) 50: 2000 + 50.
    assert_eq!(increase.value, 2050.0);
    let keys = Selector::metric("floodgate_store_keys");
    assert_eq!(tsdb.value_at(&keys, T0_MS + 20_000), Some(15.5));
}

#[test]
fn errors_name_what_is_wrong() {
    let error = parse_query_range(&fixture("error.json")).expect_err("an error answer");
    assert!(
        error.0.starts_with("bad_data: invalid parameter"),
        "{error}"
    );
    let error =
        parse_query_range(br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#)
            .expect_err("a vector");
    assert!(error.0.contains("matrix"), "{error}");
    let error = parse_query_range(
        br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"x"},"values":[[1,"many"]]}]}}"#,
    )
    .expect_err("not a number");
    assert_eq!(
        error.0,
        "data.result[0].values[0]: \"many\" is not a number"
    );
    let error = parse_query_range(b"{\"status\": 3}").expect_err("bad JSON");
    assert!(error.0.starts_with("status:"), "{error}");
    assert!(parse_query_range(b"").is_err());
}

#[tokio::test]
async fn fetch_asks_query_range_and_reads_each_instant_once() {
    let asked: Arc<Mutex<Vec<BTreeMap<String, String>>>> = Arc::default();
    let seen = Arc::clone(&asked);
    let body = fixture("query_range.json");
    let app = axum::Router::new().route(
        "/api/v1/query_range",
        get(move |Query(query): Query<BTreeMap<String, String>>| {
            let body = body.clone();
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().expect("lock").push(query);
                ([("content-type", "application/json")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut source = PrometheusSource::new(&base, DEFAULT_MATCH, 10_000);
    let now = T0_MS + 30_000;
    let first = source.fetch(now).await.expect("fetch");
    assert_eq!(first.len(), 4);
    // The same answer again: every instant was read already.
    let second = source.fetch(now + 10_000).await.expect("fetch");
    assert!(second.is_empty());
    let asked = asked.lock().expect("lock");
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0]["query"], DEFAULT_MATCH);
    assert_eq!(asked[0]["step"], "10.000");
    assert_eq!(asked[0]["end"], "1700000030.000");
    assert_eq!(asked[0]["start"], "1699996430.000", "one hour back");
    assert_eq!(
        asked[1]["start"], "1700000030.001",
        "after the last instant"
    );
}
