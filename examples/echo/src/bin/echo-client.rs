//! The echo client: opens connections, sends messages, checks that every
//! byte comes back, and prints the round-trip rate.

use clap::Parser;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

/// Sends messages to an echo server and checks the echoes.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:7007")]
    addr: SocketAddr,
    /// Concurrent connections (one thread each).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Messages per connection.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Bytes per message.
    #[arg(long, default_value_t = 64)]
    size: usize,
}

fn run(addr: SocketAddr, id: usize, messages: usize, size: usize) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut back = vec![0u8; size];
    for i in 0..messages {
        let msg: Vec<u8> = (0..size).map(|j| (id + i + j) as u8).collect();
        s.write_all(&msg)?;
        s.read_exact(&mut back)?;
        if back != msg {
            return Err(std::io::Error::other(format!(
                "connection {id}: message {i} came back changed"
            )));
        }
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let start = Instant::now();
    let threads: Vec<_> = (0..args.connections)
        .map(|id| std::thread::spawn(move || run(args.addr, id, args.messages, args.size)))
        .collect();
    let mut failed = false;
    for t in threads {
        if let Err(e) = t.join().expect("client thread panicked") {
            eprintln!("echo-client: {e}");
            failed = true;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let total = args.connections * args.messages;
    println!(
        "{total} round trips of {} B over {} connections in {secs:.2} s: {:.0} per second, all echoes intact: {}",
        args.size,
        args.connections,
        total as f64 / secs,
        !failed
    );
    if failed {
        std::process::exit(1);
    }
}
