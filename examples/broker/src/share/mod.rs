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
//! (durability), [`job`] (the requests and answers), this file (the
//! sessions, members, and serving a request). Uses the storage and the
//! log; nothing of the network.

pub mod job;
pub mod partition;
pub mod state_file;

use crate::log::batch::BatchHeader;
use crate::protocol::error_code as ec;
use crate::storage::Storage;
use job::{MemberChange, PartAcks, ShareAnswer, ShareFetchJob, SharePart, SharePartAnswer};
use partition::{AckError, BatchSpan, Limits, MemberKey, SharePartition};
use state_file::{ShareKey, StateFile};
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::time::Instant;

/// Where a share-partition's delivery starts when the group first reads
/// it (`share.auto.offset.reset`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// At the log's end: only records written from then on (Kafka's
    /// default).
    #[default]
    Latest,
    /// At the log's start.
    Earliest,
}

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
#[derive(Debug)]
pub struct Shares {
    partitions: HashMap<ShareKey, SharePartition>,
    /// The members the coordinator says are in a share group.
    members: HashMap<(String, String), MemberKey>,
    next_member: MemberKey,
    sessions: HashMap<(String, String), Session>,
    file: StateFile,
    /// Changed since last written.
    dirty: HashSet<ShareKey>,
    /// Written since last synced.
    unsynced: bool,
    limits: Limits,
    start_at: StartAt,
    /// The clock locks run on.
    epoch: Instant,
}

/// `(first, last)` of a run of acquired records, for trimming.
fn last_acquired(parts: &[partition::Acquired]) -> Option<i64> {
    parts.last().map(|a| a.last)
}

fn spans(headers: &[BatchHeader]) -> Vec<BatchSpan> {
    headers
        .iter()
        .map(|h| BatchSpan {
            base: h.base_offset,
            last: h.last_offset(),
            control: h.is_control(),
        })
        .collect()
}

fn refused(error: i16, message: impl Into<String>) -> ShareAnswer {
    ShareAnswer {
        error,
        message: Some(message.into()),
        ..ShareAnswer::default()
    }
}

impl Shares {
    /// Opens the state kept in `dir`.
    pub fn open(dir: &Path, limits: Limits, start_at: StartAt) -> io::Result<Self> {
        let (file, kept) = StateFile::open(dir)?;
        let partitions = kept
            .iter()
            .map(|(k, s)| (k.clone(), SharePartition::from_snapshot(s)))
            .collect();
        Ok(Shares {
            partitions,
            members: HashMap::new(),
            next_member: 1,
            sessions: HashMap::new(),
            file,
            dirty: HashSet::new(),
            unsynced: false,
            limits,
            start_at,
            epoch: Instant::now(),
        })
    }

