//! Property tests: for any frames and any way of cutting the encoded stream
//! into reads, every decoder returns exactly the frames that were encoded;
//! random garbage never panics, and the bytes a decoder leaves buffered
//! never exceed its maximum frame plus one read.

use bytes::{Bytes, BytesMut};
use gyre_codec::{
    ByteOrder, CodecError, Decoder, DelimiterDecoder, DelimiterEncoder, Encoder,
    FixedLengthDecoder, LengthFieldDecoder, LengthFieldPrepender, LineDecoder, LineEncoder,
    LineEnding,
};
use proptest::prelude::*;

/// Feed `stream` to `decoder` in reads cut at `cuts`, collecting frames.
fn decode_chunked<D: Decoder<Item = Bytes>>(
    decoder: &mut D,
    stream: &[u8],
    cuts: &[usize],
) -> Vec<Bytes> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(stream.len());
    points.sort_unstable();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut at = 0;
    for point in points {
        buf.extend_from_slice(&stream[at..point]);
        at = point;
        while let Some(frame) = decoder.decode(&mut buf).expect("valid stream") {
            frames.push(frame);
        }
    }
    frames
}

/// Feed garbage in reads; every result is acceptable but a panic, and the
/// buffer stays bounded after every call.
fn survive_garbage<D: Decoder<Item = Bytes>>(
    decoder: &mut D,
    garbage: &[u8],
    cuts: &[usize],
    bound: usize,
) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (garbage.len() + 1)).collect();
    points.push(garbage.len());
    points.sort_unstable();
    let mut buf = BytesMut::new();
    let mut at = 0;
    for point in points {
        let read = point - at;
        buf.extend_from_slice(&garbage[at..point]);
        at = point;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(CodecError::FrameTooLong { .. }) => continue,
                Err(_) => {
                    // A broken stream: a real connection would close here.
                    buf.clear();
                    break;
                }
            }
        }
        assert!(
            buf.len() <= bound + read,
            "buffered {} > {} + {}",
            buf.len(),
            bound,
            read
        );
    }
    let _ = decoder.decode_eof(&mut buf);
}

fn body(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(alphabet), 0..=max)
}

const MAX: usize = 64;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn lines_round_trip(
        frames in prop::collection::vec((body(b"abc \t\x00\xff", MAX), any::<bool>()), 0..20),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut stream = BytesMut::new();
        for (frame, crlf) in &frames {
            let ending = if *crlf { LineEnding::CrLf } else { LineEnding::Lf };
            LineEncoder::new(ending).encode(frame, &mut stream).unwrap();
        }
        let decoded = decode_chunked(&mut LineDecoder::new(MAX), &stream, &cuts);
        let expected: Vec<Bytes> = frames.into_iter().map(|(f, _)| Bytes::from(f)).collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn delimited_frames_round_trip(
        frames in prop::collection::vec((body(b"ab|;x", MAX), 0usize..3), 0..20),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        // Frames may contain single `|` and `;` but never a delimiter:
        // drop any frame that does, or that ends in `|` (which would join the
        // delimiter that follows).
        let delimiters: [&[u8]; 3] = [b"||", b";;", b"\r\n"];
        let frames: Vec<(Vec<u8>, usize)> = frames
            .into_iter()
            .filter(|(f, _)| !f.windows(2).any(|w| w == b"||" || w == b";;") && f.last() != Some(&b'|') && f.last() != Some(&b';'))
            .collect();
        let mut stream = BytesMut::new();
        for (frame, d) in &frames {
            DelimiterEncoder::new(delimiters[*d]).encode(frame, &mut stream).unwrap();
        }
        let mut decoder = DelimiterDecoder::new(MAX, delimiters).unwrap();
        let decoded = decode_chunked(&mut decoder, &stream, &cuts);
        let expected: Vec<Bytes> = frames.into_iter().map(|(f, _)| Bytes::from(f)).collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn fixed_frames_round_trip(
        n in 1usize..16,
        count in 0usize..20,
        seed in any::<u8>(),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let stream: Vec<u8> = (0..n * count).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let decoded = decode_chunked(&mut FixedLengthDecoder::new(n).unwrap(), &stream, &cuts);
        let expected: Vec<Bytes> = stream.chunks(n).map(Bytes::copy_from_slice).collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn length_fields_round_trip(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..20),
        field in prop::sample::select(vec![1usize, 2, 3, 4, 8]),
        little in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let order = if little { ByteOrder::LittleEndian } else { ByteOrder::BigEndian };
        let frames: Vec<Vec<u8>> = frames.into_iter().map(|mut f| { f.truncate(if field == 1 { 255 } else { 200 }); f }).collect();
        let mut prepender = LengthFieldPrepender::new(field).unwrap().byte_order(order);
        let mut stream = BytesMut::new();
        for frame in &frames {
            prepender.encode(frame, &mut stream).unwrap();
        }
        let mut decoder = LengthFieldDecoder::builder()
            .length_field_length(field)
            .byte_order(order)
            .initial_bytes_to_strip(field)
            .max_frame_length(field + 255)
            .build()
            .unwrap();
        let decoded = decode_chunked(&mut decoder, &stream, &cuts);
        let expected: Vec<Bytes> = frames.into_iter().map(Bytes::from).collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn garbage_never_panics_and_memory_stays_bounded(
        garbage in prop::collection::vec(any::<u8>(), 0..4096),
        cuts in prop::collection::vec(any::<usize>(), 0..32),
        fail_fast in any::<bool>(),
        field in prop::sample::select(vec![1usize, 2, 3, 4, 8]),
        offset in 0usize..4,
        adjustment in -8i64..8,
        strip in 0usize..12,
    ) {
        survive_garbage(&mut LineDecoder::new(MAX).fail_fast(fail_fast), &garbage, &cuts, MAX + 1);
        let mut delimiters = DelimiterDecoder::new(MAX, [&b"\n"[..], b"\r\n", b"ab"]).unwrap().fail_fast(fail_fast);
        survive_garbage(&mut delimiters, &garbage, &cuts, MAX + 2);
        survive_garbage(&mut FixedLengthDecoder::new(7).unwrap(), &garbage, &cuts, 7);
        let mut length = LengthFieldDecoder::builder()
            .length_field_length(field)
            .length_field_offset(offset)
            .length_adjustment(adjustment)
            .initial_bytes_to_strip(strip)
            .max_frame_length(MAX + offset + field)
            .fail_fast(fail_fast)
            .build()
            .unwrap();
        survive_garbage(&mut length, &garbage, &cuts, MAX + offset + field);
    }
}

#[test]
fn a_good_frame_decodes_after_an_over_long_one_for_every_decoder() {
    let mut line = LineDecoder::new(4);
    let mut buf = BytesMut::from(&b"0123456789\nok\n"[..]);
    assert!(line.decode(&mut buf).is_err());
    assert_eq!(line.decode(&mut buf).unwrap().unwrap(), "ok");

    let mut delimited = DelimiterDecoder::new(4, [&b"|"[..]]).unwrap();
    let mut buf = BytesMut::from(&b"0123456789|ok|"[..]);
    assert!(delimited.decode(&mut buf).is_err());
    assert_eq!(delimited.decode(&mut buf).unwrap().unwrap(), "ok");

    let mut length = LengthFieldDecoder::builder()
        .length_field_length(1)
        .max_frame_length(5)
        .build()
        .unwrap();
    let mut buf = BytesMut::from(&b"\x09123456789\x02ok"[..]);
    assert!(length.decode(&mut buf).is_err());
    assert_eq!(length.decode(&mut buf).unwrap().unwrap(), &b"\x02ok"[..]);
}
