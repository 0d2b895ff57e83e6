//! Gyre's side of the ring cases.

use super::{check, share, BATCH, CAPACITY};
use gyre_ringbuffer::{
    BusySpinWait, Disruptor, PhasedBackoffWait, SleepingWait, Stage, WaitStrategy, YieldingWait,
};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A last stage that sums what it sees and reports the sum at the end.
fn summing_stage(out: Arc<AtomicU64>) -> Stage<impl gyre_ringbuffer::StageKind<u64>> {
    Stage::with_factory(move || {
        let mut sum = 0u64;
        move |e: &u64, _: i64, end: bool| {
            sum = sum.wrapping_add(*e);
            if end {
                out.store(sum, Relaxed);
            }
        }
    })
}

/// One producer, one consumer, busy-spin; `batch` events per claim (1 = single publish).
pub fn one_to_one(n: u64, batch: usize) -> Duration {
    let graph = Disruptor::builder(CAPACITY, || 0u64)
        .wait_strategy(BusySpinWait)
        .single_producer()
        .expect("graph");
    one_to_one_on(graph, n, batch)
}

/// [`one_to_one`] with the multi-producer sequencer (one producer still):
/// what the offload stage's one ring fed by every loop costs a loop, against
/// a ring of its own.
pub fn one_to_one_multi(n: u64, batch: usize) -> Duration {
    let graph = Disruptor::builder(CAPACITY, || 0u64)
        .wait_strategy(BusySpinWait)
        .multi_producer()
        .expect("graph");
    one_to_one_on(graph, n, batch)
}

fn one_to_one_on<C: gyre_ringbuffer::Sequencer>(
    mut graph: gyre_ringbuffer::Graph<u64, BusySpinWait, C>,
    n: u64,
    batch: usize,
) -> Duration {
    let sum = Arc::new(AtomicU64::new(0));
    graph.handle_events_with(summing_stage(sum.clone()));
    let (mut producer, disruptor) = graph.start().expect("start");
    let start = Instant::now();
    if batch == 1 {
        for i in 0..n {
            producer.publish(|e| *e = i).expect("publish");
        }
    } else {
        let mut i = 0;
        while i < n {
            let k = BATCH.min((n - i) as usize);
            producer
                .batch_publish(k, |j, e| *e = i + j as u64)
                .expect("publish");
            i += k as u64;
        }
    }
    drop(producer);
    disruptor.join();
    let elapsed = start.elapsed();
    check("gyre 1p1c", n, sum.load(Relaxed));
    elapsed
}

/// Three producers into one consumer.
pub fn three_to_one<W: WaitStrategy>(n: u64, wait: W) -> Duration {
    let sum = Arc::new(AtomicU64::new(0));
    let mut graph = Disruptor::builder(CAPACITY, || 0u64)
        .wait_strategy(wait)
        .multi_producer()
        .expect("graph");
    graph.handle_events_with(summing_stage(sum.clone()));
    let (producer, disruptor) = graph.start().expect("start");
    let start = Instant::now();
    let threads: Vec<_> = (0..3)
        .map(|p| {
            let mut producer = producer.clone();
            std::thread::spawn(move || {
                for v in share(n, 3, p) {
                    producer.publish(|e| *e = v).expect("publish");
                }
            })
        })
        .collect();
    drop(producer);
    for t in threads {
        t.join().expect("producer");
    }
    disruptor.join();
    let elapsed = start.elapsed();
    check("gyre 3p1c", n, sum.load(Relaxed));
    elapsed
}

/// One producer into a three-stage pipeline (each stage after the last).
pub fn pipeline<W: WaitStrategy>(n: u64, wait: W) -> Duration {
    let sum = Arc::new(AtomicU64::new(0));
    let mut graph = Disruptor::builder(CAPACITY, || 0u64)
        .wait_strategy(wait)
        .single_producer()
        .expect("graph");
    graph
        .handle_events_with(Stage::new(|e: &u64, _: i64, _: bool| {
            std::hint::black_box(e);
        }))
        .then(Stage::new(|e: &u64, _: i64, _: bool| {
            std::hint::black_box(e);
        }))
        .then(summing_stage(sum.clone()));
    let (mut producer, disruptor) = graph.start().expect("start");
    let start = Instant::now();
    for i in 0..n {
        producer.publish(|e| *e = i).expect("publish");
    }
    drop(producer);
    disruptor.join();
    let elapsed = start.elapsed();
    check("gyre pipeline", n, sum.load(Relaxed));
    elapsed
}

/// The default wait strategy for cases with more threads than cores.
pub fn yielding() -> YieldingWait {
    YieldingWait::default()
}

/// Spin 2 µs, yield 2 µs, then block: `PhasedBackoffWait` short enough
/// that a waiting consumer soon gives its core back.
pub fn phased() -> PhasedBackoffWait {
    PhasedBackoffWait::new(Duration::from_micros(2), Duration::from_micros(2))
}

/// Spin 64 looks, then sleep 50 µs between looks, never yield: the
/// `3p1c-sleeping` case's strategy.
pub fn sleeping() -> SleepingWait {
    SleepingWait::with_phases(64, 0, Duration::from_micros(50))
}
