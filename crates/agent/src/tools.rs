//! The one tool catalog, shared by the MCP server ([`crate::mcp`]) and the
//! LLM agent ([`crate::llm`]).
//!
//! Each tool is a [`ToolDef`] (name, title, description, JSON Schema of its
//! arguments, whether it only reads and whether it may be destructive) and
//! one arm of [`call`], which validates the arguments (errors name the
//! field: `actions[0].action`) and makes one harness call through
//! [`HarnessClient`]. The agent name in claims, proposals, comments and
//! escalations is the client's ([`HarnessClient::agent`]), never an
//! argument: a model cannot act as someone else.
//!
//! `docs/catalog/agent-tools.md` is generated from [`CATALOG`]
//! ([`tools_markdown`], `floodgate catalog --write`).

use crate::client::{
    ActionCall, ClaimRequest, ClientError, CommentRequest, HarnessClient, LinkRequest,
    NoticeMatcher, NoticeRequest, ProposalRequest, ServiceEventsQuery, Source, TicketQuery,
};
use floodgate_contract::GeneratedDoc;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The longest ticket or proposal id, service name or source accepted.
pub const MAX_ID_BYTES: usize = 128;
/// The longest free text accepted (comment, reason, rationale): the
/// harness's bound on a comment.
pub const MAX_TEXT_BYTES: usize = 8192;
/// The longest series selector accepted.
pub const MAX_SELECTOR_BYTES: usize = 1024;
/// The most actions in one proposal.
pub const MAX_ACTIONS: usize = 16;
/// The most sources or states in one filter, and the most matchers of a
/// notice (the harness's bound).
pub const MAX_FILTER_ITEMS: usize = 16;
/// The longest notice matcher value or regex (the harness's bound).
pub const MAX_MATCHER_BYTES: usize = 256;
/// The longest notice reason (the harness's bound).
pub const MAX_REASON_BYTES: usize = 1024;
/// The longest claim accepted (the harness's bound: a day).
pub const MAX_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// One tool.
#[derive(Debug, Clone, Copy)]
pub struct ToolDef {
    /// The name models call it by.
    pub name: &'static str,
    /// A short human title.
    pub title: &'static str,
    /// What it does and when to use it (shown to models).
    pub description: &'static str,
    /// The JSON Schema of its arguments (from a schemars type).
    pub input_schema: fn() -> schemars::Schema,
    /// It changes nothing.
    pub read_only: bool,
    /// It may lead to a change that is not purely additive (MCP's
    /// `destructiveHint`); never true of a read-only tool.
    pub destructive: bool,
}

impl ToolDef {
    /// The input schema as JSON.
    pub fn input_schema_json(&self) -> Value {
        (self.input_schema)().to_value()
    }
}

/// The schema of `T`, self-contained (subschemas inlined, no `$schema`),
/// as both MCP clients and chat-completions APIs accept it.
fn schema<T: JsonSchema>() -> schemars::Schema {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .into_generator()
        .into_root_schema_for::<T>();
    if let Some(object) = schema.as_object_mut() {
        object.remove("title");
    }
    schema
}

// ---- arguments --------------------------------------------------------------

/// Arguments of `claim_ticket`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimTicketArgs {
    /// Claim this ticket (an id like `INF-0001`) rather than the most
    /// urgent open one.
    #[serde(default)]
    pub ticket: Option<String>,
    /// Only tickets from these sources: slo, invariant, anomaly, human,
    /// alertmanager, reflection.
    #[serde(default)]
    pub sources: Option<Vec<String>>,
    /// How long the claim lasts, in milliseconds (the harness's default
    /// when absent).
    #[serde(default)]
    pub ttl_ms: Option<u64>,
}

/// Arguments naming one ticket.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketArgs {
    /// The ticket's id, like `INF-0001`.
    pub ticket: String,
}

/// Arguments of `list_tickets`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTicketsArgs {
    /// Only tickets in these states: open, claimed, in_progress,
    /// verifying, resolved, failed, escalated, cancelled.
    #[serde(default)]
    pub state: Option<Vec<String>>,
    /// Only tickets from this source.
    #[serde(default)]
    pub source: Option<String>,
    /// Only tickets after this id (paging).
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many (the harness caps it).
    #[serde(default)]
    pub limit: Option<u64>,
}

