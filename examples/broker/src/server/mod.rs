//! The broker's network side: a reactor server whose every connection is a
//! pipeline of a length-field frame decoder (bounded by the request size
//! limit), the response [`sequencer`](sequencer::Sequencer), and the
//! `Connection` handler (one per client); the log writer thread
//! behind a ring buffer; and the group coordinator thread.

mod acls;
mod admin_worker;
mod alter_configs;
pub mod budget;
mod config_resources;
mod configs;
mod connection;
pub mod connection_limits;
mod create_topics;
mod features;
pub mod fetch_session;
pub mod groups;
mod metadata;
mod node;
mod quotas;
mod refusals;
mod replicas;
pub mod responder;
pub mod sequencer;
mod share_offsets;
mod share_requests;
mod shared;
mod topic_partitions;
pub mod transactions;
mod users;

use crate::cleaner::LogCleaner;
use crate::config::BrokerConfig;
use crate::health::BrokerHealth;
use crate::log::Truncation;
use crate::producer_ids::ProducerIds;
use crate::security::oauthbearer::{KeyRefresher, OAuthBearer, TokenValidation};
use crate::security::{Authorizer, CredentialStore, Listener, SecurityProtocol};
use crate::storage::Storage;
use crate::writer::{LogWriter, Submitter, WriterConfig};
use budget::{RequestBudget, RequestMemory};
use bytes::BytesMut;
use connection::Connection;
use groups::Coordinator;
use gyre_codec::LengthFieldDecoder;
use gyre_reactor::{
    ChannelOptions, ConnectionCap, EventLoopGroup, FileLoader, IdleStateHandler, ListenOptions,
    Outbound, Pipeline, Server, ServerBootstrap,
};
use responder::Responder;
use sequencer::Sequencer;
pub use shared::Shared;
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Why the broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data folder could not be opened or recovered.
    #[error("cannot open the data folder {}: {source}", dir.display())]
    Storage {
        /// The folder.
        dir: std::path::PathBuf,
        /// What failed.
        #[source]
        source: crate::log::LogError,
    },
    /// The group offsets or the transactions' state could not be loaded.
    #[error("cannot load group offsets or transactions: {0}")]
    Offsets(#[source] std::io::Error),
    /// The share groups' delivery state could not be read.
    #[error("cannot load the share groups' delivery state {}: {source}", file.display())]
    ShareState {
        /// The file.
        file: std::path::PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The SASL credentials file could not be read.
    #[error("cannot load SASL credentials: {0}")]
    Credentials(#[from] crate::security::CredentialError),
    /// The ACL file could not be read.
    #[error("cannot load ACLs: {0}")]
    Acls(#[from] crate::security::AclError),
    /// An SSL or SASL_SSL listener without a certificate.
    #[error("{0} needs a certificate and key (--tls-cert, --tls-key)")]
    NoCertificate(crate::security::Listener),
    /// The producer id reservation could not be read or recorded.
    #[error("cannot record producer ids in {}: {source}", file.display())]
    ProducerIds {
        /// The file.
        file: std::path::PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The client quotas file could not be read.
    #[error("cannot load client quotas from {}: {source}", file.display())]
    Quotas {
        /// The file.
        file: std::path::PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The feature levels file could not be read.
    #[error("cannot load the feature levels from {}: {source}", file.display())]
    Features {
        /// The file.
        file: std::path::PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// OAUTHBEARER's key set could not be read.
    #[error(transparent)]
    OAuthBearerKeys(#[from] crate::security::oauthbearer::KeySetError),
    /// The log writer's ring could not be built.
    #[error("cannot start the log writer: {0}")]
    Writer(String),
    /// The listener could not be set up.
    #[error(transparent)]
    Reactor(#[from] gyre_reactor::Error),
}

/// The broker's incremental fetch sessions (KIP-227) at one moment, from
/// [`Broker::fetch_sessions`]: Kafka's `NumIncrementalFetchSessions`,
/// `NumIncrementalFetchPartitionsCached` and the count behind
/// `IncrementalFetchSessionEvictionsPerSec`.
///
/// ```
/// use gyre_broker::{Broker, BrokerConfig};
/// use std::time::Duration;
///
/// # let dir = std::env::temp_dir().join(format!("gyre-doc-sessions-{}", std::process::id()));
/// let broker = Broker::start(&BrokerConfig {
///     listen: "127.0.0.1:0".parse()?,
///     data_dir: dir.clone(),
///     ..BrokerConfig::default()
/// })?;
/// let sessions = broker.fetch_sessions();
/// assert_eq!((sessions.open, sessions.partitions, sessions.evictions), (0, 0, 0));
/// broker.shutdown(Duration::from_secs(5));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchSessionStats {
    /// Sessions open.
    pub open: usize,
    /// Partitions they hold together.
    pub partitions: usize,
    /// Sessions evicted so far to make room for others.
    pub evictions: u64,
}

/// A running broker.
///
/// ```
/// use gyre_broker::{Broker, BrokerConfig};
/// use std::time::Duration;
///
/// # let dir = std::env::temp_dir().join(format!("gyre-doc-broker-{}", std::process::id()));
/// let broker = Broker::start(&BrokerConfig {
///     listen: "127.0.0.1:0".parse()?,
///     data_dir: dir.clone(),
///     ..BrokerConfig::default()
/// })?;
/// // Any Kafka client may now bootstrap from it.
/// let bootstrap = broker.local_addr().to_string();
/// assert!(bootstrap.starts_with("127.0.0.1:"));
/// broker.shutdown(Duration::from_secs(5));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Broker {
    /// One server per listener, on the same event loops.
    servers: Vec<(Listener, Server)>,
    writer: Option<LogWriter<Responder>>,
    cleaner: Option<LogCleaner>,
    groups: Coordinator,
    groups_thread: Option<JoinHandle<()>>,
    truncations: Vec<Truncation>,
    shared: Arc<Shared>,
    /// Whether the writer or the coordinator has failed.
    health: BrokerHealth,
    /// Reads OAUTHBEARER's key set again every refresh, until dropped.
    _key_refresher: Option<KeyRefresher>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("listeners", &self.listeners())
            .finish()
    }
}

impl Broker {
    /// Opens the data folder (recovering every log), starts the log writer,
    /// the group coordinator and the listener.
    pub fn start(config: &BrokerConfig) -> Result<Broker, StartError> {
        if let Some(l) = config.listeners.iter().find(|l| l.protocol.uses_tls()) {
            if config.tls.is_none() {
                return Err(StartError::NoCertificate(*l));
            }
        }
        let fd_limit = gyre_reactor::open_file_limit();
        let max_open_segments = config
            .max_open_segments
            .unwrap_or_else(|| crate::storage::default_max_open_segments(fd_limit));
        let (storage, truncations) = Storage::open_capped(
            &config.data_dir,
            config.log.clone(),
            config.default_partitions,
            max_open_segments,
        )
        .map_err(|source| StartError::Storage {
            dir: config.data_dir.clone(),
            source,
        })?;
        let partitions: usize = storage
            .catalog()
            .all()
            .iter()
            .map(|t| t.partitions.len())
            .sum();
        tracing::info!(
            open_file_limit = fd_limit,
            partitions,
            max_open_segments,
            segment_descriptors = max_open_segments * crate::storage::FILES_PER_SEGMENT,
            "descriptor budget: segment files beyond the cap are closed least recently used first and reopened on demand; the rest serve connections"
        );
        let catalog = storage.catalog().clone();
        let open_at_start = storage.open_transactions();
        // Past every id the partitions remember and every id handed out
        // before (recorded in the folder), whatever the clock says.
        let remembered = storage.max_producer_id().map_or(0, |id| id + 1);
        let producer_ids = ProducerIds::open(&config.data_dir, remembered).map_err(|source| {
            StartError::ProducerIds {
                file: config.data_dir.join(crate::producer_ids::FILE),
                source,
            }
        })?;
        let shares = crate::share::Shares::open(
            &config.data_dir,
            config.share_groups.limits(),
            crate::config::group_defaults(&config.share_groups, &config.consumer_groups),
        )
        .map_err(|source| StartError::ShareState {
            file: config.data_dir.join(crate::share::state_file::FILE),
            source,
        })?;
        let share_configs = shares.published_configs();
        let share_defaults = shares.defaults();
        let health = BrokerHealth::new();
        let writer = LogWriter::<Responder>::start_reporting(
            storage,
            WriterConfig {
                flush: config.flush,
                capacity: config.ring_capacity,
                retention_check: config.retention_check,
                fetch_cache_loaders: config.fetch_cache_loaders,
                ..WriterConfig::default()
            },
            health.clone(),
            Some(shares),
        )
        .map_err(|e| StartError::Writer(e.to_string()))?;
        let cleaner = if config.cleaner.enabled {
            let c = LogCleaner::start(writer.submitter(), config.cleaner.clone())
                .map_err(|e| StartError::Writer(format!("cannot start the log cleaner: {e}")))?;
            Some(c)
        } else {
            None
        };
        let (groups, groups_thread) = Coordinator::start(
            &config.data_dir,
            groups::TxnWiring {
                catalog: catalog.clone(),
                producer_ids: producer_ids.clone(),
                writer: writer.submitter(),
                open_at_start,
                flush: config.flush,
                health: health.clone(),
            },
            config.consumer_groups,
            config.share_groups,
            (share_configs.clone(), share_defaults),
        )
        .map_err(StartError::Offsets)?;
        let oauthbearer = match &config.oauthbearer {
            Some(c) => Some(Arc::new(OAuthBearer::new(c.clone())?)),
            None => None,
        };
        if let Some(TokenValidation::Unsecured) = config.oauthbearer.as_ref().map(|c| &c.validation)
        {
            tracing::warn!(
                "OAUTHBEARER takes unsigned tokens: any client may claim any principal (for development only)"
            );
        }
        let key_refresher = match &oauthbearer {
            Some(v) => KeyRefresher::start(v).map_err(gyre_reactor::Error::Io)?,
            None => None,
        };
        let loops = EventLoopGroup::builder()
            .threads(config.workers)
            .name("gyre-broker")
            .transport(config.transport)
            .build()
            .map_err(gyre_reactor::Error::Io)?;
        let shared = Arc::new(Shared {
            catalog,
            share_configs,
            share_defaults,
            auto_create_topics: config.auto_create_topics,
            default_log: config.log.clone(),
            max_in_flight: config.max_in_flight.max(1),
            ring_stalls: AtomicU64::new(0),
            sasl_reauthentications: AtomicU64::new(0),
            default_partitions: config.default_partitions,
            request_memory: RequestMemory::new(config.queued_max_request_bytes),
            producer_ids,
            groups: groups.clone(),
            credentials: Arc::new(CredentialStore::open(&config.data_dir)?),
            features: features::Features::open(&config.data_dir).map_err(|source| {
                StartError::Features {
                    file: config.data_dir.join("features.log"),
                    source,
                }
            })?,
            quotas: quotas::ClientQuotas::open(&config.data_dir).map_err(|source| {
                StartError::Quotas {
                    file: config.data_dir.join("client-quotas.log"),
                    source,
                }
            })?,
            log_dir: std::fs::canonicalize(&config.data_dir)
                .unwrap_or_else(|_| config.data_dir.clone())
                .display()
                .to_string(),
            ip_connections: connection_limits::per_ip(&config.connections),
            admin: admin_worker::AdminWorker::start().map_err(gyre_reactor::Error::Io)?,
            fetch_sessions: fetch_session::SessionBudget::with_min_eviction(
                config.fetch_sessions.max_sessions,
                config.fetch_sessions.max_partitions,
                config.fetch_sessions.min_eviction,
            ),
            sasl_lifetime: config.connections.max_reauth,
            oauthbearer,
            acls: Arc::new(Authorizer::open(
                &config.data_dir,
                config.authorizer.clone(),
            )?),
        });
        let stats = shared.clone();
        let max_request = config.max_request_size;
        // Kafka's connections.max.idle.ms: the idle handler's all-idle
        // event closes the connection (zero: never fires).
        let max_idle = config.connections.max_idle.unwrap_or(Duration::ZERO);
        let listeners = if config.listeners.is_empty() {
            vec![Listener {
                protocol: SecurityProtocol::Plaintext,
                addr: config.listen,
            }]
        } else {
            config.listeners.clone()
        };
        // The loops' own backstop to the writer's cache loaders: bytes of a
        // fetch's answer that went cold again before the loop sends them,
        // or that the kernel's readahead left for the loop's `sendfile` to
        // read, are read in by these threads instead (a cached answer
        // costs the loop one `cachestat` per region).
        let mut child = ChannelOptions::default().tcp_nodelay(true);
        if config.fetch_cache_loaders > 0 {
            let loader = FileLoader::builder()
                .threads(config.fetch_cache_loaders)
                .start()
                .map_err(gyre_reactor::Error::Io)?;
            child = child.file_loader(loader);
        }
        // Kafka's max.connections: one cap over every listener; a
        // listener's own limit is a cap within it.
        let broker_cap = config.connections.max.map(ConnectionCap::new);
        let mut listener_caps: Vec<(SecurityProtocol, ConnectionCap)> = Vec::new();
        for (protocol, max) in &config.connections.per_listener {
            let cap = match &broker_cap {
                Some(outer) => ConnectionCap::within(outer, *max),
                None => ConnectionCap::new(*max),
            };
            listener_caps.push((*protocol, cap));
        }
        let mut servers = Vec::with_capacity(listeners.len());
        for listener in listeners {
            let shared = shared.clone();
            let submitter = Mutex::new(writer.submitter());
            let sasl = listener.protocol.uses_sasl();
            let advertised = config
                .advertised_listeners
                .iter()
                .find(|(protocol, _)| *protocol == listener.protocol)
                .map(|(_, a)| a.clone())
                .or_else(|| config.advertised.clone());
            let cap = listener_caps
                .iter()
                .find(|(protocol, _)| *protocol == listener.protocol)
                .map(|(_, cap)| cap)
                .or(broker_cap.as_ref());
            let mut listen = ListenOptions::default();
            if let Some(cap) = cap {
                listen = listen.connection_cap(cap);
            }
            let bootstrap = ServerBootstrap::new()
                .group(loops.clone())
                .listen_options(listen)
                .child_options(child.clone());
            // Every connection's pipeline: (TLS,) the request memory
            // budget, the frame decoder, the response sequencer and the
            // connection. With TLS or without is a different type, so a
            // macro writes both.
            macro_rules! bind {
                ($($tls:ident)?) => {
                    bootstrap.bind(listener.addr, move |_peer: SocketAddr| {
                        let decoder = LengthFieldDecoder::builder()
                            .length_field_length(4)
                            .initial_bytes_to_strip(4)
                            .max_frame_length(max_request + 4)
                            .build()
                            .expect("a valid frame decoder");
                        let submitter: Submitter<Responder> =
                            submitter.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        let sent = Rc::new(Cell::new(0));
                        let (budget, reservations) =
                            RequestBudget::new(shared.request_memory.clone(), max_request);
                        Pipeline::with_file_regions()
                            $(.tls_server(&$tls))?
                            .inbound(IdleStateHandler::<BytesMut, Outbound>::new(
                                Duration::ZERO,
                                Duration::ZERO,
                                max_idle,
                            ))
                            .inbound(budget)
                            .decoder(decoder)
                            .outbound(Sequencer::new(sent.clone()))
                            .inbound(Connection::new(
                                shared.clone(),
                                submitter,
                                sent,
                                reservations,
                                sasl,
                                advertised.clone(),
                            ))
                    })?
                };
            }
            let server = if listener.protocol.uses_tls() {
                let Some(tls) = config.tls.clone() else {
                    return Err(StartError::NoCertificate(listener));
                };
                bind!(tls)
            } else {
                bind!()
            };
            let bound = Listener {
                addr: server.local_addr(),
                ..listener
            };
            tracing::info!(listener = %bound, "listening");
            servers.push((bound, server));
        }
        if config.authorizer.enabled {
            tracing::info!(super_users = ?config.authorizer.super_users, allow_if_no_acl = config.authorizer.allow_if_no_acl, "requests are checked against ACLs");
        } else if servers.iter().all(|(l, _)| !l.protocol.uses_sasl()) {
            tracing::info!("no SASL listener and no authorizer: every client that reaches a listener may produce, consume, create and delete topics");
        } else {
            tracing::info!(
                "no authorizer (--authorizer): every authenticated client may do everything"
            );
        }
        Ok(Broker {
            servers,
            writer: Some(writer),
            cleaner,
            groups,
            groups_thread: Some(groups_thread),
            truncations,
            shared: stats,
            health,
            _key_refresher: key_refresher,
        })
    }

    /// Whether a thread the broker cannot serve without (the log writer,
    /// the group coordinator) has failed, to wait on: a broker that has
    /// failed should be shut down (see [`BrokerHealth`]).
    pub fn health(&self) -> BrokerHealth {
        self.health.clone()
    }

    /// Where the broker's first listener listens (see
    /// [`listeners`](Self::listeners) for all).
    pub fn local_addr(&self) -> SocketAddr {
        self.servers[0].1.local_addr()
    }

    /// Every listener, with the port it got.
    pub fn listeners(&self) -> Vec<Listener> {
        self.servers.iter().map(|(l, _)| *l).collect()
    }

    /// Connections accepted so far, over every listener (they share the
    /// broker's loops).
    pub fn connections_accepted(&self) -> u64 {
        self.servers[0].1.metrics().map_or(0, |m| m.accepted)
    }

    /// The broker's incremental fetch sessions (KIP-227) now, as Kafka's
    /// `FetchSessionCache` metrics count them.
    pub fn fetch_sessions(&self) -> FetchSessionStats {
        let budget = &self.shared.fetch_sessions;
        let (open, partitions) = budget.in_use();
        FetchSessionStats {
            open,
            partitions,
            evictions: budget.evictions(),
        }
    }

    /// SASL sessions renewed on their connections so far (KIP-368
    /// re-authentications).
    pub fn sasl_reauthentications(&self) -> u64 {
        self.shared
            .sasl_reauthentications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The users SASL listeners authenticate (add and remove them here
    /// while the broker runs).
    pub fn credentials(&self) -> &CredentialStore {
        &self.shared.credentials
    }

    /// Compaction passes the log cleaner has swapped in (0 with the
    /// cleaner off).
    pub fn cleaner_passes(&self) -> u64 {
        self.cleaner.as_ref().map_or(0, LogCleaner::passes)
    }

    /// Has the log cleaner look for work now instead of at the end of its
    /// backoff.
    pub fn wake_cleaner(&self) {
        if let Some(c) = &self.cleaner {
            c.wake();
        }
    }

    /// Fetch answers that waited for their records to be read into the
    /// page cache off the event loops (see
    /// [`cache_loader`](crate::cache_loader)).
    pub fn fetches_loaded(&self) -> u64 {
        self.writer.as_ref().map_or(0, LogWriter::fetches_loaded)
    }

    /// How many times a connection found the log writer's ring full and
    /// paused (instead of blocking its event loop).
    pub fn ring_stalls(&self) -> u64 {
        self.shared
            .ring_stalls
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The bytes of requests being received now (reserved whole as each
    /// request's size arrives), and how many times a connection stopped
    /// reading because the server-wide bound was reached.
    pub fn request_memory(&self) -> (usize, u64) {
        let m = &self.shared.request_memory;
        (m.used(), m.pauses())
    }

    /// What recovery cut off the logs at start.
    pub fn truncations(&self) -> &[Truncation] {
        &self.truncations
    }

    /// Stops accepting, closes connections after their in-flight work
    /// (within `timeout`), then stops the coordinator, the log cleaner and
    /// the log writer,
    /// which commits and syncs everything queued.
    pub fn shutdown(mut self, timeout: Duration) {
        // The listeners share their loops: stop every one from accepting,
        // then shut the loops down once.
        for (_, server) in &self.servers[1..] {
            server.stop_accepting();
        }
        self.servers[0]
            .1
            .shutdown_gracefully(Duration::from_millis(50), timeout);
        self.groups.stop();
        if let Some(t) = self.groups_thread.take() {
            let _ = t.join();
        }
        if let Some(c) = self.cleaner.take() {
            c.stop();
        }
        if let Some(w) = self.writer.take() {
            w.shutdown();
        }
    }
}
