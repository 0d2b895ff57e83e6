//! What the broker does when its own code or its disk fails, made to
//! happen by the `failpoints` feature (a group or topic named
//! `gyre-failpoint-<place>`):
//! - a panic on the group coordinator, while handling a request: that
//!   request is answered `UNKNOWN_SERVER_ERROR` in its own shape, as
//!   Kafka answers a handler's exception; its connection stays open and
//!   every other group goes on;
//! - a panic in an admin request's work, off the loop: the same answer,
//!   rather than a connection left waiting for it;
//! - a panic in the log cleaner's pass: that log is left uncompacted and
//!   the others are still compacted;
//! - a panic on the log writer: the binary stops at once with status 1,
//!   without marking the logs clean, and the next start checks them and
//!   serves every acknowledged record;
//! - an fsync that fails (EIO), on the writer or on the interval
//!   flusher: the records it covered are not acknowledged, nothing more
//!   is appended, the broker reports its failure and the logs are not
//!   marked clean.

mod common;

use common::groups::classic_join;
use common::process::BrokerProcess;
use common::{create_topic, produce_request, Client};
use gyre_broker::log::batch;
use gyre_broker::writer::FlushPolicy;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::time::{Duration, Instant};

/// A JoinGroup v1 into `group`; its error code and generation.
fn join(c: &mut Client, group: &str) -> (i16, i32) {
    let resp: JoinGroupResponse = c.call(ApiKey::JoinGroup, 1, &classic_join(group, "", None));
    (resp.error_code, resp.generation_id)
}