/// Arguments of `observe_series`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObserveSeriesArgs {
    /// Which series, like `floodgate_requests_total{service="edge"}`.
    pub selector: String,
    /// How far back from now, in milliseconds.
    #[serde(default)]
    pub window_ms: Option<u64>,
}

/// Arguments naming one service.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceArgs {
    /// The service's name in the harness's objectives.
    pub service: String,
}

/// Arguments of `get_service_events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceEventsArgs {
    /// The service's name in the harness's objectives.
    pub service: String,
    /// Only events after this sequence number.
    #[serde(default)]
    pub after: Option<u64>,
    /// At most this many.
    #[serde(default)]
    pub limit: Option<u64>,
}

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// One action of a proposed change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionArgs {
    /// The service action, as `list_actions` names it (`set_limit`, …).
    pub action: String,
    /// Its parameters, as `list_actions` describes them.
    #[schemars(with = "Map<String, Value>")]
    pub params: Value,
}

/// Arguments of `propose_change`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeChangeArgs {
    /// The ticket this change fixes (claimed by this agent).
    pub ticket: String,
    /// Why this change fixes the ticket: the evidence and the expected
    /// effect.
    pub rationale: String,
    /// The service actions to run, in order.
    pub actions: Vec<ActionArgs>,
    /// True for an interim mitigation rather than the fix: once verified,
    /// the ticket stays with this agent (in progress) so it can finish the
    /// work, instead of resolving.
    #[serde(default)]
    pub interim: bool,
    /// The config hash the change was planned against (get_evidence's
    /// `instances[].config_hash`): when a service's config has moved since,
    /// the change is refused as a collision and must be re-planned.
    #[serde(default)]
    pub base_config: Option<String>,
}

/// Arguments naming one proposal.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalArgs {
    /// The proposal's id, as `propose_change` answered it.
    pub proposal: String,
}

/// Arguments of `comment_ticket`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentArgs {
    /// The ticket's id.
    pub ticket: String,
    /// The comment (Markdown).
    pub text: String,
}

/// Arguments of `link_ticket`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkArgs {
    /// The open ticket to link.
    pub ticket: String,
    /// The ticket that owns the incident to join; absent or null to take
    /// the ticket out of its incident.
    #[serde(default)]
    pub incident: Option<String>,
    /// Why they are one incident (or not).
    pub reason: String,
}

/// Arguments of `escalate_ticket`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateArgs {
    /// The ticket's id.
    pub ticket: String,
    /// Why a human must take over.
    pub reason: String,
}

/// Arguments of `list_notices`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListNoticesArgs {
    /// Only notices in this state now: active, pending, expired or all
    /// (all when absent).
    #[serde(default)]
    pub state: Option<String>,
}

/// One matcher of a notice.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeMatcherArgs {
    /// The label: service, limit, tenant, metric, anomaly, slo or
    /// invariant (an anomaly carries anomaly, metric, and service, limit,
    /// tenant when its series pins them).
    pub name: String,
    /// The exact value (give this or `regex`).
    #[serde(default)]
    pub value: Option<String>,
    /// A regex the whole value must match (give this or `value`).
    #[serde(default)]
    pub regex: Option<String>,
}

/// Arguments of `create_notice`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNoticeArgs {
    /// What the expected change touches: 1 to 16 matchers, all of those
    /// on labels a signal carries must match it.
    pub matchers: Vec<NoticeMatcherArgs>,
    /// When the change starts, in milliseconds since the epoch (now when
    /// absent).
    #[serde(default)]
    pub starts_ms: Option<u64>,
    /// When it stops being expected (give this or `duration_ms`; at most
    /// 7 days after the start).
    #[serde(default)]
    pub ends_ms: Option<u64>,
    /// How long it is expected, in milliseconds (give this or `ends_ms`).
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// What change is expected and why.
    pub reason: String,
    /// How many times its level the matched series may move and still be
    /// expected (above 1); beyond it the anomaly is ticketed, naming the
    /// notice. Absent: any move is expected.
    #[serde(default)]
    pub max_factor: Option<f64>,
}

// ---- the catalog ------------------------------------------------------------

