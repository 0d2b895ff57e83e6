//! A minimal HTTP/1.1 static file server on `gyre-reactor`, sending file
//! bodies with `sendfile` through [`FileRegion`](gyre_zerocopy::FileRegion)s.
//!
//! It serves HTTP, or HTTPS with a certificate and key
//! ([`FileServerConfig::tls`]). Over HTTPS, where the kernel has TLS
//! (kTLS), each connection's record layer goes to the kernel after the
//! handshake and bodies keep `sendfile`; elsewhere they go out read and
//! encrypted a chunk at a time. It serves GET and HEAD with `Content-Length`, keep-alive and pipelining,
//! byte ranges (`Range: bytes=a-b`, `a-`, `-n`: 206, several as
//! `multipart/byteranges`, up to 16 not overlapping; or 416 past the
//! end), conditional requests (a strong `ETag` and `Last-Modified` on every
//! file; `If-None-Match` and `If-Modified-Since` answer 304, `If-Match` and
//! `If-Unmodified-Since` 412, and `If-Range` keeps a range only for the
//! file it names), precompressed siblings (`app.js.br` in `app.js`'s place
//! for a client that takes `br`: [`FileServerConfig::precompressed`]),
//! `Expires` and `Cache-Control` as nginx's `expires` sets them
//! ([`FileServerConfig::expires`]), 404 for missing files, 405 for other
//! methods, and 403 for any path
//! that would leave the root: `..` segments (plain or percent-encoded) and
//! symlinks that point outside. Malformed requests get 400 and the
//! connection closes; request heads over 8 KiB get 431. A connection with
//! neither input nor output progress for the idle timeout is closed, but a
//! slow download that is still moving is not.
//!
//! Hostile clients get clear answers and cannot starve others: a request
//! head must be whole within 10 s of its first byte (1 s while the server
//! is near its connection cap), or 408 and close; connections past the cap
//! get 503 and close; a file that cannot be opened for want of descriptors
//! or memory is 503 with `Retry-After`, never 404; anything that is not a
//! regular file (a FIFO, a device) is 404, opened without blocking.
//!
//! No loop waits on the disk for a file (threads do:
//! [`FileServerConfig::file_openers`], [`FileServerConfig::file_loaders`]):
//! a file whose path the kernel has cached is opened on the
//! loop (`openat2` with `RESOLVE_CACHED`, beneath the root), any other by
//! an opener thread while the requests pipelined behind it wait their
//! turn; a file whose bytes are not in the page cache is read in by
//! loader threads a window at a time, while the loop serves its other
//! connections, and the loop's `sendfile` (over HTTPS without the
//! kernel's TLS, the TLS layer's read) then takes the bytes from memory.
//!
//! ```no_run
//! use gyre_fileserver::{start, FileServerConfig};
//!
//! let server = start(&FileServerConfig::new("./public"))?;
//! println!("serving on http://{}", server.local_addr());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod conditional;
mod date;
mod encoding;
mod expires;
mod handler;
mod limits;
mod open;
mod range;
mod request;
mod resolve;
mod status;

pub use encoding::Encoding;
pub use expires::Expires;
pub use handler::HttpHandler;
pub use limits::{default_max_connections, ConnectionLimits, ConnectionSlot};
pub use open::ServedFiles;
pub use status::Status;

