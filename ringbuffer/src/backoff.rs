//! Backing off while another thread must make progress first: a producer
//! waiting for room in a full ring, a consumer waiting for a claimed slot to
//! be written.
//!
//! Spinning is right for a wait of nanoseconds, yielding for one of a few
//! microseconds. Past that, the thread we wait for is usually not running at
//! all (more threads than cores), and under Linux's scheduler a yield rarely
//! hands it the CPU; only sleeping does. So the back-off escalates: spin,
//! then yield, then sleep for short, fixed periods, as the Java Disruptor's
//! producers do with `parkNanos(1)`. The sleep only starts once the ring has
//! been full (or the slot unwritten) for thousands of checks, so it costs a
//! busy pipeline nothing.
//!
//! Except where every thread has a core of its own, as a graph whose wait
//! strategy never parks says ([`BusySpinWait`](crate::BusySpinWait),
//! [`YieldingWait`](crate::YieldingWait)): there the back-off never sleeps,
//! and yields instead. A long wait there means the consumer's core was taken
//! from it for a while (on our VMs, the host holding up a vCPU), and it
//! drains a full ring in tens of microseconds once it runs again; a producer
//! asleep for a 20 µs sleep, which takes about 100 µs here, left it idle
//! for the rest. On the AMD EPYC Zen 5 VM, 1p1c batch publish with
//! `BusySpinWait` slept about 7 times per 40 M events, and yielding instead
//! raised its slowest tenth of samples from 547 to 716 M events/s (its
//! median by 2%; BENCHMARKS.md, issue 22, thirteenth session).

use crate::sync;
use std::time::Duration;

const SPINS: u32 = 64;
const YIELDS: u32 = 16;
const SLEEP: Duration = Duration::from_micros(20);

/// What the next [`Backoff::snooze`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pause {
    Spin,
    Yield,
    Sleep,
}

/// Escalating back-off state for one wait.
#[derive(Debug)]
pub(crate) struct Backoff {
    step: u32,
    /// Whether the wait may end in sleeps (threads may outnumber cores).
    may_sleep: bool,
}

impl Backoff {
    /// A new wait; `may_sleep` is false where every thread has a core of
    /// its own (the graph's wait strategy never parks).
    pub(crate) fn new(may_sleep: bool) -> Self {
        Backoff { step: 0, may_sleep }
    }

    fn next_pause(&self) -> Pause {
        if self.step < SPINS {
            Pause::Spin
        } else if self.step < SPINS + YIELDS || !self.may_sleep {
            Pause::Yield
        } else {
            Pause::Sleep
        }
    }

    /// Wait a little longer than last time. Never inlined: it only runs on
    /// slow paths, and keeping it out of line keeps its callers' fast paths
    /// small enough to inline.
    #[cold]
    #[inline(never)]
    pub(crate) fn snooze(&mut self) {
        match self.next_pause() {
            Pause::Spin => sync::spin_loop(),
            Pause::Yield => sync::yield_now(),
            Pause::Sleep => sync::sleep(SLEEP),
        }
        self.step = self.step.saturating_add(1);
    }
}

/// The most spin hints one retry of a contended claim waits, as a power
/// of two: 64. Under loom a spin is a yield the model explores, so one.
const CONTENDED_SPIN_LIMIT: u32 = if cfg!(loom) { 0 } else { 6 };

/// The back-off of a claim that lost its compare-exchange to another
/// producer: spin twice as long after each lost race, up to
/// 2^[`CONTENDED_SPIN_LIMIT`] hints. Waiting out the winner's run lets its
/// core keep the cursor's line for a stretch of claims, instead of every
/// claim pulling the line across (see `claim::claim_on_cursor` for the
/// figures). One per claim: a claim that wins at once never spins.
///
/// `crossbeam_utils::Backoff::spin` does the same, but spins with `std`'s
/// hint under loom too, where a spin must be a yield the model can see
/// (`sync::spin_loop`); hence this one.
#[derive(Debug, Default)]
pub(crate) struct Contention {
    step: u32,
}

impl Contention {
    /// Wait a little longer than after the last lost race. Out of line,
    /// as `snooze`, to keep the claim's fast path small.
    #[cold]
    #[inline(never)]
    pub(crate) fn spin(&mut self) {
        for _ in 0..1u32 << self.step {
            sync::spin_loop();
        }
        if self.step < CONTENDED_SPIN_LIMIT {
            self.step += 1;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn pauses(may_sleep: bool, steps: u32) -> Vec<Pause> {
        let mut backoff = Backoff::new(may_sleep);
        (0..steps)
            .map(|_| {
                let pause = backoff.next_pause();
                backoff.step += 1;
                pause
            })
            .collect()
    }

    #[test]
    fn a_wait_that_may_sleep_spins_then_yields_then_sleeps() {
        let seen = pauses(true, SPINS + YIELDS + 3);
        assert!(seen[..SPINS as usize].iter().all(|p| *p == Pause::Spin));
        assert!(seen[SPINS as usize..(SPINS + YIELDS) as usize]
            .iter()
            .all(|p| *p == Pause::Yield));
        assert!(seen[(SPINS + YIELDS) as usize..]
            .iter()
            .all(|p| *p == Pause::Sleep));
    }

    #[test]
    fn a_wait_that_may_not_sleep_yields_for_ever() {
        let seen = pauses(false, SPINS + YIELDS + 10_000);
        assert!(seen[..SPINS as usize].iter().all(|p| *p == Pause::Spin));
        assert!(seen[SPINS as usize..].iter().all(|p| *p == Pause::Yield));
    }

    #[test]
    fn a_lost_race_doubles_the_next_spin_up_to_its_limit() {
        let mut contention = Contention::default();
        let steps: Vec<u32> = (0..10)
            .map(|_| {
                contention.spin();
                contention.step
            })
            .collect();
        assert_eq!(steps, [1, 2, 3, 4, 5, 6, 6, 6, 6, 6]);
    }

    #[test]
    fn snoozing_long_past_the_sleeps_neither_overflows_nor_changes() {
        let mut backoff = Backoff::new(true);
        backoff.step = u32::MAX - 1;
        backoff.snooze();
        backoff.snooze();
        assert_eq!(backoff.step, u32::MAX);
        assert_eq!(backoff.next_pause(), Pause::Sleep);
    }
}
