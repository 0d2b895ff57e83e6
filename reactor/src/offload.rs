//! The offload stage: the ring buffer fed by the reactor, and feeding it
//! back. A pipeline layer publishes each message it reads, with a [`Reply`]
//! for its channel, into a `gyre-ringbuffer` ring; business handlers on the
//! ring's threads (one stage, a worker pool, a graph) answer through the
//! reply from any thread, and the answer comes back into the pipeline on
//! the channel's loop. Uses the pipeline builder, the handler traits and
//! the ring buffer's producer; its parts are the slot (`job`), the
//! connection's flow control (`flow`) and the answers' order (`reorder`,
//! on the plain `arrival` sequencer).
//!
//! ```text
//!  loop 0: socket -> decoder -> Offload --.                      .-> Reply::send --.
//!  loop 1: socket -> decoder -> Offload ---+-> ring of Job<M, W> -+   (any thread)  |
//!                                          |   journal ∥ replicate -> business     |
//!  loop k: encoder <- Reorder <- mailbox <-+------------------------------------------'
//! ```
//!
//! **Topology.** One multi-producer ring, fed by every loop: a server has
//! one business graph, whose stages see all of its traffic in one order
//! (what a journal or a matching engine needs), and a connection's requests
//! enter it in their arrival order because a connection lives on one loop.
//! Publishing is one claim on the shared cursor per batch (below), so the
//! multi-producer sequencer's cost is paid once per socket read. Measured
//! against a single-producer ring per loop (`ring --only 1p1c-sequencer`,
//! one producer, AMD host): the shared ring costs about 3 ns per message
//! in batches of 64 against about 1 ns (about 50 ns against 7 ns one at a
//! time); at half a million messages a second per loop that is under 0.2%
//! of the loop's time, for one graph instead of one per loop.
//!
//! **Batches.** The layer queues the messages one socket read decodes and
//! publishes them at the read's end (`read_complete`) in one claim of the
//! ring, up to 64 at a time, so the business side is woken once per read,
//! not once per message. Handlers before it must pass `read_complete` on
//! (the default does).
//!
//! **Nothing allocates per message**: the slot is filled in place with the
//! message and a [`Reply`] (a reference-counted pointer to the
//! connection's reply target and a sequence number); an answer travels in
//! the channel's mailbox, a lock-free queue that allocates one block per 31
//! answers.
//!
//! **Backpressure never blocks a loop.** When the ring is full, the message
//! that did not fit (and any read behind it) is held in the layer, the
//! channel stops reading, and the layer tries again on a timer every
//! [`OffloadStage::retry_interval`] until the ring has room; the loop goes
//! on serving its other channels. No wake-up protocol ties the business
//! threads to the loops, so none can be lost, and the consumers pay nothing
//! per event for it. A connection likewise stops reading at
//! [`OffloadStage::max_in_flight`] unanswered requests (requests read past
//! it are held, and go in on the timer as answers make room; with none
//! held, the answer that makes room resumes reading), and while its
//! outbound queue is above the high watermark (its peer is not reading its
//! answers) until the queue drains under the low one. What a connection
//! holds is at most what one socket read decodes into
//! ([`OffloadStats::peak_held`]).
//!
//! **Lifecycle.** A request whose channel closed while it was in the ring
//! still reaches the business handlers; [`Reply::is_open`] tells them, and
//! [`Reply::send`] drops the answer and counts it
//! ([`OffloadStats::dropped_replies`]). On a graceful shutdown of the loops
//! ([`EventLoopGroup::shutdown_gracefully`](crate::EventLoopGroup::shutdown_gracefully)),
//! answers count as activity, so the quiet period waits for them; shut the
//! disruptor down afterwards (`Disruptor::shutdown` handles what was
//! published first).

pub(crate) mod arrival;
mod flow;
mod job;
mod reorder;

pub use job::{Answer, Job, OffloadStats, Reply, ReplyError};
pub use reorder::{Order, Reorder};

