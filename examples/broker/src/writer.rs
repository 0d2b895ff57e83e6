//! The log writer: one thread owns every log. Requests reach it from the
//! reactor loops through a gyre ring buffer. Produce requests are checked
//! and staged, and at each end of a ring batch the group is committed: one
//! write per partition touched and, under `every-batch`, one fsync, then
//! every request of the group is answered (under `interval` a flusher
//! thread does the fsyncs, so appends never wait on the disk). Fetches are resolved to file
//! regions of committed batches here too, and parked (long polling) until
//! enough bytes arrive or their wait runs out; share groups' fetches
//! acquire their records here, from the delivery state the writer holds
//! (`crate::share_fetch`); list-offsets, topic creation and deletion run
//! here as well, so no log needs a lock.
//!
//! This is the LMAX pattern: a single writer needs no lock on the logs, and
//! the ring's natural batching turns a burst of small produce requests
//! into a few large writes and fsyncs. The writer is the ring's owner stage
//! (`Graph::then_owner`), so it moves each request out of its slot: the
//! hand-off allocates nothing.
//!
//! The broker's connections do not use the reactor's offload layer: a
//! Kafka connection's answers come from three places (the loop itself, the
//! group coordinator, this writer) and must leave in request order across
//! all of them, which the connection's own sequencer keeps; the offload
//! layer orders only what it offloaded.

use crate::cache_loader::CacheLoader;
use crate::fetch::{self, Parked, Reload, Wake};
use crate::flusher::{FlushJob, Flusher};
use crate::health::BrokerHealth;
use crate::id_hash::IdSet;
use crate::log::producers::SequenceError;
use crate::log::LogError;
use crate::ops::ConfigError;
pub use crate::ops::{
    Answer, AppendOutcome, ClientMarker, ConfigTarget, Deletion, LogJob, LogOp, LogReply, Markers,
    MarkersWritten, OffsetAnswer, TopicSpec,
};
use crate::share::group_config::{AlterError, Refused};
use crate::share::Shares;
use crate::share_fetch::{self, Serving, ShareParked, ShareReload};
use crate::storage::Storage;
pub use crate::topics::PartitionId;
use bytes::Bytes;
use crossbeam_channel::Receiver;
use gyre_ringbuffer::{
    BuildError, Disruptor, MultiProducerSequencer, OwningHandler, Producer, PublishError,
    ShutdownReport, Stage, TimeoutBlockingWait,
};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When appended records are made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// fsync at the end of every group, before answering: an acknowledged
    /// record survives a crash.
    EveryBatch,
    /// fsync about this often, on a thread of its own (see
    /// [`crate::flusher`]): answers come after the write, before the
    /// fsync, and appends never wait for one.
    Interval(Duration),
    /// Never fsync; the page cache decides.
    Never,
}

/// How often share groups' acquisition locks are checked.
const SHARE_LOCK_CHECK: Duration = Duration::from_millis(50);

/// A ring slot. The writer is the ring's owner stage, so it moves the job
/// out (no box, no atomic cell): a request's memory is freed once answered
/// instead of living on in the ring until the slot comes round again.
type Slot<R> = Option<LogJob<R>>;

/// How the writer runs.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// When to fsync.
    pub flush: FlushPolicy,
    /// Requests the ring holds (a power of two; default 1024).
    pub capacity: usize,
    /// How often retention is enforced (default 60 s).
    pub retention_check: Duration,
    /// How often an idle writer wakes to end long polls and sync on
    /// interval (default 5 ms).
    pub tick: Duration,
    /// How often the recovery-point checkpoint is rewritten when a point
    /// moved (default 5 s; a rename, no fsync). Shorter means less to
    /// check after a crash.
    pub checkpoint_interval: Duration,
    /// Threads that read fetched records not in the page cache before
    /// their answer goes to the connection's loop (default 2; 0: the
    /// loop's `sendfile` reads them from the disk itself, stalling the
    /// loop). See [`crate::cache_loader`].
    pub fetch_cache_loaders: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            flush: FlushPolicy::Interval(Duration::from_millis(1000)),
            capacity: 1024,
            retention_check: Duration::from_secs(60),
            tick: Duration::from_millis(5),
            checkpoint_interval: Duration::from_secs(5),
            fetch_cache_loaders: 2,
        }
    }
}

