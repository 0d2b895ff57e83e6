//! Share groups (KIP-932) in a running broker, over raw requests: only a
//! member may fetch; share sessions follow their epochs; a member cannot
//! acknowledge another's records, and a refused acknowledgement applies
//! nothing; a released record goes to the next member with its delivery
//! counted; the group is described and listed, kept from deletion while
//! it has members, and its start offsets are described, altered and
//! deleted, the coordinator checking the group first as Kafka's does;
//! its id is refused to a classic group; its membership is kept across
//! a restart. librdkafka's share consumers are in `clients.rs`.

mod common;

use bytes::Bytes;
use common::Client;
use gyre_broker::log::batch;
use gyre_broker::share::StartAt;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// A broker whose share groups start at the log's start.
fn broker(tag: &str) -> gyre_broker::Broker {
    let mut config = common::config(tag);
    config.share_groups.start_at = StartAt::Earliest;
    common::start(&config)
}

fn produce(c: &mut Client, name: &str, n: usize) {
    produce_at(c, name, n, 1_700_000_000_000);
}

/// `n` records in one batch, stamped `timestamp` (ms).
fn produce_at(c: &mut Client, name: &str, n: usize, timestamp: i64) {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("v{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    let r = common::produce_request(name, batch::build(0, timestamp, &refs));
    let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &r);
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
}

fn heartbeat(
    c: &mut Client,
    group: &str,
    member: &str,
    epoch: i32,
    topics: Option<&[&str]>,
) -> ShareGroupHeartbeatResponse {
    let mut r = ShareGroupHeartbeatRequest::default();
    r.group_id = GroupId(s(group));
    r.member_id = s(member);
    r.member_epoch = epoch;
    r.subscribed_topic_names = topics.map(|t| t.iter().map(|t| common::topic_name(t)).collect());
    c.call(ApiKey::ShareGroupHeartbeat, 1, &r)
}

fn join(c: &mut Client, member: &str, topics: &[&str]) -> ShareGroupHeartbeatResponse {
    heartbeat(c, "g", member, 0, Some(topics))
}

fn leave(c: &mut Client, member: &str) -> ShareGroupHeartbeatResponse {
    heartbeat(c, "g", member, -1, None)
}

/// Acknowledgement batches: (first, last, type).
type Acks<'a> = &'a [(i64, i64, i8)];

fn share_fetch(
    c: &mut Client,
    member: &str,
    epoch: i32,
    topic_id: Uuid,
    acks: Acks<'_>,
    max_records: i32,
) -> ShareFetchResponse {
    let mut p = share_fetch_request::FetchPartition::default();
    p.partition_index = 0;
    for &(first, last, kind) in acks {
        let mut b = share_fetch_request::AcknowledgementBatch::default();
        b.first_offset = first;
        b.last_offset = last;
        b.acknowledge_types = vec![kind];
        p.acknowledgement_batches.push(b);
    }
    let mut t = share_fetch_request::FetchTopic::default();
    t.topic_id = topic_id;
    t.partitions.push(p);
    let mut r = ShareFetchRequest::default();
    r.group_id = Some(GroupId(s("g")));
    r.member_id = Some(s(member));
    r.share_session_epoch = epoch;
    r.max_wait_ms = 0;
    r.max_bytes = 1 << 20;
    r.max_records = max_records;
    r.batch_size = max_records;
    r.topics.push(t);
    c.call(ApiKey::ShareFetch, 1, &r)
}

