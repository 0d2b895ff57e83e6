//! A channel with its pipeline: what the loop keeps per connection and
//! drives through `ChannelOps`. Reads feed the pipeline, its writes and
//! closes reach the channel, handles' mailboxes are drained into it, and
//! the close, drain and linger sequences run here. Uses the channel below
//! it, the pipeline's chain and the handle's mailbox.

use super::lend::ReadTurn;
use super::{Channel, State, CONNECT_TIMER, DRAIN_TIMER, LINGER_POLL, LINGER_TIMER, SHAPING_TIMER};
use crate::batch::run_batch;
use crate::chain::InboundChain;
use crate::connecting::{ConnectReply, Endpoint};
use crate::datagram::FromSocket;
use crate::driver::Driver;
use crate::event_loop::{ChannelOps, LoopLocal};
use crate::handle::{ChannelHandle, Command};
use crate::handler::UserEvent;
use crate::mailbox::Mailbox;
use crate::metrics::Traffic;
use crate::options::ChannelOptions;
use crate::outbound::Outbound;
use crate::path::{HeadPath, Io};
use crate::socket::Stream;
use crate::timer::TimerId;
use bytes::BytesMut;
use mio::Token;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

/// A channel with its pipeline: what the loop keeps per connection. `R`
/// is what the pipeline's first layer reads: `BytesMut` chunks of a
/// stream, or UDP [`Datagram`](crate::Datagram)s.
pub(crate) struct ChannelTask<L: InboundChain<R, S>, S, R = BytesMut> {
    pub(super) ch: Channel,
    pub(super) pipeline: L,
    pub(super) tail: Option<Arc<Mailbox<Command<L::TailWrite>>>>,
    pub(super) connect: Option<Connect<L::TailWrite>>,
    /// What the pipeline's head reads, and writes into the channel's queue.
    _head: PhantomData<fn(R, S)>,
}

/// A client channel's connect in progress.
pub(crate) struct Connect<W> {
    pub(crate) reply: ConnectReply<W>,
    pub(crate) addr: Endpoint,
    pub(crate) timeout_ms: u64,
    pub(crate) timer: Option<TimerId>,
}

impl<L: InboundChain<R, S>, S: Into<Outbound>, R: FromSocket> ChannelTask<L, S, R> {
    pub(crate) fn accepted(
        stream: Stream,
        token: Token,
        opts: Arc<ChannelOptions>,
        pipeline: L,
        now: Instant,
    ) -> Self {
        ChannelTask {
            ch: Channel::new(stream, token, opts, now),
            pipeline,
            tail: None,
            connect: None,
            _head: PhantomData,
        }
    }

    /// Keeps the accepted connection's place under its listener's cap
    /// until the channel closes.
    pub(crate) fn hold_cap_slot(&mut self, slot: Option<crate::connection_cap::CapSlot>) {
        self.ch.cap_slot = slot;
    }

    pub(crate) fn connecting(
        stream: Stream,
        token: Token,
        opts: Arc<ChannelOptions>,
        pipeline: L,
        now: Instant,
        connect: Connect<L::TailWrite>,
    ) -> Self {
        let mut ch = Channel::new(stream, token, opts, now);
        ch.state = State::Connecting;
        ChannelTask {
            ch,
            pipeline,
            tail: None,
            connect: Some(connect),
            _head: PhantomData,
        }
    }

    /// A handle whose writes enter at the pipeline's tail, through every
    /// outbound handler, and whose user events enter at its head, as the
    /// transport's would (what a connect returns).
    pub(crate) fn tail_handle(&mut self, lp: &LoopLocal) -> ChannelHandle<L::TailWrite> {
        let mailbox = Arc::new(Mailbox::new());
        self.tail = Some(mailbox.clone());
        ChannelHandle::new(mailbox, self.ch.token, lp.shared(), self.ch.direct_gate())
    }

    pub(crate) fn register(&mut self, lp: &mut LoopLocal) -> io::Result<()> {
        self.ch.register(lp)
    }

    pub(super) fn io<'a>(ch: &'a mut Channel, lp: &'a mut LoopLocal) -> Io<'a> {
        Io { ch, lp }
    }

