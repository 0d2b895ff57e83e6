//! What a call can end in besides its result.

use crate::filter::Refusal;
use crate::protocol::{BodyTooLarge, InvocationError, SerializationError, Status};
use std::time::Duration;

/// Why a call has no result.
///
/// ```
/// use gyre_rpc::consumer::{CallOptions, Consumer, RpcError};
/// use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
/// use gyre_rpc::{ServiceKey, Status};
/// use std::time::Duration;
///
/// let key = ServiceKey::new("demo.Slow");
/// let provider = Provider::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .service(Service::builder(key.clone()).dispatch(Dispatch::WorkerPool)
///         .method("nap", |ms: u64| { std::thread::sleep(Duration::from_millis(ms)); Ok::<_, ServiceError>(()) })
///         .build())
///     .start()?;
/// let conn = Consumer::builder().build()?.connect(provider.local_addr())?;
/// let quick = CallOptions::default().timeout(Duration::from_millis(20));
/// match conn.call_with::<_, ()>(&key, "nap", &200u64, &quick) {
///     Err(e @ RpcError::Timeout(_)) => {
///         assert_eq!(e.status(), Status::ClientTimeout);
///         assert!(e.is_retryable()); // another provider might answer in time
///     }
///     other => panic!("{other:?}"),
/// }
/// provider.shutdown(Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No answer within the call's timeout; a late answer is dropped.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The provider answered with a failure status and this message.
    #[error("{status:?}: {message}")]
    Failed {
        /// The response status.
        status: Status,
        /// Its message.
        message: String,
    },
    /// The connection closed (or was never up) before the answer came.
    #[error("connection closed before the answer")]
    Closed,
    /// The arguments of a call did not serialize.
    #[error("cannot serialize the arguments of {call}: {source}")]
    Arguments {
        /// Which call: `` `method` of service ``.
        call: String,
        /// What the serializer said.
        source: SerializationError,
    },
    /// The provider's result did not deserialize as the type the caller
    /// asked for (most often: the caller and the provider disagree on the
    /// method's result type).
    #[error("the result of {call} is not a {expected}: {source}")]
    Result {
        /// Which call: `` `method` of service `` (an asynchronous call
        /// names only its service: its future keeps no copy of the
        /// method's name, so that it allocates nothing for it).
        call: String,
        /// The type the caller asked for.
        expected: &'static str,
        /// What the deserializer said.
        source: SerializationError,
    },
    /// A name or attachment too long for the wire format.
    #[error(transparent)]
    Invocation(#[from] InvocationError),
    /// The request body is over the limit.
    #[error(transparent)]
    TooLarge(#[from] BodyTooLarge),
    /// Connecting failed.
    #[error("cannot connect: {0}")]
    Connect(#[from] gyre_reactor::Error),
    /// A cluster call found no provider to send to.
    #[error("no provider of {0} is available")]
    NoProvider(String),
    /// A blocking call made on an event loop's thread: on one of its own
    /// consumer's (from a consumer filter, say) that loop would have to
    /// answer it while waiting, and would hang for good; on any other (a
    /// provider method dispatched on its I/O thread) it would hold that
    /// loop's other connections until the answer came. Refused at once.
    #[error("a blocking call on an event loop's thread would block that loop (on its own consumer's, wait for itself); use call_async there, or run the method on the worker pool")]
    BlockingOnLoop,
    /// A cluster call not made: its method is degraded to its fallback
    /// ([`Cluster::degrade`](crate::cluster::Cluster::degrade)), which was
    /// given this as the reason and chose to fail.
    #[error("{call} is degraded to its fallback")]
    Degraded {
        /// Which call: `` `method` of service ``.
        call: String,
    },
    /// A failsafe or failback cluster call failed and has no result; the
    /// mode logged the failure (failback also retries it in the
    /// background). [`Cluster::call_optional`](crate::cluster::Cluster::call_optional)
    /// reports this as `Ok(None)`.
    #[error("{mode} call to {call} has no result: {cause}")]
    Absorbed {
        /// `failsafe` or `failback`.
        mode: &'static str,
        /// Which call: `` `method` of service ``.
        call: String,
        /// Why it failed.
        cause: Box<RpcError>,
    },
}

impl RpcError {
    /// The arguments of `method` of `service` did not serialize.
    pub(crate) fn arguments(
        service: &crate::ServiceKey,
        method: &str,
        source: SerializationError,
    ) -> RpcError {
        RpcError::Arguments {
            call: call_name(service, method),
            source,
        }
    }
}

/// How errors name a call.
pub(crate) fn call_name(service: &crate::ServiceKey, method: &str) -> String {
    format!("`{method}` of {service}")
}

impl From<Refusal> for RpcError {
    /// A filter's refusal or override, as the caller sees it.
    fn from(r: Refusal) -> RpcError {
        RpcError::Failed {
            status: r.status,
            message: r.message,
        }
    }
}

impl RpcError {
    /// Whether another provider might answer the same call: the connection
    /// or the provider failed, not the call itself (a method's own error, a
    /// bad request or an unreadable result would fail anywhere).
    pub fn is_retryable(&self) -> bool {
        match self {
            RpcError::Timeout(_)
            | RpcError::Closed
            | RpcError::Connect(_)
            | RpcError::NoProvider(_) => true,
            RpcError::Failed { status, .. } => matches!(
                status,
                Status::ServerTimeout
                    | Status::ServerError
                    | Status::ServerOverloaded
                    | Status::ServiceNotFound
            ),
            RpcError::Arguments { .. }
            | RpcError::Result { .. }
            | RpcError::Invocation(_)
            | RpcError::TooLarge(_)
            | RpcError::BlockingOnLoop
            | RpcError::Degraded { .. }
            | RpcError::Absorbed { .. } => false,
        }
    }

    /// The status a Dubbo user would file this under.
    pub fn status(&self) -> Status {
        match self {
            RpcError::Timeout(_) => Status::ClientTimeout,
            RpcError::Failed { status, .. } => *status,
            RpcError::Result { .. } => Status::BadResponse,
            RpcError::Absorbed { cause, .. } => cause.status(),
            RpcError::Arguments { .. } => Status::BadRequest,
            RpcError::Closed
            | RpcError::Invocation(_)
            | RpcError::TooLarge(_)
            | RpcError::Connect(_)
            | RpcError::NoProvider(_)
            | RpcError::Degraded { .. }
            | RpcError::BlockingOnLoop => Status::ClientError,
        }
    }
}
