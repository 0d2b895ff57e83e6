//! A one-shot answer from one thread to a future on another, in a slot that
//! is reused: [`PromisePool`] hands out [`Promise`]/[`PromiseFuture`] pairs,
//! and whichever half lets go of a slot last puts it back, so a steady
//! stream of calls allocates nothing for their answers. Netty's `Promise`
//! is the writable side of a `Future`; this is that, for an answer a loop
//! completes and any executor awaits. Uses only `crate::sync` (std, or
//! loom under `--cfg loom`), `crate::bounded_queue` for the free slots and
//! `crate::wake_relay`, which a future may ask to pass its wake-up on
//! ([`PromiseFuture::wake_through`]).
//!
//! The protocol is two bits of one atomic, model-checked in `loom-tests`
//! (`promise.rs`). `DONE` is set once, by the promise, *after* it has
//! written the value (an acquire-release `fetch_or`), so the future that
//! sees `DONE` with an acquire load or read-modify-write sees the value.
//! `WAKER_SET` says the future's waker (and the relay it asked for, if
//! any) is in the slot and belongs to the promise to read: the future
//! writes the waker only while the bit is clear and `DONE` is not set, and
//! sets the bit afterwards; to replace it, it clears the bit first. Read-modify-writes on one atomic are totally
//! ordered, so either the promise's `fetch_or(DONE)` sees `WAKER_SET` (the
//! waker is whole and stays put while the promise wakes it) or the
//! future's next read-modify-write sees `DONE` (and the future takes the
//! value itself instead of waiting). No answer is ever left unwoken.
//!
//! A slot is reset only by the second half to let go of it (a count of
//! holders decides which, exactly), which has then seen every access the
//! other half made.

use crate::bounded_queue::BoundedQueue;
use crate::sync::{Arc, AtomicUsize, Ordering, UnsafeCell};
use crate::wake_relay::WakeRelay;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The future's waker is in the slot; the promise may read it.
const WAKER_SET: usize = 0b01;
/// The promise has finished: the value (or its absence) is final.
const DONE: usize = 0b10;

/// One answer's place: the state bits, the value, the waiting task.
struct Slot<T> {
    state: AtomicUsize,
    /// Halves still holding the slot: 2 when handed out, the last to let
    /// go recycles it.
    holders: AtomicUsize,
    value: UnsafeCell<Option<T>>,
    waker: UnsafeCell<Option<Waker>>,
    /// Where the waker goes instead of being woken here: written and read
    /// with the waker, under the same bit.
    relay: UnsafeCell<Option<Arc<WakeRelay>>>,
}

// SAFETY: the value crosses from the promise's thread to the future's (so
// `T: Send`) and is never shared by reference; the cells are accessed only
// as the protocol in the module comment allows, each access ordered by the
// `state` atomic or, for the reset, by the `holders` count.
unsafe impl<T: Send> Send for Slot<T> {}
// SAFETY: as above: both halves hold `&Slot` on different threads, and the
// protocol keeps their cell accesses from overlapping except for shared
// reads of the waker (`&Waker` is `Sync`).
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T> Slot<T> {
    fn new() -> Self {
        Slot {
            state: AtomicUsize::new(0),
            holders: AtomicUsize::new(2),
            value: UnsafeCell::new(None),
            waker: UnsafeCell::new(None),
            relay: UnsafeCell::new(None),
        }
    }
}

/// The free slots, shared by a pool and every pair it handed out.
type FreeSlots<T> = BoundedQueue<Arc<Slot<T>>>;

/// One half lets go of `slot`. The second to do so (the `holders` count
/// says which, exactly, however the two race) resets it and puts it back
/// in `free`; the first touches nothing of it after its decrement.
fn release<T>(slot: Arc<Slot<T>>, free: &FreeSlots<T>) {
    if slot.holders.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    slot.state.store(0, Ordering::Relaxed);
    // SAFETY: the other half's decrement came first and was a release,
    // which our acquire-release decrement synchronised with: all its
    // accesses to the cells happened before these writes, and it makes
    // no more (it may still drop its `Arc`, which reads no cell).
    unsafe {
        slot.value.with_mut(|v| *v = None);
        slot.waker.with_mut(|w| *w = None);
        slot.relay.with_mut(|r| *r = None);
    }
    // A full free list lets the slot go: memory stays bounded.
    let _ = free.push(slot);
}

