//! `gyre-broker`: the Kafka-wire-compatible broker.
//!
//! ```text
//! cargo run --release -p gyre-broker -- --listen 127.0.0.1:9092 --data ./gyre-data
//! cargo run --release -p gyre-broker -- verify --data ./gyre-data
//! cargo run --release -p gyre-broker -- users --data ./gyre-data add alice --password secret
//! cargo run --release -p gyre-broker -- --listener PLAINTEXT://127.0.0.1:9092 \
//!     --listener SASL_SSL://0.0.0.0:9094 --tls-cert cert.pem --tls-key key.pem
//! ```
//!
//! SIGINT or SIGTERM stops it cleanly: connections finish their in-flight
//! requests, every log is synced and the data folder marked clean, so the
//! next start checks only segment tails.

use clap::{Parser, Subcommand, ValueEnum};
use gyre_broker::writer::FlushPolicy;
use gyre_broker::{Broker, BrokerConfig};
use gyre_reactor::Transport;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Flush {
    /// fsync before every acknowledgement.
    EveryBatch,
    /// fsync every --flush-interval-ms, on a thread of its own.
    Interval,
    /// Leave it to the page cache.
    Never,
}

/// Kafka's `message.timestamp.type`, spelled as Kafka spells it.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum TimestampType {
    /// Records keep the timestamps their producer gave them.
    #[value(name = "CreateTime")]
    CreateTime,
    /// Each batch is stamped with the broker's clock as it is appended.
    #[value(name = "LogAppendTime")]
    LogAppendTime,
}

