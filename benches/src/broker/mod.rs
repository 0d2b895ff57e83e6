//! The broker benchmark's cases: gyre-broker in this process on a free
//! port, driven by librdkafka (the `rdkafka` crate) as any Kafka user's
//! program would drive it.
//!
//! Three cases, each on a fresh topic of one partition (and, with
//! `--transactions`, the first two again under transactions):
//! - [`produce`]: one producer sends `n` 100-byte records as fast as
//!   librdkafka batches them (`acks=1`, the broker on `interval` flush);
//!   the clock stops at the last delivery report.
//! - [`consume`]: one consumer reads those records from the beginning; the
//!   clock runs from its first batch of records to its last record. The time from assignment
//!   to the first record is reported apart: it is librdkafka's group
//!   start-up (about half a second, whatever the broker), not throughput.
//! - [`produce_in_transactions`]: [`produce`] from a transactional
//!   producer (idempotent, `acks=all`), `per_txn` records per transaction,
//!   each committed before the next begins; [`consume`] with
//!   `isolation.level=read_committed` reads them back.
//! - [`latency`]: a producer paced at a fixed rate and a consumer tailing the
//!   topic; each record carries its intended send time, so a stall anywhere
//!   (client, broker, pacing) shows in the histogram rather than being hidden
//!   by a late send. The clock starts once a warm-up record has made the
//!   whole trip, so client start-up is not counted as latency.
//!
//! Every record carries its sequence number; each case checks that every
//! record arrived, in order (count and sum), so a fast wrong answer cannot
//! pass as a result.

mod batch;
pub mod cold;
pub mod compaction;
pub mod quotas;

use batch::BatchReader;
use gyre_broker::writer::FlushPolicy;
use gyre_broker::{Broker, BrokerConfig};
use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of each record's value, as the issue fixes them.
pub const RECORD_BYTES: usize = 100;

/// The sequence number of the latency run's warm-up record.
const WARM_UP: u64 = u64::MAX;

/// A broker for the benchmark, with its data in a folder of its own that
/// is removed when it stops.
pub struct BenchBroker {
    broker: Option<Broker>,
    data_dir: PathBuf,
}

impl BenchBroker {
    /// Starts gyre-broker on a free loopback port with `workers` loops and
    /// the flush policy `flush`.
    pub fn start(workers: usize, flush: FlushPolicy) -> BenchBroker {
        Self::start_with("plain", workers, flush, |_| {})
    }

