//! The registry's contract: the [`Registry`] trait every backend
//! implements, the subscription it hands out, its error, and the data the
//! embedded backend's wire carries. Knows no backend, so the cluster (which
//! subscribes) and the backends (the embedded one calls through a cluster)
//! both sit on it without a circle.

use crate::consumer::RpcError;
use crate::ServiceKey;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// One provider as a registry lists it: where it listens, its weight, and
/// the token it requires of callers (Dubbo's `token` parameter), if any.
///
/// ```
/// use gyre_rpc::registry::ProviderEntry;
///
/// let plain = ProviderEntry::new("127.0.0.1:20880".parse()?, 100);
/// let guarded = ProviderEntry { token: Some("s3cret".into()), ..plain.clone() };
/// assert_ne!(plain, guarded);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProviderEntry {
    /// Where the provider listens.
    pub addr: SocketAddr,
    /// Its weight for the load balancers.
    pub weight: u32,
    /// The token its callers must attach (see
    /// [`ProviderBuilder::token`](crate::provider::ProviderBuilder::token)).
    #[serde(default)]
    pub token: Option<String>,
}

impl ProviderEntry {
    /// A provider at `addr` with `weight` and no token.
    pub fn new(addr: SocketAddr, weight: u32) -> ProviderEntry {
        ProviderEntry {
            addr,
            weight,
            token: None,
        }
    }
}

/// A provider list as a registry reports it, sorted.
pub type ProviderList = Vec<ProviderEntry>;

/// Called with the whole provider list each time it changes (and once
/// with the current list when the subscription starts).
pub type Listener = Box<dyn Fn(ProviderList) + Send + Sync>;