/// A Kafka-wire-compatible message broker on the gyre toolkit.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on, in clear text and open to anyone (unless
    /// --listener is given).
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    /// A listener as PROTOCOL://ip:port, PROTOCOL one of PLAINTEXT, SSL,
    /// SASL_PLAINTEXT, SASL_SSL; repeat for several (replaces --listen).
    #[arg(long = "listener")]
    listeners: Vec<gyre_broker::security::Listener>,
    /// PEM certificate chain of SSL and SASL_SSL listeners.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require TLS clients to show a certificate issued by a CA in this
    /// PEM file (Kafka's ssl.client.auth=required); on an SSL listener
    /// the certificate's subject is the principal (User:CN=...).
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Keep TLS in user space (rustls) even where the kernel has TLS (by
    /// default SSL and SASL_SSL connections go to the kernel after the
    /// handshake, so fetches keep sendfile).
    #[arg(long, requires = "tls_cert")]
    no_kernel_tls: bool,
    /// Kafka's ssl.principal.mapping.rules: how a client certificate's
    /// subject becomes the principal's name, e.g.
    /// 'RULE:^CN=(.*?),OU=.*$/$1/L,DEFAULT' (default: the subject).
    #[arg(long, requires = "tls_client_ca")]
    ssl_principal_mapping_rules: Option<String>,
    /// Check every request against the ACLs (CreateAcls and friends
    /// manage them); without it every client may do everything.
    #[arg(long)]
    authorizer: bool,
    /// A principal (User:name) allowed everything; repeat for several.
    #[arg(long = "super-user", requires = "authorizer")]
    super_users: Vec<String>,
    /// Allow what no ACL names (Kafka's allow.everyone.if.no.acl.found).
    #[arg(long, requires = "authorizer")]
    allow_if_no_acl: bool,
    /// Data folder.
    #[arg(long, default_value = "gyre-data")]
    data: PathBuf,
    /// host:port to tell clients (default: the address each client reached),
    /// for every listener without its own --advertised-listener.
    #[arg(long, value_parser = parse_host_port)]
    advertise: Option<(String, u16)>,
    /// PROTOCOL://host:port to tell the clients of that protocol's listener
    /// (Kafka's advertised.listeners); repeat for several.
    #[arg(long = "advertised-listener", value_parser = parse_advertised)]
    advertised_listeners: Vec<(gyre_broker::security::SecurityProtocol, (String, u16))>,
    /// When appended records are fsynced.
    #[arg(long, value_enum, default_value = "interval")]
    flush: Flush,
    /// The fsync interval of --flush interval.
    #[arg(long, default_value_t = 1000)]
    flush_interval_ms: u64,
    /// Roll to a new segment past this many bytes.
    #[arg(long, default_value_t = 128 << 20)]
    segment_bytes: u64,
    /// Roll a segment older than this (0: never).
    #[arg(long, default_value_t = 0)]
    segment_ms: u64,
    /// Delete the oldest segments while a partition is bigger (-1: no limit).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    retention_bytes: i64,
    /// Delete segments whose newest record is older (-1: keep forever).
    #[arg(long, default_value_t = 7 * 24 * 3600 * 1000, allow_negative_numbers = true)]
    retention_ms: i64,
    /// How often retention runs.
    #[arg(long, default_value_t = 60_000)]
    retention_check_ms: u64,
    /// What happens to old records of topics that do not set
    /// cleanup.policy: delete, compact, or compact,delete (Kafka's
    /// log.cleanup.policy).
    #[arg(long, default_value = "delete")]
    log_cleanup_policy: String,
    /// How long the log cleaner sleeps when no compacted log is dirty
    /// enough (Kafka's log.cleaner.backoff.ms).
    #[arg(long, default_value_t = 15_000)]
    log_cleaner_backoff_ms: u64,
    /// Memory for the log cleaner's map of keys, in bytes (Kafka's
    /// log.cleaner.dedupe.buffer.size; about 40 bytes a key).
    #[arg(long, default_value_t = 128 << 20)]
    log_cleaner_dedupe_buffer_size: usize,
    /// The most the log cleaner reads and writes a second, in bytes
    /// (Kafka's log.cleaner.io.max.bytes.per.second; unbounded if not
    /// given).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    log_cleaner_io_max_bytes_per_second: Option<u64>,
    /// Threads that read fetched records not in the page cache before an
    /// event loop sends them, so a consumer reading old data never makes a
    /// loop wait on the disk (0: the loop's sendfile reads them itself).
    #[arg(long, default_value_t = 2)]
    fetch_cache_loaders: usize,
    /// Do not run the log cleaner (compacted topics then grow like
    /// deleting ones without retention; Kafka's log.cleaner.enable=false).
    #[arg(long)]
    no_log_cleaner: bool,
    /// How often members of consumer-protocol groups (KIP-848) heartbeat
    /// (Kafka's group.consumer.heartbeat.interval.ms).
    #[arg(long, default_value_t = 5_000)]
    group_consumer_heartbeat_interval_ms: u64,
    /// How long such a member may go without a heartbeat before its
    /// partitions go to the others (Kafka's
    /// group.consumer.session.timeout.ms).
    #[arg(long, default_value_t = 45_000)]
    group_consumer_session_timeout_ms: u64,
    /// The most members a consumer-protocol group takes (Kafka's
    /// group.consumer.max.size).
    #[arg(long, default_value_t = i32::MAX as u32, value_parser = clap::value_parser!(u32).range(1..))]
    group_consumer_max_size: u32,
    /// How often members of share groups (KIP-932) heartbeat (Kafka's
    /// group.share.heartbeat.interval.ms).
    #[arg(long, default_value_t = 5_000)]
    group_share_heartbeat_interval_ms: u64,
    /// How long a share group member may go without a heartbeat before
    /// it is dropped and its records go back (Kafka's
    /// group.share.session.timeout.ms).
    #[arg(long, default_value_t = 45_000)]
    group_share_session_timeout_ms: u64,
    /// The most members a share group takes (Kafka's
    /// group.share.max.size).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1000))]
    group_share_max_size: u32,
    /// How long a share group member holds the records it was given
    /// before they go to another (Kafka's
    /// group.share.record.lock.duration.ms).
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1000..=3_600_000))]
    group_share_record_lock_duration_ms: u64,
    /// Deliveries after which a share group's record that comes back is
    /// archived rather than delivered again (Kafka's
    /// group.share.delivery.count.limit).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=10))]
    group_share_delivery_count_limit: u16,
    /// Records of one partition a share group may have in flight (Kafka's
    /// group.share.partition.max.record.locks).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(100..=10_000))]
    group_share_partition_max_record_locks: u32,
    /// Where a share group starts reading a partition it never read:
    /// latest (records written from then on), earliest, or
    /// by_duration:<ISO-8601 duration> (the first record at most that old,
    /// e.g. by_duration:PT1H); the default of Kafka's group config
    /// share.auto.offset.reset, which a group may set for itself.
    #[arg(long, default_value = "latest", value_parser = parse_start_at)]
    share_auto_offset_reset: gyre_broker::share::StartAt,
    /// The most members a classic group takes (Kafka's group.max.size).
    #[arg(long, default_value_t = i32::MAX as u32, value_parser = clap::value_parser!(u32).range(1..))]
    group_max_size: u32,
    /// How long a group's committed offsets outlive its last commit or
    /// member before they are deleted (Kafka's offsets.retention.minutes).
    #[arg(long, default_value_t = 7 * 24 * 60, value_parser = clap::value_parser!(u64).range(1..))]
    offsets_retention_minutes: u64,
    /// How often offsets are checked for expiry (Kafka's
    /// offsets.retention.check.interval.ms).
    #[arg(long, default_value_t = 600_000, value_parser = clap::value_parser!(u64).range(1..))]
    offsets_retention_check_interval_ms: u64,
    /// The longest metadata a committed offset may carry, in bytes
    /// (Kafka's offset.metadata.max.bytes).
    #[arg(long, default_value_t = 4096)]
    offset_metadata_max_bytes: usize,
    /// Incremental fetch sessions (KIP-227) open at once; 0 turns them off
    /// (Kafka's max.incremental.fetch.session.cache.slots).
    #[arg(long, default_value_t = 1000)]
    max_incremental_fetch_session_cache_slots: usize,
    /// Partitions all incremental fetch sessions hold together.
    #[arg(long, default_value_t = 1_000_000)]
    max_incremental_fetch_session_partitions: usize,
    /// How long an incremental fetch session is safe from eviction after
    /// it opens and after each fetch, in ms (Kafka's fixed two minutes).
    #[arg(long, default_value_t = 120_000)]
    min_incremental_fetch_session_eviction_ms: u64,
    /// The largest record batch a producer may append, in bytes (Kafka's
    /// message.max.bytes; a topic's max.message.bytes overrides it).
    #[arg(long, default_value_t = (1 << 20) + 12)]
    message_max_bytes: u64,
    /// The timestamps of topics that do not set message.timestamp.type
    /// (Kafka's log.message.timestamp.type).
    #[arg(long, value_enum, default_value = "CreateTime")]
    log_message_timestamp_type: TimestampType,
    /// The largest request accepted, in bytes.
    #[arg(long, default_value_t = 100 << 20)]
    max_request_size: usize,
    /// Bytes of requests being received across all connections, at most
    /// (Kafka's queued.max.request.bytes).
    #[arg(long, default_value_t = 256 << 20)]
    queued_max_request_bytes: usize,
    /// Partitions of auto-created topics.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Do not create topics on first use.
    #[arg(long)]
    no_auto_create: bool,
    /// Connections open at once through all listeners; at the limit new
    /// ones wait in the backlog until one closes (Kafka's max.connections;
    /// default: no limit).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Connections open at once through the listeners of one security
    /// protocol, as PROTOCOL=count (Kafka's
    /// listener.name.<name>.max.connections; repeat for several), within
    /// --max-connections.
    #[arg(long, value_parser = parse_listener_max)]
    listener_max_connections: Vec<(gyre_broker::security::SecurityProtocol, usize)>,
    /// Connections one address may hold open; one more is closed at once
    /// (Kafka's max.connections.per.ip; default: no limit).
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// Addresses with limits of their own, as host:count pairs split by
    /// commas (Kafka's max.connections.per.ip.overrides; a name is
    /// resolved at start, 0 refuses the address).
    #[arg(long, value_parser = parse_ip_overrides)]
    max_connections_per_ip_overrides: Option<IpOverrides>,
    /// A connection that neither sends nor is sent a byte for this long is
    /// closed (Kafka's connections.max.idle.ms; 0: never).
    #[arg(long, default_value_t = 600_000)]
    connections_max_idle_ms: u64,
    /// How long a SASL authentication lasts before the client must
    /// re-authenticate on its connection (Kafka's connections.max.reauth.ms,
    /// KIP-368; 0: for the connection's life).
    #[arg(long, default_value_t = 0)]
    connections_max_reauth_ms: u64,
    /// Offer SASL/OAUTHBEARER on the SASL listeners, taking tokens signed
    /// by a key of this JSON Web Key Set file; it is read again every
    /// --sasl-oauthbearer-jwks-refresh-ms.
    #[arg(long, conflicts_with_all = ["sasl_oauthbearer_unsecured", "sasl_oauthbearer_jwks_endpoint_url"])]
    sasl_oauthbearer_jwks: Option<PathBuf>,
    /// Offer SASL/OAUTHBEARER on the SASL listeners, taking tokens signed
    /// by a key of the JSON Web Key Set at this URL: an identity
    /// provider's https:// endpoint (its jwks_uri), or file:/path (Kafka's
    /// sasl.oauthbearer.jwks.endpoint.url). Fetched at start (the broker
    /// does not start without it), every --sasl-oauthbearer-jwks-refresh-ms,
    /// when a token names a key id the set lacks, and after a failed
    /// fetch (from 100 ms, doubling, to 10 s).
    #[arg(long, conflicts_with = "sasl_oauthbearer_unsecured")]
    sasl_oauthbearer_jwks_endpoint_url: Option<String>,
    /// The CA certificates (PEM) the key set endpoint's certificate is
    /// checked against (default: the system's bundle).
    #[arg(long, requires = "sasl_oauthbearer_jwks_endpoint_url")]
    sasl_oauthbearer_jwks_ca: Option<PathBuf>,
    /// How often the key set is fetched again (Kafka's
    /// sasl.oauthbearer.jwks.endpoint.refresh.ms).
    #[arg(long, default_value_t = 3_600_000, value_parser = clap::value_parser!(u64).range(1..))]
    sasl_oauthbearer_jwks_refresh_ms: u64,
    /// Offer SASL/OAUTHBEARER taking unsigned tokens (alg none), as
    /// Kafka's default unsecured validator: any client may claim any
    /// principal. For development only.
    #[arg(long)]
    sasl_oauthbearer_unsecured: bool,
    /// The issuer (iss) OAUTHBEARER tokens must name (Kafka's
    /// sasl.oauthbearer.expected.issuer).
    #[arg(long)]
    sasl_oauthbearer_expected_issuer: Option<String>,
    /// Audiences, split by commas, of which a token's aud must name one
    /// (Kafka's sasl.oauthbearer.expected.audience).
    #[arg(long, value_delimiter = ',')]
    sasl_oauthbearer_expected_audience: Vec<String>,
    /// The token claim naming the principal (Kafka's
    /// sasl.oauthbearer.sub.claim.name).
    #[arg(long, default_value = "sub")]
    sasl_oauthbearer_sub_claim_name: String,
    /// How far the broker's clock and the token issuer's may differ
    /// (Kafka's sasl.oauthbearer.clock.skew.seconds).
    #[arg(long, default_value_t = 30)]
    sasl_oauthbearer_clock_skew_seconds: u64,
    /// Event loops serving connections (default: CPUs less one).
    #[arg(long)]
    workers: Option<usize>,
    /// Network transport: epoll, io_uring or auto.
    #[arg(long, default_value = "epoll")]
    transport: Transport,
}

