//! The control plane over real HTTP on loopback, through the contract's
//! typed client: every action (dry run, real run, its events, the state
//! after it, its inverse), config as state, events (paging, long poll,
//! server-sent events), health, and the in-process transport's parity.

mod common;

use common::{metric, TestServer};
use floodgate_contract::actions::{ActionRequest, ActionResult, FailurePolicy, CATALOG};
use floodgate_contract::client::{ClientError, EventQuery, ServiceApi};
use floodgate_contract::events::Event;
use floodgate_contract::state::{ConfigApplyRequest, LimitState, State};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const CONFIG: &str = r#"
domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: hour, requests_per_unit: 100, name: per_tenant}
  - key: user
    rate_limits:
      - {unit: hour, requests_per_unit: 1000, name: user_hourly, algorithm: token_bucket, burst: 50}
      - {unit: minute, requests_per_unit: 10, name: user_minute}
  - key: uploads
    rate_limit: {algorithm: concurrency, unit: minute, requests_per_unit: 5, name: uploads}
---
domain: web
descriptors:
  - key: ip
    rate_limit: {unit: second, requests_per_unit: 10, name: per_ip}
"#;

async fn check(server: &TestServer, domain: &str, key: &str, value: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/v1/check"))
        .json(&json!({"domain": domain, "descriptors": [{"entries": [{"key": key, "value": value}]}]}))
        .send()
        .await
        .expect("HTTP response")
}

/// Some usage, so limits have counters and hottest keys.
async fn warm_up(server: &TestServer) {
    for (key, value, times) in [
        ("tenant", "acme", 3),
        ("tenant", "beta", 1),
        ("user", "u1", 2),
        ("uploads", "f", 2),
    ] {
        for _ in 0..times {
            assert_eq!(check(server, "api", key, value).await.status(), 200);
        }
    }
    assert_eq!(check(server, "web", "ip", "10.0.0.1").await.status(), 200);
}

fn request(params: Value, dry_run: bool) -> ActionRequest {
    ActionRequest {
        params,
        dry_run,
        reason: "test".to_string(),
        actor: "tester".to_string(),
        expect_config_version: None,
    }
}

async fn events_after(api: &impl ServiceApi, after: u64) -> Vec<Event> {
    api.events(&EventQuery {
        after,
        limit: Some(1000),
        ..EventQuery::default()
    })
    .await
    .expect("events")
    .events
}

fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|event| event.body.type_name()).collect()
}

fn limit<'a>(state: &'a State, domain: &str, name: &str) -> Option<&'a LimitState> {
    state
        .limits
        .iter()
        .find(|limit| limit.domain == domain && limit.name == name)
}