/// Every tool, in the order they are listed.
pub static CATALOG: &[ToolDef] = &[
    ToolDef {
        name: "claim_ticket",
        title: "Claim a ticket",
        description: "Claim the most urgent open ticket (or the one named) for this agent. \
            Answers {\"ticket\": Ticket} or {\"ticket\": null} when there is none. \
            A claim expires after its TTL unless the ticket moves on.",
        input_schema: schema::<ClaimTicketArgs>,
        read_only: false,
        destructive: false,
    },
    ToolDef {
        name: "get_ticket",
        title: "Read a ticket",
        description: "A ticket with its history and proposals: objective, acceptance \
            criteria, constraints, the evidence that filed it, its state and claim.",
        input_schema: schema::<TicketArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "list_tickets",
        title: "List tickets",
        description: "Tickets, oldest first, filtered by state and source.",
        input_schema: schema::<ListTicketsArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "get_criteria",
        title: "Evaluate acceptance criteria",
        description: "A ticket's acceptance criteria evaluated now: each verdict, and \
            whether all are met.",
        input_schema: schema::<TicketArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "observe_series",
        title: "Read metric series",
        description: "Samples from the harness's series store for a selector over a \
            window ending now.",
        input_schema: schema::<ObserveSeriesArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "get_service_state",
        title: "Read a service's state",
        description: "A service's state document: config version, limits, store, \
            failure policy, draining.",
        input_schema: schema::<ServiceArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "get_evidence",
        title: "Read the evidence",
        description: "Every instance's state merged: each limit's rejected and admitted \
            hits per second by descriptor value (with entries ready for an add_limit \
            path), each value's demand against its limit (demand_ratio), the most \
            rejecting limit, the busiest value, the hottest value (the most hits asked, \
            with its lead over the next value: a hot key's suspect), and each instance's \
            store health.",
        input_schema: schema::<NoArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "list_incidents",
        title: "List incidents",
        description: "Tickets grouped into incidents: each owner (the ticket worked) with             its causes (value:DOMAIN/KEY=VALUE, limit:DOMAIN/NAME, instance:NAME) and the             tickets linked to it, which are not handed out while the owner is active and             follow it when it ends (resolved or escalated with it; released when it failed,             or when an investigation owner went to a human and the member reports a harm).",
        input_schema: schema::<NoArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "link_ticket",
        title: "Link a ticket to an incident",
        description: "Make an open ticket a member of the incident an active ticket owns             (same cause: it is then not worked on its own), or take it out with             incident null. Recorded in the ledger with the reason.",
        input_schema: schema::<LinkArgs>,
        read_only: false,
        destructive: false,
    },
    ToolDef {
        name: "get_service_events",
        title: "Read a service's events",
        description: "A page of a service's events (actions, config changes, store \
            failures) after a sequence number.",
        input_schema: schema::<ServiceEventsArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "list_slos",
        title: "List SLOs",
        description: "Every SLO at the last tick: SLI, error budget remaining, burn rate \
            per window, time to exhaustion, alerts.",
        input_schema: schema::<NoArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "list_invariants",
        title: "List invariants",
        description: "Every invariant and whether it held at the last tick.",
        input_schema: schema::<NoArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "list_anomalies",
        title: "List anomalies",
        description: "Every anomaly detector's verdict at the last tick.",
        input_schema: schema::<NoArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "list_actions",
        title: "List service actions",
        description: "The actions a proposal may use: parameters schema, risk, inverse, \
            and whether the policy gates them behind an approval.",
        input_schema: schema::<NoArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "propose_change",
        title: "Propose a change",
        description: "Propose service actions that fix a claimed ticket. The pipeline \
            tests them (dry run and replay) at once, then canaries, deploys and verifies \
            them, rolling back on failure; risky actions wait for a human approval. \
            A verified proposal resolves the ticket, unless it is marked interim (a \
            mitigation: the ticket stays with you to finish the work). Pass base_config \
            (the config hash you planned against); a change that would collide with \
            another ticket's change in flight, or with a config that moved, is refused \
            (kind collision): re-read the evidence and re-plan. \
            Answers the proposal; follow it with get_proposal.",
        input_schema: schema::<ProposeChangeArgs>,
        read_only: false,
        destructive: true,
    },
    ToolDef {
        name: "get_proposal",
        title: "Read a proposal",
        description: "A proposal and its pipeline stage (testing, awaiting_approval, \
            canary, held, deploying, verifying, succeeded, failed, rejected, rolled_back, kept), \
            with each stage's evidence.",
        input_schema: schema::<ProposalArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "comment_ticket",
        title: "Comment on a ticket",
        description: "Add a comment to a ticket's history (findings, reasoning).",
        input_schema: schema::<CommentArgs>,
        read_only: false,
        destructive: false,
    },
    ToolDef {
        name: "escalate_ticket",
        title: "Escalate a ticket",
        description: "Hand a ticket to a human, with the reason: when no safe change \
            fixes it or the evidence is unclear.",
        input_schema: schema::<EscalateArgs>,
        read_only: false,
        destructive: false,
    },
    ToolDef {
        name: "release_ticket",
        title: "Release a ticket",
        description: "Give a claimed ticket back to the queue without changing anything.",
        input_schema: schema::<TicketArgs>,
        read_only: false,
        destructive: false,
    },
    ToolDef {
        name: "list_notices",
        title: "List expected-change notices",
        description: "Notices of expected changes (a launch, a migration): what each \
            matches, its window, author, reason, max_factor, state (pending, active, \
            expired) and how many anomaly episodes it kept from filing a ticket. An \
            anomaly an active notice covers files no ticket; SLO and invariant tickets \
            are never held back.",
        input_schema: schema::<ListNoticesArgs>,
        read_only: true,
        destructive: false,
    },
    ToolDef {
        name: "create_notice",
        title: "Announce an expected change",
        description: "Announce a planned change so that the anomalies it causes do not \
            file tickets while it lasts (never SLO or invariant tickets). Give matchers \
            (e.g. [{\"name\": \"tenant\", \"value\": \"acme\"}]), a window (ends_ms or \
            duration_ms, at most 7 days), a reason, and a max_factor to widen the \
            thresholds rather than silence them. The author is this agent. Needs the \
            harness's intake scope. Answers {\"notice\": Notice}.",
        input_schema: schema::<CreateNoticeArgs>,
        read_only: false,
        destructive: false,
    },
];

