//! The reactor's error types.

use std::fmt;
use std::io;

/// Something that went wrong on a channel or a loop.
///
/// Delivered to a pipeline as an error event ([`InboundHandler::error`]) and
/// returned by the bootstraps.
///
/// [`InboundHandler::error`]: crate::InboundHandler::error
///
/// ```
/// use gyre_reactor::{Bootstrap, EventLoopGroup, Error, Pipeline};
///
/// let group = EventLoopGroup::new(1)?;
/// let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?; // dropped: nobody listens
/// match Bootstrap::new(group.clone()).connect(closed, |_| Pipeline::new()) {
///     Err(Error::Connect { addr, source }) => {
///         assert_eq!(addr, closed);
///         assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
///     }
///     other => panic!("expected a refused connect, got {other:?}"),
/// }
/// group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket operation failed (reset by peer, broken pipe, ...).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// A decoder refused its input; see the codec error for which limit.
    #[error("codec error: {0}")]
    Codec(#[from] gyre_codec::CodecError),
    /// Sending a file region failed: the file (truncated, unreadable) or
    /// the socket under it; the error names the file.
    #[error("file transfer error: {0}")]
    File(#[from] gyre_zerocopy::Error),
    /// A server could not listen on its address (in use, not ours, no
    /// permission for a low port).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why the system refused.
        source: io::Error,
    },
    /// A client connect failed (refused, unreachable, reset).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Where we tried to connect.
        addr: std::net::SocketAddr,
        /// Why it failed.
        source: io::Error,
    },
    /// A client connect did not complete within the bootstrap's timeout.
    #[error("connect to {addr} timed out after {timeout_ms} ms")]
    ConnectTimeout {
        /// Where we tried to connect.
        addr: std::net::SocketAddr,
        /// The timeout that ran out.
        timeout_ms: u64,
    },
    /// The channel closed before the writes a notice waited for reached
    /// the socket (see [`ChannelHandle::flush_then`](crate::ChannelHandle::flush_then)).
    #[error("the channel closed before the write reached the socket")]
    Unsent,
    /// A TLS handshake or record failed, or its settings could not be
    /// loaded (feature `tls`); the error names the peer or the file.
    #[cfg(feature = "tls")]
    #[error(transparent)]
    Tls(#[from] crate::tls::error::TlsError),
    /// The event loop (or its group) has shut down.
    #[error("event loop is shut down")]
    LoopShutDown,
    /// A call that waits for an event loop's answer was made on an event
    /// loop's thread, where waiting would block that loop (and, for an
    /// answer from that same loop, forever); nothing was done. Call it from
    /// another thread, or use its form that does not wait
    /// ([`Bootstrap::connect_async`](crate::Bootstrap::connect_async),
    /// [`EventLoop::execute`](crate::EventLoop::execute)).
    #[error("{operation} waits for an event loop and was called on an event loop's thread")]
    WouldBlockLoop {
        /// The call refused (`"Bootstrap::connect"`, `"EventLoop::metrics"`).
        operation: &'static str,
    },
    /// A handler's own failure, with its cause (see [`Error::handler`]).
    #[error("handler error: {0}")]
    Handler(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// A handler's own failure: any error (its source chain kept), or a
    /// message.
    ///
    /// ```
    /// use gyre_reactor::Error;
    ///
    /// let bad = "x".parse::<u32>().unwrap_err();
    /// let e = Error::handler(bad);
    /// assert!(std::error::Error::source(&e).is_some());
    /// assert_eq!(Error::handler("quota exceeded").to_string(), "handler error: quota exceeded");
    /// ```
    pub fn handler(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Handler(cause.into())
    }

    /// The I/O error kind behind this error, if there is one (a refused
    /// connect is `ConnectionRefused`, an address in use `AddrInUse`).
    ///
    /// ```
    /// use gyre_reactor::{Pipeline, ServerBootstrap};
    ///
    /// let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = taken.local_addr().unwrap();
    /// let e = ServerBootstrap::new().bind(addr, |_| Pipeline::new()).unwrap_err();
    /// assert_eq!(e.io_kind(), Some(std::io::ErrorKind::AddrInUse));
    /// assert!(e.to_string().contains(&addr.to_string()), "{e}");
    /// ```
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Error::Io(e) | Error::Bind { source: e, .. } | Error::Connect { source: e, .. } => {
                Some(e.kind())
            }
            Error::File(gyre_zerocopy::Error::Io { source, .. }) => Some(source.kind()),
            Error::ConnectTimeout { .. } => Some(io::ErrorKind::TimedOut),
            _ => None,
        }
    }
}

/// Returned by [`ChannelHandle`](crate::ChannelHandle) operations on a
/// channel that has closed; carries back the message that could not be
/// queued, if there was one.
///
/// ```
/// use bytes::Bytes;
/// use gyre_reactor::{Bootstrap, EventLoopGroup, Pipeline};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let group = EventLoopGroup::new(1)?;
/// let handle = Bootstrap::new(group.clone()).connect(listener.local_addr()?, |_| Pipeline::new())?;
/// handle.close()?;
/// while handle.is_open() {
///     std::thread::yield_now();
/// }
/// // The message that could not be queued comes back.
/// let refused = handle.write(Bytes::from_static(b"late")).unwrap_err();
/// assert_eq!(refused.into_inner().as_deref(), Some(&b"late"[..]));
/// group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ChannelClosed<T>(pub Option<T>);

impl<T> fmt::Debug for ChannelClosed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelClosed(..)")
    }
}

impl<T> fmt::Display for ChannelClosed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel is closed")
    }
}

impl<T> std::error::Error for ChannelClosed<T> {}

impl<T> ChannelClosed<T> {
    /// The message that was not queued.
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}
