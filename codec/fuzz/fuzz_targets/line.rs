#![no_main]
use gyre_codec::LineDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fail_fast = data.first().is_some_and(|b| b & 1 == 1);
    let mut decoder = LineDecoder::new(64).fail_fast(fail_fast);
    gyre_codec_fuzz::exercise(&mut decoder, data, 65);
});
