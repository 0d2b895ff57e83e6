//! A partition log's leader epochs across starts: appends stamped with
//! the epoch, the history kept and read back, read on from the batches
//! when its snapshot was lost, and cut with the log.

use super::batch;
use super::epochs::EPOCH_SNAPSHOT;
use super::partition::tests::stored_headers;
use super::{LogConfig, PartitionLog, Recovery};
use std::path::Path;

/// The (base offset, leader epoch) of every batch in the log in `dir`,
/// read from its segment files.
fn stored_epochs(dir: &Path) -> Vec<(i64, i32)> {
    let headers = stored_headers(dir);
    headers
        .iter()
        .map(|h| (h.base_offset, h.partition_leader_epoch))
        .collect()
}

/// Appends `n` one-record batches, each stamped by its producer with
/// epoch 99, which the log must not keep.
fn append(log: &mut PartitionLog, n: usize) {
    for _ in 0..n {
        let mut b = batch::build(0, 1_000, &[b"v"]);
        batch::set_leader_epoch(&mut b, 99);
        log.append(&b).unwrap();
    }
}

fn open(dir: &Path, recovery: Recovery) -> PartitionLog {
    PartitionLog::open_with(dir, LogConfig::default(), recovery)
        .unwrap()
        .0
}

fn history(log: &PartitionLog) -> Vec<(i32, i64)> {
    log.epochs()
        .entries()
        .iter()
        .map(|e| (e.epoch, e.start))
        .collect()
}

