//! Bad input over both APIs: a clear error naming the field, counted in
//! metrics, never a panic, and the server keeps serving.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{metric, request, TestServer};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use serde_json::Value;

const CONFIG: &str = r#"
domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: second, requests_per_unit: 100, name: per_tenant}
"#;

const PATH: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

/// Sends raw bytes as a gRPC request body; returns grpc-status and message.
async fn raw_grpc(server: &TestServer, path: &str, body: Bytes) -> (String, String) {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let request = http::Request::post(format!("http://{}{}", server.grpc, path))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(body))
        .expect("request");
    let response = client.request(request).await.expect("HTTP/2 response");
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.expect("body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let get = |name: &str| {
        headers
            .get(name)
            .or_else(|| trailers.get(name))
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    (get("grpc-status"), get("grpc-message"))
}

fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::new();
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(message);
    framed.freeze()
}

async fn tonic_status(server: &TestServer, request: RateLimitRequest) -> tonic::Status {
    server
        .grpc_client()
        .await
        .should_rate_limit(request)
        .await
        .expect_err("request must be refused")
}

async fn still_serving(server: &TestServer) {
    let response = server
        .grpc_client()
        .await
        .should_rate_limit(request("api", &[&[("tenant", "ok")]]))
        .await
        .expect("server still serves")
        .into_inner();
    assert_eq!(response.overall_code, Code::Ok as i32);
}

