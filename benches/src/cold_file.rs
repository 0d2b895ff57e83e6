//! The cold-file case of the zero-copy bench: one connection (or
//! `--cold-downloads` at once) downloads a file that is only on disk while
//! another connection on the same event loop plays ping-pong, once with
//! the loop sending the file itself (as
//! Netty's `DefaultFileRegion` and a reactor without a loader do:
//! `sendfile` from the loop, waiting on the disk) and once with a
//! [`FileLoader`] reading each window in on its own threads. Printed per
//! case: the download's rate and the pings' latency percentiles, and
//! `ratio cold-file-ping-p99 gyre-loader/gyre-direct` (below 1: the
//! loader's neighbour waits less), the same for the worst ping,
//! `ratio cold-file-rate gyre-loader/gyre-direct` (the download's rate
//! beside the pings, which the loop now serves, on the same two CPUs) and
//! `ratio cold-file-rate-alone` (the download with no neighbour); then
//! the same file warm, alone, `ratio warm-file-rate gyre-loader/gyre-direct`
//! (what the loader's checks cost a file that needs no loading). Each
//! line says what the loop thread read from the disk. Uses the reactor,
//! the zero-copy crate, the test kit's counts and the stats helpers.

use crate::svg::{percentile_plot, Series};
use bytes::{Bytes, BytesMut};
use gyre_reactor::{
    ChannelOptions, EventLoopGroup, FileLoader, InboundContext, InboundHandler, Outbound, Pipeline,
    ServerBootstrap,
};
use gyre_zerocopy::FileRegion;
use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The ping's size, and the request that asks for the file instead.
const PING: usize = 64;
const FILE_REQUEST: [u8; PING] = [b'F'; PING];

/// Answers `FILE_REQUEST` with the file and any other ping with itself.
struct Serve(PathBuf);

impl InboundHandler for Serve {
    type Read = BytesMut;
    type Pass = ();
    type Write = Outbound;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        if msg[..] == FILE_REQUEST {
            let region = FileRegion::open(&self.0).expect("open the cold file");
            ctx.write_and_flush(region.into());
        } else {
            ctx.write_and_flush(Outbound::Bytes(msg.freeze()));
        }
    }
}

/// Drops `path` from the page cache; whether the kernel now says it is
/// out.
fn evict(path: &Path) -> bool {
    gyre_testkit::evict_from_page_cache(path).is_ok()
        && FileRegion::open(path).is_ok_and(|r| r.is_cached() == Some(false))
}

/// What one download measured.
struct Run {
    /// Bytes of all the downloads per second.
    rate_mib_s: f64,
    pings: Histogram<u64>,
    /// Bytes the loop thread read from the disk.
    loop_read: u64,
}

/// `downloads` clients' downloads of the file at once, evicted first if
/// `cold`, beside a ping-pong connection if `ping` (otherwise alone, for
/// their rate undisturbed).
fn run(
    path: &Path,
    len: u64,
    loader: Option<FileLoader>,
    downloads: usize,
    ping: bool,
    cold: bool,
) -> Option<Run> {
    if cold && !evict(path) {
        return None;
    }
    let group = EventLoopGroup::builder()
        .threads(1)
        .name("cold-loop")
        .build()
        .expect("event loop group");
    let mut opts = ChannelOptions::default().tcp_nodelay(true);
    if let Some(loader) = loader {
        opts = opts.file_loader(loader);
    }
    let file = path.to_owned();
    let server = ServerBootstrap::new()
        .group(group)
        .child_options(opts)
        .bind("127.0.0.1:0", move |_| {
            Pipeline::with_file_regions().inbound(Serve(file.clone()))
        })
        .expect("bind");
    let addr = server.local_addr();
    let mut pinger = TcpStream::connect(addr).expect("connect");
    pinger.set_nodelay(true).expect("nodelay");
    let done = Arc::new(AtomicBool::new(false));
    let finished = done.clone();
    let loop_read = gyre_testkit::storage_read_bytes_of_threads("cold-loop");
    let download = std::thread::spawn(move || {
        let started = Instant::now();
        let clients: Vec<_> = (0..downloads)
            .map(|_| std::thread::spawn(move || download_once(addr, len)))
            .collect();
        let got = clients
            .into_iter()
            .map(|c| c.join().expect("a download"))
            .min();
        finished.store(true, Ordering::Release);
        (got.unwrap_or(0), started.elapsed())
    });
    // In ns, as the SVG plot takes them.
    let mut pings = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let ping_bytes = Bytes::from_static(&[b'p'; PING]);
    let mut back = [0u8; PING];
    while ping && !done.load(Ordering::Acquire) {
        let sent = Instant::now();
        pinger.write_all(&ping_bytes).expect("ping");
        pinger.read_exact(&mut back).expect("pong");
        let _ = pings.record(sent.elapsed().as_nanos() as u64);
    }
    let (got, took) = download.join().expect("the download");
    let loop_read = gyre_testkit::storage_read_bytes_of_threads("cold-loop") - loop_read;
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    assert_eq!(got, len, "the whole file arrived, to every client");
    Some(Run {
        rate_mib_s: (len * downloads as u64) as f64 / (1 << 20) as f64 / took.as_secs_f64(),
        pings,
        loop_read,
    })
}

