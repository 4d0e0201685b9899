//! envoyproxy/ratelimit's YAML config format, read unchanged, plus
//! Floodgate's extensions; parsing, validation and compilation into a
//! [`Table`].
//!
//! The upstream format, one domain per YAML document:
//!
//! ```yaml
//! domain: api
//! descriptors:
//!   - key: tenant              # required, non-empty
//!     value: gold              # optional; a trailing `*` makes it a prefix wildcard
//!     rate_limit:
//!       unit: second           # second, minute, hour, day, week, month, year
//!       requests_per_unit: 100
//!       name: gold_tenants     # optional, referenced by `replaces`
//!       replaces: [{ name: all_tenants }]
//!     shadow_mode: false       # count, report, never reject
//!     detailed_metric: false
//!     descriptors: []          # nested descriptors
//! ```
//!
//! Floodgate's extensions (they never change the meaning of an upstream
//! file): `rate_limit.algorithm` (`fixed_window`, the default,
//! `token_bucket`, `sliding_window` or `concurrency`), `rate_limit.burst`
//! (token bucket capacity) and `rate_limits: [...]`, several limits on one
//! descriptor.
//!
//! A file may hold several YAML documents separated by `---`, each one
//! domain; several files are loaded together with [`load`]. Every error is a
//! [`ConfigError`] naming the file, the path inside it and the problem.

use crate::limits::MAX_DESCRIPTORS;
use crate::model::{Algorithm, Rate, Unit};
use crate::table::{self, LimitDef, Table};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// One domain: the root of one YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// The domain name requests carry; must be non-empty and unique across
    /// every loaded file.
    #[serde(default)]
    pub domain: String,
    /// The top-level descriptors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub descriptors: Vec<DescriptorConfig>,
}

/// One descriptor node: matches one entry of a request descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescriptorConfig {
    /// The entry key to match; required and non-empty.
    #[serde(default)]
    pub key: String,
    /// The entry value to match; absent (or empty) matches any value of the
    /// key. A trailing `*` makes it a prefix wildcard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The limit of this descriptor (upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
    /// Several limits on this descriptor (Floodgate extension); mutually
    /// exclusive with `rate_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<Vec<RateLimitConfig>>,
    /// Count and report, but never reject.
    #[serde(default, skip_serializing_if = "is_false")]
    pub shadow_mode: bool,
    /// Report metrics per value even when the descriptor has no value.
    #[serde(default, skip_serializing_if = "is_false")]
    pub detailed_metric: bool,
    /// Nested descriptors, matched by the next request entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub descriptors: Vec<DescriptorConfig>,
}

/// One limit, as written in the file (strings kept as written, so a config
/// serialises back unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// `second`, `minute`, `hour`, `day`, `week`, `month` or `year`
    /// (case-insensitive, as upstream). Required unless `unlimited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Requests per unit (leases held at once for `concurrency`). Absent
    /// means 0, which rejects everything, as upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_unit: Option<u64>,
    /// Matches, but never limits.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unlimited: bool,
    /// The limit's name, unique in its domain; `replaces` refers to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Limits this one overrides when both apply to one request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<Replace>,
    /// Floodgate extension: how the limit counts (default `fixed_window`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// Floodgate extension: token bucket capacity (default
    /// `requests_per_unit`); only with `algorithm: token_bucket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

/// One entry of `replaces`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replace {
    /// The name of the replaced limit, in the same domain.
    #[serde(default)]
    pub name: String,
}

/// One config file to load: its name (used in errors) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    pub name: String,
    pub text: String,
}

