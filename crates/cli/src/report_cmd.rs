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
    /// The period: this long before now (e.g. 24h, 7d, 30d). Default: the
    /// last 7 days, or, when the directory recorded nothing in them (a
    /// scenario run's simulated dates, an old archive), the directory's
    /// own period, first record to last.
    #[arg(long, value_parser = parse_since, value_name = "DURATION")]
    since: Option<u64>,
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

/// The default period when `--since` is not given.
const DEFAULT_SINCE_MS: u64 = 7 * 24 * 3600 * 1000;

/// The period to report: `--since` before now when given; otherwise the
/// default one, unless the directory's last record is older than its start,
/// and then the directory's own period (first record to last).
fn period(since: Option<u64>, now_ms: u64, recorded: Option<(u64, u64)>) -> (u64, u64) {
    if let Some(since) = since {
        return (now_ms.saturating_sub(since), now_ms);
    }
    let default = (now_ms.saturating_sub(DEFAULT_SINCE_MS), now_ms);
    match recorded {
        Some((first, last)) if last < default.0 => (first, last),
        _ => default,
    }
}

pub fn report(args: ReportArgs) -> Result<()> {
    let now = SystemClock.now_ms();
    let recorded = match args.since {
        Some(_) => None,
        None => floodgate_harness::store::archive::read_period(&args.data).unwrap_or(None),
    };
    let (since_ms, now_ms) = period(args.since, now, recorded);
    if args.since.is_none() && now_ms != now {
        eprintln!(
            "--data {}: its last record is older than 7 days; reporting its own period",
            args.data.display()
        );
    }
    let data = floodgate_harness::report::load::read_report(&args.data, since_ms, now_ms)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_the_directory_s_own_when_it_is_older_than_the_default() {
        let now = 100 * DEFAULT_SINCE_MS;
        // Recent data, or nothing recorded: the default period.
        assert_eq!(
            period(None, now, Some((now - 5_000, now - 1_000))),
            (now - DEFAULT_SINCE_MS, now)
        );
        assert_eq!(period(None, now, None), (now - DEFAULT_SINCE_MS, now));
        // Data that ended before the default period began: its own.
        assert_eq!(period(None, now, Some((1_000, 9_000))), (1_000, 9_000));
        // An explicit --since is the period, whatever the data.
        assert_eq!(
            period(Some(3_600_000), now, Some((1_000, 9_000))),
            (now - 3_600_000, now)
        );
    }
}
