//! Provider tokens, as Dubbo's: a provider that requires one refuses a
//! call without it (or with another) with `Status::Forbidden`, publishes
//! it with its registration, and a cluster following the registry calls
//! it with the token; a direct connection given the token gets in.

use gyre_rpc::cluster::Cluster;
use gyre_rpc::consumer::{Consumer, RpcError};
use gyre_rpc::provider::{Provider, ProviderToken, Service, ServiceError};
use gyre_rpc::registry::{EmbeddedRegistry, RegistryServer};
use gyre_rpc::{ServiceKey, Status};
use std::sync::Arc;
use std::time::Duration;

fn key() -> ServiceKey {
    ServiceKey::new("test.Guarded")
}

/// The service both tests call: `double`.
fn doubler() -> Service {
    Service::builder(key())
        .method("double", |n: i64| Ok::<_, ServiceError>(n * 2))
        .build()
}

#[test]
fn a_registry_carries_the_token_and_strangers_are_forbidden() {
    let registry_server = RegistryServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let registry = Arc::new(EmbeddedRegistry::connect(registry_server.local_addr()).unwrap());
    let provider = Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .io_threads(1)
        .registry(registry.clone())
        .token(ProviderToken::Random)
        .service(doubler())
        .start()
        .unwrap();
    let token = provider.token().expect("a random token").to_owned();
    assert_eq!(
        registry_server.providers(&key())[0].token.as_deref(),
        Some(token.as_str()),
        "published with the registration"
    );

    // Through the registry: the cluster attaches the token.
    let cluster = Cluster::builder(key()).build(Consumer::builder().build().unwrap());
    let _sub = cluster.subscribe(&*registry).unwrap();
    cluster
        .wait_for_providers(1, Duration::from_secs(5))
        .unwrap();
    for n in 0..100i64 {
        let doubled: i64 = cluster.call("double", &n).unwrap();
        assert_eq!(doubled, n * 2);
    }

    // Directly, without the token or with another: forbidden, with a
    // message that says why, and the connection stays usable.
    let consumer = Consumer::builder().build().unwrap();
    let bare = consumer.connect(provider.local_addr()).unwrap();
    match bare.call::<_, i64>(&key(), "double", &1) {
        Err(RpcError::Failed { status, message }) => {
            assert_eq!(status, Status::Forbidden);
            assert!(message.contains("token"), "{message}");
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    let wrong = consumer
        .connect_with_token(provider.local_addr(), Some("not-it".into()))
        .unwrap();
    let refused = wrong.call::<_, i64>(&key(), "double", &1).unwrap_err();
    assert_eq!(refused.status(), Status::Forbidden);
    assert!(!refused.is_retryable(), "another provider would refuse too");
    let right = consumer
        .connect_with_token(provider.local_addr(), Some(token.into()))
        .unwrap();
    assert_eq!(right.call::<_, i64>(&key(), "double", &21).unwrap(), 42);
    assert_eq!(
        bare.call::<_, i64>(&key(), "double", &2)
            .unwrap_err()
            .status(),
        Status::Forbidden
    );

    provider.shutdown(Duration::from_secs(1));
    registry_server.shutdown();
}

#[test]
fn a_provider_without_a_token_takes_calls_that_carry_one() {
    let provider = Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .io_threads(1)
        .service(doubler())
        .start()
        .unwrap();
    assert_eq!(provider.token(), None);
    let conn = Consumer::builder()
        .build()
        .unwrap()
        .connect_with_token(provider.local_addr(), Some("spare".into()))
        .unwrap();
    assert_eq!(conn.call::<_, i64>(&key(), "double", &4).unwrap(), 8);
    provider.shutdown(Duration::from_secs(1));
}
