//! The newest (flexible) versions over a real socket, hand-built with
//! `kafka-protocol`: topic ids from CreateTopics v7 through Metadata v12
//! (by name and by id), Fetch v17 by id, DeleteTopics v6 by id, ids kept
//! across a restart, DescribeCluster, batched FindCoordinator v4,
//! ListOffsets v8's max-timestamp and earliest-local queries, and the
//! partition reassignment APIs (no client here has them), and Kafka
//! 4.1's Metadata v13, Fetch v18, ListOffsets v10 (-5, the latest tiered
//! offset), DescribeCluster v2 and FindCoordinator v6. Real clients
//! negotiating these versions are in `clients.rs`.

mod common;

use common::{create_topic, produce_request, topic_name, Client};
use gyre_broker::log::batch;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;
use uuid::Uuid;

fn metadata(c: &mut Client, topics: Vec<MetadataRequestTopic>) -> MetadataResponse {
    let mut r = MetadataRequest::default();
    r.topics = Some(topics);
    c.call(ApiKey::Metadata, 12, &r)
}

fn by_name(name: &str) -> MetadataRequestTopic {
    let mut t = MetadataRequestTopic::default();
    t.name = Some(topic_name(name));
    t
}

fn by_id(id: Uuid) -> MetadataRequestTopic {
    let mut t = MetadataRequestTopic::default();
    t.name = None;
    t.topic_id = id;
    t
}

fn fetch_by_id(c: &mut Client, id: Uuid) -> FetchResponse {
    fetch_by_id_at(c, id, 17)
}

/// Fetch v`version` (13+) of partition 0 of topic `id` from offset 0; v18
/// with a follower's high-watermark set, a tagged field a consumer leaves
/// unset.
fn fetch_by_id_at(c: &mut Client, id: Uuid, version: i16) -> FetchResponse {
    let mut p = FetchPartition::default();
    p.partition_max_bytes = 1 << 20;
    p.last_fetched_epoch = -1;
    p.current_leader_epoch = -1;
    if version >= 18 {
        p.high_watermark = 1;
    }
    let mut t = FetchTopic::default();
    t.topic_id = id;
    t.partitions.push(p);
    let mut r = FetchRequest::default();
    r.max_wait_ms = 10;
    r.max_bytes = 1 << 20;
    r.topics.push(t);
    c.call(ApiKey::Fetch, version, &r)
}

/// ListOffsets v`version` for `timestamp` in partition 0 of `topic` (with
/// a timeout from v10).
fn list_offsets(
    c: &mut Client,
    topic: &str,
    version: i16,
    timestamp: i64,
) -> list_offsets_response::ListOffsetsPartitionResponse {
    let mut p = ListOffsetsPartition::default();
    p.timestamp = timestamp;
    let mut t = ListOffsetsTopic::default();
    t.name = topic_name(topic);
    t.partitions.push(p);
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics.push(t);
    if version >= 10 {
        r.timeout_ms = 30_000;
    }
    let mut resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, version, &r);
    resp.topics.swap_remove(0).partitions.swap_remove(0)
}

