//! The broker-wide bound on fetch sessions: how many are open and how
//! many partitions they hold together.
//!
//! May use: std only.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// How many sessions are open and how many partitions they hold, against
/// the broker's limits. Its lock is taken when a session opens, grows,
/// shrinks or closes: never for a fetch of an unchanged session.
#[derive(Debug)]
pub struct SessionBudget {
    max_sessions: usize,
    max_partitions: usize,
    used: Mutex<Used>,
}

#[derive(Debug, Default)]
struct Used {
    sessions: usize,
    partitions: usize,
    last_id: i32,
}

impl SessionBudget {
    /// At most `max_sessions` sessions open at once (0: none) holding at
    /// most `max_partitions` partitions together.
    pub fn new(max_sessions: usize, max_partitions: usize) -> Arc<Self> {
        Arc::new(SessionBudget {
            max_sessions,
            max_partitions,
            used: Mutex::new(Used::default()),
        })
    }

    fn used(&self) -> MutexGuard<'_, Used> {
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new session's id, if one more session of `partitions` fits.
    pub(super) fn open(&self, partitions: usize) -> Option<i32> {
        let mut used = self.used();
        if used.sessions >= self.max_sessions || used.partitions + partitions > self.max_partitions
        {
            return None;
        }
        used.sessions += 1;
        used.partitions += partitions;
        // Positive and never 0 (no session); unique among open sessions,
        // which number far fewer than 2^31.
        used.last_id = used.last_id % i32::MAX + 1;
        Some(used.last_id)
    }

    /// Room for `more` partitions in an open session.
    pub(super) fn grow(&self, more: usize) -> bool {
        let mut used = self.used();
        if used.partitions + more > self.max_partitions {
            return false;
        }
        used.partitions += more;
        true
    }

    pub(super) fn shrink(&self, fewer: usize) {
        let mut used = self.used();
        used.partitions -= fewer;
    }

    pub(super) fn close(&self, partitions: usize) {
        let mut used = self.used();
        used.sessions -= 1;
        used.partitions -= partitions;
    }

    /// Sessions open now, and the partitions they hold.
    pub fn in_use(&self) -> (usize, usize) {
        let used = self.used();
        (used.sessions, used.partitions)
    }
}
