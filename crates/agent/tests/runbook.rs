//! Runbooks: the shipped ones load and walk their main and failure paths,
//! every bad fixture fails with its exact file, step, field and line,
//! selection picks by source and fingerprint, and random outcome scripts
//! always end in a terminal command.

use floodgate_agent::runbook::{
    load_dir, load_file, select, Approval, Command, Outcome, ProposalStatus, ProposedAction, Query,
    Reduce, Runbook, TraceEvent, MAX_TRANSITIONS,
};
use floodgate_contract::actions::Risk;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runbooks")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/runbooks")
        .join(name)
}

fn shipped() -> Vec<Runbook> {
    load_dir(&shipped_dir()).unwrap_or_else(|error| panic!("{error}"))
}

fn shipped_one(name: &str) -> Runbook {
    shipped()
        .into_iter()
        .find(|runbook| runbook.name() == name)
        .unwrap_or_else(|| panic!("no shipped runbook {name}"))
}

/// The capacity runbook's growth series for a ticket naming no instance.
const NO_GROWTH: &str = "floodgate_store_keys{instance=\"\"}";

fn ticket(source: &str, fingerprint: &str) -> Value {
    json!({
        "id": "INF-0001",
        "source": source,
        "fingerprint": fingerprint,
        "context": {},
    })
}

// ---- loading ----------------------------------------------------------------

/// The names and quotas of the limits a proposal's `add_limit` actions add.
fn added_limits(actions: &[ProposedAction]) -> Vec<(&Value, &Value)> {
    actions
        .iter()
        .map(|a| {
            (
                &a.params["rate_limit"]["name"],
                &a.params["rate_limit"]["requests_per_unit"],
            )
        })
        .collect()
}

#[test]
fn every_shipped_runbook_loads_and_validates() {
    let runbooks = shipped();
    let names: Vec<&str> = runbooks.iter().map(Runbook::name).collect();
    assert_eq!(
        names,
        vec![
            "abusive-tenant-surge",
            "backend-down",
            "bad-config",
            "capacity-headroom",
            "tenant-outgrew-limit"
        ]
    );
    for runbook in &runbooks {
        assert!(runbook.version() >= 1, "{}", runbook.name());
        assert!(!runbook.description().is_empty());
        assert!(runbook.file().ends_with(".yaml"));
    }
}

#[test]
fn the_list_form_loads_with_every_field() {
    let runbook = load_file(&fixture("good_list_form.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(runbook.name(), "good-list-form");
    assert_eq!(runbook.version(), 3);
    assert_eq!(runbook.start_step(), "look");
    assert_eq!(runbook.steps().len(), 6);
    assert_eq!(runbook.vars()["floor"], json!(10));
    assert_eq!(runbook.timeout_ms(), 3_600_000);
}

/// (fixture, line, step, field, words of the message)
const BAD: &[(&str, usize, Option<&str>, &str, &str)] = &[
    ("bad_duration.yaml", 11, Some("first"), "wait", "\"5 minutes\" is not a duration"),
    ("bad_fingerprint.yaml", 6, None, "match.fingerprint", "is not a valid pattern"),
    ("bad_params.yaml", 16, Some("first"), "propose[0].params.requests_per_unit", "set_limit refuses it: \"lots\" is not of types"),
    ("bad_source.yaml", 5, None, "match.source[0]", "unknown variant pager"),
    ("bad_when.yaml", 12, Some("first"), "branch[0].when", "is not a valid CEL expression"),
    ("cycle.yaml", 14, Some("first"), "next", "a cycle without a wait or a series/state observation: first → again → first"),
    ("high_risk_unapproved.yaml", 20, Some("roll"), "propose", "rollback_config is high risk in the action catalog: every path to this step must pass an approval step"),
    ("missing_default.yaml", 10, Some("first"), "default", "a branch step needs default"),
    ("risk_mismatch.yaml", 19, Some("roll"), "risk", "declares medium but rollback_config is high risk in the action catalog"),
    ("terminal_with_next.yaml", 15, Some("end"), "next", "a done step ends the run and takes no other field"),
    ("two_kinds.yaml", 12, Some("first"), "escalate", "a step is one kind: it has both wait and escalate"),
    ("unknown_action.yaml", 12, Some("first"), "propose[0].action", "\"raise_limit\" is not an action of the catalog"),
    ("unknown_field.yaml", 14, Some("first"), "", "unknown field \"nxt\" (expected one of name, observe"),
    ("unknown_label.yaml", 12, Some("first"), "observe.series", "floodgate_requests_total has no label \"tenant\" (its labels: api, code)"),
    ("unknown_metric.yaml", 12, Some("first"), "observe.series", "\"floodgate_requests_per_second\" is not a metric of the catalog"),
    ("unknown_next.yaml", 14, Some("first"), "next", "\"nowhere\" is not a step of this runbook"),
    ("unknown_param.yaml", 13, Some("first"), "propose[0].params", "'polcy' was unexpected"),
    ("unknown_top_field.yaml", 7, None, "match", "unknown field \"labels\" (expected source or fingerprint)"),
    ("unknown_var.yaml", 17, Some("check"), "branch[0].when", "reads vars.limit, which no observe step stores"),
    ("unreachable.yaml", 15, Some("orphan"), "name", "unreachable: no path from start (first) leads here"),
];

#[test]
fn every_bad_fixture_names_file_step_field_and_line() {
    for (name, line, step, field, words) in BAD {
        let path = fixture(name);
        let error = match load_file(&path) {
            Ok(_) => panic!("{name} loaded"),
            Err(error) => error,
        };
        assert_eq!(error.file, path.display().to_string(), "{name}");
        assert_eq!(error.line, Some(*line), "{name}: {error}");
        assert_eq!(error.step.as_deref(), *step, "{name}: {error}");
        assert_eq!(error.field, *field, "{name}: {error}");
        assert!(error.message.contains(words), "{name}: {error}");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("{}: line {line}: ", path.display())),
            "{text}"
        );
        if let Some(step) = step {
            let named = match field {
                &"" => format!("step {step}: "),
                field => format!("step {step}: {field}: "),
            };
            assert!(text.contains(&named), "{text}");
        }
    }
}

#[test]
fn every_bad_fixture_is_listed() {
    let dir = fixture("");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("good_"))
        .collect();
    names.sort();
    let listed: Vec<&str> = BAD.iter().map(|(name, ..)| *name).collect();
    assert_eq!(names, listed);
}

#[test]
fn syntax_errors_and_missing_files_are_errors() {
    let error = Runbook::parse("x.yaml", "name: [unclosed\n").unwrap_err();
    assert_eq!(error.file, "x.yaml");
    assert!(error.line.is_some(), "{error}");
    let error = load_file(Path::new("/nonexistent/runbook.yaml")).unwrap_err();
    assert!(error.message.starts_with("cannot read"), "{error}");
    let error = Runbook::parse("x.yaml", "").unwrap_err();
    assert_eq!(error.file, "x.yaml");
}

