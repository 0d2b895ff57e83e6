//! A connection's transport state: its socket, read buffer, outbound queue,
//! watermarks, close and linger states, and its timers' bookkeeping. Uses
//! the event loop's driver and clock; knows nothing of pipelines.
//!
//! [`Channel`] is the part handlers can see (through their context) and the
//! outbound path writes into. `task::ChannelTask` pairs it with a pipeline
//! and is what the loop stores, behind one `dyn` call per readiness event;
//! `write` holds its writes (the bound per event among them) and the
//! bookkeeping they end in, `read` its reads on readiness, `uring` the
//! io_uring forms of its operations, `kernel_tls` its reads and
//! `close_notify` once the kernel runs its TLS records, `file_setup` what
//! it does to its socket while it sends files (a wider send buffer, the
//! cork).

#[cfg(feature = "io-uring")]
mod completions;
mod epoll;
mod file_setup;
#[cfg(feature = "tls")]
mod kernel_tls;
mod lend;
mod read;
mod shaping;
pub(crate) mod task;
#[cfg(feature = "io-uring")]
mod uring;
mod write;

use crate::direct::DirectGate;
use crate::driver::Driver;
use crate::error::Error;
use crate::event_loop::LoopLocal;
use crate::metrics::Traffic;
use crate::options::ChannelOptions;
use crate::outbound::Outbound;
use crate::socket::Stream;
use crate::timer::TimerId;
use bytes::BytesMut;
use gyre_zerocopy::RegionPipe;
use mio::Token;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

/// A `flush_then` notice, told whether the writes before it reached the
/// socket: `Ok` once the socket has taken every byte written before it,
/// [`Error::Unsent`] if the channel closed first, or if the notice is
/// dropped unanswered (its command dropped with a closing channel's
/// mailbox). Answered once; usually on the channel's loop.
#[doc(hidden)]
pub struct SentNotice(Option<NoticeFn>);

type NoticeFn = Box<dyn FnOnce(Result<(), Error>) + Send>;

impl SentNotice {
    pub(crate) fn new(notice: impl FnOnce(Result<(), Error>) + Send + 'static) -> Self {
        SentNotice(Some(Box::new(notice)))
    }

    pub(crate) fn send(mut self, outcome: Result<(), Error>) {
        if let Some(notice) = self.0.take() {
            notice(outcome);
        }
    }
}

impl Drop for SentNotice {
    fn drop(&mut self) {
        if let Some(notice) = self.0.take() {
            notice(Err(Error::Unsent));
        }
    }
}

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

/// Timer "layers" the channel itself owns, above any real pipeline layer
/// index.
pub(crate) const DRAIN_TIMER: usize = usize::MAX;
pub(crate) const CONNECT_TIMER: usize = usize::MAX - 1;
pub(crate) const LINGER_TIMER: usize = usize::MAX - 2;
/// The timer after which a channel held by its traffic limits moves
/// bytes again (tag [`WRITE_HELD`] or [`READ_HELD`]).
pub(crate) const SHAPING_TIMER: usize = usize::MAX - 3;
pub(crate) const WRITE_HELD: u64 = 0;
pub(crate) const READ_HELD: u64 = 1;

/// How often a lingering close looks for the peer's EOF when no readable
/// event tells it (io_uring has none once its receive is cancelled).
const LINGER_POLL: std::time::Duration = std::time::Duration::from_millis(50);
/// Input a lingering close discards before it gives up on the peer's EOF.
const LINGER_MAX_BYTES: usize = 256 * 1024;

