//! Online migration between the two group protocols, as Kafka 4.0's
//! default `group.consumer.migration.policy=bidirectional`: the first
//! member to heartbeat with the consumer group protocol into a stable
//! classic group converts it, its classic members keeping their
//! partitions and going on with JoinGroup, SyncGroup and Heartbeat while
//! the broker assigns; when the last consumer-protocol member leaves, the
//! group goes back to the classic protocol and its members rejoin.
//!
//! A classic member learns that its assignment changed the classic way: a
//! heartbeat answered REBALANCE_IN_PROGRESS. Its JoinGroup is answered at
//! once with its member epoch as the generation (it is never the leader,
//! so it runs no assignor), and its SyncGroup with the partitions it may
//! consume. An eager member has revoked everything before it joins; a
//! cooperative one says in its subscription what it still owns. Uses the
//! classic group, the consumer group and the embedded formats.

use super::assignor::Partitions;
use super::consumer_group::{ClassicPart, ConsumerGroup, ConsumerMember, TopicsNow};
use super::embedded::{self, NamedPartitions};
use super::group::{Client, Group, Member, State};
use crate::protocol::error_code as ec;
use bytes::Bytes;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Topics as (id, name, partition count).
type Catalog = [(Uuid, String, i32)];

/// Why a classic group cannot become a consumer group, if it cannot: its
/// members must be consumers whose subscriptions and assignments parse.
/// A group in the middle of a rebalance can (librdkafka takes a refusal
/// as fatal, and a rolling upgrade rebalances as members leave).
pub fn upgrade_refused(group: &Group) -> Option<String> {
    if group.protocol_type != "consumer" {
        return Some(format!(
            "its protocol type is {:?}, not consumer",
            group.protocol_type
        ));
    }
    let protocol = group.protocol.as_deref().unwrap_or_default();
    for (id, m) in &group.members {
        if metadata(m, protocol)
            .and_then(embedded::subscription)
            .is_none()
        {
            return Some(format!("member {id}'s subscription does not parse"));
        }
        if !m.assignment.is_empty() && embedded::assignment(&m.assignment).is_none() {
            return Some(format!("member {id}'s assignment does not parse"));
        }
    }
    None
}

/// The partitions of `named` that exist in `catalog`.
fn by_id(named: &NamedPartitions, catalog: &Catalog) -> Partitions {
    named
        .iter()
        .filter_map(|(topic, parts)| {
            let (id, _, count) = catalog.iter().find(|(_, n, _)| n == topic)?;
            Some(
                parts
                    .iter()
                    .filter(|p| (0..*count).contains(*p))
                    .map(move |p| (*id, *p)),
            )
        })
        .flatten()
        .collect()
}

/// `parts` by topic name, for a classic member's assignment.
fn by_name(group: &ConsumerGroup, parts: &Partitions, catalog: &Catalog) -> NamedPartitions {
    let mut out: NamedPartitions = Vec::new();
    // `parts` is sorted by topic: each topic's name is looked up once.
    let mut current: Option<(Uuid, bool)> = None;
    for (topic, p) in parts {
        if current.is_none_or(|(t, _)| t != *topic) {
            let name = group.topic_name(topic).or_else(|| {
                catalog
                    .iter()
                    .find(|(id, _, _)| id == topic)
                    .map(|(_, n, _)| n.as_str())
            });
            if let Some(name) = name {
                out.push((name.to_owned(), Vec::new()));
            }
            current = Some((*topic, name.is_some()));
        }
        if current.is_some_and(|(_, named)| named) {
            out.last_mut().expect("pushed for this topic").1.push(*p);
        }
    }
    out
}

/// A classic member's subscription in the group's protocol, or in its
/// first if the group has chosen none yet.
fn metadata<'m>(m: &'m Member, protocol: &str) -> Option<&'m [u8]> {
    m.protocols
        .iter()
        .find(|(n, _)| n == protocol)
        .or(m.protocols.first())
        .map(|(_, md)| md.as_ref())
}

/// A classic member as a consumer group's member.
fn classic_member(m: &Member, protocol: &str, now: Instant) -> ConsumerMember {
    let mut cm = ConsumerMember::new(now);
    cm.subscription.names = metadata(m, protocol)
        .and_then(embedded::subscription)
        .map(|s| s.topics)
        .unwrap_or_default();
    cm.rebalance_timeout = m.rebalance_timeout;
    cm.client = m.client.clone();
    cm.instance_id = m.instance_id.clone();
    cm.classic = Some(ClassicPart {
        protocols: m.protocols.clone(),
        session_timeout: m.session_timeout,
    });
    cm
}

