//! `ServerBootstrap` (accept and serve) and `Bootstrap` (connect), with the
//! socket work done through `socket2`.

use crate::chain::InboundChain;
use crate::channel::task::Connect;
use crate::connecting::{ConnectReply, Connecting, Endpoint};
use crate::connection_cap::CapSlot;
use crate::datagram::FromSocket;
use crate::error::Error;
use crate::event_loop::LoopInner;
use crate::group::EventLoopGroup;
use crate::handle::ChannelHandle;
use crate::loop_handle::EventLoop;
use crate::metrics::LoopMetrics;
use crate::options::{ChannelOptions, ListenOptions};
use crate::outbound::Outbound;
use crate::pipeline::Pipeline;
use crate::socket::{ListenSocket, Stream};
use crate::transport::Transport;
use bytes::BytesMut;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Configures and starts a server.
///
/// With one group ([`group`](Self::group)) its loops both accept and serve;
/// with two ([`groups`](Self::groups)) the boss group accepts and hands each
/// connection to the next worker loop; with
/// [`ListenOptions::reuse_port`] every worker loop binds its own
/// `SO_REUSEPORT` listener and accepts for itself. The initializer runs on
/// the worker loop for each new connection and returns its pipeline.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gyre_reactor::{EventLoopGroup, InboundContext, InboundHandler, Pipeline, ServerBootstrap};
/// use std::time::Duration;
///
/// struct Echo;
/// impl InboundHandler for Echo {
///     type Read = BytesMut;
///     type Pass = ();
///     type Write = Bytes;
///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
///         ctx.write_and_flush(msg.freeze());
///     }
/// }
///
/// let server = ServerBootstrap::new()
///     .group(EventLoopGroup::new(1).unwrap())
///     .bind("127.0.0.1:0", |_peer| Pipeline::new().inbound(Echo))
///     .unwrap();
///
/// use std::io::{Read, Write};
/// let mut s = std::net::TcpStream::connect(server.local_addr()).unwrap();
/// s.write_all(b"ping").unwrap();
/// let mut buf = [0; 4];
/// s.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"ping");
/// server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ServerBootstrap {
    boss: Option<EventLoopGroup>,
    worker: Option<EventLoopGroup>,
    listen: ListenOptions,
    child: ChannelOptions,
    transport: Transport,
}

/// A running server.
///
/// ```
/// use gyre_reactor::{Pipeline, ServerBootstrap};
/// use std::time::Duration;
///
/// let server = ServerBootstrap::new().bind("127.0.0.1:0", |_peer| Pipeline::new())?;
/// println!("listening on {}", server.local_addr());
/// assert_eq!(server.worker_group().len(), server.worker_group().loops().len());
/// server.stop_accepting(); // open connections stay up
/// server.shutdown_gracefully(Duration::from_millis(10), Duration::from_secs(1));
/// assert!(std::net::TcpStream::connect(server.local_addr()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    /// Where a Unix domain server listens.
    unix_path: Option<PathBuf>,
    boss: EventLoopGroup,
    worker: EventLoopGroup,
    listener_loops: Vec<EventLoop>,
}

impl ServerBootstrap {
    /// A bootstrap with default options; without a group it makes one loop
    /// per CPU at bind time.
    pub fn new() -> Self {
        Self::default()
    }

    /// One group accepts and serves.
    pub fn group(mut self, group: EventLoopGroup) -> Self {
        self.boss = Some(group.clone());
        self.worker = Some(group);
        self
    }

    /// `boss` accepts, `worker` serves.
    pub fn groups(mut self, boss: EventLoopGroup, worker: EventLoopGroup) -> Self {
        self.boss = Some(boss);
        self.worker = Some(worker);
        self
    }

    /// The transport of the group the bootstrap makes when none is given
    /// (default [`Transport::Epoll`]); a group passed to
    /// [`group`](Self::group) or [`groups`](Self::groups) keeps its own.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Options of the listening socket(s).
    pub fn listen_options(mut self, opts: ListenOptions) -> Self {
        self.listen = opts;
        self
    }

    /// Options of each accepted channel.
    pub fn child_options(mut self, opts: ChannelOptions) -> Self {
        self.child = opts;
        self
    }

