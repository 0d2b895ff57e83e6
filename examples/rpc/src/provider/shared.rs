//! What every connection of a provider shares, and its worker pool's jobs
//! point back to: the exported services, the limits, the filters and the
//! in-flight count. Plain data; uses the service table and the filters.

use super::service::Exports;
use crate::filter::Filter;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// What every connection of a provider shares.
pub(crate) struct Shared {
    pub(crate) exports: Exports,
    pub(crate) max_body: usize,
    /// Filters around every call.
    pub(crate) filters: Arc<[Arc<dyn Filter>]>,
    /// Calls taken and not yet answered (for graceful shutdown); shared
    /// with the deferred answers that hold calls open.
    pub(crate) in_flight: Arc<AtomicUsize>,
    /// The token every call must carry (see `ProviderBuilder::token`).
    pub(crate) token: Option<Arc<str>>,
}
