//! Hostile input against a real `floodgate serve` process on loopback: a
//! config of YAML aliases (an alias bomb that expands to 10^n descriptors)
//! posted to the control API, as a dry run and for real, is refused by
//! the YAML gate naming what is wrong, changes nothing, and leaves RSS
//! within `process::RSS_BOUND_KIB` (before the gate, 111 KB of such a
//! config grew a service by 1.6 GiB); configs at the body limit, one after
//! the other and sixteen at once, stay within it too (the action queue
//! admits bodies up to `MAX_PENDING_ACTION_BYTES` before reading them;
//! before, sixteen at once grew a service by 80–108 MiB); a cross-site
//! request in open mode (a `text/plain` POST from a foreign Origin, as a
//! browser's form would send) is refused and changes nothing.

#[path = "support/process.rs"]
mod process;

use process::{assert_rss_bounded, http, http_get, rss_kib, scratch, serve_example};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// About `bytes` of nested descriptor lists, each level ten aliases of
/// the one before.
fn alias_bomb(bytes: usize) -> String {
    let mut text = String::from("domain: api\ndescriptors:\n  - key: root\n    descriptors:\n");
    text.push_str(
        "      - &d0 {key: k, value: v, rate_limit: {unit: second, requests_per_unit: 1}}\n",
    );
    let mut level = 1;
    while text.len() < bytes {
        let aliases = vec![format!("*d{}", level - 1); 10].join(", ");
        text.push_str(&format!(
            "      - &d{level} {{key: k{level}, descriptors: [{aliases}]}}\n"
        ));
        level += 1;
    }
    text
}

fn config_version(addr: &str) -> Value {
    let (status, text) = http_get(addr, "/v1/config").expect("config");
    assert_eq!(status, 200, "{text}");
    let view: Value = serde_json::from_str(&text).expect("JSON");
    view["version"].clone()
}

#[test]
fn an_alias_bomb_posted_as_config_is_refused_by_name_in_little_memory() {
    let (server, addr) = serve_example(&scratch(), &[]);
    let before_version = config_version(&addr);
    // The control path's first use (its worker threads, their allocator
    // arenas) is not the attack's cost: two small refused posts first.
    for _ in 0..2 {
        let small = json!({"yaml": alias_bomb(1_000), "dry_run": true});
        let (status, text) =
            http(&addr, "POST", "/v1/config", None, &small.to_string()).expect("an answer");
        assert_eq!(status, 400, "{text}");
    }
    let rss_before = rss_kib(server.child.id());
    // Near the 4 MiB body limit: 36 times the bomb that grew a service by
    // 1.6 GiB before the gate.
    let bomb = alias_bomb(3_900_000);
    for dry_run in [true, false] {
        let body = json!({"yaml": bomb, "dry_run": dry_run, "reason": "abuse", "actor": "mallory"});
        let (status, text) = http(&addr, "POST", "/v1/config", None, &body.to_string())
            .expect("an answer to the bomb");
        assert_eq!(status, 400, "dry_run {dry_run}: {text}");
        let error: Value = serde_json::from_str(&text).expect("a JSON error");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("descriptors[0].descriptors[0]") && message.contains("anchors"),
            "dry_run {dry_run}: {error}"
        );
    }
    assert_rss_bounded(&server, rss_before);
    assert_eq!(config_version(&addr), before_version, "nothing applied");
    drop(server);
}

/// A `POST /v1/config` sent as a careful client sends a large body: the
/// headers with `Expect: 100-continue`, then, only once the service says
/// to go on, the body.
struct LargePost {
    stream: TcpStream,
    body: String,
}