fn api_error(result: Result<ActionResult, ClientError>) -> (u16, String, String, String) {
    match result {
        Err(ClientError::Api { status, error }) => (
            status,
            error.error.kind,
            error.error.field,
            error.error.message,
        ),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Runs `name` as a dry run (nothing changes; action_requested and
/// action_previewed), then for real (action_requested, `effects`,
/// action_applied; `check` sees the state after), then its inverse, which
/// must restore the state exactly.
async fn exercise(
    server: &TestServer,
    name: &str,
    params: Value,
    effects: &[&str],
    check: impl FnOnce(&State, &State),
) -> ActionResult {
    let api = server.api();
    let before = api.state().await.expect("state");
    let cursor = before.events.newest_seq;

    let preview = api
        .run_action(name, &request(params.clone(), true))
        .await
        .unwrap_or_else(|error| panic!("{name} dry run: {error}"));
    assert!(preview.dry_run && !preview.applied, "{name}: {preview:?}");
    assert!(
        !preview.changes.is_empty(),
        "{name}: a preview says what changes"
    );
    assert!(preview.inverse.is_none());
    let unchanged = api.state().await.expect("state");
    assert_eq!(
        unchanged.limits, before.limits,
        "{name}: a dry run changes nothing"
    );
    assert_eq!(unchanged.config, before.config);
    assert_eq!(
        (
            unchanged.store.capacity,
            unchanged.store.keys,
            unchanged.store.failure_policy
        ),
        (
            before.store.capacity,
            before.store.keys,
            before.store.failure_policy
        )
    );
    assert_eq!(unchanged.drain, before.drain);
    let events = events_after(&api, cursor).await;
    assert_eq!(
        types(&events),
        ["action_requested", "action_previewed"],
        "{name}"
    );
    assert!(events
        .iter()
        .all(|event| event.actor == "tester" && event.reason == "test"));
    assert_eq!(events[1].seq, preview.event_seq);

    let cursor = preview.event_seq;
    let result = api
        .run_action(name, &request(params, false))
        .await
        .unwrap_or_else(|error| panic!("{name}: {error}"));
    assert!(result.applied && !result.dry_run, "{name}: {result:?}");
    let events = events_after(&api, cursor).await;
    let mut expected = vec!["action_requested"];
    expected.extend_from_slice(effects);
    expected.push("action_applied");
    assert_eq!(types(&events), expected, "{name}");
    let applied = events.last().expect("events");
    assert_eq!(applied.seq, result.event_seq);
    match &applied.body {
        floodgate_contract::events::EventBody::ActionApplied {
            action, inverse, ..
        } => {
            assert_eq!(action, name);
            assert_eq!(inverse, &result.inverse);
        }
        other => panic!("{other:?}"),
    }
    // Dry runs of config changes replay the recorded traffic; applied
    // runs and other actions do not.
    let config_change = effects.contains(&"config_applied");
    assert_eq!(
        preview.replay.is_some(),
        config_change,
        "{name}: {preview:?}"
    );
    assert!(result.replay.is_none(), "{name}: {result:?}");
    if config_change {
        assert_eq!(result.config_version, Some(before.config.version + 1));
        assert!(result.diff.as_deref().is_some_and(|diff| !diff.is_empty()));
    }
    let after = api.state().await.expect("state");
    check(&before, &after);

    if let Some(inverse) = &result.inverse {
        let undone = api
            .run_action(&inverse.action, &request(inverse.params.clone(), false))
            .await
            .unwrap_or_else(|error| panic!("inverse of {name}: {error}"));
        assert!(undone.applied, "inverse of {name}: {undone:?}");
        let restored = api.state().await.expect("state");
        // The top values' window grows with the clock; the rest must not.
        assert_eq!(
            untimed(&restored.limits),
            untimed(&before.limits),
            "inverse of {name}"
        );
        assert_eq!(
            restored.config.hash, before.config.hash,
            "inverse of {name}"
        );
        assert_eq!(
            (restored.store.capacity, restored.store.failure_policy),
            (before.store.capacity, before.store.failure_policy)
        );
        assert_eq!(restored.drain, before.drain);
    }
    result
}

#[tokio::test]
async fn every_action_previews_applies_records_and_is_undone_exactly() {
    let server = TestServer::start(CONFIG).await;
    warm_up(&server).await;
    let api = server.api();
    let start = api.state().await.expect("state");
    assert_eq!(start.config.version, 1);
    let tenant = limit(&start, "api", "per_tenant").expect("per_tenant");
    assert_eq!(tenant.hottest.len(), 2);
    assert_eq!(tenant.hottest[0].key, "api|tenant=acme#per_tenant");
    assert_eq!(tenant.hottest[0].used, 3);
    // Four hits, none rejected: below the one-in-eight sample.
    assert!(tenant.top_values.values.is_empty());
    assert!(tenant.top_values.window_seconds >= 60);
    assert_eq!(
        limit(&start, "api", "uploads")
            .expect("uploads")
            .leases_in_flight,
        Some(2)
    );
    let mut exercised = BTreeSet::new();

    exercise(
        &server,
        "set_limit",
        json!({"domain": "api", "limit": "per_tenant", "requests_per_unit": 50}),
        &["config_applied"],
        |before, after| {
            let (old, new) = (
                limit(before, "api", "per_tenant").expect("before"),
                limit(after, "api", "per_tenant").expect("after"),
            );
            assert_eq!(new.requests_per_unit, 50);
            assert_eq!(
                new.hottest, old.hottest,
                "a quota change keeps the counters"
            );
        },
    )
    .await;
    let result = exercise(
        &server,
        "set_limit",
        json!({"domain": "api", "limit": "user_hourly", "algorithm": "fixed_window"}),
        &["config_applied"],
        |_, after| {
            let new = limit(after, "api", "user_hourly").expect("after");
            assert_eq!(new.algorithm, "fixed_window");
            assert_eq!(new.burst, 1000, "the burst went with the token bucket");
            assert!(new.hottest.is_empty(), "a new algorithm starts afresh");
        },
    )
    .await;
    assert_eq!(
        result.inverse.expect("inverse").params,
        json!({"domain": "api", "limit": "user_hourly", "algorithm": "token_bucket", "burst": 50})
    );
    exercised.insert("set_limit");

    exercise(
        &server,
        "set_shadow_mode",
        json!({"domain": "api", "limit": "per_tenant", "shadow": true}),
        &["config_applied"],
        |_, after| assert!(limit(after, "api", "per_tenant").expect("after").shadow),
    )
    .await;
    exercised.insert("set_shadow_mode");

    let result = exercise(
        &server,
        "add_limit",
        json!({"domain": "api", "path": [{"key": "tenant"}],
               "rate_limit": {"name": "tenant_daily", "unit": "day", "requests_per_unit": 1000}}),
        &["config_applied"],
        |before, after| {
            let added = limit(after, "api", "tenant_daily").expect("added");
            assert_eq!(
                (added.unit.as_str(), added.requests_per_unit),
                ("day", 1000)
            );
            assert_eq!(
                limit(after, "api", "per_tenant").expect("kept").hottest,
                limit(before, "api", "per_tenant").expect("kept").hottest
            );
        },
    )
    .await;
    assert_eq!(result.inverse.expect("inverse").action, "remove_limit");
    exercise(
        &server,
        "add_limit",
        json!({"domain": "web", "path": [{"key": "ip"}, {"key": "path", "value": "/login"}],
               "rate_limit": {"name": "login", "unit": "minute", "requests_per_unit": 5}, "shadow_mode": true}),
        &["config_applied"],
        |_, after| assert!(limit(after, "web", "login").expect("added").shadow),
    )
    .await;
    exercised.insert("add_limit");

    let result = exercise(
        &server,
        "remove_limit",
        json!({"domain": "api", "limit": "user_minute"}),
        &["config_applied"],
        |_, after| {
            assert!(limit(after, "api", "user_minute").is_none());
            assert!(limit(after, "api", "user_hourly").is_some());
        },
    )
    .await;
    assert_eq!(result.inverse.expect("inverse").action, "rollback_config");
    exercised.insert("remove_limit");

    let yaml = CONFIG.replace(
        "requests_per_unit: 10, name: per_ip",
        "requests_per_unit: 20, name: per_ip",
    );
    exercise(
        &server,
        "apply_config",
        json!({ "yaml": yaml }),
        &["config_applied"],
        |_, after| {
            assert_eq!(
                limit(after, "web", "per_ip")
                    .expect("per_ip")
                    .requests_per_unit,
                20
            );
        },
    )
    .await;
    exercised.insert("apply_config");

    // Version 2 set per_tenant to 50.
    exercise(
        &server,
        "rollback_config",
        json!({"to_version": 2}),
        &["config_applied"],
        |_, after| {
            assert_eq!(
                limit(after, "api", "per_tenant")
                    .expect("per_tenant")
                    .requests_per_unit,
                50
            );
        },
    )
    .await;
    exercised.insert("rollback_config");

    exercise(
        &server,
        "set_store_capacity",
        json!({"max_keys": 5000}),
        &[],
        |_, after| assert_eq!(after.store.capacity, 5000),
    )
    .await;
    exercised.insert("set_store_capacity");

    exercise(
        &server,
        "set_failure_policy",
        json!({"policy": "fail_closed"}),
        &["failure_policy_changed"],
        |_, after| assert_eq!(after.store.failure_policy, FailurePolicy::FailClosed),
    )
    .await;
    exercised.insert("set_failure_policy");

    exercise(
        &server,
        "drain",
        json!({}),
        &["drain_changed"],
        |_, after| {
            assert!(after.drain.draining);
        },
    )
    .await;
    exercised.insert("drain");
    api.run_action("drain", &request(Value::Null, false))
        .await
        .expect("drain");
    let health = api.health().await.expect("health while draining");
    assert_eq!(health.status, "draining");
    let status = reqwest::get(server.url("/v1/health"))
        .await
        .expect("health")
        .status();
    assert_eq!(status, 503);
    exercise(
        &server,
        "undrain",
        json!({}),
        &["drain_changed"],
        |_, after| {
            assert!(!after.drain.draining);
        },
    )
    .await;
    exercised.insert("undrain");
    api.run_action("undrain", &request(Value::Null, false))
        .await
        .expect("undrain");
    assert_eq!(api.health().await.expect("health").status, "ok");

    // Eviction cannot be undone: check the state after it instead.
    let result = exercise(
        &server,
        "evict_keys",
        json!({"limit": {"domain": "api", "limit": "per_tenant"}}),
        &[],
        |before, after| {
            assert!(limit(after, "api", "per_tenant")
                .expect("kept")
                .hottest
                .is_empty());
            assert_eq!(after.store.keys, before.store.keys - 2);
        },
    )
    .await;
    assert!(result.inverse.is_none());
    exercise(
        &server,
        "evict_keys",
        json!({"key_prefix": "api|uploads="}),
        &[],
        |_, after| {
            let uploads = limit(after, "api", "uploads").expect("kept");
            assert!(uploads.hottest.is_empty());
            assert_eq!(uploads.leases_in_flight, Some(0));
        },
    )
    .await;
    exercised.insert("evict_keys");
    // Evicted clients start with a full quota.
    let answer: Value = check(&server, "api", "tenant", "acme")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer["statuses"][0]["limit_remaining"], 99);

    let all: BTreeSet<&str> = CATALOG.iter().map(|def| def.name).collect();
    assert_eq!(exercised, all, "every action of the catalog is exercised");
    let history = api
        .config_versions(None, Some(100))
        .await
        .expect("versions");
    assert!(history
        .versions
        .iter()
        .all(|v| v.actor == "tester" || v.version == 1));
    assert_eq!(
        history.versions.last().map(|v| v.via.as_str()),
        Some("startup")
    );
    server.stop().await;
}

#[tokio::test]
async fn no_ops_apply_nothing_and_have_no_inverse() {
    let server = TestServer::start(CONFIG).await;
    let api = server.api();
    let result = api
        .run_action("undrain", &request(json!({}), false))
        .await
        .expect("undrain");
    assert!(!result.applied && result.inverse.is_none() && result.changes.is_empty());
    let result = api
        .run_action(
            "set_limit",
            &request(
                json!({"domain": "api", "limit": "per_tenant", "requests_per_unit": 100}),
                false,
            ),
        )
        .await
        .expect("same value");
    assert!(!result.applied);
    assert_eq!(
        api.config().await.expect("config").version,
        1,
        "no new version"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_field_and_recorded() {
    let server = TestServer::start(CONFIG).await;
    let api = server.api();
    let cursor = api.state().await.expect("state").events.newest_seq;
    let cases = [
        (
            "set_limit",
            json!({"domain": "api", "limit": "per_tenant", "requests_per_unit": "many"}),
            "params.requests_per_unit",
        ),
        (
            "set_limit",
            json!({"limit": "per_tenant", "requests_per_unit": 5}),
            "params.domain",
        ),
        (
            "set_limit",
            json!({"domain": "api", "limit": "per_tenant", "rpu": 5}),
            "params.rpu",
        ),
        (
            "set_limit",
            json!({"domain": "api", "limit": "per_tenant", "algorithm": "leaky"}),
            "params.algorithm",
        ),
        (
            "set_limit",
            json!({"domain": "api", "limit": "per_tenant"}),
            "params",
        ),
        (
            "set_store_capacity",
            json!({"max_keys": -1}),
            "params.max_keys",
        ),
        (
            "set_failure_policy",
            json!({"policy": "fail_sideways"}),
            "params.policy",
        ),
        (
            "add_limit",
            json!({"domain": "api", "path": [{"key": "x"}], "rate_limit": {"name": "n", "unit": 5}}),
            "params.rate_limit.unit",
        ),
        (
            "add_limit",
            json!({"domain": "api", "path": [{"key": "x"}], "rate_limit": {"unit": "second"}}),
            "params.rate_limit.name",
        ),
        (
            "apply_config",
            json!({"yaml": "domain: a\ndescriptors:\n  - key: k\n    rate_limit: {unit: fortnight}\n"}),
            "params.yaml",
        ),
        ("drain", json!({"now": true}), "params.now"),
    ];
    for (action, params, field) in &cases {
        let (status, kind, got, message) = api_error(
            api.run_action(action, &request(params.clone(), false))
                .await,
        );
        assert_eq!(
            (status, kind.as_str(), got.as_str()),
            (400, "invalid_argument", *field),
            "{action} {params}: {message}"
        );
    }
    let (_, _, _, message) = api_error(
        api.run_action("apply_config", &request(json!({"yaml": "domain: a\ndescriptors:\n  - key: k\n    rate_limit: {unit: fortnight}\n"}), false))
            .await,
    );
    assert!(
        message.contains("descriptors[0].rate_limit.unit: unknown unit \"fortnight\""),
        "{message}"
    );
    // Failed preconditions: 409 naming what.
    let (status, kind, field, message) = api_error(
        api.run_action(
            "set_limit",
            &request(json!({"domain": "api", "limit": "nope", "burst": 3}), false),
        )
        .await,
    );
    assert_eq!(
        (status, kind.as_str(), field.as_str()),
        (409, "precondition_failed", "params.limit")
    );
    assert!(message.contains("nope"), "{message}");
    let (status, _, field, _) = api_error(
        api.run_action(
            "set_store_capacity",
            &request(json!({"max_keys": 0}), false),
        )
        .await,
    );
    assert_eq!((status, field.as_str()), (409, "params.max_keys"));
    let (status, _, field, _) = api_error(
        api.run_action("evict_keys", &request(json!({}), false))
            .await,
    );
    assert_eq!((status, field.as_str()), (409, "params"));
    let (status, kind, field, _) =
        api_error(api.run_action("reboot", &request(json!({}), false)).await);
    assert_eq!(
        (status, kind.as_str(), field.as_str()),
        (404, "not_found", "action")
    );
    // A body that is not an action request.
    let response = reqwest::Client::new()
        .post(server.url("/v1/actions/drain"))
        .header("content-type", "application/json")
        .body(r#"{"dry_run": "yes"}"#)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["field"], "dry_run");

    // Each refusal: action_requested then action_refused, nothing else.
    let events = events_after(&api, cursor).await;
    let refusals = cases.len() + 5;
    assert_eq!(events.len(), 2 * refusals, "{:?}", types(&events));
    for pair in events.chunks(2) {
        assert_eq!(types(pair), ["action_requested", "action_refused"]);
    }
    assert_eq!(api.config().await.expect("config").version, 1);
    server.stop().await;
}

#[tokio::test]
async fn config_is_state_with_a_bounded_paged_history() {
    let server = TestServer::start(CONFIG).await;
    let api = server.api();
    let config = api.config().await.expect("config");
    assert_eq!(config.version, 1);
    assert_eq!(config.domains.len(), 2);
    assert_eq!(config.domains[0]["domain"], "api");
    assert!(config.yaml.starts_with("domain: api\n") && config.yaml.contains("---\ndomain: web\n"));
    let versions = api.config_versions(None, None).await.expect("versions");
    assert_eq!(versions.versions.len(), 1);
    assert_eq!(versions.versions[0].hash, config.hash);
    assert_eq!(
        (
            versions.versions[0].actor.as_str(),
            versions.versions[0].via.as_str()
        ),
        ("system", "startup")
    );

    // A dry run answers validation and a readable diff; nothing changes.
    let changed = config
        .yaml
        .replace("requests_per_unit: 100\n", "requests_per_unit: 7\n");
    let preview = api
        .apply_config(&ConfigApplyRequest {
            yaml: Some(changed.clone()),
            patch: None,
            dry_run: true,
            reason: "try".into(),
            actor: String::new(),
            expect_config_version: None,
        })
        .await
        .expect("dry run");
    let diff = preview.diff.expect("diff");
    assert!(
        diff.contains("-    requests_per_unit: 100\n+    requests_per_unit: 7"),
        "{diff}"
    );
    assert_eq!(
        preview.changes[0].path,
        "limits[api/per_tenant].requests_per_unit"
    );
    assert_eq!(api.config().await.expect("config").hash, config.hash);

    // A patch goes through set_limit; the anonymous actor is recorded.
    let patched = api
        .apply_config(&ConfigApplyRequest {
            yaml: None,
            patch: Some(floodgate_contract::actions::SetLimitParams {
                domain: "web".into(),
                limit: "per_ip".into(),
                requests_per_unit: Some(11),
                burst: None,
                algorithm: None,
                unit: None,
            }),
            dry_run: false,
            reason: String::new(),
            actor: String::new(),
            expect_config_version: None,
        })
        .await
        .expect("patch");
    assert_eq!(patched.config_version, Some(2));
    let versions = api.config_versions(None, None).await.expect("versions");
    assert_eq!(
        (
            versions.versions[0].via.as_str(),
            versions.versions[0].actor.as_str()
        ),
        ("set_limit", "anonymous")
    );
    let both = reqwest::Client::new()
        .post(server.url("/v1/config"))
        .json(&json!({"yaml": changed, "patch": {"domain": "web", "limit": "per_ip", "burst": 1}}))
        .send()
        .await
        .expect("response");
    assert_eq!(both.status(), 400);

    // Many versions: the history keeps the newest, pages newest first, and
    // a rollback to a dropped or unknown version is 404 naming it.
    let capacity = versions.capacity;
    for i in 0..capacity {
        let yaml = config.yaml.replace(
            "requests_per_unit: 100\n",
            &format!("requests_per_unit: {}\n", 200 + i),
        );
        api.apply_config(&ConfigApplyRequest {
            yaml: Some(yaml),
            patch: None,
            dry_run: false,
            reason: String::new(),
            actor: String::new(),
            expect_config_version: None,
        })
        .await
        .expect("apply");
    }
    let newest = capacity + 2;
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = api.config_versions(before, Some(7)).await.expect("page");
        seen.extend(page.versions.iter().map(|v| v.version));
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let expected: Vec<u64> = (3..=newest).rev().collect();
    assert_eq!(seen, expected);
    let rollback = |to: u64| {
        let api = server.api();
        async move { api.rollback_config(to, &request(Value::Null, false)).await }
    };
    let (status, kind, field, message) = api_error(rollback(1).await);
    assert_eq!(
        (status, kind.as_str(), field.as_str()),
        (404, "not_found", "params.to_version")
    );
    assert!(
        message.contains("config version 1 is no longer in the history"),
        "{message}"
    );
    let (status, _, _, message) = api_error(rollback(newest + 5).await);
    assert_eq!(status, 404);
    assert!(
        message.contains(&format!("config version {} does not exist", newest + 5)),
        "{message}"
    );
    let back = rollback(3).await.expect("rollback");
    assert_eq!(back.config_version, Some(newest + 1));
    assert_eq!(
        api.config().await.expect("config").yaml,
        config
            .yaml
            .replace("requests_per_unit: 100\n", "requests_per_unit: 200\n")
    );
    server.stop().await;
}

/// Checks keep flowing while the config changes: every request is
/// answered, and the counters of the limit that did not change carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn config_changes_under_load_lose_no_request_and_keep_unchanged_counters() {
    const LOAD: &str = "
domain: load
descriptors:
  - key: tenant
    rate_limit: {unit: hour, requests_per_unit: 1000000, name: steady}
  - key: other
    rate_limit: {unit: hour, requests_per_unit: 10, name: changing}
";
    const TASKS: u64 = 4;
    const PER_TASK: u64 = 150;
    let server = TestServer::start(LOAD).await;
    for _ in 0..5 {
        assert_eq!(check(&server, "load", "tenant", "a").await.status(), 200);
    }
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let url = server.url("/v1/check");
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let body = json!({"domain": "load", "descriptors": [{"entries": [{"key": "tenant", "value": "a"}]}]});
            let mut ok = 0u64;
            for _ in 0..PER_TASK {
                let response = client.post(&url).json(&body).send().await.expect("answer");
                if response.status() == 200 {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let api = server.api();
    for round in 0..20u64 {
        let params =
            json!({"domain": "load", "limit": "changing", "requests_per_unit": 10 + round % 2 + 1});
        api.run_action("set_limit", &request(params, false))
            .await
            .expect("set_limit");
        let yaml = LOAD.replace(
            "requests_per_unit: 10,",
            &format!("requests_per_unit: {},", 30 + round),
        );
        api.run_action("apply_config", &request(json!({"yaml": yaml}), false))
            .await
            .expect("apply_config");
    }
    let mut answered = 0;
    for task in tasks {
        answered += task.await.expect("task");
    }
    assert_eq!(answered, TASKS * PER_TASK, "every request answered OK");
    let answer: Value = check(&server, "load", "tenant", "a")
        .await
        .json()
        .await
        .expect("json");
    let used = 5 + TASKS * PER_TASK + 1;
    assert_eq!(answer["statuses"][0]["limit_remaining"], 1_000_000 - used);
    let metrics = api.metrics().await.expect("metrics");
    assert_eq!(
        metric(
            &metrics,
            r#"floodgate_rate_limit_hits_total{domain="load",limit="steady"}"#
        ),
        Some(used as f64)
    );
    assert_eq!(api.config().await.expect("config").version, 41);
    server.stop().await;
}

#[tokio::test]
async fn event_pages_never_skip_or_repeat_while_events_are_produced() {
    let server = TestServer::start(CONFIG).await;
    let api = server.api();
    const ROUNDS: usize = 60;
    let producer = {
        let api = server.api();
        tokio::spawn(async move {
            for i in 0..ROUNDS {
                let action = if i % 2 == 0 { "drain" } else { "undrain" };
                api.run_action(action, &request(json!({}), false))
                    .await
                    .expect("action");
            }
        })
    };
    let mut seen = Vec::new();
    let mut after = 0;
    let mut producer = Some(producer);
    loop {
        let page = api
            .events(&EventQuery {
                after,
                limit: Some(3),
                wait_ms: Some(200),
                ..EventQuery::default()
            })
            .await
            .expect("page");
        seen.extend(page.events.iter().map(|event| event.seq));
        assert!(page.next_after >= after);
        after = page.next_after;
        if page.events.is_empty() {
            match producer.take() {
                Some(task) if !task.is_finished() => producer = Some(task),
                Some(task) => {
                    task.await.expect("producer");
                    // One more round: everything produced is now readable.
                }
                None => break,
            }
        }
    }
    // service_started, then three events per action.
    let expected: Vec<u64> = (1..=1 + 3 * ROUNDS as u64).collect();
    assert_eq!(seen, expected);
    // A type filter skips the others, and the cursor still moves past them.
    let page = api
        .events(&EventQuery {
            after: 0,
            types: vec!["drain_changed".into()],
            limit: Some(1000),
            wait_ms: None,
        })
        .await
        .expect("filtered");
    assert_eq!(page.events.len(), ROUNDS);
    assert_eq!(page.next_after, 1 + 3 * ROUNDS as u64);
    let bad = reqwest::get(server.url("/v1/events?type=nope"))
        .await
        .expect("response");
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["field"], "type");
    server.stop().await;
}

#[tokio::test]
async fn a_long_poll_returns_when_an_event_arrives() {
    let server = TestServer::start(CONFIG).await;
    let api = server.api();
    let newest = api.state().await.expect("state").events.newest_seq;
    let poll = {
        let api = server.api();
        tokio::spawn(async move {
            api.events(&EventQuery {
                after: newest,
                types: vec!["drain_changed".into()],
                limit: None,
                wait_ms: Some(30_000),
            })
            .await
        })
    };
    api.run_action("drain", &request(json!({}), false))
        .await
        .expect("drain");
    let page = poll.await.expect("task").expect("page");
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].body.type_name(), "drain_changed");
    // Nothing to wait for: an empty page once the wait is over.
    let after = api.state().await.expect("state").events.newest_seq;
    let empty = api
        .events(&EventQuery {
            after,
            wait_ms: Some(20),
            ..EventQuery::default()
        })
        .await
        .expect("page");
    assert!(empty.events.is_empty());
    assert_eq!(empty.next_after, after);
    server.stop().await;
}

/// Reads server-sent events until `count` have arrived; answers their
/// (id, event type, JSON) in order.
async fn read_sse(response: &mut reqwest::Response, count: usize) -> Vec<(u64, String, Event)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = response.chunk().await.expect("chunk").expect("stream open");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (None, None, None);
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("id:") {
                    id = value.trim().parse::<u64>().ok();
                } else if let Some(value) = line.strip_prefix("event:") {
                    kind = Some(value.trim().to_string());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str::<Event>(value.trim()).expect("event JSON"));
                }
            }
            if let (Some(id), Some(kind), Some(data)) = (id, kind, data) {
                events.push((id, kind, data));
            }
        }
    }
    events
}

