//! Length-field framing, decoding side: [`LengthFieldDecoder`], with the
//! full parameter set of Netty's `LengthFieldBasedFrameDecoder`.

use crate::codec::Decoder;
use crate::error::CodecError;
use bytes::{Buf, Bytes, BytesMut};

/// The most a decoder reserves for a frame's bytes before they arrive;
/// a longer frame's buffer grows as its bytes do.
const RESERVE_AHEAD: usize = 1 << 20;

/// The byte order of a length field.
///
/// ```
/// use gyre_codec::{ByteOrder, LengthFieldPrepender};
///
/// let header = LengthFieldPrepender::new(2)?.byte_order(ByteOrder::LittleEndian).header(258)?;
/// assert_eq!(header.as_bytes(), &[2, 1]);
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ByteOrder {
    /// Most significant byte first (network order; the default).
    #[default]
    BigEndian,
    /// Least significant byte first.
    LittleEndian,
}

impl ByteOrder {
    /// Read a 1, 2, 3, 4 or 8-byte unsigned field. The common sizes are
    /// single loads: this runs once per frame.
    #[inline]
    pub(crate) fn read(self, bytes: &[u8]) -> u64 {
        let big = self == ByteOrder::BigEndian;
        match *bytes {
            [a] => u64::from(a),
            [a, b] => u64::from(if big {
                u16::from_be_bytes([a, b])
            } else {
                u16::from_le_bytes([a, b])
            }),
            [a, b, c, d] => u64::from(if big {
                u32::from_be_bytes([a, b, c, d])
            } else {
                u32::from_le_bytes([a, b, c, d])
            }),
            [a, b, c, d, e, f, g, h] => {
                let v = [a, b, c, d, e, f, g, h];
                if big {
                    u64::from_be_bytes(v)
                } else {
                    u64::from_le_bytes(v)
                }
            }
            _ => {
                let mut value = 0u64;
                if big {
                    bytes
                        .iter()
                        .for_each(|b| value = value << 8 | u64::from(*b));
                } else {
                    bytes
                        .iter()
                        .rev()
                        .for_each(|b| value = value << 8 | u64::from(*b));
                }
                value
            }
        }
    }

    pub(crate) fn write(self, value: u64, out: &mut [u8]) {
        let n = out.len();
        for (i, byte) in out.iter_mut().enumerate() {
            let shift = match self {
                ByteOrder::BigEndian => 8 * (n - 1 - i),
                ByteOrder::LittleEndian => 8 * i,
            };
            *byte = (value >> shift) as u8;
        }
    }
}

/// Checks a length field's size: 1, 2, 3, 4 or 8 bytes.
pub(crate) fn check_field_length(length: usize) -> Result<(), CodecError> {
    match length {
        1 | 2 | 3 | 4 | 8 => Ok(()),
        other => Err(CodecError::InvalidConfig(format!(
            "length field must be 1, 2, 3, 4 or 8 bytes, not {other}"
        ))),
    }
}

/// Splits input into frames whose length is given by a field in the frame.
///
/// The parameters are Netty's: the field starts `length_field_offset` bytes
/// into the frame and is `length_field_length` bytes long; its value plus
/// `length_adjustment` is the number of bytes that follow the field, so the
/// whole frame is `offset + field length + value + adjustment` bytes;
/// `initial_bytes_to_strip` bytes are cut from the front of each frame
/// handed out. `max_frame_length` is checked against that whole adjusted
/// frame. An over-long frame is skipped without being buffered (what has
/// arrived is dropped, the rest is dropped as it arrives) and reported as
/// [`CodecError::FrameTooLong`], at once (`fail_fast`, the default) or after
/// the last of it is dropped; decoding then carries on. An adjusted length
/// smaller than the header, a negative 8-byte length, or a strip longer than
/// the frame is a [`CodecError::CorruptFrame`].
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{Decoder, LengthFieldDecoder};
/// // A 2-byte length, then the body; hand out the body only.
/// let mut d = LengthFieldDecoder::builder()
///     .length_field_length(2)
///     .initial_bytes_to_strip(2)
///     .build()?;
/// let mut buf = BytesMut::from(&b"\x00\x05hello\x00\x02hi"[..]);
/// assert_eq!(d.decode(&mut buf)?.unwrap(), "hello");
/// assert_eq!(d.decode(&mut buf)?.unwrap(), "hi");
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LengthFieldDecoder {
    /// The validated settings it was built from.
    settings: LengthFieldDecoderBuilder,
    /// An over-long frame being skipped: its length and what is left to drop.
    skipping: Option<(u64, u64)>,
}

