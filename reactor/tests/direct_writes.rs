//! Direct writes (`ChannelHandle::write_direct`) over real loopback
//! sockets, on the transport `GYRE_TRANSPORT` names: threads sending from
//! their own stacks, through the mailbox when refused, while the loop
//! writes too, never interleave a message or reorder one thread's; large
//! messages the socket takes only part of are finished by the loop;
//! channels closed under writers leak no descriptor and send nothing to
//! the sockets that reuse their numbers; a TLS channel refuses them; on
//! io_uring every write goes through the loop and still arrives.

mod common;

use bytes::Bytes;
use gyre_reactor::{
    Bootstrap, ChannelHandle, ChannelOptions, InboundContext, InboundHandler, Pipeline, Transport,
};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn direct() -> ChannelOptions {
    ChannelOptions::default().direct_writes(true)
}

/// Sends `msg` directly if the channel lets us, through the loop if not;
/// counts the direct ones.
fn send(handle: &ChannelHandle<Bytes>, msg: Bytes, direct: &AtomicUsize) {
    match handle.write_direct(msg) {
        Ok(()) => {
            direct.fetch_add(1, Ordering::Relaxed);
        }
        Err(msg) => handle.write_and_flush(msg).expect("open"),
    }
}

/// Writes a line whenever a line comes in: the loop's own output, racing
/// the direct writers.
struct Answer;

impl InboundHandler for Answer {
    type Read = bytes::BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: bytes::BytesMut) {
        for _ in msg.iter().filter(|&&b| b == b'?') {
            ctx.write(Bytes::from_static(b"loop:pong\n"));
        }
        ctx.flush();
    }
}

#[test]
fn threads_and_the_loop_never_interleave_and_each_thread_keeps_its_order() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 3_000;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let group = common::group(1);
    let handle = Bootstrap::new(group.clone())
        .options(direct())
        .connect(listener.local_addr().unwrap(), |_| {
            Pipeline::new().inbound(Answer)
        })
        .unwrap();
    let (peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The peer asks for a loop write now and then, so the loop's own
    // output races the direct writers.
    let mut asker = peer.try_clone().unwrap();
    let asking = std::thread::spawn(move || {
        use std::io::Write;
        for _ in 0..500 {
            if asker.write_all(b"?").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    let mut reader = BufReader::new(peer);
    let mut line = String::new();
    let mut pongs = 0;
    if common::transport() == Transport::Epoll {
        // Direct writes happen at all: once the channel is up and its loop
        // idle, one goes out from this thread. (How many of the racing
        // writers' messages go out directly depends on the scheduling, so
        // that count is only printed below.)
        let deadline = Instant::now() + Duration::from_secs(10);
        while handle.write_direct(Bytes::from_static(b"probe\n")).is_err() {
            assert!(
                Instant::now() < deadline,
                "no write went out directly on epoll"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        loop {
            line.clear();
            assert!(reader.read_line(&mut line).unwrap() > 0, "EOF early");
            match line.as_str() {
                "probe\n" => break,
                "loop:pong\n" => pongs += 1,
                other => panic!("unexpected line {other:?}"),
            }
        }
    }
    let direct_count = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let handle = handle.clone();
            let direct_count = direct_count.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    // Every 500th message is 200 KiB: more than the
                    // socket takes at once, so a direct send leaves a
                    // remainder for the loop.
                    let pad = if i % 500 == 499 { 200 * 1024 } else { i % 40 };
                    let line = format!("t{t}:{i}:{}\n", "x".repeat(pad));
                    send(&handle, Bytes::from(line), &direct_count);
                }
            })
        })
        .collect();
    let mut next = [0usize; THREADS];
    while next.iter().sum::<usize>() < THREADS * PER_THREAD {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "EOF early");
        if line == "loop:pong\n" {
            pongs += 1;
            continue;
        }
        let mut parts = line.trim_end().splitn(3, ':');
        let t: usize = parts.next().unwrap()[1..].parse().unwrap_or_else(|_| {
            panic!("a line was broken into: {:?}", &line[..line.len().min(80)])
        });
        let i: usize = parts.next().unwrap().parse().unwrap();
        let pad = parts.next().unwrap();
        assert_eq!(i, next[t], "thread {t}'s messages out of order");
        let want = if i % 500 == 499 { 200 * 1024 } else { i % 40 };
        assert!(
            pad.len() == want && pad.bytes().all(|b| b == b'x'),
            "message t{t}:{i} came in pieces"
        );
        next[t] += 1;
    }
    for w in writers {
        w.join().unwrap();
    }
    asking.join().unwrap();
    let direct = direct_count.load(Ordering::Relaxed);
    println!(
        "{direct} of {} messages went out directly, {pongs} loop writes in between",
        THREADS * PER_THREAD
    );
    if common::transport() != Transport::Epoll {
        assert_eq!(direct, 0, "io_uring channels take no direct writes");
    }
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn channels_closed_under_writers_leak_nothing_and_send_nothing_elsewhere() {
    common::raise_fd_limit();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let group = common::group(1);
    let before = common::open_fds();
    for round in 0..40 {
        let handle = Bootstrap::new(group.clone())
            .options(direct())
            .connect(addr, |_| Pipeline::new())
            .unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let stop = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (handle, stop) = (handle.clone(), stop.clone());
                std::thread::spawn(move || {
                    // A steady stream, not a flood the loop could never
                    // drain: a pause every 20 messages.
                    let mut sent = 0u32;
                    while stop.load(Ordering::Relaxed) == 0 && handle.is_open() {
                        let msg = Bytes::from_static(b"mine\n");
                        if let Err(msg) = handle.write_direct(msg) {
                            let _ = handle.write_and_flush(msg);
                        }
                        sent += 1;
                        if sent.is_multiple_of(20) {
                            std::thread::sleep(Duration::from_micros(50));
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2 + round % 3));
        let _ = handle.close();
        // New connections take the descriptor numbers the closed one
        // frees: none of them may get a byte of the old one's traffic.
        let fresh: Vec<_> = (0..3)
            .map(|_| {
                let h = Bootstrap::new(group.clone())
                    .connect(addr, |_| Pipeline::new())
                    .unwrap();
                let (p, _) = listener.accept().unwrap();
                (h, p)
            })
            .collect();
        stop.store(1, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut old = Vec::new();
        peer.read_to_end(&mut old).unwrap();
        assert!(
            old.chunks(5).all(|c| c == b"mine\n"),
            "round {round}: a message broken on the closing channel"
        );
        for (h, mut p) in fresh {
            h.close().unwrap();
            p.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            p.read_to_end(&mut got).unwrap();
            assert!(
                got.is_empty(),
                "round {round}: a reused descriptor got {got:?}"
            );
        }
    }
    assert!(
        common::eventually(Duration::from_secs(5), || common::open_fds() <= before),
        "descriptors leaked: {} open, {before} before",
        common::open_fds()
    );
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn without_the_option_every_write_goes_through_the_loop() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let group = common::group(1);
    let handle = Bootstrap::new(group.clone())
        .connect(listener.local_addr().unwrap(), |_| Pipeline::new())
        .unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let refused = handle.write_direct(Bytes::from_static(b"x")).unwrap_err();
    handle.write_and_flush(refused).unwrap();
    let mut got = [0u8; 1];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"x");
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}
