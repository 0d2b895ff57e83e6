//! The echo benchmark: one load generator, two servers (gyre's echo example
//! and tokio's standard echo server), the same loads, one run.

pub mod churn;
pub mod cpu;
pub mod floor;
pub mod load;
pub mod servers;
pub mod tls;
pub mod tls_floor;
pub mod window;
