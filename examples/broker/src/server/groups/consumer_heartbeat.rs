//! ConsumerGroupHeartbeat (v0-1) and ConsumerGroupDescribe (v0-1), the
//! consumer group protocol's requests (KIP-848), as Kafka's group
//! coordinator answers them: a member joins with epoch 0, heartbeats with
//! its epoch and (when it changed) what it owns, leaves with epoch -1 (or
//! -2, a static member that will be back), and each answer carries its
//! epoch and, when it changed, the partitions it may consume. Functions
//! over the consumer groups; uses the group and the topic catalog.

use super::assignor::{self, Partitions};
use super::consumer_group::{compile_regex, ConsumerGroup, ConsumerMember, TopicsNow, Visible};
use super::group::Client;
use crate::config::ConsumerGroupSettings;
use crate::protocol::error_code as ec;
use crate::topics::Catalog;
use kafka_protocol::messages::consumer_group_describe_response::{
    self as describe, DescribedGroup,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Each topic of `catalog` as (id, name, partition count), sorted by
/// name, with the catalog's version (read first, so a copy that races a
/// change is taken again next time).
pub fn catalog_topics(catalog: &Catalog) -> TopicsNow {
    let version = catalog.version();
    let topics = catalog
        .all()
        .iter()
        .map(|t| (t.id, t.name.clone(), t.partitions.len() as i32))
        .collect();
    TopicsNow { version, topics }
}

/// Why a heartbeat is refused: an error code and Kafka's message.
type Refusal = (i16, String);

/// The last copy of the catalog's topics, taken again only when the
/// catalog has changed since (heartbeats come often; topics change
/// rarely).
#[derive(Debug, Default)]
pub struct TopicsCache(Option<std::sync::Arc<TopicsNow>>);

impl TopicsCache {
    /// The topics as `catalog` has them now.
    pub fn get(&mut self, catalog: &Catalog) -> std::sync::Arc<TopicsNow> {
        let version = catalog.version();
        match &self.0 {
            Some(topics) if topics.version == version => topics.clone(),
            _ => {
                let topics = std::sync::Arc::new(catalog_topics(catalog));
                self.0 = Some(topics.clone());
                topics
            }
        }
    }
}

/// A refusal.
fn refused(code: i16, message: String) -> ConsumerGroupHeartbeatResponse {
    let mut resp = ConsumerGroupHeartbeatResponse::default();
    resp.error_code = code;
    resp.error_message = Some(StrBytes::from_string(message));
    resp
}

/// The checks Kafka makes of a heartbeat before looking at the group;
/// the compiled regular expression if one came.
fn check(r: &ConsumerGroupHeartbeatRequest, version: i16) -> Result<Option<regex::Regex>, Refusal> {
    let invalid = |m: &str| Err((ec::INVALID_REQUEST, m.to_owned()));
    if r.group_id.0.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if r.instance_id.as_ref().is_some_and(|i| i.is_empty()) {
        return invalid("InstanceId can't be empty.");
    }
    if r.rack_id.as_ref().is_some_and(|i| i.is_empty()) {
        return invalid("RackId can't be empty.");
    }
    let needs_id = version >= 1 || r.member_epoch != 0;
    if needs_id && r.member_id.is_empty() {
        return invalid("MemberId can't be empty.");
    }
    match r.member_epoch {
        0 => {
            if r.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if r.topic_partitions.as_ref().is_none_or(|t| !t.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if r.subscribed_topic_names.is_none() && r.subscribed_topic_regex.is_none() {
                return invalid(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                );
            }
        }
        -2 if r.instance_id.is_none() => return invalid("InstanceId can't be null."),
        e if e < -2 => return invalid("MemberEpoch is invalid."),
        _ => {}
    }
    if r.rebalance_timeout_ms < -1 {
        return invalid("RebalanceTimeoutMs is invalid.");
    }
    if let Some(a) = &r.server_assignor {
        if !assignor::NAMES.contains(&a.as_str()) {
            return Err((
                ec::UNSUPPORTED_ASSIGNOR,
                format!(
                    "ServerAssignor {} is not supported. Supported assignors: {}.",
                    a.as_str(),
                    assignor::NAMES.join(", ")
                ),
            ));
        }
    }
    match r.subscribed_topic_regex.as_ref().filter(|p| !p.is_empty()) {
        Some(p) => compile_regex(p.as_str())
            .map(Some)
            .map_err(|m| (ec::INVALID_REGULAR_EXPRESSION, m)),
        None => Ok(None),
    }
}

/// What one heartbeat needs besides the request.
pub struct Beat<'a> {
    /// The request's version.
    pub version: i16,
    /// Who sent it.
    pub client: Client,
    /// Every topic now.
    pub catalog: &'a TopicsNow,
    /// The settings.
    pub settings: ConsumerGroupSettings,
    /// Now.
    pub now: Instant,
    /// The refusal, if a classic group with members has the id and is
    /// not converted (see the coordinator's `upgrade`).
    pub refused: Option<(i16, String)>,
    /// With the authorizer on, the topics the member may describe.
    pub visible: Option<Visible>,
}

/// Answers one ConsumerGroupHeartbeat, creating the group at a first
/// join (v0 members are given an id; from v1 they bring their own).
pub fn heartbeat(
    groups: &mut HashMap<String, ConsumerGroup>,
    r: &ConsumerGroupHeartbeatRequest,
    beat: Beat<'_>,
) -> ConsumerGroupHeartbeatResponse {
    let regex = match check(r, beat.version) {
        Ok(regex) => regex,
        Err((code, message)) => return refused(code, message),
    };
    let group_id = r.group_id.0.as_str();
    if let Some((code, message)) = beat.refused {
        return refused(code, message);
    }
    let epoch = r.member_epoch;
    let group = if epoch == 0 {
        groups
            .entry(group_id.to_owned())
            .or_insert_with(|| ConsumerGroup::new(group_id.to_owned()))
    } else {
        match groups.get_mut(group_id) {
            Some(g) => g,
            // The group is gone (a broker restart forgets members): the
            // member rejoins, as after any UNKNOWN_MEMBER_ID.
            None => return unknown(&r.member_id, group_id),
        }
    };
    let member_id = if r.member_id.is_empty() {
        super::group::new_member_id(&beat.client.id)
    } else {
        r.member_id.as_str().to_owned()
    };
    let owned: Option<Partitions> = r.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.topic_id, p)))
            .collect()
    });
    let mut joined = false;
    match epoch {
        -1 | -2 => return leave(group, &member_id, epoch, beat.now),
        0 => match join(
            group,
            &member_id,
            r.instance_id.as_ref(),
            beat.settings.consumer_max_size,
            beat.now,
        ) {
            Ok(new) => joined = new,
            Err((code, message)) => return refused(code, message),
        },
        _ => {
            let known = group.members.get(&member_id).filter(|m| !m.static_away);
            let Some(m) = known else {
                return unknown(&r.member_id, group_id);
            };
            let lost_answer = epoch == m.previous_epoch
                && owned.as_ref().is_some_and(|o| o.is_subset(&m.assigned));
            if epoch > m.epoch || (epoch < m.epoch && !lost_answer) {
                let message = format!(
                    "The consumer group member has a greater epoch ({epoch}) than the one known by the group coordinator ({}), or an older one that cannot be its last.",
                    m.epoch
                );
                return refused(ec::FENCED_MEMBER_EPOCH, message);
            }
        }
    }
    let m = group.members.get_mut(&member_id).expect("joined or known");
    m.last_seen = beat.now;
    m.client = beat.client;
    let mut resubscribed = false;
    if r.rebalance_timeout_ms >= 0 {
        m.rebalance_timeout = Duration::from_millis(r.rebalance_timeout_ms as u64);
    }
    if let Some(rack) = &r.rack_id {
        m.rack_id = Some(rack.as_str().to_owned());
    }
    if let Some(names) = &r.subscribed_topic_names {
        let names: Vec<String> = names.iter().map(|n| n.0.as_str().to_owned()).collect();
        resubscribed |= names != m.subscription.names;
        m.subscription.names = names;
    }
    if let Some(pattern) = &r.subscribed_topic_regex {
        let new = regex.map(|re| (pattern.as_str().to_owned(), re));
        let old = m.subscription.regex.as_ref().map(|(p, _)| p.as_str());
        resubscribed |= new.as_ref().map(|(p, _)| p.as_str()) != old;
        m.subscription.regex = new;
    }
    // Set at every heartbeat (it is not kept across a restart): gaining
    // or losing one changes what a regular expression matches.
    resubscribed |= m.subscription.regex.is_some()
        && m.subscription.visible.is_some() != beat.visible.is_some();
    m.subscription.visible = beat.visible;
    if let Some(a) = &r.server_assignor {
        resubscribed |= m.server_assignor.as_deref() != Some(a.as_str());
        m.server_assignor = Some(a.as_str().to_owned());
    }
    group.refresh(beat.catalog, joined || resubscribed);
    let changed = group.reconcile(&member_id, owned.as_ref(), beat.now);
    let m = &group.members[&member_id];
    let full = epoch == 0
        || (r.rebalance_timeout_ms != -1
            && (r.subscribed_topic_names.is_some() || r.subscribed_topic_regex.is_some())
            && owned.is_some());
    let mut resp = ConsumerGroupHeartbeatResponse::default();
    resp.member_id = Some(StrBytes::from_string(member_id.clone()));
    resp.member_epoch = m.epoch;
    resp.heartbeat_interval_ms = beat.settings.heartbeat_interval.as_millis() as i32;
    if full || changed {
        let mut assignment = Assignment::default();
        assignment.topic_partitions = by_topic(&m.assigned)
            .map(|(topic_id, partitions)| {
                let mut t = TopicPartitions::default();
                t.topic_id = topic_id;
                t.partitions = partitions;
                t
            })
            .collect();
        resp.assignment = Some(assignment);
    }
    resp
}