    /// Binds and starts accepting; returns once the listener is registered.
    ///
    /// # Errors
    /// If the address does not resolve, or bind/listen fails, or the loops
    /// have shut down; [`Error::WouldBlockLoop`] on an event loop's thread
    /// (it waits for the listener's loop), before anything is bound.
    pub fn bind<F, L, R, W, S>(mut self, addr: impl ToSocketAddrs, init: F) -> Result<Server, Error>
    where
        F: Fn(SocketAddr) -> Pipeline<L, R, W, S> + Send + Sync + 'static,
        L: InboundChain<BytesMut, S> + 'static,
        S: Into<Outbound> + 'static,
        R: 'static,
        W: 'static,
    {
        crate::loop_thread::refuse_to_wait("ServerBootstrap::bind")?;
        let addr = resolve(addr)?;
        if !self.listen.reuse_port {
            let congestion = self.child.tcp_congestion_name();
            let listener = listen(addr, &self.listen, congestion)
                .map_err(|source| Error::Bind { addr, source })?;
            let local_addr = listener.local_addr()?;
            return self.serve(
                ListenSocket::Tcp(listener),
                local_addr,
                None,
                tcp_init(init),
            );
        }
        let (boss, worker) = self.groups_to_run()?;
        let init = Arc::new(init);
        let child = Arc::new(self.child);
        // One listener per worker loop, all on the same port.
        let mut listener_loops = Vec::new();
        let mut bound = addr;
        let mut first = None;
        for lp in worker.loops() {
            let listener =
                listen(bound, &self.listen, child.tcp_congestion_name()).map_err(|source| {
                    Error::Bind {
                        addr: bound,
                        source,
                    }
                })?;
            let actual = listener.local_addr()?;
            bound = actual;
            first.get_or_insert(actual);
            let (init, child) = (init.clone(), child.clone());
            register_listener(
                lp,
                ListenSocket::Tcp(listener),
                &self.listen,
                move |inner, stream, slot| {
                    if let Some(peer) = stream.peer_addr() {
                        inner.add_accepted::<L, S>(stream, slot, child.clone(), init(peer).layers);
                    }
                },
            )?;
            listener_loops.push(lp.clone());
        }
        let local_addr = first.expect("a group has at least one loop");
        tracing::info!(addr = %local_addr, reuse_port = true, "listening");
        Ok(Server {
            local_addr,
            unix_path: None,
            boss,
            worker,
            listener_loops,
        })
    }

    /// Binds a Unix domain socket at `path` and starts accepting; `init`
    /// builds each connection's pipeline, as with [`bind`](Self::bind)
    /// (a Unix peer has no address to give it). The socket file is left in
    /// place when the server stops, as every Unix server leaves it:
    /// remove it before binding again. [`ListenOptions::backlog`] applies;
    /// TCP's options do not.
    ///
    /// ```
    /// use gyre_reactor::{Bootstrap, EventLoopGroup, Pipeline, ServerBootstrap};
    /// use std::io::{Read, Write};
    ///
    /// let path = std::env::temp_dir().join(format!("gyre-doc-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let server = ServerBootstrap::new().bind_unix(&path, || Pipeline::new())?;
    /// assert_eq!(server.unix_path(), Some(path.as_path()));
    /// let mut peer = std::os::unix::net::UnixStream::connect(&path)?;
    /// peer.write_all(b"hi")?;
    /// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// If bind or listen fails (the error names the path), or the loops
    /// have shut down; [`Error::WouldBlockLoop`] on an event loop's thread,
    /// before the socket file is made.
    pub fn bind_unix<F, L, R, W, S>(
        self,
        path: impl AsRef<std::path::Path>,
        init: F,
    ) -> Result<Server, Error>
    where
        F: Fn() -> Pipeline<L, R, W, S> + Send + Sync + 'static,
        L: InboundChain<BytesMut, S> + 'static,
        S: Into<Outbound> + 'static,
        R: 'static,
        W: 'static,
    {
        crate::loop_thread::refuse_to_wait("ServerBootstrap::bind_unix")?;
        let path = path.as_ref().to_path_buf();
        let listener = listen_unix(&path, self.listen.backlog).map_err(|e| {
            Error::Io(io::Error::new(
                e.kind(),
                format!("cannot listen on {}: {e}", path.display()),
            ))
        })?;
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        self.serve(
            ListenSocket::Unix(listener),
            unspecified,
            Some(path),
            move |_: &Stream| Some(init()),
        )
    }

