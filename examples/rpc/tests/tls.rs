//! gyre-rpc over TLS: calls on both dispatches (loop and pool) through a
//! TLS provider, many threads sharing one TLS connection, mutual TLS
//! letting in only a consumer with a certificate, and a plaintext consumer
//! refused by a TLS provider with an error, not a hang.

use gyre_reactor::{TlsAcceptor, TlsConnector, TlsIdentity, TlsRoots};
use gyre_rpc::consumer::{CallOptions, Consumer};
use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
use gyre_rpc::ServiceKey;
use gyre_testkit::certs::TestCa;
use std::time::Duration;

/// The test CA's certificates as TLS settings.
fn identity(ca: &TestCa, name: &str) -> TlsIdentity {
    let leaf = ca.issue(&[name]);
    TlsIdentity::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap()
}

fn roots(ca: &TestCa) -> TlsRoots {
    TlsRoots::from_pem(ca.pem().as_bytes()).unwrap()
}

fn calc() -> ServiceKey {
    ServiceKey::new("test.Calc")
}

fn provider(tls: TlsAcceptor) -> Provider {
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .io_threads(1)
        .pool_threads(2)
        .tls(tls)
        .service(
            Service::builder(calc())
                .dispatch(Dispatch::IoThread)
                .method("add", |(a, b): (i64, i64)| Ok::<_, ServiceError>(a + b))
                .build(),
        )
        .service(
            Service::builder(ServiceKey::new("test.Pooled"))
                .dispatch(Dispatch::WorkerPool)
                .method("len", |s: String| Ok::<_, ServiceError>(s.len()))
                .build(),
        )
        .start()
        .unwrap()
}

/// A provider serving TLS as `provider.internal`, certified by `ca`.
fn tls_provider(ca: &TestCa) -> Provider {
    provider(
        TlsAcceptor::builder()
            .identity(identity(ca, "provider.internal"))
            .build()
            .unwrap(),
    )
}

#[test]
fn calls_go_over_tls_on_both_dispatches_from_many_threads() {
    let ca = TestCa::new("rpc CA");
    let provider = tls_provider(&ca);
    let tls = TlsConnector::builder("provider.internal")
        .roots(roots(&ca))
        .build()
        .unwrap();
    let consumer = Consumer::builder().tls(tls).build().unwrap();
    let conn = consumer.connect(provider.local_addr()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4i64 {
            let conn = &conn;
            s.spawn(move || {
                for i in 0..500i64 {
                    let sum: i64 = conn.call(&calc(), "add", &(t, i)).unwrap();
                    assert_eq!(sum, t + i);
                }
            });
        }
    });
    let big = "x".repeat(200_000);
    let len: usize = conn
        .call(&ServiceKey::new("test.Pooled"), "len", &big)
        .unwrap();
    assert_eq!(len, 200_000);
    provider.shutdown(Duration::from_secs(2));
}

#[test]
fn mutual_tls_lets_in_only_a_consumer_with_a_certificate() {
    let ca = TestCa::new("rpc CA");
    let clients = TestCa::new("consumer CA");
    let provider = provider(
        TlsAcceptor::builder()
            .identity(identity(&ca, "provider.internal"))
            .require_client_certificates(roots(&clients))
            .build()
            .unwrap(),
    );
    let fast = CallOptions::default().timeout(Duration::from_secs(2));
    // No certificate: the provider refuses the handshake; the call fails.
    let anonymous = TlsConnector::builder("provider.internal")
        .roots(roots(&ca))
        .build()
        .unwrap();
    let consumer = Consumer::builder().tls(anonymous).build().unwrap();
    let outcome = consumer
        .connect(provider.local_addr())
        .and_then(|conn| conn.call_with::<_, i64>(&calc(), "add", &(1, 2), &fast));
    assert!(
        outcome.is_err(),
        "a consumer without a certificate got {outcome:?}"
    );
    // With one: served.
    let known = TlsConnector::builder("provider.internal")
        .roots(roots(&ca))
        .identity(identity(&clients, "consumer-1"))
        .build()
        .unwrap();
    let consumer = Consumer::builder().tls(known).build().unwrap();
    let conn = consumer.connect(provider.local_addr()).unwrap();
    let sum: i64 = conn.call(&calc(), "add", &(40, 2)).unwrap();
    assert_eq!(sum, 42);
    provider.shutdown(Duration::from_secs(2));
}

#[test]
fn a_plaintext_consumer_is_refused_not_left_hanging() {
    let ca = TestCa::new("rpc CA");
    let provider = tls_provider(&ca);
    let consumer = Consumer::builder().build().unwrap();
    let fast = CallOptions::default().timeout(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let outcome = consumer
        .connect(provider.local_addr())
        .and_then(|conn| conn.call_with::<_, i64>(&calc(), "add", &(1, 2), &fast));
    assert!(outcome.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "refused at once (the provider answers a non-TLS hello with an alert and closes), not by the timeout: {outcome:?}"
    );
    provider.shutdown(Duration::from_secs(2));
}