/// `--max-connections-per-ip-overrides`, parsed (one value: clap would
/// take a bare `Vec` for a list of values).
#[derive(Clone, Debug)]
struct IpOverrides(Vec<(std::net::IpAddr, usize)>);

/// The OAUTHBEARER settings the flags give, if it is offered.
fn oauthbearer(
    args: &Args,
) -> Result<Option<gyre_broker::security::oauthbearer::OAuthBearerConfig>, String> {
    use gyre_broker::security::oauthbearer::{KeySource, OAuthBearerConfig, TokenValidation};
    let source = match (
        &args.sasl_oauthbearer_jwks,
        &args.sasl_oauthbearer_jwks_endpoint_url,
    ) {
        (Some(file), _) => Some(KeySource::File(file.clone())),
        (None, Some(url)) => Some(
            KeySource::from_url(url, args.sasl_oauthbearer_jwks_ca.clone())
                .map_err(|e| format!("--sasl-oauthbearer-jwks-endpoint-url: {e}"))?,
        ),
        (None, None) => None,
    };
    let validation = match (source, args.sasl_oauthbearer_unsecured) {
        (Some(source), _) => TokenValidation::Jwks {
            source,
            refresh: Duration::from_millis(args.sasl_oauthbearer_jwks_refresh_ms),
        },
        (None, true) => TokenValidation::Unsecured,
        (None, false) => return Ok(None),
    };
    Ok(Some(OAuthBearerConfig {
        principal_claim: args.sasl_oauthbearer_sub_claim_name.clone(),
        expected_issuer: args.sasl_oauthbearer_expected_issuer.clone(),
        expected_audience: args.sasl_oauthbearer_expected_audience.clone(),
        clock_skew: Duration::from_secs(args.sasl_oauthbearer_clock_skew_seconds),
        ..OAuthBearerConfig::new(validation)
    }))
}

