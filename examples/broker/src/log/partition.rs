//! A partition's log: its segments in offset order, appends that assign
//! offsets, reads by offset for fetches, roll and retention.

use super::batch::{self, BatchError, BatchHeader, Marker};
use super::cleaner::{self, CleanPlan, Cleaned};
use super::epochs::{LeaderEpochs, EPOCH_SNAPSHOT};
use super::open_files::OpenFiles;
use super::producers::{ProducerStates, SequenceError, Verdict};
use super::records::{self, RecordsError};
use super::segment::{now_ms, Scan, Segment, Truncation};
use super::transactions::{NotAdded, PartitionTxns};
use crate::folder_sync::{self, Durability};
use gyre_zerocopy::FileRegion;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How a partition's log rolls and expires.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Roll to a new segment past this many bytes (default 128 MiB).
    pub segment_bytes: u64,
    /// Roll a segment older than this, if set.
    pub segment_age: Option<Duration>,
    /// Delete the oldest segments while the log is bigger than this.
    pub retention_bytes: Option<u64>,
    /// Delete segments whose newest record is older than this (default 7
    /// days).
    pub retention_age: Option<Duration>,
    /// Bytes of log between offset index entries (default 4 KiB).
    pub index_interval: u64,
    /// The largest record batch a producer may append, in bytes with its
    /// 12-byte log header (Kafka's `max.message.bytes`; default 1 MiB and
    /// those 12 bytes, as Kafka's `message.max.bytes`).
    pub max_message_bytes: u64,
    /// Stamp each appended batch with the broker's clock (Kafka's
    /// `message.timestamp.type=LogAppendTime`) instead of keeping the
    /// producer's timestamps (`CreateTime`, the default).
    pub log_append_time: bool,
    /// What happens to old records (Kafka's `cleanup.policy`).
    pub cleanup: Cleanup,
    /// How long a tombstone (a keyed record without a value) stays once
    /// the segment holding it was last written, in a compacted log, so a
    /// reader that started before it sees the key deleted (Kafka's
    /// `delete.retention.ms`; default 1 day).
    pub delete_retention: Duration,
    /// Compact a log once this share of it has not been compacted yet
    /// (Kafka's `min.cleanable.dirty.ratio`; default 0.5).
    pub min_cleanable_dirty_ratio: f64,
    /// Leave records younger than this uncompacted (Kafka's
    /// `min.compaction.lag.ms`; default 0).
    pub min_compaction_lag: Duration,
    /// Compact a log whatever its dirty ratio once its oldest segment not
    /// yet compacted was last written this long ago (Kafka's
    /// `max.compaction.lag.ms`; default never).
    pub max_compaction_lag: Option<Duration>,
}

/// What happens to a log's old records (Kafka's `cleanup.policy`, a list
/// of `delete` and `compact`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cleanup {
    /// Whole old segments are deleted past the retention limits.
    pub delete: bool,
    /// Records whose key has a later record are removed by the log
    /// cleaner; a producer must give every record a key.
    pub compact: bool,
}

impl Cleanup {
    /// Kafka's default, `delete`.
    pub const DELETE: Cleanup = Cleanup {
        delete: true,
        compact: false,
    };
}

impl std::fmt::Display for Cleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (self.compact, self.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            _ => "delete",
        })
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 128 << 20,
            segment_age: None,
            retention_bytes: None,
            retention_age: Some(Duration::from_secs(7 * 24 * 3600)),
            index_interval: 4096,
            max_message_bytes: (1 << 20) + 12,
            log_append_time: false,
            cleanup: Cleanup::DELETE,
            delete_retention: Duration::from_secs(24 * 3600),
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag: Duration::ZERO,
            max_compaction_lag: None,
        }
    }
}

/// Where [`PartitionLog::stage`] put a request's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Staged {
    /// The first record's offset.
    pub base: i64,
    /// The last record's offset.
    pub last: i64,
    /// The broker's clock the batches were stamped with, under
    /// [`LogConfig::log_append_time`] (`None` otherwise, and for a retry
    /// answered with its earlier offsets).
    pub append_time: Option<i64>,
}

/// Why an append or a read failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The records are not valid batches; nothing was appended.
    #[error("corrupt message: {0}")]
    Corrupt(#[from] BatchError),
    /// A batch larger than the topic's `max.message.bytes`; nothing was
    /// appended.
    #[error("a record batch of {size} bytes is larger than max.message.bytes {max}")]
    TooLarge {
        /// The batch's size, with its log header.
        size: u64,
        /// The topic's limit.
        max: u64,
    },
    /// An offset outside `[log start, log end]`.
    #[error("offset {offset} out of range [{start}, {end}]")]
    OutOfRange {
        /// What was asked for.
        offset: i64,
        /// The first offset kept.
        start: i64,
        /// The next offset to be written.
        end: i64,
    },
    /// An idempotent producer's batch out of sequence or from a fenced
    /// epoch; nothing was appended.
    #[error("refused a producer's batch: {0}")]
    Sequence(#[from] SequenceError),
    /// A transactional batch for a transaction that did not add the
    /// partition; nothing was appended.
    #[error("refused a transactional batch: {0}")]
    NotInTransaction(#[from] NotAdded),
    /// A record without a key, for a compacted topic (which keeps each
    /// key's last record, so a record must have one); nothing was
    /// appended.
    #[error(
        "a compacted topic takes only records with a key: record {index} of the request has none"
    )]
    NoKey {
        /// The record's place among the request's records, from 0.
        index: i64,
    },
    /// The records of a batch do not decode; nothing was appended.
    #[error("corrupt message: {0}")]
    Records(#[from] RecordsError),
    /// DeleteRecords on a log whose cleanup policy does not delete (a
    /// compacted topic's old records go only by compaction, as in Kafka).
    #[error("records cannot be deleted from a log whose cleanup.policy is {0}")]
    Policy(Cleanup),
    /// The file system failed.
    #[error("log i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Bytes at the end of a log that a fetch takes to be in the page cache
/// without asking (see [`PartitionLog::fetch_window`]).
pub const NEAR_END: u64 = 32 << 20;

/// The producer-state snapshot a clean stop leaves in a partition's
/// folder (see [`ProducerStates::snapshot`]).
pub const PRODUCER_SNAPSHOT: &str = "producers.snapshot";

/// One producer as a partition remembers it (DescribeProducers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerInfo {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
    /// Its last batch's last sequence, or -1.
    pub last_sequence: i32,
    /// When it last appended (ms since the epoch).
    pub last_timestamp: i64,
    /// The first offset of its open transaction here, or -1.
    pub txn_start_offset: i64,
}

/// The transactions snapshot a clean stop leaves in a partition's folder
/// (see [`PartitionTxns::snapshot`]).
pub const TXN_SNAPSHOT: &str = "transactions.snapshot";

/// The bytes a share group's read of a partition starts with (see
/// [`PartitionLog::read_batches`]).
const FIRST_SHARE_READ: u64 = 256 * 1024;

/// How long a producer that stopped appending is remembered: Kafka's
/// `producer.id.expiration.ms` default, one day.
pub const PRODUCER_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// What a fetch reads: a run of whole batches of one segment file.
#[derive(Debug)]
pub struct LogSlice {
    /// The bytes, to send with `sendfile`.
    pub region: FileRegion,
    /// The first batch's base offset.
    pub first_offset: i64,
}

/// What a partition's log may assume when it opens, which decides how
/// much of it is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The broker stopped cleanly (everything was synced and its marker
    /// written): only each segment's tail past its last index entry is
    /// checked.
    Clean,
    /// After an unclean stop: every offset below this one was synced (the
    /// recovery-point checkpoint); every batch of the segment holding it
    /// and of every later segment is checked. `From(0)` checks everything.
    From(i64),
}

/// One partition's log.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    open_files: Arc<OpenFiles>,
    segments: BTreeMap<i64, Segment>,
    /// Batches accepted by `stage`, offsets assigned, not yet written.
    staged: Vec<u8>,
    staged_headers: Vec<BatchHeader>,
    /// Records below this offset were deleted (DeleteRecords), even where
    /// their segment is still on disk.
    start_floor: i64,
    /// Idempotent producers' last batches, to answer retries.
    producers: ProducerStates,
    /// Open and aborted transactions, for `read_committed` readers.
    txns: PartitionTxns,
    /// Offsets below this may have been compacted away (see
    /// [`cleaner`]): the log's checks accept gaps there.
    clean_below: i64,
    /// When a cleaning pass with no new records could remove more (a
    /// tombstone or marker reaching its horizon), as the last pass found.
    recheck_at: Option<std::time::SystemTime>,
    /// Whether anything was appended (or a segment rolled) since the last
    /// [`sync`](Self::sync), or since a start that was not clean: a clean
    /// stop syncs only such logs. An atomic only because `sync` takes
    /// `&self`; one thread writes a log.
    unsynced: AtomicBool,
    /// The base of the oldest segment that may hold what is not durable
    /// yet: a sync covers it and every later one (a log may roll several
    /// times between syncs), then moves it to the active segment.
    sync_from: AtomicI64,
    /// A segment was created since the log's folder was last synced: the
    /// next sync syncs the folder too, or a power loss could take the new
    /// segment's files away, synced bytes and all (KAFKA-3968).
    folder_unsynced: AtomicBool,
    /// The CRC-32C of the producers snapshot's text in the high half and
    /// the transactions snapshot's in the low half, as last made durable
    /// (or as found on disk at a clean start); 0 when not known. A clean
    /// stop writes the snapshots only when they would say something else.
    durable_snapshots: AtomicU64,
    /// Which open of a log this is, so a cleaning pass planned for a log
    /// since deleted (and perhaps created again) is not swapped in.
    id: u64,
    /// Where each leader epoch began (see [`epochs`](super::epochs)).
    epochs: LeaderEpochs,
    /// The log end the epochs snapshot read at open was taken at (`None`
    /// with no usable snapshot): what [`lead`](Self::lead) reads on from
    /// when the snapshot turns out older than the last epoch.
    epochs_read_at: Option<i64>,
    /// The epoch appends are stamped with: the broker's, from
    /// [`lead`](Self::lead); -1 before it.
    leader_epoch: i32,
    /// The history has changed since its snapshot was written: the first
    /// append of an epoch writes it (an epoch that appends nothing needs
    /// no entry on disk).
    epochs_unwritten: bool,
}

