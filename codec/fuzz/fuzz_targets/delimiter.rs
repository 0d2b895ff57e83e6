#![no_main]
use gyre_codec::DelimiterDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fail_fast = data.first().is_some_and(|b| b & 1 == 1);
    let mut decoder = DelimiterDecoder::new(64, [&b"\n"[..], b"\r\n", b"\0\0\0"])
        .expect("valid delimiters")
        .fail_fast(fail_fast);
    gyre_codec_fuzz::exercise(&mut decoder, data, 64 + 2);
});
