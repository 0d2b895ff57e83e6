//! Producer ids, each handed out once across restarts and clock steps.
//! Uses `std`, the folder sync and `tracing`.
//!
//! A partition remembers each idempotent producer's last five batches by
//! their sequence numbers, for a day. An id handed out twice would let a
//! new producer's first batch (sequence 0) be taken for a retry of the old
//! producer's, answered with the old offsets and never written. So, as
//! Kafka's controller hands out blocks of ids recorded in its metadata log,
//! the broker records in `<data>/producer-ids` the end of the block it
//! hands out from (synced, before any id of it is given), and a start
//! begins past it. The first start of a folder without the file begins past
//! the clock's milliseconds and every id the partitions remember.
//!
//! A block is 2^20 ids: a broker records one at start and, past half of
//! it (half a million InitProducerIds), the next on a thread of its own,
//! so no event loop waits on the disk. Were the block used up before that
//! landed (half a million ids within one fsync), ids are refused (the
//! caller answers a retriable error) until it has. Each start skips what
//! its last block left unused, about a million ids, so ids stay near the
//! clock's milliseconds rather than race ahead of them.

use crate::folder_sync::{self, Durability};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The file's name in the data folder.
pub const FILE: &str = "producer-ids";

/// Ids a reservation covers.
const BLOCK: i64 = 1 << 20;

/// The broker's producer ids.
#[derive(Debug)]
pub struct ProducerIds {
    next: AtomicI64,
    /// Ids below this are recorded as handed out (or to be).
    reserved: AtomicI64,
    /// A block is being recorded.
    extending: AtomicBool,
    /// Serializes writes of the file.
    writing: Mutex<()>,
    file: PathBuf,
}