fn acknowledge(
    c: &mut Client,
    member: &str,
    epoch: i32,
    topic_id: Uuid,
    acks: Acks<'_>,
) -> ShareAcknowledgeResponse {
    let mut p = share_acknowledge_request::AcknowledgePartition::default();
    for &(first, last, kind) in acks {
        let mut b = share_acknowledge_request::AcknowledgementBatch::default();
        b.first_offset = first;
        b.last_offset = last;
        b.acknowledge_types = vec![kind];
        p.acknowledgement_batches.push(b);
    }
    let mut t = share_acknowledge_request::AcknowledgeTopic::default();
    t.topic_id = topic_id;
    t.partitions.push(p);
    let mut r = ShareAcknowledgeRequest::default();
    r.group_id = Some(GroupId(s("g")));
    r.member_id = Some(s(member));
    r.share_session_epoch = epoch;
    r.topics.push(t);
    c.call(ApiKey::ShareAcknowledge, 1, &r)
}

/// The acquired runs of a fetch's one partition: (first, last, count).
fn acquired(r: &ShareFetchResponse) -> Vec<(i64, i64, i16)> {
    r.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .flat_map(|p| &p.acquired_records)
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect()
}

fn records_of(r: &ShareFetchResponse) -> Option<Bytes> {
    r.responses[0].partitions[0].records.clone()
}

fn ack_error(r: &ShareAcknowledgeResponse) -> i16 {
    r.responses[0].partitions[0].error_code
}

const ACCEPT: i8 = 1;
const RELEASE: i8 = 2;

