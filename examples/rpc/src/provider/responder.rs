//! Answering a call later: a [`Responder`] is handed to a deferred method
//! (`ServiceBuilder::deferred_method`) and may be sent from any thread, at
//! any time before the consumer's timeout. Uses the answer framing, the
//! filters' after-phase and the provider's in-flight count; the answer goes
//! through the connection's handle (event-loop methods) or the offload
//! stage's reply (pool methods).

use super::answer::{failure_frame, finish_filtered};
use super::service::{Failure, MethodEntry, ServiceError};
use super::shared::Shared;
use crate::protocol::{encode_frame, Kind, Serialization, Status};
use bytes::{Bytes, BytesMut};
use gyre_reactor::{ChannelHandle, Reply};
use serde::Serialize;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Where a deferred answer goes.
pub(crate) enum AnswerTo {
    /// Straight into the connection's pipeline (an event-loop method).
    Channel(ChannelHandle<Bytes>),
    /// Back through the worker pool's offload stage.
    Reply(Reply<Bytes>),
}

/// Everything a deferred answer needs, untyped.
pub(crate) struct Pending {
    pub(crate) to: AnswerTo,
    pub(crate) request_id: u64,
    pub(crate) serialization: Serialization,
    pub(crate) two_way: bool,
    pub(crate) method: Arc<MethodEntry>,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) started: Instant,
    /// Whether the filters' after-phase is owed (their before-phase ran).
    pub(crate) after: bool,
    /// Counted in `in_flight` until answered (or dropped).
    pub(crate) shared: Arc<Shared>,
}

impl Pending {
    /// Sends `frame(scratch)` (unless the call is one-way) and counts the
    /// call out.
    fn answer(self, frame: impl FnOnce(&mut BytesMut) -> Bytes) {
        // Framed even for a one-way call: the filters' after-phase reads
        // the outcome's status, and is owed either way.
        let mut scratch = BytesMut::new();
        let frame = frame(&mut scratch);
        let frame = if self.after {
            finish_filtered(
                &mut scratch,
                frame,
                self.request_id,
                self.serialization,
                &self.method,
                &self.shared.filters,
                self.peer,
                self.started,
            )
        } else {
            frame
        };
        // A connection gone meanwhile has nobody to answer.
        let _ = match (&self.to, self.two_way) {
            (AnswerTo::Channel(handle), true) => handle.write_and_flush(frame).map_err(drop),
            (AnswerTo::Reply(reply), true) => reply.send(frame).map_err(drop),
            (AnswerTo::Reply(reply), false) => reply.skip().map_err(drop),
            (AnswerTo::Channel(_), false) => Ok(()),
        };
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
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
        let max_body = pending.shared.max_body;
        pending.answer(|scratch| {
            let value = match result {
                Ok(value) => value,
                Err(e) => return failure_frame(scratch, id, ser, Status::ServiceError, &e.0),
            };
            let encoded = encode_frame(
                scratch,
                Kind::Response(Status::Ok),
                ser,
                id,
                max_body,
                |out| ser.serialize(&value, out),
            );
            match encoded {
                Ok(Ok(frame)) => frame,
                Ok(Err(too_large)) => failure_frame(
                    scratch,
                    id,
                    ser,
                    Status::ServerError,
                    &format!("result too large: {too_large}"),
                ),
                Err(e) => failure_frame(scratch, id, ser, Status::ServerError, &e.to_string()),
            }
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