#[test]
fn topic_ids_name_topics_in_metadata_fetch_and_delete_and_survive_a_restart() {
    let mut config = common::config("flexible-ids");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    // CreateTopics v7 answers with the new topic's id.
    let mut t = CreatableTopic::default();
    t.name = topic_name("ids");
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut r = CreateTopicsRequest::default();
    r.topics.push(t);
    let created: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &r);
    let id = created.topics[0].topic_id;
    assert!(!id.is_nil());
    assert_eq!(created.topics[0].num_partitions, 1);
    // Metadata v12 by name and by id agree; an unknown id is refused.
    let m = metadata(
        &mut c,
        vec![by_name("ids"), by_id(id), by_id(Uuid::from_u128(1))],
    );
    assert_eq!(m.topics[0].topic_id, id);
    assert_eq!(m.topics[1].name.as_ref().map(|n| n.0.as_str()), Some("ids"));
    assert_eq!(m.topics[1].partitions.len(), 1);
    assert_eq!(m.topics[2].error_code, 100, "UNKNOWN_TOPIC_ID");
    assert_eq!(m.cluster_id.as_ref().map(|s| s.as_str()), Some("gyre"));
    // Fetch v17 by id returns the records, named by id.
    let records = batch::build(0, 1_700_000_000_000, &[b"a", b"b"]);
    let _: ProduceResponse = c.call(ApiKey::Produce, 12, &produce_request("ids", records));
    let f = fetch_by_id(&mut c, id);
    assert_eq!(f.responses[0].topic_id, id);
    let p = &f.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 2));
    assert!(p.records.as_ref().is_some_and(|r| !r.is_empty()));
    let unknown = fetch_by_id(&mut c, Uuid::from_u128(2));
    assert_eq!(unknown.responses[0].partitions[0].error_code, 100);
    drop(c);
    broker.shutdown(Duration::from_secs(5));

    // The id is the topic's for good: the same after a restart.
    config.listen = "127.0.0.1:0".parse().unwrap();
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    let m = metadata(&mut c, vec![by_id(id)]);
    assert_eq!(m.topics[0].name.as_ref().map(|n| n.0.as_str()), Some("ids"));
    // DeleteTopics v6 by id; after it the id is unknown, and a topic made
    // again under the name has a new one.
    let mut d = DeleteTopicsRequest::default();
    let mut state = DeleteTopicState::default();
    state.name = None;
    state.topic_id = id;
    d.topics.push(state);
    let mut gone = DeleteTopicState::default();
    gone.name = None;
    gone.topic_id = Uuid::from_u128(3);
    d.topics.push(gone);
    let deleted: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 6, &d);
    assert_eq!(deleted.responses[0].error_code, 0);
    assert_eq!(
        deleted.responses[0].name.as_ref().map(|n| n.0.as_str()),
        Some("ids")
    );
    assert_eq!(deleted.responses[1].error_code, 100);
    assert_eq!(metadata(&mut c, vec![by_id(id)]).topics[0].error_code, 100);
    create_topic(&mut c, "ids", 1);
    let again = metadata(&mut c, vec![by_name("ids")]).topics[0].topic_id;
    assert!(!again.is_nil() && again != id);
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn the_cluster_coordinators_and_max_timestamp_at_the_newest_versions() {
    let config = common::config("flexible-node");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    let cluster: DescribeClusterResponse = c.call(ApiKey::DescribeCluster, 1, &{
        let mut r = DescribeClusterRequest::default();
        r.endpoint_type = 1;
        r
    });
    assert_eq!(cluster.error_code, 0);
    assert_eq!(cluster.cluster_id.as_str(), "gyre");
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(
        cluster.brokers[0].port,
        i32::from(broker.local_addr().port())
    );
    assert_eq!(
        cluster.cluster_authorized_operations,
        i32::MIN,
        "not asked for"
    );
    // Asked for, with the authorizer off: every cluster operation (CREATE,
    // ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
    // IDEMPOTENT_WRITE), as DescribeCluster and Metadata v8-10 say it.
    let all = [5, 7, 8, 9, 10, 11, 12]
        .iter()
        .fold(0, |bits, o| bits | 1 << o);
    let asked: DescribeClusterResponse = c.call(ApiKey::DescribeCluster, 1, &{
        let mut r = DescribeClusterRequest::default();
        r.endpoint_type = 1;
        r.include_cluster_authorized_operations = true;
        r
    });
    assert_eq!(asked.cluster_authorized_operations, all);
    let mut m = MetadataRequest::default();
    m.include_cluster_authorized_operations = true;
    let metadata: MetadataResponse = c.call(ApiKey::Metadata, 10, &m);
    assert_eq!(metadata.cluster_authorized_operations, all);
    let controllers: DescribeClusterResponse = c.call(ApiKey::DescribeCluster, 1, &{
        let mut r = DescribeClusterRequest::default();
        r.endpoint_type = 2;
        r
    });
    assert_ne!(controllers.error_code, 0, "not a controller");

    let mut r = FindCoordinatorRequest::default();
    r.coordinator_keys = vec![
        StrBytes::from_static_str("g1"),
        StrBytes::from_static_str("g2"),
    ];
    let found: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 4, &r);
    let keys: Vec<&str> = found.coordinators.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["g1", "g2"]);
    assert!(found
        .coordinators
        .iter()
        .all(|k| k.error_code == 0 && k.port > 0));

    // Three batches; the middle one holds the largest timestamp.
    create_topic(&mut c, "times", 1);
    for ts in [1_000, 9_000, 5_000] {
        let records = batch::build(0, ts, &[b"x"]);
        let _: ProduceResponse = c.call(ApiKey::Produce, 9, &produce_request("times", records));
    }
    let query = |c: &mut Client, timestamp: i64| {
        let p = list_offsets(c, "times", 8, timestamp);
        (p.offset, p.timestamp)
    };
    assert_eq!(query(&mut c, -3), (1, 9_000), "max timestamp");
    assert_eq!(query(&mut c, -4).0, 0, "earliest local");
    assert_eq!(query(&mut c, 4_000), (1, 9_000));
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn offset_fetch_v8_answers_several_groups_at_once() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopics,
    };
    let config = common::config("flexible-offsets");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "read", 2);
    // Offsets committed outside any generation, as admin tools do.
    for (group, offset) in [("a", 10), ("b", 20)] {
        let mut p = OffsetCommitRequestPartition::default();
        p.partition_index = 1;
        p.committed_offset = offset;
        let mut t = OffsetCommitRequestTopic::default();
        t.name = topic_name("read");
        t.partitions.push(p);
        let mut r = OffsetCommitRequest::default();
        r.group_id = GroupId(StrBytes::from_static_str(group));
        r.generation_id_or_member_epoch = -1;
        r.topics.push(t);
        let done: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &r);
        assert_eq!(done.topics[0].partitions[0].error_code, 0);
    }
    let mut named = OffsetFetchRequestTopics::default();
    named.name = topic_name("read");
    named.partition_indexes = vec![0, 1];
    let mut a = OffsetFetchRequestGroup::default();
    a.group_id = GroupId(StrBytes::from_static_str("a"));
    a.member_id = None;
    a.topics = Some(vec![named]);
    let mut b = OffsetFetchRequestGroup::default();
    b.group_id = GroupId(StrBytes::from_static_str("b"));
    b.member_id = None;
    b.topics = None; // all
    let mut r = OffsetFetchRequest::default();
    r.groups = vec![a, b];
    let got: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 8, &r);
    let offsets = |g: usize| -> Vec<(i32, i64)> {
        got.groups[g].topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.committed_offset))
            .collect()
    };
    assert_eq!(got.groups[0].group_id.0.as_str(), "a");
    assert_eq!(offsets(0), [(0, -1), (1, 10)]);
    assert_eq!(got.groups[1].group_id.0.as_str(), "b");
    assert_eq!(offsets(1), [(1, 20)]);
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn partition_reassignments_of_a_one_broker_cluster_at_their_versions() {
    use alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    let config = common::config("reassign");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "moved", 2);
    // None is ever in progress.
    let listed: ListPartitionReassignmentsResponse = c.call(
        ApiKey::ListPartitionReassignments,
        0,
        &ListPartitionReassignmentsRequest::default(),
    );
    assert_eq!((listed.error_code, listed.topics.len()), (0, 0));
    // To the replicas it has: done; to another broker: not registered;
    // cancelling: nothing to cancel.
    let part = |index, replicas: Option<Vec<i32>>| {
        let mut p = ReassignablePartition::default();
        p.partition_index = index;
        p.replicas = replicas.map(|r| r.into_iter().map(BrokerId).collect());
        p
    };
    let mut t = ReassignableTopic::default();
    t.name = topic_name("moved");
    t.partitions = vec![
        part(0, Some(vec![0])),
        part(1, Some(vec![3])),
        part(1, None),
    ];
    let mut r = AlterPartitionReassignmentsRequest::default();
    r.topics = vec![t];
    for version in [0, 1] {
        let resp: AlterPartitionReassignmentsResponse =
            c.call(ApiKey::AlterPartitionReassignments, version, &r);
        let codes: Vec<i16> = resp.responses[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(codes, vec![0, 39, 85], "v{version}");
    }
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn kafka_4_1s_versions_of_metadata_fetch_list_offsets_describe_cluster_and_find_coordinator() {
    let config = common::config("flexible-4-1");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "newest", 1);
    let records = batch::build(0, 1_700_000_000_000, &[b"a", b"b", b"c"]);
    let _: ProduceResponse = c.call(ApiKey::Produce, 12, &produce_request("newest", records));

    // Metadata v13: the top-level error (KIP-1102) is none.
    let mut m = MetadataRequest::default();
    m.topics = Some(vec![by_name("newest")]);
    let meta: MetadataResponse = c.call(ApiKey::Metadata, 13, &m);
    assert_eq!(meta.error_code, 0);
    let id = meta.topics[0].topic_id;
    assert!(!id.is_nil());

    // Fetch v18, with a follower's high-watermark set: read as v17.
    let f = fetch_by_id_at(&mut c, id, 18);
    let got = &f.responses[0].partitions[0];
    assert_eq!((got.error_code, got.high_watermark), (0, 3));
    assert!(got.records.as_ref().is_some_and(|r| !r.is_empty()));

    // ListOffsets v10: -5, the latest tiered offset, is -1 with no tiered
    // storage (Kafka's answer); the others as before; a timeout is taken.
    let query = |c: &mut Client, timestamp: i64| {
        let p = list_offsets(c, "newest", 10, timestamp);
        (p.error_code, p.offset, p.timestamp, p.leader_epoch)
    };
    assert_eq!(query(&mut c, -5), (0, -1, -1, -1), "latest tiered");
    assert_eq!(query(&mut c, -1).1, 3, "latest");
    assert_eq!(query(&mut c, -2).1, 0, "earliest");

    // DescribeCluster v2: fenced brokers asked for; this one is not.
    let cluster: DescribeClusterResponse = c.call(ApiKey::DescribeCluster, 2, &{
        let mut r = DescribeClusterRequest::default();
        r.endpoint_type = 1;
        r.include_fenced_brokers = true;
        r
    });
    assert_eq!(cluster.error_code, 0);
    assert_eq!(cluster.brokers.len(), 1);
    assert!(!cluster.brokers[0].is_fenced);

    // FindCoordinator v6: a share partition's coordinator (KIP-932) is
    // this broker; below v6 that key type, and any type Kafka does not
    // know, is INVALID_REQUEST with no node.
    let find = |c: &mut Client, version: i16, key_type: i8| {
        let mut r = FindCoordinatorRequest::default();
        r.key_type = key_type;
        r.coordinator_keys = vec![StrBytes::from_string(format!("g:{id}:0"))];
        let found: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, version, &r);
        let k = &found.coordinators[0];
        (k.error_code, k.node_id.0)
    };
    assert_eq!(find(&mut c, 6, 2), (0, 0));
    assert_eq!(find(&mut c, 6, 1), (0, 0), "a transactional id");
    assert_eq!(find(&mut c, 5, 0), (0, 0), "a group");
    assert_eq!(find(&mut c, 5, 2), (42, -1), "share keys are v6's");
    assert_eq!(find(&mut c, 6, 3), (42, -1), "no such key type");
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}
