//! The offload harness: requests answered on a business thread, gyre's
//! offload stage against tokio with a per-connection task and an `mpsc`
//! channel to the business thread, same loads, one run, one load
//! generator (the echo bench's).
//!
//! ```text
//! cargo run --release -p gyre-benches --bin offload -- --quick   # < 60 s
//! cargo run --release -p gyre-benches --bin offload              # 3 rounds
//! ```
//!
//! Prints `result <case> <server> ...` lines (rate, server CPU per
//! message, heap allocations per message over the whole process, latency
//! percentiles) and `ratio offload-<case> gyre/tokio-mpsc <value>` lines:
//! above 1 is better for the rate; below 1 is better for `-cpu`, `-p99`
//! and `-allocs`. The generator's CPU per message is printed too: on a
//! host with two cores, server and generator share them, so the rate is
//! about 2 / (server CPU + generator CPU) per message. `gyre-inline` computes
//! the answer on the loop, with no business thread: on such a host no
//! hand-off can beat it, as a business thread only adds work. `gyre-phased` is gyre with its business stage on a
//! `PhasedBackoffWait` (spin 20 us, yield 200 us, then block) instead of
//! the default `BlockingWait`.

use clap::Parser;
use gyre_benches::echo::load::{run, Load, Report};
use gyre_benches::offload::{self, GYRE_THREADS, SIZE, TOKIO_THREADS};
use gyre_reactor::Transport;
use gyre_ringbuffer::PhasedBackoffWait;
use gyre_testkit::CountingAllocator;
use std::time::{Duration, Instant};

/// Counts every heap allocation of the process.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator::new();

#[derive(Parser)]
#[command(about = "gyre's offload stage against tokio + mpsc, side by side")]
struct Args {
    /// One short round per case: the whole run takes under a minute.
    #[arg(long)]
    quick: bool,
    /// Run only the cases whose name starts with this.
    #[arg(long)]
    only: Option<String>,
    /// Run only this server (for profiling one): gyre, tokio-mpsc,
    /// gyre-phased or gyre-inline.
    #[arg(long)]
    server: Option<String>,
}

const SERVERS: [&str; 4] = ["gyre", "tokio-mpsc", "gyre-phased", "gyre-inline"];

/// One measured run and the allocations made during it (per message).
fn measure(server: &str, load: &Load) -> (Report, f64) {
    let (running, threads) = match server {
        "gyre" => (offload::gyre(Transport::Epoll), GYRE_THREADS),
        "gyre-inline" => (offload::gyre_inline(Transport::Epoll), GYRE_THREADS),
        "gyre-phased" => (
            offload::gyre_with(
                Transport::Epoll,
                PhasedBackoffWait::new(Duration::from_micros(20), Duration::from_micros(200)),
            ),
            GYRE_THREADS,
        ),
        _ => (offload::tokio(), TOKIO_THREADS),
    };
    // Counted over the measured window only (set-up and warm-up allocate);
    // the load generator's steady state allocates nothing, so what is
    // counted is the server's.
    let report = run(running.addr, load, threads).expect("load run failed");
    running.stop();
    let per_message = report.counted as f64 / report.messages.max(1) as f64;
    (report, per_message)
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn main() {
    println!("{}", gyre_benches::host::describe());
    let _steal = gyre_benches::steal::RunSteal::start();
    let args = Args::parse();
    let started = Instant::now();
    let (rounds, warmup, duration) = if args.quick {
        (1, Duration::from_millis(500), Duration::from_secs(2))
    } else {
        (3, Duration::from_secs(1), Duration::from_secs(5))
    };
    let case = |connections, in_flight| Load {
        connections,
        in_flight,
        size: SIZE,
        rate: None,
        warmup,
        duration,
        spin: false,
        counter: Some(ALLOCATOR.counter()),
    };
    let cases = [
        ("c50-p8-64B", case(50, 8)),
        ("c1-p1-64B", case(1, 1)),
        ("c1000-p1-64B", case(1000, 1)),
    ];
    println!(
        "# gyre offload bench: {} mode, {} cores, 1 I/O thread + 1 business thread each, {rounds} round(s)",
        if args.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |c| c.get()),
    );
    for (name, load) in cases.iter() {
        if args.only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let mut rates: [Vec<f64>; 4] = Default::default();
        let mut cpus: [Vec<f64>; 4] = Default::default();
        let mut generator: [Vec<f64>; 4] = Default::default();
        let mut allocs: [Vec<f64>; 4] = Default::default();
        let mut hists: [Option<hdrhistogram::Histogram<u64>>; 4] = Default::default();
        for round in 0..rounds {
            for k in 0..SERVERS.len() {
                let which = (round + k) % SERVERS.len();
                if args.server.as_deref().is_some_and(|s| s != SERVERS[which]) {
                    continue;
                }
                let (r, per_message) = measure(SERVERS[which], load);
                rates[which].push(r.rate());
                cpus[which].push(r.server_cpu.as_secs_f64() * 1e6 / r.messages.max(1) as f64);
                generator[which]
                    .push(r.generator_cpu.as_secs_f64() * 1e6 / r.messages.max(1) as f64);
                allocs[which].push(per_message);
                match &mut hists[which] {
                    Some(h) => h.add(&r.latency).expect("same bounds"),
                    slot => *slot = Some(r.latency),
                }
            }
        }
        let mut rate = [0.0; 4];
        let mut cpu = [0.0; 4];
        let mut alloc = [0.0; 4];
        let mut p50 = [0u64; 4];
        let mut p99 = [0u64; 4];
        for which in 0..SERVERS.len() {
            if rates[which].is_empty() {
                continue;
            }
            rate[which] = gyre_benches::stats::median(&mut rates[which]);
            cpu[which] = gyre_benches::stats::median(&mut cpus[which]);
            alloc[which] = gyre_benches::stats::median(&mut allocs[which]);
            let h = hists[which].as_ref().expect("measured");
            p50[which] = h.value_at_quantile(0.5);
            p99[which] = h.value_at_quantile(0.99);
            println!(
                "result {name} {} {:.0} msgs/s  server cpu {:.2} us/msg  generator cpu {:.2} us/msg  allocations {:.2}/msg  p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us",
                SERVERS[which],
                rate[which],
                cpu[which],
                gyre_benches::stats::median(&mut generator[which]),
                alloc[which],
                us(p50[which]),
                us(p99[which]),
                us(h.value_at_quantile(0.999)),
            );
        }
        for (a, label) in [
            (0, "gyre/tokio-mpsc"),
            (2, "gyre-phased/tokio-mpsc"),
            (3, "gyre-inline/tokio-mpsc"),
        ] {
            let b = 1;
            if hists[a].is_none() || hists[b].is_none() {
                continue;
            }
            println!("ratio offload-{name} {label} {:.2}", rate[a] / rate[b]);
            println!("ratio offload-{name}-cpu {label} {:.2}", cpu[a] / cpu[b]);
            println!(
                "ratio offload-{name}-p50 {label} {:.2}",
                p50[a] as f64 / p50[b] as f64
            );
            println!(
                "ratio offload-{name}-p99 {label} {:.2}",
                p99[a] as f64 / p99[b] as f64
            );
            println!(
                "ratio offload-{name}-allocs {label} {:.2}",
                alloc[a] / alloc[b].max(f64::MIN_POSITIVE)
            );
        }
    }
    println!("# total {:.1} s", started.elapsed().as_secs_f64());
}
