//! Consumer groups of the consumer group protocol (KIP-848) in a running
//! broker, over raw requests: a member's epoch guards its offset commits
//! and fetches (OffsetCommit and OffsetFetch v9), a classic member with a
//! subscription that does not parse cannot join it, and the group is listed,
//! described and kept from deletion as Kafka does, and it is kept across a
//! restart, a hand-over in progress included; a static classic member of
//! it takes its place back under a new id and fences the old one, and a
//! dynamic one is given its id first (KIP-394). librdkafka's members
//! (joins, hand-overs, a kill, a broker restart) are in `clients.rs`.

mod common;

use common::{create_topic, Client};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn join(c: &mut Client, member: &str) -> ConsumerGroupHeartbeatResponse {
    let r = common::groups::consumer_join("g", member);
    c.call(ApiKey::ConsumerGroupHeartbeat, 1, &r)
}

fn commit(c: &mut Client, version: i16, member: &str, epoch: i32) -> i16 {
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.committed_offset = 5;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = common::topic_name("t");
    t.partitions.push(p);
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s("g"));
    r.member_id = s(member);
    r.generation_id_or_member_epoch = epoch;
    r.topics.push(t);
    let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, version, &r);
    resp.topics[0].partitions[0].error_code
}

fn fetch(c: &mut Client, member: &str, epoch: i32) -> (i16, Vec<i64>) {
    let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
    g.group_id = GroupId(s("g"));
    g.member_id = Some(s(member));
    g.member_epoch = epoch;
    g.topics = None; // all of them
    let mut r = OffsetFetchRequest::default();
    r.groups.push(g);
    let resp: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 9, &r);
    let g = &resp.groups[0];
    let offsets = g
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.committed_offset))
        .collect();
    (g.error_code, offsets)
}

