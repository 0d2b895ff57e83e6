//! The log cleaner's thread: compacts the logs of topics whose
//! `cleanup.policy` includes `compact`, off the log writer and the event
//! loops. Each round it asks the writer (through its ring, like any
//! client) which compacted logs are dirty enough, takes the dirtiest,
//! runs a pass over its closed segments ([`log::cleaner::clean`]: reads
//! them, writes compacted copies beside them), and asks the writer to
//! swap the copies in. With nothing to do it sleeps for the backoff
//! (Kafka's `log.cleaner.backoff.ms`, 15 s). A pass may be held to a
//! byte rate of reading and writing (`log.cleaner.io.max.bytes.per.second`).
//! A pass that fails on the
//! file system (a segment retention deleted under it, a full disk) is
//! tried again after the backoff; a log whose data fails a pass (a damaged
//! batch, more keys in one batch than the map holds) or whose swap fails
//! is left alone until the broker restarts (logged), as Kafka marks a
//! partition uncleanable; so is a log whose pass panics (KIP-346: one
//! log's failure does not stop the others' compaction).
//!
//! The writer never waits on the cleaner; the cleaner waits on the writer
//! only for its answers. It stops before the writer at shutdown (a pass
//! in progress gives up at its next batch and its copies are dropped).
//! Uses the writer's submitter and the log's cleaning pass.

use crate::log;
use crate::ops::{LogOp, LogReply, SwapCleaned};
use crate::writer::Submitter;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use gyre_ringbuffer::panic_message;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the log cleaner runs.
///
/// ```
/// use gyre_broker::cleaner::CleanerConfig;
/// use gyre_broker::log::Cleanup;
/// use gyre_broker::BrokerConfig;
/// use std::time::Duration;
///
/// // Every topic compacted unless it says otherwise, looked at each
/// // second, with a map for about 800,000 keys a pass, reading and
/// // writing at most 50 MB a second.
/// let mut config = BrokerConfig {
///     cleaner: CleanerConfig {
///         backoff: Duration::from_secs(1),
///         dedupe_buffer_bytes: 32 << 20,
///         io_max_bytes_per_second: Some(50_000_000),
///         ..CleanerConfig::default()
///     },
///     ..BrokerConfig::default()
/// };
/// config.log.cleanup = Cleanup {
///     delete: false,
///     compact: true,
/// };
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct CleanerConfig {
    /// Run it at all (Kafka's `log.cleaner.enable`; default on).
    pub enabled: bool,
    /// Sleep this long when no log needs compacting (Kafka's
    /// `log.cleaner.backoff.ms`; default 15 s).
    pub backoff: Duration,
    /// Memory for the map of keys to their last offsets, in bytes (Kafka's
    /// `log.cleaner.dedupe.buffer.size`; default 128 MiB, about 3.3
    /// million keys a pass).
    pub dedupe_buffer_bytes: usize,
    /// The most a pass reads and writes a second, in bytes (Kafka's
    /// `log.cleaner.io.max.bytes.per.second`; default unbounded): a pass
    /// ahead of it sleeps, leaving the disk to producers and readers.
    pub io_max_bytes_per_second: Option<u64>,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enabled: true,
            backoff: Duration::from_secs(15),
            dedupe_buffer_bytes: 128 << 20,
            io_max_bytes_per_second: None,
        }
    }
}

/// The running cleaner thread.
#[derive(Debug)]
pub struct LogCleaner {
    stop: Arc<AtomicBool>,
    wake: Option<Sender<()>>,
    passes: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl LogCleaner {
    /// Starts the thread, which submits its requests through `writer`.
    pub fn start<R: LogReply>(
        writer: Submitter<R>,
        config: CleanerConfig,
    ) -> std::io::Result<LogCleaner> {
        let stop = Arc::new(AtomicBool::new(false));
        let passes = Arc::new(AtomicU64::new(0));
        let (wake, woken) = crossbeam_channel::bounded(1);
        let thread = {
            let (stop, passes) = (stop.clone(), passes.clone());
            std::thread::Builder::new()
                .name("gyre-log-cleaner".into())
                .spawn(move || run(writer, &config, &stop, &passes, &woken))?
        };
        Ok(LogCleaner {
            stop,
            wake: Some(wake),
            passes,
            thread: Some(thread),
        })
    }

    /// Passes swapped in so far.
    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }

    /// Looks for work now rather than at the end of the backoff.
    pub fn wake(&self) {
        if let Some(w) = &self.wake {
            let _ = w.try_send(());
        }
    }

