//! `ChannelHandle::lend_input` over real loopback sockets, on the
//! transport `GYRE_TRANSPORT` names: what a holder reads the loop never
//! sees, what it gives back the loop reads first, bytes that arrive while
//! the input is lent are never lost, no lend is offered while a decoder
//! holds part of a frame, a thread woken at `read_complete` finds the
//! input offered, a closing channel wakes a sleeping holder, bytes
//! read under lends keep the reader-idle event away, across thousands of
//! lends every byte is read exactly once, in order, and an input watch
//! fires for input, deadlines and the close without keeping the socket
//! open.

mod common;

use common::{lend, Record};

use bytes::{Bytes, BytesMut};
use gyre_codec::LineDecoder;
use gyre_reactor::{
    Bootstrap, ChannelHandle, ChannelOptions, IdleState, IdleStateHandler, InboundContext,
    InboundHandler, InputLend, Pipeline, Transport, UserEvent,
};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn lending() -> ChannelOptions {
    ChannelOptions::default()
        .direct_writes(true)
        .lend_input(true)
}

/// A lending channel with the pipeline `init` makes, and its peer.
fn connect<L, R, W, S>(
    group: &gyre_reactor::EventLoopGroup,
    init: impl FnOnce(std::net::SocketAddr) -> Pipeline<L, R, W, S> + Send + 'static,
) -> (ChannelHandle<L::TailWrite>, TcpStream)
where
    L: gyre_reactor::InboundChain<BytesMut, S> + 'static,
    S: Into<gyre_reactor::Outbound> + 'static,
    L::TailWrite: Send + 'static,
    R: 'static,
    W: 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let handle = Bootstrap::new(group.clone())
        .options(lending())
        .connect(listener.local_addr().unwrap(), init)
        .unwrap();
    let (peer, _) = listener.accept().unwrap();
    (handle, peer)
}

/// A lending channel, its peer, and what its loop reads.
fn channel(
    group: &gyre_reactor::EventLoopGroup,
) -> (ChannelHandle<Bytes>, TcpStream, mpsc::Receiver<BytesMut>) {
    let (tx, rx) = mpsc::channel();
    let (handle, peer) = connect(group, move |_| Pipeline::new().inbound(Record(tx)));
    (handle, peer, rx)
}

/// Runs `test` on a group of one loop, on epoll only (io_uring channels
/// lend nothing: checked in the first test), and shuts the group down.
fn on_epoll(test: impl FnOnce(&gyre_reactor::EventLoopGroup)) {
    let group = common::group(1);
    if common::transport() == Transport::Epoll {
        test(&group);
    }
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

/// Reads under `lend` until `buf` holds `n` bytes.
fn read_to(lend: &mut InputLend, buf: &mut BytesMut, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while buf.len() < n {
        assert!(lend.read(buf, deadline).unwrap() > 0, "input ended early");
    }
}

/// What the loop reads within `within`, joined.
fn loop_read(rx: &mpsc::Receiver<BytesMut>, n: usize, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => got.extend_from_slice(&chunk),
            Err(_) => break,
        }
    }
    got
}

#[test]
fn what_a_holder_takes_the_loop_never_sees_and_what_it_gives_back_comes_first() {
    let group = common::group(1);
    let (handle, mut peer, rx) = channel(&group);
    if common::transport() != Transport::Epoll {
        std::thread::sleep(Duration::from_millis(20));
        assert!(handle.lend_input().is_none(), "io_uring lends nothing");
        group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
        return;
    }
    let mut l = lend(&handle);
    assert!(handle.lend_input().is_none(), "one holder at a time");
    peer.write_all(b"mine|yours").unwrap();
    let mut buf = BytesMut::new();
    read_to(&mut l, &mut buf, 10);
    let rest = buf.split_off(5);
    assert_eq!(&buf[..], b"mine|");
    l.give_back(rest);
    peer.write_all(b"|later").unwrap();
    let got = loop_read(&rx, 11, Duration::from_secs(5));
    assert_eq!(got, b"yours|later", "given back first, then the socket's");
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn bytes_that_arrive_while_lent_and_are_not_read_reach_the_loop() {
    on_epoll(|group| {
        let (handle, mut peer, rx) = channel(group);
        let mut l = lend(&handle);
        peer.write_all(b"answer").unwrap();
        let mut buf = BytesMut::new();
        read_to(&mut l, &mut buf, 6);
        // More arrives while the holder still holds the input; the loop is
        // told of it and must not read it, nor lose it.
        peer.write_all(b"ping").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(rx.try_recv().is_err(), "the loop read lent input");
        drop(l);
        assert_eq!(loop_read(&rx, 4, Duration::from_secs(5)), b"ping");
    });
}

#[test]
fn no_lend_while_a_decoder_holds_part_of_a_frame() {
    on_epoll(|group| {
        let (tx, rx) = mpsc::channel::<Bytes>();
        let (handle, mut peer) = connect(group, move |_| {
            Pipeline::new()
                .decoder(LineDecoder::new(1024))
                .inbound(Record(tx))
        });
        drop(lend(&handle));
        peer.write_all(b"half a li").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            handle.lend_input().is_none(),
            "lent with part of a line in the decoder"
        );
        peer.write_all(b"ne\n").unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            "half a line"
        );
        drop(lend(&handle));
    });
}

