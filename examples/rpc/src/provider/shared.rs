//! What every connection of a provider shares, and its worker pool's jobs
//! point back to: the exported services and their routes, the limits, the
//! filters, the in-flight count and the open connections' handles. Plain
//! data; uses the service and routing tables, the filters and the
//! reactor's channel group.

use super::routes::Routes;
use super::service::Exports;
use crate::filter::Filter;
use bytes::Bytes;
use gyre_reactor::ChannelGroup;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// What every connection of a provider shares.
pub(crate) struct Shared {
    pub(crate) exports: Exports,
    /// Every exported method by its calls' routing bytes.
    pub(crate) routes: Routes,
    pub(crate) max_body: usize,
    /// Filters around every call.
    pub(crate) filters: Arc<[Arc<dyn Filter>]>,
    /// Calls taken and not yet answered (for graceful shutdown); shared
    /// with the deferred answers that hold calls open.
    pub(crate) in_flight: Arc<AtomicUsize>,
    /// The token every call must carry (see `ProviderBuilder::token`).
    pub(crate) token: Option<Arc<str>>,
    /// Consumer connections served at once (`ProviderBuilder::accepts`;
    /// 0: no limit), and those open now.
    pub(crate) accepts: usize,
    pub(crate) connections: AtomicUsize,
    /// Every connection open now, so shutdown can tell each the provider
    /// is going (read-only). Locked as a connection opens and at
    /// shutdown, never per call.
    pub(crate) open: ChannelGroup<Bytes>,
}
