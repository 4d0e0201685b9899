//! The compiled config: request descriptors matched to limits.
//!
//! Built once per config load by [`crate::config::compile`]; matching
//! ([`Table::resolve`]) allocates nothing. Matching follows
//! envoyproxy/ratelimit's `GetLimit` exactly: walk the request entries level
//! by level, at each level trying the exact `key`/`value` node, then the
//! first prefix wildcard (in config order), then the key-only node; the
//! request matches a limit only when its last entry lands on a node with a
//! limit.

use crate::config::{DomainConfig, DomainPlan, PlanNode, PlanOutcome};
use crate::model::{Algorithm, Rate, Unit};
use std::collections::HashMap;
use xxhash_rust::xxh3::{xxh3_64, Xxh3Default};

/// Identifies a limit across config reloads: a hash of its domain, its
/// descriptor path, its slot on the descriptor, its algorithm and its unit.
/// Changing only `requests_per_unit` or `burst` keeps the id (and so the
/// counters).
pub type LimitId = u64;

/// One compiled limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitDef {
    pub id: LimitId,
    pub domain: String,
    /// The explicit name, else the upstream-style full key
    /// (`domain.key_value.key2`, suffixed when needed); unique in the domain.
    pub name: String,
    pub rate: Rate,
    pub shadow: bool,
    pub detailed_metric: bool,
    /// Names of the limits (same domain) this one replaces.
    pub replaces: Vec<String>,
    /// Where the limit is written, e.g. `descriptors[0].rate_limits[1]`
    /// (relative to its YAML document).
    pub path: String,
    /// The descriptor node it is defined at: each level's key and value
    /// (`None` for a key-only level, which matches every value). A request
    /// reaches it through its first `descriptor.len()` entries.
    pub descriptor: Vec<(String, Option<String>)>,
}

/// The outcome of matching one request descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved<'t> {
    /// The domain is not configured.
    UnknownDomain,
    /// No descriptor node with a limit matches.
    NoMatch,
    /// The matching node is `unlimited: true`.
    Unlimited,
    /// The matching node's limits: indexes into [`Table::limits`].
    Limits(&'t [usize]),
}

#[derive(Debug, Clone)]
enum Outcome {
    Nothing,
    Unlimited,
    Limits(Vec<usize>),
}

#[derive(Debug, Clone)]
struct Node {
    outcome: Outcome,
    /// Index into `Table::levels`; `None` when the node has no children.
    children: Option<usize>,
}

#[derive(Debug, Clone, Default)]
struct KeyEntry {
    /// value -> node, for nodes with a value (wildcards included, so a
    /// request value of literally `gold*` matches exactly, as upstream).
    values: HashMap<String, usize>,
    /// The key-only node.
    key_only: Option<usize>,
}

#[derive(Debug, Clone)]
struct Wildcard {
    /// `key_prefix`: upstream compares `key + "_" + value` against it.
    pattern: String,
    node: usize,
}

#[derive(Debug, Clone, Default)]
struct Level {
    keys: HashMap<String, KeyEntry>,
    wildcards: Vec<Wildcard>,
}

impl Level {
    fn find(&self, key: &str, value: &str) -> Option<usize> {
        let entry = self.keys.get(key);
        if let Some(node) = entry.and_then(|entry| entry.values.get(value)) {
            return Some(*node);
        }
        if let Some(wildcard) = self
            .wildcards
            .iter()
            .find(|wildcard| composed_starts_with(key, value, &wildcard.pattern))
        {
            return Some(wildcard.node);
        }
        entry.and_then(|entry| entry.key_only)
    }
}

/// Whether `key + "_" + value` starts with `pattern`, without building the
/// composed string.
fn composed_starts_with(key: &str, value: &str, pattern: &str) -> bool {
    let (key, pattern) = (key.as_bytes(), pattern.as_bytes());
    if pattern.len() <= key.len() {
        return key.starts_with(pattern);
    }
    let (head, rest) = pattern.split_at(key.len());
    match rest.split_first() {
        Some((b'_', tail)) => head == key && value.as_bytes().starts_with(tail),
        _ => false,
    }
}

#[derive(Debug, Clone, Default)]
struct DomainIndex {
    root: Option<usize>,
    names: HashMap<String, usize>,
}

/// The compiled config of every loaded domain.
#[derive(Debug, Clone, Default)]
pub struct Table {
    limits: Vec<LimitDef>,
    nodes: Vec<Node>,
    levels: Vec<Level>,
    domains: HashMap<String, DomainIndex>,
    sources: Vec<(String, DomainConfig)>,
}

