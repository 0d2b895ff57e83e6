//! Answers a deferred or asynchronous method makes before it returns (a
//! future ready at its first poll, a responder sent at once) go out with
//! the read's other answers, in the order the calls came, as a plain
//! method's do; an answer made then for another call (a responder kept
//! from earlier, of this connection or another) still reaches its own
//! caller.

mod common;

use bytes::BytesMut;
use common::{frame, one_loop_provider};
use gyre_rpc::consumer::Consumer;
use gyre_rpc::protocol::{write_routing, Header, Kind, HEADER_LEN};
use gyre_rpc::provider::{Dispatch, Responder, Service, ServiceError};
use gyre_rpc::{Serialization, ServiceKey, Status};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn key() -> ServiceKey {
    ServiceKey::new("test.AtOnce")
}

/// A request frame for `method(arg)` of [`key`], call `id`.
fn request(id: u64, method: &str, arg: u64) -> Vec<u8> {
    let mut body = BytesMut::new();
    write_routing(&mut body, &key(), method, &[], None).unwrap();
    Serialization::Binary.serialize(&arg, &mut body).unwrap();
    frame(Kind::Request { two_way: true }, id, &body)
}

/// The next answer's call id and value.
fn answer(s: &mut TcpStream) -> (u64, u64) {
    let mut head = [0u8; HEADER_LEN];
    s.read_exact(&mut head).unwrap();
    let h = Header::decode(&head).unwrap();
    let mut body = vec![0u8; h.body_len as usize];
    s.read_exact(&mut body).unwrap();
    assert_eq!(h.kind, Kind::Response(Status::Ok), "call {}", h.request_id);
    (
        h.request_id,
        Serialization::Binary.deserialize(&body).unwrap(),
    )
}

#[test]
fn answers_made_at_once_keep_the_order_of_the_calls() {
    let provider = one_loop_provider()
        .service(
            Service::builder(key())
                .dispatch(Dispatch::IoThread)
                .method("plain", |n: u64| Ok::<_, ServiceError>(n))
                .async_method("ready", |n: u64| async move { Ok::<_, ServiceError>(n) })
                .deferred_method("sent", |n: u64, answer: Responder<u64>| answer.send(Ok(n)))
                .build(),
        )
        .start()
        .unwrap();
    let mut s = TcpStream::connect(provider.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Every call in one write, so the provider reads them together: an
    // answer sent through the connection's handle would come after the
    // plain ones of the same read.
    let methods = ["ready", "plain", "sent", "plain", "ready", "sent"];
    let mut calls = Vec::new();
    for (id, method) in methods.iter().enumerate() {
        calls.extend(request(id as u64 + 1, method, 100 + id as u64));
    }
    s.write_all(&calls).unwrap();
    let got: Vec<(u64, u64)> = (0..methods.len()).map(|_| answer(&mut s)).collect();
    let expected: Vec<(u64, u64)> = (0..methods.len() as u64)
        .map(|i| (i + 1, 100 + i))
        .collect();
    assert_eq!(got, expected);
    provider.shutdown(Duration::from_secs(1));
}

#[test]
fn a_kept_responder_answered_during_another_call_reaches_its_own_caller() {
    // `pair(n)`: the first call waits; the second answers the first
    // (with its own argument, so each caller can tell) and then itself.
    let waiting: Arc<Mutex<Option<Responder<u64>>>> = Arc::default();
    let provider = one_loop_provider()
        .service(
            Service::builder(key())
                .dispatch(Dispatch::IoThread)
                .deferred_method("pair", move |n: u64, answer: Responder<u64>| {
                    let first = waiting.lock().unwrap().take();
                    match first {
                        None => *waiting.lock().unwrap() = Some(answer),
                        Some(first) => {
                            first.send(Ok(n));
                            answer.send(Ok(n + 1));
                        }
                    }
                })
                .build(),
        )
        .start()
        .unwrap();
    let consumer = Consumer::builder().build().unwrap();
    // Two connections on the provider's one loop: the first caller's
    // answer is made while the second's call is being started.
    let a = Arc::new(consumer.connect(provider.local_addr()).unwrap());
    let b = consumer.connect(provider.local_addr()).unwrap();
    let first = {
        let a = a.clone();
        std::thread::spawn(move || a.call::<_, u64>(&key(), "pair", &1u64))
    };
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(b.call::<_, u64>(&key(), "pair", &7u64).unwrap(), 8);
    assert_eq!(
        first.join().unwrap().unwrap(),
        7,
        "the first caller's answer"
    );
    // And on one connection: two calls in flight together.
    let second = {
        let a = a.clone();
        std::thread::spawn(move || a.call::<_, u64>(&key(), "pair", &2u64))
    };
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(a.call::<_, u64>(&key(), "pair", &20u64).unwrap(), 21);
    assert_eq!(second.join().unwrap().unwrap(), 20);
    provider.shutdown(Duration::from_secs(1));
}
