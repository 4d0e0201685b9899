//! `floodgate report`: the human review of a harness's data directory —
//! tickets by source and outcome, SLO budgets over the period, the
//! expected-change notices of the period and what they held back, every
//! change with its reasoning and trajectory, reflection findings, and what
//! waits on a human — written as `report.md` and `report.html`.
//!
//! The data directory is read read-only (`store::read_report`); the
//! rendering is `floodgate_harness::report`'s. The clock is read once.

use anyhow::{anyhow, Context, Result};
use clap::Args;
use floodgate_harness::report::{render_html, render_markdown};
use floodgate_harness::{Clock, SystemClock};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The harness's data directory (`floodgate harness --data DIR`); read
    /// only, so a running harness may keep writing it.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The period: this long before now (e.g. 24h, 7d, 30d).
    #[arg(long, default_value = "7d", value_parser = parse_since, value_name = "DURATION")]
    since: u64,
    /// Where `report.md` and `report.html` are written (created if
    /// missing; files of those names are replaced).
    #[arg(long, default_value = ".", value_name = "DIR")]
    out: PathBuf,
}

fn parse_since(text: &str) -> Result<u64, String> {
    let ms = floodgate_harness::quantity::parse_duration_ms(text)?;
    if ms == 0 {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(ms)
}

/// Writes `text` to `path` whole: a temporary file beside it, renamed.
fn write_whole(path: &Path, text: &str) -> Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, text)
        .with_context(|| format!("--out: cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("--out: cannot write {}", path.display()))
}

pub fn report(args: ReportArgs) -> Result<()> {
    let now_ms = SystemClock.now_ms();
    let since_ms = now_ms.saturating_sub(args.since);
    let data = floodgate_harness::store::read_report(&args.data, since_ms, now_ms)
        .map_err(|error| anyhow!("--data {}: {error}", args.data.display()))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create the directory", args.out.display()))?;
    for (name, text) in [
        ("report.md", render_markdown(&data)),
        ("report.html", render_html(&data)),
    ] {
        let path = args.out.join(name);
        write_whole(&path, &text)?;
        println!("{}", path.display());
    }
    Ok(())
}