/// A classic group (see [`upgrade_refused`]) as a consumer group: each
/// member keeps its partitions, at the generation as its epoch.
pub fn upgrade(mut group: Group, catalog: &Catalog, now: Instant) -> ConsumerGroup {
    // A rebalance in progress ends here: its waiting joins and syncs are
    // told to join again, as members of the consumer group. What each
    // member was assigned in the last completed rebalance is taken as
    // what it owns (an eager member that rejoined owns less, and gives
    // that up at its next join).
    for (id, m) in group.members.iter_mut() {
        if let Some(call) = m.join.take() {
            let mut resp = JoinGroupResponse::default();
            resp.error_code = ec::REBALANCE_IN_PROGRESS;
            resp.generation_id = -1;
            resp.member_id = StrBytes::from_string(id.clone());
            call.send(resp);
        }
        if let Some(call) = m.sync.take() {
            let mut resp = SyncGroupResponse::default();
            resp.error_code = ec::REBALANCE_IN_PROGRESS;
            call.send(resp);
        }
    }
    let mut cg = ConsumerGroup::new(group.id.clone());
    cg.epoch = group.generation;
    let protocol = group.protocol.clone().unwrap_or_default();
    for (id, m) in &group.members {
        let mut cm = classic_member(m, &protocol, now);
        cm.epoch = group.generation;
        cm.previous_epoch = group.generation;
        cm.assigned = embedded::assignment(&m.assignment)
            .map(|named| by_id(&named, catalog))
            .unwrap_or_default();
        cg.target.insert(id.clone(), cm.assigned.clone());
        cg.adopt(id.clone(), cm);
    }
    cg.topics = cg.topics_now(catalog);
    cg.assignment_epoch = cg.epoch;
    tracing::info!(
        group = cg.id,
        generation = cg.epoch,
        "classic group converted to a consumer group"
    );
    cg
}

/// A consumer group whose members all speak the classic protocol, as a
/// classic group rebalancing: each member must join again, and the
/// classic protocol assigns.
pub fn downgrade(
    cg: ConsumerGroup,
    catalog: &Catalog,
    now: Instant,
    initial_delay: Duration,
) -> Group {
    let mut group = Group::new(cg.id.clone());
    group.protocol_type = "consumer".to_owned();
    // The generation the members know (their epoch, which the departure
    // that triggered this did not move): their next heartbeat is then
    // answered REBALANCE_IN_PROGRESS, so they commit what they read as
    // they revoke, rather than ILLEGAL_GENERATION, which makes a client
    // drop its partitions as lost, uncommitted.
    group.generation = known_generation(&cg);
    for (id, m) in &cg.members {
        let Some(classic) = &m.classic else { continue };
        group.members.insert(
            id.clone(),
            Member {
                protocols: classic.protocols.clone(),
                session_timeout: classic.session_timeout,
                rebalance_timeout: m.rebalance_timeout,
                last_seen: now,
                join: None,
                sync: None,
                assignment: embedded::encode_assignment(&by_name(&cg, &m.assigned, catalog)),
                client: m.client.clone(),
                instance_id: m.instance_id.clone(),
            },
        );
    }
    group.protocol = group.choose_protocol();
    group.leader = group.members.keys().next().cloned();
    group.state = State::Stable;
    group.prepare_rebalance(now, initial_delay);
    tracing::info!(
        group = group.id,
        generation = group.generation,
        "consumer group converted back to a classic group"
    );
    group
}

/// The epoch most of a group's classic members are at (the newest on a
/// tie).
fn known_generation(cg: &ConsumerGroup) -> i32 {
    let epochs: Vec<i32> = cg
        .members
        .values()
        .filter(|m| m.classic.is_some())
        .map(|m| m.epoch)
        .collect();
    let count = |e: i32| epochs.iter().filter(|&&x| x == e).count();
    epochs
        .iter()
        .copied()
        .max_by_key(|&e| (count(e), e))
        .unwrap_or(cg.epoch)
}

