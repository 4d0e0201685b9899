//! The actions of the catalog: parameters parsed and checked, a plan of
//! what would change (the dry run's answer), then the change itself, each
//! step recorded as an event.
//!
//! Config actions edit the config model (`DomainConfig`s) of the current
//! version and recompile it with `limiter::config::compile`; the new table
//! is swapped in atomically and becomes a new version in the history.
//! Counters survive because counter keys derive from a limit's identity
//! (domain, descriptor path, slot, algorithm, unit), and the store tags
//! each key with that identity when it inserts it, so no remapping of
//! table indexes is needed after a swap.

use super::events::{MAX_EVENT_CHANGES, MAX_EVENT_ERROR_BYTES, MAX_EVENT_PARAMS_BYTES};
use super::history::{self, Version};
use super::keys::cut;
use super::Control;
use axum::http::StatusCode;
use floodgate_contract::actions::{
    self as catalog, ActionRequest, ActionResult, AddLimitParams, ApplyConfigParams, Change,
    EvictKeysParams, FailurePolicy, InverseCall, KeyFlips, LimitFlips, NoParams, RemoveLimitParams,
    ReplayReport, RollbackConfigParams, SetCapacityParams, SetFailurePolicyParams, SetLimitParams,
    SetShadowParams,
};
use floodgate_contract::events::EventBody;
use floodgate_contract::state::{ErrorBody, ErrorDetail};
use floodgate_limiter::config::{DescriptorConfig, DomainConfig, RateLimitConfig};
use floodgate_limiter::table::{LimitDef, Table};
use floodgate_limiter::Algorithm;
use floodgate_store::{CounterStore, KeySelect};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// Bytes of an actor name (recorded in every event and config version).
pub const MAX_ACTOR_BYTES: usize = 128;
/// Bytes of a reason (recorded in every event and config version).
pub const MAX_REASON_BYTES: usize = 1024;
/// Bytes of an action name kept in the events of an unknown action.
const MAX_UNKNOWN_ACTION_BYTES: usize = 64;
/// The most counter keys `set_store_capacity` accepts: at about 100 bytes
/// a key (counter, LRU links, key text) this is ~10 GiB, the most a
/// single instance should hold; beyond it, shard the service.
pub const MAX_STORE_KEYS: u64 = 100_000_000;

/// Why an action was refused (4xx: nothing changed) or failed (5xx).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError {
    pub status: StatusCode,
    /// `invalid_argument`, `not_found`, `precondition_failed`, `internal`.
    pub kind: &'static str,
    /// The parameter at fault, e.g. `params.requests_per_unit`.
    pub field: String,
    pub message: String,
}

impl ActionError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ActionError {
        ActionError::new(StatusCode::BAD_REQUEST, "invalid_argument", field, message)
    }

    pub fn not_found(field: impl Into<String>, message: impl Into<String>) -> ActionError {
        ActionError::new(StatusCode::NOT_FOUND, "not_found", field, message)
    }

    pub fn precondition(field: impl Into<String>, message: impl Into<String>) -> ActionError {
        ActionError::new(StatusCode::CONFLICT, "precondition_failed", field, message)
    }

    /// The config is not at the version the caller planned against
    /// (`expect_config_version`): 409 `config_moved`.
    pub fn config_moved(message: impl Into<String>) -> ActionError {
        ActionError::new(
            StatusCode::CONFLICT,
            "config_moved",
            "expect_config_version",
            message,
        )
    }

    /// Too many actions already running or waiting
    /// ([`crate::limits::MAX_PENDING_ACTIONS`]): 503 `overloaded`.
    pub fn overloaded(message: impl Into<String>) -> ActionError {
        ActionError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "action",
            message,
        )
    }

    /// The action did not get its turn within its timeout
    /// ([`crate::limits::ACTION_TIMEOUT`]): 503 `timeout`, it never ran.
    pub fn queue_timeout(message: impl Into<String>) -> ActionError {
        ActionError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "action",
            message,
        )
    }

    /// The action's planning ended past its timeout: 504 `timeout`,
    /// nothing changed.
    pub fn run_timeout(message: impl Into<String>) -> ActionError {
        ActionError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", "action", message)
    }

    pub fn internal(field: impl Into<String>, message: impl Into<String>) -> ActionError {
        ActionError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            field,
            message,
        )
    }

    fn new(
        status: StatusCode,
        kind: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ActionError {
        ActionError {
            status,
            kind,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The contract's error document.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_string(),
                field: self.field.clone(),
                message: self.message.clone(),
            },
        }
    }
}

impl std::fmt::Display for ActionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.kind, self.field, self.message)
    }
}

/// Parses `value` as `T`, naming the parameter at fault (`prefix.path`).
pub fn parse_params<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ActionError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let message = error.inner().to_string();
        let field =
            match floodgate_contract::state::error_field(&error.path().to_string(), &message) {
                Some(field) => format!("{prefix}.{field}"),
                None => prefix.to_owned(),
            };
        ActionError::invalid(field, message)
    })
}

/// Where a limit is written in its domain document: the descriptor indexes
/// from the root, and its slot on the last descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    steps: Vec<usize>,
    slot: Slot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// `rate_limit`
    Single,
    /// `rate_limits[i]`
    List(usize),
}

