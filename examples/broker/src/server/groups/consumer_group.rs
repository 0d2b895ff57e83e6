//! One consumer group of the consumer group protocol (KIP-848): its
//! members, the group epoch (bumped whenever membership, a subscription or
//! a subscribed topic's partitions change), the target assignment the
//! assignor computed for that epoch, and each member's way towards its
//! target.
//!
//! A partition is never owned by two members at once: a member first gives
//! up what its target no longer holds (its epoch stays until it says, in a
//! heartbeat listing what it owns, that it has), and only then moves to
//! the target's epoch, taking the partitions of its target that nobody
//! else still owns; the ones still owned come in later heartbeats, once
//! released. Plain data and functions; uses the assignors.

use super::assignor::{self, MemberSpec, Partitions, TopicPartition};
use super::group::Client;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Where a member is on its way to its target assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// It has its target (or all of it nobody else holds) at the
    /// assignment's epoch.
    Stable,
    /// It must give up `revoking` before it moves on.
    Revoking,
    /// At the target's epoch, waiting for partitions others still own.
    Unreleased,
}

/// A heartbeat's regular expression, matched against whole topic names.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    crate::protocol::pattern::whole_names(pattern, "SubscribedTopicRegex")
}

/// Which topics a member may describe (the ACLs' verdict for its
/// principal), for what its regular expression matches.
#[derive(Clone)]
pub struct Visible(pub std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for Visible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Visible(..)")
    }
}

/// What a member subscribes to.
#[derive(Clone, Debug, Default)]
pub struct Subscription {
    /// Topic names.
    pub names: Vec<String>,
    /// A regular expression over topic names (ConsumerGroupHeartbeat v1).
    pub regex: Option<(String, regex::Regex)>,
    /// With the authorizer on, the topics its principal may describe:
    /// the regular expression matches only those, as in Kafka (named
    /// topics are checked as the heartbeat arrives).
    pub visible: Option<Visible>,
}

impl Subscription {
    /// Whether topic `name` is subscribed to.
    pub fn matches(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
            || (self.regex.as_ref().is_some_and(|(_, re)| re.is_match(name))
                && self.visible.as_ref().is_none_or(|v| (v.0)(name)))
    }
}

/// What a member that speaks the classic protocol (JoinGroup, SyncGroup,
/// Heartbeat) in a consumer group keeps of it.
#[derive(Clone, Debug)]
pub struct ClassicPart {
    /// The protocols (assignor names and subscriptions) it offered.
    pub protocols: Vec<(String, bytes::Bytes)>,
    /// Its own session timeout.
    pub session_timeout: Duration,
}

impl ClassicPart {
    /// The protocol it is answered under: the first it offered.
    pub fn protocol(&self) -> &str {
        self.protocols.first().map_or("", |(name, _)| name)
    }

    /// Whether it revokes only what it loses (cooperative rebalancing),
    /// rather than everything before each join (eager).
    pub fn cooperative(&self) -> bool {
        self.protocol() == "cooperative-sticky"
    }
}

/// One member.
#[derive(Debug)]
pub struct ConsumerMember {
    /// Its epoch: the assignment epoch it last reached.
    pub epoch: i32,
    /// The epoch before (a heartbeat whose answer was lost comes with it).
    pub previous_epoch: i32,
    /// Where it is on its way to its target.
    pub progress: Progress,
    /// What it owns and may consume.
    pub assigned: Partitions,
    /// What it owns and must give up.
    pub revoking: Partitions,
    /// Its static identity, if any.
    pub instance_id: Option<String>,
    /// Its rack, as it said.
    pub rack_id: Option<String>,
    /// How long it may take to give up partitions.
    pub rebalance_timeout: Duration,
    /// What it subscribes to.
    pub subscription: Subscription,
    /// The assignor it asked for, if any.
    pub server_assignor: Option<String>,
    /// Who it is, for describing.
    pub client: Client,
    /// When it was last heard from.
    pub last_seen: Instant,
    /// When it must have given up `revoking`.
    pub revoke_deadline: Option<Instant>,
    /// A static member that left for now (epoch -2): its place is kept
    /// for its instance id until its session ends.
    pub static_away: bool,
    /// Set for a member of the classic protocol (a consumer group's
    /// members may be of either while a group migrates).
    pub classic: Option<ClassicPart>,
}

