//! Tickets: the one format every violation and request becomes, the state
//! machine they move through, and the deduplication policy.
//!
//! ```text
//!            claim            start            submit            resolve
//!   open ───────────▶ claimed ───────▶ in_progress ──────▶ verifying ───────▶ resolved
//!    ▲  ◀── release/expiry ──┘            │   ▲   rework ◀──┘   │
//!    │  ◀────────── release/expiry ───────┘   └─────────────────┘── fail ──▶ failed
//!    │                                                          (in_progress too)
//!    └── reopen (human; or a recurrence within the reopen window) ◀── resolved | failed | cancelled | escalated
//!   escalate: open | claimed | in_progress | verifying | failed → escalated (a human decides)
//!   cancel:   open | claimed | in_progress | verifying | escalated → cancelled
//! ```
//!
//! Everything here is pure: [`decide`] turns a command into an event (or a
//! refusal), [`apply`] folds an event into a ticket, [`plan_intake`] decides
//! what a new violation does to the latest ticket with its fingerprint. The
//! store ([`crate::store`]) runs these inside one SQLite transaction and
//! appends every event to the hash-chained ledger; replaying the ledger with
//! [`apply`] rebuilds every ticket, which is how `verify` checks the tickets
//! table too.
//!
//! Deduplication and reopening (the policy, [`IntakePolicy`]):
//! - a violation whose fingerprint has an *active* ticket (open, claimed,
//!   in progress, verifying, escalated) is absorbed: occurrences + 1,
//!   last_seen = now, priority raised if the new one is higher;
//! - one whose latest ticket was *resolved* less than `reopen_window_ms` ago
//!   reopens it (the fix did not hold): resolved → open, `reopened` + 1,
//!   its context replaced by the new violation's (`previous_ticket` kept:
//!   the agent works the episode that is, ADR 0025); once
//!   a ticket has been reopened `max_reopens` times, the next recurrence
//!   escalates it to a human instead (the same fix is not applied forever);
//! - otherwise (resolved long ago, failed, cancelled) a new ticket is filed,
//!   its context linking the previous one.

pub mod alertmanager;
pub mod criteria;
pub mod incidents;
pub mod notices;

use crate::quantity::{HOUR_MS, MINUTE_MS};
use crate::tickets::criteria::{Condition, Criterion, CriterionError, MetricRegistry};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest objective description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;
/// The most acceptance criteria one ticket may carry.
pub const MAX_CRITERIA: usize = 16;
/// The most constraints, and the longest one.
pub const MAX_CONSTRAINTS: usize = 32;
pub const MAX_CONSTRAINT_BYTES: usize = 512;
/// The largest context (evidence) a ticket carries, as JSON; larger
/// evidence is refused from humans and truncated from evaluators.
pub const MAX_CONTEXT_BYTES: usize = 64 * 1024;
/// The longest fingerprint, actor name or comment.
pub const MAX_FINGERPRINT_BYTES: usize = 256;
pub const MAX_ACTOR_BYTES: usize = 128;
pub const MAX_COMMENT_BYTES: usize = 8192;
/// Bytes of a ticket file or `POST /v1/tickets` body: room for the largest
/// evidence ([`MAX_CONTEXT_BYTES`]) twice over with the rest of the ticket.
/// A body over it is answered 413 naming this bound.
pub const MAX_TICKET_FILE_BYTES: usize = 2 * MAX_CONTEXT_BYTES;
/// Claims last between these bounds (default [`DEFAULT_CLAIM_TTL_MS`]).
pub const MIN_CLAIM_TTL_MS: u64 = 10_000;
pub const MAX_CLAIM_TTL_MS: u64 = 24 * HOUR_MS;
pub const DEFAULT_CLAIM_TTL_MS: u64 = 15 * MINUTE_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketType {
    /// Something is broken now (SLO burn, invariant breach, alert).
    Incident,
    /// Make something better (the seed's example).
    Improvement,
    /// Something looks odd (an anomaly): find out whether it matters.
    Investigation,
    /// A request from a human.
    Task,
    /// A question for a human, filed by reflection
    /// ([`crate::learn::reflection::help_ticket`]): a human answers it.
    Help,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Critical,
    High,
    Medium,
    Low,
}

impl Priority {
    /// 0 is the most urgent.
    pub const fn rank(self) -> u8 {
        match self {
            Priority::Critical => 0,
            Priority::High => 1,
            Priority::Medium => 2,
            Priority::Low => 3,
        }
    }

    pub fn most_urgent(self, other: Priority) -> Priority {
        if other.rank() < self.rank() {
            other
        } else {
            self
        }
    }
}

pub use floodgate_harness_contract::types::Source;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    Open,
    Claimed,
    InProgress,
    Verifying,
    Resolved,
    Failed,
    Escalated,
    Cancelled,
}

impl TicketState {
    pub const ALL: [TicketState; 8] = [
        TicketState::Open,
        TicketState::Claimed,
        TicketState::InProgress,
        TicketState::Verifying,
        TicketState::Resolved,
        TicketState::Failed,
        TicketState::Escalated,
        TicketState::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TicketState::Open => "open",
            TicketState::Claimed => "claimed",
            TicketState::InProgress => "in_progress",
            TicketState::Verifying => "verifying",
            TicketState::Resolved => "resolved",
            TicketState::Failed => "failed",
            TicketState::Escalated => "escalated",
            TicketState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<TicketState> {
        TicketState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// Still someone's work (absorbs new occurrences).
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            TicketState::Open
                | TicketState::Claimed
                | TicketState::InProgress
                | TicketState::Verifying
                | TicketState::Escalated
        )
    }

