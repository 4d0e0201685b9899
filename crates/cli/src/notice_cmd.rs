//! `floodgate notice …`: expected-change notices through a running
//! harness's HTTP API (`POST /v1/notices`, `GET /v1/notices`,
//! `GET /v1/notices/{id}`, `POST /v1/notices/{id}/expire`;
//! docs/adr/0011-expected-change-notices.md). A client of the API, as
//! `floodgate ticket` is: what it does is exactly what the calls do.

use crate::harness_cmd::{
    decision, default_actor, print_history, print_json, HarnessApi, HarnessFlags,
};
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use floodgate_agent::client::NoticeRequest;
use floodgate_contract::time::parse_rfc3339_ms;
use floodgate_harness::quantity::{format_time_ms, parse_duration_ms};
use floodgate_harness::tickets::notices::LabelName;
use serde_json::{json, Value};

#[derive(Debug, Args)]
pub struct NoticeArgs {
    /// `--harness URL`, `--json`, `--token-env VAR` (a token of scope
    /// `intake` to create and expire, `read` to list and show).
    #[command(flatten)]
    flags: HarnessFlags,
    #[command(subcommand)]
    command: NoticeCommand,
}

#[derive(Debug, Subcommand)]
enum NoticeCommand {
    /// Announce an expected change (POST /v1/notices): anomalies it
    /// matches file no ticket while it is active (SLO and invariant
    /// tickets always do).
    Create(CreateFlags),
    /// List notices (GET /v1/notices).
    List {
        /// active, pending, expired or all.
        #[arg(long, default_value = "all")]
        state: String,
    },
    /// One notice and its ledger history (GET /v1/notices/{ID}).
    Show {
        /// The notice's id (`N-0001`).
        id: String,
    },
    /// End a notice now (POST /v1/notices/{ID}/expire).
    Expire {
        /// The notice's id (`N-0001`).
        id: String,
        /// Why the change is no longer expected.
        #[arg(long)]
        reason: String,
        /// Who expires it (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
}

/// A notice from flags.
#[derive(Debug, Args)]
struct CreateFlags {
    /// A label the change touches, `NAME=VALUE` (exact); NAME is service,
    /// limit, tenant, metric, anomaly, slo or invariant. Repeat for several.
    #[arg(long = "match", value_name = "NAME=VALUE")]
    matches: Vec<String>,
    /// As --match, with a regex the whole value must match
    /// (`anomaly=request_.*`).
    #[arg(long = "match-regex", value_name = "NAME=REGEX")]
    regexes: Vec<String>,
    /// When the change starts: an RFC 3339 time or `now`.
    #[arg(long, default_value = "now", value_name = "RFC3339|now")]
    from: String,
    /// How long it is expected from its start (`2h`, `30m`; at most 7d).
    #[arg(long = "for", value_name = "DURATION", conflicts_with = "until")]
    duration: Option<String>,
    /// When it stops being expected (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    until: Option<String>,
    /// What change is expected, and why.
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Who announces it, `KIND:NAME` (default: `human:$USER`).
    #[arg(long, value_name = "KIND:NAME")]
    author: Option<String>,
    /// How many times its level the matched series may move and still be
    /// expected (above 1); beyond it the anomaly is ticketed, naming the
    /// notice. Without it, any move is expected.
    #[arg(long = "max-factor", value_name = "F")]
    max_factor: Option<f64>,
}

/// `NAME=VALUE` of the `number`th `flag`, its name checked.
fn parse_matcher(flag: &str, number: usize, text: &str, key: &str) -> Result<Value> {
    let at = || format!("{flag} {number} ({text:?})");
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| anyhow!("{}: expected NAME=VALUE, e.g. tenant=acme", at()))?;
    if LabelName::parse(name).is_none() {
        let names: Vec<&str> = LabelName::ALL.iter().map(|name| name.as_str()).collect();
        bail!(
            "{}: {name:?} is not a label a notice matches (expected one of {})",
            at(),
            names.join(", ")
        );
    }
    if value.is_empty() {
        bail!("{}: the value is empty", at());
    }
    Ok(json!({ "name": name, key: value }))
}