#[tokio::test]
async fn the_event_stream_delivers_every_event_in_order() {
    let server = TestServer::start(CONFIG).await;
    let api = server.api();
    let client = reqwest::Client::new();
    let mut response = client
        .get(server.url("/v1/events/stream?after=0"))
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    for i in 0..5 {
        let action = if i % 2 == 0 { "drain" } else { "undrain" };
        api.run_action(action, &request(json!({}), false))
            .await
            .expect("action");
    }
    let events = read_sse(&mut response, 16).await;
    let seqs: Vec<u64> = events.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(seqs, (1..=16).collect::<Vec<u64>>());
    for (id, kind, event) in &events {
        assert_eq!((*id, kind.as_str()), (event.seq, event.body.type_name()));
    }
    assert_eq!(events[0].1, "service_started");
    // A reconnecting client resumes after the last id it saw.
    let mut resumed = client
        .get(server.url("/v1/events/stream?type=drain_changed"))
        .header("last-event-id", "10")
        .send()
        .await
        .expect("stream");
    api.run_action("undrain", &request(json!({}), false))
        .await
        .expect("undrain");
    let events = read_sse(&mut resumed, 3).await;
    let seqs: Vec<u64> = events.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(seqs, [12, 15, 18]);
    // Shutdown ends the stream (after service_stopping).
    server.stop().await;
    let mut rest = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        rest.lines()
            .any(|line| line.starts_with("event:") && line.ends_with("service_stopping")),
        "{rest}"
    );
}