/// A channel as its handlers see it, through
/// [`InboundContext::channel`](crate::InboundContext::channel) and
/// [`OutboundContext::channel`](crate::OutboundContext::channel).
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gyre_reactor::{InboundContext, InboundHandler};
///
/// /// Logs each connection's traffic when it ends, and stops reading while
/// /// the peer is slow to take its answers.
/// struct Accounting;
///
/// impl InboundHandler for Accounting {
///     type Read = BytesMut;
///     type Pass = BytesMut;
///     type Write = Bytes;
///
///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
///         ctx.fire_read(msg);
///     }
///
///     fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
///         ctx.set_auto_read(writable);
///         ctx.fire_writability_changed(writable);
///     }
///
///     fn inactive(&mut self, ctx: &mut impl InboundContext<Self>) {
///         let ch = ctx.channel();
///         tracing::info!(
///             peer = ?ch.peer_addr(),
///             read = ch.bytes_read(),
///             written = ch.bytes_written(),
///             unsent = ch.queued_bytes(),
///             "connection closed"
///         );
///         ctx.fire_inactive();
///     }
/// }
/// ```
pub struct Channel {
    stream: Option<Stream>,
    /// The socket is a UDP socket: every read and write is one datagram.
    datagram: bool,
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
    /// What the handlers asked for with `set_auto_read` (the channel
    /// reads while this holds and no read limit holds it: `reading`).
    auto_read: bool,
    /// The channel's read and write limits, if it has any.
    shaping: Option<Box<crate::traffic_limit::Shaping>>,
    /// Reading is held by the read limit until this timer fires.
    read_held: Option<TimerId>,
    /// Output is held by the write limit until this timer fires.
    write_held: Option<TimerId>,
    /// The last write stopped because the write limit was spent: the
    /// write's end schedules `write_held`.
    write_limited: bool,
    /// The channel's place under its listener's connection cap, given
    /// back when it closes.
    cap_slot: Option<crate::connection_cap::CapSlot>,
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
    /// Bytes of datagrams the socket refused (too large, no route): gone
    /// from the queue without being written.
    bytes_refused: u64,
    /// Socket reads that returned data.
    pub(crate) reads: u64,
    /// Notices waiting for `bytes_written` to reach their mark, in order.
    sent_notices: VecDeque<(u64, SentNotice)>,
    pub(crate) repeating_timers: Vec<TimerId>,
    /// The drain deadline while closing, the next look while lingering.
    drain_timer: Option<TimerId>,
    /// When a lingering close gives up on the peer's EOF.
    linger_deadline: Option<Instant>,
    /// Input discarded while lingering.
    lingered: usize,
    /// The pipe file regions are spliced through when the channel's
    /// [`FileSend`] resolves to splicing: opened at a file send, given back
    /// once no file region is left queued (so an idle keep-alive channel
    /// holds no pipe); `Err(())` once it could not be opened (this channel
    /// then uses `sendfile`, without asking again).
    region_pipe: Option<Result<RegionPipe, ()>>,
    /// What the socket was set to while file regions are queued: a wider
    /// send buffer (a Unix stream's), the cork (TCP's).
    file_setup: file_setup::FileSetup,
    /// The gate through which other threads may write directly (epoll,
    /// stream sockets, [`ChannelOptions::direct_writes`]).
    direct: Option<Arc<DirectGate>>,
    /// The loop has output it could not write because a direct writer was
    /// in the gate; the writer schedules the channel when it leaves.
    direct_blocked: bool,
    /// The last write stopped at [`ChannelOptions::max_write_bytes_per_event`]
    /// with the socket still taking more: the loop is to come back on its
    /// next turn (`requeue_write`), as no readiness event will.
    write_yielded: bool,
    /// The loop has this channel on its list to write again next turn
    /// (once is enough: a second entry would give it two turns' bytes).
    write_requeued: bool,
    /// A TCP socket: the kernel's TLS could take it (on an io_uring loop,
    /// once the channel has gone over to readiness I/O, so that its reads
    /// are the channel's own `recvmsg`, which carries each record's type).
    kernel_tls_possible: bool,
    /// The kernel encrypts and decrypts this socket's TLS records: set by
    /// the TLS layer after its handshake (through `&Channel`, hence the cell).
    kernel_tls: std::cell::Cell<bool>,
    /// The front file region's loading, where a file loader is set.
    cold: crate::cold_file::ColdFiles,
    /// Operations in flight on an io_uring loop.
    #[cfg(feature = "io-uring")]
    ring: uring::RingState,
}