impl ConfigSource {
    /// A source from a name and its text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> ConfigSource {
        ConfigSource {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// A config error: which file, where in it, and what is wrong.
///
/// `path` is a config path such as `descriptors[1].rate_limit.unit`
/// (prefixed with `document[N].` when the file holds several non-empty
/// documents, counted from 0, empty ones skipped), or `line L column C` when
/// the problem has no path (YAML syntax, a document that is not a mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub path: String,
    pub message: String,
}

impl ConfigError {
    fn new(file: &str, path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

fn is_false(value: &bool) -> bool {
    !*value
}

const UNITS: &str = "second, minute, hour, day, week, month, year";
const ALGORITHMS: &str = "fixed_window, token_bucket, sliding_window, concurrency";

/// Parses one file: YAML syntax, field names and types, and every check that
/// needs only one domain (units, algorithms, keys, names, `replaces`).
/// Empty documents (e.g. after a trailing `---`) are skipped; a file with no
/// domain at all is an error.
pub fn parse_file(name: &str, text: &str) -> Result<Vec<DomainConfig>, ConfigError> {
    // First pass: YAML syntax, and how many documents hold something, which
    // decides whether paths carry a `document[N].` prefix.
    // Before any deserialising: no aliases or anchors, no tags outside the
    // core schema, bounded depth and node count, no NUL (the shared gate).
    floodgate_contract::yaml::check(text)
        .map_err(|refusal| ConfigError::new(name, refusal.field(), refusal.message()))?;
    let mut documents = 0usize;
    for document in serde_norway::Deserializer::from_str(text) {
        match <Option<IgnoredAny>>::deserialize(document) {
            Ok(Some(_)) => documents += 1,
            Ok(None) => {}
            Err(error) => return Err(syntax_error(name, &error)),
        }
    }
    let several = documents > 1;

    let mut domains = Vec::new();
    let mut descriptors = 0usize;
    for document in serde_norway::Deserializer::from_str(text) {
        let prefix = document_prefix(several, domains.len());
        let parsed: Result<Option<DomainConfig>, _> = serde_path_to_error::deserialize(document);
        match parsed {
            Ok(Some(domain)) => {
                descriptors += count_descriptors(&domain.descriptors);
                check_descriptor_count(name, &prefix, descriptors)?;
                plan_domain(name, &prefix, &domain)?;
                domains.push(domain);
            }
            Ok(None) => {}
            Err(error) => return Err(field_error(name, &prefix, &error)),
        }
    }
    if domains.is_empty() {
        return Err(ConfigError::new(
            name,
            "domain",
            "missing (the file holds no YAML document)",
        ));
    }
    Ok(domains)
}

/// Parses every source, validates everything (including domains duplicated
/// across files) and compiles the matching table.
pub fn load(sources: &[ConfigSource]) -> Result<Table, ConfigError> {
    let mut domains = Vec::new();
    for source in sources {
        for domain in parse_file(&source.name, &source.text)? {
            domains.push((source.name.clone(), domain));
        }
    }
    compile(domains)
}

/// Validates already parsed domains (each with the name of its file) and
/// compiles them. Entries sharing a file name are that file's documents, in
/// order.
pub fn compile(domains: Vec<(String, DomainConfig)>) -> Result<Table, ConfigError> {
    let mut per_file: HashMap<&str, usize> = HashMap::new();
    for (file, _) in &domains {
        *per_file.entry(file.as_str()).or_default() += 1;
    }
    let mut seen_in_file: HashMap<&str, usize> = HashMap::new();
    // domain -> (file, document prefix) of its first definition
    let mut defined: HashMap<&str, (&str, String)> = HashMap::new();
    let mut plans = Vec::with_capacity(domains.len());
    let mut descriptors = 0usize;
    for (file, domain) in &domains {
        let several = per_file.get(file.as_str()).copied().unwrap_or(0) > 1;
        let seen = seen_in_file.entry(file.as_str()).or_default();
        let prefix = document_prefix(several, *seen);
        *seen += 1;
        descriptors += count_descriptors(&domain.descriptors);
        check_descriptor_count(file, &prefix, descriptors)?;
        if domain.domain.is_empty() {
            return Err(empty_domain(file, &prefix));
        }
        if let Some((first_file, first_prefix)) = defined.get(domain.domain.as_str()) {
            let place = if *first_file == file.as_str() {
                first_prefix.trim_end_matches('.').to_owned()
            } else {
                (*first_file).to_owned()
            };
            return Err(ConfigError::new(
                file,
                format!("{prefix}domain"),
                format!(
                    "duplicate domain {:?} (already defined in {place})",
                    domain.domain
                ),
            ));
        }
        defined.insert(&domain.domain, (file, prefix.clone()));
        plans.push(plan_domain(file, &prefix, domain)?);
    }
    Ok(Table::build(domains, plans))
}

fn document_prefix(several: bool, index: usize) -> String {
    if several {
        format!("document[{index}].")
    } else {
        String::new()
    }
}

/// Descriptors in a tree, nested ones included.
fn count_descriptors(descriptors: &[DescriptorConfig]) -> usize {
    descriptors
        .iter()
        .map(|descriptor| 1 + count_descriptors(&descriptor.descriptors))
        .sum()
}

/// Refuses a config past [`MAX_DESCRIPTORS`] (`total` counted up to and
/// including the domain at `prefix` of `file`).
fn check_descriptor_count(file: &str, prefix: &str, total: usize) -> Result<(), ConfigError> {
    if total > MAX_DESCRIPTORS {
        return Err(ConfigError::new(
            file,
            format!("{prefix}descriptors"),
            format!(
                "{total} descriptors so far, more than the {MAX_DESCRIPTORS} a config may define"
            ),
        ));
    }
    Ok(())
}

fn empty_domain(file: &str, prefix: &str) -> ConfigError {
    ConfigError::new(file, format!("{prefix}domain"), "must not be empty")
}

// ---------------------------------------------------------------------------
// serde errors

/// serde_norway's message without its own path prefix and location suffix.
fn bare_message(error: &serde_norway::Error, path: &str) -> String {
    let mut message = error.to_string();
    if let Some(location) = error.location() {
        let at = format!(" at line {} column {}", location.line(), location.column());
        if let Some(start) = message.find(&at) {
            message.replace_range(start..start + at.len(), "");
        }
    }
    if let Some((head, tail)) = message.split_once(": ") {
        if !head.is_empty() && !path.is_empty() && path.starts_with(head) {
            return tail.to_owned();
        }
    }
    message
}

fn location_path(error: &serde_norway::Error) -> String {
    match error.location() {
        Some(location) => format!("line {} column {}", location.line(), location.column()),
        None => String::new(),
    }
}

fn syntax_error(file: &str, error: &serde_norway::Error) -> ConfigError {
    ConfigError::new(file, location_path(error), bare_message(error, ""))
}

fn field_error(
    file: &str,
    prefix: &str,
    error: &serde_path_to_error::Error<serde_norway::Error>,
) -> ConfigError {
    let inner = error.inner();
    let mut segments: Vec<&serde_path_to_error::Segment> = error.path().iter().collect();
    let mut message = bare_message(inner, &error.path().to_string());
    if let Some(readable) = readable_field_message(&message, "unknown field `") {
        // serde reports the unknown key itself; the path names its parent.
        segments.pop();
        message = readable;
    } else if let Some(readable) = readable_field_message(&message, "duplicate field `") {
        message = readable;
    }
    let relative = format_segments(&segments);
    let path = if relative.is_empty() || relative.contains('?') {
        if prefix.is_empty() {
            location_path(inner)
        } else {
            prefix.trim_end_matches('.').to_owned()
        }
    } else {
        format!("{prefix}{relative}")
    };
    ConfigError::new(file, path, message)
}

/// Turns serde's "unknown field `foo`, expected one of `a`, `b`" into
/// `unknown field "foo" (expected one of a, b)`.
fn readable_field_message(message: &str, lead: &str) -> Option<String> {
    let rest = message.strip_prefix(lead)?;
    let (field, tail) = rest.split_once('`')?;
    let what = lead.trim_end_matches(" `");
    let tail = tail.trim_start_matches(',').trim().replace('`', "");
    if tail.is_empty() {
        Some(format!("{what} {field:?}"))
    } else {
        Some(format!("{what} {field:?} ({tail})"))
    }
}

fn format_segments(segments: &[&serde_path_to_error::Segment]) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// validation and planning

/// One descriptor node of a validated domain, ready for [`Table::build`].
#[derive(Debug, Clone)]
pub(crate) struct PlanNode {
    pub(crate) key: String,
    /// The value to match; `None` when absent or empty (key-only).
    pub(crate) value: Option<String>,
    pub(crate) outcome: PlanOutcome,
    pub(crate) children: Vec<PlanNode>,
}

#[derive(Debug, Clone)]
pub(crate) enum PlanOutcome {
    /// No limit: only a step towards nested descriptors.
    Nothing,
    Unlimited,
    /// Indexes into [`DomainPlan::limits`].
    Limits(Vec<usize>),
}

/// A validated domain: its descriptor tree and its limits, named and
/// identified.
#[derive(Debug, Clone)]
pub(crate) struct DomainPlan {
    pub(crate) nodes: Vec<PlanNode>,
    pub(crate) limits: Vec<LimitDef>,
}

/// How an unnamed limit gets its generated name.
struct PendingName {
    explicit: Option<String>,
    base: String,
    slot: usize,
}

struct PendingReplace {
    /// The error path of `replaces[j].name`.
    path: String,
    target: String,
    /// The replacing limit, when it is a limit (not `unlimited`).
    owner: Option<usize>,
}

struct Planner<'a> {
    file: &'a str,
    prefix: &'a str,
    domain: &'a str,
    limits: Vec<LimitDef>,
    pending: Vec<PendingName>,
    /// Explicit name -> the full path of the limit holding it.
    names: HashMap<String, String>,
    replaces: Vec<PendingReplace>,
}

enum Checked {
    Unlimited,
    Limit(Rate),
}

fn plan_domain(file: &str, prefix: &str, domain: &DomainConfig) -> Result<DomainPlan, ConfigError> {
    if domain.domain.is_empty() {
        return Err(empty_domain(file, prefix));
    }
    if domain.domain.chars().any(char::is_control) {
        return Err(ConfigError::new(
            file,
            format!("{prefix}domain"),
            format!("{:?} holds a control character", domain.domain),
        ));
    }
    let mut planner = Planner {
        file,
        prefix,
        domain: &domain.domain,
        limits: Vec::new(),
        pending: Vec::new(),
        names: HashMap::new(),
        replaces: Vec::new(),
    };
    let mut key_path = Vec::new();
    let nodes = planner.walk(&domain.descriptors, "", &mut key_path)?;
    planner.assign_names();
    planner.check_replaces()?;
    Ok(DomainPlan {
        nodes,
        limits: planner.limits,
    })
}

impl Planner<'_> {
    fn error(&self, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.file, format!("{}{path}", self.prefix), message)
    }

