//! The channel's state machine driven step by step, without a loop thread,
//! without `epoll_wait` and without sleeping: the test is the driver (see
//! `event_loop::by_hand`). It delivers the readiness the kernel would
//! report, moves the loop's clock by hand to fire the drain and handler
//! timers, and plays the peer on a loopback socket it reads and writes
//! synchronously. Covered here: the high and low watermarks, the graceful
//! close's drain (delivered, and cut by its deadline), the peer's EOF with
//! and without half-closure, and auto-read paused and resumed (with data
//! and with an EOF waiting). The io_uring forms of the same paths are run
//! by the integration suites under `GYRE_TRANSPORT=io_uring`.

use crate::event_loop::{by_hand, LoopInner};
use crate::handler::{InboundContext, InboundHandler, UserEvent};
use crate::options::ChannelOptions;
use crate::pipeline::Pipeline;
use bytes::{Bytes, BytesMut};
use mio::Token;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MIB: usize = 1 << 20;
const CHUNK: usize = 64 * 1024;

#[derive(Debug, PartialEq)]
enum Seen {
    Read(Vec<u8>),
    /// A writability change, with the bytes queued when it was reported.
    Writable(bool, usize),
    InputClosed,
    Inactive,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Records what reaches it and acts on a few commands from the peer.
struct Recorder {
    log: Log,
}

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

impl InboundHandler for Recorder {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        self.log.lock().unwrap().push(Seen::Read(msg.to_vec()));
        match &msg[..] {
            b"fill" | b"fill-close" => {
                for c in 0..MIB / CHUNK {
                    let chunk: Vec<u8> = (0..CHUNK).map(|i| pattern(c * CHUNK + i)).collect();
                    ctx.write(Bytes::from(chunk));
                }
                ctx.flush();
                if &msg[..] == b"fill-close" {
                    ctx.close();
                }
            }
            b"pause" => {
                ctx.set_auto_read(false);
                ctx.schedule(Duration::from_millis(100), 1);
            }
            _ => {}
        }
    }

    fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
        let queued = ctx.channel().queued_bytes();
        self.log
            .lock()
            .unwrap()
            .push(Seen::Writable(writable, queued));
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        if let UserEvent::InputClosed = event {
            self.log.lock().unwrap().push(Seen::InputClosed);
            if ctx.channel().options().allow_half_closure {
                ctx.write_and_flush(Bytes::from_static(b"bye"));
            }
        }
    }

    fn inactive(&mut self, _: &mut impl InboundContext<Self>) {
        self.log.lock().unwrap().push(Seen::Inactive);
    }

    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, _: u64) {
        ctx.set_auto_read(true);
    }
}

/// A channel on the hand-driven loop, the peer's end of its socket, and
/// what the handler saw.
struct Rig {
    lp: LoopInner,
    _poll: mio::Poll,
    token: Token,
    peer: TcpStream,
    log: Log,
}

impl Rig {
    fn new(opts: ChannelOptions) -> Rig {
        let (mut lp, poll) = by_hand::new().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // A small receive window on the peer's side, so each writable edge
        // moves a few kilobytes and the queue passes through every level
        // between the watermarks.
        let peer =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        peer.set_recv_buffer_size(8 * 1024).unwrap();
        peer.connect(&listener.local_addr().unwrap().into())
            .unwrap();
        let peer = TcpStream::from(peer);
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        peer.set_nonblocking(true).unwrap();
        let log = Log::default();
        let pipeline = Pipeline::new().inbound(Recorder { log: log.clone() });
        lp.add_accepted::<_, Bytes>(
            crate::socket::Stream::Tcp(mio::net::TcpStream::from_std(ours)),
            None,
            Arc::new(opts),
            pipeline.layers,
        );
        let token = lp.tokens()[0];
        Rig {
            lp,
            _poll: poll,
            token,
            peer,
            log,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.peer.write_all(bytes).unwrap();
    }

    /// Delivers readiness as epoll would report it.
    fn ready(&mut self, readable: bool, hup: bool, writable: bool) {
        self.lp
            .dispatch(self.token, |ch, lp| ch.ready(lp, readable, hup, writable));
    }

    /// Reads what has arrived; `None` at EOF.
    fn drain(&mut self, into: &mut Vec<u8>) -> Option<usize> {
        let mut buf = [0u8; 64 * 1024];
        let mut total = 0;
        loop {
            match self.peer.read(&mut buf) {
                Ok(0) => return (total > 0).then_some(total),
                Ok(n) => {
                    into.extend_from_slice(&buf[..n]);
                    total += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Some(total),
                Err(e) => panic!("peer read failed: {e}"),
            }
        }
    }

    /// The peer reads while the channel gets writable edges, until `done`
    /// (bounded: a channel that stops writing fails the test, not hangs it).
    fn read_until(&mut self, got: &mut Vec<u8>, mut done: impl FnMut(&Rig, &[u8]) -> bool) {
        for _ in 0..100_000 {
            if done(self, got) {
                return;
            }
            self.drain(got);
            if self.is_open() {
                self.ready(false, false, true);
            }
        }
        panic!(
            "the channel stopped making progress after {} bytes",
            got.len()
        );
    }

    fn is_open(&self) -> bool {
        self.lp.tokens().contains(&self.token)
    }

    fn seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

fn reads(seen: &[Seen]) -> Vec<&[u8]> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Read(b) => Some(&b[..]),
            _ => None,
        })
        .collect()
}

