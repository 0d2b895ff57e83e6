//! How a processor lends events to its handler: shared (`&E`, to any stage)
//! or owned (`&mut E`, to the stage that ends the graph). One processor
//! loop (`processor`, `worker_pool`) serves both through these two small
//! traits, public only inside this private module (the stage kinds' bounds name them); the adapters are statically dispatched, so a
//! shared stage costs exactly what it did before. Uses the ring and the
//! handler traits.
//!
//! In a full batch (the ring's `max_batch` events: the consumer was that
//! far behind) the last event is lent on its own, after the others: every
//! other event goes to the handler with `end_of_batch` a constant `false`,
//! so once the handler is inlined its end-of-batch branch is gone from the
//! per-event loop. A consumer that is behind runs that loop at a few
//! cycles an event, where one compare and branch an event show. A batch
//! that empties the backlog keeps the one loop: there the consumer waits
//! on its producer anyway, and a faster loop only looks at the cursor
//! sooner (BENCHMARKS.md, issue 22, sixteenth session).

use crate::handler::{EventHandler, OwningHandler, OwningWorkHandler, WorkHandler};
use crate::ring::Core;
use crate::wait::WaitStrategy;

/// What the batch processor needs of its handler.
pub trait BatchLend<E> {
    fn on_start(&mut self);
    fn on_shutdown(&mut self);
    fn on_timeout(&mut self, sequence: i64);
    fn on_batch_start(&mut self, batch_size: usize);
    /// Hands the handler every event of `lo..=hi`, `current` naming the
    /// one in hand.
    ///
    /// # Safety
    /// As `Core::read_each` for every range; for an owning lender also as
    /// `Core::own_each` (the stage was added with `Graph::then_owner`).
    unsafe fn lend<W: WaitStrategy>(
        &mut self,
        core: &Core<E, W>,
        lo: i64,
        hi: i64,
        current: &mut i64,
    );
}

/// What a pool worker needs of its handler.
pub trait WorkLend<E> {
    fn on_start(&mut self);
    fn on_shutdown(&mut self);
    fn on_timeout(&mut self, sequence: i64);
    /// Hands the handler the event at `sequence`.
    ///
    /// # Safety
    /// As `Core::read`; for an owning lender also as `Core::own`.
    unsafe fn lend<W: WaitStrategy>(&mut self, core: &Core<E, W>, sequence: i64);
}

/// A handler that shares events with the graph's other stages.
pub struct Shared<H>(pub(crate) H);

/// A handler of the graph's owner stage.
pub struct Owned<H>(pub(crate) H);

/// Calls `lend(from, to, end)` for the runs that make up the batch
/// `lo..=hi` (see the module's doc): a short batch as one run with `end`
/// `None` (the flag is `sequence == hi`), a full one as all but its last
/// event with `Some(false)`, then its last with `Some(true)`. Inlined, each
/// run's flag is a constant.
#[inline(always)]
fn in_runs(lo: i64, hi: i64, max_batch: i64, mut lend: impl FnMut(i64, i64, Option<bool>)) {
    if hi - lo + 1 < max_batch {
        lend(lo, hi, None);
    } else {
        lend(lo, hi - 1, Some(false));
        lend(hi, hi, Some(true));
    }
}

impl<E, H: EventHandler<E>> BatchLend<E> for Shared<H> {
    fn on_start(&mut self) {
        self.0.on_start();
    }
    fn on_shutdown(&mut self) {
        self.0.on_shutdown();
    }
    fn on_timeout(&mut self, sequence: i64) {
        self.0.on_timeout(sequence);
    }
    #[inline(always)]
    fn on_batch_start(&mut self, batch_size: usize) {
        self.0.on_batch_start(batch_size);
    }
    #[inline(always)]
    unsafe fn lend<W: WaitStrategy>(
        &mut self,
        core: &Core<E, W>,
        lo: i64,
        hi: i64,
        current: &mut i64,
    ) {
        in_runs(lo, hi, core.max_batch, |from, to, end| {
            // SAFETY: the caller's contract is `read_each`'s, and
            // `from..=to` lies within `lo..=hi`.
            unsafe {
                core.read_each(from, to, |sequence, event| {
                    *current = sequence;
                    self.0
                        .on_event(event, sequence, end.unwrap_or(sequence == hi));
                    true
                })
            };
        });
    }
}

impl<E, H: OwningHandler<E>> BatchLend<E> for Owned<H> {
    fn on_start(&mut self) {
        self.0.on_start();
    }
    fn on_shutdown(&mut self) {
        self.0.on_shutdown();
    }
    fn on_timeout(&mut self, sequence: i64) {
        self.0.on_timeout(sequence);
    }
    #[inline(always)]
    fn on_batch_start(&mut self, batch_size: usize) {
        self.0.on_batch_start(batch_size);
    }
    #[inline(always)]
    unsafe fn lend<W: WaitStrategy>(
        &mut self,
        core: &Core<E, W>,
        lo: i64,
        hi: i64,
        current: &mut i64,
    ) {
        in_runs(lo, hi, core.max_batch, |from, to, end| {
            // SAFETY: the caller's contract is `own_each`'s for an owner,
            // and `from..=to` lies within `lo..=hi`.
            unsafe {
                core.own_each(from, to, |sequence, event| {
                    *current = sequence;
                    self.0
                        .on_event(event, sequence, end.unwrap_or(sequence == hi));
                    true
                })
            };
        });
    }
}

impl<E, H: WorkHandler<E>> WorkLend<E> for Shared<H> {
    fn on_start(&mut self) {
        self.0.on_start();
    }
    fn on_shutdown(&mut self) {
        self.0.on_shutdown();
    }
    fn on_timeout(&mut self, sequence: i64) {
        self.0.on_timeout(sequence);
    }
    #[inline(always)]
    unsafe fn lend<W: WaitStrategy>(&mut self, core: &Core<E, W>, sequence: i64) {
        // SAFETY: the caller's contract is `read`'s.
        unsafe { core.read(sequence, |event| self.0.on_event(event, sequence)) };
    }
}

impl<E, H: OwningWorkHandler<E>> WorkLend<E> for Owned<H> {
    fn on_start(&mut self) {
        self.0.on_start();
    }
    fn on_shutdown(&mut self) {
        self.0.on_shutdown();
    }
    fn on_timeout(&mut self, sequence: i64) {
        self.0.on_timeout(sequence);
    }
    #[inline(always)]
    unsafe fn lend<W: WaitStrategy>(&mut self, core: &Core<E, W>, sequence: i64) {
        // SAFETY: the caller's contract is `own`'s for an owner worker.
        unsafe { core.own(sequence, |event| self.0.on_event(event, sequence)) };
    }
}