    /// [`start`](Self::start) with its own data folder (named by `tag`)
    /// and settings changed by `tweak`.
    pub fn start_with(
        tag: &str,
        workers: usize,
        flush: FlushPolicy,
        tweak: impl FnOnce(&mut BrokerConfig),
    ) -> BenchBroker {
        let data_dir =
            std::env::temp_dir().join(format!("gyre-broker-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let mut config = BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.clone(),
            workers,
            flush,
            ..BrokerConfig::default()
        };
        tweak(&mut config);
        let broker = Broker::start(&config).expect("broker starts");
        BenchBroker {
            broker: Some(broker),
            data_dir,
        }
    }

    /// Where clients reach it.
    pub fn addr(&self) -> SocketAddr {
        self.broker.as_ref().expect("running").local_addr()
    }

    /// The running broker.
    pub fn broker(&self) -> &Broker {
        self.broker.as_ref().expect("running")
    }

    /// Its data folder.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Starts gyre-broker as [`start`](Self::start) does, listening with
    /// SASL_SSL only (a certificate made here for 127.0.0.1, one
    /// SCRAM-SHA-256 user); returns the broker and the client settings
    /// that reach it.
    pub fn start_sasl_ssl(
        workers: usize,
        flush: FlushPolicy,
    ) -> (BenchBroker, Vec<(String, String)>) {
        use gyre_broker::security::scram::{Credential, Mechanism};
        use gyre_broker::security::{CredentialStore, Listener, SecurityProtocol};
        let data_dir =
            std::env::temp_dir().join(format!("gyre-broker-bench-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir).expect("data folder");
        let (ca_file, cert_file, key_file) = gyre_testkit::certs::TestCa::new("bench CA")
            .write(&data_dir, &["localhost", "127.0.0.1"]);
        let identity =
            gyre_reactor::TlsIdentity::from_pem_files(&cert_file, &key_file).expect("identity");
        let tls = gyre_reactor::TlsAcceptor::builder()
            .identity(identity)
            .build()
            .expect("TLS settings");
        CredentialStore::open(&data_dir)
            .expect("credentials")
            .set(
                "bench",
                Credential::new(Mechanism::Sha256, "bench-pw", 4096),
            )
            .expect("user");
        let config = BrokerConfig {
            listeners: vec![Listener {
                protocol: SecurityProtocol::SaslSsl,
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            }],
            tls: Some(tls),
            data_dir: data_dir.clone(),
            workers,
            flush,
            ..BrokerConfig::default()
        };
        let broker = Broker::start(&config).expect("broker starts");
        let settings = [
            ("security.protocol", "SASL_SSL".to_owned()),
            ("ssl.ca.location", ca_file.display().to_string()),
            ("sasl.mechanisms", "SCRAM-SHA-256".to_owned()),
            ("sasl.username", "bench".to_owned()),
            ("sasl.password", "bench-pw".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        (
            BenchBroker {
                broker: Some(broker),
                data_dir,
            },
            settings,
        )
    }
}

impl Drop for BenchBroker {
    fn drop(&mut self) {
        if let Some(broker) = self.broker.take() {
            broker.shutdown(Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Counts delivery reports on librdkafka's side of the producer.
#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// How a producer batches: `linger_ms` is librdkafka's wait for a batch to
/// fill before sending it.
fn producer(addr: SocketAddr, linger_ms: u32) -> BaseProducer<Deliveries> {
    producer_with(addr, linger_ms, &[])
}

/// A client configuration for `addr` with `settings` (a secured
/// listener's) on top.
fn config(addr: SocketAddr, settings: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr.to_string());
    for (k, v) in settings {
        c.set(k, v);
    }
    c
}

fn producer_with(
    addr: SocketAddr,
    linger_ms: u32,
    settings: &[(String, String)],
) -> BaseProducer<Deliveries> {
    batched(config(addr, settings), linger_ms)
        .set("acks", "1")
        .set("enable.idempotence", "false")
        .create_with_context(Deliveries::default())
        .expect("producer")
}

/// The batching every throughput producer runs with: large batches after
/// `linger_ms`, no compression, room for a whole round in the queue.
fn batched(mut c: ClientConfig, linger_ms: u32) -> ClientConfig {
    c.set("compression.type", "none")
        .set("linger.ms", linger_ms.to_string())
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2097151");
    c
}

fn consumer(addr: SocketAddr, topic: &str, settings: &[(String, String)]) -> BaseConsumer {
    let consumer: BaseConsumer = config(addr, settings)
        .set("group.id", format!("bench-{topic}"))
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.min.messages", "1000000")
        .set("queued.max.messages.kbytes", "1048576")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&assignment).expect("assign");
    consumer
}

/// A record's value: its sequence number, its intended send time (ns since
/// `epoch`), then filler up to [`RECORD_BYTES`].
fn fill(value: &mut [u8; RECORD_BYTES], seq: u64, sent_ns: u64) {
    value[..8].copy_from_slice(&seq.to_le_bytes());
    value[8..16].copy_from_slice(&sent_ns.to_le_bytes());
}

fn read(value: &[u8]) -> (u64, u64) {
    assert_eq!(value.len(), RECORD_BYTES, "record value size");
    let seq = u64::from_le_bytes(value[..8].try_into().expect("8 bytes"));
    let sent = u64::from_le_bytes(value[8..16].try_into().expect("8 bytes"));
    (seq, sent)
}

/// Sends one record, waiting out a full librdkafka queue.
fn send(producer: &BaseProducer<Deliveries>, topic: &str, value: &[u8]) {
    send_keyed(producer, topic, None, value);
}

/// Sends one record, with `key` if given, waiting while librdkafka's queue
/// is full.
fn send_keyed(producer: &BaseProducer<Deliveries>, topic: &str, key: Option<&[u8]>, value: &[u8]) {
    let mut record = BaseRecord::to(topic).payload(value);
    if let Some(key) = key {
        record = record.key(key);
    }
    loop {
        match producer.send::<[u8], [u8]>(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => panic!("produce failed: {e}"),
        }
    }
}

/// Sends records numbered `seqs` to `topic`, serving delivery reports
/// every 4096.
fn send_numbered(producer: &BaseProducer<Deliveries>, topic: &str, seqs: std::ops::Range<u64>) {
    send_numbered_keyed(producer, topic, seqs, None);
}

/// [`send_numbered`], record `i` keyed `i % keys` (8 bytes) when `keys`
/// is given.
fn send_numbered_keyed(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    seqs: std::ops::Range<u64>,
    keys: Option<u64>,
) {
    let mut value = [0x5au8; RECORD_BYTES];
    for seq in seqs {
        fill(&mut value, seq, 0);
        let key = keys.map(|keys| (seq % keys).to_be_bytes());
        send_keyed(producer, topic, key.as_ref().map(|k| &k[..]), &value);
        if seq % 4096 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
}

/// Makes sure `topic` exists (auto-created on first metadata request) and
/// its partition leader is known, so no case times topic creation.
pub fn create_topic(addr: SocketAddr, topic: &str, settings: &[(String, String)]) {
    let p = producer_with(addr, 0, settings);
    p.client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
}

/// Produces `n` records to `topic` from one producer; returns the time from
/// the first send to the last delivery report.
pub fn produce(addr: SocketAddr, topic: &str, n: u64, settings: &[(String, String)]) -> Duration {
    produce_numbered(addr, topic, n, settings, None)
}

/// [`produce`], record `i` keyed `i % keys` when `keys` is given.
fn produce_numbered(
    addr: SocketAddr,
    topic: &str,
    n: u64,
    settings: &[(String, String)],
    keys: Option<u64>,
) -> Duration {
    send_all(&producer_with(addr, 5, settings), topic, n, keys)
}

/// [`produce`] with every record in a batch of its own (`linger.ms` 0,
/// `batch.num.messages` 1: what a producer that sends each record at once
/// writes, and what the log's walks from batch to batch find most of).
pub fn produce_unbatched(addr: SocketAddr, topic: &str, n: u64) -> Duration {
    let producer = batched(config(addr, &[]), 0)
        .set("batch.num.messages", "1")
        .set("acks", "1")
        .set("enable.idempotence", "false")
        .create_with_context(Deliveries::default())
        .expect("producer");
    send_all(&producer, topic, n, None)
}

/// Sends records `0..n` to `topic` from `producer` and waits for every
/// delivery; the time from the first send to the last delivery report.
fn send_all(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    n: u64,
    keys: Option<u64>,
) -> Duration {
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let start = Instant::now();
    send_numbered_keyed(producer, topic, 0..n, keys);
    producer.flush(Duration::from_secs(120)).expect("flush");
    let elapsed = start.elapsed();
    let ctx = producer.context();
    assert_eq!(ctx.failed.load(Ordering::Relaxed), 0, "failed deliveries");
    assert_eq!(ctx.ok.load(Ordering::Relaxed), n, "deliveries");
    elapsed
}

/// Produces `n` records to `topic` from one transactional producer,
/// committing every `per_txn`; returns the time from the first send to
/// the last commit.
pub fn produce_in_transactions(addr: SocketAddr, topic: &str, n: u64, per_txn: u64) -> Duration {
    let producer: BaseProducer<Deliveries> = batched(config(addr, &[]), 5)
        .set("transactional.id", format!("bench-{topic}"))
        .set("acks", "all")
        .create_with_context(Deliveries::default())
        .expect("transactional producer");
    let wait = Duration::from_secs(60);
    producer.init_transactions(wait).expect("init_transactions");
    // As in `produce`: the topic's leader is known before the clock runs.
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let start = Instant::now();
    for first in (0..n).step_by(per_txn as usize) {
        producer.begin_transaction().expect("begin_transaction");
        send_numbered(&producer, topic, first..(first + per_txn).min(n));
        // Commit flushes the transaction's records first.
        producer
            .commit_transaction(wait)
            .expect("commit_transaction");
    }
    let elapsed = start.elapsed();
    producer.poll(Duration::ZERO);
    let ctx = producer.context();
    assert_eq!(ctx.failed.load(Ordering::Relaxed), 0, "failed deliveries");
    assert_eq!(ctx.ok.load(Ordering::Relaxed), n, "deliveries");
    elapsed
}

/// The clocks of one consume run.
pub struct Consumed {
    /// From assignment to the first record (client start-up).
    pub first_record: Duration,
    /// From the end of the first batch to the last record.
    pub steady: Duration,
    /// Records read in `steady`.
    pub steady_records: u64,
}

/// Consumes the `n` records of `topic` from its beginning and checks each
/// is the next in sequence.
pub fn consume(addr: SocketAddr, topic: &str, n: u64, settings: &[(String, String)]) -> Consumed {
    let start = Instant::now();
    let consumer = consumer(addr, topic, settings);
    let mut first = None;
    let mut next = 0u64;
    let mut sum = 0u64;
    let deadline = start + Duration::from_secs(120);
    let mut reader = BatchReader::new(&consumer, 10_000);
    while next < n {
        assert!(Instant::now() < deadline, "consumed {next} of {n}");
        // librdkafka's batch call waits for a full batch or the timeout: a
        // short one keeps the last, partial batch from idling the clock.
        let got = reader.read(Duration::from_millis(5), |value| {
            let (seq, _) = read(value);
            assert_eq!(seq, next, "record out of order");
            sum = sum.wrapping_add(seq);
            next += 1;
        });
        if got.unwrap_or_else(|e| panic!("consume failed: {e}")) > 0 && first.is_none() {
            first = Some((Instant::now(), next));
        }
    }
    let (first, first_batch) = first.expect("records arrived");
    assert_eq!(sum, n * (n - 1) / 2, "checksum");
    Consumed {
        first_record: first - start,
        steady: first.elapsed(),
        steady_records: n - first_batch,
    }
}

/// What the fixed-rate run saw.
pub struct Latency {
    /// End-to-end latency per record, ns: intended send time to the
    /// consumer's hand.
    pub histogram: Histogram<u64>,
    /// Records sent (and all received).
    pub records: u64,
    /// The producer's achieved rate, records/s.
    pub rate: f64,
}

/// Sends `rate` records/s to `topic` for `duration` from a producer with
/// `linger_ms`, while a consumer tails the topic; returns the end-to-end
/// latency of every record.
pub fn latency(
    addr: SocketAddr,
    topic: &str,
    rate: u64,
    duration: Duration,
    linger_ms: u32,
) -> Latency {
    let n = rate * duration.as_secs();
    let epoch = Instant::now();
    let ready = Arc::new(AtomicBool::new(false));
    let tail = {
        let topic = topic.to_string();
        let ready = Arc::clone(&ready);
        std::thread::spawn(move || {
            let consumer = consumer(addr, &topic, &[]);
            let mut histogram = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3)
                .expect("histogram bounds");
            // The producer's warm-up record opens the run.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                assert!(Instant::now() < deadline, "warm-up record never came");
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) if read(m.payload().expect("value")).0 == WARM_UP => break,
                    Some(Ok(_)) => panic!("a record before the warm-up record"),
                    Some(Err(e)) => panic!("consume failed: {e}"),
                    None => {}
                }
            }
            ready.store(true, Ordering::Release);
            let mut next = 0u64;
            let deadline = Instant::now() + duration + Duration::from_secs(60);
            while next < n {
                assert!(Instant::now() < deadline, "tail saw {next} of {n}");
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(message)) => {
                        let now = epoch.elapsed().as_nanos() as u64;
                        let (seq, sent) = read(message.payload().expect("value"));
                        assert_eq!(seq, next, "record out of order");
                        histogram.saturating_record(now.saturating_sub(sent));
                        next += 1;
                    }
                    Some(Err(e)) => panic!("consume failed: {e}"),
                    None => {}
                }
            }
            histogram
        })
    };
    let producer = producer(addr, linger_ms);
    let mut value = [0x5au8; RECORD_BYTES];
    fill(&mut value, WARM_UP, 0);
    send(&producer, topic, &value);
    producer
        .flush(Duration::from_secs(10))
        .expect("warm-up flush");
    while !ready.load(Ordering::Acquire) {
        assert!(!tail.is_finished(), "the tail consumer stopped");
        std::thread::sleep(Duration::from_millis(1));
    }
    let interval_ns = 1_000_000_000 / rate;
    let start_ns = epoch.elapsed().as_nanos() as u64;
    let mut seq = 0u64;
    // Each wake-up sends every record whose time has come, stamped with the
    // time it should have gone: the sleep's overshoot counts against us.
    while seq < n {
        let now = epoch.elapsed().as_nanos() as u64;
        while seq < n && start_ns + seq * interval_ns <= now {
            fill(&mut value, seq, start_ns + seq * interval_ns);
            send(&producer, topic, &value);
            seq += 1;
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_micros(200));
    }
    let sent_for = Duration::from_nanos(epoch.elapsed().as_nanos() as u64 - start_ns);
    producer.flush(Duration::from_secs(60)).expect("flush");
    let histogram = tail.join().expect("tail thread");
    assert_eq!(producer.context().failed.load(Ordering::Relaxed), 0);
    Latency {
        histogram,
        records: n,
        rate: n as f64 / sent_for.as_secs_f64(),
    }
}