impl ConsumerMember {
    /// A member joining with nothing.
    pub fn new(now: Instant) -> Self {
        ConsumerMember {
            epoch: 0,
            previous_epoch: 0,
            progress: Progress::Stable,
            assigned: Partitions::new(),
            revoking: Partitions::new(),
            instance_id: None,
            rack_id: None,
            rebalance_timeout: Duration::from_secs(300),
            subscription: Subscription::default(),
            server_assignor: None,
            client: Client::default(),
            last_seen: now,
            revoke_deadline: None,
            static_away: false,
            classic: None,
        }
    }
}

/// The topics a group subscribes to, as they were when its epoch was last
/// bumped: (id, name, partition count), sorted by name.
pub type TopicsSeen = Vec<(Uuid, String, i32)>;

/// Every topic as the catalog had it at `version` (see
/// [`Catalog::version`](crate::topics::Catalog::version)).
#[derive(Debug, Default)]
pub struct TopicsNow {
    /// The catalog's version.
    pub version: u64,
    /// (id, name, partition count), sorted by name.
    pub topics: Vec<(Uuid, String, i32)>,
}

/// One consumer group.
#[derive(Debug)]
pub struct ConsumerGroup {
    /// Its id.
    pub id: String,
    /// Bumped whenever the assignment must be computed again.
    pub epoch: i32,
    /// The epoch `target` was computed for.
    pub assignment_epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, ConsumerMember>,
    /// Each member's target assignment.
    pub target: BTreeMap<String, Partitions>,
    /// Who owns each owned partition (assigned or revoking).
    owners: HashMap<TopicPartition, String>,
    /// The subscribed topics the target was computed over.
    pub topics: TopicsSeen,
    /// The assignor of the current target.
    pub assignor: &'static str,
    /// The catalog version `topics` was taken at, and whether members
    /// changed since (either makes the next refresh look again).
    topics_version: Option<u64>,
}

impl ConsumerGroup {
    /// A new group with no members.
    pub fn new(id: String) -> Self {
        ConsumerGroup {
            id,
            epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            owners: HashMap::new(),
            topics: Vec::new(),
            assignor: assignor::NAMES[0],
            topics_version: None,
        }
    }

    /// Kafka's name for the group's state, as ListGroups and
    /// ConsumerGroupDescribe report it.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.epoch != self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || m.progress != Progress::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// A group as it was written: ownership is rebuilt from what each
    /// member owns, and the topics are matched against `topics` now (a
    /// topic gone or grown while the broker was down moves the epoch on
    /// at the next refresh).
    pub fn restore(
        id: String,
        (epoch, assignment_epoch): (i32, i32),
        assignor: &'static str,
        members: BTreeMap<String, ConsumerMember>,
        target: BTreeMap<String, Partitions>,
        topics: &TopicsNow,
    ) -> Self {
        let mut g = ConsumerGroup::new(id);
        g.epoch = epoch;
        g.assignment_epoch = assignment_epoch;
        g.assignor = assignor;
        g.target = target;
        for (member_id, m) in &members {
            for tp in m.assigned.iter().chain(&m.revoking) {
                g.owners.insert(*tp, member_id.clone());
            }
        }
        g.members = members;
        g.topics = g.topics_now(&topics.topics);
        g.topics_version = Some(topics.version);
        g
    }

    /// Adds a member; the caller moves the epoch on with
    /// [`refresh`](Self::refresh), once for all a heartbeat changed.
    pub fn add(&mut self, id: String, member: ConsumerMember) {
        self.members.insert(id, member);
        self.topics_version = None;
    }

    /// Removes a member, releasing what it owned (the epoch moves on).
    pub fn remove(&mut self, id: &str) -> Option<ConsumerMember> {
        let gone = self.members.remove(id)?;
        self.target.remove(id);
        self.topics_version = None;
        for tp in gone.assigned.iter().chain(&gone.revoking) {
            if self.owners.get(tp).is_some_and(|o| o == id) {
                self.owners.remove(tp);
            }
        }
        self.epoch += 1;
        Some(gone)
    }