/// The tool named `name`.
pub fn find(name: &str) -> Option<&'static ToolDef> {
    CATALOG.iter().find(|tool| tool.name == name)
}

// ---- calling ----------------------------------------------------------------

/// Why a tool call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// No tool has that name.
    #[error("unknown tool {0:?}")]
    UnknownTool(String),
    /// The arguments are wrong; `field` is a path like `actions[0].action`.
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    /// The harness refused or could not be reached.
    #[error("{0}")]
    Harness(ClientError),
}

impl ToolError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> ToolError {
        ToolError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The error as a JSON document for a model or an MCP client:
    /// `{"error": {"kind", "field", "message"}}` (plus `status` when the
    /// harness answered one).
    pub fn to_json(&self) -> Value {
        match self {
            ToolError::UnknownTool(name) => json!({"error": {
                "kind": "unknown_tool",
                "field": "name",
                "message": format!(
                    "no tool {name:?} (expected one of {})",
                    CATALOG.iter().map(|tool| tool.name).collect::<Vec<_>>().join(", ")
                ),
            }}),
            ToolError::InvalidArgument { field, message } => json!({"error": {
                "kind": "invalid_argument",
                "field": field,
                "message": message,
            }}),
            ToolError::Harness(ClientError::Api { status, error }) => json!({"error": {
                "kind": error.error.kind,
                "field": error.error.field,
                "message": error.error.message,
                "status": status,
            }}),
            ToolError::Harness(error @ ClientError::Transport(_)) => json!({"error": {
                "kind": "unavailable",
                "field": "",
                "message": error.to_string(),
            }}),
            ToolError::Harness(error @ ClientError::Decode(_)) => json!({"error": {
                "kind": "bad_answer",
                "field": "",
                "message": error.to_string(),
            }}),
        }
    }
}

impl From<ClientError> for ToolError {
    fn from(error: ClientError) -> ToolError {
        ToolError::Harness(error)
    }
}

