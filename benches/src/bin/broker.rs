//! The broker harness: gyre-broker driven by librdkafka, against Kafka's
//! published single-client figures.
//!
//! ```text
//! cargo run --release -p gyre-benches --bin broker -- --quick   # < 60 s
//! cargo run --release -p gyre-benches --bin broker              # 3 rounds, writes the SVG
//! ```
//!
//! Prints `result <case> ...` lines and `ratio <case> gyre/<peer> <value>`
//! lines. No Kafka server can be fetched on the benchmark machine (no Maven
//! Central or Apache mirror is reachable), so the peer is Kafka's own
//! published benchmark ("Benchmarking Apache Kafka: 2 Million Writes Per
//! Second", LinkedIn 2014: one producer thread, no replication, 100-byte
//! records, 821 557 records/s; one consumer 940 521 records/s; end to end
//! p99 3 ms) and the issue's goals. Above 1 is better for throughput, below
//! 1 for latency.

use clap::{Parser, ValueEnum};
use gyre_benches::broker::{self, BenchBroker, RECORD_BYTES};
use gyre_benches::stats::median;
use gyre_benches::svg::{percentile_plot, Series};
use gyre_broker::writer::FlushPolicy;
use std::path::PathBuf;
use std::time::Duration;

/// Kafka's published figures, for the ratio lines.
const KAFKA_PRODUCE: f64 = 821_557.0;
const KAFKA_CONSUME: f64 = 940_521.0;
const KAFKA_E2E_P99_MS: f64 = 3.0;
/// The percentiles Kafka's post gives for end-to-end latency, (percentile,
/// ms).
const KAFKA_E2E_PUBLISHED_MS: [(f64, f64); 3] = [(50.0, 2.0), (99.0, 3.0), (99.9, 14.0)];
/// The issue's goals.
const GOAL_PRODUCE: f64 = 1_000_000.0;
const GOAL_CONSUME: f64 = 2_000_000.0;
const GOAL_E2E_P99_MS: f64 = 5.0;
/// Records per transaction in the `--transactions` rounds.
const TXN_RECORDS: u64 = 10_000;

