//! The log writer's vocabulary: what it is asked ([`LogOp`] in a
//! [`LogJob`]), what it answers ([`Answer`]), and where answers go
//! ([`LogReply`]). Plain data and one trait, shared by the writer, the
//! fetch resolver and the connections; uses only the log and the topic
//! catalog, and the share groups' request types.

use crate::log::batch::Marker;
use crate::log::cleaner::{CleanPlan, Cleaned};
use crate::log::{LogSlice, ProducerInfo};
use crate::share::job::{MemberChange, OffsetsAnswer, OffsetsJob, ShareAnswer, ShareFetchJob};
use crate::topic_config::ConfigChange;
use crate::topics::{PartitionId, Topic, TopicError};
use bytes::Bytes;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One partition of a fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchPart {
    /// The partition.
    pub partition: PartitionId,
    /// The first offset wanted.
    pub offset: i64,
    /// At most this many bytes from it (at least one batch, whatever its
    /// size, so a consumer always makes progress).
    pub max_bytes: u64,
    /// The leader epoch of the batch the consumer read last (Fetch v12+;
    /// -1: none): if that epoch's records now end before `offset`, the
    /// answer is the diverging epoch, not records (KIP-320).
    pub last_fetched_epoch: i32,
}

/// A fetch request, as the writer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchJob {
    /// The partitions, in the order they are answered.
    pub parts: Vec<FetchPart>,
    /// Answer once at least this many bytes are ready.
    pub min_bytes: u64,
    /// At most this many bytes in all (but at least one batch).
    pub max_bytes: u64,
    /// How long to wait for `min_bytes`.
    pub max_wait: Duration,
    /// Read only below each partition's last stable offset (isolation
    /// level `read_committed`), with the aborted transactions listed.
    pub read_committed: bool,
}

/// Why a partition's read failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The partition does not exist (any more).
    UnknownPartition,
    /// The offset is before the log's start or after its end.
    OffsetOutOfRange,
    /// The file system failed.
    Storage,
}

/// One partition's answer.
#[derive(Debug)]
pub struct PartitionRead {
    /// The partition.
    pub partition: PartitionId,
    /// Why nothing was read, if something went wrong.
    pub error: Option<ReadError>,
    /// The log's end offset.
    pub high_watermark: i64,
    /// The log's first offset.
    pub log_start_offset: i64,
    /// The last stable offset: below it every transaction has ended.
    pub last_stable_offset: i64,
    /// For a `read_committed` fetch, the aborted transactions with records
    /// in what is read: (producer id, first offset).
    pub aborted: Vec<(i64, i64)>,
    /// Whole batches from the requested offset; `None` at the log's end
    /// (for `read_committed`, at the last stable offset).
    pub slice: Option<LogSlice>,
    /// Where the log diverges from what the consumer read: the largest
    /// epoch at or below its last fetched one and the offset that epoch's
    /// records end at, when that is below the fetch offset (the records
    /// it read past there were cut away); nothing is read then.
    pub diverging_epoch: Option<(i32, i64)>,
}

/// What happened to one partition's records of a produce request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Written (and synced, per the policy) at these offsets.
    Appended {
        /// The first record's offset.
        base: i64,
        /// The last record's offset.
        last: i64,
        /// The partition's log start offset after the append (Kafka's
        /// produce response carries it from v5).
        log_start: i64,
        /// The broker's clock the batches were stamped with, on a topic
        /// with `message.timestamp.type=LogAppendTime`; -1 otherwise.
        append_time: i64,
    },
    /// A batch failed its checks (CRC, length, magic); nothing appended.
    Corrupt,
    /// A batch is larger than the topic's `max.message.bytes`
    /// (MESSAGE_TOO_LARGE); nothing appended.
    TooLarge {
        /// The batch's size in bytes, with its log header.
        size: u64,
        /// The topic's limit.
        max: u64,
    },
    /// An idempotent producer's batch does not follow on from its last
    /// one (OUT_OF_ORDER_SEQUENCE_NUMBER); nothing appended.
    OutOfOrderSequence,
    /// An idempotent producer's batch carries an epoch older than its
    /// current one (INVALID_PRODUCER_EPOCH); nothing appended.
    InvalidProducerEpoch,
    /// A transactional batch whose transaction did not add the partition
    /// (INVALID_TXN_STATE); nothing appended.
    NotInTransaction,
    /// A record without a key for a compacted topic (INVALID_RECORD);
    /// nothing appended.
    NoKey {
        /// The record's place among the partition's records in the
        /// request, from 0.
        index: i64,
    },
    /// A request of several batches repeats one already written
    /// (DUPLICATE_SEQUENCE_NUMBER); nothing appended.
    DuplicateSequence,
    /// The partition does not exist.
    UnknownPartition,
    /// The file system failed; nothing of this group was kept.
    StorageError,
}

