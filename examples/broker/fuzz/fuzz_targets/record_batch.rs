//! Record-batch checks: arbitrary bytes, and the same bytes with a CRC that
//! matches, so the fuzzer reaches the header checks behind the CRC. Nothing
//! may panic, and a batch that passes must lie inside the input.
#![no_main]
use gyre_broker::log::batch;
use libfuzzer_sys::fuzz_target;

/// Where the CRC field sits and where the bytes it covers begin.
const CRC_AT: usize = 17;
const CRC_FROM: usize = 21;

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() > CRC_FROM {
        let mut fixed = data.to_vec();
        let crc = crc32c::crc32c(&fixed[CRC_FROM..]);
        fixed[CRC_AT..CRC_FROM].copy_from_slice(&crc.to_be_bytes());
        check(&fixed);
    }
});

fn check(data: &[u8]) {
    if let Ok(header) = batch::validate(data) {
        assert!(header.size <= data.len());
        assert!(header.next_offset() >= header.base_offset);
    }
    if let Ok(batches) = batch::split(data) {
        let mut at = 0;
        for (header, range) in batches {
            assert_eq!(range.start, at);
            assert_eq!(range.len(), header.size);
            at = range.end;
        }
        assert_eq!(at, data.len());
    }
}