    /// Held by an agent's claim.
    pub const fn is_claimed(self) -> bool {
        matches!(
            self,
            TicketState::Claimed | TicketState::InProgress | TicketState::Verifying
        )
    }
}

impl fmt::Display for TicketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objective {
    pub description: String,
}

/// Who holds a ticket, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub agent: String,
    pub expires_ms: u64,
}

/// A ticket, in the seed's format plus its queue state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// `INF-0001`, … (assigned by the store).
    pub id: String,
    #[serde(rename = "type")]
    pub kind: TicketType,
    pub objective: Objective,
    pub acceptance_criteria: Vec<Criterion>,
    pub constraints: Vec<String>,
    /// The evidence that created it (an SLO report, an invariant's inputs,
    /// an alert), and links (`previous_ticket`).
    pub context: serde_json::Value,
    pub source: Source,
    pub priority: Priority,
    pub fingerprint: String,
    pub state: TicketState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    /// Violations absorbed into this ticket, the first included.
    pub occurrences: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub last_seen_ms: u64,
    /// When it last entered resolved, failed or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_ms: Option<u64>,
    /// Times it was reopened after being resolved.
    pub reopened: u32,
    /// The incident it belongs to: the id of the ticket that owns it
    /// ([`crate::tickets::incidents`]). A member is not worked on its own while its
    /// owner is active; it follows the owner when the owner ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// When a new firing of its own violation (not a reminder) last
    /// reached it while it was active: during verification, the change
    /// did not hold (the pipeline fails it at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_anew_ms: Option<u64>,
}

/// A ticket to file: everything but what the queue assigns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTicket {
    #[serde(rename = "type")]
    pub kind: TicketType,
    pub objective: Objective,
    pub acceptance_criteria: Vec<Criterion>,
    pub constraints: Vec<String>,
    pub context: serde_json::Value,
    pub source: Source,
    pub priority: Priority,
    /// Same fingerprint, same problem: see the module doc's dedup policy.
    pub fingerprint: String,
}

impl NewTicket {
    /// Checks bounds and every criterion (known metric, parsable and
    /// suitable condition). Errors name the field.
    pub fn validate(&self, registry: &MetricRegistry) -> Result<(), FieldError> {
        let field = |path: &str, message: String| {
            Err(FieldError {
                path: path.to_owned(),
                message,
            })
        };
        if self.objective.description.trim().is_empty() {
            return field("objective.description", "must not be empty".into());
        }
        if self.objective.description.len() > MAX_DESCRIPTION_BYTES {
            return field(
                "objective.description",
                format!("longer than {MAX_DESCRIPTION_BYTES} bytes"),
            );
        }
        if self.fingerprint.is_empty() || self.fingerprint.len() > MAX_FINGERPRINT_BYTES {
            return field(
                "fingerprint",
                format!("must be 1 to {MAX_FINGERPRINT_BYTES} bytes"),
            );
        }
        if self.acceptance_criteria.len() > MAX_CRITERIA {
            return field(
                "acceptance_criteria",
                format!("more than {MAX_CRITERIA} criteria"),
            );
        }
        // Alerts carry no criteria (their resolution is the alert's), nor
        // does reflection's help ticket: a human answers it, no metric
        // shows that.
        let help = self.kind == TicketType::Help && self.source == Source::Reflection;
        if self.acceptance_criteria.is_empty()
            && !matches!(self.source, Source::Alertmanager)
            && !help
        {
            return field(
                "acceptance_criteria",
                "a ticket needs at least one acceptance criterion (what shows it is done?)".into(),
            );
        }
        for (index, criterion) in self.acceptance_criteria.iter().enumerate() {
            match criterion.validate(registry) {
                Ok(()) => {}
                Err(CriterionError::UnknownMetric(message)) => {
                    return field(&format!("acceptance_criteria[{index}].metric"), message)
                }
                Err(CriterionError::Condition(message)) => {
                    return field(&format!("acceptance_criteria[{index}].condition"), message)
                }
                Err(CriterionError::Reference(message)) => {
                    return field(&format!("acceptance_criteria[{index}].reference"), message)
                }
            }
        }
        if self.constraints.len() > MAX_CONSTRAINTS {
            return field(
                "constraints",
                format!("more than {MAX_CONSTRAINTS} constraints"),
            );
        }
        for (index, constraint) in self.constraints.iter().enumerate() {
            if constraint.trim().is_empty() || constraint.len() > MAX_CONSTRAINT_BYTES {
                return field(
                    &format!("constraints[{index}]"),
                    format!("must be 1 to {MAX_CONSTRAINT_BYTES} bytes"),
                );
            }
        }
        let context_bytes =
            serde_json::to_string(&self.context).map_or(usize::MAX, |text| text.len());
        if context_bytes > MAX_CONTEXT_BYTES {
            return field(
                "context",
                format!("{context_bytes} bytes of JSON, more than {MAX_CONTEXT_BYTES}"),
            );
        }
        Ok(())
    }
}

/// A refused field: its path and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Cuts evidence down to [`MAX_CONTEXT_BYTES`] (keeping a note of it):
/// evaluators' evidence must never make a ticket unfileable.
pub fn bound_context(context: serde_json::Value) -> serde_json::Value {
    let text = serde_json::to_string(&context).unwrap_or_default();
    if text.len() <= MAX_CONTEXT_BYTES {
        return context;
    }
    serde_json::json!({
        "truncated": true,
        "original_bytes": text.len(),
        "head": floodgate_contract::text::cut(&text, MAX_CONTEXT_BYTES / 2),
    })
}

// ---------------------------------------------------------------------------
// events and the state machine