fn unknown(member: &StrBytes, group: &str) -> ConsumerGroupHeartbeatResponse {
    refused(
        ec::UNKNOWN_MEMBER_ID,
        format!(
            "Member {} is not a member of group {group}.",
            member.as_str()
        ),
    )
}

/// A member joins (epoch 0): a new one, one that lost its partitions and
/// comes back under the same id (it gives them all up), or a static
/// member back under a new id in the place it kept. Whether it is new (the
/// group's epoch then moves on). A new member past `max_size` is refused.
fn join(
    group: &mut ConsumerGroup,
    member_id: &str,
    instance_id: Option<&StrBytes>,
    max_size: u32,
    now: Instant,
) -> Result<bool, Refusal> {
    if let Some(instance) = instance_id.map(StrBytes::as_str) {
        let holder = group
            .members
            .iter()
            .find(|(_, m)| m.instance_id.as_deref() == Some(instance))
            .map(|(id, m)| (id.clone(), m.static_away));
        match holder {
            Some((id, true)) => {
                let mut back = ConsumerMember::new(now);
                back.instance_id = Some(instance.to_owned());
                if let Some(old) = group.members.get(&id) {
                    back.subscription = old.subscription.clone();
                    back.server_assignor = old.server_assignor.clone();
                    back.rebalance_timeout = old.rebalance_timeout;
                }
                group.replace(&id, member_id.to_owned(), back);
                return Ok(false);
            }
            Some((id, false)) if id != member_id => {
                return Err((
                    ec::UNRELEASED_INSTANCE_ID,
                    format!("Static member {id} with instance id {instance} is still in group {}; it must leave first.", group.id),
                ));
            }
            _ => {}
        }
    }
    if group.members.contains_key(member_id) {
        group.reset(member_id);
        return Ok(false);
    }
    if group.members.len() >= max_size as usize {
        return Err((
            ec::GROUP_MAX_SIZE_REACHED,
            format!("The consumer group has reached its maximum capacity of {max_size} members."),
        ));
    }
    let mut m = ConsumerMember::new(now);
    m.instance_id = instance_id.map(|i| i.as_str().to_owned());
    group.add(member_id.to_owned(), m);
    Ok(true)
}

