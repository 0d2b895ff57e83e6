#![no_main]
use gyre_codec::FixedLengthDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let n = 1 + data.first().copied().unwrap_or(0) as usize % 64;
    let mut decoder = FixedLengthDecoder::new(n).expect("positive length");
    gyre_codec_fuzz::exercise(&mut decoder, data, n);
});
