//! Alertmanager's webhook (payload version "4") → ticket drafts.
//!
//! Each *firing* alert becomes a draft of type `incident`, source
//! `alertmanager`:
//! - ticket fingerprint `alertmanager:<alert fingerprint>` (Alertmanager's
//!   fingerprint is the hash of the alert's label set, so one alert is one
//!   ticket whichever group or receiver it arrives through);
//! - idempotency key `alertmanager:` + sha256(groupKey, fingerprint,
//!   startsAt): the same notification delivered twice (Alertmanager retries,
//!   and repeats every `repeat_interval`) changes nothing, while a new
//!   firing episode of the same alert (a new `startsAt`) counts as an
//!   occurrence or reopens a resolved ticket;
//! - priority from the `severity` label (critical/page → critical,
//!   error/high → high, warning → medium, info/low → low, else medium);
//! - description from the `summary` annotation, else `description`, else
//!   the alert name; context: the alert and the group (receiver, groupKey,
//!   externalURL, generatorURL).
//!
//! Resolved alerts are counted and not filed: a ticket is closed by its
//! verification, not by the alert going quiet.

use crate::tickets::{bound_context, NewTicket, Objective, Priority, Source, TicketType};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// The most alerts one payload may carry.
pub const MAX_ALERTS_PER_PAYLOAD: usize = 1000;
/// The largest payload accepted, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub version: String,
    pub group_key: String,
    pub status: String,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    #[serde(default)]
    pub truncated_alerts: u64,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// A draft with its idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertIntake {
    pub intake_key: String,
    pub draft: NewTicket,
}

/// What a payload turned into.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub intakes: Vec<AlertIntake>,
    /// Resolved alerts (not filed).
    pub resolved: usize,
}

/// A refused payload, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for PayloadError {}

/// Parses a webhook body (JSON), naming the field of any problem.
pub fn parse(body: &[u8]) -> Result<Payload, PayloadError> {
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError {
            field: String::new(),
            message: format!("{} bytes, more than {MAX_PAYLOAD_BYTES}", body.len()),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let payload: Payload =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| PayloadError {
            field: error.path().to_string(),
            message: error.inner().to_string(),
        })?;
    Ok(payload)
}

fn digest_hex(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn priority(severity: Option<&str>) -> Priority {
    match severity.map(str::to_ascii_lowercase).as_deref() {
        Some("critical" | "page" | "p1") => Priority::Critical,
        Some("error" | "high" | "major" | "p2") => Priority::High,
        Some("info" | "low" | "none" | "p4") => Priority::Low,
        _ => Priority::Medium,
    }
}

/// Turns a payload into drafts.
pub fn convert(payload: &Payload) -> Result<Conversion, PayloadError> {
    let invalid = |field: &str, message: String| PayloadError {
        field: field.to_owned(),
        message,
    };
    if payload.version != "4" {
        return Err(invalid(
            "version",
            format!("{:?} is not supported (expected \"4\")", payload.version),
        ));
    }
    if payload.group_key.is_empty() {
        return Err(invalid("groupKey", "must not be empty".into()));
    }
    if payload.alerts.len() > MAX_ALERTS_PER_PAYLOAD {
        return Err(invalid(
            "alerts",
            format!(
                "{} alerts, more than {MAX_ALERTS_PER_PAYLOAD}",
                payload.alerts.len()
            ),
        ));
    }
    let mut out = Conversion {
        intakes: Vec::new(),
        resolved: 0,
    };
    for (index, alert) in payload.alerts.iter().enumerate() {
        match alert.status.as_str() {
            "firing" => {}
            "resolved" => {
                out.resolved += 1;
                continue;
            }
            other => {
                return Err(invalid(
                    &format!("alerts[{index}].status"),
                    format!("{other:?} is not firing or resolved"),
                ))
            }
        }
        let fingerprint = alert.fingerprint.trim();
        if fingerprint.is_empty() || fingerprint.len() > 128 {
            return Err(invalid(
                &format!("alerts[{index}].fingerprint"),
                "must be 1 to 128 bytes".into(),
            ));
        }
        // Part of the alert's identity (an occurrence): a time, or absent.
        if !alert.starts_at.is_empty() {
            if let Err(error) = floodgate_contract::time::parse_rfc3339_ms(&alert.starts_at) {
                return Err(invalid(
                    &format!("alerts[{index}].startsAt"),
                    error.to_string(),
                ));
            }
        }
        let label = |name: &str| {
            alert
                .labels
                .get(name)
                .or_else(|| payload.common_labels.get(name))
        };
        let annotation = |name: &str| {
            alert
                .annotations
                .get(name)
                .or_else(|| payload.common_annotations.get(name))
        };
        let alertname = label("alertname").map_or("alert", String::as_str);
        let description = annotation("summary")
            .or_else(|| annotation("description"))
            .cloned()
            .unwrap_or_else(|| format!("Alert {alertname} is firing"));
        let description: String = description
            .chars()
            .take(crate::tickets::MAX_DESCRIPTION_BYTES / 4)
            .collect();
        let context = bound_context(serde_json::json!({
            "alertmanager": {
                "receiver": payload.receiver,
                "group_key": payload.group_key,
                "group_labels": payload.group_labels,
                "external_url": payload.external_url,
            },
            "alert": alert,
        }));
        out.intakes.push(AlertIntake {
            intake_key: format!(
                "alertmanager:{}",
                digest_hex(&[&payload.group_key, fingerprint, &alert.starts_at])
            ),
            draft: NewTicket {
                kind: TicketType::Incident,
                objective: Objective { description },
                acceptance_criteria: Vec::new(),
                constraints: Vec::new(),
                context,
                source: Source::Alertmanager,
                priority: priority(label("severity").map(String::as_str)),
                fingerprint: format!("alertmanager:{fingerprint}"),
            },
        });
    }
    Ok(out)
}
