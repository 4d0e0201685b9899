//! The Envoy RLS v3 API over real gRPC on loopback, called with tonic's
//! generated client (an implementation independent of the server's).

mod common;

use common::{descriptor, metric, request, TestServer};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::RateLimitOverride;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::UInt64Value;
use floodgate_service::engine::EngineOptions;

const CONFIG: &str = r#"
domain: api
descriptors:
  - key: tenant
    rate_limits:
      - name: per_second
        unit: second
        requests_per_unit: 3
      - name: per_day
        unit: day
        requests_per_unit: 5
  - key: ip
    rate_limit:
      name: per_ip
      unit: minute
      requests_per_unit: 2
    shadow_mode: true
  - key: bucket
    rate_limit:
      name: bucket
      algorithm: token_bucket
      unit: second
      requests_per_unit: 10
      burst: 4
  - key: uploads
    rate_limit:
      name: uploads
      algorithm: concurrency
      unit: minute
      requests_per_unit: 2
  - key: generic
    rate_limit:
      name: generic
      unit: hour
      requests_per_unit: 100
  - key: premium
    rate_limit:
      name: premium
      unit: hour
      requests_per_unit: 1000
      replaces:
        - name: generic
  - key: internal
    rate_limit:
      unlimited: true
"#;

async fn call(server: &TestServer, request: RateLimitRequest) -> RateLimitResponse {
    server
        .grpc_client()
        .await
        .should_rate_limit(request)
        .await
        .expect("ShouldRateLimit succeeds")
        .into_inner()
}

fn codes(response: &RateLimitResponse) -> Vec<i32> {
    response.statuses.iter().map(|status| status.code).collect()
}

const OK: i32 = Code::Ok as i32;
const OVER: i32 = Code::OverLimit as i32;

#[tokio::test]
async fn statuses_carry_limit_remaining_and_reset_per_descriptor_in_order() {
    let server = TestServer::start(CONFIG).await;
    // 250 ms into the second, so the per-second window resets in 750 ms.
    server.clock.advance_ns(250_000_000);
    let response = call(
        &server,
        request(
            "api",
            &[
                &[("generic", "a")],
                &[("internal", "x")],
                &[("nothing", "y")],
            ],
        ),
    )
    .await;
    assert_eq!(response.overall_code, OK);
    assert_eq!(codes(&response), vec![OK, OK, OK]);
    let first = &response.statuses[0];
    let limit = first.current_limit.as_ref().expect("limit reported");
    assert_eq!(limit.name, "generic");
    assert_eq!(limit.requests_per_unit, 100);
    assert_eq!(limit.unit, 3, "HOUR");
    assert_eq!(first.limit_remaining, 99);
    let reset = first.duration_until_reset.expect("reset reported");
    assert_eq!((reset.seconds, reset.nanos), (3599, 750_000_000));
    // Unlimited and unmatched descriptors answer OK with no limit.
    assert!(response.statuses[1].current_limit.is_none());
    assert!(response.statuses[2].current_limit.is_none());
    server.stop().await;
}

#[tokio::test]
async fn several_limits_on_one_descriptor_all_or_nothing() {
    let server = TestServer::start(CONFIG).await;
    let tenant = || request("api", &[&[("tenant", "acme")]]);
    for expected_remaining in [2, 1, 0] {
        let response = call(&server, tenant()).await;
        assert_eq!(response.overall_code, OK);
        assert_eq!(response.statuses[0].limit_remaining, expected_remaining);
        assert_eq!(
            response.statuses[0]
                .current_limit
                .as_ref()
                .map(|l| l.name.as_str()),
            Some("per_second"),
            "the tightest limit is reported"
        );
    }
    // The per-second limit rejects; the per-day limit must not be consumed.
    for _ in 0..3 {
        let response = call(&server, tenant()).await;
        assert_eq!(response.overall_code, OVER);
        let status = &response.statuses[0];
        assert_eq!(status.code, OVER);
        assert_eq!(
            status.current_limit.as_ref().map(|l| l.name.as_str()),
            Some("per_second")
        );
    }
    server.clock.advance_ns(1_000_000_000);
    // 3 used of 5 per day: two more fit, then the day limit rejects.
    for _ in 0..2 {
        assert_eq!(call(&server, tenant()).await.overall_code, OK);
    }
    let response = call(&server, tenant()).await;
    assert_eq!(response.overall_code, OVER);
    assert_eq!(
        response.statuses[0]
            .current_limit
            .as_ref()
            .map(|l| l.name.as_str()),
        Some("per_day")
    );
    server.stop().await;
}

