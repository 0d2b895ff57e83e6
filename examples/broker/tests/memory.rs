//! The broker's request memory is bounded server-wide (Kafka's
//! `queued.max.request.bytes`): sixteen connections each sending a 24 MiB
//! produce request to a broker bounded at 32 MiB are served one or two at a
//! time, the broker's resident memory stays near the bound instead of
//! reaching 16 x 24 MiB, and every request is answered and written.
//! State the coordinator keeps (a member's protocols, its assignment)
//! holds copies, not views of the requests that brought it: a view keeps
//! its whole request, and the request's share of that bound, for as long
//! as the state lasts.

mod common;

use common::process::BrokerProcess;
use common::{create_topic, produce_request, Client};
use gyre_broker::log::batch;
use kafka_protocol::messages::{
    sync_group_request, ApiKey, JoinGroupResponse, ProduceResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The resident set of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn sixteen_24_mib_requests_stay_within_the_server_wide_bound_and_all_land() {
    const MIB: usize = 1 << 20;
    let data = common::data_dir("memory");
    let broker = BrokerProcess::start(
        &data,
        &[
            "--queued-max-request-bytes",
            &(32 * MIB).to_string(),
            "--flush",
            "never",
            // One 24 MiB batch per request: above Kafka's default limit.
            "--message-max-bytes",
            &(32 * MIB).to_string(),
        ],
    );
    let addr = broker.addr.parse().unwrap();
    create_topic(&mut Client::connect(addr), "big", 1);
    let value = vec![b'v'; 24 * MIB];
    let request = produce_request("big", batch::build(0, 1_700_000_000_000, &[&value]));
    drop(value);
    let baseline = rss(broker.child.id());

    let done = AtomicBool::new(false);
    let peak = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss(broker.child.id()));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        let senders: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    let mut c = Client::connect(addr);
                    c.stream
                        .set_read_timeout(Some(Duration::from_secs(60)))
                        .unwrap();
                    let r: ProduceResponse = c.call(ApiKey::Produce, 8, &request);
                    r.responses[0].partition_responses[0].error_code
                })
            })
            .collect();
        let codes: Vec<i16> = senders
            .into_iter()
            .map(|s| s.join().unwrap_or(-1))
            .collect();
        // The watcher stops before any check can fail, so a failure is
        // reported rather than waited on.
        done.store(true, Ordering::Relaxed);
        assert_eq!(codes, vec![0; 16], "every request is written");
        watcher.join().unwrap()
    });
    let grew = peak.saturating_sub(baseline);
    eprintln!(
        "broker RSS {} MiB at rest, peak {} MiB",
        baseline >> 20,
        peak >> 20
    );
    // The bound, plus requests complete and being written (each at most
    // one request size), not 16 x 24 MiB.
    assert!(
        grew < 160 * MIB as u64,
        "the broker grew by {} MiB under 16 x 24 MiB of requests",
        grew >> 20
    );
    let mut c = Client::connect(addr);
    let end = common::end_offset(&mut c, "big");
    assert_eq!(end, 16, "all sixteen records written once");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn group_members_keep_no_request_and_so_none_of_the_request_memory() {
    const MIB: usize = 1 << 20;
    let mut config = common::config("memory-groups");
    config.queued_max_request_bytes = 8 * MIB;
    let broker = common::start(&config);
    let addr = broker.local_addr();
    let mut admin = Client::connect(addr);
    create_topic(&mut admin, "t", 1);
    // Two static members whose JoinGroup carries a 3.9 MiB reason the
    // group has no use for: a member that kept a view of its protocols
    // kept the whole request, and the two held 7.8 of the 8 MiB.
    let mut members = Vec::new();
    for i in 0..2 {
        let mut c = Client::connect(addr);
        let group = format!("held{i}");
        let mut join = common::groups::classic_join(&group, "", Some("s1"));
        join.reason = Some(kafka_protocol::protocol::StrBytes::from_string(
            "r".repeat(3_900 * 1024),
        ));
        let joined: JoinGroupResponse = c.call(ApiKey::JoinGroup, 9, &join);
        assert_eq!(joined.error_code, 0, "{joined:?}");
        // Synced, the group is stable: its member stays for its session
        // (10 s), longer than this test.
        let mut sync = SyncGroupRequest::default();
        sync.group_id = join.group_id.clone();
        sync.member_id = joined.member_id.clone();
        sync.group_instance_id = join.group_instance_id.clone();
        sync.generation_id = joined.generation_id;
        let mut a = sync_group_request::SyncGroupRequestAssignment::default();
        a.member_id = joined.member_id.clone();
        a.assignment = bytes::Bytes::from_static(b"\x00\x00");
        sync.assignments.push(a);
        let synced: SyncGroupResponse = c.call(ApiKey::SyncGroup, 5, &sync);
        assert_eq!(synced.error_code, 0, "{synced:?}");
        members.push(c);
    }
    // A 1 MiB produce fits only if the members hold nothing.
    let mut producer = Client::connect(addr);
    producer
        .stream
        .set_read_timeout(Some(Duration::from_secs(4)))
        .unwrap();
    let value = vec![7u8; MIB];
    let r = produce_request("t", batch::build(0, 1_700_000_000_000, &[&value]));
    let id = producer.send(ApiKey::Produce, 8, &r);
    let (got, _) = producer
        .receive()
        .expect("a produce waited for request memory the group members held");
    assert_eq!(got, id);
    // The produce's reservation comes back when the last view of its bytes
    // drops, on the log writer's thread, which may be just after its
    // answer left: waited for, within a bound.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while broker.request_memory().0 != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(broker.request_memory().0, 0, "request memory still held");
    drop(members);
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}
