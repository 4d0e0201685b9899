//! Access control for the harness API: bearer tokens with scopes, as the
//! service's (docs/adr/0004-access-control.md), for the harness's callers.
//!
//! Tokens come from `floodgate harness --tokens-file FILE`: the service's
//! format, one `SCOPE NAME TOKEN` per line, `#` comments, with the
//! harness's scopes:
//!
//! | scope | may |
//! |---|---|
//! | `read` | every `GET` of the table below (health, SLOs, invariants, anomalies, tickets, criteria, ledger, proposals, pipeline, observe, notices) |
//! | `operate` | `read`, and the agent calls: claim, renew, release, comment, escalate, propose |
//! | `admin` | everything: approve / reject / revert proposals, pause / resume, cancel tickets, any route not in the table |
//! | `intake` | `POST /v1/tickets`, `POST /v1/alertmanager`, `POST /v1/notices`, `POST /v1/notices/{id}/expire` (filing and announcing only: no reading) |
//!
//! `admin ⊇ operate ⊇ read`; `intake` is separate (an Alertmanager's token
//! cannot read the queue; an agent's cannot file), and `admin` includes it.
//!
//! [`layer`] wraps the whole router (a tower layer), and [`needed`] is the
//! one table of what each call needs: a method and path it does not list
//! needs `admin`, so a route added later is closed until it gets a line.
//! A missing or unknown token is answered 401, an insufficient scope 403,
//! both with the contract's error body. An accepted token's [`Caller`] is
//! put into the request's extensions.
//!
//! Without tokens the API is open and `floodgate harness` refuses a
//! non-loopback `--http-addr`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use std::fmt;
use std::sync::Arc;

/// Tokens one harness accepts (per operator, agent or alert source).
pub const MAX_TOKENS: usize = 1024;
/// Bytes in a token name.
pub const MAX_TOKEN_NAME_BYTES: usize = 64;
/// The shortest token accepted (16 characters of the alphabet below carry
/// at least 96 bits when generated at random).
pub const MIN_TOKEN_BYTES: usize = 16;
/// The longest token, configured or presented; comparisons always run over
/// this many bytes.
pub const MAX_TOKEN_BYTES: usize = 256;
/// Lines in a tokens file (comments included).
pub const MAX_TOKEN_FILE_LINES: usize = 10_000;

