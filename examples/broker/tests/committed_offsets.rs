//! Committed offsets follow their topics and their groups, as in Kafka,
//! over raw requests: a commit for a partition that does not exist is
//! refused (`UNKNOWN_TOPIC_OR_PARTITION`), and a deleted topic's offsets
//! go with it, so a topic made again under its name starts with none
//! (before, a group that had committed offset 10 of the old topic began
//! reading the new one at 10, skipping its first ten records); a group
//! without members that commits nothing for `offsets.retention.minutes`
//! loses its offsets (before, every group ever made kept them for good),
//! and a group with members loses those of topics none of them
//! subscribes to (before, a group that changed its subscription kept its
//! old topics' offsets for good). Those ages survive a restart (before, a
//! restart started every group's clock again, so a broker restarted more
//! often than the retention never expired anything). Metadata past
//! `offset.metadata.max.bytes` is refused (before, any length was kept
//! and answered).

mod common;

use common::{create_topic, topic_name, Client};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

/// A simple (memberless) commit of `offset` for each of `partitions` of
/// `topic` by group `g`: the error codes.
fn commit(c: &mut Client, topic: &str, partitions: &[i32], offset: i64) -> Vec<i16> {
    commit_as(c, ("g", "", -1), topic, partitions, offset)
}

/// [`commit`] by `group`'s `member` at `epoch` (v9).
fn commit_as(
    c: &mut Client,
    (group, member, epoch): (&str, &str, i32),
    topic: &str,
    partitions: &[i32],
    offset: i64,
) -> Vec<i16> {
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = topic_name(topic);
    for &i in partitions {
        let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = i;
        p.committed_offset = offset;
        t.partitions.push(p);
    }
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(StrBytes::from_string(group.to_owned()));
    r.member_id = StrBytes::from_string(member.to_owned());
    r.generation_id_or_member_epoch = epoch;
    r.topics.push(t);
    let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 9, &r);
    resp.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// Group `g`'s committed offset for partition 0 of `topic` (-1: none).
fn committed(c: &mut Client, topic: &str) -> i64 {
    committed_by(c, "g", topic)
}

/// `group`'s committed offset for partition 0 of `topic` (-1: none).
fn committed_by(c: &mut Client, group: &str, topic: &str) -> i64 {
    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = topic_name(topic);
    t.partition_indexes = vec![0];
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(StrBytes::from_string(group.to_owned()));
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

/// A consumer-protocol member `m1` of group `g2` (KIP-848) joins
/// (`epoch` 0: its epoch back) or leaves (`epoch` -1).
fn heartbeat(c: &mut Client, epoch: i32) -> i32 {
    let mut r = ConsumerGroupHeartbeatRequest::default();
    r.group_id = GroupId(StrBytes::from_static_str("g2"));
    r.member_id = StrBytes::from_static_str("m1");
    r.member_epoch = epoch;
    r.rebalance_timeout_ms = 30_000;
    r.subscribed_topic_names = Some(vec![topic_name("t")]);
    r.topic_partitions = Some(Vec::new());
    let resp: ConsumerGroupHeartbeatResponse = c.call(ApiKey::ConsumerGroupHeartbeat, 1, &r);
    assert_eq!(resp.error_code, 0, "{resp:?}");
    resp.member_epoch
}

/// Static member `s1` of classic group `group`, subscribed to `t`, joined
/// and synced (the group stable): its member id and generation.
fn classic_member(c: &mut Client, group: &str) -> (String, i32) {
    let join = common::groups::classic_join(group, "", Some("s1"));
    let joined: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &join);
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(StrBytes::from_string(group.to_owned()));
    sync.member_id = joined.member_id.clone();
    sync.group_instance_id = Some(StrBytes::from_static_str("s1"));
    sync.generation_id = joined.generation_id;
    let mut a = sync_group_request::SyncGroupRequestAssignment::default();
    a.member_id = joined.member_id.clone();
    sync.assignments.push(a);
    let synced: SyncGroupResponse = c.call(ApiKey::SyncGroup, 3, &sync);
    assert_eq!(synced.error_code, 0);
    (joined.member_id.to_string(), joined.generation_id)
}

