//! `EventLoopGroup`: N loops, a round-robin chooser, graceful shutdown.

use crate::event_loop::EventLoop;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A group of event loops, each on its own thread.
///
/// Cloning is cheap and shares the group. Connections are spread over the
/// loops round-robin ([`next`](Self::next)).
///
/// ```
/// use gyre_reactor::EventLoopGroup;
/// use std::time::Duration;
///
/// let group = EventLoopGroup::new(2).unwrap();
/// assert_eq!(group.len(), 2);
/// assert_ne!(group.next().index(), group.next().index());
/// group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
/// assert!(!group.loops()[0].is_alive());
/// ```
#[derive(Clone)]
pub struct EventLoopGroup {
    inner: Arc<GroupInner>,
}

struct GroupInner {
    loops: Vec<EventLoop>,
    next: AtomicUsize,
    /// Taken by the first shutdown, which joins them; not on any data path.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for EventLoopGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoopGroup")
            .field("loops", &self.inner.loops.len())
            .finish()
    }
}

impl EventLoopGroup {
    /// `threads` loops named `gyre-loop-<i>`.
    ///
    /// # Errors
    /// If the OS refuses a poller, waker or thread.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        Self::with_name(threads, "gyre-loop")
    }

    /// `threads` loops named `<prefix>-<i>`.
    ///
    /// # Errors
    /// If the OS refuses a poller, waker or thread.
    pub fn with_name(threads: usize, prefix: &str) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let mut loops = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let (lp, handle) = EventLoop::spawn(i, format!("{prefix}-{i}"))?;
            loops.push(lp);
            handles.push(handle);
        }
        Ok(EventLoopGroup {
            inner: Arc::new(GroupInner {
                loops,
                next: AtomicUsize::new(0),
                threads: Mutex::new(handles),
            }),
        })
    }

    /// Number of loops.
    pub fn len(&self) -> usize {
        self.inner.loops.len()
    }

    /// Always false: a group has at least one loop.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The next loop, round-robin.
    pub fn next(&self) -> &EventLoop {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed);
        &self.inner.loops[i % self.inner.loops.len()]
    }

    /// Every loop, in index order.
    pub fn loops(&self) -> &[EventLoop] {
        &self.inner.loops
    }

    pub(crate) fn same_group(&self, other: &EventLoopGroup) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Shuts every loop down and returns when their threads have ended.
    ///
    /// Each loop stops accepting at once, then keeps serving its channels
    /// until it has seen `quiet` with no I/O, no task and nothing queued to
    /// write, or until `timeout` has passed; then it closes what is left
    /// (giving each socket what it will take right away) and its thread
    /// exits. A second call, or a call on a clone, waits for the same end.
    ///
    /// Must not be called from one of the group's own loop threads.
    pub fn shutdown_gracefully(&self, quiet: Duration, timeout: Duration) {
        for lp in &self.inner.loops {
            let _ = lp.execute_inner(move |inner| inner.begin_shutdown(quiet, timeout));
        }
        let handles = std::mem::take(&mut *self.inner.threads.lock().expect("poisoned"));
        for h in handles {
            let _ = h.join();
        }
        // A concurrent caller that found the list empty waits here too.
        while self.inner.loops.iter().any(EventLoop::is_alive) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for GroupInner {
    fn drop(&mut self) {
        // The last handle is gone: nobody can reach these loops any more, so
        // stop them (without blocking: this may run on one of them).
        for lp in &self.loops {
            let _ = lp.execute_inner(|inner| inner.begin_shutdown(Duration::ZERO, Duration::ZERO));
        }
    }
}
