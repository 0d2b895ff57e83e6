//! The provider side: services, and the server that exports them.
//!
//! Its parts, each using only those below it: `connection` and `pool` (a
//! consumer's connection; the worker pool) over `shared` (what they share),
//! `service` (services and their builder), `responder` (deferred answers),
//! `answer` (framing a call's answer, with the filters' phases) and
//! `method` (methods as plain data).
//!
//! ```
//! use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
//! use gyre_rpc::ServiceKey;
//!
//! let provider = Provider::builder()
//!     .listen("127.0.0.1:0".parse().unwrap())
//!     .service(
//!         Service::builder(ServiceKey::new("demo.Calc"))
//!             .dispatch(Dispatch::IoThread)
//!             .method("add", |(a, b): (i64, i64)| Ok::<_, ServiceError>(a + b))
//!             .build(),
//!     )
//!     .start()
//!     .unwrap();
//! println!("serving on {}", provider.local_addr());
//! provider.shutdown(std::time::Duration::from_secs(1));
//! ```

mod answer;
mod connection;
mod inline;
mod method;
mod pool;
mod responder;
mod routes;
mod service;
mod shared;
mod token;

pub use method::ServiceError;
pub use responder::Responder;
pub use service::{Dispatch, Service, ServiceBuilder};
pub use token::ProviderToken;

use crate::filter::Filter;
use crate::protocol::{frame_decoder, read_only_frame, ServiceKey, DEFAULT_MAX_BODY};
use crate::registry::contract::{ProviderEntry, Registry, RegistryError};
use bytes::BytesMut;
use connection::ProviderConnection;
use gyre_reactor::{
    ChannelGroup, ChannelOptions, EventLoopGroup, IdleStateHandler, InboundChain, Outbound,
    Pipeline, Server, ServerBootstrap,
};
use pool::Pool;
use routes::Routes;
use service::Exports;
use shared::Shared;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long graceful shutdown waits with no call in flight before it stops
/// the worker pool: time for the calls consumers sent before its read-only
/// notice reached them to arrive and be answered.
pub const SHUTDOWN_QUIET: Duration = Duration::from_millis(20);