/// Why a registry operation failed.
///
/// ```
/// use gyre_rpc::registry::{EmbeddedRegistry, ProviderEntry, Registry, RegistryError, RegistryServer};
/// use gyre_rpc::ServiceKey;
///
/// let server = RegistryServer::start("127.0.0.1:0".parse()?)?;
/// let registry = EmbeddedRegistry::connect(server.local_addr())?;
/// server.shutdown();
/// // The registry is gone: the provider keeps serving and says why it is
/// // not listed.
/// match registry.register(&ServiceKey::new("demo.Calc"), &ProviderEntry::new("127.0.0.1:20880".parse()?, 100)) {
///     Err(RegistryError::Rpc(e)) => eprintln!("not registered: {e}"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached or answered with an error.
    #[error("registry call failed: {0}")]
    Rpc(#[from] RpcError),
    /// A background thread could not be started.
    #[error("cannot start a registry thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Ends a subscription when dropped. A backend of one's own makes it with
/// what stops its updates (see [`Registry`] for a whole backend).
///
/// ```
/// use gyre_rpc::registry::Subscription;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let watching = Arc::new(AtomicBool::new(true));
/// let w = watching.clone();
/// let subscription = Subscription::new(move || w.store(false, Ordering::Release));
/// drop(subscription);
/// assert!(!watching.load(Ordering::Acquire));
/// ```
pub struct Subscription {
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Subscription {
    /// A subscription that runs `stop` when dropped.
    pub fn new(stop: impl FnOnce() + Send + 'static) -> Subscription {
        Subscription {
            stop: Some(Box::new(stop)),
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subscription")
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// A service registry backend.
///
/// ```
/// use gyre_rpc::registry::{Listener, ProviderEntry, Registry, RegistryError, Subscription};
/// use gyre_rpc::ServiceKey;
/// use std::collections::HashMap;
/// use std::net::SocketAddr;
/// use std::sync::Mutex;
///
/// /// A registry in this process's memory (for tests): lists, no leases.
/// #[derive(Default)]
/// struct InMemory(Mutex<HashMap<String, Vec<ProviderEntry>>>);
///
/// impl Registry for InMemory {
///     fn register(&self, s: &ServiceKey, provider: &ProviderEntry) -> Result<(), RegistryError> {
///         self.0.lock().unwrap().entry(s.to_string()).or_default().push(provider.clone());
///         Ok(())
///     }
///     fn unregister(&self, s: &ServiceKey, addr: SocketAddr) -> Result<(), RegistryError> {
///         if let Some(list) = self.0.lock().unwrap().get_mut(&s.to_string()) {
///             list.retain(|p| p.addr != addr);
///         }
///         Ok(())
///     }
///     fn subscribe(&self, s: &ServiceKey, listener: Listener) -> Result<Subscription, RegistryError> {
///         // Told once, now; a real backend also tells every change.
///         listener(self.0.lock().unwrap().get(&s.to_string()).cloned().unwrap_or_default());
///         Ok(Subscription::new(|| {}))
///     }
/// }
///
/// let registry = InMemory::default();
/// let key = ServiceKey::new("demo.Calc");
/// registry.register(&key, &ProviderEntry::new("127.0.0.1:20880".parse()?, 100))?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let _sub = registry.subscribe(&key, Box::new(move |list| { let _ = tx.send(list); }))?;
/// assert_eq!(rx.recv()?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Registry: Send + Sync {
    /// Announces that `provider` (its address, weight and token) provides
    /// `service`, until [`unregister`](Self::unregister) or until this
    /// process stops keeping the registration alive.
    fn register(&self, service: &ServiceKey, provider: &ProviderEntry)
        -> Result<(), RegistryError>;

    /// Withdraws a registration.
    fn unregister(&self, service: &ServiceKey, addr: SocketAddr) -> Result<(), RegistryError>;

    /// Calls `listener` with `service`'s provider list now and whenever it
    /// changes, until the returned subscription is dropped.
    fn subscribe(
        &self,
        service: &ServiceKey,
        listener: Listener,
    ) -> Result<Subscription, RegistryError>;
}

/// What a provider sends to register or renew: the argument of the
/// [`RegistryServer`](crate::registry::RegistryServer)'s `register` and
/// `renew` methods (service [`registry_service`](crate::registry::registry_service)),
/// for a provider that speaks to it without an [`EmbeddedRegistry`](crate::registry::EmbeddedRegistry).
///
/// ```
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::registry::{registry_service, Registration, RegistryServer, Snapshot};
///
/// let server = RegistryServer::start("127.0.0.1:0".parse()?)?;
/// let conn = Consumer::builder().build()?.connect(server.local_addr())?;
/// let me = Registration {
///     service: "demo.Calc".into(),
///     addr: "127.0.0.1:20880".parse()?,
///     weight: 100,
///     ttl_ms: 30_000, // renew well within it
///     token: None,
/// };
/// conn.call::<_, ()>(&registry_service(), "register", &me)?;
/// // `watch`: the list now if its version is not the one known (0 here),
/// // else after a change or the wait (ms).
/// let list: Snapshot = conn.call(&registry_service(), "watch", &("demo.Calc".to_string(), 0u64, 0u64))?;
/// assert_eq!(list.providers.len(), 1);
/// assert_eq!(list.providers[0].addr, me.addr);
/// # drop(conn);
/// server.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The service, in [`ServiceKey`]'s display form.
    pub service: String,
    /// Where the provider listens.
    pub addr: SocketAddr,
    /// Its weight.
    pub weight: u32,
    /// How long the lease lasts without a renewal, ms.
    pub ttl_ms: u64,
    /// The token its callers must attach, if any.
    #[serde(default)]
    pub token: Option<String>,
}

/// A service's provider list at a version of the registry: what the
/// [`RegistryServer`](crate::registry::RegistryServer)'s `watch` method
/// answers (see [`Registration`] for a call of it).
///
/// ```
/// use gyre_rpc::registry::{ProviderEntry, Snapshot};
///
/// let seen = Snapshot { version: 7, providers: vec![ProviderEntry::new("10.0.0.1:20880".parse()?, 100)] };
/// // Ask again with `seen.version`: the answer comes when the list moves on.
/// assert_eq!(seen.version, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Changes whenever any list changes.
    pub version: u64,
    /// The providers.
    pub providers: ProviderList,
}