    /// Starts accepting on a listener the caller bound (to know its port
    /// before the server starts, or to take one handed over by systemd).
    /// The listener is used as it is: its backlog and options stay the
    /// caller's, and of [`ListenOptions`] only the loop's own
    /// [`max_accepts_per_event`](ListenOptions::max_accepts_per_event)
    /// applies (`reuse_port` does not). The one exception is a congestion
    /// control the child options ask for
    /// ([`ChannelOptions::tcp_congestion`]), set on the listener as
    /// [`bind`](Self::bind) sets it, so that a name the kernel refuses
    /// fails here.
    ///
    /// ```
    /// use gyre_reactor::{Pipeline, ServerBootstrap};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let port = listener.local_addr()?.port(); // known before the server runs
    /// let server = ServerBootstrap::new().bind_listener(listener, |_peer| Pipeline::new())?;
    /// assert_eq!(server.local_addr().port(), port);
    /// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// If the listener cannot be made non-blocking, or the loops have shut
    /// down; [`Error::Bind`] if the kernel refuses the children's
    /// congestion control; [`Error::WouldBlockLoop`] on an event loop's
    /// thread.
    pub fn bind_listener<F, L, R, W, S>(
        self,
        listener: std::net::TcpListener,
        init: F,
    ) -> Result<Server, Error>
    where
        F: Fn(SocketAddr) -> Pipeline<L, R, W, S> + Send + Sync + 'static,
        L: InboundChain<BytesMut, S> + 'static,
        S: Into<Outbound> + 'static,
        R: 'static,
        W: 'static,
    {
        crate::loop_thread::refuse_to_wait("ServerBootstrap::bind_listener")?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        if let Some(name) = self.child.tcp_congestion_name() {
            crate::options::set_tcp_congestion(&socket2::SockRef::from(&listener), name).map_err(
                |source| Error::Bind {
                    addr: local_addr,
                    source,
                },
            )?;
        }
        let listener = ListenSocket::Tcp(mio::net::TcpListener::from_std(listener));
        self.serve(listener, local_addr, None, tcp_init(init))
    }

    /// The boss and worker groups given, or a worker group made for the
    /// server (which is then its own boss).
    fn groups_to_run(&mut self) -> Result<(EventLoopGroup, EventLoopGroup), Error> {
        let worker = match self.worker.take() {
            Some(w) => w,
            None => EventLoopGroup::builder()
                .transport(self.transport)
                .build()?,
        };
        let boss = self.boss.take().unwrap_or_else(|| worker.clone());
        Ok((boss, worker))
    }

    /// Accepts on `listener` from one boss loop, handing connections to
    /// the workers round-robin.
    fn serve<F, L, R, W, S>(
        mut self,
        listener: ListenSocket,
        local_addr: SocketAddr,
        unix_path: Option<PathBuf>,
        init: F,
    ) -> Result<Server, Error>
    where
        F: Fn(&Stream) -> Option<Pipeline<L, R, W, S>> + Send + Sync + 'static,
        L: InboundChain<BytesMut, S> + 'static,
        S: Into<Outbound> + 'static,
        R: 'static,
        W: 'static,
    {
        let (boss, worker) = self.groups_to_run()?;
        let init = Arc::new(init);
        let child = Arc::new(self.child);
        let described = listener.describe();
        let lp = boss.next().clone();
        let same = boss.same_group(&worker);
        let workers = worker.clone();
        register_listener(&lp, listener, &self.listen, move |inner, stream, slot| {
            let target = workers.next();
            if same && target.index() == inner.index() {
                if let Some(pipeline) = init(&stream) {
                    inner.add_accepted::<L, S>(stream, slot, child.clone(), pipeline.layers);
                }
            } else {
                target.adopt::<F, L, R, W, S>(stream, slot, child.clone(), init.clone());
            }
        })?;
        tracing::info!(addr = %described, "listening");
        Ok(Server {
            local_addr,
            unix_path,
            boss,
            worker,
            listener_loops: vec![lp],
        })
    }
}

