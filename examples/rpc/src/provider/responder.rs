//! Answering a call later: a deferred method starts with its pending
//! answer ([`start_deferred`]) and hands it to the user as a
//! [`Responder`], which may be sent from any thread, at any time before
//! the consumer's timeout. Uses the methods' plain data and the answer
//! framing with the filters' phases; the answer goes through the
//! connection's handle (event-loop methods) or the offload stage's reply
//! (pool methods).

use super::answer::{failure_frame, finish_filtered, info, response};
use super::inline::{self, Ticket};
use super::method::{AnswerTo, DeferredMethod, Failure, MethodEntry, Pending, ServiceError};
use crate::filter::{run_before, Filter};
use crate::protocol::{Serialization, Status};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

thread_local! {
    /// The block deferred answers are framed in, on the thread that sends
    /// them.
    static SCRATCH: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

impl Pending {
    /// Sends `frame(scratch)` (unless the call is one-way) and counts the
    /// call out.
    fn answer(self, frame: impl FnOnce(&mut BytesMut) -> Bytes) {
        // Framed even for a one-way call: the filters' after-phase reads
        // the outcome's status, and is owed either way. Into this thread's
        // scratch block, each frame split off it: a thread answering many
        // calls allocates a block now and then, not one per answer.
        // (An answer sent from inside another's framing, by a filter, say,
        // finds the block taken and frames into one of its own.)
        let framed = |scratch: &mut BytesMut| {
            let frame = frame(scratch);
            if let Some(started) = self.after {
                finish_filtered(
                    scratch,
                    frame,
                    self.request_id,
                    self.serialization,
                    &self.method,
                    &self.filters,
                    self.peer,
                    started,
                )
            } else {
                frame
            }
        };
        let frame = SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => framed(&mut scratch),
            Err(_) => framed(&mut BytesMut::new()),
        });
        // A connection gone meanwhile has nobody to answer.
        let _ = match (&self.to, self.two_way) {
            // Made while the connection's handler is starting this call:
            // written by the handler with the read's other answers.
            (AnswerTo::Channel(handle), true) => match inline::keep(self.inline, frame) {
                Ok(()) => Ok(()),
                Err(frame) => handle.write_and_flush(frame).map_err(drop),
            },
            (AnswerTo::Reply(reply), true) => reply.send(frame).map_err(drop),
            (AnswerTo::Reply(reply), false) => reply.skip().map_err(drop),
            (AnswerTo::Channel(_), false) => Ok(()),
        };
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Answers with a failure.
    pub(crate) fn fail(self, failure: Failure) {
        let (id, ser) = (self.request_id, self.serialization);
        self.answer(|scratch| failure_frame(scratch, id, ser, failure.status, &failure.message));
    }
}

/// The answer to one call, to be sent later, from any thread (a deferred
/// method's second argument). Sending consumes it; dropping it unsent
/// answers [`Status::ServerError`] at once ("no answer"), so a consumer
/// never waits for its timeout because a method forgot its call.
///
/// ```
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::provider::{Dispatch, Provider, Responder, Service};
/// use gyre_rpc::ServiceKey;
/// use std::time::Duration;
///
/// let key = ServiceKey::new("demo.Later");
/// let provider = Provider::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .service(
///         Service::builder(key.clone())
///             .dispatch(Dispatch::IoThread)
///             // The loop hands the call over and goes on; another thread
///             // answers 50 ms later.
///             .deferred_method("double", |n: u64, answer: Responder<u64>| {
///                 std::thread::spawn(move || {
///                     std::thread::sleep(Duration::from_millis(50));
///                     answer.send(Ok(n * 2));
///                 });
///             })
///             .build(),
///     )
///     .start()?;
/// let conn = Consumer::builder().build()?.connect(provider.local_addr())?;
/// let doubled: u64 = conn.call(&key, "double", &21u64)?;
/// assert_eq!(doubled, 42);
/// provider.shutdown(Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Responder<Resp> {
    pending: Option<Pending>,
    _result: PhantomData<fn(Resp)>,
}

impl<Resp> std::fmt::Debug for Responder<Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("request_id", &self.pending.as_ref().map(|p| p.request_id))
            .finish()
    }
}

impl<Resp: Serialize> Responder<Resp> {
    pub(crate) fn new(pending: Pending) -> Self {
        Responder {
            pending: Some(pending),
            _result: PhantomData,
        }
    }

    /// Answers the call: the result, or the method's error (the consumer
    /// gets [`Status::ServiceError`] with its message).
    pub fn send(mut self, result: Result<Resp, ServiceError>) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let (id, ser) = (pending.request_id, pending.serialization);
        let max_body = pending.max_body;
        pending.answer(|scratch| {
            let value = match result {
                Ok(value) => value,
                Err(e) => return failure_frame(scratch, id, ser, Status::ServiceError, &e.0),
            };
            response(scratch, id, ser, max_body, |out| {
                ser.serialize(&value, out).map_err(|e| Failure {
                    status: Status::ServerError,
                    message: e.to_string(),
                })
            })
        });
    }

    /// Whether the consumer's connection is still open (an answer to a
    /// closed one is dropped): a long computation can stop early.
    pub fn is_open(&self) -> bool {
        match self.pending.as_ref().map(|p| &p.to) {
            Some(AnswerTo::Channel(handle)) => handle.is_open(),
            Some(AnswerTo::Reply(reply)) => reply.is_open(),
            None => false,
        }
    }
}

impl<Resp> Drop for Responder<Resp> {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            tracing::warn!(
                service = %pending.method.service,
                method = %pending.method.name,
                "a deferred method dropped its responder without answering"
            );
            let message = format!("{} dropped the call without answering", pending.method.name);
            pending.fail(Failure {
                status: Status::ServerError,
                message,
            });
        }
    }
}

/// Starts a deferred method: the filters' before-phase, then the method
/// with a pending answer that goes to `to`. The call must already be
/// counted in the provider's in-flight calls; the answer (or the refusal,
/// or the bad-arguments failure) counts it out. `inline`: the ticket of
/// the sink the caller opened for an answer made before this returns.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_deferred(
    entry: &Arc<MethodEntry>,
    method: &DeferredMethod,
    request_id: u64,
    serialization: Serialization,
    two_way: bool,
    args: &[u8],
    peer: Option<SocketAddr>,
    to: AnswerTo,
    filters: &Arc<[Arc<dyn Filter>]>,
    max_body: usize,
    in_flight: &Arc<AtomicUsize>,
    inline: Option<Ticket>,
) {
    let mut pending = Pending {
        to,
        request_id,
        serialization,
        two_way,
        method: entry.clone(),
        peer,
        after: (!filters.is_empty()).then(Instant::now),
        filters: filters.clone(),
        max_body,
        in_flight: in_flight.clone(),
        inline,
    };
    if pending.after.is_some() {
        if let Err(r) = run_before(filters, &info(entry, peer)) {
            // Refused before it ran: the after-phase is not owed.
            pending.after = None;
            return pending.fail(Failure {
                status: r.status,
                message: r.message,
            });
        }
    }
    let mut pending = Some(pending);
    if let Err(failure) = method(serialization, args, &mut pending) {
        if let Some(pending) = pending {
            pending.fail(failure);
        }
    }
}
