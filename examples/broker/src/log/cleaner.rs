//! Log compaction, the work itself: which records of a compacted log's
//! closed segments have a later record with the same key, and the cleaned
//! copy of each segment without them. Runs on the log cleaner's own
//! thread, reading segment files the writer has closed (they never change
//! again; one retention deletes meanwhile fails the pass, which the
//! cleaner tries again), and writing the copies beside them, in the partition's
//! `cleaning/` folder, for the writer to swap in (see
//! [`PartitionLog::swap_cleaned`](super::PartitionLog::swap_cleaned)).
//! Uses the batch layout, the record walk and the segment type.
//!
//! As in Kafka: the cleaner maps each key of the *dirty* segments (those
//! not compacted yet) to its last offset, as far as the map has room,
//! then copies every segment from the log's start up to where the map
//! reached (records from there on all stay), leaving out each
//! record whose key has a later offset in the map, each record without a
//! key, and each record of an aborted transaction. A tombstone (a key
//! with no value) stays for `delete.retention.ms` after the last pass
//! that maps its segment, the pass that removes the records it
//! supersedes (Kafka's KIP-534; before it, Kafka counted from the
//! segment's last write, and a reader that began just before that pass
//! could read a superseded record and never meet its tombstone). The
//! time is kept as the modification time of the segment's copy. A batch
//! keeps its base offset and last offset delta when some of its records
//! go, so offsets never move; a batch with no record left goes whole,
//! leaving a gap in the offsets that readers skip (the log's checks
//! accept gaps below [`read_clean_below`]'s offset, and only there). A
//! transaction's marker goes when nothing of its transaction is left and
//! its segment is past `delete.retention.ms`, as a tombstone does (Kafka
//! removes markers then too), unless it is the last word the
//! log has from its producer (its epoch would be lost to a restart that
//! reads the producers back from the log). An abort marker also waits
//! until the partition's aborted-transactions index no longer names its
//! transaction: the pass that removes the aborted records keeps it, the
//! swap of that pass drops the index entry, and a later pass removes it
//! (Kafka keeps it for the pass that saw the records, too). A fetch
//! answers from the index and the files together, so no reader is told
//! of an aborted transaction whose marker is gone: it would skip its
//! producer's later, committed records looking for one. Consecutive
//! segments whose sizes together fit in `segment.bytes` are written into
//! one copy, so the small segments compaction leaves merge on the next
//! pass (Kafka groups them the same way).
//!
//! The map holds a 128-bit hash of each key (two halves from the standard
//! library's randomly keyed hasher, SipHash-1-3 today, fresh keys each
//! pass), not the key: bounded memory
//! whatever the keys' sizes, at a collision chance of about n²/2¹²⁹ for
//! n keys, the same bargain Kafka's 16-byte MD5 map makes.
//!
//! A pass says when something it kept could go on a pass of its own,
//! with no new records: a tombstone or marker younger than its horizon,
//! an abort marker whose index entry the pass's swap drops. A log
//! otherwise clean is passed over again then, so an idle compacted topic
//! does not keep its tombstones and markers for good (Kafka's KIP-534
//! made its cleaner do the same).

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::open_files::OpenFiles;
use super::pace::{Pace, Stopped};
use super::records;
use super::segment::{Scan, Segment};
use super::transactions::AbortedTxn;
use crate::folder_sync::{self, Durability};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// The file in a partition's folder holding the offset below which the
/// log has been compacted (Kafka's cleaner checkpoint).
pub const CLEANER_OFFSET: &str = "cleaner.offset";
/// Where the cleaner writes a pass's cleaned segments.
pub const CLEANING_DIR: &str = "cleaning";
/// `cleaning/` renamed once the writer commits to swapping its segments
/// in: a start finds it and finishes the swap.
pub const CLEANED_DIR: &str = "cleaned";
/// The list, in `cleaning/`, of the runs of segments each copy replaces:
/// a line of base offsets per copy, the copy named by the first.
pub const RUNS_FILE: &str = "runs";
const FORMAT: &str = "gyre-cleaner 1";
/// Bytes a map entry costs, for sizing the map from a memory budget: the
/// 16-byte hash, the 8-byte offset, and the hash table's overhead.
pub const MAP_ENTRY_BYTES: usize = 40;

/// The offset below which the log in `dir` may have been compacted (0
/// when it never was; a damaged file counts as never, which only makes
/// the log's checks stricter).
pub fn read_clean_below(dir: &Path) -> i64 {
    read_checkpoint(dir).0
}

