//! Length-field framing, encoding side: [`LengthFieldPrepender`].

use crate::codec::Encoder;
use crate::error::CodecError;
use crate::length_field::{check_field_length, ByteOrder};
use bytes::BytesMut;

/// A length-field header, built on the stack: up to 8 bytes.
///
/// Hand it to a gathered write beside the body (`writev`), so the body is
/// never copied to put a header in front of it.
///
/// ```
/// use gyre_codec::LengthFieldPrepender;
/// use std::io::{IoSlice, Write};
///
/// let body = b"payload";
/// let header = LengthFieldPrepender::new(4)?.header(body.len())?;
/// // Header and body in one gathered write; the body is not copied.
/// let mut wire = Vec::new();
/// wire.write_vectored(&[IoSlice::new(header.as_bytes()), IoSlice::new(body)])?;
/// assert_eq!(wire, b"\x00\x00\x00\x07payload");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    bytes: [u8; 8],
    len: u8,
}

impl FrameHeader {
    /// The header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl AsRef<[u8]> for FrameHeader {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Puts a length field in front of each message, the inverse of
/// [`LengthFieldDecoder`](crate::LengthFieldDecoder) (like Netty's
/// `LengthFieldPrepender`).
///
/// The field holds the body's length plus `length_adjustment`, plus the
/// field's own size if `length_includes_field` is set.
/// [`header`](Self::header) gives the header alone for a gathered write;
/// the [`Encoder`] impl appends header and body to a buffer.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{Encoder, LengthFieldPrepender};
/// let prepender = LengthFieldPrepender::new(2)?;
/// assert_eq!(prepender.header(5)?.as_bytes(), b"\x00\x05");
/// let mut buf = BytesMut::new();
/// prepender.clone().encode(&b"hello"[..], &mut buf)?;
/// assert_eq!(&buf[..], b"\x00\x05hello");
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LengthFieldPrepender {
    field_length: usize,
    adjustment: i64,
    includes_field: bool,
    order: ByteOrder,
}

impl LengthFieldPrepender {
    /// A big-endian field of `field_length` bytes (1, 2, 3, 4 or 8) holding
    /// the body's length.
    ///
    /// # Errors
    /// [`CodecError::InvalidConfig`] for any other field length.
    pub fn new(field_length: usize) -> Result<Self, CodecError> {
        check_field_length(field_length)?;
        Ok(LengthFieldPrepender {
            field_length,
            adjustment: 0,
            includes_field: false,
            order: ByteOrder::BigEndian,
        })
    }

    /// Add `adjustment` to the length written.
    pub fn length_adjustment(mut self, adjustment: i64) -> Self {
        self.adjustment = adjustment;
        self
    }

    /// Whether the length written counts the field itself.
    pub fn length_includes_field(mut self, includes: bool) -> Self {
        self.includes_field = includes;
        self
    }

    /// The field's byte order (default big-endian).
    pub fn byte_order(mut self, order: ByteOrder) -> Self {
        self.order = order;
        self
    }

    /// The header for a body of `body_len` bytes.
    ///
    /// # Errors
    /// [`CodecError::Unencodable`] if the adjusted length is negative or
    /// does not fit the field.
    pub fn header(&self, body_len: usize) -> Result<FrameHeader, CodecError> {
        let mut length = body_len as i128 + self.adjustment as i128;
        if self.includes_field {
            length += self.field_length as i128;
        }
        let max = if self.field_length == 8 {
            i64::MAX as i128
        } else {
            (1i128 << (8 * self.field_length)) - 1
        };
        if length < 0 || length > max {
            return Err(CodecError::Unencodable(format!(
                "length {length} does not fit a {}-byte length field",
                self.field_length
            )));
        }
        let mut header = FrameHeader {
            bytes: [0; 8],
            len: self.field_length as u8,
        };
        self.order
            .write(length as u64, &mut header.bytes[..self.field_length]);
        Ok(header)
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for LengthFieldPrepender {
    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), CodecError> {
        let body = item.as_ref();
        let header = self.header(body.len())?;
        dst.reserve(header.as_bytes().len() + body.len());
        dst.extend_from_slice(header.as_bytes());
        dst.extend_from_slice(body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, LengthFieldDecoder};

    #[test]
    fn includes_field_and_adjustment() {
        let p = LengthFieldPrepender::new(4)
            .unwrap()
            .length_includes_field(true);
        assert_eq!(p.header(10).unwrap().as_bytes(), b"\x00\x00\x00\x0e");
        let p = LengthFieldPrepender::new(1).unwrap().length_adjustment(-1);
        assert_eq!(p.header(3).unwrap().as_bytes(), b"\x02");
        let p = LengthFieldPrepender::new(3)
            .unwrap()
            .byte_order(ByteOrder::LittleEndian);
        assert_eq!(p.header(0x010203).unwrap().as_bytes(), b"\x03\x02\x01");
    }

    #[test]
    fn lengths_that_do_not_fit_are_refused() {
        assert!(LengthFieldPrepender::new(1).unwrap().header(256).is_err());
        assert!(LengthFieldPrepender::new(1).unwrap().header(255).is_ok());
        assert!(LengthFieldPrepender::new(2)
            .unwrap()
            .length_adjustment(-5)
            .header(4)
            .is_err());
        assert!(LengthFieldPrepender::new(7).is_err());
    }

    #[test]
    fn round_trips_through_the_decoder() {
        for len in [1usize, 2, 3, 4, 8] {
            let mut p = LengthFieldPrepender::new(len)
                .unwrap()
                .length_includes_field(true);
            let mut d = LengthFieldDecoder::builder()
                .length_field_length(len)
                .length_adjustment(-(len as i64))
                .initial_bytes_to_strip(len)
                .build()
                .unwrap();
            let mut buf = BytesMut::new();
            p.encode(&b"payload"[..], &mut buf).unwrap();
            assert_eq!(d.decode(&mut buf).unwrap().unwrap(), "payload");
        }
    }
}
