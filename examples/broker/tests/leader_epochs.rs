//! Leader epochs over a real socket (KIP-101, KIP-320), hand-built with
//! `kafka-protocol`: each start of the broker is a new epoch, which
//! Metadata answers and every appended batch carries; ListOffsets answers
//! each offset with its epoch; a fetch or lookup naming an older epoch is
//! fenced and a newer one is unknown; OffsetForLeaderEpoch says where an
//! epoch's records end, including after a start that cut the log, and a
//! fetch by a consumer that read past that end is answered with where the
//! log diverges.
//! librdkafka's consumers acting on it are in `clients.rs`.

mod common;

use common::{create_topic, produce_request, topic_name, Client};
use gyre_broker::log::batch;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::*;
use std::path::Path;
use std::time::Duration;

const TOPIC: &str = "epochs";
const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

/// The leader epoch Metadata v12 gives partition 0.
fn metadata_epoch(c: &mut Client) -> i32 {
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(topic_name(TOPIC));
    let mut r = MetadataRequest::default();
    r.topics = Some(vec![t]);
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &r);
    resp.topics[0].partitions[0].leader_epoch
}

/// Produces `n` one-record batches.
fn produce(c: &mut Client, n: usize) {
    for _ in 0..n {
        let r = produce_request(TOPIC, batch::build(0, 1_000, &[b"v"]));
        let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &r);
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    }
}

/// Fetch v12 of partition 0 from `offset` naming `epoch`: the error code
/// and the (base offset, leader epoch) of each batch answered.
fn fetch(c: &mut Client, offset: i64, epoch: i32) -> (i16, Vec<(i64, i32)>) {
    let (error, diverging, batches) = fetch_after(c, offset, epoch, -1);
    assert_eq!(diverging, (-1, -1));
    (error, batches)
}

/// [`fetch`] by a consumer whose last batch read was of epoch
/// `last_fetched`: also the diverging epoch answered ((-1, -1): none).
fn fetch_after(
    c: &mut Client,
    offset: i64,
    epoch: i32,
    last_fetched: i32,
) -> (i16, (i32, i64), Vec<(i64, i32)>) {
    let mut p = FetchPartition::default();
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    p.current_leader_epoch = epoch;
    p.last_fetched_epoch = last_fetched;
    let mut t = FetchTopic::default();
    t.topic = topic_name(TOPIC);
    t.partitions.push(p);
    let mut r = FetchRequest::default();
    r.max_bytes = 1 << 20;
    r.topics.push(t);
    r.max_wait_ms = 5_000;
    r.min_bytes = 1;
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &r);
    let p = &resp.responses[0].partitions[0];
    let diverging = (p.diverging_epoch.epoch, p.diverging_epoch.end_offset);
    let mut batches = Vec::new();
    let records = p.records.clone().unwrap_or_default();
    let mut at = 0;
    while at < records.len() {
        let h = batch::parse_header(&records[at..]).unwrap();
        batches.push((h.base_offset, h.partition_leader_epoch));
        at += h.size;
    }
    (p.error_code, diverging, batches)
}

/// ListOffsets v8 of partition 0 for `timestamp` naming `epoch`: the
/// error code, offset and leader epoch answered.
fn list_offsets(c: &mut Client, timestamp: i64, epoch: i32) -> (i16, i64, i32) {
    let mut p = ListOffsetsPartition::default();
    p.timestamp = timestamp;
    p.current_leader_epoch = epoch;
    let mut t = ListOffsetsTopic::default();
    t.name = topic_name(TOPIC);
    t.partitions.push(p);
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics.push(t);
    let resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 8, &r);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset, p.leader_epoch)
}

