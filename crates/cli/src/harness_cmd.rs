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
use floodgate_contract::client::{percent_encode, HttpTransport, Method, RawRequest, Transport};
use floodgate_harness::criteria::{Condition, Sustain};
use floodgate_harness::observe::{MAX_INTERVAL_MS, MIN_INTERVAL_MS};
use floodgate_harness::pipeline::Pipeline;
use floodgate_harness::policy::Policy;
use floodgate_harness::prometheus::{PrometheusSource, DEFAULT_MATCH};
use floodgate_harness::{
    api, auth, objectives, Harness, HarnessConfig, HarnessState, Observer, Store, SystemClock,
    Target,
};
use floodgate_service::inprocess::InProcessTransport;
use serde_json::Value;
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
    pub(crate) fn api(&self) -> HarnessApi {
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
    let harness = HarnessApi::new(&args.harness, &args.token_env);
    let mut body = serde_json::json!({ "actor": default_actor(args.actor) });
    if let Some(reason) = args.reason {
        body["reason"] = Value::String(reason);
    }
    let answer = call(
        &harness,
        Method::Post,
        format!("/v1/proposals/{}/revert", percent_encode(&args.change)),
        Some(serde_json::to_vec(&body)?),
    )
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
        Some(path) => floodgate_harness::reflection::Thresholds::parse(
            &path.display().to_string(),
            &read_file(path)?,
        )
        .map_err(|error| anyhow!("--reflection {error}"))?,
        None => floodgate_harness::reflection::Thresholds::default(),
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

/// Where the `ticket`, `revert` and `notice` commands send their calls.
pub(crate) struct HarnessApi {
    base: String,
    token: Option<String>,
}

impl HarnessApi {
    /// The harness at `base`, with the bearer token the environment
    /// variable `token_env` holds (unset or empty: none).
    pub(crate) fn new(base: &str, token_env: &str) -> HarnessApi {
        HarnessApi {
            base: base.trim_end_matches('/').to_owned(),
            token: std::env::var(token_env)
                .ok()
                .filter(|token| !token.is_empty()),
        }
    }
}

/// One call to the harness API; answers the JSON of a 2xx, or fails with
/// the API's error message.
pub(crate) fn call(
    harness: &HarnessApi,
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
) -> Result<Value> {
    let (status, value) = send(harness, method, path, body)?;
    if !(200..300).contains(&status) {
        let error = &value["error"];
        match error["message"].as_str() {
            Some(message) => bail!(
                "{message} (HTTP {status} {})",
                error["kind"].as_str().unwrap_or("error")
            ),
            None => bail!("HTTP {status}: {value}"),
        }
    }
    Ok(value)
}

/// One call: the status and the JSON answer (or the body as a string).
pub(crate) fn send(
    harness: &HarnessApi,
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
) -> Result<(u16, Value)> {
    let base = harness.base.as_str();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let transport = HttpTransport::new(base, harness.token.clone());
    let response = runtime.block_on(async {
        tokio::time::timeout(
            CALL_TIMEOUT,
            transport.send(RawRequest { method, path, body }),
        )
        .await
    });
    let response = response
        .map_err(|_| anyhow!("{base}: no answer within {}s", CALL_TIMEOUT.as_secs()))?
        .map_err(|error| anyhow!("{error} (is `floodgate harness` running at {base}?)"))?;
    let value: Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&response.body).into_owned()));
    Ok((response.status, value))
}

pub(crate) fn default_actor(actor: Option<String>) -> String {
    actor
        .or_else(|| std::env::var("USER").ok())
        .filter(|actor| !actor.is_empty())
        .unwrap_or_else(|| "human".to_owned())
}

