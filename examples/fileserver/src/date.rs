//! HTTP dates without a date library: the IMF-fixdate the server writes
//! (`Sun, 06 Nov 1994 08:49:37 GMT`, in `Date` and `Last-Modified`), and
//! the parser of the three forms RFC 9110 §5.6.7 has recipients accept
//! (IMF-fixdate, RFC 850's `Sunday, 06-Nov-94 08:49:37 GMT` and C's
//! asctime `Sun Nov  6 08:49:37 1994`), for the conditional headers.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Formats `t` as an IMF-fixdate.
pub fn imf_fixdate(t: SystemTime) -> String {
    let mut out = String::with_capacity(29);
    let _ = write_imf_fixdate(
        &mut out,
        t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    );
    out
}

/// Writes `secs` (since the Unix epoch) as an IMF-fixdate into `out`,
/// allocating nothing.
pub fn write_imf_fixdate(out: &mut impl fmt::Write, secs: u64) -> fmt::Result {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    write!(
        out,
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The seconds since the Unix epoch an HTTP-date names, in any of its
/// three forms; `None` for anything else (a recipient ignores such a
/// date). An RFC 850 date's two-digit year is the nearest one not more
/// than 50 years ahead of `now_year`.
pub fn parse_http_date(s: &[u8], now_year: i64) -> Option<u64> {
    // ASCII only, so the byte offsets below are character boundaries.
    if !s.is_ascii() {
        return None;
    }
    let s = std::str::from_utf8(s).ok()?;
    let spaces_at = |s: &str, at: &[usize]| at.iter().all(|&i| s.as_bytes()[i] == b' ');
    let (y, mon, d, time) = if let Some((_, rest)) = s.split_once(", ") {
        if rest.len() == 24 && spaces_at(rest, &[2, 6, 11]) {
            // IMF-fixdate: `06 Nov 1994 08:49:37 GMT`.
            let year = number(&rest[7..11])?;
            (year, &rest[3..6], &rest[..2], gmt_time(&rest[12..])?)
        } else {
            // RFC 850: `06-Nov-94 08:49:37 GMT`.
            let (date, time) = rest.split_once(' ')?;
            let mut parts = date.split('-');
            let (d, mon, yy) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || yy.len() != 2 {
                return None;
            }
            let mut year = now_year - now_year.rem_euclid(100) + number(yy)?;
            if year > now_year + 50 {
                year -= 100;
            }
            (year, mon, d, gmt_time(time)?)
        }
    } else {
        // asctime: `Sun Nov  6 08:49:37 1994`.
        if s.len() != 24 || !spaces_at(s, &[3, 7, 10, 19]) {
            return None;
        }
        let time = hms(&s[11..19])?;
        (number(&s[20..])?, &s[4..7], s[8..10].trim_start(), time)
    };
    let month = MONTHS.iter().position(|&m| m == mon)? as u32 + 1;
    let day = u32::try_from(number(d)?).ok()?;
    if !(1..=days_in_month(y, month)).contains(&day) || y < 1970 {
        return None;
    }
    let days = days_from_civil(y, month, day);
    Some(days as u64 * 86_400 + time)
}

/// `08:49:37 GMT` as seconds into the day.
fn gmt_time(s: &str) -> Option<u64> {
    hms(s.strip_suffix(" GMT")?)
}

/// `08:49:37` as seconds into the day (a leap second's 60 allowed).
fn hms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, sec) = (number(&s[..2])?, number(&s[3..5])?, number(&s[6..])?);
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some((h * 3600 + m * 60 + sec) as u64)
}

/// A run of ASCII digits, nothing else.
fn number(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's
/// civil-from-days algorithm, proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a date (the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The current year, for [`parse_http_date`]'s two-digit years.
pub fn current_year() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_from_days((secs / 86_400) as i64).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        let at = |s| imf_fixdate(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(1_795_305_600), "Sun, 22 Nov 2026 00:00:00 GMT");
    }

    #[test]
    fn the_three_forms_parse_to_the_same_instant() {
        let p = |s: &str| parse_http_date(s.as_bytes(), 2026);
        assert_eq!(p("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(p("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(p("Sun Nov  6 08:49:37 1994"), Some(784_111_777));
        assert_eq!(p("Tue, 29 Feb 2000 00:00:00 GMT"), Some(951_782_400));
        // Two-digit years: the nearest not more than 50 years ahead.
        assert_eq!(p("Tuesday, 01-Jan-80 00:00:00 GMT"), Some(315_532_800));
        assert_eq!(
            p("Monday, 01-Jan-35 00:00:00 GMT"),
            Some(days_from_civil(2035, 1, 1) as u64 * 86_400)
        );
    }

    #[test]
    fn every_second_round_trips() {
        for secs in (0..4_000_000_000u64).step_by(86_399 * 37 + 13) {
            let text = imf_fixdate(UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(parse_http_date(text.as_bytes(), 2026), Some(secs), "{text}");
        }
    }

    #[test]
    fn anything_else_is_not_a_date() {
        for bad in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov  6 08:49:37 94",
            "Sun, 06 Nov 1994 08:49:37 GMT\u{e9}",
        ] {
            assert_eq!(parse_http_date(bad.as_bytes(), 2026), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_as_a_date_or_none_without_panicking(s in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let _ = parse_http_date(&s, 2026);
        }
    }
}
