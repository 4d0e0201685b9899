//! Access control for the HTTP API: bearer tokens with scopes
//! (docs/adr/0004-access-control.md).
//!
//! Tokens come from `--tokens-file FILE` (one `SCOPE NAME TOKEN` per line,
//! `#` comments) and/or `FLOODGATE_TOKENS` (`scope:name:token,...`). When
//! any is configured, every HTTP call needs `Authorization: Bearer TOKEN`
//! whose scope grants what the call needs ([`needed`]); a missing or unknown
//! token is answered 401, an insufficient scope 403, both with the
//! contract's error body, and each refusal is reported to a hook (the event
//! log records it as `access_denied`). Without tokens the API is open:
//! [`check_bind`] keeps it on loopback, and the open-mode guard
//! (`floodgate_edge::guard`, shared with the harness) refuses foreign Host
//! and Origin headers (403) and POSTs without a JSON content type (415),
//! each recorded as `request_refused`.
//!
//! The gRPC listener is Envoy's data plane and is never authenticated:
//! restrict it by binding.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use floodgate_contract::actions::{self, Risk};
use floodgate_contract::state::{ErrorBody, ErrorDetail};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use floodgate_contract::tokens::Presented;
pub use floodgate_contract::tokens::{
    ScopeSet, TokensError, MAX_TOKENS, MAX_TOKEN_BYTES, MAX_TOKEN_FILE_LINES, MAX_TOKEN_NAME_BYTES,
    MIN_TOKEN_BYTES,
};

/// The tokens a service accepts ([`floodgate_contract::tokens`], with the
/// service's scopes).
pub type Tokens = floodgate_contract::tokens::Tokens<Scope>;
/// One configured token.
pub type Token = floodgate_contract::tokens::Token<Scope>;

/// Bytes of a refused request's path kept in its `access_denied` event.
pub const MAX_DENIED_PATH_BYTES: usize = 256;

/// What a token may do. `admin` ⊇ `operate` ⊇ `read`; `check` (the data
/// plane, `POST /v1/check`) is separate, and `admin` includes it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// State, events, metrics, health, config, the action catalog, the
    /// OpenAPI document.
    Read,
    /// `POST /v1/check`.
    Check,
    /// Read, and run low- and medium-risk actions.
    Operate,
    /// Everything: high-risk actions, config apply and rollback.
    Admin,
}

impl Scope {
    /// Every scope, in the order the docs list them.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Check, Scope::Operate, Scope::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Check => "check",
            Scope::Operate => "operate",
            Scope::Admin => "admin",
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
                | (Scope::Check, Scope::Check)
        )
    }

    /// The scope an action of this risk needs.
    pub const fn for_risk(risk: Risk) -> Scope {
        match risk {
            Risk::Low | Risk::Medium => Scope::Operate,
            Risk::High => Scope::Admin,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ScopeSet for Scope {
    const ALL: &'static [Scope] = &Scope::ALL;

    fn as_str(self) -> &'static str {
        Scope::as_str(self)
    }

    fn grants(self, needed: Scope) -> bool {
        Scope::grants(self, needed)
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed {
    /// A token granting this scope.
    Scope(Scope),
    /// Any valid token: the request goes on to a 404 (an unknown action).
    AnyToken,
}

impl Needed {
    pub const fn as_str(self) -> &'static str {
        match self {
            Needed::Scope(scope) => scope.as_str(),
            Needed::AnyToken => "any",
        }
    }
}

/// Paths every `read` token may `GET`.
pub const READ_PATHS: &[&str] = &[
    "/metrics",
    "/v1/health",
    "/v1/state",
    "/v1/events",
    "/v1/events/stream",
    "/v1/config",
    "/v1/config/versions",
    "/v1/actions",
    "/v1/traffic",
    "/v1/openapi.json",
];

/// Paths that need `admin` for `POST`.
pub const ADMIN_POST_PATHS: &[&str] = &["/v1/config", "/v1/config/rollback"];

/// What a request for `method path` needs. Requests this table does not
/// know need `admin`, so an endpoint added without a line here is closed
/// rather than open (the OpenAPI test checks every served route has one).
pub fn needed(method: &Method, path: &str) -> Needed {
    let read = *method == Method::GET || *method == Method::HEAD;
    if read && READ_PATHS.contains(&path) {
        return Needed::Scope(Scope::Read);
    }
    if *method == Method::POST {
        if path == "/v1/check" {
            return Needed::Scope(Scope::Check);
        }
        if ADMIN_POST_PATHS.contains(&path) {
            return Needed::Scope(Scope::Admin);
        }
        if let Some(raw) = path.strip_prefix("/v1/actions/") {
            // The router hands the handler the percent-decoded name, so
            // the scope must follow the decoded name too (`dr%61in` is
            // `drain`); a name that does not decode is refused as admin's.
            let Some(name) = percent_decode(raw) else {
                return Needed::Scope(Scope::Admin);
            };
            return match actions::find(&name) {
                Some(def) => Needed::Scope(Scope::for_risk(def.risk)),
                None => Needed::AnyToken,
            };
        }
    }
    Needed::Scope(Scope::Admin)
}

/// `%XX` escapes decoded, as the router's path extractor does; `None` when
/// an escape is malformed or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(byte);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Who made a request and with which scope, put into the request's
/// extensions by the access layer (next to [`crate::control::Actor`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub scope: Scope,
}

/// A refused request, as reported to the [`DeniedHook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub method: String,
    /// The path without its query, at most [`MAX_DENIED_PATH_BYTES`].
    pub path: String,
    /// 401 or 403.
    pub status: u16,
    /// The scope the request needed (`any` for any valid token).
    pub needed: String,
    /// The token's name for 403; `anonymous` for 401.
    pub actor: String,
}

