//! Idle detection: a silent client is closed after the reader-idle time; a
//! slow but progressing download is not taken for idle, while a stalled one
//! is.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_reactor::{
    IdleState, IdleStateHandler, InboundContext, InboundHandler, Pipeline, Server, ServerBootstrap,
    UserEvent,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Closes on the idle kind it is told to; on any read sends `size` bytes.
struct Closer {
    on: IdleState,
    size: usize,
}

impl InboundHandler for Closer {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
        if self.size > 0 {
            ctx.write_and_flush(Bytes::from(vec![7u8; self.size]));
        }
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        if let UserEvent::Idle(e) = event {
            if e.state == self.on {
                ctx.close();
            }
        }
    }
}

fn server(reader: Duration, writer: Duration, on: IdleState, size: usize) -> Server {
    ServerBootstrap::new()
        .group(common::group(1))
        .child_options(
            gyre_reactor::ChannelOptions::default()
                .send_buffer_size(16 * 1024)
                .close_drain_timeout(Duration::from_millis(100)),
        )
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .inbound(IdleStateHandler::new(reader, writer, Duration::ZERO))
                .inbound(Closer { on, size })
        })
        .unwrap()
}

#[test]
fn silent_client_is_closed_after_reader_idle() {
    let s = server(
        Duration::from_millis(200),
        Duration::ZERO,
        IdleState::ReaderIdle,
        0,
    );
    let mut c = TcpStream::connect(s.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 1];
    assert_eq!(c.read(&mut buf).unwrap(), 0, "expected the server to close");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(190),
        "closed too early: {took:?}"
    );
    s.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn chatty_client_is_not_closed() {
    let s = server(
        Duration::from_millis(200),
        Duration::ZERO,
        IdleState::ReaderIdle,
        1,
    );
    let mut c = TcpStream::connect(s.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1];
    for _ in 0..10 {
        c.write_all(b"x").unwrap();
        assert_eq!(c.read(&mut buf).unwrap(), 1);
        std::thread::sleep(Duration::from_millis(100));
    }
    s.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

/// Reads `total` bytes at about `rate` bytes per 50 ms; returns how many
/// arrived before EOF or the deadline.
fn slow_read(c: &mut TcpStream, total: usize, rate: usize, limit: Duration) -> usize {
    let start = Instant::now();
    let mut got = 0;
    let mut buf = vec![0u8; rate];
    while got < total && start.elapsed() < limit {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    got
}

#[test]
fn slow_but_progressing_download_is_not_writer_idle() {
    const SIZE: usize = 2 * 1024 * 1024;
    // Writer-idle at 300 ms; the client takes ~2.5 s to read 2 MiB, but the
    // socket keeps taking bytes, so the transfer is never idle.
    let s = server(
        Duration::ZERO,
        Duration::from_millis(300),
        IdleState::WriterIdle,
        SIZE,
    );
    let mut c = TcpStream::connect(s.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    c.write_all(b"go").unwrap();
    let got = slow_read(&mut c, SIZE, 48 * 1024, Duration::from_secs(20));
    assert_eq!(got, SIZE, "the slow download was cut off");
    s.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn stalled_download_is_writer_idle_and_closed() {
    const SIZE: usize = 8 * 1024 * 1024;
    let s = server(
        Duration::ZERO,
        Duration::from_millis(300),
        IdleState::WriterIdle,
        SIZE,
    );
    let mut c = TcpStream::connect(s.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    c.write_all(b"go").unwrap();
    // Read nothing for a while: no progress, so the server gives up.
    std::thread::sleep(Duration::from_millis(1200));
    let got = slow_read(&mut c, SIZE, 1024 * 1024, Duration::from_secs(10));
    assert!(got < SIZE, "a stalled download should have been closed");
    s.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
