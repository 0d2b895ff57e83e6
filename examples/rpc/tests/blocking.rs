//! Blocking calls sent from the caller's thread with nothing else in
//! flight, which read their own answers (or, with `direct_reads` off,
//! sleep beside their connection's socket): input that is not the answer
//! (a heartbeat, half a frame) does not fool the caller, timeouts and
//! closes (the provider's or our own) still end the wait on time, a call
//! that timed out with half its answer read leaves the connection whole,
//! a caller alternating between two connections gets each answer right,
//! and a blocking call on the consumer's own loop is refused, not hung.

mod common;

use bytes::BytesMut;
use common::{
    calc, calc_service, frame, hand_made_provider, one_loop_provider, pinging_provider,
    read_request,
};
use gyre_rpc::consumer::{CallOptions, Connection, Consumer, RpcError};
use gyre_rpc::filter::{CallInfo, Filter, Refusal};
use gyre_rpc::protocol::{Kind, HEADER_LEN};
use gyre_rpc::provider::{Provider, ServiceError};
use gyre_rpc::{Serialization, Status};
use std::io::{Read, Write};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A provider of `calc` (`add`, `double`) on one loop, calls on the loop.
fn calc_provider() -> Provider {
    one_loop_provider()
        .service(
            calc_service()
                .method("double", |a: i64| Ok::<_, ServiceError>(2 * a))
                .build(),
        )
        .start()
        .unwrap()
}

/// Both ways a lone blocking call can wait: reading its own answer (the
/// default), and asleep beside the socket.
fn consumers() -> [Consumer; 2] {
    [
        Consumer::builder().build().unwrap(),
        Consumer::builder().direct_reads(false).build().unwrap(),
    ]
}

/// A provider by hand, which before each answer sends a heartbeat ping,
/// then the answer in two halves 30 ms apart.
#[test]
fn input_that_is_not_the_answer_wakes_the_caller_without_fooling_it() {
    for consumer in consumers() {
        heartbeat_then_halves(consumer);
    }
}

fn heartbeat_then_halves(consumer: Consumer) {
    let (addr, provider) = pinging_provider();
    let conn = consumer.connect(addr).unwrap();
    for want in [7i64, 8, 9] {
        let t = Instant::now();
        let got: i64 = conn.call(&calc(), "next", &()).unwrap();
        assert_eq!(got, want);
        assert!(
            t.elapsed() >= Duration::from_millis(60),
            "{:?}",
            t.elapsed()
        );
    }
    assert_eq!(conn.in_flight(), 0);
    assert_eq!(provider.join().unwrap(), 3, "every ping answered");
    consumer.shutdown();
}

/// A provider that reads calls and never answers, then goes: the first
/// call times out on time (the loop's timeout rings the caller, who
/// sleeps beside a socket that stays quiet), the second ends `Closed` when
/// the provider closes the connection.
#[test]
fn timeouts_and_closes_end_the_wait_on_time() {
    for consumer in consumers() {
        timeout_then_close(consumer);
    }
}

fn timeout_then_close(consumer: Consumer) {
    let (addr, provider) = hand_made_provider(|mut s| {
        read_request(&mut s);
        read_request(&mut s);
        std::thread::sleep(Duration::from_millis(100));
        drop(s);
    });
    let conn = consumer.connect(addr).unwrap();
    let quick = CallOptions::default().timeout(Duration::from_millis(100));
    let t = Instant::now();
    let r = conn.call_with::<_, i64>(&calc(), "never", &(), &quick);
    let waited = t.elapsed();
    assert!(matches!(r, Err(RpcError::Timeout(_))), "{r:?}");
    assert!(
        waited < Duration::from_millis(600),
        "timed out after {waited:?}"
    );
    let patient = CallOptions::default().timeout(Duration::from_secs(30));
    let t = Instant::now();
    let r = conn.call_with::<_, i64>(&calc(), "never", &(), &patient);
    assert!(matches!(r, Err(RpcError::Closed)), "{r:?}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "closed after {:?}",
        t.elapsed()
    );
    provider.join().unwrap();
    consumer.shutdown();
}