#[tokio::test]
async fn rejected_request_consumes_from_none_of_its_descriptors() {
    let server = TestServer::start(CONFIG).await;
    // Exhaust per-second for tenant b.
    for _ in 0..3 {
        call(&server, request("api", &[&[("tenant", "b")]])).await;
    }
    // Tenant b is over; generic is consumed only if the request is admitted.
    let response = call(
        &server,
        request("api", &[&[("generic", "g")], &[("tenant", "b")]]),
    )
    .await;
    assert_eq!(response.overall_code, OVER);
    assert_eq!(codes(&response), vec![OK, OVER]);
    assert_eq!(
        response.statuses[0].limit_remaining, 100,
        "nothing consumed from generic"
    );
    server.stop().await;
}

#[tokio::test]
async fn hits_addend_request_level_and_per_descriptor() {
    let server = TestServer::start(CONFIG).await;
    let mut req = request("api", &[&[("generic", "h")]]);
    req.hits_addend = 10;
    assert_eq!(call(&server, req).await.statuses[0].limit_remaining, 90);
    // The descriptor's own hits_addend overrides the request's.
    let mut req = request("api", &[&[("generic", "h")], &[("generic", "i")]]);
    req.hits_addend = 10;
    req.descriptors[0].hits_addend = Some(UInt64Value { value: 30 });
    let response = call(&server, req).await;
    assert_eq!(response.statuses[0].limit_remaining, 60);
    assert_eq!(response.statuses[1].limit_remaining, 90);
    // hits_addend 0 checks without consuming.
    let mut req = request("api", &[&[("generic", "h")]]);
    req.descriptors[0].hits_addend = Some(UInt64Value { value: 0 });
    assert_eq!(
        call(&server, req.clone()).await.statuses[0].limit_remaining,
        60
    );
    assert_eq!(call(&server, req).await.statuses[0].limit_remaining, 60);
    // More than what is left is over the limit and consumes nothing.
    let mut req = request("api", &[&[("generic", "h")]]);
    req.descriptors[0].hits_addend = Some(UInt64Value { value: 61 });
    let response = call(&server, req).await;
    assert_eq!(response.overall_code, OVER);
    assert_eq!(response.statuses[0].limit_remaining, 60);
    server.stop().await;
}

#[tokio::test]
async fn negative_hits_refund_never_below_zero() {
    let server = TestServer::start(CONFIG).await;
    let mut req = request("api", &[&[("generic", "r")]]);
    req.descriptors[0].hits_addend = Some(UInt64Value { value: 40 });
    assert_eq!(
        call(&server, req.clone()).await.statuses[0].limit_remaining,
        60
    );
    req.descriptors[0].is_negative_hits = true;
    req.descriptors[0].hits_addend = Some(UInt64Value { value: 15 });
    let response = call(&server, req.clone()).await;
    assert_eq!(response.overall_code, OK);
    assert_eq!(response.statuses[0].limit_remaining, 75);
    req.descriptors[0].hits_addend = Some(UInt64Value { value: 1_000 });
    assert_eq!(
        call(&server, req).await.statuses[0].limit_remaining,
        100,
        "refund stops at zero used"
    );
    server.stop().await;
}

