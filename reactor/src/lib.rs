//! # gyre-reactor
//!
//! A Netty-style multi-reactor on epoll (through `mio`): event-loop groups
//! with a round-robin chooser, a [`ServerBootstrap`] with boss/worker groups
//! or `SO_REUSEPORT` accept, a [`Bootstrap`] for clients, and per-connection
//! **typed pipelines** whose handlers are checked against each other at
//! compile time and called statically.
//!
//! * Each [`EventLoop`] is one thread that owns its channels, a millisecond
//!   timer wheel and a lock-free inbox; nothing on the data path locks.
//! * A channel reads into one reused `BytesMut`, queues outbound `Bytes` and
//!   writes them gathered (`sendmsg` with many iovecs), resuming on
//!   writable readiness. High/low watermarks (64 KiB / 32 KiB by default)
//!   turn it unwritable and writable again, so a handler can switch
//!   auto-read off and keep memory bounded.
//! * A [`ChannelHandle`] writes to or closes a channel from any thread; a
//!   [`ChannelGroup`] writes to or closes many at once.
//! * Besides TCP, servers and clients run over Unix domain sockets
//!   ([`ServerBootstrap::bind_unix`], [`Bootstrap::connect_unix`]) and UDP
//!   ([`Bootstrap::bind_datagram`]: a pipeline of [`Datagram`]s).
//! * [`IdleStateHandler`] fires reader/writer/all-idle events; the codec
//!   adapters run any `gyre-codec` decoder and encoder as pipeline stages.
//! * [`EmbeddedChannel`] runs a pipeline on the calling thread, over a
//!   real channel whose loop turns only when the test calls in and whose
//!   clock moves only when told, for unit tests of handlers (Netty's
//!   `EmbeddedChannel`).
//! * [`EventLoopGroup::shutdown_gracefully`] stops accepting, waits for a
//!   quiet period (bounded by a timeout) and closes what is left;
//!   [`Server::serve_until_signal`] runs it on SIGINT or SIGTERM.
//! * The **offload stage** ([`OffloadStage`], [`Pipeline::offload`]) puts a
//!   `gyre-ringbuffer` Disruptor behind the sockets: a pipeline's last
//!   layer publishes each message with a [`Reply`] into the ring, in
//!   batches and without allocating; business stages answer from any
//!   thread, in completion or arrival order; a full ring or a busy
//!   connection pauses only that connection's reading. See the
//!   `offload` module's docs for the topology and the backpressure.
//!
//! ## How the crate is layered
//!
//! Each module uses only what sits below it (`scripts/module-cycles
//! reactor/src` checks that no two modules import each other):
//!
//! ```text
//! signal                      SIGINT/SIGTERM to a waiting thread; a server served until one
//!        |
//! udp                         UDP channels: Bootstrap::bind_datagram / connect_datagram
//!        |
//! bootstrap, group            servers and clients, groups of loops
//! embedded                    EmbeddedChannel: a pipeline run on the calling thread, for tests
//!        |
//! connection                  socket + pipeline -> one task for a loop (the only generic glue)
//!        |
//! channel/task, completions   a channel with its pipeline: reads, closes, drains, io_uring completions
//! codec, tls                  gyre-codec decoders and encoders as pipeline stages; TLS (rustls) as a layer
//! offload, offload/{job,flow,reorder}  the ring buffer as a pipeline's last layer; jobs, replies, order
//!        |
//! pipeline                    the Pipeline builder users write
//!        |
//! chain, batch                the typed chain of layers (InboundChain, End, Layer, contexts); a handle's batch
//!        |
//! path                        the outbound direction: Io lent per event, OutboundPath, HeadPath
//!        |
//! logging                     LoggingHandler, LoggingOutbound: a channel's events through tracing
//!        |
//! handler, idle, proxy_protocol  the handler traits, the idle-state handler, the PROXY protocol header
//!        |
//! channel_group               ChannelGroup: channels written to or closed together
//!        |
//! handle, connecting          ChannelHandle: any thread -> a loop's mailbox; a connect's outcome
//! lend                        InputLend: a channel's input, lent to the thread that holds it
//!        |
//! watch                       InputWatch: an epoll of one socket and a timer, for another runtime's poller
//!        |
//! channel, channel/{epoll,uring}  transport state and verbs (register, write, pause/resume read, release)
//!        |
//! loop_handle                 EventLoop: start a loop's thread, run, schedule and spawn tasks on it
//!        |
//! loop_task                   a future spawned on a loop: polled on its thread, queued again by its waker
//!        |                    (spawned: the loop thread's weak list of them, dropped as the loop stops)
//! event_loop                  one thread's run loop: poll or ring -> slots of `dyn ChannelOps`, timers, tasks, accept
//!        |
//! listeners, task_table,      the loop's parts: listening sockets and accept back-off, scheduled tasks,
//! shutdown, loop_shared       graceful shutdown, what other threads share with it (waker, doorbell, inbox)
//!        |
//! driver, socket              the kernel interface: epoll registry or io_uring ring; TCP, Unix or UDP sockets
//!        |
//! uring, buf_ring, token, slab, timer, mailbox, accept_backoff, fd_limit, options, outbound, error, transport, metrics
//! promise, direct              a reusable one-shot answer from a loop to any executor's future; the direct gate (writes, input lends)
//!        |
//! datagram, tls::{error, session}  what a read becomes at a pipeline's head (BytesMut, Datagram); TLS errors and sessions
//! ```
//!
//! ```
//! use bytes::Bytes;
//! use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
//! use gyre_reactor::{EventLoopGroup, InboundContext, InboundHandler, Pipeline, ServerBootstrap};
//! use std::io::{BufRead, BufReader, Write};
//! use std::time::Duration;
//!
//! /// Answers every line upper-cased.
//! struct Shout;
//!
//! impl InboundHandler for Shout {
//!     type Read = Bytes;
//!     type Pass = ();
//!     type Write = Vec<u8>;
//!
//!     fn read(&mut self, ctx: &mut impl InboundContext<Self>, line: Bytes) {
//!         ctx.write(line.to_ascii_uppercase());
//!     }
//!
//!     fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
//!         ctx.flush();
//!     }
//! }
//!
//! let server = ServerBootstrap::new()
//!     .group(EventLoopGroup::new(1)?)
//!     .bind("127.0.0.1:0", |_peer| {
//!         Pipeline::new()
//!             .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
//!             .inbound(Shout)
//!     })?;
//!
//! let mut conn = std::net::TcpStream::connect(server.local_addr())?;
//! conn.write_all(b"hello\n")?;
//! let mut line = String::new();
//! BufReader::new(conn).read_line(&mut line)?;
//! assert_eq!(line, "HELLO\n");
//! server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod accept_backoff;
/// The alarm a thread sleeps on beside a channel's socket, public in full
/// only for the loom models in `loom-tests/` (built with `--cfg loom`).
#[cfg(loom)]
#[doc(hidden)]
pub mod alarm;
#[cfg(not(loom))]
mod alarm;
mod batch;
mod bootstrap;
mod bounded_queue;
#[cfg(feature = "io-uring")]
mod buf_ring;
mod chain;
mod channel;
mod channel_group;
#[cfg(test)]
mod channel_tests;
mod codec;
mod cold_file;
mod connecting;
mod connection;
mod connection_cap;
mod datagram;
/// The direct-write gate, public only for the loom models in `loom-tests/`
/// (built with `--cfg loom`).
#[cfg(loom)]
#[doc(hidden)]
pub mod direct;
#[cfg(not(loom))]
mod direct;
mod driver;
mod embedded;
mod error;
mod event_loop;
#[cfg(any(not(loom), feature = "io-uring"))]
mod eventfd;
mod fd_limit;
mod file_loader;
mod file_send_probe;
mod group;
mod handle;
mod handler;
mod idle;
mod ip_filter;
mod ip_limit;
#[cfg(feature = "tls")]
mod ktls;
#[cfg(not(loom))]
mod lend;
mod listeners;
mod log_limit;
mod logging;
mod loop_handle;
mod loop_shared;
/// Futures spawned on a loop, public only for the loom models in
/// `loom-tests/` (built with `--cfg loom`).
#[cfg(loom)]
#[doc(hidden)]
pub mod loop_task;
#[cfg(not(loom))]
mod loop_task;
mod loop_thread;
/// The channel mailbox and loop doorbell, public only for the loom models
/// in `loom-tests/` (built with `--cfg loom`).
#[cfg(loom)]
#[doc(hidden)]
pub mod mailbox;
#[cfg(not(loom))]
mod mailbox;
mod metrics;
mod offload;
mod proxy_protocol;
#[cfg(not(loom))]
mod watch;
/// The offload layer's arrival-order sequencer, public only for the loom
/// models in `loom-tests/` (built with `--cfg loom`).
#[cfg(loom)]
#[doc(hidden)]
pub use offload::arrival::ArrivalOrder;
mod options;
mod outbound;
mod path;
mod pipeline;
pub mod promise;
mod shutdown;
mod signal;
mod slab;
mod socket;
mod spawned;
mod sync;
mod task_table;
mod timer;
pub mod timer_pause;
#[cfg(feature = "tls")]
mod tls;
mod token;
mod traffic_limit;
mod transport;
mod udp;
#[cfg(feature = "io-uring")]
mod uring;
mod user_event;
pub mod wake_relay;

