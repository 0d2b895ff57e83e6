//! Ping-pong round trips between two threads: thread A publishes into ring
//! 1, thread B's handler echoes the value into ring 2, A waits for the echo.
//! Each round trip is timed and recorded in an HdrHistogram (ns).

use super::CAPACITY;
use hdrhistogram::Histogram;
use std::time::Instant;

/// Round trips not recorded, to warm caches and branch predictors.
pub const WARMUP: u64 = 10_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

fn record(h: &mut Histogram<u64>, i: u64, started: Instant) {
    if i >= WARMUP {
        h.saturating_record(started.elapsed().as_nanos() as u64);
    }
}

/// Gyre: busy-spin stage echoes into a second ring, read with a poller.
pub fn gyre(iters: u64) -> Histogram<u64> {
    use gyre_ringbuffer::{BusySpinWait, Disruptor, PollState, Stage};
    let mut pong_graph = Disruptor::builder(CAPACITY, || 0u64)
        .wait_strategy(BusySpinWait)
        .single_producer()
        .expect("graph");
    let (_, mut pong) = pong_graph.poller(&[]).expect("poller");
    let (mut echo, _pong_disruptor) = pong_graph.start().expect("start");
    let mut ping_graph = Disruptor::builder(CAPACITY, || 0u64)
        .wait_strategy(BusySpinWait)
        .single_producer()
        .expect("graph");
    ping_graph.handle_events_with(Stage::new(move |e: &u64, _: i64, _: bool| {
        echo.publish(|x| *x = *e).expect("echo");
    }));
    let (mut ping, ping_disruptor) = ping_graph.start().expect("start");
    let mut h = histogram();
    for i in 0..WARMUP + iters {
        let started = Instant::now();
        ping.publish(|e| *e = i).expect("publish");
        let mut echoed = None;
        while echoed.is_none() {
            if pong.poll(|e, _, _| {
                echoed = Some(*e);
                true
            }) != PollState::Processing
            {
                std::hint::spin_loop();
            }
        }
        record(&mut h, i, started);
        assert_eq!(echoed, Some(i));
    }
    drop(ping);
    ping_disruptor.join();
    h
}

/// The `disruptor` crate: the same shape with its poller API.
pub fn disruptor_crate(iters: u64) -> Histogram<u64> {
    use disruptor::{build_single_producer, BusySpinWithSpinLoopHint, Producer as _, Sequence};
    let (mut pong, builder) =
        build_single_producer(CAPACITY, || 0u64, BusySpinWithSpinLoopHint).new_event_poller();
    let mut echo = builder.build();
    let mut ping = build_single_producer(CAPACITY, || 0u64, BusySpinWithSpinLoopHint)
        .handle_events_with(move |e: &u64, _: Sequence, _: bool| echo.publish(|x| *x = *e))
        .build();
    let mut h = histogram();
    for i in 0..WARMUP + iters {
        let started = Instant::now();
        ping.publish(|e| *e = i);
        let mut echoed = None;
        while echoed.is_none() {
            match pong.poll() {
                Ok(mut guard) => {
                    for e in &mut guard {
                        echoed = Some(*e);
                    }
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
        record(&mut h, i, started);
        assert_eq!(echoed, Some(i));
    }
    drop(ping);
    h
}

/// crossbeam-channel: two bounded channels and an echo thread.
pub fn crossbeam(iters: u64) -> Histogram<u64> {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let echo = std::thread::spawn(move || {
        for v in ping_rx {
            pong_tx.send(v).expect("echo");
        }
    });
    let mut h = histogram();
    for i in 0..WARMUP + iters {
        let started = Instant::now();
        ping_tx.send(i).expect("send");
        let echoed = pong_rx.recv().expect("recv");
        record(&mut h, i, started);
        assert_eq!(echoed, i);
    }
    drop(ping_tx);
    echo.join().expect("echo thread");
    h
}
