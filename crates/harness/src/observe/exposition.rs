//! A strict, bounded parser of the Prometheus text exposition format
//! (version 0.0.4), the form every service's `/metrics` answers.
//!
//! Why our own: the parser crates on crates.io either split label values on
//! `,` and `=` (so a value holding either is misread), read the wall clock
//! for samples without a timestamp (which breaks the simulated clock), or
//! carry an LGPL licence. The format is small; this parser follows it
//! exactly (escapes in label values, `+Inf`/`-Inf`/`NaN`, optional
//! timestamps, `# HELP`/`# TYPE`), refuses a malformed scrape as a whole with
//! the line at fault (as Prometheus does), and is bounded by the constants
//! below so a hostile target cannot grow the harness's memory.

use std::collections::BTreeMap;
use std::fmt;

/// The largest exposition accepted, in bytes: the rate-limit service's
/// `/metrics` is a few KiB; detailed per-descriptor metrics (100 values per
/// limit) stay well under 1 MiB.
pub const MAX_EXPOSITION_BYTES: usize = 8 * 1024 * 1024;
/// The most samples one scrape may hold.
pub const MAX_SAMPLES_PER_SCRAPE: usize = 50_000;
/// The most labels one sample may carry.
pub const MAX_LABELS_PER_SAMPLE: usize = 32;
/// The longest metric name, label name or label value.
pub const MAX_NAME_OR_VALUE_CHARS: usize = 1024;

/// The `# TYPE` of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// One sample: `name{labels} value`. Labels are sorted by name, so equal
/// series compare equal.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A parsed scrape: the samples, and the declared type of each family.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Family name (as on the `# TYPE` line) → type.
    pub types: BTreeMap<String, MetricType>,
}

impl Exposition {
    /// The type of a sample's family: `x_bucket`, `x_sum` and `x_count` of a
    /// histogram `x` are counters; undeclared names are untyped.
    pub fn type_of(&self, sample_name: &str) -> MetricType {
        if let Some(kind) = self.types.get(sample_name) {
            return *kind;
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(family) = sample_name.strip_suffix(suffix) {
                if let Some(MetricType::Histogram | MetricType::Summary) = self.types.get(family) {
                    return MetricType::Counter;
                }
            }
        }
        MetricType::Untyped
    }
}

/// Why a scrape was refused: the line (1-based) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpositionError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ExpositionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "metrics exposition: {}", self.message)
        } else {
            write!(
                f,
                "metrics exposition: line {}: {}",
                self.line, self.message
            )
        }
    }
}

impl std::error::Error for ExpositionError {}

