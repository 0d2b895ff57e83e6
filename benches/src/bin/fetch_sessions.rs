//! What an incremental fetch session (KIP-227) saves a consumer of many
//! quiet partitions: the same broker answers fetches of every partition
//! of a topic, named in full each time (no session, as librdkafka and
//! kafkajs fetch) and through a session (as kafka-python and the Java
//! client fetch), in alternating rounds of one run.
//!
//! ```text
//! cargo run --release -p gyre-benches --bin fetch_sessions -- --quick   # < 30 s
//! cargo run --release -p gyre-benches --bin fetch_sessions              # 5 rounds
//! ```
//!
//! A raw client on one thread sends one fetch at a time (no wait: the
//! partitions are quiet, so each fetch is answered at once), to the
//! broker in this process. Printed per way: fetches/s, the broker's CPU
//! per fetch (the process's CPU less the client thread's), and the bytes
//! of each request and answer; then `ratio <case> incremental/full` for
//! the rate and for the broker's CPU per fetch. The peer is the broker's
//! own sessionless path: no Kafka can be fetched on these machines.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use clap::Parser;
use gyre_benches::stats::{median, process_cpu_time, thread_cpu_time};
use gyre_broker::{Broker, BrokerConfig};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, FetchRequest, FetchResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Encodable, StrBytes};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// One round of 500 fetches a way instead of five of 3,000.
    #[arg(long)]
    quick: bool,
    /// Partitions of the topic fetched.
    #[arg(long, default_value_t = 1000)]
    partitions: i32,
}

const TOPIC: &str = "quiet";
const FETCH_VERSION: i16 = 12;

/// A blocking raw client.
struct Client {
    stream: TcpStream,
    next_id: i32,
}

impl Client {
    fn frame<M: Encodable>(&mut self, key: ApiKey, version: i16, body: &M) -> Vec<u8> {
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.next_id;
        header.client_id = Some(StrBytes::from_static_str("gyre-bench"));
        self.next_id += 1;
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &header).unwrap();
        body.encode(&mut buf, version).unwrap();
        let mut out = Vec::with_capacity(4 + buf.len());
        out.put_i32(buf.len() as i32);
        out.extend_from_slice(&buf);
        out
    }

    /// Sends `frame`; the answer's body after its correlation id and its
    /// size on the wire.
    fn round_trip(&mut self, frame: &[u8], answer: &mut Vec<u8>) -> usize {
        self.stream.write_all(frame).unwrap();
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).unwrap();
        answer.resize(i32::from_be_bytes(size) as usize, 0);
        self.stream.read_exact(answer).unwrap();
        answer.len() + 4
    }
}

fn fetch_request(epoch: i32, session: i32, partitions: i32) -> FetchRequest {
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_static_str(TOPIC));
    for partition in 0..partitions {
        let mut p = FetchPartition::default();
        p.partition = partition;
        p.partition_max_bytes = 1 << 20;
        t.partitions.push(p);
    }
    let mut r = FetchRequest::default();
    r.session_id = session;
    r.session_epoch = epoch;
    r.max_wait_ms = 0;
    r.min_bytes = 1;
    r.max_bytes = 50 << 20;
    if partitions > 0 {
        r.topics.push(t);
    }
    r
}

fn decode(answer: &[u8]) -> FetchResponse {
    let mut b = Bytes::copy_from_slice(answer);
    b.advance(4 + 1); // correlation id, header tags
    FetchResponse::decode(&mut b, FETCH_VERSION).unwrap()
}

/// One way's figures over a round.
struct Measured {
    per_second: f64,
    broker_us: f64,
    request_bytes: usize,
    answer_bytes: usize,
}

