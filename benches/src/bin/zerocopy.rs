//! The zero-copy harness: `FileRegion` (sendfile) against a
//! read-into-a-buffer-then-write loop, and mmap'd slices against `pread`,
//! in one run.
//!
//! The blocking zero-copy senders (`gyre`, `gyre-splice`) cork their TCP
//! socket for the whole file (`gyre_zerocopy::Cork`), as the reactor's
//! channels do: uncorked, an acknowledgement between two of the
//! kernel's pipefuls pushes out a partial segment (BENCHMARKS.md, issue
//! 22, twenty-eighth session). The copy loop is left as a program would
//! write it (corked, it ran the same).
//!
//! ```text
//! cargo run --release -p gyre-benches --bin zerocopy -- --quick   # < 60 s
//! cargo run --release -p gyre-benches --bin zerocopy              # 5 rounds
//! ```
//!
//! Sending: a 1 GiB file, warm in the page cache, goes over loopback to a
//! reader that discards it in the kernel (`recv` with `MSG_TRUNC`, so the
//! reader's cost is the same for both senders and small). Printed: GiB/s
//! and the sending thread's CPU seconds (user + system) per GiB, and
//! `ratio send-1GiB gyre/copy <throughput ratio>` and
//! `ratio send-1GiB-cpu gyre/copy <cpu ratio>` (below 1: gyre uses less).
//! Two more senders run the reactor's own file path, a gyre server writing
//! the file as one `FileRegion`, on epoll and on io_uring
//! (`gyre-reactor-epoll`, `gyre-reactor-uring`, with ratios against the
//! copy loop as well). The epoll one takes the reactor's default path,
//! `FileSend::Auto`, whose probe's figures and choice are printed first
//! (`--reactor-file-send sendfile|splice` fixes it instead). The epoll
//! reactor also runs held to each path (`gyre-reactor-epoll-sendfile`,
//! `gyre-reactor-epoll-splice`), so `ratio send-1GiB
//! gyre-reactor-epoll/gyre-reactor-epoll-<path>` says in the same round
//! how the probe's choice did against each path. Each result line also gives the reader's CPU and the
//! sum: on loopback the kernel may run part of a transfer in either thread.
//! The first two senders run once more over a Unix stream socket
//! (`unix-gyre`, `unix-copy`, `ratio send-1GiB-unix-cpu gyre/copy`): with
//! no TCP to run in the sender's thread, that ratio is mostly the file
//! side's. Both ask for the send buffer the reactor gives a file send on
//! a Unix socket (`gyre_reactor::UNIX_FILE_SEND_BUFFER`: a Unix socket,
//! unlike TCP, never widens its own, and `sendfile` into its 208 KiB
//! default ran at a third of the speed). Last, the reactor's epoll file
//! path over a Unix socket left as the kernel made it
//! (`unix-gyre-reactor-epoll`): the channel widens it itself.
//!
//! Every TCP sender runs the host's congestion control unless
//! `--tcp-congestion <name>` sets one (`TCP_CONGESTION` on the blocking
//! senders' sockets, `ChannelOptions::tcp_congestion` on the reactor's);
//! the header names the one that ran. It decides more than the sender
//! does on a host whose default is BBR: BBR paces a sender to the rate it
//! measured, a CPU-bound loopback sender measures its own paced rate, and
//! on the Intel Xeon VM most connections of every sender, the copy loop
//! too, ran at that (BENCHMARKS.md, issue 22, twenty-ninth session).
//! Gyre's senders leave it on their own: the reactor's channels move a
//! connection to a local peer off BBR at its first long file
//! (`ChannelOptions::pace_local_file_sends`), and the blocking zero-copy
//! senders call `gyre_zerocopy::unpace_local`, as that crate's docs
//! advise, beside the cork; the copy loop, like any program that does
//! not, keeps the host's. `--tcp-congestion` puts every sender on the
//! same one, for a like-for-like comparison of the paths alone.
//!
//! Every sending pair also prints `ratio <bench>-same-round <a>/<b>`: the
//! median over the rounds of each round's own ratio. Rounds rotate the
//! senders, so a round's two ran seconds apart in the same phase of the
//! host, where the medians of all rounds mix phases. The line naming the
//! host's file path decides by that paired ratio of splice to `sendfile`,
//! with the reactor probe's rule (splice only if 10% faster).
//!
//! Reading: random 4 KiB-aligned 4 KiB reads of a warm 256 MiB file, each
//! read folded into a checksum so neither side can skip the bytes.
//! `ratio read-4KiB mmap/pread <speed ratio>` (above 1: mmap is faster).
//!
//! Last, the cold-file case (`--only-cold-file` runs it alone; see
//! `gyre_benches::cold_file`): a file only on disk downloaded beside a
//! ping-pong connection on the same loop, sent from the loop and through
//! the reactor's `FileLoader`; `ratio cold-file-ping-p99
//! gyre-loader/gyre-direct` and its kin.

