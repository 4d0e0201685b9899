//! Series selectors: a metric name and label matchers, PromQL's instant
//! vector selector (`floodgate_requests_total{code!="error",api=~"grpc|http"}`).
//! This is the whole query language objectives use; aggregation is always a
//! sum over every matching series.

use regex::Regex;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// The longest selector accepted, in characters.
pub const MAX_SELECTOR_CHARS: usize = 1024;
/// The most matchers one selector may hold.
pub const MAX_MATCHERS: usize = 16;
/// The compiled size limit of one label regex, in bytes (regex crate
/// `size_limit`): enough for alternations of a few dozen names.
pub const MAX_REGEX_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
    /// Both sides parse as numbers and are equal (within 1e-9 relative):
    /// matches a histogram's `le` whatever its float formatting (`0.001`,
    /// `1e-3`). Made in code only; displayed as `=`.
    NumericEqual,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal | MatchOp::NumericEqual => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher. A missing label matches as the empty string, as in
/// Prometheus (`code!="error"` matches a series without `code`).
#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    pub fn new(label: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(MAX_REGEX_BYTES)
                    .build()
                    .map_err(|error| {
                        format!("label {label}: {value:?} is not a valid regex: {error}")
                    })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            label: label.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    pub fn matches(&self, value: Option<&str>) -> bool {
        let value = value.unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(regex)) => regex.is_match(value),
            (MatchOp::NotRegex, Some(regex)) => !regex.is_match(value),
            (MatchOp::NumericEqual, _) => {
                match (
                    crate::observe::exposition::parse_value(value),
                    crate::observe::exposition::parse_value(&self.value),
                ) {
                    (Some(a), Some(b)) => a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
                    _ => false,
                }
            }
            // Regex matchers are built with their regex; unreachable, and
            // matching nothing is the safe answer.
            (_, None) => false,
        }
    }
}

/// A metric name with label matchers.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub name: String,
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// A selector of every series of one metric.
    pub fn metric(name: &str) -> Selector {
        Selector {
            name: name.to_owned(),
            matchers: Vec::new(),
        }
    }

    /// Adds an equality matcher (builder style, for selectors made in code).
    pub fn with(mut self, label: &str, value: &str) -> Selector {
        self.matchers.push(Matcher {
            label: label.to_owned(),
            op: MatchOp::Equal,
            value: value.to_owned(),
            regex: None,
        });
        self
    }

    /// Adds a numeric-equality matcher (a histogram's `le`).
    pub fn with_number(mut self, label: &str, value: f64) -> Selector {
        self.matchers.push(Matcher {
            label: label.to_owned(),
            op: MatchOp::NumericEqual,
            value: crate::quantity::trim_float(value),
            regex: None,
        });
        self
    }

    /// Whether a series (name and sorted labels) is selected.
    pub fn matches(&self, name: &str, labels: &[(String, String)]) -> bool {
        name == self.name
            && self.matchers.iter().all(|matcher| {
                let value = labels
                    .iter()
                    .find(|(label, _)| *label == matcher.label)
                    .map(|(_, value)| value.as_str());
                matcher.matches(value)
            })
    }

    /// Parses `name{label op "value", …}`.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let expected = "expected a selector such as floodgate_requests_total{code!=\"error\"}";
        let text = text.trim();
        if text.len() > MAX_SELECTOR_CHARS {
            return Err(format!(
                "a selector longer than {MAX_SELECTOR_CHARS} characters"
            ));
        }
        let name_end = text.find(['{', ' ']).unwrap_or(text.len());
        let name = &text[..name_end];
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if !valid_name {
            return Err(format!("{text:?} is not a selector ({expected}; only selectors are supported, not full PromQL)"));
        }
        let mut selector = Selector::metric(name);
        let rest = text[name_end..].trim();
        if rest.is_empty() {
            return Ok(selector);
        }
        let inner = rest
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .ok_or_else(|| {
                format!("{text:?} is not a selector ({expected}; only selectors are supported, not full PromQL)")
            })?;
        let mut rest = inner.trim();
        while !rest.is_empty() {
            if selector.matchers.len() >= MAX_MATCHERS {
                return Err(format!("more than {MAX_MATCHERS} label matchers"));
            }
            let label_end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let label = &rest[..label_end];
            if label.is_empty() {
                return Err(format!(
                    "{text:?}: a label matcher has no label name ({expected})"
                ));
            }
            rest = rest[label_end..].trim_start();
            let op = if let Some(r) = rest.strip_prefix("=~") {
                rest = r;
                MatchOp::Regex
            } else if let Some(r) = rest.strip_prefix("!~") {
                rest = r;
                MatchOp::NotRegex
            } else if let Some(r) = rest.strip_prefix("!=") {
                rest = r;
                MatchOp::NotEqual
            } else if let Some(r) = rest.strip_prefix('=') {
                rest = r;
                MatchOp::Equal
            } else {
                return Err(format!(
                    "{text:?}: label {label} has no operator (=, !=, =~, !~)"
                ));
            };
            rest = rest.trim_start();
            let quote = rest
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '\'')
                .ok_or_else(|| format!("{text:?}: the value of label {label} is not quoted"))?;
            rest = &rest[1..];
            let mut value = String::new();
            let mut closed = None;
            let mut chars = rest.char_indices();
            while let Some((at, c)) = chars.next() {
                if c == quote {
                    closed = Some(at);
                    break;
                }
                if c == '\\' {
                    match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, escaped)) => value.push(escaped),
                        None => break,
                    }
                } else {
                    value.push(c);
                }
            }
            let closed = closed
                .ok_or_else(|| format!("{text:?}: the value of label {label} is not closed"))?;
            selector.matchers.push(Matcher::new(label, op, &value)?);
            rest = rest[closed + 1..].trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            } else if !rest.is_empty() {
                return Err(format!("{text:?}: expected , between label matchers"));
            }
        }
        Ok(selector)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.matchers.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (index, matcher) in self.matchers.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            let escaped = matcher.value.replace('\\', "\\\\").replace('"', "\\\"");
            write!(f, "{}{}\"{}\"", matcher.label, matcher.op.as_str(), escaped)?;
        }
        f.write_str("}")
    }
}

impl Serialize for Selector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::quantity::parse_scalar(
            deserializer,
            "a selector such as name{label=\"value\"}",
            Selector::parse,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn matches_like_prometheus() {
        let selector =
            Selector::parse(r#"floodgate_requests_total{code!="error", api=~"grpc|http"}"#)
                .expect("parses");
        assert!(selector.matches(
            "floodgate_requests_total",
            &labels(&[("api", "grpc"), ("code", "ok")])
        ));
        assert!(!selector.matches(
            "floodgate_requests_total",
            &labels(&[("api", "grpc"), ("code", "error")])
        ));
        assert!(!selector.matches(
            "floodgate_requests_total",
            &labels(&[("api", "grpcx"), ("code", "ok")])
        ));
        assert!(!selector.matches("other", &labels(&[("api", "grpc")])));
        assert_eq!(
            selector.to_string(),
            r#"floodgate_requests_total{code!="error",api=~"grpc|http"}"#
        );
        assert_eq!(Selector::parse(&selector.to_string()), Ok(selector));
        let missing = Selector::parse(r#"x{code!="error"}"#).expect("parses");
        assert!(missing.matches("x", &[]));
    }

    #[test]
    fn refuses_promql_and_typos() {
        for bad in [
            "rate(x[5m])",
            "sum(x)",
            "x{a=b}",
            "x{a~\"b\"}",
            "x{a=\"b\"",
            "x{=\"b\"}",
            "x{a=~\"(\"}",
            "",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }
}
