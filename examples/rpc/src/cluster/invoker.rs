//! A cluster invoker: one service exported by several providers, called
//! through a load balancer in one of Dubbo's fault-tolerance modes.
//!
//! The cluster keeps one [`Connection`] per provider. Providers come from
//! [`Cluster::set_providers`] (a registry subscription, or a fixed list);
//! a provider whose connection drops is left out of selection and
//! reconnected in the background with exponential back-off (100 ms doubling
//! to 5 s).
//!
//! A list that comes from a registry is trusted to add providers, not to
//! take away ones that still answer (Dubbo's empty protection): a registry
//! that restarts empty, or a provider's registration lost for a moment,
//! must not cut calls off from providers that are up. A provider missing
//! from the registry's list stays while its connection is open (the
//! heartbeat closes it once the provider stops answering) and leaves when
//! the connection closes; it is listed again as soon as the registry lists
//! it. A list given with [`Cluster::set_providers`] is taken exactly.

use super::balance::{fingerprint, hash_key, Candidates, Endpoint, LoadBalancer, WeightedRandom};
use super::fallback::{self, Fallbacks};
use crate::consumer::{
    call_name, decode_answer, serialize_args, Answer, CallOptions, Connection, Consumer, RpcError,
    Sink,
};
use crate::registry::contract::ProviderEntry;
use crate::{ServiceKey, Status};
use arc_swap::ArcSwap;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

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
    /// ([`Cluster::call_optional`] gives `Ok(None)`), for calls whose loss
    /// is harmless (audit logs).
    Failsafe,
    /// One attempt; a failure the connection or the provider caused is
    /// recorded and retried in the background every `every`, up to
    /// `max_retries` times, and the call has no result at once
    /// ([`Cluster::call_optional`] gives `Ok(None)`), for notifications that
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

struct Member {
    endpoint: Arc<Endpoint>,
    conn: Option<Arc<Connection>>,
    /// The token the provider requires, as the registry published it.
    token: Option<Arc<str>>,
    /// When to try connecting again, and the back-off after that.
    retry_at: Instant,
    backoff: Duration,
    /// In the last list given; a member that is not stays only while its
    /// connection is open.
    listed: bool,
}

impl Member {
    fn is_live(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.is_open())
    }

    /// Connected, and its provider is not shutting down.
    fn is_available(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.is_available())
    }

    /// The same provider and connection, listed or not.
    fn listed(&self, listed: bool) -> Arc<Member> {
        Arc::new(Member {
            endpoint: self.endpoint.clone(),
            conn: self.conn.clone(),
            token: self.token.clone(),
            retry_at: self.retry_at,
            backoff: self.backoff,
            listed,
        })
    }
}

/// The provider list as calls see it: replaced whole when it changes, read
/// on every call without a lock.
struct Snapshot {
    members: Vec<Arc<Member>>,
    /// The members' endpoints, in the same order, for the balancer.
    endpoints: Vec<Arc<Endpoint>>,
    fingerprint: u64,
}

impl Snapshot {
    fn new(members: Vec<Arc<Member>>) -> Arc<Snapshot> {
        let endpoints: Vec<Arc<Endpoint>> = members.iter().map(|m| m.endpoint.clone()).collect();
        Arc::new(Snapshot {
            fingerprint: fingerprint(&endpoints),
            members,
            endpoints,
        })
    }

    /// The members a balancer chooses from: those connected whose
    /// providers are not shutting down, or, where every connected one is
    /// (Dubbo's reselection does the same), the connected ones: a
    /// provider shutting down still answers until it closes.
    fn live(&self) -> Candidates<'_> {
        let available = Candidates::new(&self.endpoints, self.fingerprint, |i| {
            self.members[i].is_available()
        });
        if !available.is_empty() {
            return available;
        }
        Candidates::new(&self.endpoints, self.fingerprint, |i| {
            self.members[i].is_live()
        })
    }
}

/// A call kept for a later retry (failback).
struct Retry {
    method: String,
    args: bytes::Bytes,
    attempts: usize,
    due: Instant,
}

