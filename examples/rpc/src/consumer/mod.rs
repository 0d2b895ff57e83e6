//! The consumer side: one long connection per provider, calls multiplexed
//! over it by request id, blocking or async, each with a timeout.
//!
//! ```
//! use gyre_rpc::consumer::{CallOptions, Consumer};
//! use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
//! use gyre_rpc::ServiceKey;
//!
//! let calc = ServiceKey::new("demo.Calc");
//! let provider = Provider::builder()
//!     .listen("127.0.0.1:0".parse().unwrap())
//!     .service(
//!         Service::builder(calc.clone())
//!             .dispatch(Dispatch::IoThread)
//!             .method("add", |(a, b): (i64, i64)| Ok::<_, ServiceError>(a + b))
//!             .build(),
//!     )
//!     .start()
//!     .unwrap();
//! let consumer = Consumer::builder().build().unwrap();
//! let conn = consumer.connect(provider.local_addr()).unwrap();
//! let sum: i64 = conn.call(&calc, "add", &(2, 3)).unwrap();
//! assert_eq!(sum, 5);
//! // The same call as a future, in JSON this time.
//! let json = CallOptions::default().serialization(gyre_rpc::Serialization::Json);
//! let later = conn.call_async_with::<_, i64>(&calc, "add", &(4, 5), &json);
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! assert_eq!(rt.block_on(later).unwrap(), 9);
//! provider.shutdown(std::time::Duration::from_secs(1));
//! ```

mod closing;
mod error;
mod filings;
mod handler;
mod lent;
mod link;
mod pending;
mod reply;
mod send;
mod sink;
#[cfg(feature = "tokio")]
mod tokio_reads;
#[cfg(feature = "tokio")]
mod tokio_relay;
mod wait;

pub(crate) use error::call_name;
pub use error::RpcError;

use crate::filter::Filter;
use crate::protocol::{
    encode_frame, frame_decoder, write_routing, Kind, Serialization, ServiceKey, Status,
    DEFAULT_MAX_BODY,
};
use bytes::{Bytes, BytesMut};
use filings::Filings;
use gyre_reactor::promise::{PromiseDropped, PromisePool};
use gyre_reactor::{Bootstrap, ChannelOptions, EventLoopGroup, IdleStateHandler, Pipeline};
use handler::ConsumerConnection;
use pending::{Outgoing, Pending, Registrar};
use reply::Reply;
use serde::de::DeserializeOwned;
use serde::Serialize;
pub(crate) use sink::{Answer, Sink};
use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wait::{LentCall, Sent};

/// Per-call settings.
///
/// ```
/// use gyre_rpc::consumer::CallOptions;
/// use gyre_rpc::Serialization;
/// use std::time::Duration;
///
/// let options = CallOptions::default()
///     .timeout(Duration::from_millis(200))
///     .serialization(Serialization::Json)
///     .attach("trace-id", "4bf92f35")
///     .hash_key(42); // for a consistent-hash balancer
/// assert_eq!(options.attachments.len(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct CallOptions {
    /// How long to wait for the answer (default 1 s, Dubbo's).
    pub timeout: Duration,
    /// How the arguments and result are serialized.
    pub serialization: Serialization,
    /// String attachments the provider can read (trace ids, tokens).
    pub attachments: Vec<(String, String)>,
    /// What a consistent-hash balancer keys the call on (default: a hash
    /// of the serialized arguments, so equal arguments go to the same
    /// provider); see [`crate::cluster::hash_key`].
    pub hash_key: Option<u64>,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            timeout: Duration::from_secs(1),
            serialization: Serialization::Binary,
            attachments: Vec::new(),
            hash_key: None,
        }
    }
}

impl CallOptions {
    /// The same options with `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same options with `serialization`.
    pub fn serialization(mut self, serialization: Serialization) -> Self {
        self.serialization = serialization;
        self
    }

    /// The same options keyed on `key` for consistent hashing.
    pub fn hash_key(mut self, key: u64) -> Self {
        self.hash_key = Some(key);
        self
    }

    /// The same options with one more attachment.
    pub fn attach(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attachments.push((key.into(), value.into()));
        self
    }
}

/// Builds a [`Consumer`].
///
/// ```
/// use gyre_rpc::consumer::{CallOptions, Consumer};
/// use gyre_rpc::filter::AccessLog;
/// use std::time::Duration;
///
/// let consumer = Consumer::builder()
///     .io_threads(1)
///     .heartbeat(Duration::from_secs(30))
///     .connect_timeout(Duration::from_secs(1))
///     .call_defaults(CallOptions::default().timeout(Duration::from_millis(500)))
///     .filter(AccessLog)
///     .build()?;
/// # drop(consumer);
/// # Ok::<(), gyre_rpc::consumer::RpcError>(())
/// ```
#[derive(Debug)]
pub struct ConsumerBuilder {
    io_threads: usize,
    heartbeat: Duration,
    max_body: usize,
    connect_timeout: Duration,
    tick: Duration,
    defaults: CallOptions,
    filters: Vec<Arc<dyn Filter>>,
    direct_writes: bool,
    direct_reads: bool,
    #[cfg(feature = "tokio")]
    tokio_reads: bool,
    #[cfg(feature = "tokio")]
    wake_relay: bool,
    busy_poll: Duration,
    #[cfg(feature = "tls")]
    tls: Option<gyre_reactor::TlsConnector>,
}

impl ConsumerBuilder {
    /// Whether a caller sends its call's frame from its own thread when
    /// nothing else is in flight on the connection and its loop has
    /// nothing to write (default on): a call then wakes one loop, the
    /// provider's, on its way out instead of two. Calls made while others
    /// are in flight go through the loop either way, which sends them
    /// many to a system call. Off, every call goes through the
    /// connection's loop. Not with TLS or filters, whose calls always go
    /// through the loop.
    pub fn direct_writes(mut self, on: bool) -> Self {
        self.direct_writes = on;
        self
    }

