//! [`Producer`]: the handle that claims slots, fills them and publishes.
//!
//! The event is written in place through a closure that borrows the slot for
//! the duration of the call, so a producer never allocates and can never keep
//! a slot past its publication. If the closure panics the claimed sequences
//! are still published (with whatever the closure left in them), because
//! consumers wait for every claimed sequence and would otherwise stall.

use crate::claim::{
    claim_until, MultiProducerSequencer, Sequencer, SharedSequencer, SingleProducerSequencer,
};
use crate::error::PublishError;
use crate::ring::Core;
use crate::sequence::Sequence;
use crate::sync::{Arc, Ordering};
use crate::wait::{BlockingWait, WaitStrategy};
use std::mem::ManuallyDrop;
use std::time::{Duration, Instant};

/// Publishes events into a disruptor.
///
/// `C` is [`SingleProducerSequencer`] (one producer thread, not `Clone`) or
/// [`MultiProducerSequencer`] (`Clone + Send`: give each producer thread its own
/// clone). When the last producer handle drops, the disruptor drains:
/// every published event reaches every stage, then the stage threads exit.
///
/// For the fastest publishing loop, keep the producer in a local variable
/// of the thread that publishes (as in the example below, or moved into
/// the publishing thread's closure). The compiler then holds a single
/// producer's claim counter in a register, and a publish stores only the
/// event and the cursor. A producer reached through a
/// reference (a field of a struct behind `&mut self`) must store the
/// counter before every publish too, since the cursor's release store
/// orders every store that another thread might see: in the ring bench
/// that third store cost single publish about a fifth of its rate.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Stage};
/// use std::sync::{atomic::{AtomicU64, Ordering}, Arc};
///
/// let sum = Arc::new(AtomicU64::new(0));
/// let seen = sum.clone();
/// let mut graph = Disruptor::builder(1024, || 0u64).single_producer()?;
/// graph.handle_events_with(Stage::new(move |e: &u64, _seq: i64, _end: bool| {
///     seen.fetch_add(*e, Ordering::Relaxed);
/// }));
/// let (mut producer, disruptor) = graph.start()?;
/// for i in 1..=10 {
///     producer.publish(|slot| *slot = i)?;
/// }
/// producer.batch_publish(4, |i, slot| *slot = 100 + i as u64)?;
/// drop(producer);
/// let report = disruptor.join();
/// assert_eq!(report.processed, 14);
/// assert_eq!(sum.load(Ordering::Relaxed), 55 + 406);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Producer<E, W = BlockingWait, C = SingleProducerSequencer>
where
    W: WaitStrategy,
    C: Sequencer,
{
    // Both fields are dropped by hand in `Drop`, moved out first: see there.
    core: ManuallyDrop<Arc<Core<E, W>>>,
    claim: ManuallyDrop<C>,
}

/// The producer of a single-producer disruptor: one thread publishes, and
/// it is not `Clone` (build with
/// [`multi_producer`](crate::DisruptorBuilder::multi_producer) for more).
pub type SingleProducer<E, W = BlockingWait> = Producer<E, W, SingleProducerSequencer>;
/// A producer of a multi-producer disruptor; clone it for each thread.
pub type MultiProducer<E, W = BlockingWait> = Producer<E, W, MultiProducerSequencer>;

/// Publishes `lo..=hi` when dropped, so a panicking closure cannot leave a
/// claimed sequence unpublished.
struct PublishOnDrop<'a, E, W: WaitStrategy, C: Sequencer> {
    core: &'a Core<E, W>,
    claim: &'a mut C,
    lo: i64,
    hi: i64,
}

impl<E, W: WaitStrategy, C: Sequencer> Drop for PublishOnDrop<'_, E, W, C> {
    #[inline]
    fn drop(&mut self) {
        self.claim.publish(self.core, self.lo, self.hi);
    }
}

impl<E, W: WaitStrategy, C: Sequencer> Producer<E, W, C> {
    pub(crate) fn new(core: Arc<Core<E, W>>, claim: C) -> Self {
        Producer {
            core: ManuallyDrop::new(core),
            claim: ManuallyDrop::new(claim),
        }
    }

    /// Fill the claimed slots `lo..=hi` with `fill` and publish them.
    #[inline(always)]
    fn fill_and_publish(&mut self, lo: i64, hi: i64, mut fill: impl FnMut(usize, &mut E)) -> i64 {
        let guard = PublishOnDrop {
            core: &self.core,
            claim: &mut *self.claim,
            lo,
            hi,
        };
        // SAFETY: `lo..=hi` was just claimed by this producer and the claim
        // waited until the slowest gating consumer was past `hi - capacity`,
        // so no consumer reads these slots and no other producer owns them
        // until the guard publishes them.
        unsafe {
            guard.core.write_each(lo, hi, |sequence, slot| {
                fill((sequence - lo) as usize, slot)
            })
        };
        drop(guard);
        hi
    }