    /// Stops the thread (a pass in progress gives up) and joins it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The writer's answer on a fresh channel to a request built around it;
/// `None` once the writer (or the broker) is stopping.
fn ask<R: LogReply, T>(
    writer: &mut Submitter<R>,
    op: impl FnOnce(Sender<T>) -> LogOp,
) -> Option<T> {
    let (to, from) = crossbeam_channel::bounded(1);
    writer.submit(0, op(to), None).ok()?;
    from.recv().ok()
}

fn run<R: LogReply>(
    mut writer: Submitter<R>,
    config: &CleanerConfig,
    stop: &AtomicBool,
    passes: &AtomicU64,
    woken: &Receiver<()>,
) {
    let capacity = (config.dedupe_buffer_bytes / log::cleaner::MAP_ENTRY_BYTES).max(1);
    let mut failed = HashSet::new();
    // Sleeps for the backoff (or until woken); `false` once stopping.
    let rest = || match woken.recv_timeout(config.backoff) {
        Ok(()) | Err(RecvTimeoutError::Timeout) => true,
        Err(RecvTimeoutError::Disconnected) => false,
    };
    while !stop.load(Ordering::Relaxed) {
        let Some(plans) = ask(&mut writer, LogOp::CleaningPlans) else {
            return;
        };
        let dirtiest = plans
            .into_iter()
            .filter(|(_, p)| !failed.contains(&p.log_id))
            .max_by(|a, b| a.1.dirty_ratio.total_cmp(&b.1.dirty_ratio));
        let Some((partition, plan)) = dirtiest else {
            if rest() {
                continue;
            }
            return;
        };
        let started = Instant::now();
        let pace = log::pace::Pace::new(stop, config.io_max_bytes_per_second);
        let pass = std::panic::catch_unwind(AssertUnwindSafe(|| {
            if let Some(topic) = plan.dir.parent().and_then(|t| t.file_name()) {
                crate::failpoint::hit("cleaner", &topic.to_string_lossy());
            }
            log::cleaner::clean(&plan, capacity, &pace)
        }));
        let Ok(pass) = pass.map_err(|panic| {
            // A pass only reads the log and writes copies beside it, so
            // its panic harms nothing but this log's compaction: the log
            // is left uncompacted (its copies dropped), as Kafka marks a
            // partition uncleanable (KIP-346), and the others go on.
            tracing::error!(
                dir = %plan.dir.display(),
                "compaction panicked; this log is not compacted again until a restart: {}",
                panic_message(&*panic)
            );
            let _ = std::fs::remove_dir_all(plan.dir.join(log::cleaner::CLEANING_DIR));
            failed.insert(plan.log_id);
        }) else {
            continue;
        };
        let cleaned = match pass {
            Ok(cleaned) => cleaned,
            Err(log::cleaner::CleanError::Stopped) => return,
            // A segment retention deleted under the pass, a full disk:
            // the next round after the backoff plans afresh.
            Err(e @ log::cleaner::CleanError::Io { .. }) => {
                tracing::warn!(dir = %plan.dir.display(), error = %e, "compaction pass failed; trying again after the backoff");
                let _ = std::fs::remove_dir_all(plan.dir.join(log::cleaner::CLEANING_DIR));
                if rest() {
                    continue;
                }
                return;
            }
            Err(e) => {
                tracing::error!(dir = %plan.dir.display(), error = %e, "compaction failed; this log is not compacted again until a restart");
                let _ = std::fs::remove_dir_all(plan.dir.join(log::cleaner::CLEANING_DIR));
                failed.insert(plan.log_id);
                continue;
            }
        };
        let stats = cleaned.stats;
        let (keys, below) = (cleaned.keys, cleaned.clean_below);
        let swap = |done| {
            LogOp::SwapCleaned(Box::new(SwapCleaned {
                partition,
                plan: plan.clone(),
                cleaned,
                done,
            }))
        };
        match ask(&mut writer, swap) {
            None => return,
            Some(Ok(segments)) => {
                passes.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    dir = %plan.dir.display(),
                    segments,
                    keys,
                    clean_below = below,
                    bytes_before = stats.read,
                    bytes_after = stats.written,
                    records_kept = stats.kept,
                    records_removed = stats.removed,
                    ms = started.elapsed().as_millis() as u64,
                    "compacted a log"
                );
            }
            Some(Err(e)) => {
                tracing::error!(dir = %plan.dir.display(), error = %e, "swapping in compacted segments failed; this log is not compacted again until a restart");
                failed.insert(plan.log_id);
            }
        }
    }
}
