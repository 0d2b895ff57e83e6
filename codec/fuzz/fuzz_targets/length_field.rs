#![no_main]
use gyre_codec::{ByteOrder, LengthFieldDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pick = |i: usize| data.get(i).copied().unwrap_or(0);
    let field = [1, 2, 3, 4, 8][pick(0) as usize % 5];
    let offset = pick(1) as usize % 4;
    let max = offset + field + 256;
    let decoder = LengthFieldDecoder::builder()
        .length_field_length(field)
        .length_field_offset(offset)
        .length_adjustment(pick(2) as i8 as i64)
        .initial_bytes_to_strip(pick(3) as usize % 16)
        .byte_order(if pick(4) & 1 == 1 { ByteOrder::LittleEndian } else { ByteOrder::BigEndian })
        .fail_fast(pick(5) & 1 == 1)
        .max_frame_length(max)
        .build();
    if let Ok(mut decoder) = decoder {
        gyre_codec_fuzz::exercise(&mut decoder, data, max);
    }
});