/// What happened to a ticket: the unit of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TicketEvent {
    Created {
        ticket: Box<Ticket>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intake_key: Option<String>,
    },
    Transitioned {
        from: TicketState,
        to: TicketState,
        actor: String,
        reason: String,
        /// The claim after the transition (set by claim; cleared otherwise
        /// unless the ticket stays with its claimant).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claim: Option<Claim>,
    },
    ClaimRenewed {
        actor: String,
        expires_ms: u64,
    },
    Occurred {
        occurrences: u64,
        priority: Priority,
        evidence: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intake_key: Option<String>,
        /// A new firing (its condition cleared and fired again, or an
        /// anomaly alarmed anew), not a reminder of one still firing.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fresh: bool,
        /// The occurrence reopened the ticket: its evidence becomes the
        /// ticket's context (the agent works the episode that is, e.g. the
        /// config version pushed now, not the one a fix already undid);
        /// `previous_ticket` is kept.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reopened: bool,
    },
    Commented {
        actor: String,
        text: String,
    },
    /// Joined an incident (`incident` its owner), or left it (`None`).
    Linked {
        actor: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident: Option<String>,
        reason: String,
    },
}

impl TicketEvent {
    /// The ledger `kind` of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            TicketEvent::Created { .. } => "ticket.created",
            TicketEvent::Transitioned { .. } => "ticket.transitioned",
            TicketEvent::ClaimRenewed { .. } => "ticket.claim_renewed",
            TicketEvent::Occurred { .. } => "ticket.occurred",
            TicketEvent::Commented { .. } => "ticket.commented",
            TicketEvent::Linked { .. } => "ticket.linked",
        }
    }

    pub fn intake_key(&self) -> Option<&str> {
        match self {
            TicketEvent::Created { intake_key, .. } | TicketEvent::Occurred { intake_key, .. } => {
                intake_key.as_deref()
            }
            _ => None,
        }
    }
}

/// What an actor asks of a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Claim {
        agent: String,
        ttl_ms: u64,
    },
    Start {
        agent: String,
    },
    /// Work done; hand it to verification.
    Submit {
        agent: String,
    },
    /// Verification failed: back to work (the claim is renewed).
    Rework {
        actor: String,
        reason: String,
        ttl_ms: u64,
    },
    Resolve {
        actor: String,
        reason: String,
    },
    Fail {
        actor: String,
        reason: String,
    },
    Escalate {
        actor: String,
        reason: String,
    },
    Cancel {
        actor: String,
        reason: String,
    },
    Release {
        agent: String,
    },
    Renew {
        agent: String,
        ttl_ms: u64,
    },
    Reopen {
        actor: String,
        reason: String,
    },
    Comment {
        actor: String,
        text: String,
    },
    /// Make an open ticket a member of the incident `incident` owns (the
    /// store checks the owner), or take it out of its incident (`None`).
    Link {
        actor: String,
        #[serde(default)]
        incident: Option<String>,
        reason: String,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// The command does not apply in this state.
    NotAllowed {
        id: String,
        state: TicketState,
        command: &'static str,
    },
    /// Someone else holds the claim.
    NotClaimant { id: String, holder: String },
    /// A bad argument (empty actor, TTL out of bounds, comment too long).
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionError::NotAllowed { id, state, command } => {
                write!(f, "{id} is {state}: {command} does not apply")
            }
            TransitionError::NotClaimant { id, holder } => write!(f, "{id} is claimed by {holder}"),
            TransitionError::Invalid { field, message } => write!(f, "{field}: {message}"),
        }
    }
}

impl std::error::Error for TransitionError {}

fn check_actor(field: &'static str, actor: &str) -> Result<(), TransitionError> {
    if actor.trim().is_empty() || actor.len() > MAX_ACTOR_BYTES {
        return Err(TransitionError::Invalid {
            field,
            message: format!("must be 1 to {MAX_ACTOR_BYTES} bytes"),
        });
    }
    Ok(())
}

fn check_ttl(ttl_ms: u64) -> Result<(), TransitionError> {
    if !(MIN_CLAIM_TTL_MS..=MAX_CLAIM_TTL_MS).contains(&ttl_ms) {
        return Err(TransitionError::Invalid {
            field: "ttl_ms",
            message: format!("{ttl_ms} is outside {MIN_CLAIM_TTL_MS}..={MAX_CLAIM_TTL_MS}"),
        });
    }
    Ok(())
}

fn check_text(field: &'static str, text: &str) -> Result<(), TransitionError> {
    if text.len() > MAX_COMMENT_BYTES {
        return Err(TransitionError::Invalid {
            field,
            message: format!("longer than {MAX_COMMENT_BYTES} bytes"),
        });
    }
    Ok(())
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Claim { .. } => "claim",
            Command::Start { .. } => "start",
            Command::Submit { .. } => "submit",
            Command::Rework { .. } => "rework",
            Command::Resolve { .. } => "resolve",
            Command::Fail { .. } => "fail",
            Command::Escalate { .. } => "escalate",
            Command::Cancel { .. } => "cancel",
            Command::Release { .. } => "release",
            Command::Renew { .. } => "renew",
            Command::Reopen { .. } => "reopen",
            Command::Comment { .. } => "comment",
            Command::Link { .. } => "link",
        }
    }
}

