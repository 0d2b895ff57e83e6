//! Codec adapters: any `gyre-codec` decoder or encoder as a pipeline stage.
//!
//! [`DecoderHandler`] keeps a cumulation buffer. The channel hands it each
//! chunk it read, split off the channel's own read buffer; when the
//! cumulation is empty it simply takes the chunk, and when a frame is split
//! across reads the chunk is usually the very next bytes of the same
//! allocation, so `unsplit` joins them without a copy. Frames go on as the
//! `Bytes` the decoder split off. A decode error goes down the pipeline as an
//! error event, which by default closes only this connection.

use crate::chain::{Append, Identity};
use crate::error::Error;
use crate::handler::{InboundContext, InboundHandler, OutboundContext, OutboundHandler, UserEvent};
use crate::pipeline::Pipeline;
use bytes::{Bytes, BytesMut};
use gyre_codec::{CodecError, Decoder, Encoder, LengthFieldPrepender};
use std::marker::PhantomData;

/// A decoder as an inbound handler: reads `BytesMut` chunks, passes frames.
///
/// ```
/// use bytes::Bytes;
/// use gyre_codec::LineDecoder;
/// use gyre_reactor::{DecoderHandler, Pipeline};
///
/// // What `Pipeline::decoder` adds, as a handler of its own (to name or to
/// // place it yourself).
/// let pipeline = Pipeline::new().inbound(DecoderHandler::<_, Bytes>::new(LineDecoder::new(1024)));
/// # let _ = pipeline;
/// ```
pub struct DecoderHandler<D, W = Bytes> {
    decoder: D,
    cumulation: BytesMut,
    broken: bool,
    _write: PhantomData<fn(W)>,
}

impl<D, W> DecoderHandler<D, W> {
    /// Wraps `decoder`.
    pub fn new(decoder: D) -> Self {
        DecoderHandler {
            decoder,
            cumulation: BytesMut::new(),
            broken: false,
            _write: PhantomData,
        }
    }

    /// Bytes received and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.cumulation.len()
    }
}

impl<D: Decoder + 'static, W: 'static> DecoderHandler<D, W> {
    fn decode_all(&mut self, ctx: &mut impl InboundContext<Self>, eof: bool) {
        while !self.broken && ctx.channel().is_open() {
            let step = if eof {
                self.decoder.decode_eof(&mut self.cumulation)
            } else {
                self.decoder.decode(&mut self.cumulation)
            };
            match step {
                Ok(Some(frame)) => ctx.fire_read(frame),
                Ok(None) => break,
                Err(e) => {
                    // A too-long frame has been (or is being) skipped and the
                    // decoder can go on; anything else leaves the stream out
                    // of step, so stop decoding this connection.
                    if !matches!(e, CodecError::FrameTooLong { .. }) || eof {
                        self.broken = true;
                        self.cumulation = BytesMut::new();
                    }
                    ctx.fire_error(Error::Codec(e));
                }
            }
        }
    }
}

impl<D: Decoder + 'static, W: 'static> InboundHandler for DecoderHandler<D, W> {
    type Read = BytesMut;
    type Pass = D::Item;
    type Write = W;

    #[inline]
    fn read(&mut self, ctx: &mut impl InboundContext<Self>, chunk: BytesMut) {
        if self.broken {
            return;
        }
        if self.cumulation.is_empty() {
            self.cumulation = chunk;
        } else {
            // O(1) when the chunk continues the same allocation; a copy
            // otherwise.
            self.cumulation.unsplit(chunk);
        }
        self.decode_all(ctx, false);
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        if matches!(event, UserEvent::InputClosed) && !self.cumulation.is_empty() {
            self.decode_all(ctx, true);
        }
        ctx.fire_user_event(event);
    }

    fn holds_input(&self) -> bool {
        // A broken decoder is closing its channel: nothing to lend.
        self.broken || !self.cumulation.is_empty()
    }
}