#[tokio::test]
async fn malformed_grpc_frames_and_protobuf_are_invalid_argument() {
    let server = TestServer::start(CONFIG).await;
    let cases: Vec<(&str, Bytes, &str, &str)> = vec![
        (
            "garbage protobuf",
            frame(&[0xff, 0xff, 0xff, 0xff]),
            "3",
            "malformed RateLimitRequest",
        ),
        (
            "truncated prefix",
            Bytes::from_static(&[0, 0, 0]),
            "3",
            "shorter than the 5-byte message prefix",
        ),
        (
            "length mismatch",
            Bytes::from_static(&[0, 0, 0, 0, 9, 1]),
            "3",
            "prefix declares 9 bytes",
        ),
        (
            "compressed",
            Bytes::from_static(&[1, 0, 0, 0, 0]),
            "12",
            "compressed messages are not supported",
        ),
        // Field 1 (domain), length 2, bytes that are not UTF-8.
        (
            "invalid utf-8 domain",
            frame(&[0x0a, 0x02, 0xc3, 0x28]),
            "3",
            "RateLimitRequest.domain",
        ),
    ];
    for (name, body, status, message) in cases {
        let (got_status, got_message) = raw_grpc(&server, PATH, body).await;
        assert_eq!(got_status, status, "{name}: {got_message}");
        assert!(
            got_message.contains(message),
            "{name}: {got_message:?} should contain {message:?}"
        );
    }
    let (status, message) = raw_grpc(&server, "/some.Other/Method", frame(&[])).await;
    assert_eq!(status, "12", "{message}");
    still_serving(&server).await;
    let text = reqwest::get(server.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert_eq!(
        metric(
            &text,
            r#"floodgate_errors_total{api="grpc",kind="invalid_argument"}"#
        ),
        Some(4.0)
    );
    assert_eq!(
        metric(
            &text,
            r#"floodgate_errors_total{api="grpc",kind="unimplemented"}"#
        ),
        Some(2.0)
    );
    server.stop().await;
}

#[tokio::test]
async fn oversized_message_is_refused() {
    let server = TestServer::start(CONFIG).await;
    let huge = RateLimitRequest {
        domain: "x".repeat(300 * 1024),
        ..RateLimitRequest::default()
    };
    let (status, message) = raw_grpc(&server, PATH, frame(&huge.encode_to_vec())).await;
    assert_eq!(status, "8", "RESOURCE_EXHAUSTED: {message}");
    assert!(message.contains("larger than"), "{message}");
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn invalid_fields_name_the_field_over_grpc() {
    let server = TestServer::start(CONFIG).await;
    let many_descriptors: Vec<(&str, &str)> = vec![("tenant", "a")];
    let too_many: Vec<&[(&str, &str)]> = (0..65).map(|_| &many_descriptors[..]).collect();
    let many_entries: Vec<(&str, &str)> = (0..33).map(|_| ("k", "v")).collect();
    let long_key = "k".repeat(257);
    let long_value = "v".repeat(4097);
    let cases: Vec<(RateLimitRequest, &str)> = vec![
        (
            request("", &[&[("tenant", "a")]]),
            "domain: must not be empty",
        ),
        (request("api", &[]), "descriptors: must not be empty"),
        (
            request("api", &too_many),
            "descriptors: 65 descriptors, more than the 64 allowed",
        ),
        (
            request("api", &[&many_entries]),
            "descriptors[0].entries: 33 entries, more than the 32 allowed",
        ),
        (
            request("api", &[&[("tenant", "a")], &[]]),
            "descriptors[1].entries: must not be empty",
        ),
        (
            request("api", &[&[("tenant", "a"), ("", "b")]]),
            "descriptors[0].entries[1].key: must not be empty",
        ),
        (
            request("api", &[&[(long_key.as_str(), "b")]]),
            "descriptors[0].entries[0].key: 257 bytes, more than the 256 allowed",
        ),
        (
            request("api", &[&[("tenant", long_value.as_str())]]),
            "descriptors[0].entries[0].value: 4097 bytes, more than the 4096 allowed",
        ),
    ];
    for (req, expected) in cases {
        let status = tonic_status(&server, req).await;
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{expected}");
        assert_eq!(status.message(), expected);
    }
    still_serving(&server).await;
    server.stop().await;
}

async fn post_json(server: &TestServer, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/v1/check"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("HTTP response");
    let status = response.status().as_u16();
    let json = response.json().await.unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test]
async fn bad_json_is_400_naming_the_field() {
    let server = TestServer::start(CONFIG).await;
    let cases: Vec<(&str, &str)> = vec![
        ("{not json", "body"),
        (r#"{"domain": 5, "descriptors": []}"#, "domain"),
        (
            r#"{"domain": "api", "descriptors": [{"entries": [{"key": "a", "value": 1}]}]}"#,
            "descriptors[0].entries[0].value",
        ),
        (
            r#"{"domain": "api", "descriptors": [{"entries": [{"key": "a"}], "bogus": true}]}"#,
            "descriptors[0].bogus",
        ),
        (
            r#"{"domain": "", "descriptors": [{"entries": [{"key": "a"}]}]}"#,
            "domain",
        ),
        (
            r#"{"domain": "api", "descriptors": [{"entries": [{"key": "a"}], "limit": {"requests_per_unit": 1, "unit": "fortnight"}}]}"#,
            "descriptors[0].limit.unit",
        ),
        (
            r#"{"domain": "api", "descriptors": [{"entries": [{"key": "a"}], "hits_addend": -1}]}"#,
            "descriptors[0].hits_addend",
        ),
    ];
    for (body, field) in cases {
        let (status, json) = post_json(&server, body.to_string()).await;
        assert_eq!(status, 400, "{body}: {json}");
        assert_eq!(json["error"]["kind"], "invalid_argument", "{body}: {json}");
        assert_eq!(json["error"]["field"], field, "{body}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{json}"
        );
    }
    // Invalid UTF-8 inside a JSON string.
    let mut bytes = br#"{"domain": "api", "descriptors": [{"entries": [{"key": ""#.to_vec();
    bytes.extend_from_slice(&[0xc3, 0x28]);
    bytes.extend_from_slice(br#""}]}]}"#);
    let (status, json) = post_json(&server, bytes).await;
    assert_eq!(status, 400, "{json}");
    // Oversized body.
    let big = format!(
        r#"{{"domain": "{}", "descriptors": []}}"#,
        "x".repeat(300 * 1024)
    );
    let (status, _) = post_json(&server, big).await;
    assert_eq!(status, 413);
    let text = reqwest::get(server.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let counted = metric(
        &text,
        r#"floodgate_errors_total{api="http",kind="invalid_argument"}"#,
    );
    assert_eq!(counted, Some(8.0), "{text}");
    still_serving(&server).await;
    server.stop().await;
}