pub(crate) fn resolve(addr: impl ToSocketAddrs) -> Result<SocketAddr, Error> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "address resolved to nothing",
        ))
    })
}

/// A bound, listening TCP socket. A congestion control the children ask
/// for is set on it too: the kernel refuses a name here as it would for
/// every connection (so `bind` fails, naming it, instead of each accept),
/// and accepted sockets inherit it.
fn listen(
    addr: SocketAddr,
    opts: &ListenOptions,
    congestion: Option<&str>,
) -> io::Result<mio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(name) = congestion {
        crate::options::set_tcp_congestion(&socket2::SockRef::from(&socket), name)?;
    }
    socket.set_reuse_address(opts.reuse_address)?;
    if opts.reuse_port {
        socket.set_reuse_port(true)?;
    }
    opts.apply_tcp(&socket)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(opts.backlog)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

/// A user's TCP pipeline factory as the acceptors call it: with the peer's
/// address, for a stream that still has one.
fn tcp_init<F, P>(init: F) -> impl Fn(&Stream) -> Option<P> + Send + Sync + 'static
where
    F: Fn(SocketAddr) -> P + Send + Sync + 'static,
{
    move |stream: &Stream| stream.peer_addr().map(&init)
}

fn listen_unix(path: &std::path::Path, backlog: i32) -> io::Result<mio::net::UnixListener> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    socket.listen(backlog)?;
    Ok(mio::net::UnixListener::from_std(socket.into()))
}

fn register_listener(
    lp: &EventLoop,
    listener: ListenSocket,
    opts: &ListenOptions,
    acceptor: impl FnMut(&mut LoopInner, Stream, Option<CapSlot>) + Send + 'static,
) -> Result<(), Error> {
    let per_event = opts.accepts_per_event;
    let cap = opts.cap.clone();
    lp.ask("ServerBootstrap::bind", move |inner| {
        inner.add_listener(listener, Box::new(acceptor), per_event, cap)
    })??;
    Ok(())
}

impl Server {
    /// Where the server listens (the real port when bound to port 0); the
    /// unspecified address `0.0.0.0:0` for a Unix domain server, whose
    /// place is [`unix_path`](Self::unix_path).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The socket file of a server from
    /// [`ServerBootstrap::bind_unix`]; `None` for a TCP server.
    pub fn unix_path(&self) -> Option<&std::path::Path> {
        self.unix_path.as_deref()
    }

    /// The server's counters: its worker loops' (connections, bytes,
    /// queued output) and its boss loops' refused accepts, summed. Call it
    /// off the loop threads.
    ///
    /// # Errors
    /// As [`EventLoopGroup::metrics`].
    pub fn metrics(&self) -> Result<LoopMetrics, Error> {
        let workers = self.worker.metrics()?;
        if self.boss.same_group(&self.worker) {
            return Ok(workers);
        }
        Ok(workers + self.boss.metrics()?)
    }

    /// The group that serves the connections.
    pub fn worker_group(&self) -> &EventLoopGroup {
        &self.worker
    }

    /// Stops accepting; open connections stay up. Returns when the
    /// listeners are closed (at once, without waiting, when called on an
    /// event loop's thread).
    pub fn stop_accepting(&self) {
        let wait = !crate::loop_thread::is_event_loop_thread();
        for lp in &self.listener_loops {
            let _ = if wait {
                lp.ask("Server::stop_accepting", |inner| inner.close_listeners())
            } else {
                lp.execute_inner(|inner| inner.close_listeners())
            };
        }
    }

    /// Stops accepting and shuts down the worker and boss groups
    /// gracefully (see [`EventLoopGroup::shutdown_gracefully`]); returns
    /// when their threads have ended. Called on an event loop's thread
    /// (from a handler: a "shutdown" command, say), it begins the shutdown
    /// and returns at once.
    pub fn shutdown_gracefully(&self, quiet: Duration, timeout: Duration) {
        self.stop_accepting();
        if crate::loop_thread::is_event_loop_thread() {
            // Waiting here would block a loop; every group is asked first.
            self.worker.request_shutdown(quiet, timeout);
            self.boss.request_shutdown(quiet, timeout);
            return;
        }
        self.worker.shutdown_gracefully(quiet, timeout);
        if !self.boss.same_group(&self.worker) {
            self.boss.shutdown_gracefully(quiet, timeout);
        }
    }
}

