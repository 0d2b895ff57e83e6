//! Kernel TLS (`TlsAcceptorBuilder::kernel_tls`) against rustls's own
//! blocking client: echo and a file region (which keeps `sendfile` under
//! kTLS) for every suite the kernel takes, TLS 1.2 and 1.3; the peer's
//! `close_notify` read as a clean end and ours sent; a corrupt record
//! closing only its own connection.
//!
//! Where the kernel has TLS, the connections switch to it (on either
//! transport: `GYRE_TRANSPORT`); elsewhere they stay in rustls, and every
//! test must pass either way. `GYRE_EXPECT_KTLS=1` makes the tests insist
//! that the switch happened: `scripts/ktls-guest` runs this file that way
//! inside a small VM whose kernel has TLS, since the hosts this project
//! runs on have none.

mod common;

use bytes::{Bytes, BytesMut};
use common::tls::{rustls_client, rustls_client_offering, AsTls};
use gyre_reactor::{
    Error, InboundContext, InboundHandler, Outbound, Pipeline, Server, ServerBootstrap,
    TlsAcceptor, UserEvent,
};
use gyre_testkit::certs::TestCa;
use rustls::crypto::ring::{cipher_suite, default_provider};
use rustls::version::{TLS12, TLS13};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// What the server's handler saw.
#[derive(Debug)]
enum Seen {
    /// A request, and whether the kernel had the connection's TLS then.
    Request(bool),
    InputClosed,
    Error(String),
}

/// Echoes lines; answers "get\n" with the file's length, the file (a file
/// region) and "end\n", then closes.
struct Serve {
    file: PathBuf,
    seen: mpsc::Sender<Seen>,
}

impl InboundHandler for Serve {
    type Read = BytesMut;
    type Pass = ();
    type Write = Outbound;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        let _ = self.seen.send(Seen::Request(ctx.channel().kernel_tls()));
        if &msg[..] == b"get\n" {
            let region = gyre_zerocopy::FileRegion::open(&self.file).unwrap();
            ctx.write(Bytes::from(format!("{}\n", region.len())).into());
            ctx.write(region.into());
            ctx.write(Bytes::from_static(b"end\n").into());
            ctx.flush();
            ctx.close();
        } else {
            ctx.write(msg.freeze().into());
            ctx.flush();
        }
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        if matches!(event, UserEvent::InputClosed) {
            let _ = self.seen.send(Seen::InputClosed);
        }
        ctx.fire_user_event(event);
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: Error) {
        let _ = self.seen.send(Seen::Error(error.to_string()));
        ctx.fire_error(error);
    }
}

/// A TLS server asking for kernel TLS, serving `file`.
fn server(ca: &TestCa, file: PathBuf) -> (Server, mpsc::Receiver<Seen>) {
    let tls = TlsAcceptor::builder()
        .identity(ca.identity(&["localhost"]))
        .kernel_tls(true)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::with_file_regions()
                .tls_server(&tls)
                .inbound(Serve {
                    file: file.clone(),
                    seen: tx.clone(),
                })
        })
        .unwrap();
    (server, rx)
}

