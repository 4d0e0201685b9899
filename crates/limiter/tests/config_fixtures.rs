//! Fixture tests for the config loader: every file under
//! `fixtures/config/good` loads and resolves as listed here; every file under
//! `fixtures/config/bad` fails with exactly the listed error.

use floodgate_limiter::config::{load, parse_file, ConfigSource, DomainConfig};
use floodgate_limiter::table::{Resolved, Table};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind)
}

/// The sources of one fixture: a file, or every file of a directory (sorted),
/// each named by its file name.
fn sources(path: &Path) -> Vec<ConfigSource> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut files: Vec<PathBuf> = fs::read_dir(path)
            .expect("fixture directory")
            .map(|entry| entry.expect("fixture entry").path())
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    files
        .iter()
        .map(|file| {
            let name = file
                .file_name()
                .and_then(|name| name.to_str())
                .expect("file name")
                .to_owned();
            let text = fs::read_to_string(file).expect("fixture text");
            ConfigSource::new(name, text)
        })
        .collect()
}

fn load_fixture(kind: &str, fixture: &str) -> Result<Table, String> {
    load(&sources(&fixtures(kind).join(fixture))).map_err(|error| error.to_string())
}

fn kv<'a>(entry: &'a (&str, &str)) -> (&'a str, &'a str) {
    (entry.0, entry.1)
}

