//! The traits consumers implement: [`EventHandler`] for a stage that sees
//! every event, [`WorkHandler`] for a worker pool where each event goes to
//! one worker, and their owning forms ([`OwningHandler`],
//! [`OwningWorkHandler`]) for the stage that ends a graph
//! ([`Graph::then_owner`](crate::Graph::then_owner)) and may change an
//! event or move out of it. Closures implement all four.

/// A stage's business logic: called for every event, in sequence order.
///
/// The handler is created on (or moved to) the stage's own thread and only
/// ever called there, so its state need not be `Send` when it is built with
/// [`Stage::with_factory`](crate::Stage::with_factory).
///
/// `event` is borrowed only for the call: the slot is reused once every
/// stage has passed it, so copy out what you need to keep.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, EventHandler, Stage};
///
/// /// Sums prices and reports the total at the end of each batch.
/// struct Totals {
///     sum: u64,
///     batches: u32,
/// }
///
/// impl EventHandler<u64> for Totals {
///     fn on_event(&mut self, price: &u64, _sequence: i64, end_of_batch: bool) {
///         self.sum += price;
///         if end_of_batch {
///             self.batches += 1; // the moment to flush or commit
///         }
///     }
///     fn on_shutdown(&mut self) {
///         assert_eq!(self.sum, 6);
///     }
/// }
///
/// let mut graph = Disruptor::builder(64, || 0u64).single_producer()?;
/// graph.handle_events_with(Stage::new(Totals { sum: 0, batches: 0 }));
/// let (mut producer, disruptor) = graph.start()?;
/// producer.batch_publish(3, |i, slot| *slot = i as u64 + 1)?;
/// drop(producer);
/// assert_eq!(disruptor.join().processed, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait EventHandler<E> {
    /// Handle one event. `end_of_batch` is true for the last event the
    /// processor has available now: the moment to flush or commit a group.
    fn on_event(&mut self, event: &E, sequence: i64, end_of_batch: bool);

    /// Called before the events of a batch, with how many there are.
    fn on_batch_start(&mut self, batch_size: usize) {
        let _ = batch_size;
    }

    /// Called once on the stage's thread before the first event.
    fn on_start(&mut self) {}

    /// Called once on the stage's thread after the last event.
    fn on_shutdown(&mut self) {}

    /// Called when a [`TimeoutBlockingWait`](crate::TimeoutBlockingWait)
    /// times out; `sequence` is the last one this stage processed.
    fn on_timeout(&mut self, sequence: i64) {
        let _ = sequence;
    }
}

impl<E, F: FnMut(&E, i64, bool)> EventHandler<E> for F {
    #[inline(always)]
    fn on_event(&mut self, event: &E, sequence: i64, end_of_batch: bool) {
        self(event, sequence, end_of_batch)
    }
}

/// A worker of a [`Stage::worker_pool`](crate::Stage::worker_pool): each
/// event goes to exactly one worker of the pool.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Stage, WorkHandler};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// /// One of several workers: each event goes to exactly one of them.
/// struct Resize(Arc<AtomicU64>);
///
/// impl WorkHandler<u64> for Resize {
///     fn on_event(&mut self, _image: &u64, _sequence: i64) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let done = Arc::new(AtomicU64::new(0));
/// let mut graph = Disruptor::builder(64, || 0u64).multi_producer()?;
/// let workers = (0..3).map(|_| Resize(done.clone())).collect();
/// graph.handle_events_with(Stage::worker_pool(workers));
/// let (mut producer, disruptor) = graph.start()?;
/// producer.batch_publish(10, |i, slot| *slot = i as u64)?;
/// drop(producer);
/// disruptor.join();
/// assert_eq!(done.load(Ordering::Relaxed), 10, "each event handled once");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait WorkHandler<E> {
    /// Handle one event.
    fn on_event(&mut self, event: &E, sequence: i64);

    /// Called once on the worker's thread before the first event.
    fn on_start(&mut self) {}

    /// Called once on the worker's thread after the last event.
    fn on_shutdown(&mut self) {}

    /// Called when a [`TimeoutBlockingWait`](crate::TimeoutBlockingWait) times out.
    fn on_timeout(&mut self, sequence: i64) {
        let _ = sequence;
    }
}

