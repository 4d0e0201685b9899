//! The small quantities objectives and tickets are written in: durations
//! (`30d`, `5m`, `1h30m`, `500ms`), percentages (`99.9%`) and factors
//! (`14.4x`). Each parses from text with an error that says what was
//! expected, and each deserializes from YAML so that a bad value is reported
//! with its line by serde_norway.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// `2026-11-26T19:42:35Z` for milliseconds since the Unix epoch (UTC,
/// seconds precision).
pub use floodgate_contract::time::rfc3339_seconds as format_time_ms;

/// The longest duration any objective or criterion may name: one year. SLO
/// windows are days to weeks; anything longer is a typo (`30000d`), and the
/// bound keeps every millisecond computation far from overflow.
pub const MAX_DURATION_MS: u64 = 366 * DAY_MS;

pub const SECOND_MS: u64 = 1_000;
pub const MINUTE_MS: u64 = 60 * SECOND_MS;
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
pub const DAY_MS: u64 = 24 * HOUR_MS;
pub const WEEK_MS: u64 = 7 * DAY_MS;

/// A span of time in milliseconds, written `500ms`, `30s`, `5m`, `1h`,
/// `30d`, `1w`, or a sum of them (`1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub u64);

impl Span {
    pub const fn ms(self) -> u64 {
        self.0
    }
}

/// Parses a duration. Errors are complete sentences naming the text.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let expected = || format!("{text:?} is not a duration (expected e.g. 500ms, 30s, 5m, 1h, 30d)");
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.len() > 32 {
        return Err(expected());
    }
    let bytes = trimmed.as_bytes();
    let mut total: u64 = 0;
    let mut index = 0;
    while index < bytes.len() {
        let start = index;
        while index < bytes.len() && (bytes[index].is_ascii_digit() || bytes[index] == b'.') {
            index += 1;
        }
        if start == index {
            return Err(expected());
        }
        let number: f64 = trimmed[start..index].parse().map_err(|_| expected())?;
        let unit_start = index;
        while index < bytes.len() && bytes[index].is_ascii_alphabetic() {
            index += 1;
        }
        let unit_ms = match &trimmed[unit_start..index] {
            "ms" => 1,
            "s" => SECOND_MS,
            "m" => MINUTE_MS,
            "h" => HOUR_MS,
            "d" => DAY_MS,
            "w" => WEEK_MS,
            _ => return Err(expected()),
        };
        let part = number * unit_ms as f64;
        if !part.is_finite() || part < 0.0 || (part > 0.0 && part < 1.0) {
            return Err(expected());
        }
        total = total.saturating_add(part.round() as u64);
        if total > MAX_DURATION_MS {
            return Err(format!(
                "{text:?} is longer than the longest duration allowed (366d)"
            ));
        }
    }
    if total == 0 {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(total)
}

/// Formats milliseconds the way they are written in objectives (`5m`,
/// `1h`, `30d`, `1h30m`, `250ms`).
pub fn format_duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", DAY_MS),
        ("h", HOUR_MS),
        ("m", MINUTE_MS),
        ("s", SECOND_MS),
        ("ms", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration_ms(self.0))
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration_ms(self.0))
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_scalar(deserializer, "a duration such as 5m", |text| {
            parse_duration_ms(text).map(Span)
        })
    }
}

/// Parses a latency: `250us`, `1ms`, `0.5s`, or a bare number of seconds
/// (`0.001`, as a histogram's `le` is written). Answers seconds.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let expected = || format!("{text:?} is not a latency (expected e.g. 1ms, 250us, 0.5s)");
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| {
            !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+')
        })
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number.parse().map_err(|_| expected())?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" => 60.0,
        _ => return Err(expected()),
    };
    let seconds = value * scale;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{text:?} must be a latency above zero"));
    }
    Ok(seconds)
}

/// A fraction in (0, 1), written as a percentage: `99.9%`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl Percent {
    pub const fn fraction(self) -> f64 {
        self.0
    }
}

