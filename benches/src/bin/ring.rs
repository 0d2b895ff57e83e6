//! The ring-buffer harness: Gyre against Java's LMAX Disruptor (the
//! original, run as a subprocess; skipped with a reason where no JVM is
//! installed), the `disruptor` crate, crossbeam-channel and std's
//! `sync_channel`, in one run. The 1p1c and 3p1c cases also run the
//! ring's floors (`ring::floor`: the least a ring of Gyre's protocol
//! does), rulers rather than peers: `gyre/floor` says how much a change
//! to Gyre's ring could still gain here.
//!
//! ```text
//! cargo run --release -p gyre-benches --bin ring -- --quick   # < 60 s
//! cargo run --release -p gyre-benches --bin ring              # longer, writes the SVG
//! ```
//!
//! Prints `result <bench> <impl> <value>` and `ratio <bench> gyre/<peer>
//! <value>` lines. For throughput a ratio above 1 means Gyre is faster; for
//! latency (`pingpong-*`, `paced-*`) a ratio below 1 means Gyre is quicker.
//!
//! The throughput cases also print `ratio <bench>-same-round gyre/<peer>
//! <value>`: the median, over the rounds, of each round's own ratio. The
//! cases of a round run back to back, so this pairs samples that shared a
//! placement more often than the ratio of the medians does.
//!
//! They also print the same lines per placement regime,
//! as `<bench>@near`, `@middle` or `@far` (see `gyre_benches::regime`),
//! from the samples that ran wholly in it, when every implementation has
//! one there: the VM moves its two vCPUs between placements within
//! seconds, and a ratio between samples from different placements
//! measures the move, not the rings.

use clap::Parser;
use gyre_benches::ring::lmax_java::LmaxJava;
use gyre_benches::ring::paced::{self, Pace};
use gyre_benches::ring::{channels, disruptor_crate, floor, gyre, idle, pingpong, BATCH, CAPACITY};
use gyre_benches::stats::{interleaved_rates, print_rates_by_regime, Unit};
use gyre_benches::svg::{percentile_plot, Series};
use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Gyre's ring buffer against its peers, side by side")]
struct Args {
    /// Small sizes: the whole run takes under a minute.
    #[arg(long)]
    quick: bool,
    /// Where to write the ping-pong latency SVG (default, without --quick:
    /// benches/results/ring-pingpong.svg).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Run only the benches whose name starts with this (1p1c, 3p1c, 3p1c-sleeping, pipeline3, pingpong, paced, idle).
    #[arg(long)]
    only: Option<String>,
}

