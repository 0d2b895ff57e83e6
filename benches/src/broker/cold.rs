//! The `--cold` case: a consumer replaying a topic whose segments are out
//! of the page cache (one back from a day away, a new service reading
//! from the start) while a producer and a tailing consumer run at a fixed
//! rate on another topic of the same broker. Run on a broker with the
//! cache loaders (its default: `fetch_cache_loaders` 2, behind them the
//! loops' `FileLoader`) and on one without (`0`: the log writer resolves
//! cold fetches and the loop's `sendfile` reads them, as Kafka's request
//! and network threads do, KAFKA-7504). Printed: the replay's rate and the
//! live records' end-to-end latency while it ran. Uses the broker
//! harness's producer, consumer and latency run.

use super::{consume, latency, produce, BenchBroker, Consumed, Latency};
use gyre_broker::writer::FlushPolicy;
use gyre_zerocopy::FileRegion;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What one cold replay saw.
pub struct ColdReplay {
    /// The replaying consumer.
    pub replay: Consumed,
    /// The live records, produced and consumed while it ran.
    pub live: Latency,
}

/// Segment files (`*.log`) under `dir`, any depth.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(segment_files(&path));
        } else if path.extension().is_some_and(|e| e == "log") {
            out.push(path);
        }
    }
    out
}

/// Drops every segment file of the broker from the page cache; whether
/// the kernel now says the largest is out (`false` on tmpfs, or before
/// Linux 6.5).
fn evict_segments(broker: &BenchBroker) -> bool {
    let files = segment_files(broker.data_dir());
    for f in &files {
        let _ = gyre_testkit::evict_from_page_cache(f);
    }
    files
        .iter()
        .max_by_key(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .and_then(|f| FileRegion::open(f).ok())
        .is_some_and(|r| r.is_cached() == Some(false))
}

/// On a fresh broker with `loaders` cache loaders: `records` records to
/// topic `cold`, the segments evicted, then a replay of them from the
/// start while `rate` live records/s go through topic `live` for
/// `seconds`. `None` where the segments cannot be evicted.
pub fn replay(
    loaders: usize,
    workers: usize,
    flush: FlushPolicy,
    records: u64,
    rate: u64,
    seconds: u64,
) -> Option<ColdReplay> {
    let broker = BenchBroker::start_with(&format!("cold-{loaders}"), workers, flush, |c| {
        c.fetch_cache_loaders = loaders;
    });
    let addr = broker.addr();
    produce(addr, "cold", records, &[]);
    super::create_topic(addr, "live", &[]);
    if !evict_segments(&broker) {
        return None;
    }
    let replay = std::thread::spawn(move || consume(addr, "cold", records, &[]));
    let live = latency(addr, "live", rate, Duration::from_secs(seconds), 0);
    let replay = replay.join().expect("the replay");
    Some(ColdReplay { replay, live })
}
