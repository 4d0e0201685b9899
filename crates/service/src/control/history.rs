//! The config as state: the current config and a bounded history of
//! versions, each with its canonical YAML and content hash.
//!
//! Canonical YAML: every domain serialised on its own (serde_norway, in
//! domain order) and joined by `---\n`. The hash is `sha256:` and the hex
//! SHA-256 of that text, so two versions with the same content have the
//! same hash whoever made them.

use floodgate_contract::state::{ConfigVersion, ConfigVersionPage};
use floodgate_limiter::config::{self, ConfigError, DomainConfig};
use floodgate_limiter::table::Table;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;

/// Versions kept; older versions are dropped, and a rollback to one is
/// refused (404).
pub const CONFIG_HISTORY_CAPACITY: usize = 100;
/// Bytes of canonical YAML the kept versions may hold together: each
/// version holds its whole config (the text and its model), so a count
/// alone let 100 configs of 4 MiB hold gigabytes. Past it the oldest
/// versions are dropped, but never the current one and the one before it
/// (what a rollback most needs). Small configs are bound by the count.
pub const CONFIG_HISTORY_BYTES: usize = 16 * 1024 * 1024;
/// Versions one `GET /v1/config/versions` page returns by default.
pub const CONFIG_PAGE_DEFAULT: usize = 20;
/// The most versions one page returns (the whole history).
pub const CONFIG_PAGE_MAX: usize = CONFIG_HISTORY_CAPACITY;
/// The name configs applied through the API carry in validation errors.
pub const API_CONFIG_NAME: &str = "config";

/// One config version.
#[derive(Debug, Clone)]
pub struct Version {
    pub meta: ConfigVersion,
    pub domains: Arc<Vec<DomainConfig>>,
    pub yaml: Arc<str>,
}

/// The config's canonical YAML.
pub fn canonical_yaml(domains: &[DomainConfig]) -> String {
    domains
        .iter()
        .map(|domain| serde_norway::to_string(domain).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// `sha256:` + hex of the text.
pub fn hash(text: &str) -> String {
    hash_of(Sha256::new_with_prefix(text.as_bytes()))
}

/// `sha256:` + hex of what `hasher` was given.
pub fn hash_of(hasher: Sha256) -> String {
    let digest = hasher.finalize();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A unified diff of two configs' canonical YAML (empty when equal).
/// `n log n` in the lines, so a dry run of a whole config's replacement
/// stays linear in its size ([`super::diff`]).
pub fn diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    super::diff::unified(old, new, old_name, new_name)
}

/// Validates and compiles a config model made through the API.
pub fn compile(domains: &[DomainConfig]) -> Result<Table, ConfigError> {
    config::compile(
        domains
            .iter()
            .map(|domain| (API_CONFIG_NAME.to_string(), domain.clone()))
            .collect(),
    )
}

/// The current config and the versions before it, newest last.
#[derive(Debug)]
pub struct History {
    versions: VecDeque<Version>,
}

/// A version that is not (or no longer) in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub version: u64,
    pub oldest: u64,
    pub newest: u64,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.version < self.oldest {
            write!(
                f,
                "config version {} is no longer in the history (it keeps the last {CONFIG_HISTORY_CAPACITY} versions within {CONFIG_HISTORY_BYTES} bytes of config: versions {} to {})",
                self.version, self.oldest, self.newest
            )
        } else {
            write!(
                f,
                "config version {} does not exist (versions {} to {} are kept)",
                self.version, self.oldest, self.newest
            )
        }
    }
}

impl History {
    /// Version 1: the config the service started with.
    pub fn new(domains: Vec<DomainConfig>, time_ms: u64) -> History {
        let yaml = canonical_yaml(&domains);
        let meta = ConfigVersion {
            version: 1,
            hash: hash(&yaml),
            time_ms,
            actor: "system".to_string(),
            reason: "the config the service started with".to_string(),
            via: "startup".to_string(),
        };
        History {
            versions: VecDeque::from([Version {
                meta,
                domains: Arc::new(domains),
                yaml: yaml.into(),
            }]),
        }
    }

    pub fn current(&self) -> &Version {
        // Never empty: created with one version, and pushing drops only
        // when more than the capacity are held.
        self.versions
            .back()
            .unwrap_or_else(|| unreachable!("the history always holds the current version"))
    }

    pub fn get(&self, version: u64) -> Result<&Version, Missing> {
        let oldest = self.versions.front().map_or(0, |v| v.meta.version);
        let newest = self.current().meta.version;
        if version < oldest || version > newest {
            return Err(Missing {
                version,
                oldest,
                newest,
            });
        }
        usize::try_from(version - oldest)
            .ok()
            .and_then(|index| self.versions.get(index))
            .ok_or(Missing {
                version,
                oldest,
                newest,
            })
    }

