//! The log cleaner in a running broker, over raw requests: a compacted
//! topic's keyless record is refused with INVALID_RECORD naming the
//! record, DeleteRecords with POLICY_VIOLATION; a pass that fails on the
//! file system is tried again after the backoff rather than giving the
//! log up. The clients' side (librdkafka, kafka-python, aiokafka,
//! kafkajs, kcat, and a `kill -9`) is in `clients.rs`.

mod common;

use common::{create_topic, produce_request, Client};
use gyre_broker::log::batch;
use kafka_protocol::messages::*;
use std::time::{Duration, Instant};

#[test]
fn a_compacted_topic_refuses_keyless_records_and_deletions_and_a_failed_pass_is_tried_again() {
    let config = common::compacting_config("compaction");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "kept", 1);
    // Something in the way of the pass's folder: the file system fails it.
    let partition = config.data_dir.join("topics/kept/0");
    let obstacle = partition.join(gyre_broker::log::cleaner::CLEANING_DIR);
    std::fs::write(&obstacle, b"in the way").unwrap();

    let keyless = batch::build(0, 1_000, &[b"no key"]);
    let resp: ProduceResponse = c.call(ApiKey::Produce, 8, &produce_request("kept", keyless));
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 87, "INVALID_RECORD: {p:?}");
    assert_eq!(p.record_errors[0].batch_index, 0);
    assert!(p.error_message.as_ref().unwrap().contains("without key"));

    for i in 0..60 {
        let key = format!("key-{}", i % 3);
        let value = "v".repeat(100);
        let record = [(Some(key.as_bytes()), value.as_bytes())];
        let batch = batch::build_keyed(0, 1_000, &record);
        let resp: ProduceResponse = c.call(ApiKey::Produce, 8, &produce_request("kept", batch));
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    }

    let mut d = delete_records_request::DeleteRecordsPartition::default();
    d.offset = 10;
    let mut t = delete_records_request::DeleteRecordsTopic::default();
    t.name = common::topic_name("kept");
    t.partitions.push(d);
    let mut r = DeleteRecordsRequest::default();
    r.topics.push(t);
    r.timeout_ms = 5000;
    let resp: DeleteRecordsResponse = c.call(ApiKey::DeleteRecords, 2, &r);
    assert_eq!(
        resp.topics[0].partitions[0].error_code, 44,
        "POLICY_VIOLATION"
    );

    // The passes fail while the obstacle stands...
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(broker.cleaner_passes(), 0);
    // ...and one succeeds once it is gone.
    std::fs::remove_file(&obstacle).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while broker.cleaner_passes() == 0 {
        assert!(Instant::now() < deadline, "the log was given up");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}
