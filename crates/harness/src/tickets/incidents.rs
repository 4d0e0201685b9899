//! Incidents: tickets with a common cause grouped under one owner
//! (docs/adr/0016-incidents-and-collisions.md).
//!
//! Every ticket may name its *causes*: short strings saying what it is
//! about, `value:DOMAIN/KEY=VALUE` (one descriptor value), `limit:DOMAIN/NAME`
//! (one limit), `instance:NAME` (one service instance), `backend:KIND` (the
//! counter backend, while it is down). The harness derives
//! them from the evidence when it files a violation ([`violation_causes`]);
//! a human or an alert may give them in `context.causes`. A new ticket that
//! shares a cause with an active ticket filed within [`INCIDENT_WINDOW_MS`]
//! joins that ticket's incident ([`owner_for`]): it is linked, stays open,
//! and no agent is handed it while the owner is active. When the owner
//! ends, its members follow ([`follow`]): resolved with it, escalated with
//! it, or released to be worked on their own when it failed or was
//! cancelled. A human may link or unlink a ticket explicitly.
//!
//! Everything here is pure: the store applies it in the intake and
//! command transactions.

use crate::observe::evidence::Evidence;
use crate::observe::selector::Selector;
use crate::quantity::HOUR_MS;
use crate::tickets::{NewTicket, Source, Ticket, TicketState, TicketType};

/// How long after an owner was filed a ticket with a common cause still
/// joins its incident: long enough for the consequences of one fault (a
/// rise, then the rejections it causes, then the anomaly of the fix) and
/// short enough that a fault of the same tenant hours later is its own
/// incident.
pub const INCIDENT_WINDOW_MS: u64 = 2 * HOUR_MS;
/// Causes one ticket carries at most.
pub const MAX_CAUSES: usize = 8;
/// The longest cause, in bytes.
pub const MAX_CAUSE_BYTES: usize = 256;

/// The causes a ticket's context names (`context.causes`), bounded: at
/// most [`MAX_CAUSES`] non-empty strings of at most [`MAX_CAUSE_BYTES`];
/// others are ignored.
pub fn causes_of(context: &serde_json::Value) -> Vec<String> {
    let mut causes: Vec<String> = context
        .get("causes")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .filter(|cause| !cause.is_empty() && cause.len() <= MAX_CAUSE_BYTES)
        .map(str::to_owned)
        .take(MAX_CAUSES)
        .collect();
    causes.sort();
    causes.dedup();
    causes
}

/// What a violation is about, from the evidence at the moment it fires:
///
/// - an SLO burn: the most rejected value among the limits the SLO counts
///   (the `limit` and `domain` matchers of its `total` selector), and that
///   limit;
/// - an anomaly that rose above its reference: the value with the most
///   admitted traffic (the likeliest source of the rise); a fall names
///   nothing (the heaviest value does not explain a drop);
/// - an invariant of one instance: that instance;
/// - any of them while a remote counter backend is down (for an
///   invariant: the instance's own): `backend:KIND` (one outage of a
///   backend the fleet shares is one incident).
///
/// Empty when the evidence says nothing: such a ticket is its own
/// incident.
pub fn violation_causes(
    draft: &NewTicket,
    evidence: Option<&Evidence>,
    slo_total: Option<&Selector>,
) -> Vec<String> {
    let mut causes = Vec::new();
    match draft.source {
        Source::Slo => {
            let counted = |domain: &str, limit: &str| {
                slo_total.is_none_or(|selector| {
                    selector
                        .matchers
                        .iter()
                        .all(|matcher| match matcher.label.as_str() {
                            "limit" => matcher.matches(Some(limit)),
                            "domain" => matcher.matches(Some(domain)),
                            _ => true,
                        })
                })
            };
            if let Some(value) = evidence.and_then(|evidence| {
                evidence
                    .rejected
                    .iter()
                    .find(|value| counted(&value.domain, &value.limit))
            }) {
                causes.push(format!("value:{}/{}", value.domain, value.value));
                causes.push(format!("limit:{}/{}", value.domain, value.limit));
            }
        }
        Source::Anomaly => {
            let detail = &draft.context["detail"];
            let rose = match (detail["value"].as_f64(), detail["median"].as_f64()) {
                (Some(value), Some(median)) => value > median,
                _ => false,
            };
            if let Some(value) = evidence
                .and_then(|evidence| evidence.heaviest.as_ref())
                .filter(|_| rose)
            {
                causes.push(format!("value:{}/{}", value.domain, value.value));
            }
        }
        Source::Invariant => {
            if let Some(instance) = draft.context["instance"]
                .as_str()
                .filter(|instance| !instance.is_empty())
            {
                causes.push(format!("instance:{instance}"));
            }
        }
        _ => {}
    }
    // A shared counter backend that is down explains what fires with it:
    // the store invariants of every instance on it, and the rejections
    // and the fall in admitted traffic its failure policy causes. One
    // backend outage is one incident, owned by the ticket filed first
    // (the harness files invariants before burns and anomalies).
    if let Some(evidence) = evidence {
        let instance = draft.context["instance"].as_str();
        let down = evidence.instances.iter().find(|known| {
            known.store_backend != "memory"
                && !known.store_healthy
                && (draft.source != Source::Invariant || instance == Some(known.service.as_str()))
        });
        if let Some(down) = down {
            causes.push(format!("backend:{}", down.store_backend));
        }
    }
    causes.retain(|cause| cause.len() <= MAX_CAUSE_BYTES);
    causes
}

