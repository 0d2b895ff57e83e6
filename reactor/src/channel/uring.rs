//! A channel's I/O on an io_uring loop: a receive straight into the read
//! buffer, gathered `sendmsg` of the queue, file regions spliced through a
//! pipe, and cancellation on close. Two kinds of channel instead poll
//! through the ring for readiness and then read and write with the same
//! non-blocking calls an epoll loop makes: a UDP channel (a receive from
//! the buffer pool would lose each datagram's sender), and a TLS
//! connection that may go over to kernel TLS (a multishot receive could
//! take ciphertext past the moment of the switch, and carries no record
//! type).
//!
//! At most one receive and one write are in flight per channel, which keeps
//! the order of bytes on the wire the order of the queue and lets each
//! completion say exactly what moved. While an operation is in flight its
//! memory (the read buffer's spare capacity, the queued `Bytes`, the iovec
//! array, the message header, the pipe) is left alone; a channel that closes
//! with operations in flight cancels them and keeps that memory until their
//! completions arrive, and only then frees it and closes the socket.

use super::{Channel, State};
use crate::buf_ring::GROUP;
use crate::outbound::Outbound;
use crate::token::Op;
use crate::uring::{self, ops, Fd, UringDriver};
use gyre_zerocopy::{Pipe, MAX_IOVECS};
use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// The pipe a file region is spliced through. One splice moves at most a
/// pipe's worth and each is a round trip through the ring, so the kernel's
/// default 64 KiB pipe held a file send to a third of epoll's `sendfile`
/// rate; a 1 MiB pipe holds only page references, not copies. Where the
/// user's pipe quota (`/proc/sys/fs/pipe-user-pages-soft`) refuses it, the
/// default pipe still works, slower. A channel keeps its pipe only while it
/// has file regions to send.
const SPLICE_PIPE: usize = 1 << 20;

/// What a channel has in flight on the ring.
pub(crate) struct RingState {
    pub(super) recv: bool,
    /// The write in flight: `Op::Send`, `Op::SendZc`, `Op::SpliceIn` or `Op::SpliceOut`.
    pub(super) write: Option<Op>,
    pub(super) connect: bool,
    pub(super) cancelled: bool,
    /// The iovecs of the `sendmsg` in flight, boxed so they do not move.
    pub(super) iov: Box<[libc::iovec; MAX_IOVECS]>,
    pub(super) msg: Box<libc::msghdr>,
    /// File regions go file -> pipe -> socket.
    pub(super) pipe: Option<Pipe>,
    pub(super) in_pipe: usize,
    /// A zero-copy send's result, held until its buffers are released.
    pub(super) zc_result: Option<i32>,
    /// The peer's EOF has arrived but input received before it is still
    /// held (reading is paused); the EOF is acted on once that is delivered.
    pub(super) eof: bool,
    /// A stream channel polls for readiness and reads and writes itself,
    /// for kernel TLS (set through `&Channel`, by the TLS layer's
    /// `active`, before the first receive; never cleared).
    pub(super) readiness: std::cell::Cell<bool>,
    /// The channel's loop is an io_uring loop (set at registration).
    pub(super) on_ring: bool,
}

impl Default for RingState {
    fn default() -> Self {
        RingState {
            recv: false,
            write: None,
            connect: false,
            cancelled: false,
            iov: Box::new(
                [libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }; MAX_IOVECS],
            ),
            // SAFETY: an all-zero msghdr is a valid, empty header.
            msg: Box::new(unsafe { std::mem::zeroed() }),
            pipe: None,
            in_pipe: 0,
            zc_result: None,
            eof: false,
            readiness: std::cell::Cell::new(false),
            on_ring: false,
        }
    }
}

impl RingState {
    /// Whether any operation of ours is still in the kernel's hands.
    pub(crate) fn in_flight(&self) -> bool {
        self.recv || self.write.is_some() || self.connect
    }
}

impl Channel {
    fn id(&self) -> usize {
        self.token.0
    }

    /// Whether this channel polls for readiness and makes its own
    /// non-blocking reads and writes, as on epoll: a UDP channel, or one
    /// that may go over to kernel TLS.
    pub(super) fn uses_readiness(&self) -> bool {
        self.datagram || self.ring.readiness.get()
    }

