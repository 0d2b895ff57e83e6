//! Incremental fetch sessions (KIP-227): a consumer that fetches the same
//! partitions again and again names only what changed (a partition added,
//! a fetch offset moved, a partition forgotten) and hears only what
//! changed (new records, a moved high watermark, log start or last stable
//! offset, an error). A consumer of a thousand quiet partitions otherwise
//! sends and receives a thousand entries in every fetch.
//!
//! A session belongs to the connection that opened it (Kafka's cache is
//! broker-wide, but every client opens a session per connection and
//! starts a new one after a reconnect): the connection keeps one
//! [`SessionSlot`], and a full fetch replaces what it holds. How many
//! sessions are open, and how many partitions they hold together, is
//! bounded broker-wide by a [`SessionBudget`] (Kafka's
//! `max.incremental.fetch.session.cache.slots`), which evicts idle or
//! smaller sessions to make room as Kafka's cache does; where it cannot,
//! a full fetch is answered without a session, which the protocol
//! allows.
//!
//! The request side ([`plan`]) runs on the connection's loop: it checks
//! the session id and epoch, applies the request's changes and, for an
//! incremental fetch, puts the session's partitions in the request as if
//! the client had named them all. The answer side
//! ([`SessionStep::answer`]) runs where the fetch is answered: it drops
//! what the client already knows, remembers what it was told and moves
//! partitions that returned records to the back, so a fetch bounded by
//! `max_bytes` starts next time with the partitions that got nothing.
//!
//! May use: the fetch response's plain data
//! ([`crate::protocol::fetch_response`]), the error codes, the topic name
//! rule ([`crate::topics::is_valid_name`]), and the request types of
//! `kafka-protocol`. Its parts: `budget` (the
//! broker-wide bound), this file (a session and the request side) and
//! [`answer`] (the answer side).

pub mod answer;
mod budget;

/// The broker-wide bound on sessions, each held in a connection's slot.
pub type SessionBudget = budget::Budget<Weak<Mutex<Option<FetchSession>>>>;

use crate::protocol::error_code as ec;
use crate::protocol::fetch_response::FetchedPartition;
use budget::Lease;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, Weak};
use std::time::Instant;
use uuid::Uuid;

/// The epoch of a full fetch that opens a new session.
const INITIAL_EPOCH: i32 = 0;
/// The first version whose fetches carry a session id and epoch.
const FIRST_SESSION_VERSION: i16 = 7;
/// The first version that names topics by id.
const FIRST_ID_VERSION: i16 = 13;

/// The epoch after `epoch`: it wraps past `i32::MAX` to 1, since 0 and -1
/// mean a full fetch.
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// How a session names a topic: by name before Fetch v13, by id from it.
/// A session holds each name once, shared by its partitions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum TopicKey {
    Name(StrBytes),
    Id(Uuid),
}

impl TopicKey {
    /// How a request names `topic`, for a lookup (a view of the request).
    fn view(topic: &StrBytes, id: Uuid, by_id: bool) -> Self {
        if by_id {
            TopicKey::Id(id)
        } else {
            TopicKey::Name(topic.clone())
        }
    }

    /// A name of its own, not a view of the request it came in: a view
    /// would keep that request's bytes, and their share of the server's
    /// request memory (`server::budget`), for as long as the session lasts.
    fn name(name: &StrBytes) -> Self {
        TopicKey::Name(StrBytes::from_string(name.as_str().to_owned()))
    }
}

/// One partition of a session: what the client asks of it, and what the
/// client was last told about it.
#[derive(Debug)]
struct Cached {
    topic: TopicKey,
    partition: i32,
    fetch_offset: i64,
    max_bytes: i32,
    /// The leader epoch the client knows the partition by, and that of
    /// the batch it read last (-1: none), as its last request of the
    /// partition gave them: a fetch standing for the partition is fenced
    /// and checked for divergence by them, as Kafka's session does.
    current_leader_epoch: i32,
    last_fetched_epoch: i32,
    /// Last told; -1 until the first answer, and after an error so the
    /// partition is answered again once the error clears.
    high_watermark: i64,
    log_start_offset: i64,
    last_stable_offset: i64,
}

impl Cached {
    fn new(topic: TopicKey, p: &FetchPartition) -> Self {
        Cached {
            topic,
            partition: p.partition,
            fetch_offset: p.fetch_offset,
            max_bytes: p.partition_max_bytes,
            current_leader_epoch: p.current_leader_epoch,
            last_fetched_epoch: p.last_fetched_epoch,
            high_watermark: -1,
            log_start_offset: -1,
            last_stable_offset: -1,
        }
    }

