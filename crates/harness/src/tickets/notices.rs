//! Expected-change notices: "expect this change", said ahead of a planned
//! change (a tenant's launch, a migration) so that it does not page
//! (docs/adr/0011-expected-change-notices.md).
//!
//! A [`Notice`] names what it covers with [`NoticeMatcher`]s over the
//! labels a signal carries ([`LabelName`]), a window (`starts_ms` to
//! `ends_ms`), a reason and an author, and optionally a `max_factor`: how
//! far the matched series may move from its level when the notice starts
//! before the notice stops covering it. Its state follows from time
//! ([`NoticeState`]): pending, active, expired; a notice can be expired
//! early.
//!
//! Matching ([`Notice::matches`]): a notice matches a signal when every
//! matcher on a label the signal carries matches it, and at least one
//! matcher does. An anomaly's signal carries `anomaly` (the detector's
//! name), `metric` (its series' metric name), and `service`, `limit`,
//! `tenant` when its selector pins them with an equality matcher
//! (`instance` or `service` for `service`). SLO and invariant tickets are
//! never suppressed: a planned change that breaks an SLO still pages.
//!
//! Everything here is pure. [`NoticeEvent`] and [`apply`] are the ledger's
//! view of a notice, as [`crate::tickets::TicketEvent`] is of a ticket:
//! the store appends every event, and `ledger::verify` rebuilds the
//! notices table from them.

use crate::quantity::{format_duration_ms, trim_float, DAY_MS};
use crate::tickets::FieldError;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Matchers one notice may hold.
pub const MAX_MATCHERS: usize = 16;
/// The longest matcher value or regex, in bytes.
pub const MAX_MATCHER_VALUE_BYTES: usize = 256;
/// The compiled size limit of one matcher regex, in bytes (the regex
/// crate's `size_limit`): a few alternations of names, not a program.
pub const MAX_MATCHER_REGEX_BYTES: usize = 64 * 1024;
/// The longest window a notice may cover: a planned change is announced
/// for days at most; a longer silence is a change to the objectives.
pub const MAX_WINDOW_MS: u64 = 7 * DAY_MS;
/// How far ahead a notice may start: a notice is for a change planned
/// within a month, not a standing calendar.
pub const MAX_LEAD_MS: u64 = 30 * DAY_MS;
/// The longest reason, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// The longest author (`human:alice`), in bytes.
pub const MAX_AUTHOR_BYTES: usize = 128;
/// Notices not yet expired the store keeps at once: each tick matches
/// every anomaly against all of them.
pub const MAX_LIVE_NOTICES: usize = 1000;
/// The largest `max_factor`: beyond three orders of magnitude a band is
/// not a widened threshold but a silence (leave `max_factor` out for
/// that).
pub const MAX_FACTOR: f64 = 1000.0;

/// The labels a matcher may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelName {
    Service,
    Limit,
    Tenant,
    Metric,
    Anomaly,
    Slo,
    Invariant,
}

impl LabelName {
    pub const ALL: [LabelName; 7] = [
        LabelName::Service,
        LabelName::Limit,
        LabelName::Tenant,
        LabelName::Metric,
        LabelName::Anomaly,
        LabelName::Slo,
        LabelName::Invariant,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            LabelName::Service => "service",
            LabelName::Limit => "limit",
            LabelName::Tenant => "tenant",
            LabelName::Metric => "metric",
            LabelName::Anomaly => "anomaly",
            LabelName::Slo => "slo",
            LabelName::Invariant => "invariant",
        }
    }

    pub fn parse(text: &str) -> Option<LabelName> {
        LabelName::ALL
            .into_iter()
            .find(|name| name.as_str() == text)
    }
}

impl fmt::Display for LabelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One matcher as written: `{name, value}` (exact) or `{name, regex}`
/// (anchored: the whole label value must match).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeMatcher {
    pub name: LabelName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

