//! Invariants: CEL conditions over the current metrics and the service's
//! state, evaluated every tick.
//!
//! The context an expression sees:
//!
//! | variable | what |
//! |---|---|
//! | `state` | the service's `GET /v1/state` document (absent until observed) |
//! | `health` | its `GET /v1/health` document (absent until observed) |
//! | `metrics` | metric name → latest value, summed over series (counters as scraped) |
//! | `rate` | counter name → per-second rate over the last 5 minutes |
//! | `capacity` | `{keys, capacity, used_ratio, available_ratio}` of the counter store |
//! | `available` | `capacity.available_ratio` (the seed's `available > 20%`) |
//! | `slo` | SLO name → `{sli, budget_remaining, burn_rate_1h, burn_rate_5m}` (present fields only) |
//!
//! Every number in the context is a CEL `double` (JSON has one number
//! type): comparisons with integer literals work (`state.store.keys <
//! 1000`), arithmetic with a literal needs a decimal point (`2.0 *
//! state.store.keys`, not `2 * …`: CEL does not mix int and double in
//! arithmetic). A percentage literal (`20%`) is sugar for `0.2`. An expression that does not answer a boolean, or fails (a missing
//! key before the first state is observed), is reported as an error for
//! that tick: neither a breach nor a recovery.
//!
//! Per service: an invariant that names `state`, `health`, `capacity` or
//! `available` is evaluated once per observed service, with that
//! service's documents as `state` and `health` (`metrics`, `rate` and
//! `slo` are the harness-wide view either way). Each (invariant, service)
//! pair keeps its own hold state, so one service's breach neither hides
//! nor triggers another's; reports and breaches name the `instance`. An
//! invariant over metrics alone is evaluated once (instance `""`).
//!
//! A breach is `hold_ticks` consecutive false results; it produces one
//! violation when it starts (and a reminder every
//! [`InvariantConfig::renotify_ms`] while held), so a breach held for many
//! ticks files one ticket, and the ticket queue's fingerprint dedup absorbs
//! any repeat.

use crate::observe::condition::compile;
use crate::observe::objectives::{InvariantDef, OnViolation};
use cel::objects::{Key, Map};
use cel::{Context, Env, Program, Value};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The deepest JSON nesting converted into the CEL context; deeper values
/// are cut to null (service documents are 4 levels deep).
pub const MAX_JSON_DEPTH: usize = 16;

/// Converts JSON to a CEL value (bounded depth).
pub fn json_to_cel(value: &serde_json::Value) -> Value {
    json_to_cel_at(value, 0)
}

fn json_to_cel_at(value: &serde_json::Value, depth: usize) -> Value {
    if depth > MAX_JSON_DEPTH {
        return Value::Null;
    }
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(number) => Value::Float(number.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(items) => Value::List(Arc::new(
            items
                .iter()
                .map(|item| json_to_cel_at(item, depth + 1))
                .collect(),
        )),
        serde_json::Value::Object(object) => {
            let map: HashMap<Key, Value> = object
                .iter()
                .map(|(key, item)| (Key::from(key.clone()), json_to_cel_at(item, depth + 1)))
                .collect();
            Value::Map(Map::from(map))
        }
    }
}

fn number(value: f64) -> Value {
    Value::Float(value)
}

fn number_map(values: &BTreeMap<String, f64>) -> Value {
    let map: HashMap<Key, Value> = values
        .iter()
        .map(|(key, value)| (Key::from(key.clone()), number(*value)))
        .collect();
    Value::Map(Map::from(map))
}

/// The counter store's headroom, from the state document or, without one,
/// from the store gauges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Capacity {
    pub keys: f64,
    pub capacity: f64,
    pub used_ratio: f64,
    pub available_ratio: f64,
}

impl Capacity {
    pub fn from_inputs(
        state: Option<&serde_json::Value>,
        metrics: &BTreeMap<String, f64>,
    ) -> Option<Capacity> {
        let from_state = state.and_then(|state| {
            let store = state.get("store")?;
            Some((
                store.get("keys")?.as_f64()?,
                store.get("capacity")?.as_f64()?,
            ))
        });
        let from_metrics = || {
            Some((
                *metrics.get(floodgate_contract::metrics::STORE_KEYS.name)?,
                *metrics.get(floodgate_contract::metrics::STORE_CAPACITY.name)?,
            ))
        };
        let (keys, capacity) = from_state.or_else(from_metrics)?;
        let used_ratio = if capacity > 0.0 {
            (keys / capacity).clamp(0.0, 1.0)
        } else {
            1.0
        };
        Some(Capacity {
            keys,
            capacity,
            used_ratio,
            available_ratio: 1.0 - used_ratio,
        })
    }
}