use crate::chain::{Append, Forward, Identity};
use crate::handler::{InboundContext, InboundHandler};
use crate::pipeline::Pipeline;
use flow::{Flow, Pause};
use gyre_ringbuffer::{BlockingWait, MultiProducer, PublishError, WaitStrategy};
use job::ReplyTarget;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A server's offload stage: the producer side of its business ring and the
/// settings every connection's [`Offload`] layer gets.
///
/// ```
/// use bytes::Bytes;
/// use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
/// use gyre_reactor::{Job, OffloadStage, Pipeline, ServerBootstrap};
/// use gyre_ringbuffer::{Disruptor, Stage};
/// use std::io::{BufRead, BufReader, Write};
///
/// // The business side: a worker pool of two threads answers each line
/// // upper-cased.
/// let mut graph = Disruptor::builder(1024, Job::<Bytes, Bytes>::default).multi_producer()?;
/// graph.handle_events_with(Stage::worker_pool_with_factory(2, |_worker| {
///     |job: &Job<Bytes, Bytes>, _seq: i64| {
///         let _ = job.reply().send(Bytes::from(job.message().to_ascii_uppercase()));
///     }
/// }));
/// let (producer, disruptor) = graph.start()?;
/// let stage = OffloadStage::new(producer);
///
/// let server = ServerBootstrap::new().bind("127.0.0.1:0", move |_peer| {
///     Pipeline::new()
///         .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
///         .offload(stage.connection())
/// })?;
///
/// let mut conn = std::net::TcpStream::connect(server.local_addr())?;
/// conn.write_all(b"hello\n")?;
/// let mut line = String::new();
/// BufReader::new(conn).read_line(&mut line)?;
/// assert_eq!(line, "HELLO\n");
///
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// let report = disruptor.shutdown(); // what was published is handled first
/// assert_eq!(report.processed, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OffloadStage<M, W, Wt: WaitStrategy = BlockingWait> {
    producer: MultiProducer<Job<M, W>, Wt>,
    order: Order,
    max_in_flight: usize,
    retry: Duration,
    stats: Arc<OffloadStats>,
    reject: Option<Rejecter<M, W>>,
    batch: usize,
}

impl<M, W, Wt: WaitStrategy> Clone for OffloadStage<M, W, Wt> {
    /// Another handle on the same ring, settings and counters (to give a
    /// second server the same business side).
    fn clone(&self) -> Self {
        OffloadStage {
            producer: self.producer.clone(),
            order: self.order,
            max_in_flight: self.max_in_flight,
            retry: self.retry,
            stats: self.stats.clone(),
            reject: self.reject.clone(),
            batch: self.batch,
        }
    }
}

/// Answers a request the full ring had no room for, instead of holding it.
type Rejecter<M, W> = Arc<dyn Fn(M) -> Option<W> + Send + Sync>;

impl<M, W, Wt: WaitStrategy> OffloadStage<M, W, Wt> {
    /// A stage publishing into the ring of `producer` (from
    /// `Disruptor::builder(capacity, Job::default).multi_producer()`), with
    /// answers in completion order, at most 1024 requests in flight per
    /// connection, and a 1 ms retry while the ring is full.
    pub fn new(producer: MultiProducer<Job<M, W>, Wt>) -> Self {
        OffloadStage {
            producer,
            order: Order::Completion,
            max_in_flight: 1024,
            retry: Duration::from_millis(1),
            stats: Arc::default(),
            reject: None,
            batch: BATCH,
        }
    }

