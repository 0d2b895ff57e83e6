//! Helpers shared by the reactor's integration tests: an echo handler, a
//! counting probe, a recording handler, a file sender, waiting for an
//! input lend, server start-up, file-descriptor counting and a `tracing`
//! writer that keeps what was logged.

#![allow(dead_code)]

#[cfg(feature = "tls")]
pub mod tls;

use bytes::{Bytes, BytesMut};
use gyre_reactor::{
    ChannelOptions, EventLoopGroup, InboundContext, InboundHandler, Pipeline, Server,
    ServerBootstrap, Transport,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Answers every read with the whole file at its path.
pub struct SendFile(pub std::path::PathBuf);

impl InboundHandler for SendFile {
    type Read = BytesMut;
    type Pass = ();
    type Write = gyre_reactor::Outbound;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
        let region = gyre_zerocopy::FileRegion::open(&self.0).unwrap();
        ctx.write_and_flush(region.into());
    }
}

/// The transport the suites run on, from `GYRE_TRANSPORT` (`epoll`, the
/// default, or `io_uring`): `scripts/test` runs every suite once per
/// transport, so one set of tests checks both.
pub fn transport() -> Transport {
    match std::env::var("GYRE_TRANSPORT").as_deref() {
        Ok("io_uring") => Transport::IoUring,
        Ok("auto") => Transport::Auto,
        Ok("epoll") | Err(_) => Transport::Epoll,
        Ok(other) => panic!("GYRE_TRANSPORT={other}: expected epoll, io_uring or auto"),
    }
}

/// A group of `threads` loops on [`transport`].
pub fn group(threads: usize) -> EventLoopGroup {
    EventLoopGroup::builder()
        .threads(threads)
        .transport(transport())
        .build()
        .expect("event loop group")
}

/// Echoes, flushing per read batch, pausing reads while unwritable.
pub struct Echo;

impl InboundHandler for Echo {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        ctx.write(msg.freeze());
    }

    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.flush();
    }

    fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
        ctx.set_auto_read(writable);
    }
}

/// Hands every message the loop reads (a chunk, a line) to the test.
pub struct Record<M>(pub std::sync::mpsc::Sender<M>);

impl<M: 'static> InboundHandler for Record<M> {
    type Read = M;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, _: &mut impl InboundContext<Self>, msg: M) {
        let _ = self.0.send(msg);
    }
}

/// The input lend, once the loop offers it (it does after its first
/// pass); fails the test after 5 s.
#[cfg(unix)]
pub fn lend<W>(handle: &gyre_reactor::ChannelHandle<W>) -> gyre_reactor::InputLend {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(lend) = handle.lend_input() {
            return lend;
        }
        assert!(
            Instant::now() < deadline,
            "the loop never offered its input"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Counts lifecycle events across all channels of a server.
#[derive(Default)]
pub struct Counters {
    pub active: AtomicUsize,
    pub inactive: AtomicUsize,
    pub errors: AtomicUsize,
}

/// A pass-through inbound handler that counts into `Counters`.
pub struct Probe<M, W> {
    pub counters: Arc<Counters>,
    pub _t: std::marker::PhantomData<fn(M, W)>,
}

impl<M, W> Probe<M, W> {
    pub fn new(counters: Arc<Counters>) -> Self {
        Probe {
            counters,
            _t: std::marker::PhantomData,
        }
    }
}

impl<M: 'static, W: 'static> InboundHandler for Probe<M, W> {
    type Read = M;
    type Pass = M;
    type Write = W;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        self.counters.active.fetch_add(1, Ordering::SeqCst);
        ctx.fire_active();
    }

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: M) {
        ctx.fire_read(msg);
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: gyre_reactor::Error) {
        self.counters.errors.fetch_add(1, Ordering::SeqCst);
        ctx.fire_error(error);
    }

    fn inactive(&mut self, ctx: &mut impl InboundContext<Self>) {
        self.counters.inactive.fetch_add(1, Ordering::SeqCst);
        ctx.fire_inactive();
    }
}

/// An echo server with a probe in front, on `workers` loops.
pub fn echo_server(workers: usize, opts: ChannelOptions) -> (Server, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let server = ServerBootstrap::new()
        .group(group(workers))
        .child_options(opts)
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new().inbound(Probe::new(c.clone())).inbound(Echo)
        })
        .unwrap();
    (server, counters)
}

/// A `tracing` writer that keeps what was logged.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Waits until `f` holds, for at most `limit`.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Raises the soft open-file limit to the hard one (tests open thousands).
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid, initialised struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Total channels open on the server's worker loops.
pub fn open_channels(server: &Server) -> usize {
    server
        .worker_group()
        .loops()
        .iter()
        .map(|l| l.channel_count().unwrap())
        .sum()
}

/// One echo round trip on a fresh connection: the server still serves.
pub fn check_echo(addr: std::net::SocketAddr) {
    check_echo_on(&std::net::TcpStream::connect(addr).unwrap());
}

/// One echo round trip on `stream` (which the server has thus accepted).
pub fn check_echo_on(mut stream: &std::net::TcpStream) {
    use std::io::{Read, Write};
    stream.write_all(b"still alive").unwrap();
    let mut back = [0u8; 11];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still alive");
}

/// Sends `msg` to the echo server at `addr` in `chunk`-byte writes from a
/// thread, then half-closes, and reads everything back after `wait` (so the
/// server's echoes can back up first). Returns what came back, or the read
/// error (a timeout, say, when the server never sends its EOF).
pub fn echo_half_closed(
    addr: std::net::SocketAddr,
    msg: &[u8],
    chunk: usize,
    wait: Duration,
) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut w = s.try_clone()?;
    let payload = msg.to_vec();
    let writer = std::thread::spawn(move || {
        for piece in payload.chunks(chunk.max(1)) {
            w.write_all(piece).unwrap();
        }
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    std::thread::sleep(wait);
    let mut back = Vec::new();
    let read = s.read_to_end(&mut back);
    writer.join().unwrap();
    read.map(|_| back)
}

/// `/proc/self/task/<tid>/` of this process's thread named `name`.
pub fn thread_dir(name: &str) -> std::path::PathBuf {
    gyre_testkit::threads_named(name)
        .into_iter()
        .find(|p| std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim_end() == name))
        .unwrap_or_else(|| panic!("no thread named {name}"))
}
