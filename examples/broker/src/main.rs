//! `gyre-broker`: the Kafka-wire-compatible broker.
//!
//! ```text
//! cargo run --release -p gyre-broker -- --listen 127.0.0.1:9092 --data ./gyre-data
//! ```

use clap::{Parser, ValueEnum};
use gyre_broker::writer::FlushPolicy;
use gyre_broker::{Broker, BrokerConfig};
use gyre_reactor::Transport;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Flush {
    /// fsync before every acknowledgement.
    EveryBatch,
    /// fsync every --flush-interval-ms, on a thread of its own.
    Interval,
    /// Leave it to the page cache.
    Never,
}

/// A Kafka-wire-compatible message broker on the gyre toolkit.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    /// Data folder.
    #[arg(long, default_value = "gyre-data")]
    data: PathBuf,
    /// host:port to tell clients (default: the address each client reached).
    #[arg(long, value_parser = parse_host_port)]
    advertise: Option<(String, u16)>,
    /// When appended records are fsynced.
    #[arg(long, value_enum, default_value = "interval")]
    flush: Flush,
    /// The fsync interval of --flush interval.
    #[arg(long, default_value_t = 1000)]
    flush_interval_ms: u64,
    /// Roll to a new segment past this many bytes.
    #[arg(long, default_value_t = 128 << 20)]
    segment_bytes: u64,
    /// Roll a segment older than this (0: never).
    #[arg(long, default_value_t = 0)]
    segment_ms: u64,
    /// Delete the oldest segments while a partition is bigger (-1: no limit).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    retention_bytes: i64,
    /// Delete segments whose newest record is older (-1: keep forever).
    #[arg(long, default_value_t = 7 * 24 * 3600 * 1000, allow_negative_numbers = true)]
    retention_ms: i64,
    /// How often retention runs.
    #[arg(long, default_value_t = 60_000)]
    retention_check_ms: u64,
    /// The largest request accepted, in bytes.
    #[arg(long, default_value_t = 100 << 20)]
    max_request_size: usize,
    /// Partitions of auto-created topics.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Do not create topics on first use.
    #[arg(long)]
    no_auto_create: bool,
    /// Event loops serving connections (default: CPUs less one).
    #[arg(long)]
    workers: Option<usize>,
    /// Network transport: epoll, io_uring or auto.
    #[arg(long, default_value = "epoll")]
    transport: Transport,
}

fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s.rsplit_once(':').ok_or("expected host:port")?;
    let port = port.parse().map_err(|_| format!("bad port in {s:?}"))?;
    Ok((host.to_owned(), port))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let defaults = BrokerConfig::default();
    let mut config = BrokerConfig {
        listen: args.listen,
        advertised: args.advertise,
        data_dir: args.data,
        flush: match args.flush {
            Flush::EveryBatch => FlushPolicy::EveryBatch,
            Flush::Interval => FlushPolicy::Interval(Duration::from_millis(args.flush_interval_ms)),
            Flush::Never => FlushPolicy::Never,
        },
        default_partitions: args.partitions,
        auto_create_topics: !args.no_auto_create,
        max_request_size: args.max_request_size,
        workers: args.workers.unwrap_or(defaults.workers),
        transport: args.transport,
        retention_check: Duration::from_millis(args.retention_check_ms),
        ..defaults
    };
    config.log.segment_bytes = args.segment_bytes;
    config.log.segment_age = (args.segment_ms > 0).then(|| Duration::from_millis(args.segment_ms));
    config.log.retention_bytes = u64::try_from(args.retention_bytes).ok();
    config.log.retention_age = u64::try_from(args.retention_ms)
        .ok()
        .map(Duration::from_millis);
    let broker = Broker::start(&config)?;
    let data = std::fs::canonicalize(&config.data_dir).unwrap_or(config.data_dir.clone());
    println!("gyre-broker listening on {}", broker.local_addr());
    println!("data in {}", data.display());
    // Serve until killed; the flush policy decides what a kill can lose.
    loop {
        std::thread::park();
    }
}
