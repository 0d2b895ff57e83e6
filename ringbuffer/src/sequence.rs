//! [`Sequence`]: a cache-padded atomic counter, the unit of coordination.
//!
//! The cursor of a sequencer, the progress of every consumer and the claim
//! counter of a worker pool are all `Sequence`s. Each sits on its own cache
//! line (two, on CPUs that prefetch pairs) so that the thread that writes one
//! never invalidates the line another thread is writing.

use crate::sync::{AtomicI64, Ordering};
use crossbeam_utils::CachePadded;

/// The value every sequence starts at: nothing published, nothing processed.
pub const INITIAL_SEQUENCE: i64 = -1;

/// A padded, atomically updated sequence number.
///
/// Sequences only move forward. Readers use acquire loads and writers release
/// stores, so whatever a thread wrote into a slot before advancing its
/// sequence is visible to any thread that reads the advanced value.
///
/// ```
/// use gyre_ringbuffer::Sequence;
/// let s = Sequence::default();
/// assert_eq!(s.get(), -1);
/// s.set(41);
/// assert_eq!(s.get(), 41);
/// ```
#[derive(Debug)]
pub struct Sequence(CachePadded<AtomicI64>);

impl Sequence {
    /// A sequence starting at `value`.
    pub fn new(value: i64) -> Self {
        Sequence(CachePadded::new(AtomicI64::new(value)))
    }

    /// The current value (acquire).
    #[inline(always)]
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }

    /// Store `value` (release).
    #[inline(always)]
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Release);
    }

    #[inline(always)]
    pub(crate) fn atomic(&self) -> &AtomicI64 {
        &self.0
    }
}

impl Default for Sequence {
    fn default() -> Self {
        Sequence::new(INITIAL_SEQUENCE)
    }
}

/// The smallest value among `sequences`, or `default` if there are none.
#[inline]
pub(crate) fn minimum(sequences: &[crate::sync::Arc<Sequence>], default: i64) -> i64 {
    let mut min = default;
    for s in sequences {
        let v = s.get();
        if v < min {
            min = v;
        }
    }
    min
}