/// Settings for a [`LengthFieldDecoder`]; defaults: big-endian 4-byte length
/// at offset 0, no adjustment, nothing stripped, 8 MiB maximum, fail fast.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{ByteOrder, Decoder, LengthFieldDecoder};
///
/// // A 2-byte magic, then a 3-byte little-endian length of the body; keep
/// // the header in the frame.
/// let mut frames = LengthFieldDecoder::builder()
///     .length_field_offset(2)
///     .length_field_length(3)
///     .byte_order(ByteOrder::LittleEndian)
///     .max_frame_length(64 * 1024)
///     .build()?;
/// let mut buf = BytesMut::from(&b"\xCA\xFE\x02\x00\x00ok"[..]);
/// assert_eq!(frames.decode(&mut buf)?.unwrap(), &b"\xCA\xFE\x02\x00\x00ok"[..]);
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LengthFieldDecoderBuilder {
    order: ByteOrder,
    max_frame_length: usize,
    offset: usize,
    field_length: usize,
    adjustment: i64,
    strip: usize,
    fail_fast: bool,
}

impl Default for LengthFieldDecoderBuilder {
    fn default() -> Self {
        LengthFieldDecoderBuilder {
            order: ByteOrder::BigEndian,
            max_frame_length: 8 * 1024 * 1024,
            offset: 0,
            field_length: 4,
            adjustment: 0,
            strip: 0,
            fail_fast: true,
        }
    }
}

impl LengthFieldDecoderBuilder {
    /// The length field's byte order.
    pub fn byte_order(mut self, order: ByteOrder) -> Self {
        self.order = order;
        self
    }
    /// The largest whole frame (header included) accepted.
    pub fn max_frame_length(mut self, max: usize) -> Self {
        self.max_frame_length = max;
        self
    }
    /// Where in the frame the length field starts.
    pub fn length_field_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }
    /// The length field's size: 1, 2, 3, 4 or 8 bytes.
    pub fn length_field_length(mut self, length: usize) -> Self {
        self.field_length = length;
        self
    }
    /// Added to the field's value to give the bytes after the field.
    pub fn length_adjustment(mut self, adjustment: i64) -> Self {
        self.adjustment = adjustment;
        self
    }
    /// Bytes cut from the front of each frame handed out.
    pub fn initial_bytes_to_strip(mut self, strip: usize) -> Self {
        self.strip = strip;
        self
    }
    /// Report an over-long frame as soon as its length is read (true, the
    /// default) or after all of it has been dropped.
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Build the decoder.
    ///
    /// # Errors
    /// [`CodecError::InvalidConfig`] for a field length other than 1, 2, 3,
    /// 4 or 8, or a maximum that cannot even hold the length field.
    pub fn build(self) -> Result<LengthFieldDecoder, CodecError> {
        check_field_length(self.field_length)?;
        if self.max_frame_length < self.offset + self.field_length {
            return Err(CodecError::InvalidConfig(format!(
                "max frame length {} cannot hold a length field ending at byte {}",
                self.max_frame_length,
                self.offset + self.field_length
            )));
        }
        Ok(LengthFieldDecoder {
            settings: self,
            skipping: None,
        })
    }
}

impl LengthFieldDecoder {
    /// Start configuring a decoder.
    pub fn builder() -> LengthFieldDecoderBuilder {
        LengthFieldDecoderBuilder::default()
    }

    fn header_end(&self) -> usize {
        self.settings.offset + self.settings.field_length
    }

    fn too_long(&self, length: u64, dropped: u64) -> CodecError {
        CodecError::FrameTooLong {
            max: self.settings.max_frame_length,
            length,
            dropped,
        }
    }

    /// A frame of `frame_length` bytes is too long: drop what has arrived
    /// and skip the rest as it comes. Out of line: it is the rare path.
    #[cold]
    fn start_skipping(
        &mut self,
        src: &mut BytesMut,
        frame_length: u64,
    ) -> Result<Option<Bytes>, CodecError> {
        let now = frame_length.min(src.len() as u64);
        src.advance(now as usize);
        if now < frame_length {
            self.skipping = Some((frame_length, frame_length - now));
            if self.settings.fail_fast {
                return Err(self.too_long(frame_length, now));
            }
            return Ok(None);
        }
        Err(self.too_long(frame_length, frame_length))
    }

    /// Drop what has arrived of a frame being skipped; report when done if
    /// not failing fast.
    fn skip(&mut self, src: &mut BytesMut) -> Result<bool, CodecError> {
        let Some((length, left)) = self.skipping else {
            return Ok(true);
        };
        let now = left.min(src.len() as u64);
        src.advance(now as usize);
        if now == left {
            self.skipping = None;
            if !self.settings.fail_fast {
                return Err(self.too_long(length, length));
            }
            return Ok(true);
        }
        self.skipping = Some((length, left - now));
        Ok(false)
    }
}