impl Table {
    /// An empty table: every domain is unknown.
    pub fn empty() -> Table {
        Table::default()
    }

    /// Builds the table from validated plans (one per domain, same order).
    pub(crate) fn build(sources: Vec<(String, DomainConfig)>, plans: Vec<DomainPlan>) -> Table {
        let mut table = Table::default();
        for ((_, config), plan) in sources.iter().zip(plans) {
            let offset = table.limits.len();
            let mut index = DomainIndex::default();
            for (position, limit) in plan.limits.iter().enumerate() {
                index.names.insert(limit.name.clone(), offset + position);
            }
            table.limits.extend(plan.limits);
            index.root = table.add_level(plan.nodes, offset);
            table.domains.insert(config.domain.clone(), index);
        }
        table.sources = sources;
        table
    }

    fn add_level(&mut self, nodes: Vec<PlanNode>, offset: usize) -> Option<usize> {
        if nodes.is_empty() {
            return None;
        }
        let mut level = Level::default();
        for plan in nodes {
            let children = self.add_level(plan.children, offset);
            let outcome = match plan.outcome {
                PlanOutcome::Nothing => Outcome::Nothing,
                PlanOutcome::Unlimited => Outcome::Unlimited,
                PlanOutcome::Limits(limits) => {
                    Outcome::Limits(limits.into_iter().map(|limit| offset + limit).collect())
                }
            };
            let node = self.nodes.len();
            self.nodes.push(Node { outcome, children });
            // Upstream treats every composed key ending in `*` as a prefix
            // wildcard: normally a value such as `/api/*`, but also a
            // value-less key such as `path*`.
            let entry = level.keys.entry(plan.key.clone()).or_default();
            match plan.value {
                Some(value) => {
                    if let Some(prefix) = value.strip_suffix('*') {
                        level.wildcards.push(Wildcard {
                            pattern: format!("{}_{prefix}", plan.key),
                            node,
                        });
                    }
                    entry.values.insert(value, node);
                }
                None => {
                    if let Some(prefix) = plan.key.strip_suffix('*') {
                        level.wildcards.push(Wildcard {
                            pattern: prefix.to_owned(),
                            node,
                        });
                    }
                    entry.key_only = Some(node);
                }
            }
        }
        self.levels.push(level);
        Some(self.levels.len() - 1)
    }

    /// Matches one request descriptor (its entries, through `kv`) in
    /// `domain`, exactly as envoyproxy/ratelimit's `GetLimit`. Allocates
    /// nothing.
    pub fn resolve<E>(
        &self,
        domain: &str,
        entries: &[E],
        kv: impl Fn(&E) -> (&str, &str),
    ) -> Resolved<'_> {
        let Some(index) = self.domains.get(domain) else {
            return Resolved::UnknownDomain;
        };
        let mut level = index.root;
        let last = entries.len().checked_sub(1);
        for (position, entry) in entries.iter().enumerate() {
            let Some(current) = level.and_then(|level| self.levels.get(level)) else {
                break;
            };
            let (key, value) = kv(entry);
            let Some(node) = current
                .find(key, value)
                .and_then(|node| self.nodes.get(node))
            else {
                break;
            };
            if Some(position) == last {
                match &node.outcome {
                    Outcome::Nothing => {}
                    Outcome::Unlimited => return Resolved::Unlimited,
                    Outcome::Limits(limits) => return Resolved::Limits(limits),
                }
            }
            level = node.children;
        }
        Resolved::NoMatch
    }

    /// Every limit of every domain.
    pub fn limits(&self) -> &[LimitDef] {
        &self.limits
    }

    /// One limit by index (as returned by [`Table::resolve`] and
    /// [`Table::find`]).
    ///
    /// # Panics
    /// If `index` does not come from this table.
    pub fn limit(&self, index: usize) -> &LimitDef {
        &self.limits[index]
    }

    /// The index of the limit named `name` in `domain`.
    /// Whether the config defines `domain`.
    pub fn has_domain(&self, domain: &str) -> bool {
        self.domains.contains_key(domain)
    }

    pub fn find(&self, domain: &str, name: &str) -> Option<usize> {
        self.domains.get(domain)?.names.get(name).copied()
    }

    /// The source model of every domain, in load order.
    pub fn domains(&self) -> impl Iterator<Item = &DomainConfig> {
        self.sources.iter().map(|(_, config)| config)
    }

    /// Every domain with the name of the file it came from, in load order.
    pub fn domain_sources(&self) -> impl Iterator<Item = (&str, &DomainConfig)> {
        self.sources
            .iter()
            .map(|(file, config)| (file.as_str(), config))
    }

    /// Whether no domain is configured.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

