//! A connection: its socket, read buffer, outbound queue and state, and the
//! glue that runs its pipeline when the loop has news for it.
//!
//! [`Channel`] is the part handlers can see (through their context) and the
//! outbound path writes into. [`ChannelTask`] pairs it with the pipeline and
//! is what the loop stores, behind one `dyn` call per readiness event.

#[cfg(feature = "io-uring")]
mod uring;

use crate::error::Error;
use crate::event_loop::{Driver, LoopLocal, CONNECT_TIMER, DRAIN_TIMER, LINGER_TIMER};
use crate::handle::{ChannelHandle, Command};
use crate::handler::UserEvent;
use crate::mailbox::Mailbox;
use crate::options::ChannelOptions;
use crate::outbound::Outbound;
use crate::pipeline::{run_batch, HeadPath, InboundChain, Io};
use crate::timer::TimerId;
use bytes::{Buf, BytesMut};
use gyre_zerocopy::{send_vectored, SendFlags, MAX_IOVECS};
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::collections::VecDeque;
use std::io;
use std::io::IoSlice;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Connecting,
    Active,
    /// Closed for reading, delivering what is queued.
    Closing,
    /// Output delivered and shut down; discarding input until the peer's
    /// EOF or the lingering-close deadline.
    Lingering,
    Closed,
}

/// How often a lingering close looks for the peer's EOF when no readable
/// event tells it (io_uring has none once its receive is cancelled).
const LINGER_POLL: std::time::Duration = std::time::Duration::from_millis(50);
/// Input a lingering close discards before it gives up on the peer's EOF.
const LINGER_MAX_BYTES: usize = 256 * 1024;

/// A channel as its handlers see it.
pub struct Channel {
    stream: Option<TcpStream>,
    token: Token,
    opts: Arc<ChannelOptions>,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    state: State,
    read_buf: BytesMut,
    out: VecDeque<Outbound>,
    /// How many items at the front of `out` a flush has released.
    flushed: usize,
    queued_bytes: usize,
    writable: bool,
    pending_writability: Option<bool>,
    socket_writable: bool,
    auto_read: bool,
    /// A readiness edge has been spent without reading the socket dry (we
    /// were paused, or hit the reads-per-event cap, or the edge announced
    /// EOF): until a read sees `WouldBlock` or EOF, a short read does not
    /// prove the socket is drained, and no new edge may come to say so.
    must_drain: bool,
    input_closed: bool,
    close_requested: bool,
    failed: bool,
    pending_error: Option<Error>,
    last_output: Instant,
    bytes_read: u64,
    bytes_written: u64,
    pub(crate) repeating_timers: Vec<TimerId>,
    /// The drain deadline while closing, the next look while lingering.
    drain_timer: Option<TimerId>,
    /// When a lingering close gives up on the peer's EOF.
    linger_deadline: Option<Instant>,
    /// Input discarded while lingering.
    lingered: usize,
    /// Operations in flight on an io_uring loop.
    #[cfg(feature = "io-uring")]
    ring: uring::RingState,
}

