//! File regions in a channel's outbound queue, over real loopback sockets
//! and real files: interleaved with `Bytes` in order, counted against the
//! watermarks, and a file truncated mid-send closing only its own channel;
//! each on both of epoll's file paths (`sendfile`, and `splice` through a
//! pipe smaller than the file).

mod common;

use bytes::{Bytes, BytesMut};
use common::eventually;
use gyre_reactor::{
    ChannelOptions, Error, FileSend, InboundContext, InboundHandler, Outbound, Pipeline, Server,
    ServerBootstrap,
};
use gyre_zerocopy::FileRegion;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 11) as u8)
        .collect()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir =
        gyre_testkit::scratch_root().join(format!("gyre-reactor-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the server saw, for the test to check.
#[derive(Default)]
struct Seen {
    writability: Vec<bool>,
    /// (queued bytes, writable) right after the response was written and
    /// before it was flushed.
    after_write: Option<(usize, bool)>,
    errors: Vec<String>,
    truncated: usize,
    inactive: usize,
}

/// Reads a file name and answers `head:` + the file + `:mid:` + bytes
/// 1000..6000 of the file + `:end`.
struct SendFiles {
    dir: PathBuf,
    seen: Arc<Mutex<Seen>>,
}

impl InboundHandler for SendFiles {
    type Read = BytesMut;
    type Pass = ();
    type Write = Outbound;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, name: BytesMut) {
        let path = self.dir.join(std::str::from_utf8(&name).unwrap().trim());
        let whole = FileRegion::open(&path).unwrap();
        let part = FileRegion::new(whole.file().clone(), 1000, 5000).unwrap();
        ctx.write(Bytes::from_static(b"head:").into());
        ctx.write(whole.into());
        ctx.write(Bytes::from_static(b":mid:").into());
        ctx.write(part.into());
        ctx.write(Bytes::from_static(b":end").into());
        let ch = ctx.channel();
        self.seen.lock().unwrap().after_write = Some((ch.queued_bytes(), ch.is_writable()));
        ctx.flush();
    }

    fn writability_changed(&mut self, _: &mut impl InboundContext<Self>, writable: bool) {
        self.seen.lock().unwrap().writability.push(writable);
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: Error) {
        let mut seen = self.seen.lock().unwrap();
        if matches!(error, Error::File(gyre_zerocopy::Error::Truncated { .. })) {
            seen.truncated += 1;
        }
        seen.errors.push(error.to_string());
        ctx.fire_error(error);
    }

    fn inactive(&mut self, _: &mut impl InboundContext<Self>) {
        self.seen.lock().unwrap().inactive += 1;
    }
}

/// The splice path with a pipe far smaller than the files, so a send
/// takes many pipefuls and stalls with bytes held in the pipe.
const SPLICE: FileSend = FileSend::Splice { pipe: 64 * 1024 };

fn server(dir: PathBuf, path: FileSend) -> (Server, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        // Small socket buffers, so big responses queue in the channel.
        .child_options(
            ChannelOptions::default()
                .send_buffer_size(32 * 1024)
                .file_send(path),
        )
        .bind("127.0.0.1:0", move |_| {
            Pipeline::with_file_regions().inbound(SendFiles {
                dir: dir.clone(),
                seen: s.clone(),
            })
        })
        .unwrap();
    (server, seen)
}

/// A client with a small receive buffer (set before connecting, so the
/// window is small from the start).
fn small_receiver(addr: std::net::SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

fn expected(data: &[u8]) -> Vec<u8> {
    [b"head:", data, b":mid:", &data[1000..6000], b":end"].concat()
}

#[test]
fn bytes_and_file_regions_arrive_in_order_and_count_against_watermarks() {
    in_order_and_counted(FileSend::Sendfile, "order");
}

#[test]
fn spliced_file_regions_arrive_in_order_and_count_against_watermarks() {
    in_order_and_counted(SPLICE, "order-splice");
}

/// Pipes this process has open.
fn open_pipes() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("pipe:"))
        .count()
}

/// The tests of this file one at a time, so [`open_pipes`] counts only
/// the test's own.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn in_order_and_counted(path: FileSend, tag: &str) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pipes_before = open_pipes();
    let dir = temp_dir(tag);
    let data = pattern(3 << 20, 1);
    std::fs::write(dir.join("a"), &data).unwrap();
    let (server, seen) = server(dir.clone(), path);
    let want = expected(&data);

    let mut client = small_receiver(server.local_addr());
    client.write_all(b"a").unwrap();
    // Read slowly at first so the queue sits above the high watermark.
    std::thread::sleep(Duration::from_millis(200));
    // The splice path has opened its channel's pipe while a file is
    // queued; the sendfile path opens none. Both transports alike: an
    // io_uring loop sends files as an epoll loop does.
    let pipes = if path == FileSend::Sendfile { 0 } else { 2 };
    assert_eq!(open_pipes(), pipes_before + pipes, "{path:?}");
    let mut got = vec![0u8; want.len()];
    client.read_exact(&mut got).unwrap();
    assert!(got == want, "bytes differ or are out of order");
    // With no file left queued, the channel gives its pipe back while it
    // stays open.
    assert!(
        eventually(Duration::from_secs(5), || open_pipes() == pipes_before),
        "{path:?}: {} pipes, {pipes_before} before",
        open_pipes()
    );

    let (queued, writable) = seen.lock().unwrap().after_write.unwrap();
    assert_eq!(
        queued,
        want.len(),
        "regions count their length in the queue"
    );
    assert!(!writable, "3 MiB queued is above the 64 KiB high watermark");
    assert!(eventually(Duration::from_secs(5), || {
        seen.lock().unwrap().writability == [false, true]
    }));
    assert!(seen.lock().unwrap().errors.is_empty());

    // The connection is still good for another request.
    client.write_all(b"a").unwrap();
    client.read_exact(&mut got).unwrap();
    assert!(got == want);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The default path, `FileSend::Auto`: the first file send starts the
