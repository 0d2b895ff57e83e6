//! Calling a service that several providers export: choosing one for each
//! call ([`balance`]).

pub mod balance;

pub use balance::{
    hash_key, ConsistentHash, Endpoint, LeastActive, LoadBalancer, SmoothRoundRobin, WeightedRandom,
};