use bytes::BytesMut;
use clap::Parser;
use gyre_benches::stats::{process_cpu_time, same_round_ratio, thread_cpu_time};
use gyre_reactor::{
    ChannelOptions, EventLoopGroup, FileSend, InboundContext, InboundHandler, Outbound, Pipeline,
    ServerBootstrap, Transport,
};
use gyre_zerocopy::{Cork, FileRegion, MmapRegion, RegionPipe, SharedFile};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "sendfile and mmap against their copying peers, side by side")]
struct Args {
    /// Two rounds per case: the whole run takes under a minute.
    #[arg(long)]
    quick: bool,
    /// Where to keep the test files (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The copying sender's buffer.
    #[arg(long, default_value_t = 128 * 1024)]
    copy_buffer: usize,
    /// The reactor's file path (`gyre-reactor-epoll`, `gyre-reactor-uring`):
    /// `auto` (the reactor's default: its probe measures both on this host
    /// and picks), `sendfile`, or `splice` through a 1 MiB pipe.
    #[arg(long, value_enum, default_value = "auto")]
    reactor_file_send: ReactorFileSend,
    /// The congestion control every TCP sender runs (`TCP_CONGESTION`:
    /// `reno`, `cubic`, `bbr`); the host's default when not given. The
    /// header names the one that ran.
    #[arg(long)]
    tcp_congestion: Option<String>,
    /// Run only the cold-file case (a download of a file only on disk
    /// beside a ping-pong connection on the same loop, with and without
    /// the reactor's file loader).
    #[arg(long)]
    only_cold_file: bool,
    /// Clients downloading the cold file at once in that case.
    #[arg(long, default_value_t = 1)]
    cold_downloads: usize,
}

/// The `--reactor-file-send` choices.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ReactorFileSend {
    Auto,
    Sendfile,
    Splice,
}

impl ReactorFileSend {
    fn option(self) -> FileSend {
        match self {
            ReactorFileSend::Auto => FileSend::Auto,
            ReactorFileSend::Sendfile => FileSend::Sendfile,
            ReactorFileSend::Splice => FileSend::Splice { pipe: SPLICE_PIPE },
        }
    }
}

/// A file of `len` bytes at `path`, made once and reused; read through once
/// so the page cache is warm.
fn warm_file(path: &Path, len: u64) -> std::io::Result<()> {
    if std::fs::metadata(path).map(|m| m.len()).ok() != Some(len) {
        let mut f = File::create(path)?;
        let mut chunk = vec![0u8; 1 << 20];
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = ((i * 131) >> 3) as u8;
        }
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n])?;
            chunk[0] = chunk[0].wrapping_add(1);
            left -= n as u64;
        }
    }
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

/// Reads and discards until `limit` bytes came or EOF; returns the bytes
/// and the CPU time this thread spent on them. A TCP socket drops them in
/// the kernel (`MSG_TRUNC`), so the reader's cost is small and the same for
/// every sender; a Unix socket cannot, so it reads into one reused buffer.
fn discard(stream: &impl AsFd, limit: u64, link: Link) -> (u64, Duration) {
    let fd = stream.as_fd().as_raw_fd();
    let mut buf = match link {
        Link::Tcp => Vec::new(),
        Link::Unix => vec![0u8; 1 << 20],
    };
    let cpu0 = thread_cpu_time();
    let mut total = 0u64;
    while total < limit {
        let n = match link {
            // SAFETY: with MSG_TRUNC a TCP socket drops the bytes without
            // copying; the buffer pointer is never written (null, length
            // as large as we like).
            Link::Tcp => unsafe { libc::recv(fd, std::ptr::null_mut(), 1 << 20, libc::MSG_TRUNC) },
            // SAFETY: `buf` is ours, live, and `buf.len()` bytes long.
            Link::Unix => unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) },
        };
        if n <= 0 {
            break;
        }
        total += n as u64;
    }
    (total, thread_cpu_time() - cpu0)
}

