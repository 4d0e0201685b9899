//! The connection edge under abuse, against a real `floodgate serve`
//! process on loopback with small bounds set by its flags: more idle TCP
//! connections than the cap (`--max-connections`) leave a new client's
//! check answered (the idle ones are shed first, counted, and closed), and
//! a control-API body that never finishes is cut by `--body-read-timeout`
//! (408 naming `body`, connection closed) while checks go on.

#[path = "support/process.rs"]
mod process;

use process::{http, http_get, scratch, serve_example, Process};
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The cap given to the process, and the idle connections opened.
const CAP: usize = 32;
const IDLE: usize = 3 * CAP;
/// Readiness polls of the process's own figures (it accepts in its own
/// time); each poll is one request.
const POLLS: usize = 2_000;

fn serve(extra: &[&str]) -> (Process, String) {
    serve_example(&scratch(), extra)
}

/// A metric's value for the HTTP listener, e.g.
/// `floodgate_connections_closed_total{listener="http",reason="shed_idle"}`.
fn metric(addr: &str, series: &str) -> Option<f64> {
    let (status, text) = http_get(addr, "/metrics")?;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

fn check(addr: &str) -> (u16, String) {
    let body = r#"{"domain":"api","descriptors":[{"entries":[{"key":"tenant","value":"acme"}]}]}"#;
    http(addr, "POST", "/v1/check", None, body).expect("an answer to a new client's check")
}

/// Whether the server closes `stream`: a read sees its end (or a reset);
/// a connection left open is still open after the guard of 30 s.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

#[test]
fn idle_connections_past_the_cap_are_shed_and_a_new_client_is_served() {
    let cap = CAP.to_string();
    let (server, addr) = serve(&[
        "--max-connections",
        &cap,
        "--handshake-timeout",
        "10m",
        "--idle-timeout",
        "10m",
    ]);
    let accepted = r#"floodgate_connections_accepted_total{listener="http"}"#;
    let before = metric(&addr, accepted).expect("accepted");

    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    // Until the process has accepted every one of them (each poll is one
    // more connection, so count those too).
    let mut polls = 0.0;
    loop {
        polls += 1.0;
        let now = metric(&addr, accepted).expect("accepted");
        if now >= before + IDLE as f64 + polls {
            break;
        }
        assert!(
            polls < POLLS as f64,
            "accepted {now}, never {}",
            before + IDLE as f64
        );
    }

    // A new client past the cap of idle connections: answered.
    let (status, body) = check(&addr);
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["overall_code"], "OK", "{answer}");

    let shed = metric(
        &addr,
        r#"floodgate_connections_closed_total{listener="http",reason="shed_idle"}"#,
    )
    .expect("shed_idle");
    let refused = metric(
        &addr,
        r#"floodgate_connections_closed_total{listener="http",reason="refused_busy"}"#,
    )
    .expect("refused_busy");
    assert!(shed >= (IDLE - CAP) as f64, "shed {shed}");
    assert_eq!(
        refused, 0.0,
        "a connection was refused while idle ones were open"
    );
    let open = metric(&addr, r#"floodgate_connections_open{listener="http"}"#).expect("open");
    assert!(open <= CAP as f64, "{open} open past the cap of {CAP}");
    // The oldest idle connections are the ones shed: every connection
    // accepted after them is still open or was shed after them, so the
    // first IDLE - CAP are closed by the server (a read sees the end).
    for (index, stream) in idle.iter_mut().take(IDLE - CAP).enumerate() {
        assert!(
            closed_by_server(stream),
            "idle connection {index} was not shed"
        );
    }
    drop(server);
}

#[test]
fn a_slow_control_body_is_cut_by_the_body_timeout() {
    let (server, addr) = serve(&["--body-read-timeout", "1s"]);
    let mut stream = TcpStream::connect(&addr).expect("connect");
    // Past the body timeout, a read that hangs fails the test instead.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let body = r#"{"yaml": "domain: x"}"#;
    write!(
        stream,
        "POST /v1/config HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len() + 1_000,
        body
    )
    .expect("write the start of the body");
    stream.flush().expect("flush");

    // Checks are answered while that body hangs.
    let (status, text) = check(&addr);
    assert_eq!(status, 200, "{text}");

    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("the answer, then the connection closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let json = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let error: Value = serde_json::from_str(json).expect("a JSON error");
    assert_eq!(error["error"]["kind"], "timeout", "{error}");
    assert_eq!(error["error"]["field"], "body", "{error}");
    let timeouts = metric(
        &addr,
        r#"floodgate_connections_closed_total{listener="http",reason="body_timeout"}"#,
    )
    .expect("body_timeout");
    assert_eq!(timeouts, 1.0);
    // Nothing was applied.
    let (status, text) = http_get(&addr, "/v1/config").expect("config");
    assert_eq!(status, 200, "{text}");
    let view: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(view["version"], 1, "{view}");
    drop(server);
}
