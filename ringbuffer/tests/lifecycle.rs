//! Stopping: drains on the last producer's drop and on shutdown (even into a
//! stage that had not started), reports what a timeout or halt left, and
//! calls the lifecycle hooks in order.

mod common;
use common::{triangle, Tally};
use gyre_ringbuffer::{Disruptor, EventHandler, Stage, YieldingWait};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn last_producer_drop_drains_into_a_stage_that_had_not_started() {
    let tally = Tally::new();
    let t = tally.clone();
    let mut graph = Disruptor::builder(1024, || 0u64).multi_producer().unwrap();
    graph
        .handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}))
        .then(Stage::with_factory(move || {
            // This stage starts long after everything was published.
            std::thread::sleep(Duration::from_millis(200));
            move |e: &u64, _: i64, _: bool| t.add(*e)
        }));
    let (mut p, d) = graph.start().unwrap();
    let mut p2 = p.clone();
    for i in 1..=500 {
        p.publish(|e| *e = i).unwrap();
    }
    drop(p);
    for i in 501..=1000 {
        p2.publish(|e| *e = i).unwrap();
    }
    drop(p2);
    let report = d.join();
    assert_eq!(
        (report.published, report.processed, report.unprocessed),
        (1000, 1000, 0)
    );
    assert!(!report.halted && report.panics.is_empty());
    assert_eq!((tally.count(), tally.sum()), (1000, triangle(1000)));
}

#[test]
fn dropping_the_disruptor_drains_and_joins() {
    let tally = Tally::new();
    let t = tally.clone();
    let mut graph = Disruptor::builder(64, || 0u64).single_producer().unwrap();
    graph.handle_events_with(Stage::new(move |e: &u64, _: i64, _: bool| {
        std::thread::sleep(Duration::from_micros(100));
        t.add(*e)
    }));
    let (mut p, d) = graph.start().unwrap();
    for i in 1..=100 {
        p.publish(|e| *e = i).unwrap();
    }
    drop(d);
    assert_eq!((tally.count(), tally.sum()), (100, triangle(100)));
}

#[test]
fn shutdown_timeout_reports_what_was_left() {
    let started = Arc::new(std::sync::Barrier::new(2));
    let s = started.clone();
    let mut graph = Disruptor::builder(64, || 0u64).single_producer().unwrap();
    graph.handle_events_with(Stage::new(move |_: &u64, seq: i64, _: bool| {
        if seq == 0 {
            s.wait();
            std::thread::sleep(Duration::from_millis(300));
        }
    }));
    let (mut p, d) = graph.start().unwrap();
    p.publish(|_| {}).unwrap();
    started.wait(); // the stage is now inside event 0, a batch of one
    p.batch_publish(63, |_, _| {}).unwrap();
    let report = d.shutdown_timeout(Duration::from_millis(20));
    assert!(report.halted);
    assert_eq!(
        (report.published, report.processed, report.unprocessed),
        (64, 1, 63)
    );
}

#[test]
fn shutdown_timeout_that_is_long_enough_drains() {
    let tally = Tally::new();
    let t = tally.clone();
    let mut graph = Disruptor::builder(64, || 0u64).single_producer().unwrap();
    graph.handle_events_with(Stage::new(move |e: &u64, _: i64, _: bool| t.add(*e)));
    let (mut p, d) = graph.start().unwrap();
    p.batch_publish(64, |i, e| *e = i as u64 + 1).unwrap();
    let report = d.shutdown_timeout(Duration::from_secs(30));
    assert!(!report.halted);
    assert_eq!((report.processed, report.unprocessed), (64, 0));
    assert_eq!(tally.sum(), triangle(64));
}

