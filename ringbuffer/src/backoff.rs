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

/// How long a consumer that has caught up with a dense stream pauses
/// before it looks again (see `SequenceBarrier::first_look`): a few
/// cache-line transfers between cores (70-150 ns each on the VMs we
/// measure on), long enough for a producer to publish a batch, short next
/// to any thread wake-up. On the AMD EPYC VM 1p1c busy-spin publish ran at
/// 190-290 M events/s with 200 ns and 235-350 M with 400 ns, and the
/// latency of paced traffic was the same for both (BENCHMARKS.md).
#[cfg_attr(loom, allow(dead_code))] // the loom build breathes one spin
const BREATH: Duration = Duration::from_nanos(400);

/// How many spin-loop hints make up a [`BREATH`] on this CPU.
///
/// A hint's length differs by an order of magnitude between CPU kinds
/// (about 24 ns on the AMD EPYC VMs we measure on, 35-45 ns on Intel
/// cores since Skylake, a few ns on older ones), so a fixed count would
/// breathe for very different times. It is measured once per process, on
/// the first call, as the shortest of four samples of 256 hints (about
/// 25 µs in all here).
pub(crate) fn breath_spins() -> u32 {
    #[cfg(not(loom))]
    {
        static SPINS_PER_BREATH: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        *SPINS_PER_BREATH.get_or_init(|| {
            const SAMPLE: u32 = 256;
            // The shortest of a few samples: a sample the scheduler (or the
            // hypervisor) interrupted is long, and would make the breath short.
            let fastest = (0..4)
                .map(|_| {
                    let start = std::time::Instant::now();
                    for _ in 0..SAMPLE {
                        std::hint::spin_loop();
                    }
                    start.elapsed()
                })
                .min()
                .unwrap_or_default();
            let per_spin = fastest.as_nanos().max(1) as f64 / f64::from(SAMPLE);
            (BREATH.as_nanos() as f64 / per_spin)
                .ceil()
                .clamp(1.0, 256.0) as u32
        })
    }
    #[cfg(loom)]
    {
        1
    }
}

/// Pause for `spins` spin-loop hints: a breath (see [`breath_spins`]).
#[cold]
#[inline(never)]
pub(crate) fn breathe(spins: u32) {
    for _ in 0..spins {
        sync::spin_loop();
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
    fn snoozing_long_past_the_sleeps_neither_overflows_nor_changes() {
        let mut backoff = Backoff::new(true);
        backoff.step = u32::MAX - 1;
        backoff.snooze();
        backoff.snooze();
        assert_eq!(backoff.step, u32::MAX);
        assert_eq!(backoff.next_pause(), Pause::Sleep);
    }
}