/// Tells the test at each `read_complete`, then holds its loop there a
/// while: a loop thread preempted just after waking a waiter.
struct WakeAtReadComplete(mpsc::Sender<()>);

impl InboundHandler for WakeAtReadComplete {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, _: &mut impl InboundContext<Self>, _: BytesMut) {}

    fn read_complete(&mut self, _: &mut impl InboundContext<Self>) {
        let _ = self.0.send(());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A thread woken at `read_complete` (where a handler hands over the
/// answers a batch settled) finds the input offered at once, however
/// late the loop gets on: the offer comes before `read_complete`. Before,
/// it came after, and a caller woken there that sent its next call at
/// once, call after call, never found the input offered.
#[test]
fn a_thread_woken_at_read_complete_finds_the_input_offered() {
    on_epoll(|group| {
        let (tx, rx) = mpsc::channel();
        let (handle, mut peer) = connect(group, move |_| {
            Pipeline::new().inbound(WakeAtReadComplete(tx))
        });
        drop(lend(&handle));
        for round in 0..3 {
            peer.write_all(b"answer").unwrap();
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
            assert!(
                handle.lend_input().is_some(),
                "round {round}: no offer when read_complete woke its waiter"
            );
        }
    });
}

/// Hands every idle event to the test.
struct Idles(mpsc::Sender<IdleState>);

impl InboundHandler for Idles {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, _: &mut impl InboundContext<Self>, _: BytesMut) {}

    fn user_event(&mut self, _: &mut impl InboundContext<Self>, event: UserEvent) {
        if let UserEvent::Idle(idle) = event {
            let _ = self.0.send(idle.state);
        }
    }
}

/// The peer writes only while a holder holds the input, which reads it
/// all, so the loop reads nothing for ten reader-idle periods: the bytes
/// its holders read still count as reading, and no reader-idle fires.
#[test]
fn bytes_read_under_lends_keep_the_reader_idle_event_away() {
    on_epoll(|group| {
        let (tx, idles) = mpsc::channel();
        let (handle, mut peer) = connect(group, move |_| {
            Pipeline::new()
                .inbound(IdleStateHandler::new(
                    Duration::from_millis(50),
                    Duration::ZERO,
                    Duration::ZERO,
                ))
                .inbound(Idles(tx))
        });
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            let mut l = lend(&handle);
            peer.write_all(b"tick").unwrap();
            let mut buf = BytesMut::new();
            read_to(&mut l, &mut buf, 4);
            l.give_back(BytesMut::new());
            std::thread::sleep(Duration::from_millis(5));
        }
        let fired: Vec<IdleState> = idles.try_iter().collect();
        assert!(
            !fired.contains(&IdleState::ReaderIdle),
            "reader idle while reading under lends: {fired:?}"
        );
    });
}

