//! Mutated frames against a live provider: calls as a consumer encodes
//! them (both serializations, with attachments, one-way and two-way, to
//! a service run on the loop and one on the worker pool, to an unknown
//! method), heartbeats, and a stray response, each changed by
//! `gyre_testkit::mutate` (bits, extreme values, lying sizes, cuts,
//! splices) and sent on a connection of its own. Every hundred, a
//! consumer must still get its answers from both services; no frame may
//! panic the provider (a panic hook counts them: the loop outlives a
//! handler's panic, closing only that connection, so only the hook would
//! see one). `GYRE_FUZZ_SEED` and `GYRE_FUZZ_ITERATIONS` explore further.

mod common;

use bytes::BytesMut;
use common::{calc, calc_service, frame, one_loop_provider};
use gyre_rpc::consumer::Consumer;
use gyre_rpc::protocol::{write_routing, Kind, Serialization, ServiceKey, Status};
use gyre_rpc::provider::{Dispatch, Service, ServiceError};
use gyre_testkit::{count_panics, fuzz_run, spray_mutations, SizeField};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Where a frame says its size: the header's body length.
const RPC: SizeField = SizeField {
    at: 12,
    counts_from: 16,
};

fn pool() -> ServiceKey {
    ServiceKey::new("test.Pool")
}

/// A request body for `method` of `service` with `args` in `ser`.
fn call<A: serde::Serialize>(
    service: &ServiceKey,
    method: &str,
    attachments: &[(&str, &str)],
    ser: Serialization,
    args: &A,
) -> Vec<u8> {
    let mut body = BytesMut::new();
    let attachments: Vec<(String, String)> = attachments
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    write_routing(&mut body, service, method, &attachments, None).unwrap();
    ser.serialize(args, &mut body).unwrap();
    body.to_vec()
}

/// The frames a consumer sends, and one it should not.
fn recorded() -> Vec<Vec<u8>> {
    let two_way = Kind::Request { two_way: true };
    let mut json = frame(
        two_way,
        2,
        &call(&calc(), "add", &[], Serialization::Json, &(2i64, 3i64)),
    );
    json[2] = (json[2] & !0x1f) | Serialization::Json.id();
    vec![
        frame(
            two_way,
            1,
            &call(
                &calc(),
                "add",
                &[("trace", "x")],
                Serialization::Binary,
                &(2i64, 3i64),
            ),
        ),
        json,
        frame(
            Kind::Request { two_way: false },
            3,
            &call(&calc(), "add", &[], Serialization::Binary, &(1i64, 1i64)),
        ),
        frame(
            two_way,
            4,
            &call(
                &pool(),
                "double",
                &[("a", "b"), ("c", "d")],
                Serialization::Binary,
                &21i64,
            ),
        ),
        frame(
            two_way,
            5,
            &call(&calc(), "nope", &[], Serialization::Binary, &()),
        ),
        frame(Kind::Heartbeat { request: true }, 6, &[]),
        frame(Kind::Response(Status::Ok), 7, &[0, 1, 2]),
    ]
}

#[test]
fn mutated_frames_harm_only_their_own_connections() {
    let panics = count_panics();
    let provider = one_loop_provider()
        .service(calc_service().build())
        .service(
            Service::builder(pool())
                .dispatch(Dispatch::WorkerPool)
                .method("double", |n: i64| Ok::<_, ServiceError>(n * 2))
                .build(),
        )
        .start()
        .expect("provider starts");
    let addr = provider.local_addr();
    let consumer = Consumer::builder().build().unwrap();
    let bystander = consumer.connect(addr).unwrap();
    let still_serves = |after: usize| {
        let sum: i64 = bystander
            .call(&calc(), "add", &(2i64, 3i64))
            .unwrap_or_else(|e| panic!("the loop's service after {after} mutations: {e}"));
        assert_eq!(sum, 5);
        let twice: i64 = bystander
            .call(&pool(), "double", &21i64)
            .unwrap_or_else(|e| panic!("the pool's service after {after} mutations: {e}"));
        assert_eq!(twice, 42);
    };
    still_serves(0);
    let frames = recorded();
    let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let (mut rng, iterations) = fuzz_run(0xdabb_f00d, 10_000);
    spray_mutations(addr, RPC, &frames, &mut rng, iterations, still_serves);
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "no frame panicked the provider"
    );
    provider.shutdown(Duration::from_secs(2));
}
