//! What the ring carries from the offload stage to the business handlers:
//! a [`Job`] (the request and its [`Reply`]), and what a reply writes back
//! into the channel's pipeline (an [`Answer`], tagged with the request's
//! place in its connection). Uses the channel handle; knows nothing of the
//! ring or the loop.

use crate::handle::ChannelHandle;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Counters of one offload stage, shared by every connection on it.
///
/// Only rare events are counted (a shared counter bumped per message by
/// every loop and worker would cost more than the hand-off itself); count
/// messages in the business handlers.
///
/// ```
/// use bytes::Bytes;
/// use gyre_reactor::{Job, OffloadStage};
/// use gyre_ringbuffer::{Disruptor, Stage};
///
/// let mut graph = Disruptor::builder(64, Job::<Bytes, Bytes>::default).multi_producer()?;
/// graph.handle_events_with(Stage::new(|_: &Job<Bytes, Bytes>, _: i64, _: bool| {}));
/// let (producer, disruptor) = graph.start()?;
/// let stage = OffloadStage::new(producer);
/// let stats = stage.stats(); // shared by every connection of the stage
/// assert_eq!((stats.ring_full(), stats.dropped_replies()), (0, 0));
/// # drop(stage);
/// # disruptor.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct OffloadStats {
    pub(crate) dropped_replies: AtomicU64,
    pub(crate) ring_full: AtomicU64,
    pub(crate) peak_in_flight: AtomicU64,
    pub(crate) peak_held: AtomicU64,
}

impl OffloadStats {
    /// The most requests one connection had in flight at once: never more
    /// than [`OffloadStage::max_in_flight`](crate::OffloadStage::max_in_flight).
    pub fn peak_in_flight(&self) -> u64 {
        self.peak_in_flight.load(Ordering::Relaxed)
    }

    /// The most requests one connection's offload layer held back at once
    /// (read while the ring was full or the connection at its limit): at
    /// most what one socket read decodes into, as reading stops then.
    pub fn peak_held(&self) -> u64 {
        self.peak_held.load(Ordering::Relaxed)
    }

    /// Replies dropped because their channel had closed.
    pub fn dropped_replies(&self) -> u64 {
        self.dropped_replies.load(Ordering::Relaxed)
    }

    /// Times a connection found the ring full and paused reading.
    pub fn ring_full(&self) -> u64 {
        self.ring_full.load(Ordering::Relaxed)
    }
}

/// What a reply writes into its channel's pipeline: the request's number
/// on its connection and the answer (`None` for a request answered with
/// nothing, see [`Reply::skip`]). The offload layer's reorderer turns it
/// back into the answer alone. It appears in a pipeline's type; a
/// [`Reply`] makes it, never a user.
#[derive(Debug)]
pub struct Answer<W> {
    pub(crate) seq: u64,
    pub(crate) body: Option<W>,
}

/// One connection as its replies see it: made once per connection.
pub(crate) struct ReplyTarget<W> {
    pub(crate) handle: ChannelHandle<Answer<W>>,
    pub(crate) stats: Arc<OffloadStats>,
}

/// Where the answer to one request goes: its channel and its place among
/// that channel's requests. `Send + Sync`: answer from any thread, at once
/// or later, exactly once.
///
/// ```
/// use bytes::Bytes;
/// use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
/// use gyre_reactor::{Job, OffloadStage, Pipeline, ServerBootstrap};
/// use gyre_ringbuffer::{Disruptor, Stage};
/// use std::io::{BufRead, BufReader, Write};
///
/// // The owner takes the reply out of the slot and answers from another
/// // thread, later: the loop goes on meanwhile.
/// let graph = Disruptor::builder(64, Job::<Bytes, Bytes>::default).multi_producer()?;
/// let graph = graph.then_owner(Stage::owner(|job: &mut Job<Bytes, Bytes>, _, _| {
///     let (Some(line), Some(reply)) = (job.take_message(), job.take_reply()) else { return };
///     std::thread::spawn(move || {
///         if reply.is_open() {
///             let _ = reply.send(Bytes::from(format!("{} bytes", line.len())));
///         }
///     });
/// }));
/// let (producer, disruptor) = graph.start()?;
/// let stage = OffloadStage::new(producer);
/// let server = ServerBootstrap::new().bind("127.0.0.1:0", move |_| {
///     Pipeline::new()
///         .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
///         .offload(stage.connection())
/// })?;
/// let mut conn = std::net::TcpStream::connect(server.local_addr())?;
/// conn.write_all(b"four\n")?;
/// let mut answer = String::new();
/// BufReader::new(conn).read_line(&mut answer)?;
/// assert_eq!(answer, "4 bytes\n");
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// disruptor.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Reply<W> {
    target: Arc<ReplyTarget<W>>,
    seq: u64,
    sent: AtomicBool,
}

