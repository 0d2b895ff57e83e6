//! The TLS echo harness: Gyre's TLS layer against tokio-rustls, both on
//! rustls with the `ring` provider, the same rustls load generator, one
//! run.
//!
//! ```text
//! cargo run --release -p gyre-benches --bin tls -- --quick   # < 1 minute
//! cargo run --release -p gyre-benches --bin tls              # 3 rounds
//! cargo run --release -p gyre-benches --bin tls -- --floor    # and the floor
//! ```
//!
//! Prints `result <case> <server> ...` and `ratio <case> gyre/tokio-rustls
//! <value>` lines: for throughput (echo messages or handshakes per second)
//! above 1 means Gyre is faster; for `<case>-p99` and `<case>-cpu` (server
//! CPU per message) below 1 means Gyre is better. `--floor` adds a third
//! server, the TLS floor (`gyre_benches::echo::tls_floor`: rustls on a bare
//! mio loop), a ruler rather than a peer, and prints `floor/tokio-rustls`
//! (the most any server on rustls could show against tokio-rustls here)
//! and `gyre/floor` (what Gyre's layers cost above it).

use clap::Parser;
use gyre_benches::echo::load::Report;
use gyre_benches::echo::servers::{Running, GYRE_THREADS, TOKIO_THREADS};
use gyre_benches::echo::{tls, tls_floor};
use gyre_benches::stats::median;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Gyre's TLS layer against tokio-rustls, side by side")]
struct Args {
    /// One short round per case.
    #[arg(long)]
    quick: bool,
    /// Run only the cases whose name starts with this.
    #[arg(long)]
    only: Option<String>,
    /// Server threads for both (default: the cores left after the
    /// generator's one).
    #[arg(long, default_value_t = default_workers())]
    workers: usize,
    /// Also run the TLS floor (rustls on a bare mio loop, one thread).
    #[arg(long)]
    floor: bool,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

const SERVERS: [&str; 3] = ["gyre", "tokio-rustls", "floor"];

/// Starts server `which` of [`SERVERS`]: it, and its threads' name prefix.
fn start(which: usize, workers: usize, certs: &tls::Certs) -> (Running, &'static str) {
    match which {
        0 => (tls::gyre(workers, certs.server_config()), GYRE_THREADS),
        1 => (tls::tokio(workers, certs.server_config()), TOKIO_THREADS),
        _ => {
            let floor = tls_floor::start(certs.server_config()).expect("floor");
            let addr = floor.addr;
            (
                Running::new(addr, move || floor.stop()),
                tls_floor::TLS_FLOOR_THREADS,
            )
        }
    }
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
    let certs = tls::Certs::new();
    let client = certs.client_config();
    println!(
        "# gyre TLS bench: {} mode, {} server thread(s) each, TLS 1.3, ECDSA P-256, {rounds} round(s) rotating the order",
        if args.quick { "quick" } else { "full" },
        args.workers
    );
    type Case = (&'static str, Option<(usize, usize, usize)>);
    let cases: [Case; 4] = [
        ("c50-p8-64B", Some((50, 8, 64))),
        ("c1-p1-64B", Some((1, 1, 64))),
        ("c50-p1-16KiB", Some((50, 1, 16 * 1024))),
        ("handshakes-p8", None),
    ];
    for (name, shape) in cases {
        if args.only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let servers = if args.floor { 3 } else { 2 };
        let mut rates: [Vec<f64>; 3] = Default::default();
        let mut cpus: [Vec<f64>; 3] = Default::default();
        let mut hists: [Option<hdrhistogram::Histogram<u64>>; 3] = Default::default();
        for round in 0..rounds {
            for k in 0..servers {
                let which = (round + k) % servers;
                let (running, threads) = start(which, args.workers, &certs);
                let report: Report = match shape {
                    Some((c, p, size)) => {
                        tls::echo(running.addr, &client, c, p, size, warmup, duration, threads)
                    }
                    None => tls::handshakes(running.addr, &client, 8, duration, threads),
                }
                .expect("load run failed");
                running.stop();
                rates[which].push(report.rate());
                cpus[which]
                    .push(report.server_cpu.as_secs_f64() * 1e6 / report.messages.max(1) as f64);
                match &mut hists[which] {
                    Some(h) => h.add(&report.latency).expect("same bounds"),
                    slot => *slot = Some(report.latency),
                }
            }
        }
        let mut rate = [0.0; 3];
        let mut cpu = [0.0; 3];
        let mut p99 = [0u64; 3];
        for which in 0..servers {
            rate[which] = median(&mut rates[which]);
            cpu[which] = median(&mut cpus[which]);
            let h = hists[which].as_ref().expect("measured");
            p99[which] = h.value_at_quantile(0.99);
            println!(
                "result {name} {} {:.0} /s  server cpu {:.2} us each  p50 {:.1} us  p99 {:.1} us  max {:.1} us",
                SERVERS[which],
                rate[which],
                cpu[which],
                h.value_at_quantile(0.5) as f64 / 1e3,
                p99[which] as f64 / 1e3,
                h.max() as f64 / 1e3,
            );
        }
        let mut pairs = vec![(0, 1)];
        if args.floor {
            pairs.extend([(2, 1), (0, 2)]);
        }
        for (a, b) in pairs {
            let label = format!("{}/{}", SERVERS[a], SERVERS[b]);
            println!("ratio {name} {label} {:.2}", rate[a] / rate[b]);
            println!("ratio {name}-cpu {label} {:.2}", cpu[a] / cpu[b]);
            println!(
                "ratio {name}-p99 {label} {:.2}",
                p99[a] as f64 / p99[b] as f64
            );
        }
    }
    println!("# total {:.1} s", started.elapsed().as_secs_f64());
}