/// What the checkpoint in `dir` holds: the offset below which the log may
/// have been compacted (see [`read_clean_below`]), and when a pass with
/// no new records could remove more ([`SegmentStats::removable_at`] of
/// the last pass).
pub fn read_checkpoint(dir: &Path) -> (i64, Option<SystemTime>) {
    let Ok(text) = fs::read_to_string(dir.join(CLEANER_OFFSET)) else {
        return (0, None);
    };
    let Some((offset, lines)) = super::snapshot_text::open(&text, FORMAT) else {
        tracing::warn!(dir = %dir.display(), "ignoring a damaged cleaner offset");
        return (0, None);
    };
    // A line older brokers did not write, and would ignore.
    let recheck = lines
        .filter_map(|l| l.strip_prefix("recheck ")?.parse::<u64>().ok())
        .map(|ms| SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .next();
    (offset, recheck)
}

/// Durably records that the log in `dir` may be compacted below `offset`
/// and that a pass at `recheck` could remove more: a temporary file,
/// synced, renamed over the old one, the folder synced.
pub fn write_checkpoint(dir: &Path, offset: i64, recheck: Option<SystemTime>) -> io::Result<()> {
    let mut text = super::snapshot_text::begin(FORMAT, offset);
    if let Some(at) = recheck {
        let ms = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        text.push_str(&format!("recheck {ms}\n"));
    }
    let text = super::snapshot_text::seal(text);
    let path = dir.join(CLEANER_OFFSET);
    folder_sync::replace(&path, text.as_bytes(), Durability::Durable)
}

/// The three files of the segment at `base` in `dir`.
pub fn segment_files(dir: &Path, base: i64) -> [PathBuf; 3] {
    ["log", "index", "timeindex"].map(|ext| dir.join(format!("{base:020}.{ext}")))
}

/// Removes `path`, if it is there.
fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes the runs file into `folder` (synced): the segments each copy
/// there replaces.
pub fn write_runs(folder: &Path, runs: &[Vec<i64>]) -> io::Result<()> {
    let text: String = runs
        .iter()
        .map(|run| {
            let line: Vec<String> = run.iter().map(i64::to_string).collect();
            line.join(" ") + "\n"
        })
        .collect();
    let path = folder.join(RUNS_FILE);
    fs::write(&path, text)?;
    File::open(&path)?.sync_all()
}

/// Puts one run's copy in place in `dir`: deletes the segments it
/// replaces after its first, then moves the copy's files from `from` over
/// the first. Idempotent, so a start can do it again after a crash.
pub fn swap_run(dir: &Path, from: &Path, run: &[i64]) -> io::Result<()> {
    for &base in &run[1..] {
        for f in segment_files(dir, base) {
            remove_if_there(&f)?;
        }
    }
    for (copy, target) in segment_files(from, run[0])
        .iter()
        .zip(segment_files(dir, run[0]))
    {
        if copy.exists() {
            fs::rename(copy, target)?;
        }
    }
    Ok(())
}

/// At a log's open: finishes a swap a stop cut short (each run in
/// `cleaned/`'s runs file swapped in, see [`swap_run`]) and drops a pass
/// that never reached its swap (`cleaning/`).
pub fn finish_swap(dir: &Path) -> io::Result<()> {
    let cleaned = dir.join(CLEANED_DIR);
    if cleaned.is_dir() {
        let runs = fs::read_to_string(cleaned.join(RUNS_FILE))?;
        for line in runs.lines() {
            let run: Vec<i64> = line
                .split(' ')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if !run.is_empty() {
                swap_run(dir, &cleaned, &run)?;
            }
        }
        fs::remove_dir_all(&cleaned)?;
        folder_sync::sync_folder(dir)?;
        tracing::info!(dir = %dir.display(), "finished swapping in compacted segments after a stop");
    }
    match fs::remove_dir_all(dir.join(CLEANING_DIR)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A closed segment as the cleaner reads it.
#[derive(Clone, Debug)]
pub struct SegmentFile {
    /// Its base offset.
    pub base: i64,
    /// Its log file.
    pub path: PathBuf,
    /// Its size in bytes (a closed segment's never changes).
    pub size: u64,
    /// When it was last written, or last mapped by a pass (its cleaned
    /// copy's modification time): horizons count from here.
    pub modified: SystemTime,
}

/// What the log cleaner is to do for one compacted log: the writer's
/// picture of it, handed to the cleaner's thread (see [`clean`]).
#[derive(Clone, Debug)]
pub struct CleanPlan {
    /// The log's folder.
    pub dir: PathBuf,
    /// The log it was planned for.
    pub log_id: u64,
    /// The closed segments a pass may read, from the log's start, up to
    /// the first that holds a transaction still open, records younger
    /// than `min.compaction.lag.ms`, or is the active one.
    pub segments: Vec<SegmentFile>,
    /// Where in `segments` the ones not wholly compacted yet start.
    pub first_dirty: usize,
    /// The offset the last pass reached: mapping starts there.
    pub clean_below: i64,
    /// The offset after the last of `segments` (the next segment's base).
    pub end: i64,
    /// Aborted transactions with records below `end`.
    pub aborted: Vec<AbortedTxn>,
    /// Each remembered producer's last batch, by its last offset (see
    /// `ProducerStates::last_offsets`).
    pub producers_last: HashMap<i64, i64>,
    /// Tombstones in segments last written before this go.
    pub tombstone_horizon: std::time::SystemTime,
    /// The log's `delete.retention.ms`: a tombstone kept for it goes on
    /// a pass this long after its segment was last written or mapped.
    pub delete_retention: std::time::Duration,
    /// Bytes of log between index entries.
    pub index_interval: u64,
    /// The log's `segment.bytes`: compacted segments merge up to it.
    pub segment_bytes: u64,
    /// The share of `segments`' bytes not compacted yet.
    pub dirty_ratio: f64,
}

/// Transactions that ended in an abort, to leave their records out.
#[derive(Clone, Debug, Default)]
pub struct AbortedSet(HashMap<i64, Vec<(i64, i64)>>);

impl AbortedSet {
    /// The set of `txns`.
    pub fn new(txns: &[AbortedTxn]) -> Self {
        let mut map: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for t in txns {
            map.entry(t.producer_id)
                .or_default()
                .push((t.first_offset, t.last_offset));
        }
        AbortedSet(map)
    }

    /// Whether the set names the transaction `producer_id`'s abort
    /// marker at `offset` ends.
    fn names_marker(&self, producer_id: i64, offset: i64) -> bool {
        self.0
            .get(&producer_id)
            .is_some_and(|ranges| ranges.iter().any(|&(_, last)| last == offset))
    }

    /// Whether `h` is a batch of an aborted transaction.
    fn holds(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self.0.get(&h.producer_id).is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|&(first, last)| first <= h.base_offset && h.base_offset <= last)
            })
    }
}

/// Each key's last offset, by a 128-bit hash of the key.
#[derive(Debug)]
pub struct OffsetMap {
    offsets: HashMap<u128, i64>,
    capacity: usize,
    halves: (RandomState, RandomState),
}

impl OffsetMap {
    /// An empty map for at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        OffsetMap {
            offsets: HashMap::new(),
            capacity: capacity.max(1),
            halves: (RandomState::new(), RandomState::new()),
        }
    }

    fn hash(&self, key: &[u8]) -> u128 {
        let hi = self.halves.0.hash_one(key);
        let lo = self.halves.1.hash_one(key);
        (u128::from(hi) << 64) | u128::from(lo)
    }

    /// Keys mapped.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether no key is mapped.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// `key`'s last offset, if mapped.
    pub fn latest(&self, key: &[u8]) -> Option<i64> {
        self.offsets.get(&self.hash(key)).copied()
    }

    /// Maps `key` to `offset` if later than what it has; `false` (and
    /// nothing mapped) for a new key when the map is full.
    fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let h = self.hash(key);
        let full = self.offsets.len() >= self.capacity;
        match self.offsets.entry(h) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let last = e.get_mut();
                *last = (*last).max(offset);
                true
            }
            std::collections::hash_map::Entry::Vacant(_) if full => false,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(offset);
                true
            }
        }
    }
}

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    /// Reading a segment or writing its copy failed.
    #[error("compacting {file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// A stored batch does not parse or its records do not decode.
    #[error("compacting {file}: batch at byte {pos}: {reason}")]
    Batch {
        /// The segment file.
        file: PathBuf,
        /// Where the batch starts.
        pos: u64,
        /// What was wrong.
        reason: String,
    },
    /// The first dirty segment alone has more keys than the map holds.
    #[error("the segment at {base} has more keys than the cleaner's map holds ({capacity}); raise --log-cleaner-dedupe-buffer-size")]
    MapTooSmall {
        /// The segment's base offset.
        base: i64,
        /// The map's capacity in keys.
        capacity: usize,
    },
    /// The broker is stopping.
    #[error("stopped")]
    Stopped,
}