fn is_pattern(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| b == pattern(i))
}

#[test]
fn watermarks_turn_unwritable_above_high_and_writable_again_at_low() {
    // A wide gap between the watermarks: writability must come back at the
    // low one, not anywhere below the high one.
    let opts = ChannelOptions::default()
        .send_buffer_size(16 * 1024)
        .write_buffer_watermarks(256 * 1024, 64 * 1024);
    let (high, low) = (opts.high_watermark, opts.low_watermark);
    let mut rig = Rig::new(opts);
    rig.send(b"fill");
    rig.ready(true, false, false);
    let seen = rig.seen();
    assert_eq!(reads(&seen), [b"fill"]);
    let Some(Seen::Writable(false, queued)) = seen.last() else {
        panic!("a 1 MiB write did not turn the channel unwritable: {seen:?}");
    };
    assert!(*queued > high, "reported unwritable at {queued} queued");

    // A writable edge while the peer reads nothing changes nothing.
    rig.ready(false, false, true);
    assert_eq!(rig.seen(), []);

    let mut got = Vec::new();
    rig.read_until(&mut got, |rig, _| {
        rig.log
            .lock()
            .unwrap()
            .iter()
            .any(|s| matches!(s, Seen::Writable(true, _)))
    });
    let seen = rig.seen();
    let [Seen::Writable(true, queued)] = seen[..] else {
        panic!("expected one writable event, got {seen:?}");
    };
    assert!(
        queued <= low,
        "reported writable at {queued} queued, above the low watermark"
    );
    rig.read_until(&mut got, |_, got| got.len() == MIB);
    assert!(
        is_pattern(&got),
        "the bytes arrived changed or out of order"
    );
    assert_eq!(rig.seen(), [], "no more writability events once drained");
}

#[test]
fn graceful_close_delivers_everything_queued_then_closes() {
    let mut rig = Rig::new(ChannelOptions::default().send_buffer_size(16 * 1024));
    rig.send(b"fill-close");
    rig.ready(true, false, false);
    assert!(rig.is_open(), "closed with 1 MiB undelivered");
    assert!(!rig.seen().contains(&Seen::Inactive));
    let mut got = Vec::new();
    rig.read_until(&mut got, |rig, _| !rig.is_open());
    assert!(rig.seen().contains(&Seen::Inactive));
    // The socket is closed: what is left in flight arrives, then EOF.
    rig.peer.set_nonblocking(false).unwrap();
    rig.peer.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), MIB);
    assert!(is_pattern(&got));
}

#[test]
fn graceful_close_gives_up_at_the_drain_deadline_when_the_peer_stops_reading() {
    let opts = ChannelOptions::default()
        .send_buffer_size(16 * 1024)
        .close_drain_timeout(Duration::from_secs(2));
    let mut rig = Rig::new(opts);
    rig.send(b"fill-close");
    rig.ready(true, false, false);
    rig.lp.advance(Duration::from_millis(1_900));
    assert!(rig.is_open(), "closed before the drain deadline");
    assert!(!rig.seen().contains(&Seen::Inactive));
    rig.lp.advance(Duration::from_millis(200));
    assert!(!rig.is_open(), "still open after the drain deadline");
    assert!(rig.seen().contains(&Seen::Inactive));
}

