//! The batch event processor: the loop behind every [`EventHandler`] stage.
//!
//! It waits once per batch, hands every available event to the handler with
//! `end_of_batch` on the last, then publishes its progress with one release
//! store and one signal. A panic in the handler is caught per batch (free
//! when nothing panics) and goes to the stage's [`PanicPolicy`].

use crate::barrier::SequenceBarrier;
use crate::error::WaitError;
use crate::handler::EventHandler;
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
    pub(crate) fn run<H: EventHandler<E>>(self, handler: &mut H) {
        let core = &self.barrier.core;
        handler.on_start();
        let mut next = self.sequence.get() + 1;
        loop {
            let available = match self.barrier.wait_for(next) {
                Ok(available) => available,
                Err(WaitError::Timeout) => {
                    handler.on_timeout(self.sequence.get());
                    continue;
                }
                Err(WaitError::Alerted) => break,
            };
            let mut current = next;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                handler.on_batch_start((available - next + 1) as usize);
                // SAFETY: the barrier returned `available`, so every sequence up
                // to it is published and visible (acquire), and this stage's own
                // sequence is still below `next`, so producers cannot reclaim them.
                unsafe {
                    core.read_each(next, available, |sequence, event| {
                        current = sequence;
                        handler.on_event(event, sequence, sequence == available);
                        true
                    })
                };
            }));
            match outcome {
                Ok(()) => {
                    self.sequence.set(available);
                    next = available + 1;
                }
                Err(payload) => {
                    self.monitor
                        .record_panic(&self.stage, current, payload.as_ref(), self.policy);
                    // The panicking event counts as handled either way: under
                    // `Halt` nothing goes further, under `LogAndContinue` we skip it.
                    self.sequence.set(current);
                    next = current + 1;
                    if self.policy == PanicPolicy::Halt {
                        core.halt();
                        break;
                    }
                }
            }
            core.wait.signal_all_when_blocking();
        }
        core.wait.signal_all_when_blocking();
        handler.on_shutdown();
    }
}
