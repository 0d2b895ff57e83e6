//! The broker's storage: per-partition append-only logs of Kafka record
//! batches in segment files, with sparse offset and time indexes, tail
//! recovery (tail or whole, by the recovery point), roll and retention.

pub mod batch;
pub mod cleaner;
pub mod epochs;
mod headers;
mod open_files;
pub mod pace;
mod partition;
pub mod producers;
pub mod records;
pub mod scan;
mod segment;
mod snapshot_text;
pub mod transactions;
mod window;

pub use open_files::OpenFiles;
pub use partition::{
    Cleanup, LogConfig, LogError, LogSlice, PartitionLog, ProducerInfo, Recovery, Staged, NEAR_END,
    PRODUCER_EXPIRY, PRODUCER_SNAPSHOT, TXN_SNAPSHOT,
};
pub use segment::{now_ms, Scan, Segment, Truncation};
#[cfg(test)]
mod index_damage_tests;
#[cfg(test)]
mod leadership_tests;
#[cfg(test)]
mod write_failure_tests;
