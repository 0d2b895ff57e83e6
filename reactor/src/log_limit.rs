//! A bound on warnings a peer can cause at will: a malformed request, a
//! failed login, an oversized datagram. Logged one by one, a client that
//! sends them in a loop fills the log's disk (a fuzzing run wrote 0.7 MB
//! of them a second to a broker's log); held to a burst and then one a
//! second, it cannot, and the line that is logged says how many like it
//! were held back. What is held back can still be seen at debug level.
//!
//! The bucket is the traffic shaper's shared one ([`SharedTrafficLimit`],
//! a compare-exchange on one atomic), counting lines instead of bytes,
//! and the count of held-back lines is one more atomic: any thread may
//! ask, and none waits. Uses the traffic limits and the crate's atomics.

use crate::sync::{AtomicU64, Ordering};
use crate::traffic_limit::{SharedTrafficLimit, TrafficLimit};
use std::fmt;
use std::time::Instant;

/// Lets through a burst of log lines, then one every so often, and counts
/// the rest.
///
/// ```
/// use gyre_reactor::LogLimit;
/// use std::sync::LazyLock;
///
/// // One per call site, shared by every loop.
/// static REFUSED: LazyLock<LogLimit> = LazyLock::new(|| LogLimit::new(20, 1));
///
/// fn refuse(peer: &str, why: &str) -> bool {
///     match REFUSED.admit() {
///         // `held` prints as nothing, or as " (N more held back)".
///         Some(held) => {
///             eprintln!("closing the connection from {peer}: {why}{held}");
///             true
///         }
///         None => false, // counted; log it at a lower level if at all
///     }
/// }
/// let logged = (0..100)
///     .filter(|_| refuse("192.0.2.7:4000", "a malformed request"))
///     .count();
/// // Twenty lines went out; the next, a second later, will say that 80
/// // more were held back.
/// assert_eq!(logged, 20);
/// ```
#[derive(Debug)]
pub struct LogLimit {
    bucket: SharedTrafficLimit,
    held: AtomicU64,
}

/// How many lines like the one logged were held back since the last one
/// that was: prints as nothing when none were, else as ` (N more held
/// back)`.
///
/// ```
/// use gyre_reactor::Held;
///
/// assert_eq!(format!("a bad frame{}", Held(0)), "a bad frame");
/// assert_eq!(format!("a bad frame{}", Held(3)), "a bad frame (3 more held back)");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held(pub u64);

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, " ({n} more held back)"),
        }
    }
}

impl LogLimit {
    /// `burst` lines at once, then `per_second` a second (each at least 1).
    pub fn new(burst: u64, per_second: u64) -> Self {
        LogLimit {
            bucket: SharedTrafficLimit::new(
                TrafficLimit::bytes_per_second(per_second).burst(burst),
            ),
            held: AtomicU64::new(0),
        }
    }

    /// Whether a line may go out now: `Some` with the lines held back
    /// since the last one that went, or `None` (counted) if not.
    pub fn admit(&self) -> Option<Held> {
        self.admitted(self.bucket.take(1, Instant::now()) == 1)
    }

    /// [`admit`](Self::admit) at `t` ns after the limit was made. Public
    /// only for the loom model and the tests.
    #[doc(hidden)]
    pub fn admit_at(&self, t: u64) -> Option<Held> {
        self.admitted(self.bucket.take_nanos(t, 1) == 1)
    }

    fn admitted(&self, took: bool) -> Option<Held> {
        // Relaxed: the count is all these atomics share, and each
        // read-modify-write counts a line exactly once.
        if took {
            Some(Held(self.held.swap(0, Ordering::Relaxed)))
        } else {
            self.held.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// The lines held back since the last that went. Public only for the
    /// loom model and the tests.
    #[doc(hidden)]
    pub fn held_back(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }
}

/// Logs a warning through a [`LogLimit`]: at warn level while the limit
/// lets it through (with a `held_back` field counting the lines held back
/// since the last, when there were any), at debug level when not.
/// `tracing::warn!`'s arguments follow the limit.
///
/// ```
/// use gyre_reactor::{warn_limited, LogLimit};
/// use std::sync::LazyLock;
///
/// static BAD_FRAMES: LazyLock<LogLimit> = LazyLock::new(|| LogLimit::new(20, 1));
///
/// let peer = "192.0.2.7:4000";
/// warn_limited!(BAD_FRAMES, %peer, "closing connection: a malformed frame");
/// ```
#[macro_export]
macro_rules! warn_limited {
    ($limit:expr, $($arg:tt)+) => {
        match $limit.admit() {
            ::core::option::Option::Some($crate::Held(0)) => $crate::__tracing::warn!($($arg)+),
            ::core::option::Option::Some($crate::Held(held_back)) => {
                $crate::__tracing::warn!(held_back, $($arg)+)
            }
            ::core::option::Option::None => $crate::__tracing::debug!($($arg)+),
        }
    };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_burst_then_one_a_second_and_the_next_line_counts_the_rest() {
        let limit = LogLimit::new(3, 1);
        for _ in 0..3 {
            assert_eq!(limit.admit_at(0), Some(Held(0)));
        }
        for _ in 0..10 {
            assert_eq!(limit.admit_at(SECOND / 2), None);
        }
        assert_eq!(limit.admit_at(SECOND), Some(Held(10)));
        assert_eq!(limit.admit_at(SECOND), None);
        assert_eq!(Held(0).to_string(), "");
        assert_eq!(Held(10).to_string(), " (10 more held back)");
        // Quiet for long enough, the whole burst is back.
        for _ in 0..3 {
            assert!(limit.admit_at(100 * SECOND).is_some());
        }
    }

    #[test]
    fn threads_asking_at_once_let_the_burst_through_and_count_every_other_line() {
        const THREADS: u64 = 4;
        const EACH: u64 = 20_000;
        let limit = Arc::new(LogLimit::new(50, 1));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let limit = limit.clone();
                std::thread::spawn(move || {
                    let (mut went, mut reported) = (0u64, 0u64);
                    for _ in 0..EACH {
                        if let Some(Held(n)) = limit.admit_at(0) {
                            went += 1;
                            reported += n;
                        }
                    }
                    (went, reported)
                })
            })
            .collect();
        let (mut went, mut reported) = (0, 0);
        for t in threads {
            let (w, r) = t.join().unwrap();
            went += w;
            reported += r;
        }
        assert_eq!(went, 50, "exactly the burst at one instant");
        assert_eq!(
            went + reported + limit.held_back(),
            THREADS * EACH,
            "every line went out or was counted, once"
        );
    }
}
