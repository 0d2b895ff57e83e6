//! One HTTPS GET, blocking, for the OAUTHBEARER key set's refresher
//! (Kafka's `sasl.oauthbearer.jwks.endpoint.url`): an identity provider's
//! JSON Web Key Set is fetched on the refresher's own thread, never on an
//! event loop. HTTP/1.1 with `Connection: close`, a body of at most
//! [`MAX_BODY`] (sized by `Content-Length`, chunked, or up to the close),
//! only status 200 taken, redirects not followed. The server is checked
//! against the given roots, or the system's bundle. Uses rustls (through
//! gyre-reactor's TLS settings) and std's sockets.

use gyre_reactor::{TlsConnector, TlsRoots};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The largest body taken: a key set is a few kilobytes.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// Where the system keeps its trusted roots, by distribution.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// An `https://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpsUrl {
    host: String,
    port: u16,
    path: String,
}

impl HttpsUrl {
    /// Parses `url`; only `https` is taken.
    pub(crate) fn parse(url: &str) -> Result<HttpsUrl, String> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("{url:?} is not an https:// URL"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        let path = path.split('#').next().unwrap_or("/").to_owned();
        if authority.contains('@') {
            return Err(format!("{url:?}: credentials in the URL are not taken"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: an unclosed [ in the host"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        let port = match port {
            None => 443,
            Some(p) => p
                .parse()
                .map_err(|_| format!("{url:?}: {p:?} is not a port"))?,
        };
        Ok(HttpsUrl {
            host: host.to_owned(),
            port,
            path,
        })
    }
}

/// Fetches one URL again and again with the same TLS settings.
#[derive(Debug, Clone)]
pub(crate) struct HttpsGet {
    /// The URL as given, for messages.
    given: String,
    url: HttpsUrl,
    tls: Arc<rustls::ClientConfig>,
    server_name: rustls::pki_types::ServerName<'static>,
    timeout: Duration,
}

impl HttpsGet {
    /// Ready to fetch `url`, trusting the roots in `ca_file` (PEM), or
    /// the system's bundle without one; each connect, read and write
    /// waits at most `timeout`, and the whole answer must come within
    /// three times it (a server that trickles its answer cannot hold the
    /// refresher).
    pub(crate) fn new(
        url: &str,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<HttpsGet, String> {
        let parsed = HttpsUrl::parse(url)?;
        let roots = match ca_file {
            Some(file) => TlsRoots::from_pem_file(file).map_err(|e| e.to_string())?,
            None => SYSTEM_BUNDLES
                .iter()
                .find_map(|f| TlsRoots::from_pem_file(f).ok())
                .ok_or_else(|| {
                    format!(
                        "no system CA bundle (looked for {}): name one with the CA file setting",
                        SYSTEM_BUNDLES.join(", ")
                    )
                })?,
        };
        let connector = TlsConnector::builder(parsed.host.clone())
            .roots(roots)
            .build()
            .map_err(|e| e.to_string())?;
        let server_name = rustls::pki_types::ServerName::try_from(parsed.host.clone())
            .map_err(|e| format!("{url:?}: the host is not a DNS name or address: {e}"))?;
        Ok(HttpsGet {
            given: url.to_owned(),
            url: parsed,
            tls: connector.config().clone(),
            server_name,
            timeout,
        })
    }

    /// The URL, as given.
    pub(crate) fn url(&self) -> &str {
        &self.given
    }

    /// GETs the URL; the body of a 200 answer.
    pub(crate) fn get(&self) -> Result<Vec<u8>, String> {
        let deadline = std::time::Instant::now() + self.timeout * 3;
        let addrs = (self.url.host.as_str(), self.url.port)
            .to_socket_addrs()
            .map_err(|e| format!("resolving {}: {e}", self.url.host))?;
        let mut last = format!("{} resolves to no address", self.url.host);
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = format!("connecting to {addr}: {e}"),
            }
        }
        let tcp = tcp.ok_or(last)?;
        tcp.set_read_timeout(Some(self.timeout))
            .and_then(|()| tcp.set_write_timeout(Some(self.timeout)))
            .map_err(|e| e.to_string())?;
        let conn = rustls::ClientConnection::new(self.tls.clone(), self.server_name.clone())
            .map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let host = if self.url.host.contains(':') {
            format!("[{}]", self.url.host)
        } else {
            self.url.host.clone()
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nAccept: application/json\r\nUser-Agent: gyre-broker\r\nConnection: close\r\n\r\n",
            self.url.path, self.url.port
        );
        tls.write_all(request.as_bytes())
            .and_then(|()| tls.flush())
            .map_err(|e| format!("sending the request: {e}"))?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "no whole answer within {:?} ({} bytes came)",
                    self.timeout * 3,
                    answer.len()
                ));
            }
            let wait = left.min(self.timeout);
            tls.sock
                .set_read_timeout(Some(wait))
                .map_err(|e| e.to_string())?;
            match tls.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.len() > MAX_BODY + 64 * 1024 {
                        return Err(format!("an answer over {MAX_BODY} bytes"));
                    }
                }
                // A server that closes without TLS's close_notify: the
                // body's length (below) says whether anything is missing.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
                // The read waited out the deadline: said above.
                Err(e)
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                        && wait < self.timeout => {}
                // The socket's read timeout: the server went quiet.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(format!(
                        "no answer byte within {:?} ({} bytes came)",
                        self.timeout,
                        answer.len()
                    ))
                }
                Err(e) => return Err(format!("reading the answer: {e}")),
            }
        }
        body_of(&answer)
    }
}

