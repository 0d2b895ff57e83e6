//! [`Link`]: what every call on one connection shares: the channel's
//! handle, the filings, the counts of calls in flight and of answers read
//! by their callers, the largest body an answer may have, whether the
//! provider said it is shutting down, and whether a graceful close began. The
//! `Connection` holds it in one `Arc`, so an asynchronous call's future
//! takes all of it with one clone. Uses the consumer's filings, pending
//! calls' `Outgoing` and the `Settling` of calls read by their callers
//! (`lent`), and the reactor's channel handle.

use super::filings::Filings;
use super::lent::Settling;
use super::pending::Outgoing;
use gyre_reactor::ChannelHandle;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::Arc;

/// One connection's shared parts (see the module's doc).
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) handle: ChannelHandle<Outgoing>,
    /// Calls sent from callers' threads, for the loop to settle; shared
    /// with the connection's pipeline.
    pub(crate) filings: Arc<Filings>,
    /// Calls in flight; shared with the pipeline and the filings.
    pub(crate) waiting: Arc<AtomicUsize>,
    /// Answers read by their callers (see
    /// [`Connection::answers_read_by_callers`](super::Connection::answers_read_by_callers)).
    pub(crate) read_own: AtomicU64,
    pub(crate) max_body: usize,
    /// The provider said it is shutting down (set on the loop).
    pub(crate) read_only: Arc<AtomicBool>,
    /// A graceful close began: new calls fail with `Closed` (see
    /// `closing`).
    pub(crate) closing: AtomicBool,
}

impl Link {
    /// What a call settled by its caller touches on this connection.
    pub(crate) fn settling(&self) -> Settling<'_> {
        Settling {
            filings: &self.filings,
            waiting: &self.waiting,
            read_own: &self.read_own,
            max_body: self.max_body,
        }
    }
}