/// Parses a whole exposition.
pub fn parse(text: &str) -> Result<Exposition, ExpositionError> {
    if text.len() > MAX_EXPOSITION_BYTES {
        return Err(ExpositionError {
            line: 0,
            message: format!(
                "{} bytes is more than the {MAX_EXPOSITION_BYTES} accepted",
                text.len()
            ),
        });
    }
    let mut out = Exposition::default();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let error = |message: String| ExpositionError {
            line: number,
            message,
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE") {
                let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                    return Err(error("a TYPE line needs a metric name and a type".into()));
                };
                let kind = match kind {
                    "counter" => MetricType::Counter,
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    "summary" => MetricType::Summary,
                    "untyped" | "unknown" => MetricType::Untyped,
                    other => return Err(error(format!("unknown metric type {other:?}"))),
                };
                check_name(name).map_err(error)?;
                out.types.insert(name.to_owned(), kind);
            }
            continue;
        }
        if out.samples.len() >= MAX_SAMPLES_PER_SCRAPE {
            return Err(error(format!(
                "more than {MAX_SAMPLES_PER_SCRAPE} samples in one scrape"
            )));
        }
        out.samples.push(parse_sample(line).map_err(error)?);
    }
    Ok(out)
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if !valid_start
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        || name.len() > MAX_NAME_OR_VALUE_CHARS
    {
        return Err(format!("{name:?} is not a valid metric name"));
    }
    Ok(())
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, remainder) = parse_labels(after_brace)?;
        labels = parsed;
        rest = remainder;
    }
    let mut fields = rest.split_whitespace();
    let value_text = fields
        .next()
        .ok_or_else(|| format!("sample {name} has no value"))?;
    let value = parse_value(value_text)
        .ok_or_else(|| format!("sample {name} has value {value_text:?}, which is not a number"))?;
    if let Some(timestamp) = fields.next() {
        // Timestamps are accepted and ignored: the harness stamps every
        // sample with the observation's time, so simulated and real clocks
        // behave alike.
        if timestamp.parse::<i64>().is_err() {
            return Err(format!(
                "sample {name} has timestamp {timestamp:?}, which is not an integer"
            ));
        }
    }
    if fields.next().is_some() {
        return Err(format!(
            "sample {name} has text after its value and timestamp"
        ));
    }
    labels.sort();
    if labels.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(format!("sample {name} repeats a label"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Label pairs, sorted by name once parsed.
pub type Labels = Vec<(String, String)>;

/// Parses `a="x",b="y"}` (after the opening brace); returns the labels and
/// what follows the closing brace.
fn parse_labels(text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        if labels.len() >= MAX_LABELS_PER_SAMPLE {
            return Err(format!(
                "more than {MAX_LABELS_PER_SAMPLE} labels on one sample"
            ));
        }
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("a label set is not closed with }")?;
        let label = &rest[..name_end];
        if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("invalid label name at {:?}", truncate(rest)));
        }
        rest = rest[name_end..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("label {label} has no ="))?
            .trim_start();
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("label {label}'s value is not quoted"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let mut closed_at = None;
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    closed_at = Some(at);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, other)) => {
                        return Err(format!("label {label} has an unknown escape \\{other}"))
                    }
                    None => return Err(format!("label {label}'s value is not closed")),
                },
                c => value.push(c),
            }
            if value.len() > MAX_NAME_OR_VALUE_CHARS {
                return Err(format!(
                    "label {label}'s value is longer than {MAX_NAME_OR_VALUE_CHARS} characters"
                ));
            }
        }
        let closed_at = closed_at.ok_or_else(|| format!("label {label}'s value is not closed"))?;
        labels.push((label.to_owned(), value));
        rest = rest[closed_at + 1..].trim_start();
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma.trim_start();
        } else if !rest.starts_with('}') {
            return Err(format!("expected , or }} after label {label}"));
        }
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(20).collect()
}

/// A sample value: a float, `+Inf`, `-Inf` or `NaN` (any case).
pub fn parse_value(text: &str) -> Option<f64> {
    match text.to_ascii_lowercase().as_str() {
        "+inf" | "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        lower => {
            // Rust's parser accepts "infinity" and friends; the format does not.
            if lower.contains("in") {
                return None;
            }
            lower.parse().ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_service_format() {
        let text = "# HELP floodgate_requests_total Decisions.\n\
                    # TYPE floodgate_requests_total counter\n\
                    floodgate_requests_total{api=\"grpc\",code=\"ok\"} 12\n\
                    # TYPE floodgate_request_duration_seconds histogram\n\
                    floodgate_request_duration_seconds_bucket{api=\"grpc\",le=\"0.001\"} 10\n\
                    floodgate_request_duration_seconds_bucket{le=\"+Inf\",api=\"grpc\"} 12\n\
                    floodgate_request_duration_seconds_count{api=\"grpc\"} 12 1700000000000\n\
                    odd{v=\"a,b=c \\\"q\\\" \\\\ \\n\",} NaN\n";
        let parsed = parse(text).expect("parses");
        assert_eq!(parsed.samples.len(), 5);
        assert_eq!(parsed.samples[2].labels[1], ("le".into(), "+Inf".into()));
        assert_eq!(parsed.samples[2].value, 12.0);
        assert_eq!(parsed.samples[4].labels[0].1, "a,b=c \"q\" \\ \n");
        assert!(parsed.samples[4].value.is_nan());
        assert_eq!(
            parsed.type_of("floodgate_request_duration_seconds_bucket"),
            MetricType::Counter
        );
        assert_eq!(
            parsed.type_of("floodgate_requests_total"),
            MetricType::Counter
        );
        assert_eq!(parsed.type_of("odd"), MetricType::Untyped);
    }

    #[test]
    fn refuses_malformed_lines_naming_them() {
        for (text, line) in [
            ("ok 1\nbad{a=\"x\" 1\n", 2),
            ("x{a=b} 1", 1),
            ("x 1 2 3", 1),
            ("x infinity", 1),
            ("\n\n9x 1", 3),
            ("x{a=\"1\",a=\"2\"} 1", 1),
            ("# TYPE x blob", 1),
        ] {
            let error = parse(text).expect_err(text);
            assert_eq!(error.line, line, "{text}: {error}");
        }
    }
}