    fn walk(
        &mut self,
        descriptors: &[DescriptorConfig],
        parent: &str,
        key_path: &mut Vec<(String, Option<String>)>,
    ) -> Result<Vec<PlanNode>, ConfigError> {
        let mut nodes = Vec::with_capacity(descriptors.len());
        let mut siblings: HashMap<(&str, Option<&str>), usize> = HashMap::new();
        for (index, descriptor) in descriptors.iter().enumerate() {
            let path = format!("{parent}descriptors[{index}]");
            if descriptor.key.is_empty() {
                return Err(self.error(&format!("{path}.key"), "must not be empty"));
            }
            if descriptor.key.contains('\0') {
                return Err(self.error(&format!("{path}.key"), "holds a NUL character"));
            }
            if descriptor
                .value
                .as_deref()
                .is_some_and(|value| value.contains('\0'))
            {
                return Err(self.error(&format!("{path}.value"), "holds a NUL character"));
            }
            let value = descriptor
                .value
                .as_deref()
                .filter(|value| !value.is_empty());
            if let Some(first) = siblings.get(&(descriptor.key.as_str(), value)) {
                let what = match value {
                    Some(value) => format!("key {:?} value {:?}", descriptor.key, value),
                    None => format!("key {:?}", descriptor.key),
                };
                return Err(self.error(
                    &path,
                    format!(
                        "duplicate descriptor {what} (same as {}{parent}descriptors[{first}])",
                        self.prefix
                    ),
                ));
            }
            siblings.insert((descriptor.key.as_str(), value), index);

            key_path.push((descriptor.key.clone(), value.map(str::to_owned)));
            let outcome = self.plan_limits(descriptor, &path, key_path)?;
            let children = self.walk(&descriptor.descriptors, &format!("{path}."), key_path)?;
            key_path.pop();

            nodes.push(PlanNode {
                key: descriptor.key.clone(),
                value: value.map(str::to_owned),
                outcome,
                children,
            });
        }
        Ok(nodes)
    }

