//! A consumer that fell behind takes the backlog `max_batch` events at a
//! time, on both sequencers and through a poller, and sees every event.

use gyre_ringbuffer::{Disruptor, PollState, Stage, YieldingWait};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex};

const CAPACITY: usize = 256;
const MAX_BATCH: usize = 32;

/// Runs a ring whose one stage holds its first event until the producers
/// have filled the ring behind it, then lets it go; returns the sizes of
/// the batches the stage saw and the sum of the events.
fn batches_after_a_full_ring(multi: bool) -> (Vec<usize>, u64) {
    let (release, held) = mpsc::channel::<()>();
    let held = Mutex::new(Some(held));
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let sum = Arc::new(AtomicU64::new(0));
    let (s, total) = (sizes.clone(), sum.clone());
    let stage = Stage::with_factory(move || {
        let held = held.lock().unwrap().take();
        let (s, total) = (s.clone(), total.clone());
        let mut pending = 0;
        move |e: &u64, _: i64, end: bool| {
            if let Some(held) = &held {
                if pending == 0 && s.lock().unwrap().is_empty() {
                    held.recv().unwrap();
                }
            }
            total.fetch_add(*e, Relaxed);
            pending += 1;
            if end {
                s.lock().unwrap().push(pending);
                pending = 0;
            }
        }
    });
    let builder = Disruptor::builder(CAPACITY, || 0u64)
        .wait_strategy(YieldingWait::default())
        .max_batch(MAX_BATCH);
    // Enough events to fill the ring behind the held one, then more.
    let n = CAPACITY as u64 * 3;
    if multi {
        let mut graph = builder.multi_producer().unwrap();
        graph.handle_events_with(stage);
        let (producer, disruptor) = graph.start().unwrap();
        let threads: Vec<_> = (0..2)
            .map(|p| {
                let mut producer = producer.clone();
                std::thread::spawn(move || {
                    for v in (p..n).step_by(2) {
                        producer.publish(|e| *e = v).unwrap();
                    }
                })
            })
            .collect();
        drop(producer);
        fill_then_release(&release);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(disruptor.join().processed, n);
    } else {
        let mut graph = builder.single_producer().unwrap();
        graph.handle_events_with(stage);
        let (mut producer, disruptor) = graph.start().unwrap();
        let thread = std::thread::spawn(move || {
            for v in 0..n {
                producer.publish(|e| *e = v).unwrap();
            }
        });
        fill_then_release(&release);
        thread.join().unwrap();
        assert_eq!(disruptor.join().processed, n);
    }
    let sizes = sizes.lock().unwrap().clone();
    (sizes, sum.load(Relaxed))
}

/// Gives the producers time to fill the ring behind the held event (they
/// need microseconds), then lets the stage go.
fn fill_then_release(release: &mpsc::Sender<()>) {
    std::thread::sleep(std::time::Duration::from_millis(200));
    release.send(()).unwrap();
}

fn check(multi: bool) {
    let (sizes, sum) = batches_after_a_full_ring(multi);
    let n = CAPACITY as u64 * 3;
    assert_eq!(sum, n * (n - 1) / 2, "every event, once");
    assert_eq!(sizes.iter().sum::<usize>() as u64, n);
    let largest = *sizes.iter().max().unwrap();
    assert!(
        largest <= MAX_BATCH,
        "a batch of {largest} events, above max_batch {MAX_BATCH}: {sizes:?}"
    );
    // The backlog was a whole ring: it came in full batches.
    assert!(
        sizes.iter().filter(|s| **s == MAX_BATCH).count() >= CAPACITY / MAX_BATCH - 1,
        "{sizes:?}"
    );
}

#[test]
fn one_producer_the_backlog_comes_max_batch_at_a_time() {
    check(false);
}

#[test]
fn several_producers_the_backlog_comes_max_batch_at_a_time() {
    check(true);
}

#[test]
fn a_poll_hands_out_at_most_max_batch_events() {
    for multi in [false, true] {
        let builder = Disruptor::builder(CAPACITY, || 0u64).max_batch(MAX_BATCH);
        let seen = AtomicU64::new(0);
        let poll_all = |poller: &mut gyre_ringbuffer::EventPoller<u64>| {
            let mut polls = Vec::new();
            loop {
                let mut got = 0;
                let state = poller.poll(|e, _, _| {
                    seen.fetch_add(*e, Relaxed);
                    got += 1;
                    true
                });
                if state != PollState::Processing {
                    break polls;
                }
                polls.push(got);
            }
        };
        let polls = if multi {
            let mut graph = builder.multi_producer().unwrap();
            let (_, mut poller) = graph.poller(&[]).unwrap();
            let (mut producer, _disruptor) = graph.start().unwrap();
            producer.batch_publish(100, |i, e| *e = i as u64).unwrap();
            poll_all(&mut poller)
        } else {
            let mut graph = builder.single_producer().unwrap();
            let (_, mut poller) = graph.poller(&[]).unwrap();
            let (mut producer, _disruptor) = graph.start().unwrap();
            producer.batch_publish(100, |i, e| *e = i as u64).unwrap();
            poll_all(&mut poller)
        };
        assert_eq!(polls, [32, 32, 32, 4], "multi: {multi}");
        assert_eq!(seen.load(Relaxed), 99 * 100 / 2);
    }
}
