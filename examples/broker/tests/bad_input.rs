//! Bad input against a live broker: each bad request closes its own
//! connection (or gets the protocol's error), and other connections and
//! the logs are unharmed.

mod common;

use common::{create_topic as create, end_offset, produce_request, topic_name as name, Client};
use gyre_broker::log::batch;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    ProduceResponse,
};
use kafka_protocol::protocol::Decodable;
use std::io::{Read, Write};
use std::time::Duration;

fn produce(client: &mut Client, topic: &str, records: Vec<u8>) -> (i16, i64) {
    let resp: ProduceResponse = client.call(ApiKey::Produce, 8, &produce_request(topic, records));
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn still_serves(addr: std::net::SocketAddr) {
    let mut c = Client::connect(addr);
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 2, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
}

#[test]
fn malformed_requests_close_only_their_connection() {
    let config = common::config("malformed");
    let broker = common::start(&config);
    let addr = broker.local_addr();
    let mut bystander = Client::connect(addr);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated header", vec![0, 3, 0]),
        (
            "unknown api key",
            vec![0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff],
        ),
        (
            "unsupported fetch version",
            vec![0, 1, 0, 99, 0, 0, 0, 1, 0xff, 0xff],
        ),
        (
            "client id overrun",
            vec![0, 3, 0, 1, 0, 0, 0, 1, 0, 50, b'x'],
        ),
        // A Produce v8 header and a body of garbage.
        (
            "garbage body",
            [&[0u8, 0, 0, 8, 0, 0, 0, 1, 0xff, 0xff][..], &[0xab; 40]].concat(),
        ),
        // The fuzzer's find: kafka-protocol would size this array's Vec
        // from the count (2^31 - 1 topics, ~80 GB) and the failed
        // allocation would abort the whole broker.
        (
            "metadata claiming 2^31 - 1 topics",
            vec![
                0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0, 0,
            ],
        ),
        // The same deeper down: a produce whose one topic claims a billion
        // partitions.
        (
            "produce claiming 10^9 partitions",
            vec![
                0, 0, 0, 8, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0x13, 0x88, 0, 0, 0, 1,
                0, 1, b't', 0x3b, 0x9a, 0xca, 0x00, 0, 0,
            ],
        ),
    ];
    for (what, frame) in cases {
        let mut c = Client::connect(addr);
        c.send_raw(&frame);
        assert!(c.is_closed(), "{what}: the connection is closed");
        still_serves(addr);
    }
    // A size over the limit is refused before it is buffered.
    let mut c = Client::connect(addr);
    use std::io::Write;
    c.stream
        .write_all(&((config.max_request_size + 1) as i32).to_be_bytes())
        .unwrap();
    assert!(c.is_closed(), "an oversized request closes its connection");
    // The first connection never noticed.
    let r: ApiVersionsResponse =
        bystander.call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn api_versions_beyond_ours_gets_error_35_and_our_ranges_at_v0() {
    let config = common::config("apiversions");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    // A version newer than any the broker (or kafka-protocol) knows: the
    // header by hand, as a client from the future would send it.
    c.send_raw(&[0, 18, 0, 99, 0, 0, 0, 42, 0xff, 0xff]);
    let (got, mut body) = c.receive().unwrap();
    assert_eq!(got, 42);
    let r = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(r.error_code, 35);
    let fetch = r
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Fetch as i16)
        .unwrap();
    assert_eq!((fetch.min_version, fetch.max_version), (4, 18));
    let commit = r
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::OffsetCommit as i16)
        .unwrap();
    assert_eq!((commit.min_version, commit.max_version), (2, 9));
    // The connection goes on at a version listed, flexible (v3) or not.
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 2, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
    assert!(r
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::DescribeCluster as i16));
    // The feature levels (KIP-584): v3 leaves out the ranges that start
    // at 0 and lists what is finalized; v4 lists the ranges too.
    let finalized = |r: &ApiVersionsResponse| {
        let named = r.finalized_features.iter();
        named
            .map(|f| (f.name.to_string(), f.max_version_level))
            .collect::<Vec<_>>()
    };
    let on = vec![
        ("group.version".to_owned(), 1),
        ("share.version".to_owned(), 1),
    ];
    assert!(r.supported_features.is_empty());
    assert_eq!(finalized(&r), on);
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 4, &ApiVersionsRequest::default());
    let supported: Vec<_> = r
        .supported_features
        .iter()
        .map(|f| f.name.to_string())
        .collect();
    assert_eq!(
        supported,
        ["group.version", "share.version", "transaction.version"]
    );
    assert_eq!(finalized(&r), on);
    assert_eq!(r.finalized_features_epoch, 0);
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn a_corrupt_batch_is_refused_whole_and_a_deleted_topic_takes_no_records() {
    let config = common::config("corrupt");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create(&mut c, "orders", 1);
    let good = batch::build(0, 1_700_000_000_000, &[b"a", b"b"]);
    assert_eq!(produce(&mut c, "orders", good.clone()), (0, 0));
    let mut flipped = batch::build(0, 1_700_000_000_000, &[b"c", b"d"]);
    let last = flipped.len() - 1;
    flipped[last] ^= 0x10;
    // A good batch followed by a corrupt one: neither is appended.
    let both = [good.clone(), flipped].concat();
    assert_eq!(produce(&mut c, "orders", both), (2, -1), "CORRUPT_MESSAGE");
    assert_eq!(
        produce(&mut c, "orders", vec![1, 2, 3]).0,
        2,
        "a torn batch"
    );
    assert_eq!(
        end_offset(&mut c, "orders"),
        2,
        "nothing after the good batch"
    );

    let mut d = DeleteTopicsRequest::default();
    d.topic_names.push(name("orders"));
    d.timeout_ms = 5000;
    let resp: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 3, &d);
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(
        produce(&mut c, "orders", good).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert!(!config.data_dir.join("topics/orders").exists());
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn a_batch_over_the_size_limit_is_refused_saying_so_and_the_log_start_is_answered() {
    let mut config = common::config("too-large");
    config.log.max_message_bytes = 1024;
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create(&mut c, "limits", 1);
    let small = batch::build(0, 1_700_000_000_000, &[b"a"]);
    let big = batch::build(0, 1_700_000_000_000, &[&[b'x'; 2000][..]]);
    let big_len = big.len();
    for version in [8, 9] {
        let resp: ProduceResponse = c.call(
            ApiKey::Produce,
            version,
            &produce_request("limits", big.clone()),
        );
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (10, -1), "MESSAGE_TOO_LARGE");
        let said = p
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default();
        assert_eq!(
            said,
            format!("a record batch of {big_len} bytes is larger than the topic's max.message.bytes 1024"),
            "v{version}"
        );
    }
    let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &produce_request("limits", small));
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset, p.log_start_offset), (0, 0, 0));
    assert_eq!(end_offset(&mut c, "limits"), 1, "nothing of the big batch");
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn a_client_refused_in_a_loop_cannot_flood_the_log() {
    // Before: one warning per refused connection. A fuzzing run of 20,000
    // bad requests wrote 6.8 MB of them in ten seconds: a client doing it
    // for a day would fill the log's disk.
    let data = common::data_dir("log-flood");
    let broker = common::process::BrokerProcess::start(&data, &[]);
    let addr: std::net::SocketAddr = broker.addr.parse().unwrap();
    let unknown_api = [0u8, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
    let refuse = |n: usize| {
        for _ in 0..n {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(&unknown_api).unwrap();
            // Closed by the broker, unanswered.
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        }
    };
    let started = std::time::Instant::now();
    refuse(300);
    let lines = |log: &str| {
        log.lines()
            .filter(|l| l.contains("closing connection"))
            .count()
    };
    let logged = lines(&broker.stderr());
    let most = 20 + started.elapsed().as_secs() as usize + 1;
    assert!(
        (20..=most).contains(&logged),
        "{logged} warnings for 300 refusals (at most {most})"
    );
    // A second on, the next refusal is logged, and says how many were
    // held back.
    std::thread::sleep(Duration::from_millis(1_100));
    refuse(1);
    let log = broker.stderr();
    assert_eq!(lines(&log), logged + 1);
    let last = log
        .lines()
        .rfind(|l| l.contains("closing connection"))
        .unwrap();
    assert!(last.contains("held_back"), "{last}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}
