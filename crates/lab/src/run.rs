//! Running scenarios: one run is a scenario, a seed and an agent in a fresh
//! world; every run with an agent is paired with a no-agent baseline of the
//! same seed, and the verifier ([`crate::oracle`]) judges the pair.

use crate::fault::Fault;
use crate::oracle::{
    judge, Expectation, FaultTruth, Figures, ProposalView, RunRecord, Sample, TicketView, Verdict,
};
use crate::scenario::{Scenario, TICK_MS};
use crate::workload::Generator;
use crate::world::{objectives, Network, Traffic, World, WorldSpec, DEFAULT_LIMITS, T0_MS};
use anyhow::anyhow;
use floodgate_agent::client::HarnessClient;
use floodgate_agent::llm::{LlmAgent, LlmOptions};
use floodgate_agent::runbook::{PollReport, Runbook, RunbookAgent};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which agent works the tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// The runbook agent with the runbooks of a directory.
    Runbook,
    /// The LLM agent, against the chat-completions endpoint of
    /// [`Options::llm`].
    Llm,
    /// An external agent over MCP: [`Options::mcp_command`] is run (with
    /// `FLOODGATE_MCP_URL` naming the harness's MCP endpoint on loopback)
    /// once a tick while a ticket waits.
    Mcp,
    /// No agent: the baseline.
    None,
}

impl AgentKind {
    pub fn parse(text: &str) -> Option<AgentKind> {
        match text {
            "runbook" => Some(AgentKind::Runbook),
            "llm" => Some(AgentKind::Llm),
            "mcp" => Some(AgentKind::Mcp),
            "none" => Some(AgentKind::None),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Runbook => "runbook",
            AgentKind::Llm => "llm",
            AgentKind::Mcp => "mcp",
            AgentKind::None => "none",
        }
    }
}

/// Runbook agents working tickets side by side: one may wait on a
/// pipeline (verification lasts many minutes) while another takes the next
/// ticket.
pub const RUNBOOK_WORKERS: usize = 2;

/// The agent driver: polled once a tick, after the harness observed.
pub enum Driver {
    Runbook(Vec<RunbookAgent>),
    Llm(Box<LlmAgent>),
    Mcp(McpDriver),
    None,
}

/// How long one step of an external MCP agent may take (wall time).
pub const MCP_STEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The harness's MCP endpoint served on loopback for one run, and the
/// external agent's command.
pub struct McpDriver {
    url: String,
    command: String,
    shutdown: floodgate_agent::mcp::CancellationToken,
}

impl Drop for McpDriver {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl McpDriver {
    async fn start(world: &World, command: String) -> anyhow::Result<McpDriver> {
        let client = HarnessClient::new(world.harness.clone()).with_agent("mcp");
        let shutdown = floodgate_agent::mcp::CancellationToken::new();
        let router =
            floodgate_agent::mcp::streamable_http_router_with_shutdown(client, shutdown.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|error| anyhow!("binding the MCP endpoint on 127.0.0.1: {error}"))?;
        let url = format!(
            "http://{}{}",
            listener.local_addr()?,
            floodgate_agent::mcp::MCP_PATH
        );
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        Ok(McpDriver {
            url,
            command,
            shutdown,
        })
    }

