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

use crate::log::LogError;
use crate::ops::{Answer, LogReply};
pub use crate::ops::{FetchJob, FetchPart, PartitionRead, ReadError};
use crate::storage::Storage;
use std::time::Instant;

/// A fetch waiting on the writer.
pub(crate) struct Parked<R> {
    id: u64,
    job: FetchJob,
    reply: R,
    deadline: Instant,
}

impl<R> Parked<R> {
    pub(crate) fn new(id: u64, job: FetchJob, reply: R) -> Self {
        let deadline = Instant::now() + job.max_wait;
        Parked {
            id,
            job,
            reply,
            deadline,
        }
    }
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
        };
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

/// Answers `fetch` now if it can be, or parks it.
pub(crate) fn serve_or_park<R: LogReply>(
    storage: &Storage,
    parked: &mut Vec<Parked<R>>,
    fetch: Parked<R>,
) {
    let (reads, bytes, failed) = resolve(storage, &fetch.job);
    if failed || bytes >= fetch.job.min_bytes || fetch.job.max_wait.is_zero() {
        fetch.reply.answer(fetch.id, Answer::Fetched(reads));
    } else {
        parked.push(fetch);
    }
}

/// Looks at the parked fetches again and answers those that are done.
pub(crate) fn wake<R: LogReply>(storage: &Storage, parked: &mut Vec<Parked<R>>, why: Wake) {
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
            fetch.reply.answer(fetch.id, Answer::Fetched(reads));
        } else {
            i += 1;
        }
    }
}
