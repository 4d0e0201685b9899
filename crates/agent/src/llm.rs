//! The LLM agent: works tickets by conversing with a model over an
//! OpenAI-compatible chat-completions API with tool calling.
//!
//! Per ticket ([`LlmAgent::work_one`]):
//!
//! 1. claim the most urgent open ticket (`POST /v1/agent/claim`);
//! 2. a system prompt with the ticket, and the tool catalog
//!    ([`crate::tools::CATALOG`]) as `tools` with `tool_choice: auto`;
//! 3. converse: each assistant message's `tool_calls` run through
//!    [`crate::tools::call`] and are answered with `role: tool` messages
//!    carrying the call's `tool_call_id` (a refused call answers the error
//!    document, so the model can correct itself), until the model answers
//!    without calling a tool or a bound is hit;
//! 4. every message is recorded on the ticket as a comment, and every tool
//!    call as a structured step of its trajectory (`POST /v1/tickets/{id}/steps`,
//!    a comment when the harness takes no steps)
//!    (compact, at most [`TRANSCRIPT_ENTRY_BYTES`] each);
//! 5. on a bound — model calls ([`Bounds::max_steps`]), total tokens from
//!    `usage` ([`Bounds::max_tokens`]) or wall time ([`Bounds::max_wall`],
//!    read from an injected [`Clock`]) — the ticket is escalated with the
//!    reason; a model that stops without proposing a change, escalating or
//!    releasing the ticket gets it escalated too (a human must look);
//! 6. if the model endpoint fails, the ticket is released and the error
//!    returned (an outage of the model must not escalate every ticket).
//!
//! The claim is renewed whenever half its TTL has passed.

use crate::client::{
    ClaimRequest, ClientError, CommentRequest, HarnessClient, Observation, ObservationResult,
    Source, StepRequest,
};
use crate::tools::{self, ToolError, CATALOG};
use serde_json::{json, Value};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The most model calls per ticket unless told otherwise.
pub const DEFAULT_MAX_STEPS: u32 = 20;
/// The most tokens (prompt and completion, summed over calls) per ticket
/// unless told otherwise.
pub const DEFAULT_MAX_TOKENS: u64 = 200_000;
/// The longest time on one ticket unless told otherwise.
pub const DEFAULT_MAX_WALL: Duration = Duration::from_secs(600);
/// How long a claim lasts unless told otherwise (renewed at half).
pub const DEFAULT_CLAIM_TTL_MS: u64 = 10 * 60 * 1000;
/// The bound on one model call unless told otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest comment of the transcript: a ticket's history stays
/// readable and bounded (at most a few comments per step).
pub const TRANSCRIPT_ENTRY_BYTES: usize = 1024;
/// The most of one tool result sent back to the model.
pub const TOOL_RESULT_BYTES: usize = 16 * 1024;
/// The most of the ticket put in the system prompt.
pub const TICKET_PROMPT_BYTES: usize = 32 * 1024;
/// The most tool calls run from one assistant message; the rest are
/// answered with an error without running.
pub const MAX_TOOL_CALLS_PER_STEP: usize = 16;
/// The largest chat-completions answer read.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Where time comes from (injected so tests can run the wall-time bound
/// without waiting): the contract's one clock, read here on its monotonic
/// face (`monotonic_ms`).
pub use floodgate_contract::clock::{Clock, SystemClock};

/// The per-ticket bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The most model calls.
    pub max_steps: u32,
    /// The most tokens, summed over the calls' `usage`.
    pub max_tokens: u64,
    /// The longest time from claim to the last model call.
    pub max_wall: Duration,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds {
            max_steps: DEFAULT_MAX_STEPS,
            max_tokens: DEFAULT_MAX_TOKENS,
            max_wall: DEFAULT_MAX_WALL,
        }
    }
}

/// Which bound stopped a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundHit {
    Steps { used: u32, max: u32 },
    Tokens { used: u64, max: u64 },
    WallTime { used: Duration, max: Duration },
}

impl fmt::Display for BoundHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoundHit::Steps { used, max } => {
                write!(f, "step bound reached: {used} model calls of at most {max}")
            }
            BoundHit::Tokens { used, max } => {
                write!(
                    f,
                    "token bound reached: {used} tokens used of at most {max}"
                )
            }
            BoundHit::WallTime { used, max } => write!(
                f,
                "wall-time bound reached: {} s spent of at most {} s",
                used.as_secs(),
                max.as_secs()
            ),
        }
    }
}

