//! SIGTERM stops a server gracefully: an answer queued before it is
//! delivered, then the loops end. In its own test binary, because signal
//! handlers belong to the whole process.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_reactor::{InboundContext, InboundHandler, Pipeline, ServerBootstrap, StopSignal};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Answers every read with "ok".
struct Answer;

impl InboundHandler for Answer {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
        ctx.write_and_flush(Bytes::from_static(b"ok"));
    }
}

#[test]
fn sigterm_shuts_the_server_down_gracefully() {
    let server = ServerBootstrap::new()
        .group(common::group(2))
        .bind("127.0.0.1:0", |_| Pipeline::new().inbound(Answer))
        .unwrap();
    let addr = server.local_addr();
    let worker = server.worker_group().clone();
    let client = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ok");
        // SAFETY: kill(2) with our own pid and a signal the test catches.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        // The server closes this connection as it stops.
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        rest
    });
    let signal = server
        .serve_until_signal(Duration::from_millis(10), Duration::from_secs(2))
        .unwrap();
    assert_eq!(signal, StopSignal::Terminate);
    assert!(worker.loops().iter().all(|l| !l.is_alive()));
    assert!(client.join().unwrap().is_empty());
    assert!(TcpStream::connect(addr).is_err(), "no longer accepting");
}
