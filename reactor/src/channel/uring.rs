//! A channel's I/O on an io_uring loop: a receive straight into the read
//! buffer, gathered `sendmsg` of the queue, file regions spliced through a
//! pipe, and cancellation on close.
//!
//! At most one receive and one write are in flight per channel, which keeps
//! the order of bytes on the wire the order of the queue and lets each
//! completion say exactly what moved. While an operation is in flight its
//! memory (the read buffer's spare capacity, the queued `Bytes`, the iovec
//! array, the message header, the pipe) is left alone; a channel that closes
//! with operations in flight cancels them and keeps that memory until their
//! completions arrive, and only then frees it and closes the socket.

use super::{Channel, ChannelTask, HeadPath, State};
use crate::buf_ring::GROUP;
use crate::error::Error;
use crate::event_loop::{Driver, LoopLocal};
use crate::outbound::Outbound;
use crate::pipeline::InboundChain;
use crate::uring::{self, ops, Fd, UringDriver};
use bytes::BytesMut;
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
    recv: bool,
    /// The write in flight: `OP_SEND`, `OP_SPLICE_IN`, `OP_SPLICE_OUT`, or 0.
    write: u64,
    connect: bool,
    cancelled: bool,
    /// The iovecs of the `sendmsg` in flight, boxed so they do not move.
    iov: Box<[libc::iovec; MAX_IOVECS]>,
    msg: Box<libc::msghdr>,
    /// File regions go file -> pipe -> socket.
    pipe: Option<Pipe>,
    in_pipe: usize,
    /// A zero-copy send's result, held until its buffers are released.
    zc_result: Option<i32>,
    /// The peer's EOF has arrived but input received before it is still
    /// held (reading is paused); the EOF is acted on once that is delivered.
    eof: bool,
}

impl Default for RingState {
    fn default() -> Self {
        RingState {
            recv: false,
            write: 0,
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
        }
    }
}

impl RingState {
    /// Whether any operation of ours is still in the kernel's hands.
    pub(crate) fn in_flight(&self) -> bool {
        self.recv || self.write != 0 || self.connect
    }
}

impl Channel {
    fn id(&self) -> usize {
        self.token.0
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
        let entry = ops::RecvMulti::new(Fd(fd), GROUP).build();
        let entry = uring::with_data(entry, uring::OP_RECV, self.id());
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
        let entry = ops::AsyncCancel::new(uring::user_data(uring::OP_RECV, self.id())).build();
        let entry = uring::with_data(entry, uring::OP_CANCEL, self.id());
        // SAFETY: a cancellation points at no memory of ours.
        unsafe { ring.push(&entry) };
    }

    /// Copies `len` bytes of pool buffer `bid` into the read buffer.
    fn take_buffer(&mut self, ring: &UringDriver, bid: u16, len: usize) {
        let size = self.opts.read_buffer_size.max(len);
        if self.read_buf.capacity() - self.read_buf.len() < len {
            // Whole read-buffer-sized blocks, as the epoll path reads into,
            // so a steady connection reuses its allocation.
            self.read_buf.reserve(size);
        }
        self.read_buf.extend_from_slice(ring.bufs.filled(bid, len));
        self.bytes_read += len as u64;
    }

    /// Queues a poll for the connecting socket to turn writable.
    pub(crate) fn arm_connect(&mut self, ring: &mut UringDriver) {
        let Some(fd) = self.stream.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        let entry = ops::PollAdd::new(Fd(fd), libc::POLLOUT as u32).build();
        let entry = uring::with_data(entry, uring::OP_CONNECT, self.id());
        // SAFETY: a poll points at no memory; the socket outlives it (see
        // `arm_recv`).
        unsafe { ring.push(&entry) };
        self.ring.connect = true;
    }

