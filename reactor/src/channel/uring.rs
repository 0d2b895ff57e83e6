//! A channel's I/O on an io_uring loop: a multishot receive from the loop's
//! buffer pool, each completion's bytes copied into the read buffer (at its
//! start again once what was read before is gone, see `rewind_read_buf`),
//! a `send` of the queue's one buffer or a gathered `sendmsg` of several,
//! file regions sent by the loop as on epoll with a poll on the ring for
//! room, and cancellation on close.
//! Two kinds of channel instead poll through the ring for readiness and
//! then read and write with the same non-blocking calls an epoll loop
//! makes: a UDP channel (a receive from the buffer pool would lose each
//! datagram's sender), and a TLS connection that may go over to kernel TLS
//! (a multishot receive could take ciphertext past the moment of the
//! switch, and carries no record type).
//!
//! At most one receive and one write are in flight per channel, which keeps
//! the order of bytes on the wire the order of the queue and lets each
//! completion say exactly what moved. While an operation is in flight its
//! memory (the read buffer's spare capacity, the queued `Bytes`, the iovec
//! array, the message header) is left alone; a channel that closes
//! with operations in flight cancels them and keeps that memory until their
//! completions arrive, and only then frees it and closes the socket.

use super::{Channel, State};
use crate::buf_ring::GROUP;
use crate::cold_file::FileStep;
use crate::event_loop::LoopLocal;
use crate::outbound::{gather, Outbound};
use crate::token::Op;
use crate::uring::{self, ops, Fd, UringDriver};
use gyre_zerocopy::MAX_IOVECS;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// What a channel has in flight on the ring.
pub(crate) struct RingState {
    pub(super) recv: bool,
    /// The write in flight: `Op::Send`, `Op::SendZc`, or `Op::FileWritable`
    /// (a poll: the loop sends file regions itself).
    pub(super) write: Option<Op>,
    pub(super) connect: bool,
    pub(super) cancelled: bool,
    /// The iovecs of the `sendmsg` in flight, boxed so they do not move.
    pub(super) iov: Box<[libc::iovec; MAX_IOVECS]>,
    pub(super) msg: Box<libc::msghdr>,
    /// A zero-copy send's result, held until its buffers are released.
    pub(super) zc_result: Option<i32>,
    /// Bytes the write limits were charged with for the send in flight
    /// (at submission, so another channel's allowance counts them).
    pub(super) precharged: usize,
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
            zc_result: None,
            precharged: 0,
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
            || !self.reading()
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

