//! The committed scenario suite and the shipped runbooks, compiled into
//! the binary (build.rs), and the one rule for choosing between them and a
//! directory: a flag names a directory, which must exist; without the
//! flag, the compiled-in files. So every command works from any working
//! directory, and a missing directory is named with the flag that set it.

use anyhow::{anyhow, bail, Result};
use floodgate_agent::runbook::{load_dir, parse_files, Runbook};
use floodgate_lab::Scenario;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// `flag DIR` must name a directory: the error says which flag and what
/// leaving it out does instead.
fn check_dir(flag: &str, dir: &Path, built_in: &str) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!(
            "{flag} {}: not a directory (leave {flag} out to use {built_in})",
            dir.display()
        ),
        Err(error) => bail!(
            "{flag} {}: {error} (leave {flag} out to use {built_in})",
            dir.display()
        ),
    }
}

fn built_in_runbooks() -> String {
    format!("the {} runbooks built into floodgate", RUNBOOKS.len())
}

fn built_in_scenarios() -> String {
    format!("the {} scenarios built into floodgate", SCENARIOS.len())
}

/// Where the runbooks come from, for messages.
pub fn runbooks_source(dir: Option<&Path>) -> String {
    match dir {
        Some(dir) => dir.display().to_string(),
        None => built_in_runbooks(),
    }
}

/// Where the scenarios come from, for messages.
pub fn scenarios_source(dir: Option<&Path>) -> String {
    match dir {
        Some(dir) => dir.display().to_string(),
        None => built_in_scenarios(),
    }
}

/// The runbooks of `--runbooks DIR`, or the built-in ones; never empty.
pub fn runbooks(dir: Option<&Path>) -> Result<Vec<Runbook>> {
    let runbooks = match dir {
        Some(dir) => {
            check_dir("--runbooks", dir, &built_in_runbooks())?;
            load_dir(dir).map_err(|error| anyhow!("--runbooks: {error}"))?
        }
        None => parse_files(RUNBOOKS).map_err(|error| anyhow!("built-in runbooks: {error}"))?,
    };
    if runbooks.is_empty() {
        bail!(
            "--runbooks {}: no runbook (*.yaml) in it",
            runbooks_source(dir)
        );
    }
    Ok(runbooks)
}

/// The scenarios of `--scenarios DIR`, or the built-in suite.
pub fn scenarios(dir: Option<&Path>) -> Result<Vec<Scenario>> {
    match dir {
        Some(dir) => {
            check_dir("--scenarios", dir, &built_in_scenarios())?;
            floodgate_lab::load_dir(dir).map_err(|error| anyhow!("--scenarios: {error}"))
        }
        None => SCENARIOS
            .iter()
            .map(|(file, text)| floodgate_lab::parse(file, text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| anyhow!("built-in scenarios: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_files_are_the_repository_s_and_all_load() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for (table, dir) in [(SCENARIOS, "scenarios"), (RUNBOOKS, "runbooks")] {
            let mut on_disk: Vec<String> = std::fs::read_dir(repo.join(dir))
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".yaml"))
                .map(|name| format!("{dir}/{name}"))
                .collect();
            on_disk.sort();
            let built_in: Vec<String> = table.iter().map(|(file, _)| (*file).to_owned()).collect();
            assert_eq!(built_in, on_disk, "{dir}");
            for (file, text) in table {
                assert_eq!(
                    *text,
                    std::fs::read_to_string(repo.join(file)).unwrap(),
                    "{file}"
                );
            }
        }
        assert_eq!(runbooks(None).unwrap().len(), RUNBOOKS.len());
        assert_eq!(scenarios(None).unwrap().len(), SCENARIOS.len());
    }

    #[test]
    fn a_missing_directory_is_named_with_its_flag() {
        let missing = Path::new("/nonexistent/floodgate-runbooks");
        let error = runbooks(Some(missing)).unwrap_err().to_string();
        assert!(
            error.starts_with("--runbooks /nonexistent/floodgate-runbooks: "),
            "{error}"
        );
        assert!(error.contains("leave --runbooks out"), "{error}");
        let error = scenarios(Some(missing)).unwrap_err().to_string();
        assert!(error.starts_with("--scenarios /nonexistent/"), "{error}");
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let error = scenarios(Some(&file)).unwrap_err().to_string();
        assert!(error.contains("not a directory"), "{error}");
    }
}