/// Hands out promise/future pairs whose slots are reused.
///
/// Cloning the pool shares its free slots. A pool keeps at most
/// `retained` free slots; pairs beyond what it has allocate, and their
/// slots join the pool when done (while there is room).
///
/// ```
/// use gyre_reactor::promise::PromisePool;
/// use std::future::Future;
/// use std::task::{Context, Poll, Waker};
///
/// let pool = PromisePool::new(64);
/// let (promise, answer) = pool.promise();
/// std::thread::spawn(move || promise.complete(6 * 7)).join().unwrap();
/// // Any executor will do; here, one poll by hand.
/// let mut answer = std::pin::pin!(answer);
/// let got = answer.as_mut().poll(&mut Context::from_waker(Waker::noop()));
/// assert_eq!(got, Poll::Ready(Ok(42)));
/// assert_eq!(pool.free_slots(), 1); // the slot is back for the next pair
/// ```
pub struct PromisePool<T> {
    free: Arc<FreeSlots<T>>,
}

impl<T> Clone for PromisePool<T> {
    fn clone(&self) -> Self {
        PromisePool {
            free: self.free.clone(),
        }
    }
}

impl<T> std::fmt::Debug for PromisePool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromisePool")
            .field("free", &self.free.len())
            .field("retained", &self.free.capacity())
            .finish()
    }
}

impl<T: Send> PromisePool<T> {
    /// A pool that keeps up to `retained` free slots (at least one).
    pub fn new(retained: usize) -> Self {
        PromisePool {
            free: Arc::new(FreeSlots::new(retained.max(1))),
        }
    }

    /// A new pair: complete the [`Promise`] on any thread, await the
    /// [`PromiseFuture`] on any executor. Allocates only when no free slot
    /// is left.
    pub fn promise(&self) -> (Promise<T>, PromiseFuture<T>) {
        let slot = match self.free.pop() {
            Some(slot) => {
                // Popped from the free list: nobody else touches it now.
                slot.holders.store(2, Ordering::Relaxed);
                slot
            }
            None => Arc::new(Slot::new()),
        };
        (
            Promise {
                slot: Some(slot.clone()),
                free: self.free.clone(),
            },
            PromiseFuture {
                slot: Some(slot),
                free: self.free.clone(),
                relay: None,
            },
        )
    }

    /// Free slots waiting for reuse.
    pub fn free_slots(&self) -> usize {
        self.free.len()
    }
}

/// The completing half: [`complete`](Self::complete) it once; dropping it
/// uncompleted makes its future resolve to `Err(PromiseDropped)`.
///
/// ```
/// use gyre_reactor::promise::{PromiseDropped, PromisePool};
///
/// let pool = PromisePool::<u32>::new(8);
/// let (promise, answer) = pool.promise();
/// drop(promise); // nobody will answer
/// let mut answer = std::pin::pin!(answer);
/// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// let got = std::future::Future::poll(answer.as_mut(), &mut cx);
/// assert_eq!(got, std::task::Poll::Ready(Err(PromiseDropped)));
/// ```
pub struct Promise<T> {
    slot: Option<Arc<Slot<T>>>,
    free: Arc<FreeSlots<T>>,
}

impl<T> std::fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Promise")
    }
}

impl<T> Promise<T> {
    /// Gives the future its value and wakes it. A future already dropped
    /// never sees it (the value is dropped when the slot is reused).
    pub fn complete(mut self, value: T) {
        if let Some(slot) = self.slot.take() {
            // SAFETY: until `DONE` is set only this promise touches the
            // value; the future reads it only after it has seen `DONE`.
            unsafe { slot.value.with_mut(|v| *v = Some(value)) };
            self.finish(slot);
        }
    }

    /// Sets `DONE` and wakes the future if its waker is in place.
    fn finish(&self, slot: Arc<Slot<T>>) {
        let before = slot.state.fetch_or(DONE, Ordering::AcqRel);
        if before & WAKER_SET != 0 {
            // SAFETY: the bit was set when `DONE` went in, so the future had
            // finished writing the waker, and it never writes it again once
            // `DONE` is set: only shared reads overlap from here.
            unsafe {
                slot.waker.with(|w| {
                    if let Some(w) = &*w {
                        slot.relay.with(|r| match &*r {
                            Some(relay) => relay.wake(w),
                            None => w.wake_by_ref(),
                        });
                    }
                })
            };
        }
        release(slot, &self.free);
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.finish(slot);
        }
    }
}