/// Connects client channels.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gyre_reactor::{Bootstrap, EventLoopGroup, InboundContext, InboundHandler, Pipeline};
/// use std::io::Read;
/// use std::time::Duration;
///
/// struct Quiet;
/// impl InboundHandler for Quiet {
///     type Read = BytesMut;
///     type Pass = ();
///     type Write = Bytes;
///     fn read(&mut self, _: &mut impl InboundContext<Self>, _: BytesMut) {}
/// }
///
/// let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let group = EventLoopGroup::new(1).unwrap();
/// let handle = Bootstrap::new(group.clone())
///     .connect_timeout(Duration::from_secs(2))
///     .connect(peer.local_addr().unwrap(), |_| Pipeline::new().inbound(Quiet))
///     .unwrap();
/// handle.write_and_flush(Bytes::from_static(b"hi")).unwrap();
/// let (mut s, _) = peer.accept().unwrap();
/// let mut buf = [0; 2];
/// s.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
/// ```
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub(crate) group: EventLoopGroup,
    pub(crate) opts: ChannelOptions,
    connect_timeout: Duration,
}

impl Bootstrap {
    /// Connects on `group`'s loops (round-robin), with a 30 s timeout.
    pub fn new(group: EventLoopGroup) -> Self {
        Bootstrap {
            group,
            opts: ChannelOptions::default(),
            connect_timeout: Duration::from_secs(30),
        }
    }

    /// Channel options.
    pub fn options(mut self, opts: ChannelOptions) -> Self {
        self.opts = opts;
        self
    }

    /// How long a connect may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects to `addr`, builds the pipeline with `init` on the loop, and
    /// returns a handle that writes into the pipeline's tail once the
    /// connection is up. Blocks the caller until then (do not call it on a
    /// loop thread: use [`connect_async`](Self::connect_async) there, or
    /// from async code).
    ///
    /// # Errors
    /// [`Error::ConnectTimeout`], [`Error::Connect`] (refused,
    /// unreachable; it names the address), or [`Error::LoopShutDown`];
    /// [`Error::WouldBlockLoop`] on an event loop's thread, before any
    /// connect starts.
    pub fn connect<F, L, R, W, S>(
        &self,
        addr: SocketAddr,
        init: F,
    ) -> Result<ChannelHandle<L::TailWrite>, Error>
    where
        F: FnOnce(SocketAddr) -> Pipeline<L, R, W, S> + Send + 'static,
        L: InboundChain<BytesMut, S> + 'static,
        S: Into<Outbound> + 'static,
        L::TailWrite: Send + 'static,
        R: 'static,
        W: 'static,
    {
        crate::loop_thread::refuse_to_wait("Bootstrap::connect")?;
        self.connect_async(addr, init).wait()
    }

    /// Starts connecting to `addr` and returns at once: the loop connects
    /// (non-blocking `connect`, completed on writability, bounded by
    /// [`connect_timeout`](Self::connect_timeout)), builds the pipeline with
    /// `init` and hands over the channel's handle through the returned
    /// [`Connecting`], a future for any executor that can also be waited
    /// on from a thread. Safe to call from a loop thread (a handler that
    /// opens an upstream connection, as a proxy does).
    pub fn connect_async<F, L, R, W, S>(
        &self,
        addr: SocketAddr,
        init: F,
    ) -> Connecting<L::TailWrite>
    where
        F: FnOnce(SocketAddr) -> Pipeline<L, R, W, S> + Send + 'static,
        L: InboundChain<BytesMut, S> + 'static,
        S: Into<Outbound> + 'static,
        L::TailWrite: Send + 'static,
        R: 'static,
        W: 'static,
    {
        let endpoint = Endpoint::Inet(addr);
        let started = (|| {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_nonblocking(true)?;
            self.opts.apply(socket2::SockRef::from(&socket), true)?;
            match socket.connect(&addr.into()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                Err(e) => return Err(e),
            }
            Ok(Stream::Tcp(mio::net::TcpStream::from_std(socket.into())))
        })();
        self.start_connect(endpoint, started, move || init(addr))
    }

