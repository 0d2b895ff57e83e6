//! The `Range` header: one byte range, in RFC 9110's three forms.

use crate::request::{parse_u64, trim};

/// What a `Range` header asks of a file of a given length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable range (absent, malformed, or several ranges): send the
    /// whole file with 200, as RFC 9110 lets a server do.
    Whole,
    /// Bytes `start ..= end` (206).
    Part {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// The range starts past the end (416).
    Unsatisfiable,
}

/// Interprets `header` (`bytes=a-b`, `bytes=a-` or `bytes=-n`) for a file
/// of `len` bytes.
pub fn parse(header: Option<&[u8]>, len: u64) -> ByteRange {
    let Some(header) = header else {
        return ByteRange::Whole;
    };
    let header = trim(header);
    let Some(spec) = header
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case(b"bytes="))
        .map(|_| trim(&header[6..]))
    else {
        return ByteRange::Whole;
    };
    if spec.contains(&b',') {
        return ByteRange::Whole;
    }
    let Some(dash) = memchr::memchr(b'-', spec) else {
        return ByteRange::Whole;
    };
    let (first, last) = (trim(&spec[..dash]), trim(&spec[dash + 1..]));
    if first.is_empty() {
        // Suffix: the last n bytes.
        return match parse_u64(last) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if len == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Part {
                start: len - n.min(len),
                end: len - 1,
            },
            None => ByteRange::Whole,
        };
    }
    let Some(start) = parse_u64(first) else {
        return ByteRange::Whole;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match parse_u64(last) {
            Some(end) if end >= start => end,
            _ => return ByteRange::Whole,
        }
    };
    if start >= len {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Part {
        start,
        end: end.min(len - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, ByteRange::*};

    fn p(h: &str, len: u64) -> super::ByteRange {
        parse(Some(h.as_bytes()), len)
    }

    #[test]
    fn the_three_forms() {
        assert_eq!(p("bytes=0-9", 100), Part { start: 0, end: 9 });
        assert_eq!(p("bytes=90-", 100), Part { start: 90, end: 99 });
        assert_eq!(p("bytes=50-1000", 100), Part { start: 50, end: 99 });
        assert_eq!(p("bytes=-10", 100), Part { start: 90, end: 99 });
        assert_eq!(p("bytes=-1000", 100), Part { start: 0, end: 99 });
        assert_eq!(
            p("Bytes = 5-5", 100),
            Whole,
            "spaces before '=' are not the syntax"
        );
        assert_eq!(p("BYTES=5-5", 100), Part { start: 5, end: 5 });
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(p("bytes=100-", 100), Unsatisfiable);
        assert_eq!(p("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(p("bytes=-0", 100), Unsatisfiable);
        assert_eq!(p("bytes=0-", 0), Unsatisfiable);
        assert_eq!(p("bytes=-5", 0), Unsatisfiable);
        assert_eq!(parse(None, 100), Whole);
        for ignored in [
            "bytes=9-1",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=5",
            "",
        ] {
            assert_eq!(p(ignored, 100), Whole, "{ignored}");
        }
    }
}