/// What carries the bytes from sender to reader.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    /// TCP over loopback: the issue's case.
    Tcp,
    /// A Unix stream socket. It has no protocol to run, so what is left in
    /// the sender's CPU is mostly its own side of the transfer: page
    /// references for `sendfile`, two copies for the loop (whose socket
    /// buffers a Unix socket allocates per message, where TCP reuses its
    /// pages). On loopback TCP the sender's thread also runs the TCP
    /// transmit path and, inline, the receiver's TCP receive path.
    Unix,
}

struct Sent {
    seconds: f64,
    /// The sending thread's CPU seconds.
    cpu: f64,
    /// The reading thread's: on loopback the kernel runs part of a
    /// transfer (acknowledgements, and the sends they release) in whichever
    /// thread happens to process it, so the sum is shown too.
    reader_cpu: f64,
}

impl Sent {
    /// One transfer's figures, once the reader is known to have got all
    /// `len` bytes.
    fn checked(
        received: u64,
        len: u64,
        elapsed: Duration,
        cpu: Duration,
        reader: Duration,
    ) -> Sent {
        assert_eq!(received, len, "the reader must get every byte");
        Sent {
            seconds: elapsed.as_secs_f64(),
            cpu: cpu.as_secs_f64(),
            reader_cpu: reader.as_secs_f64(),
        }
    }
}

/// The pipe the splice sender uses: 1 MiB, the largest an unprivileged
/// process gets by default.
const SPLICE_PIPE: usize = 1 << 20;

/// How a sender moves the file to its socket.
#[derive(Clone, Copy, Debug)]
enum Method {
    /// `FileRegion::transfer_to`: `sendfile`.
    Sendfile,
    /// `RegionPipe::send`: `splice` through a pipe of this many bytes.
    Splice(usize),
    /// The copy loop through a buffer of this many bytes.
    Copy(usize),
}

/// Writes the whole file to `stream` by `method`.
fn send_file<S>(stream: &S, path: &Path, method: Method)
where
    S: AsFd,
    for<'a> &'a S: Write,
{
    // The zero-copy senders cork a TCP socket for the whole file, as the
    // crate's docs advise and the reactor's channels do (a Unix socket
    // cannot be corked, and has no segments to fill).
    let _cork = match method {
        Method::Sendfile | Method::Splice(_) => Cork::on(stream).ok(),
        Method::Copy(_) => None,
    };
    // And leave BBR's pacing, which a loopback peer has no use for, as the
    // crate's docs advise too (a no-op under any other congestion control).
    if matches!(method, Method::Sendfile | Method::Splice(_)) {
        let _ = gyre_zerocopy::unpace_local(stream);
    }
    match method {
        Method::Sendfile => {
            let mut region = FileRegion::open(path).expect("open");
            while !region.is_done() {
                region.transfer_to(stream).expect("sendfile");
            }
        }
        Method::Splice(pipe) => {
            let mut region = FileRegion::open(path).expect("open");
            let mut pipe = RegionPipe::new(pipe).expect("pipe");
            while !region.is_done() {
                pipe.send(&mut region, stream).expect("splice");
            }
        }
        Method::Copy(size) => {
            let mut file = File::open(path).expect("open");
            let mut buf = vec![0u8; size];
            let mut out = stream;
            loop {
                let n = file.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).expect("write");
            }
        }
    }
}

/// One blocking sender thread and one reader thread over `link`.
fn send_once(path: &Path, len: u64, method: Method, link: Link, congestion: Option<&str>) -> Sent {
    match link {
        Link::Tcp => {
            // A connection completes in the listener's backlog, so both ends
            // can be had before either thread starts.
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let ours = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
            if let Some(name) = congestion {
                socket2::SockRef::from(&ours)
                    .set_tcp_congestion(name.as_bytes())
                    .expect("TCP_CONGESTION");
            }
            let (theirs, _) = listener.accept().expect("accept");
            send_over(ours, theirs, path, len, method, link)
        }
        Link::Unix => {
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            // The room the reactor gives a file send over a Unix socket
            // (a Unix socket, unlike TCP, never widens its own), for both
            // blocking senders alike.
            let room = gyre_reactor::UNIX_FILE_SEND_BUFFER;
            socket2::SockRef::from(&ours)
                .set_send_buffer_size(room)
                .expect("SO_SNDBUF");
            send_over(ours, theirs, path, len, method, link)
        }
    }
}

