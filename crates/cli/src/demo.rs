//! `floodgate demo`: the whole loop in one command — the lab's `demo`
//! scenario (`scenarios/demo.yaml`, compiled in) run through the lab's
//! world (`floodgate_lab::run::Run`) and rendered live: a service
//! (in-memory store), the harness (SQLite in a temporary directory), the
//! runbook agents (the shipped runbooks, compiled in), the simulated
//! on-call and a workload of three tenants. After ten simulated minutes one
//! tenant's traffic grows past its daily quota; the terminal shows the SLO
//! burning, the ticket filed, each pipeline stage, the resolution and the
//! trajectory saved, then where to look. Time is simulated (each tick is
//! 10 s) and paced by `--speed`; the world is on the network, so the
//! service and harness APIs served on loopback while it runs show the
//! simulated clock. It finishes by itself; the harness data stays.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use floodgate_lab::run::{AgentKind, Options, Run, Tick};
use floodgate_lab::scenario::TICK_MS;
use floodgate_lab::world::Network;
use floodgate_lab::{FaultKind, Scenario};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The scenario the demo renders.
pub const SCENARIO: &str = "demo";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Simulated seconds per real second (each tick is 10 simulated
    /// seconds). 60 runs the demo in about three minutes.
    #[arg(long, default_value_t = 60)]
    speed: u64,
    /// Where the harness keeps its SQLite file (default: a new temporary
    /// directory).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Where the harness API is served during the demo.
    #[arg(long, default_value = "127.0.0.1:8090")]
    http_addr: SocketAddr,
    /// Where the service's HTTP API is served during the demo.
    #[arg(long, default_value = "127.0.0.1:8080")]
    service_addr: SocketAddr,
}

/// `HH:MM:SS` of run time.
fn clock_text(t_ms: u64) -> String {
    let elapsed = t_ms / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        elapsed / 3600,
        elapsed / 60 % 60,
        elapsed % 60
    )
}

pub fn demo(args: DemoArgs) -> Result<()> {
    if args.speed == 0 || args.speed > 1_000_000 {
        bail!("--speed {}: 1 to 1000000", args.speed);
    }
    for addr in [args.http_addr, args.service_addr] {
        if !addr.ip().is_loopback() {
            bail!("{addr}: the demo serves on loopback only");
        }
    }
    let data = match &args.data {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("floodgate-demo-{}", std::process::id())),
    };
    if data.join(floodgate_harness::store::DB_FILE).exists() {
        bail!(
            "--data {}: already holds a harness database; give an empty directory",
            data.display()
        );
    }
    let scenario = crate::embedded::scenarios(None)?
        .into_iter()
        .find(|scenario| scenario.name == SCENARIO)
        .ok_or_else(|| anyhow!("the built-in scenarios have no {SCENARIO:?}"))?;
    let options = Options {
        runbooks: crate::embedded::runbooks(None)?,
        llm: None,
        mcp_command: None,
        realtime: None,
        out: data.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(&args, &scenario, &options, data))
}

/// What the terminal has shown so far.
#[derive(Default)]
struct Shown {
    burning: BTreeMap<String, bool>,
    /// Ticket → its state last shown.
    tickets: BTreeMap<String, String>,
    /// Proposal → records shown.
    records: BTreeMap<String, usize>,
}

async fn run(args: &DemoArgs, scenario: &Scenario, options: &Options, data: PathBuf) -> Result<()> {
    let network = Network {
        service_addrs: vec![args.service_addr],
        harness_addr: args.http_addr,
    };
    let mut run = Run::start(
        scenario,
        scenario.seed,
        AgentKind::Runbook,
        options,
        &data,
        Some(network),
    )
    .await
    .with_context(|| {
        format!(
            "--service-addr {} / --http-addr {}",
            args.service_addr, args.http_addr
        )
    })?;
    let service_url = run.world.service_urls.first().cloned().unwrap_or_default();
    let harness_url = run.world.harness_url.clone().unwrap_or_default();
    let tenants: Vec<&str> = scenario
        .workload
        .tenants
        .iter()
        .map(|tenant| tenant.name.as_str())
        .collect();
    println!(
        "Floodgate demo — the lab's {SCENARIO:?} scenario, simulated time, 10 s per tick, {}x",
        args.speed
    );
    println!(
        "  service  {service_url}   (in-memory store; tenants {})",
        tenants.join(", ")
    );
    println!("  harness  {harness_url}   (SQLite in {})", data.display());
    println!(
        "  agent    the runbook agent ({} runbooks)",
        options.runbooks.len()
    );
    println!("  story    {}\n", scenario.description.trim());

    let pace = Duration::from_millis((TICK_MS / args.speed).max(1));
    let mut shown = Shown::default();
    while !run.over() {
        let tick = run.tick().await?;
        let at = clock_text(tick.t_ms);
        for fault in &tick.faults {
            println!("[{at}] fault: {}", describe(&fault.kind, scenario));
        }
        render_report(&at, &tick, &mut shown);
        for pid in &tick.approved {
            println!("[{at}] on-call approves {pid}");
        }
        render_tickets(&at, &run, &mut shown).await?;
        for (ticket, outcome) in &tick.finished {
            println!("[{at}] agent: {ticket} finished — {outcome}");
        }
        if let Some((ticket, _)) = tick.finished.first() {
            return finish(&run, &at, ticket, &data).await;
        }
        tokio::time::sleep(pace).await;
    }
    bail!(
        "nothing resolved after {} simulated hours; the data is in {}",
        scenario.duration_ms / 3_600_000,
        data.display()
    )
}

