//! Every parser of outside input answers an error, never a panic, on
//! arbitrary text (seeded; the seed is printed).

mod common;

use common::{seed, Rng};
use floodgate_harness::observe::selector::Selector;
use floodgate_harness::tickets::criteria::{Condition, MetricRegistry, Sustain};
use floodgate_harness::{
    observe::condition, observe::exposition, observe::objectives, tickets, tickets::alertmanager,
};

/// Characters that matter to the grammars, plus a few odd ones.
const ALPHABET: &[char] = &[
    'a', 'z', '_', ':', '0', '9', '.', '-', '+', 'e', '%', 'x', 'm', 's', 'h', 'd', '{', '}', '[',
    ']', '(', ')', '=', '!', '~', '"', '\'', '\\', ',', ' ', '\n', '\t', '#', '<', '>', '&', '|',
    '?', '*', 'µ', '😀', '\u{0}',
];

const FRAGMENTS: &[&str] = &[
    "slos:\n",
    "  - name: a\n",
    "    target: ",
    "99.9%",
    "    window: 30d\n",
    "    sli:\n",
    "      ratio:\n",
    "        good: x_total\n",
    "        total: y_total\n",
    "invariants:\n",
    "    condition: ",
    "a > 1",
    "apiVersion: openslo/v1\n",
    "kind: SLO\n",
    "---\n",
    "ticket:\n",
    "  type: task\n",
    "  objective:\n",
    "    description: x\n",
    "  acceptance_criteria:\n",
    "    - metric: throughput\n",
    "      condition: ",
    "no regression",
    "# TYPE x_total counter\n",
    "x_total{a=\"b\"} 1\n",
    "le=\"+Inf\"",
    "{\"version\":\"4\"",
    "\"alerts\":[",
    "]}",
    "NaN",
    "1e308",
    "-0",
];

fn random_text(rng: &mut Rng) -> String {
    let mut text = String::new();
    let pieces = rng.next_u64() % 24;
    for _ in 0..pieces {
        if rng.next_u64().is_multiple_of(2) {
            text.push_str(FRAGMENTS[(rng.next_u64() % FRAGMENTS.len() as u64) as usize]);
        } else {
            for _ in 0..rng.next_u64() % 6 {
                text.push(ALPHABET[(rng.next_u64() % ALPHABET.len() as u64) as usize]);
            }
        }
    }
    text
}

#[test]
fn parsers_never_panic_on_arbitrary_text() {
    let seed = seed(5);
    let mut rng = Rng::from_state(seed);
    let registry = MetricRegistry::builtin();
    for _ in 0..3_000 {
        let text = random_text(&mut rng);
        let outcome = std::panic::catch_unwind(|| {
            let _ = exposition::parse(&text);
            let _ = Selector::parse(&text);
            let _ = Condition::parse(&text);
            let _ = Sustain::parse(&text);
            let _ = condition::compile(&text);
            let _ = condition::desugar_percent(&text);
            let _ = objectives::parse("fuzz.yaml", &text);
            let _ = tickets::parse_ticket_yaml("fuzz.yaml", &text, &registry);
            if let Ok(payload) = alertmanager::parse(text.as_bytes()) {
                let _ = alertmanager::convert(&payload);
            }
            let _ = floodgate_harness::quantity::parse_duration_ms(&text);
            let _ = floodgate_harness::quantity::parse_seconds(&text);
            let _ = floodgate_harness::quantity::parse_percent(&text);
        });
        assert!(outcome.is_ok(), "seed {seed}: panicked on {text:?}");
    }
}
