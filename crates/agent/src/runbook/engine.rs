//! The engine: a run of one runbook over one ticket, advanced by the agent
//! with outcomes and the time. Pure: no I/O, no clock.
//!
//! ```text
//! agent                               Run
//!   start(ticket, now) ─────────────▶ at the start step
//!   next(None, now) ────────────────▶ walks branch / ticket steps
//!   ◀──────────────── Observe(query) | Propose{..} | AskApproval{..} | Wait{..}
//!   (runs it)
//!   next(Some(outcome), now) ───────▶ stores, moves on …
//!   ◀──────────────── … Escalate{reason} | Done{summary} (terminal: repeated forever)
//! ```
//!
//! `next(None, now)` while a command is pending answers the same command
//! again (or a failure when the step's `timeout` has passed); a `Wait`
//! ends once `now` reaches `until_ms`. A failure goes to the step's
//! `on_failure`, or escalates. The whole run escalates once its `timeout`
//! passes, or after [`MAX_TRANSITIONS`] steps.

use super::expr::Scope;
use super::format::{ObserveSource, Query, Runbook, StepKind, MAX_FOR_EACH};
use floodgate_contract::actions::Risk;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The most steps one run may enter before it escalates (a bound on loops
/// of waits and observations, and on the trace): a three-step poll every
/// minute for 6 hours fits.
pub const MAX_TRANSITIONS: u32 = 2048;

/// One action to propose, in the form `POST /v1/tickets/{id}/proposals`
/// takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposedAction {
    pub action: String,
    pub params: Value,
}

/// What the agent must do next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Run the query; answer [`Outcome::Value`] (or [`Outcome::Error`]).
    Observe { query: Query },
    /// Submit one proposal with these actions and wait for the pipeline's
    /// verdict; answer [`Outcome::Proposal`].
    Propose {
        step: String,
        actions: Vec<ProposedAction>,
        rationale: String,
        risk: Risk,
        /// An interim mitigation (the ticket stays with the agent).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        interim: bool,
    },
    /// Ask a human; answer [`Outcome::Approval`]. `deadline_ms` is when the
    /// step times out, if it has a timeout.
    AskApproval {
        step: String,
        question: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline_ms: Option<u64>,
    },
    /// Call `next` again once the clock reaches `until_ms`.
    Wait { until_ms: u64 },
    /// Terminal: hand the ticket to a human with this reason.
    Escalate { reason: String },
    /// Terminal: the runbook finished; the pipeline's verification decides
    /// whether the ticket resolves.
    Done { summary: String },
}

impl Command {
    /// Whether the run is over.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Command::Escalate { .. } | Command::Done { .. })
    }
}

/// The pipeline's verdict on a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    Succeeded,
    Failed,
    RolledBack,
    /// Verification failed, but the change relieved the burn and stays
    /// in place (ADR 0025): the runbook's `on_failure` path, building on it.
    Kept,
    Rejected,
}

/// A human's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    Approved,
    Rejected,
}

/// What came back from a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "value", rename_all = "snake_case")]
pub enum Outcome {
    /// An observation's value (null: nothing there).
    Value(Value),
    /// A proposal's end.
    Proposal(ProposalStatus),
    /// An approval's answer.
    Approval(Approval),
    /// The command could not be run.
    Error(String),
}

/// What happened, for the ticket's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceEvent {
    /// The run entered the step.
    Entered,
    /// The run asked the agent for something.
    Issued { command: Command },
    /// The agent answered.
    Received { outcome: Outcome },
    /// An observation stored a variable.
    Stored { var: String, value: Value },
    /// A branch chose: the case that held (none: `default`).
    Branched {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        case: Option<usize>,
        next: String,
    },
    /// An answer came that no command asked for; ignored.
    Ignored { outcome: Outcome },
    /// The step failed.
    Failed { reason: String },
    /// The run ended.
    Finished { command: Command },
}

/// One line of a run's trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEntry {
    pub at_ms: u64,
    pub step: String,
    #[serde(flatten)]
    pub event: TraceEvent,
}

/// One run of a runbook over one ticket.
#[derive(Debug, Clone)]
pub struct Run {
    runbook: Runbook,
    ticket: Value,
    vars: BTreeMap<String, Value>,
    started_ms: u64,
    current: usize,
    entered_ms: u64,
    pending: Option<Command>,
    finished: Option<Command>,
    transitions: u32,
    trace: Vec<TraceEntry>,
}

