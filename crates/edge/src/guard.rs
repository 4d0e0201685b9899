//! The open-mode guard (docs/adr/0004-access-control.md): without tokens an
//! API is open to anything that can reach its loopback port, and a browser
//! on the same machine can reach it. A web page may send a "simple"
//! cross-site request (a `text/plain` or form POST, no preflight), and a
//! rebound DNS name can point a page's own origin at 127.0.0.1. So, in
//! open mode, every request is checked before it is routed:
//!
//! 1. **Host** (HTTP/1's header, HTTP/2's `:authority`) must name the
//!    address the request arrived on: `localhost` or the bound IP literal,
//!    with the bound port, or a name given with `--allowed-host` (a name
//!    matches any port; `name:port` only that port). Otherwise **403**,
//!    field `host` (defeats DNS rebinding: the page's Host is its own
//!    name).
//! 2. **Origin**, when present, must be `http://` or `https://` with an
//!    allowed host by the same rule. Otherwise (a foreign site, `null`)
//!    **403**, field `origin`.
//! 3. A **POST** must say `Content-Type: application/json` (the harness's
//!    ticket intake also takes `application/yaml`). Otherwise **415**,
//!    field `content-type`: neither is a type a page may send without a
//!    CORS preflight, which these APIs never grant.
//!
//! A request without Host (HTTP/1.0 tools) passes the first check:
//! browsers always send it. Requests that did not come through a socket
//! (no [`LocalAddr`]: the in-process transport) skip the first two.
//! Each refusal has the contract's error body and is reported to a hook
//! (the service records a `request_refused` event).

use crate::limits::{MAX_ALLOWED_HOSTS, MAX_REFUSED_VALUE_BYTES};
use crate::server::LocalAddr;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use http::{header, HeaderMap, Method, StatusCode, Uri};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A host name the guard accepts besides the bound address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    /// Lower case, without a trailing dot; IPv6 literals in brackets.
    name: String,
    /// `None`: any port.
    port: Option<u16>,
}

/// The open-mode policy: the names `--allowed-host` adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenMode {
    allowed: Vec<AllowedHost>,
}

/// A refused request: status, error kind, the field named, the message,
/// and the offending value (cut to [`MAX_REFUSED_VALUE_BYTES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub kind: &'static str,
    pub field: &'static str,
    pub message: String,
    pub value: String,
}

/// A refusal as the hook sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub method: String,
    /// The path without its query, cut to [`MAX_REFUSED_VALUE_BYTES`].
    pub path: String,
    pub refusal: Refusal,
}

/// Called once per refused request.
pub type RefusedHook = Arc<dyn Fn(&Refused) + Send + Sync>;

pub(crate) fn cut(text: &str) -> String {
    floodgate_contract::text::cut(text, MAX_REFUSED_VALUE_BYTES).to_owned()
}

/// `host[:port]` split, the host lower-cased without a trailing dot;
/// `None` when it is not a plausible authority.
fn split_authority(text: &str) -> Option<(String, Option<u16>)> {
    if text.is_empty() || text.contains(['/', '@', ' ', '?', '#']) {
        return None;
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (literal, after) = rest.split_once(']')?;
        literal.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?.parse().ok()?),
        };
        (format!("[{}]", literal.to_ascii_lowercase()), port)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port.parse().ok()?)),
            None => (text.to_string(), None),
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'))
    {
        return None;
    }
    Some((host, port))
}

fn ip_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