/// A file of `len` bytes of a pattern, in this test's own directory.
fn data_file(name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let dir = gyre_testkit::scratch_root().join(format!("gyre-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("data.bin");
    std::fs::write(&path, &content).unwrap();
    (path, content)
}

/// A kernel-TLS server serving a file of `len` bytes, with its CA and
/// what its handler reports.
struct Rig {
    ca: TestCa,
    server: Server,
    rx: mpsc::Receiver<Seen>,
    content: Vec<u8>,
}

impl Rig {
    fn new(name: &str, len: usize) -> Rig {
        let ca = TestCa::new("test CA");
        let (file, content) = data_file(name, len);
        let (server, rx) = server(&ca, file);
        Rig {
            ca,
            server,
            rx,
            content,
        }
    }

    /// A rustls client of the server, with the default suites.
    fn client(&self) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        rustls_client(self.server.local_addr(), "localhost", self.ca.pem(), None)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.server
            .shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
    }
}

/// Two echo round trips: the first may still be answered by rustls (the
/// switch comes once the handshake's last records are out), the second
/// must be the kernel's where it is expected.
fn two_round_trips(
    conn: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    rx: &mpsc::Receiver<Seen>,
    what: &str,
) {
    for (line, switched) in [(&b"one\n"[..], false), (b"two\n", true)] {
        conn.write_all(line).unwrap();
        let mut got = vec![0u8; line.len()];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(got, line, "{what}");
        request_seen(rx, switched);
    }
}

/// Checks the answer to "get": the file's length, the file, "end".
fn check_file_answer(got: &[u8], content: &[u8], what: &str) {
    let header = format!("{}\n", content.len());
    assert_eq!(&got[..header.len()], header.as_bytes(), "{what}");
    assert!(
        got[header.len()..got.len() - 4] == content[..],
        "{what}: the file arrived intact"
    );
    assert_eq!(&got[got.len() - 4..], b"end\n", "{what}");
}

fn next(rx: &mpsc::Receiver<Seen>) -> Seen {
    rx.recv_timeout(Duration::from_secs(60))
        .expect("a report from the server")
}

/// The server's report of a request: whether the kernel had the TLS
/// (which it must, under `GYRE_EXPECT_KTLS`, if `switched`: every request
/// after a connection's first round trip).
fn request_seen(rx: &mpsc::Receiver<Seen>, switched: bool) -> bool {
    match next(rx) {
        Seen::Request(kernel) => {
            if switched && gyre_testkit::kernel_tls_expected() {
                assert!(kernel, "the kernel should have taken the connection");
            }
            kernel
        }
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn echo_and_a_file_over_every_suite_the_kernel_takes() {
    let rig = Rig::new("ktls-suites", (3 << 20) + 13);
    use cipher_suite::*;
    let suites = [
        (TLS13_AES_128_GCM_SHA256, &TLS13),
        (TLS13_AES_256_GCM_SHA384, &TLS13),
        (TLS13_CHACHA20_POLY1305_SHA256, &TLS13),
        (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, &TLS12),
        (TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, &TLS12),
        (TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, &TLS12),
    ];
    for (suite, version) in suites {
        let name = format!("{:?}", suite.suite());
        let mut provider = default_provider();
        provider.cipher_suites = vec![suite];
        let mut conn = rustls_client_offering(
            rig.server.local_addr(),
            "localhost",
            rig.ca.pem(),
            None,
            provider,
            &[version],
        );
        two_round_trips(&mut conn, &rig.rx, &name);
        conn.write_all(b"get\n").unwrap();
        let kernel = request_seen(&rig.rx, true);
        eprintln!("{name}: kernel TLS {kernel}");
        let mut got = Vec::new();
        conn.read_to_end(&mut got).unwrap_or_else(|e| {
            panic!(
                "{name}: a clean end (close_notify) after {} bytes: {e}",
                got.len()
            )
        });
        check_file_answer(&got, &rig.content, &name);
        assert_eq!(
            conn.conn.negotiated_cipher_suite().map(|s| s.suite()),
            Some(suite.suite())
        );
    }
    while let Ok(seen) = rig.rx.try_recv() {
        assert!(!matches!(seen, Seen::Error(_)), "the server saw {seen:?}");
    }
}

/// A client that sends its first request in the same segment as its
/// handshake's last message (as HTTP clients do) gets the answer through
/// the kernel already.
#[test]
fn a_request_pipelined_behind_the_handshake_is_answered_through_the_kernel() {
    let rig = Rig::new("ktls-pipelined", (1 << 20) + 7);
    let mut client = rig.client();
    let (conn, sock) = (&mut client.conn, &mut client.sock);
    // Drive the handshake by hand until only our last flight is left.
    while conn.is_handshaking() {
        while conn.wants_write() {
            conn.write_tls(sock).unwrap();
        }
        if !conn.is_handshaking() {
            break;
        }
        conn.read_tls(sock).unwrap();
        conn.process_new_packets().unwrap();
    }
    // The Finished and the request, in one write.
    conn.writer().write_all(b"get\n").unwrap();
    let mut flight = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut flight).unwrap();
    }
    sock.write_all(&flight).unwrap();
    request_seen(&rig.rx, true);
    let mut got = Vec::new();
    client.read_to_end(&mut got).expect("a clean end");
    check_file_answer(&got, &rig.content, "pipelined");
}

#[test]
fn the_peers_close_notify_ends_input_cleanly() {
    let rig = Rig::new("ktls-close", 10);
    let mut conn = rig.client();
    two_round_trips(&mut conn, &rig.rx, "close");
    conn.conn.send_close_notify();
    conn.flush().unwrap();
    // The server reads our alert as the end of input, closes, and answers
    // with its own close_notify (rustls reports a close without one as an
    // error).
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest)
        .expect("the server's close_notify before its TCP close");
    assert!(rest.is_empty());
    while let Ok(seen) = rig.rx.recv_timeout(Duration::from_millis(300)) {
        assert!(
            matches!(seen, Seen::InputClosed),
            "a clean close, but the server saw {seen:?}"
        );
    }
}

#[test]
fn a_corrupt_record_closes_only_its_connection() {
    let rig = Rig::new("ktls-corrupt", 10);
    let mut bystander = rig.client();
    let mut victim = rig.client();
    two_round_trips(&mut bystander, &rig.rx, "bystander");
    two_round_trips(&mut victim, &rig.rx, "victim");
    // An application-data record whose tag cannot verify, written under
    // the session's feet.
    let mut record = vec![23, 3, 3, 0, 40];
    record.extend((0..40u8).map(|i| i.wrapping_mul(37)));
    victim.sock.write_all(&record).unwrap();
    match next(&rig.rx) {
        Seen::Error(e) => eprintln!("the server refused the record: {e}"),
        other => panic!("expected an error, got {other:?}"),
    }
    let mut rest = Vec::new();
    let _ = victim.sock.read_to_end(&mut rest);
    // The other connection is untouched.
    bystander.write_all(b"still\n").unwrap();
    let mut got = [0u8; 6];
    bystander.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"still\n");
    request_seen(&rig.rx, true);
}

/// A plain TCP stream to a kernel-TLS server that never finishes a
/// handshake changes nothing for the next client.
#[test]
fn garbage_before_any_handshake_is_refused_as_before() {
    let rig = Rig::new("ktls-garbage", 10);
    let mut plain = TcpStream::connect(rig.server.local_addr()).unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = plain.read_to_end(&mut rest);
    match next(&rig.rx) {
        Seen::Error(e) => assert!(e.contains("handshake"), "{e}"),
        other => panic!("expected a handshake error, got {other:?}"),
    }
    two_round_trips(&mut rig.client(), &rig.rx, "after the garbage");
}
