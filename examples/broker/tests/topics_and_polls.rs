//! Through a live broker: per-topic roll and retention settings from
//! CreateTopics, topics and records surviving a restart, and fetch long
//! polls (answered when records arrive, or empty when the wait runs out).

mod common;

use bytes::Bytes;
use common::Client;
use gyre_broker::log::batch;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::time::{Duration, Instant};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn produce_request(topic: &str, records: Vec<u8>) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.records = Some(Bytes::from(records));
    let mut t = TopicProduceData::default();
    t.name = name(topic);
    t.partition_data.push(p);
    let mut r = ProduceRequest::default();
    r.acks = -1;
    r.timeout_ms = 5000;
    r.topic_data.push(t);
    r
}

fn produce(c: &mut Client, topic: &str, records: Vec<u8>) -> i64 {
    let resp: ProduceResponse = c.call(ApiKey::Produce, 7, &produce_request(topic, records));
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0);
    p.base_offset
}

fn offset(c: &mut Client, topic: &str, timestamp: i64) -> i64 {
    let mut p = ListOffsetsPartition::default();
    p.timestamp = timestamp;
    let mut t = ListOffsetsTopic::default();
    t.name = name(topic);
    t.partitions.push(p);
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics.push(t);
    let resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 2, &r);
    resp.topics[0].partitions[0].offset
}

fn fetch_request(topic: &str, offset: i64, wait_ms: i32) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = name(topic);
    t.partitions.push(p);
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_wait_ms = wait_ms;
    r.min_bytes = 1;
    r.max_bytes = 50 << 20;
    r.topics.push(t);
    r
}

#[test]
fn per_topic_retention_rolls_and_deletes_and_topics_survive_a_restart() {
    let mut config = common::config("retention");
    config.retention_check = Duration::from_millis(20);
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    let mut t = CreatableTopic::default();
    t.name = name("small");
    t.num_partitions = 1;
    t.replication_factor = -1;
    for (k, v) in [("segment.bytes", "4096"), ("retention.bytes", "8192")] {
        let mut cfg = CreatableTopicConfig::default();
        cfg.name = StrBytes::from_static_str(k);
        cfg.value = Some(StrBytes::from_static_str(v));
        t.configs.push(cfg);
    }
    let mut r = CreateTopicsRequest::default();
    r.topics.push(t);
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 3, &r);
    assert_eq!(resp.topics[0].error_code, 0);
    // A bad config is refused by name.
    let mut bad = CreateTopicsRequest::default();
    let mut t = CreatableTopic::default();
    t.name = name("bad");
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut cfg = CreatableTopicConfig::default();
    cfg.name = StrBytes::from_static_str("cleanup.policy");
    cfg.value = Some(StrBytes::from_static_str("shred"));
    t.configs.push(cfg);
    bad.topics.push(t);
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 3, &bad);
    assert_eq!(resp.topics[0].error_code, 40, "INVALID_CONFIG");

    let value = [7u8; 900];
    // Recent timestamps, so only the size limit applies.
    let now = gyre_broker::log::now_ms();
    for i in 0..100 {
        let base = produce(&mut c, "small", batch::build(0, now + i, &[&value]));
        assert_eq!(base, i);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while offset(&mut c, "small", -2) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let a few more retention passes run: it has nothing more to do.
    std::thread::sleep(Duration::from_millis(200));
    let earliest = offset(&mut c, "small", -2);
    assert!(earliest > 0, "retention deleted old segments");
    let dir = config.data_dir.join("topics/small/0");
    let segments = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count();
    assert!(
        (2..=4).contains(&segments),
        "rolled at 4 KiB, kept ~8 KiB: {segments} segments"
    );
    assert_eq!(offset(&mut c, "small", -1), 100);
    drop(c);
    broker.shutdown(Duration::from_secs(5));

    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    assert_eq!(
        offset(&mut c, "small", -1),
        100,
        "records survive a restart"
    );
    assert_eq!(offset(&mut c, "small", -2), earliest);
    assert_eq!(
        produce(&mut c, "small", batch::build(0, 5_000, &[b"x"])),
        100
    );
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

fn create(c: &mut Client, topic: &str) {
    let mut t = CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut r = CreateTopicsRequest::default();
    r.topics.push(t);
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 3, &r);
    assert_eq!(resp.topics[0].error_code, 0);
}

#[test]
fn a_long_poll_waits_for_records_or_its_max_wait() {
    let config = common::config("longpoll");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create(&mut c, "polled");
    // Nothing arrives: the answer comes empty after max_wait.
    let started = Instant::now();
    let r: FetchResponse = c.call(ApiKey::Fetch, 11, &fetch_request("polled", 0, 400));
    let waited = started.elapsed();
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 0));
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
    assert!(waited >= Duration::from_millis(380), "waited {waited:?}");
    // Records arrive while a fetch waits: it is answered then, not at the
    // end of its 10 s wait.
    let mut waiting = Client::connect(broker.local_addr());
    let started = Instant::now();
    let id = waiting.send(ApiKey::Fetch, 11, &fetch_request("polled", 0, 10_000));
    std::thread::sleep(Duration::from_millis(200));
    let records = batch::build(0, 1, &[b"hello"]);
    produce(&mut c, "polled", records.clone());
    let (got, mut body) = waiting.receive().unwrap();
    assert_eq!(got, id);
    let waited = started.elapsed();
    let r = <FetchResponse as kafka_protocol::protocol::Decodable>::decode(&mut body, 11).unwrap();
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.high_watermark, 1);
    // As stored: with its offset, and the leader epoch it was appended in
    // (a new folder's first start is epoch 1).
    let mut stored = records.clone();
    batch::set_leader_epoch(&mut stored, 1);
    assert_eq!(
        p.records.as_deref(),
        Some(&stored[..]),
        "the batch as stored"
    );
    assert!(
        waited < Duration::from_secs(5),
        "answered on arrival: {waited:?}"
    );
    // A fetch past the end is out of range, at once.
    let r: FetchResponse = c.call(ApiKey::Fetch, 11, &fetch_request("polled", 5, 10_000));
    assert_eq!(
        r.responses[0].partitions[0].error_code, 1,
        "OFFSET_OUT_OF_RANGE"
    );
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

