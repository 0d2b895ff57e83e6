//! Helpers shared by the integration tests: the registry tests' polling
//! and answer tallies, the `test.Calc` service on one loop, and providers
//! written by hand (frames, requests read off a socket).

#![allow(dead_code)]

use gyre_rpc::cluster::Cluster;
use gyre_rpc::protocol::{Header, Kind, HEADER_LEN};
use gyre_rpc::provider::{
    Dispatch, Provider, ProviderBuilder, Service, ServiceBuilder, ServiceError,
};
use gyre_rpc::{Serialization, ServiceKey};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Polls `done` every 10 ms; fails the test with `what` after `within`.
/// Returns how long it took.
pub fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    t.elapsed()
}

/// The distinct answers of `calls` calls of `method` with `arg`: which
/// providers answered.
pub fn answering<A, R>(cluster: &Cluster, method: &str, arg: &A, calls: usize) -> BTreeSet<R>
where
    A: Serialize + ?Sized,
    R: DeserializeOwned + Default + Ord,
{
    (0..calls)
        .map(|_| cluster.call::<_, R>(method, arg).unwrap())
        .collect()
}

/// The calculator service's key (version 1.0).
pub fn calc() -> ServiceKey {
    ServiceKey::new("test.Calc").version("1.0")
}

/// `test.Calc`, its calls run on the loop, with `add`; a test adds its
/// own methods and builds it.
pub fn calc_service() -> ServiceBuilder {
    Service::builder(calc())
        .dispatch(Dispatch::IoThread)
        .method("add", |(a, b): (i64, i64)| Ok::<_, ServiceError>(a + b))
}

/// A provider on one event loop, listening on a free loopback port.
pub fn one_loop_provider() -> ProviderBuilder {
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .io_threads(1)
}

/// A frame of `kind` for the call `id` with `body`.
pub fn frame(kind: Kind, id: u64, body: &[u8]) -> Vec<u8> {
    let mut h = [0u8; HEADER_LEN];
    Header {
        kind,
        serialization: Serialization::Binary,
        request_id: id,
        body_len: body.len() as u32,
    }
    .encode(&mut h);
    let mut out = h.to_vec();
    out.extend_from_slice(body);
    out
}

/// Reads frames up to the next request: its id, and how many heartbeat
/// pongs came before it.
pub fn read_request(s: &mut TcpStream) -> (u64, usize) {
    let mut pongs = 0;
    loop {
        let mut head = [0u8; HEADER_LEN];
        s.read_exact(&mut head).unwrap();
        let h = Header::decode(&head).unwrap();
        let mut body = vec![0u8; h.body_len as usize];
        s.read_exact(&mut body).unwrap();
        match h.kind {
            Kind::Request { .. } => return (h.request_id, pongs),
            Kind::Heartbeat { request: false } => pongs += 1,
            other => panic!("a consumer sent {other:?}"),
        }
    }
}

/// A provider by hand: `serve` gets its one connection, on a thread of
/// its own; returns where it listens and the thread.
pub fn hand_made_provider<T: Send + 'static>(
    serve: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (SocketAddr, std::thread::JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || serve(listener.accept().unwrap().0));
    (addr, thread)
}

/// A provider by hand which, for each of the calls it answers with `7`,
/// `8` and `9`, first sends a heartbeat ping, then the answer in two
/// halves 30 ms apart; it returns how many pongs came back (it waits for
/// the last ones: closing before they are read would reset the connection
/// under the last answer).
pub fn pinging_provider() -> (SocketAddr, std::thread::JoinHandle<usize>) {
    hand_made_provider(|mut s| {
        let mut pongs = 0;
        for answer in [7i64, 8, 9] {
            let (id, before) = read_request(&mut s);
            pongs += before;
            s.write_all(&frame(Kind::Heartbeat { request: true }, 0, &[]))
                .unwrap();
            std::thread::sleep(Duration::from_millis(30));
            let mut body = bytes::BytesMut::new();
            Serialization::Binary.serialize(&answer, &mut body).unwrap();
            let whole = frame(Kind::Response(gyre_rpc::Status::Ok), id, &body);
            let (first, rest) = whole.split_at(HEADER_LEN / 2);
            s.write_all(first).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            s.write_all(rest).unwrap();
        }
        let mut head = [0u8; HEADER_LEN];
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        while pongs < 3 && s.read_exact(&mut head).is_ok() {
            let h = Header::decode(&head).unwrap();
            assert_eq!(h.kind, Kind::Heartbeat { request: false });
            pongs += 1;
        }
        pongs
    })
}