    /// Makes a new current version; returns its number.
    pub fn push(
        &mut self,
        domains: Vec<DomainConfig>,
        yaml: String,
        time_ms: u64,
        actor: &str,
        reason: &str,
        via: &str,
    ) -> u64 {
        let version = self.current().meta.version + 1;
        let meta = ConfigVersion {
            version,
            hash: hash(&yaml),
            time_ms,
            actor: actor.to_string(),
            reason: reason.to_string(),
            via: via.to_string(),
        };
        self.versions.push_back(Version {
            meta,
            domains: Arc::new(domains),
            yaml: yaml.into(),
        });
        let mut bytes: usize = self.versions.iter().map(|v| v.yaml.len()).sum();
        while self.versions.len() > CONFIG_HISTORY_CAPACITY
            || (self.versions.len() > 2 && bytes > CONFIG_HISTORY_BYTES)
        {
            if let Some(dropped) = self.versions.pop_front() {
                bytes -= dropped.yaml.len();
            }
        }
        version
    }

    /// Versions older than `before` (all when `None`), newest first.
    pub fn page(&self, before: Option<u64>, limit: usize) -> ConfigVersionPage {
        let mut versions = Vec::new();
        let mut more = false;
        for version in self.versions.iter().rev() {
            if before.is_some_and(|before| version.meta.version >= before) {
                continue;
            }
            if versions.len() >= limit {
                more = true;
                break;
            }
            versions.push(version.meta.clone());
        }
        let next_before = if more {
            versions.last().map(|v: &ConfigVersion| v.version)
        } else {
            None
        };
        ConfigVersionPage {
            versions,
            next_before,
            capacity: CONFIG_HISTORY_CAPACITY as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(name: &str) -> DomainConfig {
        DomainConfig {
            domain: name.to_string(),
            descriptors: Vec::new(),
        }
    }

    #[test]
    fn canonical_yaml_joins_documents_and_hashes_stably() {
        let yaml = canonical_yaml(&[domain("a"), domain("b")]);
        assert_eq!(yaml, "domain: a\n---\ndomain: b\n");
        assert_eq!(hash(&yaml), hash("domain: a\n---\ndomain: b\n"));
        assert!(hash(&yaml).starts_with("sha256:"));
        assert_eq!(hash(&yaml).len(), 7 + 64);
        // Known vector: SHA-256 of the empty string.
        assert_eq!(
            hash(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn history_is_bounded_and_paged_newest_first() {
        let mut history = History::new(vec![domain("a")], 0);
        for i in 0..CONFIG_HISTORY_CAPACITY + 4 {
            let domains = vec![domain(&format!("d{i}"))];
            let yaml = canonical_yaml(&domains);
            history.push(domains, yaml, 0, "t", "", "apply_config");
        }
        let newest = CONFIG_HISTORY_CAPACITY as u64 + 5;
        assert_eq!(history.current().meta.version, newest);
        let missing = history.get(3).expect_err("dropped");
        assert_eq!(missing.oldest, 6);
        assert!(missing.to_string().contains("no longer"), "{missing}");
        assert!(history.get(newest + 1).is_err());
        assert_eq!(history.get(6).expect("kept").meta.version, 6);
        let page = history.page(None, 3);
        let numbers: Vec<u64> = page.versions.iter().map(|v| v.version).collect();
        assert_eq!(numbers, [newest, newest - 1, newest - 2]);
        assert_eq!(page.next_before, Some(newest - 2));
        let last = history.page(Some(8), 10);
        let numbers: Vec<u64> = last.versions.iter().map(|v| v.version).collect();
        assert_eq!(numbers, [7, 6]);
        assert_eq!(last.next_before, None);
    }

    #[test]
    fn history_is_bounded_in_bytes_but_keeps_the_current_and_the_one_before() {
        let mut history = History::new(vec![domain("a")], 0);
        // Versions of a third of the budget each: three fit with version
        // 1, a fourth drops the oldest.
        let third = "x".repeat(CONFIG_HISTORY_BYTES / 3);
        for _ in 0..4 {
            history.push(vec![domain("b")], third.clone(), 0, "t", "", "apply_config");
        }
        assert_eq!(history.current().meta.version, 5);
        let kept: usize = (1..=5).filter(|v| history.get(*v).is_ok()).count();
        assert_eq!(kept, 3, "three thirds fit, version 1 and 2 dropped");
        assert!(history
            .get(2)
            .expect_err("dropped")
            .to_string()
            .contains("bytes of config"));
        // A version alone past the budget keeps the one before it.
        let huge = "y".repeat(CONFIG_HISTORY_BYTES + 1);
        history.push(vec![domain("c")], huge.clone(), 0, "t", "", "apply_config");
        history.push(vec![domain("d")], huge, 0, "t", "", "apply_config");
        assert!(history.get(7).is_ok() && history.get(6).is_ok());
        assert!(history.get(5).is_err());
    }

    #[test]
    fn diffs_are_unified() {
        let text = diff("a: 1\nb: 2\n", "a: 1\nb: 3\n", "version 1", "proposed");
        assert!(text.contains("--- version 1"), "{text}");
        assert!(text.contains("-b: 2\n+b: 3"), "{text}");
        assert_eq!(diff("x\n", "x\n", "a", "b"), "");
    }
}