impl NoticeMatcher {
    /// Checks the matcher and compiles its regex (if any).
    fn compile(&self, field: &str) -> Result<Option<Regex>, FieldError> {
        let invalid = |path: String, message: String| FieldError { path, message };
        let (text, key) = match (&self.value, &self.regex) {
            (Some(value), None) => (value, "value"),
            (None, Some(regex)) => (regex, "regex"),
            _ => {
                return Err(invalid(
                    field.to_owned(),
                    "give exactly one of value (exact) or regex".into(),
                ))
            }
        };
        if text.is_empty() || text.len() > MAX_MATCHER_VALUE_BYTES {
            return Err(invalid(
                format!("{field}.{key}"),
                format!("must be 1 to {MAX_MATCHER_VALUE_BYTES} bytes"),
            ));
        }
        if key == "value" {
            return Ok(None);
        }
        regex::RegexBuilder::new(&format!("^(?:{text})$"))
            .size_limit(MAX_MATCHER_REGEX_BYTES)
            .build()
            .map(Some)
            .map_err(|error| {
                invalid(
                    format!("{field}.regex"),
                    format!("{text:?} is not a valid regex: {error}"),
                )
            })
    }

    /// `tenant=acme`, `anomaly=~request_.*`.
    pub fn text(&self) -> String {
        match (&self.value, &self.regex) {
            (Some(value), _) => format!("{}={value}", self.name),
            (None, Some(regex)) => format!("{}=~{regex}", self.name),
            (None, None) => format!("{}=?", self.name),
        }
    }
}

/// Who expired a notice before its end, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyExpiry {
    pub time_ms: u64,
    pub actor: String,
    pub reason: String,
}

/// An expected change, as stored (the store assigns `id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// `N-0001`, …
    pub id: String,
    pub matchers: Vec<NoticeMatcher>,
    pub starts_ms: u64,
    pub ends_ms: u64,
    pub reason: String,
    /// `KIND:NAME`: `human:alice`, `deploy:ci`, `agent:runbook`.
    pub author: String,
    /// How far (a factor above 1) the matched series may move from its
    /// level when the notice starts and still be covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_factor: Option<f64>,
    pub created_ms: u64,
    /// Set when expired before `ends_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<EarlyExpiry>,
    /// Anomaly episodes it kept from filing a ticket.
    #[serde(default)]
    pub suppressed: u64,
    /// Anomaly episodes that went beyond its `max_factor` (their tickets
    /// name it).
    #[serde(default)]
    pub exceeded: u64,
}

/// Where a notice stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeState {
    /// Its window has not begun.
    Pending,
    /// It covers what it matches now.
    Active,
    /// Its window ended, or it was expired early.
    Expired,
}