use bytes::BytesMut;
use gyre_reactor::{
    ChannelOptions, EventLoopGroup, FileLoader, IdleStateHandler, IpFilter, IpFilterHandler,
    Outbound, Pipeline, ProxyProtocolHandler, Server, ServerBootstrap, SharedTrafficLimit,
    TlsAcceptor, TrafficLimit, Transport,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to run the file server.
///
/// ```
/// use gyre_fileserver::{start, FileServerConfig};
/// use std::io::{Read, Write};
///
/// # let root = std::env::temp_dir().join(format!("gyre-doc-fs-config-{}", std::process::id()));
/// # std::fs::create_dir_all(&root)?;
/// std::fs::write(root.join("hello.txt"), "hello")?;
/// let config = FileServerConfig {
///     addr: "127.0.0.1:0".parse()?,
///     workers: 1,
///     ..FileServerConfig::new(&root)
/// };
/// let server = start(&config)?;
/// let mut client = std::net::TcpStream::connect(server.local_addr())?;
/// client.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
/// let mut answer = String::new();
/// client.read_to_string(&mut answer)?;
/// assert!(answer.starts_with("HTTP/1.1 200 OK"));
/// assert!(answer.ends_with("\r\n\r\nhello"));
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # std::fs::remove_dir_all(&root)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileServerConfig {
    /// The folder served.
    pub root: PathBuf,
    /// Where to listen (default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// Event loops (default: one per CPU).
    pub workers: usize,
    /// How long a connection may go without reading or sending a byte
    /// before it is closed (default 60 s).
    pub idle_timeout: Duration,
    /// epoll (default) or io_uring; on either, bodies go out from the loop
    /// with `sendfile` or `splice`, whichever the reactor's
    /// `FileSend::Auto` measured faster on this host.
    pub transport: Transport,
    /// Connections served at once; more are answered 503 and closed
    /// (default: [`default_max_connections`] of the open-file limit at
    /// start).
    pub max_connections: Option<usize>,
    /// How long a request head may take from its first byte to its end
    /// before the connection gets 408 and closes (default 10 s).
    pub head_timeout: Duration,
    /// The same deadline while three quarters of `max_connections` are
    /// taken (default 1 s): see [`ConnectionLimits`].
    pub head_timeout_under_load: Duration,
    /// Serve HTTPS with these settings (default: plain HTTP). See
    /// [`FileServerConfig::with_tls_files`].
    pub tls: Option<TlsAcceptor>,
    /// The congestion control connections run (`TCP_CONGESTION`, as
    /// [`ChannelOptions::tcp_congestion`]); the host's default when
    /// `None` (the default). A client on this host (a local proxy in
    /// front) needs none: a connection to one leaves BBR, which paces a
    /// bulk sender over loopback to the rate it measured, at its first
    /// file body (see [`ChannelOptions::pace_local_file_sends`]); before
    /// that, a 1 GiB body to curl over loopback on the Intel Xeon VM went
    /// at 2.3-2.7 GiB/s and 0.38-0.40 s of server CPU per GiB under
    /// `bbr`, at 5.1-5.4 GiB/s (curl's own limit) and 0.07 s under
    /// `cubic` (BENCHMARKS.md, issue 22, twenty-ninth session). Set it to
    /// change what every connection runs.
    pub tcp_congestion: Option<String>,
    /// Threads that read the cold parts of files into the page cache
    /// before a loop sends them (default 2; see [`FileLoader`]). 0 sends
    /// them as they are: a loop's `sendfile` of bytes only on disk then
    /// holds up every connection of that loop.
    pub file_loaders: usize,
    /// Threads that open the files whose paths the kernel has not cached
    /// (default 2; see [`ServedFiles`]). 0 opens every file on the loop:
    /// a path the kernel must look up on disk then holds up every
    /// connection of that loop.
    pub file_openers: usize,
    /// Every connection starts with a PROXY protocol header (versions 1
    /// and 2, as HAProxy's `send-proxy`, AWS NLB and nginx's
    /// `proxy_protocol on` send it), which is taken off before the
    /// request (and before TLS); a connection without one is closed
    /// unanswered (default off; see [`ProxyProtocolHandler`]). nginx's
    /// `listen ... proxy_protocol`.
    pub proxy_protocol: bool,
    /// Each connection sends at most this many bytes a second, headers
    /// and bodies (nginx's `limit_rate`; default none), after a burst of a
    /// tenth of a second's worth (at least 16 KiB). Held in the reactor's
    /// write path ([`ChannelOptions::write_limit`]), so bodies keep
    /// `sendfile`.
    pub limit_rate: Option<u64>,
    /// All connections together send at most this many bytes a second
    /// (default none; [`ChannelOptions::shared_write_limit`]): a server's
    /// share of a link. With `limit_rate` too, each connection is held to
    /// the tighter.
    pub limit_rate_total: Option<u64>,
    /// Who may connect (nginx's `allow` and `deny`; default: everyone),
    /// and how many connections each address may hold open
    /// ([`IpFilter::limit_per_address`], nginx's `limit_conn`). A refused
    /// connection is closed before anything of it is read (before the TLS
    /// handshake too); behind a PROXY protocol header, the client the
    /// header names is judged.
    pub ip_filter: IpFilter,
    /// Precompressed siblings sent in a file's place (default none; see
    /// [`ServedFiles::with_precompressed`]): `app.js.br` to a client
    /// whose `Accept-Encoding` takes `br`, with `Content-Encoding: br`,
    /// the file's content type, and `Vary: Accept-Encoding` on every file
    /// answer. Ranges and validators are the sibling's, and its `ETag`
    /// names its coding.
    pub precompressed: Vec<Encoding>,
    /// How long clients and caches may keep a file (nginx's `expires`;
    /// default: no `Expires` or `Cache-Control` sent): the two headers on
    /// every file's 200, 206 and 304 answer.
    pub expires: Option<Expires>,
}

