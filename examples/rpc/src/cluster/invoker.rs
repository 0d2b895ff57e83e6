//! A cluster invoker: one service exported by several providers, called
//! through a load balancer in one of Dubbo's fault-tolerance modes.
//!
//! The cluster keeps one [`Connection`](crate::consumer::Connection) per provider. Providers come from
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

pub use super::mode::ClusterMode;

use super::balance::{LoadBalancer, WeightedRandom};
use super::calling::{self, block_on, MethodName, SentNow, Way};
use super::fallback::Fallbacks;
use super::maintain::{maintain, set_providers, Missing};
use super::members::Snapshot;
use super::shared::Shared;
use crate::consumer::{serialize_args, CallOptions, Consumer, RpcError};
use crate::registry::contract::ProviderEntry;
use crate::ServiceKey;
use arc_swap::ArcSwap;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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
        let shared = Arc::new(Shared {
            consumer,
            service: self.service,
            mode: self.mode,
            timed: self.balancer.uses_response_times(),
            balancer: self.balancer,
            options: Arc::new(self.options),
            fallbacks: self.fallbacks,
            members: ArcSwap::new(Snapshot::new(Vec::new())),
            retries: Mutex::new(Vec::new()),
            list_changed: (Mutex::new(()), Condvar::new()),
        });
        let weak = Arc::downgrade(&shared);
        let _ = std::thread::Builder::new()
            .name("gyre-rpc-cluster".into())
            .spawn(move || maintain(weak));
        Cluster { shared }
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
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("service", &self.shared.service)
            .field("mode", &self.shared.mode)
            .field("providers", &self.providers())
            .finish()
    }
}

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
        &self.shared.service
    }

    /// Replaces the provider list with `providers` (address, weight):
    /// providers already known keep their connection and balancer state,
    /// new ones are connected, missing ones are closed.
    pub fn set_providers(&self, providers: impl IntoIterator<Item = (SocketAddr, u32)>) {
        let entries = providers
            .into_iter()
            .map(|(addr, weight)| ProviderEntry::new(addr, weight));
        set_providers(&self.shared, entries, Missing::Close);
    }

    /// Replaces the provider list as [`set_providers`](Self::set_providers)
    /// does, with each provider's token (what a registry lists).
    pub fn set_provider_entries(&self, providers: impl IntoIterator<Item = ProviderEntry>) {
        set_providers(&self.shared, providers, Missing::Close);
    }

    /// Follows what `registry` lists for the service, until the returned
    /// subscription is dropped: listed providers are added; unlisted ones
    /// stay while they are connected and answering (see the module doc).
    pub fn subscribe(
        &self,
        registry: &dyn crate::registry::contract::Registry,
    ) -> Result<crate::registry::contract::Subscription, crate::registry::contract::RegistryError>
    {
        let weak = Arc::downgrade(&self.shared);
        registry.subscribe(
            &self.shared.service,
            Box::new(move |list| {
                if let Some(shared) = weak.upgrade() {
                    tracing::info!(service = %shared.service, providers = ?list, "provider list changed");
                    set_providers(&shared, list, Missing::KeepWhileConnected);
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
            self.shared
                .members
                .load()
                .members
                .iter()
                .filter(|m| m.is_live())
                .count()
        };
        let mut guard = self
            .shared
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
                    self.shared.service
                )));
            }
            // Woken when the list changes; a connection that closes does
            // not change it, so look again at least every 20 ms.
            let wait = (deadline - now).min(Duration::from_millis(20));
            guard = self
                .shared
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
        self.shared
            .members
            .load()
            .members
            .iter()
            .map(|m| (m.endpoint.addr, m.is_available()))
            .collect()
    }

    /// Failback calls waiting for their retry.
    pub fn pending_retries(&self) -> usize {
        self.shared
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
        self.call_with(method, request, &self.shared.options)
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
        optional(self.call(method, request))
    }

    /// [`call_optional`](Self::call_optional) as a `Send + 'static`
    /// future, sent as it is made, as [`call_async`](Self::call_async) is.
    ///
    /// ```
    /// use gyre_rpc::cluster::{Cluster, ClusterMode};
    /// use gyre_rpc::consumer::Consumer;
    /// use gyre_rpc::ServiceKey;
    ///
    /// let audit = Cluster::builder(ServiceKey::new("demo.Audit"))
    ///     .mode(ClusterMode::Failsafe)
    ///     .build(Consumer::builder().build()?);
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// // No provider at all: the failure is logged, and there is no result.
    /// let stored: Option<bool> = rt.block_on(audit.call_optional_async("record", &"login"))?;
    /// assert_eq!(stored, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call_optional_async<Req, Resp>(
        &self,
        method: &str,
        request: &Req,
    ) -> impl Future<Output = Result<Option<Resp>, RpcError>> + Send + 'static
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned + Send + 'static,
    {
        let call = self.call_async(method, request);
        async move { optional(call.await) }
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
        let had = self.shared.fallbacks.force(method, on);
        if had {
            tracing::info!(service = %self.shared.service, method, degraded = on, "degraded to its fallback");
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
        // A fan-out parks the thread, which must not be a loop's.
        if gyre_reactor::is_event_loop_thread() {
            return Err(RpcError::BlockingOnLoop);
        }
        let args = self.serialize(method, request, options);
        block_on(calling::call(
            &self.shared,
            Way::Blocking,
            method,
            args,
            options,
        ))
    }

    /// [`call`](Self::call) as a future, for async code: the same mode,
    /// balancer and fallback, each attempt awaited (a failover's retries
    /// too, where Dubbo retries an asynchronous call only when it cannot
    /// be sent), nothing blocking, on any executor and on an event loop's
    /// thread. The call is sent now, as a connection's
    /// [`call_async`](crate::consumer::Connection::call_async) sends one:
    /// calls made one after another are in flight together, however they
    /// are awaited. A failsafe or failback call that failed has no
    /// result: [`RpcError::Absorbed`].
    ///
    /// ```
    /// use gyre_rpc::cluster::{Cluster, ClusterMode};
    /// use gyre_rpc::consumer::Consumer;
    /// use gyre_rpc::provider::{Provider, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    ///
    /// let key = ServiceKey::new("demo.Calc");
    /// let start = || {
    ///     let service = Service::builder(key.clone())
    ///         .method("add", |(a, b): (i64, i64)| Ok::<_, ServiceError>(a + b))
    ///         .build();
    ///     Provider::builder().listen("127.0.0.1:0".parse().unwrap()).service(service).start()
    /// };
    /// let (one, two) = (start()?, start()?);
    /// let calc = Cluster::builder(key.clone())
    ///     .mode(ClusterMode::Failover { retries: 1 })
    ///     .build(Consumer::builder().build()?);
    /// calc.set_providers([(one.local_addr(), 100), (two.local_addr(), 100)]);
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let sums = rt.block_on(async {
    ///     // Eight calls in flight at once, on one task.
    ///     let calls: Vec<_> = (0..8i64).map(|i| calc.call_async::<_, i64>("add", &(i, i))).collect();
    ///     let mut sums = Vec::new();
    ///     for call in calls {
    ///         sums.push(call.await?);
    ///     }
    ///     Ok::<_, gyre_rpc::consumer::RpcError>(sums)
    /// })?;
    /// assert_eq!(sums, [0, 2, 4, 6, 8, 10, 12, 14]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call_async<Req, Resp>(
        &self,
        method: &str,
        request: &Req,
    ) -> impl Future<Output = Result<Resp, RpcError>> + Send + 'static
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned + Send + 'static,
    {
        let args = self.serialize(method, request, &self.shared.options);
        self.call_async_as(method, args, self.shared.options.clone())
    }

    /// [`call_async`](Self::call_async) with `options` instead of the
    /// cluster's.
    pub fn call_async_with<Req, Resp>(
        &self,
        method: &str,
        request: &Req,
        options: &CallOptions,
    ) -> impl Future<Output = Result<Resp, RpcError>> + Send + 'static
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned + Send + 'static,
    {
        let args = self.serialize(method, request, options);
        self.call_async_as(method, args, options.clone())
    }

    /// An asynchronous call, sent now, owning what it needs: the
    /// cluster, the method's name, the arguments and the options (its
    /// boxed state is the one allocation the cluster adds to a
    /// connection's asynchronous call).
    fn call_async_as<Resp, O>(
        &self,
        method: &str,
        args: Result<Bytes, RpcError>,
        options: O,
    ) -> impl Future<Output = Result<Resp, RpcError>> + Send + 'static
    where
        Resp: DeserializeOwned + Send + 'static,
        // The cluster's own (shared) or the caller's (a copy).
        O: std::borrow::Borrow<CallOptions> + Send + Sync + 'static,
    {
        let shared = self.shared.clone();
        let method = MethodName::new(method);
        let call = async move {
            calling::call(&shared, Way::Async, method.as_str(), args, options.borrow()).await
        };
        SentNow::new(call)
    }

    /// `request` serialized once for every provider the call may go to.
    fn serialize<Req: Serialize + ?Sized>(
        &self,
        method: &str,
        request: &Req,
        options: &CallOptions,
    ) -> Result<Bytes, RpcError> {
        serialize_args(options.serialization, request, &self.shared.service, method)
    }
}

/// A call's result with an absorbed failure (failsafe, failback) as no
/// result.
fn optional<Resp>(result: Result<Resp, RpcError>) -> Result<Option<Resp>, RpcError> {
    match result {
        Ok(r) => Ok(Some(r)),
        Err(RpcError::Absorbed { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
