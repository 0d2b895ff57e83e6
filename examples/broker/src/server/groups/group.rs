//! One consumer group's membership, Kafka's classic rebalance protocol:
//! members join (the first join of a rebalance waits for the others, up to
//! the rebalance timeout), the leader gets every member's subscription and
//! sends back assignments in its SyncGroup, the others get theirs from it,
//! and heartbeats keep sessions alive or tell members to rejoin.
//!
//! From JoinGroup v4 a new dynamic member is first given its id with
//! MEMBER_ID_REQUIRED (KIP-394) and joins with it: a client that retries
//! a join it timed out on then rejoins as itself rather than adding a
//! member that will never be heard from.
//!
//! A static member (KIP-345: a `group.instance.id`) is known by its
//! instance id: its client, restarted, joins with no member id and takes
//! the old member's place and assignment under a new member id, with no
//! rebalance while the group is stable; anyone still using the old id is
//! fenced (FENCED_INSTANCE_ID). A static member that has not rejoined when
//! a join phase ends keeps its place until its session expires.
//!
//! Once a join phase ends, every member of the new generation owes a
//! SyncGroup within the group's rebalance timeout (Kafka's pending sync):
//! one that has not sent it by then is removed and the group rebalances.
//! Without that, a member that heartbeats but never syncs (a client stuck
//! between its join and its sync) would hold the group: a leader that
//! never syncs would leave every follower's SyncGroup waiting, and with it
//! every later answer on their connections.

use super::call::Call;
use crate::protocol::error_code as ec;
use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// Where a group is in its rebalance cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No members.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignments.
    CompletingRebalance,
    /// Assigned and running.
    Stable,
}