#[tokio::test]
async fn shadow_mode_counts_and_reports_but_never_limits() {
    let server = TestServer::start(CONFIG).await;
    for _ in 0..5 {
        let response = call(&server, request("api", &[&[("ip", "10.0.0.1")]])).await;
        assert_eq!(response.overall_code, OK);
        assert_eq!(codes(&response), vec![OK]);
    }
    let text = reqwest::get(server.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let shadow = metric(
        &text,
        r#"floodgate_rate_limit_shadow_over_limit_total{domain="api",limit="per_ip"}"#,
    );
    assert_eq!(
        shadow,
        Some(3.0),
        "2 fit the limit, 3 would have been rejected"
    );
    let over = metric(
        &text,
        r#"floodgate_rate_limit_over_limit_total{domain="api",limit="per_ip"}"#,
    );
    assert_eq!(over, Some(0.0));
    server.stop().await;
}

#[tokio::test]
async fn unknown_domain_and_unmatched_descriptors_answer_ok_and_are_counted() {
    let server = TestServer::start(CONFIG).await;
    let response = call(&server, request("nope", &[&[("tenant", "a")]])).await;
    assert_eq!(response.overall_code, OK);
    assert_eq!(codes(&response), vec![OK]);
    let response = call(
        &server,
        request("api", &[&[("tenant", "a"), ("deeper", "x")]]),
    )
    .await;
    assert_eq!(response.overall_code, OK, "depth mismatch matches nothing");
    let text = reqwest::get(server.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert_eq!(
        metric(
            &text,
            r#"floodgate_unmatched_descriptors_total{reason="unknown_domain"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            r#"floodgate_unmatched_descriptors_total{reason="no_match"}"#
        ),
        Some(1.0)
    );
    assert!(
        !text.contains("nope"),
        "request data never becomes a label value"
    );
    server.stop().await;
}

#[tokio::test]
async fn ietf_headers_and_optional_x_ratelimit_headers() {
    let server = TestServer::start(CONFIG).await;
    let response = call(&server, request("api", &[&[("generic", "a")]])).await;
    let headers: Vec<(String, String)> = response
        .response_headers_to_add
        .iter()
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    assert_eq!(
        headers,
        vec![
            (
                "RateLimit-Policy".to_string(),
                "\"generic\";q=100;w=3600".to_string()
            ),
            (
                "RateLimit".to_string(),
                "\"generic\";r=99;t=3600".to_string()
            ),
        ]
    );
    server.stop().await;

    let options = EngineOptions {
        x_ratelimit_headers: true,
    };
    let server = TestServer::start_with(CONFIG, options, 1000).await;
    let response = call(&server, request("api", &[&[("generic", "a")]])).await;
    let keys: Vec<&str> = response
        .response_headers_to_add
        .iter()
        .map(|h| h.key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "RateLimit-Policy",
            "RateLimit",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset"
        ]
    );
    assert_eq!(response.response_headers_to_add[3].value, "99");
    server.stop().await;
}

#[tokio::test]
async fn replaces_drops_the_named_limit() {
    let server = TestServer::start(CONFIG).await;
    let response = call(
        &server,
        request("api", &[&[("generic", "z")], &[("premium", "z")]]),
    )
    .await;
    assert_eq!(response.overall_code, OK);
    assert!(
        response.statuses[0].current_limit.is_none(),
        "generic is replaced"
    );
    assert_eq!(
        response.statuses[1]
            .current_limit
            .as_ref()
            .map(|l| l.requests_per_unit),
        Some(1000)
    );
    server.stop().await;
}

#[tokio::test]
async fn descriptor_limit_override() {
    let server = TestServer::start(CONFIG).await;
    let mut req = request("api", &[&[("anything", "v")]]);
    req.descriptors[0].limit = Some(RateLimitOverride {
        requests_per_unit: 1,
        unit: 2,
    });
    let first = call(&server, req.clone()).await;
    assert_eq!(first.overall_code, OK);
    assert_eq!(
        first.statuses[0]
            .current_limit
            .as_ref()
            .map(|l| (l.requests_per_unit, l.unit)),
        Some((1, 2))
    );
    assert_eq!(call(&server, req).await.overall_code, OVER);
    server.stop().await;
}

#[tokio::test]
async fn token_bucket_burst_then_refill() {
    let server = TestServer::start(CONFIG).await;
    let req = || request("api", &[&[("bucket", "k")]]);
    for _ in 0..4 {
        assert_eq!(call(&server, req()).await.overall_code, OK);
    }
    assert_eq!(call(&server, req()).await.overall_code, OVER);
    server.clock.advance_ns(100_000_000); // one emission interval at 10/s
    assert_eq!(call(&server, req()).await.overall_code, OK);
    assert_eq!(call(&server, req()).await.overall_code, OVER);
    server.stop().await;
}

#[tokio::test]
async fn concurrency_leases_acquire_and_release_with_negative_hits() {
    let server = TestServer::start(CONFIG).await;
    let acquire = || request("api", &[&[("uploads", "u")]]);
    assert_eq!(call(&server, acquire()).await.overall_code, OK);
    assert_eq!(call(&server, acquire()).await.overall_code, OK);
    assert_eq!(
        call(&server, acquire()).await.overall_code,
        OVER,
        "two in flight"
    );
    let mut release = acquire();
    release.descriptors[0].is_negative_hits = true;
    assert_eq!(call(&server, release).await.overall_code, OK);
    assert_eq!(
        call(&server, acquire()).await.overall_code,
        OK,
        "released one"
    );
    // Unreleased leases expire after one unit (a minute).
    server.clock.advance_ns(60_000_000_000);
    assert_eq!(
        call(&server, acquire()).await.statuses[0].limit_remaining,
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn descriptor_with_many_entries_matches_nested_tree() {
    let config = r#"
domain: nested
descriptors:
  - key: tenant
    value: acme
    descriptors:
      - key: path
        value: /v1/*
        rate_limit: {unit: second, requests_per_unit: 1, name: acme_v1}
"#;
    let server = TestServer::start(config).await;
    let req = request("nested", &[&[("tenant", "acme"), ("path", "/v1/items")]]);
    let first = call(&server, req.clone()).await;
    assert_eq!(
        first.statuses[0]
            .current_limit
            .as_ref()
            .map(|l| l.name.as_str()),
        Some("acme_v1")
    );
    assert_eq!(call(&server, req).await.overall_code, OVER);
    let other = call(
        &server,
        request("nested", &[&[("tenant", "acme"), ("path", "/v2/items")]]),
    )
    .await;
    assert!(other.statuses[0].current_limit.is_none());
    let _ = descriptor(&[]);
    server.stop().await;
}