/// What the expressions of one tick see. Built by the harness from the
/// observation, the time-series store and the SLO reports.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub state: Option<serde_json::Value>,
    pub health: Option<serde_json::Value>,
    pub metrics: BTreeMap<String, f64>,
    pub rates: BTreeMap<String, f64>,
    pub slos: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Inputs {
    fn context(&self, env: &Arc<Env>) -> Context<'static, 'static> {
        let mut context = Context::with_env(Arc::clone(env));
        if let Some(state) = &self.state {
            context.add_variable_from_value("state", json_to_cel(state));
        }
        if let Some(health) = &self.health {
            context.add_variable_from_value("health", json_to_cel(health));
        }
        context.add_variable_from_value("metrics", number_map(&self.metrics));
        context.add_variable_from_value("rate", number_map(&self.rates));
        if let Some(capacity) = Capacity::from_inputs(self.state.as_ref(), &self.metrics) {
            let mut map = BTreeMap::new();
            map.insert("keys".to_owned(), capacity.keys);
            map.insert("capacity".to_owned(), capacity.capacity);
            map.insert("used_ratio".to_owned(), capacity.used_ratio);
            map.insert("available_ratio".to_owned(), capacity.available_ratio);
            context.add_variable_from_value("capacity", number_map(&map));
            context.add_variable_from_value("available", Value::Float(capacity.available_ratio));
        }
        let slos: HashMap<Key, Value> = self
            .slos
            .iter()
            .map(|(name, fields)| (Key::from(name.clone()), number_map(fields)))
            .collect();
        context.add_variable_from_value("slo", Value::Map(Map::from(slos)));
        context
    }
}

/// Evaluator settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvariantConfig {
    /// While a breach is held, repeat its violation this often (the queue
    /// absorbs it into the open ticket as an occurrence; after the ticket is
    /// resolved, the reopen policy applies).
    pub renotify_ms: u64,
}

impl Default for InvariantConfig {
    fn default() -> Self {
        InvariantConfig {
            renotify_ms: crate::quantity::HOUR_MS,
        }
    }
}

/// Where one invariant stands after a tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum InvariantState {
    Holds,
    /// Failing, but not yet for `hold_ticks` ticks.
    Failing {
        consecutive: u32,
    },
    Breached {
        since_ms: u64,
        ticks: u64,
    },
    /// The expression could not be evaluated this tick.
    Error {
        message: String,
    },
}

/// One invariant's report for a tick (one per service for invariants over
/// service state or health).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvariantReport {
    pub name: String,
    /// The service judged (empty: the harness-wide view).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub instance: String,
    pub condition: String,
    pub on_violation: OnViolation,
    pub state: InvariantState,
    /// The last definite result (true = holds).
    pub last_result: Option<bool>,
}

/// A breach to act on (a ticket or an event, per `on_violation`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breach {
    pub name: String,
    /// The service in breach (empty: the harness-wide view).
    pub instance: String,
    pub condition: String,
    pub description: String,
    pub on_violation: OnViolation,
    pub since_ms: u64,
    /// Whether this is a reminder of a breach already reported.
    pub reminder: bool,
    /// What the expression saw (capacity and the metrics it names).
    pub evidence: serde_json::Value,
}

/// Where one (invariant, service) pair stands.
#[derive(Debug, Clone, Default)]
struct Hold {
    consecutive: u32,
    breached_since: Option<u64>,
    breached_ticks: u64,
    last_notified_ms: u64,
    last_result: Option<bool>,
}

struct Compiled {
    def: InvariantDef,
    program: Program,
    /// Whether it names a service's documents (evaluated per service).
    per_service: bool,
    /// Hold state per instance (`""`: the harness-wide view).
    holds: BTreeMap<String, Hold>,
}

/// The variables that make an invariant per service.
pub const PER_SERVICE_VARIABLES: [&str; 4] = ["state", "health", "capacity", "available"];

/// Whether a compiled condition names a service's documents.
pub fn is_per_service(program: &Program) -> bool {
    let references = program.references();
    PER_SERVICE_VARIABLES
        .iter()
        .any(|name| references.has_variable(name))
}

