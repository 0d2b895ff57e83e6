//! Wake-ups from a loop's thread to the tasks of one executor, passed on in
//! bursts: [`WakeRelay`] queues each waker a loop would wake and wakes one
//! task of the executor's own, the relay ([`WakeRelay::run`]), which wakes
//! the queued tasks from inside the executor. Uses `crate::sync` (std, or
//! loom under `--cfg loom`) and `crate::bounded_queue`.
//!
//! Why: a task woken from another thread costs its executor a cross-thread
//! hand-off per wake-up. tokio's current-thread runtime writes its eventfd
//! on every remote wake-up, awake or not: with 64 calls in flight the
//! consumer's loop made one `write(2)` per answer, a third of its time
//! (BENCHMARKS.md, issue 22, twenty-fourth session). Through a relay, the
//! answers of one burst cost one remote wake-up, and the tasks still start
//! as their answers land: the relay wakes whatever is queued each time it
//! runs, not once at the end of the loop's turn.
//!
//! The protocol is one flag, `armed`, and the queue, model-checked in
//! `loom-tests` (`wake_relay.rs`). A waker is pushed before the flag is
//! swapped to `true` (acquire-release); whoever finds it `false` wakes the
//! relay. The relay swaps the flag to `false` (acquire-release) and only
//! then drains the queue. The swaps are read-modify-writes of one atomic,
//! so they are totally ordered: a push whose swap came after the relay's
//! found the flag `false` and woke the relay again; a push whose swap came
//! before it is ordered before the relay's drain by that swap's release,
//! which the relay's acquire swap reads (directly, or through the release
//! sequence of later swaps). No queued waker is left without a relay run
//! after it. When the relay's task is dropped (its executor shut down),
//! it sets `closed` and drains the queue itself; a waker pushed meanwhile
//! is drained by whichever of the two sees the other: each side puts a
//! sequentially consistent fence between its write (the push, the flag)
//! and its read (the flag, the queue). From then on wakers are woken
//! directly. A full queue wakes directly too: bounded memory, and a
//! wake-up is never dropped.

use crate::bounded_queue::BoundedQueue;
use crate::sync::{fence, Arc, AtomicBool, AtomicUsize, Mutex, Ordering};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, RawWakerVTable, Waker};

/// Queued wake-ups for the tasks of one executor, passed on by a task of
/// that executor.
///
/// The thread that completes answers (a loop) calls [`wake`](Self::wake)
/// instead of waking each task itself; one task on the executor, the
/// future [`run`](Self::run) returns, wakes the queued tasks from there.
/// Worth it where a remote wake-up is dear and comes in bursts (tokio's
/// current-thread runtime writes an eventfd for each); a
/// [`PromiseFuture`](crate::promise::PromiseFuture) is told to use one with
/// [`wake_through`](crate::promise::PromiseFuture::wake_through).
///
/// ```
/// use gyre_reactor::wake_relay::WakeRelay;
/// use std::future::Future;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use std::task::{Context, Wake, Waker};
///
/// struct Count(AtomicUsize);
/// impl Wake for Count {
///     fn wake(self: Arc<Self>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let relay = WakeRelay::new(64);
/// let mut run = Box::pin(WakeRelay::run(&relay)); // spawn this on the executor
/// let task = Arc::new(Count(AtomicUsize::new(0)));
/// // A loop's thread: two answers for the same task, one wake-up queued each.
/// relay.wake(&Waker::from(task.clone()));
/// relay.wake(&Waker::from(task.clone()));
/// assert_eq!(task.0.load(Ordering::Relaxed), 0);
/// // The executor runs the relay, which wakes what was queued.
/// let _ = run.as_mut().poll(&mut Context::from_waker(Waker::noop()));
/// assert_eq!(task.0.load(Ordering::Relaxed), 2);
/// ```
pub struct WakeRelay {
    queue: BoundedQueue<Waker>,
    /// The relay has been woken (or not yet run) and will drain the queue.
    armed: AtomicBool,
    /// The relay task's waker; locked once per burst, not per wake-up, and
    /// never held while a waker runs.
    relay: Mutex<Option<Waker>>,
    /// The relay task is gone (or closed): wake directly.
    closed: AtomicBool,
    /// The address of the relay task's waker's vtable, once it has run: the
    /// kind of task (which executor's) whose wake-ups it should carry.
    task_kind: AtomicUsize,
}

