//! `floodgate harness`, `floodgate ticket …` and `floodgate ledger verify`:
//! argument parsing and wiring over the `floodgate-harness` crate.
//!
//! - `harness` runs the observe loop ([`Observer`]) and the harness HTTP API
//!   ([`floodgate_harness::api`]) over one SQLite queue under `--data`.
//! - `ticket` is a client of that API (through the contract's raw HTTP
//!   transport), so what it does is exactly what `POST /v1/tickets` etc. do.
//! - `ledger verify` reads the data directory directly (read-only).

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use floodgate_contract::client::{HttpTransport, Method, RawRequest, Transport};
use floodgate_harness::observe::{MAX_INTERVAL_MS, MIN_INTERVAL_MS};
use floodgate_harness::pipeline::Pipeline;
use floodgate_harness::policy::Policy;
use floodgate_harness::prometheus::{PrometheusSource, DEFAULT_MATCH};
use floodgate_harness::{
    api, objectives, Harness, HarnessConfig, HarnessState, Observer, Store, SystemClock, Target,
};
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
    /// Where the harness HTTP API is served (loopback only: it has no
    /// access control yet).
    #[arg(long, default_value = api::DEFAULT_ADDR)]
    http_addr: SocketAddr,
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

#[derive(Debug, Args)]
pub struct TicketArgs {
    /// The harness HTTP API.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8090")]
    harness: String,
    /// Print the harness's raw JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: TicketCommand,
}

