//! The deployment examples (`examples/envoy/`, `examples/prometheus.yml`,
//! `examples/prometheus-rules.yml`, `examples/grafana/`, `examples/systemd/`)
//! checked against what they name: the limits config Envoy's descriptors
//! must match (through Floodgate's own matcher), the metrics catalog every
//! query must read, the objectives the SLO panels and alerts must follow,
//! and the defaults and flags of the real `floodgate` binary's parser.
//!
//! Tools checked when present, never required: `promtool` (Debian's
//! `prometheus` package, which `scripts/test.sh` installs, so CI runs it)
//! and `systemd-analyze`. Envoy is not packaged for Debian: its bootstrap
//! is checked structurally here.

use floodgate_contract::metrics::{self, MetricDef};
use floodgate_limiter::config::{self as limits_config, ConfigSource};
use floodgate_limiter::table::{Resolved, Table};
use serde_json::Value as Json;
use serde_norway::Value as Yaml;
#[path = "support/process.rs"]
mod process;

use process::{floodgate, repo, scratch};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// A YAML file, through the gate every YAML text Floodgate reads passes
/// (ADR 0018), then parsed.
fn yaml(path: &str) -> Yaml {
    let text = read(path);
    if let Err(refusal) = floodgate_contract::yaml::check(&text) {
        panic!("{path}: {refusal}");
    }
    serde_norway::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// `floodgate SUBCOMMAND --help`, as the real parser prints it.
fn help(subcommand: &str) -> String {
    let output = floodgate()
        .args([subcommand, "--help"])
        .output()
        .expect("run floodgate");
    assert!(output.status.success(), "{subcommand} --help");
    String::from_utf8(output.stdout).expect("utf-8 help")
}

/// Whether a help line starts an option's entry (options are indented
/// less than their descriptions).
fn option_line(line: &str) -> bool {
    let indent = line.len() - line.trim_start().len();
    indent < 10 && line.trim_start().starts_with('-')
}

/// The long flags a subcommand's help lists.
fn flags_of(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter(|line| option_line(line))
        .flat_map(|line| line.split([' ', ',']))
        .filter(|word| word.starts_with("--"))
        .map(str::to_owned)
        .collect()
}

/// The `[default: …]` the help shows for `flag` (on the option's line in
/// clap's compact layout, below it in the long one).
fn default_of(help: &str, flag: &str) -> String {
    let mut lines = help
        .lines()
        .skip_while(|line| !(option_line(line) && line.split([' ', ',']).any(|word| word == flag)));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no {flag} in:\n{help}"));
    let entry = std::iter::once(first).chain(lines.take_while(|line| !option_line(line)));
    for line in entry {
        if let Some((_, rest)) = line.split_once("[default: ") {
            let (value, _) = rest.split_once(']').expect("a closed [default: …]");
            return value.to_owned();
        }
    }
    panic!("{flag} shows no default in:\n{help}")
}

/// `floodgate serve`'s default gRPC and HTTP addresses, from its parser.
fn serve_defaults() -> (SocketAddr, SocketAddr) {
    let help = help("serve");
    let parse = |flag| {
        default_of(&help, flag)
            .parse::<SocketAddr>()
            .unwrap_or_else(|error| panic!("{flag}: {error}"))
    };
    (parse("--grpc-addr"), parse("--http-addr"))
}

fn harness_default_addr() -> SocketAddr {
    default_of(&help("harness"), "--http-addr")
        .parse()
        .expect("harness --http-addr default")
}

/// `examples/limits.yaml`, compiled by the limiter.
fn limits() -> Table {
    limits_config::load(&[ConfigSource {
        name: "examples/limits.yaml".into(),
        text: read("examples/limits.yaml"),
    }])
    .expect("examples/limits.yaml loads")
}

fn str_of<'v>(value: &'v Yaml, what: &str) -> &'v str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what}: not a string: {value:?}"))
}

fn seq_of<'v>(value: &'v Yaml, what: &str) -> &'v [Yaml] {
    value
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("{what}: not a list: {value:?}"))
}

/// A `socket_address` as an address.
fn socket_address(value: &Yaml) -> SocketAddr {
    let address = &value["socket_address"];
    let ip = str_of(&address["address"], "socket_address.address");
    let port = address["port_value"].as_u64().expect("port_value");
    format!("{ip}:{port}").parse().expect("socket address")
}

// ---------------------------------------------------------------- Envoy

const ENVOY: &str = "examples/envoy/envoy.yaml";

/// The HTTP connection manager of the bootstrap's only listener.
fn connection_manager(bootstrap: &Yaml) -> &Yaml {
    let listeners = seq_of(&bootstrap["static_resources"]["listeners"], "listeners");
    assert_eq!(listeners.len(), 1, "one listener");
    let filters = seq_of(&listeners[0]["filter_chains"][0]["filters"], "filters");
    let hcm = filters
        .iter()
        .find(|filter| {
            filter["name"].as_str() == Some("envoy.filters.network.http_connection_manager")
        })
        .expect("an http_connection_manager");
    let config = &hcm["typed_config"];
    assert_eq!(
        config["@type"].as_str(),
        Some("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager")
    );
    config
}

