//! Fetches on the log writer: each is resolved to file regions of whole
//! committed batches, answered at once when it has `min_bytes` (or an
//! error, or no wait), and otherwise parked until an append brings enough
//! bytes or its `max_wait` runs out: Kafka's long poll.
//!
//! Only committed batches are read, so a consumer never sees a record
//! before the producer could have had its acknowledgement; a
//! `read_committed` fetch stops at each partition's last stable offset
//! and lists the aborted transactions in what it reads.
//!
//! Batches go out with `sendfile`, their CRCs not checked again: each was
//! checked on append and, after an unclean stop, by recovery. Checking here
//! would mean copying every byte out of the page cache, 0.66x the fetch
//! throughput at 1.47x the CPU (`benches/src/bin/fetch_crc.rs`, BENCHMARKS.md).

use crate::cache_loader::CacheLoader;
use crate::log::LogError;
use crate::ops::{Answer, LogReply};
pub use crate::ops::{FetchJob, FetchPart, PartitionRead, ReadError};
use crate::storage::Storage;
use crossbeam_channel::Sender;
use gyre_ringbuffer::TimeoutNudger;
use std::time::Instant;

/// A fetch waiting on the writer.
pub(crate) struct Parked<R> {
    id: u64,
    job: FetchJob,
    reply: R,
    deadline: Instant,
    /// Its cold records have been read into the page cache once: it is
    /// resolved now whatever the cache holds, so it cannot go round.
    loaded: bool,
}

impl<R> Parked<R> {
    pub(crate) fn new(id: u64, job: FetchJob, reply: R) -> Self {
        let deadline = Instant::now() + job.max_wait;
        Parked {
            id,
            job,
            reply,
            deadline,
            loaded: false,
        }
    }
}

/// The way back to the writer for a fetch whose cold records have been
/// loaded: its channel, and a nudge that ends the writer's wait, so the
/// fetch is resolved at once rather than at the writer's next tick.
pub(crate) struct Reload<R> {
    pub(crate) tx: Sender<Parked<R>>,
    pub(crate) nudger: TimeoutNudger,
}

impl<R> Clone for Reload<R> {
    fn clone(&self) -> Self {
        Reload {
            tx: self.tx.clone(),
            nudger: self.nudger.clone(),
        }
    }
}

/// The windows of `job`'s partitions that `loader` must read in first:
/// not in the page cache, or being read in now (see
/// [`PartitionLog::fetch_window`](crate::log::PartitionLog::fetch_window)).
fn cold_windows(
    storage: &Storage,
    loader: &CacheLoader,
    job: &FetchJob,
) -> Vec<gyre_zerocopy::FileRegion> {
    job.parts
        .iter()
        .filter_map(|part| {
            let log = storage.log(part.partition)?;
            let window = log.fetch_window(part.offset, part.max_bytes.min(job.max_bytes))?;
            loader.must_load(&window).then_some(window)
        })
        .collect()
}

/// What makes the writer look at its parked fetches again.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wake {
    /// Records were committed: answer those that now have enough.
    Appended,
    /// Time passed: answer those whose wait is over.
    Tick(Instant),
    /// The writer is stopping: answer all.
    Shutdown,
}

/// Reads every partition of `job`; returns the reads, the bytes found and
/// whether any partition failed.
pub(crate) fn resolve(storage: &Storage, job: &FetchJob) -> (Vec<PartitionRead>, u64, bool) {
    let mut reads = Vec::with_capacity(job.parts.len());
    let mut total = 0u64;
    let mut failed = false;
    for part in &job.parts {
        let Some(log) = storage.log(part.partition) else {
            failed = true;
            reads.push(PartitionRead {
                partition: part.partition,
                error: Some(ReadError::UnknownPartition),
                high_watermark: -1,
                log_start_offset: -1,
                last_stable_offset: -1,
                aborted: Vec::new(),
                slice: None,
                diverging_epoch: None,
            });
            continue;
        };
        let stable = log.last_stable_offset();
        let limit = if job.read_committed {
            stable
        } else {
            log.end_offset()
        };
        let mut read = PartitionRead {
            partition: part.partition,
            error: None,
            high_watermark: log.end_offset(),
            log_start_offset: log.start_offset(),
            last_stable_offset: stable,
            aborted: Vec::new(),
            slice: None,
            diverging_epoch: None,
        };
        if part.last_fetched_epoch >= 0 {
            // Kafka's check: the consumer read past where its epoch now
            // ends, or the epoch is gone. It is answered at once, so it
            // moves back without waiting out the long poll.
            let (epoch, end) = log.end_offset_for_epoch(part.last_fetched_epoch);
            if epoch < part.last_fetched_epoch || end < part.offset {
                read.diverging_epoch = Some((epoch, end));
                failed = true;
                reads.push(read);
                continue;
            }
        }
        let room = job.max_bytes.saturating_sub(total);
        // The response's first batch goes out whatever its size; after
        // that, stop at the response's limit.
        if total == 0 || room > 0 {
            match log.read_below(part.offset, part.max_bytes.min(room.max(1)), limit) {
                Ok(slice) => {
                    total += slice.as_ref().map_or(0, |s| s.region.len());
                    if let (true, Some(s)) = (job.read_committed, &slice) {
                        // Only the aborted transactions in what goes out:
                        // a reader far behind is not sent every later one.
                        let to = log.offset_after(s).unwrap_or(limit);
                        read.aborted = log.aborted_between(part.offset, to);
                    }
                    read.slice = slice;
                }
                Err(LogError::OutOfRange { .. }) => read.error = Some(ReadError::OffsetOutOfRange),
                Err(e) => {
                    tracing::error!(partition = part.partition, error = %e, "fetch read failed");
                    read.error = Some(ReadError::Storage);
                }
            }
            failed |= read.error.is_some();
        }
        reads.push(read);
    }
    (reads, total, failed)
}