/// A readable form of one resolve() result: `unknown domain`, `no match`,
/// `unlimited`, or each limit as `name rpu/unit algorithm[ burst N][ shadow][
/// detailed]`, joined with `; `.
fn describe(table: &Table, resolved: Resolved<'_>) -> String {
    match resolved {
        Resolved::UnknownDomain => "unknown domain".to_owned(),
        Resolved::NoMatch => "no match".to_owned(),
        Resolved::Unlimited => "unlimited".to_owned(),
        Resolved::Limits(indexes) => indexes
            .iter()
            .map(|index| {
                let limit = table.limit(*index);
                let rate = limit.rate;
                let mut text = format!(
                    "{} {}/{} {}",
                    limit.name, rate.requests_per_unit, rate.unit, rate.algorithm
                );
                if rate.burst != rate.requests_per_unit {
                    text.push_str(&format!(" burst {}", rate.burst));
                }
                if limit.shadow {
                    text.push_str(" shadow");
                }
                if limit.detailed_metric {
                    text.push_str(" detailed");
                }
                if !limit.replaces.is_empty() {
                    text.push_str(&format!(" replaces {}", limit.replaces.join(",")));
                }
                text
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

/// Loads a good fixture and checks resolve() for each (domain, entries,
/// expected) case.
fn check(fixture: &str, expected: &[Case<'_>]) {
    let table = load_fixture("good", fixture).unwrap_or_else(|error| panic!("{error}"));
    let names: BTreeSet<(&str, &str)> = table
        .limits()
        .iter()
        .map(|limit| (limit.domain.as_str(), limit.name.as_str()))
        .collect();
    assert_eq!(names.len(), table.limits().len(), "{fixture}: names unique");
    for (domain, entries, want) in expected {
        let got = describe(&table, table.resolve(domain, entries, kv));
        assert_eq!(&got, want, "{fixture}: {domain} {entries:?}");
    }
}

#[test]
fn upstream_nested() {
    check(
        "upstream_nested.yaml",
        &[
            (
                "messaging",
                &[("message_type", "marketing"), ("to_number", "2061234567")],
                "messaging.message_type_marketing.to_number 5/day fixed_window",
            ),
            (
                "messaging",
                &[("to_number", "2061234567")],
                "messaging.to_number 100/day fixed_window",
            ),
            // depth mismatch: the marketing node has no limit of its own
            ("messaging", &[("message_type", "marketing")], "no match"),
            // unknown value and no key-only node
            (
                "messaging",
                &[("message_type", "transactional"), ("to_number", "1")],
                "no match",
            ),
            // longer than the tree
            (
                "messaging",
                &[("to_number", "1"), ("extra", "x")],
                "no match",
            ),
            ("messaging", &[], "no match"),
            ("unknown", &[("to_number", "1")], "unknown domain"),
        ],
    );
}

#[test]
fn upstream_edge_proxy() {
    check(
        "upstream_edge_proxy.yaml",
        &[
            (
                "edge_proxy_per_ip",
                &[("remote_address", "10.0.0.1")],
                "edge_proxy_per_ip.remote_address 10/second fixed_window",
            ),
            (
                "edge_proxy_per_ip",
                &[("remote_address", "50.0.0.5")],
                "edge_proxy_per_ip.remote_address_50.0.0.5 0/second fixed_window",
            ),
            (
                "edge_proxy_per_ip",
                &[("client_id", "trial")],
                "edge_proxy_per_ip.client_id_trial 60/minute fixed_window shadow",
            ),
            ("edge_proxy_per_ip", &[("client_id", "other")], "no match"),
        ],
    );
}

#[test]
fn upstream_tree() {
    let domain = "edge_proxy_per_ip_and_path";
    check(
        "upstream_tree.yaml",
        &[
            (
                domain,
                &[("source_cluster", "proxy"), ("destination_cluster", "bar")],
                "edge_proxy_per_ip_and_path.source_cluster_proxy.destination_cluster_bar 10/minute fixed_window",
            ),
            // key-only fallback
            (
                domain,
                &[("source_cluster", "proxy"), ("destination_cluster", "foo")],
                "edge_proxy_per_ip_and_path.source_cluster_proxy.destination_cluster 20/minute fixed_window",
            ),
            // descends through a node that has a limit of its own
            (
                domain,
                &[
                    ("source_cluster", "proxy"),
                    ("destination_cluster", "foo"),
                    ("remote_address", "10.0.0.1"),
                ],
                "edge_proxy_per_ip_and_path.source_cluster_proxy.destination_cluster.remote_address 1/second fixed_window",
            ),
            // the exact `bar` node has no children: a third entry matches nothing
            (
                domain,
                &[
                    ("source_cluster", "proxy"),
                    ("destination_cluster", "bar"),
                    ("remote_address", "10.0.0.1"),
                ],
                "no match",
            ),
            (domain, &[("source_cluster", "proxy")], "no match"),
            (domain, &[("source_cluster", "other")], "no match"),
        ],
    );
}

#[test]
fn upstream_wildcard() {
    let domain = "example_wildcard";
    check(
        "upstream_wildcard.yaml",
        &[
            (
                domain,
                &[("path", "/foo/bar")],
                "example_wildcard.path_/foo* 20/minute fixed_window",
            ),
            (
                domain,
                &[("path", "/foo")],
                "example_wildcard.path_/foo* 20/minute fixed_window",
            ),
            // exact beats wildcard
            (
                domain,
                &[("path", "/foo/exact")],
                "example_wildcard.path_/foo/exact 5/minute fixed_window",
            ),
            // no prefix match: key-only fallback
            (
                domain,
                &[("path", "/fo")],
                "example_wildcard.path 100/minute fixed_window",
            ),
            // a wildcard node without a limit of its own, with a `*` child
            (
                domain,
                &[("path", "/bar/baz"), ("method", "GET")],
                "example_wildcard.path_/bar*.method_* 2/second fixed_window",
            ),
            (domain, &[("path", "/bar/baz")], "no match"),
        ],
    );
}

#[test]
fn upstream_unlimited() {
    check(
        "upstream_unlimited.yaml",
        &[
            ("internal", &[("ldap", "anything")], "unlimited"),
            (
                "internal",
                &[("azure", "x")],
                "internal.azure 100/minute fixed_window",
            ),
            ("internal", &[("ldap", "x"), ("more", "y")], "no match"),
        ],
    );
}

#[test]
fn upstream_replaces_and_detailed_metric() {
    check(
        "upstream_replaces.yaml",
        &[
            (
                "replaces_example",
                &[("key1", "value1")],
                "limit1 10/minute fixed_window detailed",
            ),
            (
                "replaces_example",
                &[("key2", "whatever")],
                "limit2 20/minute fixed_window replaces limit1",
            ),
        ],
    );
    let table = load_fixture("good", "upstream_replaces.yaml").expect("loads");
    let limit1 = table.find("replaces_example", "limit1").expect("limit1");
    assert_eq!(table.limit(limit1).path, "descriptors[0].rate_limit");
    assert_eq!(table.find("replaces_example", "limit3"), None);
    assert_eq!(table.find("other", "limit1"), None);
}

#[test]
fn multi_document() {
    check(
        "multi_document.yaml",
        &[
            (
                "first",
                &[("user", "u")],
                "first.user 1000/hour fixed_window",
            ),
            (
                "second",
                &[("user", "u")],
                "second.user 7/week fixed_window",
            ),
            ("third", &[("user", "u")], "unknown domain"),
        ],
    );
    let table = load_fixture("good", "multi_document.yaml").expect("loads");
    let domains: Vec<&str> = table.domains().map(|d| d.domain.as_str()).collect();
    assert_eq!(domains, ["first", "second"]);
}

#[test]
fn extensions() {
    let domain = "extensions";
    check(
        "extensions.yaml",
        &[
            (
                domain,
                &[("bucket", "b")],
                "extensions.bucket 10/second token_bucket burst 25",
            ),
            (
                domain,
                &[("bucket_default_burst", "b")],
                "extensions.bucket_default_burst 60/minute token_bucket",
            ),
            (
                domain,
                &[("sliding", "s")],
                "extensions.sliding 500/hour sliding_window",
            ),
            (
                domain,
                &[("workers", "w")],
                "extensions.workers 0/minute concurrency",
            ),
            (
                domain,
                &[("tenant", "acme")],
                "extensions.tenant.second 5/second fixed_window shadow; \
                 extensions.tenant.day.1 10000/day fixed_window shadow; \
                 extensions.tenant.day.2 20000/day sliding_window shadow; \
                 tenant_monthly 100000/month fixed_window shadow",
            ),
        ],
    );
    let table = load_fixture("good", "extensions.yaml").expect("loads");
    let monthly = table.find(domain, "tenant_monthly").expect("named");
    assert_eq!(table.limit(monthly).path, "descriptors[4].rate_limits[3]");
}

#[test]
fn example() {
    let domain = "api";
    check(
        "example.yaml",
        &[
            (
                domain,
                &[("tenant", "acme")],
                "tenant_per_second 100/second fixed_window; tenant_per_day 1000000/day fixed_window",
            ),
            (
                domain,
                &[("tenant", "acme"), ("path", "/v1/search/books")],
                "search_bucket 10/second token_bucket burst 50",
            ),
            (
                domain,
                &[("tenant", "acme"), ("path", "/v1/search")],
                "search_bucket 10/second token_bucket burst 50",
            ),
            (
                domain,
                &[("tenant", "acme"), ("path", "/v1/upload")],
                "uploads_in_flight 5/minute concurrency",
            ),
            (
                domain,
                &[("tenant", "acme"), ("path", "/v1/upload/more")],
                "api.tenant.path 600/minute sliding_window",
            ),
            ("api", &[("tenant", "internal")], "unlimited"),
            (
                "api",
                &[("tenant", "internal"), ("path", "/v1/upload")],
                "no match",
            ),
            (
                domain,
                &[("plan", "enterprise")],
                "enterprise_per_second 1000/second fixed_window replaces tenant_per_second",
            ),
            (domain, &[("plan", "free")], "no match"),
            (
                domain,
                &[("remote_address", "198.51.100.1")],
                "per_address_trial 50/second fixed_window shadow detailed",
            ),
            (
                domain,
                &[("remote_address", "203.0.113.7")],
                "blocked_address 0/second fixed_window",
            ),
            ("web", &[("tenant", "acme")], "unknown domain"),
        ],
    );
}

#[test]
fn every_good_fixture_loads_and_round_trips() {
    let mut all = Vec::new();
    for entry in fs::read_dir(fixtures("good")).expect("good fixtures") {
        let path = entry.expect("entry").path();
        let fixture_sources = sources(&path);
        let table = load(&fixture_sources).unwrap_or_else(|error| panic!("{error}"));
        assert!(!table.is_empty());
        // Serialising the model back to YAML and reading it again gives the
        // same model.
        for domain in table.domains() {
            let yaml = serde_norway::to_string(domain).expect("serialises");
            let again = parse_file("again.yaml", &yaml).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(again, vec![domain.clone()], "{}", path.display());
            let json = serde_json::to_string(domain).expect("json");
            let from_json: DomainConfig = serde_json::from_str(&json).expect("from json");
            assert_eq!(&from_json, domain);
        }
        all.extend(fixture_sources);
    }
    // Every good fixture together: the domains are distinct.
    let table = load(&all).unwrap_or_else(|error| panic!("{error}"));
    assert!(table.domains().count() >= 10);
}

/// Every bad fixture and its exact error.
const BAD: &[(&str, &str)] = &[
    (
        "unknown_unit.yaml",
        "unknown_unit.yaml: descriptors[1].rate_limit.unit: unknown unit \"minutes\" (expected one of second, minute, hour, day, week, month, year)",
    ),
    (
        "missing_unit.yaml",
        "missing_unit.yaml: descriptors[0].rate_limit.unit: missing (expected one of second, minute, hour, day, week, month, year)",
    ),
    (
        "unknown_algorithm.yaml",
        "unknown_algorithm.yaml: descriptors[0].rate_limit.algorithm: unknown algorithm \"leaky\" (expected one of fixed_window, token_bucket, sliding_window, concurrency)",
    ),
    (
        "unknown_field.yaml",
        "unknown_field.yaml: descriptors[0].rate_limit: unknown field \"foo\" (expected one of unit, requests_per_unit, unlimited, name, replaces, algorithm, burst)",
    ),
    (
        "unknown_descriptor_field.yaml",
        "unknown_descriptor_field.yaml: descriptors[0].descriptors[0]: unknown field \"vaule\" (expected one of key, value, rate_limit, rate_limits, shadow_mode, detailed_metric, descriptors)",
    ),
    ("empty_domain.yaml", "empty_domain.yaml: domain: must not be empty"),
    ("missing_domain.yaml", "missing_domain.yaml: domain: must not be empty"),
    (
        "duplicate_domain",
        "b.yaml: domain: duplicate domain \"api\" (already defined in a.yaml)",
    ),
    (
        "duplicate_domain_documents.yaml",
        "duplicate_domain_documents.yaml: document[2].domain: duplicate domain \"api\" (already defined in document[0])",
    ),
    ("empty_key.yaml", "empty_key.yaml: descriptors[0].key: must not be empty"),
    (
        "missing_key.yaml",
        "missing_key.yaml: descriptors[0].descriptors[0].key: must not be empty",
    ),
    (
        "duplicate_descriptor.yaml",
        "duplicate_descriptor.yaml: descriptors[2]: duplicate descriptor key \"tenant\" value \"gold\" (same as descriptors[0])",
    ),
    (
        "duplicate_descriptor_key_only.yaml",
        "duplicate_descriptor_key_only.yaml: descriptors[0].descriptors[2]: duplicate descriptor key \"path\" (same as descriptors[0].descriptors[1])",
    ),
    (
        "unlimited_with_rate.yaml",
        "unlimited_with_rate.yaml: descriptors[0].rate_limit: \"unlimited: true\" cannot be combined with unit or requests_per_unit",
    ),
    (
        "unlimited_with_requests.yaml",
        "unlimited_with_requests.yaml: descriptors[0].rate_limit: \"unlimited: true\" cannot be combined with unit or requests_per_unit",
    ),
    (
        "unlimited_with_algorithm.yaml",
        "unlimited_with_algorithm.yaml: descriptors[0].rate_limit: \"unlimited: true\" cannot be combined with algorithm or burst",
    ),
    (
        "unlimited_in_list.yaml",
        "unlimited_in_list.yaml: descriptors[0].rate_limits[1]: \"unlimited: true\" is not allowed in rate_limits (use rate_limit)",
    ),
    (
        "replaces_unknown.yaml",
        "replaces_unknown.yaml: descriptors[0].rate_limit.replaces[0].name: no limit named \"foo\" in domain \"api\"",
    ),
    (
        "replaces_empty_name.yaml",
        "replaces_empty_name.yaml: descriptors[0].rate_limit.replaces[0].name: must not be empty",
    ),
    (
        "replaces_itself.yaml",
        "replaces_itself.yaml: descriptors[0].rate_limit.replaces[0].name: a limit cannot replace itself",
    ),
    (
        "replaces_itself_generated.yaml",
        "replaces_itself_generated.yaml: descriptors[0].rate_limit.replaces[0].name: a limit cannot replace itself",
    ),
    (
        "burst_without_token_bucket.yaml",
        "burst_without_token_bucket.yaml: descriptors[0].rate_limit.burst: only applies to algorithm token_bucket",
    ),
    (
        "burst_default_algorithm.yaml",
        "burst_default_algorithm.yaml: descriptors[0].rate_limits[0].burst: only applies to algorithm token_bucket",
    ),
    (
        "burst_zero.yaml",
        "burst_zero.yaml: descriptors[0].rate_limit.burst: must be at least 1",
    ),
    (
        "rate_limit_and_rate_limits.yaml",
        "rate_limit_and_rate_limits.yaml: descriptors[0]: use either rate_limit or rate_limits, not both",
    ),
    (
        "empty_rate_limits.yaml",
        "empty_rate_limits.yaml: descriptors[0].rate_limits: must not be empty",
    ),
    (
        "duplicate_limit_name.yaml",
        "duplicate_limit_name.yaml: descriptors[1].rate_limits[1].name: duplicate limit name \"x\" in domain \"api\" (also at descriptors[0].rate_limit)",
    ),
    (
        "type_error.yaml",
        "type_error.yaml: descriptors[0].rate_limit.requests_per_unit: invalid type: string \"lots\", expected u64",
    ),
    (
        "negative_requests.yaml",
        "negative_requests.yaml: descriptors[0].rate_limit.requests_per_unit: invalid type: integer `-1`, expected u64",
    ),
    (
        "bool_type_error.yaml",
        "bool_type_error.yaml: descriptors[0].shadow_mode: invalid type: string \"sometimes\", expected a boolean",
    ),
    (
        "syntax_error.yaml",
        "syntax_error.yaml: line 4 column 4: not valid YAML: while parsing a block collection, did not find expected '-' indicator",
    ),
    (
        "multi_document_error.yaml",
        "multi_document_error.yaml: document[1].descriptors[0].rate_limit.unit: unknown unit \"fortnight\" (expected one of second, minute, hour, day, week, month, year)",
    ),
    (
        "empty_file.yaml",
        "empty_file.yaml: domain: missing (the file holds no YAML document)",
    ),
    (
        "alias_bomb.yaml",
        "alias_bomb.yaml: descriptors[0].value: YAML anchors (`&name`) are not accepted (line 4 column 12)",
    ),
    (
        "binary_tag.yaml",
        "binary_tag.yaml: domain: YAML tag `!!binary` is not accepted (only the core schema's !!str, !!int, !!float, !!bool, !!null, !!seq, !!map) (line 1 column 9)",
    ),
    (
        "nul_domain.yaml",
        "nul_domain.yaml: domain: NUL characters are not accepted (line 1 column 9)",
    ),
    (
        "control_domain.yaml",
        "control_domain.yaml: domain: \"api\\u{7}\" holds a control character",
    ),
    (
        "deep_nesting.yaml",
        "deep_nesting.yaml: descriptors[0].value[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 64 levels (line 4 column 73)",
    ),
    (
        "not_a_mapping.yaml",
        "not_a_mapping.yaml: line 1 column 1: invalid type: sequence, expected struct DomainConfig",
    ),
];

#[test]
fn bad_fixtures_fail_with_exact_errors() {
    let mut failures = Vec::new();
    for (fixture, want) in BAD {
        match load_fixture("bad", fixture) {
            Ok(_) => failures.push(format!("{fixture}: loaded, expected {want}")),
            Err(got) if got != *want => {
                failures.push(format!("{fixture}:\n  got  {got}\n  want {want}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_bad_fixture_is_listed() {
    let listed: BTreeSet<&str> = BAD.iter().map(|(fixture, _)| *fixture).collect();
    for entry in fs::read_dir(fixtures("bad")).expect("bad fixtures") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            listed.contains(name),
            "bad fixture {name} has no expected error"
        );
    }
}

#[test]
fn errors_expose_their_parts() {
    let error = load(&[ConfigSource::new(
        "limits.yaml",
        "domain: api\ndescriptors:\n  - key: a\n  - key: b\n    rate_limit: {unit: minutes}\n",
    )])
    .expect_err("fails");
    assert_eq!(error.file, "limits.yaml");
    assert_eq!(error.path, "descriptors[1].rate_limit.unit");
    assert_eq!(
        error.to_string(),
        "limits.yaml: descriptors[1].rate_limit.unit: unknown unit \"minutes\" (expected one of second, minute, hour, day, week, month, year)"
    );
    let boxed: Box<dyn std::error::Error> = Box::new(error);
    assert!(boxed.to_string().starts_with("limits.yaml: "));
}

/// YAML-ish fragments, so generated inputs get past the syntax check often.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("domain: api\n".to_owned()),
        Just("domain: \n".to_owned()),
        Just("descriptors:\n".to_owned()),
        Just("  - key: tenant\n".to_owned()),
        Just("    value: gold*\n".to_owned()),
        Just("    value: \"\"\n".to_owned()),
        Just("    rate_limit:\n".to_owned()),
        Just("    rate_limits:\n".to_owned()),
        Just("      - unit: second\n".to_owned()),
        Just("      unit: MINUTE\n".to_owned()),
        Just("      requests_per_unit: 5\n".to_owned()),
        Just("      requests_per_unit: -5\n".to_owned()),
        Just("      unlimited: true\n".to_owned()),
        Just("      algorithm: token_bucket\n".to_owned()),
        Just("      burst: 0\n".to_owned()),
        Just("      name: x\n".to_owned()),
        Just("      replaces: [{name: x}]\n".to_owned()),
        Just("    shadow_mode: true\n".to_owned()),
        Just("    descriptors:\n".to_owned()),
        Just("---\n".to_owned()),
        Just("&a ".to_owned()),
        Just("*a\n".to_owned()),
        Just("<<: *a\n".to_owned()),
        Just("[{".to_owned()),
        Just("}]\n".to_owned()),
        Just("\t".to_owned()),
        "[ -~\n]{0,12}",
    ]
}

fn exercise(text: &str) {
    let _ = parse_file("fuzz.yaml", text);
    if let Ok(table) = load(&[
        ConfigSource::new("fuzz.yaml", text),
        ConfigSource::new("other.yaml", "domain: other\n"),
    ]) {
        for domain in ["api", "other", ""] {
            for entries in [
                &[("tenant", "gold")][..],
                &[("tenant", "goldfish"), ("tenant", "")],
                &[],
            ] {
                if let Resolved::Limits(indexes) = table.resolve(domain, entries, kv) {
                    for index in indexes {
                        let _ = table.limit(*index);
                    }
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn yaml_ish_text_never_panics(parts in proptest::collection::vec(fragment(), 0..32)) {
        exercise(&parts.concat());
    }
}

#[test]
fn pathological_inputs_are_errors_not_crashes() {
    let deep_flow = "[".repeat(10_000);
    let mut deep_descriptors = String::from("domain: api\n");
    for depth in 0..200 {
        let indent = "  ".repeat(depth);
        deep_descriptors.push_str(&format!("{indent}descriptors:\n{indent}  - key: k\n"));
        deep_descriptors.push_str(&format!("{indent}    "));
    }
    // "Billion laughs" through aliases in descriptor lists.
    let mut laughs = String::from("domain: api\ndescriptors:\n  - &a {key: a}\n");
    let mut previous = 'a';
    for name in 'b'..='z' {
        let children = vec![format!("*{previous}"); 10].join(", ");
        laughs.push_str(&format!(
            "  - &{name} {{key: {name}, descriptors: [{children}]}}\n"
        ));
        previous = name;
    }
    for text in [deep_flow.as_str(), &deep_descriptors, &laughs, "\0"] {
        let error = parse_file("evil.yaml", text).expect_err("rejected");
        assert!(error.to_string().starts_with("evil.yaml: "), "{error}");
    }
    // A byte-order mark is fine.
    assert!(parse_file("bom.yaml", "\u{feff}domain: a").is_ok());
}