    /// Moves a stream channel over to readiness I/O, for kernel TLS: only
    /// before its first receive, so no ring operation of the other kind is
    /// in flight. Whether it now uses readiness I/O.
    #[cfg(feature = "tls")]
    pub(super) fn use_readiness(&self) -> bool {
        if !self.ring.recv && self.ring.write.is_none() && self.reads == 0 {
            self.ring.readiness.set(true);
        }
        self.uses_readiness()
    }

    /// Queues a multishot receive from the loop's buffer pool, if reading
    /// is wanted and none is in flight.
    pub(crate) fn arm_recv(&mut self, ring: &mut UringDriver) {
        if self.ring.recv
            || self.ring.eof
            || self.ring.cancelled
            || self.state != State::Active
            || !self.auto_read
            || self.input_closed
            || self.close_requested
            || self.failed
        {
            return;
        }
        let Some(fd) = self.stream.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        let entry = if self.uses_readiness() {
            // One-shot: it completes at once if data is already waiting, so
            // nothing that arrived between two polls is missed.
            ops::PollAdd::new(Fd(fd), libc::POLLIN as u32).build()
        } else {
            ops::RecvMulti::new(Fd(fd), GROUP).build()
        };
        let entry = uring::with_data(entry, Op::Recv, self.id());
        // SAFETY: the receive writes only into the loop's registered buffer
        // pool, which lives as long as the ring; the socket stays open as
        // long as the channel holds the stream, which it does until the
        // receive's last completion.
        unsafe { ring.push(&entry) };
        self.ring.recv = true;
    }

    /// Stops the multishot receive (auto-read switched off). Data that
    /// arrives before the cancellation lands is kept for later.
    pub(crate) fn cancel_recv(&mut self, ring: &mut UringDriver) {
        if !self.ring.recv {
            return;
        }
        let entry = ops::AsyncCancel::new(uring::user_data(Op::Recv, self.id())).build();
        let entry = uring::with_data(entry, Op::Cancel, self.id());
        // SAFETY: a cancellation points at no memory of ours.
        unsafe { ring.push(&entry) };
    }

    /// Copies `len` bytes of pool buffer `bid` into the read buffer.
    pub(super) fn take_buffer(&mut self, ring: &UringDriver, bid: u16, len: usize) {
        let size = self.opts.read_buffer_size.max(len);
        if self.read_buf.capacity() - self.read_buf.len() < len {
            // Whole read-buffer-sized blocks, as the epoll path reads into,
            // so a steady connection reuses its allocation.
            self.read_buf.reserve(size);
        }
        self.read_buf.extend_from_slice(ring.bufs.filled(bid, len));
        self.bytes_read += len as u64;
        self.reads += 1;
    }

    /// Queues a poll for the connecting socket to turn writable.
    pub(crate) fn arm_connect(&mut self, ring: &mut UringDriver) {
        let Some(fd) = self.stream.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        let entry = ops::PollAdd::new(Fd(fd), libc::POLLOUT as u32).build();
        let entry = uring::with_data(entry, Op::Connect, self.id());
        // SAFETY: a poll points at no memory; the socket outlives it (see
        // `arm_recv`).
        unsafe { ring.push(&entry) };
        self.ring.connect = true;
    }

    /// Polls for the socket of a channel [using readiness](Self::uses_readiness)
    /// to take more again, if it refused some and nothing is polling yet
    /// (the bytes or datagrams themselves go out with `write_out`).
    pub(crate) fn arm_writable(&mut self, ring: &mut UringDriver) {
        if self.socket_writable
            || self.flushed == 0
            || self.ring.write.is_some()
            || self.ring.cancelled
            || self.failed
        {
            return;
        }
        let Some(fd) = self.stream.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        let entry = ops::PollAdd::new(Fd(fd), libc::POLLOUT as u32).build();
        let entry = uring::with_data(entry, Op::Send, self.id());
        // SAFETY: a poll points at no memory; the socket outlives it (see
        // `arm_recv`).
        unsafe { ring.push(&entry) };
        self.ring.write = Some(Op::Send);
    }

