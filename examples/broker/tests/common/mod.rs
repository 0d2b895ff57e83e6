//! Shared helpers of the broker's integration tests: a broker in this
//! process on a free port, and a raw Kafka-protocol client over a
//! blocking socket.

#![allow(dead_code)]

pub mod groups;
pub mod key_server;
pub mod process;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gyre_broker::{Broker, BrokerConfig};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, Encodable, HeaderVersion, StrBytes,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

/// A fresh data folder for test `tag`.
pub fn data_dir(tag: &str) -> PathBuf {
    let d = gyre_testkit::scratch_root().join(format!("gyre-broker-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The settings of a test broker: a free port and its own folder.
pub fn config(tag: &str) -> BrokerConfig {
    BrokerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir(tag),
        workers: 2,
        ..BrokerConfig::default()
    }
}

/// [`config`] for a broker compacting every topic, with 1 KiB segments
/// and a log cleaner that looks for work every 50 ms.
pub fn compacting_config(tag: &str) -> BrokerConfig {
    let mut config = config(tag);
    config.log.cleanup = gyre_broker::log::Cleanup {
        delete: false,
        compact: true,
    };
    config.log.segment_bytes = 1024;
    config.cleaner.backoff = Duration::from_millis(50);
    config
}

/// A broker in this process.
pub fn start(config: &BrokerConfig) -> Broker {
    Broker::start(config).expect("broker starts")
}

/// A blocking Kafka client speaking raw requests.
pub struct Client {
    pub stream: TcpStream,
    next_id: i32,
    client_id: &'static str,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream,
            next_id: 1,
            client_id: "gyre-test",
        }
    }

    /// The same, its requests naming client id `id` (default `gyre-test`).
    pub fn with_client_id(mut self, id: &'static str) -> Client {
        self.client_id = id;
        self
    }

    /// Sends `body` as API `key` v`version`; returns the correlation id.
    pub fn send<M: Encodable>(&mut self, key: ApiKey, version: i16, body: &M) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = id;
        header.client_id = Some(StrBytes::from_static_str(self.client_id));
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &header).unwrap();
        body.encode(&mut buf, version).unwrap();
        self.send_raw(&buf);
        id
    }

    /// Sends `frame` behind its size.
    pub fn send_raw(&mut self, frame: &[u8]) {
        let mut out = Vec::with_capacity(4 + frame.len());
        out.put_i32(frame.len() as i32);
        out.extend_from_slice(frame);
        self.stream.write_all(&out).unwrap();
    }

    /// Reads one response: (correlation id, body).
    pub fn receive(&mut self) -> std::io::Result<(i32, Bytes)> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut frame)?;
        let mut frame = Bytes::from(frame);
        let id = frame.get_i32();
        Ok((id, frame))
    }

    /// Sends a request and decodes its response.
    pub fn call<Q: Encodable, R: Decodable + HeaderVersion>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Q,
    ) -> R {
        let id = self.send(key, version, body);
        let (got, mut frame) = self.receive().expect("a response");
        assert_eq!(got, id, "responses come in request order");
        if R::header_version(version) >= 1 {
            assert_eq!(frame.get_u8(), 0, "no tagged fields in the response header");
        }
        let r = R::decode(&mut frame, version).expect("a decodable response");
        assert!(
            frame.is_empty(),
            "{} bytes left after the response",
            frame.len()
        );
        r
    }

    /// Whether the broker has closed this connection (reads EOF or reset).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }
}

/// A topic name as the protocol carries it.
pub fn topic_name(s: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(StrBytes::from_string(s.to_owned()))
}

/// Creates `topic` with `partitions` partitions; panics on an error code.
/// Its id.
pub fn create_topic(client: &mut Client, topic: &str, partitions: i32) -> uuid::Uuid {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
    let mut t = CreatableTopic::default();
    t.name = topic_name(topic);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let mut r = CreateTopicsRequest::default();
    r.topics.push(t);
    r.timeout_ms = 5000;
    let resp: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &r);
    assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0]);
    resp.topics[0].topic_id
}