/// Epoch -1: the member leaves and its partitions go to the others.
/// Epoch -2: a static member leaves for now; its partitions stay its
/// until its session ends or it comes back.
fn leave(
    group: &mut ConsumerGroup,
    member_id: &str,
    epoch: i32,
    now: Instant,
) -> ConsumerGroupHeartbeatResponse {
    let Some(m) = group.members.get_mut(member_id) else {
        return unknown(&StrBytes::from_string(member_id.to_owned()), &group.id);
    };
    if epoch == -2 {
        m.static_away = true;
        m.last_seen = now;
    } else {
        group.remove(member_id);
        tracing::info!(group = group.id, member = member_id, "member left");
    }
    let mut resp = ConsumerGroupHeartbeatResponse::default();
    resp.member_id = Some(StrBytes::from_string(member_id.to_owned()));
    resp.member_epoch = epoch;
    resp
}

/// A set of partitions by topic, in order.
fn by_topic(parts: &Partitions) -> impl Iterator<Item = (Uuid, Vec<i32>)> + '_ {
    let mut it = parts.iter().peekable();
    std::iter::from_fn(move || {
        let &(topic, first) = it.next()?;
        let mut partitions = vec![first];
        while let Some(&&(t, p)) = it.peek() {
            if t != topic {
                break;
            }
            partitions.push(p);
            it.next();
        }
        Some((topic, partitions))
    })
}

