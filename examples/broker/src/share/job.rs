//! What the log writer is asked for a share group (ShareFetch and
//! ShareAcknowledge, the coordinator's word of members joining and
//! leaving) and what it answers: plain data, shared by the connections,
//! the writer and the coordinator. Uses the share-partition's types and
//! the log's slice.

use super::partition::{Acknowledgement, Acquired};
use crate::log::LogSlice;
use crate::topics::PartitionId;
use std::time::Duration;
use uuid::Uuid;

/// A partition as the share APIs name it, with where the connection
/// found it (`None`: no such topic or partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharePart {
    /// The topic's id.
    pub topic_id: Uuid,
    /// The partition's index in it.
    pub index: i32,
    /// The log, if the topic and partition exist.
    pub partition: Option<PartitionId>,
}

/// One partition's acknowledgements: ranges of (first, last, types).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartAcks {
    /// The partition.
    pub part: SharePart,
    /// Its ranges; `Err` if a type is unknown (the request's types as
    /// they came, for the refusal to say).
    pub ranges: Result<Vec<(i64, i64, Vec<Acknowledgement>)>, i8>,
}

/// A ShareFetch or ShareAcknowledge, as the writer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareFetchJob {
    /// The share group.
    pub group: String,
    /// The member asking.
    pub member: String,
    /// The share session epoch: 0 opens a session, -1 closes it, others
    /// follow on.
    pub session_epoch: i32,
    /// Partitions the session gains (ShareFetch only).
    pub add: Vec<SharePart>,
    /// Partitions the session drops (ShareFetch only).
    pub forget: Vec<(Uuid, i32)>,
    /// Acknowledgements, per partition.
    pub acks: Vec<PartAcks>,
    /// Fetch records (ShareFetch with `max_records` above 0); a
    /// ShareAcknowledge only acknowledges.
    pub fetch: bool,
    /// At most this many records acquired in all.
    pub max_records: usize,
    /// At most this many bytes in all (but at least one batch).
    pub max_bytes: u64,
    /// How long to wait for records.
    pub max_wait: Duration,
}

/// One partition's part of an answer.
#[derive(Debug)]
pub struct SharePartAnswer {
    /// The partition.
    pub topic_id: Uuid,
    /// Its index.
    pub index: i32,
    /// Why nothing was fetched (Kafka error code; 0: none).
    pub error: i16,
    /// Why its acknowledgements were refused (0: applied, or none).
    pub ack_error: i16,
    /// Whole batches holding the records acquired.
    pub records: Option<LogSlice>,
    /// The records acquired, for the member to deliver.
    pub acquired: Vec<Acquired>,
}

/// The writer's answer to a [`ShareFetchJob`].
#[derive(Debug, Default)]
pub struct ShareAnswer {
    /// A request-wide error (an unknown member, a session that does not
    /// exist or an epoch that does not follow); 0: none.
    pub error: i16,
    /// Its message.
    pub message: Option<String>,
    /// How long the acquired records stay with the member (ms).
    pub lock_ms: i32,
    /// Per partition with records, an error or acknowledgements.
    pub parts: Vec<SharePartAnswer>,
}

/// The coordinator's word to the writer about a share group's members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// The member joined: it may fetch.
    Joined {
        /// The share group.
        group: String,
        /// The member.
        member: String,
    },
    /// The member left: it may fetch no more, but its share session may
    /// still acknowledge what it holds and close (its client sends the
    /// last acknowledgements and the leave together); what it holds goes
    /// back when the session closes or the locks run out.
    Left {
        /// The share group.
        group: String,
        /// The member.
        member: String,
    },
    /// The member was dropped (its session ran out, or it rejoined as
    /// new): its records go back now and its share session closes.
    Dropped {
        /// The share group.
        group: String,
        /// The member.
        member: String,
    },
    /// The group was deleted: its delivery state goes.
    GroupDeleted(String),
}

/// A share group's start offsets, as the admin APIs ask for them
/// (DescribeShareGroupOffsets, AlterShareGroupOffsets,
/// DeleteShareGroupOffsets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OffsetsJob {
    /// Per group, the partitions asked (`None`: every partition the group
    /// has delivery state for).
    Describe(Vec<(String, Option<Vec<SharePart>>)>),
    /// Start each partition's delivery at an offset: the group must have
    /// no members.
    Alter {
        /// The share group.
        group: String,
        /// Each partition and its new start.
        parts: Vec<(SharePart, i64)>,
    },
    /// Forget the group's delivery state of these topics (a partition
    /// then starts by the group's `share.auto.offset.reset`): the group
    /// must have no members.
    Delete {
        /// The share group.
        group: String,
        /// The topics, by id.
        topics: Vec<Uuid>,
    },
}

/// One partition's start offset (-1: no state) or error.
pub type PartStart = (Uuid, i32, Result<i64, i16>);

/// The writer's answer to an [`OffsetsJob`].
#[derive(Debug, PartialEq, Eq)]
pub enum OffsetsAnswer {
    /// Per group asked, its partitions.
    Described(Vec<Vec<PartStart>>),
    /// Per partition, its error (0: altered); or why nothing was.
    Altered(Result<Vec<(Uuid, i32, i16)>, i16>),
    /// Per topic, its error (0: deleted); or why nothing was.
    Deleted(Result<Vec<(Uuid, i16)>, i16>),
}
