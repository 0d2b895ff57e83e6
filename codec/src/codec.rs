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
///
/// ```
/// use bytes::{Buf, BytesMut};
/// use gyre_codec::{CodecError, Decoder};
///
/// /// Frames of a one-byte length and that many bytes, at most 16.
/// struct Tiny;
///
/// impl Decoder for Tiny {
///     type Item = BytesMut;
///
///     fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, CodecError> {
///         let Some(&len) = src.first() else { return Ok(None) };
///         if len > 16 {
///             return Err(CodecError::CorruptFrame(format!("length {len} over 16")));
///         }
///         if src.len() < 1 + len as usize {
///             return Ok(None); // wait for the rest
///         }
///         src.advance(1);
///         Ok(Some(src.split_to(len as usize)))
///     }
/// }
///
/// let mut buf = BytesMut::from(&b"\x02hi\x03yo"[..]);
/// assert_eq!(Tiny.decode(&mut buf)?.unwrap(), "hi");
/// assert_eq!(Tiny.decode(&mut buf)?, None); // "yo" is one byte short
/// assert!(matches!(Tiny.decode_eof(&mut buf), Err(CodecError::Truncated(3))));
/// # Ok::<(), CodecError>(())
/// ```
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
///
/// ```
/// use bytes::{BufMut, BytesMut};
/// use gyre_codec::{CodecError, Encoder};
///
/// /// Writes a one-byte length before each message of at most 255 bytes.
/// struct Tiny;
///
/// impl Encoder<&str> for Tiny {
///     fn encode(&mut self, item: &str, dst: &mut BytesMut) -> Result<(), CodecError> {
///         let len = u8::try_from(item.len())
///             .map_err(|_| CodecError::Unencodable(format!("{} bytes", item.len())))?;
///         dst.put_u8(len);
///         dst.put_slice(item.as_bytes());
///         Ok(())
///     }
/// }
///
/// let mut out = BytesMut::new();
/// Tiny.encode("hi", &mut out)?;
/// assert_eq!(&out[..], b"\x02hi");
/// assert!(Tiny.encode(&"x".repeat(300), &mut out).is_err());
/// # Ok::<(), CodecError>(())
/// ```
pub trait Encoder<Item> {
    /// Append `item`'s encoding to `dst`.
    fn encode(&mut self, item: Item, dst: &mut BytesMut) -> Result<(), CodecError>;
}
