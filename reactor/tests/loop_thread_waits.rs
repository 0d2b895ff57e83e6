//! A call that waits for an event loop's answer, made on an event loop's
//! thread, is refused at once with `Error::WouldBlockLoop` (as Netty's
//! blocking waits throw there) instead of blocking that loop: before, a
//! handler or task that asked its own loop for its metrics, or connected
//! with the blocking `Bootstrap::connect`, hung its loop forever, and one
//! that asked another loop blocked its own meanwhile.
//!
//! Runs on the transport `GYRE_TRANSPORT` names, over loopback TCP.

mod common;

use gyre_reactor::{Bootstrap, Error, EventLoop, Pipeline, ServerBootstrap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` on `lp` and returns what it gave; fails the test if the loop
/// never answers (it hung).
fn on_loop<T: Send + 'static>(lp: &EventLoop, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    lp.execute(move || {
        let _ = tx.send(f());
    })
    .expect("the loop is alive");
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the task never finished: the call blocked its loop")
}

fn refused<T: std::fmt::Debug>(outcome: Result<T, Error>) -> &'static str {
    match outcome {
        Err(Error::WouldBlockLoop { operation }) => operation,
        other => panic!("expected WouldBlockLoop, got {other:?}"),
    }
}

#[test]
fn a_loop_asking_itself_for_its_metrics_is_refused_not_hung() {
    let group = common::group(1);
    let lp = group.loops()[0].clone();
    let me = lp.clone();
    let outcome = on_loop(&lp, move || me.metrics().map(|m| m.connections_open));
    assert_eq!(refused(outcome), "EventLoop::metrics");
    let me = lp.clone();
    assert_eq!(
        refused(on_loop(&lp, move || me.channel_count())),
        "EventLoop::channel_count"
    );
    let whole = group.clone();
    assert_eq!(
        refused(on_loop(&lp, move || whole.metrics().map(|m| m.accepted))),
        "EventLoopGroup::metrics"
    );
    // Off the loop threads the same calls answer, and the loop is well.
    assert_eq!(lp.channel_count().unwrap(), 0);
    assert_eq!(group.metrics().unwrap().connections_open, 0);
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn a_loop_does_not_wait_for_another_groups_loop() {
    let (one, other) = (common::group(1), common::group(1));
    let theirs = other.loops()[0].clone();
    let outcome = on_loop(&one.loops()[0], move || {
        theirs.metrics().map(|m| m.accepted)
    });
    assert_eq!(refused(outcome), "EventLoop::metrics");
    // Shutting the other group down from a loop only begins it.
    let stopping = other.clone();
    on_loop(&one.loops()[0], move || {
        stopping.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5))
    });
    other.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    assert!(other.loops().iter().all(|l| !l.is_alive()));
    one.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn a_blocking_connect_or_bind_on_a_loop_is_refused_before_it_starts() {
    // TCP and UDP binds and connects that wait for a loop.
    let group = common::group(1);
    let lp = group.loops()[0].clone();
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = upstream.local_addr().unwrap();
    let bootstrap = Bootstrap::new(group.clone());
    let b = bootstrap.clone();
    let outcome = on_loop(&lp, move || {
        b.connect(addr, |_| Pipeline::new()).map(|_| ())
    });
    assert_eq!(refused(outcome), "Bootstrap::connect");
    // Nothing was connected: the upstream has nobody waiting.
    upstream.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        upstream.accept().is_err(),
        "a refused connect still connected"
    );

    // The non-blocking form is the way on a loop: awaited elsewhere.
    let b = bootstrap.clone();
    let connecting = on_loop(&lp, move || b.connect_async(addr, |_| Pipeline::new()));
    let handle = connecting.wait().expect("connected");
    upstream.set_nonblocking(false).unwrap();
    let (mut peer, _) = upstream.accept().unwrap();
    handle
        .write_and_flush(bytes::Bytes::from_static(b"up"))
        .unwrap();
    let mut got = [0u8; 2];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"up");

    let outcome = on_loop(&lp, move || {
        ServerBootstrap::new()
            .bind("127.0.0.1:0", |_| Pipeline::new())
            .map(|s| s.local_addr())
    });
    assert_eq!(refused(outcome), "ServerBootstrap::bind");

    // UDP likewise, before the socket is bound: before, the socket was
    // bound and given to the loop, and only the wait for it refused, so
    // it stayed on the loop with no handle to close it by, its port taken.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let b = bootstrap.clone();
    let outcome = on_loop(&lp, move || {
        b.bind_datagram(port, gyre_reactor::Pipeline::datagram)
            .map(|_| ())
    });
    assert_eq!(refused(outcome), "Bootstrap::bind_datagram");
    std::net::UdpSocket::bind(port).expect("the refused bind left the port free");
    let b = bootstrap.clone();
    let outcome = on_loop(&lp, move || {
        b.connect_datagram(port, gyre_reactor::Pipeline::datagram)
            .map(|_| ())
    });
    assert_eq!(refused(outcome), "Bootstrap::connect_datagram");
    // And the loop still serves.
    let server = ServerBootstrap::new()
        .group(group.clone())
        .bind("127.0.0.1:0", |_| Pipeline::new().inbound(common::Echo))
        .unwrap();
    let mut c = TcpStream::connect(server.local_addr()).unwrap();
    c.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