impl<E, F: FnMut(&E, i64)> WorkHandler<E> for F {
    #[inline(always)]
    fn on_event(&mut self, event: &E, sequence: i64) {
        self(event, sequence)
    }
}

/// The business logic of the stage that owns the events: the graph's last,
/// after every other stage ([`Graph::then_owner`](crate::Graph::then_owner)),
/// so it is the only one that can reach an event while it holds it, and it
/// gets it mutably. It may move what it needs out of the event (a request's
/// `Bytes`, a boxed job) with `std::mem::take` or `Option::take` instead of
/// cloning it, and the slot is reused for a later event.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Stage};
/// use std::sync::mpsc;
///
/// let (tx, rx) = mpsc::channel();
/// let graph = Disruptor::builder(64, String::new).single_producer()?;
/// let graph = graph.then_owner(Stage::owner(move |line: &mut String, _seq: i64, _end: bool| {
///     tx.send(std::mem::take(line)).unwrap(); // moved out, not cloned
/// }));
/// let (mut producer, disruptor) = graph.start()?;
/// producer.publish(|slot| slot.push_str("hello"))?;
/// drop(producer);
/// disruptor.join();
/// assert_eq!(rx.recv()?, "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait OwningHandler<E> {
    /// Handle one event, which no other stage can reach meanwhile.
    fn on_event(&mut self, event: &mut E, sequence: i64, end_of_batch: bool);
    /// Called before the events of a batch, with how many there are.
    fn on_batch_start(&mut self, batch_size: usize) {
        let _ = batch_size;
    }
    /// Called once on the stage's thread before the first event.
    fn on_start(&mut self) {}
    /// Called once on the stage's thread after the last event.
    fn on_shutdown(&mut self) {}
    /// Called when a [`TimeoutBlockingWait`](crate::TimeoutBlockingWait)
    /// times out; `sequence` is the last one this stage processed.
    fn on_timeout(&mut self, sequence: i64) {
        let _ = sequence;
    }
}

impl<E, F: FnMut(&mut E, i64, bool)> OwningHandler<E> for F {
    #[inline(always)]
    fn on_event(&mut self, event: &mut E, sequence: i64, end_of_batch: bool) {
        self(event, sequence, end_of_batch)
    }
}

/// A worker of the pool that owns the events
/// ([`Stage::owner_pool`](crate::Stage::owner_pool), added with
/// [`Graph::then_owner`](crate::Graph::then_owner)): each event goes to
/// exactly one worker, after every other stage, and that worker gets it
/// mutably.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, OwningWorkHandler, Stage};
/// use std::sync::mpsc;
///
/// /// A pool of workers that each take their job out of the slot.
/// struct Send(mpsc::Sender<String>);
///
/// impl OwningWorkHandler<String> for Send {
///     fn on_event(&mut self, job: &mut String, _sequence: i64) {
///         self.0.send(std::mem::take(job)).unwrap();
///     }
/// }
///
/// let (tx, rx) = mpsc::channel();
/// let graph = Disruptor::builder(64, String::new).multi_producer()?;
/// let graph = graph.then_owner(Stage::owner_pool(vec![Send(tx.clone()), Send(tx)]));
/// let (mut producer, disruptor) = graph.start()?;
/// producer.publish(|slot| slot.push_str("job"))?;
/// drop(producer);
/// disruptor.join();
/// assert_eq!(rx.recv()?, "job");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait OwningWorkHandler<E> {
    /// Handle one event, which no other stage or worker can reach meanwhile.
    fn on_event(&mut self, event: &mut E, sequence: i64);
    /// Called once on the worker's thread before the first event.
    fn on_start(&mut self) {}
    /// Called once on the worker's thread after the last event.
    fn on_shutdown(&mut self) {}
    /// Called when a [`TimeoutBlockingWait`](crate::TimeoutBlockingWait) times out.
    fn on_timeout(&mut self, sequence: i64) {
        let _ = sequence;
    }
}

impl<E, F: FnMut(&mut E, i64)> OwningWorkHandler<E> for F {
    #[inline(always)]
    fn on_event(&mut self, event: &mut E, sequence: i64) {
        self(event, sequence)
    }
}
