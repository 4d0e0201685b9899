//! Hostile configs are refused by the YAML gate before serde_norway sees
//! them: an alias bomb, deep flow nesting, tags outside the core schema,
//! NUL. Each refusal names the file and the field; the process's peak RSS
//! stays small (the alias bomb below grew a service by GiBs before the
//! gate). The one test in this binary, so the peak is its own.

use floodgate_limiter::config::parse_file;

/// ~111 KB of nested descriptor lists, each level ten aliases of the one
/// before: 10^levels descriptors once expanded.
fn alias_bomb() -> String {
    let mut text = String::from("domain: api\ndescriptors:\n  - key: root\n    descriptors:\n");
    text.push_str(
        "      - &d0 {key: k, value: v, rate_limit: {unit: second, requests_per_unit: 1}}\n",
    );
    let mut level = 1;
    while text.len() < 111_000 {
        let aliases = vec![format!("*d{}", level - 1); 10].join(", ");
        text.push_str(&format!(
            "      - &d{level} {{key: k{level}, descriptors: [{aliases}]}}\n"
        ));
        level += 1;
    }
    text
}

/// Peak resident set of this process, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

fn refusal(name: &str, text: &str) -> String {
    match parse_file(name, text) {
        Ok(domains) => panic!("{name}: accepted {} domains", domains.len()),
        Err(error) => error.to_string(),
    }
}

#[test]
fn hostile_configs_are_refused_by_name_in_little_memory() {
    let bomb = alias_bomb();
    assert!(bomb.len() >= 111_000);
    let refused = refusal("bomb.yaml", &bomb);
    assert!(
        refused.starts_with("bomb.yaml: descriptors[0].descriptors[0]: YAML anchors"),
        "{refused}"
    );

    let deep = format!(
        "domain: api\ndescriptors: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let refused = refusal("deep.yaml", &deep);
    assert!(
        refused.contains("nested deeper than 64 levels"),
        "{refused}"
    );
    assert!(
        refused.starts_with("deep.yaml: descriptors[0]"),
        "{refused}"
    );

    let deep_blocks: String = (0..1_000)
        .map(|depth| format!("{}- \n", "  ".repeat(depth)))
        .collect();
    let refused = refusal(
        "blocks.yaml",
        &format!("domain: api\ndescriptors:\n{deep_blocks}"),
    );
    assert!(
        refused.contains("nested deeper than 64 levels"),
        "{refused}"
    );

    let refused = refusal("binary.yaml", "domain: !!binary YXBp\ndescriptors: []\n");
    assert!(
        refused.starts_with("binary.yaml: domain: YAML tag `!!binary`"),
        "{refused}"
    );
    let refused = refusal("custom.yaml", "domain: api\ndescriptors: !mine []\n");
    assert!(
        refused.starts_with("custom.yaml: descriptors: YAML tag `!mine`"),
        "{refused}"
    );

    let refused = refusal("nul.yaml", "domain: \"a\\0b\"\ndescriptors: []\n");
    assert!(refused.starts_with("nul.yaml: domain: NUL"), "{refused}");

    // The bounds hold for every document in the file, not just the first.
    let refused = refusal(
        "second.yaml",
        "domain: a\ndescriptors: []\n---\ndomain: b\ndescriptors: [*x]\n",
    );
    assert!(
        refused.starts_with("second.yaml: document[1].descriptors[0]: YAML aliases"),
        "{refused}"
    );

    let peak = peak_rss_kib();
    eprintln!("peak RSS {peak} KiB");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}
