//! Share groups' delivery (KIP-932), on the log writer: which records of
//! each partition a share group has delivered to which member, the
//! share sessions its members fetch through, and the state kept across
//! restarts.
//!
//! A share group's members consume a partition together: each ShareFetch
//! acquires for its member records no other member holds, for a lock
//! time; the member acknowledges them (accept, release, reject) with its
//! next ShareFetch or a ShareAcknowledge; a released record, or one
//! whose lock ran out, goes to the next fetch, until it has been
//! delivered as often as the group allows. The group coordinator owns
//! membership and tells the writer who joins and leaves
//! ([`MemberChange`]): only members may fetch, and a member's records go
//! back when it leaves.
//!
//! It lives on the writer because a share fetch reads the log and long
//! polls as a fetch does: one thread owns the logs and the delivery
//! state, so neither needs a lock, and a fetch parked for records is
//! looked at again when an append, an acknowledgement or a lock running
//! out could serve it.
//!
//! Parts: [`partition`] (one share-partition's state), [`state_file`]
//! (durability), [`job`] (the requests and answers), [`member_map`]
//! (members and sessions found by borrowed ids), this file (the
//! sessions, members, and serving a request). Uses the storage and the
//! log; nothing of the network.

pub mod group_config;
pub mod job;
pub mod member_map;
pub mod partition;
pub mod state_file;

pub use group_config::StartAt;

use crate::log::batch::BatchHeader;
use crate::protocol::error_code as ec;
use crate::storage::Storage;
use crate::topics::PartitionId;
use group_config::{GroupConfig, GroupDefaults};
use job::{
    MemberChange, OffsetsAnswer, OffsetsJob, PartAcks, ShareAnswer, ShareFetchJob, SharePart,
    SharePartAnswer,
};
use member_map::MemberMap;
use partition::{AckError, BatchSpan, Limits, MemberKey, SharePartition};
use state_file::{ShareKey, StateFile};
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use uuid::Uuid;

/// A member's share session: the partitions it fetches and the epoch
/// its next request must carry.
#[derive(Debug)]
struct Session {
    /// The member's number, kept after it leaves the group so its last
    /// acknowledgements still land.
    member: MemberKey,
    /// When its member left the group (ms): the session is dropped once
    /// the locks it could hold have run out.
    orphaned_at: Option<u64>,
    next_epoch: i32,
    parts: Vec<SharePart>,
    /// Where the next fetch starts among `parts`, so that a fetch bounded
    /// by its records does not serve the same partitions first each time.
    rotate: usize,
}

/// A request begun: its member, and its acknowledgements' outcomes.
#[derive(Debug)]
pub struct Begun {
    member: MemberKey,
    acked: Vec<SharePartAnswer>,
}

impl Begun {
    /// The acknowledgements' outcomes, per partition acknowledged.
    pub fn into_acked(self) -> Vec<SharePartAnswer> {
        self.acked
    }
}

/// The share groups' delivery state.
///
/// ```
/// use gyre_broker::share::group_config::GroupDefaults;
/// use gyre_broker::share::job::MemberChange;
/// use gyre_broker::share::partition::Limits;
/// use gyre_broker::share::{Shares, StartAt};
/// use gyre_broker::topic_config::ConfigChange;
///
/// # let dir = std::env::temp_dir().join(format!("gyre-doc-shares-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let broker = GroupDefaults::default();
/// let mut shares = Shares::open(&dir, Limits::default(), broker)?;
/// // The coordinator's word that a member joined: it may fetch now.
/// shares.member_change(MemberChange::Joined { group: "g".into(), member: "m".into() });
/// // A group's own config, kept in the state file.
/// let earliest = ConfigChange::Set("share.auto.offset.reset".into(), "earliest".into());
/// shares.alter_config("g", &[earliest], false).expect("a config the broker serves");
/// let reopened = Shares::open(&dir, Limits::default(), broker)?;
/// assert_eq!(reopened.published_configs().lock().unwrap()["g"].start_at, Some(StartAt::Earliest));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Shares {
    partitions: HashMap<ShareKey, SharePartition>,
    /// The members the coordinator says are in a share group.
    members: MemberMap<MemberKey>,
    next_member: MemberKey,
    sessions: MemberMap<Session>,
    file: StateFile,
    /// Changed since last written.
    dirty: HashSet<ShareKey>,
    /// The keys being written, kept between writes (one comes with each
    /// acknowledgement).
    writing: Vec<ShareKey>,
    /// Written since last synced.
    unsynced: bool,
    limits: Limits,
    /// The broker's settings the groups' configs fall back to (the lock
    /// is `limits`'s).
    defaults: GroupDefaults,
    /// Each group's own configs (those it set), and a copy the loops
    /// read to describe them.
    configs: HashMap<String, GroupConfig>,
    published: GroupConfigs,
    /// The clock locks run on.
    epoch: Instant,
    /// No lock runs out before this (ms on `epoch`'s clock; `u64::MAX`:
    /// none held): until then a lock check looks at no share-partition.
    next_lock_deadline: u64,
}

