//! The partition log over real files: offsets, reads at every offset
//! across segment rolls, reopen, tail recovery from torn and bit-flipped
//! batches, refused corrupt and oversized appends, time lookups, roll and
//! retention.

mod common;

use gyre_broker::log::{batch, LogConfig, LogError, PartitionLog};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = gyre_testkit::scratch_root().join(format!(
            "gyre-log-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn small() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        index_interval: 1024,
        retention_age: None,
        ..LogConfig::default()
    }
}

/// A batch of `n` records whose values name their position in the stream.
fn records(first: usize, n: usize, ts: i64) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (first..first + n)
        .map(|i| format!("record-{i:08}-{}", "x".repeat(i % 97)).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    batch::build(0, ts, &refs)
}

/// Reads the bytes a slice points at and checks they are whole batches
/// covering `offset`.
fn check_slice(log: &PartitionLog, offset: i64) {
    let slice = log.read(offset, 4096).unwrap().expect("data at offset");
    let region = &slice.region;
    let mut bytes = vec![0u8; region.len() as usize];
    region
        .file()
        .file()
        .read_exact_at(&mut bytes, region.offset())
        .unwrap();
    let parts = batch::split(&bytes).expect("whole, valid batches");
    let first = &parts[0].0;
    assert_eq!(first.base_offset, slice.first_offset);
    assert!(
        first.base_offset <= offset && offset <= first.last_offset(),
        "{offset}"
    );
}

#[test]
fn offsets_reads_rolls_and_reopen() {
    let dir = Dir::new("basic");
    let (mut log, cut) = PartitionLog::open(&dir.0, small()).unwrap();
    assert!(cut.is_empty());
    let mut next = 0usize;
    for i in 0..400 {
        let n = 1 + i % 7;
        let b = records(next, n, 1_000 + i as i64);
        let (first, last) = log.append(&b).unwrap();
        assert_eq!((first, last), (next as i64, (next + n - 1) as i64));
        next += n;
    }
    assert_eq!(log.end_offset(), next as i64);
    assert!(log.segment_count() > 2, "{} segments", log.segment_count());
    for offset in 0..next as i64 {
        check_slice(&log, offset);
    }
    assert!(
        log.read(next as i64, 4096).unwrap().is_none(),
        "nothing at the end yet"
    );
    assert!(matches!(
        log.read(next as i64 + 1, 4096),
        Err(LogError::OutOfRange { .. })
    ));
    log.sync().unwrap();
    drop(log);

    let (log, cut) = PartitionLog::open(&dir.0, small()).unwrap();
    assert!(cut.is_empty(), "clean files need no recovery: {cut:?}");
    assert_eq!(log.end_offset(), next as i64);
    for offset in (0..next as i64).step_by(13) {
        check_slice(&log, offset);
    }
}