impl From<Stopped> for CleanError {
    fn from(_: Stopped) -> Self {
        CleanError::Stopped
    }
}

/// Calls `each` with every batch of the segment file `seg` (its header,
/// its bytes, its position), in order, while it answers `true`.
fn for_each_batch(
    seg: &SegmentFile,
    pace: &Pace<'_>,
    mut each: impl FnMut(&BatchHeader, &[u8], u64) -> Result<bool, CleanError>,
) -> Result<(), CleanError> {
    let io_err = |source| CleanError::Io {
        file: seg.path.clone(),
        source,
    };
    let file = File::open(&seg.path).map_err(io_err)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let mut pos = 0u64;
    while pos < seg.size {
        pace.check()?;
        buf.resize(HEADER_LEN, 0);
        reader.read_exact(&mut buf).map_err(io_err)?;
        let bad = |reason: String| CleanError::Batch {
            file: seg.path.clone(),
            pos,
            reason,
        };
        let header = batch::parse_header(&buf).map_err(|e| bad(e.to_string()))?;
        if pos + header.size as u64 > seg.size {
            return Err(bad("runs past the segment".into()));
        }
        buf.resize(header.size, 0);
        reader.read_exact(&mut buf[HEADER_LEN..]).map_err(io_err)?;
        // A damaged batch is never copied, least of all with a CRC
        // computed again over the damage.
        batch::validate(&buf).map_err(|e| bad(e.to_string()))?;
        pace.spent(header.size as u64)?;
        if !each(&header, &buf, pos)? {
            break;
        }
        pos += header.size as u64;
    }
    Ok(())
}

/// Maps the keys of `dirty` (consecutive segments, oldest first, the
/// offset after the last being `end`) from offset `start` (where the last
/// pass stopped) to their last offsets, until the map is full; returns
/// the offset it mapped up to: `end`, or the base of the batch whose key
/// found no room. Records of that batch already
/// mapped are at or past the returned offset, which a pass never removes,
/// so whatever they supersede below it is superseded by a record that
/// stays. Records of aborted transactions and control batches are not
/// mapped. A map too small for the first batch is an error.
pub fn build_map(
    dirty: &[SegmentFile],
    start: i64,
    end: i64,
    aborted: &AbortedSet,
    map: &mut OffsetMap,
    pace: &Pace<'_>,
) -> Result<i64, CleanError> {
    let mut full_at = None;
    for seg in dirty {
        for_each_batch(seg, pace, |h, bytes, pos| {
            if h.last_offset() < start || h.is_control() || aborted.holds(h) {
                return Ok(true);
            }
            let bad = |e: records::RecordsError| CleanError::Batch {
                file: seg.path.clone(),
                pos,
                reason: e.to_string(),
            };
            let payload = records::payload(bytes, h).map_err(bad)?;
            let mut full = false;
            records::walk(&payload, h.record_count, |r| {
                if let (Some(k), false) = (r.key, full) {
                    full = !map.put(k, h.base_offset + i64::from(r.offset_delta));
                }
            })
            .map_err(bad)?;
            if full {
                full_at = Some(h.base_offset);
            }
            Ok(!full)
        })?;
        if let Some(at) = full_at {
            if at <= start {
                return Err(CleanError::MapTooSmall {
                    base: at,
                    capacity: map.capacity,
                });
            }
            return Ok(at);
        }
    }
    Ok(end)
}

/// What cleaning one segment did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentStats {
    /// Bytes read.
    pub read: u64,
    /// Bytes written.
    pub written: u64,
    /// Records left out.
    pub removed: u64,
    /// Records kept.
    pub kept: u64,
    /// The earliest time a record or marker kept could go on a pass with
    /// no new records (its horizon; for an abort marker only the index
    /// still names, the pass's own time), if any could.
    pub removable_at: Option<SystemTime>,
}

impl SegmentStats {
    /// Notes that something kept could go on a pass at or after `at`.
    fn removable_from(&mut self, at: Option<SystemTime>) {
        self.removable_at = match (self.removable_at, at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Adds what another copy of the same pass did.
    fn add(&mut self, other: &SegmentStats) {
        self.read += other.read;
        self.written += other.written;
        self.kept += other.kept;
        self.removed += other.removed;
        self.removable_from(other.removable_at);
    }
}

/// The rules of one pass: the map, the aborted transactions, and the time
/// before which a segment's tombstones go.
#[derive(Debug)]
pub struct Pass<'a> {
    /// Each mapped key's last offset.
    pub map: &'a OffsetMap,
    /// What the map reaches: records at or past it are all kept (nothing
    /// above it may leave a gap).
    pub end: i64,
    /// Aborted transactions.
    pub aborted: &'a AbortedSet,
    /// Tombstones, and markers with nothing left of their transaction,
    /// in a segment last written before this go.
    pub tombstone_horizon: SystemTime,
    /// The retention `tombstone_horizon` was taken back by.
    pub delete_retention: std::time::Duration,
    /// Each remembered producer's last batch, by its last offset.
    pub producers_last: &'a HashMap<i64, i64>,
}

/// What a pass has seen of transactions so far, walking the log from its
/// start: the producers whose current transaction has a batch kept.
#[derive(Debug, Default)]
pub struct TxnsSeen {
    kept_data: std::collections::HashSet<i64>,
}

/// What becomes of a control batch in a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// It goes.
    Goes,
    /// It stays, and a pass at or after this time with no new records
    /// would find it gone.
    StaysUntil(SystemTime),
    /// It stays until new records change that: its transaction's records
    /// are still there, or it is its producer's last word.
    Stays,
}

