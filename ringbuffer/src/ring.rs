//! The ring itself: preallocated slots plus the state every party shares.
//!
//! `Core` owns the events, the producer cursor, the multi-producer
//! availability buffer and the stop marker. It never allocates after
//! construction. Slot access is `unsafe`: the sequencing protocol (claim,
//! publish, gate) is what makes it sound, and only the crate's producers and
//! consumers, which follow that protocol, can reach it.

use crate::availability::Availability;
use crate::error::BuildError;
use crate::sequence::{Sequence, INITIAL_SEQUENCE};
use crate::sync::{AtomicI64, AtomicUsize, Ordering, UnsafeCell};
use crate::wait::WaitStrategy;
use crossbeam_utils::CachePadded;

/// `stop_at` while running: no sequence is beyond it.
pub(crate) const RUNNING: i64 = i64::MAX;
/// `stop_at` once halted: every sequence is beyond it.
pub(crate) const HALTED: i64 = i64::MIN;

/// The largest capacity we accept; keeps lap numbers and index math in range.
pub const MAX_CAPACITY: usize = 1 << 30;

/// The most events a consumer takes in one batch unless the builder says
/// otherwise ([`DisruptorBuilder::max_batch`](crate::DisruptorBuilder::max_batch)),
/// or the capacity if that is smaller.
///
/// A bound makes a consumer that fell behind a full ring publish its
/// progress as it goes, so producers waiting for room get it a batch at a
/// time instead of after the whole ring, and it bounds how far a consumer
/// of several producers scans their publication marks in one look. Three
/// producers into one consumer on two cores ran at 36-59 M events/s with
/// any bound from 256 to 16384 events, against 31 M without one, and one
/// producer publishing batches of 64 ran 1.4-1.6x faster (BENCHMARKS.md,
/// issue 22, ninth session).
pub const DEFAULT_MAX_BATCH: usize = 1024;

pub struct Core<E, W> {
    slots: Box<[UnsafeCell<E>]>,
    mask: i64,
    /// Single producer: highest published. Multi producer: highest claimed.
    pub(crate) cursor: Sequence,
    /// Multi producer only: what is published, slot by slot.
    availability: Option<Availability>,
    /// The most events a consumer takes in one batch: 1..=capacity.
    pub(crate) max_batch: i64,
    pub(crate) wait: W,
    /// `RUNNING`, the last sequence to drain to, or `HALTED`.
    pub(crate) stop_at: CachePadded<AtomicI64>,
    /// Live producer handles; the last one to drop starts the drain.
    pub(crate) producers: AtomicUsize,
}

// SAFETY: `Core` hands out `&mut E` only to the one producer that claimed a
// sequence, or to the graph's owner stage once every other stage has passed
// it (so `E` moves between threads: `E: Send`), and `&E` to any number of
// consumer threads at once (so `E: Sync`). Everything else in it is atomic.
unsafe impl<E: Send + Sync, W: Send + Sync> Sync for Core<E, W> {}
// SAFETY: as above; owning the core on another thread moves the events there.
unsafe impl<E: Send + Sync, W: Send> Send for Core<E, W> {}

impl<E, W: WaitStrategy> Core<E, W> {
    pub(crate) fn new(
        capacity: usize,
        factory: &mut dyn FnMut() -> E,
        wait: W,
        multi_producer: bool,
    ) -> Result<Self, BuildError> {
        if capacity == 0 || !capacity.is_power_of_two() {
            return Err(BuildError::CapacityNotPowerOfTwo(capacity));
        }
        if capacity > MAX_CAPACITY {
            return Err(BuildError::CapacityTooLarge(capacity));
        }
        let slots = (0..capacity).map(|_| UnsafeCell::new(factory())).collect();
        let availability = multi_producer.then(|| Availability::new(capacity));
        Ok(Core {
            slots,
            mask: capacity as i64 - 1,
            cursor: Sequence::new(INITIAL_SEQUENCE),
            availability,
            max_batch: DEFAULT_MAX_BATCH.min(capacity) as i64,
            wait,
            stop_at: CachePadded::new(AtomicI64::new(RUNNING)),
            producers: AtomicUsize::new(1),
        })
    }

    #[inline(always)]
    pub(crate) fn capacity(&self) -> i64 {
        self.mask + 1
    }

    #[inline(always)]
    fn index(&self, sequence: i64) -> usize {
        (sequence & self.mask) as usize
    }

    #[inline(always)]
    fn slot(&self, sequence: i64) -> &UnsafeCell<E> {
        let index = self.index(sequence);
        debug_assert!(index < self.slots.len());
        // SAFETY: `mask` is `slots.len() - 1` with `slots.len()` a power of
        // two, so `sequence & mask` (non-negative, as `mask` is) is always in
        // bounds. Skipping the check matters: this is the per-event path.
        unsafe { self.slots.get_unchecked(index) }
    }

    /// Lend the event at `sequence` for writing.
    ///
    /// # Safety
    /// The caller must hold the claim on `sequence` (claimed, not yet
    /// published) and the claim must be gated: no consumer may still be
    /// reading `sequence - capacity`. Then no other reference to the slot exists.
    #[inline(always)]
    pub(crate) unsafe fn write<R>(&self, sequence: i64, f: impl FnOnce(&mut E) -> R) -> R {
        self.slot(sequence).with_mut(|ptr| {
            // SAFETY: the caller's claim excludes every other access (see above).
            f(unsafe { &mut *ptr })
        })
    }

