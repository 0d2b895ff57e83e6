//! Frames behind a base-128 varint length, as protobuf streams are cut
//! (`writeDelimitedTo`, gRPC-less protobuf over TCP): Netty's
//! `ProtobufVarint32FrameDecoder` and `ProtobufVarint32LengthFieldPrepender`,
//! with a maximum frame length Netty's decoder lacks. Uses the crate's
//! error and traits.

use crate::codec::{Decoder, Encoder};
use crate::error::CodecError;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The longest varint a 32-bit length takes.
const MAX_VARINT: usize = 5;

/// Splits frames that each follow their length as a varint (7 bits a
/// byte, least significant first, the high bit set on every byte but the
/// last; at most 5 bytes, a 32-bit value). A frame over the maximum is
/// reported as [`CodecError::FrameTooLong`] as soon as its length is read
/// and skipped as it arrives, never buffered; the next frame decodes. A
/// length of more than 5 bytes is [`CodecError::CorruptFrame`].
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{Decoder, Encoder, VarintLengthDecoder, VarintLengthPrepender};
///
/// let mut wire = BytesMut::new();
/// VarintLengthPrepender.encode(&[7u8; 300][..], &mut wire)?;
/// assert_eq!(&wire[..2], &[0xac, 0x02]); // 300, in two bytes
/// let mut frames = VarintLengthDecoder::new(1024);
/// assert_eq!(frames.decode(&mut wire)?.unwrap().len(), 300);
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Clone, Debug)]
pub struct VarintLengthDecoder {
    max_frame_length: usize,
    /// Bytes of an over-long frame still to drop.
    skipping: u64,
}

impl VarintLengthDecoder {
    /// A decoder of frames of up to `max_frame_length` bytes.
    pub fn new(max_frame_length: usize) -> VarintLengthDecoder {
        VarintLengthDecoder {
            max_frame_length,
            skipping: 0,
        }
    }
}

/// The varint at the front of `src`: its value and its length in bytes,
/// `None` while it is not whole.
fn read_varint(src: &[u8]) -> Result<Option<(u64, usize)>, CodecError> {
    let mut value = 0u64;
    for (i, &b) in src.iter().take(MAX_VARINT).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if value > u64::from(u32::MAX) {
                break;
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if src.len() < MAX_VARINT && src.iter().all(|b| b & 0x80 != 0) {
        return Ok(None);
    }
    Err(CodecError::CorruptFrame(
        "a varint length longer than 32 bits".into(),
    ))
}

impl Decoder for VarintLengthDecoder {
    type Item = Bytes;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if self.skipping > 0 {
            let now = self.skipping.min(src.len() as u64);
            src.advance(now as usize);
            self.skipping -= now;
            if self.skipping > 0 {
                return Ok(None);
            }
        }
        let Some((length, header)) = read_varint(src)? else {
            return Ok(None);
        };
        if length > self.max_frame_length as u64 {
            src.advance(header);
            let now = length.min(src.len() as u64);
            src.advance(now as usize);
            self.skipping = length - now;
            return Err(CodecError::FrameTooLong {
                max: self.max_frame_length,
                length,
                dropped: now,
            });
        }
        let length = length as usize;
        if src.len() < header + length {
            // Nothing reserved ahead: a peer's 5 bytes announcing the
            // maximum must not cost the maximum in memory.
            return Ok(None);
        }
        src.advance(header);
        Ok(Some(src.split_to(length).freeze()))
    }
}

/// Writes each message behind its length as a varint (as
/// [`VarintLengthDecoder`] reads it). A message over 4 GiB is refused.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{Encoder, VarintLengthPrepender};
///
/// let mut out = BytesMut::new();
/// VarintLengthPrepender.encode(&b"hi"[..], &mut out)?;
/// assert_eq!(&out[..], b"\x02hi");
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct VarintLengthPrepender;

impl<T: AsRef<[u8]>> Encoder<T> for VarintLengthPrepender {
    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), CodecError> {
        let item = item.as_ref();
        let mut length = u32::try_from(item.len())
            .map_err(|_| CodecError::Unencodable(format!("{} bytes", item.len())))?;
        dst.reserve(MAX_VARINT + item.len());
        while length >= 0x80 {
            dst.put_u8((length as u8 & 0x7f) | 0x80);
            length >>= 7;
        }
        dst.put_u8(length as u8);
        dst.put_slice(item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lengths_of_every_size_and_bad_ones() {
        for (value, wire) in [
            (0u64, &[0x00][..]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (u64::from(u32::MAX), &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            assert_eq!(read_varint(wire).unwrap(), Some((value, wire.len())));
            assert_eq!(read_varint(&wire[..wire.len() - 1]).unwrap(), None);
        }
        for bad in [
            &[0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0xff, 0xff, 0xff, 0xff, 0x10],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
        ] {
            assert!(matches!(read_varint(bad), Err(CodecError::CorruptFrame(_))));
        }
    }

    #[test]
    fn an_over_long_frame_is_reported_at_once_and_skipped_unbuffered() {
        let mut d = VarintLengthDecoder::new(100);
        let mut wire = BytesMut::new();
        VarintLengthPrepender
            .encode(&[1u8; 1000][..], &mut wire)
            .unwrap();
        VarintLengthPrepender
            .encode(&b"next"[..], &mut wire)
            .unwrap();
        let mut rest = wire.split_off(500);
        assert!(matches!(
            d.decode(&mut wire),
            Err(CodecError::FrameTooLong {
                max: 100,
                length: 1000,
                ..
            })
        ));
        assert!(wire.is_empty(), "nothing of it kept");
        assert_eq!(d.decode(&mut rest).unwrap().unwrap(), "next");
    }

    proptest! {
        /// Frames written one after another decode to themselves however
        /// the input is cut into reads.
        #[test]
        fn frames_round_trip_through_any_cuts(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 0..8),
            cuts in proptest::collection::vec(1usize..64, 1..40),
        ) {
            let mut wire = BytesMut::new();
            for f in &frames {
                VarintLengthPrepender.encode(f, &mut wire).unwrap();
            }
            let mut d = VarintLengthDecoder::new(400);
            let (mut buf, mut got, mut cut) = (BytesMut::new(), Vec::new(), cuts.iter().cycle());
            while !wire.is_empty() {
                let n = (*cut.next().unwrap()).min(wire.len());
                buf.extend_from_slice(&wire.split_to(n));
                while let Some(frame) = d.decode(&mut buf).unwrap() {
                    got.push(frame.to_vec());
                }
            }
            prop_assert_eq!(got, frames);
            prop_assert!(buf.is_empty());
        }
    }
}
