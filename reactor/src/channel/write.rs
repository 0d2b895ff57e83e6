//! A channel's writes: the bound on what one event writes and the loop's
//! turn that comes back for the rest, the readiness write path (runs of
//! `Bytes` gathered into one `sendmsg`, file regions with `sendfile` or
//! spliced, datagrams one `send` each), and the bookkeeping every write
//! ends in (bytes taken, the queue, notices, writability). Shared by both
//! transports: `uring` submits its byte writes on the ring and comes back
//! here to count what they took. Uses the outbound queue's layout, the
//! zero-copy crate's sends and the loop's come-back list.

use super::Channel;
use crate::cold_file::FileStep;
use crate::driver::Driver;
use crate::error::Error;
use crate::event_loop::LoopLocal;
use crate::file_loader::Waker;
use crate::file_send_probe::send_region;
use crate::options::FileSend;
use crate::outbound::{gather, Outbound};
use crate::socket::Stream;
use bytes::Buf;
use gyre_zerocopy::{send_vectored, RegionPipe, SendFlags, MAX_IOVECS};
use std::io;
use std::io::IoSlice;
use std::time::Instant;

/// Opens a channel's splice pipe; a failure (descriptors exhausted) is
/// logged once for the channel, which then sends files with `sendfile`.
fn open_region_pipe(bytes: usize) -> Result<RegionPipe, ()> {
    RegionPipe::new(bytes).map_err(|e| {
        tracing::warn!(error = %e, "cannot open a splice pipe; this channel sends files with sendfile");
    })
}

impl Channel {
    /// Writes what is released: now (epoll, or a channel
    /// [using readiness](Self::uses_readiness) on io_uring, which then
    /// polls for room if the socket refused some), or by queueing the next
    /// write on the ring if none is in flight (io_uring).
    pub(super) fn kick_write(&mut self, lp: &mut LoopLocal) {
        match lp.driver {
            Driver::Epoll(_) => self.write_out(lp),
            #[cfg(feature = "io-uring")]
            Driver::Uring(_) if self.uses_readiness() => {
                self.write_out(lp);
                self.arm_writable(lp.ring());
            }
            #[cfg(feature = "io-uring")]
            Driver::Uring(_) => self.submit_write(lp),
        }
    }

    /// Ends every write: if it yielded at the channel's bytes per event
    /// with the socket still taking more, the loop comes back to it on its
    /// next turn (no readiness event would: the socket never stopped being
    /// writable); if the write limit stopped it, the hold's timer does.
    pub(super) fn requeue_write(&mut self, lp: &mut LoopLocal) {
        self.hold_limited_writes(lp);
        if std::mem::take(&mut self.write_yielded) && !self.write_requeued {
            self.write_requeued = true;
            lp.rewrite(self.token);
        }
    }

    /// The loop's next turn after a yield: write on (as `kick_write`).
    pub(crate) fn write_again(&mut self, lp: &mut LoopLocal) {
        self.write_requeued = false;
        if self.flushed > 0 {
            self.kick_write(lp);
        }
    }

    /// Writes what is released now, on the socket's readiness, up to the
    /// bytes per event.
    pub(crate) fn write_out(&mut self, lp: &mut LoopLocal) {
        if !self.take_gate() {
            return;
        }
        self.attach_file_loads(lp);
        // Lent out for the call, so the queue can change while we write.
        let Some(stream) = self.stream.take() else {
            return;
        };
        self.write_to(&stream, lp.now());
        self.stream = Some(stream);
        self.requeue_write(lp);
    }

    /// Tells the channel's file loads whom to wake (once, before its first
    /// write, where a [`FileLoader`](crate::FileLoader) is set): this
    /// channel, on its loop.
    pub(super) fn attach_file_loads(&mut self, lp: &LoopLocal) {
        if self.opts.file_loader.is_some() && self.cold.needs_waker() {
            self.cold.set_waker(Waker::Channel(lp.shared(), self.token));
        }
    }

    /// Where this event's writing stops, counted in bytes written (or, for
    /// datagrams, refused) over the channel's life: see
    /// [`ChannelOptions::max_write_bytes_per_event`].
    pub(super) fn write_budget_end(&self) -> u64 {
        (self.bytes_written + self.bytes_refused)
            .saturating_add(self.opts.max_write_bytes_per_event as u64)
    }

    /// What is left of this event's writing before `end` (0: spent).
    pub(super) fn write_room(&self, end: u64) -> usize {
        let spent = self.bytes_written + self.bytes_refused;
        usize::try_from(end.saturating_sub(spent)).unwrap_or(usize::MAX)
    }

