//! The `Range` header: byte ranges in RFC 9110's three forms, one or
//! several (a `multipart/byteranges` answer), on the stack.

use crate::request::{parse_u64, trim};

/// The most ranges one request is answered with: past it the whole file
/// goes (RFC 9110 §14.3 lets a server ignore a Range of many ranges, a
/// way to make it do much work for little).
pub const MAX_RANGES: usize = 16;

/// What a `Range` header asks of a file of a given length.
// Several ranges take 264 bytes, held on the stack for one request and
// never stored: boxing them would allocate for every such request.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable range (absent, malformed, more than [`MAX_RANGES`], or
    /// overlapping): send the whole file with 200, as RFC 9110 lets a
    /// server do.
    Whole,
    /// Bytes `start ..= end` (206).
    Part {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// Several ranges, in the order asked (206, `multipart/byteranges`).
    Parts(Ranges),
    /// No range starts inside the file (416).
    Unsatisfiable,
}

/// Up to [`MAX_RANGES`] byte ranges, `start ..= end` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ranges {
    ranges: [(u64, u64); MAX_RANGES],
    len: usize,
}

impl Ranges {
    /// The ranges, in the order asked.
    pub fn as_slice(&self) -> &[(u64, u64)] {
        &self.ranges[..self.len]
    }
}

/// Interprets `header` (`bytes=` and ranges `a-b`, `a-` or `-n`, split by
/// commas) for a file of `len` bytes. Ranges that start past the end are
/// dropped, as RFC 9110 has it; a header none of whose ranges is left is
/// unsatisfiable.
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
    let mut found = Ranges {
        ranges: [(0, 0); MAX_RANGES],
        len: 0,
    };
    for one in spec.split(|&b| b == b',') {
        let one = trim(one);
        if one.is_empty() {
            // `bytes=0-1, ,5-6`: empty elements are allowed by the list
            // syntax.
            continue;
        }
        match parse_one(one, len) {
            ByteRange::Part { start, end } => {
                let overlaps = found
                    .as_slice()
                    .iter()
                    .any(|&(s, e)| start <= e && s <= end);
                if overlaps || found.len == MAX_RANGES {
                    return ByteRange::Whole;
                }
                found.ranges[found.len] = (start, end);
                found.len += 1;
            }
            ByteRange::Unsatisfiable => {}
            ByteRange::Whole | ByteRange::Parts(_) => return ByteRange::Whole,
        }
    }
    match found.as_slice() {
        [] if spec.iter().all(|&b| b == b',' || b.is_ascii_whitespace()) => ByteRange::Whole,
        [] => ByteRange::Unsatisfiable,
        &[(start, end)] => ByteRange::Part { start, end },
        _ => ByteRange::Parts(found),
    }
}

/// One range of a `Range` header: a part, unsatisfiable, or `Whole` for
/// one that does not parse.
fn parse_one(spec: &[u8], len: u64) -> ByteRange {
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
            "bytes=0-1,5",
            "bytes=5",
            "bytes=",
            "",
        ] {
            assert_eq!(p(ignored, 100), Whole, "{ignored}");
        }
    }

    #[test]
    fn several_ranges_in_the_order_asked() {
        let parts = |h: &str| match p(h, 100) {
            Parts(r) => r.as_slice().to_vec(),
            other => panic!("{h}: {other:?}"),
        };
        assert_eq!(parts("bytes=0-1,5-6"), [(0, 1), (5, 6)]);
        assert_eq!(parts("bytes=50-59, 0-9"), [(50, 59), (0, 9)]);
        assert_eq!(parts("bytes=0-0,-3"), [(0, 0), (97, 99)]);
        assert_eq!(parts("bytes=0-1, ,5-6"), [(0, 1), (5, 6)]);
        // Those past the end are dropped; one left is a plain range.
        assert_eq!(p("bytes=0-9,200-300", 100), Part { start: 0, end: 9 });
        assert_eq!(p("bytes=200-,300-", 100), Unsatisfiable);
        // Overlapping, or too many: the whole file.
        assert_eq!(p("bytes=0-9,5-15", 100), Whole);
        assert_eq!(p("bytes=90-,-3", 100), Whole);
        let many: Vec<String> = (0..17).map(|i| format!("{}-{}", i * 2, i * 2)).collect();
        assert_eq!(p(&format!("bytes={}", many.join(",")), 100), Whole);
        let sixteen = format!("bytes={}", many[..16].join(","));
        assert_eq!(parts(&sixteen).len(), 16);
    }
}
