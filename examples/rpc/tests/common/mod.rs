//! Helpers shared by the registry tests.

#![allow(dead_code)]

use gyre_rpc::cluster::Cluster;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Polls `done` every 10 ms; fails the test with `what` after `within`.
/// Returns how long it took.
pub fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    t.elapsed()
}

/// The distinct answers of `calls` calls of `method` with `arg`: which
/// providers answered.
pub fn answering<A, R>(cluster: &Cluster, method: &str, arg: &A, calls: usize) -> BTreeSet<R>
where
    A: Serialize + ?Sized,
    R: DeserializeOwned + Default + Ord,
{
    (0..calls)
        .map(|_| cluster.call::<_, R>(method, arg).unwrap())
        .collect()
}
