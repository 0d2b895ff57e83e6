//! How fast a log cleaner's pass may go: its stop flag, checked at every
//! batch, and its I/O throttle (Kafka's
//! `log.cleaner.io.max.bytes.per.second`), which counts the bytes a pass
//! reads and writes and sleeps the cleaner's thread whenever the pass has
//! got ahead of the rate. Compaction rereads and rewrites whole segments;
//! on a disk the producers and readers share, a pass at full speed takes
//! their bandwidth, and the throttle is how an operator keeps it to a
//! share. Plain data, the standard library and `thiserror` (the cleaner, which
//! uses it, turns [`Stopped`] into its own error).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest sleep between two looks at the stop flag: a throttled
/// pass still gives up promptly at shutdown.
const NAP: Duration = Duration::from_millis(50);

/// The pass's stop flag was set: it gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the pass was stopped")]
pub struct Stopped;

/// A byte rate and what a pass has spent against it since it began.
#[derive(Debug)]
pub struct Throttle {
    bytes_per_second: u64,
    started: Instant,
    bytes: u64,
}

impl Throttle {
    /// A throttle of `bytes_per_second` (at least one), counting from
    /// `now`.
    pub fn new(bytes_per_second: u64, now: Instant) -> Self {
        Throttle {
            bytes_per_second: bytes_per_second.max(1),
            started: now,
            bytes: 0,
        }
    }

    /// Counts `bytes` more read or written at `now`; how long to wait
    /// before going on, so that the pass's bytes over its time stay
    /// within the rate (zero when it is not ahead).
    pub fn spend(&mut self, bytes: u64, now: Instant) -> Duration {
        self.bytes += bytes;
        let due = Duration::from_secs_f64(self.bytes as f64 / self.bytes_per_second as f64);
        (self.started + due).saturating_duration_since(now)
    }
}

/// A pass's stop flag and throttle, shared by its reads and writes.
///
/// ```
/// use gyre_broker::log::pace::Pace;
/// use std::sync::atomic::AtomicBool;
///
/// let stop = AtomicBool::new(false);
/// // At most 64 MiB a second of reading and writing.
/// let pace = Pace::new(&stop, Some(64 << 20));
/// assert!(pace.spent(1 << 20).is_ok());
/// ```
#[derive(Debug)]
pub struct Pace<'a> {
    stop: &'a AtomicBool,
    throttle: Option<RefCell<Throttle>>,
}

impl<'a> Pace<'a> {
    /// A pass that gives up once `stop` is set, held to
    /// `bytes_per_second` if one is given.
    pub fn new(stop: &'a AtomicBool, bytes_per_second: Option<u64>) -> Self {
        Pace {
            stop,
            throttle: bytes_per_second.map(|r| RefCell::new(Throttle::new(r, Instant::now()))),
        }
    }

    /// A pass as fast as the disk goes.
    pub fn unthrottled(stop: &'a AtomicBool) -> Self {
        Pace::new(stop, None)
    }

    /// [`Stopped`] once the pass should give up.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(Stopped);
        }
        Ok(())
    }

    /// Counts `bytes` read or written, sleeping while the pass is ahead
    /// of its rate (looking at the stop flag between naps).
    pub fn spent(&self, bytes: u64) -> Result<(), Stopped> {
        let Some(throttle) = &self.throttle else {
            return self.check();
        };
        let mut wait = throttle.borrow_mut().spend(bytes, Instant::now());
        while !wait.is_zero() {
            self.check()?;
            let nap = wait.min(NAP);
            std::thread::sleep(nap);
            wait -= nap;
        }
        self.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_ahead_of_its_rate_waits_until_its_bytes_are_due() {
        let t0 = Instant::now();
        let mut t = Throttle::new(1_000, t0);
        // 500 bytes at once: due after half a second.
        assert_eq!(t.spend(500, t0), Duration::from_millis(500));
        // A quarter second later, 250 more: due at 750 ms.
        assert_eq!(
            t.spend(250, t0 + Duration::from_millis(250)),
            Duration::from_millis(500)
        );
        // Behind the rate: no wait.
        assert_eq!(t.spend(100, t0 + Duration::from_secs(2)), Duration::ZERO);
    }

    #[test]
    fn a_stopped_pass_gives_up_in_the_middle_of_a_wait() {
        let stop = AtomicBool::new(false);
        let pace = Pace::new(&stop, Some(1));
        stop.store(true, Ordering::Relaxed);
        let started = Instant::now();
        // An hour's worth at one byte a second: given up at once.
        assert_eq!(pace.spent(3_600), Err(Stopped));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
