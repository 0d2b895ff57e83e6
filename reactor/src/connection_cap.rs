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
//! else is published through it, so relaxed ordering serves. Uses the
//! crate's atomics.

use crate::sync::{Arc, AtomicUsize, Ordering};
use std::time::Duration;

/// How often a listener at its cap looks for a slot given back: a closed
/// connection's place is taken within this long.
pub(crate) const CAP_RETRY: Duration = Duration::from_millis(10);

/// The most connections open at once through every listener given this
/// cap (or a clone of it), with
/// [`ListenOptions::connection_cap`](crate::ListenOptions::connection_cap).
///
/// At the cap a listener stops accepting; connections that arrive wait
/// in the kernel's backlog and are accepted, in order, as open ones
/// close (a listener at its cap looks every 10 ms). On io_uring, accepts
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

#[derive(Debug)]
struct Count {
    max: usize,
    open: AtomicUsize,
    /// The cap this one sits within, whose slot each of its slots holds.
    outer: Option<Arc<Count>>,
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

    /// Gives one place back here and in every cap this one sits within.
    fn give_back(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(o) = &self.outer {
            o.give_back();
        }
    }

    fn has_room(&self) -> bool {
        self.open.load(Ordering::Relaxed) < self.max
            && self.outer.as_ref().is_none_or(|o| o.has_room())
    }
}

impl ConnectionCap {
    /// A cap of `max` connections open at once (at least 1).
    pub fn new(max: usize) -> Self {
        ConnectionCap {
            inner: Arc::new(Count {
                max: max.max(1),
                open: AtomicUsize::new(0),
                outer: None,
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
}
