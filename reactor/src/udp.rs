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
//! Multicast memberships and options are set on the socket by its loop
//! while the channel runs (`ChannelHandle::with_socket`), so no other
//! descriptor for it is kept.

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

    /// Joins the IPv4 multicast `group` on the interface whose address is
    /// `interface` (`0.0.0.0`: the one the kernel routes the group to), as
    /// Netty's `DatagramChannel.joinGroup`: the channel then reads what is
    /// sent to the group on its port (bind to `0.0.0.0:port` or to the
    /// group's address, not to a unicast address). Done on the channel's
    /// loop while it runs; this thread waits for the outcome (refused on a
    /// loop's thread). The error names the group and the interface.
    ///
    /// ```
    /// use gyre_reactor::{Bootstrap, EventLoopGroup, Pipeline};
    /// use std::net::Ipv4Addr;
    ///
    /// let group = EventLoopGroup::new(1)?;
    /// let udp = Bootstrap::new(group.clone()).bind_datagram("0.0.0.0:0", Pipeline::datagram)?;
    /// let lan = Ipv4Addr::new(239, 255, 0, 1);
    /// udp.join_multicast_v4(lan, Ipv4Addr::LOCALHOST)?;
    /// udp.leave_multicast_v4(lan, Ipv4Addr::LOCALHOST)?;
    /// // Not a member any more: leaving again is refused, naming the group.
    /// let err = udp.leave_multicast_v4(lan, Ipv4Addr::LOCALHOST).unwrap_err();
    /// assert!(err.to_string().contains("239.255.0.1"), "{err}");
    /// group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> Result<(), Error> {
        self.on_socket("BoundDatagram::join_multicast_v4", move |s| {
            s.join_multicast_v4(&group, &interface)
                .map_err(|e| named(e, format!("joining {group} on {interface}")))
        })
    }

    /// Leaves an IPv4 multicast `group` joined on `interface`.
    pub fn leave_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> Result<(), Error> {
        self.on_socket("BoundDatagram::leave_multicast_v4", move |s| {
            s.leave_multicast_v4(&group, &interface)
                .map_err(|e| named(e, format!("leaving {group} on {interface}")))
        })
    }

    /// Joins the IPv6 multicast `group` on the interface of index
    /// `interface` (0: the kernel's choice), as
    /// [`join_multicast_v4`](Self::join_multicast_v4).
    pub fn join_multicast_v6(&self, group: Ipv6Addr, interface: u32) -> Result<(), Error> {
        self.on_socket("BoundDatagram::join_multicast_v6", move |s| {
            s.join_multicast_v6(&group, interface)
                .map_err(|e| named(e, format!("joining {group} on interface {interface}")))
        })
    }

    /// Leaves an IPv6 multicast `group` joined on interface `interface`.
    pub fn leave_multicast_v6(&self, group: Ipv6Addr, interface: u32) -> Result<(), Error> {
        self.on_socket("BoundDatagram::leave_multicast_v6", move |s| {
            s.leave_multicast_v6(&group, interface)
                .map_err(|e| named(e, format!("leaving {group} on interface {interface}")))
        })
    }

    /// The interface (by its IPv4 address) this channel's datagrams to
    /// IPv4 multicast groups leave by (`IP_MULTICAST_IF`; default: the
    /// kernel's route).
    pub fn set_multicast_interface_v4(&self, interface: Ipv4Addr) -> Result<(), Error> {
        self.on_socket("BoundDatagram::set_multicast_interface_v4", move |s| {
            s.set_multicast_if_v4(&interface)
                .map_err(|e| named(e, format!("sending to multicast groups by {interface}")))
        })
    }

    /// Whether this host's own members of a group hear what this channel
    /// sends to it (`IP_MULTICAST_LOOP`; the kernel's default: on).
    pub fn set_multicast_loop_v4(&self, on: bool) -> Result<(), Error> {
        self.on_socket("BoundDatagram::set_multicast_loop_v4", move |s| {
            s.set_multicast_loop_v4(on)
                .map_err(|e| named(e, format!("turning multicast loopback {on}")))
        })
    }

    /// How many routers this channel's datagrams to IPv4 multicast groups
    /// may cross (`IP_MULTICAST_TTL`; the kernel's default: 1, this
    /// network only).
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> Result<(), Error> {
        self.on_socket("BoundDatagram::set_multicast_ttl_v4", move |s| {
            s.set_multicast_ttl_v4(ttl)
                .map_err(|e| named(e, format!("setting the multicast TTL to {ttl}")))
        })
    }

    fn on_socket(
        &self,
        operation: &'static str,
        f: impl FnOnce(socket2::SockRef<'_>) -> io::Result<()> + Send + 'static,
    ) -> Result<(), Error> {
        self.handle.with_socket(operation, f)
    }
}

/// `e` with what was being done in front of its message.
fn named(e: io::Error, doing: String) -> io::Error {
    io::Error::new(e.kind(), format!("{doing}: {e}"))
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
