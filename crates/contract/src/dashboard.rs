//! The Grafana dashboard `examples/grafana/floodgate.json`, generated from
//! the metrics catalog by `floodgate catalog --write` (and checked for drift
//! by `floodgate catalog --check` and `tests/catalog_drift.rs`).
//!
//! Every query is built from a [`MetricDef`] constant of [`crate::metrics`],
//! never from a name written here: a metric removed from the catalog breaks
//! the build, and a kind or label a query relies on that the catalog no
//! longer declares panics generation (so `catalog --write` and the drift
//! test fail) instead of leaving a dead panel. The rule, by kind:
//!
//! - counter: `sum by (LABELS) (rate(NAME{…}[$__rate_interval]))`, in the
//!   catalog's unit per second (ratios of two counters for over-limit and
//!   SLO panels);
//! - histogram: `histogram_quantile(Q, sum by (le, LABELS) (rate(NAME_bucket{…}[$__rate_interval])))`,
//!   and the share of observations under one bucket bound;
//! - gauge: as is, `sum|max by (LABELS) (NAME{…})`.
//!
//! `LABELS` are labels the catalog declares for the metric (or `instance`,
//! which Prometheus adds). Every selector carries `instance=~"$instance"`,
//! and `domain=~"$domain"` when the metric has a `domain` label. Every
//! metric of the catalog is charted, or listed in [`NOT_CHARTED`] with the
//! reason (a test).
//!
//! The SLO burn row charts the SRE workbook's multi-window burn rates of
//! the availability and latency objectives `examples/objectives.yaml`
//! declares; their targets are dashboard variables whose defaults
//! ([`AVAILABILITY_TARGET`], [`LATENCY_TARGET`]) `crates/cli/tests/examples.rs`
//! checks against that file.

use crate::metrics::{self, MetricDef, MetricKind};
use crate::GeneratedDoc;
use serde_json::{json, Value};

/// Where the dashboard lives, relative to the repository root.
pub const PATH: &str = "examples/grafana/floodgate.json";
/// The dashboard's uid (its URL: `/d/floodgate`).
pub const UID: &str = "floodgate";
/// The datasource variable every panel queries through.
pub const DATASOURCE_VARIABLE: &str = "DS_PROMETHEUS";

/// The availability objective's default target (examples/objectives.yaml:
/// `availability`, 99.9%).
pub const AVAILABILITY_TARGET: &str = "0.999";
/// The latency objective's default target (examples/objectives.yaml:
/// `latency`, 99%).
pub const LATENCY_TARGET: &str = "0.99";
/// The latency objective's threshold in seconds (1 ms); must be a bound of
/// [`metrics::DURATION_BUCKETS_SECONDS`].
pub const LATENCY_THRESHOLD_SECONDS: f64 = 0.001;
/// The objectives' window: the error budget left is over this range.
pub const SLO_WINDOW: &str = "30d";
/// Burn rates charted, as the SRE workbook pairs them for a 30-day SLO:
/// page at 14.4x over 1h and 5m, page at 6x over 6h and 30m.
pub const BURN_WINDOWS: &[&str] = &["5m", "30m", "1h", "6h"];
/// The burn-rate thresholds drawn on the burn panels (orange, red).
pub const BURN_THRESHOLDS: [f64; 2] = [6.0, 14.4];

/// Metrics deliberately left off the dashboard, each with the reason.
pub const NOT_CHARTED: &[(&MetricDef, &str)] = &[];

/// The rate window of every counter panel.
const RATE: &str = "$__rate_interval";
/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["instance", "job"];
/// The dashboard grid's width.
const GRID_WIDTH: u32 = 24;

/// The generated dashboard, for `floodgate catalog`.
pub fn generated_doc() -> GeneratedDoc {
    let mut content = serde_json::to_string_pretty(&dashboard()).unwrap_or_default();
    content.push('\n');
    GeneratedDoc {
        path: PATH.into(),
        content,
    }
}

/// A row of panels.
struct Row {
    title: &'static str,
    panels: Vec<Panel>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    TimeSeries,
    Stat,
}

