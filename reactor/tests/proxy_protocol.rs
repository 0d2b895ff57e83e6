//! `ProxyProtocolHandler` over real loopback sockets, on the transport
//! `GYRE_TRANSPORT` names: a header cut across many writes is told to the
//! next handler before any byte after it, and those bytes pass whole and
//! in order; a proxy's own (LOCAL) connection names no client; a
//! connection that does not start with a header, or whose header is over
//! the maximum, is closed with nothing of it passed on, and the loop
//! serves the next.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_codec::{ProxiedAddresses, ProxyHeader, ProxyHeaderDecoder};
use gyre_reactor::{InboundContext, InboundHandler, Pipeline, ProxyProtocolHandler, UserEvent};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

/// What the handler after the PROXY layer saw, in order.
#[derive(Debug, PartialEq)]
enum Seen {
    Header(Option<ProxiedAddresses>, Bytes),
    Data(Vec<u8>),
}

struct Recorder(mpsc::Sender<Seen>);

impl InboundHandler for Recorder {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, _: &mut impl InboundContext<Self>, chunk: BytesMut) {
        let _ = self.0.send(Seen::Data(chunk.to_vec()));
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        if let UserEvent::ProxyHeader(h) = &event {
            let _ = self.0.send(Seen::Header(h.addresses, h.tlvs.clone()));
        }
        ctx.fire_user_event(event);
    }
}

/// A server whose connections go through a PROXY layer taking headers of
/// up to `max` bytes, then the recorder; what the recorder sees comes out
/// of the receiver.
fn server(max: usize) -> (gyre_reactor::Server, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = gyre_reactor::ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .inbound(ProxyProtocolHandler::with_decoder(
                    ProxyHeaderDecoder::with_max_len(max),
                ))
                .inbound(Recorder(tx.lock().unwrap().clone()))
        })
        .unwrap();
    (server, rx)
}

fn connect(server: &gyre_reactor::Server) -> TcpStream {
    let c = TcpStream::connect(server.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c
}

/// Whether the server closed `c` (its read ends, or is reset).
fn closed(c: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(c.read(&mut b), Ok(0) | Err(_))
}

/// Everything the recorder saw until `n` bytes of data came.
fn seen_until(rx: &mpsc::Receiver<Seen>, n: usize) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut data = 0;
    while data < n {
        let s = rx.recv_timeout(Duration::from_secs(5)).expect("more seen");
        if let Seen::Data(d) = &s {
            data += d.len();
        }
        out.push(s);
    }
    out
}

#[test]
fn a_header_cut_across_writes_comes_first_and_the_bytes_after_it_pass_whole() {
    let (server, rx) = server(4096);
    let client = ProxiedAddresses {
        source: "[2001:db8::7]:51000".parse().unwrap(),
        destination: "[2001:db8::1]:443".parse().unwrap(),
    };
    let tlvs = Bytes::from_static(&[0x04, 0, 3, b'a', b'b', b'c']);
    let mut wire = BytesMut::new();
    ProxyHeader::v2(Some(client))
        .with_tlvs(tlvs.clone())
        .encode_into(&mut wire)
        .unwrap();
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
    wire.extend_from_slice(&data);
    let mut c = connect(&server);
    // The header one byte at a time, then the rest in odd pieces.
    for b in &wire[..60] {
        c.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    for piece in wire[60..].chunks(777) {
        c.write_all(piece).unwrap();
    }
    let seen = seen_until(&rx, data.len());
    assert_eq!(seen[0], Seen::Header(Some(client), tlvs));
    let mut got = Vec::new();
    for s in &seen[1..] {
        match s {
            Seen::Data(d) => got.extend_from_slice(d),
            other => panic!("after the data began: {other:?}"),
        }
    }
    assert!(
        got == data,
        "the bytes after the header, whole and in order"
    );
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn a_proxys_own_connection_names_no_client() {
    let (server, rx) = server(4096);
    let mut wire = BytesMut::new();
    ProxyHeader::v2(None).encode_into(&mut wire).unwrap();
    wire.extend_from_slice(b"ping");
    connect(&server).write_all(&wire).unwrap();
    assert_eq!(
        seen_until(&rx, 4),
        vec![
            Seen::Header(None, Bytes::new()),
            Seen::Data(b"ping".to_vec())
        ]
    );
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn a_connection_without_a_header_or_with_one_too_long_is_closed_unserved() {
    let (server, rx) = server(200);
    // A client that talks to the server directly.
    let mut direct = connect(&server);
    direct
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(closed(&mut direct), "a connection naming no client closes");
    // A version 2 header saying it is 1,016 bytes long, over 200: refused
    // from its first 16 bytes.
    let mut long = connect(&server);
    let mut wire = BytesMut::new();
    let header = ProxyHeader::v2(Some(ProxiedAddresses {
        source: "192.0.2.1:1".parse().unwrap(),
        destination: "192.0.2.2:2".parse().unwrap(),
    }))
    .with_tlvs(Bytes::from(vec![0u8; 1004]));
    header.encode_into(&mut wire).unwrap();
    long.write_all(&wire[..16]).unwrap();
    assert!(closed(&mut long), "a header over the maximum closes");
    // The loop serves on; nothing of the refused two reached the handler.
    let mut good = connect(&server);
    let mut ok = BytesMut::new();
    ProxyHeader::v1(None).encode_into(&mut ok).unwrap();
    ok.extend_from_slice(b"after");
    good.write_all(&ok).unwrap();
    assert_eq!(
        seen_until(&rx, 5),
        vec![
            Seen::Header(None, Bytes::new()),
            Seen::Data(b"after".to_vec())
        ]
    );
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}