/// probe and goes out whole (with `sendfile` until the probe has
/// measured, perhaps spliced after); once it has, a new channel sends with
/// the path it chose, which shows in the pipes the channel opens (on
/// either transport).
#[test]
fn auto_file_regions_arrive_whole_and_the_channel_takes_the_measured_path() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(
        ChannelOptions::default().file_send_path(),
        FileSend::Auto,
        "the default measures"
    );
    let dir = temp_dir("order-auto");
    let data = pattern(3 << 20, 2);
    std::fs::write(dir.join("a"), &data).unwrap();
    let (server, seen) = server(dir.clone(), FileSend::Auto);
    let want = expected(&data);
    let mut got = vec![0u8; want.len()];

    let mut first = small_receiver(server.local_addr());
    first.write_all(b"a").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    first.read_exact(&mut got).unwrap();
    assert!(got == want, "the first file send's bytes differ");
    assert!(
        eventually(Duration::from_secs(10), || FileSend::probe().is_some()),
        "the first file send under Auto started the probe, and it ends"
    );
    let probe = match FileSend::probe() {
        Some(Ok(probe)) => *probe,
        other => panic!("the probe could not measure on this host: {other:?}"),
    };
    println!("{probe}; Auto now: {}", FileSend::Auto.describe());
    assert_eq!(
        FileSend::Auto.resolve(),
        if probe.splice_wins() {
            FileSend::Splice { pipe: 1 << 20 }
        } else {
            FileSend::Sendfile
        }
    );
    drop(first);
    assert!(eventually(Duration::from_secs(5), || seen
        .lock()
        .unwrap()
        .inactive
        == 1));

    let pipes_before = open_pipes();
    let mut second = small_receiver(server.local_addr());
    second.write_all(b"a").unwrap();
    // Unread, the file stays queued, and a splicing channel holds its pipe.
    std::thread::sleep(Duration::from_millis(200));
    let pipes = if probe.splice_wins() { 2 } else { 0 };
    assert_eq!(open_pipes(), pipes_before + pipes, "{probe}");
    second.read_exact(&mut got).unwrap();
    assert!(got == want, "the second file send's bytes differ");
    assert!(seen.lock().unwrap().errors.is_empty());
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn file_truncated_mid_send_closes_only_its_channel() {
    truncated_closes_only_its_channel(FileSend::Sendfile, "trunc");
}

#[test]
fn file_truncated_mid_splice_closes_only_its_channel() {
    truncated_closes_only_its_channel(SPLICE, "trunc-splice");
}

fn truncated_closes_only_its_channel(path: FileSend, tag: &str) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir(tag);
    let data = pattern(16 << 20, 2);
    std::fs::write(dir.join("shrinks"), &data).unwrap();
    let small = pattern(200_000, 3);
    std::fs::write(dir.join("small"), &small).unwrap();
    let (server, seen) = server(dir.clone(), path);

    // The victim asks for the big file and does not read, so the transfer
    // stalls with most of the file unsent; then the file is cut short.
    let mut victim = small_receiver(server.local_addr());
    victim.write_all(b"shrinks").unwrap();
    let mut bystander = TcpStream::connect(server.local_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("shrinks"))
        .unwrap()
        .set_len(1 << 20)
        .unwrap();

    let mut got = Vec::new();
    let _ = victim.read_to_end(&mut got);
    assert!(
        got.len() < expected(&data).len(),
        "a short body must not pass for whole"
    );
    assert!(
        got.len() >= (1 << 20),
        "what the file still had was sent: {}",
        got.len()
    );
    assert!(eventually(Duration::from_secs(5), || {
        let seen = seen.lock().unwrap();
        seen.truncated == 1 && seen.inactive == 1
    }));
    let errors = seen.lock().unwrap().errors.clone();
    assert!(
        errors[0].contains("shrinks"),
        "the error names the file: {errors:?}"
    );

    // The other connection is unaffected.
    bystander.write_all(b"small").unwrap();
    let want = expected(&small);
    let mut got = vec![0u8; want.len()];
    bystander.read_exact(&mut got).unwrap();
    assert!(got == want);
    assert_eq!(seen.lock().unwrap().inactive, 1);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
}
