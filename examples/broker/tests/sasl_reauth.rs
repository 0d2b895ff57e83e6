//! SASL re-authentication (KIP-368, `connections.max.reauth.ms`): the
//! broker tells each authentication its lifetime; a client renews it on
//! the same connection, with the same mechanism and as the same user, and
//! goes on; a connection that sends anything else after its session ended
//! is closed, as is one that renews as somebody else. With a raw client,
//! and with librdkafka (confluent-kafka), kafka-python and kafkajs, which
//! renew on their own.

mod common;

use common::Client;
use gyre_broker::security::scram::{Credential, Mechanism};
use gyre_broker::Broker;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A broker with one SASL_PLAINTEXT listener, users alice and bob, and
/// sessions of `lifetime`; its listener's address.
fn broker(tag: &str, lifetime: Duration) -> (Broker, SocketAddr) {
    let mut config = common::config(tag);
    config.listeners = vec!["SASL_PLAINTEXT://127.0.0.1:0".parse().unwrap()];
    config.connections.max_reauth = Some(lifetime);
    let broker = common::start(&config);
    for user in ["alice", "bob"] {
        for m in Mechanism::ALL {
            broker
                .credentials()
                .set(user, Credential::new(m, "pw", 4096))
                .unwrap();
        }
    }
    let addr = broker.listeners()[0].addr;
    (broker, addr)
}

/// A PLAIN handshake and authentication as `user`: the lifetime the
/// broker gave, or the error code.
fn plain(c: &mut Client, user: &str) -> Result<i64, i16> {
    common::sasl_once(c, "PLAIN", format!("\0{user}\0pw").into_bytes())
}

#[test]
fn a_session_must_be_renewed_by_its_user_before_it_ends() {
    // Renewals come with a second to spare, for a loaded host.
    let lifetime = Duration::from_millis(2_000);
    let (_broker, addr) = broker("reauth", lifetime);
    let mut c = Client::connect(addr);
    assert_eq!(plain(&mut c, "alice"), Ok(2_000));
    assert!(common::metadata_answered(&mut c));
    // Renewed every second, it outlives its first lifetime twice over.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1_000));
        assert_eq!(plain(&mut c, "alice"), Ok(2_000), "a renewal refused");
        assert!(common::metadata_answered(&mut c), "closed after a renewal");
    }
    // Not renewed: the next request closes it.
    std::thread::sleep(Duration::from_millis(2_100));
    assert!(
        !common::metadata_answered(&mut c),
        "served past its session's end"
    );
    assert!(c.is_closed());

    // Renewed as somebody else: refused, and closed.
    let mut c = Client::connect(addr);
    assert_eq!(plain(&mut c, "alice"), Ok(2_000));
    assert_eq!(plain(&mut c, "bob"), Err(58)); // SASL_AUTHENTICATION_FAILED
    assert!(c.is_closed());

    // Without a lifetime no renewal is due: a second handshake is refused.
    let mut config = common::config("reauth-off");
    config.listeners = vec!["SASL_PLAINTEXT://127.0.0.1:0".parse().unwrap()];
    let plain_broker = common::start(&config);
    plain_broker
        .credentials()
        .set("alice", Credential::new(Mechanism::Sha256, "pw", 4096))
        .unwrap();
    let mut c = Client::connect(plain_broker.listeners()[0].addr);
    assert_eq!(plain(&mut c, "alice"), Ok(0));
    assert_eq!(plain(&mut c, "alice"), Err(34)); // ILLEGAL_SASL_STATE
}

/// Runs `client` under `runner` against a broker whose sessions last 4 s
/// (see [`common::renews_on_its_connections`]).
fn renews_on_its_connections(tag: &str, runner: &str, client: &str) {
    let (broker, _) = broker(tag, Duration::from_millis(4_000));
    let credential = ("SCRAM-SHA-256", "alice:pw");
    common::renews_on_its_connections(
        &broker,
        runner,
        client,
        credential,
        Duration::from_millis(4_000),
    );
}

#[test]
fn librdkafka_renews_its_sessions_on_the_same_connections() {
    // librdkafka renews at about 90% of the lifetime: 400 ms to spare.
    renews_on_its_connections("reauth-librdkafka", "python3", "sasl_reauth.py");
}

#[test]
fn kafka_python_renews_its_sessions_on_the_same_connections() {
    renews_on_its_connections(
        "reauth-kafka-python",
        "python3",
        "sasl_reauth_kafka_python.py",
    );
}

#[test]
fn kafkajs_renews_its_sessions_on_the_same_connections() {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node_modules/kafkajs");
    assert!(
        modules.is_dir(),
        "kafkajs is not installed: scripts/test installs it"
    );
    renews_on_its_connections("reauth-kafkajs", "node", "sasl_reauth.js");
}
