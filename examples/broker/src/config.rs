//! How a broker runs: where it listens and keeps its data, how it flushes,
//! rolls and expires logs, and how much one request may be.

use crate::log::LogConfig;
use crate::security::Listener;
use crate::writer::FlushPolicy;
use gyre_reactor::Transport;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A broker's settings; [`BrokerConfig::default`] is what
/// `cargo run -p gyre-broker` uses.
///
/// ```
/// use gyre_broker::writer::FlushPolicy;
/// use gyre_broker::BrokerConfig;
///
/// // A broker for a test: a free port, its own folder, every batch on
/// // disk before it is acknowledged.
/// # let dir = std::env::temp_dir().join(format!("gyre-doc-config-{}", std::process::id()));
/// let config = BrokerConfig {
///     listen: "127.0.0.1:0".parse()?,
///     data_dir: dir.clone(),
///     flush: FlushPolicy::EveryBatch,
///     ..BrokerConfig::default()
/// };
/// # let _ = config;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Where to listen (default `127.0.0.1:9092`; port 0 picks a free
    /// one), in clear text and open to anyone, unless `listeners` is set.
    pub listen: SocketAddr,
    /// Listeners by security protocol, as Kafka's `listeners` (e.g.
    /// `PLAINTEXT://127.0.0.1:9092` and `SASL_SSL://0.0.0.0:9094` at
    /// once); replaces `listen` when not empty.
    pub listeners: Vec<Listener>,
    /// The certificate chain and key of SSL and SASL_SSL listeners.
    pub tls: Option<gyre_reactor::TlsAcceptor>,
    /// Whether requests are checked against ACLs, who is a super user, and
    /// what no ACL names means (default: off, everyone may do everything).
    pub authorizer: crate::security::AuthorizerConfig,
    /// The `host:port` clients are told to connect to (Metadata,
    /// FindCoordinator); default: the address each client connected to.
    /// Applies to every listener without its own in
    /// `advertised_listeners`.
    pub advertised: Option<(String, u16)>,
    /// Per listener, by its protocol, the `host:port` its clients are told
    /// (Kafka's `advertised.listeners`), so a client that came in through
    /// SASL_SSL is sent back to SASL_SSL.
    pub advertised_listeners: Vec<(crate::security::SecurityProtocol, (String, u16))>,
    /// The data folder (default `./gyre-data`).
    pub data_dir: PathBuf,
    /// When appended records are fsynced (default every 1000 ms).
    pub flush: FlushPolicy,
    /// Log settings of topics created without their own: segment size
    /// (128 MiB) and age, retention by size and age (7 days).
    pub log: LogConfig,
    /// Partitions of auto-created topics and of CreateTopics without a
    /// count (default 1).
    pub default_partitions: i32,
    /// Create topics on first use in a Metadata request (default on).
    pub auto_create_topics: bool,
    /// The largest request accepted; a bigger one closes its connection
    /// (default 100 MiB).
    pub max_request_size: usize,
    /// Bytes of requests being received across all connections (Kafka's
    /// `queued.max.request.bytes`; default 256 MiB): each request's size is
    /// reserved as its size prefix arrives, and a connection whose request
    /// does not fit stops reading until others finish (see
    /// [`server::budget`](crate::server::budget)).
    pub queued_max_request_bytes: usize,
    /// Requests in flight per connection before the broker stops reading
    /// from it (default 128).
    pub max_in_flight: usize,
    /// Event loops serving connections (default: one per CPU, less one for
    /// the log writer, at least one).
    pub workers: usize,
    /// epoll (default) or io_uring.
    pub transport: Transport,
    /// How often retention runs (default 60 s).
    pub retention_check: Duration,
    /// The log writer's ring, in requests (a power of two; default 1024).
    pub ring_capacity: usize,
    /// Threads that read fetched records not in the page cache before
    /// their answer goes to the connection's event loop, so the loop never
    /// waits on the disk (default 2; 0 sends them from the disk on the
    /// loop). See [`cache_loader`](crate::cache_loader). As many again
    /// are the loops' own [`FileLoader`](gyre_reactor::FileLoader), for
    /// answers whose bytes went cold after the writer looked.
    pub fetch_cache_loaders: usize,
    /// The log cleaner, which compacts topics whose `cleanup.policy`
    /// includes `compact`.
    pub cleaner: crate::cleaner::CleanerConfig,
    /// Segments whose files (three descriptors each) may be open at once;
    /// the least recently used are closed past it and reopened on demand
    /// (default: half the open-file limit at start, in segments).
    pub max_open_segments: Option<usize>,
    /// Heartbeat interval and session timeout of consumer groups on the
    /// consumer group protocol (KIP-848), which the broker sets.
    pub consumer_groups: ConsumerGroupSettings,
    /// Share groups' (KIP-932) heartbeats, sessions and delivery limits.
    pub share_groups: ShareGroupSettings,
    /// Limits on connections: per address, and how long one may idle.
    pub connections: ConnectionLimits,
    /// SASL/OAUTHBEARER on the SASL listeners, and how its tokens are
    /// checked (default: not offered).
    pub oauthbearer: Option<crate::security::oauthbearer::OAuthBearerConfig>,
    /// How many incremental fetch sessions (KIP-227) may be open, and how
    /// many partitions they may hold together.
    pub fetch_sessions: FetchSessionLimits,
}

