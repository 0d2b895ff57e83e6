//! The process's open-file limit, which bounds how many connections and
//! files a server can hold at once. A leaf: knows only `libc`.
//!
//! Many systems start processes with a soft limit of 1,024 under a hard
//! limit of hundreds of thousands; a server that does not raise it refuses
//! connections (or, in a broker, fails to open its logs) long before the
//! machine runs short. Servers call [`raise_open_file_limit`] once at start
//! and size their caps from what they got.

use std::io;

/// The soft and hard limits on open files.
fn limits() -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim)
}

/// The process's soft limit on open files now (1,024 if it cannot be read).
///
/// ```
/// assert!(gyre_reactor::open_file_limit() > 0);
/// ```
pub fn open_file_limit() -> u64 {
    limits().map_or(1024, |l| l.rlim_cur)
}

/// Raises the soft limit on open files to the hard limit; returns the
/// limit before and after.
///
/// ```
/// let (before, after) = gyre_reactor::raise_open_file_limit()?;
/// assert!(after >= before);
/// assert_eq!(after, gyre_reactor::open_file_limit());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn raise_open_file_limit() -> io::Result<(u64, u64)> {
    let mut lim = limits()?;
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads the valid struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((before, lim.rlim_cur))
}

/// Sets the soft limit on open files to `soft` (at most the hard limit);
/// returns the soft limit before. A server that wants a fixed descriptor
/// budget, or a test of what happens at the limit, lowers it with this.
///
/// ```
/// let before = gyre_reactor::set_open_file_limit(512)?;
/// assert!(gyre_reactor::open_file_limit() <= 512);
/// gyre_reactor::set_open_file_limit(before)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_open_file_limit(soft: u64) -> io::Result<u64> {
    let mut lim = limits()?;
    let before = lim.rlim_cur;
    lim.rlim_cur = soft.min(lim.rlim_max);
    // SAFETY: setrlimit reads the valid struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(before)
}
