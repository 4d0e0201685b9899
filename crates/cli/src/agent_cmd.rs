//! `floodgate mcp` (the MCP server over stdio) and `floodgate agent` (an
//! agent working tickets): wiring only, the work is in `floodgate-agent`.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use floodgate_agent::client::{HarnessClient, Source};
use floodgate_agent::llm::{self, Bounds, LlmAgent, LlmOptions};
use std::sync::Arc;
use std::time::Duration;

/// The harness's API unless told otherwise.
const DEFAULT_HARNESS: &str = "http://127.0.0.1:8090";
/// How long the agent waits when there is no ticket or the model failed.
const IDLE: Duration = Duration::from_secs(10);

/// Where the harness is and how to reach it.
#[derive(Debug, Args)]
pub struct HarnessConnection {
    /// The harness HTTP API.
    #[arg(long, default_value = DEFAULT_HARNESS, value_name = "URL")]
    harness: String,
    /// Bearer token for the harness (or the environment variable
    /// FLOODGATE_HARNESS_TOKEN, which keeps it out of process listings).
    #[arg(
        long,
        env = "FLOODGATE_HARNESS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// The agent name claims, proposals and comments are made under.
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
}

impl HarnessConnection {
    fn client(&self, default_agent: &str) -> Result<HarnessClient> {
        if !(self.harness.starts_with("http://") || self.harness.starts_with("https://")) {
            bail!("--harness {:?}: an http:// or https:// URL", self.harness);
        }
        let agent = self.agent.as_deref().unwrap_or(default_agent);
        if agent.trim().is_empty() || agent.len() > 128 {
            bail!("--agent: 1 to 128 bytes");
        }
        let token = self.token.clone().filter(|token| !token.is_empty());
        Ok(HarnessClient::http(self.harness.clone(), token).with_agent(agent))
    }
}

#[derive(Debug, Args)]
pub struct McpArgs {
    #[command(flatten)]
    connection: HarnessConnection,
}

/// Serves the tool catalog over MCP on stdin/stdout (logs on stderr).
pub fn mcp(args: McpArgs) -> Result<()> {
    init_logs("warn");
    let client = args.connection.client("mcp")?;
    runtime()?.block_on(async move {
        floodgate_agent::mcp::serve_stdio(client)
            .await
            .map_err(anyhow::Error::new)
    })
}

/// Which agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgentKind {
    /// A model over an OpenAI-compatible chat-completions API.
    Llm,
    /// The runbooks of --runbooks (YAML decision trees), one per known
    /// failure mode; a ticket no runbook matches is escalated.
    Runbook,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Which agent works the tickets.
    #[arg(long, value_enum)]
    kind: AgentKind,
    #[command(flatten)]
    connection: HarnessConnection,
    /// llm: the API base, like https://api.openai.com/v1 or
    /// http://127.0.0.1:11434/v1 (Ollama); /chat/completions is appended.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// llm: the model's name at the endpoint.
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// llm: the environment variable holding the API key (unset: no key).
    #[arg(long, default_value = "OPENAI_API_KEY", value_name = "VAR")]
    api_key_env: String,
    /// The most model calls per ticket.
    #[arg(long, default_value_t = llm::DEFAULT_MAX_STEPS, value_name = "N")]
    max_steps: u32,
    /// The most tokens per ticket (summed over the calls' usage).
    #[arg(long, default_value_t = llm::DEFAULT_MAX_TOKENS, value_name = "N")]
    max_tokens: u64,
    /// The most seconds per ticket.
    #[arg(long, default_value_t = llm::DEFAULT_MAX_WALL.as_secs(), value_name = "N")]
    max_seconds: u64,
    /// The bound on one model call, in seconds.
    #[arg(long, default_value_t = llm::DEFAULT_REQUEST_TIMEOUT.as_secs(), value_name = "N")]
    request_timeout: u64,
    /// Only claim tickets from these sources (slo, invariant, anomaly,
    /// human, alertmanager, reflection); repeat or separate with commas.
    #[arg(long = "source", value_delimiter = ',', value_name = "SOURCE", value_parser = parse_source)]
    sources: Vec<Source>,
    /// Work one ticket (or find none) and exit.
    #[arg(long)]
    once: bool,
    /// runbook: the directory of runbooks (every *.yaml is loaded and
    /// validated at start; default: the runbooks built into floodgate, the
    /// repository's runbooks/).
    #[arg(long, value_name = "DIR")]
    runbooks: Option<std::path::PathBuf>,
    /// runbook: the service whose state `state:` observations read (default:
    /// the harness's first).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// runbook: how often the agent looks at its ticket and the queue
    /// (seconds).
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    interval: u64,
}

