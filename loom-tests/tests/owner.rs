//! Loom models of the owner stage's hand-off (`Graph::then_owner`): the
//! owner gets an event mutably only after every other stage has read it,
//! and the producer refills a slot only after the owner is done with it.
//! The ring's slots are loom `UnsafeCell`s, so a `&mut` lent to the owner
//! while a shared stage or the producer still touches the slot is reported
//! as a race; a message taken before the shared stage saw it fails the
//! model's assertion; a lost or doubled event fails the counts.
#![cfg(loom)]

use gyre_loom_tests::model;
use gyre_ringbuffer::{BlockingWait, Disruptor, Stage};
use loom::sync::atomic::{AtomicU64, Ordering::Relaxed};
use loom::sync::Arc;

/// Three events through a ring of two, so the producer wraps onto a slot
/// the owner took from.
const EVENTS: u64 = 3;

#[test]
fn owner_takes_after_the_shared_stage_and_before_the_slot_is_refilled() {
    model(|| {
        let shared_sum = Arc::new(AtomicU64::new(0));
        let taken_sum = Arc::new(AtomicU64::new(0));
        let (seen, taken) = (shared_sum.clone(), taken_sum.clone());
        let mut graph = Disruptor::builder(2, || None::<u64>)
            .wait_strategy(BlockingWait::new())
            .single_producer()
            .unwrap();
        graph.handle_events_with(Stage::new(move |e: &Option<u64>, _: i64, _: bool| {
            let v = e.expect("the owner took the message before the shared stage read it");
            seen.fetch_add(v, Relaxed);
        }));
        let graph = graph.then_owner(Stage::owner(move |e: &mut Option<u64>, _: i64, _: bool| {
            let v = e.take().expect("a message taken twice");
            taken.fetch_add(v, Relaxed);
        }));
        let (mut producer, disruptor) = graph.start().unwrap();
        for i in 1..=EVENTS {
            producer.publish(|e| *e = Some(i)).unwrap();
        }
        drop(producer);
        assert_eq!(disruptor.join().processed, EVENTS);
        let expected = EVENTS * (EVENTS + 1) / 2;
        assert_eq!(shared_sum.load(Relaxed), expected);
        assert_eq!(taken_sum.load(Relaxed), expected);
    });
}

#[test]
fn owner_pool_workers_each_take_their_own_events() {
    model(|| {
        let taken = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let t = taken.clone();
        let graph = Disruptor::builder(2, || None::<u64>)
            .wait_strategy(BlockingWait::new())
            .single_producer()
            .unwrap();
        let graph = graph.then_owner(Stage::owner_pool_with_factory(2, move |_| {
            let t = t.clone();
            move |e: &mut Option<u64>, _: i64| {
                let v = e.take().expect("an event taken twice");
                t[v as usize].fetch_add(1, Relaxed);
            }
        }));
        let (mut producer, disruptor) = graph.start().unwrap();
        producer.publish(|e| *e = Some(0)).unwrap();
        producer.publish(|e| *e = Some(1)).unwrap();
        drop(producer);
        assert_eq!(disruptor.join().processed, 2);
        assert_eq!((taken[0].load(Relaxed), taken[1].load(Relaxed)), (1, 1));
    });
}