fn write_field(buffer: &mut Vec<u8>, bytes: &[u8]) {
    buffer.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    buffer.extend_from_slice(bytes);
}

/// The [`LimitId`] of the limit in `slot` on the descriptor reached by
/// `key_path` (each level's key and value, `None` for key-only).
pub(crate) fn limit_id(
    domain: &str,
    key_path: &[(String, Option<String>)],
    slot: usize,
    algorithm: Algorithm,
    unit: Unit,
) -> LimitId {
    let mut buffer = Vec::with_capacity(64);
    write_field(&mut buffer, domain.as_bytes());
    buffer.extend_from_slice(&(key_path.len() as u64).to_le_bytes());
    for (key, value) in key_path {
        write_field(&mut buffer, key.as_bytes());
        match value {
            Some(value) => {
                buffer.push(1);
                write_field(&mut buffer, value.as_bytes());
            }
            None => buffer.push(0),
        }
    }
    buffer.extend_from_slice(&(slot as u64).to_le_bytes());
    write_field(&mut buffer, algorithm.as_str().as_bytes());
    write_field(&mut buffer, unit.as_str().as_bytes());
    xxh3_64(&buffer)
}

/// The counter key of one request descriptor under one limit: xxh3-128 over
/// the limit id, and every entry's key and value (length-prefixed so
/// `("ab","c") != ("a","bc")`).
pub fn counter_key<E>(limit: &LimitDef, entries: &[E], kv: impl Fn(&E) -> (&str, &str)) -> u128 {
    let mut hasher = Xxh3Default::new();
    hasher.update(&limit.id.to_le_bytes());
    hasher.update(&(entries.len() as u64).to_le_bytes());
    for entry in entries {
        let (key, value) = kv(entry);
        hasher.update(&(key.len() as u64).to_le_bytes());
        hasher.update(key.as_bytes());
        hasher.update(&(value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    }
    hasher.digest128()
}

/// The readable form of the same key: `domain|k1=v1|k2=v2#limit_name`, for
/// state summaries.
pub fn counter_key_text<E>(
    limit: &LimitDef,
    entries: &[E],
    kv: impl Fn(&E) -> (&str, &str),
) -> String {
    let mut text = limit.domain.clone();
    for entry in entries {
        let (key, value) = kv(entry);
        text.push('|');
        text.push_str(key);
        text.push('=');
        text.push_str(value);
    }
    text.push('#');
    text.push_str(&limit.name);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, ConfigSource};
    use std::collections::HashSet;

    fn table(text: &str) -> Table {
        match load(&[ConfigSource::new("t.yaml", text)]) {
            Ok(table) => table,
            Err(error) => panic!("{error}"),
        }
    }

    fn kv<'a>(entry: &'a (&str, &str)) -> (&'a str, &'a str) {
        (entry.0, entry.1)
    }

    fn only_limit(table: &Table, domain: &str, entries: &[(&'static str, &'static str)]) -> usize {
        match table.resolve(domain, entries, kv) {
            Resolved::Limits([one]) => *one,
            other => panic!("expected one limit, got {other:?}"),
        }
    }

    const CONFIG: &str = "
domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: second, requests_per_unit: 10}
    descriptors:
      - key: path
        rate_limits:
          - {unit: second, requests_per_unit: 5}
          - {unit: day, requests_per_unit: 1000}
          - {unit: day, requests_per_unit: 2000, algorithm: sliding_window}
          - {unit: minute, requests_per_unit: 50, name: named}
  - key: user
    value: bob
    rate_limit: {unit: second, requests_per_unit: 10, algorithm: token_bucket, burst: 20}