/// The body of a whole HTTP/1.1 answer, if its status is 200.
fn body_of(answer: &[u8]) -> Result<Vec<u8>, String> {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("an answer cut short in its header")?;
    let head = std::str::from_utf8(&answer[..end]).map_err(|_| "a header that is not text")?;
    let body = &answer[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split(' ').nth(1).unwrap_or_default();
    if !status.starts_with("HTTP/1.") || code != "200" {
        return Err(format!("the server answered {status:?}"));
    }
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("a Content-Length of {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    if chunked {
        return dechunk(body);
    }
    match length {
        Some(n) if n > MAX_BODY => Err(format!("a body of {n} bytes, over {MAX_BODY}")),
        Some(n) if body.len() < n => Err(format!(
            "the body was cut short: {} of {n} bytes",
            body.len()
        )),
        Some(n) => Ok(body[..n].to_vec()),
        None if body.len() > MAX_BODY => Err(format!("a body over {MAX_BODY} bytes")),
        None => Ok(body.to_vec()),
    }
}

/// A chunked body, whole (up to its last, empty chunk).
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunked body cut short")?;
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok())
            .ok_or("a chunk size that is not hexadecimal")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        // `body` never holds more than MAX_BODY, so this cannot wrap
        // however large a size the server wrote.
        if size > MAX_BODY - body.len() {
            return Err(format!("a body over {MAX_BODY} bytes"));
        }
        if rest.len() < size + 2 || &rest[size..size + 2] != b"\r\n" {
            return Err("a chunk cut short".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_to_host_port_and_path() {
        let u = HttpsUrl::parse("https://idp.example.com/realms/k/certs?x=1#f").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("idp.example.com", 443, "/realms/k/certs?x=1")
        );
        let u = HttpsUrl::parse("https://127.0.0.1:8443").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8443, "/")
        );
        let u = HttpsUrl::parse("https://[::1]:9/jwks").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 9, "/jwks")
        );
        for bad in [
            "http://idp/jwks",
            "https://",
            "https://:443/",
            "https://h:port/",
            "https://u:p@h/",
            "https://[::1/",
        ] {
            assert!(HttpsUrl::parse(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Whatever a server sends, the answer is a body or an error,
        /// never a panic on the fetching thread.
        #[test]
        fn any_answer_is_a_body_or_an_error(
            head in proptest::sample::select(vec![
                &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
                &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"[..],
                &b"HTTP/1.1 200 OK\r\n\r\n"[..],
                &b""[..],
            ]),
            rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            sizes in proptest::collection::vec(
                proptest::prop_oneof![0..300u64, (u64::MAX - 300)..=u64::MAX, proptest::prelude::any::<u64>()],
                0..4,
            ),
        ) {
            let mut answer = head.to_vec();
            for size in sizes {
                answer.extend_from_slice(format!("{size:x}\r\n").as_bytes());
                answer.extend_from_slice(&rest[..rest.len().min(size as usize)]);
                answer.extend_from_slice(b"\r\n");
            }
            answer.extend_from_slice(&rest);
            let _ = body_of(&answer);
        }

        /// A chunk of any size after one already taken: the sum of the
        /// sizes must not wrap.
        #[test]
        fn any_chunk_size_after_a_chunk_is_a_body_or_an_error(
            first in 1..64usize,
            size in proptest::prop_oneof![(u64::MAX - 64)..=u64::MAX, proptest::prelude::any::<u64>()],
        ) {
            let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            answer.extend_from_slice(format!("{first:x}\r\n{}\r\n", "a".repeat(first)).as_bytes());
            answer.extend_from_slice(format!("{size:x}\r\nabc\r\n0\r\n\r\n").as_bytes());
            proptest::prop_assert!(body_of(&answer).is_err());
        }
    }

    #[test]
    fn answers_are_taken_by_length_by_chunks_or_to_the_close() {
        let ok = |a: &[u8]| body_of(a).unwrap();
        assert_eq!(ok(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"), b"{}");
        assert_eq!(ok(b"HTTP/1.0 200 OK\r\n\r\n{\"k\":1}"), b"{\"k\":1}");
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"),
            b"abcde"
        );
        for (bad, why) in [
            (&b"HTTP/1.1 404 Not Found\r\n\r\n"[..], "404"),
            (b"HTTP/1.1 301 Moved\r\nLocation: x\r\n\r\n", "301"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}",
                "cut short",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                "Content-Length",
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2", "header"),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                "cut short",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "hexadecimal",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
                "over",
            ),
            // A chunk size near the top of the word: once an overflow
            // that panicked the fetching thread.
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab\r\n0\r\n\r\n",
                "over",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\nfffffffffffffffe\r\nab\r\n",
                "over",
            ),
        ] {
            let e = body_of(bad).unwrap_err();
            assert!(e.contains(why), "{e} lacks {why}");
        }
    }

    type TlsStream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

    /// A one-connection HTTPS server under a CA of its own (folder `tag`):
    /// it reads the request and hands the stream to `answer`, on a thread.
    /// Its address and the CA's file.
    fn https_server(
        tag: &str,
        answer: impl FnOnce(&mut TlsStream) + Send + 'static,
    ) -> (std::net::SocketAddr, std::path::PathBuf) {
        let dir = gyre_testkit::scratch_dir(tag);
        let ca = gyre_testkit::certs::TestCa::new(&format!("{tag} CA"));
        let (ca_file, cert, key) = ca.write(&dir, &["127.0.0.1"]);
        let tls = gyre_reactor::TlsAcceptor::from_pem_files(&cert, &key).unwrap();
        let config = tls.config().clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(config).unwrap();
            let mut s = rustls::StreamOwned::new(conn, tcp);
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req);
            answer(&mut s);
        });
        (addr, ca_file)
    }

    #[test]
    fn a_server_that_trickles_its_answer_is_given_up_on() {
        // Each byte comes well within the read timeout (a second; one
        // every 60 ms); the whole answer would take a minute.
        let (addr, ca_file) = https_server("https-get-trickle", |s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            for _ in 0..1000 {
                if s.write_all(b"x").and_then(|()| s.flush()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(60));
            }
        });
        let get = HttpsGet::new(
            &format!("https://{addr}/jwks"),
            Some(&ca_file),
            Duration::from_secs(1),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let e = get.get().unwrap_err();
        assert!(e.contains("no whole answer within"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_server_that_goes_quiet_is_named_as_such() {
        let (addr, ca_file) = https_server("https-get-quiet", |_| {
            // Answers nothing, and holds the connection open.
            std::thread::sleep(Duration::from_secs(3));
        });
        let get = HttpsGet::new(
            &format!("https://{addr}/jwks"),
            Some(&ca_file),
            Duration::from_millis(300),
        )
        .unwrap();
        let e = get.get().unwrap_err();
        assert!(
            e.contains("no answer byte within 300ms (0 bytes came)"),
            "{e}"
        );
    }
}
