//! The seed document's own YAML examples, pasted verbatim: the SLOs and
//! invariants load as written (an SLO named `availability` without `sli`
//! means the service's availability), and the example ticket gets the
//! named refusal of its one metric Floodgate does not measure yet
//! (`cold_start_p99`, which arrives with the fleet's cold-start metrics).

use floodgate_harness::observe::objectives::{
    self, OnViolation, Sli, AVAILABILITY_GOOD, AVAILABILITY_TOTAL,
};
use floodgate_harness::quantity::DAY_MS;
use floodgate_harness::tickets::criteria::MetricRegistry;
use floodgate_harness::tickets::parse_ticket_yaml;

/// The seed's SLO and invariant example, byte for byte.
const SEED_OBJECTIVES: &str = "slos:
  - name: availability
    target: 99.9%
    window: 30d
    burn_rate_alert: 14.4x   # 1h of budget in 5m
invariants:
  - name: capacity_headroom
    condition: available > 20%
    on_violation: auto_remediate
";

/// The seed's ticket example, byte for byte.
const SEED_TICKET: &str = r#"ticket:
  id: "INF-4521"
  type: improvement
  objective:
    description: "Reduce cold start latency"
  acceptance_criteria:
    - metric: cold_start_p99
      condition: "< 500ms"
      duration: "1h sustained"
    - metric: throughput
      condition: "no regression"
  constraints:
    - no changes during peak hours
"#;

#[test]
fn the_seed_slos_and_invariants_load_as_written() {
    let objectives =
        objectives::parse("seed.yaml", SEED_OBJECTIVES).unwrap_or_else(|error| panic!("{error}"));
    let [slo] = objectives.slos.as_slice() else {
        panic!("one SLO: {:?}", objectives.slos);
    };
    assert_eq!(slo.name, "availability");
    assert!((slo.target - 0.999).abs() < 1e-12);
    assert_eq!(slo.window_ms, 30 * DAY_MS);
    // burn_rate_alert sets the fastest page rule (1h and 5m).
    assert_eq!(slo.rules[0].burn_rate, 14.4);
    let Sli::Ratio { good, bad, total } = &slo.sli else {
        panic!("a ratio SLI: {:?}", slo.sli);
    };
    assert_eq!(
        good.as_ref().map(ToString::to_string).as_deref(),
        Some(AVAILABILITY_GOOD)
    );
    assert!(bad.is_none());
    assert_eq!(total.to_string(), AVAILABILITY_TOTAL);
    let [invariant] = objectives.invariants.as_slice() else {
        panic!("one invariant: {:?}", objectives.invariants);
    };
    assert_eq!(invariant.name, "capacity_headroom");
    assert_eq!(invariant.condition, "available > 0.2");
    assert!(
        matches!(&invariant.on_violation, OnViolation::AutoRemediate { .. }),
        "{:?}",
        invariant.on_violation
    );
}

#[test]
fn another_slo_without_sli_is_refused_with_the_fix() {
    let text = SEED_OBJECTIVES.replace("name: availability", "name: checkout");
    let error = objectives::parse("seed.yaml", &text)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("seed.yaml: line 2: slos[0].sli: missing: "),
        "{error}"
    );
    // The fix, as an example to copy.
    assert!(error.contains("sli: {ratio: {good:"), "{error}");
    assert!(error.contains(AVAILABILITY_TOTAL), "{error}");
    // And the example it shows loads.
    let fixed = text.replace(
        "    burn_rate_alert: 14.4x   # 1h of budget in 5m\n",
        &format!(
            "    burn_rate_alert: 14.4x\n    sli: {{ratio: {{good: '{AVAILABILITY_GOOD}', total: {AVAILABILITY_TOTAL}}}}}\n"
        ),
    );
    objectives::parse("seed.yaml", &fixed).unwrap_or_else(|error| panic!("{error}\n{fixed}"));
}

#[test]
fn the_seed_ticket_is_refused_for_its_one_unmeasured_metric() {
    let objectives =
        objectives::parse("seed.yaml", SEED_OBJECTIVES).unwrap_or_else(|error| panic!("{error}"));
    let registry =
        MetricRegistry::for_objectives(&objectives).unwrap_or_else(|error| panic!("{error}"));
    let error = parse_ticket_yaml("ticket.yaml", SEED_TICKET, &registry)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(
            "ticket.yaml: line 7: ticket.acceptance_criteria[0].metric: unknown metric \"cold_start_p99\""
        ),
        "{error}"
    );
    // Everything else in it is accepted: without the unmeasured criterion
    // the ticket parses, constraint and all.
    let without = SEED_TICKET.replace(
        "    - metric: cold_start_p99\n      condition: \"< 500ms\"\n      duration: \"1h sustained\"\n",
        "",
    );
    let draft = parse_ticket_yaml("ticket.yaml", &without, &registry)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(draft.acceptance_criteria.len(), 1);
    assert_eq!(draft.constraints.len(), 1);
}
