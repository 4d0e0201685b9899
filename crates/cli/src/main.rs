//! The `floodgate` command: parses arguments and hands over to the library
//! crates. Nothing here decides anything about rate limiting.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use floodgate_limiter::config::{self, ConfigSource};
use floodgate_service::clock::SystemClock;
use floodgate_service::engine::EngineOptions;
use floodgate_service::ServiceParts;
use floodgate_store::MemoryStore;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

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
    /// Generate the catalog docs (docs/catalog/) from the code.
    Catalog(CatalogArgs),
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
    if args.max_keys == 0 {
        bail!("--max-keys: must be at least 1");
    }
    for (flag, addr) in [
        ("--grpc-addr", args.grpc_addr),
        ("--http-addr", args.http_addr),
    ] {
        if !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                "{flag} is not a loopback address: the API is reachable from the network"
            );
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
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
        let parts = ServiceParts {
            table,
            store: MemoryStore::new(args.max_keys),
            clock: Arc::new(SystemClock),
            options: EngineOptions {
                x_ratelimit_headers: args.x_ratelimit_headers,
            },
        };
        floodgate_service::run(parts, grpc, http, shutdown_signal()).await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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
    for doc in floodgate_contract::generated_docs() {
        let path = args.root.join(doc.path);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == doc.content {
            continue;
        }
        if args.write {
            write_file(&path, &doc.content)?;
            println!("wrote {}", path.display());
        } else {
            drifted.push(doc.path);
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
