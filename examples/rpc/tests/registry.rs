//! The embedded registry end to end: providers register, a cluster
//! subscribed to the registry follows them as they appear, leave cleanly,
//! and vanish without a word (their lease runs out).

mod common;

use common::{answering, wait_for};
use gyre_rpc::cluster::{Cluster, SmoothRoundRobin};
use gyre_rpc::consumer::Consumer;
use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
use gyre_rpc::registry::{EmbeddedRegistry, Registry, RegistryServer, Subscription};
use gyre_rpc::ServiceKey;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const TTL: Duration = Duration::from_millis(600);

fn key() -> ServiceKey {
    ServiceKey::new("test.Named").version("1")
}

/// A provider answering `name` with `id`, registered through a registry
/// client of its own (as a separate process would have).
fn provider(registry: SocketAddr, id: u32) -> Provider {
    provider_with_ttl(registry, id, TTL)
}

/// [`provider`] with a lease of `ttl` (renewed every third of it).
fn provider_with_ttl(registry: SocketAddr, id: u32, ttl: Duration) -> Provider {
    let client = EmbeddedRegistry::builder(registry)
        .ttl(ttl)
        .connect()
        .unwrap();
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .io_threads(1)
        .registry(Arc::new(client))
        .service(
            Service::builder(key())
                .dispatch(Dispatch::IoThread)
                .method("name", move |_: ()| Ok::<_, ServiceError>(id))
                .build(),
        )
        .start()
        .unwrap()
}

#[test]
fn a_subscribed_cluster_follows_providers_coming_leaving_and_dying() {
    let server = RegistryServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let (cluster, _sub) = subscribed_cluster(server.local_addr(), Duration::from_secs(2));

    let p1 = provider(server.local_addr(), 1);
    let p2 = provider(server.local_addr(), 2);
    let p3 = provider(server.local_addr(), 3);
    wait_for("three providers listed", Duration::from_secs(5), || {
        cluster.providers().len() == 3
    });
    assert_eq!(
        answering::<_, u32>(&cluster, "name", &(), 9),
        BTreeSet::from([1, 2, 3])
    );

    // Renewals keep the leases alive well past their time to live.
    std::thread::sleep(TTL * 3);
    assert_eq!(server.providers(&key()).len(), 3);

    // A clean shutdown unregisters first: gone at once.
    p1.shutdown(Duration::from_secs(1));
    let clean = wait_for("p1 removed", Duration::from_secs(2), || {
        cluster.providers().len() == 2
    });
    assert!(
        clean < TTL,
        "removed by unregistering, not by expiry: {clean:?}"
    );
    assert_eq!(
        answering::<_, u32>(&cluster, "name", &(), 6),
        BTreeSet::from([2, 3])
    );

    // A provider that dies says nothing: its lease runs out.
    p2.abort();
    let died = wait_for("p2 expired", TTL * 4, || {
        server.providers(&key()).len() == 1
    });
    assert!(
        died <= TTL + Duration::from_millis(400),
        "expired within the lease: {died:?}"
    );
    wait_for(
        "p2 removed from the cluster",
        Duration::from_secs(2),
        || cluster.providers().len() == 1,
    );
    assert_eq!(
        answering::<_, u32>(&cluster, "name", &(), 4),
        BTreeSet::from([3])
    );

    // A newcomer is picked up.
    let p4 = provider(server.local_addr(), 4);
    wait_for("p4 listed", Duration::from_secs(3), || {
        cluster.providers().len() == 2
    });
    assert_eq!(
        answering::<_, u32>(&cluster, "name", &(), 6),
        BTreeSet::from([3, 4])
    );
    drop(_sub);
    p3.shutdown(Duration::from_secs(1));
    p4.shutdown(Duration::from_secs(1));
    server.shutdown();
}

/// A round-robin cluster following the registry at `addr`, whose watch
/// waits up to `watch_wait` for a change.
fn subscribed_cluster(addr: SocketAddr, watch_wait: Duration) -> (Cluster, Subscription) {
    let registry = EmbeddedRegistry::builder(addr)
        .ttl(TTL)
        .watch_wait(watch_wait)
        .connect()
        .unwrap();
    let cluster = Cluster::builder(key())
        .balancer(SmoothRoundRobin)
        .build(Consumer::builder().build().unwrap());
    let sub = cluster.subscribe(&registry).unwrap();
    (cluster, sub)
}

/// A registry on a port known free, so that it can be started again there.
fn restartable_registry() -> (SocketAddr, RegistryServer) {
    let addr = {
        let s = RegistryServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let a = s.local_addr();
        s.shutdown();
        a
    };
    (addr, RegistryServer::start(addr).unwrap())
}

#[test]
fn registrations_survive_a_registry_restart() {
    let (addr, server) = restartable_registry();
    let p = provider(addr, 7);
    wait_for("registered", Duration::from_secs(2), || {
        server.providers(&key()).len() == 1
    });
    server.shutdown();
    // Back, empty: the provider's next renewal registers it again.
    let server = RegistryServer::start(addr).unwrap();
    wait_for("re-registered", Duration::from_secs(10), || {
        server.providers(&key()).len() == 1
    });
    let registry = EmbeddedRegistry::connect(addr).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let _sub = registry
        .subscribe(&key(), Box::new(move |list| drop(tx.send(list))))
        .unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        vec![gyre_rpc::registry::ProviderEntry::new(p.local_addr(), 100)]
    );
    p.shutdown(Duration::from_secs(1));
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), vec![]);
    server.shutdown();
}

#[test]
fn a_registry_restart_does_not_cut_calls_off_from_live_providers() {
    let (addr, server) = restartable_registry();
    // Renewals every two seconds: the consumer's
    // watch sees the restarted registry's empty list well before them.
    let p1 = provider_with_ttl(addr, 1, Duration::from_secs(6));
    let p2 = provider_with_ttl(addr, 2, Duration::from_secs(6));
    let (cluster, _sub) = subscribed_cluster(addr, Duration::from_millis(200));
    wait_for("two providers listed", Duration::from_secs(5), || {
        cluster.providers().len() == 2
    });

    // A caller every 10 ms through the restart.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (ok, failed, server) = std::thread::scope(|scope| {
        let caller = scope.spawn(|| {
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match cluster.call::<_, u32>("name", &()) {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e.to_string()),
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (ok, failed)
        });
        std::thread::sleep(Duration::from_millis(200));
        server.shutdown();
        std::thread::sleep(Duration::from_millis(300));
        // Back, empty: the subscription sees an empty list before the
        // providers' renewals register them again.
        let server = RegistryServer::start(addr).unwrap();
        wait_for("re-registered", Duration::from_secs(10), || {
            server.providers(&key()).len() == 2
        });
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (ok, failed) = caller.join().unwrap();
        (ok, failed, server)
    });
    assert!(ok > 20, "{ok} calls answered");
    assert!(
        failed.is_empty(),
        "{} calls failed: {failed:?}",
        failed.len()
    );
    assert_eq!(cluster.providers().len(), 2);

    // Providers still leave: one that unregisters and shuts down is gone
    // (unlisted, and its connection closed).
    p1.shutdown(Duration::from_secs(1));
    wait_for("p1 gone", Duration::from_secs(5), || {
        cluster.providers().len() == 1
    });
    assert_eq!(
        answering::<_, u32>(&cluster, "name", &(), 4),
        BTreeSet::from([2])
    );
    drop(_sub);
    p2.shutdown(Duration::from_secs(1));
    server.shutdown();
}
