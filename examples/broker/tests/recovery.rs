//! Recovery after an unclean stop checks every batch past the recovery
//! point, not only segment tails: a byte flipped in the middle of a segment
//! is cut there (and every later segment with it), logged, and never
//! served; a clean stop (SIGTERM) marks the folder so the next start checks
//! only tails; `gyre-broker verify` finds the same damage offline; a
//! compacted log's gaps are not taken for damage, while damage in it is.
//! Over real files and the real binary, with kcat as the consumer.

mod common;

use common::process::BrokerProcess;
use gyre_broker::log::{batch, LogConfig, PartitionLog, Recovery};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn dir(tag: &str) -> PathBuf {
    let d =
        gyre_testkit::scratch_root().join(format!("gyre-recovery-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 * 1024,
        index_interval: 512,
        retention_age: None,
        ..LogConfig::default()
    }
}

/// 400 one-record batches across several segments, synced.
fn fill(d: &Path) {
    let (mut log, _) = PartitionLog::open(d, config()).unwrap();
    for i in 0..400u32 {
        let value = format!("value-{i:06}-{}", "y".repeat((i % 50) as usize));
        log.append(&batch::build(0, 1_000 + i64::from(i), &[value.as_bytes()]))
            .unwrap();
    }
    log.sync().unwrap();
}

fn flip(file: &Path, at: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let mut byte = [0u8; 1];
    f.read_exact_at(&mut byte, at).unwrap();
    f.write_all_at(&[byte[0] ^ 0x04], at).unwrap();
}

/// The batch holding byte `at` of `file`: (its position, its base offset).
fn batch_holding(file: &Path, at: u64) -> (u64, i64) {
    let bytes = std::fs::read(file).unwrap();
    let mut pos = 0;
    loop {
        let header = batch::parse_header(&bytes[pos..]).unwrap();
        if (pos + header.size) as u64 > at {
            return (pos as u64, header.base_offset);
        }
        pos += header.size;
    }
}

#[test]
fn a_flip_mid_segment_is_cut_there_with_every_later_segment() {
    let d = dir("mid");
    fill(&d);
    let files = common::segment_files(&d);
    assert!(files.len() >= 3, "{files:?}");
    // Deep inside the second-last segment, well before its last index
    // entry: the part a tail scan never reads.
    let victim = &files[files.len() - 2];
    let len = std::fs::metadata(victim).unwrap().len();
    let at = len / 3 + 20;
    let (pos, first_lost) = batch_holding(victim, at);
    flip(victim, at);

    // A clean-stop open checks only tails and does not see it (this is
    // what every start did before recovery points).
    let (log, cut) = PartitionLog::open_with(&d, config(), Recovery::Clean).unwrap();
    assert!(cut.is_empty(), "{cut:?}");
    assert_eq!(log.end_offset(), 400);
    drop(log);

    // After an unclean stop with the recovery point in an earlier segment,
    // the damage is found, cut, and the last segment goes with it.
    let base_of_victim: i64 = victim
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (log, cut) =
        PartitionLog::open_with(&d, config(), Recovery::From(base_of_victim - 1)).unwrap();
    assert_eq!(cut.len(), 2, "{cut:?}");
    assert_eq!(cut[0].file, *victim);
    assert_eq!(cut[0].kept, pos);
    assert!(
        cut[0].reason.contains(&format!("at byte {pos}")),
        "{}",
        cut[0].reason
    );
    assert_eq!(cut[1].file, files[files.len() - 1]);
    assert_eq!(cut[1].kept, 0);
    assert_eq!(
        log.end_offset(),
        first_lost,
        "everything before the flip stays"
    );
    assert_eq!(common::segment_files(&d).len(), files.len() - 1);
    // The indexes were rebuilt: every offset left reads back whole batches.
    for offset in 0..first_lost {
        let slice = log.read(offset, 1).unwrap().expect("data");
        assert_eq!(slice.first_offset, offset, "one record per batch");
    }
    let report = gyre_broker::verify::verify_partition(&d).unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    assert_eq!(report.offsets, (0, first_lost));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn segments_wholly_below_the_recovery_point_are_only_tail_checked() {
    let d = dir("point");
    fill(&d);
    let files = common::segment_files(&d);
    let first = &files[0];
    let len = std::fs::metadata(first).unwrap().len();
    flip(first, len / 4);
    // The checkpoint said everything up to 399 was synced: the first
    // segment is trusted (as Kafka trusts what is below its recovery
    // point); the offline verifier still finds it.
    let (log, cut) = PartitionLog::open_with(&d, config(), Recovery::From(399)).unwrap();
    assert!(cut.is_empty(), "{cut:?}");
    assert_eq!(log.end_offset(), 400);
    drop(log);
    let report = gyre_broker::verify::verify_partition(&d).unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].0, *first);
    std::fs::remove_dir_all(&d).unwrap();
}

