//! [`Alarm`]: a thread's own wake-up, rung by whoever publishes what it
//! waits for, so that the thread can sleep in `poll(2)` beside a channel's
//! socket (see [`ChannelHandle::wait_for_input`]) and still be woken by a
//! publisher that is not the socket. Uses `crate::sync` (std, or loom
//! under `--cfg loom`) and, outside loom, an eventfd (`crate::eventfd`)
//! and `poll(2)` through `libc`.
//!
//! The protocol is one flag, `armed`, that both sides change with a
//! read-modify-write, model-checked in `loom-tests` (`alarm.rs`). The
//! waiter sets it (`swap`, acquire), then looks at what it waits for
//! (`ready`), and sleeps only if it is not there; a publisher publishes,
//! then reads it with a `fetch_or(false)` (release), and writes the
//! eventfd only if it is set. Read-modify-writes of one atomic are totally
//! ordered. If the publisher's comes second it reads `true` and rings. If
//! it comes first, the waiter's `swap` reads from it, so what was
//! published happens before the waiter looks, and the waiter sees it and
//! does not sleep. An unarmed alarm costs a publisher one uncontended
//! atomic operation, no system call. A ring that lands after the waiter
//! has woken for another reason stays in the eventfd: the next wait sees
//! it, drains it, looks at `ready` again, and sleeps again if need be.
//!
//! [`ChannelHandle::wait_for_input`]: crate::ChannelHandle::wait_for_input

use crate::sync::{AtomicBool, Ordering};
use std::io;
#[cfg(not(loom))]
use std::time::{Duration, Instant};

/// What [`ChannelHandle::wait_for_input`](crate::ChannelHandle::wait_for_input)
/// woke up for.
///
/// ```
/// use bytes::Bytes;
/// use gyre_reactor::{Alarm, ChannelHandle, InputWait};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::{Duration, Instant};
///
/// /// Waits until `answered` (set by the channel's handler, which then
/// /// rings `alarm`) or `patience` has passed; whether it was answered.
/// fn await_answer(
///     handle: &ChannelHandle<Bytes>,
///     alarm: &Alarm,
///     answered: &AtomicBool,
///     patience: Duration,
/// ) -> bool {
///     let deadline = Instant::now() + patience;
///     loop {
///         let left = deadline.saturating_duration_since(Instant::now());
///         match handle.wait_for_input(alarm, || answered.load(Ordering::Acquire), left) {
///             InputWait::Ready => return true,
///             // The loop has yet to read and hand it over: wait again.
///             InputWait::Input => continue,
///             InputWait::TimedOut => return false,
///             // No such wait on this channel: poll the flag instead.
///             InputWait::Unsupported => {
///                 while !answered.load(Ordering::Acquire) {
///                     if Instant::now() >= deadline {
///                         return false;
///                     }
///                     std::thread::sleep(Duration::from_micros(50));
///                 }
///                 return true;
///             }
///         }
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputWait {
    /// `ready` said yes: before sleeping, or after the alarm rang.
    Ready,
    /// The socket has input for the loop to read (or an error, or the
    /// peer hung up): what the caller waits for may be about to arrive.
    Input,
    /// Neither within the timeout.
    TimedOut,
    /// The channel offers no such wait (the io_uring transport, datagram
    /// sockets, direct writes off), or `poll(2)` itself failed: wait the
    /// usual way.
    Unsupported,
}

/// A wake-up for one waiting thread, which other threads ring after
/// publishing what it waits for. Made once per thread and reused: it holds
/// one `eventfd`.
///
/// A publisher rings with [`ring`](Self::ring) after making its news
/// visible (a channel send, a store); the waiter sleeps on it with
/// [`ChannelHandle::wait_for_input`](crate::ChannelHandle::wait_for_input),
/// giving a `ready` check that looks for that news. Ringing an alarm
/// nobody waits on costs one uncontended atomic operation.
///
/// ```
/// use gyre_reactor::{Alarm, Bootstrap, ChannelOptions, EventLoopGroup, InputWait, Pipeline};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let group = EventLoopGroup::new(1)?;
/// let handle = Bootstrap::new(group.clone())
///     .options(ChannelOptions::default().direct_writes(true))
///     .connect(listener.local_addr()?, |_| Pipeline::new())?;
/// let alarm = Arc::new(Alarm::new()?);
/// let news = Arc::new(AtomicBool::new(false));
/// let (a, n) = (alarm.clone(), news.clone());
/// let publisher = std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(20));
///     n.store(true, Ordering::Release);
///     a.ring(); // after publishing, never before
/// });
/// let ready = || news.load(Ordering::Acquire);
/// let woke = handle.wait_for_input(&alarm, ready, Duration::from_secs(5));
/// assert_eq!(woke, InputWait::Ready);
/// publisher.join().unwrap();
/// # group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Alarm {
    armed: AtomicBool,
    bell: Bell,
}