/// Parses a limit's path (`descriptors[0].descriptors[2].rate_limits[1]`).
fn parse_location(path: &str) -> Option<Location> {
    let mut steps = Vec::new();
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let index = |rest: &str| rest.strip_suffix(']')?.parse::<usize>().ok();
        if let Some(rest) = segment.strip_prefix("descriptors[") {
            steps.push(index(rest)?);
            continue;
        }
        let slot = if segment == "rate_limit" {
            Slot::Single
        } else {
            Slot::List(index(segment.strip_prefix("rate_limits[")?)?)
        };
        return segments
            .peek()
            .is_none()
            .then_some(Location { steps, slot });
    }
    None
}

fn descriptor_mut<'a>(
    descriptors: &'a mut [DescriptorConfig],
    steps: &[usize],
) -> Option<&'a mut DescriptorConfig> {
    let (first, rest) = steps.split_first()?;
    let descriptor = descriptors.get_mut(*first)?;
    if rest.is_empty() {
        Some(descriptor)
    } else {
        descriptor_mut(&mut descriptor.descriptors, rest)
    }
}

fn rate_limit_mut<'a>(
    domain: &'a mut DomainConfig,
    location: &Location,
) -> Option<&'a mut RateLimitConfig> {
    let descriptor = descriptor_mut(&mut domain.descriptors, &location.steps)?;
    match location.slot {
        Slot::Single => descriptor.rate_limit.as_mut(),
        Slot::List(index) => descriptor.rate_limits.as_mut()?.get_mut(index),
    }
}

fn has_limits(descriptor: &DescriptorConfig) -> bool {
    descriptor.rate_limit.is_some() || descriptor.rate_limits.is_some()
}

/// Removes the limit at `location` and every descriptor on its path left
/// with neither limits nor children. A one-element `rate_limits` becomes
/// `rate_limit` (same slot, so the remaining limit keeps its identity).
fn remove_at(descriptors: &mut Vec<DescriptorConfig>, steps: &[usize], slot: Slot) -> bool {
    let Some((first, rest)) = steps.split_first() else {
        return false;
    };
    let Some(descriptor) = descriptors.get_mut(*first) else {
        return false;
    };
    let removed = if rest.is_empty() {
        match slot {
            Slot::Single => descriptor.rate_limit.take().is_some(),
            Slot::List(index) => match descriptor.rate_limits.as_mut() {
                Some(list) if index < list.len() => {
                    list.remove(index);
                    if list.len() <= 1 {
                        descriptor.rate_limit = list.pop();
                        descriptor.rate_limits = None;
                    }
                    true
                }
                _ => false,
            },
        }
    } else {
        remove_at(&mut descriptor.descriptors, rest, slot)
    };
    if removed && !has_limits(descriptor) && descriptor.descriptors.is_empty() {
        descriptors.remove(*first);
    }
    removed
}

fn is_token_bucket(algorithm: &Option<String>) -> bool {
    algorithm.as_deref().and_then(Algorithm::parse) == Some(Algorithm::TokenBucket)
}

fn limit_summary(limit: &LimitDef) -> Value {
    json!({
        "path": limit.path,
        "algorithm": limit.rate.algorithm.as_str(),
        "requests_per_unit": limit.rate.requests_per_unit,
        "unit": limit.rate.unit.as_str(),
        "burst": limit.rate.burst,
        "shadow": limit.shadow,
    })
}

