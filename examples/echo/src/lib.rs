//! The echo handler, shared by the `echo-server` binary, the reactor's
//! integration tests and the benchmark's gyre server; and [`proxy`], a
//! splice(2) proxy that can stand in front of it.

pub mod proxy;

/// Logs to stderr at `RUST_LOG`'s level (default `info`), as the example
/// binaries do.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

use bytes::{Bytes, BytesMut};
use gyre_reactor::{
    ChannelOptions, EventLoopGroup, InboundContext, InboundHandler, ListenOptions, Pipeline,
    Server, ServerBootstrap, Transport,
};
use std::net::SocketAddr;

/// Writes back every chunk it reads, flushing once per read batch, and
/// stops reading while the peer is not taking its echoes (the outbound queue
/// is above the high watermark), so a client that never reads cannot make
/// the server buffer without bound.
///
/// ```
/// use gyre_echo::Echo;
/// use gyre_reactor::{EventLoopGroup, Pipeline, ServerBootstrap};
/// use std::io::{Read, Write};
///
/// // Echo as the last layer of a server's pipelines.
/// let server = ServerBootstrap::new()
///     .group(EventLoopGroup::new(1)?)
///     .bind("127.0.0.1:0", |_| Pipeline::new().inbound(Echo))?;
/// let mut client = std::net::TcpStream::connect(server.local_addr())?;
/// client.write_all(b"ping")?;
/// let mut back = [0u8; 4];
/// client.read_exact(&mut back)?;
/// assert_eq!(&back, b"ping");
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct Echo;

impl InboundHandler for Echo {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    #[inline]
    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        ctx.write(msg.freeze());
    }

    #[inline]
    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.flush();
    }

    fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
        ctx.set_auto_read(writable);
    }
}

/// How to run the server.
///
/// ```
/// use gyre_echo::{start, EchoConfig};
///
/// // Two worker loops, each accepting on its own SO_REUSEPORT listener.
/// let config = EchoConfig {
///     addr: "127.0.0.1:0".parse()?,
///     workers: 2,
///     reuse_port: true,
///     ..EchoConfig::default()
/// };
/// let server = start(&config)?;
/// assert_ne!(server.local_addr().port(), 0);
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct EchoConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Worker loops.
    pub workers: usize,
    /// Each worker accepts for itself on an `SO_REUSEPORT` listener.
    pub reuse_port: bool,
    /// A separate one-loop boss group accepts (ignored with `reuse_port`).
    pub boss: bool,
    /// epoll or io_uring (or `Auto`: gyre chooses; epoll for now).
    pub transport: Transport,
    /// The worker loops' busy-poll window (zero: off); see
    /// [`EventLoopGroupBuilder::busy_poll`](gyre_reactor::EventLoopGroupBuilder::busy_poll).
    pub busy_poll: std::time::Duration,
    /// Pin each worker loop to its own CPU; see
    /// [`EventLoopGroupBuilder::pin_to_cores`](gyre_reactor::EventLoopGroupBuilder::pin_to_cores).
    pub pin_to_cores: bool,
}

impl Default for EchoConfig {
    /// `127.0.0.1:7007`, one worker loop per CPU accepting for itself, on
    /// epoll, no busy polling, unpinned.
    fn default() -> Self {
        EchoConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 7007)),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            reuse_port: false,
            boss: false,
            transport: Transport::Epoll,
            busy_poll: std::time::Duration::ZERO,
            pin_to_cores: false,
        }
    }
}

/// Starts an echo server.
///
/// ```
/// use gyre_echo::{start, EchoConfig};
/// use std::io::{Read, Write};
///
/// let server = start(&EchoConfig {
///     addr: "127.0.0.1:0".parse().unwrap(),
///     workers: 1,
///     ..EchoConfig::default()
/// })
/// .unwrap();
/// let mut c = std::net::TcpStream::connect(server.local_addr()).unwrap();
/// c.write_all(b"echo").unwrap();
/// let mut buf = [0; 4];
/// c.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"echo");
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// ```
pub fn start(cfg: &EchoConfig) -> Result<Server, gyre_reactor::Error> {
    let workers = EventLoopGroup::builder()
        .threads(cfg.workers)
        .name("echo-worker")
        .transport(cfg.transport)
        .busy_poll(cfg.busy_poll)
        .pin_to_cores(cfg.pin_to_cores)
        .build()?;
    let mut bootstrap = ServerBootstrap::new()
        .child_options(ChannelOptions::default())
        .listen_options(ListenOptions::default().reuse_port(cfg.reuse_port));
    bootstrap = if cfg.boss && !cfg.reuse_port {
        let boss = EventLoopGroup::builder()
            .threads(1)
            .name("echo-boss")
            .transport(cfg.transport)
            .build()?;
        bootstrap.groups(boss, workers)
    } else {
        bootstrap.group(workers)
    };
    bootstrap.bind(cfg.addr, |_| Pipeline::new().inbound(Echo))
}
