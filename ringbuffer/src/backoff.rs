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

use crate::sync;
use std::time::Duration;

const SPINS: u32 = 64;
const YIELDS: u32 = 16;
const SLEEP: Duration = Duration::from_micros(20);

/// Escalating back-off state for one wait.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    step: u32,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff { step: 0 }
    }

    /// Wait a little longer than last time. Never inlined: it only runs on
    /// slow paths, and keeping it out of line keeps its callers' fast paths
    /// small enough to inline.
    #[cold]
    #[inline(never)]
    pub(crate) fn snooze(&mut self) {
        if self.step < SPINS {
            sync::spin_loop();
        } else if self.step < SPINS + YIELDS {
            sync::yield_now();
        } else {
            sync::sleep(SLEEP);
            return;
        }
        self.step += 1;
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
