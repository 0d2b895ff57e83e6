//! The typed pipeline's chain: a compile-time list of layers, dispatched
//! statically. Uses the outbound path below it, the handler traits, the
//! handle's commands and mailbox.
//!
//! A pipeline is `Layer<I0, O0, Layer<I1, O1, ... End>>`, head (socket
//! side) outermost. Inbound events walk down the list; as they do, each
//! layer lends its outbound half to a [`Path`] that the next layer writes
//! through (see `path`). Nothing is boxed and nothing is looked up at run
//! time. The only dynamic call is the loop's one per readiness event, into
//! the channel as a whole.
//!
//! [`InboundChain`] and [`End`] are public so users can name a pipeline's
//! type; the trait is sealed, so only this module implements it, and its
//! methods (and [`Layer`], the contexts) are the reactor's.

use crate::batch::run_batch;
use crate::channel::Channel;
use crate::error::Error;
use crate::handle::{ChannelHandle, Command};
use crate::handler::{InboundContext, InboundHandler, OutboundContext, OutboundHandler, UserEvent};
use crate::mailbox::Mailbox;
use crate::path::{Io, OutboundPath, Path};
use crate::timer::TimerId;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod sealed {
    /// Implemented by the chain types only, so `InboundChain` can be named
    /// but not implemented outside this crate.
    pub trait Sealed {}
}

impl sealed::Sealed for End {}
impl<I: InboundHandler, O, R> sealed::Sealed for Layer<I, O, R> {}

/// The handlers of a [`Pipeline`](crate::Pipeline), as one statically dispatched chain: `M`
/// is what its first (socket-side) layer reads, `W` what that layer writes
/// towards the socket, and `TailWrite` what a write entering at the tail (a
/// [`ChannelHandle`](crate::ChannelHandle), a client's connect) must be.
///
/// Users never implement or call it (it is sealed, and its methods are the
/// reactor's); they name it, to write a pipeline's type without spelling
/// out every layer, as a factory function shared by several servers does:
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
/// use gyre_reactor::{InboundChain, InboundContext, InboundHandler, Pipeline, ServerBootstrap};
///
/// /// Answers every line upper-cased.
/// struct Shout;
///
/// impl InboundHandler for Shout {
///     type Read = Bytes;
///     type Pass = ();
///     type Write = Bytes;
///
///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, line: Bytes) {
///         ctx.write_and_flush(Bytes::from(line.to_ascii_uppercase()));
///     }
/// }
///
/// /// Every connection's pipeline: socket chunks in (`BytesMut`), `Bytes`
/// /// out to the socket; the last handler passes on `()` and writes `Bytes`.
/// fn lines() -> Pipeline<impl InboundChain<BytesMut, Bytes>, (), Bytes, Bytes> {
///     Pipeline::new()
///         .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
///         .inbound(Shout)
/// }
///
/// let server = ServerBootstrap::new().bind("127.0.0.1:0", |_peer| lines())?;
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), gyre_reactor::Error>(())
/// ```
pub trait InboundChain<M, W>: sealed::Sealed {
    /// What a write entering at the tail (a bootstrap's handle) must be.
    type TailWrite;
    /// Number of layers.
    const LEN: usize;