    /// In what order each connection's answers reach its socket.
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// How many requests of one connection may be in the ring or with the
    /// business handlers at once (1024 by default). The connection stops
    /// reading there; requests it had already read wait in its layer (at
    /// most what one socket read holds) until answers make room.
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests.max(1);
        self
    }

    /// How often a connection that found the ring full tries again (the
    /// loop's timers tick in milliseconds; 1 ms by default).
    pub fn retry_interval(mut self, every: Duration) -> Self {
        self.retry = every.max(Duration::from_millis(1));
        self
    }

    /// Answer a request the full ring has no room for with `reject(request)`
    /// at once (`None`: answer nothing), instead of holding it and pausing
    /// the connection: a thread pool's abort policy, for protocols with an
    /// "overloaded, try another server" answer (Dubbo's, gyre-rpc's). The
    /// answer takes the request's place in [`Order::Arrival`]. The limit of
    /// requests in flight still holds and pauses. Once the ring is shut
    /// down, every request is answered this way (without a rejecter, the
    /// channel closes).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use gyre_reactor::{Job, OffloadStage};
    /// # use gyre_ringbuffer::{Disruptor, Stage};
    /// # let mut graph = Disruptor::builder(8, Job::<Bytes, Bytes>::default).multi_producer()?;
    /// # graph.handle_events_with(Stage::new(|_: &Job<Bytes, Bytes>, _: i64, _: bool| {}));
    /// # let (producer, _disruptor) = graph.start()?;
    /// let stage = OffloadStage::new(producer)
    ///     .reject_when_full(|_request: Bytes| Some(Bytes::from_static(b"BUSY")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reject_when_full(
        mut self,
        reject: impl Fn(M) -> Option<W> + Send + Sync + 'static,
    ) -> Self {
        self.reject = Some(Arc::new(reject));
        self
    }

    /// The most messages of one socket read published in one claim of the
    /// ring (64 by default; 1 publishes each message as it is decoded).
    /// A batch wakes a sleeping business thread once: on the AMD host at
    /// 50 connections x 8 in flight, 64 took the loop's futex calls from
    /// 131,051 to 46,543 per run (see BENCHMARKS.md).
    pub fn batch(mut self, messages: usize) -> Self {
        self.batch = messages.max(1);
        self
    }

    /// The stage's counters, shared by all its connections.
    pub fn stats(&self) -> Arc<OffloadStats> {
        self.stats.clone()
    }

    /// How full the business ring is now: requests published and not yet
    /// past every stage, and the ring's capacity (a snapshot, for a gauge).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use gyre_reactor::{Job, OffloadStage};
    /// use gyre_ringbuffer::{Disruptor, Stage};
    ///
    /// let mut graph = Disruptor::builder(1024, Job::<Bytes, Bytes>::default).multi_producer()?;
    /// graph.handle_events_with(Stage::new(|_: &Job<Bytes, Bytes>, _: i64, _: bool| {}));
    /// let (producer, disruptor) = graph.start()?;
    /// let stage = OffloadStage::new(producer);
    /// assert_eq!(stage.ring_fill(), (0, 1024));
    /// # drop(stage);
    /// # disruptor.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ring_fill(&self) -> (usize, usize) {
        let capacity = self.producer.capacity();
        (capacity - self.producer.remaining_capacity(), capacity)
    }

    /// The offload layer for one connection: call it in the pipeline
    /// factory and add it with [`Pipeline::offload`].
    pub fn connection(&self) -> Offload<M, W, Wt> {
        Offload {
            producer: self.producer.clone(),
            order: self.order,
            flow: Rc::new(Flow::new(self.max_in_flight)),
            target: None,
            stats: self.stats.clone(),
            next_seq: 0,
            queue: VecDeque::new(),
            batch: self.batch.min(self.producer.capacity()).max(1),
            retry: self.retry,
            retry_scheduled: false,
            peak_in_flight: 0,
            peak_held: 0,
            reject: self.reject.clone(),
        }
    }
}

/// One connection's offload layer (its inbound half): publishes each
/// message it reads into the ring with a [`Reply`], and holds messages
/// while the ring is full. Made by [`OffloadStage::connection`]; see
/// [`Reply`] for a whole server.
///
/// ```
/// use bytes::Bytes;
/// use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
/// use gyre_reactor::{Job, Offload, OffloadStage, Pipeline};
/// use gyre_ringbuffer::{Disruptor, Stage};
///
/// let mut graph = Disruptor::builder(1024, Job::<Bytes, Bytes>::default).multi_producer()?;
/// graph.handle_events_with(Stage::new(|_: &Job<Bytes, Bytes>, _: i64, _: bool| {}));
/// let (producer, disruptor) = graph.start()?;
/// let stage = OffloadStage::new(producer);
/// // One per connection, made in the pipeline factory; the last layer.
/// let layer: Offload<Bytes, Bytes> = stage.connection();
/// let pipeline = Pipeline::new()
///     .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
///     .offload(layer);
/// # drop((pipeline, stage));
/// # disruptor.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Offload<M, W, Wt: WaitStrategy = BlockingWait> {
    producer: MultiProducer<Job<M, W>, Wt>,
    order: Order,
    flow: Rc<Flow>,
    target: Option<Arc<ReplyTarget<W>>>,
    stats: Arc<OffloadStats>,
    next_seq: u64,
    /// Read, not yet published: this socket read's batch, or what the full
    /// ring or the connection's limit holds back.
    queue: VecDeque<M>,
    /// The most messages published in one claim (at most the ring's size).
    batch: usize,
    retry: Duration,
    retry_scheduled: bool,
    /// This connection's peaks, so the shared peaks are touched only when
    /// one rises.
    peak_in_flight: u64,
    peak_held: u64,
    reject: Option<Rejecter<M, W>>,
}