impl FileServerConfig {
    /// Serves `root` with the defaults.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileServerConfig {
            root: root.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            idle_timeout: Duration::from_secs(60),
            transport: Transport::Epoll,
            max_connections: None,
            head_timeout: Duration::from_secs(10),
            head_timeout_under_load: Duration::from_secs(1),
            tls: None,
            tcp_congestion: None,
            file_loaders: 2,
            file_openers: 2,
            proxy_protocol: false,
            limit_rate: None,
            limit_rate_total: None,
            ip_filter: IpFilter::new(),
            precompressed: Vec::new(),
            expires: None,
        }
    }

    /// Serves HTTPS with the PEM certificate chain and key in these files
    /// (ALPN `http/1.1`), handing connections to the kernel's TLS where it
    /// has one ([`TlsAcceptorBuilder::kernel_tls`](gyre_reactor::TlsAcceptorBuilder::kernel_tls)),
    /// so bodies keep `sendfile`. For other settings, set
    /// [`tls`](Self::tls) to an acceptor of your own.
    ///
    /// # Errors
    /// The file that could not be read or used, named.
    pub fn with_tls_files(
        mut self,
        cert: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Result<Self, gyre_reactor::TlsError> {
        self.tls = Some(
            TlsAcceptor::builder()
                .identity(gyre_reactor::TlsIdentity::from_pem_files(cert, key)?)
                .alpn(["http/1.1"])
                .kernel_tls(true)
                .build()?,
        );
        Ok(self)
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The root is missing or not a folder.
    #[error("cannot serve {}: {source}", root.display())]
    Root {
        /// The root given.
        root: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The listener could not be set up.
    #[error(transparent)]
    Reactor(#[from] gyre_reactor::Error),
}

/// How long a connection closed by the server waits for the client's EOF,
/// discarding its input, before the descriptor is closed.
const LINGERING_CLOSE: Duration = Duration::from_secs(2);

/// Starts serving; returns the running server (its
/// [`local_addr`](Server::local_addr) says where it listens).
pub fn start(config: &FileServerConfig) -> Result<Server, StartError> {
    let root_error = |source| StartError::Root {
        root: config.root.clone(),
        source,
    };
    let root = config.root.canonicalize().map_err(root_error)?;
    if !root.is_dir() {
        return Err(root_error(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    let files = Arc::new(
        ServedFiles::new(Arc::new(root.clone()), config.file_openers)
            .map_err(root_error)?
            .with_precompressed(config.precompressed.clone())
            .with_expires(config.expires),
    );
    let idle = config.idle_timeout;
    let max_connections = config
        .max_connections
        .unwrap_or_else(|| default_max_connections(gyre_reactor::open_file_limit()));
    let limits = ConnectionLimits::new(
        max_connections,
        config.head_timeout,
        config.head_timeout_under_load,
    );
    tracing::info!(max_connections, "connection cap");
    // A connection closed for idleness has stopped reading, so waiting
    // long for its queue to drain is pointless. A connection refused
    // mid-request (400, 408, 431) lingers so its answer is not lost to a
    // reset.
    let mut child = ChannelOptions::default()
        .close_drain_timeout(idle)
        .lingering_close(LINGERING_CLOSE);
    if let Some(name) = &config.tcp_congestion {
        child = child.tcp_congestion(name.clone());
    }
    if let Some(rate) = config.limit_rate {
        child = child.write_limit(TrafficLimit::bytes_per_second(rate));
    }
    if let Some(rate) = config.limit_rate_total {
        let all = SharedTrafficLimit::new(TrafficLimit::bytes_per_second(rate));
        child = child.shared_write_limit(&all);
    }
    if config.file_loaders > 0 {
        let loader = FileLoader::builder()
            .threads(config.file_loaders)
            .start()
            .map_err(gyre_reactor::Error::Io)?;
        child = child.file_loader(loader);
    }
    let bootstrap = ServerBootstrap::new()
        .group(
            EventLoopGroup::builder()
                .threads(config.workers)
                .name("gyre-http")
                .transport(config.transport)
                .build()
                .map_err(gyre_reactor::Error::Io)?,
        )
        .child_options(child);
    let idle_handler =
        move || IdleStateHandler::<BytesMut, Outbound>::new(Duration::ZERO, Duration::ZERO, idle);
    // Each layout is a pipeline type of its own, so a macro writes the
    // four: (the PROXY header,) the IP filter, (TLS,) the idle handler,
    // HTTP. The idle handler closes a connection that sends nothing,
    // header or not. The filter (without rules it allows every address)
    // judges the client before a TLS handshake is spent on it.
    macro_rules! serve {
        ($($layer:tt)*) => {
            bootstrap.bind(config.addr, move |_| {
                Pipeline::with_file_regions()
                    $($layer)*
                    .inbound(idle_handler())
                    .inbound(HttpHandler::new(files.clone(), limits.admit()))
            })?
        };
    }
    let proxied = || ProxyProtocolHandler::<Outbound>::new();
    let filter = config.ip_filter.clone();
    let direct = move || IpFilterHandler::<Outbound>::new(filter.clone());
    let filter = config.ip_filter.clone();
    let behind = move || IpFilterHandler::<Outbound>::new(filter.clone()).behind_proxy();
    let server = match (config.tls.clone(), config.proxy_protocol) {
        (None, false) => serve!(.inbound(direct())),
        (None, true) => serve!(.inbound(proxied()).inbound(behind())),
        (Some(tls), false) => serve!(.inbound(direct()).tls_server(&tls)),
        (Some(tls), true) => serve!(.inbound(proxied()).inbound(behind()).tls_server(&tls)),
    };
    Ok(server)
}