#[test]
fn members_share_records_through_sessions_and_acknowledgements() {
    let b = broker("share-protocol");
    let mut c = Client::connect(b.local_addr());
    let id = common::create_topic(&mut c, "t", 1);
    produce(&mut c, "t", 10);

    // Not a member: refused.
    let r = share_fetch(&mut c, "a", 0, id, &[], 100);
    assert_eq!(r.error_code, 25, "UNKNOWN_MEMBER_ID");

    let a = join(&mut c, "a", &["t"]);
    assert_eq!((a.error_code, a.member_epoch), (0, 1));
    let assigned = a.assignment.expect("an assignment");
    assert_eq!(assigned.topic_partitions[0].topic_id, id);
    join(&mut c, "b", &["t"]);

    // a takes 0..=3; its records come with their batch.
    let r = share_fetch(&mut c, "a", 0, id, &[], 4);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.acquisition_lock_timeout_ms, 30_000);
    assert_eq!(acquired(&r), [(0, 3, 1)]);
    assert!(records_of(&r).is_some_and(|b| !b.is_empty()));
    // b takes the rest: never what a holds.
    let r = share_fetch(&mut c, "b", 0, id, &[], 100);
    assert_eq!(acquired(&r), [(4, 9, 1)]);

    // Session epochs: the next is 1; another is refused; a member with no
    // session cannot go on one.
    let r = share_fetch(&mut c, "a", 5, id, &[], 100);
    assert_eq!(r.error_code, 123, "INVALID_SHARE_SESSION_EPOCH");
    let r = acknowledge(&mut c, "a", 0, id, &[(0, 0, ACCEPT)]);
    assert_eq!(
        r.error_code, 123,
        "a ShareAcknowledge cannot open a session"
    );

    // b cannot acknowledge a's records; nothing of its batch applies.
    let r = acknowledge(&mut c, "b", 1, id, &[(4, 4, ACCEPT), (0, 0, ACCEPT)]);
    assert_eq!(ack_error(&r), 121, "INVALID_RECORD_STATE");
    // a accepts 0..=1 and releases 2..=3 with its next fetch, which
    // finds nothing more to take (b holds the rest).
    let r = share_fetch(&mut c, "a", 1, id, &[(0, 1, ACCEPT), (2, 3, RELEASE)], 100);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.responses[0].partitions[0].acknowledge_error_code, 0);
    assert_eq!(acquired(&r), [(2, 3, 2)], "the released records come back");
    // b's acknowledgement, applied whole this time.
    let r = acknowledge(&mut c, "b", 2, id, &[(4, 9, ACCEPT)]);
    assert_eq!(ack_error(&r), 0);

    // The group as described and listed.
    let mut d = ShareGroupDescribeRequest::default();
    d.group_ids.push(GroupId(s("g")));
    let desc: ShareGroupDescribeResponse = c.call(ApiKey::ShareGroupDescribe, 1, &d);
    let g = &desc.groups[0];
    assert_eq!((g.error_code, g.group_state.as_str()), (0, "Stable"));
    assert_eq!(g.members.len(), 2);
    assert_eq!(g.authorized_operations, i32::MIN, "not asked for");
    // Asked for, with the authorizer off: every group operation (READ,
    // DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS).
    let mut asked = d.clone();
    asked.include_authorized_operations = true;
    let desc: ShareGroupDescribeResponse = c.call(ApiKey::ShareGroupDescribe, 1, &asked);
    let all = 1 << 3 | 1 << 6 | 1 << 8 | 1 << 10 | 1 << 11;
    assert_eq!(desc.groups[0].authorized_operations, all);
    let list: ListGroupsResponse = c.call(ApiKey::ListGroups, 5, &ListGroupsRequest::default());
    let listed = list
        .groups
        .iter()
        .find(|l| l.group_id.0.as_str() == "g")
        .unwrap();
    assert_eq!(listed.group_type.as_str(), "share");

    // DescribeGroups v6 says it is not a classic group, as Kafka's does.
    let mut dg = DescribeGroupsRequest::default();
    dg.groups.push(GroupId(s("g")));
    let dgr: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, 6, &dg);
    let described = &dgr.groups[0];
    assert_eq!(described.error_code, 69, "GROUP_ID_NOT_FOUND");
    assert_eq!(
        described.error_message.as_ref().map(|m| m.as_str()),
        Some("Group g is not a classic group.")
    );

    // A classic member cannot take the id.
    let join_classic = common::groups::classic_join("g", "", None);
    let jr: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &join_classic);
    assert_eq!(jr.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");

    // Start offsets: 2 (2 and 3 are still a's).
    let mut g =
        describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default();
    g.group_id = GroupId(s("g"));
    g.topics = None; // every partition it has state for
    let mut r = DescribeShareGroupOffsetsRequest::default();
    r.groups.push(g);
    let offsets: DescribeShareGroupOffsetsResponse =
        c.call(ApiKey::DescribeShareGroupOffsets, 0, &r);
    let t = &offsets.groups[0].topics[0];
    assert_eq!((t.topic_name.0.as_str(), t.topic_id), ("t", id));
    assert_eq!(t.partitions[0].start_offset, 2);

    // Not while it has members: deletion and altering.
    let mut del = DeleteGroupsRequest::default();
    del.groups_names.push(GroupId(s("g")));
    let dr: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &del);
    assert_eq!(dr.results[0].error_code, 68, "NON_EMPTY_GROUP");
    let mut p =
        alter_share_group_offsets_request::AlterShareGroupOffsetsRequestPartition::default();
    p.start_offset = 8;
    let mut at = alter_share_group_offsets_request::AlterShareGroupOffsetsRequestTopic::default();
    at.topic_name = common::topic_name("t");
    at.partitions.push(p);
    let mut alter = AlterShareGroupOffsetsRequest::default();
    alter.group_id = GroupId(s("g"));
    alter.topics.push(at);
    let ar: AlterShareGroupOffsetsResponse = c.call(ApiKey::AlterShareGroupOffsets, 0, &alter);
    assert_eq!(ar.error_code, 68, "NON_EMPTY_GROUP");

    // Once empty: the start moves to 8, and a new member is given 8 and 9.
    assert_eq!(leave(&mut c, "a").member_epoch, -1);
    leave(&mut c, "b");
    let ar: AlterShareGroupOffsetsResponse = c.call(ApiKey::AlterShareGroupOffsets, 0, &alter);
    assert_eq!(ar.error_code, 0);
    assert_eq!(ar.responses[0].partitions[0].error_code, 0);
    join(&mut c, "c", &["t"]);
    let r = share_fetch(&mut c, "c", 0, id, &[], 100);
    assert_eq!(acquired(&r), [(8, 9, 1)]);
    leave(&mut c, "c");

    // Deleting its offsets starts it over by share.auto.offset.reset.
    let mut dt = delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic::default();
    dt.topic_name = common::topic_name("t");
    let mut delete = DeleteShareGroupOffsetsRequest::default();
    delete.group_id = GroupId(s("g"));
    delete.topics.push(dt);
    let dr: DeleteShareGroupOffsetsResponse = c.call(ApiKey::DeleteShareGroupOffsets, 0, &delete);
    assert_eq!((dr.error_code, dr.responses[0].error_code), (0, 0));
    join(&mut c, "d", &["t"]);
    let r = share_fetch(&mut c, "d", 0, id, &[], 100);
    assert_eq!(acquired(&r), [(0, 9, 1)]);
    leave(&mut c, "d");

    // The group, empty, can be deleted.
    let dr: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &del);
    assert_eq!(dr.results[0].error_code, 0);
    let desc: ShareGroupDescribeResponse = c.call(ApiKey::ShareGroupDescribe, 1, &d);
    assert_eq!(desc.groups[0].error_code, 69, "GROUP_ID_NOT_FOUND");
    drop(b);
    let _ = std::fs::remove_dir_all(common::data_dir("share-protocol"));
}

