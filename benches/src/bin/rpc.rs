//! The RPC harness: gyre-rpc against tarpc, one connection, 1 and 64 calls
//! in flight, same request and response types, same run.
//!
//! ```text
//! cargo run --release -p gyre-benches --bin rpc -- --quick   # < 60 s
//! cargo run --release -p gyre-benches --bin rpc              # 3 rounds, writes the SVG
//! ```
//!
//! Prints `result <case> <framework> <calls/s> p50 p99` lines and
//! `ratio <case> gyre/tarpc <value>` (calls/s: above 1 means gyre-rpc is
//! faster; `<case>-p50`: below 1 means gyre-rpc's median is lower).
//!
//! Each round of the c1 and c64 cases also runs gyre-rpc with tasks that
//! read their own answers (`ConsumerBuilder::tokio_reads`) between the
//! default consumer and tarpc, next to each: `ratio <case>-tokio-reads
//! gyre/tarpc` and `gyre/gyre-default`, the median of each round's own
//! ratio. At c64 no call can read its own answer, so that is what the
//! option costs where it cannot help.
//!
//! With one call in flight each round also runs gyre-rpc four times more:
//! with every call sent through the connection's loop (what direct writes
//! save), with the consumer's loop busy-polling for 200 µs
//! (`ratio c1-busy-poll gyre/tarpc`: what taking the answer's wake-up out
//! is worth, at the cost of a core while calls flow), with the default
//! consumer called by blocking `call`s from a thread of their own
//! (`ratio c1-call gyre/tarpc`: such a caller reads its own answer), and
//! with those callers sleeping beside the socket instead
//! (`ConsumerBuilder::direct_reads(false)`; `ratio c1-call
//! gyre/gyre-beside`: what reading its own answer saves).
//!
//! And with one call in flight each round runs the floor
//! ([`gyre_benches::rpc_floor`]): the same frame sizes between two blocking
//! threads with no framework. `ratio c1 floor/tarpc` is the most a client
//! that sleeps while it waits could show against tarpc on this host;
//! `ratio c1 gyre/floor` and `c1-call gyre/floor` are how near gyre-rpc
//! comes to it. The floor handed to a task
//! ([`gyre_benches::rpc_floor::handed_floor_run`]: a tokio task writes, a
//! thread of its own reads and wakes the task) is the floor of a client
//! built as the default `call_async` is: `ratio c1 handed-floor/tarpc`.
//!
//! Each round of the c1 and c64 cases also runs gyre-rpc through a
//! cluster of the one provider (`Cluster::call_async`, the cluster's
//! default failover and weighted random) next to the default consumer:
//! `ratio <case>-cluster gyre/tarpc` and `gyre/gyre-default`, what the
//! cluster layer costs.
//!
//! Each round of the c64 case also calls the provider's asynchronous
//! method (`ServiceBuilder::async_method`: the same answer from a future
//! the provider's loop runs, as tarpc's server methods all are): `ratio
//! c64-async-method gyre/tarpc` and `gyre/gyre-default`.
//!
//! Each round also runs gyre-rpc with its wake relay off
//! (`ConsumerBuilder::wake_relay(false)`) next to the default: `ratio
//! <case>-relay gyre/gyre-no-relay`, the median of each round's own ratio.
//!
//! Each round's line ends with the steal over its default-consumer and
//! tarpc runs (the share of the VM's CPU the host kept), and each case
//! prints `steal <case> median <x>% max <y>%`, with a warning line where a
//! round passed 10%: the 64-in-flight lead comes partly from using both
//! vCPUs, and a host that takes CPU away takes that part of it
//! ([`gyre_benches::steal`]).
//!
//! `--idle N` runs only this: N connections, one call on each, then
//! quiet; the process's CPU over the quiet span, gyre-rpc's then tarpc's
//! ([`gyre_benches::rpc_idle`]).
//!
//! `--pin` puts every server thread on the last CPU and every client
//! thread on the first, as if the two sides were two machines: unpinned,
//! on a host of two vCPUs, one side's threads waking keep the other's
//! vCPU from halting, and a host whose halted vCPUs are slow to wake
//! (see the host line's halt-poll window) rewards that.

