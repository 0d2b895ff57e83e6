//! Stopping a server on SIGINT or SIGTERM: [`StopSignals`] catches both
//! and hands them to a waiting thread; [`Server::serve_until_signal`]
//! waits for one and shuts the server down gracefully. Uses only `libc`
//! and the server's shutdown.
//!
//! **Why a pipe.** The signal handler may only make async-signal-safe
//! calls, so it writes the signal's number (one byte) into a pipe and
//! returns; the waiting thread reads the pipe with an ordinary blocking
//! read. Unlike blocking the signals and calling `sigwait`, this works
//! whichever thread the kernel delivers the signal to, and whenever the
//! loops' threads were started: a user need not install it first thing in
//! `main`. The waiting thread is the caller's, never a loop's. The handler
//! is installed with `SA_RESTART`, so the system calls it interrupts on
//! other threads are restarted where the kernel can; the loops' waits
//! (`epoll_wait`, `io_uring_enter`), which it cannot restart, treat `EINTR`
//! as an early wake-up.

use crate::bootstrap::Server;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// A stop signal that arrived.
///
/// ```
/// use gyre_reactor::StopSignal;
///
/// /// The exit status a shell reports for a process a signal ended.
/// fn exit_status(signal: StopSignal) -> i32 {
///     128 + signal.number()
/// }
/// assert_eq!(exit_status(StopSignal::Interrupt), 130);
/// assert_eq!(exit_status(StopSignal::Terminate), 143);
/// assert_eq!(StopSignal::Terminate.to_string(), "SIGTERM");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (`kill`, systemd, Kubernetes).
    Terminate,
}

impl StopSignal {
    /// The signal's number.
    pub fn number(self) -> i32 {
        match self {
            StopSignal::Interrupt => libc::SIGINT,
            StopSignal::Terminate => libc::SIGTERM,
        }
    }

    fn from_number(n: i32) -> Option<StopSignal> {
        match n {
            libc::SIGINT => Some(StopSignal::Interrupt),
            libc::SIGTERM => Some(StopSignal::Terminate),
            _ => None,
        }
    }
}

impl std::fmt::Display for StopSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        })
    }
}

/// The write end of the pipe, for the handler (-1 until installed).
static WRITE_END: AtomicI32 = AtomicI32::new(-1);
/// The read end, made once per process.
static READ_END: OnceLock<OwnedFd> = OnceLock::new();

extern "C" fn on_stop_signal(signal: libc::c_int) {
    let fd = WRITE_END.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; `byte` is a live local of
        // the length given. A full pipe (hundreds of unread signals) drops
        // this one, which is harmless: a waiter has plenty to read.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// SIGINT and SIGTERM, caught for the process and delivered to whoever
/// [`wait`](Self::wait)s; the default action (ending the process at once)
/// no longer applies once they are installed.
///
/// ```
/// use gyre_reactor::{StopSignal, StopSignals};
///
/// let signals = StopSignals::install()?;
/// // Here a supervisor would send the signal.
/// unsafe { libc::raise(libc::SIGTERM) };
/// assert_eq!(signals.wait()?, StopSignal::Terminate);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StopSignals {
    read_end: &'static OwnedFd,
}

impl StopSignals {
    /// Catches SIGINT and SIGTERM from now on. Installing again (from any
    /// thread) gives another handle on the same catch; each signal wakes
    /// one waiter.
    ///
    /// # Errors
    /// If the pipe cannot be made or the handler installed.
    pub fn install() -> io::Result<StopSignals> {
        let read_end = match READ_END.get() {
            Some(fd) => fd,
            None => {
                let mut fds = [-1; 2];
                // SAFETY: `fds` is a live array of two ints, as pipe2 takes.
                if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: both descriptors are fresh and ours; the write end
                // is kept open for the life of the process (the handler may
                // run at any time), so it is never wrapped to be closed.
                let read = unsafe { OwnedFd::from_raw_fd(fds[0]) };
                match READ_END.set(read) {
                    Ok(()) => WRITE_END.store(fds[1], Ordering::Relaxed),
                    Err(_lost_race) => {
                        // SAFETY: our own write end, never shared.
                        unsafe { libc::close(fds[1]) };
                    }
                }
                READ_END.get().expect("set above")
            }
        };
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: `action` is zeroed (a valid sigaction: empty mask, no
            // flags) before the handler and flags are set; the handler is
            // an `extern "C" fn(c_int)` that only makes an
            // async-signal-safe call. Null for the old action is allowed.
            let rc = unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_stop_signal as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut())
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(StopSignals { read_end })
    }

    /// Blocks the calling thread until SIGINT or SIGTERM arrives (or has
    /// arrived since the install and not yet been waited for). Do not call
    /// it on a loop thread.
    ///
    /// # Errors
    /// If reading the pipe fails.
    pub fn wait(&self) -> io::Result<StopSignal> {
        loop {
            let mut byte = 0u8;
            // SAFETY: reads at most one byte into a live local.
            let n =
                unsafe { libc::read(self.read_end.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) };
            match n {
                1 => {
                    if let Some(signal) = StopSignal::from_number(byte as i32) {
                        return Ok(signal);
                    }
                }
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }
}

impl Server {
    /// Serves until SIGINT or SIGTERM, then shuts down gracefully (see
    /// [`shutdown_gracefully`](Self::shutdown_gracefully): stop accepting,
    /// wait `quiet` with nothing to do, at most `timeout`) and returns the
    /// signal. For `main`; call it off the loops.
    ///
    /// ```no_run
    /// use gyre_reactor::{Pipeline, ServerBootstrap};
    /// use std::time::Duration;
    ///
    /// let server = ServerBootstrap::new().bind("0.0.0.0:7000", |_peer| Pipeline::new())?;
    /// let signal = server.serve_until_signal(Duration::from_millis(100), Duration::from_secs(10))?;
    /// eprintln!("stopped on {signal}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// If the signals cannot be caught or waited for (the server is then
    /// still running).
    pub fn serve_until_signal(&self, quiet: Duration, timeout: Duration) -> io::Result<StopSignal> {
        let signal = StopSignals::install()?.wait()?;
        tracing::info!(%signal, "stopping: finishing in-flight work");
        self.shutdown_gracefully(quiet, timeout);
        Ok(signal)
    }
}