struct WriterHandler<R> {
    storage: Storage,
    config: WriterConfig,
    /// Partitions staged in the current group, and written since the last
    /// fsync; reused, so a steady writer does not allocate.
    touched: IdSet,
    dirty: IdSet,
    outcomes: Vec<(PartitionId, AppendOutcome)>,
    pending: Vec<(R, u64, Range<usize>)>,
    /// Transactions' markers staged in the current group, and the
    /// partitions whose marker already failed.
    markers: Vec<(Markers, Vec<PartitionId>)>,
    parked: Vec<Parked<R>>,
    /// Share groups' delivery, and the share fetches waiting for
    /// records (`None`: share groups are not served).
    shares: Option<Shares>,
    share_parked: Vec<ShareParked<R>>,
    /// Share fetches whose records the loader has read in, back to be
    /// served (drained at each batch's end and each tick).
    share_reload: ShareReload<R>,
    share_reloaded: Receiver<ShareParked<R>>,
    last_lock_check: Instant,
    /// Loads cold fetched records into the page cache off the loops and
    /// off this thread.
    loader: Option<CacheLoader>,
    /// Fetches whose cold records the loader has read in, back to be
    /// resolved (drained at each batch's end and each tick).
    reload: Reload<R>,
    reloaded: Receiver<Parked<R>>,
    /// The background fsync of the `interval` policy.
    flusher: Option<Flusher>,
    last_sync: Instant,
    last_retention: Instant,
    last_checkpoint: Instant,
    /// Set while an event or a tick is handled: still set at shutdown,
    /// it says the handling panicked (the ring caught it and halted), so
    /// the logs may be half-updated and must not be marked clean.
    busy: bool,
    /// An fsync failed, here or on the flusher. The kernel may have
    /// dropped the pages it could not write and a later fsync may then
    /// succeed over the hole (Linux reports a writeback error once), so
    /// no sync can be trusted again: nothing more is appended (every
    /// produce and marker fails with a storage error), the logs are not
    /// marked clean, and the broker stops (`health`), as Kafka takes a
    /// failed log directory offline and halts with none left.
    sync_failed: bool,
    /// Told of a panic or of a failed fsync.
    health: BrokerHealth,
}

impl<R: LogReply> WriterHandler<R> {
    /// Whether an fsync has failed (see `sync_failed`), asking the
    /// flusher too.
    fn durability_lost(&mut self) -> bool {
        if !self.sync_failed && self.flusher.as_ref().is_some_and(Flusher::failed) {
            self.sync_failed = true;
        }
        self.sync_failed
    }

    fn produce(&mut self, entries: &[(PartitionId, Bytes)]) {
        if self.durability_lost() {
            let refused = entries
                .iter()
                .map(|(pid, _)| (*pid, AppendOutcome::StorageError));
            self.outcomes.extend(refused);
            return;
        }
        for (pid, records) in entries {
            let outcome = match self.storage.log_mut(*pid) {
                None => AppendOutcome::UnknownPartition,
                Some(log) => match log.stage(records) {
                    Ok(staged) => {
                        self.touched.insert(*pid);
                        AppendOutcome::Appended {
                            base: staged.base,
                            last: staged.last,
                            log_start: log.start_offset(),
                            append_time: staged.append_time.unwrap_or(-1),
                        }
                    }
                    Err(LogError::Corrupt(e)) => {
                        tracing::warn!(partition = pid, error = %e, "refused a corrupt batch");
                        AppendOutcome::Corrupt
                    }
                    Err(LogError::Records(e)) => {
                        tracing::warn!(partition = pid, error = %e, "refused a corrupt batch");
                        AppendOutcome::Corrupt
                    }
                    Err(LogError::NoKey { index }) => {
                        tracing::info!(
                            partition = pid,
                            index,
                            "refused a record without a key for a compacted topic"
                        );
                        AppendOutcome::NoKey { index }
                    }
                    Err(e @ LogError::TooLarge { size, max }) => {
                        tracing::info!(partition = pid, error = %e, "refused a batch");
                        AppendOutcome::TooLarge { size, max }
                    }
                    Err(LogError::Sequence(e)) => {
                        tracing::info!(partition = pid, error = %e, "refused a producer's batch");
                        match e {
                            SequenceError::OutOfOrder { .. } => AppendOutcome::OutOfOrderSequence,
                            SequenceError::Fenced { .. } => AppendOutcome::InvalidProducerEpoch,
                            SequenceError::DuplicateInRequest { .. } => {
                                AppendOutcome::DuplicateSequence
                            }
                        }
                    }
                    Err(LogError::NotInTransaction(e)) => {
                        tracing::warn!(partition = pid, error = %e, "refused a transactional batch");
                        AppendOutcome::NotInTransaction
                    }
                    Err(e) => {
                        tracing::error!(partition = pid, error = %e, "staging failed");
                        AppendOutcome::StorageError
                    }
                },
            };
            self.outcomes.push((*pid, outcome));
        }
    }