#[tokio::test]
async fn health_reports_windows_checks_and_capacity_warnings() {
    let server = TestServer::start_with(CONFIG, Default::default(), 16).await;
    let api = server.api();
    for _ in 0..4 {
        check(&server, "api", "tenant", "acme").await;
    }
    let health = api.health().await.expect("health");
    assert_eq!(health.status, "ok");
    assert_eq!(
        health.windows.iter().map(|w| w.seconds).collect::<Vec<_>>(),
        [60, 300]
    );
    assert_eq!(health.windows[0].requests, 4);
    assert_eq!(health.windows[0].errors, 0);
    assert!(health.windows[0].latency_p50_seconds.is_some());
    let names: Vec<&str> = health.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["config_loaded", "store_capacity", "error_ratio", "draining"]
    );
    // Ten minutes later the requests have left both windows.
    server.clock.advance_ns(600 * 1_000_000_000);
    api.health().await.expect("sample");
    server.clock.advance_ns(1_000_000_000);
    let health = api.health().await.expect("health");
    assert_eq!(health.windows[1].requests, 0);
    assert_eq!(health.uptime_seconds, 601);

    // Fill the store past 80%: one capacity_warning, however often asked.
    let capacity = api.state().await.expect("state").store.capacity;
    let mut tenant = 0;
    while (api.state().await.expect("state").store.keys as f64) < 0.8 * capacity as f64
        && tenant < 1000
    {
        check(&server, "api", "tenant", &format!("t{tenant}")).await;
        tenant += 1;
    }
    api.health().await.expect("health");
    api.health().await.expect("health");
    let page = api
        .events(&EventQuery {
            types: vec!["capacity_warning".into()],
            limit: Some(100),
            ..EventQuery::default()
        })
        .await
        .expect("events");
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].actor, "system");
    server.stop().await;
}