#[test]
fn a_share_consumer_is_held_to_its_fetch_quota() {
    // Before: ShareFetch responses were not counted, so a client held to
    // a fetch byte rate could read past it through a share group.
    let b = broker("share-quota");
    let mut c = Client::connect(b.local_addr());
    let id = common::create_topic(&mut c, "q", 1);
    let value = vec![b'v'; 100_000];
    for _ in 0..12 {
        let records = batch::build(0, 1_700_000_000_000, &[&value]);
        let _: ProduceResponse = c.call(ApiKey::Produce, 9, &common::produce_request("q", records));
    }
    // 95 kB/s: ten seconds' worth is a little under ten records.
    let mut op = alter_client_quotas_request::OpData::default();
    op.key = s("consumer_byte_rate");
    op.value = 95_000.0;
    let mut entity = alter_client_quotas_request::EntityData::default();
    entity.entity_type = s("client-id");
    entity.entity_name = Some(s("gyre-test"));
    let mut e = alter_client_quotas_request::EntryData::default();
    e.entity.push(entity);
    e.ops.push(op);
    let mut q = AlterClientQuotasRequest::default();
    q.entries.push(e);
    let qr: AlterClientQuotasResponse = c.call(ApiKey::AlterClientQuotas, 1, &q);
    assert_eq!(qr.entries[0].error_code, 0);
    join(&mut c, "m", &["q"]);
    let mut throttled = None;
    let mut acks: Vec<(i64, i64, i8)> = Vec::new();
    for epoch in 0..12 {
        let r = share_fetch(&mut c, "m", epoch, id, &acks, 1);
        let got = acquired(&r);
        assert_eq!(got.len(), 1, "fetch {epoch}: {got:?}");
        acks = vec![(got[0].0, got[0].1, ACCEPT)];
        if r.throttle_time_ms > 0 {
            throttled = Some((epoch, r.throttle_time_ms));
            break;
        }
    }
    let (at, ms) = throttled.expect("throttled within twelve 100 kB responses");
    assert!((7..=10).contains(&at), "throttled at response {at}");
    assert!(ms > 0 && ms <= 2_000, "throttled {ms} ms");
    drop(b);
    let _ = std::fs::remove_dir_all(common::data_dir("share-quota"));
}

