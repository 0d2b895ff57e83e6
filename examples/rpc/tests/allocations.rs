//! Heap allocations per call in steady state, counted by a global
//! allocator: the provider alone (a raw client replays one captured
//! request frame and reads each answer, allocating nothing itself), and
//! the whole call with gyre-rpc's consumer (the consumer's share is the
//! difference), for calls on the I/O thread and on the worker pool (the
//! offload stage). Each bound is the measured figure with a little room:
//! a regression fails it. What allocates, and why, is in BENCHMARKS.md
//! ("Allocations per message").

use gyre_rpc::cluster::Cluster;
use gyre_rpc::consumer::{Connection, Consumer};
use gyre_rpc::protocol::{Header, HEADER_LEN};
use gyre_rpc::provider::{Dispatch, Provider, Responder, Service, ServiceError};
use gyre_rpc::ServiceKey;
use gyre_testkit::CountingAllocator;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator::new();

const WARM_UP: usize = 2_000;
const COUNTED: usize = 20_000;

fn key() -> ServiceKey {
    ServiceKey::new("bench.Calc").version("1")
}

fn provider(dispatch: Dispatch) -> Provider {
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .io_threads(1)
        .pool_threads(1)
        .service(
            Service::builder(key())
                .dispatch(dispatch)
                .method("add", |(a, b): (i64, i64)| Ok::<_, ServiceError>(a + b))
                .async_method("add_async", |(a, b): (i64, i64)| async move {
                    Ok::<_, ServiceError>(a + b)
                })
                .deferred_method(
                    "add_deferred",
                    |(a, b): (i64, i64), answer: Responder<i64>| answer.send(Ok(a + b)),
                )
                .build(),
        )
        .start()
        .unwrap()
}

/// Allocations per call of `f` after a warm-up.
fn counted(f: impl FnMut()) -> f64 {
    ALLOCATOR.per_call(WARM_UP, COUNTED, f)
}

/// One request frame for `method` as the consumer writes it, captured by
/// a listener posing as the provider.
fn captured_request(method: &'static str) -> Vec<u8> {
    let tap = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tap.local_addr().unwrap();
    let caller = std::thread::spawn(move || {
        let consumer = Consumer::builder().build().unwrap();
        let conn = consumer.connect(addr).unwrap();
        // Never answered: the tap only reads.
        let _ = conn.call::<_, i64>(&key(), method, &(20i64, 22i64));
    });
    let (mut s, _) = tap.accept().unwrap();
    let mut frame = vec![0u8; HEADER_LEN];
    s.read_exact(&mut frame).unwrap();
    let header = Header::decode(&frame).unwrap();
    let mut body = vec![0u8; header.body_len as usize];
    s.read_exact(&mut body).unwrap();
    frame.extend_from_slice(&body);
    drop(s);
    drop(caller);
    frame
}

/// The provider's allocations per call: the captured frame replayed.
fn provider_side(addr: SocketAddr, request: &[u8]) -> f64 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; HEADER_LEN];
    let mut body = [0u8; 256];
    counted(|| {
        s.write_all(request).unwrap();
        s.read_exact(&mut head).unwrap();
        let len = Header::decode(&head).unwrap().body_len as usize;
        s.read_exact(&mut body[..len]).unwrap();
    })
}

/// Allocations per whole call, consumer and provider.
fn whole_call(addr: SocketAddr) -> f64 {
    let consumer = Consumer::builder().build().unwrap();
    let conn = consumer.connect(addr).unwrap();
    // Made once: a caller's key is its own allocation, not the call's.
    let key = key();
    let figure = counted(|| {
        let sum: i64 = conn.call(&key, "add", &(20i64, 22i64)).unwrap();
        assert_eq!(sum, 42);
    });
    consumer.shutdown();
    figure
}

/// Allocations per whole call through a cluster of the one provider at
/// `addr` (failover, weighted random): blocking, or `call_async` awaited on
/// a single-threaded tokio runtime.
fn whole_cluster_call(addr: SocketAddr, asynchronous: bool) -> f64 {
    let cluster = Cluster::builder(key()).build(Consumer::builder().build().unwrap());
    cluster.set_providers([(addr, 100)]);
    cluster
        .wait_for_providers(1, Duration::from_secs(5))
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    counted(|| {
        let sum: i64 = if asynchronous {
            rt.block_on(cluster.call_async("add", &(20i64, 22i64)))
        } else {
            cluster.call("add", &(20i64, 22i64))
        }
        .unwrap();
        assert_eq!(sum, 42);
    })
}