/// A fault, as the terminal says it.
fn describe(kind: &FaultKind, scenario: &Scenario) -> String {
    let base = |tenant: &str| {
        scenario
            .workload
            .tenants
            .iter()
            .find(|spec| spec.name == tenant)
            .map(|spec| spec.per_minute)
            .filter(|per_minute| *per_minute > 0)
    };
    match kind {
        FaultKind::Growth {
            tenant, per_minute, ..
        }
        | FaultKind::Surge {
            tenant, per_minute, ..
        } => match base(tenant) {
            Some(before) if per_minute % before == 0 => {
                format!("{tenant}'s traffic grows {}x", per_minute / before)
            }
            _ => format!("{tenant}'s traffic goes to {per_minute} checks a minute"),
        },
        other => other.name().to_owned(),
    }
}

/// SLOs starting or stopping to burn, and tickets filed.
fn render_report(at: &str, tick: &Tick, shown: &mut Shown) {
    for slo in tick.report["slos"].as_array().into_iter().flatten() {
        let name = slo["name"].as_str().unwrap_or("?").to_owned();
        let burning = !slo["firing"].is_null();
        if shown.burning.get(&name).copied().unwrap_or(false) != burning {
            println!(
                "[{at}] SLO {name} {} (SLI {}, budget left {})",
                if burning {
                    "is burning its budget"
                } else {
                    "no longer burns"
                },
                slo["sli"]
                    .as_f64()
                    .map_or("—".into(), |v| format!("{:.4}%", v * 100.0)),
                slo["error_budget_remaining"]
                    .as_f64()
                    .map_or("—".into(), |v| format!("{:.1}%", v * 100.0)),
            );
            shown.burning.insert(name, burning);
        }
    }
    for filed in tick.report["filed"].as_array().into_iter().flatten() {
        let id = filed["id"].as_str().unwrap_or("?").to_owned();
        if let std::collections::btree_map::Entry::Vacant(entry) = shown.tickets.entry(id) {
            println!(
                "[{at}] ticket {} filed ({})",
                entry.key(),
                filed["fingerprint"].as_str().unwrap_or("?")
            );
            entry.insert(String::new());
        }
    }
}

/// Each ticket's state and its proposals' stages, as they change.
async fn render_tickets(at: &str, run: &Run<'_>, shown: &mut Shown) -> Result<()> {
    let ids: Vec<String> = shown.tickets.keys().cloned().collect();
    for id in ids {
        let ticket = run.world.get(&format!("/v1/tickets/{id}")).await?;
        let state = ticket["ticket"]["state"].as_str().unwrap_or("?").to_owned();
        if shown.tickets.get(&id) != Some(&state) {
            println!("[{at}] ticket {id} is {state}");
            shown.tickets.insert(id.clone(), state);
        }
        for proposal in ticket["proposals"].as_array().into_iter().flatten() {
            let pid = proposal["id"].as_str().unwrap_or("?").to_owned();
            let records = proposal["records"].as_array().cloned().unwrap_or_default();
            let seen = shown.records.entry(pid.clone()).or_insert(0);
            for record in records.iter().skip(*seen) {
                println!(
                    "[{at}] {pid} {}: {} — {}",
                    record["stage"].as_str().unwrap_or("?"),
                    record["result"].as_str().unwrap_or("?"),
                    record["detail"].as_str().unwrap_or("")
                );
            }
            *seen = records.len();
        }
    }
    Ok(())
}

/// The trajectory saved, and where to look.
async fn finish(run: &Run<'_>, at: &str, ticket: &str, data: &std::path::Path) -> Result<()> {
    let trajectory: Value = run.world.get(&format!("/v1/trajectories/{ticket}")).await?;
    let t = &trajectory["trajectory"];
    println!(
        "\n[{at}] trajectory saved: {ticket}, {} steps, outcome {}, reward {}",
        t["steps"].as_array().map_or(0, Vec::len),
        t["extra"]["outcome"].as_str().unwrap_or("?"),
        t["reward"]
    );
    println!("\nWhere to look (the data stays in {}):", data.display());
    println!(
        "  floodgate harness --data {} --service URL --objectives FILE   # its API: /v1/tickets/{ticket}, /v1/trajectories/{ticket}",
        data.display()
    );
    println!(
        "  floodgate trajectory show {ticket} --data {}",
        data.display()
    );
    println!("  floodgate trajectory export --data {}", data.display());
    println!("  floodgate ledger verify --data {}", data.display());
    println!(
        "  floodgate scenarios run --suite demo --out DIR   # the same scenario, judged by the lab's oracle"
    );
    Ok(())
}
