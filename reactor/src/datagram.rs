//! What a socket's read becomes at the head of a pipeline: a chunk of a
//! byte stream (`BytesMut`, TCP and Unix stream sockets) or one UDP
//! [`Datagram`] with its sender. A leaf: knows only `bytes` and std.

use bytes::{Bytes, BytesMut};
use std::net::{Ipv4Addr, SocketAddr};

/// One UDP datagram and the address at its other end: the sender of one
/// that was read, the recipient of one to be written.
///
/// A datagram channel ([`Bootstrap::bind_datagram`]) hands its pipeline one
/// `Datagram` per datagram received and sends each `Datagram` written to it
/// as one datagram, never merged with or split across others.
///
/// ```
/// use gyre_reactor::{Datagram, InboundContext, InboundHandler};
///
/// /// Sends every datagram back to whoever sent it.
/// struct Echo;
///
/// impl InboundHandler for Echo {
///     type Read = Datagram;
///     type Pass = ();
///     type Write = Datagram;
///
///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, d: Datagram) {
///         ctx.write(Datagram::new(d.content, d.peer));
///     }
///
///     fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
///         ctx.flush();
///     }
/// }
/// # let _ = Echo;
/// ```
///
/// [`Bootstrap::bind_datagram`]: crate::Bootstrap::bind_datagram
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The payload (empty datagrams are datagrams too).
    pub content: Bytes,
    /// The sender (read) or the recipient (written).
    pub peer: SocketAddr,
}

impl Datagram {
    /// A datagram for `peer`.
    pub fn new(content: impl Into<Bytes>, peer: SocketAddr) -> Self {
        Datagram {
            content: content.into(),
            peer,
        }
    }
}

/// What a channel hands its pipeline's first layer for one socket read:
/// the bytes read and, for a datagram socket, who sent them.
pub(crate) trait FromSocket: 'static {
    /// The message for `bytes` read from `sender`.
    fn from_socket(bytes: BytesMut, sender: Option<SocketAddr>) -> Self;
}

impl FromSocket for BytesMut {
    #[inline]
    fn from_socket(bytes: BytesMut, _: Option<SocketAddr>) -> Self {
        bytes
    }
}

impl FromSocket for Datagram {
    #[inline]
    fn from_socket(bytes: BytesMut, sender: Option<SocketAddr>) -> Self {
        // A UDP read always names its sender; the unspecified address is
        // only a guard against a kernel that did not.
        let peer = sender.unwrap_or((Ipv4Addr::UNSPECIFIED, 0).into());
        Datagram {
            content: bytes.freeze(),
            peer,
        }
    }
}
