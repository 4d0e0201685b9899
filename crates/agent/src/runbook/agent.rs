//! The runbook agent: claims tickets, picks the runbook that matches each
//! (by source and fingerprint), and drives its [`Run`] against the harness
//! API. A ticket no runbook matches is escalated, never guessed at.
//!
//! [`RunbookAgent::poll`] does everything that can be done at `now_ms` and
//! returns: it never sleeps, so the scenario suite drives it under a
//! simulated clock and `floodgate agent --kind runbook` calls it on an
//! interval. Every command the run issues and every outcome it receives is
//! recorded on the ticket as a comment (bounded), so a human reading the
//! ticket sees what the agent saw and did.

use super::engine::{Approval, Command, Outcome, ProposalStatus, Run};
use super::format::{select, Query, Runbook};
use crate::client::{
    ActionCall, ClaimRequest, ClientError, CommentRequest, HarnessClient, ProposalRequest,
};
use serde_json::{json, Value};

/// The claim the agent takes, and renews at half-life while it works.
pub const CLAIM_TTL_MS: u64 = 15 * 60 * 1000;
/// Commands one poll runs at most (observations chain without waiting).
pub const MAX_COMMANDS_PER_POLL: usize = 32;
/// The longest comment the agent writes.
pub const MAX_COMMENT_BYTES: usize = 2000;
/// How long the agent waits before re-planning a proposal the pipeline
/// refused as a collision (another change holds what it touches, or the
/// config moved since the runbook observed it).
pub const REPLAN_AFTER_MS: u64 = 60 * 1000;
/// Collisions one ticket may meet before the agent hands it to a human.
pub const MAX_REPLANS: u32 = 10;

/// What the agent waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Nothing,
    Proposal(String),
    Question(String),
    Until(u64),
}

struct Work {
    ticket_id: String,
    /// The ticket as claimed (a re-plan starts the runbook on it afresh).
    ticket: Value,
    run: Run,
    pending: Pending,
    renewed_ms: u64,
    /// The config hash the latest evidence showed on every instance: what
    /// the next proposal is planned against.
    base_config: Option<String>,
    /// Collisions met so far.
    replans: u32,
}

/// What one poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollReport {
    /// No ticket to work.
    Idle,
    /// Working a ticket; waiting on the pipeline, a human or the clock.
    Working { ticket: String, step: String },
    /// The run over a ticket ended.
    Finished { ticket: String, outcome: String },
}

/// The runbook agent.
pub struct RunbookAgent {
    client: HarnessClient,
    name: String,
    runbooks: Vec<Runbook>,
    /// The service whose state `state:` observations read (`None`: the
    /// harness's first).
    service: Option<String>,
    work: Option<Work>,
}

impl std::fmt::Debug for RunbookAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunbookAgent")
            .field("name", &self.name)
            .field("runbooks", &self.runbooks.len())
            .finish_non_exhaustive()
    }
}

fn describe(error: &ClientError) -> String {
    match error {
        ClientError::Api { status, error } => {
            format!(
                "HTTP {status}: {}: {}",
                error.error.field, error.error.message
            )
        }
        other => other.to_string(),
    }
}

fn bounded(text: &str) -> String {
    crate::truncate(text, MAX_COMMENT_BYTES)
}

impl RunbookAgent {
    pub fn new(
        client: HarnessClient,
        name: impl Into<String>,
        runbooks: Vec<Runbook>,
    ) -> RunbookAgent {
        RunbookAgent {
            client,
            name: name.into(),
            runbooks,
            service: None,
            work: None,
        }
    }

