//! `floodgate harness`, `floodgate ticket …`, `floodgate revert` and
//! `floodgate ledger verify`: argument parsing and wiring over the
//! `floodgate-harness` crate.
//!
//! - `harness` runs the observe loop ([`Observer`]) and the harness HTTP API
//!   ([`floodgate_harness::api`]) over one SQLite queue under `--data`.
//! - `ticket` and `revert` are clients of that API (through the contract's
//!   raw HTTP transport), so what they do is exactly what `POST /v1/tickets`,
//!   `POST /v1/proposals/{pid}/revert` etc. do.
//! - `ledger verify` reads the data directory directly (read-only).

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use floodgate_agent::client::HarnessClient;
use floodgate_agent::client::{ClientError, CommentRequest, Decision, LinkRequest, TicketQuery};
use floodgate_contract::client::HttpTransport;
use floodgate_harness::change::policy::Policy;
use floodgate_harness::observe::prometheus::{PrometheusSource, DEFAULT_MATCH};
use floodgate_harness::run::observer::{MAX_INTERVAL_MS, MIN_INTERVAL_MS};
use floodgate_harness::run::pipeline::Pipeline;
use floodgate_harness::tickets::criteria::{Condition, Sustain};
use floodgate_harness::{
    api, api::auth, observe::objectives, Harness, HarnessConfig, HarnessState, Observer, Store,
    SystemClock, Target,
};
use floodgate_service::inprocess::InProcessTransport;
use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The largest objectives or ticket file read.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// The longest one `ticket` call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct HarnessArgs {
    /// A service's HTTP API (repeat for several). Its `/metrics`,
    /// `/v1/health`, `/v1/state` and `/v1/events` are read every interval.
    #[arg(long = "service", value_name = "URL")]
    services: Vec<String>,
    /// Objectives files (compact YAML and/or OpenSLO v1); repeat for several.
    #[arg(long = "objectives", required = true, value_name = "FILE")]
    objectives: Vec<PathBuf>,
    /// The data directory (the SQLite ticket queue and its ledger).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Where the harness HTTP API is served (a non-loopback address only
    /// with --tokens-file).
    #[arg(long, default_value = api::DEFAULT_ADDR)]
    http_addr: SocketAddr,
    /// Bearer tokens for the harness API: one `SCOPE NAME TOKEN` per line
    /// (the service's format; scopes: read, operate, admin, intake; `#`
    /// comments). With tokens every call needs one; without, the API binds
    /// loopback only.
    #[arg(long, value_name = "FILE")]
    tokens_file: Option<PathBuf>,
    #[command(flatten)]
    edge: crate::edge_args::EdgeArgs,
    /// How often services are observed (1s … 5m).
    #[arg(long, default_value = "10s", value_parser = parse_interval)]
    interval: u64,
    /// The environment variable holding the bearer token sent to services
    /// (unset or empty: none).
    #[arg(long, default_value = "FLOODGATE_TOKEN", value_name = "VAR")]
    token_env: String,
    /// Read the series from this Prometheus server's query API instead of
    /// scraping `/metrics` (services still answer health, state, events).
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
    /// The series selector asked of Prometheus.
    #[arg(long, default_value = DEFAULT_MATCH, value_name = "SELECTOR")]
    prometheus_match: String,
    /// The pipeline policy: approval gates, freeze windows, budgets,
    /// canary and verification (see examples/policy.yaml; default: the
    /// documented defaults).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Reflection's thresholds (repeated fixes, escalation, flapping,
    /// non-convergence, repeated escalations; ADR 0009). Default: the
    /// documented defaults.
    #[arg(long, value_name = "FILE")]
    reflection: Option<PathBuf>,
}

fn parse_interval(text: &str) -> Result<u64, String> {
    let ms = floodgate_harness::quantity::parse_duration_ms(text)?;
    if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) {
        return Err(format!(
            "{text:?}: must be between {}s and {}m",
            MIN_INTERVAL_MS / 1000,
            MAX_INTERVAL_MS / 60_000
        ));
    }
    Ok(ms)
}

