//! What a listener does when accept(2) fails with the connection still in
//! the backlog (out of descriptors: EMFILE, ENFILE; out of kernel memory:
//! ENOBUFS, ENOMEM). Plain data; knows only `std` and `libc`'s error codes.
//!
//! Neither transport would come back by itself: epoll's edge for the
//! listener has been consumed, and io_uring's accept fails again at once
//! if pushed again at once, so that would spin. The listener instead
//! retries on a timer every [`ACCEPT_RETRY`] until the backlog drains, as
//! Netty and tokio-based servers back off, and says so once per
//! [`REPORT_EVERY`] with a count, not once per refused accept (a flood of
//! connections at the descriptor limit would otherwise flood the log).

use std::io;
use std::time::{Duration, Instant};

/// How long a listener waits before accepting again after running out.
pub(crate) const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// At most one warning this often per listener.
pub(crate) const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Whether `e` leaves the connection in the backlog for want of resources,
/// so the listener must try again later rather than at the next edge. (The
/// epoll path retries after any failed accept, since its edge is spent
/// whatever the error; io_uring asks, to know whether to re-arm at once.)
#[cfg_attr(not(feature = "io-uring"), allow(dead_code))]
pub(crate) fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// One listener's refused accepts and retry timer.
#[derive(Debug, Default)]
pub(crate) struct AcceptBackoff {
    retry_scheduled: bool,
    refused: u64,
    /// Every refusal since the listener started, for the loop's metrics.
    pub(crate) total: u64,
    last_report: Option<Instant>,
}

impl AcceptBackoff {
    /// Counts a refused accept; returns how many to report if a warning is
    /// due (every refusal since the last warning, this one included).
    pub(crate) fn refused(&mut self, now: Instant) -> Option<u64> {
        self.refused += 1;
        self.total += 1;
        let due = self
            .last_report
            .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY);
        if !due {
            return None;
        }
        self.last_report = Some(now);
        Some(std::mem::take(&mut self.refused))
    }

    /// Whether a retry timer must be scheduled (none is pending); marks one
    /// as pending.
    pub(crate) fn needs_retry(&mut self) -> bool {
        !std::mem::replace(&mut self.retry_scheduled, true)
    }

    /// Whether a retry timer is pending (accepting waits for it).
    #[cfg_attr(not(feature = "io-uring"), allow(dead_code))]
    pub(crate) fn retry_pending(&self) -> bool {
        self.retry_scheduled
    }

    /// The retry timer fired.
    pub(crate) fn retried(&mut self) {
        self.retry_scheduled = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_per_interval_with_the_count_and_keeps_one_retry() {
        let mut b = AcceptBackoff::default();
        let t0 = Instant::now();
        assert_eq!(b.refused(t0), Some(1));
        for i in 1..50 {
            assert_eq!(b.refused(t0 + Duration::from_millis(i * 10)), None);
        }
        assert_eq!(b.refused(t0 + REPORT_EVERY), Some(50));
        assert!(b.needs_retry());
        assert!(!b.needs_retry(), "one retry timer at a time");
        b.retried();
        assert!(b.needs_retry());
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_exhaustion(&emfile));
        assert!(!is_exhaustion(&io::Error::from(io::ErrorKind::WouldBlock)));
    }
}