#[test]
fn torn_and_corrupt_tails_are_cut_to_the_last_good_batch() {
    let dir = Dir::new("recover");
    let (mut log, _) = PartitionLog::open(&dir.0, LogConfig::default()).unwrap();
    let mut sizes = Vec::new();
    for i in 0..50 {
        let b = records(i * 3, 3, 5_000 + i as i64);
        sizes.push(b.len() as u64);
        log.append(&b).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    let file = common::segment_files(&dir.0).pop().unwrap();
    let full: u64 = sizes.iter().sum();

    // A torn write: the last batch is half there.
    let torn = full - sizes[49] / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(torn)
        .unwrap();
    let (mut log, cut) = PartitionLog::open(&dir.0, LogConfig::default()).unwrap();
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert_eq!(cut[0].kept, full - sizes[49]);
    assert_eq!(cut[0].dropped, sizes[49] - sizes[49] / 2);
    assert_eq!(log.end_offset(), 49 * 3);
    // Appends carry on from the last good batch.
    let b = records(999, 2, 9_000);
    assert_eq!(log.append(&b).unwrap(), (147, 148));
    log.sync().unwrap();
    drop(log);

    // A flipped bit in the middle of the (new) last batch.
    let len = std::fs::metadata(&file).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&file)
        .unwrap();
    let mut byte = [0u8; 1];
    f.read_exact_at(&mut byte, len - 5).unwrap();
    f.write_all_at(&[byte[0] ^ 0x10], len - 5).unwrap();
    let (log, cut) = PartitionLog::open(&dir.0, LogConfig::default()).unwrap();
    assert_eq!(cut.len(), 1);
    assert!(cut[0].reason.contains("CRC"), "{}", cut[0].reason);
    assert_eq!(
        log.end_offset(),
        147,
        "the corrupt batch is gone, the rest stays"
    );
    for offset in 0..147 {
        check_slice(&log, offset);
    }
    drop(log);

    // A flipped bit in the last batch's base offset, which its CRC does
    // not cover.
    let last = 147 - 3;
    let at = sizes[..48].iter().sum::<u64>();
    let mut base = [0u8; 8];
    f.read_exact_at(&mut base, at).unwrap();
    assert_eq!(
        i64::from_be_bytes(base),
        last,
        "the last batch's base offset"
    );
    f.write_all_at(&(last ^ (1 << 40)).to_be_bytes(), at)
        .unwrap();
    let (log, cut) = PartitionLog::open(&dir.0, LogConfig::default()).unwrap();
    assert_eq!(cut.len(), 1);
    assert!(cut[0].reason.contains("claims offset"), "{}", cut[0].reason);
    assert_eq!(log.end_offset(), last);
}

#[test]
fn corrupt_appends_are_refused_whole() {
    let dir = Dir::new("refuse");
    let (mut log, _) = PartitionLog::open(&dir.0, small()).unwrap();
    let good = records(0, 2, 1);
    let mut bad = records(2, 2, 1);
    let at = bad.len() - 1;
    bad[at] ^= 0xff;
    let both = [good.clone(), bad].concat();
    assert!(matches!(log.append(&both), Err(LogError::Corrupt(_))));
    let cut_short = good[..good.len() - 3].to_vec();
    assert!(matches!(log.append(&cut_short), Err(LogError::Corrupt(_))));
    assert!(matches!(log.append(&[]), Err(LogError::Corrupt(_))));
    assert_eq!(log.end_offset(), 0, "nothing appended");
    assert_eq!(log.size(), 0);
}