/// What a harness token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Read,
    Operate,
    Admin,
    Intake,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Operate, Scope::Admin, Scope::Intake];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operate => "operate",
            Scope::Admin => "admin",
            Scope::Intake => "intake",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == text)
    }

    /// Whether a token of this scope may do what `needed` requires.
    pub const fn grants(self, needed: Scope) -> bool {
        matches!(
            (self, needed),
            (Scope::Admin, _)
                | (Scope::Operate, Scope::Operate | Scope::Read)
                | (Scope::Read, Scope::Read)
                | (Scope::Intake, Scope::Intake)
        )
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scope table: method, path pattern (`*` is one path segment), scope.
/// `GET` lines cover `HEAD` too. Anything else needs `admin`.
pub const TABLE: &[(&str, &str, Scope)] = &[
    ("GET", "/v1/health", Scope::Read),
    ("GET", "/v1/slos", Scope::Read),
    ("GET", "/v1/invariants", Scope::Read),
    ("GET", "/v1/anomalies", Scope::Read),
    ("GET", "/v1/tickets", Scope::Read),
    ("GET", "/v1/tickets/*", Scope::Read),
    ("GET", "/v1/tickets/*/criteria", Scope::Read),
    ("GET", "/v1/tickets/*/proposals", Scope::Read),
    ("GET", "/v1/ledger", Scope::Read),
    ("GET", "/v1/proposals/*", Scope::Read),
    ("GET", "/v1/actions", Scope::Read),
    ("GET", "/v1/pipeline", Scope::Read),
    ("GET", "/v1/observe/series", Scope::Read),
    ("GET", "/v1/observe/state", Scope::Read),
    ("GET", "/v1/evidence", Scope::Read),
    ("GET", "/v1/incidents", Scope::Read),
    ("GET", "/v1/observe/events", Scope::Read),
    ("GET", "/v1/trajectories", Scope::Read),
    ("GET", "/v1/trajectories/*", Scope::Read),
    ("GET", "/v1/reflection", Scope::Read),
    ("GET", "/v1/notices", Scope::Read),
    ("GET", "/v1/notices/*", Scope::Read),
    ("POST", "/v1/agent/claim", Scope::Operate),
    ("POST", "/v1/tickets/*/renew", Scope::Operate),
    ("POST", "/v1/tickets/*/release", Scope::Operate),
    ("POST", "/v1/tickets/*/comment", Scope::Operate),
    ("POST", "/v1/tickets/*/escalate", Scope::Operate),
    ("POST", "/v1/tickets/*/proposals", Scope::Operate),
    ("POST", "/v1/tickets/*/questions", Scope::Operate),
    ("POST", "/v1/tickets/*/steps", Scope::Operate),
    ("POST", "/v1/tickets/*/approve", Scope::Admin),
    ("POST", "/v1/tickets/*/reject", Scope::Admin),
    ("POST", "/v1/proposals/*/approve", Scope::Admin),
    ("POST", "/v1/proposals/*/reject", Scope::Admin),
    ("POST", "/v1/proposals/*/revert", Scope::Admin),
    ("POST", "/v1/pause", Scope::Admin),
    ("POST", "/v1/reflect", Scope::Admin),
    ("POST", "/v1/resume", Scope::Admin),
    ("POST", "/v1/tickets/*/cancel", Scope::Admin),
    ("POST", "/v1/tickets/*/link", Scope::Operate),
    // MCP over streamable HTTP (mounted by `floodgate harness`): its tools
    // are the agent interface, so the agent's scope.
    ("POST", "/mcp", Scope::Operate),
    ("GET", "/mcp", Scope::Operate),
    ("DELETE", "/mcp", Scope::Operate),
    ("POST", "/v1/tickets", Scope::Intake),
    ("POST", "/v1/alertmanager", Scope::Intake),
    // Expected-change notices are announced by whoever files tickets for
    // humans and deploy systems (ADR 0011): they change what pages.
    ("POST", "/v1/notices", Scope::Intake),
    ("POST", "/v1/notices/*/expire", Scope::Intake),
];

fn matches_pattern(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some("*"), Some(segment)) if !segment.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// What a request for `method path` needs: its line in [`TABLE`], else
/// `admin`.
pub fn needed(method: &Method, path: &str) -> Scope {
    let method = if *method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    TABLE
        .iter()
        .find(|(m, pattern, _)| *m == method && matches_pattern(pattern, path))
        .map_or(Scope::Admin, |(_, _, scope)| *scope)
}

/// Why a tokens file was refused: the file, the 1-based line, the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct TokensError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// One configured token.
#[derive(Clone)]
pub struct Token {
    pub scope: Scope,
    pub name: String,
    secret: Vec<u8>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("scope", &self.scope)
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The tokens a harness accepts; empty means access control is off.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<Token>,
}

fn valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@')
}

/// RFC 6750's `b64token` alphabet, as the service's tokens.
fn valid_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