/// `PROTOCOL=count`, for --listener-max-connections.
fn parse_listener_max(
    text: &str,
) -> Result<(gyre_broker::security::SecurityProtocol, usize), String> {
    let (protocol, count) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected PROTOCOL=count"))?;
    let count = count
        .parse()
        .map_err(|e| format!("{count:?}: not a count ({e})"))?;
    Ok((protocol.parse()?, count))
}

fn parse_ip_overrides(text: &str) -> Result<IpOverrides, String> {
    gyre_broker::server::connection_limits::parse_overrides(text).map(IpOverrides)
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check every batch of every segment of a stopped broker's data folder
    /// (lengths, offsets, CRCs) and every record of its coordinator files
    /// (lengths, CRCs), read-only; exit status 1 if any is damaged.
    Verify {
        /// The data folder.
        #[arg(long, default_value = "gyre-data")]
        data: PathBuf,
    },
    /// Manage the users SASL listeners accept (stored salted and hashed in
    /// the data folder; a running broker sees changes at its next start).
    Users {
        /// The data folder.
        #[arg(long, default_value = "gyre-data")]
        data: PathBuf,
        #[command(subcommand)]
        action: UsersAction,
    },
}

#[derive(Debug, Subcommand)]
enum UsersAction {
    /// Adds a user, or sets a user's password.
    Add {
        /// The user name.
        name: String,
        /// The password.
        #[arg(long)]
        password: String,
        /// SCRAM-SHA-256, SCRAM-SHA-512, or all (PLAIN checks either).
        #[arg(long, default_value = "all")]
        mechanism: String,
        /// PBKDF2 iterations (at least 4096).
        #[arg(long, default_value_t = gyre_broker::security::credentials::DEFAULT_ITERATIONS)]
        iterations: u32,
    },
    /// Removes a user (or only one mechanism's credential).
    Remove {
        /// The user name.
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512; all when absent.
        #[arg(long)]
        mechanism: Option<String>,
    },
    /// Lists the users and their mechanisms.
    List,
}