    /// Whether a blocking call sent from its caller's thread with nothing
    /// else in flight reads its own answer (default on): the connection's
    /// loop lends the caller its socket's input
    /// ([`ChannelHandle::lend_input`](gyre_reactor::ChannelHandle::lend_input))
    /// and the caller, woken by the kernel when the answer lands, reads
    /// and decodes it itself instead of waiting for the loop to be woken,
    /// read, decode and hand it over. Anything else that arrives first (a
    /// heartbeat, another call's answer) goes back to the loop, and the
    /// call is then settled the usual way. Needs
    /// [`direct_writes`](Self::direct_writes).
    ///
    /// ```
    /// use gyre_rpc::consumer::Consumer;
    ///
    /// // Every answer through the connection's loop.
    /// let consumer = Consumer::builder().direct_reads(false).build()?;
    /// # drop(consumer);
    /// # Ok::<(), gyre_rpc::consumer::RpcError>(())
    /// ```
    pub fn direct_reads(mut self, on: bool) -> Self {
        self.direct_reads = on;
        self
    }

    /// Whether an asynchronous call polled on a tokio runtime with nothing
    /// else in flight reads its own answer (feature `tokio`; default
    /// off): the call goes out from the task at its future's first poll,
    /// with the connection's input lent to it
    /// ([`ChannelHandle::lend_input`](gyre_reactor::ChannelHandle::lend_input)),
    /// and the kernel wakes the task when the answer lands, through the
    /// connection's [`InputWatch`](gyre_reactor::InputWatch) registered
    /// once with the runtime (tokio's `AsyncFd`). The task then reads and
    /// decodes the answer itself: the connection's loop is not woken to
    /// read it, and no wake-up passes from the loop's thread to the
    /// task's. Anything else that arrives first goes back to the loop,
    /// which settles the call the usual way. Needs
    /// [`direct_reads`](Self::direct_reads) (and so
    /// [`direct_writes`](Self::direct_writes)).
    ///
    /// With many calls in flight no call reads its own answer, but the
    /// watch stays in the runtime's poller: every answer that lands wakes
    /// the runtime's thread as well as the loop, and it polls again until
    /// the loop has read the answer, so while answers flow its core does
    /// not go idle (as with a busy poll, and at some CPU). On one 2-vCPU
    /// VM, where waking an idle vCPU takes 25-35 µs, that made 64 calls
    /// in flight 1.05-1.31x faster; on another it changed nothing (the
    /// repository's BENCHMARKS.md).
    ///
    /// Turn it on only where calls are awaited on a tokio runtime with
    /// its IO driver enabled (`enable_io` or `enable_all`): tokio panics
    /// when a descriptor is registered with a runtime without one, as it
    /// does for its own sockets. A connection's watch serves the runtime
    /// of its first such call; calls awaited elsewhere (another runtime,
    /// another executor) go through the loop as with it off. With it on,
    /// every asynchronous call on a connection goes out at its future's
    /// first poll, not when `call_async` returns; and a call reading its
    /// own answer holds the connection's input from that poll until it
    /// ends or its future is dropped (the loop reads nothing meanwhile),
    /// so poll such a future to its end or drop it, as `.await` and
    /// `select!` do.
    ///
    /// ```
    /// use gyre_rpc::consumer::Consumer;
    /// use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    ///
    /// let key = ServiceKey::new("demo.Calc");
    /// let provider = Provider::builder()
    ///     .listen("127.0.0.1:0".parse()?)
    ///     .service(Service::builder(key.clone()).dispatch(Dispatch::IoThread)
    ///         .method("add", |(a, b): (i64, i64)| Ok::<_, ServiceError>(a + b)).build())
    ///     .start()?;
    /// let consumer = Consumer::builder().tokio_reads(true).build()?;
    /// let conn = consumer.connect(provider.local_addr())?;
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let sum: i64 = rt.block_on(conn.call_async(&key, "add", &(2i64, 3i64)))?;
    /// assert_eq!(sum, 5);
    /// provider.shutdown(std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "tokio")]
    pub fn tokio_reads(mut self, on: bool) -> Self {
        self.tokio_reads = on;
        self
    }

    /// Whether answers to asynchronous calls awaited by tasks of a tokio
    /// current-thread runtime wake their tasks through a relay (feature
    /// `tokio`; default on): one task of the runtime's own, spawned by the
    /// first such call on each calling thread, wakes the tasks whose
    /// answers the connection's loop has settled, and the loop wakes that
    /// task once per burst of answers instead of waking each task itself.
    /// A current-thread runtime pays a system call (an eventfd write) for
    /// every wake-up from another thread, so with many calls in flight
    /// the loop spent a third of its time on them. Calls awaited
    /// elsewhere (a multi-thread runtime, which wakes a parked worker only
    /// when one is parked; another executor; a runtime's `block_on`
    /// future, which is not a task) are woken directly, as with it off.
    ///
    /// ```
    /// use gyre_rpc::consumer::Consumer;
    ///
    /// // Every answer wakes its task directly from the loop.
    /// let consumer = Consumer::builder().wake_relay(false).build()?;
    /// # drop(consumer);
    /// # Ok::<(), gyre_rpc::consumer::RpcError>(())
    /// ```
    #[cfg(feature = "tokio")]
    pub fn wake_relay(mut self, on: bool) -> Self {
        self.wake_relay = on;
        self
    }