/// `{"actor", "reason"?}` for commands a person runs (cancel, approve,
/// reject, pause, resume); the actor defaults to `$USER`.
fn actor_body(actor: Option<String>, reason: Option<String>) -> Result<Vec<u8>> {
    let mut body = serde_json::json!({ "actor": default_actor(actor) });
    if let Some(reason) = reason {
        body["reason"] = Value::String(reason);
    }
    Ok(serde_json::to_vec(&body)?)
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

/// POSTs `body` to `path`; a refusal names the flag `flag_of` maps its
/// field to, with `why` of the harness's message.
pub(crate) fn post_from_flags(
    harness: &HarnessApi,
    path: &str,
    body: &Value,
    flag_of: impl Fn(&str) -> Option<String>,
    why: fn(&str) -> &str,
) -> Result<Value> {
    let body = serde_json::to_vec(body)?;
    let (status, answer) = send(harness, Method::Post, path.to_owned(), Some(body))?;
    if (200..300).contains(&status) {
        return Ok(answer);
    }
    let error = &answer["error"];
    let Some(message) = error["message"].as_str() else {
        bail!("HTTP {status}: {answer}");
    };
    let kind = error["kind"].as_str().unwrap_or("error");
    match error["field"].as_str().and_then(flag_of) {
        Some(flag) => bail!("{flag}: {} (HTTP {status} {kind})", why(message)),
        None => bail!("{message} (HTTP {status} {kind})"),
    }
}

/// Files a ticket from flags; a refusal names the flag behind the field.
fn create_from_flags(harness: &HarnessApi, flags: &TicketFlags) -> Result<Value> {
    post_from_flags(
        harness,
        "/v1/tickets",
        &flags.to_ticket()?,
        |field| flags.flag_of(field),
        // "request body: line 9: ticket.x: why" → "why".
        |message| message.rsplit(": ").next().unwrap_or(message),
    )
}

pub fn ticket(args: TicketArgs) -> Result<()> {
    let approving = matches!(args.command, TicketCommand::Approve { .. });
    let pausing = matches!(args.command, TicketCommand::Pause { .. });
    let harness = args.flags.api();
    let base = &harness;
    match args.command {
        TicketCommand::Create { file, flags } => {
            let answer = match file {
                Some(file) => {
                    let text = read_file(&file)?;
                    let path = format!(
                        "/v1/tickets?file={}",
                        percent_encode(&file.display().to_string())
                    );
                    call(base, Method::Post, path, Some(text.into_bytes()))?
                }
                None => create_from_flags(base, &flags)?,
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
            let mut query = Vec::new();
            if let Some(state) = state {
                query.push(format!("state={}", percent_encode(&state)));
            }
            if let Some(source) = source {
                query.push(format!("source={}", percent_encode(&source)));
            }
            let path = if query.is_empty() {
                "/v1/tickets".to_owned()
            } else {
                format!("/v1/tickets?{}", query.join("&"))
            };
            let answer = call(base, Method::Get, path, None)?;
            if args.flags.json {
                return print_json(&answer);
            }
            for ticket in answer["tickets"].as_array().into_iter().flatten() {
                println!("{}", ticket_line(ticket));
            }
        }
        TicketCommand::Show { id } => {
            let answer = call(
                base,
                Method::Get,
                format!("/v1/tickets/{}", percent_encode(&id)),
                None,
            )?;
            if args.flags.json {
                return print_json(&answer);
            }
            print_json(&answer["ticket"])?;
            print_history(&answer["history"]);
        }
        TicketCommand::Comment { id, text, actor } => {
            let body = serde_json::json!({ "text": text, "actor": default_actor(actor) });
            let answer = call(
                base,
                Method::Post,
                format!("/v1/tickets/{}/comment", percent_encode(&id)),
                Some(serde_json::to_vec(&body)?),
            )?;
            if args.flags.json {
                return print_json(&answer);
            }
            println!("{id}: commented");
        }
        TicketCommand::Incidents => {
            let answer = call(base, Method::Get, "/v1/incidents".into(), None)?;
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
            let body = serde_json::json!({
                "incident": to,
                "reason": reason,
                "actor": default_actor(actor),
            });
            let answer = call(
                base,
                Method::Post,
                format!("/v1/tickets/{}/link", percent_encode(&id)),
                Some(serde_json::to_vec(&body)?),
            )?;
            if args.flags.json {
                return print_json(&answer);
            }
            match answer["ticket"]["incident"].as_str() {
                Some(owner) => println!("{id}: in the incident {owner} owns"),
                None => println!("{id}: on its own"),
            }
        }
        TicketCommand::Cancel { id, reason, actor } => {
            let body = actor_body(actor, reason)?;
            let answer = call(
                base,
                Method::Post,
                format!("/v1/tickets/{}/cancel", percent_encode(&id)),
                Some(body),
            )?;
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
            let verb = if approving { "approve" } else { "reject" };
            let body = actor_body(actor, reason)?;
            let answer = call(
                base,
                Method::Post,
                format!("/v1/tickets/{}/{verb}", percent_encode(&id)),
                Some(body),
            )?;
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
            let path = if pausing { "/v1/pause" } else { "/v1/resume" };
            let body = actor_body(actor, reason)?;
            let answer = call(base, Method::Post, path.into(), Some(body))?;
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
            let answer = call(base, Method::Get, "/v1/pipeline".into(), None)?;
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
