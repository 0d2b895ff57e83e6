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

use crossbeam_channel::{Sender, TrySendError};
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The fsync thread and the way to it.
pub struct Flusher {
    jobs: Option<Sender<Vec<File>>>,
    thread: Option<JoinHandle<()>>,
    synced: Arc<AtomicU64>,
}

impl Flusher {
    /// Starts the thread.
    pub fn start() -> std::io::Result<Flusher> {
        let (jobs, queue) = crossbeam_channel::bounded::<Vec<File>>(1);
        let synced = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&synced);
        let thread = std::thread::Builder::new()
            .name("gyre-log-flusher".into())
            .spawn(move || {
                for files in queue {
                    for file in files {
                        match file.sync_data() {
                            Ok(()) => counter.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                tracing::error!(error = %e, "interval fsync failed");
                                0
                            }
                        };
                    }
                }
            })?;
        Ok(Flusher {
            jobs: Some(jobs),
            thread: Some(thread),
            synced,
        })
    }

    /// Files synced so far.
    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Relaxed)
    }

    /// Hands `files` over to be synced; gives them back when a job is
    /// already waiting (the caller keeps its dirty set and tries later).
    pub fn offer(&self, files: Vec<File>) -> Result<(), Vec<File>> {
        let jobs = self.jobs.as_ref().expect("flusher running");
        match jobs.try_send(files) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(files) | TrySendError::Disconnected(files)) => Err(files),
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
        let dir = std::env::temp_dir().join(format!("gyre-flusher-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = File::create(dir.join("f")).unwrap();
        let mut flusher = Flusher::start().unwrap();
        let mut taken = 0;
        for _ in 0..20 {
            let files = vec![file.try_clone().unwrap(), file.try_clone().unwrap()];
            if flusher.offer(files).is_ok() {
                taken += 2;
            }
        }
        assert!(taken > 0);
        flusher.stop();
        assert_eq!(flusher.synced(), taken);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
