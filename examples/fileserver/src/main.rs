//! `gyre-fileserver --root ./public --addr 127.0.0.1:8080`: serves a folder
//! over HTTP/1.1 with sendfile (or HTTPS, with `--tls-cert` and `--tls-key`).

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use gyre_fileserver::{start, FileServerConfig};
use gyre_reactor::{IpFilter, IpSubnet};
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
    /// `bbr`; default: the host's, except that a connection to a client
    /// on this host leaves BBR's pacing for `reno` at its first large
    /// file, which then goes out faster and at a fifth of the CPU).
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
    /// Lets an address block connect (10.0.0.0/8, 2001:db8::/32, one
    /// address, or all), as nginx's allow: the first --allow or --deny
    /// whose block holds a client decides, in the order given; a client
    /// none holds may connect.
    #[arg(long, value_parser = parse_block)]
    allow: Vec<Block>,
    /// Refuses an address block (as --allow; nginx's deny): `--allow
    /// 10.0.0.0/8 --deny all` lets only that block in.
    #[arg(long, value_parser = parse_block)]
    deny: Vec<Block>,
    /// Connections one client address may hold open at once; one more is
    /// closed unanswered (nginx's limit_conn per $binary_remote_addr;
    /// behind --proxy-protocol, the client the header names).
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// Sends a file's precompressed sibling (app.js.zst, .br, .gz) in its
    /// place to a client whose Accept-Encoding takes it, the first of
    /// these codings (zstd, br, gzip) it takes and the file has: nginx's
    /// gzip_static, Caddy's precompressed (e.g. --precompressed br,gzip).
    #[arg(long, value_delimiter = ',')]
    precompressed: Vec<gyre_fileserver::Encoding>,
    /// Expires and Cache-Control on file answers, as nginx's expires: a
    /// time (30d, 12h, 1h30m; -1 for no-cache), "modified 24h" (from the
    /// file's modification time), epoch or max.
    #[arg(long, allow_hyphen_values = true)]
    expires: Option<gyre_fileserver::Expires>,
}

/// What `--allow` or `--deny` names.
#[derive(Clone, Copy, Debug)]
enum Block {
    All,
    Subnet(IpSubnet),
}

fn parse_block(text: &str) -> Result<Block, String> {
    if text == "all" {
        return Ok(Block::All);
    }
    text.parse().map(Block::Subnet).map_err(|e| e.to_string())
}

/// The `--allow` and `--deny` rules in the order they were given.
fn access_rules(matches: &ArgMatches) -> IpFilter {
    let mut rules: Vec<(usize, bool, Block)> = Vec::new();
    for (id, allow) in [("allow", true), ("deny", false)] {
        if let (Some(at), Some(blocks)) = (matches.indices_of(id), matches.get_many::<Block>(id)) {
            rules.extend(at.zip(blocks).map(|(i, b)| (i, allow, *b)));
        }
    }
    rules.sort_by_key(|(i, _, _)| *i);
    rules
        .into_iter()
        .fold(IpFilter::new(), |filter, (_, allow, block)| {
            let blocks = match block {
                Block::All => IpSubnet::all().to_vec(),
                Block::Subnet(s) => vec![s],
            };
            blocks
                .into_iter()
                .fold(filter, |f, s| if allow { f.allow(s) } else { f.deny(s) })
        })
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
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
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
    config.precompressed = args.precompressed;
    config.expires = args.expires;
    config.ip_filter = access_rules(&matches);
    if let Some(n) = args.max_connections_per_ip {
        let limits = gyre_reactor::ConnectionsPerIp::new(Some(n), []);
        config.ip_filter = config.ip_filter.limit_per_address(&limits);
    }
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
    use super::{access_rules, parse_rate, Args};
    use clap::CommandFactory;

    #[test]
    fn allow_and_deny_keep_the_order_they_were_given_in() {
        let matches = Args::command()
            .try_get_matches_from([
                "gyre-fileserver",
                "--deny",
                "10.0.0.1",
                "--allow",
                "10.0.0.0/8",
                "--deny",
                "all",
            ])
            .unwrap();
        let filter = access_rules(&matches);
        let ip = |s: &str| s.parse().unwrap();
        assert!(!filter.allows(ip("10.0.0.1")), "the first rule decides");
        assert!(filter.allows(ip("10.0.0.2")));
        assert!(!filter.allows(ip("192.0.2.1")) && !filter.allows(ip("::1")));
        let none = Args::command()
            .try_get_matches_from(["gyre-fileserver"])
            .unwrap();
        assert!(access_rules(&none).allows(ip("192.0.2.1")));
        assert!(Args::command()
            .try_get_matches_from(["gyre-fileserver", "--allow", "10.0.0.0/40"])
            .is_err());
    }

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