/// Decides what a command does to a ticket at `now_ms`: the event to
/// append, or why not. An expired claim counts as no claim.
pub fn decide(
    ticket: &Ticket,
    command: &Command,
    now_ms: u64,
) -> Result<TicketEvent, TransitionError> {
    use TicketState::*;
    let state = ticket.state;
    let refuse = || TransitionError::NotAllowed {
        id: ticket.id.clone(),
        state,
        command: command.name(),
    };
    let live_claim = ticket
        .claim
        .as_ref()
        .filter(|claim| claim.expires_ms > now_ms);
    let must_hold = |agent: &str| -> Result<(), TransitionError> {
        match live_claim {
            Some(claim) if claim.agent == agent => Ok(()),
            Some(claim) => Err(TransitionError::NotClaimant {
                id: ticket.id.clone(),
                holder: claim.agent.clone(),
            }),
            None => Err(TransitionError::NotAllowed {
                id: ticket.id.clone(),
                state,
                command: command.name(),
            }),
        }
    };
    let go = |to: TicketState, actor: &str, reason: &str, claim: Option<Claim>| {
        TicketEvent::Transitioned {
            from: state,
            to,
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            claim,
        }
    };
    match command {
        Command::Claim { agent, ttl_ms } => {
            check_actor("agent", agent)?;
            check_ttl(*ttl_ms)?;
            if state != Open {
                return Err(refuse());
            }
            let claim = Claim {
                agent: agent.clone(),
                expires_ms: now_ms.saturating_add(*ttl_ms),
            };
            Ok(go(Claimed, agent, "claimed", Some(claim)))
        }
        Command::Start { agent } => {
            check_actor("agent", agent)?;
            if state != Claimed {
                return Err(refuse());
            }
            must_hold(agent)?;
            Ok(go(InProgress, agent, "started", ticket.claim.clone()))
        }
        Command::Submit { agent } => {
            check_actor("agent", agent)?;
            if state != InProgress {
                return Err(refuse());
            }
            must_hold(agent)?;
            Ok(go(
                Verifying,
                agent,
                "submitted for verification",
                ticket.claim.clone(),
            ))
        }
        Command::Rework {
            actor,
            reason,
            ttl_ms,
        } => {
            check_actor("actor", actor)?;
            check_text("reason", reason)?;
            check_ttl(*ttl_ms)?;
            if state != Verifying {
                return Err(refuse());
            }
            let claim = ticket.claim.clone().map(|claim| Claim {
                agent: claim.agent,
                expires_ms: now_ms.saturating_add(*ttl_ms),
            });
            Ok(go(InProgress, actor, reason, claim))
        }
        Command::Resolve { actor, reason } => {
            check_actor("actor", actor)?;
            check_text("reason", reason)?;
            if !matches!(state, Verifying | Escalated) {
                return Err(refuse());
            }
            Ok(go(Resolved, actor, reason, None))
        }
        Command::Fail { actor, reason } => {
            check_actor("actor", actor)?;
            check_text("reason", reason)?;
            if !matches!(state, InProgress | Verifying) {
                return Err(refuse());
            }
            Ok(go(Failed, actor, reason, None))
        }
        Command::Escalate { actor, reason } => {
            check_actor("actor", actor)?;
            check_text("reason", reason)?;
            if !matches!(state, Open | Claimed | InProgress | Verifying | Failed) {
                return Err(refuse());
            }
            Ok(go(Escalated, actor, reason, None))
        }
        Command::Cancel { actor, reason } => {
            check_actor("actor", actor)?;
            check_text("reason", reason)?;
            if !matches!(state, Open | Claimed | InProgress | Verifying | Escalated) {
                return Err(refuse());
            }
            Ok(go(Cancelled, actor, reason, None))
        }
        Command::Release { agent } => {
            check_actor("agent", agent)?;
            if !matches!(state, Claimed | InProgress) {
                return Err(refuse());
            }
            must_hold(agent)?;
            Ok(go(Open, agent, "released", None))
        }
        Command::Renew { agent, ttl_ms } => {
            check_actor("agent", agent)?;
            check_ttl(*ttl_ms)?;
            if !state.is_claimed() {
                return Err(refuse());
            }
            must_hold(agent)?;
            Ok(TicketEvent::ClaimRenewed {
                actor: agent.clone(),
                expires_ms: now_ms.saturating_add(*ttl_ms),
            })
        }
        Command::Reopen { actor, reason } => {
            check_actor("actor", actor)?;
            check_text("reason", reason)?;
            if !matches!(state, Resolved | Failed | Cancelled | Escalated) {
                return Err(refuse());
            }
            Ok(go(Open, actor, reason, None))
        }
        Command::Comment { actor, text } => {
            check_actor("actor", actor)?;
            check_text("text", text)?;
            if text.trim().is_empty() {
                return Err(TransitionError::Invalid {
                    field: "text",
                    message: "must not be empty".into(),
                });
            }
            Ok(TicketEvent::Commented {
                actor: actor.clone(),
                text: text.clone(),
            })
        }
        Command::Link {
            actor,
            incident,
            reason,
        } => {
            check_actor("actor", actor)?;
            check_text("reason", reason)?;
            match incident {
                // Joining: only a ticket nobody works yet.
                Some(owner) => {
                    if state != Open {
                        return Err(refuse());
                    }
                    if *owner == ticket.id {
                        return Err(TransitionError::Invalid {
                            field: "incident",
                            message: format!("{} cannot own itself", ticket.id),
                        });
                    }
                }
                None => {
                    if ticket.incident.is_none() {
                        return Err(TransitionError::Invalid {
                            field: "incident",
                            message: format!("{} belongs to no incident", ticket.id),
                        });
                    }
                }
            }
            Ok(TicketEvent::Linked {
                actor: actor.clone(),
                incident: incident.clone(),
                reason: reason.clone(),
            })
        }
    }
}

/// The harness's own actor name in the ledger.
pub const HARNESS_ACTOR: &str = "harness";