impl CreateFlags {
    /// The body of `POST /v1/notices`.
    fn to_body(&self) -> Result<Value> {
        if self.matches.is_empty() && self.regexes.is_empty() {
            bail!("--match: say what the change touches (e.g. --match tenant=acme)");
        }
        let mut matchers = Vec::new();
        for (index, text) in self.matches.iter().enumerate() {
            matchers.push(parse_matcher("--match", index + 1, text, "value")?);
        }
        for (index, text) in self.regexes.iter().enumerate() {
            matchers.push(parse_matcher("--match-regex", index + 1, text, "regex")?);
        }
        let author = match &self.author {
            Some(author) => author.clone(),
            None => format!("human:{}", default_actor(None)),
        };
        let mut body = json!({
            "matchers": matchers,
            "reason": self.reason,
            "author": author,
        });
        if self.from != "now" {
            let starts =
                parse_rfc3339_ms(&self.from).map_err(|error| anyhow!("--from: {error}"))?;
            body["starts_ms"] = starts.into();
        }
        match (&self.duration, &self.until) {
            (Some(duration), _) => {
                let ms = parse_duration_ms(duration).map_err(|error| anyhow!("--for: {error}"))?;
                body["duration_ms"] = ms.into();
            }
            (None, Some(until)) => {
                let ends = parse_rfc3339_ms(until).map_err(|error| anyhow!("--until: {error}"))?;
                body["ends_ms"] = ends.into();
            }
            (None, None) => bail!("--for or --until: how long is the change expected?"),
        }
        if let Some(factor) = self.max_factor {
            body["max_factor"] = factor.into();
        }
        Ok(body)
    }

    /// The flag behind a field the harness refused (`matchers[1].regex`
    /// → `--match 2 ("…")` or `--match-regex 1 ("…")`).
    fn flag_of(&self, field: &str) -> Option<String> {
        if let Some(rest) = field.strip_prefix("matchers[") {
            let index: usize = rest.split(']').next()?.parse().ok()?;
            return Some(match self.matches.get(index) {
                Some(text) => format!("--match {} ({text:?})", index + 1),
                None => {
                    let index = index - self.matches.len();
                    let text = self.regexes.get(index)?;
                    format!("--match-regex {} ({text:?})", index + 1)
                }
            });
        }
        let flag = match field {
            "matchers" => "--match",
            "starts_ms" => "--from",
            "ends_ms" if self.until.is_some() => "--until",
            "ends_ms" | "duration_ms" => "--for",
            "reason" => "--reason",
            "author" => "--author",
            "max_factor" => "--max-factor",
            _ => return None,
        };
        Some(flag.to_owned())
    }
}

/// `N-0001  active   2026-… → 2026-…  deploy:ci  tenant=acme ×10  held back 1  reason`.
fn notice_line(notice: &Value) -> String {
    let text = |key: &str| notice[key].as_str().unwrap_or("?").to_owned();
    let time = |key: &str| {
        notice[key]
            .as_u64()
            .map_or_else(|| "?".into(), format_time_ms)
    };
    let matchers: Vec<String> = notice["matchers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| match (m["value"].as_str(), m["regex"].as_str()) {
            (Some(value), _) => format!("{}={value}", m["name"].as_str().unwrap_or("?")),
            (None, Some(regex)) => format!("{}=~{regex}", m["name"].as_str().unwrap_or("?")),
            (None, None) => "?".into(),
        })
        .collect();
    let factor = notice["max_factor"]
        .as_f64()
        .map_or_else(String::new, |f| format!(" ×{f}"));
    let reason: String = text("reason").chars().take(60).collect();
    format!(
        "{:<7} {:<8} {} → {}  {}  {}{factor}  held back {}  {reason}",
        text("id"),
        text("state"),
        time("starts_ms"),
        time("ends_ms"),
        text("author"),
        matchers.join(","),
        notice["suppressed"].as_u64().unwrap_or(0),
    )
}

/// Announces a notice from flags; a refusal names the flag behind the
/// field.
fn create(harness: &HarnessApi, flags: &CreateFlags) -> Result<Value> {
    let request: NoticeRequest = serde_json::from_value(flags.to_body()?)?;
    harness.run_flags(
        harness.client().create_notice(&request),
        |field| flags.flag_of(field),
        |message| message,
    )
}

pub fn notice(args: NoticeArgs) -> Result<()> {
    let harness = args.flags.api()?;
    let client = harness.client();
    let answer = match &args.command {
        NoticeCommand::Create(flags) => create(&harness, flags)?,
        NoticeCommand::List { state } => harness.run(client.list_notices(Some(state)))?,
        NoticeCommand::Show { id } => harness.run(client.get_notice(id))?,
        NoticeCommand::Expire { id, reason, actor } => {
            let decision = decision(actor.clone(), Some(reason.clone()));
            harness.run(client.expire_notice(id, &decision))?
        }
    };
    if args.flags.json {
        return print_json(&answer);
    }
    match &args.command {
        NoticeCommand::Create(_) | NoticeCommand::Expire { .. } => {
            println!("{}", notice_line(&answer["notice"]));
        }
        NoticeCommand::List { .. } => {
            for notice in answer["notices"].as_array().into_iter().flatten() {
                println!("{}", notice_line(notice));
            }
        }
        NoticeCommand::Show { .. } => {
            print_json(&answer["notice"])?;
            print_history(&answer["history"]);
        }
    }
    Ok(())
}