/// Sends the file from `ours` in one thread while another discards it from
/// `theirs`; the sender closes `ours` when done, which ends the reader.
fn send_over<S>(ours: S, theirs: S, path: &Path, len: u64, method: Method, link: Link) -> Sent
where
    S: AsFd + Send + 'static,
    for<'a> &'a S: Write,
{
    let path = path.to_owned();
    let reader = std::thread::spawn(move || discard(&theirs, u64::MAX, link));
    let sender = std::thread::spawn(move || {
        let (started, cpu0) = (Instant::now(), thread_cpu_time());
        send_file(&ours, &path, method);
        (started, thread_cpu_time() - cpu0)
    });
    let (started, cpu) = sender.join().expect("sender");
    let (received, reader_cpu) = reader.join().expect("reader");
    Sent::checked(received, len, started.elapsed(), cpu, reader_cpu)
}

/// Sends the whole file from a gyre server: a one-loop group on
/// `transport` whose handler writes the file as one `FileRegion` when a
/// connection opens, so this is the reactor's own file path (outbound
/// queue, writable readiness, and `file_send`'s path from the loop thread
/// on both transports). The sender's CPU is the whole process's less the
/// reader's (this thread's): work the kernel does for the loop in threads
/// of its own (io_uring's `iou-wrk-*` workers, which ran every splice
/// before the loop sent files itself) belongs to the process but not to
/// the loop thread, and counting the loop thread alone would miss it.
fn send_via_reactor(
    path: &Path,
    len: u64,
    transport: Transport,
    file_send: FileSend,
    link: Link,
    congestion: Option<&str>,
) -> Sent {
    struct SendFile(PathBuf);
    impl InboundHandler for SendFile {
        type Read = BytesMut;
        type Pass = ();
        type Write = Outbound;
        fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
            let region = FileRegion::open(&self.0).expect("open");
            ctx.write(region.into());
            ctx.flush();
        }
        fn read(&mut self, _: &mut impl InboundContext<Self>, _: BytesMut) {}
    }
    let group = EventLoopGroup::builder()
        .threads(1)
        .name("zc-sender")
        .transport(transport)
        .build()
        .expect("event loop group");
    let path = path.to_owned();
    let mut opts = ChannelOptions::default().file_send(file_send);
    if let Some(name) = congestion {
        opts = opts.tcp_congestion(name);
    }
    let bootstrap = ServerBootstrap::new().group(group).child_options(opts);
    let init = move || Pipeline::with_file_regions().inbound(SendFile(path.clone()));
    let socket_path = std::env::temp_dir().join(format!("gyre-zc-{}.sock", std::process::id()));
    let server = match link {
        Link::Tcp => bootstrap.bind("127.0.0.1:0", move |_| init()),
        Link::Unix => {
            let _ = std::fs::remove_file(&socket_path);
            bootstrap.bind_unix(&socket_path, init)
        }
    }
    .expect("bind");
    let cpu0 = process_cpu_time();
    let started = Instant::now();
    let (received, reader_cpu) = match link {
        Link::Tcp => {
            let stream = TcpStream::connect(server.local_addr()).expect("connect");
            discard(&stream, len, link)
        }
        Link::Unix => {
            let stream = UnixStream::connect(&socket_path).expect("connect");
            discard(&stream, len, link)
        }
    };
    let elapsed = started.elapsed();
    let cpu = process_cpu_time().saturating_sub(cpu0 + reader_cpu);
    let _ = std::fs::remove_file(&socket_path);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    Sent::checked(received, len, elapsed, cpu, reader_cpu)
}

fn median(v: &mut [f64]) -> f64 {
    gyre_benches::stats::median(v)
}

