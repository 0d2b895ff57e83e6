//! Codec cases: Gyre's decoders against tokio-util's on the same input.
//!
//! Each case feeds the whole input in 64 KiB reads into one `BytesMut`, as
//! a socket read loop would (the copy into the buffer is part of the cost
//! for both sides), decodes every frame after each read, and returns the
//! elapsed time with a count and length sum of the frames, which the harness
//! compares between implementations so that a fast decoder that drops or
//! mangles frames fails instead of winning.

use bytes::BytesMut;
use std::time::{Duration, Instant};
use tokio_util::codec::Decoder as _;

/// Size of one read.
pub const CHUNK: usize = 64 * 1024;

/// A codec case: decode the input, return the time and what was decoded.
pub type Case = fn(&[u8]) -> (Duration, Decoded);

/// What a run decoded: frames and the sum of their lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decoded {
    /// Frames decoded.
    pub frames: u64,
    /// Sum of the frames' lengths.
    pub bytes: u64,
}

/// `total` bytes of `line_len`-byte lines (the last byte of each is `\n`).
pub fn lines(total: usize, line_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total);
    let mut i = 0u8;
    while out.len() + line_len <= total {
        out.extend((0..line_len - 1).map(|j| b'a' + (i.wrapping_add(j as u8) % 26)));
        out.push(b'\n');
        i = i.wrapping_add(1);
    }
    out
}

/// About `total` bytes of frames with a 4-byte big-endian length prefix and
/// bodies of `min..=max` bytes (a fixed pseudo-random sequence).
pub fn length_prefixed(total: usize, min: usize, max: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total + max + 4);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    while out.len() < total {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = min + (state as usize) % (max - min + 1);
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.extend((0..len).map(|j| j as u8));
    }
    out
}

/// Feed `input` in reads of `CHUNK`, calling `decode_all` after each.
fn feed(
    input: &[u8],
    mut decode_all: impl FnMut(&mut BytesMut, &mut Decoded),
) -> (Duration, Decoded) {
    let mut buf = BytesMut::with_capacity(CHUNK * 2);
    let mut decoded = Decoded::default();
    let start = Instant::now();
    for chunk in input.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        decode_all(&mut buf, &mut decoded);
    }
    (start.elapsed(), decoded)
}

/// Gyre's `LineDecoder`.
pub fn gyre_lines(input: &[u8]) -> (Duration, Decoded) {
    let mut d = gyre_codec::LineDecoder::new(1024);
    feed(input, |buf, out| {
        while let Some(frame) = gyre_codec::Decoder::decode(&mut d, buf).expect("valid input") {
            out.frames += 1;
            out.bytes += frame.len() as u64;
        }
    })
}

/// The floor for a line decoder that returns `Bytes`: one told the length
/// of every line (the input's first line's), so it never searches. Per line
/// it does only what any such decoder must: split the line off, look at the
/// byte before the `\n` for a `\r`, drop the ending, freeze. A ruler, not a
/// decoder: `floor/LinesCodec` is the most any line decoder that hands out
/// `Bytes` could show against `LinesCodec` here, and `gyre/floor` is what
/// finding the line ends costs gyre.
pub fn floor_lines(input: &[u8]) -> (Duration, Decoded) {
    told_lines(input, |_| {})
}

/// Splits `input` into lines of the length of its first, as
/// [`floor_lines`] describes, showing each whole line to `look` first.
fn told_lines(input: &[u8], mut look: impl FnMut(&[u8])) -> (Duration, Decoded) {
    let line = input.iter().position(|&b| b == b'\n').map_or(1, |i| i + 1);
    feed(input, |buf, out| {
        while buf.len() >= line {
            let mut frame = buf.split_to(line);
            look(&frame);
            let crlf = line > 1 && frame[line - 2] == b'\r';
            frame.truncate(line - 1 - usize::from(crlf));
            let frame = frame.freeze();
            out.frames += 1;
            out.bytes += frame.len() as u64;
        }
    })
}

