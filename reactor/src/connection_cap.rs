//! A cap on the connections open at once through the listeners that share
//! it (Kafka's `max.connections`, nginx's `worker_connections`):
//! [`ConnectionCap`]. A listener at its cap accepts nothing more: new
//! connections wait in the kernel's backlog (where they hold no
//! descriptor, and a full backlog slows clients down) until a connection
//! closes. Each accepted connection holds a [`CapSlot`], given back when
//! its channel closes. A cap may sit [`within`](ConnectionCap::within)
//! another (Kafka's per-listener `listener.name.X.max.connections` under
//! the broker's `max.connections`): a slot is then taken from each, inner
//! first, and the inner one given back if the outer is full. Each count
//! is one atomic, taken with a compare-exchange loop per accept; nothing
//! else is published through it, so relaxed ordering serves for the
//! count itself.
//!
//! A listener at its cap leaves a waker with the cap (with every cap of
//! the chain) and is woken by the next place given back. The two sides
//! meet as in Dekker's algorithm: the listener marks the cap as waited on
//! and then reads the count again; a closing channel lowers the count and
//! then reads the mark. Each puts a sequentially consistent fence between
//! its write and its read, so at least one sees the other: the listener
//! finds the room itself, or the closer finds the waker and calls it. A
//! lost wake-up would leave the backlog waiting until some later close;
//! `loom-tests/tests/connection_cap.rs` checks that none is lost. The
//! waker list is behind a mutex, taken only by a listener at its cap and
//! by a close that finds the mark set, never on an accept with room. Uses
//! the crate's atomics and mutex.

use crate::sync::{fence, Arc, AtomicBool, AtomicUsize, Mutex, Ordering};

/// What a full cap calls when a place is given back: it asks the waiting
/// listener's loop to accept again. A `std` `Arc` in loom builds too: the
/// callback is the caller's, not part of the protocol.
pub type CapWaker = std::sync::Arc<dyn Fn() + Send + Sync>;

/// The most connections open at once through every listener given this
/// cap (or a clone of it), with
/// [`ListenOptions::connection_cap`](crate::ListenOptions::connection_cap).
///
/// At the cap a listener stops accepting; connections that arrive wait
/// in the kernel's backlog and are accepted, in order, as open ones
/// close (the close wakes the listener's loop). On io_uring, accepts
/// already in the ring when the cap is reached still complete, and their
/// connections (at most a turn's share) wait, accepted but unserved, for
/// a slot.
///
/// ```
/// use gyre_reactor::{ConnectionCap, ListenOptions, Pipeline, ServerBootstrap};
///
/// // Two listeners, 10,000 connections between them.
/// let cap = ConnectionCap::new(10_000);
/// let opts = ListenOptions::default().connection_cap(&cap);
/// let plain = ServerBootstrap::new()
///     .listen_options(opts.clone())
///     .bind("127.0.0.1:0", |_peer| Pipeline::new())?;
/// let admin = ServerBootstrap::new()
///     .listen_options(opts)
///     .bind("127.0.0.1:0", |_peer| Pipeline::new())?;
/// assert_eq!((cap.max(), cap.open()), (10_000, 0));
/// # plain.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # admin.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionCap {
    inner: Arc<Count>,
}

struct Count {
    max: usize,
    open: AtomicUsize,
    /// The cap this one sits within, whose slot each of its slots holds.
    outer: Option<Arc<Count>>,
    /// Set while `waiters` holds a waker (changed only under its lock).
    waited_on: AtomicBool,
    /// Listeners at the cap, woken by the next place given back.
    waiters: Mutex<Vec<CapWaker>>,
}

impl std::fmt::Debug for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Count")
            .field("max", &self.max)
            .field("open", &self.open)
            .field("outer", &self.outer)
            .field("waited_on", &self.waited_on)
            .finish_non_exhaustive()
    }
}

impl Count {
    /// Takes one place here and in every cap this one sits within, or
    /// none: a place taken here is given back if an outer cap is full.
    fn take(&self) -> bool {
        let max = self.max;
        let taken = self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
                (open < max).then_some(open + 1)
            })
            .is_ok();
        if taken && !self.outer.as_ref().is_none_or(|o| o.take()) {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        taken
    }

    /// Gives one place back here and in every cap this one sits within,
    /// waking the listeners that wait on each.
    fn give_back(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        // The closer's half of the pairing (module docs): the count is
        // lowered before the mark is read.
        fence(Ordering::SeqCst);
        if self.waited_on.load(Ordering::Relaxed) {
            let woken = {
                let mut waiters = lock(&self.waiters);
                self.waited_on.store(false, Ordering::Relaxed);
                std::mem::take(&mut *waiters)
            };
            for wake in woken {
                wake();
            }
        }
        if let Some(o) = &self.outer {
            o.give_back();
        }
    }

    /// Leaves `waker` here and in every cap this one sits within.
    fn wait(&self, waker: &CapWaker) {
        {
            let mut waiters = lock(&self.waiters);
            waiters.push(waker.clone());
            self.waited_on.store(true, Ordering::Relaxed);
        }
        if let Some(o) = &self.outer {
            o.wait(waker);
        }
    }

    fn has_room(&self) -> bool {
        self.open.load(Ordering::Relaxed) < self.max
            && self.outer.as_ref().is_none_or(|o| o.has_room())
    }
}