    /// Queues the next write, if something is released and no write is in
    /// flight: a gathered `sendmsg` of the `Bytes` at the front, or the
    /// next splice of the file region there.
    pub(crate) fn submit_write(&mut self, ring: &mut UringDriver) {
        if self.ring.write != 0 || self.ring.cancelled || self.flushed == 0 || self.failed {
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
                (e, uring::OP_SPLICE_OUT)
            } else {
                let n = remaining.min(pipe.capacity() as u64) as u32;
                let write_end = pipe.write_end().as_raw_fd();
                let e =
                    ops::Splice::new(Fd(file_fd), position as i64, Fd(write_end), -1, n).build();
                (e, uring::OP_SPLICE_IN)
            };
            let entry = uring::with_data(entry, kind, id);
            // SAFETY: a splice points at no memory of ours; the file is held
            // by the region at the queue's front, which is not removed while
            // the write is in flight, and the pipe lives with the channel.
            unsafe { ring.push(&entry) };
            self.ring.write = kind;
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
            }
        }
        self.ring.msg.msg_iov = self.ring.iov.as_mut_ptr();
        self.ring.msg.msg_iovlen = n as _;
        let flags = (libc::MSG_NOSIGNAL | if file_next { libc::MSG_MORE } else { 0 }) as u32;
        let zero_copy = ring.send_zc && self.opts.zero_copy_send.is_some_and(|t| total >= t);
        let (entry, kind) = if zero_copy {
            let e = ops::SendMsgZc::new(Fd(sock), &*self.ring.msg).flags(flags);
            (e.build(), uring::OP_SEND_ZC)
        } else {
            let e = ops::SendMsg::new(Fd(sock), &*self.ring.msg).flags(flags);
            (e.build(), uring::OP_SEND)
        };
        let entry = uring::with_data(entry, kind, id);
        // SAFETY: the header and iovecs are boxed in the channel and not
        // rewritten while the write is in flight; each iovec points into a
        // `Bytes` in `out` that stays (unmodified, since only completions
        // consume the queue) until the completion, and for a zero-copy send
        // until its release notification.
        unsafe { ring.push(&entry) };
        self.ring.write = kind;
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
            kinds.push(uring::OP_RECV);
        }
        if self.ring.write != 0 {
            kinds.push(self.ring.write);
        }
        if self.ring.connect {
            kinds.push(uring::OP_CONNECT);
        }
        for kind in kinds {
            let entry = ops::AsyncCancel::new(uring::user_data(kind, id)).build();
            let entry = uring::with_data(entry, uring::OP_CANCEL, id);
            // SAFETY: a cancellation points at no memory of ours.
            unsafe { ring.push(&entry) };
        }
    }
}

fn os_error(res: i32) -> io::Error {
    io::Error::from_raw_os_error(-res)
}

impl<L: InboundChain<BytesMut, S>, S: Into<Outbound>> ChannelTask<L, S> {
    /// Runs one completion.
    pub(super) fn on_completion(&mut self, lp: &mut LoopLocal, kind: u64, res: i32, flags: u32) {
        match kind {
            uring::OP_SEND_ZC => {
                if uring::notif(flags) {
                    // The kernel is done with the buffers: now the send
                    // counts, and its `Bytes` may go.
                    let res = self.ch.ring.zc_result.take().unwrap_or(-libc::ECANCELED);
                    self.ch.ring.write = 0;
                    self.on_write(lp, uring::OP_SEND, res);
                } else if uring::more(flags) {
                    self.ch.ring.zc_result = Some(res);
                } else {
                    // No notification follows (the send failed outright).
                    self.ch.ring.write = 0;
                    self.on_write(lp, uring::OP_SEND, res);
                }
            }
            uring::OP_RECV => self.on_recv(lp, res, flags),
            uring::OP_SEND | uring::OP_SPLICE_IN | uring::OP_SPLICE_OUT => {
                self.ch.ring.write = 0;
                self.on_write(lp, kind, res);
            }
            uring::OP_CONNECT => {
                self.ch.ring.connect = false;
                if self.ch.state == State::Connecting && !self.ch.ring.cancelled {
                    self.finish_connect(lp);
                    if self.ch.state == State::Connecting {
                        // Spurious: still connecting.
                        if let Driver::Uring(ring) = &mut lp.driver {
                            self.ch.arm_connect(ring);
                        }
                    }
                }
            }
            _ => {}
        }
        if self.ch.state == State::Closed && !self.ch.ring.in_flight() {
            // The kernel is done with our memory and the socket.
            self.ch.stream = None;
            self.ch.release_buffers();
        }
    }

    fn on_recv(&mut self, lp: &mut LoopLocal, res: i32, flags: u32) {
        // A pool buffer handed back: copy its bytes out (unless input is no
        // longer wanted) and return it to the pool at once.
        if let (Some(bid), Driver::Uring(ring)) = (uring::buffer_id(flags), &mut lp.driver) {
            if res > 0 && self.ch.state == State::Active && !self.ch.input_closed {
                self.ch.take_buffer(ring, bid, res as usize);
            }
            ring.bufs.recycle(bid);
        }
        if !uring::more(flags) {
            self.ch.ring.recv = false;
        }
        if self.ch.state != State::Active {
            return; // closing or closed: input is no longer wanted
        }
        if res < 0 {
            match -res {
                // Auto-read switched off (or the channel closing).
                libc::ECANCELED => {}
                // The pool ran dry, or a spurious wake: try again next turn.
                libc::ENOBUFS | libc::EAGAIN | libc::EINTR => lp.reread(self.ch.token),
                _ => {
                    self.ch.fail(os_error(res));
                    self.settle(lp);
                    return;
                }
            }
        } else if res == 0 {
            self.ch.ring.eof = true;
        }
        self.uring_reread(lp);
    }

