//! `floodgate demo`: the whole loop in one command, with embedded
//! defaults — a service (in-memory store), the harness (SQLite in a
//! temporary directory, the default pipeline policy), the runbook agent
//! (the shipped runbooks, compiled in) and a workload of three tenants.
//! After ten simulated minutes one tenant's traffic grows past its daily
//! quota; the terminal shows the SLO burning, the ticket filed, each
//! pipeline stage, the resolution and the trajectory saved, then where to
//! look. Time is simulated (each tick is 10 s) and paced by `--speed`, so
//! the service and harness APIs served on loopback while it runs show the
//! simulated clock. It finishes by itself; the harness data stays.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use floodgate_agent::client::HarnessClient;
use floodgate_agent::runbook::{PollReport, Runbook, RunbookAgent};
use floodgate_contract::client::ServiceApi;
use floodgate_harness::policy::Policy;
use floodgate_harness::{
    api, objectives, pipeline::Pipeline, Clock, Harness, HarnessConfig, HarnessState, ManualClock,
    Observer, Store, Target,
};
use floodgate_limiter::config::{self, ConfigSource};
use floodgate_service::auth::Access;
use floodgate_service::clock::ManualClock as ServiceClock;
use floodgate_service::engine::EngineOptions;
use floodgate_service::inprocess::InProcessTransport;
use floodgate_service::ServiceParts;
use floodgate_store::MemoryStore;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// 2026-01-01T00:00:00Z: the simulated clock starts at midnight, so the
/// daily quota starts fresh.
const T0_MS: u64 = 1_767_225_600_000;
/// One tick of simulated time.
const TICK_MS: u64 = 10_000;
/// When the fault is injected.
const FAULT_AT_MS: u64 = 10 * 60 * 1000;
/// The demo gives up after this much simulated time.
const MAX_SIMULATED_MS: u64 = 5 * 60 * 60 * 1000;

const LIMITS: &str = "
domain: api
descriptors:
  - key: tenant
    rate_limits:
      - {name: tenant_per_second, unit: second, requests_per_unit: 100}
      - {name: tenant_per_day, unit: day, requests_per_unit: 1800}
";

const OBJECTIVES: &str = "
alerting:
  min_events: 20
