//! Share groups' membership (KIP-932) on the coordinator:
//! ShareGroupHeartbeat and ShareGroupDescribe as Kafka's group
//! coordinator answers them. A member joins with epoch 0 and the topics
//! it subscribes to, heartbeats with its epoch, and leaves with -1; each
//! answer carries its epoch and, when that moved, the partitions it
//! fetches from. Unlike a consumer group's, a share group's partitions
//! are shared: no partition is taken from one member before another gets
//! it, so an assignment moves in one step, and a partition has more than
//! one member when the group has more members than partitions.
//!
//! Who joins and leaves goes to the log writer ([`MemberChange`]), where
//! the records are delivered: only members may fetch, and a member's
//! records go back when it leaves or its session runs out.
//!
//! Functions over the share groups; uses the topic catalog's copy and
//! the share groups' request types.

use super::consumer_group::TopicsNow;
use super::group::Client;
use crate::config::ShareGroupSettings;
use crate::protocol::error_code as ec;
use crate::share::job::MemberChange;
use kafka_protocol::messages::share_group_describe_response::{self as describe, DescribedGroup};
use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ShareGroupDescribeRequest, ShareGroupDescribeResponse, ShareGroupHeartbeatRequest,
    ShareGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;
use uuid::Uuid;

/// A member's partitions: (topic id, partition indexes), by topic name.
pub(super) type Partitions = Vec<(Uuid, Vec<i32>)>;

/// One member.
#[derive(Debug)]
pub struct ShareMember {
    /// The epoch last sent to it.
    pub(super) epoch: i32,
    pub(super) topics: Vec<String>,
    pub(super) rack: Option<String>,
    pub(super) client: Client,
    pub(super) deadline: Instant,
    /// The partitions last sent to it.
    pub(super) assignment: Partitions,
}

/// One share group.
#[derive(Debug, Default)]
pub struct ShareGroup {
    /// The group epoch: moves when the assignment does.
    pub(super) epoch: i32,
    /// By member id (sorted: the assignment is the same whatever order
    /// members joined in).
    pub(super) members: BTreeMap<String, ShareMember>,
    /// Each member's partitions at `epoch`.
    pub(super) target: HashMap<String, Partitions>,
    /// The catalog version the target was worked out from.
    pub(super) catalog_version: u64,
}

impl ShareGroup {
    /// A group as the groups file kept it: its members' sessions start
    /// `now` and run `session`, and its target is worked out again
    /// against the catalog at its next heartbeat (its epoch moves only
    /// if that differs).
    pub(super) fn restored(mut self, now: Instant, session: std::time::Duration) -> Self {
        for m in self.members.values_mut() {
            m.deadline = now + session;
        }
        self.catalog_version = u64::MAX;
        self
    }

    /// The coordinator's word to the log writer that each member is one:
    /// for a group restored at start.
    pub(super) fn joined(&self, group: &str) -> impl Iterator<Item = MemberChange> + '_ {
        let group = group.to_owned();
        self.members.keys().map(move |member| MemberChange::Joined {
            group: group.clone(),
            member: member.clone(),
        })
    }

    /// Whether it has members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Kafka's state name.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    /// Works the assignment out again; moves the group epoch if it
    /// changed.
    fn rebalance(&mut self, catalog: &TopicsNow) {
        let target = assign(&self.members, catalog);
        self.catalog_version = catalog.version;
        if target != self.target || self.epoch == 0 {
            self.target = target;
            self.epoch += 1;
        }
    }
}

/// The simple assignor: each topic's partitions go round its subscribed
/// members in order; when a topic has more members than partitions, the
/// partitions go round the members instead, so each member gets one and
/// a partition is shared.
fn assign(
    members: &BTreeMap<String, ShareMember>,
    catalog: &TopicsNow,
) -> HashMap<String, Partitions> {
    let mut out: HashMap<String, Partitions> =
        members.keys().map(|m| (m.clone(), Vec::new())).collect();
    for (id, name, count) in &catalog.topics {
        let subscribed: Vec<&String> = members
            .iter()
            .filter(|(_, m)| m.topics.iter().any(|t| t == name))
            .map(|(id, _)| id)
            .collect();
        if subscribed.is_empty() || *count <= 0 {
            continue;
        }
        let mut per: HashMap<&String, Vec<i32>> = HashMap::new();
        let n = subscribed.len();
        if *count as usize >= n {
            for p in 0..*count {
                per.entry(subscribed[p as usize % n]).or_default().push(p);
            }
        } else {
            for (i, m) in subscribed.iter().enumerate() {
                per.entry(m).or_default().push((i % *count as usize) as i32);
            }
        }
        for (m, partitions) in per {
            if let Some(list) = out.get_mut(m) {
                list.push((*id, partitions));
            }
        }
    }
    out
}

