//! `floodgate trajectory list | show | export` (reading a harness's data
//! directory read-only) and `floodgate reflect` (asking a running harness
//! to reflect now).

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use floodgate_harness::learn::trajectory::{self, Outcome, StepSource, Trajectory};
use floodgate_harness::store::archive::Archive;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum TrajectoryCommand {
    /// One line per trajectory: ticket, outcome, reward, steps, agent.
    List {
        /// The harness's data directory (`floodgate harness --data DIR`).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// A readable timeline of one ticket's trajectory.
    Show {
        /// The ticket's id (`INF-0001`).
        id: String,
        /// The harness's data directory (`floodgate harness --data DIR`).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The trajectory as JSON (ATIF v1.x with the operations fields).
        #[arg(long)]
        json: bool,
    },
    /// Write a dataset, one trajectory per line, and print statistics.
    Export {
        /// The harness's data directory (`floodgate harness --data DIR`).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Only trajectories started within this long before now (`7d`).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Only these outcomes (resolved, failed, escalated, cancelled, open).
        #[arg(long = "outcome", value_delimiter = ',', value_name = "OUTCOME")]
        outcomes: Vec<String>,
        /// Only tickets from these sources (slo, invariant, anomaly, human,
        /// alertmanager, reflection).
        #[arg(long = "source", value_delimiter = ',', value_name = "SOURCE")]
        sources: Vec<String>,
        /// Where to write (default: standard output; statistics go to
        /// standard error then).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
}

fn open(data: &std::path::Path) -> Result<Archive> {
    Archive::open(data).map_err(|error| anyhow!("--data {}: {error}", data.display()))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

pub fn trajectory(command: TrajectoryCommand) -> Result<()> {
    match command {
        TrajectoryCommand::List { data } => {
            let archive = open(&data)?;
            for t in archive.trajectories()? {
                println!(
                    "{:<9} {:<9} {:>7} {:>4} steps  {:<12} {}",
                    t.session_id,
                    t.extra.outcome.as_str(),
                    t.reward.map_or("—".to_owned(), |r| format!("{r:+.2}")),
                    t.steps.len(),
                    t.extra.source,
                    t.agent.name
                );
            }
            Ok(())
        }
        TrajectoryCommand::Show { id, data, json } => {
            let archive = open(&data)?;
            let t = archive
                .trajectory(&id)?
                .ok_or_else(|| anyhow!("{id}: no trajectory (no agent has claimed it)"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&t)?);
                return Ok(());
            }
            print!("{}", timeline(&t));
            Ok(())
        }
        TrajectoryCommand::Export {
            data,
            format: ExportFormat::Jsonl,
            since,
            outcomes,
            sources,
            out,
        } => {
            let since_ms = match since {
                Some(text) => Some(
                    floodgate_harness::quantity::parse_duration_ms(&text)
                        .map_err(|error| anyhow!("--since {text:?}: {error}"))?,
                ),
                None => None,
            };
            let mut wanted = Vec::new();
            for name in &outcomes {
                wanted.push(Outcome::parse(name).ok_or_else(|| {
                    anyhow!("--outcome {name:?}: expected resolved, failed, escalated, cancelled or open")
                })?);
            }
            const SOURCES: [&str; 6] = [
                "slo",
                "invariant",
                "anomaly",
                "human",
                "alertmanager",
                "reflection",
            ];
            if let Some(bad) = sources.iter().find(|s| !SOURCES.contains(&s.as_str())) {
                bail!("--source {bad:?}: expected one of {}", SOURCES.join(", "));
            }
            let now = now_ms();
            let archive = open(&data)?;
            let selected: Vec<Trajectory> = archive
                .trajectories()?
                .into_iter()
                .filter(|t| {
                    since_ms.is_none_or(|since| t.extra.started_ms >= now.saturating_sub(since))
                })
                .filter(|t| wanted.is_empty() || wanted.contains(&t.extra.outcome))
                .filter(|t| sources.is_empty() || sources.contains(&t.extra.source))
                .collect();
            let mut text = String::new();
            for t in &selected {
                text.push_str(&serde_json::to_string(t)?);
                text.push('\n');
            }
            let summary = trajectory::summarize(&selected);
            let stats = format!(
                "{} trajectories; success rate {}; human decisions {}\n{}",
                summary.count,
                summary
                    .success_rate
                    .map_or("—".to_owned(), |rate| format!("{:.1}%", rate * 100.0)),
                summary.human_decisions,
                summary
                    .by_outcome
                    .iter()
                    .map(|o| format!(
                        "  {:<10} {:>4}  mean {:.1} steps, {}\n",
                        o.outcome.as_str(),
                        o.count,
                        o.mean_steps,
                        o.mean_duration_ms.map_or("—".to_owned(), |ms| {
                            floodgate_harness::quantity::format_duration_ms(ms as u64)
                        })
                    ))
                    .collect::<String>()
            );
            match out {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("--out {}: cannot write", path.display()))?;
                    print!("{stats}");
                    println!("wrote {}", path.display());
                }
                None => {
                    std::io::stdout().write_all(text.as_bytes())?;
                    eprint!("{stats}");
                }
            }
            Ok(())
        }
    }
}

