//! The broker's storage: per-partition append-only logs of Kafka record
//! batches in segment files, with sparse offset and time indexes, tail
//! recovery, roll and retention.

pub mod batch;
mod partition;
mod segment;

pub use partition::{LogConfig, LogError, LogSlice, PartitionLog};
pub use segment::{now_ms, Segment, Truncation};