    /// Lend the event at `sequence` for reading.
    ///
    /// # Safety
    /// `sequence` must be published and visible to this thread (observed
    /// through an acquire of the cursor, the availability buffer, or an
    /// upstream stage's sequence), and the caller's own gating sequence must
    /// still be below `sequence`, so no producer can reclaim the slot while the
    /// reference lives. Other readers may hold `&E` at once, which `E: Sync` allows.
    #[inline(always)]
    pub(crate) unsafe fn read<R>(&self, sequence: i64, f: impl FnOnce(&E) -> R) -> R {
        self.slot(sequence).with(|ptr| {
            // SAFETY: published and gated (see above); only shared access remains.
            f(unsafe { &*ptr })
        })
    }

    /// Lend each event of `lo..=hi` for writing, in order.
    ///
    /// The slot array and mask are read once into locals: through `&self`
    /// the compiler must assume a slot store could change them and would
    /// reload both for every event.
    ///
    /// # Safety
    /// As [`write`](Self::write), for every sequence of the range.
    #[inline(always)]
    pub(crate) unsafe fn write_each(&self, lo: i64, hi: i64, mut f: impl FnMut(i64, &mut E)) {
        let (slots, mask) = (&*self.slots, self.mask);
        let mut sequence = lo;
        while sequence <= hi {
            // SAFETY: masked index in bounds (see `slot`); exclusive access
            // by the caller's claim (see `write`).
            let cell = unsafe { slots.get_unchecked((sequence & mask) as usize) };
            cell.with_mut(|ptr| {
                // SAFETY: as above; `ptr` comes from the cell and is valid.
                f(sequence, unsafe { &mut *ptr })
            });
            sequence += 1;
        }
    }

    /// Lend the event at `sequence` to the graph's owner stage, which may
    /// change it or move out of it.
    ///
    /// # Safety
    /// As [`read`](Self::read), and the caller must be the only consumer
    /// that can reach the slot now: every other stage of the graph has
    /// processed `sequence` (the owner runs after all of them, observed
    /// with acquire through the barrier) and none runs after the owner
    /// (`Graph::then_owner` ends the graph), and no other worker of an
    /// owner pool claimed it. Then no other reference to the slot exists.
    #[inline(always)]
    pub(crate) unsafe fn own<R>(&self, sequence: i64, f: impl FnOnce(&mut E) -> R) -> R {
        self.slot(sequence).with_mut(|ptr| {
            // SAFETY: the owner's exclusive turn at the slot (see above).
            f(unsafe { &mut *ptr })
        })
    }

    /// Lend each event of `lo..=hi` to the graph's owner stage, in order,
    /// while `f` returns `true`. Returns the last sequence handed to `f`.
    ///
    /// # Safety
    /// As [`own`](Self::own), for every sequence of the range.
    #[inline(always)]
    pub(crate) unsafe fn own_each(
        &self,
        lo: i64,
        hi: i64,
        mut f: impl FnMut(i64, &mut E) -> bool,
    ) -> i64 {
        let (slots, mask) = (&*self.slots, self.mask);
        let mut sequence = lo;
        while sequence <= hi {
            // SAFETY: masked index in bounds (see `slot`); the owner's
            // exclusive turn (see `own`).
            let cell = unsafe { slots.get_unchecked((sequence & mask) as usize) };
            let more = cell.with_mut(|ptr| {
                // SAFETY: as above; `ptr` comes from the cell and is valid.
                f(sequence, unsafe { &mut *ptr })
            });
            if !more {
                return sequence;
            }
            sequence += 1;
        }
        hi
    }

    /// Lend each event of `lo..=hi` for reading, in order, while `f`
    /// returns `true`. Returns the last sequence handed to `f`.
    ///
    /// # Safety
    /// As [`read`](Self::read), for every sequence of the range.
    #[inline(always)]
    pub(crate) unsafe fn read_each(
        &self,
        lo: i64,
        hi: i64,
        mut f: impl FnMut(i64, &E) -> bool,
    ) -> i64 {
        let (slots, mask) = (&*self.slots, self.mask);
        let mut sequence = lo;
        while sequence <= hi {
            // SAFETY: masked index in bounds (see `slot`); published and
            // gated, so shared access only (see `read`).
            let cell = unsafe { slots.get_unchecked((sequence & mask) as usize) };
            let more = cell.with(|ptr| {
                // SAFETY: as above; `ptr` comes from the cell and is valid.
                f(sequence, unsafe { &*ptr })
            });
            if !more {
                return sequence;
            }
            sequence += 1;
        }
        hi
    }

    /// Multi producer: mark `lo..=hi` published.
    #[inline]
    pub(crate) fn mark_available(&self, lo: i64, hi: i64) {
        self.availability
            .as_ref()
            .expect("multi-producer ring")
            .publish(lo, hi);
    }

    /// Multi producer: what is published, slot by slot; `None` for a
    /// single producer, whose cursor moves only when it publishes.
    #[inline(always)]
    pub(crate) fn availability(&self) -> Option<&Availability> {
        self.availability.as_ref()
    }

    /// The last published sequence, for reports: the cursor, less any claimed
    /// sequences not yet marked available.
    pub(crate) fn published(&self) -> i64 {
        let cursor = self.cursor.get();
        match &self.availability {
            None => cursor,
            Some(availability) => {
                availability.published_through((cursor - self.mask).max(0), cursor)
            }
        }
    }

    #[inline(always)]
    pub(crate) fn stop_at(&self) -> i64 {
        self.stop_at.load(Ordering::Acquire)
    }

    /// Stop consuming after `last`: consumers finish everything up to it.
    pub(crate) fn drain_to(&self, last: i64) {
        self.stop_at.fetch_min(last, Ordering::AcqRel);
        self.wait.signal_all_when_blocking();
    }

    /// Stop consuming now.
    pub(crate) fn halt(&self) {
        self.drain_to(HALTED);
    }

    pub(crate) fn is_halted(&self) -> bool {
        self.stop_at() == HALTED
    }
}
