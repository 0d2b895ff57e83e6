//! The echo server: `echo-server --addr 127.0.0.1:7007 --workers 2`.

use clap::Parser;
use gyre_echo::{start, EchoConfig};
use std::net::SocketAddr;

/// Echoes every byte back, on gyre-reactor.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7007")]
    addr: SocketAddr,
    /// Worker event loops (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
    /// Every worker accepts for itself on its own SO_REUSEPORT listener.
    #[arg(long)]
    reuse_port: bool,
    /// Accept on a separate one-loop boss group.
    #[arg(long)]
    boss: bool,
    /// epoll, io_uring, or auto (gyre chooses: epoll while it benchmarks faster).
    #[arg(long, default_value = "epoll")]
    transport: gyre_reactor::Transport,
    /// Busy-poll window in microseconds (0: off): a worker that had input
    /// this recently polls without sleeping, so the next message does not
    /// wait for a thread wake-up; costs a core per busy worker.
    #[arg(long, default_value_t = 0)]
    busy_poll_us: u64,
    /// Pin each worker loop to its own CPU (thread-per-core).
    #[arg(long)]
    pin: bool,
}

fn main() {
    gyre_echo::init_tracing();
    let args = Args::parse();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let server = match start(&EchoConfig {
        addr: args.addr,
        workers,
        reuse_port: args.reuse_port,
        boss: args.boss,
        transport: args.transport,
        busy_poll: std::time::Duration::from_micros(args.busy_poll_us),
        pin_to_cores: args.pin,
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("echo-server: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "echo-server listening on {} ({} workers{})",
        server.local_addr(),
        workers,
        if args.reuse_port {
            ", SO_REUSEPORT"
        } else {
            ""
        }
    );
    loop {
        std::thread::park();
    }
}