struct Inner {
    consumer: Consumer,
    service: ServiceKey,
    mode: ClusterMode,
    balancer: Box<dyn LoadBalancer>,
    /// Whether calls are timed for the balancer (asked of it once).
    timed: bool,
    options: CallOptions,
    fallbacks: Fallbacks,
    members: ArcSwap<Snapshot>,
    retries: Mutex<Vec<Retry>>,
    /// Notified when the list is replaced (providers added, connected
    /// again or gone), for [`Cluster::wait_for_providers`]; never touched
    /// by a call.
    list_changed: (Mutex<()>, Condvar),
}

impl Inner {
    fn store(&self, next: Arc<Snapshot>) {
        self.members.store(next);
        self.notify_list_changed();
    }

    fn notify_list_changed(&self) {
        let _guard = self
            .list_changed
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.list_changed.1.notify_all();
    }
}

/// Builds a [`Cluster`].
///
/// ```
/// use gyre_rpc::cluster::{Cluster, ClusterMode, LeastActive};
/// use gyre_rpc::consumer::{CallOptions, Consumer};
/// use gyre_rpc::ServiceKey;
/// use std::time::Duration;
///
/// let cluster = Cluster::builder(ServiceKey::new("demo.Search"))
///     .mode(ClusterMode::Forking { parallel: 2 })     // first of two answers
///     .balancer(LeastActive)                          // the least busy providers
///     .options(CallOptions::default().timeout(Duration::from_millis(300)))
///     .build(Consumer::builder().build()?);
/// cluster.set_providers([("127.0.0.1:20881".parse()?, 100), ("127.0.0.1:20882".parse()?, 100)]);
/// assert_eq!(cluster.providers().len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ClusterBuilder {
    service: ServiceKey,
    mode: ClusterMode,
    balancer: Box<dyn LoadBalancer>,
    options: CallOptions,
    fallbacks: Fallbacks,
}

impl ClusterBuilder {
    /// The fault-tolerance mode (default failover with 2 retries).
    pub fn mode(mut self, mode: ClusterMode) -> Self {
        self.mode = mode;
        self
    }

    /// The load balancer (default [`WeightedRandom`]).
    pub fn balancer(mut self, balancer: impl LoadBalancer + 'static) -> Self {
        self.balancer = Box::new(balancer);
        self
    }

    /// Options for every call (timeout, serialization, attachments).
    pub fn options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// Gives `method` a fallback (Dubbo's mock): when a call of it fails
    /// for want of a working provider (none available, a timeout, a
    /// closed connection, a provider overloaded or failing:
    /// [`RpcError::is_retryable`]), after the mode has tried what it
    /// tries, `fallback` is given the failure and its result is the
    /// call's, as if a provider had answered it (so the caller's result
    /// type must match). A method's own failure is never replaced.
    /// [`Cluster::degrade`] makes the fallback answer every call without
    /// calling (Dubbo's `force:` mock).
    ///
    /// ```
    /// use gyre_rpc::cluster::Cluster;
    /// use gyre_rpc::consumer::Consumer;
    /// use gyre_rpc::ServiceKey;
    ///
    /// let prices = Cluster::builder(ServiceKey::new("demo.Prices"))
    ///     .fallback("quote", |_failure| Ok(Vec::<u64>::new()))
    ///     .build(Consumer::builder().build()?);
    /// // No provider at all: the fallback's empty list.
    /// let quotes: Vec<u64> = prices.call("quote", &"GYRE")?;
    /// assert!(quotes.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fallback<Resp, F>(mut self, method: impl Into<String>, fallback: F) -> Self
    where
        Resp: Serialize,
        F: Fn(&RpcError) -> Result<Resp, RpcError> + Send + Sync + 'static,
    {
        self.fallbacks.add(method.into(), fallback);
        self
    }

    /// The cluster, calling through `consumer`'s event loops; it has no
    /// providers until [`Cluster::set_providers`].
    pub fn build(self, consumer: Consumer) -> Cluster {
        let inner = Arc::new(Inner {
            consumer,
            service: self.service,
            mode: self.mode,
            timed: self.balancer.uses_response_times(),
            balancer: self.balancer,
            options: self.options,
            fallbacks: self.fallbacks,
            members: ArcSwap::new(Snapshot::new(Vec::new())),
            retries: Mutex::new(Vec::new()),
            list_changed: (Mutex::new(()), Condvar::new()),
        });
        let weak = Arc::downgrade(&inner);
        let _ = std::thread::Builder::new()
            .name("gyre-rpc-cluster".into())
            .spawn(move || maintain(weak));
        Cluster { inner }
    }
}

