//! Service discovery: providers register, consumers subscribe.
//!
//! [`Registry`] is the trait with two backends: [`EmbeddedRegistry`], the
//! default, a client of a [`RegistryServer`] (the same binary in registry
//! mode), so a single machine needs nothing else; and
//! `ZooKeeperRegistry` (with the `zookeeper` feature), Dubbo's classic, on
//! a ZooKeeper ensemble. Providers hold leases that a
//! background thread renews every third of their time to live; a killed
//! provider stops renewing and disappears when its lease runs out.
//!
//! ```
//! use gyre_rpc::registry::{EmbeddedRegistry, ProviderEntry, Registry, RegistryServer};
//! use gyre_rpc::ServiceKey;
//! use std::time::Duration;
//!
//! let server = RegistryServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
//! let registry = EmbeddedRegistry::connect(server.local_addr()).unwrap();
//! let key = ServiceKey::new("demo.Calc");
//! let (tx, rx) = std::sync::mpsc::channel();
//! let _sub = registry.subscribe(&key, Box::new(move |list| { let _ = tx.send(list); })).unwrap();
//! assert_eq!(rx.recv().unwrap(), vec![]);
//! registry.register(&key, &ProviderEntry::new("127.0.0.1:20880".parse().unwrap(), 100)).unwrap();
//! assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), vec![ProviderEntry::new("127.0.0.1:20880".parse().unwrap(), 100)]);
//! ```

pub(crate) mod contract;
mod embedded;
mod server;
#[cfg(feature = "zookeeper")]
mod zookeeper;

pub use contract::{
    Listener, ProviderEntry, ProviderList, Registration, Registry, RegistryError, Snapshot,
    Subscription,
};
pub use embedded::{EmbeddedRegistry, EmbeddedRegistryBuilder};
pub use server::{registry_service, RegistryServer};
#[cfg(feature = "zookeeper")]
pub use zookeeper::ZooKeeperRegistry;