/// The retry timer's tag.
const RETRY: u64 = 0;

/// The most messages published in one claim of the ring.
const BATCH: usize = 64;

/// What one attempt to publish did.
enum Step {
    /// Published (or answered by the rejecter): go on.
    Went,
    /// The ring is full: hold the rest.
    Full,
    /// The ring is shut down: what was queued is answered or dropped.
    Closed,
}

impl<M, W, Wt> Offload<M, W, Wt>
where
    M: Send + Sync + 'static,
    W: Send + 'static,
    Wt: WaitStrategy + 'static,
{
    fn reply_target(&mut self, ctx: &mut impl InboundContext<Self>) -> Arc<ReplyTarget<W>> {
        let stats = &self.stats;
        self.target
            .get_or_insert_with(|| {
                Arc::new(ReplyTarget {
                    handle: ctx.handle(),
                    stats: stats.clone(),
                })
            })
            .clone()
    }

    /// Publishes what is queued, in order and in batches (one claim of the
    /// ring and one wake-up of its consumers per batch), while the ring has
    /// room and the connection is under its limit. What cannot go in is
    /// held: reading stops and the retry timer tries again. Or, with a
    /// rejecter, what the full ring has no room for is answered at once.
    fn publish_queued(&mut self, ctx: &mut impl InboundContext<Self>) {
        let target = self.reply_target(ctx);
        while !self.queue.is_empty() {
            let room = self.flow.room();
            if room == 0 {
                break;
            }
            let n = self.queue.len().min(room).min(self.batch);
            let step = if n == 1 {
                self.publish_one(ctx, &target)
            } else {
                let seq = self.next_seq;
                let queue = &mut self.queue;
                let published = self.producer.try_batch_publish(n, |i, job| {
                    let message = queue.pop_front().expect("queued");
                    job.fill(message, Reply::new(target.clone(), seq + i as u64));
                });
                match published {
                    Ok(_) => {
                        self.next_seq += n as u64;
                        self.flow.published(n as u64);
                        self.note_in_flight();
                        Step::Went
                    }
                    // Not room for all `n`: one alone, then a batch again.
                    Err(PublishError::Full) => self.publish_one(ctx, &target),
                    Err(_) => {
                        self.ring_closed(ctx);
                        Step::Closed
                    }
                }
            };
            match step {
                Step::Went => {}
                Step::Full => break,
                Step::Closed => return,
            }
        }
        if self.queue.is_empty() {
            // Nothing held: reading is paused for the limit if the
            // connection is at it (an answer lifts that), else not at all
            // (answers that came while messages were held left the limit's
            // pause for this moment).
            let was_paused = self.flow.is_any_paused();
            self.flow.resume(Pause::Held);
            if self.flow.at_limit() {
                self.flow.pause(Pause::InFlight);
            } else {
                self.flow.resume(Pause::InFlight);
            }
            let paused = self.flow.is_any_paused();
            if paused != was_paused {
                ctx.set_auto_read(!paused);
            }
        } else {
            self.hold(ctx);
        }
    }

    /// Publishes the first queued message alone (or, the ring being
    /// full, has the rejecter answer it).
    fn publish_one(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        target: &Arc<ReplyTarget<W>>,
    ) -> Step {
        let seq = self.next_seq;
        let queue = &mut self.queue;
        let published = self.producer.try_publish(|job| {
            let message = queue.pop_front().expect("queued");
            job.fill(message, Reply::new(target.clone(), seq));
        });
        match published {
            Ok(_) => {
                self.next_seq += 1;
                self.flow.published(1);
                self.note_in_flight();
                Step::Went
            }
            Err(PublishError::Full) => {
                self.stats.ring_full.fetch_add(1, Ordering::Relaxed);
                let Some(reject) = self.reject.clone() else {
                    return Step::Full;
                };
                let message = self.queue.pop_front().expect("queued");
                self.rejected(ctx, reject(message));
                Step::Went
            }
            Err(_) => {
                self.ring_closed(ctx);
                Step::Closed
            }
        }
    }

    fn note_in_flight(&mut self) {
        let in_flight = self.flow.in_flight();
        if in_flight > self.peak_in_flight {
            self.peak_in_flight = in_flight;
            self.stats
                .peak_in_flight
                .fetch_max(in_flight, Ordering::Relaxed);
        }
    }

    /// Holds what is queued (the ring is full or the connection at its
    /// limit): reading stops, and the retry timer will publish it.
    fn hold(&mut self, ctx: &mut impl InboundContext<Self>) {
        let held = self.queue.len() as u64;
        if held > self.peak_held {
            self.peak_held = held;
            self.stats.peak_held.fetch_max(held, Ordering::Relaxed);
        }
        if self.flow.pause(Pause::Held) {
            ctx.set_auto_read(false);
        }
        if !self.retry_scheduled {
            self.retry_scheduled = true;
            ctx.schedule(self.retry, RETRY);
        }
    }

    /// Sends the rejecting answer in the place of a request the ring had no
    /// room for (it counts as published and answered at once).
    fn rejected(&mut self, ctx: &mut impl InboundContext<Self>, body: Option<W>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.flow.published(1);
        ctx.write(Answer { seq, body });
        ctx.flush();
    }

    /// The ring is shut down (the business side stopped): every message
    /// queued is answered by the rejecter, if there is one; otherwise the
    /// channel closes, as nobody will answer it.
    fn ring_closed(&mut self, ctx: &mut impl InboundContext<Self>) {
        match self.reject.clone() {
            Some(reject) => {
                while let Some(message) = self.queue.pop_front() {
                    self.rejected(ctx, reject(message));
                }
            }
            None => {
                self.queue.clear();
                tracing::warn!(peer = ?ctx.channel().peer_addr(),
                    "the offload ring is shut down; closing the channel");
                ctx.close();
            }
        }
    }
}