fn cluster<'b>(bootstrap: &'b Yaml, name: &str) -> &'b Yaml {
    seq_of(&bootstrap["static_resources"]["clusters"], "clusters")
        .iter()
        .find(|cluster| cluster["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

/// A request as Envoy's rate-limit actions see it.
struct Request {
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    remote: &'static str,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        if name == ":path" {
            return Some(self.path);
        }
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| *value)
    }
}

/// The route Envoy picks: the first whose `prefix` or `path` matches.
fn route_for<'r>(routes: &'r [Yaml], path: &str) -> &'r Yaml {
    routes
        .iter()
        .find(|route| {
            let matcher = &route["match"];
            let known = matcher.as_mapping().is_some_and(|map| {
                map.keys()
                    .all(|key| matches!(key.as_str(), Some("prefix" | "path")))
            });
            assert!(
                known,
                "the test models only prefix and path matches: {matcher:?}"
            );
            matcher["prefix"]
                .as_str()
                .is_some_and(|prefix| path.starts_with(prefix))
                || matcher["path"]
                    .as_str()
                    .is_some_and(|exact| path.split('?').next() == Some(exact))
        })
        .unwrap_or_else(|| panic!("no route for {path}"))
}

/// The descriptors Envoy sends for `request` on `route`: one per
/// `rate_limits` entry whose actions all produce an entry (Envoy drops a
/// descriptor when an action cannot, e.g. a missing header). Panics on an
/// action this model does not know, so a new action kind in the example
/// must be modelled here before it passes.
fn descriptors(route: &Yaml, request: &Request) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    for limit in seq_of(&route["route"]["rate_limits"], "route.rate_limits") {
        let mut entries = Vec::new();
        let mut complete = true;
        for action in seq_of(&limit["actions"], "rate_limits.actions") {
            let map = action.as_mapping().expect("an action is a mapping");
            assert_eq!(map.len(), 1, "one action kind per action: {action:?}");
            let (kind, spec) = map.iter().next().expect("one entry");
            match str_of(kind, "action kind") {
                "request_headers" => {
                    let key = str_of(&spec["descriptor_key"], "descriptor_key");
                    match request.header(str_of(&spec["header_name"], "header_name")) {
                        Some(value) => entries.push((key.to_owned(), value.to_owned())),
                        None => complete = false,
                    }
                }
                "generic_key" => entries.push((
                    spec["descriptor_key"]
                        .as_str()
                        .unwrap_or("generic_key")
                        .to_owned(),
                    str_of(&spec["descriptor_value"], "descriptor_value").to_owned(),
                )),
                "remote_address" => {
                    entries.push(("remote_address".to_owned(), request.remote.to_owned()))
                }
                other => {
                    panic!("{ENVOY}: the test models no `{other}` action; add it to descriptors()")
                }
            }
        }
        if complete {
            out.push(entries);
        }
    }
    out
}

/// What the limits config does with every descriptor of `request`: the
/// names of the limits it reaches, and whether one is `unlimited`.
fn limited_by(
    table: &Table,
    domain: &str,
    routes: &[Yaml],
    request: &Request,
) -> (BTreeSet<String>, bool) {
    let mut names = BTreeSet::new();
    let mut unlimited = false;
    for descriptor in descriptors(route_for(routes, request.path), request) {
        match table.resolve(domain, &descriptor, |(key, value)| {
            (key.as_str(), value.as_str())
        }) {
            Resolved::Limits(indexes) => {
                names.extend(indexes.iter().map(|index| table.limit(*index).name.clone()))
            }
            Resolved::Unlimited => unlimited = true,
            Resolved::NoMatch | Resolved::UnknownDomain => {}
        }
    }
    (names, unlimited)
}