/// `fetches` fetches of every partition, sessionless (`incremental`
/// false) or through a session opened first.
fn run(client: &mut Client, partitions: i32, fetches: u32, incremental: bool) -> Measured {
    let mut answer = Vec::new();
    let mut session = 0;
    if incremental {
        let open = fetch_request(0, 0, partitions);
        let frame = client.frame(ApiKey::Fetch, FETCH_VERSION, &open);
        client.round_trip(&frame, &mut answer);
        session = decode(&answer).session_id;
        assert_ne!(session, 0, "the broker opened a session");
    }
    let full = fetch_request(-1, 0, partitions);
    let full_frame = client.frame(ApiKey::Fetch, FETCH_VERSION, &full);
    let (mut request_bytes, mut answer_bytes) = (0, 0);
    let (cpu0, thread0, started) = (process_cpu_time(), thread_cpu_time(), Instant::now());
    for epoch in 1..=fetches as i32 {
        let frame = if incremental {
            client.frame(
                ApiKey::Fetch,
                FETCH_VERSION,
                &fetch_request(epoch, session, 0),
            )
        } else {
            full_frame.clone()
        };
        request_bytes = frame.len();
        answer_bytes = client.round_trip(&frame, &mut answer);
    }
    let elapsed = started.elapsed();
    let client_cpu = thread_cpu_time() - thread0;
    let broker_cpu = (process_cpu_time() - cpu0).saturating_sub(client_cpu);
    let last = decode(&answer);
    assert_eq!(last.error_code, 0);
    let answered: usize = last.responses.iter().map(|t| t.partitions.len()).sum();
    let expected = if incremental { 0 } else { partitions as usize };
    assert_eq!(answered, expected, "quiet partitions answered");
    Measured {
        per_second: f64::from(fetches) / elapsed.as_secs_f64(),
        broker_us: broker_cpu.as_secs_f64() * 1e6 / f64::from(fetches),
        request_bytes,
        answer_bytes,
    }
}

fn main() {
    println!("{}", gyre_benches::host::describe());
    let args = Args::parse();
    let (rounds, fetches) = if args.quick { (1, 500) } else { (5, 3000) };
    let dir = std::env::temp_dir().join(format!("gyre-fetch-sessions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = BrokerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.clone(),
        workers: 1,
        ..BrokerConfig::default()
    };
    let broker = Broker::start(&config).expect("the broker starts");
    let stream = TcpStream::connect(broker.local_addr()).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut client = Client { stream, next_id: 1 };
    let mut create = CreateTopicsRequest::default();
    let mut t = CreatableTopic::default();
    t.name = TopicName(StrBytes::from_static_str(TOPIC));
    t.num_partitions = args.partitions;
    t.replication_factor = 1;
    create.topics.push(t);
    create.timeout_ms = 30_000;
    let frame = client.frame(ApiKey::CreateTopics, 4, &create);
    client.round_trip(&frame, &mut Vec::new());
    // Warm both ways up.
    run(&mut client, args.partitions, 100, false);
    run(&mut client, args.partitions, 100, true);
    let case = format!("fetch-quiet-{}", args.partitions);
    let (mut rates, mut cpus) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which way goes first, so drift favours neither.
        let (full, incremental) = if round % 2 == 0 {
            let f = run(&mut client, args.partitions, fetches, false);
            (f, run(&mut client, args.partitions, fetches, true))
        } else {
            let i = run(&mut client, args.partitions, fetches, true);
            (run(&mut client, args.partitions, fetches, false), i)
        };
        for (way, m) in [("full", &full), ("incremental", &incremental)] {
            println!(
                "result {case} {way} round {round}: {:.0} fetches/s, broker {:.1} us CPU a fetch, request {} B, answer {} B",
                m.per_second, m.broker_us, m.request_bytes, m.answer_bytes
            );
        }
        rates.push(incremental.per_second / full.per_second);
        cpus.push(incremental.broker_us / full.broker_us);
    }
    println!("ratio {case} incremental/full {:.2}", median(&mut rates));
    println!(
        "ratio {case}-broker-cpu incremental/full {:.2}",
        median(&mut cpus)
    );
    drop(client);
    broker.shutdown(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&dir);
}