/// One service's providers, called as one.
///
/// ```
/// use gyre_rpc::cluster::{Cluster, ClusterMode, SmoothRoundRobin};
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
/// use gyre_rpc::ServiceKey;
///
/// let key = ServiceKey::new("demo.Who");
/// let providers: Vec<Provider> = (0..2)
///     .map(|i| {
///         Provider::builder()
///             .listen("127.0.0.1:0".parse().unwrap())
///             .service(
///                 Service::builder(key.clone())
///                     .dispatch(Dispatch::IoThread)
///                     .method("who", move |_: ()| Ok::<_, ServiceError>(i))
///                     .build(),
///             )
///             .start()
///             .unwrap()
///     })
///     .collect();
/// let cluster = Cluster::builder(key)
///     .mode(ClusterMode::Failover { retries: 1 })
///     .balancer(SmoothRoundRobin)
///     .build(Consumer::builder().build().unwrap());
/// cluster.set_providers(providers.iter().map(|p| (p.local_addr(), 100)));
/// let answers: Vec<i32> = (0..4).map(|_| cluster.call("who", &()).unwrap()).collect();
/// assert_eq!(answers.iter().filter(|&&i| i == 0).count(), 2);
/// ```
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("service", &self.inner.service)
            .field("mode", &self.inner.mode)
            .field("providers", &self.providers())
            .finish()
    }
}