/// Bounds on incremental fetch sessions (KIP-227), which let a consumer
/// name only the partitions whose fetch changed and hear only the
/// partitions with news. Each connection may have one session open.
///
/// At either bound, a new session takes the place of one unused for
/// `min_eviction` (least recently used first) or, failing that, of
/// smaller ones open for `min_eviction`, as Kafka's session cache does;
/// the evicted session's next fetch is refused `FETCH_SESSION_ID_NOT_FOUND`
/// and its client starts again with a full fetch. Where nothing may be
/// evicted, a full fetch is answered without a session (the client goes on
/// with full fetches), and an incremental fetch that would add partitions
/// past the bound ends its session.
///
/// ```
/// use gyre_broker::{BrokerConfig, FetchSessionLimits};
///
/// // No sessions at all: every fetch names and answers every partition.
/// let config = BrokerConfig {
///     fetch_sessions: FetchSessionLimits {
///         max_sessions: 0,
///         ..FetchSessionLimits::default()
///     },
///     ..BrokerConfig::default()
/// };
/// # let _ = config;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchSessionLimits {
    /// Sessions open at once across the broker (Kafka's
    /// `max.incremental.fetch.session.cache.slots`, default 1000; 0 turns
    /// sessions off).
    pub max_sessions: usize,
    /// Partitions all open sessions hold together (default 1,000,000):
    /// Kafka bounds only the count of sessions, which leaves what a client
    /// can make the broker remember unbounded. A session holds about 175
    /// bytes a partition of a topic with many partitions, and at most
    /// about 500 bytes a partition (each of its own 249-byte topic, the
    /// longest a name can be), so 1,000,000 partitions are 175-500 MB.
    pub max_partitions: usize,
    /// How long a session is safe from eviction after it opens and after
    /// each fetch (default two minutes, Kafka's fixed
    /// `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`).
    pub min_eviction: Duration,
}

impl Default for FetchSessionLimits {
    fn default() -> Self {
        FetchSessionLimits {
            max_sessions: 1000,
            max_partitions: 1_000_000,
            min_eviction: Duration::from_secs(120),
        }
    }
}