impl State {
    /// Kafka's name for the state, as DescribeGroups and ListGroups report
    /// it.
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// One member.
#[derive(Debug)]
pub struct Member {
    /// (protocol name, subscription metadata), in the member's preference
    /// order.
    pub protocols: Vec<(String, Bytes)>,
    /// How long it may go without a heartbeat.
    pub session_timeout: Duration,
    /// How long a rebalance may wait for it.
    pub rebalance_timeout: Duration,
    /// When it was last heard from.
    pub last_seen: Instant,
    /// Its JoinGroup, waiting for the rebalance to complete.
    pub join: Option<Call>,
    /// Its SyncGroup, waiting for the leader's assignments.
    pub sync: Option<Call>,
    /// What the leader assigned it.
    pub assignment: Bytes,
    /// Who it is, as DescribeGroups reports.
    pub client: Client,
    /// Its `group.instance.id`, for a static member (KIP-345): it keeps its
    /// place and assignment across restarts of its client.
    pub instance_id: Option<String>,
}

/// A new member id, as Kafka makes them: the client id (or `member`) and
/// a random UUID, so ids never repeat, across restarts included (groups
/// are kept across them).
pub fn new_member_id(client_id: &str) -> String {
    let prefix = if client_id.is_empty() {
        "member"
    } else {
        client_id
    };
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    format!("{prefix}-{uuid}")
}

/// A member's client, as its JoinGroup showed it.
#[derive(Clone, Debug, Default)]
pub struct Client {
    /// The request header's client id.
    pub id: String,
    /// The connection's address, Kafka's way (`/127.0.0.1`).
    pub host: String,
}

/// A group.
#[derive(Debug)]
pub struct Group {
    /// Its id.
    pub id: String,
    /// Rebalance state.
    pub state: State,
    /// Bumped at each completed join phase.
    pub generation: i32,
    /// "consumer", usually.
    pub protocol_type: String,
    /// The assignor chosen for this generation.
    pub protocol: Option<String>,
    /// The member that assigns.
    pub leader: Option<String>,
    /// Members by id (ordered, so the leader choice is stable).
    pub members: BTreeMap<String, Member>,
    /// When the current join phase ends whoever has rejoined.
    pub rebalance_deadline: Option<Instant>,
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394) and not yet
    /// joined with, each until its session would have expired: a join
    /// phase waits for them too.
    pub pending: HashMap<String, Instant>,
    /// Members of the current generation whose SyncGroup has not arrived.
    pub pending_sync: HashSet<String>,
    /// When members still in `pending_sync` are removed.
    pub sync_deadline: Option<Instant>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: String) -> Self {
        Group {
            id,
            state: State::Empty,
            generation: 0,
            protocol_type: String::new(),
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            rebalance_deadline: None,
            pending: HashMap::new(),
            pending_sync: HashSet::new(),
            sync_deadline: None,
        }
    }

    /// The longest rebalance timeout among the members: how long a join
    /// phase, or the syncs after it, may wait.
    pub fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    /// A join phase has ended at `now`: every member owes a SyncGroup
    /// within the rebalance timeout.
    pub fn await_syncs(&mut self, now: Instant) {
        self.pending_sync = self.members.keys().cloned().collect();
        self.sync_deadline = Some(now + self.rebalance_timeout());
    }

    /// Member `id`'s SyncGroup for the current generation has arrived.
    pub fn synced(&mut self, id: &str) {
        self.pending_sync.remove(id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    /// The members whose SyncGroup did not come in time, as of `now`.
    pub fn sync_expired(&self, now: Instant) -> Vec<String> {
        let syncing = matches!(self.state, State::CompletingRebalance | State::Stable);
        match self.sync_deadline {
            Some(deadline) if syncing && now >= deadline => {
                let mut late: Vec<String> = self.pending_sync.iter().cloned().collect();
                late.sort();
                late
            }
            _ => Vec::new(),
        }
    }

    /// Starts (or extends) a join phase.
    pub fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.state != State::PreparingRebalance {
            let wait = self.rebalance_timeout();
            // A group forming from nothing waits a little for the rest of
            // its members, as Kafka's group.initial.rebalance.delay.ms.
            let wait = if self.state == State::Empty {
                initial_delay.min(wait)
            } else {
                wait
            };
            self.rebalance_deadline = Some(now + wait);
            self.pending_sync.clear();
            self.sync_deadline = None;
            // Anyone waiting on a sync from the old generation must rejoin,
            // and is told so (an answer never sent would hold every later
            // answer on its connection).
            for m in self.members.values_mut() {
                if let Some(waiting) = m.sync.take() {
                    refuse_sync(waiting, ec::REBALANCE_IN_PROGRESS);
                }
            }
        }
        self.state = State::PreparingRebalance;
    }

    /// Removes member `id`, answering what it still waits on with
    /// UNKNOWN_MEMBER_ID (as Kafka completes a removed member's join), so
    /// that no answer is left owed on its connection.
    pub fn remove_member(&mut self, id: &str) -> Option<Member> {
        let mut m = self.members.remove(id)?;
        self.synced(id);
        if let Some(join) = m.join.take() {
            refuse_join(join, ec::UNKNOWN_MEMBER_ID, "");
        }
        if let Some(sync) = m.sync.take() {
            refuse_sync(sync, ec::UNKNOWN_MEMBER_ID);
        }
        Some(m)
    }

    /// Whether a JoinGroup from `member_id` (empty: a new member) with
    /// `instance_id` may join under a bound of `max` members, by Kafka's
    /// rule: an empty group takes anyone; while members rejoin, one
    /// already waiting or one of the first `max` to rejoin; otherwise a
    /// member, or anyone while there is room. A static member's restarted
    /// client takes its old place and does not grow the group.
    pub fn accepts(&self, member_id: &str, instance_id: Option<&str>, max: usize) -> bool {
        let known = self.members.get(member_id);
        let returning =
            member_id.is_empty() && instance_id.is_some_and(|i| self.static_member(i).is_some());
        match self.state {
            State::Empty => true,
            State::PreparingRebalance => {
                known.is_some_and(|m| m.join.is_some())
                    || returning
                    || self.members.values().filter(|m| m.join.is_some()).count() < max
            }
            State::CompletingRebalance | State::Stable => {
                known.is_some() || returning || self.members.len() < max
            }
        }
    }

    /// The member id of the static member with `instance_id`.
    pub fn static_member(&self, instance_id: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(_, m)| m.instance_id.as_deref() == Some(instance_id))
            .map(|(id, _)| id.as_str())
    }

    /// Whether a request naming `member_id` and `instance_id` comes from a
    /// current member, by Kafka's `validateMember`: a static member's
    /// instance id must map to this member id (FENCED_INSTANCE_ID when a
    /// newer client took it), and the member must exist
    /// (UNKNOWN_MEMBER_ID).
    pub fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> i16 {
        if let Some(instance) = instance_id {
            match self.static_member(instance) {
                None => return ec::UNKNOWN_MEMBER_ID,
                Some(id) if id != member_id => return ec::FENCED_INSTANCE_ID,
                Some(_) => {}
            }
        }
        if self.members.contains_key(member_id) {
            ec::NONE
        } else {
            ec::UNKNOWN_MEMBER_ID
        }
    }

    /// Puts `member` (a static member's client, rejoined) in the place of
    /// `old_id`: it takes the old member's assignment and leadership under
    /// `new_id`, and whatever the old id still waits on is answered
    /// FENCED_INSTANCE_ID.
    pub fn replace_static(&mut self, old_id: &str, new_id: &str, mut member: Member) {
        if let Some(mut old) = self.members.remove(old_id) {
            if let Some(join) = old.join.take() {
                refuse_join(join, ec::FENCED_INSTANCE_ID, old_id);
            }
            if let Some(sync) = old.sync.take() {
                refuse_sync(sync, ec::FENCED_INSTANCE_ID);
            }
            member.assignment = old.assignment;
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.to_owned());
        }
        // The new client owes the sync the old one did.
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.to_owned());
        }
        self.members.insert(new_id.to_owned(), member);
    }

    /// Every member's subscription in `protocol`, as the leader's
    /// JoinGroup answer lists them.
    pub fn subscriptions(&self, protocol: &str) -> Vec<JoinGroupResponseMember> {
        self.members
            .iter()
            .map(|(id, m)| {
                let mut jm = JoinGroupResponseMember::default();
                jm.member_id = StrBytes::from_string(id.clone());
                jm.group_instance_id = m.instance_id.clone().map(StrBytes::from_string);
                jm.metadata = m
                    .protocols
                    .iter()
                    .find(|(n, _)| n == protocol)
                    .map(|(_, md)| md.clone())
                    .unwrap_or_default();
                jm
            })
            .collect()
    }

    /// The JoinGroup answer of the current generation for `member_id`:
    /// with every member's subscription when it leads.
    pub fn join_answer(&self, member_id: &str) -> JoinGroupResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let mut resp = JoinGroupResponse::default();
        resp.generation_id = self.generation;
        resp.protocol_type = Some(StrBytes::from_string(self.protocol_type.clone()));
        resp.member_id = StrBytes::from_string(member_id.to_owned());
        if leader == member_id {
            resp.members = self.subscriptions(&protocol);
        }
        resp.protocol_name = Some(StrBytes::from_string(protocol));
        resp.leader = StrBytes::from_string(leader);
        resp
    }

    /// Whether every member has rejoined.
    pub fn all_joined(&self) -> bool {
        !self.members.is_empty()
            && self.members.values().all(|m| m.join.is_some())
            && self.pending.is_empty()
    }

    /// A protocol every member supports, preferring the leader's order.
    pub fn choose_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .find(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .cloned()
    }

    /// The topics its members subscribe to, read from each member's
    /// subscription in the chosen protocol (the consumer protocol's
    /// `version i16, topics [string]` prefix); empty for a group that is
    /// not a consumer group or has not chosen a protocol.
    pub fn subscribed_topics(&self) -> Vec<String> {
        let (Some(protocol), "consumer") = (self.protocol.as_deref(), self.protocol_type.as_str())
        else {
            return Vec::new();
        };
        let mut topics = Vec::new();
        for m in self.members.values() {
            let Some((_, md)) = m.protocols.iter().find(|(n, _)| n == protocol) else {
                continue;
            };
            topics.extend(super::embedded::subscribed_topics(md));
        }
        topics.sort_unstable();
        topics.dedup();
        topics
    }

    /// Whether a member offering `protocols` can join: it shares one with
    /// every other member (all but `except`, its own old entry).
    pub fn compatible(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
        except: &str,
    ) -> bool {
        let mut others = self
            .members
            .iter()
            .filter(|(id, _)| *id != except)
            .peekable();
        if protocols.is_empty() {
            return false;
        }
        if others.peek().is_none() {
            return true;
        }
        let others: Vec<&Member> = others.map(|(_, m)| m).collect();
        self.protocol_type == protocol_type
            && protocols.iter().any(|(name, _)| {
                others
                    .iter()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
    }
}

/// Answers a JoinGroup with an error, for member id `member`.
pub fn refuse_join(to: Call, code: i16, member: &str) {
    let mut resp = JoinGroupResponse::default();
    resp.error_code = code;
    resp.generation_id = -1;
    resp.member_id = StrBytes::from_string(member.to_owned());
    to.send(resp);
}

/// Answers a SyncGroup with an error.
pub fn refuse_sync(to: Call, code: i16) {
    let mut resp = SyncGroupResponse::default();
    resp.error_code = code;
    to.send(resp);
}