impl ProducerIds {
    /// Reads the reservation in `dir` and records the next block, synced:
    /// ids start past the recorded end, past the clock's milliseconds and
    /// at `floor` or later (one past every id still remembered).
    pub fn open(dir: &Path, floor: i64) -> io::Result<Arc<ProducerIds>> {
        let file = dir.join(FILE);
        let recorded = match std::fs::read_to_string(&file) {
            Ok(text) => parse(&text).unwrap_or_else(|| {
                tracing::warn!(file = %file.display(), "unreadable producer id reservation: starting past the clock and the ids the partitions remember");
                0
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as i64);
        let start = recorded.max(clock).max(floor).max(0);
        tracing::debug!(start, recorded, "producer ids");
        Self::starting_at(file, start)
    }

    /// Ids from `start` on, recorded in `file`.
    fn starting_at(file: PathBuf, start: i64) -> io::Result<Arc<ProducerIds>> {
        let ids = ProducerIds {
            next: AtomicI64::new(start),
            reserved: AtomicI64::new(start),
            extending: AtomicBool::new(false),
            writing: Mutex::new(()),
            file,
        };
        ids.record(start + BLOCK)?;
        Ok(Arc::new(ids))
    }

    /// For tests: ids from `first` on (whatever the clock), recorded in
    /// the folder `dir`.
    #[cfg(test)]
    pub(crate) fn for_tests(dir: &Path, first: i64) -> Arc<ProducerIds> {
        std::fs::create_dir_all(dir).unwrap();
        Self::starting_at(dir.join(FILE), first).unwrap()
    }

    /// The next id; `None` while the block is used up and the next one is
    /// not yet recorded (answer a retriable error).
    pub fn next(self: &Arc<Self>) -> Option<i64> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let reserved = self.reserved.load(Ordering::Acquire);
        if id >= reserved - BLOCK / 2 && !self.extending.swap(true, Ordering::AcqRel) {
            self.extend_in_background();
        }
        // An id refused is not given back: another thread may have taken
        // the next one since, and a skipped id harms nothing.
        (id < reserved).then_some(id)
    }

    /// Makes the next id at least `floor` (ids a store remembers, read at
    /// start), recording a block past it now if need be.
    pub fn at_least(&self, floor: i64) -> io::Result<()> {
        self.next.fetch_max(floor, Ordering::Relaxed);
        let next = self.next.load(Ordering::Relaxed);
        if next >= self.reserved.load(Ordering::Acquire) - BLOCK / 2 {
            self.record(next + BLOCK)?;
        }
        Ok(())
    }

    fn extend_in_background(self: &Arc<Self>) {
        let ids = Arc::clone(self);
        let started = std::thread::Builder::new()
            .name("gyre-producer-ids".into())
            .spawn(move || {
                let end = ids.next.load(Ordering::Relaxed).max(ids.reserved.load(Ordering::Acquire)) + BLOCK;
                if let Err(e) = ids.record(end) {
                    tracing::error!(file = %ids.file.display(), error = %e, "cannot record the next block of producer ids; trying again in a second");
                    // At most one try a second, however many ids are asked.
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
                ids.extending.store(false, Ordering::Release);
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start a thread to record producer ids; asked again at the next id");
            self.extending.store(false, Ordering::Release);
        }
    }

    /// Records `end` durably (a synced temporary file renamed over the
    /// old, the folder synced), then lets ids below it out.
    fn record(&self, end: i64) -> io::Result<()> {
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        if end <= self.reserved.load(Ordering::Acquire) {
            return Ok(());
        }
        let text = format!("reserved_below={end}\n");
        folder_sync::replace(&self.file, text.as_bytes(), Durability::Durable)?;
        self.reserved.store(end, Ordering::Release);
        Ok(())
    }

    /// Where ids are recorded up to, for tests.
    #[cfg(test)]
    fn reserved(&self) -> i64 {
        self.reserved.load(Ordering::Acquire)
    }
}

fn parse(text: &str) -> Option<i64> {
    text.strip_suffix('\n')?
        .strip_prefix("reserved_below=")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_never_hands_out_an_id_again_even_with_the_clock_behind() {
        let dir = gyre_testkit::scratch_dir("producer-ids");
        // Ids far ahead of the clock: as if it had been stepped back since.
        let ahead = 1i64 << 50;
        let ids = ProducerIds::open(&dir, ahead).unwrap();
        let first: Vec<i64> = (0..1000).map(|_| ids.next().unwrap()).collect();
        assert_eq!(first[0], ahead);
        assert_eq!(ids.reserved(), ahead + BLOCK);
        drop(ids);
        // The partitions remembered none of them (a floor of 0): the file
        // alone keeps the next start past them.
        let again = ProducerIds::open(&dir, 0).unwrap();
        let next = again.next().unwrap();
        assert!(next >= ahead + BLOCK, "{next} was handed out before");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_or_unreadable_file_starts_past_the_clock_and_the_floor() {
        let dir = gyre_testkit::scratch_dir("producer-ids-none");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(FILE), "garbage").unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let ids = ProducerIds::open(&dir, 5).unwrap();
        assert!(ids.next().unwrap() >= now);
        drop(ids);
        std::fs::remove_file(dir.join(FILE)).unwrap();
        let floor = now + 1_000_000_000;
        let ids = ProducerIds::open(&dir, floor).unwrap();
        assert_eq!(ids.next(), Some(floor));
        // A store read later raises it, recording a block past it.
        ids.at_least(floor + BLOCK).unwrap();
        assert_eq!(ids.next(), Some(floor + BLOCK));
        assert!(ids.reserved() > floor + BLOCK);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn past_half_a_block_the_next_is_recorded_and_none_is_given_beyond_it() {
        let dir = gyre_testkit::scratch_dir("producer-ids-extend");
        let ids = ProducerIds::open(&dir, 0).unwrap();
        let reserved = ids.reserved();
        // Jump to the block's last id (as if a million had been given).
        ids.next.store(reserved - 1, Ordering::Relaxed);
        ids.extending.store(true, Ordering::Relaxed); // hold the extension back
        assert_eq!(ids.next(), Some(reserved - 1));
        assert_eq!(ids.next(), None, "past the record: refused");
        assert_eq!(ids.next(), None);
        ids.extending.store(false, Ordering::Relaxed);
        // The next ask starts the extension; ids come again once it lands.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let id = loop {
            if let Some(id) = ids.next() {
                break id;
            }
            assert!(std::time::Instant::now() < deadline, "never extended");
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        assert!(
            (reserved..ids.reserved()).contains(&id),
            "{id}: past the old record (those refused are skipped), within the new"
        );
        let recorded = parse(&std::fs::read_to_string(dir.join(FILE)).unwrap()).unwrap();
        assert!(recorded > reserved, "the file says {recorded}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
