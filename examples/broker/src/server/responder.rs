//! Answers from the log writer, turned into Kafka responses and sent to
//! the connection that asked, in its order, through its `ChannelHandle`.
//!
//! A [`Responder`] travels with each request through the ring. It knows
//! the request's place on its connection, its correlation id and version,
//! and the request's shape (topic names and partition indexes), which the
//! writer, working in broker-wide partition ids, does not.

use super::alter_configs::{self, AlterApi};
use super::create_topics;
use super::fetch_session::SessionStep;
use super::quotas::{throttle_ms, Applied, Throttled};
use super::sequencer::{encoded, Frame, Sequenced};
use super::shared::Shared;
use crate::fetch::{PartitionRead, ReadError};
use crate::ops::{Answer, AppendOutcome, ConfigError, Deletion, LogReply, OffsetAnswer};
use crate::protocol::error_code as ec;
use crate::protocol::fetch_response::{self, FetchedPartition, FetchedTopic};
use crate::protocol::share_fetch_response::{self, ShareHead, SharePartition};
use crate::protocol::throttle::ThrottleTime;
use crate::share::group_config::AlterError;
use crate::share::job::ShareAnswer;
use gyre_reactor::{ChannelHandle, UserEvent};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{
    CreatePartitionsResponse, DeleteRecordsResponse, DeleteTopicsResponse,
    DescribeProducersResponse, ListOffsetsResponse, OffsetForLeaderEpochResponse, ProduceResponse,
    ShareAcknowledgeResponse, TopicName, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A topic of a request: its name and, per partition in request order, the
/// partition index and either the broker's id for it (sent to the writer)
/// or the error it gets without going there.
#[derive(Debug)]
pub struct TopicLayout {
    /// The topic's name.
    pub name: StrBytes,
    /// Partition index, and the writer's id or an error code.
    pub partitions: Vec<(i32, Result<u32, i16>)>,
}

/// A topic or resource answered before the writer saw its request: error
/// code and message (`None`: the writer answers it).
pub type Early = Option<(i16, String)>;

/// What the request was, as far as its response needs.
#[derive(Debug)]
pub enum Pending {
    /// A produce request, and the throttle time (ms) its client's quota
    /// earned it.
    Produce(Vec<TopicLayout>, i32),
    /// A fetch request, the rate its response's bytes count in when its
    /// client has a fetch quota, and what its fetch session makes of it.
    Fetch(Vec<TopicLayout>, Vec<Uuid>, Applied, SessionStep),
    /// A list-offsets request.
    ListOffsets(Vec<TopicLayout>),
    /// An offset-for-leader-epoch request.
    EpochEnds(Vec<TopicLayout>),
    /// A describe-producers request.
    DescribeProducers(Vec<TopicLayout>),
    /// A write-txn-markers request: each marker's producer and its
    /// partitions.
    WriteTxnMarkers(Vec<(i64, Vec<TopicLayout>)>),
    /// A describe-log-dirs request: the partitions it reports.
    DescribeLogDirs(Vec<super::replicas::LogDirTopic>),
    /// A delete-records request.
    DeleteRecords(Vec<TopicLayout>),
    /// A create-topics request: its topics, each sent to the writer or
    /// answered before (refused, or validated); the throttle time (ms) its
    /// mutation quota earned.
    CreateTopics(Vec<create_topics::AskedTopic>, i32),
    /// A metadata request that first auto-created topics, and the
    /// address to advertise.
    Metadata(
        kafka_protocol::messages::MetadataRequest,
        (String, u16),
        /// What the principal may see and do of what it asked.
        super::metadata::Asker,
    ),
    /// A delete-topics request: each topic's name (if known) and id, and
    /// what refused it before the writer saw it; the throttle time (ms)
    /// its mutation quota earned.
    DeleteTopics(Vec<(Option<StrBytes>, Uuid, Early)>, i32),
    /// A create-partitions request: its topics, and those answered before
    /// the writer saw them (error code and message; code 0 for a
    /// validate-only success); the throttle time (ms) its mutation quota
    /// earned.
    CreatePartitions(Vec<(StrBytes, Early)>, i32),
    /// An alter-configs or incremental-alter-configs request: which one,
    /// each resource's type and name, and those answered before the
    /// writer saw them.
    AlterConfigs(AlterApi, Vec<alter_configs::Asked>),
    /// A ShareFetch (`true`) or ShareAcknowledge, and the partitions
    /// refused before the writer saw it.
    /// A ShareFetch's client's fetch quota counts its response.
    Share(bool, Vec<super::share_requests::Refused>, Applied),
    /// A share group's start offsets described, altered or deleted.
    ShareOffsets(super::share_offsets::Layout),
}

/// Sends one request's answer to its connection.
#[derive(Debug)]
pub struct Responder {
    pub(crate) handle: ChannelHandle<Sequenced>,
    pub(crate) seq: u64,
    pub(crate) correlation_id: i32,
    pub(crate) version: i16,
    pub(crate) pending: Pending,
    pub(crate) shared: Arc<Shared>,
    /// The throttle (ms) the request's time on the loop earned under its
    /// client's request quota, for the answer to carry.
    pub(crate) throttle_ms: i32,
    /// Under that quota, where the writer adds its time on the request.
    pub(crate) busy: Option<Arc<AtomicU64>>,
}

impl Responder {
    fn send(&self, frame: Frame) {
        // A closed connection has nobody left to answer.
        let _ = self.handle.write_and_flush(Sequenced {
            seq: self.seq,
            frame,
        });
    }

    fn send_encoded<M: Encodable + HeaderVersion + ThrottleTime>(&self, mut body: M) {
        body.throttle_at_least(self.throttle_ms);
        self.send(encoded(self.correlation_id, self.version, &body));
    }
}

impl LogReply for Responder {
    fn busy_meter(&self) -> Option<Arc<AtomicU64>> {
        self.busy.clone()
    }

    fn answer(&self, _job: u64, answer: Answer<'_>) {
        match (&self.pending, answer) {
            (Pending::Produce(layout, throttle_ms), Answer::Appended(outcomes)) => {
                let mut r = produce_response(layout, outcomes);
                r.throttle_time_ms = *throttle_ms;
                self.send_encoded(r)
            }
            (Pending::Fetch(layout, ids, quota, session), Answer::Fetched(reads)) => {
                let version = self.version;
                let topics = fetch_topics(layout, ids, reads);
                // A client with a fetch quota is charged for what goes
                // out, after its session left out what it knows.
                let answered = session.answer(topics, |out| match quota {
                    Some((sensor, bytes_per_s)) => {
                        let size = fetch_response::response_size(version, out);
                        sensor.record_within(size, *bytes_per_s)
                    }
                    None => Duration::ZERO,
                });
                // As Kafka: a response that would take its client over its
                // quota is not sent; an empty one says how long to wait, and
                // the connection is muted for that long. The mute is queued
                // first: the loop takes the handle's commands in order, so
                // the connection stops reading before the client can have
                // the answer and send again.
                if !answered.throttle.is_zero() {
                    let mute = UserEvent::Custom(Box::new(Throttled(answered.throttle)));
                    let _ = self.handle.fire_user_event(mute);
                }
                let head = fetch_response::ResponseHead {
                    correlation_id: self.correlation_id,
                    throttle_ms: throttle_ms(answered.throttle).max(self.throttle_ms),
                    error_code: answered.error_code,
                    session_id: answered.session_id,
                };
                self.send(Frame::Parts(fetch_response::encode(
                    head,
                    version,
                    answered.topics,
                )));
            }
            (Pending::Share(true, refused, quota), Answer::Shared(answer)) => {
                let epoch = self.shared.catalog.leader_epoch();
                let (head, topics) = share_fetch_answer(refused, answer, epoch);
                let head = ShareHead {
                    correlation_id: self.correlation_id,
                    throttle_ms: self.throttle_ms,
                    ..head
                };
                // A client with a fetch quota is charged for the response
                // and held back when over it, as after a throttled
                // produce: its records are acquired already, so it is not
                // answered empty as a fetch is.
                let parts = share_fetch_response::encode(head, topics, |size| match quota {
                    Some((sensor, bytes_per_s)) => {
                        let wait = sensor.record_and_throttle(size, *bytes_per_s);
                        if !wait.is_zero() {
                            let mute = UserEvent::Custom(Box::new(Throttled(wait)));
                            let _ = self.handle.fire_user_event(mute);
                        }
                        throttle_ms(wait)
                    }
                    None => 0,
                });
                self.send(Frame::Parts(parts));
            }
            (Pending::Share(false, refused, _), Answer::Shared(answer)) => {
                let epoch = self.shared.catalog.leader_epoch();
                self.send_encoded(share_acknowledge_answer(refused, answer, epoch))
            }
            (Pending::ShareOffsets(layout), Answer::ShareOffsets(answer)) => {
                use super::share_offsets::Answered;
                let catalog = &self.shared.catalog;
                let name_of = |id: Uuid| catalog.by_id(&id).map(|t| t.name.clone());
                match super::share_offsets::answer(layout, answer, &name_of) {
                    Some(Answered::Describe(r)) => self.send_encoded(r),
                    Some(Answered::Alter(r)) => self.send_encoded(r),
                    Some(Answered::Delete(r)) => self.send_encoded(r),
                    None => {
                        tracing::error!("log writer answered a share-offsets request wrongly");
                        self.send(Frame::Close);
                    }
                }
            }
            (Pending::ListOffsets(layout), Answer::Offsets(offsets)) => {
                self.send_encoded(list_offsets_response(layout, &offsets, self.version))
            }
            (Pending::EpochEnds(layout), Answer::EpochEnds(ends)) => {
                self.send_encoded(epoch_ends_response(layout, &ends))
            }
            (Pending::WriteTxnMarkers(layout), Answer::Appended(outcomes)) => {
                self.send_encoded(write_txn_markers_response(layout, outcomes))
            }
            (Pending::DescribeProducers(layout), Answer::Producers(found)) => {
                self.send_encoded(describe_producers_response(layout, found))
            }
            (Pending::DescribeLogDirs(layout), Answer::LogDirSizes(sizes, space)) => {
                let log_dir = &self.shared.log_dir;
                let resp = super::replicas::log_dirs_response(log_dir, layout, &sizes, space);
                self.send_encoded(resp)
            }
            (Pending::CreateTopics(topics, throttle), Answer::Created(results)) => {
                let configs = |config: &_| super::configs::created(&self.shared, config);
                let r = create_topics::response(topics, results, *throttle, self.version, configs);
                self.send_encoded(r);
            }
            (Pending::Metadata(request, advertised, asker), Answer::Created(_)) => {
                let visible = |name: &str| asker.sees(name);
                let operations = |name: &str| asker.operations(name);
                let seen = super::metadata::Seen {
                    visible: &visible,
                    topic_operations: &operations,
                    cluster_operations: asker.cluster_operations,
                };
                let body = super::metadata::response(
                    &self.shared,
                    advertised,
                    request,
                    self.version,
                    seen,
                );
                self.send_encoded(body);
            }
            (Pending::DeleteTopics(topics, throttle), Answer::Deleted(results)) => {
                let mut r = DeleteTopicsResponse::default();
                r.throttle_time_ms = *throttle;
                let mut deleted = Vec::new();
                for ((name, id, refused), result) in topics.iter().zip(results) {
                    if let (Some(name), None, Ok(())) = (name, refused, &result) {
                        deleted.push(name.as_str().to_owned());
                    }
                    let mut t = DeletableTopicResult::default();
                    t.name = name.clone().map(TopicName);
                    t.topic_id = *id;
                    if let Some((code, message)) = refused {
                        t.error_code = *code;
                        t.error_message = Some(StrBytes::from_string(message.clone()));
                    } else if let Err(e) = result {
                        // Asked for by an id no topic has (v6).
                        t.error_code = if name.is_none() {
                            ec::UNKNOWN_TOPIC_ID
                        } else {
                            e.code()
                        };
                        t.error_message = Some(StrBytes::from_string(e.to_string()));
                    }
                    r.responses.push(t);
                }
                // The groups' offsets for them go too (as Kafka's group
                // coordinator drops a deleted partition's), told before
                // the client hears and before the writer can make a topic
                // of the same name again.
                if !deleted.is_empty() {
                    self.shared.groups.topics_deleted(deleted);
                }
                self.send_encoded(r);
            }
            (Pending::CreatePartitions(topics, throttle), Answer::Grown(results)) => {
                let mut results = results.into_iter();
                let mut r = CreatePartitionsResponse::default();
                r.throttle_time_ms = *throttle;
                for (name, early) in topics {
                    let mut t = CreatePartitionsTopicResult::default();
                    t.name = TopicName(name.clone());
                    let outcome = match early {
                        Some((code, message)) => (*code, Some(message.clone())),
                        None => match results.next() {
                            Some(Ok(())) => (ec::NONE, None),
                            Some(Err(e)) => (e.code(), Some(e.to_string())),
                            None => (ec::INVALID_REQUEST, Some("no answer".into())),
                        },
                    };
                    t.error_code = outcome.0;
                    t.error_message = outcome
                        .1
                        .filter(|_| outcome.0 != ec::NONE)
                        .map(StrBytes::from_string);
                    r.results.push(t);
                }
                self.send_encoded(r);
            }
            (Pending::DeleteRecords(layout), Answer::RecordsDeleted(results)) => {
                self.send_encoded(delete_records_response(layout, &results))
            }
            (Pending::AlterConfigs(api, resources), Answer::Altered(results)) => {
                let outcomes =
                    alter_configs::outcomes(resources, results, config_error_code, |e| {
                        e.to_string()
                    });
                match api {
                    AlterApi::Incremental => {
                        self.send_encoded(alter_configs::incremental_response(outcomes))
                    }
                    AlterApi::Replacing => {
                        self.send_encoded(alter_configs::replacing_response(outcomes))
                    }
                }
            }
            (pending, answer) => {
                tracing::error!(
                    ?pending,
                    ?answer,
                    "log writer answered the wrong request kind"
                );
                self.send(Frame::Close);
            }
        }
    }
}

/// Kafka's error code for a config alteration's failure.
fn config_error_code(e: &ConfigError) -> i16 {
    match e {
        ConfigError::Topic(e) => e.code(),
        ConfigError::Group(AlterError::Refused(_)) => ec::INVALID_CONFIG,
        ConfigError::Group(AlterError::NotWritten(_)) => ec::KAFKA_STORAGE_ERROR,
    }
}

/// Walks a request's layout, pairing each partition sent to the writer
/// with the writer's next answer.
fn zip_layout<T, U>(
    layout: &[TopicLayout],
    answers: impl IntoIterator<Item = T>,
    mut each: impl FnMut(i32, Result<T, i16>) -> U,
) -> Vec<(&StrBytes, Vec<U>)> {
    let mut answers = answers.into_iter();
    layout
        .iter()
        .map(|topic| {
            let parts = topic
                .partitions
                .iter()
                .map(|&(index, routed)| {
                    let answer = match routed {
                        Ok(_) => answers.next().ok_or(ec::UNKNOWN_TOPIC_OR_PARTITION),
                        Err(code) => Err(code),
                    };
                    each(index, answer)
                })
                .collect();
            (&topic.name, parts)
        })
        .collect()
}

fn produce_response(layout: &[TopicLayout], outcomes: &[(u32, AppendOutcome)]) -> ProduceResponse {
    let mut r = ProduceResponse::default();
    for (name, parts) in zip_layout(layout, outcomes.iter(), |index, outcome| {
        let mut p = PartitionProduceResponse::default();
        p.index = index;
        p.base_offset = -1;
        p.log_append_time_ms = -1;
        p.error_code = match outcome {
            Ok((
                _,
                AppendOutcome::Appended {
                    base,
                    log_start,
                    append_time,
                    ..
                },
            )) => {
                p.base_offset = *base;
                p.log_start_offset = *log_start;
                p.log_append_time_ms = *append_time;
                ec::NONE
            }
            Ok((_, AppendOutcome::Corrupt)) => ec::CORRUPT_MESSAGE,
            Ok((_, AppendOutcome::TooLarge { size, max })) => {
                // Sent from Produce v8, which has the field.
                p.error_message = Some(StrBytes::from_string(format!(
                    "a record batch of {size} bytes is larger than the topic's max.message.bytes {max}"
                )));
                ec::MESSAGE_TOO_LARGE
            }
            Ok((_, AppendOutcome::NoKey { index })) => {
                // Kafka's words, and the record it refused (from v8).
                p.error_message = Some(StrBytes::from_static_str(
                    "Compacted topic cannot accept message without key.",
                ));
                let mut e = BatchIndexAndErrorMessage::default();
                e.batch_index = i32::try_from(*index).unwrap_or(i32::MAX);
                e.batch_index_error_message = p.error_message.clone();
                p.record_errors.push(e);
                ec::INVALID_RECORD
            }
            Ok((_, outcome)) => append_code(outcome),
            Err(code) => code,
        };
        p
    }) {
        let mut t = TopicProduceResponse::default();
        t.name = TopicName(name.clone());
        t.partition_responses = parts;
        r.responses.push(t);
    }
    r
}

/// The error code of an append's outcome.
fn append_code(outcome: &AppendOutcome) -> i16 {
    match outcome {
        AppendOutcome::Appended { .. } => ec::NONE,
        AppendOutcome::Corrupt => ec::CORRUPT_MESSAGE,
        AppendOutcome::TooLarge { .. } => ec::MESSAGE_TOO_LARGE,
        AppendOutcome::UnknownPartition => ec::UNKNOWN_TOPIC_OR_PARTITION,
        AppendOutcome::StorageError => ec::KAFKA_STORAGE_ERROR,
        AppendOutcome::OutOfOrderSequence => ec::OUT_OF_ORDER_SEQUENCE_NUMBER,
        AppendOutcome::InvalidProducerEpoch => ec::INVALID_PRODUCER_EPOCH,
        AppendOutcome::NotInTransaction => ec::INVALID_TXN_STATE,
        AppendOutcome::NoKey { .. } => ec::INVALID_RECORD,
        AppendOutcome::DuplicateSequence => ec::DUPLICATE_SEQUENCE_NUMBER,
    }
}

/// A WriteTxnMarkers answer: per marker, its producer and each
/// partition's code, `outcomes` taken in the layout's order across the
/// markers.
pub(super) fn write_txn_markers_response(
    layout: &[(i64, Vec<TopicLayout>)],
    outcomes: &[(u32, AppendOutcome)],
) -> WriteTxnMarkersResponse {
    use kafka_protocol::messages::write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    };
    let mut outcomes = outcomes.iter();
    let mut r = WriteTxnMarkersResponse::default();
    for (producer_id, topics) in layout {
        let mut m = WritableTxnMarkerResult::default();
        m.producer_id = kafka_protocol::messages::ProducerId(*producer_id);
        for (name, parts) in zip_layout(topics, &mut outcomes, |index, outcome| {
            let mut p = WritableTxnMarkerPartitionResult::default();
            p.partition_index = index;
            p.error_code = outcome.map_or_else(|code| code, |(_, o)| append_code(o));
            p
        }) {
            let mut t = WritableTxnMarkerTopicResult::default();
            t.name = TopicName(name.clone());
            t.partitions = parts;
            m.topics.push(t);
        }
        r.markers.push(m);
    }
    r
}