/// A broker keeping offsets 4 s, checked every `check`, with topic `t`
/// (one partition), and a client of it.
fn retaining_4_s(
    tag: &str,
    check: Duration,
) -> (gyre_broker::BrokerConfig, gyre_broker::Broker, Client) {
    let mut config = common::config(tag);
    config.consumer_groups.offsets_retention = Duration::from_secs(4);
    config.consumer_groups.offsets_retention_check = check;
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "t", 1);
    (config, broker, c)
}

#[test]
fn a_groups_offsets_expire_once_it_has_neither_members_nor_commits_for_the_retention() {
    // Margins of 1.5 s or more around every expiry: a slow machine
    // cannot turn the checks around.
    let (config, broker, mut c) = retaining_4_s("offsets-retention", Duration::from_millis(100));
    create_topic(&mut c, "u", 1);
    let wait = |ms| std::thread::sleep(Duration::from_millis(ms));

    // A standalone committer's offsets: kept while it commits, then gone.
    assert_eq!(commit(&mut c, "t", &[0], 3), [0]);
    wait(2500);
    assert_eq!(commit(&mut c, "t", &[0], 4), [0]);
    wait(2500);
    assert_eq!(
        committed(&mut c, "t"),
        4,
        "5 s after the first commit, 2.5 s after the last"
    );
    wait(4000);
    assert_eq!(committed(&mut c, "t"), -1, "idle past the retention");

    // A group with a member keeps them however long it commits nothing,
    // but only for topics its members subscribe to; once the member
    // leaves, the retention runs.
    let epoch = heartbeat(&mut c, 0);
    assert_eq!(commit_as(&mut c, ("g2", "m1", epoch), "t", &[0], 5), [0]);
    assert_eq!(commit_as(&mut c, ("g2", "m1", epoch), "u", &[0], 7), [0]);
    // The same in a classic group of the consumer protocol, once stable:
    // its member subscribes to t (its JoinGroup metadata says so).
    let (member, generation) = classic_member(&mut c, "g3");
    assert_eq!(
        commit_as(&mut c, ("g3", &member, generation), "t", &[0], 6),
        [0]
    );
    assert_eq!(
        commit_as(&mut c, ("g3", &member, generation), "u", &[0], 8),
        [0]
    );
    wait(5500);
    assert_eq!(committed_by(&mut c, "g2", "t"), 5, "its member is still in");
    assert_eq!(
        committed_by(&mut c, "g2", "u"),
        -1,
        "no member subscribes to u"
    );
    assert_eq!(committed_by(&mut c, "g3", "t"), 6);
    assert_eq!(committed_by(&mut c, "g3", "u"), -1);
    heartbeat(&mut c, -1);
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(StrBytes::from_static_str("g3"));
    let mut who = leave_group_request::MemberIdentity::default();
    who.group_instance_id = Some(StrBytes::from_static_str("s1"));
    leave.members.push(who);
    let left: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, 5, &leave);
    assert_eq!(left.error_code, 0);
    wait(1500);
    assert_eq!(committed_by(&mut c, "g2", "t"), 5, "left 1.5 s ago");
    wait(4500);
    assert_eq!(committed_by(&mut c, "g2", "t"), -1);
    assert_eq!(committed_by(&mut c, "g3", "t"), -1);
    let groups: ListGroupsResponse = c.call(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
    assert!(groups.groups.is_empty(), "{groups:?}");
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn the_ages_offsets_expire_by_survive_a_restart() {
    // Margins of 1.4 s or more around every expiry.
    let (config, broker, mut c) =
        retaining_4_s("offsets-retention-restart", Duration::from_millis(100));
    let started = std::time::Instant::now();
    let wait_until = |ms| {
        let at = started + Duration::from_millis(ms);
        std::thread::sleep(at.saturating_duration_since(std::time::Instant::now()));
    };
    // At 0 s a standalone committer and a member of g2 commit; the member
    // stays until 2.5 s.
    assert_eq!(commit(&mut c, "t", &[0], 3), [0]);
    let epoch = heartbeat(&mut c, 0);
    assert_eq!(commit_as(&mut c, ("g2", "m1", epoch), "t", &[0], 5), [0]);
    wait_until(2500);
    heartbeat(&mut c, -1);
    broker.shutdown(Duration::from_secs(5));
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    // 4 s after its commit the standalone committer's offsets are gone,
    // though the broker has run for less than 3 s; g2's count from when
    // its member left.
    wait_until(5500);
    assert_eq!(committed(&mut c, "t"), -1, "aged from the restart");
    assert_eq!(
        committed_by(&mut c, "g2", "t"),
        5,
        "aged from its last commit, not its last member"
    );
    wait_until(8000);
    assert_eq!(committed_by(&mut c, "g2", "t"), -1);
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

/// A simple commit by group `group` of `offset` for partition 0 of
/// `topic` with `metadata`, as `member` at `generation`: its code.
fn commit_metadata(
    c: &mut Client,
    (group, member, generation): (&str, &str, i32),
    topic: &str,
    offset: i64,
    metadata: &str,
) -> i16 {
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_metadata = Some(StrBytes::from_string(metadata.to_owned()));
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = topic_name(topic);
    t.partitions.push(p);
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(StrBytes::from_string(group.to_owned()));
    r.member_id = StrBytes::from_string(member.to_owned());
    r.generation_id_or_member_epoch = generation;
    r.topics.push(t);
    let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &r);
    resp.topics[0].partitions[0].error_code
}

#[test]
fn metadata_past_the_bound_is_refused_and_not_kept() {
    let mut config = common::config("offset-metadata");
    config.consumer_groups.offset_metadata_max_bytes = 100;
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "t", 1);
    let standalone = ("g", "", -1);
    assert_eq!(
        commit_metadata(&mut c, standalone, "t", 5, &"m".repeat(100)),
        0
    );
    assert_eq!(
        commit_metadata(&mut c, standalone, "t", 6, &"m".repeat(101)),
        12,
        "OFFSET_METADATA_TOO_LARGE"
    );
    assert_eq!(committed(&mut c, "t"), 5, "the refused commit was kept");
    // Counted as Kafka counts a Java string: 100 euro signs (300 bytes)
    // are 100 units.
    assert_eq!(
        commit_metadata(&mut c, standalone, "t", 8, &"€".repeat(100)),
        0
    );
    assert_eq!(
        commit_metadata(&mut c, standalone, "t", 9, &"€".repeat(101)),
        12
    );
    assert_eq!(committed(&mut c, "t"), 8);
    // A commit refused whole says why, whatever its metadata.
    let (member, generation) = classic_member(&mut c, "g4");
    assert_eq!(
        commit_metadata(
            &mut c,
            ("g4", &member, generation + 1),
            "t",
            7,
            &"m".repeat(101)
        ),
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        commit_metadata(
            &mut c,
            ("g4", &member, generation),
            "t",
            7,
            &"m".repeat(101)
        ),
        12
    );
    assert_eq!(committed_by(&mut c, "g4", "t"), -1);
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn a_group_that_left_before_a_restart_between_checks_is_not_aged_from_its_commit() {
    // Checks an hour apart: after the one at start, only the mark written
    // when the group got its first offset says it was in use.
    let (config, broker, mut c) = retaining_4_s(
        "offsets-retention-between-checks",
        Duration::from_secs(3600),
    );
    // The check at start has run before the group exists.
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let epoch = heartbeat(&mut c, 0);
    assert_eq!(commit_as(&mut c, ("g2", "m1", epoch), "t", &[0], 5), [0]);
    std::thread::sleep(Duration::from_millis(2500));
    heartbeat(&mut c, -1);
    broker.shutdown(Duration::from_secs(5));
    // 5 s after the commit, 2.5 s after the member left: the start's
    // check must keep them (Kafka: until 4 s after the member left).
    std::thread::sleep(
        (started + Duration::from_secs(5)).saturating_duration_since(std::time::Instant::now()),
    );
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    // The start's check has run by 5.5 s; Kafka keeps them until 6.5 s.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        committed_by(&mut c, "g2", "t"),
        5,
        "aged from its commit, not from when its member left"
    );
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}
