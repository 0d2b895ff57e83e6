//! The sequence barrier: where a consumer waits for what it may read next.
//!
//! A first-stage consumer waits on the producer cursor (and, with multiple
//! producers, on the availability buffer, since a claimed sequence may not be
//! written yet); a later stage waits on the sequences of the stages it
//! depends on, which only ever pass published events.

use crate::backoff::Backoff;
use crate::error::WaitError;
use crate::ring::Core;
use crate::sequence::Sequence;
use crate::sync::Arc;
use crate::wait::{WaitCondition, WaitStrategy};

pub(crate) struct SequenceBarrier<E, W> {
    pub(crate) core: Arc<Core<E, W>>,
    /// Empty: depends on the cursor only.
    dependencies: Box<[Arc<Sequence>]>,
}

impl<E, W: WaitStrategy> SequenceBarrier<E, W> {
    pub(crate) fn new(core: Arc<Core<E, W>>, dependencies: Vec<Arc<Sequence>>) -> Self {
        SequenceBarrier {
            core,
            dependencies: dependencies.into_boxed_slice(),
        }
    }

    #[inline(always)]
    fn condition(&self) -> WaitCondition<'_> {
        WaitCondition {
            cursor: &self.core.cursor,
            dependencies: &self.dependencies,
            stop_at: &self.core.stop_at,
        }
    }

    /// Wait until `sequence` is readable; return the highest readable
    /// sequence (at least `sequence`), so the caller can take a batch.
    #[inline(always)]
    pub(crate) fn wait_for(&self, sequence: i64) -> Result<i64, WaitError> {
        let condition = self.condition();
        let mut backoff = Backoff::new();
        loop {
            let available = self.core.wait.wait_for(sequence, &condition)?;
            if available < sequence {
                continue;
            }
            if !self.dependencies.is_empty() {
                return Ok(available);
            }
            let published = self.core.highest_published(sequence, available);
            if published >= sequence {
                return Ok(published);
            }
            // Claimed but not yet written: the producer is mid-publish, or
            // was preempted there.
            condition.check_alert(sequence)?;
            backoff.snooze();
        }
    }

    /// The highest readable sequence now, without waiting (may be below `sequence`).
    #[inline]
    pub(crate) fn available_now(&self, sequence: i64) -> i64 {
        let available = self.condition().available();
        if self.dependencies.is_empty() && available >= sequence {
            self.core.highest_published(sequence, available)
        } else {
            available
        }
    }
}
