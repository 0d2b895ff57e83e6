//! The one place the kinds of socket differ: TCP and Unix domain streams,
//! and UDP. [`Stream`] and [`ListenSocket`] hold any of them and offer what
//! the channel, the listeners and the drivers use (reads, the descriptor,
//! mio registration, addresses, shutdown); above this module the channel
//! asks only whether its socket is a datagram socket (each read and write
//! is one whole message), and the options whether it is TCP. Uses mio's
//! sockets and `socket2`.

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// What a Unix stream channel asks its send buffer (`SO_SNDBUF`) to be
/// while it sends files, unless
/// [`ChannelOptions::send_buffer_size`](crate::ChannelOptions::send_buffer_size)
/// sets one: 1 MiB, which the kernel doubles, capped at twice
/// `net.core.wmem_max`. TCP grows a busy socket's buffer by itself; a Unix
/// socket keeps its 208 KiB default, on which `sendfile` waits for the
/// reader every few pages. On the Zen 5 VM a loop's file sends over a Unix
/// socket ran at 3.8 GiB/s with the default, 10.5-11.7 with 512 KiB asked
/// and 11.5-12.1 with 1 MiB. The buffer is given back its size once no
/// file is queued.
///
/// A blocking sender of [`FileRegion`](gyre_zerocopy::FileRegion)s over a
/// Unix socket gains the same by asking for it itself:
///
/// ```
/// use std::os::unix::net::UnixStream;
///
/// let (ours, _theirs) = UnixStream::pair()?;
/// socket2::SockRef::from(&ours).set_send_buffer_size(gyre_reactor::UNIX_FILE_SEND_BUFFER)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub const UNIX_FILE_SEND_BUFFER: usize = 1 << 20;

/// A channel's socket: a connected stream, or a UDP socket (bound, and
/// perhaps connected).
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Udp(UdpSocket),
}

impl Stream {
    /// The peer's address (TCP, connected UDP; a Unix peer has none to
    /// speak of).
    pub(crate) fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok(),
            Stream::Unix(_) => None,
            Stream::Udp(s) => s.peer_addr().ok(),
        }
    }

    /// Our address (TCP, UDP).
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().ok(),
            Stream::Unix(_) => None,
            Stream::Udp(s) => s.local_addr().ok(),
        }
    }

    /// Whether a connect in progress has completed: `Ok` once it has,
    /// `NotConnected` while it has not, or why it failed.
    pub(crate) fn connect_outcome(&self) -> io::Result<()> {
        let error = match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
            Stream::Udp(s) => s.take_error(),
        };
        match error {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match self {
                Stream::Tcp(s) => s.peer_addr().map(drop),
                Stream::Unix(s) => s.peer_addr().map(drop),
                // A UDP socket has no handshake: it is ready once opened.
                Stream::Udp(_) => Ok(()),
            },
        }
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
            Stream::Udp(s) => socket2::SockRef::from(s).shutdown(how),
        }
    }

    /// Whether TCP's options (no-delay, keep-alive) apply.
    pub(crate) fn is_tcp(&self) -> bool {
        matches!(self, Stream::Tcp(_))
    }

    /// The send buffer (`SO_SNDBUF`, as asked for) a file send wants on
    /// this socket, where the kernel does not grow a busy socket's buffer
    /// itself: a Unix stream's (TCP autotunes; see `channel::file_setup`
    /// for the figures). `None`: leave it as it is.
    pub(crate) fn file_send_buffer(&self) -> Option<usize> {
        match self {
            Stream::Unix(_) => Some(UNIX_FILE_SEND_BUFFER),
            Stream::Tcp(_) | Stream::Udp(_) => None,
        }
    }

    /// Whether a file send corks this socket (`TCP_CORK`) while more than
    /// a pipeful of file is left, so that only whole segments leave it
    /// (see `channel::file_setup` for why and the figures): TCP's. A Unix
    /// socket has no segments to fill.
    pub(crate) fn corks_file_sends(&self) -> bool {
        matches!(self, Stream::Tcp(_))
    }

    /// Whether each read and write is one whole datagram (UDP).
    pub(crate) fn is_datagram(&self) -> bool {
        matches!(self, Stream::Udp(_))
    }
}

