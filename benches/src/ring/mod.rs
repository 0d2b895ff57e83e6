//! Ring-buffer cases: Gyre against Java's LMAX Disruptor (a subprocess),
//! the `disruptor` crate (v4), `crossbeam-channel` and std's
//! `sync_channel`, same capacity, same event (a `u64`), same wait strategy
//! where the peer has it. `floor` is the least a ring of Gyre's protocol
//! does, a ruler for the 1p1c and 3p1c cases rather than a peer.
//!
//! Every throughput case returns the time from the first publish until the
//! consumer has seen the last event, and checks the consumer's checksum, so
//! a fast case that loses events fails instead of winning.

pub mod channels;
pub mod disruptor_crate;
pub mod floor;
pub mod gyre;
pub mod idle;
pub mod lmax_java;
pub mod paced;
pub mod pingpong;

/// Ring capacity for every case, Gyre's and the peers'.
pub const CAPACITY: usize = 65536;

/// Batch size of the batch-publish case.
pub const BATCH: usize = 64;

/// The sum of the events `0..n`, which every consumer must arrive at.
pub fn expected_sum(n: u64) -> u64 {
    n * (n.saturating_sub(1)) / 2
}

/// Panic unless a consumer's checksum is right.
pub fn check(case: &str, n: u64, sum: u64) {
    assert_eq!(
        sum,
        expected_sum(n),
        "{case}: consumer saw the wrong events"
    );
}

/// Split `n` events among `producers` producers: producer `p` publishes
/// `p, p + producers, p + 2 * producers, …`, so the sum is still `expected_sum(n)`.
pub fn share(n: u64, producers: u64, p: u64) -> impl Iterator<Item = u64> {
    (p..n).step_by(producers as usize)
}