    fn plan_limits(
        &mut self,
        descriptor: &DescriptorConfig,
        path: &str,
        key_path: &[(String, Option<String>)],
    ) -> Result<PlanOutcome, ConfigError> {
        let entries: Vec<(&RateLimitConfig, String, bool)> =
            match (&descriptor.rate_limit, &descriptor.rate_limits) {
                (Some(_), Some(_)) => {
                    return Err(self.error(path, "use either rate_limit or rate_limits, not both"))
                }
                (Some(limit), None) => vec![(limit, format!("{path}.rate_limit"), false)],
                (None, Some(list)) => {
                    if list.is_empty() {
                        return Err(self.error(&format!("{path}.rate_limits"), "must not be empty"));
                    }
                    list.iter()
                        .enumerate()
                        .map(|(slot, limit)| (limit, format!("{path}.rate_limits[{slot}]"), true))
                        .collect()
                }
                (None, None) => return Ok(PlanOutcome::Nothing),
            };

        let mut checked = Vec::with_capacity(entries.len());
        for (limit, limit_path, in_list) in &entries {
            checked.push(self.check_limit(limit, limit_path, *in_list)?);
        }

        // The upstream-style full key: domain.key_value.key2
        let mut full_key = self.domain.to_owned();
        for (key, value) in key_path {
            full_key.push('.');
            full_key.push_str(key);
            if let Some(value) = value {
                full_key.push('_');
                full_key.push_str(value);
            }
        }
        // Unnamed limits of this descriptor, per unit, to decide suffixes.
        let unnamed: Vec<Unit> = entries
            .iter()
            .zip(&checked)
            .filter_map(|((limit, _, _), checked)| match checked {
                Checked::Limit(rate) if explicit_name(limit).is_none() => Some(rate.unit),
                _ => None,
            })
            .collect();

        let mut indexes = Vec::with_capacity(entries.len());
        for (slot, ((limit, limit_path, _), checked)) in entries.iter().zip(checked).enumerate() {
            let rate = match checked {
                Checked::Unlimited => {
                    // Only `rate_limit` may be unlimited, so it is alone.
                    self.register_names(limit, limit_path, None)?;
                    return Ok(PlanOutcome::Unlimited);
                }
                Checked::Limit(rate) => rate,
            };
            let index = self.limits.len();
            self.register_names(limit, limit_path, Some(index))?;
            let mut base = full_key.clone();
            if unnamed.len() > 1 {
                base.push('.');
                base.push_str(rate.unit.as_str());
                if unnamed.iter().filter(|unit| **unit == rate.unit).count() > 1 {
                    base.push_str(&format!(".{slot}"));
                }
            }
            self.pending.push(PendingName {
                explicit: explicit_name(limit).map(str::to_owned),
                base,
                slot,
            });
            self.limits.push(LimitDef {
                id: table::limit_id(self.domain, key_path, slot, rate.algorithm, rate.unit),
                domain: self.domain.to_owned(),
                name: String::new(),
                rate,
                shadow: descriptor.shadow_mode,
                detailed_metric: descriptor.detailed_metric,
                replaces: limit.replaces.iter().map(|r| r.name.clone()).collect(),
                path: limit_path.clone(),
                descriptor: key_path.to_vec(),
            });
            indexes.push(index);
        }
        Ok(PlanOutcome::Limits(indexes))
    }