/// Hands out [`PartitionLog`]'s ids.
static NEXT_LOG_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl PartitionLog {
    /// Takes new settings (an altered topic config): rolling and retention
    /// follow them from the next append or check. The index interval is
    /// the segments' own and stays.
    pub fn set_config(&mut self, config: LogConfig) {
        let index_interval = self.config.index_interval;
        self.config = LogConfig {
            index_interval,
            ..config
        };
    }

    /// Opens (or creates) the log in `dir`, checking every batch of every
    /// segment (as after an unclean stop with no recovery point); returns
    /// what recovery cut off.
    pub fn open(dir: &Path, config: LogConfig) -> Result<(Self, Vec<Truncation>), LogError> {
        Self::open_with(dir, config, Recovery::From(0))
    }

    /// Opens (or creates) the log in `dir`, checking as much as `recovery`
    /// says; cuts the log at the first bad batch, deletes every segment
    /// after the cut (their offsets no longer follow on), and returns what
    /// was cut, each logged as a warning.
    pub fn open_with(
        dir: &Path,
        config: LogConfig,
        recovery: Recovery,
    ) -> Result<(Self, Vec<Truncation>), LogError> {
        Self::open_in(dir, config, recovery, &Arc::default())
    }

    /// [`open_with`](Self::open_with), counting its open segment files in
    /// `open_files` with every other log of the same storage.
    pub fn open_in(
        dir: &Path,
        config: LogConfig,
        recovery: Recovery,
        open_files: &Arc<OpenFiles>,
    ) -> Result<(Self, Vec<Truncation>), LogError> {
        std::fs::create_dir_all(dir)?;
        cleaner::finish_swap(dir)?;
        let (clean_below, recheck_at) = cleaner::read_checkpoint(dir);
        let mut bases: Vec<i64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        bases.sort_unstable();
        // The segment holding the recovery point is the last one whose base
        // is at or below it; it and every later one are checked whole.
        let full_from = match recovery {
            Recovery::Clean => i64::MAX,
            Recovery::From(point) => bases
                .iter()
                .copied()
                .take_while(|&b| b <= point)
                .last()
                .unwrap_or(i64::MIN),
        };
        let mut segments = BTreeMap::new();
        let mut truncations = Vec::new();
        let mut cut_at = None;
        for (i, &base) in bases.iter().enumerate() {
            let scan = if base >= full_from {
                Scan::Full
            } else {
                Scan::Tail
            };
            let (segment, cut) = Segment::open(
                dir,
                base,
                config.index_interval,
                scan,
                clean_below,
                open_files,
            )?;
            // Opened again when used: a storage may hold more logs than it
            // has descriptors for.
            segment.close_files();
            segments.insert(base, segment);
            if let Some(cut) = cut {
                tracing::warn!(
                    file = %cut.file.display(),
                    kept = cut.kept,
                    dropped = cut.dropped,
                    reason = %cut.reason,
                    "recovery truncated a segment at its first bad batch"
                );
                truncations.push(cut);
                cut_at = Some(i);
                break;
            }
        }
        if let Some(i) = cut_at {
            for &base in &bases[i + 1..] {
                let (segment, _) = Segment::open(
                    dir,
                    base,
                    config.index_interval,
                    Scan::Tail,
                    clean_below,
                    open_files,
                )?;
                let cut = Truncation {
                    file: segment.log_path().to_owned(),
                    kept: 0,
                    dropped: segment.size(),
                    reason: "follows a truncated segment".to_owned(),
                };
                tracing::warn!(
                    file = %cut.file.display(),
                    dropped = cut.dropped,
                    "recovery deleted a segment after the cut"
                );
                segment.delete()?;
                truncations.push(cut);
            }
        }
        let created = segments.is_empty();
        if created {
            let segment = Segment::create(dir, 0, config.index_interval, open_files)?;
            segment.close_files();
            segments.insert(0, segment);
        }
        let mut log = PartitionLog {
            dir: dir.to_owned(),
            start_floor: 0,
            clean_below,
            recheck_at,
            unsynced: AtomicBool::new(
                !matches!(recovery, Recovery::Clean) || !truncations.is_empty(),
            ),
            // After a clean stop everything was synced but the active
            // segment, which takes appends; after an unclean one, what
            // recovery checked (above the recovery point) may still be
            // only in the page cache.
            sync_from: AtomicI64::new(match (&recovery, truncations.is_empty()) {
                (Recovery::Clean, true) => *segments.keys().next_back().unwrap_or(&0),
                (Recovery::Clean, false) => i64::MIN,
                (Recovery::From(_), _) => full_from,
            }),
            folder_unsynced: AtomicBool::new(created),
            durable_snapshots: AtomicU64::new(0),
            id: NEXT_LOG_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            config,
            open_files: open_files.clone(),
            segments,
            staged: Vec::new(),
            staged_headers: Vec::new(),
            producers: ProducerStates::default(),
            txns: PartitionTxns::default(),
            epochs: LeaderEpochs::default(),
            epochs_read_at: None,
            leader_epoch: -1,
            epochs_unwritten: false,
        };
        log.rebuild_producers()?;
        log.rebuild_txns()?;
        if let Some((epochs, at)) = log.read_snapshot(EPOCH_SNAPSHOT, LeaderEpochs::from_snapshot) {
            log.epochs = epochs;
            log.epochs_read_at = Some(at);
        }
        if log.end_offset() == 0 {
            // Nothing in it to make durable (a new partition, mostly).
            log.unsynced.store(false, Ordering::Relaxed);
        }
        if matches!(recovery, Recovery::Clean) {
            // What the last clean stop wrote, if it still says what this
            // state would (nothing expired or trimmed since): the next
            // clean stop need not write it again.
            let (producers, txns) = log.snapshot_texts();
            let on_disk = |name| std::fs::read_to_string(dir.join(name)).ok();
            if on_disk(PRODUCER_SNAPSHOT).as_ref() == Some(&producers)
                && on_disk(TXN_SNAPSHOT).as_ref() == Some(&txns)
            {
                log.durable_snapshots
                    .store(snapshot_crcs(&producers, &txns), Ordering::Relaxed);
            }
        }
        Ok((log, truncations))
    }

    /// Rebuilds the producer state: from the snapshot of a clean stop or
    /// of the last roll plus the batches after it, or, with no usable
    /// snapshot, from the batch headers of the last two segments. A producer whose last batch
    /// is older than that is forgotten, as an expired one is (its next
    /// batch is taken at any sequence); a retry, which comes within the
    /// client's delivery timeout, finds its batch.
    fn rebuild_producers(&mut self) -> io::Result<()> {
        let end = self.end_offset();
        let floor = self
            .segments
            .keys()
            .rev()
            .nth(1)
            .or_else(|| self.segments.keys().next())
            .copied()
            .unwrap_or(0);
        let snapshot = self.read_snapshot(PRODUCER_SNAPSHOT, ProducerStates::from_snapshot);
        let (mut states, from) = match snapshot {
            Some((states, at)) if at <= end && at >= floor => (states, at),
            _ => (ProducerStates::default(), floor),
        };
        let now = now_ms();
        self.walk_headers(floor, from, |_, _, header| {
            states.record(&header, now);
            // Read back, not staged: nothing to undo.
            states.keep_group();
            Ok(())
        })?;
        self.producers = states;
        Ok(())
    }

    /// Rebuilds the transactions open and aborted: from the snapshot of
    /// the last clean stop or segment roll plus the batches after it or,
    /// with no usable snapshot, from every batch header of the log
    /// (markers read whole).
    /// Unlike the producers', this state reaches back to the log's start:
    /// an abort the snapshot forgot would show its records to
    /// `read_committed` readers.
    fn rebuild_txns(&mut self) -> io::Result<()> {
        let end = self.end_offset();
        let snapshot = self.read_snapshot(TXN_SNAPSHOT, PartitionTxns::from_snapshot);
        let (mut txns, from) = match snapshot {
            Some((txns, at)) if at <= end => (txns, at),
            _ => (PartitionTxns::default(), 0),
        };
        self.walk_headers(0, from, |segment, pos, header| {
            if header.is_transactional() {
                let marker = if header.is_control() {
                    segment.marker_at(pos)?
                } else {
                    None
                };
                txns.observe(&header, marker);
                txns.keep_group();
            }
            Ok(())
        })?;
        txns.trim(self.start_offset());
        // An abort a snapshot older than a cleaning pass remembers, whose
        // marker that pass removed: a reader told of it would skip its
        // producer's later, committed records looking for the marker.
        // Only the cleaner removes markers, and only below `clean_below`.
        let mut gone = Vec::new();
        for a in txns.aborted_below(self.clean_below) {
            if a.last_offset < self.clean_below
                && self.marker_at(a.last_offset)? != Some((a.producer_id, Marker::Abort))
            {
                gone.push(a);
            }
        }
        if !gone.is_empty() {
            tracing::info!(dir = %self.dir.display(), aborts = gone.len(), "forgot aborted transactions whose markers compaction removed");
            txns.forget(&gone);
        }
        self.txns = txns;
        Ok(())
    }

    /// Makes `epoch` this log's leader epoch, beginning at the log's end:
    /// appends are stamped with it from now on. `previous` is the
    /// broker's epoch before this one, if known: a history read at open
    /// whose latest epoch is older than that missed a run (its snapshot,
    /// written unsynced at each start, was lost with a power cut), so it
    /// is read on from the batches after it, which name their epochs.
    /// The new epoch's entry drops every epoch that began at or past the
    /// log's end: after recovery cut the log, those began in records now
    /// gone; and epochs whose records retention or DeleteRecords removed
    /// are forgotten, so the history does not grow with every restart.
    ///
    /// The history is written with the epoch's first append, unsynced:
    /// an epoch that appends nothing needs no entry on disk, and a start
    /// writes no file per partition (4,000 of them took 0.3 s). A history
    /// a crash kept from being written is read again from the batches
    /// after it: it costs a read, never a wrong answer. (A snapshot that
    /// only missed epochs with no records is read on from the log's end,
    /// which reads nothing.)
    pub fn lead(&mut self, epoch: i32, previous: Option<i32>) -> io::Result<()> {
        let latest = self.epochs.latest().map_or(-1, |l| l.epoch);
        let end = self.end_offset();
        if previous.is_some_and(|p| latest < p) {
            let from = self.epochs_read_at.unwrap_or(0).min(end);
            let mut epochs = std::mem::take(&mut self.epochs);
            self.walk_headers(0, from, |_, _, header| {
                epochs.observe(header.partition_leader_epoch, header.base_offset);
                Ok(())
            })?;
            if from < end {
                tracing::info!(dir = %self.dir.display(), from, "read the leader epochs on from the batches");
            }
            self.epochs = epochs;
        }
        self.epochs.trim_to(self.start_offset());
        self.epochs.assign(epoch, end);
        self.leader_epoch = epoch;
        self.epochs_unwritten = true;
        Ok(())
    }

    /// Writes the leader-epoch history (see [`lead`](Self::lead)), once
    /// an epoch has appended. A failure is logged and not retried this
    /// run: the next start reads the batches instead.
    fn write_epochs(&mut self) {
        self.epochs_unwritten = false;
        let end = self.end_offset();
        let text = self.epochs.snapshot(end);
        let path = self.dir.join(EPOCH_SNAPSHOT);
        match folder_sync::replace(&path, text.as_bytes(), Durability::Renamed) {
            Ok(()) => self.epochs_read_at = Some(end),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write the leader epochs; the next start reads them from the batches")
            }
        }
    }

    /// The epoch appends are stamped with (-1 before [`lead`](Self::lead)).
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Where each leader epoch began.
    pub fn epochs(&self) -> &LeaderEpochs {
        &self.epochs
    }

    /// Kafka's OffsetForLeaderEpoch for this log: the largest epoch at or
    /// below `requested` and the offset its records end at (see
    /// [`LeaderEpochs::end_offset_for`]).
    pub fn end_offset_for_epoch(&self, requested: i32) -> (i32, i64) {
        self.epochs.end_offset_for(requested, self.end_offset())
    }

    /// The producer and kind of the marker at `offset`, if a marker is
    /// there.
    fn marker_at(&self, offset: i64) -> io::Result<Option<(i64, Marker)>> {
        let Some((_, segment)) = self.segments.range(..=offset).next_back() else {
            return Ok(None);
        };
        let Some(pos) = segment.position_of(offset)? else {
            return Ok(None);
        };
        let header = segment.header_at(pos)?;
        let found = if header.base_offset == offset && header.is_control() {
            segment.marker_at(pos)?.map(|m| (header.producer_id, m))
        } else {
            None
        };
        segment.close_files();
        Ok(found)
    }

    /// The snapshot file `name` read back by `parse`, if it is there and
    /// whole (a damaged one is logged and ignored).
    fn read_snapshot<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Option<(T, i64)>,
    ) -> Option<(T, i64)> {
        let text = std::fs::read_to_string(self.dir.join(name)).ok()?;
        let read = parse(&text);
        if read.is_none() {
            tracing::warn!(dir = %self.dir.display(), file = name, "ignoring a damaged snapshot");
        }
        read
    }

    /// Calls `each` with every batch header at or after offset `from`, in
    /// the segments from the one based at `floor` on (with the segment
    /// and the batch's position), closing each segment's files after.
    fn walk_headers(
        &self,
        floor: i64,
        from: i64,
        mut each: impl FnMut(&Segment, u64, BatchHeader) -> io::Result<()>,
    ) -> io::Result<()> {
        for segment in self.segments.range(floor..).map(|(_, s)| s) {
            if segment.next_offset() <= from {
                continue;
            }
            let Some(pos) = segment.position_of(from)? else {
                continue;
            };
            segment.walk_from(pos, |pos, header| {
                if header.base_offset >= from {
                    each(segment, pos, header)?;
                }
                Ok(())
            })?;
            segment.close_files();
        }
        Ok(())
    }

    /// Writes the producer-state and transactions snapshots for the log
    /// as it is (each synced, through a temporary file and a rename), so
    /// the next start need not read the log for them. Writes nothing when
    /// the files last made durable already say the same, or when nothing
    /// was ever appended (a start rebuilds the same empty state without
    /// them): a clean stop of a broker with many idle partitions does not
    /// pay two fsyncs for each.
    pub fn write_producer_snapshot(&self) -> io::Result<()> {
        if self.end_offset() == 0 {
            return Ok(());
        }
        let (producers, txns) = self.snapshot_texts();
        let crcs = snapshot_crcs(&producers, &txns);
        if self.durable_snapshots.load(Ordering::Relaxed) == crcs {
            return Ok(());
        }
        self.durable_snapshots.store(0, Ordering::Relaxed);
        self.write_snapshot(PRODUCER_SNAPSHOT, producers, true)?;
        self.write_snapshot(TXN_SNAPSHOT, txns, true)?;
        self.durable_snapshots.store(crcs, Ordering::Relaxed);
        Ok(())
    }

    /// The producers and transactions snapshots' texts for the log as it
    /// is.
    fn snapshot_texts(&self) -> (String, String) {
        let end = self.end_offset();
        (self.producers.snapshot(end), self.txns.snapshot(end))
    }

    /// Whether anything was appended since the last sync (or a start
    /// that was not clean), so that a clean stop must sync the log.
    pub fn unsynced(&self) -> bool {
        self.unsynced.load(Ordering::Relaxed)
    }

    /// Replaces snapshot `name` with `text`, its bytes synced first if
    /// `sync`. Its rename is not made durable: a snapshot names the
    /// offset it holds to, and a start reads on from there, so the old
    /// one serves as well.
    fn write_snapshot(&self, name: &str, text: String, sync: bool) -> io::Result<()> {
        let durability = match sync {
            true => Durability::Contents,
            false => {
                // The durable one may be gone, or not durable any more.
                self.durable_snapshots.store(0, Ordering::Relaxed);
                Durability::Renamed
            }
        };
        folder_sync::replace(&self.dir.join(name), text.as_bytes(), durability)
    }

    /// The last stable offset: below it every transaction has ended (the
    /// log's end when none is open). `read_committed` readers stop here.
    pub fn last_stable_offset(&self) -> i64 {
        self.txns.last_stable(self.end_offset())
    }

    /// Aborted transactions with records in `from..to` (producer id, first
    /// offset), for a `read_committed` fetch of that range.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        self.txns.aborted_between(from, to)
    }

    /// The producers this partition remembers (DescribeProducers), by
    /// producer id.
    pub fn describe_producers(&self) -> Vec<ProducerInfo> {
        let mut all: Vec<ProducerInfo> = self
            .producers
            .describe()
            .map(
                |(producer_id, epoch, last_sequence, last_timestamp)| ProducerInfo {
                    producer_id,
                    epoch,
                    last_sequence,
                    last_timestamp,
                    txn_start_offset: self.txns.open_since(producer_id).unwrap_or(-1),
                },
            )
            .collect();
        all.sort_by_key(|p| p.producer_id);
        all
    }

    /// The producers with a transaction open in this partition, and each
    /// one's epoch as last seen here.
    pub fn open_transactions(&self) -> Vec<(i64, i16)> {
        self.txns
            .open_producers()
            .map(|id| (id, self.producers.epoch(id).unwrap_or(0)))
            .collect()
    }

    /// Producer `producer_id`'s epoch as last seen here, if it is
    /// remembered.
    pub fn producer_epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.epoch(producer_id)
    }

    /// The transaction coordinator added this partition to producer
    /// `producer_id`'s transaction at `epoch`: its transactional batches
    /// are taken until the transaction's marker.
    pub fn add_to_transaction(&mut self, producer_id: i64, epoch: i16) {
        self.txns.add(producer_id, epoch);
    }

    /// Stages the marker that ends producer `producer_id`'s transaction
    /// here (see [`stage`](Self::stage)); written with the group.
    pub fn stage_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        coordinator_epoch: i32,
    ) -> Result<Staged, LogError> {
        let bytes = batch::build_marker(
            producer_id,
            producer_epoch,
            marker,
            coordinator_epoch,
            now_ms(),
        );
        self.stage(&bytes)
    }

    /// The highest producer id this log remembers.
    pub fn max_producer_id(&self) -> Option<i64> {
        self.producers.max_id()
    }

    /// Idempotent producers remembered.
    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    fn active(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has a segment")
    }

    /// The first offset still kept: the oldest segment's base, or where
    /// DeleteRecords moved it past that.
    pub fn start_offset(&self) -> i64 {
        let base = self
            .segments
            .values()
            .next()
            .map_or(0, Segment::base_offset);
        base.max(self.start_floor.min(self.end_offset()))
    }

    /// Sets the deleted-records floor read back at start. A floor past
    /// the log's end (a DeleteRecords to the end, then a power cut that
    /// took the unsynced records under it) is taken as the end, for good:
    /// the records appended next take the offsets the cut freed, and must
    /// not be hidden below a floor they were never under.
    pub fn set_start_floor(&mut self, floor: i64) {
        self.start_floor = floor.clamp(0, self.end_offset());
    }

    /// Deletes every record below `offset` (-1: the end, everything):
    /// the log start moves there, whole segments below it go. Returns the
    /// new start (the low watermark). The caller persists it.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        if !self.config.cleanup.delete {
            return Err(LogError::Policy(self.config.cleanup));
        }
        let end = self.end_offset();
        let offset = if offset == -1 { end } else { offset };
        let start = self.start_offset();
        if offset < 0 || offset > end {
            return Err(LogError::OutOfRange { offset, start, end });
        }
        self.start_floor = self.start_floor.max(offset);
        while self.segments.len() > 1 {
            let oldest = self.segments.values().next().expect("more than one");
            if oldest.next_offset() > self.start_floor {
                break;
            }
            let base = oldest.base_offset();
            let segment = self.segments.remove(&base).expect("present");
            tracing::info!(dir = %self.dir.display(), base, "DeleteRecords deleted a segment");
            segment.delete()?;
        }
        self.txns.trim(self.start_offset());
        Ok(self.start_offset())
    }

    /// The partition's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The offset the next record will get.
    pub fn end_offset(&self) -> i64 {
        self.segments
            .values()
            .next_back()
            .map_or(0, Segment::next_offset)
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Bytes of log across segments.
    pub fn size(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }

    /// Checks every batch in `records` (whole, magic 2, CRC), gives them
    /// consecutive offsets from the log's end, and appends them with one
    /// write (rolling first if the active segment is full or old). Returns
    /// the first and last offsets. On any bad batch nothing is appended.
    pub fn append(&mut self, records: &[u8]) -> Result<(i64, i64), LogError> {
        let staged = self.stage(records)?;
        self.commit()?;
        Ok((staged.base, staged.last))
    }

    /// Checks `records` as [`append`](Self::append) does and gives them
    /// offsets after everything already staged, but only copies them into
    /// the staging buffer: [`commit`](Self::commit) writes all that is
    /// staged with one write. This is the group commit of the log writer.
    ///
    /// Batches of idempotent producers are checked against the producer
    /// state first (see [`producers`](super::producers)): a retry of a
    /// batch already written or staged returns that batch's offsets and
    /// stages nothing; one out of sequence or from a fenced epoch is
    /// refused with [`LogError::Sequence`].
    ///
    /// Under [`LogConfig::log_append_time`] each batch is stamped with the
    /// broker's clock as it is staged (its max timestamp, its timestamp
    /// type, its CRC again), and the answer says when.
    pub fn stage(&mut self, records: &[u8]) -> Result<Staged, LogError> {
        let parts = batch::split(records)?;
        if parts.is_empty() {
            return Err(LogError::Corrupt(BatchError::Truncated {
                needed: batch::HEADER_LEN,
                available: 0,
            }));
        }
        let max = self.config.max_message_bytes;
        if let Some((_, big)) = parts.iter().find(|(_, r)| r.len() as u64 > max) {
            return Err(LogError::TooLarge {
                size: big.len() as u64,
                max,
            });
        }
        if self.config.cleanup.compact {
            let mut index = 0i64;
            for (h, range) in &parts {
                if let Some(delta) = records::first_keyless(&records[range.clone()], h)? {
                    return Err(LogError::NoKey {
                        index: index + i64::from(delta),
                    });
                }
                index += i64::from(h.record_count);
            }
        }
        if self.staged.is_empty() {
            self.maybe_roll()?;
        } else {
            let active = self.segments.values().next_back().expect("a segment");
            let after = active.size() + (self.staged.len() + records.len()) as u64;
            if after > self.config.segment_bytes {
                // This group fills the segment: write what is staged there
                // and start the rest in a new one.
                self.commit()?;
                self.maybe_roll()?;
            }
        }
        let verdict = match &parts[..] {
            [(one, _)] => self.producers.check(std::slice::from_ref(one))?,
            _ => {
                let headers: Vec<BatchHeader> = parts.iter().map(|(h, _)| *h).collect();
                self.producers.check(&headers)?
            }
        };
        for (h, _) in &parts {
            self.txns.check(h)?;
        }
        if let Verdict::Duplicate { base, last } = verdict {
            // A transactional batch that repeats the sequence of one whose
            // transaction has since ended (a marker followed it) is no
            // retry: a producer sends no batch of a transaction after
            // ending it. It is new data under a sequence the producer
            // reused, and answering it as a duplicate would drop it while
            // its transaction commits. librdkafka did so after a kill -9
            // fell inside an aborted transaction: it counted a batch the
            // broker had written as purged and gave its sequence to the
            // next transaction's first record (`transactions_crash.py`,
            // about one run in 25). Refused as out of order, the producer
            // bumps its epoch and the transaction aborts, seen.
            let h = &parts[0].0;
            if h.is_transactional() && self.txns.ended_after(h.producer_id, base) {
                return Err(self.producers.reused(h).into());
            }
            return Ok(Staged {
                base,
                last,
                append_time: None,
            });
        }
        let first = self.staged_end();
        let mut next = first;
        let now = now_ms();
        for (header, range) in parts {
            let at = self.staged.len();
            self.staged.extend_from_slice(&records[range]);
            batch::set_base_offset(&mut self.staged[at..], next);
            batch::set_leader_epoch(&mut self.staged[at..], self.leader_epoch);
            let mut h = header;
            h.partition_leader_epoch = self.leader_epoch;
            if self.config.log_append_time {
                batch::set_log_append_time(&mut self.staged[at..], &mut h, now);
            }
            h.base_offset = next;
            next = h.next_offset();
            self.staged_headers.push(h);
            self.producers.record(&h, now);
            if h.is_transactional() {
                let marker = batch::read_marker(&self.staged[at..]);
                self.txns.observe(&h, marker);
            }
        }
        Ok(Staged {
            base: first,
            last: next - 1,
            append_time: self.config.log_append_time.then_some(now),
        })
    }

    /// The offset the next staged record will get.
    pub fn staged_end(&self) -> i64 {
        self.staged_headers
            .last()
            .map_or_else(|| self.end_offset(), BatchHeader::next_offset)
    }

    /// Writes everything staged to the active segment, in one write. On an
    /// error nothing staged is kept (the segment's tail is cut back).
    pub fn commit(&mut self) -> io::Result<()> {
        if self.staged_headers.is_empty() {
            return Ok(());
        }
        let staged = std::mem::take(&mut self.staged);
        let headers = std::mem::take(&mut self.staged_headers);
        let mut at = 0;
        let batches: Vec<(BatchHeader, &[u8])> = headers
            .iter()
            .map(|h| {
                let b = &staged[at..at + h.size];
                at += h.size;
                (*h, b)
            })
            .collect();
        let result = self.active().append(&batches);
        self.unsynced.store(true, Ordering::Relaxed);
        match result {
            Ok(()) => {
                self.producers.keep_group();
                self.txns.keep_group();
                if self.epochs_unwritten {
                    self.write_epochs();
                }
            }
            Err(_) => {
                self.producers.undo_group();
                self.txns.undo_group();
            }
        }
        // Keep the buffers' capacity for the next group.
        let (mut staged, mut headers) = (staged, headers);
        staged.clear();
        headers.clear();
        self.staged = staged;
        self.staged_headers = headers;
        result
    }

    fn maybe_roll(&mut self) -> io::Result<()> {
        let config = self.config.clone();
        let active = self.active();
        let too_big = active.size() >= config.segment_bytes;
        let too_old = config.segment_age.is_some_and(|age| {
            active.size() > 0 && now_ms() - active.created_ms() >= age.as_millis() as i64
        });
        if too_big || too_old {
            self.roll()?;
        }
        Ok(())
    }

    /// Starts a new segment at the log's end.
    pub fn roll(&mut self) -> io::Result<()> {
        let base = self.end_offset();
        if self.active().size() == 0 {
            return Ok(());
        }
        let segment = Segment::create(
            &self.dir,
            base,
            self.config.index_interval,
            &self.open_files,
        )?;
        self.segments.insert(base, segment);
        self.unsynced.store(true, Ordering::Relaxed);
        self.folder_unsynced.store(true, Ordering::Relaxed);
        // The transactions and producers as of the roll (nothing is
        // staged when a log rolls; not synced: a snapshot a crash leaves
        // past the log's end is ignored), so a start after a crash reads
        // back at most the active segment for them. For the producers
        // this also keeps those whose every batch compaction removed from
        // the closed segments (else read back from the log's last two
        // segments, they would be forgotten, as an expired producer is).
        if let Err(e) = self.write_snapshot(TXN_SNAPSHOT, self.txns.snapshot(base), false) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write the transactions snapshot at a roll");
        }
        let producers = self.producers.snapshot(base);
        if let Err(e) = self.write_snapshot(PRODUCER_SNAPSHOT, producers, false) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write the producers snapshot at a roll");
        }
        Ok(())
    }

    /// Makes everything appended durable: the active segment and every
    /// segment rolled since the last sync (Kafka flushes each rolled
    /// segment; here the next sync does), and the log's folder when a
    /// segment was created since it was last synced.
    pub fn sync(&self) -> io::Result<()> {
        crate::failpoint::io_error("fsync", &self.dir)?;
        // Cleared first: an append racing the sync is impossible (one
        // thread writes a log), and a failed sync sets it again.
        self.unsynced.store(false, Ordering::Relaxed);
        let active = self.active_base();
        let synced = self.unsynced_segments().rev().try_for_each(Segment::sync);
        let synced = synced.and_then(|()| match self.folder_unsynced.load(Ordering::Relaxed) {
            true => folder_sync::sync_folder(&self.dir),
            false => Ok(()),
        });
        if let Err(e) = synced {
            self.unsynced.store(true, Ordering::Relaxed);
            return Err(e);
        }
        self.folder_unsynced.store(false, Ordering::Relaxed);
        self.sync_from.store(active, Ordering::Relaxed);
        Ok(())
    }

    /// Handles on the files [`PartitionLog::sync`] would sync, for a sync
    /// on another thread: the segments' files (for an fdatasync) appended
    /// to `files`, and the log's folder when it needs it (for an fsync:
    /// an fdatasync of a folder need not cover an entry added to a block
    /// it already had) to `folders`. Returns the active segment's base,
    /// for [`handed_over`](Self::handed_over) once the thread has taken
    /// them.
    pub fn sync_handles(&self, files: &mut Vec<File>, folders: &mut Vec<File>) -> io::Result<i64> {
        let active = self.active_base();
        for segment in self.unsynced_segments() {
            files.extend(segment.sync_handles()?);
        }
        if self.folder_unsynced.load(Ordering::Relaxed) {
            folders.push(File::open(&self.dir)?);
        }
        Ok(active)
    }

    /// The handles [`sync_handles`](Self::sync_handles) gave, taken when
    /// the segment at `active` was the active one, are being synced: later
    /// syncs start there, and the folder is covered.
    pub fn handed_over(&self, active: i64) {
        self.sync_from.store(active, Ordering::Relaxed);
        self.folder_unsynced.store(false, Ordering::Relaxed);
    }

    /// The segments a sync covers: the active one and every one rolled
    /// since the last sync.
    fn unsynced_segments(&self) -> impl DoubleEndedIterator<Item = &Segment> {
        self.segments
            .range(self.sync_from.load(Ordering::Relaxed)..)
            .map(|(_, s)| s)
    }

    fn active_base(&self) -> i64 {
        *self
            .segments
            .keys()
            .next_back()
            .expect("a log always has a segment")
    }

    /// Whole batches starting with the one holding `offset`, up to
    /// `max_bytes` (at least one batch); `None` at the log's end.
    pub fn read(&self, offset: i64, max_bytes: u64) -> Result<Option<LogSlice>, LogError> {
        self.read_below(offset, max_bytes, self.end_offset())
    }

    /// [`read`](Self::read), stopping before the batch at `limit` (a
    /// batch boundary: the last stable offset for a `read_committed`
    /// reader); `None` at or after it.
    pub fn read_below(
        &self,
        offset: i64,
        max_bytes: u64,
        limit: i64,
    ) -> Result<Option<LogSlice>, LogError> {
        let (start, end) = (self.start_offset(), self.end_offset());
        if offset < start || offset > end {
            return Err(LogError::OutOfRange { offset, start, end });
        }
        if offset >= limit {
            return Ok(None);
        }
        for (_, segment) in self
            .segments
            .range(..=offset)
            .next_back()
            .into_iter()
            .chain(self.segments.range(offset + 1..))
        {
            if let Some(pos) = segment.position_of(offset)? {
                let Some((mut len, first_offset)) = segment.slice_len(pos, max_bytes)? else {
                    return Ok(None);
                };
                if limit < segment.next_offset() {
                    if let Some(stop) = segment.position_of(limit)? {
                        len = len.min(stop.saturating_sub(pos));
                    }
                }
                if len == 0 {
                    return Ok(None);
                }
                return Ok(Some(LogSlice {
                    region: segment.region(pos, len)?,
                    first_offset,
                }));
            }
        }
        Ok(None)
    }

    /// [`read_below`](Self::read_below), with the header of each batch
    /// read, in order (a share group's fetch acquires records by batch),
    /// stopping once the batches hold `max_records` records from `offset`.
    /// The read starts small and grows only while it falls short of the
    /// records: a fetch of a few hundred records from a long backlog walks
    /// the headers of a few batches, not of `max_bytes` of them.
    pub fn read_batches(
        &self,
        offset: i64,
        max_bytes: u64,
        limit: i64,
        max_records: usize,
    ) -> Result<Option<(LogSlice, Vec<BatchHeader>)>, LogError> {
        let mut budget = max_bytes.min(FIRST_SHARE_READ);
        loop {
            let Some(slice) = self.read_below(offset, budget, limit)? else {
                return Ok(None);
            };
            let Some((_, segment)) = self.segments.range(..=slice.first_offset).next_back() else {
                return Ok(None);
            };
            let (pos, end) = (
                slice.region.offset(),
                slice.region.offset() + slice.region.len(),
            );
            let headers = segment.headers(pos, end)?;
            let records: usize = headers
                .iter()
                .map(|h| (h.last_offset() - h.base_offset.max(offset) + 1).max(0) as usize)
                .sum();
            // Enough records, no more bytes allowed, or the read stopped
            // short of its budget (the limit, the segment's end): done.
            let short = slice.region.len() < budget / 2;
            if records >= max_records || budget >= max_bytes || short {
                return Ok(Some((slice, headers)));
            }
            budget = budget.saturating_mul(4).min(max_bytes);
        }
    }

    /// Where a read from `offset` of up to `max_bytes` will look: from the
    /// offset index's entry at or before `offset`, a read's worth of bytes
    /// and two index intervals more (the reach of the search for
    /// `offset`'s batch). Reads nothing. `None` near the log's end (the
    /// last [`NEAR_END`] bytes, written lately and so cached as a rule: a
    /// consumer keeping up costs nothing here) and for an offset the log
    /// does not hold. A fetch whose window is not in the page cache has a
    /// loader read it in before [`read_below`](Self::read_below) runs
    /// (see `crate::cache_loader`), so neither its search nor the
    /// `sendfile` of what it finds waits on the disk.
    pub fn fetch_window(&self, offset: i64, max_bytes: u64) -> Option<FileRegion> {
        // A reader that has caught up (most partitions of most fetches)
        // has nothing to load: no segment lookup for it.
        if offset >= self.end_offset() {
            return None;
        }
        let (&base, segment) = self.segments.range(..=offset).next_back()?;
        if offset >= segment.next_offset() || offset < self.start_offset() {
            return None;
        }
        let pos = segment.indexed_position(offset);
        let active = *self.segments.keys().next_back()?;
        if base == active && segment.size().saturating_sub(pos) <= NEAR_END {
            return None;
        }
        let reach = max_bytes.saturating_add(2 * self.config.index_interval);
        let len = reach.min(segment.size().saturating_sub(pos));
        (len > 0).then(|| segment.region(pos, len).ok()).flatten()
    }

    /// One past the last offset of `slice` (as [`read`](Self::read) gave
    /// it): the next batch's base offset, or its segment's end.
    pub fn offset_after(&self, slice: &LogSlice) -> io::Result<i64> {
        let Some((_, segment)) = self.segments.range(..=slice.first_offset).next_back() else {
            return Ok(self.end_offset());
        };
        let after = slice.region.offset() + slice.region.len();
        if after < segment.size() {
            Ok(segment.header_at(after)?.base_offset)
        } else {
            Ok(segment.next_offset())
        }
    }

    /// The first record kept (at or after the log start) whose timestamp
    /// is at or after `timestamp`: its offset and timestamp; `None` if
    /// every kept record is older.
    pub fn offset_for_time(&self, timestamp: i64) -> io::Result<Option<(i64, i64)>> {
        let start = self.start_offset();
        for segment in self.segments.values() {
            if let Some(found) = segment.offset_for_time(timestamp, start)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The largest record timestamp of the records kept, if any.
    pub fn max_timestamp(&self) -> Option<i64> {
        if self.start_offset() >= self.end_offset() {
            return None;
        }
        self.segments
            .values()
            .filter(|s| s.next_offset() > self.start_offset())
            .map(Segment::max_timestamp)
            .max()
    }

    /// Each segment with open files: when they were last used, and the
    /// segment's base offset (for [`close_segment_files`]).
    ///
    /// [`close_segment_files`]: Self::close_segment_files
    pub fn open_segment_files(&self) -> impl Iterator<Item = (u64, i64)> + '_ {
        self.segments
            .values()
            .filter_map(|s| Some((s.files_last_used()?, s.base_offset())))
    }

    /// Closes the files of the segment at `base` (they reopen on next use).
    pub fn close_segment_files(&self, base: i64) {
        if let Some(segment) = self.segments.get(&base) {
            segment.close_files();
        }
    }

    /// What the log cleaner should compact now, if the log's policy
    /// compacts and enough of it is dirty (Kafka's
    /// `min.cleanable.dirty.ratio`), or the last pass kept a tombstone or
    /// marker that may go by now.
    pub fn cleaning_plan(&self) -> io::Result<Option<CleanPlan>> {
        if !self.config.cleanup.compact {
            return Ok(None);
        }
        let lso = self.last_stable_offset();
        let young_from = now_ms() - self.config.min_compaction_lag.as_millis() as i64;
        let mut segments = Vec::new();
        let mut end = self.end_offset();
        for (i, s) in self.segments.values().enumerate() {
            let active = i + 1 == self.segments.len();
            let young = !self.config.min_compaction_lag.is_zero() && s.max_timestamp() > young_from;
            if active || s.next_offset() > lso || young {
                end = s.base_offset();
                break;
            }
            segments.push(cleaner::SegmentFile {
                base: s.base_offset(),
                path: s.log_path().to_owned(),
                size: s.size(),
                modified: std::fs::metadata(s.log_path())?.modified()?,
            });
        }
        // A segment is compacted when every offset it holds is below the
        // offset compaction reached (a pass whose map filled stops inside
        // a segment, which is then dirty again).
        let first_dirty = (0..segments.len())
            .find(|&i| segments.get(i + 1).map_or(end, |f| f.base) > self.clean_below)
            .unwrap_or(segments.len());
        let dirty: u64 = segments[first_dirty..].iter().map(|f| f.size).sum();
        let total: u64 = segments.iter().map(|f| f.size).sum();
        let dirty_ratio = if total == 0 {
            0.0
        } else {
            dirty as f64 / total as f64
        };
        let overdue = self.config.max_compaction_lag.is_some_and(|lag| {
            segments.get(first_dirty).is_some_and(|f| {
                f.modified
                    .elapsed()
                    .is_ok_and(|since_written| since_written >= lag)
            })
        });
        // A log otherwise clean is passed over again when the last pass
        // kept something that may go by now.
        let recheck = first_dirty > 0
            && self
                .recheck_at
                .is_some_and(|at| at <= std::time::SystemTime::now());
        if !recheck
            && (dirty == 0 || (dirty_ratio < self.config.min_cleanable_dirty_ratio && !overdue))
        {
            return Ok(None);
        }
        Ok(Some(CleanPlan {
            dir: self.dir.clone(),
            log_id: self.id,
            segments,
            first_dirty,
            clean_below: self.clean_below,
            end,
            aborted: self.txns.aborted_below(end),
            producers_last: self.producers.last_offsets(),
            // A retention as long as Kafka's largest long reaches back
            // before the epoch: no tombstone is ever old enough (a clock
            // that cannot go back that far stops at the epoch).
            tombstone_horizon: std::time::SystemTime::now()
                .checked_sub(self.config.delete_retention)
                .unwrap_or(std::time::UNIX_EPOCH),
            delete_retention: self.config.delete_retention,
            index_interval: self.config.index_interval,
            segment_bytes: self.config.segment_bytes,
            dirty_ratio,
        }))
    }

    /// The offset below which the log may have been compacted.
    pub fn clean_below(&self) -> i64 {
        self.clean_below
    }

    /// Swaps in the compacted copies the cleaner left in the log's
    /// `cleaning/` folder, one for each run of segments of `plan` in
    /// `cleaned.groups` (the copy, named by the run's first base, replaces
    /// the whole run), and records that the log is compacted below
    /// `cleaned.clean_below` and when a pass with no new records could
    /// remove more (`cleaned.stats.removable_at`). A
    /// copy any of whose segments is gone or changed since the plan
    /// (retention deleted it, the log was deleted) is dropped.
    /// Crash-safe: the offset is recorded first (gaps below it are then
    /// accepted), the runs kept are listed in `cleaning/`, `cleaning/` is
    /// renamed `cleaned/` (from here a start finishes the swap), then each
    /// run is swapped ([`cleaner::swap_run`]). An empty copy deletes its
    /// run, unless the run starts the log (which keeps the log's start).
    /// Aborted transactions wholly below the clean offset are forgotten
    /// once every run is swapped: their records are gone.
    /// Returns how many segments were replaced.
    pub fn swap_cleaned(&mut self, plan: &CleanPlan, cleaned: &Cleaned) -> io::Result<usize> {
        let runs = &cleaned.groups;
        let cleaning = self.dir.join(cleaner::CLEANING_DIR);
        let active = self.segments.keys().next_back().copied();
        let unchanged = |base: &i64| {
            plan.log_id == self.id
                && Some(*base) != active
                && plan.segments.iter().any(|f| {
                    f.base == *base && self.segments.get(base).is_some_and(|s| s.size() == f.size)
                })
        };
        let (keep, stale): (Vec<&Vec<i64>>, Vec<&Vec<i64>>) = runs
            .iter()
            .filter(|run| !run.is_empty())
            .partition(|run| run.iter().all(unchanged));
        for run in stale {
            for f in cleaner::segment_files(&cleaning, run[0]) {
                let _ = std::fs::remove_file(f);
            }
        }
        if keep.is_empty() {
            let _ = std::fs::remove_dir_all(&cleaning);
            self.recheck_at = cleaned.stats.removable_at;
            return Ok(0);
        }
        let below = cleaned.clean_below.max(self.clean_below);
        cleaner::write_checkpoint(&self.dir, below, cleaned.stats.removable_at)?;
        self.clean_below = below;
        self.recheck_at = cleaned.stats.removable_at;
        let keep: Vec<Vec<i64>> = keep.into_iter().cloned().collect();
        cleaner::write_runs(&cleaning, &keep)?;
        let swapped = self.dir.join(cleaner::CLEANED_DIR);
        std::fs::rename(&cleaning, &swapped)?;
        folder_sync::sync_folder(&self.dir)?;
        let first = self.segments.keys().next().copied();
        let mut replaced = 0;
        for run in &keep {
            let empty =
                std::fs::metadata(cleaner::segment_files(&swapped, run[0])[0].clone())?.len() == 0;
            for base in run {
                // Their files close; regions already handed out keep
                // their own descriptors.
                drop(self.segments.remove(base));
            }
            replaced += run.len();
            if empty && Some(run[0]) != first {
                for f in cleaner::segment_files(&swapped, run[0]) {
                    std::fs::remove_file(f)?;
                }
            }
            cleaner::swap_run(&self.dir, &swapped, run)?;
            if empty && Some(run[0]) != first {
                for f in cleaner::segment_files(&self.dir, run[0]) {
                    std::fs::remove_file(f)?;
                }
                continue;
            }
            let (segment, cut) = Segment::open(
                &self.dir,
                run[0],
                self.config.index_interval,
                Scan::Tail,
                below,
                &self.open_files,
            )?;
            if let Some(cut) = cut {
                tracing::error!(file = %cut.file.display(), reason = %cut.reason, "a compacted segment failed its check");
            }
            segment.close_files();
            self.segments.insert(run[0], segment);
        }
        std::fs::remove_dir_all(&swapped)?;
        folder_sync::sync_folder(&self.dir)?;
        if keep.len() == runs.len() {
            // Every segment below `below` is a compacted copy now, without
            // the records of aborted transactions: a reader needs no word
            // of those any more (their markers stay for now, and clients
            // skip them; the next pass removes them). Without this a
            // compacted log, which retention never trims, would remember
            // every abort for good.
            self.txns.trim(below);
            // A start then reads back the trimmed state, not aborts whose
            // markers the next pass removes (not synced, as at a roll: a
            // start that finds an older snapshot checks its aborts'
            // markers are still there).
            let end = self.end_offset();
            if let Err(e) = self.write_snapshot(TXN_SNAPSHOT, self.txns.snapshot(end), false) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write the transactions snapshot after compaction");
            }
        }
        Ok(replaced)
    }

    /// Deletes whole old segments (never the active one) past the
    /// retention limits; returns how many went.
    pub fn enforce_retention(&mut self) -> io::Result<usize> {
        let now = now_ms();
        self.producers
            .expire(now - PRODUCER_EXPIRY.as_millis() as i64);
        let mut deleted = 0;
        // A compacted log keeps every key's last record however old, unless
        // its policy also deletes.
        while self.config.cleanup.delete && self.segments.len() > 1 {
            let total = self.size();
            let oldest = self.segments.values().next().expect("more than one");
            let over_size = self
                .config
                .retention_bytes
                .is_some_and(|limit| total - oldest.size() >= limit);
            let expired = self.config.retention_age.is_some_and(|age| {
                oldest.max_timestamp() >= 0 && now - oldest.max_timestamp() > age.as_millis() as i64
            });
            if !(over_size || expired) {
                break;
            }
            let base = oldest.base_offset();
            let segment = self.segments.remove(&base).expect("present");
            tracing::info!(
                dir = %self.dir.display(),
                base,
                bytes = segment.size(),
                "retention deleted a segment"
            );
            segment.delete()?;
            deleted += 1;
        }
        self.txns.trim(self.start_offset());
        Ok(deleted)
    }
}