/// Membership is kept across a restart, as Kafka keeps it in
/// `__consumer_offsets`: a member heartbeats on at its epoch with its
/// partitions (only its share session is new), an empty group is still
/// listed, and its id is still refused to a classic member.
#[test]
fn membership_is_kept_across_a_restart() {
    let tag = "share-restart";
    let mut config = common::config(tag);
    config.share_groups.start_at = StartAt::Earliest;
    let b = common::start(&config);
    let mut c = Client::connect(b.local_addr());
    let id = common::create_topic(&mut c, "t", 1);
    produce(&mut c, "t", 10);
    join(&mut c, "a", &["t"]);
    join(&mut c, "b", &["t"]);
    let a = heartbeat(&mut c, "g", "a", 1, None);
    assert_eq!(a.member_epoch, 2);
    // a holds 0..=4 at the stop.
    assert_eq!(
        acquired(&share_fetch(&mut c, "a", 0, id, &[], 5)),
        [(0, 4, 1)]
    );
    heartbeat(&mut c, "idle", "x", 0, Some(&["t"]));
    heartbeat(&mut c, "idle", "x", -1, None);
    drop(c);
    b.shutdown(std::time::Duration::from_secs(5));

    let b = common::start(&config);
    let mut c = Client::connect(b.local_addr());
    let a = heartbeat(&mut c, "g", "a", 2, None);
    assert_eq!(
        (a.error_code, a.member_epoch),
        (0, 2),
        "a goes on at its epoch"
    );
    assert!(a.assignment.is_none(), "nothing moved");
    let r = share_fetch(&mut c, "a", 1, id, &[], 100);
    assert_eq!(
        r.error_code, 122,
        "SHARE_SESSION_NOT_FOUND: sessions are new"
    );
    let r = share_fetch(&mut c, "a", 0, id, &[], 100);
    // What a held came back (acquisitions are not written, so their
    // deliveries are not counted again, as in Kafka).
    assert_eq!(
        acquired(&r),
        [(0, 9, 1)],
        "a is still a member to the writer"
    );
    let mut d = ShareGroupDescribeRequest::default();
    d.group_ids.push(GroupId(s("g")));
    let desc: ShareGroupDescribeResponse = c.call(ApiKey::ShareGroupDescribe, 1, &d);
    let g = &desc.groups[0];
    assert_eq!((g.group_state.as_str(), g.group_epoch), ("Stable", 2));
    let members: Vec<&str> = g.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(members, ["a", "b"]);
    let list: ListGroupsResponse = c.call(ApiKey::ListGroups, 5, &ListGroupsRequest::default());
    let idle = list.groups.iter().find(|l| l.group_id.0.as_str() == "idle");
    let idle = idle.expect("the empty share group is listed");
    assert_eq!(
        (idle.group_type.as_str(), idle.group_state.as_str()),
        ("share", "Empty")
    );
    let join_classic = common::groups::classic_join("idle", "", None);
    let jr: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &join_classic);
    assert_eq!(jr.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");
    // Deleted, it stays deleted.
    let mut del = DeleteGroupsRequest::default();
    del.groups_names.push(GroupId(s("idle")));
    let dr: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &del);
    assert_eq!(dr.results[0].error_code, 0);
    drop(c);
    b.shutdown(std::time::Duration::from_secs(5));
    let b = common::start(&config);
    let mut c = Client::connect(b.local_addr());
    let list: ListGroupsResponse = c.call(ApiKey::ListGroups, 5, &ListGroupsRequest::default());
    let ids: Vec<&str> = list.groups.iter().map(|l| l.group_id.0.as_str()).collect();
    assert_eq!(ids, ["g"]);
    drop(c);
    drop(b);
    let _ = std::fs::remove_dir_all(common::data_dir(tag));
}

fn alter_offsets(
    c: &mut Client,
    group: &str,
    topic: &str,
    start: i64,
) -> AlterShareGroupOffsetsResponse {
    let mut p =
        alter_share_group_offsets_request::AlterShareGroupOffsetsRequestPartition::default();
    p.start_offset = start;
    let mut t = alter_share_group_offsets_request::AlterShareGroupOffsetsRequestTopic::default();
    t.topic_name = common::topic_name(topic);
    t.partitions.push(p);
    let mut r = AlterShareGroupOffsetsRequest::default();
    r.group_id = GroupId(s(group));
    r.topics.push(t);
    c.call(ApiKey::AlterShareGroupOffsets, 0, &r)
}