/// What changes, limit by limit, from one table to the next.
fn limit_changes(old: &Table, new: &Table) -> Vec<Change> {
    let key = |limit: &LimitDef| format!("{}/{}", limit.domain, limit.name);
    let old_limits: HashMap<String, &LimitDef> = old
        .limits()
        .iter()
        .map(|limit| (key(limit), limit))
        .collect();
    let mut changes = Vec::new();
    let old_domains: Vec<&str> = old.domains().map(|d| d.domain.as_str()).collect();
    let new_domains: Vec<&str> = new.domains().map(|d| d.domain.as_str()).collect();
    if old_domains != new_domains {
        changes.push(Change {
            path: "config.domains".to_string(),
            before: json!(old_domains),
            after: json!(new_domains),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for limit in new.limits() {
        let name = key(limit);
        seen.insert(name.clone());
        let Some(before) = old_limits.get(&name) else {
            changes.push(Change {
                path: format!("limits[{name}]"),
                before: Value::Null,
                after: limit_summary(limit),
            });
            continue;
        };
        let mut field = |field: &str, before: Value, after: Value| {
            if before != after {
                changes.push(Change {
                    path: format!("limits[{name}].{field}"),
                    before,
                    after,
                });
            }
        };
        field(
            "algorithm",
            json!(before.rate.algorithm.as_str()),
            json!(limit.rate.algorithm.as_str()),
        );
        field(
            "requests_per_unit",
            json!(before.rate.requests_per_unit),
            json!(limit.rate.requests_per_unit),
        );
        field(
            "unit",
            json!(before.rate.unit.as_str()),
            json!(limit.rate.unit.as_str()),
        );
        field("burst", json!(before.rate.burst), json!(limit.rate.burst));
        field("shadow", json!(before.shadow), json!(limit.shadow));
        field(
            "detailed_metric",
            json!(before.detailed_metric),
            json!(limit.detailed_metric),
        );
        field("path", json!(before.path), json!(limit.path));
        if before.id != limit.id {
            field(
                "counters",
                json!("kept"),
                json!("start afresh (algorithm, unit or position changed)"),
            );
        }
    }
    for limit in old.limits() {
        let name = key(limit);
        if !seen.contains(&name) {
            changes.push(Change {
                path: format!("limits[{name}]"),
                before: limit_summary(limit),
                after: Value::Null,
            });
        }
    }
    changes
}

fn call(action: &str, params: Value) -> InverseCall {
    InverseCall {
        action: action.to_string(),
        params,
    }
}

fn rollback_to(version: u64) -> InverseCall {
    call(
        catalog::ROLLBACK_CONFIG.name,
        json!({ "to_version": version }),
    )
}

/// A new config, validated and compiled, ready to swap in.
struct ConfigChange {
    domains: Vec<DomainConfig>,
    table: Table,
    yaml: String,
    via: &'static str,
}

enum Effect {
    /// Nothing to do (a no-op).
    Nothing,
    Config(Box<ConfigChange>),
    Capacity(u64),
    EvictLimit(u64),
    EvictPrefix(String),
    FailurePolicy(FailurePolicy),
    Drain(bool),
}

/// What an action would do.
struct Plan {
    changes: Vec<Change>,
    diff: Option<String>,
    inverse: Option<InverseCall>,
    effect: Effect,
}

impl Plan {
    fn nothing() -> Plan {
        Plan {
            changes: Vec::new(),
            diff: None,
            inverse: None,
            effect: Effect::Nothing,
        }
    }
}

/// What the event log records of an action's parameters.
fn event_params(params: &Value) -> Value {
    // Measured and hashed as written, never copied whole: a config's
    // parameters are up to MAX_CONTROL_BODY_BYTES.
    let mut measure = Measure::default();
    if serde_json::to_writer(&mut measure, params).is_err()
        || measure.bytes <= MAX_EVENT_PARAMS_BYTES
    {
        return params.clone();
    }
    json!({
        "omitted": format!("parameters of {} bytes (more than {MAX_EVENT_PARAMS_BYTES})", measure.bytes),
        "hash": history::hash_of(measure.hash),
    })
}

/// The length and SHA-256 of what is written to it.
#[derive(Default)]
struct Measure {
    bytes: usize,
    hash: sha2::Sha256,
}

impl std::io::Write for Measure {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        self.bytes += buf.len();
        self.hash.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn event_changes(changes: &[Change]) -> Vec<Change> {
    let mut kept: Vec<Change> = changes.iter().take(MAX_EVENT_CHANGES).cloned().collect();
    if changes.len() > MAX_EVENT_CHANGES {
        kept.push(Change {
            path: "…".to_string(),
            before: Value::Null,
            after: json!(format!(
                "{} more changes (the action's answer lists them all)",
                changes.len() - MAX_EVENT_CHANGES
            )),
        });
    }
    kept
}

fn event_error(error: &ActionError) -> String {
    let mut text = error.to_string();
    cut(&mut text, MAX_EVENT_ERROR_BYTES);
    text
}

impl<S: CounterStore> Control<S> {
    fn now_ms(&self) -> u64 {
        self.engine.clock().now_ns() / 1_000_000
    }

    /// Runs action `name`: records `action_requested`, checks, then either
    /// previews (dry run: `action_previewed`) or applies it
    /// (`action_applied`, after the events of its effects); a refusal or
    /// failure is recorded as `action_refused` / `action_failed`.
    /// `default_actor` is recorded when the request names none.
    pub fn run_action(
        &self,
        name: &str,
        request: ActionRequest,
        default_actor: &str,
    ) -> Result<ActionResult, ActionError> {
        self.run_action_until(name, request, default_actor, None)
    }

    /// [`Control::run_action`], refused with nothing changed (504
    /// `timeout`) when its planning ends after `deadline` (the API's
    /// [`crate::limits::ACTION_TIMEOUT`] from when it was taken).
    pub(crate) fn run_action_until(
        &self,
        name: &str,
        request: ActionRequest,
        default_actor: &str,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<ActionResult, ActionError> {
        let mut actor = if request.actor.is_empty() {
            default_actor.to_string()
        } else {
            request.actor.clone()
        };
        let mut reason = request.reason.clone();
        let too_long = if actor.len() > MAX_ACTOR_BYTES {
            Some(ActionError::invalid(
                "actor",
                format!(
                    "{} bytes, more than the {MAX_ACTOR_BYTES} allowed",
                    actor.len()
                ),
            ))
        } else if reason.len() > MAX_REASON_BYTES {
            Some(ActionError::invalid(
                "reason",
                format!(
                    "{} bytes, more than the {MAX_REASON_BYTES} allowed",
                    reason.len()
                ),
            ))
        } else {
            None
        };
        cut(&mut actor, MAX_ACTOR_BYTES);
        cut(&mut reason, MAX_REASON_BYTES);
        let known = catalog::find(name);
        let mut action = name.to_string();
        if known.is_none() {
            cut(&mut action, MAX_UNKNOWN_ACTION_BYTES);
        }

        let _acting = self.acting.lock();
        let recorded_params = event_params(&request.params);
        self.events.emit(
            &actor,
            &reason,
            EventBody::ActionRequested {
                action: action.clone(),
                dry_run: request.dry_run,
                params: recorded_params.clone(),
            },
        );
        if let Some(hook) = &self.queue_hook() {
            hook(&action, &request);
        }
        let refuse = |error: ActionError| {
            let body = if error.status.is_server_error() {
                EventBody::ActionFailed {
                    action: action.clone(),
                    error: event_error(&error),
                }
            } else {
                EventBody::ActionRefused {
                    action: action.clone(),
                    error: event_error(&error),
                }
            };
            self.events.emit(&actor, &reason, body);
            error
        };
        if let Some(error) = too_long {
            return Err(refuse(error));
        }
        let Some(def) = known else {
            return Err(refuse(ActionError::not_found(
                "action",
                format!("no action named \"{action}\" (GET /v1/actions lists them)"),
            )));
        };
        if let Some(expected) = request.expect_config_version {
            let current = self.history.lock().current().meta.clone();
            if current.version != expected {
                return Err(refuse(ActionError::config_moved(format!(
                    "the config moved: expected version {expected}, it is at version {} ({}, made by {} via {} at {} ms)",
                    current.version, current.hash, current.actor, current.via, current.time_ms
                ))));
            }
        }
        let dry_run = request.dry_run;
        let params = if request.params.is_null() {
            json!({})
        } else {
            request.params
        };
        let plan = self.plan(def.name, params).map_err(&refuse)?;
        let past_deadline = || {
            let late = deadline.is_some_and(|deadline| tokio::time::Instant::now() > deadline);
            late.then(|| {
                self.engine()
                    .metrics
                    .action_refused(crate::stats::ActionRefusal::PlanningTimeout);
                ActionError::run_timeout(format!(
                    "the action was not planned within {:?} of being taken (ACTION_TIMEOUT); nothing changed",
                    self.action_timeout()
                ))
            })
        };

        if dry_run {
            let replay = match &plan.effect {
                Effect::Config(change) => self.replay(&change.table),
                _ => None,
            };
            if let Some(error) = past_deadline() {
                return Err(refuse(error));
            }
            let seq = self.events.emit(
                &actor,
                &reason,
                EventBody::ActionPreviewed {
                    action: action.clone(),
                    changes: event_changes(&plan.changes),
                },
            );
            return Ok(ActionResult {
                action,
                dry_run: true,
                applied: false,
                changes: plan.changes,
                diff: plan.diff,
                inverse: None,
                config_version: None,
                event_seq: seq,
                replay,
            });
        }

        if let Some(error) = past_deadline() {
            return Err(refuse(error));
        }
        let applied = !matches!(plan.effect, Effect::Nothing);
        let (changes, config_version) = self
            .apply(plan.effect, plan.changes, &actor, &reason)
            .map_err(&refuse)?;
        let inverse = if applied { plan.inverse } else { None };
        let seq = self.events.emit(
            &actor,
            &reason,
            EventBody::ActionApplied {
                action: action.clone(),
                params: recorded_params,
                changes: event_changes(&changes),
                inverse: inverse.clone(),
            },
        );
        Ok(ActionResult {
            action,
            dry_run: false,
            applied,
            changes,
            diff: plan.diff,
            inverse,
            config_version,
            event_seq: seq,
            replay: None,
        })
    }

    /// The recorded traffic replayed under the current config and
    /// `candidate` (`None` when the service records no traffic).
    fn replay(&self, candidate: &Table) -> Option<ReplayReport> {
        let traffic = self.engine.traffic();
        if !traffic.enabled() {
            return None;
        }
        let records = traffic.snapshot();
        let current = self.engine.snapshot();
        let report = floodgate_limiter::replay::replay(&current.table, candidate, &records);
        let ms = |record: Option<&crate::traffic::Record>| record.map_or(0, |r| r.time / 1_000_000);
        Some(ReplayReport {
            window_start_ms: ms(records.first()),
            window_end_ms: ms(records.last()),
            requests: report.requests,
            dropped: traffic.figures().dropped,
            allowed_before: report.allowed_before,
            allowed_after: report.allowed_after,
            flips: report
                .flips
                .into_iter()
                .map(|flip| LimitFlips {
                    domain: flip.domain,
                    limit: flip.limit,
                    requests: flip.requests,
                    allowed_to_limited: flip.allowed_to_limited,
                    limited_to_allowed: flip.limited_to_allowed,
                })
                .collect(),
            top_keys: report
                .top_keys
                .into_iter()
                .map(|key| KeyFlips {
                    key: key.key,
                    allowed_to_limited: key.allowed_to_limited,
                    limited_to_allowed: key.limited_to_allowed,
                })
                .collect(),
        })
    }

    fn plan(&self, name: &str, params: Value) -> Result<Plan, ActionError> {
        let current = self.history.lock().current().clone();
        let snapshot = self.engine.snapshot();
        let table = &snapshot.table;
        match name {
            "set_limit" => self.plan_set_limit(parse_params(params, "params")?, &current, table),
            "set_shadow_mode" => {
                self.plan_set_shadow(parse_params(params, "params")?, &current, table)
            }
            "add_limit" => self.plan_add_limit(parse_params(params, "params")?, &current, table),
            "remove_limit" => {
                self.plan_remove_limit(parse_params(params, "params")?, &current, table)
            }
            "apply_config" => {
                let params: ApplyConfigParams = parse_params(params, "params")?;
                let domains =
                    floodgate_limiter::config::parse_file(history::API_CONFIG_NAME, &params.yaml)
                        .map_err(|error| ActionError::invalid("params.yaml", error.to_string()))?;
                self.plan_config(
                    &current,
                    table,
                    domains,
                    "apply_config",
                    None,
                    "params.yaml",
                )
            }
            "rollback_config" => {
                let params: RollbackConfigParams = parse_params(params, "params")?;
                let target = {
                    let history = self.history.lock();
                    history
                        .get(params.to_version)
                        .map(|version| version.domains.clone())
                        .map_err(|missing| {
                            ActionError::not_found("params.to_version", missing.to_string())
                        })?
                };
                self.plan_config(
                    &current,
                    table,
                    (*target).clone(),
                    "rollback_config",
                    None,
                    "params.to_version",
                )
            }
            "set_store_capacity" => self.plan_capacity(parse_params(params, "params")?),
            "evict_keys" => self.plan_evict(parse_params(params, "params")?, &current, table),
            "set_failure_policy" => {
                let params: SetFailurePolicyParams = parse_params(params, "params")?;
                let before = self.failure_policy();
                if before == params.policy {
                    return Ok(Plan::nothing());
                }
                Ok(Plan {
                    changes: vec![Change {
                        path: "store.failure_policy".to_string(),
                        before: json!(before),
                        after: json!(params.policy),
                    }],
                    diff: None,
                    inverse: Some(call(
                        catalog::SET_FAILURE_POLICY.name,
                        json!({ "policy": before }),
                    )),
                    effect: Effect::FailurePolicy(params.policy),
                })
            }
            "drain" | "undrain" => {
                let _: NoParams = parse_params(params, "params")?;
                let draining = name == "drain";
                if self.draining() == draining {
                    return Ok(Plan::nothing());
                }
                let inverse = if draining {
                    catalog::UNDRAIN.name
                } else {
                    catalog::DRAIN.name
                };
                Ok(Plan {
                    changes: vec![Change {
                        path: "drain.draining".to_string(),
                        before: json!(!draining),
                        after: json!(draining),
                    }],
                    diff: None,
                    inverse: Some(call(inverse, json!({}))),
                    effect: Effect::Drain(draining),
                })
            }
            other => Err(ActionError::internal(
                "action",
                format!("action {other} is in the catalog but not implemented"),
            )),
        }
    }

    /// The plan of replacing the config by `domains`: validated and
    /// compiled, diffed against the current version.
    fn plan_config(
        &self,
        current: &Version,
        table: &Table,
        domains: Vec<DomainConfig>,
        via: &'static str,
        inverse: Option<InverseCall>,
        field: &str,
    ) -> Result<Plan, ActionError> {
        let compiled = history::compile(&domains).map_err(|error| {
            // Name the parameter when the config path ends in one.
            let field = ["requests_per_unit", "burst", "algorithm", "unit"]
                .into_iter()
                .find(|name| error.path.ends_with(&format!(".{name}")) && field == "params")
                .map_or_else(|| field.to_string(), |name| format!("params.{name}"));
            ActionError::invalid(field, error.to_string())
        })?;
        let yaml = history::canonical_yaml(&domains);
        if yaml == *current.yaml {
            return Ok(Plan::nothing());
        }
        let version = current.meta.version;
        Ok(Plan {
            changes: limit_changes(table, &compiled),
            diff: Some(history::diff(
                &current.yaml,
                &yaml,
                &format!("version {version}"),
                "proposed",
            )),
            inverse: Some(inverse.unwrap_or_else(|| rollback_to(version))),
            effect: Effect::Config(Box::new(ConfigChange {
                domains,
                table: compiled,
                yaml,
                via,
            })),
        })
    }

    /// Finds limit `name` of `domain`: its index in the model's domains,
    /// its definition and where it is written.
    fn locate(
        &self,
        current: &Version,
        table: &Table,
        domain: &str,
        name: &str,
    ) -> Result<(usize, LimitDef, Location), ActionError> {
        let Some(position) = current.domains.iter().position(|d| d.domain == domain) else {
            return Err(ActionError::precondition(
                "params.domain",
                format!("no domain \"{domain}\" in the config"),
            ));
        };
        let Some(index) = table.find(domain, name) else {
            return Err(ActionError::precondition(
                "params.limit",
                format!(
                    "no limit named \"{name}\" in domain \"{domain}\" (GET /v1/state lists them)"
                ),
            ));
        };
        let limit = table.limit(index).clone();
        let location = parse_location(&limit.path).ok_or_else(|| {
            ActionError::internal(
                "params.limit",
                format!("cannot follow the limit's path {:?}", limit.path),
            )
        })?;
        Ok((position, limit, location))
    }

    fn plan_set_limit(
        &self,
        params: SetLimitParams,
        current: &Version,
        table: &Table,
    ) -> Result<Plan, ActionError> {
        if params.requests_per_unit.is_none()
            && params.burst.is_none()
            && params.algorithm.is_none()
            && params.unit.is_none()
        {
            return Err(ActionError::invalid(
                "params",
                "nothing to change: give at least one of requests_per_unit, burst, algorithm, unit",
            ));
        }
        let (position, limit, location) =
            self.locate(current, table, &params.domain, &params.limit)?;
        let mut domains = (*current.domains).clone();
        let Some(rate_limit) = domains
            .get_mut(position)
            .and_then(|domain| rate_limit_mut(domain, &location))
        else {
            return Err(ActionError::internal(
                "params.limit",
                "the limit is not in the config model",
            ));
        };
        let before = rate_limit.clone();
        if let Some(requests) = params.requests_per_unit {
            rate_limit.requests_per_unit = Some(requests);
        }
        if let Some(burst) = params.burst {
            rate_limit.burst = burst;
        }
        if let Some(algorithm) = &params.algorithm {
            rate_limit.algorithm = algorithm.clone();
            // A burst belongs to the token bucket: leaving it drops it (and
            // the inverse puts it back).
            if params.burst.is_none() && !is_token_bucket(&rate_limit.algorithm) {
                rate_limit.burst = None;
            }
        }
        if let Some(unit) = &params.unit {
            rate_limit.unit = Some(unit.clone());
        }
        let after = rate_limit.clone();
        // The limit keeps its place; its generated name may change (with
        // its unit), so the inverse addresses it by the name it will have.
        let compiled = history::compile(&domains).ok();
        let new_name = compiled
            .as_ref()
            .and_then(|table| {
                table
                    .limits()
                    .iter()
                    .find(|l| l.domain == limit.domain && l.path == limit.path)
            })
            .map_or_else(|| limit.name.clone(), |l| l.name.clone());
        let inverse = if before.requests_per_unit.is_none() && after.requests_per_unit.is_some() {
            // "absent" cannot be set back by set_limit.
            rollback_to(current.meta.version)
        } else {
            let mut inverse = SetLimitParams {
                domain: params.domain.clone(),
                limit: new_name,
                requests_per_unit: None,
                burst: None,
                algorithm: None,
                unit: None,
            };
            if before.requests_per_unit != after.requests_per_unit {
                inverse.requests_per_unit = before.requests_per_unit;
            }
            if before.burst != after.burst {
                inverse.burst = Some(before.burst);
            }
            if before.algorithm != after.algorithm {
                inverse.algorithm = Some(before.algorithm.clone());
            }
            if before.unit != after.unit {
                inverse.unit = before.unit.clone();
            }
            call(
                catalog::SET_LIMIT.name,
                serde_json::to_value(&inverse).unwrap_or_default(),
            )
        };
        self.plan_config(
            current,
            table,
            domains,
            "set_limit",
            Some(inverse),
            "params",
        )
    }

    fn plan_set_shadow(
        &self,
        params: SetShadowParams,
        current: &Version,
        table: &Table,
    ) -> Result<Plan, ActionError> {
        let (position, _limit, location) =
            self.locate(current, table, &params.domain, &params.limit)?;
        let mut domains = (*current.domains).clone();
        let Some(descriptor) = domains
            .get_mut(position)
            .and_then(|domain| descriptor_mut(&mut domain.descriptors, &location.steps))
        else {
            return Err(ActionError::internal(
                "params.limit",
                "the limit is not in the config model",
            ));
        };
        if descriptor.shadow_mode == params.shadow {
            return Ok(Plan::nothing());
        }
        descriptor.shadow_mode = params.shadow;
        let inverse = call(
            catalog::SET_SHADOW_MODE.name,
            json!({"domain": params.domain, "limit": params.limit, "shadow": !params.shadow}),
        );
        self.plan_config(
            current,
            table,
            domains,
            "set_shadow_mode",
            Some(inverse),
            "params",
        )
    }

    fn plan_add_limit(
        &self,
        params: AddLimitParams,
        current: &Version,
        table: &Table,
    ) -> Result<Plan, ActionError> {
        let Some(position) = current
            .domains
            .iter()
            .position(|d| d.domain == params.domain)
        else {
            return Err(ActionError::precondition(
                "params.domain",
                format!("no domain \"{}\" in the config", params.domain),
            ));
        };
        if params.path.is_empty() {
            return Err(ActionError::invalid(
                "params.path",
                "must name at least one descriptor level",
            ));
        }
        for (index, entry) in params.path.iter().enumerate() {
            if entry.key.is_empty() {
                return Err(ActionError::invalid(
                    format!("params.path[{index}].key"),
                    "must not be empty",
                ));
            }
        }
        let rate_limit: RateLimitConfig =
            parse_params(params.rate_limit.clone(), "params.rate_limit")?;
        let Some(name) = rate_limit.name.clone().filter(|name| !name.is_empty()) else {
            return Err(ActionError::invalid(
                "params.rate_limit.name",
                "required: the limit is addressed (and removed) by name",
            ));
        };
        if rate_limit.unlimited {
            return Err(ActionError::invalid(
                "params.rate_limit.unlimited",
                "add_limit adds a limit; `unlimited` is not one",
            ));
        }
        if table.find(&params.domain, &name).is_some() {
            return Err(ActionError::precondition(
                "params.rate_limit.name",
                format!(
                    "domain \"{}\" already has a limit named \"{name}\"",
                    params.domain
                ),
            ));
        }
        let mut domains = (*current.domains).clone();
        let Some(domain) = domains.get_mut(position) else {
            return Err(ActionError::internal(
                "params.domain",
                "the domain is not in the config model",
            ));
        };
        let mut level = &mut domain.descriptors;
        let last = params.path.len() - 1;
        for (index, entry) in params.path.iter().enumerate() {
            let value = entry.value.clone().filter(|value| !value.is_empty());
            let found = level.iter().position(|descriptor| {
                descriptor.key == entry.key
                    && descriptor.value.as_deref().filter(|v| !v.is_empty()) == value.as_deref()
            });
            let at = match found {
                Some(at) => at,
                None => {
                    level.push(DescriptorConfig {
                        key: entry.key.clone(),
                        value,
                        shadow_mode: index == last && params.shadow_mode,
                        ..DescriptorConfig::default()
                    });
                    level.len() - 1
                }
            };
            if index < last {
                level = &mut level[at].descriptors;
                continue;
            }
            let descriptor = &mut level[at];
            if descriptor.shadow_mode != params.shadow_mode {
                if has_limits(descriptor) {
                    return Err(ActionError::precondition(
                        "params.shadow_mode",
                        format!(
                            "shadow mode is set per descriptor, and this descriptor's other limits have shadow_mode {}; use set_shadow_mode",
                            descriptor.shadow_mode
                        ),
                    ));
                }
                descriptor.shadow_mode = params.shadow_mode;
            }
            match (descriptor.rate_limit.take(), descriptor.rate_limits.take()) {
                (None, None) => descriptor.rate_limit = Some(rate_limit.clone()),
                (Some(existing), None) => {
                    if existing.unlimited {
                        return Err(ActionError::precondition(
                            "params.path",
                            "the descriptor is `unlimited`: it cannot carry limits",
                        ));
                    }
                    descriptor.rate_limits = Some(vec![existing, rate_limit.clone()]);
                }
                (None, Some(mut list)) => {
                    list.push(rate_limit.clone());
                    descriptor.rate_limits = Some(list);
                }
                (Some(existing), Some(list)) => {
                    // Not a valid config; put it back for validation to name.
                    descriptor.rate_limit = Some(existing);
                    descriptor.rate_limits = Some(list);
                }
            }
        }
        let inverse = call(
            catalog::REMOVE_LIMIT.name,
            json!({"domain": params.domain, "limit": name}),
        );
        self.plan_config(
            current,
            table,
            domains,
            "add_limit",
            Some(inverse),
            "params",
        )
    }

    fn plan_remove_limit(
        &self,
        params: RemoveLimitParams,
        current: &Version,
        table: &Table,
    ) -> Result<Plan, ActionError> {
        let (position, limit, location) =
            self.locate(current, table, &params.domain, &params.limit)?;
        if let Some(other) = table
            .limits()
            .iter()
            .find(|other| other.domain == limit.domain && other.replaces.contains(&limit.name))
        {
            return Err(ActionError::precondition(
                "params.limit",
                format!(
                    "limit \"{}\" replaces \"{}\" by name; change or remove it first",
                    other.name, limit.name
                ),
            ));
        }
        let mut domains = (*current.domains).clone();
        let removed = domains.get_mut(position).is_some_and(|domain| {
            remove_at(&mut domain.descriptors, &location.steps, location.slot)
        });
        if !removed {
            return Err(ActionError::internal(
                "params.limit",
                "the limit is not in the config model",
            ));
        }
        self.plan_config(current, table, domains, "remove_limit", None, "params")
    }

    fn plan_capacity(&self, params: SetCapacityParams) -> Result<Plan, ActionError> {
        if params.max_keys == 0 {
            return Err(ActionError::precondition(
                "params.max_keys",
                "must be at least 1",
            ));
        }
        if params.max_keys > MAX_STORE_KEYS {
            return Err(ActionError::precondition(
                "params.max_keys",
                format!("must be at most {MAX_STORE_KEYS}"),
            ));
        }
        let stats = self.engine.store().stats();
        if stats.capacity == params.max_keys {
            return Ok(Plan::nothing());
        }
        let mut changes = vec![Change {
            path: "store.capacity".to_string(),
            before: json!(stats.capacity),
            after: json!(params.max_keys),
        }];
        if stats.keys > params.max_keys {
            changes.push(Change {
                path: "store.keys".to_string(),
                before: json!(stats.keys),
                after: json!(params.max_keys),
            });
        }
        Ok(Plan {
            changes,
            diff: None,
            inverse: Some(call(
                catalog::SET_STORE_CAPACITY.name,
                json!({ "max_keys": stats.capacity }),
            )),
            effect: Effect::Capacity(params.max_keys),
        })
    }

    fn plan_evict(
        &self,
        params: EvictKeysParams,
        current: &Version,
        table: &Table,
    ) -> Result<Plan, ActionError> {
        let (effect, count) = match (&params.limit, &params.key_prefix) {
            (Some(limit), None) => {
                let (_, limit, _) = self
                    .locate(current, table, &limit.domain, &limit.limit)
                    .map_err(|error| ActionError {
                        field: error.field.replace("params.", "params.limit."),
                        ..error
                    })?;
                let count = self.engine.store().count_keys(KeySelect::Limit(limit.id));
                (Effect::EvictLimit(limit.id), count)
            }
            (None, Some(prefix)) => {
                let count = self.engine.store().count_keys(KeySelect::Prefix(prefix));
                (Effect::EvictPrefix(prefix.clone()), count)
            }
            _ => {
                return Err(ActionError::precondition(
                    "params",
                    "give exactly one of limit and key_prefix",
                ))
            }
        };
        if count == 0 {
            return Ok(Plan::nothing());
        }
        let keys = self.engine.store().stats().keys;
        Ok(Plan {
            changes: vec![Change {
                path: "store.keys".to_string(),
                before: json!(keys),
                after: json!(keys.saturating_sub(count)),
            }],
            diff: None,
            inverse: None,
            effect,
        })
    }

    /// Makes the planned change; answers the changes as made and the new
    /// config version (for config changes).
    fn apply(
        &self,
        effect: Effect,
        mut changes: Vec<Change>,
        actor: &str,
        reason: &str,
    ) -> Result<(Vec<Change>, Option<u64>), ActionError> {
        let store = self.engine.store();
        match effect {
            Effect::Nothing => Ok((changes, None)),
            Effect::Config(change) => {
                let ConfigChange {
                    domains,
                    table,
                    yaml,
                    via,
                } = *change;
                let limits = table.limits().len() as u64;
                let now_ms = self.now_ms();
                // Swap and record under the history lock, so readers see
                // the table and its version together.
                let (version, hash, previous) = {
                    let mut history = self.history.lock();
                    let previous = history.current().meta.version;
                    self.engine.swap_table(table);
                    let version = history.push(domains, yaml, now_ms, actor, reason, via);
                    (version, history.current().meta.hash.clone(), previous)
                };
                self.events.emit(
                    actor,
                    reason,
                    EventBody::ConfigApplied {
                        version,
                        hash,
                        previous_version: previous,
                        limits,
                        via: via.to_string(),
                    },
                );
                Ok((changes, Some(version)))
            }
            Effect::Capacity(max_keys) => {
                let before = store.stats();
                store.set_capacity(max_keys);
                let after = store.stats();
                changes = vec![Change {
                    path: "store.capacity".to_string(),
                    before: json!(before.capacity),
                    after: json!(after.capacity),
                }];
                if after.keys != before.keys {
                    changes.push(Change {
                        path: "store.keys".to_string(),
                        before: json!(before.keys),
                        after: json!(after.keys),
                    });
                }
                Ok((changes, None))
            }
            Effect::EvictLimit(_) | Effect::EvictPrefix(_) => {
                let before = store.stats().keys;
                match &effect {
                    Effect::EvictLimit(limit) => store.evict_keys(KeySelect::Limit(*limit)),
                    Effect::EvictPrefix(prefix) => store.evict_keys(KeySelect::Prefix(prefix)),
                    _ => 0,
                };
                let after = store.stats().keys;
                Ok((
                    vec![Change {
                        path: "store.keys".to_string(),
                        before: json!(before),
                        after: json!(after),
                    }],
                    None,
                ))
            }
            Effect::FailurePolicy(policy) => {
                let from = self.replace_failure_policy(policy);
                self.events.emit(
                    actor,
                    reason,
                    EventBody::FailurePolicyChanged {
                        from: from.as_str().to_string(),
                        to: policy.as_str().to_string(),
                    },
                );
                Ok((changes, None))
            }
            Effect::Drain(draining) => {
                self.draining.store(draining, Ordering::SeqCst);
                self.events
                    .emit(actor, reason, EventBody::DrainChanged { draining });
                Ok((changes, None))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            parse_location("descriptors[0].descriptors[12].rate_limits[3]"),
            Some(Location {
                steps: vec![0, 12],
                slot: Slot::List(3)
            })
        );
        assert_eq!(
            parse_location("descriptors[2].rate_limit"),
            Some(Location {
                steps: vec![2],
                slot: Slot::Single
            })
        );
        assert_eq!(parse_location("descriptors[2].rate_limit.x"), None);
        assert_eq!(parse_location("descriptors[x].rate_limit"), None);
        assert_eq!(parse_location("descriptors[1]"), None);
    }

    #[test]
    fn removal_prunes_levels_left_empty() {
        let text = "domain: a\ndescriptors:\n- key: k\n  descriptors:\n  - key: j\n    rate_limit: {unit: second, requests_per_unit: 1}\n- key: m\n  rate_limits:\n  - {unit: second, requests_per_unit: 1}\n  - {unit: minute, requests_per_unit: 1}\n";
        let mut domains = floodgate_limiter::config::parse_file("t", text).expect("valid");
        let domain = &mut domains[0];
        assert!(remove_at(&mut domain.descriptors, &[0, 0], Slot::Single));
        assert_eq!(domain.descriptors.len(), 1);
        assert_eq!(domain.descriptors[0].key, "m");
        assert!(remove_at(&mut domain.descriptors, &[0], Slot::List(1)));
        assert!(domain.descriptors[0].rate_limits.is_none());
        assert!(domain.descriptors[0].rate_limit.is_some());
        assert!(!remove_at(&mut domain.descriptors, &[5], Slot::Single));
    }

    #[test]
    fn params_errors_name_the_field() {
        let error = parse_params::<SetCapacityParams>(json!({"max_keys": "x"}), "params")
            .expect_err("bad type");
        assert_eq!(error.field, "params.max_keys");
        let error = parse_params::<SetCapacityParams>(json!({}), "params").expect_err("missing");
        assert_eq!(error.field, "params.max_keys");
        let error = parse_params::<SetCapacityParams>(json!({"max_keys": 1, "x": 1}), "params")
            .expect_err("unknown");
        assert!(error.field.starts_with("params"), "{error}");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
    }
}
