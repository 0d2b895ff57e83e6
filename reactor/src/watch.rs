//! [`InputWatch`]: a descriptor that polls readable while a channel's
//! socket has input, or once a deadline its user sets has passed. It is
//! how a task on another runtime (tokio's `AsyncFd`, say) that holds the
//! channel's input lend learns when to read, woken by the kernel and not
//! by the channel's loop. Uses `libc` (`epoll`, `timerfd`) and nothing
//! else of the crate.
//!
//! Why an `epoll` of its own rather than a duplicate of the socket: the
//! watch must neither keep the socket open after its loop closes it (a
//! duplicate would, and the peer would never see the close) nor reach a
//! file that later takes the socket's number. An epoll registration does
//! neither: the kernel drops it when the socket's last descriptor closes,
//! and the watch then never fires for it again. An epoll descriptor polls
//! readable while any file in it is ready, and its poller is woken each
//! time one of them becomes ready, so another runtime's poller can hold
//! it like any socket.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the watch's epoll calls the socket and the timer.
const SOCKET: u64 = 0;
const TIMER: u64 = 1;

/// A descriptor that polls readable while a channel's socket has input
/// (or has ended), and once the deadline given to
/// [`wake_at`](Self::wake_at) has passed. Make one with
/// [`InputLend::watch`](crate::InputLend::watch), register it once with a
/// poller (tokio's `AsyncFd`, `poll(2)`), and while holding a lend wait
/// for it before each [`try_read`](crate::InputLend::try_read) that
/// would block. It never consumes input: reading is the lend's. It stops
/// firing for input once the channel's socket is closed; dropping it
/// closes its own two descriptors.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_reactor::{Bootstrap, ChannelOptions, EventLoopGroup, Pipeline};
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::time::{Duration, Instant};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let group = EventLoopGroup::new(1)?;
/// let options = ChannelOptions::default().direct_writes(true).lend_input(true);
/// let handle = Bootstrap::new(group.clone())
///     .options(options)
///     .connect(listener.local_addr()?, |_| Pipeline::new())?;
/// let (mut peer, _) = listener.accept()?;
/// let mut lend = loop {
///     if let Some(lend) = handle.lend_input() {
///         break lend;
///     }
///     std::thread::sleep(Duration::from_millis(1));
/// };
/// let watch = lend.watch()?;
/// let readable = |ms: i32| {
///     let mut fd = libc::pollfd { fd: watch.as_raw_fd(), events: libc::POLLIN, revents: 0 };
///     // SAFETY: one live `pollfd`.
///     unsafe { libc::poll(&mut fd, 1, ms) == 1 }
/// };
/// assert!(!readable(0));
/// peer.write_all(b"hi")?;
/// assert!(readable(5_000));
/// let mut buf = BytesMut::new();
/// assert_eq!(lend.try_read(&mut buf)?, 2);
/// assert!(lend.emptied()); // it took all there was
/// assert!(!readable(0)); // read: quiet again
/// watch.wake_at(Instant::now() + Duration::from_millis(5))?;
/// assert!(readable(5_000)); // the deadline
/// lend.give_back(BytesMut::new());
/// # group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct InputWatch {
    epoll: OwnedFd,
    timer: OwnedFd,
    /// When the timer fires, in nanoseconds after `epoch`; 0: not armed.
    /// Written by the holder of the lend (one at a time), so relaxed.
    armed: AtomicU64,
    epoch: Instant,
}

impl InputWatch {
    /// A watch on the stream socket `socket`, which the caller keeps open
    /// for the call (it holds the channel's input).
    pub(crate) fn new(socket: RawFd) -> io::Result<InputWatch> {
        // SAFETY: a plain system call; the descriptor it makes is ours
        // alone, owned at once, so an error further on closes it.
        let epoll = unsafe { owned(libc::epoll_create1(libc::EPOLL_CLOEXEC))? };
        // SAFETY: as for `epoll`.
        let timer = unsafe {
            owned(libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            ))?
        };
        // Level-triggered: the epoll is readable for as long as the socket
        // is, however many times its poller looks.
        add(&epoll, socket, libc::EPOLLIN | libc::EPOLLRDHUP, SOCKET)?;
        add(&epoll, timer.as_raw_fd(), libc::EPOLLIN, TIMER)?;
        Ok(InputWatch {
            epoll,
            timer,
            armed: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// Makes the watch readable once `deadline` has passed, unless it is
    /// already due to be at or before `deadline` (then it fires early, and
    /// the waiter, finding its own deadline not yet come, calls this
    /// again). So a run of calls with one timeout each re-arms the timer
    /// about once per timeout, not once per call. Arming also clears a
    /// deadline that passed unheeded. Call it before each wait.
    pub fn wake_at(&self, deadline: Instant) -> io::Result<()> {
        let at = nanos(deadline.saturating_duration_since(self.epoch)).max(1);
        let clock = Instant::now();
        let now = nanos(clock.saturating_duration_since(self.epoch));
        let armed = self.armed.load(Ordering::Relaxed);
        if armed > now && armed <= at {
            return Ok(());
        }
        // A zero value would disarm the timer: a deadline already passed
        // fires in a nanosecond instead.
        let left = deadline
            .saturating_duration_since(clock)
            .max(Duration::from_nanos(1));
        let value = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `timer` is our open timerfd; `value` is a live
        // `itimerspec`; the old value is not asked for.
        let r = unsafe {
            libc::timerfd_settime(self.timer.as_raw_fd(), 0, &value, std::ptr::null_mut())
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed.store(at, Ordering::Relaxed);
        Ok(())
    }
}

impl AsRawFd for InputWatch {
    fn as_raw_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }
}

impl AsFd for InputWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

/// `fd` owned, or the error the call that made it set.
///
/// # Safety
/// `fd`, if not negative, must be a descriptor nothing else owns.
unsafe fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the caller made `fd` and gives it to us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds `fd` to `epoll` for `events`, tagged `tag`.
fn add(epoll: &OwnedFd, fd: RawFd, events: i32, tag: u64) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: events as u32,
        u64: tag,
    };
    // SAFETY: `epoll` is our open epoll, `fd` is open (the caller's word
    // for the socket; ours for the timer), `event` is live for the call.
    let r = unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
