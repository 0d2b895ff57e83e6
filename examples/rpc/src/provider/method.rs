//! A provider's methods as plain data: the erased signatures every method
//! is stored behind (answering now, or later through a pending answer),
//! their names, and what a failure answers. Uses the protocol's types and
//! the reactor's handle and reply only; everything in the provider builds
//! on it.

use super::inline::Ticket;
use crate::filter::Filter;
use crate::protocol::{Serialization, Status};
use bytes::{Bytes, BytesMut};
use gyre_reactor::{ChannelHandle, Reply};
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

/// What a method returns when it fails: the consumer gets
/// [`Status::ServiceError`] with this message.
///
/// ```
/// use gyre_rpc::provider::{Service, ServiceError};
/// use gyre_rpc::ServiceKey;
///
/// // The consumer gets Status::ServiceError with this message.
/// let svc = Service::builder(ServiceKey::new("demo.Users"))
///     .method("find", |id: u64| -> Result<String, ServiceError> {
///         if id == 0 {
///             return Err(ServiceError::new(format!("no user {id}")));
///         }
///         Ok(format!("user {id}"))
///     })
///     .build();
/// # drop(svc);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ServiceError(pub String);

impl ServiceError {
    /// A service error saying `message`.
    pub fn new(message: impl Into<String>) -> ServiceError {
        ServiceError(message.into())
    }
}

/// Why a call produced no result: the status and message to answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The response status.
    pub status: Status,
    /// The response body.
    pub message: String,
}

/// One method behind the erased signature every method shares: arguments in
/// the frame's serialization in, the result appended to `out`. One dynamic
/// call per request is the price of a table of differently typed methods
/// (Dubbo pays a reflective call); the work behind it is a deserialize, the
/// method and a serialize.
pub(crate) type Method =
    dyn Fn(Serialization, &[u8], &mut BytesMut) -> Result<(), Failure> + Send + Sync;

/// A method that answers later: it deserializes the arguments and, if they
/// are good, takes the pending answer out of the option and hands it to
/// the user's function as a typed [`Responder`]; bad arguments leave it
/// there for the caller to answer `BadRequest`.
pub(crate) type DeferredMethod =
    dyn Fn(Serialization, &[u8], &mut Option<Pending>) -> Result<(), Failure> + Send + Sync;

/// How a method answers.
pub(crate) enum Body {
    /// Before it returns: the result is written into the response frame.
    Now(Box<Method>),
    /// Through a [`Responder`], whenever and from wherever it likes.
    Later(Box<DeferredMethod>),
}

/// A method with its names, so filters and pool workers can say which call
/// they are looking at without allocating.
pub(crate) struct MethodEntry {
    pub(crate) service: String,
    pub(crate) name: String,
    pub(crate) body: Body,
    /// Runs on the connection's event loop whatever its service's
    /// dispatch (an asynchronous method, whose future the loop polls).
    pub(crate) on_loop: bool,
}

/// Where a deferred answer goes.
pub(crate) enum AnswerTo {
    /// Straight into the connection's pipeline (an event-loop method).
    Channel(ChannelHandle<Bytes>),
    /// Back through the worker pool's offload stage.
    Reply(Reply<Bytes>),
}

/// An answer owed by a deferred method: everything it needs to be framed,
/// filtered, sent and counted out, from any thread.
pub(crate) struct Pending {
    pub(crate) to: AnswerTo,
    pub(crate) request_id: u64,
    pub(crate) serialization: Serialization,
    pub(crate) two_way: bool,
    pub(crate) method: Arc<MethodEntry>,
    pub(crate) peer: Option<SocketAddr>,
    /// When the call started, where the filters' after-phase is owed
    /// (their before-phase ran); the clock is read only then.
    pub(crate) after: Option<Instant>,
    pub(crate) filters: Arc<[Arc<dyn Filter>]>,
    pub(crate) max_body: usize,
    /// The provider's in-flight count, which holds this call until it is
    /// answered (or dropped).
    pub(crate) in_flight: Arc<AtomicUsize>,
    /// The connection's handler started this call with its sink for
    /// answers made at once open (`super::inline`).
    pub(crate) inline: Option<Ticket>,
}
