use gyre_benches::ring::{disruptor_crate, gyre, BATCH};
fn main() {
    let n: u64 = 100_000_000;
    for _ in 0..8 {
        let g = gyre::one_to_one(n, BATCH);
        let d = disruptor_crate::one_to_one(n, BATCH);
        println!(
            "gyre {:6.1}  disruptor {:6.1}  M/s",
            n as f64 / g.as_secs_f64() / 1e6,
            n as f64 / d.as_secs_f64() / 1e6
        );
    }
}
