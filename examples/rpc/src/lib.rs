//! gyre-rpc: a Dubbo-style RPC framework on the gyre toolkit.
//!
//! Providers expose typed services; consumers keep one long connection per
//! provider and multiplex calls over it by request id. The wire format is
//! described in [`protocol`].

pub mod cluster;
pub mod consumer;
pub mod filter;
pub mod protocol;
pub mod provider;
pub mod registry;

pub use protocol::{Serialization, ServiceKey, Status};
