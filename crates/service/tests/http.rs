//! The HTTP API over real HTTP on loopback: /v1/check, /metrics, /v1/health,
//! and graceful shutdown.

mod common;

use common::{metric, TestServer};
use floodgate_contract::metrics::{self as catalog, MetricKind};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const CONFIG: &str = r#"
domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: minute, requests_per_unit: 2, name: per_tenant}
  - key: uploads
    rate_limit: {algorithm: concurrency, unit: minute, requests_per_unit: 1, name: uploads}
  - key: route
    detailed_metric: true
    rate_limit: {unit: minute, requests_per_unit: 1000, name: per_route}
"#;

async fn check(server: &TestServer, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/v1/check"))
        .json(&body)
        .send()
        .await
        .expect("HTTP response")
}

fn tenant(value: &str) -> Value {
    json!({"domain": "api", "descriptors": [{"entries": [{"key": "tenant", "value": value}]}]})
}

#[tokio::test]
async fn check_answers_json_with_headers_and_429_over_the_limit() {
    let server = TestServer::start(CONFIG).await;
    server.clock.advance_ns(15_000_000_000); // 15 s into the minute
    let response = check(&server, tenant("acme")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"per_tenant\";q=2;w=60"
    );
    assert_eq!(response.headers()["ratelimit"], "\"per_tenant\";r=1;t=45");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({
            "overall_code": "OK",
            "statuses": [{
                "code": "OK",
                "current_limit": {"name": "per_tenant", "requests_per_unit": 2, "unit": "MINUTE"},
                "limit_remaining": 1,
                "duration_until_reset": "45s"
            }],
            "response_headers_to_add": [
                {"key": "RateLimit-Policy", "value": "\"per_tenant\";q=2;w=60"},
                {"key": "RateLimit", "value": "\"per_tenant\";r=1;t=45"}
            ]
        })
    );
    assert_eq!(check(&server, tenant("acme")).await.status(), 200);
    let over = check(&server, tenant("acme")).await;
    assert_eq!(over.status(), 429);
    assert_eq!(over.headers()["retry-after"], "45");
    let body: Value = over.json().await.expect("json");
    assert_eq!(body["overall_code"], "OVER_LIMIT");
    assert_eq!(body["statuses"][0]["code"], "OVER_LIMIT");
    server.stop().await;
}

#[tokio::test]
async fn check_accepts_camel_case_and_reports_leases() {
    let server = TestServer::start(CONFIG).await;
    let acquire =
        json!({"domain": "api", "descriptors": [{"entries": [{"key": "uploads", "value": "u"}]}]});
    let body: Value = check(&server, acquire.clone())
        .await
        .json()
        .await
        .expect("json");
    let lease = body["statuses"][0]["lease_id"].as_u64().expect("lease id");
    assert_eq!(
        check(&server, acquire.clone()).await.status(),
        429,
        "one in flight"
    );
    let release = json!({"domain": "api", "descriptors": [{"entries": [{"key": "uploads", "value": "u"}], "releaseLease": lease}]});
    assert_eq!(check(&server, release).await.status(), 200);
    assert_eq!(check(&server, acquire).await.status(), 200, "released");
    let camel = json!({"domain": "api", "hitsAddend": 2, "descriptors": [{"entries": [{"key": "tenant", "value": "c"}]}]});
    let body: Value = check(&server, camel).await.json().await.expect("json");
    assert_eq!(body["statuses"][0]["limit_remaining"], 0);
    server.stop().await;
}