#[derive(Parser)]
#[command(about = "gyre-broker driven by librdkafka: produce, consume, end-to-end latency")]
struct Args {
    /// One short round per case: the whole run takes under a minute.
    #[arg(long)]
    quick: bool,
    /// Records per throughput round (default 2 000 000 quick, 10 000 000 full).
    #[arg(long)]
    records: Option<u64>,
    /// Rounds of produce + consume (default 1 quick, 3 full); medians reported.
    #[arg(long)]
    rounds: Option<usize>,
    /// Records/s of the latency run.
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// Seconds of the latency run (default 5 quick, 20 full).
    #[arg(long)]
    seconds: Option<u64>,
    /// The latency run's producer linger.ms (0: send as soon as possible,
    /// what a latency-sensitive client sets).
    #[arg(long, default_value_t = 0)]
    linger_ms: u32,
    /// The broker's reactor loops (default: the cores left after the
    /// client's one, as the broker's own default sizes them).
    #[arg(long, default_value_t = default_workers())]
    workers: usize,
    /// The broker's flush policy (interval: fsync once a second on the
    /// flusher thread, the broker's default).
    #[arg(long, value_enum, default_value_t = Flush::Interval)]
    flush: Flush,
    /// Where to write the latency SVG (default without --quick:
    /// benches/results/broker-latency.svg).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Also run the produce and consume rounds against a SASL_SSL listener
    /// (SCRAM-SHA-256 over TLS), on a broker of its own, and print them
    /// beside the plaintext figures.
    #[arg(long)]
    sasl_ssl: bool,
    /// Also run the produce and consume rounds under transactions: a
    /// transactional producer committing every 10 000 records, and a
    /// `read_committed` consumer; printed beside the plain figures.
    #[arg(long)]
    transactions: bool,
    /// Also run the produce and consume rounds as a client with a produce
    /// and a fetch quota too large to throttle it: what measuring a
    /// client's rate costs, beside the plain rounds (no quota anywhere).
    #[arg(long)]
    quotas: bool,
    /// Also run the compaction case: keyed records (100 000 keys) to a
    /// compacted topic and to a deleting one, on two brokers in turn, then
    /// one log-cleaner pass over the compacted log, timed.
    #[arg(long)]
    compaction: bool,
    /// Also run a round of one-record batches (`linger.ms` 0,
    /// `batch.num.messages` 1; a tenth of `--records`): the produce and
    /// consume rates of the batches such a producer writes.
    #[arg(long)]
    small_batches: bool,
    /// Also run the cold case: a consumer replays a topic whose segments
    /// are out of the page cache while live records go through another
    /// topic at `--rate`, on a broker with the cache loaders (the default)
    /// and on one without (`--fetch-cache-loaders 0`), in turn.
    #[arg(long)]
    cold: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Flush {
    EveryBatch,
    Interval,
    Never,
}

impl Flush {
    fn policy(self) -> FlushPolicy {
        match self {
            Flush::EveryBatch => FlushPolicy::EveryBatch,
            Flush::Interval => FlushPolicy::Interval(Duration::from_secs(1)),
            Flush::Never => FlushPolicy::Never,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Flush::EveryBatch => "every-batch",
            Flush::Interval => "interval (1 s)",
            Flush::Never => "never",
        }
    }
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// MB/s of records at `rate` records/s.
fn mb(rate: f64) -> f64 {
    rate * RECORD_BYTES as f64 / 1e6
}

/// Prints a throughput case's `result` line: records/s and MB/s.
fn rate_result(case: &str, rate: f64) {
    println!(
        "result {case} gyre-broker {rate:.0} records/s {:.1} MB/s",
        mb(rate)
    );
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Produce and consume rounds against `addr` with client `settings`, each
/// on a topic of its own (`<topics><round>`); the median produce and
/// consume rates.
fn rounds_of(
    addr: std::net::SocketAddr,
    settings: &[(String, String)],
    records: u64,
    rounds: usize,
    label: (&str, &str),
) -> (f64, f64) {
    let produce = |topic: &str| {
        broker::create_topic(addr, topic, settings);
        broker::produce(addr, topic, records, settings)
    };
    rounds_with(addr, records, rounds, label, produce, settings)
}

/// `rounds` rounds, each on a topic of its own (`<topics><round>`):
/// `produce` creates it and writes `records` records, then a consumer
/// with `consume_settings` reads them back; each round printed as
/// `label`. The median produce and consume rates.
fn rounds_with(
    addr: std::net::SocketAddr,
    records: u64,
    rounds: usize,
    (label, topics): (&str, &str),
    produce: impl Fn(&str) -> Duration,
    consume_settings: &[(String, String)],
) -> (f64, f64) {
    let (mut produced, mut consume_rates) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let topic = format!("{topics}{round}");
        let p = records as f64 / produce(&topic).as_secs_f64();
        let consumed = broker::consume(addr, &topic, records, consume_settings);
        let c = consumed.steady_records as f64 / consumed.steady.as_secs_f64();
        println!(
            "round {round} ({label}): produce {p:.0} records/s ({:.1} MB/s), consume {c:.0} records/s ({:.1} MB/s) after {:.0} ms to the first record",
            mb(p),
            mb(c),
            consumed.first_record.as_secs_f64() * 1e3
        );
        produced.push(p);
        consume_rates.push(c);
    }
    (median(&mut produced), median(&mut consume_rates))
}

fn main() {
    println!("{}", gyre_benches::host::describe());
    let _steal = gyre_benches::steal::RunSteal::start();
    let args = Args::parse();
    let records = args
        .records
        .unwrap_or(if args.quick { 2_000_000 } else { 10_000_000 });
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
    let seconds = args.seconds.unwrap_or(if args.quick { 5 } else { 20 });

    let server = BenchBroker::start(args.workers, args.flush.policy());
    let addr = server.addr();
    println!(
        "gyre-broker on {addr}, {} loop(s), flush {}; {records} records of {RECORD_BYTES} B per round, {rounds} round(s)",
        args.workers,
        args.flush.name()
    );

    // Latency first, on a quiet machine: the throughput rounds leave
    // gigabytes of dirty pages whose writeback would otherwise run under it.
    let topic = "bench-latency";
    broker::create_topic(addr, topic, &[]);
    let run = broker::latency(
        addr,
        topic,
        args.rate,
        Duration::from_secs(seconds),
        args.linger_ms,
    );
    let h = &run.histogram;
    let p99 = ms(h.value_at_quantile(0.99));
    println!(
        "result e2e gyre-broker {} records at {:.0}/s (linger.ms={}): p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms max {:.2} ms",
        run.records,
        run.rate,
        args.linger_ms,
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        p99,
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    );
    println!(
        "ratio e2e-p99 gyre/kafka-published {:.2}",
        p99 / KAFKA_E2E_P99_MS
    );
    println!("ratio e2e-p99 gyre/goal {:.2}", p99 / GOAL_E2E_P99_MS);

    let (p, c) = rounds_of(addr, &[], records, rounds, ("plaintext", "bench-"));
    rate_result("produce", p);
    rate_result("consume", c);
    println!(
        "ratio produce gyre/kafka-published {:.2}",
        p / KAFKA_PRODUCE
    );
    println!("ratio produce gyre/goal {:.2}", p / GOAL_PRODUCE);
    println!(
        "ratio consume gyre/kafka-published {:.2}",
        c / KAFKA_CONSUME
    );
    println!("ratio consume gyre/goal {:.2}", c / GOAL_CONSUME);
    if args.transactions {
        let read_committed = [("isolation.level".to_owned(), "read_committed".to_owned())];
        let produce = |topic: &str| {
            broker::create_topic(addr, topic, &[]);
            broker::produce_in_transactions(addr, topic, records, TXN_RECORDS)
        };
        let label = (
            &*format!("transactions of {TXN_RECORDS}, read_committed"),
            "bench-txn-",
        );
        let (tp, tc) = rounds_with(addr, records, rounds, label, produce, &read_committed);
        rate_result("produce-transactional", tp);
        rate_result("consume-read-committed", tc);
        println!("ratio produce transactional/plain {:.2}", tp / p);
        println!("ratio consume read-committed/plain {:.2}", tc / c);
    }
    if args.quotas {
        gyre_benches::broker::quotas::set(addr, "bench-quota", 1e15);
        let quoted = [("client.id".to_owned(), "bench-quota".to_owned())];
        let label = ("under a quota", "bench-quota-");
        let (qp, qc) = rounds_of(addr, &quoted, records, rounds, label);
        rate_result("produce-quota", qp);
        rate_result("consume-quota", qc);
        println!("ratio produce quota/plain {:.2}", qp / p);
        println!("ratio consume quota/plain {:.2}", qc / c);
    }
    if args.compaction {
        use gyre_benches::broker::compaction;
        const KEYS: u64 = 100_000;
        let (compacting, deleting) = compaction::brokers(args.workers, args.flush.policy());
        let (mut on_compacted, mut on_deleting) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let topic = format!("bench-keyed-{round}");
            // In turn, each first every other round: the one after runs
            // under the first one's writeback.
            let mut order = [
                (&deleting, &mut on_deleting),
                (&compacting, &mut on_compacted),
            ];
            if round % 2 == 1 {
                order.reverse();
            }
            for (broker, rates) in order {
                broker::create_topic(broker.addr(), &topic, &[]);
                let took = compaction::produce_keyed(broker, &topic, records, KEYS);
                rates.push(records as f64 / took.as_secs_f64());
            }
            println!(
                "round {round} (keyed, {KEYS} keys): produce to a compacted topic {:.0} records/s, to a deleting one {:.0} records/s",
                on_compacted[round], on_deleting[round]
            );
        }
        let (kc, kd) = (median(&mut on_compacted), median(&mut on_deleting));
        let pass = compaction::one_pass(&compacting);
        let read_mb = pass.before as f64 / 1e6;
        rate_result("produce-compacted", kc);
        rate_result("produce-keyed-deleting", kd);
        println!(
            "result compaction-pass gyre-broker {:.0} MB/s: {read_mb:.1} MB of log to {:.1} MB in {:.0} ms ({} segments of {} MiB, {KEYS} keys)",
            read_mb / pass.took.as_secs_f64(),
            pass.after as f64 / 1e6,
            pass.took.as_secs_f64() * 1e3,
            pass.before.div_ceil(compaction::SEGMENT_BYTES),
            compaction::SEGMENT_BYTES >> 20
        );
        println!("ratio produce compacted/deleting {:.2}", kc / kd);
    }
    if args.small_batches {
        let small = records / 10;
        let produce = |topic: &str| {
            broker::create_topic(addr, topic, &[]);
            broker::produce_unbatched(addr, topic, small)
        };
        let label = ("one-record batches", "bench-small-");
        let (sp, sc) = rounds_with(addr, small, rounds, label, produce, &[]);
        rate_result("produce-one-record-batches", sp);
        rate_result("consume-one-record-batches", sc);
        println!("ratio consume one-record-batches/plain {:.2}", sc / c);
    }
    if args.cold {
        cold_case(&args, rounds);
    }
    if args.sasl_ssl {
        let (secured, settings) = BenchBroker::start_sasl_ssl(args.workers, args.flush.policy());
        let (sp, sc) = rounds_of(
            secured.addr(),
            &settings,
            records,
            rounds,
            ("SASL_SSL", "bench-"),
        );
        rate_result("produce-sasl-ssl", sp);
        rate_result("consume-sasl-ssl", sc);
        println!("ratio produce sasl-ssl/plaintext {:.2}", sp / p);
        println!("ratio consume sasl-ssl/plaintext {:.2}", sc / c);
        drop(secured);
    }

