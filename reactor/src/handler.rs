//! The two handler traits a pipeline is made of, and the contexts they get.
//!
//! A pipeline layer has an inbound half ([`InboundHandler`]: events from the
//! socket towards the application) and an outbound half
//! ([`OutboundHandler`]: writes from the application towards the socket).
//! Each half names its message types, so the pipeline builder checks at
//! compile time that every layer takes what the previous one passes on, and
//! every call between layers is a static, inlinable call.
//!
//! The halves are separate values on purpose: an inbound handler that writes
//! sends its message through the outbound halves of the layers *before* it
//! (towards the socket), as a Netty `ctx.write` does, and keeping the halves
//! apart is what lets Rust hand out those `&mut` borrows without aliasing.

use crate::channel::Channel;
use crate::error::Error;
use crate::handle::ChannelHandle;
use crate::timer::TimerId;
pub use crate::user_event::{IdleState, IdleStateEvent, UserEvent};
use std::time::{Duration, Instant};

/// What an inbound handler may do with the pipeline and its channel.
///
/// Implemented by the pipeline for every layer; handlers take it as
/// `&mut impl InboundContext<Self>`.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gyre_reactor::{InboundContext, InboundHandler, TimerId};
/// use std::time::Duration;
///
/// /// Greets, answers each chunk with its length, and closes a
/// /// connection that has not spoken within five seconds of the greeting.
/// #[derive(Default)]
/// struct Counter {
///     deadline: Option<TimerId>,
/// }
///
/// impl InboundHandler for Counter {
///     type Read = BytesMut;
///     type Pass = BytesMut;
///     type Write = Bytes;
///
///     fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
///         ctx.write_and_flush(Bytes::from_static(b"hello\n"));
///         self.deadline = Some(ctx.schedule(Duration::from_secs(5), 0));
///         ctx.fire_active();
///     }
///
///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
///         if let Some(id) = self.deadline.take() {
///             ctx.cancel_timer(id);
///         }
///         ctx.write(Bytes::from(format!("{}\n", msg.len())));
///         // The next layer sees the chunk too.
///         ctx.fire_read(msg);
///     }
///
///     fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
///         ctx.flush();
///         ctx.fire_read_complete();
///     }
///
///     fn timer(&mut self, ctx: &mut impl InboundContext<Self>, _tag: u64) {
///         tracing::info!(peer = ?ctx.channel().peer_addr(), "silent; closing");
///         ctx.close();
///     }
/// }
/// ```
pub trait InboundContext<H: InboundHandler + ?Sized> {
    /// Passes "channel active" to the next handler.
    fn fire_active(&mut self);
    /// Passes a message to the next handler.
    fn fire_read(&mut self, msg: H::Pass);
    /// Passes "read batch complete" to the next handler.
    fn fire_read_complete(&mut self);
    /// Passes a writability change to the next handler.
    fn fire_writability_changed(&mut self, writable: bool);
    /// Passes a user event to the next handler.
    fn fire_user_event(&mut self, event: UserEvent);
    /// Passes an error to the next handler. If no handler handles it, the
    /// pipeline's tail logs it and closes this channel (only this one).
    fn fire_error(&mut self, error: Error);
    /// Passes "channel inactive" to the next handler.
    fn fire_inactive(&mut self);
    /// Writes through the outbound handlers before this layer. Queued, not
    /// sent, until a flush.
    fn write(&mut self, msg: H::Write);
    /// Sends what is queued, as far as the socket takes it; the rest goes
    /// out when the socket is writable again.
    fn flush(&mut self);
    /// `write` then `flush`.
    fn write_and_flush(&mut self, msg: H::Write) {
        self.write(msg);
        self.flush();
    }
    /// Closes the channel: stops reading, delivers what is queued (for at
    /// most the channel's close-drain timeout) and closes the socket.
    fn close(&mut self);
    /// Calls this handler's [`InboundHandler::timer`] with `tag` after
    /// `delay` (millisecond resolution).
    fn schedule(&mut self, delay: Duration, tag: u64) -> TimerId;
    /// Like [`schedule`](Self::schedule), then every `period` until
    /// cancelled or the channel closes.
    fn schedule_repeating(&mut self, delay: Duration, period: Duration, tag: u64) -> TimerId;
    /// Cancels a timer; returns whether it was still pending.
    fn cancel_timer(&mut self, id: TimerId) -> bool;
    /// Starts or stops reading from the socket. While off, the peer's data
    /// waits in the kernel and TCP flow control slows the peer down.
    fn set_auto_read(&mut self, on: bool);
    /// A `Send + Clone` handle that writes into the pipeline at this layer
    /// (through the outbound handlers before it) from any thread.
    fn handle(&mut self) -> ChannelHandle<H::Write>;
    /// The channel: addresses, writability, queued bytes.
    fn channel(&self) -> &Channel;
    /// The loop's clock, read once per loop turn.
    fn now(&self) -> Instant;
}