#[test]
fn envoy_sends_the_descriptors_the_example_limits_match_and_reaches_every_limit() {
    let bootstrap = yaml(ENVOY);
    let hcm = connection_manager(&bootstrap);

    // The rate-limit filter, before the router (the last filter).
    let filters = seq_of(&hcm["http_filters"], "http_filters");
    let names: Vec<&str> = filters
        .iter()
        .map(|f| str_of(&f["name"], "filter name"))
        .collect();
    assert_eq!(
        names,
        ["envoy.filters.http.ratelimit", "envoy.filters.http.router"]
    );
    let ratelimit = &filters[0]["typed_config"];
    assert_eq!(
        ratelimit["@type"].as_str(),
        Some("type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit")
    );
    let service = &ratelimit["rate_limit_service"];
    assert_eq!(service["transport_api_version"].as_str(), Some("V3"));
    assert_eq!(
        service["grpc_service"]["envoy_grpc"]["cluster_name"].as_str(),
        Some("floodgate")
    );
    assert!(
        ratelimit["failure_mode_deny"].is_bool(),
        "failure_mode_deny is set explicitly (and its choice explained)"
    );

    // Its domain is the example config's only domain.
    let table = limits();
    let domains: Vec<&str> = table.domains().map(|d| d.domain.as_str()).collect();
    let domain = str_of(&ratelimit["domain"], "domain");
    assert_eq!(
        domains,
        [domain],
        "the filter's domain is examples/limits.yaml's"
    );

    let hosts = seq_of(&hcm["route_config"]["virtual_hosts"], "virtual_hosts");
    assert_eq!(hosts.len(), 1);
    assert!(
        hosts[0]["rate_limits"].is_null(),
        "the model reads route-level rate_limits only"
    );
    let routes = seq_of(&hosts[0]["routes"], "routes");

    let set = |names: &[&str]| {
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<BTreeSet<_>>()
    };
    let cases = [
        (
            Request {
                path: "/v1/search?q=shoes",
                headers: &[("x-tenant", "acme")],
                remote: "198.51.100.1",
            },
            set(&[
                "tenant_per_second",
                "tenant_per_day",
                "search_bucket",
                "per_address_trial",
            ]),
            false,
        ),
        (
            Request {
                path: "/v1/upload",
                headers: &[("x-tenant", "acme"), ("x-plan", "enterprise")],
                remote: "198.51.100.2",
            },
            set(&[
                "tenant_per_second",
                "tenant_per_day",
                "uploads_in_flight",
                "enterprise_per_second",
                "per_address_trial",
            ]),
            false,
        ),
        (
            Request {
                path: "/v1/orders/42",
                headers: &[("x-tenant", "acme")],
                remote: "198.51.100.3",
            },
            set(&[
                "tenant_per_second",
                "tenant_per_day",
                "api.tenant.path",
                "per_address_trial",
            ]),
            false,
        ),
        // Internal traffic: the tenant descriptor is unlimited, and the
        // `internal` node has no path below it.
        (
            Request {
                path: "/v1/orders/42",
                headers: &[("x-tenant", "internal")],
                remote: "198.51.100.4",
            },
            set(&["per_address_trial"]),
            true,
        ),
        (
            Request {
                path: "/v1/search",
                headers: &[("x-tenant", "acme")],
                remote: "203.0.113.7",
            },
            set(&[
                "tenant_per_second",
                "tenant_per_day",
                "search_bucket",
                "blocked_address",
            ]),
            false,
        ),
        // No tenant header: only the address descriptor is sent.
        (
            Request {
                path: "/v1/orders/42",
                headers: &[],
                remote: "198.51.100.5",
            },
            set(&["per_address_trial"]),
            false,
        ),
    ];
    let mut reached = BTreeSet::new();
    for (request, expected, unlimited) in &cases {
        let (names, found_unlimited) = limited_by(&table, domain, routes, request);
        assert_eq!(
            &names, expected,
            "{} {:?} from {}",
            request.path, request.headers, request.remote
        );
        assert_eq!(
            found_unlimited, *unlimited,
            "{} {:?}: unlimited",
            request.path, request.headers
        );
        reached.extend(names);
    }
    // Every limit of the example, so every top-level key (tenant, plan,
    // remote_address) and the nested path, is reachable from Envoy.
    let all: BTreeSet<String> = table
        .limits()
        .iter()
        .map(|limit| limit.name.clone())
        .collect();
    assert_eq!(reached, all, "limits no Envoy request reaches");
}

#[test]
fn envoy_reaches_floodgate_over_http2_at_the_serve_default_grpc_address() {
    let bootstrap = yaml(ENVOY);
    let (grpc, _) = serve_defaults();
    let floodgate = cluster(&bootstrap, "floodgate");
    let endpoints = seq_of(&floodgate["load_assignment"]["endpoints"], "endpoints");
    let addresses: Vec<SocketAddr> = endpoints
        .iter()
        .flat_map(|group| seq_of(&group["lb_endpoints"], "lb_endpoints"))
        .map(|endpoint| socket_address(&endpoint["endpoint"]["address"]))
        .collect();
    assert_eq!(
        addresses,
        [grpc],
        "the floodgate cluster is `serve --grpc-addr`'s default"
    );
    let options = &floodgate["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert_eq!(
        options["@type"].as_str(),
        Some("type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
    );
    assert!(
        options["explicit_http_config"]["http2_protocol_options"].is_mapping(),
        "gRPC needs HTTP/2 to the floodgate cluster"
    );
    // Envoy's own ports stay on loopback.
    assert!(socket_address(&bootstrap["admin"]["address"])
        .ip()
        .is_loopback());
    let listener = &bootstrap["static_resources"]["listeners"][0]["address"];
    assert!(socket_address(listener).ip().is_loopback());
    // The app cluster the routes send to exists.
    cluster(&bootstrap, "app");
}

// ----------------------------------------------------------- Prometheus

/// A PromQL expression's metric selectors: each name with the labels its
/// matchers use, and the labels of its `by (…)` clauses. Panics on a
/// function or keyword it does not know, so a typo does not pass as a
/// metric name.
struct Promql {
    selectors: Vec<(String, Vec<String>)>,
    grouping: Vec<String>,
}

const FUNCTIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "rate",
    "increase",
    "histogram_quantile",
    "topk",
    "time",
    "absent",
];
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool"];

