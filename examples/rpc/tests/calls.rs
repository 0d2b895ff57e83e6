//! Calls over real loopback connections: every status a call can end in,
//! many threads sharing one connection, timeouts, heartbeats, and bad
//! frames that close only their own connection.

mod common;

use common::{calc, calc_service, one_loop_provider};
use gyre_rpc::consumer::{CallOptions, Connection, Consumer, RpcError};
use gyre_rpc::protocol::{Header, Kind, HEADER_LEN};
use gyre_rpc::provider::{Dispatch, Provider, ProviderBuilder, Service, ServiceError};
use gyre_rpc::{Serialization, ServiceKey, Status};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Echo {
    thread: u32,
    seq: u64,
    text: String,
}

fn slow() -> ServiceKey {
    ServiceKey::new("test.Slow")
}

fn provider(configure: impl FnOnce(ProviderBuilder) -> ProviderBuilder) -> Provider {
    let builder = one_loop_provider()
        .service(
            calc_service()
                .method("div", |(a, b): (i64, i64)| {
                    if b == 0 {
                        Err(ServiceError::new("division by zero"))
                    } else {
                        Ok(a / b)
                    }
                })
                .method("echo", |e: Echo| Ok::<_, ServiceError>(e))
                .method("big", |n: usize| Ok::<_, ServiceError>(vec![7u8; n]))
                .build(),
        )
        .service(
            Service::builder(slow())
                .dispatch(Dispatch::WorkerPool)
                .method("sleep", |ms: u64| {
                    std::thread::sleep(Duration::from_millis(ms));
                    Ok::<_, ServiceError>(ms)
                })
                .build(),
        );
    configure(builder).start().expect("provider starts")
}

fn connect(consumer: &Consumer, p: &Provider) -> Connection {
    consumer.connect(p.local_addr()).expect("connects")
}

fn status_of<T: std::fmt::Debug>(r: Result<T, RpcError>) -> Status {
    r.expect_err("the call fails").status()
}

#[test]
fn a_connection_outlives_the_consumer_that_opened_it() {
    let p = provider(|b| b);
    // The consumer is a temporary: its loops must live on in the connection.
    let c = Consumer::builder()
        .build()
        .unwrap()
        .connect(p.local_addr())
        .unwrap();
    let sum: i64 = c.call(&calc(), "add", &(2i64, 3i64)).unwrap();
    assert_eq!(sum, 5);
    assert!(c.is_open());
}

#[test]
fn serialization_errors_name_the_call_and_the_direction() {
    let p = provider(|b| b);
    let consumer = Consumer::builder().build().unwrap();
    let c = connect(&consumer, &p);
    // The provider answers an i64; the caller asks for a string.
    let e = c
        .call::<_, String>(&calc(), "add", &(1i64, 2i64))
        .unwrap_err();
    assert_eq!(e.status(), Status::BadResponse);
    let said = e.to_string();
    assert!(
        said.starts_with(
            "the result of `add` of test.Calc:1.0 is not a alloc::string::String: Binary"
        ),
        "{said}"
    );
    // JSON cannot have a map with non-string keys: the arguments fail.
    let json = CallOptions::default().serialization(Serialization::Json);
    let bad: std::collections::HashMap<(i32, i32), i32> = [((1, 2), 3)].into();
    let e = c
        .call_with::<_, i64>(&calc(), "add", &bad, &json)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot serialize the arguments of `add` of test.Calc:1.0: Json"),
        "{e}"
    );
    assert!(c.is_open(), "a refused call leaves the connection up");
}

