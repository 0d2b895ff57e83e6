//! Sequencers: how producers claim sequences and publish them.
//!
//! [`SingleProducerSequencer`] keeps its claim counter and gating cache in the producer
//! handle itself (one producer, so plain integers) and publishes by moving the
//! cursor. [`MultiProducerSequencer`] claims on the shared cursor with a
//! compare-exchange that backs off when another producer wins the race
//! (see [`claim_on_cursor`]; the `try_` and timed calls also check for room
//! first, since they must not claim what they cannot fill) and publishes by
//! writing each slot's lap number into
//! the availability buffer, so consumers never read a claimed-but-unwritten
//! slot. Both gate on the slowest consumer through a cached minimum and only
//! rescan the consumers' sequences when the cache says the ring may be full.

use crate::backoff::{Backoff, Contention};
use crate::error::PublishError;
use crate::ring::{Core, HALTED};
use crate::sequence::{minimum, Sequence};
use crate::sync::{Arc, AtomicI64, Ordering};
use crate::wait::WaitStrategy;
use std::time::Instant;

pub(crate) mod private {
    use super::*;

    /// The claim operations; sealed so only this crate's two sequencers exist.
    pub trait Claim: Send {
        fn claim<E, W: WaitStrategy>(
            &mut self,
            core: &Core<E, W>,
            n: i64,
        ) -> Result<i64, PublishError>;
        fn try_claim<E, W: WaitStrategy>(
            &mut self,
            core: &Core<E, W>,
            n: i64,
        ) -> Result<i64, PublishError>;
        fn publish<E, W: WaitStrategy>(&mut self, core: &Core<E, W>, lo: i64, hi: i64);
        fn remaining_capacity<E, W: WaitStrategy>(&self, core: &Core<E, W>) -> i64;
        /// The gating sequences, the only thing a sequencer owns that
        /// needs dropping: a producer's drop hands them on as a value.
        fn into_gating(self) -> Box<[Arc<Sequence>]>;
    }
}

use private::Claim;

/// How a [`Producer`](crate::Producer) claims and publishes: implemented by
/// [`SingleProducerSequencer`] and [`MultiProducerSequencer`] only.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Producer, Sequencer, Stage, WaitStrategy};
///
/// /// Publishes a run of prices through either kind of ring.
/// fn feed<W: WaitStrategy, C: Sequencer>(producer: &mut Producer<u64, W, C>, prices: &[u64]) {
///     producer
///         .batch_publish(prices.len(), |i, slot| *slot = prices[i])
///         .expect("the ring is running");
/// }
///
/// let mut one = Disruptor::builder(64, || 0u64).single_producer()?;
/// one.handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}));
/// let (mut producer, disruptor) = one.start()?;
/// feed(&mut producer, &[101, 102]);
/// drop(producer);
/// assert_eq!(disruptor.join().processed, 2);
///
/// let mut many = Disruptor::builder(64, || 0u64).multi_producer()?;
/// many.handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}));
/// let (mut producer, disruptor) = many.start()?;
/// feed(&mut producer, &[99]);
/// drop(producer);
/// assert_eq!(disruptor.join().processed, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Sequencer: Claim {}

impl Sequencer for SingleProducerSequencer {}
impl Sequencer for MultiProducerSequencer {}

/// A sequencer whose producers may be cloned, one per producer thread:
/// [`MultiProducerSequencer`] only. A single-producer ring's producer has
/// its claim counter to itself, so a second one would claim the same
/// sequences; build the ring with
/// [`multi_producer`](crate::DisruptorBuilder::multi_producer) to publish
/// from several threads.
///
/// ```compile_fail,E0599
/// use gyre_ringbuffer::{Disruptor, Stage};
///
/// let mut graph = Disruptor::builder(1024, || 0u64).single_producer().unwrap();
/// graph.handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}));
/// let (producer, _disruptor) = graph.start().unwrap();
/// let second = producer.clone(); // a single producer cannot be cloned
/// ```
#[diagnostic::on_unimplemented(
    message = "a single-producer ring's producer cannot be cloned",
    label = "this ring was built with `single_producer()`",
    note = "build the ring with `Disruptor::builder(..).multi_producer()` to publish from several threads"
)]
pub trait SharedSequencer: Sequencer + Clone {}

impl SharedSequencer for MultiProducerSequencer {}

