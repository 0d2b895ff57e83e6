//! Parsing an HTTP/1.x request head: the request line and the few headers
//! a static file server acts on.

use crate::status::Status;
use memchr::memmem;

/// Longest request head accepted; longer is answered 431 and closed.
pub const MAX_HEAD: usize = 8 * 1024;

/// The methods served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: the same headers, no body.
    Head,
    /// Anything else (answered 405).
    Other,
}

/// What the server needs from a request head.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: Method,
    /// The target's path, still percent-encoded, without query or fragment.
    pub path: &'a [u8],
    /// HTTP/1.1 (true) or HTTP/1.0.
    pub http11: bool,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The `Range` header's value, if any.
    pub range: Option<&'a [u8]>,
    /// Bytes of request body that follow the head (and are skipped).
    pub body_len: u64,
    /// Whether it has a conditional header (`If-…`), for
    /// [`header_values`] to find.
    pub conditional: bool,
}

/// Where the head in `buf` ends (the index after its blank line), if it is
/// all there. Accepts bare LF line ends, as RFC 9112 allows.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = memmem::find(buf, b"\r\n\r\n").map(|i| i + 4);
    let lf = memmem::find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses a complete head (as delimited by [`head_end`]).
pub fn parse(head: &[u8]) -> Result<RequestHead<'_>, Status> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().ok_or(Status::BadRequest)?;
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Status::BadRequest);
    };
    if method.is_empty() || !method.iter().all(|b| b.is_ascii_uppercase()) {
        return Err(Status::BadRequest);
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        v if v.starts_with(b"HTTP/") => return Err(Status::VersionNotSupported),
        _ => return Err(Status::BadRequest),
    };
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => Method::Other,
    };
    let path = origin_path(target)?;

    let (mut close, mut keep_alive_token, mut conditional) = (false, false, false);
    let (mut range, mut body_len) = (None, None::<u64>);
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(Status::BadRequest); // obsolete line folding
        }
        let colon = memchr::memchr(b':', line).ok_or(Status::BadRequest)?;
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
            return Err(Status::BadRequest);
        }
        if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"range") {
            range = Some(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_u64(value).ok_or(Status::BadRequest)?;
            if body_len.is_some_and(|m| m != n) {
                return Err(Status::BadRequest);
            }
            body_len = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(Status::NotImplemented);
        } else if name.len() > 3 && name[..3].eq_ignore_ascii_case(b"if-") {
            conditional = true;
        }
    }
    Ok(RequestHead {
        method,
        path,
        http11,
        keep_alive: if http11 {
            !close
        } else {
            keep_alive_token && !close
        },
        range,
        body_len: body_len.unwrap_or(0),
        conditional,
    })
}

/// The values of every header line named `name` (in lower case) in the
/// complete, well-formed head `head`, in order, trimmed.
pub fn header_values<'a>(head: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    head.split(|&b| b == b'\n')
        .skip(1)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
        .filter_map(move |line| {
            let colon = memchr::memchr(b':', line)?;
            line[..colon]
                .eq_ignore_ascii_case(name)
                .then(|| trim(&line[colon + 1..]))
        })
}

/// The path of an origin-form (`/a/b?q`) or absolute-form
/// (`http://host/a/b`) target, without query or fragment.
fn origin_path(target: &[u8]) -> Result<&[u8], Status> {
    let target = match target.iter().position(|&b| b == b'?' || b == b'#') {
        Some(i) => &target[..i],
        None => target,
    };
    if target.first() == Some(&b'/') {
        return Ok(target);
    }
    for scheme in [&b"http://"[..], b"https://"] {
        if target.len() > scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &target[scheme.len()..];
            return Ok(match memchr::memchr(b'/', rest) {
                Some(i) => &rest[i..],
                None => b"/",
            });
        }
    }
    Err(Status::BadRequest)
}

pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &s[start..end]
}

/// A decimal number of up to 19 digits (no sign, no spaces).
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_keep_alive_get_with_range() {
        let raw = b"GET /dir/a%20b.txt?x=1 HTTP/1.1\r\nHost: h\r\nRange:  bytes=0-9 \r\n\r\n";
        assert_eq!(head_end(raw), Some(raw.len()));
        let head = parse(raw).unwrap();
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.path, b"/dir/a%20b.txt");
        assert!(head.http11 && head.keep_alive);
        assert_eq!(head.range, Some(&b"bytes=0-9"[..]));
        assert_eq!(head.body_len, 0);
    }

    #[test]
    fn connection_rules_per_version() {
        let close11 = parse(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").unwrap();
        assert!(!close11.keep_alive);
        let plain10 = parse(b"HEAD / HTTP/1.0\n\n").unwrap();
        assert!(!plain10.keep_alive && plain10.method == Method::Head);
        let ka10 = parse(b"GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n").unwrap();
        assert!(ka10.keep_alive);
    }

    #[test]
    fn absolute_form_and_bodies() {
        let head = parse(b"POST http://host:80 HTTP/1.1\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(
            (head.method, head.path, head.body_len),
            (Method::Other, &b"/"[..], 5)
        );
    }

    #[test]
    fn malformed_heads_are_refused() {
        for raw in [
            &b"GET /\r\n\r\n"[..],
            b"get / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET relative HTTP/1.1\r\n\r\n",
            b"GET / FTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            assert_eq!(
                parse(raw),
                Err(Status::BadRequest),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        assert_eq!(
            parse(b"GET / HTTP/2.0\r\n\r\n"),
            Err(Status::VersionNotSupported)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(Status::NotImplemented)
        );
    }
}
