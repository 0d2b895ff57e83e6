//! [`Disruptor`]: the running graph's handle, and how it stops.
//!
//! Stopping always drains unless told otherwise: `join` (after the last
//! producer drops), `shutdown` and dropping the handle all let every event
//! published so far reach every stage before the threads join. Only `halt`,
//! a `Halt`-policy panic, or an expired `shutdown_timeout` stop early, and the
//! [`ShutdownReport`] says how many events were left.

use crate::monitor::{Monitor, StagePanic};
use crate::ring::Core;
use crate::sequence::{minimum, Sequence};
use crate::stage::Threads;
use crate::sync::{self, Arc};
use crate::wait::{BlockingWait, WaitStrategy};
use std::time::{Duration, Instant};

/// What happened, once a disruptor's threads have all joined.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Stage};
///
/// let mut graph = Disruptor::builder(64, || 0u32).single_producer()?;
/// graph.handle_events_with(Stage::new(|_: &u32, _: i64, _: bool| {}));
/// let (mut producer, disruptor) = graph.start()?;
/// producer.batch_publish(3, |i, slot| *slot = i as u32)?;
/// drop(producer);
/// let report = disruptor.join();
/// assert_eq!(report.published, 3);
/// assert_eq!(report.unprocessed, 0);
/// assert!(!report.halted && report.panics.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Events published in all.
    pub published: u64,
    /// Events every stage has processed.
    pub processed: u64,
    /// Events published but not processed by every stage (nonzero only
    /// after a halt, a `Halt`-policy panic or an expired timeout).
    pub unprocessed: u64,
    /// Whether the disruptor halted rather than drained.
    pub halted: bool,
    /// Every handler panic, in the order they happened.
    pub panics: Vec<StagePanic>,
}

/// A running disruptor: its stage threads, and how to stop them.
///
/// Dropping it is [`shutdown`](Self::shutdown): drain, then join.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Stage};
///
/// let mut graph = Disruptor::builder(1024, || 0u64).single_producer()?;
/// graph.handle_events_with(Stage::new(|_e: &u64, _seq: i64, _end: bool| {}));
/// let (mut producer, disruptor) = graph.start()?;
/// producer.publish(|slot| *slot = 1)?;
/// assert!(!disruptor.is_halted());
/// drop(producer);
/// // Drains what was published, then joins the stage threads.
/// let report = disruptor.shutdown();
/// assert_eq!((report.published, report.processed), (1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Disruptor<E, W = BlockingWait>
where
    W: WaitStrategy,
{
    core: Arc<Core<E, W>>,
    threads: Threads,
    leaves: Vec<Arc<Sequence>>,
    monitor: Arc<Monitor>,
}

impl<E, W: WaitStrategy> Disruptor<E, W> {
    pub(crate) fn new(
        core: Arc<Core<E, W>>,
        threads: Threads,
        leaves: Vec<Arc<Sequence>>,
        monitor: Arc<Monitor>,
    ) -> Self {
        Disruptor {
            core,
            threads,
            leaves,
            monitor,
        }
    }

    /// Wait until the last producer has dropped and every event has
    /// reached every stage (or the disruptor halted), then join the threads.
    pub fn join(mut self) -> ShutdownReport {
        self.join_threads()
    }

    /// Stop accepting events, let everything published so far reach every
    /// stage, and join. Producers still alive get `PublishError::Closed`.
    pub fn shutdown(mut self) -> ShutdownReport {
        self.core.drain_to(self.core.cursor.get());
        self.join_threads()
    }

    /// [`shutdown`](Self::shutdown) on a thread of its own (named
    /// `gyre-shutdown`), returning at once: for a caller that must not wait
    /// for a stage in the middle of a long event, such as an event loop
    /// dropping the last handle on a pool whose workers may be waiting on
    /// a disk. Where the thread cannot be started, the disruptor shuts
    /// down on the caller's thread.
    ///
    /// ```
    /// use gyre_ringbuffer::{Disruptor, Stage};
    ///
    /// let mut graph = Disruptor::builder(8, || 0u64).single_producer()?;
    /// graph.handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}));
    /// let (mut producer, disruptor) = graph.start()?;
    /// producer.publish(|e| *e = 1);
    /// disruptor.shutdown_in_background();
    /// # Ok::<(), gyre_ringbuffer::BuildError>(())
    /// ```
    pub fn shutdown_in_background(self)
    where
        Self: Send + 'static,
    {
        let _ = sync::spawn("gyre-shutdown".into(), move || {
            self.shutdown();
        });
    }

    /// Like [`shutdown`](Self::shutdown), but halt if draining takes longer
    /// than `timeout`; the report says how many events were left.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> ShutdownReport {
        let deadline = Instant::now() + timeout;
        let last = self.core.cursor.get();
        self.core.drain_to(last);
        while minimum(&self.leaves, i64::MAX) < last
            && !self.core.is_halted()
            && !self.threads.is_empty()
        {
            if Instant::now() >= deadline {
                self.core.halt();
                break;
            }
            sync::sleep(Duration::from_millis(1));
        }
        self.join_threads()
    }

    /// Stop every stage now, without draining, and join.
    pub fn halt(mut self) -> ShutdownReport {
        self.core.halt();
        self.join_threads()
    }

    /// The highest sequence claimed by a producer so far.
    pub fn cursor(&self) -> i64 {
        self.core.cursor.get()
    }

    /// Whether the disruptor has halted (by `halt`, a timeout, or a panic).
    pub fn is_halted(&self) -> bool {
        self.core.is_halted()
    }

    fn join_threads(&mut self) -> ShutdownReport {
        for (name, handle) in self.threads.drain(..) {
            if handle.join().is_err() {
                // Handler panics are caught in the processors; one escaping
                // here came from a lifecycle callback or a factory.
                tracing::error!(stage = %name, "stage thread panicked outside event handling");
                self.core.halt();
            }
        }
        let published = (self.core.published() + 1).max(0) as u64;
        let processed =
            (minimum(&self.leaves, self.core.cursor.get()) + 1).clamp(0, published as i64) as u64;
        ShutdownReport {
            published,
            processed,
            unprocessed: published - processed,
            halted: self.core.is_halted(),
            panics: self.monitor.take_panics(),
        }
    }
}

impl<E, W: WaitStrategy> Drop for Disruptor<E, W> {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.core.drain_to(self.core.cursor.get());
            self.join_threads();
        }
    }
}

impl<E, W: WaitStrategy> std::fmt::Debug for Disruptor<E, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disruptor")
            .field("cursor", &self.core.cursor.get())
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}
