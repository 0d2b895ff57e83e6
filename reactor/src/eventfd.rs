//! The `eventfd` counter a thread is woken through: opened, written and
//! drained here only, for the io_uring loop's waker and for [`Alarm`]s.
//! Uses `libc` alone.
//!
//! [`Alarm`]: crate::Alarm

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A new eventfd (close-on-exec), `nonblocking` or not: a ring that keeps
/// a read pending on it needs it blocking, a `poll(2)` user does not.
pub(crate) fn open(nonblocking: bool) -> io::Result<OwnedFd> {
    let flags = libc::EFD_CLOEXEC | if nonblocking { libc::EFD_NONBLOCK } else { 0 };
    // SAFETY: eventfd has no memory arguments; the result is checked.
    let fd = unsafe { libc::eventfd(0, flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that we own from here on.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to the counter: whoever waits on it wakes.
pub(crate) fn signal(fd: &OwnedFd) -> io::Result<()> {
    let one = 1u64;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
    let n = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    if n == 8 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Resets a non-blocking eventfd's counter (a no-op if it is zero).
#[cfg(not(loom))]
pub(crate) fn drain(fd: &OwnedFd) {
    let mut count = 0u64;
    // SAFETY: reads 8 bytes into a live u64 from an eventfd we own; it is
    // non-blocking, so a zero counter returns EAGAIN at once.
    unsafe { libc::read(fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
}