/// The groups' own configs as the loops (DescribeConfigs) and the group
/// coordinator (sessions and heartbeats) read them: written by the writer
/// when one changes, read at a heartbeat or a describe, never per record.
pub type GroupConfigs = Arc<Mutex<HashMap<String, GroupConfig>>>;

/// `(first, last)` of a run of acquired records, for trimming.
fn last_acquired(parts: &[partition::Acquired]) -> Option<i64> {
    parts.last().map(|a| a.last)
}

/// The batches read, as the share-partition acquires them: a control
/// batch (a transaction's marker) and, for a read_committed group, a
/// batch of a transaction that `aborted` lists (producer id, first
/// offset) are never delivered.
fn spans(headers: &[BatchHeader], aborted: &[(i64, i64)]) -> Vec<BatchSpan> {
    // Producers inside an aborted transaction at the batch in hand: from
    // its first offset until its marker.
    let mut open: Vec<i64> = Vec::new();
    let mut starts = aborted.to_vec();
    starts.sort_by_key(|&(_, first)| first);
    let mut next = 0;
    headers
        .iter()
        .map(|h| {
            while next < starts.len() && starts[next].1 <= h.base_offset {
                open.push(starts[next].0);
                next += 1;
            }
            let in_aborted = h.is_transactional() && open.contains(&h.producer_id);
            if h.is_control() {
                open.retain(|&p| p != h.producer_id);
            }
            BatchSpan {
                base: h.base_offset,
                last: h.last_offset(),
                control: h.is_control() || in_aborted,
            }
        })
        .collect()
}

/// Where a group that never read `log` starts it by `start_at`. By
/// duration: the first record whose timestamp is at or after now less
/// the duration (a time index lookup, as a ListOffsets by time makes on
/// the writer), or the end if every record is older, as Kafka starts.
fn first_offset(log: &crate::log::PartitionLog, start_at: StartAt) -> io::Result<i64> {
    Ok(match start_at {
        StartAt::Latest => log.end_offset(),
        StartAt::Earliest => log.start_offset(),
        StartAt::ByDuration(d) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let since = now.saturating_sub(d).as_millis() as i64;
            let found = log.offset_for_time(since)?;
            found.map_or_else(|| log.end_offset(), |(offset, _)| offset)
        }
    })
}

fn refused(error: i16, message: impl Into<String>) -> ShareAnswer {
    ShareAnswer {
        error,
        message: Some(message.into()),
        ..ShareAnswer::default()
    }
}

impl Shares {
    /// Opens the state kept in `dir`; `limits` are the broker's delivery
    /// limits, `defaults` its settings a group's configs fall back to
    /// (their lock taken from `limits`).
    pub fn open(dir: &Path, limits: Limits, defaults: GroupDefaults) -> io::Result<Self> {
        let (file, (kept, configs)) = StateFile::open(dir)?;
        let partitions = kept
            .iter()
            .map(|(k, s)| (k.clone(), SharePartition::from_snapshot(s)))
            .collect();
        Ok(Shares {
            partitions,
            members: MemberMap::default(),
            next_member: 1,
            sessions: MemberMap::default(),
            file,
            dirty: HashSet::new(),
            writing: Vec::new(),
            unsynced: false,
            limits,
            defaults: GroupDefaults {
                lock_ms: limits.lock_ms,
                ..defaults
            },
            published: Arc::new(Mutex::new(configs.clone())),
            configs,
            epoch: Instant::now(),
            next_lock_deadline: u64::MAX,
        })
    }

    /// The groups' configs as the loops read them.
    pub fn published_configs(&self) -> GroupConfigs {
        self.published.clone()
    }

    /// The broker's settings a group's configs fall back to.
    pub fn defaults(&self) -> GroupDefaults {
        self.defaults
    }

    /// Applies (or with `validate_only`, checks) `changes` to `group`'s
    /// configs, written and synced before the answer.
    pub fn alter_config(
        &mut self,
        group: &str,
        changes: &[crate::topic_config::ConfigChange],
        validate_only: bool,
    ) -> Result<(), group_config::AlterError> {
        let mut config = self.configs.get(group).copied().unwrap_or_default();
        config
            .apply(changes, &self.defaults)
            .map_err(group_config::AlterError::Refused)?;
        if validate_only {
            return Ok(());
        }
        let written = self
            .repair()
            .and_then(|()| self.file.write_config(group, &config))
            .and_then(|()| self.file.sync());
        if let Err(e) = written {
            return Err(group_config::AlterError::NotWritten(e));
        }
        if config.is_default() {
            self.configs.remove(group);
        } else {
            self.configs.insert(group.to_owned(), config);
        }
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = self.configs.clone();
        Ok(())
    }