/// One panel: its queries, the metrics they read (for the description),
/// its unit and width.
struct Panel {
    title: &'static str,
    kind: Kind,
    unit: String,
    width: u32,
    /// What the panel shows beyond its metrics' meaning.
    note: &'static str,
    metrics: Vec<&'static MetricDef>,
    targets: Vec<(String, String)>,
    /// Burn-rate threshold lines.
    burn_thresholds: bool,
    /// 0 and 1 shown as down and up.
    up_down: bool,
    /// A stat showing its series' names (labels), not values.
    names_only: bool,
}

impl Panel {
    fn new(title: &'static str, kind: Kind, unit: impl Into<String>, width: u32) -> Panel {
        Panel {
            title,
            kind,
            unit: unit.into(),
            width,
            note: "",
            metrics: Vec::new(),
            targets: Vec::new(),
            burn_thresholds: false,
            up_down: false,
            names_only: false,
        }
    }

    fn reads(mut self, defs: &[&'static MetricDef]) -> Panel {
        self.metrics.extend_from_slice(defs);
        self
    }

    fn query(mut self, expr: String, legend: &str) -> Panel {
        self.targets.push((expr, legend.to_owned()));
        self
    }

    fn note(mut self, note: &'static str) -> Panel {
        self.note = note;
        self
    }
}

/// `name{instance=~"$instance"[,domain=~"$domain"][,label="value"…]}` for
/// one series of `def` (`suffix` is `_bucket`, `_count`, `_sum` or empty).
fn selector(def: &MetricDef, suffix: &str, matchers: &[(&str, &str)]) -> String {
    assert!(
        suffix.is_empty() || def.kind == MetricKind::Histogram,
        "{}: only histograms have {suffix} series",
        def.name
    );
    let mut parts = vec![r#"instance=~"$instance""#.to_owned()];
    if def.labels.contains(&metrics::LABEL_DOMAIN) {
        parts.push(r#"domain=~"$domain""#.to_owned());
    }
    for (label, value) in matchers {
        let bucket_bound = *label == "le" && suffix == "_bucket";
        assert!(
            bucket_bound || def.labels.contains(label),
            "{}: the catalog declares no label {label}",
            def.name
        );
        parts.push(format!("{label}=\"{value}\""));
    }
    format!("{}{suffix}{{{}}}", def.name, parts.join(","))
}

/// `sum by (labels)` (`sum` alone for none), every label declared.
fn aggregate(op: &str, def: &MetricDef, by: &[&str]) -> String {
    for label in by {
        assert!(
            def.labels.contains(label) || TARGET_LABELS.contains(label),
            "{}: the catalog declares no label {label}",
            def.name
        );
    }
    if by.is_empty() {
        op.to_owned()
    } else {
        format!("{op} by ({})", by.join(", "))
    }
}

fn expect_kind(def: &MetricDef, kind: MetricKind) {
    assert!(
        def.kind == kind,
        "{} is a {}, the dashboard reads it as a {}",
        def.name,
        def.kind.as_str(),
        kind.as_str()
    );
}

/// The per-second rate of a counter, summed by `by`.
fn rate(def: &MetricDef, matchers: &[(&str, &str)], by: &[&str], window: &str) -> String {
    expect_kind(def, MetricKind::Counter);
    format!(
        "{} (rate({}[{window}]))",
        aggregate("sum", def, by),
        selector(def, "", matchers)
    )
}

/// A gauge, aggregated by `by` with `op`.
fn gauge(op: &str, def: &MetricDef, by: &[&str]) -> String {
    expect_kind(def, MetricKind::Gauge);
    format!("{} ({})", aggregate(op, def, by), selector(def, "", &[]))
}

/// The `q` quantile of a histogram, by `by`.
fn quantile(def: &MetricDef, q: &str, by: &[&str]) -> String {
    expect_kind(def, MetricKind::Histogram);
    let mut labels = vec!["le"];
    labels.extend_from_slice(by);
    for label in by {
        assert!(
            def.labels.contains(label) || TARGET_LABELS.contains(label),
            "{}: the catalog declares no label {label}",
            def.name
        );
    }
    format!(
        "histogram_quantile({q}, sum by ({}) (rate({}[{RATE}])))",
        labels.join(", "),
        selector(def, "_bucket", &[])
    )
}

/// The share of a histogram's observations at most `bound` seconds, by
/// `by`, over `window`.
fn share_within(def: &MetricDef, bound: f64, by: &[&str], window: &str) -> String {
    expect_kind(def, MetricKind::Histogram);
    assert!(
        metrics::DURATION_BUCKETS_SECONDS.contains(&bound),
        "{}: {bound} is not a bucket bound",
        def.name
    );
    let le = bound.to_string();
    let agg = aggregate("sum", def, by);
    format!(
        "{agg} (rate({}[{window}])) / {agg} (rate({}[{window}]))",
        selector(def, "_bucket", &[("le", le.as_str())]),
        selector(def, "_count", &[])
    )
}

/// The unit of a counter's rate.
fn rate_unit(def: &MetricDef) -> String {
    match def.unit {
        "requests" => "reqps".to_owned(),
        unit => format!("suffix:{unit}/s"),
    }
}

/// The unit of a gauge as is.
fn gauge_unit(def: &MetricDef) -> String {
    match def.unit {
        "seconds" => "s",
        "bytes" => "bytes",
        _ => "short",
    }
    .to_owned()
}

const QUANTILES: &[(&str, &str)] = &[("0.5", "p50"), ("0.99", "p99"), ("0.999", "p99.9")];

fn quantiles(mut panel: Panel, def: &'static MetricDef, by: &[&str], legend: &str) -> Panel {
    for (q, name) in QUANTILES {
        panel = panel.query(quantile(def, q, by), &format!("{name}{legend}"));
    }
    panel.reads(&[def])
}

/// A counter's rate by `by`, one series per label set.
fn rate_panel(title: &'static str, def: &'static MetricDef, by: &[&str], width: u32) -> Panel {
    let legend = legend_of(by);
    Panel::new(title, Kind::TimeSeries, rate_unit(def), width)
        .reads(&[def])
        .query(rate(def, &[], by, RATE), &legend)
}

/// `{{a}} {{b}}` for the labels `by`.
fn legend_of(by: &[&str]) -> String {
    by.iter()
        .map(|label| format!("{{{{{label}}}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The share of failed decisions over `window`: the availability SLI's bad
/// ratio (`code="error"` of all answered decisions).
fn availability_bad(window: &str) -> String {
    format!(
        "({}) / ({})",
        rate(&metrics::REQUESTS, &[("code", "error")], &[], window),
        rate(&metrics::REQUESTS, &[], &[], window)
    )
}

/// The share of decisions slower than the latency objective's threshold.
fn latency_bad(window: &str) -> String {
    format!(
        "1 - ({})",
        share_within(
            &metrics::REQUEST_DURATION,
            LATENCY_THRESHOLD_SECONDS,
            &[],
            window
        )
    )
}

fn burn_panel(title: &'static str, bad: fn(&str) -> String, target_variable: &str) -> Panel {
    let mut panel = Panel::new(title, Kind::TimeSeries, "suffix:x", 12);
    for window in BURN_WINDOWS {
        panel = panel.query(
            format!("({}) / (1 - ${target_variable})", bad(window)),
            window,
        );
    }
    panel.burn_thresholds = true;
    panel
}

fn budget_panel(title: &'static str, bad: fn(&str) -> String, target_variable: &str) -> Panel {
    Panel::new(title, Kind::Stat, "percentunit", 12).query(
        format!("1 - ({}) / (1 - ${target_variable})", bad(SLO_WINDOW)),
        "budget left",
    )
}

/// The rows and their panels: the whole dashboard, from the catalog.
fn rows() -> Vec<Row> {
    use metrics::*;
    let by_limit: &[&str] = &["limit"];
    let ratio_by_limit = |over: &'static MetricDef| {
        format!(
            "{} / {}",
            rate(over, &[], by_limit, RATE),
            rate(&HITS, &[], by_limit, RATE)
        )
    };
    vec![
        Row {
            title: "Decisions",
            panels: vec![
                rate_panel("Decisions by API and code", &REQUESTS, &["api", "code"], 12),
                rate_panel("Hits by limit", &HITS, by_limit, 12),
                rate_panel(
                    "Unmatched descriptors by reason",
                    &UNMATCHED,
                    &["reason"],
                    12,
                ),
                rate_panel("Errors by API and kind", &ERRORS, &["api", "kind"], 12),
            ],
        },
        Row {
            title: "Over-limit ratio",
            panels: vec![
                Panel::new("Over-limit ratio by limit", Kind::TimeSeries, "percentunit", 12)
                    .reads(&[&OVER_LIMIT, &HITS])
                    .note("Rejected hits over requested hits, per limit.")
                    .query(ratio_by_limit(&OVER_LIMIT), "{{limit}}"),
                Panel::new(
                    "Over-limit decisions ratio by API",
                    Kind::TimeSeries,
                    "percentunit",
                    12,
                )
                .reads(&[&REQUESTS])
                .note("Decisions answered over_limit over all decisions answered.")
                .query(
                    format!(
                        "{} / {}",
                        rate(&REQUESTS, &[("code", "over_limit")], &["api"], RATE),
                        rate(&REQUESTS, &[], &["api"], RATE)
                    ),
                    "{{api}}",
                ),
                Panel::new(
                    "Shadow over-limit ratio by limit",
                    Kind::TimeSeries,
                    "percentunit",
                    8,
                )
                .reads(&[&SHADOW_OVER_LIMIT, &HITS])
                .note("Hits a shadow-mode limit would have rejected over its hits: what enforcing it would do.")
                .query(ratio_by_limit(&SHADOW_OVER_LIMIT), "{{limit}}"),
                rate_panel("Admitted hits by limit", &WITHIN_LIMIT, by_limit, 8),
                rate_panel("Near-limit hits by limit", &NEAR_LIMIT, by_limit, 8),
                Panel::new(
                    "Top descriptor values (detailed_metric limits)",
                    Kind::TimeSeries,
                    rate_unit(&DETAILED_HITS),
                    24,
                )
                .reads(&[&DETAILED_HITS])
                .note("The ten busiest descriptor values of limits with detailed_metric: true.")
                .query(
                    format!(
                        "topk(10, {})",
                        rate(
                            &DETAILED_HITS,
                            &[],
                            &["limit", "descriptor", "outcome"],
                            RATE
                        )
                    ),
                    "{{limit}} {{descriptor}} {{outcome}}",
                ),
            ],
        },
        Row {
            title: "Latency",
            panels: vec![
                quantiles(
                    Panel::new("Decision latency by API", Kind::TimeSeries, "s", 12),
                    &REQUEST_DURATION,
                    &["api"],
                    " {{api}}",
                ),
                Panel::new(
                    "Decisions within the latency objective by API",
                    Kind::TimeSeries,
                    "percentunit",
                    12,
                )
                .reads(&[&REQUEST_DURATION])
                .note("The latency SLI: the share of decisions answered within the objective's threshold (1 ms, a bucket bound).")
                .query(
                    share_within(&REQUEST_DURATION, LATENCY_THRESHOLD_SECONDS, &["api"], RATE),
                    "{{api}}",
                ),
            ],
        },
        Row {
            title: "Store",
            panels: vec![
                Panel::new("Store keys and capacity", Kind::TimeSeries, gauge_unit(&STORE_KEYS), 8)
                    .reads(&[&STORE_KEYS, &STORE_CAPACITY])
                    .query(gauge("sum", &STORE_KEYS, &["backend"]), "keys {{backend}}")
                    .query(
                        gauge("sum", &STORE_CAPACITY, &["backend"]),
                        "capacity {{backend}}",
                    ),
                Panel::new("Store fill", Kind::TimeSeries, "percentunit", 8)
                    .reads(&[&STORE_KEYS, &STORE_CAPACITY])
                    .note("Keys held over capacity, per instance: past capacity the store evicts.")
                    .query(
                        format!(
                            "{} / {}",
                            gauge("sum", &STORE_KEYS, &["instance", "backend"]),
                            gauge("sum", &STORE_CAPACITY, &["instance", "backend"])
                        ),
                        "{{instance}} {{backend}}",
                    ),
                rate_panel(
                    "Store evictions by reason",
                    &STORE_EVICTIONS,
                    &["backend", "reason"],
                    8,
                ),
            ],
        },
        Row {
            title: "Backend health",
            panels: vec![
                {
                    let mut panel = Panel::new("Backend up", Kind::Stat, "none", 6)
                        .reads(&[&BACKEND_UP])
                        .note("Per instance; no value with the memory store.")
                        .query(gauge("min", &BACKEND_UP, &["instance"]), "{{instance}}");
                    panel.up_down = true;
                    panel
                },
                quantiles(
                    Panel::new("Backend round trip", Kind::TimeSeries, "s", 6),
                    &BACKEND_DURATION,
                    &[],
                    "",
                ),
                rate_panel("Backend errors by kind", &BACKEND_ERRORS, &["kind"], 6),
                rate_panel(
                    "Failure-policy decisions by policy",
                    &BACKEND_FALLBACK_DECISIONS,
                    &["policy"],
                    6,
                ),
            ],
        },
        Row {
            title: "SLO burn",
            panels: vec![
                burn_panel(
                    "Availability burn rate",
                    availability_bad,
                    "availability_target",
                )
                .reads(&[&REQUESTS])
                .note("Failed decisions (code=\"error\") over all, divided by the error budget (1 - target), over each window: 1 spends the budget exactly in the SLO window; 14.4 over 1h and 5m, or 6 over 6h and 30m, pages."),
                burn_panel(
                    "Latency burn rate",
                    latency_bad,
                    "latency_target",
                )
                .reads(&[&REQUEST_DURATION])
                .note("Decisions slower than the objective's threshold (1 ms) over all, divided by the error budget (1 - target), over each window."),
                budget_panel(
                    "Availability error budget left (30d)",
                    availability_bad,
                    "availability_target",
                )
                .reads(&[&REQUESTS]),
                budget_panel(
                    "Latency error budget left (30d)",
                    latency_bad,
                    "latency_target",
                )
                .reads(&[&REQUEST_DURATION]),
            ],
        },
        Row {
            title: "Listeners",
            panels: vec![
                Panel::new(
                    "Open connections by listener",
                    Kind::TimeSeries,
                    gauge_unit(&CONNECTIONS_OPEN),
                    6,
                )
                .reads(&[&CONNECTIONS_OPEN])
                .query(
                    gauge("sum", &CONNECTIONS_OPEN, &["listener"]),
                    "{{listener}}",
                ),
                rate_panel(
                    "Accepted connections by listener",
                    &CONNECTIONS_ACCEPTED,
                    &["listener"],
                    6,
                ),
                rate_panel(
                    "Connections closed by the service",
                    &CONNECTIONS_CLOSED,
                    &["listener", "reason"],
                    6,
                ),
                rate_panel("Accept errors by listener", &ACCEPT_ERRORS, &["listener"], 6),
            ],
        },
        Row {
            title: "Service",
            panels: vec![
                {
                    let mut panel = Panel::new("Version", Kind::Stat, "none", 6)
                        .reads(&[&BUILD_INFO])
                        .query(
                            gauge("max", &BUILD_INFO, &["instance", "version"]),
                            "{{instance}} {{version}}",
                        );
                    panel.names_only = true;
                    panel
                },
                Panel::new("Uptime", Kind::Stat, "s", 6)
                    .reads(&[&START_TIME])
                    .query(
                        format!("time() - {}", gauge("max", &START_TIME, &["instance"])),
                        "{{instance}}",
                    ),
                Panel::new("Limits in the active config", Kind::Stat, gauge_unit(&CONFIG_LIMITS), 6)
                    .reads(&[&CONFIG_LIMITS])
                    .query(gauge("max", &CONFIG_LIMITS, &["instance"]), "{{instance}}"),
                rate_panel(
                    "Actions refused by reason",
                    &ACTIONS_REFUSED,
                    &["reason"],
                    6,
                ),
                Panel::new("Traffic recorder", Kind::TimeSeries, rate_unit(&TRAFFIC_RECORDED), 12)
                    .reads(&[&TRAFFIC_RECORDED, &TRAFFIC_DROPPED, &TRAFFIC_NOT_RECORDED])
                    .query(rate(&TRAFFIC_RECORDED, &[], &[], RATE), "recorded")
                    .query(rate(&TRAFFIC_DROPPED, &[], &[], RATE), "dropped")
                    .query(
                        rate(&TRAFFIC_NOT_RECORDED, &[], &["reason"], RATE),
                        "not recorded: {{reason}}",
                    ),
                Panel::new("Traffic recorder memory", Kind::TimeSeries, gauge_unit(&TRAFFIC_BYTES), 12)
                    .reads(&[&TRAFFIC_BYTES])
                    .query(gauge("sum", &TRAFFIC_BYTES, &["instance"]), "{{instance}}"),
            ],
        },
    ]
}

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": format!("${{{DATASOURCE_VARIABLE}}}")})
}

fn description(panel: &Panel) -> String {
    let mut parts = Vec::new();
    if !panel.note.is_empty() {
        parts.push(panel.note.to_owned());
    }
    for def in &panel.metrics {
        parts.push(format!(
            "`{}` ({}, {}): {}",
            def.name,
            def.kind.as_str(),
            def.unit,
            def.help
        ));
    }
    parts.join("\n\n")
}

fn panel_json(panel: &Panel, id: u32, x: u32, y: u32, height: u32) -> Value {
    let targets: Vec<Value> = panel
        .targets
        .iter()
        .enumerate()
        .map(|(index, (expr, legend))| {
            json!({
                "datasource": datasource(),
                "expr": expr,
                "legendFormat": legend,
                "range": true,
                "refId": ref_id(index),
            })
        })
        .collect();
    let thresholds = if panel.burn_thresholds {
        json!({"mode": "absolute", "steps": [
            {"color": "green", "value": null},
            {"color": "orange", "value": BURN_THRESHOLDS[0]},
            {"color": "red", "value": BURN_THRESHOLDS[1]},
        ]})
    } else if panel.up_down {
        json!({"mode": "absolute", "steps": [
            {"color": "red", "value": null},
            {"color": "green", "value": 1},
        ]})
    } else {
        json!({"mode": "absolute", "steps": [{"color": "green", "value": null}]})
    };
    let color = match panel.kind {
        Kind::TimeSeries => "palette-classic",
        Kind::Stat => "thresholds",
    };
    let mut defaults = json!({
        "unit": panel.unit,
        "thresholds": thresholds,
        "color": {"mode": color},
    });
    if panel.up_down {
        defaults["mappings"] = json!([{"type": "value", "options": {
            "0": {"text": "down", "color": "red", "index": 0},
            "1": {"text": "up", "color": "green", "index": 1},
        }}]);
    }
    let text_mode = if panel.names_only {
        "name"
    } else {
        "value_and_name"
    };
    let options = match panel.kind {
        Kind::TimeSeries => {
            let threshold_lines = if panel.burn_thresholds { "line" } else { "off" };
            defaults["custom"] = json!({
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 10,
                "showPoints": "never",
                "spanNulls": false,
                "thresholdsStyle": {"mode": threshold_lines},
            });
            json!({
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": true},
                "tooltip": {"mode": "multi", "sort": "desc"},
            })
        }
        Kind::Stat => json!({
            "textMode": text_mode,
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
        }),
    };
    let kind = match panel.kind {
        Kind::TimeSeries => "timeseries",
        Kind::Stat => "stat",
    };
    json!({
        "id": id,
        "type": kind,
        "title": panel.title,
        "description": description(panel),
        "datasource": datasource(),
        "gridPos": {"h": height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": targets,
    })
}

/// `A`, `B`, … (a panel has far fewer than 26 queries).
fn ref_id(index: usize) -> String {
    char::from(b'A' + u8::try_from(index % 26).unwrap_or(0)).to_string()
}

fn templating() -> Value {
    let query_variable = |name: &str, label: &str, def: &MetricDef, target_label: &str| {
        assert!(
            def.labels.contains(&target_label) || TARGET_LABELS.contains(&target_label),
            "{}: the catalog declares no label {target_label}",
            def.name
        );
        let query = format!("label_values({}, {target_label})", def.name);
        json!({
            "name": name,
            "label": label,
            "type": "query",
            "datasource": datasource(),
            "definition": query,
            "query": query,
            "includeAll": true,
            "multi": true,
            "allValue": ".+",
            "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
            "refresh": 2,
            "sort": 1,
            "hide": 0,
            "options": [],
            "regex": "",
        })
    };
    let target_variable = |name: &str, label: &str, value: &str| {
        json!({
            "name": name,
            "label": label,
            "type": "textbox",
            "query": value,
            "current": {"selected": false, "text": value, "value": value},
            "options": [{"selected": true, "text": value, "value": value}],
            "hide": 0,
        })
    };
    json!({"list": [
        {
            "name": DATASOURCE_VARIABLE,
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "includeAll": false,
            "multi": false,
            "options": [],
            "refresh": 1,
            "regex": "",
        },
        query_variable("instance", "Instance", &metrics::BUILD_INFO, "instance"),
        query_variable("domain", "Domain", &metrics::HITS, metrics::LABEL_DOMAIN),
        target_variable("availability_target", "Availability SLO target", AVAILABILITY_TARGET),
        target_variable("latency_target", "Latency SLO target (1 ms)", LATENCY_TARGET),
    ]})
}

/// The whole dashboard model.
fn dashboard() -> Value {
    let mut panels = Vec::new();
    let mut id = 0;
    let mut y = 0;
    for row in rows() {
        id += 1;
        panels.push(json!({
            "id": id,
            "type": "row",
            "title": row.title,
            "collapsed": false,
            "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
            "panels": [],
        }));
        y += 1;
        // Left to right, a new line when the next panel does not fit.
        let (mut x, mut line_height) = (0, 0);
        for panel in &row.panels {
            let height = match panel.kind {
                Kind::TimeSeries => 8,
                Kind::Stat => 5,
            };
            if x + panel.width > GRID_WIDTH {
                (x, y, line_height) = (0, y + line_height, 0);
            }
            id += 1;
            panels.push(panel_json(panel, id, x, y, height));
            x += panel.width;
            line_height = line_height.max(height);
        }
        y += line_height;
    }
    json!({
        "id": null,
        "uid": UID,
        "title": "Floodgate",
        "description": "Generated from the metrics catalog (crates/contract/src/dashboard.rs) by `floodgate catalog --write`; do not edit by hand.",
        "tags": ["floodgate", "rate-limiting"],
        "editable": true,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "links": [],
        "fiscalYearStartMonth": 0,
        "liveNow": false,
        "weekStart": "",
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": true,
            "hide": true,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "templating": templating(),
        "panels": panels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exprs() -> Vec<String> {
        rows()
            .into_iter()
            .flat_map(|row| row.panels)
            .flat_map(|panel| panel.targets.into_iter().map(|(expr, _)| expr))
            .collect()
    }

    #[test]
    fn every_catalog_metric_is_charted_or_listed_as_not_charted() {
        let exprs = exprs();
        for def in metrics::CATALOG {
            let charted = exprs.iter().any(|expr| {
                expr.match_indices(def.name).any(|(at, _)| {
                    // The name, not the prefix of a longer one.
                    let rest = &expr[at + def.name.len()..];
                    rest.starts_with('{')
                        || ["_bucket{", "_count{", "_sum{"]
                            .iter()
                            .any(|suffix| rest.starts_with(suffix))
                })
            });
            let excused = NOT_CHARTED
                .iter()
                .any(|(excused, _)| excused.name == def.name);
            assert!(
                charted != excused,
                "{}: chart it in crates/contract/src/dashboard.rs or list it in NOT_CHARTED with the reason (charted: {charted}, listed: {excused})",
                def.name
            );
        }
    }

    #[test]
    fn panels_read_the_metrics_they_describe() {
        for panel in rows().into_iter().flat_map(|row| row.panels) {
            assert!(!panel.targets.is_empty(), "{}: no query", panel.title);
            for def in &panel.metrics {
                assert!(
                    panel
                        .targets
                        .iter()
                        .any(|(expr, _)| expr.contains(def.name)),
                    "{}: describes {} but does not query it",
                    panel.title,
                    def.name
                );
            }
        }
    }

    #[test]
    fn panels_fit_the_grid_and_ids_are_unique() {
        let model = dashboard();
        let panels = model["panels"].as_array().expect("panels");
        let mut ids: Vec<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
        assert_eq!(ids.len(), panels.len());
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), panels.len(), "ids are unique");
        for panel in panels {
            let grid = &panel["gridPos"];
            let right = grid["x"].as_u64().unwrap_or(99) + grid["w"].as_u64().unwrap_or(99);
            assert!(right <= u64::from(GRID_WIDTH), "{panel}");
        }
    }

    #[test]
    fn the_latency_threshold_is_a_bucket_bound() {
        assert!(metrics::DURATION_BUCKETS_SECONDS.contains(&LATENCY_THRESHOLD_SECONDS));
    }

    #[test]
    #[should_panic(expected = "declares no label")]
    fn a_label_the_catalog_does_not_declare_fails_generation() {
        rate(&metrics::HITS, &[], &["tenant"], RATE);
    }

    #[test]
    #[should_panic(expected = "is a counter")]
    fn a_kind_the_catalog_does_not_declare_fails_generation() {
        quantile(&metrics::HITS, "0.99", &[]);
    }
}
