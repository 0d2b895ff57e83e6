//! The traits consumers implement: [`EventHandler`] for a stage that sees
//! every event, [`WorkHandler`] for a worker pool where each event goes to
//! one worker. Closures implement both.

/// A stage's business logic: called for every event, in sequence order.
///
/// The handler is created on (or moved to) the stage's own thread and only
/// ever called there, so its state need not be `Send` when it is built with
/// [`Stage::with_factory`](crate::Stage::with_factory).
///
/// `event` is borrowed only for the call: the slot is reused once every
/// stage has passed it, so copy out what you need to keep.
pub trait EventHandler<E> {
    /// Handle one event. `end_of_batch` is true for the last event the
    /// processor has available now: the moment to flush or commit a group.
    fn on_event(&mut self, event: &E, sequence: i64, end_of_batch: bool);

    /// Called before the events of a batch, with how many there are.
    fn on_batch_start(&mut self, batch_size: usize) {
        let _ = batch_size;
    }

    /// Called once on the stage's thread before the first event.
    fn on_start(&mut self) {}

    /// Called once on the stage's thread after the last event.
    fn on_shutdown(&mut self) {}

    /// Called when a [`TimeoutBlockingWait`](crate::TimeoutBlockingWait)
    /// times out; `sequence` is the last one this stage processed.
    fn on_timeout(&mut self, sequence: i64) {
        let _ = sequence;
    }
}

impl<E, F: FnMut(&E, i64, bool)> EventHandler<E> for F {
    #[inline(always)]
    fn on_event(&mut self, event: &E, sequence: i64, end_of_batch: bool) {
        self(event, sequence, end_of_batch)
    }
}

/// A worker of a [`Stage::worker_pool`](crate::Stage::worker_pool): each
/// event goes to exactly one worker of the pool.
pub trait WorkHandler<E> {
    /// Handle one event.
    fn on_event(&mut self, event: &E, sequence: i64);

    /// Called once on the worker's thread before the first event.
    fn on_start(&mut self) {}

    /// Called once on the worker's thread after the last event.
    fn on_shutdown(&mut self) {}

    /// Called when a [`TimeoutBlockingWait`](crate::TimeoutBlockingWait) times out.
    fn on_timeout(&mut self, sequence: i64) {
        let _ = sequence;
    }
}

impl<E, F: FnMut(&E, i64)> WorkHandler<E> for F {
    #[inline(always)]
    fn on_event(&mut self, event: &E, sequence: i64) {
        self(event, sequence)
    }
}