/// Evaluates every invariant each tick, keeping per-invariant hold state.
pub struct InvariantEvaluator {
    config: InvariantConfig,
    /// The CEL standard environment, built once (building it registers
    /// every standard function: too costly for every tick).
    env: Arc<Env>,
    invariants: Vec<Compiled>,
}

impl std::fmt::Debug for InvariantEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvariantEvaluator")
            .field("invariants", &self.invariants.len())
            .finish()
    }
}

impl InvariantEvaluator {
    /// Compiles every condition (they were checked when the objectives were
    /// read, so this fails only for definitions built in code).
    pub fn new(
        defs: &[InvariantDef],
        config: InvariantConfig,
    ) -> Result<InvariantEvaluator, String> {
        let mut invariants = Vec::with_capacity(defs.len());
        for def in defs {
            let program = compile(&def.condition)
                .map_err(|error| format!("invariant {}: {error}", def.name))?;
            invariants.push(Compiled {
                def: def.clone(),
                per_service: is_per_service(&program),
                program,
                holds: BTreeMap::new(),
            });
        }
        Ok(InvariantEvaluator {
            config,
            env: Arc::new(Env::stdlib()),
            invariants,
        })
    }

    /// One tick: evaluates every invariant against `inputs` at `now_ms`
    /// (one view, instance `""`).
    pub fn tick(&mut self, inputs: &Inputs, now_ms: u64) -> (Vec<InvariantReport>, Vec<Breach>) {
        self.tick_services(&[(String::new(), inputs.clone())], now_ms)
    }

    /// One tick over several services: `services` pairs an instance name
    /// with what its expressions see (its state and health; the rest
    /// shared). Per-service invariants are evaluated for each; the others
    /// once, against the first entry (an empty list counts as one view
    /// with no documents). Reports come invariant by invariant, services in
    /// the order given.
    pub fn tick_services(
        &mut self,
        services: &[(String, Inputs)],
        now_ms: u64,
    ) -> (Vec<InvariantReport>, Vec<Breach>) {
        if self.invariants.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let fallback = [(String::new(), Inputs::default())];
        let services = if services.is_empty() {
            &fallback[..]
        } else {
            services
        };
        let contexts: Vec<Context<'static, 'static>> = services
            .iter()
            .map(|(_, inputs)| inputs.context(&self.env))
            .collect();
        let mut reports = Vec::new();
        let mut breaches = Vec::new();
        for invariant in &mut self.invariants {
            let count = if invariant.per_service {
                services.len()
            } else {
                1
            };
            for (index, (instance, inputs)) in services.iter().take(count).enumerate() {
                let instance = if invariant.per_service {
                    instance.clone()
                } else {
                    String::new()
                };
                let (report, breach) = judge(
                    invariant,
                    &instance,
                    &contexts[index],
                    inputs,
                    now_ms,
                    self.config,
                );
                reports.push(report);
                breaches.extend(breach);
            }
        }
        (reports, breaches)
    }
}

/// Evaluates one invariant for one service and moves its hold state.
fn judge(
    invariant: &mut Compiled,
    instance: &str,
    context: &Context<'static, 'static>,
    inputs: &Inputs,
    now_ms: u64,
    config: InvariantConfig,
) -> (InvariantReport, Option<Breach>) {
    let outcome = match invariant.program.execute(context) {
        Ok(Value::Bool(result)) => Ok(result),
        Ok(other) => Err(format!("the condition answered {other:?}, not a boolean")),
        Err(error) => Err(error.to_string()),
    };
    let def = &invariant.def;
    let hold = invariant.holds.entry(instance.to_owned()).or_default();
    let mut breach = None;
    let state = match outcome {
        Err(message) => InvariantState::Error { message },
        Ok(true) => {
            *hold = Hold {
                last_result: Some(true),
                last_notified_ms: hold.last_notified_ms,
                ..Hold::default()
            };
            InvariantState::Holds
        }
        Ok(false) => {
            hold.last_result = Some(false);
            hold.consecutive = hold.consecutive.saturating_add(1);
            if hold.consecutive < def.hold_ticks {
                InvariantState::Failing {
                    consecutive: hold.consecutive,
                }
            } else {
                let first = hold.breached_since.is_none();
                let since = *hold.breached_since.get_or_insert(now_ms);
                hold.breached_ticks += 1;
                let remind =
                    !first && now_ms.saturating_sub(hold.last_notified_ms) >= config.renotify_ms;
                if first || remind {
                    hold.last_notified_ms = now_ms;
                    let capacity = Capacity::from_inputs(inputs.state.as_ref(), &inputs.metrics);
                    let mut found = evidence(&def.condition, inputs, capacity);
                    if !instance.is_empty() {
                        found["instance"] = serde_json::Value::String(instance.to_owned());
                    }
                    breach = Some(Breach {
                        name: def.name.clone(),
                        instance: instance.to_owned(),
                        condition: def.condition.clone(),
                        description: def.description.clone(),
                        on_violation: def.on_violation.clone(),
                        since_ms: since,
                        reminder: !first,
                        evidence: found,
                    });
                }
                InvariantState::Breached {
                    since_ms: since,
                    ticks: hold.breached_ticks,
                }
            }
        }
    };
    let report = InvariantReport {
        name: def.name.clone(),
        instance: instance.to_owned(),
        condition: def.condition.clone(),
        on_violation: def.on_violation.clone(),
        state,
        last_result: hold.last_result,
    };
    (report, breach)
}

