//! What it would cost the broker's fetch path to refuse batches that fail
//! their CRC: the path as it is (whole batches straight from the segment
//! file with `sendfile`) against the same bytes read into memory, every
//! batch's CRC-32C checked, and sent with `send`, in one run.
//!
//! ```text
//! cargo run --release -p gyre-benches --bin fetch_crc -- --quick   # < 30 s
//! cargo run --release -p gyre-benches --bin fetch_crc              # 5 rounds
//! ```
//!
//! A 512 MiB partition log of 16 KiB batches (as a busy producer writes
//! them), warm in the page cache, goes over loopback TCP in 1 MiB fetch
//! responses to a reader that drops the bytes in the kernel. Printed per
//! sender: GiB/s and the sending thread's CPU seconds per GiB, then
//! `ratio fetch checked/sendfile <throughput>` and
//! `ratio fetch-cpu checked/sendfile <cpu>`.

use clap::Parser;
use gyre_benches::stats::{median, thread_cpu_time};
use gyre_broker::log::{batch, LogConfig, PartitionLog};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// One round on a 128 MiB log instead of five on 512 MiB.
    #[arg(long)]
    quick: bool,
}

const SLICE: u64 = 1 << 20;

/// Sends the whole log in fetch-sized slices, the way `send_slice` says;
/// returns (bytes, seconds, sending thread CPU seconds).
fn run(
    log: &PartitionLog,
    send_slice: impl Fn(&PartitionLog, i64, &mut TcpStream, &mut Vec<u8>) -> (u64, i64),
) -> (u64, f64, f64) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let fd = stream.as_raw_fd();
        let mut total = 0u64;
        loop {
            // SAFETY: with MSG_TRUNC a TCP socket drops the bytes without
            // copying; the null buffer is never written.
            let n = unsafe { libc::recv(fd, std::ptr::null_mut(), 1 << 20, libc::MSG_TRUNC) };
            if n <= 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let mut out = TcpStream::connect(addr).unwrap();
    let mut buf = Vec::new();
    let cpu = thread_cpu_time();
    let t = Instant::now();
    let (mut sent, mut offset) = (0u64, 0i64);
    while offset < log.end_offset() {
        let (n, next) = send_slice(log, offset, &mut out, &mut buf);
        sent += n;
        offset = next;
    }
    drop(out);
    let received = reader.join().unwrap();
    assert_eq!(received, sent, "every byte arrived");
    (
        sent,
        t.elapsed().as_secs_f64(),
        (thread_cpu_time() - cpu).as_secs_f64(),
    )
}

/// The fetch path as it is: the slice's region goes out with sendfile.
fn unchecked(log: &PartitionLog, offset: i64, out: &mut TcpStream, _: &mut Vec<u8>) -> (u64, i64) {
    let slice = log.read(offset, SLICE).unwrap().expect("data");
    let mut region = slice.region;
    let n = region.len();
    while !region.is_done() {
        region.transfer_to(out).unwrap();
    }
    (n, next_offset(&region, n))
}

/// The same slice read into memory, every batch's CRC checked, then sent.
fn checked(log: &PartitionLog, offset: i64, out: &mut TcpStream, buf: &mut Vec<u8>) -> (u64, i64) {
    let slice = log.read(offset, SLICE).unwrap().expect("data");
    let region = &slice.region;
    buf.resize(region.len() as usize, 0);
    region
        .file()
        .file()
        .read_exact_at(buf, region.offset())
        .unwrap();
    let mut at = 0;
    while at < buf.len() {
        let header = batch::validate(&buf[at..]).expect("an intact batch");
        at += header.size;
    }
    out.write_all(buf).unwrap();
    (region.len(), next_offset(region, region.len()))
}

/// The offset after the last batch of a region of `len` bytes (its whole
/// batches' headers walked; the same for both senders).
fn next_offset(region: &gyre_zerocopy::FileRegion, len: u64) -> i64 {
    let mut last = [0u8; batch::HEADER_LEN];
    let file = region.file().file();
    let (mut pos, end) = (region.offset(), region.offset() + len);
    let mut next = 0;
    while pos < end {
        file.read_exact_at(&mut last, pos).unwrap();
        let header = batch::parse_header(&last).unwrap();
        next = header.next_offset();
        pos += header.size as u64;
    }
    next
}

fn main() {
    println!("{}", gyre_benches::host::describe());
    let args = Args::parse();
    let (size, rounds) = if args.quick {
        (128u64 << 20, 1)
    } else {
        (512 << 20, 5)
    };
    let dir = std::env::temp_dir().join(format!("gyre-fetch-crc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = LogConfig {
        segment_bytes: 1 << 30,
        retention_age: None,
        ..LogConfig::default()
    };
    let (mut log, _) = PartitionLog::open(&dir, config).unwrap();
    let record = vec![b'r'; 160];
    let records: Vec<&[u8]> = (0..100).map(|_| record.as_slice()).collect();
    let one = batch::build(0, 1_700_000_000_000, &records);
    while log.size() < size {
        // Groups of 64 batches, as the log writer commits them.
        for _ in 0..64 {
            log.stage(&one).unwrap();
        }
        log.commit().unwrap();
    }
    println!("{}", gyre_benches::host::describe());
    let _steal = gyre_benches::steal::RunSteal::start();
    println!(
        "log: {} MiB of {}-byte batches",
        log.size() >> 20,
        one.len()
    );
    let (mut rates, mut cpus) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for _ in 0..rounds {
        type Sender = fn(&PartitionLog, i64, &mut TcpStream, &mut Vec<u8>) -> (u64, i64);
        let senders: [Sender; 2] = [unchecked, checked];
        for (i, sender) in senders.into_iter().enumerate() {
            let (bytes, secs, cpu) = run(&log, sender);
            let gib = bytes as f64 / (1u64 << 30) as f64;
            rates[i].push(gib / secs);
            cpus[i].push(cpu / gib);
        }
    }
    let names = ["sendfile", "checked"];
    for i in 0..2 {
        println!(
            "{:>9}: {:.2} GiB/s, {:.3} CPU s/GiB (median of {rounds})",
            names[i],
            median(&mut rates[i]),
            median(&mut cpus[i])
        );
    }
    println!(
        "ratio fetch checked/sendfile {:.2}",
        median(&mut rates[1]) / median(&mut rates[0])
    );
    println!(
        "ratio fetch-cpu checked/sendfile {:.2}",
        median(&mut cpus[1]) / median(&mut cpus[0])
    );
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}