#[test]
fn a_coordinator_panic_answers_unknown_server_error_and_keeps_the_connection() {
    let config = common::config("coordinator-panic");
    let broker = common::start(&config);
    let addr = broker.local_addr();
    let mut calm = Client::connect(addr);
    assert_eq!(join(&mut calm, "calm"), (0, 1));

    // The request that panics, with another pipelined behind it: both
    // are answered, in order, on the same connection.
    let mut unlucky = Client::connect(addr);
    let doomed = classic_join("gyre-failpoint-coordinator", "", None);
    let first = unlucky.send(ApiKey::JoinGroup, 1, &doomed);
    let second = unlucky.send(ApiKey::ListGroups, 0, &ListGroupsRequest::default());
    let (id, mut body) = unlucky.receive().expect("the panicked request is answered");
    assert_eq!(id, first);
    let resp = JoinGroupResponse::decode(&mut body, 1).unwrap();
    assert_eq!((resp.error_code, resp.generation_id), (-1, -1));
    let (id, _) = unlucky.receive().expect("the request behind it too");
    assert_eq!(id, second);

    // An OffsetCommit that panics is answered partition by partition.
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(StrBytes::from_static_str("gyre-failpoint-coordinator"));
    commit.generation_id_or_member_epoch = -1;
    for (topic, partitions) in [("a", 2), ("b", 1)] {
        let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = common::topic_name(topic);
        for index in 0..partitions {
            let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
            p.partition_index = index;
            p.committed_offset = 5;
            t.partitions.push(p);
        }
        commit.topics.push(t);
    }
    let resp: OffsetCommitResponse = unlucky.call(ApiKey::OffsetCommit, 2, &commit);
    let answered: Vec<(&str, i32, i16)> = resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.as_str(), p.partition_index, p.error_code))
        })
        .collect();
    assert_eq!(answered, [("a", 0, -1), ("a", 1, -1), ("b", 0, -1)]);

    // The coordinator goes on: a new group forms, on the same
    // connection as the panics.
    assert_eq!(join(&mut unlucky, "calm-too"), (0, 1));
    let groups: ListGroupsResponse =
        calm.call(ApiKey::ListGroups, 0, &ListGroupsRequest::default());
    assert_eq!(groups.error_code, 0);
    let mut names: Vec<&str> = groups.groups.iter().map(|g| g.group_id.as_str()).collect();
    names.sort_unstable();
    assert!(names.starts_with(&["calm", "calm-too"]), "{names:?}");
    assert_eq!(
        broker.health().failure(),
        None,
        "one request's panic is not the broker's"
    );
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn an_admin_requests_panic_is_answered_unknown_server_error() {
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
    let config = common::config("admin-panic");
    let broker = common::start(&config);
    let mut client = Client::connect(broker.local_addr());
    let mut entity = EntityData::default();
    entity.entity_type = StrBytes::from_static_str("client-id");
    entity.entity_name = Some(StrBytes::from_static_str("gyre-failpoint-admin"));
    let mut op = OpData::default();
    op.key = StrBytes::from_static_str("producer_byte_rate");
    op.value = 1000.0;
    let mut entry = EntryData::default();
    entry.entity.push(entity);
    entry.ops.push(op);
    let mut r = AlterClientQuotasRequest::default();
    r.entries.push(entry.clone());
    let failed: AlterClientQuotasResponse = client.call(ApiKey::AlterClientQuotas, 1, &r);
    assert_eq!(failed.entries.len(), 1);
    assert_eq!(failed.entries[0].error_code, -1);
    assert_eq!(
        failed.entries[0].entity[0].entity_name.as_deref(),
        Some("gyre-failpoint-admin")
    );

    // The admin thread goes on, and so does the connection: the next
    // change is written and answered.
    entry.entity[0].entity_name = Some(StrBytes::from_static_str("after-the-panic"));
    let mut r = AlterClientQuotasRequest::default();
    r.entries.push(entry);
    let altered: AlterClientQuotasResponse = client.call(ApiKey::AlterClientQuotas, 1, &r);
    assert_eq!(altered.entries[0].error_code, 0);
    let quotas: DescribeClientQuotasResponse = client.call(
        ApiKey::DescribeClientQuotas,
        1,
        &DescribeClientQuotasRequest::default(),
    );
    assert_eq!(quotas.error_code, 0);
    let names: Vec<_> = quotas
        .entries
        .iter()
        .flatten()
        .flat_map(|e| e.entity.iter().filter_map(|x| x.entity_name.as_deref()))
        .collect();
    assert_eq!(
        names,
        ["after-the-panic"],
        "the panicked change is not kept"
    );
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

fn produce_keyed(c: &mut Client, topic: &str, records: usize) {
    for i in 0..records {
        let key = format!("key-{}", i % 3);
        let value = "v".repeat(100);
        let batch = batch::build_keyed(0, 1_000, &[(Some(key.as_bytes()), value.as_bytes())]);
        let resp: ProduceResponse = c.call(ApiKey::Produce, 8, &produce_request(topic, batch));
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    }
}

fn wait_for_passes(broker: &gyre_broker::Broker, passes: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while broker.cleaner_passes() < passes {
        assert!(
            Instant::now() < deadline,
            "{} passes, not {passes}: the cleaner stopped",
            broker.cleaner_passes()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_cleaner_panic_leaves_its_log_uncompacted_and_the_others_compacted() {
    let config = common::compacting_config("cleaner-panic");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "calm", 1);
    create_topic(&mut c, "gyre-failpoint-cleaner", 1);
    produce_keyed(&mut c, "gyre-failpoint-cleaner", 60);
    produce_keyed(&mut c, "calm", 60);
    wait_for_passes(&broker, 1);
    // The failpoint's log, all dirt, is always the dirtiest: a second
    // pass over the calm log comes after the cleaner met the panic.
    produce_keyed(&mut c, "calm", 60);
    wait_for_passes(&broker, 2);
    let doomed = config.data_dir.join("topics/gyre-failpoint-cleaner/0");
    let segments = common::segment_files(&doomed).len();
    assert!(
        segments > 3,
        "the panicking log is left as written: {segments} segments"
    );
    assert!(
        !doomed
            .join(gyre_broker::log::cleaner::CLEANING_DIR)
            .exists(),
        "its pass's copies are dropped"
    );
    assert_eq!(common::end_offset(&mut c, "gyre-failpoint-cleaner"), 60);
    assert_eq!(broker.health().failure(), None);
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn a_writer_panic_stops_the_binary_unclean_and_the_next_start_serves_every_acknowledged_record() {
    let data = common::data_dir("writer-panic");
    let mut broker = BrokerProcess::start(&data, &[]);
    let addr = broker.addr.parse().unwrap();
    let mut c = Client::connect(addr);
    create_topic(&mut c, "kept", 1);
    for i in 0..50u32 {
        let value = i.to_string();
        let batch = batch::build(0, 1_000, &[value.as_bytes()]);
        let resp: ProduceResponse = c.call(ApiKey::Produce, 8, &produce_request("kept", batch));
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    }
    let mut doomed = Client::connect(addr);
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = common::topic_name("gyre-failpoint-writer");
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut r = CreateTopicsRequest::default();
    r.topics.push(t);
    r.timeout_ms = 5000;
    doomed.send(ApiKey::CreateTopics, 4, &r);

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = broker.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "a broker whose writer panicked stops:\n{}",
            broker.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = broker.stderr();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("the log writer panicked"), "{log}");
    assert!(log.contains("stopping after a failure"), "{log}");
    assert!(!log.contains("marked clean"), "{log}");
    assert!(
        !data.join(gyre_broker::checkpoint::CLEAN_MARKER).exists(),
        "the logs are not marked clean after a panic"
    );
    drop(broker);

    let broker = BrokerProcess::start(&data, &[]);
    let log = broker.stderr();
    assert!(log.contains("unclean stop: checking every batch"), "{log}");
    let mut c = Client::connect(broker.addr.parse().unwrap());
    assert_eq!(common::end_offset(&mut c, "kept"), 50);
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

/// Produces one record to `topic`; the partition's error code.
fn produce_one(c: &mut Client, topic: &str, value: &str) -> i16 {
    let batch = batch::build(0, 1_000, &[value.as_bytes()]);
    let resp: ProduceResponse = c.call(ApiKey::Produce, 8, &produce_request(topic, batch));
    resp.responses[0].partition_responses[0].error_code
}

const KAFKA_STORAGE_ERROR: i16 = 56;

/// A broker under `flush` whose fsyncs of one topic fail: the failure is
/// the broker's, nothing is appended after it, and the logs are left
/// unclean; the next start checks them and serves every acknowledged
/// record of the other topic.
fn a_failed_fsync_stops_appends(tag: &str, flush: FlushPolicy, failing_write_is_acked: bool) {
    let mut config = common::config(tag);
    config.flush = flush;
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "kept", 1);
    create_topic(&mut c, "gyre-failpoint-fsync", 1);
    for i in 0..20 {
        assert_eq!(produce_one(&mut c, "kept", &i.to_string()), 0);
    }
    let code = produce_one(&mut c, "gyre-failpoint-fsync", "lost?");
    let expected = if failing_write_is_acked {
        0
    } else {
        KAFKA_STORAGE_ERROR
    };
    assert_eq!(code, expected, "the record whose fsync fails");
    let why = broker
        .health()
        .wait_for_failure_timeout(Duration::from_secs(10))
        .expect("a failed fsync is the broker's failure");
    assert!(why.contains("fsync"), "{why}");
    // No sync can be trusted now: nothing more is appended.
    assert_eq!(produce_one(&mut c, "kept", "after"), KAFKA_STORAGE_ERROR);
    assert_eq!(common::end_offset(&mut c, "kept"), 20);
    broker.shutdown(Duration::from_secs(5));
    assert!(
        !config
            .data_dir
            .join(gyre_broker::checkpoint::CLEAN_MARKER)
            .exists(),
        "the logs are not marked clean after a failed fsync"
    );

    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    assert_eq!(common::end_offset(&mut c, "kept"), 20);
    assert_eq!(produce_one(&mut c, "kept", "next"), 0);
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn a_failed_fsync_on_the_writer_is_not_acknowledged_and_stops_every_append() {
    a_failed_fsync_stops_appends("fsync-every-batch", FlushPolicy::EveryBatch, false);
}

#[test]
fn a_failed_fsync_on_the_flusher_stops_every_append() {
    let every = FlushPolicy::Interval(Duration::from_millis(20));
    a_failed_fsync_stops_appends("fsync-interval", every, true);
}