impl TxnsSeen {
    /// What becomes of the control batch `h` (`bytes`, in a segment last
    /// written at `written`); the transaction it ends is closed either
    /// way. Control records other than markers stay.
    fn marker_fate(
        &mut self,
        h: &BatchHeader,
        bytes: &[u8],
        pass: &Pass<'_>,
        written: SystemTime,
    ) -> Fate {
        let had_data = self.kept_data.remove(&h.producer_id);
        let Some(marker) = batch::read_marker(bytes) else {
            return Fate::Stays;
        };
        let needed = had_data
            || h.last_offset() >= pass.end
            || pass
                .producers_last
                .get(&h.producer_id)
                .is_some_and(|&last| last <= h.last_offset());
        if needed {
            return Fate::Stays;
        }
        let indexed = marker == batch::Marker::Abort
            && pass.aborted.names_marker(h.producer_id, h.base_offset);
        if written < pass.tombstone_horizon && !indexed {
            return Fate::Goes;
        }
        // Past its horizon, an abort marker the index names goes on the
        // pass after this one, whose swap drops the entry.
        let horizon = match written.checked_add(pass.delete_retention) {
            Some(at) => at,
            None => return Fate::Stays,
        };
        Fate::StaysUntil(if indexed {
            horizon.max(SystemTime::now())
        } else {
            horizon
        })
    }
}

/// Writes the consecutive segments `segs`, without the records `pass`
/// removes, into the one file `out` (synced, with the latest of their
/// modification times): small compacted segments merge as they go
/// through a pass.
pub fn clean_group(
    segs: &[SegmentFile],
    out: &Path,
    pass: &Pass<'_>,
    txns: &mut TxnsSeen,
    pace: &Pace<'_>,
) -> Result<SegmentStats, CleanError> {
    let out_err = |source| CleanError::Io {
        file: out.to_owned(),
        source,
    };
    let file = File::create(out).map_err(out_err)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut stats = SegmentStats::default();
    let mut kept = Vec::new();
    for seg in segs {
        let drop_tombstones = seg.modified < pass.tombstone_horizon;
        for_each_batch(seg, pace, |h, bytes, pos| {
            stats.read += bytes.len() as u64;
            let bad = |reason: String| CleanError::Batch {
                file: seg.path.clone(),
                pos,
                reason,
            };
            let out_bytes: std::borrow::Cow<'_, [u8]> = if h.is_control() {
                match txns.marker_fate(h, bytes, pass, seg.modified) {
                    Fate::Goes => {
                        stats.removed += 1;
                        return Ok(true);
                    }
                    Fate::StaysUntil(at) => stats.removable_from(Some(at)),
                    Fate::Stays => {}
                }
                stats.kept += 1;
                bytes.into()
            } else {
                let aborted = pass.aborted.holds(h);
                let payload = records::payload(bytes, h).map_err(|e| bad(e.to_string()))?;
                kept.clear();
                let (mut n_kept, mut n_all) = (0i32, 0i32);
                let mut young_tombstone = false;
                records::walk(&payload, h.record_count, |r| {
                    n_all += 1;
                    let offset = h.base_offset + i64::from(r.offset_delta);
                    let latest = !aborted
                        && r.key
                            .is_some_and(|k| pass.map.latest(k).is_none_or(|last| last <= offset));
                    let keep = offset >= pass.end || latest && (r.has_value || !drop_tombstones);
                    young_tombstone |=
                        offset < pass.end && latest && !r.has_value && !drop_tombstones;
                    if keep {
                        kept.extend_from_slice(r.bytes);
                        n_kept += 1;
                    }
                })
                .map_err(|e| bad(e.to_string()))?;
                stats.kept += n_kept as u64;
                stats.removed += (n_all - n_kept) as u64;
                if young_tombstone {
                    // `None`: a retention too long to reach.
                    stats.removable_from(seg.modified.checked_add(pass.delete_retention));
                }
                if n_kept > 0 && h.is_transactional() {
                    txns.kept_data.insert(h.producer_id);
                }
                if n_kept == 0 {
                    return Ok(true);
                }
                if n_kept == n_all {
                    bytes.into()
                } else {
                    records::rebuild(bytes, h, &kept, n_kept)
                        .map_err(|e| bad(e.to_string()))?
                        .into()
                }
            };
            stats.written += out_bytes.len() as u64;
            w.write_all(&out_bytes).map_err(out_err)?;
            pace.spent(out_bytes.len() as u64)?;
            Ok(true)
        })?;
    }
    let file = w.into_inner().map_err(|e| out_err(e.into_error()))?;
    if let Some(latest) = segs.iter().map(|s| s.modified).max() {
        file.set_modified(latest).map_err(out_err)?;
    }
    file.sync_all().map_err(out_err)?;
    Ok(stats)
}

/// Splits `segs` (consecutive, the offset after the last being `end`)
/// into runs to merge: each run's segments together at most `max_bytes`
/// (the log's `segment.bytes`) and at most 2³¹ offsets, the most an index
/// entry can reach from the run's base offset.
pub fn group_by_size(segs: &[SegmentFile], end: i64, max_bytes: u64) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0u64;
    for (i, seg) in segs.iter().enumerate() {
        let next = segs.get(i + 1).map_or(end, |s| s.base);
        let fits = groups.last().is_some_and(|g| {
            let base = segs[g[0]].base;
            bytes + seg.size <= max_bytes && next - base <= i64::from(i32::MAX)
        });
        if fits {
            bytes += seg.size;
            groups.last_mut().expect("checked").push(i);
        } else {
            bytes = seg.size;
            groups.push(vec![i]);
        }
    }
    groups
}

/// What a pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// The segments it copied, by base offset, in runs: each run's copy,
    /// named by its first segment's base, replaces them all.
    pub groups: Vec<Vec<i64>>,
    /// The log is compacted below this once they are.
    pub clean_below: i64,
    /// Keys mapped.
    pub keys: usize,
    /// Bytes, records kept and removed, over every segment, and when a
    /// pass with no new records could remove more.
    pub stats: SegmentStats,
}

