//! `gyre-fileserver --root ./public --addr 127.0.0.1:8080`: serves a folder
//! over HTTP/1.1 with sendfile (or HTTPS, with `--tls-cert` and `--tls-key`).

use clap::Parser;
use gyre_fileserver::{start, FileServerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A static file server on gyre-reactor (GET, HEAD, keep-alive, byte
/// ranges; bodies sent with sendfile).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The folder to serve.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Worker event loops (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
    /// Seconds a connection may go without any byte read or sent.
    #[arg(long, default_value_t = 60)]
    idle_timeout_secs: u64,
    /// epoll, io_uring, or auto (gyre chooses: epoll while it benchmarks faster).
    #[arg(long, default_value = "epoll")]
    transport: gyre_reactor::Transport,
    /// Connections served at once; more get 503 (default: from the
    /// open-file limit).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Seconds a request head may take from its first byte (408 after).
    #[arg(long, default_value_t = 10)]
    head_timeout_secs: u64,
    /// Milliseconds a request head may take while the server is near its
    /// connection cap.
    #[arg(long, default_value_t = 1000)]
    head_timeout_under_load_ms: u64,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Keep HTTPS in user space (rustls) even where the kernel has TLS
    /// (by default connections go to the kernel after the handshake, so
    /// bodies keep sendfile).
    #[arg(long, requires = "tls_cert")]
    no_kernel_tls: bool,
    /// The TCP congestion control connections run (`cubic`, `reno`,
    /// `bbr`; default: the host's). Where clients share the host and its
    /// default is BBR, `cubic` or `reno` sends large files over loopback
    /// faster and at a fifth of the CPU.
    #[arg(long)]
    tcp_congestion: Option<String>,
    /// Threads that read files' cold parts into the page cache before a
    /// loop sends them (0: none; a cold file then stalls its loop).
    #[arg(long, default_value_t = 2)]
    file_loaders: usize,
    /// Threads that open files whose paths the kernel has not cached (0:
    /// none; a path looked up on disk then stalls its loop).
    #[arg(long, default_value_t = 2)]
    file_openers: usize,
    /// Every connection starts with a PROXY protocol header (v1 or v2:
    /// HAProxy's send-proxy, AWS NLB, nginx's proxy_protocol), taken off
    /// before the request; a connection without one is closed.
    #[arg(long)]
    proxy_protocol: bool,
    /// Bytes a second each connection may send, as nginx's limit_rate
    /// (a number, or with k, m or g for KiB, MiB, GiB: 500k, 2m).
    #[arg(long, value_parser = parse_rate)]
    limit_rate: Option<u64>,
    /// Bytes a second all connections together may send (as --limit-rate).
    #[arg(long, value_parser = parse_rate)]
    limit_rate_total: Option<u64>,
}

/// A byte rate as nginx writes sizes: a number, or with `k`, `m` or `g`
/// (1024-based).
fn parse_rate(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_lowercase()),
        _ => (text, ' '),
    };
    let scale: u64 = match unit {
        ' ' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        other => return Err(format!("unknown unit {other:?}: use k, m or g")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte rate (a number, maybe with k, m or g)"))?;
    match n.checked_mul(scale) {
        Some(0) => Err("a rate of 0 would send nothing".into()),
        Some(rate) => Ok(rate),
        None => Err(format!("{text:?} is too large")),
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match gyre_reactor::raise_open_file_limit() {
        Ok((before, after)) => tracing::info!(before, after, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let mut config = FileServerConfig::new(&args.root);
    config.addr = args.addr;
    config.idle_timeout = Duration::from_secs(args.idle_timeout_secs);
    config.transport = args.transport;
    config.max_connections = args.max_connections;
    config.head_timeout = Duration::from_secs(args.head_timeout_secs);
    config.head_timeout_under_load = Duration::from_millis(args.head_timeout_under_load_ms);
    config.tcp_congestion = args.tcp_congestion;
    config.file_loaders = args.file_loaders;
    config.file_openers = args.file_openers;
    config.proxy_protocol = args.proxy_protocol;
    config.limit_rate = args.limit_rate;
    config.limit_rate_total = args.limit_rate_total;
    if let Some(workers) = args.workers {
        config.workers = workers;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let tls = gyre_reactor::TlsIdentity::from_pem_files(cert, key).and_then(|identity| {
            gyre_reactor::TlsAcceptor::builder()
                .identity(identity)
                .alpn(["http/1.1"])
                .kernel_tls(!args.no_kernel_tls)
                .build()
        });
        match tls {
            Ok(tls) => {
                tracing::info!(kernel_tls = tls.kernel_tls(), "HTTPS");
                config.tls = Some(tls);
            }
            Err(e) => {
                eprintln!("gyre-fileserver: {e}");
                std::process::exit(1);
            }
        }
    }
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let server = match start(&config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("gyre-fileserver: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "gyre-fileserver serving {} on {scheme}://{}",
        args.root.display(),
        server.local_addr()
    );
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates_are_read_as_nginx_writes_sizes() {
        assert_eq!(parse_rate("1500"), Ok(1500));
        assert_eq!(parse_rate("500k"), Ok(500 << 10));
        assert_eq!(parse_rate("2M"), Ok(2 << 20));
        assert_eq!(parse_rate("1g"), Ok(1 << 30));
        for bad in ["", "k", "0", "1x", "-5", "1.5m", "99999999999999999999g"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} taken");
        }
    }
}