/// The expiry event of a ticket whose claim ran out (claimed or in progress;
/// a ticket in verification belongs to the verifier).
pub fn expire_claim(ticket: &Ticket, now_ms: u64) -> Option<TicketEvent> {
    let claim = ticket.claim.as_ref()?;
    if claim.expires_ms > now_ms
        || !matches!(ticket.state, TicketState::Claimed | TicketState::InProgress)
    {
        return None;
    }
    Some(TicketEvent::Transitioned {
        from: ticket.state,
        to: TicketState::Open,
        actor: HARNESS_ACTOR.to_owned(),
        reason: format!("claim of {} expired", claim.agent),
        claim: None,
    })
}

/// Why an event does not apply (only a corrupt or reordered ledger does
/// this: events are produced by [`decide`] and [`plan_intake`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyError(pub String);

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ApplyError {}

/// Folds one event into a ticket (`None` before `created`).
pub fn apply(
    ticket: Option<Ticket>,
    event: &TicketEvent,
    time_ms: u64,
) -> Result<Ticket, ApplyError> {
    let mut ticket = match (ticket, event) {
        (None, TicketEvent::Created { ticket, .. }) => return Ok((**ticket).clone()),
        (Some(existing), TicketEvent::Created { .. }) => {
            return Err(ApplyError(format!("{} is created twice", existing.id)))
        }
        (None, _) => return Err(ApplyError(format!("{} before created", event.kind()))),
        (Some(ticket), _) => ticket,
    };
    match event {
        TicketEvent::Created { .. } => {}
        TicketEvent::Transitioned {
            from, to, claim, ..
        } => {
            if ticket.state != *from {
                return Err(ApplyError(format!(
                    "{}: transition from {from} but the ticket is {}",
                    ticket.id, ticket.state
                )));
            }
            if ticket.state == TicketState::Resolved
                && matches!(to, TicketState::Open | TicketState::Escalated)
            {
                ticket.reopened = ticket.reopened.saturating_add(1);
            }
            ticket.state = *to;
            ticket.claim = claim.clone();
            if matches!(
                to,
                TicketState::Resolved | TicketState::Failed | TicketState::Cancelled
            ) {
                ticket.closed_ms = Some(time_ms);
            }
        }
        TicketEvent::ClaimRenewed { expires_ms, .. } => match &mut ticket.claim {
            Some(claim) => claim.expires_ms = *expires_ms,
            None => {
                return Err(ApplyError(format!(
                    "{}: claim renewed without a claim",
                    ticket.id
                )))
            }
        },
        TicketEvent::Occurred {
            occurrences,
            priority,
            fresh,
            reopened,
            evidence,
            ..
        } => {
            ticket.occurrences = *occurrences;
            ticket.priority = *priority;
            ticket.last_seen_ms = time_ms;
            if *fresh {
                ticket.fired_anew_ms = Some(time_ms);
            }
            if *reopened && evidence.is_object() {
                let previous = ticket.context.get("previous_ticket").cloned();
                ticket.context = evidence.clone();
                if let (Some(previous), Some(map)) = (previous, ticket.context.as_object_mut()) {
                    map.insert("previous_ticket".into(), previous);
                }
            }
        }
        TicketEvent::Commented { .. } => {}
        TicketEvent::Linked { incident, .. } => ticket.incident = incident.clone(),
    }
    ticket.updated_ms = time_ms;
    Ok(ticket)
}

/// Whether a new firing of `ticket`'s violation (`draft`) shows the
/// problem is back, as opposed to an echo of the episode a change ended:
/// an invariant breached anew judges the present; an anomaly alarmed anew
/// counts only beyond the ticket's frozen reference band on the side it
/// first left it (a rate falling back after a throttle alarms too, the
/// detector having learnt the high level). A burn-rate alert remembers the
/// past for its windows — one firing anew soon after a fix (a slower rule
/// taking over) is no sign the fix failed — so it never counts.
pub fn fires_against(ticket: &Ticket, draft: &NewTicket) -> bool {
    match draft.source {
        Source::Invariant => true,
        Source::Anomaly => {
            let Some(criterion) = ticket.acceptance_criteria.first() else {
                return false;
            };
            let (Some(reference), Condition::WithinReference { threshold }) =
                (&criterion.reference, &criterion.condition)
            else {
                return false;
            };
            let value = |context: &serde_json::Value| context["detail"]["value"].as_f64();
            let (Some(first), Some(now)) = (value(&ticket.context), value(&draft.context)) else {
                return false;
            };
            let side = (first - reference.median).signum();
            side != 0.0
                && (now - reference.median) * side > 0.0
                && !reference.holds(now, *threshold)
        }
        _ => false,
    }
}

/// The dedup and reopen policy (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakePolicy {
    /// A recurrence this soon after resolution reopens the ticket.
    pub reopen_window_ms: u64,
    /// Reopens after which a recurrence escalates instead.
    pub max_reopens: u32,
}

impl Default for IntakePolicy {
    fn default() -> Self {
        IntakePolicy {
            reopen_window_ms: 24 * HOUR_MS,
            max_reopens: 3,
        }
    }
}

/// What a new violation does.
#[derive(Debug, Clone, PartialEq)]
pub enum IntakePlan {
    /// File a new ticket (the store assigns its id). `previous` is the last
    /// ticket with the same fingerprint, linked from the new context.
    Create { previous: Option<String> },
    /// Events to append to an existing ticket.
    Update {
        id: String,
        reopened: bool,
        events: Vec<TicketEvent>,
    },
}