/// Limits on the broker's connections.
///
/// ```
/// use gyre_broker::{BrokerConfig, ConnectionLimits};
/// use std::time::Duration;
///
/// // At most 5,000 connections, 100 from each address, 500 from the
/// // proxy at 10.0.0.5, and none left idle for over five minutes.
/// let config = BrokerConfig {
///     connections: ConnectionLimits {
///         max: Some(5_000),
///         per_ip: Some(100),
///         per_ip_overrides: vec![("10.0.0.5".parse()?, 500)],
///         max_idle: Some(Duration::from_secs(300)),
///         ..ConnectionLimits::default()
///     },
///     ..BrokerConfig::default()
/// };
/// # let _ = config;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once through all listeners (`max.connections`;
    /// default none). At the limit the broker accepts nothing more: new
    /// connections wait in the kernel's backlog until one closes, as
    /// Kafka's acceptor waits.
    pub max: Option<usize>,
    /// Connections open at once through the listeners of a security
    /// protocol (Kafka's `listener.name.<name>.max.connections`), within
    /// `max` where both are set: at either limit the listener waits as
    /// at `max`.
    pub per_listener: Vec<(crate::security::SecurityProtocol, usize)>,
    /// Connections one address may hold open (`max.connections.per.ip`;
    /// default none). One more is closed as soon as it is accepted,
    /// before any of its bytes is read, as Kafka's acceptor does.
    pub per_ip: Option<usize>,
    /// Addresses with limits of their own, in place of `per_ip`
    /// (`max.connections.per.ip.overrides`; 0 refuses the address).
    pub per_ip_overrides: Vec<(IpAddr, usize)>,
    /// A connection that neither sends nor is sent a byte for this long is
    /// closed (`connections.max.idle.ms`, default 10 minutes; `None`:
    /// never).
    pub max_idle: Option<Duration>,
    /// How long a SASL authentication lasts (`connections.max.reauth.ms`,
    /// KIP-368; default `None`, for the connection's life): the client is
    /// told at each authentication and re-authenticates on the same
    /// connection, with the same mechanism, as the same user, before it
    /// ends; a connection that sends anything else after it is closed.
    pub max_reauth: Option<Duration>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max: None,
            per_listener: Vec::new(),
            per_ip: None,
            per_ip_overrides: Vec::new(),
            max_idle: Some(Duration::from_secs(600)),
            max_reauth: None,
        }
    }
}

/// The group coordinator's settings: for consumer groups on the consumer
/// group protocol (Kafka's `group.consumer.*`), the members heartbeat as
/// often as the broker says and are dropped after a session without one;
/// for both protocols, a bound on members per group (Kafka's
/// `group.consumer.max.size` and `group.max.size`, unbounded by default as
/// in Kafka).
///
/// ```
/// use gyre_broker::{BrokerConfig, ConsumerGroupSettings};
/// use std::time::Duration;
///
/// // Quick rebalances for a test: members heartbeat every 500 ms.
/// let config = BrokerConfig {
///     consumer_groups: ConsumerGroupSettings {
///         heartbeat_interval: Duration::from_millis(500),
///         ..ConsumerGroupSettings::default()
///     },
///     ..BrokerConfig::default()
/// };
/// # let _ = config;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsumerGroupSettings {
    /// How often members heartbeat (`group.consumer.heartbeat.interval.ms`,
    /// default 5 s).
    pub heartbeat_interval: Duration,
    /// How long a member may go unheard before it is dropped and its
    /// partitions go to the others (`group.consumer.session.timeout.ms`,
    /// default 45 s).
    pub session_timeout: Duration,
    /// The most members a consumer-protocol group takes; one more is
    /// refused `GROUP_MAX_SIZE_REACHED` (`group.consumer.max.size`,
    /// default `i32::MAX`).
    pub consumer_max_size: u32,
    /// The most members a classic group takes (`group.max.size`, default
    /// `i32::MAX`): a new member past it is refused
    /// `GROUP_MAX_SIZE_REACHED`, and a group found over it at start (the
    /// bound was lowered) rebalances, the members that rejoin last left
    /// out, as Kafka does.
    pub classic_max_size: u32,
    /// How long a group's committed offsets outlive its last commit or
    /// member (`offsets.retention.minutes`, default 7 days): then they
    /// are deleted, as Kafka expires an empty group's offsets, so groups
    /// made once and left (a console consumer's) do not pile up.
    pub offsets_retention: Duration,
    /// How often offsets are checked for expiry
    /// (`offsets.retention.check.interval.ms`, default 10 minutes).
    pub offsets_retention_check: Duration,
    /// The longest metadata string a committed offset may carry, in bytes
    /// (`offset.metadata.max.bytes`, default 4096): a longer one is
    /// refused `OFFSET_METADATA_TOO_LARGE` and not kept, so a client
    /// cannot make the coordinator hold and answer megabytes an offset.
    pub offset_metadata_max_bytes: usize,
}

