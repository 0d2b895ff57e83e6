//! [`EmbeddedChannel`]: a pipeline run on the calling thread, for unit
//! tests of handlers and codecs (Netty's `EmbeddedChannel`). Uses the
//! hand-driven loop (`event_loop::by_hand`), the connection glue that
//! makes a socket and a pipeline into a channel task, and a Unix socket
//! pair.
//!
//! The channel is a real one: its end of a socket pair is read, written,
//! closed and timed by the same code as a server's channel, on a loop that
//! runs only when the test calls in and whose clock moves only when the
//! test moves it. A layer added after the pipeline's last keeps what
//! reaches the end (messages, user events, errors, writability) for the
//! test to take; what the channel sends is read off the pair's other end
//! when the test asks for it, so a test that does not read sees the
//! channel's queue grow and its writability turn as a slow peer's would.
//! Every call runs the loop until it has nothing left to do, so each
//! step's outcome is there to read at once, with no sleep and no thread.

use crate::chain::{Append, Identity, InboundChain};
use crate::error::{ChannelClosed, Error};
use crate::event_loop::{by_hand, LoopInner};
use crate::handle::ChannelHandle;
use crate::handler::{InboundContext, InboundHandler, UserEvent};
use crate::options::ChannelOptions;
use crate::outbound::Outbound;
use crate::pipeline::Pipeline;
use crate::socket::Stream;
use bytes::{Bytes, BytesMut};
use mio::{Events, Poll, Token};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::marker::PhantomData;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Loop turns one call may take before it gives up on the pipeline ever
/// going quiet (a handler that posts itself work forever).
const MAX_TURNS: usize = 100_000;

fn busy() -> io::Error {
    io::Error::other(format!(
        "the embedded channel was still busy after {MAX_TURNS} loop turns (a handler that gives itself work forever?)"
    ))
}

/// What reached the end of the pipeline, kept for the test.
struct Seen<P, W> {
    inbound: VecDeque<P>,
    user_events: VecDeque<UserEvent>,
    errors: VecDeque<Error>,
    /// The last writability the end of the pipeline heard of.
    writable: bool,
    _write: PhantomData<fn(W)>,
}

/// The layer an embedded channel adds after the pipeline's last: it keeps
/// what reaches it. Public only because the constructor's bounds name it.
pub struct Tail<P, W> {
    seen: Rc<RefCell<Seen<P, W>>>,
}

impl<P: 'static, W: 'static> InboundHandler for Tail<P, W> {
    type Read = P;
    type Pass = ();
    type Write = W;

    fn read(&mut self, _: &mut impl InboundContext<Self>, msg: P) {
        self.seen.borrow_mut().inbound.push_back(msg);
    }

    fn user_event(&mut self, _: &mut impl InboundContext<Self>, event: UserEvent) {
        self.seen.borrow_mut().user_events.push_back(event);
    }

    fn writability_changed(&mut self, _: &mut impl InboundContext<Self>, writable: bool) {
        self.seen.borrow_mut().writable = writable;
    }

    /// Kept for the test rather than passed to the pipeline's own end,
    /// which would close the channel: as Netty's `checkException`, the
    /// test reads it and decides.
    fn error(&mut self, _: &mut impl InboundContext<Self>, error: Error) {
        self.seen.borrow_mut().errors.push_back(error);
    }
}