/// Decides what `draft` does given the latest ticket with its fingerprint.
/// `fresh`: the violation is a new firing (its condition cleared and came
/// back, or an anomaly alarmed anew), not a reminder of one still firing.
/// A fresh violation after its ticket was escalated is a new episode: a
/// new ticket, linked to the escalated one (`context.previous_ticket`),
/// that an agent can work; it never disappears into the escalated ticket.
pub fn plan_intake(
    latest: Option<&Ticket>,
    draft: &NewTicket,
    intake_key: Option<&str>,
    policy: &IntakePolicy,
    now_ms: u64,
    fresh: bool,
) -> IntakePlan {
    let Some(ticket) = latest else {
        return IntakePlan::Create { previous: None };
    };
    if fresh && ticket.state == TicketState::Escalated {
        return IntakePlan::Create {
            previous: Some(ticket.id.clone()),
        };
    }
    let occurred = |reopened: bool| TicketEvent::Occurred {
        occurrences: ticket.occurrences.saturating_add(1),
        priority: ticket.priority.most_urgent(draft.priority),
        evidence: draft.context.clone(),
        intake_key: intake_key.map(str::to_owned),
        fresh: fresh && ticket.state.is_active() && fires_against(ticket, draft),
        reopened,
    };
    if ticket.state.is_active() {
        return IntakePlan::Update {
            id: ticket.id.clone(),
            reopened: false,
            events: vec![occurred(false)],
        };
    }
    let recent = ticket
        .closed_ms
        .is_some_and(|closed| now_ms.saturating_sub(closed) <= policy.reopen_window_ms);
    if ticket.state == TicketState::Resolved && recent {
        let (to, reason) = if ticket.reopened >= policy.max_reopens {
            (
                TicketState::Escalated,
                format!(
                    "recurred after being reopened {} times: escalated to a human",
                    ticket.reopened
                ),
            )
        } else {
            (
                TicketState::Open,
                "the violation recurred within the reopen window".to_owned(),
            )
        };
        let transition = TicketEvent::Transitioned {
            from: TicketState::Resolved,
            to,
            actor: HARNESS_ACTOR.to_owned(),
            reason,
            claim: None,
        };
        let reopened = to == TicketState::Open;
        return IntakePlan::Update {
            id: ticket.id.clone(),
            reopened: true,
            events: vec![transition, occurred(reopened)],
        };
    }
    IntakePlan::Create {
        previous: Some(ticket.id.clone()),
    }
}

/// The ticket a draft becomes, with its id.
pub fn new_ticket(id: String, draft: &NewTicket, previous: Option<&str>, now_ms: u64) -> Ticket {
    let mut context = draft.context.clone();
    if let Some(previous) = previous {
        if let serde_json::Value::Object(map) = &mut context {
            map.insert(
                "previous_ticket".into(),
                serde_json::Value::String(previous.to_owned()),
            );
        } else {
            context = serde_json::json!({ "evidence": context, "previous_ticket": previous });
        }
    }
    Ticket {
        id,
        kind: draft.kind,
        objective: draft.objective.clone(),
        acceptance_criteria: draft.acceptance_criteria.clone(),
        constraints: draft.constraints.clone(),
        context,
        source: draft.source,
        priority: draft.priority,
        fingerprint: draft.fingerprint.clone(),
        state: TicketState::Open,
        claim: None,
        occurrences: 1,
        created_ms: now_ms,
        updated_ms: now_ms,
        last_seen_ms: now_ms,
        closed_ms: None,
        reopened: 0,
        incident: None,
        fired_anew_ms: None,
    }
}

/// Ticket ids: `INF-` and the number, at least four digits.
pub fn ticket_id(number: u64) -> String {
    format!("INF-{number:04}")
}

/// The number of an id (`INF-0042` → 42).
pub fn ticket_number(id: &str) -> Option<u64> {
    id.strip_prefix("INF-")?.parse().ok()
}

// ---------------------------------------------------------------------------
// ticket YAML (`ticket: {...}`)

/// A refused ticket file: file, line (when known), field and problem.
pub type TicketFileError = floodgate_contract::yaml::FileError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TicketFile {
    ticket: TicketSpec,
}

/// A ticket as a human writes it (the seed's format). `id` is accepted and
/// ignored: the queue assigns ids.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TicketSpec {
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<String>,
    #[serde(rename = "type")]
    kind: TicketType,
    objective: ObjectiveSpec,
    #[serde(default)]
    acceptance_criteria: Vec<Criterion>,
    #[serde(default)]
    constraints: Vec<String>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default)]
    context: Option<serde_json::Value>,
    #[serde(default)]
    fingerprint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectiveSpec {
    description: String,
}

/// Parses a ticket file into a draft (source `human`), validating every
/// criterion against `registry`. Without an explicit `fingerprint`, one is
/// derived from the type, description and criteria, so filing the same file
/// twice makes one ticket.
pub fn parse_ticket_yaml(
    file: &str,
    text: &str,
    registry: &MetricRegistry,
) -> Result<NewTicket, TicketFileError> {
    let spec: TicketFile = floodgate_contract::yaml::load(file, text, MAX_TICKET_FILE_BYTES)?;
    let spec = spec.ticket;
    let mut draft = NewTicket {
        kind: spec.kind,
        objective: Objective {
            description: spec.objective.description,
        },
        acceptance_criteria: spec.acceptance_criteria,
        constraints: spec.constraints,
        context: spec.context.unwrap_or_else(|| serde_json::json!({})),
        source: Source::Human,
        priority: spec.priority.unwrap_or(Priority::Medium),
        fingerprint: String::new(),
    };
    draft.fingerprint = match spec.fingerprint {
        Some(fingerprint) => fingerprint,
        None => human_fingerprint(&draft),
    };
    draft.validate(registry).map_err(|refused| {
        TicketFileError::at_path(
            file,
            text,
            format!("ticket.{}", refused.path),
            refused.message,
        )
    })?;
    Ok(draft)
}