impl Runbook {
    /// Starts a run over `ticket` (as the harness API serves it) at
    /// `now_ms`; the first [`Run::next`] gives the first command.
    pub fn start(&self, ticket: &Value, now_ms: u64) -> Run {
        let mut run = Run {
            runbook: self.clone(),
            ticket: ticket.clone(),
            vars: self.inner.vars.clone(),
            started_ms: now_ms,
            current: self.inner.start,
            entered_ms: now_ms,
            pending: None,
            finished: None,
            transitions: 0,
            trace: Vec::new(),
        };
        run.record(now_ms, TraceEvent::Entered);
        run
    }
}

enum Flow {
    /// Go to the named step.
    Goto(String),
    /// The step failed.
    Fail(String),
    /// Hand this command to the agent.
    Issue(Command),
    /// End the run.
    Finish(Command),
}

impl Run {
    /// The runbook being run.
    pub fn runbook(&self) -> &Runbook {
        &self.runbook
    }

    /// The current step's name.
    pub fn step(&self) -> &str {
        &self.runbook.inner.steps[self.current].name
    }

    /// The variables so far (constants included).
    pub fn vars(&self) -> &BTreeMap<String, Value> {
        &self.vars
    }

    /// Everything that happened, oldest first.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// The terminal command, once the run is over.
    pub fn finished(&self) -> Option<&Command> {
        self.finished.as_ref()
    }

    /// Advances the run with what came back from the last command (if
    /// anything) at `now_ms`, answering what to do next. Never panics; a
    /// terminal command is answered again on every later call.
    pub fn next(&mut self, outcome: Option<Outcome>, now_ms: u64) -> Command {
        if let Some(done) = &self.finished {
            return done.clone();
        }
        if let Some(outcome) = &outcome {
            self.record(
                now_ms,
                if self.pending.is_some() {
                    TraceEvent::Received {
                        outcome: outcome.clone(),
                    }
                } else {
                    TraceEvent::Ignored {
                        outcome: outcome.clone(),
                    }
                },
            );
        }
        if now_ms
            >= self
                .started_ms
                .saturating_add(self.runbook.inner.timeout_ms)
        {
            let reason = format!(
                "runbook {} timed out after {} ms in step {}",
                self.runbook.name(),
                self.runbook.inner.timeout_ms,
                self.step()
            );
            return self.finish(now_ms, Command::Escalate { reason });
        }
        let previous = self.pending.clone();
        let mut flow = match self.pending.take() {
            Some(pending) => self.answer(pending, outcome, now_ms),
            None => self.execute(now_ms),
        };
        // Whether the run moved since the last command (a repeated command
        // is not traced again).
        let mut moved = previous.is_none();
        loop {
            match flow {
                Flow::Issue(command) => {
                    if moved || previous.as_ref() != Some(&command) {
                        self.record(
                            now_ms,
                            TraceEvent::Issued {
                                command: command.clone(),
                            },
                        );
                    }
                    self.pending = Some(command.clone());
                    return command;
                }
                Flow::Finish(command) => return self.finish(now_ms, command),
                Flow::Fail(reason) => {
                    moved = true;
                    self.record(
                        now_ms,
                        TraceEvent::Failed {
                            reason: reason.clone(),
                        },
                    );
                    let step = &self.runbook.inner.steps[self.current];
                    flow = match &step.on_failure {
                        Some(target) => Flow::Goto(target.clone()),
                        None => Flow::Finish(Command::Escalate {
                            reason: format!("step {} failed: {reason}", step.name),
                        }),
                    };
                }
                Flow::Goto(target) => {
                    let Some(&index) = self.runbook.inner.index.get(&target) else {
                        // Validation makes this impossible; still no panic.
                        flow = Flow::Finish(Command::Escalate {
                            reason: format!("step {target:?} does not exist"),
                        });
                        continue;
                    };
                    if self.transitions >= MAX_TRANSITIONS {
                        flow = Flow::Finish(Command::Escalate {
                            reason: format!(
                                "runbook {} entered {MAX_TRANSITIONS} steps without ending",
                                self.runbook.name()
                            ),
                        });
                        continue;
                    }
                    moved = true;
                    self.transitions += 1;
                    self.current = index;
                    self.entered_ms = now_ms;
                    self.record(now_ms, TraceEvent::Entered);
                    flow = self.execute(now_ms);
                }
            }
        }
    }

    fn finish(&mut self, now_ms: u64, command: Command) -> Command {
        self.pending = None;
        self.record(
            now_ms,
            TraceEvent::Finished {
                command: command.clone(),
            },
        );
        self.finished = Some(command.clone());
        command
    }

    fn record(&mut self, at_ms: u64, event: TraceEvent) {
        let step = self.runbook.inner.steps[self.current].name.clone();
        self.trace.push(TraceEntry { at_ms, step, event });
    }

    fn timed_out(&self, now_ms: u64) -> Option<String> {
        let timeout = self.runbook.inner.steps[self.current].timeout_ms?;
        (now_ms >= self.entered_ms.saturating_add(timeout))
            .then(|| format!("no answer within {timeout} ms"))
    }

