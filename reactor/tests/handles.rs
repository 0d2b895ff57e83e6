//! `ChannelHandle`: writes from 4 threads at once arrive whole and in
//! per-thread order; a handle flooded by threads does not starve the other
//! channels on its loop; a closed channel's handle refuses, never panics;
//! the client bootstrap connects, refuses and times out.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
use gyre_reactor::{
    Bootstrap, ChannelHandle, Error, InboundContext, InboundHandler, Pipeline, ServerBootstrap,
};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn four_threads_write_through_one_handle_in_order() {
    const PER_THREAD: usize = 20_000;
    let (server, rx) = line_echo_server();
    let client = TcpStream::connect(server.local_addr()).unwrap();
    let handle = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let h = handle.clone();
            std::thread::spawn(move || {
                for seq in 0..PER_THREAD {
                    let msg = format!("{t}:{seq}");
                    if seq % 64 == 63 {
                        h.write_and_flush(msg).unwrap();
                    } else {
                        h.write(msg).unwrap();
                    }
                }
                h.flush().unwrap();
            })
        })
        .collect();
    let mut next = [0usize; 4];
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    for _ in 0..4 * PER_THREAD {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let (t, seq) = line.trim_end().split_once(':').expect("a whole line");
        let t: usize = t.parse().unwrap();
        let seq: usize = seq.parse().unwrap();
        assert_eq!(seq, next[t], "thread {t}'s writes arrived out of order");
        next[t] += 1;
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(next, [PER_THREAD; 4]);

    // Close through the handle; afterwards the handle refuses.
    handle.close().unwrap();
    line.clear();
    assert_eq!(reader.read_line(&mut line).unwrap(), 0, "expected EOF");
    assert!(common::eventually(Duration::from_secs(5), || !handle.is_open()));
    let refused = handle.write("late".to_string()).unwrap_err();
    assert_eq!(refused.into_inner().as_deref(), Some("late"));
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

/// Collects what it reads.
struct Collect(mpsc::Sender<Vec<u8>>);

impl InboundHandler for Collect {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, _: &mut impl InboundContext<Self>, msg: BytesMut) {
        let _ = self.0.send(msg.to_vec());
    }
}

