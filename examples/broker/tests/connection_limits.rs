//! Kafka's limits on a broker's connections, over real loopback sockets:
//! `max.connections` leaves one connection too many waiting, unserved,
//! until another closes, across listeners, and a listener's own limit
//! (`listener.name.X.max.connections`) within it; `max.connections.per.ip`
//! closes one connection too many at once,
//! before anything of it is read, and takes the next once one closes; an
//! override gives an address its own limit; `connections.max.idle.ms`
//! closes a silent connection and keeps one that talks, and one waiting
//! for its long-polling fetch's answer.

mod common;

use common::Client;
use gyre_broker::ConnectionLimits;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use std::time::{Duration, Instant};

fn served(c: &mut Client) -> bool {
    c.send(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
    c.receive().is_ok()
}

/// A client connected to `addr` whose ApiVersions is answered, trying
/// for up to 5 s (the broker counts a closed connection as gone once its
/// loop has seen the close).
fn admitted(addr: std::net::SocketAddr) -> Client {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Client::connect(addr);
        if served(&mut c) {
            return c;
        }
        assert!(Instant::now() < deadline, "never admitted again");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_address_over_its_connection_limit_is_closed_at_once() {
    let mut config = common::config("per-ip");
    config.connections = ConnectionLimits {
        per_ip: Some(3),
        ..ConnectionLimits::default()
    };
    let broker = common::start(&config);
    let addr = broker.local_addr();
    let mut open: Vec<Client> = (0..3).map(|_| Client::connect(addr)).collect();
    for c in &mut open {
        let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
        assert_eq!(r.error_code, 0);
    }
    // The fourth: closed without an answer, and soon (not by a timeout).
    let start = Instant::now();
    let mut fourth = Client::connect(addr);
    assert!(!served(&mut fourth), "a fourth connection was served");
    assert!(start.elapsed() < Duration::from_secs(5));
    // The three still work.
    for c in &mut open {
        assert!(served(c));
    }
    // One closes: a new one gets its place, and only one.
    drop(open.pop());
    open.push(admitted(addr));
    let mut another = Client::connect(addr);
    assert!(!served(&mut another), "four open at once");
}

#[test]
fn an_override_gives_an_address_its_own_limit() {
    let mut config = common::config("per-ip-override");
    config.connections = ConnectionLimits {
        per_ip: Some(1),
        per_ip_overrides: vec![("127.0.0.1".parse().unwrap(), 2)],
        ..ConnectionLimits::default()
    };
    let broker = common::start(&config);
    let addr = broker.local_addr();
    let mut two = [Client::connect(addr), Client::connect(addr)];
    for c in &mut two {
        assert!(served(c));
    }
    assert!(!served(&mut Client::connect(addr)));
    // Zero refuses the address outright.
    let mut config = common::config("per-ip-zero");
    config.connections.per_ip_overrides = vec![("127.0.0.1".parse().unwrap(), 0)];
    let broker = common::start(&config);
    assert!(!served(&mut Client::connect(broker.local_addr())));
}

#[test]
fn a_connection_idle_past_the_limit_is_closed_and_a_talking_one_kept() {
    let mut config = common::config("max-idle");
    // A second's limit: a talking connection has 800 ms to spare, for a
    // loaded host.
    config.connections.max_idle = Some(Duration::from_millis(1_000));
    let broker = common::start(&config);
    let addr = broker.local_addr();
    let mut silent = Client::connect(addr);
    let mut talking = Client::connect(addr);
    let start = Instant::now();
    // Talks every 200 ms for 2.5 s, two and a half idle limits' worth.
    while start.elapsed() < Duration::from_millis(2_500) {
        assert!(served(&mut talking), "a talking connection was closed");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The silent one was closed after its second (EOF, not the read
    // timeout).
    assert!(silent.is_closed());
    assert!(start.elapsed() < Duration::from_secs(8));
    // Never idle-closed by default within a test's time.
    let broker = common::start(&common::config("max-idle-default"));
    let mut quiet = Client::connect(broker.local_addr());
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(served(&mut quiet));
}

#[test]
fn past_max_connections_a_connection_waits_until_another_closes() {
    let mut config = common::config("max-connections");
    config.connections.max = Some(2);
    // Two listeners share the limit.
    config.listeners = vec![
        "PLAINTEXT://127.0.0.1:0".parse().unwrap(),
        "PLAINTEXT://127.0.0.1:0".parse().unwrap(),
    ];
    let broker = common::start(&config);
    let addrs: Vec<_> = broker.listeners().iter().map(|l| l.addr).collect();
    assert_eq!(addrs.len(), 2);
    let mut first = Client::connect(addrs[0]);
    let mut second = Client::connect(addrs[1]);
    assert!(served(&mut first) && served(&mut second));
    // A third, on either listener: connected, its request unanswered.
    let mut third = Client::connect(addrs[0]);
    third
        .stream
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    assert!(
        !served(&mut third),
        "a third connection served at a limit of 2"
    );
    // The one on the other listener closes: the third's waiting request
    // is answered.
    drop(second);
    third
        .stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(third.receive().is_ok(), "never served after a close");
    assert!(served(&mut first));
}

/// A connection to `addr` whose ApiVersions waits unanswered for 400 ms
/// (it is not yet accepted), to be answered later.
fn waiting(addr: std::net::SocketAddr) -> Client {
    let mut c = Client::connect(addr);
    c.stream
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    assert!(!served(&mut c), "served past a limit");
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    c
}

#[test]
fn a_listener_limit_holds_within_the_brokers() {
    use gyre_broker::security::SecurityProtocol;
    let mut config = common::config("listener-max-connections");
    config.connections.max = Some(2);
    config.connections.per_listener = vec![(SecurityProtocol::Plaintext, 1)];
    // ApiVersions is served before SASL authentication.
    config.listeners = vec![
        "PLAINTEXT://127.0.0.1:0".parse().unwrap(),
        "SASL_PLAINTEXT://127.0.0.1:0".parse().unwrap(),
    ];
    let broker = common::start(&config);
    let (plain, sasl) = (broker.listeners()[0].addr, broker.listeners()[1].addr);
    let mut p1 = Client::connect(plain);
    assert!(served(&mut p1));
    // The PLAINTEXT listener's limit of 1 is reached; the broker's is not.
    let mut p2 = waiting(plain);
    let s1 = admitted(sasl);
    // The broker's limit of 2 is reached too; a SASL connection closing
    // frees a place for SASL, but not for PLAINTEXT, still at its own.
    drop(s1);
    let _s2 = admitted(sasl);
    p2.stream
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    assert!(p2.receive().is_err(), "served past its listener's limit");
    // p1 closing frees a place in both: p2 is served.
    p2.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    drop(p1);
    assert!(p2.receive().is_ok(), "never served after a close");
    // Both limits are full again: SASL waits on the broker's.
    let _s3 = waiting(sasl);
}

#[test]
fn a_connection_waiting_for_its_answer_is_not_idle() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
    let mut config = common::config("max-idle-fetch");
    config.connections.max_idle = Some(Duration::from_millis(500));
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    common::create_topic(&mut c, "quiet", 1);
    // A fetch on an empty partition waits its 2 s for a record: four idle
    // periods with nothing moving, the answer still owed.
    let mut p = FetchPartition::default();
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = common::topic_name("quiet");
    t.partitions.push(p);
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_wait_ms = 2_000;
    r.min_bytes = 1;
    r.max_bytes = 1 << 20;
    r.topics.push(t);
    let start = Instant::now();
    let resp: FetchResponse = c.call(ApiKey::Fetch, 4, &r);
    assert!(
        start.elapsed() >= Duration::from_millis(1_900),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(resp.responses[0].partitions[0].error_code, 0);
    // Answered, it is idle like any other: closed after its 500 ms.
    std::thread::sleep(Duration::from_millis(1_200));
    assert!(c.is_closed());
}