fn main() {
    println!("{}", gyre_benches::host::describe());
    let _steal = gyre_benches::steal::RunSteal::start();
    let args = Args::parse();
    let run = |bench: &str| {
        args.only
            .as_deref()
            .is_none_or(|only| bench.starts_with(only))
    };
    let started = Instant::now();
    let (n, rounds, trips) = if args.quick {
        (10_000_000, 3, 200_000)
    } else {
        (50_000_000, 5, 2_000_000)
    };
    println!(
        "# gyre ring bench: {} mode, {} cores, capacity {}, {rounds} interleaved rounds, median shown",
        if args.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |c| c.get()),
        CAPACITY
    );

    // Java's Disruptor stays up across the 1p1c cases (one JVM start).
    let java = if run("1p1c-single") || run("1p1c-batch64") {
        match LmaxJava::start(CAPACITY) {
            Ok(java) => Some(RefCell::new(java)),
            Err(why) => {
                println!("# lmax-java skipped: {why}");
                None
            }
        }
    } else {
        None
    };
    let java_single = |n| java.as_ref().expect("started").borrow_mut().run(n, 1);
    let java_batch = |n| java.as_ref().expect("started").borrow_mut().run(n, BATCH);

    if run("1p1c-single") {
        let mut cases: Vec<(&str, &dyn Fn(u64) -> Duration)> = vec![
            ("gyre", &|n| gyre::one_to_one(n, 1)),
            ("crossbeam", &channels::crossbeam_one_to_one),
            ("disruptor", &|n| disruptor_crate::one_to_one(n, 1)),
            ("sync_channel", &channels::std_one_to_one),
            ("floor", &|n| floor::one_to_one(n, CAPACITY, 1)),
        ];
        if java.is_some() {
            cases.push(("lmax-java", &java_single));
        }
        let rates = interleaved_rates(rounds, n, &cases);
        print_rates_by_regime("1p1c-single", &rates, Unit::Events);
    }

    if run("1p1c-batch64") {
        let mut cases: Vec<(&str, &dyn Fn(u64) -> Duration)> = vec![
            ("gyre", &|n| gyre::one_to_one(n, BATCH)),
            ("disruptor", &|n| disruptor_crate::one_to_one(n, BATCH)),
            ("floor", &|n| floor::one_to_one(n, CAPACITY, BATCH)),
        ];
        if java.is_some() {
            cases.push(("lmax-java", &java_batch));
        }
        let rates = interleaved_rates(rounds, n * 4, &cases);
        print_rates_by_regime("1p1c-batch64", &rates, Unit::Events);
    }
    drop(java);

    // The sequencers against each other, one producer: what a loop pays to
    // publish into one ring shared by every loop (the offload stage's
    // topology) rather than into a ring of its own.
    if run("1p1c-sequencer") {
        for (case, batch) in [
            ("1p1c-sequencer-single", 1),
            ("1p1c-sequencer-batch64", BATCH),
        ] {
            let rates = interleaved_rates(
                rounds,
                n,
                &[
                    ("gyre", &|n| gyre::one_to_one(n, batch)),
                    ("gyre-multi", &|n| gyre::one_to_one_multi(n, batch)),
                ],
            );
            print_rates_by_regime(case, &rates, Unit::Events);
        }
    }

    // Four threads on two cores: Gyre yields; the disruptor crate can only spin.
    if run("3p1c-yielding") {
        let rates = interleaved_rates(
            rounds,
            n / 2,
            &[
                ("gyre", &|n| gyre::three_to_one(n, gyre::yielding())),
                ("crossbeam", &channels::crossbeam_three_to_one),
                ("disruptor", &disruptor_crate::three_to_one),
                ("floor", &|n| {
                    floor::three_to_one(n, CAPACITY, floor::LapMark::Apart)
                }),
                ("floor-beside", &|n| {
                    floor::three_to_one(n, CAPACITY, floor::LapMark::Beside)
                }),
            ],
        );
        print_rates_by_regime("3p1c-yielding", &rates, Unit::Events);
    }

    // The same, with a consumer that spins a little and then sleeps
    // rather than yields: where a yield is a costly system call that
    // frees no core, stepping aside lets the producers fill a stretch of
    // the ring (BENCHMARKS.md, issue 22, eleventh session).
    if run("3p1c-sleeping") {
        let rates = interleaved_rates(
            rounds,
            n / 2,
            &[
                ("gyre", &|n| gyre::three_to_one(n, gyre::sleeping())),
                ("crossbeam", &channels::crossbeam_three_to_one),
                ("gyre-yielding", &|n| {
                    gyre::three_to_one(n, gyre::yielding())
                }),
                // The other strategies, for the crate's guide to choosing one.
                ("gyre-blocking", &|n| {
                    gyre::three_to_one(n, gyre_ringbuffer::BlockingWait::new())
                }),
                ("gyre-phased", &|n| gyre::three_to_one(n, gyre::phased())),
            ],
        );
        print_rates_by_regime("3p1c-sleeping", &rates, Unit::Events);
    }

    if run("pipeline3-yielding") {
        let rates = interleaved_rates(
            rounds,
            n / 2,
            &[
                ("gyre", &|n| gyre::pipeline(n, gyre::yielding())),
                ("crossbeam", &channels::crossbeam_pipeline),
                ("disruptor", &disruptor_crate::pipeline),
            ],
        );
        print_rates_by_regime("pipeline3-yielding", &rates, Unit::Events);
    }

    type PingPong = fn(u64) -> Histogram<u64>;
    let cases: [(&str, PingPong); 3] = [
        ("gyre", pingpong::gyre),
        ("disruptor", pingpong::disruptor_crate),
        ("crossbeam", pingpong::crossbeam),
    ];
    // The latency cases run in rounds in which the rings take turns at
    // going first (see `latency_in_turns`).
    let latency_rounds = if args.quick { 2 } else { 4 };
    let histograms: Vec<(&str, Histogram<u64>)> = if run("pingpong") {
        latency_in_turns(&cases, latency_rounds, |case| {
            case(trips / latency_rounds as u64)
        })
    } else {
        Vec::new()
    };
    print_latency("pingpong", "trips", &histograms);

    // One-way latency when events come in runs: one at a time every
    // 300 ns (a little under a consumer's 400 ns breath), and bursts of 64
    // every 20 us.
    for (case, pace) in [
        (
            "paced-1x300ns",
            Pace {
                burst: 1,
                gap: Duration::from_nanos(300),
            },
        ),
        (
            "paced-64x20us",
            Pace {
                burst: 64,
                gap: Duration::from_micros(20),
            },
        ),
    ] {
        if !run(case) {
            continue;
        }
        let bursts = trips / pace.burst.min(8) / latency_rounds as u64;
        type Paced = fn(Pace, u64) -> Histogram<u64>;
        let peers: [(&str, Paced); 2] =
            [("gyre", paced::gyre), ("disruptor", paced::disruptor_crate)];
        let measured = latency_in_turns(&peers, latency_rounds, |case| case(pace, bursts));
        print_latency(case, "events", &measured);
    }

    if run("idle") {
        let idle = idle::gyre_blocking(Duration::from_secs(5));
        println!("result idle gyre-blocking-consumer {idle:.3} %cpu over 5 s");
    }

    let svg_path = args.svg.or_else(|| {
        (!args.quick).then(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/results/ring-pingpong.svg"
            ))
        })
    });
    if let (Some(path), false) = (svg_path, histograms.is_empty()) {
        let series: Vec<Series> = histograms
            .iter()
            .map(|(name, h)| Series::from_histogram(name.to_string(), h))
            .collect();
        let title = format!("Ping-pong round trip, {trips} trips (lower is better)");
        std::fs::write(&path, percentile_plot(&title, "round trip", &series)).expect("write svg");
        println!("# wrote {}", path.display());
    }
    println!("# total {:.1} s", started.elapsed().as_secs_f64());
}

