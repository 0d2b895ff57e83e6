//! The transaction coordinator: what each transactional id's producer is
//! (id, epoch), the transaction it has open (partitions, consumer
//! groups, offsets to commit with it), and the ending of transactions:
//! a decision made durable (see [`TxnStore`]), the group offsets of a commit
//! applied, then a marker per partition asked of the log writer, and the
//! decision marked done when the writer says the markers are written.
//!
//! Plain data and functions from request to response: it runs on the
//! group coordinator's thread (which owns the offsets a transaction
//! commits) and hands what it asks of the log writer (markers, partitions
//! added) to that thread through
//! [`take_log_ops`](Transactions::take_log_ops). Uses the topic catalog,
//! the writer's vocabulary and the group offsets store.
//!
//! The rules are Kafka's (transactions v1, KIP-98, with KIP-360's epoch
//! bumps): InitProducerId gives a transactional id a producer id at the
//! next epoch, fencing the one before, and first aborts a transaction
//! left open; AddPartitionsToTxn and AddOffsetsToTxn open one; EndTxn
//! commits or aborts it; while markers are being written, requests for
//! the id are answered CONCURRENT_TRANSACTIONS and the client retries. A
//! transaction open longer than its timeout is aborted with the epoch
//! bumped. At start, decisions whose markers may not all be written are
//! finished, and a transaction open at the stop goes on where it was (its
//! partitions added again with the writer before any connection is
//! served), as Kafka's coordinator loads its ongoing transactions: the
//! producer commits or aborts it when it reconnects. One the file does not
//! hold whole (a partition found open that it does not name: a record
//! lost to a power cut under a lax flush policy, or written by a version
//! that kept no open transactions) is aborted, since what it carried is
//! not known.

mod store;

use crate::log::batch::Marker;
use crate::log::now_ms;
use crate::ops::{LogOp, Markers, MarkersWritten};
use crate::producer_ids::ProducerIds;
use crate::protocol::error_code as ec;
use crate::protocol::pattern;
use crate::server::groups::offsets::{Committed, OffsetKey, OffsetStore};
use crate::topics::{Catalog, PartitionId};
use crate::writer::FlushPolicy;
use crossbeam_channel::Sender;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestPartition;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{describe_transactions_response, list_transactions_response};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use store::{Decision, Durable, Kept, Open, TxnStore};

/// The longest transaction timeout a producer may ask for (Kafka's
/// `transaction.max.timeout.ms` default, 15 minutes).
pub const MAX_TIMEOUT_MS: i32 = 900_000;

/// How long a transactional id no request names is kept (Kafka's
/// `transactional.id.expiration.ms` default, 7 days): bounds the memory
/// and the file a stream of short-lived ids takes.
pub const EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// One transactional id.
#[derive(Debug)]
struct Txn {
    durable: Durable,
    open: Option<Open>,
    /// Markers for the decision are with the writer.
    writing: bool,
    /// Partitions whose marker failed, asked for again on the next tick.
    retry: Vec<PartitionId>,
    /// How the last transaction ended, to answer a retried EndTxn.
    last_ended: Option<Decision>,
    /// When a request last named it (or it was loaded).
    last_used: Instant,
}

/// A partition found with a transaction open at start: the partition,
/// its topic and index, the producer and its epoch there.
pub type OpenAtStart = (PartitionId, String, i32, i64, i16);

/// Every transactional id, and the markers waiting to go to the writer.
#[derive(Debug)]
pub struct Transactions {
    txns: HashMap<String, Txn>,
    store: TxnStore,
    catalog: Arc<Catalog>,
    producer_ids: Arc<ProducerIds>,
    outbox: Vec<LogOp>,
    done: Sender<MarkersWritten>,
}

/// The states ListTransactions and DescribeTransactions name (Kafka's).
const STATES: [&str; 8] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

/// Where `t` stands, by Kafka's names.
fn state_name(t: &Txn) -> &'static str {
    match (t.durable.decision, &t.open, t.last_ended) {
        (Decision::Commit, _, _) => "PrepareCommit",
        (Decision::Abort, _, _) => "PrepareAbort",
        (Decision::None, Some(_), _) => "Ongoing",
        (Decision::None, None, Some(Decision::Commit)) => "CompleteCommit",
        (Decision::None, None, Some(Decision::Abort)) => "CompleteAbort",
        (Decision::None, None, _) => "Empty",
    }
}

/// The writer's request for the markers that end `id`'s transaction as
/// `durable` decided, in `partitions`.
fn markers(
    id: &str,
    durable: &Durable,
    partitions: Vec<PartitionId>,
    done: &Sender<MarkersWritten>,
) -> LogOp {
    LogOp::WriteMarkers(Markers {
        transactional_id: id.to_owned(),
        producer_id: durable.producer_id,
        producer_epoch: durable.epoch,
        marker: match durable.decision {
            Decision::Commit => Marker::Commit,
            _ => Marker::Abort,
        },
        coordinator_epoch: 0,
        partitions,
        done: done.clone(),
    })
}

/// An AddPartitionsToTxn answer (v0-3): per topic, each partition's code.
pub fn add_partitions_answer(
    topics: impl Iterator<Item = (TopicName, Vec<(i32, i16)>)>,
) -> AddPartitionsToTxnResponse {
    let mut resp = AddPartitionsToTxnResponse::default();
    resp.results_by_topic_v3_and_below = topics
        .map(|(name, parts)| {
            let mut t = AddPartitionsToTxnTopicResult::default();
            t.name = name;
            t.results_by_partition = parts
                .into_iter()
                .map(|(index, code)| {
                    let mut p = AddPartitionsToTxnPartitionResult::default();
                    p.partition_index = index;
                    p.partition_error_code = code;
                    p
                })
                .collect();
            t
        })
        .collect();
    resp
}

/// A TxnOffsetCommit answer to `r`: each partition gets `code(topic,
/// partition)`.
pub fn txn_offsets_answer(
    r: &TxnOffsetCommitRequest,
    code: impl Fn(&TopicName, &TxnOffsetCommitRequestPartition) -> i16,
) -> TxnOffsetCommitResponse {
    let mut resp = TxnOffsetCommitResponse::default();
    resp.topics = r
        .topics
        .iter()
        .map(|t| {
            let mut out = TxnOffsetCommitResponseTopic::default();
            out.name = t.name.clone();
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut q = TxnOffsetCommitResponsePartition::default();
                    q.partition_index = p.partition_index;
                    q.error_code = code(&t.name, p);
                    q
                })
                .collect();
            out
        })
        .collect();
    resp
}

/// A committed transaction's offsets for partitions that still exist
/// (a topic deleted while the transaction was open keeps none).
fn live_offsets(
    catalog: &Catalog,
    offsets: &[(OffsetKey, Committed)],
) -> Vec<(OffsetKey, Committed)> {
    offsets
        .iter()
        .filter(|((_, topic, partition), _)| catalog.has_partition(topic, *partition))
        .cloned()
        .collect()
}

/// The error for a stale epoch at `version`: PRODUCER_FENCED from the
/// first version that knows it (`fenced_from`), INVALID_PRODUCER_EPOCH
/// before.
fn fenced(version: i16, fenced_from: i16) -> i16 {
    if version >= fenced_from {
        ec::PRODUCER_FENCED
    } else {
        ec::INVALID_PRODUCER_EPOCH
    }
}

