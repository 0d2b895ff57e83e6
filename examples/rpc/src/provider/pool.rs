//! The provider's worker pool: calls of [`Dispatch::WorkerPool`] services
//! go from the event loops through a gyre ring buffer (multi-producer, each
//! call to exactly one worker) and their answers go back through the
//! connection's `ChannelHandle`.
//!
//! [`Dispatch::WorkerPool`]: super::Dispatch::WorkerPool

use super::answer;
use super::service::MethodEntry;
use super::shared::Shared;
use crate::protocol::Serialization;
use bytes::{Bytes, BytesMut};
use crossbeam_utils::atomic::AtomicCell;
use gyre_reactor::ChannelHandle;
use gyre_ringbuffer::{
    BlockingWait, BuildError, Disruptor, MultiProducerSequencer, Producer, Stage, WorkHandler,
};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// One call handed to the pool. The arguments are a slice of the read
/// buffer: no copy.
pub(crate) struct Job {
    pub(crate) method: Arc<MethodEntry>,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) request_id: u64,
    pub(crate) serialization: Serialization,
    pub(crate) args: Bytes,
    pub(crate) reply: ChannelHandle<Bytes>,
    pub(crate) two_way: bool,
    /// Counts the call out of the provider's in-flight total when done.
    pub(crate) shared: Arc<Shared>,
}

/// A ring slot. The job is taken out (a pointer-sized, lock-free swap), so
/// its memory and the connection handle are released once answered rather
/// than when the slot comes round again.
#[derive(Default)]
pub(crate) struct Slot {
    job: AtomicCell<Option<Box<Job>>>,
}

struct Worker {
    scratch: BytesMut,
    max_body: usize,
}

impl WorkHandler<Slot> for Worker {
    fn on_event(&mut self, slot: &Slot, _sequence: i64) {
        let Some(job) = slot.job.take() else {
            return;
        };
        let frame = answer::filtered_call(
            &mut self.scratch,
            job.request_id,
            job.serialization,
            self.max_body,
            &job.method,
            &job.args,
            &job.shared.filters,
            job.peer,
        );
        if job.two_way {
            // A connection gone meanwhile has nobody to answer.
            let _ = job.reply.write_and_flush(frame);
        }
        job.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

type JobProducer = Producer<Slot, BlockingWait, MultiProducerSequencer>;

/// The running pool.
pub(crate) struct Pool {
    producer: Option<JobProducer>,
    disruptor: Option<Disruptor<Slot, BlockingWait>>,
}

/// Hands calls to the pool; one per event loop connection.
#[derive(Clone)]
pub(crate) struct Submitter {
    producer: JobProducer,
}

impl Submitter {
    /// Queues `job`, or gives it back when the ring is full (the caller
    /// answers [`crate::Status::ServerOverloaded`]) or the pool stopped.
    pub(crate) fn submit(&mut self, job: Job) -> Result<(), Box<Job>> {
        let mut job = Some(Box::new(job));
        match self.producer.try_publish(|slot| slot.job.store(job.take())) {
            Ok(_) => Ok(()),
            // Full, or the pool stopped: not published, so not moved.
            Err(_) => Err(job.expect("the job is still here")),
        }
    }
}

impl Pool {
    /// Starts `threads` workers over a ring of `capacity` calls.
    pub(crate) fn start(
        threads: usize,
        capacity: usize,
        max_body: usize,
    ) -> Result<Pool, BuildError> {
        let mut graph = Disruptor::builder(capacity, Slot::default)
            .wait_strategy(BlockingWait::new())
            .multi_producer()?;
        graph.handle_events_with(
            Stage::worker_pool_with_factory(threads.max(1), move |_| Worker {
                scratch: BytesMut::new(),
                max_body,
            })
            .name("gyre-rpc-worker"),
        );
        let (producer, disruptor) = graph.start()?;
        Ok(Pool {
            producer: Some(producer),
            disruptor: Some(disruptor),
        })
    }

    pub(crate) fn submitter(&self) -> Submitter {
        Submitter {
            producer: self.producer.as_ref().expect("running").clone(),
        }
    }

    /// Runs every queued call (for at most `timeout`) and stops the
    /// workers.
    pub(crate) fn shutdown(&mut self, timeout: Duration) {
        self.producer.take();
        if let Some(d) = self.disruptor.take() {
            d.shutdown_timeout(timeout);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(5));
    }
}