    fn check_limit(
        &self,
        limit: &RateLimitConfig,
        path: &str,
        in_list: bool,
    ) -> Result<Checked, ConfigError> {
        if limit.unlimited {
            if in_list {
                return Err(self.error(
                    path,
                    "\"unlimited: true\" is not allowed in rate_limits (use rate_limit)",
                ));
            }
            if limit.unit.is_some() || limit.requests_per_unit.is_some() {
                return Err(self.error(
                    path,
                    "\"unlimited: true\" cannot be combined with unit or requests_per_unit",
                ));
            }
            if limit.algorithm.is_some() || limit.burst.is_some() {
                return Err(self.error(
                    path,
                    "\"unlimited: true\" cannot be combined with algorithm or burst",
                ));
            }
            return Ok(Checked::Unlimited);
        }
        let unit = match &limit.unit {
            None => {
                return Err(self.error(
                    &format!("{path}.unit"),
                    format!("missing (expected one of {UNITS})"),
                ))
            }
            Some(unit) => Unit::parse(unit).ok_or_else(|| {
                self.error(
                    &format!("{path}.unit"),
                    format!("unknown unit {unit:?} (expected one of {UNITS})"),
                )
            })?,
        };
        let algorithm = match &limit.algorithm {
            None => Algorithm::default(),
            Some(name) => Algorithm::parse(name).ok_or_else(|| {
                self.error(
                    &format!("{path}.algorithm"),
                    format!("unknown algorithm {name:?} (expected one of {ALGORITHMS})"),
                )
            })?,
        };
        let mut rate = Rate::new(algorithm, limit.requests_per_unit.unwrap_or(0), unit);
        if let Some(burst) = limit.burst {
            if algorithm != Algorithm::TokenBucket {
                return Err(self.error(
                    &format!("{path}.burst"),
                    "only applies to algorithm token_bucket",
                ));
            }
            if burst == 0 {
                return Err(self.error(&format!("{path}.burst"), "must be at least 1"));
            }
            rate = rate.with_burst(burst);
        }
        Ok(Checked::Limit(rate))
    }

