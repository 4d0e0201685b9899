//! `floodgate scenarios run`: the fault-scenario suite (crates/lab) in
//! simulated time; prints the table and writes results.json, results.md,
//! chart.svg and every run's harness data to `--out`.

use crate::embedded;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use floodgate_agent::llm::LlmOptions;
use floodgate_lab::run::{run_suite, suite, AgentKind, Options};
use floodgate_lab::{generate, report};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ScenariosCommand {
    /// Run a suite of scenarios and judge every run.
    Run(Box<RunArgs>),
    /// Write generated incidents as scenario files (the suite's format),
    /// to read, keep and rerun with `run --scenarios DIR --suite generated`.
    Generate(GenerateArgs),
    /// List the scenarios there are (built in, or of --scenarios DIR):
    /// name, family, suites, expected outcome and description.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the scenarios of this suite.
    #[arg(long)]
    suite: Option<String>,
    /// The scenario files (default: the suite built into floodgate).
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The families to draw from, cycled in order (repeatable; default:
    /// every family).
    #[arg(long = "family", value_name = "FAMILY")]
    families: Vec<String>,
    /// How many incidents.
    #[arg(long, default_value_t = 20)]
    count: u32,
    /// The generator's seed: the same seed gives the same files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the files go (created).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The suite: scenarios whose `suites` name it.
    #[arg(long, default_value = "default")]
    suite: String,
    /// Only the scenarios of these names (repeatable; default: the whole
    /// suite).
    #[arg(long = "scenario", value_name = "NAME")]
    only: Vec<String>,
    /// runbook | llm | mcp | none.
    #[arg(long, default_value = "runbook")]
    agent: String,
    /// llm: the chat-completions API base (like http://127.0.0.1:11434/v1).
    #[arg(long, value_name = "URL")]
    llm_endpoint: Option<String>,
    /// llm: the model's name at the endpoint.
    #[arg(long, value_name = "NAME")]
    llm_model: Option<String>,
    /// llm: the environment variable holding the API key (unset: no key).
    #[arg(long, default_value = "FLOODGATE_LLM_API_KEY", value_name = "VAR")]
    llm_api_key_env: String,
    /// Real time: the service and the harness served on 127.0.0.1 and
    /// spoken to over HTTP, each 10 s tick paced by the wall clock.
    #[arg(long)]
    realtime: bool,
    /// With --realtime: wall time runs this many times faster (1: real
    /// time; a 1h30m scenario takes 1h30m, and twice that with its
    /// baseline run).
    #[arg(long, default_value_t = 1.0, value_name = "N", requires = "realtime")]
    speed: f64,
    /// mcp: the external agent's command line (run with `sh -c` once a tick
    /// while a ticket waits, with FLOODGATE_MCP_URL naming the harness's MCP
    /// endpoint on loopback; the simulated world waits for it to exit).
    #[arg(long, value_name = "COMMAND")]
    mcp_command: Option<String>,
    /// Seeds per scenario (at least each scenario's `min_seeds`).
    #[arg(long, default_value_t = 1)]
    seeds: u32,
    /// Run N generated incidents instead of a suite (cycling through the
    /// families, or those of --family); the files are kept in
    /// OUT/generated/.
    #[arg(long, value_name = "N")]
    generated: Option<u32>,
    /// With --generated: only these families (repeatable).
    #[arg(long = "family", value_name = "FAMILY", requires = "generated")]
    families: Vec<String>,
    /// With --generated: the generator's seed.
    #[arg(long, default_value_t = 1, value_name = "S")]
    gen_seed: u64,
    /// Where results and every run's harness data go.
    #[arg(long, default_value = "scenario-results")]
    out: PathBuf,
    /// The scenario files (default: the suite built into floodgate, the
    /// repository's scenarios/).
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
    /// The runbooks the runbook agent uses (default: the runbooks built
    /// into floodgate, the repository's runbooks/).
    #[arg(long, value_name = "DIR")]
    runbooks: Option<PathBuf>,
}

pub fn scenarios(command: ScenariosCommand) -> Result<()> {
    match command {
        ScenariosCommand::Run(args) => run(*args),
        ScenariosCommand::Generate(args) => generate(args),
        ScenariosCommand::List(args) => list(&args),
    }
}

fn list(args: &ListArgs) -> Result<()> {
    let all = embedded::scenarios(args.scenarios.as_deref())?;
    let chosen: Vec<&floodgate_lab::Scenario> = match &args.suite {
        Some(name) => suite(&all, name),
        None => all.iter().collect(),
    };
    let source = embedded::scenarios_source(args.scenarios.as_deref());
    if chosen.is_empty() {
        bail!(
            "no scenario in {source} is in suite {:?}",
            args.suite.as_deref().unwrap_or_default()
        );
    }
    let width = chosen
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let family_width = chosen
        .iter()
        .map(|s| s.family.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:width$}  {:family_width$}  {:24}  {:9}  DESCRIPTION",
        "NAME", "FAMILY", "SUITES", "EXPECTS"
    );
    for scenario in &chosen {
        let description = scenario
            .description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        println!(
            "{:width$}  {:family_width$}  {:24}  {:9}  {}",
            scenario.name,
            scenario.family,
            scenario.suites.join(","),
            scenario.outcome.as_str(),
            description
        );
    }
    println!("{} scenarios from {source}", chosen.len());
    Ok(())
}

