//! A cap on open connections (`ListenOptions::connection_cap`, Kafka's
//! `max.connections`) over real loopback sockets, on the transport the
//! suite runs on: at the cap a new connection is not served (it waits in
//! the backlog, not refused); when an open one closes, the next is served
//! and the cap holds again; one cap shared by two servers holds both.

mod common;

use gyre_reactor::{ConnectionCap, ListenOptions, Pipeline, Server, ServerBootstrap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn echo_server(cap: &ConnectionCap) -> Server {
    ServerBootstrap::new()
        .group(common::group(2))
        .listen_options(ListenOptions::default().connection_cap(cap))
        .bind("127.0.0.1:0", |_| Pipeline::new().inbound(common::Echo))
        .unwrap()
}

/// Connects and sends a byte; the connection, and whether it came back
/// within `wait`.
fn try_echo(addr: SocketAddr, wait: Duration) -> (TcpStream, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"x").unwrap();
    let echoed = echoed(&mut s, wait);
    (s, echoed)
}

fn echoed(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(1))
}

#[test]
fn at_the_cap_new_connections_wait_until_one_closes() {
    let cap = ConnectionCap::new(3);
    let server = echo_server(&cap);
    let addr = server.local_addr();
    let mut open: Vec<TcpStream> = (0..3)
        .map(|i| {
            let (s, ok) = try_echo(addr, Duration::from_secs(5));
            assert!(ok, "connection {i} under the cap not served");
            s
        })
        .collect();
    assert_eq!(cap.open(), 3);
    // Over the cap: connected (the kernel's backlog took it), not served.
    let (mut fourth, served) = try_echo(addr, Duration::from_millis(300));
    assert!(!served, "a fourth connection served at a cap of 3");
    let (mut fifth, served) = try_echo(addr, Duration::from_millis(100));
    assert!(!served);
    // One closes: the fourth is served (its byte was waiting), the fifth
    // still waits.
    drop(open.pop());
    assert!(
        echoed(&mut fourth, Duration::from_secs(5)),
        "the fourth never served"
    );
    assert!(!echoed(&mut fifth, Duration::from_millis(200)));
    assert!(common::eventually(Duration::from_secs(2), || cap.open() == 3));
    // Two more close: the fifth is served, and a new one too.
    drop(open.pop());
    drop(fourth);
    assert!(
        echoed(&mut fifth, Duration::from_secs(5)),
        "the fifth never served"
    );
    let (_sixth, served) = try_echo(addr, Duration::from_secs(5));
    assert!(served);
    // The open ones still echo.
    for s in &mut open {
        s.write_all(b"y").unwrap();
        assert!(echoed(s, Duration::from_secs(5)));
    }
    drop(open);
    drop(fifth);
    drop(_sixth);
    assert!(
        common::eventually(Duration::from_secs(5), || cap.open() == 0),
        "{} slots never given back",
        cap.open()
    );
}

#[test]
fn a_cap_shared_by_two_servers_holds_both() {
    let cap = ConnectionCap::new(2);
    let (a, b) = (echo_server(&cap), echo_server(&cap));
    let (_on_a, ok_a) = try_echo(a.local_addr(), Duration::from_secs(5));
    let (on_b, ok_b) = try_echo(b.local_addr(), Duration::from_secs(5));
    assert!(ok_a && ok_b);
    let (mut waiting, served) = try_echo(a.local_addr(), Duration::from_millis(300));
    assert!(
        !served,
        "a third connection between two servers capped at 2"
    );
    drop(on_b);
    assert!(
        echoed(&mut waiting, Duration::from_secs(5)),
        "never served after a close on the other server"
    );
}

#[test]
fn a_listener_at_its_cap_sleeps_until_a_close_wakes_it() {
    let cap = ConnectionCap::new(1);
    let group = gyre_reactor::EventLoopGroup::builder()
        .threads(1)
        .name("cap-sleeps")
        .transport(common::transport())
        .build()
        .unwrap();
    let server = ServerBootstrap::new()
        .group(group)
        .listen_options(ListenOptions::default().connection_cap(&cap))
        .bind("127.0.0.1:0", |_| Pipeline::new().inbound(common::Echo))
        .unwrap();
    let addr = server.local_addr();
    let (first, ok) = try_echo(addr, Duration::from_secs(5));
    assert!(ok);
    let (mut waiting, served) = try_echo(addr, Duration::from_millis(100));
    assert!(!served, "a second connection served at a cap of 1");
    let threads = gyre_testkit::threads_named("cap-sleeps");
    assert_eq!(threads.len(), 1, "one loop thread");
    let lp = threads.first().unwrap();
    // Waiting for room, the loop has nothing to do: it sleeps until the
    // close wakes it. A loop that looked for room on a timer (every 10 ms,
    // before) woke about 50 times in this half second.
    let before = gyre_testkit::sleeps(lp).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let woke = gyre_testkit::sleeps(lp).unwrap() - before;
    assert!(woke < 10, "the loop woke {woke} times while at its cap");
    drop(first);
    assert!(
        echoed(&mut waiting, Duration::from_secs(5)),
        "the close never woke the listener"
    );
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}
