//! A partition log whose offset index was damaged on disk (a bit flipped
//! in a position): the log itself is whole, so nothing of it may be cut
//! or misread. A start checks the entry its tail scan starts from and
//! rebuilds an index that points elsewhere than its batches; a lookup
//! checks the entry it starts from and searches from the segment's start
//! past one that does not.

use super::batch;
use super::{LogConfig, PartitionLog, Recovery};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A log of 40 one-record batches in one segment (offset `i` written at
/// time 1,000 + `i`), an index entry for every batch after the first,
/// stopped cleanly.
fn indexed_log(dir: &Path) -> LogConfig {
    let config = LogConfig {
        index_interval: 1,
        ..LogConfig::default()
    };
    let (mut log, _) = PartitionLog::open_with(dir, config.clone(), Recovery::Clean).unwrap();
    for i in 0..40u8 {
        let at = 1_000 + i64::from(i);
        log.append(&batch::build(0, at, &[&[b'a' + i % 26; 30][..]]))
            .unwrap();
    }
    log.sync().unwrap();
    config
}

/// The segment's `ext` index file, open to read and write.
fn index_file(dir: &Path, ext: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(format!("{:020}.{ext}", 0)))
        .unwrap()
}

/// Moves index entry `entry`'s position `by` bytes (into the middle of
/// its batch): what a flipped low bit does.
fn shift_entry(dir: &Path, entry: u64, by: u32) {
    let file = index_file(dir, "index");
    let mut pos = [0u8; 4];
    file.read_exact_at(&mut pos, entry * 8 + 4).unwrap();
    let moved = u32::from_be_bytes(pos) + by;
    file.write_all_at(&moved.to_be_bytes(), entry * 8 + 4)
        .unwrap();
}

/// The base offset of the batch each offset reads back as.
fn read_each(log: &PartitionLog) -> Vec<i64> {
    (0..log.end_offset())
        .map(|offset| log.read(offset, 1).unwrap().expect("held").first_offset)
        .collect()
}

fn entries(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(format!("{:020}.index", 0)))
        .unwrap()
        .len()
        / 8
}

#[test]
fn a_damaged_last_index_entry_is_rebuilt_at_a_clean_start_not_cut_with_the_log() {
    let dir = gyre_testkit::scratch_dir("index-damaged-last");
    let config = indexed_log(&dir);
    let last = entries(&dir) - 1;
    shift_entry(&dir, last, 7);
    let (log, cut) = PartitionLog::open_with(&dir, config, Recovery::Clean).unwrap();
    assert!(cut.is_empty(), "nothing of a whole log is cut: {cut:?}");
    assert_eq!(log.end_offset(), 40);
    assert_eq!(read_each(&log), (0..40).collect::<Vec<_>>());
}

#[test]
fn a_lookup_past_a_damaged_index_entry_finds_its_batch() {
    let dir = gyre_testkit::scratch_dir("index-damaged-middle");
    let config = indexed_log(&dir);
    shift_entry(&dir, 10, 7);
    let (log, cut) = PartitionLog::open_with(&dir, config, Recovery::Clean).unwrap();
    assert!(cut.is_empty(), "{cut:?}");
    assert_eq!(read_each(&log), (0..40).collect::<Vec<_>>());
    // A lookup by time starts from the same entries.
    for offset in [9, 10, 11, 12, 30] {
        let found = log.offset_for_time(1_000 + offset).unwrap();
        assert_eq!(found, Some((offset, 1_000 + offset)));
    }
}

#[test]
fn a_time_index_put_out_of_order_by_a_flip_still_finds_each_record_by_time() {
    let dir = gyre_testkit::scratch_dir("index-damaged-time");
    let config = indexed_log(&dir);
    // Entry 20 says 1,020 (0x3fc): one bit makes it 508 (0x1fc), which a
    // search by time takes for a place after every earlier record.
    let file = index_file(&dir, "timeindex");
    let mut ts = [0u8; 8];
    file.read_exact_at(&mut ts, 20 * 12).unwrap();
    assert_eq!(i64::from_be_bytes(ts), 1_020);
    file.write_all_at(&[0x01], 20 * 12 + 6).unwrap();
    let (log, cut) = PartitionLog::open_with(&dir, config, Recovery::Clean).unwrap();
    assert!(cut.is_empty(), "{cut:?}");
    for offset in 0..40 {
        let found = log.offset_for_time(1_000 + offset).unwrap();
        assert_eq!(found, Some((offset, 1_000 + offset)), "offset {offset}");
    }
}

/// A time index entry with a bit flipped that leaves the index in order:
/// a smaller time, or a later offset, still below the next entry's. The
/// start cannot tell it from a whole one; the lookup must not start past
/// the record it looks for. (Before: the lowered time answered record 21
/// for a time of record 20's; the later offsets were found through the
/// offset index even then.)
#[test]
fn a_time_index_entry_flipped_but_still_in_order_still_finds_each_record_by_time() {
    // 40 one-record batches, record `i` at 1,000 + 16 i, a time entry
    // every third batch or so.
    let time = |i: i64| 1_000 + 16 * i;
    for (entry, byte, bit, what) in [
        (6, 7, 3, "time lowered by 8 ms"),
        (6, 11, 0, "offset raised by 1"),
        (6, 11, 1, "offset raised by 2"),
    ] {
        let dir = gyre_testkit::scratch_dir("index-damaged-time-in-order");
        let config = LogConfig {
            index_interval: 250,
            ..LogConfig::default()
        };
        let (mut log, _) = PartitionLog::open_with(&dir, config.clone(), Recovery::Clean).unwrap();
        for i in 0..40u8 {
            log.append(&batch::build(0, time(i64::from(i)), &[&[b'a'; 30][..]]))
                .unwrap();
        }
        log.sync().unwrap();
        drop(log);
        let file = index_file(&dir, "timeindex");
        let mut all = vec![0u8; file.metadata().unwrap().len() as usize];
        file.read_exact_at(&mut all, 0).unwrap();
        let at = entry * 12 + byte;
        all[at] ^= 1 << bit;
        let entries: Vec<(i64, u32)> = all
            .chunks(12)
            .map(|e| {
                let ts = i64::from_be_bytes(e[..8].try_into().unwrap());
                (ts, u32::from_be_bytes(e[8..].try_into().unwrap()))
            })
            .collect();
        assert!(entries.len() > entry + 1, "{entries:?}");
        assert!(
            entries
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1),
            "{what}: the flip put the index out of order: {entries:?}"
        );
        file.write_all_at(&all[at..at + 1], at as u64).unwrap();
        let (log, cut) = PartitionLog::open_with(&dir, config, Recovery::Clean).unwrap();
        assert!(cut.is_empty(), "{cut:?}");
        for offset in 0..40 {
            for late in [0, 1, 9, 15] {
                let found = log.offset_for_time(time(offset) - late).unwrap();
                assert_eq!(
                    found,
                    Some((offset, time(offset))),
                    "{what}: the first record at or after {}",
                    time(offset) - late
                );
            }
        }
    }
}