/// Called once per refused request (the service records an
/// `access_denied` event).
pub type DeniedHook = Arc<dyn Fn(Denied) + Send + Sync>;

/// The access policy of a service: its tokens, or none (open, loopback
/// only, behind the open-mode guard).
#[derive(Debug, Clone, Default)]
pub struct Access {
    tokens: Tokens,
    open_mode: floodgate_edge::guard::OpenMode,
}

impl Access {
    /// No tokens: the HTTP API is open, and [`check_bind`] allows loopback
    /// addresses only.
    pub fn open() -> Access {
        Access::default()
    }

    pub fn with_tokens(tokens: Tokens) -> Access {
        Access {
            tokens,
            open_mode: Default::default(),
        }
    }

    /// The open-mode guard's policy (the names `--allowed-host` adds),
    /// applied when no tokens are configured.
    pub fn with_open_mode(mut self, open_mode: floodgate_edge::guard::OpenMode) -> Access {
        self.open_mode = open_mode;
        self
    }

    pub fn open_mode(&self) -> &floodgate_edge::guard::OpenMode {
        &self.open_mode
    }

    /// Whether tokens are required.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }
}

/// Whether a listener may bind `addr` under `access`: without tokens only
/// loopback addresses are allowed. `flag` names the option that chose the
/// address.
pub fn check_bind(access: &Access, flag: &str, addr: SocketAddr) -> Result<(), String> {
    if access.enabled() || addr.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "{flag} {addr}: refusing to bind a non-loopback address while access control is off; \
         configure tokens with --tokens-file FILE or FLOODGATE_TOKENS, or bind 127.0.0.1"
    ))
}

struct Layer {
    tokens: Tokens,
    on_denied: DeniedHook,
}

/// Wraps `router` in the access layer. Without tokens it is returned
/// unchanged.
pub fn layer(router: Router, access: Access, on_denied: DeniedHook) -> Router {
    if !access.enabled() {
        return router;
    }
    let state = Arc::new(Layer {
        tokens: access.tokens,
        on_denied,
    });
    router.layer(axum::middleware::from_fn_with_state(state, guard))
}

fn truncated(path: &str) -> String {
    floodgate_contract::text::cut(path, MAX_DENIED_PATH_BYTES).to_string()
}