    /// Writes released items until the queue or the socket runs out, or
    /// the channel has written its bytes per event (then it yields, to go
    /// on next turn): runs of `Bytes` in gathered `sendmsg` calls, file
    /// regions with `sendfile` or, when the channel's [`FileSend`] resolves
    /// to splicing, `splice` through the channel's pipe.
    pub(super) fn write_to(&mut self, stream: &Stream, now: Instant) {
        if self.datagram {
            return self.send_datagrams(stream, now);
        }
        let budget_end = self.write_budget_end();
        while self.flushed > 0 && self.socket_writable && !self.failed {
            let Some(room) = self.write_room_now(budget_end, now) else {
                return;
            };
            if matches!(self.out.front(), Some(Outbound::File(_))) {
                match self.send_front_file(stream, now, room) {
                    FileStep::Went => continue,
                    FileStep::SocketFull => self.socket_writable = false,
                    // The loader's wake-up writes on.
                    FileStep::Loading => {}
                }
                return;
            }
            let Some((room, charged)) = self.reserve_write(room, now) else {
                return;
            };
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let (n, _, file_next) = gather(&self.out, self.flushed, room, |i, b| {
                slices[i] = IoSlice::new(b)
            });
            // A header followed by a file: let the kernel put the start of
            // the file in the header's segment instead of sending it alone.
            let flags = if file_next {
                SendFlags::MORE
            } else {
                SendFlags::NONE
            };
            let sent = send_vectored(stream, &slices[..n], flags);
            let written = *sent.as_ref().unwrap_or(&0);
            self.consume_bytes(written);
            self.account_charged(written, charged, now);
            match sent {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket_writable = false,
                Err(e) => self.fail(e),
            }
        }
    }

    /// Sends the next part of the file region at the queue's front (taken
    /// off the queue once done) with `sendfile` or, when the channel's
    /// [`FileSend`] resolves to splicing, `splice` through the channel's
    /// pipe: the file path of both transports, each call non-blocking.
    /// A call moves at most `limit` bytes, and reads no more of the file
    /// (a splice sends first what the pipe holds from the call before,
    /// counted in). With a [`FileLoader`](crate::FileLoader), only bytes
    /// known to be in the page cache are sent, and a cold window waits
    /// for a loader (`cold_file`). A file that fails (truncated,
    /// unreadable) fails the channel, with the file's error recorded.
    pub(super) fn send_front_file(
        &mut self,
        stream: &Stream,
        now: Instant,
        limit: usize,
    ) -> FileStep {
        let front = match self.out.front() {
            Some(Outbound::File(region)) => Some(region),
            _ => None,
        };
        let Some(cached) = self.cold.ready(self.opts.file_loader.as_ref(), front) else {
            return FileStep::Loading;
        };
        let Some(Outbound::File(region)) = self.out.front_mut() else {
            return FileStep::Went;
        };
        let keep_room = self.opts.send_buffer_size.is_some();
        // A congestion control the user chose is theirs.
        let unpace = !self.opts.pace_local_file_sends && self.opts.tcp_congestion.is_none();
        let setup = &mut self.file_setup;
        setup.begin(stream, region.remaining(), keep_room, unpace);
        let Some((limit, charged)) = self.reserve_write(limit, now) else {
            // Another channel took the allowance: the caller looks again,
            // and holds.
            return FileStep::Went;
        };
        let Some(Outbound::File(region)) = self.out.front_mut() else {
            return FileStep::Went;
        };
        let pipe = match self.opts.file_send.for_send() {
            FileSend::Auto | FileSend::Sendfile => None,
            FileSend::Splice { pipe } => self
                .region_pipe
                .get_or_insert_with(|| open_region_pipe(pipe))
                .as_mut()
                .ok(),
        };
        match send_region(region, pipe, stream, limit, cached) {
            Ok(n) => {
                let done = region.is_done();
                if n == 0 && !done {
                    self.account_charged(0, charged, now);
                    return FileStep::SocketFull;
                }
                self.cold.sent(n, done);
                if done {
                    self.out.pop_front();
                    self.flushed -= 1;
                    self.end_file_sends(stream);
                }
                self.account_charged(n, charged, now);
            }
            Err(e) => {
                self.account_charged(0, charged, now);
                self.failed = true;
                self.record_error(Error::File(e));
            }
        }
        FileStep::Went
    }