/// The fetch response's topics; `ids` are the topics' ids, in layout
/// order, when the request named topics by id (v13+), else empty.
fn fetch_topics(
    layout: &[TopicLayout],
    ids: &[Uuid],
    reads: Vec<PartitionRead>,
) -> Vec<FetchedTopic> {
    zip_layout(layout, reads, |index, read| match read {
        Ok(read) => FetchedPartition {
            index,
            error_code: match read.error {
                None => ec::NONE,
                Some(ReadError::UnknownPartition) => ec::UNKNOWN_TOPIC_OR_PARTITION,
                Some(ReadError::OffsetOutOfRange) => ec::OFFSET_OUT_OF_RANGE,
                Some(ReadError::Storage) => ec::KAFKA_STORAGE_ERROR,
            },
            high_watermark: read.high_watermark,
            log_start_offset: read.log_start_offset,
            last_stable_offset: read.last_stable_offset,
            aborted: read.aborted,
            records: read.slice.map(|s| s.region),
            diverging_epoch: read.diverging_epoch,
        },
        Err(code) => FetchedPartition {
            index,
            error_code: code,
            high_watermark: -1,
            log_start_offset: -1,
            last_stable_offset: -1,
            aborted: Vec::new(),
            records: None,
            diverging_epoch: None,
        },
    })
    .into_iter()
    .enumerate()
    .map(|(i, (name, partitions))| FetchedTopic {
        name: name.as_str().to_owned(),
        id: ids.get(i).copied().unwrap_or_default(),
        partitions,
    })
    .collect()
}

