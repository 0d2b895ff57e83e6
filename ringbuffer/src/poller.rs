//! [`EventPoller`]: a consumer without a thread, driven by the caller.
//!
//! Use it to consume from a thread you already run (an event loop, a game
//! loop, a test). It gates producers like any stage, so poll it regularly or
//! the ring fills up.

use crate::barrier::SequenceBarrier;
use crate::sequence::Sequence;
use crate::sync::Arc;
use crate::wait::{BlockingWait, WaitStrategy};

/// What a call to [`EventPoller::poll`] found.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, PollState};
///
/// let mut graph = Disruptor::builder(64, || 0u64).single_producer()?;
/// let (_id, mut poller) = graph.poller(&[])?;
/// let (mut producer, disruptor) = graph.start()?;
/// assert_eq!(poller.poll(|_, _, _| true), PollState::Idle);
/// producer.publish(|slot| *slot = 7)?;
/// let mut seen = 0;
/// assert_eq!(poller.poll(|e, _, _| { seen = *e; true }), PollState::Processing);
/// assert_eq!(seen, 7);
/// drop(producer);
/// drop(poller);
/// disruptor.join();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollState {
    /// Events were handed to the callback.
    Processing,
    /// The producer has published more, but an upstream stage has not
    /// finished with it yet.
    Gating,
    /// Nothing new has been published.
    Idle,
    /// The disruptor halted, or drained and this poller has seen every event.
    Closed,
}

/// A consumer that the caller drives with [`poll`](Self::poll).
///
/// ```
/// use gyre_ringbuffer::{Disruptor, PollState};
/// let mut graph = Disruptor::builder(8, || 0u32).single_producer()?;
/// let (_id, mut poller) = graph.poller(&[])?;
/// let (mut producer, _disruptor) = graph.start()?;
/// producer.publish(|e| *e = 7)?;
/// let mut seen = Vec::new();
/// assert_eq!(poller.poll(|e, _seq, _end| { seen.push(*e); true }), PollState::Processing);
/// assert_eq!(seen, [7]);
/// assert_eq!(poller.poll(|_, _, _| true), PollState::Idle);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EventPoller<E, W = BlockingWait> {
    barrier: SequenceBarrier<E, W>,
    sequence: Arc<Sequence>,
}

impl<E, W: WaitStrategy> EventPoller<E, W> {
    pub(crate) fn new(barrier: SequenceBarrier<E, W>, sequence: Arc<Sequence>) -> Self {
        EventPoller { barrier, sequence }
    }

    /// Hand every event available now to `handler(event, sequence,
    /// end_of_batch)`, in order, until it returns `false` (stop after this
    /// event) or the batch ends. Never blocks.
    #[inline]
    pub fn poll<F: FnMut(&E, i64, bool) -> bool>(&mut self, mut handler: F) -> PollState {
        let current = self.sequence.get();
        let next = current + 1;
        let available = self.barrier.available_now(next);
        if next <= available {
            let core = &self.barrier.core;
            // SAFETY: `available_now` read `available` with acquire from the
            // cursor/availability buffer or upstream sequences, so it is
            // published; our sequence is still `current`, below every sequence
            // handed out, so no slot can be reclaimed while `handler` borrows it.
            let processed = unsafe {
                core.read_each(next, available, |sequence, event| {
                    handler(event, sequence, sequence == available)
                })
            };
            self.sequence.set(processed);
            core.wait.signal_all_when_blocking();
            PollState::Processing
        } else if next > self.barrier.core.stop_at() {
            PollState::Closed
        } else if self.barrier.core.cursor.get() >= next {
            PollState::Gating
        } else {
            PollState::Idle
        }
    }

    /// The last sequence this poller has processed.
    pub fn sequence(&self) -> i64 {
        self.sequence.get()
    }
}

impl<E, W> std::fmt::Debug for EventPoller<E, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPoller")
            .field("sequence", &self.sequence.get())
            .finish_non_exhaustive()
    }
}