#[tokio::test]
async fn metrics_are_all_in_the_catalog_and_count_per_limit() {
    let server = TestServer::start(CONFIG).await;
    for _ in 0..3 {
        check(&server, tenant("secret-tenant-value")).await;
    }
    check(&server, json!({"domain": "api", "descriptors": [{"entries": [{"key": "route", "value": "/items"}]}]})).await;
    let response = reqwest::get(server.url("/metrics")).await.expect("metrics");
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/plain"));
    let text = response.text().await.expect("text");
    let mut seen_types = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().expect("name");
            let kind = parts.next().expect("kind");
            let def = catalog::find(name).unwrap_or_else(|| panic!("{name} is not in the catalog"));
            assert_eq!(def.kind.as_str(), kind);
            seen_types += 1;
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let series = line.split(['{', ' ']).next().expect("series name");
        let def = catalog::find(series).unwrap_or_else(|| panic!("{series} is not in the catalog"));
        if def.kind == MetricKind::Histogram {
            continue;
        }
        // Every label on the line is one the catalog declares.
        if let Some(labels) = line
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(l, _)| l)
        {
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let name = pair.split('=').next().expect("label name");
                assert!(
                    def.labels.contains(&name),
                    "{series} has undeclared label {name}"
                );
            }
        }
    }
    assert_eq!(
        seen_types,
        catalog::CATALOG.len(),
        "every catalog metric is exposed"
    );
    let per = |name: &str| {
        metric(
            &text,
            &format!("{name}{{domain=\"api\",limit=\"per_tenant\"}}"),
        )
    };
    assert_eq!(per("floodgate_rate_limit_hits_total"), Some(3.0));
    assert_eq!(per("floodgate_rate_limit_within_limit_total"), Some(2.0));
    assert_eq!(per("floodgate_rate_limit_over_limit_total"), Some(1.0));
    assert_eq!(
        per("floodgate_rate_limit_near_limit_total"),
        Some(1.0),
        "the second hit used 100%"
    );
    assert!(
        !text.contains("secret-tenant-value"),
        "descriptor values are not labels by default"
    );
    let detailed = r#"floodgate_rate_limit_detailed_hits_total{domain="api",limit="per_route",descriptor="route_/items",outcome="within_limit"}"#;
    assert_eq!(
        metric(&text, detailed),
        Some(1.0),
        "detailed_metric opts in"
    );
    assert_eq!(
        metric(
            &text,
            r#"floodgate_requests_total{api="http",code="over_limit"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            r#"floodgate_request_duration_seconds_count{api="http"}"#
        ),
        Some(4.0)
    );
    assert_eq!(
        metric(&text, r#"floodgate_store_keys{backend="memory"}"#),
        Some(2.0)
    );
    assert_eq!(metric(&text, "floodgate_config_limits"), Some(3.0));
    server.stop().await;
}