async fn guard(State(layer): State<Arc<Layer>>, mut request: Request, next: Next) -> Response {
    let needed = needed(request.method(), request.uri().path());
    let presented = Presented::of(
        request
            .headers()
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes),
    );
    let token = match presented {
        Presented::Bearer(secret) => layer.tokens.authenticate(secret),
        Presented::Missing | Presented::Repeated => None,
    };
    let denial = match token {
        None => Some((
            StatusCode::UNAUTHORIZED,
            "anonymous".to_string(),
            ErrorDetail {
                kind: "unauthorized".to_string(),
                field: "authorization".to_string(),
                message: presented.refusal().to_string(),
            },
        )),
        Some(token) => match needed {
            Needed::Scope(scope) if !token.scope.grants(scope) => Some((
                StatusCode::FORBIDDEN,
                token.name.clone(),
                ErrorDetail {
                    kind: "forbidden".to_string(),
                    field: "scope".to_string(),
                    message: format!(
                        "{} {} needs scope {scope}; token {} has scope {}",
                        request.method(),
                        request.uri().path(),
                        token.name,
                        token.scope
                    ),
                },
            )),
            _ => None,
        },
    };
    if let Some((status, actor, detail)) = denial {
        (layer.on_denied)(Denied {
            method: request.method().as_str().to_string(),
            path: truncated(request.uri().path()),
            status: status.as_u16(),
            needed: needed.as_str().to_string(),
            actor,
        });
        let challenge = if status == StatusCode::FORBIDDEN {
            format!(
                "Bearer realm=\"floodgate\", error=\"insufficient_scope\", scope=\"{}\"",
                needed.as_str()
            )
        } else {
            "Bearer realm=\"floodgate\"".to_string()
        };
        let mut response = (status, Json(ErrorBody { error: detail })).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        return response;
    }
    if let Some(token) = token {
        // The control plane records this name as the actor of what the
        // request causes (a body's `actor` still wins).
        request
            .extensions_mut()
            .insert(crate::control::Actor(token.name.clone()));
        request.extensions_mut().insert(Caller {
            name: token.name.clone(),
            scope: token.scope,
        });
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn scopes_nest_and_check_is_separate() {
        use Scope::*;
        for (holder, needed, granted) in [
            (Admin, Admin, true),
            (Admin, Operate, true),
            (Admin, Read, true),
            (Admin, Check, true),
            (Operate, Admin, false),
            (Operate, Operate, true),
            (Operate, Read, true),
            (Operate, Check, false),
            (Read, Operate, false),
            (Read, Read, true),
            (Read, Check, false),
            (Check, Read, false),
            (Check, Check, true),
            (Check, Operate, false),
        ] {
            assert_eq!(holder.grants(needed), granted, "{holder} for {needed}");
        }
    }

    #[test]
    fn needed_follows_the_route_table_and_action_risk() {
        assert_eq!(
            needed(&Method::GET, "/v1/state"),
            Needed::Scope(Scope::Read)
        );
        assert_eq!(
            needed(&Method::POST, "/v1/check"),
            Needed::Scope(Scope::Check)
        );
        assert_eq!(
            needed(&Method::POST, "/v1/config"),
            Needed::Scope(Scope::Admin)
        );
        assert_eq!(
            needed(&Method::POST, "/v1/actions/set_shadow_mode"),
            Needed::Scope(Scope::Operate)
        );
        assert_eq!(
            needed(&Method::POST, "/v1/actions/drain"),
            Needed::Scope(Scope::Admin)
        );
        assert_eq!(
            needed(&Method::POST, "/v1/actions/no_such_action"),
            Needed::AnyToken
        );
        // Escaped names are scoped as the handler will see them.
        assert_eq!(
            needed(&Method::POST, "/v1/actions/dr%61in"),
            Needed::Scope(Scope::Admin)
        );
        assert_eq!(
            needed(&Method::POST, "/v1/actions/set%5Fshadow%5fmode"),
            Needed::Scope(Scope::Operate)
        );
        for malformed in ["drain%", "drain%6", "%zz", "%ff%fe"] {
            assert_eq!(
                needed(&Method::POST, &format!("/v1/actions/{malformed}")),
                Needed::Scope(Scope::Admin),
                "{malformed}"
            );
        }
        // Unknown routes and methods are closed, not open.
        assert_eq!(
            needed(&Method::DELETE, "/v1/state"),
            Needed::Scope(Scope::Admin)
        );
        assert_eq!(
            needed(&Method::GET, "/v1/unknown"),
            Needed::Scope(Scope::Admin)
        );
    }

    #[test]
    fn every_action_needs_operate_or_admin_by_risk() {
        for def in actions::CATALOG {
            let expected = match def.risk {
                Risk::High => Scope::Admin,
                Risk::Low | Risk::Medium => Scope::Operate,
            };
            assert_eq!(
                needed(&Method::POST, &format!("/v1/actions/{}", def.name)),
                Needed::Scope(expected),
                "{}",
                def.name
            );
        }
    }

    #[test]
    fn tokens_file_parses_with_comments_and_names_line_on_errors() {
        let text = format!("# operators\n\nread dash {A}\n  admin   ops@example  {B} extra\n");
        let error = Tokens::parse_file("tokens.txt", &text).expect_err("extra fields");
        assert_eq!(error.source_name, "tokens.txt");
        assert_eq!(error.line, 4);
        assert_eq!(
            error.to_string(),
            "tokens.txt:4: expected `SCOPE NAME TOKEN`, found 4 field(s)"
        );
        let text = format!("# operators\n\nread dash {A}\n  admin   ops@example  {B}  # on call\n");
        let tokens = Tokens::parse_file("tokens.txt", &text).expect("valid");
        assert_eq!(
            tokens.names().collect::<Vec<_>>(),
            vec![("dash", Scope::Read), ("ops@example", Scope::Admin)]
        );
    }

    #[test]
    fn bad_tokens_are_refused_with_the_reason() {
        for (line, expected) in [
            (format!("root x {A}"), "unknown scope \"root\""),
            (format!("read bad/name {A}"), "token name \"bad/name\""),
            ("read short abc".to_string(), "3 characters; must be 16"),
            (
                format!("read spaces {A}:x"),
                "only A-Z a-z 0-9 - . _ ~ + / = are allowed",
            ),
            (
                format!("read one {A}\nread one {B}"),
                "duplicate token name \"one\"",
            ),
            (
                format!("read one {A}\nadmin two {A}"),
                "the same as another token's",
            ),
            (
                format!("read long {}", "x".repeat(MAX_TOKEN_BYTES + 1)),
                "must be 16 to 256",
            ),
        ] {
            let error = Tokens::parse_file("t", &line).expect_err(&line);
            assert!(
                error.to_string().contains(expected),
                "{line}: {error} lacks {expected}"
            );
        }
    }

    #[test]
    fn env_form_parses_and_names_the_entry() {
        let tokens = Tokens::parse_env("FLOODGATE_TOKENS", &format!("read:a:{A}, admin:b:{B},"))
            .expect("ok");
        assert_eq!(tokens.len(), 2);
        let error = Tokens::parse_env("FLOODGATE_TOKENS", &format!("read:a:{A},admin:{B}"))
            .expect_err("two fields");
        assert_eq!(
            error.to_string(),
            "FLOODGATE_TOKENS:2: expected `scope:name:token`, found 2 field(s)"
        );
    }

    #[test]
    fn without_tokens_only_loopback_binds() {
        let open = Access::open();
        assert!(check_bind(
            &open,
            "--http-addr",
            "127.0.0.1:8080".parse().expect("addr")
        )
        .is_ok());
        assert!(check_bind(&open, "--http-addr", "[::1]:8080".parse().expect("addr")).is_ok());
        let error = check_bind(&open, "--http-addr", "0.0.0.0:8080".parse().expect("addr"))
            .expect_err("refused");
        assert!(
            error.starts_with("--http-addr 0.0.0.0:8080: refusing"),
            "{error}"
        );
        assert!(error.contains("--tokens-file"), "{error}");
        let secured =
            Access::with_tokens(Tokens::parse_env("E", &format!("read:a:{A}")).expect("ok"));
        assert!(check_bind(
            &secured,
            "--http-addr",
            "0.0.0.0:8080".parse().expect("addr")
        )
        .is_ok());
    }

    #[test]
    fn long_paths_are_cut_on_a_char_boundary() {
        let path = format!("/{}", "é".repeat(MAX_DENIED_PATH_BYTES));
        let cut = truncated(&path);
        assert!(cut.len() <= MAX_DENIED_PATH_BYTES);
        assert!(path.starts_with(&cut));
    }
}