/// A consumer connected to `addr` (its asynchronous calls reading their
/// own answers if `reading`), and a single-threaded tokio runtime with IO
/// to await its calls on.
fn async_caller(
    addr: SocketAddr,
    reading: bool,
) -> (Consumer, Connection, tokio::runtime::Runtime) {
    let builder = Consumer::builder();
    #[cfg(feature = "tokio")]
    let builder = builder.tokio_reads(reading);
    #[cfg(not(feature = "tokio"))]
    assert!(!reading, "tokio_reads needs the `tokio` feature");
    let consumer = builder.build().unwrap();
    let conn = consumer.connect(addr).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    (consumer, conn, rt)
}

/// Allocations per whole asynchronous call: `call_async` awaited on a
/// single-threaded tokio runtime, one call in flight; with `reading`, the
/// task reads its own answer (`tokio_reads`).
fn whole_async_call(addr: SocketAddr, reading: bool) -> f64 {
    let (consumer, conn, rt) = async_caller(addr, reading);
    let key = key();
    let figure = counted(|| {
        let sum: i64 = rt
            .block_on(conn.call_async(&key, "add", &(20i64, 22i64)))
            .unwrap();
        assert_eq!(sum, 42);
    });
    if reading {
        assert!(conn.answers_read_by_callers() > COUNTED as u64 / 2);
    }
    consumer.shutdown();
    figure
}

/// Allocations per call with 64 asynchronous calls in flight from one
/// thread: each frame is encoded while the ones before it are still
/// queued, and each answer has its own slot.
fn async_calls_64_in_flight(addr: SocketAddr) -> f64 {
    const IN_FLIGHT: usize = 64;
    let (consumer, conn, rt) = async_caller(addr, false);
    let key = key();
    let call = |i: i64| conn.call_async::<_, i64>(&key, "add", &(i, 1i64));
    let mut calls = Vec::with_capacity(IN_FLIGHT);
    let per_wave = counted(|| {
        calls.extend((0..IN_FLIGHT as i64).map(call));
        rt.block_on(async {
            for (i, answer) in calls.drain(..).enumerate() {
                assert_eq!(answer.await.unwrap(), i as i64 + 1);
            }
        });
    });
    consumer.shutdown();
    per_wave / IN_FLIGHT as f64
}

/// Allocations per whole asynchronous call awaited by a task of a
/// single-threaded tokio runtime, one call in flight: after the first, its
/// answer wakes the task through the consumer's wake relay
/// (`ConsumerBuilder::wake_relay`).
#[cfg(feature = "tokio")]
fn async_calls_from_a_task(addr: SocketAddr) -> f64 {
    let (consumer, conn, rt) = async_caller(addr, false);
    let figure = rt.block_on(async move {
        tokio::spawn(async move {
            let key = key();
            let call = async || {
                let sum: i64 = conn.call_async(&key, "add", &(20i64, 22i64)).await.unwrap();
                assert_eq!(sum, 42);
            };
            for _ in 0..WARM_UP {
                call().await;
            }
            let before = ALLOCATOR.allocations();
            for _ in 0..COUNTED {
                call().await;
            }
            (ALLOCATOR.allocations() - before) as f64 / COUNTED as f64
        })
        .await
        .unwrap()
    });
    consumer.shutdown();
    figure
}