/// The single-producer sequencer: the claim counter lives in the producer.
/// Chosen with [`DisruptorBuilder::single_producer`](crate::DisruptorBuilder::single_producer);
/// its producer ([`SingleProducer`](crate::SingleProducer)) cannot be
/// cloned, which is what lets it claim without an atomic read-modify-write.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Graph, SingleProducer, SingleProducerSequencer, Stage};
///
/// let mut graph: Graph<u64, _, SingleProducerSequencer> =
///     Disruptor::builder(1024, || 0u64).single_producer()?;
/// graph.handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}));
/// let (mut producer, disruptor): (SingleProducer<u64>, _) = graph.start()?;
/// producer.publish(|slot| *slot = 7)?;
/// drop(producer);
/// assert_eq!(disruptor.join().processed, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SingleProducerSequencer {
    /// Highest sequence claimed.
    next: i64,
    /// Cached minimum of `gating`.
    cached_gate: i64,
    gating: Box<[Arc<Sequence>]>,
}

impl SingleProducerSequencer {
    pub(crate) fn new(gating: Box<[Arc<Sequence>]>) -> Self {
        SingleProducerSequencer {
            next: -1,
            cached_gate: -1,
            gating,
        }
    }

    #[inline(always)]
    fn has_capacity<E, W: WaitStrategy>(&mut self, core: &Core<E, W>, hi: i64) -> bool {
        let wrap = hi - core.capacity();
        if wrap > self.cached_gate {
            self.cached_gate = minimum(&self.gating, self.next);
            wrap <= self.cached_gate
        } else {
            true
        }
    }
}

/// The slow path of a single producer's `claim`, out of line so the fast
/// path stays small enough to inline into every publish: the disruptor has
/// stopped, or the cached gate says the ring may be full. Returns the gate
/// it found.
#[cold]
#[inline(never)]
fn claim_slowly<E, W: WaitStrategy>(
    core: &Core<E, W>,
    gating: &[Arc<Sequence>],
    next: i64,
    hi: i64,
) -> Result<i64, PublishError> {
    if core.stop_at() != crate::ring::RUNNING {
        return Err(PublishError::Closed);
    }
    let wrap = hi - core.capacity();
    let mut backoff = Backoff::new(!core.wait.never_parks());
    loop {
        let gate = minimum(gating, next);
        if wrap <= gate {
            return Ok(gate);
        }
        if core.stop_at() != crate::ring::RUNNING {
            return Err(PublishError::Closed);
        }
        backoff.snooze();
    }
}

impl Claim for SingleProducerSequencer {
    #[inline]
    fn claim<E, W: WaitStrategy>(
        &mut self,
        core: &Core<E, W>,
        n: i64,
    ) -> Result<i64, PublishError> {
        // The fast path leaves by one branch only, to the out-of-line slow
        // path that checks both the stop and the gate, so a publish loop
        // keeps `next` in a register. With the stop checked first and
        // returning on its own, the compiler kept `next` on the stack, and
        // each publish waited on a store and a load of it: 10-15% of single
        // publish (BENCHMARKS.md, issue 22, twelfth session). The slow path
        // is handed values, not `self`: a call given the sequencer's address
        // would keep it in memory, and `next` would be stored before every
        // publish (see the producer's `Drop`).
        let hi = self.next + n;
        if hi - core.capacity() > self.cached_gate || core.stop_at() != crate::ring::RUNNING {
            self.cached_gate = claim_slowly(core, &self.gating, self.next, hi)?;
        }
        self.next = hi;
        Ok(hi)
    }

    #[inline]
    fn try_claim<E, W: WaitStrategy>(
        &mut self,
        core: &Core<E, W>,
        n: i64,
    ) -> Result<i64, PublishError> {
        if core.stop_at() != crate::ring::RUNNING {
            return Err(PublishError::Closed);
        }
        let hi = self.next + n;
        if !self.has_capacity(core, hi) {
            return Err(PublishError::Full);
        }
        self.next = hi;
        Ok(hi)
    }

    #[inline]
    fn publish<E, W: WaitStrategy>(&mut self, core: &Core<E, W>, _lo: i64, hi: i64) {
        core.cursor.set(hi);
        core.wait.signal_all_when_blocking();
    }

