//! What a call can end in besides its result.

use crate::filter::Refusal;
use crate::protocol::{BodyTooLarge, InvocationError, SerializationError, Status};
use std::time::Duration;

/// Why a call has no result.
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
    /// The request or the result did not (de)serialize.
    #[error(transparent)]
    Serialization(#[from] SerializationError),
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
            RpcError::Serialization(_) | RpcError::Invocation(_) | RpcError::TooLarge(_) => false,
        }
    }

    /// The status a Dubbo user would file this under.
    pub fn status(&self) -> Status {
        match self {
            RpcError::Timeout(_) => Status::ClientTimeout,
            RpcError::Failed { status, .. } => *status,
            RpcError::Serialization(_) => Status::BadResponse,
            RpcError::Closed
            | RpcError::Invocation(_)
            | RpcError::TooLarge(_)
            | RpcError::Connect(_)
            | RpcError::NoProvider(_) => Status::ClientError,
        }
    }
}