/// `human:` and the first 16 hex digits of sha256 over the type,
/// description and criteria.
pub fn human_fingerprint(draft: &NewTicket) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_string(&draft.kind).unwrap_or_default());
    hasher.update([0]);
    hasher.update(draft.objective.description.trim());
    hasher.update([0]);
    hasher.update(serde_json::to_string(&draft.acceptance_criteria).unwrap_or_default());
    let digest = hasher.finalize();
    let hex: String = digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("human:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> NewTicket {
        NewTicket {
            kind: TicketType::Incident,
            objective: Objective {
                description: "fix it".into(),
            },
            acceptance_criteria: vec![],
            constraints: vec![],
            context: serde_json::json!({}),
            source: Source::Alertmanager,
            priority: Priority::Medium,
            fingerprint: "fp".into(),
        }
    }

    fn step(ticket: Ticket, command: Command, now: u64) -> Result<Ticket, TransitionError> {
        let event = decide(&ticket, &command, now)?;
        Ok(apply(Some(ticket), &event, now).expect("applies"))
    }

    #[test]
    fn only_a_present_recurrence_counts_as_firing_anew() {
        let criterion = |reference: bool| Criterion {
            metric: "admitted_rate".into(),
            condition: Condition::WithinReference { threshold: 6.0 },
            duration: None,
            baseline: None,
            reference: reference.then_some(crate::tickets::criteria::Reference {
                median: 10.0,
                scale: 1.0,
                direction: crate::observe::anomaly::Direction::Both,
                capacity: None,
            }),
        };
        let anomaly = |value: f64| NewTicket {
            source: Source::Anomaly,
            acceptance_criteria: vec![criterion(true)],
            context: serde_json::json!({"detail": {"value": value}}),
            ..draft()
        };
        // It first rose to 30 against a reference of 10 ± 6.
        let ticket = new_ticket(ticket_id(1), &anomaly(30.0), None, 0);
        assert!(
            fires_against(&ticket, &anomaly(25.0)),
            "up again, beyond the band"
        );
        assert!(!fires_against(&ticket, &anomaly(15.0)), "within the band");
        assert!(
            !fires_against(&ticket, &anomaly(1.0)),
            "falling back below the reference is the other side"
        );
        let mut unreferenced = ticket.clone();
        unreferenced.acceptance_criteria = vec![criterion(false)];
        assert!(!fires_against(&unreferenced, &anomaly(25.0)));
        let invariant = NewTicket {
            source: Source::Invariant,
            ..draft()
        };
        assert!(fires_against(&ticket, &invariant));
        let slo = NewTicket {
            source: Source::Slo,
            ..draft()
        };
        assert!(
            !fires_against(&ticket, &slo),
            "burn-rate windows remember the past"
        );
        // Through intake: a fresh firing of an active ticket is marked.
        let plan = plan_intake(
            Some(&ticket),
            &anomaly(25.0),
            None,
            &IntakePolicy::default(),
            1,
            true,
        );
        let IntakePlan::Update { events, .. } = plan else {
            panic!("absorbed");
        };
        let marked = apply(Some(ticket.clone()), &events[0], 5).expect("applies");
        assert_eq!(marked.fired_anew_ms, Some(5));
        let plan = plan_intake(
            Some(&ticket),
            &anomaly(25.0),
            None,
            &IntakePolicy::default(),
            1,
            false,
        );
        let IntakePlan::Update { events, .. } = plan else {
            panic!("absorbed");
        };
        let reminded = apply(Some(ticket), &events[0], 5).expect("applies");
        assert_eq!(
            reminded.fired_anew_ms, None,
            "a reminder is not a new firing"
        );
    }

    #[test]
    fn the_happy_path_and_refusals() {
        let ticket = new_ticket(ticket_id(1), &draft(), None, 0);
        assert_eq!(ticket.id, "INF-0001");
        let agent = || "agent-a".to_owned();
        let claimed = step(
            ticket.clone(),
            Command::Claim {
                agent: agent(),
                ttl_ms: 60_000,
            },
            1,
        )
        .expect("claim");
        assert_eq!(claimed.state, TicketState::Claimed);
        let refused = step(
            claimed.clone(),
            Command::Start {
                agent: "agent-b".into(),
            },
            2,
        );
        assert!(matches!(refused, Err(TransitionError::NotClaimant { .. })));
        let started = step(claimed, Command::Start { agent: agent() }, 2).expect("start");
        let submitted = step(started, Command::Submit { agent: agent() }, 3).expect("submit");
        let resolved = step(
            submitted,
            Command::Resolve {
                actor: "harness".into(),
                reason: "criteria met".into(),
            },
            4,
        )
        .expect("resolve");
        assert_eq!(resolved.state, TicketState::Resolved);
        assert_eq!(resolved.closed_ms, Some(4));
        assert!(resolved.claim.is_none());
        assert!(matches!(
            step(
                resolved,
                Command::Claim {
                    agent: agent(),
                    ttl_ms: 60_000
                },
                5
            ),
            Err(TransitionError::NotAllowed { .. })
        ));
        assert!(matches!(
            step(
                ticket,
                Command::Claim {
                    agent: agent(),
                    ttl_ms: 1
                },
                5
            ),
            Err(TransitionError::Invalid {
                field: "ttl_ms",
                ..
            })
        ));
    }

    #[test]
    fn claims_expire() {
        let ticket = new_ticket(ticket_id(1), &draft(), None, 0);
        let claimed = step(
            ticket,
            Command::Claim {
                agent: "a".into(),
                ttl_ms: 10_000,
            },
            0,
        )
        .expect("claim");
        assert_eq!(expire_claim(&claimed, 9_999), None);
        let event = expire_claim(&claimed, 10_000).expect("expires");
        let open = apply(Some(claimed.clone()), &event, 10_000).expect("applies");
        assert_eq!(open.state, TicketState::Open);
        // An expired claim cannot be used.
        assert!(step(claimed, Command::Start { agent: "a".into() }, 10_001).is_err());
    }

    #[test]
    fn a_recurrence_that_reopens_brings_its_own_evidence() {
        let policy = IntakePolicy {
            reopen_window_ms: 1000,
            max_reopens: 3,
        };
        let mut first = draft();
        first.context = serde_json::json!({ "config_version": 2 });
        let mut ticket = new_ticket(ticket_id(2), &first, Some("INF-0001"), 0);
        assert_eq!(ticket.context["previous_ticket"], "INF-0001");
        // Absorbed while active: the context the agent works from stays.
        let mut second = draft();
        second.context = serde_json::json!({ "config_version": 3 });
        let IntakePlan::Update { events, .. } =
            plan_intake(Some(&ticket), &second, None, &policy, 10, false)
        else {
            panic!("absorbs")
        };
        ticket = apply(Some(ticket), &events[0], 10).expect("applies");
        assert_eq!(ticket.context["config_version"], 2);
        // Reopened by a recurrence: the episode that is now, e.g. the
        // version pushed again, not the one a fix already undid.
        ticket.state = TicketState::Resolved;
        ticket.closed_ms = Some(100);
        let mut third = draft();
        third.context = serde_json::json!({ "config_version": 4 });
        let IntakePlan::Update { events, .. } =
            plan_intake(Some(&ticket), &third, None, &policy, 500, false)
        else {
            panic!("reopens")
        };
        for event in &events {
            ticket = apply(Some(ticket), event, 500).expect("applies");
        }
        assert_eq!(ticket.state, TicketState::Open);
        assert_eq!(ticket.context["config_version"], 4);
        assert_eq!(ticket.context["previous_ticket"], "INF-0001");
        // A recurrence past the reopens escalates and keeps the context.
        let policy = IntakePolicy {
            reopen_window_ms: 1000,
            max_reopens: 1,
        };
        ticket.state = TicketState::Resolved;
        ticket.closed_ms = Some(600);
        let mut fourth = draft();
        fourth.context = serde_json::json!({ "config_version": 5 });
        let IntakePlan::Update { events, .. } =
            plan_intake(Some(&ticket), &fourth, None, &policy, 700, false)
        else {
            panic!("escalates")
        };
        for event in &events {
            ticket = apply(Some(ticket), event, 700).expect("applies");
        }
        assert_eq!(ticket.state, TicketState::Escalated);
        assert_eq!(ticket.context["config_version"], 4);
    }

    #[test]
    fn intake_absorbs_reopens_and_escalates() {
        let policy = IntakePolicy {
            reopen_window_ms: 1000,
            max_reopens: 1,
        };
        let draft = draft();
        let mut ticket = new_ticket(ticket_id(1), &draft, None, 0);
        match plan_intake(Some(&ticket), &draft, None, &policy, 10, false) {
            IntakePlan::Update {
                reopened: false,
                events,
                ..
            } => {
                ticket = apply(Some(ticket), &events[0], 10).expect("applies");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!((ticket.occurrences, ticket.last_seen_ms), (2, 10));
        ticket.state = TicketState::Resolved;
        ticket.closed_ms = Some(100);
        let IntakePlan::Update {
            reopened: true,
            events,
            ..
        } = plan_intake(Some(&ticket), &draft, None, &policy, 500, false)
        else {
            panic!("reopens")
        };
        let mut reopened = ticket.clone();
        for event in &events {
            reopened = apply(Some(reopened), event, 500).expect("applies");
        }
        assert_eq!(
            (reopened.state, reopened.reopened, reopened.occurrences),
            (TicketState::Open, 1, 3)
        );
        let mut again = reopened.clone();
        again.state = TicketState::Resolved;
        again.closed_ms = Some(600);
        let IntakePlan::Update { events, .. } =
            plan_intake(Some(&again), &draft, None, &policy, 700, false)
        else {
            panic!("escalates")
        };
        assert!(matches!(
            events[0],
            TicketEvent::Transitioned {
                to: TicketState::Escalated,
                ..
            }
        ));
        assert_eq!(
            plan_intake(Some(&again), &draft, None, &policy, 5000, false),
            IntakePlan::Create {
                previous: Some("INF-0001".into())
            }
        );
    }

    #[test]
    fn a_fresh_violation_after_an_escalation_is_a_new_episode_and_a_reminder_is_not() {
        let policy = IntakePolicy::default();
        let draft = draft();
        let mut ticket = new_ticket(ticket_id(1), &draft, None, 0);
        ticket.state = TicketState::Escalated;
        // Still firing: absorbed into the escalated ticket.
        assert!(matches!(
            plan_intake(Some(&ticket), &draft, None, &policy, 10, false),
            IntakePlan::Update {
                reopened: false,
                ..
            }
        ));
        // Fired anew: a new ticket, linked to the escalated one.
        assert_eq!(
            plan_intake(Some(&ticket), &draft, None, &policy, 10, true),
            IntakePlan::Create {
                previous: Some("INF-0001".into())
            }
        );
        // A fresh violation of a ticket being worked is absorbed.
        ticket.state = TicketState::InProgress;
        assert!(matches!(
            plan_intake(Some(&ticket), &draft, None, &policy, 10, true),
            IntakePlan::Update { .. }
        ));
    }
}