slos:
  - name: availability
    description: Rate-limit decisions are answered, not failed.
    service: floodgate
    target: 99.9%
    window: 30d
    sli:
      ratio:
        good: floodgate_requests_total{code!=\"error\"}
        total: floodgate_requests_total
  - name: limiting_correctness
    description: Hits of well-behaved tenants against tenant_per_day are admitted.
    service: floodgate
    target: 99.99%
    window: 7d
    sli:
      ratio:
        good: floodgate_rate_limit_within_limit_total{domain=\"api\",limit=\"tenant_per_day\"}
        total: floodgate_rate_limit_hits_total{domain=\"api\",limit=\"tenant_per_day\"}
invariants:
  - name: store_healthy
    condition: state.store.healthy
    on_violation: ticket
";

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

/// One tenant of the workload: checks per tick before and after the fault.
struct Tenant {
    name: &'static str,
    before: usize,
    after: usize,
}

const TENANTS: [Tenant; 3] = [
    // Grows 3x at the fault: past its daily quota about 1.5 hours later;
    // twice the quota then lasts the rest of the day.
    Tenant {
        name: "acme",
        before: 1,
        after: 3,
    },
    Tenant {
        name: "globex",
        before: 1,
        after: 1,
    },
    Tenant {
        name: "initech",
        before: 1,
        after: 1,
    },
];

fn clock_text(now_ms: u64) -> String {
    let elapsed = (now_ms - T0_MS) / 1000;
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
    let runbooks = crate::embedded::runbooks(None)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(args, data, runbooks))
}

async fn run(args: DemoArgs, data: PathBuf, runbooks: Vec<Runbook>) -> Result<()> {
    // The service, in process, on a simulated clock.
    let service_clock = Arc::new(ServiceClock::at_ns(T0_MS * 1_000_000));
    let parts = ServiceParts {
        table: config::load(&[ConfigSource::new("demo-limits.yaml", LIMITS)])
            .map_err(|error| anyhow!("{error}"))?,
        store: MemoryStore::new(100_000),
        clock: service_clock.clone(),
        options: EngineOptions::default(),
        access: Access::open(),
        control: Default::default(),
        traffic_capacity: floodgate_service::limits::DEFAULT_TRAFFIC_CAPACITY,
    };
    let assembled = floodgate_service::assemble(parts);
    let service = InProcessTransport::new(assembled.router.clone(), None);

    // The harness, on a simulated clock.
    let objectives = objectives::parse("demo-objectives.yaml", OBJECTIVES)
        .map_err(|error| anyhow!("{error}"))?;
    let harness = Harness::new(objectives, HarnessConfig::default())
        .map_err(|error| anyhow!("{}", error.0))?;
    let store = Store::open(&data).map_err(|error| anyhow!("{}: {error}", data.display()))?;
    let clock = Arc::new(ManualClock::at_ms(T0_MS));
    let state = HarnessState::new(harness, store, clock.clone());
    let targets = vec![Target {
        name: "demo-service".into(),
        transport: Arc::new(service.clone()),
    }];
    let pipeline = Pipeline::new(&state, targets.clone(), Policy::default())
        .map_err(|error| anyhow!("{error}"))?;
    state
        .set_pipeline(pipeline)
        .map_err(|error| anyhow!(error))?;
    let mut observer =
        Observer::new(Arc::clone(&state), targets).map_err(|error| anyhow!(error))?;
    let router = api::router(Arc::clone(&state));
    let harness_api = InProcessTransport::new(router.clone(), None);
    let client = HarnessClient::new(Arc::new(harness_api.clone())).with_agent("runbook");
    let runbook_count = runbooks.len();
    let mut agent = RunbookAgent::new(client, "runbook", runbooks);

    // Both APIs on loopback, so the demo can be watched from elsewhere.
    let harness_listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("--http-addr {}: cannot bind", args.http_addr))?;
    let service_listener = tokio::net::TcpListener::bind(args.service_addr)
        .await
        .with_context(|| format!("--service-addr {}: cannot bind", args.service_addr))?;
    let harness_url = format!("http://{}", harness_listener.local_addr()?);
    let service_url = format!("http://{}", service_listener.local_addr()?);
    tokio::spawn(async move { axum::serve(harness_listener, router).await });
    tokio::spawn(async move { axum::serve(service_listener, assembled.router).await });

    println!(
        "Floodgate demo — simulated time, 10 s per tick, {}x",
        args.speed
    );
    println!("  service  {service_url}   (in-memory store; tenants acme, globex, initech)");
    println!("  harness  {harness_url}   (SQLite in {})", data.display());
    println!("  agent    the runbook agent ({runbook_count} runbooks)");
    println!("  fault    at 00:10:00 acme's traffic grows 3x, past its daily quota of 1800\n");

    let pace = Duration::from_millis((TICK_MS / args.speed).max(1));
    let mut stages_seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut tickets_seen: BTreeMap<String, String> = BTreeMap::new();
    let mut burning = false;
    let mut finished: Option<String> = None;
    loop {
        let now = clock.now_ms();
        if now == T0_MS + FAULT_AT_MS {
            println!("[{}] fault: acme's traffic grows 3x", clock_text(now));
        }
        for tenant in &TENANTS {
            let count = if now >= T0_MS + FAULT_AT_MS {
                tenant.after
            } else {
                tenant.before
            };
            let request = json!({
                "domain": "api",
                "descriptors": [{"entries": [{"key": "tenant", "value": tenant.name}]}],
            });
            for _ in 0..count {
                service
                    .check(&request)
                    .await
                    .map_err(|error| anyhow!("check: {error}"))?;
            }
        }
        let report = observer.observe_once(now).await;
        for error in &report.errors {
            println!("[{}] harness: {error}", clock_text(now));
        }
        for slo in &report.slos {
            if slo.name == "limiting_correctness" && slo.firing.is_some() != burning {
                burning = slo.firing.is_some();
                println!(
                    "[{}] SLO {} {} (SLI {}, budget left {})",
                    clock_text(now),
                    slo.name,
                    if burning {
                        "is burning its budget"
                    } else {
                        "no longer burns"
                    },
                    slo.sli.map_or("—".into(), |v| format!("{:.4}%", v * 100.0)),
                    slo.error_budget_remaining
                        .map_or("—".into(), |v| format!("{:.1}%", v * 100.0)),
                );
            }
        }
        for filed in &report.filed {
            if !tickets_seen.contains_key(&filed.id) {
                tickets_seen.insert(filed.id.clone(), String::new());
                println!(
                    "[{}] ticket {} filed ({})",
                    clock_text(now),
                    filed.id,
                    filed.fingerprint
                );
            }
        }
        match agent.poll(now).await {
            Ok(PollReport::Finished { ticket, outcome }) => {
                println!("[{}] agent: {ticket} finished — {outcome}", clock_text(now));
                finished = Some(ticket);
            }
            Ok(_) => {}
            Err(error) => println!("[{}] agent: {error}", clock_text(now)),
        }
        // Pipeline progress, stage by stage.
        let ids: Vec<String> = tickets_seen.keys().cloned().collect();
        for id in ids {
            let shown = get(&harness_api, &format!("/v1/tickets/{id}")).await?;
            let state_now = shown["ticket"]["state"].as_str().unwrap_or("?").to_owned();
            if tickets_seen.get(&id) != Some(&state_now) {
                println!("[{}] ticket {id} is {state_now}", clock_text(now));
                tickets_seen.insert(id.clone(), state_now);
            }
            for proposal in shown["proposals"].as_array().into_iter().flatten() {
                let pid = proposal["id"].as_str().unwrap_or("?").to_owned();
                let records = proposal["records"].as_array().cloned().unwrap_or_default();
                let seen = stages_seen.entry(pid.clone()).or_insert(0);
                for record in records.iter().skip(*seen) {
                    println!(
                        "[{}] {pid} {}: {} — {}",
                        clock_text(now),
                        record["stage"].as_str().unwrap_or("?"),
                        record["result"].as_str().unwrap_or("?"),
                        record["detail"].as_str().unwrap_or("")
                    );
                }
                *seen = records.len();
                // The on-call: answers a question waiting for a human (the
                // runbook asks before raising a quota more than 2x).
                if proposal["stage"] == "awaiting_approval" {
                    post(
                        &harness_api,
                        &format!("/v1/proposals/{pid}/approve"),
                        json!({"actor": "human:demo-on-call", "reason": "the demo's on-call approves"}),
                    )
                    .await?;
                    println!("[{}] on-call approves {pid}", clock_text(now));
                }
            }
        }
        if let Some(ticket) = &finished {
            let trajectory = get(&harness_api, &format!("/v1/trajectories/{ticket}")).await?;
            let t = &trajectory["trajectory"];
            println!(
                "\n[{}] trajectory saved: {ticket}, {} steps, outcome {}, reward {}",
                clock_text(now),
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
            return Ok(());
        }
        if now >= T0_MS + MAX_SIMULATED_MS {
            bail!(
                "nothing resolved after {} simulated hours; the data is in {}",
                MAX_SIMULATED_MS / 3_600_000,
                data.display()
            );
        }
        clock.advance_ms(TICK_MS);
        service_clock.advance_ns(TICK_MS * 1_000_000);
        tokio::time::sleep(pace).await;
    }
}

async fn post(transport: &InProcessTransport, path: &str, body: Value) -> Result<Value> {
    use floodgate_contract::client::{Method, RawRequest, Transport};
    let response = transport
        .send(RawRequest {
            method: Method::Post,
            path: path.to_owned(),
            body: Some(serde_json::to_vec(&body)?),
        })
        .await
        .map_err(|error| anyhow!("{path}: {error}"))?;
    if !(200..300).contains(&response.status) {
        return Err(anyhow!(
            "{path}: {} {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        ));
    }
    serde_json::from_slice(&response.body).map_err(|error| anyhow!("{path}: {error}"))
}

async fn get(transport: &InProcessTransport, path: &str) -> Result<Value> {
    use floodgate_contract::client::{Method, RawRequest, Transport};
    let response = transport
        .send(RawRequest {
            method: Method::Get,
            path: path.to_owned(),
            body: None,
        })
        .await
        .map_err(|error| anyhow!("{path}: {error}"))?;
    serde_json::from_slice(&response.body).map_err(|error| anyhow!("{path}: {error}"))
}
