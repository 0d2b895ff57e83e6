//! Client quotas over the wire: AlterClientQuotas and
//! DescribeClientQuotas with Kafka's validation (an entity names a user,
//! a client id or both, each named or the default; `producer_byte_rate`,
//! `consumer_byte_rate` and `request_percentage` positive, and not for an
//! ip), kept across a restart; a client's `request_percentage` throttling
//! the client that floods the loops with requests, and not its neighbour,
//! with the raw client and librdkafka; an IP's connection creation
//! rate holding then closing the connections over it; a client's
//! controller mutation rate refusing topics past it (KIP-599), with the
//! raw client, kafka-python and confluent-kafka; a client that ignores its
//! throttle not read until it ends; a fetch that would go over the quota
//! answered empty and not counted; and librdkafka clients held
//! to them (`clients/quotas.py`) while an unquoted client runs at full
//! speed beside them.

mod common;

use common::process::BrokerProcess;
use common::Client;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::net::SocketAddr;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn entry(parts: &[(&str, Option<&str>)], ops: &[(&str, f64, bool)]) -> EntryData {
    let mut e = EntryData::default();
    e.entity = parts
        .iter()
        .map(|(t, n)| {
            let mut d = EntityData::default();
            d.entity_type = s(t);
            d.entity_name = n.map(s);
            d
        })
        .collect();
    e.ops = ops
        .iter()
        .map(|(k, v, remove)| {
            let mut o = OpData::default();
            o.key = s(k);
            o.value = *v;
            o.remove = *remove;
            o
        })
        .collect();
    e
}

fn alter(c: &mut Client, version: i16, entries: Vec<EntryData>, validate_only: bool) -> Vec<i16> {
    let mut r = AlterClientQuotasRequest::default();
    r.entries = entries;
    r.validate_only = validate_only;
    let resp: AlterClientQuotasResponse = c.call(ApiKey::AlterClientQuotas, version, &r);
    resp.entries.iter().map(|e| e.error_code).collect()
}

/// An entity's (type, name) parts and its (quota, value) pairs.
type Described = (Vec<(String, Option<String>)>, Vec<(String, f64)>);

/// Every entity and its quotas, as DescribeClientQuotas lists them for a
/// filter of `client-id` matching any (not strict).
fn described(c: &mut Client, version: i16) -> Vec<Described> {
    described_by(c, version, "client-id")
}

/// Every entity and its quotas, as DescribeClientQuotas lists them for a
/// filter of `entity_type` matching any (not strict).
fn described_by(c: &mut Client, version: i16, entity_type: &str) -> Vec<Described> {
    let mut comp = ComponentData::default();
    comp.entity_type = s(entity_type);
    comp.match_type = 2;
    let mut r = DescribeClientQuotasRequest::default();
    r.components = vec![comp];
    let resp: DescribeClientQuotasResponse = c.call(ApiKey::DescribeClientQuotas, version, &r);
    assert_eq!(resp.error_code, 0, "{:?}", resp.error_message);
    resp.entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let entity = e
                .entity
                .iter()
                .map(|d| {
                    (
                        d.entity_type.to_string(),
                        d.entity_name.as_ref().map(|n| n.to_string()),
                    )
                })
                .collect();
            let values = e
                .values
                .iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect();
            (entity, values)
        })
        .collect()
}