fn creatable(
    topic: &str,
    partitions: i32,
    configs: &[(&'static str, &'static str)],
) -> CreatableTopic {
    let mut t = CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = -1;
    for (k, v) in configs {
        let mut cfg = CreatableTopicConfig::default();
        cfg.name = StrBytes::from_static_str(k);
        cfg.value = Some(StrBytes::from_static_str(v));
        t.configs.push(cfg);
    }
    t
}

fn create_topics(
    c: &mut Client,
    version: i16,
    validate_only: bool,
    topics: Vec<CreatableTopic>,
) -> CreateTopicsResponse {
    let mut r = CreateTopicsRequest::default();
    r.timeout_ms = 5000;
    r.validate_only = validate_only;
    r.topics = topics;
    c.call(ApiKey::CreateTopics, version, &r)
}

/// A validate-only CreateTopics (kafka-python's and kafkajs's
/// `validate_only`) answers what creation would make and creates nothing;
/// before, every topic of one was answered INVALID_REQUEST ("no answer").
/// From v5 a topic created or validated comes back with its partitions,
/// replication factor and configs (KIP-525), and a name given twice is
/// refused in both its entries, as Kafka does.
#[test]
fn validate_only_create_topics_answers_what_creation_would_make() {
    let config = common::config("validate-only");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    let resp = create_topics(
        &mut c,
        7,
        true,
        vec![
            creatable("planned", -1, &[("retention.ms", "60000")]),
            creatable("zero", 0, &[]),
            creatable("odd", 1, &[("cleanup.policy", "shred")]),
            creatable("twice", 1, &[]),
            creatable("twice", 2, &[]),
        ],
    );
    let codes: Vec<i16> = resp.topics.iter().map(|t| t.error_code).collect();
    // INVALID_PARTITIONS 37, INVALID_CONFIG 40, INVALID_REQUEST 42.
    assert_eq!(codes, [0, 37, 40, 42, 42], "{resp:?}");
    let planned = &resp.topics[0];
    assert_eq!(
        (planned.num_partitions, planned.replication_factor),
        (config.default_partitions, 1)
    );
    let configs = planned.configs.as_ref().expect("v5+ lists the configs");
    let retention = configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_deref(), Some("60000"));
    assert_eq!(retention.config_source, 1, "TOPIC_CONFIG: its own");
    let segment = configs
        .iter()
        .find(|c| c.name.as_str() == "segment.bytes")
        .unwrap();
    assert_eq!(segment.config_source, 5, "DEFAULT_CONFIG");
    assert!(configs
        .iter()
        .any(|c| c.name.as_str() == "min.insync.replicas" && c.read_only));

    // Nothing was created: creating it now succeeds, and says the same.
    let resp = create_topics(
        &mut c,
        7,
        false,
        vec![creatable("planned", 3, &[("retention.ms", "60000")])],
    );
    let made = &resp.topics[0];
    assert_eq!(made.error_code, 0, "{resp:?}");
    assert_eq!(made.num_partitions, 3);
    assert!(!made.topic_id.is_nil());
    let configs = made.configs.as_ref().unwrap();
    assert!(configs
        .iter()
        .any(|c| c.name.as_str() == "retention.ms" && c.value.as_deref() == Some("60000")));
    // Validating it again finds it.
    let resp = create_topics(&mut c, 7, true, vec![creatable("planned", 1, &[])]);
    assert_eq!(resp.topics[0].error_code, 36, "TOPIC_ALREADY_EXISTS");
    // v3 validates too (its answer carries only the outcome).
    let resp = create_topics(&mut c, 3, true, vec![creatable("older", 2, &[])]);
    assert_eq!(resp.topics[0].error_code, 0);
    let resp = create_topics(&mut c, 3, true, vec![creatable("older", 0, &[])]);
    assert_eq!(resp.topics[0].error_code, 37);
    // A name twice is refused in a creating request as well, and neither
    // entry is made.
    let resp = create_topics(
        &mut c,
        7,
        false,
        vec![creatable("dup", 1, &[]), creatable("dup", 1, &[])],
    );
    assert_eq!(
        resp.topics.iter().map(|t| t.error_code).collect::<Vec<_>>(),
        [42, 42]
    );
    let resp = create_topics(&mut c, 7, false, vec![creatable("dup", 1, &[])]);
    assert_eq!(
        resp.topics[0].error_code, 0,
        "the refused request made nothing"
    );
}
