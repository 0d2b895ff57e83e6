//! Asynchronous provider methods (`ServiceBuilder::async_method`): the
//! future runs on the connection's event loop whatever the service's
//! dispatch, awaits a downstream cluster's calls without holding that
//! loop (another call on the same loop is answered meanwhile), answers a
//! service error as one and a panic as `ServerError`, and a graceful
//! shutdown waits for it.

use gyre_rpc::cluster::Cluster;
use gyre_rpc::consumer::{CallOptions, Connection, Consumer, RpcError};
use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
use gyre_rpc::{ServiceKey, Status};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn downstream() -> ServiceKey {
    ServiceKey::new("test.Slow")
}

fn front() -> ServiceKey {
    ServiceKey::new("test.Front")
}

/// `test.Slow`'s `wait(ms)` answers `ms` after sleeping that long on a
/// worker.
fn slow_provider() -> Provider {
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .pool_threads(4)
        .service(
            Service::builder(downstream())
                .dispatch(Dispatch::WorkerPool)
                .method("wait", |ms: u64| {
                    std::thread::sleep(Duration::from_millis(ms));
                    Ok::<_, ServiceError>(ms)
                })
                .build(),
        )
        .start()
        .unwrap()
}

/// A front provider on one loop whose `relay(ms)` awaits `wait(ms)`
/// downstream (a worker-pool service: the method still runs on the
/// loop), `quick()` answers at once on the loop, `refuse()` fails as a
/// service and `explode()` panics.
fn front_provider(down: &Provider) -> Provider {
    let cluster = Cluster::builder(downstream())
        .options(CallOptions::default().timeout(Duration::from_secs(5)))
        .build(Consumer::builder().build().unwrap());
    cluster.set_providers([(down.local_addr(), 100)]);
    cluster
        .wait_for_providers(1, Duration::from_secs(5))
        .unwrap();
    let cluster = Arc::new(cluster);
    let relayed = Service::builder(front())
        .dispatch(Dispatch::WorkerPool)
        .async_method("relay", move |ms: u64| {
            let call = cluster.call_async::<_, u64>("wait", &ms);
            async move {
                assert!(gyre_reactor::is_event_loop_thread());
                let waited = call.await.map_err(|e| ServiceError::new(e.to_string()))?;
                // Still on the loop after the wait.
                assert!(gyre_reactor::is_event_loop_thread());
                Ok::<_, ServiceError>(waited + 1)
            }
        })
        .async_method("refuse", |_: ()| async {
            Err::<u8, _>(ServiceError::new("not today"))
        })
        .async_method("explode", |_: ()| async {
            panic!("a deliberate panic in an asynchronous method");
            #[allow(unreachable_code)]
            Ok::<u8, ServiceError>(0)
        })
        .build();
    let quick = Service::builder(ServiceKey::new("test.Quick"))
        .dispatch(Dispatch::IoThread)
        .method("quick", |_: ()| Ok::<_, ServiceError>(7u8))
        .build();
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .io_threads(1)
        .service(relayed)
        .service(quick)
        .start()
        .unwrap()
}

/// The downstream provider, the front one, and a connection to the front.
fn running() -> (Provider, Provider, Arc<Connection>) {
    let down = slow_provider();
    let front_p = front_provider(&down);
    let conn = Consumer::builder()
        .build()
        .unwrap()
        .connect(front_p.local_addr())
        .unwrap();
    (down, front_p, Arc::new(conn))
}

#[test]
fn an_async_method_awaits_a_downstream_call_on_its_loop_without_holding_it() {
    let (down, front_p, conn) = running();
    assert_eq!(conn.call::<_, u64>(&front(), "relay", &0u64).unwrap(), 1);
    // A 400 ms relay in flight; meanwhile the same connection's loop
    // answers a quick call at once.
    let c = conn.clone();
    let slow = std::thread::spawn(move || c.call::<_, u64>(&front(), "relay", &400u64));
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    assert_eq!(
        conn.call::<_, u8>(&ServiceKey::new("test.Quick"), "quick", &())
            .unwrap(),
        7
    );
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "the loop was held: {:?}",
        t.elapsed()
    );
    assert_eq!(slow.join().unwrap().unwrap(), 401);
    // Many at once on one loop: each waits on the downstream together.
    let t = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let c = conn.clone();
            std::thread::spawn(move || c.call::<_, u64>(&front(), "relay", &200u64))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), 201);
    }
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "eight 200 ms relays took {:?}: run one after another",
        t.elapsed()
    );
    front_p.shutdown(Duration::from_secs(1));
    down.shutdown(Duration::from_secs(1));
}

#[test]
fn an_async_methods_service_error_and_panic_are_answered() {
    let (down, front_p, conn) = running();
    match conn.call::<_, u8>(&front(), "refuse", &()) {
        Err(RpcError::Failed { status, message }) => {
            assert_eq!(status, Status::ServiceError);
            assert_eq!(message, "not today");
        }
        other => panic!("{other:?}"),
    }
    let e = conn.call::<_, u8>(&front(), "explode", &()).unwrap_err();
    assert_eq!(e.status(), Status::ServerError, "{e}");
    // The loop goes on.
    assert_eq!(conn.call::<_, u64>(&front(), "relay", &0u64).unwrap(), 1);
    front_p.shutdown(Duration::from_secs(1));
    down.shutdown(Duration::from_secs(1));
}

#[test]
fn a_graceful_shutdown_waits_for_an_async_methods_answer() {
    let (down, front_p, conn) = running();
    let c = conn.clone();
    let call = std::thread::spawn(move || c.call::<_, u64>(&front(), "relay", &300u64));
    std::thread::sleep(Duration::from_millis(50));
    front_p.shutdown(Duration::from_secs(3));
    assert_eq!(call.join().unwrap().unwrap(), 301);
    down.shutdown(Duration::from_secs(1));
}
