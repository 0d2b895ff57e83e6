//! The outbound direction of a pipeline: the channel and loop lent to it
//! for one event ([`Io`]), a path from some layer down to the socket
//! ([`OutboundPath`]), its end at the channel's queue ([`HeadPath`]), one
//! outbound handler in front of the rest ([`Path`]) and an outbound
//! handler's context. Uses the channel, the loop's local state and the
//! handler traits.
//!
//! As an inbound event walks down the layers, each lends its outbound half
//! to a `Path` the next layer writes through, so a write from layer *k*
//! runs the outbound halves *k-1 .. 0* and then the channel's queue; every
//! hop is a generic call the compiler can inline. These types are public
//! (the chain traits name them) but unnameable outside the crate.

use crate::channel::Channel;
use crate::error::Error;
use crate::event_loop::LoopLocal;
use crate::handler::{OutboundContext, OutboundHandler};
use crate::outbound::Outbound;

/// The channel and its loop, lent to the pipeline for one event.
pub struct Io<'a> {
    pub(crate) ch: &'a mut Channel,
    pub(crate) lp: &'a mut LoopLocal,
}

/// The outbound direction from some layer down to the socket.
pub trait OutboundPath<M> {
    /// Sends `msg` on towards the socket.
    fn write(&mut self, io: &mut Io<'_>, msg: M);
    /// Passes a flush on.
    fn flush(&mut self, io: &mut Io<'_>);
    /// Passes a close on.
    fn close(&mut self, io: &mut Io<'_>);
}

/// The end of every outbound path: the channel's queue of `Bytes` and
/// file regions.
pub struct HeadPath;

impl<M: Into<Outbound>> OutboundPath<M> for HeadPath {
    #[inline]
    fn write(&mut self, io: &mut Io<'_>, msg: M) {
        io.ch.enqueue(msg.into());
    }

    #[inline]
    fn flush(&mut self, io: &mut Io<'_>) {
        io.ch.flush(io.lp);
    }

    fn close(&mut self, io: &mut Io<'_>) {
        io.ch.request_close();
    }
}

/// An outbound handler in front of the rest of a path.
pub struct Path<'a, O, P> {
    pub(crate) handler: &'a mut O,
    pub(crate) prev: &'a mut P,
}

impl<O, P> OutboundPath<O::Write> for Path<'_, O, P>
where
    O: OutboundHandler,
    P: OutboundPath<O::Pass>,
{
    #[inline]
    fn write(&mut self, io: &mut Io<'_>, msg: O::Write) {
        self.handler.write(
            &mut OutCtx {
                io,
                prev: self.prev,
            },
            msg,
        );
    }

    #[inline]
    fn flush(&mut self, io: &mut Io<'_>) {
        self.handler.flush(&mut OutCtx {
            io,
            prev: self.prev,
        });
    }

    fn close(&mut self, io: &mut Io<'_>) {
        self.handler.close(&mut OutCtx {
            io,
            prev: self.prev,
        });
    }
}

/// The context of an outbound handler.
pub struct OutCtx<'a, 'io, P> {
    io: &'a mut Io<'io>,
    prev: &'a mut P,
}

impl<H, P> OutboundContext<H> for OutCtx<'_, '_, P>
where
    H: OutboundHandler,
    P: OutboundPath<H::Pass>,
{
    #[inline]
    fn write(&mut self, msg: H::Pass) {
        self.prev.write(self.io, msg);
    }

    #[inline]
    fn flush(&mut self) {
        self.prev.flush(self.io);
    }

    fn close(&mut self) {
        self.prev.close(self.io);
    }

    fn fail(&mut self, error: Error) {
        self.io.ch.record_error(error);
    }

    fn set_auto_read(&mut self, on: bool) {
        self.io.ch.set_auto_read(on, self.io.lp);
    }

    fn channel(&self) -> &Channel {
        self.io.ch
    }
}