/// A provider by hand that sends half of the first answer, then the rest
/// after the call's deadline, then answers the second call whole: the
/// first call times out on time, the late half goes to the loop (which
/// drops the answer: nothing waits under its id), and the second call
/// gets its own answer.
#[test]
fn a_call_timed_out_with_half_its_answer_read_leaves_the_connection_whole() {
    for consumer in consumers() {
        let (addr, provider) = hand_made_provider(|mut s| {
            let answer = |id: u64, v: i64| {
                let mut body = BytesMut::new();
                Serialization::Binary.serialize(&v, &mut body).unwrap();
                frame(Kind::Response(Status::Ok), id, &body)
            };
            let (first, _) = read_request(&mut s);
            // The header and part of the body (a large number: many bytes).
            let late = answer(first, i64::MAX);
            assert!(late.len() > HEADER_LEN + 1);
            s.write_all(&late[..HEADER_LEN + 1]).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            s.write_all(&late[HEADER_LEN + 1..]).unwrap();
            let (second, _) = read_request(&mut s);
            s.write_all(&answer(second, 2)).unwrap();
            // Until the consumer goes.
            let _ = s.read(&mut [0u8; 1]);
        });
        let conn = consumer.connect(addr).unwrap();
        let quick = CallOptions::default().timeout(Duration::from_millis(100));
        let t = Instant::now();
        let r = conn.call_with::<_, i64>(&calc(), "late", &(), &quick);
        assert!(
            matches!(r, Err(RpcError::Timeout(_))),
            "{r:?} after {:?}",
            t.elapsed()
        );
        assert!(
            t.elapsed() < Duration::from_millis(600),
            "{:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(400));
        let r = conn.call::<_, i64>(&calc(), "next", &());
        assert_eq!(r.unwrap(), 2, "the second call's own answer");
        assert_eq!(conn.in_flight(), 0);
        consumer.shutdown();
        provider.join().unwrap();
    }
}

/// A provider that never answers, and our own side closing the
/// connection while a call waits for its answer: the call ends `Closed`
/// at once, not at its deadline.
#[test]
fn closing_the_connection_ends_a_call_waiting_for_its_answer() {
    for consumer in consumers() {
        let (addr, provider) = hand_made_provider(|mut s| {
            read_request(&mut s);
            let _ = s.read(&mut [0u8; 1]);
        });
        let conn = Arc::new(consumer.connect(addr).unwrap());
        let closer = {
            let conn = conn.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                conn.close();
            })
        };
        let patient = CallOptions::default().timeout(Duration::from_secs(30));
        let t = Instant::now();
        let r = conn.call_with::<_, i64>(&calc(), "never", &(), &patient);
        assert!(matches!(r, Err(RpcError::Closed)), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        closer.join().unwrap();
        consumer.shutdown();
        provider.join().unwrap();
    }
}

/// A consumer whose heartbeat period is short, busy with blocking calls
/// that read their own answers for many periods: its loop reads few of
/// those answers, yet the connection is not taken for silent and closed.
/// (The idle check counts the bytes its callers read; the reactor's
/// `input_lend.rs` checks that count on its own, with no read by the
/// loop at all.)
#[test]
fn a_connection_busy_with_calls_reading_their_own_answers_is_not_taken_for_silent() {
    let provider = calc_provider();
    let consumer = Consumer::builder()
        .heartbeat(Duration::from_millis(50))
        .build()
        .unwrap();
    let conn = consumer.connect(provider.local_addr()).unwrap();
    let until = Instant::now() + Duration::from_millis(800);
    let mut calls = 0i64;
    while Instant::now() < until {
        let sum: i64 = conn.call(&calc(), "add", &(calls, 1i64)).unwrap();
        assert_eq!(sum, calls + 1);
        calls += 1;
    }
    assert!(conn.is_open());
    consumer.shutdown();
    provider.shutdown(Duration::from_secs(1));
}

/// One thread alternating between two providers, and three more calling
/// the first at the same time: every answer is the caller's own.
#[test]
fn callers_on_two_connections_each_get_their_own_answers() {
    let (p1, p2) = (calc_provider(), calc_provider());
    let consumer = Consumer::builder().build().unwrap();
    let c1 = consumer.connect(p1.local_addr()).unwrap();
    let c2 = consumer.connect(p2.local_addr()).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..2_000i64 {
                let conn = if i % 2 == 0 { &c1 } else { &c2 };
                let sum: i64 = conn.call(&calc(), "add", &(i, 1000)).unwrap();
                assert_eq!(sum, i + 1000);
            }
        });
        for t in 0..3i64 {
            let c1 = &c1;
            s.spawn(move || {
                for i in 0..2_000i64 {
                    let sum: i64 = c1.call(&calc(), "add", &(i, t)).unwrap();
                    assert_eq!(sum, i + t);
                }
            });
        }
    });
    assert_eq!((c1.in_flight(), c2.in_flight()), (0, 0));
    consumer.shutdown();
    p1.shutdown(Duration::from_secs(1));
    p2.shutdown(Duration::from_secs(1));
}

