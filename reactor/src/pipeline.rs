//! The pipeline builder users write: [`Pipeline`] adds handlers head
//! (socket side) first, checking each against the last at compile time,
//! and builds the chain (`chain`) the channel runs.

use crate::chain::{Append, End, Forward, Identity};
use crate::datagram::Datagram;
use crate::handler::{InboundHandler, OutboundHandler};
use crate::outbound::Outbound;
use bytes::{Bytes, BytesMut};
use std::marker::PhantomData;

/// A pipeline under construction, head (socket side) first.
///
/// Its type parameters say what the next handler added must fit:
/// - `L`: the layers so far, an [`InboundChain`](crate::InboundChain) ([`End`] when empty: the
///   tail that drops unhandled messages and closes on unhandled errors);
/// - `R`: the message the next inbound handler must read (the socket's
///   `BytesMut` chunks at first);
/// - `W`: the message the next outbound handler must pass on (the socket's
///   `Bytes` at first);
/// - `H`: what the head hands the socket: `Bytes`, or
///   [`Outbound`](crate::Outbound) for a pipeline that also sends files
///   ([`Pipeline::with_file_regions`]).
///
/// Each builder method checks its handler against them, so a mismatch is a
/// compile error at the line that adds the handler. To name a pipeline's
/// type (a factory function), see [`InboundChain`](crate::InboundChain).
///
/// # Behaviours to know
///
/// - **Nothing is sent until a flush.** `write` queues; `flush` (or
///   `write_and_flush`) sends what is queued. A handler that only writes
///   leaves its peer waiting. Batching several writes under one flush is
///   the point: one system call for all of them.
/// - **An error nobody handles closes the connection.** Errors (a decoder's
///   refusal, a reset, a handler's [`Error::handler`](crate::Error::handler))
///   travel towards the tail; if no handler's `error` stops one, the tail
///   logs it (`tracing`, at debug: a peer's reset is routine) and closes
///   this channel, and only this one.
///   Override [`InboundHandler::error`] to answer instead (a "400 Bad
///   Request", say) and decide whether to close.
/// - **A message nobody reads is dropped** at the tail, silently: the last
///   inbound handler's `Pass` is usually `()`.
/// - **A handler should not panic**: the loop catches a panic, logs it and
///   closes that channel at once, without delivering what it had queued
///   (the loop and its other channels go on). Report failures as errors
///   (above) instead, to answer or close as the protocol wants.
/// - **Test a pipeline without a server** on an
///   [`EmbeddedChannel`](crate::EmbeddedChannel): bytes in, messages and
///   bytes out, timers moved by hand, all on the test's thread.
///
/// ```
/// use bytes::Bytes;
/// use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
/// use gyre_reactor::{InboundContext, InboundHandler, Pipeline};
///
/// /// Answers each line with its length.
/// struct Lengths;
///
/// impl InboundHandler for Lengths {
///     type Read = Bytes;
///     type Pass = ();
///     type Write = String;
///
///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, line: Bytes) {
///         ctx.write_and_flush(line.len().to_string());
///     }
/// }
///
/// let pipeline = Pipeline::new()
///     .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
///     .inbound(Lengths);
/// # let _ = pipeline;
/// ```
pub struct Pipeline<L = End, R = BytesMut, W = Bytes, H = Bytes> {
    pub(crate) layers: L,
    _types: PhantomData<fn(R) -> (W, H)>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipeline {
    /// An empty pipeline whose socket end takes `Bytes`: reads are
    /// dropped, nothing is written.
    pub fn new() -> Self {
        Pipeline {
            layers: End,
            _types: PhantomData,
        }
    }

    /// An empty pipeline whose socket end takes [`Outbound`]: the handler
    /// next to the socket can write file regions (sent with `sendfile`) as
    /// well as `Bytes`.
    pub fn with_file_regions() -> Pipeline<End, BytesMut, Outbound, Outbound> {
        Pipeline {
            layers: End,
            _types: PhantomData,
        }
    }

    /// An empty pipeline for a UDP channel
    /// ([`Bootstrap::bind_datagram`](crate::Bootstrap::bind_datagram)): its
    /// first handler reads one [`Datagram`] per datagram received and
    /// writes `Datagram`s, each sent as one datagram to its `peer`.
    pub fn datagram() -> Pipeline<End, Datagram, Datagram, Datagram> {
        Pipeline {
            layers: End,
            _types: PhantomData,
        }
    }
}

impl<L, R: 'static, W: 'static, S> Pipeline<L, R, W, S> {
    /// Adds an inbound handler; writes from it pass through the outbound
    /// handlers added before it.
    pub fn inbound<H>(self, handler: H) -> Pipeline<L::Output, H::Pass, W, S>
    where
        H: InboundHandler<Read = R, Write = W>,
        L: Append<(H, Identity<W>)>,
    {
        Pipeline {
            layers: self.layers.append((handler, Identity(PhantomData))),
            _types: PhantomData,
        }
    }

    /// Adds an outbound handler; handlers added after it write its `Write`.
    pub fn outbound<O>(self, handler: O) -> Pipeline<L::Output, R, O::Write, S>
    where
        O: OutboundHandler<Pass = W>,
        L: Append<(Forward<R, W>, O)>,
    {
        Pipeline {
            layers: self.layers.append((Forward(PhantomData), handler)),
            _types: PhantomData,
        }
    }

    /// Adds both halves of one layer, such as a decoder and an encoder.
    pub fn duplex<H, O>(self, inbound: H, outbound: O) -> Pipeline<L::Output, H::Pass, O::Write, S>
    where
        H: InboundHandler<Read = R, Write = W>,
        O: OutboundHandler<Pass = W>,
        L: Append<(H, O)>,
    {
        Pipeline {
            layers: self.layers.append((inbound, outbound)),
            _types: PhantomData,
        }
    }
}
