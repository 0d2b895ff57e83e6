//! Transactions across a broker's stops, over raw requests: a transaction
//! left open by a `kill -9` holds `read_committed` readers back (the last
//! stable offset) and is still open when the broker comes back, as in
//! Kafka: its producer adds to it at the same epoch and ends it, and
//! readers then move on and are told what to drop; what the partition
//! knows of aborted transactions is read back
//! from its log after an unclean stop and from its snapshot after a clean
//! one. An OffsetFetch asking for stable offsets waits while a
//! transaction carries offsets for the partition. And librdkafka's
//! transactions stay atomic while the broker is killed twice under them
//! (`clients/transactions_crash.py`). The clients' side
//! (librdkafka, kafka-python, aiokafka, kafkajs) is in `clients.rs`.

mod common;

use common::process::BrokerProcess;
use common::{create_topic, produce_request, topic_name, Client};
use gyre_broker::log::batch;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn client(broker: &BrokerProcess) -> Client {
    Client::connect(broker.addr.parse::<SocketAddr>().unwrap())
}

fn txn_id() -> TransactionalId {
    TransactionalId(StrBytes::from_static_str("held"))
}

/// InitProducerId for the transactional id: (producer id, epoch),
/// retrying while the coordinator finishes an earlier transaction.
fn init(c: &mut Client) -> (i64, i16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut r = InitProducerIdRequest::default();
        r.transactional_id = Some(txn_id());
        r.transaction_timeout_ms = 60_000;
        let resp: InitProducerIdResponse = c.call(ApiKey::InitProducerId, 2, &r);
        if resp.error_code == 51 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        assert_eq!(resp.error_code, 0, "{resp:?}");
        return (resp.producer_id.0, resp.producer_epoch);
    }
}

/// Ends the transaction of (`pid`, `epoch`): a commit or an abort, which
/// must succeed.
fn end_txn(c: &mut Client, pid: i64, epoch: i16, commit: bool) {
    let mut end = EndTxnRequest::default();
    end.transactional_id = txn_id();
    end.producer_id = ProducerId(pid);
    end.producer_epoch = epoch;
    end.committed = commit;
    let resp: EndTxnResponse = c.call(ApiKey::EndTxn, 1, &end);
    assert_eq!(resp.error_code, 0);
}

/// The latest offset of partition 0 for a reader of `isolation`.
fn latest(c: &mut Client, isolation: i8) -> i64 {
    let mut p = ListOffsetsPartition::default();
    p.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = topic_name("tx");
    t.partitions.push(p);
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.isolation_level = isolation;
    r.topics.push(t);
    let resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 5, &r);
    resp.topics[0].partitions[0].offset
}

/// A read_committed fetch of partition 0 from offset 0: its last stable
/// offset, the aborted transactions it lists, and its bytes.
fn fetch_committed(c: &mut Client) -> (i64, Vec<(i64, i64)>, usize) {
    let mut p = FetchPartition::default();
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = topic_name("tx");
    t.partitions.push(p);
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_bytes = 1 << 20;
    r.isolation_level = 1;
    r.topics.push(t);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 11, &r);
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let aborted = p
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    let len = p.records.as_ref().map_or(0, |r| r.len());
    (p.last_stable_offset, aborted, len)
}