impl Decoder for LengthFieldDecoder {
    type Item = Bytes;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if self.skipping.is_some() && !self.skip(src)? {
            return Ok(None);
        }
        let header_end = self.header_end();
        if src.len() < header_end {
            return Ok(None);
        }
        let raw = self
            .settings
            .order
            .read(&src[self.settings.offset..header_end]);
        if self.settings.field_length == 8 && (raw as i64) < 0 {
            src.advance(header_end);
            return Err(CodecError::CorruptFrame(format!(
                "negative length field {}",
                raw as i64
            )));
        }
        // In i128 a u64 field plus any adjustment cannot overflow; the
        // common case (a field below 2^62) stays in i64 arithmetic.
        let frame_length: i128 =
            match (raw as i64).checked_add(self.settings.adjustment + header_end as i64) {
                Some(length) if raw < 1 << 62 => length as i128,
                _ => raw as i128 + self.settings.adjustment as i128 + header_end as i128,
            };
        if frame_length < header_end as i128 {
            src.advance(header_end);
            return Err(CodecError::CorruptFrame(format!(
                "adjusted frame length {frame_length} is less than the {header_end} bytes up to the end of the length field"
            )));
        }
        if frame_length > self.settings.max_frame_length as i128 {
            return self.start_skipping(src, u64::try_from(frame_length).unwrap_or(u64::MAX));
        }
        let frame_length = frame_length as usize;
        if self.settings.strip > frame_length {
            src.advance(frame_length.min(src.len()));
            return Err(CodecError::CorruptFrame(format!(
                "initial bytes to strip ({}) exceed the frame length ({frame_length})",
                self.settings.strip
            )));
        }
        if src.len() < frame_length {
            // Room for what is coming, but at most RESERVE_AHEAD of it: a
            // peer's few header bytes announcing the maximum must not cost
            // the maximum in memory before the bytes come.
            src.reserve((frame_length - src.len()).min(RESERVE_AHEAD));
            return Ok(None);
        }
        let mut frame = src.split_to(frame_length);
        frame.advance(self.settings.strip);
        Ok(Some(frame.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder(offset: usize, len: usize, adjustment: i64, strip: usize) -> LengthFieldDecoder {
        LengthFieldDecoder::builder()
            .length_field_offset(offset)
            .length_field_length(len)
            .length_adjustment(adjustment)
            .initial_bytes_to_strip(strip)
            .build()
            .unwrap()
    }

    fn one(mut d: LengthFieldDecoder, input: &[u8]) -> Bytes {
        let mut buf = BytesMut::from(input);
        let frame = d.decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        frame
    }

    const HELLO: &[u8] = b"HELLO, WORLD";

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    // The seven examples of Netty's LengthFieldBasedFrameDecoder javadoc.

    #[test]
    fn netty_example_1_two_byte_length_no_strip() {
        let input = cat(&[b"\x00\x0C", HELLO]);
        assert_eq!(one(decoder(0, 2, 0, 0), &input), &input[..]);
    }

    #[test]
    fn netty_example_2_strip_the_header() {
        assert_eq!(one(decoder(0, 2, 0, 2), &cat(&[b"\x00\x0C", HELLO])), HELLO);
    }

    #[test]
    fn netty_example_3_length_includes_the_header() {
        let input = cat(&[b"\x00\x0E", HELLO]);
        assert_eq!(one(decoder(0, 2, -2, 0), &input), &input[..]);
    }

    #[test]
    fn netty_example_4_header_before_the_length() {
        let input = cat(&[b"\xCA\xFE", b"\x00\x00\x0C", HELLO]);
        assert_eq!(one(decoder(2, 3, 0, 0), &input), &input[..]);
    }

    #[test]
    fn netty_example_5_header_after_the_length() {
        let input = cat(&[b"\x00\x00\x0C", b"\xCA\xFE", HELLO]);
        assert_eq!(one(decoder(0, 3, 2, 0), &input), &input[..]);
    }

    #[test]
    fn netty_example_6_length_amid_a_header_strip_part() {
        let input = cat(&[b"\xCA", b"\x00\x0C", b"\xFE", HELLO]);
        assert_eq!(
            one(decoder(1, 2, 1, 3), &input),
            &cat(&[b"\xFE", HELLO])[..]
        );
    }

    #[test]
    fn netty_example_7_length_of_whole_message_amid_a_header() {
        let input = cat(&[b"\xCA", b"\x00\x10", b"\xFE", HELLO]);
        assert_eq!(
            one(decoder(1, 2, -3, 3), &input),
            &cat(&[b"\xFE", HELLO])[..]
        );
    }

    #[test]
    fn field_lengths_and_byte_orders() {
        for len in [1usize, 2, 3, 4, 8] {
            for order in [ByteOrder::BigEndian, ByteOrder::LittleEndian] {
                let mut field = vec![0u8; len];
                order.write(3, &mut field);
                let input = cat(&[&field, b"abc"]);
                let d = LengthFieldDecoder::builder()
                    .length_field_length(len)
                    .byte_order(order)
                    .initial_bytes_to_strip(len)
                    .build()
                    .unwrap();
                assert_eq!(one(d, &input), "abc", "{len} {order:?}");
            }
        }
        for bad in [0, 5, 6, 7, 9] {
            assert!(LengthFieldDecoder::builder()
                .length_field_length(bad)
                .build()
                .is_err());
        }
    }

    #[test]
    fn max_is_checked_against_the_whole_adjusted_frame() {
        // Body of 8 + header of 2 = 10 > 9.
        let mut d = LengthFieldDecoder::builder()
            .length_field_length(2)
            .max_frame_length(9)
            .build()
            .unwrap();
        let mut buf = BytesMut::from(&b"\x00\x0812345678\x00\x01x"[..]);
        match d.decode(&mut buf) {
            Err(CodecError::FrameTooLong {
                max,
                length,
                dropped,
            }) => assert_eq!((max, length, dropped), (9, 10, 10)),
            other => panic!("{other:?}"),
        }
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), &b"\x00\x01x"[..]);
    }

