//! The public handle of one event loop ([`EventLoop`]): starting its
//! thread, running and scheduling tasks on it, asking it questions. Every
//! call crosses to the loop's thread through its shared queue. Uses the
//! loop's state (`event_loop`) and what it shares with other threads.

use crate::driver::Driver;
use crate::error::Error;
use crate::event_loop::{LoopInner, Shared};
use crate::loop_shared::{LoopShared, Wake};
use crate::mailbox::Doorbell;
use crate::metrics::LoopMetrics;
use crate::task_table::TaskFn;
use crate::token;
use crate::transport::Transport;
use crossbeam_queue::SegQueue;
use mio::{Poll, Waker};
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

thread_local! {
    /// The loop this thread runs, set as the loop's thread starts (a
    /// handle does not keep its loop running: that is the group's).
    static CURRENT: std::cell::RefCell<Option<EventLoop>> = const { std::cell::RefCell::new(None) };
}

/// Makes the ring of an io_uring loop, on the loop's own thread.
#[cfg(feature = "io-uring")]
fn ring_driver(shared: &Shared) -> io::Result<Driver> {
    use std::os::fd::AsRawFd;
    let Wake::EventFd(fd) = &shared.waker else {
        unreachable!("an io_uring loop wakes through an eventfd");
    };
    let ring = crate::uring::UringDriver::new(1024, fd.as_raw_fd())?;
    Ok(Driver::Uring(Box::new(ring)))
}

#[cfg(not(feature = "io-uring"))]
fn ring_driver(_: &Shared) -> io::Result<Driver> {
    unreachable!("io_uring loops exist only with the io-uring feature")
}

/// A handle to one event loop: run tasks on it, schedule timers, and start
/// connections on it.
///
/// ```
/// use gyre_reactor::EventLoopGroup;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let group = EventLoopGroup::new(1)?;
/// let lp = group.next();
/// let ticks = Arc::new(AtomicU32::new(0));
/// let t = ticks.clone();
/// // A repeating task on the loop's own thread, cancelled from here.
/// let task = lp.schedule_repeating(Duration::from_millis(1), Duration::from_millis(1), move || {
///     t.fetch_add(1, Ordering::Relaxed);
/// })?;
/// while ticks.load(Ordering::Relaxed) < 3 {
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// task.cancel();
/// assert_eq!(lp.channel_count()?, 0);
/// group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct EventLoop {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("index", &self.shared.index)
            .field("alive", &self.is_alive())
            .finish()
    }
}

/// A task scheduled on a loop, which can be cancelled from any thread.
///
/// ```
/// use gyre_reactor::EventLoopGroup;
/// use std::time::Duration;
///
/// let group = EventLoopGroup::new(1)?;
/// let task = group.next().schedule(Duration::from_secs(60), || unreachable!("cancelled"))?;
/// task.cancel();
/// assert!(task.is_cancelled());
/// group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ScheduledTask {
    cancelled: Arc<AtomicBool>,
}

