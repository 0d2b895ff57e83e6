//! The crate's error types.

use thiserror::Error;

/// Why a disruptor could not be built.
///
/// ```
/// use gyre_ringbuffer::{BuildError, Disruptor};
///
/// // Capacities are powers of two, so a sequence maps to a slot with a mask.
/// match Disruptor::builder(1000, || 0u64).single_producer() {
///     Err(BuildError::CapacityNotPowerOfTwo(1000)) => {}
///     other => panic!("{:?}", other.err()),
/// }
/// ```
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The ring's capacity must be a power of two, at least 1.
    #[error("ring capacity must be a non-zero power of two, got {0}")]
    CapacityNotPowerOfTwo(usize),
    /// The capacity does not fit the sequence arithmetic.
    #[error("ring capacity {0} is too large (at most 2^30)")]
    CapacityTooLarge(usize),
    /// [`max_batch`](crate::DisruptorBuilder::max_batch) must be at least 1.
    #[error("a consumer's max_batch must be at least 1 event, got 0")]
    ZeroMaxBatch,
    /// A stage named a dependency that is not a stage of this graph.
    #[error("stage depends on unknown stage id {0}")]
    UnknownStage(usize),
    /// A worker pool needs at least one worker.
    #[error("a worker pool needs at least one worker")]
    EmptyWorkerPool,
    /// A graph with no consumer would let producers overwrite events unread.
    #[error("the graph has no consumer: add a stage or a poller before starting")]
    NoConsumers,
    /// The operating system refused to start a stage's thread.
    #[error("could not spawn thread {name:?}: {message}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// What the OS said.
        message: String,
    },
}

/// Why a publish did not happen.
///
/// [`publish`](crate::Producer::publish) and
/// [`batch_publish`](crate::Producer::batch_publish) only fail with
/// [`Closed`](PublishError::Closed); the `try_` variants add
/// [`Full`](PublishError::Full) and the timed variants add
/// [`TimedOut`](PublishError::TimedOut). The event was not published in
/// every case, and the closure was not called.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, PublishError, Stage};
///
/// let mut graph = Disruptor::builder(2, || 0u64).single_producer()?;
/// graph.handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {
///     std::thread::sleep(std::time::Duration::from_millis(50)); // a slow consumer
/// }));
/// let (mut producer, disruptor) = graph.start()?;
/// // `try_publish` never waits: a full ring is an answer, not a stall.
/// let mut full = false;
/// for i in 0..8 {
///     if let Err(PublishError::Full) = producer.try_publish(|slot| *slot = i) {
///         full = true;
///         break;
///     }
/// }
/// assert!(full);
/// drop(producer);
/// disruptor.join();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// The ring has no room for the claim now.
    #[error("ring buffer is full")]
    Full,
    /// No room appeared before the deadline.
    #[error("timed out waiting for room in the ring buffer")]
    TimedOut,
    /// The disruptor was shut down or halted; nothing more is consumed.
    #[error("disruptor is shut down")]
    Closed,
    /// The batch is larger than the ring (or zero).
    #[error("batch of {0} events does not fit the ring")]
    BadBatchSize(usize),
}

/// Why a consumer's wait (a [`WaitStrategy`](crate::WaitStrategy)'s
/// `wait_for`) returned without the sequence being available.
///
/// ```
/// use gyre_ringbuffer::{WaitCondition, WaitError, WaitStrategy};
/// use std::time::{Duration, Instant};
///
/// /// Yields between looks, and gives up after a millisecond so that the
/// /// stage's `on_timeout` runs (a heartbeat, a flush of a partial batch).
/// struct YieldWithDeadline;
///
/// impl WaitStrategy for YieldWithDeadline {
///     fn wait_for(&self, sequence: i64, condition: &WaitCondition<'_>) -> Result<i64, WaitError> {
///         let deadline = Instant::now() + Duration::from_millis(1);
///         loop {
///             condition.check_alert(sequence)?; // WaitError::Alerted
///             let available = condition.available();
///             if available >= sequence {
///                 return Ok(available);
///             }
///             if Instant::now() >= deadline {
///                 return Err(WaitError::Timeout);
///             }
///             std::thread::yield_now();
///         }
///     }
///
///     fn signal_all_when_blocking(&self) {}
/// }
/// # let _ = YieldWithDeadline;
/// ```
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// The barrier was alerted: the disruptor is halting, or draining and the
    /// awaited sequence lies past the last one published.
    #[error("barrier alerted")]
    Alerted,
    /// A timeout wait strategy gave up (the processor calls `on_timeout`).
    #[error("timed out waiting for sequence")]
    Timeout,
}
