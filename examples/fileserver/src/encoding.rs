//! Precompressed files (nginx's `gzip_static`, Caddy's `precompressed`):
//! the encodings a server may serve in place of a file, each a sibling
//! file with its suffix (`app.js.br` beside `app.js`), and which of them a
//! request's `Accept-Encoding` takes (RFC 9110 §12.5.3). Uses the request
//! head's header lines; allocates nothing.

use crate::request::header_values;

/// A content coding whose precompressed sibling a server may send.
///
/// ```
/// use gyre_fileserver::Encoding;
///
/// assert_eq!(Encoding::Brotli.token(), "br");
/// assert_eq!(Encoding::Gzip.suffix(), ".gz");
/// assert_eq!("zstd".parse::<Encoding>(), Ok(Encoding::Zstd));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `gzip`, from `<file>.gz`.
    Gzip,
    /// `br` (Brotli), from `<file>.br`.
    Brotli,
    /// `zstd` (Zstandard), from `<file>.zst`.
    Zstd,
}

impl Encoding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
        }
    }

    /// The suffix of the precompressed sibling.
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::Gzip => ".gz",
            Encoding::Brotli => ".br",
            Encoding::Zstd => ".zst",
        }
    }
}

impl std::str::FromStr for Encoding {
    type Err = String;

    /// A token (`gzip`, `br`, `zstd`) in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Encoding::Gzip, Encoding::Brotli, Encoding::Zstd]
            .into_iter()
            .find(|e| e.token().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("{s:?}: not gzip, br or zstd"))
    }
}

/// The encodings a request takes, in the server's order of preference: at
/// most one of each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    order: [Option<Encoding>; 3],
}

impl Accepted {
    /// None: only the file itself.
    pub const NONE: Accepted = Accepted { order: [None; 3] };

    /// The encodings, best first.
    pub fn iter(&self) -> impl Iterator<Item = Encoding> + '_ {
        self.order.iter().flatten().copied()
    }
}

/// Which of `offered` (the server's preference, best first) the request
/// whose head is `head` accepts: a coding is accepted when the request's
/// `Accept-Encoding` names it, or `*`, with a weight above 0 (its own
/// entry deciding over `*`). No `Accept-Encoding` at all takes none:
/// RFC 9110 lets a server send any coding then, but a client that sends
/// no header (curl without `--compressed`) wants the file as it is.
pub fn accepted(head: &[u8], offered: &[Encoding]) -> Accepted {
    let mut out = Accepted::NONE;
    if offered.is_empty() {
        return out;
    }
    let mut taken = 0;
    for &encoding in offered {
        let (mut named, mut star) = (None, None);
        for value in header_values(head, b"accept-encoding") {
            for item in value.split(|&b| b == b',') {
                let (token, weight) = coding_and_weight(item);
                if token.eq_ignore_ascii_case(encoding.token().as_bytes()) {
                    named = Some(weight);
                } else if token == b"*" {
                    star = Some(weight);
                }
            }
        }
        let again = out.order.contains(&Some(encoding));
        if named.or(star).is_some_and(|w| w > 0) && !again && taken < out.order.len() {
            out.order[taken] = Some(encoding);
            taken += 1;
        }
    }
    out
}

/// One `Accept-Encoding` element: its coding, trimmed, and its weight in
/// thousandths (1000 without a `q`; 0 for a weight that does not parse,
/// so a malformed element takes nothing).
fn coding_and_weight(item: &[u8]) -> (&[u8], u32) {
    let mut parts = item.split(|&b| b == b';');
    let token = trim(parts.next().unwrap_or_default());
    let mut weight = 1000;
    for param in parts {
        let param = trim(param);
        if param.len() >= 2 && param[..2].eq_ignore_ascii_case(b"q=") {
            weight = parse_qvalue(trim(&param[2..])).unwrap_or(0);
        }
    }
    (token, weight)
}

/// A qvalue (`0`, `0.5`, `1.000`; RFC 9110 §12.4.2) in thousandths.
fn parse_qvalue(v: &[u8]) -> Option<u32> {
    let (whole, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    if whole.len() != 1 || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    match whole[0] {
        b'0' => Some(thousandths),
        b'1' if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::*;

    fn take(header: &str, offered: &[Encoding]) -> Vec<Encoding> {
        let head = format!("GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {header}\r\n\r\n");
        accepted(head.as_bytes(), offered).iter().collect()
    }

    #[test]
    fn the_servers_order_among_what_the_client_takes() {
        let all = [Zstd, Brotli, Gzip];
        assert_eq!(
            take("gzip, deflate, br, zstd", &all),
            vec![Zstd, Brotli, Gzip]
        );
        assert_eq!(
            take("gzip, deflate, br", &[Gzip, Brotli]),
            vec![Gzip, Brotli]
        );
        assert_eq!(take("GZIP", &all), vec![Gzip]);
        assert_eq!(take("identity", &all), vec![]);
        assert_eq!(take("deflate", &all), vec![]);
    }

    #[test]
    fn weights_decide_and_zero_refuses() {
        let all = [Brotli, Gzip];
        assert_eq!(take("br;q=0, gzip", &all), vec![Gzip]);
        assert_eq!(take("br; q=0.000, gzip;q=0.001", &all), vec![Gzip]);
        assert_eq!(take("*", &all), vec![Brotli, Gzip]);
        assert_eq!(take("*;q=0", &all), vec![]);
        assert_eq!(take("*, br;q=0", &all), vec![Gzip], "its own entry decides");
        assert_eq!(take("br;q=1.0", &all), vec![Brotli]);
        // Malformed weights take nothing.
        assert_eq!(take("br;q=2, gzip;q=0.5.1", &all), vec![]);
        assert_eq!(take("br;q=", &all), vec![]);
    }

    #[test]
    fn no_header_and_no_offer_take_nothing() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(accepted(head, &[Gzip]), Accepted::NONE);
        let head = b"GET / HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n";
        assert_eq!(accepted(head, &[]), Accepted::NONE);
        // Two headers are one list.
        let head = b"GET / HTTP/1.1\r\nAccept-Encoding: br;q=0\r\nAccept-Encoding: gzip\r\n\r\n";
        assert_eq!(
            accepted(head, &[Brotli, Gzip]).iter().collect::<Vec<_>>(),
            vec![Gzip]
        );
    }

    #[test]
    fn tokens_parse_in_any_case() {
        assert_eq!(" BR ".parse::<Encoding>(), Ok(Brotli));
        assert!("deflate".parse::<Encoding>().is_err());
    }
}
