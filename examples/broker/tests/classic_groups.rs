//! Classic consumer groups in a running broker, over raw requests: a
//! follower waiting for its assignment is answered when the group
//! rebalances again; a member that never sends its SyncGroup is removed
//! after the rebalance timeout; a member joining again unchanged hears the same
//! generation; a new member is given its id first (KIP-394); static
//! members (KIP-345) rejoin without a rebalance,
//! fence the ids they replaced, stay through a join phase they miss, leave
//! by instance id and are kept across a restart. librdkafka's static
//! members are in `clients.rs` (`static_members.py`).

mod common;

use common::{create_topic, Client};
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::time::{Duration, Instant};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn join_request(member: &str, instance: Option<&str>) -> JoinGroupRequest {
    common::groups::classic_join("g", member, instance)
}

/// Sends a JoinGroup v5 without waiting for its answer; a new dynamic
/// member first asks for its member id (KIP-394).
fn send_join(c: &mut Client, member: &str, instance: Option<&str>) {
    let mut member = member.to_owned();
    if member.is_empty() && instance.is_none() {
        let first: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &join_request("", None));
        assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
        member = first.member_id.to_string();
    }
    c.send(ApiKey::JoinGroup, 5, &join_request(&member, instance));
}

fn receive<R: Decodable>(c: &mut Client, version: i16) -> R {
    let (_, mut body) = c.receive().expect("an answer");
    R::decode(&mut body, version).unwrap()
}

fn sync_request(
    member: &str,
    instance: Option<&str>,
    generation: i32,
    assign: &[(&str, &'static [u8])],
) -> SyncGroupRequest {
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(s("g"));
    r.member_id = s(member);
    r.group_instance_id = instance.map(s);
    r.generation_id = generation;
    for (id, a) in assign {
        let mut x = SyncGroupRequestAssignment::default();
        x.member_id = s(id);
        x.assignment = bytes::Bytes::from_static(a);
        r.assignments.push(x);
    }
    r
}

fn heartbeat(c: &mut Client, member: &str, instance: Option<&str>, generation: i32) -> i16 {
    common::groups::heartbeat(c, "g", (member, instance), generation)
}

fn describe(c: &mut Client) -> DescribedGroupView {
    let mut r = DescribeGroupsRequest::default();
    r.groups.push(GroupId(s("g")));
    let resp: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, 5, &r);
    let g = &resp.groups[0];
    DescribedGroupView {
        state: g.group_state.to_string(),
        members: g
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                    m.member_assignment.to_vec(),
                )
            })
            .collect(),
    }
}

struct DescribedGroupView {
    state: String,
    /// (member id, instance id, assignment)
    members: Vec<(String, Option<String>, Vec<u8>)>,
}

/// A member's connection and its JoinGroup answer.
type Joined = (Client, JoinGroupResponse);

/// Two dynamic members join group `g` (topic `t` created first) on
/// `broker`: (leader, follower), each with its join's answer.
fn two_joined(broker: &gyre_broker::Broker) -> (Joined, Joined) {
    let mut a = Client::connect(broker.local_addr());
    let mut b = Client::connect(broker.local_addr());
    create_topic(&mut a, "t", 2);
    send_join(&mut a, "", None);
    send_join(&mut b, "", None);
    let ja: JoinGroupResponse = receive(&mut a, 5);
    let jb: JoinGroupResponse = receive(&mut b, 5);
    assert_eq!((ja.error_code, jb.error_code), (0, 0));
    if ja.leader == ja.member_id {
        ((a, ja), (b, jb))
    } else {
        ((b, jb), (a, ja))
    }
}