fn delete_records_response(
    layout: &[TopicLayout],
    results: &[(u32, Deletion)],
) -> DeleteRecordsResponse {
    let mut r = DeleteRecordsResponse::default();
    for (name, parts) in zip_layout(layout, results.iter(), |index, result| {
        let mut p = DeleteRecordsPartitionResult::default();
        p.partition_index = index;
        p.low_watermark = -1;
        p.error_code = match result {
            Ok((_, Deletion::Done(start))) => {
                p.low_watermark = *start;
                ec::NONE
            }
            Ok((_, Deletion::UnknownPartition)) => ec::UNKNOWN_TOPIC_OR_PARTITION,
            Ok((_, Deletion::OutOfRange)) => ec::OFFSET_OUT_OF_RANGE,
            Ok((_, Deletion::PolicyViolation)) => ec::POLICY_VIOLATION,
            Ok((_, Deletion::StorageError)) => ec::KAFKA_STORAGE_ERROR,
            Err(code) => code,
        };
        p
    }) {
        let mut t = DeleteRecordsTopicResult::default();
        t.name = TopicName(name.clone());
        t.partitions = parts;
        r.topics.push(t);
    }
    r
}

fn describe_producers_response(
    layout: &[TopicLayout],
    found: Vec<(u32, Option<Vec<crate::log::ProducerInfo>>)>,
) -> DescribeProducersResponse {
    use kafka_protocol::messages::describe_producers_response::{
        PartitionResponse, ProducerState, TopicResponse,
    };
    let mut r = DescribeProducersResponse::default();
    for (name, parts) in zip_layout(layout, found, |index, answer| {
        let mut p = PartitionResponse::default();
        p.partition_index = index;
        match answer {
            Ok((_, Some(producers))) => {
                p.active_producers = producers
                    .into_iter()
                    .map(|info| {
                        let mut s = ProducerState::default();
                        s.producer_id = kafka_protocol::messages::ProducerId(info.producer_id);
                        s.producer_epoch = i32::from(info.epoch);
                        s.last_sequence = info.last_sequence;
                        s.last_timestamp = info.last_timestamp;
                        s.coordinator_epoch = 0;
                        s.current_txn_start_offset = info.txn_start_offset;
                        s
                    })
                    .collect();
            }
            Ok((_, None)) => p.error_code = ec::UNKNOWN_TOPIC_OR_PARTITION,
            Err(code) => p.error_code = code,
        }
        p
    }) {
        let mut t = TopicResponse::default();
        t.name = TopicName(name.clone());
        t.partitions = parts;
        r.topics.push(t);
    }
    r
}