/// The ticket whose incident a new ticket with `causes` joins, and the
/// cause they share: the oldest of `candidates` that is active, owns its
/// incident (is no member itself), was filed within
/// [`INCIDENT_WINDOW_MS`] before `now_ms`, and names one of `causes`.
pub fn owner_for<'a>(
    causes: &[String],
    candidates: &'a [Ticket],
    now_ms: u64,
) -> Option<(&'a Ticket, String)> {
    if causes.is_empty() {
        return None;
    }
    candidates
        .iter()
        .filter(|ticket| {
            ticket.state.is_active()
                && ticket.incident.is_none()
                && now_ms.saturating_sub(ticket.created_ms) <= INCIDENT_WINDOW_MS
        })
        .filter_map(|ticket| {
            let theirs = causes_of(&ticket.context);
            causes
                .iter()
                .find(|cause| theirs.contains(cause))
                .map(|cause| (ticket, cause.clone()))
        })
        .min_by_key(|(ticket, _)| ticket.created_ms)
}

/// What a member does when its incident's owner moves to a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// The owner's fix was verified: the member is resolved with it.
    Resolve,
    /// The owner went to a human: so does the member.
    Escalate,
    /// The owner failed or was cancelled: the member leaves the incident
    /// and is worked on its own.
    Release,
    /// The owner is still active.
    Stay,
}