/// The lock, through a poisoning: the list is plain wakers, whole after
/// any panic (a waker that panicked was already taken out).
fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ConnectionCap {
    /// A cap of `max` connections open at once (at least 1).
    pub fn new(max: usize) -> Self {
        ConnectionCap {
            inner: Arc::new(Count {
                max: max.max(1),
                open: AtomicUsize::new(0),
                outer: None,
                waited_on: AtomicBool::new(false),
                waiters: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A cap of `max` connections within `outer`: a connection through a
    /// listener given this cap counts against both, and waits while
    /// either is full. Kafka's per-listener limit under its broker-wide
    /// one.
    ///
    /// ```
    /// use gyre_reactor::ConnectionCap;
    ///
    /// let broker = ConnectionCap::new(3);
    /// let admin = ConnectionCap::within(&broker, 1);
    /// let a = admin.try_take().expect("room in both");
    /// assert!(admin.try_take().is_none(), "the listener's cap is full");
    /// drop(a);
    /// let others = [broker.try_take(), broker.try_take(), broker.try_take()];
    /// assert_eq!(broker.open(), 3);
    /// assert!(admin.try_take().is_none(), "the broker's cap is full");
    /// drop(others);
    /// assert!(admin.try_take().is_some());
    /// ```
    pub fn within(outer: &ConnectionCap, max: usize) -> Self {
        ConnectionCap {
            inner: Arc::new(Count {
                max: max.max(1),
                open: AtomicUsize::new(0),
                outer: Some(outer.inner.clone()),
                waited_on: AtomicBool::new(false),
                waiters: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.inner.max
    }

    /// Connections open through the listeners that share it now.
    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// Whether a connection may be accepted now (io_uring asks before it
    /// pushes accepts ahead of the loop).
    #[cfg_attr(not(feature = "io-uring"), allow(dead_code))]
    pub(crate) fn has_room(&self) -> bool {
        self.inner.has_room()
    }

    /// For a listener at the cap: leaves `waker` to be called when a place
    /// is given back, then looks again. `true` if there is room now (the
    /// caller takes it at once; the waker may still be called, for
    /// nothing). Public only for the loom model.
    #[doc(hidden)]
    pub fn wait_for_room(&self, waker: &CapWaker) -> bool {
        self.inner.wait(waker);
        // The listener's half of the pairing (module docs): every mark is
        // set before any count is read.
        fence(Ordering::SeqCst);
        self.inner.has_room()
    }

    /// A slot for one more connection, if the cap leaves one. Public
    /// only for the loom model.
    #[doc(hidden)]
    pub fn try_take(&self) -> Option<CapSlot> {
        self.inner.take().then(|| CapSlot {
            count: self.inner.clone(),
        })
    }
}

/// One open connection's place under a [`ConnectionCap`], given back when
/// dropped.
#[derive(Debug)]
#[doc(hidden)]
pub struct CapSlot {
    count: Arc<Count>,
}

impl Drop for CapSlot {
    fn drop(&mut self) {
        self.count.give_back();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn slots_stop_at_the_cap_and_come_back_when_dropped() {
        let cap = ConnectionCap::new(2);
        let a = cap.try_take().unwrap();
        let _b = cap.clone().try_take().unwrap();
        assert!(cap.try_take().is_none());
        assert!(!cap.has_room());
        drop(a);
        assert_eq!(cap.open(), 1);
        assert!(cap.try_take().is_some());
    }

    #[test]
    fn a_cap_within_another_counts_against_both() {
        let outer = ConnectionCap::new(3);
        let inner = ConnectionCap::within(&outer, 2);
        let a = inner.try_take().unwrap();
        let b = inner.try_take().unwrap();
        assert!(inner.try_take().is_none() && !inner.has_room());
        assert_eq!(outer.open(), 2);
        let c = outer.try_take().unwrap();
        drop(a);
        let d = outer.try_take().unwrap();
        assert!(inner.try_take().is_none(), "the outer cap is full");
        assert!(!inner.has_room());
        assert_eq!(inner.open(), 1, "the refused take was given back");
        drop((c, d));
        let _d = inner.try_take().unwrap();
        drop(b);
        assert_eq!((inner.open(), outer.open()), (1, 1));
    }

    #[test]
    fn threads_racing_for_nested_slots_never_pass_either_cap() {
        let outer = ConnectionCap::new(48);
        let inner = ConnectionCap::within(&outer, 32);
        let threads: Vec<_> = (0..4)
            .map(|i| {
                // Two threads take through the inner cap, two straight
                // from the outer one.
                let cap = if i % 2 == 0 {
                    inner.clone()
                } else {
                    outer.clone()
                };
                let (inner, outer) = (inner.clone(), outer.clone());
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    let (mut most_in, mut most_out) = (0, 0);
                    for i in 0..100_000 {
                        if let Some(slot) = cap.try_take() {
                            held.push(slot);
                        }
                        most_in = most_in.max(inner.open());
                        most_out = most_out.max(outer.open());
                        if i % 3 == 0 {
                            held.pop();
                        }
                    }
                    (most_in, most_out)
                })
            })
            .collect();
        for t in threads {
            let (most_in, most_out) = t.join().unwrap();
            assert!(most_in <= 32 && most_out <= 48, "{most_in} {most_out}");
        }
        assert_eq!((inner.open(), outer.open()), (0, 0), "a slot was lost");
    }

    #[test]
    fn threads_racing_for_slots_never_pass_the_cap() {
        let cap = ConnectionCap::new(64);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let cap = cap.clone();
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    let mut most = 0;
                    for i in 0..100_000 {
                        if let Some(slot) = cap.try_take() {
                            held.push(slot);
                        }
                        most = most.max(cap.open());
                        if i % 3 == 0 {
                            held.pop();
                        }
                    }
                    most
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap() <= 64, "passed the cap");
        }
        assert_eq!(cap.open(), 0, "a slot was lost or given back twice");
    }

    #[test]
    fn every_wait_at_the_cap_ends_in_room_or_a_wake() {
        // Two closers take and give back the cap's one place as fast as
        // they can; a listener thread takes when it can and otherwise
        // leaves its waker and waits to be woken. Every wait must end: a
        // lost wake-up (a close that missed the waker while the listener
        // missed the room) leaves it waiting until the closers stop, and
        // then for good, as no close is left to wake it.
        use std::sync::atomic::AtomicU64;
        use std::sync::{Condvar, Mutex as StdMutex};
        let cap = ConnectionCap::new(1);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let closers: Vec<_> = (0..2)
            .map(|_| {
                let (cap, stop) = (cap.clone(), stop.clone());
                std::thread::spawn(move || {
                    // Each holds a place most of the time, so the cap is
                    // often full, and gives it back briefly.
                    while !stop.load(Ordering::Relaxed) {
                        let slot = cap.try_take();
                        for _ in 0..200 {
                            std::hint::spin_loop();
                        }
                        drop(slot);
                    }
                })
            })
            .collect();
        let woken = std::sync::Arc::new((StdMutex::new(false), Condvar::new()));
        let wakes = std::sync::Arc::new(AtomicU64::new(0));
        let waker: CapWaker = {
            let (woken, wakes) = (woken.clone(), wakes.clone());
            std::sync::Arc::new(move || {
                wakes.fetch_add(1, Ordering::Relaxed);
                *woken.0.lock().unwrap() = true;
                woken.1.notify_one();
            })
        };
        let (mut taken, mut waited) = (0u64, 0u64);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while waited < 2_000 && std::time::Instant::now() < deadline {
            if let Some(slot) = cap.try_take() {
                taken += 1;
                drop(slot);
                continue;
            }
            waited += 1;
            *woken.0.lock().unwrap() = false;
            if cap.wait_for_room(&waker) {
                continue;
            }
            let guard = woken.0.lock().unwrap();
            let (guard, timeout) = woken
                .1
                .wait_timeout_while(guard, std::time::Duration::from_secs(5), |w| !*w)
                .unwrap();
            assert!(
                !timeout.timed_out() && *guard,
                "a wait at the cap was never woken"
            );
        }
        stop.store(true, Ordering::Relaxed);
        for c in closers {
            c.join().unwrap();
        }
        eprintln!(
            "taken {taken}, waited {waited}, wakes {}",
            wakes.load(Ordering::Relaxed)
        );
        assert!(taken > 0);
        assert_eq!(cap.open(), 0);
    }
}