#[test]
fn two_runbooks_with_one_name_are_refused() {
    let dir = std::env::temp_dir().join(format!("floodgate-runbook-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(fixture("good_list_form.yaml")).unwrap();
    std::fs::write(dir.join("a.yaml"), &text).unwrap();
    std::fs::write(dir.join("b.yaml"), &text).unwrap();
    let error = load_dir(&dir).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(error.field, "name");
    assert!(error.file.ends_with("b.yaml"), "{error}");
    assert!(error.message.contains("is also the name of"), "{error}");
}

// ---- selection ----------------------------------------------------------------

#[test]
fn selection_picks_by_source_and_fingerprint() {
    let runbooks = shipped();
    let cases = [
        (
            "anomaly",
            "anomaly:admitted_rate",
            Some("abusive-tenant-surge"),
        ),
        (
            "slo",
            "slo:limiting_correctness",
            Some("tenant-outgrew-limit"),
        ),
        (
            "invariant",
            "invariant:capacity_headroom",
            Some("capacity-headroom"),
        ),
        (
            "invariant",
            "invariant:store_below_capacity",
            Some("capacity-headroom"),
        ),
        ("invariant", "invariant:store_healthy", Some("backend-down")),
        // per-service invariants name the service after the invariant
        (
            "invariant",
            "invariant:store_healthy:svc-b",
            Some("backend-down"),
        ),
        ("invariant", "invariant:store_healthyish", None),
        ("human", "config:bad-rollout", Some("bad-config")),
        // unknown fingerprints, wrong sources, partial matches: no runbook
        ("invariant", "invariant:something_new", None),
        ("slo", "slo:latency", None),
        ("human", "invariant:store_healthy", None),
        ("slo", "anomaly:admitted_rate", None),
        ("anomaly", "anomaly:admitted_rate_2", None),
        ("human", "config:", None),
        ("reflection", "invariant:store_healthy", None),
    ];
    for (source, fingerprint, expected) in cases {
        let chosen = select(&runbooks, &ticket(source, fingerprint)).map(Runbook::name);
        assert_eq!(chosen, expected, "{source} {fingerprint}");
    }
    assert!(select(
        &runbooks,
        &json!({"fingerprint": "invariant:store_healthy"})
    )
    .is_none());
    assert!(select(&runbooks, &json!(null)).is_none());
}

#[test]
fn selection_prefers_the_most_specific_runbook() {
    let text = |name: &str, sources: &str, fingerprint: &str| {
        format!(
            "name: {name}\nversion: 1\ndescription: d\nmatch:\n  source: {sources}\n  fingerprint: '{fingerprint}'\ntimeout: 1h\nstart: end\nsteps:\n  end:\n    done: ok\n"
        )
    };
    let runbooks: Vec<Runbook> = [
        text("any-invariant", "[invariant, slo]", "(invariant|slo):.*"),
        text("store", "[invariant]", "invariant:store_.*"),
        text("store-healthy", "[invariant]", "invariant:store_healthy"),
    ]
    .iter()
    .map(|t| Runbook::parse("inline.yaml", t).unwrap_or_else(|e| panic!("{e}")))
    .collect();
    let pick =
        |fingerprint| select(&runbooks, &ticket("invariant", fingerprint)).map(Runbook::name);
    assert_eq!(pick("invariant:store_healthy"), Some("store-healthy"));
    assert_eq!(pick("invariant:store_below_capacity"), Some("store"));
    assert_eq!(pick("invariant:capacity_headroom"), Some("any-invariant"));
    // order of the list does not matter
    let reversed: Vec<Runbook> = runbooks.iter().rev().cloned().collect();
    assert_eq!(
        select(&reversed, &ticket("invariant", "invariant:store_healthy")).map(Runbook::name),
        Some("store-healthy")
    );
}

// ---- a small world the runs act on --------------------------------------------

/// A change the world makes to the state document.
type Change = Box<dyn FnOnce(&mut Value)>;

/// The service and harness as the agent sees them: a state document,
/// series values, the pipeline's verdicts and a human's answers. Successful
/// proposals change the state as the service would.
struct World {
    now: u64,
    state: Value,
    /// (selector, values answered in turn; the last repeats)
    series: Vec<(String, VecDeque<Value>)>,
    verdicts: VecDeque<ProposalStatus>,
    answers: VecDeque<Approval>,
    /// Changes applied to the state at each wait (the world moving on).
    on_wait: VecDeque<Change>,
    proposed: Vec<(Vec<ProposedAction>, Risk)>,
    asked: Vec<String>,
    observed: Vec<Query>,
    /// The harness's evidence document (`GET /v1/evidence`).
    evidence: Value,
    /// Evidence documents that replace it at each wait, in turn (the
    /// world moving on).
    evidence_on_wait: VecDeque<Value>,
    /// The store's health history as the service would keep it: when each
    /// change of `state.store.healthy` was seen (the evidence's
    /// `/instances` derives from it when `evidence` has none).
    transitions: Vec<(u64, bool)>,
}

impl World {
    fn new(state: Value) -> World {
        World {
            now: 1_000_000,
            state,
            series: Vec::new(),
            verdicts: VecDeque::new(),
            answers: VecDeque::new(),
            on_wait: VecDeque::new(),
            proposed: Vec::new(),
            asked: Vec::new(),
            observed: Vec::new(),
            evidence: Value::Null,
            evidence_on_wait: VecDeque::new(),
            transitions: Vec::new(),
        }
    }

    /// Notes a change of the store's health at the present time.
    fn note_health(&mut self) {
        let healthy = self.state["store"]["healthy"] == json!(true);
        let last = self.transitions.last().map(|(_, healthy)| *healthy);
        if last != Some(healthy) && !(last.is_none() && healthy) {
            self.transitions.push((self.now, healthy));
        }
    }

    /// The evidence's `/instances` of one instance, from the state and its
    /// health history (`store_steady_ms`, `store_outages_last_hour`).
    fn instances(&self) -> Value {
        let store = &self.state["store"];
        let steady = self
            .transitions
            .last()
            .map_or(self.now, |(at, _)| self.now - at);
        let outages = self
            .transitions
            .iter()
            .filter(|(at, healthy)| !healthy && self.now - at <= 3_600_000)
            .count();
        json!({"instances": [{
            "service": "svc-a",
            "store_backend": store["backend"],
            "store_healthy": store["healthy"],
            "store_failure_policy": store["failure_policy"],
            "store_steady_ms": steady,
            "store_outages_last_hour": outages,
        }]})
    }

    fn evidence(mut self, evidence: Value) -> World {
        self.evidence = evidence;
        self
    }

    fn evidence_after_wait(mut self, evidence: Value) -> World {
        self.evidence_on_wait.push_back(evidence);
        self
    }

    fn series(mut self, selector: &str, values: &[Value]) -> World {
        self.series
            .push((selector.to_owned(), values.iter().cloned().collect()));
        self
    }

    fn verdicts(mut self, verdicts: &[ProposalStatus]) -> World {
        self.verdicts = verdicts.iter().copied().collect();
        self
    }

    fn answers(mut self, answers: &[Approval]) -> World {
        self.answers = answers.iter().copied().collect();
        self
    }

    fn on_wait(mut self, change: impl FnOnce(&mut Value) + 'static) -> World {
        self.on_wait.push_back(Box::new(change));
        self
    }

    fn apply(&mut self, action: &ProposedAction) {
        let params = &action.params;
        match action.action.as_str() {
            "set_failure_policy" => {
                self.state["store"]["failure_policy"] = params["policy"].clone()
            }
            "set_store_capacity" => self.state["store"]["capacity"] = params["max_keys"].clone(),
            "rollback_config" => {
                let version = self.state["config"]["version"].as_u64().unwrap();
                self.state["config"]["version"] = json!(version + 1);
            }
            "set_limit" => {
                for limit in self.state["limits"].as_array_mut().unwrap() {
                    if limit["name"] == params["limit"] {
                        limit["requests_per_unit"] = params["requests_per_unit"].clone();
                    }
                }
            }
            _ => {}
        }
    }

    /// Runs `runbook` over `ticket` to its end; answers the terminal command.
    fn run(
        &mut self,
        runbook: &Runbook,
        ticket: &Value,
    ) -> (Command, floodgate_agent::runbook::Run) {
        let mut run = runbook.start(ticket, self.now);
        self.note_health();
        let mut outcome = None;
        // Enough for a six-hour run that looks four times a minute.
        for _ in 0..5000 {
            let command = run.next(outcome.take(), self.now);
            match &command {
                Command::Escalate { .. } | Command::Done { .. } => return (command, run),
                Command::Observe { query } => {
                    self.observed.push(query.clone());
                    outcome = Some(Outcome::Value(match query {
                        Query::State { .. } => query.resolve_state(&self.state),
                        Query::Evidence { .. } if self.evidence.is_null() => {
                            self.note_health();
                            query.resolve_state(&self.instances())
                        }
                        Query::Evidence { .. } => query.resolve_state(&self.evidence),
                        Query::Series { selector, .. } => {
                            let (_, values) = self
                                .series
                                .iter_mut()
                                .find(|(s, _)| s == selector)
                                .unwrap_or_else(|| panic!("no series {selector}"));
                            if values.len() > 1 {
                                values.pop_front().unwrap()
                            } else {
                                values.front().cloned().unwrap_or(Value::Null)
                            }
                        }
                    }));
                }
                Command::Propose { actions, risk, .. } => {
                    self.proposed.push((actions.clone(), *risk));
                    let verdict = self
                        .verdicts
                        .pop_front()
                        .expect("a verdict for each proposal");
                    if verdict == ProposalStatus::Succeeded {
                        for action in actions {
                            self.apply(action);
                        }
                    }
                    self.now += 60_000;
                    outcome = Some(Outcome::Proposal(verdict));
                }
                Command::AskApproval { question, .. } => {
                    self.asked.push(question.clone());
                    outcome = Some(Outcome::Approval(
                        self.answers
                            .pop_front()
                            .expect("an answer for each question"),
                    ));
                }
                Command::Wait { until_ms } => {
                    assert!(*until_ms > self.now);
                    self.now = *until_ms;
                    if let Some(change) = self.on_wait.pop_front() {
                        change(&mut self.state);
                        self.note_health();
                    }
                    if let Some(evidence) = self.evidence_on_wait.pop_front() {
                        self.evidence = evidence;
                    }
                }
            }
        }
        panic!("the run did not end");
    }
}

fn state() -> Value {
    json!({
        "version": "0.1.0",
        "config": {"version": 7, "hash": "sha256:00", "domains": ["api"]},
        "store": {
            "backend": "memory", "healthy": true, "keys": 900, "capacity": 1000,
            "used_ratio": 0.9, "evictions": {"expired": 0, "lru": 0},
            "failure_policy": "fail_open"
        },
        "limits": [
            {"domain": "api", "name": "tenant_per_second", "requests_per_unit": 100,
             "hottest": [{"key": "api|tenant=acme#tenant_per_second", "used": 140},
                         {"key": "api|tenant=zen#tenant_per_second", "used": 3}]},
            {"domain": "api", "name": "tenant_per_day", "requests_per_unit": 1000000,
             "hottest": [{"key": "api|tenant=acme#tenant_per_day", "used": 999000}]}
        ]
    })
}

fn summary(command: &Command) -> &str {
    match command {
        Command::Done { summary } => summary,
        Command::Escalate { reason } => reason,
        other => panic!("not terminal: {other:?}"),
    }
}

// ---- the shipped runbooks, main and failure paths -------------------------------

const ADMITTED: &str = "floodgate_requests_total{code=\"ok\"}";

/// A limit of the evidence document at `descriptors[node]`.
fn ev_limit(name: &str, unit: &str, quota: u64, node: usize) -> Value {
    let unit_seconds = match unit {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        _ => 86400,
    };
    json!({"domain": "api", "name": name, "node": format!("descriptors[{node}]"),
           "unit": unit, "unit_seconds": unit_seconds, "requests_per_unit": quota,
           "quota_per_second": quota as f64 / unit_seconds as f64,
           "algorithm": "fixed_window", "shadow": false, "values": []})
}

/// A value of the evidence document, of limit `limit` at `descriptors[node]`.
fn ev_value(tenant: &str, limit: &str, quota: u64, node: usize, own: bool) -> Value {
    json!({"domain": "api", "limit": limit, "value": format!("tenant={tenant}"),
           "entries": [{"key": "tenant", "value": tenant}],
           "node": format!("descriptors[{node}]"), "unit": "minute",
           "requests_per_unit": quota, "algorithm": "fixed_window",
           "key_requests_per_unit": 600, "own_limit": own,
           "hits_per_second": 0.0, "over_per_second": 0.0, "admitted_per_second": 0.0,
           "demand_ratio": 0.0, "needed_ratio": 0.0, "share": 0.0})
}

/// An evidence document: two limits at the key-only node `descriptors[0]`
/// and `rejected` / `heaviest` as given.
fn evidence(rejected: Vec<Value>, heaviest: Value, extra_limits: Vec<Value>) -> Value {
    let mut limits = vec![
        ev_limit("per_min", "minute", 600, 0),
        ev_limit("per_day", "day", 100000, 0),
    ];
    limits.extend(extra_limits);
    json!({"limits": limits, "rejected": rejected, "heaviest": heaviest})
}

fn rejected(tenant: &str, limit: &str, quota: u64, node: usize, own: bool, needed: f64) -> Value {
    let mut value = ev_value(tenant, limit, quota, node, own);
    value["over_per_second"] = json!(4.0);
    value["needed_ratio"] = json!(needed);
    value
}

fn heaviest(tenant: &str, admitted: f64, node: usize, own: bool) -> Value {
    let mut value = ev_value(tenant, "per_min", 600, node, own);
    value["hits_per_second"] = json!(admitted);
    value["admitted_per_second"] = json!(admitted);
    value
}

/// An anomaly ticket whose criterion's frozen reference is `before`/s,
/// its anomaly declaring a capacity of 120/s.
fn anomaly_ticket(before: f64) -> Value {
    anomaly_ticket_with(before, Some(120.0))
}

fn anomaly_ticket_with(before: f64, capacity: Option<f64>) -> Value {
    let mut ticket = ticket("anomaly", "anomaly:admitted_rate");
    ticket["acceptance_criteria"] = json!([{"metric": "admitted_rate",
        "reference": {"median": before, "scale": 1.0, "direction": "both"}}]);
    if let Some(capacity) = capacity {
        ticket["context"]["capacity"] = json!(capacity);
    }
    ticket
}

#[test]
fn abusive_tenant_surge_throttles_the_heaviest_value_alone_with_copies_of_its_keys_limits() {
    let runbook = shipped_one("abusive-tenant-surge");
    // The admitted rate rose from 100/s to 150/s; acme sends 80/s of it.
    let mut world = World::new(state())
        .series(ADMITTED, &[json!(150.0), json!(152.0)])
        .evidence(evidence(vec![], heaviest("acme", 80.0, 0, false), vec![]))
        .verdicts(&[ProposalStatus::Succeeded]);
    let (end, _) = world.run(&runbook, &anomaly_ticket(100.0));
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    let (actions, risk) = &world.proposed[0];
    assert_eq!(*risk, Risk::Medium);
    // 80 - 1.2 x 50 = 20/s: 1,200 a minute, bursts of 200.
    let throttle = json!({
        "domain": "api",
        "path": [{"key": "tenant", "value": "acme"}],
        "rate_limit": {"name": "throttle@tenant=acme", "unit": "minute",
                       "algorithm": "token_bucket", "requests_per_unit": 1200, "burst": 200}
    });
    let copy = |name: &str, unit: &str, quota: u64| ProposedAction {
        action: "add_limit".into(),
        params: json!({
            "domain": "api",
            "path": [{"key": "tenant", "value": "acme"}],
            "rate_limit": {"name": format!("{name}@tenant=acme"), "unit": unit,
                           "requests_per_unit": quota}
        }),
    };
    assert_eq!(
        actions,
        &vec![
            copy("per_min", "minute", 600),
            copy("per_day", "day", 100000),
            ProposedAction {
                action: "add_limit".into(),
                params: throttle,
            },
        ]
    );
    assert!(world.observed.contains(&Query::Series {
        selector: ADMITTED.into(),
        window_ms: 60_000,
        reduce: Reduce::Rate
    }));
    // A value with a node of its own gets the throttle alone.
    let mut world = World::new(state())
        .series(ADMITTED, &[json!(150.0), json!(152.0)])
        .evidence(evidence(vec![], heaviest("acme", 80.0, 1, true), vec![]))
        .verdicts(&[ProposalStatus::Succeeded]);
    world.run(&runbook, &anomaly_ticket(100.0));
    assert_eq!(world.proposed[0].0.len(), 1);
    assert_eq!(
        world.proposed[0].0[0].params["rate_limit"]["name"],
        "throttle@tenant=acme"
    );
    // Already throttled: the throttle tightens; never below 5% of the rate.
    let mut world = World::new(state())
        .series(ADMITTED, &[json!(180.0), json!(178.0)])
        .evidence(evidence(
            vec![],
            heaviest("acme", 80.0, 1, true),
            vec![ev_limit("throttle@tenant=acme", "minute", 1200, 1)],
        ))
        .verdicts(&[ProposalStatus::Succeeded]);
    world.run(&runbook, &anomaly_ticket(100.0));
    assert_eq!(
        world.proposed[0].0,
        vec![ProposedAction {
            action: "set_limit".into(),
            params: json!({"domain": "api", "limit": "throttle@tenant=acme",
                           "requests_per_unit": 240, "burst": 40}),
        }]
    );
}

#[test]
fn abusive_tenant_surge_leaves_broad_rises_and_drops_to_others() {
    let runbook = shipped_one("abusive-tenant-surge");
    // acme explains 20 of a 50/s rise: broad, nothing proposed.
    let mut world = World::new(state())
        .series(ADMITTED, &[json!(150.0), json!(152.0)])
        .evidence(evidence(vec![], heaviest("acme", 20.0, 0, false), vec![]));
    let (end, _) = world.run(&runbook, &anomaly_ticket(100.0));
    assert!(
        summary(&end).contains("no single value explains half"),
        "{end:?}"
    );
    assert!(world.proposed.is_empty());
    // The heaviest value is over its own quota, but what the quota admits
    // breaks the capacity: throttled all the same (ADR 0022), sized from
    // what it has admitted as a whole (80/s of hits less the 4/s per_min
    // rejects: 76 - 1.2 x 50 = 16/s, 960 a minute).
    let mut world = World::new(state())
        .series(ADMITTED, &[json!(150.0), json!(152.0)])
        .evidence(evidence(
            vec![rejected("acme", "per_min", 600, 0, false, 1.5)],
            heaviest("acme", 80.0, 0, false),
            vec![],
        ))
        .verdicts(&[ProposalStatus::Succeeded]);
    let (end, _) = world.run(&runbook, &anomaly_ticket(100.0));
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    let throttle = world.proposed[0]
        .0
        .iter()
        .find(|a| a.params["rate_limit"]["name"] == "throttle@tenant=acme")
        .expect("a throttle");
    assert_eq!(throttle.params["rate_limit"]["requests_per_unit"], 960);
    // A rise of less than a quarter: not treated as a surge.
    let mut world = World::new(state())
        .series(ADMITTED, &[json!(120.0)])
        .evidence(evidence(vec![], heaviest("acme", 80.0, 0, false), vec![]));
    let (end, _) = world.run(&runbook, &anomaly_ticket(100.0));
    assert!(summary(&end).contains("not a surge"), "{end:?}");
    assert!(world.proposed.is_empty());
    // The admitted rate fell: not a surge.
    let mut world = World::new(state())
        .series(ADMITTED, &[json!(40.0)])
        .evidence(evidence(vec![], heaviest("acme", 20.0, 0, false), vec![]));
    let (end, _) = world.run(&runbook, &anomaly_ticket(100.0));
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    assert!(summary(&end).contains("not a surge"), "{end:?}");
    assert!(world.proposed.is_empty());
    // The pipeline rolls the throttle back.
    let mut world = World::new(state())
        .series(ADMITTED, &[json!(150.0), json!(152.0)])
        .evidence(evidence(vec![], heaviest("acme", 80.0, 0, false), vec![]))
        .verdicts(&[ProposalStatus::RolledBack]);
    let (end, run) = world.run(&runbook, &anomaly_ticket(100.0));
    assert!(
        summary(&end).starts_with("The pipeline did not accept or verify the throttle"),
        "{end:?}"
    );
    assert!(run.trace().iter().any(|entry| entry.step == "throttle_new"
        && matches!(&entry.event, TraceEvent::Failed { reason } if reason == "the proposal ended rolled_back")));
}

#[test]
fn abusive_tenant_surge_throttles_only_past_the_declared_capacity() {
    let runbook = shipped_one("abusive-tenant-surge");
    // Doubled, but within the capacity of 250/s: a minute to let the
    // window fill, then watched ten times (one a minute), then left be
    // without a change.
    let mut world = World::new(state())
        .series(ADMITTED, &[json!(200.0)])
        .evidence(evidence(vec![], heaviest("acme", 110.0, 0, false), vec![]));
    let start = world.now;
    let (end, _) = world.run(&runbook, &anomaly_ticket_with(100.0, Some(250.0)));
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    assert!(
        summary(&end).contains("within the declared capacity of 250/s"),
        "{end:?}"
    );
    assert!(world.proposed.is_empty());
    assert_eq!(world.now - start, 11 * 60_000, "ten looks a minute apart");
    // Still climbing when first looked at: under the capacity, then past
    // it; the throttle follows.
    let mut world = World::new(state())
        .series(
            ADMITTED,
            &[json!(130.0), json!(180.0), json!(260.0), json!(262.0)],
        )
        .evidence(evidence(vec![], heaviest("acme", 180.0, 0, false), vec![]))
        .verdicts(&[ProposalStatus::Succeeded]);
    let (end, _) = world.run(&runbook, &anomaly_ticket_with(100.0, Some(250.0)));
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    assert_eq!(world.proposed.len(), 1);
    let throttle = world.proposed[0]
        .0
        .iter()
        .find(|a| a.params["rate_limit"]["name"] == "throttle@tenant=acme")
        .expect("a throttle");
    // Back to 80% of the capacity (200/s, above the 100/s before), not to
    // the level before: at 260/s acme gives up 1.2 x (260 - 200) = 72 of
    // its 180/s, keeping 108/s (6,480 a minute): a cut to 100/s would
    // hold it far under its own usual rate once the surge is over.
    let quota = throttle.params["rate_limit"]["requests_per_unit"]
        .as_u64()
        .expect("a quota");
    assert!((6480..=6481).contains(&quota), "{quota}");
    // No capacity declared: a rise cannot be told from abuse; a human
    // decides, nothing is throttled.
    let mut world = World::new(state())
        .series(ADMITTED, &[json!(150.0), json!(152.0)])
        .evidence(evidence(vec![], heaviest("acme", 80.0, 0, false), vec![]));
    let (end, _) = world.run(&runbook, &anomaly_ticket_with(100.0, None));
    assert!(matches!(end, Command::Escalate { .. }), "{end:?}");
    assert!(summary(&end).contains("declares no capacity"), "{end:?}");
    assert!(world.proposed.is_empty());
}

#[test]
fn tenant_outgrew_limit_raises_the_one_value_from_its_need() {
    let runbook = shipped_one("tenant-outgrew-limit");
    let slo = ticket("slo", "slo:limiting_correctness");
    // acme needs 1.5x per_min: an override of its own, per_min at
    // 600 x 1.5 x 1.25 = 1125, per_day copied as it is.
    let mut world = World::new(state())
        .evidence(evidence(
            vec![rejected("acme", "per_min", 600, 0, false, 1.5)],
            Value::Null,
            vec![],
        ))
        .verdicts(&[ProposalStatus::Succeeded]);
    let (end, _) = world.run(&runbook, &slo);
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    assert!(world.asked.is_empty());
    let names_and_quotas = added_limits(&world.proposed[0].0);
    assert_eq!(
        names_and_quotas,
        vec![
            (&json!("per_min@tenant=acme"), &json!(1125)),
            (&json!("per_day@tenant=acme"), &json!(100000)),
        ]
    );
    assert!(world.proposed[0].0.iter().all(|a| a.action == "add_limit"
        && a.params["path"] == json!([{"key": "tenant", "value": "acme"}])));
    // Its own limit, needing 3x (3750 with headroom): no change more than
    // x2, so an interim stage to 2000, then the last to 3750; nobody asked.
    let mut world = World::new(state())
        .evidence(evidence(
            vec![rejected("acme", "per_min@tenant=acme", 1000, 1, true, 3.0)],
            Value::Null,
            vec![],
        ))
        .verdicts(&[ProposalStatus::Succeeded, ProposalStatus::Succeeded]);
    let (end, run) = world.run(&runbook, &slo);
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    assert!(world.asked.is_empty());
    let set = |quota: u64| {
        vec![ProposedAction {
            action: "set_limit".into(),
            params: json!({"domain": "api", "limit": "per_min@tenant=acme",
                           "requests_per_unit": quota}),
        }]
    };
    let proposed: Vec<&Vec<ProposedAction>> = world.proposed.iter().map(|(a, _)| a).collect();
    assert_eq!(proposed, vec![&set(2000), &set(3750)]);
    let steps: Vec<&str> = run
        .trace()
        .iter()
        .filter(|entry| {
            matches!(
                &entry.event,
                TraceEvent::Issued {
                    command: Command::Propose { .. }
                }
            )
        })
        .map(|entry| entry.step.as_str())
        .collect();
    assert_eq!(steps, vec!["stage_raise", "last_stage"]);
    // No own limit, needing 5x (600 -> 3750): an override at 1200 first
    // (copies of the key's limits), then 2400, then 3750 on the override.
    let mut world = World::new(state())
        .evidence(evidence(
            vec![rejected("acme", "per_min", 600, 0, false, 5.0)],
            Value::Null,
            vec![],
        ))
        .verdicts(&[ProposalStatus::Succeeded; 3]);
    let (end, _) = world.run(&runbook, &slo);
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    assert_eq!(world.proposed.len(), 3);
    assert_eq!(
        world.proposed[0].0[0].params["rate_limit"],
        json!({"name": "per_min@tenant=acme", "unit": "minute", "requests_per_unit": 1200})
    );
    let quotas: Vec<&Value> = world.proposed[1..]
        .iter()
        .map(|(actions, _)| &actions[0].params["requests_per_unit"])
        .collect();
    assert_eq!(quotas, vec![&json!(2400), &json!(3750)]);
    assert!(world.proposed[1..]
        .iter()
        .all(|(actions, _)| actions[0].params["limit"] == "per_min@tenant=acme"));
    // A change that does not end the rejections (rolled back by the
    // pipeline's verification) is sized again from the evidence, at most
    // three times.
    let mut world = World::new(state())
        .evidence(evidence(
            vec![rejected("acme", "per_min", 600, 0, false, 1.5)],
            Value::Null,
            vec![],
        ))
        .verdicts(&[ProposalStatus::RolledBack, ProposalStatus::Succeeded]);
    let (end, run) = world.run(&runbook, &slo);
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    assert_eq!(world.proposed.len(), 2);
    // Between the rolled-back change and the next reading of the evidence,
    // a pause for the services' top values to refill (right after a config
    // change they are empty: "nothing rejected" would be a wrong reading).
    let order: Vec<(&str, &str)> = run
        .trace()
        .iter()
        .filter_map(|entry| match &entry.event {
            TraceEvent::Issued {
                command: Command::Wait { .. },
            } => Some((entry.step.as_str(), "wait")),
            TraceEvent::Issued {
                command:
                    Command::Observe {
                        query: Query::Evidence { .. },
                    },
            } => Some((entry.step.as_str(), "evidence")),
            TraceEvent::Issued {
                command: Command::Propose { .. },
            } => Some((entry.step.as_str(), "propose")),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ("evidence", "evidence"),
            ("override", "propose"),
            ("settle", "wait"),
            ("evidence", "evidence"),
            ("override", "propose"),
        ]
    );
    // A small need still gets at least x1.5: a tenant that outgrew a
    // limit is usually still growing.
    let mut world = World::new(state())
        .evidence(evidence(
            vec![rejected("acme", "per_min", 600, 0, false, 1.05)],
            Value::Null,
            vec![],
        ))
        .verdicts(&[ProposalStatus::Succeeded]);
    world.run(&runbook, &slo);
    assert_eq!(
        world.proposed[0].0[0].params["rate_limit"]["requests_per_unit"],
        json!(900)
    );
    let mut world = World::new(state())
        .evidence(evidence(
            vec![rejected("acme", "per_min", 600, 0, false, 1.5)],
            Value::Null,
            vec![],
        ))
        .verdicts(&[ProposalStatus::RolledBack; 3]);
    let (end, _) = world.run(&runbook, &slo);
    assert!(
        summary(&end).starts_with("3 changes (raises or rollbacks) did not end the burn"),
        "{end:?}"
    );
    assert_eq!(world.proposed.len(), 3);
}

#[test]
fn tenant_outgrew_limit_counts_its_cap_from_a_human_given_own_quota() {
    let runbook = shipped_one("tenant-outgrew-limit");
    let slo = ticket("slo", "slo:limiting_correctness");
    // An enterprise tenant a human gave 6000 a minute of its own, ten
    // times the key's 600, needing 1.3x that: its own quota is the base,
    // so the raise is in reach (6000 x 1.3 x 1.25 = 9750), in place.
    let mut world = World::new(state())
        .evidence(evidence(
            vec![rejected("acme", "per_min_enterprise", 6000, 1, true, 1.3)],
            Value::Null,
            vec![ev_limit("per_min_enterprise", "minute", 6000, 1)],
        ))
        .verdicts(&[ProposalStatus::Succeeded]);
    let (end, _) = world.run(&runbook, &slo);
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    assert_eq!(
        world.proposed,
        vec![(
            vec![ProposedAction {
                action: "set_limit".into(),
                params: json!({"domain": "api", "limit": "per_min_enterprise",
                               "requests_per_unit": 9750}),
            }],
            Risk::Medium
        )]
    );
    // The runbook's own override (`<limit>@<value>`) at the same 6000 is
    // not a base: counted from the key's 600, 1.3x of it is 13x, past
    // the x8 cap, and a human decides.
    let mut world = World::new(state()).evidence(evidence(
        vec![rejected("acme", "per_min@tenant=acme", 6000, 1, true, 1.3)],
        Value::Null,
        vec![],
    ));
    let (end, _) = world.run(&runbook, &slo);
    assert!(
        summary(&end).contains("its base quota of 600 per minute"),
        "{end:?}"
    );
    assert!(world.proposed.is_empty());
}

#[test]
fn tenant_outgrew_limit_raises_every_limit_that_rejects_the_value_and_sizes_for_its_growth() {
    let runbook = shipped_one("tenant-outgrew-limit");
    let slo = ticket("slo", "slo:limiting_correctness");
    // acme is rejected by per_min (1.5x) and per_day (1.2x): one override,
    // each limit by its own need (per_day: at least x1.5).
    let mut per_min = rejected("acme", "per_min", 600, 0, false, 1.5);
    per_min["hits_per_second"] = json!(15.0);
    let mut per_day = rejected("acme", "per_day", 100000, 0, false, 1.2);
    per_day["over_per_second"] = json!(1.0);
    let mut world = World::new(state()).evidence(evidence(
        vec![per_min.clone(), per_day],
        Value::Null,
        vec![],
    ));
    // The change did not hold: acme grew from 15/s to 22.5/s meanwhile,
    // needing 2.25x now; the next change is sized for as much growth
    // again (x1.5): 600 x 2.25 x 1.25 x 1.5 = 2532, in stages of x2.
    let mut grown = per_min.clone();
    grown["hits_per_second"] = json!(22.5);
    grown["needed_ratio"] = json!(2.25);
    world = world
        .evidence_after_wait(evidence(vec![grown], Value::Null, vec![]))
        .verdicts(&[
            ProposalStatus::RolledBack,
            ProposalStatus::Succeeded,
            ProposalStatus::Succeeded,
            ProposalStatus::Succeeded,
        ]);
    let (end, _) = world.run(&runbook, &slo);
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    let first = added_limits(&world.proposed[0].0);
    assert_eq!(
        first,
        vec![
            (&json!("per_min@tenant=acme"), &json!(1125)),
            (&json!("per_day@tenant=acme"), &json!(150000)),
        ]
    );
    assert_eq!(
        world.proposed[1].0[0].params["rate_limit"],
        json!({"name": "per_min@tenant=acme", "unit": "minute", "requests_per_unit": 1200})
    );
    assert_eq!(
        world.proposed[2].0[0].params,
        json!({"domain": "api", "limit": "per_min@tenant=acme", "requests_per_unit": 2400})
    );
    assert_eq!(
        world.proposed[3].0[0].params,
        json!({"domain": "api", "limit": "per_min@tenant=acme", "requests_per_unit": 2532})
    );
}

/// A limit that does not reject the value yet but would at its rate (the
/// minute limit holds it back; the hour limit is next) is raised with the
/// change, sized to that rate over its unit; a day limit the rate would
/// not pass within the hour, and a shadow limit, are copied as they are.
#[test]
fn tenant_outgrew_limit_raises_the_limits_its_rate_would_pass_next() {
    let runbook = shipped_one("tenant-outgrew-limit");
    let slo = ticket("slo", "slo:limiting_correctness");
    // 15/s with 25% headroom is 18.75/s: 67,500 an hour, past per_hour's
    // 20,000 (raised by at most x2: 40,000), not past per_day's 100,000
    // within the hour.
    let mut per_min = rejected("acme", "per_min", 600, 0, false, 1.5);
    per_min["hits_per_second"] = json!(15.0);
    let mut shadow = ev_limit("per_hour_shadow", "hour", 1000, 0);
    shadow["shadow"] = json!(true);
    let mut world = World::new(state())
        .evidence(evidence(
            vec![per_min],
            Value::Null,
            vec![ev_limit("per_hour", "hour", 20000, 0), shadow],
        ))
        .verdicts(&[ProposalStatus::Succeeded]);
    let (end, run) = world.run(&runbook, &slo);
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    assert_eq!(
        added_limits(&world.proposed[0].0),
        vec![
            (&json!("per_min@tenant=acme"), &json!(1125)),
            (&json!("per_day@tenant=acme"), &json!(100000)),
            (&json!("per_hour@tenant=acme"), &json!(40000)),
            (&json!("per_hour_shadow@tenant=acme"), &json!(1000)),
        ]
    );
    let rationale = run
        .trace()
        .iter()
        .find_map(|entry| match &entry.event {
            TraceEvent::Issued {
                command: Command::Propose { rationale, .. },
            } => Some(rationale.clone()),
            _ => None,
        })
        .expect("a proposal");
    assert!(
        rationale
            .contains("Its rate would pass 1 more of its limits next (per_hour first, to 40000)"),
        "{rationale}"
    );
    // Its own limits: the hour one is raised in place beside the minute
    // one (its need is 67,500 an hour: at most x2, 24,000).
    let mut own = rejected("acme", "per_min_own", 1000, 1, true, 1.2);
    own["hits_per_second"] = json!(15.0);
    let mut world = World::new(state())
        .evidence(evidence(
            vec![own],
            Value::Null,
            vec![
                ev_limit("per_min_own", "minute", 1000, 1),
                ev_limit("per_hour_own", "hour", 12000, 1),
            ],
        ))
        .verdicts(&[ProposalStatus::Succeeded]);
    let (end, _) = world.run(&runbook, &slo);
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    let set: Vec<(&Value, &Value)> = world.proposed[0]
        .0
        .iter()
        .map(|a| (&a.params["limit"], &a.params["requests_per_unit"]))
        .collect();
    assert_eq!(
        set,
        vec![
            (&json!("per_min_own"), &json!(1500)),
            (&json!("per_hour_own"), &json!(24000)),
        ]
    );
}

#[test]
fn tenant_outgrew_limit_rolls_back_a_config_pushed_just_before_the_burn() {
    let runbook = shipped_one("tenant-outgrew-limit");
    let mut slo = ticket("slo", "slo:limiting_correctness");
    slo["context"]["since_ms"] = json!(10_000_000);
    let with_changes = |actor: &str, via: &str, time_ms: u64| {
        let mut ev = evidence(
            vec![rejected("acme", "per_min", 600, 0, false, 1.5)],
            Value::Null,
            vec![],
        );
        ev["config_changes"] = json!([
            {"version": 5, "hash": "h5", "time_ms": time_ms, "actor": actor,
             "reason": "tightening limits", "via": via},
            {"version": 4, "hash": "h4", "time_ms": 1_000, "actor": "startup",
             "reason": "", "via": "startup"},
        ]);
        ev
    };
    // Pushed by a human 10 minutes before the burn: version 4 comes back,
    // after a human's approval.
    let mut world = World::new(state())
        .evidence(with_changes("human:ops", "apply_config", 9_400_000))
        .answers(&[Approval::Approved])
        .verdicts(&[ProposalStatus::Succeeded]);
    let (end, _) = world.run(&runbook, &slo);
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    assert_eq!(world.asked.len(), 1);
    assert!(
        world.asked[0].contains("Put version 4 back?"),
        "{}",
        world.asked[0]
    );
    assert_eq!(
        world.proposed[0],
        (
            vec![ProposedAction {
                action: "rollback_config".into(),
                params: json!({"to_version": 4}),
            }],
            Risk::High
        )
    );
    // The harness's own change, or a push long before: no rollback; the
    // value's limit is raised.
    for (actor, via, time_ms) in [
        ("agent:runbook-1", "add_limit", 9_400_000),
        ("human:ops", "apply_config", 1_000_000),
    ] {
        let mut world = World::new(state())
            .evidence(with_changes(actor, via, time_ms))
            .verdicts(&[ProposalStatus::Succeeded]);
        world.run(&runbook, &slo);
        assert!(world.asked.is_empty(), "{actor} {via}");
        assert_eq!(world.proposed[0].0[0].action, "add_limit", "{actor} {via}");
    }
}

#[test]
fn tenant_outgrew_limit_escalates_past_the_cap_and_ignores_throttles() {
    let runbook = shipped_one("tenant-outgrew-limit");
    let slo = ticket("slo", "slo:limiting_correctness");
    // 1000 x 6 = 6000 a minute is 10x the key's 600: past x8, before any
    // change.
    let mut world = World::new(state()).evidence(evidence(
        vec![rejected("acme", "per_min@tenant=acme", 1000, 1, true, 6.0)],
        Value::Null,
        vec![],
    ));
    let (end, _) = world.run(&runbook, &slo);
    assert!(summary(&end).contains("more than the x8"), "{end:?}");
    assert!(world.proposed.is_empty() && world.asked.is_empty());
    // Only a throttle rejects: nothing to raise.
    let mut world = World::new(state()).evidence(evidence(
        vec![rejected("acme", "throttle@tenant=acme", 100, 1, true, 9.0)],
        Value::Null,
        vec![],
    ));
    let (end, _) = world.run(&runbook, &slo);
    assert!(summary(&end).starts_with("No limit rejects"), "{end:?}");
    assert!(world.proposed.is_empty());
    // A value throttled on purpose, rejected by a copy of its key's limit:
    // not a tenant that outgrew it; nothing to raise.
    let mut throttle = ev_limit("throttle@tenant=acme", "minute", 100, 1);
    throttle["node"] = json!("descriptors[1]");
    let mut world = World::new(state()).evidence(evidence(
        vec![rejected("acme", "per_min@tenant=acme", 600, 1, true, 3.0)],
        Value::Null,
        vec![throttle],
    ));
    let (end, _) = world.run(&runbook, &slo);
    assert!(summary(&end).starts_with("No limit rejects"), "{end:?}");
    assert!(world.proposed.is_empty());
}

#[test]
fn tenant_outgrew_limit_resolves_a_burn_the_fallback_ended_and_waits_out_a_closed_backend() {
    let runbook = shipped_one("tenant-outgrew-limit");
    let slo = ticket("slo", "slo:limiting_correctness");
    let mut down = state();
    down["store"]["backend"] = json!("redis");
    down["store"]["healthy"] = json!(false);
    // Deciding with local_fallback and nothing but a throttle rejects: the
    // burn was the outage's; resolved, nothing changed.
    down["store"]["failure_policy"] = json!("local_fallback");
    let throttled = evidence(
        vec![rejected(
            "runaway",
            "throttle@tenant=runaway",
            100,
            1,
            true,
            9.0,
        )],
        Value::Null,
        vec![],
    );
    let mut world = World::new(down.clone()).evidence(throttled.clone());
    let (end, _) = world.run(&runbook, &slo);
    assert!(
        summary(&end).starts_with("The counter backend is unhealthy and the service decides with local_fallback; no limit rejects"),
        "{end:?}"
    );
    assert!(world.proposed.is_empty());
    // A limit still rejects under the fallback (its quota scaled to the
    // instance's share): no raise while the backend is down; it waits.
    let mut world = World::new(down.clone()).evidence(evidence(
        vec![rejected("acme", "per_min", 600, 0, false, 1.5)],
        Value::Null,
        vec![],
    ));
    let (end, _) = world.run(&runbook, &slo);
    assert!(summary(&end).contains("timed out"), "{end:?}");
    assert!(world.proposed.is_empty());
    // Failing closed, every rejection is the policy's: it waits, whatever
    // the evidence says.
    down["store"]["failure_policy"] = json!("fail_closed");
    let mut world = World::new(down.clone()).evidence(throttled.clone());
    let (end, _) = world.run(&runbook, &slo);
    assert!(summary(&end).contains("timed out"), "{end:?}");
    assert!(world.proposed.is_empty());
    // The backend comes back and, once the top values have turned over,
    // a limit still rejects a tenant: an outgrown tenant met an outage;
    // it is raised now, not left for another ticket.
    let outgrown = evidence(
        vec![rejected("acme", "per_min", 600, 0, false, 1.5)],
        Value::Null,
        vec![],
    );
    let mut world = World::new(down.clone())
        .evidence(throttled.clone())
        .on_wait(|state| state["store"]["healthy"] = json!(true))
        .evidence_after_wait(outgrown)
        .verdicts(&[ProposalStatus::Succeeded]);
    let (end, run) = world.run(&runbook, &slo);
    assert!(matches!(end, Command::Done { .. }), "{end:?}");
    assert_eq!(world.proposed.len(), 1);
    let settled = run
        .trace()
        .iter()
        .any(|entry| entry.step == "backend_settle" && matches!(entry.event, TraceEvent::Entered));
    assert!(settled, "it waits for the top values to turn over");
    // Back, and nothing rejects: the outage's burn; nothing changed.
    let mut world = World::new(down)
        .evidence(throttled)
        .on_wait(|state| state["store"]["healthy"] = json!(true));
    let (end, _) = world.run(&runbook, &slo);
    assert!(
        summary(&end).starts_with("The counter backend was unhealthy when this ticket came"),
        "{end:?}"
    );
    assert!(world.proposed.is_empty());
}

#[test]
fn a_runbook_naming_a_limit_or_tenant_is_refused() {
    let text = |params: &str, vars: &str| {
        format!(
            "name: n\nversion: 1\ndescription: d\nmatch: {{source: [slo], fingerprint: \"slo:x\"}}\ntimeout: 1h\nvars:\n  tenant: acme\n{vars}start: look\nsteps:\n  look:\n    observe: {{evidence: /rejected/0}}\n    into: v\n    next: act\n  act:\n    propose:\n      - action: set_limit\n        params: {params}\n    risk: medium\n    rationale: r\n    on_success: end\n  end:\n    resolve: ok\n"
        )
    };
    // Names from the evidence load.
    Runbook::parse(
        "ok.yaml",
        &text(
            "{domain: \"{{ vars.v.domain }}\", limit: \"{{ vars.v.limit }}\", requests_per_unit: 5}",
            "",
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for (params, field, says) in [
        (
            "{domain: api, limit: \"{{ vars.v.limit }}\", requests_per_unit: 5}",
            "propose[0].params.domain",
            "a literal name (\"api\")",
        ),
        (
            "{domain: \"{{ vars.v.domain }}\", limit: tenant_per_day, requests_per_unit: 5}",
            "propose[0].params.limit",
            "a literal name",
        ),
        (
            "{domain: \"{{ vars.v.domain }}\", limit: \"${tenant}_per_day\", requests_per_unit: 5}",
            "propose[0].params.limit",
            "from constants alone",
        ),
        (
            "{domain: \"{{ vars.v.domain }}\", limit: \"{{ 'per_day' }}\", requests_per_unit: 5}",
            "propose[0].params.limit",
            "from constants alone",
        ),
    ] {
        let error = Runbook::parse("named.yaml", &text(params, "")).expect_err(params);
        assert_eq!(error.field, field, "{error}");
        assert!(error.message.contains(says), "{error}");
        assert_eq!(error.step.as_deref(), Some("act"), "{error}");
        assert!(error.line.is_some(), "{error}");
    }
}
#[test]
fn capacity_headroom_doubles_capacity_and_verifies() {
    let runbook = shipped_one("capacity-headroom");
    let mut world = World::new(state())
        .series(NO_GROWTH, &[Value::Null])
        .verdicts(&[ProposalStatus::Succeeded])
        .on_wait(|state| state["store"]["used_ratio"] = json!(0.45));
    let (end, _) = world.run(
        &runbook,
        &ticket("invariant", "invariant:capacity_headroom"),
    );
    assert_eq!(
        summary(&end),
        "Store capacity raised to 2000; used ratio now 0.45."
    );
    assert_eq!(world.proposed[0].0[0].params, json!({"max_keys": 2000}));
    assert!(world.asked.is_empty());
    // A raise that did not bring the headroom back (rolled back by the
    // pipeline): the next is x4 the capacity first found, then x8.
    let mut world = World::new(state())
        .series(NO_GROWTH, &[Value::Null])
        .verdicts(&[ProposalStatus::RolledBack, ProposalStatus::Succeeded])
        .on_wait(|_| {})
        .on_wait(|state| state["store"]["used_ratio"] = json!(0.3));
    let (end, _) = world.run(
        &runbook,
        &ticket("invariant", "invariant:capacity_headroom"),
    );
    let raises: Vec<&Value> = world
        .proposed
        .iter()
        .map(|(actions, _)| &actions[0].params["max_keys"])
        .collect();
    assert_eq!(raises, vec![&json!(2000), &json!(4000)]);
    assert_eq!(
        summary(&end),
        "Store capacity raised to 4000; used ratio now 0.3."
    );
    // past the soft ceiling a human approves each raise; three that the
    // pipeline fails, and a human decides
    let mut big = state();
    big["store"]["capacity"] = json!(8_000_000);
    big["store"]["keys"] = json!(7_900_000);
    let mut world = World::new(big)
        .series(NO_GROWTH, &[Value::Null])
        .verdicts(&[
            ProposalStatus::Failed,
            ProposalStatus::Failed,
            ProposalStatus::Failed,
        ])
        .answers(&[Approval::Approved, Approval::Approved, Approval::Approved]);
    let (end, _) = world.run(
        &runbook,
        &ticket("invariant", "invariant:store_below_capacity"),
    );
    assert_eq!(world.asked.len(), 3);
    let raises: Vec<&Value> = world
        .proposed
        .iter()
        .map(|(actions, _)| &actions[0].params["max_keys"])
        .collect();
    assert_eq!(
        raises,
        vec![&json!(16_000_000), &json!(32_000_000), &json!(64_000_000)]
    );
    assert!(summary(&end).starts_with("The pipeline did not accept the capacity raise"));
    // capacity raised but the store keeps filling
    let mut world = World::new(state())
        .series(NO_GROWTH, &[Value::Null])
        .verdicts(&[ProposalStatus::Succeeded]);
    let (end, _) = world.run(
        &runbook,
        &ticket("invariant", "invariant:capacity_headroom"),
    );
    assert!(summary(&end).starts_with("Capacity raised to 2000 but the used ratio is still 0.9"));
}

#[test]
fn capacity_headroom_sizes_a_raise_for_the_measured_growth() {
    let runbook = shipped_one("capacity-headroom");
    let mut on_b = ticket("invariant", "invariant:capacity_headroom:svc-b");
    on_b["context"]["instance"] = json!("svc-b");
    let keys_of_b = "floodgate_store_keys{instance=\"svc-b\"}";
    // 900 keys growing 0.05 a second: six hours more is 1,980 keys, held
    // at 80% by 2,476 (more than x2 the 1,000 found).
    let mut world = World::new(state())
        .series(keys_of_b, &[json!(0.05)])
        .verdicts(&[ProposalStatus::Succeeded])
        .on_wait(|state| state["store"]["used_ratio"] = json!(0.4));
    let (end, _) = world.run(&runbook, &on_b);
    assert_eq!(world.proposed[0].0[0].params, json!({"max_keys": 2476}));
    assert_eq!(
        summary(&end),
        "Store capacity raised to 2476; used ratio now 0.4."
    );
    // Growth past what x8 holds is capped at x8.
    let mut world = World::new(state())
        .series(keys_of_b, &[json!(5.0)])
        .verdicts(&[ProposalStatus::Succeeded])
        .on_wait(|state| state["store"]["used_ratio"] = json!(0.4));
    world.run(&runbook, &on_b);
    assert_eq!(world.proposed[0].0[0].params, json!({"max_keys": 8000}));
    // A full store hides its growth: the raise doubles, whatever the
    // slope of a store that could not grow says.
    let mut full = state();
    full["store"]["keys"] = json!(1000);
    full["store"]["used_ratio"] = json!(1.0);
    let mut world = World::new(full)
        .series(keys_of_b, &[json!(0.05)])
        .verdicts(&[ProposalStatus::Succeeded])
        .on_wait(|state| state["store"]["used_ratio"] = json!(0.5));
    world.run(&runbook, &on_b);
    assert_eq!(world.proposed[0].0[0].params, json!({"max_keys": 2000}));
    // A shrinking store: no growth to hold, the raise doubles.
    let mut world = World::new(state())
        .series(keys_of_b, &[json!(-0.2)])
        .verdicts(&[ProposalStatus::Succeeded])
        .on_wait(|state| state["store"]["used_ratio"] = json!(0.45));
    world.run(&runbook, &on_b);
    assert_eq!(world.proposed[0].0[0].params, json!({"max_keys": 2000}));
}

#[test]
fn backend_down_falls_back_then_restores_the_previous_policy() {
    let runbook = shipped_one("backend-down");
    let mut down = state();
    down["store"]["backend"] = json!("redis");
    down["store"]["healthy"] = json!(false);
    let mut world = World::new(down.clone())
        .verdicts(&[ProposalStatus::Succeeded, ProposalStatus::Succeeded])
        .on_wait(|_| {})
        .on_wait(|_| {})
        .on_wait(|state| state["store"]["healthy"] = json!(true));
    let (end, run) = world.run(&runbook, &ticket("invariant", "invariant:store_healthy"));
    let policies: Vec<&Value> = world
        .proposed
        .iter()
        .map(|(actions, _)| &actions[0].params["policy"])
        .collect();
    assert_eq!(
        policies,
        vec![&json!("local_fallback"), &json!("fail_open")]
    );
    assert_eq!(
        summary(&end),
        "The backend is back and held; failure policy fail_open restored."
    );
    let watches = run
        .trace()
        .iter()
        .filter(|entry| entry.step == "watch" && matches!(entry.event, TraceEvent::Entered))
        .count();
    // Healthy at the third watch, restored once it has held for the
    // runbook's hold_ms (10 minutes, a watch a minute): ten watches later.
    assert_eq!(watches, 13);
    // a backend that goes down again while it is held: it flaps; the
    // fallback stays and a human decides
    let mut world = World::new(down.clone())
        .verdicts(&[ProposalStatus::Succeeded])
        .on_wait(|state| state["store"]["healthy"] = json!(true))
        .on_wait(|_| {})
        .on_wait(|state| state["store"]["healthy"] = json!(false))
        .on_wait(|state| state["store"]["healthy"] = json!(true));
    let (end, _) = world.run(&runbook, &ticket("invariant", "invariant:store_healthy"));
    assert!(
        summary(&end).starts_with("The redis backend went down 2 times within the hour: it flaps. Failure policy local_fallback stays in place"),
        "{end:?}"
    );
    assert_eq!(world.proposed.len(), 1, "only the fallback");
    assert_eq!(world.state["store"]["failure_policy"], "local_fallback");
    // the fallback is refused: escalate, nothing restored
    let mut world = World::new(down.clone()).verdicts(&[ProposalStatus::Rejected]);
    let (end, _) = world.run(&runbook, &ticket("invariant", "invariant:store_healthy"));
    assert!(summary(&end).starts_with("The pipeline did not accept failure policy local_fallback"));
    assert_eq!(world.proposed.len(), 1);
    // the backend never comes back: the run's timeout escalates
    let mut world = World::new(down).verdicts(&[ProposalStatus::Succeeded]);
    let (end, _) = world.run(&runbook, &ticket("invariant", "invariant:store_healthy"));
    assert!(
        summary(&end).starts_with("runbook backend-down timed out after 21600000 ms"),
        "{end:?}"
    );
}

/// A backend that times out and comes back, again and again, while one
/// value asks `lead` times any other (4/s): the evidence the backend-down
/// runbook reads after its settling minute.
fn hot_evidence(lead: f64, outages: u32) -> Value {
    hot_evidence_of(lead, outages, "counter store timed out after 50ms")
}

fn hot_evidence_of(lead: f64, outages: u32, detail: &str) -> Value {
    let mut hot = ev_value("runaway", "per_min", 600, 0, false);
    hot["hits_per_second"] = json!(4.0 * lead);
    json!({
        "limits": [ev_limit("per_min", "minute", 600, 0), ev_limit("per_sec", "second", 30, 0),
                   ev_limit("per_day", "day", 100000, 0)],
        "rejected": [], "hottest": hot, "hottest_lead": lead,
        "instances": [{"service": "svc-a", "store_backend": "redis", "store_healthy": false,
                       "store_failure_policy": "fail_closed", "store_steady_ms": 5000,
                       "store_outages_last_hour": outages,
                       "store_transitions": [{"time_ms": 1, "healthy": false, "detail": detail}]}]
    })
}

#[test]
fn backend_down_throttles_a_hot_key_that_keeps_the_backend_timing_out() {
    let runbook = shipped_one("backend-down");
    let mut down = state();
    down["store"]["backend"] = json!("redis");
    down["store"]["healthy"] = json!(false);
    down["store"]["transitions"] =
        json!([{"time_ms": 1, "healthy": false, "detail": "counter store timed out after 50ms"}]);
    let ticket = ticket("invariant", "invariant:store_healthy");
    // runaway asks 40/s, ten times the next value (4/s): the fallback and
    // a throttle in one change, after a minute for the top values to fill.
    let mut world = World::new(down.clone())
        .evidence(hot_evidence(10.0, 3))
        .verdicts(&[ProposalStatus::Succeeded]);
    let (end, run) = world.run(&runbook, &ticket);
    let settled = run
        .trace()
        .iter()
        .any(|entry| entry.step == "settle" && matches!(entry.event, TraceEvent::Entered));
    assert!(settled, "timeouts: it waits for the traffic to show");
    let (actions, risk) = &world.proposed[0];
    assert_eq!(*risk, Risk::Medium);
    assert_eq!(actions[0].action, "set_failure_policy");
    assert_eq!(actions[0].params, json!({"policy": "local_fallback"}));
    // Its own node, with a copy of each limit its key applies now …
    let copies: Vec<&str> = actions[1..4]
        .iter()
        .map(|a| a.params["rate_limit"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        copies,
        [
            "per_min@tenant=runaway",
            "per_sec@tenant=runaway",
            "per_day@tenant=runaway"
        ]
    );
    // … and the throttle: 2 x 4/s = 480 a minute, but under 0.8 of its
    // tightest limit per minute (per_day: 100,000 a day, 69.4 a minute):
    // 56, so that no limit of its own ever rejects what the throttle
    // admits; bursts of at most 0.8 of the smallest quota (per_sec's 30).
    assert_eq!(
        actions[4].params,
        json!({"domain": "api", "path": [{"key": "tenant", "value": "runaway"}],
               "rate_limit": {"name": "throttle@tenant=runaway", "unit": "minute",
                              "algorithm": "token_bucket", "requests_per_unit": 56, "burst": 24}})
    );
    assert_eq!(actions.len(), 5);
    // The backend keeps flapping with the throttle in place: the runbook
    // does not throttle twice; it escalates with the fallback left on.
    assert!(
        summary(&end).contains("it flaps. Failure policy local_fallback stays in place"),
        "{end:?}"
    );
    assert_eq!(world.proposed.len(), 1);

    // A value with limits of its own: no copies, the throttle beside them.
    let mut own = hot_evidence(10.0, 3);
    own["hottest"]["own_limit"] = json!(true);
    let mut world = World::new(down.clone())
        .evidence(own.clone())
        .verdicts(&[ProposalStatus::Succeeded]);
    world.run(&runbook, &ticket);
    let names: Vec<&str> = world.proposed[0]
        .0
        .iter()
        .map(|a| a.action.as_str())
        .collect();
    assert_eq!(names, ["set_failure_policy", "add_limit"]);
    // The pipeline refuses it: a human decides, told it was the throttle.
    let mut world = World::new(down.clone())
        .evidence(own)
        .verdicts(&[ProposalStatus::Rejected]);
    let (end, _) = world.run(&runbook, &ticket);
    assert!(
        summary(&end)
            .starts_with("The pipeline did not accept or verify the throttle for tenant=runaway"),
        "{end:?}"
    );

    // A lead under 2: not one key's doing; the fallback alone.
    let mut world = World::new(down.clone())
        .evidence(hot_evidence(1.5, 3))
        .verdicts(&[ProposalStatus::Succeeded]);
    world.run(&runbook, &ticket);
    assert_eq!(world.proposed[0].0.len(), 1);
    assert_eq!(world.proposed[0].0[0].action, "set_failure_policy");
    // A backend that went down once and stays down (slow for everyone,
    // its probes failing too): no throttle on a guess.
    let mut world = World::new(down.clone())
        .evidence(hot_evidence(10.0, 1))
        .verdicts(&[ProposalStatus::Succeeded]);
    world.run(&runbook, &ticket);
    assert_eq!(world.proposed[0].0.len(), 1);
    // Refused connections: down, not saturated; the fallback at once.
    let refusal = "counter store unavailable: connection refused";
    let mut refused = down;
    refused["store"]["transitions"] = json!([{"time_ms": 1, "healthy": false, "detail": refusal}]);
    let mut world = World::new(refused)
        .evidence(hot_evidence_of(10.0, 3, refusal))
        .verdicts(&[ProposalStatus::Succeeded]);
    let (_, run) = world.run(&runbook, &ticket);
    assert_eq!(world.proposed[0].0.len(), 1);
    assert!(!run.trace().iter().any(|entry| entry.step == "settle"));
}

#[test]
fn bad_config_rolls_back_after_approval() {
    let runbook = shipped_one("bad-config");
    let mut bad = ticket("human", "config:bad-rollout");
    bad["context"] = json!({"config_version": 7});
    let mut world = World::new(state())
        .answers(&[Approval::Approved])
        .verdicts(&[ProposalStatus::Succeeded]);
    let (end, _) = world.run(&runbook, &bad);
    assert_eq!(
        world.asked,
        vec!["Roll the config back from version 7 to 6?".to_owned()]
    );
    assert_eq!(world.proposed[0].0[0].action, "rollback_config");
    assert_eq!(world.proposed[0].0[0].params, json!({"to_version": 6}));
    assert_eq!(world.proposed[0].1, Risk::High);
    assert_eq!(
        summary(&end),
        "Rolled back: version 6's config is current again as version 8."
    );
    // declined: nothing proposed
    let mut world = World::new(state()).answers(&[Approval::Rejected]);
    let (end, _) = world.run(&runbook, &bad);
    assert!(summary(&end).starts_with("A human declined the rollback"));
    assert!(world.proposed.is_empty());
    // the service moved on since the bad version: no blind rollback
    bad["context"] = json!({"config_version": 5});
    let mut world = World::new(state());
    let (end, _) = world.run(&runbook, &bad);
    assert!(summary(&end).starts_with("The ticket names version 5 but version 7 is current"));
    assert!(world.asked.is_empty());
}

// ---- engine behaviour -------------------------------------------------------------

fn good() -> Runbook {
    load_file(&fixture("good_list_form.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_pending_command_is_repeated_and_terminal_commands_stay() {
    let runbook = good();
    let ticket = ticket("invariant", "invariant:x");
    let mut run = runbook.start(&ticket, 0);
    let first = run.next(None, 0);
    assert_eq!(
        first,
        Command::Observe {
            query: Query::State {
                pointer: "/store/keys".into()
            }
        }
    );
    assert_eq!(run.next(None, 10), first);
    let ask = run.next(Some(Outcome::Value(json!(50))), 20);
    assert!(
        matches!(&ask, Command::AskApproval { question, deadline_ms: None, .. }
        if question == "Evict the counters of api/tenant_per_day (50 keys)?"),
        "{ask:?}"
    );
    let propose = run.next(Some(Outcome::Approval(Approval::Approved)), 30);
    assert!(
        matches!(&propose, Command::Propose { rationale, risk: Risk::High, .. } if rationale == "too many keys: 50")
    );
    let end = run.next(Some(Outcome::Proposal(ProposalStatus::Succeeded)), 40);
    assert_eq!(
        end,
        Command::Done {
            summary: "ok".into()
        }
    );
    assert_eq!(run.next(None, 50), end);
    assert_eq!(run.next(Some(Outcome::Error("late".into())), 60), end);
    assert_eq!(run.finished(), Some(&end));
    // the trace tells the whole story
    let events: Vec<(&str, &str)> = run
        .trace()
        .iter()
        .map(|entry| {
            (
                entry.step.as_str(),
                match &entry.event {
                    TraceEvent::Entered => "entered",
                    TraceEvent::Issued { .. } => "issued",
                    TraceEvent::Received { .. } => "received",
                    TraceEvent::Stored { .. } => "stored",
                    TraceEvent::Branched { .. } => "branched",
                    TraceEvent::Ignored { .. } => "ignored",
                    TraceEvent::Failed { .. } => "failed",
                    TraceEvent::Finished { .. } => "finished",
                },
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("look", "entered"),
            ("look", "issued"),
            ("look", "received"),
            ("look", "stored"),
            ("decide", "entered"),
            ("decide", "branched"),
            ("ask", "entered"),
            ("ask", "issued"),
            ("ask", "received"),
            ("evict", "entered"),
            ("evict", "issued"),
            ("evict", "received"),
            ("fine", "entered"),
            ("fine", "finished"),
        ]
    );
    let json = serde_json::to_value(run.trace()).unwrap();
    assert_eq!(
        json[3],
        json!({"at_ms": 20, "step": "look", "event": "stored", "var": "keys", "value": 50})
    );
}

#[test]
fn errors_and_wrong_outcomes_fail_the_step() {
    let runbook = good();
    let ticket = ticket("invariant", "invariant:x");
    // no on_failure: a failure escalates, naming the step
    let mut run = runbook.start(&ticket, 0);
    run.next(None, 0);
    let end = run.next(Some(Outcome::Error("state unavailable".into())), 1);
    assert_eq!(
        end,
        Command::Escalate {
            reason: "step look failed: state unavailable".into()
        }
    );
    let mut run = runbook.start(&ticket, 0);
    run.next(None, 0);
    let end = run.next(Some(Outcome::Approval(Approval::Approved)), 1);
    assert_eq!(
        end,
        Command::Escalate {
            reason: "step look failed: a observe step cannot take an approval answer".into()
        }
    );
    // a value the branch cannot compare
    let mut run = runbook.start(&ticket, 0);
    run.next(None, 0);
    let end = run.next(Some(Outcome::Value(json!("many"))), 1);
    assert!(
        matches!(&end, Command::Escalate { reason } if reason.starts_with("step decide failed: branch[0].when:")),
        "{end:?}"
    );
}

#[test]
fn step_and_run_timeouts() {
    let runbook = shipped_one("bad-config");
    let mut bad = ticket("human", "config:x");
    bad["context"] = json!({});
    let mut run = runbook.start(&bad, 0);
    assert_eq!(
        run.next(None, 0),
        Command::Observe {
            query: Query::State {
                pointer: "/config/version".into()
            }
        }
    );
    let ask = run.next(Some(Outcome::Value(json!(4))), 1000);
    assert!(
        matches!(
            ask,
            Command::AskApproval {
                deadline_ms: Some(1_801_000),
                ..
            }
        ),
        "{ask:?}"
    );
    assert_eq!(run.next(None, 1_800_999), ask);
    // the approval's timeout passes: on_failure (declined) escalates
    let end = run.next(None, 1_801_000);
    assert!(
        matches!(&end, Command::Escalate { reason } if reason.starts_with("A human declined")),
        "{end:?}"
    );
    assert!(run.trace().iter().any(|e| matches!(&e.event, TraceEvent::Failed { reason } if reason == "no answer within 1800000 ms")));
    // the run's own timeout
    let mut run = runbook.start(&bad, 0);
    run.next(None, 0);
    let end = run.next(None, 2 * 3_600_000);
    assert!(
        matches!(&end, Command::Escalate { reason } if reason == "runbook bad-config timed out after 7200000 ms in step current"),
        "{end:?}"
    );
}

#[test]
fn outcomes_while_waiting_are_ignored() {
    let runbook = shipped_one("backend-down");
    let mut down = state();
    down["store"]["backend"] = json!("redis");
    down["store"]["healthy"] = json!(false);
    down["store"]["failure_policy"] = json!("local_fallback");
    let mut run = runbook.start(&ticket("invariant", "invariant:store_healthy"), 0);
    run.next(None, 0);
    let wait = run.next(Some(Outcome::Value(down["store"].clone())), 0);
    assert_eq!(wait, Command::Wait { until_ms: 60_000 });
    assert_eq!(run.next(Some(Outcome::Value(json!(1))), 30_000), wait);
    assert_eq!(run.next(None, 59_999), wait);
    assert_eq!(
        run.next(None, 60_000),
        Command::Observe {
            query: Query::Evidence {
                pointer: "/instances".into()
            }
        }
    );
}

#[test]
fn reduce_and_resolve_state_helpers() {
    let samples = [(0, 10.0), (1000, 20.0), (2000, 5.0), (4000, 15.0)];
    assert_eq!(Reduce::Last.apply(&samples), Some(15.0));
    assert_eq!(Reduce::Max.apply(&samples), Some(20.0));
    assert_eq!(Reduce::Avg.apply(&samples), Some(12.5));
    // 10 → 20 (+10), reset → 5 (+5), 5 → 15 (+10): 25 over 4 s
    assert_eq!(Reduce::Rate.apply(&samples), Some(6.25));
    assert_eq!(Reduce::Rate.apply(&samples[..1]), None);
    assert_eq!(Reduce::Avg.apply(&[]), None);
    // A gauge growing 3 a second, with noise either side of the line: the
    // least-squares slope; one sample (or one instant) has none.
    let growing = [
        (0, 100.0),
        (10_000, 131.0),
        (20_000, 159.0),
        (30_000, 190.0),
    ];
    let slope = Reduce::Deriv.apply(&growing).unwrap();
    assert!((slope - 2.98).abs() < 1e-9, "{slope}");
    assert!(Reduce::Deriv.apply(&samples).unwrap() > 0.0);
    assert_eq!(Reduce::Deriv.apply(&growing[..1]), None);
    assert_eq!(Reduce::Deriv.apply(&[(5, 1.0), (5, 2.0)]), None);
    let query = Query::State {
        pointer: "/store/capacity".into(),
    };
    assert_eq!(query.resolve_state(&state()), json!(1000));
    let missing = Query::State {
        pointer: "/nope".into(),
    };
    assert_eq!(missing.resolve_state(&state()), Value::Null);
}

// ---- random outcome scripts ---------------------------------------------------------

fn outcome() -> impl Strategy<Value = Option<Outcome>> {
    prop_oneof![
        Just(None),
        Just(Some(Outcome::Value(Value::Null))),
        any::<i64>().prop_map(|n| Some(Outcome::Value(json!(n)))),
        any::<bool>().prop_map(|b| Some(Outcome::Value(json!(b)))),
        "[a-z_]{0,12}".prop_map(|s| Some(Outcome::Value(json!(s)))),
        Just(Some(Outcome::Value(state()["store"].clone()))),
        Just(Some(Outcome::Value(state()["limits"].clone()))),
        Just(Some(Outcome::Value(json!(0.95)))),
        prop_oneof![
            Just(ProposalStatus::Succeeded),
            Just(ProposalStatus::Failed),
            Just(ProposalStatus::RolledBack),
            Just(ProposalStatus::Rejected)
        ]
        .prop_map(|s| Some(Outcome::Proposal(s))),
        any::<bool>().prop_map(|a| Some(Outcome::Approval(if a {
            Approval::Approved
        } else {
            Approval::Rejected
        }))),
        "[ -~]{0,20}".prop_map(|e| Some(Outcome::Error(e))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever comes back, a run never panics and ends in a terminal
    /// command: each call moves the clock at least a minute, so the run's
    /// timeout (at most 6h: 360 calls) or MAX_TRANSITIONS ends it.
    #[test]
    fn random_outcome_scripts_always_end(
        which in 0usize..6,
        script in proptest::collection::vec((outcome(), 60_000u64..600_000), 1..64),
    ) {
        let mut runbooks = shipped();
        runbooks.push(good());
        let runbook = &runbooks[which];
        let mut bad = ticket("human", "config:x");
        bad["context"] = json!({"config_version": 7});
        let mut run = runbook.start(&bad, 0);
        let mut now = 0u64;
        let bound = 360 + MAX_TRANSITIONS as usize + 2;
        let mut ended = None;
        for call in 0..bound {
            let (outcome, step) = script[call % script.len()].clone();
            let command = run.next(outcome, now);
            if command.is_terminal() {
                ended = Some(command);
                break;
            }
            now += step;
        }
        let ended = ended.expect("a terminal command within the bound");
        prop_assert_eq!(run.next(None, now + 1), ended.clone());
        let finished = matches!(
            run.trace().last().map(|entry| &entry.event),
            Some(TraceEvent::Finished { .. })
        );
        prop_assert!(finished, "the trace ends with the terminal command");
    }
}

#[test]
fn an_evidence_observation_reads_the_merged_evidence_and_names_no_limit() {
    let runbook = Runbook::parse(
        "evidence.yaml",
        r#"
name: evidence-reader
version: 1
description: reads the evidence
match: {source: [slo], fingerprint: "slo:x"}
timeout: 1h
start: look
steps:
  look:
    observe: {evidence: /rejecting}
    into: rejecting
    next: judge
  judge:
    branch:
      - when: "vars.rejecting == null"
        next: quiet
    default: found
  quiet:
    resolve: "nothing rejects"
  found:
    escalate: "{{ vars.rejecting.values[0].value }} asks {{ vars.rejecting.values[0].demand_ratio }}x {{ vars.rejecting.name }}"
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let evidence = json!({"rejecting": {"name": "org_guard", "values": [
        {"value": "org=gamma", "demand_ratio": 4.0}]}});
    let mut world = World::new(state()).evidence(evidence);
    let (command, _) = world.run(&runbook, &ticket("slo", "slo:x"));
    assert_eq!(summary(&command), "org=gamma asks 4x org_guard");
    assert_eq!(
        world.observed,
        [Query::Evidence {
            pointer: "/rejecting".into()
        }]
    );
    let mut quiet = World::new(state()).evidence(json!({"rejecting": null}));
    let (command, _) = quiet.run(&runbook, &ticket("slo", "slo:x"));
    assert_eq!(summary(&command), "nothing rejects");
    // Exactly one source per observation.
    let both = Runbook::parse(
        "both.yaml",
        "name: b\nversion: 1\ndescription: d\nmatch: {source: [slo], fingerprint: \"slo:x\"}\ntimeout: 1h\nstart: a\nsteps:\n  a:\n    observe: {evidence: /rejecting, state: /limits}\n    into: x\n    next: b\n  b:\n    resolve: r\n",
    )
    .expect_err("two sources");
    assert!(both.to_string().contains("evidence"), "{both}");
}