fn promql(expr: &str) -> Promql {
    let chars: Vec<char> = expr.chars().collect();
    let mut selectors = Vec::new();
    let mut grouping = Vec::new();
    let mut at = 0;
    let skip_to = |from: usize, close: char| -> usize {
        let mut index = from;
        let mut quoted = false;
        while index < chars.len() {
            match chars[index] {
                '"' => quoted = !quoted,
                c if c == close && !quoted => return index + 1,
                _ => {}
            }
            index += 1;
        }
        panic!("unclosed {close} in {expr}")
    };
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while at < chars.len() {
        let c = chars[at];
        if c == '$' {
            // A dashboard variable: `$instance`, `$availability_target`.
            at += 1;
            while at < chars.len() && ident(chars[at]) {
                at += 1;
            }
        } else if c == '[' {
            at = skip_to(at + 1, ']');
        } else if c == '"' {
            at = skip_to(at + 1, '"');
        } else if c.is_ascii_digit() || c == '.' {
            while at < chars.len() && (chars[at].is_ascii_alphanumeric() || chars[at] == '.') {
                at += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = at;
            while at < chars.len() && ident(chars[at]) {
                at += 1;
            }
            let word: String = chars[start..at].iter().collect();
            let mut next = at;
            while next < chars.len() && chars[next] == ' ' {
                next += 1;
            }
            if word == "by" || word == "without" {
                assert_eq!(
                    chars.get(next),
                    Some(&'('),
                    "{word} without a list in {expr}"
                );
                let end = skip_to(next + 1, ')');
                let list: String = chars[next + 1..end - 1].iter().collect();
                grouping.extend(list.split(',').map(|label| label.trim().to_owned()));
                at = end;
            } else if FUNCTIONS.contains(&word.as_str()) || KEYWORDS.contains(&word.as_str()) {
                // `sum by (…) (…)` or `sum(…)`; `and`, `bool`.
            } else if chars.get(next) == Some(&'(') {
                panic!("unknown function {word} in {expr}");
            } else {
                let mut labels = Vec::new();
                if chars.get(at) == Some(&'{') {
                    let end = skip_to(at + 1, '}');
                    let body: String = chars[at + 1..end - 1].iter().collect();
                    // Matchers: `label op "value"`, values without commas.
                    for matcher in body.split(',').filter(|m| !m.trim().is_empty()) {
                        let label: String =
                            matcher.trim().chars().take_while(|c| ident(*c)).collect();
                        labels.push(label);
                    }
                    at = end;
                }
                selectors.push((word, labels));
            }
        } else {
            at += 1;
        }
    }
    Promql {
        selectors,
        grouping,
    }
}

/// Every metric `expr` reads is in the catalog, with labels it declares
/// (or `instance`, `job`, and `le` of a histogram's buckets); returns them.
fn catalog_metrics_of(expr: &str) -> Vec<&'static MetricDef> {
    let parsed = promql(expr);
    assert!(!parsed.selectors.is_empty(), "no metric in {expr}");
    let mut defs = Vec::new();
    for (name, labels) in &parsed.selectors {
        let def = metrics::find(name)
            .unwrap_or_else(|| panic!("{name} is not in the metrics catalog: {expr}"));
        for label in labels {
            let allowed = def.labels.contains(&label.as_str())
                || ["instance", "job"].contains(&label.as_str())
                || (label == "le" && name.ends_with("_bucket"));
            assert!(allowed, "{name} has no label {label}: {expr}");
        }
        defs.push(def);
    }
    for label in &parsed.grouping {
        let declared = defs.iter().any(|def| def.labels.contains(&label.as_str()))
            || ["instance", "job"].contains(&label.as_str())
            || (label == "le"
                && parsed
                    .selectors
                    .iter()
                    .any(|(name, _)| name.ends_with("_bucket")));
        assert!(
            declared,
            "grouping by {label}, which no metric of the expression has: {expr}"
        );
    }
    defs
}

