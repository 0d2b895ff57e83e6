//! Idle cost: how much CPU a consumer burns while nothing is published.

use crate::stats::process_cpu_time;
use gyre_ringbuffer::{BlockingWait, Disruptor, Stage};
use std::time::{Duration, Instant};

/// Percent of one core the whole process uses over `window` while a
/// `BlockingWait` consumer (started, having handled one event) sits idle.
pub fn gyre_blocking(window: Duration) -> f64 {
    let mut graph = Disruptor::builder(super::CAPACITY, || 0u64)
        .wait_strategy(BlockingWait::new())
        .single_producer()
        .expect("graph");
    graph.handle_events_with(Stage::new(|e: &u64, _: i64, _: bool| {
        std::hint::black_box(e);
    }));
    let (mut producer, disruptor) = graph.start().expect("start");
    producer.publish(|e| *e = 1).expect("publish");
    std::thread::sleep(Duration::from_millis(100));
    let cpu_before = process_cpu_time();
    let wall = Instant::now();
    std::thread::sleep(window);
    let used = process_cpu_time() - cpu_before;
    let percent = used.as_secs_f64() / wall.elapsed().as_secs_f64() * 100.0;
    drop(producer);
    disruptor.join();
    percent
}