    /// Reads until the socket is drained, reading is paused, or the
    /// per-event cap; `hup` says the triggering event reported EOF.
    pub(super) fn do_read(&mut self, lp: &mut LoopLocal, hup: bool) {
        self.ch.must_drain |= hup;
        let mut reads = 0;
        let mut any = false;
        let mut eof = false;
        let mut drained = false;
        match self.ch.retake_input() {
            ReadTurn::Lent => {
                self.settle(lp);
                return;
            }
            ReadTurn::Read(Some(given_back)) if self.ch.state == State::Active => {
                // A holder's leftovers come before the socket's next bytes.
                any = true;
                self.ch.bytes_read += given_back.len() as u64;
                let msg = R::from_socket(given_back, None);
                self.pipeline
                    .read(&mut Self::io(&mut self.ch, lp), &mut HeadPath, msg);
                self.settle(lp);
            }
            ReadTurn::Read(_) => {}
        }
        while self.ch.state == State::Active
            && self.ch.reading()
            && !self.ch.input_closed
            && !self.ch.close_requested
            && !self.ch.failed
        {
            if reads == self.ch.opts.max_reads_per_event {
                // Let the other channels have a turn; come back next loop.
                lp.reread(self.ch.token);
                break;
            }
            reads += 1;
            match self.ch.read_once() {
                Ok(got) if got.len == 0 && !self.ch.datagram => {
                    eof = true;
                    drained = true;
                    break;
                }
                Ok(got) => {
                    any = true;
                    self.ch.bytes_read += got.len as u64;
                    self.ch.reads += 1;
                    let msg = R::from_socket(self.ch.read_buf.split(), got.sender);
                    self.pipeline
                        .read(&mut Self::io(&mut self.ch, lp), &mut HeadPath, msg);
                    self.settle(lp);
                    if got.len < got.asked && !self.ch.must_drain && !self.ch.datagram {
                        // A short read drained the socket; the next data (or
                        // the FIN) will raise a new edge. (Each datagram is
                        // a short read: a datagram socket reads on until it
                        // would block.)
                        drained = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) if self.ch.datagram && e.kind() == io::ErrorKind::ConnectionRefused => {
                    // A connected UDP socket's earlier datagram met a closed
                    // port (ICMP); the report is the kernel's one-off, and
                    // the channel goes on.
                    tracing::debug!(peer = ?self.ch.peer, "datagram refused by the peer's host");
                }
                Err(e) => {
                    self.ch.fail(e);
                    drained = true;
                    break;
                }
            }
        }
        self.ch.must_drain = !drained;
        if drained && !eof {
            // Offered before `read_complete`, so a handler that hands its
            // answers over there wakes their waiters after the offer: a
            // waiter that sends its next request at once finds the input
            // offered. Offered after, a waiter woken fast enough (or a
            // loop thread preempted in between) met no offer call after
            // call, and every answer went through the loop. Whatever
            // `read_complete` decides (a pause, a close) withdraws the
            // offer in the `settle` after it.
            self.ch.offer_input(self.pipeline.holds_input());
        }
        if any && self.ch.state == State::Active {
            self.pipeline
                .read_complete(&mut Self::io(&mut self.ch, lp), &mut HeadPath);
        }
        if eof {
            self.input_ended(lp);
        } else {
            self.settle(lp);
        }
    }

    /// The peer closed its output: tell the pipeline, and close unless
    /// half-closure is allowed (both transports end here).
    pub(super) fn input_ended(&mut self, lp: &mut LoopLocal) {
        self.ch.input_closed = true;
        tracing::debug!(peer = ?self.ch.peer, "peer closed its output");
        self.pipeline.user_event(
            &mut Self::io(&mut self.ch, lp),
            &mut HeadPath,
            UserEvent::InputClosed,
        );
        if !self.ch.opts.allow_half_closure {
            self.ch.request_close();
        }
        self.settle(lp);
    }

    /// Runs what handlers left for after their call: errors, writability
    /// changes, and a requested close.
    pub(super) fn settle(&mut self, lp: &mut LoopLocal) {
        loop {
            if let Some(error) = self.ch.pending_error.take() {
                if self.ch.state != State::Closed {
                    self.pipeline
                        .error(&mut Self::io(&mut self.ch, lp), &mut HeadPath, error);
                }
                continue;
            }
            if let Some(writable) = self.ch.pending_writability.take() {
                if matches!(self.ch.state, State::Active | State::Closing) {
                    self.pipeline.writability_changed(
                        &mut Self::io(&mut self.ch, lp),
                        &mut HeadPath,
                        writable,
                    );
                }
                continue;
            }
            break;
        }
        if self.ch.failed {
            self.finish_close(lp);
        } else if self.ch.close_requested && self.ch.state == State::Active {
            self.begin_close(lp);
        }
        self.ch.release_direct();
        self.ch.withdraw_input_if_stopped();
        self.ch.shape_reads(lp);
    }

    pub(super) fn begin_close(&mut self, lp: &mut LoopLocal) {
        self.ch.flushed = self.ch.out.len();
        self.ch.kick_write(lp);
        if self.ch.failed {
            self.finish_close(lp);
            return;
        }
        if self.ch.queued_bytes == 0 {
            self.output_delivered(lp);
            return;
        }
        self.ch.state = State::Closing;
        let timeout = self.ch.opts.close_drain_timeout;
        self.ch.drain_timer = Some(self.ch.schedule_timer(lp, DRAIN_TIMER, 0, timeout, None));
    }

    /// A closing channel's output is all out: close now, or first linger
    /// (see [`ChannelOptions::lingering_close`]) when the peer may still be
    /// sending.
    pub(super) fn output_delivered(&mut self, lp: &mut LoopLocal) {
        // Under kernel TLS the TLS layer has handed its close to the kernel.
        #[cfg(feature = "tls")]
        self.ch.kernel_tls_close_notify();
        let linger = self.ch.opts.lingering_close;
        // A datagram socket has no stream to end: nothing to linger for.
        let shut = !linger.is_zero()
            && !self.ch.datagram
            && !self.ch.input_closed
            && self
                .ch
                .stream
                .as_ref()
                .is_some_and(|s| s.shutdown(std::net::Shutdown::Write).is_ok());
        if !shut {
            self.finish_close(lp);
            return;
        }
        // Input is read directly from here on.
        self.ch.pause_read(lp);
        if let Some(id) = self.ch.drain_timer.take() {
            lp.cancel_timer(id);
        }
        self.ch.state = State::Lingering;
        self.ch.linger_deadline = Some(lp.now() + linger);
        self.linger(lp);
    }

    /// Discards what has arrived; closes at the peer's EOF, on an error,
    /// past the byte cap or the deadline, and otherwise looks again soon
    /// (on epoll a readable event may come first).
    pub(super) fn linger(&mut self, lp: &mut LoopLocal) {
        if self.ch.state != State::Lingering {
            return;
        }
        let deadline = self.ch.linger_deadline.unwrap_or_else(|| lp.now());
        match self.ch.discard_input() {
            Ok(false) if lp.now() < deadline => {
                if self.ch.drain_timer.is_none() {
                    let wait = (deadline - lp.now()).min(LINGER_POLL);
                    self.ch.drain_timer =
                        Some(self.ch.schedule_timer(lp, LINGER_TIMER, 0, wait, None));
                }
            }
            _ => self.finish_close(lp),
        }
    }

    pub(super) fn finish_close(&mut self, lp: &mut LoopLocal) {
        let was = self.ch.state;
        if was == State::Closed {
            return;
        }
        self.ch.state = State::Closed;
        let dropped = self.ch.queued_bytes;
        self.ch.flushed = 0;
        self.ch.queued_bytes = 0;
        self.ch.release(lp);
        for id in self.ch.repeating_timers.drain(..) {
            lp.cancel_timer(id);
        }
        if let Some(id) = self.ch.drain_timer.take() {
            lp.cancel_timer(id);
        }
        self.ch.cancel_holds(lp);
        // Its place under the listener's cap is free for the next.
        self.ch.cap_slot = None;
        self.pipeline.close_mailboxes();
        if let Some(tail) = &self.tail {
            tail.close();
            while tail.pop().is_some() {}
        }
        if was == State::Connecting {
            return;
        }
        tracing::debug!(
            peer = ?self.ch.peer,
            read = self.ch.bytes_read,
            written = self.ch.bytes_written,
            dropped,
            "channel closed"
        );
        self.pipeline
            .inactive(&mut Self::io(&mut self.ch, lp), &mut HeadPath);
        // Errors raised while going inactive have nowhere left to go.
        self.ch.pending_error = None;
        self.ch.pending_writability = None;
    }

    pub(super) fn finish_connect(&mut self, lp: &mut LoopLocal) {
        let stream = self
            .ch
            .stream
            .as_ref()
            .expect("connecting without a socket");
        match stream.connect_outcome() {
            Ok(()) => {
                self.ch.state = State::Active;
                self.ch.peer = stream.peer_addr();
                self.ch.local = stream.local_addr();
                self.ch.last_output = lp.now();
                let connect = self.connect.take();
                if let Some(id) = connect.as_ref().and_then(|c| c.timer) {
                    lp.cancel_timer(id);
                }
                let handle = self.tail_handle(lp);
                if let Some(c) = connect {
                    c.reply.send(Ok(handle));
                }
                tracing::debug!(peer = ?self.ch.peer, "connected");
                self.activate(lp);
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                // Spurious wake-up: still in progress.
            }
            Err(e) => {
                if let Some(c) = self.connect.take() {
                    if let Some(id) = c.timer {
                        lp.cancel_timer(id);
                    }
                    c.reply.send(Err(c.addr.failed(e)));
                }
                self.finish_close(lp);
            }
        }
    }

    /// The connect could not start (registering the socket failed).
    pub(crate) fn fail_connect(mut self, source: io::Error) {
        if let Some(c) = self.connect.take() {
            c.reply.send(Err(c.addr.failed(source)));
        }
    }

    pub(crate) fn set_connect_timer(&mut self, id: TimerId) {
        if let Some(c) = self.connect.as_mut() {
            c.timer = Some(id);
        }
    }

    pub(crate) fn channel(&self) -> &Channel {
        &self.ch
    }
}

impl<L: InboundChain<R, S>, S: Into<Outbound>, R: FromSocket> ChannelOps for ChannelTask<L, S, R> {
    fn traffic(&self) -> Traffic {
        self.ch.traffic()
    }