    /// The delivery limits and start rule of `group`.
    fn rules_of(&self, group: &str) -> (Limits, StartAt, bool) {
        let c = self.configs.get(group).copied().unwrap_or_default();
        let limits = Limits {
            lock_ms: c.lock_ms.unwrap_or(self.limits.lock_ms),
            ..self.limits
        };
        (
            limits,
            c.start_at.unwrap_or(self.defaults.start_at),
            c.read_committed.unwrap_or(false),
        )
    }

    /// How long `group`'s acquired records stay with their member (ms).
    pub fn lock_ms_of(&self, group: &str) -> u64 {
        self.rules_of(group).0.lock_ms
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Applies the coordinator's word; whether records went back (a
    /// parked fetch may now be served).
    pub fn member_change(&mut self, change: MemberChange) -> bool {
        match change {
            MemberChange::Joined { group, member } => {
                if !self.members.contains(&group, &member) {
                    self.members.insert(&group, &member, self.next_member);
                    self.next_member = self.next_member.wrapping_add(1).max(1);
                }
                false
            }
            MemberChange::Left { group, member } => {
                let now = self.now_ms();
                let Some(number) = self.members.remove(&group, &member) else {
                    return false;
                };
                match self.sessions.get_mut(&group, &member) {
                    Some(session) => {
                        session.orphaned_at = Some(now);
                        false
                    }
                    None => self.release_in_group(&group, number) > 0,
                }
            }
            MemberChange::Dropped { group, member } => {
                let session = self.sessions.remove(&group, &member).map(|s| s.member);
                match self.members.remove(&group, &member).or(session) {
                    Some(number) => self.release_in_group(&group, number) > 0,
                    None => false,
                }
            }
            MemberChange::GroupDeleted(group) => {
                self.partitions.retain(|k, _| k.0 != group);
                if self.configs.remove(&group).is_some() {
                    *self.published.lock().unwrap_or_else(|p| p.into_inner()) =
                        self.configs.clone();
                }
                self.dirty.retain(|k| k.0 != group);
                if let Err(e) = self.file.group_deleted(&group) {
                    tracing::error!(group, error = %e, "cannot record a share group's deletion");
                }
                self.unsynced = true;
                false
            }
        }
    }

    fn release_in_group(&mut self, group: &str, member: MemberKey) -> usize {
        let mut n = 0;
        for (k, p) in self.partitions.iter_mut().filter(|(k, _)| k.0 == group) {
            let released = p.release_member(member, &self.limits);
            if released > 0 {
                self.dirty.insert(k.clone());
            }
            n += released;
        }
        n
    }

    /// Checks a request's member and session, applies its session
    /// changes and acknowledgements: the request begun, or its answer
    /// when it is refused whole (or closes the session).
    pub fn begin(&mut self, storage: &Storage, job: &ShareFetchJob) -> Result<Begun, ShareAnswer> {
        let (group, member_id) = (job.group.as_str(), job.member.as_str());
        // A member that left may still acknowledge and close its session,
        // not fetch.
        let leaving = self
            .sessions
            .get(group, member_id)
            .filter(|s| s.orphaned_at.is_some() && (!job.fetch || job.session_epoch == -1))
            .map(|s| s.member);
        let Some(member) = self.members.get(group, member_id).copied().or(leaving) else {
            return Err(refused(
                ec::UNKNOWN_MEMBER_ID,
                format!(
                    "{} is not a member of share group {}",
                    job.member, job.group
                ),
            ));
        };
        match job.session_epoch {
            0 if !job.fetch => {
                return Err(refused(
                    ec::INVALID_SHARE_SESSION_EPOCH,
                    "a share session is opened by a ShareFetch",
                ))
            }
            0 if !job.acks.is_empty() => {
                return Err(refused(
                    ec::INVALID_REQUEST,
                    "Acknowledge data present on initial epoch",
                ))
            }
            0 => {
                self.sessions.insert(
                    group,
                    member_id,
                    Session {
                        member,
                        orphaned_at: None,
                        next_epoch: 1,
                        parts: Vec::new(),
                        rotate: 0,
                    },
                );
            }
            -1 => {}
            epoch => match self.sessions.get_mut(group, member_id) {
                None => {
                    return Err(refused(
                        ec::SHARE_SESSION_NOT_FOUND,
                        "no share session for this member",
                    ))
                }
                Some(s) if s.next_epoch != epoch => {
                    return Err(refused(
                        ec::INVALID_SHARE_SESSION_EPOCH,
                        format!("expected share session epoch {}", s.next_epoch),
                    ))
                }
                Some(s) => s.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 },
            },
        }
        if let Some(s) = self.sessions.get_mut(group, member_id) {
            s.parts
                .retain(|p| !job.forget.contains(&(p.topic_id, p.index)));
            for add in &job.add {
                if !s
                    .parts
                    .iter()
                    .any(|p| (p.topic_id, p.index) == (add.topic_id, add.index))
                {
                    s.parts.push(*add);
                }
            }
        }
        let acked = job
            .acks
            .iter()
            .map(|a| self.acknowledge(storage, &job.group, member, a))
            .collect();
        if job.session_epoch == -1 {
            // The member closes its session: what it still holds of the
            // session's partitions goes back.
            if let Some(s) = self.sessions.remove(group, member_id) {
                for p in s.parts {
                    let key = (job.group.clone(), p.topic_id, p.index);
                    if let Some(sp) = self.partitions.get_mut(&key) {
                        if sp.release_member(member, &self.limits) > 0 {
                            self.dirty.insert(key);
                        }
                    }
                }
            }
        }
        Ok(Begun { member, acked })
    }