    let svg = args.svg.clone().or_else(|| {
        (!args.quick).then(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/results/broker-latency.svg"
            ))
        })
    });
    if let Some(path) = svg {
        let title = format!(
            "gyre-broker end to end, librdkafka, {} records/s of {RECORD_BYTES} B (lower is better)",
            args.rate
        );
        let series = [
            Series::from_histogram("gyre-broker", h),
            Series {
                name: "Kafka, published (p50 2 ms, p99 3 ms, p99.9 14 ms)".into(),
                points: KAFKA_E2E_PUBLISHED_MS
                    .iter()
                    .map(|&(p, ms)| (p, ms * 1e6))
                    .collect(),
            },
        ];
        std::fs::write(&path, percentile_plot(&title, "end to end", &series)).expect("write svg");
        println!("wrote {}", path.display());
    }
    drop(server);
}

/// The `--cold` case: with the cache loaders and without, in turn.
fn cold_case(args: &Args, rounds: usize) {
    use gyre_benches::broker::cold;
    let records = if args.quick { 6_000_000 } else { 20_000_000 };
    let seconds = if args.quick { 2 } else { 5 };
    let names = ["gyre", "gyre-no-loaders"];
    let (mut rate, mut p99, mut max) = ([vec![], vec![]], [vec![], vec![]], [vec![], vec![]]);
    for round in 0..rounds {
        for step in 0..2 {
            let which = (round + step) % 2;
            let loaders = if which == 0 { 2 } else { 0 };
            let flush = args.flush.policy();
            let Some(run) = cold::replay(loaders, args.workers, flush, records, args.rate, seconds)
            else {
                println!("# cold: the segments cannot be evicted here (tmpfs, or Linux before 6.5); skipped");
                return;
            };
            let replayed = run.replay.steady_records as f64 / run.replay.steady.as_secs_f64();
            let h = &run.live.histogram;
            println!(
                "result cold-replay {} {replayed:.0} records/s ({records} records from the disk); live records meanwhile ({} at {}/s): end to end p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
                names[which],
                run.live.records,
                args.rate,
                ms(h.value_at_quantile(0.5)),
                ms(h.value_at_quantile(0.99)),
                ms(h.value_at_quantile(0.999)),
                ms(h.max()),
            );
            rate[which].push(replayed);
            p99[which].push(h.value_at_quantile(0.99) as f64);
            max[which].push(h.max() as f64);
        }
    }
    println!(
        "ratio cold-replay-live-p99 gyre/gyre-no-loaders {:.2}",
        median(&mut p99[0]) / median(&mut p99[1])
    );
    println!(
        "ratio cold-replay-live-max gyre/gyre-no-loaders {:.2}",
        median(&mut max[0]) / median(&mut max[1])
    );
    println!(
        "ratio cold-replay-rate gyre/gyre-no-loaders {:.2}",
        median(&mut rate[0]) / median(&mut rate[1])
    );
}