/// A pipeline run on the calling thread, over a real channel, for unit
/// tests of handlers and codecs (Netty's `EmbeddedChannel`).
///
/// `P` is what the pipeline's last handler passes on, `W` what it writes.
/// Bytes written in ([`write_inbound`](Self::write_inbound)) arrive on the
/// channel's socket as a peer's would; what reaches the pipeline's end is
/// read with [`read_inbound`](Self::read_inbound), and what the channel
/// sends with [`read_outbound`](Self::read_outbound). The loop runs only
/// inside these calls, each until it has nothing left to do, and its
/// clock moves only by [`advance_time_by`](Self::advance_time_by), so
/// timers and idle events are as deterministic as the rest. It runs on
/// epoll (not io_uring) and over a Unix socket pair (the channel has no
/// peer address), and it is not `Send`: it is the loop, and the loop is
/// this thread.
///
/// ```
/// use bytes::Bytes;
/// use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
/// use gyre_reactor::{EmbeddedChannel, InboundContext, InboundHandler, Pipeline};
///
/// /// Answers each line with its length, and passes the line on.
/// struct Lengths;
///
/// impl InboundHandler for Lengths {
///     type Read = Bytes;
///     type Pass = Bytes;
///     type Write = String;
///
///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, line: Bytes) {
///         ctx.write_and_flush(line.len().to_string());
///         ctx.fire_read(line);
///     }
/// }
///
/// let mut ch = EmbeddedChannel::new(
///     Pipeline::new()
///         .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
///         .inbound(Lengths),
/// )?;
/// ch.write_inbound(b"hello\nwor")?;
/// assert_eq!(ch.read_inbound(), Some(Bytes::from_static(b"hello")));
/// assert_eq!(ch.read_inbound(), None, "half a line waits");
/// assert_eq!(ch.read_outbound()?, "5\n");
/// ch.write_inbound(b"ld\n")?;
/// assert_eq!(ch.read_inbound(), Some(Bytes::from_static(b"world")));
/// // Writes from the end go through the encoder.
/// ch.write_outbound("bye".to_owned())?;
/// assert_eq!(ch.read_outbound()?, "5\nbye\n");
/// ch.close()?;
/// assert!(!ch.is_open());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EmbeddedChannel<P: 'static, W: 'static> {
    lp: LoopInner,
    poll: Poll,
    events: Events,
    token: Token,
    /// The peer's end of the socket pair, non-blocking.
    peer: UnixStream,
    /// What the channel sent and the test has not yet taken.
    sent: BytesMut,
    /// Writes enter the pipeline at its end, user events at its head.
    handle: ChannelHandle<W>,
    seen: Rc<RefCell<Seen<P, W>>>,
    _not_send: PhantomData<*const ()>,
}

impl<P: 'static, W: 'static> EmbeddedChannel<P, W> {
    /// Opens a channel running `pipeline` with the default options; its
    /// handlers' `active` has run when this returns.
    pub fn new<L, S>(pipeline: Pipeline<L, P, W, S>) -> io::Result<Self>
    where
        L: Append<(Tail<P, W>, Identity<W>)>,
        L::Output: InboundChain<BytesMut, S, TailWrite = W> + 'static,
        S: Into<Outbound> + 'static,
    {
        Self::with_options(ChannelOptions::default(), pipeline)
    }