fn users(data: &std::path::Path, action: &UsersAction) -> Result<(), Box<dyn std::error::Error>> {
    use gyre_broker::security::scram::{Credential, Mechanism};
    use gyre_broker::security::CredentialStore;
    let store = CredentialStore::open(data)?;
    let mechanism = |name: &str| {
        Mechanism::from_name(name)
            .ok_or_else(|| format!("{name:?}: expected SCRAM-SHA-256 or SCRAM-SHA-512"))
    };
    match action {
        UsersAction::Add {
            name,
            password,
            mechanism: which,
            iterations,
        } => {
            let mechanisms = if which == "all" {
                Mechanism::ALL.to_vec()
            } else {
                vec![mechanism(which)?]
            };
            for m in mechanisms {
                store.set(name, Credential::new(m, password, *iterations))?;
                println!("{name}: {} set ({iterations} iterations)", m.name());
            }
        }
        UsersAction::Remove {
            name,
            mechanism: which,
        } => {
            let m = which.as_deref().map(mechanism).transpose()?;
            if !store.remove(name, m)? {
                return Err(format!("no such credential for {name:?}").into());
            }
            println!("{name}: removed");
        }
        UsersAction::List => {
            for (name, mechs) in store.list() {
                let mechs: Vec<String> = mechs
                    .iter()
                    .map(|(m, i)| format!("{} ({i} iterations)", m.name()))
                    .collect();
                println!("{name}\t{}", mechs.join(", "));
            }
        }
    }
    Ok(())
}