#[tokio::test]
async fn the_in_process_transport_answers_as_http_does() {
    let server = TestServer::start(CONFIG).await;
    warm_up(&server).await;
    let http = server.api();
    let local = server.in_process();
    assert_eq!(
        http.actions().await.expect("http"),
        local.actions().await.expect("local")
    );
    assert_eq!(
        http.state().await.expect("http"),
        local.state().await.expect("local")
    );
    assert_eq!(
        http.config().await.expect("http"),
        local.config().await.expect("local")
    );
    assert_eq!(
        http.config_versions(None, Some(5)).await.expect("http"),
        local.config_versions(None, Some(5)).await.expect("local")
    );
    let query = EventQuery {
        after: 0,
        limit: Some(50),
        ..EventQuery::default()
    };
    assert_eq!(
        http.events(&query).await.expect("http"),
        local.events(&query).await.expect("local")
    );
    assert_eq!(
        http.health().await.expect("http"),
        local.health().await.expect("local")
    );
    let check =
        json!({"domain": "web", "descriptors": [{"entries": [{"key": "ip", "value": "1.2.3.4"}]}]});
    let a = http.check(&check).await.expect("http");
    let b = local.check(&check).await.expect("local");
    assert_eq!(a["overall_code"], b["overall_code"]);
    assert_eq!(
        a["statuses"][0]["limit_remaining"]
            .as_u64()
            .expect("remaining"),
        b["statuses"][0]["limit_remaining"]
            .as_u64()
            .expect("remaining")
            + 1
    );
    // The same dry run answers the same, but for its event's number.
    let dry = request(
        json!({"domain": "api", "limit": "per_tenant", "requests_per_unit": 3}),
        true,
    );
    let mut a = http.run_action("set_limit", &dry).await.expect("http");
    let b = local.run_action("set_limit", &dry).await.expect("local");
    assert_eq!(b.event_seq, a.event_seq + 2);
    a.event_seq = b.event_seq;
    assert_eq!(a, b);
    // And the same errors.
    let bad = request(json!({"domain": 5}), false);
    assert_eq!(
        api_error(http.run_action("set_limit", &bad).await),
        api_error(local.run_action("set_limit", &bad).await)
    );
    assert_eq!(
        http.metrics().await.expect("http").lines().count(),
        local.metrics().await.expect("local").lines().count()
    );
    server.stop().await;
}

