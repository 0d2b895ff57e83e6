//! The transaction coordinator's durable state, in one append-only
//! [`record_file`](crate::record_file) (`<data>/transactions.log`): a
//! record per change of a transactional id that must outlive a crash,
//! each the id's whole [`Durable`] state, written and fdatasynced before
//! the client hears of it. The newest record per id wins at start; the
//! file is rewritten compactly once it holds many more records than ids
//! (at start, and on the coordinator's tick while it runs: a transaction
//! writes several records, so a busy producer would otherwise grow it
//! without bound).
//!
//! Each record is fdatasynced as the broker's flush policy syncs its
//! logs: under `every-batch` before the client hears (a decision as
//! durable as the records it ends), under `interval` on the coordinator's
//! next tick once the interval has passed (as the logs are; the markers
//! and records a power cut could lose are lost with the decision), under
//! `never` by the page cache. A killed process loses nothing either way:
//! the writes are in the page cache.
//!
//! Kafka keeps the same facts in its `__transaction_state` topic. Written
//! are: the producer id and epoch a transactional id was given
//! (InitProducerId), so a restarted broker still fences the old epoch and
//! hands the next one out; and a decision to commit or abort with its
//! partitions and (for a commit) the offsets it commits, before any
//! marker is written, so a crash between markers ends the transaction
//! the same way in every partition when the broker comes back. And, as
//! Kafka's coordinator does, a transaction open now ([`Open`]): the
//! partitions it has added (AddPartitionsToTxn), that it commits a
//! group's offsets (AddOffsetsToTxn), the offsets it carries
//! (TxnOffsetCommit; Kafka writes these to its offsets topic) and when
//! it began, so a broker stopped or killed under a producer goes on with
//! its transaction when it comes back (the producer commits or aborts it;
//! its timeout still counts from its start). An id forgotten (unused for
//! [`EXPIRY`](super::EXPIRY)) gets a record with producer id -1, a
//! tombstone.

use crate::log::now_ms;
use crate::record_file::{self, get_str, put_str, RecordFile};
use crate::server::groups::offsets::{Committed, OffsetKey};
use crate::writer::FlushPolicy;
use bytes::{Buf, BufMut};
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// The producer id of a record that forgets its transactional id.
const TOMBSTONE: i64 = -1;

/// Where a transactional id's transaction stands, as far as a restart
/// needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No transaction is being ended.
    None,
    /// Commit markers are being written.
    Commit,
    /// Abort markers are being written.
    Abort,
}

/// What is kept of one transactional id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durable {
    /// Its producer id.
    pub producer_id: i64,
    /// The producer's current epoch.
    pub epoch: i16,
    /// The transaction timeout the producer asked for (ms).
    pub timeout_ms: i32,
    /// A decision whose markers may not all be written yet.
    pub decision: Decision,
    /// The partitions the decision ends: (topic, index).
    pub partitions: Vec<(String, i32)>,
    /// The offsets a commit decision commits.
    pub offsets: Vec<(OffsetKey, Committed)>,
}

/// A transaction open now: what a restart needs to go on with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The partitions it has added: (topic, index).
    pub partitions: BTreeSet<(String, i32)>,
    /// The offsets it commits, if it commits.
    pub offsets: Vec<(OffsetKey, Committed)>,
    /// When it began, by the monotonic clock (for its timeout; not
    /// written: a restart derives it from `started_ms`).
    pub started: Instant,
    /// The same moment by the wall clock (ms): written, and named by
    /// DescribeTransactions.
    pub started_ms: i64,
}

impl Open {
    /// A transaction beginning now.
    pub fn now() -> Self {
        Open {
            partitions: BTreeSet::new(),
            offsets: Vec::new(),
            started: Instant::now(),
            started_ms: now_ms(),
        }
    }
}

/// The monotonic moment the wall clock's `started_ms` was, as near as
/// this process can say (now, if it was before the host booted).
fn since_wall_clock(started_ms: i64) -> Instant {
    let ago = Duration::from_millis((now_ms() - started_ms).max(0) as u64);
    let now = Instant::now();
    now.checked_sub(ago).unwrap_or(now)
}