impl Channel {
    fn new(stream: Stream, token: Token, opts: Arc<ChannelOptions>, now: Instant) -> Self {
        Channel {
            peer: stream.peer_addr(),
            local: stream.local_addr(),
            datagram: stream.is_datagram(),
            stream: Some(stream),
            token,
            auto_read: opts.auto_read,
            shaping: crate::traffic_limit::Shaping::new(
                (opts.read_limit, opts.shared_read_limit.clone()),
                (opts.write_limit, opts.shared_write_limit.clone()),
                now,
            ),
            read_held: None,
            write_held: None,
            write_limited: false,
            cap_slot: None,
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
            bytes_refused: 0,
            reads: 0,
            sent_notices: VecDeque::new(),
            repeating_timers: Vec::new(),
            drain_timer: None,
            linger_deadline: None,
            lingered: 0,
            region_pipe: None,
            file_setup: file_setup::FileSetup::default(),
            direct: None,
            direct_blocked: false,
            write_yielded: false,
            write_requeued: false,
            kernel_tls_possible: false,
            kernel_tls: std::cell::Cell::new(false),
            cold: crate::cold_file::ColdFiles::default(),
            #[cfg(feature = "io-uring")]
            ring: uring::RingState::default(),
        }
    }

    /// The file loader this channel's sends go through, if one is set
    /// ([`ChannelOptions::file_loader`]): for the layers that read files
    /// themselves (TLS).
    #[cfg(feature = "tls")]
    pub(crate) fn file_loader(&self) -> Option<&crate::FileLoader> {
        self.opts.file_loader.as_ref()
    }

    /// The peer's address: `None` on a Unix domain socket, an unconnected
    /// UDP socket (each [`Datagram`](crate::Datagram) names its own), or
    /// once a connect has failed.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Our end's address (`None` on a Unix domain socket).
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

    /// Bytes read from the socket so far (by the loop, and by threads the
    /// input was lent to: [`ChannelHandle::lend_input`]).
    ///
    /// [`ChannelHandle::lend_input`]: crate::ChannelHandle::lend_input
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read + self.lent_read()
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

    /// Whether the channel reads when the socket has data, as the
    /// handlers last set it; a channel held by its
    /// [read limit](crate::ChannelOptions::read_limit) stops for a while
    /// all the same.
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

    /// Whether this is a UDP channel, whose reads and writes are
    /// [`Datagram`](crate::Datagram)s.
    pub fn is_datagram(&self) -> bool {
        self.datagram
    }

    /// Whether the kernel does this connection's TLS record layer (kTLS):
    /// set once a TLS layer built with
    /// [`TlsAcceptorBuilder::kernel_tls`](crate::TlsAcceptorBuilder::kernel_tls)
    /// has handed the session's keys to the kernel. From then on the
    /// socket carries plaintext in and out of the kernel, and file regions
    /// keep `sendfile`.
    pub fn kernel_tls(&self) -> bool {
        self.kernel_tls.get()
    }