/// Why a provider did not start.
///
/// ```
/// use gyre_rpc::provider::{Provider, ProviderError};
///
/// let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
/// match Provider::builder().listen(taken.local_addr()?).start() {
///     Err(ProviderError::Reactor(e)) => assert!(e.to_string().contains("cannot listen on")),
///     other => panic!("{:?}", other.err()),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The listener or its event loops.
    #[error("cannot start the server: {0}")]
    Reactor(#[from] gyre_reactor::Error),
    /// The event loops' threads.
    #[error("cannot start the event loops: {0}")]
    Io(#[from] std::io::Error),
    /// Registering with the registry failed.
    #[error("cannot register: {0}")]
    Registry(#[from] RegistryError),
    /// The worker pool's ring.
    #[error("cannot start the worker pool: {0}")]
    Pool(#[from] gyre_ringbuffer::BuildError),
}

/// Builds a [`Provider`]; every setting has a default that serves.
///
/// ```
/// use gyre_rpc::provider::{Provider, Service, ServiceError};
/// use gyre_rpc::ServiceKey;
/// use std::time::Duration;
///
/// let provider = Provider::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .io_threads(2)            // event loops
///     .pool_threads(8)          // workers for Dispatch::WorkerPool services
///     .pool_capacity(4096)      // calls queued for them before ServerOverloaded
///     .max_body(1 << 20)        // the largest request or response body
///     .heartbeat(Duration::from_secs(30))
///     .service(Service::builder(ServiceKey::new("demo.Echo"))
///         .method("echo", |s: String| Ok::<_, ServiceError>(s))
///         .build())
///     .start()?;
/// provider.shutdown(Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ProviderBuilder {
    listen: SocketAddr,
    /// A listener the caller bound, used instead of `listen`.
    listener: Option<std::net::TcpListener>,
    io_threads: usize,
    busy_poll: Duration,
    pool_threads: usize,
    pool_capacity: usize,
    max_body: usize,
    heartbeat: Duration,
    accepts: usize,
    services: Vec<Service>,
    filters: Vec<Arc<dyn Filter>>,
    registry: Option<Registered>,
    token: Option<ProviderToken>,
    #[cfg(feature = "tls")]
    tls: Option<gyre_reactor::TlsAcceptor>,
}

/// Where and how a provider announces itself.
struct Registered {
    registry: Arc<dyn Registry>,
    advertise: Option<SocketAddr>,
    weight: u32,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("advertise", &self.advertise)
            .field("weight", &self.weight)
            .finish()
    }
}

impl ProviderBuilder {
    /// Where to listen (default `127.0.0.1:20880`, Dubbo's port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Listens on a listener the caller bound, instead of
    /// [`listen`](Self::listen): its port is known before `start` (to put
    /// in a configuration, or to advertise), and it can be one handed over
    /// by a supervisor.
    ///
    /// ```
    /// use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?; // known before the provider starts
    /// let provider = Provider::builder()
    ///     .listener(listener)
    ///     .service(Service::builder(ServiceKey::new("demo.Echo"))
    ///         .dispatch(Dispatch::IoThread)
    ///         .method("echo", |s: String| Ok::<_, ServiceError>(s))
    ///         .build())
    ///     .start()?;
    /// assert_eq!(provider.local_addr(), addr);
    /// provider.shutdown(std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Busy-poll window of the provider's loops (default zero: off): a
    /// loop that has had input within the window polls its sockets
    /// without sleeping, so the next call finds it running instead of
    /// waking it. See
    /// [`EventLoopGroupBuilder::busy_poll`](gyre_reactor::EventLoopGroupBuilder::busy_poll).
    ///
    /// Each loop keeps a core busy while calls keep coming: for a
    /// latency-critical provider with a core per I/O thread to spare. On
    /// a host whose cores the provider shares with its callers or its
    /// worker pool, the spinning takes the time they need (the
    /// benchmark's 64-in-flight case lost a quarter of its calls/s with
    /// it on 2 vCPUs).
    ///
    /// ```
    /// use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    /// use std::time::Duration;
    ///
    /// let provider = Provider::builder()
    ///     .listen("127.0.0.1:0".parse()?)
    ///     .io_threads(1)
    ///     .busy_poll(Duration::from_micros(200))
    ///     .service(Service::builder(ServiceKey::new("demo.Echo"))
    ///         .dispatch(Dispatch::IoThread)
    ///         .method("echo", |s: String| Ok::<_, ServiceError>(s))
    ///         .build())
    ///     .start()?;
    /// provider.shutdown(Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn busy_poll(mut self, window: Duration) -> Self {
        self.busy_poll = window;
        self
    }

    /// Event loops (default: one per core).
    pub fn io_threads(mut self, n: usize) -> Self {
        self.io_threads = n.max(1);
        self
    }

    /// Worker-pool threads for [`Dispatch::WorkerPool`] services (default
    /// 16; 0 runs every service on the event loops).
    pub fn pool_threads(mut self, n: usize) -> Self {
        self.pool_threads = n;
        self
    }

    /// Calls the pool's ring holds before the provider answers
    /// [`crate::Status::ServerOverloaded`] (a power of two; default 1024).
    pub fn pool_capacity(mut self, n: usize) -> Self {
        self.pool_capacity = n;
        self
    }

    /// The largest request or response body (default 8 MiB); a larger
    /// request closes its connection before it is buffered.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Consumer connections served at once (Dubbo's `accepts`; default
    /// 0, no limit): one more is closed as soon as it opens, before
    /// anything of it is read, and logged, as Dubbo's server does, so
    /// its consumer fails at once and a cluster turns to another
    /// provider (rather than waiting out a call's timeout).
    ///
    /// ```
    /// use gyre_rpc::provider::{Provider, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    ///
    /// let provider = Provider::builder()
    ///     .listen("127.0.0.1:0".parse()?)
    ///     .accepts(1_000)
    ///     .service(Service::builder(ServiceKey::new("demo.Echo"))
    ///         .method("echo", |s: String| Ok::<_, ServiceError>(s))
    ///         .build())
    ///     .start()?;
    /// assert_eq!(provider.connections(), 0);
    /// provider.shutdown(std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn accepts(mut self, connections: usize) -> Self {
        self.accepts = connections;
        self
    }

    /// The consumers' heartbeat period (default 60 s, Dubbo's): a
    /// connection silent for three periods is closed.
    pub fn heartbeat(mut self, period: Duration) -> Self {
        self.heartbeat = period;
        self
    }

    /// Adds a filter around every call (they run in the order added before
    /// the call, in reverse after it).
    pub fn filter(mut self, filter: impl Filter + 'static) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }

    /// Adds a filter the caller keeps a handle on (to read its counters).
    pub fn shared_filter(mut self, filter: Arc<dyn Filter>) -> Self {
        self.filters.push(filter);
        self
    }

    /// Registers every service with `registry` once listening (at the
    /// listening address unless [`advertise`](Self::advertise) says
    /// otherwise), and unregisters them first thing at shutdown.
    pub fn registry(mut self, registry: Arc<dyn Registry>) -> Self {
        self.registry = Some(Registered {
            registry,
            advertise: None,
            weight: 100,
        });
        self
    }

    /// The address to register (needed when listening on `0.0.0.0`).
    pub fn advertise(mut self, addr: SocketAddr) -> Self {
        if let Some(r) = &mut self.registry {
            r.advertise = Some(addr);
        }
        self
    }

    /// The weight to register (default 100, Dubbo's).
    pub fn weight(mut self, weight: u32) -> Self {
        if let Some(r) = &mut self.registry {
            r.weight = weight;
        }
        self
    }

    /// Exports `service`.
    pub fn service(mut self, service: Service) -> Self {
        self.services.push(service);
        self
    }

    /// Serves consumers over TLS only (feature `tls`), with mutual TLS if
    /// `tls` requires client certificates: a consumer must then be built
    /// with a [`TlsConnector`](gyre_reactor::TlsConnector) that trusts this
    /// provider's certificate (and shows one of its own).
    ///
    /// ```
    /// use gyre_reactor::{TlsAcceptor, TlsConnector, TlsIdentity, TlsRoots};
    /// use gyre_rpc::consumer::Consumer;
    /// use gyre_rpc::provider::{Provider, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    ///
    /// # let made = rcgen::generate_simple_self_signed(vec!["provider.internal".into()])?;
    /// # let (cert_pem, key_pem) = (made.cert.pem(), made.signing_key.serialize_pem());
    /// let identity = TlsIdentity::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?;
    /// let provider = Provider::builder()
    ///     .listen("127.0.0.1:0".parse()?)
    ///     .tls(TlsAcceptor::builder().identity(identity).build()?)
    ///     .service(Service::builder(ServiceKey::new("demo.Echo"))
    ///         .method("echo", |s: String| Ok::<_, ServiceError>(s))
    ///         .build())
    ///     .start()?;
    /// // Every provider shows a certificate for one shared name.
    /// let tls = TlsConnector::builder("provider.internal")
    ///     .roots(TlsRoots::from_pem(cert_pem.as_bytes())?)
    ///     .build()?;
    /// let conn = Consumer::builder().tls(tls).build()?.connect(provider.local_addr())?;
    /// let echoed: String = conn.call(&ServiceKey::new("demo.Echo"), "echo", &"over TLS")?;
    /// assert_eq!(echoed, "over TLS");
    /// provider.shutdown(std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: gyre_reactor::TlsAcceptor) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Requires a token of every call, as Dubbo's `token` setting does:
    /// the provider publishes it with its registration, a
    /// [`Cluster`](crate::cluster::Cluster) following the registry attaches
    /// it, and a call without it is answered
    /// [`Status::Forbidden`](crate::Status::Forbidden) and logged. Keeps
    /// out consumers that did not find the provider through the registry;
    /// it is not encryption (see `tls` for that, with the
    /// `tls` feature).
    ///
    /// ```
    /// use gyre_rpc::cluster::Cluster;
    /// use gyre_rpc::consumer::Consumer;
    /// use gyre_rpc::provider::{Provider, ProviderToken, Service, ServiceError};
    /// use gyre_rpc::registry::{EmbeddedRegistry, RegistryServer};
    /// use gyre_rpc::ServiceKey;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let key = ServiceKey::new("demo.Echo");
    /// let registry_server = RegistryServer::start("127.0.0.1:0".parse()?)?;
    /// let registry = Arc::new(EmbeddedRegistry::connect(registry_server.local_addr())?);
    /// let provider = Provider::builder()
    ///     .listen("127.0.0.1:0".parse()?)
    ///     .registry(registry.clone())
    ///     .token(ProviderToken::Random)
    ///     .service(Service::builder(key.clone()).method("echo", |s: String| Ok::<_, ServiceError>(s)).build())
    ///     .start()?;
    /// // The cluster learns the token from the registry.
    /// let cluster = Cluster::builder(key).build(Consumer::builder().build()?);
    /// let _subscription = cluster.subscribe(&*registry)?;
    /// cluster.wait_for_providers(1, Duration::from_secs(5))?;
    /// let echoed: String = cluster.call("echo", &"through the registry")?;
    /// assert_eq!(echoed, "through the registry");
    /// provider.shutdown(Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn token(mut self, token: ProviderToken) -> Self {
        self.token = Some(token);
        self
    }

    /// Starts listening.
    pub fn start(self) -> Result<Provider, ProviderError> {
        let mut exports = Exports::default();
        for s in self.services {
            exports.add(s);
        }
        let keys: Vec<ServiceKey> = exports.keys().cloned().collect();
        let shared = Arc::new(Shared {
            routes: Routes::new(&exports),
            exports,
            max_body: self.max_body,
            filters: Arc::from(self.filters),
            in_flight: Arc::new(AtomicUsize::new(0)),
            token: self.token.map(|t| Arc::from(t.resolve())),
            accepts: self.accepts,
            connections: AtomicUsize::new(0),
            open: ChannelGroup::new(),
        });
        let pool = if self.pool_threads > 0 {
            Some(Pool::start(self.pool_threads, self.pool_capacity, &shared)?)
        } else {
            None
        };
        let loops = EventLoopGroup::builder()
            .threads(self.io_threads)
            .name("gyre-rpc-io")
            .busy_poll(self.busy_poll)
            .build()?;
        let max_body = self.max_body;
        let silent = self.heartbeat * 3;
        let conn_shared = shared.clone();
        let server = ServerBootstrap::new()
            .group(loops)
            .child_options(ChannelOptions::default().tcp_nodelay(true));
        let at = match self.listener {
            Some(listener) => Listen::Listener(listener),
            None => Listen::Addr(self.listen),
        };
        // Every connection's pipeline: (TLS,) heartbeat watch, frames,
        // routing, and (with a pool) the offload layer that takes pooled
        // calls. One pipeline type per combination, so a macro writes them.
        macro_rules! framed {
            ($front:expr, $pooled:expr) => {
                $front
                    .inbound(IdleStateHandler::new(
                        silent,
                        Duration::ZERO,
                        Duration::ZERO,
                    ))
                    .decoder(frame_decoder(max_body))
                    .inbound(ProviderConnection::new(conn_shared.clone(), $pooled))
            };
        }
        macro_rules! serve {
            ($front:expr) => {
                match &pool {
                    Some(pool) => {
                        let stage = pool.stage().clone();
                        bind(server, at, move |_peer| {
                            framed!($front, true).offload(stage.connection())
                        })?
                    }
                    None => bind(server, at, move |_peer| framed!($front, false))?,
                }
            };
        }
        #[cfg(feature = "tls")]
        let server = match self.tls {
            Some(tls) => serve!(Pipeline::new().tls_server(&tls)),
            None => serve!(Pipeline::new()),
        };
        #[cfg(not(feature = "tls"))]
        let server = serve!(Pipeline::new());
        let registered = match self.registry {
            Some(r) => {
                let addr = r.advertise.unwrap_or_else(|| server.local_addr());
                let entry = ProviderEntry {
                    addr,
                    weight: r.weight,
                    token: shared.token.as_deref().map(str::to_owned),
                };
                for key in &keys {
                    r.registry.register(key, &entry)?;
                }
                Some((r.registry, addr))
            }
            None => None,
        };
        Ok(Provider {
            server,
            pool: Mutex::new(pool),
            shared,
            keys,
            registered,
        })
    }
}

