//! Loom models of the sequencers: the single producer across wrap-around,
//! the multi-producer availability buffer (with wrap-around), `try_publish`
//! claims, and a consumer gated on another.
//!
//! Loom's `UnsafeCell` tracking turns any slot read that races a write (an
//! unpublished or overwritten slot) into a failure; the assertions catch
//! lost, duplicated or reordered events. A multi-producer ring's consumers
//! find what is published from the slots' lap marks alone, never the
//! cursor: a scan that took a claimed slot for a published one fails
//! `multi_producer_availability_across_wrap` (checked by breaking it). Consumers are real processor
//! threads on `BlockingWait` wherever a model has more than one thread that
//! would otherwise spin: a blocked thread is not runnable, which keeps
//! loom's search finite, while a spinning one multiplies it.
#![cfg(loom)]

use gyre_loom_tests::model;
use gyre_ringbuffer::{BlockingWait, Disruptor, EventPoller, PollState, Stage, WaitStrategy};
use loom::sync::atomic::{AtomicI64, Ordering::Relaxed};
use loom::thread;
use std::sync::{Arc as StdArc, Mutex as StdMutex};

/// Poll until `n` events have been seen; returns them as (sequence, value).
fn drain<W: WaitStrategy>(poller: &mut EventPoller<u64, W>, n: usize) -> Vec<(i64, u64)> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let state = poller.poll(|e, s, _| {
            seen.push((s, *e));
            true
        });
        assert_ne!(state, PollState::Closed);
        if state != PollState::Processing {
            thread::yield_now();
        }
    }
    seen
}

/// A stage that records what it sees. The record is test bookkeeping, read
/// only after the stage thread has joined, so a plain std mutex will do.
fn recorder() -> (
    StdArc<StdMutex<Vec<(i64, u64)>>>,
    Stage<impl gyre_ringbuffer::StageKind<u64>>,
) {
    let log = StdArc::new(StdMutex::new(Vec::new()));
    let l = log.clone();
    let stage = Stage::new(move |e: &u64, s: i64, _: bool| l.lock().unwrap().push((s, *e)));
    (log, stage)
}

#[test]
fn single_producer_wraps_around() {
    model(|| {
        let mut graph = Disruptor::builder(2, || 0u64).single_producer().unwrap();
        let (_, mut poller) = graph.poller(&[]).unwrap();
        let (mut producer, _disruptor) = graph.start().unwrap();
        let consumer = thread::spawn(move || drain(&mut poller, 3));
        for v in 10..13 {
            producer.publish(|e| *e = v).unwrap();
        }
        let seen = consumer.join().unwrap();
        assert_eq!(seen, [(0, 10), (1, 11), (2, 12)]);
    });
}

#[test]
fn multi_producer_availability_across_wrap() {
    model(|| {
        let (log, stage) = recorder();
        let mut graph = Disruptor::builder(2, || 0u64)
            .wait_strategy(BlockingWait::new())
            .multi_producer()
            .unwrap();
        graph.handle_events_with(stage);
        let (mut first, disruptor) = graph.start().unwrap();
        let mut second = first.clone();
        let other = thread::spawn(move || {
            second.publish(|e| *e = 200).unwrap();
        });
        first.publish(|e| *e = 100).unwrap();
        first.publish(|e| *e = 101).unwrap();
        drop(first);
        other.join().unwrap();
        let report = disruptor.join();
        assert_eq!(report.processed, 3);
        let seen = log.lock().unwrap().clone();
        // Sequences contiguous, each event exactly once, each producer's in order.
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1, 2]);
        let mut values: Vec<u64> = seen.iter().map(|s| s.1).collect();
        assert_eq!(
            values
                .iter()
                .copied()
                .filter(|v| *v < 200)
                .collect::<Vec<_>>(),
            [100, 101]
        );
        values.sort();
        assert_eq!(values, [100, 101, 200]);
    });
}

#[test]
fn multi_producer_try_publish_never_overclaims() {
    model(|| {
        let mut graph = Disruptor::builder(2, || 0u64).multi_producer().unwrap();
        let (_, mut poller) = graph.poller(&[]).unwrap();
        let (producer, _disruptor) = graph.start().unwrap();
        let mut first = producer.clone();
        let mut second = producer;
        let a = thread::spawn(move || {
            first
                .try_batch_publish(2, |i, e| *e = 10 + i as u64)
                .is_ok() as usize
                * 2
        });
        let b = thread::spawn(move || second.try_publish(|e| *e = 20).is_ok() as usize);
        let published = a.join().unwrap() + b.join().unwrap();
        // Capacity 2: both cannot succeed, and whatever succeeded is readable.
        assert!(published <= 2);
        let seen = drain(&mut poller, published);
        assert_eq!(seen.len(), published);
    });
}

#[test]
fn consumer_gated_on_another() {
    model(|| {
        let upstream_progress = loom::sync::Arc::new(AtomicI64::new(-1));
        let (up, down) = (upstream_progress.clone(), upstream_progress.clone());
        let (log, _) = recorder();
        let l = log.clone();
        let mut graph = Disruptor::builder(1, || 0u64)
            .wait_strategy(BlockingWait::new())
            .single_producer()
            .unwrap();
        graph
            .handle_events_with(Stage::new(move |_: &u64, s: i64, _: bool| {
                up.store(s, Relaxed)
            }))
            .then(Stage::new(move |e: &u64, s: i64, _: bool| {
                // The barrier's acquire of the upstream sequence makes the
                // upstream's earlier store visible here.
                assert!(down.load(Relaxed) >= s, "downstream overtook upstream");
                l.lock().unwrap().push((s, *e));
            }));
        // Producers gate only on the downstream leaf; loom checks that the
        // upstream stage's reads still never race the producer's writes.
        let (mut producer, disruptor) = graph.start().unwrap();
        producer.publish(|e| *e = 1).unwrap();
        producer.publish(|e| *e = 2).unwrap();
        drop(producer);
        assert_eq!(disruptor.join().processed, 2);
        assert_eq!(*log.lock().unwrap(), [(0, 1), (1, 2)]);
    });
}
