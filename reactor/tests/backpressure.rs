//! Backpressure: a client that sends but does not read. The server's queue
//! stops at the high watermark (plus at most one read), writability events
//! fire, auto-read pauses, and everything resumes when the client reads.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_reactor::{ChannelOptions, InboundContext, InboundHandler, Pipeline, ServerBootstrap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Seen {
    max_queued: AtomicUsize,
    went_unwritable: AtomicUsize,
    went_writable: AtomicUsize,
    paused: AtomicBool,
}

/// The echo handler, reporting what it sees.
struct WatchedEcho(Arc<Seen>);

impl InboundHandler for WatchedEcho {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        ctx.write(msg.freeze());
        self.0
            .max_queued
            .fetch_max(ctx.channel().queued_bytes(), Ordering::SeqCst);
    }

    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.flush();
    }

    fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
        assert_eq!(writable, ctx.channel().is_writable());
        if writable {
            self.0.went_writable.fetch_add(1, Ordering::SeqCst);
        } else {
            self.0.went_unwritable.fetch_add(1, Ordering::SeqCst);
        }
        self.0.paused.store(!writable, Ordering::SeqCst);
        ctx.set_auto_read(writable);
    }
}

#[test]
fn queue_is_bounded_by_the_high_watermark_and_reading_resumes() {
    const HIGH: usize = 64 * 1024;
    const READ: usize = 16 * 1024;
    const TOTAL: usize = 16 * 1024 * 1024;
    let seen = Arc::new(Seen::default());
    let s2 = seen.clone();
    let opts = ChannelOptions::default()
        .write_buffer_watermarks(HIGH, HIGH / 2)
        .read_buffer_size(READ)
        // Small kernel buffers so the queue fills quickly.
        .send_buffer_size(32 * 1024)
        .recv_buffer_size(32 * 1024);
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .child_options(opts)
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new().inbound(WatchedEcho(s2.clone()))
        })
        .unwrap();

    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    let mut writer = client.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        for _ in 0..TOTAL / chunk.len() {
            writer.write_all(&chunk).unwrap();
        }
    });

    // The client does not read: the server must stop reading, not buffer.
    assert!(common::eventually(Duration::from_secs(10), || seen
        .paused
        .load(Ordering::SeqCst)));
    std::thread::sleep(Duration::from_millis(300));
    let max = seen.max_queued.load(Ordering::SeqCst);
    assert!(
        max <= HIGH + READ,
        "queued {max} bytes, above the high watermark plus one read"
    );
    assert!(
        !sender.is_finished(),
        "the client's writes should be blocked too"
    );

    // Now read everything: it must all come back, in order.
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    while got < TOTAL {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "server closed early");
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, (((got + i) % (64 * 1024)) % 251) as u8);
        }
        got += n;
    }
    sender.join().unwrap();
    assert!(seen.went_unwritable.load(Ordering::SeqCst) >= 1);
    assert!(seen.went_writable.load(Ordering::SeqCst) >= 1);
    assert!(seen.max_queued.load(Ordering::SeqCst) <= HIGH + READ);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