    /// Whether the client must hear `p`: records, an error, a diverging
    /// epoch, or an offset it has not been told (Kafka's
    /// `maybeUpdateResponseData`, which also counts the last stable offset
    /// here, so a read-committed consumer hears a transaction end even
    /// where no marker moved its watermark).
    fn must_answer(&self, p: &FetchedPartition) -> bool {
        p.records.as_ref().is_some_and(|r| r.remaining() > 0)
            || p.error_code != ec::NONE
            || p.diverging_epoch.is_some()
            || p.high_watermark != self.high_watermark
            || p.log_start_offset != self.log_start_offset
            || p.last_stable_offset != self.last_stable_offset
    }

    fn told(&mut self, p: &FetchedPartition) {
        self.high_watermark = if p.error_code == ec::NONE {
            p.high_watermark
        } else {
            -1
        };
        self.log_start_offset = p.log_start_offset;
        self.last_stable_offset = p.last_stable_offset;
    }
}
/// One fetch session: its partitions in the order they are fetched.
#[derive(Debug)]
pub struct FetchSession {
    id: i32,
    /// The epoch the next incremental fetch must carry.
    next_epoch: i32,
    /// Whether the session names topics by id (opened at v13 or later).
    by_id: bool,
    /// The partitions, by a place that stays put while `order` changes;
    /// `None` where one was forgotten (its place is in `free`).
    entries: Vec<Option<Cached>>,
    /// Each topic name the session holds, once, and how many of its
    /// partitions: a client adding partitions of a topic request by
    /// request does not make the session keep a copy of its name each
    /// time, and a name goes with its last partition.
    names: HashMap<StrBytes, usize>,
    free: Vec<u32>,
    index: HashMap<(TopicKey, i32), u32>,
    /// Places in `entries`, in fetch order.
    order: Vec<u32>,
    budget: Arc<SessionBudget>,
    /// What the session shares with `budget`; `None` until the budget
    /// counts the session at all.
    lease: Option<Arc<Lease>>,
}

impl Drop for FetchSession {
    fn drop(&mut self) {
        if self.lease.is_some() {
            self.budget.close(self.id);
        }
    }
}

impl FetchSession {
    /// The key the session keeps `topic` under: a name the session holds
    /// already, or a copy of the request's; `None` for a name no topic can
    /// have (longer than 249 bytes, or of other characters: a session would
    /// hold it for nothing, and a client could make it hold 32 KB a
    /// partition).
    fn key_of(&self, topic: &FetchTopic) -> Option<TopicKey> {
        if self.by_id {
            return Some(TopicKey::Id(topic.topic_id));
        }
        let name = &topic.topic.0;
        if !crate::topics::is_valid_name(name.as_str()) {
            return None;
        }
        Some(match self.names.get_key_value(name) {
            Some((held, _)) => TopicKey::Name(held.clone()),
            None => TopicKey::name(name),
        })
    }

    fn entry(&self, place: u32) -> &Cached {
        self.entries[place as usize]
            .as_ref()
            .expect("a session's order names only live places")
    }

    fn entry_mut(&mut self, place: u32) -> &mut Cached {
        self.entries[place as usize]
            .as_mut()
            .expect("a session's order names only live places")
    }

    /// Adds `p` of `topic`, or takes its new offset and size if the
    /// session has it; its place either way. Counts nothing against the
    /// budget: the caller does.
    fn put(&mut self, topic: &TopicKey, p: &FetchPartition) -> (u32, bool) {
        if let Some(&place) = self.index.get(&(topic.clone(), p.partition)) {
            let c = self.entry_mut(place);
            c.fetch_offset = p.fetch_offset;
            c.max_bytes = p.partition_max_bytes;
            c.current_leader_epoch = p.current_leader_epoch;
            c.last_fetched_epoch = p.last_fetched_epoch;
            return (place, false);
        }
        let cached = Cached::new(topic.clone(), p);
        let place = match self.free.pop() {
            Some(place) => {
                self.entries[place as usize] = Some(cached);
                place
            }
            None => {
                self.entries.push(Some(cached));
                (self.entries.len() - 1) as u32
            }
        };
        self.index.insert((topic.clone(), p.partition), place);
        self.order.push(place);
        if let TopicKey::Name(name) = topic {
            *self.names.entry(name.clone()).or_default() += 1;
        }
        (place, true)
    }