    /// Once no flushed file region is left queued, closes the splice pipe,
    /// takes the cork off the socket and gives its send buffer back its
    /// size: the pipe and the room would otherwise stay with every
    /// keep-alive channel that ever sent a file, and the cork would hold
    /// its last partial segment for 200 ms. A file written but not yet
    /// flushed does not count: what was flushed before it must leave now,
    /// not when it is flushed (it sets the socket up again then). A
    /// finished region leaves the pipe empty (it is sent until done), so
    /// nothing in it is lost.
    pub(super) fn end_file_sends(&mut self, stream: &Stream) {
        let mut flushed = self.out.iter().take(self.flushed);
        if flushed.any(|o| matches!(o, Outbound::File(_))) {
            return;
        }
        if matches!(self.region_pipe, Some(Ok(_))) {
            self.region_pipe = None;
        }
        self.file_setup.end(stream);
    }

    /// Sends released datagrams, one system call each, until the queue or
    /// the socket's buffer runs out. A datagram the socket refuses (too
    /// large, no route, the connected peer's port closed) is dropped and
    /// logged: UDP promises no delivery, and one bad datagram must not end
    /// the channel or hold up the datagrams behind it.
    pub(super) fn send_datagrams(&mut self, stream: &Stream, now: Instant) {
        let sock = socket2::SockRef::from(stream);
        let budget_end = self.write_budget_end();
        while self.flushed > 0 && self.socket_writable {
            if self.write_room_now(budget_end, now).is_none() {
                return;
            }
            let Some(item) = self.out.front() else {
                break;
            };
            let (sent, to) = match item {
                Outbound::Datagram(d) => (sock.send_to(&d.content, &d.peer.into()), Some(d.peer)),
                Outbound::Bytes(b) => (sock.send(b), self.peer),
                Outbound::File(_) => unreachable!("refused when queued"),
            };
            let len = item.remaining();
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.socket_writable = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(_) => {
                    self.out.pop_front();
                    self.flushed -= 1;
                    self.account(len, now);
                }
                Err(e) => {
                    tracing::debug!(?to, len, error = %e, "datagram refused by the socket; dropped");
                    self.out.pop_front();
                    self.flushed -= 1;
                    self.refused(len);
                }
            }
        }
    }

    /// Drops `n` sent bytes from the run of `Bytes` at the queue's front.
    pub(super) fn consume_bytes(&mut self, mut n: usize) {
        while n > 0 {
            let Some(Outbound::Bytes(front)) = self.out.front_mut() else {
                unreachable!("a gathered write covers only the bytes at the front");
            };
            if n >= front.len() {
                n -= front.len();
                self.out.pop_front();
                self.flushed -= 1;
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }

    /// Counts `n` bytes the socket took: progress for the idle handler, and
    /// what leaves the queue.
    pub(super) fn account(&mut self, n: usize, now: Instant) {
        self.account_charged(n, 0, now);
    }

    /// As [`account`](Self::account), for a write whose `charged` bytes
    /// the limits were charged with as it was submitted: what the socket
    /// did not take of them is given back, and only bytes beyond them are
    /// charged.
    pub(super) fn account_charged(&mut self, n: usize, charged: usize, now: Instant) {
        if charged > n {
            if let Some(shaping) = &mut self.shaping {
                shaping.refund_write(charged - n);
            }
        }
        if n == 0 {
            return;
        }
        self.bytes_written += n as u64;
        self.last_output = now;
        if n > charged {
            self.charge_write(n - charged, now);
        }
        self.dequeued(n);
    }

    /// Counts a datagram of `n` bytes the socket refused: it leaves the
    /// queue unsent.
    pub(super) fn refused(&mut self, n: usize) {
        self.bytes_refused += n as u64;
        self.dequeued(n);
    }

    /// Where the queue's front is, counted in bytes since the channel
    /// opened: what notices wait for.
    pub(super) fn dequeued_total(&self) -> u64 {
        self.bytes_written + self.bytes_refused
    }

    /// `n` bytes have left the queue: answers the notices they were
    /// waiting for, and reports writability once the queue is back under
    /// the low watermark.
    pub(super) fn dequeued(&mut self, n: usize) {
        self.queued_bytes -= n;
        let done = self.dequeued_total();
        while let Some((mark, _)) = self.sent_notices.front() {
            if *mark > done {
                break;
            }
            if let Some((_, notice)) = self.sent_notices.pop_front() {
                notice.send(Ok(()));
            }
        }
        if !self.writable && self.queued_bytes <= self.opts.low_watermark {
            self.writable = true;
            // Reported even when the handlers were never told `false`: one
            // of them may have read `is_writable()` between the two
            // crossings and stopped (leaving pipelined input unserved), and
            // this event is what tells it to go on.
            self.pending_writability = Some(true);
        }
    }
}