impl<M, W, Wt> InboundHandler for Offload<M, W, Wt>
where
    M: Send + Sync + 'static,
    W: Send + 'static,
    Wt: WaitStrategy + 'static,
{
    type Read = M;
    type Pass = ();
    type Write = Answer<W>;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        self.reply_target(ctx);
        ctx.fire_active();
    }

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, message: M) {
        self.queue.push_back(message);
        // Published at the end of the socket read (one batch), or at once
        // when a batch is full; held messages wait for the retry timer.
        if self.queue.len() >= self.batch && !self.retry_scheduled {
            self.publish_queued(ctx);
        }
    }

    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        if !self.queue.is_empty() && !self.retry_scheduled {
            self.publish_queued(ctx);
        }
        ctx.fire_read_complete();
    }

    fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
        if !writable {
            if self.flow.pause(Pause::Unwritable) {
                ctx.set_auto_read(false);
            }
        } else if self.flow.resume(Pause::Unwritable) {
            ctx.set_auto_read(true);
        }
        ctx.fire_writability_changed(writable);
    }

    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, _tag: u64) {
        self.retry_scheduled = false;
        self.publish_queued(ctx);
    }

    fn inactive(&mut self, ctx: &mut impl InboundContext<Self>) {
        // Read but never published: the channel is gone, nobody can be
        // answered.
        self.queue.clear();
        ctx.fire_inactive();
    }
}

impl<L, R: 'static, W: 'static, S> Pipeline<L, R, W, S> {
    /// Adds a connection's offload layer (from
    /// [`OffloadStage::connection`]): every message read so far goes into
    /// the stage's ring, and the answers come back through the handlers
    /// before it (an encoder taking `W`). It is the pipeline's last layer.
    #[allow(clippy::type_complexity)]
    pub fn offload<Wt>(
        self,
        offload: Offload<R, W, Wt>,
    ) -> Pipeline<
        <L::Output as Append<(Offload<R, W, Wt>, Identity<Answer<W>>)>>::Output,
        (),
        Answer<W>,
        S,
    >
    where
        R: Send + Sync,
        W: Send,
        Wt: WaitStrategy + 'static,
        L: Append<(Forward<R, W>, Reorder<W>)>,
        L::Output: Append<(Offload<R, W, Wt>, Identity<Answer<W>>)>,
    {
        let reorder = Reorder::new(offload.order, offload.flow.clone());
        self.outbound(reorder).inbound(offload)
    }
}
