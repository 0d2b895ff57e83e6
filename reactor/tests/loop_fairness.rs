//! A loop's own work does not hold it: a task that schedules itself again
//! runs once per turn, not until it stops rescheduling, so the channels on
//! the same loop are answered all along.
//!
//! Before the bound, the loop ran its task queue until it was empty, so a
//! task that put itself back (the way a long job is cut into steps) ran
//! again at once, and the loop never polled its sockets again while it
//! did.
//!
//! Runs on the transport `GYRE_TRANSPORT` names, over loopback TCP.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_reactor::{
    ChannelOptions, EventLoop, InboundContext, InboundHandler, Pipeline, ServerBootstrap,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// A task that runs a step, then puts itself back on its loop until told
/// to stop.
fn step_forever(lp: EventLoop, steps: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    steps.fetch_add(1, Ordering::Relaxed);
    if stop.load(Ordering::Relaxed) {
        return;
    }
    let again = lp.clone();
    lp.execute(move || step_forever(again, steps, stop))
        .expect("the loop is alive");
}

/// The tests measure a loop's turns against a client thread's round
/// trips: one at a time, so that neither takes the other's vCPU.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn a_task_that_reschedules_itself_does_not_hold_its_loop() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (server, _) = common::echo_server(1, ChannelOptions::default());
    let lp = server.worker_group().loops()[0].clone();
    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    client.set_nodelay(true).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    common::check_echo(server.local_addr());

    let steps = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (s, t, again) = (steps.clone(), stop.clone(), lp.clone());
    lp.execute(move || step_forever(again, s, t)).unwrap();

    // Echoes one at a time while the task keeps putting itself back: each
    // must be answered, and the task must go on between them.
    let mut between = Vec::new();
    let mut last = steps.load(Ordering::Relaxed);
    for round in 0..50u8 {
        client.write_all(&[round; 16]).unwrap();
        let mut back = [0u8; 16];
        if let Err(e) = client.read_exact(&mut back) {
            stop.store(true, Ordering::Relaxed);
            panic!("echo {round} not answered while the task ran ({e}): the task holds the loop");
        }
        assert_eq!(back, [round; 16]);
        let now = steps.load(Ordering::Relaxed);
        between.push(now - last);
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    // Each echo takes the loop at least a turn and each turn runs the
    // task once: about one step an echo on a busy host, five here alone.
    let total: u64 = between.iter().sum();
    assert!(
        total >= 45,
        "the task did not go on between the echoes: {between:?}"
    );
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

/// Connections waiting in the backlog when the loop looks: most of the
/// default backlog (1024).
const FLOOD: usize = 1000;

/// Counts the connections the loop has set up, and answers anything a
/// connection sends with that count (8 bytes): how many the loop accepted
/// before it read the question.
struct Tally(Arc<AtomicUsize>);

impl InboundHandler for Tally {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn active(&mut self, _: &mut impl InboundContext<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
        let count = self.0.load(Ordering::SeqCst) as u64;
        ctx.write(Bytes::copy_from_slice(&count.to_le_bytes()));
        ctx.flush();
    }
}

/// The count the server answers `pinger`'s next question with.
fn ask(pinger: &mut TcpStream) -> usize {
    pinger.write_all(b"?").unwrap();
    let mut count = [0u8; 8];
    pinger.read_exact(&mut count).unwrap();
    u64::from_le_bytes(count) as usize
}

#[test]
fn a_flood_of_connections_does_not_hold_its_loop() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::raise_fd_limit();
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new().inbound(Tally(a.clone()))
        })
        .unwrap();
    let addr = server.local_addr();
    let lp = server.worker_group().loops()[0].clone();
    let mut pinger = TcpStream::connect(addr).unwrap();
    pinger.set_nodelay(true).unwrap();
    pinger
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(ask(&mut pinger), 1);

    // Hold the loop (a test's task may block it) while the flood fills
    // the backlog and then the pinger's question waits behind it.
    let (release, held) = mpsc::channel::<()>();
    lp.execute(move || {
        let _ = held.recv_timeout(Duration::from_secs(30));
    })
    .unwrap();
    let flood: Vec<TcpStream> = (0..FLOOD)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    pinger.write_all(b"?").unwrap();
    release.send(()).unwrap();
    let mut count = [0u8; 8];
    pinger.read_exact(&mut count).unwrap();
    // Counted when the loop read the question, so the pinger's own
    // wake-ups do not enter it.
    let before = u64::from_le_bytes(count) as usize - 1;
    assert!(
        before <= FLOOD / 4,
        "the loop set up {before} of the {FLOOD} waiting connections before it read a question that was waiting as long"
    );
    // And the rest are served on the turns after.
    assert!(
        common::eventually(Duration::from_secs(10), || {
            accepted.load(Ordering::SeqCst) == FLOOD + 1
        }),
        "{} of {FLOOD} accepted",
        accepted.load(Ordering::SeqCst) - 1
    );
    assert_eq!(ask(&mut pinger), FLOOD + 1);
    drop(flood);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