    fn commit_group(&mut self) {
        let mut failed = IdSet::default();
        let committed = !self.touched.is_empty();
        for pid in self.touched.drain() {
            let Some(log) = self.storage.log_mut(pid) else {
                continue;
            };
            if let Err(e) = log.commit() {
                tracing::error!(partition = pid, error = %e, "log write failed");
                failed.insert(pid);
            } else {
                self.dirty.insert(pid);
            }
            // A group touching more partitions than the cap must not run
            // out of descriptors part way.
            self.storage.close_idle_files();
        }
        match self.config.flush {
            FlushPolicy::EveryBatch => self.sync_dirty(&mut failed),
            FlushPolicy::Interval(every) if self.last_sync.elapsed() >= every => {
                self.flush_in_background();
            }
            FlushPolicy::Interval(_) | FlushPolicy::Never => {}
        }
        for (reply, id, range) in self.pending.drain(..) {
            let outcomes = &mut self.outcomes[range];
            for (pid, outcome) in outcomes.iter_mut() {
                if failed.contains(pid) && matches!(outcome, AppendOutcome::Appended { .. }) {
                    *outcome = AppendOutcome::StorageError;
                }
            }
            reply.answer(id, Answer::Appended(outcomes));
        }
        self.outcomes.clear();
        for (m, mut failed_here) in self.markers.drain(..) {
            failed_here.extend(m.partitions.iter().filter(|p| failed.contains(p)));
            // A coordinator that stopped has nobody to tell.
            let _ = m.done.send(MarkersWritten {
                transactional_id: m.transactional_id,
                producer_id: m.producer_id,
                failed: failed_here,
            });
        }
        if committed && !self.parked.is_empty() {
            fetch::wake(
                &self.storage,
                self.loader.as_ref(),
                &mut self.parked,
                Wake::Appended,
            );
        }
        if committed && !self.share_parked.is_empty() {
            if let Some(at) = self.share_serving() {
                share_fetch::wake(at, None);
            }
        }
    }

    fn sync_dirty(&mut self, failed: &mut IdSet) {
        for pid in self.dirty.drain() {
            let Some(log) = self.storage.log(pid) else {
                continue;
            };
            match log.sync() {
                Ok(()) => {
                    let end = log.end_offset();
                    self.storage.mark_durable(pid, end);
                }
                Err(e) => {
                    failed.insert(pid);
                    if !self.sync_failed {
                        self.sync_failed = true;
                        self.health.fail(format!(
                            "an fsync of partition {pid} ({}) failed: {e}; nothing more is appended and the logs are left for the next start to check",
                            log.dir().display()
                        ));
                    }
                }
            }
            self.storage.close_idle_files();
        }
        self.last_sync = Instant::now();
    }

    /// Hands the dirty partitions' files to the flusher; when it is busy
    /// they stay dirty for the next tick. Should the descriptors not be
    /// duplicated (out of fds), syncs here instead, late rather than never.
    fn flush_in_background(&mut self) {
        let Some(flusher) = &self.flusher else {
            return;
        };
        if self.dirty.is_empty() {
            return;
        }
        let mut job = FlushJob {
            files: Vec::with_capacity(self.dirty.len() * 6),
            folders: Vec::new(),
            offsets: Vec::with_capacity(self.dirty.len()),
        };
        // Each log's active segment when its handles were taken.
        let mut handed = Vec::with_capacity(self.dirty.len());
        for pid in &self.dirty {
            let Some(log) = self.storage.log(*pid) else {
                continue;
            };
            job.offsets.push((*pid, log.end_offset()));
            match log.sync_handles(&mut job.files, &mut job.folders) {
                Ok(active) => handed.push((*pid, active)),
                Err(e) => {
                    tracing::warn!(partition = pid, error = %e, "cannot hand the log to the flusher; syncing here");
                    drop(job);
                    self.sync_dirty(&mut IdSet::default());
                    return;
                }
            }
        }
        if flusher.offer(job).is_ok() {
            for (pid, active) in handed {
                if let Some(log) = self.storage.log(pid) {
                    log.handed_over(active);
                }
            }
            self.dirty.clear();
            self.last_sync = Instant::now();
        }
    }