fn delete_offsets(c: &mut Client, group: &str, topic: &str) -> DeleteShareGroupOffsetsResponse {
    let mut t = delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic::default();
    t.topic_name = common::topic_name(topic);
    let mut r = DeleteShareGroupOffsetsRequest::default();
    r.group_id = GroupId(s(group));
    r.topics.push(t);
    c.call(ApiKey::DeleteShareGroupOffsets, 0, &r)
}

/// DescribeShareGroupOffsets of `groups`, each of partition 0 of
/// `topic`, or of every partition it has state for.
fn describe_offsets(
    c: &mut Client,
    groups: &[&str],
    topic: Option<&str>,
) -> DescribeShareGroupOffsetsResponse {
    let mut r = DescribeShareGroupOffsetsRequest::default();
    for group in groups {
        let mut g =
            describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default();
        g.group_id = GroupId(s(group));
        g.topics = topic.map(|name| {
            let mut t =
                describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestTopic::default();
            t.topic_name = common::topic_name(name);
            t.partitions = vec![0];
            vec![t]
        });
        r.groups.push(g);
    }
    c.call(ApiKey::DescribeShareGroupOffsets, 0, &r)
}

fn error_of(code: i16, message: &Option<StrBytes>) -> (i16, &str) {
    (code, message.as_ref().map_or("", |m| m.as_str()))
}