/// One pass over the log `plan` describes: maps the dirty segments' keys
/// (as many whole segments as `map_capacity` keys allow), then writes a
/// compacted copy of every segment up to the last one mapped into the
/// log's `cleaning/` folder, indexed and synced, for the writer to swap
/// in. Gives up as soon as `pace`'s stop flag is set, and keeps to its
/// throttle.
pub fn clean(
    plan: &CleanPlan,
    map_capacity: usize,
    pace: &Pace<'_>,
) -> Result<Cleaned, CleanError> {
    let aborted = AbortedSet::new(&plan.aborted);
    let mut map = OffsetMap::new(map_capacity);
    let dirty = &plan.segments[plan.first_dirty..];
    let clean_below = build_map(dirty, plan.clean_below, plan.end, &aborted, &mut map, pace)?;
    // Every segment holding offsets below what the map reaches.
    let upto = plan.segments.partition_point(|f| f.base < clean_below);
    let dir = plan.dir.join(CLEANING_DIR);
    let dir_err = |source| CleanError::Io {
        file: dir.clone(),
        source,
    };
    match fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(dir_err(e)),
        _ => {}
    }
    fs::create_dir(&dir).map_err(dir_err)?;
    let pass = Pass {
        map: &map,
        end: clean_below,
        aborted: &aborted,
        tombstone_horizon: plan.tombstone_horizon,
        delete_retention: plan.delete_retention,
        producers_last: &plan.producers_last,
    };
    let mut txns = TxnsSeen::default();
    let mut done = Cleaned {
        groups: Vec::new(),
        clean_below,
        keys: map.len(),
        stats: SegmentStats::default(),
    };
    // A tombstone's or marker's horizon counts from the pass that maps
    // its segment, not from when the segment was written (Kafka's
    // KIP-534): that pass removes the records it supersedes, and a
    // reader that began before it and read one of those must still meet
    // the tombstone within `delete.retention.ms` of beginning. So the
    // segments this pass maps count as written now, and so do their
    // copies.
    let now = SystemTime::now();
    let segs: Vec<SegmentFile> = plan.segments[..upto]
        .iter()
        .enumerate()
        .map(|(i, f)| SegmentFile {
            modified: if i >= plan.first_dirty {
                now
            } else {
                f.modified
            },
            ..f.clone()
        })
        .collect();
    for run in group_by_size(&segs, clean_below, plan.segment_bytes) {
        let run: Vec<SegmentFile> = run.iter().map(|&i| segs[i].clone()).collect();
        let base = run[0].base;
        let out = dir.join(format!("{base:020}.log"));
        let s = clean_group(&run, &out, &pass, &mut txns, pace)?;
        index_cleaned(&dir, base, plan.index_interval, clean_below)?;
        done.groups.push(run.iter().map(|f| f.base).collect());
        done.stats.add(&s);
    }
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(dir_err)?;
    Ok(done)
}

