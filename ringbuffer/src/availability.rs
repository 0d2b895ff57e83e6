//! The multi-producer availability buffer: per slot, the lap of the
//! sequence last published there. Uses only the crate's `sync` atomics.
//!
//! A multi-producer ring's cursor says what has been *claimed*; a claimed
//! slot may not be written yet (its producer is mid-publish, or was
//! preempted there). So each producer marks its slot with the sequence's
//! lap (`sequence >> log2(capacity)`) after writing it, with a release
//! store, and a first-stage consumer reads those marks, with acquire, to
//! learn what it may read.
//!
//! A slot's mark equals the lap of `sequence` only once that very sequence
//! is published there: before, the slot holds the mark of a sequence one
//! lap or more behind (or -1, never published). So a consumer can find
//! its events from the marks alone, scanning from the sequence it awaits
//! until the first mark that does not match, without reading the cursor.
//! Every producer writes the cursor for every claim, and
//! a consumer that looked at it while waiting pulled the line away from
//! them each time. Without the cursor, and with a scan bounded by the
//! batch (`DEFAULT_MAX_BATCH`), three producers into one consumer on two
//! cores ran 1.3-1.5x faster (BENCHMARKS.md, issue 22, ninth session);
//! leaving the cursor alone without the bound gained nothing.

use crate::sync::{AtomicI32, Ordering};

/// Per slot, the lap of the sequence last published there.
pub(crate) struct Availability {
    laps: Box<[AtomicI32]>,
    mask: i64,
    shift: u32,
}

impl Availability {
    /// Marks for a ring of `capacity` slots (a power of two), none published.
    pub(crate) fn new(capacity: usize) -> Self {
        debug_assert!(capacity.is_power_of_two());
        Availability {
            laps: (0..capacity).map(|_| AtomicI32::new(-1)).collect(),
            mask: capacity as i64 - 1,
            shift: capacity.trailing_zeros(),
        }
    }

    #[inline(always)]
    fn lap(&self, sequence: i64) -> i32 {
        (sequence >> self.shift) as i32
    }

    #[inline(always)]
    fn mark(&self, sequence: i64) -> &AtomicI32 {
        // `mask` is `laps.len() - 1`, so the index is always in bounds.
        &self.laps[(sequence & self.mask) as usize]
    }

    /// Mark `lo..=hi` published (each slot written before, by its claimer).
    #[inline]
    pub(crate) fn publish(&self, lo: i64, hi: i64) {
        for sequence in lo..=hi {
            self.mark(sequence)
                .store(self.lap(sequence), Ordering::Release);
        }
    }

    /// The highest sequence in `lo..=hi` such that every sequence from `lo`
    /// up to it is published; `lo - 1` if `lo` itself is not.
    ///
    /// A consumer can pass any `hi` below `lo + capacity` without reading
    /// the cursor (see the module doc): `lo + capacity` shares `lo`'s slot
    /// and cannot be published before `lo` has been consumed.
    #[inline]
    pub(crate) fn published_through(&self, lo: i64, hi: i64) -> i64 {
        for sequence in lo..=hi {
            if self.mark(sequence).load(Ordering::Acquire) != self.lap(sequence) {
                return sequence - 1;
            }
        }
        hi
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_mark_counts_only_for_its_own_lap() {
        let marks = Availability::new(4);
        assert_eq!(marks.published_through(0, 3), -1, "nothing published");
        marks.publish(0, 1);
        assert_eq!(marks.published_through(0, 3), 1);
        // Sequence 3 is published, 2 is claimed but not: the run stops at 1.
        marks.publish(3, 3);
        assert_eq!(marks.published_through(0, 3), 1);
        marks.publish(2, 2);
        assert_eq!(marks.published_through(0, 3), 3, "the gap is filled");
        // Sequences 4.. share slots 0.. but are a lap ahead: not published.
        assert_eq!(marks.published_through(4, 7), 3);
        marks.publish(4, 5);
        assert_eq!(marks.published_through(4, 7), 5);
        assert_eq!(marks.published_through(4, 4), 4, "bounded by `hi`");
    }

    #[test]
    fn a_whole_lap_is_found_and_the_next_lap_is_not() {
        let marks = Availability::new(8);
        marks.publish(0, 7);
        assert_eq!(marks.published_through(0, 7), 7);
        marks.publish(8, 10);
        assert_eq!(marks.published_through(3, 10), 10);
        assert_eq!(
            marks.published_through(11, 18),
            10,
            "11's slot still holds 3's lap"
        );
    }
}