/// The offsets APIs check the group on the coordinator first, as Kafka
/// 4.1's do: a classic group's id is not a share group's; a share group
/// with members is not altered or deleted from; a group that does not
/// exist is described as holding no state, made by an alteration and
/// not found by a deletion.
#[test]
fn the_offsets_apis_check_the_group_as_kafka_does() {
    let b = broker("share-offsets-groups");
    let mut c = Client::connect(b.local_addr());
    common::create_topic(&mut c, "t", 1);
    produce(&mut c, "t", 10);

    // A classic group (offsets committed outside any generation).
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(s("classic"));
    commit.generation_id_or_member_epoch = -1;
    let mut ct = offset_commit_request::OffsetCommitRequestTopic::default();
    ct.name = common::topic_name("t");
    let mut cp = offset_commit_request::OffsetCommitRequestPartition::default();
    cp.committed_offset = 1;
    ct.partitions.push(cp);
    commit.topics.push(ct);
    let cr: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 2, &commit);
    assert_eq!(cr.topics[0].partitions[0].error_code, 0);
    // DescribeGroups says what the asker may do to it when asked (every
    // group operation with the authorizer off).
    let mut dg = DescribeGroupsRequest::default();
    dg.groups.push(GroupId(s("classic")));
    dg.include_authorized_operations = true;
    let dgr: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, 5, &dg);
    let classic = &dgr.groups[0];
    assert_eq!(classic.group_state.as_str(), "Empty");
    let all = 1 << 3 | 1 << 6 | 1 << 8 | 1 << 10 | 1 << 11;
    assert_eq!(classic.authorized_operations, all);
    let not_share = (69, "Group classic is not a share group.");
    let a = alter_offsets(&mut c, "classic", "t", 0);
    assert_eq!(error_of(a.error_code, &a.error_message), not_share);
    assert!(a.responses.is_empty());
    let d = delete_offsets(&mut c, "classic", "t");
    assert_eq!(error_of(d.error_code, &d.error_message), not_share);
    let described = describe_offsets(&mut c, &["classic", "nobody"], Some("t"));
    let g = &described.groups[0];
    assert_eq!(error_of(g.error_code, &g.error_message), not_share);
    let mut sd = ShareGroupDescribeRequest::default();
    sd.group_ids.push(GroupId(s("classic")));
    let sdr: ShareGroupDescribeResponse = c.call(ApiKey::ShareGroupDescribe, 1, &sd);
    let g = &sdr.groups[0];
    assert_eq!(error_of(g.error_code, &g.error_message), not_share);

    // A group nobody made: described as holding no state, no error.
    let g = &described.groups[1];
    assert_eq!(g.error_code, 0);
    let p = &g.topics[0].partitions[0];
    assert_eq!((p.error_code, p.start_offset), (0, -1));
    let all = describe_offsets(&mut c, &["nobody"], None);
    assert_eq!(all.groups[0].error_code, 0);
    assert!(all.groups[0].topics.is_empty());
    // Not found by a deletion, and not made by one.
    let d = delete_offsets(&mut c, "nobody", "t");
    assert_eq!(
        error_of(d.error_code, &d.error_message),
        (69, "Group nobody not found.")
    );
    assert!(d.responses.is_empty());
    // Made by an alteration: listed as an empty share group, its start
    // where it was set.
    let a = alter_offsets(&mut c, "made", "t", 4);
    assert_eq!(
        (a.error_code, a.responses[0].partitions[0].error_code),
        (0, 0)
    );
    let list: ListGroupsResponse = c.call(ApiKey::ListGroups, 5, &ListGroupsRequest::default());
    let made = list.groups.iter().find(|l| l.group_id.0.as_str() == "made");
    let made = made.expect("the share group the alteration made");
    assert_eq!(
        (made.group_type.as_str(), made.group_state.as_str()),
        ("share", "Empty")
    );
    let all = describe_offsets(&mut c, &["made"], None);
    assert_eq!(all.groups[0].topics[0].partitions[0].start_offset, 4);
    let d = delete_offsets(&mut c, "made", "t");
    assert_eq!((d.error_code, d.responses[0].error_code), (0, 0));

    // A share group with a member: neither altered nor deleted from.
    join(&mut c, "m", &["t"]);
    let busy = (68, "The group is not empty.");
    let a = alter_offsets(&mut c, "g", "t", 0);
    assert_eq!(error_of(a.error_code, &a.error_message), busy);
    assert!(a.responses.is_empty());
    let d = delete_offsets(&mut c, "g", "t");
    assert_eq!(error_of(d.error_code, &d.error_message), busy);
    drop(b);
    let _ = std::fs::remove_dir_all(common::data_dir("share-offsets-groups"));
}

/// A group set to start `by_duration:PT1H` starts at the first record
/// written in the last hour, passing over older ones (Kafka 4.1's
/// `share.auto.offset.reset=by_duration:<duration>`).
#[test]
fn a_group_started_by_duration_passes_over_older_records() {
    let b = broker("share-by-duration");
    let mut c = Client::connect(b.local_addr());
    let id = common::create_topic(&mut c, "t", 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (age_ms, n) in [(3 * 3_600_000, 4), (2 * 3_600_000, 3), (60_000, 2)] {
        produce_at(&mut c, "t", n, now - age_ms);
    }
    let (code, message) = common::groups::set_configs(
        &mut c,
        "g",
        &[("share.auto.offset.reset", "by_duration:PT1H")],
    );
    assert_eq!(code, 0, "{message}");
    let (code, message) = common::groups::set_configs(
        &mut c,
        "g",
        &[("share.auto.offset.reset", "by_duration:1H")],
    );
    assert_eq!(code, 40, "INVALID_CONFIG: {message}");
    assert!(message.contains("by_duration:PT1H"), "{message}");
    join(&mut c, "a", &["t"]);
    let r = share_fetch(&mut c, "a", 0, id, &[], 100);
    assert_eq!(
        acquired(&r),
        [(7, 8, 1)],
        "only the records of the last hour"
    );
    drop(b);
    let _ = std::fs::remove_dir_all(common::data_dir("share-by-duration"));
}
