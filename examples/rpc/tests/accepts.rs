//! A provider's connection limit, as Dubbo's `accepts`: past it a
//! consumer's connection is closed as soon as it opens, so its call fails
//! at once (not at its timeout); a connection that closes gives its place
//! to the next; a cluster meeting a full provider turns to another.

use gyre_rpc::cluster::Cluster;
use gyre_rpc::consumer::{Consumer, RpcError};
use gyre_rpc::provider::{Provider, Service, ServiceError};
use gyre_rpc::ServiceKey;
use std::time::{Duration, Instant};

fn key() -> ServiceKey {
    ServiceKey::new("test.Limited")
}

fn provider(accepts: usize, answer: i64) -> Provider {
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .io_threads(1)
        .accepts(accepts)
        .service(
            Service::builder(key())
                .method("who", move |(): ()| Ok::<_, ServiceError>(answer))
                .build(),
        )
        .start()
        .unwrap()
}

fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn past_its_accepts_a_connection_fails_at_once_and_a_closed_one_frees_its_place() {
    let p = provider(2, 7);
    let consumer = Consumer::builder().build().unwrap();
    let a = consumer.connect(p.local_addr()).unwrap();
    let b = consumer.connect(p.local_addr()).unwrap();
    for c in [&a, &b] {
        let n: i64 = c.call(&key(), "who", &()).unwrap();
        assert_eq!(n, 7);
    }
    assert_eq!(p.connections(), 2);
    // The third: refused now (the connection closed), not after the
    // call's timeout.
    let third = consumer
        .connect(p.local_addr())
        .and_then(|c| c.call::<_, i64>(&key(), "who", &()));
    assert!(
        matches!(third, Err(RpcError::Closed)),
        "a third connection at accepts = 2: {third:?}"
    );
    assert_eq!(p.connections(), 2);
    // One goes: a new one gets its place.
    a.close();
    assert!(
        eventually(|| p.connections() == 1),
        "the closed one still counted"
    );
    let c = consumer.connect(p.local_addr()).unwrap();
    let n: i64 = c.call(&key(), "who", &()).unwrap();
    assert_eq!(n, 7);
    let _ = b;
}

#[test]
fn a_cluster_meeting_a_full_provider_calls_another() {
    let full = provider(1, 1);
    let other = provider(0, 2);
    // Someone else holds the full provider's one place.
    let holder = Consumer::builder().build().unwrap();
    let held = holder.connect(full.local_addr()).unwrap();
    let n: i64 = held.call(&key(), "who", &()).unwrap();
    assert_eq!(n, 1);
    let cluster = Cluster::builder(key()).build(Consumer::builder().build().unwrap());
    cluster.set_providers([(full.local_addr(), 100), (other.local_addr(), 100)]);
    // Every call is answered, and by the provider with room.
    for _ in 0..50 {
        let n: i64 = cluster.call("who", &()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n, 2);
    }
    assert_eq!(full.connections(), 1);
}
