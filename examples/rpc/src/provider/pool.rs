//! The provider's worker pool: calls of [`Dispatch::WorkerPool`] services
//! leave the event loops through gyre-reactor's offload stage, into a gyre
//! ring that a pool of owning workers drains (each call to exactly one
//! worker, which moves it out of its slot: no box, no copy of the
//! arguments), and their answers come back through the offload layer's
//! reply. A call the full ring has no room for is answered
//! [`Status::ServerOverloaded`] at once, as a Dubbo provider answers when
//! its thread pool is exhausted; so is every call once the pool has shut
//! down.
//!
//! [`Dispatch::WorkerPool`]: super::Dispatch::WorkerPool

use super::answer;
use super::method::{AnswerTo, Body, MethodEntry};
use super::responder::start_deferred;
use super::shared::Shared;
use crate::protocol::{Serialization, Status};
use bytes::{Bytes, BytesMut};
use gyre_reactor::{Job, OffloadStage};
use gyre_ringbuffer::{BlockingWait, BuildError, Disruptor, OwningWorkHandler, Stage};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// One call passed to the pool. The arguments are a slice of the read
/// buffer: no copy.
pub(crate) struct Call {
    pub(crate) method: Arc<MethodEntry>,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) request_id: u64,
    pub(crate) serialization: Serialization,
    pub(crate) args: Bytes,
    pub(crate) two_way: bool,
}

/// A ring slot: a call and where its answer goes.
pub(crate) type CallJob = Job<Call, Bytes>;

struct Worker {
    scratch: BytesMut,
    shared: Arc<Shared>,
}

impl OwningWorkHandler<CallJob> for Worker {
    fn on_event(&mut self, job: &mut CallJob, _sequence: i64) {
        // Moved out, so the arguments' buffer and the connection are let
        // go once answered rather than when the slot comes round again.
        let (Some(call), Some(reply)) = (job.take_message(), job.take_reply()) else {
            return;
        };
        let method = match &call.method.body {
            Body::Now(method) => method,
            Body::Later(method) => {
                // The responder answers through the reply and counts the
                // call out, whenever the method sends it.
                return start_deferred(
                    &call.method,
                    method,
                    call.request_id,
                    call.serialization,
                    call.two_way,
                    &call.args,
                    call.peer,
                    AnswerTo::Reply(reply),
                    &self.shared.filters,
                    self.shared.max_body,
                    &self.shared.in_flight,
                    None,
                );
            }
        };
        let frame = answer::filtered_call(
            &mut self.scratch,
            call.request_id,
            call.serialization,
            self.shared.max_body,
            &call.method,
            method,
            &call.args,
            &self.shared.filters,
            call.peer,
        );
        // A connection gone meanwhile has nobody to answer.
        let _ = if call.two_way {
            reply.send(frame)
        } else {
            reply.skip()
        };
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The running pool.
pub(crate) struct Pool {
    stage: OffloadStage<Call, Bytes>,
    disruptor: Option<Disruptor<CallJob, BlockingWait>>,
}

impl Pool {
    /// Starts `threads` workers over a ring of `capacity` calls.
    pub(crate) fn start(
        threads: usize,
        capacity: usize,
        shared: &Arc<Shared>,
    ) -> Result<Pool, BuildError> {
        let graph = Disruptor::builder(capacity, CallJob::default)
            .wait_strategy(BlockingWait::new())
            .multi_producer()?;
        let workers = shared.clone();
        let graph = graph.then_owner(
            Stage::owner_pool_with_factory(threads.max(1), move |_| Worker {
                scratch: BytesMut::new(),
                shared: workers.clone(),
            })
            .name("gyre-rpc-worker"),
        );
        let (producer, disruptor) = graph.start()?;
        let refused = shared.clone();
        let stage = OffloadStage::new(producer)
            // The ring's capacity is the provider's one limit, shared by
            // every connection: past it a call is refused at once, as a
            // Dubbo provider refuses when its pool is exhausted, never held
            // back for one connection. (Answers carry request ids, so
            // completion order is right.)
            .max_in_flight(usize::MAX)
            .reject_when_full(move |call: Call| {
                refused.in_flight.fetch_sub(1, Ordering::AcqRel);
                call.two_way.then(|| {
                    answer::failure_frame(
                        &mut BytesMut::new(),
                        call.request_id,
                        call.serialization,
                        Status::ServerOverloaded,
                        "the provider's worker pool is full",
                    )
                })
            });
        Ok(Pool {
            stage,
            disruptor: Some(disruptor),
        })
    }

    /// The stage every connection's offload layer comes from.
    pub(crate) fn stage(&self) -> &OffloadStage<Call, Bytes> {
        &self.stage
    }

    /// Runs every queued call (for at most `timeout`) and stops the
    /// workers; calls after that are answered as overloaded.
    pub(crate) fn shutdown(&mut self, timeout: Duration) {
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