    fn socket_fd(&self) -> Option<std::os::fd::RawFd> {
        self.ch.socket_fd()
    }

    fn activate(&mut self, lp: &mut LoopLocal) {
        self.pipeline
            .active(&mut Self::io(&mut self.ch, lp), &mut HeadPath);
        self.settle(lp);
        self.ch.resume_read(lp);
        if self.ch.lends_input() {
            // A first pass, so the input is offered before any arrives.
            self.do_read(lp, false);
        }
    }

    fn ready(&mut self, lp: &mut LoopLocal, readable: bool, hup: bool, writable: bool) {
        match self.ch.state {
            State::Connecting => {
                if writable || readable {
                    self.finish_connect(lp);
                }
            }
            State::Active | State::Closing => {
                if writable {
                    self.ch.socket_writable = true;
                    if self.ch.flushed > 0 {
                        self.ch.write_out(lp);
                    }
                    if self.ch.close_drained() {
                        self.output_delivered(lp);
                        return;
                    }
                }
                if readable && self.ch.state == State::Active {
                    self.do_read(lp, hup);
                } else {
                    self.settle(lp);
                }
            }
            State::Lingering => {
                if readable {
                    self.linger(lp);
                }
            }
            State::Closed => {}
        }
    }

    fn mail(&mut self, lp: &mut LoopLocal) {
        // Before the mailboxes are drained, and while closing too: a close
        // may be waiting for a direct writer to leave.
        self.ch.claim_direct(lp);
        // A file loader's wake-up: the file goes on (closing too, as a
        // graceful close drains its output).
        if self.ch.cold.take_wait() {
            self.ch.kick_write(lp);
        }
        if self.ch.close_drained() {
            self.output_delivered(lp);
            return;
        }
        if self.ch.state != State::Active {
            return;
        }
        let mut more = self
            .pipeline
            .drain_mailboxes(&mut Self::io(&mut self.ch, lp), &mut HeadPath);
        if let Some(tail) = self.tail.clone() {
            tail.begin_drain();
            let (pipeline, ch) = (&mut self.pipeline, &mut self.ch);
            more |= run_batch(
                || tail.pop(),
                |cmd| match cmd {
                    // From the head, as an event the transport raised.
                    Command::UserEvent(event) => {
                        pipeline.user_event(&mut Self::io(ch, lp), &mut HeadPath, event)
                    }
                    cmd => pipeline.tail_command(&mut Self::io(ch, lp), &mut HeadPath, cmd),
                },
            ) && tail.reschedule();
        }
        if more {
            // The rest on a later turn, after the other channels and the
            // sockets have had theirs.
            lp.reschedule(self.ch.token);
        }
        if self.ch.input_given_back() {
            // A thread the input was lent to handed bytes or news back.
            self.do_read(lp, false);
            return;
        }
        self.settle(lp);
    }

