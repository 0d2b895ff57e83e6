//! The batch event processor: the loop behind every [`EventHandler`] stage.
//!
//! It waits once per batch, hands every available event (at most the
//! ring's `max_batch`) to the handler with `end_of_batch` on the last,
//! then publishes its progress with one release store and one signal.
//! Handler panics are caught by one `catch_unwind` around the whole loop, not one per batch, so the happy path pays nothing
//! for them; after a `LogAndContinue` panic the loop is simply entered again.

use crate::barrier::SequenceBarrier;
use crate::error::WaitError;
use crate::lend::BatchLend;
use crate::monitor::{Monitor, PanicPolicy};
use crate::sequence::Sequence;
use crate::sync::Arc;
use crate::wait::WaitStrategy;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub(crate) struct BatchEventProcessor<E, W> {
    pub(crate) barrier: SequenceBarrier<E, W>,
    pub(crate) sequence: Arc<Sequence>,
    pub(crate) stage: String,
    pub(crate) policy: PanicPolicy,
    pub(crate) monitor: Arc<Monitor>,
}

impl<E, W: WaitStrategy> BatchEventProcessor<E, W> {
    /// Run `handler` until the disruptor halts, or drains past the last event.
    pub(crate) fn run<H: BatchLend<E>>(self, handler: &mut H) {
        let core = &self.barrier.core;
        handler.on_start();
        // The event being handled, kept outside the unwind boundary so a
        // panic can be attributed to its sequence.
        let mut current = self.sequence.get();
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.process(handler, &mut current))) {
                Ok(()) => break,
                Err(payload) => {
                    self.monitor
                        .record_panic(&self.stage, current, payload.as_ref(), self.policy);
                    // The panicking event counts as handled either way: under
                    // `Halt` nothing goes further, under `LogAndContinue` we skip it.
                    self.sequence.set(current);
                    core.wait.signal_all_when_blocking();
                    if self.policy == PanicPolicy::Halt {
                        core.halt();
                        break;
                    }
                }
            }
        }
        core.wait.signal_all_when_blocking();
        handler.on_shutdown();
    }

    /// Handle batches until alerted; `current` tracks the event in hand.
    #[inline(always)]
    fn process<H: BatchLend<E>>(&self, handler: &mut H, current: &mut i64) {
        let core = &self.barrier.core;
        let mut next = self.sequence.get() + 1;
        loop {
            let available = match self.barrier.wait_for(next) {
                Ok(available) => available,
                Err(WaitError::Timeout) => {
                    handler.on_timeout(self.sequence.get());
                    continue;
                }
                Err(WaitError::Alerted) => return,
            };
            handler.on_batch_start((available - next + 1) as usize);
            // SAFETY: the barrier returned `available`, so every sequence up
            // to it is published and visible (acquire), and this stage's own
            // sequence is still below `next`, so producers cannot reclaim them.
            // An owning lender's stage was added by `Graph::then_owner`: every
            // other stage is upstream of it (its barrier waited for them) and
            // none downstream, so it alone reaches these slots now.
            unsafe { handler.lend(core, next, available, current) };
            self.sequence.set(available);
            core.wait.signal_all_when_blocking();
            next = available + 1;
        }
    }
}