impl NoticeState {
    pub const ALL: [NoticeState; 3] = [
        NoticeState::Pending,
        NoticeState::Active,
        NoticeState::Expired,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            NoticeState::Pending => "pending",
            NoticeState::Active => "active",
            NoticeState::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<NoticeState> {
        NoticeState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

impl fmt::Display for NoticeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Notice {
    /// When it stops covering: its end, or its early expiry.
    pub fn end_ms(&self) -> u64 {
        match &self.expired {
            Some(expiry) => expiry.time_ms.min(self.ends_ms),
            None => self.ends_ms,
        }
    }

    pub fn state(&self, now_ms: u64) -> NoticeState {
        if now_ms >= self.end_ms() {
            NoticeState::Expired
        } else if now_ms < self.starts_ms {
            NoticeState::Pending
        } else {
            NoticeState::Active
        }
    }

    /// The notice as the API answers it: the stored document and its
    /// `state` at `now_ms`.
    pub fn view(&self, now_ms: u64) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let serde_json::Value::Object(map) = &mut value {
            map.insert(
                "state".into(),
                serde_json::Value::String(self.state(now_ms).as_str().to_owned()),
            );
        }
        value
    }

    /// The matchers as text: `tenant=acme, metric=floodgate_requests_total`.
    pub fn matchers_text(&self) -> String {
        self.matchers
            .iter()
            .map(NoticeMatcher::text)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A notice to create (`POST /v1/notices`): everything but what the store
/// assigns. `starts_ms` defaults to now; the end is `ends_ms` or
/// `duration_ms` after the start (exactly one of the two).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeDraft {
    pub matchers: Vec<NoticeMatcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub reason: String,
    pub author: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_factor: Option<f64>,
}

fn field(path: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Checks `KIND:NAME`: a lowercase kind (`human`, `deploy`, `agent`, …)
/// and a name without blanks.
pub fn check_author(author: &str) -> Result<(), FieldError> {
    let expected = || {
        field(
            "author",
            format!("{author:?} is not KIND:NAME (e.g. \"human:alice\", \"deploy:ci\")"),
        )
    };
    if author.len() > MAX_AUTHOR_BYTES {
        return Err(field(
            "author",
            format!("longer than {MAX_AUTHOR_BYTES} bytes"),
        ));
    }
    let (kind, name) = author.split_once(':').ok_or_else(expected)?;
    let kind_ok = !kind.is_empty()
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    let name_ok = !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if kind_ok && name_ok {
        Ok(())
    } else {
        Err(expected())
    }
}

impl NoticeDraft {
    /// Validates the draft at `now_ms` and answers the notice it makes
    /// (its `id` empty: the store assigns it). Errors name the field.
    pub fn validate(&self, now_ms: u64) -> Result<Notice, FieldError> {
        if self.matchers.is_empty() || self.matchers.len() > MAX_MATCHERS {
            return Err(field(
                "matchers",
                format!(
                    "give 1 to {MAX_MATCHERS} matchers ({} given)",
                    self.matchers.len()
                ),
            ));
        }
        for (index, matcher) in self.matchers.iter().enumerate() {
            matcher.compile(&format!("matchers[{index}]"))?;
        }
        let starts_ms = self.starts_ms.unwrap_or(now_ms);
        if starts_ms > now_ms.saturating_add(MAX_LEAD_MS) {
            return Err(field(
                "starts_ms",
                format!(
                    "starts more than {} from now",
                    format_duration_ms(MAX_LEAD_MS)
                ),
            ));
        }
        let ends_ms = match (self.ends_ms, self.duration_ms) {
            (Some(ends_ms), None) => ends_ms,
            (None, Some(duration_ms)) => starts_ms.saturating_add(duration_ms),
            (Some(_), Some(_)) => {
                return Err(field(
                    "duration_ms",
                    "give ends_ms or duration_ms, not both",
                ))
            }
            (None, None) => {
                return Err(field(
                    "ends_ms",
                    "required (or duration_ms): when does the change stop being expected?",
                ))
            }
        };
        if ends_ms <= starts_ms {
            return Err(field(
                "ends_ms",
                format!("{ends_ms} is not after starts_ms {starts_ms}"),
            ));
        }
        if ends_ms - starts_ms > MAX_WINDOW_MS {
            return Err(field(
                "ends_ms",
                format!(
                    "the window is {}, longer than {}",
                    format_duration_ms(ends_ms - starts_ms),
                    format_duration_ms(MAX_WINDOW_MS)
                ),
            ));
        }
        if ends_ms <= now_ms {
            return Err(field(
                "ends_ms",
                format!("{ends_ms} is already past (now is {now_ms})"),
            ));
        }
        if self.reason.trim().is_empty() || self.reason.len() > MAX_REASON_BYTES {
            return Err(field(
                "reason",
                format!("must be 1 to {MAX_REASON_BYTES} bytes: say what change is expected"),
            ));
        }
        check_author(&self.author)?;
        if let Some(factor) = self.max_factor {
            if !(factor.is_finite() && factor > 1.0 && factor <= MAX_FACTOR) {
                return Err(field(
                    "max_factor",
                    format!(
                        "{} must be above 1 and at most {} (how many times its level the series may move)",
                        trim_float(factor),
                        trim_float(MAX_FACTOR)
                    ),
                ));
            }
        }
        Ok(Notice {
            id: String::new(),
            matchers: self.matchers.clone(),
            starts_ms,
            ends_ms,
            reason: self.reason.clone(),
            author: self.author.clone(),
            max_factor: self.max_factor,
            created_ms: now_ms,
            expired: None,
            suppressed: 0,
            exceeded: 0,
        })
    }
}

// ---------------------------------------------------------------------------
// matching

/// The labels one would-be ticket carries, in [`LabelName`] order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signal {
    labels: Vec<(LabelName, String)>,
}

impl Signal {
    /// A signal with these labels (a later value of a name replaces an
    /// earlier one).
    pub fn new(labels: impl IntoIterator<Item = (LabelName, String)>) -> Signal {
        let mut signal = Signal::default();
        for (name, value) in labels {
            signal.set(name, value);
        }
        signal
    }

    pub fn set(&mut self, name: LabelName, value: String) {
        match self.labels.binary_search_by_key(&name, |(n, _)| *n) {
            Ok(at) => self.labels[at].1 = value,
            Err(at) => self.labels.insert(at, (name, value)),
        }
    }

    pub fn get(&self, name: LabelName) -> Option<&str> {
        self.labels
            .binary_search_by_key(&name, |(n, _)| *n)
            .ok()
            .map(|at| self.labels[at].1.as_str())
    }

    pub fn labels(&self) -> &[(LabelName, String)] {
        &self.labels
    }
}

/// A notice with its regexes compiled, ready to match.
#[derive(Debug, Clone)]
pub struct CompiledNotice {
    pub notice: Notice,
    regexes: Vec<Option<Regex>>,
}

impl CompiledNotice {
    /// Compiles a stored notice; a notice whose matchers no longer compile
    /// (never, for one the store accepted) is refused naming the field.
    pub fn new(notice: Notice) -> Result<CompiledNotice, FieldError> {
        let regexes = notice
            .matchers
            .iter()
            .enumerate()
            .map(|(index, matcher)| matcher.compile(&format!("matchers[{index}]")))
            .collect::<Result<_, _>>()?;
        Ok(CompiledNotice { notice, regexes })
    }

    /// Every matcher on a label the signal carries matches, and at least
    /// one does.
    pub fn matches(&self, signal: &Signal) -> bool {
        let mut any = false;
        for (matcher, regex) in self.notice.matchers.iter().zip(&self.regexes) {
            let Some(value) = signal.get(matcher.name) else {
                continue;
            };
            let hit = match (regex, &matcher.value) {
                (Some(regex), _) => regex.is_match(value),
                (None, Some(exact)) => exact == value,
                (None, None) => false,
            };
            if !hit {
                return false;
            }
            any = true;
        }
        any
    }
}

/// The band a `max_factor` allows around a level: `[level / F, level × F]`
/// (ordered for a negative level; a level of 0 allows only 0).
pub fn band(level: f64, factor: f64) -> (f64, f64) {
    let (a, b) = (level / factor, level * factor);
    (a.min(b), a.max(b))
}

/// Whether `value` lies in [`band`]`(level, factor)`.
pub fn within_band(value: f64, level: f64, factor: f64) -> bool {
    let (low, high) = band(level, factor);
    (low..=high).contains(&value)
}

// ---------------------------------------------------------------------------
// the ledger's view

/// What happened to a notice: the unit of the ledger (`notice.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NoticeEvent {
    Created {
        notice: Box<Notice>,
    },
    /// Expired before its end by a person or system.
    Expired {
        actor: String,
        reason: String,
    },
    /// It kept an anomaly episode from filing a ticket (once per notice ×
    /// detector episode, never per tick).
    Suppressed {
        anomaly: String,
        detail: serde_json::Value,
    },
    /// An anomaly episode it matched went beyond its `max_factor`: the
    /// ticket was filed, naming it (once per episode).
    Exceeded {
        anomaly: String,
        detail: serde_json::Value,
    },
}

impl NoticeEvent {
    /// The ledger `kind` of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            NoticeEvent::Created { .. } => "notice.created",
            NoticeEvent::Expired { .. } => "notice.expired",
            NoticeEvent::Suppressed { .. } => "notice.suppressed",
            NoticeEvent::Exceeded { .. } => "notice.exceeded",
        }
    }
}