impl std::fmt::Debug for WakeRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeRelay")
            .field("queued", &self.queue.len())
            .field("capacity", &self.queue.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl WakeRelay {
    /// A relay that queues up to `capacity` wake-ups (at least one); past
    /// that, [`wake`](Self::wake) wakes directly.
    pub fn new(capacity: usize) -> Arc<WakeRelay> {
        Arc::new(WakeRelay {
            queue: BoundedQueue::new(capacity.max(1)),
            // Until the relay has run once nobody can wake it, and its
            // first run drains the queue regardless.
            armed: AtomicBool::new(true),
            relay: Mutex::new(None),
            closed: AtomicBool::new(false),
            task_kind: AtomicUsize::new(0),
        })
    }

    /// Has `waker` woken by the relay, soon; directly if the relay is
    /// closed or its queue full. Call it from any thread.
    pub fn wake(&self, waker: &Waker) {
        if self.closed.load(Ordering::Acquire) {
            return waker.wake_by_ref();
        }
        if let Err(waker) = self.queue.push(waker.clone()) {
            return waker.wake();
        }
        if !self.armed.swap(true, Ordering::AcqRel) {
            // Woken after the lock is let go: an executor may run the task
            // at once, and the task takes the lock.
            let relay = self.relay.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(relay) = relay {
                relay.wake();
            }
        }
        // Pairs with the fence in `close`: either this load sees `closed`,
        // or the closing drain sees the push above.
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            self.drain(usize::MAX);
        }
    }

    /// Whether `waker` is of the same kind as the relay task's own, the
    /// waker of a task of the same executor (the same vtable); false until
    /// the relay has run once. Only such tasks' wake-ups belong in the
    /// relay: a future that a task hands to another executor (one it
    /// blocks on, say) is polled with that executor's waker, and while the
    /// task blocks, its own executor cannot run the relay.
    pub fn wakes_tasks_like(&self, waker: &Waker) -> bool {
        let kind = self.task_kind.load(Ordering::Relaxed);
        kind != 0 && kind == vtable_address(waker)
    }

    /// Whether the relay has stopped: its task was dropped or closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Stops the relay: wakes everything queued, and from now on every
    /// [`wake`](Self::wake) wakes directly; the future of
    /// [`run`](Self::run) finishes. Dropping that future does the same.
    pub fn close(&self) {
        self.shut();
        let relay = self.relay.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(relay) = relay {
            relay.wake();
        }
    }

    /// Marks the relay closed and wakes everything queued.
    fn shut(&self) {
        self.closed.store(true, Ordering::Release);
        // Pairs with the fence in `wake`.
        fence(Ordering::SeqCst);
        self.drain(usize::MAX);
    }

    /// The relay's task: spawn it on the executor whose tasks' wake-ups
    /// go through this relay. It never finishes until the relay is
    /// [closed](Self::close); dropped (its executor shut down), it closes
    /// the relay.
    // An associated function, not a method on `&Arc<Self>`: under loom the
    // `Arc` is loom's, which cannot be a receiver.
    pub fn run(relay: &Arc<WakeRelay>) -> RelayTask {
        RelayTask {
            relay: Arc::clone(relay),
        }
    }

    /// Wakes up to `limit` queued wakers; whether the queue was emptied.
    fn drain(&self, limit: usize) -> bool {
        for _ in 0..limit {
            match self.queue.pop() {
                Some(waker) => waker.wake(),
                None => return true,
            }
        }
        false
    }
}

/// Where `waker`'s vtable lives: what tells one executor's wakers from
/// another's.
fn vtable_address(waker: &Waker) -> usize {
    std::ptr::from_ref::<RawWakerVTable>(waker.vtable()) as usize
}

/// The relay's task, from [`WakeRelay::run`]: each time it runs it wakes
/// the tasks queued so far. A future: spawn it on the executor whose
/// tasks' wake-ups go through the relay.
///
/// ```
/// use gyre_reactor::wake_relay::{RelayTask, WakeRelay};
/// use std::future::Future;
/// use std::task::{Context, Poll, Waker};
///
/// let relay = WakeRelay::new(64);
/// let task: RelayTask = WakeRelay::run(&relay);
/// // As an executor would run it: it stays pending until the relay closes.
/// let mut task = std::pin::pin!(task);
/// let mut cx = Context::from_waker(Waker::noop());
/// assert!(task.as_mut().poll(&mut cx).is_pending());
/// relay.close();
/// assert!(task.as_mut().poll(&mut cx).is_ready());
/// ```
#[must_use = "a relay does nothing unless its task is spawned"]
pub struct RelayTask {
    relay: Arc<WakeRelay>,
}

impl std::fmt::Debug for RelayTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayTask")
            .field("relay", &self.relay)
            .finish()
    }
}

