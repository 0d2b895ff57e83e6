//! The `interval` flush policy's fsync thread.
//!
//! An fsync of a second's appends takes milliseconds to tens of
//! milliseconds; done on the log writer it would hold up every produce and
//! fetch behind it (the end-to-end latency benchmark showed 20 ms stalls once
//! a second). Under `interval` the writer's answers never waited for the
//! fsync anyway, so the fsync moves here: the writer hands over duplicate
//! descriptors of the files it wrote and carries on. At most one job waits
//! while one runs; when both slots are taken the writer keeps its dirty set
//! and offers it again at its next tick, so a slow disk delays durability
//! rather than appends. `every-batch` does not use this: there the answer
//! must wait for the fsync.
//!
//! Each job carries the offsets its files hold up to; once every file of a
//! job is synced, those offsets come back through [`Flusher::take_durable`]
//! as the partitions' new recovery points. A failed fsync is the broker's
//! failure (see the writer's `sync_failed`): the flusher tells the
//! broker's health and [`Flusher::failed`] says so from then on.

use crate::health::BrokerHealth;
use crate::topics::PartitionId;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One fsync job: the files, and the end offset of each partition they
/// belong to.
#[derive(Debug, Default)]
pub struct FlushJob {
    /// Duplicate descriptors of the files to sync (with fdatasync).
    pub files: Vec<File>,
    /// Folders that gained a file since their last sync (synced with
    /// fsync, after the files).
    pub folders: Vec<File>,
    /// Each partition's end offset when the files were handed over.
    pub offsets: Vec<(PartitionId, i64)>,
}

/// The fsync thread and the way to it.
pub struct Flusher {
    jobs: Option<Sender<FlushJob>>,
    durable: Receiver<Vec<(PartitionId, i64)>>,
    thread: Option<JoinHandle<()>>,
    synced: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
}

impl Flusher {
    /// Starts the thread, which tells `health` if an fsync fails.
    pub fn start(health: BrokerHealth) -> std::io::Result<Flusher> {
        let (jobs, queue) = crossbeam_channel::bounded::<FlushJob>(1);
        // Unbounded, but the writer drains it at every tick and at most
        // one job a flush interval is in it.
        let (confirm, durable) = crossbeam_channel::unbounded();
        let synced = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&synced);
        let failed = Arc::new(AtomicBool::new(false));
        let failure = Arc::clone(&failed);
        let thread = std::thread::Builder::new()
            .name("gyre-log-flusher".into())
            .spawn(move || {
                for job in queue {
                    let mut all = true;
                    let files = job.files.into_iter().map(|f| (f, false));
                    for (file, folder) in files.chain(job.folders.into_iter().map(|f| (f, true))) {
                        let synced = crate::failpoint::io_error_for_file("fsync", &file)
                            .and_then(|()| match folder {
                                true => file.sync_all(),
                                false => file.sync_data(),
                            });
                        match synced {
                            Ok(()) => {
                                counter.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                all = false;
                                if !failure.swap(true, Ordering::Relaxed) {
                                    health.fail(format!(
                                        "an interval fsync failed: {e}; nothing more is appended and the logs are left for the next start to check"
                                    ));
                                }
                            }
                        }
                    }
                    // Never again after a failure: a later fsync of the
                    // same file may succeed over the pages the failed one
                    // lost, and a recovery point moved past them would
                    // keep the next start from checking them.
                    if all && !failure.load(Ordering::Relaxed) {
                        let _ = confirm.send(job.offsets);
                    }
                }
            })?;
        Ok(Flusher {
            jobs: Some(jobs),
            durable,
            thread: Some(thread),
            synced,
            failed,
        })
    }

    /// Whether an fsync has failed: nothing synced since can be trusted.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Partitions' end offsets whose jobs have been synced whole since the
    /// last call.
    pub fn take_durable(&self) -> impl Iterator<Item = (PartitionId, i64)> + '_ {
        self.durable.try_iter().flatten()
    }

    /// Files synced so far.
    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Relaxed)
    }

    /// Hands `job` over to be synced; gives it back when a job is already
    /// waiting (the caller keeps its dirty set and tries later).
    pub fn offer(&self, job: FlushJob) -> Result<(), FlushJob> {
        let jobs = self.jobs.as_ref().expect("flusher running");
        match jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => Err(job),
        }
    }

    /// Finishes the jobs handed over and joins the thread.
    pub fn stop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_finishes_every_job_handed_over() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-flusher-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = File::create(dir.join("f")).unwrap();
        let mut flusher = Flusher::start(BrokerHealth::new()).unwrap();
        let mut taken = 0;
        let mut offered = Vec::new();
        for i in 0..20 {
            let job = FlushJob {
                files: vec![file.try_clone().unwrap(), file.try_clone().unwrap()],
                folders: vec![File::open(&dir).unwrap()],
                offsets: vec![(i, i64::from(i) * 10)],
            };
            if flusher.offer(job).is_ok() {
                taken += 3;
                offered.push((i, i64::from(i) * 10));
            }
        }
        assert!(taken > 0);
        flusher.stop();
        assert_eq!(flusher.synced(), taken);
        let durable: Vec<_> = flusher.take_durable().collect();
        assert_eq!(durable, offered, "every synced job's offsets come back");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn after_a_failed_fsync_no_job_is_confirmed_durable() {
        let (root, dir) = crate::failpoint::armed_scratch("flusher-fail", "fsync");
        let file = File::create(dir.join("f")).unwrap();
        let health = BrokerHealth::new();
        let mut flusher = Flusher::start(health.clone()).unwrap();
        let job = |end| FlushJob {
            files: vec![file.try_clone().unwrap()],
            folders: Vec::new(),
            offsets: vec![(1, end)],
        };
        assert!(flusher.offer(job(10)).is_ok());
        assert!(health
            .wait_for_failure_timeout(std::time::Duration::from_secs(10))
            .is_some());
        assert!(flusher.failed());
        // The same file's next fsync succeeds (the failure was reported
        // once), but what it covers cannot be trusted.
        while flusher.offer(job(20)).is_err() {
            std::thread::yield_now();
        }
        flusher.stop();
        assert_eq!(flusher.synced(), 1, "the second job's fsync ran");
        assert_eq!(flusher.take_durable().count(), 0);
        std::fs::remove_dir_all(root).unwrap();
    }
}