    /// Fill the claimed slot `sequence` with `fill` and publish it: the
    /// single-event path, kept free of the batch loop.
    #[inline(always)]
    fn fill_one_and_publish(&mut self, sequence: i64, fill: impl FnOnce(&mut E)) -> i64 {
        let guard = PublishOnDrop {
            core: &self.core,
            claim: &mut *self.claim,
            lo: sequence,
            hi: sequence,
        };
        // SAFETY: as in `fill_and_publish`, for the one sequence just claimed.
        unsafe { guard.core.write(sequence, fill) };
        drop(guard);
        sequence
    }

    /// Claim the next slot, waiting for room, let `fill` write the event in
    /// place, and publish it. Returns the event's sequence.
    ///
    /// # Errors
    /// [`PublishError::Closed`] if the disruptor was shut down or halted;
    /// `fill` is not called then.
    #[inline]
    pub fn publish<F: FnOnce(&mut E)>(&mut self, fill: F) -> Result<i64, PublishError> {
        let hi = self.claim.claim(&self.core, 1)?;
        Ok(self.fill_one_and_publish(hi, fill))
    }

    /// Claim `n` consecutive slots in one claim, call `fill(i, slot)` for
    /// `i` in `0..n`, and publish them together. Returns the last sequence.
    ///
    /// # Errors
    /// [`PublishError::BadBatchSize`] if `n` is 0 or larger than the ring;
    /// [`PublishError::Closed`] if the disruptor was shut down or halted.
    #[inline]
    pub fn batch_publish<F: FnMut(usize, &mut E)>(
        &mut self,
        n: usize,
        fill: F,
    ) -> Result<i64, PublishError> {
        let n = self.check_batch(n)?;
        let hi = self.claim.claim(&self.core, n)?;
        Ok(self.fill_and_publish(hi - n + 1, hi, fill))
    }

    /// Like [`publish`](Self::publish), but fails with [`PublishError::Full`]
    /// instead of waiting when the ring has no room.
    #[inline]
    pub fn try_publish<F: FnOnce(&mut E)>(&mut self, fill: F) -> Result<i64, PublishError> {
        let hi = self.claim.try_claim(&self.core, 1)?;
        Ok(self.fill_one_and_publish(hi, fill))
    }

    /// Like [`batch_publish`](Self::batch_publish), but fails with
    /// [`PublishError::Full`] instead of waiting when `n` slots are not free.
    #[inline]
    pub fn try_batch_publish<F: FnMut(usize, &mut E)>(
        &mut self,
        n: usize,
        fill: F,
    ) -> Result<i64, PublishError> {
        let n = self.check_batch(n)?;
        let hi = self.claim.try_claim(&self.core, n)?;
        Ok(self.fill_and_publish(hi - n + 1, hi, fill))
    }

    /// Like [`publish`](Self::publish), but waits at most `timeout` for room
    /// and then fails with [`PublishError::TimedOut`].
    pub fn publish_timeout<F: FnOnce(&mut E)>(
        &mut self,
        timeout: Duration,
        fill: F,
    ) -> Result<i64, PublishError> {
        let hi = claim_until(&mut *self.claim, &self.core, 1, Instant::now() + timeout)?;
        Ok(self.fill_one_and_publish(hi, fill))
    }

    /// Like [`batch_publish`](Self::batch_publish), but waits at most
    /// `timeout` for room and then fails with [`PublishError::TimedOut`].
    pub fn batch_publish_timeout<F: FnMut(usize, &mut E)>(
        &mut self,
        n: usize,
        timeout: Duration,
        fill: F,
    ) -> Result<i64, PublishError> {
        let n = self.check_batch(n)?;
        let hi = claim_until(&mut *self.claim, &self.core, n, Instant::now() + timeout)?;
        Ok(self.fill_and_publish(hi - n + 1, hi, fill))
    }

    /// How many slots are free now (a snapshot: other producers and the
    /// consumers keep moving).
    pub fn remaining_capacity(&self) -> usize {
        self.claim.remaining_capacity(&self.core).max(0) as usize
    }

    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.core.capacity() as usize
    }

    /// Whether the disruptor has stopped accepting events.
    pub fn is_closed(&self) -> bool {
        self.core.stop_at() != crate::ring::RUNNING
    }

    fn check_batch(&self, n: usize) -> Result<i64, PublishError> {
        if n == 0 || n as i64 > self.core.capacity() {
            Err(PublishError::BadBatchSize(n))
        } else {
            Ok(n as i64)
        }
    }
}

