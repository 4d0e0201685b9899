//! The pipeline: every change an agent proposes is tested, canaried,
//! deployed and verified here, deterministically, with automatic rollback
//! (docs/adr/0008-agents-and-pipeline.md).
//!
//! The pipeline is a state machine over stored [`Proposal`]s, advanced by
//! the clock: [`Pipeline::advance`] runs on every observe tick (and
//! [`Pipeline::propose`] runs the test stage at once). Stages with a
//! duration end when the injected clock says so — there is no sleep
//! anywhere — so the same code runs in simulated seconds and in real time.
//! Each step is saved with its ledger entry (and the ticket's transition)
//! in one transaction; a crash between steps resumes from the last saved
//! stage.
//!
//! | stage | what happens | next |
//! |---|---|---|
//! | testing | every action as a dry run on every service (validation, config checks, traffic replay) | awaiting_approval (gated) · canary · failed |
//! | awaiting_approval | a human approves or rejects (`POST /v1/proposals/{id}/approve`), or the timeout escalates | canary · rejected |
//! | canary | applied to one service (the first whose canary checks had samples, ADR 0026); judged against the others (or its own window before the change) when the canary window ends; then deployed to the rest, unless a freeze window or the pause holds it | verifying · rolling_back → failed/error · awaiting_approval (inconclusive) |
//! | verifying | the ticket's acceptance criteria, judged once their whole duration lies after the deploy | succeeded · rolling_back → rolled_back |
//! | rolling_back | every applied change undone with its recorded inverse, newest first | rolled_back · failed · rejected · error |

use crate::change::judge::{self, Outcome};
use crate::change::policy::{BudgetUsage, Policy};
use crate::change::proposal::{
    check_request, collision, limits_changed, locks_of, values_named, Applied, Approval, CanaryRun,
    Decision, Proposal, ProposalRequest, Stage, VerifyRun,
};
use crate::change::revert;
use crate::quantity::{format_duration_ms, MINUTE_MS, SECOND_MS};
use crate::run::state::{Shared, Target};
use crate::store::StoreError;
use crate::tickets::criteria::{MetricRegistry, Verdict as CriterionVerdict};
use crate::tickets::{Command, Ticket, TicketState, HARNESS_ACTOR};
use floodgate_contract::actions::ActionRequest;
use floodgate_contract::client::{ClientError, ServiceApi};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most steps one proposal takes in one advance (a stage that
/// finishes at once flows into the next within the same tick).
pub const MAX_STEPS_PER_ADVANCE: usize = 8;
/// A claim closer than this to expiry is renewed while its ticket has a
/// proposal in flight (the agent waits on the pipeline, not on itself).
pub const CLAIM_GUARD_MS: u64 = 10 * MINUTE_MS;
/// The claim a renewal grants.
pub const CLAIM_RENEW_MS: u64 = 30 * MINUTE_MS;
/// The claim a rework (a fix verified bad and rolled back) grants.
pub const REWORK_CLAIM_MS: u64 = 30 * MINUTE_MS;
/// Canary samples: the window is cut into steps of at least this length.
pub const MIN_SAMPLE_STEP_MS: u64 = 10 * SECOND_MS;
/// Canary samples: at most this many steps per window.
pub const SAMPLE_STEPS: u64 = 12;
/// How long after the deploy an invariant ticket's invariant may stay
/// breached without holding once before its change fails (ADR 0026).
pub const INVARIANT_FAIL_AFTER_MS: u64 = 10 * MINUTE_MS;
/// The setting that holds the global pause.
pub const PAUSE_SETTING: &str = "pipeline.paused";

/// Why a pipeline call was refused.
#[derive(Debug)]
pub enum PipelineError {
    /// A field of the request is wrong.
    Invalid {
        field: String,
        message: String,
    },
    /// No such ticket or proposal.
    NotFound(String),
    /// The call does not fit the current state (not the claimant, a
    /// proposal already in flight, paused, budget spent).
    Conflict(String),
    /// The change would collide with another: a proposal of another ticket
    /// holds something it changes, or a service's config is no longer at
    /// the base it was planned against. Re-plan with the new state (after
    /// the holder ends).
    Collision(String),
    Store(StoreError),
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PipelineError::Invalid { field, message } => write!(f, "{field}: {message}"),
            PipelineError::NotFound(what) => write!(f, "no {what}"),
            PipelineError::Conflict(message) | PipelineError::Collision(message) => {
                f.write_str(message)
            }
            PipelineError::Store(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for PipelineError {}

impl From<StoreError> for PipelineError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(id) => PipelineError::NotFound(id),
            StoreError::Transition(error) => PipelineError::Conflict(error.to_string()),
            other => PipelineError::Store(other),
        }
    }
}

/// `GET /v1/pipeline`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineStatus {
    pub time_ms: u64,
    pub paused: bool,
    /// The freeze window in force now, if any.
    pub freeze: Option<crate::change::policy::ActiveFreeze>,
    pub services: Vec<String>,
    /// Proposals not yet finished: id, ticket, stage, held.
    pub active: Vec<Value>,
}

/// The pipeline over the services of one harness.
pub struct Pipeline {
    targets: Vec<Target>,
    policy: Policy,
    /// One advance (or proposal, or decision) at a time: steps of one
    /// proposal never interleave.
    gate: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Corrupt(format!("a store task failed: {error}")))?
}

