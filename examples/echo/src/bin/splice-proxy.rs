//! The splice proxy: `splice-proxy --listen 127.0.0.1:7008 --upstream
//! 127.0.0.1:7007` forwards every connection without copying its bytes
//! through user space.

use clap::Parser;
use std::net::SocketAddr;

/// Forwards TCP connections to an upstream with splice(2).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7008")]
    listen: SocketAddr,
    /// Where to forward connections (an echo-server, say).
    #[arg(long, default_value = "127.0.0.1:7007")]
    upstream: SocketAddr,
}

fn main() {
    gyre_echo::init_tracing();
    let args = Args::parse();
    let proxy = match gyre_echo::proxy::start(args.listen, args.upstream) {
        Ok(proxy) => proxy,
        Err(e) => {
            eprintln!("splice-proxy: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    println!(
        "splice-proxy listening on {}, forwarding to {}",
        proxy.local_addr(),
        args.upstream
    );
    loop {
        std::thread::park();
    }
}