/// The promise was dropped without completing (its producer failed or
/// went away).
///
/// ```
/// use gyre_reactor::promise::{PromiseDropped, PromisePool};
/// use std::future::Future;
/// use std::task::{Context, Poll, Waker};
///
/// let pool = PromisePool::<u32>::new(4);
/// let (promise, answer) = pool.promise();
/// // The worker meant to complete it fails instead.
/// std::thread::spawn(move || drop(promise)).join().unwrap();
/// let mut answer = std::pin::pin!(answer);
/// let mut cx = Context::from_waker(Waker::noop());
/// assert_eq!(answer.as_mut().poll(&mut cx), Poll::Ready(Err(PromiseDropped)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the promise was dropped without an answer")]
pub struct PromiseDropped;

/// The awaiting half: resolves to the promise's value, or to
/// [`PromiseDropped`] if the promise was dropped without one. See
/// [`PromisePool`] for an example.
pub struct PromiseFuture<T> {
    slot: Option<Arc<Slot<T>>>,
    free: Arc<FreeSlots<T>>,
    relay: Option<Arc<WakeRelay>>,
}

impl<T> std::fmt::Debug for PromiseFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PromiseFuture")
    }
}

impl<T> PromiseFuture<T> {
    /// Has the promise pass this future's wake-up to `relay`
    /// ([`WakeRelay::wake`]) instead of waking it itself, from the next
    /// poll that leaves a waker (call it before the first).
    ///
    /// ```
    /// use gyre_reactor::promise::PromisePool;
    /// use gyre_reactor::wake_relay::WakeRelay;
    /// use std::future::Future;
    /// use std::task::{Context, Poll, Waker};
    ///
    /// let pool = PromisePool::new(8);
    /// let relay = WakeRelay::new(64); // its `run()` spawned on the executor
    /// let (promise, mut answer) = pool.promise();
    /// answer.wake_through(relay.clone());
    /// let mut answer = std::pin::pin!(answer);
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(answer.as_mut().poll(&mut cx).is_pending());
    /// std::thread::spawn(move || promise.complete(5)).join().unwrap();
    /// assert_eq!(answer.as_mut().poll(&mut cx), Poll::Ready(Ok(5)));
    /// ```
    pub fn wake_through(&mut self, relay: Arc<WakeRelay>) {
        self.relay = Some(relay);
    }

    /// The answer, once `DONE` has been seen; the slot goes back.
    fn take(&mut self) -> Result<T, PromiseDropped> {
        let slot = self.slot.take().expect("taken once");
        // SAFETY: the caller saw `DONE` with acquire ordering, after which
        // the promise never touches the value again.
        let value = unsafe { slot.value.with_mut(|v| (*v).take()) };
        release(slot, &self.free);
        value.ok_or(PromiseDropped)
    }
}

impl<T> Future for PromiseFuture<T> {
    type Output = Result<T, PromiseDropped>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let slot = this
            .slot
            .as_ref()
            .expect("a PromiseFuture polled after it was ready");
        let state = slot.state.load(Ordering::Acquire);
        if state & DONE != 0 {
            return Poll::Ready(this.take());
        }
        if state & WAKER_SET != 0 {
            // SAFETY: while the bit is set nobody writes the waker; the
            // promise may be reading it too, which is a shared read.
            let same = unsafe {
                slot.waker
                    .with(|w| (*w).as_ref().is_some_and(|w| w.will_wake(cx.waker())))
            };
            if same {
                return Poll::Pending;
            }
            if slot.state.fetch_and(!WAKER_SET, Ordering::AcqRel) & DONE != 0 {
                return Poll::Ready(this.take());
            }
        }
        // SAFETY: the bit is clear and `DONE` was not set when we last
        // looked; the promise reads the waker and the relay only if it sees
        // the bit, which we set after these writes.
        unsafe {
            slot.waker.with_mut(|w| *w = Some(cx.waker().clone()));
            slot.relay.with_mut(|r| *r = this.relay.clone());
        }
        if slot.state.fetch_or(WAKER_SET, Ordering::AcqRel) & DONE != 0 {
            return Poll::Ready(this.take());
        }
        Poll::Pending
    }
}