/// One client's download of the whole file: the bytes it got.
fn download_once(addr: std::net::SocketAddr, len: u64) -> u64 {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.write_all(&FILE_REQUEST).expect("ask for the file");
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    while got < len {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n as u64,
        }
    }
    got
}

/// Writes the file (once) and runs both cases `rounds` times each,
/// alternating which goes first, with `downloads` clients downloading it
/// at once; prints medians and ratios, and plots every round's pings of
/// both cases to `svg` if given.
pub fn bench(dir: &Path, len: u64, rounds: usize, downloads: usize, svg: Option<&Path>) {
    let path = dir.join(format!("gyre-cold-{}.bin", std::process::id()));
    let block: Vec<u8> = (0..1 << 20).map(|i| (i * 7) as u8).collect();
    let written = std::fs::File::create(&path).and_then(|mut f| {
        for _ in 0..len >> 20 {
            f.write_all(&block)?;
        }
        f.sync_all()
    });
    if let Err(e) = written {
        println!("# cold-file: cannot write {}: {e}; skipped", path.display());
        return;
    }
    let loader = FileLoader::builder().start().expect("file loader");
    // [direct, loader]: per round, the rate beside the pings, p99 and max
    // of the pings, and the rate alone.
    let mut rate = [Vec::new(), Vec::new()];
    let mut p99 = [Vec::new(), Vec::new()];
    let mut max = [Vec::new(), Vec::new()];
    let mut alone = [Vec::new(), Vec::new()];
    let mut all = [None::<Histogram<u64>>, None];
    for round in 0..rounds {
        for step in 0..4 {
            let which = (round + step) % 2;
            let ping = step < 2;
            let name = ["gyre-direct", "gyre-loader"][which];
            let loaded = (which == 1).then(|| loader.clone());
            let Some(r) = run(&path, len, loaded, downloads, ping, true) else {
                println!(
                    "# cold-file: the kernel cannot evict {} or tell cached pages from cold ones (tmpfs, or Linux before 6.5); skipped",
                    path.display()
                );
                let _ = std::fs::remove_file(&path);
                return;
            };
            if !ping {
                alone[which].push(r.rate_mib_s);
                println!(
                    "cold-file {name} round {round}: {:.0} MiB/s alone, the loop reading {} MiB from the disk",
                    r.rate_mib_s,
                    r.loop_read >> 20
                );
                continue;
            }
            rate[which].push(r.rate_mib_s);
            p99[which].push(r.pings.value_at_quantile(0.99) as f64);
            max[which].push(r.pings.max() as f64);
            let us = |q: f64| r.pings.value_at_quantile(q) / 1000;
            println!(
                "cold-file {name} round {round}: {:.0} MiB/s, the loop reading {} MiB from the disk; pings while it went: {} (p50 {} us, p99 {} us, p99.9 {} us, max {} us)",
                r.rate_mib_s,
                r.loop_read >> 20,
                r.pings.len(),
                us(0.5),
                us(0.99),
                us(0.999),
                r.pings.max() / 1000,
            );
            match &mut all[which] {
                Some(h) => h.add(&r.pings).expect("same bounds"),
                none => *none = Some(r.pings),
            }
        }
    }
    // The same file warm, alone: what the loader's checks cost a file
    // that needs no loading (a `cachestat` per window).
    let mut warm = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for step in 0..2 {
            let which = (round + step) % 2;
            let loaded = (which == 1).then(|| loader.clone());
            if let Some(r) = run(&path, len, loaded, downloads, false, false) {
                warm[which].push(r.rate_mib_s);
            }
        }
    }
    let _ = std::fs::remove_file(&path);
    let med = |v: &mut Vec<f64>| crate::stats::median(v);
    println!(
        "cold-file warm, alone: gyre-direct {:.0} MiB/s, gyre-loader {:.0} MiB/s (medians)",
        med(&mut warm[0]),
        med(&mut warm[1])
    );
    println!(
        "ratio warm-file-rate gyre-loader/gyre-direct {:.2}",
        med(&mut warm[1]) / med(&mut warm[0])
    );
    println!(
        "ratio cold-file-ping-p99 gyre-loader/gyre-direct {:.2}",
        med(&mut p99[1]) / med(&mut p99[0])
    );
    println!(
        "ratio cold-file-ping-max gyre-loader/gyre-direct {:.2}",
        med(&mut max[1]) / med(&mut max[0])
    );
    println!(
        "ratio cold-file-rate gyre-loader/gyre-direct {:.2}",
        med(&mut rate[1]) / med(&mut rate[0])
    );
    println!(
        "ratio cold-file-rate-alone gyre-loader/gyre-direct {:.2}",
        med(&mut alone[1]) / med(&mut alone[0])
    );
    println!("# cold-file loader: {:?}", loader.counts());
    if let (Some(path), [Some(direct), Some(loaded)]) = (svg, &all) {
        let series = [
            Series::from_histogram("gyre-direct: the loop sends from the disk", direct),
            Series::from_histogram("gyre-loader: FileLoader reads it in", loaded),
        ];
        let title = "A ping beside a cold-file download on the same loop (lower is better)";
        match std::fs::write(path, percentile_plot(title, "round trip", &series)) {
            Ok(()) => println!("# wrote {}", path.display()),
            Err(e) => println!("# cannot write {}: {e}", path.display()),
        }
    }
}