/// A transactional id's state as kept: the durable part, and the
/// transaction it has open.
pub type Kept = (Durable, Option<Open>);

/// The file and what it says.
#[derive(Debug)]
pub struct TxnStore {
    file: RecordFile,
    records: usize,
    buf: Vec<u8>,
    flush: FlushPolicy,
    /// Written since the last fdatasync.
    dirty: bool,
    last_sync: Instant,
}

impl TxnStore {
    /// Opens (or creates) `<dir>/transactions.log`, synced per `flush`;
    /// returns it and each transactional id's newest state.
    pub fn open(dir: &Path, flush: FlushPolicy) -> io::Result<(Self, HashMap<String, Kept>)> {
        let path = dir.join("transactions.log");
        let (file, records, all) = record_file::open_keyed(&path, |payload| {
            let (id, state) = decode(payload)?;
            Some((id, (state.0.producer_id != TOMBSTONE).then_some(state)))
        })?;
        let mut store = TxnStore {
            file,
            records,
            buf: Vec::new(),
            flush,
            dirty: false,
            last_sync: Instant::now(),
        };
        if record_file::worth_compacting(store.records, all.len()) {
            store.compact(&all)?;
        }
        Ok((store, all))
    }

    /// Records `state` and the transaction `open` as `id`'s: one write,
    /// and an fdatasync under `every-batch`.
    pub fn save(&mut self, id: &str, state: &Durable, open: Option<&Open>) -> io::Result<()> {
        self.buf.clear();
        encode(&mut self.buf, id, state, open);
        self.file.append(&self.buf)?;
        self.records += 1;
        self.dirty = true;
        if self.flush == FlushPolicy::EveryBatch {
            self.sync()?;
        }
        Ok(())
    }

    /// Under `interval`, fdatasyncs what was written once the interval
    /// has passed since the last.
    pub fn sync_if_due(&mut self, now: Instant) -> io::Result<()> {
        match self.flush {
            FlushPolicy::Interval(every) if self.dirty && now >= self.last_sync + every => {
                self.sync()
            }
            _ => Ok(()),
        }
    }

    /// Whether records were written since the last fdatasync.
    pub fn unsynced(&self) -> bool {
        self.dirty
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync()?;
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Durably forgets `id` (a tombstone record).
    pub fn forget(&mut self, id: &str) -> io::Result<()> {
        let gone = Durable {
            producer_id: TOMBSTONE,
            epoch: 0,
            timeout_ms: 0,
            decision: Decision::None,
            partitions: Vec::new(),
            offsets: Vec::new(),
        };
        self.save(id, &gone, None)
    }

    fn compact(&mut self, all: &HashMap<String, Kept>) -> io::Result<()> {
        self.rewrite(
            all.iter()
                .map(|(id, (state, open))| (id.as_str(), state, open.as_ref())),
        )
    }

    /// Whether the file holds so many more records than the `live` ids
    /// that it is worth rewriting (see [`rewrite`](Self::rewrite)).
    pub fn worth_rewriting(&self, live: usize) -> bool {
        // A broken file takes nothing until it is written whole again.
        self.file.broken() || record_file::worth_compacting(self.records, live)
    }

    /// Replaces the file with one record per id of `all` (every id's
    /// current state), through a synced temporary file and a rename: what
    /// was not yet synced is durable after it.
    pub fn rewrite<'a>(
        &mut self,
        all: impl Iterator<Item = (&'a str, &'a Durable, Option<&'a Open>)>,
    ) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut records = 0;
        for (id, state, open) in all {
            encode(&mut buf, id, state, open);
            records += 1;
        }
        self.file.rewrite(&buf)?;
        self.records = records;
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Records written since the file was last rewritten (or read).
    #[cfg(test)]
    pub fn records(&self) -> usize {
        self.records
    }
}

/// Written after the offsets when a transaction is open (records
/// without it, and those of earlier versions, have none).
const OPEN: u8 = 1;

fn encode(buf: &mut Vec<u8>, id: &str, d: &Durable, open: Option<&Open>) {
    let start = record_file::begin(buf);
    put_str(buf, Some(id));
    buf.put_i64(d.producer_id);
    buf.put_i16(d.epoch);
    buf.put_i32(d.timeout_ms);
    buf.put_u8(match d.decision {
        Decision::None => 0,
        Decision::Commit => 1,
        Decision::Abort => 2,
    });
    put_partitions(buf, &d.partitions);
    put_offsets(buf, &d.offsets);
    if let Some(open) = open {
        buf.put_u8(OPEN);
        buf.put_i64(open.started_ms);
        put_partitions(buf, &open.partitions);
        put_offsets(buf, &open.offsets);
    }
    record_file::finish(buf, start);
}

fn put_partitions<'a>(
    buf: &mut Vec<u8>,
    partitions: impl IntoIterator<Item = &'a (String, i32), IntoIter: ExactSizeIterator>,
) {
    let partitions = partitions.into_iter();
    buf.put_u32(partitions.len() as u32);
    for (topic, index) in partitions {
        put_str(buf, Some(topic));
        buf.put_i32(*index);
    }
}

