//! Mutated client requests against a live broker: the requests of real
//! clients (librdkafka and kafka-python creating topics, producing with
//! idempotence, compression and a transaction, consuming in a group,
//! committing, describing configs; recorded in
//! `fixtures/client_requests.bin`, each frame with its size) are sent
//! again with bits flipped, fields set to extreme values, lengths that
//! lie, frames cut short or spliced together, each on a connection of its
//! own. Every hundred, a bystander connection must still be answered, by
//! the loops (ApiVersions) and by the group and transaction coordinator
//! (ListGroups, InitProducerId); at the end, every batch the broker stored
//! must be whole. Deterministic: a seeded generator (`GYRE_FUZZ_SEED`,
//! `GYRE_FUZZ_ITERATIONS` to explore further).
//!
//! The same against a SASL listener (PLAIN, SCRAM-SHA-256 and -512,
//! OAUTHBEARER): a recorded exchange, one of its messages mutated, sent
//! whole on a connection of its own; every hundred, a bystander must still
//! log in and be answered.
//!
//! The coordinator's thread once panicked on an AddPartitionsToTxn naming
//! no partition for an unknown transactional id, found this way (by the
//! same mutations from a script); every group and transaction request
//! after it went unanswered.

mod common;

use common::Client;
use gyre_testkit::{count_panics, fuzz_run, mutate, spray_mutations, SizeField, Sprayer};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

const RECORDED: &[u8] = include_bytes!("fixtures/client_requests.bin");
/// librdkafka's and kafka-python's logins (SaslHandshake, SaslAuthenticate,
/// and what they sent around them) as user `alice`, password `secret1`.
const RECORDED_SASL: &[u8] = include_bytes!("fixtures/sasl_requests.bin");

/// The frames of `recorded`, each with its 4-byte size.
fn frames_of(recorded: &'static [u8]) -> Vec<&'static [u8]> {
    let mut out = Vec::new();
    let mut rest = recorded;
    while rest.len() >= 4 {
        let n = 4 + u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    assert!(rest.is_empty() && out.len() > 30, "the fixture is whole");
    out
}

fn frames() -> Vec<&'static [u8]> {
    frames_of(RECORDED)
}

/// Where a Kafka frame says its size.
const KAFKA: SizeField = SizeField {
    at: 0,
    counts_from: 4,
};

/// The loops and the coordinator still answer `c`.
fn still_serves(c: &mut Client, after: usize) {
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0, "ApiVersions after {after} mutations");
    let r: ListGroupsResponse = c.call(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
    assert_eq!(r.error_code, 0, "ListGroups after {after} mutations");
    let mut init = InitProducerIdRequest::default();
    init.transactional_id = Some(TransactionalId(StrBytes::from_static_str("bystander")));
    init.transaction_timeout_ms = 60_000;
    let r: InitProducerIdResponse = c.call(ApiKey::InitProducerId, 4, &init);
    assert!(
        [0, 51].contains(&r.error_code),
        "InitProducerId after {after} mutations: {r:?}"
    );
}

#[test]
fn mutated_client_requests_harm_only_their_own_connections() {
    let panics = count_panics();
    let frames = frames();
    let config = common::config("mutated-requests");
    let broker = common::start(&config);
    let addr: SocketAddr = broker.local_addr();
    let mut bystander = Client::connect(addr);
    still_serves(&mut bystander, 0);
    let (mut rng, iterations) = fuzz_run(0x9e37_79b9_7f4a_7c15, 20_000);
    spray_mutations(addr, KAFKA, &frames, &mut rng, iterations, |i| {
        still_serves(&mut bystander, i)
    });
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "no request panicked the broker"
    );
    broker.shutdown(Duration::from_secs(5));
    let report = gyre_broker::verify::verify_data_dir(&config.data_dir).unwrap();
    assert!(report.is_clean(), "{report}");
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

/// The API key of a recorded frame.
fn api_key(frame: &[u8]) -> i16 {
    i16::from_be_bytes([frame[4], frame[5]])
}

/// A PLAIN login as `alice` on a fresh connection to `addr`, then
/// ApiVersions: the listener's loops and its SASL path still serve.
fn logs_in(addr: SocketAddr, after: usize) {
    let mut c = Client::connect(addr);
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("PLAIN");
    let r: SaslHandshakeResponse = c.call(ApiKey::SaslHandshake, 1, &hs);
    assert_eq!(r.error_code, 0, "SaslHandshake after {after} mutations");
    let mut auth = SaslAuthenticateRequest::default();
    auth.auth_bytes = bytes::Bytes::from_static(b"\0alice\0secret1");
    let r: SaslAuthenticateResponse = c.call(ApiKey::SaslAuthenticate, 2, &auth);
    assert_eq!(r.error_code, 0, "a login after {after} mutations: {r:?}");
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
}

#[test]
fn mutated_logins_harm_only_their_own_connections() {
    let frames = frames_of(RECORDED_SASL);
    let handshakes: Vec<&[u8]> = frames
        .iter()
        .copied()
        .filter(|f| api_key(f) == 17)
        .collect();
    let logins: Vec<&[u8]> = frames
        .iter()
        .copied()
        .filter(|f| api_key(f) == 36)
        .collect();
    let others: Vec<&[u8]> = frames
        .iter()
        .copied()
        .filter(|f| ![17, 36].contains(&api_key(f)))
        .collect();
    assert!(!handshakes.is_empty() && !logins.is_empty() && !others.is_empty());
    let data = common::data_dir("mutated-logins");
    let mut add = std::process::Command::new(env!("CARGO_BIN_EXE_gyre-broker"));
    add.arg("users").arg("--data").arg(&data).args([
        "add",
        "alice",
        "--password",
        "secret1",
        "--iterations",
        "4096",
    ]);
    assert!(add.status().unwrap().success());
    let mut broker = common::process::BrokerProcess::start(
        &data,
        &[
            "--listener",
            "SASL_PLAINTEXT://127.0.0.1:0",
            "--sasl-oauthbearer-unsecured",
        ],
    );
    let line = broker.next_line();
    let addr: SocketAddr = line.split("://").nth(1).unwrap().parse().unwrap();
    logs_in(addr, 0);
    let (mut rng, iterations) = fuzz_run(0x5eed_5a51, 5_000);
    let mut spray = Sprayer::default();
    for i in 1..=iterations {
        let mut exchange = vec![rng.pick(&handshakes).to_vec()];
        for _ in 0..1 + rng.below(3) {
            exchange.push(rng.pick(&logins).to_vec());
        }
        if rng.below(2) == 0 {
            exchange.push(rng.pick(&others).to_vec());
        }
        let which = rng.below(exchange.len());
        exchange[which] = mutate(&mut rng, KAFKA, &frames, &exchange[which]);
        spray.send(addr, &[&exchange.concat()]);
        if i % 100 == 0 {
            logs_in(addr, i);
        }
    }
    drop(spray);
    logs_in(addr, iterations);
    let log = broker.stderr();
    assert!(
        !log.contains("panicked"),
        "a login panicked the broker:\n{log}"
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}