/// What a classic member's JoinGroup brings.
pub struct ClassicJoin<'a> {
    /// The member id it gave (empty: a new member, named by `new_id`).
    pub member_id: &'a str,
    /// The id for a new member.
    pub new_id: String,
    /// "consumer", or it cannot be in a consumer group.
    pub protocol_type: &'a str,
    /// Its protocols.
    pub protocols: Vec<(String, Bytes)>,
    /// Its session and rebalance timeouts.
    pub session_timeout: Duration,
    /// How long it may take to revoke.
    pub rebalance_timeout: Duration,
    /// Who it is.
    pub client: Client,
    /// The most members the group may have (`group.consumer.max.size`).
    pub max_size: u32,
    /// Its `group.instance.id`, for a static member.
    pub instance_id: Option<String>,
    /// Whether a new dynamic member must first be given its id
    /// (JoinGroup v4+, KIP-394).
    pub requires_member_id: bool,
}

/// Whether a classic member's request naming `member_id` and
/// `instance_id` comes from the client that holds the instance id, by
/// Kafka's rule: an instance id nobody holds is UNKNOWN_MEMBER_ID, one
/// held under another member id FENCED_INSTANCE_ID.
pub fn instance_check(cg: &ConsumerGroup, member_id: &str, instance_id: Option<&str>) -> i16 {
    let Some(instance) = instance_id else {
        return ec::NONE;
    };
    match static_holder(cg, instance) {
        None => ec::UNKNOWN_MEMBER_ID,
        Some(id) if id != member_id => ec::FENCED_INSTANCE_ID,
        Some(_) => ec::NONE,
    }
}

/// The member id holding `instance`.
pub fn static_holder<'g>(cg: &'g ConsumerGroup, instance: &str) -> Option<&'g str> {
    cg.members
        .iter()
        .find(|(_, m)| m.instance_id.as_deref() == Some(instance))
        .map(|(id, _)| id.as_str())
}

/// Answers a classic member's JoinGroup into a consumer group at once.
pub fn join(
    cg: &mut ConsumerGroup,
    j: ClassicJoin<'_>,
    catalog: &TopicsNow,
    now: Instant,
) -> JoinGroupResponse {
    let mut resp = JoinGroupResponse::default();
    resp.generation_id = -1;
    resp.member_id = StrBytes::from_string(j.member_id.to_owned());
    let subscription = j
        .protocols
        .first()
        .and_then(|(_, md)| embedded::subscription(md));
    let (true, Some(subscription)) = (j.protocol_type == "consumer", subscription) else {
        resp.error_code = ec::INCONSISTENT_GROUP_PROTOCOL;
        return resp;
    };
    let instance = j.instance_id.as_deref();
    let fenced = instance_check(cg, j.member_id, instance);
    let holder = instance
        .and_then(|i| static_holder(cg, i))
        .map(str::to_owned);
    let id = if let (true, Some(old)) = (j.member_id.is_empty(), &holder) {
        // A static member's restarted client: it takes the place (epoch
        // and partitions) under a new id, as a consumer-protocol static
        // member does; one held by a live consumer-protocol member is not
        // given up.
        let m = &cg.members[old];
        if m.classic.is_none() && !m.static_away {
            resp.error_code = ec::UNRELEASED_INSTANCE_ID;
            return resp;
        }
        let mut back = ConsumerMember::new(now);
        back.instance_id = j.instance_id.clone();
        back.subscription = m.subscription.clone();
        back.rebalance_timeout = m.rebalance_timeout;
        tracing::info!(
            group = cg.id,
            instance = instance.unwrap_or_default(),
            old = old.as_str(),
            new = j.new_id.as_str(),
            "static member rejoined"
        );
        cg.replace(old, j.new_id.clone(), back);
        j.new_id
    } else if j.member_id.is_empty() {
        if instance.is_none() && j.requires_member_id {
            // As Kafka: the id first (the member joins with it next),
            // unless there is no room for it.
            if cg.members.len() >= j.max_size as usize {
                resp.error_code = ec::GROUP_MAX_SIZE_REACHED;
            } else {
                resp.member_id = StrBytes::from_string(j.new_id);
                resp.error_code = ec::MEMBER_ID_REQUIRED;
            }
            return resp;
        }
        j.new_id
    } else if fenced != ec::NONE {
        resp.error_code = fenced;
        return resp;
    } else if cg
        .members
        .get(j.member_id)
        .is_none_or(|m| m.classic.is_some())
    {
        // A classic member, or a new one with the id it was given (Kafka
        // creates the member for an id it does not know).
        j.member_id.to_owned()
    } else {
        // A consumer-protocol member's id.
        resp.error_code = ec::UNKNOWN_MEMBER_ID;
        return resp;
    };
    let joined = !cg.members.contains_key(&id);
    if joined && cg.members.len() >= j.max_size as usize {
        resp.member_id = StrBytes::default();
        resp.error_code = ec::GROUP_MAX_SIZE_REACHED;
        return resp;
    }
    if joined {
        let mut m = ConsumerMember::new(now);
        m.instance_id = j.instance_id.clone();
        cg.add(id.clone(), m);
    }
    let m = cg.members.get_mut(&id).expect("added");
    let resubscribed = m.subscription.names != subscription.topics;
    m.subscription.names = subscription.topics;
    m.rebalance_timeout = j.rebalance_timeout;
    m.last_seen = now;
    m.client = j.client;
    let classic = ClassicPart {
        protocols: j.protocols,
        session_timeout: j.session_timeout,
    };
    let cooperative = classic.cooperative();
    let protocol = classic.protocol().to_owned();
    m.classic = Some(classic);
    // An eager member gave up everything before joining; a cooperative
    // one still owns what its subscription lists.
    let owned = if cooperative {
        by_id(&subscription.owned, &catalog.topics)
    } else {
        cg.disown(&id);
        Partitions::new()
    };
    cg.refresh(catalog, joined || resubscribed);
    cg.reconcile(&id, Some(&owned), now);
    let m = &cg.members[&id];
    resp.generation_id = m.epoch;
    resp.member_id = StrBytes::from_string(id);
    resp.protocol_type = Some(StrBytes::from_static_str("consumer"));
    resp.protocol_name = Some(StrBytes::from_string(protocol));
    // Never the leader: the broker assigns.
    resp.leader = StrBytes::default();
    resp
}