/// A list-offsets answer for one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetAnswer {
    /// The offset, and the timestamp of the record found (-1 for the
    /// earliest and latest queries); offset -1 when no record is that new.
    Found {
        /// The offset.
        offset: i64,
        /// Its timestamp, or -1.
        timestamp: i64,
        /// The leader epoch it was written in (the current one for the
        /// latest offset), or -1 where none is known.
        leader_epoch: i32,
    },
    /// The partition does not exist.
    UnknownPartition,
    /// The file system failed.
    StorageError,
}

/// A topic to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Partition count; negative for the broker's default.
    pub partitions: i32,
    /// Kafka topic configs (`retention.ms`, ...).
    pub configs: Vec<(String, String)>,
}

/// Whose configs an AlterConfigs changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigTarget {
    /// A topic, by name.
    Topic(String),
    /// A share group, by id.
    Group(String),
}

/// What DeleteRecords did to one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// Records below the new start (the low watermark) are gone.
    Done(i64),
    /// The topic's cleanup policy does not delete (POLICY_VIOLATION):
    /// a compacted topic's old records go only by compaction.
    PolicyViolation,
    /// The partition does not exist.
    UnknownPartition,
    /// The offset is beyond the log's end (or negative).
    OutOfRange,
    /// The file system failed.
    StorageError,
}

/// What the writer is asked to do.
#[derive(Debug)]
pub enum LogOp {
    /// Append records, as they came off the wire, to each partition.
    Produce(Vec<(PartitionId, Bytes)>),
    /// Read committed batches, waiting for enough of them.
    Fetch(FetchJob),
    /// Find offsets: per partition, -1 (latest), -2 (earliest) or a
    /// timestamp in ms; with `true` (`read_committed`), latest is the last
    /// stable offset.
    ListOffsets(Vec<(PartitionId, i64)>, bool),
    /// Where each asked leader epoch's records end, per partition
    /// (OffsetForLeaderEpoch).
    EpochEnds(Vec<(PartitionId, i32)>),
    /// Create topics.
    CreateTopics(Vec<TopicSpec>),
    /// Delete topics by name.
    DeleteTopics(Vec<String>),
    /// Grow topics to a new partition count: (name, count).
    CreatePartitions(Vec<(String, i32)>),
    /// Delete records below an offset (-1: all), per partition.
    DeleteRecords(Vec<(PartitionId, i64)>),
    /// Change topics' or share groups' configs: (whose, changes); with
    /// `true`, only check them.
    AlterConfigs(Vec<(ConfigTarget, Vec<ConfigChange>)>, bool),
    /// The producers each partition remembers (DescribeProducers).
    DescribeProducers(Vec<PartitionId>),
    /// Each partition's size on disk, and the space of the file system
    /// holding the logs (DescribeLogDirs).
    LogDirSizes(Vec<PartitionId>),
    /// End a producer's transaction in each of its partitions with a
    /// marker; the coordinator hears when they are written.
    WriteMarkers(Markers),
    /// Markers a client asked for (WriteTxnMarkers: an operator's abort
    /// of a hanging transaction, KIP-664), per partition in request
    /// order; answered as a produce is, once their group is written.
    ClientMarkers(Vec<(PartitionId, ClientMarker)>),
    /// The compacted logs the log cleaner should work on now, sent back
    /// on the channel (see [`crate::cleaner`]).
    CleaningPlans(crossbeam_channel::Sender<Vec<(PartitionId, CleanPlan)>>),
    /// Swap in what a cleaning pass wrote; how many segments were swapped
    /// (or why not) goes back on its channel.
    SwapCleaned(Box<SwapCleaned>),
    /// A ShareFetch or ShareAcknowledge (see [`crate::share`]; boxed:
    /// it would make every ring slot larger).
    ShareFetch(Box<ShareFetchJob>),
    /// A share group's member joined or left, or the group was deleted;
    /// no answer.
    ShareMembers(MemberChange),
    /// A share group's start offsets, described, altered or deleted.
    ShareOffsets(OffsetsJob),
    /// The coordinator added these partitions to a producer's
    /// transaction: its transactional batches are taken there until the
    /// transaction's marker.
    AddToTransaction {
        /// The producer.
        producer_id: i64,
        /// Its epoch.
        producer_epoch: i16,
        /// The partitions.
        partitions: Vec<PartitionId>,
    },
}

/// A cleaning pass done, for the writer to swap in.
#[derive(Debug)]
pub struct SwapCleaned {
    /// The partition.
    pub partition: PartitionId,
    /// The plan the pass followed.
    pub plan: CleanPlan,
    /// What it wrote.
    pub cleaned: Cleaned,
    /// Where the writer says how many segments it swapped.
    pub done: crossbeam_channel::Sender<std::io::Result<usize>>,
}