    /// Hands member `from`'s place, with its epoch and partitions, to `to`
    /// (a static member coming back under a new member id); the epoch
    /// stays, as nothing changes for the others.
    pub fn replace(&mut self, from: &str, to: String, mut member: ConsumerMember) {
        let Some(old) = self.members.remove(from) else {
            return;
        };
        for tp in old.assigned.iter().chain(&old.revoking) {
            self.owners.insert(*tp, to.clone());
        }
        member.epoch = old.epoch;
        member.previous_epoch = old.previous_epoch;
        member.progress = old.progress;
        member.assigned = old.assigned;
        member.revoking = old.revoking;
        member.revoke_deadline = old.revoke_deadline;
        if let Some(t) = self.target.remove(from) {
            self.target.insert(to.clone(), t);
        }
        self.members.insert(to, member);
    }

    /// Adds a member that already owns its `assigned` partitions (a
    /// classic member of a group converted to this protocol).
    pub fn adopt(&mut self, id: String, member: ConsumerMember) {
        self.topics_version = None;
        for tp in &member.assigned {
            self.owners.insert(*tp, id.clone());
        }
        self.members.insert(id, member);
    }

    /// Takes away everything member `id` owns and sends it back to epoch 0
    /// (it was fenced, or rejoins having lost its partitions).
    pub fn reset(&mut self, id: &str) {
        self.disown(id);
        if let Some(m) = self.members.get_mut(id) {
            m.epoch = 0;
            m.previous_epoch = 0;
        }
    }

    /// Takes away everything member `id` owns, keeping its epoch (a classic
    /// member that revoked everything before joining again).
    pub fn disown(&mut self, id: &str) {
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        for tp in m.assigned.iter().chain(&m.revoking) {
            if self.owners.get(tp).is_some_and(|o| o == id) {
                self.owners.remove(tp);
            }
        }
        m.assigned.clear();
        m.revoking.clear();
        // Owning nothing, it waits for its target's partitions (the next
        // reconciliation hands over those nobody else owns).
        m.progress = Progress::Unreleased;
        m.revoke_deadline = None;
    }

    /// Whether a classic member must join again to move towards its
    /// target: the group moved on, it must give partitions up, or
    /// partitions it waits for have been released.
    pub fn needs_rejoin(&self, id: &str) -> bool {
        let Some(m) = self.members.get(id) else {
            return false;
        };
        match m.progress {
            _ if m.epoch != self.assignment_epoch => true,
            Progress::Revoking => true,
            Progress::Stable => false,
            Progress::Unreleased => self
                .target
                .get(id)
                .into_iter()
                .flatten()
                .any(|tp| !m.assigned.contains(tp) && !self.owners.contains_key(tp)),
        }
    }

    /// Whether every member speaks the classic protocol (the group goes
    /// back to being a classic group).
    pub fn all_classic(&self) -> bool {
        !self.members.is_empty() && self.members.values().all(|m| m.classic.is_some())
    }

    /// The subscribed topics as `catalog` has them now: each topic some
    /// member subscribes to, with its id and partition count. Members
    /// often share a subscription, so each distinct one is tried once per
    /// topic.
    pub fn topics_now(&self, catalog: &[(Uuid, String, i32)]) -> TopicsSeen {
        let names: std::collections::HashSet<&str> = self
            .members
            .values()
            .flat_map(|m| m.subscription.names.iter().map(String::as_str))
            .collect();
        let mut patterns: Vec<&regex::Regex> = Vec::new();
        let regexes = self
            .members
            .values()
            .filter_map(|m| m.subscription.regex.as_ref());
        for (_, re) in regexes {
            if !patterns.iter().any(|known| known.as_str() == re.as_str()) {
                patterns.push(re);
            }
        }
        // A topic a pattern matches is subscribed to if some member with a
        // pattern may describe it.
        catalog
            .iter()
            .filter(|(_, name, _)| {
                names.contains(name.as_str())
                    || (patterns.iter().any(|re| re.is_match(name))
                        && self.members.values().any(|m| m.subscription.matches(name)))
            })
            .cloned()
            .collect()
    }