/// Answers a classic member's SyncGroup: the partitions it may consume.
pub fn sync(
    cg: &mut ConsumerGroup,
    (member_id, instance_id): (&str, Option<&str>),
    generation: i32,
    catalog: &Catalog,
) -> SyncGroupResponse {
    let mut resp = SyncGroupResponse::default();
    resp.error_code = instance_check(cg, member_id, instance_id);
    if resp.error_code != ec::NONE {
        return resp;
    }
    let Some(m) = cg
        .members
        .get_mut(member_id)
        .filter(|m| m.classic.is_some())
    else {
        resp.error_code = ec::UNKNOWN_MEMBER_ID;
        return resp;
    };
    m.last_seen = Instant::now();
    if generation != m.epoch {
        resp.error_code = ec::ILLEGAL_GENERATION;
        return resp;
    }
    let protocol = m
        .classic
        .as_ref()
        .map(|c| c.protocol().to_owned())
        .unwrap_or_default();
    let assigned = m.assigned.clone();
    resp.assignment = embedded::encode_assignment(&by_name(cg, &assigned, catalog));
    resp.protocol_type = Some(StrBytes::from_static_str("consumer"));
    resp.protocol_name = Some(StrBytes::from_string(protocol));
    resp
}

/// Answers a classic member's Heartbeat: REBALANCE_IN_PROGRESS when it
/// must join again to move towards its target.
pub fn heartbeat(
    cg: &mut ConsumerGroup,
    (member_id, instance_id): (&str, Option<&str>),
    generation: i32,
    now: Instant,
) -> i16 {
    let fenced = instance_check(cg, member_id, instance_id);
    if fenced != ec::NONE {
        return fenced;
    }
    let Some(m) = cg
        .members
        .get_mut(member_id)
        .filter(|m| m.classic.is_some())
    else {
        return ec::UNKNOWN_MEMBER_ID;
    };
    m.last_seen = now;
    if generation != m.epoch {
        return ec::ILLEGAL_GENERATION;
    }
    // Partitions a cooperative member still lists as revoking are given
    // up by its next join.
    if cg.needs_rejoin(member_id) {
        ec::REBALANCE_IN_PROGRESS
    } else {
        ec::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::groups::consumer_group::Progress;

    /// Whether member `id` has reached its target at the group's epoch.
    fn settled(cg: &ConsumerGroup, id: &str) -> bool {
        let m = &cg.members[id];
        m.progress == Progress::Stable && m.epoch == cg.assignment_epoch
    }

    fn catalog() -> TopicsNow {
        TopicsNow {
            version: 1,
            topics: vec![(Uuid::from_bytes([4; 16]), "t".into(), 4)],
        }
    }

    fn subscription(owned: &[i32]) -> Bytes {
        use bytes::BufMut;
        let mut b = bytes::BytesMut::new();
        b.put_i16(1);
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(-1);
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(owned.len() as i32);
        for p in owned {
            b.put_i32(*p);
        }
        b.freeze()
    }

    fn classic_group() -> Group {
        let mut g = Group::new("g".into());
        g.protocol_type = "consumer".into();
        g.protocol = Some("range".into());
        g.generation = 5;
        g.state = State::Stable;
        for (id, parts) in [("a", vec![0, 1]), ("b", vec![2, 3])] {
            g.members.insert(
                id.into(),
                Member {
                    protocols: vec![("range".into(), subscription(&[]))],
                    session_timeout: Duration::from_secs(10),
                    rebalance_timeout: Duration::from_secs(10),
                    last_seen: Instant::now(),
                    join: None,
                    sync: None,
                    assignment: embedded::encode_assignment(&vec![("t".into(), parts)]),
                    client: Client::default(),
                    instance_id: None,
                },
            );
        }
        g
    }

    fn join_as(
        cg: &mut ConsumerGroup,
        id: &str,
        protocol: &str,
        owned: &[i32],
    ) -> JoinGroupResponse {
        let j = ClassicJoin {
            member_id: id,
            new_id: "fresh".into(),
            protocol_type: "consumer",
            protocols: vec![(protocol.into(), subscription(owned))],
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            client: Client::default(),
            max_size: u32::MAX,
            instance_id: None,
            requires_member_id: false,
        };
        join(cg, j, &catalog(), Instant::now())
    }

    #[test]
    fn a_stable_classic_group_converts_keeping_partitions_and_its_members_rejoin_to_move() {
        let g = classic_group();
        assert_eq!(upgrade_refused(&g), None);
        let mut cg = upgrade(g, &catalog().topics, Instant::now());
        assert_eq!(
            (cg.epoch, cg.assignment_epoch, cg.state()),
            (5, 5, "Stable")
        );
        assert_eq!(cg.members["a"].assigned.len(), 2);
        // Nothing changed: the classic members heartbeat on.
        assert_eq!(heartbeat(&mut cg, ("a", None), 5, Instant::now()), ec::NONE);
        assert_eq!(
            heartbeat(&mut cg, ("a", None), 4, Instant::now()),
            ec::ILLEGAL_GENERATION
        );

        // A consumer-protocol member joins: the epoch moves on, and the
        // classic members are told to rejoin.
        let mut c = ConsumerMember::new(Instant::now());
        c.subscription.names = vec!["t".into()];
        cg.add("c".into(), c);
        cg.refresh(&catalog(), true);
        cg.reconcile("c", None, Instant::now());
        assert!(
            cg.members["c"].assigned.is_empty(),
            "a and b still own all four"
        );
        assert_eq!(
            heartbeat(&mut cg, ("a", None), 5, Instant::now()),
            ec::REBALANCE_IN_PROGRESS
        );
        // a (eager) rejoins having revoked everything: it gets its target
        // at the new epoch, and what it gave up is free for c.
        let j = join_as(&mut cg, "a", "range", &[]);
        assert_eq!((j.error_code, j.generation_id), (0, 6));
        assert!(j.leader.is_empty(), "never the leader");
        let s = sync(&mut cg, ("a", None), 6, &catalog().topics);
        let mine = embedded::assignment(&s.assignment).unwrap();
        assert!(settled(&cg, "a"));
        let b = join_as(&mut cg, "b", "range", &[]);
        sync(&mut cg, ("b", None), b.generation_id, &catalog().topics);
        cg.reconcile("c", None, Instant::now());
        let total = cg.members.values().map(|m| m.assigned.len()).sum::<usize>();
        assert_eq!(total, 4, "{cg:?}");
        assert!(!cg.members["c"].assigned.is_empty());
        assert_eq!(mine[0].0, "t");

        // c leaves: every member is classic, and the group goes back to
        // the classic protocol, rebalancing.
        cg.remove("c");
        assert!(cg.all_classic());
        let epoch_a = cg.members["a"].epoch;
        assert!(epoch_a < cg.epoch, "c's departure moved the group on");
        let g = downgrade(
            cg,
            &catalog().topics,
            Instant::now(),
            Duration::from_millis(300),
        );
        assert_eq!(g.state, State::PreparingRebalance);
        // The members' heartbeats name the generation the group has, so
        // they are told to rejoin (and commit as they revoke), not that
        // their generation is wrong (which drops partitions as lost).
        assert_eq!(g.generation, epoch_a);
        assert_eq!(g.members.len(), 2);
        assert_eq!(g.protocol.as_deref(), Some("range"));
    }

    #[test]
    fn a_cooperative_member_keeps_what_it_owns_until_it_gives_it_up() {
        let mut g = classic_group();
        for m in g.members.values_mut() {
            m.protocols[0].0 = "cooperative-sticky".into();
        }
        g.protocol = Some("cooperative-sticky".into());
        let mut cg = upgrade(g, &catalog().topics, Instant::now());
        let mut c = ConsumerMember::new(Instant::now());
        c.subscription.names = vec!["t".into()];
        cg.add("c".into(), c);
        cg.refresh(&catalog(), true);
        // a rejoins still owning both of its partitions; its target has
        // fewer, so it is told to give some up at its old generation.
        let j = join_as(&mut cg, "a", "cooperative-sticky", &[0, 1]);
        assert_eq!(j.generation_id, 5);
        assert_eq!(cg.members["a"].progress, Progress::Revoking);
        assert_eq!(
            heartbeat(&mut cg, ("a", None), 5, Instant::now()),
            ec::REBALANCE_IN_PROGRESS
        );
        let kept: Vec<i32> = cg.members["a"].assigned.iter().map(|tp| tp.1).collect();
        // It revokes, rejoins owning only what it kept, and moves on.
        let j = join_as(&mut cg, "a", "cooperative-sticky", &kept);
        assert_eq!(j.generation_id, 6);
        assert!(settled(&cg, "a"));
    }

    #[test]
    fn a_classic_member_waiting_for_partitions_gets_them_when_it_rejoins() {
        let mut cg = upgrade(classic_group(), &catalog().topics, Instant::now());
        // e joins while a and b own everything: it waits at the new epoch.
        let e = join_as(&mut cg, "", "range", &[]);
        assert_eq!((e.error_code, e.generation_id), (0, 6));
        assert!(cg.members["fresh"].assigned.is_empty());
        assert_eq!(
            heartbeat(&mut cg, ("fresh", None), 6, Instant::now()),
            ec::NONE
        );
        // a gives up what e is to get (an eager rejoin)...
        join_as(&mut cg, "a", "range", &[]);
        join_as(&mut cg, "b", "range", &[]);
        // ...so e is told to rejoin, and its join hands them over (before
        // the fix, its rejoin counted as settled and it got nothing).
        assert_eq!(
            heartbeat(&mut cg, ("fresh", None), 6, Instant::now()),
            ec::REBALANCE_IN_PROGRESS
        );
        join_as(&mut cg, "fresh", "range", &[]);
        assert!(!cg.members["fresh"].assigned.is_empty());
        assert!(settled(&cg, "fresh"));
        assert_eq!(
            heartbeat(&mut cg, ("fresh", None), 6, Instant::now()),
            ec::NONE
        );
    }

    #[test]
    fn a_rebalancing_group_converts_but_one_that_is_not_of_consumers_does_not() {
        let mut g = classic_group();
        g.state = State::PreparingRebalance;
        assert_eq!(upgrade_refused(&g), None);
        let cg = upgrade(g, &catalog().topics, Instant::now());
        assert_eq!(cg.members["a"].assigned.len(), 2, "its last assignment");
        let mut g = classic_group();
        g.protocol_type = "connect".into();
        assert!(upgrade_refused(&g).is_some());
        let mut g = classic_group();
        g.members.get_mut("a").unwrap().protocols[0].1 = Bytes::from_static(b"\x00");
        assert!(upgrade_refused(&g).unwrap().contains("subscription"));
    }
}
