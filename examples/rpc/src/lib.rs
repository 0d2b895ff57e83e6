//! gyre-rpc: a Dubbo-style RPC framework on the gyre toolkit.
//!
//! - [`provider`]: typed services, run on the event loop or on a worker
//!   pool behind a gyre ring buffer; graceful shutdown.
//! - [`consumer`]: one long connection per provider, calls multiplexed by
//!   request id, blocking or async, with timeouts and heartbeats.
//! - [`cluster`]: one service over many providers: load balancers and
//!   Dubbo's fault-tolerance modes, reconnection with back-off.
//! - [`filter`]: limits, access log, timeout, and your own, on either side.
//! - [`service!`]: a typed service definition, which generates the
//!   provider's trait and the consumer's client ([`stub`]).
//! - [`registry`]: discovery, embedded (leases, long-poll watches) or on
//!   ZooKeeper.
//! - [`protocol`]: the wire format (Dubbo's 16-byte header; postcard or
//!   JSON bodies), written down there.
//!
//! The `gyre-rpc-demo` binary runs a registry, providers and a consumer.
//!
//! ```
//! use gyre_rpc::consumer::Consumer;
//! use gyre_rpc::provider::{Provider, ServiceError};
//!
//! gyre_rpc::service! {
//!     /// A greeter, declared once for both sides.
//!     pub mod greeter = "demo.Greeter" {
//!         /// Greets `name`.
//!         fn greet(name: String) -> String;
//!     }
//! }
//!
//! struct Polite;
//!
//! impl greeter::Server for Polite {
//!     fn greet(&self, name: String) -> Result<String, ServiceError> {
//!         Ok(format!("hello, {name}"))
//!     }
//! }
//!
//! let provider = Provider::builder()
//!     .listen("127.0.0.1:0".parse()?)
//!     .service(greeter::service(greeter::key(), Polite).build())
//!     .start()?;
//! let conn = Consumer::builder().build()?.connect(provider.local_addr())?;
//! let client = greeter::Client::new(conn);
//! assert_eq!(client.greet("ada".into())?, "hello, ada");
//! provider.shutdown(std::time::Duration::from_secs(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cluster;
pub mod consumer;
pub mod filter;
pub mod protocol;
pub mod provider;
pub mod registry;
pub mod stub;

pub use protocol::{Serialization, ServiceKey, Status};

/// The crate's README example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExample;
