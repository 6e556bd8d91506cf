//! Times as the inspector's readers show and take them: UTC, to the millisecond.

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS.mmm` (UTC), as the `workflow`
/// command and the web view print them.
///
/// ```
/// assert_eq!(workflow_runtime::inspect::format_time(951_782_400_000), "2000-02-29 00:00:00.000");
/// ```
pub fn format_time(ms: u64) -> String {
    let (days, rest) = (ms / 86_400_000, ms % 86_400_000);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// A duration in microseconds (an [`Attempt`](crate::journal::Attempt)'s), readably:
/// `850 µs`, `20.1 ms`, `1.50 s`.
///
/// ```
/// use workflow_runtime::inspect::format_micros;
/// assert_eq!((format_micros(850), format_micros(20_113), format_micros(1_500_000)), ("850 µs".into(), "20.1 ms".into(), "1.50 s".into()));
/// ```
pub fn format_micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=999_999 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// The date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(m <= 2), m, d)
}

/// `YYYY-MM-DDTHH:MM[:SS[.mmm]]` (also with a space for the `T`; an HTML `datetime-local`
/// value), read as UTC, or plain milliseconds, as milliseconds since the Unix epoch; `None` for
/// anything else, or a date before 1970 or after 9999.
///
/// ```
/// use workflow_runtime::inspect::parse_time;
/// assert_eq!(parse_time("2000-02-29T00:00"), Some(951_782_400_000));
/// assert_eq!(parse_time("2000-02-29 00:00:01.5"), Some(951_782_401_500));
/// assert_eq!(parse_time("tomorrow"), None);
/// ```
pub fn parse_time(text: &str) -> Option<u64> {
    if let Ok(ms) = text.parse::<u64>() {
        return Some(ms);
    }
    let (date, clock) = text.split_once('T').or_else(|| text.split_once(' '))?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<u64>().ok());
    let (y, m, d) = (date.next()??, date.next()??, date.next()??);
    let mut clock = clock.splitn(3, ':').map(|p| p.parse::<f64>().ok());
    let (h, min) = (clock.next()??, clock.next()??);
    let s = clock.next().flatten().unwrap_or(0.0);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    if !(0.0..24.0).contains(&h) || !(0.0..60.0).contains(&min) || !(0.0..61.0).contains(&s) {
        return None;
    }
    // days_from_civil, the inverse of `civil`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400_000 + ((h * 3600.0 + min * 60.0 + s) * 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::{format_time as time, parse_time};

    #[test]
    fn times_read_back() {
        assert_eq!(time(0), "1970-01-01 00:00:00.000");
        assert_eq!(time(1_796_625_612_345), "2026-12-07 06:40:12.345");
        assert_eq!(time(951_782_400_000), "2000-02-29 00:00:00.000");
        assert_eq!(parse_time("2026-12-07T06:40:12.345"), Some(1_796_625_612_345));
        assert_eq!(parse_time("2000-02-29T00:00"), Some(951_782_400_000));
        assert_eq!(parse_time("1234"), Some(1234));
        for bad in [
            "",
            "2026-13-01T00:00",
            "2026-12-07",
            "2026-12-07T25:00",
            "1969-12-31T23:59",
            "x-y-zT1:2",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