fn epoch_ends_response(
    layout: &[TopicLayout],
    ends: &[(u32, Option<(i32, i64)>)],
) -> OffsetForLeaderEpochResponse {
    use kafka_protocol::messages::offset_for_leader_epoch_response::*;
    let mut r = OffsetForLeaderEpochResponse::default();
    for (name, parts) in zip_layout(layout, ends.iter(), |index, answer| {
        let mut p = EpochEndOffset::default();
        p.partition = index;
        (p.leader_epoch, p.end_offset) = crate::log::epochs::UNDEFINED;
        match answer {
            Ok((_, Some((epoch, end)))) => (p.leader_epoch, p.end_offset) = (*epoch, *end),
            Ok((_, None)) => p.error_code = ec::UNKNOWN_TOPIC_OR_PARTITION,
            Err(code) => p.error_code = code,
        }
        p
    }) {
        let mut t = OffsetForLeaderTopicResult::default();
        t.topic = TopicName(name.clone());
        t.partitions = parts;
        r.topics.push(t);
    }
    r
}

fn list_offsets_response(
    layout: &[TopicLayout],
    offsets: &[(u32, OffsetAnswer)],
    version: i16,
) -> ListOffsetsResponse {
    let mut r = ListOffsetsResponse::default();
    for (name, parts) in zip_layout(layout, offsets.iter(), |index, answer| {
        let mut p = ListOffsetsPartitionResponse::default();
        p.partition_index = index;
        p.timestamp = -1;
        p.offset = -1;
        p.error_code = match answer {
            Ok((
                _,
                OffsetAnswer::Found {
                    offset,
                    timestamp,
                    leader_epoch,
                },
            )) => {
                p.offset = *offset;
                p.timestamp = *timestamp;
                if version >= 4 {
                    p.leader_epoch = *leader_epoch;
                }
                ec::NONE
            }
            Ok((_, OffsetAnswer::UnknownPartition)) => ec::UNKNOWN_TOPIC_OR_PARTITION,
            Ok((_, OffsetAnswer::StorageError)) => ec::KAFKA_STORAGE_ERROR,
            Err(code) => code,
        };
        p
    }) {
        let mut t = ListOffsetsTopicResponse::default();
        t.name = TopicName(name.clone());
        t.partitions = parts;
        r.topics.push(t);
    }
    r
}