/// Folds an event into a notice (`None` before its creation); refuses an
/// event that cannot happen (which `ledger::verify` reports).
pub fn apply(notice: Option<Notice>, event: &NoticeEvent, time_ms: u64) -> Result<Notice, String> {
    match (notice, event) {
        (None, NoticeEvent::Created { notice }) => Ok((**notice).clone()),
        (Some(notice), NoticeEvent::Created { .. }) => {
            Err(format!("{} is created twice", notice.id))
        }
        (None, _) => Err("an event about a notice never created".into()),
        (Some(mut notice), NoticeEvent::Expired { actor, reason }) => {
            if notice.state(time_ms) == NoticeState::Expired {
                return Err(format!("{} is already expired", notice.id));
            }
            notice.expired = Some(EarlyExpiry {
                time_ms,
                actor: actor.clone(),
                reason: reason.clone(),
            });
            Ok(notice)
        }
        (Some(mut notice), NoticeEvent::Suppressed { .. }) => {
            notice.suppressed += 1;
            Ok(notice)
        }
        (Some(mut notice), NoticeEvent::Exceeded { .. }) => {
            notice.exceeded += 1;
            Ok(notice)
        }
    }
}

/// `N-0001` for 1.
pub fn notice_id(number: u64) -> String {
    format!("N-{number:04}")
}