    /// Reads `state:` observations from this service (for a ticket that
    /// names no instance of its own).
    pub fn with_service(mut self, service: impl Into<String>) -> RunbookAgent {
        self.service = Some(service.into());
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ticket being worked, if any.
    pub fn current_ticket(&self) -> Option<&str> {
        self.work.as_ref().map(|work| work.ticket_id.as_str())
    }

    async fn note(&self, ticket: &str, text: &str) {
        if let Err(error) = self
            .client
            .comment(
                ticket,
                &CommentRequest {
                    text: bounded(text),
                    actor: Some(self.name.clone()),
                },
            )
            .await
        {
            tracing::warn!(ticket, error = %describe(&error), "recording on the ticket");
        }
    }

    /// Does what can be done at `now_ms`: claims a ticket when idle, then
    /// runs its runbook until it must wait.
    pub async fn poll(&mut self, now_ms: u64) -> Result<PollReport, ClientError> {
        if self.work.is_none() {
            let claimed = self
                .client
                .claim(&ClaimRequest {
                    agent: self.name.clone(),
                    ttl_ms: Some(CLAIM_TTL_MS),
                    sources: Vec::new(),
                    ticket: None,
                })
                .await?;
            let ticket = &claimed["ticket"];
            let Some(id) = ticket["id"].as_str().map(str::to_owned) else {
                return Ok(PollReport::Idle);
            };
            let Some(runbook) = select(&self.runbooks, ticket) else {
                let reason = format!(
                    "no runbook matches source {} and fingerprint {}: a human decides",
                    ticket["source"].as_str().unwrap_or("?"),
                    ticket["fingerprint"].as_str().unwrap_or("?")
                );
                self.client.escalate(&id, &self.name, &reason).await?;
                return Ok(PollReport::Finished {
                    ticket: id,
                    outcome: format!("escalated: {reason}"),
                });
            };
            self.note(
                &id,
                &format!(
                    "runbook {} v{} ({}) takes this ticket",
                    runbook.name(),
                    runbook.version(),
                    runbook.file()
                ),
            )
            .await;
            let run = runbook.start(ticket, now_ms);
            self.work = Some(Work {
                ticket_id: id,
                ticket: ticket.clone(),
                run,
                pending: Pending::Nothing,
                renewed_ms: now_ms,
                base_config: None,
                replans: 0,
            });
        }
        self.work_on(now_ms).await
    }

    async fn work_on(&mut self, now_ms: u64) -> Result<PollReport, ClientError> {
        let Some(mut work) = self.work.take() else {
            return Ok(PollReport::Idle);
        };
        if now_ms.saturating_sub(work.renewed_ms) >= CLAIM_TTL_MS / 2 {
            // A proposal in flight keeps the claim alive on the harness side;
            // a wait or an observation loop needs this.
            match self
                .client
                .renew(&work.ticket_id, &self.name, Some(CLAIM_TTL_MS))
                .await
            {
                Ok(_) => work.renewed_ms = now_ms,
                Err(error) => {
                    tracing::debug!(ticket = %work.ticket_id, error = %describe(&error), "renewing")
                }
            }
        }
        let mut outcome: Option<Outcome> = None;
        for _ in 0..MAX_COMMANDS_PER_POLL {
            // What are we waiting for, and has it come?
            match work.pending.clone() {
                Pending::Nothing => {}
                Pending::Until(until) => {
                    if now_ms < until {
                        return self.keep(work);
                    }
                    work.pending = Pending::Nothing;
                }
                Pending::Proposal(pid) | Pending::Question(pid) => {
                    let question = matches!(work.pending, Pending::Question(_));
                    let answer = self.client.get_proposal(&pid).await?;
                    let stage = answer["proposal"]["stage"].as_str().unwrap_or("");
                    let ended = match (question, stage) {
                        (false, "succeeded") => Some(Outcome::Proposal(ProposalStatus::Succeeded)),
                        (false, "failed") => Some(Outcome::Proposal(ProposalStatus::Failed)),
                        (false, "rolled_back") => {
                            Some(Outcome::Proposal(ProposalStatus::RolledBack))
                        }
                        (false, "kept") => Some(Outcome::Proposal(ProposalStatus::Kept)),
                        (false, "rejected") => Some(Outcome::Proposal(ProposalStatus::Rejected)),
                        (true, "succeeded") => Some(Outcome::Approval(Approval::Approved)),
                        (true, "rejected") => Some(Outcome::Approval(Approval::Rejected)),
                        (_, "error") => Some(Outcome::Error(format!(
                            "{pid} ended in error: {}",
                            answer["proposal"]["outcome"].as_str().unwrap_or("")
                        ))),
                        _ => None,
                    };
                    match ended {
                        Some(ended) => {
                            self.note(
                                &work.ticket_id,
                                &format!(
                                    "{pid} ended {stage}: {}",
                                    answer["proposal"]["outcome"].as_str().unwrap_or("")
                                ),
                            )
                            .await;
                            outcome = Some(ended);
                            work.pending = Pending::Nothing;
                        }
                        None => return self.keep(work),
                    }
                }
            }
            let command = work.run.next(outcome.take(), now_ms);
            match command {
                Command::Observe { query } => {
                    let (answer, base) = self.observe(&query, &work.ticket).await;
                    if base.is_some() {
                        work.base_config = base;
                    }
                    outcome = Some(answer);
                }
                Command::Propose {
                    step,
                    actions,
                    rationale,
                    risk,
                    interim,
                } => {
                    let request = ProposalRequest {
                        interim,
                        agent: self.name.clone(),
                        rationale: rationale.clone(),
                        actions: actions
                            .iter()
                            .map(|action| ActionCall {
                                action: action.action.clone(),
                                params: action.params.clone(),
                            })
                            .collect(),
                        base_config: work.base_config.clone(),
                    };
                    match self.client.propose(&work.ticket_id, &request).await {
                        Ok(answer) => {
                            let pid = answer["proposal"]["id"].as_str().unwrap_or("").to_owned();
                            self.note(
                                &work.ticket_id,
                                &format!(
                                    "step {step}: proposed {pid} ({risk:?} risk): {} — {rationale}",
                                    serde_json::to_string(&actions).unwrap_or_default()
                                ),
                            )
                            .await;
                            work.pending = Pending::Proposal(pid);
                        }
                        Err(error) if is_collision(&error) => {
                            work.replans += 1;
                            let ticket = work.ticket_id.clone();
                            if work.replans > MAX_REPLANS {
                                let reason = format!(
                                    "step {step}: the change collided {} times (last: {}): a human decides",
                                    work.replans,
                                    describe(&error)
                                );
                                self.note(&ticket, &format!("runbook ended: escalate: {reason}"))
                                    .await;
                                if let Err(error) =
                                    self.client.escalate(&ticket, &self.name, &reason).await
                                {
                                    tracing::info!(%ticket, error = %describe(&error), "escalating");
                                }
                                return Ok(PollReport::Finished {
                                    ticket,
                                    outcome: format!("escalated: {reason}"),
                                });
                            }
                            // Re-plan from the start, on fresh evidence,
                            // once the clock has moved on.
                            self.note(
                                &ticket,
                                &format!(
                                    "step {step}: the pipeline refused the change as a collision ({}); re-planning from the start in {} s",
                                    describe(&error),
                                    REPLAN_AFTER_MS / 1000
                                ),
                            )
                            .await;
                            let Some(runbook) = select(&self.runbooks, &work.ticket) else {
                                return self.keep(work);
                            };
                            work.run = runbook.start(&work.ticket, now_ms);
                            work.base_config = None;
                            work.pending = Pending::Until(now_ms.saturating_add(REPLAN_AFTER_MS));
                            return self.keep(work);
                        }
                        Err(error) => outcome = Some(Outcome::Error(describe(&error))),
                    }
                }
                Command::AskApproval { step, question, .. } => {
                    match self
                        .client
                        .ask(&work.ticket_id, &self.name, &question)
                        .await
                    {
                        Ok(answer) => {
                            let pid = answer["proposal"]["id"].as_str().unwrap_or("").to_owned();
                            self.note(
                                &work.ticket_id,
                                &format!("step {step}: asked a human ({pid}): {question}"),
                            )
                            .await;
                            work.pending = Pending::Question(pid);
                        }
                        Err(error) => outcome = Some(Outcome::Error(describe(&error))),
                    }
                }
                Command::Wait { until_ms } => {
                    work.pending = Pending::Until(until_ms);
                }
                Command::Escalate { reason } => {
                    let ticket = work.ticket_id.clone();
                    self.note(&ticket, &format!("runbook ended: escalate: {reason}"))
                        .await;
                    if let Err(error) = self.client.escalate(&ticket, &self.name, &reason).await {
                        // Resolved or closed meanwhile: nothing to hand over.
                        tracing::info!(%ticket, error = %describe(&error), "escalating");
                    }
                    return Ok(PollReport::Finished {
                        ticket,
                        outcome: format!("escalated: {reason}"),
                    });
                }
                Command::Done { summary } => {
                    let ticket = work.ticket_id.clone();
                    self.note(&ticket, &format!("runbook ended: done: {summary}"))
                        .await;
                    let state = self.client.get_ticket(&ticket).await?["ticket"]["state"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned();
                    if matches!(state.as_str(), "claimed" | "in_progress") {
                        // The runbook is done but no verified change resolved
                        // the ticket: a human confirms and closes it.
                        let reason = format!(
                            "the runbook finished ({summary}) without a verified change resolving the ticket: a human should confirm and close it"
                        );
                        self.client.escalate(&ticket, &self.name, &reason).await?;
                        return Ok(PollReport::Finished {
                            ticket,
                            outcome: format!("escalated: {reason}"),
                        });
                    }
                    return Ok(PollReport::Finished {
                        ticket,
                        outcome: format!("done ({state}): {summary}"),
                    });
                }
            }
        }
        self.keep(work)
    }

    fn keep(&mut self, work: Work) -> Result<PollReport, ClientError> {
        let report = PollReport::Working {
            ticket: work.ticket_id.clone(),
            step: work.run.step().to_owned(),
        };
        self.work = Some(work);
        Ok(report)
    }

    /// Runs an observation; answers it and, for evidence, the config hash
    /// every instance is at (`None` when they disagree or none answered).
    /// A `state:` observation reads the instance the ticket is about
    /// (`context.instance`, an invariant's), else this agent's service,
    /// else the harness's default.
    async fn observe(&self, query: &Query, ticket: &Value) -> (Outcome, Option<String>) {
        match query {
            Query::Series {
                selector,
                window_ms,
                reduce,
            } => match self.client.observe_series(selector, Some(*window_ms)).await {
                Ok(answer) => {
                    let points: Vec<(u64, f64)> = answer["points"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|point| {
                            Some((point.get(0)?.as_u64()?, point.get(1)?.as_f64()?))
                        })
                        .collect();
                    let value = reduce
                        .apply(&points)
                        .map_or(Value::Null, |value| json!(value));
                    (Outcome::Value(value), None)
                }
                Err(error) => (Outcome::Error(describe(&error)), None),
            },
            Query::Evidence { .. } => match self.client.evidence().await {
                Ok(answer) => (
                    Outcome::Value(query.resolve_state(&answer)),
                    common_hash(&answer),
                ),
                Err(error) => (Outcome::Error(describe(&error)), None),
            },
            Query::State { .. } => {
                let service = ticket["context"]["instance"]
                    .as_str()
                    .filter(|instance| !instance.is_empty())
                    .map(str::to_owned)
                    .or_else(|| self.service.clone())
                    .unwrap_or_default();
                match self.client.observe_state(&service).await {
                    Ok(answer) => (Outcome::Value(query.resolve_state(&answer["state"])), None),
                    Err(error) => (Outcome::Error(describe(&error)), None),
                }
            }
        }
    }
}

/// The config hash every instance of the evidence is at, if they agree.
fn common_hash(evidence: &Value) -> Option<String> {
    let mut hashes = evidence["instances"]
        .as_array()?
        .iter()
        .map(|instance| instance["config_hash"].as_str());
    let first = hashes.next()??;
    hashes
        .all(|hash| hash == Some(first))
        .then(|| first.to_owned())
}

/// The pipeline refused a proposal as a collision (HTTP 409 `collision`).
fn is_collision(error: &ClientError) -> bool {
    matches!(error, ClientError::Api { status: 409, error } if error.error.kind == "collision")
}