    /// Fires active.
    fn active<P: OutboundPath<W>>(&mut self, io: &mut Io<'_>, path: &mut P);
    /// Fires read.
    fn read<P: OutboundPath<W>>(&mut self, io: &mut Io<'_>, path: &mut P, msg: M);
    /// Fires read-complete.
    fn read_complete<P: OutboundPath<W>>(&mut self, io: &mut Io<'_>, path: &mut P);
    /// Fires a writability change.
    fn writability_changed<P: OutboundPath<W>>(
        &mut self,
        io: &mut Io<'_>,
        path: &mut P,
        writable: bool,
    );
    /// Fires a user event.
    fn user_event<P: OutboundPath<W>>(&mut self, io: &mut Io<'_>, path: &mut P, ev: UserEvent);
    /// Fires an error.
    fn error<P: OutboundPath<W>>(&mut self, io: &mut Io<'_>, path: &mut P, error: Error);
    /// Fires inactive.
    fn inactive<P: OutboundPath<W>>(&mut self, io: &mut Io<'_>, path: &mut P);
    /// Delivers a timer to layer `layer` (counted from this one).
    fn timer<P: OutboundPath<W>>(&mut self, io: &mut Io<'_>, path: &mut P, layer: usize, tag: u64);
    /// Runs the queued cross-thread commands of every layer, up to a
    /// budget each; true if some layer may have more and the channel must
    /// be put back in the loop's inbox.
    fn drain_mailboxes<P: OutboundPath<W>>(&mut self, io: &mut Io<'_>, path: &mut P) -> bool;
    /// Closes every layer's mailbox and drops what is queued in them.
    fn close_mailboxes(&mut self);
    /// Whether some layer keeps input it has not passed on.
    fn holds_input(&self) -> bool;
    /// Runs a command that entered at the tail.
    fn tail_command<P: OutboundPath<W>>(
        &mut self,
        io: &mut Io<'_>,
        path: &mut P,
        cmd: Command<Self::TailWrite>,
    );
}

/// The tail of every pipeline: drops unhandled messages, closes the channel
/// on an unhandled error.
///
/// A [`Pipeline`](crate::Pipeline) starts from it; layers go in front:
///
/// ```
/// use gyre_reactor::{End, Pipeline};
///
/// let empty: Pipeline<End> = Pipeline::new();
/// # let _ = empty;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct End;

impl<M, W> InboundChain<M, W> for End {
    type TailWrite = W;
    const LEN: usize = 0;

    fn active<P: OutboundPath<W>>(&mut self, _: &mut Io<'_>, _: &mut P) {}
    #[inline]
    fn read<P: OutboundPath<W>>(&mut self, _: &mut Io<'_>, _: &mut P, _: M) {}
    fn read_complete<P: OutboundPath<W>>(&mut self, _: &mut Io<'_>, _: &mut P) {}
    fn writability_changed<P: OutboundPath<W>>(&mut self, _: &mut Io<'_>, _: &mut P, _: bool) {}
    fn user_event<P: OutboundPath<W>>(&mut self, _: &mut Io<'_>, _: &mut P, _: UserEvent) {}
    fn error<P: OutboundPath<W>>(&mut self, io: &mut Io<'_>, path: &mut P, error: Error) {
        tracing::debug!(
            peer = ?io.ch.peer_addr(),
            %error,
            "unhandled error reached the pipeline's tail; closing the channel"
        );
        path.close(io);
    }
    fn inactive<P: OutboundPath<W>>(&mut self, _: &mut Io<'_>, _: &mut P) {}
    fn timer<P: OutboundPath<W>>(&mut self, _: &mut Io<'_>, _: &mut P, _: usize, _: u64) {}
    fn drain_mailboxes<P: OutboundPath<W>>(&mut self, _: &mut Io<'_>, _: &mut P) -> bool {
        false
    }
    fn close_mailboxes(&mut self) {}
    fn holds_input(&self) -> bool {
        false
    }
    fn tail_command<P: OutboundPath<W>>(&mut self, io: &mut Io<'_>, path: &mut P, cmd: Command<W>) {
        run_command(io, path, cmd);
    }
}

fn run_command<W, P: OutboundPath<W>>(io: &mut Io<'_>, path: &mut P, cmd: Command<W>) {
    match cmd {
        Command::Write(m) => path.write(io, m),
        Command::WriteAndFlush(m) => {
            path.write(io, m);
            path.flush(io);
        }
        Command::Flush => path.flush(io),
        Command::Close => path.close(io),
        Command::FlushThen(notice) => {
            path.flush(io);
            io.ch.notify_when_sent(notice);
        }
        // Events go to inbound handlers, which an outbound path does not
        // reach: the layer and the channel task deliver them before a
        // command gets here, so one that did would have nobody to tell.
        Command::UserEvent(_) => {}
    }
}

/// One layer: an inbound half, an outbound half, a lazily made mailbox for
/// handles created at this layer, and the rest of the pipeline.
pub struct Layer<I: InboundHandler, O, R> {
    inbound: I,
    outbound: O,
    mailbox: Option<Arc<Mailbox<Command<I::Write>>>>,
    rest: R,
}

macro_rules! with_ctx {
    ($self:ident, $io:ident, $path:ident, |$ctx:ident| $body:expr) => {{
        let mut $ctx = Ctx {
            io: $io,
            outbound: &mut $self.outbound,
            rest: &mut $self.rest,
            prefix: $path,
            mailbox: &mut $self.mailbox,
            layer: Self::LAYER_FROM_TAIL,
        };
        $body
    }};
}

impl<I, O, R> Layer<I, O, R>
where
    I: InboundHandler,
    O: OutboundHandler<Pass = I::Write>,
    R: InboundChain<I::Pass, O::Write>,
{
    /// This layer's distance from the tail, which does not depend on how
    /// many layers come before it.
    const LAYER_FROM_TAIL: usize = R::LEN;
}

impl<I, O, R> InboundChain<I::Read, I::Write> for Layer<I, O, R>
where
    I: InboundHandler,
    O: OutboundHandler<Pass = I::Write>,
    R: InboundChain<I::Pass, O::Write>,
{
    type TailWrite = R::TailWrite;
    const LEN: usize = R::LEN + 1;

    fn active<P: OutboundPath<I::Write>>(&mut self, io: &mut Io<'_>, path: &mut P) {
        with_ctx!(self, io, path, |ctx| self.inbound.active(&mut ctx))
    }

    #[inline]
    fn read<P: OutboundPath<I::Write>>(&mut self, io: &mut Io<'_>, path: &mut P, msg: I::Read) {
        with_ctx!(self, io, path, |ctx| self.inbound.read(&mut ctx, msg))
    }

    #[inline]
    fn read_complete<P: OutboundPath<I::Write>>(&mut self, io: &mut Io<'_>, path: &mut P) {
        with_ctx!(self, io, path, |ctx| self.inbound.read_complete(&mut ctx))
    }

    fn writability_changed<P: OutboundPath<I::Write>>(
        &mut self,
        io: &mut Io<'_>,
        path: &mut P,
        writable: bool,
    ) {
        with_ctx!(self, io, path, |ctx| self
            .inbound
            .writability_changed(&mut ctx, writable))
    }

    fn user_event<P: OutboundPath<I::Write>>(
        &mut self,
        io: &mut Io<'_>,
        path: &mut P,
        ev: UserEvent,
    ) {
        with_ctx!(self, io, path, |ctx| self.inbound.user_event(&mut ctx, ev))
    }

    fn error<P: OutboundPath<I::Write>>(&mut self, io: &mut Io<'_>, path: &mut P, error: Error) {
        with_ctx!(self, io, path, |ctx| self.inbound.error(&mut ctx, error))
    }

    fn inactive<P: OutboundPath<I::Write>>(&mut self, io: &mut Io<'_>, path: &mut P) {
        with_ctx!(self, io, path, |ctx| self.inbound.inactive(&mut ctx))
    }

    fn timer<P: OutboundPath<I::Write>>(
        &mut self,
        io: &mut Io<'_>,
        path: &mut P,
        layer: usize,
        tag: u64,
    ) {
        if layer == Self::LAYER_FROM_TAIL {
            with_ctx!(self, io, path, |ctx| self.inbound.timer(&mut ctx, tag))
        } else {
            let mut next = Path {
                handler: &mut self.outbound,
                prev: path,
            };
            self.rest.timer(io, &mut next, layer, tag);
        }
    }

    fn drain_mailboxes<P: OutboundPath<I::Write>>(
        &mut self,
        io: &mut Io<'_>,
        path: &mut P,
    ) -> bool {
        let mut more = false;
        // A clone: an event's handler may make this layer's handle, which
        // needs the mailbox field.
        if let Some(mailbox) = self.mailbox.clone() {
            mailbox.begin_drain();
            more = run_batch(
                || mailbox.pop(),
                |cmd| match cmd {
                    // A handle this layer made: its own handler hears it.
                    Command::UserEvent(event) => self.user_event(io, path, event),
                    cmd => run_command(io, path, cmd),
                },
            ) && mailbox.reschedule();
        }
        let mut next = Path {
            handler: &mut self.outbound,
            prev: path,
        };
        self.rest.drain_mailboxes(io, &mut next) | more
    }

    fn close_mailboxes(&mut self) {
        if let Some(mailbox) = &self.mailbox {
            mailbox.close();
            while mailbox.pop().is_some() {}
        }
        self.rest.close_mailboxes();
    }

    fn holds_input(&self) -> bool {
        self.inbound.holds_input() || self.rest.holds_input()
    }

    fn tail_command<P: OutboundPath<I::Write>>(
        &mut self,
        io: &mut Io<'_>,
        path: &mut P,
        cmd: Command<R::TailWrite>,
    ) {
        let mut next = Path {
            handler: &mut self.outbound,
            prev: path,
        };
        self.rest.tail_command(io, &mut next, cmd);
    }
}

/// The context of an inbound handler: the rest of the pipeline ahead of it,
/// the outbound path behind it, and the channel.
pub struct Ctx<'a, 'io, O, R, P, W> {
    io: &'a mut Io<'io>,
    outbound: &'a mut O,
    rest: &'a mut R,
    prefix: &'a mut P,
    mailbox: &'a mut Option<Arc<Mailbox<Command<W>>>>,
    layer: usize,
}

impl<H, O, R, P> InboundContext<H> for Ctx<'_, '_, O, R, P, H::Write>
where
    H: InboundHandler,
    O: OutboundHandler<Pass = H::Write>,
    R: InboundChain<H::Pass, O::Write>,
    P: OutboundPath<H::Write>,
{
    fn fire_active(&mut self) {
        let mut next = Path {
            handler: &mut *self.outbound,
            prev: &mut *self.prefix,
        };
        self.rest.active(self.io, &mut next);
    }

    #[inline]
    fn fire_read(&mut self, msg: H::Pass) {
        let mut next = Path {
            handler: &mut *self.outbound,
            prev: &mut *self.prefix,
        };
        self.rest.read(self.io, &mut next, msg);
    }

    #[inline]
    fn fire_read_complete(&mut self) {
        let mut next = Path {
            handler: &mut *self.outbound,
            prev: &mut *self.prefix,
        };
        self.rest.read_complete(self.io, &mut next);
    }

    fn fire_writability_changed(&mut self, writable: bool) {
        let mut next = Path {
            handler: &mut *self.outbound,
            prev: &mut *self.prefix,
        };
        self.rest.writability_changed(self.io, &mut next, writable);
    }

    fn fire_user_event(&mut self, event: UserEvent) {
        let mut next = Path {
            handler: &mut *self.outbound,
            prev: &mut *self.prefix,
        };
        self.rest.user_event(self.io, &mut next, event);
    }

    fn fire_error(&mut self, error: Error) {
        let mut next = Path {
            handler: &mut *self.outbound,
            prev: &mut *self.prefix,
        };
        self.rest.error(self.io, &mut next, error);
    }

    fn fire_inactive(&mut self) {
        let mut next = Path {
            handler: &mut *self.outbound,
            prev: &mut *self.prefix,
        };
        self.rest.inactive(self.io, &mut next);
    }

    #[inline]
    fn write(&mut self, msg: H::Write) {
        self.prefix.write(self.io, msg);
    }

    #[inline]
    fn flush(&mut self) {
        self.prefix.flush(self.io);
    }

    fn close(&mut self) {
        self.prefix.close(self.io);
    }

    fn schedule(&mut self, delay: Duration, tag: u64) -> TimerId {
        self.io
            .ch
            .schedule_timer(self.io.lp, self.layer, tag, delay, None)
    }

    fn schedule_repeating(&mut self, delay: Duration, period: Duration, tag: u64) -> TimerId {
        self.io
            .ch
            .schedule_timer(self.io.lp, self.layer, tag, delay, Some(period))
    }

    fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.io.lp.cancel_timer(id)
    }

    fn set_auto_read(&mut self, on: bool) {
        self.io.ch.set_auto_read(on, self.io.lp);
    }

    fn handle(&mut self) -> ChannelHandle<H::Write> {
        let mailbox = self.mailbox.get_or_insert_with(|| {
            let m = Arc::new(Mailbox::new());
            if !self.io.ch.is_open() {
                m.close();
            }
            m
        });
        ChannelHandle::new(
            mailbox.clone(),
            self.io.ch.token(),
            self.io.lp.shared(),
            self.io.ch.direct_gate(),
        )
    }

    fn channel(&self) -> &Channel {
        self.io.ch
    }

    fn now(&self) -> Instant {
        self.io.lp.now()
    }
}

/// An outbound half that passes writes on unchanged; the outbound half of
/// an inbound-only layer.
pub struct Identity<W>(pub(crate) PhantomData<fn(W) -> W>);

impl<W: 'static> OutboundHandler for Identity<W> {
    type Write = W;
    type Pass = W;

    #[inline]
    fn write(&mut self, ctx: &mut impl OutboundContext<Self>, msg: W) {
        ctx.write(msg);
    }
}

/// An inbound half that passes reads on unchanged; the inbound half of an
/// outbound-only layer.
pub struct Forward<M, W>(pub(crate) PhantomData<fn(M, W)>);

impl<M: 'static, W: 'static> InboundHandler for Forward<M, W> {
    type Read = M;
    type Pass = M;
    type Write = W;

    #[inline]
    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: M) {
        ctx.fire_read(msg);
    }
}

/// Appends a layer at the tail of a layer list.
pub trait Append<X> {
    /// The longer list.
    type Output;
    /// Appends `x`.
    fn append(self, x: X) -> Self::Output;
}

impl<I: InboundHandler, O> Append<(I, O)> for End {
    type Output = Layer<I, O, End>;
    fn append(self, (inbound, outbound): (I, O)) -> Self::Output {
        Layer {
            inbound,
            outbound,
            mailbox: None,
            rest: End,
        }
    }
}

impl<I: InboundHandler, O, R: Append<X>, X> Append<X> for Layer<I, O, R> {
    type Output = Layer<I, O, R::Output>;
    fn append(self, x: X) -> Self::Output {
        Layer {
            inbound: self.inbound,
            outbound: self.outbound,
            mailbox: self.mailbox,
            rest: self.rest.append(x),
        }
    }
}
