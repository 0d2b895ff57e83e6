//! gyre-rpc over TLS: calls on both dispatches (loop and pool) through a
//! TLS provider, many threads sharing one TLS connection, mutual TLS
//! letting in only a consumer with a certificate, and a plaintext consumer
//! refused by a TLS provider with an error, not a hang.

use gyre_reactor::{TlsAcceptor, TlsConnector, TlsIdentity, TlsRoots};
use gyre_rpc::consumer::{CallOptions, Consumer};
use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
use gyre_rpc::ServiceKey;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::time::Duration;

/// A CA that issues certificates (PEM) for names.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(vec![]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    fn identity(&self, name: &str) -> TlsIdentity {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        TlsIdentity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap()
    }

    fn roots(&self) -> TlsRoots {
        TlsRoots::from_pem(self.pem.as_bytes()).unwrap()
    }
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

#[test]
fn calls_go_over_tls_on_both_dispatches_from_many_threads() {
    let ca = Ca::new("rpc CA");
    let provider = provider(
        TlsAcceptor::builder()
            .identity(ca.identity("provider.internal"))
            .build()
            .unwrap(),
    );
    let tls = TlsConnector::builder("provider.internal")
        .roots(ca.roots())
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
    let ca = Ca::new("rpc CA");
    let clients = Ca::new("consumer CA");
    let provider = provider(
        TlsAcceptor::builder()
            .identity(ca.identity("provider.internal"))
            .require_client_certificates(clients.roots())
            .build()
            .unwrap(),
    );
    let fast = CallOptions::default().timeout(Duration::from_secs(2));
    // No certificate: the provider refuses the handshake; the call fails.
    let anonymous = TlsConnector::builder("provider.internal")
        .roots(ca.roots())
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
        .roots(ca.roots())
        .identity(clients.identity("consumer-1"))
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
    let ca = Ca::new("rpc CA");
    let provider = provider(
        TlsAcceptor::builder()
            .identity(ca.identity("provider.internal"))
            .build()
            .unwrap(),
    );
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