fn kcat(addr: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", "command -v kcat"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "kcat is not installed: scripts/test installs it");
    let mut c = Command::new("kcat");
    c.args(["-b", addr]);
    c
}

fn produce(addr: &str, topic: &str, lines: &str) {
    let mut child = kcat(addr)
        .args([
            "-P",
            "-t",
            topic,
            "-X",
            "linger.ms=0",
            "-X",
            "batch.num.messages=5",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Every message, consumed with CRC checks on (librdkafka's check.crcs).
fn consume(addr: &str, topic: &str) -> Vec<u32> {
    let out = kcat(addr)
        .args(["-C", "-t", topic, "-o", "beginning", "-e", "-q"])
        .args(["-X", "check.crcs=true", "-f", "%s\n"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

fn verify(data: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gyre-broker"))
        .args(["verify", "--data"])
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn after_kill_9_a_flipped_byte_is_cut_and_never_served_and_sigterm_stops_cleanly() {
    let data = dir("kill9");
    let broker = BrokerProcess::start(&data, &[]);
    // A first start in a new folder has had no stop, clean or not.
    let log = broker.stderr();
    assert!(
        log.contains("a new data folder: nothing to recover"),
        "{log}"
    );
    assert!(!log.contains("unclean stop"), "{log}");
    let lines: String = (0..3000).map(|i| format!("{i}\n")).collect();
    produce(&broker.addr, "flipped", &lines);
    assert_eq!(consume(&broker.addr, "flipped").len(), 3000);
    drop(broker); // SIGKILL

    let segment = common::segment_files(&data.join("topics/flipped/0"))
        .pop()
        .unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    let (_, first_lost) = batch_holding(&segment, len / 2);
    flip(&segment, len / 2);
    let (clean, report) = verify(&data);
    assert!(!clean, "verify finds the flip:\n{report}");
    assert!(report.contains("DAMAGED"), "{report}");

    let broker = BrokerProcess::start(&data, &[]);
    let got = consume(&broker.addr, "flipped");
    let expect: Vec<u32> = (0..first_lost as u32).collect();
    assert_eq!(
        got, expect,
        "everything before the flipped batch, nothing from it on"
    );
    let log = broker.stderr();
    assert!(log.contains("unclean stop"), "{log}");
    assert!(
        log.contains("recovery truncated a segment at its first bad batch"),
        "{log}"
    );
    // New records follow on from the cut.
    produce(&broker.addr, "flipped", "tail\n");

    // SIGTERM: a clean stop, exit status 0, the folder marked clean.
    let mut broker = broker;
    let status = broker.stop(libc::SIGTERM);
    assert!(status.success(), "{status}");
    assert!(broker.stderr().contains("stopped cleanly"));
    assert!(data.join(gyre_broker::checkpoint::CLEAN_MARKER).exists());
    let (clean, report) = verify(&data);
    assert!(clean, "{report}");
    drop(broker);

    let broker = BrokerProcess::start(&data, &[]);
    assert!(broker
        .stderr()
        .contains("clean stop: checking segment tails"));
    assert!(!data.join(gyre_broker::checkpoint::CLEAN_MARKER).exists());
    let out = kcat(&broker.addr)
        .args(["-C", "-t", "flipped", "-o", "-1", "-e", "-q", "-f", "%s\n"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tail\n");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

/// A second broker on a folder in use is refused before it touches it,
/// names the folder, and leaves the first one's state alone: after the
/// first is killed, the next start still treats the stop as unclean
/// (before the lock, the refused broker marked the folder clean on its
/// way out, and the crash was then trusted as a clean stop).
#[test]
fn a_second_broker_on_a_folder_in_use_is_refused_and_changes_nothing() {
    let data = dir("two-on-one");
    let first = BrokerProcess::start(&data, &[]);
    produce(&first.addr, "kept", "1\n2\n3\n");

    // On a free port of its own, so only the folder can stop it.
    let said_path = data.with_extension("second.log");
    let mut second = Command::new(env!("CARGO_BIN_EXE_gyre-broker"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&said_path).unwrap())
        .spawn()
        .expect("the broker binary runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = second.kill();
            let _ = second.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let said = std::fs::read_to_string(&said_path).unwrap_or_default();
    let _ = std::fs::remove_file(&said_path);
    assert!(
        status.is_some_and(|s| !s.success()),
        "the second broker must refuse the folder and exit ({status:?}):\n{said}"
    );
    assert!(said.contains("in use by another broker"), "{said}");
    assert!(said.contains(&data.display().to_string()), "{said}");
    assert!(
        !data.join(gyre_broker::checkpoint::CLEAN_MARKER).exists(),
        "the refused broker marked a folder in use clean:\n{said}"
    );
    assert_eq!(consume(&first.addr, "kept"), vec![1, 2, 3]);
    drop(first); // SIGKILL

    let next = BrokerProcess::start(&data, &[]);
    let log = next.stderr();
    assert!(log.contains("unclean stop"), "{log}");
    assert_eq!(consume(&next.addr, "kept"), vec![1, 2, 3]);
    drop(next);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_compacted_logs_gaps_pass_recovery_and_the_verifier_and_damage_in_it_is_still_cut() {
    let d = dir("compacted");
    let compacted = LogConfig {
        cleanup: gyre_broker::log::Cleanup {
            delete: false,
            compact: true,
        },
        ..config()
    };
    let (mut log, _) = PartitionLog::open(&d, compacted.clone()).unwrap();
    for i in 0..400 {
        let value = format!("value-{i:06}-{}", "y".repeat(i % 50));
        let key = format!("key-{}", i % 7);
        let record = [(Some(key.as_bytes()), value.as_bytes())];
        log.append(&batch::build_keyed(0, 1_000, &record)).unwrap();
    }
    log.roll().unwrap();
    let plan = log.cleaning_plan().unwrap().expect("all of it is dirty");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let cleaned = gyre_broker::log::cleaner::clean(
        &plan,
        1000,
        &gyre_broker::log::pace::Pace::unthrottled(&stop),
    )
    .unwrap();
    log.swap_cleaned(&plan, &cleaned).unwrap();
    assert_eq!(log.end_offset(), 400);
    drop(log);
    // Seven keys' last records remain, at 393..=399, after a gap.
    let report = gyre_broker::verify::verify_partition(&d).unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    assert_eq!(report.batches, 7);
    let (log, cut) = PartitionLog::open_with(&d, compacted.clone(), Recovery::From(0)).unwrap();
    assert!(cut.is_empty(), "{cut:?}");
    assert_eq!(log.read(0, 1).unwrap().unwrap().first_offset, 393);
    drop(log);
    // A flipped byte in a compacted segment is still caught by its CRC.
    let files = common::segment_files(&d);
    let victim = files
        .iter()
        .find(|f| std::fs::metadata(f).unwrap().len() > 0)
        .unwrap();
    let len = std::fs::metadata(victim).unwrap().len();
    flip(victim, len - 5);
    let report = gyre_broker::verify::verify_partition(&d).unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    let (_, cut) = PartitionLog::open_with(&d, compacted, Recovery::From(0)).unwrap();
    assert_eq!(cut[0].file, *victim, "{cut:?}");
    assert!(cut[0].reason.contains("CRC"), "{}", cut[0].reason);
    std::fs::remove_dir_all(&d).unwrap();
}