use clap::Parser;
use gyre_benches::rpc::{
    gyre_run, gyre_server, gyre_server_on, tarpc_run, GyreClient, Report, TarpcServer,
};
use gyre_benches::rpc_floor::{floor_run, handed_floor_run, FloorServer};
use gyre_benches::rpc_idle;
use gyre_benches::stats::{median, same_round_ratio};
use gyre_benches::steal::StealClock;
use gyre_benches::svg::{percentile_plot, Series};
use gyre_rpc::provider::Dispatch;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "gyre-rpc against tarpc: calls/s and latency on one connection")]
struct Args {
    /// One short round per case: the whole run takes under a minute.
    #[arg(long)]
    quick: bool,
    /// Seconds per measurement (default 3 quick, 5 full).
    #[arg(long)]
    seconds: Option<u64>,
    /// Rounds, interleaved (default 1 quick, 3 full); medians reported.
    #[arg(long)]
    rounds: Option<usize>,
    /// Where to write the 1-in-flight latency SVG (default without
    /// --quick: benches/results/rpc-latency.svg).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Servers on the last CPU, clients on the first (as two machines).
    #[arg(long)]
    pin: bool,
    /// Only this: what N idle connections cost each framework (the
    /// process's CPU over `--seconds`, default 5).
    #[arg(long, value_name = "N")]
    idle: Option<usize>,
}

/// Steal (percent of the VM's CPU time) above which a case's ratios are
/// flagged: at 33-47% gyre-rpc's 64-in-flight lead over tarpc was gone
/// (`gyre_benches::steal`).
const STEAL_WARN: f64 = 10.0;

/// `--idle N`: prints `result idle-<N> <framework> <percent> % of a core`
/// for gyre-rpc and tarpc (lower is better; no ratio, as an idle tarpc
/// client costs next to nothing and the quotient would be noise).
fn idle_case(n: usize, quiet: Duration) {
    let gyre = rpc_idle::gyre_idle(n, quiet);
    println!("result idle-{n} gyre-rpc {:.2} % of a core", gyre * 100.0);
    let tarpc = rpc_idle::tarpc_idle(n, quiet);
    println!("result idle-{n} tarpc {:.2} % of a core", tarpc * 100.0);
}