#[test]
fn a_transaction_left_open_by_a_crash_goes_on_after_the_restart_and_readers_wait_for_its_end() {
    let data = common::data_dir("txn-crash");
    let mut broker = BrokerProcess::start(&data, &[]);
    let mut c = client(&broker);
    create_topic(&mut c, "tx", 1);
    let (pid, epoch) = init(&mut c);
    assert_eq!(epoch, 0);
    let mut topic = AddPartitionsToTxnTopic::default();
    topic.name = topic_name("tx");
    topic.partitions = vec![0];
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = txn_id();
    add.v3_and_below_producer_id = ProducerId(pid);
    add.v3_and_below_producer_epoch = epoch;
    add.v3_and_below_topics = vec![topic];
    let resp: AddPartitionsToTxnResponse = c.call(ApiKey::AddPartitionsToTxn, 1, &add);
    assert_eq!(
        resp.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    // A transactional batch from a producer whose transaction did not add
    // the partition is refused (it would open a transaction nothing ends).
    let mut stray = batch::build(0, 1_700_000_000_000, &[b"stray"]);
    batch::set_producer(&mut stray, pid + 1, 0, 0);
    batch::set_transactional(&mut stray);
    let resp: ProduceResponse = c.call(ApiKey::Produce, 7, &produce_request("tx", stray));
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 48);
    // The transaction's batch at offset 0, a plain one at 1.
    let mut held = batch::build(0, 1_700_000_000_000, &[b"held"]);
    batch::set_producer(&mut held, pid, epoch, 0);
    batch::set_transactional(&mut held);
    for records in [held, batch::build(0, 1_700_000_000_000, &[b"plain"])] {
        let mut r = produce_request("tx", records);
        r.transactional_id = Some(txn_id());
        let resp: ProduceResponse = c.call(ApiKey::Produce, 7, &r);
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    }
    assert_eq!((latest(&mut c, 0), latest(&mut c, 1)), (2, 0));
    let (lso, aborted, bytes) = fetch_committed(&mut c);
    assert_eq!(
        (lso, aborted, bytes),
        (0, vec![], 0),
        "nothing is stable yet"
    );

    broker.stop(libc::SIGKILL);
    let mut broker = BrokerProcess::start(&data, &[]);
    let mut c = client(&broker);
    // The transaction is still open, as Kafka's coordinator keeps it:
    // readers are still held at its first batch.
    assert_eq!((latest(&mut c, 0), latest(&mut c, 1)), (2, 0));
    assert!(
        broker
            .stderr()
            .contains("keeping a transaction open across a stop"),
        "{}",
        broker.stderr()
    );
    // Its producer goes on at its epoch: the partition takes its next
    // batch (the writer was told again that it was added) ...
    let mut more = batch::build(0, 1_700_000_000_000, &[b"more"]);
    batch::set_producer(&mut more, pid, epoch, 1);
    batch::set_transactional(&mut more);
    let mut r = produce_request("tx", more);
    r.transactional_id = Some(txn_id());
    let resp: ProduceResponse = c.call(ApiKey::Produce, 7, &r);
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    // ... and ends it: an abort, its marker at 3, everything stable.
    end_txn(&mut c, pid, epoch, false);
    assert_eq!(latest(&mut c, 1), 4);
    let (lso, aborted, bytes) = fetch_committed(&mut c);
    assert_eq!((lso, &aborted[..]), (4, &[(pid, 0)][..]));
    assert!(bytes > 0);
    // Its epoch was not bumped: the next producer gets the one after.
    assert_eq!(init(&mut c), (pid, 1));

    // A clean stop: the aborted transaction is read back from the
    // partition's snapshot.
    broker.stop(libc::SIGTERM);
    assert!(data.join("topics/tx/0/transactions.snapshot").is_file());
    let broker = BrokerProcess::start(&data, &[]);
    let mut c = client(&broker);
    let (lso, aborted, _) = fetch_committed(&mut c);
    assert_eq!((lso, &aborted[..]), (4, &[(pid, 0)][..]));
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

/// OffsetFetch for the group and partition 0 of `tx`: (error, offset).
fn fetch_offset(c: &mut Client, require_stable: bool) -> (i16, i64) {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    let mut t = OffsetFetchRequestTopic::default();
    t.name = topic_name("tx");
    t.partition_indexes = vec![0];
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(StrBytes::from_static_str("g"));
    r.topics = Some(vec![t]);
    r.require_stable = require_stable;
    let resp: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 7, &r);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

#[test]
fn stable_offset_fetches_wait_for_a_transaction_carrying_offsets() {
    use kafka_protocol::messages::txn_offset_commit_request::*;
    let config = common::config("txn-stable");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "tx", 1);
    let (pid, epoch) = init(&mut c);
    let mut add = AddOffsetsToTxnRequest::default();
    add.transactional_id = txn_id();
    add.producer_id = ProducerId(pid);
    add.producer_epoch = epoch;
    add.group_id = GroupId(StrBytes::from_static_str("g"));
    let resp: AddOffsetsToTxnResponse = c.call(ApiKey::AddOffsetsToTxn, 1, &add);
    assert_eq!(resp.error_code, 0);
    let mut p = TxnOffsetCommitRequestPartition::default();
    p.committed_offset = 42;
    let mut t = TxnOffsetCommitRequestTopic::default();
    t.name = topic_name("tx");
    t.partitions = vec![p];
    let mut commit = TxnOffsetCommitRequest::default();
    commit.transactional_id = txn_id();
    commit.group_id = GroupId(StrBytes::from_static_str("g"));
    commit.producer_id = ProducerId(pid);
    commit.producer_epoch = epoch;
    commit.generation_id = -1;
    commit.topics = vec![t];
    let resp: TxnOffsetCommitResponse = c.call(ApiKey::TxnOffsetCommit, 2, &commit);
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    // Open: a stable read must wait; an unstable one sees nothing yet.
    assert_eq!(fetch_offset(&mut c, true), (88, -1));
    assert_eq!(fetch_offset(&mut c, false), (0, -1));
    end_txn(&mut c, pid, epoch, true);
    assert_eq!(fetch_offset(&mut c, true), (0, 42));
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn transactions_stay_atomic_for_librdkafka_across_two_kill_9s() {
    // The script runs the broker binary itself, kills it twice mid-run
    // and starts it again on the same folder and port.
    let data = common::data_dir("txn-kill9");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients/transactions_crash.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_gyre-broker"))
        .arg(&data)
        .output()
        .expect("python3 runs (scripts/test installs confluent-kafka)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("crash atomic ok"),
        "{stdout}\n{}\nbroker log: {}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
    );
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(data.with_extension("log"));
}

#[test]
fn a_transactional_produce_needs_write_on_its_transactional_id() {
    use gyre_broker::security::{Authorizer, AuthorizerConfig};
    let mut config = common::config("txn-acl");
    config.authorizer = AuthorizerConfig {
        enabled: true,
        allow_if_no_acl: true,
        ..AuthorizerConfig::default()
    };
    // Someone else holds the transactional id: ANONYMOUS may not use it,
    // while the topic, which no ACL names, is open to all.
    let acls = Authorizer::path_in(&config.data_dir);
    std::fs::create_dir_all(acls.parent().unwrap()).unwrap();
    std::fs::write(&acls, "5\t3\t4\t3\tUser:owner\t*\theld\n").unwrap();
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    create_topic(&mut c, "tx", 1);
    let mut r = produce_request("tx", batch::build(0, 0, &[b"plain"]));
    let resp: ProduceResponse = c.call(ApiKey::Produce, 7, &r);
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    r.transactional_id = Some(txn_id());
    let resp: ProduceResponse = c.call(ApiKey::Produce, 7, &r);
    assert_eq!(
        resp.responses[0].partition_responses[0].error_code, 53,
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    );
    broker.shutdown(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn an_add_naming_no_partition_for_an_unknown_transactional_id_is_answered_and_the_coordinator_goes_on(
) {
    // Found by fuzzing the broker with mutated client requests: the
    // coordinator took a list of no partitions as all good and looked the
    // unknown id up, which panicked its thread; every group and
    // transaction request after that went unanswered.
    let data = common::data_dir("txn-empty-add");
    let broker = BrokerProcess::start(&data, &[]);
    let mut c = client(&broker);
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id =
        TransactionalId(StrBytes::from_static_str("never-initialized"));
    add.v3_and_below_producer_id = ProducerId(12_345);
    let resp: AddPartitionsToTxnResponse = c.call(ApiKey::AddPartitionsToTxn, 3, &add);
    assert!(resp.results_by_topic_v3_and_below.is_empty(), "{resp:?}");
    // The coordinator still serves.
    let (_, epoch) = init(&mut c);
    assert_eq!(epoch, 0);
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}