    /// Runs the agent's command once if a ticket waits for an agent (open,
    /// not a help ticket). The world stands still until it exits.
    async fn step(&self, world: &World, now_ms: u64) -> anyhow::Result<()> {
        let open = world.get("/v1/tickets?state=open&limit=50").await?;
        let waiting = open["tickets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|ticket| ticket["type"] != "help");
        if !waiting {
            return Ok(());
        }
        let run = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .env("FLOODGATE_MCP_URL", &self.url)
            .env("FLOODGATE_TIME_MS", now_ms.to_string())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(MCP_STEP_TIMEOUT, run)
            .await
            .map_err(|_| anyhow!("the mcp agent's command ran past {MCP_STEP_TIMEOUT:?}"))?
            .map_err(|error| anyhow!("running the mcp agent's command: {error}"))?;
        if !output.status.success() {
            return Err(anyhow!(
                "the mcp agent's command failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
                    .chars()
                    .take(2000)
                    .collect::<String>()
            ));
        }
        Ok(())
    }
}

impl Driver {
    pub async fn new(kind: AgentKind, world: &World, options: &Options) -> anyhow::Result<Driver> {
        Ok(match kind {
            AgentKind::None => Driver::None,
            AgentKind::Mcp => {
                let command = options
                    .mcp_command
                    .clone()
                    .ok_or_else(|| anyhow!("the mcp agent needs a command"))?;
                Driver::Mcp(McpDriver::start(world, command).await?)
            }
            AgentKind::Llm => {
                let llm = options
                    .llm
                    .clone()
                    .ok_or_else(|| anyhow!("the llm agent needs an endpoint and a model"))?;
                let client = HarnessClient::new(world.harness.clone()).with_agent("llm-1");
                Driver::Llm(Box::new(
                    LlmAgent::new(client, llm, Arc::new(floodgate_agent::llm::SystemClock))
                        .map_err(|error| anyhow!("{error}"))?,
                ))
            }
            AgentKind::Runbook => {
                let runbooks = &options.runbooks;
                if runbooks.is_empty() {
                    return Err(anyhow!("the runbook agent needs runbooks"));
                }
                Driver::Runbook(
                    (1..=RUNBOOK_WORKERS)
                        .map(|worker| {
                            let name = format!("runbook-{worker}");
                            let client =
                                HarnessClient::new(world.harness.clone()).with_agent(&name);
                            RunbookAgent::new(client, name, runbooks.clone())
                        })
                        .collect(),
                )
            }
        })
    }

    /// Polls the agents once; answers the runbook agents' runs that ended
    /// (ticket, outcome).
    pub async fn poll(
        &mut self,
        world: &World,
        now_ms: u64,
    ) -> anyhow::Result<Vec<(String, String)>> {
        match self {
            Driver::None => Ok(Vec::new()),
            Driver::Mcp(driver) => driver.step(world, now_ms).await.map(|()| Vec::new()),
            Driver::Runbook(agents) => {
                let mut finished = Vec::new();
                for agent in agents {
                    let report = agent.poll(now_ms).await.map_err(|error| {
                        anyhow!("the harness did not answer {}: {error}", agent.name())
                    })?;
                    if let PollReport::Finished { ticket, outcome } = report {
                        finished.push((ticket, outcome));
                    }
                }
                Ok(finished)
            }
            // One ticket a tick at most: the model works it to a proposal
            // (or an escalation) in wall time while simulated time stands.
            Driver::Llm(agent) => match agent.work_one().await {
                Ok(_) => Ok(Vec::new()),
                Err(error) => Err(anyhow!("the llm agent could not work: {error}")),
            },
        }
    }
}

/// Where the suite keeps things.
#[derive(Debug, Clone)]
pub struct Options {
    /// The runbook agent's runbooks (`--agent runbook`), loaded once.
    pub runbooks: Vec<Runbook>,
    /// The LLM agent's endpoint, model and bounds (`--agent llm`).
    pub llm: Option<LlmOptions>,
    /// The external MCP agent's command line, run with `sh -c` (`--agent
    /// mcp`).
    pub mcp_command: Option<String>,
    /// `--realtime`: the service and the harness on loopback HTTP, and each
    /// 10 s tick paced to 10 s of wall time divided by this speed.
    pub realtime: Option<f64>,
    /// Each run's harness data goes in `out/runs/NAME-sSEED-AGENT`.
    pub out: PathBuf,
}

/// One judged run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub scenario: String,
    pub family: String,
    /// Simulated run time.
    pub duration_s: u64,
    pub seed: u64,
    pub agent: AgentKind,
    pub expected: String,
    pub verdict: Verdict,
    pub why: String,
    pub figures: Figures,
    /// The run's harness data (tickets, ledger, trajectories).
    pub data: String,
}

/// The simulated on-call: approves every proposal waiting for a human
/// (agent questions and gated actions); answers the proposals approved.
/// Help tickets are left for real humans: suspensions stay.
async fn human_approves(world: &World) -> anyhow::Result<Vec<String>> {
    let mut approved = Vec::new();
    let listed = world
        .get("/v1/tickets?state=open,claimed,in_progress&limit=50")
        .await?;
    for ticket in listed["tickets"].as_array().into_iter().flatten() {
        let Some(id) = ticket["id"].as_str() else {
            continue;
        };
        let shown = world.get(&format!("/v1/tickets/{id}")).await?;
        for proposal in shown["proposals"].as_array().into_iter().flatten() {
            if proposal["stage"] == "awaiting_approval" {
                let pid = proposal["id"].as_str().unwrap_or_default();
                let (status, answer) = world
                    .post(
                        &format!("/v1/proposals/{pid}/approve"),
                        json!({"actor": "human:on-call", "reason": "approved by the scenario's on-call"}),
                    )
                    .await?;
                if status != 200 {
                    return Err(anyhow!("approving {pid}: {status} {answer}"));
                }
                approved.push(pid.to_owned());
            }
        }
    }
    Ok(approved)
}

/// Every ledger entry, oldest first (paged through the harness API).
async fn ledger(world: &World) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let page = world.get(&format!("/v1/ledger?after={after}")).await?;
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        if entries.is_empty() {
            return Ok(out);
        }
        after = page["next_after"].as_u64().unwrap_or(after);
        out.extend(entries);
        // Bounded: a run's ledger is finite, but a harness answering the
        // same page forever must not hang the lab.
        if out.len() > 10_000_000 {
            return Err(anyhow!("the ledger has more than 10,000,000 entries"));
        }
    }
}