/// What an outbound handler may do.
///
/// ```
/// use bytes::Bytes;
/// use gyre_reactor::{Error, OutboundContext, OutboundHandler};
///
/// /// Frames each text line, and refuses (as an error event, which closes
/// /// the channel unless a handler takes it) a line that holds a newline.
/// struct LineEncoder;
///
/// impl OutboundHandler for LineEncoder {
///     type Write = String;
///     type Pass = Bytes;
///
///     fn write(&mut self, ctx: &mut impl OutboundContext<Self>, line: String) {
///         if line.contains('\n') {
///             let why = std::io::Error::new(std::io::ErrorKind::InvalidInput, "a newline in a line");
///             ctx.fail(Error::Io(why));
///             return;
///         }
///         ctx.write(Bytes::from(line + "\n"));
///         // Past the high watermark: flush now rather than queue more.
///         if !ctx.channel().is_writable() {
///             ctx.flush();
///         }
///     }
/// }
/// ```
pub trait OutboundContext<H: OutboundHandler + ?Sized> {
    /// Passes a message towards the socket.
    fn write(&mut self, msg: H::Pass);
    /// Passes a flush towards the socket.
    fn flush(&mut self);
    /// Passes a close towards the socket.
    fn close(&mut self);
    /// Reports a failure (an unencodable message, say) to the pipeline as
    /// an error event, once the current operation is done.
    fn fail(&mut self, error: Error);
    /// Turns reading from the socket on or off, as
    /// [`InboundContext::set_auto_read`] does (an outbound handler that
    /// sees answers leave may let requests in again).
    fn set_auto_read(&mut self, on: bool);
    /// The channel.
    fn channel(&self) -> &Channel;
}

/// The inbound half of a pipeline layer.
///
/// `Read` is what it takes from the layer before, `Pass` what it gives the
/// next, `Write` what it writes back towards the socket. Every method but
/// [`read`](Self::read) passes its event on by default.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gyre_reactor::{InboundContext, InboundHandler};
///
/// /// Writes every chunk it reads straight back.
/// struct Echo;
///
/// impl InboundHandler for Echo {
///     type Read = BytesMut;
///     type Pass = ();
///     type Write = Bytes;
///
///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
///         ctx.write(msg.freeze());
///     }
///
///     fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
///         ctx.flush();
///     }
/// }
/// ```
pub trait InboundHandler: 'static {
    /// The message this handler receives.
    type Read;
    /// The message it passes to the next handler.
    type Pass;
    /// The message it writes towards the socket.
    type Write;

    /// The channel became active (connected or accepted).
    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.fire_active();
    }

    /// A message arrived.
    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: Self::Read);

    /// The current batch of reads is over: a good moment to flush, or to
    /// hand over what the batch settled. On a channel that lends its
    /// input ([`ChannelOptions::lend_input`]), a batch that drained the
    /// socket has offered the input by now, so a thread woken here that
    /// asks for it at once gets it.
    ///
    /// [`ChannelOptions::lend_input`]: crate::ChannelOptions::lend_input
    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.fire_read_complete();
    }

    /// The outbound queue crossed a watermark; `writable` is the channel's
    /// writability now. Fired after the handler call in which the queue
    /// crossed, with the state at that point: a queue that went over the
    /// high watermark and drained under the low one within one call fires
    /// `true` (so a handler that saw `is_writable()` false in between and
    /// stopped serving buffered input resumes without waiting for new
    /// bytes), and the same value may thus arrive twice in a row.
    fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
        ctx.fire_writability_changed(writable);
    }

    /// An out-of-band event.
    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        ctx.fire_user_event(event);
    }

    /// An error on this channel.
    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: Error) {
        ctx.fire_error(error);
    }

    /// The channel closed; it fires exactly once per active channel.
    fn inactive(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.fire_inactive();
    }

    /// A timer this handler scheduled fired.
    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, tag: u64) {
        let _ = (ctx, tag);
    }

    /// Whether this handler keeps input it read and has not passed on: a
    /// decoder's partial frame. The loop lends a channel's input to
    /// another thread ([`ChannelOptions::lend_input`]) only while no
    /// handler does, so the borrower starts at a frame's first byte. The
    /// default says no; a handler that buffers input across reads must
    /// say yes while it does, if its channel lends input.
    ///
    /// [`ChannelOptions::lend_input`]: crate::ChannelOptions::lend_input
    fn holds_input(&self) -> bool {
        false
    }
}

/// The outbound half of a pipeline layer: takes `Write`, passes `Pass`
/// towards the socket.
///
/// ```
/// use bytes::Bytes;
/// use gyre_reactor::{OutboundContext, OutboundHandler};
///
/// /// Turns strings into bytes.
/// struct StrEncoder;
///
/// impl OutboundHandler for StrEncoder {
///     type Write = String;
///     type Pass = Bytes;
///
///     fn write(&mut self, ctx: &mut impl OutboundContext<Self>, msg: String) {
///         ctx.write(Bytes::from(msg));
///     }
/// }
/// ```
pub trait OutboundHandler: 'static {
    /// The message this handler accepts.
    type Write;
    /// The message it passes towards the socket.
    type Pass;

    /// A message to send.
    fn write(&mut self, ctx: &mut impl OutboundContext<Self>, msg: Self::Write);

    /// A flush request.
    fn flush(&mut self, ctx: &mut impl OutboundContext<Self>) {
        ctx.flush();
    }

    /// A close request.
    fn close(&mut self, ctx: &mut impl OutboundContext<Self>) {
        ctx.close();
    }
}
