//! One consumer group's membership, Kafka's classic rebalance protocol:
//! members join (the first join of a rebalance waits for the others, up to
//! the rebalance timeout), the leader gets every member's subscription and
//! sends back assignments in its SyncGroup, the others get theirs from it,
//! and heartbeats keep sessions alive or tell members to rejoin.

use super::call::Call;
use bytes::Bytes;
use std::collections::BTreeMap;
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
        }
    }

    /// Starts (or extends) a join phase.
    pub fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.state != State::PreparingRebalance {
            let wait = self
                .members
                .values()
                .map(|m| m.rebalance_timeout)
                .max()
                .unwrap_or_default();
            // A group forming from nothing waits a little for the rest of
            // its members, as Kafka's group.initial.rebalance.delay.ms.
            let wait = if self.state == State::Empty {
                initial_delay.min(wait)
            } else {
                wait
            };
            self.rebalance_deadline = Some(now + wait);
            // Anyone waiting on a sync from the old generation must rejoin.
            for m in self.members.values_mut() {
                m.sync = None;
            }
        }
        self.state = State::PreparingRebalance;
    }

    /// Whether every member has rejoined.
    pub fn all_joined(&self) -> bool {
        !self.members.is_empty() && self.members.values().all(|m| m.join.is_some())
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