/// A readable timeline: one line per step, human decisions marked.
pub fn timeline(t: &Trajectory) -> String {
    let mut out = format!(
        "{} — {} ({}), outcome {}{}\n",
        t.session_id,
        t.extra.goal["objective"]["description"]
            .as_str()
            .unwrap_or(""),
        t.extra.fingerprint,
        t.extra.outcome.as_str(),
        t.reward
            .map_or(String::new(), |r| format!(", reward {r:+.2}"))
    );
    for step in &t.steps {
        let who = match step.source {
            StepSource::System => "harness",
            StepSource::User => "human",
            StepSource::Agent => "agent",
        };
        let mark = if step.extra.human.is_some() {
            " [human decision]"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:>3}  {}  {:<7} {}{mark}\n",
            step.step_id,
            step.timestamp,
            who,
            step.message.lines().next().unwrap_or("")
        ));
        for call in &step.tool_calls {
            out.push_str(&format!(
                "          → {}({})\n",
                call.function_name, call.arguments
            ));
        }
    }
    out
}

#[derive(Debug, Args)]
pub struct ReflectArgs {
    /// The harness HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8090", value_name = "URL")]
    harness: String,
    /// The environment variable holding an admin token (unset: none).
    #[arg(long, default_value = "FLOODGATE_TOKEN", value_name = "VAR")]
    token_env: String,
    /// Print the harness's raw JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Asks a running harness to reflect now and prints its findings.
pub fn reflect(args: ReflectArgs) -> Result<()> {
    use floodgate_contract::client::{HttpTransport, Method, RawRequest, Transport};
    let token = std::env::var(&args.token_env)
        .ok()
        .filter(|t| !t.is_empty());
    let transport = HttpTransport::new(args.harness.trim_end_matches('/'), token);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let response = runtime
        .block_on(transport.send(RawRequest {
            method: Method::Post,
            path: "/v1/reflect".into(),
            body: Some(b"{}".to_vec()),
        }))
        .map_err(|error| {
            anyhow!(
                "{error} (is `floodgate harness` running at {}?)",
                args.harness
            )
        })?;
    let value: serde_json::Value = serde_json::from_slice(&response.body)
        .map_err(|_| anyhow!("HTTP {}: not JSON", response.status))?;
    if response.status != 200 {
        bail!(
            "{} (HTTP {})",
            value["error"]["message"].as_str().unwrap_or("refused"),
            response.status
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let findings = value["findings"].as_array().cloned().unwrap_or_default();
    if findings.is_empty() {
        println!("no findings");
    }
    for finding in findings {
        println!(
            "{}: {}",
            finding["kind"].as_str().unwrap_or("?"),
            finding["message"].as_str().unwrap_or("")
        );
    }
    for (fingerprint, help) in value["suspended"].as_object().into_iter().flatten() {
        println!("suspended: {fingerprint} until a human answers {help}");
    }
    Ok(())
}