/// The markers that end one transaction, as the transaction coordinator
/// asks the writer for them.
#[derive(Debug)]
pub struct Markers {
    /// The transactional id, echoed in [`MarkersWritten`].
    pub transactional_id: String,
    /// The producer.
    pub producer_id: i64,
    /// Its epoch (a newer one than its batches' fences them).
    pub producer_epoch: i16,
    /// Commit or abort.
    pub marker: Marker,
    /// The coordinator's epoch, kept in each marker's value.
    pub coordinator_epoch: i32,
    /// The partitions the transaction wrote to.
    pub partitions: Vec<PartitionId>,
    /// Where [`MarkersWritten`] goes once the group holding them is
    /// written (and synced, under `every-batch`).
    pub done: crossbeam_channel::Sender<MarkersWritten>,
}

/// One marker a client asked for in one partition (WriteTxnMarkers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientMarker {
    /// The producer whose transaction it ends.
    pub producer_id: i64,
    /// The producer's epoch: one older than the partition last saw from
    /// it is refused (INVALID_PRODUCER_EPOCH), as in Kafka.
    pub producer_epoch: i16,
    /// Commit or abort.
    pub marker: Marker,
    /// The coordinator epoch the marker carries.
    pub coordinator_epoch: i32,
}

/// The writer's word that a transaction's markers are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkersWritten {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer.
    pub producer_id: i64,
    /// Partitions whose marker could not be written (the file system
    /// failed): the coordinator asks again.
    pub failed: Vec<PartitionId>,
}

/// Why a resource's configs were not altered: a topic's or a group's.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A topic's.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// A group's.
    #[error(transparent)]
    Group(#[from] crate::share::group_config::AlterError),
}

/// The writer's answer to one request.
#[derive(Debug)]
pub enum Answer<'a> {
    /// Per produced partition, in request order.
    Appended(&'a [(PartitionId, AppendOutcome)]),
    /// Per fetched partition, in request order.
    Fetched(Vec<PartitionRead>),
    /// Per partition, in request order.
    Offsets(Vec<(PartitionId, OffsetAnswer)>),
    /// Per partition, in request order: the epoch at or below the one
    /// asked and the offset its records end at (-1, -1 when unknown);
    /// `None` for a partition that is gone.
    EpochEnds(Vec<(PartitionId, Option<(i32, i64)>)>),
    /// Per topic, in request order.
    Created(Vec<Result<Arc<Topic>, TopicError>>),
    /// Per topic, in request order.
    Deleted(Vec<Result<(), TopicError>>),
    /// Per topic grown, in request order.
    Grown(Vec<Result<(), TopicError>>),
    /// Per topic or group whose config was altered (or checked), in
    /// request order.
    Altered(Vec<Result<(), ConfigError>>),
    /// Per partition, in request order.
    RecordsDeleted(Vec<(PartitionId, Deletion)>),
    /// Per partition, in request order; `None` for one that is gone.
    Producers(Vec<(PartitionId, Option<Vec<ProducerInfo>>)>),
    /// Per partition, in request order, its bytes on disk (`None` for one
    /// that is gone); and the file system's (total, usable) bytes, if
    /// known.
    LogDirSizes(Vec<(PartitionId, Option<u64>)>, Option<(u64, u64)>),
    /// A ShareFetch's or ShareAcknowledge's answer.
    Shared(ShareAnswer),
    /// A share-offsets admin request's answer.
    ShareOffsets(OffsetsAnswer),
}

/// Where a request's answer goes (`Sync`: it waits in a ring slot).
/// Called on the writer thread: produce answers once the group holding
/// the request is committed, the others when done.
pub trait LogReply: Send + Sync + 'static {
    /// Request `job` is done.
    fn answer(&self, job: u64, answer: Answer<'_>);

    /// Where the writer adds the time (ns) it spent on the request when
    /// it came (checking and staging a produce's batches, serving a
    /// fetch), for its client's request quota to count; `None` (the
    /// default) when nothing counts it.
    fn busy_meter(&self) -> Option<Arc<AtomicU64>> {
        None
    }
}

/// Adds the time since `started` to `busy`, if there is one: a
/// connection's time spent on another thread (the writer's, the
/// coordinator's, the admin's), which its next request's count takes
/// into its request quota. Relaxed: the counter is a sum that the loop
/// takes whole with a swap, and nothing else is published through it.
pub fn charge_busy(busy: Option<&AtomicU64>, started: Instant) {
    if let Some(busy) = busy {
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        busy.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One request.
#[derive(Debug)]
pub struct LogJob<R> {
    /// The caller's number for the request (a correlation id, say).
    pub id: u64,
    /// What to do.
    pub op: LogOp,
    /// Where the answer goes; `None` for fire-and-forget (acks = 0).
    pub reply: Option<R>,
}
