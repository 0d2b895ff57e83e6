//! `ChannelHandle::wait_for_input` over real loopback sockets, on the
//! transport `GYRE_TRANSPORT` names: input from the peer wakes the waiter
//! and stays for the loop, which reads all of it; an alarm rung after
//! the news wakes it every time across thousands of races, a ring left
//! over from an earlier wait never passes for news, and channels that
//! offer no such wait (io_uring, direct writes off) say so at once.

mod common;

use bytes::BytesMut;
use gyre_reactor::{
    Alarm, Bootstrap, ChannelHandle, ChannelOptions, InboundContext, InboundHandler, InputWait,
    Pipeline, Transport,
};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts the bytes the loop reads.
struct Count(Arc<AtomicUsize>);

impl InboundHandler for Count {
    type Read = BytesMut;
    type Pass = ();
    type Write = bytes::Bytes;

    fn read(&mut self, _: &mut impl InboundContext<Self>, msg: BytesMut) {
        self.0.fetch_add(msg.len(), Ordering::Relaxed);
    }
}

/// A channel with direct writes on, its peer, and what its loop has read.
fn channel(
    group: &gyre_reactor::EventLoopGroup,
    options: ChannelOptions,
) -> (ChannelHandle<bytes::Bytes>, TcpStream, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let read = Arc::new(AtomicUsize::new(0));
    let counter = read.clone();
    let handle = Bootstrap::new(group.clone())
        .options(options)
        .connect(listener.local_addr().unwrap(), move |_| {
            Pipeline::new().inbound(Count(counter))
        })
        .unwrap();
    let (peer, _) = listener.accept().unwrap();
    (handle, peer, read)
}

fn direct() -> ChannelOptions {
    ChannelOptions::default().direct_writes(true)
}

fn epoll_only() -> bool {
    common::transport() == Transport::Epoll
}

#[test]
fn input_wakes_the_waiter() {
    let group = common::group(1);
    // A loop that does not read, so the input stays until the wait sees it.
    let (handle, peer, read) = channel(&group, direct().auto_read(false));
    let alarm = Alarm::new().unwrap();
    if !epoll_only() {
        let woke = handle.wait_for_input(&alarm, || false, Duration::from_millis(10));
        assert_eq!(woke, InputWait::Unsupported);
        group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
        return;
    }
    let quiet = handle.wait_for_input(&alarm, || false, Duration::from_millis(20));
    assert_eq!(quiet, InputWait::TimedOut, "no input, no news");
    let writer = std::thread::spawn({
        let mut peer = peer.try_clone().unwrap();
        move || {
            std::thread::sleep(Duration::from_millis(20));
            peer.write_all(b"0123456789").unwrap();
        }
    });
    let t = Instant::now();
    let woke = handle.wait_for_input(&alarm, || false, Duration::from_secs(10));
    writer.join().unwrap();
    assert_eq!(woke, InputWait::Input);
    assert!(t.elapsed() < Duration::from_secs(5), "woken by the input");
    assert_eq!(read.load(Ordering::Relaxed), 0, "nothing read");
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn waiting_beside_the_loop_takes_none_of_its_input() {
    if !epoll_only() {
        return;
    }
    let group = common::group(1);
    let (handle, peer, read) = channel(&group, direct());
    let alarm = Alarm::new().unwrap();
    const ROUNDS: usize = 200;
    let writer = std::thread::spawn({
        let mut peer = peer.try_clone().unwrap();
        move || {
            for _ in 0..ROUNDS {
                peer.write_all(b"0123456789").unwrap();
                std::thread::sleep(Duration::from_micros(300));
            }
        }
    });
    let mut inputs = 0;
    while read.load(Ordering::Relaxed) < ROUNDS * 10 {
        // Input, or the loop took it before this thread was in `poll`;
        // never news, since nobody rings.
        match handle.wait_for_input(&alarm, || false, Duration::from_millis(5)) {
            InputWait::Input => inputs += 1,
            InputWait::TimedOut => {}
            other => panic!("{other:?}"),
        }
    }
    writer.join().unwrap();
    assert_eq!(
        read.load(Ordering::Relaxed),
        ROUNDS * 10,
        "the loop read it all"
    );
    assert!(inputs > 0, "some input was seen beside the loop");
    drop(peer);
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn a_ring_after_the_news_always_wakes_the_waiter() {
    if !epoll_only() {
        return;
    }
    let group = common::group(1);
    let (handle, _peer, _) = channel(&group, direct());
    let alarm = Arc::new(Alarm::new().unwrap());
    for round in 0..5_000u32 {
        let news = Arc::new(AtomicBool::new(false));
        let (a, n) = (alarm.clone(), news.clone());
        let publisher = std::thread::spawn(move || {
            // Vary the race: sometimes before the waiter arms, sometimes
            // while it sleeps.
            for _ in 0..(round % 64) * 50 {
                std::hint::spin_loop();
            }
            n.store(true, Ordering::Release);
            a.ring();
        });
        let t = Instant::now();
        let woke = handle.wait_for_input(
            &alarm,
            || news.load(Ordering::Acquire),
            Duration::from_secs(10),
        );
        let took = t.elapsed();
        publisher.join().unwrap();
        assert_eq!(woke, InputWait::Ready, "round {round}");
        // A lost ring shows as a wait that lasts its whole timeout (after
        // which `ready` is looked at again and says yes).
        assert!(
            took < Duration::from_secs(5),
            "round {round}: woken after {took:?}"
        );
    }
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn a_stale_ring_is_not_news() {
    if !epoll_only() {
        return;
    }
    let group = common::group(1);
    let (handle, _peer, _) = channel(&group, direct());
    let alarm = Alarm::new().unwrap();
    // Rung with nobody waiting is nothing; rung while armed leaves the
    // eventfd readable, as a ring that lands late does.
    alarm.ring();
    let woke = handle.wait_for_input(
        &alarm,
        || {
            alarm.ring();
            false
        },
        Duration::from_millis(100),
    );
    assert_eq!(
        woke,
        InputWait::TimedOut,
        "rings without news do not end a wait"
    );
    let t = Instant::now();
    let woke = handle.wait_for_input(&alarm, || false, Duration::from_millis(50));
    assert_eq!(woke, InputWait::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(50), "slept its time");
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn channels_without_the_wait_say_so_at_once() {
    let group = common::group(1);
    let (handle, _peer, _) = channel(&group, ChannelOptions::default());
    let alarm = Alarm::new().unwrap();
    let t = Instant::now();
    let woke = handle.wait_for_input(&alarm, || false, Duration::from_secs(10));
    assert_eq!(woke, InputWait::Unsupported);
    assert!(t.elapsed() < Duration::from_secs(5));
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}
