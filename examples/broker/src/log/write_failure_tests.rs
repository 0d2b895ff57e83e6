//! A partition log after a write that failed part way (a full disk,
//! descriptors run out): nothing of the failed append stays, so the
//! producer's retry is written once, and a roll that failed is made
//! again by the next append rather than refused until a restart. And
//! after a power cut took records a DeleteRecords floor was above: the
//! records appended in their place are not hidden.

use super::batch;
use super::partition::tests::{log_files, stored_headers};
use super::{LogConfig, PartitionLog};
use std::path::Path;

/// Every batch stored in the log in `dir`: (base offset, producer's
/// first sequence).
fn stored_batches(dir: &Path) -> Vec<(i64, i32)> {
    let headers = stored_headers(dir);
    headers
        .iter()
        .map(|h| (h.base_offset, h.base_sequence))
        .collect()
}

/// A one-record batch of idempotent producer 7 at `sequence`.
fn idempotent_batch(sequence: i32) -> Vec<u8> {
    let mut b = batch::build(0, 1_000, &[b"v"]);
    batch::set_producer(&mut b, 7, 0, sequence);
    b
}

/// A log in `dir` whose every append rolls a new segment, holding one
/// batch (offset 0).
fn rolling_log(dir: &Path) -> PartitionLog {
    let config = LogConfig {
        segment_bytes: 1,
        ..LogConfig::default()
    };
    let (mut log, _) = PartitionLog::open(dir, config).unwrap();
    log.append(&idempotent_batch(0)).unwrap();
    log
}

#[test]
fn a_roll_that_failed_part_way_is_made_by_the_next_append() {
    let dir = gyre_testkit::scratch_dir("failed-roll");
    let mut log = rolling_log(&dir);
    // The next segment's index cannot be opened (a folder is in its
    // way, as a descriptor limit would refuse it): the roll fails after
    // its log file was made.
    let index = dir.join(format!("{:020}.index", 1));
    std::fs::create_dir(&index).unwrap();
    assert!(log.append(&idempotent_batch(1)).is_err());
    std::fs::remove_dir(&index).unwrap();
    assert_eq!(log.append(&idempotent_batch(1)).unwrap(), (1, 1));
    assert_eq!(stored_batches(&dir), [(0, 0), (1, 1)]);
    assert_eq!(log_files(&dir).len(), 2);
}

#[test]
fn an_empty_segment_file_left_at_the_logs_end_is_taken_by_the_roll() {
    let dir = gyre_testkit::scratch_dir("leftover-segment");
    let mut log = rolling_log(&dir);
    std::fs::write(dir.join(format!("{:020}.log", 1)), b"").unwrap();
    assert_eq!(log.append(&idempotent_batch(1)).unwrap(), (1, 1));
    assert_eq!(stored_batches(&dir), [(0, 0), (1, 1)]);
}

#[cfg(feature = "failpoints")]
#[test]
fn a_batch_whose_index_write_failed_is_taken_out_so_its_retry_is_written_once() {
    // The failpoint fails the first index write under this folder.
    let dir = gyre_testkit::scratch_dir("gyre-failpoint-indexwrite");
    let config = LogConfig {
        index_interval: 1,
        ..LogConfig::default()
    };
    let (mut log, _) = PartitionLog::open(&dir, config).unwrap();
    assert!(log.append(&idempotent_batch(0)).is_err());
    assert_eq!(log.end_offset(), 0, "nothing of the failed append is kept");
    assert_eq!(stored_batches(&dir), []);
    // The producer retries the same batch: written once, at offset 0.
    assert_eq!(log.append(&idempotent_batch(0)).unwrap(), (0, 0));
    assert_eq!(log.append(&idempotent_batch(1)).unwrap(), (1, 1));
    assert_eq!(stored_batches(&dir), [(0, 0), (1, 1)]);
    // What the index says agrees with the log: a lookup finds offset 1.
    let (reopened, cut) = PartitionLog::open(&dir, LogConfig::default()).unwrap();
    assert!(cut.is_empty());
    assert_eq!(reopened.end_offset(), 2);
}

#[test]
fn a_deleted_records_floor_past_a_cut_logs_end_does_not_hide_what_comes_next() {
    // DeleteRecords to offset 5 was synced, then a power cut took the
    // unsynced records from 3 on: the floor read back is past the end.
    let dir = gyre_testkit::scratch_dir("floor-past-end");
    let (mut log, _) = PartitionLog::open(&dir, LogConfig::default()).unwrap();
    for sequence in 0..3 {
        log.append(&idempotent_batch(sequence)).unwrap();
    }
    log.set_start_floor(5);
    assert_eq!(log.start_offset(), 3);
    assert_eq!(log.append(&idempotent_batch(3)).unwrap(), (3, 3));
    assert_eq!(log.start_offset(), 3, "the new record is not hidden");
    assert!(log.read(3, 1 << 20).unwrap().is_some());
}
