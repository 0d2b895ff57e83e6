//! Fetches of records that are not in the page cache: the records are
//! read in on the loader's own threads, so that neither the log writer
//! (which resolves fetches, and which every produce waits on) nor the
//! connection's event loop (whose `sendfile` sends them) waits on the
//! disk.
//!
//! A consumer far behind the log's end (a replay from the start, a
//! consumer back from a day away) reads records long out of the page
//! cache. Resolved and sent as they were, a cold MiB held the writer in
//! its search for the fetch's batches (the kernel reads ahead of the
//! writer's header reads: 558 MiB read by the writer for a 578 MiB replay)
//! and the loop in its `sendfile`, each for 1.8 ms at the median and up to
//! 8 ms on the Intel Xeon VM's disk; every produce and every connection on
//! that loop waited with them (Kafka has the same stall on its request
//! and network threads, KAFKA-7504). Now the writer first asks where each
//! partition's read will look ([`PartitionLog::fetch_window`], from the
//! in-memory offset index; nothing at all for the last 32 MiB of a log,
//! where consumers keeping up read) and whether that window is cached
//! (one `cachestat(2)`, no read) or being loaded, and hands a fetch with a
//! cold window to a loader ([`CacheLoader::load_then`]), which reads the
//! windows in and sends the fetch back to the writer, nudging it awake;
//! the writer then resolves it from memory. The loader then reads
//! [`READ_AHEAD`] bytes past each window, for the reader's next fetches.
//! The answer to a loaded fetch whose records went cold again meanwhile
//! (or reach past its window: a first batch larger than the fetch's size)
//! is held by a loader once more before it goes to the loop
//! ([`CacheLoader::after_loading`]). Where the kernel cannot say what is
//! cached (before Linux 6.5) everything goes as before. Behind these, the
//! connections' own [`FileLoader`](gyre_reactor::FileLoader) checks each
//! answer's regions once more before the loop sends them: in a cold
//! 578 MiB replay on the Intel Xeon VM the writer then read 0.1 MiB from
//! the disk instead of 7-27 MiB, and the loop 3.5-3.8 MiB instead of
//! 7-26 MiB, in the same time; the loop's longest `sendfile` (under
//! `strace`) was 0.6-1.3 ms with it and 0.9-1.2 ms without, so what these
//! threads leave to the loop is already small.
//!
//! [`PartitionLog::fetch_window`]: crate::log::PartitionLog::fetch_window
//!
//! Uses the zero-copy crate's regions and a channel; knows nothing of the
//! writer or the protocol.

use crossbeam_channel::{Receiver, Sender};
use gyre_zerocopy::FileRegion;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Bytes past each loaded region that its loader reads in next, once the
/// answer waiting on it is on its way: a reader far behind reads on, and
/// its next fetches find their records loaded, or being loaded, while it
/// works on the last (the kernel's readahead did this for the writer's
/// reads before; here it never makes the writer wait).
pub const READ_AHEAD: u64 = 4 << 20;

/// The file ranges the loaders are reading in now: a fetch that touches
/// one goes to a loader too (whose read then waits for those pages), not
/// to the writer, which `cachestat(2)` would tell they are cached while
/// they are still in flight.
#[derive(Debug, Default)]
struct InFlight(Mutex<Vec<(PathBuf, u64, u64)>>);

impl InFlight {
    fn begin(&self, region: &FileRegion) {
        let mut ranges = self.0.lock().unwrap_or_else(|e| e.into_inner());
        ranges.push(span(region));
    }

    fn end(&self, region: &FileRegion) {
        let mut ranges = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let done = span(region);
        if let Some(i) = ranges.iter().position(|r| *r == done) {
            ranges.swap_remove(i);
        }
    }

    fn overlaps(&self, region: &FileRegion) -> bool {
        let (path, start) = (region.file().path(), region.position());
        let end = start + region.remaining();
        let ranges = self.0.lock().unwrap_or_else(|e| e.into_inner());
        ranges
            .iter()
            .any(|(p, s, e)| p == path && *s < end && start < *e)
    }
}

/// A region's file and byte range still to send.
fn span(region: &FileRegion) -> (PathBuf, u64, u64) {
    let start = region.position();
    (
        region.file().path().to_owned(),
        start,
        start + region.remaining(),
    )
}

