//! The connection edge under abuse, against a real `floodgate serve`
//! process on loopback with small bounds set by its flags: more idle TCP
//! connections than the cap (`--max-connections`) leave a new client's
//! check answered (the idle ones are shed first, counted, and closed), and
//! a control-API body that never finishes is cut by `--body-read-timeout`
//! (408 naming `body`, connection closed) while checks go on; a process
//! whose open-file limit is below its cap sheds the longest-idle
//! connection when an accept fails for want of descriptors, and still
//! serves a new client. Under each, RSS grows by less than
//! `process::RSS_BOUND_KIB`.

#[path = "support/process.rs"]
mod process;

use process::{
    assert_rss_bounded, floodgate, http, http_get, rss_kib, scratch, serve_example,
    serve_example_with, Process,
};
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The cap given to the process, and the idle connections opened.
const CAP: usize = 32;
const IDLE: usize = 3 * CAP;
/// The open-file limit (soft and hard) of the descriptor test's process,
/// the cap it is given (far above that), and the idle connections opened.
const NOFILE: usize = 128;
const NOFILE_CAP: usize = 4 * NOFILE;
const NOFILE_IDLE: usize = 2 * NOFILE;
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

/// A `floodgate serve` run by `command` with a connection cap of `cap` and
/// timeouts too long to close an idle connection during a test.
fn serve_capped(command: std::process::Command, cap: usize) -> (Process, String) {
    let cap = cap.to_string();
    serve_example_with(
        command,
        &scratch(),
        &[
            "--max-connections",
            &cap,
            "--handshake-timeout",
            "10m",
            "--idle-timeout",
            "10m",
        ],
    )
}

/// Opens `count` connections that never send a byte, and waits until the
/// process has accepted every one of them (each poll is one more
/// connection, so those are counted too).
fn open_idle(addr: &str, count: usize) -> Vec<TcpStream> {
    let accepted = r#"floodgate_connections_accepted_total{listener="http"}"#;
    let before = metric(addr, accepted).expect("accepted");
    let idle: Vec<TcpStream> = (0..count)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let mut polls = 0.0;
    loop {
        polls += 1.0;
        let now = metric(addr, accepted).expect("accepted");
        if now >= before + count as f64 + polls {
            break;
        }
        assert!(
            polls < POLLS as f64,
            "accepted {now}, never {}",
            before + count as f64
        );
    }
    idle
}

#[test]
fn idle_connections_past_the_cap_are_shed_and_a_new_client_is_served() {
    let (server, addr) = serve_capped(floodgate(), CAP);
    let rss_before = rss_kib(server.child.id());
    let mut idle = open_idle(&addr, IDLE);
    assert_rss_bounded(&server, rss_before);

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

/// The open-file limit below the connection cap (a host that cannot raise
/// it): accepts fail with EMFILE, and each failure sheds the longest-idle
/// connection and pauses the listener instead of spinning, so a new
/// client is still answered and the process does not freeze.
#[test]
fn out_of_descriptors_the_longest_idle_is_shed_and_a_new_client_is_served() {
    // `ulimit -n` sets the soft and the hard limit: the process's raise
    // to the hard limit cannot get past it.
    let mut shell = std::process::Command::new("sh");
    shell
        .arg("-c")
        .arg(format!("ulimit -n {NOFILE} && exec \"$0\" \"$@\""))
        .arg(floodgate().get_program());
    let (server, addr) = serve_capped(shell, NOFILE_CAP);
    let rss_before = rss_kib(server.child.id());
    let idle = open_idle(&addr, NOFILE_IDLE);

    let (status, body) = check(&addr);
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["overall_code"], "OK", "{answer}");

    let errors =
        metric(&addr, r#"floodgate_accept_errors_total{listener="http"}"#).expect("accept errors");
    let shed = metric(
        &addr,
        r#"floodgate_connections_closed_total{listener="http",reason="shed_idle"}"#,
    )
    .expect("shed_idle");
    assert!(errors >= 1.0, "the open-file limit was never reached");
    assert!(
        shed >= (NOFILE_IDLE - NOFILE) as f64,
        "shed {shed} of {NOFILE_IDLE} idle connections with {NOFILE} descriptors"
    );
    let open = metric(&addr, r#"floodgate_connections_open{listener="http"}"#).expect("open");
    assert!(
        open < NOFILE as f64,
        "{open} open with {NOFILE} descriptors"
    );
    assert_rss_bounded(&server, rss_before);
    assert!(
        server
            .log()
            .contains("the open-file limit is below the connection caps"),
        "{}",
        server.log()
    );
    drop(idle);
    drop(server);
}