/// The tickets as the harness API shows them at the end, with their
/// timelines from the ledger (filings, reopenings, claims, escalations)
/// and their proposals' stage records. Times are run times.
async fn tickets(world: &World) -> anyhow::Result<Vec<TicketView>> {
    let t0 = world.t0_ms;
    let run_time = |ms: u64| ms.saturating_sub(t0);
    let mut views: BTreeMap<String, TicketView> = BTreeMap::new();
    let mut after = 0u64;
    loop {
        let listed = world
            .get(&format!("/v1/tickets?limit=1000&after={after}"))
            .await?;
        let page = listed["tickets"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            break;
        }
        for ticket in &page {
            let id = ticket["id"].as_str().unwrap_or_default();
            let shown = world.get(&format!("/v1/tickets/{id}")).await?;
            let text = |pointer: &str| {
                shown
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let proposals = shown["proposals"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let records: Vec<&Value> =
                        p["records"].as_array().into_iter().flatten().collect();
                    let time_of = |stage: Option<&str>, result: &str| {
                        records
                            .iter()
                            .filter(|r| r["result"] == result)
                            .filter(|r| stage.is_none_or(|stage| r["stage"] == stage))
                            .filter_map(|r| r["time_ms"].as_u64())
                            .map(run_time)
                            .min()
                    };
                    let stage = p["stage"].as_str().unwrap_or_default().to_owned();
                    ProposalView {
                        id: p["id"].as_str().unwrap_or_default().to_owned(),
                        actions: p["actions"].as_array().map_or(0, Vec::len),
                        interim: p["interim"].as_bool().unwrap_or(false),
                        applied_t_ms: time_of(None, "applied"),
                        verified_t_ms: time_of(Some("verifying"), "passed"),
                        rolled_back: stage == "rolled_back"
                            || time_of(None, "rolled_back").is_some(),
                        stage,
                    }
                })
                .collect();
            let names = shown
                .pointer("/ticket/context/reflection/fingerprints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            views.insert(
                id.to_owned(),
                TicketView {
                    id: id.to_owned(),
                    kind: text("/ticket/type"),
                    source: text("/ticket/source"),
                    fingerprint: text("/ticket/fingerprint"),
                    state: text("/ticket/state"),
                    created_t_ms: run_time(shown["ticket"]["created_ms"].as_u64().unwrap_or(0)),
                    names,
                    proposals,
                    ..TicketView::default()
                },
            );
        }
        let last = page
            .last()
            .and_then(|t| t["id"].as_str())
            .and_then(|id| id.rsplit('-').next())
            .and_then(|n| n.parse::<u64>().ok());
        match last {
            Some(number) if number > after && page.len() >= 1000 => after = number,
            _ => break,
        }
    }
    // Timelines: when each ticket was filed on a ticket open to work
    // (created, reopened, or absorbed while still being worked), claimed,
    // escalated.
    let mut states: BTreeMap<String, String> = BTreeMap::new();
    for entry in ledger(world).await? {
        let Some(view) = entry["subject"].as_str().and_then(|id| views.get_mut(id)) else {
            continue;
        };
        let time = run_time(entry["time_ms"].as_u64().unwrap_or(0));
        let data = &entry["data"];
        let state = states
            .entry(view.id.clone())
            .or_insert_with(|| "open".into());
        match entry["kind"].as_str().unwrap_or_default() {
            "ticket.created" => view.opened_t_ms.push(time),
            "ticket.transitioned" => {
                let to = data["to"].as_str().unwrap_or_default();
                let from = data["from"].as_str().unwrap_or_default();
                if to == "open" && from != "claimed" && from != "in_progress" {
                    view.opened_t_ms.push(time);
                }
                if to == "claimed" {
                    view.claimed = true;
                }
                if to == "escalated" && view.escalated_t_ms.is_none() {
                    view.escalated_t_ms = Some(time);
                }
                *state = to.to_owned();
            }
            "ticket.occurred"
                if matches!(
                    state.as_str(),
                    "open" | "claimed" | "in_progress" | "verifying"
                ) && view.opened_t_ms.last() != Some(&time) =>
            {
                view.opened_t_ms.push(time);
            }
            _ => {}
        }
    }
    Ok(views.into_values().collect())
}

