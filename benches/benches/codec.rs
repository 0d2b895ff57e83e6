//! Criterion benches for the codec cases, beside the `codec` harness binary:
//! the same inputs (16 MiB here) through the same functions.
//!
//! ```text
//! cargo bench -p gyre-benches --bench codec
//! ```

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gyre_benches::codec;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let total = 16 << 20;
    let inputs = [
        ("lines-64B", codec::lines(total, 64)),
        ("length-16-64B", codec::length_prefixed(total, 16, 64)),
        ("length-16B-4KiB", codec::length_prefixed(total, 16, 4096)),
    ];
    for (name, input) in &inputs {
        let mut group = c.benchmark_group(*name);
        group.throughput(Throughput::Bytes(input.len() as u64));
        let cases: Vec<(&str, codec::Case)> = if name.starts_with("lines") {
            vec![
                ("gyre", codec::gyre_lines),
                ("LinesCodec", codec::tokio_lines),
                ("AnyDelimiterCodec", codec::tokio_any_delimiter),
            ]
        } else {
            vec![
                ("gyre", codec::gyre_length),
                ("LengthDelimitedCodec", codec::tokio_length),
            ]
        };
        for (label, case) in cases {
            group.bench_function(label, |b| {
                b.iter_custom(|iters| (0..iters).map(|_| case(input).0).sum())
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
