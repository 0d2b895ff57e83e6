//! Graceful shutdown: with connections open and writes in flight, the
//! group stops accepting, delivers what is queued, closes, and returns.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_reactor::{InboundContext, InboundHandler, Pipeline, ServerBootstrap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SIZE: usize = 8 * 1024 * 1024;

/// Answers "go" with a large body.
struct Big;

impl InboundHandler for Big {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
        let body: Vec<u8> = (0..SIZE).map(|i| (i % 241) as u8).collect();
        ctx.write_and_flush(Bytes::from(body));
    }
}

#[test]
fn shutdown_delivers_in_flight_writes_then_closes() {
    let server = ServerBootstrap::new()
        .group(common::group(2))
        .bind("127.0.0.1:0", |_| Pipeline::new().inbound(Big))
        .unwrap();
    let addr = server.local_addr();
    let mut clients: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for c in clients.iter_mut() {
        c.write_all(b"go").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    // Let the writes start, then shut down while megabytes are still queued.
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    let stopper = std::thread::spawn(move || {
        server.shutdown_gracefully(Duration::from_millis(200), Duration::from_secs(20));
    });
    std::thread::sleep(Duration::from_millis(50));
    // No new connections once shutdown has begun.
    assert!(common::eventually(Duration::from_secs(2), || {
        TcpStream::connect(addr).is_err()
    }));
    // Slow readers: each still gets every byte, then EOF.
    for c in clients.iter_mut() {
        let mut got = Vec::with_capacity(SIZE);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = c
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("after {} bytes: {e}", got.len()));
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(got.len(), SIZE, "in-flight write cut short");
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 241) as u8));
    }
    stopper.join().unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn idle_group_shuts_down_after_its_quiet_period() {
    let group = common::group(2);
    let start = Instant::now();
    group.shutdown_gracefully(Duration::from_millis(100), Duration::from_secs(5));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(group.loops().iter().all(|l| !l.is_alive()));
    assert!(group.next().execute(|| ()).is_err());
}

#[test]
fn loop_tasks_and_timers_run_and_cancel() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let group = common::group(1);
    let lp = group.next();
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    let repeating = lp
        .schedule_repeating(
            Duration::from_millis(5),
            Duration::from_millis(5),
            move || {
                t.fetch_add(1, Ordering::SeqCst);
            },
        )
        .unwrap();
    let once = Arc::new(AtomicUsize::new(0));
    let o = once.clone();
    lp.schedule(Duration::from_millis(20), move || {
        o.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let o = once.clone();
    let cancelled = lp
        .schedule(Duration::from_millis(20), move || {
            o.fetch_add(100, Ordering::SeqCst);
        })
        .unwrap();
    cancelled.cancel();
    assert!(common::eventually(Duration::from_secs(5), || ticks
        .load(Ordering::SeqCst)
        >= 5));
    repeating.cancel();
    std::thread::sleep(Duration::from_millis(50));
    let after = ticks.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        ticks.load(Ordering::SeqCst),
        after,
        "cancelled task kept running"
    );
    assert_eq!(once.load(Ordering::SeqCst), 1);
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

/// Shuts its own server down when it reads "stop", from the loop thread.
struct StopOnCommand(std::sync::Arc<std::sync::OnceLock<gyre_reactor::Server>>);

impl InboundHandler for StopOnCommand {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        if &msg[..] == b"stop" {
            ctx.write_and_flush(Bytes::from_static(b"bye"));
            // On the loop thread: this must begin the shutdown and return,
            // not panic joining its own thread or block the loop.
            self.0
                .get()
                .unwrap()
                .shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
        }
    }
}

#[test]
fn a_handler_can_shut_its_own_server_down() {
    let slot = std::sync::Arc::new(std::sync::OnceLock::new());
    let in_handler = slot.clone();
    let server = ServerBootstrap::new()
        .group(common::group(2))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new().inbound(StopOnCommand(in_handler.clone()))
        })
        .unwrap();
    let addr = server.local_addr();
    let worker = server.worker_group().clone();
    slot.set(server).ok().unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"stop").unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(
        got, b"bye",
        "the answer queued before the shutdown is delivered"
    );
    assert!(
        common::eventually(Duration::from_secs(5), || worker
            .loops()
            .iter()
            .all(|l| !l.is_alive())),
        "the loops stopped"
    );
    // From outside, the same call now only waits for what has ended.
    slot.get()
        .unwrap()
        .shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
    assert!(TcpStream::connect(addr).is_err(), "no longer accepting");
}
