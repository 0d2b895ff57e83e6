//! A cap on the connections open at once through the listeners that share
//! it (Kafka's `max.connections`, nginx's `worker_connections`):
//! [`ConnectionCap`]. A listener at its cap accepts nothing more: new
//! connections wait in the kernel's backlog (where they hold no
//! descriptor, and a full backlog slows clients down) until a connection
//! closes. Each accepted connection holds a [`CapSlot`], given back when
//! its channel closes. The count is one atomic, taken with a
//! compare-exchange loop per accept; nothing else is published through
//! it, so relaxed ordering serves. Uses the crate's atomics.

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
}

impl ConnectionCap {
    /// A cap of `max` connections open at once (at least 1).
    pub fn new(max: usize) -> Self {
        ConnectionCap {
            inner: Arc::new(Count {
                max: max.max(1),
                open: AtomicUsize::new(0),
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
        self.open() < self.inner.max
    }

    /// A slot for one more connection, if the cap leaves one. Public
    /// only for the loom model.
    #[doc(hidden)]
    pub fn try_take(&self) -> Option<CapSlot> {
        let max = self.inner.max;
        self.inner
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()
            .map(|_| CapSlot {
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
        self.count.open.fetch_sub(1, Ordering::Relaxed);
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