impl OpenMode {
    /// The policy with `names` (`--allowed-host`, each `name` or
    /// `name:port`) allowed besides the bound address; an invalid name is
    /// refused naming it.
    pub fn new(names: &[String]) -> Result<OpenMode, String> {
        if names.len() > MAX_ALLOWED_HOSTS {
            return Err(format!(
                "--allowed-host: at most {MAX_ALLOWED_HOSTS} names, got {}",
                names.len()
            ));
        }
        let allowed = names
            .iter()
            .map(|name| {
                split_authority(name)
                    .map(|(name, port)| AllowedHost { name, port })
                    .ok_or_else(|| {
                        format!("--allowed-host {name:?}: expected a host name or address, optionally with :PORT")
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(OpenMode { allowed })
    }

    /// Whether `host[:port]` (`default_port` when it has none) names the
    /// address `local`.
    fn allows(&self, authority: &str, default_port: u16, local: SocketAddr) -> bool {
        let Some((host, port)) = split_authority(authority) else {
            return false;
        };
        let port = port.unwrap_or(default_port);
        let bound = host == "localhost" || host == ip_literal(local.ip());
        (bound && port == local.port())
            || self
                .allowed
                .iter()
                .any(|allowed| allowed.name == host && allowed.port.is_none_or(|p| p == port))
    }

    /// Checks one request (see the module docs). `local` is the address it
    /// arrived on, `None` for a request that came through no socket.
    pub fn check(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        local: Option<SocketAddr>,
    ) -> Result<(), Refusal> {
        if let Some(local) = local {
            let host = match headers.get(header::HOST) {
                Some(value) => Some(value.to_str().unwrap_or("\u{fffd}")),
                None => uri.authority().map(|authority| authority.as_str()),
            };
            if let Some(host) = host {
                if !self.allows(host, 80, local) {
                    return Err(Refusal {
                        status: StatusCode::FORBIDDEN,
                        kind: "forbidden",
                        field: "host",
                        message: format!(
                            "Host {:?} is not this server's address ({local}, localhost:{}) \
                             nor an --allowed-host name; refused while access control is off",
                            cut(host),
                            local.port()
                        ),
                        value: cut(host),
                    });
                }
            }
            if let Some(origin) = headers.get(header::ORIGIN) {
                let text = origin.to_str().unwrap_or("\u{fffd}");
                let allowed = if let Some(authority) = text.strip_prefix("http://") {
                    self.allows(authority, 80, local)
                } else if let Some(authority) = text.strip_prefix("https://") {
                    self.allows(authority, 443, local)
                } else {
                    false
                };
                if !allowed {
                    return Err(Refusal {
                        status: StatusCode::FORBIDDEN,
                        kind: "forbidden",
                        field: "origin",
                        message: format!(
                            "Origin {:?} is not this server's origin; cross-site requests are \
                             refused while access control is off",
                            cut(text)
                        ),
                        value: cut(text),
                    });
                }
            }
        }
        if *method == Method::POST {
            let content_type = headers.get(header::CONTENT_TYPE);
            let essence = content_type
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(';').next())
                .map(|essence| essence.trim().to_ascii_lowercase());
            if !matches!(
                essence.as_deref(),
                Some("application/json" | "application/yaml")
            ) {
                let shown = content_type
                    .map(|value| cut(value.to_str().unwrap_or("\u{fffd}")))
                    .unwrap_or_default();
                return Err(Refusal {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    kind: "unsupported_media_type",
                    field: "content-type",
                    message: if content_type.is_some() {
                        format!("Content-Type {shown:?}: a POST must be application/json")
                    } else {
                        "missing Content-Type: a POST must be application/json".to_string()
                    },
                    value: shown,
                });
            }
        }
        Ok(())
    }
}

/// Logs a refusal as a warning (`server` names who refused it).
pub fn log(server: &str, refused: &Refused) {
    tracing::warn!(
        server,
        method = %refused.method,
        path = %refused.path,
        status = refused.refusal.status.as_u16(),
        field = refused.refusal.field,
        value = %refused.refusal.value,
        "request refused in open mode"
    );
}

struct Guard {
    policy: OpenMode,
    on_refused: RefusedHook,
}

/// Wraps `router` in the open-mode guard. Use it only when no tokens are
/// configured (with tokens, a page cannot send the `Authorization` header
/// cross-site without a preflight).
pub fn layer(router: Router, policy: OpenMode, on_refused: RefusedHook) -> Router {
    let guard = Arc::new(Guard { policy, on_refused });
    router.layer(axum::middleware::from_fn_with_state(guard, check))
}

async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let local = request
        .extensions()
        .get::<LocalAddr>()
        .map(|LocalAddr(addr)| *addr);
    match guard
        .policy
        .check(request.method(), request.uri(), request.headers(), local)
    {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            let refused = Refused {
                method: request.method().as_str().to_string(),
                path: cut(request.uri().path()),
                refusal,
            };
            (guard.on_refused)(&refused);
            let Refusal {
                status,
                kind,
                field,
                message,
                ..
            } = refused.refusal;
            crate::refusal::response(status, kind, field, &message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn local() -> Option<SocketAddr> {
        Some("127.0.0.1:8080".parse().expect("addr"))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    fn field(result: Result<(), Refusal>) -> Option<&'static str> {
        result.err().map(|refusal| refusal.field)
    }

    #[test]
    fn the_bound_address_and_localhost_pass_with_the_bound_port() {
        let open = OpenMode::default();
        let get = Method::GET;
        let uri = Uri::from_static("/v1/state");
        for host in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST.:8080"] {
            assert_eq!(
                open.check(&get, &uri, &headers(&[("host", host)]), local()),
                Ok(()),
                "{host}"
            );
        }
        for host in [
            "127.0.0.1:9090",
            "evil.example:8080",
            "evil.example",
            "127.0.0.2:8080",
            "a@127.0.0.1:8080",
            "",
        ] {
            assert_eq!(
                field(open.check(&get, &uri, &headers(&[("host", host)]), local())),
                Some("host"),
                "{host}"
            );
        }
        // HTTP/2: the authority is in the URI.
        let h2 = Uri::from_static("http://evil.example:8080/v1/state");
        assert_eq!(
            field(open.check(&get, &h2, &HeaderMap::new(), local())),
            Some("host")
        );
        let v6: SocketAddr = "[::1]:8080".parse().expect("addr");
        assert_eq!(
            open.check(&get, &uri, &headers(&[("host", "[::1]:8080")]), Some(v6)),
            Ok(())
        );
        // No socket: nothing to compare with.
        assert_eq!(
            open.check(&get, &uri, &headers(&[("host", "evil.example")]), None),
            Ok(())
        );
    }

    #[test]
    fn allowed_names_match_any_port_or_theirs() {
        let open = OpenMode::new(&["floodgate.internal".into(), "gw:443".into()]).expect("valid");
        let uri = Uri::from_static("/v1/state");
        let check =
            |host: &str| open.check(&Method::GET, &uri, &headers(&[("host", host)]), local());
        assert_eq!(check("floodgate.internal:1234"), Ok(()));
        assert_eq!(check("Floodgate.Internal"), Ok(()));
        assert_eq!(check("gw:443"), Ok(()));
        assert_eq!(field(check("gw:444")), Some("host"));
        let error = OpenMode::new(&["http://x/".into()]).expect_err("not a name");
        assert!(error.starts_with("--allowed-host \"http://x/\""), "{error}");
    }

    #[test]
    fn foreign_origins_are_refused_and_same_origin_passes() {
        let open = OpenMode::default();
        let uri = Uri::from_static("/v1/config");
        let post = Method::POST;
        let json = ("content-type", "application/json");
        let check = |origin: &str| {
            open.check(
                &post,
                &uri,
                &headers(&[("host", "127.0.0.1:8080"), ("origin", origin), json]),
                local(),
            )
        };
        assert_eq!(check("http://127.0.0.1:8080"), Ok(()));
        assert_eq!(check("http://localhost:8080"), Ok(()));
        for origin in [
            "http://evil.example",
            "null",
            "http://127.0.0.1:9999",
            "file://",
            "https://localhost",
        ] {
            assert_eq!(field(check(origin)), Some("origin"), "{origin}");
        }
    }

    #[test]
    fn posts_need_a_json_content_type() {
        let open = OpenMode::default();
        let uri = Uri::from_static("/v1/check");
        let host = ("host", "127.0.0.1:8080");
        let check = |pairs: &[(&'static str, &str)]| {
            open.check(&Method::POST, &uri, &headers(pairs), local())
        };
        assert_eq!(check(&[host, ("content-type", "application/json")]), Ok(()));
        assert_eq!(
            check(&[host, ("content-type", "Application/JSON; charset=utf-8")]),
            Ok(())
        );
        assert_eq!(check(&[host, ("content-type", "application/yaml")]), Ok(()));
        let refusal = check(&[host, ("content-type", "text/plain")]).expect_err("text/plain");
        assert_eq!(
            (refusal.status, refusal.field),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "content-type")
        );
        assert!(
            refusal.message.contains("text/plain"),
            "{}",
            refusal.message
        );
        assert_eq!(field(check(&[host])), Some("content-type"));
        // A GET needs none.
        assert_eq!(
            open.check(&Method::GET, &uri, &headers(&[host]), local()),
            Ok(())
        );
    }
}