#[test]
fn peer_eof_is_reported_then_closes_the_channel() {
    let mut rig = Rig::new(ChannelOptions::default());
    rig.send(b"last words");
    rig.peer.shutdown(Shutdown::Write).unwrap();
    rig.ready(true, true, false);
    assert_eq!(
        rig.seen(),
        [
            Seen::Read(b"last words".to_vec()),
            Seen::InputClosed,
            Seen::Inactive
        ]
    );
    assert!(!rig.is_open());
}

#[test]
fn with_half_closure_the_channel_answers_after_the_peer_eof() {
    let mut rig = Rig::new(ChannelOptions::default().allow_half_closure(true));
    rig.send(b"question");
    rig.peer.shutdown(Shutdown::Write).unwrap();
    rig.ready(true, true, false);
    assert_eq!(
        rig.seen(),
        [Seen::Read(b"question".to_vec()), Seen::InputClosed]
    );
    assert!(
        rig.is_open(),
        "half-closure allowed, yet the channel closed"
    );
    let mut got = Vec::new();
    rig.drain(&mut got);
    assert_eq!(got, b"bye");
}

#[test]
fn a_write_that_spent_its_bytes_per_event_goes_on_next_turn() {
    let mut rig = Rig::new(ChannelOptions::default().max_write_bytes_per_event(1000));
    rig.send(b"fill");
    rig.ready(true, false, false);
    let mut got = Vec::new();
    // Give the loopback a moment to carry what was written.
    let settle = || std::thread::sleep(Duration::from_millis(20));
    settle();
    rig.drain(&mut got);
    assert_eq!(got.len(), 1000, "the flush wrote past its bytes per event");
    // The socket took no more though it could: the loop comes back to it.
    assert_eq!(rig.lp.run_again(), 1);
    settle();
    rig.drain(&mut got);
    assert_eq!(got.len(), 2000, "the next turn wrote its 1000 bytes");
    assert!(is_pattern(&got));
    // And so on, a turn at a time, until the queue is empty.
    while rig.lp.run_again() == 1 {
        rig.drain(&mut got);
    }
    rig.read_until(&mut got, |_, got| got.len() == MIB);
    assert!(is_pattern(&got));
    // A turn for whatever yielded while `read_until` wrote on edges.
    rig.lp.run_again();
    assert_eq!(rig.lp.run_again(), 0, "an empty queue yields nothing");
}

#[test]
fn paused_reading_leaves_input_in_the_socket_until_resumed() {
    let mut rig = Rig::new(ChannelOptions::default());
    rig.send(b"pause");
    rig.ready(true, false, false);
    assert_eq!(reads(&rig.seen()), [b"pause"]);
    rig.send(b"more");
    rig.ready(true, false, false);
    assert_eq!(rig.seen(), [], "read while auto-read was off");
    assert_eq!(rig.lp.run_again(), 0);
    rig.lp.advance(Duration::from_millis(100));
    // Resuming asks for a re-read: no edge will announce data that came
    // while paused.
    assert_eq!(rig.lp.run_again(), 1);
    assert_eq!(reads(&rig.seen()), [b"more"]);
}

#[test]
fn an_eof_that_came_while_paused_is_seen_on_resume() {
    let mut rig = Rig::new(ChannelOptions::default());
    rig.send(b"pause");
    rig.ready(true, false, false);
    rig.seen();
    rig.send(b"tail");
    rig.peer.shutdown(Shutdown::Write).unwrap();
    // The edge that announces both is spent while paused.
    rig.ready(true, true, false);
    assert_eq!(rig.seen(), []);
    rig.lp.advance(Duration::from_millis(100));
    rig.lp.run_again();
    assert_eq!(
        rig.seen(),
        [
            Seen::Read(b"tail".to_vec()),
            Seen::InputClosed,
            Seen::Inactive
        ]
    );
    assert!(!rig.is_open());
}