#[test]
fn halt_stops_without_draining_and_unblocks_producers() {
    let mut graph = Disruptor::builder(4, || 0u64).single_producer().unwrap();
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let g = gate.clone();
    graph.handle_events_with(Stage::new(move |_: &u64, _: i64, _: bool| {
        drop(g.lock().unwrap())
    }));
    let (mut p, d) = graph.start().unwrap();
    p.batch_publish(4, |_, _| {}).unwrap();
    // The ring is full and the stage is stuck: a blocking publish waits...
    let publisher = std::thread::spawn(move || p.publish(|_| {}));
    std::thread::sleep(Duration::from_millis(50));
    drop(held);
    let report = d.halt();
    assert!(report.halted);
    // ...and is released by the halt instead of waiting forever.
    let outcome = publisher.join().unwrap();
    assert!(
        outcome == Err(gyre_ringbuffer::PublishError::Closed) || outcome == Ok(4),
        "{outcome:?}"
    );
}

struct Recorder(Arc<Mutex<Vec<String>>>);

impl EventHandler<u64> for Recorder {
    fn on_start(&mut self) {
        self.0.lock().unwrap().push("start".into());
    }
    fn on_batch_start(&mut self, n: usize) {
        self.0.lock().unwrap().push(format!("batch {n}"));
    }
    fn on_event(&mut self, e: &u64, seq: i64, end: bool) {
        self.0.lock().unwrap().push(format!("{seq}:{e}:{end}"));
    }
    fn on_shutdown(&mut self) {
        self.0.lock().unwrap().push("shutdown".into());
    }
}

#[test]
fn lifecycle_callbacks_come_in_order_with_end_of_batch() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut graph = Disruptor::builder(16, || 0u64)
        .wait_strategy(YieldingWait::default())
        .single_producer()
        .unwrap();
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let g = gate.clone();
    // A first stage held back until all three events are out, so the second
    // stage sees them as one batch.
    graph
        .handle_events_with(Stage::new(move |_: &u64, _: i64, _: bool| {
            drop(g.lock().unwrap())
        }))
        .then(Stage::new(Recorder(log.clone())));
    let (mut p, d) = graph.start().unwrap();
    p.batch_publish(3, |i, e| *e = 10 * i as u64).unwrap();
    drop(held);
    drop(p);
    d.join();
    let log = log.lock().unwrap().clone();
    assert_eq!(log.first().map(String::as_str), Some("start"));
    assert_eq!(log.last().map(String::as_str), Some("shutdown"));
    let events: Vec<_> = log.iter().filter(|l| l.contains(':')).cloned().collect();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0], "0:0:false");
    assert!(events[2] == "2:20:true", "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("batch")));
}

/// Forty events held back by a first stage reach the next stages in
/// batches of at most 16: a shared stage and the owner stage each see
/// `end_of_batch` on the last event of each (the two full batches lend
/// their last event apart from the others, the short one does not).
#[test]
fn every_batch_full_or_short_ends_once_on_its_last_event() {
    const N: usize = 40;
    let shared_ends = Arc::new(Mutex::new(Vec::new()));
    let owned_ends = Arc::new(Mutex::new(Vec::new()));
    let mut graph = Disruptor::builder(64, || 0u64)
        .wait_strategy(YieldingWait::default())
        .max_batch(16)
        .single_producer()
        .unwrap();
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let g = gate.clone();
    let (s, o) = (shared_ends.clone(), owned_ends.clone());
    graph
        .handle_events_with(Stage::new(move |_: &u64, _: i64, _: bool| {
            drop(g.lock().unwrap())
        }))
        .then(Stage::new(move |e: &u64, seq: i64, end: bool| {
            s.lock().unwrap().push((seq, *e, end))
        }));
    let graph = graph.then_owner(Stage::owner(move |e: &mut u64, seq: i64, end: bool| {
        o.lock().unwrap().push((seq, std::mem::take(e), end))
    }));
    let (mut p, d) = graph.start().unwrap();
    p.batch_publish(N, |i, e| *e = 10 * i as u64).unwrap();
    drop(held);
    drop(p);
    d.join();
    for ends in [shared_ends, owned_ends] {
        let seen = ends.lock().unwrap().clone();
        let expected: Vec<_> = (0..N)
            .map(|i| (i as i64, 10 * i as u64, i % 16 == 15 || i == N - 1))
            .collect();
        assert_eq!(seen, expected);
    }
}