    fn timer(&mut self, lp: &mut LoopLocal, layer: usize, tag: u64) {
        match layer {
            DRAIN_TIMER => {
                if self.ch.state == State::Closing {
                    self.ch.drain_timer = None;
                    // The deadline counts from the output's last progress:
                    // a peer still taking bytes (slowly, or held by a write
                    // limit) is not one that stopped reading.
                    let timeout = self.ch.opts.close_drain_timeout;
                    let quiet = lp.now().saturating_duration_since(self.ch.last_output);
                    if quiet < timeout {
                        let rest = timeout - quiet;
                        self.ch.drain_timer =
                            Some(self.ch.schedule_timer(lp, DRAIN_TIMER, 0, rest, None));
                        return;
                    }
                    tracing::debug!(
                        peer = ?self.ch.peer,
                        dropped = self.ch.queued_bytes,
                        "peer stopped reading; closing with output undelivered"
                    );
                    self.finish_close(lp);
                }
            }
            LINGER_TIMER => {
                self.ch.drain_timer = None;
                self.linger(lp);
            }
            SHAPING_TIMER => {
                if matches!(self.ch.state, State::Active | State::Closing) {
                    self.ch.shaping_timer(lp, tag);
                    if self.ch.close_drained() {
                        self.output_delivered(lp);
                        return;
                    }
                    self.settle(lp);
                }
            }
            CONNECT_TIMER => {
                if self.ch.state == State::Connecting {
                    if let Some(c) = self.connect.take() {
                        c.reply.send(Err(c.addr.timed_out(c.timeout_ms)));
                    }
                    self.finish_close(lp);
                }
            }
            _ => {
                if self.ch.state == State::Active {
                    self.pipeline
                        .timer(&mut Self::io(&mut self.ch, lp), &mut HeadPath, layer, tag);
                    self.settle(lp);
                }
            }
        }
    }

