//! The idle-state handler: reader-, writer- and all-idle events from the
//! loop's timers.

use crate::handler::{IdleState, IdleStateEvent, InboundContext, InboundHandler, UserEvent};
use crate::timer::TimerId;
use bytes::{Bytes, BytesMut};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

const READER: u64 = 0;
const WRITER: u64 = 1;
const ALL: u64 = 2;

/// Fires [`UserEvent::Idle`] when a channel has not read, written, or
/// either, for a while. A zero duration disables that kind.
///
/// "Written" means the socket took bytes: the channel's
/// [`last_output_progress`](crate::Channel::last_output_progress), so a
/// large write that is still trickling out to a slow reader counts as
/// output and the peer is not taken for idle. Each kind fires once with
/// `first: true`, then again every period with `first: false` until there is
/// activity. Put it first in the pipeline (it sees raw reads) and handle the
/// events in a later handler: ping on writer-idle, close on reader-idle.
///
/// ```
/// use gyre_reactor::{IdleStateHandler, Pipeline};
/// use std::time::Duration;
///
/// let pipeline = Pipeline::new().inbound(IdleStateHandler::new(
///     Duration::from_secs(60), // reader idle
///     Duration::from_secs(20), // writer idle
///     Duration::ZERO,          // all idle: off
/// ));
/// # let _ = pipeline;
/// ```
pub struct IdleStateHandler<M = BytesMut, W = Bytes> {
    reader_idle: Duration,
    writer_idle: Duration,
    all_idle: Duration,
    last_read: Instant,
    /// The channel's `bytes_read` when this handler last saw a read: a
    /// later count means bytes were read past it, by a thread the input
    /// was lent to, and that is read activity too.
    read_seen: u64,
    reading: bool,
    first: [bool; 3],
    timers: [Option<TimerId>; 3],
    _types: PhantomData<fn(M, W)>,
}

impl<M, W> IdleStateHandler<M, W> {
    /// An idle handler with these three times (zero: off).
    pub fn new(reader_idle: Duration, writer_idle: Duration, all_idle: Duration) -> Self {
        IdleStateHandler {
            reader_idle,
            writer_idle,
            all_idle,
            last_read: Instant::now(),
            read_seen: 0,
            reading: false,
            first: [true; 3],
            timers: [None; 3],
            _types: PhantomData,
        }
    }

    fn period(&self, kind: u64) -> Duration {
        match kind {
            READER => self.reader_idle,
            WRITER => self.writer_idle,
            _ => self.all_idle,
        }
    }
}

impl<M: 'static, W: 'static> IdleStateHandler<M, W> {
    fn start(&mut self, ctx: &mut impl InboundContext<Self>) {
        self.last_read = ctx.now();
        for kind in [READER, WRITER, ALL] {
            let p = self.period(kind);
            if !p.is_zero() && self.timers[kind as usize].is_none() {
                self.timers[kind as usize] = Some(ctx.schedule(p, kind));
            }
        }
    }

    fn stop(&mut self, ctx: &mut impl InboundContext<Self>) {
        for t in self.timers.iter_mut() {
            if let Some(id) = t.take() {
                ctx.cancel_timer(id);
            }
        }
    }

    fn read_activity(&mut self, now: Instant) {
        self.last_read = now;
        self.first[READER as usize] = true;
        self.first[ALL as usize] = true;
    }
}

impl<M: 'static, W: 'static> InboundHandler for IdleStateHandler<M, W> {
    type Read = M;
    type Pass = M;
    type Write = W;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        self.start(ctx);
        ctx.fire_active();
    }

    #[inline]
    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: M) {
        self.reading = true;
        ctx.fire_read(msg);
    }

    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        if self.reading {
            self.reading = false;
            self.read_seen = ctx.channel().bytes_read();
            self.read_activity(ctx.now());
        }
        ctx.fire_read_complete();
    }

    fn inactive(&mut self, ctx: &mut impl InboundContext<Self>) {
        self.stop(ctx);
        ctx.fire_inactive();
    }

    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, kind: u64) {
        self.timers[kind as usize] = None;
        if !ctx.channel().is_open() {
            return;
        }
        let now = ctx.now();
        let period = self.period(kind);
        let last_write = ctx.channel().last_output_progress();
        let read_total = ctx.channel().bytes_read();
        if self.reading || read_total != self.read_seen {
            // A read batch is in progress, or bytes were read under a
            // lend since the last look: that is activity.
            self.read_seen = read_total;
            self.read_activity(now);
        }
        let last = match kind {
            READER => self.last_read,
            WRITER => last_write,
            _ => self.last_read.max(last_write),
        };
        let idle_for = now.saturating_duration_since(last);
        if idle_for >= period {
            self.timers[kind as usize] = Some(ctx.schedule(period, kind));
            let first = std::mem::replace(&mut self.first[kind as usize], false);
            let state = match kind {
                READER => IdleState::ReaderIdle,
                WRITER => IdleState::WriterIdle,
                _ => IdleState::AllIdle,
            };
            ctx.fire_user_event(UserEvent::Idle(IdleStateEvent { state, first }));
        } else {
            if kind == WRITER || kind == ALL {
                self.first[kind as usize] = true;
            }
            self.timers[kind as usize] = Some(ctx.schedule(period - idle_for, kind));
        }
    }
}