/// Answers `fetch` with `reads`. A fetch whose records were loaded is
/// held by `loader` once more if any of them went out of the page cache
/// since (or lie past its window: a first batch larger than the fetch's
/// size), then answered; any other goes at once, with no system call and
/// no allocation: its windows were found cached, or it reads near the
/// log's end (see [`crate::cache_loader`]).
fn answer<R: LogReply>(loader: Option<&CacheLoader>, fetch: Parked<R>, reads: Vec<PartitionRead>) {
    let Some(loader) = loader.filter(|_| fetch.loaded) else {
        return fetch.reply.answer(fetch.id, Answer::Fetched(reads));
    };
    let regions = reads
        .iter()
        .filter_map(|r| r.slice.as_ref().map(|s| s.region.clone()))
        .collect();
    let (id, reply) = (fetch.id, fetch.reply);
    loader.after_loading(regions, move || reply.answer(id, Answer::Fetched(reads)));
}

/// Answers `fetch` at once with what there is, loaded or not: for the
/// writer's shutdown.
pub(crate) fn answer_now<R: LogReply>(storage: &Storage, fetch: Parked<R>) {
    let (reads, _, _) = resolve(storage, &fetch.job);
    fetch.reply.answer(fetch.id, Answer::Fetched(reads));
}

/// Answers `fetch` now if it can be, or parks it. A fetch of records
/// that are not in the page cache (and not near the log's end) goes to
/// `loader` first, which reads them in and sends the fetch back through
/// `reload`, nudging the writer: the writer, which every produce waits
/// on, never waits on the disk to resolve a fetch, nor a loop to send
/// one.
pub(crate) fn serve_or_park<R: LogReply>(
    storage: &Storage,
    loader: Option<&CacheLoader>,
    reload: &Reload<R>,
    parked: &mut Vec<Parked<R>>,
    mut fetch: Parked<R>,
) {
    if let (Some(loader), false) = (loader, fetch.loaded) {
        let cold = cold_windows(storage, loader, &fetch.job);
        if !cold.is_empty() {
            fetch.loaded = true;
            let back = reload.clone();
            // Sent back whatever happens: a fetch left unanswered would
            // hold every later answer on its connection. (The writer
            // drains the channel at each batch and tick, and at its
            // shutdown after the loader's last job.)
            loader.load_then(cold, move || match back.tx.send(fetch) {
                Ok(()) => back.nudger.nudge(),
                Err(unsent) => {
                    let fetch = unsent.into_inner();
                    fetch.reply.answer(fetch.id, Answer::Fetched(Vec::new()));
                }
            });
            return;
        }
    }
    let (reads, bytes, failed) = resolve(storage, &fetch.job);
    if failed || bytes >= fetch.job.min_bytes || fetch.job.max_wait.is_zero() {
        answer(loader, fetch, reads);
    } else {
        parked.push(fetch);
    }
}

/// Looks at the parked fetches again and answers those that are done.
pub(crate) fn wake<R: LogReply>(
    storage: &Storage,
    loader: Option<&CacheLoader>,
    parked: &mut Vec<Parked<R>>,
    why: Wake,
) {
    let mut i = 0;
    while i < parked.len() {
        let expired = match why {
            Wake::Appended => false,
            Wake::Tick(now) => now >= parked[i].deadline,
            Wake::Shutdown => true,
        };
        if !expired && matches!(why, Wake::Tick(_)) {
            i += 1;
            continue;
        }
        let (reads, bytes, failed) = resolve(storage, &parked[i].job);
        if expired || failed || bytes >= parked[i].job.min_bytes {
            let fetch = parked.swap_remove(i);
            answer(loader, fetch, reads);
        } else {
            i += 1;
        }
    }
}