#[test]
fn client_bootstrap_talks_to_a_gyre_server() {
    let (server, _) = common::echo_server(1, Default::default());
    let group = common::group(1);
    let (tx, rx) = mpsc::channel();
    let handle = Bootstrap::new(group.clone())
        .connect(server.local_addr(), move |_| {
            Pipeline::new().inbound(Collect(tx))
        })
        .unwrap();
    handle
        .write_and_flush(Bytes::from_static(b"round trip"))
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 10 {
        got.extend(rx.recv_timeout(Duration::from_secs(5)).unwrap());
    }
    assert_eq!(got, b"round trip");
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn connect_refused_and_timeout_are_errors() {
    let group = common::group(1);
    // Refused: a port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let err = Bootstrap::new(group.clone())
        .connect(addr, |_| Pipeline::new())
        .unwrap_err();
    assert!(
        matches!(err, Error::Connect { ref source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused),
        "{err}"
    );

    // Timeout: a listener whose accept queue is full drops further SYNs.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.listen(0).unwrap();
    let full = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    let mut timed_out = false;
    for _ in 0..8 {
        match Bootstrap::new(group.clone())
            .connect_timeout(Duration::from_millis(200))
            .connect(full, |_| Pipeline::new())
        {
            Ok(h) => fillers.push(h),
            Err(Error::ConnectTimeout { timeout_ms, .. }) => {
                assert_eq!(timeout_ms, 200);
                timed_out = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(timed_out, "a full backlog should make a connect time out");
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn flush_then_tells_when_the_socket_took_the_bytes_or_that_it_never_will() {
    use std::io::Read;
    const SIZE: usize = 16 * 1024 * 1024;
    let group = common::group(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = Bootstrap::new(group.clone())
        .connect(addr, |_| Pipeline::new())
        .unwrap();
    let (mut peer, _) = listener.accept().unwrap();

    // More than the socket buffers hold: not sent while the peer does not
    // read, sent once it does.
    handle.write(Bytes::from(vec![7u8; SIZE])).unwrap();
    let (tx, rx) = mpsc::channel();
    let first = tx.clone();
    handle
        .flush_then(move |sent| first.send(("big", sent.is_ok())).unwrap())
        .unwrap();
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "no notice while the bytes sit in our queue"
    );
    let mut got = vec![0u8; SIZE];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        ("big", true)
    );

    // Nothing queued: told at once.
    let now = tx.clone();
    handle
        .flush_then(move |sent| now.send(("empty", sent.is_ok())).unwrap())
        .unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        ("empty", true)
    );

    // The peer vanishes with megabytes still queued: told they were not sent.
    handle.write(Bytes::from(vec![8u8; SIZE])).unwrap();
    let lost = tx.clone();
    handle
        .flush_then(move |sent| lost.send(("lost", sent.is_ok())).unwrap())
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let sock = socket2::SockRef::from(&peer);
    sock.set_linger(Some(Duration::ZERO)).unwrap(); // a reset, not a FIN
    drop(peer);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        ("lost", false)
    );

    // On a closed channel the notice is answered at once, as unsent.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while handle.is_open() {
        assert!(std::time::Instant::now() < deadline, "the channel closed");
        std::thread::sleep(Duration::from_millis(1));
    }
    let after = tx.clone();
    assert!(handle
        .flush_then(move |sent| after.send(("closed", sent.is_ok())).unwrap())
        .is_err());
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(1)).unwrap(),
        ("closed", false)
    );
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn connect_async_returns_at_once_and_completes_as_a_future_or_a_wait() {
    let group = common::group(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bootstrap = Bootstrap::new(group.clone());

    // As a future, polled by an executor that parks until woken.
    let handle = block_on(bootstrap.connect_async(addr, |_| Pipeline::new())).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    handle
        .write_and_flush(Bytes::from_static(b"async"))
        .unwrap();
    let mut got = [0u8; 5];
    std::io::Read::read_exact(&mut peer, &mut got).unwrap();
    assert_eq!(&got, b"async");

    // From a loop thread, where a blocking connect would deadlock: a
    // task on the loop starts it and a thread elsewhere waits.
    let (tx, rx) = mpsc::channel();
    let b = bootstrap.clone();
    group
        .next()
        .execute(move || {
            let connecting = b.connect_async(addr, |_| Pipeline::new());
            tx.send(connecting).unwrap();
        })
        .unwrap();
    let handle = rx.recv().unwrap().wait().unwrap();
    assert!(handle.is_open());
    let _ = listener.accept().unwrap();

    // Refused, as a future.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = free.local_addr().unwrap();
    drop(free);
    let err = block_on(bootstrap.connect_async(closed, |_| Pipeline::new())).unwrap_err();
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "{err}"
    );

    // A group that has stopped: the future still completes.
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    let err = block_on(bootstrap.connect_async(addr, |_| Pipeline::new())).unwrap_err();
    assert!(matches!(err, Error::LoopShutDown), "{err}");
}

/// The smallest executor: polls `f`, parking the thread until its waker
/// is called.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::sync::Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// Echoes each line and hands out its channel's handle.
struct EchoAndGive(mpsc::Sender<ChannelHandle<String>>);

impl InboundHandler for EchoAndGive {
    type Read = Bytes;
    type Pass = ();
    type Write = String;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        let _ = self.0.send(ctx.handle());
    }

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, line: Bytes) {
        ctx.write_and_flush(String::from_utf8_lossy(&line).into_owned());
    }
}

/// A line server on one loop that echoes lines and hands out each
/// channel's handle as it opens.
fn line_echo_server() -> (gyre_reactor::Server, mpsc::Receiver<ChannelHandle<String>>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
                .inbound(EchoAndGive(tx.lock().unwrap().clone()))
        })
        .unwrap();
    (server, rx)
}

/// Two threads flood one channel's handle faster than its loop can drain
/// it; another channel on the same loop still gets its echoes, because a
/// mailbox batch stops at a budget and the loop turns to its sockets
/// before the rest. (Without the budget the loop never left the flooded
/// mailbox and the echo timed out.)
#[test]
fn a_flooded_handle_does_not_starve_another_channel_on_its_loop() {
    let (server, rx) = line_echo_server();
    let flooded = TcpStream::connect(server.local_addr()).unwrap();
    let handle = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let mut other = TcpStream::connect(server.local_addr()).unwrap();
    let _ = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The flooded client reads (and drops) all it is sent.
    let reader = std::thread::spawn(move || {
        let mut sink = [0u8; 64 * 1024];
        let mut flooded = flooded;
        while std::io::Read::read(&mut flooded, &mut sink).unwrap_or(0) > 0 {}
    });
    let flood: Vec<_> = (0..2)
        .map(|_| {
            let (h, stop) = (handle.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if h.write_and_flush("flood".to_string()).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut lines = BufReader::new(other.try_clone().unwrap());
    for i in 0..20 {
        use std::io::Write;
        writeln!(other, "ping {i}").unwrap();
        let mut line = String::new();
        lines
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("echo {i} starved by the flood: {e}"));
        assert_eq!(line, format!("ping {i}\n"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in flood {
        f.join().unwrap();
    }
    let _ = handle.close();
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
    reader.join().unwrap();
}
