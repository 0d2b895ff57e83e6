//! How long clients and caches may keep a file (nginx's `expires`): the
//! setting, its text form, and the `Expires` and `Cache-Control` headers
//! it puts on a file's answer. Uses the HTTP-date writer; writes without
//! allocating.

use crate::date::write_imf_fixdate;
use std::fmt::Write;
use std::time::Duration;

/// nginx's `expires`: what `Expires` and `Cache-Control` a file's answers
/// (200, 206 and 304) carry.
///
/// ```
/// use gyre_fileserver::Expires;
/// use std::time::Duration;
///
/// assert_eq!("1h30m".parse(), Ok(Expires::After(Duration::from_secs(5400))));
/// assert_eq!("-1".parse(), Ok(Expires::Before(Duration::from_secs(1))));
/// assert_eq!("modified +24h".parse(), Ok(Expires::AfterModified(Duration::from_secs(86_400))));
/// assert_eq!("max".parse(), Ok(Expires::Max));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expires {
    /// `expires 30d`: `Expires` that long from now, and
    /// `Cache-Control: max-age` of it.
    After(Duration),
    /// `expires -1`: `Expires` that long ago, and `Cache-Control:
    /// no-cache` (every use revalidated).
    Before(Duration),
    /// `expires modified +24h`: `Expires` that long after the file's
    /// modification time, `max-age` the time left until then, and
    /// `no-cache` once it has passed.
    AfterModified(Duration),
    /// `expires epoch`: `Expires: Thu, 01 Jan 1970 00:00:01 GMT` and
    /// `Cache-Control: no-cache`.
    Epoch,
    /// `expires max`: `Expires: Thu, 31 Dec 2037 23:55:55 GMT` and
    /// `Cache-Control: max-age=315360000` (ten years).
    Max,
}

/// nginx's date for `expires max`.
const MAX_DATE: &str = "Thu, 31 Dec 2037 23:55:55 GMT";
/// nginx's `max-age` for `expires max`: ten years.
const MAX_AGE: u64 = 315_360_000;

impl Expires {
    /// Writes the two headers, for a file modified at `modified` and an
    /// answer made at `now` (both in seconds since the epoch).
    pub(crate) fn write_headers(self, heads: &mut impl Write, now: u64, modified: u64) {
        let (expires, max_age) = match self {
            Expires::After(d) => (now.saturating_add(d.as_secs()), Some(d.as_secs())),
            Expires::Before(d) => (now.saturating_sub(d.as_secs()), None),
            Expires::AfterModified(d) => {
                let at = modified.saturating_add(d.as_secs());
                (at, at.checked_sub(now).filter(|&left| left > 0))
            }
            Expires::Epoch => (1, None),
            Expires::Max => {
                let _ = write!(
                    heads,
                    "Expires: {MAX_DATE}\r\nCache-Control: max-age={MAX_AGE}\r\n"
                );
                return;
            }
        };
        let _ = heads.write_str("Expires: ");
        let _ = write_imf_fixdate(heads, expires);
        let _ = match max_age {
            Some(secs) => write!(heads, "\r\nCache-Control: max-age={secs}\r\n"),
            None => heads.write_str("\r\nCache-Control: no-cache\r\n"),
        };
    }
}

impl std::str::FromStr for Expires {
    type Err = String;

    /// nginx's forms: a time (`30d`, `1h30m`, `-1`; units `ms`, `s`, `m`,
    /// `h`, `d`, `w`, `M` (30 days), `y` (365 days), seconds without
    /// one), `modified` and a time, `epoch`, or `max`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text {
            "epoch" => return Ok(Expires::Epoch),
            "max" => return Ok(Expires::Max),
            _ => {}
        }
        if let Some(rest) = text.strip_prefix("modified") {
            let rest = rest.trim_start();
            let time = rest.strip_prefix('+').unwrap_or(rest);
            return Ok(Expires::AfterModified(parse_time(time)?));
        }
        match text.strip_prefix('-') {
            Some(past) => Ok(Expires::Before(parse_time(past)?)),
            None => Ok(Expires::After(parse_time(
                text.strip_prefix('+').unwrap_or(text),
            )?)),
        }
    }
}

/// An nginx time: numbers each with a unit, in any order (`1h30m`), a
/// bare number being seconds.
fn parse_time(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a time (such as 30d, 12h, 1h30m, 600)");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total_ms: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_ms: u64 = if let Some(r) = rest.strip_prefix("ms") {
            rest = r;
            1
        } else {
            let unit = rest.chars().next();
            let ms = match unit {
                None => 1000,
                Some('s') => 1000,
                Some('m') => 60_000,
                Some('h') => 3_600_000,
                Some('d') => 86_400_000,
                Some('w') => 7 * 86_400_000,
                Some('M') => 30 * 86_400_000,
                Some('y') => 365 * 86_400_000,
                Some(_) => return Err(bad()),
            };
            if unit.is_some() {
                rest = &rest[1..];
            }
            ms
        };
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(e: Expires, now: u64, modified: u64) -> String {
        let mut out = String::new();
        e.write_headers(&mut out, now, modified);
        out
    }

    // Sun, 06 Nov 1994 08:49:37 GMT
    const NOW: u64 = 784_111_777;

    #[test]
    fn times_parse_as_nginx_writes_them() {
        let after = |s: u64| Ok(Expires::After(Duration::from_secs(s)));
        assert_eq!("30d".parse(), after(30 * 86_400));
        assert_eq!("600".parse(), after(600));
        assert_eq!("+1h30m".parse(), after(5400));
        assert_eq!("1y".parse(), after(365 * 86_400));
        assert_eq!("2M".parse(), after(60 * 86_400));
        assert_eq!(
            "1500ms".parse(),
            Ok(Expires::After(Duration::from_millis(1500)))
        );
        assert_eq!("-1".parse(), Ok(Expires::Before(Duration::from_secs(1))));
        assert_eq!(
            "modified 1d".parse(),
            Ok(Expires::AfterModified(Duration::from_secs(86_400)))
        );
        assert_eq!("epoch".parse(), Ok(Expires::Epoch));
        for bad in [
            "",
            "d",
            "1x",
            "1h-",
            "modified",
            "99999999999999999999y",
            "--1",
        ] {
            assert!(bad.parse::<Expires>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn headers_as_nginx_sends_them() {
        assert_eq!(
            headers(Expires::After(Duration::from_secs(3600)), NOW, 0),
            "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\nCache-Control: max-age=3600\r\n"
        );
        assert_eq!(
            headers(Expires::Before(Duration::from_secs(1)), NOW, 0),
            "Expires: Sun, 06 Nov 1994 08:49:36 GMT\r\nCache-Control: no-cache\r\n"
        );
        assert_eq!(
            headers(Expires::Epoch, NOW, 0),
            "Expires: Thu, 01 Jan 1970 00:00:01 GMT\r\nCache-Control: no-cache\r\n"
        );
        assert_eq!(
            headers(Expires::Max, NOW, 0),
            "Expires: Thu, 31 Dec 2037 23:55:55 GMT\r\nCache-Control: max-age=315360000\r\n"
        );
        // From the modification time: the time left, or no-cache once
        // it has passed.
        let day = Expires::AfterModified(Duration::from_secs(86_400));
        assert_eq!(
            headers(day, NOW, NOW - 3600),
            "Expires: Mon, 07 Nov 1994 07:49:37 GMT\r\nCache-Control: max-age=82800\r\n"
        );
        assert!(headers(day, NOW, NOW - 86_400).ends_with("no-cache\r\n"));
    }
}
