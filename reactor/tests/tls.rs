//! TLS as a pipeline layer, on both transports (`GYRE_TRANSPORT`), against
//! real peers: `openssl s_client` and `curl` against a Gyre TLS server, a
//! Gyre TLS client against `openssl s_server`, and rustls's own blocking
//! client. Then what must be refused, each closing only its own
//! connection: an unknown authority, an expired certificate, a server name
//! nobody serves, a client without the certificate mutual TLS requires, a
//! peer stalled mid-handshake, and plaintext instead of a ClientHello. And
//! what must hold: close_notify on a graceful close, the session agreed
//! (ALPN, SNI, the client's certificate) reaching handlers, resumption,
//! and megabytes each way under backpressure.

mod common;

use common::tls::{rustls_client, AsTls};

use bytes::{Bytes, BytesMut};
use gyre_reactor::{
    Bootstrap, Error, InboundContext, InboundHandler, Pipeline, Server, ServerBootstrap,
    TlsAcceptor, TlsConnector, TlsError, TlsIdentity, TlsRoots, TlsSession, UserEvent,
};
use gyre_testkit::certs::TestCa;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A client's settings for `name`, trusting `ca`.
fn connector(name: &str, ca: &TestCa) -> TlsConnector {
    TlsConnector::builder(name)
        .roots(ca.roots())
        .build()
        .unwrap()
}

/// A directory of this test's own, for files openssl and curl read.
fn dir(name: &str) -> PathBuf {
    gyre_testkit::scratch_dir(&format!("tls-{name}"))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// What the server's handlers saw, for the test to check.
#[derive(Debug)]
enum Seen {
    Session(TlsSession),
    Error(String),
    Inactive,
}

/// Echoes plaintext and reports the handshake, errors and the close.
struct Echo(mpsc::Sender<Seen>);

impl InboundHandler for Echo {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        if &msg[..] == b"bye\n" {
            ctx.write(msg.freeze());
            ctx.flush();
            ctx.close();
            return;
        }
        ctx.write(msg.freeze());
    }

    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.flush();
    }

    fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
        ctx.set_auto_read(writable);
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        match event {
            UserEvent::TlsHandshake(session) => {
                let _ = self.0.send(Seen::Session(*session));
            }
            other => ctx.fire_user_event(other),
        }
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: Error) {
        let _ = self.0.send(Seen::Error(error.to_string()));
        ctx.fire_error(error);
    }

    fn inactive(&mut self, _: &mut impl InboundContext<Self>) {
        let _ = self.0.send(Seen::Inactive);
    }
}

fn tls_echo_server(tls: TlsAcceptor) -> (Server, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new().tls_server(&tls).inbound(Echo(tx.clone()))
        })
        .unwrap();
    (server, rx)
}

/// The next session or error the server reports (skipping closes).
fn next_report(rx: &mpsc::Receiver<Seen>) -> Seen {
    loop {
        match rx.recv_timeout(Duration::from_secs(10)).expect("a report") {
            Seen::Inactive => continue,
            other => return other,
        }
    }
}