#[test]
fn a_batch_over_max_message_bytes_is_refused_and_nothing_of_its_request_appended() {
    let dir = Dir::new("too-large");
    let small_batch = records(0, 2, 1);
    let big_batch = records(2, 40, 1);
    let max = big_batch.len() as u64 - 1;
    let config = LogConfig {
        max_message_bytes: max,
        ..small()
    };
    let (mut log, _) = PartitionLog::open(&dir.0, config).unwrap();
    let both = [small_batch.clone(), big_batch.clone()].concat();
    match log.append(&both) {
        Err(LogError::TooLarge { size, max: limit }) => {
            assert_eq!((size, limit), (big_batch.len() as u64, max));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(log.end_offset(), 0, "nothing appended");
    // At the limit exactly it goes in, as in Kafka (larger than, refused).
    log.append(&small_batch).unwrap();
    let mut config = small();
    config.max_message_bytes = big_batch.len() as u64;
    log.set_config(config);
    log.append(&big_batch).unwrap();
    assert_eq!(log.end_offset(), 42);
}

#[test]
fn a_log_append_time_topic_stamps_each_batch_with_the_brokers_clock() {
    let dir = Dir::new("append-time");
    let config = LogConfig {
        log_append_time: true,
        ..small()
    };
    let (mut log, _) = PartitionLog::open(&dir.0, config).unwrap();
    let before = gyre_broker::log::now_ms();
    let staged = log.stage(&records(0, 3, 1_000)).unwrap();
    log.commit().unwrap();
    let after = gyre_broker::log::now_ms();
    let stamped = staged.append_time.expect("an append time");
    assert!(
        (before..=after).contains(&stamped),
        "{before} {stamped} {after}"
    );
    assert_eq!((staged.base, staged.last), (0, 2));
    // Stored stamped, and found by that time, not the producer's.
    let slice = log.read(0, 4096).unwrap().expect("data");
    let mut bytes = vec![0u8; slice.region.len() as usize];
    slice
        .region
        .file()
        .file()
        .read_exact_at(&mut bytes, slice.region.offset())
        .unwrap();
    let header = batch::validate(&bytes).unwrap();
    assert!(batch::has_log_append_time(&bytes));
    assert_eq!(
        (header.base_timestamp, header.max_timestamp),
        (1_000, stamped)
    );
    assert_eq!(
        log.offset_for_time(stamped).unwrap().map(|(o, _)| o),
        Some(0)
    );
    // Back to CreateTime, the producer's timestamps are kept again.
    log.set_config(small());
    assert_eq!(log.stage(&records(3, 1, 2_000)).unwrap().append_time, None);
}

#[test]
fn offsets_by_time() {
    let dir = Dir::new("time");
    let (mut log, _) = PartitionLog::open(&dir.0, small()).unwrap();
    for i in 0..300i64 {
        let b = records(i as usize, 1, 10_000 + i * 10);
        log.append(&b).unwrap();
    }
    assert_eq!(log.offset_for_time(0).unwrap().map(|(o, _)| o), Some(0));
    assert_eq!(
        log.offset_for_time(10_000).unwrap().map(|(o, _)| o),
        Some(0)
    );
    assert_eq!(
        log.offset_for_time(10_005).unwrap().map(|(o, _)| o),
        Some(1)
    );
    assert_eq!(
        log.offset_for_time(12_000).unwrap().map(|(o, _)| o),
        Some(200)
    );
    assert_eq!(
        log.offset_for_time(12_990).unwrap().map(|(o, _)| o),
        Some(299)
    );
    assert_eq!(log.offset_for_time(13_000).unwrap().map(|(o, _)| o), None);
}

#[test]
fn retention_by_size_and_age_and_roll_by_age() {
    let dir = Dir::new("retain");
    let mut config = small();
    config.retention_bytes = Some(200 * 1024);
    let (mut log, _) = PartitionLog::open(&dir.0, config).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for i in 0..5000 {
        let b = records(i, 1, now);
        log.append(&b).unwrap();
    }
    let before = log.segment_count();
    let deleted = log.enforce_retention().unwrap();
    assert!(deleted > 0 && log.segment_count() == before - deleted);
    assert!(log.size() < 200 * 1024 + 64 * 1024, "{}", log.size());
    assert!(log.start_offset() > 0);
    assert!(matches!(log.read(0, 100), Err(LogError::OutOfRange { .. })));
    check_slice(&log, log.start_offset());
    assert_eq!(common::segment_files(&dir.0).len(), log.segment_count());
    drop(log);

    // By age: records a day old go, except in the active segment.
    let dir = Dir::new("age");
    let mut config = small();
    config.retention_age = Some(Duration::from_secs(3600));
    let (mut log, _) = PartitionLog::open(&dir.0, config.clone()).unwrap();
    for i in 0..500 {
        let b = records(i, 1, now - 86_400_000);
        log.append(&b).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 1);
    assert_eq!(log.enforce_retention().unwrap(), segments - 1);
    assert_eq!(log.segment_count(), 1);

    // Roll by age: a segment older than the limit rolls at the next append.
    let dir = Dir::new("roll-age");
    let mut config = small();
    config.segment_age = Some(Duration::from_millis(50));
    let (mut log, _) = PartitionLog::open(&dir.0, config).unwrap();
    log.append(&records(0, 1, now)).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    log.append(&records(1, 1, now)).unwrap();
    assert_eq!(log.segment_count(), 2);
}

/// A batch of `n` records from idempotent producer `pid` at epoch 0,
/// sequences from `seq`.
fn producer_batch(pid: i64, seq: i32, n: usize) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("p{pid}-{}", seq as usize + i).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    let mut b = batch::build(0, 1_000, &refs);
    batch::set_producer(&mut b, pid, 0, seq);
    b
}

#[test]
fn an_idempotent_retry_gets_its_offsets_back_before_and_after_a_reopen() {
    use gyre_broker::log::producers::SequenceError;
    use gyre_broker::log::PRODUCER_SNAPSHOT;
    let dir = Dir::new("idempotent");
    let (mut log, _) = PartitionLog::open(&dir.0, small()).unwrap();
    // Enough batches to roll a few segments: the rebuild reads the last two.
    let mut offsets = Vec::new();
    for k in 0..1000 {
        offsets.push(log.append(&producer_batch(7, k * 10, 10)).unwrap());
    }
    assert!(log.segment_count() > 3, "{}", log.segment_count());
    let end = log.end_offset();
    assert_eq!(end, 10_000);
    let check = |log: &mut PartitionLog| {
        // The last five batches, retried: their own offsets, nothing written.
        for k in 995..1000 {
            assert_eq!(
                log.append(&producer_batch(7, k * 10, 10)).unwrap(),
                offsets[k as usize]
            );
        }
        assert_eq!(log.end_offset(), 10_000, "no retry was written");
        // A gap, and a batch older than the last five, are refused.
        assert!(matches!(
            log.append(&producer_batch(7, 10_010, 10)),
            Err(LogError::Sequence(SequenceError::OutOfOrder {
                expected: 10_000,
                ..
            }))
        ));
        assert!(matches!(
            log.append(&producer_batch(7, 9940, 10)),
            Err(LogError::Sequence(SequenceError::OutOfOrder { .. }))
        ));
        assert_eq!(log.producer_count(), 1);
    };
    check(&mut log);
    // An unclean stop: rebuilt from the last roll's snapshot and the
    // active segment's batch headers.
    drop(log);
    assert!(
        dir.0.join(PRODUCER_SNAPSHOT).exists(),
        "written at each roll"
    );
    let (mut log, _) = PartitionLog::open(&dir.0, small()).unwrap();
    check(&mut log);
    // Without that snapshot: from the last two segments' batch headers.
    drop(log);
    std::fs::remove_file(dir.0.join(PRODUCER_SNAPSHOT)).unwrap();
    let (mut log, _) = PartitionLog::open(&dir.0, small()).unwrap();
    check(&mut log);
    // A clean stop's snapshot is read back instead, and it is what the
    // state comes from: a snapshot that forgot the producer means a
    // forgotten producer (taken at any sequence).
    log.write_producer_snapshot().unwrap();
    drop(log);
    let (mut log, _) = PartitionLog::open(&dir.0, small()).unwrap();
    check(&mut log);
    drop(log);
    let empty = gyre_broker::log::producers::ProducerStates::default().snapshot(10_000);
    std::fs::write(dir.0.join(PRODUCER_SNAPSHOT), empty).unwrap();
    let (mut log, _) = PartitionLog::open(&dir.0, small()).unwrap();
    assert_eq!(log.producer_count(), 0);
    assert_eq!(
        log.append(&producer_batch(7, 10_010, 10)).unwrap(),
        (10_000, 10_009)
    );
    // A damaged snapshot is ignored and the log read instead.
    log.write_producer_snapshot().unwrap();
    drop(log);
    let path = dir.0.join(PRODUCER_SNAPSHOT);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("10010", "10011");
    std::fs::write(&path, text).unwrap();
    let (mut log, _) = PartitionLog::open(&dir.0, small()).unwrap();
    assert_eq!(
        log.append(&producer_batch(7, 10_010, 10)).unwrap(),
        (10_000, 10_009),
        "rebuilt from the log: the retry is known"
    );
}

#[test]
fn a_time_lookup_below_deleted_records_answers_the_first_kept_record_with_its_own_time() {
    let dir = Dir::new("time-after-delete");
    let (mut log, _) = PartitionLog::open(&dir.0, small()).unwrap();
    for i in 0..40 {
        log.append(&batch::build(0, 1_000 * i, &[b"x"])).unwrap();
    }
    assert_eq!(log.delete_records_before(25).unwrap(), 25);
    // Before: offset 25 with record 0's timestamp (0).
    assert_eq!(log.offset_for_time(0).unwrap(), Some((25, 25_000)));
    assert_eq!(log.offset_for_time(30_000).unwrap(), Some((30, 30_000)));
    assert_eq!(log.offset_for_time(40_000).unwrap(), None);
}
