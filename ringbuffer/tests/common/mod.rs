//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A counter and a checksum that a stage fills in, to check every event.
#[derive(Default, Debug)]
pub struct Tally {
    /// Events seen.
    pub count: AtomicU64,
    /// Wrapping sum of the values seen.
    pub sum: AtomicU64,
}

impl Tally {
    /// A fresh, shared tally.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    /// Count one event of value `v`.
    pub fn add(&self, v: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(v, Ordering::Relaxed);
    }
    /// Events seen so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    /// Sum of the values seen so far.
    pub fn sum(&self) -> u64 {
        self.sum.load(Ordering::Relaxed)
    }
}

/// Sum of `1..=n`.
pub fn triangle(n: u64) -> u64 {
    n * (n + 1) / 2
}