";

    #[test]
    fn counter_key_is_stable_and_distinguishes_entries_and_limits() {
        let table = table(CONFIG);
        let tenant = table.limit(only_limit(&table, "api", &[("tenant", "a")]));
        let user = table.limit(only_limit(&table, "api", &[("user", "bob")]));
        let a = counter_key(tenant, &[("tenant", "a")], kv);
        assert_eq!(a, counter_key(tenant, &[("tenant", "a")], kv));
        assert_ne!(a, counter_key(tenant, &[("tenant", "b")], kv));
        assert_ne!(a, counter_key(user, &[("tenant", "a")], kv));
        assert_ne!(
            counter_key(tenant, &[("ab", "c")], kv),
            counter_key(tenant, &[("a", "bc")], kv)
        );
        assert_ne!(
            counter_key(tenant, &[("a", "b"), ("c", "d")], kv),
            counter_key(tenant, &[("a", "b")], kv)
        );
        // Stable across reloads of the same config.
        let again = super::tests::table(CONFIG);
        let tenant_again = again.limit(only_limit(&again, "api", &[("tenant", "a")]));
        assert_eq!(a, counter_key(tenant_again, &[("tenant", "a")], kv));
        assert_eq!(
            counter_key_text(tenant, &[("tenant", "a")], kv),
            "api|tenant=a#api.tenant"
        );
    }

    #[test]
    fn names_are_unique_and_generated_upstream_style() {
        let table = table(CONFIG);
        let names: Vec<&str> = table.limits().iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "api.tenant",
                "api.tenant.path.second",
                "api.tenant.path.day.1",
                "api.tenant.path.day.2",
                "named",
                "api.user_bob",
            ]
        );
        let unique: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len());
        for (index, limit) in table.limits().iter().enumerate() {
            assert_eq!(table.find("api", &limit.name), Some(index));
        }
        let ids: HashSet<LimitId> = table.limits().iter().map(|l| l.id).collect();
        assert_eq!(ids.len(), names.len());
    }

    #[test]
    fn generated_names_avoid_explicit_ones() {
        let table = table(
            "
domain: d
descriptors:
  - key: a
    rate_limit: {unit: second, requests_per_unit: 1, name: d.b}
  - key: b
    rate_limit: {unit: second, requests_per_unit: 1}
",
        );
        let names: Vec<&str> = table.limits().iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["d.b", "d.b.0"]);
    }

    #[test]
    fn limit_id_survives_quota_changes_only() {
        let base = table(CONFIG);
        let quota = table(
            &CONFIG
                .replace(
                    "requests_per_unit: 10, algorithm",
                    "requests_per_unit: 99, algorithm",
                )
                .replace("burst: 20", "burst: 40"),
        );
        let algorithm = table(&CONFIG.replace(
            "algorithm: token_bucket, burst: 20",
            "algorithm: sliding_window",
        ));
        let unit = table(&CONFIG.replace(
            "{unit: second, requests_per_unit: 10, algorithm",
            "{unit: minute, requests_per_unit: 10, algorithm",
        ));
        let id = |table: &Table| table.limit(only_limit(table, "api", &[("user", "bob")])).id;
        let rate = |table: &Table| {
            table
                .limit(only_limit(table, "api", &[("user", "bob")]))
                .rate
        };
        assert_eq!(rate(&quota).requests_per_unit, 99);
        assert_eq!(rate(&quota).burst, 40);
        assert_eq!(id(&base), id(&quota));
        assert_ne!(id(&base), id(&algorithm));
        assert_ne!(id(&base), id(&unit));
        // Unchanged limits keep their ids across all of these.
        let tenant = |table: &Table| table.limit(only_limit(table, "api", &[("tenant", "x")])).id;
        assert_eq!(tenant(&base), tenant(&algorithm));
    }

    #[test]
    fn rate_limit_and_a_one_entry_list_share_the_id() {
        let single = table("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, requests_per_unit: 1}\n");
        let list = table("domain: d\ndescriptors:\n  - key: k\n    rate_limits: [{unit: hour, requests_per_unit: 2}]\n");
        assert_eq!(single.limits()[0].id, list.limits()[0].id);
    }

    #[test]
    fn composed_prefix_matches_like_upstream() {
        assert!(composed_starts_with("path", "/api/x", "path_/api/"));
        assert!(composed_starts_with("path", "", "path_"));
        assert!(!composed_starts_with("path", "/ap", "path_/api/"));
        assert!(!composed_starts_with("pat", "h_/api/", "path_/api/"));
        // Upstream compares composed strings, so this matches too.
        assert!(composed_starts_with("path_/api", "x", "path_/api"));
        assert!(!composed_starts_with("paths", "/api/", "path_/api/"));
    }

    #[test]
    fn empty_table() {
        let table = Table::empty();
        assert!(table.is_empty());
        assert_eq!(
            table.resolve("api", &[("a", "b")], kv),
            Resolved::UnknownDomain
        );
    }
}
