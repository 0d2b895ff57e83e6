//! Conditional requests (RFC 9110 §13) for a static file: the validators
//! every answer carries (a strong `ETag` made, as nginx makes it, of the
//! file's modification time and length, and `Last-Modified`), and the
//! evaluation of a request's `If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since` and `If-Range` against them, in
//! the RFC's order. A precompressed sibling sent in a file's place is
//! another representation, so its tag names its coding
//! (`"5f3c1a2b-1000-br"`): a cache never takes one for the other. Uses
//! the request head's header lines, the HTTP-date parser and the
//! encodings; allocates nothing.

use crate::date::parse_http_date;
use crate::encoding::Encoding;
use crate::request::{header_values, Method};
use std::fmt;

/// What a file's answer is validated by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validators {
    /// The file's modification time, in whole seconds since the epoch.
    pub modified: u64,
    /// Its length.
    pub len: u64,
    /// The coding of the precompressed sibling sent in the file's place.
    pub encoding: Option<Encoding>,
}

impl Validators {
    /// The entity-tag, quotes and all (`"5f3c1a2b-1000"`, or
    /// `"5f3c1a2b-1000-gzip"` for a gzip sibling).
    pub fn etag(&self) -> Etag {
        let mut tag = Etag {
            buf: [0; 40],
            len: 0,
        };
        let coding = self.encoding.map_or("", Encoding::token);
        let dash = if coding.is_empty() { "" } else { "-" };
        let _ = fmt::Write::write_fmt(
            &mut tag,
            format_args!("\"{:x}-{:x}{dash}{coding}\"", self.modified, self.len),
        );
        tag
    }
}

/// An entity-tag formatted on the stack: two 64-bit hex numbers, a dash,
/// a coding of at most four letters after another, and two quotes fit in
/// 40 bytes.
#[derive(Clone, Copy)]
pub struct Etag {
    buf: [u8; 40],
    len: usize,
}

impl Etag {
    /// The tag as sent, quotes included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Write for Etag {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl fmt::Display for Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Made of ASCII only.
        f.write_str(std::str::from_utf8(self.as_bytes()).map_err(|_| fmt::Error)?)
    }
}

/// What the preconditions decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Answer as usual; `use_range` false when an `If-Range` did not match
    /// (the whole file then, 200, not the range asked for).
    Proceed {
        /// Whether the request's `Range` still applies.
        use_range: bool,
    },
    /// 304: the client's copy is current.
    NotModified,
    /// 412: an `If-Match` or `If-Unmodified-Since` did not hold.
    PreconditionFailed,
}

/// Evaluates the preconditions in the request head `head` (as parsed
/// before; `has_range`: it has a `Range`) against the file's `v`, in RFC
/// 9110 §13.2.2's order. Only GET and HEAD reach here.
pub fn evaluate(
    head: &[u8],
    method: Method,
    has_range: bool,
    v: &Validators,
    now_year: i64,
) -> Verdict {
    let etag = v.etag();
    let ours = &etag.as_bytes()[1..etag.len - 1];
    let date =
        |name: &[u8]| single(header_values(head, name)).and_then(|s| parse_http_date(s, now_year));
    let mut if_match = header_values(head, b"if-match").peekable();
    if if_match.peek().is_some() {
        if !if_match.any(|value| matches(value, ours, Compare::Strong)) {
            return Verdict::PreconditionFailed;
        }
    } else if date(b"if-unmodified-since").is_some_and(|since| v.modified > since) {
        return Verdict::PreconditionFailed;
    }
    let mut if_none_match = header_values(head, b"if-none-match").peekable();
    if if_none_match.peek().is_some() {
        if if_none_match.any(|value| matches(value, ours, Compare::Weak)) {
            return Verdict::NotModified;
        }
    } else if date(b"if-modified-since").is_some_and(|since| v.modified <= since) {
        return Verdict::NotModified;
    }
    let use_range = !has_range || method != Method::Get || if_range_holds(head, &etag, v, now_year);
    Verdict::Proceed { use_range }
}

/// Whether a range may be sent: no `If-Range`, or one that names the
/// current file exactly (its strong tag, or its `Last-Modified`). One
/// that does not, or more than one, gets the whole file.
fn if_range_holds(head: &[u8], etag: &Etag, v: &Validators, now_year: i64) -> bool {
    let mut values = header_values(head, b"if-range");
    let Some(value) = values.next() else {
        return true;
    };
    if values.next().is_some() {
        return false;
    }
    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        // Compared strongly: a weak tag never matches.
        value == etag.as_bytes()
    } else {
        parse_http_date(value, now_year) == Some(v.modified)
    }
}