impl Future for RelayTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let relay = &self.relay;
        relay
            .task_kind
            .store(vtable_address(cx.waker()), Ordering::Relaxed);
        {
            let mut waker = relay.relay.lock().unwrap_or_else(|e| e.into_inner());
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        if relay.closed.load(Ordering::Acquire) {
            relay.drain(usize::MAX);
            return Poll::Ready(());
        }
        relay.armed.swap(false, Ordering::AcqRel);
        // At most a queue's worth per run, so a loop that keeps answering
        // cannot hold the executor's thread here: what is left waits for
        // the next run, which this asks for.
        if !relay.drain(relay.queue.capacity()) {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Drop for RelayTask {
    fn drop(&mut self) {
        self.relay.shut();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (std::sync::Arc<Count>, Waker) {
        let count = std::sync::Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        (count, waker)
    }

    fn poll(task: &mut Pin<Box<RelayTask>>, waker: &Waker) -> Poll<()> {
        task.as_mut().poll(&mut Context::from_waker(waker))
    }

    /// A relay whose task has run once with a counting waker: the relay,
    /// its task, how often the task was woken, and its waker.
    fn started_relay() -> (
        Arc<WakeRelay>,
        Pin<Box<RelayTask>>,
        std::sync::Arc<Count>,
        Waker,
    ) {
        let relay = WakeRelay::new(8);
        let mut task = Box::pin(WakeRelay::run(&relay));
        let (runs, relay_waker) = counter();
        assert!(poll(&mut task, &relay_waker).is_pending());
        (relay, task, runs, relay_waker)
    }

    #[test]
    fn queued_wake_ups_wait_for_the_relay_and_wake_it_once() {
        let (relay, mut task, runs, relay_waker) = started_relay();
        let (woken, waker) = counter();
        for _ in 0..3 {
            relay.wake(&waker);
        }
        assert_eq!(woken.0.load(Ordering::SeqCst), 0, "queued, not woken");
        assert_eq!(runs.0.load(Ordering::SeqCst), 1, "one wake-up a burst");
        assert!(poll(&mut task, &relay_waker).is_pending());
        assert_eq!(woken.0.load(Ordering::SeqCst), 3);
        relay.wake(&waker);
        assert_eq!(runs.0.load(Ordering::SeqCst), 2, "a new burst wakes it");
    }

    #[test]
    fn only_wakers_like_the_relays_own_belong_in_it() {
        let relay = WakeRelay::new(8);
        let (_, task_waker) = counter();
        assert!(!relay.wakes_tasks_like(&task_waker), "not before it ran");
        let mut task = Box::pin(WakeRelay::run(&relay));
        let (_, relay_waker) = counter();
        let _ = poll(&mut task, &relay_waker);
        assert!(
            relay.wakes_tasks_like(&task_waker),
            "the same kind of waker"
        );
        assert!(!relay.wakes_tasks_like(Waker::noop()), "another kind");
    }

    #[test]
    fn a_full_queue_wakes_directly() {
        let relay = WakeRelay::new(2);
        let (woken, waker) = counter();
        for _ in 0..5 {
            relay.wake(&waker);
        }
        assert_eq!(woken.0.load(Ordering::SeqCst), 3);
        let mut task = Box::pin(WakeRelay::run(&relay));
        let _ = poll(&mut task, Waker::noop());
        assert_eq!(woken.0.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn a_dropped_relay_wakes_what_it_held_and_then_everything_directly() {
        let relay = WakeRelay::new(8);
        let (woken, waker) = counter();
        relay.wake(&waker);
        drop(Box::pin(WakeRelay::run(&relay)));
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert!(relay.is_closed());
        relay.wake(&waker);
        assert_eq!(woken.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_closed_relay_finishes_its_task() {
        let (relay, mut task, runs, relay_waker) = started_relay();
        relay.close();
        assert_eq!(runs.0.load(Ordering::SeqCst), 1, "close wakes the task");
        assert!(poll(&mut task, &relay_waker).is_ready());
    }

    #[test]
    fn stress_every_wake_up_arrives() {
        // One thread wakes through the relay in bursts of one to four and
        // waits for each burst to arrive before the next, while another
        // runs the relay only when the relay is woken. Each burst ends
        // with the relay going idle, the boundary where a wake-up could be
        // lost; a lost one leaves the runner asleep with wakers queued and
        // the burst never arrives.
        const BURSTS: usize = 20_000;
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.unpark();
            }
        }
        let relay = WakeRelay::new(64);
        let (woken, waker) = counter();
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let runner = {
            let (relay, done) = (relay.clone(), done.clone());
            std::thread::spawn(move || {
                let mut task = Box::pin(WakeRelay::run(&relay));
                let unpark = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
                while !done.load(Ordering::Acquire) {
                    let _ = task.as_mut().poll(&mut Context::from_waker(&unpark));
                    // Woken only by the relay's wake-ups (or spuriously).
                    std::thread::park();
                }
            })
        };
        let mut sent = 0;
        let mut lost = None;
        for burst in 0..BURSTS {
            for _ in 0..=(burst % 4) {
                relay.wake(&waker);
                sent += 1;
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while woken.0.load(Ordering::SeqCst) < sent {
                if std::time::Instant::now() > deadline {
                    lost = Some(burst);
                    break;
                }
                std::thread::yield_now();
            }
            if lost.is_some() {
                break;
            }
        }
        done.store(true, Ordering::Release);
        runner.thread().unpark();
        runner.join().unwrap();
        assert_eq!(lost, None, "a burst's wake-ups never arrived");
        assert_eq!(woken.0.load(Ordering::SeqCst), sent);
    }
}