/// Limits with their top values' window (which grows with the clock) left
/// out.
fn untimed(limits: &[LimitState]) -> Vec<LimitState> {
    limits
        .iter()
        .cloned()
        .map(|mut limit| {
            limit.top_values.window_seconds = 0;
            limit
        })
        .collect()
}

#[tokio::test]
async fn top_values_name_the_values_a_limit_rejects_over_http() {
    let server = TestServer::start(CONFIG).await;
    // per_ip admits 10 a second: 40 checks of one address in a burst are
    // mostly rejected; another address sends 2.
    for _ in 0..40 {
        check(&server, "web", "ip", "10.0.0.9").await;
    }
    for _ in 0..2 {
        assert_eq!(check(&server, "web", "ip", "10.0.0.2").await.status(), 200);
    }
    let body: Value = reqwest::Client::new()
        .get(server.url("/v1/state"))
        .send()
        .await
        .expect("HTTP response")
        .json()
        .await
        .expect("JSON state");
    let per_ip = body["limits"]
        .as_array()
        .expect("limits")
        .iter()
        .find(|limit| limit["name"] == "per_ip")
        .expect("per_ip");
    let values = per_ip["top_values"]["values"].as_array().expect("values");
    let hot = values
        .iter()
        .find(|value| value["value"] == "ip=10.0.0.9")
        .unwrap_or_else(|| panic!("10.0.0.9 in {values:?}"));
    assert_eq!(hot["entries"], json!([{"key": "ip", "value": "10.0.0.9"}]));
    let over = hot["over"].as_u64().expect("over");
    let rejected = per_ip["over_limit"].as_u64().expect("over_limit");
    // Every rejection is counted, by value.
    assert!(
        over >= 20 && over == rejected,
        "over {over}, limit's {rejected}"
    );
    // Hits are sampled one in eight: 42 hits give 40 in all.
    let total: u64 = values.iter().map(|v| v["hits"].as_u64().unwrap_or(0)).sum();
    assert_eq!(total, 40, "{values:?}");
}

