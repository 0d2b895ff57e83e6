//! The fault-tolerance modes a cluster calls in (Dubbo's cluster types):
//! plain data, read by the call path.

use std::time::Duration;

/// What the cluster does when a call fails.
///
/// ```
/// use gyre_rpc::cluster::{Cluster, ClusterMode};
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::ServiceKey;
/// use std::time::Duration;
///
/// let consumer = || Consumer::builder().build().unwrap();
/// // Reads: try up to two more providers on a provider's failure.
/// let reads = Cluster::builder(ServiceKey::new("demo.Kv")).mode(ClusterMode::Failover { retries: 2 }).build(consumer());
/// // Notifications: retry in the background every second, up to 30 times.
/// let notes = Cluster::builder(ServiceKey::new("demo.Notify"))
///     .mode(ClusterMode::Failback { every: Duration::from_secs(1), max_retries: 30 })
///     .build(consumer());
/// // Cache invalidation: every provider.
/// let purge = Cluster::builder(ServiceKey::new("demo.Cache")).mode(ClusterMode::Broadcast).build(consumer());
/// # drop((reads, notes, purge));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterMode {
    /// Retry on other providers, up to `retries` more times, when the
    /// failure is the provider's or the connection's (Dubbo's default, with
    /// 2 retries). A method's own error is not retried.
    Failover {
        /// Extra attempts after the first.
        retries: usize,
    },
    /// One attempt; its failure is the call's.
    Failfast,
    /// One attempt; a failure is logged and the call has no result
    /// ([`Cluster::call_optional`](crate::cluster::Cluster::call_optional) gives `Ok(None)`), for calls whose loss
    /// is harmless (audit logs).
    Failsafe,
    /// One attempt; a failure the connection or the provider caused is
    /// recorded and retried in the background every `every`, up to
    /// `max_retries` times, and the call has no result at once
    /// ([`Cluster::call_optional`](crate::cluster::Cluster::call_optional) gives `Ok(None)`), for notifications that
    /// must arrive sometime.
    Failback {
        /// The retry period.
        every: Duration,
        /// Attempts before the call is dropped (and logged).
        max_retries: usize,
    },
    /// The call goes to `parallel` providers at once; the first success is
    /// the result, and it fails only if all fail (for latency-critical
    /// reads, at the cost of load).
    Forking {
        /// How many providers.
        parallel: usize,
    },
    /// The call goes to every provider; it fails if any fails, else the
    /// result is the last provider's (cache invalidations, config pushes).
    Broadcast,
}

impl Default for ClusterMode {
    fn default() -> Self {
        ClusterMode::Failover { retries: 2 }
    }
}