/// The floor for a line decoder that must look at every byte: the floor
/// ([`floor_lines`]), plus one pass over each line's bytes with the
/// cheapest compare for `\n` the x86-64 baseline has (SSE2: 16 bytes a
/// compare, the lanes OR-ed, one mask per line, kept so the pass is not
/// optimised away). Any decoder that searches reads every byte at least
/// this once; where reading bytes the last read put in the buffer is dear
/// next to splitting off a line (the AMD EPYC Zen 4 VM), this floor sits
/// well below [`floor_lines`], and `gyre/scan-floor` says how much of
/// `gyre/floor` is the reading and how much gyre's search.
pub fn scan_floor_lines(input: &[u8]) -> (Duration, Decoded) {
    let mut seen = 0u32;
    let outcome = told_lines(input, |line| seen |= any_newline(line));
    std::hint::black_box(seen);
    outcome
}

/// Non-zero if `bytes` holds a `\n`: bit `i` is set where lane byte `i`
/// of some 16-byte lane is one, the last bit where a short tail holds one.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn any_newline(bytes: &[u8]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_setzero_si128,
    };
    let lanes = bytes.chunks_exact(16);
    let tail = lanes.remainder();
    // SAFETY: SSE2 is in the x86_64 baseline; each lane is exactly 16
    // readable bytes and `_mm_loadu_si128` needs no alignment.
    let found = unsafe {
        let newline = _mm_set1_epi8(b'\n' as i8);
        let mut any = _mm_setzero_si128();
        for lane in lanes {
            let v = _mm_loadu_si128(lane.as_ptr().cast::<__m128i>());
            any = _mm_or_si128(any, _mm_cmpeq_epi8(v, newline));
        }
        _mm_movemask_epi8(any) as u32
    };
    found | u32::from(tail.contains(&b'\n'))
}

/// Elsewhere, a plain look at every byte.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn any_newline(bytes: &[u8]) -> u32 {
    u32::from(bytes.contains(&b'\n'))
}

/// tokio-util's `LinesCodec` (which also checks UTF-8 and yields `String`s).
pub fn tokio_lines(input: &[u8]) -> (Duration, Decoded) {
    let mut d = tokio_util::codec::LinesCodec::new_with_max_length(1024);
    feed(input, |buf, out| {
        while let Some(line) = d.decode(buf).expect("valid input") {
            out.frames += 1;
            out.bytes += line.len() as u64;
        }
    })
}

/// tokio-util's `AnyDelimiterCodec` splitting on `\n`.
pub fn tokio_any_delimiter(input: &[u8]) -> (Duration, Decoded) {
    let mut d = tokio_util::codec::AnyDelimiterCodec::new_with_max_length(
        b"\n".to_vec(),
        b"\n".to_vec(),
        1024,
    );
    feed(input, |buf, out| {
        while let Some(frame) = d.decode(buf).expect("valid input") {
            out.frames += 1;
            out.bytes += frame.len() as u64;
        }
    })
}

/// Gyre's `LengthFieldDecoder`: 4-byte length, header stripped.
pub fn gyre_length(input: &[u8]) -> (Duration, Decoded) {
    let mut d = gyre_codec::LengthFieldDecoder::builder()
        .initial_bytes_to_strip(4)
        .max_frame_length(1 << 20)
        .build()
        .expect("valid settings");
    feed(input, |buf, out| {
        while let Some(frame) = gyre_codec::Decoder::decode(&mut d, buf).expect("valid input") {
            out.frames += 1;
            out.bytes += frame.len() as u64;
        }
    })
}

/// tokio-util's `LengthDelimitedCodec`: 4-byte length, header stripped.
pub fn tokio_length(input: &[u8]) -> (Duration, Decoded) {
    let mut d = tokio_util::codec::LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(1 << 20)
        .new_codec();
    feed(input, |buf, out| {
        while let Some(frame) = d.decode(buf).expect("valid input") {
            out.frames += 1;
            out.bytes += frame.len() as u64;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_implementation_decodes_the_same_frames() {
        let input = lines(1 << 20, 64);
        let expected = gyre_lines(&input).1;
        assert_eq!(expected.frames, (1 << 20) / 64);
        assert_eq!(tokio_lines(&input).1, expected);
        assert_eq!(tokio_any_delimiter(&input).1, expected);
        assert_eq!(floor_lines(&input).1, expected);
        assert_eq!(scan_floor_lines(&input).1, expected);
        let input = length_prefixed(1 << 20, 16, 64);
        assert_eq!(gyre_length(&input).1, tokio_length(&input).1);
    }
}