impl Transactions {
    /// Loads `<dir>/transactions.log` (synced as `flush` says: see
    /// [`TxnStore`]). Producer ids come from `producer_ids` (shared with
    /// idempotent producers), which start past every id the file holds;
    /// the writer's word on markers goes to `done`.
    pub fn open(
        dir: &Path,
        flush: FlushPolicy,
        catalog: Arc<Catalog>,
        producer_ids: Arc<ProducerIds>,
        done: Sender<MarkersWritten>,
    ) -> std::io::Result<Self> {
        let (store, all) = TxnStore::open(dir, flush)?;
        if let Some(max) = all.values().map(|(durable, _)| durable.producer_id).max() {
            producer_ids.at_least(max + 1)?;
        }
        let txns = all
            .into_iter()
            .map(|(id, (durable, open))| {
                let txn = Txn {
                    durable,
                    open,
                    writing: false,
                    retry: Vec::new(),
                    last_ended: None,
                    last_used: Instant::now(),
                };
                (id, txn)
            })
            .collect();
        Ok(Transactions {
            txns,
            store,
            catalog,
            producer_ids,
            outbox: Vec::new(),
            done,
        })
    }

    /// Finishes what a stop left: decisions whose markers may not all be
    /// written get them where their producer is still open (a commit's
    /// offsets applied again); transactions the file holds open go on
    /// (their partitions added again with the writer); a transaction
    /// `open` lists that the file does not hold whole is aborted (its
    /// transactional id's epoch bumped, if known).
    pub fn recover(&mut self, open: Vec<OpenAtStart>, offsets: &mut OffsetStore) {
        // Producer id → its highest epoch seen, and its open partitions.
        type Found = (i16, Vec<(PartitionId, String, i32)>);
        let mut orphans: HashMap<i64, Found> = HashMap::new();
        for (partition, topic, index, producer_id, epoch) in open {
            let entry = orphans.entry(producer_id).or_insert((epoch, Vec::new()));
            entry.0 = entry.0.max(epoch);
            entry.1.push((partition, topic, index));
        }
        let ids: Vec<String> = self.txns.keys().cloned().collect();
        for id in ids {
            let t = self.txns.get_mut(&id).expect("listed");
            let found = orphans.remove(&t.durable.producer_id);
            if t.durable.decision != Decision::None {
                if t.durable.decision == Decision::Commit && !t.durable.offsets.is_empty() {
                    let live = live_offsets(&self.catalog, &t.durable.offsets);
                    if let Err(e) = offsets.commit(live) {
                        tracing::error!(transactional_id = %id, error = %e, "cannot apply a committed transaction's offsets");
                    }
                }
                let still_open: BTreeSet<(String, i32)> = found
                    .map(|(_, parts)| parts.into_iter().map(|(_, t, i)| (t, i)).collect())
                    .unwrap_or_default();
                t.durable.partitions.retain(|p| still_open.contains(p));
                tracing::info!(transactional_id = %id, decision = ?t.durable.decision, partitions = t.durable.partitions.len(), "finishing a transaction's markers after a stop");
                self.send_markers(&id);
            } else {
                let epoch = found.as_ref().map(|f| f.0);
                let found: BTreeSet<(String, i32)> = found
                    .into_iter()
                    .flat_map(|(_, parts)| parts.into_iter().map(|(_, t, i)| (t, i)))
                    .collect();
                let whole = t.open.as_ref().is_some_and(|o| {
                    found.is_subset(&o.partitions) && epoch.is_none_or(|e| e == t.durable.epoch)
                });
                if whole {
                    let open = t.open.as_ref().expect("checked");
                    tracing::info!(transactional_id = %id, partitions = open.partitions.len(), offsets = open.offsets.len(), "keeping a transaction open across a stop");
                    // Its batches are taken again only once the writer
                    // knows the partitions were added (it forgets at a stop).
                    let partitions = open
                        .partitions
                        .iter()
                        .filter_map(|(topic, index)| self.catalog.get(topic)?.partition(*index))
                        .collect();
                    self.outbox.push(LogOp::AddToTransaction {
                        producer_id: t.durable.producer_id,
                        producer_epoch: t.durable.epoch,
                        partitions,
                    });
                } else if t.open.is_some() || !found.is_empty() {
                    tracing::info!(transactional_id = %id, partitions = found.len(), "aborting a transaction left open by a stop: the transactions file does not hold it whole");
                    t.open
                        .get_or_insert_with(Open::now)
                        .partitions
                        .extend(found);
                    if let Err(e) = self.end(&id, Decision::Abort, true, offsets) {
                        tracing::error!(transactional_id = %id, error = %e, "cannot abort a transaction left open");
                    }
                }
            }
        }
        // Producers no transactional id knows (their id's record was
        // lost): abort at the epoch the partitions saw.
        for (producer_id, (epoch, parts)) in orphans {
            tracing::warn!(
                producer_id,
                partitions = parts.len(),
                "aborting an open transaction of an unknown transactional id"
            );
            self.outbox.push(LogOp::WriteMarkers(Markers {
                transactional_id: String::new(),
                producer_id,
                producer_epoch: epoch,
                marker: Marker::Abort,
                coordinator_epoch: 0,
                partitions: parts.into_iter().map(|(p, _, _)| p).collect(),
                done: self.done.clone(),
            }));
        }
    }

    /// What to hand to the log writer, in order: markers to write, and
    /// partitions added to transactions (ahead of the answer that lets
    /// the producer send there).
    pub fn take_log_ops(&mut self) -> Vec<LogOp> {
        std::mem::take(&mut self.outbox)
    }