    fn remaining_capacity<E, W: WaitStrategy>(&self, core: &Core<E, W>) -> i64 {
        let consumed = minimum(&self.gating, self.next);
        core.capacity() - (self.next - consumed)
    }

    #[inline(always)]
    fn into_gating(self) -> Box<[Arc<Sequence>]> {
        self.gating
    }
}

/// The multi-producer sequencer: claims on the shared cursor. Chosen with
/// [`DisruptorBuilder::multi_producer`](crate::DisruptorBuilder::multi_producer);
/// its producer ([`MultiProducer`](crate::MultiProducer)) clones, one per
/// publishing thread.
///
/// A claim is a compare-exchange on the cursor; a producer that loses the
/// race to another spins a little, twice as long each time it loses, so
/// that producers running at once take turns on the cursor's cache line
/// instead of pulling it across at every claim. Three producers into one
/// consumer on two vCPUs ran 1.7-7x as fast this way as with `fetch_add`,
/// whose claims never fail (BENCHMARKS.md, issue 22, twenty-eighth session).
///
/// ```
/// use gyre_ringbuffer::{Disruptor, MultiProducer, Stage};
///
/// let mut graph = Disruptor::builder(1024, || 0u64).multi_producer()?;
/// graph.handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}));
/// let (producer, disruptor): (MultiProducer<u64>, _) = graph.start()?;
/// let threads: Vec<_> = (0..3u64)
///     .map(|t| {
///         let mut mine = producer.clone();
///         std::thread::spawn(move || mine.batch_publish(100, |i, slot| *slot = t * 100 + i as u64))
///     })
///     .collect();
/// for t in threads {
///     t.join().unwrap()?;
/// }
/// drop(producer);
/// assert_eq!(disruptor.join().processed, 300);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Each producer handle caches the gating minimum itself. The Java
/// Disruptor shares one cache among producers, but that is a line every
/// producer writes; gating sequences only grow, so a private cache is just
/// as sound and keeps the producers off each other's lines.
#[derive(Debug, Clone)]
pub struct MultiProducerSequencer {
    gating: Box<[Arc<Sequence>]>,
    cached_gate: i64,
}

impl MultiProducerSequencer {
    pub(crate) fn new(gating: Box<[Arc<Sequence>]>) -> Self {
        MultiProducerSequencer {
            gating,
            cached_gate: -1,
        }
    }

    /// Whether `hi` can be claimed when the cursor stands at `current`.
    #[inline(always)]
    fn has_capacity<E, W: WaitStrategy>(
        &mut self,
        core: &Core<E, W>,
        hi: i64,
        current: i64,
    ) -> bool {
        let wrap = hi - core.capacity();
        if wrap > self.cached_gate {
            self.cached_gate = minimum(&self.gating, current);
            wrap <= self.cached_gate
        } else {
            true
        }
    }
}

impl MultiProducerSequencer {
    /// The slow path of `claim`: wait until the consumers are past
    /// `hi - capacity`. Out of line to keep every publish's fast path small.
    #[cold]
    #[inline(never)]
    fn wait_for_gate<E, W: WaitStrategy>(
        &mut self,
        core: &Core<E, W>,
        lo: i64,
        hi: i64,
    ) -> Result<(), PublishError> {
        let wrap = hi - core.capacity();
        let mut backoff = Backoff::new(!core.wait.never_parks());
        loop {
            let min = minimum(&self.gating, hi);
            if wrap <= min {
                self.cached_gate = min;
                return Ok(());
            }
            // The claim is taken and consumers draining to a point at or past
            // `lo` will wait for it, so give up only when nobody will.
            let stop = core.stop_at();
            if stop == HALTED || lo > stop {
                return Err(PublishError::Closed);
            }
            backoff.snooze();
        }
    }
}

