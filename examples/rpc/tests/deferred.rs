//! Provider methods that answer later, through a `Responder` sent from
//! another thread, over real loopback connections: on the event loop and on
//! the worker pool, with bad arguments, a dropped responder, one-way calls,
//! filters around them, and a graceful shutdown that waits for them.

use gyre_rpc::consumer::{CallOptions, Consumer};
use gyre_rpc::filter::ConcurrencyLimit;
use gyre_rpc::provider::{Dispatch, Provider, Responder, Service};
use gyre_rpc::{ServiceKey, Status};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn key() -> ServiceKey {
    ServiceKey::new("test.Later")
}

fn provider(dispatch: Dispatch, limit: Arc<ConcurrencyLimit>, seen: Arc<AtomicU64>) -> Provider {
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .shared_filter(limit)
        .service(
            Service::builder(key())
                .dispatch(dispatch)
                .deferred_method(
                    "double_after",
                    |(n, ms): (u64, u64), answer: Responder<u64>| {
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_millis(ms));
                            answer.send(Ok(n * 2));
                        });
                    },
                )
                .deferred_method("refuse", |_: (), answer: Responder<u64>| {
                    answer.send(Err(gyre_rpc::provider::ServiceError::new("no")));
                })
                .deferred_method("forget", |_: (), _answer: Responder<u64>| {})
                .deferred_method("note", move |n: u64, answer: Responder<()>| {
                    seen.fetch_add(n, Ordering::SeqCst);
                    answer.send(Ok(()));
                })
                .build(),
        )
        .start()
        .unwrap()
}

#[test]
fn deferred_answers_on_the_loop_and_on_the_pool() {
    for dispatch in [Dispatch::IoThread, Dispatch::WorkerPool] {
        let limit = Arc::new(ConcurrencyLimit::new(64));
        let seen = Arc::new(AtomicU64::new(0));
        let p = provider(dispatch, limit.clone(), seen.clone());
        let conn = Consumer::builder()
            .build()
            .unwrap()
            .connect(p.local_addr())
            .unwrap();

        // Many calls answered out of order from other threads, each to
        // its own caller: the slow ones do not hold the fast ones up.
        let started = Instant::now();
        let answers: Vec<_> = (0..20u64)
            .map(|i| conn.call_async::<_, u64>(&key(), "double_after", &(i, 200 - i * 10)))
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (i, a) in answers.into_iter().enumerate() {
            assert_eq!(rt.block_on(a).unwrap(), 2 * i as u64, "{dispatch:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the calls overlapped"
        );

        // The method's error, bad arguments and a forgotten responder.
        let e = conn.call::<_, u64>(&key(), "refuse", &()).unwrap_err();
        assert_eq!(e.status(), Status::ServiceError);
        let e = conn
            .call::<_, u64>(&key(), "double_after", &"not a pair")
            .unwrap_err();
        assert_eq!(e.status(), Status::BadRequest);
        let started = Instant::now();
        let e = conn
            .call_with::<_, u64>(
                &key(),
                "forget",
                &(),
                &CallOptions::default().timeout(Duration::from_secs(5)),
            )
            .unwrap_err();
        assert_eq!(e.status(), Status::ServerError, "{e}");
        assert!(e.to_string().contains("without answering"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "answered at once, not at the timeout"
        );

        // One-way: the method runs, nothing comes back.
        conn.send_oneway(&key(), "note", &5u64, &CallOptions::default())
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.load(Ordering::SeqCst) != 5 {
            assert!(Instant::now() < deadline, "the one-way call ran");
            std::thread::sleep(Duration::from_millis(1));
        }

        // Every call counted out, by the filters and the provider.
        let deadline = Instant::now() + Duration::from_secs(5);
        while limit.active() != 0 || p.in_flight() != 0 {
            assert!(
                Instant::now() < deadline,
                "active {} in flight {}",
                limit.active(),
                p.in_flight()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        p.shutdown(Duration::from_secs(1));
    }
}

#[test]
fn a_graceful_shutdown_waits_for_unsent_responders() {
    let p = provider(
        Dispatch::IoThread,
        Arc::new(ConcurrencyLimit::new(8)),
        Arc::new(AtomicU64::new(0)),
    );
    let addr = p.local_addr();
    let caller = std::thread::spawn(move || {
        let conn = Consumer::builder().build().unwrap().connect(addr).unwrap();
        conn.call::<_, u64>(&key(), "double_after", &(21u64, 300u64))
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.in_flight() == 0 {
        assert!(Instant::now() < deadline, "the call arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    p.shutdown(Duration::from_secs(5));
    assert_eq!(
        caller.join().unwrap().unwrap(),
        42,
        "answered before the provider stopped"
    );
}