fn refused(code: i16, message: impl Into<String>) -> ShareGroupHeartbeatResponse {
    let mut resp = ShareGroupHeartbeatResponse::default();
    resp.error_code = code;
    resp.error_message = Some(StrBytes::from_string(message.into()));
    resp
}

fn wire_assignment(partitions: &Partitions) -> Assignment {
    let mut a = Assignment::default();
    for (id, list) in partitions {
        let mut t = TopicPartitions::default();
        t.topic_id = *id;
        t.partitions = list.clone();
        a.topic_partitions.push(t);
    }
    a
}

/// Answers a ShareGroupHeartbeat; the member changes the writer must
/// hear go to `changes`, to be sent before the answer.
pub fn heartbeat(
    groups: &mut HashMap<String, ShareGroup>,
    r: &ShareGroupHeartbeatRequest,
    client: Client,
    catalog: &TopicsNow,
    settings: ShareGroupSettings,
    now: Instant,
    changes: &mut Vec<MemberChange>,
) -> ShareGroupHeartbeatResponse {
    let group_id = r.group_id.0.as_str();
    let member_id = r.member_id.as_str();
    if group_id.is_empty() {
        return refused(ec::INVALID_REQUEST, "GroupId can't be empty.");
    }
    if member_id.is_empty() {
        return refused(ec::INVALID_REQUEST, "MemberId can't be empty.");
    }
    if r.member_epoch < -1 {
        return refused(ec::INVALID_REQUEST, "MemberEpoch is invalid.");
    }
    if r.member_epoch == 0
        && r.subscribed_topic_names
            .as_ref()
            .is_none_or(|t| t.is_empty())
    {
        return refused(
            ec::INVALID_REQUEST,
            "SubscribedTopicNames must be set in first request.",
        );
    }
    if r.rack_id.as_ref().is_some_and(|i| i.is_empty()) {
        return refused(ec::INVALID_REQUEST, "RackId can't be empty.");
    }
    let left = |changes: &mut Vec<MemberChange>| {
        changes.push(MemberChange::Left {
            group: group_id.to_owned(),
            member: member_id.to_owned(),
        })
    };
    if r.member_epoch == -1 {
        if let Some(g) = groups.get_mut(group_id) {
            if g.members.remove(member_id).is_some() {
                left(changes);
                g.rebalance(catalog);
            }
        }
        let mut resp = ShareGroupHeartbeatResponse::default();
        resp.member_id = Some(r.member_id.clone());
        resp.member_epoch = -1;
        return resp;
    }
    let group = groups.entry(group_id.to_owned()).or_default();
    let topics = r.subscribed_topic_names.as_ref().map(|t| {
        t.iter()
            .map(|n| n.0.as_str().to_owned())
            .collect::<Vec<_>>()
    });
    let mut moved = false;
    if r.member_epoch == 0 {
        let rejoined = group.members.contains_key(member_id);
        if !rejoined && group.members.len() >= settings.max_size {
            if group.members.is_empty() {
                groups.remove(group_id);
            }
            return refused(
                ec::GROUP_MAX_SIZE_REACHED,
                format!(
                    "The share group has reached its maximum capacity of {} members.",
                    settings.max_size
                ),
            );
        }
        if rejoined {
            // What it held before goes back: a member that rejoins starts
            // over.
            changes.push(MemberChange::Dropped {
                group: group_id.to_owned(),
                member: member_id.to_owned(),
            });
        }
        changes.push(MemberChange::Joined {
            group: group_id.to_owned(),
            member: member_id.to_owned(),
        });
        group.members.insert(
            member_id.to_owned(),
            ShareMember {
                epoch: 0,
                topics: topics.unwrap_or_default(),
                rack: r.rack_id.as_ref().map(|s| s.as_str().to_owned()),
                client,
                deadline: now + settings.session_timeout,
                assignment: Vec::new(),
            },
        );
        moved = true;
    } else {
        let Some(m) = group.members.get_mut(member_id) else {
            return refused(
                ec::UNKNOWN_MEMBER_ID,
                format!("Member {member_id} is not a member of share group {group_id}."),
            );
        };
        if r.member_epoch != m.epoch {
            return refused(
                ec::FENCED_MEMBER_EPOCH,
                format!(
                    "The share group member has a smaller member epoch ({}) than the one known by the group coordinator ({}).",
                    r.member_epoch, m.epoch
                ),
            );
        }
        m.deadline = now + settings.session_timeout;
        if let Some(topics) = topics.filter(|t| *t != m.topics) {
            m.topics = topics;
            moved = true;
        }
        if let Some(rack) = &r.rack_id {
            m.rack = Some(rack.as_str().to_owned());
        }
    }
    if moved || group.catalog_version != catalog.version {
        group.rebalance(catalog);
    }
    let epoch = group.epoch;
    let target = group.target.get(member_id).cloned().unwrap_or_default();
    let m = group
        .members
        .get_mut(member_id)
        .expect("the member is in the group");
    let mut resp = ShareGroupHeartbeatResponse::default();
    resp.member_id = Some(r.member_id.clone());
    resp.heartbeat_interval_ms = settings.heartbeat_interval.as_millis() as i32;
    if m.epoch != epoch {
        m.epoch = epoch;
        m.assignment = target;
        resp.assignment = Some(wire_assignment(&m.assignment));
    }
    resp.member_epoch = m.epoch;
    resp
}