impl Tokens {
    /// Parses a tokens file: one `SCOPE NAME TOKEN` per line; blank lines
    /// and `#` comments ignored. Errors name the file and line.
    pub fn parse_file(file: &str, text: &str) -> Result<Tokens, TokensError> {
        let mut tokens = Tokens::default();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let error = |message: String| TokensError {
                file: file.to_owned(),
                line: number,
                message,
            };
            if number > MAX_TOKEN_FILE_LINES {
                return Err(error(format!("more than {MAX_TOKEN_FILE_LINES} lines")));
            }
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [scope, name, secret] = fields[..] else {
                return Err(error(format!(
                    "expected `SCOPE NAME TOKEN`, found {} field(s)",
                    fields.len()
                )));
            };
            tokens.add(scope, name, secret).map_err(error)?;
        }
        Ok(tokens)
    }

    fn add(&mut self, scope: &str, name: &str, secret: &str) -> Result<(), String> {
        let scope = Scope::parse(scope).ok_or_else(|| {
            format!("unknown scope \"{scope}\" (expected one of read, operate, admin, intake)")
        })?;
        if name.is_empty()
            || name.len() > MAX_TOKEN_NAME_BYTES
            || !name.chars().all(valid_name_char)
        {
            return Err(format!(
                "token name \"{name}\": 1 to {MAX_TOKEN_NAME_BYTES} characters of A-Z a-z 0-9 - _ . @"
            ));
        }
        if secret.len() < MIN_TOKEN_BYTES || secret.len() > MAX_TOKEN_BYTES {
            return Err(format!(
                "token of {name}: {} characters; must be {MIN_TOKEN_BYTES} to {MAX_TOKEN_BYTES}",
                secret.len()
            ));
        }
        if !secret.bytes().all(valid_token_byte) {
            return Err(format!(
                "token of {name}: only A-Z a-z 0-9 - . _ ~ + / = are allowed"
            ));
        }
        if self.tokens.len() >= MAX_TOKENS {
            return Err(format!("more than {MAX_TOKENS} tokens"));
        }
        if self.tokens.iter().any(|other| other.name == name) {
            return Err(format!("duplicate token name \"{name}\""));
        }
        if self
            .tokens
            .iter()
            .any(|other| other.secret == secret.as_bytes())
        {
            return Err(format!("token of {name} is the same as another token's"));
        }
        self.tokens.push(Token {
            scope,
            name: name.to_owned(),
            secret: secret.as_bytes().to_vec(),
        });
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The names and scopes (never the secrets).
    pub fn names(&self) -> impl Iterator<Item = (&str, Scope)> {
        self.tokens
            .iter()
            .map(|token| (token.name.as_str(), token.scope))
    }

    /// The token equal to `presented`, compared in constant time against
    /// every configured token.
    pub fn authenticate(&self, presented: &[u8]) -> Option<&Token> {
        if presented.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let mut found = None;
        for token in &self.tokens {
            if constant_time_eq(&token.secret, presented) {
                found = Some(token);
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = (a.len() ^ b.len()) as u64;
    for index in 0..MAX_TOKEN_BYTES {
        let x = a.get(index).copied().unwrap_or(0);
        let y = b.get(index).copied().unwrap_or(0);
        difference |= u64::from(x ^ y);
    }
    std::hint::black_box(difference) == 0
}

/// Who made a request, put into its extensions by the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub scope: Scope,
}

fn refusal(status: StatusCode, kind: &str, field: &str, message: String, scope: Scope) -> Response {
    let body = serde_json::json!({
        "error": { "kind": kind, "field": field, "message": message },
    });
    let challenge = if status == StatusCode::FORBIDDEN {
        format!(
            "Bearer realm=\"floodgate-harness\", error=\"insufficient_scope\", scope=\"{scope}\""
        )
    } else {
        "Bearer realm=\"floodgate-harness\"".to_owned()
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

async fn check(State(tokens): State<Arc<Tokens>>, mut request: Request, next: Next) -> Response {
    let scope = needed(request.method(), request.uri().path());
    // As the service's layer: two Authorization headers are refused, the
    // scheme matches in any case, spaces around the token are ignored.
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    let repeated = values.next().is_some();
    let presented = first
        .filter(|_| !repeated)
        .and_then(|value| value.as_bytes().split_at_checked(7))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"bearer "))
        .map(|(_, rest)| rest.trim_ascii());
    let Some(token) = presented.and_then(|presented| tokens.authenticate(presented)) else {
        let message = if repeated {
            "more than one Authorization header"
        } else if presented.is_some() {
            "unknown bearer token"
        } else {
            "this call needs an Authorization: Bearer TOKEN header"
        };
        return refusal(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authorization",
            message.to_owned(),
            scope,
        );
    };
    if !token.scope.grants(scope) {
        return refusal(
            StatusCode::FORBIDDEN,
            "forbidden",
            "scope",
            format!(
                "{} {} needs scope {scope}; token {} has scope {}",
                request.method(),
                request.uri().path(),
                token.name,
                token.scope
            ),
            scope,
        );
    }
    request.extensions_mut().insert(Caller {
        name: token.name.clone(),
        scope: token.scope,
    });
    next.run(request).await
}

/// Wraps `router` in the access check (a tower layer over every route,
/// the fallback included). With no tokens the router is returned as is.
pub fn layer(router: Router, tokens: Arc<Tokens>) -> Router {
    if tokens.is_empty() {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(tokens, check))
}

async fn check_as(State(caller): State<Arc<Caller>>, mut request: Request, next: Next) -> Response {
    let scope = needed(request.method(), request.uri().path());
    if !caller.scope.grants(scope) {
        return refusal(
            StatusCode::FORBIDDEN,
            "forbidden",
            "scope",
            format!(
                "{} {} needs scope {scope}; {} acts with scope {}",
                request.method(),
                request.uri().path(),
                caller.name,
                caller.scope
            ),
            scope,
        );
    }
    request.extensions_mut().insert((*caller).clone());
    next.run(request).await
}

/// Wraps `router` so that every call through it is judged as `caller`,
/// without a token: what a door already checked hands on (the harness's
/// `/mcp` needs `operate`, so the tools it serves act with `operate`, never
/// with more: announcing a notice through it is refused, as it is for an
/// `operate` token).
pub fn layer_as(router: Router, caller: Caller) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        Arc::new(caller),
        check_as,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_scopes_reads_agents_admins_and_intake() {
        for (method, path, scope) in [
            (Method::GET, "/v1/health", Scope::Read),
            (Method::HEAD, "/v1/tickets", Scope::Read),
            (Method::GET, "/v1/tickets/INF-0001", Scope::Read),
            (Method::GET, "/v1/tickets/INF-0001/criteria", Scope::Read),
            (Method::POST, "/v1/tickets/INF-0001/comment", Scope::Operate),
            (Method::POST, "/v1/agent/claim", Scope::Operate),
            (
                Method::POST,
                "/v1/tickets/INF-0001/proposals",
                Scope::Operate,
            ),
            (Method::POST, "/v1/proposals/P-1/approve", Scope::Admin),
            (Method::POST, "/v1/proposals/P-1/revert", Scope::Admin),
            (Method::POST, "/v1/pause", Scope::Admin),
            (Method::POST, "/v1/tickets/INF-0001/cancel", Scope::Admin),
            (Method::POST, "/v1/tickets", Scope::Intake),
            (Method::POST, "/v1/alertmanager", Scope::Intake),
            (Method::GET, "/v1/notices", Scope::Read),
            (Method::GET, "/v1/notices/N-0001", Scope::Read),
            (Method::POST, "/v1/notices", Scope::Intake),
            (Method::POST, "/v1/notices/N-0001/expire", Scope::Intake),
            // Not in the table: admin only.
            (Method::POST, "/v1/notices/N-0001", Scope::Admin),
            (Method::GET, "/v1/secret", Scope::Admin),
            (Method::DELETE, "/v1/tickets/INF-0001", Scope::Admin),
            (Method::POST, "/v1/tickets/INF-0001/resolve", Scope::Admin),
            (Method::GET, "/v1/tickets//criteria", Scope::Admin),
            (Method::GET, "/v1/tickets/INF-0001/criteria/x", Scope::Admin),
        ] {
            assert_eq!(needed(&method, path), scope, "{method} {path}");
        }
    }

    #[test]
    fn scopes_nest_and_intake_is_separate() {
        use Scope::*;
        for (holder, needed, granted) in [
            (Admin, Intake, true),
            (Admin, Admin, true),
            (Operate, Read, true),
            (Operate, Admin, false),
            (Operate, Intake, false),
            (Read, Operate, false),
            (Intake, Read, false),
            (Intake, Intake, true),
        ] {
            assert_eq!(holder.grants(needed), granted, "{holder} for {needed}");
        }
    }

    #[test]
    fn tokens_files_parse_and_errors_name_the_line() {
        let a = "a".repeat(20);
        let b = "b".repeat(20);
        let tokens = Tokens::parse_file(
            "tokens.txt",
            &format!("# who\nintake alertmanager {a}\n\nadmin ops {b} # on call\n"),
        )
        .expect("valid");
        assert_eq!(
            tokens.names().collect::<Vec<_>>(),
            [("alertmanager", Scope::Intake), ("ops", Scope::Admin)]
        );
        assert_eq!(
            tokens.authenticate(a.as_bytes()).map(|t| t.name.as_str()),
            Some("alertmanager")
        );
        assert!(tokens.authenticate(&a.as_bytes()[1..]).is_none());
        for (text, expected) in [
            (
                format!("check x {a}"),
                "tokens.txt:1: unknown scope \"check\"",
            ),
            (
                "read x short".to_owned(),
                "tokens.txt:1: token of x: 5 characters",
            ),
            (
                format!("read x {a}\nread x {b}"),
                "tokens.txt:2: duplicate token name",
            ),
            (
                format!("read x {a}\nread y {a}"),
                "tokens.txt:2: token of y is the same",
            ),
            (
                format!("\nread {a}"),
                "tokens.txt:2: expected `SCOPE NAME TOKEN`",
            ),
        ] {
            let error = Tokens::parse_file("tokens.txt", &text).expect_err(&text);
            assert!(error.to_string().starts_with(expected), "{error}");
        }
    }
}
