//! One-way latency of a paced stream: a producer publishes bursts of
//! events with a gap between bursts, each event carrying the time it was
//! published, and the consumer records how long each took to reach it.
//!
//! Ping-pong (`pingpong.rs`) shows one event at a time; this shows what a
//! consumer's waiting costs when events come in runs: the first event of a
//! burst finds the consumer idle, the rest find it busy or caught up. Both
//! rings use busy-spin waits; both events are a `u64` timestamp, in ns
//! since a shared start.

use super::CAPACITY;
use hdrhistogram::Histogram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Marks the last event: the consumer hands its histogram over on it.
const LAST: u64 = u64::MAX;

/// How long the stream runs before its events are recorded: long enough
/// for the kernel to have placed the two spinning threads on CPUs of their
/// own, besides warming caches and predictors. A new consumer thread was
/// sometimes put on the producer's CPU, where the two shared it in 4 ms
/// slices until the load balancer moved one, about 40 ms later (seen with
/// `perf sched timehist`); with a warm-up of 1,000 bursts (0.3 ms of the
/// `1x300ns` stream, 20 ms of `64x20us`) that stretch was measured, and
/// which case drew it followed the order the cases ran in, not the ring
/// (BENCHMARKS.md, issue 22, thirtieth session).
const WARMUP: Duration = Duration::from_millis(250);

/// Bursts of `pace` in [`WARMUP`].
fn warmup_bursts(pace: Pace) -> u64 {
    (WARMUP.as_nanos() / pace.gap.as_nanos().max(1)) as u64
}

/// A traffic shape: `burst` events back to back, then `gap` of nothing.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Events published back to back.
    pub burst: u64,
    /// Time between the starts of two bursts.
    pub gap: Duration,
}

/// The consumer's side: records every event's age, hands the histogram
/// over on [`LAST`].
fn recorder(
    start: Instant,
    out: Arc<Mutex<Option<Histogram<u64>>>>,
    skip: u64,
) -> impl FnMut(u64) + Send + 'static {
    let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds");
    let mut seen = 0u64;
    move |stamp| {
        if stamp == LAST {
            *out.lock().expect("histogram") = Some(std::mem::replace(
                &mut h,
                Histogram::new(1).expect("histogram"),
            ));
            return;
        }
        let now = start.elapsed().as_nanos() as u64;
        seen += 1;
        if seen > skip {
            h.saturating_record(now.saturating_sub(stamp));
        }
    }
}

/// The producer's side: `bursts` bursts of `pace.burst` events, each
/// stamped as it is published, then [`LAST`].
fn pace_out(start: Instant, pace: Pace, bursts: u64, mut publish: impl FnMut(u64)) {
    let mut next = Instant::now();
    for _ in 0..bursts {
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        next += pace.gap;
        for _ in 0..pace.burst {
            publish(start.elapsed().as_nanos() as u64);
        }
    }
    publish(LAST);
}

/// Gyre: a busy-spin single-producer ring and one stage.
pub fn gyre(pace: Pace, bursts: u64) -> Histogram<u64> {
    use gyre_ringbuffer::{BusySpinWait, Disruptor, Stage};
    let start = Instant::now();
    let out = Arc::new(Mutex::new(None));
    let mut graph = Disruptor::builder(CAPACITY, || 0u64)
        .wait_strategy(BusySpinWait)
        .single_producer()
        .expect("graph");
    let warmup = warmup_bursts(pace);
    let mut record = recorder(start, out.clone(), warmup * pace.burst);
    graph.handle_events_with(Stage::new(move |e: &u64, _: i64, _: bool| record(*e)));
    let (mut producer, disruptor) = graph.start().expect("start");
    pace_out(start, pace, warmup + bursts, |stamp| {
        producer.publish(|e| *e = stamp).expect("publish");
    });
    drop(producer);
    disruptor.join();
    let h = out.lock().expect("histogram").take();
    h.expect("the consumer saw the last event")
}

/// The `disruptor` crate: the same shape, `BusySpinWithSpinLoopHint`.
pub fn disruptor_crate(pace: Pace, bursts: u64) -> Histogram<u64> {
    use disruptor::{build_single_producer, BusySpinWithSpinLoopHint, Producer as _, Sequence};
    let start = Instant::now();
    let out = Arc::new(Mutex::new(None));
    let warmup = warmup_bursts(pace);
    let mut record = recorder(start, out.clone(), warmup * pace.burst);
    let mut producer = build_single_producer(CAPACITY, || 0u64, BusySpinWithSpinLoopHint)
        .handle_events_with(move |e: &u64, _: Sequence, _: bool| record(*e))
        .build();
    pace_out(start, pace, warmup + bursts, |stamp| {
        producer.publish(|e| *e = stamp);
    });
    drop(producer); // joins the consumer after it has seen every event
    let h = out.lock().expect("histogram").take();
    h.expect("the consumer saw the last event")
}
