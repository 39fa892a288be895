use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

use crate::DomainError;

/// Microseconds since the Unix epoch, UTC. The log stores and hashes this integer.
pub type Timestamp = i64;

/// How far in the future an `occurred_at` may be before it is rejected (5 minutes).
pub const MAX_FUTURE_SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

/// This machine's clock as a [`Timestamp`].
pub fn now_micros() -> Timestamp {
    Utc::now().timestamp_micros()
}

/// Parses RFC 3339 (`2025-10-03T12:00:00Z`, fractional seconds and offsets allowed),
/// or a plain date `2025-10-03` (midnight UTC). Sub-microsecond digits are truncated.
pub fn parse_ts(s: &str) -> Result<Timestamp, DomainError> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.with_timezone(&Utc).timestamp_micros());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(dt) = d.and_hms_opt(0, 0, 0) {
            return Ok(Utc.from_utc_datetime(&dt).timestamp_micros());
        }
    }
    Err(DomainError::BadTime(s.to_string()))
}

/// Formats a [`Timestamp`] as RFC 3339 UTC with `Z`, microseconds only when non-zero.
pub fn format_ts(ts: Timestamp) -> String {
    match Utc.timestamp_micros(ts).single() {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => format!("@{ts}us"),
    }
}

/// Parses `90s`, `45m`, `72h`, `3d` (also `1w`) into seconds.
pub fn parse_duration_secs(s: &str) -> Result<i64, DomainError> {
    let bad = || DomainError::BadDuration(s.to_string());
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let t = parse_ts("2025-10-03T12:00:00Z").unwrap_or(0);
        assert_eq!(t, 1_759_492_800_000_000);
        assert_eq!(format_ts(t), "2025-10-03T12:00:00Z");
        assert_eq!(parse_ts("2025-10-03T14:00:00+02:00"), Ok(t));
        assert_eq!(parse_ts("2025-10-03"), Ok(t - 12 * 3600 * 1_000_000));
        assert_eq!(format_ts(t + 1), "2025-10-03T12:00:00.000001Z");
        assert!(parse_ts("yesterday").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("90s"), Ok(90));
        assert_eq!(parse_duration_secs("45m"), Ok(2700));
        assert_eq!(parse_duration_secs("72h"), Ok(259_200));
        assert_eq!(parse_duration_secs("3d"), Ok(259_200));
        for bad in ["", "h", "3", "3x", "-3d", "99999999999999999999d"] {
            assert!(parse_duration_secs(bad).is_err(), "{bad}");
        }
    }
}
