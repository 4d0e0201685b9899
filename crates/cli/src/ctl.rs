//! `floodgate ctl`: a human's client of a running service, through the
//! contract's typed client ([`ServiceApi`]) over [`HttpTransport`] — the
//! same calls the harness and agents make.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use floodgate_contract::actions::{ActionInfo, ActionRequest, ActionResult};
use floodgate_contract::client::{ClientError, EventQuery, HttpTransport, ServiceApi};
use floodgate_contract::events::{Event, EventPage};
use floodgate_contract::state::{ConfigApplyRequest, ConfigVersionPage, ConfigView, State};
use floodgate_contract::time::rfc3339_millis;
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest one call may take before `ctl` gives up (a long poll's wait
/// comes on top).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one `events --follow` request waits for new events.
const FOLLOW_WAIT_MS: u64 = 10_000;
/// Pause after an empty page when following, in case a service answers
/// before its wait is over (so the loop never spins).
const FOLLOW_IDLE: Duration = Duration::from_millis(200);
/// Bytes of a config file `ctl config diff|apply` reads (the service's own
/// request bound is smaller).
const MAX_CONFIG_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Levels of a dotted `--param` key.
const MAX_PARAM_DEPTH: usize = 16;

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The service's HTTP API.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The environment variable holding the bearer token (unset or empty:
    /// no token).
    #[arg(
        long,
        global = true,
        default_value = "FLOODGATE_TOKEN",
        value_name = "VAR"
    )]
    token_env: String,
    /// Print the service's raw JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// Everything the service knows (GET /v1/state).
    State,
    /// The action catalog (GET /v1/actions).
    Actions,
    /// Run an action (POST /v1/actions/{ACTION}).
    Run(RunArgs),
    /// Events, paged or followed (GET /v1/events).
    Events(EventsArgs),
    /// The config: show, versions, diff, apply, rollback.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Args)]
struct Request {
    /// Preview only: report what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Why (recorded in the event and the config history).
    #[arg(long)]
    reason: Option<String>,
    /// Who asks (default: the token's name).
    #[arg(long)]
    actor: Option<String>,
    /// Only if the config is still at this version (`ctl state` shows it):
    /// a config that moved is refused (409 config_moved), not overwritten.
    #[arg(long, value_name = "VERSION")]
    expect_version: Option<u64>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The action's name (see `floodgate ctl actions`).
    action: String,
    /// A parameter: the value parses as JSON when it can, else it is a
    /// string; dots in the key nest (`limit.domain=api`). Repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Parameters as a JSON object; `--param`s are applied on top.
    #[arg(long, value_name = "JSON")]
    params_json: Option<String>,
    #[command(flatten)]
    request: Request,
}

