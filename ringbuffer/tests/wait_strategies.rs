//! Every wait strategy carries a two-stage pipeline to the end with nothing
//! lost, and the timeout strategy calls `on_timeout`.

mod common;
use common::{triangle, Tally};
use gyre_ringbuffer::{
    BlockingWait, BusySpinWait, Disruptor, EventHandler, PhasedBackoffWait, SleepingWait, Stage,
    TimeoutBlockingWait, WaitStrategy, YieldingWait,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn run_pipeline<W: WaitStrategy>(wait: W) {
    const N: u64 = 20_000;
    let tally = Tally::new();
    let t = tally.clone();
    let mut graph = Disruptor::builder(256, || 0u64)
        .wait_strategy(wait)
        .single_producer()
        .unwrap();
    graph
        .handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}))
        .then(Stage::new(move |e: &u64, _: i64, _: bool| t.add(*e)));
    let (mut p, d) = graph.start().unwrap();
    for i in 1..=N {
        p.publish(|e| *e = i).unwrap();
        if i % 5000 == 0 {
            // Let the consumers go idle now and then, so the blocking
            // strategies actually sleep and must be woken.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    drop(p);
    let report = d.join();
    assert_eq!(report.processed, N);
    assert_eq!((tally.count(), tally.sum()), (N, triangle(N)));
}

#[test]
fn busy_spin() {
    run_pipeline(BusySpinWait);
}
#[test]
fn yielding() {
    run_pipeline(YieldingWait::default());
}
#[test]
fn sleeping() {
    run_pipeline(SleepingWait::default());
}
#[test]
fn sleeping_without_yields() {
    run_pipeline(SleepingWait::with_phases(64, 0, Duration::from_micros(50)));
}
#[test]
fn sleeping_at_once() {
    run_pipeline(SleepingWait::with_phases(0, 0, Duration::from_micros(20)));
}
#[test]
fn blocking() {
    run_pipeline(BlockingWait::new());
}
#[test]
fn timeout_blocking() {
    run_pipeline(TimeoutBlockingWait::new(Duration::from_millis(1)));
}
#[test]
fn phased_backoff() {
    run_pipeline(PhasedBackoffWait::default());
}

struct CountTimeouts(Arc<AtomicU64>);
impl EventHandler<u64> for CountTimeouts {
    fn on_event(&mut self, _: &u64, _: i64, _: bool) {}
    fn on_timeout(&mut self, sequence: i64) {
        assert_eq!(sequence, 0, "the last processed sequence");
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn timeout_blocking_calls_on_timeout_while_idle() {
    let timeouts = Arc::new(AtomicU64::new(0));
    let mut graph = Disruptor::builder(8, || 0u64)
        .wait_strategy(TimeoutBlockingWait::new(Duration::from_millis(5)))
        .single_producer()
        .unwrap();
    graph.handle_events_with(Stage::new(CountTimeouts(timeouts.clone())));
    let (mut p, d) = graph.start().unwrap();
    p.publish(|_| {}).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while timeouts.load(Ordering::Relaxed) < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(p);
    d.join();
    assert!(timeouts.load(Ordering::Relaxed) >= 3);
}