    /// Hands what has been received to the pipeline while it is reading,
    /// at most one read-buffer's worth at a time, so a handler that pauses
    /// (auto-read off when its output backs up) is obeyed between pieces.
    /// What a multishot receive took in before a pause reached the kernel
    /// waits here, bounded by the loop's buffer pool.
    fn deliver(&mut self, lp: &mut LoopLocal) {
        let mut any = false;
        while !self.ch.read_buf.is_empty() && self.ch.auto_read && self.ch.state == State::Active {
            let n = self.ch.read_buf.len().min(self.ch.opts.read_buffer_size);
            let chunk = self.ch.read_buf.split_to(n);
            self.pipeline
                .read(&mut Self::io(&mut self.ch, lp), &mut HeadPath, chunk);
            self.settle(lp);
            any = true;
        }
        if any && self.ch.state == State::Active {
            self.pipeline
                .read_complete(&mut Self::io(&mut self.ch, lp), &mut HeadPath);
            self.settle(lp);
        }
    }

    /// Reading resumed (or a retry is due): deliver what was held back,
    /// then receive again.
    pub(super) fn uring_reread(&mut self, lp: &mut LoopLocal) {
        self.deliver(lp);
        if self.ch.ring.eof && self.ch.read_buf.is_empty() && self.ch.state == State::Active {
            self.ch.ring.eof = false;
            self.input_ended(lp);
            return;
        }
        if let Driver::Uring(ring) = &mut lp.driver {
            self.ch.arm_recv(ring);
        }
    }

    fn on_write(&mut self, lp: &mut LoopLocal, kind: u64, res: i32) {
        if self.ch.state == State::Closed {
            return;
        }
        let now = lp.now();
        if res < 0 {
            if res == -libc::ECANCELED {
                return;
            }
            if matches!(-res, libc::EAGAIN | libc::EINTR) {
                if let Driver::Uring(ring) = &mut lp.driver {
                    self.ch.submit_write(ring);
                }
                return;
            }
            let e = os_error(res);
            match (kind, self.ch.out.front()) {
                (uring::OP_SPLICE_IN, Some(Outbound::File(region))) => {
                    let path = region.file().path().to_owned();
                    self.ch.failed = true;
                    self.ch.record_error(Error::File(gyre_zerocopy::Error::Io {
                        op: "splice",
                        path,
                        source: e,
                    }));
                }
                _ => self.ch.fail(e),
            }
            self.settle(lp);
            return;
        }
        let n = res as usize;
        match kind {
            uring::OP_SEND => {
                self.ch.consume_bytes(n);
                self.ch.account(n, now);
            }
            uring::OP_SPLICE_IN => {
                if n == 0 {
                    // The file ended before the region did.
                    if let Some(Outbound::File(region)) = self.ch.out.front() {
                        let error = region.truncated_error();
                        self.ch.failed = true;
                        self.ch.record_error(Error::File(error));
                    }
                    self.settle(lp);
                    return;
                }
                self.ch.ring.in_pipe = n;
            }
            _ => {
                self.ch.ring.in_pipe -= n;
                if let Some(Outbound::File(region)) = self.ch.out.front_mut() {
                    region.advance(n as u64);
                    if region.is_done() && self.ch.ring.in_pipe == 0 {
                        self.ch.out.pop_front();
                        self.ch.flushed -= 1;
                        if !matches!(self.ch.out.front(), Some(Outbound::File(_))) {
                            // Nothing is in flight on the pipe: hand it (and
                            // its share of the user's pipe quota) back until
                            // the next file, rather than hold it for the
                            // connection's life.
                            self.ch.ring.pipe = None;
                        }
                    }
                }
                self.ch.account(n, now);
            }
        }
        if self.ch.state == State::Closing && self.ch.queued_bytes == 0 {
            self.output_delivered(lp);
            return;
        }
        if let Driver::Uring(ring) = &mut lp.driver {
            self.ch.submit_write(ring);
        }
        self.settle(lp);
    }
}
