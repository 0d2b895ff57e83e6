//! Futures run on an event loop ([`EventLoop::spawn`]), as Netty runs a
//! task on its channel's loop and tokio spawns one on its runtime: a
//! future is polled only on its loop's thread, first as a task queued when
//! it is spawned, then once more for each wake-up, from any thread. Uses
//! the loop's task queue and std's task types.
//!
//! The protocol is one flag, `queued`: a run is in the loop's queue and has
//! not begun. A wake-up that sets it queues a run; one that finds it set
//! queues nothing, since the queued run polls after it. A run clears it
//! before it polls, so a wake-up during the poll queues the next run and
//! none is lost. Both are `AcqRel` read-modify-writes on the one flag: a
//! run's clearing reads the value a wake-up wrote (or one later in the
//! same chain of writes), so what the waker published before waking (an
//! answer in a promise) is visible to the poll that follows; a wake-up
//! that comes after the clearing sees the flag clear and queues a run of
//! its own. At most one run is queued at a time, and the loop runs its
//! queue in order on one thread, so polls never overlap. The model is
//! `loom-tests/tests/loop_task.rs`.
//!
//! The loop keeps each task weakly and, as it stops, drops the futures
//! still waiting: one waits on a waker kept where it waits (a promise's
//! slot), which keeps the task, which keeps the future, a cycle that only
//! the loop can cut.
//!
//! [`EventLoop::spawn`]: crate::EventLoop::spawn

use crate::event_loop::{Shared, Spawned};
use crate::Error;
use std::cell::UnsafeCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// A future spawned on a loop, and its place in that loop's queue.
pub(crate) struct LoopTask<F> {
    /// A run is queued and has not begun.
    queued: AtomicBool,
    /// `None` once the future has finished (or panicked). Touched only by
    /// a run, on the loop's thread, by the loop as it stops, and by the
    /// drop. Kept in the task itself (pinned there: an `Arc`'s contents
    /// never move, and the future is dropped in place), not boxed apart.
    future: UnsafeCell<Option<F>>,
    /// The loop's queue, for the runs.
    lp: Arc<Shared>,
}

// SAFETY: the future is touched only by `run` and by the drop. Runs happen
// only on the loop's thread, one after another (the protocol in the module
// doc queues at most one at a time, and the loop runs its queue in order
// on that one thread), so no two touch it at once; the drop has the last
// reference, so it runs after every run has ended. Moving the future
// between threads needs it `Send`; sharing the task needs nothing of `F`,
// since nothing reads the future through a shared reference on two
// threads.
unsafe impl<F: Send> Sync for LoopTask<F> {}

/// Spawns `future` on the loop whose queue is `lp`.
pub(crate) fn spawn<F>(lp: &Arc<Shared>, future: F) -> Result<(), Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    let task = Arc::new(LoopTask {
        queued: AtomicBool::new(true),
        future: UnsafeCell::new(Some(future)),
        lp: lp.clone(),
    });
    lp.execute(Box::new(move |inner| {
        let weak: std::sync::Weak<dyn Spawned> = Arc::downgrade(&task) as _;
        inner.add_spawned(weak);
        task.run();
    }))
}

impl<F: Future<Output = ()> + Send + 'static> LoopTask<F> {
    /// One poll, on the loop's thread.
    fn run(self: Arc<Self>) {
        // Cleared before the poll: a wake-up from here on queues the next
        // run (see the module doc for the ordering).
        self.queued.swap(false, Ordering::AcqRel);
        // SAFETY: runs happen on the loop's thread one at a time and the
        // drop waits for the last reference (see the `Sync` impl).
        let slot = unsafe { &mut *self.future.get() };
        let Some(future) = slot.as_mut() else {
            // Finished; a wake-up that came late queued this run.
            return;
        };
        // SAFETY: the future lives inside the task's `Arc`, whose contents
        // never move, and leaves it only by being dropped in place (the
        // slot set to `None`), so it stays where it is pinned until then.
        let future = unsafe { Pin::new_unchecked(future) };
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        match catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))) {
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(())) => *slot = None,
            Err(panic) => {
                *slot = None;
                tracing::error!(
                    panic = gyre_ringbuffer::panic_message(&*panic),
                    "a future spawned on an event loop panicked; it is dropped"
                );
            }
        }
    }
}

impl<F: Future<Output = ()> + Send + 'static> Spawned for LoopTask<F> {
    fn drop_future(&self) {
        // SAFETY: the loop calls this on its thread as it stops, with no
        // run under way (runs are tasks, and none is running then), so
        // nothing else touches the future (see the `Sync` impl).
        unsafe { *self.future.get() = None };
    }
}

impl<F: Future<Output = ()> + Send + 'static> Wake for LoopTask<F> {
    fn wake(self: Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            // A queued run polls after this.
            return;
        }
        let lp = self.lp.clone();
        // A loop that has stopped polls nothing more; the future goes with
        // its last waker.
        let _ = lp.execute(Box::new(move |_| self.run()));
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.clone().wake();
    }
}