    /// Records the explicit name (rejecting duplicates) and the `replaces`
    /// entries of one limit.
    fn register_names(
        &mut self,
        limit: &RateLimitConfig,
        path: &str,
        owner: Option<usize>,
    ) -> Result<(), ConfigError> {
        let name = explicit_name(limit);
        if let Some(name) = name {
            if let Some(first) = self.names.get(name) {
                return Err(self.error(
                    &format!("{path}.name"),
                    format!(
                        "duplicate limit name {name:?} in domain {:?} (also at {first})",
                        self.domain
                    ),
                ));
            }
            self.names
                .insert(name.to_owned(), format!("{}{path}", self.prefix));
        }
        for (index, replace) in limit.replaces.iter().enumerate() {
            let replace_path = format!("{path}.replaces[{index}].name");
            if replace.name.is_empty() {
                return Err(self.error(&replace_path, "must not be empty"));
            }
            if Some(replace.name.as_str()) == name {
                return Err(self.error(&replace_path, "a limit cannot replace itself"));
            }
            self.replaces.push(PendingReplace {
                path: replace_path,
                target: replace.name.clone(),
                owner,
            });
        }
        Ok(())
    }

    /// Gives every limit its name: the explicit one, else the full key
    /// (suffixed until unique in the domain).
    fn assign_names(&mut self) {
        let mut taken: HashSet<String> = self.names.keys().cloned().collect();
        for (limit, pending) in self.limits.iter_mut().zip(&self.pending) {
            limit.name = match &pending.explicit {
                Some(name) => name.clone(),
                None => {
                    let mut candidate = pending.base.clone();
                    let mut attempt = 0u64;
                    while taken.contains(&candidate) {
                        attempt += 1;
                        candidate = if attempt == 1 {
                            format!("{}.{}", pending.base, pending.slot)
                        } else {
                            format!("{}.{}.{attempt}", pending.base, pending.slot)
                        };
                    }
                    taken.insert(candidate.clone());
                    candidate
                }
            };
        }
    }

    fn check_replaces(&self) -> Result<(), ConfigError> {
        let known: HashSet<&str> = self
            .names
            .keys()
            .map(String::as_str)
            .chain(self.limits.iter().map(|limit| limit.name.as_str()))
            .collect();
        for replace in &self.replaces {
            let own = replace
                .owner
                .and_then(|owner| self.limits.get(owner))
                .map(|limit| limit.name.as_str());
            if own == Some(replace.target.as_str()) {
                return Err(self.error(&replace.path, "a limit cannot replace itself"));
            }
            if !known.contains(replace.target.as_str()) {
                return Err(self.error(
                    &replace.path,
                    format!(
                        "no limit named {:?} in domain {:?}",
                        replace.target, self.domain
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn explicit_name(limit: &RateLimitConfig) -> Option<&str> {
    limit.name.as_deref().filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match parse_file("t.yaml", text) {
            Ok(domains) => format!("parsed {domains:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let message = error("domain: a\n  descriptors: x: y\n");
        assert!(
            message.starts_with("t.yaml: line 2 column 14: "),
            "{message}"
        );
        assert!(!message.contains(" at line"), "{message}");
    }

    #[test]
    fn type_errors_name_the_path() {
        assert_eq!(
            error("domain: a\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: abc}\n"),
            "t.yaml: descriptors[0].rate_limit.requests_per_unit: invalid type: string \"abc\", expected u64"
        );
    }

    #[test]
    fn unknown_root_field() {
        assert_eq!(
            error("domain: a\nfoo: 1\n"),
            "t.yaml: line 2 column 1: unknown field \"foo\" (expected domain or descriptors)"
        );
    }

    #[test]
    fn duplicate_field() {
        assert_eq!(
            error("domain: a\ndescriptors:\n  - key: k\n    key: j\n"),
            "t.yaml: descriptors[0]: duplicate field \"key\""
        );
    }

    #[test]
    fn empty_documents_are_skipped() {
        let domains = parse_file("t.yaml", "---\ndomain: a\n---\n").expect("parses");
        assert_eq!(domains.len(), 1);
        assert_eq!(
            error(""),
            "t.yaml: domain: missing (the file holds no YAML document)"
        );
    }

    #[test]
    fn round_trip_is_clean() {
        let text = "domain: api\ndescriptors:\n- key: tenant\n  value: gold\n  rate_limit:\n    unit: second\n    requests_per_unit: 10\n";
        let domains = parse_file("t.yaml", text).expect("parses");
        let back = serde_norway::to_string(&domains[0]).expect("serialises");
        assert_eq!(back, text);
    }
}
