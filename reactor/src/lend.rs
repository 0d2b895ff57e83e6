//! [`InputLend`]: a channel's input, lent by its loop to the thread (or
//! task) that holds it, which waits for bytes and reads them itself (see
//! [`ChannelHandle::lend_input`](crate::ChannelHandle::lend_input)). Uses
//! the gate's input side (`crate::direct::input`, where the protocol is
//! argued), the loop's notification and registry, the input watch
//! (`crate::watch`) and `poll(2)`/`recv(2)` through `libc`.
//!
//! A lend also keeps the loop asleep. Where the channel's input has a
//! registration of its own (`crate::channel::epoll`), the holder turns it
//! off when the lend starts and on again before it ends: every answer the
//! holder reads would otherwise wake the loop too, only for it to find
//! the input lent, which on a host of two cores takes a core from the
//! threads that are working. Turning it on reports readiness already
//! there (epoll looks at the socket when a registration changes), so
//! bytes the holder left in the socket wake the loop then, while the
//! input is still lent, and the gate's `MISSED` rule serves them as it
//! serves readiness that came before the registration was off: no byte
//! is left with nobody told. Off is an empty interest, set through
//! `epoll_ctl` itself because mio has none: the kernel's wake-up for
//! arriving bytes carries `EPOLLPRI` along with `EPOLLIN`, so a
//! registration for `EPOLLPRI` alone would still wake the loop's thread
//! (to find nothing to report and sleep again: a context switch per
//! answer, measured). The kernel adds hang-up and error to every
//! registration, so those still reach the loop.

use crate::direct::{DirectGate, LendEnded};
use crate::event_loop::Shared;
use crate::socket::{close_from_any_thread, recv_to_spare};
use crate::watch::InputWatch;
use bytes::BytesMut;
use mio::unix::SourceFd;
use mio::{Interest, Token};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

/// How much room each read asks for at least.
const READ_ROOM: usize = 4096;

#[cfg(test)]
thread_local! {
    /// Reads on this thread that found the socket empty.
    static EMPTY_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A channel's input, lent to this thread: the loop reads none of it
/// until the lend ends. Read with [`read`](Self::read) (which waits) or
/// [`try_read`](Self::try_read) (which does not: an async task learns
/// when to try from an [`InputWatch`]), and end it with
/// [`give_back`](Self::give_back), handing the loop any bytes read and
/// not taken (dropping it gives back nothing). Keep it short: while it
/// lasts, nothing else on the channel is read. It owns what it needs, so
/// a future may hold it.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_reactor::{Bootstrap, ChannelOptions, EventLoopGroup, Pipeline};
/// use std::io::Write;
/// use std::time::{Duration, Instant};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let group = EventLoopGroup::new(1)?;
/// let options = ChannelOptions::default().direct_writes(true).lend_input(true);
/// let handle = Bootstrap::new(group.clone())
///     .options(options)
///     .connect(listener.local_addr()?, |_| Pipeline::new())?;
/// let (mut peer, _) = listener.accept()?;
/// // The loop offers its input once it has drained the socket.
/// let deadline = Instant::now() + Duration::from_secs(5);
/// let mut lend = loop {
///     if let Some(lend) = handle.lend_input() {
///         break lend;
///     }
///     assert!(Instant::now() < deadline);
///     std::thread::sleep(Duration::from_millis(1));
/// };
/// peer.write_all(b"answer")?;
/// let mut buf = BytesMut::new();
/// while buf.len() < 6 {
///     lend.read(&mut buf, deadline)?;
/// }
/// assert_eq!(&buf[..], b"answer");
/// lend.give_back(BytesMut::new()); // took it all
/// # group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct InputLend {
    gate: Arc<DirectGate>,
    shared: Arc<Shared>,
    token: Token,
    /// Bytes read under this lend.
    read: usize,
    /// The socket said end of input, or failed: the loop must see it.
    ended: bool,
    /// The loop had readiness while the input was lent, and no read since
    /// left the socket empty: drain before leaving.
    owed: bool,
    /// The last read left the socket empty (see [`emptied`](Self::emptied)).
    emptied: bool,
    given: bool,
}

impl InputLend {
    pub(crate) fn new(gate: Arc<DirectGate>, shared: Arc<Shared>, token: Token) -> Self {
        // A failure leaves the loop woken by each read, as without a
        // registration of its own: nothing is lost.
        let _ = register_reads(&gate, &shared, token, None);
        InputLend {
            gate,
            shared,
            token,
            read: 0,
            ended: false,
            owed: false,
            emptied: false,
            given: false,
        }
    }

