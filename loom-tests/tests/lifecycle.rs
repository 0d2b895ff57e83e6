//! Loom models of the blocking wait strategy (no lost wake-up, also between
//! stages), the timeout strategy's nudge (never lost), the shutdown drain,
//! and the worker pool's claim protocol.
//!
//! Here the stages are real `BatchEventProcessor` / worker threads started by
//! `Graph::start` (loom threads under `--cfg loom`). A lost wake-up leaves a
//! thread blocked on the condition variable forever, which loom reports as a
//! deadlock; a lost event fails the count.
#![cfg(loom)]

use gyre_loom_tests::model;
use gyre_ringbuffer::{BlockingWait, Disruptor, EventHandler, Stage, TimeoutBlockingWait};
use loom::sync::atomic::{AtomicU64, Ordering::Relaxed};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// A ring of 2 on `BlockingWait`, the strategy whose wake-ups are modelled.
fn blocking_ring() -> gyre_ringbuffer::DisruptorBuilder<u64, BlockingWait> {
    Disruptor::builder(2, || 0u64).wait_strategy(BlockingWait::new())
}

/// A stage that adds every event into `sum`.
fn summing(sum: &Arc<AtomicU64>) -> Stage<impl gyre_ringbuffer::StageKind<u64>> {
    let sum = sum.clone();
    Stage::new(move |e: &u64, _: i64, _: bool| {
        sum.fetch_add(*e, Relaxed);
    })
}

#[test]
fn blocking_wait_loses_no_wakeup() {
    model(|| {
        let sum = Arc::new(AtomicU64::new(0));
        let mut graph = blocking_ring().single_producer().unwrap();
        graph.handle_events_with(summing(&sum));
        let (mut producer, disruptor) = graph.start().unwrap();
        producer.publish(|e| *e = 1).unwrap();
        producer.publish(|e| *e = 2).unwrap();
        drop(producer);
        let report = disruptor.join();
        assert_eq!(report.processed, 2);
        assert_eq!(sum.load(Relaxed), 3);
    });
}

#[test]
fn blocking_wait_between_stages_loses_no_wakeup() {
    model(|| {
        let sum = Arc::new(AtomicU64::new(0));
        let mut graph = blocking_ring().single_producer().unwrap();
        graph
            .handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}))
            .then(summing(&sum));
        let (mut producer, disruptor) = graph.start().unwrap();
        producer.publish(|e| *e = 5).unwrap();
        drop(producer);
        assert_eq!(disruptor.join().processed, 1);
        assert_eq!(sum.load(Relaxed), 5);
    });
}

/// Tells `seen` when `on_timeout` runs.
struct Timeouts(Arc<(Mutex<bool>, Condvar)>);

impl EventHandler<u64> for Timeouts {
    fn on_event(&mut self, _: &u64, _: i64, _: bool) {}
    fn on_timeout(&mut self, _last: i64) {
        let (seen, cv) = &*self.0;
        *seen.lock().unwrap() = true;
        cv.notify_all();
    }
}

/// A nudge from another thread ends the consumer's wait as a timeout,
/// whether it comes before the consumer sleeps or after. Under loom a
/// timeout never fires by itself, so a lost nudge leaves the consumer
/// asleep and this thread waiting for its `on_timeout` for good: a
/// deadlock, which loom reports.
#[test]
fn a_nudge_ends_a_timeout_wait_and_is_never_lost() {
    model(|| {
        let seen = Arc::new((Mutex::new(false), Condvar::new()));
        let wait = TimeoutBlockingWait::new(std::time::Duration::from_secs(3600));
        let nudger = wait.nudger();
        let mut graph = Disruptor::builder(2, || 0u64)
            .wait_strategy(wait)
            .single_producer()
            .unwrap();
        graph.handle_events_with(Stage::new(Timeouts(seen.clone())));
        let (producer, disruptor) = graph.start().unwrap();
        let nudging = thread::spawn(move || nudger.nudge());
        {
            let (m, cv) = &*seen;
            let mut timed_out = m.lock().unwrap();
            while !*timed_out {
                timed_out = cv.wait(timed_out).unwrap();
            }
        }
        nudging.join().unwrap();
        drop(producer);
        disruptor.join();
    });
}

#[test]
fn last_producer_drop_drains_every_event() {
    model(|| {
        let sum = Arc::new(AtomicU64::new(0));
        let mut graph = blocking_ring().multi_producer().unwrap();
        graph.handle_events_with(summing(&sum));
        let (producer, disruptor) = graph.start().unwrap();
        let mut other = producer.clone();
        let t = thread::spawn(move || {
            other.publish(|e| *e = 10).unwrap();
        });
        let mut producer = producer;
        producer.publish(|e| *e = 1).unwrap();
        drop(producer);
        t.join().unwrap();
        let report = disruptor.join();
        assert_eq!((report.published, report.processed), (2, 2));
        assert_eq!(sum.load(Relaxed), 11);
    });
}

#[test]
fn shutdown_drains_what_was_published() {
    model(|| {
        let sum = Arc::new(AtomicU64::new(0));
        let mut graph = blocking_ring().single_producer().unwrap();
        graph.handle_events_with(summing(&sum));
        let (mut producer, disruptor) = graph.start().unwrap();
        producer.publish(|e| *e = 7).unwrap();
        let report = disruptor.shutdown();
        assert_eq!((report.processed, report.unprocessed), (1, 0));
        assert_eq!(sum.load(Relaxed), 7);
        assert!(producer.publish(|_| {}).is_err());
    });
}

#[test]
fn worker_pool_handles_each_event_once() {
    model(|| {
        let seen = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let s = seen.clone();
        let mut graph = blocking_ring().single_producer().unwrap();
        graph.handle_events_with(Stage::worker_pool_with_factory(2, move |_| {
            let s = s.clone();
            move |e: &u64, _: i64| {
                s[*e as usize].fetch_add(1, Relaxed);
            }
        }));
        let (mut producer, disruptor) = graph.start().unwrap();
        producer.publish(|e| *e = 0).unwrap();
        producer.publish(|e| *e = 1).unwrap();
        drop(producer);
        assert_eq!(disruptor.join().processed, 2);
        assert_eq!((seen[0].load(Relaxed), seen[1].load(Relaxed)), (1, 1));
    });
}