/// Why a reply was not queued; carries the answer back.
///
/// ```
/// use bytes::Bytes;
/// use gyre_reactor::{Reply, ReplyError};
///
/// /// Answers a request; a client that left is no error of the business
/// /// logic's, a second answer is.
/// fn answer(reply: &Reply<Bytes>, body: Bytes, clients_gone: &mut u64) {
///     match reply.send(body) {
///         Ok(()) => {}
///         Err(ReplyError::Closed { seq, answer }) => {
///             *clients_gone += 1;
///             let bytes = answer.map_or(0, |a| a.len());
///             tracing::debug!(seq, bytes, "the client left before its answer");
///         }
///         Err(twice @ ReplyError::AlreadyAnswered { .. }) => {
///             panic!("a bug in the business logic: {twice}")
///         }
///     }
/// }
/// ```
#[derive(thiserror::Error)]
pub enum ReplyError<W> {
    /// The channel closed before the answer: it is dropped (and counted in
    /// [`OffloadStats::dropped_replies`]).
    #[error("the channel of request {seq} closed before its answer")]
    Closed {
        /// The request's number on its connection.
        seq: u64,
        /// The answer that was not sent.
        answer: Option<W>,
    },
    /// The request was already answered (or skipped).
    #[error("request {seq} was already answered")]
    AlreadyAnswered {
        /// The request's number on its connection.
        seq: u64,
        /// The second answer, not sent.
        answer: Option<W>,
    },
}

impl<W> fmt::Debug for ReplyError<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<W> ReplyError<W> {
    /// The answer that was not sent.
    pub fn into_answer(self) -> Option<W> {
        match self {
            ReplyError::Closed { answer, .. } | ReplyError::AlreadyAnswered { answer, .. } => {
                answer
            }
        }
    }
}

impl<W> Reply<W> {
    pub(crate) fn new(target: Arc<ReplyTarget<W>>, seq: u64) -> Self {
        Reply {
            target,
            seq,
            sent: AtomicBool::new(false),
        }
    }

    /// Sends `answer` to the channel (written and flushed on its loop,
    /// through the handlers before the offload layer, such as an encoder).
    /// Takes no lock and allocates nothing but, once per 31 answers to a
    /// channel, a block of its mailbox.
    ///
    /// # Errors
    /// [`ReplyError::Closed`] if the channel has closed,
    /// [`ReplyError::AlreadyAnswered`] if this request was answered before.
    pub fn send(&self, answer: W) -> Result<(), ReplyError<W>> {
        self.queue(Some(answer))
    }

    /// Answers the request with nothing (a request that needs no answer):
    /// it stops counting as in flight and, with
    /// [`Order::Arrival`](crate::Order::Arrival), lets the answers after it
    /// go.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn skip(&self) -> Result<(), ReplyError<W>> {
        self.queue(None)
    }

    fn queue(&self, body: Option<W>) -> Result<(), ReplyError<W>> {
        let seq = self.seq;
        // Relaxed: the flag guards against a second answer, it publishes
        // nothing; the mailbox push below carries the answer across.
        if self.sent.swap(true, Ordering::Relaxed) {
            return Err(ReplyError::AlreadyAnswered { seq, answer: body });
        }
        match self.target.handle.write_and_flush(Answer { seq, body }) {
            Ok(()) => Ok(()),
            Err(closed) => {
                let stats = &self.target.stats;
                stats.dropped_replies.fetch_add(1, Ordering::Relaxed);
                let answer = closed.into_inner().and_then(|a| a.body);
                Err(ReplyError::Closed { seq, answer })
            }
        }
    }

    /// Whether the channel is still open, as far as this thread can tell.
    pub fn is_open(&self) -> bool {
        self.target.handle.is_open()
    }

    /// The request's number on its connection (0, 1, 2, ... in arrival
    /// order).
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// Whether the request has been answered (or skipped).
    pub fn is_answered(&self) -> bool {
        self.sent.load(Ordering::Relaxed)
    }
}

