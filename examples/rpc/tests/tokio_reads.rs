//! Asynchronous calls that read their own answers on a tokio runtime
//! (`ConsumerBuilder::tokio_reads`): lone calls read their answers (and
//! the connection counts them), many tasks and blocking callers at once
//! each get their own answer, input that is not the answer (a heartbeat,
//! half a frame) does not fool the task, a timeout ends the call on time
//! on a runtime without timers, a call whose future is dropped halfway
//! leaves the connection whole, the provider's close ends a call, and a
//! second runtime's calls go through the loop.

mod common;

use bytes::BytesMut;
use common::{
    calc, calc_service, frame, hand_made_provider, one_loop_provider, pinging_provider,
    read_request,
};
use gyre_rpc::consumer::{CallOptions, Connection, Consumer, RpcError};
use gyre_rpc::protocol::{Header, Kind, HEADER_LEN};
use gyre_rpc::provider::{Dispatch, Provider, ServiceError};
use gyre_rpc::{Serialization, Status};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn consumer() -> Consumer {
    Consumer::builder().tokio_reads(true).build().unwrap()
}

/// A single-threaded runtime with IO (and timers only if `timers`).
fn runtime(timers: bool) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_io();
    if timers {
        b.enable_time();
    }
    b.build().unwrap()
}

/// `test.Calc` with `add`, and `slow_add` which takes 150 ms on a worker.
fn calc_provider() -> Provider {
    one_loop_provider()
        .service(calc_service().build())
        .service(
            gyre_rpc::provider::Service::builder(slow())
                .dispatch(Dispatch::WorkerPool)
                .method("slow_add", |(a, b): (i64, i64)| {
                    std::thread::sleep(Duration::from_millis(150));
                    Ok::<_, ServiceError>(a + b)
                })
                .build(),
        )
        .start()
        .unwrap()
}

fn slow() -> gyre_rpc::ServiceKey {
    gyre_rpc::ServiceKey::new("test.Slow")
}

async fn add(conn: &Connection, a: i64, b: i64) -> Result<i64, RpcError> {
    conn.call_async(&calc(), "add", &(a, b)).await
}

/// One call at a time on one task: nearly every answer is read by the
/// task itself (the first may find the loop not yet offering its input),
/// and each is the call's own.
#[test]
fn lone_calls_read_their_own_answers() {
    let provider = calc_provider();
    let consumer = consumer();
    let conn = consumer.connect(provider.local_addr()).unwrap();
    let rt = runtime(true);
    rt.block_on(async {
        for i in 0..500i64 {
            assert_eq!(add(&conn, i, 1).await.unwrap(), i + 1);
        }
    });
    let own = conn.answers_read_by_callers();
    assert!(own >= 450, "only {own} of 500 answers read by their tasks");
    assert_eq!(conn.in_flight(), 0);
    consumer.shutdown();
    provider.shutdown(Duration::from_secs(1));
}

/// The same calls with `tokio_reads` off: the loop reads every answer
/// (what the test above tells apart).
#[test]
fn without_tokio_reads_the_loop_reads_every_answer() {
    let provider = calc_provider();
    let consumer = Consumer::builder().build().unwrap();
    let conn = consumer.connect(provider.local_addr()).unwrap();
    runtime(true).block_on(async {
        for i in 0..100i64 {
            assert_eq!(add(&conn, i, 1).await.unwrap(), i + 1);
        }
    });
    assert_eq!(conn.answers_read_by_callers(), 0);
    consumer.shutdown();
    provider.shutdown(Duration::from_secs(1));
}