fn bench_send(
    dir: &Path,
    rounds: usize,
    copy_buffer: usize,
    file_send: FileSend,
    cc: Option<&str>,
) {
    let len = 1u64 << 30;
    let path = dir.join("gyre-zerocopy-bench-1GiB");
    warm_file(&path, len).expect("make the 1 GiB file");
    let gib = len as f64 / (1u64 << 30) as f64;
    // The first two are the issue's comparison; the third splices through
    // a 1 MiB pipe instead of `sendfile` (which wins depends on the host);
    // the reactor's two are its file path end to end, on each transport;
    // the next two are the first two over a Unix socket, where no TCP runs
    // in the sender's thread, and the next the reactor's over one; the
    // last two the epoll reactor held to one path each, beside which its
    // own path (by default `Auto`: the probe's choice) is judged.
    let names = [
        "gyre",
        "copy",
        "gyre-splice",
        "gyre-reactor-epoll",
        "gyre-reactor-uring",
        "unix-gyre",
        "unix-copy",
        "unix-gyre-reactor-epoll",
        "gyre-reactor-epoll-sendfile",
        "gyre-reactor-epoll-splice",
    ];
    const CASES: usize = 10;
    let mut rates: [Vec<f64>; CASES] = Default::default();
    let mut cpus: [Vec<f64>; CASES] = Default::default();
    let mut reader_cpus: [Vec<f64>; CASES] = Default::default();
    for round in 0..rounds {
        for k in 0..names.len() {
            // Rotate who goes first, so drift hits every sender alike.
            let which = (round + k) % names.len();
            let sent = match which {
                0 => send_once(&path, len, Method::Sendfile, Link::Tcp, cc),
                1 => send_once(&path, len, Method::Copy(copy_buffer), Link::Tcp, cc),
                2 => send_once(&path, len, Method::Splice(SPLICE_PIPE), Link::Tcp, cc),
                3 => send_via_reactor(&path, len, Transport::Epoll, file_send, Link::Tcp, cc),
                4 => send_via_reactor(&path, len, Transport::IoUring, file_send, Link::Tcp, cc),
                5 => send_once(&path, len, Method::Sendfile, Link::Unix, None),
                6 => send_once(&path, len, Method::Copy(copy_buffer), Link::Unix, None),
                7 => send_via_reactor(&path, len, Transport::Epoll, file_send, Link::Unix, None),
                8 => {
                    let sendfile = FileSend::Sendfile;
                    send_via_reactor(&path, len, Transport::Epoll, sendfile, Link::Tcp, cc)
                }
                _ => {
                    let splice = FileSend::Splice { pipe: SPLICE_PIPE };
                    send_via_reactor(&path, len, Transport::Epoll, splice, Link::Tcp, cc)
                }
            };
            rates[which].push(gib / sent.seconds);
            cpus[which].push(sent.cpu / gib);
            reader_cpus[which].push(sent.reader_cpu / gib);
        }
    }
    let mut rate = [0.0; CASES];
    let mut cpu = [0.0; CASES];
    for which in 0..names.len() {
        rate[which] = median(&mut rates[which]);
        cpu[which] = median(&mut cpus[which]);
        let reader = median(&mut reader_cpus[which]);
        println!(
            "result send-1GiB {} {:.2} GiB/s  sender cpu {:.3} s/GiB  reader cpu {:.3} s/GiB  both {:.3} s/GiB",
            names[which],
            rate[which],
            cpu[which],
            reader,
            cpu[which] + reader
        );
    }
    // Which of the two zero-copy paths this host should use for files,
    // from each round's own pair (the two ran seconds apart, in the same
    // phase of the host, where the medians of all rounds mix phases), by
    // the reactor probe's rule: splice only if 10% faster.
    let splice_per_sendfile = same_round_ratio(&rates[2], &rates[0]);
    let verdict = if splice_per_sendfile > 1.1 {
        "splice through a 1 MiB pipe"
    } else if splice_per_sendfile < 1.0 / 1.1 {
        "sendfile"
    } else {
        "a tie, so sendfile (no pipe per channel)"
    };
    println!(
        "# file path on this host: {verdict} (splice's rate over sendfile's in the same round, median {splice_per_sendfile:.2}; medians alone {:.2} and {:.2} GiB/s); the reactor's file path ran {}",
        rate[2],
        rate[0],
        file_send.describe(),
    );
    for (bench, which, peer) in [
        ("send-1GiB", 0, 1),
        ("send-1GiB", 2, 1),
        ("send-1GiB", 3, 1),
        ("send-1GiB", 4, 1),
        // The two transports' file paths against each other.
        ("send-1GiB", 4, 3),
        ("send-1GiB-unix", 5, 6),
        ("send-1GiB-unix", 7, 6),
        // The reactor's own path against each fixed one.
        ("send-1GiB", 3, 8),
        ("send-1GiB", 3, 9),
    ] {
        let name = names[which].trim_start_matches("unix-");
        let peer_name = names[peer].trim_start_matches("unix-");
        let ratio = rate[which] / rate[peer];
        println!("ratio {bench} {name}/{peer_name} {ratio:.2}");
        let ratio = cpu[which] / cpu[peer];
        println!("ratio {bench}-cpu {name}/{peer_name} {ratio:.2}");
        let ratio = same_round_ratio(&rates[which], &rates[peer]);
        println!("ratio {bench}-same-round {name}/{peer_name} {ratio:.2}");
    }
}