    /// Connects to providers over TLS (feature `tls`): `tls` names the
    /// server name every provider's certificate must be for (providers
    /// share one), the roots that vouch for it and, for mutual TLS, this
    /// consumer's own certificate. See
    /// [`ProviderBuilder::tls`](crate::provider::ProviderBuilder::tls) for
    /// an example.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: gyre_reactor::TlsConnector) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Adds a filter around every call of every connection (run on the
    /// connection's event loop: keep it quick).
    pub fn filter(mut self, filter: impl Filter + 'static) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }

    /// Adds a filter the caller keeps a handle on.
    pub fn shared_filter(mut self, filter: Arc<dyn Filter>) -> Self {
        self.filters.push(filter);
        self
    }

    /// Busy-poll window of the consumer's loops (default zero: off): a
    /// loop that has had input within the window polls its sockets
    /// without sleeping, so an answer finds it running instead of waking
    /// it. See
    /// [`EventLoopGroupBuilder::busy_poll`](gyre_reactor::EventLoopGroupBuilder::busy_poll).
    ///
    /// With one call in flight this takes a wake-up out of every round
    /// trip (the answer then wakes only the caller) and costs a core for
    /// as long as answers keep coming: on the benchmark's 2-vCPU host,
    /// 200 µs took one call in flight from about 1.1x tarpc's calls/s to
    /// 1.3-1.5x (`BENCHMARKS.md`). Use it where latency matters more than a
    /// core; leave it off where the consumer shares its cores with work
    /// the spinning would starve.
    ///
    /// ```
    /// use gyre_rpc::consumer::Consumer;
    /// use std::time::Duration;
    ///
    /// let consumer = Consumer::builder()
    ///     .busy_poll(Duration::from_micros(200))
    ///     .build()?;
    /// consumer.shutdown();
    /// # Ok::<(), gyre_rpc::consumer::RpcError>(())
    /// ```
    pub fn busy_poll(mut self, window: Duration) -> Self {
        self.busy_poll = window;
        self
    }

    /// Event loops for the connections (default 1).
    pub fn io_threads(mut self, n: usize) -> Self {
        self.io_threads = n.max(1);
        self
    }

    /// Ping a provider after this long without sending (default 60 s); a
    /// provider silent for three periods is disconnected.
    pub fn heartbeat(mut self, period: Duration) -> Self {
        self.heartbeat = period;
        self
    }

    /// The largest request or response body (default 8 MiB).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// How long a connect may take (default 3 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How often deadlines are checked (default 5 ms): a timeout is
    /// reported up to this late. A connection with nothing in flight that
    /// starts no call for 20 ticks (100 ms by default) stops checking, so
    /// its loop sleeps until something happens (an idle connection costs
    /// no wake-ups), and starts again with its next call, which then costs
    /// its loop one wake-up more.
    pub fn timeout_tick(mut self, tick: Duration) -> Self {
        self.tick = tick.max(Duration::from_millis(1));
        self
    }

    /// Options for calls that do not give their own.
    pub fn call_defaults(mut self, options: CallOptions) -> Self {
        self.defaults = options;
        self
    }

    /// Starts the consumer's event loops.
    pub fn build(self) -> Result<Consumer, RpcError> {
        let loops = EventLoopGroup::builder()
            .threads(self.io_threads)
            .name("gyre-rpc-consumer")
            .busy_poll(self.busy_poll)
            .build()
            .map_err(|e| RpcError::Connect(gyre_reactor::Error::Io(e)))?;
        Ok(Consumer {
            loops,
            filters: Arc::from(self.filters.clone()),
            config: Arc::new(self),
            answers: PromisePool::new(ANSWER_SLOTS),
            opened: Arc::default(),
        })
    }
}

/// Connects to providers; its event loops carry every connection it makes.
///
/// ```
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
/// use gyre_rpc::ServiceKey;
///
/// let key = ServiceKey::new("demo.Echo");
/// let provider = Provider::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .service(Service::builder(key.clone()).dispatch(Dispatch::IoThread)
///         .method("echo", |s: String| Ok::<_, ServiceError>(s)).build())
///     .start()?;
/// // One consumer (its event loops) for any number of connections.
/// let consumer = Consumer::builder().build()?;
/// let a = consumer.connect(provider.local_addr())?;
/// let b = consumer.connect(provider.local_addr())?;
/// assert_eq!(a.call::<_, String>(&key, "echo", "x")?, "x");
/// assert_eq!(b.call::<_, String>(&key, "echo", "y")?, "y");
/// consumer.shutdown(); // closes both
/// provider.shutdown(std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Consumer {
    loops: EventLoopGroup,
    config: Arc<ConsumerBuilder>,
    filters: Arc<[Arc<dyn Filter>]>,
    /// The answer slots of asynchronous calls, reused by every connection.
    answers: PromisePool<Answer>,
    /// The connections it opened, for a graceful shutdown.
    opened: Arc<closing::Opened>,
}

