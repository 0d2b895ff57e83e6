//! `gyre-broker`: a Kafka-wire-compatible broker on the gyre toolkit.
//!
//! The layers, bottom up:
//! - [`log`]: a partition as an append-only log of Kafka record batches
//!   (magic 2) in segment files named by base offset, each with a sparse
//!   offset index (an entry per 4 KiB) and a time index; appends that check
//!   each batch's CRC-32C and assign offsets by rewriting base offsets;
//!   reads that hand back `FileRegion`s for `sendfile`; recovery that
//!   checks every batch past the recovery point after an unclean stop and
//!   cuts at the first bad one; roll and retention by size and age; and
//!   compaction's passes over a log's closed segments.
//! - [`checkpoint`] and [`verify`]: the clean-shutdown marker and the
//!   recovery-point checkpoint that decide how much a start checks, and
//!   the offline check of a whole data folder (`gyre-broker verify`).
//! - [`storage`] and [`topics`]: the data folder of topics and partitions,
//!   and the catalog the event loops route requests by.
//! - [`ops`]: the writer's vocabulary (requests, answers, the reply
//!   trait), below both the writer and the fetch resolver.
//! - [`writer`] and [`fetch`]: the single log-writer thread, fed through a
//!   gyre ring buffer, that group-commits produce requests (one write per
//!   partition, one fsync per the flush policy), resolves and long-polls
//!   fetches, and creates and deletes topics.
//! - [`share`]: share groups' delivery (KIP-932) on the writer: which
//!   records each member holds, the share sessions, the state kept
//!   across restarts.
//! - [`health`]: whether a thread the broker cannot serve without has
//!   failed ([`failpoint`]: where a test build panics on purpose).
//! - [`cleaner`]: the log cleaner's thread, which compacts the topics
//!   whose `cleanup.policy` says so, off the writer and the loops.
//! - [`protocol`]: Kafka's wire format as the broker speaks it.
//! - [`record_file`]: the checksummed append-only files the coordinators
//!   keep their state in.
//! - [`security`]: listeners by security protocol, SASL (PLAIN, SCRAM)
//!   and the stored credentials it checks.
//! - [`server`]: the reactor pipeline per connection, the response
//!   sequencer, and the group coordinator with its durable offsets.
//!
//! [`Broker::start`] runs it all; `cargo run -p gyre-broker` is the binary.
//!
//! ```
//! use gyre_broker::log::{batch, LogConfig, PartitionLog};
//! # let dir = std::env::temp_dir().join(format!("gyre-doc-log-{}", std::process::id()));
//! let (mut log, _) = PartitionLog::open(&dir, LogConfig::default())?;
//! let records = batch::build(0, 1_700_000_000_000, &[b"hello", b"world"]);
//! assert_eq!(log.append(&records)?, (0, 1));
//! let slice = log.read(1, 1 << 20)?.expect("records at offset 1");
//! assert_eq!(slice.first_offset, 0); // the batch holding offset 1
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cache_loader;
pub mod checkpoint;
pub mod cleaner;
pub mod config;
mod data_lock;
pub mod failpoint;
pub mod fetch;
pub mod flusher;
mod folder_sync;
pub mod health;
pub mod id_hash;
pub mod leader_epoch;
pub mod log;
pub mod ops;
pub mod producer_ids;
pub mod protocol;
pub mod record_file;
pub mod security;
pub mod server;
pub mod share;
mod share_fetch;
pub mod storage;
pub mod topic_config;
pub mod topics;
pub mod verify;
pub mod writer;

pub use config::{
    BrokerConfig, ConnectionLimits, ConsumerGroupSettings, FetchSessionLimits, ShareGroupSettings,
};
pub use health::BrokerHealth;
pub use server::{Broker, FetchSessionStats, StartError};