    /// Handles the answer (or its absence) to the pending command.
    fn answer(&mut self, pending: Command, outcome: Option<Outcome>, now_ms: u64) -> Flow {
        let runbook = self.runbook.clone();
        let step = &runbook.inner.steps[self.current];
        if let Command::Wait { until_ms } = pending {
            // Answers are not expected while waiting.
            if now_ms >= until_ms {
                if let StepKind::Wait { next, .. } = &step.kind {
                    return Flow::Goto(next.clone());
                }
            }
            return match self.timed_out(now_ms) {
                Some(reason) => Flow::Fail(reason),
                None => Flow::Issue(pending),
            };
        }
        let Some(outcome) = outcome else {
            return match self.timed_out(now_ms) {
                Some(reason) => Flow::Fail(reason),
                None => Flow::Issue(pending),
            };
        };
        if let Outcome::Error(error) = outcome {
            return Flow::Fail(error);
        }
        match (&step.kind, outcome) {
            (StepKind::Observe { into, next, .. }, Outcome::Value(value)) => {
                self.store(now_ms, into, value);
                Flow::Goto(next.clone())
            }
            (StepKind::Propose { on_success, .. }, Outcome::Proposal(status)) => match status {
                ProposalStatus::Succeeded => Flow::Goto(on_success.clone()),
                other => Flow::Fail(format!(
                    "the proposal ended {}",
                    serde_json::to_value(other)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                )),
            },
            (
                StepKind::Approval {
                    on_approve,
                    on_reject,
                    ..
                },
                Outcome::Approval(answer),
            ) => Flow::Goto(match answer {
                Approval::Approved => on_approve.clone(),
                Approval::Rejected => on_reject.clone(),
            }),
            (kind, outcome) => Flow::Fail(format!(
                "a {} step cannot take {}",
                kind.name(),
                match outcome {
                    Outcome::Value(_) => "a value",
                    Outcome::Proposal(_) => "a proposal's result",
                    Outcome::Approval(_) => "an approval answer",
                    Outcome::Error(_) => "an error",
                }
            )),
        }
    }

    fn store(&mut self, now_ms: u64, var: &str, value: Value) {
        self.record(
            now_ms,
            TraceEvent::Stored {
                var: var.to_owned(),
                value: value.clone(),
            },
        );
        self.vars.insert(var.to_owned(), value);
    }