/// Claims the `n` sequences after the cursor's and returns the last: a
/// compare-exchange on the cursor that, each time another producer's claim
/// got there first, spins twice as long before it tries again
/// ([`Contention`]).
///
/// Why not `fetch_add`, which never fails: with more producers than the
/// cores they run on share, every `fetch_add` pulls the cursor's line from
/// the other core, and the claims of producers running at once went at the
/// pace of those transfers. A producer that lost a race and waits lets the
/// winner claim a stretch on a line that stays in its core, as a channel's
/// senders do when their own compare-exchange fails. Three producers into
/// one consumer on the Intel Xeon VM's two vCPUs (the ring bench's
/// `3p1c-yielding`, the same binary either way, alternated): 11-14 M
/// events/s with `fetch_add`, 87-94 M with this, against crossbeam's
/// channel's 59-85 M; with `SleepingWait` 41-47 M against 77-78 M
/// (BENCHMARKS.md, issue 22, twenty-eighth session). A lone producer, or
/// one whose claims seldom meet another's, wins at once: one load of a line
/// it usually holds, and the same locked instruction as before (1p1c
/// through the multi-producer sequencer ran at 86-91 M events/s either
/// way). The spin is short (at most 64 hints, about 0.6 µs there), so a
/// loser is never far behind. What `fetch_add` gave and this does not: a
/// bound on one claim's retries. Some producer's claim succeeds at every
/// lost race (the claims stay lock-free), but one producer could in
/// principle keep losing; the stress tests' producers, which check that
/// every one of their events arrives, never starved.
#[inline(always)]
fn claim_on_cursor(cursor: &AtomicI64, n: i64) -> i64 {
    // Relaxed: the value only seeds the compare-exchange, which checks it.
    let mut current = cursor.load(Ordering::Relaxed);
    let mut contention = Contention::default();
    loop {
        match cursor.compare_exchange_weak(
            current,
            current + n,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => return current + n,
            Err(actual) => {
                // Deliberately the value the lost race saw, stale once the
                // spin is over, not a fresh load: the next try then
                // usually fails too and the spin doubles, so a loser soon
                // waits out the winner's whole run. Reloading after the
                // spin let losers win sooner and kept the line moving:
                // 3p1c-yielding fell from 88-91 M to 18-23 M events/s on
                // the Intel Xeon VM (twenty-eighth session, alternated).
                current = actual;
                contention.spin();
            }
        }
    }
}

impl Claim for MultiProducerSequencer {
    #[inline]
    fn claim<E, W: WaitStrategy>(
        &mut self,
        core: &Core<E, W>,
        n: i64,
    ) -> Result<i64, PublishError> {
        if core.stop_at() != crate::ring::RUNNING {
            return Err(PublishError::Closed);
        }
        let hi = claim_on_cursor(core.cursor.atomic(), n);
        let lo = hi - n + 1;
        if hi - core.capacity() > self.cached_gate {
            self.wait_for_gate(core, lo, hi)?;
        }
        Ok(hi)
    }

    #[inline]
    fn try_claim<E, W: WaitStrategy>(
        &mut self,
        core: &Core<E, W>,
        n: i64,
    ) -> Result<i64, PublishError> {
        let mut contention = Contention::default();
        loop {
            if core.stop_at() != crate::ring::RUNNING {
                return Err(PublishError::Closed);
            }
            let current = core.cursor.get();
            let hi = current + n;
            if !self.has_capacity(core, hi, current) {
                return Err(PublishError::Full);
            }
            if core
                .cursor
                .atomic()
                .compare_exchange(current, hi, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(hi);
            }
            contention.spin();
        }
    }

    #[inline]
    fn publish<E, W: WaitStrategy>(&mut self, core: &Core<E, W>, lo: i64, hi: i64) {
        core.mark_available(lo, hi);
        core.wait.signal_all_when_blocking();
    }

    fn remaining_capacity<E, W: WaitStrategy>(&self, core: &Core<E, W>) -> i64 {
        let produced = core.cursor.get();
        let consumed = minimum(&self.gating, produced);
        core.capacity() - (produced - consumed)
    }

    #[inline(always)]
    fn into_gating(self) -> Box<[Arc<Sequence>]> {
        self.gating
    }
}

/// Retry `try_claim` until it succeeds, fails for a reason other than a full
/// ring, or `deadline` passes.
pub(crate) fn claim_until<C: Sequencer, E, W: WaitStrategy>(
    claim: &mut C,
    core: &Core<E, W>,
    n: i64,
    deadline: Instant,
) -> Result<i64, PublishError> {
    let mut backoff = Backoff::new(!core.wait.never_parks());
    loop {
        match claim.try_claim(core, n) {
            Err(PublishError::Full) => {
                if Instant::now() >= deadline {
                    return Err(PublishError::TimedOut);
                }
                backoff.snooze();
            }
            other => return other,
        }
    }
}