    /// Transactional ids known.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    /// Whether no transactional id is known.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// Whether a transaction not yet ended carries an offset for
    /// (`group`, `topic`, `partition`): an OffsetFetch asking for stable
    /// offsets must wait for it (KIP-447).
    pub fn has_pending_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.txns.values().filter_map(|t| t.open.as_ref()).any(|o| {
            o.offsets
                .iter()
                .any(|((g, t, p), _)| g == group && t == topic && *p == partition)
        })
    }

    /// ListTransactions (v0-2): the transactional ids `visible` lets the
    /// principal see, filtered by state, producer id, (v1) how long their
    /// transaction has run and (v2) a regular expression over the id.
    pub fn list(
        &self,
        r: &ListTransactionsRequest,
        visible: impl Fn(&str) -> bool,
    ) -> ListTransactionsResponse {
        let mut resp = ListTransactionsResponse::default();
        resp.unknown_state_filters = r
            .state_filters
            .iter()
            .filter(|f| !STATES.contains(&f.as_str()))
            .cloned()
            .collect();
        // v2 (KIP-1152): only ids the pattern matches whole; none or an
        // empty one matches all.
        let pattern = r
            .transactional_id_pattern
            .as_ref()
            .filter(|p| !p.is_empty());
        let pattern = match pattern.map(|p| pattern::whole_names(p, "TransactionalIdPattern")) {
            None => None,
            Some(Ok(re)) => Some(re),
            Some(Err(why)) => {
                resp.error_code = ec::INVALID_REGULAR_EXPRESSION;
                tracing::debug!(%why, "ListTransactions refused");
                return resp;
            }
        };
        let now = now_ms();
        let mut listed: Vec<(&String, &Txn)> = self
            .txns
            .iter()
            .filter(|(id, t)| {
                let state = state_name(t);
                pattern.as_ref().is_none_or(|re| re.is_match(id))
                    && (r.state_filters.is_empty()
                        || r.state_filters.iter().any(|f| f.as_str() == state))
                    && (r.producer_id_filters.is_empty()
                        || r.producer_id_filters
                            .iter()
                            .any(|p| p.0 == t.durable.producer_id))
                    && (r.duration_filter < 0
                        || t.open
                            .as_ref()
                            .is_some_and(|o| now - o.started_ms > r.duration_filter))
                    && visible(id)
            })
            .collect();
        listed.sort_by_key(|(id, _)| *id);
        resp.transaction_states = listed
            .into_iter()
            .map(|(id, t)| {
                let mut s = list_transactions_response::TransactionState::default();
                s.transactional_id = TransactionalId(StrBytes::from_string(id.clone()));
                s.producer_id = ProducerId(t.durable.producer_id);
                s.transaction_state = StrBytes::from_static_str(state_name(t));
                s
            })
            .collect();
        resp
    }

    /// DescribeTransactions: each id's state, producer, timeout, start
    /// and partitions; ids in `denied` (the ACLs') are refused.
    pub fn describe(
        &self,
        r: &DescribeTransactionsRequest,
        denied: &[String],
    ) -> DescribeTransactionsResponse {
        let mut resp = DescribeTransactionsResponse::default();
        resp.transaction_states = r
            .transactional_ids
            .iter()
            .map(|id| {
                let mut s = describe_transactions_response::TransactionState::default();
                s.transactional_id = id.clone();
                s.producer_id = ProducerId(-1);
                s.producer_epoch = -1;
                s.transaction_start_time_ms = -1;
                let found = self.txns.get(id.0.as_str());
                match found {
                    _ if denied.iter().any(|d| d == id.0.as_str()) => {
                        s.error_code = ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
                    }
                    None => s.error_code = ec::TRANSACTIONAL_ID_NOT_FOUND,
                    Some(t) => {
                        s.transaction_state = StrBytes::from_static_str(state_name(t));
                        s.transaction_timeout_ms = t.durable.timeout_ms;
                        s.producer_id = ProducerId(t.durable.producer_id);
                        s.producer_epoch = t.durable.epoch;
                        let partitions: Vec<&(String, i32)> = match &t.open {
                            Some(o) => {
                                s.transaction_start_time_ms = o.started_ms;
                                o.partitions.iter().collect()
                            }
                            None => t.durable.partitions.iter().collect(),
                        };
                        for (topic, index) in partitions {
                            let name = TopicName(StrBytes::from_string(topic.clone()));
                            match s.topics.iter_mut().find(|d| d.topic == name) {
                                Some(d) => d.partitions.push(*index),
                                None => {
                                    let mut d =
                                        describe_transactions_response::TopicData::default();
                                    d.topic = name;
                                    d.partitions = vec![*index];
                                    s.topics.push(d);
                                }
                            }
                        }
                    }
                }
                s
            })
            .collect();
        resp
    }

    fn new_producer_id(&self) -> Option<i64> {
        self.producer_ids.next()
    }

    /// InitProducerId for a transactional id.
    pub fn init_producer_id(
        &mut self,
        r: &InitProducerIdRequest,
        version: i16,
        offsets: &mut OffsetStore,
    ) -> InitProducerIdResponse {
        let mut resp = InitProducerIdResponse::default();
        resp.producer_id = ProducerId(-1);
        resp.producer_epoch = -1;
        let id = r
            .transactional_id
            .as_ref()
            .map_or("", |t| t.0.as_str())
            .to_owned();
        if id.is_empty() {
            resp.error_code = ec::INVALID_REQUEST;
            return resp;
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&r.transaction_timeout_ms) {
            resp.error_code = ec::INVALID_TRANSACTION_TIMEOUT;
            return resp;
        }
        // The next block of ids is being recorded: the client asks again.
        let refused = |mut resp: InitProducerIdResponse| {
            resp.error_code = ec::COORDINATOR_LOAD_IN_PROGRESS;
            resp
        };
        let next = match self.txns.get(&id) {
            None => Durable {
                producer_id: match self.new_producer_id() {
                    Some(pid) => pid,
                    None => return refused(resp),
                },
                epoch: 0,
                timeout_ms: r.transaction_timeout_ms,
                decision: Decision::None,
                partitions: Vec::new(),
                offsets: Vec::new(),
            },
            Some(t) => {
                let d = &t.durable;
                // KIP-360: a producer that names itself must be the
                // current one.
                if r.producer_id.0 >= 0
                    && (r.producer_id.0 != d.producer_id || r.producer_epoch != d.epoch)
                {
                    resp.error_code = fenced(version, 4);
                    return resp;
                }
                if d.decision != Decision::None {
                    resp.error_code = ec::CONCURRENT_TRANSACTIONS;
                    return resp;
                }
                if t.open.is_some() {
                    // The old producer's transaction is aborted (fencing
                    // it); this one retries once the markers are written.
                    if let Err(e) = self.end(&id, Decision::Abort, true, offsets) {
                        tracing::error!(transactional_id = %id, error = %e, "cannot abort the open transaction");
                        resp.error_code = ec::COORDINATOR_NOT_AVAILABLE;
                    } else {
                        resp.error_code = ec::CONCURRENT_TRANSACTIONS;
                    }
                    return resp;
                }
                let (producer_id, epoch) = if d.epoch >= i16::MAX - 1 {
                    match self.new_producer_id() {
                        Some(pid) => (pid, 0),
                        None => return refused(resp),
                    }
                } else {
                    (d.producer_id, d.epoch + 1)
                };
                Durable {
                    producer_id,
                    epoch,
                    timeout_ms: r.transaction_timeout_ms,
                    ..d.clone()
                }
            }
        };
        if let Err(e) = self.store.save(&id, &next, None) {
            tracing::error!(transactional_id = %id, error = %e, "cannot write the transaction state");
            resp.error_code = ec::COORDINATOR_NOT_AVAILABLE;
            return resp;
        }
        resp.producer_id = ProducerId(next.producer_id);
        resp.producer_epoch = next.epoch;
        let txn = self.txns.entry(id).or_insert_with(|| Txn {
            durable: next.clone(),
            open: None,
            writing: false,
            retry: Vec::new(),
            last_ended: None,
            last_used: Instant::now(),
        });
        txn.durable = next;
        txn.last_ended = None;
        txn.last_used = Instant::now();
        resp
    }

    /// The error for a request from (`producer_id`, `epoch`) for `id`,
    /// or NONE; `fenced_from` is the first version of the request that
    /// knows PRODUCER_FENCED.
    fn check(&self, id: &str, producer_id: i64, epoch: i16, version: i16, fenced_from: i16) -> i16 {
        match self.txns.get(id) {
            None => ec::INVALID_PRODUCER_ID_MAPPING,
            Some(t) if t.durable.producer_id != producer_id => ec::INVALID_PRODUCER_ID_MAPPING,
            Some(t) if t.durable.epoch != epoch => fenced(version, fenced_from),
            Some(t) if t.durable.decision != Decision::None => ec::CONCURRENT_TRANSACTIONS,
            Some(_) => ec::NONE,
        }
    }

    fn open_mut(&mut self, id: &str) -> &mut Open {
        let t = self.txns.get_mut(id).expect("checked");
        t.last_used = Instant::now();
        t.open.get_or_insert_with(Open::now)
    }

    /// Makes `id`'s state, with its open transaction, durable.
    fn save(&mut self, id: &str) -> std::io::Result<()> {
        let t = &self.txns[id];
        self.store.save(id, &t.durable, t.open.as_ref())
    }

    /// AddPartitionsToTxn (v0-3). Partitions of `denied` topics (the
    /// ACLs') get TOPIC_AUTHORIZATION_FAILED; if any partition fails,
    /// none is added and the rest get OPERATION_NOT_ATTEMPTED.
    pub fn add_partitions(
        &mut self,
        r: &AddPartitionsToTxnRequest,
        version: i16,
        denied: &[String],
    ) -> AddPartitionsToTxnResponse {
        let id = r.v3_and_below_transactional_id.0.as_str();
        let code = self.check(
            id,
            r.v3_and_below_producer_id.0,
            r.v3_and_below_producer_epoch,
            version,
            2,
        );
        let verdict = |topic: &str, index: i32| -> i16 {
            if code != ec::NONE {
                code
            } else if denied.iter().any(|d| d == topic) {
                ec::TOPIC_AUTHORIZATION_FAILED
            } else if self
                .catalog
                .get(topic)
                .and_then(|t| t.partition(index))
                .is_none()
            {
                ec::UNKNOWN_TOPIC_OR_PARTITION
            } else {
                ec::NONE
            }
        };
        let mut results: Vec<(String, Vec<(i32, i16)>)> = r
            .v3_and_below_topics
            .iter()
            .map(|t| {
                let name = t.name.0.as_str();
                let parts = t
                    .partitions
                    .iter()
                    .map(|&i| (i, verdict(name, i)))
                    .collect();
                (name.to_owned(), parts)
            })
            .collect();
        // A request naming no partition is all good only if its producer
        // checked out.
        let all_good = code == ec::NONE
            && results
                .iter()
                .all(|(_, parts)| parts.iter().all(|&(_, c)| c == ec::NONE));
        let mut kept = all_good;
        if all_good {
            let began = self.txns[id].open.is_none();
            let open = self.open_mut(id);
            let mut added = Vec::new();
            for (topic, parts) in &results {
                for &(index, _) in parts {
                    if open.partitions.insert((topic.clone(), index)) {
                        added.push((topic.clone(), index));
                    }
                }
            }
            if !added.is_empty() {
                if let Err(e) = self.save(id) {
                    tracing::error!(transactional_id = %id, error = %e, "cannot write the transaction's partitions");
                    let t = self.txns.get_mut(id).expect("checked");
                    match (&mut t.open, began) {
                        (open, true) => *open = None,
                        (Some(open), false) => added.iter().for_each(|p| {
                            open.partitions.remove(p);
                        }),
                        (None, false) => {}
                    }
                    kept = false;
                }
            }
        }
        if kept {
            let d = &self.txns[id].durable;
            let partitions = results
                .iter()
                .flat_map(|(topic, parts)| {
                    let t = self.catalog.get(topic);
                    parts
                        .iter()
                        .filter_map(move |&(index, _)| t.as_ref()?.partition(index))
                })
                .collect();
            self.outbox.push(LogOp::AddToTransaction {
                producer_id: d.producer_id,
                producer_epoch: d.epoch,
                partitions,
            });
        } else {
            // Not written: the client asks again.
            let instead = if all_good {
                ec::COORDINATOR_NOT_AVAILABLE
            } else {
                ec::OPERATION_NOT_ATTEMPTED
            };
            for (_, parts) in &mut results {
                for (_, c) in parts.iter_mut() {
                    if *c == ec::NONE {
                        *c = instead;
                    }
                }
            }
        }
        let named = results
            .into_iter()
            .map(|(name, parts)| (TopicName(StrBytes::from_string(name)), parts));
        add_partitions_answer(named)
    }

    /// AddOffsetsToTxn: the transaction will commit offsets of the group.
    pub fn add_offsets(
        &mut self,
        r: &AddOffsetsToTxnRequest,
        version: i16,
    ) -> AddOffsetsToTxnResponse {
        let id = r.transactional_id.0.as_str();
        let mut resp = AddOffsetsToTxnResponse::default();
        resp.error_code = self.check(id, r.producer_id.0, r.producer_epoch, version, 2);
        if resp.error_code == ec::NONE && self.txns[id].open.is_none() {
            self.open_mut(id);
            if let Err(e) = self.save(id) {
                tracing::error!(transactional_id = %id, error = %e, "cannot write the transaction's start");
                self.txns.get_mut(id).expect("checked").open = None;
                resp.error_code = ec::COORDINATOR_NOT_AVAILABLE;
            }
        }
        resp
    }

    /// TxnOffsetCommit: offsets committed if the transaction commits.
    /// `refused` is the group's verdict on the member (an error code, or
    /// NONE), checked by the caller, which knows the groups; offsets of
    /// `denied` topics (the ACLs') get TOPIC_AUTHORIZATION_FAILED, and
    /// those whose metadata is `too_large` OFFSET_METADATA_TOO_LARGE.
    pub fn commit_offsets(
        &mut self,
        r: &TxnOffsetCommitRequest,
        version: i16,
        refused: i16,
        denied: &[String],
        too_large: impl Fn(Option<&StrBytes>) -> bool,
    ) -> TxnOffsetCommitResponse {
        let is_denied = |t: &TopicName| denied.iter().any(|d| d == t.0.as_str());
        // As Kafka: an offset for a partition that does not exist is
        // refused, not kept for a topic that may come back under its name.
        let catalog = self.catalog.clone();
        let unknown = |t: &TopicName, p: i32| !catalog.has_partition(t.0.as_str(), p);
        let id = r.transactional_id.0.as_str();
        let mut code = self.check(id, r.producer_id.0, r.producer_epoch, version, 3);
        if code == ec::NONE && self.txns[id].open.is_none() {
            // Offsets before AddOffsetsToTxn.
            code = ec::INVALID_TXN_STATE;
        }
        if code == ec::NONE {
            code = refused;
        }
        if code == ec::NONE {
            let group = r.group_id.0.as_str();
            let open = self.open_mut(id);
            let before = open.offsets.clone();
            for t in r.topics.iter().filter(|t| !is_denied(&t.name)) {
                for p in t.partitions.iter().filter(|p| {
                    !unknown(&t.name, p.partition_index)
                        && !too_large(p.committed_metadata.as_ref())
                }) {
                    let key = (
                        group.to_owned(),
                        t.name.0.as_str().to_owned(),
                        p.partition_index,
                    );
                    open.offsets.retain(|(k, _)| *k != key);
                    let value = Committed {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.as_str().to_owned()),
                    };
                    open.offsets.push((key, value));
                }
            }
            // Kept as Kafka keeps them in its offsets topic: a restart
            // commits them with the transaction.
            if let Err(e) = self.save(id) {
                tracing::error!(transactional_id = %id, error = %e, "cannot write the transaction's offsets");
                self.open_mut(id).offsets = before;
                code = ec::COORDINATOR_NOT_AVAILABLE;
            }
        }
        txn_offsets_answer(r, |t, p| {
            if code == ec::NONE && is_denied(t) {
                ec::TOPIC_AUTHORIZATION_FAILED
            } else if code == ec::NONE && unknown(t, p.partition_index) {
                ec::UNKNOWN_TOPIC_OR_PARTITION
            } else if code == ec::NONE && too_large(p.committed_metadata.as_ref()) {
                ec::OFFSET_METADATA_TOO_LARGE
            } else {
                code
            }
        })
    }

    /// EndTxn: commits or aborts the open transaction. While the markers
    /// are being written ([`is_ending`](Self::is_ending)) the caller
    /// holds the answer back until [`markers_written`](Self::markers_written)
    /// completes it: the producer's next transaction then finds the id
    /// free, where answering at once (as Kafka does, its markers going to
    /// other brokers) would have its first AddPartitionsToTxn answered
    /// CONCURRENT_TRANSACTIONS and retried after the client's back-off.
    pub fn end_txn(
        &mut self,
        r: &EndTxnRequest,
        version: i16,
        offsets: &mut OffsetStore,
    ) -> EndTxnResponse {
        let id = r.transactional_id.0.as_str();
        let asked = if r.committed {
            Decision::Commit
        } else {
            Decision::Abort
        };
        let mut resp = EndTxnResponse::default();
        resp.error_code = match self.check(id, r.producer_id.0, r.producer_epoch, version, 2) {
            ec::CONCURRENT_TRANSACTIONS if self.txns[id].durable.decision != asked => {
                ec::INVALID_TXN_STATE
            }
            ec::NONE => {
                let t = &self.txns[id];
                if t.open.is_some() {
                    match self.end(id, asked, false, offsets) {
                        Ok(()) => ec::NONE,
                        Err(e) => {
                            tracing::error!(transactional_id = %id, error = %e, "cannot write the transaction's decision");
                            ec::COORDINATOR_NOT_AVAILABLE
                        }
                    }
                } else if t.last_ended == Some(asked) {
                    ec::NONE // a retry of the one just ended
                } else {
                    ec::INVALID_TXN_STATE
                }
            }
            code => code,
        };
        resp
    }

    /// Ends `id`'s open transaction: the decision made durable (with the
    /// epoch bumped if `bump`, fencing the producer), a commit's offsets
    /// applied, the markers queued.
    fn end(
        &mut self,
        id: &str,
        decision: Decision,
        bump: bool,
        offsets: &mut OffsetStore,
    ) -> std::io::Result<()> {
        let t = self.txns.get_mut(id).expect("known");
        t.last_used = Instant::now();
        let open = t.open.take().expect("an open transaction");
        let mut next = t.durable.clone();
        if bump && next.epoch < i16::MAX - 1 {
            next.epoch += 1;
        }
        next.decision = decision;
        next.partitions = open.partitions.iter().cloned().collect();
        next.offsets = match decision {
            Decision::Commit => open.offsets.clone(),
            _ => Vec::new(),
        };
        if let Err(e) = self.store.save(id, &next, None) {
            t.open = Some(open);
            return Err(e);
        }
        t.durable = next;
        if decision == Decision::Commit && !t.durable.offsets.is_empty() {
            // The decision is durable: were this to fail, a restart
            // applies them again.
            if let Err(e) = offsets.commit(live_offsets(&self.catalog, &t.durable.offsets)) {
                tracing::error!(transactional_id = %id, error = %e, "cannot apply a committed transaction's offsets");
            }
        }
        self.send_markers(id);
        Ok(())
    }

    fn send_markers(&mut self, id: &str) {
        let t = self.txns.get_mut(id).expect("known");
        let partitions: Vec<PartitionId> = t
            .durable
            .partitions
            .iter()
            .filter_map(|(topic, index)| self.catalog.get(topic)?.partition(*index))
            .collect();
        if partitions.is_empty() {
            self.complete(id);
            return;
        }
        t.writing = true;
        let op = markers(id, &t.durable, partitions, &self.done);
        self.outbox.push(op);
    }

    /// The decision's markers are all written: the transactional id may
    /// start its next transaction.
    fn complete(&mut self, id: &str) {
        let t = self.txns.get_mut(id).expect("known");
        t.last_ended = Some(t.durable.decision);
        t.durable.decision = Decision::None;
        t.durable.partitions.clear();
        t.durable.offsets.clear();
        t.writing = false;
        t.retry.clear();
        if let Err(e) = self.store.save(id, &t.durable, t.open.as_ref()) {
            // The decision stays in the file: a restart finishes it again,
            // writing no marker where the producer is no longer open.
            tracing::error!(transactional_id = %id, error = %e, "cannot mark a transaction done");
        }
    }

    /// Whether `id`'s transaction is being ended (its markers are not all
    /// written yet).
    pub fn is_ending(&self, id: &str) -> bool {
        self.txns
            .get(id)
            .is_some_and(|t| t.durable.decision != Decision::None)
    }

    /// The writer's word on markers; returns the transactional id whose
    /// transaction it completed, if it did.
    pub fn markers_written(&mut self, m: MarkersWritten) -> Option<String> {
        let t = self.txns.get_mut(&m.transactional_id)?; // else an orphan's abort
        if t.durable.producer_id != m.producer_id || !t.writing {
            return None;
        }
        t.writing = false;
        if m.failed.is_empty() {
            let id = m.transactional_id;
            self.complete(&id);
            Some(id)
        } else {
            tracing::warn!(transactional_id = %m.transactional_id, partitions = ?m.failed, "transaction markers failed; trying again");
            t.retry = m.failed;
            None
        }
    }

    /// Rewrites the transactions file compactly when it is due, aborts
    /// transactions open past their timeout (bumping the epoch, as Kafka
    /// does, so the producer is fenced), asks again for markers that
    /// failed, and forgets ids unused for [`EXPIRY`].
    pub fn tick(&mut self, now: Instant, offsets: &mut OffsetStore) {
        if self.store.worth_rewriting(self.txns.len()) {
            let all = self
                .txns
                .iter()
                .map(|(id, t)| (id.as_str(), &t.durable, t.open.as_ref()));
            if let Err(e) = self.store.rewrite(all) {
                tracing::warn!(error = %e, "cannot rewrite the transactions file compactly; it keeps growing until a rewrite succeeds");
            }
        }
        if let Err(e) = self.store.sync_if_due(now) {
            tracing::error!(error = %e, "cannot sync the transactions' state");
        }
        let idle: Vec<String> = self
            .txns
            .iter()
            .filter(|(_, t)| {
                t.open.is_none()
                    && t.durable.decision == Decision::None
                    && now.saturating_duration_since(t.last_used) > EXPIRY
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            match self.store.forget(&id) {
                Ok(()) => {
                    tracing::info!(transactional_id = %id, "forgot a transactional id unused for 7 days");
                    self.txns.remove(&id);
                }
                Err(e) => {
                    tracing::error!(transactional_id = %id, error = %e, "cannot forget a transactional id")
                }
            }
        }
        let expired: Vec<String> = self
            .txns
            .iter()
            .filter(|(_, t)| {
                t.open.as_ref().is_some_and(|o| {
                    now.duration_since(o.started)
                        > Duration::from_millis(t.durable.timeout_ms.max(0) as u64)
                })
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            tracing::info!(transactional_id = %id, "aborting a transaction open past its timeout");
            if let Err(e) = self.end(&id, Decision::Abort, true, offsets) {
                tracing::error!(transactional_id = %id, error = %e, "cannot abort an expired transaction");
            }
        }
        for (id, t) in &mut self.txns {
            if t.writing || t.retry.is_empty() {
                continue;
            }
            t.writing = true;
            let partitions = std::mem::take(&mut t.retry);
            self.outbox
                .push(markers(id, &t.durable, partitions, &self.done));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;
    use crate::topics::Topic;
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::TransactionalId;
    use kafka_protocol::protocol::StrBytes;

    struct Fixture {
        dir: std::path::PathBuf,
        catalog: Arc<Catalog>,
        ids: Arc<ProducerIds>,
        done: Sender<MarkersWritten>,
        offsets: OffsetStore,
    }

    impl Fixture {
        fn new(tag: &str) -> Self {
            let dir =
                gyre_testkit::scratch_root().join(format!("gyre-txn-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let catalog = Arc::new(Catalog::default());
            catalog.insert(Arc::new(Topic {
                name: "t".into(),
                id: crate::topics::new_topic_id(),
                partitions: vec![10, 11],
                config: LogConfig::default(),
            }));
            let (done, _) = crossbeam_channel::unbounded();
            let offsets = OffsetStore::open(&dir).unwrap();
            let ids = ProducerIds::for_tests(&dir, 1000);
            Fixture {
                dir,
                catalog,
                ids,
                done,
                offsets,
            }
        }

        fn coordinator(&self) -> Transactions {
            Transactions::open(
                &self.dir,
                FlushPolicy::EveryBatch,
                self.catalog.clone(),
                self.ids.clone(),
                self.done.clone(),
            )
            .unwrap()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn init(t: &mut Transactions, f: &mut Fixture, id: &str) -> (i16, i64, i16) {
        let mut r = InitProducerIdRequest::default();
        r.transactional_id = Some(TransactionalId(StrBytes::from_string(id.into())));
        r.transaction_timeout_ms = 60_000;
        let resp = t.init_producer_id(&r, 4, &mut f.offsets);
        (resp.error_code, resp.producer_id.0, resp.producer_epoch)
    }

    fn add(t: &mut Transactions, id: &str, pid: i64, epoch: i16, parts: &[i32]) -> Vec<i16> {
        let mut topic = AddPartitionsToTxnTopic::default();
        topic.name = TopicName(StrBytes::from_static_str("t"));
        topic.partitions = parts.to_vec();
        let mut r = AddPartitionsToTxnRequest::default();
        r.v3_and_below_transactional_id = TransactionalId(StrBytes::from_string(id.into()));
        r.v3_and_below_producer_id = ProducerId(pid);
        r.v3_and_below_producer_epoch = epoch;
        r.v3_and_below_topics = vec![topic];
        t.add_partitions(&r, 3, &[]).results_by_topic_v3_and_below[0]
            .results_by_partition
            .iter()
            .map(|p| p.partition_error_code)
            .collect()
    }

    fn end(
        t: &mut Transactions,
        f: &mut Fixture,
        id: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
    ) -> i16 {
        let mut r = EndTxnRequest::default();
        r.transactional_id = TransactionalId(StrBytes::from_string(id.into()));
        r.producer_id = ProducerId(pid);
        r.producer_epoch = epoch;
        r.committed = commit;
        t.end_txn(&r, 3, &mut f.offsets).error_code
    }

    /// The markers among the writer requests queued.
    fn markers(t: &mut Transactions) -> Vec<Markers> {
        t.take_log_ops()
            .into_iter()
            .filter_map(|op| match op {
                LogOp::WriteMarkers(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn written(m: &Markers) -> MarkersWritten {
        MarkersWritten {
            transactional_id: m.transactional_id.clone(),
            producer_id: m.producer_id,
            failed: Vec::new(),
        }
    }

    #[test]
    fn a_transaction_commits_through_markers_and_the_next_init_fences_the_epoch() {
        let mut f = Fixture::new("commit");
        let mut t = f.coordinator();
        assert_eq!(init(&mut t, &mut f, "a"), (ec::NONE, 1000, 0));
        assert_eq!(add(&mut t, "a", 1000, 0, &[0, 1]), vec![ec::NONE, ec::NONE]);
        // The partitions are told before the producer hears.
        match &t.take_log_ops()[..] {
            [LogOp::AddToTransaction {
                producer_id: 1000,
                producer_epoch: 0,
                partitions,
            }] => assert_eq!(partitions, &[10, 11]),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            add(&mut t, "a", 1000, 0, &[0, 7]),
            vec![ec::OPERATION_NOT_ATTEMPTED, ec::UNKNOWN_TOPIC_OR_PARTITION]
        );
        assert_eq!(
            add(&mut t, "a", 999, 0, &[0]),
            vec![ec::INVALID_PRODUCER_ID_MAPPING]
        );
        assert_eq!(end(&mut t, &mut f, "a", 1000, 0, true), ec::NONE);
        let out = markers(&mut t);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].marker, &out[0].partitions[..]),
            (Marker::Commit, &[10, 11][..])
        );
        // Until the writer answers, the id is busy.
        assert_eq!(
            add(&mut t, "a", 1000, 0, &[0]),
            vec![ec::CONCURRENT_TRANSACTIONS]
        );
        assert_eq!(
            end(&mut t, &mut f, "a", 1000, 0, true),
            ec::CONCURRENT_TRANSACTIONS
        );
        assert_eq!(
            end(&mut t, &mut f, "a", 1000, 0, false),
            ec::INVALID_TXN_STATE
        );
        t.markers_written(written(&out[0]));
        // A retried EndTxn of the one just ended is answered as done.
        assert_eq!(end(&mut t, &mut f, "a", 1000, 0, true), ec::NONE);
        assert_eq!(
            end(&mut t, &mut f, "a", 1000, 0, false),
            ec::INVALID_TXN_STATE
        );
        // A new producer for the id: next epoch; the old one is fenced.
        assert_eq!(init(&mut t, &mut f, "a"), (ec::NONE, 1000, 1));
        assert_eq!(add(&mut t, "a", 1000, 0, &[0]), vec![ec::PRODUCER_FENCED]);
        // The epoch survives a restart.
        drop(t);
        let mut t = f.coordinator();
        assert_eq!(init(&mut t, &mut f, "a"), (ec::NONE, 1000, 2));
    }

    fn offsets(t: &mut Transactions, id: &str, pid: i64, topic: &str, offset: i64) -> i16 {
        offsets_with(t, id, pid, topic, offset, None)
    }

    /// [`offsets`] with `metadata`; metadata over 3 bytes is too large.
    fn offsets_with(
        t: &mut Transactions,
        id: &str,
        pid: i64,
        topic: &str,
        offset: i64,
        metadata: Option<&str>,
    ) -> i16 {
        use kafka_protocol::messages::txn_offset_commit_request::*;
        let mut p = TxnOffsetCommitRequestPartition::default();
        p.committed_offset = offset;
        p.committed_metadata = metadata.map(|m| StrBytes::from_string(m.to_owned()));
        let mut tp = TxnOffsetCommitRequestTopic::default();
        tp.name = TopicName(StrBytes::from_string(topic.into()));
        tp.partitions = vec![p];
        let mut r = TxnOffsetCommitRequest::default();
        r.transactional_id = TransactionalId(StrBytes::from_string(id.into()));
        r.group_id = kafka_protocol::messages::GroupId(StrBytes::from_static_str("g"));
        r.producer_id = ProducerId(pid);
        r.topics = vec![tp];
        let denied = ["secret".to_owned()];
        let too_large = |m: Option<&StrBytes>| m.is_some_and(|m| m.len() > 3);
        t.commit_offsets(&r, 3, ec::NONE, &denied, too_large).topics[0].partitions[0].error_code
    }

    #[test]
    fn offsets_sent_with_a_transaction_are_committed_only_when_it_commits() {
        let mut f = Fixture::new("offsets");
        let mut t = f.coordinator();
        let (_, pid, _) = init(&mut t, &mut f, "o");
        assert_eq!(
            offsets(&mut t, "o", pid, "t", 5),
            ec::INVALID_TXN_STATE,
            "not added yet"
        );
        let mut r = AddOffsetsToTxnRequest::default();
        r.transactional_id = TransactionalId(StrBytes::from_static_str("o"));
        r.producer_id = ProducerId(pid);
        assert_eq!(t.add_offsets(&r, 3).error_code, ec::NONE);
        assert_eq!(offsets(&mut t, "o", pid, "t", 5), ec::NONE);
        assert_eq!(
            offsets(&mut t, "o", pid, "secret", 5),
            ec::TOPIC_AUTHORIZATION_FAILED
        );
        assert_eq!(
            offsets_with(&mut t, "o", pid, "t", 5, Some("ok!")),
            ec::NONE
        );
        assert_eq!(end(&mut t, &mut f, "o", pid, 0, false), ec::NONE);
        assert_eq!(f.offsets.get("g", "t", 0), None, "an abort commits nothing");
        for m in markers(&mut t) {
            t.markers_written(written(&m));
        }
        assert_eq!(t.add_offsets(&r, 3).error_code, ec::NONE);
        assert_eq!(offsets(&mut t, "o", pid, "t", 6), ec::NONE);
        assert_eq!(
            offsets_with(&mut t, "o", pid, "t", 9, Some("long")),
            ec::OFFSET_METADATA_TOO_LARGE,
            "not kept: 6 is committed below"
        );
        assert!(t.has_pending_offset("g", "t", 0), "stable readers wait");
        assert!(!t.has_pending_offset("g", "t", 1));
        assert_eq!(end(&mut t, &mut f, "o", pid, 0, true), ec::NONE);
        assert!(!t.has_pending_offset("g", "t", 0));
        assert_eq!(f.offsets.get("g", "t", 0).map(|c| c.offset), Some(6));
        assert_eq!(f.offsets.get("g", "secret", 0), None);
    }

    #[test]
    fn transactions_are_listed_and_described_by_kafkas_state_names() {
        let mut f = Fixture::new("list");
        let mut t = f.coordinator();
        let (_, a, _) = init(&mut t, &mut f, "a");
        let (_, b, _) = init(&mut t, &mut f, "b");
        assert_eq!(add(&mut t, "b", b, 0, &[1]), vec![ec::NONE]);
        let states =
            |t: &Transactions, r: &ListTransactionsRequest| -> Vec<(String, i64, String)> {
                t.list(r, |_| true)
                    .transaction_states
                    .iter()
                    .map(|s| {
                        let id = s.transactional_id.0.as_str().to_owned();
                        (id, s.producer_id.0, s.transaction_state.as_str().to_owned())
                    })
                    .collect()
            };
        let all = ListTransactionsRequest::default();
        assert_eq!(
            states(&t, &all),
            vec![
                ("a".to_owned(), a, "Empty".to_owned()),
                ("b".to_owned(), b, "Ongoing".to_owned())
            ]
        );
        let mut ongoing = ListTransactionsRequest::default();
        ongoing.state_filters = vec![
            StrBytes::from_static_str("Ongoing"),
            StrBytes::from_static_str("Bogus"),
        ];
        assert_eq!(states(&t, &ongoing).len(), 1);
        assert_eq!(t.list(&ongoing, |_| true).unknown_state_filters.len(), 1);
        assert!(
            t.list(&all, |id| id != "b").transaction_states.len() == 1,
            "ACLs hide b"
        );
        // v2: a pattern matching whole ids; an empty one is no filter; a
        // bad one is INVALID_REGULAR_EXPRESSION.
        let mut by_pattern = ListTransactionsRequest::default();
        by_pattern.transactional_id_pattern = Some(StrBytes::from_static_str("b|c"));
        assert_eq!(states(&t, &by_pattern).len(), 1);
        assert_eq!(states(&t, &by_pattern)[0].0, "b");
        by_pattern.transactional_id_pattern = Some(StrBytes::from_static_str(""));
        assert_eq!(states(&t, &by_pattern).len(), 2);
        by_pattern.transactional_id_pattern = Some(StrBytes::from_static_str("("));
        assert_eq!(
            t.list(&by_pattern, |_| true).error_code,
            ec::INVALID_REGULAR_EXPRESSION
        );
        let mut r = DescribeTransactionsRequest::default();
        r.transactional_ids = ["b", "nope", "a"]
            .iter()
            .map(|id| TransactionalId(StrBytes::from_static_str(id)))
            .collect();
        let d = t.describe(&r, &["a".to_owned()]);
        let b_state = &d.transaction_states[0];
        assert_eq!(
            (
                b_state.error_code,
                b_state.transaction_state.as_str(),
                b_state.producer_id.0
            ),
            (ec::NONE, "Ongoing", b)
        );
        assert_eq!(b_state.topics[0].partitions, vec![1]);
        assert!(b_state.transaction_start_time_ms > 0);
        assert_eq!(
            d.transaction_states[1].error_code,
            ec::TRANSACTIONAL_ID_NOT_FOUND
        );
        assert_eq!(
            d.transaction_states[2].error_code,
            ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        );
        assert_eq!(end(&mut t, &mut f, "b", b, 0, true), ec::NONE);
        let d = t.describe(&r, &[]);
        assert_eq!(
            d.transaction_states[0].transaction_state.as_str(),
            "PrepareCommit"
        );
        for m in markers(&mut t) {
            t.markers_written(written(&m));
        }
        let d = t.describe(&r, &[]);
        assert_eq!(
            d.transaction_states[0].transaction_state.as_str(),
            "CompleteCommit"
        );
    }

    #[test]
    fn an_id_unused_for_the_expiry_is_forgotten_for_good() {
        let mut f = Fixture::new("expiry");
        let mut t = f.coordinator();
        let (_, old_pid, _) = init(&mut t, &mut f, "x");
        t.tick(Instant::now() + EXPIRY / 2, &mut f.offsets);
        assert_eq!(t.len(), 1);
        t.tick(
            Instant::now() + EXPIRY + Duration::from_secs(1),
            &mut f.offsets,
        );
        assert!(t.is_empty());
        drop(t);
        let mut t = f.coordinator();
        assert!(t.is_empty(), "forgotten across a restart");
        let (code, pid, epoch) = init(&mut t, &mut f, "x");
        assert_eq!((code, epoch), (ec::NONE, 0));
        assert_ne!(pid, old_pid, "a new producer id");
    }

    #[test]
    fn an_init_over_an_open_transaction_aborts_it_with_a_bumped_epoch_first() {
        let mut f = Fixture::new("reinit");
        let mut t = f.coordinator();
        let (_, pid, _) = init(&mut t, &mut f, "b");
        assert_eq!(add(&mut t, "b", pid, 0, &[1]), vec![ec::NONE]);
        assert_eq!(init(&mut t, &mut f, "b").0, ec::CONCURRENT_TRANSACTIONS);
        let out = markers(&mut t);
        assert_eq!((out[0].marker, out[0].producer_epoch), (Marker::Abort, 1));
        t.markers_written(written(&out[0]));
        assert_eq!(init(&mut t, &mut f, "b"), (ec::NONE, pid, 2));
    }

    #[test]
    fn an_expired_transaction_is_aborted_and_failed_markers_are_asked_again() {
        let mut f = Fixture::new("expire");
        let mut t = f.coordinator();
        let (_, pid, _) = init(&mut t, &mut f, "c");
        assert_eq!(add(&mut t, "c", pid, 0, &[0]), vec![ec::NONE]);
        t.tick(Instant::now(), &mut f.offsets);
        assert!(markers(&mut t).is_empty(), "not yet expired");
        t.tick(Instant::now() + Duration::from_secs(61), &mut f.offsets);
        let out = markers(&mut t);
        assert_eq!((out[0].marker, out[0].producer_epoch), (Marker::Abort, 1));
        t.markers_written(MarkersWritten {
            failed: vec![10],
            ..written(&out[0])
        });
        t.tick(Instant::now(), &mut f.offsets);
        let again = markers(&mut t);
        assert_eq!(again[0].partitions, vec![10]);
        t.markers_written(written(&again[0]));
        assert_eq!(
            end(&mut t, &mut f, "c", pid, 1, false),
            ec::NONE,
            "the abort is done"
        );
    }

    #[test]
    fn a_restart_finishes_a_commit_decision_and_keeps_open_transactions_open() {
        let mut f = Fixture::new("recover");
        let mut t = f.coordinator();
        let (_, committing, _) = init(&mut t, &mut f, "d");
        let (_, open, _) = init(&mut t, &mut f, "e");
        let (_, unwritten, _) = init(&mut t, &mut f, "f");
        assert_eq!(
            add(&mut t, "d", committing, 0, &[0, 1]),
            vec![ec::NONE, ec::NONE]
        );
        assert_eq!(add(&mut t, "e", open, 0, &[1]), vec![ec::NONE]);
        let mut r = AddOffsetsToTxnRequest::default();
        r.transactional_id = TransactionalId(StrBytes::from_static_str("e"));
        r.producer_id = ProducerId(open);
        assert_eq!(t.add_offsets(&r, 3).error_code, ec::NONE);
        assert_eq!(offsets(&mut t, "e", open, "t", 8), ec::NONE);
        assert_eq!(add(&mut t, "f", unwritten, 0, &[1]), vec![ec::NONE]);
        assert_eq!(end(&mut t, &mut f, "d", committing, 0, true), ec::NONE);
        t.take_log_ops();
        // The broker stops before the writer answers; partition 0 got "d"'s
        // marker, partition 1 did not. "e" is open at partition 1; "f" is
        // found open at partition 0 too, which its record does not name
        // (as if lost), and an unknown producer is open at 0.
        drop(t);
        let mut t = f.coordinator();
        t.recover(
            vec![
                (11, "t".into(), 1, committing, 0),
                (11, "t".into(), 1, open, 0),
                (10, "t".into(), 0, unwritten, 0),
                (11, "t".into(), 1, unwritten, 0),
                (10, "t".into(), 0, 77, 4),
            ],
            &mut f.offsets,
        );
        let ops = t.take_log_ops();
        let readded: Vec<(i64, i16, Vec<PartitionId>)> = ops
            .iter()
            .filter_map(|op| match op {
                LogOp::AddToTransaction {
                    producer_id,
                    producer_epoch,
                    partitions,
                } => Some((*producer_id, *producer_epoch, partitions.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(readded, vec![(open, 0, vec![11])], "the writer hears first");
        let mut out: Vec<Markers> = ops
            .into_iter()
            .filter_map(|op| match op {
                LogOp::WriteMarkers(m) => Some(m),
                _ => None,
            })
            .collect();
        out.sort_by_key(|m| m.producer_id);
        let seen: Vec<(i64, Marker, i16, Vec<PartitionId>)> = out
            .iter()
            .map(|m| {
                (
                    m.producer_id,
                    m.marker,
                    m.producer_epoch,
                    m.partitions.clone(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (77, Marker::Abort, 4, vec![10]),
                (committing, Marker::Commit, 0, vec![11]),
                (unwritten, Marker::Abort, 1, vec![10, 11]),
            ]
        );
        // "e" goes on at its epoch, its offsets pending, and commits them.
        assert!(
            t.has_pending_offset("g", "t", 0),
            "stable readers still wait"
        );
        assert_eq!(add(&mut t, "e", open, 0, &[0]), vec![ec::NONE]);
        assert_eq!(end(&mut t, &mut f, "e", open, 0, true), ec::NONE);
        assert_eq!(f.offsets.get("g", "t", 0).map(|c| c.offset), Some(8));
        let out = markers(&mut t);
        assert_eq!(
            (out[0].marker, &out[0].partitions[..]),
            (Marker::Commit, &[10, 11][..])
        );
    }

    #[test]
    fn a_transaction_kept_across_a_restart_still_times_out_from_its_start() {
        let mut f = Fixture::new("recover-expiry");
        let mut t = f.coordinator();
        let (_, pid, _) = init(&mut t, &mut f, "g");
        assert_eq!(add(&mut t, "g", pid, 0, &[1]), vec![ec::NONE]);
        drop(t);
        let mut t = f.coordinator();
        t.recover(vec![(11, "t".into(), 1, pid, 0)], &mut f.offsets);
        t.take_log_ops();
        t.tick(Instant::now(), &mut f.offsets);
        assert!(markers(&mut t).is_empty(), "not yet expired");
        t.tick(Instant::now() + Duration::from_secs(61), &mut f.offsets);
        let out = markers(&mut t);
        assert_eq!(
            (out[0].marker, out[0].producer_epoch, &out[0].partitions[..]),
            (Marker::Abort, 1, &[11][..])
        );
    }

    #[test]
    fn a_busy_transactional_id_keeps_a_transactions_file_the_size_of_its_ids() {
        let mut f = Fixture::new("bounded");
        let mut t = f.coordinator();
        let (_, pid, _) = init(&mut t, &mut f, "busy");
        let path = f.dir.join("transactions.log");
        let mut largest = 0;
        for round in 0..600 {
            assert_eq!(add(&mut t, "busy", pid, 0, &[round % 2]), vec![ec::NONE]);
            assert_eq!(end(&mut t, &mut f, "busy", pid, 0, true), ec::NONE);
            for m in markers(&mut t) {
                t.markers_written(written(&m));
            }
            t.tick(Instant::now(), &mut f.offsets);
            largest = largest.max(std::fs::metadata(&path).unwrap().len());
        }
        assert!(t.store.records() < 1_010, "{} records", t.store.records());
        // 1,800 records of ~40-60 bytes were written.
        assert!(largest < 64 * 1024, "the file reached {largest} bytes");
        drop(t);
        let mut t = f.coordinator();
        assert_eq!(
            init(&mut t, &mut f, "busy"),
            (ec::NONE, pid, 1),
            "its epoch kept"
        );
    }
}