/// How the LLM agent reaches its model and how far it may go.
#[derive(Clone)]
pub struct LlmOptions {
    /// The API base, like `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1`; `/chat/completions` is appended.
    pub endpoint: String,
    /// The model's name at that endpoint.
    pub model: String,
    /// Sent as a bearer token when given.
    pub api_key: Option<String>,
    /// The per-ticket bounds.
    pub bounds: Bounds,
    /// How long a claim lasts.
    pub claim_ttl_ms: u64,
    /// Only claim tickets from these sources (all when empty).
    pub sources: Vec<Source>,
    /// The bound on one model call.
    pub request_timeout: Duration,
}

impl fmt::Debug for LlmOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmOptions")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .field("bounds", &self.bounds)
            .field("claim_ttl_ms", &self.claim_ttl_ms)
            .field("sources", &self.sources)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl LlmOptions {
    /// Options with the defaults for everything but where the model is.
    pub fn new(endpoint: impl Into<String>, model: impl Into<String>) -> LlmOptions {
        LlmOptions {
            endpoint: endpoint.into(),
            model: model.into(),
            api_key: None,
            bounds: Bounds::default(),
            claim_ttl_ms: DEFAULT_CLAIM_TTL_MS,
            sources: Vec::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Checks the options; errors name the option.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            return Err(format!(
                "endpoint: {:?} is not an http:// or https:// URL",
                self.endpoint
            ));
        }
        if self.model.trim().is_empty() {
            return Err("model: must not be empty".into());
        }
        if self.bounds.max_steps == 0 {
            return Err("max_steps: must be at least 1".into());
        }
        if self.bounds.max_tokens == 0 {
            return Err("max_tokens: must be at least 1".into());
        }
        if self.bounds.max_wall.is_zero() {
            return Err("max_seconds: must be at least 1".into());
        }
        if self.claim_ttl_ms == 0 || self.claim_ttl_ms > tools::MAX_TTL_MS {
            return Err(format!(
                "claim_ttl_ms: must be 1 to {} (a day)",
                tools::MAX_TTL_MS
            ));
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout: must be more than zero".into());
        }
        Ok(())
    }
}

/// Why the agent could not work a ticket.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The options are wrong (the message names the option).
    #[error("{0}")]
    Options(String),
    /// The harness refused or could not be reached (claim, transcript,
    /// escalation).
    #[error("harness: {0}")]
    Harness(#[from] ClientError),
    /// The model endpoint failed; the ticket was given back.
    #[error("model endpoint ({ticket}): {message}")]
    Model { ticket: String, message: String },
}

/// How work on a ticket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The model proposed a change; the pipeline has it now.
    Proposed,
    /// The model escalated or released the ticket itself.
    HandedBack,
    /// The agent escalated the ticket, for this reason (a bound, or the
    /// model stopping without proposing a change).
    Escalated { reason: String },
}

/// One ticket's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRun {
    /// The ticket's id.
    pub ticket: String,
    /// Model calls made.
    pub steps: u32,
    /// Tokens used, from `usage` (estimated from sizes when absent).
    pub tokens: u64,
    /// Tool calls run.
    pub tool_calls: u32,
    /// The model's last words.
    pub final_message: Option<String>,
    /// How it ended.
    pub end: End,
}

/// The LLM agent.
pub struct LlmAgent {
    harness: HarnessClient,
    chat: ChatClient,
    options: LlmOptions,
    clock: Arc<dyn Clock>,
    /// Model calls that failed in a row, per ticket (bounded by the
    /// tickets this agent worked; cleared on a good call or an end).
    failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

/// Failed model calls on one ticket, in a row, after which the agent
/// escalates it instead of giving it back again: a failure that repeats on
/// one conversation (a context too long for the model, a generation that
/// never ends) is not an outage, and the tickets behind it must not
/// starve.
pub const MAX_MODEL_FAILURES_PER_TICKET: u32 = 3;

/// Why a model call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelFailure {
    message: String,
    kind: FailureKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    /// The endpoint could not be reached: an outage, not this ticket's
    /// fault; the ticket is given back and the failure not counted.
    Unreachable,
    /// A 4xx other than 408 and 429: the server refuses this request
    /// (too long a context, a malformed conversation); sending it again
    /// will not help, so the ticket is escalated at once.
    Refused,
    /// Anything else (5xx, 408, 429, a timeout, an unreadable answer):
    /// given back and counted towards [`MAX_MODEL_FAILURES_PER_TICKET`].
    Failed,
}