    /// Takes bytes, a file region or a datagram from the pipeline; sent at
    /// the next flush. An empty datagram is one to send, empty bytes are
    /// nothing to send.
    #[inline]
    pub(crate) fn enqueue(&mut self, msg: Outbound) {
        let len = msg.remaining();
        if !matches!(self.state, State::Active)
            || self.close_requested
            || (len == 0 && !self.datagram)
        {
            return;
        }
        if let Some(what) = self.unsendable(&msg) {
            self.record_error(Error::Io(io::Error::new(io::ErrorKind::InvalidInput, what)));
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

    /// The gate other threads may write through, if this channel has one.
    pub(crate) fn direct_gate(&self) -> Option<Arc<DirectGate>> {
        self.direct.clone()
    }

    /// No direct writes on this channel, ever: a layer (TLS) must see
    /// every byte written. Called from a handler's `active`, before the
    /// loop first lets writers in.
    #[cfg(feature = "tls")]
    pub(crate) fn refuse_direct_writes(&self) {
        if let Some(gate) = &self.direct {
            gate.refuse();
        }
    }

    /// Whether [`open_gate`](Self::open_gate) will open a gate: the
    /// options ask for one, the socket is a stream, and there is none yet.
    fn gate_wanted(&self) -> bool {
        self.opts.takes_direct_writes() && !self.datagram && self.direct.is_none()
    }

    /// Opens the gate to direct writers on an epoll loop, if
    /// [`gate_wanted`](Self::gate_wanted); the loop holds it until its
    /// first turn ends. `read_fd`: the duplicate the poller watches for
    /// input (-1: none), which the gate's last party closes with the
    /// socket.
    fn open_gate(&mut self, read_fd: std::os::fd::RawFd) {
        if self.gate_wanted() {
            if let Some(stream) = &self.stream {
                let gate = DirectGate::with_read_fd(stream.as_raw_fd(), read_fd);
                gate.claim();
                self.direct = Some(Arc::new(gate));
            }
        }
    }

    /// Takes the socket from direct writers before the loop writes: `false`
    /// if one is in its `send` (it will schedule the channel when it
    /// leaves). What a writer's partial send left goes out first.
    fn take_gate(&mut self) -> bool {
        let Some(gate) = &self.direct else {
            return true;
        };
        if !gate.claim() {
            self.direct_blocked = true;
            return false;
        }
        self.direct_blocked = false;
        if let Some(rest) = gate.take_remainder() {
            self.queued_bytes += rest.len();
            self.out.push_front(Outbound::Bytes(rest));
            self.flushed += 1;
        }
        true
    }

    /// The loop's turn at the gate when its task is scheduled: it takes
    /// the gate before draining mailboxes (so a writer cannot overtake what
    /// its handle queued before), and writes what waited for a writer to
    /// leave or what a writer left.
    pub(crate) fn claim_direct(&mut self, lp: &mut LoopLocal) {
        let Some(gate) = &self.direct else {
            return;
        };
        let owed = self.direct_blocked || gate.has_remainder();
        if gate.claim() && owed {
            self.kick_write(lp);
        }
    }

    /// Lets direct writers in again once the loop has nothing to write.
    pub(crate) fn release_direct(&mut self) {
        if let Some(gate) = &self.direct {
            if self.state == State::Active
                && self.out.is_empty()
                && !self.direct_blocked
                && !self.close_requested
                && !self.failed
            {
                gate.unclaim();
            }
        }
    }

    /// Why `msg` cannot go out on this channel's socket, if it cannot: a
    /// file region on a UDP socket, a datagram on a stream.
    fn unsendable(&self, msg: &Outbound) -> Option<&'static str> {
        match (msg, self.datagram) {
            (Outbound::File(_), true) => Some("a file region cannot be sent on a UDP channel"),
            (Outbound::Datagram(_), false) => {
                Some("a datagram cannot be sent on a stream channel (TCP or Unix)")
            }
            _ => None,
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
        let was = self.reading();
        self.auto_read = on;
        self.apply_reading(was, lp);
    }

    /// Whether the channel reads: the handlers want it and no read limit
    /// holds it.
    pub(crate) fn reading(&self) -> bool {
        self.auto_read && self.read_held.is_none()
    }

    /// Tells the transport what changed since reading was `was`: a pause,
    /// or a look for data already waiting.
    fn apply_reading(&mut self, was: bool, lp: &mut LoopLocal) {
        let on = self.reading();
        if !on && was {
            self.pause_read(lp);
        }
        if on && !was && self.state == State::Active {
            // Edge-triggered readiness will not repeat for data that is
            // already waiting, so look for it ourselves.
            lp.reread(self.token);
        }
    }

    // The transport verbs: each dispatches once on the loop's driver, and
    // nothing else in the channel (or above it) looks at the driver.

    /// Registers the channel with its loop's driver: epoll readiness, or
    /// (for a connecting io_uring channel) a poll for the connect's end.
    pub(crate) fn register(&mut self, lp: &mut LoopLocal) -> io::Result<()> {
        self.kernel_tls_possible = self.stream.as_ref().is_some_and(Stream::is_tcp);
        match &mut lp.driver {
            Driver::Epoll(registry) => self.epoll_register(registry),
            #[cfg(feature = "io-uring")]
            Driver::Uring(ring) => {
                self.ring.on_ring = true;
                // Accepted channels start reading when active.
                if self.state == State::Connecting {
                    self.arm_connect(ring);
                }
                Ok(())
            }
        }
    }

    /// A closing channel has delivered all its output, and no write
    /// failed on the way: it may end its close (linger, or close). A
    /// failed one ends through `settle` instead, which reports the error
    /// first.
    pub(crate) fn close_drained(&self) -> bool {
        self.state == State::Closing && self.queued_bytes == 0 && !self.failed
    }

    /// Starts reading where the transport needs it started (io_uring's
    /// receive); epoll reads on readiness and needs nothing.
    pub(crate) fn resume_read(&mut self, lp: &mut LoopLocal) {
        #[cfg(feature = "io-uring")]
        if let Driver::Uring(ring) = &mut lp.driver {
            self.arm_recv(ring);
        }
        #[cfg(not(feature = "io-uring"))]
        let _ = lp;
    }

    /// Stops reading where a read is in flight (io_uring's receive).
    pub(crate) fn pause_read(&mut self, lp: &mut LoopLocal) {
        #[cfg(feature = "io-uring")]
        if let Driver::Uring(ring) = &mut lp.driver {
            self.cancel_recv(ring);
        }
        #[cfg(not(feature = "io-uring"))]
        let _ = lp;
    }

    /// Lets go of the socket and buffers: at once on epoll; on io_uring
    /// once the kernel is done with them (what is in flight is cancelled,
    /// and released on its completion).
    pub(crate) fn release(&mut self, lp: &mut LoopLocal) {
        match &mut lp.driver {
            Driver::Epoll(registry) => self.epoll_release(registry),
            #[cfg(feature = "io-uring")]
            Driver::Uring(ring) => {
                self.cancel_in_flight(ring);
                if !self.ring.in_flight() {
                    self.stream = None;
                    self.release_buffers();
                }
            }
        }
    }

    /// Reads and drops what the peer sends while lingering: `Ok(true)` at
    /// its EOF (or past the byte cap: time to close), `Ok(false)` when
    /// nothing more has arrived for now.
    fn discard_input(&mut self) -> io::Result<bool> {
        use std::io::Read;
        if self.input_lent() {
            // Its holder reads it for now; the linger timer ends this.
            return Ok(false);
        }
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

    /// Schedules a timer for `layer` (a pipeline layer or one of the
    /// channel's own) and, if it repeats, remembers it so closing the
    /// channel cancels it.
    pub(crate) fn schedule_timer(
        &mut self,
        lp: &mut LoopLocal,
        layer: usize,
        tag: u64,
        delay: std::time::Duration,
        period: Option<std::time::Duration>,
    ) -> TimerId {
        let id = lp.schedule_for_channel(self.token, layer, tag, delay, period);
        if period.is_some() {
            self.repeating_timers.push(id);
        }
        id
    }

    /// Its socket's descriptor while it has one.
    pub(crate) fn socket_fd(&self) -> Option<std::os::fd::RawFd> {
        self.stream.as_ref().map(|s| s.as_raw_fd())
    }

    /// What this channel has moved, for its loop's metrics.
    pub(crate) fn traffic(&self) -> Traffic {
        Traffic {
            bytes_read: self.bytes_read,
            bytes_written: self.bytes_written,
            reads: self.reads,
            queued: self.queued_bytes as u64,
        }
    }

    fn fail_sent_notices(&mut self) {
        for (_, notice) in self.sent_notices.drain(..) {
            notice.send(Err(Error::Unsent));
        }
    }

    /// `notice` once every byte queued so far has been sent (at once if
    /// none is queued).
    pub(crate) fn notify_when_sent(&mut self, notice: SentNotice) {
        if self.queued_bytes == 0 {
            notice.send(Ok(()));
        } else if self.stream.is_none() {
            notice.send(Err(Error::Unsent));
        } else {
            let mark = self.dequeued_total() + self.queued_bytes as u64;
            self.sent_notices.push_back((mark, notice));
        }
    }

    /// Drops the read buffer and the outbound queue; notices still waiting
    /// are told their writes were not sent.
    fn release_buffers(&mut self) {
        self.fail_sent_notices();
        self.out.clear();
        self.read_buf = BytesMut::new();
    }

    fn fail(&mut self, e: io::Error) {
        self.failed = true;
        self.record_error(Error::Io(e));
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // A loop that stops drops its channels without releasing them one
        // by one: a waiting notice still gets its answer.
        self.fail_sent_notices();
    }
}
