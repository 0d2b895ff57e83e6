//! Fetches of records no longer in the page cache, in a running broker
//! over raw requests: they wait on the cache loader's threads, which read
//! the records in, and neither the log writer (which resolves fetches and
//! which every produce waits on) nor the event loop (which sends them)
//! reads a byte from the disk; the bytes a consumer gets are the bytes
//! produced. A fetch of cached records (read again just after) goes at
//! once, not through the loader. A share group's fetch of cold records
//! is loaded off the writer the same way.

mod common;

use common::{create_topic, produce_request, topic_name, Client};
use gyre_broker::log::batch;
use gyre_zerocopy::FileRegion;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use std::path::Path;

/// Syncs and drops from the page cache every segment file of the
/// partition folder `dir`; whether the kernel now says they are out
/// (`false` where it cannot tell, or the files live in memory).
fn evict(dir: &Path) -> bool {
    let mut out = true;
    for path in common::segment_files(dir) {
        gyre_testkit::evict_from_page_cache(&path).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        if len > 0 {
            out &= FileRegion::open_range(&path, 0, len).unwrap().is_cached() == Some(false);
        }
    }
    out
}

/// Every record value of partition 0 of `topic` from `offset` to `end`,
/// fetched 256 KiB at a time.
fn read_all(c: &mut Client, topic: &str, mut offset: i64, end: i64) -> Vec<Vec<u8>> {
    let mut values = Vec::new();
    while offset < end {
        let mut p = FetchPartition::default();
        p.fetch_offset = offset;
        p.partition_max_bytes = 256 * 1024;
        let mut t = FetchTopic::default();
        t.topic = topic_name(topic);
        t.partitions.push(p);
        let mut r = FetchRequest::default();
        r.replica_id = BrokerId(-1);
        r.max_bytes = 1 << 20;
        r.topics.push(t);
        let resp: FetchResponse = c.call(ApiKey::Fetch, 11, &r);
        let part = &resp.responses[0].partitions[0];
        assert_eq!(part.error_code, 0);
        let mut records = part.records.clone().expect("records");
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut records).unwrap();
        for set in sets {
            for rec in set.records {
                assert_eq!(rec.offset, offset, "every offset, in order");
                values.push(rec.value.unwrap().to_vec());
                offset += 1;
            }
        }
    }
    values
}