/// OffsetForLeaderEpoch v`version` of partition 0 for `epoch`, naming
/// `current`: the error code, epoch and end offset answered.
fn epoch_end(c: &mut Client, version: i16, epoch: i32, current: i32) -> (i16, i32, i64) {
    let mut p = OffsetForLeaderPartition::default();
    p.leader_epoch = epoch;
    p.current_leader_epoch = current;
    let mut t = OffsetForLeaderTopic::default();
    t.topic = topic_name(TOPIC);
    t.partitions.push(p);
    let mut r = OffsetForLeaderEpochRequest::default();
    r.replica_id = BrokerId(-2);
    r.topics.push(t);
    let resp: OffsetForLeaderEpochResponse = c.call(ApiKey::OffsetForLeaderEpoch, version, &r);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

/// Cuts the only segment of partition 0 in `data` after its first `n`
/// batches, and removes the clean-stop marker, as a power cut leaves a
/// log whose last batches were not synced.
fn cut_after(data: &Path, n: usize) {
    let dir = data.join("topics").join(TOPIC).join("0");
    let files = common::segment_files(&dir);
    let bytes = std::fs::read(&files[0]).unwrap();
    let mut at = 0;
    for _ in 0..n {
        at += batch::parse_header(&bytes[at..]).unwrap().size;
    }
    std::fs::write(&files[0], &bytes[..at]).unwrap();
    std::fs::remove_file(data.join(gyre_broker::checkpoint::CLEAN_MARKER)).unwrap();
}

#[test]
fn each_start_is_a_new_epoch_that_batches_carry_and_old_epochs_are_fenced() {
    let config = common::config("leader-epochs");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, TOPIC, 1);
    let first = metadata_epoch(&mut c);
    assert!(first >= 1, "{first}");
    produce(&mut c, 3);
    assert_eq!(
        fetch(&mut c, 0, first),
        (0, vec![(0, first), (1, first), (2, first)]),
        "each batch carries the epoch it was appended in, not its producer's"
    );
    assert_eq!(list_offsets(&mut c, -1, first), (0, 3, first));
    assert_eq!(list_offsets(&mut c, -2, -1), (0, 0, first));
    assert_eq!(epoch_end(&mut c, 4, first, first), (0, first, 3));
    assert_eq!(epoch_end(&mut c, 2, first, -1), (0, first, 3));
    drop(c);
    broker.shutdown(Duration::from_secs(10));

    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    let second = metadata_epoch(&mut c);
    assert_eq!(second, first + 1, "a start takes the next epoch");
    // A client whose metadata predates the restart is fenced until it
    // looks again; one ahead of the broker is told the epoch is unknown;
    // one that names none is served.
    assert_eq!(fetch(&mut c, 0, first), (FENCED_LEADER_EPOCH, vec![]));
    assert_eq!(fetch(&mut c, 0, second + 1), (UNKNOWN_LEADER_EPOCH, vec![]));
    assert_eq!(fetch(&mut c, 0, -1).0, 0);
    assert_eq!(list_offsets(&mut c, -1, first).0, FENCED_LEADER_EPOCH);
    assert_eq!(epoch_end(&mut c, 4, first, first).0, FENCED_LEADER_EPOCH);
    // The first epoch's records end where the second's began.
    assert_eq!(epoch_end(&mut c, 4, first, second), (0, first, 3));
    assert_eq!(epoch_end(&mut c, 4, second, second), (0, second, 3));
    produce(&mut c, 2);
    assert_eq!(
        fetch(&mut c, 2, second),
        (0, vec![(2, first), (3, second), (4, second)])
    );
    assert_eq!(list_offsets(&mut c, -2, second), (0, 0, first));
    assert_eq!(list_offsets(&mut c, 1_000, second), (0, 0, first));
    assert_eq!(epoch_end(&mut c, 4, second, second), (0, second, 5));
    assert_eq!(epoch_end(&mut c, 4, first, second), (0, first, 3));
    // Unknown epochs: newer than any, or none.
    assert_eq!(epoch_end(&mut c, 4, second + 5, -1), (0, -1, -1));
    assert_eq!(epoch_end(&mut c, 4, -1, -1), (0, -1, -1));
    drop(c);
    broker.shutdown(Duration::from_secs(10));

    // A power cut took the log's last batch: the reader that had it
    // (offset 5, in epoch `second`) hears that epoch now ends at 4.
    cut_after(&config.data_dir, 4);
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    let third = metadata_epoch(&mut c);
    assert_eq!(third, second + 1);
    assert_eq!(epoch_end(&mut c, 4, second, third), (0, second, 4));
    assert_eq!(epoch_end(&mut c, 4, first, third), (0, first, 3));
    // The same reader's next fetch (offset 5, last read in `second`) is
    // answered at once with where the log diverges, and no records; one
    // that read only to 4 goes on.
    let started = std::time::Instant::now();
    assert_eq!(
        fetch_after(&mut c, 5, third, second),
        (0, (second, 4), vec![])
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "not held for the long poll"
    );
    assert_eq!(fetch_after(&mut c, 3, third, first).2, vec![(3, second)]);
    produce(&mut c, 1);
    assert_eq!(fetch(&mut c, 3, third), (0, vec![(3, second), (4, third)]));
    drop(c);
    broker.shutdown(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn an_unknown_partition_is_answered_so() {
    let config = common::config("leader-epochs-unknown");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    assert_eq!(
        epoch_end(&mut c, 3, 1, -1).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    drop(c);
    broker.shutdown(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}