/// One answer waiting for its regions.
struct Job {
    regions: Vec<FileRegion>,
    then: Box<dyn FnOnce() + Send>,
}

/// Threads that load cold file regions, then run what waited on them.
///
/// ```
/// use gyre_broker::cache_loader::CacheLoader;
/// use gyre_zerocopy::FileRegion;
/// use std::sync::mpsc;
///
/// # let path = std::env::temp_dir().join(format!("gyre-doc-loader-{}", std::process::id()));
/// std::fs::write(&path, vec![0u8; 4096])?;
/// let loader = CacheLoader::start(2)?;
/// let (done, answered) = mpsc::channel();
/// // Answered at once if cached, else once loaded, on a loader thread.
/// loader.after_loading(vec![FileRegion::open(&path)?], move || done.send(()).unwrap());
/// answered.recv()?;
/// loader.stop();
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CacheLoader {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    /// Answers that waited for a load.
    loaded: Arc<AtomicU64>,
    in_flight: Arc<InFlight>,
}

impl CacheLoader {
    /// Starts `threads` loader threads (at least one): as many reads of
    /// cold regions go to the disk at once.
    pub fn start(threads: usize) -> std::io::Result<CacheLoader> {
        let (jobs, queue) = crossbeam_channel::unbounded();
        let loaded = Arc::new(AtomicU64::new(0));
        let in_flight = Arc::new(InFlight::default());
        let threads = (0..threads.max(1))
            .map(|i| {
                let queue: Receiver<Job> = queue.clone();
                let (loaded, in_flight) = (loaded.clone(), in_flight.clone());
                std::thread::Builder::new()
                    .name(format!("gyre-cache-load-{i}"))
                    .spawn(move || {
                        for job in queue {
                            // A load that panics still answers (the
                            // sender reads from the disk itself), and
                            // the thread takes the next job.
                            load_or_log(&job.regions, &in_flight);
                            (job.then)();
                            loaded.fetch_add(1, Ordering::Relaxed);
                            let ahead: Vec<FileRegion> =
                                job.regions.iter().filter_map(read_ahead).collect();
                            load_or_log(&ahead, &in_flight);
                        }
                    })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(CacheLoader {
            jobs: Some(jobs),
            threads,
            loaded,
            in_flight,
        })
    }

    /// The count of answers that waited for a load, shared: it goes on
    /// counting while the loader runs.
    pub fn loaded(&self) -> Arc<AtomicU64> {
        self.loaded.clone()
    }

    /// Whether a fetch reading `window` must wait for a loader: its bytes
    /// are not all in the page cache, or a loader is reading them in now.
    pub fn must_load(&self, window: &FileRegion) -> bool {
        self.in_flight.overlaps(window) || window.is_cached() == Some(false)
    }

    /// Runs `then` now when every region in `regions` is in the page
    /// cache (or the kernel cannot say), otherwise on a loader thread
    /// once the ones that are not have been read in. The queue is not
    /// bounded: each job is a fetch its connection is waiting on, and
    /// connections and their requests in flight are.
    pub fn after_loading(
        &self,
        mut regions: Vec<FileRegion>,
        then: impl FnOnce() + Send + 'static,
    ) {
        regions.retain(|r| r.is_cached() == Some(false));
        self.load_then(regions, then);
    }

    /// Reads `regions` in on a loader thread, then runs `then` there (at
    /// once, here, when there are none): for regions already known to be
    /// cold.
    pub fn load_then(&self, regions: Vec<FileRegion>, then: impl FnOnce() + Send + 'static) {
        match &self.jobs {
            Some(jobs) if !regions.is_empty() => {
                let job = Job {
                    regions,
                    then: Box::new(then),
                };
                if let Err(back) = jobs.send(job) {
                    (back.into_inner().then)();
                }
            }
            _ => then(),
        }
    }

    /// Loads and answers what is queued, then joins the threads (as
    /// dropping it does).
    pub fn stop(self) {}
}

impl Drop for CacheLoader {
    fn drop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Reads `regions` into the page cache. A region that fails (its segment
/// deleted by retention meanwhile, a disk error) is logged and left: the
/// loop's send then meets the same failure and answers it as any send.
fn load(regions: &[FileRegion], in_flight: &InFlight) {
    for region in regions {
        let _loading = Loading::begin(in_flight, region);
        if let Some(topic) = region.file().path().parent().and_then(Path::parent) {
            crate::failpoint::hit(
                "loader",
                &topic.file_name().unwrap_or_default().to_string_lossy(),
            );
        }
        if let Err(e) = region.load_into_cache() {
            tracing::warn!(error = %e, "loading fetched records into the page cache failed");
        }
    }
}

/// [`load`], a panic in it logged rather than ending the thread.
fn load_or_log(regions: &[FileRegion], in_flight: &InFlight) {
    let loaded =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load(regions, in_flight)));
    if let Err(panic) = loaded {
        tracing::error!(
            "loading fetched records panicked; their fetch is answered from the disk: {}",
            gyre_ringbuffer::panic_message(&*panic)
        );
    }
}

/// A region being read in: in flight until dropped, a panic included.
struct Loading<'a>(&'a InFlight, &'a FileRegion);

impl<'a> Loading<'a> {
    fn begin(in_flight: &'a InFlight, region: &'a FileRegion) -> Self {
        in_flight.begin(region);
        Loading(in_flight, region)
    }
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        self.0.end(self.1);
    }
}

/// The [`READ_AHEAD`] bytes after `region` in its file (as long as the
/// file is now), if they are not all cached already.
fn read_ahead(region: &FileRegion) -> Option<FileRegion> {
    let start = region.position() + region.remaining();
    let len = region
        .file()
        .len()
        .ok()?
        .saturating_sub(start)
        .min(READ_AHEAD);
    let ahead = FileRegion::new(region.file().clone(), start, len).ok()?;
    (len > 0 && ahead.is_cached() == Some(false)).then_some(ahead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_cold_region_is_loaded_before_its_answer_and_a_cached_one_answered_at_once() {
        let path = gyre_testkit::scratch_root().join(format!("gyre-loader-{}", std::process::id()));
        std::fs::write(&path, vec![5u8; 1 << 20]).unwrap();
        let region = FileRegion::open(&path).unwrap();
        if region.is_cached().is_none() {
            // A kernel before 6.5: every answer goes at once.
            return std::fs::remove_file(&path).unwrap();
        }
        let loader = CacheLoader::start(1).unwrap();
        let here = std::thread::current().id();
        let (tx, rx) = mpsc::channel();
        let answer = |tx: mpsc::Sender<_>, r: FileRegion| {
            move || {
                tx.send((std::thread::current().id(), r.is_cached()))
                    .unwrap()
            }
        };
        // Cached (just written): answered on this thread, at once.
        loader.after_loading(vec![region.clone()], answer(tx.clone(), region.clone()));
        let (on, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(on, here, "a cached region's answer waits for nothing");
        // Evicted: answered on a loader thread, once the region is back.
        let f = std::fs::File::open(&path).unwrap();
        f.sync_all().unwrap();
        // SAFETY: posix_fadvise on an open descriptor; it only advises.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if region.is_cached() == Some(true) {
            // A file system that keeps files in memory (tmpfs): nothing
            // is ever cold there.
            return std::fs::remove_file(&path).unwrap();
        }
        loader.after_loading(vec![region.clone()], answer(tx, region));
        let (on, cached) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_ne!(on, here, "a cold region is loaded off the caller's thread");
        assert_eq!(cached, Some(true), "loaded before the answer");
        loader.stop();
        std::fs::remove_file(&path).unwrap();
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn a_load_that_panics_still_answers_and_leaves_nothing_in_flight() {
        let (root, topic) = crate::failpoint::armed_scratch("loader-panic", "loader");
        let dir = topic.join("0");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("0.log");
        std::fs::write(&path, vec![5u8; 1 << 16]).unwrap();
        let region = FileRegion::open(&path).unwrap();
        let loader = CacheLoader::start(1).unwrap();
        let (tx, rx) = mpsc::channel();
        for _ in 0..2 {
            let tx = tx.clone();
            // Known cold or not, the loader reads it in (and panics).
            loader.load_then(vec![region.clone()], move || tx.send(()).unwrap());
            rx.recv_timeout(Duration::from_secs(5))
                .expect("answered, and the thread took the next job");
        }
        assert!(
            !loader.in_flight.overlaps(&region),
            "nothing left in flight"
        );
        loader.stop();
        std::fs::remove_dir_all(root).unwrap();
    }
}