/// A ShareFetch answer's head and its partitions, by topic in the order
/// first named: the refused ones, then the writer's.
fn share_fetch_answer(
    refused: &[super::share_requests::Refused],
    answer: ShareAnswer,
    epoch: i32,
) -> (ShareHead, Vec<(Uuid, Vec<SharePartition>)>) {
    let head = ShareHead {
        error: (answer.error, answer.message),
        lock_ms: answer.lock_ms,
        ..ShareHead::default()
    };
    let mut topics: Vec<(Uuid, Vec<SharePartition>)> = Vec::new();
    let mut put = |id: Uuid, p: SharePartition| match topics.iter_mut().find(|t| t.0 == id) {
        Some(t) => t.1.push(p),
        None => topics.push((id, vec![p])),
    };
    for &(id, index, code) in refused {
        put(
            id,
            SharePartition {
                index,
                error: (code, None),
                ack_error: (code, None),
                leader: (0, epoch),
                records: None,
                acquired: Vec::new(),
            },
        );
    }
    for p in answer.parts {
        put(
            p.topic_id,
            SharePartition {
                index: p.index,
                error: (p.error, None),
                ack_error: (p.ack_error, None),
                leader: (0, epoch),
                records: p.records.map(|s| s.region),
                acquired: p
                    .acquired
                    .iter()
                    .map(|a| (a.first, a.last, a.deliveries as i16))
                    .collect(),
            },
        );
    }
    (head, topics)
}

