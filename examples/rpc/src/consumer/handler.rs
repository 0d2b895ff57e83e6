//! The consumer's end of a connection: settles calls as answers arrive,
//! times out the ones past their deadline, pings the provider when the
//! connection has been quiet for a heartbeat period, and closes it when the
//! provider has been silent, heartbeats included, for three.

use super::pending::{Outgoing, Pending};
use crate::protocol::{heartbeat_frame, Frame, Kind};
use bytes::{Bytes, BytesMut};
use gyre_reactor::{Error, IdleState, InboundContext, InboundHandler, UserEvent};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const EXPIRE: u64 = 1;

pub(crate) struct ConsumerConnection {
    pub(crate) pending: Rc<RefCell<Pending>>,
    pub(crate) next_id: Arc<AtomicU64>,
    /// How often deadlines are checked: a timeout fires up to this late.
    pub(crate) tick: Duration,
    pub(crate) scratch: BytesMut,
}

impl InboundHandler for ConsumerConnection {
    type Read = Bytes;
    type Pass = ();
    type Write = Outgoing;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.schedule_repeating(self.tick, self.tick, EXPIRE);
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
            Kind::Request { .. } => {
                tracing::warn!(peer = ?ctx.channel().peer_addr(), "a provider sent a request; closing");
                ctx.close();
            }
        }
    }

    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, tag: u64) {
        if tag == EXPIRE {
            self.pending.borrow_mut().expire(ctx.now());
        }
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
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
        tracing::warn!(peer = ?ctx.channel().peer_addr(), %error, "closing connection");
        ctx.close();
    }
}