#[derive(Debug, Args)]
struct EventsArgs {
    /// Only events after this sequence number.
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// Only events of this type (repeatable; see docs/catalog/events.md).
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// At most this many per page.
    #[arg(long)]
    limit: Option<u64>,
    /// Keep printing new events until interrupted.
    #[arg(long)]
    follow: bool,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// The current config (YAML) with its version and hash.
    Show,
    /// The config history, newest first.
    Versions {
        /// Only versions older than this.
        #[arg(long)]
        before: Option<u64>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// What applying FILE would change (a dry-run apply).
    Diff {
        file: PathBuf,
        /// Why (recorded in the preview's event).
        #[arg(long)]
        reason: Option<String>,
        /// Who asks (default: the token's name).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Apply FILE as the whole config.
    Apply {
        file: PathBuf,
        #[command(flatten)]
        request: Request,
    },
    /// Make VERSION current again (as a new version).
    Rollback {
        version: u64,
        #[command(flatten)]
        request: Request,
    },
}

/// Runs `floodgate ctl …`.
pub fn run(args: CtlArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(ctl(args))
}

/// A contract error, shown with every field, and the raw body under
/// `--json`.
fn api_error(error: ClientError, json: bool) -> anyhow::Error {
    match error {
        ClientError::Api { status, error } => {
            if json {
                let _ = print_json(&error);
            }
            anyhow::anyhow!(
                "HTTP {status} {}\n  field: {}\n  message: {}",
                error.error.kind,
                error.error.field,
                error.error.message
            )
        }
        other => anyhow::anyhow!("{other}"),
    }
}

async fn call<T>(
    json: bool,
    future: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T> {
    call_within(CALL_TIMEOUT, json, future).await
}

async fn call_within<T>(
    timeout: Duration,
    json: bool,
    future: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result.map_err(|error| api_error(error, json)),
        Err(_) => bail!("no answer within {timeout:?}"),
    }
}

async fn ctl(args: CtlArgs) -> Result<()> {
    let token = std::env::var(&args.token_env)
        .ok()
        .filter(|token| !token.is_empty());
    let client = HttpTransport::new(args.url.clone(), token);
    let json = args.json;
    match args.command {
        CtlCommand::State => {
            let state = call(json, client.state()).await?;
            if json {
                print_json(&state)
            } else {
                out(&render_state(&state))
            }
        }
        CtlCommand::Actions => {
            let actions = call(json, client.actions()).await?;
            if json {
                print_json(&actions)
            } else {
                out(&render_actions(&actions))
            }
        }
        CtlCommand::Run(run) => {
            let params = build_params(run.params_json.as_deref(), &run.params)?;
            let request = ActionRequest {
                params,
                dry_run: run.request.dry_run,
                reason: run.request.reason.unwrap_or_default(),
                actor: run.request.actor.unwrap_or_default(),
                expect_config_version: run.request.expect_version,
            };
            let result = call(json, client.run_action(&run.action, &request)).await?;
            show_result(&result, json)
        }
        CtlCommand::Events(events) => follow_events(&client, events, json).await,
        CtlCommand::Config(command) => config(&client, command, json).await,
    }
}

async fn config(client: &HttpTransport, command: ConfigCommand, json: bool) -> Result<()> {
    match command {
        ConfigCommand::Show => {
            let view = call(json, client.config()).await?;
            if json {
                print_json(&view)
            } else {
                out(&render_config(&view))
            }
        }
        ConfigCommand::Versions { before, limit } => {
            let page = call(json, client.config_versions(before, limit)).await?;
            if json {
                print_json(&page)
            } else {
                out(&render_versions(&page))
            }
        }
        ConfigCommand::Diff {
            file,
            reason,
            actor,
        } => {
            let request = ConfigApplyRequest {
                yaml: Some(read_config(&file)?),
                patch: None,
                dry_run: true,
                reason: reason.unwrap_or_default(),
                actor: actor.unwrap_or_default(),
                expect_config_version: None,
            };
            let result = call(json, client.apply_config(&request)).await?;
            if json {
                print_json(&result)
            } else {
                out(&match result.diff.as_deref() {
                    Some(diff) if !diff.is_empty() => diff.to_string(),
                    _ => "no change\n".to_string(),
                })
            }
        }
        ConfigCommand::Apply { file, request } => {
            let request = ConfigApplyRequest {
                yaml: Some(read_config(&file)?),
                patch: None,
                dry_run: request.dry_run,
                reason: request.reason.unwrap_or_default(),
                actor: request.actor.unwrap_or_default(),
                expect_config_version: request.expect_version,
            };
            let result = call(json, client.apply_config(&request)).await?;
            show_result(&result, json)
        }
        ConfigCommand::Rollback { version, request } => {
            let request = ActionRequest {
                params: Value::Null,
                dry_run: request.dry_run,
                reason: request.reason.unwrap_or_default(),
                actor: request.actor.unwrap_or_default(),
                expect_config_version: request.expect_version,
            };
            let result = call(json, client.rollback_config(version, &request)).await?;
            show_result(&result, json)
        }
    }
}

fn read_config(path: &Path) -> Result<String> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .len();
    if size > MAX_CONFIG_FILE_BYTES {
        bail!(
            "{}: {size} bytes; at most {MAX_CONFIG_FILE_BYTES} are read",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

async fn follow_events(client: &HttpTransport, args: EventsArgs, json: bool) -> Result<()> {
    let mut query = EventQuery {
        after: args.after,
        types: args.types,
        limit: args.limit,
        wait_ms: None,
    };
    loop {
        let page = if args.follow {
            query.wait_ms = Some(FOLLOW_WAIT_MS);
            call_within(
                CALL_TIMEOUT + Duration::from_millis(FOLLOW_WAIT_MS),
                json,
                client.events(&query),
            )
            .await?
        } else {
            call(json, client.events(&query)).await?
        };
        if !args.follow && json {
            return print_json(&page);
        }
        if let Some(gap) = dropped(query.after, &page) {
            eprintln!("warning: {gap}");
        }
        for event in &page.events {
            if json {
                out(&format!("{}\n", serde_json::to_string(event)?))?;
            } else {
                out(&render_event(event))?;
            }
        }
        if !args.follow {
            if page.events.is_empty() {
                out("no events\n")?;
            } else if page.next_after < page.newest_seq {
                out(&format!(
                    "more: floodgate ctl events --after {}\n",
                    page.next_after
                ))?;
            }
            return Ok(());
        }
        if page.events.is_empty() {
            tokio::time::sleep(FOLLOW_IDLE).await;
        }
        query.after = page.next_after.max(query.after);
    }
}

/// Events between `after` and the oldest one still held were dropped from
/// the service's bounded ring.
fn dropped(after: u64, page: &EventPage) -> Option<String> {
    let first_wanted = after.saturating_add(1);
    (page.oldest_seq > first_wanted && page.newest_seq >= first_wanted).then(|| {
        format!(
            "events {first_wanted}..{} are no longer held by the service",
            page.oldest_seq - 1
        )
    })
}

// ---- parameters --------------------------------------------------------------

/// Builds an action's `params` from `--params-json` and `--param k=v`s.
pub fn build_params(json: Option<&str>, params: &[String]) -> Result<Value> {
    let mut root = match json {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text)
            .with_context(|| "--params-json: not JSON".to_string())?
        {
            Value::Object(map) => map,
            other => bail!("--params-json: must be a JSON object, not {other}"),
        },
    };
    for param in params {
        let Some((key, raw)) = param.split_once('=') else {
            bail!("--param {param}: expected KEY=VALUE");
        };
        let value =
            serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        let path: Vec<&str> = key.split('.').collect();
        if path.iter().any(|segment| segment.is_empty()) {
            bail!("--param {param}: empty key segment in \"{key}\"");
        }
        if path.len() > MAX_PARAM_DEPTH {
            bail!("--param {param}: more than {MAX_PARAM_DEPTH} levels");
        }
        insert(&mut root, &path, value).map_err(|at| {
            anyhow::anyhow!(
                "--param {param}: \"{at}\" is already set to a value that is not an object"
            )
        })?;
    }
    Ok(Value::Object(root))
}

/// Sets `path` in `map`, creating objects on the way; on a clash answers
/// the dotted prefix that is not an object.
fn insert(map: &mut Map<String, Value>, path: &[&str], value: Value) -> Result<(), String> {
    let mut current = map;
    for (depth, segment) in path.iter().enumerate() {
        if depth + 1 == path.len() {
            current.insert((*segment).to_string(), value);
            return Ok(());
        }
        let entry = current
            .entry((*segment).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        current = match entry {
            Value::Object(inner) => inner,
            _ => return Err(path[..=depth].join(".")),
        };
    }
    Ok(())
}

// ---- output -------------------------------------------------------------------

/// Writes to stdout; a closed stdout (`| head`) ends the command quietly
/// instead of panicking.
fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("stdout")
}

fn print_json(value: &impl Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    out(&text)
}

fn show_result(result: &ActionResult, json: bool) -> Result<()> {
    if json {
        print_json(result)
    } else {
        out(&render_result(result))
    }
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn render_result(result: &ActionResult) -> String {
    let mut text = String::new();
    let outcome = if result.dry_run {
        "dry run: would change"
    } else if result.applied {
        "applied"
    } else {
        "no change"
    };
    text.push_str(&format!("{} {outcome}", result.action));
    if let Some(version) = result.config_version {
        text.push_str(&format!(" (config version {version})"));
    }
    text.push_str(&format!(" [event {}]\n", result.event_seq));
    for change in &result.changes {
        text.push_str(&format!(
            "  {}: {} -> {}\n",
            change.path,
            compact(&change.before),
            compact(&change.after)
        ));
    }
    if let Some(diff) = result.diff.as_deref().filter(|diff| !diff.is_empty()) {
        text.push('\n');
        text.push_str(diff);
        if !diff.ends_with('\n') {
            text.push('\n');
        }
    }
    if let Some(inverse) = &result.inverse {
        text.push_str(&format!(
            "undo: floodgate ctl run {} --params-json '{}'\n",
            inverse.action,
            compact(&inverse.params)
        ));
    }
    text
}

fn render_state(state: &State) -> String {
    let mut text = format!(
        "version {}  up {}s  access control {}  {}\n",
        state.version,
        state.uptime_seconds,
        if state.access_control { "on" } else { "off" },
        if state.drain.draining {
            "DRAINING"
        } else {
            "serving"
        }
    );
    text.push_str(&format!(
        "config  version {}  {}  domains {}\n",
        state.config.version,
        state.config.hash,
        state.config.domains.join(", ")
    ));
    let store = &state.store;
    text.push_str(&format!(
        "store   {} {}  keys {}/{} ({:.1}%)  evictions expired {} lru {}  on failure {}\n",
        store.backend,
        if store.healthy {
            "healthy"
        } else {
            "UNHEALTHY"
        },
        store.keys,
        store.capacity,
        store.used_ratio * 100.0,
        store.evictions.expired,
        store.evictions.lru,
        store.failure_policy.as_str()
    ));
    text.push_str(&format!(
        "events  {}..{} (ring of {})\n",
        state.events.oldest_seq, state.events.newest_seq, state.events.capacity
    ));
    if state.limits.is_empty() {
        text.push_str("no limits\n");
        return text;
    }
    let mut rows = vec![vec![
        "DOMAIN".to_string(),
        "LIMIT".to_string(),
        "ALGORITHM".to_string(),
        "RATE".to_string(),
        "BURST".to_string(),
        "SHADOW".to_string(),
        "HITS".to_string(),
        "OVER".to_string(),
        "HOTTEST".to_string(),
    ]];
    for limit in &state.limits {
        rows.push(vec![
            limit.domain.clone(),
            limit.name.clone(),
            limit.algorithm.clone(),
            format!("{}/{}", limit.requests_per_unit, limit.unit),
            limit.burst.to_string(),
            if limit.shadow { "yes" } else { "no" }.to_string(),
            limit.hits.to_string(),
            limit.over_limit.to_string(),
            limit
                .hottest
                .first()
                .map_or("-".to_string(), |key| format!("{} ({})", key.key, key.used)),
        ]);
    }
    text.push('\n');
    text.push_str(&table(&rows));
    text
}

fn render_actions(actions: &[ActionInfo]) -> String {
    let mut rows = vec![vec![
        "ACTION".to_string(),
        "RISK".to_string(),
        "UNDO".to_string(),
        "DESCRIPTION".to_string(),
    ]];
    for action in actions {
        rows.push(vec![
            action.name.clone(),
            serde_json::to_value(action.risk)
                .ok()
                .and_then(|risk| risk.as_str().map(str::to_string))
                .unwrap_or_default(),
            action.inverse.clone().unwrap_or_else(|| "-".to_string()),
            action.description.clone(),
        ]);
    }
    table(&rows)
}

fn render_config(view: &ConfigView) -> String {
    let mut text = format!("# version {}  {}\n", view.version, view.hash);
    text.push_str(&view.yaml);
    if !view.yaml.ends_with('\n') {
        text.push('\n');
    }
    text
}

fn render_versions(page: &ConfigVersionPage) -> String {
    let mut rows = vec![vec![
        "VERSION".to_string(),
        "TIME".to_string(),
        "ACTOR".to_string(),
        "VIA".to_string(),
        "HASH".to_string(),
        "REASON".to_string(),
    ]];
    for version in &page.versions {
        rows.push(vec![
            version.version.to_string(),
            rfc3339_millis(version.time_ms),
            version.actor.clone(),
            version.via.clone(),
            version.hash.chars().take(19).collect(),
            version.reason.clone(),
        ]);
    }
    let mut text = table(&rows);
    if let Some(before) = page.next_before {
        text.push_str(&format!(
            "more: floodgate ctl config versions --before {before}\n"
        ));
    }
    text
}

fn render_event(event: &Event) -> String {
    let value = serde_json::to_value(&event.body).unwrap_or(Value::Null);
    let kind = value["type"].as_str().unwrap_or("?");
    let mut line = format!(
        "{:>6}  {}  {:<22} {}",
        event.seq,
        rfc3339_millis(event.time_ms),
        kind,
        event.actor
    );
    if !event.reason.is_empty() {
        line.push_str(&format!(" ({})", event.reason));
    }
    if let Some(data) = value
        .get("data")
        .filter(|data| data.as_object().is_some_and(|map| !map.is_empty()))
    {
        line.push_str(&format!("  {}", compact(data)));
    }
    line.push('\n');
    line
}

/// Columns padded to their widest cell; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[column]));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(json: Option<&str>, list: &[&str]) -> Result<Value> {
        build_params(
            json,
            &list
                .iter()
                .map(|param| param.to_string())
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn params_parse_json_values_else_strings_and_nest_on_dots() {
        let value = params(
            None,
            &[
                "limit.domain=api",
                "limit.limit=per_tenant",
                "max_keys=5",
                "shadow=true",
                "name=5x",
                "empty=",
                "list=[1,2]",
                "text=\"quoted\"",
            ],
        )
        .expect("valid");
        assert_eq!(
            value,
            json!({
                "limit": {"domain": "api", "limit": "per_tenant"},
                "max_keys": 5,
                "shadow": true,
                "name": "5x",
                "empty": "",
                "list": [1, 2],
                "text": "quoted",
            })
        );
    }

    #[test]
    fn params_json_is_the_base_and_params_override() {
        let value = params(Some(r#"{"a": {"b": 1}, "c": 2}"#), &["a.d=x", "c=3"]).expect("valid");
        assert_eq!(value, json!({"a": {"b": 1, "d": "x"}, "c": 3}));
    }

    #[test]
    fn bad_params_are_named() {
        for (json, list, expected) in [
            (None, vec!["novalue"], "--param novalue: expected KEY=VALUE"),
            (None, vec!["a..b=1"], "empty key segment"),
            (None, vec!["a=1", "a.b=2"], "\"a\" is already set"),
            (Some("[1]"), vec![], "--params-json: must be a JSON object"),
            (Some("{"), vec![], "--params-json: not JSON"),
        ] {
            let error = params(json, &list).expect_err(expected);
            assert!(
                format!("{error:#}").contains(expected),
                "{error:#} lacks {expected}"
            );
        }
    }

    #[test]
    fn utc_formats_the_epoch_and_a_leap_day() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_709_210_096_789),
            "2024-02-29T12:34:56.789Z"
        );
        assert_eq!(
            rfc3339_millis(1_767_225_600_000),
            "2026-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn dropped_events_are_reported() {
        let page = |oldest, newest| EventPage {
            events: vec![],
            next_after: newest,
            oldest_seq: oldest,
            newest_seq: newest,
        };
        assert_eq!(dropped(0, &page(1, 5)), None);
        assert_eq!(
            dropped(0, &page(4, 9)).as_deref(),
            Some("events 1..3 are no longer held by the service")
        );
        assert_eq!(dropped(10, &page(4, 9)), None);
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["A".to_string(), "B".to_string(), "C".to_string()],
            vec!["long".to_string(), "x".to_string(), "tail".to_string()],
        ];
        assert_eq!(table(&rows), "A     B  C\nlong  x  tail\n");
    }
}