/// An encoder as an outbound handler: takes `T`, passes `Bytes`.
///
/// Encodes into one reused buffer and passes each frame on as `Bytes` split
/// off it; the buffer's memory is reclaimed once the socket has taken the
/// frames. An unencodable message is dropped and reported as an error event.
///
/// ```
/// use gyre_codec::{LineEncoder, LineEnding};
/// use gyre_reactor::{EncoderHandler, Pipeline};
///
/// // What `Pipeline::encoder` adds: strings in, encoded bytes out.
/// let pipeline = Pipeline::new().outbound(EncoderHandler::<_, String>::new(LineEncoder::new(LineEnding::CrLf)));
/// # let _ = pipeline;
/// ```
pub struct EncoderHandler<E, T> {
    encoder: E,
    buf: BytesMut,
    _item: PhantomData<fn(T)>,
}

impl<E, T> EncoderHandler<E, T> {
    /// Wraps `encoder`.
    pub fn new(encoder: E) -> Self {
        EncoderHandler {
            encoder,
            buf: BytesMut::new(),
            _item: PhantomData,
        }
    }
}

impl<E: Encoder<T> + 'static, T: 'static> OutboundHandler for EncoderHandler<E, T> {
    type Write = T;
    type Pass = Bytes;

    #[inline]
    fn write(&mut self, ctx: &mut impl OutboundContext<Self>, msg: T) {
        if self.buf.capacity() - self.buf.len() < 512 {
            self.buf.reserve(8 * 1024);
        }
        match self.encoder.encode(msg, &mut self.buf) {
            Ok(()) => ctx.write(self.buf.split().freeze()),
            Err(e) => {
                self.buf.clear();
                ctx.fail(Error::Codec(e));
            }
        }
    }
}

/// A length-field prepender that gathers instead of copying: each message
/// becomes a small header `Bytes` and the untouched body, written together
/// by one `writev`.
///
/// ```
/// use gyre_codec::LengthFieldPrepender;
/// use gyre_reactor::{Pipeline, PrependerHandler};
///
/// // Every frame written gets a 4-byte length in front of it.
/// let pipeline = Pipeline::new().outbound(PrependerHandler::new(LengthFieldPrepender::new(4)?));
/// # let _ = pipeline;
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
pub struct PrependerHandler {
    prepender: LengthFieldPrepender,
    /// Headers are split off one reused buffer: no allocation per message.
    headers: BytesMut,
}

impl PrependerHandler {
    /// Wraps `prepender`.
    pub fn new(prepender: LengthFieldPrepender) -> Self {
        PrependerHandler {
            prepender,
            headers: BytesMut::new(),
        }
    }
}

impl OutboundHandler for PrependerHandler {
    type Write = Bytes;
    type Pass = Bytes;

    #[inline]
    fn write(&mut self, ctx: &mut impl OutboundContext<Self>, body: Bytes) {
        match self.prepender.header(body.len()) {
            Ok(header) => {
                if self.headers.capacity() - self.headers.len() < 8 {
                    self.headers.reserve(4096);
                }
                self.headers.extend_from_slice(header.as_bytes());
                ctx.write(self.headers.split().freeze());
                ctx.write(body);
            }
            Err(e) => ctx.fail(Error::Codec(e)),
        }
    }
}

impl<L, S> Pipeline<L, BytesMut, Bytes, S> {
    /// Adds a decoder and an encoder as one layer: handlers after it read
    /// `D::Item` and write `T`.
    pub fn codec<D, E, T>(self, decoder: D, encoder: E) -> Pipeline<L::Output, D::Item, T, S>
    where
        D: Decoder + 'static,
        E: Encoder<T> + 'static,
        T: 'static,
        L: Append<(DecoderHandler<D, Bytes>, EncoderHandler<E, T>)>,
    {
        self.duplex(DecoderHandler::new(decoder), EncoderHandler::new(encoder))
    }
}

impl<L, W: 'static, S> Pipeline<L, BytesMut, W, S> {
    /// Adds a decoder alone: handlers after it read `D::Item` and write
    /// what handlers before it take (`Bytes`, or [`Outbound`] in a
    /// pipeline [with file regions](Pipeline::with_file_regions)).
    ///
    /// [`Outbound`]: crate::Outbound
    pub fn decoder<D>(self, decoder: D) -> Pipeline<L::Output, D::Item, W, S>
    where
        D: Decoder + 'static,
        L: Append<(DecoderHandler<D, W>, Identity<W>)>,
    {
        self.inbound(DecoderHandler::new(decoder))
    }
}