fn evidence(condition: &str, inputs: &Inputs, capacity: Option<Capacity>) -> serde_json::Value {
    let metrics: BTreeMap<&String, &f64> = inputs
        .metrics
        .iter()
        .filter(|(name, _)| condition.contains(name.as_str()))
        .collect();
    let rates: BTreeMap<&String, &f64> = inputs
        .rates
        .iter()
        .filter(|(name, _)| condition.contains(name.as_str()))
        .collect();
    let store = inputs
        .state
        .as_ref()
        .and_then(|state| state.get("store"))
        .cloned();
    serde_json::json!({
        "condition": condition,
        "capacity": capacity,
        "metrics": metrics,
        "rates": rates,
        "state_store": store,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::condition::desugar_percent;

    #[test]
    fn percent_sugar() {
        assert_eq!(desugar_percent("available > 20%"), "available > 0.2");
        assert_eq!(desugar_percent("(a > 99.9%) && b"), "(a > 0.999) && b");
        assert_eq!(desugar_percent("a % 2 == 0"), "a % 2 == 0");
        assert_eq!(desugar_percent("s == '20%'"), "s == '20%'");
        assert_eq!(desugar_percent("x1% > 1"), "x1% > 1");
        assert_eq!(desugar_percent("a > 100%"), "a > 1.0");
    }

    fn check(condition: &str, inputs: &Inputs) -> Result<bool, String> {
        let def = InvariantDef {
            name: "t".into(),
            description: String::new(),
            condition: desugar_percent(condition),
            on_violation: OnViolation::Ticket,
            hold_ticks: 1,
        };
        let mut evaluator = InvariantEvaluator::new(&[def], InvariantConfig::default())?;
        let (reports, _) = evaluator.tick(inputs, 0);
        match &reports[0].state {
            InvariantState::Holds => Ok(true),
            InvariantState::Breached { .. } => Ok(false),
            InvariantState::Error { message } => Err(message.clone()),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn expressions_over_state_and_metrics() {
        let mut inputs = Inputs::default();
        assert!(check("state.store.keys < state.store.capacity", &inputs).is_err());
        inputs.state =
            Some(serde_json::json!({"store": {"keys": 900, "capacity": 1000, "used_ratio": 0.9}}));
        inputs.metrics.insert("floodgate_config_limits".into(), 3.0);
        assert_eq!(
            check("state.store.keys < state.store.capacity", &inputs),
            Ok(true)
        );
        assert_eq!(check("capacity.available_ratio > 0.2", &inputs), Ok(false));
        assert_eq!(check("available > 5%", &inputs), Ok(true));
        assert_eq!(
            check("state.store.keys > 0.5 * state.store.capacity", &inputs),
            Ok(true)
        );
        assert_eq!(check("state.store.keys < 1000", &inputs), Ok(true));
        assert_eq!(
            check("metrics.floodgate_config_limits >= 1", &inputs),
            Ok(true)
        );
        assert_eq!(check("state.store.used_ratio < 1", &inputs), Ok(true));
        inputs.state =
            Some(serde_json::json!({"version": "1.2.3", "store": {"keys": 1, "capacity": 2}}));
        assert_eq!(check("state.version.matches('^1[.]')", &inputs), Ok(true));
        assert!(check("state.store.keys", &inputs).is_err());
        assert!(compile("state.store.keys <").is_err());
        assert!(compile(&"(".repeat(40)).is_err());
    }
}
