//! Gathered writes: several buffers to a socket in one `sendmsg`, never
//! concatenated.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd};

/// Most buffers one call gathers; more are sent by the next call. (Linux
/// takes up to 1024; past a few dozen the syscall is no cheaper per byte.)
pub const MAX_IOVECS: usize = 64;

/// Flags for [`send_vectored`].
///
/// ```
/// use gyre_zerocopy::{send_vectored, SendFlags};
/// use std::io::{IoSlice, Read};
/// use std::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let socket = TcpStream::connect(listener.local_addr()?)?;
/// let (mut peer, _) = listener.accept()?;
/// // MORE: more is coming, so the kernel may hold this in the socket
/// // buffer to fill a segment (MSG_MORE); NONE sends at once.
/// send_vectored(&socket, &[IoSlice::new(b"head ")], SendFlags::MORE)?;
/// send_vectored(&socket, &[IoSlice::new(b"body")], SendFlags::NONE)?;
/// let mut got = [0u8; 9];
/// peer.read_exact(&mut got)?;
/// assert_eq!(&got, b"head body");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendFlags(libc::c_int);

impl SendFlags {
    /// No flags: send now.
    pub const NONE: SendFlags = SendFlags(0);
    /// `MSG_MORE`: more data follows at once (a file after its header, say),
    /// so the kernel may hold a short segment back to fill it.
    pub const MORE: SendFlags = SendFlags(libc::MSG_MORE);
}

/// Sends `bufs` (at most [`MAX_IOVECS`] of them are used) to a socket in one
/// `sendmsg(2)` and returns how many bytes it took. A single buffer goes out
/// with `send(2)` instead: same semantics, but the kernel has no message
/// header or iovec array to copy in and check, which on a small echo was
/// a few per cent of a server's CPU.
///
/// `MSG_NOSIGNAL` is always set, so a peer that has gone away gives an
/// `EPIPE` error, never a `SIGPIPE`. On a non-blocking socket that is full
/// the error is `WouldBlock`; `EINTR` is retried.
pub fn send_vectored(
    socket: &impl AsFd,
    bufs: &[IoSlice<'_>],
    flags: SendFlags,
) -> io::Result<usize> {
    let n = bufs.len().min(MAX_IOVECS);
    let fd = socket.as_fd().as_raw_fd();
    loop {
        // SAFETY: the `n` slices borrow live buffers for the length of the
        // call, and the kernel only reads through them: `send` reads
        // `one.len()` bytes from `one`'s start. For `sendmsg`, a zeroed
        // msghdr is a valid empty header and `IoSlice` is guaranteed
        // ABI-compatible with `iovec` on Unix.
        let sent = unsafe {
            if let [one] = &bufs[..n] {
                libc::send(
                    fd,
                    one.as_ptr().cast(),
                    one.len(),
                    libc::MSG_NOSIGNAL | flags.0,
                )
            } else {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
                msg.msg_iovlen = n as _;
                libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL | flags.0)
            }
        };
        if sent >= 0 {
            return Ok(sent as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A queue of `Bytes` sent with gathered writes: a header and a body go out
/// in one syscall without being copied together.
///
/// ```
/// use bytes::Bytes;
/// use gyre_zerocopy::GatheredWrite;
/// use std::io::Read;
/// use std::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let sender = TcpStream::connect(listener.local_addr()?)?;
/// let (mut receiver, _) = listener.accept()?;
///
/// let mut out = GatheredWrite::new();
/// out.push(Bytes::from_static(b"HEADER:"));
/// out.push(Bytes::from_static(b"body"));
/// while !out.is_empty() {
///     out.send_to(&sender)?;
/// }
/// drop(sender);
/// let mut got = String::new();
/// receiver.read_to_string(&mut got)?;
/// assert_eq!(got, "HEADER:body");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct GatheredWrite {
    bufs: VecDeque<Bytes>,
    remaining: usize,
}

impl GatheredWrite {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `buf` behind what is already queued (empty buffers are
    /// dropped).
    pub fn push(&mut self, buf: Bytes) {
        if !buf.is_empty() {
            self.remaining += buf.len();
            self.bufs.push_back(buf);
        }
    }

    /// Bytes queued and not yet sent.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Whether everything queued has been sent.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// Sends as much as the socket takes in one gathered `sendmsg`, drops
    /// what went from the queue, and returns how many bytes that was.
    /// `Ok(0)` with bytes queued means a non-blocking socket is full.
    pub fn send_to(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        if self.bufs.is_empty() {
            return Ok(0);
        }
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut n = 0;
        for (slot, buf) in slices.iter_mut().zip(&self.bufs) {
            *slot = IoSlice::new(buf);
            n += 1;
        }
        let sent = match send_vectored(socket, &slices[..n], SendFlags::NONE) {
            Ok(sent) => sent,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        };
        self.consume(sent);
        Ok(sent)
    }

    fn consume(&mut self, mut n: usize) {
        self.remaining -= n;
        while n > 0 {
            let front = self.bufs.front_mut().expect("sent more than was queued");
            if n >= front.len() {
                n -= front.len();
                self.bufs.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
}