    /// Waits until the socket has bytes (or `deadline`), and appends what
    /// one `recv` gets to `buf`: the number of bytes, `0` at the end of
    /// input (the peer closed, or the loop is closing the channel), an
    /// error of kind [`TimedOut`](io::ErrorKind::TimedOut) at the
    /// deadline, or the socket's own error. After `0` or an error the
    /// loop is told when the lend ends, and reads no further here help.
    pub fn read(&mut self, buf: &mut BytesMut, deadline: Instant) -> io::Result<usize> {
        loop {
            // The wait comes first: a holder reads after sending a
            // request, whose answer is not in yet, and a `recv` that
            // finds nothing would be a system call for nothing.
            let left = deadline.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                self.wait_readable(left)?;
            }
            match self.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if left.is_zero() {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                }
                done => return done,
            }
        }
    }

    /// Waits up to `left` for the socket to poll readable (or hung up).
    fn wait_readable(&mut self, left: std::time::Duration) -> io::Result<()> {
        let mut fds = [libc::pollfd {
            fd: self.gate.fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // Whole milliseconds, rounded up, so a short wait is not a spin.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a live array of one `pollfd`; we hold the
        // input, so the loop keeps the descriptor open (it closes it
        // through the gate, and not while the input is lent).
        if unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                self.ended = true;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Appends what one `recv` gets to `buf` without waiting: as
    /// [`read`](Self::read), or an error of kind
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) when the socket has
    /// nothing yet (wait for the lend's [`InputWatch`] to be readable,
    /// then try again). Whether it left the socket empty, [`emptied`]
    /// says.
    ///
    /// [`emptied`]: Self::emptied
    pub fn try_read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        // Readiness the loop had before this read is served by it if it
        // leaves the socket empty (see `crate::direct::input`).
        self.owed |= self.gate.take_missed();
        let result = recv_into(self.gate.fd(), buf);
        // `recv_into` asks for all of `buf`'s spare room: room left over
        // means `recv` took all the socket had.
        self.emptied = match &result {
            Ok(n) => *n > 0 && buf.len() < buf.capacity(),
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        };
        self.owed &= !self.emptied;
        match result {
            Ok(0) => {
                self.ended = true;
                Ok(0)
            }
            Ok(n) => {
                self.read += n;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                #[cfg(test)]
                EMPTY_READS.with(|n| n.set(n.get() + 1));
                Err(e)
            }
            Err(e) => {
                self.ended = true;
                Err(e)
            }
        }
    }

    /// Whether the last [`try_read`](Self::try_read) (or
    /// [`read`](Self::read)) left the socket empty: it found nothing, or
    /// took less than the room it asked for, so it took all the socket
    /// had. Bytes that arrive after it raise new readiness, so a watcher
    /// may take the readiness it had as served.
    pub fn emptied(&self) -> bool {
        self.emptied
    }

    /// A new [`InputWatch`] on this channel's socket: a descriptor that
    /// polls readable while the socket has input (or has ended), for a
    /// task that holds lends to register once with its runtime's poller
    /// and learn when to [`try_read`](Self::try_read). Made under a lend
    /// because the socket is then sure to be open; it serves every later
    /// lend of the channel, and stops firing once the channel's socket
    /// is closed.
    pub fn watch(&self) -> io::Result<InputWatch> {
        InputWatch::new(self.gate.fd())
    }

    /// Ends the lend, handing the loop `unused`: bytes read here and not
    /// taken, which the loop reads ahead of the socket's next bytes. Bytes
    /// that arrived after the last read, that the loop was told of, are
    /// read here first and handed over behind them.
    pub fn give_back(mut self, unused: BytesMut) {
        self.finish(unused);
    }

    fn finish(&mut self, mut unused: BytesMut) {
        if std::mem::replace(&mut self.given, true) {
            return;
        }
        self.gate
            .count_lent_read(self.read.saturating_sub(unused.len()));
        // Before the input goes back, while it is still ours: readiness
        // this reports finds the input lent and is served below.
        if let Err(e) = register_reads(
            &self.gate,
            &self.shared,
            self.token,
            Some(Interest::READABLE),
        ) {
            // The loop would never hear of input again. Cannot happen to a
            // live registration; if it did, the channel ends loudly
            // (both directions shut: the loop sees the hang-up on the
            // socket's other registration) rather than starve.
            tracing::error!(error = %e, "could not turn the channel's input registration back on; closing it");
            // SAFETY: `shutdown` reads no memory; `fd` is open while the
            // input is lent (see `read`).
            unsafe { libc::shutdown(self.gate.fd(), libc::SHUT_RDWR) };
            self.ended = true;
        }
        if std::mem::take(&mut self.owed) {
            self.drain(&mut unused);
        }
        loop {
            let rest = (!unused.is_empty()).then(|| unused.split());
            match self.gate.end_lend(rest, self.ended, close_from_any_thread) {
                LendEnded::Done { notify } => {
                    if notify {
                        self.shared.notify_channel(self.token);
                    }
                    return;
                }
                LendEnded::Missed => self.drain(&mut unused),
            }
        }
    }

    /// Reads the socket until it would block, into `into` (the loop had
    /// readiness while the input was lent). Usually there is nothing, so
    /// it reads into the stack first: `into` may share its allocation,
    /// and growing it would allocate.
    fn drain(&mut self, into: &mut BytesMut) {
        let mut chunk = [0u8; 2048];
        loop {
            // SAFETY: `chunk` is a live stack buffer of its length; `fd`
            // is open while the input is lent (see `read`).
            let n = unsafe {
                libc::recv(
                    self.gate.fd(),
                    chunk.as_mut_ptr().cast(),
                    chunk.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            match n {
                0 => {
                    self.ended = true;
                    return;
                }
                n if n > 0 => into.extend_from_slice(&chunk[..n as usize]),
                _ => match io::Error::last_os_error().kind() {
                    io::ErrorKind::WouldBlock => {
                        #[cfg(test)]
                        EMPTY_READS.with(|n| n.set(n.get() + 1));
                        return;
                    }
                    io::ErrorKind::Interrupted => {}
                    _ => {
                        self.ended = true;
                        return;
                    }
                },
            }
        }
    }
}

impl Drop for InputLend {
    fn drop(&mut self) {
        self.finish(BytesMut::new());
    }
}

impl std::fmt::Debug for InputLend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputLend")
            .field("read", &self.read)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// Sets what the loop's poller watches the channel's input for (`None`:
/// nothing), where the input has a registration of its own (otherwise
/// does nothing). A registration the loop has already removed (the
/// channel is closing) is no failure.
fn register_reads(
    gate: &DirectGate,
    shared: &Shared,
    token: Token,
    interest: Option<Interest>,
) -> io::Result<()> {
    let (Some(read_fd), Some(registry)) = (gate.read_fd(), &shared.registry) else {
        return Ok(());
    };
    let changed = match interest {
        Some(interest) => registry.reregister(&mut SourceFd(&read_fd), token, interest),
        None => {
            // The token as mio passes it to the kernel, in case a hang-up
            // is reported on this registration while it is off.
            let mut off = libc::epoll_event {
                events: 0,
                u64: usize::from(token) as u64,
            };
            // SAFETY: `off` is a live `epoll_event`; `registry` is an open
            // epoll descriptor (ours), and `read_fd` is open while the
            // input is lent (the gate closes it, and not under a holder).
            let r = unsafe {
                libc::epoll_ctl(registry.as_raw_fd(), libc::EPOLL_CTL_MOD, read_fd, &mut off)
            };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    match changed {
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => Err(e),
        _ => Ok(()),
    }
}

/// One non-blocking `recv` on `fd` into `buf`, with at least
/// [`READ_ROOM`] bytes of room made first.
fn recv_into(fd: std::os::fd::RawFd, buf: &mut BytesMut) -> io::Result<usize> {
    buf.reserve(READ_ROOM);
    recv_to_spare(fd, buf, libc::MSG_DONTWAIT)
}

#[cfg(test)]
mod tests {
    use super::{InputLend, EMPTY_READS};
    use crate::direct::Retaken;
    use crate::{Bootstrap, ChannelOptions, EventLoopGroup, Pipeline};
    use bytes::BytesMut;
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    /// A loop with one channel, its peer, and the channel's input lent to
    /// this thread; the loop's thread is named `name`-0.
    fn lent_on(name: &str) -> (EventLoopGroup, TcpStream, InputLend) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let group = EventLoopGroup::builder()
            .threads(1)
            .name(name)
            .build()
            .unwrap();
        let options = ChannelOptions::default()
            .direct_writes(true)
            .lend_input(true);
        let handle = Bootstrap::new(group.clone())
            .options(options)
            .connect(listener.local_addr().unwrap(), |_| Pipeline::new())
            .unwrap();
        let (peer, _) = listener.accept().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(lend) = handle.lend_input() {
                return (group, peer, lend);
            }
            assert!(
                Instant::now() < deadline,
                "the loop never offered its input"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn lent() -> (EventLoopGroup, TcpStream, InputLend) {
        lent_on("gyre-loop")
    }

    /// How many times the thread named `name` has slept and been woken
    /// (its voluntary context switches, from `/proc`).
    fn wake_ups(name: &str) -> u64 {
        let mut found = None;
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let task = task.unwrap().path();
            let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
            if comm.trim() == name {
                let status = std::fs::read_to_string(task.join("status")).unwrap();
                let switches = status
                    .lines()
                    .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                    .unwrap();
                assert!(found.is_none(), "two threads named {name}");
                found = Some(switches.trim().parse().unwrap());
            }
        }
        found.unwrap_or_else(|| panic!("no thread named {name}"))
    }

    /// Reads under `lend` until `buf` holds `len` bytes.
    fn read_until(lend: &mut InputLend, buf: &mut BytesMut, len: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while buf.len() < len {
            lend.read(buf, deadline).unwrap();
        }
    }

    /// A holder that reads before its answer is in waits for it first:
    /// no `recv` of its finds the socket empty.
    #[test]
    fn a_read_waits_before_it_asks() {
        let (group, mut peer, mut lend) = lent();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            peer.write_all(b"answer").unwrap();
            peer
        });
        let before = EMPTY_READS.get();
        let mut buf = BytesMut::new();
        read_until(&mut lend, &mut buf, 6);
        assert_eq!(&buf[..], b"answer");
        assert_eq!(EMPTY_READS.get() - before, 0, "a read found nothing");
        lend.give_back(BytesMut::new());
        drop(writer.join().unwrap());
        group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
    }

    /// Readiness the loop had while the input was lent (its note of the
    /// miss, made here as the loop makes it: the lend now keeps the loop
    /// from being woken by the answer, see the next test) is served by a
    /// holder's read that leaves the socket empty: the holder has the
    /// bytes the loop was woken for and leaves without a drain that would
    /// find nothing.
    #[test]
    fn a_read_that_empties_the_socket_serves_the_loops_missed_readiness() {
        let (group, mut peer, mut lend) = lent();
        peer.write_all(b"answer").unwrap();
        assert!(matches!(lend.gate.retake_input(), Retaken::Lent));
        assert!(lend.gate.input_missed());
        let before = EMPTY_READS.get();
        let mut buf = BytesMut::new();
        read_until(&mut lend, &mut buf, 6);
        lend.give_back(BytesMut::new());
        assert_eq!(&buf[..], b"answer");
        assert_eq!(EMPTY_READS.get() - before, 0, "a read found nothing");
        group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
    }

    /// While the input is lent, the answers its holder reads do not wake
    /// the loop's thread (not even to find nothing to report and sleep
    /// again); once the lend is over, input wakes the loop again.
    #[test]
    fn a_lent_input_does_not_wake_its_loop() {
        let (group, mut peer, mut lend) = lent_on("lend-quiet");
        // Past the loop's own start-up: it sleeps until something comes.
        std::thread::sleep(Duration::from_millis(50));
        let before = wake_ups("lend-quiet-0");
        let mut buf = BytesMut::new();
        for n in 1..=3 {
            peer.write_all(b"answer").unwrap();
            // Time for a loop that was woken to come and note it.
            std::thread::sleep(Duration::from_millis(100));
            assert!(!lend.gate.input_missed(), "answer {n} woke the loop");
            read_until(&mut lend, &mut buf, 6 * n);
        }
        assert_eq!(
            wake_ups("lend-quiet-0"),
            before,
            "the loop's thread was woken"
        );
        lend.give_back(BytesMut::new());
        // The loop reads for itself again.
        let reads = group.metrics().unwrap().reads;
        peer.write_all(b"later").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while group.metrics().unwrap().reads == reads {
            assert!(
                Instant::now() < deadline,
                "input after the lend never woke the loop"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
    }
}
