//! One channel's long send does not hold its loop: while a loop sends a
//! large file (with `sendfile`, or spliced) or a long queue of bytes to a
//! reader that keeps up, another connection on the same loop is answered
//! again and again. Each channel writes at most its bytes per event
//! (`ChannelOptions::max_write_bytes_per_event`) and the loop comes back
//! to it next turn. Before that bound, one `sendfile` call (or one
//! gathered `sendmsg`, or a splice loop that never found the socket full)
//! took most of the send while the other connection waited.
//!
//! Measured in bytes, not time: the most the long send's reader got
//! between two answers to the other connection. With the bound it was
//! 1-17 MiB on the AMD EPYC VM (the pinger's own wake-ups set it), without
//! it 92-511 MiB of the 512, on both transports.
//!
//! Runs on the transport `GYRE_TRANSPORT` names, over loopback TCP.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_reactor::{
    ChannelOptions, FileSend, InboundContext, InboundHandler, Outbound, Pipeline, ServerBootstrap,
};
use gyre_zerocopy::FileRegion;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the long send is made of.
#[derive(Clone, Copy, Debug)]
enum Long {
    File(FileSend),
    Bytes,
}

/// Bytes in the long send: a few tens of milliseconds at this host's
/// loopback speed (3-6 GiB/s), hundreds of bounded writes.
const LONG: u64 = 512 << 20;

/// `long` starts the long send on this connection; anything else is
/// echoed.
struct Server {
    file: PathBuf,
    long: Long,
}

impl InboundHandler for Server {
    type Read = BytesMut;
    type Pass = ();
    type Write = Outbound;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        if &msg[..] == b"long" {
            match self.long {
                Long::File(_) => ctx.write(FileRegion::open(&self.file).unwrap().into()),
                Long::Bytes => {
                    let chunk = Bytes::from(vec![7u8; 1 << 20]);
                    for _ in 0..LONG >> 20 {
                        ctx.write(chunk.clone().into());
                    }
                }
            }
        } else {
            ctx.write(msg.freeze().into());
        }
        ctx.flush();
    }
}

/// Reads everything the connection sends, discarding it in the kernel
/// (`MSG_TRUNC`) so the reader outruns the sender, and counts it.
fn drain(stream: TcpStream, received: Arc<AtomicU64>) {
    let fd = stream.as_raw_fd();
    loop {
        // SAFETY: with MSG_TRUNC a TCP socket drops the bytes without
        // copying them; the null buffer is never written.
        let n = unsafe { libc::recv(fd, std::ptr::null_mut(), 1 << 20, libc::MSG_TRUNC) };
        if n <= 0 {
            return;
        }
        if received.fetch_add(n as u64, Ordering::Relaxed) + n as u64 >= LONG {
            return;
        }
    }
}

/// Starts a one-loop server, asks one connection for the long send, and
/// has another connection on the same loop ask for echoes, one at a time,
/// until the send is over. Returns the most bytes the long send's reader
/// got between two echoes.
fn widest_gap_between_echoes(long: Long, opts: ChannelOptions) -> u64 {
    let file = gyre_testkit::scratch_root().join(format!(
        "gyre-write-fairness-{}-{long:?}",
        std::process::id()
    ));
    std::fs::File::create(&file)
        .and_then(|f| f.set_len(LONG))
        .unwrap();
    let opts = match long {
        Long::File(path) => opts.file_send(path),
        Long::Bytes => opts,
    };
    let path = file.clone();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .child_options(opts)
        .bind("127.0.0.1:0", move |_| {
            Pipeline::with_file_regions().inbound(Server {
                file: path.clone(),
                long,
            })
        })
        .unwrap();
    let mut pinger = TcpStream::connect(server.local_addr()).unwrap();
    pinger.set_nodelay(true).unwrap();
    pinger
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut asker = TcpStream::connect(server.local_addr()).unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stream, received) = (asker.try_clone().unwrap(), received.clone());
        // A send that stalls ends the reader (and fails the test below)
        // rather than hanging it.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        std::thread::spawn(move || drain(stream, received))
    };
    asker.write_all(b"long").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the long send never started");
        std::thread::yield_now();
    }
    let mut answer = [0u8; 4];
    let mut last = received.load(Ordering::Relaxed);
    let mut widest = 0;
    while last < LONG {
        assert!(
            Instant::now() < deadline,
            "the long send stalled after {} MiB",
            last >> 20
        );
        pinger.write_all(b"ping").unwrap();
        pinger.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"ping");
        let now = received.load(Ordering::Relaxed);
        widest = widest.max(now - last);
        last = now;
    }
    reader.join().unwrap();
    assert_eq!(received.load(Ordering::Relaxed), LONG, "every byte arrives");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    let _ = std::fs::remove_file(&file);
    widest
}

/// The most of the long send that may go by between two echoes: an
/// eighth of it. Bounded writes stayed far below (1-17 MiB), unbounded
/// ones far above (92 MiB and more).
const WIDEST: u64 = LONG / 8;

/// One case at a time: each keeps both cores busy (the loop sending, the
/// reader draining), and two at once would measure each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check(long: Long) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let widest = widest_gap_between_echoes(long, ChannelOptions::default());
    assert!(
        widest <= WIDEST,
        "{long:?}: {} MiB of the {} MiB send went by without an answer to another connection",
        widest >> 20,
        LONG >> 20
    );
}

#[test]
fn a_file_sent_with_sendfile_leaves_the_loop_to_others() {
    check(Long::File(FileSend::Sendfile));
}

#[test]
fn a_spliced_file_leaves_the_loop_to_others() {
    check(Long::File(FileSend::Splice { pipe: 1 << 20 }));
}

#[test]
fn a_long_queue_of_bytes_leaves_the_loop_to_others() {
    check(Long::Bytes);
}