#[test]
fn a_rustls_client_talks_to_a_gyre_server_and_sees_close_notify() {
    let ca = TestCa::new("test CA");
    let tls = TlsAcceptor::builder()
        .identity(ca.identity(&["localhost"]))
        .alpn(["echo/1", "http/1.1"])
        .build()
        .unwrap();
    let (server, rx) = tls_echo_server(tls);
    let mut conn = rustls_client(server.local_addr(), "localhost", ca.pem(), None);
    conn.write_all(b"hello\n").unwrap();
    let mut got = [0u8; 6];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello\n");
    // The handler closes after "bye": the client reads a clean end (rustls
    // reports a close without close_notify as an error).
    conn.write_all(b"bye\n").unwrap();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest)
        .expect("a close_notify before the TCP close");
    assert_eq!(rest, b"bye\n");
    match next_report(&rx) {
        Seen::Session(s) => {
            assert_eq!(s.server_name.as_deref(), Some("localhost"));
            assert_eq!(s.alpn_protocol, None, "the client offered no ALPN");
            assert!(s.peer_certificates.is_none());
            assert!(s.cipher_suite.is_some());
        }
        other => panic!("expected the handshake, got {other:?}"),
    }
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn megabytes_each_way_arrive_whole() {
    let ca = TestCa::new("test CA");
    let tls = TlsAcceptor::from_pem_files(
        write(&dir("big"), "cert.pem", &ca.issue(&["localhost"]).cert_pem),
        write(&dir("big-key"), "key.pem", "not a key"),
    );
    assert!(
        matches!(tls, Err(TlsError::Pem { ref path, .. }) if path.ends_with("key.pem")),
        "a bad key file is named: {tls:?}"
    );
    let tls = ca.acceptor();
    let (server, _rx) = tls_echo_server(tls);
    let conn = rustls_client(server.local_addr(), "localhost", ca.pem(), None);
    let total = 8 << 20;
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    // rustls's blocking stream cannot read and write at once: one side
    // through a socket clone would break its state, so alternate in pieces
    // small enough never to fill both directions' buffers.
    let mut conn = conn;
    let mut back = vec![0u8; 0];
    for piece in data.chunks(256 * 1024) {
        conn.write_all(piece).unwrap();
        let mut buf = vec![0u8; piece.len()];
        conn.read_exact(&mut buf).unwrap();
        back.extend_from_slice(&buf);
    }
    assert!(back == data, "8 MiB echoed intact");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn openssl_s_client_talks_to_a_gyre_server() {
    let ca = TestCa::new("test CA");
    let d = dir("s_client");
    let ca_file = write(&d, "ca.pem", ca.pem());
    let tls = TlsAcceptor::builder()
        .identity(ca.identity(&["localhost"]))
        .alpn(["echo/1"])
        .build()
        .unwrap();
    let (server, rx) = tls_echo_server(tls);
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-alpn",
            "echo/1",
        ])
        .arg("-connect")
        .arg(server.local_addr().to_string())
        .args(["-servername", "localhost", "-CAfile"])
        .arg(&ca_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is installed (scripts/test installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"through openssl\n").unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "through openssl\n");
    // "bye" makes the server close (s_client -quiet ignores its stdin's end).
    stdin.write_all(b"bye\n").unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "bye\n");
    let status = child.wait().unwrap();
    assert!(status.success(), "s_client saw a clean close: {status:?}");
    match next_report(&rx) {
        Seen::Session(s) => assert_eq!(s.alpn_protocol.as_deref(), Some(&b"echo/1"[..])),
        other => panic!("expected the handshake, got {other:?}"),
    }
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

/// Answers any request with a fixed HTTP response.
struct Hello;

impl InboundHandler for Hello {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        if msg.windows(4).any(|w| w == b"\r\n\r\n") {
            ctx.write_and_flush(Bytes::from_static(
                b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\nconnection: close\r\n\r\nhello, tls!\n",
            ));
            ctx.close();
        }
    }
}

#[test]
fn curl_fetches_over_https_from_a_gyre_server() {
    let ca = TestCa::new("test CA");
    let d = dir("curl");
    let ca_file = write(&d, "ca.pem", ca.pem());
    let tls = TlsAcceptor::builder()
        .identity(ca.identity(&["localhost"]))
        .alpn(["http/1.1"])
        .build()
        .unwrap();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new().tls_server(&tls).inbound(Hello)
        })
        .unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(&ca_file)
        .arg("--resolve")
        .arg(format!(
            "localhost:{}:127.0.0.1",
            server.local_addr().port()
        ))
        .arg(format!("https://localhost:{}/", server.local_addr().port()))
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hello, tls!\n");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

/// Hands the test what a Gyre client's pipeline receives.
struct ClientTap(mpsc::Sender<Result<Vec<u8>, String>>);

impl InboundHandler for ClientTap {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, _: &mut impl InboundContext<Self>, msg: BytesMut) {
        let _ = self.0.send(Ok(msg.to_vec()));
    }

    fn user_event(&mut self, _: &mut impl InboundContext<Self>, event: UserEvent) {
        if let UserEvent::TlsHandshake(s) = event {
            let _ = self.0.send(Err(format!("handshake resumed={}", s.resumed)));
        }
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: Error) {
        let _ = self.0.send(Err(format!("error: {error}")));
        ctx.fire_error(error);
    }
}