#[test]
fn the_promql_reader_catches_what_it_should() {
    let ok = catalog_metrics_of(
        r#"sum by (le, api) (rate(floodgate_request_duration_seconds_bucket{instance=~"$i",le="0.001"}[5m])) / 2"#,
    );
    assert_eq!(ok[0].name, metrics::REQUEST_DURATION.name);
    for bad in [
        "sum(rate(floodgate_no_such_metric_total[5m]))",
        r#"sum(rate(floodgate_requests_total{tenant="a"}[5m]))"#,
        "sum by (tenant) (rate(floodgate_requests_total[5m]))",
        "summ(rate(floodgate_requests_total[5m]))",
        "floodgate_requests_total_bucket",
    ] {
        assert!(
            std::panic::catch_unwind(|| catalog_metrics_of(bad)).is_err(),
            "accepted {bad}"
        );
    }
}

/// `promtool` when installed (Debian's `prometheus` package; CI installs it
/// through scripts/test.sh).
fn promtool() -> Option<PathBuf> {
    let installed = PathBuf::from("/usr/bin/promtool");
    if installed.is_file() {
        return Some(installed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|path| path.is_file())
    })
}

fn run_promtool(promtool: &Path, args: &[&str], dir: &Path) -> String {
    let output = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn prometheus_scrapes_the_serve_default_http_address() {
    let config = yaml("examples/prometheus.yml");
    let (_, http) = serve_defaults();
    let jobs = seq_of(&config["scrape_configs"], "scrape_configs");
    assert_eq!(jobs.len(), 1, "one job: the harness exports no metrics");
    let job = &jobs[0];
    assert_eq!(
        job["job_name"].as_str(),
        Some("floodgate"),
        "the rules select job=\"floodgate\""
    );
    // A path the service serves, to any token with the `read` scope.
    let path = str_of(&job["metrics_path"], "metrics_path");
    assert!(
        floodgate_service::auth::READ_PATHS.contains(&path),
        "{path} is not one of the service's read paths"
    );
    let targets: Vec<&str> = seq_of(&job["static_configs"], "static_configs")
        .iter()
        .flat_map(|group| seq_of(&group["targets"], "targets"))
        .map(|target| str_of(target, "target"))
        .collect();
    assert_eq!(
        targets,
        [http.to_string()],
        "the target is `serve --http-addr`'s default"
    );
    let rules: Vec<&str> = seq_of(&config["rule_files"], "rule_files")
        .iter()
        .map(|file| str_of(file, "rule file"))
        .collect();
    assert_eq!(rules, ["prometheus-rules.yml"]);
    assert!(repo().join("examples").join(rules[0]).is_file());

    match promtool() {
        Some(promtool) => {
            // Checks the rule files it names too.
            let out = run_promtool(&promtool, &["check", "config", "prometheus.yml"], &repo().join("examples"));
            assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
        }
        None => eprintln!(
            "promtool not installed: structural checks only (scripts/test.sh installs Debian's prometheus, so CI runs it)"
        ),
    }
}

/// `99.9%` → `0.999`, digit for digit (no float rounding).
fn fraction_of_percent(percent: &str) -> String {
    let number = percent.strip_suffix('%').expect("a percentage");
    let (whole, decimals) = number.split_once('.').unwrap_or((number, ""));
    assert!(
        whole.len() <= 2 && whole.chars().all(|c| c.is_ascii_digit()),
        "{percent}"
    );
    format!("0.{whole:0>2}{decimals}")
}

/// The example objectives' SLOs by name: target as a fraction, and the
/// latency threshold.
fn objectives() -> BTreeMap<String, Yaml> {
    let doc = yaml("examples/objectives.yaml");
    seq_of(&doc["slos"], "slos")
        .iter()
        .map(|slo| (str_of(&slo["name"], "slo name").to_owned(), slo.clone()))
        .collect()
}

#[test]
fn prometheus_rules_read_the_catalog_and_follow_the_objectives() {
    let rules = yaml("examples/prometheus-rules.yml");
    let slos = objectives();
    let mut alerts = BTreeSet::new();
    for group in seq_of(&rules["groups"], "groups") {
        for rule in seq_of(&group["rules"], "rules") {
            let name = str_of(&rule["alert"], "alert").to_owned();
            let expr = str_of(&rule["expr"], "expr");
            catalog_metrics_of(expr);
            if let Some(slo) = rule["labels"]["slo"].as_str() {
                let objective = slos
                    .get(slo)
                    .unwrap_or_else(|| panic!("{name}: no objective {slo}"));
                let target = fraction_of_percent(str_of(&objective["target"], "target"));
                assert!(
                    expr.contains(&format!("(1 - {target})")),
                    "{name}: the budget of {slo} is 1 - {target}: {expr}"
                );
            }
            alerts.insert(name);
        }
    }
    assert!(
        alerts.contains("FloodgateAvailabilityBurnFast"),
        "{alerts:?}"
    );

    let Some(promtool) = promtool() else {
        eprintln!("promtool not installed: structural checks only (CI installs it)");
        return;
    };
    let examples = repo().join("examples");
    run_promtool(
        &promtool,
        &["check", "rules", "prometheus-rules.yml"],
        &examples,
    );
    // The fast availability burn fires on 10% failed decisions over an hour,
    // and not on the same failures under the minimum traffic.
    let dir = scratch();
    let rule_file = examples.join("prometheus-rules.yml");
    let tests = format!(
        r#"rule_files: ["{}"]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'floodgate_requests_total{{job="floodgate",instance="a",api="grpc",code="ok"}}'
        values: '0+900x90'
      - series: 'floodgate_requests_total{{job="floodgate",instance="a",api="grpc",code="error"}}'
        values: '0+100x90'
      - series: 'floodgate_build_info{{job="floodgate",instance="a",version="x"}}'
        values: '1x90'
    alert_rule_test:
      - eval_time: 70m
        alertname: FloodgateAvailabilityBurnFast
        exp_alerts:
          - exp_labels: {{severity: page, slo: availability}}
            exp_annotations:
              summary: Floodgate fails decisions at 14.4x the availability error budget (1h and 5m)
      - eval_time: 70m
        alertname: FloodgateAbsent
        exp_alerts: []
  - interval: 1m
    input_series:
      - series: 'floodgate_requests_total{{job="floodgate",instance="a",api="grpc",code="ok"}}'
        values: '0+9x90'
      - series: 'floodgate_requests_total{{job="floodgate",instance="a",api="grpc",code="error"}}'
        values: '0+1x90'
    alert_rule_test:
      - eval_time: 70m
        alertname: FloodgateAvailabilityBurnFast
        exp_alerts: []
      - eval_time: 70m
        alertname: FloodgateAbsent
        exp_alerts:
          - exp_labels: {{job: floodgate, severity: high}}
            exp_annotations:
              summary: Prometheus has scraped no Floodgate instance for 5 minutes
"#,
        rule_file.display()
    );
    std::fs::write(dir.join("rules_test.yml"), tests).expect("write the rules test");
    run_promtool(&promtool, &["test", "rules", "rules_test.yml"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

// -------------------------------------------------------------- Grafana

const DASHBOARD: &str = "examples/grafana/floodgate.json";

fn dashboard() -> Json {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|error| panic!("{DASHBOARD}: {error}"))
}

#[test]
fn the_dashboard_is_the_generated_one() {
    let generated = floodgate_contract::dashboard::generated_doc();
    assert_eq!(generated.path, DASHBOARD);
    assert!(
        read(DASHBOARD) == generated.content,
        "{DASHBOARD} has drifted from crates/contract/src/dashboard.rs; run `cargo run -p floodgate -- catalog --write`"
    );
}

#[test]
fn the_dashboard_queries_catalog_metrics_through_its_datasource_variable() {
    let model = dashboard();
    assert!(
        model["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "a current schema"
    );
    let variables = model["templating"]["list"].as_array().expect("templating");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    let source = variable("DS_PROMETHEUS");
    assert_eq!(source["type"], "datasource");
    assert_eq!(source["query"], "prometheus");
    let datasource = serde_json::json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"});
    for name in ["instance", "domain"] {
        let query = variable(name)["definition"].as_str().expect("definition");
        catalog_metrics_of(
            query
                .trim_start_matches("label_values(")
                .split(',')
                .next()
                .unwrap_or(""),
        );
        assert_eq!(variable(name)["datasource"], datasource);
    }

    let panels = model["panels"].as_array().expect("panels");
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().expect("row title"))
        .collect();
    for area in [
        "Decisions",
        "Over-limit ratio",
        "Latency",
        "Store",
        "Backend health",
        "SLO burn",
    ] {
        assert!(rows.contains(&area), "no {area} row in {rows:?}");
    }
    let mut queried = BTreeSet::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().expect("title");
        assert!(
            ["timeseries", "stat"].contains(&panel["type"].as_str().unwrap_or("")),
            "{title}"
        );
        assert_eq!(panel["datasource"], datasource, "{title}");
        for key in ["x", "y", "w", "h"] {
            assert!(panel["gridPos"][key].is_u64(), "{title}: gridPos.{key}");
        }
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            assert_eq!(target["datasource"], datasource, "{title}");
            let expr = target["expr"].as_str().expect("expr");
            queried.extend(catalog_metrics_of(expr).into_iter().map(|def| def.name));
        }
    }
    promtool_parses_the_dashboard_queries(panels);
    let charted: BTreeSet<&str> = queried;
    let excused: BTreeSet<&str> = floodgate_contract::dashboard::NOT_CHARTED
        .iter()
        .map(|(def, _)| def.name)
        .collect();
    for def in metrics::CATALOG {
        assert!(
            charted.contains(def.name) != excused.contains(def.name),
            "{}: charted or listed in NOT_CHARTED, not both",
            def.name
        );
    }
}

/// Every panel query, its dashboard variables given values, as a
/// recording rule through `promtool check rules`: Prometheus's own PromQL
/// parser reads each one (where promtool is installed).
fn promtool_parses_the_dashboard_queries(panels: &[Json]) {
    let Some(promtool) = promtool() else {
        eprintln!("promtool not installed: dashboard queries read by the test's reader only (CI installs it)");
        return;
    };
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for target in panels
        .iter()
        .filter_map(|p| p["targets"].as_array())
        .flatten()
    {
        let expr = target["expr"]
            .as_str()
            .expect("expr")
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".+")
            .replace("$domain", ".+")
            .replace("$availability_target", "0.999")
            .replace("$latency_target", "0.99");
        assert!(!expr.contains('$'), "a variable left in {expr}");
        rules.push_str(&format!(
            "      - record: dashboard:query\n        expr: {}\n",
            serde_json::to_string(&expr).expect("quoted")
        ));
    }
    let dir = scratch();
    std::fs::write(dir.join("dashboard_rules.yml"), rules).expect("write rules");
    run_promtool(&promtool, &["check", "rules", "dashboard_rules.yml"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_dashboard_slo_panels_follow_the_example_objectives() {
    let model = dashboard();
    let slos = objectives();
    let variables = model["templating"]["list"].as_array().expect("templating");
    let default_of = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["query"].as_str())
            .unwrap_or_else(|| panic!("no variable {name}"))
            .to_owned()
    };
    for (slo, variable) in [
        ("availability", "availability_target"),
        ("latency", "latency_target"),
    ] {
        let target = str_of(&slos[slo]["target"], "target");
        assert_eq!(default_of(variable), fraction_of_percent(target), "{slo}");
        assert_eq!(
            slos[slo]["window"].as_str(),
            Some(floodgate_contract::dashboard::SLO_WINDOW),
            "{slo}"
        );
    }
    // The latency SLI's threshold is the bucket bound the panels read.
    let threshold = str_of(&slos["latency"]["sli"]["latency"]["threshold"], "threshold");
    assert_eq!(threshold, "1ms");
    let exprs: Vec<&str> = model["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter(|p| p["title"] == "Latency burn rate")
        .flat_map(|p| p["targets"].as_array().expect("targets"))
        .map(|t| t["expr"].as_str().expect("expr"))
        .collect();
    assert_eq!(
        exprs.len(),
        floodgate_contract::dashboard::BURN_WINDOWS.len()
    );
    assert!(
        exprs.iter().all(|e| e.contains(r#"le="0.001""#)),
        "{exprs:?}"
    );
    // The fastest page of the availability SLO is a threshold line.
    let alert = str_of(&slos["availability"]["burn_rate_alert"], "burn_rate_alert");
    let factor: f64 = alert.trim_end_matches('x').parse().expect("burn factor");
    assert!(floodgate_contract::dashboard::BURN_THRESHOLDS.contains(&factor));
}

#[test]
fn grafana_provisioning_loads_the_dashboard_from_where_the_readmes_mount_it() {
    let datasources = yaml("examples/grafana/provisioning/datasources/floodgate.yaml");
    let sources = seq_of(&datasources["datasources"], "datasources");
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0]["type"].as_str(), Some("prometheus"));
    // The dashboard's datasource variable starts on the default datasource.
    assert_eq!(sources[0]["isDefault"].as_bool(), Some(true));
    let url = str_of(&sources[0]["url"], "url");
    let listen = url.strip_prefix("http://").expect("an http URL");
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("--web.listen-address={listen}")),
        "README.md runs Prometheus where the datasource points ({url})"
    );

    let dashboards = yaml("examples/grafana/provisioning/dashboards/floodgate.yaml");
    let providers = seq_of(&dashboards["providers"], "providers");
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0]["type"].as_str(), Some("file"));
    let path = str_of(&providers[0]["options"]["path"], "options.path");
    let mount = format!("\"$PWD/examples/grafana:{path}:ro\"");
    let provisioning = "\"$PWD/examples/grafana/provisioning:/etc/grafana/provisioning:ro\"";
    for readme in ["README.md", "examples/grafana/README.md"] {
        let text = read(readme);
        assert!(
            text.contains(&mount),
            "{readme} mounts the dashboard at {path}"
        );
        assert!(
            text.contains(provisioning),
            "{readme} mounts the provisioning"
        );
    }
}