    fn acknowledge(
        &mut self,
        storage: &Storage,
        group: &str,
        member: MemberKey,
        acks: &PartAcks,
    ) -> SharePartAnswer {
        let p = acks.part;
        let mut answer = SharePartAnswer {
            topic_id: p.topic_id,
            index: p.index,
            error: 0,
            ack_error: 0,
            records: None,
            acquired: Vec::new(),
        };
        let key = (group.to_owned(), p.topic_id, p.index);
        let exists = p.partition.and_then(|id| storage.log(id)).is_some();
        answer.ack_error = match (&acks.ranges, self.partitions.get_mut(&key)) {
            _ if !exists => ec::UNKNOWN_TOPIC_OR_PARTITION,
            (Err(_), _) => ec::INVALID_REQUEST,
            (Ok(_), None) => ec::INVALID_RECORD_STATE,
            (Ok(ranges), Some(sp)) => match sp.acknowledge(member, ranges, &self.limits) {
                Ok(()) => {
                    self.dirty.insert(key);
                    0
                }
                Err(AckError::NotHeld(_)) => ec::INVALID_RECORD_STATE,
                Err(AckError::Malformed) => ec::INVALID_REQUEST,
            },
        };
        answer
    }

    /// Acquires records for a begun ShareFetch from its member's session
    /// partitions: the partitions with records (and those whose read
    /// failed).
    pub fn acquire(
        &mut self,
        storage: &Storage,
        job: &ShareFetchJob,
        begun: &Begun,
    ) -> Vec<SharePartAnswer> {
        let (limits, start_at, read_committed) = self.rules_of(&job.group);
        let Some(session) = self.sessions.get_mut(&job.group, &job.member) else {
            return Vec::new();
        };
        let now = self.epoch.elapsed().as_millis() as u64;
        let n = session.parts.len();
        let first = session.rotate % n.max(1);
        let mut out = Vec::new();
        let (mut records_left, mut bytes_left) = (job.max_records, job.max_bytes);
        let mut served_last = None;
        for i in 0..n {
            if records_left == 0 || bytes_left == 0 {
                break;
            }
            let part = session.parts[(first + i) % n];
            let mut answer = SharePartAnswer {
                topic_id: part.topic_id,
                index: part.index,
                error: 0,
                ack_error: 0,
                records: None,
                acquired: Vec::new(),
            };
            let Some(log) = part.partition.and_then(|id| storage.log(id)) else {
                answer.error = ec::UNKNOWN_TOPIC_OR_PARTITION;
                out.push(answer);
                continue;
            };
            let key = (job.group.clone(), part.topic_id, part.index);
            if !self.partitions.contains_key(&key) {
                match first_offset(log, start_at) {
                    Ok(first) => {
                        self.partitions
                            .insert(key.clone(), SharePartition::new(first));
                    }
                    Err(e) => {
                        tracing::error!(partition = ?part.partition, error = %e, "cannot look a share group's start up by time");
                        answer.error = ec::KAFKA_STORAGE_ERROR;
                        out.push(answer);
                        continue;
                    }
                }
            }
            let sp = self.partitions.get_mut(&key).expect("made above");
            let before = sp.start();
            let end = log.end_offset();
            sp.follow_log_start(log.start_offset());
            sp.follow_log_end(end);
            // A read_committed group stops at the last stable offset.
            let limit = if read_committed {
                log.last_stable_offset()
            } else {
                end
            };
            let Some(from) = sp.next_to_deliver(limit, &limits) else {
                continue;
            };
            let (slice, headers) = match log.read_batches(from, bytes_left, limit, records_left) {
                Ok(Some(read)) => read,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(partition = ?part.partition, error = %e, "share fetch read failed");
                    answer.error = ec::KAFKA_STORAGE_ERROR;
                    out.push(answer);
                    continue;
                }
            };
            let aborted = if read_committed {
                let to = headers.last().map_or(limit, |h| h.next_offset());
                log.aborted_between(from, to)
            } else {
                Vec::new()
            };
            let acquired = sp.acquire(
                begun.member,
                now,
                &limits,
                &spans(&headers, &aborted),
                records_left,
                limit,
            );
            if let Some(due) = sp.lock_deadline() {
                self.next_lock_deadline = self.next_lock_deadline.min(due);
            }
            if sp.start() != before {
                self.dirty.insert(key);
            }
            let Some(last) = last_acquired(&acquired) else {
                continue;
            };
            // Only the batches up to the last record acquired go out.
            let len: u64 = headers
                .iter()
                .take_while(|h| h.base_offset <= last)
                .map(|h| h.size as u64)
                .sum();
            let region = slice.region;
            answer.records =
                gyre_zerocopy::FileRegion::new(region.file().clone(), region.offset(), len)
                    .ok()
                    .map(|region| crate::log::LogSlice {
                        region,
                        first_offset: slice.first_offset,
                    });
            records_left = records_left.saturating_sub(
                acquired
                    .iter()
                    .map(|a| (a.last - a.first + 1) as usize)
                    .sum(),
            );
            bytes_left = bytes_left.saturating_sub(len);
            answer.acquired = acquired;
            out.push(answer);
            served_last = Some(i);
        }
        if let Some(i) = served_last {
            session.rotate = first + i + 1;
        }
        out
    }

    /// Answers a share group's start offsets' admin request.
    pub fn offsets(&mut self, storage: &Storage, job: OffsetsJob) -> OffsetsAnswer {
        match job {
            OffsetsJob::Describe(groups) => OffsetsAnswer::Described(
                groups
                    .into_iter()
                    .map(|(group, parts)| self.describe_offsets(&group, parts))
                    .collect(),
            ),
            OffsetsJob::Alter { group, parts } => {
                OffsetsAnswer::Altered(self.alter_offsets(storage, &group, parts))
            }
            OffsetsJob::Delete { group, topics } => {
                OffsetsAnswer::Deleted(self.delete_offsets(&group, topics))
            }
        }
    }

    /// Whether the coordinator has told of a member of `group` (one that
    /// left but still closes its session is not counted).
    fn has_members(&self, group: &str) -> bool {
        self.members.has_group(group)
    }

    /// A group's start offsets: -1 for a partition it has no state of
    /// (a group that does not exist has none, as Kafka describes it; the
    /// coordinator refused groups of other kinds).
    fn describe_offsets(&self, group: &str, parts: Option<Vec<SharePart>>) -> Vec<job::PartStart> {
        let start = |id: Uuid, index: i32| {
            let key = (group.to_owned(), id, index);
            self.partitions.get(&key).map_or(-1, SharePartition::start)
        };
        match parts {
            Some(parts) => parts
                .iter()
                .map(|p| {
                    let found = p.partition.map(|_| start(p.topic_id, p.index));
                    (
                        p.topic_id,
                        p.index,
                        found.ok_or(ec::UNKNOWN_TOPIC_OR_PARTITION),
                    )
                })
                .collect(),
            None => {
                let mut all: Vec<job::PartStart> = self
                    .partitions
                    .iter()
                    .filter(|(k, _)| k.0 == group)
                    .map(|(k, p)| (k.1, k.2, Ok(p.start())))
                    .collect();
                all.sort_by_key(|&(id, index, _)| (id, index));
                all
            }
        }
    }

    fn alter_offsets(
        &mut self,
        storage: &Storage,
        group: &str,
        parts: Vec<(SharePart, i64)>,
    ) -> Result<Vec<(Uuid, i32, i16)>, i16> {
        if self.has_members(group) {
            return Err(ec::NON_EMPTY_GROUP);
        }
        let mut out = Vec::with_capacity(parts.len());
        for (p, offset) in parts {
            let log = p.partition.and_then(|id| storage.log(id));
            let code = match log {
                None => ec::UNKNOWN_TOPIC_OR_PARTITION,
                Some(log) if offset < log.start_offset() || offset > log.end_offset() => {
                    ec::OFFSET_OUT_OF_RANGE
                }
                Some(_) => {
                    let key = (group.to_owned(), p.topic_id, p.index);
                    self.partitions
                        .insert(key.clone(), SharePartition::new(offset));
                    self.dirty.insert(key);
                    ec::NONE
                }
            };
            out.push((p.topic_id, p.index, code));
        }
        if self.persist(true).is_err() {
            // Its new starts stand in memory and are written again at the
            // next chance, but the client is not told they are kept.
            for (_, _, code) in out.iter_mut().filter(|(_, _, c)| *c == ec::NONE) {
                *code = ec::KAFKA_STORAGE_ERROR;
            }
        }
        Ok(out)
    }

    fn delete_offsets(&mut self, group: &str, topics: Vec<Uuid>) -> Result<Vec<(Uuid, i16)>, i16> {
        if self.has_members(group) {
            return Err(ec::NON_EMPTY_GROUP);
        }
        let gone: Vec<ShareKey> = self
            .partitions
            .keys()
            .filter(|k| k.0 == group && topics.contains(&k.1))
            .cloned()
            .collect();
        for key in &gone {
            self.partitions.remove(key);
            self.dirty.remove(key);
        }
        let written = self
            .repair()
            .and_then(|()| self.file.forget(&gone))
            .and_then(|()| self.file.sync());
        let code = match written {
            Ok(()) => ec::NONE,
            Err(e) => {
                tracing::error!(group, error = %e, "cannot record deleted share offsets");
                ec::KAFKA_STORAGE_ERROR
            }
        };
        Ok(topics.into_iter().map(|t| (t, code)).collect())
    }

    /// Where a fetch of `job`'s member would read each of its session's
    /// partitions now: (partition, offset), for those with records to
    /// deliver (so that records not in the page cache are read in off
    /// the writer first).
    pub fn next_reads(&self, storage: &Storage, job: &ShareFetchJob) -> Vec<(PartitionId, i64)> {
        let (limits, start_at, read_committed) = self.rules_of(&job.group);
        let Some(session) = self.sessions.get(&job.group, &job.member) else {
            return Vec::new();
        };
        session
            .parts
            .iter()
            .filter_map(|part| {
                let id = part.partition?;
                let log = storage.log(id)?;
                let limit = if read_committed {
                    log.last_stable_offset()
                } else {
                    log.end_offset()
                };
                let key = (job.group.clone(), part.topic_id, part.index);
                let from = match self.partitions.get(&key) {
                    Some(sp) => sp.next_to_deliver(limit, &limits)?,
                    None if start_at == StartAt::Earliest => log.start_offset(),
                    None => return None,
                };
                (from < limit).then_some((id, from.max(log.start_offset())))
            })
            .collect()
    }

    /// Gives back the records whose locks ran out; whether any did. Drops
    /// the sessions of members that left once their locks are over.
    pub fn expire_locks(&mut self) -> bool {
        let now = self.now_ms();
        let lock = self.limits.lock_ms;
        self.sessions
            .retain(|s| s.orphaned_at.is_none_or(|at| now < at.saturating_add(lock)));
        if now < self.next_lock_deadline {
            return false;
        }
        let mut any = false;
        let mut next = u64::MAX;
        for (k, p) in self.partitions.iter_mut() {
            if p.expire(now, &self.limits) > 0 {
                self.dirty.insert(k.clone());
                any = true;
            }
            next = next.min(p.lock_deadline().unwrap_or(u64::MAX));
        }
        self.next_lock_deadline = next;
        any
    }

    /// Writes what changed; syncs it if `sync` (and anything written
    /// before that was not). A failure is logged and what it covered is
    /// written again at the next call; the first failure is returned,
    /// for an answer that must not claim the state is kept.
    pub fn persist(&mut self, sync: bool) -> io::Result<()> {
        self.repair()?;
        let mut outcome = Ok(());
        if !self.dirty.is_empty() {
            self.writing.extend(self.dirty.drain());
            let partitions = &self.partitions;
            let changed = self
                .writing
                .iter()
                .filter_map(|k| partitions.get(k).map(|p| (k, p.snapshot())));
            match self.file.write(changed) {
                Ok(()) => {
                    self.unsynced = true;
                    self.writing.clear();
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot write the share groups' delivery state");
                    self.dirty.extend(self.writing.drain(..));
                    outcome = Err(e);
                }
            }
        }
        if sync && self.unsynced {
            match self.file.sync() {
                Ok(()) => self.unsynced = false,
                Err(e) => {
                    tracing::error!(error = %e, "cannot sync the share groups' delivery state");
                    outcome = outcome.and(Err(e));
                }
            }
            let live = self.partitions.iter().map(|(k, p)| (k, p.snapshot()));
            if let Err(e) = self.file.compact(live, &self.configs) {
                tracing::error!(error = %e, "cannot compact the share groups' delivery state");
            }
        }
        outcome
    }

    /// Writes the file whole again from the state in memory, synced, if
    /// a failed sync broke it (what it held may be lost, and it takes no
    /// appends until then).
    fn repair(&mut self) -> io::Result<()> {
        if !self.file.broken() {
            return Ok(());
        }
        let live = self.partitions.iter().map(|(k, p)| (k, p.snapshot()));
        match self.file.compact(live, &self.configs) {
            Ok(()) => {
                self.dirty.clear();
                self.unsynced = false;
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the share groups' delivery state again");
                Err(e)
            }
        }
    }

    /// Makes a begun request's acknowledgements durable before it is
    /// answered, as Kafka writes a share group's state before it answers
    /// the acknowledgement: written, and synced when `sync` (the broker
    /// syncs each batch). If that fails, each applied acknowledgement is
    /// answered `KAFKA_STORAGE_ERROR`: it stands in memory and is written
    /// again at the next chance, but the member is not told it is kept.
    pub fn persist_acks(&mut self, begun: &mut Begun, sync: bool) {
        if !begun.acked.iter().any(|a| a.ack_error == ec::NONE) {
            return;
        }
        if self.persist(sync).is_err() {
            for a in begun.acked.iter_mut().filter(|a| a.ack_error == ec::NONE) {
                a.ack_error = ec::KAFKA_STORAGE_ERROR;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{self, parse_header};

    fn header(base: i64, n: usize, producer: i64, txn: bool, control: bool) -> BatchHeader {
        let records: Vec<&[u8]> = vec![b"x"; n];
        let mut buf = batch::build(base, 0, &records);
        if producer >= 0 {
            batch::set_producer(&mut buf, producer, 0, 0);
        }
        if txn {
            batch::set_transactional(&mut buf);
        }
        let mut h = parse_header(&buf).unwrap();
        if control {
            h.attributes |= 1 << 5;
        }
        h
    }

    #[test]
    fn a_read_committed_group_passes_over_aborted_batches_and_markers() {
        // Producer 7 aborts 0..=1 (marker at 2), producer 8 commits 3..=4
        // (marker at 6), producer 7 writes 5 in a new transaction.
        let headers = [
            header(0, 2, 7, true, false),
            header(2, 1, 7, true, true),
            header(3, 2, 8, true, false),
            header(5, 1, 7, true, false),
            header(6, 1, 8, true, true),
        ];
        let skipped = |aborted: &[(i64, i64)]| -> Vec<bool> {
            spans(&headers, aborted).iter().map(|s| s.control).collect()
        };
        assert_eq!(skipped(&[(7, 0)]), [true, true, false, false, true]);
        // read_uncommitted: only the markers.
        assert_eq!(skipped(&[]), [false, true, false, false, true]);
    }

    /// A log of one partition holding three records, a share group `g`
    /// on it with member `m`, its delivery state kept in `dir`.
    fn joined(dir: &Path) -> (Storage, Shares, SharePart) {
        let (mut storage, _) =
            Storage::open(&dir.join("data"), crate::log::LogConfig::default(), 1).unwrap();
        storage.create_topic("t", 1, &[]).unwrap();
        let topic = storage.catalog().get("t").unwrap().clone();
        let log = storage.log_mut(topic.partitions[0]).unwrap();
        log.append(&batch::build(0, 1_000, &[b"a", b"b", b"c"]))
            .unwrap();
        let part = SharePart {
            topic_id: topic.id,
            index: 0,
            partition: Some(topic.partitions[0]),
        };
        let earliest = GroupDefaults {
            start_at: StartAt::Earliest,
            ..GroupDefaults::default()
        };
        let mut shares = Shares::open(dir, Limits::default(), earliest).unwrap();
        shares.member_change(MemberChange::Joined {
            group: "g".into(),
            member: "m".into(),
        });
        (storage, shares, part)
    }

    fn job(epoch: i32, add: Vec<SharePart>, acks: Vec<PartAcks>) -> ShareFetchJob {
        ShareFetchJob {
            group: "g".into(),
            member: "m".into(),
            session_epoch: epoch,
            fetch: acks.is_empty(),
            add,
            forget: Vec::new(),
            acks,
            max_records: 100,
            max_bytes: 1 << 20,
            max_wait: std::time::Duration::ZERO,
        }
    }

    /// Member `m` acquires the three records, then accepts them: the
    /// acknowledgement's answer, persisted as the writer does before it
    /// answers with `sync`.
    fn accept_all(storage: &Storage, shares: &mut Shares, part: SharePart, sync: bool) -> i16 {
        let open = job(0, vec![part], Vec::new());
        let begun = shares.begin(storage, &open).unwrap();
        let acquired = shares.acquire(storage, &open, &begun);
        assert_eq!(acquired[0].acquired[0].last, 2, "all three acquired");
        let accept = PartAcks {
            part,
            ranges: Ok(vec![(0, 2, vec![partition::Acknowledgement::Accept])]),
        };
        let mut begun = shares
            .begin(storage, &job(1, Vec::new(), vec![accept]))
            .unwrap();
        shares.persist_acks(&mut begun, sync);
        begun.into_acked()[0].ack_error
    }

    fn start_of(dir: &Path, storage: &Storage, part: SharePart) -> Vec<job::PartStart> {
        let earliest = GroupDefaults {
            start_at: StartAt::Earliest,
            ..GroupDefaults::default()
        };
        let mut reopened = Shares::open(dir, Limits::default(), earliest).unwrap();
        let asked = OffsetsJob::Describe(vec![("g".into(), Some(vec![part]))]);
        match reopened.offsets(storage, asked) {
            OffsetsAnswer::Described(mut groups) => groups.remove(0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn acknowledgements_are_written_before_they_are_answered() {
        let dir = gyre_testkit::scratch_dir("share-acks-written");
        let (storage, mut shares, part) = joined(&dir);
        assert_eq!(accept_all(&storage, &mut shares, part, false), ec::NONE);
        // Read back from the file, as a start after a crash would: the
        // accepted records are past the share-partition's start.
        assert_eq!(
            start_of(&dir, &storage, part),
            vec![(part.topic_id, 0, Ok(3))]
        );
        drop(storage);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_check_looks_at_no_partition_until_a_lock_is_due() {
        let dir = gyre_testkit::scratch_dir("share-lock-check");
        let (storage, mut shares, part) = joined(&dir);
        assert!(!shares.expire_locks(), "nothing held");
        let open = job(0, vec![part], Vec::new());
        let begun = shares.begin(&storage, &open).unwrap();
        let lock = Limits::default().lock_ms;
        let before = shares.now_ms();
        assert_eq!(shares.acquire(&storage, &open, &begun).len(), 1);
        let due = shares.next_lock_deadline;
        assert!((before + lock..=shares.now_ms() + lock).contains(&due));
        assert!(!shares.expire_locks(), "not due yet");
        assert_eq!(shares.next_lock_deadline, due, "and no walk moved it");
        // The clock past the lock: the records come back, to be fetched
        // again with their deliveries counted.
        shares.epoch -= std::time::Duration::from_millis(Limits::default().lock_ms + 1);
        assert!(shares.expire_locks());
        assert_eq!(shares.next_lock_deadline, u64::MAX, "nothing held now");
        let next = job(1, Vec::new(), Vec::new());
        let begun = shares.begin(&storage, &next).unwrap();
        let again = shares.acquire(&storage, &next, &begun);
        assert_eq!(again[0].acquired[0].deliveries, 2);
        drop(storage);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A failed fdatasync of the state file (the failpoint fails the
    /// first of a file under a `gyre-failpoint-fsync` folder).
    #[cfg(feature = "failpoints")]
    #[test]
    fn acknowledgements_and_altered_starts_not_made_durable_are_answered_storage_errors() {
        let root = gyre_testkit::scratch_dir("share-acks-fsync");
        let dir = root.join("gyre-failpoint-fsync");
        std::fs::create_dir_all(&dir).unwrap();
        let (storage, mut shares, part) = joined(&dir);
        assert_eq!(
            accept_all(&storage, &mut shares, part, true),
            ec::KAFKA_STORAGE_ERROR
        );
        // The next write finds the file broken and writes it whole again
        // from memory, where the acknowledgement stands.
        shares.persist(true).unwrap();
        assert_eq!(
            start_of(&dir, &storage, part),
            vec![(part.topic_id, 0, Ok(3))]
        );

        let other = root.join("again").join("gyre-failpoint-fsync");
        std::fs::create_dir_all(&other).unwrap();
        let (storage, mut shares, part) = joined(&other);
        shares.member_change(MemberChange::Left {
            group: "g".into(),
            member: "m".into(),
        });
        let alter = OffsetsJob::Alter {
            group: "g".into(),
            parts: vec![(part, 1)],
        };
        let altered = shares.offsets(&storage, alter.clone());
        let refused = Ok(vec![(part.topic_id, 0, ec::KAFKA_STORAGE_ERROR)]);
        assert_eq!(altered, OffsetsAnswer::Altered(refused));
        let ok = Ok(vec![(part.topic_id, 0, ec::NONE)]);
        assert_eq!(shares.offsets(&storage, alter), OffsetsAnswer::Altered(ok));
        assert_eq!(
            start_of(&other, &storage, part),
            vec![(part.topic_id, 0, Ok(1))]
        );
        drop(storage);

        // A group's config not made durable: refused as not written (a
        // storage error, not an invalid config), and not in force.
        let third = root.join("third").join("gyre-failpoint-fsync");
        std::fs::create_dir_all(&third).unwrap();
        let (storage, mut shares, _) = joined(&third);
        let lock = crate::topic_config::ConfigChange::Set(
            group_config::RECORD_LOCK_DURATION_MS.into(),
            "5000".into(),
        );
        let refused = shares.alter_config("g", std::slice::from_ref(&lock), false);
        assert!(
            matches!(refused, Err(group_config::AlterError::NotWritten(_))),
            "{refused:?}"
        );
        assert_eq!(shares.lock_ms_of("g"), Limits::default().lock_ms);
        shares.alter_config("g", &[lock], false).unwrap();
        assert_eq!(shares.lock_ms_of("g"), 5000);
        drop(storage);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