/// The canary the lab judges with unless a scenario sets its own: the
/// production default judges `latency_p99` too, and latency in a simulated
/// world is the host's (a debug build on a busy machine), not the
/// scenario's: it would make a run's verdict depend on the machine. Error
/// and rejection ratios are the scenario's own.
pub const LAB_CANARY: &str = "
canary:
  metrics:
    - name: error_ratio
      direction: increase
      critical: true
      effect_size: {max_relative_change: 0.1, min_absolute_change: 0.001}
      min_samples: 3
";

/// The scenario's policy, with [`LAB_CANARY`] when it sets no canary.
pub fn lab_policy(policy: &str) -> String {
    let sets_canary = policy
        .lines()
        .any(|line| line.trim_end().starts_with("canary:"));
    if sets_canary {
        policy.to_owned()
    } else {
        format!("{policy}\n{LAB_CANARY}")
    }
}

/// Runs one scenario with one seed and one agent; never panics: a world or
/// harness error ends the run with [`RunRecord::error`] set.
pub async fn run_once(
    scenario: &Scenario,
    seed: u64,
    agent: AgentKind,
    options: &Options,
) -> (RunRecord, PathBuf) {
    let data =
        options
            .out
            .join("runs")
            .join(format!("{}-s{seed}-{}", scenario.name, agent.as_str()));
    let mut record = RunRecord::default();
    if let Err(error) = drive(scenario, seed, agent, options, &data, &mut record).await {
        record.error = Some(format!("{error:#}"));
    }
    (record, data)
}

async fn drive(
    scenario: &Scenario,
    seed: u64,
    agent: AgentKind,
    options: &Options,
    data: &Path,
    record: &mut RunRecord,
) -> anyhow::Result<()> {
    let network = options.realtime.map(|_| Network::ephemeral());
    let mut run = Run::start(scenario, seed, agent, options, data, network).await?;
    let started = tokio::time::Instant::now();
    while !run.over() {
        if let Some(speed) = options.realtime {
            // Real time: this tick starts when the wall clock says so.
            let due = std::time::Duration::from_secs_f64(run.t_ms() as f64 / 1000.0 / speed);
            tokio::time::sleep_until(started + due).await;
        }
        let tick = run.tick().await?;
        for (tenant, (sent, admitted)) in &tick.traffic.tenants {
            let entry = record.tenants.entry(tenant.clone()).or_default();
            entry.0 += u64::from(*sent);
            entry.1 += u64::from(*admitted);
        }
        record.samples.push(Sample {
            t_ms: tick.t_ms,
            good_sent: tick.traffic.good_sent,
            good_rejected: tick.traffic.good_rejected,
            total_sent: tick.traffic.total_sent,
            total_admitted: tick.traffic.total_admitted,
            used_ratio: tick.used_ratio,
        });
    }
    record.tickets = tickets(&run.world).await?;
    record.ledger_ok = floodgate_harness::verify(run.world.data()).is_ok();
    Ok(())
}

/// One run of a scenario, a tick at a time: the suite drives it to the
/// end and records it; `floodgate demo` renders each tick as it happens.
pub struct Run<'a> {
    scenario: &'a Scenario,
    agent: AgentKind,
    pub world: World,
    driver: Driver,
    /// Run time of the next tick.
    t_ms: u64,
}

