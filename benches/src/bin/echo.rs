//! The echo harness: gyre's echo server against tokio's, same loads, one
//! run, one load generator.
//!
//! ```text
//! cargo run --release -p gyre-benches --bin echo -- --quick   # < 60 s
//! cargo run --release -p gyre-benches --bin echo              # 3 rounds, writes the SVG
//! ```
//!
//! Prints `result <bench> <server> <msgs/s> <server cpu/msg> <generator busy> p50 p99 p99.9
//! max` and `ratio <bench> <a>/<b> <value>` lines (gyre/tokio,
//! gyre-uring/gyre-epoll, gyre-uring/tokio): for throughput above 1 means
//! `a` is faster; for `<bench>-p99` and `<bench>-cpu` (the server threads'
//! CPU time per message, which the load generator's share of the machine
//! does not blur) below 1 means `a` is better.
//!
//! `churn-s16-64B` opens and closes connections instead of keeping them:
//! 16 at a time, each connected, sent one 64-byte message, its echo read,
//! and closed (with a reset), so its "msgs/s" are connections served per
//! second and its latencies each connection's connect-to-echo time: the
//! accept, set-up and tear-down path the other cases' windows leave out.
//!
//! `c1-p1-64B-busy` is the single-connection case in its latency
//! configuration: the generator polls without sleeping (for every server,
//! so its own wake-up is not in the round trip) and gyre's loops busy-poll
//! for 200 us after input (`EventLoopGroupBuilder::busy_poll`); tokio has no
//! such mode and runs as in every other case. Its server CPU per message
//! includes the polling.
//!
//! `--floor` adds a fourth server, the floor (`gyre_benches::echo::floor`):
//! one thread doing nothing but epoll, `recv` and `send`, busy-polling in
//! the busy case. It is a ruler, not a peer: `floor/tokio` is the most any
//! epoll server could show against tokio here, and `gyre/floor` what gyre's
//! pipeline, queues and timers cost.

use clap::Parser;
use gyre_benches::echo::load::{run, Load, Report};
use gyre_benches::echo::{churn, floor, servers};
use gyre_benches::svg::{percentile_plot, Series};
use gyre_reactor::Transport;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "gyre's echo server against tokio's, side by side")]
struct Args {
    /// One short round per case: the whole run takes under a minute.
    #[arg(long)]
    quick: bool,
    /// Where to write the latency SVG (default without --quick:
    /// benches/results/echo-latency.svg).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Run only the cases whose name starts with this.
    #[arg(long)]
    only: Option<String>,
    /// gyre's worker loops (default: the cores left after the load
    /// generator's one, as a thread-per-core server would be sized).
    #[arg(long, default_value_t = default_gyre_workers())]
    gyre_workers: usize,
    /// tokio's worker threads (the issue fixes this at 2).
    #[arg(long, default_value_t = 2)]
    tokio_workers: usize,
    /// Pin gyre's loops to their own CPUs (`pin_to_cores`).
    #[arg(long)]
    gyre_pin: bool,
    /// Also run the floor: a bare epoll/recv/send echo loop, the most any
    /// epoll server can do here (prints `floor/tokio` and `gyre/floor`).
    #[arg(long)]
    floor: bool,
}

/// gyre's busy-poll window in the `-busy` case.
const BUSY_POLL: Duration = Duration::from_micros(200);

fn default_gyre_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid, initialised struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The servers under test, in report order; the floor, when asked for,
/// comes last.
const SERVERS: [&str; 4] = ["gyre", "gyre-uring", "tokio", "floor"];

fn measure(server: &str, args: &Args, load: &Load) -> Report {
    // The busy case is the latency configuration: the generator spins and
    // so do gyre's loops (tokio has no such mode; it runs as always).
    let busy = if load.spin { BUSY_POLL } else { Duration::ZERO };
    let (running, threads) = match server {
        "gyre" => (
            servers::gyre(args.gyre_workers, Transport::Epoll, busy, args.gyre_pin),
            servers::GYRE_THREADS,
        ),
        "gyre-uring" => (
            servers::gyre(args.gyre_workers, Transport::IoUring, busy, args.gyre_pin),
            servers::GYRE_THREADS,
        ),
        "floor" => (servers::floor(load.spin), floor::FLOOR_THREADS),
        _ => (servers::tokio(args.tokio_workers), servers::TOKIO_THREADS),
    };
    let report = if load.in_flight == 0 {
        // A churn case (see `cases`): connections, not messages.
        churn::run(
            running.addr,
            load.connections,
            load.size,
            load.warmup,
            load.duration,
            threads,
        )
    } else {
        run(running.addr, load, threads)
    }
    .expect("load run failed");
    running.stop();
    report
}