/// Runs every one of `peers` once per round for `rounds` rounds, the peer
/// that goes first moving one place each round, and merges each peer's
/// histograms. On our VMs the stream that runs first drew tails of tens of
/// µs more often than the one after it, whichever ring ran it: a new
/// spinning thread's placement and the host's own threads, not the ring
/// (BENCHMARKS.md, issue 22, thirtieth session). With a fixed order those
/// tails were charged to the ring that always ran first, Gyre.
fn latency_in_turns<C>(
    peers: &[(&'static str, C)],
    rounds: usize,
    run: impl Fn(&C) -> Histogram<u64>,
) -> Vec<(&'static str, Histogram<u64>)> {
    let mut merged: Vec<Option<Histogram<u64>>> = peers.iter().map(|_| None).collect();
    for round in 0..rounds {
        for i in (0..peers.len()).map(|i| (i + round) % peers.len()) {
            let h = run(&peers[i].1);
            match &mut merged[i] {
                Some(all) => all.add(&h).expect("one set of histogram bounds"),
                slot => *slot = Some(h),
            }
        }
    }
    peers
        .iter()
        .zip(merged)
        .filter_map(|((name, _), h)| Some((*name, h?)))
        .collect()
}

/// Prints each implementation's latency quantiles, then the first's (Gyre's)
/// ratio to each of the others: below 1, Gyre is quicker.
fn print_latency(case: &str, counted: &str, histograms: &[(&str, Histogram<u64>)]) {
    for (name, h) in histograms {
        println!(
            "result {case} {name} p50 {} ns p99 {} ns p99.9 {} ns max {} ns ({} {counted})",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            h.len()
        );
    }
    let Some(((_, gyre), peers)) = histograms.split_first() else {
        return;
    };
    for (q, label) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")] {
        for (name, h) in peers {
            println!(
                "ratio {case}-{label} gyre/{name} {:.2}",
                gyre.value_at_quantile(q) as f64 / h.value_at_quantile(q).max(1) as f64
            );
        }
    }
}