/// Parses `99.9%` into 0.999. A bare number is refused: `99.9` and `0.999`
/// are both plausible readings, so the unit must be written.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let expected = || format!("{text:?} is not a percentage (expected e.g. 99.9%)");
    let number = text.trim().strip_suffix('%').ok_or_else(expected)?;
    let value: f64 = number.trim().parse().map_err(|_| expected())?;
    if !value.is_finite() {
        return Err(expected());
    }
    Ok(value / 100.0)
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", trim_float(self.0 * 100.0))
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_scalar(deserializer, "a percentage such as 99.9%", |text| {
            let fraction = parse_percent(text)?;
            if !(fraction > 0.0 && fraction < 1.0) {
                return Err(format!("{text:?} must be above 0% and below 100%"));
            }
            Ok(Percent(fraction))
        })
    }
}

/// A multiple, written `14.4x` (a bare number is accepted too).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Factor(pub f64);

pub fn parse_factor(text: &str) -> Result<f64, String> {
    let expected = || format!("{text:?} is not a factor (expected e.g. 14.4x)");
    let trimmed = text.trim();
    let number = trimmed.strip_suffix(['x', 'X']).unwrap_or(trimmed);
    let value: f64 = number.trim().parse().map_err(|_| expected())?;
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("{text:?} must be a factor above zero (e.g. 14.4x)"));
    }
    Ok(value)
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x", trim_float(self.0))
    }
}

impl Serialize for Factor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Factor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_scalar(deserializer, "a factor such as 14.4x", |text| {
            parse_factor(text).map(Factor)
        })
    }
}

/// Formats a float without a trailing `.0` and without float noise
/// (`99.9`, not `99.90000000000001`).
pub fn trim_float(value: f64) -> String {
    let rounded = (value * 1e9).round() / 1e9;
    let mut text = format!("{rounded}");
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    text
}

/// Deserializes a scalar (whatever YAML typed it as) through `parse`,
/// inside the visitor: an error raised there carries the scalar's line, and
/// quotes what was written (`"99.9" is not a percentage`).
pub(crate) fn parse_scalar<'de, D, T, F>(
    deserializer: D,
    expecting: &'static str,
    parse: F,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(&str) -> Result<T, String>,
{
    deserializer.deserialize_any(ParseVisitor {
        expecting,
        parse,
        marker: std::marker::PhantomData,
    })
}

struct ParseVisitor<T, F> {
    expecting: &'static str,
    parse: F,
    marker: std::marker::PhantomData<T>,
}

impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for ParseVisitor<T, F> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        (self.parse)(value).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
        (self.parse)(&trim_float(value)).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        (self.parse)(&value.to_string()).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        (self.parse)(&value.to_string()).map_err(E::custom)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<T, E> {
        (self.parse)(&value.to_string()).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("5m"), Ok(5 * MINUTE_MS));
        assert_eq!(parse_duration_ms("1h30m"), Ok(90 * MINUTE_MS));
        assert_eq!(parse_duration_ms("30d"), Ok(30 * DAY_MS));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("1.5h"), Ok(90 * MINUTE_MS));
        for bad in ["", "5", "m", "5x", "-5m", "0s", "99999d", "5m5", "1..5h"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration_ms(90 * MINUTE_MS), "1h30m");
        assert_eq!(format_duration_ms(30 * DAY_MS), "30d");
    }

    #[test]
    fn percentages_and_factors() {
        assert!((parse_percent("99.9%").unwrap_or(0.0) - 0.999).abs() < 1e-12);
        assert_eq!(
            parse_percent("99.9"),
            Err("\"99.9\" is not a percentage (expected e.g. 99.9%)".into())
        );
        assert_eq!(Percent(0.999).to_string(), "99.9%");
        assert_eq!(parse_factor("14.4x"), Ok(14.4));
        assert_eq!(parse_factor("6"), Ok(6.0));
        assert!(parse_factor("0x").is_err());
        assert!(parse_factor("fast").is_err());
        assert_eq!(parse_seconds("1ms"), Ok(0.001));
        assert_eq!(parse_seconds("0.001"), Ok(0.001));
        assert!(parse_seconds("1 parsec").is_err());
        assert!(parse_seconds("0ms").is_err());
    }
}