/// ConsumerGroupDescribe: each consumer group's state, epochs, assignor
/// and members with what they own and their targets. A classic group, or
/// one never heard of, is GROUP_ID_NOT_FOUND (librdkafka's admin client
/// then asks DescribeGroups, as it does of Kafka).
pub fn describe(
    groups: &HashMap<String, ConsumerGroup>,
    r: &ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let mut resp = ConsumerGroupDescribeResponse::default();
    for id in &r.group_ids {
        let mut d = DescribedGroup::default();
        d.group_id = id.clone();
        d.authorized_operations = i32::MIN;
        match groups.get(id.0.as_str()) {
            Some(g) => {
                d.group_state = StrBytes::from_static_str(g.state());
                d.group_epoch = g.epoch;
                d.assignment_epoch = g.assignment_epoch;
                d.assignor_name = StrBytes::from_static_str(g.assignor);
                let assignment = |parts: &Partitions| {
                    let mut a = describe::Assignment::default();
                    a.topic_partitions = by_topic(parts)
                        .map(|(topic_id, partitions)| {
                            let mut t = describe::TopicPartitions::default();
                            t.topic_id = topic_id;
                            t.topic_name = TopicName(StrBytes::from_string(
                                g.topic_name(&topic_id).unwrap_or_default().to_owned(),
                            ));
                            t.partitions = partitions;
                            t
                        })
                        .collect();
                    a
                };
                for (member_id, m) in &g.members {
                    let mut dm = describe::Member::default();
                    dm.member_id = StrBytes::from_string(member_id.clone());
                    dm.instance_id = m.instance_id.clone().map(StrBytes::from_string);
                    dm.rack_id = m.rack_id.clone().map(StrBytes::from_string);
                    dm.member_epoch = m.epoch;
                    dm.client_id = StrBytes::from_string(m.client.id.clone());
                    dm.client_host = StrBytes::from_string(m.client.host.clone());
                    dm.subscribed_topic_names = m
                        .subscription
                        .names
                        .iter()
                        .map(|n| TopicName(StrBytes::from_string(n.clone())))
                        .collect();
                    dm.subscribed_topic_regex = m
                        .subscription
                        .regex
                        .as_ref()
                        .map(|(p, _)| StrBytes::from_string(p.clone()));
                    dm.assignment = assignment(&m.assigned);
                    dm.target_assignment =
                        assignment(g.target.get(member_id).unwrap_or(&Partitions::new()));
                    // KIP-1099: 0 classic, 1 consumer.
                    dm.member_type = if m.classic.is_some() { 0 } else { 1 };
                    d.members.push(dm);
                }
            }
            None => {
                d.error_code = ec::GROUP_ID_NOT_FOUND;
                d.error_message = Some(StrBytes::from_string(format!(
                    "Group {} is not a consumer group.",
                    id.0.as_str()
                )));
            }
        }
        resp.groups.push(d);
    }
    resp
}