#[test]
fn a_fetch_of_records_out_of_the_page_cache_is_loaded_off_the_loop_and_served_whole() {
    let mut config = common::config("cold-fetch");
    config.workers = 1;
    // Small segments: the records are in closed ones, as old records are.
    config.log.segment_bytes = 64 * 1024;
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "cold", 1);
    let written: Vec<Vec<u8>> = (0..400u32)
        .map(|i| {
            let mut v = i.to_be_bytes().repeat(1024);
            v.truncate(4000);
            v
        })
        .collect();
    for chunk in written.chunks(10) {
        let values: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let resp: ProduceResponse = c.call(
            ApiKey::Produce,
            8,
            &produce_request("cold", batch::build(0, 1_000, &values)),
        );
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    }
    let end = common::end_offset(&mut c, "cold");
    assert_eq!(end, 400);
    let partition = config.data_dir.join("topics/cold/0");
    if !evict(&partition) {
        // A kernel before 6.5, or a data folder in memory (tmpfs):
        // nothing is ever cold that the broker could tell.
        eprintln!("skipped: the kernel cannot tell cached pages from cold ones here");
        broker.shutdown(std::time::Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&config.data_dir);
        return;
    }
    assert_eq!(broker.fetches_loaded(), 0);
    // Bytes the threads named so have read from storage, where the
    // kernel keeps the count.
    let reads = gyre_testkit::storage_read_bytes_of_threads;
    let accounting = gyre_testkit::storage_read_bytes(Path::new("/proc/self")).is_some();
    let (w0, l0, c0) = (
        reads("gyre-log-writer"),
        reads("gyre-broker-"),
        reads("gyre-cache-load"),
    );
    assert_eq!(read_all(&mut c, "cold", 0, end), written);
    let loaded = broker.fetches_loaded();
    assert!(
        loaded > 0,
        "cold fetches went straight to the writer and the loop"
    );
    if accounting {
        let writer = reads("gyre-log-writer") - w0;
        let looped = reads("gyre-broker-") - l0;
        let loader = reads("gyre-cache-load") - c0;
        // The 1.6 MB came off the disk on the loader's threads; a few
        // pages the kernel read ahead past a window may fall to others.
        assert!(loader >= 1_000_000, "the loader read {loader} bytes");
        assert!(
            writer < 64 * 1024,
            "the log writer read {writer} bytes from the disk"
        );
        assert!(
            looped < 64 * 1024,
            "the event loop read {looped} bytes from the disk"
        );
    }
    // Cached now: read again, at once.
    assert_eq!(read_all(&mut c, "cold", 0, end), written);
    assert_eq!(
        broker.fetches_loaded(),
        loaded,
        "a cached fetch waited on the loader"
    );
    broker.shutdown(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn a_share_fetch_of_records_out_of_the_page_cache_is_loaded_off_the_writer() {
    use gyre_broker::share::StartAt;
    let mut config = common::config("cold-share-fetch");
    config.workers = 1;
    config.log.segment_bytes = 64 * 1024;
    config.share_groups.start_at = StartAt::Earliest;
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    let topic_id = create_topic(&mut c, "cold-share", 1);
    for chunk in 0..40u32 {
        let values: Vec<Vec<u8>> = (0..10)
            .map(|i| (chunk * 10 + i).to_be_bytes().repeat(1000))
            .collect();
        let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let resp: ProduceResponse = c.call(
            ApiKey::Produce,
            8,
            &produce_request("cold-share", batch::build(0, 1_000, &values)),
        );
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    }
    if !evict(&config.data_dir.join("topics/cold-share/0")) {
        eprintln!("skipped: the kernel cannot tell cached pages from cold ones here");
        broker.shutdown(std::time::Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&config.data_dir);
        return;
    }
    let mut hb = ShareGroupHeartbeatRequest::default();
    hb.group_id = GroupId(topic_name("g").0);
    hb.member_id = topic_name("m").0;
    hb.subscribed_topic_names = Some(vec![topic_name("cold-share")]);
    let joined: ShareGroupHeartbeatResponse = c.call(ApiKey::ShareGroupHeartbeat, 1, &hb);
    assert_eq!(joined.error_code, 0);
    let reads = gyre_testkit::storage_read_bytes_of_threads;
    let accounting = gyre_testkit::storage_read_bytes(Path::new("/proc/self")).is_some();
    let (w0, c0) = (reads("gyre-log-writer"), reads("gyre-cache-load"));
    // Every record, 100 at a time, each fetch accepting the last one's.
    let mut got = 0i64;
    let mut acks: Option<(i64, i64)> = None;
    for epoch in 0..20 {
        let mut p = share_fetch_request::FetchPartition::default();
        if let Some((first, last)) = acks {
            let mut b = share_fetch_request::AcknowledgementBatch::default();
            b.first_offset = first;
            b.last_offset = last;
            b.acknowledge_types = vec![1];
            p.acknowledgement_batches.push(b);
        }
        let mut ft = share_fetch_request::FetchTopic::default();
        ft.topic_id = topic_id;
        ft.partitions.push(p);
        let mut r = ShareFetchRequest::default();
        r.group_id = Some(GroupId(topic_name("g").0));
        r.member_id = Some(topic_name("m").0);
        r.share_session_epoch = epoch;
        r.max_bytes = 1 << 20;
        r.max_records = 100;
        r.batch_size = 100;
        r.topics.push(ft);
        let resp: ShareFetchResponse = c.call(ApiKey::ShareFetch, 1, &r);
        assert_eq!(resp.error_code, 0);
        let Some(part) = resp.responses.first().and_then(|t| t.partitions.first()) else {
            break;
        };
        let Some(run) = part.acquired_records.first() else {
            break;
        };
        assert_eq!(run.first_offset, got, "the records in order, none twice");
        got = run.last_offset + 1;
        acks = Some((run.first_offset, run.last_offset));
        if got == 400 {
            break;
        }
    }
    assert_eq!(got, 400, "every record delivered");
    if accounting {
        let writer = reads("gyre-log-writer") - w0;
        let loader = reads("gyre-cache-load") - c0;
        assert!(loader >= 1_000_000, "the loader read {loader} bytes");
        assert!(
            writer < 64 * 1024,
            "the log writer read {writer} bytes from the disk"
        );
    }
    broker.shutdown(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}