    fn rewrite(&mut self, lp: &mut LoopLocal) {
        if !matches!(self.ch.state, State::Active | State::Closing) {
            return;
        }
        self.ch.write_again(lp);
        if self.ch.close_drained() {
            self.output_delivered(lp);
            return;
        }
        self.settle(lp);
    }

    fn reread(&mut self, lp: &mut LoopLocal) {
        if self.ch.state != State::Active {
            return;
        }
        match &mut lp.driver {
            Driver::Epoll(_) => self.do_read(lp, false),
            #[cfg(feature = "io-uring")]
            Driver::Uring(_) => self.uring_reread(lp),
        }
    }

    #[cfg(feature = "io-uring")]
    fn complete(&mut self, lp: &mut LoopLocal, kind: crate::token::Op, res: i32, flags: u32) {
        self.on_completion(lp, kind, res, flags);
    }

    fn close(&mut self, lp: &mut LoopLocal, force: bool) {
        match self.ch.state {
            State::Active if !force => {
                self.ch.request_close();
                self.settle(lp);
            }
            State::Closed => {}
            _ => self.finish_close(lp),
        }
    }

    fn is_closed(&self) -> bool {
        #[cfg(feature = "io-uring")]
        if self.ch.ring.in_flight() {
            return false;
        }
        self.ch.state == State::Closed
    }
}
