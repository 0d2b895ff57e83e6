//! The producer API: try, batch, timeout, capacity, closing, and a panicking
//! fill closure.

use gyre_ringbuffer::{Disruptor, PollState, PublishError};
use std::time::{Duration, Instant};

#[test]
fn try_publish_fails_when_full_and_succeeds_after_a_poll() {
    let mut graph = Disruptor::builder(4, || 0u64).single_producer().unwrap();
    let (_, mut poller) = graph.poller(&[]).unwrap();
    let (mut producer, _d) = graph.start().unwrap();
    assert_eq!(producer.capacity(), 4);
    assert_eq!(producer.remaining_capacity(), 4);
    for i in 0..4 {
        assert_eq!(producer.try_publish(|e| *e = i), Ok(i as i64));
    }
    assert_eq!(producer.remaining_capacity(), 0);
    let mut called = false;
    assert_eq!(
        producer.try_publish(|_| called = true),
        Err(PublishError::Full)
    );
    assert!(!called, "the closure must not run when nothing was claimed");
    assert_eq!(
        producer.try_batch_publish(1, |_, _| {}),
        Err(PublishError::Full)
    );
    let mut seen = Vec::new();
    assert_eq!(
        poller.poll(|e, _, _| {
            seen.push(*e);
            seen.len() < 2
        }),
        PollState::Processing
    );
    assert_eq!(seen, [0, 1]);
    assert_eq!(producer.remaining_capacity(), 2);
    assert_eq!(
        producer.try_batch_publish(2, |i, e| *e = 10 + i as u64),
        Ok(5)
    );
    assert_eq!(producer.try_publish(|_| {}), Err(PublishError::Full));
    let mut rest = Vec::new();
    poller.poll(|e, _, _| {
        rest.push(*e);
        true
    });
    assert_eq!(rest, [2, 3, 10, 11]);
}

#[test]
fn multi_producer_try_publish_fails_when_full() {
    let mut graph = Disruptor::builder(2, || 0u64).multi_producer().unwrap();
    let (_, mut poller) = graph.poller(&[]).unwrap();
    let (mut producer, _d) = graph.start().unwrap();
    let mut second = producer.clone();
    assert_eq!(producer.try_publish(|e| *e = 1), Ok(0));
    assert_eq!(second.try_publish(|e| *e = 2), Ok(1));
    assert_eq!(producer.try_publish(|_| {}), Err(PublishError::Full));
    assert_eq!(second.remaining_capacity(), 0);
    let mut seen = Vec::new();
    poller.poll(|e, _, _| {
        seen.push(*e);
        true
    });
    assert_eq!(seen, [1, 2]);
    assert_eq!(second.remaining_capacity(), 2);
    assert_eq!(second.try_batch_publish(2, |i, e| *e = i as u64), Ok(3));
}

#[test]
fn publish_timeout_gives_up_on_a_full_ring() {
    for multi in [false, true] {
        let timeout = Duration::from_millis(50);
        let started = Instant::now();
        let result = if multi {
            let mut graph = Disruptor::builder(2, || 0u64).multi_producer().unwrap();
            let _poller = graph.poller(&[]).unwrap();
            let (mut p, _d) = graph.start().unwrap();
            p.batch_publish(2, |_, _| {}).unwrap();
            (
                p.publish_timeout(timeout, |_| {}),
                p.batch_publish_timeout(1, timeout, |_, _| {}),
            )
        } else {
            let mut graph = Disruptor::builder(2, || 0u64).single_producer().unwrap();
            let _poller = graph.poller(&[]).unwrap();
            let (mut p, _d) = graph.start().unwrap();
            p.batch_publish(2, |_, _| {}).unwrap();
            (
                p.publish_timeout(timeout, |_| {}),
                p.batch_publish_timeout(1, timeout, |_, _| {}),
            )
        };
        assert_eq!(
            result,
            (Err(PublishError::TimedOut), Err(PublishError::TimedOut))
        );
        assert!(started.elapsed() >= timeout * 2);
    }
}

#[test]
fn publish_timeout_succeeds_when_room_appears() {
    let mut graph = Disruptor::builder(2, || 0u64).single_producer().unwrap();
    let (_, mut poller) = graph.poller(&[]).unwrap();
    let (mut p, _d) = graph.start().unwrap();
    p.batch_publish(2, |i, e| *e = i as u64).unwrap();
    let consumer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let mut n = 0;
        while n < 3 {
            poller.poll(|_, _, _| {
                n += 1;
                true
            });
        }
    });
    assert_eq!(
        p.publish_timeout(Duration::from_secs(30), |e| *e = 9),
        Ok(2)
    );
    consumer.join().unwrap();
}

#[test]
fn batch_sizes_are_checked() {
    let mut graph = Disruptor::builder(4, || 0u64).single_producer().unwrap();
    let _poller = graph.poller(&[]).unwrap();
    let (mut p, _d) = graph.start().unwrap();
    assert_eq!(
        p.batch_publish(0, |_, _| {}),
        Err(PublishError::BadBatchSize(0))
    );
    assert_eq!(
        p.batch_publish(5, |_, _| {}),
        Err(PublishError::BadBatchSize(5))
    );
    assert_eq!(
        p.try_batch_publish(5, |_, _| {}),
        Err(PublishError::BadBatchSize(5))
    );
    assert_eq!(p.batch_publish(4, |_, _| {}), Ok(3));
}

#[test]
fn publishing_after_shutdown_is_an_error() {
    let mut graph = Disruptor::builder(8, || 0u64).multi_producer().unwrap();
    graph.handle_events_with(gyre_ringbuffer::Stage::new(|_: &u64, _: i64, _: bool| {}));
    let (mut p, d) = graph.start().unwrap();
    p.publish(|e| *e = 1).unwrap();
    let report = d.shutdown();
    assert_eq!(
        (report.published, report.processed, report.unprocessed),
        (1, 1, 0)
    );
    assert!(p.is_closed());
    assert_eq!(p.publish(|_| {}), Err(PublishError::Closed));
    assert_eq!(p.try_publish(|_| {}), Err(PublishError::Closed));
    assert_eq!(
        p.publish_timeout(Duration::from_millis(1), |_| {}),
        Err(PublishError::Closed)
    );
}

#[test]
fn a_panicking_fill_still_publishes_the_slot() {
    let mut graph = Disruptor::builder(4, || 0u64).single_producer().unwrap();
    let (_, mut poller) = graph.poller(&[]).unwrap();
    let (mut p, _d) = graph.start().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.publish(|e| {
            *e = 5;
            panic!("fill failed");
        })
    }));
    assert!(r.is_err());
    p.publish(|e| *e = 6).unwrap();
    let mut seen = Vec::new();
    poller.poll(|e, s, _| {
        seen.push((s, *e));
        true
    });
    // Consumers must never stall on a claimed-but-unpublished slot.
    assert_eq!(seen, [(0, 5), (1, 6)]);
}