/// Fixed-seed 4 KiB-aligned offsets within `len`.
fn offsets(len: u64, count: usize) -> Vec<u64> {
    let pages = len / 4096;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % pages) * 4096
        })
        .collect()
}

/// Folds a 4 KiB block so the reads cannot be optimised away.
#[inline]
fn fold(block: &[u8]) -> u64 {
    block.chunks_exact(8).fold(0u64, |acc, w| {
        acc.rotate_left(5) ^ u64::from_le_bytes(w.try_into().unwrap())
    })
}

fn bench_read(dir: &Path, rounds: usize, count: usize) {
    let len = 256u64 << 20;
    let path = dir.join("gyre-zerocopy-bench-256MiB");
    warm_file(&path, len).expect("make the 256 MiB file");
    let offsets = offsets(len, count);
    let file = SharedFile::open(&path).expect("open");
    // SAFETY: the bench owns this file and nothing truncates it while the
    // map lives.
    let map = unsafe { MmapRegion::whole(&file) }.expect("mmap");
    let mut times = [Vec::new(), Vec::new()];
    let mut sums = [0u64; 2];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let started = Instant::now();
            let mut sum = 0u64;
            if which == 0 {
                for &o in &offsets {
                    sum ^= fold(&map[o as usize..o as usize + 4096]);
                }
            } else {
                let mut buf = [0u8; 4096];
                for &o in &offsets {
                    file.file().read_exact_at(&mut buf, o).expect("pread");
                    sum ^= fold(&buf);
                }
            }
            times[which].push(started.elapsed().as_nanos() as f64 / count as f64);
            sums[which] = std::hint::black_box(sum);
        }
    }
    assert_eq!(sums[0], sums[1], "both must read the same bytes");
    let ns = [median(&mut times[0]), median(&mut times[1])];
    println!("result read-4KiB mmap {:.0} ns/read", ns[0]);
    println!("result read-4KiB pread {:.0} ns/read", ns[1]);
    println!("ratio read-4KiB mmap/pread {:.2}", ns[1] / ns[0]);
}

fn main() {
    println!("{}", gyre_benches::host::describe());
    let _steal = gyre_benches::steal::RunSteal::start();
    let args = Args::parse();
    let started = Instant::now();
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let rounds = if args.quick { 2 } else { 5 };
    println!(
        "# gyre zerocopy bench: {} mode, {} cores, {rounds} rounds alternating the order, medians shown; copy buffer {} KiB",
        if args.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |c| c.get()),
        args.copy_buffer / 1024,
    );
    let file_send = args.reactor_file_send.option();
    if file_send == FileSend::Auto {
        // Measured before any sender runs, as a server's first file send
        // would start it, so the reactor cases all take its choice.
        FileSend::start_probe();
        let asked = Instant::now();
        while FileSend::probe().is_none() && asked.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        match FileSend::probe() {
            Some(Ok(probe)) => println!(
                "# the reactor's file-send probe: {probe}; auto sends with {}",
                file_send.resolve().describe()
            ),
            Some(Err(e)) => {
                println!("# the reactor's file-send probe failed ({e}): auto sends with sendfile")
            }
            None => println!(
                "# the reactor's file-send probe did not end in 10 s: auto sends with sendfile"
            ),
        }
    }
    let cc = args.tcp_congestion.as_deref();
    if let Some(name) = cc {
        // Refused now rather than by the first sender, mid-run.
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        if let Err(e) = socket2::SockRef::from(&probe).set_tcp_congestion(name.as_bytes()) {
            eprintln!("zerocopy: --tcp-congestion {name}: {e}");
            std::process::exit(2);
        }
    }
    let host_cc = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    match &args.tcp_congestion {
        Some(name) => println!(
            "# TCP senders run congestion control {name} (--tcp-congestion; the host's default is {host_cc})"
        ),
        None => println!(
            "# TCP senders run congestion control {host_cc} (the host's default; gyre's move a local connection off BBR, the copy loop does not)"
        ),
    }
    if !args.only_cold_file {
        bench_send(&dir, rounds, args.copy_buffer, file_send, cc);
        bench_read(&dir, rounds, if args.quick { 500_000 } else { 2_000_000 });
    }
    let svg = (!args.quick).then(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/results/cold-file-pings.svg"
        ))
    });
    let len = if args.quick { 256 << 20 } else { 1 << 30 };
    let downloads = args.cold_downloads.max(1);
    gyre_benches::cold_file::bench(&dir, len, rounds, downloads, svg.as_deref());
    println!("# total {:.1} s", started.elapsed().as_secs_f64());
}
