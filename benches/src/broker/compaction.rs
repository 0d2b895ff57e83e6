//! The `--compaction` case: what a compacted topic costs and what the log
//! cleaner does with it. Two brokers of the same run, one whose topics are
//! compacted and one whose topics delete (both with 16 MiB segments), take
//! the same keyed records (`keys` distinct keys, 100-byte values) from one
//! producer in turn: the ratio is what the compacted topic's key check
//! costs a producer. Then the compacting broker's cleaner, idle until
//! now, is woken, and one pass over the log is timed: bytes read per
//! second, and the log's size before and after. Uses the broker harness's
//! producer.

use super::BenchBroker;
use gyre_broker::log::Cleanup;
use gyre_broker::writer::FlushPolicy;
use std::path::Path;
use std::time::{Duration, Instant};

/// Segment size of both brokers' topics.
pub const SEGMENT_BYTES: u64 = 16 << 20;

/// Starts the compacting broker (its cleaner asleep until woken) and the
/// deleting one.
pub fn brokers(workers: usize, flush: FlushPolicy) -> (BenchBroker, BenchBroker) {
    let compacting = BenchBroker::start_with("compact", workers, flush, |c| {
        c.log.segment_bytes = SEGMENT_BYTES;
        c.log.cleanup = Cleanup {
            delete: false,
            compact: true,
        };
        c.cleaner.backoff = Duration::from_secs(3600);
    });
    let deleting = BenchBroker::start_with("delete", workers, flush, |c| {
        c.log.segment_bytes = SEGMENT_BYTES;
    });
    (compacting, deleting)
}

/// Produces `n` records to `topic`, record `i` keyed `i % keys` (8 bytes);
/// returns the time from the first send to the last delivery report.
pub fn produce_keyed(broker: &BenchBroker, topic: &str, n: u64, keys: u64) -> Duration {
    super::produce_numbered(broker.addr(), topic, n, &[], Some(keys))
}

/// Bytes of the segment files under `dir`.
pub fn log_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            total += log_bytes(&path);
        } else if path.extension().is_some_and(|e| e == "log") {
            total += entry.metadata().map_or(0, |m| m.len());
        }
    }
    total
}

/// One compaction pass, timed.
pub struct Pass {
    /// From waking the cleaner to the pass swapped in.
    pub took: Duration,
    /// Log bytes before and after.
    pub before: u64,
    /// After.
    pub after: u64,
}

/// Wakes the compacting broker's cleaner and times the pass it runs.
pub fn one_pass(broker: &BenchBroker) -> Pass {
    let topics = broker.data_dir().join("topics");
    let before = log_bytes(&topics);
    let passes = broker.broker().cleaner_passes();
    let start = Instant::now();
    broker.broker().wake_cleaner();
    while broker.broker().cleaner_passes() == passes {
        assert!(start.elapsed() < Duration::from_secs(300), "no pass ran");
        std::thread::sleep(Duration::from_millis(1));
    }
    Pass {
        took: start.elapsed(),
        before,
        after: log_bytes(&topics),
    }
}