    /// Connects to the Unix domain socket at `path`; otherwise as
    /// [`connect`](Self::connect) (blocks until connected).
    ///
    /// # Errors
    /// The connect's I/O error (no such socket, refused), naming the path;
    /// [`Error::LoopShutDown`]; or [`Error::WouldBlockLoop`], as
    /// [`connect`](Self::connect).
    pub fn connect_unix<F, L, R, W, S>(
        &self,
        path: impl AsRef<std::path::Path>,
        init: F,
    ) -> Result<ChannelHandle<L::TailWrite>, Error>
    where
        F: FnOnce() -> Pipeline<L, R, W, S> + Send + 'static,
        L: InboundChain<BytesMut, S> + 'static,
        S: Into<Outbound> + 'static,
        L::TailWrite: Send + 'static,
        R: 'static,
        W: 'static,
    {
        crate::loop_thread::refuse_to_wait("Bootstrap::connect_unix")?;
        self.connect_unix_async(path, init).wait()
    }

    /// Starts connecting to the Unix domain socket at `path` and returns at
    /// once, as [`connect_async`](Self::connect_async) does for TCP.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use gyre_reactor::{Bootstrap, EventLoopGroup, Pipeline};
    /// use std::io::Read;
    ///
    /// let path = std::env::temp_dir().join(format!("gyre-client-doc-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = std::os::unix::net::UnixListener::bind(&path)?;
    /// let group = EventLoopGroup::new(1)?;
    /// let handle = Bootstrap::new(group.clone()).connect_unix_async(&path, || Pipeline::new()).wait()?;
    /// let (mut peer, _) = listener.accept()?;
    /// handle.write_and_flush(Bytes::from_static(b"local"))?;
    /// let mut got = [0u8; 5];
    /// peer.read_exact(&mut got)?;
    /// assert_eq!(&got, b"local");
    /// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_unix_async<F, L, R, W, S>(
        &self,
        path: impl AsRef<std::path::Path>,
        init: F,
    ) -> Connecting<L::TailWrite>
    where
        F: FnOnce() -> Pipeline<L, R, W, S> + Send + 'static,
        L: InboundChain<BytesMut, S> + 'static,
        S: Into<Outbound> + 'static,
        L::TailWrite: Send + 'static,
        R: 'static,
        W: 'static,
    {
        let path = path.as_ref().to_path_buf();
        let started = (|| {
            let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            socket.set_nonblocking(true)?;
            self.opts.apply(socket2::SockRef::from(&socket), false)?;
            // A Unix connect completes at once or fails (EAGAIN: the
            // listener's backlog is full), never "in progress".
            socket.connect(&socket2::SockAddr::unix(&path)?)?;
            Ok(Stream::Unix(mio::net::UnixStream::from_std(socket.into())))
        })();
        self.start_connect(Endpoint::Unix(path), started, init)
    }

    /// Hands a socket whose connect has started to a loop, which finishes
    /// it and builds the pipeline with `init`.
    ///
    /// `M` is what the socket hands the pipeline: `BytesMut` chunks of a
    /// stream, or UDP datagrams (a UDP socket is "connected" at its first
    /// writable poll).
    pub(crate) fn start_connect<F, L, R, W, S, M>(
        &self,
        endpoint: Endpoint,
        started: std::io::Result<Stream>,
        init: F,
    ) -> Connecting<L::TailWrite>
    where
        F: FnOnce() -> Pipeline<L, R, W, S> + Send + 'static,
        L: InboundChain<M, S> + 'static,
        M: FromSocket,
        S: Into<Outbound> + 'static,
        L::TailWrite: Send + 'static,
        R: 'static,
        W: 'static,
    {
        let stream = match started {
            Ok(stream) => stream,
            Err(e) => return Connecting::failed(endpoint.failed(e)),
        };
        let (reply, connecting) = ConnectReply::new();
        let opts = Arc::new(self.opts.clone());
        let timeout_ms = self.connect_timeout.as_millis() as u64;
        // If the loop has shut down, the task is dropped with the reply in
        // it, which answers LoopShutDown.
        let _ = self.group.next().execute_inner(move |inner| {
            let connect = Connect {
                reply,
                addr: endpoint,
                timeout_ms,
                timer: None,
            };
            inner.add_connecting::<L, S, M>(stream, opts, init().layers, connect);
        });
        connecting
    }
}