/// How a client command reaches the harness API: `--harness URL`,
/// `--token-env VAR`, `--json` (global: before or after the subcommand).
#[derive(Debug, Args)]
pub(crate) struct HarnessFlags {
    /// The harness HTTP API.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:8090",
        value_name = "URL"
    )]
    pub harness: String,
    /// Print the harness's raw JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The environment variable holding the bearer token sent to the
    /// harness (unset or empty: none).
    #[arg(
        long,
        global = true,
        default_value = "FLOODGATE_TOKEN",
        value_name = "VAR"
    )]
    pub token_env: String,
}

impl HarnessFlags {
    pub(crate) fn api(&self) -> Result<HarnessApi> {
        HarnessApi::new(&self.harness, &self.token_env)
    }
}

#[derive(Debug, Args)]
pub struct TicketArgs {
    #[command(flatten)]
    flags: HarnessFlags,
    #[command(subcommand)]
    command: TicketCommand,
}

#[derive(Debug, Subcommand)]
enum TicketCommand {
    /// File a ticket (POST /v1/tickets): from a YAML ticket file (-f), or
    /// from flags (--description and the rest).
    Create {
        /// A YAML ticket file: `ticket:` with `type`, `objective.description`,
        /// `acceptance_criteria` (metric, condition, duration) and
        /// `constraints`; errors name the line and the field.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        #[command(flatten)]
        flags: TicketFlags,
    },
    /// List tickets (GET /v1/tickets).
    List {
        /// Only these states (comma-separated: open,claimed,…).
        #[arg(long)]
        state: Option<String>,
        /// Only this source (slo, invariant, anomaly, human, alertmanager,
        /// reflection).
        #[arg(long)]
        source: Option<String>,
    },
    /// One ticket and its history (GET /v1/tickets/{ID}).
    Show {
        /// The ticket's id (`INF-0001`).
        id: String,
    },
    /// Add a comment (POST /v1/tickets/{ID}/comment).
    Comment {
        /// The ticket's id (`INF-0001`).
        id: String,
        /// The comment.
        text: String,
        /// Who comments (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Approve the ticket's proposal that awaits a human
    /// (POST /v1/tickets/{ID}/approve).
    Approve {
        /// The ticket's id (`INF-0001`).
        id: String,
        /// Why (recorded with the decision).
        #[arg(long)]
        reason: Option<String>,
        /// Who approves (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Reject the ticket's proposal that awaits a human
    /// (POST /v1/tickets/{ID}/reject).
    Reject {
        /// The ticket's id (`INF-0001`).
        id: String,
        /// Why (recorded with the decision).
        #[arg(long)]
        reason: Option<String>,
        /// Who rejects (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Stop every agent change at once (POST /v1/pause); proposals hold at
    /// their next step until `resume`.
    Pause {
        /// Why (recorded in the ledger).
        #[arg(long)]
        reason: Option<String>,
        /// Who pauses (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Lift the pause (POST /v1/resume).
    Resume {
        /// Why (recorded in the ledger).
        #[arg(long)]
        reason: Option<String>,
        /// Who resumes (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// The pipeline: paused?, freeze window, proposals in flight
    /// (GET /v1/pipeline).
    Pipeline,
    /// Incidents: tickets grouped under the one that owns them, with what
    /// they share (GET /v1/incidents).
    Incidents,
    /// Make an open ticket a member of the incident another ticket owns
    /// (--to OWNER), or take it out (--unlink) (POST /v1/tickets/{ID}/link).
    Link {
        /// The open ticket's id (`INF-0002`).
        id: String,
        /// The owner of the incident to join.
        #[arg(
            long,
            value_name = "OWNER",
            conflicts_with = "unlink",
            required_unless_present = "unlink"
        )]
        to: Option<String>,
        /// Take the ticket out of its incident: it is worked on its own.
        #[arg(long)]
        unlink: bool,
        /// Why (recorded in the ledger).
        #[arg(long)]
        reason: String,
        /// Who links (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Cancel a ticket (POST /v1/tickets/{ID}/cancel).
    Cancel {
        /// The ticket's id (`INF-0001`).
        id: String,
        /// Why (recorded in the ledger).
        #[arg(long)]
        reason: Option<String>,
        /// Who cancels (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
}

/// A ticket from flags (`ticket create` without -f).
#[derive(Debug, Args)]
struct TicketFlags {
    /// incident, improvement, investigation or task.
    #[arg(long = "type", value_name = "TYPE", conflicts_with = "file")]
    kind: Option<String>,
    /// What should be true when the ticket is done (the objective).
    #[arg(long, value_name = "TEXT", conflicts_with = "file")]
    description: Option<String>,
    /// An acceptance criterion, `METRIC CONDITION [for DURATION]` (e.g.
    /// `latency_p99 < 500us for 1h`); repeat for several.
    #[arg(long = "criterion", value_name = "CRITERION", conflicts_with = "file")]
    criteria: Vec<String>,
    /// A constraint on the work; repeat for several.
    #[arg(long = "constraint", value_name = "TEXT", conflicts_with = "file")]
    constraints: Vec<String>,
    /// critical, high, medium (the default) or low.
    #[arg(long, value_name = "PRIORITY", conflicts_with = "file")]
    priority: Option<String>,
    /// The dedup fingerprint (default: derived from the type, description
    /// and criteria, as for ticket files).
    #[arg(long, value_name = "TEXT", conflicts_with = "file")]
    fingerprint: Option<String>,
}

/// Splits `METRIC CONDITION [for DURATION]` and checks the condition and
/// duration with the harness's own parsers (the metric is checked by the
/// harness, which knows its objectives).
fn parse_criterion(number: usize, text: &str) -> Result<Value> {
    let flag = || format!("--criterion {number} ({text:?})");
    let trimmed = text.trim();
    let (metric, rest) = trimmed.split_once(char::is_whitespace).ok_or_else(|| {
        anyhow!(
            "{}: expected `METRIC CONDITION [for DURATION]`, e.g. `latency_p99 < 500us for 1h`",
            flag()
        )
    })?;
    let (condition, duration) = match rest.rsplit_once(" for ") {
        Some((condition, duration)) => (condition.trim(), Some(duration.trim())),
        None => (rest.trim(), None),
    };
    if condition.is_empty() {
        bail!(
            "{}: the condition is missing (expected e.g. `< 500ms`)",
            flag()
        );
    }
    Condition::parse(condition).map_err(|error| anyhow!("{}: {error}", flag()))?;
    let mut criterion = serde_json::json!({ "metric": metric, "condition": condition });
    if let Some(duration) = duration {
        Sustain::parse(duration).map_err(|error| anyhow!("{}: {error}", flag()))?;
        criterion["duration"] = Value::String(duration.to_owned());
    }
    Ok(criterion)
}

/// Checks a flag's value against one of a set of names.
fn one_of(flag: &str, value: &str, names: &[&str]) -> Result<()> {
    if names.contains(&value) {
        Ok(())
    } else {
        bail!("{flag} {value:?}: expected one of {}", names.join(", "))
    }
}

impl TicketFlags {
    /// The ticket as JSON for `POST /v1/tickets` (the inner object).
    fn to_ticket(&self) -> Result<Value> {
        let description = self
            .description
            .as_deref()
            .filter(|text| !text.trim().is_empty())
            .ok_or_else(|| {
                anyhow!("--description: give the ticket's objective (or a file with -f FILE)")
            })?;
        if self.criteria.is_empty() {
            bail!(
                "--criterion: a ticket needs at least one acceptance criterion \
                 (e.g. --criterion 'latency_p99 < 500us for 1h')"
            );
        }
        let kind = self.kind.as_deref().unwrap_or("task");
        one_of(
            "--type",
            kind,
            &["incident", "improvement", "investigation", "task"],
        )?;
        let mut ticket = serde_json::json!({
            "type": kind,
            "objective": { "description": description },
            "acceptance_criteria": self
                .criteria
                .iter()
                .enumerate()
                .map(|(index, text)| parse_criterion(index + 1, text))
                .collect::<Result<Vec<_>>>()?,
            "constraints": self.constraints,
        });
        if let Some(priority) = &self.priority {
            one_of(
                "--priority",
                priority,
                &["critical", "high", "medium", "low"],
            )?;
            ticket["priority"] = Value::String(priority.clone());
        }
        if let Some(fingerprint) = &self.fingerprint {
            ticket["fingerprint"] = Value::String(fingerprint.clone());
        }
        Ok(ticket)
    }

    /// The flag behind a field the harness refused
    /// (`ticket.acceptance_criteria[1].metric` → `--criterion 2`).
    fn flag_of(&self, field: &str) -> Option<String> {
        let field = field.strip_prefix("ticket.").unwrap_or(field);
        let indexed = |prefix: &str, flag: &str, values: &[String]| {
            let rest = field.strip_prefix(prefix)?;
            let index: usize = rest.split(']').next()?.parse().ok()?;
            let value = values.get(index)?;
            Some(format!("{flag} {} ({value:?})", index + 1))
        };
        indexed("acceptance_criteria[", "--criterion", &self.criteria)
            .or_else(|| indexed("constraints[", "--constraint", &self.constraints))
            .or_else(|| {
                let flag = match field.split(['.', '[']).next()? {
                    "type" => "--type",
                    "acceptance_criteria" => "--criterion",
                    "constraints" => "--constraint",
                    "objective" => "--description",
                    "priority" => "--priority",
                    "fingerprint" => "--fingerprint",
                    _ => return None,
                };
                Some(flag.to_owned())
            })
    }
}

/// `floodgate revert CHANGE_ID`: undo a change from the ledger.
#[derive(Debug, Args)]
pub struct RevertArgs {
    /// The change to undo: the id of the proposal that made it (`P-0003`,
    /// as `floodgate ticket show` and the ledger name it).
    #[arg(value_name = "CHANGE_ID", value_parser = parse_change_id)]
    change: String,
    /// The harness HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8090", value_name = "URL")]
    harness: String,
    /// The environment variable holding the bearer token sent to the
    /// harness (an `admin` token when access control is on; unset or
    /// empty: none).
    #[arg(long, default_value = "FLOODGATE_TOKEN", value_name = "VAR")]
    token_env: String,
    /// Why the change is undone (recorded on both tickets and sent to the
    /// services with each inverse call).
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Who asks (default: $USER); the revert ticket is claimed in this name.
    #[arg(long, value_name = "NAME")]
    actor: Option<String>,
    /// Print the harness's raw JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `P-` and digits: the proposal ids the harness assigns.
fn parse_change_id(text: &str) -> Result<String, String> {
    let digits = text.strip_prefix("P-").unwrap_or("");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 20 {
        return Err(format!(
            "{text:?} is not a change id: expected the id of the proposal that made the change, \
             such as P-0003 (`floodgate ticket show TICKET` lists a ticket's proposals)"
        ));
    }
    Ok(text.to_owned())
}

/// `floodgate revert`: `POST /v1/proposals/{CHANGE_ID}/revert`.
pub fn revert(args: RevertArgs) -> Result<()> {
    let harness = HarnessApi::new(&args.harness, &args.token_env)?;
    let decision = decision(args.actor, args.reason);
    let answer = harness
        .run(harness.client().revert(&args.change, &decision))
        .map_err(|error| anyhow!("revert {}: {error:#}", args.change))?;
    if args.json {
        return print_json(&answer);
    }
    let ticket = answer["ticket"]["id"].as_str().unwrap_or("?");
    let proposal = &answer["proposal"];
    let stage = proposal["stage"].as_str().unwrap_or("?");
    println!(
        "{}: reverting as ticket {ticket}, proposal {} ({stage})",
        args.change,
        proposal["id"].as_str().unwrap_or("?")
    );
    if let Some(held) = proposal["held"].as_str().filter(|held| !held.is_empty()) {
        println!("held: {held}");
    }
    match stage {
        "awaiting_approval" => {
            println!("it waits for a human: floodgate ticket approve {ticket} (or reject)")
        }
        "failed" => println!(
            "{}",
            proposal["outcome"]
                .as_str()
                .unwrap_or("the test stage refused it")
        ),
        _ => {}
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Verify the hash chain and the tickets table of a data directory;
    /// exits 1 naming the first bad entry.
    Verify {
        /// The harness's data directory (`floodgate harness --data DIR`).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
}

fn read_file(path: &PathBuf) -> Result<String> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        bail!(
            "{}: {size} bytes, more than {MAX_FILE_BYTES}",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// `http://127.0.0.1:8080/` → `127.0.0.1:8080`: the `instance` label.
fn target_name(url: &str) -> String {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    rest.trim_end_matches('/').to_owned()
}

pub fn harness(args: HarnessArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let tokens = match &args.tokens_file {
        Some(path) => {
            let text = read_file(path).map_err(|error| anyhow!("--tokens-file {error:#}"))?;
            auth::Tokens::parse_file(&path.display().to_string(), &text)
                .map_err(|error| anyhow!("--tokens-file {error}"))?
        }
        None => auth::Tokens::default(),
    };
    if tokens.is_empty() && !args.http_addr.ip().is_loopback() {
        bail!(
            "--http-addr {}: refusing to bind a non-loopback address while access control is off; \
             give tokens with --tokens-file FILE, or bind 127.0.0.1",
            args.http_addr
        );
    }
    if args.services.is_empty() && args.prometheus.is_none() {
        bail!("--service: give at least one service (or --prometheus)");
    }
    let listener_settings = api::Listener {
        options: args.edge.listener_options()?,
        open_mode: args.edge.open_mode()?,
    };
    let files = args
        .objectives
        .iter()
        .map(|path| Ok((path.display().to_string(), read_file(path)?)))
        .collect::<Result<Vec<_>>>()?;
    let objectives = objectives::parse_files(&files).map_err(|error| anyhow!("{error}"))?;
    let harness = Harness::new(objectives, HarnessConfig::default())
        .map_err(|error| anyhow!("objectives: {}", error.0))?;
    let policy = match &args.policy {
        Some(path) => Policy::parse(&path.display().to_string(), &read_file(path)?)
            .map_err(|error| anyhow!("{error}"))?,
        None => Policy::default(),
    };
    let thresholds = match &args.reflection {
        Some(path) => floodgate_harness::learn::reflection::Thresholds::parse(
            &path.display().to_string(),
            &read_file(path)?,
        )
        .map_err(|error| anyhow!("--reflection {error}"))?,
        None => floodgate_harness::learn::reflection::Thresholds::default(),
    };
    let store = Store::open(&args.data)
        .map_err(|error| anyhow!("--data {}: {error}", args.data.display()))?;
    let token = std::env::var(&args.token_env)
        .ok()
        .filter(|token| !token.is_empty());
    let targets: Vec<Target> = args
        .services
        .iter()
        .map(|url| Target {
            name: target_name(url),
            transport: Arc::new(HttpTransport::new(url.clone(), token.clone())),
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.http_addr)
            .await
            .with_context(|| format!("--http-addr {}: cannot bind", args.http_addr))?;
        let state = HarnessState::new(harness, store, Arc::new(SystemClock));
        state
            .set_reflection(thresholds)
            .map_err(|error| anyhow!("{error}"))?;
        if !targets.is_empty() {
            let pipeline = Pipeline::new(&state, targets.clone(), policy)
                .map_err(|error| anyhow!("--policy: {error}"))?;
            state
                .set_pipeline(pipeline)
                .map_err(|error| anyhow!("{error}"))?;
        }
        let mut observer = Observer::new(Arc::clone(&state), targets)
            .map_err(|error| anyhow!("--service: {error}"))?;
        if let Some(url) = &args.prometheus {
            observer = observer.with_prometheus(PrometheusSource::new(
                url,
                &args.prometheus_match,
                args.interval,
            ));
        }
        if tokens.is_empty() {
            tracing::info!("access control is off (no --tokens-file): binding loopback only");
        } else {
            tracing::info!(
                tokens = tokens.len(),
                "access control on: every API call needs a bearer token with a scope"
            );
        }
        tracing::info!(
            http = %listener.local_addr()?,
            services = args.services.len(),
            interval_ms = args.interval,
            data = %args.data.display(),
            "floodgate harness running"
        );
        args.edge.write_ready(&[("http", listener.local_addr()?)])?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let wait = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let observing =
            tokio::spawn(observer.run(Duration::from_millis(args.interval), wait(stopped.clone())));
        tokio::spawn(async move {
            crate::shutdown_signal().await;
            let _ = stop.send(true);
        });
        // `/mcp`: the agent tools over MCP's streamable HTTP, each call
        // handed to the same router in process. With tokens, `/mcp` needs
        // `operate`, and the tools act with `operate` (no more).
        let inner = api::router(Arc::clone(&state));
        let tools_router = if tokens.is_empty() {
            inner.clone()
        } else {
            auth::layer_as(
                inner.clone(),
                auth::Caller {
                    name: "mcp".to_owned(),
                    scope: auth::Scope::Operate,
                },
            )
        };
        let mcp_client = HarnessClient::new(Arc::new(InProcessTransport::new(tools_router, None)))
            .with_agent("mcp");
        let mcp_shutdown = floodgate_agent::mcp::CancellationToken::new();
        let app = inner.merge(floodgate_agent::mcp::streamable_http_router_with_shutdown(
            mcp_client,
            mcp_shutdown.clone(),
        ));
        let stopping = wait(stopped.clone());
        floodgate_edge::nofile::raise_and_log(
            listener_settings.options.max_connections as u64 + 64,
        );
        let serving = api::serve_app_with(
            listener,
            app,
            Arc::new(tokens),
            listener_settings,
            async move {
                stopping.await;
                mcp_shutdown.cancel();
            },
        );
        serving.await.context("the harness API failed")?;
        let _ = observing.await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// How a refusal's field maps to the flag that set it, and the part of the
/// harness's message that says why.
type FlagOf<'a> = (&'a dyn Fn(&str) -> Option<String>, fn(&str) -> &str);

/// Where the `ticket`, `revert` and `notice` commands send their calls:
/// the harness contract's one client, and the runtime its calls run on
/// (one per command).
pub(crate) struct HarnessApi {
    base: String,
    client: HarnessClient,
    runtime: tokio::runtime::Runtime,
}

impl HarnessApi {
    /// The harness at `base`, with the bearer token the environment
    /// variable `token_env` holds (unset or empty: none).
    pub(crate) fn new(base: &str, token_env: &str) -> Result<HarnessApi> {
        let base = base.trim_end_matches('/').to_owned();
        let token = std::env::var(token_env)
            .ok()
            .filter(|token| !token.is_empty());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(HarnessApi {
            client: HarnessClient::http(base.clone(), token).with_timeout(CALL_TIMEOUT),
            base,
            runtime,
        })
    }

    /// Runs one call of the client; an API error becomes its message with
    /// the status and kind, an unreachable harness says where it looked.
    pub(crate) fn run<T>(&self, call: impl Future<Output = Result<T, ClientError>>) -> Result<T> {
        self.runtime
            .block_on(call)
            .map_err(|error| self.explain(error, None))
    }

    /// The client the calls are made with.
    pub(crate) fn client(&self) -> &HarnessClient {
        &self.client
    }

    /// [`run`](Self::run) for a body built from flags: a refusal names
    /// the flag `flag_of` maps its field to, with `why` of the message.
    pub(crate) fn run_flags<T>(
        &self,
        call: impl Future<Output = Result<T, ClientError>>,
        flag_of: impl Fn(&str) -> Option<String>,
        why: fn(&str) -> &str,
    ) -> Result<T> {
        self.runtime
            .block_on(call)
            .map_err(|error| self.explain(error, Some((&flag_of, why))))
    }

    fn explain(&self, error: ClientError, flags: Option<FlagOf<'_>>) -> anyhow::Error {
        match error {
            ClientError::Api { status, error } => {
                let detail = error.error;
                let flag = flags.and_then(|(flag_of, why)| {
                    flag_of(&detail.field).map(|flag| (flag, why(&detail.message).to_owned()))
                });
                match flag {
                    Some((flag, why)) => anyhow!("{flag}: {why} (HTTP {status} {})", detail.kind),
                    None => anyhow!("{} (HTTP {status} {})", detail.message, detail.kind),
                }
            }
            ClientError::Transport(message) => anyhow!(
                "{message} (is `floodgate harness` running at {}?)",
                self.base
            ),
            error @ ClientError::Decode(_) => anyhow!("{error}"),
        }
    }
}

pub(crate) fn default_actor(actor: Option<String>) -> String {
    actor
        .or_else(|| std::env::var("USER").ok())
        .filter(|actor| !actor.is_empty())
        .unwrap_or_else(|| "human".to_owned())
}

/// The decision of a command a person runs (cancel, approve, reject,
/// pause, resume, revert, expire); the actor defaults to `$USER`.
pub(crate) fn decision(actor: Option<String>, reason: Option<String>) -> Decision {
    Decision {
        actor: Some(default_actor(actor)),
        reason,
    }
}

/// Ledger entries as `#SEQ KIND TIME`, one a line.
pub(crate) fn print_history(history: &Value) {
    for entry in history.as_array().into_iter().flatten() {
        println!(
            "#{} {} {}",
            entry["seq"],
            entry["kind"].as_str().unwrap_or("?"),
            entry["time_ms"].as_u64().map_or_else(
                || "?".to_owned(),
                floodgate_harness::quantity::format_time_ms
            )
        );
    }
}

pub(crate) fn print_json(value: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A JSON list of strings as `a, b` (`-` when empty).
fn join_strings(list: &Value) -> String {
    let items: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

fn ticket_line(ticket: &Value) -> String {
    let text = |key: &str| ticket[key].as_str().unwrap_or("?").to_owned();
    let description: String = ticket["objective"]["description"]
        .as_str()
        .unwrap_or("")
        .chars()
        .take(80)
        .collect();
    format!(
        "{:<9} {:<11} {:<8} {:<12} {:>4}x  {description}",
        text("id"),
        text("state"),
        text("priority"),
        text("source"),
        ticket["occurrences"].as_u64().unwrap_or(0),
    )
}

/// Files a ticket from flags; a refusal names the flag behind the field.
fn create_from_flags(harness: &HarnessApi, flags: &TicketFlags) -> Result<Value> {
    let ticket = flags.to_ticket()?;
    harness.run_flags(
        harness.client().create_ticket_json(&ticket),
        |field| flags.flag_of(field),
        // "request body: line 9: ticket.x: why" → "why".
        |message| message.rsplit(": ").next().unwrap_or(message),
    )
}

pub fn ticket(args: TicketArgs) -> Result<()> {
    let approving = matches!(args.command, TicketCommand::Approve { .. });
    let pausing = matches!(args.command, TicketCommand::Pause { .. });
    let harness = args.flags.api()?;
    let client = harness.client();
    match args.command {
        TicketCommand::Create { file, flags } => {
            let answer = match file {
                Some(file) => {
                    let text = read_file(&file)?;
                    let name = file.display().to_string();
                    harness.run(client.create_ticket(Some(&name), &text))?
                }
                None => create_from_flags(&harness, &flags)?,
            };
            if args.flags.json {
                return print_json(&answer);
            }
            let id = answer["ticket"]["id"].as_str().unwrap_or("?");
            match answer["action"].as_str() {
                Some("created") => println!("{id}: created"),
                Some(action) => println!("{id}: {action} (a ticket for the same thing exists)"),
                None => println!("{id}"),
            }
        }
        TicketCommand::List { state, source } => {
            let query = TicketQuery {
                states: state.into_iter().collect(),
                source,
                ..TicketQuery::default()
            };
            let answer = harness.run(client.list_tickets(&query))?;
            if args.flags.json {
                return print_json(&answer);
            }
            for ticket in answer["tickets"].as_array().into_iter().flatten() {
                println!("{}", ticket_line(ticket));
            }
        }
        TicketCommand::Show { id } => {
            let answer = harness.run(client.get_ticket(&id))?;
            if args.flags.json {
                return print_json(&answer);
            }
            print_json(&answer["ticket"])?;
            print_history(&answer["history"]);
        }
        TicketCommand::Comment { id, text, actor } => {
            let request = CommentRequest {
                text,
                actor: Some(default_actor(actor)),
            };
            let answer = harness.run(client.comment(&id, &request))?;
            if args.flags.json {
                return print_json(&answer);
            }
            println!("{id}: commented");
        }
        TicketCommand::Incidents => {
            let answer = harness.run(client.incidents())?;
            if args.flags.json {
                return print_json(&answer);
            }
            for incident in answer["incidents"].as_array().into_iter().flatten() {
                let owner = &incident["owner"];
                println!(
                    "{} {} ({})  causes: {}",
                    owner["id"].as_str().unwrap_or("?"),
                    owner["state"].as_str().unwrap_or("?"),
                    owner["fingerprint"].as_str().unwrap_or("?"),
                    join_strings(&owner["causes"])
                );
                for member in incident["members"].as_array().into_iter().flatten() {
                    println!(
                        "  └ {} {} ({})  causes: {}",
                        member["id"].as_str().unwrap_or("?"),
                        member["state"].as_str().unwrap_or("?"),
                        member["fingerprint"].as_str().unwrap_or("?"),
                        join_strings(&member["causes"])
                    );
                }
            }
        }
        TicketCommand::Link {
            id,
            to,
            unlink: _,
            reason,
            actor,
        } => {
            let request = LinkRequest {
                incident: to,
                reason,
                actor: Some(default_actor(actor)),
            };
            let answer = harness.run(client.link(&id, &request))?;
            if args.flags.json {
                return print_json(&answer);
            }
            match answer["ticket"]["incident"].as_str() {
                Some(owner) => println!("{id}: in the incident {owner} owns"),
                None => println!("{id}: on its own"),
            }
        }
        TicketCommand::Cancel { id, reason, actor } => {
            let answer = harness.run(client.cancel(&id, &decision(actor, reason)))?;
            if args.flags.json {
                return print_json(&answer);
            }
            println!(
                "{id}: {}",
                answer["ticket"]["state"].as_str().unwrap_or("?")
            );
        }
        TicketCommand::Approve { id, reason, actor }
        | TicketCommand::Reject { id, reason, actor } => {
            let decision = decision(actor, reason);
            let answer = if approving {
                harness.run(client.approve_ticket(&id, &decision))?
            } else {
                harness.run(client.reject_ticket(&id, &decision))?
            };
            if args.flags.json {
                return print_json(&answer);
            }
            println!(
                "{id}: {} is now {}",
                answer["proposal"]["id"].as_str().unwrap_or("?"),
                answer["proposal"]["stage"].as_str().unwrap_or("?")
            );
        }
        TicketCommand::Pause { reason, actor } | TicketCommand::Resume { reason, actor } => {
            let decision = decision(actor, reason);
            let answer = if pausing {
                harness.run(client.pause(&decision))?
            } else {
                harness.run(client.resume(&decision))?
            };
            if args.flags.json {
                return print_json(&answer);
            }
            println!(
                "pipeline {}",
                if answer["paused"].as_bool() == Some(true) {
                    "paused"
                } else {
                    "running"
                }
            );
        }
        TicketCommand::Pipeline => {
            let answer = harness.run(client.pipeline())?;
            if args.flags.json {
                return print_json(&answer);
            }
            println!(
                "pipeline {}{}",
                if answer["paused"].as_bool() == Some(true) {
                    "paused"
                } else {
                    "running"
                },
                answer["freeze"]["name"]
                    .as_str()
                    .map(|name| format!(", freeze window {name} in force"))
                    .unwrap_or_default()
            );
            for proposal in answer["active"].as_array().into_iter().flatten() {
                println!(
                    "{:<7} {:<9} {:<18} {}",
                    proposal["id"].as_str().unwrap_or("?"),
                    proposal["ticket_id"].as_str().unwrap_or("?"),
                    proposal["stage"].as_str().unwrap_or("?"),
                    proposal["held"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

pub fn ledger(command: LedgerCommand) -> Result<()> {
    match command {
        LedgerCommand::Verify { data } => {
            let report = floodgate_harness::verify(&data).map_err(|error| anyhow!("{error}"))?;
            println!(
                "ok: {} entries, {} tickets, {} notices; head seq {} hash {}",
                report.entries, report.tickets, report.notices, report.head_seq, report.head_hash
            );
            Ok(())
        }
    }
}
