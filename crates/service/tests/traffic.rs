//! The traffic recorder and dry-run replays over real HTTP and gRPC on
//! loopback: `GET /v1/traffic` (window, paging, bounds, bad parameters)
//! and the replay a dry run of a config change answers.

mod common;

use common::{metric, request, TestServer, T0};
use floodgate_contract::actions::{ActionRequest, KeyFlips, LimitFlips};
use floodgate_contract::client::{ClientError, ServiceApi, TrafficQuery};
use floodgate_service::limits::{DEFAULT_TRAFFIC_CAPACITY, TRAFFIC_PAGE_MAX};
use serde_json::{json, Value};

const CONFIG: &str = r#"
domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: minute, requests_per_unit: 10, name: per_tenant}
  - key: ip
    rate_limit: {unit: minute, requests_per_unit: 100, name: per_ip}
"#;

const SECOND: u64 = 1_000_000_000;

async fn http_check(
    client: &reqwest::Client,
    server: &TestServer,
    domain: &str,
    key: &str,
    value: &str,
) -> u16 {
    client
        .post(server.url("/v1/check"))
        .json(&json!({"domain": domain, "descriptors": [{"entries": [{"key": key, "value": value}]}]}))
        .send()
        .await
        .expect("HTTP response")
        .status()
        .as_u16()
}

fn dry_run(params: Value) -> ActionRequest {
    ActionRequest {
        params,
        dry_run: true,
        reason: "what would this do".to_string(),
        actor: "tester".to_string(),
        expect_config_version: None,
    }
}

/// Real checks (HTTP and gRPC), then a dry run lowering a limit: the
/// replay flips exactly the requests over the new quota, its "before"
/// agrees with what the service answered, and the live config and
/// counters are untouched.
#[tokio::test]
async fn dry_run_set_limit_replays_the_recorded_checks() {
    let server = TestServer::start(CONFIG).await;
    let http = reqwest::Client::new();
    let mut grpc = server.grpc_client().await;
    // Tenant a: 8 over HTTP; tenant b: 4 over gRPC; tenant c: 2 over HTTP;
    // ip: 3 over HTTP. One second apart per tenant, all in one minute.
    for _ in 0..8 {
        assert_eq!(http_check(&http, &server, "api", "tenant", "a").await, 200);
    }
    server.clock.advance_ns(SECOND);
    for _ in 0..4 {
        let answer = grpc
            .should_rate_limit(request("api", &[&[("tenant", "b")]]))
            .await
            .expect("gRPC answer")
            .into_inner();
        assert_eq!(answer.overall_code, 1, "OK");
    }
    server.clock.advance_ns(SECOND);
    for _ in 0..2 {
        assert_eq!(http_check(&http, &server, "api", "tenant", "c").await, 200);
    }
    for _ in 0..3 {
        assert_eq!(
            http_check(&http, &server, "api", "ip", "10.0.0.1").await,
            200
        );
    }
    let api = server.api();
    let before = api.state().await.expect("state");

    let preview = api
        .run_action(
            "set_limit",
            &dry_run(json!({"domain": "api", "limit": "per_tenant", "requests_per_unit": 3})),
        )
        .await
        .expect("dry run");
    assert!(preview.dry_run && !preview.applied);
    let replay = preview
        .replay
        .expect("a dry run of a config change replays");
    assert_eq!(replay.window_start_ms, T0 / 1_000_000);
    assert_eq!(replay.window_end_ms, (T0 + 2 * SECOND) / 1_000_000);
    assert_eq!(replay.requests, 17);
    assert_eq!(replay.dropped, 0);
    assert_eq!(replay.allowed_before, 17, "as the service answered");
    // a: 3 of 8, b: 3 of 4, c: 2 of 2, ip: 3 of 3.
    assert_eq!(replay.allowed_after, 3 + 3 + 2 + 3);
    assert_eq!(
        replay.flips,
        [LimitFlips {
            domain: "api".to_string(),
            limit: "per_tenant".to_string(),
            requests: 14,
            allowed_to_limited: 6,
            limited_to_allowed: 0,
        }]
    );
    assert_eq!(
        replay.top_keys,
        [
            KeyFlips {
                key: "api|tenant=a#per_tenant".to_string(),
                allowed_to_limited: 5,
                limited_to_allowed: 0,
            },
            KeyFlips {
                key: "api|tenant=b#per_tenant".to_string(),
                allowed_to_limited: 1,
                limited_to_allowed: 0,
            },
        ]
    );

    // The live config did not change, nor did its counters.
    let after = api.state().await.expect("state");
    assert_eq!(after.config, before.config);
    // The top values' window grows with the clock; their counts must not.
    assert_eq!(untimed(&after.limits), untimed(&before.limits));
    let per_tenant = after
        .limits
        .iter()
        .find(|limit| limit.name == "per_tenant")
        .expect("per_tenant");
    assert_eq!(per_tenant.requests_per_unit, 10);
    // Tenant a's 9th and 10th requests are still allowed under the live 10.
    assert_eq!(http_check(&http, &server, "api", "tenant", "a").await, 200);
    assert_eq!(http_check(&http, &server, "api", "tenant", "a").await, 200);
    assert_eq!(http_check(&http, &server, "api", "tenant", "a").await, 429);

    // The same change applied answers no replay.
    let applied = api
        .run_action(
            "set_limit",
            &ActionRequest {
                dry_run: false,
                ..dry_run(json!({"domain": "api", "limit": "per_tenant", "requests_per_unit": 3}))
            },
        )
        .await
        .expect("applied");
    assert!(applied.applied && applied.replay.is_none());
    server.stop().await;
}

