//! How many segments of a storage have their files open, and the clock
//! that orders their uses, so the storage can close the least recently
//! used when there are too many (a broker with more partitions than
//! descriptors still runs; storage engines cap open files the same way).
//! Plain counters; knows nothing of segments.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Open segments and the use clock, shared by every segment of a storage.
/// Only the log writer thread touches them; they are atomics so the
/// storage can be built on one thread and moved to it.
#[derive(Debug, Default)]
pub struct OpenFiles {
    open: AtomicUsize,
    clock: AtomicU64,
}

impl OpenFiles {
    /// Segments whose files are open now (three descriptors each).
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub(crate) fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// The next tick of the use clock.
    pub(crate) fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }
}