// -------------------------------------------------------------- systemd

/// A unit file's `KEY=value` lines by section (comments dropped; a key
/// given twice keeps both values).
fn unit(path: &str) -> BTreeMap<String, Vec<String>> {
    let mut section = String::new();
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in read(path).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{path}: {line}"));
        assert!(
            !line.ends_with('\\'),
            "{path}: continuation lines are not read here"
        );
        keys.entry(format!("{section}.{key}"))
            .or_default()
            .push(value.to_owned());
    }
    keys
}

fn one<'u>(unit: &'u BTreeMap<String, Vec<String>>, key: &str) -> &'u str {
    match unit.get(key).map(Vec::as_slice) {
        Some([value]) => value,
        other => panic!("{key}: {other:?}"),
    }
}

/// `ExecStart=`'s arguments after the binary, checked against the real
/// parser: every flag is one `floodgate SUBCOMMAND --help` lists, and the
/// whole line parses (clap reads every argument before `--help`, so an
/// unknown flag or a bad value fails it).
fn exec_args(unit: &BTreeMap<String, Vec<String>>, subcommand: &str) -> BTreeMap<String, String> {
    let exec = one(unit, "Service.ExecStart");
    assert!(!exec.contains(['"', '\'']), "no quoting: {exec}");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/floodgate"));
    assert_eq!(words.next(), Some(subcommand));
    let args: Vec<&str> = words.collect();
    let listed = flags_of(&help(subcommand));
    let mut flags = BTreeMap::new();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            panic!("{exec}: flags take a value here")
        };
        assert!(
            listed.contains(*flag),
            "`floodgate {subcommand}` has no {flag}"
        );
        assert!(
            flags
                .insert((*flag).to_owned(), (*value).to_owned())
                .is_none(),
            "{flag} twice"
        );
    }
    let output = floodgate()
        .arg(subcommand)
        .args(&args)
        .arg("--help")
        .output()
        .expect("run floodgate");
    assert!(
        output.status.success(),
        "floodgate {subcommand} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    flags
}