/// Blocks SIGINT and SIGTERM in this thread and every thread it starts
/// from now on, so that [`wait_for_stop_signal`] receives them.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: `set` is a plain C struct that sigemptyset initialises before
    // any other use; every pointer passed is to a live local (or null,
    // which pthread_sigmask accepts for the old mask).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for one of the signals in `set` (blocked by
/// [`block_stop_signals`]) and returns its number.
fn wait_for_stop_signal(set: &libc::sigset_t) -> i32 {
    let mut signal = 0;
    // SAFETY: both pointers are to live values of the types sigwait takes.
    unsafe { libc::sigwait(set, &mut signal) };
    signal
}

fn verify(data: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let report = gyre_broker::verify::verify_data_dir(data)
        .map_err(|e| format!("cannot check {}: {e}", data.display()))?;
    print!("{report}");
    if !report.is_clean() {
        std::process::exit(1);
    }
    Ok(())
}

fn parse_advertised(
    s: &str,
) -> Result<(gyre_broker::security::SecurityProtocol, (String, u16)), String> {
    let (protocol, host_port) = s
        .split_once("://")
        .ok_or_else(|| format!("{s:?}: expected PROTOCOL://host:port"))?;
    // The protocol's names are the listeners' own.
    let listener: gyre_broker::security::Listener = format!("{protocol}://0.0.0.0:0").parse()?;
    Ok((listener.protocol, parse_host_port(host_port)?))
}

fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s.rsplit_once(':').ok_or("expected host:port")?;
    let port = port.parse().map_err(|_| format!("bad port in {s:?}"))?;
    Ok((host.to_owned(), port))
}

/// `--share-auto-offset-reset`'s value.
fn parse_start_at(value: &str) -> Result<gyre_broker::share::StartAt, String> {
    gyre_broker::share::StartAt::parse(value).ok_or_else(|| {
        format!(
            "{value:?}: use {}",
            gyre_broker::share::group_config::START_AT_VALUES
        )
    })
}

fn main() {
    // Errors print as sentences (Display), not as debug structures.
    if let Err(e) = run() {
        eprintln!("gyre-broker: {e}");
        std::process::exit(1);
    }
}