#[test]
fn a_closing_channel_wakes_a_holder_asleep_on_its_input() {
    on_epoll(|group| {
        let (handle, _peer, _rx) = channel(group);
        let holder = {
            let handle = handle.clone();
            std::thread::spawn(move || {
                let mut l = lend(&handle);
                let started = Instant::now();
                let mut buf = BytesMut::new();
                let got = l.read(&mut buf, Instant::now() + Duration::from_secs(30));
                (got.ok(), started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        handle.close().unwrap();
        let (got, waited) = holder.join().unwrap();
        assert_eq!(got, Some(0), "the holder sees the end of input");
        assert!(
            waited < Duration::from_secs(10),
            "woken by the close: {waited:?}"
        );
    });
}

#[test]
fn a_holder_times_out_at_its_deadline() {
    on_epoll(|group| {
        let (handle, _peer, _rx) = channel(group);
        let mut l = lend(&handle);
        let started = Instant::now();
        let mut buf = BytesMut::new();
        let e = l
            .read(&mut buf, Instant::now() + Duration::from_millis(50))
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(l);
    });
}

/// Thousands of rounds, each a message the holder waits for and takes
/// (all the whole messages it read, or the first only), with messages
/// that land while it holds the input and ones that land while nobody
/// does: every message is read exactly once, by the holder or the loop,
/// and each of them reads its share in the order it was sent.
#[test]
fn every_message_is_read_once_in_order_across_many_lends() {
    on_epoll(|group| {
        let (handle, peer, rx) = channel(group);
        const ROUNDS: usize = 3000;
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let sender = std::thread::spawn(move || {
            let mut peer = peer;
            let mut sent = Vec::new();
            for round in 0..ROUNDS {
                // The holder's message, once it holds the input.
                let _ = go_rx.recv();
                sent.push(format!("<{round}>"));
                if round % 3 == 0 {
                    // Something more, racing the holder's leaving.
                    sent.push(format!("[{round}]"));
                }
                let at = if round % 3 == 0 { 2 } else { 1 };
                for msg in &sent[sent.len() - at..] {
                    peer.write_all(msg.as_bytes()).unwrap();
                }
            }
            sent
        });
        let ends = |b: &[u8]| b.iter().rposition(|&c| c == b'>' || c == b']');
        let first_end = |b: &[u8]| b.iter().position(|&c| c == b'>' || c == b']');
        let mut taken = Vec::new();
        for round in 0..ROUNDS {
            let mut l = lend(&handle);
            go_tx.send(()).unwrap();
            let mut buf = BytesMut::new();
            let deadline = Instant::now() + Duration::from_secs(5);
            while first_end(&buf).is_none() {
                assert!(l.read(&mut buf, deadline).unwrap() > 0, "input ended early");
            }
            let keep = if round % 2 == 0 {
                ends(&buf)
            } else {
                first_end(&buf)
            };
            let rest = buf.split_off(keep.unwrap() + 1);
            taken.extend_from_slice(&buf);
            l.give_back(rest);
        }
        let sent = sender.join().unwrap();
        let total: usize = sent.iter().map(String::len).sum();
        let from_loop = loop_read(&rx, total - taken.len(), Duration::from_secs(10));
        let split = |b: &[u8]| -> Vec<String> {
            let text = String::from_utf8(b.to_vec()).unwrap();
            let mut msgs = Vec::new();
            let mut start = 0;
            for (i, c) in text.char_indices() {
                if c == '>' || c == ']' {
                    msgs.push(text[start..=i].to_string());
                    start = i + 1;
                }
            }
            assert_eq!(start, text.len(), "a message cut short");
            msgs
        };
        let position = |m: &String| {
            sent.iter()
                .position(|s| s == m)
                .expect("a message never sent")
        };
        let (held, looped) = (split(&taken), split(&from_loop));
        assert_eq!(
            held.len() + looped.len(),
            sent.len(),
            "messages lost or read twice"
        );
        for share in [&held, &looped] {
            let at: Vec<usize> = share.iter().map(position).collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "a share out of order");
        }
    });
}

/// Whether `watch` polls readable within `ms` milliseconds.
fn watch_ready(watch: &gyre_reactor::InputWatch, ms: i32) -> bool {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: watch.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live `pollfd`.
    unsafe { libc::poll(&mut fd, 1, ms) == 1 }
}

/// An input watch fires for input and at its deadline, not after the
/// input is read; it fires when the loop closes the channel under a
/// waiting holder; and, kept after the channel closed, it does not keep
/// the socket open: the peer sees the close.
#[test]
fn an_input_watch_fires_for_input_deadlines_and_the_close_and_holds_nothing_open() {
    on_epoll(|group| {
        let (handle, mut peer, _rx) = channel(group);
        let mut held = lend(&handle);
        let watch = held.watch().unwrap();
        assert!(!watch_ready(&watch, 0));
        peer.write_all(b"news").unwrap();
        assert!(watch_ready(&watch, 5_000), "input");
        let mut buf = BytesMut::new();
        assert_eq!(held.try_read(&mut buf).unwrap(), 4);
        let would_block = held.try_read(&mut buf).unwrap_err();
        assert_eq!(would_block.kind(), std::io::ErrorKind::WouldBlock);
        assert!(!watch_ready(&watch, 0), "read: quiet");
        let t = Instant::now();
        watch.wake_at(t + Duration::from_millis(20)).unwrap();
        assert!(watch_ready(&watch, 5_000), "the deadline");
        assert!(t.elapsed() >= Duration::from_millis(19));
        // A later deadline re-arms a timer that has fired.
        watch
            .wake_at(Instant::now() + Duration::from_secs(60))
            .unwrap();
        assert!(!watch_ready(&watch, 0), "re-armed: quiet");
        // The loop closes while the input is lent: the holder's watch
        // fires and its read ends.
        handle.close().unwrap();
        assert!(watch_ready(&watch, 5_000), "the close");
        assert_eq!(held.try_read(&mut buf).unwrap(), 0);
        held.give_back(BytesMut::new());
        // The watch lives on; the socket does not.
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut peer, &mut byte).unwrap(), 0);
        drop(watch);
    });
}
