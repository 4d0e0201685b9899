//! Ticket YAML (the seed's format): what parses, and errors that name the
//! line and field.

use floodgate_harness::observe::objectives;
use floodgate_harness::tickets::criteria::MetricRegistry;
use floodgate_harness::tickets::{parse_ticket_yaml, Priority, Source, TicketType};

fn registry() -> MetricRegistry {
    let objectives = objectives::parse(
        "o.yaml",
        "slos:\n  - name: availability\n    target: 99.9%\n    window: 30d\n    sli:\n      ratio:\n        bad: floodgate_requests_total{code=\"error\"}\n        total: floodgate_requests_total\n",
    )
    .unwrap_or_else(|error| panic!("{error}"));
    MetricRegistry::for_objectives(&objectives).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn the_seed_format_parses() {
    let text = r#"
ticket:
  id: "INF-4521"
  type: improvement
  objective:
    description: "Reduce decision latency"
  acceptance_criteria:
    - metric: latency_p99
      condition: "< 500ms"
      duration: "1h sustained"
    - metric: throughput
      condition: "no regression"
    - metric: availability
      condition: ">= 99.9%"
  constraints:
    - no changes during peak hours
"#;
    let draft = parse_ticket_yaml("ticket.yaml", text, &registry())
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(draft.kind, TicketType::Improvement);
    assert_eq!(
        (draft.source, draft.priority),
        (Source::Human, Priority::Medium)
    );
    assert_eq!(draft.acceptance_criteria.len(), 3);
    assert_eq!(
        draft.acceptance_criteria[0].condition.to_string(),
        "< 500ms"
    );
    assert_eq!(
        draft.acceptance_criteria[0]
            .duration
            .map(|d| d.to_string())
            .as_deref(),
        Some("1h sustained")
    );
    assert_eq!(
        draft.acceptance_criteria[1].condition.to_string(),
        "no regression"
    );
    assert!(draft.fingerprint.starts_with("human:"));
    // The same file twice has the same fingerprint (one ticket).
    let again = parse_ticket_yaml("ticket.yaml", text, &registry())
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(again.fingerprint, draft.fingerprint);
}

fn check_error(text: &str, expected: &str) {
    match parse_ticket_yaml("ticket.yaml", text, &registry()) {
        Ok(draft) => panic!("accepted, expected {expected:?}: {draft:?}"),
        Err(error) => match expected.strip_suffix('…') {
            Some(prefix) => assert!(
                error.to_string().starts_with(prefix),
                "{error}\nfor:\n{text}"
            ),
            None => assert_eq!(error.to_string(), expected, "for:\n{text}"),
        },
    }
}

const HEAD: &str = "ticket:\n  type: improvement\n  objective:\n    description: Reduce cold start latency\n  acceptance_criteria:\n";

#[test]
fn bad_tickets_name_the_line_and_field() {
    // The seed's own example names a metric this harness does not know.
    check_error(
        &format!("{HEAD}    - metric: cold_start_p99\n      condition: \"< 500ms\"\n      duration: \"1h sustained\"\n"),
        "ticket.yaml: line 6: ticket.acceptance_criteria[0].metric: unknown metric \"cold_start_p99\" (known: availability, error_ratio, latency_p50, latency_p99, latency_p999, over_limit_ratio, store_evictions_rate, store_used_ratio, throughput)",
    );
    check_error(
        &format!("{HEAD}    - metric: latency_p99\n      condition: \"<< 500ms\"\n"),
        "ticket.yaml: line 7: ticket.acceptance_criteria[0].condition: \"<< 500ms\" is not a condition (expected e.g. \"< 500ms\", \"> 99.9%\", \"no regression\", \"no regression within 2%\", \"within 6 scales of reference\")",
    );
    check_error(
        &format!("{HEAD}    - metric: throughput\n      condition: no regression\n    - metric: latency_p99\n      condition: \"> 99.9%\"\n"),
        "ticket.yaml: line 9: ticket.acceptance_criteria[1].condition: \"> 99.9%\" does not suit latency_p99, which is a latency (expected e.g. \"< 500ms\")",
    );
    check_error(
        &format!("{HEAD}    - metric: latency_p99\n      condition: \"< 500ms\"\n      duration: a while\n"),
        "ticket.yaml: line 8: ticket.acceptance_criteria[0].duration: \"a while\" is not a duration (expected e.g. \"1h sustained\" or \"30m\")",
    );
    check_error(
        "ticket:\n  type: chore\n  objective:\n    description: x\n",
        "ticket.yaml: line 2: ticket.type: unknown variant chore, expected one of incident, improvement, investigation, task, help",
    );
    check_error(
        "ticket:\n  type: task\n  objective:\n    description: x\n  acceptance_criteria:\n    - metric: throughput\n      condition: no regression\n  constrains: []\n",
        "ticket.yaml: line 8: ticket: unknown field \"constrains\" (expected one of id, type, objective, acceptance_criteria, constraints, priority, context, fingerprint)",
    );
    check_error(
        "ticket:\n  type: task\n  objective:\n    description: x\n",
        "ticket.yaml: line 1: ticket.acceptance_criteria: a ticket needs at least one acceptance criterion (what shows it is done?)…",
    );
}

/// Every YAML text the harness reads passes the shared gate first
/// (`floodgate_contract::yaml`): aliases, tags outside the core schema,
/// deep nesting and NUL are refused, naming the file, line and field.
#[test]
fn hostile_yaml_is_refused_before_deserialising() {
    check_error(
        "ticket:\n  type: &t improvement\n  objective:\n    description: *t\n",
        "ticket.yaml: line 2: ticket.type: YAML anchors (`&name`) are not accepted",
    );
    check_error(
        "ticket:\n  type: !!binary aW1wcm92ZW1lbnQ=\n",
        "ticket.yaml: line 2: ticket.type: YAML tag `!!binary` is not accepted…",
    );
    check_error(
        &format!(
            "ticket:\n  type: {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        ),
        "ticket.yaml: line 2: ticket.type…",
    );
    check_error(
        "ticket:\n  type: \"a\\0\"\n",
        "ticket.yaml: line 2: ticket.type: NUL characters are not accepted",
    );
    let policy =
        floodgate_harness::change::policy::Policy::parse("p.yaml", "budgets: &b {}\nother: *b\n")
            .expect_err("anchor refused");
    assert!(
        policy.to_string().contains("budgets: YAML anchors"),
        "{policy}"
    );
    let objectives =
        objectives::parse("o.yaml", "slos:\n  - !custom {}\n").expect_err("tag refused");
    assert!(
        objectives
            .to_string()
            .contains("slos[0]: YAML tag `!custom`"),
        "{objectives}"
    );
    let thresholds = floodgate_harness::learn::reflection::Thresholds::parse("r.yaml", "a: *x\n")
        .expect_err("alias refused");
    assert!(
        thresholds.to_string().contains("a: YAML aliases"),
        "{thresholds}"
    );
}