/// A running provider.
///
/// ```
/// use gyre_rpc::provider::{Provider, Service, ServiceError};
/// use gyre_rpc::ServiceKey;
/// use std::time::Duration;
///
/// let provider = Provider::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .service(Service::builder(ServiceKey::new("demo.Echo"))
///         .method("echo", |s: String| Ok::<_, ServiceError>(s))
///         .build())
///     .start()?;
/// println!("serving on {}", provider.local_addr());
/// assert_eq!(provider.in_flight(), 0);
/// // Unregisters, stops accepting, finishes the calls in flight, closes.
/// provider.shutdown(Duration::from_secs(5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Provider {
    server: Server,
    pool: Mutex<Option<Pool>>,
    shared: Arc<Shared>,
    keys: Vec<ServiceKey>,
    registered: Option<(Arc<dyn Registry>, SocketAddr)>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("addr", &self.local_addr())
            .field("services", &self.keys)
            .finish()
    }
}

impl Provider {
    /// A builder with the defaults.
    pub fn builder() -> ProviderBuilder {
        ProviderBuilder {
            listen: SocketAddr::from(([127, 0, 0, 1], 20880)),
            listener: None,
            io_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            busy_poll: Duration::ZERO,
            pool_threads: 16,
            pool_capacity: 1024,
            max_body: DEFAULT_MAX_BODY,
            accepts: 0,
            heartbeat: Duration::from_secs(60),
            services: Vec::new(),
            filters: Vec::new(),
            registry: None,
            token: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The services it exports.
    pub fn services(&self) -> &[ServiceKey] {
        &self.keys
    }

    /// The token every call must carry, if the provider requires one (see
    /// [`ProviderBuilder::token`]).
    pub fn token(&self) -> Option<&str> {
        self.shared.token.as_deref()
    }

    /// Consumer connections open now (counted only under
    /// [`ProviderBuilder::accepts`]; 0 without it).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Calls taken and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Sends every open connection the read-only notice (one that closes
    /// meanwhile needs none).
    fn tell_read_only(&self) {
        let notice = read_only_frame(&mut BytesMut::new());
        self.shared.open.write_and_flush(notice);
    }

    /// Stops at once, as a crash would look to consumers: every connection
    /// is closed without waiting for the calls in flight, whose answers are
    /// lost. For tests of failover and for emergency stops.
    pub fn abort(self) {
        self.server
            .shutdown_gracefully(Duration::ZERO, Duration::ZERO);
        if let Some(mut pool) = self.pool.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pool.shutdown(Duration::ZERO);
        }
    }

    /// Graceful shutdown: unregisters from the registry (if any), stops
    /// taking connections, tells every consumer connected that it is
    /// shutting down (Dubbo's READONLY event: their clusters send their
    /// new calls elsewhere), answers the calls in flight and those sent
    /// before the notice arrived, until none has been in flight for
    /// [`SHUTDOWN_QUIET`] (for at most `timeout` in all), then closes
    /// every connection.
    pub fn shutdown(self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        // Consumers stop choosing us before we stop answering.
        if let Some((registry, addr)) = &self.registered {
            for key in &self.keys {
                if let Err(e) = registry.unregister(key, *addr) {
                    tracing::warn!(service = %key, error = %e, "unregister failed; the lease will expire");
                }
            }
        }
        self.server.stop_accepting();
        self.tell_read_only();
        let mut quiet_since: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if self.in_flight() > 0 {
                quiet_since = None;
            } else if now - *quiet_since.get_or_insert(now) >= SHUTDOWN_QUIET {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(mut pool) = self.pool.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pool.shutdown(deadline.saturating_duration_since(Instant::now()));
        }
        while self.in_flight() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Give the loops a moment to flush the last answers.
        self.server.shutdown_gracefully(
            Duration::from_millis(20),
            deadline.saturating_duration_since(Instant::now()),
        );
    }
}

/// Where a provider listens.
enum Listen {
    Addr(SocketAddr),
    Listener(std::net::TcpListener),
}

/// Starts `server` at `at` with `init` for each connection.
fn bind<F, L, R, W, S>(
    server: ServerBootstrap,
    at: Listen,
    init: F,
) -> Result<Server, gyre_reactor::Error>
where
    F: Fn(SocketAddr) -> Pipeline<L, R, W, S> + Send + Sync + 'static,
    L: InboundChain<BytesMut, S> + 'static,
    S: Into<Outbound> + 'static,
    R: 'static,
    W: 'static,
{
    match at {
        Listen::Addr(addr) => server.bind(addr, init),
        Listen::Listener(listener) => server.bind_listener(listener, init),
    }
}