fn hardened(unit: &BTreeMap<String, Vec<String>>, path: &str) {
    for (key, value) in [
        ("Service.DynamicUser", "yes"),
        ("Service.NoNewPrivileges", "yes"),
        ("Service.ProtectSystem", "strict"),
        ("Service.ProtectHome", "yes"),
        ("Service.PrivateTmp", "yes"),
        ("Service.Restart", "on-failure"),
        ("Install.WantedBy", "multi-user.target"),
    ] {
        assert_eq!(one(unit, key), value, "{path}: {key}");
    }
    // Both listeners at their connection cap, plus files and sockets: what
    // `serve` asks of RLIMIT_NOFILE when it raises it.
    let nofile: usize = one(unit, "Service.LimitNOFILE")
        .parse()
        .expect("LimitNOFILE");
    assert!(
        nofile >= 2 * floodgate_edge::limits::MAX_CONNECTIONS + 64,
        "{path}: LimitNOFILE {nofile}"
    );
}

#[test]
fn the_systemd_units_run_the_real_commands_at_the_default_addresses() {
    let (grpc, http) = serve_defaults();

    let path = "examples/systemd/floodgate.service";
    let service = unit(path);
    hardened(&service, path);
    let serve = exec_args(&service, "serve");
    assert_eq!(serve["--grpc-addr"], grpc.to_string());
    assert_eq!(serve["--http-addr"], http.to_string());
    assert_eq!(serve["--config"], "/etc/floodgate/limits.yaml");
    // The events file is written where systemd lets the dynamic user write.
    let logs = one(&service, "Service.LogsDirectory");
    assert_eq!(
        Path::new(&serve["--events-file"]).parent(),
        Some(Path::new("/var/log").join(logs).as_path())
    );

    let path = "examples/systemd/floodgate-harness.service";
    let harness_unit = unit(path);
    hardened(&harness_unit, path);
    let harness = exec_args(&harness_unit, "harness");
    assert_eq!(
        harness["--service"],
        format!("http://{http}"),
        "observes the service's default HTTP address"
    );
    assert_eq!(harness["--http-addr"], harness_default_addr().to_string());
    let state = one(&harness_unit, "Service.StateDirectory");
    assert_eq!(
        Path::new(&harness["--data"]),
        Path::new("/var/lib").join(state),
        "--data is the StateDirectory"
    );
    // After the service, but not stopped with it: the harness notices it down.
    assert_eq!(one(&harness_unit, "Unit.Wants"), "floodgate.service");
    assert!(one(&harness_unit, "Unit.After")
        .split_whitespace()
        .any(|u| u == "floodgate.service"));
    for key in ["Unit.Requires", "Unit.BindsTo", "Unit.PartOf"] {
        assert!(!harness_unit.contains_key(key), "{key}");
    }

    // systemd's own check, where it is installed (the binary swapped for
    // the one under test so that ExecStart points at an executable).
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.is_file() {
        eprintln!("systemd-analyze not installed: the units were checked by the parser above only");
        return;
    }
    let dir = scratch();
    let mut files = Vec::new();
    for name in ["floodgate.service", "floodgate-harness.service"] {
        let text = read(&format!("examples/systemd/{name}"))
            .replace("/usr/local/bin/floodgate", env!("CARGO_BIN_EXE_floodgate"));
        let file = dir.join(name);
        std::fs::write(&file, text).expect("write unit");
        files.push(file);
    }
    let output = Command::new(analyze)
        .arg("verify")
        .args(&files)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "systemd-analyze verify: {stderr}");
    // It only warns about unknown keys and bad values: any line naming the
    // units is a finding.
    for line in stderr.lines() {
        assert!(
            !line.contains("floodgate"),
            "systemd-analyze verify: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
