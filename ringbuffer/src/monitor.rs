//! Where stage panics are recorded, so that none is ever silent.

use crate::sync::{self, Mutex};
use std::any::Any;

/// What a stage does when its handler panics.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, PanicPolicy, Stage};
///
/// let mut graph = Disruptor::builder(64, || 0u64).single_producer()?;
/// // A bad event is logged and skipped instead of halting the disruptor.
/// graph.handle_events_with(
///     Stage::new(|e: &u64, _: i64, _: bool| assert!(*e != 13, "unlucky"))
///         .on_panic(PanicPolicy::LogAndContinue),
/// );
/// let (mut producer, disruptor) = graph.start()?;
/// producer.batch_publish(3, |i, slot| *slot = 12 + i as u64)?;
/// drop(producer);
/// let report = disruptor.join();
/// assert_eq!(report.processed, 3);
/// assert_eq!(report.panics.len(), 1);
/// assert_eq!(report.panics[0].policy, PanicPolicy::LogAndContinue);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PanicPolicy {
    /// Record the panic and halt the whole disruptor: every stage stops and
    /// producers get [`PublishError::Closed`](crate::PublishError::Closed).
    /// The default, because a handler that panicked may have left its state
    /// half-updated.
    #[default]
    Halt,
    /// Record and log the panic (at `error` level through `tracing`), skip
    /// the event and carry on with the next one.
    LogAndContinue,
}

/// A handler panic, as recorded in the [`ShutdownReport`](crate::ShutdownReport).
///
/// ```
/// use gyre_ringbuffer::{Disruptor, PanicPolicy, Stage, StagePanic};
///
/// let mut graph = Disruptor::builder(64, || 0u64).single_producer()?;
/// graph.handle_events_with(
///     Stage::new(|e: &u64, _: i64, _: bool| assert!(*e != 2, "two is not allowed"))
///         .on_panic(PanicPolicy::LogAndContinue),
/// );
/// let (mut producer, disruptor) = graph.start()?;
/// producer.batch_publish(4, |i, slot| *slot = i as u64)?;
/// drop(producer);
/// for StagePanic { stage, sequence, message, .. } in disruptor.join().panics {
///     eprintln!("{stage} panicked on event {sequence}: {message}");
///     assert_eq!(sequence, 2);
///     assert!(message.contains("two is not allowed"));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePanic {
    /// The stage's thread name.
    pub stage: String,
    /// The sequence of the event being handled (or the last processed one,
    /// for a panic in a lifecycle callback).
    pub sequence: i64,
    /// The panic message.
    pub message: String,
    /// What the stage did about it.
    pub policy: PanicPolicy,
}

/// The text of a caught panic's payload: the `&str` or `String` that
/// `panic!` makes, or `(not a message)` for a payload of another type
/// (`std::panic::panic_any`). For logging what `catch_unwind` or a
/// thread's `join` caught.
///
/// ```
/// use gyre_ringbuffer::panic_message;
///
/// let caught = std::panic::catch_unwind(|| panic!("bad event {}", 7)).unwrap_err();
/// assert_eq!(panic_message(&*caught), "bad event 7");
/// let caught = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
/// assert_eq!(panic_message(&*caught), "(not a message)");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a message)")
}

#[derive(Debug, Default)]
pub(crate) struct Monitor {
    panics: Mutex<Vec<StagePanic>>,
}

impl Monitor {
    pub(crate) fn record_panic(
        &self,
        stage: &str,
        sequence: i64,
        payload: &(dyn Any + Send),
        policy: PanicPolicy,
    ) {
        let message = panic_message(payload).to_owned();
        tracing::error!(
            stage,
            sequence,
            ?policy,
            "event handler panicked: {message}"
        );
        sync::lock(&self.panics).push(StagePanic {
            stage: stage.to_string(),
            sequence,
            message,
            policy,
        });
    }

    pub(crate) fn take_panics(&self) -> Vec<StagePanic> {
        std::mem::take(&mut *sync::lock(&self.panics))
    }
}
