//! Fixed-length framing: every frame is exactly `n` bytes.

use crate::codec::Decoder;
use crate::error::CodecError;
use bytes::{Bytes, BytesMut};

/// Splits input into frames of exactly `frame_length` bytes.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{Decoder, FixedLengthDecoder};
/// let mut d = FixedLengthDecoder::new(3)?;
/// let mut buf = BytesMut::from(&b"abcdefg"[..]);
/// assert_eq!(d.decode(&mut buf)?.unwrap(), "abc");
/// assert_eq!(d.decode(&mut buf)?.unwrap(), "def");
/// assert_eq!(d.decode(&mut buf)?, None);
/// assert!(d.decode_eof(&mut buf).is_err()); // "g" is a truncated frame
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FixedLengthDecoder {
    frame_length: usize,
}

impl FixedLengthDecoder {
    /// Frames of `frame_length` bytes.
    ///
    /// # Errors
    /// [`CodecError::InvalidConfig`] for a length of zero.
    pub fn new(frame_length: usize) -> Result<Self, CodecError> {
        if frame_length == 0 {
            return Err(CodecError::InvalidConfig(
                "frame length must be positive".into(),
            ));
        }
        Ok(FixedLengthDecoder { frame_length })
    }
}

impl Decoder for FixedLengthDecoder {
    type Item = Bytes;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if src.len() < self.frame_length {
            // Room for the rest of a frame begun; an empty buffer is about
            // to be replaced by the next read (the pipeline's decoder
            // adapter takes the chunk itself), so reserving there would
            // allocate for nothing, once per read.
            if !src.is_empty() {
                src.reserve(self.frame_length - src.len());
            }
            return Ok(None);
        }
        Ok(Some(src.split_to(self.frame_length).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_length_is_refused() {
        assert!(FixedLengthDecoder::new(0).is_err());
    }

    #[test]
    fn frames_arrive_byte_by_byte() {
        let mut d = FixedLengthDecoder::new(2).unwrap();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in b"abcde" {
            buf.extend_from_slice(&[*b]);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        assert_eq!(out, ["ab", "cd"]);
        assert!(matches!(
            d.decode_eof(&mut buf),
            Err(CodecError::Truncated(1))
        ));
    }
}