impl Alarm {
    /// A new alarm, with its `eventfd` (the error is the descriptor's:
    /// `EMFILE` when the process has none left).
    pub fn new() -> io::Result<Alarm> {
        Ok(Alarm {
            armed: AtomicBool::new(false),
            bell: Bell::new()?,
        })
    }

    /// Wakes the waiter if it is waiting, or about to: call it after
    /// publishing what the waiter looks for.
    pub fn ring(&self) {
        if self.armed.fetch_or(false, Ordering::Release) {
            self.bell.ring();
        }
    }

    /// The waiter, before it looks at `ready` for the last time and sleeps.
    pub(crate) fn arm(&self) {
        self.armed.swap(true, Ordering::Acquire);
    }

    /// The waiter, awake again: publishers stop ringing.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn disarm(&self) {
        self.armed.store(false, Ordering::Relaxed);
    }

    /// Clears a ring (the waiter, after its sleep said the bell rang).
    #[cfg(not(loom))]
    pub(crate) fn clear(&self) {
        self.bell.clear();
    }

    /// The descriptor to sleep on: readable once rung.
    #[cfg(not(loom))]
    pub(crate) fn fd(&self) -> std::os::fd::RawFd {
        self.bell.fd()
    }
}

/// Sleeps in `poll(2)` on the socket `fd` and `alarm` until `ready()`
/// (looked at before sleeping and after each ring), input on the socket,
/// or `timeout`. Never reads the socket: its input stays for the loop.
#[cfg(not(loom))]
pub(crate) fn sleep_beside(
    fd: std::os::fd::RawFd,
    alarm: &Alarm,
    mut ready: impl FnMut() -> bool,
    timeout: Duration,
) -> InputWait {
    let deadline = Instant::now() + timeout;
    alarm.arm();
    let woke = loop {
        if ready() {
            break InputWait::Ready;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break InputWait::TimedOut;
        }
        let mut fds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: alarm.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Whole milliseconds, rounded up, so a short wait is not a spin.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a live array of two `pollfd`s. `poll` only
        // reads the descriptors' readiness: the socket's number may have
        // been closed by its loop meanwhile (`POLLNVAL`, taken as input)
        // or even reused by another file (its readiness is then a false
        // hint), and neither harms anything, since whoever settles what
        // the caller waits for rings the alarm.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break InputWait::Unsupported;
        }
        if fds[1].revents != 0 {
            // Rung, perhaps late for an earlier wait: look at `ready`.
            alarm.clear();
            continue;
        }
        if fds[0].revents != 0 {
            break InputWait::Input;
        }
    };
    alarm.disarm();
    woke
}

/// The model's view of the protocol, for `loom-tests` (`--cfg loom`).
#[cfg(loom)]
impl Alarm {
    /// The waiter arms the alarm; then it looks at what it waits for.
    pub fn model_arm(&self) {
        self.arm();
    }

    /// Whether the bell rang since it was made.
    pub fn model_rung(&self) -> bool {
        self.bell.0.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for Alarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alarm")
            .field("armed", &self.armed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The bell itself: an `eventfd`, or a flag in the loom model.
#[cfg(not(loom))]
struct Bell(std::os::fd::OwnedFd);

#[cfg(not(loom))]
impl Bell {
    fn new() -> io::Result<Bell> {
        crate::eventfd::open(true).map(Bell)
    }

    fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.0.as_raw_fd()
    }

    fn ring(&self) {
        // A full counter (EAGAIN) is already a ring, so the result is moot.
        let _ = crate::eventfd::signal(&self.0);
    }

    fn clear(&self) {
        crate::eventfd::drain(&self.0);
    }
}

#[cfg(loom)]
struct Bell(AtomicBool);

#[cfg(loom)]
impl Bell {
    fn new() -> io::Result<Bell> {
        Ok(Bell(AtomicBool::new(false)))
    }

    fn ring(&self) {
        self.0.store(true, Ordering::Release);
    }
}
