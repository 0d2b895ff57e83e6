//! A channel's reads on readiness: one `recv` into the reused read buffer
//! (reclaimed or reserved so that a steady connection allocates nothing),
//! or one datagram with its sender. The io_uring loop's receives fill the
//! same buffer from its pool (`completions`); kernel TLS reads a record
//! and its type (`kernel_tls`).

use super::Channel;
use crate::socket::Stream;
use bytes::BytesMut;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::LazyLock;

/// Datagrams dropped for their size, logged as a sender could cause them:
/// at will.
static OVERSIZED: LazyLock<crate::LogLimit> = LazyLock::new(|| crate::LogLimit::new(20, 1));

/// The largest UDP payload (IPv4's; IPv6 jumbograms aside): a datagram
/// channel always has this much room for its next read, so no datagram
/// is cut short.
const MAX_DATAGRAM: usize = 65_535;

impl Channel {
    /// Reads once into the reused buffer: a stream's next bytes, or one
    /// datagram.
    pub(super) fn read_once(&mut self) -> io::Result<Received> {
        let size = if self.datagram {
            // Room for many small datagrams after the largest could come,
            // so the buffer is reserved again (allocating, if a datagram
            // read from it is still held) only after a walk through it.
            self.opts.read_buffer_size.max(2 * MAX_DATAGRAM)
        } else {
            self.opts.read_buffer_size
        };
        self.rewind_read_buf(size);
        let room = if self.datagram {
            MAX_DATAGRAM
        } else {
            size / 8
        };
        if self.read_buf.capacity() - self.read_buf.len() < room {
            // Reclaims the old allocation when every frame split off it has
            // been dropped, so a steady connection stops allocating.
            self.read_buf.reserve(size);
        }
        let stream = self.stream.as_ref().expect("reading a closed channel");
        if self.datagram {
            return Self::recv_datagram(stream, &mut self.read_buf);
        }
        #[cfg(feature = "tls")]
        if self.kernel_tls.get() {
            return self.read_record();
        }
        let asked = self.read_buf.capacity() - self.read_buf.len();
        let len = crate::socket::recv_to_spare(stream.as_raw_fd(), &mut self.read_buf, 0)?;
        Ok(Received {
            len,
            asked,
            sender: None,
        })
    }

    /// When everything read before has been handed on, and dropped too,
    /// has the next read land at the start of the read buffer's allocation
    /// again (at least `size` bytes of it) rather than walking on through
    /// it, so the copy into it (the kernel's on epoll, the loop's from the
    /// pool buffer on io_uring) writes to memory that is still in cache:
    /// with a thousand connections a walk through each one's 64 KiB missed
    /// the cache on every read. Nothing is allocated or copied either way.
    pub(super) fn rewind_read_buf(&mut self, size: usize) {
        if self.read_buf.is_empty() {
            let _ = self.read_buf.try_reclaim(size);
        }
    }

    /// Receives one datagram into `buf`'s spare capacity (at least
    /// [`MAX_DATAGRAM`] bytes, so none is cut short; one that was anyway
    /// is dropped and logged).
    pub(super) fn recv_datagram(stream: &Stream, buf: &mut BytesMut) -> io::Result<Received> {
        let sock = socket2::SockRef::from(stream);
        loop {
            let spare = buf.spare_capacity_mut();
            let asked = spare.len();
            let mut slices = [socket2::MaybeUninitSlice::new(spare)];
            match sock.recv_from_vectored(&mut slices) {
                Ok((n, flags, sender)) => {
                    let sender = sender.as_socket();
                    if flags.is_truncated() {
                        // A sender can do this at will: held to a burst,
                        // then one line a second.
                        crate::warn_limited!(
                            OVERSIZED,
                            ?sender,
                            asked,
                            "datagram larger than the read buffer; dropped"
                        );
                        continue;
                    }
                    let len = buf.len();
                    // SAFETY: `recvmsg` initialised the first `n` bytes of
                    // the spare capacity, and `n <= asked` since the
                    // datagram was not truncated.
                    unsafe { buf.set_len(len + n) };
                    return Ok(Received {
                        len: n,
                        asked,
                        sender,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// What one socket read took in.
pub(crate) struct Received {
    /// Bytes read (for a datagram socket, the datagram's whole length).
    pub(crate) len: usize,
    /// Bytes there was room for: a short stream read means the socket is
    /// drained.
    pub(crate) asked: usize,
    /// Who sent them (datagram sockets).
    pub(crate) sender: Option<SocketAddr>,
}
