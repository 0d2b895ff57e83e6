//! The consumer's end of a connection: settles calls as answers arrive,
//! times out the ones past their deadline, pings the provider when the
//! connection has been quiet for a heartbeat period, and closes it when the
//! provider has been silent, heartbeats included, for three.
//!
//! Deadlines are checked on a repeating tick, which stops after
//! [`PAUSE_AFTER_TICKS`] ticks with nothing in flight and no call started
//! (an idle connection then costs its loop no wake-ups: a thousand
//! ticking every 5 ms took 18% of a core with their provider, `rpc
//! --idle 1000`), and starts again when a call
//! is filed: by the loop itself, or at a caller's bidding through the
//! connection's handle (the filings' `TimerPause`).

use super::filings::Filings;
use super::pending::{Outgoing, Pending};
use crate::protocol::frame::PEER_WARNINGS;
use crate::protocol::{heartbeat_frame, Frame, Kind};
use bytes::{Bytes, BytesMut};
use gyre_reactor::{
    warn_limited, Error, IdleState, InboundContext, InboundHandler, TimerId, UserEvent,
};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const EXPIRE: u64 = 1;

/// Ticks with nothing in flight and no call started after which the
/// deadline check pauses (100 ms at the default 5 ms tick): long enough
/// that a caller making calls one after another never meets a pause,
/// whose end costs the loop a wake-up.
const PAUSE_AFTER_TICKS: u32 = 20;

/// The event a caller's thread sends the connection's loop to have its
/// deadline check tick again (a unit struct: boxing it allocates nothing).
struct ResumeTicks;

pub(crate) struct ConsumerConnection {
    pending: Rc<RefCell<Pending>>,
    next_id: Arc<AtomicU64>,
    /// How often deadlines are checked: a timeout fires up to this late.
    tick: Duration,
    scratch: BytesMut,
    /// The tick, while it runs.
    ticking: Option<TimerId>,
    /// Ticks in a row with nothing in flight and no call started.
    idle_ticks: u32,
    /// The next call id at the last tick.
    last_id: u64,
    /// Set when the provider says it is shutting down; shared with the
    /// connection's `Link`.
    read_only: Arc<AtomicBool>,
}

impl ConsumerConnection {
    /// A connection's end with its deadlines checked every `tick`; it
    /// sets `read_only` when the provider says it is shutting down.
    pub(crate) fn new(
        pending: Rc<RefCell<Pending>>,
        next_id: Arc<AtomicU64>,
        tick: Duration,
        read_only: Arc<AtomicBool>,
    ) -> ConsumerConnection {
        ConsumerConnection {
            pending,
            next_id,
            tick,
            read_only,
            scratch: BytesMut::new(),
            ticking: None,
            idle_ticks: 0,
            last_id: 0,
        }
    }

    fn start_ticking(&mut self, ctx: &mut impl InboundContext<Self>) {
        if self.ticking.is_none() {
            self.idle_ticks = 0;
            self.ticking = Some(ctx.schedule_repeating(self.tick, self.tick, EXPIRE));
        }
    }

    /// After a tick: counts it idle or not, and stops ticking after
    /// [`PAUSE_AFTER_TICKS`] idle ones unless a caller is filing just now.
    fn maybe_pause(&mut self, ctx: &mut impl InboundContext<Self>) {
        let id = self.next_id.load(Ordering::Relaxed);
        let pending = self.pending.borrow();
        let waiting = &pending.waiting;
        let idle = id == self.last_id && waiting.load(Ordering::Relaxed) == 0;
        self.last_id = id;
        self.idle_ticks = if idle { self.idle_ticks + 1 } else { 0 };
        if self.idle_ticks < PAUSE_AFTER_TICKS {
            return;
        }
        let filings: &Filings = &pending.filings;
        if filings
            .ticks
            .pause_unless(|| waiting.load(Ordering::Relaxed) > 0)
        {
            if let Some(timer) = self.ticking.take() {
                ctx.cancel_timer(timer);
            }
        }
        self.idle_ticks = 0;
    }
}

impl InboundHandler for ConsumerConnection {
    type Read = Bytes;
    type Pass = ();
    type Write = Outgoing;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        // Before the first tick, so before any pause: how a caller that
        // files into a paused connection has it tick again.
        let handle = ctx.handle();
        self.pending.borrow().filings.set_resume(move || {
            // A closed connection has nothing left to time out.
            let _ = handle.fire_user_event(UserEvent::Custom(Box::new(ResumeTicks)));
        });
        self.start_ticking(ctx);
        ctx.fire_active();
    }

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, frame: Bytes) {
        let Some(frame) = Frame::parse_or_close(frame, ctx) else {
            return;
        };
        match frame.header.kind {
            Kind::Response(status) => {
                self.pending
                    .borrow_mut()
                    .settle(frame.header.request_id, Ok((status, frame.body)));
            }
            Kind::Heartbeat { request: true } => {
                let pong = heartbeat_frame(&mut self.scratch, false, frame.header.request_id);
                ctx.write_and_flush(Outgoing::Frame(pong));
            }
            Kind::Heartbeat { request: false } => {}
            Kind::ReadOnly => {
                // Its calls are still answered; clusters choose others.
                tracing::info!(peer = ?ctx.channel().peer_addr(), "the provider is shutting down: no new calls to it where there is another");
                self.read_only.store(true, Ordering::Release);
            }
            Kind::Request { .. } => {
                warn_limited!(PEER_WARNINGS, peer = ?ctx.channel().peer_addr(), "a provider sent a request; closing");
                ctx.close();
            }
        }
    }

    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        // The loop has offered the input by now (if it lends it): callers
        // woken here may read their next answers themselves.
        self.pending.borrow_mut().hand_over();
        ctx.fire_read_complete();
    }

    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, tag: u64) {
        if tag == EXPIRE {
            self.pending.borrow_mut().expire(ctx.now());
            self.maybe_pause(ctx);
        }
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        if let UserEvent::Custom(what) = &event {
            if what.is::<ResumeTicks>() {
                self.start_ticking(ctx);
                return;
            }
        }
        if let UserEvent::Idle(idle) = event {
            match idle.state {
                IdleState::WriterIdle => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let ping = heartbeat_frame(&mut self.scratch, true, id);
                    ctx.write_and_flush(Outgoing::Frame(ping));
                }
                IdleState::ReaderIdle => {
                    tracing::info!(peer = ?ctx.channel().peer_addr(), "provider silent for three heartbeats; closing");
                    ctx.close();
                }
                IdleState::AllIdle => {}
            }
        }
    }

    fn inactive(&mut self, ctx: &mut impl InboundContext<Self>) {
        self.pending.borrow_mut().close_all();
        ctx.fire_inactive();
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: Error) {
        warn_limited!(PEER_WARNINGS, peer = ?ctx.channel().peer_addr(), %error, "closing connection");
        ctx.close();
    }
}