fn put_offsets(buf: &mut Vec<u8>, offsets: &[(OffsetKey, Committed)]) {
    buf.put_u32(offsets.len() as u32);
    for ((group, topic, partition), c) in offsets {
        put_str(buf, Some(group));
        put_str(buf, Some(topic));
        buf.put_i32(*partition);
        buf.put_i64(c.offset);
        put_str(buf, c.metadata.as_deref());
    }
}

fn decode(mut p: &[u8]) -> Option<(String, Kept)> {
    let id = get_str(&mut p)??;
    if p.len() < 8 + 2 + 4 + 1 {
        return None;
    }
    let producer_id = p.get_i64();
    let epoch = p.get_i16();
    let timeout_ms = p.get_i32();
    let decision = match p.get_u8() {
        0 => Decision::None,
        1 => Decision::Commit,
        2 => Decision::Abort,
        _ => return None,
    };
    let partitions = get_partitions(&mut p)?;
    let offsets = get_offsets(&mut p)?;
    let open = match p.first() {
        None => None,
        // The mark and the start (ms) at least.
        Some(&OPEN) if p.len() > 8 => {
            p.advance(1);
            let started_ms = p.get_i64();
            Some(Open {
                partitions: get_partitions(&mut p)?.into_iter().collect(),
                offsets: get_offsets(&mut p)?,
                started: since_wall_clock(started_ms),
                started_ms,
            })
        }
        Some(_) => return None,
    };
    let state = Durable {
        producer_id,
        epoch,
        timeout_ms,
        decision,
        partitions,
        offsets,
    };
    Some((id, (state, open)))
}

fn get_partitions(p: &mut &[u8]) -> Option<Vec<(String, i32)>> {
    if p.len() < 4 {
        return None;
    }
    let mut partitions = Vec::new();
    for _ in 0..p.get_u32() {
        let topic = get_str(p)??;
        if p.len() < 4 {
            return None;
        }
        partitions.push((topic, p.get_i32()));
    }
    Some(partitions)
}