fn flip(limit: &str, requests: u64, to_limited: u64, to_allowed: u64) -> LimitFlips {
    LimitFlips {
        domain: "api".to_string(),
        limit: limit.to_string(),
        requests,
        allowed_to_limited: to_limited,
        limited_to_allowed: to_allowed,
    }
}

/// Every config-changing action's dry run replays, with exact counts; a
/// change the traffic does not meet flips nothing.
#[tokio::test]
async fn every_config_action_dry_run_replays() {
    let server = TestServer::start(CONFIG).await;
    let http = reqwest::Client::new();
    // Tenant a: 12 requests against 10 a minute: 10 allowed, 2 limited.
    for index in 0..12 {
        let expected = if index < 10 { 200 } else { 429 };
        assert_eq!(
            http_check(&http, &server, "api", "tenant", "a").await,
            expected
        );
    }
    let api = server.api();
    let replay = |name: &'static str, params: Value| {
        let api = api.clone();
        async move {
            let result = api.run_action(name, &dry_run(params)).await;
            let result = result.unwrap_or_else(|error| panic!("{name}: {error}"));
            let replay = result.replay.unwrap_or_else(|| panic!("{name}: no replay"));
            assert_eq!(replay.requests, 12, "{name}");
            assert_eq!(replay.allowed_before, 10, "{name}: as the service answered");
            replay
        }
    };

    let shadow = replay(
        "set_shadow_mode",
        json!({"domain": "api", "limit": "per_tenant", "shadow": true}),
    )
    .await;
    assert_eq!(shadow.allowed_after, 12, "shadow limits never limit");
    assert_eq!(shadow.flips, [flip("per_tenant", 12, 0, 2)]);

    let removed = replay(
        "remove_limit",
        json!({"domain": "api", "limit": "per_tenant"}),
    )
    .await;
    assert_eq!(removed.allowed_after, 12);
    assert_eq!(removed.flips, [flip("per_tenant", 12, 0, 2)]);

    let added = replay(
        "add_limit",
        json!({"domain": "api", "path": [{"key": "user"}], "rate_limit": {"name": "per_user", "unit": "second", "requests_per_unit": 1}}),
    )
    .await;
    assert_eq!(added.allowed_after, 10);
    assert!(added.flips.is_empty() && added.top_keys.is_empty());

    let yaml = CONFIG.replace("requests_per_unit: 10", "requests_per_unit: 4");
    let applied = replay("apply_config", json!({"yaml": yaml})).await;
    assert_eq!(applied.allowed_after, 4);
    assert_eq!(applied.flips, [flip("per_tenant", 12, 6, 0)]);

    // Version 2 changes only per_ip; rolling back to 1 flips nothing.
    let changed = api
        .run_action(
            "set_limit",
            &ActionRequest {
                dry_run: false,
                ..dry_run(json!({"domain": "api", "limit": "per_ip", "requests_per_unit": 50}))
            },
        )
        .await
        .expect("set_limit");
    assert_eq!(changed.config_version, Some(2));
    let rollback = replay("rollback_config", json!({"to_version": 1})).await;
    assert_eq!(rollback.allowed_after, 10);
    assert!(rollback.flips.is_empty());

    // Actions that do not change the config answer no replay.
    let capacity = api
        .run_action("set_store_capacity", &dry_run(json!({"max_keys": 5})))
        .await
        .expect("set_store_capacity");
    assert!(capacity.replay.is_none());
    server.stop().await;
}