#[tokio::test]
async fn health_is_structured() {
    let server = TestServer::start(CONFIG).await;
    check(&server, tenant("a")).await;
    server.clock.advance_ns(5_000_000_000);
    let health: Value = reqwest::get(server.url("/v1/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["uptime_seconds"], 5);
    assert_eq!(health["config"]["limits"], 3);
    assert_eq!(health["store"]["backend"], "memory");
    assert_eq!(health["store"]["keys"], 1);
    assert_eq!(health["windows"][0]["requests"], 1);
    let checks = health["checks"].as_array().expect("checks");
    assert!(checks
        .iter()
        .all(|c| c["pass"] == true && c["reason"].is_string() && c["name"].is_string()));
    let unknown = reqwest::get(server.url("/v1/nothing")).await.expect("404");
    assert_eq!(unknown.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn health_reports_a_full_store() {
    // The smallest store (one key per shard), filled with distinct tenants.
    let server = TestServer::start_with(CONFIG, Default::default(), 1).await;
    for index in 0..100 {
        check(&server, tenant(&format!("t{index}"))).await;
    }
    let health: Value = reqwest::get(server.url("/v1/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "degraded");
    let store_check = health["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "store_capacity")
        .cloned();
    assert_eq!(
        store_check.map(|c| c["pass"].clone()),
        Some(Value::Bool(false))
    );
    server.stop().await;
}

/// A request in flight when shutdown begins still gets its answer; new
/// connections are refused afterwards.
#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let server = TestServer::start(CONFIG).await;
    let body = tenant("shutdown").to_string();
    let mut stream = tokio::net::TcpStream::connect(server.http)
        .await
        .expect("connect");
    // Expect: 100-continue makes the server say when the handler is reading
    // the body: from then on, the request is in flight.
    let head = format!(
        "POST /v1/check HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        server.http,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.expect("100 continue");
    assert!(line.starts_with("HTTP/1.1 100"), "{line}");
    reader.read_line(&mut line).await.expect("blank line");
    let http_addr = server.http;
    let stopping = tokio::spawn(server.stop());
    // Finish the request after shutdown has begun.
    reader
        .get_mut()
        .write_all(body.as_bytes())
        .await
        .expect("write body");
    let mut response = String::new();
    reader
        .read_to_string(&mut response)
        .await
        .expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"overall_code\":\"OK\""), "{response}");
    let engine = stopping.await.expect("stopped");
    assert_eq!(
        engine.metrics.requests(
            floodgate_service::stats::Api::Http,
            floodgate_service::stats::Outcome::Ok
        ),
        1
    );
    assert!(
        tokio::net::TcpStream::connect(http_addr).await.is_err(),
        "listener closed"
    );
}

/// Open mode (no tokens; ADR 0004): a page's cross-site POST (text/plain,
/// a foreign Origin) and a rebound name's GET of `/v1/state` are refused
/// with 403 naming the header and recorded as `request_refused`; a POST
/// without a JSON content type is 415; the same host's JSON POST is served.
#[tokio::test]
async fn open_mode_refuses_cross_site_requests_and_rebound_hosts() {
    let server = TestServer::start(CONFIG).await;
    let client = reqwest::Client::new();
    let response = client
        .post(server.url("/v1/config"))
        .header("origin", "http://evil.example")
        .header("content-type", "text/plain")
        .body(r#"{"yaml": "domain: x"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["field"], "origin", "{body}");
    let response = client
        .get(server.url("/v1/state"))
        .header("host", "evil.example:8080")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["field"], "host", "{body}");
    let response = client
        .post(server.url("/v1/check"))
        .header("content-type", "text/plain")
        .body(tenant("acme").to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["field"], "content-type", "{body}");
    let response = check(&server, tenant("acme")).await;
    assert_eq!(response.status(), 200);
    let events: Value = client
        .get(server.url("/v1/events?type=request_refused"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    let fields: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["data"]["field"].as_str())
        .collect();
    assert_eq!(fields, ["origin", "host", "content-type"], "{events}");
}

/// Refusals the router and the edge make themselves carry the same JSON
/// error as every other: a method a path does not take (405, with
/// `Allow`), request headers over their bounds (431, by bytes and by
/// count), a body over the control API's bound (413).
#[tokio::test]
async fn method_header_and_size_refusals_are_json_errors() {
    let server = TestServer::start(CONFIG).await;
    let client = reqwest::Client::new();
    let json_error = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let allow = response
            .headers()
            .get("allow")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body: Value = response.json().await.expect("a JSON error body");
        (status, allow, body)
    };

    let response = client
        .get(server.url("/v1/check"))
        .send()
        .await
        .expect("GET");
    let (status, allow, body) = json_error(response).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(allow.as_deref(), Some("POST"));
    assert_eq!(body["error"]["kind"], "method_not_allowed", "{body}");
    assert_eq!(body["error"]["field"], "method", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("GET is not allowed on /v1/check")),
        "{body}"
    );
    let response = client
        .delete(server.url("/v1/config"))
        .send()
        .await
        .expect("DELETE");
    let (status, allow, body) = json_error(response).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(allow.as_deref(), Some("GET,HEAD,POST"));

    // One header of 20 KiB: over MAX_HEADER_LIST_BYTES (16 KiB).
    let response = client
        .get(server.url("/v1/health"))
        .header("x-padding", "p".repeat(20 * 1024))
        .send()
        .await
        .expect("GET");
    let (status, _, body) = json_error(response).await;
    assert_eq!(status, 431, "{body}");
    assert_eq!(body["error"]["kind"], "too_large", "{body}");
    assert_eq!(body["error"]["field"], "headers", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("MAX_HEADER_LIST_BYTES")),
        "{body}"
    );
    // 150 small header fields: over MAX_REQUEST_HEADERS (100).
    let mut request = client.get(server.url("/v1/health"));
    for index in 0..150 {
        request = request.header(format!("x-field-{index}"), "v");
    }
    let (status, _, body) = json_error(request.send().await.expect("GET")).await;
    assert_eq!(status, 431, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("MAX_REQUEST_HEADERS")),
        "{body}"
    );
    // Within the bounds, served.
    let response = client
        .get(server.url("/v1/health"))
        .header("x-padding", "p".repeat(8 * 1024))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);

    // A control body over MAX_CONTROL_BODY_BYTES (4 MiB).
    let yaml = "#".repeat(5 * 1024 * 1024);
    let response = client
        .post(server.url("/v1/config"))
        .json(&json!({"yaml": yaml, "dry_run": true}))
        .send()
        .await
        .expect("POST");
    let (status, _, body) = json_error(response).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["kind"], "too_large", "{body}");
    assert_eq!(body["error"]["field"], "body", "{body}");
}