#[test]
fn a_follower_waiting_for_its_assignment_is_told_to_rejoin_when_the_group_rebalances_again() {
    let broker = common::start(&common::config("classic-resync"));
    let (_leader, (mut follower, joined)) = two_joined(&broker);
    let follower = &mut follower;
    let mut c = Client::connect(broker.local_addr());
    // The follower asks for its assignment before the leader has sent
    // any: it waits.
    let sync = sync_request(&joined.member_id, None, joined.generation_id, &[]);
    follower.send(ApiKey::SyncGroup, 3, &sync);
    // (Time for the SyncGroup to reach the coordinator first.)
    std::thread::sleep(Duration::from_millis(200));
    // A third member joins: the group rebalances again, and the waiting
    // follower is told so at once.
    send_join(&mut c, "", None);
    let started = Instant::now();
    let resp: SyncGroupResponse = receive(follower, 3);
    assert_eq!(resp.error_code, 27, "REBALANCE_IN_PROGRESS");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The connection goes on answering.
    assert_eq!(
        heartbeat(follower, &joined.member_id, None, joined.generation_id),
        27
    );
}

/// Heartbeats as `member` of generation `generation` every 200 ms until
/// `until`; the codes heard.
fn heartbeat_until(c: &mut Client, member: &str, generation: i32, until: Instant) -> Vec<i16> {
    let mut heard = Vec::new();
    while Instant::now() < until {
        heard.push(heartbeat(c, member, None, generation));
        std::thread::sleep(Duration::from_millis(200));
    }
    heard
}

#[test]
fn a_member_that_never_sends_its_sync_group_is_removed_after_the_rebalance_timeout() {
    let broker = common::start(&common::config("classic-pending-sync"));
    let ((mut leader, led), (mut follower, followed)) = two_joined(&broker);
    let (leader, follower) = (&mut leader, &mut follower);
    // The follower asks for its assignment; the leader heartbeats but
    // never sends the assignments (a client stuck between its join and
    // its sync).
    let synced_at = Instant::now();
    let sync = sync_request(&followed.member_id, None, followed.generation_id, &[]);
    follower.send(ApiKey::SyncGroup, 3, &sync);
    let heard = heartbeat_until(
        leader,
        &led.member_id,
        led.generation_id,
        synced_at + Duration::from_millis(1_500),
    );
    assert!(heard.iter().all(|&code| code == 0), "{heard:?}");
    // The rebalance timeout (2 s) passes: the leader is removed and the
    // waiting follower told to rejoin, not left waiting for good.
    let resp: SyncGroupResponse = receive(follower, 3);
    assert_eq!(resp.error_code, 27, "REBALANCE_IN_PROGRESS");
    let waited = synced_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1_900) && waited < Duration::from_secs(5),
        "answered after {waited:?}"
    );
    assert_eq!(
        heartbeat(leader, &led.member_id, None, led.generation_id),
        25,
        "UNKNOWN_MEMBER_ID: the leader that never synced is gone"
    );
    // The follower rejoins alone and leads the next generation.
    send_join(follower, &followed.member_id, None);
    let again: JoinGroupResponse = receive(follower, 5);
    assert_eq!(again.error_code, 0);
    assert_eq!(again.leader, again.member_id);
    assert_eq!(again.members.len(), 1);
    let gen2 = again.generation_id;
    let own = sync_request(
        &again.member_id,
        None,
        gen2,
        &[(&followed.member_id, b"p0")],
    );
    let resp: SyncGroupResponse = follower.call(ApiKey::SyncGroup, 3, &own);
    assert_eq!((resp.error_code, &resp.assignment[..]), (0, &b"p0"[..]));

    // Now a new follower joins and never syncs while the leader has: the
    // group is stable, and after the rebalance timeout the follower is
    // removed and the leader told to rejoin.
    let mut c = Client::connect(broker.local_addr());
    send_join(&mut c, "", None);
    // The leader hears of the rebalance and rejoins.
    let heard = heartbeat_until(
        follower,
        &followed.member_id,
        gen2,
        Instant::now() + Duration::from_millis(400),
    );
    assert!(heard.contains(&27), "{heard:?}");
    send_join(follower, &followed.member_id, None);
    let led3: JoinGroupResponse = receive(follower, 5);
    let joined3: JoinGroupResponse = receive(&mut c, 5);
    assert_eq!((led3.error_code, joined3.error_code), (0, 0));
    assert_eq!(led3.leader, led3.member_id);
    let gen3 = led3.generation_id;
    let assign: [(&str, &'static [u8]); 2] = [
        (led3.member_id.as_str(), b"p0"),
        (joined3.member_id.as_str(), b"p1"),
    ];
    let sync = sync_request(&led3.member_id, None, gen3, &assign);
    let resp: SyncGroupResponse = follower.call(ApiKey::SyncGroup, 3, &sync);
    assert_eq!(resp.error_code, 0);
    let stable_at = Instant::now();
    // The new member heartbeats (stable, generation 3) but never syncs.
    let heard_c = heartbeat_until(
        &mut c,
        &joined3.member_id,
        gen3,
        stable_at + Duration::from_millis(1_200),
    );
    assert!(heard_c.iter().all(|&code| code == 0), "{heard_c:?}");
    let heard = heartbeat_until(
        follower,
        &led3.member_id,
        gen3,
        stable_at + Duration::from_millis(3_500),
    );
    assert_eq!(heard.first(), Some(&0), "{heard:?}");
    assert!(
        heard.contains(&27),
        "the leader was not told to rejoin: {heard:?}"
    );
    assert_eq!(
        heartbeat(&mut c, &joined3.member_id, None, gen3),
        25,
        "UNKNOWN_MEMBER_ID: the member that never synced is gone"
    );
}