impl Consumer {
    /// A builder with the defaults.
    pub fn builder() -> ConsumerBuilder {
        ConsumerBuilder {
            io_threads: 1,
            heartbeat: Duration::from_secs(60),
            max_body: DEFAULT_MAX_BODY,
            connect_timeout: Duration::from_secs(3),
            tick: Duration::from_millis(5),
            defaults: CallOptions::default(),
            filters: Vec::new(),
            direct_writes: true,
            direct_reads: true,
            #[cfg(feature = "tokio")]
            tokio_reads: false,
            #[cfg(feature = "tokio")]
            wake_relay: true,
            busy_poll: Duration::ZERO,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Opens a connection to the provider at `addr`.
    pub fn connect(&self, addr: SocketAddr) -> Result<Connection, RpcError> {
        self.connect_with_token(addr, None)
    }

    /// Opens a connection to a provider that requires `token` (see
    /// [`ProviderBuilder::token`](crate::provider::ProviderBuilder::token));
    /// every call on it carries the token. A [`Cluster`](crate::cluster::Cluster)
    /// following a registry does this with the token each provider
    /// publishes.
    ///
    /// ```
    /// use gyre_rpc::consumer::Consumer;
    /// use gyre_rpc::provider::{Provider, ProviderToken, Service, ServiceError};
    /// use gyre_rpc::{ServiceKey, Status};
    ///
    /// let key = ServiceKey::new("demo.Echo");
    /// let provider = Provider::builder()
    ///     .listen("127.0.0.1:0".parse()?)
    ///     .token(ProviderToken::Fixed("s3cret".into()))
    ///     .service(Service::builder(key.clone()).method("echo", |s: String| Ok::<_, ServiceError>(s)).build())
    ///     .start()?;
    /// let consumer = Consumer::builder().build()?;
    /// let refused = consumer.connect(provider.local_addr())?.call::<_, String>(&key, "echo", &"hi");
    /// assert_eq!(refused.unwrap_err().status(), Status::Forbidden);
    /// let conn = consumer.connect_with_token(provider.local_addr(), Some("s3cret".into()))?;
    /// assert_eq!(conn.call::<_, String>(&key, "echo", &"hi")?, "hi");
    /// provider.shutdown(std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_with_token(
        &self,
        addr: SocketAddr,
        token: Option<Arc<str>>,
    ) -> Result<Connection, RpcError> {
        let next_id = Arc::new(AtomicU64::new(1));
        let ids = next_id.clone();
        let waiting = Arc::new(AtomicUsize::new(0));
        let counter = waiting.clone();
        let filters = self.filters.clone();
        let cfg = self.config.clone();
        #[cfg(feature = "tls")]
        let tls = self.config.tls.is_some();
        #[cfg(not(feature = "tls"))]
        let tls = false;
        // Callers send their own frames only where nothing on the loop
        // must see them first: no TLS session, no filters.
        let caller_sends = self.config.direct_writes && !tls && self.filters.is_empty();
        let filings = Arc::new(Filings::new(waiting.clone()));
        let filed = filings.clone();
        let read_only = Arc::new(AtomicBool::new(false));
        let notice = read_only.clone();
        let bootstrap = Bootstrap::new(self.loops.clone())
            .options(
                ChannelOptions::default()
                    .tcp_nodelay(true)
                    .direct_writes(caller_sends)
                    .lend_input(caller_sends && self.config.direct_reads),
            )
            .connect_timeout(self.config.connect_timeout);
        // (TLS,) heartbeats, frames, the pending calls: one pipeline type
        // with TLS and one without, so a macro writes both.
        macro_rules! connect {
            ($front:expr) => {
                bootstrap.connect(addr, move |_| {
                    let pending =
                        Rc::new(RefCell::new(Pending::new(counter, filters, addr, filed)));
                    $front
                        .inbound(IdleStateHandler::new(
                            cfg.heartbeat * 3,
                            cfg.heartbeat,
                            Duration::ZERO,
                        ))
                        .decoder(frame_decoder(cfg.max_body))
                        .outbound(Registrar {
                            pending: pending.clone(),
                        })
                        .inbound(ConsumerConnection::new(
                            pending,
                            ids,
                            cfg.tick,
                            notice.clone(),
                        ))
                })?
            };
        }
        #[cfg(feature = "tls")]
        let handle = match self.config.tls.clone() {
            Some(tls) => connect!(Pipeline::new().tls_client(&tls)),
            None => connect!(Pipeline::new()),
        };
        #[cfg(not(feature = "tls"))]
        let handle = connect!(Pipeline::new());
        let link = Arc::new(link::Link {
            handle,
            filings,
            waiting,
            read_own: AtomicU64::new(0),
            max_body: self.config.max_body,
            read_only,
            closing: AtomicBool::new(false),
        });
        self.opened.add(&link);
        Ok(Connection {
            link,
            _loops: self.loops.clone(),
            next_id,
            addr,
            defaults: self.config.defaults.clone(),
            filtered: !self.filters.is_empty(),
            token,
            answers: self.answers.clone(),
            caller_sends,
            #[cfg(feature = "tokio")]
            reads: (caller_sends && self.config.direct_reads && self.config.tokio_reads)
                .then(Arc::default),
            #[cfg(feature = "tokio")]
            wake_relay: self.config.wake_relay,
        })
    }

    /// Stops the event loops, closing every connection; calls waiting on
    /// them fail with [`RpcError::Closed`].
    pub fn shutdown(self) {
        self.loops
            .shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
    }

    /// Shuts down once the calls in flight are answered (Dubbo's
    /// consumer-side graceful shutdown): every connection it opened stops
    /// taking new calls (they fail at once with [`RpcError::Closed`], and
    /// clusters stop choosing them), the calls in flight on them are
    /// waited for, for at most `timeout`, then the event loops stop and
    /// those still unanswered fail with `Closed`. Returns whether every
    /// call was answered. Blocks the calling thread; on an event loop's
    /// thread (where waiting would hold that loop) it waits for nothing.
    ///
    /// ```
    /// use gyre_rpc::consumer::{Consumer, RpcError};
    /// use gyre_rpc::provider::{Provider, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    /// use std::time::Duration;
    ///
    /// let key = ServiceKey::new("demo.Slow");
    /// let service = Service::builder(key.clone())
    ///     .method("nap", |ms: u64| {
    ///         std::thread::sleep(Duration::from_millis(ms));
    ///         Ok::<_, ServiceError>(ms)
    ///     })
    ///     .build();
    /// let provider = Provider::builder().listen("127.0.0.1:0".parse()?).service(service).start()?;
    /// let consumer = Consumer::builder().build()?;
    /// let conn = consumer.connect(provider.local_addr())?;
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let call = conn.call_async::<_, u64>(&key, "nap", &50u64);
    /// let napping = std::thread::spawn(move || rt.block_on(call));
    /// while conn.in_flight() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// assert!(consumer.shutdown_gracefully(Duration::from_secs(5)), "answered in time");
    /// assert_eq!(napping.join().unwrap()?, 50);
    /// assert!(matches!(conn.call::<_, u64>(&key, "nap", &0u64), Err(RpcError::Closed)));
    /// provider.shutdown(Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_gracefully(self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let answered = closing::drain(&self.opened.live(), deadline);
        let rest = deadline.saturating_duration_since(Instant::now());
        self.loops
            .shutdown_gracefully(Duration::ZERO, rest.max(Duration::from_millis(100)));
        answered
    }
}

