//! The broker's request memory is bounded server-wide (Kafka's
//! `queued.max.request.bytes`): sixteen connections each sending a 24 MiB
//! produce request to a broker bounded at 32 MiB are served one or two at a
//! time, the broker's resident memory stays near the bound instead of
//! reaching 16 x 24 MiB, and every request is answered and written.

mod common;

use common::process::BrokerProcess;
use common::{create_topic, produce_request, Client};
use gyre_broker::log::batch;
use kafka_protocol::messages::{ApiKey, ProduceResponse};
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
