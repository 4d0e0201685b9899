//! The edge against a real server on loopback: raw TCP clients for idle
//! connections, slow bodies and handshakes; the guard over real sockets.
//! No sleeps: every wait is on the socket (EOF or an answer) under a
//! bounded timeout.

use axum::routing::{get, post};
use axum::Router;
use floodgate_edge::guard::{self, OpenMode, Refused};
use floodgate_edge::server::{serve_router, ListenerOptions, ListenerStats};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The longest any wait on a socket may take before the test fails.
const BOUND: Duration = Duration::from_secs(20);

struct Server {
    addr: SocketAddr,
    stats: Arc<ListenerStats>,
    refused: Arc<Mutex<Vec<Refused>>>,
    _stop: oneshot::Sender<()>,
}

fn app() -> Router {
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/echo", post(|body: axum::body::Bytes| async move { body }))
}

async fn start(options: ListenerOptions, open: Option<OpenMode>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stats = Arc::new(ListenerStats::default());
    let refused = Arc::new(Mutex::new(Vec::new()));
    let mut router = app();
    if let Some(policy) = open {
        let seen = refused.clone();
        router = guard::layer(
            router,
            policy,
            Arc::new(move |refusal: &Refused| seen.lock().expect("lock").push(refusal.clone())),
        );
    }
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_router(
        listener,
        options,
        stats.clone(),
        router,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        stats,
        refused,
        _stop: stop,
    }
}

/// Sends `request` on a new connection and reads until the server closes
/// it (every request here asks for `Connection: close` or is cut).
async fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    read_to_eof(&mut stream).await
}

async fn read_to_eof(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(BOUND, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection in time")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

fn ping(addr: SocketAddr) -> String {
    format!("GET /ping HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_client_is_served_past_the_cap_of_idle_connections() {
    let options = ListenerOptions {
        max_connections: 1_000,
        ..ListenerOptions::default()
    };
    let server = start(options, None).await;
    // 1,100 connections that never send a byte: 100 past the cap.
    let mut idle = Vec::new();
    for _ in 0..1_100 {
        idle.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    let answer = exchange(server.addr, &ping(server.addr)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("pong"), "{answer}");
    let figures = server.stats.figures();
    assert!(figures.shed_idle >= 101, "{figures:?}");
    assert!(figures.open <= 1_000, "{figures:?}");
    assert_eq!(figures.refused_busy, 0, "{figures:?}");
    // The oldest idle connection was the first shed: the server closed it.
    let mut first = idle.swap_remove(0);
    let rest = read_to_eof(&mut first).await;
    assert!(rest.is_empty(), "{rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_finishes_is_answered_408_and_the_connection_closed() {
    let options = ListenerOptions {
        body_read_timeout: Duration::from_millis(300),
        ..ListenerOptions::default()
    };
    let server = start(options, None).await;
    // Announces 100 bytes, sends 5, then waits.
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\":",
        server.addr
    );
    let answer = exchange(server.addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""field":"body""#), "{answer}");
    assert_eq!(server.stats.figures().body_timeouts, 1);
    // A body that arrives in time is still read whole.
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        server.addr
    );
    let answer = exchange(server.addr, &request).await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("{}"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_silent_connections_are_closed_after_their_timeouts() {
    let options = ListenerOptions {
        handshake_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        ..ListenerOptions::default()
    };
    let server = start(options, None).await;
    // Silent from the start: the handshake timeout.
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(read_to_eof(&mut silent).await, "");
    // One keep-alive request answered, then nothing: the idle timeout.
    let mut kept = TcpStream::connect(server.addr).await.expect("connect");
    let request = format!("GET /ping HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    kept.write_all(request.as_bytes()).await.expect("write");
    let answer = read_to_eof(&mut kept).await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("pong"),
        "{answer}"
    );
    let figures = server.stats.figures();
    assert_eq!(
        (figures.handshake_timeouts, figures.idle_timeouts),
        (1, 1),
        "{figures:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_mode_guard_refuses_cross_site_requests_over_a_socket() {
    let server = start(ListenerOptions::default(), Some(OpenMode::default())).await;
    let addr = server.addr;
    // A page's simple POST: text/plain, foreign Origin.
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    let answer = exchange(addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains(r#""field":"origin""#), "{answer}");
    // DNS rebinding: the page's own name as Host.
    let request = "GET /ping HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n";
    let answer = exchange(addr, request).await;
    assert!(
        answer.starts_with("HTTP/1.1 403") && answer.contains(r#""field":"host""#),
        "{answer}"
    );
    // Same host, no JSON: 415 naming the header.
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    let answer = exchange(addr, &request).await;
    assert!(
        answer.starts_with("HTTP/1.1 415") && answer.contains(r#""field":"content-type""#),
        "{answer}"
    );
    // Same host, JSON, same origin: served.
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost:{}\r\nOrigin: http://{addr}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        addr.port()
    );
    let answer = exchange(addr, &request).await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("{}"),
        "{answer}"
    );
    let refused = server.refused.lock().expect("lock").clone();
    let fields: Vec<&str> = refused.iter().map(|r| r.refusal.field).collect();
    assert_eq!(fields, ["origin", "host", "content-type"]);
}