/// What one tick did.
#[derive(Debug, Clone)]
pub struct Tick {
    /// Run time of the tick.
    pub t_ms: u64,
    /// The world's clock (epoch ms).
    pub now_ms: u64,
    /// The faults that fired.
    pub faults: Vec<Fault>,
    pub traffic: Traffic,
    /// The harness's tick, as its API shows it (`slos`, `invariants`,
    /// `anomalies`, `filed`, …).
    pub report: Value,
    /// Agents' runs that ended: (ticket, outcome).
    pub finished: Vec<(String, String)>,
    /// Proposals the simulated on-call approved.
    pub approved: Vec<String>,
    /// The fullest counter store of the fleet.
    pub used_ratio: f64,
}

impl<'a> Run<'a> {
    /// A fresh world for `scenario` (its harness data in `data`), on the
    /// network if `network` says where, and the agent's driver.
    pub async fn start(
        scenario: &'a Scenario,
        seed: u64,
        agent: AgentKind,
        options: &Options,
        data: &Path,
        network: Option<Network>,
    ) -> anyhow::Result<Run<'a>> {
        let spec = WorldSpec {
            limits: scenario
                .limits
                .clone()
                .unwrap_or_else(|| DEFAULT_LIMITS.to_owned()),
            objectives: objectives(scenario.max_load_per_minute),
            policy: lab_policy(&scenario.policy),
            store_capacity: scenario.store_capacity,
            backend: scenario.backend,
            instances: scenario.instances,
            t0_ms: T0_MS + scenario.start_ms,
            seed,
            data: data.to_owned(),
            network,
        };
        let generator = Generator::new(scenario.workload.clone(), seed);
        let world = World::build(&spec, generator)?;
        let driver = Driver::new(agent, &world, options).await?;
        Ok(Run {
            scenario,
            agent,
            world,
            driver,
            t_ms: 0,
        })
    }

    /// Run time of the next tick.
    pub fn t_ms(&self) -> u64 {
        self.t_ms
    }

    /// Whether the scenario's duration has run.
    pub fn over(&self) -> bool {
        self.t_ms >= self.scenario.duration_ms
    }

    /// One tick: notices and faults due, the backend and the reconciler,
    /// the workload's checks, the harness's observation, the agents, the
    /// on-call; then the clocks move on by a tick.
    pub async fn tick(&mut self) -> anyhow::Result<Tick> {
        let t = self.t_ms;
        let world = &mut self.world;
        for notice in &self.scenario.notices {
            if (notice.at_ms..notice.at_ms + TICK_MS).contains(&t) {
                world.announce(notice).await?;
            }
        }
        let mut faults = Vec::new();
        for fault in &self.scenario.faults {
            if fault.fires_at(t, TICK_MS) {
                world.inject(&fault.kind).await?;
                faults.push(fault.clone());
            }
        }
        world.backend_tick().await;
        world.reconcile().await?;
        let now_ms = world.now();
        let plan = world.generator.plan(now_ms, TICK_MS);
        let traffic = world.send(&plan, TICK_MS).await?;
        let report = world.observe().await?;
        let finished = self.driver.poll(world, now_ms).await?;
        let approved = if self.scenario.human_approves && self.agent != AgentKind::None {
            human_approves(world).await?
        } else {
            Vec::new()
        };
        let used_ratio = world.fleet_used_ratio().await?;
        world.advance(TICK_MS);
        self.t_ms += TICK_MS;
        Ok(Tick {
            t_ms: t,
            now_ms,
            faults,
            traffic,
            report,
            finished,
            approved,
            used_ratio,
        })
    }
}

/// The freeze windows of the scenario's policy in force during the run,
/// as run-time intervals (tick resolution).
fn frozen(scenario: &Scenario) -> Vec<(u64, u64)> {
    let Ok(policy) =
        floodgate_harness::change::policy::Policy::parse("policy.yaml", &scenario.policy)
    else {
        return Vec::new();
    };
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut t = 0;
    while t < scenario.duration_ms {
        if policy
            .active_freeze(T0_MS + scenario.start_ms + t)
            .is_some()
        {
            match out.last_mut() {
                Some((_, until)) if *until == t => *until = t + TICK_MS,
                _ => out.push((t, t + TICK_MS)),
            }
        }
        t += TICK_MS;
    }
    out
}

