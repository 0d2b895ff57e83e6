//! The embedded registry's server: a gyre-rpc provider of the service
//! `gyre.Registry`, so one binary (`gyre-rpc-demo registry`) is all a
//! machine needs.
//!
//! Providers hold a lease per (service, address): `register` grants one for
//! `ttl_ms`, `renew` extends it, `unregister` ends it, and a lease not
//! renewed in time expires, which is how a killed provider disappears.
//! Consumers `watch` a service: the call returns the provider list as soon
//! as its version differs from the one the consumer holds, or after
//! `wait_ms` with the same list (a long poll: changes reach consumers as
//! they happen, without the server holding a connection of its own to
//! them). Watches wait on the provider's worker pool, so the pool's size
//! bounds how many consumers can watch at once (default 256).

use super::contract::{ProviderEntry, Registration, Snapshot};
use crate::provider::{Dispatch, Provider, ProviderError, Service, ServiceError};
use crate::ServiceKey;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The registry service's key.
pub fn registry_service() -> ServiceKey {
    ServiceKey::new("gyre.Registry").version("1")
}

/// The longest a watch may wait.
const MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Leases {
    /// Service (its `ServiceKey` display form) -> address -> (entry,
    /// expiry).
    services: HashMap<String, HashMap<SocketAddr, (ProviderEntry, Instant)>>,
    /// Bumped on every change of any list.
    version: u64,
}

impl Leases {
    fn expire(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for (service, providers) in &mut self.services {
            let before = providers.len();
            providers.retain(|addr, (_, expires)| {
                let keep = *expires > now;
                if !keep {
                    tracing::info!(%service, %addr, "lease expired");
                }
                keep
            });
            changed |= providers.len() != before;
        }
        if changed {
            self.version += 1;
        }
        changed
    }

    fn snapshot(&self, service: &str) -> Snapshot {
        let mut providers: Vec<ProviderEntry> = self
            .services
            .get(service)
            .map(|m| m.values().map(|(e, _)| e.clone()).collect())
            .unwrap_or_default();
        providers.sort();
        Snapshot {
            version: self.version,
            providers,
        }
    }
}

struct State {
    leases: Mutex<Leases>,
    changed: Condvar,
    /// Set at shutdown: watches answer at once.
    closing: AtomicBool,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put(&self, r: &Registration) {
        let mut l = self.lock();
        let expires = Instant::now() + Duration::from_millis(r.ttl_ms);
        let entry = l.services.entry(r.service.clone()).or_default();
        let new = ProviderEntry {
            addr: r.addr,
            weight: r.weight,
            token: r.token.clone(),
        };
        let old = entry.insert(r.addr, (new.clone(), expires));
        if old.map(|(e, _)| e) != Some(new) {
            l.version += 1;
            tracing::info!(service = %r.service, addr = %r.addr, "registered");
            self.changed.notify_all();
        }
    }
}

/// A running registry server.
///
/// ```
/// use gyre_rpc::registry::{EmbeddedRegistry, ProviderEntry, Registry, RegistryServer};
/// use gyre_rpc::ServiceKey;
///
/// let server = RegistryServer::start("127.0.0.1:0".parse()?)?;
/// let registry = EmbeddedRegistry::connect(server.local_addr())?;
/// let key = ServiceKey::new("demo.Calc");
/// let provider = ProviderEntry::new("127.0.0.1:20880".parse()?, 100);
/// registry.register(&key, &provider)?;
/// assert_eq!(server.providers(&key), vec![provider]);
/// server.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RegistryServer {
    provider: Provider,
    state: Arc<State>,
    reaper: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for RegistryServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryServer")
            .field("addr", &self.local_addr())
            .finish()
    }
}

impl RegistryServer {
    /// Starts a registry on `addr`.
    pub fn start(addr: SocketAddr) -> Result<RegistryServer, ProviderError> {
        let state = Arc::new(State {
            leases: Mutex::new(Leases::default()),
            changed: Condvar::new(),
            closing: AtomicBool::new(false),
        });
        let (s1, s2, s3, s4) = (state.clone(), state.clone(), state.clone(), state.clone());
        let service = Service::builder(registry_service())
            .dispatch(Dispatch::WorkerPool)
            .method("register", move |r: Registration| {
                s1.put(&r);
                Ok::<_, ServiceError>(())
            })
            .method("renew", move |r: Registration| {
                // A renewal after expiry registers again.
                s2.put(&r);
                Ok::<_, ServiceError>(())
            })
            .method(
                "unregister",
                move |(service, addr): (String, SocketAddr)| {
                    let mut l = s3.lock();
                    let removed = l
                        .services
                        .get_mut(&service)
                        .and_then(|m| m.remove(&addr))
                        .is_some();
                    if removed {
                        l.version += 1;
                        tracing::info!(%service, %addr, "unregistered");
                        s3.changed.notify_all();
                    }
                    Ok::<_, ServiceError>(removed)
                },
            )
            .method(
                "watch",
                move |(service, known, wait_ms): (String, u64, u64)| {
                    let deadline = Instant::now() + Duration::from_millis(wait_ms).min(MAX_WAIT);
                    let mut l = s4.lock();
                    loop {
                        l.expire(Instant::now());
                        let snap = l.snapshot(&service);
                        let now = Instant::now();
                        if snap.version != known
                            || now >= deadline
                            || s4.closing.load(Ordering::Relaxed)
                        {
                            return Ok::<_, ServiceError>(snap);
                        }
                        // Wake at least every 100 ms to expire leases.
                        let wait = (deadline - now).min(Duration::from_millis(100));
                        l = s4
                            .changed
                            .wait_timeout(l, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                },
            )
            .build();
        let provider = Provider::builder()
            .listen(addr)
            .io_threads(1)
            .pool_threads(256)
            .service(service)
            .start()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (st, flag) = (state.clone(), stop.clone());
        // Expire leases even when nobody is watching, and wake watchers of
        // a list that lost a provider.
        let reaper = std::thread::Builder::new()
            .name("gyre-registry-reaper".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    if st.lock().expire(Instant::now()) {
                        st.changed.notify_all();
                    }
                }
            })
            .map_err(ProviderError::Io)?;
        Ok(RegistryServer {
            provider,
            state,
            reaper: Some(reaper),
            stop,
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.provider.local_addr()
    }

    /// The providers of `service` it knows now.
    pub fn providers(&self, service: &ServiceKey) -> Vec<ProviderEntry> {
        self.state.lock().snapshot(&service.to_string()).providers
    }

    /// Stops it.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.state.closing.store(true, Ordering::Relaxed);
        self.state.changed.notify_all();
        if let Some(r) = self.reaper.take() {
            let _ = r.join();
        }
        // Watchers wake within 100 ms and answer.
        self.provider.shutdown(Duration::from_secs(1));
    }
}