/// Whether consumer-group member `member` may commit offsets (or, with
/// `transactional`, offsets in a transaction) at `epoch` with OffsetCommit
/// `version`, by Kafka's rules: a commit with no member into a group with
/// none is an administrator's; otherwise the member must be known and
/// name its current epoch (during a revocation that is still the old
/// one, so revoked partitions' offsets are accepted).
pub fn commit_check(
    group: &ConsumerGroup,
    member: &str,
    epoch: i32,
    version: i16,
    transactional: bool,
) -> i16 {
    if epoch < 0 && group.members.is_empty() {
        return ec::NONE;
    }
    let Some(m) = group.members.get(member).filter(|m| !m.static_away) else {
        return ec::UNKNOWN_MEMBER_ID;
    };
    // A classic member commits at its generation, which is its epoch, in
    // any version.
    if transactional || m.classic.is_some() {
        return if epoch == m.epoch {
            ec::NONE
        } else {
            ec::ILLEGAL_GENERATION
        };
    }
    if version < 9 {
        // Only the consumer protocol's commit names a member epoch.
        return ec::UNSUPPORTED_VERSION;
    }
    if epoch != m.epoch {
        return ec::STALE_MEMBER_EPOCH;
    }
    ec::NONE
}

/// Whether consumer-group member `member` may fetch the group's offsets
/// (OffsetFetch v9 names one), as [`commit_check`].
pub fn fetch_check(group: &ConsumerGroup, member: &str, epoch: i32) -> i16 {
    match group.members.get(member).filter(|m| !m.static_away) {
        None => ec::UNKNOWN_MEMBER_ID,
        Some(m) if m.epoch != epoch => ec::STALE_MEMBER_EPOCH,
        Some(_) => ec::NONE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as Owned;
    use kafka_protocol::messages::GroupId;

    fn topic() -> Uuid {
        Uuid::from_bytes([3; 16])
    }

    /// The partitions of `parts` in topic `topic`.
    fn of_topic(parts: &Partitions, topic: Uuid) -> Vec<i32> {
        parts
            .iter()
            .filter(|tp| tp.0 == topic)
            .map(|tp| tp.1)
            .collect()
    }

    fn catalog() -> TopicsNow {
        TopicsNow {
            version: 1,
            topics: vec![(topic(), "t".into(), 4)],
        }
    }

    fn join_request(member: &str) -> ConsumerGroupHeartbeatRequest {
        let mut r = ConsumerGroupHeartbeatRequest::default();
        r.group_id = GroupId(StrBytes::from_static_str("g"));
        r.member_id = StrBytes::from_string(member.into());
        r.member_epoch = 0;
        r.rebalance_timeout_ms = 30_000;
        r.subscribed_topic_names = Some(vec![TopicName(StrBytes::from_static_str("t"))]);
        r.topic_partitions = Some(Vec::new());
        r
    }

    fn beat_request(
        member: &str,
        epoch: i32,
        owned: Option<&[i32]>,
    ) -> ConsumerGroupHeartbeatRequest {
        let mut r = ConsumerGroupHeartbeatRequest::default();
        r.group_id = GroupId(StrBytes::from_static_str("g"));
        r.member_id = StrBytes::from_string(member.into());
        r.member_epoch = epoch;
        r.rebalance_timeout_ms = -1;
        r.topic_partitions = owned.map(|ps| {
            let mut o = Owned::default();
            o.topic_id = topic();
            o.partitions = ps.to_vec();
            vec![o]
        });
        r
    }

    fn send(
        groups: &mut HashMap<String, ConsumerGroup>,
        r: ConsumerGroupHeartbeatRequest,
    ) -> ConsumerGroupHeartbeatResponse {
        let cat = catalog();
        let beat = Beat {
            version: 1,
            client: Client::default(),
            catalog: &cat,
            settings: ConsumerGroupSettings::default(),
            now: Instant::now(),
            refused: None,
            visible: None,
        };
        heartbeat(groups, &r, beat)
    }

    fn assigned(resp: &ConsumerGroupHeartbeatResponse) -> Option<Vec<i32>> {
        resp.assignment.as_ref().map(|a| {
            a.topic_partitions
                .iter()
                .flat_map(|t| t.partitions.clone())
                .collect()
        })
    }

    #[test]
    fn two_members_split_a_topic_through_a_revocation() {
        let mut groups = HashMap::new();
        let a = send(&mut groups, join_request("a"));
        assert_eq!((a.error_code, a.member_epoch), (0, 1));
        assert_eq!(assigned(&a), Some(vec![0, 1, 2, 3]));
        assert_eq!(a.heartbeat_interval_ms, 5000);
        // Nothing changed: no assignment in the answer.
        let again = send(&mut groups, beat_request("a", 1, None));
        assert_eq!((again.member_epoch, assigned(&again)), (1, None));

        let b = send(&mut groups, join_request("b"));
        assert_eq!((b.member_epoch, assigned(&b)), (2, Some(vec![])));
        // a is told to give up two partitions, at its old epoch.
        let a = send(&mut groups, beat_request("a", 1, None));
        let keep = assigned(&a).unwrap();
        assert_eq!((a.member_epoch, keep.len()), (1, 2));
        // It commits at epoch 1 meanwhile.
        assert_eq!(commit_check(&groups["g"], "a", 1, 9, false), ec::NONE);
        assert_eq!(
            commit_check(&groups["g"], "a", 2, 9, false),
            ec::STALE_MEMBER_EPOCH
        );
        assert_eq!(
            commit_check(&groups["g"], "a", 1, 8, false),
            ec::UNSUPPORTED_VERSION
        );
        // It says it owns only what it keeps: epoch 2.
        let a = send(&mut groups, beat_request("a", 1, Some(&keep)));
        assert_eq!(a.member_epoch, 2);
        let b = send(&mut groups, beat_request("b", 2, None));
        let b_parts = assigned(&b).unwrap();
        assert_eq!(b_parts.len(), 2);
        assert!(b_parts.iter().all(|p| !keep.contains(p)));
        assert_eq!(groups["g"].state(), "Stable");
        assert_eq!(
            of_topic(&groups["g"].members["b"].assigned, topic()),
            b_parts
        );

        // Describe shows both, with their targets.
        let mut d = ConsumerGroupDescribeRequest::default();
        d.group_ids = vec![
            GroupId(StrBytes::from_static_str("g")),
            GroupId(StrBytes::from_static_str("x")),
        ];
        let described = describe(&groups, &d);
        assert_eq!(described.groups[0].group_state.as_str(), "Stable");
        assert_eq!(described.groups[0].members.len(), 2);
        assert_eq!(
            described.groups[0].members[0].assignment.topic_partitions[0]
                .topic_name
                .0
                .as_str(),
            "t"
        );
        assert_eq!(described.groups[1].error_code, ec::GROUP_ID_NOT_FOUND);

        // a leaves; b gets all four.
        let left = send(&mut groups, beat_request("a", -1, None));
        assert_eq!(left.member_epoch, -1);
        let b = send(&mut groups, beat_request("b", 2, None));
        assert_eq!((b.member_epoch, assigned(&b)), (3, Some(vec![0, 1, 2, 3])));
    }

    #[test]
    fn wrong_epochs_are_fenced_and_unknown_members_told_so() {
        let mut groups = HashMap::new();
        send(&mut groups, join_request("a"));
        assert_eq!(
            send(&mut groups, beat_request("a", 7, None)).error_code,
            ec::FENCED_MEMBER_EPOCH
        );
        assert_eq!(
            send(&mut groups, beat_request("z", 2, None)).error_code,
            ec::UNKNOWN_MEMBER_ID
        );
        let mut other = beat_request("a", 2, None);
        other.group_id = GroupId(StrBytes::from_static_str("nope"));
        assert_eq!(send(&mut groups, other).error_code, ec::UNKNOWN_MEMBER_ID);
        // Fenced members rejoin at epoch 0 under the same id and get their
        // partitions again.
        let back = send(&mut groups, join_request("a"));
        assert_eq!(
            (back.error_code, assigned(&back).map(|p| p.len())),
            (0, Some(4))
        );
    }

    #[test]
    fn malformed_heartbeats_are_refused_with_kafkas_errors() {
        let mut groups = HashMap::new();
        let mut r = join_request("a");
        r.topic_partitions = None;
        assert_eq!(send(&mut groups, r).error_code, ec::INVALID_REQUEST);
        let mut r = join_request("a");
        r.rebalance_timeout_ms = -1;
        assert_eq!(send(&mut groups, r).error_code, ec::INVALID_REQUEST);
        let mut r = join_request("");
        r.member_id = StrBytes::default();
        assert_eq!(send(&mut groups, r).error_code, ec::INVALID_REQUEST);
        let mut r = join_request("a");
        r.server_assignor = Some(StrBytes::from_static_str("sticky"));
        assert_eq!(send(&mut groups, r).error_code, ec::UNSUPPORTED_ASSIGNOR);
        let mut r = join_request("a");
        r.subscribed_topic_regex = Some(StrBytes::from_static_str("(unclosed"));
        assert_eq!(
            send(&mut groups, r).error_code,
            ec::INVALID_REGULAR_EXPRESSION
        );
        assert_eq!(
            send(&mut groups, beat_request("a", -3, None)).error_code,
            ec::INVALID_REQUEST
        );
        assert!(groups.values().all(|g| g.members.is_empty()));
    }

    #[test]
    fn a_static_member_keeps_its_place_while_away_and_its_id_is_not_taken_while_present() {
        let mut groups = HashMap::new();
        let mut r = join_request("a");
        r.instance_id = Some(StrBytes::from_static_str("i1"));
        send(&mut groups, r);
        let mut twin = join_request("b");
        twin.instance_id = Some(StrBytes::from_static_str("i1"));
        assert_eq!(
            send(&mut groups, twin).error_code,
            ec::UNRELEASED_INSTANCE_ID
        );
        let mut away = beat_request("a", -2, None);
        away.instance_id = Some(StrBytes::from_static_str("i1"));
        assert_eq!(send(&mut groups, away).member_epoch, -2);
        let epoch = groups["g"].epoch;
        let mut back = join_request("c");
        back.instance_id = Some(StrBytes::from_static_str("i1"));
        let back = send(&mut groups, back);
        assert_eq!(
            (back.member_epoch, assigned(&back).map(|p| p.len())),
            (1, Some(4))
        );
        assert_eq!(
            groups["g"].epoch, epoch,
            "a static member's return moves nothing"
        );
        assert!(!groups["g"].members.contains_key("a"));
    }
}
