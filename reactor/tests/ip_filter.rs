//! The IP filter over real loopback sockets, on the transport the suite
//! runs on: a client from a refused address (127.0.0.2, which loopback
//! also answers) is closed before its bytes reach a handler, and the
//! handlers after the filter never see it open; one from an allowed
//! address is served. A per-address limit closes one connection too many
//! from an address and none from another, and a close frees a place.
//! Behind the PROXY protocol the header's client is judged, not the
//! proxy.

mod common;

use bytes::BytesMut;
use common::{Counters, Echo, Probe};
use gyre_codec::{ProxiedAddresses, ProxyHeader};
use gyre_reactor::{
    ConnectionsPerIp, IpFilter, IpFilterHandler, Pipeline, ProxyProtocolHandler, ServerBootstrap,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A client connected to `addr` from `from` (a loopback address).
fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Sends `bytes` and reads as many back; `None` if closed first.
fn echo(s: &mut TcpStream, bytes: &[u8]) -> Option<Vec<u8>> {
    let _ = s.write_all(bytes);
    let mut got = vec![0u8; bytes.len()];
    s.read_exact(&mut got).ok().map(|_| got)
}

#[test]
fn a_refused_address_is_closed_unread_and_an_allowed_one_served() {
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let filter = IpFilter::new().deny("127.0.0.2".parse().unwrap());
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .inbound(IpFilterHandler::new(filter.clone()))
                .inbound(Probe::<BytesMut, bytes::Bytes>::new(c.clone()))
                .inbound(Echo)
        })
        .unwrap();
    let addr = server.local_addr();
    let mut refused = connect_from("127.0.0.2", addr);
    assert_eq!(echo(&mut refused, b"let me in"), None);
    let mut allowed = connect_from("127.0.0.1", addr);
    assert_eq!(echo(&mut allowed, b"hello").as_deref(), Some(&b"hello"[..]));
    drop(allowed);
    assert!(common::eventually(Duration::from_secs(5), || {
        counters.inactive.load(Ordering::SeqCst) == 1
    }));
    // Only the allowed client reached the handlers after the filter.
    assert_eq!(counters.active.load(Ordering::SeqCst), 1);
    assert_eq!(counters.inactive.load(Ordering::SeqCst), 1);
}

#[test]
fn behind_a_proxy_the_client_the_header_names_is_judged() {
    let filter = IpFilter::new().deny("203.0.113.0/24".parse().unwrap());
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .inbound(ProxyProtocolHandler::new())
                .inbound(IpFilterHandler::new(filter.clone()).behind_proxy())
                .inbound(Echo)
        })
        .unwrap();
    let proxied = |source: &str| {
        let mut wire = BytesMut::new();
        ProxyHeader::v2(Some(ProxiedAddresses {
            source: source.parse().unwrap(),
            destination: "10.0.0.5:7000".parse().unwrap(),
        }))
        .encode_into(&mut wire)
        .unwrap();
        let mut s = connect_from("127.0.0.1", server.local_addr());
        s.write_all(&wire).unwrap();
        s
    };
    // The proxy (loopback) is not refused; the client it names is.
    let mut refused = proxied("203.0.113.7:50000");
    assert_eq!(echo(&mut refused, b"let me in"), None);
    let mut allowed = proxied("198.51.100.1:50000");
    assert_eq!(echo(&mut allowed, b"hello").as_deref(), Some(&b"hello"[..]));
}

#[test]
fn each_address_is_held_to_its_connections_at_once() {
    let limits = ConnectionsPerIp::new(Some(2), []);
    let filter = IpFilter::new().limit_per_address(&limits);
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .inbound(IpFilterHandler::new(filter.clone()))
                .inbound(Echo)
        })
        .unwrap();
    let addr = server.local_addr();
    let mut mine: Vec<TcpStream> = (0..2).map(|_| connect_from("127.0.0.1", addr)).collect();
    for s in &mut mine {
        assert!(echo(s, b"in").is_some());
    }
    let mut third = connect_from("127.0.0.1", addr);
    assert_eq!(echo(&mut third, b"one too many"), None);
    // Another address has places of its own.
    let mut theirs: Vec<TcpStream> = (0..2).map(|_| connect_from("127.0.0.2", addr)).collect();
    for s in &mut theirs {
        assert!(echo(s, b"in").is_some());
    }
    assert_eq!(limits.open_from("127.0.0.1".parse().unwrap()), 2);
    // One closes: its place is free again.
    drop(mine.pop());
    assert!(common::eventually(Duration::from_secs(5), || {
        limits.open_from("127.0.0.1".parse().unwrap()) == 1
    }));
    let mut again = connect_from("127.0.0.1", addr);
    assert!(echo(&mut again, b"back").is_some());
}