impl Pipeline {
    /// A pipeline applying changes to `targets` (the first that serves
    /// traffic is the canary: `choose_canary`).
    /// Refuses a policy whose canary metrics the harness cannot compute per
    /// service.
    pub fn new(state: &Shared, targets: Vec<Target>, policy: Policy) -> Result<Pipeline, String> {
        if targets.is_empty() {
            return Err("the pipeline needs at least one service".into());
        }
        {
            let harness = state.harness();
            let registry = harness.registry();
            for check in &policy.canary.metrics {
                let Some(metric) = registry.get(&check.name) else {
                    let known: Vec<&str> = registry.names().collect();
                    return Err(format!(
                        "canary.metrics: {:?} is not a metric of the harness (known: {})",
                        check.name,
                        known.join(", ")
                    ));
                };
                if metric.for_instance("x").is_none() {
                    return Err(format!(
                        "canary.metrics: {:?} is an SLO's SLI, which cannot be split per service; name a built-in metric",
                        check.name
                    ));
                }
            }
        }
        Ok(Pipeline {
            targets,
            policy,
            gate: tokio::sync::Mutex::new(()),
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Whether the global pause is on.
    pub async fn paused(&self, state: &Shared) -> Result<bool, PipelineError> {
        let store = Arc::clone(state.store());
        Ok(blocking(move || store.setting(PAUSE_SETTING))
            .await?
            .is_some_and(|value| value == "true"))
    }

    /// Turns the global pause on or off (a ledger entry either way).
    pub async fn set_paused(
        &self,
        state: &Shared,
        paused: bool,
        actor: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<PipelineStatus, PipelineError> {
        let _gate = self.gate.lock().await;
        let store = Arc::clone(state.store());
        let kind = if paused {
            "pipeline.paused"
        } else {
            "pipeline.resumed"
        };
        let data = json!({ "actor": actor, "reason": reason });
        let value = if paused { "true" } else { "false" };
        blocking(move || store.set_setting(PAUSE_SETTING, value, "pipeline", kind, &data, now_ms))
            .await?;
        tracing::info!(paused, actor, reason, "pipeline");
        drop(_gate);
        self.status(state, now_ms).await
    }

    /// What `GET /v1/pipeline` answers.
    pub async fn status(
        &self,
        state: &Shared,
        now_ms: u64,
    ) -> Result<PipelineStatus, PipelineError> {
        let paused = self.paused(state).await?;
        let store = Arc::clone(state.store());
        let active = blocking(move || store.active_proposals()).await?;
        Ok(PipelineStatus {
            time_ms: now_ms,
            paused,
            freeze: self.policy.active_freeze(now_ms),
            services: self.targets.iter().map(|t| t.name.clone()).collect(),
            active: active
                .iter()
                .map(|p| {
                    json!({
                        "id": p.id,
                        "ticket_id": p.ticket_id,
                        "agent": p.agent,
                        "stage": p.stage,
                        "held": p.held,
                        "updated_ms": p.updated_ms,
                    })
                })
                .collect(),
        })
    }

    /// Takes a proposal for a ticket the agent holds, runs the test stage
    /// at once, and answers the stored proposal.
    pub async fn propose(
        &self,
        state: &Shared,
        ticket_id: &str,
        request: ProposalRequest,
        now_ms: u64,
    ) -> Result<Proposal, PipelineError> {
        let risks = check_request(&request).map_err(|error| PipelineError::Invalid {
            field: error.field,
            message: error.message,
        })?;
        let _gate = self.gate.lock().await;
        if self.paused(state).await? {
            return Err(PipelineError::Conflict(
                "the pipeline is paused: no proposal is taken until a human resumes it".into(),
            ));
        }
        let (ticket, earlier) = self
            .held_ticket(state, ticket_id, &request.agent, now_ms, true)
            .await?;
        // Budgets count the current episode: the proposals since the ticket
        // was last closed (a reopened ticket starts afresh; recurrences are
        // reflection's and the reopen limit's to judge). Questions to a
        // human (proposals without actions) change nothing and do not count.
        let episode: Vec<&Proposal> = earlier
            .iter()
            .filter(|p| ticket.closed_ms.is_none_or(|closed| p.created_ms >= closed))
            .collect();
        let usage = BudgetUsage {
            proposals: episode.iter().filter(|p| !p.actions.is_empty()).count() as u64 + 1,
            actions: episode.iter().map(|p| p.actions.len() as u64).sum::<u64>()
                + request.actions.len() as u64,
            elapsed_ms: episode
                .first()
                .map_or(0, |first| now_ms.saturating_sub(first.created_ms)),
        };
        if let Err(exceeded) = self.policy.check_budget(usage) {
            let reason = format!("budget exhausted: {exceeded}");
            let store = Arc::clone(state.store());
            let id = ticket.id.clone();
            let command = Command::Escalate {
                actor: HARNESS_ACTOR.into(),
                reason: reason.clone(),
            };
            blocking(move || store.command(&id, &command, now_ms)).await?;
            return Err(PipelineError::Conflict(format!(
                "{}: {reason}; the ticket is escalated to a human",
                ticket.id
            )));
        }
        let locks = locks_of(&request.actions);
        let bases = match self
            .check_collisions(state, &ticket, &request, &locks, now_ms)
            .await
        {
            Ok(bases) => bases,
            Err(reason) => {
                let store = Arc::clone(state.store());
                let id = ticket.id.clone();
                let data = json!({
                    "agent": request.agent,
                    "reason": reason,
                    "locks": locks,
                    "base_config": request.base_config,
                });
                blocking(move || store.record_event(&id, "proposal.refused", &data, now_ms))
                    .await?;
                return Err(PipelineError::Collision(reason));
            }
        };
        let proposal = Proposal {
            id: String::new(),
            ticket_id: ticket.id.clone(),
            agent: request.agent.clone(),
            rationale: request.rationale,
            actions: request.actions,
            risks,
            stage: Stage::Testing,
            created_ms: now_ms,
            updated_ms: now_ms,
            records: Vec::new(),
            test: Value::Null,
            approval: None,
            canary: None,
            canary_passed: false,
            interim: request.interim,
            applied: Vec::new(),
            verify: None,
            outcome: String::new(),
            held: String::new(),
            rollback_then: None,
            pending_command: None,
            base_config: request.base_config,
            bases,
            locks,
        };
        let start = (ticket.state == TicketState::Claimed).then(|| Command::Start {
            agent: request.agent.clone(),
        });
        let store = Arc::clone(state.store());
        let proposal =
            blocking(move || store.create_proposal(&proposal, start.as_ref(), now_ms)).await?;
        tracing::info!(proposal = %proposal.id, ticket = %proposal.ticket_id, "proposal");
        let proposal = self.run(state, proposal, now_ms).await;
        Ok(proposal)
    }

    /// Why the change would collide, if it would: another ticket's proposal
    /// in flight holds one of `locks`, or a service's config is not at the
    /// request's `base_config`. Otherwise each service's current config
    /// version, which every config action of the proposal then expects.
    async fn check_collisions(
        &self,
        state: &Shared,
        ticket: &Ticket,
        request: &ProposalRequest,
        locks: &[String],
        now_ms: u64,
    ) -> Result<BTreeMap<String, u64>, String> {
        let _ = now_ms;
        if !locks.is_empty() {
            let store = Arc::clone(state.store());
            let active = blocking(move || store.active_proposals())
                .await
                .map_err(|error| format!("cannot read the proposals in flight: {error}"))?;
            for other in active.iter().filter(|p| p.ticket_id != ticket.id) {
                if let Some(lock) = collision(locks, &locks_of(&other.actions)) {
                    return Err(format!(
                        "{lock} is held by {} of {} ({}): two changes never touch the same thing at once; re-plan once it ends",
                        other.id,
                        other.ticket_id,
                        other.stage.as_str()
                    ));
                }
            }
        }
        let mut bases = BTreeMap::new();
        if !request
            .actions
            .iter()
            .any(|call| changes_config(&call.action))
        {
            return Ok(bases);
        }
        for target in &self.targets {
            let current = target.transport.state().await.map_err(|error| {
                format!(
                    "cannot read {}'s config version: {}",
                    target.name,
                    describe(&error)
                )
            })?;
            if let Some(base) = &request.base_config {
                if *base != current.config.hash {
                    return Err(format!(
                        "the config moved since the change was planned: planned against {base}, {} is at version {} ({}); re-plan with the new state",
                        target.name, current.config.version, current.config.hash
                    ));
                }
            }
            bases.insert(target.name.clone(), current.config.version);
        }
        Ok(bases)
    }

    /// The ticket `agent` holds, with its proposals: refused (naming why)
    /// when another holds it or nobody does, when a proposal of it is still
    /// in flight (one change at a time: a failed one is undone before the
    /// next), and — for changes — when reflection suspended its fingerprint.
    async fn held_ticket(
        &self,
        state: &Shared,
        ticket_id: &str,
        agent: &str,
        now_ms: u64,
        for_change: bool,
    ) -> Result<(crate::tickets::Ticket, Vec<Proposal>), PipelineError> {
        let store = Arc::clone(state.store());
        let id = ticket_id.to_owned();
        let (ticket, earlier, suspended) = blocking(move || {
            let ticket = store
                .get(&id)?
                .ok_or_else(|| StoreError::NotFound(id.clone()))?;
            let earlier = store.proposals_of(&id)?;
            Ok((ticket, earlier, crate::run::reflector::suspended(&store)?))
        })
        .await?;
        let holder = ticket
            .claim
            .as_ref()
            .filter(|claim| claim.expires_ms > now_ms)
            .map(|claim| claim.agent.as_str());
        if !matches!(ticket.state, TicketState::Claimed | TicketState::InProgress)
            || holder != Some(agent)
        {
            return Err(PipelineError::Conflict(format!(
                "{} is {} and {}: claim it first (POST /v1/agent/claim)",
                ticket.id,
                ticket.state.as_str(),
                match holder {
                    Some(agent) => format!("held by {agent}"),
                    None => "not held".to_owned(),
                }
            )));
        }
        if for_change {
            if let Some(help) = suspended.get(&ticket.fingerprint) {
                return Err(PipelineError::Conflict(format!(
                    "automatic work on {} is suspended until a human answers {help}",
                    ticket.fingerprint
                )));
            }
        }
        if let Some(active) = earlier.iter().find(|p| !p.stage.is_terminal()) {
            return Err(PipelineError::Conflict(format!(
                "{} is still {} for {}: one change at a time, and a failed one is undone before the next",
                active.id,
                active.stage.as_str(),
                ticket.id
            )));
        }
        Ok((ticket, earlier))
    }

    /// An agent's question to a human on a ticket it holds (a runbook's
    /// approval step): stored as a proposal with no actions awaiting
    /// approval, answered with the same approve / reject calls, and timing
    /// out (and escalating) the same way. Approved ends `succeeded`.
    pub async fn ask(
        &self,
        state: &Shared,
        ticket_id: &str,
        agent: &str,
        question: &str,
        now_ms: u64,
    ) -> Result<Proposal, PipelineError> {
        if question.trim().is_empty()
            || question.len() > crate::change::proposal::MAX_RATIONALE_BYTES
        {
            return Err(PipelineError::Invalid {
                field: "question".into(),
                message: format!(
                    "must be 1 to {} bytes",
                    crate::change::proposal::MAX_RATIONALE_BYTES
                ),
            });
        }
        let _gate = self.gate.lock().await;
        let (ticket, _) = self
            .held_ticket(state, ticket_id, agent, now_ms, false)
            .await?;
        let mut proposal = Proposal {
            id: String::new(),
            ticket_id: ticket.id.clone(),
            agent: agent.to_owned(),
            rationale: question.to_owned(),
            actions: Vec::new(),
            risks: Vec::new(),
            stage: Stage::AwaitingApproval,
            created_ms: now_ms,
            updated_ms: now_ms,
            records: Vec::new(),
            test: Value::Null,
            approval: Some(Approval {
                reasons: vec![question.to_owned()],
                requested_ms: now_ms,
                deadline_ms: now_ms.saturating_add(self.policy.approval.timeout_ms),
                then: Stage::Succeeded,
                decision: None,
            }),
            canary: None,
            canary_passed: false,
            interim: false,
            applied: Vec::new(),
            verify: None,
            outcome: String::new(),
            held: String::new(),
            rollback_then: None,
            pending_command: None,
            base_config: None,
            bases: BTreeMap::new(),
            locks: Vec::new(),
        };
        proposal.record(now_ms, "approval_requested", question, Value::Null);
        let store = Arc::clone(state.store());
        let proposal = blocking(move || store.create_proposal(&proposal, None, now_ms)).await?;
        Ok(proposal)
    }

    /// Reverts a finished proposal ([`crate::change::revert`]): files a revert
    /// ticket (fingerprint `revert:{pid}`), claims it for `actor`, and
    /// proposes the recorded inverses of the original's applied changes,
    /// newest first, which then pass every stage like any change. A comment
    /// on the original ticket points at the revert. Answers the revert
    /// ticket (as it is after the test stage) and its proposal.
    pub async fn revert(
        &self,
        state: &Shared,
        proposal_id: &str,
        actor: &str,
        reason: Option<&str>,
        now_ms: u64,
    ) -> Result<(Ticket, Proposal), PipelineError> {
        if actor.trim().is_empty() || actor.len() > crate::tickets::MAX_ACTOR_BYTES {
            return Err(PipelineError::Invalid {
                field: "actor".into(),
                message: format!("must be 1 to {} bytes", crate::tickets::MAX_ACTOR_BYTES),
            });
        }
        let reason = match reason.map(str::trim) {
            Some(reason) if reason.len() > revert::MAX_REASON_BYTES => {
                return Err(PipelineError::Invalid {
                    field: "reason".into(),
                    message: format!("longer than {} bytes", revert::MAX_REASON_BYTES),
                })
            }
            Some(reason) if !reason.is_empty() => reason.to_owned(),
            _ => format!("requested by {actor}"),
        };
        let store = Arc::clone(state.store());
        let id = proposal_id.to_owned();
        let fingerprint = revert::fingerprint(proposal_id);
        let lookup = fingerprint.clone();
        let (original, earlier) = blocking(move || {
            let original = store
                .get_proposal(&id)?
                .ok_or_else(|| StoreError::NotFound(format!("proposal {id}")))?;
            Ok((original, store.latest_with_fingerprint(&lookup)?))
        })
        .await?;
        let services: Vec<String> = self.targets.iter().map(|t| t.name.clone()).collect();
        let plan = revert::plan(&original, &services).map_err(PipelineError::Conflict)?;
        if let Some(earlier) = &earlier {
            match earlier.state {
                TicketState::Resolved => {
                    return Err(PipelineError::Conflict(format!(
                        "{} was already reverted: {} is resolved (revert that ticket's proposal to undo the revert)",
                        original.id, earlier.id
                    )))
                }
                state if state.is_active() => {
                    return Err(PipelineError::Conflict(format!(
                        "{} is already reverting {} ({}): let it finish, or cancel it first",
                        earlier.id,
                        original.id,
                        state.as_str()
                    )))
                }
                // Failed or cancelled: a new revert ticket links it.
                _ => {}
            }
        }
        if self.paused(state).await? {
            return Err(PipelineError::Conflict(
                "the pipeline is paused: no proposal is taken until a human resumes it".into(),
            ));
        }
        let mut draft = revert::draft(&original, &plan, actor, &reason);
        state
            .harness()
            .prepare(&mut draft, now_ms)
            .map_err(|refused| PipelineError::Invalid {
                field: format!("ticket.{}", refused.path),
                message: refused.message,
            })?;
        let store = Arc::clone(state.store());
        let claim = Command::Claim {
            agent: actor.to_owned(),
            ttl_ms: CLAIM_RENEW_MS,
        };
        let ticket = blocking(move || store.file_and_run(&draft, &claim, now_ms)).await?;
        let snapshot = state.snapshot(Some(&ticket), now_ms);
        let store = Arc::clone(state.store());
        let snapshot_of = ticket.id.clone();
        blocking(move || store.fill_snapshot(&snapshot_of, true, &snapshot)).await?;
        tracing::info!(proposal = %original.id, ticket = %ticket.id, actor, "revert");

        let request = ProposalRequest {
            agent: actor.to_owned(),
            rationale: revert::rationale(&original, &reason),
            actions: plan.actions,
            interim: false,
            base_config: None,
        };
        let proposal = match self.propose(state, &ticket.id, request, now_ms).await {
            Ok(proposal) => proposal,
            Err(error) => {
                // Nothing reached a service: close the revert ticket so a
                // later revert files afresh.
                let store = Arc::clone(state.store());
                let cancel = Command::Cancel {
                    actor: HARNESS_ACTOR.into(),
                    reason: format!("the revert proposal was refused: {error}"),
                };
                let revert_id = ticket.id.clone();
                if let Err(cancel_error) =
                    blocking(move || store.command(&revert_id, &cancel, now_ms)).await
                {
                    tracing::error!(ticket = %ticket.id, %cancel_error, "cancelling a refused revert");
                }
                return Err(error);
            }
        };
        let store = Arc::clone(state.store());
        let comment = Command::Comment {
            actor: actor.to_owned(),
            text: format!(
                "{} is being reverted: ticket {}, proposal {} ({}): {reason}",
                original.id,
                ticket.id,
                proposal.id,
                proposal.stage.as_str()
            ),
        };
        let original_ticket = original.ticket_id.clone();
        let revert_id = ticket.id.clone();
        let ticket = blocking(move || {
            store.command(&original_ticket, &comment, now_ms)?;
            store
                .get(&revert_id)?
                .ok_or_else(|| StoreError::NotFound(revert_id.clone()))
        })
        .await?;
        Ok((ticket, proposal))
    }

    /// A human's answer to a proposal awaiting approval.
    pub async fn decide(
        &self,
        state: &Shared,
        proposal_id: &str,
        approved: bool,
        actor: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Proposal, PipelineError> {
        let _gate = self.gate.lock().await;
        let store = Arc::clone(state.store());
        let id = proposal_id.to_owned();
        let mut proposal = blocking(move || {
            store
                .get_proposal(&id)?
                .ok_or_else(|| StoreError::NotFound(format!("proposal {id}")))
        })
        .await?;
        let Some(approval) = proposal
            .approval
            .as_mut()
            .filter(|_| proposal.stage == Stage::AwaitingApproval)
        else {
            return Err(PipelineError::Conflict(format!(
                "{} is {}, not awaiting approval",
                proposal.id,
                proposal.stage.as_str()
            )));
        };
        approval.decision = Some(Decision {
            approved,
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            time_ms: now_ms,
        });
        let kind = if approved {
            "proposal.approved"
        } else {
            "proposal.rejected"
        };
        let data = json!({ "proposal": proposal.id, "actor": actor, "reason": reason });
        let store = Arc::clone(state.store());
        let saved = proposal.clone();
        blocking(move || store.save_proposal(&saved, kind, data, None, now_ms)).await?;
        Ok(self.run(state, proposal, now_ms).await)
    }

    /// Moves every proposal in flight as far as the clock allows. Answers
    /// the problems met (each also recorded on its proposal).
    pub async fn advance(&self, state: &Shared, now_ms: u64) -> Vec<String> {
        let _gate = self.gate.lock().await;
        let store = Arc::clone(state.store());
        let active = match blocking(move || store.active_proposals()).await {
            Ok(active) => active,
            Err(error) => return vec![format!("pipeline: {error}")],
        };
        let mut errors = Vec::new();
        for proposal in active {
            self.keep_claim(state, &proposal, now_ms, &mut errors).await;
            let after = self.run(state, proposal, now_ms).await;
            if after.stage == Stage::Error {
                if let Some(record) = after.last_record().filter(|r| r.result == "error") {
                    errors.push(format!("{}: {}", after.id, record.detail));
                }
            }
        }
        errors
    }

    async fn keep_claim(
        &self,
        state: &Shared,
        proposal: &Proposal,
        now_ms: u64,
        errors: &mut Vec<String>,
    ) {
        let store = Arc::clone(state.store());
        let id = proposal.ticket_id.clone();
        let agent = proposal.agent.clone();
        let result = blocking(move || {
            let Some(ticket) = store.get(&id)? else {
                return Ok(());
            };
            let expiring = ticket.claim.as_ref().is_some_and(|claim| {
                claim.agent == agent && claim.expires_ms <= now_ms.saturating_add(CLAIM_GUARD_MS)
            });
            if expiring && matches!(ticket.state, TicketState::Claimed | TicketState::InProgress) {
                let command = Command::Renew {
                    agent,
                    ttl_ms: CLAIM_RENEW_MS,
                };
                store.command(&id, &command, now_ms)?;
            }
            Ok(())
        })
        .await;
        if let Err(error) = result {
            errors.push(format!(
                "{}: renewing the claim: {error}",
                proposal.ticket_id
            ));
        }
    }

    /// Steps one proposal until it stops moving (bounded).
    async fn run(&self, state: &Shared, mut proposal: Proposal, now_ms: u64) -> Proposal {
        for _ in 0..MAX_STEPS_PER_ADVANCE {
            if proposal.stage.is_terminal() {
                break;
            }
            match self.step(state, &proposal, now_ms).await {
                Some(step) => {
                    let saved = step.proposal.clone();
                    let store = Arc::clone(state.store());
                    let result = blocking(move || {
                        store.save_proposal(
                            &saved,
                            &step.kind,
                            step.data,
                            step.ticket_command.as_ref(),
                            now_ms,
                        )
                    })
                    .await;
                    match result {
                        Ok(refused) => {
                            if let Some(refused) = refused {
                                tracing::warn!(proposal = %step.proposal.id, %refused, "ticket command refused");
                            }
                            tracing::info!(proposal = %step.proposal.id, stage = step.proposal.stage.as_str(), "pipeline");
                            proposal = step.proposal;
                        }
                        Err(error) => {
                            // Nothing was saved: the next advance retries
                            // from the stored stage. Changes applied to a
                            // service in this step are in the service's
                            // events; the retry finds them applied (the
                            // actions are idempotent set-to-value calls).
                            tracing::error!(proposal = %proposal.id, %error, "saving a pipeline step");
                            break;
                        }
                    }
                }
                None => break,
            }
        }
        proposal
    }

    /// One step: the proposal's next state, or `None` when it waits.
    async fn step(&self, state: &Shared, proposal: &Proposal, now_ms: u64) -> Option<Step> {
        match proposal.stage {
            Stage::Testing => Some(self.test(proposal.clone(), now_ms).await),
            Stage::AwaitingApproval => self.await_approval(proposal.clone(), now_ms),
            Stage::Canary => self.canary(state, proposal.clone(), now_ms).await,
            Stage::Deploying => self.deploying(state, proposal.clone(), now_ms).await,
            Stage::Verifying => self.verify(state, proposal.clone(), now_ms),
            Stage::RollingBack => Some(self.roll_back(proposal.clone(), now_ms).await),
            Stage::Succeeded
            | Stage::Failed
            | Stage::Rejected
            | Stage::RolledBack
            | Stage::Kept
            | Stage::Error => None,
        }
    }

    /// The service call for one of the proposal's actions on `target`: a
    /// config action expects the version the proposal last left there.
    fn request(
        &self,
        proposal: &Proposal,
        target: &str,
        action: &str,
        params: Value,
        dry_run: bool,
        why: &str,
    ) -> ActionRequest {
        ActionRequest {
            params,
            dry_run,
            reason: format!("{} {}: {why}", proposal.ticket_id, proposal.id),
            actor: format!("agent:{}", proposal.agent),
            expect_config_version: if changes_config(action) {
                proposal.bases.get(target).copied()
            } else {
                None
            },
        }
    }

    async fn test(&self, mut proposal: Proposal, now_ms: u64) -> Step {
        let mut results = Vec::new();
        for target in &self.targets {
            for (index, call) in proposal.actions.iter().enumerate() {
                let request = self.request(
                    &proposal,
                    &target.name,
                    &call.action,
                    call.params.clone(),
                    true,
                    "dry run",
                );
                match target.transport.run_action(&call.action, &request).await {
                    Ok(result) => results.push(json!({
                        "service": target.name,
                        "action": call.action,
                        "index": index,
                        "changes": result.changes,
                        "diff": result.diff,
                        "replay": serde_json::to_value(&result).ok().and_then(|v| v.get("replay").cloned()),
                    })),
                    Err(error) => {
                        let detail = format!(
                            "actions[{index}] ({}) refused by {}: {}",
                            call.action,
                            target.name,
                            describe(&error)
                        );
                        proposal.test = Value::Array(results);
                        proposal.record(now_ms, "failed", &detail, Value::Null);
                        proposal.stage = Stage::Failed;
                        proposal.outcome = format!("test failed: {detail}");
                        return Step::new(proposal, "proposal.tested", json!({ "result": "failed", "detail": detail }));
                    }
                }
            }
        }
        proposal.test = Value::Array(results);
        let flips = summarize_replay(&proposal.test);
        proposal.record(
            now_ms,
            "passed",
            format!(
                "every action passed its dry run on {} service(s){flips}",
                self.targets.len()
            ),
            Value::Null,
        );
        let reasons: Vec<String> = proposal
            .actions
            .iter()
            .zip(&proposal.risks)
            .filter_map(|(call, risk)| self.policy.needs_approval(&call.action, *risk))
            .collect();
        if reasons.is_empty() {
            proposal.stage = Stage::Canary;
        } else {
            proposal.stage = Stage::AwaitingApproval;
            proposal.approval = Some(Approval {
                reasons: reasons.clone(),
                requested_ms: now_ms,
                deadline_ms: now_ms.saturating_add(self.policy.approval.timeout_ms),
                then: Stage::Canary,
                decision: None,
            });
            proposal.record(
                now_ms,
                "approval_requested",
                reasons.join("; "),
                Value::Null,
            );
        }
        Step::new(proposal, "proposal.tested", json!({ "result": "passed" }))
    }

    fn await_approval(&self, mut proposal: Proposal, now_ms: u64) -> Option<Step> {
        let approval = proposal.approval.clone()?;
        match &approval.decision {
            Some(decision) if decision.approved => {
                proposal.record(
                    now_ms,
                    "approved",
                    format!("approved by {}: {}", decision.actor, decision.reason),
                    Value::Null,
                );
                proposal.stage = approval.then;
                if approval.then == Stage::Deploying {
                    // An inconclusive canary a human accepted.
                    proposal.canary_passed = true;
                }
                Some(Step::new(
                    proposal,
                    "proposal.stage",
                    json!({ "result": "approved", "by": decision.actor }),
                ))
            }
            Some(decision) => {
                let detail = format!("rejected by {}: {}", decision.actor, decision.reason);
                proposal.record(now_ms, "rejected", &detail, Value::Null);
                proposal.outcome = detail.clone();
                Some(self.finish_or_roll_back(
                    proposal,
                    Stage::Rejected,
                    None,
                    json!({ "result": "rejected", "by": decision.actor }),
                ))
            }
            None if now_ms >= approval.deadline_ms => {
                let detail = format!(
                    "no human answered within {}",
                    format_duration_ms(self.policy.approval.timeout_ms)
                );
                proposal.record(now_ms, "timed_out", &detail, Value::Null);
                proposal.outcome = format!("approval timed out: {detail}; the ticket is escalated");
                let escalate = Command::Escalate {
                    actor: HARNESS_ACTOR.into(),
                    reason: format!("{}: approval timed out ({detail})", proposal.id),
                };
                Some(self.finish_or_roll_back(
                    proposal,
                    Stage::Rejected,
                    Some(escalate),
                    json!({ "result": "timed_out" }),
                ))
            }
            None => None,
        }
    }

    /// To `then` directly when nothing is applied, else through a rollback.
    fn finish_or_roll_back(
        &self,
        mut proposal: Proposal,
        then: Stage,
        ticket_command: Option<Command>,
        data: Value,
    ) -> Step {
        if proposal.to_undo().next().is_some() {
            proposal.stage = Stage::RollingBack;
            proposal.rollback_then = Some(then);
            proposal.pending_command = ticket_command;
            Step::new(proposal, "proposal.stage", data)
        } else {
            proposal.stage = then;
            let mut step = Step::new(proposal, "proposal.stage", data);
            step.ticket_command = ticket_command;
            step
        }
    }

    /// Why changes are held now, if they are.
    async fn held_by(&self, state: &Shared, now_ms: u64) -> Option<String> {
        if self.paused(state).await.unwrap_or(true) {
            return Some("the pipeline is paused".into());
        }
        self.policy.active_freeze(now_ms).map(|freeze| {
            format!(
                "freeze window {} until {}",
                freeze.name,
                crate::quantity::format_time_ms(freeze.ends_ms)
            )
        })
    }

    async fn canary(&self, state: &Shared, mut proposal: Proposal, now_ms: u64) -> Option<Step> {
        if let Some(canary) = proposal.canary.clone() {
            if !canary.verdict.is_null() {
                // Judged already (a restart between steps): go on from the
                // verdict's stage, never apply twice.
                proposal.stage = if proposal.canary_passed {
                    Stage::Deploying
                } else {
                    Stage::RollingBack
                };
                return Some(Step::new(
                    proposal,
                    "proposal.stage",
                    json!({ "result": "resumed" }),
                ));
            }
            if now_ms < canary.ends_ms {
                return None;
            }
            return Some(self.judge_canary(state, proposal, canary, now_ms));
        }
        if self.policy.canary.duration_ms == 0 {
            proposal.record(
                now_ms,
                "skipped",
                "the policy's canary duration is 0",
                Value::Null,
            );
            proposal.stage = Stage::Deploying;
            return Some(Step::new(
                proposal,
                "proposal.stage",
                json!({ "result": "skipped" }),
            ));
        }
        if let Some(step) = self.hold(state, &mut proposal, now_ms).await {
            return step;
        }
        {
            let target = &self.targets[self.canary_index(state, now_ms)];
            if let Err(detail) = self
                .apply_all(&mut proposal, std::slice::from_ref(target), now_ms)
                .await
            {
                proposal.record(now_ms, "failed", &detail, Value::Null);
                proposal.outcome = format!("canary failed to apply: {detail}");
                return Some(self.finish_or_roll_back(
                    proposal,
                    Stage::Failed,
                    None,
                    json!({ "result": "apply_failed", "detail": detail }),
                ));
            }
            let baseline = if self.targets.len() > 1 {
                "instances"
            } else {
                "before_after"
            };
            let ends_ms = now_ms.saturating_add(self.policy.canary.duration_ms);
            // One service: what it admitted before the change is the harm
            // check's baseline (the states of the last tick).
            let admission_before = (baseline == "before_after").then(|| {
                let harness = state.harness();
                let only = limits_changed(&proposal.actions);
                let docs: Vec<&Value> = harness
                    .service_documents()
                    .filter(|(instance, _)| *instance == target.name)
                    .filter_map(|(_, doc)| doc)
                    .collect();
                judge::admission_of(docs, only.as_deref())
            });
            proposal.canary = Some(CanaryRun {
                target: target.name.clone(),
                baseline: baseline.into(),
                started_ms: now_ms,
                ends_ms,
                verdict: Value::Null,
                admission_before,
            });
            proposal.record(
                now_ms,
                "applied",
                format!(
                    "applied to canary {} for {} (baseline: {baseline})",
                    target.name,
                    format_duration_ms(self.policy.canary.duration_ms)
                ),
                Value::Null,
            );
            Some(Step::new(
                proposal,
                "proposal.canary_started",
                json!({ "service": target.name, "ends_ms": ends_ms }),
            ))
        }
    }

    /// Which target a canary runs on (ADR 0026): the first, in the
    /// harness's order, on which every canary check had its samples over
    /// the last canary duration — an instance no traffic reaches (a
    /// load balancer hashing few tenants may leave one idle) can judge
    /// nothing, and an inconclusive canary waits for a human. Else the
    /// one with the most samples; the first when none has any.
    fn canary_index(&self, state: &Shared, now_ms: u64) -> usize {
        if self.targets.len() < 2 {
            return 0;
        }
        let checks = self.policy.canary_checks();
        let duration = self.policy.canary.duration_ms;
        let step = (duration / SAMPLE_STEPS).max(MIN_SAMPLE_STEP_MS);
        let harness = state.harness();
        let counts: Vec<Vec<(usize, usize)>> = self
            .targets
            .iter()
            .map(|target| {
                checks
                    .iter()
                    .map(|check| {
                        let found = samples(
                            harness.registry(),
                            harness.tsdb(),
                            &check.name,
                            &[target.name.as_str()],
                            now_ms,
                            duration,
                            step,
                        )
                        .len();
                        (found, check.min_samples.max(1))
                    })
                    .collect()
            })
            .collect();
        choose_canary(&counts)
    }

    /// While changes are held (pause, freeze): `Some(None)` to wait,
    /// `Some(Some(step))` to record that it is now held; `None` to go on.
    async fn hold(
        &self,
        state: &Shared,
        proposal: &mut Proposal,
        now_ms: u64,
    ) -> Option<Option<Step>> {
        match self.held_by(state, now_ms).await {
            Some(reason) if proposal.held == reason => Some(None),
            Some(reason) => {
                proposal.held = reason.clone();
                proposal.record(now_ms, "held", &reason, Value::Null);
                Some(Some(Step::new(
                    proposal.clone(),
                    "proposal.held",
                    json!({ "reason": reason }),
                )))
            }
            None => {
                proposal.held.clear();
                None
            }
        }
    }

    async fn deploying(&self, state: &Shared, mut proposal: Proposal, now_ms: u64) -> Option<Step> {
        if let Some(step) = self.hold(state, &mut proposal, now_ms).await {
            return step;
        }
        Some(self.deploy(state, proposal, now_ms).await)
    }

    fn judge_canary(
        &self,
        state: &Shared,
        mut proposal: Proposal,
        mut canary: CanaryRun,
        now_ms: u64,
    ) -> Step {
        let checks = self.policy.canary_checks();
        let (canary_samples, baseline_samples) = {
            let harness = state.harness();
            let registry = harness.registry();
            let tsdb = harness.tsdb();
            let duration = canary.ends_ms.saturating_sub(canary.started_ms);
            let step = (duration / SAMPLE_STEPS).max(MIN_SAMPLE_STEP_MS);
            let others: Vec<&str> = self
                .targets
                .iter()
                .filter(|t| t.name != canary.target)
                .map(|t| t.name.as_str())
                .collect();
            let (baseline_instances, baseline_end): (Vec<&str>, u64) = if others.is_empty() {
                (vec![canary.target.as_str()], canary.started_ms)
            } else {
                (others, canary.ends_ms)
            };
            let mut canary_samples = BTreeMap::new();
            let mut baseline_samples = BTreeMap::new();
            for check in &checks {
                canary_samples.insert(
                    check.name.clone(),
                    samples(
                        registry,
                        tsdb,
                        &check.name,
                        &[canary.target.as_str()],
                        canary.ends_ms,
                        duration,
                        step,
                    ),
                );
                baseline_samples.insert(
                    check.name.clone(),
                    samples(
                        registry,
                        tsdb,
                        &check.name,
                        &baseline_instances,
                        baseline_end,
                        duration,
                        step,
                    ),
                );
            }
            (canary_samples, baseline_samples)
        };
        let mut verdict = judge::judge(
            &checks,
            &canary_samples,
            &baseline_samples,
            self.policy.canary.thresholds,
        );
        // Harm: a value the change does not name, newly rejected on the
        // canary by a limit the change touched, fails the canary whatever
        // the metrics say (a throttle of a good tenant moves no error
        // ratio).
        // A revert restores a state that ran before, at a human's request:
        // what it rejects again is that human's decision, not harm.
        let revert = state
            .store()
            .get(&proposal.ticket_id)
            .ok()
            .flatten()
            .is_some_and(|ticket| ticket.fingerprint.starts_with("revert:"));
        let harmed = if revert {
            Vec::new()
        } else {
            let harness = state.harness();
            let only = limits_changed(&proposal.actions);
            let docs: Vec<(&str, &Value)> = harness
                .service_documents()
                .filter_map(|(instance, doc)| Some((instance, doc?)))
                .collect();
            let on_canary = judge::admission_of(
                docs.iter()
                    .filter(|(instance, _)| *instance == canary.target)
                    .map(|(_, doc)| *doc),
                only.as_deref(),
            );
            let baseline = match &canary.admission_before {
                Some(before) => before.clone(),
                None => judge::admission_of(
                    docs.iter()
                        .filter(|(instance, _)| *instance != canary.target)
                        .map(|(_, doc)| *doc),
                    only.as_deref(),
                ),
            };
            judge::harm(&on_canary, &baseline, &values_named(&proposal.actions))
        };
        if !harmed.is_empty() && verdict.outcome != Outcome::Error {
            let named: Vec<String> = harmed
                .iter()
                .take(3)
                .map(|h| {
                    format!(
                        "{} ({:.0}% of {} hits rejected, {:.0}% on the baseline)",
                        h.value,
                        h.canary_rejected * 100.0,
                        h.canary_hits,
                        h.baseline_rejected * 100.0
                    )
                })
                .collect();
            verdict.outcome = Outcome::Failed;
            verdict.reason = format!(
                "the change rejects values it does not name: {}{}",
                named.join(", "),
                if harmed.len() > 3 {
                    format!(" and {} more", harmed.len() - 3)
                } else {
                    String::new()
                }
            );
        }
        canary.verdict = serde_json::to_value(&verdict).unwrap_or(Value::Null);
        if !harmed.is_empty() {
            canary.verdict["harm"] = serde_json::to_value(&harmed).unwrap_or(Value::Null);
        }
        let outcome = verdict.outcome;
        let detail = format!(
            "canary judged {}: {}",
            outcome_name(outcome),
            verdict.reason
        );
        proposal.canary = Some(canary);
        let data = json!({ "outcome": outcome_name(outcome), "reason": verdict.reason });
        match outcome {
            Outcome::Successful => {
                proposal.canary_passed = true;
                proposal.record(now_ms, "successful", &detail, Value::Null);
                proposal.stage = Stage::Deploying;
                Step::new(proposal, "proposal.canary_judged", data)
            }
            Outcome::Failed => {
                proposal.record(now_ms, "failed", &detail, Value::Null);
                proposal.outcome = detail;
                self.finish_or_roll_back(proposal, Stage::Failed, None, data)
            }
            Outcome::Error => {
                proposal.record(now_ms, "error", &detail, Value::Null);
                proposal.outcome = format!("{detail} (an error is never a pass)");
                self.finish_or_roll_back(proposal, Stage::Error, None, data)
            }
            Outcome::Inconclusive => {
                proposal.record(now_ms, "inconclusive", &detail, Value::Null);
                proposal.stage = Stage::AwaitingApproval;
                proposal.approval = Some(Approval {
                    reasons: vec![format!("the canary was inconclusive: {}", verdict.reason)],
                    requested_ms: now_ms,
                    deadline_ms: now_ms.saturating_add(self.policy.approval.timeout_ms),
                    then: Stage::Deploying,
                    decision: None,
                });
                Step::new(proposal, "proposal.canary_judged", data)
            }
        }
    }

    /// Applies every action to `targets`, recording each with its inverse.
    async fn apply_all(
        &self,
        proposal: &mut Proposal,
        targets: &[Target],
        now_ms: u64,
    ) -> Result<(), String> {
        for target in targets {
            for (index, call) in proposal.actions.clone().iter().enumerate() {
                let request = self.request(
                    proposal,
                    &target.name,
                    &call.action,
                    call.params.clone(),
                    false,
                    &proposal.rationale.clone(),
                );
                match target.transport.run_action(&call.action, &request).await {
                    Ok(result) => {
                        if let Some(version) = result.config_version {
                            proposal.bases.insert(target.name.clone(), version);
                        }
                        proposal.applied.push(Applied {
                            target: target.name.clone(),
                            action: call.action.clone(),
                            params: call.params.clone(),
                            time_ms: now_ms,
                            inverse: result.inverse,
                            undone: false,
                            event_seq: result.event_seq,
                        });
                    }
                    Err(error) => {
                        return Err(format!(
                            "actions[{index}] ({}) on {}: {}",
                            call.action,
                            target.name,
                            describe(&error)
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    async fn deploy(&self, state: &Shared, mut proposal: Proposal, now_ms: u64) -> Step {
        let rest: Vec<Target> = match &proposal.canary {
            Some(canary) => self
                .targets
                .iter()
                .filter(|t| t.name != canary.target)
                .cloned()
                .collect(),
            None => self.targets.clone(),
        };
        if let Err(detail) = self.apply_all(&mut proposal, &rest, now_ms).await {
            proposal.record(now_ms, "failed", &detail, Value::Null);
            proposal.outcome =
                format!("deploy failed: {detail}; everything applied is rolled back");
            return self.finish_or_roll_back(
                proposal,
                Stage::RolledBack,
                None,
                json!({ "result": "deploy_failed", "detail": detail }),
            );
        }
        // A criterion without a duration is judged over the policy's
        // criteria window; each must lie wholly after the deploy.
        let window = self.policy.verify.criteria_window_ms;
        // An interim mitigation is judged on its incident's symptoms (see
        // `verify`), so over their criteria's durations, not the cause's.
        let store_ticket = state.store().get(&proposal.ticket_id).ok().flatten();
        let longest = match &store_ticket {
            Some(ticket) if proposal.interim => {
                longest_criterion(&symptoms_of(state, ticket, window), window)
            }
            _ => longest_criterion(store_ticket.as_slice(), window),
        };
        let judge_from_ms = now_ms.saturating_add(longest);
        let verify = VerifyRun {
            started_ms: now_ms,
            judge_from_ms,
            deadline_ms: judge_from_ms.saturating_add(self.policy.verify.max_duration_ms),
            last: Value::Null,
        };
        proposal.record(
            now_ms,
            "applied",
            format!(
                "deployed to {} service(s); criteria judged from {} for up to {}",
                self.targets.len(),
                crate::quantity::format_time_ms(judge_from_ms),
                format_duration_ms(self.policy.verify.max_duration_ms)
            ),
            Value::Null,
        );
        proposal.verify = Some(verify);
        proposal.stage = Stage::Verifying;
        let mut step = Step::new(
            proposal.clone(),
            "proposal.deployed",
            json!({ "applied": proposal.applied.len() }),
        );
        step.ticket_command = Some(Command::Submit {
            agent: proposal.agent.clone(),
        });
        step
    }

    fn verify(&self, state: &Shared, mut proposal: Proposal, now_ms: u64) -> Option<Step> {
        let mut verify = proposal.verify.clone()?;
        let ticket = state.store().get(&proposal.ticket_id).ok().flatten()?;
        // The ticket's own violation firing anew after the deploy
        // (`tickets::fires_against`: not an echo of the episode the change
        // was meant to end) says the change did not hold: judged at once,
        // before the criteria's window has passed.
        // An interim mitigation is exempt: it does not claim to end the
        // cause (a backend that goes down again while its fallback policy
        // verifies says nothing against the fallback), so it is judged by
        // its criteria alone.
        let fired_anew = ticket
            .fired_anew_ms
            .filter(|fired| *fired > verify.started_ms && !proposal.interim);
        // The same for an SLO ticket, whose burn-rate alert remembers the
        // past and so never fires "anew": the SLO still burning at its
        // fastest rule's rate over that rule's short window, wholly after
        // the deploy, says the change did not stop the burn
        // (`slo::burn_not_falling`).
        // The ticket's SLO, copied out: the harness's lock is taken again
        // below and must not be held across.
        let slo = (ticket.source == crate::tickets::Source::Slo)
            .then(|| ticket.context["slo"].as_str())
            .flatten()
            .and_then(|name| {
                state
                    .harness()
                    .objectives()
                    .slos
                    .iter()
                    .find(|slo| slo.name == name)
                    .cloned()
            });
        let burn_kept = slo.as_ref().filter(|_| !proposal.interim).and_then(|slo| {
            crate::observe::slo::burn_not_falling(
                slo,
                state.harness().tsdb(),
                verify.started_ms,
                now_ms,
            )
        });
        // An invariant ticket's invariant that has not held once, on every
        // instance at one tick, in the `INVARIANT_FAIL_AFTER_MS` after the
        // deploy was not restored by the change (ADR 0026): a breach that
        // never ends fires nothing anew, and waiting for the criteria's
        // deadline only delays the next attempt by hours.
        let invariant_stuck = (ticket.source == crate::tickets::Source::Invariant
            && !proposal.interim
            && now_ms >= verify.started_ms.saturating_add(INVARIANT_FAIL_AFTER_MS))
        .then(|| ticket.context["invariant"].as_str())
        .flatten()
        .filter(|name| {
            let holds = crate::observe::selector::Selector::metric(
                crate::tickets::criteria::INVARIANT_HOLDS_SERIES,
            )
            .with("invariant", name);
            state
                .harness()
                .tsdb()
                .mean(&holds, now_ms.saturating_sub(verify.started_ms), now_ms)
                .is_some_and(|held| held <= 0.0)
        })
        .map(str::to_owned);
        let failed_early = match (fired_anew, &burn_kept, &invariant_stuck) {
            (Some(fired), _, _) => Some(format!(
                "the ticket's violation fired anew {} after the deploy: the change did not hold",
                format_duration_ms(fired.saturating_sub(verify.started_ms))
            )),
            (None, Some((rule, burn)), _) => Some(format!(
                "the SLO still burns at {}x over its {rule} rule's short window after the deploy: the change did not stop the burn",
                crate::quantity::trim_float(*burn)
            )),
            (None, None, Some(name)) => Some(format!(
                "invariant {name} has not held once in the {} after the deploy: the change did not restore it",
                format_duration_ms(now_ms.saturating_sub(verify.started_ms))
            )),
            (None, None, None) => None,
        };
        if now_ms < verify.judge_from_ms && failed_early.is_none() {
            return None;
        }
        let results = if proposal.interim {
            // An interim mitigation is judged by its effect, not by the
            // cause's criteria (ADR 0010): a fallback does not bring a
            // backend back. Its effect is the incident's symptoms: the
            // criteria of the tickets linked to this one. With none, the
            // canary's harm check and the window without a recurrence of
            // harm are its judgement.
            let members = symptoms_of(state, &ticket, self.policy.verify.criteria_window_ms);
            // A symptom linked after the deploy is judged over its whole
            // duration after the deploy too.
            let longest = longest_criterion(&members, self.policy.verify.criteria_window_ms);
            if now_ms < verify.started_ms.saturating_add(longest) {
                return None;
            }
            members
                .iter()
                .flat_map(|member| {
                    state.harness().evaluate_criteria_over(
                        member,
                        now_ms,
                        self.policy.verify.criteria_window_ms,
                    )
                })
                .collect()
        } else {
            state.harness().evaluate_criteria_over(
                &ticket,
                now_ms,
                self.policy.verify.criteria_window_ms,
            )
        };
        let met = now_ms >= verify.judge_from_ms
            && results
                .iter()
                .all(|r| matches!(r.verdict, CriterionVerdict::Met));
        verify.last = serde_json::to_value(&results).unwrap_or(Value::Null);
        proposal.verify = Some(verify.clone());
        if met {
            let detail =
                "every acceptance criterion held for its duration after the deploy".to_owned();
            proposal.record(now_ms, "passed", &detail, verify.last.clone());
            proposal.stage = Stage::Succeeded;
            proposal.outcome = detail.clone();
            let mut step = Step::new(
                proposal.clone(),
                "proposal.verified",
                json!({ "result": "passed", "criteria": verify.last }),
            );
            step.ticket_command = Some(if proposal.interim {
                // A mitigation: the agent still holds the ticket and
                // finishes the work.
                Command::Rework {
                    actor: HARNESS_ACTOR.into(),
                    reason: format!(
                        "{}: {detail}; an interim mitigation: the agent continues",
                        proposal.id
                    ),
                    ttl_ms: REWORK_CLAIM_MS,
                }
            } else {
                Command::Resolve {
                    actor: HARNESS_ACTOR.into(),
                    reason: format!("{}: {detail}", proposal.id),
                }
            });
            return Some(step);
        }
        // Fail fast: a criterion judged not met (not merely pending) for
        // `fail_after` once judging began will not be met by waiting.
        let plainly_unmet = results
            .iter()
            .any(|r| matches!(r.verdict, CriterionVerdict::NotMet { .. }));
        let failing_fast = self.policy.verify.fail_after_ms.is_some_and(|after| {
            plainly_unmet && now_ms >= verify.judge_from_ms.saturating_add(after)
        });
        if now_ms < verify.deadline_ms && !failing_fast && failed_early.is_none() {
            return None;
        }
        let unmet: Vec<String> = results
            .iter()
            .filter_map(|r| match &r.verdict {
                CriterionVerdict::Met => None,
                CriterionVerdict::NotMet { reason } | CriterionVerdict::Pending { reason } => {
                    Some(format!("{} {}: {reason}", r.metric, r.condition))
                }
            })
            .collect();
        let detail = if let Some(early) = failed_early.filter(|_| now_ms < verify.deadline_ms) {
            format!(
                "{early}{}",
                if unmet.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", unmet.join("; "))
                }
            )
        } else if now_ms < verify.deadline_ms {
            format!(
                "criteria still not met {} after judging began (verify.fail_after): {}",
                format_duration_ms(self.policy.verify.fail_after_ms.unwrap_or_default()),
                unmet.join("; ")
            )
        } else {
            format!("criteria not met by the deadline: {}", unmet.join("; "))
        };
        // A fix that relieved the burn without ending it (a tenant still
        // growing past a raise) is kept, not undone (ADR 0025): rolling it
        // back would bring back the rejections it ended, and the agent's
        // next change builds on it. A human may still revert it.
        // "Before" ends when the change first went live (on the canary),
        // "after" lies wholly after the deploy.
        let first_applied = proposal
            .applied
            .iter()
            .map(|applied| applied.time_ms)
            .min()
            .unwrap_or(verify.started_ms);
        let relief = slo.as_ref().and_then(|slo| {
            crate::observe::slo::burn_relief(
                slo,
                state.harness().tsdb(),
                first_applied,
                verify.started_ms,
                now_ms,
            )
        });
        if let Some((before, after)) = relief {
            let detail = format!(
                "{detail}; but it relieved the burn ({}x over the short window before the deploy, {}x after): kept in place for the next change to build on",
                crate::quantity::trim_float(before),
                crate::quantity::trim_float(after)
            );
            proposal.record(now_ms, "kept", &detail, verify.last.clone());
            // Kept means nobody undoes it, so nobody would notice that
            // someone outside the pipeline changed the config under it
            // (a deploy job pushing its config back): the same evidence as
            // an undo refused for that reason, recorded the same way, and
            // read by reflection as a contested change (ADR 0026).
            if let Some(moved) = config_moved_under(&proposal, &state.harness()) {
                proposal.record(
                    now_ms,
                    crate::change::proposal::RESULT_COLLIDED,
                    &moved,
                    Value::Null,
                );
            }
            proposal.outcome = detail.clone();
            proposal.stage = Stage::Kept;
            let mut step = Step::new(
                proposal.clone(),
                "proposal.kept",
                json!({ "result": "kept", "before": before, "after": after, "criteria": verify.last }),
            );
            step.ticket_command = Some(Command::Rework {
                actor: HARNESS_ACTOR.into(),
                reason: format!("{}: {detail}", proposal.id),
                ttl_ms: REWORK_CLAIM_MS,
            });
            return Some(step);
        }
        proposal.record(now_ms, "failed", &detail, verify.last.clone());
        proposal.outcome = format!("{detail}; rolled back");
        let rework = Command::Rework {
            actor: HARNESS_ACTOR.into(),
            reason: format!("{}: {detail}; the change was rolled back", proposal.id),
            ttl_ms: REWORK_CLAIM_MS,
        };
        Some(self.finish_or_roll_back(
            proposal,
            Stage::RolledBack,
            Some(rework),
            json!({ "result": "failed", "criteria": verify.last }),
        ))
    }

    async fn roll_back(&self, mut proposal: Proposal, now_ms: u64) -> Step {
        let undo: Vec<(usize, Applied)> = proposal
            .to_undo()
            .map(|(index, applied)| (index, applied.clone()))
            .collect();
        let mut notes = Vec::new();
        for (index, applied) in undo {
            let Some(inverse) = &applied.inverse else {
                notes.push(format!(
                    "{} on {} cannot be undone",
                    applied.action, applied.target
                ));
                proposal.applied[index].undone = true;
                continue;
            };
            let Some(target) = self.targets.iter().find(|t| t.name == applied.target) else {
                notes.push(format!(
                    "{} is no longer a service of this harness",
                    applied.target
                ));
                continue;
            };
            let request = self.request(
                &proposal,
                &applied.target,
                &inverse.action,
                inverse.params.clone(),
                false,
                "rollback",
            );
            match target.transport.run_action(&inverse.action, &request).await {
                Ok(result) => {
                    if let Some(version) = result.config_version {
                        proposal.bases.insert(applied.target.clone(), version);
                    }
                    proposal.applied[index].undone = true;
                }
                Err(error) => {
                    let detail = format!(
                        "undoing {} on {} with {} failed: {}",
                        applied.action,
                        applied.target,
                        inverse.action,
                        describe(&error)
                    );
                    // An undo refused because someone changed the config
                    // since is a decision (theirs stands; a human decides),
                    // not a malfunction: recorded `collided`, and not
                    // reported as the tick's error.
                    let moved = config_moved(&error);
                    proposal.record(
                        now_ms,
                        if moved {
                            crate::change::proposal::RESULT_COLLIDED
                        } else {
                            "error"
                        },
                        &detail,
                        Value::Null,
                    );
                    proposal.stage = Stage::Error;
                    proposal.outcome = if moved {
                        format!("{detail}; someone changed the config after this change, and undoing it now would overwrite theirs: a human decides")
                    } else {
                        format!("{detail}; a human must restore the service")
                    };
                    let mut step = Step::new(
                        proposal.clone(),
                        "proposal.rollback_failed",
                        json!({ "detail": detail }),
                    );
                    step.ticket_command = Some(Command::Escalate {
                        actor: HARNESS_ACTOR.into(),
                        reason: format!("{}: {detail}", proposal.id),
                    });
                    return step;
                }
            }
        }
        let then = proposal.rollback_then.unwrap_or(Stage::RolledBack);
        let detail = if notes.is_empty() {
            "every applied change was undone".to_owned()
        } else {
            format!("undone, except: {}", notes.join("; "))
        };
        proposal.record(now_ms, "rolled_back", &detail, Value::Null);
        proposal.stage = then;
        let command = proposal.pending_command.take();
        let mut step = Step::new(
            proposal,
            "proposal.rolled_back",
            json!({ "detail": detail, "then": then }),
        );
        step.ticket_command = command;
        step
    }
}

/// One saved step: the new proposal, its ledger entry, the ticket's move.
struct Step {
    proposal: Proposal,
    kind: String,
    data: Value,
    ticket_command: Option<Command>,
}

impl Step {
    fn new(proposal: Proposal, kind: &str, data: Value) -> Step {
        let mut data = data;
        if let Value::Object(map) = &mut data {
            map.insert("proposal".into(), Value::String(proposal.id.clone()));
            map.insert(
                "stage".into(),
                Value::String(proposal.stage.as_str().into()),
            );
        }
        Step {
            proposal,
            kind: kind.to_owned(),
            data,
            ticket_command: None,
        }
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Successful => "successful",
        Outcome::Failed => "failed",
        Outcome::Inconclusive => "inconclusive",
        Outcome::Error => "error",
    }
}

/// Whether the action changes the config (its catalog effects name
/// `config`): such an action carries the version it expects.
fn changes_config(action: &str) -> bool {
    floodgate_contract::actions::CATALOG
        .iter()
        .find(|def| def.name == action)
        .is_some_and(|def| def.effects.state.contains(&"config"))
}

/// The targets whose config moved past the version `proposal` left it at
/// (`Proposal::bases`), as the latest observation shows them: someone
/// outside the pipeline changed the config after this change (no other
/// proposal can while this one holds its lock). `None` when none moved,
/// or when the proposal changed no config.
fn config_moved_under(proposal: &Proposal, harness: &crate::harness::Harness) -> Option<String> {
    let moved: Vec<String> = harness
        .service_documents()
        .filter_map(|(instance, document)| {
            let base = *proposal.bases.get(instance)?;
            let now = document?.pointer("/config/version")?.as_u64()?;
            (now > base).then(|| format!("{instance} from version {base} to {now}"))
        })
        .collect();
    (!moved.is_empty()).then(|| {
        format!(
            "the config moved under this change while it verified ({}): someone outside the pipeline changed it, and any change made now may be overridden the same way",
            moved.join(", ")
        )
    })
}

/// The service refused because its config is not at the expected version.
fn config_moved(error: &ClientError) -> bool {
    matches!(error, ClientError::Api { error, .. } if error.error.kind == "config_moved")
}

fn describe(error: &ClientError) -> String {
    match error {
        ClientError::Api { status, error } => format!(
            "HTTP {status} {}: {}",
            error.error.field, error.error.message
        ),
        other => other.to_string(),
    }
}

/// ` (replay: N requests would flip)` from the dry runs' replay reports.
fn summarize_replay(test: &Value) -> String {
    let mut to_limited = 0u64;
    let mut to_allowed = 0u64;
    let mut replayed = false;
    for result in test.as_array().into_iter().flatten() {
        let Some(flips) = result.pointer("/replay/flips").and_then(Value::as_array) else {
            continue;
        };
        replayed = true;
        for flip in flips {
            to_limited += flip
                .get("allowed_to_limited")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            to_allowed += flip
                .get("limited_to_allowed")
                .and_then(Value::as_u64)
                .unwrap_or(0);
        }
    }
    if replayed {
        format!("; replay: {to_limited} request(s) would turn limited, {to_allowed} allowed")
    } else {
        String::new()
    }
}

/// The canary among targets whose checks found `(samples, needed)` each
/// (see `Pipeline::canary_index`): the first whose every check has what it
/// needs, else the one with the most samples (the first of equals).
pub fn choose_canary(counts: &[Vec<(usize, usize)>]) -> usize {
    if let Some(ready) = counts
        .iter()
        .position(|checks| checks.iter().all(|(found, needed)| found >= needed))
    {
        return ready;
    }
    let mut best = 0;
    let mut most = 0;
    for (index, checks) in counts.iter().enumerate() {
        let found: usize = checks.iter().map(|(found, _)| found).sum();
        if found > most {
            best = index;
            most = found;
        }
    }
    best
}

/// One sample per step over `(end - duration, end]`, per instance.
fn samples(
    registry: &MetricRegistry,
    tsdb: &crate::observe::tsdb::Tsdb,
    name: &str,
    instances: &[&str],
    end_ms: u64,
    duration_ms: u64,
    step_ms: u64,
) -> Vec<f64> {
    let Some(metric) = registry.get(name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for instance in instances {
        let Some(metric) = metric.for_instance(instance) else {
            continue;
        };
        let mut at = end_ms.saturating_sub(duration_ms).saturating_add(step_ms);
        while at <= end_ms {
            if let Some(value) = metric.value(tsdb, step_ms, at) {
                out.push(value);
            }
            at = at.saturating_add(step_ms);
            if step_ms == 0 {
                break;
            }
        }
    }
    out
}

/// The longest duration among the tickets' acceptance criteria; a
/// criterion without one counts as `window`, and no criterion at all too.
fn longest_criterion(tickets: &[Ticket], window: u64) -> u64 {
    tickets
        .iter()
        .flat_map(|ticket| &ticket.acceptance_criteria)
        .map(|c| c.duration.map_or(window, |d| d.0))
        .max()
        .unwrap_or(window)
}

/// The symptoms of `owner`'s incident: its active members, but for
/// investigations (anomalies) and for those
/// the same objective filed on another instance (`invariant:NAME:svc-b`
/// beside `invariant:NAME:svc-a` is the same cause seen elsewhere, not an
/// effect a mitigation could end).
///
/// A mitigation is judged on relief, not on recovery: each symptom's
/// criteria are judged over at most `window` (the policy's criteria
/// window), not their full sustained duration, which the fix that follows
/// is held to.
fn symptoms_of(state: &Shared, owner: &Ticket, window: u64) -> Vec<Ticket> {
    let cause = crate::run::reflector::problem_type(owner);
    state
        .store()
        .members_of(&owner.id)
        .unwrap_or_default()
        .into_iter()
        .filter(|member| {
            member.fingerprint.is_empty() || crate::run::reflector::problem_type(member) != cause
        })
        // An investigation (an anomaly: "find out whether it matters")
        // names no harm to relieve: its criterion, the level before the
        // rise, is the cause's own measure (a tenant that grew asks more,
        // and a raise that helps it admits more), not a symptom.
        .filter(|member| member.kind != crate::tickets::TicketType::Investigation)
        .map(|mut member| {
            for criterion in &mut member.acceptance_criteria {
                criterion.duration = Some(crate::tickets::criteria::Sustain(
                    criterion.duration.map_or(window, |d| d.0.min(window)),
                ));
            }
            member
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::choose_canary;

    #[test]
    fn the_canary_is_the_first_target_whose_checks_can_be_judged() {
        // Every target judgeable: the first.
        assert_eq!(choose_canary(&[vec![(12, 3)], vec![(12, 3)]]), 0);
        // The first idle, the second not: the second.
        assert_eq!(
            choose_canary(&[vec![(0, 3)], vec![(12, 3)], vec![(12, 3)]]),
            1
        );
        // Every check must have its samples.
        assert_eq!(
            choose_canary(&[vec![(12, 3), (2, 3)], vec![(4, 3), (3, 3)]]),
            1
        );
        // None judgeable: the most samples, the first of equals.
        assert_eq!(choose_canary(&[vec![(1, 3)], vec![(2, 3)]]), 1);
        assert_eq!(choose_canary(&[vec![(2, 3)], vec![(2, 3)]]), 0);
        // None with any: the first.
        assert_eq!(choose_canary(&[vec![(0, 3)], vec![(0, 3)]]), 0);
        // No checks to judge: the first.
        assert_eq!(choose_canary(&[vec![], vec![]]), 0);
    }
}