/// Opens the cleaned copy at `base` in `dir` (its offsets may have gaps
/// below `gaps_below`), writing its offset and time indexes, and syncs
/// all three files: ready to swap in.
pub fn index_cleaned(
    dir: &Path,
    base: i64,
    index_interval: u64,
    gaps_below: i64,
) -> Result<(), CleanError> {
    let io_err = |source| CleanError::Io {
        file: dir.join(format!("{base:020}.log")),
        source,
    };
    let (segment, cut) = Segment::open(
        dir,
        base,
        index_interval,
        Scan::Full,
        gaps_below,
        &Arc::new(OpenFiles::default()),
    )
    .map_err(io_err)?;
    if let Some(cut) = cut {
        // Never expected: the copy was just written from checked batches.
        return Err(CleanError::Batch {
            file: cut.file,
            pos: cut.kept,
            reason: cut.reason,
        });
    }
    segment.sync().map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::records::tests::keyed_batch;
    use kafka_protocol::records::Compression;
    use std::sync::atomic::AtomicBool;

    fn scratch(name: &str) -> PathBuf {
        gyre_testkit::scratch_dir(name)
    }

    fn segment_file(dir: &Path, base: i64, batches: &[Vec<u8>], age_secs: u64) -> SegmentFile {
        let path = dir.join(format!("{base:020}.log"));
        let bytes: Vec<u8> = batches.concat();
        fs::write(&path, &bytes).unwrap();
        let modified = SystemTime::now() - std::time::Duration::from_secs(age_secs);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        SegmentFile {
            base,
            path,
            size: bytes.len() as u64,
            modified,
        }
    }

    /// The (offset, key, value) of every record in the log file `path`.
    fn records_of(path: &Path) -> Vec<(i64, String, Option<String>)> {
        let bytes = fs::read(path).unwrap();
        let mut out = Vec::new();
        let mut buf = bytes::Bytes::from(bytes);
        while !buf.is_empty() {
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).unwrap();
            for r in set.records {
                let s = |b: Option<bytes::Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                out.push((r.offset, s(r.key).unwrap(), s(r.value)));
            }
        }
        out
    }

    #[test]
    fn a_pass_keeps_each_keys_last_record_and_tombstones_until_their_horizon() {
        let dir = scratch("cleaner-pass");
        let seg = |base, recs: &[(Option<&str>, Option<&str>)], c| keyed_batch(base, recs, c);
        // Two old segments and a younger one.
        let s0 = segment_file(
            &dir,
            0,
            &[
                seg(
                    0,
                    &[(Some("a"), Some("a0")), (Some("b"), Some("b1"))],
                    Compression::None,
                ),
                seg(2, &[(Some("c"), Some("c2"))], Compression::Gzip),
            ],
            3600,
        );
        let s1 = segment_file(
            &dir,
            3,
            &[seg(
                3,
                &[(Some("a"), Some("a3")), (Some("c"), None)],
                Compression::Lz4,
            )],
            3600,
        );
        let s2 = segment_file(
            &dir,
            5,
            &[seg(
                5,
                &[(Some("b"), None), (Some("d"), Some("d6"))],
                Compression::None,
            )],
            0,
        );
        let stop = AtomicBool::new(false);
        let mut map = OffsetMap::new(100);
        let all = [s0, s1, s2];
        assert_eq!(
            build_map(
                &all,
                0,
                7,
                &AbortedSet::default(),
                &mut map,
                &Pace::unthrottled(&stop)
            )
            .unwrap(),
            7
        );
        assert_eq!(map.latest(b"a"), Some(3));
        assert_eq!(map.latest(b"b"), Some(5));
        let out = &dir.join("out");
        fs::create_dir(out).unwrap();
        let pass = Pass {
            map: &map,
            end: 7,
            aborted: &AbortedSet::default(),
            tombstone_horizon: SystemTime::now() - std::time::Duration::from_secs(60),
            delete_retention: std::time::Duration::from_secs(60),
            producers_last: &HashMap::new(),
        };
        let mut got = Vec::new();
        for s in &all {
            let path = out.join(format!("{:020}.log", s.base));
            clean_group(
                std::slice::from_ref(s),
                &path,
                &pass,
                &mut TxnsSeen::default(),
                &Pace::unthrottled(&stop),
            )
            .unwrap();
            assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), s.modified);
            got.extend(records_of(&path));
        }
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            got,
            [
                // "a0" and "b1" superseded, "c2" by c's tombstone, which
                // is old enough to go; b's tombstone is young and stays.
                (3, "a".into(), s("a3")),
                (5, "b".into(), None),
                (6, "d".into(), s("d6")),
            ]
        );
        // The first segment's batches: the first kept nothing of
        // [0, 1] and went; the gzip one went too. Its file is empty.
        assert_eq!(
            fs::metadata(out.join(format!("{:020}.log", 0)))
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn a_batch_left_with_one_record_of_many_passes_the_logs_checks() {
        let dir = scratch("cleaner-one-left");
        let recs: Vec<(Option<&str>, Option<&str>)> =
            (0..20).map(|_| (Some("same"), Some("v"))).collect();
        let seg = segment_file(&dir, 0, &[keyed_batch(0, &recs, Compression::Zstd)], 0);
        let stop = AtomicBool::new(false);
        let mut map = OffsetMap::new(100);
        build_map(
            std::slice::from_ref(&seg),
            0,
            20,
            &AbortedSet::default(),
            &mut map,
            &Pace::unthrottled(&stop),
        )
        .unwrap();
        let out = dir.join("out");
        fs::create_dir(&out).unwrap();
        let pass = Pass {
            map: &map,
            end: 20,
            aborted: &AbortedSet::default(),
            tombstone_horizon: SystemTime::UNIX_EPOCH,
            delete_retention: std::time::Duration::MAX,
            producers_last: &HashMap::new(),
        };
        clean_group(
            std::slice::from_ref(&seg),
            &out.join(format!("{:020}.log", 0)),
            &pass,
            &mut TxnsSeen::default(),
            &Pace::unthrottled(&stop),
        )
        .unwrap();
        assert_eq!(
            records_of(&out.join(format!("{:020}.log", 0))),
            [(19, "same".into(), Some("v".into()))]
        );
        // One record covering offsets 0..=19: the log's own checks (a
        // full scan, as after a crash) take it.
        index_cleaned(&out, 0, 100, 20).unwrap();
    }

    #[test]
    fn a_damaged_batch_fails_the_pass_instead_of_being_copied() {
        let dir = scratch("cleaner-damaged");
        let recs = [(Some("k"), Some("value")), (Some("k"), Some("later"))];
        let mut b = keyed_batch(0, &recs, Compression::None);
        let last = b.len() - 3;
        b[last] ^= 0x20; // inside the last value: the records still decode
        let seg = segment_file(&dir, 0, &[b], 0);
        let stop = AtomicBool::new(false);
        let mut map = OffsetMap::new(10);
        let e = build_map(
            std::slice::from_ref(&seg),
            0,
            2,
            &AbortedSet::default(),
            &mut map,
            &Pace::unthrottled(&stop),
        )
        .unwrap_err();
        assert!(e.to_string().contains("CRC"), "{e}");
        let pass = Pass {
            map: &map,
            end: 2,
            aborted: &AbortedSet::default(),
            tombstone_horizon: SystemTime::UNIX_EPOCH,
            delete_retention: std::time::Duration::MAX,
            producers_last: &HashMap::new(),
        };
        let e = clean_group(
            std::slice::from_ref(&seg),
            &dir.join("copy.log"),
            &pass,
            &mut TxnsSeen::default(),
            &Pace::unthrottled(&stop),
        )
        .unwrap_err();
        assert!(matches!(e, CleanError::Batch { pos: 0, .. }), "{e}");
    }

    #[test]
    fn runs_merge_consecutive_segments_up_to_the_segment_size_and_the_index_reach() {
        let seg = |base, size| SegmentFile {
            base,
            path: PathBuf::new(),
            size,
            modified: SystemTime::UNIX_EPOCH,
        };
        let segs = [
            seg(0, 100),
            seg(10, 300),
            seg(20, 700),
            seg(30, 50),
            seg(40, 50),
        ];
        assert_eq!(
            group_by_size(&segs, 50, 400),
            vec![vec![0, 1], vec![2], vec![3, 4]]
        );
        // Never more offsets in a run than an index entry reaches.
        let far = [seg(0, 1), seg(1 << 30, 1), seg((1 << 31) - 1, 1)];
        assert_eq!(
            group_by_size(&far, (1 << 31) + 5, 1 << 20),
            vec![vec![0, 1], vec![2]]
        );
    }

    #[test]
    fn aborted_transactions_records_go_and_do_not_hide_committed_ones() {
        let dir = scratch("cleaner-aborted");
        let committed = keyed_batch(0, &[(Some("k"), Some("committed"))], Compression::None);
        let mut aborted = keyed_batch(1, &[(Some("k"), Some("aborted"))], Compression::None);
        batch::set_producer(&mut aborted, 7, 0, 0);
        batch::set_transactional(&mut aborted);
        let mut marker = batch::build_marker(7, 0, batch::Marker::Abort, 0, 1_000);
        batch::set_base_offset(&mut marker, 2);
        let seg = segment_file(&dir, 0, &[committed, aborted, marker], 0);
        let set = AbortedSet::new(&[AbortedTxn {
            producer_id: 7,
            first_offset: 1,
            last_offset: 2,
        }]);
        let stop = AtomicBool::new(false);
        let mut map = OffsetMap::new(10);
        build_map(
            std::slice::from_ref(&seg),
            0,
            3,
            &set,
            &mut map,
            &Pace::unthrottled(&stop),
        )
        .unwrap();
        assert_eq!(
            map.latest(b"k"),
            Some(0),
            "the aborted write supersedes nothing"
        );
        let out = &dir.join("copy.log");
        let pass = Pass {
            map: &map,
            end: 3,
            aborted: &set,
            tombstone_horizon: SystemTime::UNIX_EPOCH,
            delete_retention: std::time::Duration::MAX,
            producers_last: &HashMap::new(),
        };
        let stats = clean_group(
            std::slice::from_ref(&seg),
            out,
            &pass,
            &mut TxnsSeen::default(),
            &Pace::unthrottled(&stop),
        )
        .unwrap();
        // Kept: the committed record and the abort marker.
        assert_eq!((stats.kept, stats.removed), (2, 1));
        let bytes = fs::read(out).unwrap();
        let parts = batch::split(&bytes).unwrap();
        assert_eq!(parts.len(), 2, "the committed batch and the marker");
        assert!(parts[1].0.is_control());
    }

    /// The rules of a pass made now over offsets below `end`, keeping
    /// tombstones and markers for `retention`.
    fn pass_now<'a>(
        map: &'a OffsetMap,
        end: i64,
        aborted: &'a AbortedSet,
        retention: std::time::Duration,
        producers_last: &'a HashMap<i64, i64>,
    ) -> Pass<'a> {
        Pass {
            map,
            end,
            aborted,
            tombstone_horizon: SystemTime::now()
                .checked_sub(retention)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            delete_retention: retention,
            producers_last,
        }
    }

    /// `seg` copied to `out` under `pass`: the copy, and when what it kept
    /// could go.
    fn copy_under(
        seg: &SegmentFile,
        out: PathBuf,
        pass: &Pass<'_>,
    ) -> (SegmentFile, Option<SystemTime>) {
        let stop = AtomicBool::new(false);
        let stats = clean_group(
            std::slice::from_ref(seg),
            &out,
            pass,
            &mut TxnsSeen::default(),
            &Pace::unthrottled(&stop),
        )
        .unwrap();
        let size = fs::metadata(&out).unwrap().len();
        let copied = SegmentFile {
            base: seg.base,
            path: out,
            size,
            modified: seg.modified,
        };
        (copied, stats.removable_at)
    }

    /// The control batches of the log file `path`: (offset, producer).
    fn markers_of(path: &Path) -> Vec<(i64, i64)> {
        let bytes = fs::read(path).unwrap();
        batch::split(&bytes)
            .unwrap()
            .iter()
            .filter(|(h, _)| h.is_control())
            .map(|(h, _)| (h.base_offset, h.producer_id))
            .collect()
    }

    #[test]
    fn a_marker_goes_once_nothing_of_its_transaction_is_left_its_horizon_passed_and_no_index_names_it(
    ) {
        let dir = scratch("cleaner-markers");
        let txn = |base, producer, key: &str, value: &str| {
            let mut b = keyed_batch(base, &[(Some(key), Some(value))], Compression::None);
            batch::set_producer(&mut b, producer, 0, 0);
            batch::set_transactional(&mut b);
            b
        };
        let marker = |base, producer, kind| {
            let mut m = batch::build_marker(producer, 0, kind, 0, 1_000);
            batch::set_base_offset(&mut m, base);
            m
        };
        let plain = keyed_batch(10, &[(Some("z"), Some("plain"))], Compression::None);
        let batches = [
            // Producer 7: a transaction whose record a later one of its
            // own supersedes, then that later one.
            txn(0, 7, "k", "1"),
            marker(1, 7, batch::Marker::Commit),
            txn(2, 7, "k", "2"),
            marker(3, 7, batch::Marker::Commit),
            // Producer 8: aborted (and it wrote again later, elsewhere).
            txn(4, 8, "a", "x"),
            marker(5, 8, batch::Marker::Abort),
            // Producer 11: committed, superseded by a plain write, and its
            // marker is the last the log has from it.
            txn(6, 11, "z", "1"),
            marker(7, 11, batch::Marker::Commit),
            // Producer 12: committed and superseded; forgotten (expired).
            txn(8, 12, "z", "2"),
            marker(9, 12, batch::Marker::Commit),
            plain,
        ];
        let hour = std::time::Duration::from_secs(3_600);
        let seg = segment_file(&dir, 0, &batches, 3_600);
        let indexed = AbortedSet::new(&[AbortedTxn {
            producer_id: 8,
            first_offset: 4,
            last_offset: 5,
        }]);
        let stop = AtomicBool::new(false);
        let mut map = OffsetMap::new(10);
        build_map(
            std::slice::from_ref(&seg),
            0,
            11,
            &indexed,
            &mut map,
            &Pace::unthrottled(&stop),
        )
        .unwrap();
        let producers_last = HashMap::from([(7, 2), (8, 40), (11, 6)]);
        let copy = |seg: &SegmentFile, retention, aborted: &AbortedSet, name: &str| {
            let pass = pass_now(&map, 11, aborted, retention, &producers_last);
            copy_under(seg, dir.join(name), &pass)
        };
        // Within delete.retention.ms every marker stays, and a pass when
        // the oldest segment's horizon passes could remove some.
        let (young, removable) = copy(&seg, 2 * hour, &indexed, "young.log");
        assert_eq!(
            markers_of(&young.path),
            [(1, 7), (3, 7), (5, 8), (7, 11), (9, 12)]
        );
        assert_eq!(removable, Some(seg.modified + 2 * hour));
        // Past it: 7's first commit (its record superseded) and 12's
        // (forgotten producer, record superseded) go; 7's second keeps its
        // record; 11's is its producer's last word; 8's abort stays while
        // the index names its transaction, with its records gone.
        let before = SystemTime::now();
        let (old, removable) = copy(&seg, std::time::Duration::ZERO, &indexed, "old.log");
        assert_eq!(markers_of(&old.path), [(3, 7), (5, 8), (7, 11)]);
        assert!(
            removable.is_some_and(|at| at >= before && at <= SystemTime::now()),
            "the next pass may remove the abort: {removable:?}"
        );
        let marker_offsets: Vec<i64> = markers_of(&old.path).iter().map(|m| m.0).collect();
        let kept: Vec<(i64, String)> = records_of(&old.path)
            .into_iter()
            .filter(|r| !marker_offsets.contains(&r.0))
            .map(|r| (r.0, r.1))
            .collect();
        assert_eq!(kept, [(2, "k".to_owned()), (10, "z".to_owned())]);
        // The next pass, after the swap dropped the index entry: the
        // abort marker goes, and nothing left could go by waiting.
        let none = AbortedSet::default();
        let (again, removable) = copy(&old, std::time::Duration::ZERO, &none, "again.log");
        assert_eq!(markers_of(&again.path), [(3, 7), (7, 11)]);
        assert_eq!(removable, None);
        // Unless it is its producer's last word.
        let eight_last = HashMap::from([(7, 2), (8, 4), (11, 6)]);
        let pass = pass_now(&map, 11, &none, std::time::Duration::ZERO, &eight_last);
        let (last_word, _) = copy_under(&old, dir.join("last-word.log"), &pass);
        assert_eq!(markers_of(&last_word.path), [(3, 7), (5, 8), (7, 11)]);
        // The copies read back whole, their gaps below the cleaned offset.
        fs::rename(&again.path, dir.join(format!("{:020}.log", 0))).unwrap();
        index_cleaned(&dir, 0, 4096, 11).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_young_tombstone_says_when_a_pass_could_remove_it() {
        let dir = scratch("cleaner-young-tombstone");
        let batches = [
            keyed_batch(0, &[(Some("gone"), Some("v"))], Compression::None),
            keyed_batch(1, &[(Some("gone"), None)], Compression::None),
            keyed_batch(2, &[(Some("kept"), Some("v"))], Compression::None),
        ];
        let seg = segment_file(&dir, 0, &batches, 60);
        let stop = AtomicBool::new(false);
        let mut map = OffsetMap::new(10);
        let none = AbortedSet::default();
        build_map(
            std::slice::from_ref(&seg),
            0,
            3,
            &none,
            &mut map,
            &Pace::unthrottled(&stop),
        )
        .unwrap();
        let nobody = HashMap::new();
        let pass_with = |retention: std::time::Duration, name: &str| {
            let pass = pass_now(&map, 3, &none, retention, &nobody);
            let (copy, removable) = copy_under(&seg, dir.join(name), &pass);
            (records_of(&copy.path).len(), removable)
        };
        let ten_minutes = std::time::Duration::from_secs(600);
        assert_eq!(
            pass_with(ten_minutes, "young.log"),
            (2, Some(seg.modified + ten_minutes)),
            "the tombstone stays until its horizon"
        );
        assert_eq!(
            pass_with(std::time::Duration::from_secs(1), "old.log"),
            (1, None),
            "past it, it goes, and nothing is left to wait for"
        );
        assert_eq!(
            pass_with(std::time::Duration::MAX, "forever.log"),
            (2, None),
            "a retention too long to reach leaves nothing to wait for"
        );
    }

    #[test]
    fn a_throttled_pass_reads_and_writes_no_faster_than_its_rate() {
        let dir = scratch("cleaner-throttle");
        let value = "v".repeat(1_000);
        let batches: Vec<Vec<u8>> = (0..200)
            .map(|i| {
                let key = format!("k{}", i % 10);
                keyed_batch(i, &[(Some(&key), Some(&value))], Compression::None)
            })
            .collect();
        let seg = segment_file(&dir, 0, &batches, 0);
        let stop = AtomicBool::new(false);
        let rate = 1_000_000;
        let pace = Pace::new(&stop, Some(rate));
        let started = std::time::Instant::now();
        let mut map = OffsetMap::new(100);
        build_map(
            std::slice::from_ref(&seg),
            0,
            200,
            &AbortedSet::default(),
            &mut map,
            &pace,
        )
        .unwrap();
        let pass = Pass {
            map: &map,
            end: 200,
            aborted: &AbortedSet::default(),
            tombstone_horizon: SystemTime::UNIX_EPOCH,
            delete_retention: std::time::Duration::MAX,
            producers_last: &HashMap::new(),
        };
        let out = dir.join("copy.log");
        let stats = clean_group(
            std::slice::from_ref(&seg),
            &out,
            &pass,
            &mut TxnsSeen::default(),
            &pace,
        )
        .unwrap();
        // Read twice (map, copy) and written once: the pass cannot have
        // taken less than those bytes at the rate (a sleep never ends
        // early).
        let bytes = seg.size * 2 + stats.written;
        let least = std::time::Duration::from_secs_f64(bytes as f64 / rate as f64);
        assert!(
            started.elapsed() >= least,
            "{:?} < {least:?}",
            started.elapsed()
        );
        assert_eq!(stats.kept, 10);
    }

    #[test]
    fn the_map_stops_at_the_batch_that_finds_no_room_and_the_pass_keeps_all_from_there() {
        let dir = scratch("cleaner-map");
        let b = |base, k: &str| keyed_batch(base, &[(Some(k), Some("v"))], Compression::None);
        let s0 = segment_file(&dir, 0, &[b(0, "a"), b(1, "b"), b(2, "a")], 0);
        let s1 = segment_file(&dir, 3, &[b(3, "c"), b(4, "a"), b(5, "c")], 0);
        let stop = AtomicBool::new(false);
        let mut map = OffsetMap::new(2);
        let segs = [s0.clone(), s1.clone()];
        let end = build_map(
            &segs,
            0,
            6,
            &AbortedSet::default(),
            &mut map,
            &Pace::unthrottled(&stop),
        )
        .unwrap();
        assert_eq!(end, 3, "c finds no room");
        let pass = Pass {
            map: &map,
            end,
            aborted: &AbortedSet::default(),
            tombstone_horizon: SystemTime::UNIX_EPOCH,
            delete_retention: std::time::Duration::MAX,
            producers_last: &HashMap::new(),
        };
        let out = dir.join("out.log");
        clean_group(
            &segs,
            &out,
            &pass,
            &mut TxnsSeen::default(),
            &Pace::unthrottled(&stop),
        )
        .unwrap();
        // Below 3, a's older record goes; from 3 on everything stays,
        // though "a" at 4 supersedes 2 (the next pass sees to that).
        let offsets: Vec<i64> = records_of(&out).iter().map(|r| r.0).collect();
        assert_eq!(offsets, [1, 2, 3, 4, 5]);
        // A map with no room for the first batch's keys cannot progress.
        let two = keyed_batch(
            10,
            &[(Some("x"), Some("1")), (Some("y"), Some("2"))],
            Compression::None,
        );
        let s2 = segment_file(&dir, 10, &[two], 0);
        let mut tiny = OffsetMap::new(1);
        let e = build_map(
            &[s2],
            10,
            12,
            &AbortedSet::default(),
            &mut tiny,
            &Pace::unthrottled(&stop),
        )
        .unwrap_err();
        assert!(matches!(e, CleanError::MapTooSmall { base: 10, .. }), "{e}");
    }
}