/// One test, so nothing else in this binary allocates during a window.
#[test]
fn steady_state_allocations_per_call() {
    let request = captured_request("add");
    let mut figures = Vec::new();
    let mut clusters = Vec::new();
    for (name, dispatch) in [
        ("io-thread", Dispatch::IoThread),
        ("worker-pool", Dispatch::WorkerPool),
    ] {
        let p = provider(dispatch);
        let provider_only = provider_side(p.local_addr(), &request);
        let whole = whole_call(p.local_addr());
        let whole_async = whole_async_call(p.local_addr(), false);
        let many = async_calls_64_in_flight(p.local_addr());
        let cluster = whole_cluster_call(p.local_addr(), false);
        let cluster_async = whole_cluster_call(p.local_addr(), true);
        p.shutdown(Duration::from_secs(1));
        println!(
            "allocations per call ({name}): through a cluster, whole call {cluster:.2} \
             (consumer {:.2}), call_async {cluster_async:.2} (consumer {:.2})",
            cluster - provider_only,
            cluster_async - provider_only
        );
        clusters.push((name, cluster - provider_only, cluster_async - provider_only));
        println!(
            "allocations per call ({name}): provider {provider_only:.2}, consumer {:.2} \
             (call_async {:.2}; 64 in flight, whole call {many:.2}), whole call {whole:.2}",
            whole - provider_only,
            whole_async - provider_only
        );
        figures.push((name, provider_only, whole - provider_only));
        figures.push((name, provider_only, whole_async - provider_only));
        figures.push((name, provider_only, many - provider_only));
        #[cfg(feature = "tokio")]
        {
            let p = provider(dispatch);
            let reading = whole_async_call(p.local_addr(), true);
            let relayed = async_calls_from_a_task(p.local_addr());
            p.shutdown(Duration::from_secs(1));
            println!(
                "allocations per call ({name}): call_async reading its own answer, \
                 whole call {reading:.2}; awaited by a task (its wake-up relayed), \
                 whole call {relayed:.2}"
            );
            figures.push((name, provider_only, reading - provider_only));
            figures.push((name, provider_only, relayed - provider_only));
        }
    }
    // Methods that answer later, answering at once (on the loop): the
    // future's task, and nothing for a responder sent before it returns.
    let p = provider(Dispatch::IoThread);
    let asynchronous = provider_side(p.local_addr(), &captured_request("add_async"));
    let deferred = provider_side(p.local_addr(), &captured_request("add_deferred"));
    p.shutdown(Duration::from_secs(1));
    println!(
        "allocations per call (io-thread): provider, an asynchronous method {asynchronous:.2}, \
         a deferred one answering at once {deferred:.2}"
    );
    assert!(
        asynchronous <= PROVIDER_ASYNC_METHOD,
        "an asynchronous method allocates {asynchronous:.2} per call in the provider"
    );
    assert!(
        deferred <= PROVIDER_IO,
        "a deferred method answering at once allocates {deferred:.2} per call in the provider"
    );
    for (name, blocking, asynchronous) in clusters {
        assert!(
            blocking <= CONSUMER,
            "{name}: a blocking cluster call allocates {blocking:.2} in the consumer"
        );
        assert!(
            asynchronous <= CLUSTER_ASYNC,
            "{name}: an asynchronous cluster call allocates {asynchronous:.2} in the consumer"
        );
    }
    for (name, provider, consumer) in figures {
        // Measured (AMD host): see BENCHMARKS.md; each bound leaves a little
        // room above the figure.
        let (provider_bound, consumer_bound) = match name {
            "io-thread" => (PROVIDER_IO, CONSUMER),
            _ => (PROVIDER_POOL, CONSUMER),
        };
        assert!(
            provider <= provider_bound,
            "{name}: the provider allocates {provider:.2} per call"
        );
        assert!(
            consumer <= consumer_bound,
            "{name}: the consumer allocates {consumer:.2} per call"
        );
    }
}

/// Measured 0.00: the provider allocates nothing per call on its loop.
const PROVIDER_IO: f64 = 0.02;
/// Measured 0.07: the offload stage's two queue blocks per 31 answers.
const PROVIDER_POOL: f64 = 0.10;
/// Measured 0.01 for a blocking call (it reads its own answer, on its
/// thread's reused buffer, and files nothing) and for `call_async` with
/// `tokio_reads` (the same, on the polling thread's buffer), else
/// 0.04-0.09, one call or
/// 64 in flight: the
/// reactor's lock-free queues (the connection's mailbox and the loop's
/// inbox) each allocate a block per 31 calls. An asynchronous call's answer
/// slot comes from the consumer's pool and its frame from a 64 KiB block
/// shared by the calling thread's frames; a tokio oneshot cost one more
/// allocation per `call_async` before (1.08). A call awaited by a task
/// whose wake-up goes through the consumer's wake relay: the same 0.05
/// (the relay's queue is a fixed ring of wakers).
const CONSUMER: f64 = 0.12;
/// Measured 1.06: a cluster's asynchronous call adds one allocation to a
/// connection's, its state, boxed because it is polled once as it is made
/// (to send it) and then moved to its caller; its method's name is kept in
/// that state. A blocking cluster call adds none to a connection's (its
/// bound is `CONSUMER`; measured 0.03): it serializes its arguments once
/// into the thread's scratch block, runs its mode on its own stack and
/// makes its "no provider" error only when it has failed (it made one
/// for every call before, two allocations).
const CLUSTER_ASYNC: f64 = 1.12;
/// Measured 1.00 (Intel Xeon model 167): the future's task, which holds
/// the future; its first poll is made at once on the loop, and its answer
/// goes out with the read's, so nothing else allocates. A deferred method
/// answering at once: 0.00.
const PROVIDER_ASYNC_METHOD: f64 = 1.05;