    /// Stages the markers of `m` in its partitions (one deleted since
    /// has nothing left to end); they are written with the group.
    fn write_markers(&mut self, m: Markers) {
        if self.durability_lost() {
            let failed = m.partitions.clone();
            self.markers.push((m, failed));
            return;
        }
        let mut failed = Vec::new();
        for &pid in &m.partitions {
            let Some(log) = self.storage.log_mut(pid) else {
                continue;
            };
            match log.stage_marker(
                m.producer_id,
                m.producer_epoch,
                m.marker,
                m.coordinator_epoch,
            ) {
                Ok(_) => {
                    self.touched.insert(pid);
                }
                Err(e) => {
                    tracing::error!(partition = pid, error = %e, "staging a transaction marker failed");
                    failed.push(pid);
                }
            }
        }
        self.markers.push((m, failed));
    }

    /// Holds the outcomes staged since `start` for request `id`'s answer
    /// once its group is written; without a reply (acks=0) they go.
    fn answer_at_commit(&mut self, reply: Option<R>, id: u64, start: usize) {
        match reply {
            Some(reply) => self.pending.push((reply, id, start..self.outcomes.len())),
            None => self.outcomes.truncate(start),
        }
    }

    /// Stages the markers a client asked for (WriteTxnMarkers), each
    /// answered as a produced batch is: a partition that is gone
    /// `UnknownPartition`; a producer epoch older than the one the
    /// partition last saw `InvalidProducerEpoch` (Kafka's check of a
    /// marker that does not come from a replica); a marker for a producer
    /// with no transaction open here is written all the same, and ends
    /// nothing (as in Kafka).
    fn client_markers(&mut self, markers: &[(PartitionId, ClientMarker)]) {
        for (pid, m) in markers {
            let outcome = if self.durability_lost() {
                AppendOutcome::StorageError
            } else {
                match self.storage.log_mut(*pid) {
                    None => AppendOutcome::UnknownPartition,
                    Some(log) if log.producer_epoch(m.producer_id) > Some(m.producer_epoch) => {
                        AppendOutcome::InvalidProducerEpoch
                    }
                    Some(log) => match log.stage_marker(
                        m.producer_id,
                        m.producer_epoch,
                        m.marker,
                        m.coordinator_epoch,
                    ) {
                        Ok(staged) => {
                            self.touched.insert(*pid);
                            tracing::info!(
                                partition = pid,
                                producer_id = m.producer_id,
                                marker = ?m.marker,
                                offset = staged.base,
                                "a client's transaction marker staged"
                            );
                            AppendOutcome::Appended {
                                base: staged.base,
                                last: staged.last,
                                log_start: log.start_offset(),
                                append_time: -1,
                            }
                        }
                        Err(e) => {
                            tracing::error!(partition = pid, error = %e, "staging a client's transaction marker failed");
                            AppendOutcome::StorageError
                        }
                    },
                }
            };
            self.outcomes.push((*pid, outcome));
        }
    }

    fn list_offsets(
        &self,
        queries: &[(PartitionId, i64)],
        read_committed: bool,
    ) -> Vec<(PartitionId, OffsetAnswer)> {
        const NOT_FOUND: OffsetAnswer = OffsetAnswer::Found {
            offset: -1,
            timestamp: -1,
            leader_epoch: -1,
        };
        queries
            .iter()
            .map(|&(pid, query)| {
                let Some(log) = self.storage.log(pid) else {
                    return (pid, OffsetAnswer::UnknownPartition);
                };
                // Each offset answered with the epoch it was written in,
                // as Kafka answers (v4+), so a consumer starting there can
                // check its position when the epoch moves.
                let epoch_for = |offset| log.epochs().epoch_for(offset);
                let by_time = |ts| match log.offset_for_time(ts) {
                    Ok(Some((offset, timestamp))) => OffsetAnswer::Found {
                        offset,
                        timestamp,
                        leader_epoch: epoch_for(offset),
                    },
                    Ok(None) => NOT_FOUND,
                    Err(e) => {
                        tracing::error!(partition = pid, error = %e, "offset lookup failed");
                        OffsetAnswer::StorageError
                    }
                };
                let answer = match query {
                    -1 => OffsetAnswer::Found {
                        offset: if read_committed {
                            log.last_stable_offset()
                        } else {
                            log.end_offset()
                        },
                        timestamp: -1,
                        leader_epoch: log.leader_epoch(),
                    },
                    // Earliest, and (v8) earliest kept locally: with no
                    // tiered storage, the same.
                    -2 | -4 => OffsetAnswer::Found {
                        offset: log.start_offset(),
                        timestamp: -1,
                        leader_epoch: epoch_for(log.start_offset()),
                    },
                    // (v7) The first record with the largest timestamp.
                    -3 => log.max_timestamp().map_or(NOT_FOUND, by_time),
                    // (v9) The latest offset in tiered storage: with none,
                    // -1, as Kafka answers without it.
                    -5 => NOT_FOUND,
                    ts => by_time(ts),
                };
                (pid, answer)
            })
            .collect()
    }

