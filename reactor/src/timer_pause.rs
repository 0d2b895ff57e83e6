//! [`TimerPause`]: lets a loop stop a periodic timer while it has nothing
//! to watch, and any thread that gives it something learn that the timer
//! must run again. Uses only `crate::sync` (std, or loom under `--cfg
//! loom`); model-checked in `loom-tests` (`timer_pause.rs`).
//!
//! A handler that checks deadlines on a repeating timer wakes its loop at
//! every period even when nothing has a deadline: an idle RPC connection
//! ticking every 5 ms costs its loop 200 wake-ups a second, a thousand of
//! them 17% of a core on our VMs. Stopping the timer is easy on the loop;
//! the hard part is the thread that, just then, hands the loop something
//! with a deadline (a call filed from the caller's thread, which never
//! passes the loop on its way out). The protocol is the one every flag in
//! this crate follows, Dekker's: the loop sets `paused`, then looks for
//! work; the other thread publishes its work, then looks at `paused`;
//! each puts a sequentially consistent fence between its write and its
//! read, so at least one sees the other. Either the loop sees the work
//! and keeps its timer, or the thread sees the pause and restarts the
//! timer (through [`ChannelHandle::fire_user_event`], say). The flag is
//! cleared by a swap, so of the two only one acts on a pause; a restart
//! that finds the timer running is harmless.
//!
//! [`ChannelHandle::fire_user_event`]: crate::ChannelHandle::fire_user_event

use crate::sync::{fence, AtomicBool, Ordering};

/// Whether a loop's periodic timer is paused for want of work, shared by
/// the loop and the threads that give it work. See the module comment for
/// the protocol.
///
/// ```
/// use gyre_reactor::TimerPause;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let pause = TimerPause::default();
/// let in_flight = AtomicUsize::new(0);
/// // The loop, at a tick with nothing in flight: stop ticking.
/// assert!(pause.pause_unless(|| in_flight.load(Ordering::Relaxed) > 0));
/// // Another thread files a call, then asks whether the loop must be
/// // told to tick again: it must, once.
/// in_flight.fetch_add(1, Ordering::Relaxed);
/// assert!(pause.resume_needed());
/// assert!(!pause.resume_needed());
/// // The loop, at its next tick: the call keeps it ticking.
/// assert!(!pause.pause_unless(|| in_flight.load(Ordering::Relaxed) > 0));
/// ```
#[derive(Debug, Default)]
pub struct TimerPause {
    paused: AtomicBool,
}

impl TimerPause {
    /// The loop, about to stop its timer: pauses unless `busy` (which
    /// reads what other threads publish) says there is work. True if the
    /// timer may stop; false if it must keep running, the pause having
    /// been taken back (by the loop, or by a thread that saw it and will
    /// ask for a restart, which the loop then finds running).
    pub fn pause_unless(&self, busy: impl FnOnce() -> bool) -> bool {
        self.paused.store(true, Ordering::Relaxed);
        // Orders the pause before the look at the work, against the
        // publisher's fence between its work and its look at the pause.
        fence(Ordering::SeqCst);
        if !busy() {
            return true;
        }
        self.paused.swap(false, Ordering::Relaxed);
        false
    }

    /// Any thread, after it has published work the loop's timer must see
    /// (its writes come before this call): true if the timer is paused and
    /// this caller must have the loop restart it. Only one caller is told
    /// per pause.
    pub fn resume_needed(&self) -> bool {
        // Orders the caller's work before the look at the pause (see
        // `pause_unless`); also orders it before any read the caller makes
        // after this call.
        fence(Ordering::SeqCst);
        self.paused.load(Ordering::Relaxed) && self.paused.swap(false, Ordering::Relaxed)
    }

    /// Whether the timer is paused now (a hint: another thread may be
    /// resuming it).
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::TimerPause;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Threads publish work and ask while a loop pauses over and over,
    /// until it has paused 200 times (or 10 s have passed): every pause
    /// the loop takes is ended by a publisher told to resume it, within a
    /// second, so no work ever waits on a stopped timer with nobody to
    /// restart it. Counted in pauses, not a fixed span: with other tests
    /// busy on both cores a span could hold too few pauses to say much.
    #[test]
    fn every_pause_is_ended_by_a_publisher() {
        const PUBLISHERS: usize = 3;
        const PAUSES: usize = 200;
        let pause = Arc::new(TimerPause::default());
        let work = Arc::new(AtomicUsize::new(0));
        let resumes = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicBool::new(true));
        let cap = Instant::now() + Duration::from_secs(10);
        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|_| {
                let (pause, work, resumes, running) = (
                    pause.clone(),
                    work.clone(),
                    resumes.clone(),
                    running.clone(),
                );
                std::thread::spawn(move || {
                    while running.load(Ordering::Relaxed) {
                        work.fetch_add(1, Ordering::Relaxed);
                        if pause.resume_needed() {
                            resumes.fetch_add(1, Ordering::Relaxed);
                        }
                        // The loop takes the work back (it was answered).
                        work.fetch_sub(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut stops = 0usize;
        while stops < PAUSES && Instant::now() < cap {
            let before = resumes.load(Ordering::Relaxed);
            if pause.pause_unless(|| work.load(Ordering::Relaxed) > 0) {
                stops += 1;
                // Stopped: the next publish must have the timer restarted.
                let deadline = Instant::now() + Duration::from_secs(1);
                while resumes.load(Ordering::Relaxed) == before {
                    assert!(Instant::now() < deadline, "work published, nobody resumed");
                    std::hint::spin_loop();
                }
            }
        }
        running.store(false, Ordering::Relaxed);
        for p in publishers {
            p.join().unwrap();
        }
        assert!(stops > 100, "the loop paused only {stops} times");
    }
}