    /// Moves the epoch on if `changed` (members joined or changed what
    /// they subscribe to) or the subscribed topics changed (created,
    /// deleted, grown, or newly matched), once for both, then computes
    /// the target for the epoch if it is not yet computed. The topics are
    /// matched again only when the catalog or the members changed, so a
    /// heartbeat that changes nothing matches no topic name.
    pub fn refresh(&mut self, catalog: &TopicsNow, changed: bool) {
        if changed || self.topics_version != Some(catalog.version) {
            let now = self.topics_now(&catalog.topics);
            self.topics_version = Some(catalog.version);
            if now != self.topics || changed {
                self.topics = now;
                self.epoch += 1;
            }
        }
        if self.assignment_epoch == self.epoch {
            return;
        }
        self.assignor = self.chosen_assignor();
        let counts: BTreeMap<Uuid, i32> = self.topics.iter().map(|(id, _, n)| (*id, *n)).collect();
        let specs: Vec<MemberSpec<'_>> = self
            .members
            .iter()
            .map(|(id, m)| MemberSpec {
                id,
                topics: self
                    .topics
                    .iter()
                    .filter(|(_, name, _)| m.subscription.matches(name))
                    .map(|(tid, _, _)| *tid)
                    .collect(),
                previous: self.target.get(id),
            })
            .collect();
        self.target = assignor::assign(self.assignor, &specs, &counts);
        self.assignment_epoch = self.epoch;
    }