    /// Copies `len` bytes of pool buffer `bid` into the read buffer: into
    /// the start of its allocation when everything before has been handed
    /// on and dropped. Walking on through each connection's 64 KiB put the
    /// copy in cold memory, and the next atomic (the split that hands the
    /// bytes on) waited for its stores: at 1000 connections × 1 KiB on the
    /// Intel Xeon VM the loop spent about 9% of its samples there, and
    /// io_uring ran 0.93-0.97x epoll at 1.01-1.07 of its CPU per message;
    /// rewound, as the epoll path's reads already were, 1.02-1.07x at
    /// 0.90-0.96 (alternated quick runs; BENCHMARKS.md, issue 22, thirtieth
    /// session).
    pub(super) fn take_buffer(&mut self, ring: &UringDriver, bid: u16, len: usize) {
        let size = self.opts.read_buffer_size.max(len);
        self.rewind_read_buf(size);
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
    /// flight: a gathered `sendmsg` of the `Bytes` at the front, or, for a
    /// file region there, sends it now.
    ///
    /// File regions go out as on an epoll loop: the loop's own
    /// non-blocking `sendfile` (or `splice` through the channel's pipe,
    /// per its [`FileSend`](crate::FileSend)), and a poll on the ring when
    /// the socket is full. The ring's own splice is no faster a path: the
    /// kernel runs every `IORING_OP_SPLICE` in an io-wq worker thread
    /// (`io_splice` refuses a non-blocking issue), so each pipeful cost a
    /// hand-off to that thread and back, and the worker took the other
    /// core. On the AMD EPYC VM it held a 1 GiB send to 1.04-1.39x a copy
    /// loop where the epoll loop's `sendfile` made 1.52-2.48x
    /// (BENCHMARKS.md, issue 22, thirteenth session). Like the epoll
    /// loop's, a send of file pages not in the page cache reads them on
    /// the loop thread, unless the channel has a
    /// [`FileLoader`](crate::FileLoader) (`cold_file`).
    pub(crate) fn submit_write(&mut self, lp: &mut LoopLocal) {
        self.attach_file_loads(lp);
        let now = lp.now();
        if self.ring.write.is_none() {
            if let Some(room) = self.write_room_now(self.write_budget_end(), now) {
                self.submit_write_within(lp.ring(), now, room);
            }
        }
        self.requeue_write(lp);
    }

    /// As `submit_write`, with a byte write of at most `room` (what is
    /// left of this event's bytes after its file sends).
    fn submit_write_within(&mut self, ring: &mut UringDriver, now: Instant, room: usize) {
        if self.ring.write.is_some() || self.ring.cancelled || self.flushed == 0 || self.failed {
            return;
        }
        let Some(sock) = self.stream.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        let id = self.id();
        match self.out.front() {
            None => return,
            Some(Outbound::File(_)) => return self.send_files(ring, now),
            Some(Outbound::Bytes(_)) => {}
            Some(Outbound::Datagram(_)) => unreachable!("a UDP channel sends with send_datagrams"),
        }
        // Taken from the write limits now, so that channels on other loops
        // see it while the send is in flight; what the socket does not
        // take is given back at its completion.
        let Some((room, charged)) = self.reserve_write(room, now) else {
            return;
        };
        // One operation moves at most the bytes per event: the kernel runs
        // it inline in the loop's submit while the socket takes more, so
        // an unbounded one held the loop as a long `sendmsg` would.
        let iov = &mut self.ring.iov;
        let (n, total, file_next) = gather(&self.out, self.flushed, room, |i, b| {
            iov[i] = libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            }
        });
        self.ring.msg.msg_iov = self.ring.iov.as_mut_ptr();
        self.ring.msg.msg_iovlen = n as _;
        let flags = (libc::MSG_NOSIGNAL | if file_next { libc::MSG_MORE } else { 0 }) as u32;
        let zero_copy = ring.send_zc && self.opts.zero_copy_send.is_some_and(|t| total >= t);
        let (entry, kind) = if zero_copy {
            let e = ops::SendMsgZc::new(Fd(sock), &*self.ring.msg).flags(flags);
            (e.build(), Op::SendZc)
        } else if n == 1 {
            // One buffer (an echo's or a request's answer, most often): a
            // plain `send`, which spares the kernel copying and checking
            // the message header and its iovec array (`sendmsg`'s setup
            // was 2-3% of an io_uring echo loop's time at c50-p8).
            let one = &self.ring.iov[0];
            let e = ops::Send::new(
                Fd(sock),
                one.iov_base as *const u8,
                one.iov_len.min(u32::MAX as usize) as u32,
            )
            .flags(flags as i32);
            (e.build(), Op::Send)
        } else {
            let e = ops::SendMsg::new(Fd(sock), &*self.ring.msg).flags(flags);
            (e.build(), Op::Send)
        };
        let entry = uring::with_data(entry, kind, id);
        // SAFETY: the header and iovecs are boxed in the channel and not
        // rewritten while the write is in flight (a plain `send` points at
        // the one iovec's buffer directly); each iovec points into a
        // `Bytes` in `out` that stays (unmodified, since only completions
        // consume the queue) until the completion, and for a zero-copy send
        // until its release notification.
        unsafe { ring.push(&entry) };
        self.ring.write = Some(kind);
        self.ring.precharged = self.unreserve_beyond(charged, total);
    }

    /// Sends the file regions at the queue's front until one is left
    /// half-sent by a full socket (then polls for room), bytes come next
    /// (queued on the ring as usual), or the channel has sent its bytes
    /// per event (then it yields, for the loop's next turn).
    fn send_files(&mut self, ring: &mut UringDriver, now: Instant) {
        // Lent out for the calls, so the queue can change while we send.
        let Some(stream) = self.stream.take() else {
            return;
        };
        let budget_end = self.write_budget_end();
        let mut full = false;
        while self.flushed > 0
            && !self.failed
            && matches!(self.out.front(), Some(Outbound::File(_)))
        {
            let Some(room) = self.write_room_now(budget_end, now) else {
                break;
            };
            match self.send_front_file(&stream, now, room) {
                FileStep::Went => {}
                FileStep::SocketFull => {
                    full = true;
                    break;
                }
                FileStep::Loading => {
                    // Neither a poll nor bytes: the loader's wake-up
                    // writes on.
                    self.stream = Some(stream);
                    return;
                }
            }
        }
        let fd = stream.as_raw_fd();
        self.stream = Some(stream);
        if self.failed || self.write_yielded || self.write_limited || self.write_held.is_some() {
            return;
        }
        if !full {
            // Bytes next: what is left of this event's bound, so that
            // files and bytes together stay within it.
            let Some(room) = self.write_room_now(budget_end, now) else {
                return;
            };
            return self.submit_write_within(ring, now, room);
        }
        let entry = ops::PollAdd::new(Fd(fd), libc::POLLOUT as u32).build();
        let entry = uring::with_data(entry, Op::FileWritable, self.id());
        // SAFETY: a poll points at no memory; the socket outlives it (see
        // `arm_recv`).
        unsafe { ring.push(&entry) };
        self.ring.write = Some(Op::FileWritable);
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