    /// Opens a channel running `pipeline` with `options` (watermarks,
    /// half-closure, read buffer sizes: those a socket pair has).
    ///
    /// ```
    /// use gyre_reactor::{ChannelOptions, EmbeddedChannel, Pipeline};
    ///
    /// let options = ChannelOptions::default().allow_half_closure(true);
    /// let ch = EmbeddedChannel::with_options(options, Pipeline::new())?;
    /// assert!(ch.is_open());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_options<L, S>(
        options: ChannelOptions,
        pipeline: Pipeline<L, P, W, S>,
    ) -> io::Result<Self>
    where
        L: Append<(Tail<P, W>, Identity<W>)>,
        L::Output: InboundChain<BytesMut, S, TailWrite = W> + 'static,
        S: Into<Outbound> + 'static,
    {
        let (mut lp, poll) = by_hand::new()?;
        let (ours, peer) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        peer.set_nonblocking(true)?;
        let seen = Rc::new(RefCell::new(Seen {
            inbound: VecDeque::new(),
            user_events: VecDeque::new(),
            errors: VecDeque::new(),
            writable: true,
            _write: PhantomData,
        }));
        let pipeline = pipeline.inbound(Tail { seen: seen.clone() });
        let added = lp.add_stream::<_, S>(
            Stream::Unix(mio::net::UnixStream::from_std(ours)),
            None,
            Arc::new(options),
            pipeline.layers,
            true,
        );
        let Some((token, Some(handle))) = added else {
            return Err(io::Error::other(
                "the embedded channel did not open (its socket refused the options; see the log)",
            ));
        };
        let mut ch = EmbeddedChannel {
            lp,
            poll,
            events: Events::with_capacity(64),
            token,
            peer,
            sent: BytesMut::new(),
            handle,
            seen,
            _not_send: PhantomData,
        };
        ch.run_pending()?;
        Ok(ch)
    }

    /// Sends `bytes` to the channel as its peer would, then runs the loop
    /// until the pipeline is done with them. Fails if the channel has
    /// closed its end.
    pub fn write_inbound(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        let mut stalled = 0;
        while !rest.is_empty() {
            let peer = socket2::SockRef::from(&self.peer);
            match peer.send_with_flags(rest, libc::MSG_NOSIGNAL) {
                Ok(n) => {
                    rest = &rest[n..];
                    stalled = 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The pair is full: let the channel read.
                    self.run_pending()?;
                    stalled += 1;
                    if stalled > MAX_TURNS {
                        return Err(io::Error::other(
                            "the channel takes no more input (auto-read off?)",
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.run_pending()
    }

    /// Ends the peer's output (a FIN): the channel reads its end of input
    /// (closing, or with half-closure on, `UserEvent::InputClosed`).
    pub fn write_eof(&mut self) -> io::Result<()> {
        self.peer.shutdown(Shutdown::Write)?;
        self.run_pending()
    }

    /// The oldest message the pipeline's last handler passed on and the
    /// test has not taken.
    pub fn read_inbound(&mut self) -> Option<P> {
        self.seen.borrow_mut().inbound.pop_front()
    }

    /// The oldest user event that reached the pipeline's end untaken
    /// (idle events, the end of input under half-closure, a handler's own).
    ///
    /// ```
    /// use gyre_reactor::{EmbeddedChannel, IdleState, IdleStateHandler, Pipeline, UserEvent};
    /// use std::time::Duration;
    ///
    /// let second = Duration::from_secs(1);
    /// let mut ch = EmbeddedChannel::new(
    ///     Pipeline::new().inbound(IdleStateHandler::new(second, Duration::ZERO, Duration::ZERO)),
    /// )?;
    /// ch.advance_time_by(Duration::from_millis(900))?;
    /// assert!(ch.read_user_event().is_none());
    /// ch.advance_time_by(Duration::from_millis(200))?;
    /// match ch.read_user_event() {
    ///     Some(UserEvent::Idle(e)) => assert_eq!(e.state, IdleState::ReaderIdle),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_user_event(&mut self) -> Option<UserEvent> {
        self.seen.borrow_mut().user_events.pop_front()
    }

    /// The oldest error that reached the pipeline's end (a decoder's
    /// refusal, a handler's failure), untaken. An error reaching the end
    /// of a server's pipeline closes its channel; here it is kept for the
    /// test instead, and the channel stays open.
    pub fn take_error(&mut self) -> Option<Error> {
        self.seen.borrow_mut().errors.pop_front()
    }

    /// Everything the channel has sent since the last call: the peer
    /// reads while the loop runs (a channel held by a full socket pair
    /// writing on as it is read) until neither has more.
    pub fn read_outbound(&mut self) -> io::Result<Bytes> {
        self.run_reading()?;
        Ok(self.sent.split().freeze())
    }

    /// Writes `msg` into the pipeline at its end, through every outbound
    /// handler, and flushes it; then runs the loop. Fails, giving `msg`
    /// back, once the channel has closed.
    pub fn write_outbound(&mut self, msg: W) -> Result<(), EmbeddedError<W>> {
        self.handle
            .write_and_flush(msg)
            .map_err(EmbeddedError::Closed)?;
        self.run_pending().map_err(EmbeddedError::Io)
    }

    /// Fires `event` into the pipeline from its head, as the transport
    /// raises one (an idle event, the end of input, a custom event a
    /// handle sends), then runs the loop: each handler's `user_event`
    /// sees it in turn, and what passes the last is kept for
    /// [`read_user_event`](Self::read_user_event). Fails, giving the event
    /// back, once the channel has closed.
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use gyre_reactor::{EmbeddedChannel, InboundContext, InboundHandler, Pipeline, UserEvent};
    ///
    /// /// Says "bye" and closes on a custom "drain" event; passes the rest.
    /// struct Drain;
    ///
    /// impl InboundHandler for Drain {
    ///     type Read = BytesMut;
    ///     type Pass = BytesMut;
    ///     type Write = Bytes;
    ///
    ///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
    ///         ctx.fire_read(msg);
    ///     }
    ///
    ///     fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
    ///         match event {
    ///             UserEvent::Custom(c) if c.downcast_ref::<&str>() == Some(&"drain") => {
    ///                 ctx.write_and_flush(Bytes::from_static(b"bye"));
    ///                 ctx.close();
    ///             }
    ///             other => ctx.fire_user_event(other),
    ///         }
    ///     }
    /// }
    ///
    /// let mut ch = EmbeddedChannel::new(Pipeline::new().inbound(Drain))?;
    /// ch.fire_user_event(UserEvent::Custom(Box::new("other")))?;
    /// assert!(matches!(ch.read_user_event(), Some(UserEvent::Custom(_))), "passed on");
    /// ch.fire_user_event(UserEvent::Custom(Box::new("drain")))?;
    /// assert_eq!(ch.read_outbound()?, "bye");
    /// assert!(!ch.is_open());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fire_user_event(&mut self, event: UserEvent) -> Result<(), EmbeddedError<UserEvent>> {
        self.handle
            .fire_user_event(event)
            .map_err(EmbeddedError::Closed)?;
        self.run_pending().map_err(EmbeddedError::Io)
    }

    /// Closes the channel from the pipeline's end, through every outbound
    /// handler, as a handler's `ctx.close()` would: what is queued is
    /// delivered first, the peer reading it (kept for
    /// [`read_outbound`](Self::read_outbound)) until the channel has
    /// closed.
    pub fn close(&mut self) -> io::Result<()> {
        // Already closed: nothing to do.
        let _ = self.handle.close();
        self.run_reading()
    }

    /// Whether the channel was writable when the pipeline's end last
    /// heard (its queue under the high watermark, or back under the low
    /// one since), as Netty's `isWritable`. What fills the queue past the
    /// watermark is the test's not reading the output: a socket pair
    /// takes a few hundred KiB before the channel queues.
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use gyre_reactor::{ChannelOptions, EmbeddedChannel, InboundContext, InboundHandler, Pipeline};
    ///
    /// /// Answers each chunk with 1 MiB.
    /// struct Flood;
    ///
    /// impl InboundHandler for Flood {
    ///     type Read = BytesMut;
    ///     type Pass = ();
    ///     type Write = Bytes;
    ///
    ///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
    ///         ctx.write_and_flush(Bytes::from(vec![0u8; 1 << 20]));
    ///     }
    /// }
    ///
    /// let options = ChannelOptions::default().send_buffer_size(64 * 1024);
    /// let mut ch = EmbeddedChannel::with_options(options, Pipeline::new().inbound(Flood))?;
    /// assert!(ch.is_writable());
    /// // `write_inbound` leaves the output unread: the queue passes the
    /// // high watermark.
    /// ch.write_inbound(b"go")?;
    /// assert!(!ch.is_writable());
    /// assert_eq!(ch.read_outbound()?.len(), 1 << 20, "read, it drains");
    /// assert!(ch.is_writable());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_writable(&self) -> bool {
        self.seen.borrow().writable
    }

    /// Whether the channel is still open.
    pub fn is_open(&self) -> bool {
        self.lp.tokens().contains(&self.token)
    }

    /// The loop's clock, which moves only by
    /// [`advance_time_by`](Self::advance_time_by).
    pub fn now(&self) -> Instant {
        self.lp.local.now()
    }

    /// Moves the loop's clock on by `by`, fires the timers that come due
    /// (the handlers', idle events, the close's drain deadline), and runs
    /// the loop. Timers have millisecond resolution.
    pub fn advance_time_by(&mut self, by: Duration) -> io::Result<()> {
        self.lp.advance(by);
        self.run_pending()
    }

    /// Runs the loop until it has nothing left to do: readiness on the
    /// channel's socket, writes and closes sent through the channel's
    /// handles, work it comes back for, timers due at its clock. It does
    /// not read what the channel sent: the peer reads only in
    /// [`read_outbound`](Self::read_outbound) and [`close`](Self::close),
    /// so output past what the socket pair holds waits in the channel's
    /// queue (and past its high watermark turns the channel unwritable)
    /// until then. Every other call runs it; a test calls it itself after
    /// handing the channel work from another thread (through a
    /// [`ChannelHandle`] a handler gave out).
    pub fn run_pending(&mut self) -> io::Result<()> {
        for _ in 0..MAX_TURNS {
            if !self.lp.turn(&mut self.poll, &mut self.events)? {
                return Ok(());
            }
        }
        Err(busy())
    }

    /// Runs the loop and reads the channel's output until neither has
    /// anything more: the peer reading, the channel writing its queue out.
    fn run_reading(&mut self) -> io::Result<()> {
        for _ in 0..MAX_TURNS {
            self.run_pending()?;
            if self.read_peer()? == 0 {
                return Ok(());
            }
        }
        Err(busy())
    }

    /// Reads what the channel sent into `sent`; how many bytes.
    fn read_peer(&mut self) -> io::Result<usize> {
        let mut total = 0;
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.peer.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => {
                    self.sent.extend_from_slice(&buf[..n]);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The channel reset its end: nothing more will come.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(total),
                Err(e) => return Err(e),
            }
        }
    }
}

impl<P, W> std::fmt::Debug for EmbeddedChannel<P, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seen = self.seen.borrow();
        f.debug_struct("EmbeddedChannel")
            .field("open", &self.is_open())
            .field("inbound", &seen.inbound.len())
            .field("user_events", &seen.user_events.len())
            .field("errors", &seen.errors.len())
            .field("sent", &self.sent.len())
            .finish()
    }
}

/// Why [`EmbeddedChannel::write_outbound`] or
/// [`EmbeddedChannel::fire_user_event`] failed.
///
/// ```
/// use gyre_reactor::{EmbeddedChannel, EmbeddedError, Pipeline};
///
/// let mut ch = EmbeddedChannel::new(Pipeline::new())?;
/// ch.close()?;
/// match ch.write_outbound(bytes::Bytes::from_static(b"late")) {
///     Err(EmbeddedError::Closed(given_back)) => assert_eq!(given_back.0.unwrap(), "late"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(thiserror::Error)]
pub enum EmbeddedError<W> {
    /// The channel has closed; the message is given back.
    #[error("the embedded channel is closed: {0}")]
    Closed(ChannelClosed<W>),
    /// The loop's poller failed.
    #[error("the embedded channel's loop failed: {0}")]
    Io(#[from] io::Error),
}

impl<W> std::fmt::Debug for EmbeddedError<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmbeddedError::Closed(c) => f.debug_tuple("Closed").field(c).finish(),
            EmbeddedError::Io(e) => f.debug_tuple("Io").field(e).finish(),
        }
    }
}