/// A produce request (acks 1) of `records` to partition 0 of `topic`.
pub fn produce_request(topic: &str, records: Vec<u8>) -> kafka_protocol::messages::ProduceRequest {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let mut p = PartitionProduceData::default();
    p.index = 0;
    p.records = Some(Bytes::from(records));
    let mut t = TopicProduceData::default();
    t.name = topic_name(topic);
    t.partition_data.push(p);
    let mut r = kafka_protocol::messages::ProduceRequest::default();
    r.acks = 1;
    r.timeout_ms = 5000;
    r.topic_data.push(t);
    r
}

/// The offset the next record of partition 0 of `topic` will get.
pub fn end_offset(client: &mut Client, topic: &str) -> i64 {
    end_offset_of(client, topic, 0)
}

/// The offset the next record of `partition` of `topic` will get.
pub fn end_offset_of(client: &mut Client, topic: &str, partition: i32) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
    let mut p = ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = topic_name(topic);
    t.partitions.push(p);
    let mut r = ListOffsetsRequest::default();
    r.replica_id = kafka_protocol::messages::BrokerId(-1);
    r.topics.push(t);
    let resp: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 5, &r);
    resp.topics[0].partitions[0].offset
}

/// The segment log files in partition folder `dir`, in offset order.
pub fn segment_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Whether a Metadata request on `c` is answered (false once the broker
/// closed the connection).
pub fn metadata_answered(c: &mut Client) -> bool {
    c.send(
        ApiKey::Metadata,
        9,
        &kafka_protocol::messages::MetadataRequest::default(),
    );
    match c.receive() {
        Ok((_, mut body)) => {
            let _ = body.get_u8(); // the response header's tagged fields
            let r = <kafka_protocol::messages::MetadataResponse as kafka_protocol::protocol::Decodable>::decode(&mut body, 9);
            r.is_ok()
        }
        Err(_) => false,
    }
}

/// Runs `client` (a script of `tests/clients` under `runner`, `python3` or
/// `node`) producing to topic `reauth` over `addr` with SASL `mechanism`
/// and `credential` for three session lifetimes of `lifetime`: it must
/// print "reauth ok"; the broker must have accepted no more than the two
/// connections the clients keep (their bootstrap connection and the
/// broker's: a session ending unrenewed would cost a new one) and seen at
/// least two re-authentications.
pub fn renews_on_its_connections(
    broker: &Broker,
    runner: &str,
    client: &str,
    (mechanism, credential): (&str, &str),
    lifetime: Duration,
) {
    let addr = broker.listeners()[0].addr;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let out = std::process::Command::new(runner)
        .arg(dir.join(client))
        .args([&addr.to_string(), "reauth", mechanism, credential])
        .arg(lifetime.as_millis().to_string())
        .output()
        .unwrap_or_else(|e| panic!("{runner}: {e} (scripts/test installs it)"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("reauth ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accepted = broker.connections_accepted();
    assert!(accepted <= 2, "{accepted} connections over three lifetimes");
    let renewed = broker.sasl_reauthentications();
    assert!(
        renewed >= 2,
        "{renewed} re-authentications in three lifetimes"
    );
}

/// A SaslHandshake (v1) for `mechanism`, then one SaslAuthenticate (v1)
/// carrying `message`: the session lifetime the broker gave (ms), or the
/// first error code.
pub fn sasl_once(c: &mut Client, mechanism: &'static str, message: Vec<u8>) -> Result<i64, i16> {
    use kafka_protocol::messages::{
        SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
        SaslHandshakeResponse,
    };
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str(mechanism);
    let r: SaslHandshakeResponse = c.call(ApiKey::SaslHandshake, 1, &hs);
    if r.error_code != 0 {
        return Err(r.error_code);
    }
    let mut auth = SaslAuthenticateRequest::default();
    auth.auth_bytes = message.into();
    let r: SaslAuthenticateResponse = c.call(ApiKey::SaslAuthenticate, 1, &auth);
    if r.error_code != 0 {
        return Err(r.error_code);
    }
    Ok(r.session_lifetime_ms)
}

/// Runs the client script `name` of `tests/clients` with python3 and
/// `args` (scripts/test installs the clients it uses).
pub fn client_script(name: &str, args: &[&str]) -> std::process::Output {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name);
    std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (scripts/test installs it)")
}

/// [`client_script`], which must exit 0 having printed `marker`; its
/// output.
pub fn client_script_ok(name: &str, args: &[&str], marker: &str) -> String {
    let out = client_script(name, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains(marker),
        "{name}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
