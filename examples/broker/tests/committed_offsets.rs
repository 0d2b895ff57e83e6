//! Committed offsets follow their topics, as in Kafka, over raw requests:
//! a commit for a partition that does not exist is refused
//! (`UNKNOWN_TOPIC_OR_PARTITION`), and a deleted topic's offsets go with
//! it, so a topic made again under its name starts with none. Before, a
//! group that had committed offset 10 of the old topic began reading the
//! new one at 10, skipping its first ten records.

mod common;

use common::{create_topic, topic_name, Client};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

/// A simple (memberless) commit of `offset` for each of `partitions` of
/// `topic` by group `g`: the error codes.
fn commit(c: &mut Client, topic: &str, partitions: &[i32], offset: i64) -> Vec<i16> {
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = topic_name(topic);
    for &i in partitions {
        let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = i;
        p.committed_offset = offset;
        t.partitions.push(p);
    }
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(StrBytes::from_static_str("g"));
    r.generation_id_or_member_epoch = -1;
    r.topics.push(t);
    let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &r);
    resp.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// Group `g`'s committed offset for partition 0 of `topic` (-1: none).
fn committed(c: &mut Client, topic: &str) -> i64 {
    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = topic_name(topic);
    t.partition_indexes = vec![0];
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(StrBytes::from_static_str("g"));
    r.topics = Some(vec![t]);
    let resp: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 7, &r);
    assert_eq!(resp.error_code, 0);
    resp.topics[0].partitions[0].committed_offset
}

fn delete_topic(c: &mut Client, topic: &str) {
    let mut d = DeleteTopicsRequest::default();
    d.topic_names.push(topic_name(topic));
    d.timeout_ms = 5000;
    let resp: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 4, &d);
    assert_eq!(resp.responses[0].error_code, 0);
}

#[test]
fn a_deleted_topics_offsets_go_with_it_and_a_missing_partition_takes_none() {
    let config = common::config("committed-offsets");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "t", 2);
    assert_eq!(
        commit(&mut c, "t", &[0, 1, 2], 10),
        [0, 0, 3],
        "partition 2 does not exist"
    );
    assert_eq!(commit(&mut c, "nope", &[0], 10), [3]);
    assert_eq!(committed(&mut c, "t"), 10);
    assert_eq!(
        committed(&mut c, "nope"),
        -1,
        "the refused commit was not kept"
    );

    delete_topic(&mut c, "t");
    assert_eq!(committed(&mut c, "t"), -1, "deleted with the topic");
    create_topic(&mut c, "t", 1);
    assert_eq!(committed(&mut c, "t"), -1, "the new topic starts with none");

    // A folder whose topic went while the broker was stopped (or that an
    // older broker left) holds offsets for it: dropped at start.
    create_topic(&mut c, "u", 1);
    assert_eq!(commit(&mut c, "u", &[0], 7), [0]);
    broker.shutdown(Duration::from_secs(5));
    std::fs::remove_dir_all(config.data_dir.join("topics/u")).unwrap();
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "u", 1);
    assert_eq!(committed(&mut c, "u"), -1);
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}
