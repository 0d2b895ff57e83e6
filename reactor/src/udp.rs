//! UDP channels: [`Bootstrap::bind_datagram`] and
//! [`Bootstrap::connect_datagram`] open a UDP socket with `socket2`, hand
//! it to a loop as a channel whose pipeline reads and writes
//! [`Datagram`]s, and return its handle with the address it got
//! ([`BoundDatagram`]). Uses the bootstrap's connect hand-off beside it.
//!
//! A UDP channel keeps the contracts of a stream channel: the same
//! pipeline, handles, watermarks, auto-read, idle events and graceful
//! shutdown. What differs is the socket's: each read is one datagram with
//! its sender, each write one datagram to its recipient (never gathered
//! with others), and there is no end of input and no lingering close.

use crate::bootstrap::Bootstrap;
use crate::chain::InboundChain;
use crate::connecting::Endpoint;
use crate::datagram::Datagram;
use crate::error::Error;
use crate::handle::ChannelHandle;
use crate::outbound::Outbound;
use crate::pipeline::Pipeline;
use crate::socket::Stream;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// A UDP channel just opened: the handle that writes into its pipeline's
/// tail (and closes it), and the address its socket is bound to.
///
/// ```
/// use bytes::Bytes;
/// use gyre_reactor::{Bootstrap, Datagram, EventLoopGroup, Pipeline};
///
/// let group = EventLoopGroup::new(1)?;
/// let udp = Bootstrap::new(group.clone()).bind_datagram("127.0.0.1:0", Pipeline::datagram)?;
/// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// udp.handle().write_and_flush(Datagram::new(Bytes::from_static(b"ping"), peer.local_addr()?))?;
/// let mut buf = [0u8; 16];
/// let (n, from) = peer.recv_from(&mut buf)?;
/// assert_eq!((&buf[..n], from), (&b"ping"[..], udp.local_addr()));
/// group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct BoundDatagram<W> {
    handle: ChannelHandle<W>,
    local_addr: SocketAddr,
}

impl<W> BoundDatagram<W> {
    /// The channel's handle: writes enter at its pipeline's tail.
    pub fn handle(&self) -> &ChannelHandle<W> {
        &self.handle
    }

    /// The address the socket is bound to (the real port when bound to
    /// port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The handle, keeping nothing else.
    pub fn into_handle(self) -> ChannelHandle<W> {
        self.handle
    }
}

impl Bootstrap {
    /// Opens a UDP socket bound to `addr` as a channel on the next loop of
    /// the group, with the pipeline `init` builds there (start it with
    /// [`Pipeline::datagram`]), and returns once it is active.
    ///
    /// The pipeline's first handler reads one [`Datagram`] per datagram
    /// received, with its sender; each `Datagram` written is sent as one
    /// datagram to its `peer` at the next flush (one `sendto` each, never
    /// merged). A datagram the socket refuses (larger than the path allows,
    /// no route) is dropped and logged at debug; the channel goes on.
    /// Every read has room for the largest UDP payload, so none is cut
    /// short. The channel closes with its handle's `close`, a handler's
    /// `close`, or the group's graceful shutdown (after sending what is
    /// queued, bounded by the drain timeout). Call it from any thread but a
    /// loop's own (it waits for the loop).
    ///
    /// ```
    /// use gyre_reactor::{Bootstrap, Datagram, EventLoopGroup, InboundContext, InboundHandler, Pipeline};
    ///
    /// /// Answers every datagram with its length, to its sender.
    /// struct Lengths;
    ///
    /// impl InboundHandler for Lengths {
    ///     type Read = Datagram;
    ///     type Pass = ();
    ///     type Write = Datagram;
    ///
    ///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, d: Datagram) {
    ///         ctx.write(Datagram::new(d.content.len().to_string(), d.peer));
    ///     }
    ///
    ///     fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
    ///         ctx.flush();
    ///     }
    /// }
    ///
    /// let group = EventLoopGroup::new(1)?;
    /// let server = Bootstrap::new(group.clone())
    ///     .bind_datagram("127.0.0.1:0", || Pipeline::datagram().inbound(Lengths))?;
    /// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// client.send_to(b"hello", server.local_addr())?;
    /// let mut buf = [0u8; 8];
    /// let n = client.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"5");
    /// group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Bind`] naming the address (in use, not ours),
    /// [`Error::LoopShutDown`], or [`Error::WouldBlockLoop`] on an event
    /// loop's thread (it waits for the socket's loop), before anything is
    /// resolved or bound.
    pub fn bind_datagram<F, L, R, W, S>(
        &self,
        addr: impl ToSocketAddrs,
        init: F,
    ) -> Result<BoundDatagram<L::TailWrite>, Error>
    where
        F: FnOnce() -> Pipeline<L, R, W, S> + Send + 'static,
        L: InboundChain<Datagram, S> + 'static,
        S: Into<Outbound> + 'static,
        L::TailWrite: Send + 'static,
        R: 'static,
        W: 'static,
    {
        crate::loop_thread::refuse_to_wait("Bootstrap::bind_datagram")?;
        let addr = crate::bootstrap::resolve(addr)?;
        let socket = self
            .open_udp(addr)
            .map_err(|source| Error::Bind { addr, source })?;
        self.start_datagram(socket, Endpoint::Inet(addr), init)
    }