#[derive(Debug, Subcommand)]
enum TicketCommand {
    /// File a ticket from a YAML file in the seed's format (POST /v1/tickets).
    Create {
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// List tickets (GET /v1/tickets).
    List {
        /// Only these states (comma-separated: open,claimed,…).
        #[arg(long)]
        state: Option<String>,
        /// Only this source (slo, invariant, anomaly, human, alertmanager).
        #[arg(long)]
        source: Option<String>,
    },
    /// One ticket and its history (GET /v1/tickets/{ID}).
    Show { id: String },
    /// Add a comment (POST /v1/tickets/{ID}/comment).
    Comment {
        id: String,
        text: String,
        /// Who comments (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Approve the ticket's proposal that awaits a human
    /// (POST /v1/tickets/{ID}/approve).
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        /// Who approves (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Reject the ticket's proposal that awaits a human
    /// (POST /v1/tickets/{ID}/reject).
    Reject {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        /// Who rejects (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Stop every agent change at once (POST /v1/pause); proposals hold at
    /// their next step until `resume`.
    Pause {
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Lift the pause (POST /v1/resume).
    Resume {
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// The pipeline: paused?, freeze window, proposals in flight
    /// (GET /v1/pipeline).
    Pipeline,
    /// Cancel a ticket (POST /v1/tickets/{ID}/cancel).
    Cancel {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        /// Who cancels (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Verify the hash chain and the tickets table of a data directory;
    /// exits 1 naming the first bad entry.
    Verify {
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
    if !args.http_addr.ip().is_loopback() {
        bail!(
            "--http-addr {}: the harness API has no access control yet; bind a loopback address",
            args.http_addr
        );
    }
    if args.services.is_empty() && args.prometheus.is_none() {
        bail!("--service: give at least one service (or --prometheus)");
    }
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
        tracing::info!(
            http = %listener.local_addr()?,
            services = args.services.len(),
            interval_ms = args.interval,
            data = %args.data.display(),
            "floodgate harness running"
        );
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
        api::serve(listener, state, wait(stopped))
            .await
            .context("the harness API failed")?;
        let _ = observing.await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Percent-encodes a query parameter value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// One call to the harness API; answers the JSON of a 2xx, or fails with
/// the API's error message.
fn call(base: &str, method: Method, path: String, body: Option<Vec<u8>>) -> Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let transport = HttpTransport::new(base, None);
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
    if !(200..300).contains(&response.status) {
        let error = &value["error"];
        match error["message"].as_str() {
            Some(message) => bail!(
                "{message} (HTTP {} {})",
                response.status,
                error["kind"].as_str().unwrap_or("error")
            ),
            None => bail!("HTTP {}: {value}", response.status),
        }
    }
    Ok(value)
}

fn default_actor(actor: Option<String>) -> String {
    actor
        .or_else(|| std::env::var("USER").ok())
        .filter(|actor| !actor.is_empty())
        .unwrap_or_else(|| "human".to_owned())
}

fn print_json(value: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
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

pub fn ticket(args: TicketArgs) -> Result<()> {
    let base = args.harness.trim_end_matches('/').to_owned();
    let approving = matches!(args.command, TicketCommand::Approve { .. });
    let pausing = matches!(args.command, TicketCommand::Pause { .. });
    match args.command {
        TicketCommand::Create { file } => {
            let text = read_file(&file)?;
            let path = format!("/v1/tickets?file={}", encode(&file.display().to_string()));
            let answer = call(&base, Method::Post, path, Some(text.into_bytes()))?;
            if args.json {
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
                query.push(format!("state={}", encode(&state)));
            }
            if let Some(source) = source {
                query.push(format!("source={}", encode(&source)));
            }
            let path = if query.is_empty() {
                "/v1/tickets".to_owned()
            } else {
                format!("/v1/tickets?{}", query.join("&"))
            };
            let answer = call(&base, Method::Get, path, None)?;
            if args.json {
                return print_json(&answer);
            }
            for ticket in answer["tickets"].as_array().into_iter().flatten() {
                println!("{}", ticket_line(ticket));
            }
        }
        TicketCommand::Show { id } => {
            let answer = call(
                &base,
                Method::Get,
                format!("/v1/tickets/{}", encode(&id)),
                None,
            )?;
            if args.json {
                return print_json(&answer);
            }
            print_json(&answer["ticket"])?;
            for entry in answer["history"].as_array().into_iter().flatten() {
                println!(
                    "#{} {} {}",
                    entry["seq"],
                    entry["kind"].as_str().unwrap_or("?"),
                    entry["time_ms"]
                );
            }
        }
        TicketCommand::Comment { id, text, actor } => {
            let body = serde_json::json!({ "text": text, "actor": default_actor(actor) });
            let answer = call(
                &base,
                Method::Post,
                format!("/v1/tickets/{}/comment", encode(&id)),
                Some(serde_json::to_vec(&body)?),
            )?;
            if args.json {
                return print_json(&answer);
            }
            println!("{id}: commented");
        }
        TicketCommand::Cancel { id, reason, actor } => {
            let mut body = serde_json::json!({ "actor": default_actor(actor) });
            if let Some(reason) = reason {
                body["reason"] = Value::String(reason);
            }
            let answer = call(
                &base,
                Method::Post,
                format!("/v1/tickets/{}/cancel", encode(&id)),
                Some(serde_json::to_vec(&body)?),
            )?;
            if args.json {
                return print_json(&answer);
            }
            println!(
                "{id}: {}",
                answer["ticket"]["state"].as_str().unwrap_or("?")
            );
        }
        TicketCommand::Approve { id, reason, actor } | TicketCommand::Reject { id, reason, actor } => {
            let verb = if approving {
                "approve"
            } else {
                "reject"
            };
            let mut body = serde_json::json!({ "actor": default_actor(actor) });
            if let Some(reason) = reason {
                body["reason"] = Value::String(reason);
            }
            let answer = call(
                &base,
                Method::Post,
                format!("/v1/tickets/{}/{verb}", encode(&id)),
                Some(serde_json::to_vec(&body)?),
            )?;
            if args.json {
                return print_json(&answer);
            }
            println!(
                "{id}: {} is now {}",
                answer["proposal"]["id"].as_str().unwrap_or("?"),
                answer["proposal"]["stage"].as_str().unwrap_or("?")
            );
        }
        TicketCommand::Pause { reason, actor } | TicketCommand::Resume { reason, actor } => {
            let path = if pausing {
                "/v1/pause"
            } else {
                "/v1/resume"
            };
            let mut body = serde_json::json!({ "actor": default_actor(actor) });
            if let Some(reason) = reason {
                body["reason"] = Value::String(reason);
            }
            let answer = call(&base, Method::Post, path.into(), Some(serde_json::to_vec(&body)?))?;
            if args.json {
                return print_json(&answer);
            }
            println!(
                "pipeline {}",
                if answer["paused"].as_bool() == Some(true) { "paused" } else { "running" }
            );
        }
        TicketCommand::Pipeline => {
            let answer = call(&base, Method::Get, "/v1/pipeline".into(), None)?;
            if args.json {
                return print_json(&answer);
            }
            println!(
                "pipeline {}{}",
                if answer["paused"].as_bool() == Some(true) { "paused" } else { "running" },
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
                "ok: {} entries, {} tickets; head seq {} hash {}",
                report.entries, report.tickets, report.head_seq, report.head_hash
            );
            Ok(())
        }
    }
}
