//! Writing the pages: escaping, links relative to wherever the router is mounted, times, and
//! the layout every page shares.

use std::fmt::{self, Write};

/// Text escaped for HTML content and double-quoted attributes.
pub(crate) struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A path segment or query value, percent-encoded (everything but RFC 3986's unreserved
/// characters).
pub(crate) struct Pct<'a>(pub &'a str);

impl fmt::Display for Pct<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS.mmm` (UTC).
pub(crate) fn time(ms: u64) -> String {
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

/// `YYYY-MM-DDTHH:MM[:SS]` (an HTML `datetime-local` value, read as UTC) or plain
/// milliseconds, as milliseconds since the Unix epoch.
pub(crate) fn parse_time(text: &str) -> Option<u64> {
    if let Ok(ms) = text.parse::<u64>() {
        return Some(ms);
    }
    let (date, clock) = text.split_once('T')?;
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

/// Which page of the navigation a page is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Workflows,
    Instances,
}

/// A whole page: `base` leads from the page back to the router's root (`./`, `../`…), so
/// that the pages work wherever the application mounts the router.
pub(crate) fn page(title: &str, base: &str, nav: Nav, body: &str) -> String {
    let current = |n: Nav| if n == nav { " aria-current=\"page\"" } else { "" };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · workflows</title>\
         <link rel=\"stylesheet\" href=\"{base}assets/app.css\">\
         <script src=\"{base}assets/app.js\" defer></script></head>\
         <body data-base=\"{base}\"><header><nav aria-label=\"Main\"><a class=\"brand\" href=\"{base}\">workflows</a>\
         <a href=\"{base}\"{w}>Workflows</a><a href=\"{base}instances\"{i}>Instances</a></nav></header>\
         <main id=\"main\">{body}</main></body></html>\n",
        title = Esc(title),
        w = current(Nav::Workflows),
        i = current(Nav::Instances),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_encodes() {
        assert_eq!(
            Esc("<a href=\"x\">'&'</a>").to_string(),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(Pct("o-1/ä b?").to_string(), "o-1%2F%C3%A4%20b%3F");
    }

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
