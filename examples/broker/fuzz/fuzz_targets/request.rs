//! Request decoding: any frame the length-field decoder hands over, through
//! the one entry point the connection uses. Nothing may panic; a produce
//! request's record blobs go on through the batch checks the log writer
//! runs, as they would on the broker.
#![no_main]
use gyre_broker::log::batch;
use gyre_broker::protocol::request::decode;
use kafka_protocol::messages::RequestKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_, RequestKind::Produce(produce))) = decode(bytes::Bytes::copy_from_slice(data)) {
        for topic in &produce.topic_data {
            for partition in &topic.partition_data {
                if let Some(records) = &partition.records {
                    if let Ok(batches) = batch::split(records) {
                        let total: usize = batches.iter().map(|(h, _)| h.size).sum();
                        assert_eq!(total, records.len(), "split must cover the blob");
                    }
                }
            }
        }
    }
});