impl Channel {
    fn new(stream: TcpStream, token: Token, opts: Arc<ChannelOptions>, now: Instant) -> Self {
        Channel {
            peer: stream.peer_addr().ok(),
            local: stream.local_addr().ok(),
            stream: Some(stream),
            token,
            auto_read: opts.auto_read,
            read_buf: BytesMut::new(),
            opts,
            state: State::Active,
            out: VecDeque::new(),
            flushed: 0,
            queued_bytes: 0,
            writable: true,
            pending_writability: None,
            socket_writable: true,
            must_drain: false,
            input_closed: false,
            close_requested: false,
            failed: false,
            pending_error: None,
            last_output: now,
            bytes_read: 0,
            bytes_written: 0,
            repeating_timers: Vec::new(),
            drain_timer: None,
            linger_deadline: None,
            lingered: 0,
            #[cfg(feature = "io-uring")]
            ring: uring::RingState::default(),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Our end's address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Whether the channel is active and nobody has asked it to close.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Active | State::Connecting) && !self.close_requested
    }

    /// Whether the outbound queue is below the high watermark (or has come
    /// back under the low one since it last crossed the high).
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Bytes written by the pipeline and not yet taken by the socket.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Bytes read from the socket so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Bytes the socket has taken so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// When the socket last took bytes from us (or the channel opened). A
    /// large write that is still going moves this forward, which is how the
    /// idle handler tells a slow transfer from an idle peer.
    pub fn last_output_progress(&self) -> Instant {
        self.last_output
    }

    /// Whether the channel reads when the socket has data.
    pub fn auto_read(&self) -> bool {
        self.auto_read
    }

    /// The options the channel was opened with.
    pub fn options(&self) -> &ChannelOptions {
        &self.opts
    }

    pub(crate) fn token(&self) -> Token {
        self.token
    }

    /// Takes bytes or a file region from the pipeline; sent at the next
    /// flush.
    #[inline]
    pub(crate) fn enqueue(&mut self, msg: Outbound) {
        let len = msg.remaining();
        if !matches!(self.state, State::Active) || self.close_requested || len == 0 {
            return;
        }
        self.queued_bytes += len;
        self.out.push_back(msg);
        if self.writable && self.queued_bytes > self.opts.high_watermark {
            self.writable = false;
            self.pending_writability = Some(false);
        }
    }

    /// Releases everything queued and writes as much as the socket takes.
    #[inline]
    pub(crate) fn flush(&mut self, lp: &mut LoopLocal) {
        self.flushed = self.out.len();
        self.kick_write(lp);
    }

    /// Writes what is released: now (epoll), or by queueing the next write
    /// on the ring if none is in flight (io_uring).
    fn kick_write(&mut self, lp: &mut LoopLocal) {
        let now = lp.now();
        match &mut lp.driver {
            Driver::Epoll(_) => self.write_out(now),
            #[cfg(feature = "io-uring")]
            Driver::Uring(ring) => self.submit_write(ring),
        }
    }

    pub(crate) fn request_close(&mut self) {
        self.close_requested = true;
    }

    pub(crate) fn record_error(&mut self, error: Error) {
        if self.pending_error.is_none() {
            self.pending_error = Some(error);
        }
    }

    pub(crate) fn set_auto_read(&mut self, on: bool, lp: &mut LoopLocal) {
        #[cfg(feature = "io-uring")]
        if !on && self.auto_read {
            if let Driver::Uring(ring) = &mut lp.driver {
                self.cancel_recv(ring);
            }
        }
        if on && !self.auto_read && self.state == State::Active {
            // Edge-triggered readiness will not repeat for data that is
            // already waiting, so look for it ourselves.
            lp.reread(self.token);
        }
        self.auto_read = on;
    }

    /// Reads and drops what the peer sends while lingering: `Ok(true)` at
    /// its EOF (or past the byte cap: time to close), `Ok(false)` when
    /// nothing more has arrived for now.
    fn discard_input(&mut self) -> io::Result<bool> {
        use std::io::Read;
        let Some(stream) = self.stream.as_mut() else {
            return Ok(true);
        };
        let mut sink = [0u8; 4096];
        loop {
            match stream.read(&mut sink) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    self.lingered += n;
                    if self.lingered >= LINGER_MAX_BYTES {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Drops the read buffer and the outbound queue.
    fn release_buffers(&mut self) {
        self.out.clear();
        self.read_buf = BytesMut::new();
    }

    fn fail(&mut self, e: io::Error) {
        self.failed = true;
        self.record_error(Error::Io(e));
    }

    fn write_out(&mut self, now: Instant) {
        // Lent out for the call, so the queue can change while we write.
        let Some(stream) = self.stream.take() else {
            return;
        };
        self.write_to(&stream, now);
        self.stream = Some(stream);
    }

    /// Writes released items until the queue or the socket runs out: runs
    /// of `Bytes` in gathered `sendmsg` calls, file regions with `sendfile`.
    fn write_to(&mut self, stream: &TcpStream, now: Instant) {
        while self.flushed > 0 && self.socket_writable && !self.failed {
            if let Some(Outbound::File(region)) = self.out.front_mut() {
                match region.transfer_to(stream) {
                    Ok(n) => {
                        let done = region.is_done();
                        if n == 0 && !done {
                            self.socket_writable = false;
                            return;
                        }
                        if done {
                            self.out.pop_front();
                            self.flushed -= 1;
                        }
                        self.account(n, now);
                    }
                    Err(e) => {
                        self.failed = true;
                        self.record_error(Error::File(e));
                    }
                }
                continue;
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut n = 0;
            let mut file_next = false;
            for item in self.out.iter().take(self.flushed.min(MAX_IOVECS)) {
                match item {
                    Outbound::Bytes(b) => {
                        slices[n] = IoSlice::new(b);
                        n += 1;
                    }
                    Outbound::File(_) => {
                        file_next = true;
                        break;
                    }
                }
            }
            // A header followed by a file: let the kernel put the start of
            // the file in the header's segment instead of sending it alone.
            let flags = if file_next {
                SendFlags::MORE
            } else {
                SendFlags::NONE
            };
            match send_vectored(stream, &slices[..n], flags) {
                Ok(written) => {
                    self.consume_bytes(written);
                    self.account(written, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket_writable = false,
                Err(e) => self.fail(e),
            }
        }
    }

    /// Drops `n` sent bytes from the run of `Bytes` at the queue's front.
    fn consume_bytes(&mut self, mut n: usize) {
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
    /// writability once the queue is back under the low watermark.
    fn account(&mut self, n: usize, now: Instant) {
        if n == 0 {
            return;
        }
        self.bytes_written += n as u64;
        self.queued_bytes -= n;
        self.last_output = now;
        if !self.writable && self.queued_bytes <= self.opts.low_watermark {
            self.writable = true;
            // Reported even when the handlers were never told `false`: one
            // of them may have read `is_writable()` between the two
            // crossings and stopped (leaving pipelined input unserved), and
            // this event is what tells it to go on.
            self.pending_writability = Some(true);
        }
    }

    /// Reads once into the reused buffer: the bytes read and how many were
    /// asked for (a short read means the socket is drained).
    fn read_once(&mut self) -> io::Result<(usize, usize)> {
        let size = self.opts.read_buffer_size;
        if self.read_buf.is_empty() {
            // Everything read before was handed on: if it has all been
            // dropped too, read into the start of the allocation again
            // rather than walking on through it, so the kernel copies into
            // memory that is still in cache (with a thousand connections a
            // walk through each one's 64 KiB missed the cache on every read).
            // Nothing is allocated or copied either way.
            let _ = self.read_buf.try_reclaim(size);
        }
        if self.read_buf.capacity() - self.read_buf.len() < size / 8 {
            // Reclaims the old allocation when every frame split off it has
            // been dropped, so a steady connection stops allocating.
            self.read_buf.reserve(size);
        }
        let fd = self
            .stream
            .as_ref()
            .expect("reading a closed channel")
            .as_raw_fd();
        let spare = self.read_buf.spare_capacity_mut();
        let asked = spare.len();
        loop {
            // SAFETY: `spare` is the buffer's uninitialised tail, valid for
            // `asked` bytes; `recv` writes at most that many.
            let n = unsafe { libc::recv(fd, spare.as_mut_ptr() as *mut libc::c_void, asked, 0) };
            if n >= 0 {
                let n = n as usize;
                let len = self.read_buf.len();
                // SAFETY: `recv` initialised the first `n` bytes of the tail.
                unsafe { self.read_buf.set_len(len + n) };
                return Ok((n, asked));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// A channel with its pipeline: what the loop keeps per connection.
pub(crate) struct ChannelTask<L: InboundChain<BytesMut, S>, S> {
    ch: Channel,
    pipeline: L,
    tail: Option<Arc<Mailbox<Command<L::TailWrite>>>>,
    connect: Option<Connect<L::TailWrite>>,
    /// What the pipeline's head writes into the channel's queue.
    _head: PhantomData<fn(S)>,
}

/// A client channel's connect in progress.
pub(crate) struct Connect<W> {
    pub(crate) reply: Sender<Result<ChannelHandle<W>, Error>>,
    pub(crate) addr: SocketAddr,
    pub(crate) timeout_ms: u64,
    pub(crate) timer: Option<TimerId>,
}

/// What the loop needs from a channel, whatever its pipeline's type.
pub(crate) trait ChannelOps {
    fn activate(&mut self, lp: &mut LoopLocal);
    fn ready(&mut self, lp: &mut LoopLocal, readable: bool, hup: bool, writable: bool);
    fn mail(&mut self, lp: &mut LoopLocal);
    fn timer(&mut self, lp: &mut LoopLocal, layer: usize, tag: u64);
    fn reread(&mut self, lp: &mut LoopLocal);
    fn close(&mut self, lp: &mut LoopLocal, force: bool);
    /// An io_uring operation of kind `kind` completed with `res`.
    #[cfg(feature = "io-uring")]
    fn complete(&mut self, lp: &mut LoopLocal, kind: u64, res: i32, flags: u32);
    fn is_closed(&self) -> bool;
}

impl<L: InboundChain<BytesMut, S>, S: Into<Outbound>> ChannelTask<L, S> {
    pub(crate) fn accepted(
        stream: TcpStream,
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

    pub(crate) fn connecting(
        stream: TcpStream,
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

    pub(crate) fn register(&mut self, lp: &mut LoopLocal) -> io::Result<()> {
        let stream = self
            .ch
            .stream
            .as_mut()
            .expect("registering a closed channel");
        match &mut lp.driver {
            Driver::Epoll(registry) => registry.register(
                stream,
                self.ch.token,
                Interest::READABLE | Interest::WRITABLE,
            ),
            #[cfg(feature = "io-uring")]
            Driver::Uring(ring) => {
                // Accepted channels start reading when active; a connecting
                // one waits for its socket to turn writable.
                if self.ch.state == State::Connecting {
                    self.ch.arm_connect(ring);
                }
                Ok(())
            }
        }
    }

    fn io<'a>(ch: &'a mut Channel, lp: &'a mut LoopLocal) -> Io<'a> {
        Io { ch, lp }
    }

    /// Reads until the socket is drained, reading is paused, or the
    /// per-event cap; `hup` says the triggering event reported EOF.
    fn do_read(&mut self, lp: &mut LoopLocal, hup: bool) {
        self.ch.must_drain |= hup;
        let mut reads = 0;
        let mut any = false;
        let mut eof = false;
        let mut drained = false;
        while self.ch.state == State::Active
            && self.ch.auto_read
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
                Ok((0, _)) => {
                    eof = true;
                    drained = true;
                    break;
                }
                Ok((n, asked)) => {
                    any = true;
                    self.ch.bytes_read += n as u64;
                    let chunk = self.ch.read_buf.split();
                    self.pipeline
                        .read(&mut Self::io(&mut self.ch, lp), &mut HeadPath, chunk);
                    self.settle(lp);
                    if n < asked && !self.ch.must_drain {
                        // A short read drained the socket; the next data (or
                        // the FIN) will raise a new edge.
                        drained = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) => {
                    self.ch.fail(e);
                    drained = true;
                    break;
                }
            }
        }
        self.ch.must_drain = !drained;
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
    fn input_ended(&mut self, lp: &mut LoopLocal) {
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
    fn settle(&mut self, lp: &mut LoopLocal) {
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
    }

    fn begin_close(&mut self, lp: &mut LoopLocal) {
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
        self.ch.drain_timer =
            Some(lp.schedule_channel_timer(&mut self.ch, DRAIN_TIMER, 0, timeout, None));
    }

    /// A closing channel's output is all out: close now, or first linger
    /// (see [`ChannelOptions::lingering_close`]) when the peer may still be
    /// sending.
    fn output_delivered(&mut self, lp: &mut LoopLocal) {
        let linger = self.ch.opts.lingering_close;
        let shut = !linger.is_zero()
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
        #[cfg(feature = "io-uring")]
        if let Driver::Uring(ring) = &mut lp.driver {
            // Input is read directly from here on.
            self.ch.cancel_recv(ring);
        }
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
    fn linger(&mut self, lp: &mut LoopLocal) {
        if self.ch.state != State::Lingering {
            return;
        }
        let deadline = self.ch.linger_deadline.unwrap_or_else(|| lp.now());
        match self.ch.discard_input() {
            Ok(false) if lp.now() < deadline => {
                if self.ch.drain_timer.is_none() {
                    let wait = (deadline - lp.now()).min(LINGER_POLL);
                    self.ch.drain_timer =
                        Some(lp.schedule_channel_timer(&mut self.ch, LINGER_TIMER, 0, wait, None));
                }
            }
            _ => self.finish_close(lp),
        }
    }

    fn finish_close(&mut self, lp: &mut LoopLocal) {
        let was = self.ch.state;
        if was == State::Closed {
            return;
        }
        self.ch.state = State::Closed;
        let dropped = self.ch.queued_bytes;
        self.ch.flushed = 0;
        self.ch.queued_bytes = 0;
        match &mut lp.driver {
            Driver::Epoll(registry) => {
                if let Some(mut stream) = self.ch.stream.take() {
                    let _ = registry.deregister(&mut stream);
                    // Dropping the stream closes the descriptor.
                }
                self.ch.release_buffers();
            }
            #[cfg(feature = "io-uring")]
            Driver::Uring(ring) => {
                // Buffers and descriptor stay until the kernel is done with
                // them: cancel what is in flight, release on its completion.
                self.ch.cancel_in_flight(ring);
                if !self.ch.ring.in_flight() {
                    self.ch.stream = None;
                    self.ch.release_buffers();
                }
            }
        }
        for id in self.ch.repeating_timers.drain(..) {
            lp.cancel_timer(id);
        }
        if let Some(id) = self.ch.drain_timer.take() {
            lp.cancel_timer(id);
        }
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

    fn finish_connect(&mut self, lp: &mut LoopLocal) {
        let stream = self
            .ch
            .stream
            .as_ref()
            .expect("connecting without a socket");
        let outcome = match stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => stream.peer_addr(),
        };
        match outcome {
            Ok(peer) => {
                self.ch.state = State::Active;
                self.ch.peer = Some(peer);
                self.ch.local = stream.local_addr().ok();
                self.ch.last_output = lp.now();
                let connect = self.connect.take();
                if let Some(id) = connect.as_ref().and_then(|c| c.timer) {
                    lp.cancel_timer(id);
                }
                let mailbox = Arc::new(Mailbox::new());
                self.tail = Some(mailbox.clone());
                let handle = ChannelHandle::new(mailbox, self.ch.token, lp.shared());
                if let Some(c) = connect {
                    let _ = c.reply.send(Ok(handle));
                }
                tracing::debug!(%peer, "connected");
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
                    let _ = c.reply.send(Err(Error::Io(e)));
                }
                self.finish_close(lp);
            }
        }
    }

    pub(crate) fn fail_connect(mut self, error: Error) {
        if let Some(c) = self.connect.take() {
            let _ = c.reply.send(Err(error));
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

impl<L: InboundChain<BytesMut, S>, S: Into<Outbound>> ChannelOps for ChannelTask<L, S> {
    fn activate(&mut self, lp: &mut LoopLocal) {
        self.pipeline
            .active(&mut Self::io(&mut self.ch, lp), &mut HeadPath);
        self.settle(lp);
        #[cfg(feature = "io-uring")]
        if let Driver::Uring(ring) = &mut lp.driver {
            self.ch.arm_recv(ring);
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
                        self.ch.write_out(lp.now());
                    }
                    if self.ch.state == State::Closing && self.ch.queued_bytes == 0 {
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
        if self.ch.state != State::Active {
            return;
        }
        self.pipeline
            .drain_mailboxes(&mut Self::io(&mut self.ch, lp), &mut HeadPath);
        if let Some(tail) = self.tail.clone() {
            tail.begin_drain();
            let (pipeline, ch) = (&mut self.pipeline, &mut self.ch);
            run_batch(
                || tail.pop(),
                |cmd| pipeline.tail_command(&mut Self::io(ch, lp), &mut HeadPath, cmd),
            );
        }
        self.settle(lp);
    }

    fn timer(&mut self, lp: &mut LoopLocal, layer: usize, tag: u64) {
        match layer {
            DRAIN_TIMER => {
                if self.ch.state == State::Closing {
                    tracing::debug!(
                        peer = ?self.ch.peer,
                        dropped = self.ch.queued_bytes,
                        "peer stopped reading; closing with output undelivered"
                    );
                    self.ch.drain_timer = None;
                    self.finish_close(lp);
                }
            }
            LINGER_TIMER => {
                self.ch.drain_timer = None;
                self.linger(lp);
            }
            CONNECT_TIMER => {
                if self.ch.state == State::Connecting {
                    if let Some(c) = self.connect.take() {
                        let _ = c.reply.send(Err(Error::ConnectTimeout {
                            addr: c.addr,
                            timeout_ms: c.timeout_ms,
                        }));
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
    fn complete(&mut self, lp: &mut LoopLocal, kind: u64, res: i32, flags: u32) {
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
