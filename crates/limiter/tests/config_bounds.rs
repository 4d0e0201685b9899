//! A config holds at most `limits::MAX_DESCRIPTORS` descriptors, counted
//! over all its files and nested levels; the refusal names the file and
//! the domain's `descriptors`.

use floodgate_limiter::config::{load, parse_file, ConfigSource};
use floodgate_limiter::limits::MAX_DESCRIPTORS;

fn descriptors(count: usize) -> String {
    let mut text = String::from("domain: api\ndescriptors:\n");
    for index in 0..count {
        text.push_str(&format!(
            "  - {{key: k, value: v{index}, rate_limit: {{unit: second, requests_per_unit: 1}}}}\n"
        ));
    }
    text
}

#[test]
fn a_config_holds_at_most_max_descriptors_over_all_its_files() {
    let half = MAX_DESCRIPTORS / 2;
    let table = load(&[ConfigSource {
        name: "full.yaml".into(),
        text: descriptors(MAX_DESCRIPTORS),
    }]);
    assert!(table.is_ok(), "{:?}", table.err());

    let refused = parse_file("over.yaml", &descriptors(MAX_DESCRIPTORS + 1))
        .expect_err("one descriptor too many");
    assert_eq!(refused.path, "descriptors");
    assert!(
        refused.message.contains(&MAX_DESCRIPTORS.to_string()),
        "{refused}"
    );

    let second = descriptors(half + 1).replace("domain: api", "domain: other");
    let refused = load(&[
        ConfigSource {
            name: "a.yaml".into(),
            text: descriptors(half),
        },
        ConfigSource {
            name: "b.yaml".into(),
            text: second,
        },
    ])
    .expect_err("two files over the bound together");
    assert_eq!(
        (refused.file.as_str(), refused.path.as_str()),
        ("b.yaml", "descriptors")
    );
}