/// Runs an agent until Ctrl-C (or one ticket with --once).
pub fn agent(args: AgentArgs) -> Result<()> {
    init_logs("info");
    if args.kind == AgentKind::Runbook {
        return runbook_agent(args);
    }
    let client = args.connection.client("llm")?;
    let endpoint = args
        .endpoint
        .context("--endpoint: required with --kind llm")?;
    let model = args.model.context("--model: required with --kind llm")?;
    let mut options = LlmOptions::new(endpoint, model);
    options.api_key = std::env::var(&args.api_key_env)
        .ok()
        .filter(|key| !key.is_empty());
    options.bounds = Bounds {
        max_steps: args.max_steps,
        max_tokens: args.max_tokens,
        max_wall: Duration::from_secs(args.max_seconds),
    };
    options.request_timeout = Duration::from_secs(args.request_timeout);
    options.sources = args.sources;
    let once = args.once;
    runtime()?.block_on(async move {
        let agent =
            LlmAgent::new(client, options, Arc::new(llm::SystemClock)).map_err(|error| {
                // Option errors start with the option's name: say it as a flag.
                let text = error.to_string();
                match text.split_once(':') {
                    Some((name, rest)) => anyhow::anyhow!("--{}:{rest}", name.replace('_', "-")),
                    None => anyhow::anyhow!(text),
                }
            })?;
        tokio::select! {
            result = agent.run(once, IDLE) => result.map_err(anyhow::Error::new),
            () = crate::shutdown_signal() => Ok(()),
        }
    })
}

fn runbook_agent(args: AgentArgs) -> Result<()> {
    use floodgate_agent::runbook::{PollReport, RunbookAgent};
    if args.interval == 0 || args.interval > 300 {
        bail!("--interval {}: 1 to 300 seconds", args.interval);
    }
    let runbooks = crate::embedded::runbooks(args.runbooks.as_deref())?;
    let client = args.connection.client("runbook")?;
    let name = client.agent().to_owned();
    let mut agent = RunbookAgent::new(client, name, runbooks);
    if let Some(service) = args.service {
        agent = agent.with_service(service);
    }
    let once = args.once;
    let interval = Duration::from_secs(args.interval);
    runtime()?.block_on(async move {
        let work = async {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_millis() as u64);
                match agent.poll(now_ms).await {
                    Ok(PollReport::Idle) => {
                        if once {
                            tracing::info!("no ticket to work");
                            return Ok(());
                        }
                    }
                    Ok(PollReport::Working { ticket, step }) => {
                        tracing::debug!(%ticket, %step, "working");
                    }
                    Ok(PollReport::Finished { ticket, outcome }) => {
                        tracing::info!(%ticket, %outcome, "finished");
                        if once {
                            return Ok(());
                        }
                    }
                    // The harness unreachable or refusing: say so, try again.
                    Err(error) => tracing::warn!(%error, "harness"),
                }
            }
        };
        tokio::select! {
            result = work => result,
            () = crate::shutdown_signal() => Ok(()),
        }
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Logs on stderr (stdout may be the MCP stream).
fn init_logs(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .try_init();
}

/// `--source NAME`: one of the ticket sources.
fn parse_source(text: &str) -> Result<Source, String> {
    Source::parse(text).ok_or_else(|| {
        let known: Vec<&str> = Source::ALL.iter().map(|source| source.as_str()).collect();
        format!(
            "{text:?} is not a source (expected one of {})",
            known.join(", ")
        )
    })
}