fn get_offsets(p: &mut &[u8]) -> Option<Vec<(OffsetKey, Committed)>> {
    if p.len() < 4 {
        return None;
    }
    let mut offsets = Vec::new();
    for _ in 0..p.get_u32() {
        let group = get_str(p)??;
        let topic = get_str(p)??;
        if p.len() < 12 {
            return None;
        }
        let partition = p.get_i32();
        let offset = p.get_i64();
        let metadata = get_str(p)?;
        // The store keeps no epoch: an offset committed with a
        // transaction that a restart carried over is not checked by its
        // reader.
        let leader_epoch = -1;
        offsets.push((
            (group, topic, partition),
            Committed {
                offset,
                leader_epoch,
                metadata,
            },
        ));
    }
    Some(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_state_per_id_survives_a_reopen() {
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-txnstore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = Durable {
            producer_id: 5,
            epoch: 0,
            timeout_ms: 60_000,
            decision: Decision::None,
            partitions: vec![],
            offsets: vec![],
        };
        let deciding = Durable {
            epoch: 1,
            decision: Decision::Commit,
            partitions: vec![("t".into(), 0), ("u".into(), 3)],
            offsets: vec![(
                ("g".into(), "t".into(), 0),
                Committed {
                    offset: 10,
                    leader_epoch: -1,
                    metadata: Some("m".into()),
                },
            )],
            ..first.clone()
        };
        {
            let (mut store, all) = TxnStore::open(&dir, FlushPolicy::EveryBatch).unwrap();
            assert!(all.is_empty());
            store.save("a", &first, None).unwrap();
            store.save("b", &first, None).unwrap();
            store.save("a", &deciding, None).unwrap();
            store.save("c", &first, None).unwrap();
            store.forget("c").unwrap();
        }
        let (_, all) = TxnStore::open(&dir, FlushPolicy::Never).unwrap();
        assert_eq!(all["a"], (deciding, None));
        assert_eq!(all["b"], (first, None));
        assert!(!all.contains_key("c"), "forgotten");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn records_are_synced_as_the_flush_policy_says() {
        use std::time::Duration;
        let dir = gyre_testkit::scratch_root().join(format!("gyre-txnsync-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = Durable {
            producer_id: 1,
            epoch: 0,
            timeout_ms: 1000,
            decision: Decision::None,
            partitions: vec![],
            offsets: vec![],
        };
        let (mut every, _) = TxnStore::open(&dir, FlushPolicy::EveryBatch).unwrap();
        every.save("a", &state, None).unwrap();
        assert!(!every.unsynced(), "synced before the answer");
        drop(every);
        let second = Duration::from_secs(1);
        let (mut interval, _) = TxnStore::open(&dir, FlushPolicy::Interval(second)).unwrap();
        interval.save("a", &state, None).unwrap();
        assert!(interval.unsynced());
        interval.sync_if_due(Instant::now()).unwrap();
        assert!(interval.unsynced(), "not yet due");
        interval.sync_if_due(Instant::now() + second).unwrap();
        assert!(!interval.unsynced(), "synced once due");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_open_transaction_survives_a_reopen_with_its_start_and_every_cut_is_refused() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-txnopen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = Durable {
            producer_id: 9,
            epoch: 3,
            timeout_ms: 60_000,
            decision: Decision::None,
            partitions: vec![],
            offsets: vec![],
        };
        let mut open = Open::now();
        open.started_ms -= 20_000; // began 20 s ago
        open.partitions.insert(("t".into(), 1));
        open.partitions.insert(("u".into(), 0));
        open.offsets.push((
            ("g".into(), "in".into(), 2),
            Committed {
                offset: 77,
                leader_epoch: -1,
                metadata: None,
            },
        ));
        {
            let (mut store, _) = TxnStore::open(&dir, FlushPolicy::EveryBatch).unwrap();
            store.save("a", &state, Some(&open)).unwrap();
            store.save("b", &state, Some(&open)).unwrap();
            store.save("b", &state, None).unwrap(); // ended
        }
        let (_, all) = TxnStore::open(&dir, FlushPolicy::Never).unwrap();
        let (kept, back) = &all["a"];
        assert_eq!(kept, &state);
        let back = back.as_ref().expect("still open");
        assert_eq!(
            (&back.partitions, &back.offsets, back.started_ms),
            (&open.partitions, &open.offsets, open.started_ms)
        );
        let ago = back.started.elapsed();
        assert!(
            ago >= Duration::from_secs(19) && ago < Duration::from_secs(60),
            "its timeout counts from its start: {ago:?}"
        );
        assert_eq!(all["b"], (state.clone(), None));
        std::fs::remove_dir_all(&dir).unwrap();

        // Every cut of the record is refused, but for the one that is
        // exactly the record of an id with no transaction open.
        let payload = |open: Option<&Open>| {
            let mut buf = Vec::new();
            encode(&mut buf, "a", &state, open);
            buf.split_off(8) // past the record's length and CRC
        };
        let whole = payload(Some(&open));
        let decoded = decode(&whole).expect("whole").1 .1;
        assert_eq!(decoded.map(|o| o.partitions), Some(open.partitions));
        let without = payload(None).len();
        for cut in (0..whole.len()).filter(|&c| c != without) {
            assert!(decode(&whole[..cut]).is_none(), "cut at {cut}");
        }
    }
}
