//! A log writer that falls behind: with a ring of two slots and an fsync
//! per group, a client pipelining hundreds of produce requests fills the
//! ring at once. Its connection pauses and retries instead of blocking the
//! event loop, and every request is still answered, in order, with
//! consecutive offsets; meanwhile a second client on the same loop is
//! served.

mod common;

use bytes::Bytes;
use common::Client;
use gyre_broker::log::batch;
use gyre_broker::writer::FlushPolicy;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::time::Duration;

fn produce_request(records: Vec<u8>) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.records = Some(Bytes::from(records));
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_static_str("pressed"));
    t.partition_data.push(p);
    let mut r = ProduceRequest::default();
    r.acks = 1;
    r.timeout_ms = 5000;
    r.topic_data.push(t);
    r
}

#[test]
fn a_full_writer_ring_pauses_the_connection_not_the_loop() {
    let mut config = common::config("backpressure");
    config.ring_capacity = 2;
    config.flush = FlushPolicy::EveryBatch;
    config.workers = 1;
    let broker = common::start(&config);
    let addr = broker.local_addr();
    let mut producer = Client::connect(addr);
    let mut bystander = Client::connect(addr);
    let mut t = CreatableTopic::default();
    t.name = TopicName(StrBytes::from_static_str("pressed"));
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut create = CreateTopicsRequest::default();
    create.topics.push(t);
    create.timeout_ms = 5000;
    let created: CreateTopicsResponse = producer.call(ApiKey::CreateTopics, 4, &create);
    assert_eq!(created.topics[0].error_code, 0);
    let now = gyre_broker::log::now_ms();
    let n = 300;
    let mut ids = Vec::new();
    for i in 0..n {
        let records = batch::build(0, now + i, &[format!("record {i}").as_bytes()]);
        ids.push(producer.send(ApiKey::Produce, 7, &produce_request(records)));
    }
    // The other connection on the same loop is answered meanwhile.
    let r: ApiVersionsResponse =
        bystander.call(ApiKey::ApiVersions, 2, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
    for (i, id) in ids.iter().enumerate() {
        let (correlation, body) = producer.receive().expect("an answer");
        assert_eq!(correlation, *id, "answers in request order");
        let mut body = body;
        let resp = ProduceResponse::decode(&mut body, 7).unwrap();
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, i as i64), "request {i}");
    }
    assert!(
        broker.ring_stalls() > 0,
        "the ring never filled, so the retry path went untested"
    );
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}