/// Keeps large blocks (request buffers) out of glibc's heap: glibc raises
/// its mmap threshold each time a large mmapped block is freed (up to 32
/// MiB), after which request-sized buffers come from the heap and stay
/// resident after they are dropped, so a burst of large produce requests
/// left the broker's resident memory at several hundred MiB although
/// `--queued-max-request-bytes` bounded what was live (`tests/memory.rs`
/// saw peaks of 60 MiB or 300 MiB from run to run). A fixed threshold
/// turns the adjustment off: blocks of 4 MiB and more are mmapped and go
/// back to the system when freed, while the usual produce request (a
/// client's 1 MB batches) still comes from the heap, without a page fault
/// per request.
fn fix_malloc_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called
    // before any other thread exists, as glibc asks.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    fix_malloc_mmap_threshold();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match &args.command {
        Some(Command::Verify { data }) => return verify(data),
        Some(Command::Users { data, action }) => return users(data, action),
        None => {}
    }
    // Before any thread starts, so every thread inherits the mask.
    let stop_signals = block_stop_signals();
    match gyre_reactor::raise_open_file_limit() {
        Ok((before, after)) => {
            tracing::info!(before, after, "open-file limit raised to the hard limit")
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let defaults = BrokerConfig::default();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let mut builder = gyre_reactor::TlsAcceptor::builder()
                .identity(gyre_reactor::TlsIdentity::from_pem_files(cert, key)?)
                .kernel_tls(!args.no_kernel_tls);
            if let Some(ca) = &args.tls_client_ca {
                builder =
                    builder.require_client_certificates(gyre_reactor::TlsRoots::from_pem_file(ca)?);
            }
            let tls = builder.build()?;
            tracing::info!(kernel_tls = tls.kernel_tls(), "TLS listeners");
            Some(tls)
        }
        _ => None,
    };
    let oauthbearer = oauthbearer(&args)?;
    let mut config = BrokerConfig {
        listen: args.listen,
        listeners: args.listeners.clone(),
        tls,
        authorizer: gyre_broker::security::AuthorizerConfig {
            enabled: args.authorizer,
            super_users: args.super_users.clone(),
            allow_if_no_acl: args.allow_if_no_acl,
            principal_mapping: match &args.ssl_principal_mapping_rules {
                Some(rules) => gyre_broker::security::principal::PrincipalMapping::parse(rules)?,
                None => Default::default(),
            },
        },
        advertised: args.advertise,
        advertised_listeners: args.advertised_listeners.clone(),
        data_dir: args.data,
        flush: match args.flush {
            Flush::EveryBatch => FlushPolicy::EveryBatch,
            Flush::Interval => FlushPolicy::Interval(Duration::from_millis(args.flush_interval_ms)),
            Flush::Never => FlushPolicy::Never,
        },
        default_partitions: args.partitions,
        auto_create_topics: !args.no_auto_create,
        max_request_size: args.max_request_size,
        queued_max_request_bytes: args.queued_max_request_bytes,
        workers: args.workers.unwrap_or(defaults.workers),
        transport: args.transport,
        retention_check: Duration::from_millis(args.retention_check_ms),
        ..defaults
    };
    config.log.segment_bytes = args.segment_bytes;
    config.oauthbearer = oauthbearer;
    config.connections = gyre_broker::ConnectionLimits {
        max: args.max_connections,
        per_listener: args.listener_max_connections.clone(),
        per_ip: args.max_connections_per_ip,
        per_ip_overrides: args
            .max_connections_per_ip_overrides
            .clone()
            .map(|o| o.0)
            .unwrap_or_default(),
        max_idle: (args.connections_max_idle_ms > 0)
            .then(|| Duration::from_millis(args.connections_max_idle_ms)),
        max_reauth: (args.connections_max_reauth_ms > 0)
            .then(|| Duration::from_millis(args.connections_max_reauth_ms)),
    };
    gyre_broker::topic_config::apply_config(
        &mut config.log,
        "cleanup.policy",
        &args.log_cleanup_policy,
    )
    .map_err(|e| format!("--log-cleanup-policy: {e}"))?;
    config.fetch_cache_loaders = args.fetch_cache_loaders;
    config.cleaner = gyre_broker::cleaner::CleanerConfig {
        enabled: !args.no_log_cleaner,
        backoff: Duration::from_millis(args.log_cleaner_backoff_ms),
        dedupe_buffer_bytes: args.log_cleaner_dedupe_buffer_size,
        io_max_bytes_per_second: args.log_cleaner_io_max_bytes_per_second,
    };
    if args.group_consumer_heartbeat_interval_ms == 0
        || args.group_consumer_heartbeat_interval_ms >= args.group_consumer_session_timeout_ms
    {
        return Err("--group-consumer-heartbeat-interval-ms must be above 0 and below --group-consumer-session-timeout-ms".into());
    }
    config.consumer_groups = gyre_broker::ConsumerGroupSettings {
        heartbeat_interval: Duration::from_millis(args.group_consumer_heartbeat_interval_ms),
        session_timeout: Duration::from_millis(args.group_consumer_session_timeout_ms),
        consumer_max_size: args.group_consumer_max_size,
        classic_max_size: args.group_max_size,
        offsets_retention: Duration::from_secs(args.offsets_retention_minutes * 60),
        offsets_retention_check: Duration::from_millis(args.offsets_retention_check_interval_ms),
        offset_metadata_max_bytes: args.offset_metadata_max_bytes,
    };
    if args.group_share_heartbeat_interval_ms == 0
        || args.group_share_heartbeat_interval_ms >= args.group_share_session_timeout_ms
    {
        return Err("--group-share-heartbeat-interval-ms must be above 0 and below --group-share-session-timeout-ms".into());
    }
    config.share_groups = gyre_broker::ShareGroupSettings {
        heartbeat_interval: Duration::from_millis(args.group_share_heartbeat_interval_ms),
        session_timeout: Duration::from_millis(args.group_share_session_timeout_ms),
        max_size: args.group_share_max_size as usize,
        record_lock: Duration::from_millis(args.group_share_record_lock_duration_ms),
        delivery_count_limit: args.group_share_delivery_count_limit,
        max_record_locks: args.group_share_partition_max_record_locks as usize,
        start_at: args.share_auto_offset_reset,
    };
    config.fetch_sessions = gyre_broker::FetchSessionLimits {
        max_sessions: args.max_incremental_fetch_session_cache_slots,
        max_partitions: args.max_incremental_fetch_session_partitions,
        min_eviction: Duration::from_millis(args.min_incremental_fetch_session_eviction_ms),
    };
    config.log.max_message_bytes = args.message_max_bytes;
    config.log.log_append_time = matches!(
        args.log_message_timestamp_type,
        TimestampType::LogAppendTime
    );
    config.log.segment_age = (args.segment_ms > 0).then(|| Duration::from_millis(args.segment_ms));
    config.log.retention_bytes = u64::try_from(args.retention_bytes).ok();
    config.log.retention_age = u64::try_from(args.retention_ms)
        .ok()
        .map(Duration::from_millis);
    let broker = Broker::start(&config)?;
    let data = std::fs::canonicalize(&config.data_dir).unwrap_or(config.data_dir.clone());
    // A closed stdout (a parent that read the address and went) must not
    // stop the broker.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "gyre-broker listening on {}", broker.local_addr());
    if !args.listeners.is_empty() {
        for listener in broker.listeners() {
            let _ = writeln!(out, "listener {listener}");
        }
    }
    let _ = writeln!(out, "data in {}", data.display());
    let _ = out.flush();
    // A failed writer or coordinator stops the broker (see `health`):
    // the watcher wakes the signal wait below with a SIGTERM of our own.
    let health = broker.health();
    std::thread::Builder::new()
        .name("gyre-health".into())
        .spawn(move || {
            health.wait_for_failure();
            // SAFETY: kill(2) on this process's own pid with a valid
            // signal number; SIGTERM is blocked in every thread, so it
            // waits for the main thread's sigwait.
            unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        })?;
    // Serve until SIGINT or SIGTERM; a kill -9 loses what the flush policy
    // says, and the next start checks every batch past the recovery point.
    let signal = wait_for_stop_signal(&stop_signals);
    if let Some(why) = broker.health().failure() {
        // What is in flight may wait on the failed thread for good: a
        // short grace, then out with status 1 for a supervisor to see.
        tracing::error!("stopping after a failure: {why}");
        broker.shutdown(Duration::from_secs(1));
        tracing::error!("stopped after a failure");
        std::process::exit(1);
    }
    tracing::info!(
        signal,
        "stopping: finishing in-flight requests and syncing the logs"
    );
    broker.shutdown(Duration::from_secs(10));
    tracing::info!("stopped cleanly");
    Ok(())
}
