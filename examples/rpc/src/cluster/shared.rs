//! What every handle on a cluster and its maintenance thread share: the
//! service, the mode, the balancer, the fallbacks, the member list and
//! the failback calls waiting for a retry. Uses the cluster's members,
//! balancer, fallbacks and mode, and the consumer.

use super::balance::LoadBalancer;
use super::fallback::Fallbacks;
use super::members::Snapshot;
use super::mode::ClusterMode;
use crate::consumer::{CallOptions, Consumer};
use crate::ServiceKey;
use arc_swap::ArcSwap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// A call kept for a later retry (failback).
pub(super) struct Retry {
    pub(super) method: String,
    pub(super) args: bytes::Bytes,
    pub(super) attempts: usize,
    pub(super) due: Instant,
}

/// A cluster's state, shared by its handles, its calls in flight and its
/// maintenance thread.
pub(super) struct Shared {
    pub(super) consumer: Consumer,
    pub(super) service: ServiceKey,
    pub(super) mode: ClusterMode,
    pub(super) balancer: Box<dyn LoadBalancer>,
    /// Whether calls are timed for the balancer (asked of it once).
    pub(super) timed: bool,
    /// The options of calls made without their own (an `Arc`, so an
    /// asynchronous call holds them without copying them).
    pub(super) options: Arc<CallOptions>,
    pub(super) fallbacks: Fallbacks,
    pub(super) members: ArcSwap<Snapshot>,
    pub(super) retries: Mutex<Vec<Retry>>,
    /// Notified when the list is replaced (providers added, connected
    /// again or gone), for `Cluster::wait_for_providers`; never touched
    /// by a call.
    pub(super) list_changed: (Mutex<()>, Condvar),
}

impl Shared {
    /// Replaces the member list and tells whoever waits for it.
    pub(super) fn store(&self, next: Arc<Snapshot>) {
        self.members.store(next);
        self.notify_list_changed();
    }

    pub(super) fn notify_list_changed(&self) {
        let _guard = self
            .list_changed
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.list_changed.1.notify_all();
    }
}
