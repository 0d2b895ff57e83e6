//! The sequence barrier: where a consumer waits for what it may read next.
//!
//! A first-stage consumer waits on the producer cursor with one producer,
//! and on the availability buffer's marks with several (their cursor says
//! what is claimed, not what is written); a later stage waits on the
//! sequences of the stages it depends on, which only ever pass published
//! events. Either way the wait condition's `available()` is what may be
//! read, so the barrier returns it as it is.

use crate::breath::Breath;
use crate::error::WaitError;
use crate::ring::Core;
use crate::sequence::Sequence;
use crate::sync::Arc;
use crate::wait::{WaitCondition, WaitStrategy};
use std::cell::Cell;

pub(crate) struct SequenceBarrier<E, W> {
    pub(crate) core: Arc<Core<E, W>>,
    /// Empty: depends on the cursor only.
    dependencies: Box<[Arc<Sequence>]>,
    /// Whether the last look found events waiting without a pause (see
    /// [`first_look`](Self::first_look)). The barrier belongs to one
    /// consumer thread, so a `Cell` is enough.
    dense: Cell<bool>,
    /// The breath a consumer takes after catching up; none where the wait
    /// strategy does not spin (it would only burn a core).
    breath: Option<Breath>,
}

impl<E, W: WaitStrategy> SequenceBarrier<E, W> {
    pub(crate) fn new(core: Arc<Core<E, W>>, dependencies: Vec<Arc<Sequence>>) -> Self {
        let breath = core.wait.spins_first().then(Breath::new);
        SequenceBarrier {
            core,
            dependencies: dependencies.into_boxed_slice(),
            dense: Cell::new(false),
            breath,
        }
    }

    /// What waiting for `sequence` waits on.
    #[inline(always)]
    fn condition(&self, sequence: i64) -> WaitCondition<'_> {
        let marks = if self.dependencies.is_empty() {
            self.core.availability()
        } else {
            None
        };
        WaitCondition {
            cursor: &self.core.cursor,
            dependencies: &self.dependencies,
            stop_at: &self.core.stop_at,
            published: marks.map(|marks| (marks, sequence, sequence + self.core.max_batch - 1)),
        }
    }

    /// Wait until `sequence` is readable; return the highest readable
    /// sequence (at least `sequence`, at most a batch past it), so the
    /// caller can take a batch.
    #[inline(always)]
    pub(crate) fn wait_for(&self, sequence: i64) -> Result<i64, WaitError> {
        let condition = self.condition(sequence);
        let mut available = self.first_look(sequence, &condition);
        loop {
            if available >= sequence {
                // A halt stops a consumer even when events are waiting.
                condition.check_alert(sequence)?;
                return Ok(self.one_batch(sequence, available));
            }
            available = self.core.wait.wait_for(sequence, &condition)?;
        }
    }

    /// `available`, but no more than one batch from `sequence`.
    #[inline(always)]
    fn one_batch(&self, sequence: i64, available: i64) -> i64 {
        available.min(sequence + self.core.max_batch - 1)
    }

    /// The first look for `sequence`, before the wait strategy is asked.
    ///
    /// While the stream is dense (this look is the first since a look
    /// that found its event already waiting, without pausing), a consumer
    /// that has caught up pauses for a breath before it looks again.
    /// Looking at once would pull the cursor's line over from the producer
    /// for the one or two events published meanwhile, and the producer's
    /// next store would have to take the line back: with both spinning, the
    /// line crossed between the cores about once per event. After the
    /// breath a batch has gathered. The breath is 400 ns where lines cross
    /// quickly and longer where they do not (see `breath.rs`).
    ///
    /// Only a look that finds events without a pause keeps the stream
    /// dense, so a breath is taken at most once per catch-up: traffic the
    /// consumer keeps up with (one event at a time, a request and its
    /// answer, a steady trickle) never pays it, and the first event after a
    /// burst pays at most one breath. The `paced-*` and `pingpong` cases of
    /// the ring bench measure both.
    #[inline(always)]
    fn first_look(&self, sequence: i64, condition: &WaitCondition<'_>) -> i64 {
        let available = condition.available();
        if available >= sequence {
            self.dense.set(true);
            return available;
        }
        let Some(breath) = self.breath.as_ref().filter(|_| self.dense.get()) else {
            return available;
        };
        self.dense.set(false);
        breath.then_look(sequence, || condition.available())
    }

    /// The highest readable sequence now, without waiting (may be below `sequence`).
    #[inline]
    pub(crate) fn available_now(&self, sequence: i64) -> i64 {
        self.one_batch(sequence, self.condition(sequence).available())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::wait::BusySpinWait;

    fn barrier() -> SequenceBarrier<u64, BusySpinWait> {
        let core = Core::new(8, &mut || 0u64, BusySpinWait, false).expect("core");
        SequenceBarrier::new(Arc::new(core), Vec::new())
    }

    #[test]
    fn a_look_that_finds_its_event_marks_the_stream_dense_and_one_that_does_not_ends_it() {
        let barrier = barrier();
        let condition = barrier.condition(0);
        assert_eq!(barrier.first_look(0, &condition), -1, "nothing published");
        assert!(
            !barrier.dense.get(),
            "an empty look does not start a stream"
        );

        barrier.core.cursor.set(2);
        assert_eq!(
            barrier.first_look(0, &condition),
            2,
            "takes the whole batch"
        );
        assert!(barrier.dense.get(), "found waiting: the stream is dense");

        // Caught up: the look breathes, still finds nothing, and ends the stream.
        assert_eq!(barrier.first_look(3, &condition), 2);
        assert!(!barrier.dense.get());
        assert_eq!(
            barrier.wait_for(1),
            Ok(2),
            "a wait still returns what is there"
        );
    }

    #[test]
    fn a_consumer_that_blocks_never_breathes() {
        let core =
            Core::new(8, &mut || 0u64, crate::wait::BlockingWait::default(), false).expect("core");
        let blocking = SequenceBarrier::new(Arc::new(core), Vec::new());
        assert!(blocking.breath.is_none());
        assert!(barrier().breath.is_some(), "busy-spin breathes");
    }
}
