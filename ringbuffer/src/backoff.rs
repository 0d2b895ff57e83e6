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