    /// Removes `partition` of `topic`; whether the session had it.
    fn forget(&mut self, topic: TopicKey, partition: i32) -> bool {
        let Some(place) = self.index.remove(&(topic, partition)) else {
            return false;
        };
        let gone = self.entries[place as usize]
            .take()
            .expect("the index names only live places");
        self.free.push(place);
        if let TopicKey::Name(name) = gone.topic {
            if let Some(count) = self.names.get_mut(&name) {
                *count -= 1;
                if *count == 0 {
                    self.names.remove(&name);
                }
            }
        }
        true
    }

    /// The session's partitions as a request's topics, consecutive
    /// partitions of one topic together, and their places in that order.
    fn as_topics(&self) -> (Vec<FetchTopic>, Vec<u32>) {
        let mut topics: Vec<FetchTopic> = Vec::new();
        let mut last: Option<&TopicKey> = None;
        for (i, &place) in self.order.iter().enumerate() {
            let c = self.entry(place);
            if last != Some(&c.topic) {
                let mut t = FetchTopic::default();
                match &c.topic {
                    TopicKey::Name(name) => t.topic = TopicName(name.clone()),
                    TopicKey::Id(id) => t.topic_id = *id,
                }
                let run = self.order[i..]
                    .iter()
                    .take_while(|&&p| self.entry(p).topic == c.topic)
                    .count();
                t.partitions.reserve_exact(run);
                topics.push(t);
                last = Some(&c.topic);
            }
            let mut p = FetchPartition::default();
            p.partition = c.partition;
            p.fetch_offset = c.fetch_offset;
            p.partition_max_bytes = c.max_bytes;
            p.current_leader_epoch = c.current_leader_epoch;
            p.last_fetched_epoch = c.last_fetched_epoch;
            topics
                .last_mut()
                .expect("a topic was pushed for this run")
                .partitions
                .push(p);
        }
        (topics, self.order.clone())
    }
}

/// The fetch session of one connection (at most one at a time).
pub type SessionSlot = Arc<Mutex<Option<FetchSession>>>;

fn lock(slot: &SessionSlot) -> MutexGuard<'_, Option<FetchSession>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a fetch does about sessions, from its request to its answer.
#[derive(Debug)]
pub enum SessionStep {
    /// No session: the request named every partition, and the answer
    /// names every one (versions before 7, a full fetch that wants no
    /// session, or one the budget had no room for).
    None,
    /// A full fetch that opened a session, kept if the fetch is answered
    /// in full.
    Open {
        /// The connection's session.
        slot: SessionSlot,
        /// The session opened.
        id: i32,
        /// The session's places of the request's partitions, in request
        /// order.
        members: Vec<u32>,
    },
    /// An incremental fetch, whose session's partitions now stand in the
    /// request.
    Incremental {
        /// The connection's session.
        slot: SessionSlot,
        /// The session fetched.
        id: i32,
        /// The epoch the session expects next now that this fetch is
        /// taken (a fetch taken after it changes it).
        next_epoch: i32,
        /// The session's places of the request's partitions, in the order
        /// they now stand in the request.
        members: Vec<u32>,
    },
    /// Refused with this top-level error before anything was fetched.
    Refused(i16),
}

/// Takes up fetch request `r` (at `version`) for the connection whose
/// session is in `slot`: checks its session id and epoch against the
/// session, applies its changes, and for an incremental fetch replaces
/// its topics with all the session's partitions, so the request is then
/// served as a full one.
pub fn plan(
    slot: &SessionSlot,
    budget: &Arc<SessionBudget>,
    version: i16,
    r: &mut FetchRequest,
) -> SessionStep {
    plan_at(slot, budget, version, r, Instant::now())
}