#[test]
fn quotas_are_set_validated_described_and_kept_across_a_restart() {
    let data = common::data_dir("quotas-api");
    let broker = BrokerProcess::start(&data, &[]);
    let mut c = Client::connect(broker.addr.parse::<SocketAddr>().unwrap());
    let codes = alter(
        &mut c,
        1,
        vec![
            entry(
                &[("client-id", Some("app"))],
                &[("producer_byte_rate", 1024.0, false)],
            ),
            entry(
                &[("user", Some("alice")), ("client-id", None)],
                &[("consumer_byte_rate", 2048.0, false)],
            ),
            entry(&[("user", None)], &[("request_percentage", 50.0, false)]),
            entry(
                &[("ip", Some("10.0.0.1"))],
                &[("producer_byte_rate", 5.0, false)],
            ),
            entry(
                &[("client-id", Some("w"))],
                &[("request_percentage", -1.0, false)],
            ),
            entry(
                &[("client-id", Some("x"))],
                &[("producer_byte_rate", 0.0, false)],
            ),
            entry(&[], &[("producer_byte_rate", 10.0, false)]),
            entry(
                &[("client-id", Some("y"))],
                &[
                    ("producer_byte_rate", 10.0, false),
                    ("producer_byte_rate", 20.0, false),
                ],
            ),
        ],
        false,
    );
    assert_eq!(codes, vec![0, 0, 0, 42, 42, 42, 42, 42]);
    // validate_only changes nothing.
    assert_eq!(
        alter(
            &mut c,
            0,
            vec![entry(
                &[("client-id", Some("z"))],
                &[("producer_byte_rate", 5.0, false)]
            )],
            true
        ),
        vec![0]
    );
    let all = described(&mut c, 1);
    assert_eq!(all.len(), 2, "{all:?}");
    let users = described_by(&mut c, 1, "user");
    let default_user = (
        vec![("user".into(), None)],
        vec![("request_percentage".into(), 50.0)],
    );
    assert!(users.contains(&default_user), "{users:?}");
    assert!(all.contains(&(
        vec![("client-id".into(), Some("app".into()))],
        vec![("producer_byte_rate".into(), 1024.0)]
    )));
    assert!(all.contains(&(
        vec![
            ("user".into(), Some("alice".into())),
            ("client-id".into(), None)
        ],
        vec![("consumer_byte_rate".into(), 2048.0)]
    )));
    // Removing the only quota of an entity removes the entity.
    assert_eq!(
        alter(
            &mut c,
            1,
            vec![entry(
                &[("client-id", Some("app"))],
                &[("producer_byte_rate", 0.0, true)]
            )],
            false
        ),
        vec![0]
    );
    drop(c);
    drop(broker);
    let broker = BrokerProcess::start(&data, &[]);
    let mut c = Client::connect(broker.addr.parse::<SocketAddr>().unwrap());
    assert_eq!(
        described(&mut c, 0),
        vec![(
            vec![
                ("user".into(), Some("alice".into())),
                ("client-id".into(), None)
            ],
            vec![("consumer_byte_rate".into(), 2048.0)]
        )],
        "kept across a restart"
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn librdkafka_clients_are_held_to_their_quota_and_others_run_free() {
    let data = common::data_dir("quotas-clients");
    let broker = BrokerProcess::start(&data, &[]);
    let mut c = Client::connect(broker.addr.parse::<SocketAddr>().unwrap());
    let ops = [
        ("producer_byte_rate", 150_000.0, false),
        ("consumer_byte_rate", 150_000.0, false),
    ];
    assert_eq!(
        alter(
            &mut c,
            1,
            vec![entry(&[("client-id", Some("slow"))], &ops)],
            false
        ),
        vec![0]
    );
    let stdout = common::client_script_ok("quotas.py", &[&broker.addr, "quota"], "quotas ok");
    println!("{stdout}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_client_that_ignores_its_throttle_is_not_read_until_it_ends() {
    use kafka_protocol::protocol::Decodable;
    use std::time::{Duration, Instant};
    let data = common::data_dir("quotas-mute");
    let broker = BrokerProcess::start(&data, &[]);
    let mut c = Client::connect(broker.addr.parse::<SocketAddr>().unwrap());
    common::create_topic(&mut c, "muted", 1);
    // The raw client's id is gyre-test: 100 kB/s.
    let ops = [("producer_byte_rate", 100_000.0, false)];
    assert_eq!(
        alter(
            &mut c,
            1,
            vec![entry(&[("client-id", Some("gyre-test"))], &ops)],
            false
        ),
        vec![0]
    );
    // Twelve requests of 100 kB sent at once, never waiting: the first
    // ten are the ten seconds' allowance; the eleventh puts the client
    // over (1.1 MB over 10 s: 10% over, so throttled for a tenth of the
    // ten seconds measured), and the broker reads the twelfth only once
    // that second has passed (Kafka mutes the channel so).
    let value = vec![b'v'; 100_000];
    let start = Instant::now();
    for _ in 0..12 {
        let records = gyre_broker::log::batch::build(0, 1_700_000_000_000, &[&value]);
        c.send(
            ApiKey::Produce,
            7,
            &common::produce_request("muted", records),
        );
    }
    let mut answers = Vec::new();
    for _ in 0..12 {
        let (_, mut body) = c.receive().expect("an answer");
        let resp = ProduceResponse::decode(&mut body, 7).unwrap();
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
        answers.push((start.elapsed(), resp.throttle_time_ms));
    }
    let throttles: Vec<i32> = answers.iter().map(|a| a.1).collect();
    // (Each request is a little over 100 kB: the tenth is just over.)
    assert!(throttles[..9].iter().all(|&t| t == 0), "{throttles:?}");
    assert!(throttles[9] < 100, "{throttles:?}");
    assert!((900..=1200).contains(&throttles[10]), "{throttles:?}");
    assert!(throttles[11] > throttles[10], "{throttles:?}");
    let held = answers[11].0 - answers[10].0;
    assert!(
        held >= Duration::from_millis(900),
        "the twelfth was read after {held:?}"
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

/// One batch from `offset` of topic `muted-fetch`, as a consumer asks it:
/// the size of the records answered and the throttle time.
fn fetch_one(c: &mut Client, offset: i64) -> (usize, i32) {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let mut p = FetchPartition::default();
    p.fetch_offset = offset;
    // Less than a batch: the first batch comes whole, and only it.
    p.partition_max_bytes = 1;
    let mut t = FetchTopic::default();
    t.topic = common::topic_name("muted-fetch");
    t.partitions.push(p);
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_bytes = 50 << 20;
    r.topics.push(t);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 11, &r);
    let len = resp
        .responses
        .first()
        .and_then(|t| t.partitions[0].records.as_ref())
        .map_or(0, |r| r.len());
    (len, resp.throttle_time_ms)
}

#[test]
fn a_fetch_that_would_take_its_client_over_its_quota_is_answered_empty_and_not_counted() {
    use std::time::{Duration, Instant};
    let data = common::data_dir("quotas-fetch");
    let broker = BrokerProcess::start(&data, &[]);
    let mut c = Client::connect(broker.addr.parse::<SocketAddr>().unwrap());
    common::create_topic(&mut c, "muted-fetch", 1);
    let value = vec![b'v'; 100_000];
    for _ in 0..12 {
        let records = gyre_broker::log::batch::build(0, 1_700_000_000_000, &[&value]);
        let _: ProduceResponse = c.call(
            ApiKey::Produce,
            7,
            &common::produce_request("muted-fetch", records),
        );
    }
    // 95 kB/s: ten seconds' worth is 950 kB, nine batches of a little over
    // 100 kB.
    let ops = [("consumer_byte_rate", 95_000.0, false)];
    let quota = entry(&[("client-id", Some("gyre-test"))], &ops);
    assert_eq!(alter(&mut c, 1, vec![quota], false), vec![0]);
    for offset in 0..9 {
        let (len, throttle) = fetch_one(&mut c, offset);
        assert!(len > 100_000, "batch {offset}: {len} bytes");
        assert_eq!(throttle, 0, "batch {offset}");
    }
    // The tenth would make 1 MB in ten seconds, 5% over: it is not sent
    // (as Kafka: an empty response and the throttle time it would earn,
    // about half a second).
    let (len, first) = fetch_one(&mut c, 9);
    assert_eq!(len, 0, "the batch that takes the client over is not sent");
    assert!((400..=700).contains(&first), "throttled {first} ms");
    // Nothing is read from the connection meanwhile, and the refused
    // response was not counted: asked again, the same throttle (counted,
    // it would be a second and a half).
    let asked = Instant::now();
    let (len, again) = fetch_one(&mut c, 9);
    let waited = asked.elapsed();
    assert_eq!(len, 0);
    assert!(
        waited >= Duration::from_millis(first as u64 - 50),
        "answered after {waited:?}, throttled {first} ms"
    );
    assert!(again <= first + 50, "throttled {again} ms after {first} ms");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

/// An IP's `connection_creation_rate` (KIP-612) over the wire: validated
/// as Kafka does, described by an ip filter, kept across a restart; and
/// enforced. With 3 connections a second for 127.0.0.1, measured over ten
/// windows, forty connections opened at once: the first thirty are
/// served, the rest are held unread (no answer to their ApiVersions) and
/// then closed within a second; the connection open before the quota is
/// served throughout, and once the quota is removed a new connection is
/// served again.
#[test]
fn connections_over_their_addresss_creation_rate_are_held_then_closed() {
    use std::time::{Duration, Instant};
    let data = common::data_dir("quotas-ip");
    let broker = BrokerProcess::start(&data, &[]);
    let addr = broker.addr.parse::<SocketAddr>().unwrap();
    let mut c = Client::connect(addr);
    let rate = |v| [("connection_creation_rate", v, false)];
    let codes = alter(
        &mut c,
        1,
        vec![
            entry(&[("ip", Some("not-an-address"))], &rate(3.0)),
            entry(&[("ip", Some("127.0.0.1")), ("user", None)], &rate(3.0)),
            entry(&[("ip", None)], &rate(2.5)),
            entry(&[("ip", None)], &[("producer_byte_rate", 10.0, false)]),
            entry(&[("client-id", None)], &rate(3.0)),
            entry(&[("ip", Some("127.0.0.1"))], &rate(3.0)),
        ],
        false,
    );
    assert_eq!(codes, vec![42, 42, 42, 42, 42, 0]);
    let ip = |name: Option<&str>, v: f64| -> Described {
        (
            vec![("ip".into(), name.map(String::from))],
            vec![("connection_creation_rate".into(), v)],
        )
    };
    assert_eq!(
        described_by(&mut c, 1, "ip"),
        vec![ip(Some("127.0.0.1"), 3.0)]
    );

    let opened: Vec<(Client, Instant)> = (0..40)
        .map(|_| {
            let mut n = Client::connect(addr);
            n.send(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
            (n, Instant::now())
        })
        .collect();
    let (mut served, mut held) = (0, Vec::new());
    for (mut n, at) in opened {
        n.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        match n.receive() {
            Ok(_) => served += 1,
            // Closed without a byte of answer (reset: its request was
            // never read).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                held.push(at.elapsed())
            }
            Err(e) => panic!("neither answered nor closed: {e}"),
        }
    }
    assert!((28..=32).contains(&served), "{served} of 40 served");
    assert_eq!(held.len(), 40 - served);
    assert!(
        held.iter().all(|h| *h <= Duration::from_millis(2500)),
        "held too long: {held:?}"
    );
    // Held, not refused at once: the first refused waited ~0.33 s.
    assert!(
        held.iter().any(|h| *h >= Duration::from_millis(100)),
        "{held:?}"
    );
    // The connection from before is served; without the quota, so is a
    // new one.
    assert_eq!(
        alter(
            &mut c,
            1,
            vec![entry(
                &[("ip", Some("127.0.0.1"))],
                &[("connection_creation_rate", 0.0, true)]
            )],
            false
        ),
        vec![0]
    );
    let mut fresh = Client::connect(addr);
    let _: ApiVersionsResponse = fresh.call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());

    // Kept across a restart.
    assert_eq!(
        alter(&mut c, 1, vec![entry(&[("ip", None)], &rate(100.0))], false),
        vec![0]
    );
    drop((c, fresh));
    drop(broker);
    let broker = BrokerProcess::start(&data, &[]);
    let mut c = Client::connect(broker.addr.parse::<SocketAddr>().unwrap());
    assert_eq!(described_by(&mut c, 1, "ip"), vec![ip(None, 100.0)]);
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

fn create(c: &mut Client, version: i16, topics: &[(&str, i32)]) -> (Vec<i16>, i32) {
    let mut r = CreateTopicsRequest::default();
    r.timeout_ms = 5_000;
    for (name, partitions) in topics {
        let mut t = create_topics_request::CreatableTopic::default();
        t.name = TopicName(s(name));
        t.num_partitions = *partitions;
        t.replication_factor = -1;
        r.topics.push(t);
    }
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, version, &r);
    (
        resp.topics.iter().map(|t| t.error_code).collect(),
        resp.throttle_time_ms,
    )
}

#[test]
fn partitions_created_and_deleted_past_the_controller_mutation_rate_are_refused_then_served() {
    use std::time::{Duration, Instant};
    let data = common::data_dir("quotas-mutations");
    let broker = BrokerProcess::start(&data, &[]);
    let mut c = Client::connect(broker.addr.parse::<SocketAddr>().unwrap());
    // The raw client's id is gyre-test: 2 partitions a second, a burst of
    // 22 (Kafka's eleven windows).
    let ops = [("controller_mutation_rate", 2.0, false)];
    let quota = vec![entry(&[("client-id", Some("gyre-test"))], &ops)];
    assert_eq!(alter(&mut c, 1, quota, false), vec![0]);
    let listed = described(&mut c, 1);
    assert!(
        listed[0]
            .1
            .contains(&("controller_mutation_rate".to_owned(), 2.0)),
        "{listed:?}"
    );
    // 20 then 5 partitions: within the quota when each is asked for, so
    // both are created, 3 in debt; the third topic is refused for the
    // 1.5 s the debt takes to pay (KIP-599, CreateTopics v6+).
    let start = Instant::now();
    let (codes, throttle) = create(&mut c, 7, &[("m1", 20), ("m2", 5), ("m3", 1)]);
    assert_eq!(codes, vec![0, 0, 89], "THROTTLING_QUOTA_EXCEEDED for m3");
    assert!((1_400..=1_500).contains(&throttle), "{throttle}");
    // The connection is not read until the throttle ends.
    let (codes, _) = create(&mut c, 7, &[("m3", 1)]);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1_400),
        "read after {waited:?}"
    );
    assert_eq!(codes, vec![0], "served once the debt is paid");
    // A version without the error is served whole, and told to wait.
    let (codes, throttle) = create(&mut c, 5, &[("m4", 4)]);
    assert_eq!(codes, vec![0]);
    assert!(throttle >= 1_500, "{throttle}");
    std::thread::sleep(Duration::from_millis(2_600));
    // Deletions count the partitions they delete: m1's 20 are within the
    // quota when asked for; m2 next is refused.
    let mut r = DeleteTopicsRequest::default();
    r.timeout_ms = 5_000;
    r.topic_names = vec![TopicName(s("m1")), TopicName(s("m2"))];
    let resp: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 5, &r);
    let codes: Vec<i16> = resp.responses.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![0, 89]);
    assert!(resp.throttle_time_ms > 0);
    // Another client id has no quota: served at once.
    let mut other =
        Client::connect(broker.addr.parse::<SocketAddr>().unwrap()).with_client_id("unquoted");
    let (codes, throttle) = create(&mut other, 7, &[("free", 30)]);
    assert_eq!((codes, throttle), (vec![0], 0));
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn kafka_python_is_refused_topics_past_its_mutation_quota_and_librdkafka_is_throttled() {
    let data = common::data_dir("quotas-mutations-clients");
    let broker = BrokerProcess::start(&data, &[]);
    let mut c = Client::connect(broker.addr.parse::<SocketAddr>().unwrap());
    let ops = [("controller_mutation_rate", 2.0, false)];
    let quotas = vec![
        entry(&[("client-id", Some("mutator"))], &ops),
        entry(&[("client-id", Some("mutator-rd"))], &ops),
    ];
    assert_eq!(alter(&mut c, 1, quotas, false), vec![0, 0]);
    common::client_script_ok("mutation_quota.py", &[&broker.addr], "mutation quota ok");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

/// A Metadata v12 for no topic; its throttle time.
fn metadata_throttle(c: &mut Client) -> i32 {
    let mut r = MetadataRequest::default();
    r.topics = Some(Vec::new());
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &r);
    resp.throttle_time_ms
}

/// A broker in this process where client id "greedy" has a
/// `request_percentage` of 0.2 (20 ms of loop time over the ten seconds
/// the rate is averaged over at first: a few thousand small requests).
fn broker_with_a_greedy_client(tag: &str) -> (gyre_broker::Broker, gyre_broker::BrokerConfig) {
    let (broker, config, _) = broker_with_a_request_quota(tag, "greedy", 0.2);
    (broker, config)
}

/// A broker where client id `client` has a `request_percentage` of
/// `percent`, and an admin connection to it.
fn broker_with_a_request_quota(
    tag: &str,
    client: &'static str,
    percent: f64,
) -> (gyre_broker::Broker, gyre_broker::BrokerConfig, Client) {
    let config = common::config(tag);
    let broker = common::start(&config);
    let mut admin = Client::connect(broker.local_addr());
    let quota = [("request_percentage", percent, false)];
    let codes = alter(
        &mut admin,
        1,
        vec![entry(&[("client-id", Some(client))], &quota)],
        false,
    );
    assert_eq!(codes, vec![0]);
    (broker, config, admin)
}

#[test]
fn a_client_flooding_the_loops_with_requests_is_throttled_by_its_request_percentage() {
    let (broker, config) = broker_with_a_greedy_client("quotas-requests");
    let addr = broker.local_addr();
    let mut greedy = Client::connect(addr).with_client_id("greedy");
    let mut calm = Client::connect(addr).with_client_id("calm");
    let mut sent = 0;
    let throttle = loop {
        let t = metadata_throttle(&mut greedy);
        sent += 1;
        if t > 0 {
            break t;
        }
        assert!(sent < 200_000, "never throttled");
        // The neighbour, without a quota, asks as often and never is.
        assert_eq!(metadata_throttle(&mut calm), 0);
    };
    // The connection is muted for the throttle: the next request is read
    // only once it has passed (the rate is then back at the quota).
    let started = std::time::Instant::now();
    let _: ApiVersionsResponse =
        greedy.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let waited = started.elapsed();
    println!("throttled {throttle} ms after {sent} requests; the next answered after {waited:?}");
    assert!(
        waited.as_millis() + 5 >= throttle as u128,
        "answered after {waited:?}, throttled {throttle} ms (after {sent} requests)"
    );
    // Held to its quota from then on: in the same time, it gets a small
    // share of the requests its unquoted neighbour gets.
    let served_in = |c: &mut Client, within: std::time::Duration| {
        let start = std::time::Instant::now();
        let mut n = 0;
        while start.elapsed() < within {
            metadata_throttle(c);
            n += 1;
        }
        n
    };
    let within = std::time::Duration::from_millis(500);
    let (held, free) = (served_in(&mut greedy, within), served_in(&mut calm, within));
    println!("in {within:?}: greedy {held} requests, calm {free}");
    assert!(held * 4 < free, "greedy {held}, calm {free}");
    assert_eq!(metadata_throttle(&mut calm), 0);
    broker.shutdown(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

/// Sends `call` on `c` until an answer carries a throttle time; that time.
/// Past the quota, a connection whose answers say 0 is still muted, so
/// each request then waits: the bound is on time, not requests.
fn until_throttled(c: &mut Client, what: &str, mut call: impl FnMut(&mut Client) -> i32) -> i32 {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(15) {
        let t = call(c);
        if t > 0 {
            return t;
        }
    }
    panic!("{what}: no answer carried a throttle in 15 s");
}

#[test]
fn coordinator_and_admin_answers_carry_the_request_quotas_throttle() {
    // Answered on the coordinator's thread and on the admin thread, not the
    // loop: the throttle their time on the loop earned goes with them (the
    // client is muted for it either way; told, it also waits).
    let (broker, config) = broker_with_a_greedy_client("quotas-requests-off-loop");
    let mut greedy = Client::connect(broker.local_addr()).with_client_id("greedy");
    let listed = until_throttled(&mut greedy, "ListGroups", |c| {
        let r: ListGroupsResponse = c.call(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
        assert_eq!(r.error_code, 0);
        r.throttle_time_ms
    });
    let created = until_throttled(&mut greedy, "CreateAcls", |c| {
        let r: CreateAclsResponse = c.call(ApiKey::CreateAcls, 3, &CreateAclsRequest::default());
        r.throttle_time_ms
    });
    println!("ListGroups throttled {listed} ms, CreateAcls {created} ms");
    broker.shutdown(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn librdkafka_is_throttled_by_its_request_percentage_and_its_neighbour_is_not() {
    let (broker, config) = broker_with_a_greedy_client("quotas-requests-librdkafka");
    let addr = broker.local_addr().to_string();
    let out = common::client_script_ok("request_quota.py", &[&addr, "polled"], "request quota ok");
    println!("{out}");
    broker.shutdown(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[test]
fn time_the_coordinator_spends_on_a_clients_requests_counts_against_its_request_quota() {
    // Before: only the loop's time counted. An OffsetFetch of a group's
    // 1,000 offsets takes the loop microseconds to read and hand over, and
    // the coordinator's thread a millisecond or more to answer, so a
    // client asking it back to back kept that thread busy and was never
    // throttled under its 20%.
    let (broker, config, mut admin) =
        broker_with_a_request_quota("quotas-requests-coordinator", "costly", 20.0);
    common::create_topic(&mut admin, "wide", 1000);
    let mut topic = offset_commit_request::OffsetCommitRequestTopic::default();
    topic.name = common::topic_name("wide");
    topic.partitions = (0..1000)
        .map(|i| {
            let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
            p.partition_index = i;
            p.committed_offset = i64::from(i);
            p
        })
        .collect();
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(StrBytes::from_static_str("wide-group"));
    commit.generation_id_or_member_epoch = -1;
    commit.topics.push(topic);
    let committed: OffsetCommitResponse = admin.call(ApiKey::OffsetCommit, 8, &commit);
    assert!(committed.topics[0]
        .partitions
        .iter()
        .all(|p| p.error_code == 0));

    let mut costly = Client::connect(broker.local_addr()).with_client_id("costly");
    let mut group = offset_fetch_request::OffsetFetchRequestGroup::default();
    group.group_id = GroupId(StrBytes::from_static_str("wide-group"));
    group.topics = None;
    let mut fetch = OffsetFetchRequest::default();
    fetch.groups.push(group);
    let throttled = until_throttled(&mut costly, "OffsetFetch", |c| {
        let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 8, &fetch);
        assert_eq!(r.groups[0].topics[0].partitions.len(), 1000);
        r.throttle_time_ms
    });
    println!("OffsetFetch throttled {throttled} ms");
    broker.shutdown(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

/// A zstd batch of `count` keyed records whose values compress to almost
/// nothing: small on the wire, costly to walk.
fn compressible_batch(count: usize) -> Vec<u8> {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: 1_000,
            key: Some(bytes::Bytes::from(format!("key-{}", i % 100))),
            value: Some(bytes::Bytes::from(vec![b'v'; 50])),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::Zstd,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.to_vec()
}

#[test]
fn time_the_log_writer_spends_on_a_clients_produce_counts_against_its_request_quota() {
    // Before: the writer's time did not count. A compacted topic's batch
    // is walked record by record on the writer (every record needs a
    // key), so a small zstd batch of 10,000 records takes the loop
    // microseconds to read and the writer milliseconds to check: a
    // client producing such batches back to back kept the one writer
    // busy and was never throttled under its 20%.
    let (broker, config, mut admin) =
        broker_with_a_request_quota("quotas-requests-writer", "costly", 20.0);
    let mut topic = create_topics_request::CreatableTopic::default();
    topic.name = common::topic_name("keyed");
    topic.num_partitions = 1;
    topic.replication_factor = 1;
    let mut compact = create_topics_request::CreatableTopicConfig::default();
    compact.name = StrBytes::from_static_str("cleanup.policy");
    compact.value = Some(StrBytes::from_static_str("compact"));
    topic.configs.push(compact);
    let mut create = CreateTopicsRequest::default();
    create.topics.push(topic);
    let created: CreateTopicsResponse = admin.call(ApiKey::CreateTopics, 5, &create);
    assert_eq!(created.topics[0].error_code, 0, "{:?}", created.topics[0]);

    let batch = compressible_batch(10_000);
    let produce = common::produce_request("keyed", batch);
    let mut costly = Client::connect(broker.local_addr()).with_client_id("costly");
    let throttled = until_throttled(&mut costly, "Produce", |c| {
        let r: ProduceResponse = c.call(ApiKey::Produce, 7, &produce);
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        r.throttle_time_ms
    });
    println!("Produce throttled {throttled} ms");
    broker.shutdown(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&config.data_dir);
}