impl fmt::Debug for LlmAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmAgent")
            .field("harness", &self.harness)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

const SYSTEM_PROMPT: &str = "You are an operations agent for Floodgate, a rate-limit service. \
You work one ticket, already claimed for you, through tools that call Floodgate's harness.\n\
Rules:\n\
- Read the evidence first: the ticket, its acceptance criteria, SLOs, invariants, anomalies, \
metric series, and the affected service's state and events.\n\
- Your only way to change anything is propose_change with service actions from list_actions. \
The pipeline tests, canaries, deploys and verifies a proposal, rolling it back on failure; \
risky actions wait for a human. Respect the ticket's constraints.\n\
- After proposing, you may follow the proposal with get_proposal.\n\
- If no safe change fixes the ticket, or the evidence is unclear, call escalate_ticket with the reason.\n\
- Keep comments short. When you are done, answer with a one-paragraph summary and no tool call.";

impl LlmAgent {
    /// An agent working tickets through `harness` (whose agent name it
    /// claims under) with the model of `options`.
    pub fn new(
        harness: HarnessClient,
        options: LlmOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<LlmAgent, AgentError> {
        options.validate().map_err(AgentError::Options)?;
        let chat = ChatClient::new(&options).map_err(AgentError::Options)?;
        Ok(LlmAgent {
            harness,
            chat,
            options,
            clock,
            failures: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The chat-completions `tools` array: the catalog as functions.
    pub fn tool_functions() -> Vec<Value> {
        CATALOG
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.input_schema_json(),
                    }
                })
            })
            .collect()
    }

    async fn record(&self, ticket: &str, text: &str) -> Result<(), AgentError> {
        let text = crate::truncate(text, TRANSCRIPT_ENTRY_BYTES);
        self.harness
            .comment(
                ticket,
                &CommentRequest {
                    text,
                    actor: Some(self.harness.agent().to_owned()),
                },
            )
            .await?;
        Ok(())
    }

    /// Works one ticket: `Ok(None)` when there is none to claim.
    pub async fn work_one(&self) -> Result<Option<TicketRun>, AgentError> {
        let claim = ClaimRequest {
            agent: self.harness.agent().to_owned(),
            ttl_ms: Some(self.options.claim_ttl_ms),
            sources: self.options.sources.clone(),
            ticket: None,
        };
        let answer = self.harness.claim(&claim).await?;
        let ticket = match answer.get("ticket") {
            None => {
                return Err(ClientError::Decode("the claim answer has no \"ticket\"".into()).into())
            }
            Some(Value::Null) => return Ok(None),
            Some(ticket) => ticket.clone(),
        };
        let Some(id) = ticket.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return Err(
                ClientError::Decode("the claimed ticket has no \"id\" string".into()).into(),
            );
        };
        self.converse(&id, &ticket).await.map(Some)
    }

    async fn converse(&self, id: &str, ticket: &Value) -> Result<TicketRun, AgentError> {
        let bounds = self.options.bounds;
        let started = self.clock.monotonic_ms();
        let mut last_claim = started;
        let renew_every = Duration::from_millis(self.options.claim_ttl_ms / 2);
        let mut run = TicketRun {
            ticket: id.to_owned(),
            steps: 0,
            tokens: 0,
            tool_calls: 0,
            final_message: None,
            end: End::Escalated {
                reason: String::new(),
            },
        };
        self.record(
            id,
            &format!(
                "LLM agent {} on model {}: at most {} model calls, {} tokens, {} s",
                self.harness.agent(),
                self.options.model,
                bounds.max_steps,
                bounds.max_tokens,
                bounds.max_wall.as_secs()
            ),
        )
        .await?;
        let ticket_text = crate::truncate(
            &serde_json::to_string_pretty(ticket).unwrap_or_default(),
            TICKET_PROMPT_BYTES,
        );
        let system = format!("{SYSTEM_PROMPT}\n\nThe ticket ({id}):\n```json\n{ticket_text}\n```");
        let user = format!("Work ticket {id}.");
        self.record(id, &format!("system: {system}")).await?;
        self.record(id, &format!("user: {user}")).await?;
        let mut messages = vec![
            json!({"role": "system", "content": system}),
            json!({"role": "user", "content": user}),
        ];
        let functions = LlmAgent::tool_functions();
        let mut handed_back = false;
        let mut proposed = false;
        loop {
            let now = self.clock.monotonic_ms();
            let elapsed = Duration::from_millis(now.saturating_sub(started));
            let hit = if run.steps >= bounds.max_steps {
                Some(BoundHit::Steps {
                    used: run.steps,
                    max: bounds.max_steps,
                })
            } else if run.tokens >= bounds.max_tokens {
                Some(BoundHit::Tokens {
                    used: run.tokens,
                    max: bounds.max_tokens,
                })
            } else if elapsed >= bounds.max_wall {
                Some(BoundHit::WallTime {
                    used: elapsed,
                    max: bounds.max_wall,
                })
            } else {
                None
            };
            if let Some(hit) = hit {
                return self.escalate(run, hit.to_string()).await;
            }
            if Duration::from_millis(now.saturating_sub(last_claim)) >= renew_every {
                self.harness
                    .renew(id, self.harness.agent(), Some(self.options.claim_ttl_ms))
                    .await?;
                last_claim = now;
            }
            let reply = match self.chat.complete(&messages, &functions).await {
                Ok(reply) => {
                    self.failed_calls(id, false);
                    reply
                }
                Err(failure) => {
                    let count = match failure.kind {
                        FailureKind::Unreachable => 0,
                        FailureKind::Refused | FailureKind::Failed => self.failed_calls(id, true),
                    };
                    if failure.kind == FailureKind::Refused {
                        self.failed_calls(id, false);
                        return self
                            .escalate(
                                run,
                                format!(
                                    "the model endpoint refused the conversation (sending it again will not help): {}",
                                    failure.message
                                ),
                            )
                            .await;
                    }
                    if count >= MAX_MODEL_FAILURES_PER_TICKET {
                        self.failed_calls(id, false);
                        return self
                            .escalate(
                                run,
                                format!(
                                    "the model call failed {count} times in a row on this ticket (last: {})",
                                    failure.message
                                ),
                            )
                            .await;
                    }
                    return Err(self.give_back(id, failure.message).await);
                }
            };
            run.steps += 1;
            run.tokens = run.tokens.saturating_add(reply.tokens);
            self.record(id, &reply.summary(run.steps, run.tokens))
                .await?;
            messages.push(reply.message.clone());
            if reply.calls.is_empty() {
                run.final_message = reply.content.clone();
                break;
            }
            for (index, call) in reply.calls.iter().enumerate() {
                let outcome = if index >= MAX_TOOL_CALLS_PER_STEP {
                    Err(ToolError::InvalidArgument {
                        field: "tool_calls".into(),
                        message: format!(
                            "not run: at most {MAX_TOOL_CALLS_PER_STEP} tool calls per message"
                        ),
                    })
                } else {
                    run.tool_calls += 1;
                    match &call.arguments {
                        Ok(args) => tools::call(&self.harness, &call.name, args.clone()).await,
                        Err(error) => Err(error.clone()),
                    }
                };
                if outcome.is_ok() {
                    match call.name.as_str() {
                        "propose_change" => proposed = true,
                        "escalate_ticket" | "release_ticket" => handed_back = true,
                        _ => {}
                    }
                }
                let content = match &outcome {
                    Ok(answer) => answer.to_string(),
                    Err(error) => error.to_json().to_string(),
                };
                let arguments = match &call.arguments {
                    Ok(args) => args.to_string(),
                    Err(_) => call.raw_arguments.clone(),
                };
                let verdict = if outcome.is_ok() { "ok" } else { "error" };
                // A structured step in the ticket's trajectory (the tool
                // call, its arguments and what came back); a harness that
                // takes no steps gets the same as a comment.
                let step = StepRequest {
                    agent: self.harness.agent().to_owned(),
                    message: Some(format!(
                        "[step {}] tool {} -> {verdict}",
                        run.steps, call.name
                    )),
                    reasoning: None,
                    tool_calls: vec![crate::client::ToolCall {
                        tool_call_id: call.id.clone(),
                        function_name: call.name.clone(),
                        arguments: call.arguments.clone().unwrap_or_else(|_| {
                            Value::String(crate::truncate(
                                &call.raw_arguments,
                                TRANSCRIPT_ENTRY_BYTES / 2,
                            ))
                        }),
                    }],
                    observation: Some(Observation {
                        results: vec![ObservationResult {
                            source_call_id: Some(call.id.clone()),
                            content: crate::truncate(&content, TRANSCRIPT_ENTRY_BYTES),
                        }],
                    }),
                };
                if self.harness.step(id, &step).await.is_err() {
                    self.record(
                        id,
                        &format!(
                            "[step {}] tool {} {} -> {verdict}: {content}",
                            run.steps,
                            call.name,
                            crate::truncate(&arguments, TRANSCRIPT_ENTRY_BYTES / 2)
                        ),
                    )
                    .await?;
                }
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": call.id,
                    "content": crate::truncate(&content, TOOL_RESULT_BYTES),
                }));
            }
        }
        if proposed {
            run.end = End::Proposed;
        } else if handed_back {
            run.end = End::HandedBack;
        } else {
            let last = run.final_message.clone().unwrap_or_default();
            let reason = format!(
                "the model stopped without proposing a change: {}",
                crate::truncate(&last, TRANSCRIPT_ENTRY_BYTES / 2)
            );
            return self.escalate(run, reason).await;
        }
        self.record(
            id,
            &format!(
                "finished after {} model calls and {} tokens: {}",
                run.steps,
                run.tokens,
                match run.end {
                    End::Proposed => "a change was proposed",
                    _ => "the model handed the ticket back",
                }
            ),
        )
        .await?;
        Ok(run)
    }

    async fn escalate(&self, mut run: TicketRun, reason: String) -> Result<TicketRun, AgentError> {
        let reason = crate::truncate(&reason, tools::MAX_TEXT_BYTES);
        self.harness
            .escalate(&run.ticket, self.harness.agent(), &reason)
            .await?;
        run.end = End::Escalated { reason };
        Ok(run)
    }

    /// Counts a failed model call on ticket `id` (`failed`), or clears its
    /// count; answers the count.
    fn failed_calls(&self, id: &str, failed: bool) -> u32 {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !failed {
            failures.remove(id);
            return 0;
        }
        let count = failures.entry(id.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// Records the model failure and releases the ticket (best effort:
    /// the model's error is the one returned).
    async fn give_back(&self, id: &str, message: String) -> AgentError {
        let note = format!("model call failed, releasing the ticket: {message}");
        if let Err(error) = self.record(id, &note).await {
            tracing::warn!(ticket = id, %error, "cannot record the model failure");
        }
        if let Err(error) = self.harness.release(id, self.harness.agent()).await {
            tracing::warn!(ticket = id, %error, "cannot release the ticket");
        }
        AgentError::Model {
            ticket: id.to_owned(),
            message,
        }
    }

    /// Works tickets until `once` is done (one claim attempt) or forever,
    /// waiting `idle` when there is no ticket or the model failed.
    pub async fn run(&self, once: bool, idle: Duration) -> Result<(), AgentError> {
        loop {
            match self.work_one().await {
                Ok(Some(run)) => {
                    tracing::info!(ticket = %run.ticket, steps = run.steps, tokens = run.tokens, end = ?run.end, "ticket worked");
                    if once {
                        return Ok(());
                    }
                }
                Ok(None) => {
                    tracing::info!("no ticket to claim");
                    if once {
                        return Ok(());
                    }
                    tokio::time::sleep(idle).await;
                }
                Err(error) => {
                    if once {
                        return Err(error);
                    }
                    tracing::warn!(%error, "cannot work a ticket; waiting");
                    tokio::time::sleep(idle).await;
                }
            }
        }
    }
}

// ---- the chat-completions client ---------------------------------------------

/// One tool call of an assistant message.
#[derive(Debug, Clone)]
struct ToolCall {
    id: String,
    name: String,
    /// The parsed arguments, or why they are not a JSON object.
    arguments: Result<Value, ToolError>,
    raw_arguments: String,
}

/// One assistant reply.
#[derive(Debug, Clone)]
struct Reply {
    /// The assistant message as it goes back into the conversation.
    message: Value,
    content: Option<String>,
    calls: Vec<ToolCall>,
    tokens: u64,
}

impl Reply {
    fn summary(&self, step: u32, total_tokens: u64) -> String {
        let mut text = format!("[step {step}, {total_tokens} tokens] assistant:");
        if let Some(content) = &self.content {
            text.push(' ');
            text.push_str(&crate::truncate(content, TRANSCRIPT_ENTRY_BYTES / 2));
        }
        if !self.calls.is_empty() {
            let names: Vec<&str> = self.calls.iter().map(|call| call.name.as_str()).collect();
            text.push_str(&format!(" (calls {})", names.join(", ")));
        }
        text
    }
}

/// POSTs to `{endpoint}/chat/completions`.
struct ChatClient {
    http: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
}

impl ChatClient {
    fn new(options: &LlmOptions) -> Result<ChatClient, String> {
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .build()
            .map_err(|error| format!("endpoint: cannot build an HTTP client: {error}"))?;
        Ok(ChatClient {
            http,
            url: format!(
                "{}/chat/completions",
                options.endpoint.trim_end_matches('/')
            ),
            model: options.model.clone(),
            api_key: options.api_key.clone(),
        })
    }

    async fn complete(
        &self,
        messages: &[Value],
        functions: &[Value],
    ) -> Result<Reply, ModelFailure> {
        let failed = |kind: FailureKind, message: String| ModelFailure { message, kind };
        let body = json!({
            "model": self.model,
            "messages": messages,
            "tools": functions,
            "tool_choice": "auto",
        });
        let body = serde_json::to_vec(&body)
            .map_err(|error| failed(FailureKind::Refused, error.to_string()))?;
        let sent_bytes = body.len();
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.map_err(|error| {
            let kind = if error.is_connect() {
                FailureKind::Unreachable
            } else {
                FailureKind::Failed
            };
            failed(kind, format!("POST {}: {}", self.url, with_causes(&error)))
        })?;
        let status = response.status();
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| {
            failed(
                FailureKind::Failed,
                format!("POST {}: {}", self.url, with_causes(&error)),
            )
        })? {
            if answer.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(failed(
                    FailureKind::Failed,
                    format!(
                        "POST {}: the answer is larger than {MAX_RESPONSE_BYTES} bytes",
                        self.url
                    ),
                ));
            }
            answer.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let code = status.as_u16();
            let kind = if status.is_client_error() && code != 408 && code != 429 {
                FailureKind::Refused
            } else {
                FailureKind::Failed
            };
            return Err(failed(
                kind,
                format!(
                    "POST {}: HTTP {code}: {}",
                    self.url,
                    crate::truncate(&String::from_utf8_lossy(&answer), 512)
                ),
            ));
        }
        let value: Value = serde_json::from_slice(&answer).map_err(|error| {
            failed(
                FailureKind::Failed,
                format!("the answer is not JSON: {error}"),
            )
        })?;
        parse_reply(&value, sent_bytes + answer.len())
            .map_err(|message| failed(FailureKind::Failed, message))
    }
}

