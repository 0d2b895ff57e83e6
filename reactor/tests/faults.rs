//! Faults: resets, half-closes, silent and vanishing peers, over-long
//! frames. (Connection churn has its own file: it counts descriptors, so
//! it must not share a process with other tests.)

mod common;

use bytes::{Bytes, BytesMut};
use common::{check_echo, echo_server, eventually, open_channels, Counters, Probe};
use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
use gyre_reactor::{ChannelOptions, InboundContext, InboundHandler, Pipeline, ServerBootstrap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Sends a large answer to any read.
struct Flood;

impl InboundHandler for Flood {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
        ctx.write_and_flush(Bytes::from(vec![1u8; 4 * 1024 * 1024]));
    }
}

#[test]
fn peer_reset_mid_write_ends_in_one_inactive() {
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .inbound(Probe::new(c.clone()))
                .inbound(Flood)
        })
        .unwrap();
    for _ in 0..20 {
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        s.write_all(b"go").unwrap();
        let mut some = [0u8; 1000];
        s.read_exact(&mut some).unwrap();
        // Linger zero: close sends a reset while the server is mid-write.
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
    }
    assert!(eventually(Duration::from_secs(10), || counters
        .inactive
        .load(Ordering::SeqCst)
        == 20));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(counters.active.load(Ordering::SeqCst), 20);
    assert_eq!(
        counters.inactive.load(Ordering::SeqCst),
        20,
        "exactly one inactive each"
    );
    assert_eq!(open_channels(&server), 0);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn half_close_gets_every_echo_then_eof() {
    let (server, counters) = echo_server(1, ChannelOptions::default());
    let msg: Vec<u8> = (0..300_000).map(|i| (i % 253) as u8).collect();
    let back =
        common::echo_half_closed(server.local_addr(), &msg, msg.len(), Duration::ZERO).unwrap();
    assert!(back == msg, "echo after half-close differs");
    assert!(eventually(Duration::from_secs(5), || counters
        .inactive
        .load(Ordering::SeqCst)
        == 1));
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

/// The FIN arrives while the server is not reading (its queue is over the
/// high watermark, auto-read off): the edge that announced it is spent, so
/// the server must still find the EOF when it resumes reading, and close.
#[test]
fn eof_that_arrives_while_reading_is_paused_is_not_lost() {
    for size in [4 << 20, 200_000, 100] {
        let (server, counters) = echo_server(1, ChannelOptions::default());
        let msg: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        // Not reading at first: the server's echoes back up and it pauses.
        let read = common::echo_half_closed(
            server.local_addr(),
            &msg,
            msg.len(),
            Duration::from_millis(300),
        );
        assert!(read.is_ok(), "{size} B: no EOF from the server: {read:?}");
        assert!(read.unwrap() == msg, "{size} B: echo differs");
        assert!(eventually(Duration::from_secs(5), || counters
            .inactive
            .load(Ordering::SeqCst)
            == 1));
        server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    }
}

/// Pauses reading after its first read and resumes from a timer, writing
/// nothing, so no write-space wake-up re-announces the peer's FIN.
struct PauseThenResume;

impl InboundHandler for PauseThenResume {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
        if ctx.channel().bytes_read() == 1 {
            ctx.set_auto_read(false);
            ctx.schedule(Duration::from_millis(300), 0);
        }
    }

    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, _: u64) {
        ctx.set_auto_read(true);
    }
}

/// Data and FIN arrive while reading is switched off; their one edge is
/// spent then. When reading resumes, a short read must not be taken for
/// "drained, wait for the next edge": the EOF is already there.
#[test]
fn eof_behind_a_short_read_after_resuming_is_seen() {
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .inbound(Probe::<BytesMut, Bytes>::new(c.clone()))
                .inbound(PauseThenResume)
        })
        .unwrap();
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.write_all(b"a").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(b"more").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert!(
        eventually(Duration::from_secs(3), || counters
            .inactive
            .load(Ordering::SeqCst)
            == 1),
        "the server never saw the EOF"
    );
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn silent_connections_do_not_disturb_others() {
    let (server, counters) = echo_server(1, ChannelOptions::default());
    let silent: Vec<_> = (0..50)
        .map(|_| TcpStream::connect(server.local_addr()).unwrap())
        .collect();
    check_echo(server.local_addr());
    assert!(eventually(Duration::from_secs(5), || counters
        .active
        .load(Ordering::SeqCst)
        == 51));
    drop(silent);
    assert!(eventually(Duration::from_secs(5), || counters
        .inactive
        .load(Ordering::SeqCst)
        == 51));
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

/// Echoes lines.
struct LineEcho;

impl InboundHandler for LineEcho {
    type Read = Bytes;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, line: Bytes) {
        ctx.write_and_flush(line);
    }
}

#[test]
fn over_long_frame_closes_only_its_connection() {
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
                .inbound(Probe::new(c.clone()))
                .inbound(LineEcho)
        })
        .unwrap();
    let good = TcpStream::connect(server.local_addr()).unwrap();
    let mut good_r = BufReader::new(good.try_clone().unwrap());
    let mut good_w = good;
    let mut bad = TcpStream::connect(server.local_addr()).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

    good_w.write_all(b"one\n").unwrap();
    // A 64 KiB line: the decoder discards it past 1 KiB and reports it when
    // its end arrives (fail-fast off, as in Netty's default).
    let mut long = vec![b'x'; 64 * 1024];
    long.push(b'\n');
    let _ = bad.write_all(&long);
    good_w.write_all(b"two\n").unwrap();

    let mut line = String::new();
    good_r.read_line(&mut line).unwrap();
    assert_eq!(line, "one\n");
    line.clear();
    good_r.read_line(&mut line).unwrap();
    assert_eq!(line, "two\n");

    let mut rest = Vec::new();
    match bad.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty()),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    assert_eq!(counters.errors.load(Ordering::SeqCst), 1);

    good_w.write_all(b"three\n").unwrap();
    line.clear();
    good_r.read_line(&mut line).unwrap();
    assert_eq!(line, "three\n");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

/// Records every line it reads.
struct Lines(Arc<std::sync::Mutex<Vec<String>>>);

impl InboundHandler for Lines {
    type Read = Bytes;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, _: &mut impl InboundContext<Self>, line: Bytes) {
        let line = String::from_utf8_lossy(&line).into_owned();
        self.0.lock().unwrap().push(line);
    }
}

#[test]
fn a_last_line_cut_short_by_the_peer_closing_is_reported_not_delivered() {
    // Before: the decoder handed `SET b hal` on as a line at EOF, and a
    // key-value server stored a half value.
    let counters = Arc::new(Counters::default());
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, l) = (counters.clone(), lines.clone());
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
                .inbound(Probe::new(c.clone()))
                .inbound(Lines(l.clone()))
        })
        .unwrap();
    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    client.write_all(b"SET a 1\nSET b hal").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    assert!(eventually(Duration::from_secs(5), || {
        counters.errors.load(Ordering::SeqCst) == 1
    }));
    assert_eq!(*lines.lock().unwrap(), ["SET a 1"]);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