/// A consumer filter (it runs on the consumer's loop) that makes a
/// blocking call through its own consumer before each call it sees, and
/// reports how that went.
#[derive(Debug)]
struct CallsFromItsLoop {
    conn: Arc<OnceLock<Connection>>,
    report: Mutex<mpsc::Sender<Result<i64, RpcError>>>,
}

impl Filter for CallsFromItsLoop {
    fn before(&self, call: &CallInfo<'_>) -> Result<(), Refusal> {
        if call.method == "add" {
            if let Some(conn) = self.conn.get() {
                let nested = conn.call::<_, i64>(&calc(), "double", &21i64);
                let _ = self.report.lock().unwrap().send(nested);
            }
        }
        Ok(())
    }
}

#[test]
fn a_blocking_call_on_its_own_consumers_loop_is_refused_not_hung() {
    let provider = calc_provider();
    let (tx, rx) = mpsc::channel();
    let slot = Arc::new(OnceLock::new());
    let consumer = Consumer::builder()
        .io_threads(1)
        .filter(CallsFromItsLoop {
            conn: slot.clone(),
            report: Mutex::new(tx),
        })
        .build()
        .unwrap();
    slot.set(consumer.connect(provider.local_addr()).unwrap())
        .unwrap();
    let caller = std::thread::spawn({
        let slot = slot.clone();
        move || {
            slot.get()
                .unwrap()
                .call::<_, i64>(&calc(), "add", &(2i64, 3i64))
        }
    });
    let nested = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the filter's call came back (a hung loop never reports)");
    assert!(
        matches!(nested, Err(RpcError::BlockingOnLoop)),
        "{nested:?}"
    );
    assert_eq!(caller.join().unwrap().unwrap(), 5, "the outer call went on");
    // Off the loop the same call is fine.
    let doubled: i64 = slot.get().unwrap().call(&calc(), "double", &21i64).unwrap();
    assert_eq!(doubled, 42);
    consumer.shutdown();
    provider.shutdown(Duration::from_secs(1));
}

/// A provider of `front.Quad` whose `quadruple` doubles twice through a
/// blocking call to `upstream`'s `calc`, its calls dispatched as `dispatch`
/// says.
fn quad_provider(upstream: Arc<Connection>, dispatch: gyre_rpc::provider::Dispatch) -> Provider {
    let service = gyre_rpc::provider::Service::builder(gyre_rpc::ServiceKey::new("front.Quad"))
        .dispatch(dispatch)
        .method("quadruple", move |a: i64| {
            let twice: i64 = upstream
                .call(&calc(), "double", &a)
                .and_then(|d: i64| upstream.call(&calc(), "double", &d))
                .map_err(|e| ServiceError::new(e.to_string()))?;
            Ok::<_, ServiceError>(twice)
        })
        .build();
    one_loop_provider().service(service).start().unwrap()
}

#[test]
fn a_blocking_call_from_a_providers_io_thread_is_refused_and_runs_on_its_workers() {
    use gyre_rpc::provider::Dispatch;
    let upstream = calc_provider();
    let consumer = Consumer::builder().build().unwrap();
    let to_calc = Arc::new(consumer.connect(upstream.local_addr()).unwrap());
    let caller = Consumer::builder().build().unwrap();
    let quad = gyre_rpc::ServiceKey::new("front.Quad");

    // On the provider's loop the nested call would hold every other
    // connection of that loop until its answer came: refused.
    let on_loop = quad_provider(to_calc.clone(), Dispatch::IoThread);
    let conn = caller.connect(on_loop.local_addr()).unwrap();
    match conn.call::<_, i64>(&quad, "quadruple", &5i64) {
        Err(RpcError::Failed { message, .. }) => {
            assert!(message.contains("event loop"), "{message}")
        }
        other => panic!("expected the nested call refused, got {other:?}"),
    }
    on_loop.shutdown(Duration::from_secs(1));

    // On the worker pool it is an ordinary blocking call.
    let on_workers = quad_provider(to_calc, Dispatch::WorkerPool);
    let conn = caller.connect(on_workers.local_addr()).unwrap();
    assert_eq!(conn.call::<_, i64>(&quad, "quadruple", &5i64).unwrap(), 20);
    on_workers.shutdown(Duration::from_secs(1));
    caller.shutdown();
    consumer.shutdown();
    upstream.shutdown(Duration::from_secs(1));
}
