//! The log writer: one thread owns every append. Produce requests reach it
//! from the reactor loops through a gyre ring buffer; it checks and stages
//! each request's batches, and at each end of a ring batch commits the
//! group: one write per partition touched and, per the flush policy, one
//! fsync, then answers every request of the group.
//!
//! This is the LMAX pattern: a single writer needs no lock on the logs, and
//! the ring's natural batching turns a burst of small produce requests
//! into a few large writes and fsyncs.

use crate::log::{LogError, PartitionLog};
use bytes::Bytes;
use gyre_ringbuffer::{
    BuildError, Disruptor, EventHandler, MultiClaim, Producer, PublishError, ShutdownReport, Stage,
    TimeoutBlockingWait,
};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::{Duration, Instant};

/// The broker's number for a topic partition.
pub type PartitionId = u32;

/// When appended records are made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// fsync at the end of every group, before answering: an acknowledged
    /// record survives a crash.
    EveryBatch,
    /// fsync at most this often (and when idle that long): answers come
    /// after the write, before the fsync.
    Interval(Duration),
    /// Never fsync; the page cache decides.
    Never,
}

/// What happened to one partition's records of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Written (and synced, per the policy) at these offsets.
    Appended {
        /// The first record's offset.
        base: i64,
        /// The last record's offset.
        last: i64,
    },
    /// A batch failed its checks (CRC, length, magic); nothing appended.
    Corrupt,
    /// The partition does not exist.
    UnknownPartition,
    /// The file system failed; nothing of this group was kept.
    StorageError,
}

/// Where a request's answer goes: called on the writer thread once the
/// group holding the request is committed, with one outcome per entry, in
/// the request's order.
pub trait AppendReply: Clone + Send + Sync + 'static {
    /// The request `job` is done.
    fn appended(&self, job: u64, outcomes: &[(PartitionId, AppendOutcome)]);
}

/// One produce request in the ring.
#[derive(Debug)]
pub struct AppendJob<R> {
    /// The caller's number for the request (a correlation id, say).
    pub id: u64,
    /// Records for each partition, as they came off the wire.
    pub entries: Vec<(PartitionId, Bytes)>,
    /// Where the answer goes; `None` for fire-and-forget (acks = 0).
    pub reply: Option<R>,
}

impl<R> Default for AppendJob<R> {
    fn default() -> Self {
        AppendJob {
            id: 0,
            entries: Vec::new(),
            reply: None,
        }
    }
}

struct WriterHandler<R> {
    logs: HashMap<PartitionId, PartitionLog>,
    policy: FlushPolicy,
    /// Partitions staged in the current group, and written since the last
    /// fsync; reused, so a steady writer does not allocate.
    touched: HashSet<PartitionId>,
    dirty: HashSet<PartitionId>,
    outcomes: Vec<(PartitionId, AppendOutcome)>,
    pending: Vec<(R, u64, Range<usize>)>,
    last_sync: Instant,
}

impl<R: AppendReply> WriterHandler<R> {
    fn commit_group(&mut self) {
        let mut failed = HashSet::new();
        for pid in self.touched.drain() {
            let log = self.logs.get_mut(&pid).expect("touched partitions exist");
            if let Err(e) = log.commit() {
                tracing::error!(partition = pid, error = %e, "log write failed");
                failed.insert(pid);
            } else {
                self.dirty.insert(pid);
            }
        }
        let sync_now = match self.policy {
            FlushPolicy::EveryBatch => true,
            FlushPolicy::Interval(every) => self.last_sync.elapsed() >= every,
            FlushPolicy::Never => false,
        };
        if sync_now {
            self.sync_dirty(&mut failed);
        }
        for (reply, id, range) in self.pending.drain(..) {
            let outcomes = &mut self.outcomes[range];
            for (pid, outcome) in outcomes.iter_mut() {
                if failed.contains(pid) && matches!(outcome, AppendOutcome::Appended { .. }) {
                    *outcome = AppendOutcome::StorageError;
                }
            }
            reply.appended(id, outcomes);
        }
        self.outcomes.clear();
    }

    fn sync_dirty(&mut self, failed: &mut HashSet<PartitionId>) {
        for pid in self.dirty.drain() {
            if let Err(e) = self.logs[&pid].sync() {
                tracing::error!(partition = pid, error = %e, "log fsync failed");
                failed.insert(pid);
            }
        }
        self.last_sync = Instant::now();
    }
}