/// Free answer slots a consumer keeps for asynchronous calls: more calls
/// than this in flight at once allocate slots of their own.
const ANSWER_SLOTS: usize = 1024;

thread_local! {
    /// Each calling thread encodes into its own buffer, whose spare room is
    /// reused from call to call (see [`crate::protocol::FRAME_BLOCK`]).
    static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// `value` serialized into the calling thread's reused buffer (no
/// allocation once the buffer has room): what the cluster sends to one or
/// more providers.
pub(crate) fn serialize_args<T: Serialize + ?Sized>(
    serialization: Serialization,
    value: &T,
    service: &ServiceKey,
    method: &str,
) -> Result<Bytes, RpcError> {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        s.clear();
        serialization
            .serialize(value, &mut s)
            .map_err(|e| RpcError::arguments(service, method, e))?;
        Ok(s.split().freeze())
    })
}

/// One long connection to a provider; share it (`&Connection` is enough)
/// between threads: calls are multiplexed by request id.
///
/// A connection keeps its [`Consumer`]'s event loops running, so it may
/// outlive the consumer that opened it; the loops stop when the consumer
/// and every connection it opened are gone (or at
/// [`Consumer::shutdown`], which closes them all).
///
/// ```
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
/// use gyre_rpc::ServiceKey;
/// use std::sync::Arc;
///
/// let key = ServiceKey::new("demo.Sq");
/// let provider = Provider::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .service(Service::builder(key.clone()).dispatch(Dispatch::IoThread)
///         .method("sq", |n: u64| Ok::<_, ServiceError>(n * n)).build())
///     .start()?;
/// let conn = Arc::new(Consumer::builder().build()?.connect(provider.local_addr())?);
/// // Many threads, one connection: calls are multiplexed by request id.
/// let threads: Vec<_> = (0..4u64)
///     .map(|t| {
///         let (conn, key) = (conn.clone(), key.clone());
///         std::thread::spawn(move || conn.call::<_, u64>(&key, "sq", &t).unwrap())
///     })
///     .collect();
/// let squares: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
/// assert_eq!(squares, [0, 1, 4, 9]);
/// provider.shutdown(std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Connection {
    /// The handle, filings, counts and body limit every call shares.
    link: Arc<link::Link>,
    /// The loops carrying this connection, held only to keep them
    /// running: dropping the last handle on a group stops it, which must
    /// not happen while a connection is in use.
    _loops: EventLoopGroup,
    next_id: Arc<AtomicU64>,
    addr: SocketAddr,
    defaults: CallOptions,
    /// Whether calls carry their names for the consumer's filters.
    filtered: bool,
    /// The provider's token, attached to every call (see
    /// [`Consumer::connect_with_token`]).
    token: Option<Arc<str>>,
    /// The consumer's answer slots for asynchronous calls.
    answers: PromisePool<Answer>,
    /// Calls are filed in `filings` and their frames sent from the
    /// caller's thread when the loop lets it (see
    /// [`ConsumerBuilder::direct_writes`]).
    caller_sends: bool,
    /// Asynchronous calls read their own answers (see
    /// [`ConsumerBuilder::tokio_reads`]).
    #[cfg(feature = "tokio")]
    reads: Option<Arc<tokio_reads::AsyncReads>>,
    /// Answers wake tokio tasks through a relay (see
    /// [`ConsumerBuilder::wake_relay`]).
    #[cfg(feature = "tokio")]
    wake_relay: bool,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outgoing")
    }
}

/// The result a caller sees from an answer; `call` names the call (only
/// asked for when the result does not decode).
pub(crate) fn decode_answer<Resp: DeserializeOwned>(
    answer: Answer,
    serialization: Serialization,
    call: impl FnOnce() -> String,
) -> Result<Resp, RpcError> {
    match answer {
        Err(e) => Err(e),
        Ok((Status::Ok, body)) => {
            serialization
                .deserialize(&body)
                .map_err(|source| RpcError::Result {
                    call: call(),
                    expected: std::any::type_name::<Resp>(),
                    source,
                })
        }
        Ok((status, body)) => Err(RpcError::Failed {
            status,
            message: String::from_utf8_lossy(&body).into_owned(),
        }),
    }
}

/// An asynchronous call as `call_async` leaves it: sent (or failed to
/// be), or, reading its own answer, encoded and sent at the first poll.
enum AsyncCall {
    Sent {
        started: Result<(), RpcError>,
        answer: gyre_reactor::promise::PromiseFuture<Answer>,
        /// Through a relay where one serves (see `tokio_relay`).
        #[cfg(feature = "tokio")]
        relay: bool,
    },
    #[cfg(feature = "tokio")]
    Deferred {
        call: Result<(tokio_reads::Route, u64, Bytes, Duration), RpcError>,
        done: gyre_reactor::promise::Promise<Answer>,
        answer: gyre_reactor::promise::PromiseFuture<Answer>,
    },
}

impl AsyncCall {
    /// The call's answer, undecoded; a call whose answer slot was dropped
    /// unanswered (its connection's loop gone) is `Closed`.
    async fn answer(self) -> Answer {
        let answer: Result<Answer, PromiseDropped> = match self {
            #[cfg(not(feature = "tokio"))]
            AsyncCall::Sent { started, answer } => {
                started?;
                answer.await
            }
            #[cfg(feature = "tokio")]
            AsyncCall::Sent {
                started,
                answer,
                relay,
            } => {
                started?;
                tokio_relay::Relayed::new(answer, relay).await
            }
            #[cfg(feature = "tokio")]
            AsyncCall::Deferred { call, done, answer } => {
                let (route, id, frame, timeout) = call?;
                route.call(id, frame, timeout, done, answer).await
            }
        };
        answer.unwrap_or(Err(RpcError::Closed))
    }