async fn traffic(server: &TestServer, query: &str) -> (u16, Value) {
    let response = reqwest::get(server.url(&format!("/v1/traffic{query}")))
        .await
        .expect("HTTP response");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

fn values(page: &floodgate_contract::state::TrafficPage) -> Vec<String> {
    page.requests
        .iter()
        .map(|request| request.descriptors[0].entries[0].value.clone())
        .collect()
}

#[tokio::test]
async fn traffic_pages_newest_first() {
    let server = TestServer::start(CONFIG).await;
    let http = reqwest::Client::new();
    for index in 0..5 {
        assert_eq!(
            http_check(&http, &server, "api", "tenant", &format!("t{index}")).await,
            200
        );
        server.clock.advance_ns(SECOND);
    }
    // An unknown domain is decided (OK) and counted, never recorded.
    for index in 0..2 {
        assert_eq!(
            http_check(&http, &server, "web", "ip", &format!("w{index}")).await,
            200
        );
    }
    let api = server.api();
    let page = api
        .traffic(&TrafficQuery {
            limit: Some(3),
            ..TrafficQuery::default()
        })
        .await
        .expect("traffic");
    assert_eq!(page.window.capacity, DEFAULT_TRAFFIC_CAPACITY as u64);
    assert_eq!(
        (
            page.window.held,
            page.window.recorded,
            page.window.dropped,
            page.window.unknown_domain
        ),
        (5, 5, 0, 2)
    );
    assert!(page.window.bytes > 0 && page.window.bytes <= page.window.budget_bytes);
    assert_eq!(page.window.start_ms, T0 / 1_000_000);
    assert_eq!(page.window.end_ms, (T0 + 4 * SECOND) / 1_000_000);
    assert_eq!(values(&page), ["t4", "t3", "t2"]);
    let seqs: Vec<u64> = page.requests.iter().map(|request| request.seq).collect();
    assert_eq!(seqs, [4, 3, 2]);
    assert_eq!(page.requests[0].domain, "api");
    assert_eq!(page.requests[0].time_ms, (T0 + 4 * SECOND) / 1_000_000);
    assert_eq!(page.next_before, Some(2));

    let older = api
        .traffic(&TrafficQuery {
            limit: Some(3),
            before: page.next_before,
            ..TrafficQuery::default()
        })
        .await
        .expect("traffic");
    assert_eq!(values(&older), ["t1", "t0"]);
    assert_eq!(older.next_before, None);

    let web = api
        .traffic(&TrafficQuery {
            domain: Some("web".to_string()),
            ..TrafficQuery::default()
        })
        .await
        .expect("traffic");
    assert!(values(&web).is_empty());
    assert_eq!(web.next_before, None);

    let metrics = api.metrics().await.expect("metrics");
    assert_eq!(
        metric(&metrics, "floodgate_traffic_recorded_total"),
        Some(5.0)
    );
    assert_eq!(
        metric(&metrics, "floodgate_traffic_dropped_total"),
        Some(0.0)
    );
    server.stop().await;
}

#[tokio::test]
async fn traffic_pages_are_bounded() {
    let server = TestServer::start(CONFIG).await;
    let mut grpc = server.grpc_client().await;
    let total = TRAFFIC_PAGE_MAX + 5;
    for index in 0..total {
        grpc.should_rate_limit(request("api", &[&[("ip", &index.to_string())]]))
            .await
            .expect("gRPC answer");
    }
    let (status, body) = traffic(&server, "?limit=100000").await;
    assert_eq!(status, 200, "{body}");
    let requests = body["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), TRAFFIC_PAGE_MAX);
    assert_eq!(requests[0]["seq"], json!(total - 1));
    assert_eq!(body["next_before"], json!(5));
    // Without a limit: the default page.
    let (_, body) = traffic(&server, "").await;
    assert_eq!(body["requests"].as_array().map(Vec::len), Some(100));
    server.stop().await;
}

#[tokio::test]
async fn the_ring_keeps_the_most_recent() {
    let server = TestServer::start_recording(CONFIG, 4).await;
    let http = reqwest::Client::new();
    for index in 0..6 {
        assert_eq!(
            http_check(&http, &server, "api", "tenant", &format!("t{index}")).await,
            200
        );
    }
    let page = server
        .api()
        .traffic(&TrafficQuery::default())
        .await
        .expect("traffic");
    assert_eq!(
        (page.window.capacity, page.window.held, page.window.recorded),
        (4, 4, 6)
    );
    assert_eq!(values(&page), ["t5", "t4", "t3", "t2"]);
    assert_eq!(page.next_before, None);
    // A replay sees the same four.
    let preview = server
        .api()
        .run_action(
            "set_limit",
            &dry_run(json!({"domain": "api", "limit": "per_tenant", "requests_per_unit": 1})),
        )
        .await
        .expect("dry run");
    let replay = preview.replay.expect("replay");
    assert_eq!(
        (replay.requests, replay.allowed_before, replay.allowed_after),
        (4, 4, 4)
    );
    server.stop().await;
}

#[tokio::test]
async fn capacity_zero_records_nothing() {
    let server = TestServer::start_recording(CONFIG, 0).await;
    let http = reqwest::Client::new();
    assert_eq!(http_check(&http, &server, "api", "tenant", "a").await, 200);
    let api = server.api();
    let page = api
        .traffic(&TrafficQuery::default())
        .await
        .expect("traffic");
    assert_eq!(page.window.capacity, 0);
    assert_eq!(page.window.recorded, 0);
    assert!(page.requests.is_empty());
    let preview = api
        .run_action(
            "set_limit",
            &dry_run(json!({"domain": "api", "limit": "per_tenant", "requests_per_unit": 1})),
        )
        .await
        .expect("dry run");
    assert!(preview.replay.is_none());
    let metrics = api.metrics().await.expect("metrics");
    assert_eq!(
        metric(&metrics, "floodgate_traffic_recorded_total"),
        Some(0.0)
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_traffic_parameters_are_named() {
    let server = TestServer::start(CONFIG).await;
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=ten", "limit"),
        ("?limit=-1", "limit"),
        ("?before=x", "before"),
        ("?domain=", "domain"),
        ("?limit=5&page=2", "page"),
    ] {
        let (status, body) = traffic(&server, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["kind"], "invalid_argument", "{query}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    let long = "d".repeat(floodgate_service::limits::MAX_DOMAIN_BYTES + 1);
    let (status, body) = traffic(&server, &format!("?domain={long}")).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("domain"))
    );
    // Through the typed client too.
    match server
        .api()
        .traffic(&TrafficQuery {
            limit: Some(0),
            ..TrafficQuery::default()
        })
        .await
    {
        Err(ClientError::Api { status, error }) => {
            assert_eq!((status, error.error.field.as_str()), (400, "limit"));
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    server.stop().await;
}

/// Limits with their top values' window (which grows with the clock) left
/// out.
fn untimed(
    limits: &[floodgate_contract::state::LimitState],
) -> Vec<floodgate_contract::state::LimitState> {
    limits
        .iter()
        .cloned()
        .map(|mut limit| {
            limit.top_values.window_seconds = 0;
            limit
        })
        .collect()
}
