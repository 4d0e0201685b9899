//! The `floodgate` command: parses arguments and hands over to the library
//! crates. Nothing here decides anything about rate limiting.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use floodgate_limiter::config::{self, ConfigSource};
use floodgate_service::auth;
use floodgate_service::clock::SystemClock;
use floodgate_service::control::events::EventsFile;
use floodgate_service::control::ControlOptions;
use floodgate_service::engine::EngineOptions;
use floodgate_service::ServiceParts;
use floodgate_store::{MemoryStore, RedisOptions, RedisStore, ResilientOptions, ResilientStore};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

mod agent_cmd;
mod ctl;
mod demo;
mod edge_args;
mod embedded;
mod harness_cmd;
mod manual;
mod notice_cmd;
mod reference;
mod report_cmd;
mod scenarios_cmd;
mod trajectory_cmd;

/// mimalloc: the hot path allocates a few small buffers per request (prost
/// strings, hyper's header maps), and mimalloc's thread-local free lists
/// make those several times cheaper than glibc's malloc. Version 2 (the
/// crate's `v2` feature): it gives freed memory back after 10 ms, where v3
/// keeps it a second and longer on an idle thread (ADR 0027).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Floodgate: an AI-native rate limiter.
#[derive(Debug, Parser)]
#[command(name = "floodgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the rate-limit service: Envoy RLS v3 over gRPC and the HTTP API.
    Serve(ServeArgs),
    /// Work with rate-limit config files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Generate the catalog docs (docs/catalog/), the CLI reference
    /// (docs/cli.md and the README's command table), the man pages
    /// (docs/man/), the shell completions (docs/completions/) and the
    /// Grafana dashboard from the code.
    Catalog(CatalogArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish,
    /// elvish, powershell) to stdout.
    Completions(CompletionsArgs),
    /// Operate a running service through its HTTP API (state, actions,
    /// events, config), with a bearer token from an environment variable.
    Ctl(ctl::CtlArgs),
    /// Run the harness: observe services, judge them against objectives,
    /// file tickets; serves the harness HTTP API.
    Harness(harness_cmd::HarnessArgs),
    /// File and manage tickets through a running harness's HTTP API.
    Ticket(harness_cmd::TicketArgs),
    /// Announce expected changes (a launch, a migration) through a running
    /// harness's HTTP API, so the anomalies they cause do not page.
    Notice(notice_cmd::NoticeArgs),
    /// Undo a change an agent made (a proposal id, `P-0003`): its recorded
    /// inverses run through the same pipeline as a new, recorded proposal.
    Revert(harness_cmd::RevertArgs),
    /// Check the harness's hash-chained ledger.
    #[command(subcommand)]
    Ledger(harness_cmd::LedgerCommand),
    /// Write the human review of a harness's data directory (report.md and
    /// report.html): tickets, SLO budgets, expected-change notices, changes,
    /// findings, what waits on a human.
    Report(report_cmd::ReportArgs),
    /// Serve the agent tool catalog over MCP on stdin/stdout, calling a
    /// running harness (for Claude Desktop and other MCP clients).
    Mcp(agent_cmd::McpArgs),
    /// Run an agent that claims tickets from a harness and works them.
    Agent(agent_cmd::AgentArgs),
    /// Trajectories of a harness's data directory: list, show, export.
    #[command(subcommand)]
    Trajectory(trajectory_cmd::TrajectoryCommand),
    /// Ask a running harness to reflect now: repeated fixes, oscillation,
    /// non-convergence, repeated escalations, changes overridden from
    /// outside.
    Reflect(trajectory_cmd::ReflectArgs),
    /// The whole loop in one command: a service, the harness, the runbook
    /// agent and a workload; a fault, the ticket, the pipeline, the fix.
    Demo(demo::DemoArgs),
    /// Fault scenarios in simulated time: run a suite, judge every run
    /// against its oracle, write the figures.
    #[command(subcommand)]
    Scenarios(scenarios_cmd::ScenariosCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Rate-limit config files (envoyproxy/ratelimit YAML); repeat for
    /// several domains.
    #[arg(long = "config", required = true, value_name = "FILE")]
    configs: Vec<PathBuf>,
    /// Where Envoy's ShouldRateLimit is served (gRPC, HTTP/2 prior knowledge).
    #[arg(long, default_value = "127.0.0.1:8081")]
    grpc_addr: SocketAddr,
    /// Where the HTTP API (/v1/check, /metrics, /v1/health) is served.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// The most counter keys held in memory; past it the store evicts
    /// expired keys first, then the least recently used.
    #[arg(long, default_value_t = 1_000_000)]
    max_keys: u64,
    /// Also send X-RateLimit-Limit/Remaining/Reset headers.
    #[arg(long)]
    x_ratelimit_headers: bool,
    /// Threads serving requests (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(usize))]
    worker_threads: Option<usize>,
    /// Bearer tokens for the HTTP API: one `SCOPE NAME TOKEN` per line
    /// (scopes: read, check, operate, admin; `#` comments). More come from
    /// the environment variable FLOODGATE_TOKENS (`scope:name:token,...`;
    /// never a flag, so tokens stay out of process listings). With tokens
    /// every HTTP call needs one; without any the service binds loopback only.
    #[arg(long, value_name = "FILE")]
    tokens_file: Option<PathBuf>,
    /// Also append every event to this JSONL file (rotated to FILE.1 at
    /// 64 MiB, so the two never hold more than 128 MiB).
    #[arg(long, value_name = "FILE")]
    events_file: Option<PathBuf>,
    /// Check requests kept in the traffic ring (GET /v1/traffic; dry runs
    /// of config changes replay it); 0 records nothing. At most 10,000,000.
    #[arg(long, value_name = "N", default_value_t = floodgate_service::limits::DEFAULT_TRAFFIC_CAPACITY)]
    traffic_capacity: usize,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    edge: edge_args::EdgeArgs,
}

/// Where counters live, and what happens when that place fails.
#[derive(Debug, Args)]
struct BackendArgs {
    /// The counter store: `memory` (in process, the default), a Redis URL
    /// `redis://HOST:PORT[/DB]` shared by every instance pointing at it,
    /// or a Redis Cluster `redis+cluster://HOST:PORT[,HOST:PORT…]`.
    #[arg(long, default_value = "memory", value_name = "memory|URL")]
    backend: String,
    /// Redis: multiplexed connections, used round robin (1 to 64).
    #[arg(long, default_value_t = 2, value_name = "N")]
    redis_pool_size: usize,
    /// Redis: the bound on one connection attempt (e.g. 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    redis_connect_timeout: std::time::Duration,
    /// Redis: the bound on one decision's round trip or one health probe;
    /// past it the failure policy decides (e.g. 50ms).
    #[arg(long, default_value = "50ms", value_parser = parse_duration, value_name = "DURATION")]
    redis_command_timeout: std::time::Duration,
    /// Redis: the prefix of every key name (no braces). Instances that
    /// must share limits use the same prefix.
    #[arg(long, default_value = "floodgate", value_name = "PREFIX")]
    redis_key_prefix: String,
    /// What decides while Redis is down or timing out: fail_open (admit
    /// every request), fail_closed (reject every request that consumes)
    /// or local_fallback (decide in memory with --local-share of each
    /// limit). Switchable at run time with the set_failure_policy action.
    #[arg(long, default_value = "fail_open", value_parser = parse_policy, value_name = "POLICY")]
    failure_policy: floodgate_contract::actions::FailurePolicy,
    /// Under local_fallback, the share of each limit's quota this instance
    /// takes (rounded down, at least 1): set it to 1 / the number of
    /// instances so that together they stay near the global limit.
    #[arg(long, default_value_t = 1.0, value_name = "FRACTION")]
    local_share: f64,
}

/// `50ms`, `1s`, `250us`, `2m`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: a number and a unit (us, ms, s, m), e.g. 50ms"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: a number and a unit (us, ms, s, m), e.g. 50ms"))?;
    let duration = match unit {
        "us" => std::time::Duration::from_micros(number),
        "ms" => std::time::Duration::from_millis(number),
        "s" => std::time::Duration::from_secs(number),
        "m" => std::time::Duration::from_secs(number.saturating_mul(60)),
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (us, ms, s, m)")),
    };
    if duration.is_zero() {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(duration)
}

fn parse_policy(text: &str) -> Result<floodgate_contract::actions::FailurePolicy, String> {
    use floodgate_contract::actions::FailurePolicy;
    [
        FailurePolicy::FailOpen,
        FailurePolicy::FailClosed,
        FailurePolicy::LocalFallback,
    ]
    .into_iter()
    .find(|policy| policy.as_str() == text)
    .ok_or_else(|| format!("{text:?}: one of fail_open, fail_closed, local_fallback"))
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate config files without serving; exits non-zero on the first
    /// bad file, printing what is wrong and where.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
struct CatalogArgs {
    /// Write the generated files (default: print what would change).
    #[arg(long, conflicts_with = "check")]
    write: bool,
    /// Exit non-zero when a committed file differs from the code.
    #[arg(long)]
    check: bool,
    /// The repository root.
    #[arg(long, default_value = ".")]
    root: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Config(ConfigCommand::Check { files }) => config_check(&files),
        Command::Catalog(args) => catalog(&args),
        Command::Completions(args) => {
            print!("{}", manual::completion(args.shell));
            Ok(())
        }
        Command::Ctl(args) => ctl::run(args),
        Command::Harness(args) => harness_cmd::harness(args),
        Command::Ticket(args) => harness_cmd::ticket(args),
        Command::Notice(args) => notice_cmd::notice(args),
        Command::Revert(args) => harness_cmd::revert(args),
        Command::Ledger(command) => harness_cmd::ledger(command),
        Command::Trajectory(command) => trajectory_cmd::trajectory(command),
        Command::Reflect(args) => trajectory_cmd::reflect(args),
        Command::Demo(args) => demo::demo(args),
        Command::Report(args) => report_cmd::report(args),
        Command::Scenarios(command) => scenarios_cmd::scenarios(command),
        Command::Mcp(args) => agent_cmd::mcp(args),
        Command::Agent(args) => agent_cmd::agent(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_sources(files: &[PathBuf]) -> Result<Vec<ConfigSource>> {
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            Ok(ConfigSource {
                name: path.display().to_string(),
                text,
            })
        })
        .collect()
}

fn config_check(files: &[PathBuf]) -> Result<()> {
    for path in files {
        let sources = read_sources(std::slice::from_ref(path))?;
        let table = config::load(&sources).map_err(anyhow::Error::new)?;
        println!(
            "{}: ok ({} domains, {} limits)",
            path.display(),
            table.domains().count(),
            table.limits().len()
        );
    }
    if files.len() > 1 {
        // Files that are fine alone may still clash (a domain defined twice).
        config::load(&read_sources(files)?).map_err(anyhow::Error::new)?;
    }
    Ok(())
}

fn serve(args: ServeArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let table = config::load(&read_sources(&args.configs)?).map_err(anyhow::Error::new)?;
    if args.traffic_capacity > floodgate_service::limits::MAX_TRAFFIC_CAPACITY {
        bail!(
            "--traffic-capacity {}: at most {} (0 records nothing)",
            args.traffic_capacity,
            floodgate_service::limits::MAX_TRAFFIC_CAPACITY
        );
    }
    if args.max_keys == 0 {
        bail!("--max-keys: must be at least 1");
    }
    let env_tokens = std::env::var(TOKENS_ENV).ok();
    let listener = args.edge.listener_options()?;
    let access = load_access(args.tokens_file.as_deref(), env_tokens.as_deref())?
        .with_open_mode(args.edge.open_mode()?);
    for (flag, addr) in [
        ("--grpc-addr", args.grpc_addr),
        ("--http-addr", args.http_addr),
    ] {
        auth::check_bind(&access, flag, addr).map_err(anyhow::Error::msg)?;
    }
    if access.enabled() {
        tracing::info!(
            tokens = access.tokens().len(),
            "access control on: every HTTP call needs a bearer token with a scope"
        );
        if !args.grpc_addr.ip().is_loopback() {
            tracing::warn!(
                addr = %args.grpc_addr,
                "--grpc-addr is not a loopback address and gRPC is not authenticated: restrict who can reach it"
            );
        }
    } else {
        tracing::info!(
            "access control is off (no --tokens-file or FLOODGATE_TOKENS): binding loopback addresses only; \
             foreign Host and Origin headers are refused, and POSTs need Content-Type: application/json"
        );
    }
    // Two listeners at their cap, plus files and the backend's sockets.
    floodgate_edge::nofile::raise_and_log(2 * listener.max_connections as u64 + 64);
    let settings = floodgate_service::ListenerSettings {
        grpc: listener,
        http: listener,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.worker_threads {
        runtime.worker_threads(threads);
    }
    let events_file = match &args.events_file {
        Some(path) => Some(
            EventsFile::open(path)
                .with_context(|| format!("--events-file {}: cannot open", path.display()))?,
        ),
        None => None,
    };
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let grpc = tokio::net::TcpListener::bind(args.grpc_addr)
            .await
            .with_context(|| format!("--grpc-addr {}: cannot bind", args.grpc_addr))?;
        let http = tokio::net::TcpListener::bind(args.http_addr)
            .await
            .with_context(|| format!("--http-addr {}: cannot bind", args.http_addr))?;
        tracing::info!(
            grpc = %grpc.local_addr()?,
            http = %http.local_addr()?,
            limits = table.limits().len(),
            "floodgate serving"
        );
        args.edge
            .write_ready(&[("grpc", grpc.local_addr()?), ("http", http.local_addr()?)])?;
        let options = EngineOptions {
            x_ratelimit_headers: args.x_ratelimit_headers,
        };
        let control = ControlOptions {
            events_file,
            failure_policy: Some(args.backend.failure_policy),
            ..ControlOptions::default()
        };
        let clock = Arc::new(SystemClock);
        if args.backend.backend == "memory" {
            let parts = ServiceParts {
                table,
                store: MemoryStore::new(args.max_keys),
                clock,
                options,
                access,
                control,
                traffic_capacity: args.traffic_capacity,
            };
            let assembled = floodgate_service::assemble(parts);
            floodgate_service::serve_with(assembled, grpc, http, settings, shutdown_signal()).await;
        } else {
            let store = redis_store(&args.backend, args.max_keys)?;
            tracing::info!(
                backend = %args.backend.backend,
                failure_policy = args.backend.failure_policy.as_str(),
                "counters in Redis"
            );
            let parts = ServiceParts {
                table,
                store,
                clock,
                options,
                access,
                control,
                traffic_capacity: args.traffic_capacity,
            };
            let assembled = floodgate_service::assemble(parts);
            floodgate_service::serve_with(assembled, grpc, http, settings, shutdown_signal()).await;
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// The Redis store of `--backend URL` behind its failure policy. Connects
/// lazily: the service starts while Redis is down (the policy decides
/// until it answers). Must run inside the runtime.
fn redis_store(args: &BackendArgs, max_keys: u64) -> Result<ResilientStore> {
    if !(args.backend.starts_with("redis://")
        || args.backend.starts_with("redis+cluster://")
        || args.backend.starts_with("rediss://"))
    {
        bail!(
            "--backend {}: memory, redis://HOST:PORT[/DB] or redis+cluster://HOST:PORT[,HOST:PORT…]",
            args.backend
        );
    }
    let mut options = RedisOptions::new(args.backend.clone());
    options.pool_size = args.redis_pool_size;
    options.connect_timeout = args.redis_connect_timeout;
    options.command_timeout = args.redis_command_timeout;
    options.key_prefix = args.redis_key_prefix.clone();
    let redis = RedisStore::new(options).map_err(|error| anyhow::anyhow!("--backend: {error}"))?;
    ResilientStore::new(
        redis,
        ResilientOptions {
            policy: floodgate_service::control::policy_to_store(args.failure_policy),
            local_share: args.local_share,
            // The fallback holds keys only through an outage: the same
            // bound as the memory store would have.
            fallback_max_keys: max_keys,
            latency_bounds_seconds: floodgate_contract::metrics::DURATION_BUCKETS_SECONDS,
            ..ResilientOptions::default()
        },
    )
    .map_err(|error| anyhow::anyhow!("--{}", error.replace('_', "-")))
}

/// The environment variable holding more tokens (`scope:name:token,...`).
const TOKENS_ENV: &str = "FLOODGATE_TOKENS";

/// The tokens of `--tokens-file` and `FLOODGATE_TOKENS`, validated (errors
/// name the file and line, or the variable and entry).
fn load_access(file: Option<&Path>, env: Option<&str>) -> Result<auth::Access> {
    let mut tokens = auth::Tokens::default();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--tokens-file {}: cannot read", path.display()))?;
        tokens = auth::Tokens::parse_file(&path.display().to_string(), &text)?;
    }
    if let Some(value) = env {
        let more = auth::Tokens::parse_env(TOKENS_ENV, value)?;
        tokens = tokens.merge(more, TOKENS_ENV)?;
    }
    Ok(auth::Access::with_tokens(tokens))
}

/// Completes on Ctrl-C or SIGTERM (shared by `serve` and `harness`).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

fn catalog(args: &CatalogArgs) -> Result<()> {
    let mut drifted = Vec::new();
    // The contract's catalogs, the OpenAPI documents of the service and
    // the harness, and the agents' tool catalog.
    let docs = floodgate_contract::generated_docs()
        .into_iter()
        .chain([
            floodgate_service::openapi::generated_doc(),
            floodgate_harness_contract::openapi::generated_doc(),
            floodgate_agent::tools::generated_doc(),
            floodgate_harness::learn::trajectory::generated_doc(),
        ])
        .chain(manual::generated_docs())
        .chain([reference::reference()]);
    // The README is hand-written but for its command table: the generated
    // version is the committed text with that block regenerated.
    let readme_path = args.root.join(reference::README_PATH);
    let readme = std::fs::read_to_string(&readme_path)
        .with_context(|| format!("{}: cannot read", readme_path.display()))?;
    let docs = docs.chain([reference::readme_doc(&readme)?]);
    for doc in docs {
        let path = args.root.join(&doc.path);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == doc.content {
            continue;
        }
        if args.write {
            write_file(&path, &doc.content)?;
            println!("wrote {}", path.display());
        } else {
            drifted.push(doc.path.clone());
        }
    }
    if !drifted.is_empty() {
        for path in &drifted {
            println!("out of date: {path} (run `floodgate catalog --write`)");
        }
        if args.check {
            bail!("{} generated file(s) out of date", drifted.len());
        }
    }
    Ok(())
}

fn write_file(path: &Path, content: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create directory", parent.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("{}: cannot write", path.display()))
}