    /// The call's result, decoded as `serialization` says.
    // Not an `async fn`: its future would not be `'static` for a `Resp`
    // that is not, where this one holds no `Resp` until it returns one.
    #[allow(clippy::manual_async_fn)]
    fn finish<Resp: DeserializeOwned>(
        self,
        serialization: Serialization,
    ) -> impl Future<Output = Result<Resp, RpcError>> + Send + 'static {
        let answer = self.answer();
        async move {
            decode_answer(answer.await, serialization, || {
                "an asynchronous call".to_string()
            })
        }
    }
}

impl Connection {
    /// The provider's address.
    pub fn peer(&self) -> SocketAddr {
        self.addr
    }

    /// Calls sent and not yet answered, timed out or failed.
    pub fn in_flight(&self) -> usize {
        self.link.waiting.load(Ordering::Relaxed)
    }

    /// How many answers their callers read themselves, with the
    /// connection's input lent to them: blocking calls
    /// ([`ConsumerBuilder::direct_reads`]) and asynchronous calls on tokio
    /// ([`ConsumerBuilder::tokio_reads`]). The rest went through the
    /// connection's loop.
    ///
    /// ```
    /// use gyre_rpc::consumer::Consumer;
    /// use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    ///
    /// let key = ServiceKey::new("demo.Echo");
    /// let provider = Provider::builder()
    ///     .listen("127.0.0.1:0".parse()?)
    ///     .service(Service::builder(key.clone()).dispatch(Dispatch::IoThread)
    ///         .method("echo", |s: String| Ok::<_, ServiceError>(s)).build())
    ///     .start()?;
    /// let conn = Consumer::builder().build()?.connect(provider.local_addr())?;
    /// for _ in 0..100 {
    ///     assert_eq!(conn.call::<_, String>(&key, "echo", "x")?, "x");
    /// }
    /// // Most, once the loop has offered its input; how many is timing.
    /// assert!(conn.answers_read_by_callers() <= 100);
    /// provider.shutdown(std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn answers_read_by_callers(&self) -> u64 {
        self.link.read_own.load(Ordering::Relaxed)
    }

    /// Whether the connection is still up.
    pub fn is_open(&self) -> bool {
        self.link.handle.is_open()
    }

    /// Whether the provider said it is shutting down (Dubbo's READONLY
    /// event): it still answers the calls sent to it until it closes, but
    /// a [`Cluster`](crate::cluster::Cluster) sends it new ones only when
    /// no other provider is up. A call made here directly still goes.
    pub fn is_read_only(&self) -> bool {
        self.link.read_only.load(Ordering::Acquire)
    }

    /// Whether new calls should come here: the connection is up and the
    /// provider is not shutting down.
    ///
    /// ```
    /// use gyre_rpc::consumer::Consumer;
    /// use gyre_rpc::provider::{Provider, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    /// use std::time::{Duration, Instant};
    ///
    /// let key = ServiceKey::new("demo.Echo");
    /// let service = Service::builder(key.clone())
    ///     .method("echo", |s: String| Ok::<_, ServiceError>(s))
    ///     .build();
    /// let provider = Provider::builder().listen("127.0.0.1:0".parse()?).service(service).start()?;
    /// let conn = Consumer::builder().build()?.connect(provider.local_addr())?;
    /// assert_eq!(conn.call::<_, String>(&key, "echo", "hi")?, "hi");
    /// assert!(conn.is_available());
    /// provider.shutdown(Duration::from_secs(1));
    /// // It said it was shutting down, then closed.
    /// let deadline = Instant::now() + Duration::from_secs(5);
    /// while conn.is_open() && Instant::now() < deadline {
    ///     std::thread::sleep(Duration::from_millis(5));
    /// }
    /// assert!(conn.is_read_only() && !conn.is_available());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_available(&self) -> bool {
        self.is_open() && !self.is_read_only() && !self.link.closing.load(Ordering::Relaxed)
    }

    /// Closes the connection; calls waiting on it fail with
    /// [`RpcError::Closed`].
    pub fn close(&self) {
        let _ = self.link.handle.close();
    }

    /// Closes the connection once its calls are answered: new calls on it
    /// fail at once with [`RpcError::Closed`] (and a
    /// [`Cluster`](crate::cluster::Cluster) stops choosing it), the calls
    /// in flight are waited for, for at most `timeout`, then it closes and
    /// those still unanswered fail with `Closed`. Returns whether every
    /// call was answered. Blocks the calling thread; on an event loop's
    /// thread (where waiting would hold that loop) it waits for nothing.
    ///
    /// ```
    /// use gyre_rpc::consumer::{Consumer, RpcError};
    /// use gyre_rpc::provider::{Provider, Service, ServiceError};
    /// use gyre_rpc::ServiceKey;
    /// use std::time::Duration;
    ///
    /// let key = ServiceKey::new("demo.Echo");
    /// let service = Service::builder(key.clone())
    ///     .method("echo", |s: String| Ok::<_, ServiceError>(s))
    ///     .build();
    /// let provider = Provider::builder().listen("127.0.0.1:0".parse()?).service(service).start()?;
    /// let conn = Consumer::builder().build()?.connect(provider.local_addr())?;
    /// assert_eq!(conn.call::<_, String>(&key, "echo", "hi")?, "hi");
    /// assert!(conn.close_gracefully(Duration::from_secs(1)), "nothing was in flight");
    /// assert!(matches!(conn.call::<_, String>(&key, "echo", "hi"), Err(RpcError::Closed)));
    /// provider.shutdown(Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_gracefully(&self, timeout: Duration) -> bool {
        let answered = closing::drain(std::slice::from_ref(&self.link), Instant::now() + timeout);
        self.close();
        answered
    }

    /// A request frame: the routing part, then what `args` writes.
    fn encode(
        &self,
        two_way: bool,
        service: &ServiceKey,
        method: &str,
        options: &CallOptions,
        args: impl FnOnce(&mut BytesMut) -> Result<(), RpcError>,
    ) -> Result<(u64, Bytes), RpcError> {
        if self.link.closing.load(Ordering::SeqCst) {
            return Err(RpcError::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = SCRATCH.with(|s| {
            encode_frame(
                &mut s.borrow_mut(),
                Kind::Request { two_way },
                options.serialization,
                id,
                self.link.max_body,
                |out| -> Result<(), RpcError> {
                    write_routing(
                        out,
                        service,
                        method,
                        &options.attachments,
                        self.token.as_deref(),
                    )?;
                    args(out)
                },
            )
        })??;
        Ok((id, frame))
    }

    fn send_call(
        &self,
        id: u64,
        frame: Bytes,
        timeout: Duration,
        done: Sink,
        service: &ServiceKey,
        method: &str,
    ) -> Result<Sent<'_>, RpcError> {
        if self.caller_sends {
            let (frame, done) = match done {
                Sink::Reply(reply) => match self.send_lent(id, frame, timeout, reply) {
                    Ok(call) => return Ok(Sent::Lent(call)),
                    Err((frame, reply)) => (frame, Sink::Reply(reply)),
                },
                done => (frame, done),
            };
            return Ok(send::send_or_queue(
                &self.link.handle,
                &self.link.filings,
                id,
                frame,
                timeout,
                done,
            ));
        }
        let names = self
            .filtered
            .then(|| Box::new((service.name.clone(), method.to_string())));
        self.link
            .handle
            .write_and_flush(Outgoing::Call {
                id,
                frame,
                timeout,
                done,
                names,
            })
            .map(|()| Sent::Queued)
            .map_err(|_| RpcError::Closed)
    }

    /// Sends a blocking call with the connection's input lent to this
    /// thread, if the loop lends it, nothing else is in flight and the
    /// socket takes the frame at once; otherwise the frame and the reply
    /// come back, unsent, for the usual way. The lend is taken before the
    /// frame goes, so the loop cannot read the answer first.
    fn send_lent(
        &self,
        id: u64,
        frame: Bytes,
        timeout: Duration,
        done: Reply,
    ) -> Result<LentCall<'_>, (Bytes, Reply)> {
        let on = self.link.settling();
        match send::send_under_lend(&self.link.handle, on, id, timeout, frame, |_| Some(())) {
            Ok((lent, ())) => Ok(LentCall { lent, done }),
            Err(frame) => Err((frame, done)),
        }
    }

    /// Sends a call whose arguments are already serialized (in
    /// `options.serialization`); its answer goes to `done`. The cluster
    /// serializes once and sends to several providers this way. The
    /// result says how it left (see [`wait::wait_for_answer`]): a blocking
    /// caller's sink (`Sink::Reply`) may come back as a lent call, to be
    /// waited for with `wait`.
    pub(crate) fn start_raw(
        &self,
        service: &ServiceKey,
        method: &str,
        args: &[u8],
        options: &CallOptions,
        done: Sink,
    ) -> Result<Sent<'_>, RpcError> {
        let (id, frame) = self.encode(true, service, method, options, |out| {
            out.extend_from_slice(args);
            Ok(())
        })?;
        self.send_call(id, frame, options.timeout, done, service, method)
    }

    /// A request frame for a call of `method` with `request`: its id and
    /// bytes.
    fn encode_request<Req: Serialize + ?Sized>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
        options: &CallOptions,
    ) -> Result<(u64, Bytes), RpcError> {
        let ser = options.serialization;
        self.encode(true, service, method, options, |out| {
            ser.serialize(request, out)
                .map_err(|e| RpcError::arguments(service, method, e))
        })
    }

    /// Sends a call whose answer goes to `done`; the result as for
    /// [`start_raw`](Self::start_raw).
    fn start<Req: Serialize + ?Sized>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
        options: &CallOptions,
        done: Sink,
    ) -> Result<Sent<'_>, RpcError> {
        let (id, frame) = self.encode_request(service, method, request, options)?;
        self.send_call(id, frame, options.timeout, done, service, method)
    }

    /// Runs `start` (one call sent with `done`) and waits for its answer
    /// on this thread: reading it itself when the input was lent to it,
    /// beside the socket when the call went out alone. Refused on any
    /// event loop's thread: on the consumer's own loops, which settle every
    /// call, it would wait for itself; on any other (a provider's method
    /// dispatched on its I/O thread, say) it would block that loop's other
    /// connections for as long as the call took.
    pub(crate) fn wait<'a>(
        &'a self,
        timeout: Duration,
        start: impl FnOnce(Sink) -> Result<Sent<'a>, RpcError>,
    ) -> Answer {
        if gyre_reactor::is_event_loop_thread() {
            return Err(RpcError::BlockingOnLoop);
        }
        wait::wait_for_answer(&self.link.handle, timeout, start)
    }

    /// Sends `value` to `service`'s `$echo` and returns what the provider
    /// sent back (Dubbo's `EchoService`): `value` itself where the provider
    /// serves the service, as a health check through the connection, the
    /// provider's loop and its routing, with no method of the service run;
    /// [`RpcError::Failed`] with [`Status::ServiceNotFound`]
    /// where it does not. A blocking call, as [`call`](Self::call).
    ///
    /// ```
    /// use gyre_rpc::consumer::{Consumer, RpcError};
    /// use gyre_rpc::provider::{Provider, Service, ServiceError};
    /// use gyre_rpc::{ServiceKey, Status};
    ///
    /// let key = ServiceKey::new("demo.Echo");
    /// let service = Service::builder(key.clone())
    ///     .method("echo", |s: String| Ok::<_, ServiceError>(s))
    ///     .build();
    /// let provider = Provider::builder().listen("127.0.0.1:0".parse()?).service(service).start()?;
    /// let conn = Consumer::builder().build()?.connect(provider.local_addr())?;
    /// assert_eq!(conn.echo(&key, &"ok?".to_owned())?, "ok?");
    /// match conn.echo(&ServiceKey::new("demo.Other"), &1u8) {
    ///     Err(RpcError::Failed { status: Status::ServiceNotFound, .. }) => {}
    ///     other => panic!("{other:?}"),
    /// }
    /// provider.shutdown(std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn echo<T>(&self, service: &ServiceKey, value: &T) -> Result<T, RpcError>
    where
        T: Serialize + DeserializeOwned,
    {
        self.call(service, crate::protocol::ECHO_METHOD, value)
    }

    /// Calls `method` of `service` with `request` and waits for the result,
    /// with the consumer's default options. Do not call it from an async
    /// task; use [`call_async`](Self::call_async) there. On an event loop's
    /// thread it fails at once with [`RpcError::BlockingOnLoop`]: on one of
    /// the consumer's own (a consumer filter runs there) that loop would
    /// have to settle the call it waits for, and on any other (a provider
    /// method run with [`Dispatch::IoThread`](crate::provider::Dispatch::IoThread))
    /// it would hold that loop's other connections until the answer came.
    ///
    /// A call made while nothing else is in flight on the connection is
    /// sent from this thread, and this thread then reads its own answer:
    /// the connection's loop lends it the socket's input
    /// ([`ChannelHandle::lend_input`](gyre_reactor::ChannelHandle::lend_input)),
    /// so the kernel wakes this thread when the answer lands and it reads
    /// and decodes the answer itself, with no hand-over from the loop
    /// ([`ConsumerBuilder::direct_reads`]). Where the loop has input in
    /// hand, or with `direct_reads` off, this thread sleeps beside the
    /// socket instead
    /// ([`ChannelHandle::wait_for_input`](gyre_reactor::ChannelHandle::wait_for_input)):
    /// woken with the loop, it watches (yielding its core) for up to
    /// 50 µs while the loop decodes the answer. Each calling thread keeps
    /// one `eventfd` and one read buffer for this.
    pub fn call<Req, Resp>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
    ) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.call_with(service, method, request, &self.defaults)
    }

    /// [`call`](Self::call) with `options`.
    pub fn call_with<Req, Resp>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
        options: &CallOptions,
    ) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let answer = self.wait(options.timeout, |done| {
            self.start(service, method, request, options, done)
        });
        decode_answer(answer, options.serialization, || call_name(service, method))
    }

    /// Sends the call now and returns a future of its result (any executor
    /// will do; the connection's own loop does the I/O and the timeout).
    ///
    /// With [`ConsumerBuilder::tokio_reads`] on (feature `tokio`), the
    /// call goes out at the future's first poll instead, and, polled on a
    /// tokio runtime with nothing else in flight on the connection, the
    /// task reads and decodes its own answer, woken by the kernel rather
    /// than by the connection's loop.
    pub fn call_async<Req, Resp>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
    ) -> impl Future<Output = Result<Resp, RpcError>> + Send + 'static
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.call_async_with(service, method, request, &self.defaults)
    }

    /// [`call_async`](Self::call_async) with `options`.
    pub fn call_async_with<Req, Resp>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
        options: &CallOptions,
    ) -> impl Future<Output = Result<Resp, RpcError>> + Send + 'static
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let encoded = self.encode_request(service, method, request, options);
        self.start_async(service, method, options, encoded)
            .finish(options.serialization)
    }

    /// An asynchronous call whose arguments are already serialized (in
    /// `options.serialization`), sent as [`call_async`](Self::call_async)
    /// sends one; its answer undecoded. The cluster's asynchronous calls
    /// go this way.
    pub(crate) fn call_raw_async(
        &self,
        service: &ServiceKey,
        method: &str,
        args: &[u8],
        options: &CallOptions,
    ) -> impl Future<Output = Answer> + Send + 'static {
        let encoded = self.encode(true, service, method, options, |out| {
            out.extend_from_slice(args);
            Ok(())
        });
        self.start_async(service, method, options, encoded).answer()
    }

    /// Sends the call `encoded` with its answer to a slot of the
    /// consumer's pool; with [`ConsumerBuilder::tokio_reads`], keeps it to
    /// send at the future's first poll instead.
    fn start_async(
        &self,
        service: &ServiceKey,
        method: &str,
        options: &CallOptions,
        encoded: Result<(u64, Bytes), RpcError>,
    ) -> AsyncCall {
        let (done, answer) = self.answers.promise();
        #[cfg(feature = "tokio")]
        if let Some(reads) = &self.reads {
            // Sent at the first poll, which may read its own answer.
            let call = encoded.map(|(id, frame)| {
                let route = tokio_reads::Route {
                    link: self.link.clone(),
                    reads: reads.clone(),
                };
                (route, id, frame, options.timeout)
            });
            return AsyncCall::Deferred { call, done, answer };
        }
        let started = encoded
            .and_then(|(id, frame)| {
                self.send_call(id, frame, options.timeout, Sink::One(done), service, method)
            })
            .map(drop);
        AsyncCall::Sent {
            started,
            answer,
            #[cfg(feature = "tokio")]
            relay: self.wake_relay,
        }
    }

    /// Sends a call that gets no answer (Dubbo's one-way).
    pub fn send_oneway<Req: Serialize + ?Sized>(
        &self,
        service: &ServiceKey,
        method: &str,
        request: &Req,
        options: &CallOptions,
    ) -> Result<(), RpcError> {
        let ser = options.serialization;
        let (_, frame) = self.encode(false, service, method, options, |out| {
            ser.serialize(request, out)
                .map_err(|e| RpcError::arguments(service, method, e))
        })?;
        self.link
            .handle
            .write_and_flush(Outgoing::Frame(frame))
            .map_err(|_| RpcError::Closed)
    }
}