#[tokio::test]
async fn an_action_expecting_a_config_version_is_refused_once_the_config_moved() {
    let server = TestServer::start(CONFIG).await;
    let api = server.api();
    let expecting = |version: u64, value: u64| ActionRequest {
        expect_config_version: Some(version),
        ..request(
            json!({"domain": "api", "limit": "per_tenant", "requests_per_unit": value}),
            false,
        )
    };
    // At the expected version: applied, and the version moves.
    let applied = api
        .run_action("set_limit", &expecting(1, 50))
        .await
        .expect("applied at version 1");
    assert_eq!(applied.config_version, Some(2));

    // A second writer that planned against version 1 is refused, naming
    // where the config is and who moved it; nothing changes.
    let cursor = api.state().await.expect("state").events.newest_seq;
    let (status, kind, field, message) =
        api_error(api.run_action("set_limit", &expecting(1, 70)).await);
    assert_eq!(
        (status, kind.as_str(), field.as_str()),
        (409, "config_moved", "expect_config_version")
    );
    assert!(
        message.contains("expected version 1, it is at version 2") && message.contains("tester"),
        "{message}"
    );
    // Dry runs and whole-config rollbacks check it the same way.
    let dry = ActionRequest {
        dry_run: true,
        ..expecting(1, 70)
    };
    assert_eq!(
        api_error(api.run_action("set_limit", &dry).await).1,
        "config_moved"
    );
    let rollback = ActionRequest {
        expect_config_version: Some(1),
        ..request(Value::Null, false)
    };
    assert_eq!(
        api_error(api.rollback_config(1, &rollback).await).1,
        "config_moved"
    );
    let events = events_after(&api, cursor).await;
    assert_eq!(
        types(&events),
        [
            "action_requested",
            "action_refused",
            "action_requested",
            "action_refused",
            "action_requested",
            "action_refused"
        ]
    );
    let state = api.state().await.expect("state");
    assert_eq!(state.config.version, 2);
    assert_eq!(
        limit(&state, "api", "per_tenant")
            .expect("limit")
            .requests_per_unit,
        50
    );
    // At the current version it goes through.
    api.run_action("set_limit", &expecting(2, 70))
        .await
        .expect("applied at version 2");
    server.stop().await;
}