impl<E, W: WaitStrategy, C: SharedSequencer> Clone for Producer<E, W, C> {
    fn clone(&self) -> Self {
        self.core.producers.fetch_add(1, Ordering::Relaxed);
        Producer::new(Arc::clone(&self.core), C::clone(&self.claim))
    }
}

impl<E, W: WaitStrategy, C: Sequencer> Drop for Producer<E, W, C> {
    #[inline]
    fn drop(&mut self) {
        // The fields are moved out and dropped by value, so no out-of-line
        // call (`Arc`'s slow drop, a sequencer's drop glue) is ever handed
        // the producer's own address. A producer kept in a local whose
        // address nothing takes stays out of memory: its claim counter lives
        // in a register across publishes instead of being stored before
        // every release of the cursor: single publish ran 1.25x as fast
        // without that store (BENCHMARKS.md, issue 22, seventeenth session).
        //
        // SAFETY: each field is taken exactly once, here, and `self` is not
        // used again.
        let (core, claim) = unsafe {
            (
                ManuallyDrop::take(&mut self.core),
                ManuallyDrop::take(&mut self.claim),
            )
        };
        release(core, claim.into_gating());
    }
}

/// What a producer's drop does once its fields are its own: the last
/// producer drains the disruptor.
#[inline(never)]
fn release<E, W: WaitStrategy>(core: Arc<Core<E, W>>, gating: Box<[Arc<Sequence>]>) {
    if core.producers.fetch_sub(1, Ordering::AcqRel) == 1 {
        // The last producer is gone: every claim has been published (each
        // publish call publishes before returning, even on panic), so the
        // cursor is the last event there will ever be.
        core.drain_to(core.cursor.get());
    }
    // The fields go after the drain, in their declaration order, as a
    // plain struct's fields would.
    drop(core);
    drop(gating);
}

impl<E, W: WaitStrategy, C: Sequencer> std::fmt::Debug for Producer<E, W, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.core.capacity())
            .field("cursor", &self.core.cursor.get())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Producer;
    use crate::claim::Sequencer;
    use crate::ring::Core;
    use crate::wait::BlockingWait;
    use crate::{BuildError, Disruptor, DisruptorBuilder, Graph, Stage};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Weak};

    /// An event that counts its drops: a ring's events drop with its core.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    const CAPACITY: usize = 8;

    /// The test ring's core, as a producer shares it.
    type TestCore = Weak<Core<Counted, BlockingWait>>;

    /// A started graph of one stage over a ring of `Counted`, its producer,
    /// and a `Weak` to the core it shares.
    fn started<C: Sequencer>(
        sequencer: impl FnOnce(
            DisruptorBuilder<Counted>,
        ) -> Result<Graph<Counted, BlockingWait, C>, BuildError>,
        drops: &Arc<AtomicUsize>,
    ) -> (
        Producer<Counted, BlockingWait, C>,
        Disruptor<Counted>,
        TestCore,
    ) {
        let drops = drops.clone();
        let builder = Disruptor::builder(CAPACITY, move || Counted(drops.clone()));
        let mut graph = sequencer(builder).unwrap();
        graph.handle_events_with(Stage::new(|_: &Counted, _: i64, _: bool| {}));
        let (producer, disruptor) = graph.start().unwrap();
        let core = Arc::downgrade(&producer.core);
        (producer, disruptor, core)
    }

    /// Every handle is gone: the core must be freed, its events with it.
    fn assert_released(core: TestCore, drops: &AtomicUsize) {
        assert!(core.upgrade().is_none(), "the core outlived every handle");
        assert_eq!(drops.load(Ordering::Relaxed), CAPACITY);
    }

    // The producer drops its fields by hand (moved out of `ManuallyDrop`):
    // these fail if it keeps its share of the core or a clone's drop drains.

    #[test]
    fn the_last_single_producer_releases_the_core() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut producer, disruptor, core) = started(|b| b.single_producer(), &drops);
        for _ in 0..20 {
            producer.publish(|_| {}).unwrap();
        }
        drop(producer);
        assert_eq!(disruptor.join().processed, 20);
        assert_released(core, &drops);
    }

    #[test]
    fn cloned_producers_release_the_core_once_and_drain_at_the_last() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut producer, disruptor, core) = started(|b| b.multi_producer(), &drops);
        let mut clones: Vec<_> = (0..3).map(|_| producer.clone()).collect();
        for clone in &mut clones {
            clone.publish(|_| {}).unwrap();
        }
        drop(clones);
        assert!(!producer.is_closed(), "a clone's drop drained the ring");
        producer.publish(|_| {}).unwrap();
        drop(producer);
        assert_eq!(disruptor.join().processed, 4);
        assert_released(core, &drops);
    }
}