/// The two snapshots' texts as one number, to tell whether they changed.
fn snapshot_crcs(producers: &str, txns: &str) -> u64 {
    (u64::from(crc32c::crc32c(producers.as_bytes())) << 32)
        | u64::from(crc32c::crc32c(txns.as_bytes()))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn a_share_read_walks_the_batches_its_records_need_not_its_bytes() {
        let dir = std::env::temp_dir().join(format!("gyre-share-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut log, _) = PartitionLog::open(&dir, LogConfig::default()).unwrap();
        let value = [b'v'; 1000];
        for _ in 0..2000 {
            log.append(&batch::build(0, 0, &[&value[..]; 10])).unwrap();
        }
        let end = log.end_offset();
        // 25 records from offset 5: three batches, not 50 MB of them.
        let (slice, headers) = log.read_batches(5, 50 << 20, end, 25).unwrap().unwrap();
        assert!(headers.len() < 40, "{} batches walked", headers.len());
        assert_eq!(headers[0].base_offset, 0);
        assert!(slice.region.len() <= FIRST_SHARE_READ + 11_000);
        // Many records: the read grows to hold them (or its bytes).
        let (_, headers) = log.read_batches(0, 50 << 20, end, 15_000).unwrap().unwrap();
        let records: i64 = headers
            .iter()
            .map(|h| h.last_offset() - h.base_offset + 1)
            .sum();
        assert!(records >= 15_000, "{records} records read");
        let (_, headers) = log.read_batches(0, 100_000, end, 15_000).unwrap().unwrap();
        assert!(
            headers.len() <= 10,
            "bounded by its bytes: {}",
            headers.len()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A one-record batch of transactional producer `pid` at epoch 0.
    fn txn_batch(pid: i64) -> Vec<u8> {
        let mut b = batch::build(0, 0, &[b"t"]);
        batch::set_producer(&mut b, pid, 0, 0);
        batch::set_transactional(&mut b);
        b
    }

    /// The segment files of the log in `dir`, in offset order.
    pub(in crate::log) fn log_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        files.sort();
        files
    }

    /// The header of every batch of the log in `dir`, read from its
    /// segment files in offset order.
    pub(in crate::log) fn stored_headers(dir: &Path) -> Vec<BatchHeader> {
        let mut out = Vec::new();
        for f in log_files(dir) {
            let bytes = std::fs::read(f).unwrap();
            let mut at = 0;
            while at < bytes.len() {
                let h = batch::parse_header(&bytes[at..]).unwrap();
                at += h.size;
                out.push(h);
            }
        }
        out
    }

    /// Every record of the log in `dir`, read from its segment files in
    /// offset order: (offset, key, has a value).
    fn stored_records(dir: &Path) -> Vec<(i64, String, bool)> {
        let mut out = Vec::new();
        for f in log_files(dir) {
            let mut buf = bytes::Bytes::from(std::fs::read(f).unwrap());
            while !buf.is_empty() {
                let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).unwrap();
                for r in set.records {
                    let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                    out.push((r.offset, key, r.value.is_some()));
                }
            }
        }
        out
    }

    /// A compacted log's config, with small segments.
    fn log_config_compact() -> LogConfig {
        LogConfig {
            segment_bytes: 400,
            index_interval: 100,
            cleanup: Cleanup {
                delete: false,
                compact: true,
            },
            ..LogConfig::default()
        }
    }

    /// A compacted log of small segments holding keys `k0`..`k3` written
    /// `rounds` times (one record a batch), then a tombstone for `k1`.
    fn compacted_log(dir: &Path, rounds: i64) -> PartitionLog {
        use crate::log::records::tests::keyed_batch;
        use kafka_protocol::records::Compression;
        let _ = std::fs::remove_dir_all(dir);
        let (mut log, _) = PartitionLog::open(dir, log_config_compact()).unwrap();
        for i in 0..rounds * 4 {
            let key = format!("k{}", i % 4);
            let value = format!("v{i}");
            log.append(&keyed_batch(
                0,
                &[(Some(&key), Some(&value))],
                Compression::None,
            ))
            .unwrap();
        }
        log.append(&keyed_batch(0, &[(Some("k1"), None)], Compression::None))
            .unwrap();
        // The tombstone's segment closes, so it is compacted too.
        log.roll().unwrap();
        log
    }

    /// One whole pass over `log`: plan, clean, swap.
    fn compact(log: &mut PartitionLog) -> usize {
        compact_with(log, 1000)
    }

    /// [`compact`] with a map of `capacity` keys.
    fn compact_with(log: &mut PartitionLog, capacity: usize) -> usize {
        let plan = log.cleaning_plan().unwrap().expect("dirty enough");
        let stop = std::sync::atomic::AtomicBool::new(false);
        let cleaned =
            cleaner::clean(&plan, capacity, &crate::log::pace::Pace::unthrottled(&stop)).unwrap();
        log.swap_cleaned(&plan, &cleaned).unwrap()
    }

    #[test]
    fn compaction_keeps_each_keys_last_record_and_reads_skip_its_gaps_across_an_unclean_start() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-compact-{}", std::process::id()));
        let mut log = compacted_log(&dir, 10);
        let before = log.segment_count();
        assert!(before > 4, "{before} segments");
        assert!(
            log.swap_cleaned(&log.cleaning_plan().unwrap().unwrap(), &Cleaned::default())
                .unwrap()
                == 0
        );
        assert!(compact(&mut log) > 0);
        assert!(log.segment_count() < before, "emptied segments went");
        let kept = stored_records(&dir);
        assert_eq!(
            kept,
            vec![
                (36, "k0".into(), true),
                (38, "k2".into(), true),
                (39, "k3".into(), true),
                (40, "k1".into(), false)
            ],
            "the tombstone stays: its segment is younger than delete.retention.ms"
        );
        assert_eq!(log.start_offset(), 0, "the first segment stays, empty");
        assert_eq!(log.end_offset(), 41);
        // A reader in a gap gets the next record kept.
        let slice = log.read(3, 1 << 20).unwrap().unwrap();
        assert_eq!(slice.first_offset, 36);
        let slice = log.read(37, 1 << 20).unwrap().unwrap();
        assert_eq!(slice.first_offset, 38);
        assert!(log.cleaning_plan().unwrap().is_none(), "nothing dirty now");
        // More writes: the next pass merges the small compacted segments
        // it reads again (up to segment.bytes), as Kafka's does.
        let compacted = log.segment_count() - 1;
        assert!(compacted > 1, "{compacted} compacted segments");
        for i in 0..8 {
            let key = format!("n{}", i % 2);
            log.append(&crate::log::records::tests::keyed_batch(
                0,
                &[(Some(&key), Some("new"))],
                kafka_protocol::records::Compression::None,
            ))
            .unwrap();
        }
        log.roll().unwrap();
        compact(&mut log);
        let bases: Vec<i64> = log.segments.keys().copied().collect();
        assert_eq!(
            bases,
            [0, 47, 49],
            "the {compacted} compacted segments merged into one; of the new ones, the emptied went"
        );
        let kept: Vec<(i64, String, bool)> = kept
            .into_iter()
            .chain([(47, "n0".into(), true), (48, "n1".into(), true)])
            .collect();
        assert_eq!(stored_records(&dir), kept);
        drop(log);
        // After an unclean stop every batch is checked: the gaps below
        // the cleaner's offset are not damage.
        let (log, cut) =
            PartitionLog::open_with(&dir, LogConfig::default(), Recovery::From(0)).unwrap();
        assert!(cut.is_empty(), "{cut:?}");
        assert_eq!(stored_records(&dir), kept);
        assert_eq!(log.end_offset(), 49);
        drop(log);
        // Without the cleaner's offset the same gaps would be cut as
        // damage: that file is what lets them through.
        std::fs::remove_file(dir.join(cleaner::CLEANER_OFFSET)).unwrap();
        let (_, cut) =
            PartitionLog::open_with(&dir, LogConfig::default(), Recovery::From(0)).unwrap();
        assert!(!cut.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn passes_whose_map_fills_inside_a_segment_still_reach_the_whole_compaction() {
        let whole =
            gyre_testkit::scratch_root().join(format!("gyre-mapfull-a-{}", std::process::id()));
        let mut log = compacted_log(&whole, 10);
        compact(&mut log);
        let expected = stored_records(&whole);
        drop(log);
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-mapfull-b-{}", std::process::id()));
        let mut log = compacted_log(&dir, 10);
        log.set_config(LogConfig {
            min_cleanable_dirty_ratio: 0.0,
            ..log_config_compact()
        });
        // Three keys a pass, of four: each pass stops inside a segment.
        let mut passes = 0;
        while log.cleaning_plan().unwrap().is_some() {
            compact_with(&mut log, 3);
            passes += 1;
            assert!(passes < 100, "no progress");
        }
        assert!(passes > 2, "{passes} passes");
        assert_eq!(stored_records(&dir), expected);
        drop(log);
        let (_, cut) =
            PartitionLog::open_with(&dir, LogConfig::default(), Recovery::From(0)).unwrap();
        assert!(cut.is_empty(), "{cut:?}");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&whole).unwrap();
    }

    #[test]
    fn compaction_drops_aborted_records_and_forgets_their_aborts() {
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-compact-abort-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut log, _) = PartitionLog::open(&dir, log_config_compact()).unwrap();
        let keyed = |key: &str, value: &str| {
            batch::build_keyed(0, 1_000, &[(Some(key.as_bytes()), value.as_bytes())])
        };
        log.append(&keyed("k", "committed")).unwrap(); // 0
        log.add_to_transaction(5, 0);
        let mut aborted = keyed("k", "aborted");
        batch::set_producer(&mut aborted, 5, 0, 0);
        batch::set_transactional(&mut aborted);
        log.append(&aborted).unwrap(); // 1
        log.stage_marker(5, 0, Marker::Abort, 0).unwrap(); // 2
        log.commit().unwrap();
        for i in 0..6 {
            log.append(&keyed(&format!("other-{i}"), &"x".repeat(80)))
                .unwrap();
        }
        log.roll().unwrap();
        assert_eq!(log.aborted_between(0, log.end_offset()), vec![(5, 1)]);
        compact(&mut log);
        let kept = stored_records(&dir);
        assert_eq!(kept[0], (0, "k".into(), true), "the committed value stays");
        assert!(
            kept.iter().all(|r| r.0 != 1),
            "the aborted one went: {kept:?}"
        );
        assert_eq!(log.aborted_between(0, log.end_offset()), vec![]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The markers in the log files of `dir`, in offset order: (offset,
    /// producer, kind).
    fn stored_markers(dir: &Path) -> Vec<(i64, i64, Marker)> {
        let mut out = Vec::new();
        for f in log_files(dir) {
            let bytes = std::fs::read(f).unwrap();
            for (h, b) in batch::split(&bytes).unwrap() {
                if let Some(m) = batch::read_marker(&bytes[b]) {
                    out.push((h.base_offset, h.producer_id, m));
                }
            }
        }
        out
    }

    #[test]
    fn an_abort_marker_goes_on_the_pass_after_its_records_with_no_new_records_and_stays_forgotten()
    {
        let dir = gyre_testkit::scratch_dir("compact-abort-marker");
        let config = LogConfig {
            delete_retention: Duration::ZERO,
            ..log_config_compact()
        };
        let (mut log, _) = PartitionLog::open(&dir, config.clone()).unwrap();
        let keyed = |key: &str, value: &str| {
            batch::build_keyed(0, 1_000, &[(Some(key.as_bytes()), value.as_bytes())])
        };
        let of_producer_5 = |key: &str, value: &str, sequence| {
            let mut b = keyed(key, value);
            batch::set_producer(&mut b, 5, 0, sequence);
            batch::set_transactional(&mut b);
            b
        };
        log.append(&keyed("k", "committed")).unwrap(); // 0
        log.add_to_transaction(5, 0);
        log.append(&of_producer_5("k", "aborted", 0)).unwrap(); // 1
        log.stage_marker(5, 0, Marker::Abort, 0).unwrap(); // 2
        log.commit().unwrap();
        // The producer's next transaction commits.
        log.add_to_transaction(5, 0);
        log.append(&of_producer_5("later", "committed", 1)).unwrap(); // 3
        log.stage_marker(5, 0, Marker::Commit, 0).unwrap(); // 4
        log.commit().unwrap();
        for i in 0..6 {
            log.append(&keyed(&format!("other-{i}"), &"x".repeat(80)))
                .unwrap();
        }
        log.roll().unwrap();
        // A snapshot from before compaction, naming the abort.
        log.write_producer_snapshot().unwrap();
        let stale = std::fs::read(dir.join(TXN_SNAPSHOT)).unwrap();
        assert_eq!(log.aborted_between(0, log.end_offset()), vec![(5, 1)]);

        // The first pass removes the aborted record and the index entry,
        // and keeps the marker: a fetch answered before the swap named
        // the transaction with the records.
        compact(&mut log);
        assert!(stored_records(&dir).iter().all(|r| r.0 != 1));
        assert_eq!(log.aborted_between(0, log.end_offset()), vec![]);
        assert_eq!(
            stored_markers(&dir),
            [(2, 5, Marker::Abort), (4, 5, Marker::Commit)]
        );
        // Nothing is dirty, but the marker may go now: the log is passed
        // over again, across a restart too.
        drop(log);
        let (mut log, _) = PartitionLog::open(&dir, config.clone()).unwrap();
        assert!(
            log.cleaning_plan().unwrap().is_some(),
            "a clean log with a marker that may go is planned"
        );
        compact(&mut log);
        assert_eq!(
            stored_markers(&dir),
            [(4, 5, Marker::Commit)],
            "the abort marker went; the commit's record is still there"
        );
        assert!(
            log.cleaning_plan().unwrap().is_none(),
            "nothing left that waiting could remove"
        );
        let kept: Vec<i64> = stored_records(&dir).iter().map(|r| r.0).collect();
        assert_eq!(
            &kept[..3],
            [0, 3, 4],
            "the committed records and the marker"
        );

        // A start that finds the snapshot from before both passes (a
        // crash before the next snapshot) does not bring the abort back:
        // its marker is gone, and a reader told of it would skip the
        // producer's later, committed record at 3.
        drop(log);
        std::fs::write(dir.join(TXN_SNAPSHOT), stale).unwrap();
        let (log, _) = PartitionLog::open(&dir, config).unwrap();
        assert_eq!(log.aborted_between(0, log.end_offset()), vec![]);
        drop(log);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A compacted log in scratch folder `tag` keeping tombstones for
    /// `retention`: `a` and `b` written, then `a` deleted, its segment
    /// closed.
    fn tombstoned(tag: &str, retention: Duration) -> (PathBuf, PartitionLog) {
        use crate::log::records::tests::keyed_batch;
        use kafka_protocol::records::Compression;
        let dir = gyre_testkit::scratch_dir(tag);
        let config = LogConfig {
            delete_retention: retention,
            ..log_config_compact()
        };
        let (mut log, _) = PartitionLog::open(&dir, config).unwrap();
        for (key, value) in [("a", Some("1")), ("b", Some("1")), ("a", None)] {
            log.append(&keyed_batch(0, &[(Some(key), value)], Compression::None))
                .unwrap();
        }
        log.roll().unwrap();
        (dir, log)
    }

    #[test]
    fn a_tombstones_horizon_counts_from_the_pass_that_maps_it_and_a_pass_of_its_own_removes_it() {
        let retention = Duration::from_secs(600);
        let (dir, mut log) = tombstoned("compact-horizon-from-pass", retention);
        // Written an hour ago, never compacted.
        let age = |dir: &Path, by: Duration| {
            for path in log_files(dir) {
                let f = File::options().write(true).open(&path).unwrap();
                f.set_modified(std::time::SystemTime::now() - by).unwrap();
            }
        };
        age(&dir, Duration::from_secs(3_600));
        let before = std::time::SystemTime::now();
        compact(&mut log);
        let keys =
            |dir: &Path| -> Vec<String> { stored_records(dir).into_iter().map(|r| r.1).collect() };
        assert_eq!(
            keys(&dir),
            ["b", "a"],
            "the pass that removed a's value keeps its tombstone, however old its segment"
        );
        let recheck = log.recheck_at.expect("the tombstone may go later");
        assert!(
            recheck >= before + retention && recheck <= std::time::SystemTime::now() + retention,
            "delete.retention.ms from the pass"
        );
        assert!(
            log.cleaning_plan().unwrap().is_none(),
            "nothing dirty, and the horizon has not passed"
        );
        // Once it has (the copy aged past it, the recheck due), the log is
        // passed over with no new records, and the tombstone goes.
        age(&dir, retention + Duration::from_secs(1));
        log.recheck_at = Some(std::time::SystemTime::now());
        assert!(log.cleaning_plan().unwrap().is_some());
        compact(&mut log);
        assert_eq!(keys(&dir), ["b"]);
        assert_eq!(log.recheck_at, None);
        assert!(
            log.cleaning_plan().unwrap().is_none(),
            "nothing left to wait for"
        );
        drop(log);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_sync_covers_every_segment_rolled_since_the_last_one() {
        let dir = gyre_testkit::scratch_dir("sync-rolled");
        let config = LogConfig {
            segment_bytes: 100,
            ..LogConfig::default()
        };
        let (mut log, _) = PartitionLog::open(&dir, config.clone()).unwrap();
        let handles = |log: &PartitionLog| {
            let (mut out, mut folders) = (Vec::new(), Vec::new());
            let active = log.sync_handles(&mut out, &mut folders).unwrap();
            (out.len() / 3, active)
        };
        assert_eq!(handles(&log).0, 1, "a new log: its one segment");
        for i in 0..4 {
            log.append(&batch::build(i, 1_000, &[&[b'x'; 120]]))
                .unwrap();
        }
        assert_eq!(log.segments.len(), 4, "three rolls since the start");
        // Every rolled segment holds appends no sync has covered (before,
        // only the last two segments were synced).
        let (segments, active) = handles(&log);
        assert_eq!(segments, 4);
        log.handed_over(active);
        assert_eq!(handles(&log).0, 1, "handed over: only the active one");
        log.append(&batch::build(4, 1_000, &[&[b'x'; 120]]))
            .unwrap();
        log.append(&batch::build(5, 1_000, &[&[b'x'; 120]]))
            .unwrap();
        assert_eq!(handles(&log).0, 3);
        log.sync().unwrap();
        assert_eq!(handles(&log).0, 1, "synced: only the active one");
        // After an unclean stop, from the segment recovery checked.
        drop(log);
        let (log, _) = PartitionLog::open_with(&dir, config.clone(), Recovery::From(3)).unwrap();
        assert_eq!(
            handles(&log).0,
            3,
            "the segments from the one holding offset 3"
        );
        drop(log);
        let (log, _) = PartitionLog::open_with(&dir, config, Recovery::Clean).unwrap();
        assert_eq!(handles(&log).0, 1, "after a clean stop: the active one");
        drop(log);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_sync_after_a_segment_is_created_syncs_the_logs_folder_once() {
        use folder_sync::record;
        let root = gyre_testkit::scratch_dir("folder-sync");
        let dir = root.join("t").join("0");
        let config = LogConfig {
            segment_bytes: 100,
            ..LogConfig::default()
        };
        let append = |log: &mut PartitionLog, i: i64| {
            log.append(&batch::build(i, 1_000, &[&[b'x'; 120]]))
                .unwrap();
        };
        let (mut log, _) = PartitionLog::open(&dir, config.clone()).unwrap();
        record::take();
        append(&mut log, 0);
        log.sync().unwrap();
        assert_eq!(
            record::take(),
            std::slice::from_ref(&dir),
            "the new log's first segment"
        );
        log.sync().unwrap();
        assert_eq!(
            record::take(),
            [] as [PathBuf; 0],
            "nothing new in the folder"
        );
        append(&mut log, 1); // rolls: the first segment was full
        assert_eq!(log.segments.len(), 2);
        log.sync().unwrap();
        assert_eq!(
            record::take(),
            std::slice::from_ref(&dir),
            "the rolled-in segment"
        );

        // Handed to the flusher: the folder comes as one to fsync.
        append(&mut log, 2);
        let (mut files, mut folders) = (Vec::new(), Vec::new());
        let active = log.sync_handles(&mut files, &mut folders).unwrap();
        assert_eq!((files.len(), folders.len()), (6, 1));
        assert!(folders[0].metadata().unwrap().is_dir());
        log.handed_over(active);
        let (mut files, mut folders) = (Vec::new(), Vec::new());
        log.sync_handles(&mut files, &mut folders).unwrap();
        assert_eq!(
            (files.len(), folders.len()),
            (3, 0),
            "covered at the hand-over"
        );

        // A log opened on files it already had creates nothing.
        drop(log);
        let (log, _) = PartitionLog::open_with(&dir, config, Recovery::Clean).unwrap();
        record::take();
        log.sync().unwrap();
        assert_eq!(record::take(), [] as [PathBuf; 0]);
        drop(log);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn a_failed_folder_sync_fails_the_sync_and_the_next_one_syncs_the_folder_again() {
        let (root, armed) = crate::failpoint::armed_scratch("folder-sync-fail", "foldersync");
        let dir = armed.join("0");
        let (mut log, _) = PartitionLog::open(&dir, LogConfig::default()).unwrap();
        log.append(&batch::build(0, 1_000, &[b"x"])).unwrap();
        // The failpoint fails the first sync of a folder under `armed`.
        let e = log.sync().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        assert!(
            log.unsynced(),
            "not durable: a stop or the flusher syncs it again"
        );
        folder_sync::record::take();
        log.sync().unwrap();
        assert_eq!(folder_sync::record::take(), [dir]);
        drop(log);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_transactional_batch_reusing_an_ended_transactions_sequence_is_refused_not_dropped() {
        let dir = gyre_testkit::scratch_dir("seq-reuse");
        let (mut log, _) = PartitionLog::open(&dir, LogConfig::default()).unwrap();
        let txn = |value: &[u8], sequence: i32| {
            let mut b = batch::build(0, 1_000, &[value]);
            batch::set_producer(&mut b, 9, 0, sequence);
            batch::set_transactional(&mut b);
            b
        };
        log.add_to_transaction(9, 0);
        log.append(&txn(b"first", 0)).unwrap(); // 0
        log.commit().unwrap();
        // A retry inside the open transaction is a duplicate, as ever.
        let again = log.append(&txn(b"first", 0)).unwrap();
        assert_eq!(again, (0, 0));
        log.stage_marker(9, 0, Marker::Abort, 0).unwrap(); // 1
        log.commit().unwrap();
        // The next transaction's first batch under sequence 0 again: new
        // data the producer gave an old sequence, refused out of order
        // rather than answered with the old offset and dropped.
        log.add_to_transaction(9, 0);
        match log.append(&txn(b"second", 0)) {
            Err(LogError::Sequence(SequenceError::OutOfOrder { expected, got, .. })) => {
                assert_eq!((expected, got), (1, 0));
            }
            other => panic!("{other:?}"),
        }
        // The same within one group, the marker staged but not yet written.
        log.append(&txn(b"second", 1)).unwrap(); // 2
        log.stage_marker(9, 0, Marker::Commit, 0).unwrap(); // 3
        log.add_to_transaction(9, 0);
        assert!(log.append(&txn(b"third", 1)).is_err());
        log.commit().unwrap();
        assert_eq!(log.end_offset(), 4, "nothing refused was written");
        drop(log);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_untouched_since_its_last_sync_or_clean_start_needs_no_sync_and_no_new_snapshots() {
        use std::os::unix::fs::MetadataExt;
        let dir = gyre_testkit::scratch_dir("idle-close");
        let inode = |name: &str| std::fs::metadata(dir.join(name)).map(|m| m.ino()).ok();
        let (mut log, _) = PartitionLog::open(&dir, LogConfig::default()).unwrap();
        assert!(!log.unsynced(), "a new log holds nothing to sync");
        log.write_producer_snapshot().unwrap();
        assert_eq!(inode(PRODUCER_SNAPSHOT), None, "nor anything to snapshot");

        let mut idempotent = batch::build(0, 1_000, &[b"a"]);
        batch::set_producer(&mut idempotent, 7, 0, 0);
        log.append(&idempotent).unwrap();
        assert!(log.unsynced());
        log.sync().unwrap();
        assert!(!log.unsynced());
        log.write_producer_snapshot().unwrap();
        let written = (inode(PRODUCER_SNAPSHOT), inode(TXN_SNAPSHOT));
        assert!(written.0.is_some() && written.1.is_some());
        log.write_producer_snapshot().unwrap();
        assert_eq!(
            (inode(PRODUCER_SNAPSHOT), inode(TXN_SNAPSHOT)),
            written,
            "the same state is not written again"
        );

        // After a clean stop: nothing to sync, and the snapshots on disk
        // already say what the log would.
        drop(log);
        let (log, _) =
            PartitionLog::open_with(&dir, LogConfig::default(), Recovery::Clean).unwrap();
        assert!(!log.unsynced());
        log.write_producer_snapshot().unwrap();
        assert_eq!((inode(PRODUCER_SNAPSHOT), inode(TXN_SNAPSHOT)), written);

        // After an unclean one, or once something is appended, both again.
        drop(log);
        let (mut log, _) = PartitionLog::open(&dir, LogConfig::default()).unwrap();
        assert!(log.unsynced(), "what a crash left may not be on the disk");
        let mut next = batch::build(0, 1_000, &[b"b"]);
        batch::set_producer(&mut next, 7, 0, 1);
        log.append(&next).unwrap();
        log.write_producer_snapshot().unwrap();
        assert_ne!(inode(PRODUCER_SNAPSHOT), written.0);
        let back = std::fs::read_to_string(dir.join(PRODUCER_SNAPSHOT)).unwrap();
        assert_eq!(
            ProducerStates::from_snapshot(&back).map(|(_, end)| end),
            Some(2),
            "the snapshot of the log as it is"
        );
        drop(log);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_waits_for_its_dirty_ratio_unless_its_oldest_dirty_segment_is_past_the_max_lag() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-maxlag-{}", std::process::id()));
        let mut log = compacted_log(&dir, 10);
        // Kafka's largest values of the tombstones' retention and the lags
        // are taken without overflowing a clock.
        let mut longest = log_config_compact();
        let max = i64::MAX.to_string();
        for key in ["delete.retention.ms", "max.compaction.lag.ms"] {
            crate::topic_config::apply_config(&mut longest, key, &max).unwrap();
        }
        log.set_config(longest.clone());
        let plan = log.cleaning_plan().unwrap().expect("all dirty");
        assert!(
            plan.tombstone_horizon <= std::time::UNIX_EPOCH,
            "no tombstone is old enough"
        );
        crate::topic_config::apply_config(&mut longest, "min.compaction.lag.ms", &max).unwrap();
        log.set_config(longest);
        assert!(
            log.cleaning_plan().unwrap().is_none(),
            "every segment is too young"
        );
        log.set_config(log_config_compact());
        compact(&mut log);
        for _ in 0..2 {
            log.append(&crate::log::records::tests::keyed_batch(
                0,
                &[(Some("k0"), Some("again"))],
                kafka_protocol::records::Compression::None,
            ))
            .unwrap();
        }
        log.roll().unwrap();
        let strict = LogConfig {
            min_cleanable_dirty_ratio: 0.99,
            ..log_config_compact()
        };
        log.set_config(strict.clone());
        assert!(
            log.cleaning_plan().unwrap().is_none(),
            "too little is dirty"
        );
        log.set_config(LogConfig {
            max_compaction_lag: Some(Duration::from_millis(1)),
            ..strict
        });
        std::thread::sleep(Duration::from_millis(20));
        let plan = log.cleaning_plan().unwrap().expect("overdue");
        assert!(plan.dirty_ratio < 0.99);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_swap_cut_short_is_finished_at_the_next_open_and_an_unswapped_pass_dropped() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-swapcut-{}", std::process::id()));
        let log = compacted_log(&dir, 5);
        let all = stored_records(&dir);
        // A pass written but not swapped in: dropped at the next open.
        let plan = log.cleaning_plan().unwrap().unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        cleaner::clean(&plan, 1000, &crate::log::pace::Pace::unthrottled(&stop)).unwrap();
        assert!(dir.join(cleaner::CLEANING_DIR).is_dir());
        drop(log);
        let (log, cut) =
            PartitionLog::open_with(&dir, LogConfig::default(), Recovery::From(0)).unwrap();
        assert!(cut.is_empty());
        assert!(!dir.join(cleaner::CLEANING_DIR).exists());
        assert_eq!(stored_records(&dir), all, "nothing changed");
        drop(log);
        // The same pass, committed (offset written, `cleaning/` renamed)
        // and one copy moved over its segment before the stop.
        let (log, _) =
            PartitionLog::open_with(&dir, log_config_compact(), Recovery::Clean).unwrap();
        let plan = log.cleaning_plan().unwrap().unwrap();
        let cleaned =
            cleaner::clean(&plan, 1000, &crate::log::pace::Pace::unthrottled(&stop)).unwrap();
        drop(log);
        cleaner::write_checkpoint(&dir, cleaned.clean_below, None).unwrap();
        let done = dir.join(cleaner::CLEANED_DIR);
        std::fs::rename(dir.join(cleaner::CLEANING_DIR), &done).unwrap();
        // The runs file the swap writes, and one run swapped.
        cleaner::write_runs(&done, &cleaned.groups).unwrap();
        cleaner::swap_run(&dir, &done, &cleaned.groups[0]).unwrap();
        let (log, cut) =
            PartitionLog::open_with(&dir, log_config_compact(), Recovery::From(0)).unwrap();
        assert!(cut.is_empty(), "{cut:?}");
        assert!(!done.exists());
        let left = stored_records(&dir);
        assert_eq!(left.len(), 4, "each key's last record: {left:?}");
        assert_eq!(log.end_offset(), all.last().unwrap().0 + 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn read_committed_stops_at_the_stable_offset_and_sees_aborts_in_what_it_reads() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-lso-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut log, _) = PartitionLog::open(&dir, LogConfig::default()).unwrap();
        assert!(matches!(
            log.stage(&txn_batch(5)),
            Err(LogError::NotInTransaction(_))
        ));
        log.add_to_transaction(5, 0);
        log.add_to_transaction(6, 0);
        log.append(&txn_batch(5)).unwrap(); // 0
        log.append(&batch::build(0, 0, &[b"plain"])).unwrap(); // 1
        log.append(&txn_batch(6)).unwrap(); // 2
        assert_eq!(log.last_stable_offset(), 0);
        assert!(log.read_below(0, 1 << 20, 0).unwrap().is_none());
        log.stage_marker(5, 0, Marker::Abort, 0).unwrap(); // 3
        log.commit().unwrap();
        assert_eq!(log.last_stable_offset(), 2, "producer 6 is still open");
        let slice = log.read_below(0, 1 << 20, 2).unwrap().unwrap();
        assert_eq!(
            log.offset_after(&slice).unwrap(),
            2,
            "stops before offset 2"
        );
        assert_eq!(log.aborted_between(0, 2), vec![(5, 0)]);
        // One batch from offset 1: the abort (ending at 3) overlaps it.
        let one = log.read(1, 1).unwrap().unwrap();
        assert_eq!(log.offset_after(&one).unwrap(), 2);
        assert_eq!(log.aborted_between(1, 2), vec![(5, 0)]);
        assert_eq!(log.aborted_between(4, 9), vec![], "the abort ended at 3");
        let described: Vec<(i64, i32, i64)> = log
            .describe_producers()
            .iter()
            .map(|p| (p.producer_id, p.last_sequence, p.txn_start_offset))
            .collect();
        assert_eq!(
            described,
            vec![(5, 0, -1), (6, 0, 2)],
            "6 is still open, since 2"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_roll_leaves_a_transactions_snapshot_a_crash_restart_reads_back() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-txnroll-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = LogConfig {
            segment_bytes: 200,
            ..LogConfig::default()
        };
        {
            let (mut log, _) = PartitionLog::open(&dir, config.clone()).unwrap();
            log.add_to_transaction(5, 0);
            log.append(&txn_batch(5)).unwrap();
            log.stage_marker(5, 0, Marker::Abort, 0).unwrap();
            log.commit().unwrap();
            for _ in 0..4 {
                log.append(&batch::build(0, 0, &[b"plain plain plain"]))
                    .unwrap();
            }
            assert!(log.segment_count() > 1, "rolled");
            // Dropped without a clean stop's snapshot: a crash.
        }
        let text = std::fs::read_to_string(dir.join(TXN_SNAPSHOT)).expect("written at the roll");
        let (_, at) = PartitionTxns::from_snapshot(&text).unwrap();
        assert!(at > 0);
        let (log, _) = PartitionLog::open(&dir, config).unwrap();
        assert_eq!(log.aborted_between(0, log.end_offset()), vec![(5, 0)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_producer_whose_batches_rolled_out_of_the_last_two_segments_survives_a_crash() {
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-prodroll-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = LogConfig {
            segment_bytes: 200,
            ..LogConfig::default()
        };
        {
            let (mut log, _) = PartitionLog::open(&dir, config.clone()).unwrap();
            let mut idempotent = batch::build(0, 0, &[b"once"]);
            batch::set_producer(&mut idempotent, 9, 3, 0);
            log.append(&idempotent).unwrap();
            log.commit().unwrap();
            // Enough plain batches that producer 9's segment is neither
            // of the last two (as when compaction removed its batches).
            while log.segment_count() < 4 {
                log.append(&batch::build(0, 0, &[b"plain plain plain plain"]))
                    .unwrap();
                log.commit().unwrap();
            }
            // Dropped without a clean stop's snapshot: a crash.
        }
        let (log, _) = PartitionLog::open(&dir, config).unwrap();
        let producers = log.describe_producers();
        assert_eq!(producers.len(), 1, "{producers:?}");
        assert_eq!(
            (
                producers[0].producer_id,
                producers[0].epoch,
                producers[0].last_sequence
            ),
            (9, 3, 0)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn deleting_records_moves_the_start_and_drops_whole_segments_below_it() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-delrec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        };
        let (mut log, _) = PartitionLog::open(&dir, config.clone()).unwrap();
        let value = vec![b'x'; 100];
        for i in 0..40 {
            log.append(&super::super::batch::build(i, 1000, &[&value]))
                .unwrap();
        }
        let segments = log.segment_count();
        assert!(segments > 3, "{segments}");
        assert_eq!(log.delete_records_before(25).unwrap(), 25);
        assert_eq!(log.start_offset(), 25);
        assert!(
            log.segment_count() < segments,
            "whole segments below 25 went"
        );
        assert!(matches!(
            log.read(24, 1 << 20),
            Err(LogError::OutOfRange { .. })
        ));
        assert!(log.read(25, 1 << 20).unwrap().is_some());
        assert!(matches!(
            log.delete_records_before(41),
            Err(LogError::OutOfRange { .. })
        ));
        assert_eq!(
            log.delete_records_before(10).unwrap(),
            25,
            "never moves back"
        );
        assert_eq!(log.delete_records_before(-1).unwrap(), 40, "-1: everything");
        drop(log);
        // The floor is the caller's to persist; a reopened log takes it back.
        let (mut log, _) = PartitionLog::open(&dir, config).unwrap();
        log.set_start_floor(40);
        assert_eq!(log.start_offset(), 40);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