impl Default for ConsumerGroupSettings {
    fn default() -> Self {
        ConsumerGroupSettings {
            heartbeat_interval: Duration::from_secs(5),
            session_timeout: Duration::from_secs(45),
            consumer_max_size: i32::MAX as u32,
            classic_max_size: i32::MAX as u32,
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            offsets_retention_check: Duration::from_secs(600),
            offset_metadata_max_bytes: 4096,
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            listeners: Vec::new(),
            tls: None,
            authorizer: Default::default(),
            advertised: None,
            advertised_listeners: Vec::new(),
            data_dir: PathBuf::from("gyre-data"),
            flush: FlushPolicy::Interval(Duration::from_millis(1000)),
            log: LogConfig::default(),
            default_partitions: 1,
            auto_create_topics: true,
            max_request_size: 100 << 20,
            queued_max_request_bytes: 256 << 20,
            max_in_flight: 128,
            workers: cpus.saturating_sub(1).max(1),
            transport: Transport::Epoll,
            retention_check: Duration::from_secs(60),
            ring_capacity: 1024,
            fetch_cache_loaders: 2,
            cleaner: Default::default(),
            max_open_segments: None,
            consumer_groups: ConsumerGroupSettings::default(),
            share_groups: ShareGroupSettings::default(),
            connections: ConnectionLimits::default(),
            oauthbearer: None,
            fetch_sessions: FetchSessionLimits::default(),
        }
    }
}

/// How share groups (KIP-932) run: Kafka's `group.share.*` broker
/// configs, and where a share group starts reading a partition.
///
/// ```
/// use gyre_broker::share::StartAt;
/// use gyre_broker::ShareGroupSettings;
/// use std::time::Duration;
///
/// // Records come back 10 s after a member stops acknowledging, and a
/// // group reads what the topics held before it started.
/// let settings = ShareGroupSettings {
///     record_lock: Duration::from_secs(10),
///     start_at: StartAt::Earliest,
///     ..ShareGroupSettings::default()
/// };
/// assert_eq!(settings.delivery_count_limit, 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareGroupSettings {
    /// How often members heartbeat (`group.share.heartbeat.interval.ms`,
    /// default 5 s).
    pub heartbeat_interval: Duration,
    /// How long a member may go unheard before it is dropped and its
    /// records go back (`group.share.session.timeout.ms`, default 45 s).
    pub session_timeout: Duration,
    /// The most members a share group takes (`group.share.max.size`,
    /// default 200).
    pub max_size: usize,
    /// How long a member holds records it was given before they go to
    /// another (`group.share.record.lock.duration.ms`, default 30 s).
    pub record_lock: Duration,
    /// Deliveries after which a record that comes back is archived, not
    /// delivered again (`group.share.delivery.count.limit`, default 5).
    pub delivery_count_limit: u16,
    /// Records of one partition a group may have in flight
    /// (`group.share.partition.max.record.locks`, default 2,000): no more
    /// is delivered past it until the oldest are acknowledged.
    pub max_record_locks: usize,
    /// Where a group starts reading a partition it never read: Kafka's
    /// group config `share.auto.offset.reset` (default latest), here for
    /// every group.
    pub start_at: crate::share::StartAt,
}

impl Default for ShareGroupSettings {
    fn default() -> Self {
        let limits = crate::share::partition::Limits::default();
        ShareGroupSettings {
            heartbeat_interval: Duration::from_secs(5),
            session_timeout: Duration::from_secs(45),
            max_size: 200,
            record_lock: Duration::from_millis(limits.lock_ms),
            delivery_count_limit: limits.max_deliveries,
            max_record_locks: limits.max_in_flight,
            start_at: crate::share::StartAt::Latest,
        }
    }
}

/// The broker's settings a group's own configs fall back to, from its
/// share and consumer group settings.
pub fn group_defaults(
    share: &ShareGroupSettings,
    consumer: &ConsumerGroupSettings,
) -> crate::share::group_config::GroupDefaults {
    let ms = |d: Duration| d.as_millis() as u64;
    crate::share::group_config::GroupDefaults {
        start_at: share.start_at,
        lock_ms: ms(share.record_lock),
        share_session_ms: ms(share.session_timeout),
        share_heartbeat_ms: ms(share.heartbeat_interval),
        consumer_session_ms: ms(consumer.session_timeout),
        consumer_heartbeat_ms: ms(consumer.heartbeat_interval),
    }
}

impl ShareGroupSettings {
    /// The delivery limits the log writer applies.
    pub fn limits(&self) -> crate::share::partition::Limits {
        crate::share::partition::Limits {
            lock_ms: self.record_lock.as_millis() as u64,
            max_deliveries: self.delivery_count_limit,
            max_in_flight: self.max_record_locks,
        }
    }
}
