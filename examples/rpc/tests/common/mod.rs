//! Helpers shared by the integration tests: the registry tests' polling
//! and answer tallies, and the `test.Calc` service on one loop.

#![allow(dead_code)]

use gyre_rpc::cluster::Cluster;
use gyre_rpc::provider::{
    Dispatch, Provider, ProviderBuilder, Service, ServiceBuilder, ServiceError,
};
use gyre_rpc::ServiceKey;
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

/// The calculator service's key (version 1.0).
pub fn calc() -> ServiceKey {
    ServiceKey::new("test.Calc").version("1.0")
}

/// `test.Calc`, its calls run on the loop, with `add`; a test adds its
/// own methods and builds it.
pub fn calc_service() -> ServiceBuilder {
    Service::builder(calc())
        .dispatch(Dispatch::IoThread)
        .method("add", |(a, b): (i64, i64)| Ok::<_, ServiceError>(a + b))
}

/// A provider on one event loop, listening on a free loopback port.
pub fn one_loop_provider() -> ProviderBuilder {
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .io_threads(1)
}