    /// Writes the share groups' changed state, synced under `every-batch`.
    fn persist_shares(&mut self) {
        let sync = self.config.flush == FlushPolicy::EveryBatch;
        if let Some(shares) = self.shares.as_mut() {
            // A failure is logged, and written again at the next call.
            let _ = shares.persist(sync);
        }
    }

    /// Where share fetches are served, if share groups are.
    fn share_serving(&mut self) -> Option<Serving<'_, R>> {
        Some(Serving {
            shares: self.shares.as_mut()?,
            storage: &self.storage,
            loader: self.loader.as_ref(),
            reload: &self.share_reload,
            parked: &mut self.share_parked,
            sync: self.config.flush == FlushPolicy::EveryBatch,
        })
    }

    /// Work that runs when the writer is idle or a batch ends: long polls
    /// that ran out of time, interval fsyncs, retention.
    fn housekeeping(&mut self) {
        while let Ok(fetch) = self.reloaded.try_recv() {
            fetch::serve_or_park(
                &self.storage,
                self.loader.as_ref(),
                &self.reload,
                &mut self.parked,
                fetch,
            );
        }
        if !self.parked.is_empty() {
            fetch::wake(
                &self.storage,
                self.loader.as_ref(),
                &mut self.parked,
                Wake::Tick(Instant::now()),
            );
        }
        while let Ok(fetch) = self.share_reloaded.try_recv() {
            if let Some(at) = self.share_serving() {
                share_fetch::serve_or_park(at, fetch);
            }
        }
        // Locks are checked every 50 ms: a record comes back at most that
        // late, and a writer with thousands of share-partitions does not
        // walk them every tick.
        let now = Instant::now();
        let check = now.duration_since(self.last_lock_check) >= SHARE_LOCK_CHECK;
        if check {
            self.last_lock_check = now;
        }
        let released = check && self.shares.as_mut().is_some_and(Shares::expire_locks);
        if released || !self.share_parked.is_empty() {
            if let Some(at) = self.share_serving() {
                share_fetch::wake(at, Some(now));
            }
        }
        if let Some(shares) = self.shares.as_mut() {
            let _ = shares.persist(false);
        }
        if let FlushPolicy::Interval(every) = self.config.flush {
            if self.last_sync.elapsed() >= every {
                self.flush_in_background();
            }
        }
        if let Some(flusher) = &self.flusher {
            for (pid, offset) in flusher.take_durable() {
                self.storage.mark_durable(pid, offset);
            }
        }
        if self.last_checkpoint.elapsed() >= self.config.checkpoint_interval {
            self.last_checkpoint = Instant::now();
            if let Some(shares) = self.shares.as_mut() {
                let _ = shares.persist(true);
            }
            if let Err(e) = self.storage.write_checkpoint() {
                tracing::error!(error = %e, "cannot write the recovery-point checkpoint");
            }
        }
        if self.last_retention.elapsed() >= self.config.retention_check {
            self.last_retention = Instant::now();
            for (pid, log) in self.storage.logs_mut() {
                if let Err(e) = log.enforce_retention() {
                    tracing::error!(partition = pid, error = %e, "retention failed");
                }
            }
        }
    }
}