/// 1 for `N-0001`.
pub fn notice_number(id: &str) -> Option<u64> {
    id.strip_prefix("N-")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(name: LabelName, value: &str) -> NoticeMatcher {
        NoticeMatcher {
            name,
            value: Some(value.into()),
            regex: None,
        }
    }

    fn regex(name: LabelName, regex: &str) -> NoticeMatcher {
        NoticeMatcher {
            name,
            value: None,
            regex: Some(regex.into()),
        }
    }

    fn draft(matchers: Vec<NoticeMatcher>) -> NoticeDraft {
        NoticeDraft {
            matchers,
            starts_ms: None,
            ends_ms: None,
            duration_ms: Some(2 * crate::quantity::HOUR_MS),
            reason: "acme launches".into(),
            author: "human:alice".into(),
            max_factor: None,
        }
    }

    fn compiled(matchers: Vec<NoticeMatcher>) -> CompiledNotice {
        CompiledNotice::new(draft(matchers).validate(1_000).expect("valid")).expect("compiles")
    }

    fn anomaly_signal() -> Signal {
        Signal::new([
            (LabelName::Anomaly, "request_rate".to_owned()),
            (LabelName::Metric, "floodgate_requests_total".to_owned()),
        ])
    }

    #[test]
    fn matching_needs_every_carried_label_and_at_least_one() {
        use LabelName::*;
        let signal = anomaly_signal();
        for (matchers, expected) in [
            // One label carried and matching.
            (vec![matcher(Anomaly, "request_rate")], true),
            // A label the signal does not carry is not judged…
            (
                vec![
                    matcher(Tenant, "acme"),
                    matcher(Metric, "floodgate_requests_total"),
                ],
                true,
            ),
            // …but a notice must match on something.
            (vec![matcher(Tenant, "acme")], false),
            (vec![matcher(Slo, "availability")], false),
            // Every carried label must match.
            (
                vec![matcher(Anomaly, "request_rate"), matcher(Metric, "other")],
                false,
            ),
            // Exact means exact; regexes are anchored.
            (vec![matcher(Anomaly, "request")], false),
            (vec![regex(Anomaly, "request_.*")], true),
            (vec![regex(Anomaly, "request")], false),
            (
                vec![regex(Metric, "floodgate_(requests|errors)_total")],
                true,
            ),
        ] {
            let notice = compiled(matchers.clone());
            assert_eq!(notice.matches(&signal), expected, "{matchers:?}");
        }
        let per_service = Signal::new([
            (Anomaly, "request_rate".to_owned()),
            (Service, "edge-1".to_owned()),
        ]);
        assert!(compiled(vec![regex(Service, "edge-.*")]).matches(&per_service));
        assert!(!compiled(vec![matcher(Service, "edge-2")]).matches(&per_service));
    }

    #[test]
    fn the_factor_band_surrounds_the_level() {
        assert_eq!(band(100.0, 10.0), (10.0, 1000.0));
        assert!(within_band(500.0, 100.0, 10.0));
        assert!(within_band(1000.0, 100.0, 10.0));
        assert!(within_band(10.0, 100.0, 10.0));
        assert!(!within_band(5000.0, 100.0, 10.0));
        assert!(!within_band(9.9, 100.0, 10.0));
        // A negative level: the band is ordered.
        assert_eq!(band(-100.0, 2.0), (-200.0, -50.0));
        // A level of 0 has no relative band.
        assert!(within_band(0.0, 0.0, 10.0));
        assert!(!within_band(0.1, 0.0, 10.0));
        assert!(!within_band(f64::NAN, 100.0, 10.0));
    }

    #[test]
    fn state_follows_time_and_early_expiry() {
        let mut notice = draft(vec![matcher(LabelName::Tenant, "acme")])
            .validate(1_000)
            .expect("valid");
        notice.starts_ms = 5_000;
        notice.ends_ms = 9_000;
        assert_eq!(notice.state(4_999), NoticeState::Pending);
        assert_eq!(notice.state(5_000), NoticeState::Active);
        assert_eq!(notice.state(8_999), NoticeState::Active);
        assert_eq!(notice.state(9_000), NoticeState::Expired);
        let expired = apply(
            Some(notice.clone()),
            &NoticeEvent::Expired {
                actor: "human:bob".into(),
                reason: "launch postponed".into(),
            },
            6_000,
        )
        .expect("expires");
        assert_eq!(expired.state(5_999), NoticeState::Active);
        assert_eq!(expired.state(6_000), NoticeState::Expired);
        assert_eq!(expired.end_ms(), 6_000);
        assert!(apply(
            Some(expired),
            &NoticeEvent::Expired {
                actor: "x:y".into(),
                reason: "again".into()
            },
            7_000
        )
        .is_err());
        assert_eq!(notice.view(5_000)["state"], "active");
    }

    #[test]
    fn bad_drafts_are_refused_naming_the_field() {
        use LabelName::*;
        let now = 1_000_000;
        let check = |draft: NoticeDraft, path: &str, needle: &str| {
            let error = draft.validate(now).expect_err(path);
            assert_eq!(error.path, path, "{error}");
            assert!(error.message.contains(needle), "{error}");
        };
        check(draft(vec![]), "matchers", "1 to 16");
        check(
            draft(vec![matcher(Tenant, "a"); MAX_MATCHERS + 1]),
            "matchers",
            "17 given",
        );
        check(
            draft(vec![matcher(Tenant, "")]),
            "matchers[0].value",
            "1 to",
        );
        check(
            draft(vec![matcher(Tenant, "a"), regex(Anomaly, "(")]),
            "matchers[1].regex",
            "not a valid regex",
        );
        let both = NoticeMatcher {
            name: Tenant,
            value: Some("a".into()),
            regex: Some("a".into()),
        };
        check(draft(vec![both]), "matchers[0]", "exactly one");
        let ok = || draft(vec![matcher(Tenant, "acme")]);
        check(
            NoticeDraft {
                duration_ms: None,
                ..ok()
            },
            "ends_ms",
            "required",
        );
        check(
            NoticeDraft {
                ends_ms: Some(now + 5),
                ..ok()
            },
            "duration_ms",
            "not both",
        );
        check(
            NoticeDraft {
                duration_ms: None,
                starts_ms: Some(now + 10),
                ends_ms: Some(now + 10),
                ..ok()
            },
            "ends_ms",
            "not after",
        );
        check(
            NoticeDraft {
                duration_ms: Some(MAX_WINDOW_MS + 1),
                ..ok()
            },
            "ends_ms",
            "longer than 7d",
        );
        check(
            NoticeDraft {
                starts_ms: Some(now - 10_000),
                duration_ms: Some(5_000),
                ..ok()
            },
            "ends_ms",
            "already past",
        );
        check(
            NoticeDraft {
                starts_ms: Some(now + MAX_LEAD_MS + 1),
                ..ok()
            },
            "starts_ms",
            "30d",
        );
        check(
            NoticeDraft {
                reason: "  ".into(),
                ..ok()
            },
            "reason",
            "1 to",
        );
        for author in ["alice", "Human:alice", ":alice", "human:", "human:al ice"] {
            check(
                NoticeDraft {
                    author: author.into(),
                    ..ok()
                },
                "author",
                "KIND:NAME",
            );
        }
        for factor in [1.0, 0.5, f64::NAN, f64::INFINITY, MAX_FACTOR + 1.0] {
            check(
                NoticeDraft {
                    max_factor: Some(factor),
                    ..ok()
                },
                "max_factor",
                "above 1",
            );
        }
        let notice = NoticeDraft {
            max_factor: Some(10.0),
            ..ok()
        }
        .validate(now)
        .expect("valid");
        assert_eq!(
            (notice.starts_ms, notice.ends_ms, notice.created_ms),
            (now, now + 2 * crate::quantity::HOUR_MS, now)
        );
    }
}