/// Writes `generated` to `dir` (one file each, `NAME.yaml`).
fn write_generated(dir: &std::path::Path, generated: &[generate::Generated]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for file in generated {
        let path = dir.join(format!("{}.yaml", file.name));
        std::fs::write(&path, &file.text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn generate(args: GenerateArgs) -> Result<()> {
    let generated = generate::generate(&args.families, args.count, args.seed)?;
    write_generated(&args.out, &generated)?;
    let mut families: std::collections::BTreeMap<&str, usize> = Default::default();
    for file in &generated {
        *families.entry(file.family.as_str()).or_default() += 1;
    }
    println!(
        "wrote {} scenario files to {} ({}); run them with: floodgate scenarios run --scenarios {} --suite generated",
        generated.len(),
        args.out.display(),
        families
            .iter()
            .map(|(family, count)| format!("{family}: {count}"))
            .collect::<Vec<_>>()
            .join(", "),
        args.out.display()
    );
    Ok(())
}

fn run(args: RunArgs) -> Result<()> {
    let agent = AgentKind::parse(&args.agent).ok_or_else(|| {
        anyhow!(
            "--agent {:?}: expected runbook, llm, mcp or none",
            args.agent
        )
    })?;
    if !(args.speed.is_finite() && (0.01..=100_000.0).contains(&args.speed)) {
        bail!("--speed {}: between 0.01 and 100000", args.speed);
    }
    if agent == AgentKind::Mcp && args.mcp_command.is_none() {
        bail!("--mcp-command: required with --agent mcp");
    }
    let llm = if agent == AgentKind::Llm {
        let endpoint = args
            .llm_endpoint
            .clone()
            .context("--llm-endpoint: required with --agent llm")?;
        let model = args
            .llm_model
            .clone()
            .context("--llm-model: required with --agent llm")?;
        let mut options = LlmOptions::new(endpoint, model);
        options.api_key = std::env::var(&args.llm_api_key_env)
            .ok()
            .filter(|key| !key.is_empty());
        options
            .validate()
            .map_err(|error| anyhow!("--llm-{}", error.replace('_', "-")))?;
        Some(options)
    } else {
        None
    };
    let all = match args.generated {
        Some(count) => {
            let generated = generate::generate(&args.families, count, args.gen_seed)?;
            write_generated(&args.out.join("generated"), &generated)?;
            generated
                .iter()
                .map(|file| floodgate_lab::parse(&file.name, &file.text))
                .collect::<Result<Vec<_>, _>>()?
        }
        None => embedded::scenarios(args.scenarios.as_deref())?,
    };
    let source = embedded::scenarios_source(args.scenarios.as_deref());
    let suite_name = if args.generated.is_some() {
        "generated"
    } else {
        args.suite.as_str()
    };
    let mut chosen = suite(&all, suite_name);
    for name in &args.only {
        if !chosen.iter().any(|scenario| &scenario.name == name) {
            bail!(
                "--scenario {name:?}: no such scenario in suite {:?} of {source}",
                args.suite,
            );
        }
    }
    if !args.only.is_empty() {
        chosen.retain(|scenario| args.only.contains(&scenario.name));
    }
    if chosen.is_empty() {
        bail!("no scenario in {source} is in suite {:?}", args.suite);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let runbooks = match agent {
        AgentKind::Runbook => embedded::runbooks(args.runbooks.as_deref())?,
        _ => Vec::new(),
    };
    let options = Options {
        runbooks,
        llm,
        mcp_command: args.mcp_command.clone(),
        realtime: args.realtime.then_some(args.speed),
        out: args.out.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = std::time::Instant::now();
    let results = runtime.block_on(run_suite(&chosen, args.seeds, agent, &options))?;
    let elapsed = started.elapsed();
    let mut command = match args.generated {
        Some(count) => format!(
            "floodgate scenarios run --generated {count} --gen-seed {} --agent {} --seeds {}",
            args.gen_seed,
            agent.as_str(),
            args.seeds
        ),
        None => format!(
            "floodgate scenarios run --suite {} --agent {} --seeds {}",
            args.suite,
            agent.as_str(),
            args.seeds
        ),
    };
    for family in &args.families {
        command.push_str(&format!(" --family {family}"));
    }
    for name in &args.only {
        command.push_str(&format!(" --scenario {name}"));
    }
    if args.realtime {
        command.push_str(&format!(" --realtime --speed {}", args.speed));
    }
    let table = report::table(&results);
    let families = report::by_family(&results);
    println!("{table}");
    println!("{}", report::aggregate_table(&families));
    println!(
        "{} runs in {:.1}s (wall clock)",
        results.len(),
        elapsed.as_secs_f64()
    );
    let json = serde_json::json!({
        "command": command,
        "aggregate": families.last(),
        "families": families,
        "runs": results,
    });
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    std::fs::write(
        args.out.join("results.md"),
        report::markdown(&command, &results),
    )?;
    std::fs::write(args.out.join("chart.svg"), report::chart(&results))?;
    println!(
        "wrote {0}/results.json, {0}/results.md, {0}/chart.svg; harness data per run under {0}/runs/",
        args.out.display()
    );
    Ok(())
}