/// Reads what the client tap saw until `want` bytes of data arrived.
fn client_data(rx: &mpsc::Receiver<Result<Vec<u8>, String>>, want: usize) -> Vec<u8> {
    let mut data = Vec::new();
    while data.len() < want {
        match rx
            .recv_timeout(Duration::from_secs(10))
            .expect("client data")
        {
            Ok(d) => data.extend(d),
            Err(e) if e.starts_with("handshake") => {}
            Err(e) => panic!("{e}"),
        }
    }
    data
}

#[test]
fn a_gyre_client_talks_to_openssl_s_server() {
    let ca = TestCa::new("test CA");
    let d = dir("s_server");
    let leaf = ca.issue(&["localhost"]);
    let cert_file = write(&d, "cert.pem", &leaf.cert_pem);
    let key_file = write(&d, "key.pem", &leaf.key_pem);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-rev", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert_file)
        .arg("-key")
        .arg(&key_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is installed");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(
        common::eventually(Duration::from_secs(10), || TcpStream::connect(addr).is_ok()),
        "s_server listens"
    );
    let group = common::group(1);
    let tls = connector("localhost", &ca);
    let (tx, rx) = mpsc::channel();
    let handle = Bootstrap::new(group.clone())
        .connect(addr, move |_| {
            Pipeline::new().tls_client(&tls).inbound(ClientTap(tx))
        })
        .unwrap();
    handle
        .write_and_flush(Bytes::from_static(b"gyre\n"))
        .unwrap();
    // s_server -rev answers each line reversed.
    let got = client_data(&rx, 5);
    assert_eq!(String::from_utf8_lossy(&got).trim(), "eryg");
    let _ = server.kill();
    let _ = server.wait();
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn a_gyre_client_resumes_its_session_with_a_gyre_server() {
    let (server, connector) = localhost_echo_server();
    let group = common::group(1);
    let mut resumed = Vec::new();
    for round in 0..2 {
        let (tx, rx) = mpsc::channel();
        let tls = connector.clone();
        let handle = Bootstrap::new(group.clone())
            .connect(server.local_addr(), move |_| {
                Pipeline::new().tls_client(&tls).inbound(ClientTap(tx))
            })
            .unwrap();
        handle
            .write_and_flush(Bytes::from(format!("round {round}\n")))
            .unwrap();
        let mut saw = None;
        let mut data = Vec::new();
        while data.len() < 8 {
            match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
                Ok(d) => data.extend(d),
                Err(e) if e.starts_with("handshake") => saw = Some(e),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(data, format!("round {round}\n").as_bytes());
        resumed.push(saw.expect("the handshake event"));
        handle.close().unwrap();
        // Let the server's session ticket arrive before the next round.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        resumed,
        ["handshake resumed=false", "handshake resumed=true"]
    );
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

/// A Gyre TLS echo server for `localhost`, and a connector that trusts it.
fn localhost_echo_server() -> (Server, TlsConnector) {
    let ca = TestCa::new("test CA");
    let tls = ca.acceptor();
    (tls_echo_server(tls).0, connector("localhost", &ca))
}

/// Connects a Gyre client with `connector` and returns the first error it
/// reports.
fn client_error(addr: SocketAddr, connector: TlsConnector) -> String {
    let group = common::group(1);
    let (tx, rx) = mpsc::channel();
    let handle = Bootstrap::new(group.clone())
        .connect(addr, move |_| {
            Pipeline::new()
                .tls_client(&connector)
                .inbound(ClientTap(tx))
        })
        .unwrap();
    let _ = handle.write_and_flush(Bytes::from_static(b"hi\n"));
    let error = loop {
        match rx.recv_timeout(Duration::from_secs(10)).expect("an error") {
            Err(e) if e.starts_with("error") => break e,
            Err(_) => {}
            Ok(d) => panic!("data through a refused handshake: {d:?}"),
        }
    };
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
    error
}

/// The server still serves a good client after refusing a bad one.
fn still_serves(server: &Server, ca: &TestCa) {
    let mut conn = rustls_client(server.local_addr(), "localhost", ca.pem(), None);
    conn.write_all(b"ok?\n").unwrap();
    let mut got = [0u8; 4];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ok?\n");
}

#[test]
fn an_unknown_authority_or_an_expired_certificate_is_refused() {
    let ca = TestCa::new("test CA");
    let stranger = TestCa::new("someone else");
    let tls = ca.acceptor();
    let (server, rx) = tls_echo_server(tls);
    let untrusting = connector("localhost", &stranger);
    let error = client_error(server.local_addr(), untrusting);
    assert!(
        error.contains("handshake") && error.contains(&server.local_addr().to_string()),
        "{error}"
    );
    assert!(error.contains("UnknownIssuer"), "{error}");
    match next_report(&rx) {
        Seen::Error(e) => assert!(e.contains("handshake"), "the server says why: {e}"),
        other => panic!("expected a handshake error, got {other:?}"),
    }
    still_serves(&server, &ca);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));

    let expired = ca.issue_expired(&["localhost"]);
    let (cert, key) = (expired.cert_pem, expired.key_pem);
    let expired = TlsAcceptor::builder()
        .identity(TlsIdentity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap())
        .build()
        .unwrap();
    let (server, _rx) = tls_echo_server(expired);
    let trusting = connector("localhost", &ca);
    let error = client_error(server.local_addr(), trusting);
    assert!(error.contains("expired"), "{error}");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn a_server_name_nobody_serves_is_refused_and_sni_chooses_the_certificate() {
    let ca = TestCa::new("test CA");
    let tls = TlsAcceptor::builder()
        .sni_identity("a.test", ca.identity(&["a.test"]))
        .sni_identity("b.test", ca.identity(&["b.test"]))
        .build()
        .unwrap();
    let (server, rx) = tls_echo_server(tls);
    for name in ["a.test", "b.test"] {
        // Each name gets its own certificate: the client checks it is
        // for the name it asked.
        let mut conn = rustls_client(server.local_addr(), name, ca.pem(), None);
        conn.write_all(b"sni\n").unwrap();
        let mut got = [0u8; 4];
        conn.read_exact(&mut got).unwrap();
        match next_report(&rx) {
            Seen::Session(s) => assert_eq!(s.server_name.as_deref(), Some(name)),
            other => panic!("expected the handshake, got {other:?}"),
        }
    }
    let wrong = connector("c.test", &ca);
    let error = client_error(server.local_addr(), wrong);
    assert!(error.contains("handshake"), "{error}");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn mutual_tls_lets_in_only_clients_with_a_certificate_and_names_them() {
    let ca = TestCa::new("test CA");
    let clients = TestCa::new("client CA");
    let tls = TlsAcceptor::builder()
        .identity(ca.identity(&["localhost"]))
        .require_client_certificates(clients.roots())
        .build()
        .unwrap();
    let (server, rx) = tls_echo_server(tls);
    // Without a certificate: refused.
    let anonymous = connector("localhost", &ca);
    // (In TLS 1.3 the client has finished its side of the handshake when
    // the server's refusal arrives.)
    let error = client_error(server.local_addr(), anonymous);
    assert!(error.contains("CertificateRequired"), "{error}");
    assert!(matches!(next_report(&rx), Seen::Error(_)));
    // With one: in, and the server's handlers see the verified chain.
    let client = clients.issue(&["client-1"]);
    let (cert, key) = (client.cert_pem, client.key_pem);
    let mut conn = rustls_client(
        server.local_addr(),
        "localhost",
        ca.pem(),
        Some((&cert, &key)),
    );
    conn.write_all(b"me\n").unwrap();
    let mut got = [0u8; 3];
    conn.read_exact(&mut got).unwrap();
    match next_report(&rx) {
        Seen::Session(s) => {
            let chain = s.peer_certificates.expect("the client's chain");
            let sent = rustls::pki_types::pem::PemObject::from_pem_slice(cert.as_bytes())
                .map(|c: rustls::pki_types::CertificateDer<'static>| c)
                .unwrap();
            assert_eq!(chain[0], sent);
        }
        other => panic!("expected the handshake, got {other:?}"),
    }
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn a_stalled_handshake_times_out_and_garbage_is_refused() {
    let ca = TestCa::new("test CA");
    let tls = TlsAcceptor::builder()
        .identity(ca.identity(&["localhost"]))
        .handshake_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let (server, rx) = tls_echo_server(tls);
    // Connected, silent: closed after the timeout.
    let mut stalled = TcpStream::connect(server.local_addr()).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Half a ClientHello's record header, then nothing.
    stalled.write_all(&[0x16, 0x03]).unwrap();
    let started = std::time::Instant::now();
    let mut sink = Vec::new();
    let _ = stalled.read_to_end(&mut sink);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed by the timeout"
    );
    match next_report(&rx) {
        Seen::Error(e) => assert!(e.contains("timed out after 300ms"), "{e}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Plain HTTP instead of a ClientHello: an alert, then closed.
    let mut plain = TcpStream::connect(server.local_addr()).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert_eq!(
        answer.first(),
        Some(&0x15),
        "a TLS alert record: {answer:?}"
    );
    match next_report(&rx) {
        Seen::Error(e) => assert!(e.contains("handshake"), "{e}"),
        other => panic!("expected a handshake error, got {other:?}"),
    }
    still_serves(&server, &ca);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn settings_errors_name_what_failed() {
    match TlsAcceptor::builder().build() {
        Err(TlsError::Config(e)) => assert!(e.to_string().contains("identity"), "{e}"),
        other => panic!("{other:?}"),
    }
    match TlsConnector::builder("not a name!").build() {
        Err(e @ TlsError::ServerName { .. }) => assert!(e.to_string().contains("not a name!")),
        other => panic!("{other:?}"),
    }
    let d = dir("settings");
    let empty = write(&d, "empty.pem", "");
    match TlsRoots::from_pem_file(&empty) {
        Err(e @ TlsError::Pem { .. }) => assert!(e.to_string().contains("empty.pem"), "{e}"),
        other => panic!("{other:?}"),
    }
    // A key that is not the certificate's.
    let ca = TestCa::new("test CA");
    let cert = ca.issue(&["localhost"]).cert_pem;
    let other_key = ca.issue(&["localhost"]).key_pem;
    let mismatched = TlsIdentity::from_pem(cert.as_bytes(), other_key.as_bytes()).unwrap();
    assert!(TlsAcceptor::builder()
        .sni_identity("localhost", mismatched)
        .build()
        .is_err());
}

/// Answers any request with a header and a file region, then closes.
struct SendFile(PathBuf);

impl InboundHandler for SendFile {
    type Read = BytesMut;
    type Pass = ();
    type Write = gyre_reactor::Outbound;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
        let region = gyre_zerocopy::FileRegion::open(&self.0).unwrap();
        ctx.write(Bytes::from(format!("{}\n", region.len())).into());
        ctx.write(region.into());
        ctx.write(Bytes::from_static(b"end\n").into());
        ctx.flush();
        // The close waits for the file to be encrypted and sent.
        ctx.close();
    }
}

/// Writes `size` patterned bytes to `name` in `d`: the file and its bytes.
fn patterned_file(d: &Path, name: &str, size: usize) -> (PathBuf, Vec<u8>) {
    let content: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
    let file = d.join(name);
    std::fs::write(&file, &content).unwrap();
    (file, content)
}

/// Checks what [`SendFile`] sent: the length line, the file, `end`.
fn check_sent_file(got: &[u8], content: &[u8]) {
    let header = format!("{}\n", content.len());
    assert_eq!(&got[..header.len()], header.as_bytes());
    assert!(
        got[header.len()..got.len() - 4] == content[..],
        "the file arrived intact"
    );
    assert_eq!(&got[got.len() - 4..], b"end\n");
}

#[test]
fn a_file_region_goes_out_encrypted_a_chunk_at_a_time() {
    let ca = TestCa::new("test CA");
    let d = dir("file");
    let (file, content) = patterned_file(&d, "data.bin", 24 << 20);
    let tls = ca.acceptor();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::with_file_regions()
                .tls_server(&tls)
                .inbound(SendFile(file.clone()))
        })
        .unwrap();
    let mut conn = rustls_client(server.local_addr(), "localhost", ca.pem(), None);
    // A small receive window, so the server's queue is what backs up.
    socket2::SockRef::from(conn.get_ref())
        .set_recv_buffer_size(64 * 1024)
        .unwrap();
    conn.write_all(b"get\n").unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut most_queued = 0;
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("after {} bytes: {e}", got.len()),
        }
        if got.len() % (1 << 20) < 64 * 1024 {
            // Now and then, slowly, see how much the server holds.
            std::thread::sleep(Duration::from_millis(5));
            most_queued = most_queued.max(server.metrics().unwrap().queued_outbound_bytes);
        }
    }
    check_sent_file(&got, &content);
    // Encrypted as the socket drains: at most about the high watermark
    // (64 KiB) plus one chunk's records, never the file.
    assert!(
        most_queued <= 256 * 1024,
        "the server held {most_queued} bytes"
    );
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

/// A TLS channel asked for direct writes still refuses them: the bytes
/// would bypass the session. Its writes go through the loop, encrypted.
#[test]
fn a_tls_channel_refuses_direct_writes() {
    let (server, connector) = localhost_echo_server();
    let group = common::group(1);
    let (tx, rx) = mpsc::channel();
    let handle = Bootstrap::new(group.clone())
        .options(gyre_reactor::ChannelOptions::default().direct_writes(true))
        .connect(server.local_addr(), move |_| {
            Pipeline::new()
                .tls_client(&connector)
                .inbound(ClientTap(tx))
        })
        .unwrap();
    handle
        .write_and_flush(Bytes::from_static(b"first\n"))
        .unwrap();
    assert_eq!(client_data(&rx, 6), b"first\n", "handshake done, echoed");
    for _ in 0..100 {
        let refused = handle
            .write_direct(Bytes::from_static(b"x"))
            .expect_err("a TLS channel took a direct write");
        assert_eq!(refused, "x");
    }
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

/// A file only on disk, sent over TLS by a channel with a file loader: the
/// layer reads and encrypts only chunks a loader has read in, so the loop
/// reads nothing from the disk, and the file arrives whole.
#[test]
fn a_cold_file_region_is_read_in_by_the_loaders_not_the_loop() {
    let ca = TestCa::new("test CA");
    let d = dir("cold-file");
    let (file, content) = patterned_file(&d, "cold.bin", 16 << 20);
    gyre_testkit::evict_from_page_cache(&file).unwrap();
    if gyre_zerocopy::FileRegion::open(&file).unwrap().is_cached() != Some(false) {
        eprintln!("skipped: the kernel cannot tell cached pages from cold ones here");
        return;
    }
    let loader = gyre_reactor::FileLoader::builder()
        .window(1 << 20)
        .start()
        .unwrap();
    let group = gyre_reactor::EventLoopGroup::builder()
        .threads(1)
        .name("tls-cold")
        .transport(common::transport())
        .build()
        .unwrap();
    let tls = ca.acceptor();
    let f = file.clone();
    let server = ServerBootstrap::new()
        .group(group)
        .child_options(gyre_reactor::ChannelOptions::default().file_loader(loader.clone()))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::with_file_regions()
                .tls_server(&tls)
                .inbound(SendFile(f.clone()))
        })
        .unwrap();
    let before = gyre_testkit::storage_read_bytes_of_threads("tls-cold");
    let mut conn = rustls_client(server.local_addr(), "localhost", ca.pem(), None);
    conn.write_all(b"get\n").unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got)
        .expect("the whole file, then close_notify");
    check_sent_file(&got, &content);
    let loop_read = gyre_testkit::storage_read_bytes_of_threads("tls-cold") - before;
    let counts = loader.counts();
    eprintln!("{counts:?}; the loop read {loop_read} bytes from storage");
    assert!(counts.windows_loaded > 0, "{counts:?}");
    assert!(
        loop_read < 256 * 1024,
        "the loop read {loop_read} bytes from the disk"
    );
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}
