//! The worker-pool loop: N threads share one stage, each event goes to
//! exactly one of them.
//!
//! Workers claim sequences from a shared work sequence with a
//! compare-exchange. Before claiming, a worker sets its own (gating) sequence
//! to just below what it is about to claim, so the producer can never lap an
//! event that a worker has claimed but not yet handled.

use crate::barrier::SequenceBarrier;
use crate::error::WaitError;
use crate::handler::WorkHandler;
use crate::monitor::{Monitor, PanicPolicy};
use crate::sequence::Sequence;
use crate::sync::{Arc, Ordering};
use crate::wait::WaitStrategy;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub(crate) struct WorkProcessor<E, W> {
    pub(crate) barrier: SequenceBarrier<E, W>,
    /// This worker's progress, which producers and later stages gate on.
    pub(crate) sequence: Arc<Sequence>,
    /// The pool's claim counter: the last sequence any worker claimed.
    pub(crate) work_sequence: Arc<Sequence>,
    pub(crate) stage: String,
    pub(crate) policy: PanicPolicy,
    pub(crate) monitor: Arc<Monitor>,
}

impl<E, W: WaitStrategy> WorkProcessor<E, W> {
    pub(crate) fn run<H: WorkHandler<E>>(self, handler: &mut H) {
        let core = &self.barrier.core;
        handler.on_start();
        let mut cached_available = i64::MIN;
        let mut next;
        'claim: loop {
            // Claim the next unclaimed sequence for this worker.
            loop {
                let current = self.work_sequence.get();
                next = current + 1;
                self.sequence.set(current);
                // Our previous event is now accounted for: wake stages blocked on us.
                core.wait.signal_all_when_blocking();
                if self
                    .work_sequence
                    .atomic()
                    .compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    break;
                }
            }
            // Wait for it to be published, then handle it.
            while cached_available < next {
                match self.barrier.wait_for(next) {
                    Ok(available) => cached_available = available,
                    Err(WaitError::Timeout) => handler.on_timeout(self.sequence.get()),
                    Err(WaitError::Alerted) => break 'claim,
                }
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: `next` is published (the barrier said so, with acquire),
                // no other worker claimed it (the compare-exchange gave it to us
                // alone), and our gating sequence is `next - 1`, so no producer
                // can reclaim the slot while we read it.
                unsafe { core.read(next, |event| handler.on_event(event, next)) };
            }));
            if let Err(payload) = outcome {
                self.monitor
                    .record_panic(&self.stage, next, payload.as_ref(), self.policy);
                if self.policy == PanicPolicy::Halt {
                    self.sequence.set(next);
                    core.halt();
                    break;
                }
            }
        }
        // Everything up to what this worker claimed last is handled.
        self.sequence.set(next - 1);
        core.wait.signal_all_when_blocking();
        handler.on_shutdown();
    }
}
