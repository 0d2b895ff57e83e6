//! The `disruptor` crate (v4) as a peer. It offers busy-spin (with or
//! without a spin-loop hint) and sleeping waits; the cases use
//! `BusySpinWithSpinLoopHint`, the match for Gyre's `BusySpinWait`.

use super::{check, share, BATCH, CAPACITY};
use disruptor::{
    build_multi_producer, build_single_producer, BusySpinWithSpinLoopHint, Producer as _, Sequence,
};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn summer(out: Arc<AtomicU64>) -> impl FnMut(&u64, Sequence, bool) + Send + 'static {
    let mut sum = 0u64;
    move |e: &u64, _: Sequence, end: bool| {
        sum = sum.wrapping_add(*e);
        if end {
            out.store(sum, Relaxed);
        }
    }
}

/// One producer, one consumer; `batch` events per claim (1 = single publish).
pub fn one_to_one(n: u64, batch: usize) -> Duration {
    let sum = Arc::new(AtomicU64::new(0));
    let mut producer = build_single_producer(CAPACITY, || 0u64, BusySpinWithSpinLoopHint)
        .handle_events_with(summer(sum.clone()))
        .build();
    let start = Instant::now();
    if batch == 1 {
        for i in 0..n {
            producer.publish(|e| *e = i);
        }
    } else {
        let mut i = 0;
        while i < n {
            let k = BATCH.min((n - i) as usize);
            producer.batch_publish(k, |iter| {
                for (j, e) in iter.enumerate() {
                    *e = i + j as u64;
                }
            });
            i += k as u64;
        }
    }
    drop(producer); // joins the consumer after it has seen every event
    let elapsed = start.elapsed();
    check("disruptor 1p1c", n, sum.load(Relaxed));
    elapsed
}

/// Three producers into one consumer.
pub fn three_to_one(n: u64) -> Duration {
    let sum = Arc::new(AtomicU64::new(0));
    let producer = build_multi_producer(CAPACITY, || 0u64, BusySpinWithSpinLoopHint)
        .handle_events_with(summer(sum.clone()))
        .build();
    let start = Instant::now();
    let threads: Vec<_> = (0..3)
        .map(|p| {
            let mut producer = producer.clone();
            std::thread::spawn(move || {
                for v in share(n, 3, p) {
                    producer.publish(|e| *e = v);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("producer");
    }
    drop(producer);
    let elapsed = start.elapsed();
    check("disruptor 3p1c", n, sum.load(Relaxed));
    elapsed
}

/// One producer into a three-stage pipeline.
pub fn pipeline(n: u64) -> Duration {
    let sum = Arc::new(AtomicU64::new(0));
    let mut producer = build_single_producer(CAPACITY, || 0u64, BusySpinWithSpinLoopHint)
        .handle_events_with(|e: &u64, _: Sequence, _: bool| {
            std::hint::black_box(e);
        })
        .and_then()
        .handle_events_with(|e: &u64, _: Sequence, _: bool| {
            std::hint::black_box(e);
        })
        .and_then()
        .handle_events_with(summer(sum.clone()))
        .build();
    let start = Instant::now();
    for i in 0..n {
        producer.publish(|e| *e = i);
    }
    drop(producer);
    let elapsed = start.elapsed();
    check("disruptor pipeline", n, sum.load(Relaxed));
    elapsed
}