/// [`plan`] at `now`, the time the budget's eviction judges by.
fn plan_at(
    slot: &SessionSlot,
    budget: &Arc<SessionBudget>,
    version: i16,
    r: &mut FetchRequest,
    now: Instant,
) -> SessionStep {
    if version < FIRST_SESSION_VERSION {
        return SessionStep::None;
    }
    let by_id = version >= FIRST_ID_VERSION;
    let mut held = lock(slot);
    if r.session_epoch <= INITIAL_EPOCH {
        // A full fetch ends the connection's session, whichever id it
        // names: the connection has one session, and a client opens one
        // per connection.
        *held = None;
        if r.session_epoch < INITIAL_EPOCH {
            return SessionStep::None;
        }
        return open(slot, &mut held, budget, by_id, r, now);
    }
    let Some(session) = held.as_mut().filter(|s| s.id == r.session_id) else {
        return SessionStep::Refused(ec::FETCH_SESSION_ID_NOT_FOUND);
    };
    let lease = session.lease.as_ref().expect("a held session is counted");
    if !lease.touch(budget, now) {
        // Evicted to make room for another connection's session.
        *held = None;
        return SessionStep::Refused(ec::FETCH_SESSION_ID_NOT_FOUND);
    }
    if session.next_epoch != r.session_epoch {
        return SessionStep::Refused(ec::INVALID_FETCH_SESSION_EPOCH);
    }
    if session.by_id != by_id {
        return SessionStep::Refused(ec::FETCH_SESSION_TOPIC_ID_ERROR);
    }
    let mut added = 0;
    for topic in &r.topics {
        let Some(key) = session.key_of(topic) else {
            // A name no topic has: the session ends, and the client's full
            // fetch is answered (the topic unknown) without one.
            *held = None;
            return SessionStep::Refused(ec::FETCH_SESSION_ID_NOT_FOUND);
        };
        for p in &topic.partitions {
            added += usize::from(session.put(&key, p).1);
        }
    }
    let mut removed = 0;
    for t in &r.forgotten_topics_data {
        let key = TopicKey::view(&t.topic.0, t.topic_id, by_id);
        for &partition in &t.partitions {
            removed += usize::from(session.forget(key.clone(), partition));
        }
    }
    if removed > 0 {
        let entries = &session.entries;
        session
            .order
            .retain(|&place| entries[place as usize].is_some());
    }
    // Only the net change is counted: a request may add partitions and
    // forget more than the session held before it.
    if added >= removed {
        if added > removed {
            let Some(evicted) = budget.grow(session.id, added - removed, now) else {
                // No room (or evicted meanwhile): the session ends, and
                // the client starts again with a full fetch.
                *held = None;
                return SessionStep::Refused(ec::FETCH_SESSION_ID_NOT_FOUND);
            };
            take_out(evicted);
        }
    } else {
        budget.shrink(session.id, removed - added);
    }
    if session.order.is_empty() {
        // Nothing left to fetch: the session closes, and the answer is an
        // empty one without a session (as Kafka answers).
        *held = None;
        r.topics.clear();
        return SessionStep::None;
    }
    session.next_epoch = next_epoch(session.next_epoch);
    let (topics, members) = session.as_topics();
    r.topics = topics;
    SessionStep::Incremental {
        slot: slot.clone(),
        id: session.id,
        next_epoch: session.next_epoch,
        members,
    }
}

/// A new session of the partitions full fetch `r` names, put in `held`
/// (the connection's slot) if the budget has room for it.
fn open(
    slot: &SessionSlot,
    held: &mut Option<FetchSession>,
    budget: &Arc<SessionBudget>,
    by_id: bool,
    r: &FetchRequest,
    now: Instant,
) -> SessionStep {
    let mut session = FetchSession {
        id: 0,
        next_epoch: next_epoch(INITIAL_EPOCH),
        by_id,
        entries: Vec::new(),
        names: HashMap::new(),
        free: Vec::new(),
        index: HashMap::new(),
        order: Vec::new(),
        budget: budget.clone(),
        lease: None,
    };
    let mut members = Vec::new();
    for topic in &r.topics {
        let Some(key) = session.key_of(topic) else {
            // Answered in full, without a session.
            return SessionStep::None;
        };
        for p in &topic.partitions {
            members.push(session.put(&key, p).0);
        }
    }
    let partitions = session.index.len();
    if partitions == 0 {
        // A fetch of nothing needs no session.
        return SessionStep::None;
    }
    let Some((id, lease, evicted)) = budget.open(partitions, Arc::downgrade(slot), now) else {
        return SessionStep::None;
    };
    take_out(evicted);
    session.id = id;
    session.lease = Some(lease);
    *held = Some(session);
    SessionStep::Open {
        slot: slot.clone(),
        id,
        members,
    }
}

/// Takes sessions the budget evicted out of their connections' slots
/// where no one holds the slot now, so their memory goes with them; a
/// busy slot's connection drops its session itself at its next fetch.
/// Called holding only the caller's own slot, never an evicted session's:
/// the slot is tried, not waited for, since a loop that waited for another
/// connection's slot while holding its own could wait for ever on a loop
/// doing the same.
fn take_out(evicted: budget::Evicted<Weak<Mutex<Option<FetchSession>>>>) {
    for (id, slot) in evicted {
        let Some(slot) = slot.upgrade() else {
            continue;
        };
        let mut held = match slot.try_lock() {
            Ok(held) => held,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => continue,
        };
        if held.as_ref().is_some_and(|s| s.id == id) {
            let session = held.take();
            drop(held);
            // Its drop finds it struck off already.
            drop(session);
        }
    }
}

#[cfg(test)]
mod tests;