    /// The assignor most members asked for (the default, `uniform`, when
    /// none did or on a tie with it).
    fn chosen_assignor(&self) -> &'static str {
        let votes = |name: &str| {
            self.members
                .values()
                .filter(|m| m.server_assignor.as_deref() == Some(name))
                .count()
        };
        assignor::NAMES
            .iter()
            .copied()
            .max_by_key(|n| {
                (
                    votes(n),
                    std::cmp::Reverse(assignor::NAMES.iter().position(|x| x == n)),
                )
            })
            .unwrap_or(assignor::NAMES[0])
    }

    /// Moves member `id` towards its target. `owned` is what the member
    /// said it owns, if it said: it has given up its revoked partitions
    /// once none of them is among those. Returns whether what it may
    /// consume changed.
    pub fn reconcile(
        &mut self,
        id: &str,
        owned: Option<&BTreeSet<TopicPartition>>,
        now: Instant,
    ) -> bool {
        let assignment_epoch = self.assignment_epoch;
        // The target, the member and the owners are separate fields, so
        // nothing is copied: most heartbeats find the member where it was.
        let empty = Partitions::new();
        let target = self.target.get(id).unwrap_or(&empty);
        let Some(m) = self.members.get_mut(id) else {
            return false;
        };
        if m.progress == Progress::Revoking {
            let given_up = owned.is_some_and(|o| o.is_disjoint(&m.revoking));
            if !given_up {
                return false;
            }
            for tp in std::mem::take(&mut m.revoking) {
                if self.owners.get(&tp).is_some_and(|o| o == id) {
                    self.owners.remove(&tp);
                }
            }
            m.revoke_deadline = None;
            // Its epoch is still the one before the target's (a member is
            // only asked to give up partitions on its way to a newer
            // target), so it moves on below.
            m.progress = Progress::Stable;
        }
        if m.epoch == assignment_epoch && m.progress == Progress::Stable {
            return false;
        }
        let revoke: Partitions = m.assigned.difference(target).copied().collect();
        if !revoke.is_empty() {
            m.assigned.retain(|tp| target.contains(tp));
            m.revoking = revoke;
            m.progress = Progress::Revoking;
            m.revoke_deadline = Some(now + m.rebalance_timeout);
            return true;
        }
        let (mut missing, mut gained) = (false, false);
        for tp in target {
            if m.assigned.contains(tp) {
                continue;
            }
            match self.owners.get(tp) {
                Some(owner) if owner != id => missing = true,
                _ => {
                    m.assigned.insert(*tp);
                    self.owners.insert(*tp, id.to_owned());
                    gained = true;
                }
            }
        }
        if m.epoch != assignment_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
        }
        m.progress = if missing {
            Progress::Unreleased
        } else {
            Progress::Stable
        };
        gained
    }

    /// The subscribed topics' names of a set of partitions, for answers
    /// that carry them.
    pub fn topic_name(&self, id: &Uuid) -> Option<&str> {
        self.topics
            .iter()
            .find(|(tid, _, _)| tid == id)
            .map(|(_, name, _)| name.as_str())
    }

    /// Whether any member subscribes to topic `name`.
    pub fn subscribes_to(&self, name: &str) -> bool {
        self.members.values().any(|m| m.subscription.matches(name))
    }

    /// Members whose session ended or who did not give up partitions in
    /// time, and why.
    pub fn expired(&self, now: Instant, session: Duration) -> Vec<(String, &'static str)> {
        self.members
            .iter()
            .filter_map(|(id, m)| {
                let session = m.classic.as_ref().map_or(session, |c| c.session_timeout);
                if now.saturating_duration_since(m.last_seen) > session {
                    Some((id.clone(), "session expired"))
                } else if m.revoke_deadline.is_some_and(|d| now > d) {
                    Some((
                        id.clone(),
                        "did not give up its partitions within its rebalance timeout",
                    ))
                } else {
                    None
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic() -> Uuid {
        Uuid::from_bytes([7; 16])
    }

    /// The topic `t`, at a catalog version of its partition count.
    fn catalog(partitions: i32) -> TopicsNow {
        TopicsNow {
            version: partitions as u64,
            topics: vec![(topic(), "t".into(), partitions)],
        }
    }

    fn member(now: Instant) -> ConsumerMember {
        let mut m = ConsumerMember::new(now);
        m.subscription.names = vec!["t".into()];
        m
    }

    fn owned(g: &ConsumerGroup, id: &str) -> BTreeSet<TopicPartition> {
        g.members[id].assigned.clone()
    }

    /// No partition is in two members' hands (assigned or revoking).
    fn exclusive(g: &ConsumerGroup) {
        let mut seen = BTreeSet::new();
        for m in g.members.values() {
            for tp in m.assigned.iter().chain(&m.revoking) {
                assert!(seen.insert(*tp), "{tp:?} owned twice: {g:?}");
            }
        }
    }

    #[test]
    fn a_partition_moves_only_after_its_owner_gives_it_up() {
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g".into());
        g.add("a".into(), member(now));
        g.refresh(&catalog(4), true);
        assert!(g.reconcile("a", None, now));
        assert_eq!(g.members["a"].assigned.len(), 4);
        assert_eq!((g.members["a"].epoch, g.state()), (1, "Stable"));

        // b joins: the target splits 2/2, but b gets nothing a still has.
        g.add("b".into(), member(now));
        g.refresh(&catalog(4), true);
        assert_eq!(g.state(), "Reconciling");
        assert!(!g.reconcile("b", None, now));
        assert_eq!(g.members["b"].progress, Progress::Unreleased);
        assert!(g.members["b"].assigned.is_empty());
        assert_eq!(g.members["b"].epoch, 2);
        // a is told to give up two; its epoch stays until it has.
        assert!(g.reconcile("a", None, now));
        assert_eq!(g.members["a"].progress, Progress::Revoking);
        assert_eq!(
            (g.members["a"].assigned.len(), g.members["a"].revoking.len()),
            (2, 2)
        );
        assert_eq!(g.members["a"].epoch, 1);
        exclusive(&g);
        // A heartbeat still listing a revoked partition changes nothing.
        let all: BTreeSet<_> = (0..4).map(|p| (topic(), p)).collect();
        assert!(!g.reconcile("a", Some(&all), now));
        assert_eq!(g.members["a"].progress, Progress::Revoking);
        // Given up: a reaches epoch 2; b gets them on its next heartbeat.
        let a_now = owned(&g, "a");
        g.reconcile("a", Some(&a_now), now);
        assert_eq!(
            (g.members["a"].epoch, g.members["a"].progress),
            (2, Progress::Stable)
        );
        assert!(g.reconcile("b", None, now));
        assert_eq!(g.members["b"].assigned.len(), 2);
        assert_eq!(g.state(), "Stable");
        exclusive(&g);

        // a leaves: b takes everything at the next epoch.
        g.remove("a");
        g.refresh(&catalog(4), false);
        assert!(g.reconcile("b", None, now));
        assert_eq!(
            (g.members["b"].assigned.len(), g.members["b"].epoch),
            (4, 3)
        );
        // The topic grows: the epoch moves on and b gets the new ones.
        g.refresh(&catalog(6), false);
        assert!(g.reconcile("b", None, now));
        assert_eq!(
            (g.members["b"].assigned.len(), g.members["b"].epoch),
            (6, 4)
        );
    }

    #[test]
    fn members_that_stop_heartbeating_or_hold_revoked_partitions_expire() {
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g".into());
        g.add("a".into(), member(now));
        g.refresh(&catalog(2), true);
        g.reconcile("a", None, now);
        let mut b = member(now);
        b.rebalance_timeout = Duration::from_secs(5);
        g.add("b".into(), b);
        g.refresh(&catalog(2), true);
        g.members.get_mut("a").unwrap().rebalance_timeout = Duration::from_secs(5);
        g.reconcile("a", None, now);
        let session = Duration::from_secs(45);
        assert!(g.expired(now + Duration::from_secs(4), session).is_empty());
        assert_eq!(
            g.expired(now + Duration::from_secs(6), session),
            [(
                "a".to_owned(),
                "did not give up its partitions within its rebalance timeout"
            )]
        );
        g.members.get_mut("a").unwrap().last_seen = now + Duration::from_secs(60);
        g.members.get_mut("a").unwrap().revoke_deadline = None;
        assert_eq!(
            g.expired(now + Duration::from_secs(50), session),
            [("b".to_owned(), "session expired")]
        );
    }

    #[test]
    fn a_regex_subscription_follows_topics_as_they_come_and_go() {
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g".into());
        let mut m = ConsumerMember::new(now);
        m.subscription.regex = Some((
            "^orders-.*".into(),
            regex::Regex::new("^orders-.*").unwrap(),
        ));
        g.add("a".into(), m);
        let (x, y) = (Uuid::from_bytes([1; 16]), Uuid::from_bytes([2; 16]));
        let mut cat = vec![(x, "orders-eu".to_owned(), 2), (y, "other".to_owned(), 3)];
        g.refresh(
            &TopicsNow {
                version: 1,
                topics: cat.clone(),
            },
            true,
        );
        g.reconcile("a", None, now);
        assert_eq!(g.members["a"].assigned.len(), 2);
        cat.push((Uuid::from_bytes([3; 16]), "orders-us".into(), 1));
        let epoch = g.epoch;
        g.refresh(
            &TopicsNow {
                version: 2,
                topics: cat.clone(),
            },
            false,
        );
        assert_eq!(g.epoch, epoch + 1);
        g.reconcile("a", None, now);
        assert_eq!(g.members["a"].assigned.len(), 3);
    }

    #[test]
    fn topics_are_matched_again_only_when_the_catalog_or_the_members_change() {
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g".into());
        g.add("a".into(), member(now));
        g.refresh(&catalog(2), true);
        let epoch = g.epoch;
        // The same catalog version: nothing is matched, whatever the copy
        // holds (a copy of the same version holds the same topics).
        let same_version = TopicsNow {
            version: 2,
            topics: Vec::new(),
        };
        g.refresh(&same_version, false);
        assert_eq!((g.epoch, g.topics.len()), (epoch, 1));
        // A new version is looked at.
        g.refresh(&catalog(3), false);
        assert_eq!((g.epoch, g.topics[0].2), (epoch + 1, 3));
        // So is any change of members, whatever the version.
        g.remove("a");
        g.add("b".into(), member(now));
        g.refresh(&catalog(3), true);
        assert_eq!(g.epoch, epoch + 3);
    }

    #[test]
    fn a_regex_matches_only_topics_its_member_may_describe() {
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g".into());
        let mut m = ConsumerMember::new(now);
        m.subscription.regex = Some(("orders-.*".into(), compile_regex("orders-.*").unwrap()));
        m.subscription.visible = Some(Visible(std::sync::Arc::new(|t: &str| t != "orders-us")));
        g.add("a".into(), m);
        let cat = TopicsNow {
            version: 1,
            topics: vec![
                (Uuid::from_bytes([1; 16]), "orders-eu".to_owned(), 2),
                (Uuid::from_bytes([2; 16]), "orders-us".to_owned(), 2),
            ],
        };
        g.refresh(&cat, true);
        g.reconcile("a", None, now);
        assert_eq!(g.topics.len(), 1, "{:?}", g.topics);
        assert!(g.members["a"]
            .assigned
            .iter()
            .all(|tp| tp.0 == Uuid::from_bytes([1; 16])));
        assert_eq!(g.members["a"].assigned.len(), 2);
        // A name is the member's own choice (checked as it arrives).
        g.members.get_mut("a").unwrap().subscription.names = vec!["orders-us".into()];
        g.refresh(&cat, true);
        assert_eq!(g.topics.len(), 2);
    }

    #[test]
    fn the_assignor_most_members_ask_for_is_used() {
        let now = Instant::now();
        let mut g = ConsumerGroup::new("g".into());
        g.add("a".into(), member(now));
        g.refresh(&catalog(1), true);
        assert_eq!(g.assignor, "uniform");
        let mut b = member(now);
        b.server_assignor = Some("range".into());
        g.add("b".into(), b);
        g.refresh(&catalog(1), true);
        assert_eq!(g.assignor, "range");
    }
}