impl<R: AppendReply> EventHandler<AppendJob<R>> for WriterHandler<R> {
    fn on_event(&mut self, job: &AppendJob<R>, _sequence: i64, end_of_batch: bool) {
        let start = self.outcomes.len();
        for (pid, records) in &job.entries {
            let outcome = match self.logs.get_mut(pid) {
                None => AppendOutcome::UnknownPartition,
                Some(log) => match log.stage(records) {
                    Ok((base, last)) => {
                        self.touched.insert(*pid);
                        AppendOutcome::Appended { base, last }
                    }
                    Err(LogError::Corrupt(_)) => AppendOutcome::Corrupt,
                    Err(e) => {
                        tracing::error!(partition = pid, error = %e, "staging failed");
                        AppendOutcome::StorageError
                    }
                },
            };
            self.outcomes.push((*pid, outcome));
        }
        match &job.reply {
            Some(reply) => self
                .pending
                .push((reply.clone(), job.id, start..self.outcomes.len())),
            None => self.outcomes.truncate(start),
        }
        if end_of_batch {
            self.commit_group();
        }
    }

    fn on_timeout(&mut self, _sequence: i64) {
        if let FlushPolicy::Interval(every) = self.policy {
            if !self.dirty.is_empty() && self.last_sync.elapsed() >= every {
                self.sync_dirty(&mut HashSet::new());
            }
        }
    }

    fn on_shutdown(&mut self) {
        self.commit_group();
        if self.policy != FlushPolicy::Never {
            self.sync_dirty(&mut HashSet::new());
        }
    }
}

type JobProducer<R> = Producer<AppendJob<R>, TimeoutBlockingWait, MultiClaim>;

/// The running writer thread and its ring.
pub struct LogWriter<R: AppendReply> {
    producer: JobProducer<R>,
    disruptor: Disruptor<AppendJob<R>, TimeoutBlockingWait>,
}

/// A handle that submits requests to the writer; clone one per thread.
pub struct Submitter<R: AppendReply> {
    producer: JobProducer<R>,
}

impl<R: AppendReply> Clone for Submitter<R> {
    fn clone(&self) -> Self {
        Submitter {
            producer: self.producer.clone(),
        }
    }
}

impl<R: AppendReply> Submitter<R> {
    /// Queues a request; waits while the ring is full (backpressure on the
    /// producing connections). Fails only once the writer has stopped.
    pub fn submit(
        &mut self,
        id: u64,
        entries: Vec<(PartitionId, Bytes)>,
        reply: Option<R>,
    ) -> Result<(), PublishError> {
        self.producer
            .publish(move |slot| {
                slot.id = id;
                slot.entries = entries;
                slot.reply = reply;
            })
            .map(drop)
    }
}

impl<R: AppendReply> LogWriter<R> {
    /// Starts the writer thread, owning `logs`, with a ring of `capacity`
    /// requests (a power of two).
    pub fn start(
        logs: HashMap<PartitionId, PartitionLog>,
        policy: FlushPolicy,
        capacity: usize,
    ) -> Result<Self, BuildError> {
        let idle = match policy {
            FlushPolicy::Interval(every) => every,
            _ => Duration::from_millis(100),
        };
        let mut graph = Disruptor::builder(capacity, AppendJob::default)
            .wait_strategy(TimeoutBlockingWait::new(idle))
            .multi_producer()?;
        let handler = WriterHandler {
            logs,
            policy,
            touched: HashSet::new(),
            dirty: HashSet::new(),
            outcomes: Vec::new(),
            pending: Vec::new(),
            last_sync: Instant::now(),
        };
        graph.handle_events_with(Stage::new(handler).name("gyre-log-writer"));
        let (producer, disruptor) = graph.start()?;
        Ok(LogWriter {
            producer,
            disruptor,
        })
    }

    /// A submitter for one producing thread.
    pub fn submitter(&self) -> Submitter<R> {
        Submitter {
            producer: self.producer.clone(),
        }
    }

    /// Stops taking requests once every submitter is gone, commits and
    /// syncs what was queued, and joins the thread.
    pub fn shutdown(self) -> ShutdownReport {
        drop(self.producer);
        self.disruptor.join()
    }
}
