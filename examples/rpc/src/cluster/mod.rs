//! Calling a service that several providers export: choosing one for each
//! call ([`balance`]) and surviving the failure of some ([`invoker`]).

pub mod balance;
mod calling;
mod fallback;
pub mod invoker;
mod maintain;
mod members;
mod mode;
mod shared;

pub use invoker::{Cluster, ClusterBuilder, ClusterMode};

pub use balance::{
    hash_key, Candidates, ConsistentHash, Endpoint, LeastActive, LoadBalancer, ShortestResponse,
    SmoothRoundRobin, WeightedRandom,
};