impl<R: LogReply> OwningHandler<Slot<R>> for WriterHandler<R> {
    fn on_event(&mut self, slot: &mut Slot<R>, _sequence: i64, end_of_batch: bool) {
        self.busy = true;
        let job = slot.take();
        // Under its client's request quota a request is charged the
        // writer's time on it (a produce's checks and staging, a fetch's
        // first serving), as Kafka's request handlers' time counts.
        let meter = job
            .as_ref()
            .and_then(|j| j.reply.as_ref())
            .and_then(LogReply::busy_meter);
        let started = meter.as_ref().map(|_| Instant::now());
        if let Some(LogJob { id, op, reply }) = job {
            match op {
                LogOp::Produce(entries) => {
                    let start = self.outcomes.len();
                    self.produce(&entries);
                    self.answer_at_commit(reply, id, start);
                }
                LogOp::Fetch(fetch) => {
                    if let Some(reply) = reply {
                        let parked = Parked::new(id, fetch, reply);
                        fetch::serve_or_park(
                            &self.storage,
                            self.loader.as_ref(),
                            &self.reload,
                            &mut self.parked,
                            parked,
                        );
                        self.storage.close_idle_files();
                    }
                }
                LogOp::ShareFetch(job) => {
                    if let (Some(reply), Some(at)) = (reply, self.share_serving()) {
                        share_fetch::begin(at, id, *job, reply);
                    }
                    self.persist_shares();
                }
                LogOp::ShareOffsets(job) => {
                    if let (Some(reply), Some(shares)) = (reply, self.shares.as_mut()) {
                        let answer = shares.offsets(&self.storage, job);
                        reply.answer(id, Answer::ShareOffsets(answer));
                    }
                }
                LogOp::ShareMembers(change) => {
                    let released = self
                        .shares
                        .as_mut()
                        .is_some_and(|s| s.member_change(change));
                    if let (true, Some(at)) = (released, self.share_serving()) {
                        share_fetch::wake(at, None);
                    }
                    self.persist_shares();
                }
                LogOp::ListOffsets(queries, read_committed) => {
                    let answer = self.list_offsets(&queries, read_committed);
                    if let Some(reply) = reply {
                        reply.answer(id, Answer::Offsets(answer));
                    }
                }
                LogOp::EpochEnds(asked) => {
                    let ends = asked
                        .iter()
                        .map(|&(pid, epoch)| {
                            let log = self.storage.log(pid);
                            (pid, log.map(|log| log.end_offset_for_epoch(epoch)))
                        })
                        .collect();
                    if let Some(reply) = reply {
                        reply.answer(id, Answer::EpochEnds(ends));
                    }
                }
                LogOp::CreateTopics(specs) => {
                    // Admin changes see every staged append committed first.
                    self.commit_group();
                    for spec in &specs {
                        crate::failpoint::hit("writer", &spec.name);
                    }
                    let results = specs
                        .iter()
                        .map(|s| self.storage.create_topic(&s.name, s.partitions, &s.configs))
                        .collect();
                    if let Some(reply) = reply {
                        reply.answer(id, Answer::Created(results));
                    }
                }
                LogOp::CreatePartitions(grow) => {
                    self.commit_group();
                    let results = grow
                        .iter()
                        .map(|(name, count)| self.storage.add_partitions(name, *count))
                        .collect();
                    if let Some(reply) = reply {
                        reply.answer(id, Answer::Grown(results));
                    }
                }
                LogOp::DeleteRecords(cuts) => {
                    self.commit_group();
                    let results = cuts
                        .iter()
                        .map(|&(pid, offset)| {
                            let result = match self.storage.delete_records(pid, offset) {
                                None => Deletion::UnknownPartition,
                                Some(Ok(start)) => Deletion::Done(start),
                                Some(Err(LogError::OutOfRange { .. })) => Deletion::OutOfRange,
                                Some(Err(LogError::Policy(_))) => Deletion::PolicyViolation,
                                Some(Err(e)) => {
                                    tracing::error!(partition = pid, error = %e, "DeleteRecords failed");
                                    Deletion::StorageError
                                }
                            };
                            (pid, result)
                        })
                        .collect();
                    if let Some(reply) = reply {
                        reply.answer(id, Answer::RecordsDeleted(results));
                    }
                }
                LogOp::AlterConfigs(changes, validate_only) => {
                    self.commit_group();
                    let results = changes
                        .iter()
                        .map(|(target, c)| match target {
                            ConfigTarget::Topic(name) => {
                                Ok(self.storage.alter_config(name, c, validate_only)?)
                            }
                            ConfigTarget::Group(group) => match self.shares.as_mut() {
                                Some(shares) => Ok(shares.alter_config(group, c, validate_only)?),
                                None => Err(ConfigError::Group(AlterError::Refused(Refused {
                                    key: String::new(),
                                    value: String::new(),
                                    reason: "groups' configs are not kept by this writer".into(),
                                }))),
                            },
                        })
                        .collect();
                    if let Some(reply) = reply {
                        reply.answer(id, Answer::Altered(results));
                    }
                }
                LogOp::WriteMarkers(markers) => self.write_markers(markers),
                LogOp::ClientMarkers(markers) => {
                    let start = self.outcomes.len();
                    self.client_markers(&markers);
                    self.answer_at_commit(reply, id, start);
                }
                LogOp::CleaningPlans(to) => {
                    let _ = to.send(self.storage.cleaning_plans());
                }
                LogOp::SwapCleaned(swap) => {
                    let swapped = match self.storage.log_mut(swap.partition) {
                        Some(log) => log.swap_cleaned(&swap.plan, &swap.cleaned),
                        // Deleted since: its folder, and the pass's
                        // copies in it, went with it.
                        None => Ok(0),
                    };
                    let _ = swap.done.send(swapped);
                }
                LogOp::DescribeProducers(partitions) => {
                    let found = partitions
                        .into_iter()
                        .map(|pid| (pid, self.storage.log(pid).map(|l| l.describe_producers())))
                        .collect();
                    if let Some(reply) = reply {
                        reply.answer(id, Answer::Producers(found));
                    }
                }
                LogOp::LogDirSizes(partitions) => {
                    let sizes = partitions
                        .into_iter()
                        .map(|pid| (pid, self.storage.log(pid).map(|l| l.size())))
                        .collect();
                    let space = self.storage.disk_space();
                    if let Some(reply) = reply {
                        reply.answer(id, Answer::LogDirSizes(sizes, space));
                    }
                }
                LogOp::AddToTransaction {
                    producer_id,
                    producer_epoch,
                    partitions,
                } => {
                    for pid in partitions {
                        if let Some(log) = self.storage.log_mut(pid) {
                            log.add_to_transaction(producer_id, producer_epoch);
                        }
                    }
                }
                LogOp::DeleteTopics(names) => {
                    self.commit_group();
                    let results = names.iter().map(|n| self.storage.delete_topic(n)).collect();
                    if let Some(reply) = reply {
                        reply.answer(id, Answer::Deleted(results));
                    }
                }
            }
        }
        if let Some(started) = started {
            crate::ops::charge_busy(meter.as_deref(), started);
        }
        if end_of_batch {
            self.commit_group();
            self.housekeeping();
        }
        self.busy = false;
    }