/// The one value of a field that must have one; `None` for none or more.
fn single<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

#[derive(Clone, Copy, PartialEq)]
enum Compare {
    Strong,
    Weak,
}

/// Whether the entity-tag list `list` (`*`, or `"a", W/"b"`) names the
/// tag whose opaque part is `ours`. A list that stops parsing matches on
/// what came before its fault only.
fn matches(list: &[u8], ours: &[u8], compare: Compare) -> bool {
    let mut rest = list;
    loop {
        rest = skip(rest, |b| matches!(b, b' ' | b'\t' | b','));
        if rest.is_empty() {
            return false;
        }
        if rest[0] == b'*' {
            // The file exists, so any current representation matches.
            return true;
        }
        let weak = rest.starts_with(b"W/");
        if weak {
            rest = &rest[2..];
        }
        let Some(body) = rest.strip_prefix(b"\"") else {
            return false;
        };
        let Some(end) = memchr::memchr(b'"', body) else {
            return false;
        };
        if &body[..end] == ours && (compare == Compare::Weak || !weak) {
            return true;
        }
        rest = &body[end + 1..];
    }
}

fn skip(s: &[u8], what: impl Fn(u8) -> bool) -> &[u8] {
    let n = s.iter().take_while(|&&b| what(b)).count();
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::imf_fixdate;
    use std::time::{Duration, UNIX_EPOCH};

    const V: Validators = Validators {
        modified: 784_111_777,
        len: 4096,
        encoding: None,
    };

    fn head(lines: &[&str]) -> Vec<u8> {
        let mut h = b"GET /f HTTP/1.1\r\nHost: h\r\n".to_vec();
        for l in lines {
            h.extend_from_slice(l.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        h.extend_from_slice(b"\r\n");
        h
    }

    fn verdict(lines: &[&str]) -> Verdict {
        evaluate(&head(lines), Method::Get, false, &V, 2026)
    }

    const PROCEED: Verdict = Verdict::Proceed { use_range: true };

    #[test]
    fn the_etag_is_mtime_and_length_in_hex() {
        assert_eq!(V.etag().to_string(), "\"2ebc98a1-1000\"");
        let widest = Validators {
            modified: u64::MAX,
            len: u64::MAX,
            encoding: Some(Encoding::Zstd),
        };
        assert_eq!(widest.etag().as_bytes().len(), 40);
        let gzip = Validators {
            encoding: Some(Encoding::Gzip),
            ..V
        };
        assert_eq!(gzip.etag().to_string(), "\"2ebc98a1-1000-gzip\"");
    }

    #[test]
    fn if_none_match_compares_weakly_and_wins_over_if_modified_since() {
        assert_eq!(
            verdict(&[r#"If-None-Match: "2ebc98a1-1000""#]),
            Verdict::NotModified
        );
        assert_eq!(
            verdict(&[r#"If-None-Match: W/"2ebc98a1-1000""#]),
            Verdict::NotModified
        );
        assert_eq!(
            verdict(&[r#"If-None-Match: "x", "2ebc98a1-1000""#]),
            Verdict::NotModified
        );
        assert_eq!(
            verdict(&[r#"If-None-Match: "x""#, r#"If-None-Match: "2ebc98a1-1000""#]),
            Verdict::NotModified
        );
        assert_eq!(verdict(&["If-None-Match: *"]), Verdict::NotModified);
        assert_eq!(verdict(&[r#"If-None-Match: "2ebc98a1-1001""#]), PROCEED);
        // A current If-Modified-Since is not consulted when If-None-Match
        // is there.
        let now = imf_fixdate(UNIX_EPOCH + Duration::from_secs(V.modified));
        assert_eq!(
            verdict(&[
                r#"If-None-Match: "old""#,
                &format!("If-Modified-Since: {now}")
            ]),
            PROCEED
        );
    }

    #[test]
    fn if_modified_since_is_not_modified_at_or_after_the_files_time() {
        let at = |s| imf_fixdate(UNIX_EPOCH + Duration::from_secs(s));
        let ims = |s| format!("If-Modified-Since: {}", at(s));
        assert_eq!(verdict(&[&ims(V.modified)]), Verdict::NotModified);
        assert_eq!(verdict(&[&ims(V.modified + 60)]), Verdict::NotModified);
        assert_eq!(verdict(&[&ims(V.modified - 1)]), PROCEED);
        assert_eq!(
            verdict(&["If-Modified-Since: yesterday"]),
            PROCEED,
            "not a date: ignored"
        );
        assert_eq!(
            verdict(&[&ims(V.modified), &ims(V.modified)]),
            PROCEED,
            "two: ignored"
        );
    }

    #[test]
    fn if_match_and_if_unmodified_since_fail_with_412() {
        assert_eq!(verdict(&[r#"If-Match: "2ebc98a1-1000""#]), PROCEED);
        assert_eq!(verdict(&["If-Match: *"]), PROCEED);
        assert_eq!(
            verdict(&[r#"If-Match: W/"2ebc98a1-1000""#]),
            Verdict::PreconditionFailed,
            "strong only"
        );
        assert_eq!(
            verdict(&[r#"If-Match: "other""#]),
            Verdict::PreconditionFailed
        );
        let at = |s| imf_fixdate(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(
            verdict(&[&format!("If-Unmodified-Since: {}", at(V.modified))]),
            PROCEED
        );
        assert_eq!(
            verdict(&[&format!("If-Unmodified-Since: {}", at(V.modified - 1))]),
            Verdict::PreconditionFailed
        );
        // If-Match, when there, decides instead of If-Unmodified-Since.
        assert_eq!(
            verdict(&[
                r#"If-Match: "2ebc98a1-1000""#,
                &format!("If-Unmodified-Since: {}", at(0))
            ]),
            PROCEED
        );
        // 412 comes before 304.
        assert_eq!(
            verdict(&[r#"If-Match: "other""#, r#"If-None-Match: "2ebc98a1-1000""#]),
            Verdict::PreconditionFailed
        );
    }

    #[test]
    fn if_range_keeps_the_range_only_for_the_current_file() {
        let ranged = |lines: &[&str]| evaluate(&head(lines), Method::Get, true, &V, 2026);
        let whole = Verdict::Proceed { use_range: false };
        assert_eq!(ranged(&[]), PROCEED);
        assert_eq!(ranged(&[r#"If-Range: "2ebc98a1-1000""#]), PROCEED);
        assert_eq!(ranged(&[r#"If-Range: "2ebc98a1-fff""#]), whole);
        assert_eq!(
            ranged(&[r#"If-Range: W/"2ebc98a1-1000""#]),
            whole,
            "weak never matches"
        );
        let at = |s| imf_fixdate(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(ranged(&[&format!("If-Range: {}", at(V.modified))]), PROCEED);
        assert_eq!(
            ranged(&[&format!("If-Range: {}", at(V.modified + 1))]),
            whole,
            "exactly"
        );
        assert_eq!(ranged(&["If-Range: nonsense"]), whole);
        assert_eq!(
            ranged(&[
                r#"If-Range: "2ebc98a1-1000""#,
                r#"If-Range: "2ebc98a1-1000""#
            ]),
            whole
        );
        // Without a Range, If-Range says nothing.
        assert_eq!(verdict(&[r#"If-Range: "old""#]), PROCEED);
    }

    #[test]
    fn malformed_tag_lists_match_nothing_past_their_fault() {
        assert!(!matches(
            b"\"2ebc98a1-1000",
            b"2ebc98a1-1000",
            Compare::Weak
        ));
        assert!(!matches(b"2ebc98a1-1000", b"2ebc98a1-1000", Compare::Weak));
        assert!(matches(b" ,\"a\",W/\"b\"", b"b", Compare::Weak));
        assert!(!matches(b"\"a\" junk, \"b\"", b"b", Compare::Weak));
        assert!(!matches(b"", b"b", Compare::Weak));
    }

    proptest::proptest! {
        #[test]
        fn any_conditional_headers_give_a_verdict_without_panicking(
            names in proptest::collection::vec(0usize..5, 0..4),
            values in proptest::collection::vec(proptest::collection::vec(32u8..127, 0..40), 0..4),
            ranged: bool,
        ) {
            const NAMES: [&str; 5] = ["If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"];
            let lines: Vec<String> = names
                .iter()
                .zip(&values)
                .map(|(&n, v)| format!("{}: {}", NAMES[n], String::from_utf8_lossy(v)))
                .collect();
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let _ = evaluate(&head(&lines), Method::Get, ranged, &V, 2026);
        }
    }
}
