//! One consumer's connection on the provider: decode, route, call (here or
//! on the pool), answer; pong the consumer's heartbeats; close a connection
//! that has sent nothing, not even a heartbeat, for three heartbeat
//! periods, and one past the provider's `accepts` as soon as it opens.
//! Each open connection joins the provider's channel group, for
//! shutdown's read-only notice.

use super::answer;
use super::inline;
use super::method::{AnswerTo, Body};
use super::pool::Call;
use super::responder::start_deferred;
use super::service::Dispatch;
use super::shared::Shared;
use crate::protocol::frame::PEER_WARNINGS;
use crate::protocol::{heartbeat_frame, Frame, Invocation, Kind, Status, ECHO_METHOD};
use bytes::{Bytes, BytesMut};
use gyre_reactor::{warn_limited, Error, IdleState, InboundContext, InboundHandler, UserEvent};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(crate) struct ProviderConnection {
    shared: Arc<Shared>,
    /// Counted among the provider's connections (under `accepts`): given
    /// back when the handler is dropped.
    counted: bool,
    /// Whether a worker pool's offload layer follows this one.
    pooled: bool,
    scratch: BytesMut,
}

impl ProviderConnection {
    pub(crate) fn new(shared: Arc<Shared>, pooled: bool) -> Self {
        ProviderConnection {
            shared,
            counted: false,
            pooled,
            scratch: BytesMut::new(),
        }
    }

    fn request(&mut self, ctx: &mut impl InboundContext<Self>, frame: Frame, two_way: bool) {
        let id = frame.header.request_id;
        let ser = frame.header.serialization;
        let inv = match Invocation::parse(&frame.body) {
            Ok(inv) => inv,
            Err(e) => {
                if two_way {
                    let f = answer::failure_frame(
                        &mut self.scratch,
                        id,
                        ser,
                        Status::BadRequest,
                        &e.to_string(),
                    );
                    ctx.write(f);
                }
                return;
            }
        };
        if let Some(token) = &self.shared.token {
            if inv.attachment(crate::protocol::TOKEN) != Some(&**token) {
                warn_limited!(PEER_WARNINGS, peer = ?ctx.channel().peer_addr(), service = inv.service, method = inv.method,
                    "call without this provider's token refused");
                if two_way {
                    let message = format!(
                        "{} refuses calls without the token its registration publishes (invalid or missing token)",
                        inv.service
                    );
                    let f = answer::failure_frame(
                        &mut self.scratch,
                        id,
                        ser,
                        Status::Forbidden,
                        &message,
                    );
                    ctx.write(f);
                }
                return;
            }
        }
        // Borrowed (a field apart from `scratch`): only a pooled call takes
        // its own count of the method.
        let (dispatch, method) = match self.shared.routes.find(inv.routing) {
            Some(route) => (route.dispatch, &route.method),
            None => {
                if two_way {
                    let found = self
                        .shared
                        .exports
                        .find(inv.service, inv.version, inv.group);
                    let message = match found {
                        // Dubbo's `$echo`: the argument back, unread.
                        Some(_) if inv.method == ECHO_METHOD => {
                            let max_body = self.shared.max_body;
                            let f = answer::response(&mut self.scratch, id, ser, max_body, |out| {
                                out.extend_from_slice(inv.args);
                                Ok(())
                            });
                            return ctx.write(f);
                        }
                        None => format!(
                            "no service {} (version {:?}, group {:?})",
                            inv.service, inv.version, inv.group
                        ),
                        Some(_) => format!("service {} has no method {}", inv.service, inv.method),
                    };
                    let f = answer::failure_frame(
                        &mut self.scratch,
                        id,
                        ser,
                        Status::ServiceNotFound,
                        &message,
                    );
                    ctx.write(f);
                }
                return;
            }
        };
        let args_at = frame.body.len() - inv.args.len();
        match dispatch {
            Dispatch::WorkerPool if self.pooled => {
                // Counted out by the worker, or by the pool's refusal.
                self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
                ctx.fire_read(Call {
                    method: method.clone(),
                    peer: ctx.channel().peer_addr(),
                    request_id: id,
                    serialization: ser,
                    args: frame.body.slice(args_at..),
                    two_way,
                });
            }
            _ => match &method.body {
                Body::Now(call) => {
                    let f = answer::filtered_call(
                        &mut self.scratch,
                        id,
                        ser,
                        self.shared.max_body,
                        method,
                        call,
                        inv.args,
                        &self.shared.filters,
                        ctx.channel().peer_addr(),
                    );
                    if two_way {
                        ctx.write(f);
                    }
                }
                Body::Later(call) => {
                    // Counted out by the responder's answer. One made
                    // before the method returns (a future ready at its
                    // first poll) comes back through the sink and goes out
                    // with this read's other answers, as a plain method's.
                    self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
                    let ticket = inline::open();
                    start_deferred(
                        method,
                        call,
                        id,
                        ser,
                        two_way,
                        inv.args,
                        ctx.channel().peer_addr(),
                        AnswerTo::Channel(ctx.handle()),
                        &self.shared.filters,
                        self.shared.max_body,
                        &self.shared.in_flight,
                        Some(ticket),
                    );
                    inline::close(|frame| ctx.write(frame));
                }
            },
        }
    }
}

impl Drop for ProviderConnection {
    fn drop(&mut self) {
        if self.counted {
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl InboundHandler for ProviderConnection {
    type Read = Bytes;
    /// Calls for the worker pool, to the offload layer after this one.
    type Pass = Call;
    type Write = Bytes;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        let accepts = self.shared.accepts;
        if accepts > 0 {
            let open = self.shared.connections.fetch_add(1, Ordering::Relaxed);
            if open >= accepts {
                self.shared.connections.fetch_sub(1, Ordering::Relaxed);
                // As Dubbo: closed at once, so the consumer fails now and
                // its cluster turns to another provider.
                warn_limited!(PEER_WARNINGS, peer = ?ctx.channel().peer_addr(), accepts,
                    "connection closed: the provider already serves as many as it accepts");
                return ctx.close();
            }
            self.counted = true;
        }
        self.shared.open.add(ctx.handle());
        ctx.fire_active();
    }

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, frame: Bytes) {
        let Some(frame) = Frame::parse_or_close(frame, ctx) else {
            return;
        };
        match frame.header.kind {
            Kind::Request { two_way } => self.request(ctx, frame, two_way),
            Kind::Heartbeat { request: true } => {
                let pong = heartbeat_frame(&mut self.scratch, false, frame.header.request_id);
                ctx.write(pong);
            }
            Kind::Heartbeat { request: false } => {}
            Kind::Response(_) | Kind::ReadOnly => {
                warn_limited!(PEER_WARNINGS, peer = ?ctx.channel().peer_addr(), "a consumer sent a response or a provider's notice; closing");
                ctx.close();
            }
        }
    }

    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.flush();
        // The offload layer publishes the pooled calls of this read now.
        ctx.fire_read_complete();
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        if let UserEvent::Idle(idle) = event {
            if idle.state == IdleState::ReaderIdle {
                tracing::info!(peer = ?ctx.channel().peer_addr(), "no heartbeat for three periods; closing");
                ctx.close();
            }
        }
    }

    fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
        // A consumer that stops reading its answers stops being read.
        ctx.set_auto_read(writable);
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: Error) {
        // An oversized or corrupt frame, or a socket error: this connection
        // only.
        warn_limited!(PEER_WARNINGS, peer = ?ctx.channel().peer_addr(), %error, "closing connection");
        ctx.close();
    }
}
