//! Criterion benches for the ring cases, beside the `ring` harness binary.
//! Every call runs at least 16 M events (64 M batched), so thread start-up
//! and the first lap of the ring, where a producer runs ahead of a consumer
//! that has not started yet, do not dominate: short calls measure that burst,
//! not the steady state.
//! Each iteration batch runs one whole case (`iters` events through a fresh
//! graph), so the setup cost is spread over the events and the same code as
//! the harness is measured.
//!
//! ```text
//! cargo bench -p gyre-benches --bench ring
//! ```

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gyre_benches::ring::{channels, disruptor_crate, gyre, pingpong, BATCH};
use std::time::Duration;

/// Run `case` with at least `min` events, so thread start-up is amortised.
fn events(iters: u64, min: u64, case: impl Fn(u64) -> Duration) -> Duration {
    let n = iters.max(min);
    case(n).mul_f64(iters as f64 / n as f64)
}

fn one_to_one(c: &mut Criterion) {
    let mut group = c.benchmark_group("1p1c-single");
    group.throughput(Throughput::Elements(1));
    group.bench_function("gyre", |b| {
        b.iter_custom(|i| events(i, 1 << 24, |n| gyre::one_to_one(n, 1)))
    });
    group.bench_function("disruptor", |b| {
        b.iter_custom(|i| events(i, 1 << 24, |n| disruptor_crate::one_to_one(n, 1)))
    });
    group.bench_function("crossbeam", |b| {
        b.iter_custom(|i| events(i, 1 << 24, channels::crossbeam_one_to_one))
    });
    group.bench_function("sync_channel", |b| {
        b.iter_custom(|i| events(i, 1 << 24, channels::std_one_to_one))
    });
    group.finish();

    let mut group = c.benchmark_group("1p1c-batch64");
    group.throughput(Throughput::Elements(1));
    group.bench_function("gyre", |b| {
        b.iter_custom(|i| events(i, 1 << 26, |n| gyre::one_to_one(n, BATCH)))
    });
    group.bench_function("disruptor", |b| {
        b.iter_custom(|i| events(i, 1 << 26, |n| disruptor_crate::one_to_one(n, BATCH)))
    });
    group.finish();
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("3p1c-yielding");
    group.throughput(Throughput::Elements(1));
    group.bench_function("gyre", |b| {
        b.iter_custom(|i| events(i, 1 << 24, |n| gyre::three_to_one(n, gyre::yielding())))
    });
    group.bench_function("crossbeam", |b| {
        b.iter_custom(|i| events(i, 1 << 24, channels::crossbeam_three_to_one))
    });
    group.finish();

    let mut group = c.benchmark_group("pipeline3-yielding");
    group.throughput(Throughput::Elements(1));
    group.bench_function("gyre", |b| {
        b.iter_custom(|i| events(i, 1 << 24, |n| gyre::pipeline(n, gyre::yielding())))
    });
    group.bench_function("crossbeam", |b| {
        b.iter_custom(|i| events(i, 1 << 24, channels::crossbeam_pipeline))
    });
    group.finish();
}

/// Mean round trip: each call times at least 100 k trips (plus the warm-up
/// and thread start-up, amortised over them). The harness reports the
/// percentiles; criterion gives the mean with its confidence interval.
fn round_trips(c: &mut Criterion) {
    let timed = |iters: u64, case: fn(u64) -> hdrhistogram::Histogram<u64>| {
        let n = iters.max(100_000);
        let start = std::time::Instant::now();
        case(n);
        start.elapsed().mul_f64(iters as f64 / n as f64)
    };
    let mut group = c.benchmark_group("pingpong");
    group.bench_function("gyre", |b| b.iter_custom(|i| timed(i, pingpong::gyre)));
    group.bench_function("disruptor", |b| {
        b.iter_custom(|i| timed(i, pingpong::disruptor_crate))
    });
    group.bench_function("crossbeam", |b| {
        b.iter_custom(|i| timed(i, pingpong::crossbeam))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(3));
    targets = one_to_one, contended, round_trips
}
criterion_main!(benches);