/// An error and its causes, `a: b: c` (reqwest's own text leaves out why:
/// a timeout, a refused connection).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = cause_of(source);
    }
    text
}

fn cause_of<'a>(
    error: Option<&'a (dyn std::error::Error + 'static)>,
) -> Option<&'a (dyn std::error::Error + 'static)> {
    error.and_then(std::error::Error::source)
}

/// Reads a chat-completions answer; `exchanged_bytes` estimates the tokens
/// when the answer has no `usage`.
fn parse_reply(value: &Value, exchanged_bytes: usize) -> Result<Reply, String> {
    let message = value
        .pointer("/choices/0/message")
        .and_then(Value::as_object)
        .ok_or("the answer has no choices[0].message object")?;
    let content = match message.get("content") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        // Content parts: keep the text ones.
        Some(Value::Array(parts)) => Some(
            parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
        ),
        Some(_) => return Err("choices[0].message.content: not a string".into()),
    };
    let mut calls = Vec::new();
    if let Some(list) = message.get("tool_calls").filter(|list| !list.is_null()) {
        let list = list
            .as_array()
            .ok_or("choices[0].message.tool_calls: not an array")?;
        for (index, call) in list.iter().enumerate() {
            let field = format!("choices[0].message.tool_calls[{index}]");
            let name = call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or(format!("{field}.function.name: missing"))?
                .to_owned();
            let id = call
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .map_or_else(|| format!("call_{index}"), str::to_owned);
            let (raw_arguments, arguments) = match call.pointer("/function/arguments") {
                None | Some(Value::Null) => (String::new(), Ok(Value::Null)),
                Some(Value::String(text)) if text.trim().is_empty() => {
                    (text.clone(), Ok(Value::Null))
                }
                Some(Value::String(text)) => {
                    let parsed = serde_json::from_str::<Value>(text).map_err(|error| {
                        ToolError::InvalidArgument {
                            field: "arguments".into(),
                            message: format!("not JSON: {error}"),
                        }
                    });
                    (text.clone(), parsed)
                }
                // Some servers send the object itself.
                Some(other) => (other.to_string(), Ok(other.clone())),
            };
            calls.push(ToolCall {
                id,
                name,
                arguments,
                raw_arguments,
            });
        }
    }
    let usage = value.get("usage");
    let total = usage
        .and_then(|usage| usage.get("total_tokens"))
        .and_then(Value::as_u64);
    let parts = usage.map(|usage| {
        ["prompt_tokens", "completion_tokens"]
            .iter()
            .filter_map(|key| usage.get(*key).and_then(Value::as_u64))
            .sum::<u64>()
    });
    let tokens = match (total, parts) {
        (Some(total), _) => total,
        (None, Some(parts)) if parts > 0 => parts,
        // No usage: about four bytes a token.
        _ => u64::try_from(exchanged_bytes / 4).unwrap_or(u64::MAX),
    };
    // An empty string, not null, beside tool calls: some OpenAI-compatible
    // servers (llama-cpp-python) refuse a null content when it comes back
    // in the conversation.
    let mut echoed = json!({"role": "assistant", "content": content.clone().unwrap_or_default()});
    if !calls.is_empty() {
        echoed["tool_calls"] = calls
            .iter()
            .map(|call| {
                json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.raw_arguments},
                })
            })
            .collect();
    }
    Ok(Reply {
        message: echoed,
        content,
        calls,
        tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_tool_calls_usage_and_odd_shapes() {
        let reply = parse_reply(
            &json!({
                "choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "get_ticket", "arguments": "{\"ticket\":\"INF-0001\"}"}},
                    {"type": "function", "function": {"name": "list_slos", "arguments": ""}},
                    {"id": "c", "type": "function", "function": {"name": "x", "arguments": "{nope"}},
                    {"id": "d", "type": "function", "function": {"name": "y", "arguments": {"k": 1}}}
                ]}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5}
            }),
            0,
        )
        .unwrap();
        assert_eq!(reply.tokens, 15);
        assert_eq!(reply.calls.len(), 4);
        assert_eq!(reply.calls[0].arguments, Ok(json!({"ticket": "INF-0001"})));
        assert_eq!(reply.calls[1].id, "call_1");
        assert_eq!(reply.calls[1].arguments, Ok(Value::Null));
        assert!(
            matches!(&reply.calls[2].arguments, Err(ToolError::InvalidArgument { field, .. }) if field == "arguments")
        );
        assert_eq!(reply.calls[3].arguments, Ok(json!({"k": 1})));
        assert_eq!(
            reply.message["tool_calls"][3]["function"]["arguments"],
            "{\"k\":1}"
        );
        assert_eq!(reply.message["content"], "", "echoed empty, never null");
    }

    #[test]
    fn replies_without_usage_are_estimated_and_bad_ones_named() {
        let reply = parse_reply(
            &json!({"choices": [{"message": {"role": "assistant", "content": "done"}}]}),
            400,
        )
        .unwrap();
        assert_eq!(reply.tokens, 100);
        assert!(reply.calls.is_empty());
        let error = parse_reply(&json!({"choices": []}), 0).unwrap_err();
        assert!(error.contains("choices[0].message"), "{error}");
        let error = parse_reply(
            &json!({"choices": [{"message": {"tool_calls": [{"function": {}}]}}]}),
            0,
        )
        .unwrap_err();
        assert!(error.contains("tool_calls[0].function.name"), "{error}");
    }

    #[test]
    fn options_errors_name_the_option() {
        let mut options = LlmOptions::new("ftp://x", "m");
        assert!(options.validate().unwrap_err().starts_with("endpoint"));
        options.endpoint = "http://127.0.0.1:1/v1".into();
        options.bounds.max_steps = 0;
        assert!(options.validate().unwrap_err().starts_with("max_steps"));
        options.bounds.max_steps = 1;
        options.model = " ".into();
        assert!(options.validate().unwrap_err().starts_with("model"));
    }
}
