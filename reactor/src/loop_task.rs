//! Futures run on an event loop ([`EventLoop::spawn`]), as Netty runs a
//! task on its channel's loop and tokio spawns one on its runtime: a
//! future is polled only on its loop's thread, first as a task queued when
//! it is spawned (or at once, by `EventLoop::spawn_eager` on the loop's
//! own thread), then once more for each wake-up, from any thread. Uses
//! the loop's task queue, its thread's list of spawned futures and std's
//! task types.
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

use crate::event_loop::Shared;
use crate::spawned::{self, Spawned};
use crate::sync::{AtomicBool, Ordering, UnsafeCell};
use crate::Error;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
// A std `Arc` even under loom: a `Waker` is made from one, and the count
// is not part of the protocol.
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Where a task's runs are queued for its loop's thread: the loop's task
/// queue, or a loom model's.
pub trait RunQueue: Send + Sync + Sized + 'static {
    /// Queues `task`'s next run; `false` if the loop has stopped (the run
    /// is dropped unrun).
    fn push<F: Future<Output = ()> + Send + 'static>(&self, task: Arc<LoopTask<F, Self>>) -> bool;
}

/// A future spawned on a loop, and its place in that loop's queue.
pub struct LoopTask<F, Q> {
    /// A run is queued and has not begun.
    queued: AtomicBool,
    /// `None` once the future has finished (or panicked). Touched only by
    /// a run, on the loop's thread, by the loop as it stops, and by the
    /// drop. Kept in the task itself (pinned there: an `Arc`'s contents
    /// never move, and the future is dropped in place), not boxed apart.
    future: UnsafeCell<Option<F>>,
    /// The loop's queue, for the runs.
    queue: Q,
}

// SAFETY: the future is touched only by `run`, by `drop_future` and by
// the drop. Runs happen only on the loop's thread, one after another (the
// protocol in the module doc queues at most one at a time, and the loop
// runs its queue in order on that one thread); `drop_future` runs on that
// thread too, as the loop stops, when no run is under way; the drop has
// the last reference, so it comes after every run has ended. So no two
// touch the future at once. Moving the future between threads needs it
// `Send`; nothing reads it through a shared reference on two threads, so
// sharing the task asks nothing more of `F`.
unsafe impl<F: Send, Q: Sync> Sync for LoopTask<F, Q> {}

impl<F, Q> LoopTask<F, Q>
where
    F: Future<Output = ()> + Send + 'static,
    Q: RunQueue,
{
    /// A task for `future` whose first run is about to be queued on
    /// `queue` (by the caller).
    pub fn new(future: F, queue: Q) -> Arc<Self> {
        Arc::new(LoopTask {
            queued: AtomicBool::new(true),
            future: UnsafeCell::new(Some(future)),
            queue,
        })
    }

    /// One poll, on the loop's thread; whether the future has finished.
    pub fn run(self: Arc<Self>) -> bool {
        // Cleared before the poll: a wake-up from here on queues the next
        // run (see the module doc for the ordering).
        self.queued.swap(false, Ordering::AcqRel);
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        // SAFETY: runs happen on the loop's thread one at a time, and
        // nothing else touches the future meanwhile (the `Sync` impl).
        unsafe {
            self.future.with_mut(|slot| {
                let slot = &mut *slot;
                let Some(future) = slot.as_mut() else {
                    // Finished; a wake-up that came late queued this run.
                    return true;
                };
                // SAFETY: the future lives inside the task's `Arc`, whose
                // contents never move, and leaves it only by being dropped
                // in place (the slot set to `None`): it stays where it is
                // pinned until then.
                let future = Pin::new_unchecked(future);
                match catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))) {
                    Ok(Poll::Pending) => return false,
                    Ok(Poll::Ready(())) => {}
                    Err(panic) => tracing::error!(
                        panic = gyre_ringbuffer::panic_message(&*panic),
                        "a future spawned on an event loop panicked; it is dropped"
                    ),
                }
                *slot = None;
                true
            })
        }
    }
}

impl<F, Q> Wake for LoopTask<F, Q>
where
    F: Future<Output = ()> + Send + 'static,
    Q: RunQueue,
{
    fn wake(self: Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            // A queued run polls after this.
            return;
        }
        // A loop that has stopped polls nothing more (and has dropped the
        // future, see the module doc).
        let _ = self.queue.push(self.clone());
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.clone().wake();
    }
}

/// The loop's own queue: a run is a task of the loop.
impl RunQueue for Arc<Shared> {
    fn push<F: Future<Output = ()> + Send + 'static>(&self, task: Arc<LoopTask<F, Self>>) -> bool {
        self.execute(Box::new(move |_| {
            task.run();
        }))
        .is_ok()
    }
}

impl<F: Future<Output = ()> + Send + 'static> Spawned for LoopTask<F, Arc<Shared>> {
    fn drop_future(&self) {
        // SAFETY: the loop calls this on its thread as it stops, with no
        // run under way (runs are tasks, and none is running then), so
        // nothing else touches the future (the `Sync` impl).
        unsafe { self.future.with_mut(|slot| *slot = None) };
    }
}

/// Spawns `future` on the loop whose queue is `lp`: its first run also
/// gives the loop the task to drop when it stops. With `here` (the caller
/// runs on that loop's thread, and asks for it), the first run is made
/// now, in the caller, instead of queued.
pub(crate) fn spawn<F>(lp: &Arc<Shared>, future: F, here: bool) -> Result<(), Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    let task = LoopTask::new(future, lp.clone());
    let first = move || {
        let weak: std::sync::Weak<dyn Spawned> = Arc::downgrade(&task) as _;
        spawned::add(weak);
        task.run();
    };
    if !here {
        return lp.execute(Box::new(move |_| first()));
    }
    if !lp.alive.load(std::sync::atomic::Ordering::Acquire) {
        return Err(Error::LoopShutDown);
    }
    first();
    Ok(())
}