impl<T> Drop for PromiseFuture<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            release(slot, &self.free);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as Count;
    use std::task::Wake;

    struct Unpark(std::thread::Thread, Count);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref()
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.unpark()
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        let waker = Waker::from(std::sync::Arc::new(Unpark(
            std::thread::current(),
            Count::new(0),
        )));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }

    #[test]
    fn a_completed_promise_is_ready_at_once_and_its_slot_comes_back() {
        let pool = PromisePool::new(4);
        let (p, f) = pool.promise();
        p.complete(String::from("x"));
        assert_eq!(block_on(f), Ok("x".to_string()));
        assert_eq!(pool.free_slots(), 1);
        // The reused slot carries nothing of the last answer.
        let (p, f) = pool.promise();
        assert_eq!(pool.free_slots(), 0);
        drop(p);
        assert_eq!(block_on(f), Err(PromiseDropped));
    }

    #[test]
    fn a_dropped_future_leaves_the_value_to_be_dropped_on_reuse() {
        let pool = PromisePool::new(4);
        let value = std::sync::Arc::new(());
        let (p, f) = pool.promise();
        drop(f);
        p.complete(value.clone());
        assert_eq!(std::sync::Arc::strong_count(&value), 1, "value released");
        assert_eq!(pool.free_slots(), 1);
    }

    #[test]
    fn a_changed_waker_is_the_one_woken() {
        let pool = PromisePool::new(4);
        let (p, f) = pool.promise();
        let mut f = Box::pin(f);
        let first = std::sync::Arc::new(Unpark(std::thread::current(), Count::new(0)));
        let second = std::sync::Arc::new(Unpark(std::thread::current(), Count::new(0)));
        let w1 = Waker::from(first.clone());
        let w2 = Waker::from(second.clone());
        assert!(f.as_mut().poll(&mut Context::from_waker(&w1)).is_pending());
        assert!(f.as_mut().poll(&mut Context::from_waker(&w2)).is_pending());
        p.complete(7u8);
        assert_eq!(first.1.load(std::sync::atomic::Ordering::Relaxed), 0);
        assert_eq!(second.1.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(
            f.as_mut().poll(&mut Context::from_waker(&w2)),
            Poll::Ready(Ok(7))
        );
    }

    #[test]
    fn the_pool_keeps_no_more_than_it_may() {
        let pool = PromisePool::new(2);
        let pairs: Vec<_> = (0..5).map(|_| pool.promise()).collect();
        for (p, f) in pairs {
            p.complete(1u8);
            drop(f);
        }
        assert_eq!(pool.free_slots(), 2);
    }

    /// Four long-lived threads complete 200 000 promises, handed to them
    /// in waves of 64 and awaited on this thread: every answer arrives
    /// once, to its own future, and the slots are reused (a race that
    /// double-used a slot would hand a future another's answer).
    #[test]
    fn stress_every_answer_reaches_its_own_future() {
        const THREADS: usize = 4;
        const N: u64 = 200_000;
        const WAVE: u64 = 64;
        let pool = PromisePool::<u64>::new(1024);
        let (senders, workers): (Vec<_>, Vec<_>) = (0..THREADS)
            .map(|_| {
                let (tx, rx) = std::sync::mpsc::channel::<(u64, Promise<u64>)>();
                let worker = std::thread::spawn(move || {
                    for (id, p) in rx {
                        p.complete(id * 3);
                    }
                });
                (tx, worker)
            })
            .unzip();
        let (mut sum, mut seen, mut next) = (0u64, 0u64, 0u64);
        while next < N {
            let wave = WAVE.min(N - next);
            let futures: Vec<_> = (next..next + wave)
                .map(|id| {
                    let (p, f) = pool.promise();
                    senders[id as usize % THREADS].send((id, p)).unwrap();
                    (id, f)
                })
                .collect();
            next += wave;
            for (id, f) in futures {
                let got = block_on(f).expect("answered");
                assert_eq!(got, id * 3, "future {id} got another's answer");
                sum += got;
                seen += 1;
            }
        }
        drop(senders);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(seen, N);
        assert_eq!(sum, 3 * N * (N - 1) / 2);
        assert!(pool.free_slots() >= WAVE as usize / 2, "slots reused");
    }
}