/// Keeps the calling thread, and the threads it starts from now on, on
/// `cpu` (when `--pin` asks).
fn pin(on: bool, cpu: usize) {
    if on {
        gyre_ringbuffer::pin_current_thread(cpu).expect("pin the bench's threads");
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// One round of a variant of gyre-rpc run beside the default consumer and
/// tarpc: its rate, and its ratios to theirs in the same round.
struct VariantRound {
    vs_tarpc: f64,
    vs_default: f64,
    rate: f64,
}

impl VariantRound {
    fn of(variant: &Report, tarpc: &Report, default: &Report) -> VariantRound {
        VariantRound {
            vs_tarpc: variant.rate() / tarpc.rate(),
            vs_default: variant.rate() / default.rate(),
            rate: variant.rate(),
        }
    }
}

/// The medians of a variant's rounds: `result <case> gyre-rpc-<name>` and
/// `ratio <case>-<name> gyre/tarpc` and `gyre/gyre-default` (nothing if
/// the case did not run it).
fn report_variant(case: &str, name: &str, rounds: &[VariantRound]) {
    if rounds.is_empty() {
        return;
    }
    let column = |f: fn(&VariantRound) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        median(&mut v)
    };
    println!(
        "result {case} gyre-rpc-{name} {:.0} calls/s",
        column(|r| r.rate)
    );
    println!(
        "ratio {case}-{name} gyre/tarpc {:.2}",
        column(|r| r.vs_tarpc)
    );
    println!(
        "ratio {case}-{name} gyre/gyre-default {:.2}",
        column(|r| r.vs_default)
    );
}

fn main() {
    println!("{}", gyre_benches::host::describe());
    let _steal = gyre_benches::steal::RunSteal::start();
    let args = Args::parse();
    let seconds = Duration::from_secs(args.seconds.unwrap_or(if args.quick { 3 } else { 5 }));
    if let Some(n) = args.idle {
        idle_case(n, seconds);
        return;
    }
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    pin(args.pin, cpus - 1);
    let gyre = gyre_server();
    // The same provider with its calls on a worker pool of one thread (the
    // offload stage): one I/O thread and one business thread.
    let pooled = gyre_server_on(Dispatch::WorkerPool);
    let tarpc = TarpcServer::start();
    let floor = FloorServer::start();
    pin(args.pin, 0);
    if args.pin {
        println!("servers on CPU {}, clients on CPU 0", cpus - 1);
    }
    println!(
        "gyre-rpc on {}, tarpc on {}; {rounds} round(s) of {seconds:?} per case",
        gyre.local_addr(),
        tarpc.addr
    );
    let mut last_c1: Option<(Report, Report)> = None;
    let mut last_busy: Option<Report> = None;
    let mut last_blocking: Option<Report> = None;
    let mut last_tokio_reads: Option<Report> = None;
    let mut last_floor: Option<Report> = None;
    let mut last_handed: Option<Report> = None;
    for (case, in_flight, pool) in [
        ("c1", 1usize, false),
        ("c64", 64, false),
        ("c64-pool", 64, true),
    ] {
        let gyre_addr = if pool {
            pooled.local_addr()
        } else {
            gyre.local_addr()
        };
        let (mut g_rates, mut t_rates, mut g_p50, mut t_p50) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut g_p99, mut t_p99) = (Vec::new(), Vec::new());
        let (mut via_loop, mut busy, mut blocking) = (Vec::new(), Vec::new(), Vec::new());
        let (mut beside, mut tokio_reads, mut floors) = (Vec::new(), Vec::new(), Vec::new());
        let mut handed_floors = Vec::new();
        let mut no_relay = Vec::new();
        let mut clusters = Vec::new();
        let mut futures = Vec::new();
        let mut steals = Vec::new();
        for round in 0..rounds {
            // With one call in flight, also gyre-rpc with every call sent
            // through the connection's loop (what direct writes save), with
            // its loop busy-polling (what the answer's wake-up costs), and
            // called by blocking calls (which sleep beside the socket); the
            // last run of each is kept for the SVG (none for the first).
            if in_flight == 1 {
                let through_loop = GyreClient {
                    direct: false,
                    ..GyreClient::DEFAULT
                };
                let polling = GyreClient {
                    busy_poll: Duration::from_micros(200),
                    ..GyreClient::DEFAULT
                };
                let caller_thread = GyreClient {
                    blocking: true,
                    ..GyreClient::DEFAULT
                };
                let sleeping_beside = GyreClient {
                    direct_reads: false,
                    ..caller_thread
                };
                let (mut unplotted, mut unplotted_beside) = (None, None);
                let mut variants = [
                    (
                        "through its loop",
                        through_loop,
                        &mut via_loop,
                        &mut unplotted,
                    ),
                    ("busy-polling", polling, &mut busy, &mut last_busy),
                    (
                        "blocking calls",
                        caller_thread,
                        &mut blocking,
                        &mut last_blocking,
                    ),
                    (
                        "blocking calls beside the socket",
                        sleeping_beside,
                        &mut beside,
                        &mut unplotted_beside,
                    ),
                ];
                // The two blocking waits side by side, in turn first.
                if round % 2 == 1 {
                    variants.swap(2, 3);
                }
                for (what, client, rates, last) in variants {
                    let r = gyre_run(gyre_addr, in_flight, seconds, client);
                    println!(
                        "round {round} {case}: gyre-rpc {what} {:.0} calls/s (p50 {:.1} us)",
                        r.rate(),
                        us(r.latency.value_at_quantile(0.5))
                    );
                    rates.push(r.rate());
                    *last = Some(r);
                }
                let floor_runs = [
                    ("floor (no framework)", floor_run(floor.addr, seconds)),
                    (
                        "floor handed to a task",
                        handed_floor_run(floor.addr, seconds),
                    ),
                ];
                let [f, h] = floor_runs.map(|(what, r)| {
                    println!(
                        "round {round} {case}: {what} {:.0} calls/s (p50 {:.1} us)",
                        r.rate(),
                        us(r.latency.value_at_quantile(0.5))
                    );
                    r
                });
                floors.push(f.rate());
                last_floor = Some(f);
                handed_floors.push(h.rate());
                last_handed = Some(h);
            }
            // Alternate who goes first, so drift hits both alike; gyre-rpc
            // with `tokio_reads` runs between the two, next to each. With
            // many in flight no call reads its own answer, but the
            // connection's watch stays registered: what the option costs
            // there.
            let task_reads = GyreClient {
                tokio_reads: true,
                ..GyreClient::DEFAULT
            };
            // And gyre-rpc with its wake relay off, next to the default:
            // what the relay is worth (or costs) in this case.
            let direct_wakes = GyreClient {
                wake_relay: false,
                ..GyreClient::DEFAULT
            };
            // And through a cluster of the one provider, next to the
            // default: what the cluster layer costs.
            let clustered = GyreClient {
                cluster: true,
                ..GyreClient::DEFAULT
            };
            let run_g = || gyre_run(gyre_addr, in_flight, seconds, GyreClient::DEFAULT);
            let run_c = || (!pool).then(|| gyre_run(gyre_addr, in_flight, seconds, clustered));
            // And, with many in flight, the provider's method as a future
            // its loop runs (tarpc's servers are all so): what that costs.
            let future_method = GyreClient {
                async_method: true,
                ..GyreClient::DEFAULT
            };
            let run_a = || {
                (in_flight > 1 && !pool)
                    .then(|| gyre_run(gyre_addr, in_flight, seconds, future_method))
            };
            let run_n = || gyre_run(gyre_addr, in_flight, seconds, direct_wakes);
            let run_r = || (!pool).then(|| gyre_run(gyre_addr, in_flight, seconds, task_reads));
            let run_t = || tarpc_run(tarpc.addr, in_flight, seconds);
            let steal = StealClock::start();
            let (g, a, c, n, r, t) = if round % 2 == 0 {
                let g = run_g();
                let a = run_a();
                let c = run_c();
                let n = run_n();
                let r = run_r();
                (g, a, c, n, r, run_t())
            } else {
                let t = run_t();
                let r = run_r();
                let n = run_n();
                let c = run_c();
                let a = run_a();
                (run_g(), a, c, n, r, t)
            };
            let round_of = |what: &str, r: Option<Report>, kept: &mut Vec<VariantRound>| {
                if let Some(r) = r {
                    println!(
                        "round {round} {case}: gyre-rpc {what} {:.0} calls/s (p50 {:.1} us)",
                        r.rate(),
                        us(r.latency.value_at_quantile(0.5))
                    );
                    kept.push(VariantRound::of(&r, &t, &g));
                }
            };
            round_of("calling an asynchronous method", a, &mut futures);
            round_of("through a cluster", c, &mut clusters);
            println!(
                "round {round} {case}: gyre-rpc with its wake relay off {:.0} calls/s (p50 {:.1} us)",
                n.rate(),
                us(n.latency.value_at_quantile(0.5))
            );
            no_relay.push((g.rate() / n.rate(), n.rate()));
            if let Some(r) = r {
                println!(
                    "round {round} {case}: gyre-rpc with tokio_reads {:.0} calls/s (p50 {:.1} us)",
                    r.rate(),
                    us(r.latency.value_at_quantile(0.5))
                );
                tokio_reads.push((
                    r.rate() / t.rate(),
                    r.rate() / g.rate(),
                    r.rate(),
                    us(r.latency.value_at_quantile(0.5)),
                ));
                if in_flight == 1 {
                    last_tokio_reads = Some(r);
                }
            }
            let stolen = steal.percent().unwrap_or(0.0);
            steals.push(stolen);
            println!(
                "round {round} {case}: gyre-rpc {:.0} calls/s (p50 {:.1} us), tarpc {:.0} calls/s (p50 {:.1} us), steal {stolen:.1}%",
                g.rate(),
                us(g.latency.value_at_quantile(0.5)),
                t.rate(),
                us(t.latency.value_at_quantile(0.5)),
            );
            g_rates.push(g.rate());
            t_rates.push(t.rate());
            g_p50.push(us(g.latency.value_at_quantile(0.5)));
            t_p50.push(us(t.latency.value_at_quantile(0.5)));
            g_p99.push(us(g.latency.value_at_quantile(0.99)));
            t_p99.push(us(t.latency.value_at_quantile(0.99)));
            if in_flight == 1 {
                last_c1 = Some((g, t));
            }
        }
        // The floors' ratios round by round as well (before the medians
        // sort the rates): a round's runs are seconds apart, the rounds
        // minutes, and this host's phases move every rate by up to 1.5x.
        let paired =
            |a: &[f64], b: &[f64]| (!a.is_empty() && !b.is_empty()).then(|| same_round_ratio(a, b));
        let floors_paired = [
            ("floor/tarpc", paired(&floors, &t_rates)),
            ("gyre/floor", paired(&g_rates, &floors)),
            ("handed-floor/tarpc", paired(&handed_floors, &t_rates)),
            ("gyre/handed-floor", paired(&g_rates, &handed_floors)),
        ];
        let (gr, tr) = (median(&mut g_rates), median(&mut t_rates));
        let (gp, tp) = (median(&mut g_p50), median(&mut t_p50));
        let (g9, t9) = (median(&mut g_p99), median(&mut t_p99));
        println!("result {case} gyre-rpc {gr:.0} calls/s p50 {gp:.1} us p99 {g9:.1} us");
        println!("result {case} tarpc {tr:.0} calls/s p50 {tp:.1} us p99 {t9:.1} us");
        println!("ratio {case} gyre/tarpc {:.2}", gr / tr);
        println!("ratio {case}-p50 gyre/tarpc {:.2}", gp / tp);
        let worst = steals.iter().copied().fold(0.0, f64::max);
        println!(
            "steal {case} median {:.1}% max {worst:.1}%",
            median(&mut steals)
        );
        if worst > STEAL_WARN {
            println!(
                "# {case}: the host kept over {STEAL_WARN}% of the CPU in some round: its ratios \
                 measure the CPU share each framework got as much as its speed (benches/src/steal.rs)"
            );
        }
        let floor_rate = (!floors.is_empty()).then(|| median(&mut floors));
        if let Some(f) = floor_rate {
            println!("result {case} floor {f:.0} calls/s");
            println!("ratio {case} floor/tarpc {:.2}", f / tr);
            println!("ratio {case} gyre/floor {:.2}", gr / f);
        }
        if !handed_floors.is_empty() {
            let h = median(&mut handed_floors);
            println!("result {case} handed-floor {h:.0} calls/s");
            println!("ratio {case} handed-floor/tarpc {:.2}", h / tr);
            println!("ratio {case} gyre/handed-floor {:.2}", gr / h);
        }
        for (which, ratio) in floors_paired {
            if let Some(r) = ratio {
                println!("ratio {case}-same-round {which} {r:.2}");
            }
        }
        if !via_loop.is_empty() {
            let l = median(&mut via_loop);
            println!("result {case} gyre-rpc-through-loop {l:.0} calls/s");
            println!("ratio {case} gyre/gyre-through-loop {:.2}", gr / l);
        }
        if !busy.is_empty() {
            let b = median(&mut busy);
            println!("result {case} gyre-rpc-busy-poll {b:.0} calls/s");
            println!("ratio {case}-busy-poll gyre/tarpc {:.2}", b / tr);
        }
        if !tokio_reads.is_empty() {
            // Each round's own ratios, then their median: the three runs
            // of a round are next to each other, the rounds are not.
            let mut vs_t: Vec<f64> = tokio_reads.iter().map(|r| r.0).collect();
            let mut vs_g: Vec<f64> = tokio_reads.iter().map(|r| r.1).collect();
            let mut rates: Vec<f64> = tokio_reads.iter().map(|r| r.2).collect();
            let mut p50s: Vec<f64> = tokio_reads.iter().map(|r| r.3).collect();
            println!(
                "result {case} gyre-rpc-tokio-reads {:.0} calls/s p50 {:.1} us",
                median(&mut rates),
                median(&mut p50s)
            );
            println!(
                "ratio {case}-tokio-reads gyre/tarpc {:.2}",
                median(&mut vs_t)
            );
            println!(
                "ratio {case}-tokio-reads gyre/gyre-default {:.2}",
                median(&mut vs_g)
            );
        }
        if !no_relay.is_empty() {
            let mut vs_n: Vec<f64> = no_relay.iter().map(|r| r.0).collect();
            let mut rates: Vec<f64> = no_relay.iter().map(|r| r.1).collect();
            println!(
                "result {case} gyre-rpc-no-relay {:.0} calls/s",
                median(&mut rates)
            );
            println!(
                "ratio {case}-relay gyre/gyre-no-relay {:.2}",
                median(&mut vs_n)
            );
        }
        report_variant(case, "cluster", &clusters);
        report_variant(case, "async-method", &futures);
        if !blocking.is_empty() {
            let b = median(&mut blocking);
            println!("result {case} gyre-rpc-blocking-call {b:.0} calls/s");
            println!("ratio {case}-call gyre/tarpc {:.2}", b / tr);
            if let Some(f) = floor_rate {
                println!("ratio {case}-call gyre/floor {:.2}", b / f);
            }
            if !beside.is_empty() {
                let s = median(&mut beside);
                println!("result {case} gyre-rpc-blocking-beside {s:.0} calls/s");
                println!("ratio {case}-call gyre/gyre-beside {:.2}", b / s);
            }
        }
    }
    let svg = args.svg.clone().or_else(|| {
        (!args.quick).then(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/results/rpc-latency.svg"
            ))
        })
    });
    if let (Some(path), Some((g, t))) = (svg, last_c1) {
        let mut series = vec![
            Series::from_histogram("gyre-rpc", &g.latency),
            Series::from_histogram("tarpc", &t.latency),
        ];
        if let Some(b) = &last_blocking {
            series.push(Series::from_histogram(
                "gyre-rpc, blocking call",
                &b.latency,
            ));
        }
        if let Some(r) = &last_tokio_reads {
            series.push(Series::from_histogram(
                "gyre-rpc, task reading its own answer (tokio_reads)",
                &r.latency,
            ));
        }
        if let Some(f) = &last_floor {
            series.push(Series::from_histogram(
                "no framework: two blocking threads (the floor)",
                &f.latency,
            ));
        }
        if let Some(h) = &last_handed {
            series.push(Series::from_histogram(
                "no framework: answers handed to a tokio task",
                &h.latency,
            ));
        }
        if let Some(b) = &last_busy {
            series.push(Series::from_histogram(
                "gyre-rpc, consumer busy-polling",
                &b.latency,
            ));
        }
        let title = "One connection, one call in flight (lower is better)";
        std::fs::write(&path, percentile_plot(title, "round trip", &series)).expect("write svg");
        println!("wrote {}", path.display());
    }
    gyre.shutdown(Duration::from_secs(1));
    pooled.shutdown(Duration::from_secs(1));
    drop(tarpc);
    drop(floor);
}
