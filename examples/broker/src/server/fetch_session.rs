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
//! `max.incremental.fetch.session.cache.slots`); past it a full fetch is
//! answered without a session, which the protocol allows.
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
//! ([`crate::protocol::fetch_response`]), the error codes, and the
//! request types of `kafka-protocol`.

use crate::protocol::error_code as ec;
use crate::protocol::fetch_response::{FetchedPartition, FetchedTopic};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum TopicKey {
    Name(StrBytes),
    Id(Uuid),
}

impl TopicKey {
    fn of(topic: &FetchTopic, by_id: bool) -> Self {
        if by_id {
            TopicKey::Id(topic.topic_id)
        } else {
            TopicKey::Name(topic.topic.0.clone())
        }
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
            high_watermark: -1,
            log_start_offset: -1,
            last_stable_offset: -1,
        }
    }

    /// Whether the client must hear `p`: records, an error, or an offset
    /// it has not been told (Kafka's `maybeUpdateResponseData`, which also
    /// counts the last stable offset here, so a read-committed consumer
    /// hears a transaction end even where no marker moved its watermark).
    fn must_answer(&self, p: &FetchedPartition) -> bool {
        p.records.as_ref().is_some_and(|r| r.remaining() > 0)
            || p.error_code != ec::NONE
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

/// How many sessions are open and how many partitions they hold, against
/// the broker's limits. Its lock is taken when a session opens, grows,
/// shrinks or closes: never for a fetch of an unchanged session.
#[derive(Debug)]
pub struct SessionBudget {
    max_sessions: usize,
    max_partitions: usize,
    used: Mutex<Used>,
}

#[derive(Debug, Default)]
struct Used {
    sessions: usize,
    partitions: usize,
    last_id: i32,
}

impl SessionBudget {
    /// At most `max_sessions` sessions open at once (0: none) holding at
    /// most `max_partitions` partitions together.
    pub fn new(max_sessions: usize, max_partitions: usize) -> Arc<Self> {
        Arc::new(SessionBudget {
            max_sessions,
            max_partitions,
            used: Mutex::new(Used::default()),
        })
    }

    fn used(&self) -> MutexGuard<'_, Used> {
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new session's id, if one more session of `partitions` fits.
    fn open(&self, partitions: usize) -> Option<i32> {
        let mut used = self.used();
        if used.sessions >= self.max_sessions || used.partitions + partitions > self.max_partitions
        {
            return None;
        }
        used.sessions += 1;
        used.partitions += partitions;
        // Positive and never 0 (no session); unique among open sessions,
        // which number far fewer than 2^31.
        used.last_id = used.last_id % i32::MAX + 1;
        Some(used.last_id)
    }

    /// Room for `more` partitions in an open session.
    fn grow(&self, more: usize) -> bool {
        let mut used = self.used();
        if used.partitions + more > self.max_partitions {
            return false;
        }
        used.partitions += more;
        true
    }

    fn shrink(&self, fewer: usize) {
        let mut used = self.used();
        used.partitions -= fewer;
    }

    fn close(&self, partitions: usize) {
        let mut used = self.used();
        used.sessions -= 1;
        used.partitions -= partitions;
    }

    /// Sessions open now, and the partitions they hold.
    pub fn in_use(&self) -> (usize, usize) {
        let used = self.used();
        (used.sessions, used.partitions)
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
    free: Vec<u32>,
    index: HashMap<(TopicKey, i32), u32>,
    /// Places in `entries`, in fetch order.
    order: Vec<u32>,
    budget: Arc<SessionBudget>,
    /// The partitions `budget` counts for this session; `None` until it
    /// counts the session at all.
    counted: Option<usize>,
}

impl Drop for FetchSession {
    fn drop(&mut self) {
        if let Some(partitions) = self.counted {
            self.budget.close(partitions);
        }
    }
}

impl FetchSession {
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
        (place, true)
    }

    /// Removes `partition` of `topic`; whether the session had it.
    fn forget(&mut self, topic: TopicKey, partition: i32) -> bool {
        let Some(place) = self.index.remove(&(topic, partition)) else {
            return false;
        };
        self.entries[place as usize] = None;
        self.free.push(place);
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
        return open(slot, &mut held, budget, by_id, r);
    }
    let Some(session) = held.as_mut().filter(|s| s.id == r.session_id) else {
        return SessionStep::Refused(ec::FETCH_SESSION_ID_NOT_FOUND);
    };
    if session.next_epoch != r.session_epoch {
        return SessionStep::Refused(ec::INVALID_FETCH_SESSION_EPOCH);
    }
    if session.by_id != by_id {
        return SessionStep::Refused(ec::FETCH_SESSION_TOPIC_ID_ERROR);
    }
    let mut added = 0;
    for topic in &r.topics {
        let key = TopicKey::of(topic, by_id);
        for p in &topic.partitions {
            added += usize::from(session.put(&key, p).1);
        }
    }
    let mut removed = 0;
    for t in &r.forgotten_topics_data {
        let key = if by_id {
            TopicKey::Id(t.topic_id)
        } else {
            TopicKey::Name(t.topic.0.clone())
        };
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
    session.budget.shrink(removed);
    let counted = session.counted.expect("a held session is counted") - removed;
    session.counted = Some(counted);
    if !session.budget.grow(added) {
        // No room: the session is evicted, as Kafka's cache evicts one,
        // and the client starts again with a full fetch.
        *held = None;
        return SessionStep::Refused(ec::FETCH_SESSION_ID_NOT_FOUND);
    }
    session.counted = Some(counted + added);
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
) -> SessionStep {
    let mut session = FetchSession {
        id: 0,
        next_epoch: next_epoch(INITIAL_EPOCH),
        by_id,
        entries: Vec::new(),
        free: Vec::new(),
        index: HashMap::new(),
        order: Vec::new(),
        budget: budget.clone(),
        counted: None,
    };
    let mut members = Vec::new();
    for topic in &r.topics {
        let key = TopicKey::of(topic, by_id);
        for p in &topic.partitions {
            members.push(session.put(&key, p).0);
        }
    }
    let partitions = session.index.len();
    if partitions == 0 {
        // A fetch of nothing needs no session.
        return SessionStep::None;
    }
    let Some(id) = budget.open(partitions) else {
        return SessionStep::None;
    };
    session.id = id;
    session.counted = Some(partitions);
    *held = Some(session);
    SessionStep::Open {
        slot: slot.clone(),
        id,
        members,
    }
}

/// A fetch's answer as far as sessions shape it.
#[derive(Debug)]
pub struct Answered {
    /// The top-level error code (a session the request could not use).
    pub error_code: i16,
    /// The session the client may go on with (0: none).
    pub session_id: i32,
    /// The partitions the client hears.
    pub topics: Vec<FetchedTopic>,
    /// How long a client over its fetch quota must wait.
    pub throttle: Duration,
}

impl Answered {
    fn empty(error_code: i16, session_id: i32, throttle: Duration) -> Self {
        Answered {
            error_code,
            session_id,
            topics: Vec::new(),
            throttle,
        }
    }
}

fn partitions(topics: &[FetchedTopic]) -> impl Iterator<Item = &FetchedPartition> {
    topics.iter().flat_map(|t| &t.partitions)
}

impl SessionStep {
    /// The answer to the fetch from `topics`, which hold every partition
    /// the request stood for, in its order. `throttle` is shown the topics
    /// that would go out (a fetch quota counts their bytes) and says how
    /// long the client must wait for them: a throttled answer carries no
    /// topics and leaves the session as it was, so the next fetch reads
    /// the same records again (Kafka's `getThrottledResponse`).
    pub fn answer(
        &self,
        mut topics: Vec<FetchedTopic>,
        throttle: impl FnOnce(&[FetchedTopic]) -> Duration,
    ) -> Answered {
        match self {
            SessionStep::None => {
                let wait = throttle(&topics);
                if !wait.is_zero() {
                    return Answered::empty(ec::NONE, 0, wait);
                }
                Answered {
                    error_code: ec::NONE,
                    session_id: 0,
                    topics,
                    throttle: wait,
                }
            }
            SessionStep::Refused(code) => Answered::empty(*code, 0, throttle(&[])),
            SessionStep::Open { slot, id, members } => {
                let mut held = lock(slot);
                let wait = throttle(&topics);
                let Some(session) = held.as_mut().filter(|s| s.id == *id && wait.is_zero()) else {
                    // Throttled, the session goes (the client opens one
                    // next time, as after Kafka's throttled full fetch);
                    // replaced by a full fetch pipelined behind this one,
                    // it is gone already.
                    if held.as_ref().is_some_and(|s| s.id == *id) {
                        *held = None;
                    }
                    if !wait.is_zero() {
                        return Answered::empty(ec::NONE, 0, wait);
                    }
                    return Answered {
                        error_code: ec::NONE,
                        session_id: 0,
                        topics,
                        throttle: wait,
                    };
                };
                for (p, &place) in partitions(&topics).zip(members) {
                    session.entry_mut(place).told(p);
                }
                Answered {
                    error_code: ec::NONE,
                    session_id: *id,
                    topics,
                    throttle: wait,
                }
            }
            SessionStep::Incremental {
                slot,
                id,
                next_epoch,
                members,
            } => {
                let mut held = lock(slot);
                let Some(session) = held.as_mut().filter(|s| s.id == *id) else {
                    // A full fetch pipelined behind this one closed it.
                    return Answered::empty(ec::FETCH_SESSION_ID_NOT_FOUND, 0, throttle(&[]));
                };
                if session.next_epoch != *next_epoch {
                    // An incremental fetch pipelined behind this one took
                    // the session on: this answer no longer fits it.
                    return Answered::empty(ec::INVALID_FETCH_SESSION_EPOCH, 0, throttle(&[]));
                }
                // Only this fetch's answer changes the order between its
                // request and the next one's.
                debug_assert_eq!(&session.order, members);
                let mut kept = Vec::new();
                let mut each = members.iter();
                for t in &mut topics {
                    t.partitions.retain(|p| {
                        let place = *each.next().expect("one member per partition");
                        let keep = session.entry(place).must_answer(p);
                        if keep {
                            kept.push(place);
                        }
                        keep
                    });
                }
                topics.retain(|t| !t.partitions.is_empty());
                let wait = throttle(&topics);
                if !wait.is_zero() {
                    return Answered::empty(ec::NONE, *id, wait);
                }
                let mut moved = Vec::new();
                for (p, &place) in partitions(&topics).zip(&kept) {
                    session.entry_mut(place).told(p);
                    if p.records.as_ref().is_some_and(|r| r.remaining() > 0) {
                        moved.push(place);
                    }
                }
                if !moved.is_empty() {
                    // Partitions that returned records go to the back, in
                    // the order they came (`moved` follows `members`), so
                    // the next fetch's byte limit reaches the others first.
                    let mut rest = moved.iter().peekable();
                    let mut order: Vec<u32> = members
                        .iter()
                        .copied()
                        .filter(|&place| {
                            let was_moved = rest.peek() == Some(&&place);
                            if was_moved {
                                rest.next();
                            }
                            !was_moved
                        })
                        .collect();
                    order.extend_from_slice(&moved);
                    session.order = order;
                }
                Answered {
                    error_code: ec::NONE,
                    session_id: *id,
                    topics,
                    throttle: wait,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gyre_zerocopy::{FileRegion, SharedFile};
    use std::io::Write;

    fn request(epoch: i32, id: i32, topics: &[(&str, &[(i32, i64)])]) -> FetchRequest {
        let mut r = FetchRequest::default();
        r.session_id = id;
        r.session_epoch = epoch;
        for (name, parts) in topics {
            let mut t = FetchTopic::default();
            t.topic = TopicName(StrBytes::from_string(name.to_string()));
            for &(partition, offset) in *parts {
                let mut p = FetchPartition::default();
                p.partition = partition;
                p.fetch_offset = offset;
                p.partition_max_bytes = 1 << 20;
                t.partitions.push(p);
            }
            r.topics.push(t);
        }
        r
    }

    /// What the request names now, as (topic, partition, offset).
    fn named(r: &FetchRequest) -> Vec<(String, i32, i64)> {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.topic.0.to_string(), p.partition, p.fetch_offset))
            })
            .collect()
    }

    fn region() -> FileRegion {
        let path = gyre_testkit::scratch_root().join(format!(
            "gyre-fetch-session-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"records!")
            .unwrap();
        let file = SharedFile::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        FileRegion::new(file, 0, 8).unwrap()
    }

    /// An answer to every partition `r` names: high watermark `hw` for
    /// each, records where `with_records` names the partition.
    fn answer_to(
        r: &FetchRequest,
        hw: &dyn Fn(&str, i32) -> i64,
        with_records: &[(&str, i32)],
    ) -> Vec<FetchedTopic> {
        r.topics
            .iter()
            .map(|t| {
                let name = t.topic.0.to_string();
                FetchedTopic {
                    name: name.clone(),
                    id: t.topic_id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| FetchedPartition {
                            index: p.partition,
                            error_code: 0,
                            high_watermark: hw(&name, p.partition),
                            log_start_offset: 0,
                            last_stable_offset: hw(&name, p.partition),
                            aborted: Vec::new(),
                            records: with_records
                                .contains(&(name.as_str(), p.partition))
                                .then(region),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    fn heard(a: &Answered) -> Vec<(String, i32)> {
        a.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.index)))
            .collect()
    }

    fn none(_: &[FetchedTopic]) -> Duration {
        Duration::ZERO
    }

    fn flat(_: &str, _: i32) -> i64 {
        10
    }

    /// A connection with a session open on a0..a2 and b0, all at high
    /// watermark 10; its id.
    fn opened(slot: &SessionSlot, budget: &Arc<SessionBudget>) -> i32 {
        let mut r = request(0, 0, &[("a", &[(0, 0), (1, 0), (2, 0)]), ("b", &[(0, 0)])]);
        let step = plan(slot, budget, 12, &mut r);
        assert!(matches!(step, SessionStep::Open { .. }), "{step:?}");
        let a = step.answer(answer_to(&r, &flat, &[]), none);
        assert_eq!(heard(&a).len(), 4, "a full fetch answers every partition");
        assert_ne!(a.session_id, 0);
        a.session_id
    }

    #[test]
    fn old_versions_and_the_final_epoch_have_no_session() {
        let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
        let mut r = request(0, 0, &[("a", &[(0, 0)])]);
        assert!(matches!(plan(&slot, &budget, 6, &mut r), SessionStep::None));
        let mut r = request(-1, 0, &[("a", &[(0, 0)])]);
        assert!(matches!(
            plan(&slot, &budget, 12, &mut r),
            SessionStep::None
        ));
        assert_eq!(budget.in_use(), (0, 0));
        let id = opened(&slot, &budget);
        // The final epoch closes the connection's session.
        let mut r = request(-1, id, &[("a", &[(0, 0)])]);
        let step = plan(&slot, &budget, 12, &mut r);
        assert_eq!(step.answer(answer_to(&r, &flat, &[]), none).session_id, 0);
        assert_eq!(budget.in_use(), (0, 0));
    }

    #[test]
    fn an_incremental_fetch_stands_for_the_session_and_hears_only_news() {
        let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
        let id = opened(&slot, &budget);
        assert_eq!(budget.in_use(), (1, 4));
        // Nothing named, nothing changed: every partition is fetched and
        // none is answered.
        let mut r = request(1, id, &[]);
        let step = plan(&slot, &budget, 12, &mut r);
        assert_eq!(named(&r).len(), 4);
        let a = step.answer(answer_to(&r, &flat, &[]), none);
        assert_eq!((a.error_code, a.session_id), (0, id));
        assert!(heard(&a).is_empty());
        // a1's offset moved: the session fetches it from there; b0's
        // high watermark moved: it alone is answered.
        let mut r = request(2, id, &[("a", &[(1, 7)])]);
        let step = plan(&slot, &budget, 12, &mut r);
        assert!(named(&r).contains(&("a".into(), 1, 7)));
        let hw = |t: &str, p: i32| if (t, p) == ("b", 0) { 11 } else { 10 };
        let a = step.answer(answer_to(&r, &hw, &[]), none);
        assert_eq!(heard(&a), vec![("b".to_owned(), 0)]);
        // Told once, not again.
        let mut r = request(3, id, &[]);
        let step = plan(&slot, &budget, 12, &mut r);
        assert!(heard(&step.answer(answer_to(&r, &hw, &[]), none)).is_empty());
    }

    #[test]
    fn partitions_that_returned_records_go_to_the_back() {
        let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
        let id = opened(&slot, &budget);
        let mut r = request(1, id, &[]);
        let step = plan(&slot, &budget, 12, &mut r);
        let a = step.answer(answer_to(&r, &flat, &[("a", 0), ("a", 2)]), none);
        assert_eq!(heard(&a), vec![("a".to_owned(), 0), ("a".to_owned(), 2)]);
        let mut r = request(2, id, &[]);
        plan(&slot, &budget, 12, &mut r);
        let order: Vec<(String, i32)> = named(&r).into_iter().map(|(t, p, _)| (t, p)).collect();
        let expected = [("a", 1), ("b", 0), ("a", 0), ("a", 2)];
        assert_eq!(order, expected.map(|(t, p)| (t.to_owned(), p)));
        // The topic's partitions are no longer together: a runs twice.
        assert_eq!(r.topics.len(), 3);
    }

    #[test]
    fn errors_are_always_answered_and_their_end_is_too() {
        let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
        let id = opened(&slot, &budget);
        for epoch in 1..=2 {
            let mut r = request(epoch, id, &[]);
            let step = plan(&slot, &budget, 12, &mut r);
            let mut topics = answer_to(&r, &flat, &[]);
            topics[1].partitions[0].error_code = ec::KAFKA_STORAGE_ERROR;
            let a = step.answer(topics, none);
            assert_eq!(heard(&a), vec![("b".to_owned(), 0)], "epoch {epoch}");
        }
        // Healthy again at the same offsets: the client hears it.
        let mut r = request(3, id, &[]);
        let step = plan(&slot, &budget, 12, &mut r);
        let a = step.answer(answer_to(&r, &flat, &[]), none);
        assert_eq!(heard(&a), vec![("b".to_owned(), 0)]);
    }

    #[test]
    fn forgotten_partitions_leave_and_an_emptied_session_closes() {
        let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
        let id = opened(&slot, &budget);
        let mut r = request(1, id, &[("c", &[(5, 0)])]);
        let mut forget = kafka_protocol::messages::fetch_request::ForgottenTopic::default();
        forget.topic = TopicName(StrBytes::from_static_str("a"));
        forget.partitions = vec![0, 2, 9];
        r.forgotten_topics_data.push(forget);
        let step = plan(&slot, &budget, 12, &mut r);
        let names: Vec<(String, i32)> = named(&r).into_iter().map(|(t, p, _)| (t, p)).collect();
        assert_eq!(
            names,
            [("a", 1), ("b", 0), ("c", 5)].map(|(t, p)| (t.to_owned(), p))
        );
        assert_eq!(budget.in_use(), (1, 3));
        // The new partition is answered the first time.
        let a = step.answer(answer_to(&r, &flat, &[]), none);
        assert_eq!(heard(&a), vec![("c".to_owned(), 5)]);
        let mut r = request(2, id, &[]);
        let mut forget_all = Vec::new();
        for (topic, partitions) in [("a", vec![1]), ("b", vec![0]), ("c", vec![5])] {
            let mut f = kafka_protocol::messages::fetch_request::ForgottenTopic::default();
            f.topic = TopicName(StrBytes::from_static_str(topic));
            f.partitions = partitions;
            forget_all.push(f);
        }
        r.forgotten_topics_data = forget_all;
        let step = plan(&slot, &budget, 12, &mut r);
        assert!(matches!(step, SessionStep::None));
        assert!(r.topics.is_empty());
        assert_eq!(budget.in_use(), (0, 0));
        let mut r = request(3, id, &[]);
        let step = plan(&slot, &budget, 12, &mut r);
        let a = step.answer(Vec::new(), none);
        assert_eq!(a.error_code, ec::FETCH_SESSION_ID_NOT_FOUND);
    }

    #[test]
    fn a_wrong_epoch_id_or_topic_naming_is_refused() {
        let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
        let id = opened(&slot, &budget);
        for (epoch, session, version, code) in [
            (2, id, 12, ec::INVALID_FETCH_SESSION_EPOCH),
            (1, id + 1, 12, ec::FETCH_SESSION_ID_NOT_FOUND),
            (1, id, 13, ec::FETCH_SESSION_TOPIC_ID_ERROR),
        ] {
            let mut r = request(epoch, session, &[]);
            let step = plan(&slot, &budget, version, &mut r);
            assert!(
                matches!(step, SessionStep::Refused(c) if c == code),
                "{step:?}"
            );
            let a = step.answer(Vec::new(), none);
            assert_eq!((a.error_code, a.session_id), (code, 0));
        }
        // None of them cost the session its place.
        let mut r = request(1, id, &[]);
        assert!(matches!(
            plan(&slot, &budget, 12, &mut r),
            SessionStep::Incremental { .. }
        ));
    }

    #[test]
    fn a_throttled_answer_changes_nothing() {
        let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
        let id = opened(&slot, &budget);
        let wait = |_: &[FetchedTopic]| Duration::from_millis(300);
        let hw = |t: &str, p: i32| if (t, p) == ("a", 1) { 12 } else { 10 };
        let mut r = request(1, id, &[]);
        let step = plan(&slot, &budget, 12, &mut r);
        let a = step.answer(answer_to(&r, &hw, &[("a", 1)]), wait);
        assert_eq!((a.session_id, a.throttle), (id, Duration::from_millis(300)));
        assert!(a.topics.is_empty());
        // The next fetch still has the news, in the same order.
        let mut r = request(2, id, &[]);
        let step = plan(&slot, &budget, 12, &mut r);
        assert_eq!(named(&r)[1], ("a".to_owned(), 1, 0));
        let a = step.answer(answer_to(&r, &hw, &[("a", 1)]), none);
        assert_eq!(heard(&a), vec![("a".to_owned(), 1)]);
        // A throttled full fetch opens no session.
        let mut r = request(0, 0, &[("a", &[(0, 0)])]);
        let step = plan(&slot, &budget, 12, &mut r);
        let a = step.answer(answer_to(&r, &flat, &[]), wait);
        assert_eq!(a.session_id, 0);
        assert_eq!(budget.in_use(), (0, 0));
    }

    #[test]
    fn an_answer_overtaken_by_a_pipelined_fetch_does_not_touch_the_session() {
        let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
        let id = opened(&slot, &budget);
        let mut first = request(1, id, &[]);
        let step1 = plan(&slot, &budget, 12, &mut first);
        let mut second = request(2, id, &[]);
        let step2 = plan(&slot, &budget, 12, &mut second);
        let a = step1.answer(answer_to(&first, &flat, &[("a", 0)]), none);
        assert_eq!(a.error_code, ec::INVALID_FETCH_SESSION_EPOCH);
        let a = step2.answer(answer_to(&second, &flat, &[("a", 0)]), none);
        assert_eq!((a.error_code, heard(&a)), (0, vec![("a".to_owned(), 0)]));
        // A full fetch behind a full fetch: the first's session is gone.
        let mut one = request(0, 0, &[("a", &[(0, 0)])]);
        let open1 = plan(&slot, &budget, 12, &mut one);
        let mut two = request(0, 0, &[("b", &[(0, 0)])]);
        let open2 = plan(&slot, &budget, 12, &mut two);
        assert_eq!(
            open1.answer(answer_to(&one, &flat, &[]), none).session_id,
            0
        );
        assert_ne!(
            open2.answer(answer_to(&two, &flat, &[]), none).session_id,
            0
        );
        assert_eq!(budget.in_use(), (1, 1));
    }

    #[test]
    fn the_budget_bounds_sessions_and_partitions_and_gets_all_back() {
        let budget = SessionBudget::new(1, 5);
        let (one, two) = (SessionSlot::default(), SessionSlot::default());
        let id = opened(&one, &budget);
        // A second connection finds no room and goes without.
        let mut r = request(0, 0, &[("a", &[(0, 0)])]);
        assert!(matches!(plan(&two, &budget, 12, &mut r), SessionStep::None));
        // Growing past the partitions ends the session.
        let mut r = request(1, id, &[("c", &[(0, 0), (1, 0)])]);
        let step = plan(&one, &budget, 12, &mut r);
        assert!(matches!(
            step,
            SessionStep::Refused(ec::FETCH_SESSION_ID_NOT_FOUND)
        ));
        assert_eq!(budget.in_use(), (0, 0));
        // A full fetch of more than the partitions opens none.
        let mut r = request(
            0,
            0,
            &[("a", &[(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0)])],
        );
        assert!(matches!(plan(&one, &budget, 12, &mut r), SessionStep::None));
        assert_eq!(budget.in_use(), (0, 0));
        // Sessions off.
        let off = SessionBudget::new(0, 100);
        let mut r = request(0, 0, &[("a", &[(0, 0)])]);
        assert!(matches!(plan(&one, &off, 12, &mut r), SessionStep::None));
        // A dropped connection gives its session back.
        opened(&one, &budget);
        drop(one);
        assert_eq!(budget.in_use(), (0, 0));
    }

    #[test]
    fn sessions_name_topics_by_id_from_v13() {
        let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
        let id_a = Uuid::from_u128(7);
        let mut r = request(0, 0, &[("", &[(0, 0), (1, 0)])]);
        r.topics[0].topic_id = id_a;
        let step = plan(&slot, &budget, 13, &mut r);
        let id = step.answer(answer_to(&r, &flat, &[]), none).session_id;
        let mut r = request(1, id, &[]);
        let mut forget = kafka_protocol::messages::fetch_request::ForgottenTopic::default();
        forget.topic_id = id_a;
        forget.partitions = vec![0];
        r.forgotten_topics_data.push(forget);
        plan(&slot, &budget, 13, &mut r);
        assert_eq!(r.topics.len(), 1);
        assert_eq!(r.topics[0].topic_id, id_a);
        assert_eq!(r.topics[0].partitions.len(), 1);
        assert_eq!(r.topics[0].partitions[0].partition, 1);
    }

    #[test]
    fn epochs_wrap_past_the_largest_to_one() {
        assert_eq!(next_epoch(1), 2);
        assert_eq!(next_epoch(i32::MAX), 1);
    }

    mod model {
        //! Random sequences of fetches against a plain model of what the
        //! session must hold and what the client must hear.
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        type Key = (String, i32);

        #[derive(Clone, Debug)]
        enum Step {
            /// A full fetch (epoch 0, or -1 for none) of these partitions.
            Full(bool, Vec<(Key, i64)>),
            /// An incremental fetch: right epoch and id or not, partitions
            /// named, partitions forgotten.
            Incremental(bool, Vec<(Key, i64)>, Vec<Key>),
        }

        fn key() -> impl Strategy<Value = Key> {
            (prop::sample::select(vec!["a", "b", "c"]), 0..4i32)
                .prop_map(|(t, p)| (t.to_owned(), p))
        }

        fn named() -> impl Strategy<Value = Vec<(Key, i64)>> {
            prop::collection::vec((key(), 0..100i64), 0..6)
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                (any::<bool>(), named()).prop_map(|(s, n)| Step::Full(s, n)),
                (
                    prop::bool::weighted(0.9),
                    named(),
                    prop::collection::vec(key(), 0..3)
                )
                    .prop_map(|(ok, n, f)| Step::Incremental(ok, n, f)),
            ]
        }

        fn request_of(
            epoch: i32,
            id: i32,
            named: &[(Key, i64)],
            forgotten: &[Key],
        ) -> FetchRequest {
            let mut r = FetchRequest::default();
            r.session_epoch = epoch;
            r.session_id = id;
            for ((t, p), offset) in named {
                let mut topic = FetchTopic::default();
                topic.topic = TopicName(StrBytes::from_string(t.clone()));
                let mut part = FetchPartition::default();
                part.partition = *p;
                part.fetch_offset = *offset;
                topic.partitions.push(part);
                r.topics.push(topic);
            }
            for (t, p) in forgotten {
                let mut f = kafka_protocol::messages::fetch_request::ForgottenTopic::default();
                f.topic = TopicName(StrBytes::from_string(t.clone()));
                f.partitions.push(*p);
                r.forgotten_topics_data.push(f);
            }
            r
        }

        proptest! {
            #[test]
            fn sessions_hold_and_answer_what_the_model_says(
                steps in prop::collection::vec((step(), any::<u64>()), 1..40),
            ) {
                let (slot, budget) = (SessionSlot::default(), SessionBudget::new(4, 1000));
                // The model: session id, next epoch, and per partition its
                // offset and the high watermark the client was told.
                let mut model: Option<(i32, i32, BTreeMap<Key, (i64, i64)>)> = None;
                for (step, seed) in steps {
                    // Each partition's high watermark this time: a few
                    // values, so some repeat what was told.
                    let hw_of = |k: &Key| ((seed >> (k.1 * 3 + k.0.len() as i32)) % 3) as i64;
                    let (mut r, planned_full) = match &step {
                        Step::Full(session, named) => {
                            (request_of(if *session { 0 } else { -1 }, 0, named, &[]), true)
                        }
                        Step::Incremental(ok, named, forgotten) => {
                            let (id, epoch) = model.as_ref().map_or((5, 1), |m| (m.0, m.1));
                            let epoch = if *ok { epoch } else { epoch + 7 };
                            (request_of(epoch, id, named, forgotten), false)
                        }
                    };
                    let step_plan = plan(&slot, &budget, 12, &mut r);
                    let answer = answer_to(&r, &|t: &str, p: i32| hw_of(&(t.to_owned(), p)), &[]);
                    let a = step_plan.answer(answer, none);
                    match (&step, planned_full) {
                        (Step::Full(open, named), _) => {
                            let mut held = BTreeMap::new();
                            for (k, offset) in named {
                                held.insert(k.clone(), (*offset, hw_of(k)));
                            }
                            prop_assert_eq!(heard(&a).len(), named.len());
                            model = (*open && !held.is_empty()).then(|| (a.session_id, 1, held));
                            if let Some(m) = &model {
                                prop_assert_ne!(m.0, 0);
                            } else {
                                prop_assert_eq!(a.session_id, 0);
                            }
                        }
                        (Step::Incremental(ok, named, forgotten), _) => {
                            let Some(m) = model.as_mut().filter(|_| *ok) else {
                                prop_assert_ne!(a.error_code, 0);
                                prop_assert!(a.topics.is_empty());
                                continue;
                            };
                            prop_assert_eq!(a.error_code, 0);
                            for (k, offset) in named {
                                let told = m.2.get(k).map_or(-1, |e| e.1);
                                m.2.insert(k.clone(), (*offset, told));
                            }
                            for k in forgotten {
                                m.2.remove(k);
                            }
                            if m.2.is_empty() {
                                prop_assert_eq!(a.session_id, 0);
                                model = None;
                                continue;
                            }
                            // The request stood for the whole session.
                            let stood: BTreeMap<Key, i64> = named_of(&r);
                            let want: BTreeMap<Key, i64> =
                                m.2.iter().map(|(k, e)| (k.clone(), e.0)).collect();
                            prop_assert_eq!(stood, want);
                            // The client heard exactly the partitions whose
                            // high watermark it had not been told.
                            let mut expected: Vec<Key> = m
                                .2
                                .iter()
                                .filter(|(k, e)| e.1 != hw_of(k))
                                .map(|(k, _)| k.clone())
                                .collect();
                            let mut got = heard(&a);
                            expected.sort();
                            got.sort();
                            prop_assert_eq!(got, expected);
                            for (k, e) in m.2.iter_mut() {
                                e.1 = hw_of(k);
                            }
                            m.1 = next_epoch(m.1);
                            prop_assert_eq!(a.session_id, m.0);
                        }
                    }
                    let in_use = model.as_ref().map_or((0, 0), |m| (1, m.2.len()));
                    prop_assert_eq!(budget.in_use(), in_use);
                }
                drop(slot);
                prop_assert_eq!(budget.in_use(), (0, 0));
            }
        }

        fn named_of(r: &FetchRequest) -> BTreeMap<Key, i64> {
            let mut out = BTreeMap::new();
            for t in &r.topics {
                for p in &t.partitions {
                    let fresh = out.insert((t.topic.0.to_string(), p.partition), p.fetch_offset);
                    assert!(fresh.is_none(), "a partition stood twice");
                }
            }
            out
        }
    }
}