impl<W> fmt::Debug for Reply<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("seq", &self.seq)
            .field("open", &self.is_open())
            .field("answered", &self.is_answered())
            .finish()
    }
}

/// One slot of the offload ring: a request and where its answer goes.
///
/// Make the ring with `Job::default` as its event factory; only the
/// offload layer fills jobs, and business handlers read them (see
/// [`OffloadStage`](crate::OffloadStage) for a whole server). The stage
/// that owns the events (added last with `Graph::then_owner`) gets them
/// mutably and moves the request and the reply out:
///
/// ```
/// use bytes::Bytes;
/// use gyre_reactor::Job;
/// use gyre_ringbuffer::{Disruptor, Stage};
///
/// let mut graph = Disruptor::builder(1024, Job::<Bytes, Bytes>::default).multi_producer()?;
/// graph.handle_events_with(Stage::new(|job: &Job<Bytes, Bytes>, _seq: i64, _end: bool| {
///     let _journal_entry = job.message().len(); // a shared stage reads
/// }));
/// let graph = graph.then_owner(Stage::owner_pool_with_factory(2, |_worker| {
///     |job: &mut Job<Bytes, Bytes>, _seq: i64| {
///         let (Some(request), Some(reply)) = (job.take_message(), job.take_reply()) else {
///             return;
///         };
///         let _ = reply.send(request); // the same Bytes, never copied
///     }
/// }));
/// let (producer, disruptor) = graph.start()?;
/// # drop(producer);
/// # disruptor.join();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Job<M, W> {
    message: Option<M>,
    reply: Option<Reply<W>>,
}

impl<M, W> Default for Job<M, W> {
    fn default() -> Self {
        Job {
            message: None,
            reply: None,
        }
    }
}

impl<M, W> Job<M, W> {
    /// The request.
    ///
    /// # Panics
    /// If the owner stage took it ([`take_message`](Self::take_message)),
    /// or on a slot the offload layer never filled (the ring's initial
    /// events, if something else published them).
    pub fn message(&self) -> &M {
        self.message
            .as_ref()
            .expect("a job published by the offload layer carries its message")
    }

    /// Where the answer goes.
    ///
    /// # Panics
    /// As [`message`](Self::message).
    pub fn reply(&self) -> &Reply<W> {
        self.reply
            .as_ref()
            .expect("a job published by the offload layer carries its reply")
    }

    /// Moves the request out of the slot, for the stage that owns the
    /// events (a `gyre_ringbuffer::Stage::owner` or `owner_pool`, the
    /// graph's last): no clone, no box, and the slot is reused empty.
    /// `None` if it was taken before.
    pub fn take_message(&mut self) -> Option<M> {
        self.message.take()
    }

    /// Moves the reply out of the slot, to answer later or from another
    /// thread (a future, a callback); the owner stage only. `None` if it
    /// was taken before.
    pub fn take_reply(&mut self) -> Option<Reply<W>> {
        self.reply.take()
    }

    /// Fills the slot; what it held before (a request already handled) is
    /// dropped here.
    pub(crate) fn fill(&mut self, message: M, reply: Reply<W>) {
        self.message = Some(message);
        self.reply = Some(reply);
    }
}

impl<M, W> fmt::Debug for Job<M, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("filled", &self.message.is_some())
            .field("reply", &self.reply)
            .finish()
    }
}