    fn on_timeout(&mut self, _sequence: i64) {
        self.busy = true;
        self.housekeeping();
        self.busy = false;
    }

    fn on_shutdown(&mut self) {
        if self.busy || self.durability_lost() {
            // The ring caught a panic of this handler (and logged it), or
            // an fsync failed. Nothing more is written: no commit of what
            // was staged, no sync, no clean marker, so the next start
            // checks every batch past the recovery point. The threads
            // this one owns stop.
            if self.busy {
                self.health.fail(
                    "the log writer panicked (see the error above); the logs are left for the next start to check".into(),
                );
            }
            if let Some(flusher) = &mut self.flusher {
                flusher.stop();
            }
            if let Some(loader) = self.loader.take() {
                loader.stop();
            }
            return;
        }
        self.commit_group();
        if let Some(flusher) = &mut self.flusher {
            flusher.stop();
        }
        // Long polls end now, with what there is; what waits on the
        // loader is answered before it stops.
        fetch::wake(
            &self.storage,
            self.loader.as_ref(),
            &mut self.parked,
            Wake::Shutdown,
        );
        if let Some(loader) = self.loader.take() {
            loader.stop();
        }
        // What the loader sent back after the writer's last turn: answered
        // now, with what there is.
        while let Ok(fetch) = self.reloaded.try_recv() {
            fetch::answer_now(&self.storage, fetch);
        }
        // Share fetches too, those the loader sent back included; the
        // share groups' state is synced.
        if let Some(shares) = self.shares.as_mut() {
            self.share_parked.extend(self.share_reloaded.try_iter());
            share_fetch::answer_all(shares, &mut self.share_parked);
            let _ = shares.persist(true);
        }
        // Every log synced whatever the policy, then the checkpoint and the
        // marker, so the next start need only check segment tails.
        self.dirty.clear();
        match self.storage.close_cleanly() {
            Ok(()) => tracing::info!("logs synced and marked clean"),
            Err(e) => {
                tracing::error!(error = %e, "cannot close the logs cleanly; the next start checks them whole")
            }
        }
    }
}

type JobProducer<R> = Producer<Slot<R>, TimeoutBlockingWait, MultiProducerSequencer>;

/// The running writer thread and its ring.
pub struct LogWriter<R: LogReply> {
    producer: JobProducer<R>,
    disruptor: Disruptor<Slot<R>, TimeoutBlockingWait>,
    /// Fetch answers that waited for the cache loader.
    fetches_loaded: Option<Arc<AtomicU64>>,
}

/// A handle that submits requests to the writer; clone one per thread.
pub struct Submitter<R: LogReply> {
    producer: JobProducer<R>,
}

impl<R: LogReply> Clone for Submitter<R> {
    fn clone(&self) -> Self {
        Submitter {
            producer: self.producer.clone(),
        }
    }
}

impl<R: LogReply> Submitter<R> {
    /// Queues a request; waits while the ring is full (backpressure on the
    /// producing connections). Fails only once the writer has stopped.
    pub fn submit(&mut self, id: u64, op: LogOp, reply: Option<R>) -> Result<(), PublishError> {
        let job = LogJob { id, op, reply };
        self.producer
            .publish(move |slot| *slot = Some(job))
            .map(drop)
    }
}