    /// How long acquired records stay with their member (ms).
    pub fn lock_ms(&self) -> u64 {
        self.limits.lock_ms
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Applies the coordinator's word; whether records went back (a
    /// parked fetch may now be served).
    pub fn member_change(&mut self, change: MemberChange) -> bool {
        match change {
            MemberChange::Joined { group, member } => {
                let key = (group, member);
                if !self.members.contains_key(&key) {
                    self.members.insert(key, self.next_member);
                    self.next_member = self.next_member.wrapping_add(1).max(1);
                }
                false
            }
            MemberChange::Left { group, member } => {
                let key = (group, member);
                let now = self.now_ms();
                let Some(number) = self.members.remove(&key) else {
                    return false;
                };
                match self.sessions.get_mut(&key) {
                    Some(session) => {
                        session.orphaned_at = Some(now);
                        false
                    }
                    None => self.release_in_group(&key.0, number) > 0,
                }
            }
            MemberChange::Dropped { group, member } => {
                let key = (group, member);
                let session = self.sessions.remove(&key).map(|s| s.member);
                match self.members.remove(&key).or(session) {
                    Some(number) => self.release_in_group(&key.0, number) > 0,
                    None => false,
                }
            }
            MemberChange::GroupDeleted(group) => {
                self.partitions.retain(|k, _| k.0 != group);
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
        let who = (job.group.clone(), job.member.clone());
        // A member that left may still acknowledge and close its session,
        // not fetch.
        let leaving = self
            .sessions
            .get(&who)
            .filter(|s| s.orphaned_at.is_some() && (!job.fetch || job.session_epoch == -1))
            .map(|s| s.member);
        let Some(member) = self.members.get(&who).copied().or(leaving) else {
            return Err(refused(
                ec::UNKNOWN_MEMBER_ID,
                format!(
                    "{} is not a member of share group {}",
                    job.member, job.group
                ),
            ));
        };
        match job.session_epoch {
            0 if !job.acks.is_empty() => {
                return Err(refused(
                    ec::INVALID_REQUEST,
                    "Acknowledge data present on initial epoch",
                ))
            }
            0 if !job.fetch => {
                return Err(refused(
                    ec::INVALID_SHARE_SESSION_EPOCH,
                    "a share session is opened by a ShareFetch",
                ))
            }
            0 => {
                self.sessions.insert(
                    who.clone(),
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
            epoch => match self.sessions.get_mut(&who) {
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
        if let Some(s) = self.sessions.get_mut(&who) {
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
            if let Some(s) = self.sessions.remove(&who) {
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
        let who = (job.group.clone(), job.member.clone());
        let Some(session) = self.sessions.get_mut(&who) else {
            return Vec::new();
        };
        let now = self.epoch.elapsed().as_millis() as u64;
        let n = session.parts.len();
        let first = session.rotate % n.max(1);
        let order: Vec<SharePart> = (0..n).map(|i| session.parts[(first + i) % n]).collect();
        let mut out = Vec::new();
        let (mut records_left, mut bytes_left) = (job.max_records, job.max_bytes);
        let mut served_last = None;
        for (i, part) in order.iter().enumerate() {
            if records_left == 0 || bytes_left == 0 {
                break;
            }
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
            let start_at = self.start_at;
            let sp = self.partitions.entry(key.clone()).or_insert_with(|| {
                SharePartition::new(match start_at {
                    StartAt::Latest => log.end_offset(),
                    StartAt::Earliest => log.start_offset(),
                })
            });
            let before = sp.start();
            sp.follow_log_start(log.start_offset());
            let end = log.end_offset();
            let Some(from) = sp.next_to_deliver(end, &self.limits) else {
                continue;
            };
            let (slice, headers) = match log.read_batches(from, bytes_left, end) {
                Ok(Some(read)) => read,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(partition = ?part.partition, error = %e, "share fetch read failed");
                    answer.error = ec::KAFKA_STORAGE_ERROR;
                    out.push(answer);
                    continue;
                }
            };
            let acquired = sp.acquire(
                begun.member,
                now,
                &self.limits,
                &spans(&headers),
                records_left,
                end,
            );
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
        if let (Some(i), Some(s)) = (served_last, self.sessions.get_mut(&who)) {
            s.rotate = first + i + 1;
        }
        out
    }

    /// Gives back the records whose locks ran out; whether any did. Drops
    /// the sessions of members that left once their locks are over.
    pub fn expire_locks(&mut self) -> bool {
        let now = self.now_ms();
        let lock = self.limits.lock_ms;
        self.sessions
            .retain(|_, s| s.orphaned_at.is_none_or(|at| now < at.saturating_add(lock)));
        let mut any = false;
        for (k, p) in self.partitions.iter_mut() {
            if p.acquired_count() > 0 && p.expire(now, &self.limits) > 0 {
                self.dirty.insert(k.clone());
                any = true;
            }
        }
        any
    }

    /// Writes what changed; syncs it if `sync` (and anything written
    /// before that was not).
    pub fn persist(&mut self, sync: bool) {
        if !self.dirty.is_empty() {
            let changed: Vec<(ShareKey, partition::Snapshot)> = self
                .dirty
                .drain()
                .filter_map(|k| self.partitions.get(&k).map(|p| (k.clone(), p.snapshot())))
                .collect();
            match self.file.write(&changed) {
                Ok(()) => self.unsynced = true,
                Err(e) => {
                    tracing::error!(error = %e, "cannot write the share groups' delivery state");
                    self.dirty.extend(changed.into_iter().map(|(k, _)| k));
                }
            }
        }
        if sync && self.unsynced {
            match self.file.sync() {
                Ok(()) => self.unsynced = false,
                Err(e) => {
                    tracing::error!(error = %e, "cannot sync the share groups' delivery state")
                }
            }
            let live = self.partitions.iter().map(|(k, p)| (k, p.snapshot()));
            if let Err(e) = self.file.compact(live) {
                tracing::error!(error = %e, "cannot compact the share groups' delivery state");
            }
        }
    }
}