/// Eight tasks on a two-thread runtime, each making calls in turn, and
/// two blocking callers on threads of their own, all on one connection:
/// every answer is its caller's, and nothing is left in flight.
#[test]
fn tasks_and_blocking_callers_at_once_each_get_their_own_answers() {
    let provider = calc_provider();
    let consumer = consumer();
    let conn = Arc::new(consumer.connect(provider.local_addr()).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let blocking: Vec<_> = (0..2i64)
        .map(|t| {
            let conn = conn.clone();
            std::thread::spawn(move || {
                for i in 0..500i64 {
                    let sum: i64 = conn.call(&calc(), "add", &(i, 1000 * t)).unwrap();
                    assert_eq!(sum, i + 1000 * t);
                }
            })
        })
        .collect();
    rt.block_on(async {
        let tasks: Vec<_> = (0..8i64)
            .map(|t| {
                let conn = conn.clone();
                tokio::spawn(async move {
                    for i in 0..300i64 {
                        assert_eq!(add(&conn, i, 100 * t).await.unwrap(), i + 100 * t);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    for b in blocking {
        b.join().unwrap();
    }
    assert_eq!(conn.in_flight(), 0);
    consumer.shutdown();
    provider.shutdown(Duration::from_secs(1));
}

/// A provider by hand that sends a heartbeat ping before each answer,
/// then the answer in two halves 30 ms apart: the task reading its own
/// answer hands the ping to the loop (which answers it) and the call is
/// settled right.
#[test]
fn input_that_is_not_the_answer_does_not_fool_the_task() {
    let (addr, provider) = pinging_provider();
    let consumer = consumer();
    let conn = consumer.connect(addr).unwrap();
    runtime(true).block_on(async {
        for want in [7i64, 8, 9] {
            let got: i64 = conn.call_async(&calc(), "next", &()).await.unwrap();
            assert_eq!(got, want);
        }
    });
    assert_eq!(conn.in_flight(), 0);
    assert_eq!(provider.join().unwrap(), 3, "every ping answered");
    consumer.shutdown();
}

/// A provider by hand that answers warm-up calls, then sends half an
/// answer and nothing more: on a runtime without timers the call still
/// times out on time (the input watch's own timer: the call is sent once
/// a warm-up answer was read by its task, so the input is lent to it),
/// and a second call, whose answer comes whole, gets it once the late
/// half has gone to the loop.
#[test]
fn a_timeout_ends_the_call_on_a_runtime_without_timers() {
    let answer = |id: u64, v: i64| {
        let mut body = BytesMut::new();
        Serialization::Binary.serialize(&v, &mut body).unwrap();
        frame(Kind::Response(Status::Ok), id, &body)
    };
    let (addr, provider) = hand_made_provider(move |mut s| {
        let mut head = [0u8; HEADER_LEN];
        let late = loop {
            // The frame whole: a warm-up call names its method.
            s.read_exact(&mut head).unwrap();
            let h = Header::decode(&head).unwrap();
            let mut body = vec![0u8; h.body_len as usize];
            s.read_exact(&mut body).unwrap();
            if body.windows(4).any(|w| w == b"warm") {
                s.write_all(&answer(h.request_id, 1)).unwrap();
                continue;
            }
            break answer(h.request_id, i64::MAX);
        };
        s.write_all(&late[..HEADER_LEN + 1]).unwrap();
        let (second, _) = read_request(&mut s);
        s.write_all(&late[HEADER_LEN + 1..]).unwrap();
        s.write_all(&answer(second, 5)).unwrap();
        // Hold the connection until the consumer goes.
        let _ = s.read(&mut head);
    });
    let consumer = consumer();
    let conn = Arc::new(consumer.connect(addr).unwrap());
    let rt = Arc::new(runtime(false));
    // On a thread of its own, so that a call that never ends fails the
    // test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let (c, r) = (conn.clone(), rt.clone());
    std::thread::spawn(move || {
        while c.answers_read_by_callers() == 0 {
            let got = r.block_on(c.call_async::<_, i64>(&calc(), "warm", &()));
            assert_eq!(got.unwrap(), 1);
        }
        let quick = CallOptions::default().timeout(Duration::from_millis(100));
        let t = Instant::now();
        let got = r.block_on(c.call_async_with::<_, i64>(&calc(), "never", &(), &quick));
        let _ = tx.send((got, t.elapsed()));
    });
    let (r, waited) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the call ended");
    assert!(matches!(r, Err(RpcError::Timeout(_))), "{r:?}");
    assert!(
        (Duration::from_millis(100)..Duration::from_millis(800)).contains(&waited),
        "timed out after {waited:?}"
    );
    assert_eq!(conn.in_flight(), 0);
    let r = rt.block_on(conn.call_async::<_, i64>(&calc(), "five", &()));
    assert_eq!(r.unwrap(), 5);
    consumer.shutdown();
    provider.join().unwrap();
}

/// A call whose future is dropped while it waits for its answer gives
/// the input back and stops counting in flight; its late answer reaches
/// the loop (which drops it) and the next calls get their own.
#[test]
fn a_call_dropped_halfway_leaves_the_connection_whole() {
    let provider = calc_provider();
    let consumer = consumer();
    let conn = consumer.connect(provider.local_addr()).unwrap();
    let rt = runtime(true);
    rt.block_on(async {
        // A call the loop took (it was not offering its input yet) stays
        // in flight until its answer: try until one is read by its task.
        let mut lent = false;
        for _ in 0..20 {
            assert_eq!(add(&conn, 1, 1).await.unwrap(), 2);
            let slow_call = conn.call_async::<_, i64>(&slow(), "slow_add", &(40i64, 2i64));
            let r = tokio::time::timeout(Duration::from_millis(30), slow_call).await;
            assert!(r.is_err(), "the slow call was cut short");
            if conn.in_flight() == 0 {
                lent = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(lent, "no slow call was sent with the input lent");
        for i in 0..50i64 {
            assert_eq!(add(&conn, i, 2).await.unwrap(), i + 2);
        }
        // The slow answer has come and gone by now; calls still work.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(add(&conn, 3, 4).await.unwrap(), 7);
    });
    assert_eq!(conn.in_flight(), 0);
    consumer.shutdown();
    provider.shutdown(Duration::from_secs(1));
}

/// The provider closes the connection while a task waits for its
/// answer: the call ends `Closed`, not at its timeout.
#[test]
fn the_providers_close_ends_a_waiting_call() {
    let (addr, provider) = hand_made_provider(|mut s| {
        // Answer one call so the loop has read, then close on the next.
        let (id, _) = read_request(&mut s);
        let mut body = BytesMut::new();
        Serialization::Binary.serialize(&1i64, &mut body).unwrap();
        s.write_all(&frame(Kind::Response(Status::Ok), id, &body))
            .unwrap();
        read_request(&mut s);
        std::thread::sleep(Duration::from_millis(50));
        drop(s);
    });
    let consumer = consumer();
    let conn = consumer.connect(addr).unwrap();
    let patient = CallOptions::default().timeout(Duration::from_secs(30));
    let rt = runtime(true);
    assert_eq!(
        rt.block_on(conn.call_async::<_, i64>(&calc(), "one", &()))
            .unwrap(),
        1
    );
    let t = Instant::now();
    let r = rt.block_on(conn.call_async_with::<_, i64>(&calc(), "wait", &(), &patient));
    assert!(matches!(r, Err(RpcError::Closed)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    provider.join().unwrap();
    consumer.shutdown();
}

/// Calls awaited on a second runtime go through the loop (the watch
/// serves the first), and get their answers.
#[test]
fn a_second_runtime_goes_through_the_loop() {
    let provider = calc_provider();
    let consumer = consumer();
    let conn = consumer.connect(provider.local_addr()).unwrap();
    let first = runtime(true);
    first.block_on(async {
        for i in 0..50i64 {
            assert_eq!(add(&conn, i, 1).await.unwrap(), i + 1);
        }
    });
    let own = conn.answers_read_by_callers();
    assert!(own > 0);
    // The first runtime stays alive but idle: its driver polls nothing.
    let second = runtime(true);
    second.block_on(async {
        for i in 0..50i64 {
            assert_eq!(add(&conn, i, 2).await.unwrap(), i + 2);
        }
    });
    assert_eq!(conn.answers_read_by_callers(), own);
    drop(first);
    consumer.shutdown();
    provider.shutdown(Duration::from_secs(1));
}

#[test]
fn a_clusters_async_calls_read_their_own_answers_too() {
    // A cluster's call is polled once as it is made (to send it), with no
    // waker to go by; it must still be sent once, read its own answer
    // where it can, and wake its task when it cannot.
    let p = calc_provider();
    let cluster = gyre_rpc::cluster::Cluster::builder(calc()).build(consumer());
    cluster.set_providers([(p.local_addr(), 100)]);
    cluster
        .wait_for_providers(1, Duration::from_secs(5))
        .unwrap();
    let cluster = Arc::new(cluster);
    let rt = runtime(false);
    let c = cluster.clone();
    let (lone, together) = rt.block_on(async move {
        tokio::spawn(async move {
            let mut lone = Vec::new();
            for i in 0..200i64 {
                lone.push(c.call_async::<_, i64>("add", &(i, 1)).await.unwrap());
            }
            let calls: Vec<_> = (0..64i64)
                .map(|i| c.call_async::<_, i64>("add", &(i, i)))
                .collect();
            let mut together = Vec::new();
            for call in calls {
                together.push(call.await.unwrap());
            }
            (lone, together)
        })
        .await
        .unwrap()
    });
    assert_eq!(lone, (1..=200).collect::<Vec<i64>>());
    assert_eq!(together, (0..64).map(|i| 2 * i).collect::<Vec<i64>>());
    p.shutdown(Duration::from_secs(1));
}