    /// Runs the current step from its start.
    fn execute(&mut self, now_ms: u64) -> Flow {
        let runbook = self.runbook.clone();
        let step = &runbook.inner.steps[self.current];
        let scope = Scope {
            vars: &self.vars,
            ticket: &self.ticket,
        };
        match &step.kind {
            StepKind::Observe { source, into, next } => match source {
                ObserveSource::Ticket { pointer } => {
                    let value = self.ticket.pointer(pointer).cloned().unwrap_or(Value::Null);
                    self.store(now_ms, into, value);
                    Flow::Goto(next.clone())
                }
                ObserveSource::State { pointer } => Flow::Issue(Command::Observe {
                    query: Query::State {
                        pointer: pointer.clone(),
                    },
                }),
                ObserveSource::Evidence { pointer } => Flow::Issue(Command::Observe {
                    query: Query::Evidence {
                        pointer: pointer.clone(),
                    },
                }),
                ObserveSource::Series {
                    selector,
                    window_ms,
                    reduce,
                } => {
                    let rendered = super::expr::Template::parse_text(selector)
                        .and_then(|template| template.render_text(&scope));
                    match rendered {
                        Ok(selector) => Flow::Issue(Command::Observe {
                            query: Query::Series {
                                selector,
                                window_ms: *window_ms,
                                reduce: *reduce,
                            },
                        }),
                        Err(error) => Flow::Fail(format!("observe.series: {error}")),
                    }
                }
            },
            StepKind::Set { exprs, next } => {
                let mut values = Vec::with_capacity(exprs.len());
                for (name, expr) in exprs {
                    match expr.eval_value(&scope) {
                        Ok(value) => values.push((name.clone(), value)),
                        Err(error) => return Flow::Fail(format!("set.{name}: {error}")),
                    }
                }
                for (name, value) in values {
                    self.store(now_ms, &name, value);
                }
                Flow::Goto(next.clone())
            }
            StepKind::Branch { cases, default } => {
                for (index, case) in cases.iter().enumerate() {
                    match case.when.eval_bool(&scope) {
                        Ok(true) => {
                            self.record(
                                now_ms,
                                TraceEvent::Branched {
                                    case: Some(index),
                                    next: case.next.clone(),
                                },
                            );
                            return Flow::Goto(case.next.clone());
                        }
                        Ok(false) => {}
                        Err(error) => return Flow::Fail(format!("branch[{index}].when: {error}")),
                    }
                }
                self.record(
                    now_ms,
                    TraceEvent::Branched {
                        case: None,
                        next: default.clone(),
                    },
                );
                Flow::Goto(default.clone())
            }
            StepKind::Propose {
                actions,
                risk,
                rationale,
                interim,
                ..
            } => {
                let mut proposed = Vec::with_capacity(actions.len());
                for (index, spec) in actions.iter().enumerate() {
                    let rendered = match &spec.for_each {
                        None => spec.params.render(&scope).map(|params| vec![params]),
                        Some(list) => {
                            for_each(list, &scope, |item_scope| spec.params.render(item_scope))
                        }
                    };
                    let all = match rendered {
                        Ok(all) => all,
                        Err(error) => return Flow::Fail(format!("propose[{index}]: {error}")),
                    };
                    for params in all {
                        if let Err(error) = check_params(spec.def, &params) {
                            return Flow::Fail(format!("propose[{index}].params: {error}"));
                        }
                        proposed.push(ProposedAction {
                            action: spec.def.name.to_owned(),
                            params,
                        });
                    }
                }
                if proposed.is_empty() {
                    return Flow::Fail("every for_each list was empty: nothing to propose".into());
                }
                match rationale.render_text(&scope) {
                    Ok(rationale) => Flow::Issue(Command::Propose {
                        step: step.name.clone(),
                        actions: proposed,
                        rationale,
                        risk: *risk,
                        interim: *interim,
                    }),
                    Err(error) => Flow::Fail(format!("rationale: {error}")),
                }
            }
            StepKind::Approval { question, .. } => match question.render_text(&scope) {
                Ok(question) => Flow::Issue(Command::AskApproval {
                    step: step.name.clone(),
                    question,
                    deadline_ms: step
                        .timeout_ms
                        .map(|timeout| self.entered_ms.saturating_add(timeout)),
                }),
                Err(error) => Flow::Fail(format!("approval: {error}")),
            },
            StepKind::Wait { duration_ms, .. } => Flow::Issue(Command::Wait {
                until_ms: self.entered_ms.saturating_add(*duration_ms),
            }),
            StepKind::Escalate { reason } => Flow::Finish(Command::Escalate {
                reason: reason
                    .render_text(&scope)
                    .unwrap_or_else(|error| format!("(reason not rendered: {error})")),
            }),
            StepKind::Done { summary } => match summary.render_text(&scope) {
                Ok(summary) => Flow::Finish(Command::Done { summary }),
                Err(error) => Flow::Finish(Command::Done {
                    summary: format!("(summary not rendered: {error})"),
                }),
            },
        }
    }
}

/// Evaluates a `for_each` list and renders once per element, the element
/// bound to `vars.item` (at most [`MAX_FOR_EACH`] elements).
fn for_each(
    list: &super::expr::Expr,
    scope: &Scope<'_>,
    render: impl Fn(&Scope<'_>) -> Result<Value, String>,
) -> Result<Vec<Value>, String> {
    let items = match list.eval(scope)? {
        Value::Array(items) => items,
        other => {
            return Err(format!(
                "for_each: {:?} answered {}, not a list",
                list.text(),
                match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a bool",
                    Value::Number(_) => "a number",
                    Value::String(_) => "a string",
                    Value::Object(_) => "a map",
                    Value::Array(_) => "a list",
                }
            ))
        }
    };
    if items.len() > MAX_FOR_EACH {
        return Err(format!(
            "for_each: {} elements, more than the {MAX_FOR_EACH} one action may expand to",
            items.len()
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let mut vars = scope.vars.clone();
        vars.insert("item".to_owned(), item);
        let item_scope = Scope {
            vars: &vars,
            ticket: scope.ticket,
        };
        out.push(
            render(&item_scope).map_err(|error| format!("for_each[{index}].params: {error}"))?,
        );
    }
    Ok(out)
}

/// Validates rendered parameters against the action's schema.
fn check_params(
    def: &floodgate_contract::actions::ActionDef,
    params: &Value,
) -> Result<(), String> {
    let schema = (def.params_schema)().to_value();
    let validator = jsonschema::validator_for(&schema)
        .map_err(|error| format!("the schema of {} does not compile: {error}", def.name))?;
    let errors: Vec<String> = validator
        .iter_errors(params)
        .map(|error| {
            let at = error.instance_path.as_str();
            if at.is_empty() {
                error.to_string()
            } else {
                format!("{at}: {error}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{} refuses them: {}", def.name, errors.join("; ")))
    }
}