    /// Queues the next write, if something is released and no write is in
    /// flight: a gathered `sendmsg` of the `Bytes` at the front, or the
    /// next splice of the file region there.
    pub(crate) fn submit_write(&mut self, ring: &mut UringDriver) {
        if self.ring.write.is_some() || self.ring.cancelled || self.flushed == 0 || self.failed {
            return;
        }
        let Some(sock) = self.stream.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        let id = self.id();
        let file = match self.out.front() {
            None => return,
            Some(Outbound::File(region)) => Some((
                region.file().as_fd().as_raw_fd(),
                region.position(),
                region.remaining(),
            )),
            Some(Outbound::Bytes(_)) => None,
            Some(Outbound::Datagram(_)) => unreachable!("a UDP channel sends with send_datagrams"),
        };
        if let Some((file_fd, position, remaining)) = file {
            if self.ring.pipe.is_none() {
                match Pipe::with_capacity(SPLICE_PIPE).or_else(|_| Pipe::new()) {
                    Ok(pipe) => self.ring.pipe = Some(pipe),
                    Err(e) => return self.fail(e),
                }
            }
            let pipe = self.ring.pipe.as_ref().expect("made above");
            let (entry, kind) = if self.ring.in_pipe > 0 {
                let n = self.ring.in_pipe as u32;
                let read_end = pipe.read_end().as_raw_fd();
                let e = ops::Splice::new(Fd(read_end), -1, Fd(sock), -1, n).build();
                (e, Op::SpliceOut)
            } else {
                let n = remaining.min(pipe.capacity() as u64) as u32;
                let write_end = pipe.write_end().as_raw_fd();
                let e =
                    ops::Splice::new(Fd(file_fd), position as i64, Fd(write_end), -1, n).build();
                (e, Op::SpliceIn)
            };
            let entry = uring::with_data(entry, kind, id);
            // SAFETY: a splice points at no memory of ours; the file is held
            // by the region at the queue's front, which is not removed while
            // the write is in flight, and the pipe lives with the channel.
            unsafe { ring.push(&entry) };
            self.ring.write = Some(kind);
            return;
        }
        let mut n = 0;
        let mut total = 0;
        let mut file_next = false;
        for item in self.out.iter().take(self.flushed.min(MAX_IOVECS)) {
            match item {
                Outbound::Bytes(b) => {
                    self.ring.iov[n] = libc::iovec {
                        iov_base: b.as_ptr() as *mut libc::c_void,
                        iov_len: b.len(),
                    };
                    n += 1;
                    total += b.len();
                }
                Outbound::File(_) => {
                    file_next = true;
                    break;
                }
                Outbound::Datagram(_) => unreachable!("refused when queued"),
            }
        }
        self.ring.msg.msg_iov = self.ring.iov.as_mut_ptr();
        self.ring.msg.msg_iovlen = n as _;
        let flags = (libc::MSG_NOSIGNAL | if file_next { libc::MSG_MORE } else { 0 }) as u32;
        let zero_copy = ring.send_zc && self.opts.zero_copy_send.is_some_and(|t| total >= t);
        let (entry, kind) = if zero_copy {
            let e = ops::SendMsgZc::new(Fd(sock), &*self.ring.msg).flags(flags);
            (e.build(), Op::SendZc)
        } else {
            let e = ops::SendMsg::new(Fd(sock), &*self.ring.msg).flags(flags);
            (e.build(), Op::Send)
        };
        let entry = uring::with_data(entry, kind, id);
        // SAFETY: the header and iovecs are boxed in the channel and not
        // rewritten while the write is in flight; each iovec points into a
        // `Bytes` in `out` that stays (unmodified, since only completions
        // consume the queue) until the completion, and for a zero-copy send
        // until its release notification.
        unsafe { ring.push(&entry) };
        self.ring.write = Some(kind);
    }

    /// Cancels whatever is in flight (their completions still arrive, with
    /// `ECANCELED` or what they had done).
    pub(crate) fn cancel_in_flight(&mut self, ring: &mut UringDriver) {
        if self.ring.cancelled {
            return;
        }
        self.ring.cancelled = true;
        let id = self.id();
        let mut kinds = Vec::with_capacity(3);
        if self.ring.recv {
            kinds.push(Op::Recv);
        }
        if let Some(write) = self.ring.write {
            kinds.push(write);
        }
        if self.ring.connect {
            kinds.push(Op::Connect);
        }
        for kind in kinds {
            let entry = ops::AsyncCancel::new(uring::user_data(kind, id)).build();
            let entry = uring::with_data(entry, Op::Cancel, id);
            // SAFETY: a cancellation points at no memory of ours.
            unsafe { ring.push(&entry) };
        }
    }
}

pub(super) fn os_error(res: i32) -> io::Error {
    io::Error::from_raw_os_error(-res)
}
