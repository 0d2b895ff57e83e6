//! The worker-pool loop: N threads share one stage, each event goes to
//! exactly one of them.
//!
//! Workers claim sequences from a shared work sequence with a
//! compare-exchange. Before claiming, a worker sets its own (gating) sequence
//! to just below what it is about to claim, so the producer can never lap an
//! event that a worker has claimed but not yet handled. As in the batch
//! processor, one `catch_unwind` surrounds the whole loop.

use crate::barrier::SequenceBarrier;
use crate::error::WaitError;
use crate::lend::WorkLend;
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
    pub(crate) fn run<H: WorkLend<E>>(self, handler: &mut H) {
        let core = &self.barrier.core;
        handler.on_start();
        // The sequence this worker claimed last; outside the unwind boundary
        // so a panic can be attributed to it.
        let mut claimed = self.sequence.get();
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.process(handler, &mut claimed))) {
                Ok(()) => break,
                Err(payload) => {
                    self.monitor
                        .record_panic(&self.stage, claimed, payload.as_ref(), self.policy);
                    if self.policy == PanicPolicy::Halt {
                        core.halt();
                        break;
                    }
                    // Skip the event: the next claim moves this worker's sequence on.
                }
            }
        }
        // Everything up to what this worker claimed last is handled (or, for
        // the claim that ended the loop, will never exist).
        self.sequence.set(claimed - 1);
        core.wait.signal_all_when_blocking();
        handler.on_shutdown();
    }

    /// Claim and handle events until alerted; `claimed` tracks the claim.
    #[inline(always)]
    fn process<H: WorkLend<E>>(&self, handler: &mut H, claimed: &mut i64) {
        let core = &self.barrier.core;
        let mut cached_available = i64::MIN;
        loop {
            // Claim the next unclaimed sequence for this worker.
            loop {
                let current = self.work_sequence.get();
                self.sequence.set(current);
                // Our previous event is now accounted for: wake stages blocked on us.
                core.wait.signal_all_when_blocking();
                if self
                    .work_sequence
                    .atomic()
                    .compare_exchange(current, current + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    *claimed = current + 1;
                    break;
                }
            }
            let next = *claimed;
            // Wait for it to be published, then handle it.
            while cached_available < next {
                match self.barrier.wait_for(next) {
                    Ok(available) => cached_available = available,
                    Err(WaitError::Timeout) => handler.on_timeout(self.sequence.get()),
                    Err(WaitError::Alerted) => return,
                }
            }
            // SAFETY: `next` is published (the barrier said so, with acquire),
            // no other worker claimed it (the compare-exchange gave it to us
            // alone), and our gating sequence is `next - 1`, so no producer
            // can reclaim the slot while we read it. An owner pool was added
            // by `Graph::then_owner`: every other stage is upstream of it and
            // none downstream, so this worker alone reaches the slot now.
            unsafe { handler.lend(core, next) };
        }
    }
}
