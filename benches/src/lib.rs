//! Benchmarks that run Gyre and its peers side by side, in one process and
//! one run, on the same input, and print the ratio.
//!
//! The cases live here as plain functions (`n` events in, elapsed time out)
//! so the harness binaries (`src/bin/*.rs`, quick and readable output) and
//! the criterion benches (`benches/*.rs`, statistics) measure exactly the
//! same code.

pub mod broker;
pub mod codec;
pub mod cold_file;
pub mod echo;
pub mod host;
pub mod offload;
pub mod regime;
pub mod ring;
pub mod rpc;
pub mod rpc_floor;
pub mod rpc_idle;
pub mod stats;
pub mod steal;
pub mod svg;

/// The README's Rust examples, compiled and run as doc tests so that none
/// of them can stop working unnoticed (this crate depends on every Gyre
/// crate, so every example can name what it uses).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
