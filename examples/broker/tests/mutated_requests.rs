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
//! The same with the feature requests (UpdateFeatures v0-2, ApiVersions
//! v3-4) built as kafka-python sends them: the levels' file must read
//! back whole whatever a mutation changed.
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
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Checks that no request panicked the broker, stops it, and checks that
/// every batch and record it stored is whole.
fn stop_whole(panics: &AtomicUsize, broker: gyre_broker::Broker, data: &std::path::Path) {
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "no request panicked the broker"
    );
    broker.shutdown(Duration::from_secs(5));
    let report = gyre_broker::verify::verify_data_dir(data).unwrap();
    assert!(report.is_clean(), "{report}");
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
    stop_whole(&panics, broker, &config.data_dir);
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

/// `body` as API `key` v`version` behind its size, as a client sends it.
fn framed<M: kafka_protocol::protocol::Encodable>(key: ApiKey, version: i16, body: &M) -> Vec<u8> {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = 7;
    header.client_id = Some(StrBytes::from_static_str("kafka-python-3.0.12"));
    let mut buf = bytes::BytesMut::new();
    kafka_protocol::protocol::encode_request_header_into_buffer(&mut buf, &header).unwrap();
    body.encode(&mut buf, version).unwrap();
    let mut out = (buf.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&buf);
    out
}

#[test]
fn mutated_feature_requests_harm_only_their_own_connections_and_the_levels_stay_whole() {
    // UpdateFeatures at each version (the changes kafka-python's
    // update_features and kafka-features.sh send) and ApiVersions v3-4;
    // a mutation may well change a level: the file must stay readable.
    use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
    let panics = count_panics();
    let update = |version: i16, feature: &'static str, level: i16, kind: i8, validate_only| {
        let mut u = FeatureUpdateKey::default();
        u.feature = StrBytes::from_static_str(feature);
        u.max_version_level = level;
        if version == 0 {
            u.allow_downgrade = kind != 1;
        } else {
            u.upgrade_type = kind;
        }
        let mut r = UpdateFeaturesRequest::default();
        r.timeout_ms = 60_000;
        r.feature_updates = vec![u];
        r.validate_only = validate_only && version >= 1;
        framed(ApiKey::UpdateFeatures, version, &r)
    };
    let mut owned = Vec::new();
    for version in 0..=2 {
        owned.push(update(version, "share.version", 0, 2, false));
        owned.push(update(version, "group.version", 1, 1, true));
    }
    for version in 3..=4 {
        let mut r = ApiVersionsRequest::default();
        r.client_software_name = StrBytes::from_static_str("kafka-python");
        r.client_software_version = StrBytes::from_static_str("3.0.12");
        owned.push(framed(ApiKey::ApiVersions, version, &r));
    }
    let frames: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let config = common::config("mutated-features");
    let broker = common::start(&config);
    let addr: SocketAddr = broker.local_addr();
    let mut bystander = Client::connect(addr);
    let (mut rng, iterations) = fuzz_run(0x2545_f491_4f6c_dd1d, 3_000);
    spray_mutations(addr, KAFKA, &frames, &mut rng, iterations, |i| {
        still_serves(&mut bystander, i);
        let r: ApiVersionsResponse =
            bystander.call(ApiKey::ApiVersions, 4, &ApiVersionsRequest::default());
        assert_eq!(r.supported_features.len(), 3, "after {i} mutations");
    });
    stop_whole(&panics, broker, &config.data_dir);
    // And a start reads the levels back.
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    let r: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 4, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
    broker.shutdown(Duration::from_secs(5));
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