/// The expectation the verifier is given for a scenario.
pub fn expectation(scenario: &Scenario) -> Expectation {
    Expectation {
        frozen: frozen(scenario),
        outcome: scenario.outcome,
        hold_ms: scenario.hold_ms,
        faults: scenario
            .faults
            .iter()
            .map(|fault| FaultTruth {
                kind: fault.kind.name().to_owned(),
                at_ms: fault.at_ms,
                until_ms: match (fault.every_ms, fault.kind.acts_for_ms()) {
                    (None, Some(for_ms)) => (fault.at_ms + for_ms).min(scenario.duration_ms),
                    _ => scenario.duration_ms,
                },
                invariants: fault
                    .kind
                    .breaks_invariants()
                    .iter()
                    .map(|name| (*name).to_owned())
                    .collect(),
            })
            .collect(),
        max_load_per_minute: scenario.max_load_per_minute,
        abusive_tenants: scenario
            .faults
            .iter()
            .filter_map(|fault| fault.kind.abusive_tenant().map(str::to_owned))
            .collect(),
        help_required: scenario.help_required,
        max_changes: scenario.max_changes,
        unfinished: scenario.unfinished.clone(),
    }
}

/// Runs `scenario` with `seed`: the no-agent baseline, then `agent` (when it
/// is not `none` itself), and judges the pair.
pub async fn run_scenario(
    scenario: &Scenario,
    seed: u64,
    agent: AgentKind,
    options: &Options,
) -> RunResult {
    let (baseline, baseline_data) = run_once(scenario, seed, AgentKind::None, options).await;
    let (run, data) = if agent == AgentKind::None {
        (baseline.clone(), baseline_data)
    } else {
        run_once(scenario, seed, agent, options).await
    };
    let (verdict, why, figures) = judge(&run, &baseline, &expectation(scenario));
    RunResult {
        scenario: scenario.name.clone(),
        family: scenario.family.clone(),
        duration_s: scenario.duration_ms / 1000,
        seed,
        agent,
        expected: scenario.outcome.as_str().to_owned(),
        verdict,
        why,
        figures,
        data: data.display().to_string(),
    }
}

/// The seeds a scenario runs with: `seeds` of them (at least its
/// `min_seeds`), starting at its own.
pub fn seeds_of(scenario: &Scenario, seeds: u32) -> Vec<u64> {
    let count = seeds.max(scenario.min_seeds);
    (0..u64::from(count)).map(|i| scenario.seed + i).collect()
}

/// The scenarios of `suite`, in file order.
pub fn suite<'a>(scenarios: &'a [Scenario], suite: &str) -> Vec<&'a Scenario> {
    scenarios
        .iter()
        .filter(|scenario| scenario.suites.iter().any(|name| name == suite))
        .collect()
}

/// Scenario runs in flight at once in [`run_suite`] (each with its no-agent
/// baseline run first).
pub const MAX_CONCURRENT_RUNS: usize = 4;

/// Runs every scenario with its seeds, concurrently (each run is its own
/// world; the results do not depend on the interleaving), and returns the
/// results in scenario and seed order.
pub async fn run_suite(
    scenarios: &[&Scenario],
    seeds: u32,
    agent: AgentKind,
    options: &Options,
) -> anyhow::Result<Vec<RunResult>> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut index = 0usize;
    // Runs are CPU-bound and each holds a whole world (a fleet, a harness,
    // a SQLite store): a few at a time keep every core busy and memory
    // bounded, however many runs a suite has.
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_RUNS));
    for scenario in scenarios {
        for seed in seeds_of(scenario, seeds) {
            let scenario = (*scenario).clone();
            let options = options.clone();
            let slots = Arc::clone(&slots);
            let at = index;
            index += 1;
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                (at, run_scenario(&scenario, seed, agent, &options).await)
            });
        }
    }
    let mut results: Vec<(usize, RunResult)> = Vec::with_capacity(index);
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.map_err(|error| anyhow!("a run panicked: {error}"))?);
    }
    results.sort_by_key(|(at, _)| *at);
    Ok(results.into_iter().map(|(_, result)| result).collect())
}