fn main() {
    println!("{}", gyre_benches::host::describe());
    let _steal = gyre_benches::steal::RunSteal::start();
    raise_fd_limit();
    let args = Args::parse();
    let started = Instant::now();
    let (rounds, warmup, duration) = if args.quick {
        (1, Duration::from_millis(500), Duration::from_secs(2))
    } else {
        (3, Duration::from_secs(1), Duration::from_secs(5))
    };
    let case = |connections, in_flight, size, rate| Load {
        connections,
        in_flight,
        size,
        rate,
        warmup,
        duration,
        spin: false,
        counter: None,
    };
    let cases = [
        ("c50-p8-64B", case(50, 8, 64, None)),
        ("c1-p1-64B", case(1, 1, 64, None)),
        (
            "c1-p1-64B-busy",
            Load {
                spin: true,
                ..case(1, 1, 64, None)
            },
        ),
        ("c1000-p1-1KiB", case(1000, 1, 1024, None)),
        ("rate20k-c50-64B", case(50, 1, 64, Some(20_000))),
        // No message kept in flight: each connection carries one and goes.
        ("churn-s16-64B", case(16, 0, 64, None)),
    ];
    println!(
        "# gyre echo bench: {} mode, {} cores, gyre {} loop(s), tokio {} worker(s), {rounds} round(s) rotating the order, median rate and merged latencies shown",
        if args.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |c| c.get()),
        args.gyre_workers,
        args.tokio_workers,
    );
    let servers = &SERVERS[..if args.floor { 4 } else { 3 }];
    let mut plots = Vec::new();
    for (name, load) in cases.iter() {
        if args.only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let mut rates: [Vec<f64>; 4] = Default::default();
        let mut cpus: [Vec<f64>; 4] = Default::default();
        let mut generator: [Vec<f64>; 4] = Default::default();
        let mut hists: [Option<hdrhistogram::Histogram<u64>>; 4] = Default::default();
        for round in 0..rounds {
            // Rotate who goes first, so drift hits every server alike.
            for k in 0..servers.len() {
                let which = (round + k) % servers.len();
                let r = measure(servers[which], &args, load);
                rates[which].push(r.rate());
                cpus[which].push(r.server_cpu.as_secs_f64() * 1e6 / r.messages.max(1) as f64);
                generator[which].push(r.generator_busy());
                match &mut hists[which] {
                    Some(h) => h.add(&r.latency).expect("same bounds"),
                    slot => *slot = Some(r.latency),
                }
            }
        }
        let mut medians = [0.0; 4];
        let mut cpu = [0.0; 4];
        let mut p99 = [0u64; 4];
        for which in 0..servers.len() {
            let mut r = rates[which].clone();
            medians[which] = gyre_benches::stats::median(&mut r);
            cpu[which] = gyre_benches::stats::median(&mut cpus[which]);
            let h = hists[which].as_ref().expect("measured");
            p99[which] = h.value_at_quantile(0.99);
            println!(
                "result {name} {} {:.0} msgs/s  server cpu {:.2} us/msg  generator busy {:.0}%  p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us",
                servers[which],
                medians[which],
                cpu[which],
                100.0 * gyre_benches::stats::median(&mut generator[which]),
                us(h.value_at_quantile(0.5)),
                us(p99[which]),
                us(h.value_at_quantile(0.999)),
                us(h.max()),
            );
        }
        for (a, b, label) in [
            (0, 2, "gyre/tokio"),
            (1, 0, "gyre-uring/gyre-epoll"),
            (1, 2, "gyre-uring/tokio"),
            (3, 2, "floor/tokio"),
            (0, 3, "gyre/floor"),
        ] {
            if a.max(b) >= servers.len() {
                continue;
            }
            println!("ratio {name} {label} {:.2}", medians[a] / medians[b]);
            println!("ratio {name}-cpu {label} {:.2}", cpu[a] / cpu[b]);
            println!(
                "ratio {name}-p99 {label} {:.2}",
                p99[a] as f64 / p99[b] as f64
            );
        }
        if name.starts_with("c1-") || name.starts_with("rate") {
            for (which, server) in servers.iter().enumerate() {
                plots.push((
                    format!("{server} {name}"),
                    hists[which].take().expect("measured"),
                ));
            }
        }
    }
    let svg_path = args.svg.or_else(|| {
        (!args.quick).then(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/results/echo-latency.svg"
            ))
        })
    });
    if let (Some(path), false) = (svg_path, plots.is_empty()) {
        let series: Vec<Series> = plots
            .iter()
            .map(|(name, h)| Series::from_histogram(name.clone(), h))
            .collect();
        let title = "Echo round trip on loopback (lower is better)";
        std::fs::write(&path, percentile_plot(title, "round trip", &series)).expect("write svg");
        println!("# wrote {}", path.display());
    }
    println!("# total {:.1} s", started.elapsed().as_secs_f64());
}