/// How a member follows its owner's move to `to`. An investigation (an
/// anomaly: "find out whether it matters") that goes to a human asks a
/// question; it does not answer the harm a member reports (an SLO burn,
/// a breached invariant), which is released to be worked on its own
/// rather than escalated unworked (ADR 0026).
pub const fn follow(to: TicketState, owner: TicketType, member: TicketType) -> Follow {
    match to {
        TicketState::Resolved => Follow::Resolve,
        TicketState::Escalated
            if matches!(owner, TicketType::Investigation)
                && !matches!(member, TicketType::Investigation) =>
        {
            Follow::Release
        }
        TicketState::Escalated => Follow::Escalate,
        TicketState::Failed | TicketState::Cancelled => Follow::Release,
        TicketState::Open
        | TicketState::Claimed
        | TicketState::InProgress
        | TicketState::Verifying => Follow::Stay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::{new_ticket, Objective, Priority, TicketType};
    use serde_json::json;

    fn draft(source: Source, context: serde_json::Value) -> NewTicket {
        NewTicket {
            kind: TicketType::Incident,
            objective: Objective {
                description: "something".into(),
            },
            acceptance_criteria: Vec::new(),
            constraints: Vec::new(),
            context,
            source,
            priority: Priority::High,
            fingerprint: "f".into(),
        }
    }

    fn evidence() -> Evidence {
        serde_json::from_value(json!({
            "at_ms": 0,
            "services": ["svc-a"],
            "limits": [],
            "rejecting": null,
            "rejected": [
                value("api", "throttle@org=big", "org=big", 9.0),
                value("api", "per_org", "org=small", 3.0),
            ],
            "busiest": null,
            "heaviest": value("api", "per_org", "org=big", 1.0),
            "instances": [],
            "config_changes": [],
        }))
        .expect("evidence")
    }

    fn value(domain: &str, limit: &str, value: &str, over: f64) -> serde_json::Value {
        json!({
            "domain": domain, "limit": limit, "value": value, "entries": [],
            "node": "descriptors[0]", "unit": "minute", "requests_per_unit": 10,
            "algorithm": "fixed_window", "key_requests_per_unit": 10, "own_limit": false,
            "hits_per_second": 1.0, "over_per_second": over, "admitted_per_second": 1.0,
            "demand_ratio": 1.0, "needed_ratio": 1.0, "share": 0.5,
        })
    }

    #[test]
    fn an_slo_names_the_most_rejected_value_among_the_limits_it_counts() {
        let evidence = evidence();
        let slo = draft(Source::Slo, json!({}));
        let everything = violation_causes(&slo, Some(&evidence), None);
        assert_eq!(
            everything,
            ["value:api/org=big", "limit:api/throttle@org=big"]
        );
        let selector = Selector::parse("floodgate_rate_limit_hits_total{limit!~\"throttle@.*\"}")
            .expect("selector");
        let counted = violation_causes(&slo, Some(&evidence), Some(&selector));
        assert_eq!(counted, ["value:api/org=small", "limit:api/per_org"]);
        assert!(violation_causes(&slo, None, Some(&selector)).is_empty());
    }

    #[test]
    fn an_anomaly_names_the_heaviest_value_only_when_it_rose() {
        let evidence = evidence();
        let rose = draft(
            Source::Anomaly,
            json!({"detail": {"value": 2.0, "median": 1.0}}),
        );
        assert_eq!(
            violation_causes(&rose, Some(&evidence), None),
            ["value:api/org=big"]
        );
        let fell = draft(
            Source::Anomaly,
            json!({"detail": {"value": 0.5, "median": 1.0}}),
        );
        assert!(violation_causes(&fell, Some(&evidence), None).is_empty());
        let invariant = draft(Source::Invariant, json!({"instance": "svc-b"}));
        assert_eq!(
            violation_causes(&invariant, Some(&evidence), None),
            ["instance:svc-b"]
        );
    }

    fn instance(service: &str, backend: &str, healthy: bool) -> serde_json::Value {
        json!({
            "service": service, "config_version": 1, "config_hash": "sha256:x",
            "store_backend": backend, "store_healthy": healthy, "store_used_ratio": 0.0,
            "store_failure_policy": "fail_closed", "store_steady_ms": 0,
            "store_outages_last_hour": 1, "store_transitions": [],
        })
    }

    #[test]
    fn a_remote_backend_that_is_down_is_the_cause_of_what_fires_with_it() {
        let mut evidence = evidence();
        evidence.instances = serde_json::from_value(json!([
            instance("svc-a", "redis", false),
            instance("svc-b", "redis", true),
        ]))
        .expect("instances");
        let on_a = draft(Source::Invariant, json!({"instance": "svc-a"}));
        assert_eq!(
            violation_causes(&on_a, Some(&evidence), None),
            ["instance:svc-a", "backend:redis"]
        );
        // svc-b's own backend is healthy: its invariant is its own.
        let on_b = draft(Source::Invariant, json!({"instance": "svc-b"}));
        assert_eq!(
            violation_causes(&on_b, Some(&evidence), None),
            ["instance:svc-b"]
        );
        // A burn and a fall in traffic while it is down: the backend too.
        let slo = draft(Source::Slo, json!({}));
        assert_eq!(
            violation_causes(&slo, Some(&evidence), None),
            [
                "value:api/org=big",
                "limit:api/throttle@org=big",
                "backend:redis"
            ]
        );
        let fell = draft(
            Source::Anomaly,
            json!({"detail": {"value": 0.5, "median": 1.0}}),
        );
        assert_eq!(
            violation_causes(&fell, Some(&evidence), None),
            ["backend:redis"]
        );
        // A memory store cannot go down; a healthy backend explains nothing.
        evidence.instances = serde_json::from_value(json!([
            instance("svc-a", "memory", false),
            instance("svc-b", "redis", true),
        ]))
        .expect("instances");
        assert!(violation_causes(&fell, Some(&evidence), None).is_empty());
    }

    fn ticket(id: &str, causes: &[&str], created_ms: u64, state: TicketState) -> Ticket {
        let mut ticket = new_ticket(
            id.into(),
            &draft(Source::Slo, json!({ "causes": causes })),
            None,
            created_ms,
        );
        ticket.state = state;
        ticket
    }

    #[test]
    fn a_ticket_joins_the_oldest_active_owner_sharing_a_cause_within_the_window() {
        let now = 10 * HOUR_MS;
        let candidates = vec![
            ticket(
                "INF-0001",
                &["value:api/org=a"],
                now - 3 * HOUR_MS,
                TicketState::InProgress,
            ),
            ticket(
                "INF-0002",
                &["value:api/org=a"],
                now - HOUR_MS,
                TicketState::Resolved,
            ),
            ticket(
                "INF-0003",
                &["value:api/org=a", "limit:api/x"],
                now - HOUR_MS,
                TicketState::Verifying,
            ),
            ticket(
                "INF-0004",
                &["limit:api/x"],
                now - 30 * 60_000,
                TicketState::Open,
            ),
        ];
        let causes = vec!["limit:api/x".to_owned(), "value:api/org=a".to_owned()];
        let (owner, shared) = owner_for(&causes, &candidates, now).expect("an owner");
        // INF-0001 is too old, INF-0002 is closed; INF-0003 is older than INF-0004.
        assert_eq!(
            (owner.id.as_str(), shared.as_str()),
            ("INF-0003", "limit:api/x")
        );
        assert!(owner_for(&["value:api/org=b".to_owned()], &candidates, now).is_none());
        assert!(owner_for(&[], &candidates, now).is_none());
        // A member never owns.
        let mut members = candidates.clone();
        for member in &mut members {
            member.incident = Some("INF-0009".into());
        }
        assert!(owner_for(&causes, &members, now).is_none());
    }

    #[test]
    fn members_follow_their_owner() {
        use TicketType::{Incident, Investigation};
        for (owner, member) in [
            (Incident, Incident),
            (Incident, Investigation),
            (Investigation, Incident),
            (Investigation, Investigation),
        ] {
            let follows = |to| follow(to, owner, member);
            assert_eq!(follows(TicketState::Resolved), Follow::Resolve);
            assert_eq!(follows(TicketState::Failed), Follow::Release);
            assert_eq!(follows(TicketState::Cancelled), Follow::Release);
            assert_eq!(follows(TicketState::Verifying), Follow::Stay);
        }
        // An investigation's question to a human leaves the harm with it
        // to be worked; every other escalation takes its members along.
        for (owner, member, how) in [
            (Incident, Incident, Follow::Escalate),
            (Incident, Investigation, Follow::Escalate),
            (Investigation, Investigation, Follow::Escalate),
            (Investigation, Incident, Follow::Release),
        ] {
            assert_eq!(follow(TicketState::Escalated, owner, member), how);
        }
    }

    #[test]
    fn causes_in_a_context_are_bounded() {
        let long = "x".repeat(MAX_CAUSE_BYTES + 1);
        let many: Vec<String> = (0..20).map(|i| format!("value:api/{i:02}")).collect();
        let mut context = json!({ "causes": many });
        context["causes"]
            .as_array_mut()
            .expect("array")
            .push(json!(long));
        let causes = causes_of(&context);
        assert_eq!(causes.len(), MAX_CAUSES);
        assert!(causes.iter().all(|cause| cause.len() <= MAX_CAUSE_BYTES));
        assert!(causes_of(&json!({"causes": "not a list"})).is_empty());
    }
}
