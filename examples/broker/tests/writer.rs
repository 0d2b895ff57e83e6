//! The log writer under load: four threads submit produce requests for
//! eight partitions through the ring; every request is answered exactly
//! once, offsets tile each partition with no gap or overlap, and every
//! batch on disk is the one submitted at its offsets (count and CRC).

use bytes::Bytes;
use gyre_broker::log::{batch, LogConfig};
use gyre_broker::storage::Storage;
use gyre_broker::writer::{
    Answer, AppendOutcome, ClientMarker, FlushPolicy, LogOp, LogReply, LogWriter, PartitionId,
    WriterConfig,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

type Answers = Arc<Mutex<Vec<(u64, Vec<(PartitionId, AppendOutcome)>)>>>;

#[derive(Clone)]
struct Collect(Answers);

impl LogReply for Collect {
    fn answer(&self, job: u64, answer: Answer<'_>) {
        let Answer::Appended(outcomes) = answer else {
            panic!("only produce requests here: {answer:?}");
        };
        self.0.lock().unwrap().push((job, outcomes.to_vec()));
    }
}

fn dir(tag: &str) -> PathBuf {
    let d = gyre_testkit::scratch_root().join(format!("gyre-writer-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The data folder with one topic of `partitions` partitions (ids 0..n).
fn open_storage(root: &std::path::Path, partitions: u32) -> Storage {
    let config = LogConfig {
        segment_bytes: 256 * 1024,
        ..LogConfig::default()
    };
    let (mut storage, _) = Storage::open(root, config, 1).unwrap();
    if storage.catalog().get("t").is_none() {
        storage.create_topic("t", partitions as i32, &[]).unwrap();
    }
    storage
}

fn start(root: &std::path::Path, partitions: u32, flush: FlushPolicy) -> LogWriter<Collect> {
    let config = WriterConfig {
        flush,
        ..WriterConfig::default()
    };
    LogWriter::start(open_storage(root, partitions), config).unwrap()
}

/// The batch thread `t` sends as entry `e` of job `j`, with its CRC.
fn job_batch(t: u64, j: u64, e: u64) -> Vec<u8> {
    let n = 1 + ((t + j + e) % 4) as usize;
    let values: Vec<Vec<u8>> = (0..n)
        .map(|r| format!("t{t}-j{j}-e{e}-r{r}-{}", "v".repeat((j % 50) as usize)).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    batch::build(0, 1_000 + j as i64, &refs)
}

#[test]
fn every_request_is_answered_once_and_every_batch_lands_where_it_says() {
    const THREADS: u64 = 4;
    const JOBS: u64 = 3000;
    const PARTITIONS: u32 = 8;
    let root = dir("stress");
    let writer = start(&root, PARTITIONS, FlushPolicy::EveryBatch);
    let answers: Answers = Arc::default();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let mut submit = writer.submitter();
            let reply = Collect(answers.clone());
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                for j in 0..JOBS {
                    let entries: Vec<(PartitionId, Bytes)> = (0..1 + (j % 3))
                        .map(|e| {
                            let pid = ((t * 7 + j * 3 + e) % PARTITIONS as u64) as PartitionId;
                            (pid, Bytes::from(job_batch(t, j, e)))
                        })
                        .collect();
                    sent.push(entries.clone());
                    submit
                        .submit(t << 32 | j, LogOp::Produce(entries), Some(reply.clone()))
                        .unwrap();
                }
                sent
            })
        })
        .collect();
    let sent: Vec<Vec<Vec<(PartitionId, Bytes)>>> =
        threads.into_iter().map(|h| h.join().unwrap()).collect();
    let report = writer.shutdown();
    assert_eq!(report.processed, THREADS * JOBS);

    let answers = answers.lock().unwrap();
    assert_eq!(
        answers.len() as u64,
        THREADS * JOBS,
        "one answer per request"
    );
    // Each partition: (base, last, crc of the submitted batch).
    let mut placed: HashMap<PartitionId, Vec<(i64, i64, u32)>> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for (id, outcomes) in answers.iter() {
        assert!(seen.insert(*id), "request {id} answered twice");
        let entries = &sent[(id >> 32) as usize][(id & 0xffff_ffff) as usize];
        assert_eq!(outcomes.len(), entries.len());
        for ((pid, outcome), (sent_pid, bytes)) in outcomes.iter().zip(entries) {
            assert_eq!(pid, sent_pid);
            let AppendOutcome::Appended { base, last, .. } = *outcome else {
                panic!("request {id}: {outcome:?}");
            };
            let header = batch::validate(bytes).unwrap();
            assert_eq!(last - base, i64::from(header.last_offset_delta));
            placed
                .entry(*pid)
                .or_default()
                .push((base, last, header.crc));
        }
    }
    // Offsets tile every partition from 0, and the files say the same.
    let storage = open_storage(&root, PARTITIONS);
    let mut total = 0;
    for (pid, mut runs) in placed {
        runs.sort_unstable();
        let mut next = 0;
        for &(base, last, _) in &runs {
            assert_eq!(base, next, "partition {pid}: gap or overlap at {next}");
            next = last + 1;
        }
        let log = storage.log(pid).unwrap();
        assert_eq!(log.end_offset(), next);
        total += next;
        for &(base, _, crc) in &runs {
            let slice = log.read(base, 1).unwrap().unwrap();
            assert_eq!(slice.first_offset, base);
            let mut head = vec![0u8; slice.region.len() as usize];
            std::os::unix::fs::FileExt::read_exact_at(
                slice.region.file().file(),
                &mut head,
                slice.region.offset(),
            )
            .unwrap();
            let stored = batch::validate(&head).unwrap();
            assert_eq!(
                stored.crc, crc,
                "partition {pid} offset {base}: another batch"
            );
        }
    }
    let records: i64 = sent
        .iter()
        .flatten()
        .flatten()
        .map(|(_, b)| batch::validate(b).unwrap().record_count as i64)
        .sum();
    assert_eq!(total, records, "every record is on disk once");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn bad_batches_and_unknown_partitions_are_answered_and_change_nothing() {
    for policy in [
        FlushPolicy::Interval(std::time::Duration::from_millis(5)),
        FlushPolicy::Never,
    ] {
        let root = dir("bad");
        let writer = start(&root, 1, policy);
        let answers: Answers = Arc::default();
        let mut submit = writer.submitter();
        let good = Bytes::from(job_batch(0, 0, 0));
        let mut bad = job_batch(0, 1, 0);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        submit
            .submit(
                1,
                LogOp::Produce(vec![
                    (0, good.clone()),
                    (0, Bytes::from(bad)),
                    (9, good.clone()),
                ]),
                Some(Collect(answers.clone())),
            )
            .unwrap();
        submit
            .submit(2, LogOp::Produce(vec![(0, good.clone())]), None)
            .unwrap();
        drop(submit);
        writer.shutdown();
        let answers = answers.lock().unwrap();
        assert_eq!(answers.len(), 1, "acks=0 requests get no answer");
        let n = batch::validate(&good).unwrap().record_count as i64;
        assert_eq!(
            answers[0].1,
            vec![
                (
                    0,
                    AppendOutcome::Appended {
                        base: 0,
                        last: n - 1,
                        log_start: 0,
                        append_time: -1,
                    }
                ),
                (0, AppendOutcome::Corrupt),
                (9, AppendOutcome::UnknownPartition),
            ]
        );
        let storage = open_storage(&root, 1);
        assert_eq!(
            storage.log(0).unwrap().end_offset(),
            2 * n,
            "the good batches, and only them"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}

/// An operator's abort (WriteTxnMarkers, KIP-664) of a transaction left
/// open: a marker at an older producer epoch than the partition's is
/// refused and leaves the transaction open; one for a partition that is
/// not there is answered so; one at the producer's epoch ends it, so the
/// last stable offset moves to the log's end and the transaction's
/// records are listed as aborted.
#[test]
fn a_clients_abort_marker_ends_an_open_transaction_and_an_older_epoch_is_refused() {
    let root = dir("client-markers");
    let writer = start(&root, 1, FlushPolicy::Never);
    let answers: Answers = Arc::default();
    let mut submit = writer.submitter();
    let (producer_id, epoch) = (77, 3);
    submit
        .submit(
            1,
            LogOp::AddToTransaction {
                producer_id,
                producer_epoch: epoch,
                partitions: vec![0],
            },
            None,
        )
        .unwrap();
    let mut open = batch::build(0, 1_000, &[b"a", b"b"]);
    batch::set_producer(&mut open, producer_id, epoch, 0);
    batch::set_transactional(&mut open);
    let produce = LogOp::Produce(vec![(0, Bytes::from(open))]);
    submit
        .submit(2, produce, Some(Collect(answers.clone())))
        .unwrap();
    let marker = |producer_epoch| ClientMarker {
        producer_id,
        producer_epoch,
        marker: batch::Marker::Abort,
        coordinator_epoch: -1,
    };
    let refused = LogOp::ClientMarkers(vec![(0, marker(epoch - 1)), (5, marker(epoch))]);
    submit
        .submit(3, refused, Some(Collect(answers.clone())))
        .unwrap();
    let abort = LogOp::ClientMarkers(vec![(0, marker(epoch))]);
    submit
        .submit(4, abort, Some(Collect(answers.clone())))
        .unwrap();
    drop(submit);
    writer.shutdown();
    let answers = answers.lock().unwrap();
    let by_job: HashMap<u64, Vec<(PartitionId, AppendOutcome)>> = answers.iter().cloned().collect();
    assert_eq!(
        by_job[&3],
        vec![
            (0, AppendOutcome::InvalidProducerEpoch),
            (5, AppendOutcome::UnknownPartition)
        ]
    );
    assert!(
        matches!(
            by_job[&4][..],
            [(0, AppendOutcome::Appended { base: 2, .. })]
        ),
        "{:?}",
        by_job[&4]
    );
    let storage = open_storage(&root, 1);
    let log = storage.log(0).unwrap();
    assert_eq!(log.end_offset(), 3, "two records and the marker");
    assert_eq!(log.last_stable_offset(), 3, "nothing left open");
    let aborted = log.aborted_between(0, 3);
    assert_eq!(aborted, vec![(producer_id, 0)], "the records are aborted");
    let _ = std::fs::remove_dir_all(&root);
}