#[test]
fn appends_carry_the_logs_epoch_and_each_start_begins_a_new_one() {
    let dir = gyre_testkit::scratch_dir("epochs-stamped");
    let mut log = open(&dir, Recovery::From(0));
    log.lead(3, None).unwrap();
    append(&mut log, 2);
    assert_eq!(stored_epochs(&dir), [(0, 3), (1, 3)]);
    assert_eq!(log.end_offset_for_epoch(3), (3, 2));
    drop(log);

    let mut log = open(&dir, Recovery::Clean);
    assert_eq!(history(&log), [(3, 0)], "read back");
    log.lead(4, Some(3)).unwrap();
    append(&mut log, 3);
    assert_eq!(
        stored_epochs(&dir),
        [(0, 3), (1, 3), (2, 4), (3, 4), (4, 4)]
    );
    assert_eq!(history(&log), [(3, 0), (4, 2)]);
    assert_eq!(log.end_offset_for_epoch(3), (3, 2));
    assert_eq!(log.end_offset_for_epoch(4), (4, 5));
    assert_eq!(log.epochs().epoch_for(1), 3);
    // A start that appended nothing leaves no entry of its own, and
    // writes nothing.
    drop(log);
    let written = std::fs::read(dir.join(EPOCH_SNAPSHOT)).unwrap();
    let mut log = open(&dir, Recovery::Clean);
    log.lead(5, Some(4)).unwrap();
    drop(log);
    assert_eq!(std::fs::read(dir.join(EPOCH_SNAPSHOT)).unwrap(), written);
    let mut log = open(&dir, Recovery::Clean);
    log.lead(6, Some(5)).unwrap();
    assert_eq!(history(&log), [(3, 0), (4, 2), (6, 5)]);
    assert_eq!(log.end_offset_for_epoch(5), (4, 5));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_lost_history_is_read_on_from_the_batches_after_it() {
    let dir = gyre_testkit::scratch_dir("epochs-lost");
    let mut log = open(&dir, Recovery::From(0));
    log.lead(3, None).unwrap();
    assert!(
        !dir.join(EPOCH_SNAPSHOT).exists(),
        "written by the first append"
    );
    append(&mut log, 2);
    let first = std::fs::read(dir.join(EPOCH_SNAPSHOT)).unwrap();
    drop(log);
    let mut log = open(&dir, Recovery::Clean);
    log.lead(4, Some(3)).unwrap();
    append(&mut log, 2);
    drop(log);

    // A power cut took the second start's snapshot: the file is the
    // first start's again, which knows nothing of epoch 4.
    std::fs::write(dir.join(EPOCH_SNAPSHOT), &first).unwrap();
    let mut log = open(&dir, Recovery::From(0));
    log.lead(5, Some(4)).unwrap();
    assert_eq!(history(&log), [(3, 0), (4, 2), (5, 4)]);
    assert_eq!(log.end_offset_for_epoch(4), (4, 4));
    drop(log);

    // With no snapshot at all, every batch is read.
    std::fs::remove_file(dir.join(EPOCH_SNAPSHOT)).unwrap();
    let mut log = open(&dir, Recovery::From(0));
    log.lead(6, Some(5)).unwrap();
    assert_eq!(history(&log), [(3, 0), (4, 2), (6, 4)]);
    drop(log);

    // A damaged one is the same as none; and a start that knows no
    // previous epoch (a folder from before epochs) reads nothing.
    std::fs::write(dir.join(EPOCH_SNAPSHOT), b"gyre-leader-epochs-v1 4\n").unwrap();
    let mut log = open(&dir, Recovery::From(0));
    log.lead(7, None).unwrap();
    assert_eq!(history(&log), [(7, 4)]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_consumer_past_a_cut_hears_where_its_epoch_now_ends() {
    let dir = gyre_testkit::scratch_dir("epochs-cut");
    let mut log = open(&dir, Recovery::From(0));
    log.lead(3, None).unwrap();
    append(&mut log, 5);
    drop(log);
    let mut log = open(&dir, Recovery::Clean);
    log.lead(4, Some(3)).unwrap();
    append(&mut log, 5);
    drop(log);
    // A consumer read all ten, the last in epoch 4. Then a power cut
    // took the unsynced tail: the log keeps its first seven batches.
    let segment = dir.join(format!("{:020}.log", 0));
    let bytes = std::fs::read(&segment).unwrap();
    let size = batch::parse_header(&bytes).unwrap().size;
    std::fs::write(&segment, &bytes[..7 * size]).unwrap();

    let mut log = open(&dir, Recovery::From(0));
    assert_eq!(log.end_offset(), 7);
    log.lead(5, Some(4)).unwrap();
    assert_eq!(history(&log), [(3, 0), (4, 5), (5, 7)]);
    assert_eq!(
        log.end_offset_for_epoch(4),
        (4, 7),
        "epoch 4 ends at 7, below the consumer's 10: it moves back to 7"
    );
    // Records written since take the new epoch, so a consumer that reads
    // them is not mistaken for one that read the lost ones.
    append(&mut log, 3);
    assert_eq!(stored_epochs(&dir)[7..], [(7, 5), (8, 5), (9, 5)]);
    assert_eq!(log.end_offset_for_epoch(4), (4, 7));

    // Cut below the start of epoch 4: that epoch goes from the history.
    drop(log);
    let bytes = std::fs::read(&segment).unwrap();
    std::fs::write(&segment, &bytes[..4 * size]).unwrap();
    let mut log = open(&dir, Recovery::From(0));
    log.lead(6, Some(5)).unwrap();
    assert_eq!(history(&log), [(3, 0), (6, 4)]);
    assert_eq!(log.end_offset_for_epoch(5), (3, 4));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_history_keeps_only_epochs_with_records_left_in_the_log() {
    let dir = gyre_testkit::scratch_dir("epochs-trimmed");
    let mut log = open(&dir, Recovery::From(0));
    for epoch in 1..=4 {
        log.lead(epoch, Some(epoch - 1)).unwrap();
        append(&mut log, 2);
        drop(log);
        log = open(&dir, Recovery::Clean);
    }
    log.lead(5, Some(4)).unwrap();
    assert_eq!(history(&log), [(1, 0), (2, 2), (3, 4), (4, 6), (5, 8)]);
    log.delete_records_before(5).unwrap();
    drop(log);
    let mut log = open(&dir, Recovery::Clean);
    log.set_start_floor(5);
    log.lead(6, Some(5)).unwrap();
    assert_eq!(history(&log), [(3, 5), (4, 6), (6, 8)]);
    std::fs::remove_dir_all(&dir).unwrap();
}