/// A request the writer's ring had no room for, given back to retry.
pub struct Full<R: LogReply> {
    /// The request, as it was.
    pub job: LogJob<R>,
}

impl<R: LogReply> Submitter<R> {
    /// Queues a request if the ring has room; otherwise gives it back (the
    /// caller keeps it and tries again later, without blocking its
    /// thread). `Err(None)`: the writer has stopped.
    pub fn try_submit(
        &mut self,
        id: u64,
        op: LogOp,
        reply: Option<R>,
    ) -> Result<(), Option<Full<R>>> {
        self.try_resubmit(LogJob { id, op, reply })
    }

    /// [`try_submit`](Self::try_submit) for a request given back before.
    pub fn try_resubmit(&mut self, job: LogJob<R>) -> Result<(), Option<Full<R>>> {
        let mut job = Some(job);
        match self.producer.try_publish(|slot| *slot = job.take()) {
            Ok(_) => Ok(()),
            Err(PublishError::Full) => Err(Some(Full {
                job: job.expect("not published, so still here"),
            })),
            Err(_) => Err(None),
        }
    }
}

impl<R: LogReply> LogWriter<R> {
    /// Starts the writer thread, owning `storage`.
    pub fn start(storage: Storage, config: WriterConfig) -> Result<Self, BuildError> {
        Self::start_reporting(storage, config, BrokerHealth::new(), None)
    }

    /// [`start`](Self::start), telling `health` if the writer fails, and
    /// serving share groups' fetches from `shares` if given.
    pub fn start_reporting(
        storage: Storage,
        config: WriterConfig,
        health: BrokerHealth,
        shares: Option<Shares>,
    ) -> Result<Self, BuildError> {
        let flusher = match config.flush {
            FlushPolicy::Interval(_) => {
                Some(
                    Flusher::start(health.clone()).map_err(|e| BuildError::Spawn {
                        name: "gyre-log-flusher".into(),
                        message: e.to_string(),
                    })?,
                )
            }
            FlushPolicy::EveryBatch | FlushPolicy::Never => None,
        };
        let loader = match config.fetch_cache_loaders {
            0 => None,
            n => Some(CacheLoader::start(n).map_err(|e| BuildError::Spawn {
                name: "gyre-cache-load".into(),
                message: e.to_string(),
            })?),
        };
        let wait = TimeoutBlockingWait::new(config.tick);
        let (tx, reloaded) = crossbeam_channel::unbounded();
        let reload = Reload {
            tx,
            nudger: wait.nudger(),
        };
        let (tx, share_reloaded) = crossbeam_channel::unbounded();
        let share_reload = ShareReload {
            tx,
            nudger: wait.nudger(),
        };
        let graph = Disruptor::builder(config.capacity, || None)
            .wait_strategy(wait)
            .multi_producer()?;
        let fetches_loaded = loader.as_ref().map(CacheLoader::loaded);
        let handler = WriterHandler {
            storage,
            config,
            touched: IdSet::default(),
            dirty: IdSet::default(),
            outcomes: Vec::new(),
            pending: Vec::new(),
            markers: Vec::new(),
            parked: Vec::new(),
            shares,
            share_parked: Vec::new(),
            share_reload,
            share_reloaded,
            last_lock_check: Instant::now(),
            loader,
            reload,
            reloaded,
            flusher,
            last_sync: Instant::now(),
            last_retention: Instant::now(),
            last_checkpoint: Instant::now(),
            busy: false,
            sync_failed: false,
            health,
        };
        let graph = graph.then_owner(Stage::owner(handler).name("gyre-log-writer"));
        let (producer, disruptor) = graph.start()?;
        Ok(LogWriter {
            producer,
            disruptor,
            fetches_loaded,
        })
    }

    /// Fetch answers that waited for their records to be read into the
    /// page cache (see [`crate::cache_loader`]).
    pub fn fetches_loaded(&self) -> u64 {
        self.fetches_loaded
            .as_ref()
            .map_or(0, |n| n.load(Ordering::Relaxed))
    }

    /// A submitter for one producing thread.
    pub fn submitter(&self) -> Submitter<R> {
        Submitter {
            producer: self.producer.clone(),
        }
    }

    /// Stops taking requests once every submitter is gone, commits and
    /// syncs what was queued, answers parked fetches, and joins the
    /// thread.
    pub fn shutdown(self) -> ShutdownReport {
        drop(self.producer);
        self.disruptor.join()
    }
}