/// Drops the members whose session ran out by `now`.
pub fn expire(
    groups: &mut HashMap<String, ShareGroup>,
    catalog: &TopicsNow,
    now: Instant,
    changes: &mut Vec<MemberChange>,
) {
    for (id, g) in groups.iter_mut() {
        let before = g.members.len();
        g.members.retain(|member, m| {
            let alive = m.deadline > now;
            if !alive {
                tracing::info!(group = id, member, "share group member's session ran out");
                changes.push(MemberChange::Dropped {
                    group: id.clone(),
                    member: member.clone(),
                });
            }
            alive
        });
        if g.members.len() != before {
            g.rebalance(catalog);
        }
    }
}

/// Answers a ShareGroupDescribe.
pub fn describe(
    groups: &HashMap<String, ShareGroup>,
    r: &ShareGroupDescribeRequest,
    catalog: &TopicsNow,
) -> ShareGroupDescribeResponse {
    let name_of = |id: &Uuid| {
        catalog
            .topics
            .iter()
            .find(|t| t.0 == *id)
            .map(|t| t.1.clone())
            .unwrap_or_default()
    };
    let mut resp = ShareGroupDescribeResponse::default();
    for id in &r.group_ids {
        let mut d = DescribedGroup::default();
        d.group_id = id.clone();
        d.authorized_operations = i32::MIN;
        match groups.get(id.0.as_str()) {
            None => {
                d.error_code = ec::GROUP_ID_NOT_FOUND;
                d.error_message = Some(StrBytes::from_string(format!(
                    "Group {} not found.",
                    id.0.as_str()
                )));
            }
            Some(g) => {
                d.group_state = StrBytes::from_static_str(g.state());
                d.group_epoch = g.epoch;
                d.assignment_epoch = g.epoch;
                d.assignor_name = StrBytes::from_static_str("simple");
                for (member_id, m) in &g.members {
                    let mut dm = describe::Member::default();
                    dm.member_id = StrBytes::from_string(member_id.clone());
                    dm.rack_id = m.rack.clone().map(StrBytes::from_string);
                    dm.member_epoch = m.epoch;
                    dm.client_id = StrBytes::from_string(m.client.id.clone());
                    dm.client_host = StrBytes::from_string(m.client.host.clone());
                    dm.subscribed_topic_names = m
                        .topics
                        .iter()
                        .map(|t| TopicName(StrBytes::from_string(t.clone())))
                        .collect();
                    for (topic_id, partitions) in &m.assignment {
                        let mut t = describe::TopicPartitions::default();
                        t.topic_id = *topic_id;
                        t.topic_name = TopicName(StrBytes::from_string(name_of(topic_id)));
                        t.partitions = partitions.clone();
                        dm.assignment.topic_partitions.push(t);
                    }
                    d.members.push(dm);
                }
            }
        }
        resp.groups.push(d);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::GroupId;
    use std::time::Duration;

    fn catalog(topics: &[(&str, i32)]) -> TopicsNow {
        TopicsNow {
            version: 1,
            topics: topics
                .iter()
                .enumerate()
                .map(|(i, (n, c))| (Uuid::from_u128(i as u128 + 1), n.to_string(), *c))
                .collect(),
        }
    }

    fn beat(member: &str, epoch: i32, topics: Option<&[&str]>) -> ShareGroupHeartbeatRequest {
        let mut r = ShareGroupHeartbeatRequest::default();
        r.group_id = GroupId(StrBytes::from_static_str("g"));
        r.member_id = StrBytes::from_string(member.to_owned());
        r.member_epoch = epoch;
        r.subscribed_topic_names = topics.map(|t| {
            t.iter()
                .map(|n| TopicName(StrBytes::from_string(n.to_string())))
                .collect()
        });
        r
    }

    fn client() -> Client {
        Client {
            id: "c".into(),
            host: "/127.0.0.1".into(),
        }
    }

    /// A coordinator's share groups over one catalog, at one time.
    struct Groups {
        groups: HashMap<String, ShareGroup>,
        catalog: TopicsNow,
        now: Instant,
        changes: Vec<MemberChange>,
    }

    impl Groups {
        fn new(topics: &[(&str, i32)]) -> Self {
            Groups {
                groups: HashMap::new(),
                catalog: catalog(topics),
                now: Instant::now(),
                changes: Vec::new(),
            }
        }

        fn beat(
            &mut self,
            member: &str,
            epoch: i32,
            topics: Option<&[&str]>,
        ) -> ShareGroupHeartbeatResponse {
            heartbeat(
                &mut self.groups,
                &beat(member, epoch, topics),
                client(),
                &self.catalog,
                ShareGroupSettings::default(),
                self.now,
                &mut self.changes,
            )
        }
    }

    fn partitions(resp: &ShareGroupHeartbeatResponse) -> Vec<i32> {
        let a = resp.assignment.as_ref().expect("an assignment");
        a.topic_partitions
            .iter()
            .flat_map(|t| t.partitions.clone())
            .collect()
    }

    #[test]
    fn partitions_are_spread_then_shared() {
        let mut g = Groups::new(&[("t", 3)]);
        let a = g.beat("a", 0, Some(&["t"]));
        assert_eq!((a.error_code, a.member_epoch), (0, 1));
        assert_eq!(partitions(&a), [0, 1, 2]);
        let b = g.beat("b", 0, Some(&["t"]));
        assert_eq!(b.member_epoch, 2);
        assert_eq!(partitions(&b), [1]);
        // a hears of the new epoch and its smaller share.
        let a2 = g.beat("a", 1, None);
        assert_eq!((a2.member_epoch, partitions(&a2)), (2, vec![0, 2]));
        // Nothing moved since: no assignment.
        assert!(g.beat("a", 2, None).assignment.is_none());
        // Four members of three partitions: each has one, one is shared.
        g.beat("c", 0, Some(&["t"]));
        g.beat("d", 0, Some(&["t"]));
        let all: Vec<i32> = g.groups["g"]
            .target
            .values()
            .flat_map(|p| p[0].1.clone())
            .collect();
        assert_eq!(all.len(), 4);
        assert!((0..3).all(|p| all.contains(&p)));
        let joined = g
            .changes
            .iter()
            .filter(|c| matches!(c, MemberChange::Joined { .. }));
        assert_eq!(joined.count(), 4);
    }

    #[test]
    fn stale_epochs_are_fenced_unknown_members_refused_and_leavers_told() {
        let mut g = Groups::new(&[("t", 1)]);
        g.beat("a", 0, Some(&["t"]));
        assert_eq!(g.beat("a", 7, None).error_code, ec::FENCED_MEMBER_EPOCH);
        assert_eq!(g.beat("z", 1, None).error_code, ec::UNKNOWN_MEMBER_ID);
        assert_eq!(g.beat("b", 0, None).error_code, ec::INVALID_REQUEST);
        g.changes.clear();
        assert_eq!(g.beat("a", -1, None).member_epoch, -1);
        assert_eq!(
            g.changes,
            [MemberChange::Left {
                group: "g".into(),
                member: "a".into()
            }]
        );
        assert!(g.groups["g"].is_empty());
    }

    #[test]
    fn a_silent_member_is_dropped() {
        let mut g = Groups::new(&[("t", 1)]);
        g.beat("a", 0, Some(&["t"]));
        g.changes.clear();
        let timeout = ShareGroupSettings::default().session_timeout;
        let cat = &g.catalog;
        let almost = g.now + timeout - Duration::from_millis(1);
        expire(&mut g.groups, cat, almost, &mut g.changes);
        assert!(g.changes.is_empty());
        expire(&mut g.groups, cat, g.now + timeout, &mut g.changes);
        assert_eq!(g.changes.len(), 1);
        assert!(g.groups["g"].is_empty());
    }
}