impl ScheduledTask {
    /// Stops the task from running (again). Returns immediately; a run
    /// already in progress finishes.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

impl EventLoop {
    /// Starts a loop on a new thread named `name`, on `transport` (already
    /// resolved: `Epoll` or `IoUring`).
    pub(crate) fn start_thread(
        index: usize,
        name: String,
        transport: Transport,
        busy_poll: Duration,
        cpu: Option<usize>,
    ) -> io::Result<(EventLoop, std::thread::JoinHandle<()>)> {
        let (waker, driver, poll) = match transport {
            #[cfg(feature = "io-uring")]
            Transport::IoUring => {
                // Blocking on purpose: the ring waits on it for us, and a
                // non-blocking read would complete at once with EAGAIN.
                let fd = crate::eventfd::open(false)?;
                // The ring itself is made on the loop's thread (below): a
                // ring ties itself to the thread that creates it, and the
                // caller's thread must not get io_uring's notifications
                // (they interrupt its blocking calls with EINTR).
                (Wake::EventFd(fd), None, None)
            }
            _ => {
                let poll = Poll::new()?;
                let waker = Waker::new(poll.registry(), token::WAKER)?;
                let registry = poll.registry().try_clone()?;
                (Wake::Mio(waker), Some(Driver::Epoll(registry)), Some(poll))
            }
        };
        let shared = Arc::new(LoopShared {
            waker,
            doorbell: Doorbell::new(),
            inbox: SegQueue::new(),
            tasks: SegQueue::new(),
            alive: AtomicBool::new(true),
            index,
            transport,
            registry: match &driver {
                Some(Driver::Epoll(registry)) => Some(registry.try_clone()?),
                _ => None,
            },
        });
        let loop_shared = shared.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            if let Some(cpu) = cpu {
                pin_to_cpu(cpu);
            }
            let driver = match driver {
                Some(driver) => driver,
                None => match ring_driver(&loop_shared) {
                    Ok(driver) => driver,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                },
            };
            let _ = ready_tx.send(Ok(()));
            crate::loop_thread::mark(loop_shared.id());
            CURRENT.with(|c| {
                *c.borrow_mut() = Some(EventLoop {
                    shared: loop_shared.clone(),
                })
            });
            LoopInner::new(driver, loop_shared, busy_poll).run(poll)
        })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok((EventLoop { shared }, thread)),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(io::Error::other("event loop thread died while starting")),
        }
    }

    /// The transport this loop runs on (`Epoll` or `IoUring`).
    pub fn transport(&self) -> Transport {
        self.shared.transport
    }

    /// This loop's position in its group.
    pub fn index(&self) -> usize {
        self.shared.index
    }

    /// Whether the loop is still running.
    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::Acquire)
    }

    /// Runs `f` on the loop's thread, soon: tasks run in the order they
    /// came, each turn of the loop running those that were waiting when
    /// it began. A task that executes another (a long job cut into steps)
    /// so gets one step a turn, with the loop's sockets served between
    /// them, rather than holding the loop until it stops.
    ///
    /// ```
    /// use gyre_reactor::EventLoopGroup;
    /// let group = EventLoopGroup::new(1).unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// group.next().execute(move || tx.send(std::thread::current().name().map(String::from)).unwrap()).unwrap();
    /// assert_eq!(rx.recv().unwrap().as_deref(), Some("gyre-loop-0"));
    /// group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// ```
    pub fn execute(&self, f: impl FnOnce() + Send + 'static) -> Result<(), Error> {
        self.shared.execute(Box::new(move |_| f()))
    }

    pub(crate) fn execute_inner(
        &self,
        f: impl FnOnce(&mut LoopInner) + Send + 'static,
    ) -> Result<(), Error> {
        self.shared.execute(Box::new(f))
    }

    /// Runs `future` on the loop's thread: polled first as a task (as
    /// [`execute`](Self::execute) runs one), then again each time its
    /// waker is woken, from any thread, until it finishes. Netty's
    /// `EventLoop` is an executor the same way, and this is tokio's
    /// `spawn` for a loop: a handler, a provider's method or a timer can
    /// start asynchronous work (an RPC's `call_async`, a promise) and go
    /// on when it completes, on the same thread as the channel it serves,
    /// without blocking the loop meanwhile. The future must not block:
    /// it holds the loop's channels while it is polled.
    ///
    /// A panic in a poll drops the future (logged) and the loop goes on.
    /// A loop that stops drops the futures still waiting (on its thread,
    /// as it stops) and refuses new ones. Each spawn allocates the task
    /// (the future inside it) and its first run; each wake-up that finds
    /// no run queued queues one (one allocation, as `execute`): 2.15 per
    /// future woken once (`reactor/tests/allocations.rs`).
    ///
    /// ```
    /// use gyre_reactor::promise::PromisePool;
    /// use gyre_reactor::{is_event_loop_thread, EventLoopGroup};
    ///
    /// let group = EventLoopGroup::new(1)?;
    /// let pool = PromisePool::new(4);
    /// let (promise, answer) = pool.promise();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// group.next().spawn(async move {
    ///     // Waits without holding the loop; woken by the other thread.
    ///     let n: u32 = answer.await.unwrap();
    ///     tx.send((n, is_event_loop_thread())).unwrap();
    /// })?;
    /// std::thread::spawn(move || promise.complete(7));
    /// assert_eq!(rx.recv()?, (7, true));
    /// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::LoopShutDown`] if the loop has stopped.
    pub fn spawn<F>(&self, future: F) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        crate::loop_task::spawn(&self.shared, future, false)
    }

    /// [`spawn`](Self::spawn), except that called on this loop's own
    /// thread it polls the future the first time now, before it returns,
    /// rather than on the loop's next pass over its tasks: a future that
    /// finishes at once (a provider's asynchronous method whose answer is
    /// at hand) never waits for the queue. The caller must expect the
    /// future to run inside the call (it must hold no borrow the future
    /// needs). Called on any other thread it is `spawn`.
    ///
    /// ```
    /// use gyre_reactor::{EventLoop, EventLoopGroup};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let group = EventLoopGroup::new(1)?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// group.next().execute(move || {
    ///     let ran = Arc::new(AtomicBool::new(false));
    ///     let r = ran.clone();
    ///     let lp = EventLoop::current().unwrap();
    ///     lp.spawn_eager(async move { r.store(true, Ordering::Relaxed) }).unwrap();
    ///     // Polled, and finished, before `spawn_eager` returned.
    ///     tx.send(ran.load(Ordering::Relaxed)).unwrap();
    /// })?;
    /// assert!(rx.recv()?);
    /// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::LoopShutDown`] if the loop has stopped (or is stopping,
    /// called on its thread).
    pub fn spawn_eager<F>(&self, future: F) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let here = crate::loop_thread::runs(self.shared.id());
        crate::loop_task::spawn(&self.shared, future, here)
    }

    /// The loop whose thread calls this, if it is a loop's (Netty's
    /// `inEventLoop`, with the loop): where a handler or a provider's
    /// method spawns a future that serves its own channel.
    ///
    /// ```
    /// use gyre_reactor::{EventLoop, EventLoopGroup};
    ///
    /// assert!(EventLoop::current().is_none());
    /// let group = EventLoopGroup::new(2)?;
    /// let lp = group.next();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// lp.execute(move || tx.send(EventLoop::current().map(|l| l.index())).unwrap())?;
    /// assert_eq!(rx.recv()?, Some(lp.index()));
    /// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn current() -> Option<EventLoop> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Runs `f` on the loop after `delay` (millisecond resolution).
    pub fn schedule(
        &self,
        delay: Duration,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<ScheduledTask, Error> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        self.execute_inner(move |inner| {
            inner.schedule_task(delay, None, TaskFn::Once(Box::new(f)), flag)
        })?;
        Ok(ScheduledTask { cancelled })
    }

    /// Runs `f` on the loop after `delay`, then every `period`, until
    /// cancelled or the loop stops.
    pub fn schedule_repeating(
        &self,
        delay: Duration,
        period: Duration,
        f: impl FnMut() + Send + 'static,
    ) -> Result<ScheduledTask, Error> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        self.execute_inner(move |inner| {
            inner.schedule_task(delay, Some(period), TaskFn::Repeat(Box::new(f)), flag)
        })?;
        Ok(ScheduledTask { cancelled })
    }

    /// The loop's counters now (asks the loop, so it blocks the caller
    /// until the loop answers: call it off the loop threads, where it
    /// refuses with [`Error::WouldBlockLoop`]).
    ///
    /// ```
    /// use gyre_reactor::EventLoopGroup;
    ///
    /// let group = EventLoopGroup::new(2)?;
    /// for lp in group.loops() {
    ///     let m = lp.metrics()?;
    ///     println!("loop {}: {} open, {} bytes out", lp.index(), m.connections_open, m.bytes_written);
    /// }
    /// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), gyre_reactor::Error>(())
    /// ```
    pub fn metrics(&self) -> Result<LoopMetrics, Error> {
        self.ask("EventLoop::metrics", |inner| inner.metrics())
    }

    /// How many channels the loop serves right now (asks the loop, so it
    /// blocks the caller until the loop answers; refuses on a loop thread,
    /// as [`metrics`](Self::metrics) does).
    pub fn channel_count(&self) -> Result<usize, Error> {
        self.ask("EventLoop::channel_count", |inner| inner.channel_count())
    }

    /// Runs `f` on the loop and waits for its answer, for the caller's
    /// `operation`; refuses on any loop's thread, where waiting would
    /// block that loop (and this loop's own answer would never come).
    pub(crate) fn ask<T: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut LoopInner) -> T + Send + 'static,
    ) -> Result<T, Error> {
        crate::loop_thread::refuse_to_wait(operation)?;
        let (tx, rx) = std::sync::mpsc::channel();
        self.execute_inner(move |inner| {
            let _ = tx.send(f(inner));
        })?;
        rx.recv().map_err(|_| Error::LoopShutDown)
    }
}

/// Restricts the calling thread to `cpu`; a refusal (a CPU outside the
/// process's allowed set, say) is logged and the thread runs unpinned.
fn pin_to_cpu(cpu: usize) {
    if let Err(error) = gyre_ringbuffer::pin_current_thread(cpu) {
        tracing::warn!(cpu, %error, "cannot pin the event loop to its CPU; it runs unpinned");
    }
}
