//! The consumer's and the provider's busy-poll windows reach their loops:
//! within the window after a call, the loop polls instead of sleeping.
//!
//! Whether a loop polled or slept is read from the kernel's CPU accounting
//! of its thread, as `gyre-reactor`'s own busy-poll test does: a sleeping
//! loop accrues no CPU time while nobody calls; a polling one accrues it
//! all the while. One test function, so the loops it measures are the only
//! ones of their name in this process while it measures them.

use gyre_rpc::consumer::Consumer;
use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
use gyre_rpc::ServiceKey;
use gyre_testkit::{cpu_ticks, threads_named};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

fn key() -> ServiceKey {
    ServiceKey::new("test.BusyPoll")
}

fn provider(window: Duration) -> Provider {
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .io_threads(1)
        .busy_poll(window)
        .service(
            Service::builder(key())
                .dispatch(Dispatch::IoThread)
                .method("echo", |s: String| Ok::<_, ServiceError>(s))
                .build(),
        )
        .start()
        .unwrap()
}

/// The ticks the consumer's loop and the provider's loop spend in 400 ms
/// of silence after 20 calls, with the given windows.
fn silent_ticks(consumer_window: Duration, provider_window: Duration) -> (u64, u64) {
    let before_consumer = threads_named("gyre-rpc-consum");
    let before_provider = threads_named("gyre-rpc-io");
    let provider = provider(provider_window);
    let consumer = Consumer::builder()
        .busy_poll(consumer_window)
        .build()
        .unwrap();
    let conn = consumer.connect(provider.local_addr()).unwrap();
    for i in 0..20 {
        let s = format!("call {i}");
        assert_eq!(conn.call::<_, String>(&key(), "echo", &s).unwrap(), s);
    }
    let only_new = |now: BTreeSet<PathBuf>, before: &BTreeSet<PathBuf>| {
        let new: Vec<PathBuf> = now.difference(before).cloned().collect();
        assert_eq!(new.len(), 1, "one new loop thread: {new:?}");
        new.into_iter().next().unwrap()
    };
    let c_loop = only_new(threads_named("gyre-rpc-consum"), &before_consumer);
    let p_loop = only_new(threads_named("gyre-rpc-io"), &before_provider);
    let (c0, p0) = (cpu_ticks(&c_loop).unwrap(), cpu_ticks(&p_loop).unwrap());
    std::thread::sleep(Duration::from_millis(400));
    let spent = (
        cpu_ticks(&c_loop).unwrap() - c0,
        cpu_ticks(&p_loop).unwrap() - p0,
    );
    // Still answering after the silence.
    assert_eq!(
        conn.call::<_, String>(&key(), "echo", "after").unwrap(),
        "after"
    );
    consumer.shutdown();
    provider.shutdown(Duration::from_secs(1));
    spent
}

#[test]
fn each_side_polls_within_its_window_and_sleeps_without_one() {
    let (off, on) = (Duration::ZERO, Duration::from_secs(10));
    let (consumer, provider) = silent_ticks(off, off);
    assert!(
        consumer <= 3 && provider <= 3,
        "without busy poll, silence cost the consumer's loop {consumer} ticks and the provider's {provider}"
    );
    // Polling takes a whole core while it lasts: 40 ticks if it gets one,
    // and even on a loaded machine far more than a sleeping loop's none.
    let (consumer, provider) = silent_ticks(on, off);
    assert!(
        consumer >= 8 && provider <= 3,
        "with the consumer's window only: consumer {consumer} ticks, provider {provider}"
    );
    let (consumer, provider) = silent_ticks(off, on);
    assert!(
        consumer <= 3 && provider >= 8,
        "with the provider's window only: consumer {consumer} ticks, provider {provider}"
    );
}
