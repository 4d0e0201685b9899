//! Hostile input against a real `floodgate serve` process on loopback: a
//! config of YAML aliases (an alias bomb that expands to 10^n descriptors)
//! posted to the control API, as a dry run and for real, is refused by
//! the YAML gate naming what is wrong, changes nothing, and leaves RSS
//! within `process::RSS_BOUND_KIB` (before the gate, 111 KB of such a
//! config grew a service by 1.6 GiB); a cross-site request in open mode (a
//! `text/plain` POST from a foreign Origin, as a browser's form would
//! send) is refused and changes nothing.

#[path = "support/process.rs"]
mod process;

use process::{assert_rss_bounded, http, http_get, rss_kib, scratch, serve_example};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
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
    // 1 MiB, nine times the bomb that grew a service by 1.6 GiB before the
    // gate. At the 4 MiB body limit the refusal itself stays cheap, but
    // buffering such bodies (the body, its JSON string, the allocator's
    // per-thread arenas) grew RSS by ~70 MiB over two posts: past this
    // bound, and an open item of the hardening work.
    let bomb = alias_bomb(1 << 20);
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
