//! A consumer's graceful close (Dubbo's consumer-side graceful shutdown):
//! `Connection::close_gracefully` and `Consumer::shutdown_gracefully`
//! refuse new calls at once, wait for the calls in flight (blocking,
//! asynchronous, several connections), close when none is left, and cut
//! those still unanswered at the timeout with `Closed`, on time.

mod common;

use common::{calc, calc_service, one_loop_provider};
use gyre_rpc::consumer::{Connection, Consumer, RpcError};
use gyre_rpc::provider::{Dispatch, Provider, ServiceError};
use std::time::{Duration, Instant};

/// `test.Calc` with `nap(ms)`, which answers after sleeping on the worker
/// pool.
fn napping_provider() -> Provider {
    one_loop_provider()
        .service(
            calc_service()
                .dispatch(Dispatch::WorkerPool)
                .method("nap", |ms: u64| {
                    std::thread::sleep(Duration::from_millis(ms));
                    Ok::<_, ServiceError>(ms)
                })
                .build(),
        )
        .start()
        .unwrap()
}

fn wait_in_flight(conn: &Connection, n: usize) {
    common::wait_for("calls in flight", Duration::from_secs(5), || {
        conn.in_flight() == n
    });
}

#[test]
fn a_connection_closing_gracefully_answers_its_calls_and_refuses_new_ones() {
    let provider = napping_provider();
    let consumer = Consumer::builder().build().unwrap();
    let conn = consumer.connect(provider.local_addr()).unwrap();
    std::thread::scope(|s| {
        let napping = s.spawn(|| conn.call::<_, u64>(&calc(), "nap", &200u64));
        wait_in_flight(&conn, 1);
        let t = Instant::now();
        let closer = s.spawn(|| conn.close_gracefully(Duration::from_secs(5)));
        common::wait_for("closing", Duration::from_secs(1), || !conn.is_available());
        // A call made meanwhile is refused at once, not sent.
        let refused = conn.call::<_, i64>(&calc(), "add", &(1i64, 2i64));
        assert!(matches!(refused, Err(RpcError::Closed)), "{refused:?}");
        assert!(closer.join().unwrap(), "every call answered");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "closed once answered: {:?}",
            t.elapsed()
        );
        assert_eq!(napping.join().unwrap().unwrap(), 200);
    });
    common::wait_for("closed", Duration::from_secs(2), || !conn.is_open());
    assert_eq!(conn.in_flight(), 0);
    consumer.shutdown();
    provider.shutdown(Duration::from_secs(1));
}

#[test]
fn a_graceful_close_cuts_the_calls_still_unanswered_at_its_timeout() {
    let provider = napping_provider();
    let consumer = Consumer::builder().build().unwrap();
    let conn = consumer.connect(provider.local_addr()).unwrap();
    std::thread::scope(|s| {
        let napping = s.spawn(|| conn.call::<_, u64>(&calc(), "nap", &3_000u64));
        wait_in_flight(&conn, 1);
        let t = Instant::now();
        assert!(
            !conn.close_gracefully(Duration::from_millis(100)),
            "a call was cut"
        );
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(1),
            "{waited:?}"
        );
        let cut = napping.join().unwrap();
        assert!(matches!(cut, Err(RpcError::Closed)), "{cut:?}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "cut on time: {:?}",
            t.elapsed()
        );
    });
    consumer.shutdown();
    provider.shutdown(Duration::from_secs(1));
}

#[test]
fn a_consumer_shutting_down_gracefully_waits_for_every_connections_calls() {
    shutting_down_gracefully_waits(Consumer::builder().io_threads(2).build().unwrap());
}

/// The same with tokio's reads: a call alone in flight reads its own
/// answer, counted as in flight all the same.
#[cfg(feature = "tokio")]
#[test]
fn a_graceful_shutdown_waits_for_calls_reading_their_own_answers() {
    let consumer = Consumer::builder().tokio_reads(true).build().unwrap();
    shutting_down_gracefully_waits(consumer);
}

fn shutting_down_gracefully_waits(consumer: Consumer) {
    let provider = napping_provider();
    let conns: Vec<Connection> = (0..3)
        .map(|_| consumer.connect(provider.local_addr()).unwrap())
        .collect();
    // A dropped connection is no trouble to the shutdown.
    drop(consumer.connect(provider.local_addr()).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let calls: Vec<_> = conns
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            (0..4u64).map(move |j| {
                c.call_async::<_, u64>(&calc(), "nap", &(100 + 10 * (i as u64 * 4 + j)))
            })
        })
        .collect();
    std::thread::scope(|s| {
        let answers = s.spawn(move || {
            rt.block_on(async {
                // Each its own task, so every call is polled (and sent)
                // at once, whether it goes out at its making or at its
                // first poll (tokio's reads).
                let tasks: Vec<_> = calls.into_iter().map(tokio::spawn).collect();
                let mut got = Vec::new();
                for task in tasks {
                    got.push(task.await.unwrap());
                }
                got
            })
        });
        common::wait_for("calls sent", Duration::from_secs(5), || {
            conns.iter().map(Connection::in_flight).sum::<usize>() == 12
        });
        let t = Instant::now();
        assert!(
            consumer.shutdown_gracefully(Duration::from_secs(10)),
            "every call answered"
        );
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let got = answers.join().unwrap();
        assert_eq!(got.len(), 12);
        for (k, answer) in got.into_iter().enumerate() {
            assert_eq!(answer.unwrap(), 100 + 10 * k as u64);
        }
    });
    for conn in &conns {
        assert!(matches!(
            conn.call::<_, u64>(&calc(), "nap", &0u64),
            Err(RpcError::Closed)
        ));
        common::wait_for("closed", Duration::from_secs(2), || !conn.is_open());
    }
    provider.shutdown(Duration::from_secs(1));
}