#[test]
fn a_static_member_rejoins_without_a_rebalance_fences_its_old_id_and_is_kept_across_a_restart() {
    let config = common::config("classic-static");
    let broker = common::start(&config);
    let mut a = Client::connect(broker.local_addr());
    let mut b = Client::connect(broker.local_addr());
    create_topic(&mut a, "t", 2);
    send_join(&mut a, "", Some("pod-a"));
    send_join(&mut b, "", Some("pod-b"));
    let ja: JoinGroupResponse = receive(&mut a, 5);
    let jb: JoinGroupResponse = receive(&mut b, 5);
    assert_eq!((ja.error_code, jb.error_code), (0, 0));
    let generation = ja.generation_id;
    let (a_id, b_id) = (ja.member_id.to_string(), jb.member_id.to_string());
    let leader = ja.leader.to_string();
    // The leader's list names each member's instance id.
    let listed = if leader == a_id {
        &ja.members
    } else {
        &jb.members
    };
    let mut instances: Vec<_> = listed
        .iter()
        .map(|m| m.group_instance_id.as_ref().unwrap().to_string())
        .collect();
    instances.sort();
    assert_eq!(instances, ["pod-a", "pod-b"]);
    let assign: [(&str, &'static [u8]); 2] = [(&a_id, b"A"), (&b_id, b"B")];
    let (lead, follow, lead_i, follow_i) = if leader == a_id {
        (&mut a, &mut b, "pod-a", "pod-b")
    } else {
        (&mut b, &mut a, "pod-b", "pod-a")
    };
    let follow_id = if leader == a_id { &b_id } else { &a_id };
    let r = sync_request(follow_id, Some(follow_i), generation, &[]);
    follow.send(ApiKey::SyncGroup, 3, &r);
    let r = sync_request(&leader, Some(lead_i), generation, &assign);
    let led: SyncGroupResponse = lead.call(ApiKey::SyncGroup, 3, &r);
    let followed: SyncGroupResponse = receive(follow, 3);
    assert_eq!((led.error_code, followed.error_code), (0, 0));

    // pod-a's client restarts: it joins with no member id and is answered
    // at once, in the same generation, under a new id; pod-b sees nothing.
    let mut a2 = Client::connect(broker.local_addr());
    let rejoined: JoinGroupResponse =
        a2.call(ApiKey::JoinGroup, 5, &join_request("", Some("pod-a")));
    assert_eq!(rejoined.error_code, 0);
    assert_eq!(rejoined.generation_id, generation, "no rebalance");
    let a2_id = rejoined.member_id.to_string();
    assert_ne!(a2_id, a_id);
    // Below v9 the leader is named as it was: a returning leader does
    // not assign again.
    assert_eq!(rejoined.leader.as_str(), leader);
    assert!(rejoined.members.is_empty());
    let r = sync_request(&a2_id, Some("pod-a"), generation, &[]);
    let resynced: SyncGroupResponse = a2.call(ApiKey::SyncGroup, 3, &r);
    assert_eq!(resynced.error_code, 0);
    assert_eq!(&resynced.assignment[..], b"A", "the assignment it had");
    assert_eq!(heartbeat(&mut b, &b_id, Some("pod-b"), generation), 0);
    // The old id is fenced wherever it shows up with its instance id.
    assert_eq!(heartbeat(&mut a, &a_id, Some("pod-a"), generation), 82);
    assert_eq!(heartbeat(&mut a, &a_id, None, generation), 25);
    let old: JoinGroupResponse = a.call(ApiKey::JoinGroup, 5, &join_request(&a_id, Some("pod-a")));
    assert_eq!(old.error_code, 82, "FENCED_INSTANCE_ID");
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(s("g"));
    commit.member_id = s(&a_id);
    commit.group_instance_id = Some(s("pod-a"));
    commit.generation_id_or_member_epoch = generation;
    let mut topic = offset_commit_request::OffsetCommitRequestTopic::default();
    topic.name = common::topic_name("t");
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.committed_offset = 1;
    topic.partitions.push(p);
    commit.topics.push(topic);
    let resp: OffsetCommitResponse = a.call(ApiKey::OffsetCommit, 7, &commit);
    assert_eq!(resp.topics[0].partitions[0].error_code, 82);
    commit.member_id = s(&a2_id);
    let resp: OffsetCommitResponse = a2.call(ApiKey::OffsetCommit, 7, &commit);
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    let d = describe(&mut b);
    assert_eq!(d.state, "Stable");
    let mut seen: Vec<_> = d
        .members
        .iter()
        .map(|(id, i, a)| (id == &a2_id, i.clone().unwrap(), a.clone()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (false, "pod-b".to_owned(), b"B".to_vec()),
            (true, "pod-a".to_owned(), b"A".to_vec())
        ]
    );

    // A broker restart keeps them: pod-b's client, restarted too, rejoins
    // its place with no rebalance.
    drop((a, a2, b));
    drop(broker);
    let broker = common::start(&config);
    let mut b2 = Client::connect(broker.local_addr());
    let back: JoinGroupResponse = b2.call(ApiKey::JoinGroup, 5, &join_request("", Some("pod-b")));
    assert_eq!((back.error_code, back.generation_id), (0, generation));
    let r = sync_request(&back.member_id, Some("pod-b"), generation, &[]);
    let resynced: SyncGroupResponse = b2.call(ApiKey::SyncGroup, 3, &r);
    assert_eq!(&resynced.assignment[..], b"B");

    // From v9 a returning leader hears it leads, with the members, and
    // that it must not assign (KIP-814).
    let lead_back: JoinGroupResponse =
        b2.call(ApiKey::JoinGroup, 9, &join_request("", Some(lead_i)));
    assert_eq!(
        (lead_back.error_code, lead_back.generation_id),
        (0, generation)
    );
    assert_eq!(lead_back.leader, lead_back.member_id);
    assert!(lead_back.skip_assignment);
    assert_eq!(lead_back.members.len(), 2);

    // A join phase keeps a static member that missed it: a dynamic member
    // joins, pod-a and pod-b's clients stay away, and the group completes
    // at the rebalance timeout with all three.
    let mut c = Client::connect(broker.local_addr());
    send_join(&mut c, "", None);
    let joined: JoinGroupResponse = receive(&mut c, 5);
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.generation_id, generation + 1);
    assert_eq!(
        joined.leader, joined.member_id,
        "the only member that joined leads"
    );
    assert_eq!(joined.members.len(), 3);

    // An administrator removes pod-b by its instance id alone.
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(s("g"));
    let mut who = MemberIdentity::default();
    who.group_instance_id = Some(s("pod-b"));
    leave.members.push(who);
    let mut nobody = MemberIdentity::default();
    nobody.group_instance_id = Some(s("pod-z"));
    leave.members.push(nobody);
    let left: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, 3, &leave);
    let codes: Vec<_> = left.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, [0, 25]);
    let d = describe(&mut c);
    assert!(d
        .members
        .iter()
        .all(|(_, i, _)| i.as_deref() != Some("pod-b")));
    drop(broker);
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn a_member_that_joins_again_with_what_it_joined_with_hears_the_same_generation() {
    let broker = common::start(&common::config("classic-rejoin"));
    let ((mut lc, lj), (mut fc, fj)) = two_joined(&broker);
    let (lc, fc) = (&mut lc, &mut fc);
    let generation = lj.generation_id;
    // Waiting for assignments, the follower (its answer lost) joins again
    // with what it joined with: the same generation, at once.
    let again: JoinGroupResponse =
        fc.call(ApiKey::JoinGroup, 5, &join_request(&fj.member_id, None));
    assert_eq!((again.error_code, again.generation_id), (0, generation));
    assert_eq!(again.leader, lj.member_id);
    let r = sync_request(&lj.member_id, None, generation, &[(&fj.member_id, b"F")]);
    let led: SyncGroupResponse = lc.call(ApiKey::SyncGroup, 3, &r);
    assert_eq!(led.error_code, 0);
    // Stable: a follower's unchanged join does not rebalance the group.
    let again: JoinGroupResponse =
        fc.call(ApiKey::JoinGroup, 5, &join_request(&fj.member_id, None));
    assert_eq!((again.error_code, again.generation_id), (0, generation));
    assert!(again.members.is_empty());
    assert_eq!(heartbeat(lc, &lj.member_id, None, generation), 0);
    let r = sync_request(&fj.member_id, None, generation, &[]);
    let synced: SyncGroupResponse = fc.call(ApiKey::SyncGroup, 3, &r);
    assert_eq!((synced.error_code, &synced.assignment[..]), (0, &b"F"[..]));
    // The leader's join does (it saw the topics change). (Its connection
    // and the follower's reach the coordinator in either order.)
    lc.send(ApiKey::JoinGroup, 5, &join_request(&lj.member_id, None));
    let deadline = Instant::now() + Duration::from_secs(5);
    while heartbeat(fc, &fj.member_id, None, generation) != 27 {
        assert!(Instant::now() < deadline, "the group never rebalanced");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn groups_take_no_more_members_than_their_bound_and_a_lowered_bound_applies_after_a_restart() {
    let mut config = common::config("group-max-size");
    config.consumer_groups.classic_max_size = 2;
    config.consumer_groups.consumer_max_size = 1;
    let broker = common::start(&config);
    let mut a = Client::connect(broker.local_addr());
    let mut b = Client::connect(broker.local_addr());
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut a, "t", 2);
    // Two join; the third, while they wait, is refused at once.
    send_join(&mut a, "", None);
    send_join(&mut b, "", None);
    let deadline = Instant::now() + Duration::from_secs(5);
    while describe(&mut c).members.len() < 2 {
        assert!(Instant::now() < deadline, "the two joins never arrived");
    }
    let refused: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &join_request("", None));
    assert_eq!(refused.error_code, 81, "GROUP_MAX_SIZE_REACHED");
    let ja: JoinGroupResponse = receive(&mut a, 5);
    let jb: JoinGroupResponse = receive(&mut b, 5);
    assert_eq!((ja.error_code, jb.error_code), (0, 0));
    // Full and waiting for assignments: still refused; a member is not.
    let refused: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &join_request("", None));
    assert_eq!(refused.error_code, 81);
    let again: JoinGroupResponse = a.call(ApiKey::JoinGroup, 5, &join_request(&ja.member_id, None));
    assert_eq!(again.error_code, 0);

    // A consumer-protocol group of at most one member, and a classic
    // member asking into it.
    let beat = |c: &mut Client, member: &str| {
        let mut r = ConsumerGroupHeartbeatRequest::default();
        r.group_id = GroupId(s("cg"));
        r.member_id = s(member);
        r.rebalance_timeout_ms = 30_000;
        r.subscribed_topic_names = Some(vec![common::topic_name("t")]);
        r.topic_partitions = Some(Vec::new());
        let resp: ConsumerGroupHeartbeatResponse = c.call(ApiKey::ConsumerGroupHeartbeat, 1, &r);
        (resp.error_code, resp.error_message.map(|m| m.to_string()))
    };
    assert_eq!(beat(&mut c, "xxxxxxxxxxxxxxxxxxxxxx").0, 0);
    let (code, message) = beat(&mut c, "yyyyyyyyyyyyyyyyyyyyyy");
    assert_eq!(code, 81);
    assert!(message.unwrap().contains("maximum capacity of 1"));
    let mut into = join_request("", None);
    into.group_id = GroupId(s("cg"));
    let refused: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &into);
    assert_eq!(refused.error_code, 81);

    // Settle g with both members, then lower its bound to one.
    let (leader, lead_id, follow, follow_id) = if ja.leader == ja.member_id {
        (&mut a, ja.member_id.clone(), &mut b, jb.member_id.clone())
    } else {
        (&mut b, jb.member_id.clone(), &mut a, ja.member_id.clone())
    };
    let generation = ja.generation_id;
    let r = sync_request(&lead_id, None, generation, &[]);
    let _: SyncGroupResponse = leader.call(ApiKey::SyncGroup, 3, &r);
    assert_eq!(heartbeat(follow, &follow_id, None, generation), 0);
    drop((a, b, c));
    drop(broker);
    config.consumer_groups.classic_max_size = 1;
    let broker = common::start(&config);
    let mut a = Client::connect(broker.local_addr());
    // Restored over its bound, the group rebalances: the first member to
    // rejoin stays, the second is refused and removed. (Both joins go on
    // one connection, so they reach the coordinator in this order; the
    // answers come in it too.)
    assert_eq!(heartbeat(&mut a, &lead_id, None, generation), 27);
    send_join(&mut a, &lead_id, None);
    send_join(&mut a, &follow_id, None);
    let joined: JoinGroupResponse = receive(&mut a, 5);
    let refused: JoinGroupResponse = receive(&mut a, 5);
    assert_eq!(refused.error_code, 81);
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.generation_id, generation + 1);
    assert_eq!(
        joined.members.len(),
        1,
        "only the member that rejoined first"
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn a_new_member_joins_with_the_id_it_is_given_so_retried_joins_add_no_members() {
    let broker = common::start(&common::config("classic-member-id"));
    let mut a = Client::connect(broker.local_addr());
    create_topic(&mut a, "t", 2);
    // From v4 a new member is given its id first (KIP-394); asking twice
    // (a retried request) adds nobody.
    let first: JoinGroupResponse = a.call(ApiKey::JoinGroup, 5, &join_request("", None));
    let retried: JoinGroupResponse = a.call(ApiKey::JoinGroup, 5, &join_request("", None));
    assert_eq!((first.error_code, retried.error_code), (79, 79));
    assert!(
        first.member_id.starts_with("gyre-test-"),
        "{}",
        first.member_id
    );
    assert!(describe(&mut a).members.is_empty());
    // It joins with the id; the other id handed out is never used, and the
    // join phase waits for it (until its session would expire) only while
    // it may still come.
    let joined: JoinGroupResponse = a.call(
        ApiKey::JoinGroup,
        5,
        &join_request(&retried.member_id, None),
    );
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.member_id, retried.member_id);
    let d = describe(&mut a);
    assert_eq!(d.members.len(), 1);
    // A group nobody has heard of: Dead up to v5, not found from v6.
    let mut r = DescribeGroupsRequest::default();
    r.groups.push(GroupId(s("nobody")));
    let old: DescribeGroupsResponse = a.call(ApiKey::DescribeGroups, 5, &r);
    assert_eq!(old.groups[0].group_state.as_str(), "Dead");
    let new: DescribeGroupsResponse = a.call(ApiKey::DescribeGroups, 6, &r);
    assert_eq!(new.groups[0].error_code, 69);
    assert_eq!(
        new.groups[0].error_message.as_deref(),
        Some("Group nobody not found.")
    );
    // Below v4 a new member joins at once, as before KIP-394.
    let mut b = Client::connect(broker.local_addr());
    let mut old = join_request("", None);
    old.group_id = GroupId(s("old"));
    let joined: JoinGroupResponse = b.call(ApiKey::JoinGroup, 3, &old);
    assert_eq!(joined.error_code, 0);
    assert!(!joined.member_id.is_empty());
}
