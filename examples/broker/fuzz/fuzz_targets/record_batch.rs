//! Record-batch checks: arbitrary bytes, and the same bytes with a CRC that
//! matches, so the fuzzer reaches the header checks behind the CRC. Nothing
//! may panic, and a batch that passes must lie inside the input. A batch
//! that passes has its records walked (decompressed first if its
//! attributes say so), as a compacted topic's key check and the log
//! cleaner walk them, and is rebuilt with every record it walked: the
//! copy must pass the checks, covering the same offsets.
#![no_main]
use gyre_broker::log::{batch, records};
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
        let _ = records::first_keyless(data, &header);
        if let Ok(payload) = records::payload(data, &header) {
            let mut kept = Vec::new();
            let mut count = 0;
            if records::walk(&payload, header.record_count, |r| {
                kept.extend_from_slice(r.bytes);
                count += 1;
            })
            .is_ok()
            {
                if let Ok(copy) = records::rebuild(data, &header, &kept, count) {
                    let back = batch::validate(&copy).expect("a rebuilt batch passes");
                    assert_eq!(back.base_offset, header.base_offset);
                    assert_eq!(back.last_offset_delta, header.last_offset_delta);
                    assert_eq!(back.record_count, count);
                }
            }
        }
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
