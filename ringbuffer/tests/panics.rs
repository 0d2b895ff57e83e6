//! A panicking handler is never silent: `Halt` stops everything and closes
//! the producers, `LogAndContinue` skips the event; both are reported.

mod common;
use common::Tally;
use gyre_ringbuffer::{Disruptor, PanicPolicy, PublishError, Stage};
use std::time::Duration;

#[test]
fn halt_policy_stops_the_disruptor_and_reports_the_panic() {
    let mut graph = Disruptor::builder(8, || 0u64).single_producer().unwrap();
    graph.handle_events_with(
        Stage::new(|e: &u64, _: i64, _: bool| {
            if *e == 3 {
                panic!("bad event {e}");
            }
        })
        .name("fragile"),
    );
    let (mut p, d) = graph.start().unwrap();
    let mut closed = false;
    for i in 0..10_000u64 {
        if p.publish(|e| *e = i) == Err(PublishError::Closed) {
            closed = true;
            break;
        }
    }
    assert!(closed, "producers must learn that the disruptor halted");
    let report = d.join();
    assert!(report.halted);
    assert_eq!(report.panics.len(), 1);
    let panic = &report.panics[0];
    assert_eq!(
        (panic.stage.as_str(), panic.sequence, panic.policy),
        ("fragile", 3, PanicPolicy::Halt)
    );
    assert_eq!(panic.message, "bad event 3");
}

#[test]
fn log_and_continue_skips_only_the_bad_event() {
    let tally = Tally::new();
    let t = tally.clone();
    let mut graph = Disruptor::builder(8, || 0u64).single_producer().unwrap();
    graph
        .handle_events_with(
            Stage::new(|e: &u64, _: i64, _: bool| assert!(*e % 10 != 7, "seven"))
                .on_panic(PanicPolicy::LogAndContinue),
        )
        .then(Stage::new(move |e: &u64, _: i64, _: bool| t.add(*e)));
    let (mut p, d) = graph.start().unwrap();
    for i in 0..100u64 {
        p.publish(|e| *e = i).unwrap();
    }
    drop(p);
    let report = d.join();
    assert!(!report.halted);
    assert_eq!(report.processed, 100);
    assert_eq!(report.panics.len(), 10);
    assert!(report
        .panics
        .iter()
        .all(|p| p.sequence % 10 == 7 && p.message == "seven"));
    // Downstream still sees every event: the skip is the panicking stage's only.
    assert_eq!(tally.count(), 100);
}

#[test]
fn worker_pool_panics_follow_the_policy() {
    let tally = Tally::new();
    let t = tally.clone();
    let mut graph = Disruptor::builder(8, || 0u64).multi_producer().unwrap();
    graph.handle_events_with(
        Stage::worker_pool_with_factory(2, move |_| {
            let t = t.clone();
            move |e: &u64, _: i64| {
                assert!(*e != 5, "five");
                t.add(*e)
            }
        })
        .on_panic(PanicPolicy::LogAndContinue),
    );
    let (mut p, d) = graph.start().unwrap();
    for i in 0..50u64 {
        p.publish(|e| *e = i).unwrap();
    }
    drop(p);
    let report = d.join();
    assert_eq!(report.panics.len(), 1);
    assert_eq!(tally.count(), 49);
    assert_eq!(tally.sum(), (0..50).sum::<u64>() - 5);
}

#[test]
fn a_panicking_factory_halts_instead_of_stalling() {
    let mut graph = Disruptor::builder(4, || 0u64).single_producer().unwrap();
    graph.handle_events_with(Stage::with_factory(|| -> fn(&u64, i64, bool) {
        panic!("cannot build handler")
    }));
    let (mut p, d) = graph.start().unwrap();
    let outcome = (0..100)
        .map(|_| p.publish_timeout(Duration::from_secs(30), |_| {}))
        .find(|r| r.is_err());
    assert_eq!(outcome, Some(Err(PublishError::Closed)));
    let report = d.join();
    assert!(report.halted);
    assert_eq!(report.panics[0].message, "cannot build handler");
}