/// Parses `args` as `T`; errors name the field (`actions[0].action`).
fn parse<T: DeserializeOwned>(args: Value) -> Result<T, ToolError> {
    // No arguments at all reads as an empty object.
    let args = if args.is_null() {
        Value::Object(Map::new())
    } else {
        args
    };
    if !args.is_object() {
        return Err(ToolError::invalid(
            "arguments",
            "must be a JSON object of named arguments",
        ));
    }
    serde_path_to_error::deserialize(args).map_err(|error| {
        let message = error.inner().to_string();
        let field = floodgate_contract::state::error_field(&error.path().to_string(), &message)
            .unwrap_or_else(|| "arguments".to_owned());
        ToolError::InvalidArgument { field, message }
    })
}

fn check_id(field: &str, value: &str) -> Result<(), ToolError> {
    if value.trim().is_empty() {
        return Err(ToolError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(ToolError::invalid(
            field,
            format!("must be at most {MAX_ID_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ToolError> {
    if value.trim().is_empty() {
        return Err(ToolError::invalid(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(ToolError::invalid(
            field,
            format!("must be at most {max} bytes (got {})", value.len()),
        ));
    }
    Ok(())
}

fn check_list(field: &str, values: &[String]) -> Result<(), ToolError> {
    if values.len() > MAX_FILTER_ITEMS {
        return Err(ToolError::invalid(
            field,
            format!("at most {MAX_FILTER_ITEMS} entries"),
        ));
    }
    for (index, value) in values.iter().enumerate() {
        check_id(&format!("{field}[{index}]"), value)?;
    }
    Ok(())
}

fn check_positive(field: &str, value: Option<u64>) -> Result<(), ToolError> {
    if value == Some(0) {
        return Err(ToolError::invalid(field, "must be at least 1"));
    }
    Ok(())
}

/// Calls the tool `name` with `args` (a JSON object) through `client`.
///
/// Arguments are validated before anything is sent; the answer is the
/// harness's JSON as it came.
pub async fn call(client: &HarnessClient, name: &str, args: Value) -> Result<Value, ToolError> {
    let agent = client.agent().to_owned();
    match name {
        "claim_ticket" => {
            let args: ClaimTicketArgs = parse(args)?;
            if let Some(ticket) = &args.ticket {
                check_id("ticket", ticket)?;
            }
            if let Some(sources) = &args.sources {
                check_list("sources", sources)?;
            }
            check_positive("ttl_ms", args.ttl_ms)?;
            if args.ttl_ms.is_some_and(|ttl| ttl > MAX_TTL_MS) {
                return Err(ToolError::invalid(
                    "ttl_ms",
                    format!("must be at most {MAX_TTL_MS} (a day)"),
                ));
            }
            let sources = args
                .sources
                .iter()
                .flatten()
                .enumerate()
                .map(|(index, name)| {
                    Source::parse(name).ok_or_else(|| {
                        let known: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
                        ToolError::invalid(
                            format!("sources[{index}]"),
                            format!(
                                "{name:?} is not a source (expected one of {})",
                                known.join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let request = ClaimRequest {
                agent,
                ttl_ms: args.ttl_ms,
                sources,
                ticket: args.ticket,
            };
            Ok(client.claim(&request).await?)
        }
        "get_ticket" => {
            let args: TicketArgs = parse(args)?;
            check_id("ticket", &args.ticket)?;
            Ok(client.get_ticket(&args.ticket).await?)
        }
        "list_tickets" => {
            let args: ListTicketsArgs = parse(args)?;
            let states = args.state.unwrap_or_default();
            check_list("state", &states)?;
            if let Some(source) = &args.source {
                check_id("source", source)?;
            }
            if let Some(after) = &args.after {
                check_id("after", after)?;
            }
            check_positive("limit", args.limit)?;
            let query = TicketQuery {
                states,
                source: args.source,
                after: args.after,
                limit: args.limit,
            };
            Ok(client.list_tickets(&query).await?)
        }
        "get_criteria" => {
            let args: TicketArgs = parse(args)?;
            check_id("ticket", &args.ticket)?;
            Ok(client.criteria(&args.ticket).await?)
        }
        "observe_series" => {
            let args: ObserveSeriesArgs = parse(args)?;
            check_text("selector", &args.selector, MAX_SELECTOR_BYTES)?;
            check_positive("window_ms", args.window_ms)?;
            Ok(client
                .observe_series(&args.selector, args.window_ms)
                .await?)
        }
        "get_service_state" => {
            let args: ServiceArgs = parse(args)?;
            check_id("service", &args.service)?;
            Ok(client.observe_state(&args.service).await?)
        }
        "get_service_events" => {
            let args: ServiceEventsArgs = parse(args)?;
            check_id("service", &args.service)?;
            check_positive("limit", args.limit)?;
            let query = ServiceEventsQuery {
                service: args.service,
                after: args.after,
                limit: args.limit,
            };
            Ok(client.observe_events(&query).await?)
        }
        "get_evidence" => {
            parse::<NoArgs>(args)?;
            Ok(client.evidence().await?)
        }
        "list_incidents" => {
            parse::<NoArgs>(args)?;
            Ok(client.incidents().await?)
        }
        "link_ticket" => {
            let args: LinkArgs = parse(args)?;
            check_id("ticket", &args.ticket)?;
            if let Some(owner) = &args.incident {
                check_id("incident", owner)?;
            }
            check_text("reason", &args.reason, MAX_TEXT_BYTES)?;
            Ok(client
                .link(
                    &args.ticket,
                    &LinkRequest {
                        incident: args.incident,
                        reason: args.reason,
                        actor: Some(agent),
                    },
                )
                .await?)
        }
        "list_slos" => {
            parse::<NoArgs>(args)?;
            Ok(client.slos().await?)
        }
        "list_invariants" => {
            parse::<NoArgs>(args)?;
            Ok(client.invariants().await?)
        }
        "list_anomalies" => {
            parse::<NoArgs>(args)?;
            Ok(client.anomalies().await?)
        }
        "list_actions" => {
            parse::<NoArgs>(args)?;
            Ok(client.actions().await?)
        }
        "list_notices" => {
            let args: ListNoticesArgs = parse(args)?;
            if let Some(state) = &args.state {
                check_id("state", state)?;
            }
            Ok(client.list_notices(args.state.as_deref()).await?)
        }
        "create_notice" => {
            let args: CreateNoticeArgs = parse(args)?;
            if args.matchers.is_empty() || args.matchers.len() > MAX_FILTER_ITEMS {
                return Err(ToolError::invalid(
                    "matchers",
                    format!("1 to {MAX_FILTER_ITEMS} matchers"),
                ));
            }
            let mut matchers = Vec::with_capacity(args.matchers.len());
            for (index, matcher) in args.matchers.into_iter().enumerate() {
                check_id(&format!("matchers[{index}].name"), &matcher.name)?;
                match (&matcher.value, &matcher.regex) {
                    (Some(text), None) => {
                        check_text(&format!("matchers[{index}].value"), text, MAX_MATCHER_BYTES)?;
                    }
                    (None, Some(text)) => {
                        check_text(&format!("matchers[{index}].regex"), text, MAX_MATCHER_BYTES)?;
                    }
                    _ => {
                        return Err(ToolError::invalid(
                            format!("matchers[{index}]"),
                            "give exactly one of value or regex",
                        ))
                    }
                }
                matchers.push(NoticeMatcher {
                    name: matcher.name,
                    value: matcher.value,
                    regex: matcher.regex,
                });
            }
            check_text("reason", &args.reason, MAX_REASON_BYTES)?;
            if args
                .max_factor
                .is_some_and(|factor| !(factor.is_finite() && factor > 1.0))
            {
                return Err(ToolError::invalid("max_factor", "must be above 1"));
            }
            let request = NoticeRequest {
                matchers,
                starts_ms: args.starts_ms,
                ends_ms: args.ends_ms,
                duration_ms: args.duration_ms,
                reason: args.reason,
                author: format!("agent:{agent}"),
                max_factor: args.max_factor,
            };
            Ok(client.create_notice(&request).await?)
        }
        "propose_change" => {
            let args: ProposeChangeArgs = parse(args)?;
            check_id("ticket", &args.ticket)?;
            check_text("rationale", &args.rationale, MAX_TEXT_BYTES)?;
            if args.actions.is_empty() || args.actions.len() > MAX_ACTIONS {
                return Err(ToolError::invalid(
                    "actions",
                    format!("1 to {MAX_ACTIONS} actions"),
                ));
            }
            let mut actions = Vec::with_capacity(args.actions.len());
            for (index, action) in args.actions.into_iter().enumerate() {
                check_id(&format!("actions[{index}].action"), &action.action)?;
                if !action.params.is_object() {
                    return Err(ToolError::invalid(
                        format!("actions[{index}].params"),
                        "must be a JSON object (the action's parameters)",
                    ));
                }
                actions.push(ActionCall {
                    action: action.action,
                    params: action.params,
                });
            }
            let request = ProposalRequest {
                agent,
                rationale: args.rationale,
                actions,
                interim: args.interim,
                base_config: args.base_config,
            };
            Ok(client.propose(&args.ticket, &request).await?)
        }
        "get_proposal" => {
            let args: ProposalArgs = parse(args)?;
            check_id("proposal", &args.proposal)?;
            Ok(client.get_proposal(&args.proposal).await?)
        }
        "comment_ticket" => {
            let args: CommentArgs = parse(args)?;
            check_id("ticket", &args.ticket)?;
            check_text("text", &args.text, MAX_TEXT_BYTES)?;
            Ok(client
                .comment(
                    &args.ticket,
                    &CommentRequest {
                        text: args.text,
                        actor: Some(agent),
                    },
                )
                .await?)
        }
        "escalate_ticket" => {
            let args: EscalateArgs = parse(args)?;
            check_id("ticket", &args.ticket)?;
            check_text("reason", &args.reason, MAX_TEXT_BYTES)?;
            Ok(client.escalate(&args.ticket, &agent, &args.reason).await?)
        }
        "release_ticket" => {
            let args: TicketArgs = parse(args)?;
            check_id("ticket", &args.ticket)?;
            Ok(client.release(&args.ticket, &agent).await?)
        }
        other => Err(ToolError::UnknownTool(crate::truncate(other, MAX_ID_BYTES))),
    }
}

// ---- the generated page -----------------------------------------------------

/// Where [`tools_markdown`] lives in the repository.
pub const DOC_PATH: &str = "docs/catalog/agent-tools.md";

/// The catalog as Markdown (`docs/catalog/agent-tools.md`).
pub fn tools_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Agent tools catalog\n\n");
    out.push_str(
        "Generated from `crates/agent/src/tools.rs` by `floodgate catalog --write`; do not edit by hand. \
         The same tools are offered over MCP (`floodgate mcp`, and `/mcp` on the harness) and to the LLM agent \
         (`floodgate agent --kind llm`). Every tool is one call of the harness's agent API \
         (docs/adr/0008-agents-and-pipeline.md); the agent's name comes from its connection, never from the arguments. \
         Errors are `{\"error\": {\"kind\", \"field\", \"message\"}}`.\n\n",
    );
    out.push_str("| tool | reads only | destructive | description |\n|---|---|---|---|\n");
    for tool in CATALOG {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            tool.name,
            yes_no(tool.read_only),
            yes_no(tool.destructive),
            tool.description.replace('|', "\\|")
        ));
    }
    for tool in CATALOG {
        let schema = serde_json::to_string_pretty(&tool.input_schema_json()).unwrap_or_default();
        out.push_str(&format!(
            "\n## `{}`\n\n{}. {}\n\n```json\n{}\n```\n",
            tool.name, tool.title, tool.description, schema
        ));
    }
    out
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}

/// The generated page, for `floodgate catalog`.
pub fn generated_doc() -> GeneratedDoc {
    GeneratedDoc {
        path: DOC_PATH.to_owned(),
        content: tools_markdown(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_nested_field_is_named_in_full() {
        let error = parse::<ProposeChangeArgs>(json!({
            "ticket": "INF-0001", "rationale": "r", "actions": [{"params": {}}]
        }))
        .unwrap_err();
        match error {
            ToolError::InvalidArgument { field, message } => {
                assert_eq!(field, "actions[0].action");
                assert!(message.contains("missing field"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_top_level_field_and_a_non_object_are_named() {
        let error = parse::<TicketArgs>(json!({})).unwrap_err();
        assert!(matches!(error, ToolError::InvalidArgument { ref field, .. } if field == "ticket"));
        let error = parse::<TicketArgs>(json!([1])).unwrap_err();
        assert!(
            matches!(error, ToolError::InvalidArgument { ref field, .. } if field == "arguments")
        );
        assert!(parse::<NoArgs>(Value::Null).is_ok());
    }
}