    /// A header announcing the maximum (64 MiB) reserves no more than 1
    /// MiB: before, four bytes from a peer reserved 64 MiB.
    #[test]
    fn a_long_frame_announced_reserves_a_bounded_room() {
        let mut d = LengthFieldDecoder::builder()
            .length_field_length(4)
            .max_frame_length(64 << 20)
            .build()
            .unwrap();
        let mut buf = BytesMut::from(&b"\x03\xff\xff\xfc"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= 2 << 20, "{} reserved", buf.capacity());
        buf.extend_from_slice(&vec![5u8; (64 << 20) - 4]);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().len(), 64 << 20);
    }

    #[test]
    fn over_long_frame_is_skipped_without_buffering() {
        for fail_fast in [true, false] {
            let mut d = LengthFieldDecoder::builder()
                .length_field_length(4)
                .max_frame_length(16)
                .fail_fast(fail_fast)
                .build()
                .unwrap();
            let mut buf = BytesMut::from(&b"\x00\x00\x10\x00"[..]); // 4096-byte body
            let first = d.decode(&mut buf);
            assert_eq!(first.is_err(), fail_fast, "{first:?}");
            assert!(buf.is_empty());
            let mut reported = fail_fast;
            for _ in 0..64 {
                buf.extend_from_slice(&[7u8; 64]);
                match d.decode(&mut buf) {
                    Ok(None) => {}
                    Err(CodecError::FrameTooLong {
                        length, dropped, ..
                    }) => {
                        assert!(!fail_fast);
                        assert_eq!((length, dropped), (4100, 4100));
                        reported = true;
                    }
                    other => panic!("{other:?}"),
                }
                assert!(buf.is_empty(), "nothing of the skipped frame is kept");
            }
            assert!(reported);
            buf.extend_from_slice(b"\x00\x00\x00\x02ok");
            assert_eq!(
                d.decode(&mut buf).unwrap().unwrap(),
                &b"\x00\x00\x00\x02ok"[..]
            );
        }
    }

    #[test]
    fn corrupt_lengths_are_errors() {
        // Adjusted length shorter than the header.
        let mut d = decoder(0, 2, -5, 0);
        let mut buf = BytesMut::from(&b"\x00\x01x"[..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(CodecError::CorruptFrame(_))
        ));
        // A negative 8-byte length.
        let mut d = decoder(0, 8, 0, 0);
        let mut buf = BytesMut::from(&b"\xff\xff\xff\xff\xff\xff\xff\xfe"[..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(CodecError::CorruptFrame(_))
        ));
        // A strip longer than the frame.
        let mut d = decoder(0, 1, 0, 5);
        let mut buf = BytesMut::from(&b"\x02ab"[..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(CodecError::CorruptFrame(_))
        ));
    }

    #[test]
    fn partial_header_and_body_wait_for_more() {
        let mut d = decoder(0, 2, 0, 2);
        let mut buf = BytesMut::from(&b"\x00"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\x03a");
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"bc");
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), "abc");
        buf.extend_from_slice(b"\x00\x01");
        assert!(matches!(
            d.decode_eof(&mut buf),
            Err(CodecError::Truncated(2))
        ));
    }
}