pub use alarm::{Alarm, InputWait};
pub use bootstrap::{Bootstrap, Server, ServerBootstrap};
pub use chain::{End, InboundChain};
pub use channel::Channel;
pub use channel_group::ChannelGroup;
pub use codec::{DecoderHandler, EncoderHandler, PrependerHandler};
pub use connecting::Connecting;
#[doc(hidden)]
pub use connection_cap::CapWaker;
pub use connection_cap::ConnectionCap;
pub use datagram::Datagram;
pub use embedded::{EmbeddedChannel, EmbeddedError};
pub use error::{ChannelClosed, Error};
pub use fd_limit::{open_file_limit, raise_open_file_limit, set_open_file_limit};
pub use file_loader::{FileLoadCounts, FileLoader, FileLoaderBuilder};
pub use file_send_probe::{FileSendProbe, PROBE_BYTES, PROBE_PIPE};
pub use group::{EventLoopGroup, EventLoopGroupBuilder};
pub use handle::ChannelHandle;
pub use handler::{
    IdleState, IdleStateEvent, InboundContext, InboundHandler, OutboundContext, OutboundHandler,
    UserEvent,
};
pub use idle::IdleStateHandler;
pub use ip_filter::{IpFilter, IpFilterHandler, IpSubnet, IpSubnetError};
pub use ip_limit::{ConnectionsPerIp, IpSlot};
#[cfg(not(loom))]
pub use lend::InputLend;
pub use log_limit::{Held, LogLimit};
pub use logging::{LoggingHandler, LoggingOutbound, LOGGED_BYTES};
pub use loop_handle::{EventLoop, ScheduledTask};
pub use loop_thread::is_event_loop_thread;
pub use metrics::LoopMetrics;
pub use offload::{
    Answer, Job, Offload, OffloadStage, OffloadStats, Order, Reorder, Reply, ReplyError,
};
pub use options::{ChannelOptions, FileSend, ListenOptions};
pub use outbound::Outbound;
pub use pipeline::Pipeline;
pub use proxy_protocol::ProxyProtocolHandler;
pub use signal::{StopSignal, StopSignals};
pub use socket::UNIX_FILE_SEND_BUFFER;
pub use timer::TimerId;
pub use timer_pause::TimerPause;
#[cfg(feature = "tls")]
pub use tls::{
    TlsAcceptor, TlsAcceptorBuilder, TlsConnector, TlsConnectorBuilder, TlsError, TlsIdentity,
    TlsInbound, TlsOutbound, TlsRoots, TlsSession,
};
#[doc(hidden)]
pub use tracing as __tracing;
pub use traffic_limit::{SharedTrafficLimit, TrafficLimit};
pub use transport::Transport;
pub use udp::BoundDatagram;
#[cfg(not(loom))]
pub use watch::InputWatch;

/// The crate's README example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExample;
