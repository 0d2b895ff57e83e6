//! `EventLoopGroup`: N loops, a round-robin chooser, graceful shutdown.

use crate::loop_handle::EventLoop;
use crate::metrics::LoopMetrics;
use crate::transport::Transport;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};
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
    /// The loops' threads, to tell a call made on one of them.
    thread_ids: Vec<ThreadId>,
}

impl std::fmt::Debug for EventLoopGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoopGroup")
            .field("loops", &self.inner.loops.len())
            .finish()
    }
}

impl EventLoopGroup {
    /// `threads` loops named `gyre-loop-<i>`. A group has at least one
    /// loop: `0` is taken as `1` (as [`EventLoopGroupBuilder::threads`]
    /// does); size it from [`std::thread::available_parallelism`] for one
    /// loop per core, Netty's default being two per core.
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
        Self::builder().threads(threads).name(prefix).build()
    }

    /// A builder, for the thread count, names and [`Transport`].
    ///
    /// ```
    /// use gyre_reactor::{EventLoopGroup, Transport};
    ///
    /// let group = EventLoopGroup::builder()
    ///     .threads(2)
    ///     .name("io")
    ///     .transport(Transport::Auto)
    ///     .auto_prefers(Transport::IoUring) // io_uring if the kernel has it
    ///     .build()
    ///     .unwrap();
    /// println!("running on {}", group.transport());
    /// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// ```
    pub fn builder() -> EventLoopGroupBuilder {
        EventLoopGroupBuilder::default()
    }

    /// The transport the loops run on (never `Auto`: what it chose).
    pub fn transport(&self) -> Transport {
        self.inner.loops[0].transport()
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

    /// Whether the calling thread is one of this group's loops (Netty's
    /// `inEventLoop`): code that may run on a loop or off it can tell
    /// whether it may wait for the group.
    ///
    /// ```
    /// use gyre_reactor::EventLoopGroup;
    /// use std::sync::mpsc;
    ///
    /// let group = EventLoopGroup::new(1).unwrap();
    /// assert!(!group.in_event_loop());
    /// let (tx, rx) = mpsc::channel();
    /// let same = group.clone();
    /// group.next().execute(move || tx.send(same.in_event_loop()).unwrap()).unwrap();
    /// assert!(rx.recv().unwrap());
    /// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// ```
    pub fn in_event_loop(&self) -> bool {
        let me = std::thread::current().id();
        self.inner.thread_ids.contains(&me)
    }

    /// The sum of every loop's counters (see [`EventLoop::metrics`] for
    /// one loop's). Asks each loop in turn, so call it off the loop threads.
    ///
    /// # Errors
    /// [`Error::LoopShutDown`](crate::Error::LoopShutDown) once a loop has
    /// stopped; [`Error::WouldBlockLoop`](crate::Error::WouldBlockLoop) on
    /// any event loop's thread (it would block that loop, and wait for
    /// itself on one of this group's).
    pub fn metrics(&self) -> Result<LoopMetrics, crate::Error> {
        crate::loop_thread::refuse_to_wait("EventLoopGroup::metrics")?;
        self.inner.loops.iter().map(EventLoop::metrics).sum()
    }

    /// Asks every loop to shut down (see
    /// [`shutdown_gracefully`](Self::shutdown_gracefully)) and returns at
    /// once.
    pub(crate) fn request_shutdown(&self, quiet: Duration, timeout: Duration) {
        for lp in &self.inner.loops {
            let _ = lp.execute_inner(move |inner| inner.begin_shutdown(quiet, timeout));
        }
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
    /// Called on an event loop's thread (from a handler, a task or a
    /// timer; this group's or another's), it only begins the shutdown and
    /// returns at once: a loop cannot wait for its own end, and must not
    /// block waiting for others. The loops then stop as above; a call from
    /// any other thread waits for them.
    ///
    /// ```
    /// use gyre_reactor::EventLoopGroup;
    /// use std::time::Duration;
    ///
    /// let group = EventLoopGroup::new(2).unwrap();
    /// let same = group.clone();
    /// // From a loop thread: begins, does not wait (and does not deadlock).
    /// group.next().execute(move || same.shutdown_gracefully(Duration::ZERO, Duration::ZERO)).unwrap();
    /// // From here: waits for both loops to end.
    /// group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
    /// assert!(group.loops().iter().all(|l| !l.is_alive()));
    /// ```
    pub fn shutdown_gracefully(&self, quiet: Duration, timeout: Duration) {
        self.request_shutdown(quiet, timeout);
        if crate::loop_thread::is_event_loop_thread() {
            return;
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
        // (Not `EventLoopGroup::request_shutdown`: there is no group left.)
        // The last handle is gone: nobody can reach these loops any more, so
        // stop them (without blocking: this may run on one of them).
        for lp in &self.loops {
            let _ = lp.execute_inner(|inner| inner.begin_shutdown(Duration::ZERO, Duration::ZERO));
        }
    }
}

/// Configures an [`EventLoopGroup`].
///
/// ```
/// use gyre_reactor::{EventLoopGroup, Transport};
///
/// let group = EventLoopGroup::builder()
///     .threads(2)
///     .name("front")
///     .transport(Transport::Epoll)
///     .build()?;
/// assert_eq!(group.len(), 2);
/// group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct EventLoopGroupBuilder {
    threads: usize,
    name: String,
    transport: Transport,
    auto_prefers: Transport,
    busy_poll: Duration,
    pin: bool,
}

impl Default for EventLoopGroupBuilder {
    fn default() -> Self {
        EventLoopGroupBuilder {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            name: "gyre-loop".into(),
            transport: Transport::Epoll,
            auto_prefers: Transport::Epoll,
            busy_poll: Duration::ZERO,
            pin: false,
        }
    }
}

impl EventLoopGroupBuilder {
    /// Number of loops (default: one per CPU; at least one).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Thread name prefix: threads are `<name>-<i>` (default `gyre-loop`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    /// The kernel interface (default [`Transport::Epoll`]).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// What [`Transport::Auto`] tries first (default
    /// [`Transport::Epoll`]: on the benchmarks in `BENCHMARKS.md` io_uring
    /// does not yet beat epoll). With [`Transport::IoUring`], `Auto` takes
    /// io_uring where the kernel allows it and falls back to epoll, with a
    /// warning, where it does not. (`Auto` here means `Epoll`.)
    pub fn auto_prefers(mut self, transport: Transport) -> Self {
        self.auto_prefers = transport;
        self
    }

    /// Busy-poll window (default zero: off). A loop that has had input
    /// within this long polls without sleeping (`epoll_wait` with a zero
    /// timeout, or an io_uring submit that does not wait) instead of blocking,
    /// so the next message finds it running: no wake-up of a sleeping thread
    /// (on a VM, an inter-processor interrupt through the hypervisor) sits in
    /// its path. Once the loop has been quiet for the window it sleeps again.
    ///
    /// This is the trade Netty's busy-wait select strategy and Aeron's
    /// busy-spin idle strategy make: while traffic flows, each loop keeps a
    /// core at 100%. Use it for latency-critical servers with a core per
    /// loop to spare; leave it off when the loops share cores with other
    /// work, which the spinning would starve.
    ///
    /// ```
    /// use gyre_reactor::EventLoopGroup;
    /// use std::time::Duration;
    /// let group = EventLoopGroup::builder()
    ///     .threads(1)
    ///     .busy_poll(Duration::from_micros(200))
    ///     .build()?;
    /// # group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn busy_poll(mut self, window: Duration) -> Self {
        self.busy_poll = window;
        self
    }

    /// Pin loop `i` to the `i`-th CPU this process may run on (wrapping
    /// around), as thread-per-core servers do (default off).
    ///
    /// A pinned loop keeps its caches and is never moved next to a thread
    /// that woke it (the scheduler's habit of waking a thread on the
    /// waker's CPU can queue a loop behind a busy thread there for a whole
    /// time slice). Size the group to the cores you give it, and keep other
    /// busy threads off those cores; a CPU that cannot be had leaves its
    /// loop unpinned, with a warning.
    ///
    /// ```
    /// use gyre_reactor::EventLoopGroup;
    /// let group = EventLoopGroup::builder().threads(1).pin_to_cores(true).build()?;
    /// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pin_to_cores(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// Starts the loops.
    ///
    /// # Errors
    /// If the OS refuses a poller, ring, waker or thread; with
    /// [`Transport::IoUring`], if io_uring is unavailable (the error says
    /// why: `Unsupported` kind).
    pub fn build(self) -> std::io::Result<EventLoopGroup> {
        let transport = resolve(self.transport, self.auto_prefers)?;
        let mut loops = Vec::with_capacity(self.threads);
        let mut handles = Vec::with_capacity(self.threads);
        let cpus = if self.pin { allowed_cpus() } else { Vec::new() };
        for i in 0..self.threads {
            let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            let (lp, handle) = EventLoop::start_thread(
                i,
                format!("{}-{i}", self.name),
                transport,
                self.busy_poll,
                cpu,
            )?;
            loops.push(lp);
            handles.push(handle);
        }
        Ok(EventLoopGroup {
            inner: Arc::new(GroupInner {
                loops,
                next: AtomicUsize::new(0),
                thread_ids: handles.iter().map(|h| h.thread().id()).collect(),
                threads: Mutex::new(handles),
            }),
        })
    }
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a zeroed cpu_set_t that sched_getaffinity fills
    // (it writes at most `size_of` bytes); CPU_ISSET reads one bit of it,
    // bounds-checked against the set's size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Turns a requested transport into the one the loops will run.
fn resolve(requested: Transport, auto_prefers: Transport) -> std::io::Result<Transport> {
    let unsupported = |why: String| {
        std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("io_uring transport unavailable: {why}"),
        )
    };
    match requested {
        Transport::Epoll => Ok(Transport::Epoll),
        Transport::IoUring => uring_probe()
            .map(|()| Transport::IoUring)
            .map_err(unsupported),
        Transport::Auto if auto_prefers != Transport::IoUring => Ok(Transport::Epoll),
        Transport::Auto => match uring_probe() {
            Ok(()) => Ok(Transport::IoUring),
            Err(why) => {
                tracing::warn!(reason = %why, "io_uring unavailable; falling back to epoll");
                Ok(Transport::Epoll)
            }
        },
    }
}

#[cfg(feature = "io-uring")]
fn uring_probe() -> Result<(), String> {
    // On a thread of its own: a ring ties itself to the thread that makes
    // it, and the caller's thread should stay free of io_uring.
    std::thread::spawn(crate::uring::probe)
        .join()
        .unwrap_or_else(|_| Err("io_uring probe panicked".into()))
}

#[cfg(not(feature = "io-uring"))]
fn uring_probe() -> Result<(), String> {
    Err("gyre-reactor was built without the io-uring feature".into())
}