    /// Opens a UDP socket connected to `peer` (bound to an ephemeral port
    /// on the unspecified address of its family), as
    /// [`bind_datagram`](Self::bind_datagram) does otherwise. The kernel
    /// then delivers only `peer`'s datagrams; a [`Datagram`] written goes
    /// to its own `peer` as always. A connected socket also learns when
    /// `peer`'s port is closed (an ICMP report, after a send); the channel
    /// logs that at debug and goes on, as UDP does not promise delivery.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use gyre_reactor::{Bootstrap, Datagram, EventLoopGroup, Pipeline};
    ///
    /// let server = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let group = EventLoopGroup::new(1)?;
    /// let udp = Bootstrap::new(group.clone()).connect_datagram(server.local_addr()?, Pipeline::datagram)?;
    /// udp.handle().write_and_flush(Datagram::new(Bytes::from_static(b"hi"), server.local_addr()?))?;
    /// let mut buf = [0u8; 4];
    /// let (n, from) = server.recv_from(&mut buf)?;
    /// assert_eq!((&buf[..n], from.port()), (&b"hi"[..], udp.local_addr().port()));
    /// group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Connect`] naming `peer` (no route),
    /// [`Error::LoopShutDown`], or [`Error::WouldBlockLoop`] on an event
    /// loop's thread, before any socket is made.
    pub fn connect_datagram<F, L, R, W, S>(
        &self,
        peer: SocketAddr,
        init: F,
    ) -> Result<BoundDatagram<L::TailWrite>, Error>
    where
        F: FnOnce() -> Pipeline<L, R, W, S> + Send + 'static,
        L: InboundChain<Datagram, S> + 'static,
        S: Into<Outbound> + 'static,
        L::TailWrite: Send + 'static,
        R: 'static,
        W: 'static,
    {
        crate::loop_thread::refuse_to_wait("Bootstrap::connect_datagram")?;
        let any: SocketAddr = match peer {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let endpoint = Endpoint::Inet(peer);
        let socket = self
            .open_udp(any)
            .and_then(|socket| socket.connect(&peer.into()).map(|()| socket))
            .map_err(|e| endpoint.failed(e))?;
        self.start_datagram(socket, endpoint, init)
    }

    /// A non-blocking UDP socket bound to `addr`, with the bootstrap's
    /// buffer sizes.
    fn open_udp(&self, addr: SocketAddr) -> io::Result<Socket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_nonblocking(true)?;
        self.opts.apply(socket2::SockRef::from(&socket), false)?;
        socket.bind(&addr.into())?;
        Ok(socket)
    }

    /// Hands the socket to a loop and waits for its channel to be active.
    fn start_datagram<F, L, R, W, S>(
        &self,
        socket: Socket,
        endpoint: Endpoint,
        init: F,
    ) -> Result<BoundDatagram<L::TailWrite>, Error>
    where
        F: FnOnce() -> Pipeline<L, R, W, S> + Send + 'static,
        L: InboundChain<Datagram, S> + 'static,
        S: Into<Outbound> + 'static,
        L::TailWrite: Send + 'static,
        R: 'static,
        W: 'static,
    {
        let local_addr = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or_else(|| endpoint.failed(io::Error::other("UDP socket has no local address")))?;
        let stream = Stream::Udp(mio::net::UdpSocket::from_std(socket.into()));
        let handle = self
            .start_connect::<F, L, R, W, S, Datagram>(endpoint, Ok(stream), init)
            .wait()?;
        Ok(BoundDatagram { handle, local_addr })
    }
}