fn connect(
    consumer: &Consumer,
    addr: SocketAddr,
    token: &Option<Arc<str>>,
) -> Option<Arc<Connection>> {
    match consumer.connect_with_token(addr, token.clone()) {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            tracing::warn!(%addr, error = %e, "cannot connect to provider; will retry");
            None
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Cluster {
    /// Starts describing a cluster of `service`'s providers.
    pub fn builder(service: ServiceKey) -> ClusterBuilder {
        ClusterBuilder {
            service,
            mode: ClusterMode::default(),
            balancer: Box::new(WeightedRandom),
            fallbacks: Fallbacks::default(),
            options: CallOptions::default(),
        }
    }

    /// The service.
    pub fn service(&self) -> &ServiceKey {
        &self.inner.service
    }

    /// Replaces the provider list with `providers` (address, weight):
    /// providers already known keep their connection and balancer state,
    /// new ones are connected, missing ones are closed.
    pub fn set_providers(&self, providers: impl IntoIterator<Item = (SocketAddr, u32)>) {
        let entries = providers
            .into_iter()
            .map(|(addr, weight)| ProviderEntry::new(addr, weight));
        set_providers(&self.inner, entries, Missing::Close);
    }

    /// Replaces the provider list as [`set_providers`](Self::set_providers)
    /// does, with each provider's token (what a registry lists).
    pub fn set_provider_entries(&self, providers: impl IntoIterator<Item = ProviderEntry>) {
        set_providers(&self.inner, providers, Missing::Close);
    }

    /// Follows what `registry` lists for the service, until the returned
    /// subscription is dropped: listed providers are added; unlisted ones
    /// stay while they are connected and answering (see the module doc).
    pub fn subscribe(
        &self,
        registry: &dyn crate::registry::contract::Registry,
    ) -> Result<crate::registry::contract::Subscription, crate::registry::contract::RegistryError>
    {
        let weak = Arc::downgrade(&self.inner);
        registry.subscribe(
            &self.inner.service,
            Box::new(move |list| {
                if let Some(inner) = weak.upgrade() {
                    tracing::info!(service = %inner.service, providers = ?list, "provider list changed");
                    set_providers(&inner, list, Missing::KeepWhileConnected);
                }
            }),
        )
    }

    /// Waits until at least `at_least` providers are connected, or
    /// `timeout` has passed; returns how many are. For a consumer that
    /// starts with its providers (or its registry) and must not call
    /// before one is up.
    ///
    /// ```
    /// use gyre_rpc::cluster::Cluster;
    /// use gyre_rpc::consumer::Consumer;
    /// use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    /// use std::time::Duration;
    ///
    /// let key = ServiceKey::new("demo.Echo");
    /// let provider = Provider::builder()
    ///     .listen("127.0.0.1:0".parse().unwrap())
    ///     .service(Service::builder(key.clone()).dispatch(Dispatch::IoThread)
    ///         .method("echo", |s: String| Ok::<_, ServiceError>(s)).build())
    ///     .start()
    ///     .unwrap();
    /// let cluster = Cluster::builder(key).build(Consumer::builder().build().unwrap());
    /// assert!(cluster.wait_for_providers(1, Duration::from_millis(10)).is_err());
    /// cluster.set_providers([(provider.local_addr(), 100)]);
    /// assert_eq!(cluster.wait_for_providers(1, Duration::from_secs(5)).unwrap(), 1);
    /// ```
    ///
    /// # Errors
    /// [`RpcError::NoProvider`] if fewer are connected when `timeout` ends.
    pub fn wait_for_providers(
        &self,
        at_least: usize,
        timeout: Duration,
    ) -> Result<usize, RpcError> {
        let deadline = Instant::now() + timeout;
        let live = || {
            self.inner
                .members
                .load()
                .members
                .iter()
                .filter(|m| m.is_live())
                .count()
        };
        let mut guard = self
            .inner
            .list_changed
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        loop {
            let n = live();
            if n >= at_least {
                return Ok(n);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(RpcError::NoProvider(format!(
                    "{} ({n} of {at_least} connected after {timeout:?})",
                    self.inner.service
                )));
            }
            // Woken when the list changes; a connection that closes does
            // not change it, so look again at least every 20 ms.
            let wait = (deadline - now).min(Duration::from_millis(20));
            guard = self
                .inner
                .list_changed
                .1
                .wait_timeout(guard, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The providers, with whether each takes new calls now: connected,
    /// and not shutting down (see [`Connection::is_read_only`]).
    ///
    /// [`Connection::is_read_only`]: crate::consumer::Connection::is_read_only
    pub fn providers(&self) -> Vec<(SocketAddr, bool)> {
        self.inner
            .members
            .load()
            .members
            .iter()
            .map(|m| (m.endpoint.addr, m.is_available()))
            .collect()
    }

    /// Failback calls waiting for their retry.
    pub fn pending_retries(&self) -> usize {
        self.inner
            .retries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Calls `method` with `request` in the cluster's mode and returns the
    /// result (see [`ClusterMode`] for what each mode does on failure). A
    /// failsafe or failback call that failed has no result: it is
    /// [`RpcError::Absorbed`] here, `Ok(None)` from
    /// [`call_optional`](Self::call_optional).
    pub fn call<Req, Resp>(&self, method: &str, request: &Req) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.call_with(method, request, &self.inner.options)
    }

    /// The call for failsafe and failback clusters: `Ok(None)` when the
    /// mode absorbed a failure (logged; failback retries it in the
    /// background), `Err` only for what the mode does not absorb (a
    /// failback call's own error, such as a method's failure).
    ///
    /// ```
    /// use gyre_rpc::cluster::{Cluster, ClusterMode};
    /// use gyre_rpc::consumer::Consumer;
    /// use gyre_rpc::ServiceKey;
    ///
    /// let audit = Cluster::builder(ServiceKey::new("demo.Audit"))
    ///     .mode(ClusterMode::Failsafe)
    ///     .build(Consumer::builder().build().unwrap());
    /// // No provider at all: the failure is logged, and there is no result.
    /// let stored: Option<bool> = audit.call_optional("record", &"login").unwrap();
    /// assert_eq!(stored, None);
    /// ```
    pub fn call_optional<Req, Resp>(
        &self,
        method: &str,
        request: &Req,
    ) -> Result<Option<Resp>, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        match self.call(method, request) {
            Ok(r) => Ok(Some(r)),
            Err(RpcError::Absorbed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Degrades `method` to its fallback (Dubbo's `force:` mock): while
    /// on, its calls are not made and the fallback answers each, given
    /// [`RpcError::Degraded`] as the reason; off, calls go to providers
    /// again. Returns whether the method has a fallback (without one this
    /// changes nothing).
    ///
    /// ```
    /// use gyre_rpc::cluster::Cluster;
    /// use gyre_rpc::consumer::{Consumer, RpcError};
    /// use gyre_rpc::ServiceKey;
    ///
    /// let search = Cluster::builder(ServiceKey::new("demo.Search"))
    ///     .fallback("suggest", |why| match why {
    ///         RpcError::Degraded { .. } => Ok(vec!["(suggestions are off)".to_owned()]),
    ///         _ => Ok(Vec::new()),
    ///     })
    ///     .build(Consumer::builder().build()?);
    /// assert!(search.degrade("suggest", true));
    /// let got: Vec<String> = search.call("suggest", &"gy")?;
    /// assert_eq!(got, ["(suggestions are off)"]);
    /// assert!(!search.degrade("search", true), "no fallback, nothing to degrade to");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn degrade(&self, method: &str, on: bool) -> bool {
        let had = self.inner.fallbacks.force(method, on);
        if had {
            tracing::info!(service = %self.inner.service, method, degraded = on, "degraded to its fallback");
        }
        had
    }

    /// [`call`](Self::call) with `options` instead of the cluster's (a
    /// longer timeout for one method, say).
    pub fn call_with<Req, Resp>(
        &self,
        method: &str,
        request: &Req,
        options: &CallOptions,
    ) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let service = &self.inner.service;
        let Some(fallback) = self.inner.fallbacks.get(method) else {
            return self.call_providers(method, request, options);
        };
        let ser = options.serialization;
        let name = || call_name(service, method);
        let failure = if fallback.is_forced() {
            RpcError::Degraded { call: name() }
        } else {
            match self.call_providers(method, request, options) {
                Err(e) if fallback::stands_in_for(&e) => e,
                done => return done,
            }
        };
        tracing::debug!(service = %service, method, failure = %failure, "answered by its fallback");
        decode_answer(fallback.answer(&failure, ser), ser, name)
    }

    /// A call sent to providers in the cluster's mode.
    fn call_providers<Req, Resp>(
        &self,
        method: &str,
        request: &Req,
        options: &CallOptions,
    ) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let service = &self.inner.service;
        let args = serialize_args(options.serialization, request, service, method)?;
        let name = || call_name(service, method);
        let key = match options.hash_key {
            Some(key) => key,
            None if self.inner.balancer.uses_key() => hash_key(&args[..]),
            None => 0,
        };
        let ser = options.serialization;
        // No lock and, up to 256 providers, no allocation to choose one:
        // the list is a snapshot swapped whole when it changes, and the
        // choice is a bit set over it.
        let snapshot = self.inner.members.load();
        let live = snapshot.live();
        let balancer = &self.inner.balancer;
        let member = |i: usize| &snapshot.members[i];
        let no_provider = || RpcError::NoProvider(self.inner.service.to_string());
        match self.inner.mode {
            ClusterMode::Failfast => {
                let m = balancer.select(&live, key).ok_or_else(no_provider)?;
                decode_answer(self.invoke(member(m), method, &args, options), ser, name)
            }
            ClusterMode::Failover { retries } => {
                let mut untried = live.clone();
                let mut last = no_provider();
                for _ in 0..=retries {
                    // Another provider while there is one; after that, any.
                    let Some(i) = balancer
                        .select(&untried, key)
                        .or_else(|| balancer.select(&live, key))
                    else {
                        break;
                    };
                    untried.exclude(i);
                    let m = member(i);
                    match decode_answer(self.invoke(m, method, &args, options), ser, name) {
                        Ok(r) => return Ok(r),
                        Err(e) if e.is_retryable() => {
                            tracing::debug!(provider = %m.endpoint.addr, error = %e, "failing over");
                            last = e;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(last)
            }
            ClusterMode::Failsafe => {
                let result = balancer
                    .select(&live, key)
                    .ok_or_else(no_provider)
                    .and_then(|i| {
                        decode_answer(self.invoke(member(i), method, &args, options), ser, name)
                    });
                result.map_err(|e| {
                    tracing::warn!(service = %self.inner.service, method, error = %e, "failsafe call failed; it has no result");
                    RpcError::Absorbed {
                        mode: "failsafe",
                        call: name(),
                        cause: Box::new(e),
                    }
                })
            }
            ClusterMode::Failback { every, .. } => {
                let result = balancer
                    .select(&live, key)
                    .ok_or_else(no_provider)
                    .and_then(|i| {
                        decode_answer(self.invoke(member(i), method, &args, options), ser, name)
                    });
                match result {
                    Ok(r) => Ok(r),
                    Err(e) if e.is_retryable() => {
                        tracing::info!(service = %self.inner.service, method, error = %e, "call failed; retrying in the background");
                        self.inner
                            .retries
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(Retry {
                                method: method.to_string(),
                                args,
                                attempts: 0,
                                due: Instant::now() + every,
                            });
                        Err(RpcError::Absorbed {
                            mode: "failback",
                            call: name(),
                            cause: Box::new(e),
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            ClusterMode::Forking { parallel } => {
                // A fan-out: several calls, so a list of them is fine here.
                let mut untried = live.clone();
                let mut chosen: Vec<&Arc<Member>> = Vec::new();
                while chosen.len() < parallel.max(1) {
                    match balancer.select(&untried, key) {
                        Some(i) => {
                            untried.exclude(i);
                            chosen.push(member(i));
                        }
                        None => break,
                    }
                }
                if chosen.is_empty() {
                    return Err(no_provider());
                }
                let mut last = no_provider();
                for (_, answer) in self.fan_out(&chosen, method, &args, options) {
                    match decode_answer(answer, ser, name) {
                        Ok(r) => return Ok(r),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
            ClusterMode::Broadcast => {
                if snapshot.members.is_empty() {
                    return Err(no_provider());
                }
                // Every provider, connected or not: a broadcast that misses
                // one has failed.
                let all: Vec<&Arc<Member>> = snapshot.members.iter().collect();
                let mut answers: Vec<(usize, Answer)> =
                    self.fan_out(&all, method, &args, options).collect();
                answers.sort_by_key(|(i, _)| *i);
                let mut result = Err(no_provider());
                for (i, answer) in answers {
                    match decode_answer(answer, ser, name) {
                        Ok(r) => result = Ok(r),
                        Err(e) => {
                            tracing::warn!(provider = %all[i].endpoint.addr, error = %e, "broadcast failed");
                            return Err(e);
                        }
                    }
                }
                result
            }
        }
    }

    /// One call to one provider, counted as active while it runs.
    fn invoke(&self, m: &Member, method: &str, args: &[u8], options: &CallOptions) -> Answer {
        let Some(conn) = m.conn.as_ref() else {
            return Err(RpcError::Closed);
        };
        let _active = m.endpoint.begin_call();
        // Timed only for a balancer that reads the times.
        let started = self.inner.timed.then(Instant::now);
        let answer = conn.wait(options.timeout, |done| {
            conn.start_raw(&self.inner.service, method, args, options, done)
        });
        if let Some(started) = started {
            let took = match &answer {
                // Answered: the method's own error is an answer too.
                Ok((Status::Ok | Status::ServiceError, _)) => started.elapsed(),
                // A provider that failed the call counts as one that took
                // its whole timeout: quick to refuse is not fast.
                _ => options.timeout.max(started.elapsed()),
            };
            m.endpoint.record_response(took);
        }
        answer
    }

    /// The same call to each of `members` at once; answers in the order
    /// they come, tagged with the member's index.
    fn fan_out(
        &self,
        members: &[&Arc<Member>],
        method: &str,
        args: &[u8],
        options: &CallOptions,
    ) -> impl Iterator<Item = (usize, Answer)> {
        let (tx, rx) = crossbeam_channel::bounded(members.len());
        let mut guards = Vec::with_capacity(members.len());
        for (index, m) in members.iter().enumerate() {
            let sent = match m.conn.as_ref() {
                Some(conn) => {
                    guards.push(m.endpoint.begin_call());
                    conn.start_raw(
                        &self.inner.service,
                        method,
                        args,
                        options,
                        Sink::Many {
                            tx: tx.clone(),
                            index,
                        },
                    )
                }
                None => Err(RpcError::Closed),
            };
            if let Err(e) = sent {
                let _ = tx.send((index, Err(e)));
            }
        }
        drop(tx);
        // Every call reports once (answer, timeout or close), so the
        // iterator ends when all have; the guards go with it.
        let mut guards = Some(guards);
        let mut left = members.len();
        std::iter::from_fn(move || {
            if left == 0 {
                guards.take();
                return None;
            }
            left -= 1;
            let next = rx.recv().ok();
            if next.is_none() {
                guards.take();
            }
            next
        })
    }
}

/// What happens to members missing from a new list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// Closed and dropped (the list is exact).
    Close,
    /// Kept, unlisted, while their connection is open (the list comes from
    /// a registry, which may be empty for a moment).
    KeepWhileConnected,
}

fn set_providers(
    inner: &Inner,
    providers: impl IntoIterator<Item = ProviderEntry>,
    missing: Missing,
) {
    let old = inner.members.load_full();
    let mut next: Vec<Arc<Member>> = Vec::new();
    for ProviderEntry {
        addr,
        weight,
        token,
    } in providers
    {
        if next.iter().any(|m| m.endpoint.addr == addr) {
            continue;
        }
        let token: Option<Arc<str>> = token.map(Arc::from);
        match old
            .members
            .iter()
            .find(|m| m.endpoint.addr == addr && m.endpoint.weight == weight && m.token == token)
        {
            Some(m) if m.listed => next.push(m.clone()),
            // Kept through an absence: listed again, same connection.
            Some(m) => next.push(m.listed(true)),
            None => next.push(Arc::new(Member {
                endpoint: Arc::new(Endpoint::new(addr, weight)),
                conn: connect(&inner.consumer, addr, &token),
                token,
                retry_at: Instant::now() + FIRST_BACKOFF,
                backoff: FIRST_BACKOFF,
                listed: true,
            })),
        }
    }
    for m in old.members.iter() {
        if next.iter().any(|n| n.endpoint.addr == m.endpoint.addr) {
            continue;
        }
        if missing == Missing::KeepWhileConnected && m.is_live() {
            if m.listed {
                tracing::info!(provider = %m.endpoint.addr, "unlisted by the registry; kept while it answers");
            }
            next.push(m.listed(false));
        } else if let Some(c) = &m.conn {
            c.close();
        }
    }
    inner.store(Snapshot::new(next));
}

/// The cluster's background work, every 20 ms while the cluster lives:
/// reconnect dropped providers whose back-off has passed, and run failback
/// retries that are due.
fn maintain(cluster: Weak<Inner>) {
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let Some(inner) = cluster.upgrade() else {
            return;
        };
        reconnect(&inner);
        retry_failed(&inner);
    }
}

fn reconnect(inner: &Inner) {
    let current = inner.members.load_full();
    let now = Instant::now();
    let mut changed = false;
    let mut next: Vec<Arc<Member>> = Vec::with_capacity(current.members.len());
    for m in current.members.iter() {
        let down = !m.is_live();
        if down && !m.listed {
            // Unlisted and gone: it has left.
            changed = true;
            continue;
        }
        if down && now >= m.retry_at {
            let conn = connect(&inner.consumer, m.endpoint.addr, &m.token);
            let backoff = if conn.is_some() {
                FIRST_BACKOFF
            } else {
                (m.backoff * 2).min(MAX_BACKOFF)
            };
            next.push(Arc::new(Member {
                endpoint: m.endpoint.clone(),
                conn,
                token: m.token.clone(),
                retry_at: now + backoff,
                backoff,
                listed: true,
            }));
            changed = true;
        } else {
            next.push(m.clone());
        }
    }
    if changed {
        // Only if nobody replaced the list meanwhile (a registry update
        // wins; the connections made here then close as they drop).
        inner
            .members
            .compare_and_swap(&current, Snapshot::new(next));
        inner.notify_list_changed();
    }
}

fn retry_failed(inner: &Arc<Inner>) {
    let ClusterMode::Failback { every, max_retries } = inner.mode else {
        return;
    };
    let now = Instant::now();
    let due: Vec<Retry> = {
        let mut retries = inner.retries.lock().unwrap_or_else(|e| e.into_inner());
        let (due, later) = std::mem::take(&mut *retries)
            .into_iter()
            .partition(|r| r.due <= now);
        *retries = later;
        due
    };
    if due.is_empty() {
        return;
    }
    let cluster = Cluster {
        inner: inner.clone(),
    };
    let snapshot = inner.members.load_full();
    let live = snapshot.live();
    for mut r in due {
        let answer = match inner.balancer.select(&live, hash_key(&r.args[..])) {
            Some(i) => cluster.invoke(&snapshot.members[i], &r.method, &r.args, &inner.options),
            None => Err(RpcError::NoProvider(inner.service.to_string())),
        };
        let ok = matches!(answer, Ok((crate::Status::Ok, _)));
        r.attempts += 1;
        if ok {
            tracing::info!(service = %inner.service, method = %r.method, attempts = r.attempts, "failback retry succeeded");
        } else if r.attempts >= max_retries {
            tracing::error!(service = %inner.service, method = %r.method, "failback call dropped after {max_retries} retries");
        } else {
            r.due = Instant::now() + every;
            inner
                .retries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(r);
        }
    }
}
