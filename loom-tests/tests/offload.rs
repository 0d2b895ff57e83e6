//! Loom models of the offload stage's cross-thread paths, with the real
//! parts: the multi-producer ring the stage publishes into, an owner stage
//! or owner pool moving each request out of its slot, the channel's
//! mailbox and the loop's doorbell carrying the answers back (the loop
//! model of `gyre_loom_tests::event_loop`), and the arrival-order
//! sequencer the reorderer runs on the loop.
//!
//! The loop never blocks while it holds a request the full ring had no
//! room for: it goes on serving (draining answers) and tries again on its
//! retry timer, modelled as a yield. Once nothing is held it sleeps until
//! an answer wakes it. So a lost wake-up (of the business threads by the
//! ring, or of the loop by the doorbell) shows up as a deadlock; a request
//! lost, published twice or answered twice as a failed count; an answer
//! out of its request's turn as a failed order.

#![cfg(loom)]

use gyre_loom_tests::event_loop::Loop;
use gyre_loom_tests::model;
use gyre_reactor::ArrivalOrder;
use gyre_ringbuffer::{BlockingWait, Disruptor, MultiProducer, PublishError, Stage};
use loom::sync::Arc;

/// The loop's side: publish `requests` requests in turn, holding one the full
/// ring has no room for and retrying on the timer (draining answers in
/// between), then sleep until every answer is in. Returns the answers in
/// the order the arrival sequencer lets them go to the socket.
fn serve(
    lp: &Loop,
    producer: &mut MultiProducer<Option<u64>, BlockingWait>,
    requests: u64,
) -> Vec<u64> {
    let mut got = Vec::new();
    let mut next = 0;
    while next < requests {
        match producer.try_publish(|slot| *slot = Some(next)) {
            Ok(_) => next += 1,
            Err(PublishError::Full) => {
                lp.drain(&mut got);
                loom::thread::yield_now();
            }
            Err(e) => panic!("the ring refused request {next}: {e}"),
        }
    }
    lp.run_until(&mut got, requests as usize);
    assert_eq!(got.len(), requests as usize, "an answer came twice");
    let mut order = ArrivalOrder::default();
    let mut socket = Vec::new();
    for (_channel, answer) in got {
        order.take(answer, Some(answer), |a| socket.push(a));
    }
    socket
}

/// The business handler: moves the request out of its slot and answers it
/// (with its own number) on channel 0.
fn answer(answers: &Loop, slot: &mut Option<u64>) {
    let request = slot.take().expect("a request taken twice");
    answers.send(0, request);
}

/// Three requests through a ring of two, answered by one business stage
/// (the LMAX shape): the third finds the ring full unless the stage has
/// already freed a slot.
#[test]
fn a_full_ring_holds_and_retries_and_every_answer_comes_back() {
    model(|| {
        let lp = Arc::new(Loop::new(1));
        let answers = lp.clone();
        let graph = Disruptor::builder(2, || None::<u64>)
            .wait_strategy(BlockingWait::new())
            .multi_producer()
            .unwrap();
        let graph = graph.then_owner(Stage::owner(move |slot: &mut Option<u64>, _, _| {
            answer(&answers, slot)
        }));
        let (mut producer, disruptor) = graph.start().unwrap();
        let socket = serve(&lp, &mut producer, 3);
        assert_eq!(socket, [0, 1, 2]);
        drop(producer);
        assert_eq!(disruptor.join().processed, 3);
    });
}

/// Two requests taken by two workers, whose answers may come back in
/// either order. (The full ring with a pool is the first model's path with
/// a second consumer: three requests through a pool take loom 15 minutes.)
#[test]
fn answers_from_a_pool_reach_the_socket_in_arrival_order() {
    model(|| {
        let lp = Arc::new(Loop::new(1));
        let answers = lp.clone();
        let graph = Disruptor::builder(2, || None::<u64>)
            .wait_strategy(BlockingWait::new())
            .multi_producer()
            .unwrap();
        let graph = graph.then_owner(Stage::owner_pool_with_factory(2, move |_worker| {
            let answers = answers.clone();
            move |slot: &mut Option<u64>, _| answer(&answers, slot)
        }));
        let (mut producer, disruptor) = graph.start().unwrap();
        let socket = serve(&lp, &mut producer, 2);
        assert_eq!(socket, [0, 1]);
        drop(producer);
        assert_eq!(disruptor.join().processed, 2);
    });
}