impl LargePost {
    /// Sends the headers; returns the first status line's code: 100 (the
    /// service admitted it and will read the body) or the final answer's.
    fn start(addr: &str, body: String) -> (LargePost, u16, String) {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("read timeout");
        write!(
            stream,
            "POST /v1/config HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .expect("write the headers");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("an answer");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let status = head
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let mut rest = String::new();
        if status != 100 {
            reader
                .read_to_string(&mut rest)
                .expect("the refusal's body");
        }
        (LargePost { stream, body }, status, rest)
    }

    /// Sends the body; returns the final status and body.
    fn finish(mut self) -> (u16, String) {
        self.stream
            .write_all(self.body.as_bytes())
            .expect("write the body");
        let mut answer = String::new();
        self.stream.read_to_string(&mut answer).expect("an answer");
        let status = answer
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        (status, body.to_owned())
    }
}

#[test]
fn configs_at_the_body_limit_one_by_one_and_sixteen_at_once_stay_within_the_memory_bound() {
    let (server, addr) = serve_example(&scratch(), &[]);
    let example = std::fs::read_to_string(process::repo().join("examples/limits.yaml"))
        .expect("examples/limits.yaml");
    for _ in 0..2 {
        let small = json!({"yaml": example, "dry_run": true});
        let (status, text) =
            http(&addr, "POST", "/v1/config", None, &small.to_string()).expect("an answer");
        assert_eq!(status, 200, "{text}");
    }
    let rss_before = rss_kib(server.child.id());
    // A valid config of 3.9 MB (a long comment), as a dry run: the
    // service reads, parses and plans the whole of it.
    let large = json!({
        "yaml": format!("{example}# {}\n", "x".repeat(3_900_000)),
        "dry_run": true,
    })
    .to_string();
    assert!(
        large.len() < 4 * 1024 * 1024,
        "under MAX_CONTROL_BODY_BYTES"
    );
    for _ in 0..4 {
        let (status, text) = http(&addr, "POST", "/v1/config", None, &large).expect("an answer");
        assert_eq!(status, 200, "{text}");
    }
    // Sixteen at once (MAX_PENDING_ACTIONS): each says how large its body
    // is before sending it; those admitted hold their place, unsent, until
    // all sixteen have their first answer, so which are admitted does not
    // depend on timing.
    let barrier = Arc::new(Barrier::new(16));
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (addr, body, barrier) = (addr.clone(), large.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let (post, status, refusal) = LargePost::start(&addr, body);
                barrier.wait();
                if status == 100 {
                    post.finish()
                } else {
                    (status, refusal)
                }
            })
        })
        .collect();
    let answers: Vec<(u16, String)> = clients
        .into_iter()
        .map(|client| client.join().expect("a client"))
        .collect();
    let done = answers.iter().filter(|(status, _)| *status == 200).count();
    let refused: Vec<&String> = answers
        .iter()
        .filter(|(status, _)| *status == 503)
        .map(|(_, body)| body)
        .collect();
    // MAX_PENDING_ACTION_BYTES (5 MiB) holds one body of 3.9 MB.
    assert_eq!((done, refused.len()), (1, 15), "{answers:?}");
    for body in refused {
        let error: Value = serde_json::from_str(body).expect("a JSON error");
        assert_eq!(error["error"]["kind"], "overloaded", "{error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("MAX_PENDING_ACTION_BYTES"), "{error}");
    }
    assert_rss_bounded(&server, rss_before);
    drop(server);
}

#[test]
fn a_cross_site_form_post_in_open_mode_is_refused_and_changes_nothing() {
    let (server, addr) = serve_example(&scratch(), &[]);
    let before_version = config_version(&addr);
    let body = r#"{"yaml": "domain: api\ndescriptors: []\n"}"#;
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        stream,
        "POST /v1/config HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    let status: u16 = answer
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status: {answer}"));
    assert!(status == 403 || status == 415, "{answer}");
    let json = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let error: Value = serde_json::from_str(json).expect("a JSON error");
    let field = error["error"]["field"].as_str().unwrap_or_default();
    assert!(
        ["origin", "host", "content-type"].contains(&field),
        "{error}"
    );
    assert_eq!(config_version(&addr), before_version, "nothing applied");
    drop(server);
}