/// A ShareAcknowledge answer: each partition acknowledged, refused or
/// as the writer answered it.
fn share_acknowledge_answer(
    refused: &[super::share_requests::Refused],
    answer: ShareAnswer,
    epoch: i32,
) -> ShareAcknowledgeResponse {
    use kafka_protocol::messages::share_acknowledge_response::{
        LeaderIdAndEpoch, PartitionData, ShareAcknowledgeTopicResponse,
    };
    let mut r = ShareAcknowledgeResponse::default();
    r.error_code = answer.error;
    r.error_message = answer.message.map(StrBytes::from_string);
    let mut put = |id: Uuid, index: i32, code: i16| {
        let mut p = PartitionData::default();
        p.partition_index = index;
        p.error_code = code;
        let mut leader = LeaderIdAndEpoch::default();
        leader.leader_id = 0;
        leader.leader_epoch = epoch;
        p.current_leader = leader;
        match r.responses.iter_mut().find(|t| t.topic_id == id) {
            Some(t) => t.partitions.push(p),
            None => {
                let mut t = ShareAcknowledgeTopicResponse::default();
                t.topic_id = id;
                t.partitions.push(p);
                r.responses.push(t);
            }
        }
    };
    for &(id, index, code) in refused {
        put(id, index, code);
    }
    for p in answer.parts {
        put(p.topic_id, p.index, p.ack_error);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(name: &str, partitions: Vec<(i32, Result<u32, i16>)>) -> TopicLayout {
        TopicLayout {
            name: StrBytes::from_string(name.to_owned()),
            partitions,
        }
    }

    #[test]
    fn a_write_txn_markers_answer_takes_the_outcomes_in_order_across_markers() {
        let appended = AppendOutcome::Appended {
            base: 4,
            last: 4,
            log_start: 0,
            append_time: -1,
        };
        let asked = vec![
            (
                7,
                vec![layout(
                    "a",
                    vec![(0, Ok(10)), (9, Err(ec::UNKNOWN_TOPIC_OR_PARTITION))],
                )],
            ),
            (
                8,
                vec![
                    layout("b", vec![(1, Ok(11))]),
                    layout("a", vec![(0, Ok(10))]),
                ],
            ),
        ];
        let outcomes = [
            (10, appended),
            (11, AppendOutcome::InvalidProducerEpoch),
            (10, AppendOutcome::StorageError),
        ];
        let r = write_txn_markers_response(&asked, &outcomes);
        let codes: Vec<(i64, &str, i32, i16)> = r
            .markers
            .iter()
            .flat_map(|m| {
                m.topics.iter().flat_map(move |t| {
                    t.partitions.iter().map(move |p| {
                        (
                            m.producer_id.0,
                            t.name.0.as_str(),
                            p.partition_index,
                            p.error_code,
                        )
                    })
                })
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                (7, "a", 0, ec::NONE),
                (7, "a", 9, ec::UNKNOWN_TOPIC_OR_PARTITION),
                (8, "b", 1, ec::INVALID_PRODUCER_EPOCH),
                (8, "a", 0, ec::KAFKA_STORAGE_ERROR),
            ]
        );
    }
}