impl Stream {
    /// Gives up the descriptor without closing it: its closing is someone
    /// else's now (the direct-write gate's last user).
    pub(crate) fn into_raw_fd(self) -> RawFd {
        use std::os::fd::IntoRawFd;
        match self {
            Stream::Tcp(s) => s.into_raw_fd(),
            Stream::Unix(s) => s.into_raw_fd(),
            Stream::Udp(s) => s.into_raw_fd(),
        }
    }
}

/// One `recv` on the stream socket `fd` into `buf`'s spare capacity (all
/// of it), retried on `EINTR`; the bytes received join `buf`. The loop's
/// reads and a lent input's ([`crate::lend`]) both come here.
pub(crate) fn recv_to_spare(fd: RawFd, buf: &mut bytes::BytesMut, flags: i32) -> io::Result<usize> {
    loop {
        let spare = buf.spare_capacity_mut();
        // SAFETY: `spare` is the buffer's uninitialised tail, valid for
        // `spare.len()` bytes, and `recv` writes at most that many; the
        // caller keeps `fd` open for the call (the loop owns it, or holds
        // the input lent through the gate).
        let n = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), spare.len(), flags) };
        if n >= 0 {
            let n = n as usize;
            // SAFETY: `recv` initialised the first `n` bytes of the tail.
            unsafe { buf.set_len(buf.len() + n) };
            return Ok(n);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One non-blocking `send` of `bytes` on the stream socket `fd`, from any
/// thread: what a direct write does (see [`crate::direct`]). No `SIGPIPE`
/// for a peer that has gone.
pub(crate) fn send_from_any_thread(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is a live slice of `bytes.len()` bytes; the caller
    // holds the direct-write gate, so `fd` is the channel's open socket
    // until it leaves (the loop closes it only through the gate).
    let n = unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Closes a descriptor the direct-write gate left to its last user.
pub(crate) fn close_from_any_thread(fd: RawFd) {
    // SAFETY: the loop gave the descriptor up (`into_raw_fd`) and the gate
    // hands its closing to exactly one party: this one.
    unsafe { libc::close(fd) };
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Udp(s) => s.recv(buf),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
            Stream::Udp(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
            Stream::Udp(s) => s.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
            Stream::Udp(s) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
            Stream::Udp(s) => s.deregister(r),
        }
    }
}

/// A listening stream socket.
#[derive(Debug)]
pub(crate) enum ListenSocket {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl ListenSocket {
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        match self {
            ListenSocket::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            ListenSocket::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }

    /// A stream of this listener's kind around a descriptor an accept
    /// returned (io_uring).
    ///
    /// # Safety
    /// `fd` is a fresh, open, connected socket of this listener's family
    /// that nobody else owns.
    #[cfg(feature = "io-uring")]
    pub(crate) unsafe fn adopt(&self, fd: RawFd) -> Stream {
        use std::os::fd::FromRawFd;
        match self {
            // SAFETY: as the caller promises, the descriptor is ours alone.
            ListenSocket::Tcp(_) => Stream::Tcp(TcpStream::from_std(unsafe {
                std::net::TcpStream::from_raw_fd(fd)
            })),
            // SAFETY: as above.
            ListenSocket::Unix(_) => Stream::Unix(UnixStream::from_std(unsafe {
                std::os::unix::net::UnixStream::from_raw_fd(fd)
            })),
        }
    }

    /// Where it listens, for the log.
    pub(crate) fn describe(&self) -> String {
        match self {
            ListenSocket::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string()),
            ListenSocket::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                .unwrap_or_else(|| "(unnamed unix socket)".into()),
        }
    }
}

impl AsRawFd for ListenSocket {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            ListenSocket::Tcp(l) => l.as_raw_fd(),
            ListenSocket::Unix(l) => l.as_raw_fd(),
        }
    }
}

impl Source for ListenSocket {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            ListenSocket::Tcp(l) => l.register(r, t, i),
            ListenSocket::Unix(l) => l.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            ListenSocket::Tcp(l) => l.reregister(r, t, i),
            ListenSocket::Unix(l) => l.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            ListenSocket::Tcp(l) => l.deregister(r),
            ListenSocket::Unix(l) => l.deregister(r),
        }
    }
}
