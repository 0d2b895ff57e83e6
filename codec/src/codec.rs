//! The [`Decoder`] and [`Encoder`] traits.

use crate::error::CodecError;
use bytes::BytesMut;

/// Turns accumulated input into frames.
///
/// `decode` is called with everything received so far. It returns
/// `Ok(Some(frame))` and removes the frame's bytes from `src`, or `Ok(None)`
/// when it needs more input (leaving `src` alone or having consumed only
/// bytes it is discarding), or an error. Call it again after a frame: more
/// may be buffered.
pub trait Decoder {
    /// What a frame decodes to.
    type Item;

    /// Decode the next frame from `src`, if a whole one is there.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, CodecError>;

    /// Decode what is left when the peer has closed: a last frame, `None`
    /// if nothing is left, or [`CodecError::Truncated`] for a partial frame.
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(CodecError::Truncated(src.len())),
        }
    }
}

/// Turns items into bytes on the wire.
pub trait Encoder<Item> {
    /// Append `item`'s encoding to `dst`.
    fn encode(&mut self, item: Item, dst: &mut BytesMut) -> Result<(), CodecError>;
}
