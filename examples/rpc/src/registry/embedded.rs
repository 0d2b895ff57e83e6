//! The embedded registry's client: registrations kept alive by a renewer
//! thread, subscriptions kept current by long-polling `watch` calls, both
//! over one cluster connection to the registry server (so a restarted
//! registry is reconnected to, and leases are re-granted at the next
//! renewal).

use super::contract::{
    Listener, ProviderEntry, ProviderList, Registration, Registry, RegistryError, Snapshot,
    Subscription,
};
use super::server::registry_service;
use crate::cluster::{Cluster, ClusterMode};
use crate::consumer::{CallOptions, Consumer};
use crate::ServiceKey;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Builds an [`EmbeddedRegistry`].
///
/// ```
/// use gyre_rpc::registry::{EmbeddedRegistry, RegistryServer};
/// use std::time::Duration;
///
/// let server = RegistryServer::start("127.0.0.1:0".parse()?)?;
/// // Leases of 10 s (renewed every third of that); long polls of 5 s.
/// let registry = EmbeddedRegistry::builder(server.local_addr())
///     .ttl(Duration::from_secs(10))
///     .watch_wait(Duration::from_secs(5))
///     .connect()?;
/// # drop(registry);
/// server.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct EmbeddedRegistryBuilder {
    server: SocketAddr,
    ttl: Duration,
    watch_wait: Duration,
}

impl EmbeddedRegistryBuilder {
    /// How long a registration lives without renewal (default 3 s): the
    /// longest a killed provider stays listed. Renewed every third of it.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_millis(30));
        self
    }

    /// How long one watch call waits for a change (default 10 s).
    pub fn watch_wait(mut self, wait: Duration) -> Self {
        self.watch_wait = wait;
        self
    }

    /// Connects (lazily: a registry that is not up yet is retried).
    pub fn connect(self) -> Result<EmbeddedRegistry, RegistryError> {
        let consumer = Consumer::builder().build()?;
        let cluster = Cluster::builder(registry_service())
            .mode(ClusterMode::Failfast)
            .options(CallOptions::default().timeout(Duration::from_secs(3)))
            .build(consumer);
        cluster.set_providers([(self.server, 100)]);
        let inner = Arc::new(Inner {
            cluster,
            ttl: self.ttl,
            watch_wait: self.watch_wait,
            leases: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&inner);
        let every = self.ttl / 3;
        std::thread::Builder::new()
            .name("gyre-registry-renew".into())
            .spawn(move || renew(weak, every))?;
        Ok(EmbeddedRegistry { inner })
    }
}

struct Inner {
    cluster: Cluster,
    ttl: Duration,
    watch_wait: Duration,
    /// (service, address) -> entry: what this process has registered.
    leases: Mutex<HashMap<(String, SocketAddr), ProviderEntry>>,
}

impl Inner {
    fn registration(&self, service: &str, provider: &ProviderEntry) -> Registration {
        Registration {
            service: service.to_string(),
            addr: provider.addr,
            weight: provider.weight,
            ttl_ms: self.ttl.as_millis() as u64,
            token: provider.token.clone(),
        }
    }
}

/// A client of a [`RegistryServer`](super::RegistryServer).
///
/// ```
/// use gyre_rpc::cluster::Cluster;
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
/// use gyre_rpc::registry::{EmbeddedRegistry, RegistryServer};
/// use gyre_rpc::ServiceKey;
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let server = RegistryServer::start("127.0.0.1:0".parse()?)?;
/// let key = ServiceKey::new("demo.Echo");
/// // The provider registers itself; the cluster follows the registry.
/// let provider = Provider::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .registry(Arc::new(EmbeddedRegistry::connect(server.local_addr())?))
///     .service(Service::builder(key.clone()).dispatch(Dispatch::IoThread)
///         .method("echo", |s: String| Ok::<_, ServiceError>(s)).build())
///     .start()?;
/// let cluster = Cluster::builder(key).build(Consumer::builder().build()?);
/// let registry = EmbeddedRegistry::connect(server.local_addr())?;
/// let _subscription = cluster.subscribe(&registry)?;
/// cluster.wait_for_providers(1, Duration::from_secs(5))?;
/// assert_eq!(cluster.call::<_, String>("echo", "hi")?, "hi");
/// provider.shutdown(Duration::from_secs(1));
/// server.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EmbeddedRegistry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedRegistry")
            .field("ttl", &self.inner.ttl)
            .finish()
    }
}

impl EmbeddedRegistry {
    /// A builder for the registry server at `server`.
    pub fn builder(server: SocketAddr) -> EmbeddedRegistryBuilder {
        EmbeddedRegistryBuilder {
            server,
            ttl: Duration::from_secs(3),
            watch_wait: Duration::from_secs(10),
        }
    }

    /// Connects to the registry server at `server` with the defaults.
    pub fn connect(server: SocketAddr) -> Result<EmbeddedRegistry, RegistryError> {
        EmbeddedRegistry::builder(server).connect()
    }
}

fn renew(inner: Weak<Inner>, every: Duration) {
    loop {
        std::thread::sleep(every);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let leases: Vec<(String, ProviderEntry)> = inner
            .leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|((service, _), entry)| (service.clone(), entry.clone()))
            .collect();
        for (service, provider) in leases {
            let addr = provider.addr;
            let r = inner.registration(&service, &provider);
            if let Err(e) = inner.cluster.call::<_, ()>("renew", &r) {
                tracing::warn!(%service, %addr, error = %e, "lease renewal failed; retrying");
            }
        }
    }
}

impl Registry for EmbeddedRegistry {
    fn register(
        &self,
        service: &ServiceKey,
        provider: &ProviderEntry,
    ) -> Result<(), RegistryError> {
        let name = service.to_string();
        let r = self.inner.registration(&name, provider);
        self.inner.cluster.call::<_, ()>("register", &r)?;
        self.inner
            .leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((name, provider.addr), provider.clone());
        Ok(())
    }

    fn unregister(&self, service: &ServiceKey, addr: SocketAddr) -> Result<(), RegistryError> {
        let name = service.to_string();
        self.inner
            .leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(name.clone(), addr));
        self.inner
            .cluster
            .call::<_, bool>("unregister", &(name, addr))?;
        Ok(())
    }

    fn subscribe(
        &self,
        service: &ServiceKey,
        listener: Listener,
    ) -> Result<Subscription, RegistryError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let inner = self.inner.clone();
        let name = service.to_string();
        std::thread::Builder::new()
            .name("gyre-registry-watch".into())
            .spawn(move || watch(inner, name, listener, flag))?;
        Ok(Subscription::new(move || {
            stop.store(true, Ordering::Relaxed)
        }))
    }
}

fn watch(inner: Arc<Inner>, service: String, listener: Listener, stop: Arc<AtomicBool>) {
    let wait = inner.watch_wait;
    let options = CallOptions::default().timeout(wait + Duration::from_secs(5));
    let mut known = u64::MAX;
    let mut last: Option<ProviderList> = None;
    while !stop.load(Ordering::Relaxed) {
        let asked = (service.clone(), known, wait.as_millis() as u64);
        match inner
            .cluster
            .call_with::<_, Snapshot>("watch", &asked, &options)
        {
            Ok(snap) => {
                known = snap.version;
                if last.as_ref() != Some(&snap.providers) && !stop.load(Ordering::Relaxed) {
                    last = Some(snap.providers.clone());
                    listener(snap.providers);
                }
            }
            Err(e) => {
                tracing::debug!(%service, error = %e, "watch failed; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}
