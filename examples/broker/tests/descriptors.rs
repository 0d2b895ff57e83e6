//! A broker with more partitions than descriptors: under `ulimit -n 256`,
//! 300 partitions (three descriptors a segment would need 900) are created,
//! written and read, and the broker restarts on them, because segment files
//! past the cap are closed least recently used first and reopened on
//! demand. The start-up log reports the budget.

mod common;

use bytes::Bytes;
use common::process::BrokerProcess;
use common::{create_topic, end_offset_of, topic_name, Client};
use gyre_broker::log::batch;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};

const PARTITIONS: i32 = 300;

fn produce_everywhere(client: &mut Client, round: usize) {
    let mut t = TopicProduceData::default();
    t.name = topic_name("wide");
    for index in 0..PARTITIONS {
        let mut p = PartitionProduceData::default();
        p.index = index;
        let value = format!("round {round} partition {index}");
        p.records = Some(Bytes::from(batch::build(
            0,
            1_700_000_000_000,
            &[value.as_bytes()],
        )));
        t.partition_data.push(p);
    }
    let mut r = ProduceRequest::default();
    r.acks = 1;
    r.timeout_ms = 5000;
    r.topic_data.push(t);
    let resp: ProduceResponse = client.call(ApiKey::Produce, 8, &r);
    for p in &resp.responses[0].partition_responses {
        assert_eq!(p.error_code, 0, "partition {}", p.index);
    }
}

#[test]
fn three_hundred_partitions_under_ulimit_256() {
    let data = common::data_dir("descriptors");
    let broker = BrokerProcess::start_limited(&data, Some(256), &["--flush", "every-batch"]);
    let log = broker.stderr();
    assert!(log.contains("descriptor budget"), "{log}");
    let addr = broker.addr.parse().unwrap();
    let mut client = Client::connect(addr);
    create_topic(&mut client, "wide", PARTITIONS);
    produce_everywhere(&mut client, 0);
    produce_everywhere(&mut client, 1);
    for index in [0, 150, PARTITIONS - 1] {
        assert_eq!(end_offset_of(&mut client, "wide", index), 2);
    }
    drop(client);
    drop(broker);

    let broker = BrokerProcess::start_limited(&data, Some(256), &["--flush", "every-batch"]);
    let mut client = Client::connect(broker.addr.parse().unwrap());
    produce_everywhere(&mut client, 2);
    for index in 0..PARTITIONS {
        assert_eq!(
            end_offset_of(&mut client, "wide", index),
            3,
            "partition {index}"
        );
    }
    drop(client);
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}