#[test]
fn a_members_epoch_guards_its_commits_and_the_group_is_listed_described_and_kept() {
    let config = common::config("consumer-groups");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "t", 2);

    let joined = join(&mut c, "m1");
    assert_eq!(
        (joined.error_code, joined.member_epoch),
        (0, 1),
        "{joined:?}"
    );
    assert_eq!(joined.heartbeat_interval_ms, 5000);
    let given = &joined.assignment.as_ref().unwrap().topic_partitions;
    assert_eq!(given[0].partitions, [0, 1]);

    // Commits name the member's current epoch; OffsetCommit v8 has none.
    assert_eq!(commit(&mut c, 9, "m1", 1), 0);
    assert_eq!(commit(&mut c, 9, "m1", 0), 113, "STALE_MEMBER_EPOCH");
    assert_eq!(commit(&mut c, 9, "nobody", 1), 25, "UNKNOWN_MEMBER_ID");
    assert_eq!(commit(&mut c, 8, "m1", 1), 35, "UNSUPPORTED_VERSION");
    assert_eq!(fetch(&mut c, "m1", 1), (0, vec![5]));
    assert_eq!(fetch(&mut c, "m1", 7).0, 113);
    assert_eq!(fetch(&mut c, "nobody", 1).0, 25);

    // A classic member whose subscription does not parse cannot join a
    // consumer group (one that is a consumer's can: `clients.rs`).
    let mut j = JoinGroupRequest::default();
    j.group_id = GroupId(s("g"));
    j.session_timeout_ms = 10_000;
    j.rebalance_timeout_ms = 10_000;
    j.protocol_type = s("consumer");
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = s("range");
    j.protocols.push(p);
    let resp: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &j);
    assert_eq!(resp.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");

    // Listed as a consumer group (and not among the classic ones).
    let mut l = ListGroupsRequest::default();
    let all: ListGroupsResponse = c.call(ApiKey::ListGroups, 5, &l);
    let g = all
        .groups
        .iter()
        .find(|g| g.group_id.0.as_str() == "g")
        .unwrap();
    assert_eq!(
        (g.group_type.as_str(), g.group_state.as_str()),
        ("consumer", "Stable")
    );
    l.types_filter = vec![s("classic")];
    let classic: ListGroupsResponse = c.call(ApiKey::ListGroups, 5, &l);
    assert!(classic.groups.iter().all(|g| g.group_id.0.as_str() != "g"));
    // DescribeGroups knows only classic groups: Dead, as Kafka answers.
    let mut d = DescribeGroupsRequest::default();
    d.groups.push(GroupId(s("g")));
    let described: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, 5, &d);
    assert_eq!(described.groups[0].group_state.as_str(), "Dead");
    // From v6, GROUP_ID_NOT_FOUND with Kafka's message.
    let described: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, 6, &d);
    let g = &described.groups[0];
    assert_eq!(g.error_code, 69, "GROUP_ID_NOT_FOUND");
    assert_eq!(
        g.error_message.as_deref(),
        Some("Group g is not a classic group.")
    );
    // ConsumerGroupDescribe describes it.
    let mut cd = ConsumerGroupDescribeRequest::default();
    cd.group_ids.push(GroupId(s("g")));
    let described: ConsumerGroupDescribeResponse = c.call(ApiKey::ConsumerGroupDescribe, 1, &cd);
    let g = &described.groups[0];
    assert_eq!(
        (g.error_code, g.group_epoch, g.assignor_name.as_str()),
        (0, 1, "uniform")
    );
    assert_eq!(g.members[0].member_id.as_str(), "m1");

    // Not deleted while it has a member.
    let mut del = DeleteGroupsRequest::default();
    del.groups_names.push(GroupId(s("g")));
    let resp: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &del);
    assert_eq!(resp.results[0].error_code, 68, "NON_EMPTY_GROUP");

    // The member leaves: the group is empty, keeps its offsets, and goes.
    let mut leave = ConsumerGroupHeartbeatRequest::default();
    leave.group_id = GroupId(s("g"));
    leave.member_id = s("m1");
    leave.member_epoch = -1;
    leave.rebalance_timeout_ms = -1;
    let left: ConsumerGroupHeartbeatResponse = c.call(ApiKey::ConsumerGroupHeartbeat, 1, &leave);
    assert_eq!((left.error_code, left.member_epoch), (0, -1));
    let resp: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &del);
    assert_eq!(resp.results[0].error_code, 0);
    let described: ConsumerGroupDescribeResponse = c.call(ApiKey::ConsumerGroupDescribe, 1, &cd);
    assert_eq!(described.groups[0].error_code, 69, "GROUP_ID_NOT_FOUND");
    broker.shutdown(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

fn beat(
    c: &mut Client,
    member: &str,
    epoch: i32,
    owned: Option<Vec<i32>>,
    topic: uuid::Uuid,
) -> ConsumerGroupHeartbeatResponse {
    let mut r = ConsumerGroupHeartbeatRequest::default();
    r.group_id = GroupId(s("g"));
    r.member_id = s(member);
    r.member_epoch = epoch;
    r.rebalance_timeout_ms = -1;
    r.topic_partitions = owned.map(|partitions| {
        let mut tp = consumer_group_heartbeat_request::TopicPartitions::default();
        tp.topic_id = topic;
        tp.partitions = partitions;
        vec![tp]
    });
    c.call(ApiKey::ConsumerGroupHeartbeat, 1, &r)
}

#[test]
fn a_consumer_group_is_kept_across_a_restart_mid_hand_over() {
    let config = common::config("consumer-groups-restart");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "t", 2);
    let first = join(&mut c, "m1");
    let topic = first.assignment.as_ref().unwrap().topic_partitions[0].topic_id;
    // m2 joins: m1 must give one partition up, and has not yet.
    let second = join(&mut c, "m2");
    assert_eq!(second.member_epoch, 2);
    let told = beat(&mut c, "m1", 1, None, topic);
    let kept = told.assignment.unwrap().topic_partitions[0]
        .partitions
        .clone();
    assert_eq!((told.member_epoch, kept.len()), (1, 1));
    broker.shutdown(std::time::Duration::from_secs(5));

    // After the restart both are still members at their epochs, m1 still
    // giving its partition up: m2 cannot have it until m1 says it has.
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    let waiting = beat(&mut c, "m2", 2, None, topic);
    assert_eq!(
        (waiting.error_code, waiting.member_epoch),
        (0, 2),
        "{waiting:?}"
    );
    let given_up = beat(&mut c, "m1", 1, Some(kept.clone()), topic);
    assert_eq!((given_up.error_code, given_up.member_epoch), (0, 2));
    let got = beat(&mut c, "m2", 2, None, topic);
    let got = got.assignment.unwrap().topic_partitions[0]
        .partitions
        .clone();
    assert_eq!(got.len(), 1);
    assert_ne!(got, kept);
    let mut cd = ConsumerGroupDescribeRequest::default();
    cd.group_ids.push(GroupId(s("g")));
    let described: ConsumerGroupDescribeResponse = c.call(ApiKey::ConsumerGroupDescribe, 1, &cd);
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    broker.shutdown(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

fn classic_join(member: &str, instance: Option<&str>) -> JoinGroupRequest {
    common::groups::classic_join("g", member, instance)
}

fn classic_heartbeat(c: &mut Client, member: &str, instance: Option<&str>, generation: i32) -> i16 {
    common::groups::heartbeat(c, "g", (member, instance), generation)
}

#[test]
fn a_classic_static_member_of_a_consumer_group_takes_its_place_back_and_fences_its_old_id() {
    let config = common::config("consumer-groups-classic-static");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "t", 2);
    assert_eq!(join(&mut c, "m1").error_code, 0);
    let first: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &classic_join("", Some("pod-c")));
    assert_eq!(first.error_code, 0);
    let (old_id, generation) = (first.member_id.to_string(), first.generation_id);
    // Its client restarts: the same place (epoch) under a new id.
    let back: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &classic_join("", Some("pod-c")));
    assert_eq!(back.error_code, 0);
    assert_ne!(back.member_id.as_str(), old_id);
    assert_eq!(back.generation_id, generation);
    // The old id is fenced on every request naming the instance id.
    assert_eq!(
        classic_heartbeat(&mut c, &old_id, Some("pod-c"), generation),
        82
    );
    assert_eq!(classic_heartbeat(&mut c, &old_id, None, generation), 25);
    let again: JoinGroupResponse =
        c.call(ApiKey::JoinGroup, 5, &classic_join(&old_id, Some("pod-c")));
    assert_eq!(again.error_code, 82, "FENCED_INSTANCE_ID");
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(s("g"));
    sync.member_id = s(&old_id);
    sync.group_instance_id = Some(s("pod-c"));
    sync.generation_id = generation;
    let synced: SyncGroupResponse = c.call(ApiKey::SyncGroup, 3, &sync);
    assert_eq!(synced.error_code, 82);
    sync.member_id = back.member_id.clone();
    let synced: SyncGroupResponse = c.call(ApiKey::SyncGroup, 3, &sync);
    assert_eq!(synced.error_code, 0);
    let beat_back = classic_heartbeat(&mut c, &back.member_id, Some("pod-c"), generation);
    assert!(beat_back == 0 || beat_back == 27, "{beat_back}");

    // An instance id a live consumer-protocol member holds is not taken.
    let mut r = ConsumerGroupHeartbeatRequest::default();
    r.group_id = GroupId(s("g"));
    r.member_id = s("m2");
    r.instance_id = Some(s("pod-d"));
    r.rebalance_timeout_ms = 30_000;
    r.subscribed_topic_names = Some(vec![common::topic_name("t")]);
    r.topic_partitions = Some(Vec::new());
    let m2: ConsumerGroupHeartbeatResponse = c.call(ApiKey::ConsumerGroupHeartbeat, 1, &r);
    assert_eq!(m2.error_code, 0);
    let taken: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &classic_join("", Some("pod-d")));
    assert_eq!(taken.error_code, 111, "UNRELEASED_INSTANCE_ID");

    // A dynamic classic member is given its id first (KIP-394), then
    // joins with it.
    let asked: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &classic_join("", None));
    assert_eq!(asked.error_code, 79, "MEMBER_ID_REQUIRED");
    let dynamic: JoinGroupResponse =
        c.call(ApiKey::JoinGroup, 5, &classic_join(&asked.member_id, None));
    assert_eq!(dynamic.error_code, 0);
    assert_eq!(dynamic.member_id, asked.member_id);

    // An administrator removes pod-c by its instance id.
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(s("g"));
    let mut who = leave_group_request::MemberIdentity::default();
    who.group_instance_id = Some(s("pod-c"));
    leave.members.push(who);
    let left: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, 3, &leave);
    assert_eq!(left.members[0].error_code, 0);
    let mut cd = ConsumerGroupDescribeRequest::default();
    cd.group_ids.push(GroupId(s("g")));
    let described: ConsumerGroupDescribeResponse = c.call(ApiKey::ConsumerGroupDescribe, 1, &cd);
    let mut members: Vec<_> = described.groups[0]
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    members.sort();
    let mut expected = vec![
        "m1".to_owned(),
        "m2".to_owned(),
        dynamic.member_id.to_string(),
    ];
    expected.sort();
    assert_eq!(members, expected);
    broker.shutdown(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}