#[test]
fn every_status_a_call_can_end_in() {
    let p = provider(|b| b.max_body(1 << 16).pool_threads(1).pool_capacity(2));
    let consumer = Consumer::builder().build().unwrap();
    let c = connect(&consumer, &p);
    for ser in [Serialization::Binary, Serialization::Json] {
        let o = CallOptions::default().serialization(ser);
        // Ok.
        let sum: i64 = c.call_with(&calc(), "add", &(2i64, 40i64), &o).unwrap();
        assert_eq!(sum, 42);
        // ServiceError, with the method's message.
        match c.call_with::<_, i64>(&calc(), "div", &(1i64, 0i64), &o) {
            Err(RpcError::Failed { status, message }) => {
                assert_eq!(status, Status::ServiceError);
                assert_eq!(message, "division by zero");
            }
            other => panic!("{other:?}"),
        }
        // ServiceNotFound: unknown method, unknown version, unknown service.
        assert_eq!(
            status_of(c.call_with::<_, i64>(&calc(), "mul", &(1i64, 2i64), &o)),
            Status::ServiceNotFound
        );
        let v2 = ServiceKey::new("test.Calc").version("2.0");
        assert_eq!(
            status_of(c.call_with::<_, i64>(&v2, "add", &(1i64, 2i64), &o)),
            Status::ServiceNotFound
        );
        assert_eq!(
            status_of(c.call_with::<_, i64>(&ServiceKey::new("nope"), "add", &(1i64, 2i64), &o)),
            Status::ServiceNotFound
        );
        // BadRequest: arguments of the wrong shape.
        assert_eq!(
            status_of(c.call_with::<_, i64>(&calc(), "add", &"two", &o)),
            Status::BadRequest
        );
        // BadResponse: a result the caller cannot read as what it asked for.
        assert_eq!(
            status_of(c.call_with::<_, String>(&calc(), "add", &(1i64, 2i64), &o)),
            Status::BadResponse
        );
        // ServerError: a result over the provider's body limit.
        assert_eq!(
            status_of(c.call_with::<_, Vec<u8>>(&calc(), "big", &(1usize << 17), &o)),
            Status::ServerError
        );
        // ClientError: a request over the consumer's body limit is refused
        // before it is sent.
        let huge = vec![0u8; 9 << 20];
        assert_eq!(
            status_of(c.call_with::<_, i64>(&calc(), "add", &huge, &o)),
            Status::ClientError
        );
        // ClientTimeout.
        let quick = o.clone().timeout(Duration::from_millis(50));
        assert_eq!(
            status_of(c.call_with::<_, u64>(&slow(), "sleep", &300u64, &quick)),
            Status::ClientTimeout
        );
    }
    // ServerOverloaded: one worker, a ring of two, and six slow calls at once.
    let slow_calls: Vec<_> = (0..6)
        .map(|_| c.call_async::<_, u64>(&slow(), "sleep", &200u64))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let mut out = Vec::new();
        for f in slow_calls {
            out.push(f.await);
        }
        out
    });
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(e) if e.status() == Status::ServerOverloaded)),
        "{results:?}"
    );
    // The connection is still good after all of it.
    let sum: i64 = c.call(&calc(), "add", &(1i64, 1i64)).unwrap();
    assert_eq!(sum, 2);
    p.shutdown(Duration::from_secs(2));
    // Closed: the connection goes away under a waiting call. A provider of
    // its own, whose two-slot ring no earlier call can still be holding (a
    // worker frees its slot just after answering, so "answered" does not
    // yet mean "room"); and the close waits until the provider has the
    // call, rather than for a guessed time.
    let p = provider(|b| b.pool_threads(1).pool_capacity(2));
    let c = connect(&consumer, &p);
    let waiting = c.call_async::<_, u64>(&slow(), "sleep", &500u64);
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.in_flight() == 0 {
        assert!(
            Instant::now() < deadline,
            "the call never reached the provider"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    c.close();
    assert_eq!(status_of(rt.block_on(waiting)), Status::ClientError);
    assert!(matches!(
        c.call::<_, i64>(&calc(), "add", &(1i64, 1i64)),
        Err(RpcError::Closed)
    ));
    p.shutdown(Duration::from_secs(2));
}

#[test]
fn echo_returns_its_argument_for_a_served_service_in_either_serialization() {
    let p = provider(|b| b);
    let consumer = Consumer::builder().build().unwrap();
    let conn = connect(&consumer, &p);
    let value = Echo {
        thread: 7,
        seq: u64::MAX,
        text: "héllo".to_owned(),
    };
    assert_eq!(conn.echo(&calc(), &value).unwrap(), value);
    let json = Consumer::builder()
        .call_defaults(CallOptions::default().serialization(Serialization::Json))
        .build()
        .unwrap();
    assert_eq!(connect(&json, &p).echo(&calc(), &value).unwrap(), value);
    // Not served: the service, or this version of it.
    assert_eq!(
        conn.echo(&slow(), &1u8).unwrap(),
        1,
        "every exported service"
    );
    let absent = ServiceKey::new("test.Absent");
    assert_eq!(status_of(conn.echo(&absent, &1u8)), Status::ServiceNotFound);
    let other_version = ServiceKey::new("test.Calc").version("2.0");
    assert_eq!(
        status_of(conn.echo(&other_version, &1u8)),
        Status::ServiceNotFound
    );
    // The connection is whole after both.
    assert_eq!(
        conn.call::<_, i64>(&calc(), "add", &(2i64, 3i64)).unwrap(),
        5
    );
}

#[test]
fn eight_threads_share_one_connection_and_each_gets_its_own_answers() {
    let p = provider(|b| b);
    let consumer = Consumer::builder().build().unwrap();
    let c = connect(&consumer, &p);
    let start = Barrier::new(8);
    std::thread::scope(|s| {
        for thread in 0..8u32 {
            let (c, start) = (&c, &start);
            s.spawn(move || {
                start.wait();
                for seq in 0..2000u64 {
                    let e = Echo {
                        thread,
                        seq,
                        text: format!("{thread}-{seq}"),
                    };
                    let back: Echo = c.call(&calc(), "echo", &e).unwrap();
                    assert_eq!(back, e);
                }
            });
        }
    });
    // And async: 500 calls in flight at once from one task.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let futures: Vec<_> = (0..500i64)
        .map(|i| c.call_async::<_, i64>(&calc(), "add", &(i, i)))
        .collect();
    let sums = rt.block_on(async {
        let mut out = Vec::new();
        for f in futures {
            out.push(f.await.unwrap());
        }
        out
    });
    assert_eq!(sums, (0..500).map(|i| 2 * i).collect::<Vec<_>>());
    assert_eq!(c.in_flight(), 0);
    p.shutdown(Duration::from_secs(2));
}

#[test]
fn a_timed_out_call_frees_its_slot_and_its_late_answer_is_dropped() {
    let p = provider(|b| b);
    let consumer = Consumer::builder().build().unwrap();
    let c = connect(&consumer, &p);
    let o = CallOptions::default().timeout(Duration::from_millis(100));
    let t = Instant::now();
    let r = c.call_with::<_, u64>(&slow(), "sleep", &400u64, &o);
    let waited = t.elapsed();
    assert!(
        matches!(r, Err(RpcError::Timeout(d)) if d == Duration::from_millis(100)),
        "{r:?}"
    );
    assert!(
        waited >= Duration::from_millis(100) && waited < Duration::from_millis(300),
        "{waited:?}"
    );
    assert_eq!(c.in_flight(), 0, "the slot is freed at the timeout");
    // The late answer arrives meanwhile and is dropped; the next calls are
    // answered with their own results.
    std::thread::sleep(Duration::from_millis(400));
    for i in 0..10i64 {
        let sum: i64 = c.call(&calc(), "add", &(i, 1i64)).unwrap();
        assert_eq!(sum, i + 1);
    }
    assert_eq!(c.in_flight(), 0);
    p.shutdown(Duration::from_secs(2));
}

fn frame_header(kind: Kind, id: u64, body_len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    Header {
        kind,
        serialization: Serialization::Binary,
        request_id: id,
        body_len,
    }
    .encode(&mut h);
    h
}

fn closed_by_peer(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn bad_frames_close_only_their_connection() {
    let p = provider(|b| b.max_body(1024));
    let consumer = Consumer::builder().build().unwrap();
    let good = connect(&consumer, &p);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad magic", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        (
            "oversized body, refused from its header",
            frame_header(Kind::Request { two_way: true }, 1, 1 << 30).to_vec(),
        ),
        ("unknown serialization", {
            let mut h = frame_header(Kind::Request { two_way: true }, 1, 0);
            h[2] = (h[2] & 0xe0) | 0x1f;
            h.to_vec()
        }),
        (
            "a response sent to a provider",
            frame_header(Kind::Response(Status::Ok), 1, 0).to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        let mut s = TcpStream::connect(p.local_addr()).unwrap();
        s.write_all(&bytes).unwrap();
        assert!(closed_by_peer(&mut s), "{what}: closed");
        let sum: i64 = good.call(&calc(), "add", &(20i64, 22i64)).unwrap();
        assert_eq!(sum, 42, "{what}: the other connection is unharmed");
    }
    // A garbled routing part is a bad request, answered; the connection
    // stays.
    let mut s = TcpStream::connect(p.local_addr()).unwrap();
    let mut frame = frame_header(Kind::Request { two_way: true }, 9, 3).to_vec();
    frame.extend_from_slice(&[200, b'x', b'y']);
    s.write_all(&frame).unwrap();
    let mut head = [0u8; HEADER_LEN];
    s.read_exact(&mut head).unwrap();
    let h = Header::decode(&head).unwrap();
    assert_eq!(
        (h.kind, h.request_id),
        (Kind::Response(Status::BadRequest), 9)
    );
    p.shutdown(Duration::from_secs(2));
}

#[test]
fn heartbeats_keep_a_quiet_connection_and_silence_closes_one() {
    let period = Duration::from_millis(100);
    let p = provider(|b| b.heartbeat(period));
    let consumer = Consumer::builder().heartbeat(period).build().unwrap();
    let c = connect(&consumer, &p);
    // Five periods without a call: the consumer's pings keep it open.
    std::thread::sleep(period * 5);
    assert!(c.is_open());
    let sum: i64 = c.call(&calc(), "add", &(1i64, 2i64)).unwrap();
    assert_eq!(sum, 3);
    // A peer that sends nothing at all is closed after three periods,
    // counted from its accept, which may come before `connect` returns
    // here: the clock starts before the connect.
    let t = Instant::now();
    let mut silent = TcpStream::connect(p.local_addr()).unwrap();
    assert!(closed_by_peer(&mut silent));
    let after = t.elapsed();
    assert!(after >= period * 3 && after < period * 10, "{after:?}");
    // A ping gets its pong.
    let mut s = TcpStream::connect(p.local_addr()).unwrap();
    s.write_all(&frame_header(Kind::Heartbeat { request: true }, 77, 0))
        .unwrap();
    let mut head = [0u8; HEADER_LEN];
    s.read_exact(&mut head).unwrap();
    let h = Header::decode(&head).unwrap();
    assert_eq!(
        (h.kind, h.request_id),
        (Kind::Heartbeat { request: false }, 77)
    );
    p.shutdown(Duration::from_secs(2));
}

#[test]
fn graceful_shutdown_finishes_the_calls_in_flight() {
    let p = provider(|b| b);
    let consumer = Consumer::builder().build().unwrap();
    let c = connect(&consumer, &p);
    let o = CallOptions::default().timeout(Duration::from_secs(5));
    let calls: Vec<_> = (0..4)
        .map(|_| c.call_async_with::<_, u64>(&slow(), "sleep", &200u64, &o))
        .collect();
    // Let them reach the workers, then shut down under them.
    while p.in_flight() < 4 {
        std::thread::sleep(Duration::from_millis(5));
    }
    p.shutdown(Duration::from_secs(5));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for call in calls {
        assert_eq!(rt.block_on(call).unwrap(), 200);
    }
}

/// Calls alone in flight go out from their callers' threads (the default)
/// or through the connection's loop: either way, four threads calling
/// while the provider goes away each get an answer or `Closed`, never a
/// hang, and the connection counts every call out.
#[test]
fn callers_sending_their_own_frames_are_all_answered_when_the_provider_goes() {
    for direct in [true, false] {
        let p = provider(|b| b);
        let consumer = Consumer::builder().direct_writes(direct).build().unwrap();
        let c = connect(&consumer, &p);
        let answered = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for thread in 0..4i64 {
                let (c, answered) = (&c, &answered);
                s.spawn(move || {
                    for i in 0.. {
                        match c.call::<_, i64>(&calc(), "add", &(thread, i)) {
                            Ok(sum) => assert_eq!(sum, thread + i),
                            Err(RpcError::Closed) => break,
                            Err(e) => panic!("direct={direct}: {e}"),
                        }
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(200));
            p.shutdown(Duration::ZERO);
        });
        assert!(
            answered.into_inner() > 100,
            "direct={direct}: calls went through"
        );
        assert_eq!(c.in_flight(), 0, "direct={direct}: every call counted out");
        let after = c.call::<_, i64>(&calc(), "add", &(1i64, 1i64));
        assert!(matches!(after, Err(RpcError::Closed)), "{after:?}");
        consumer.shutdown();
    }
}
