//! A server's metrics over real loopback connections, on both transports:
//! connections accepted, open and closed, bytes in and out, output queued
//! for a peer that does not read, and client connects.

mod common;

use bytes::Bytes;
use gyre_reactor::{Bootstrap, Pipeline, ServerBootstrap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn until(what: &str, mut f: impl FnMut() -> bool) {
    assert!(
        common::eventually(Duration::from_secs(10), &mut f),
        "{what}"
    );
}

#[test]
fn counts_connections_bytes_and_queued_output() {
    let server = ServerBootstrap::new()
        .group(common::group(2))
        .bind("127.0.0.1:0", |_| Pipeline::new().inbound(common::Echo))
        .unwrap();
    let addr = server.local_addr();
    let before = server.metrics().unwrap();
    assert_eq!(before.accepted, 0);

    // Five clients echo 1,000 bytes each; two leave.
    let mut clients: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for c in &mut clients {
        c.write_all(&[1u8; 1000]).unwrap();
        let mut back = [0u8; 1000];
        c.read_exact(&mut back).unwrap();
    }
    drop(clients.drain(..2));
    until("two closed", || server.metrics().unwrap().closed == 2);
    let m = server.metrics().unwrap();
    assert_eq!((m.accepted, m.connections_open, m.closed), (5, 3, 2));
    assert_eq!(
        (m.bytes_read, m.bytes_written),
        (5000, 5000),
        "closed channels' bytes are kept"
    );
    assert!(m.reads >= 5);
    assert_eq!(m.queued_outbound_bytes, 0);

    // A client loop writes 16 MiB to a peer that does not read: queued.
    let group = common::group(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let handle = Bootstrap::new(group.clone())
        .connect(listener.local_addr().unwrap(), |_| Pipeline::new())
        .unwrap();
    let (mut slow, _) = listener.accept().unwrap();
    handle
        .write_and_flush(Bytes::from(vec![0u8; 16 << 20]))
        .unwrap();
    until("output queued", || {
        group.metrics().unwrap().queued_outbound_bytes > 0
    });
    let m = group.metrics().unwrap();
    assert_eq!((m.connected, m.connections_open), (1, 1));
    assert!(
        m.queued_outbound_bytes + m.bytes_written == 16 << 20,
        "{m:?}"
    );
    let mut sink = vec![0u8; 16 << 20];
    slow.read_exact(&mut sink).unwrap();
    until("queue drained", || {
        group.metrics().unwrap().queued_outbound_bytes == 0
    });
    assert_eq!(group.metrics().unwrap().bytes_written, 16 << 20);

    // Prometheus text, as a scraper would read it.
    let text = server
        .metrics()
        .unwrap()
        .to_prometheus("echo", "instance=\"test\"");
    assert!(
        text.contains("echo_accepted_total{instance=\"test\"} 5\n"),
        "{text}"
    );

    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    assert!(group.metrics().is_err(), "a stopped group has no metrics");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
