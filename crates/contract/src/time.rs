//! RFC 3339 times, read and written the one way Floodgate does: a moment
//! is milliseconds since the Unix epoch (UTC, the proleptic Gregorian
//! calendar; nothing before 1970).

/// Why a text is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rfc3339Error {
    #[error("{0:?} is not an RFC 3339 timestamp (expected e.g. 2026-12-01T00:00:00Z)")]
    Syntax(String),
    #[error("{0:?} has an offset out of range")]
    Offset(String),
    #[error("{0:?} is not a date of the calendar")]
    Date(String),
    #[error("{0:?} has a time out of range (00:00:00 to 23:59:59)")]
    Time(String),
    #[error("{0:?} is before 1970")]
    BeforeEpoch(String),
}

/// Parses an RFC 3339 timestamp (`2026-12-01T17:00:00Z`,
/// `2026-12-01T18:00:00.250+01:00`) into milliseconds since the epoch.
/// `T`/`Z` may be lower case; fractions beyond milliseconds are truncated;
/// a leap second (`:60`) and moments before 1970 are refused.
pub fn parse_rfc3339_ms(text: &str) -> Result<u64, Rfc3339Error> {
    let syntax = || Rfc3339Error::Syntax(text.to_owned());
    let bytes = text.trim().as_bytes();
    let field = |start: usize, len: usize| -> Option<u32> {
        let part = bytes.get(start..start + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let separator =
        |index: usize, allowed: &[u8]| bytes.get(index).is_some_and(|b| allowed.contains(b));
    if bytes.len() < 20
        || !separator(4, b"-")
        || !separator(7, b"-")
        || !separator(10, b"Tt")
        || !separator(13, b":")
        || !separator(16, b":")
    {
        return Err(syntax());
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        field(0, 4),
        field(5, 2),
        field(8, 2),
        field(11, 2),
        field(14, 2),
        field(17, 2),
    ) else {
        return Err(syntax());
    };
    let mut index = 19;
    let mut millis = 0u64;
    if separator(index, b".") {
        index += 1;
        let start = index;
        while bytes.get(index).is_some_and(u8::is_ascii_digit) {
            index += 1;
        }
        if index == start {
            return Err(syntax());
        }
        for (position, digit) in bytes[start..index.min(start + 3)].iter().enumerate() {
            millis += u64::from(digit - b'0') * 10u64.pow(2 - position as u32);
        }
    }
    let offset_minutes: i64 = match bytes.get(index..) {
        Some(b"Z" | b"z") => 0,
        Some([sign @ (b'+' | b'-'), rest @ ..]) if rest.len() == 5 && rest[2] == b':' => {
            let (Some(hours), Some(minutes)) = (field(index + 1, 2), field(index + 4, 2)) else {
                return Err(syntax());
            };
            if hours > 23 || minutes > 59 {
                return Err(Rfc3339Error::Offset(text.to_owned()));
            }
            let total = i64::from(hours * 60 + minutes);
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return Err(syntax()),
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(Rfc3339Error::Date(text.to_owned()));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(Rfc3339Error::Time(text.to_owned()));
    }
    let days = days_from_civil(i64::from(year), month, day);
    let seconds =
        days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60 + i64::from(second)
            - offset_minutes * 60;
    if seconds < 0 {
        return Err(Rfc3339Error::BeforeEpoch(text.to_owned()));
    }
    Ok(seconds as u64 * 1_000 + millis)
}

/// `2026-11-26T19:42:35Z` for milliseconds since the epoch (seconds
/// precision: the milliseconds are dropped).
pub fn rfc3339_seconds(time_ms: u64) -> String {
    let (date, of_day) = civil(time_ms);
    format!(
        "{date}T{:02}:{:02}:{:02}Z",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

/// `2026-11-26T19:42:35.250Z` for milliseconds since the epoch.
pub fn rfc3339_millis(time_ms: u64) -> String {
    let (date, of_day) = civil(time_ms);
    format!(
        "{date}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60,
        time_ms % 1_000
    )
}

/// `YYYY-MM-DD` of a moment, and its seconds into that day.
fn civil(time_ms: u64) -> (String, u64) {
    let seconds = time_ms / 1_000;
    let days = (seconds / 86_400) as i64;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (format!("{year:04}-{month:02}-{day:02}"), seconds % 86_400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_rfc3339_utc() {
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_seconds(1_795_722_155_999), "2026-11-26T19:42:35Z");
        assert_eq!(
            rfc3339_millis(1_795_722_155_999),
            "2026-11-26T19:42:35.999Z"
        );
    }

    #[test]
    fn formatting_and_parsing_agree() {
        for ms in [0, 951_782_400_000, 1_709_164_800_123, 4_102_444_800_000] {
            assert_eq!(parse_rfc3339_ms(&rfc3339_millis(ms)), Ok(ms));
            assert_eq!(
                parse_rfc3339_ms(&rfc3339_seconds(ms)),
                Ok(ms / 1_000 * 1_000)
            );
        }
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            parse_rfc3339_ms("tomorrow").map_err(|e| e.to_string()),
            Err(
                "\"tomorrow\" is not an RFC 3339 timestamp (expected e.g. 2026-12-01T00:00:00Z)"
                    .into()
            )
        );
        assert!(matches!(
            parse_rfc3339_ms("2026-02-30T00:00:00Z"),
            Err(Rfc3339Error::Date(_))
        ));
        assert!(matches!(
            parse_rfc3339_ms("1969-12-31T23:59:59Z"),
            Err(Rfc3339Error::BeforeEpoch(_))
        ));
    }
}
