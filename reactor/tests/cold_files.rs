//! File regions whose bytes are only on disk, sent by channels with a
//! [`FileLoader`]: the loaders read them in, and the loop's own sends
//! read nothing from the disk; the bytes arrive whole and in order, on
//! both of epoll's file paths, and a cached file is sent without a load;
//! a window whose pages are still in flight from the disk for another
//! reader goes to a loader; a file cut short fails only its channel; many channels loading in
//! small windows through a short queue all finish (every wake-up comes).
//! Over a real loopback socket and a real file on the target folder's
//! disk (not tmpfs, whose pages are never out).

mod common;

use bytes::BytesMut;
use common::SendFile;
use gyre_reactor::{
    ChannelOptions, EventLoopGroup, FileLoader, FileSend, InboundContext, InboundHandler, Outbound,
    Pipeline, ServerBootstrap,
};
use gyre_zerocopy::FileRegion;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

const LEN: usize = 24 << 20;

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 13) as u8)
        .collect()
}

/// Drops `path` from the page cache; whether the kernel now says it is
/// out (`false` where it cannot tell, or the file lives in memory).
fn evict(path: &Path) -> bool {
    gyre_testkit::evict_from_page_cache(path).unwrap();
    FileRegion::open(path).unwrap().is_cached() == Some(false)
}

/// A folder of its own holding `cold.bin`, `len` bytes of [`pattern`],
/// evicted: (folder, file, content). `None`, the folder gone, where the
/// kernel cannot tell cached pages from cold ones.
fn cold_file(tag: &str, len: usize) -> Option<(PathBuf, PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cold-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cold.bin");
    let content = pattern(len);
    std::fs::write(&file, &content).unwrap();
    if !evict(&file) {
        eprintln!("skipped: the kernel cannot tell cached pages from cold ones here");
        std::fs::remove_dir_all(&dir).unwrap();
        return None;
    }
    Some((dir, file, content))
}

/// A server on one loop whose channels send `file` through `loader` to
/// every client, for each read.
fn serve(file: &Path, loader: &FileLoader) -> gyre_reactor::Server {
    let f = file.to_owned();
    ServerBootstrap::new()
        .group(common::group(1))
        .child_options(ChannelOptions::default().file_loader(loader.clone()))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::with_file_regions().inbound(SendFile(f.clone()))
        })
        .unwrap()
}

fn cold_send(tag: &str, path: FileSend) {
    let Some((dir, file, content)) = cold_file(tag, LEN) else {
        return;
    };
    let loader = FileLoader::builder()
        .window(1 << 20)
        .read_ahead(2 << 20)
        .start()
        .unwrap();
    let loop_name = format!("cold-{tag}");
    let group = EventLoopGroup::builder()
        .threads(1)
        .name(&loop_name)
        .transport(common::transport())
        .build()
        .unwrap();
    let f = file.clone();
    let server = ServerBootstrap::new()
        .group(group)
        .child_options(
            ChannelOptions::default()
                .file_send(path)
                .file_loader(loader.clone()),
        )
        .bind("127.0.0.1:0", move |_| {
            Pipeline::with_file_regions().inbound(SendFile(f.clone()))
        })
        .unwrap();
    let loop_before = gyre_testkit::storage_read_bytes_of_threads(&loop_name);

    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    // A lost wake-up stalls the download: a clear failure, not a hang.
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    client.write_all(b"go").unwrap();
    let mut got = vec![0u8; LEN];
    client.read_exact(&mut got).unwrap();
    assert!(got == content, "the file arrived whole and in order");

    let counts = loader.counts();
    let loop_read = gyre_testkit::storage_read_bytes_of_threads(&loop_name) - loop_before;
    eprintln!("{tag}: {counts:?}, loop read {loop_read} bytes from storage");
    assert!(counts.windows_loaded >= 1, "{counts:?}");
    assert!(counts.bytes_loaded >= LEN as u64, "{counts:?}");
    assert_eq!((counts.refused, counts.failed), (0, 0));
    assert!(
        loop_read < 256 * 1024,
        "the loop read {loop_read} bytes from the disk"
    );

    // Now cached: sent again without a load.
    client.write_all(b"go").unwrap();
    client.read_exact(&mut got).unwrap();
    assert!(got == content);
    assert_eq!(loader.counts().windows_loaded, counts.windows_loaded);

    drop(client);
    server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cold_file_is_read_in_by_the_loaders_not_the_loop_with_sendfile() {
    cold_send("sendfile", FileSend::Sendfile);
}

#[test]
fn a_cold_file_is_read_in_by_the_loaders_not_the_loop_with_splice() {
    cold_send("splice", FileSend::Splice { pipe: 1 << 20 });
}

/// Opens its file at `open`, and answers `go` with the region opened then;
/// reports the channel's error.
struct SendOpened {
    path: PathBuf,
    region: Option<FileRegion>,
    errors: std::sync::mpsc::Sender<String>,
}

impl InboundHandler for SendOpened {
    type Read = BytesMut;
    type Pass = ();
    type Write = Outbound;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, what: BytesMut) {
        if &what[..] == b"open" {
            self.region = Some(FileRegion::open(&self.path).unwrap());
            ctx.write_and_flush(Outbound::Bytes(bytes::Bytes::from_static(b"k")));
        } else if let Some(region) = self.region.take() {
            ctx.write_and_flush(region.into());
        }
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: gyre_reactor::Error) {
        let _ = self.errors.send(error.to_string());
        ctx.close();
    }
}

#[test]
fn a_cold_file_cut_short_fails_its_own_channel_and_the_loop_serves_on() {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cold-cut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cut.bin");
    std::fs::write(&file, pattern(8 << 20)).unwrap();
    let loader = FileLoader::builder().window(1 << 20).start().unwrap();
    let (tx, errors) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let f = file.clone();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .child_options(ChannelOptions::default().file_loader(loader.clone()))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::with_file_regions().inbound(SendOpened {
                path: f.clone(),
                region: None,
                errors: tx.lock().unwrap().clone(),
            })
        })
        .unwrap();
    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    client.write_all(b"open").unwrap();
    let mut k = [0u8; 1];
    client.read_exact(&mut k).unwrap();
    // The region was made at 8 MiB; the file is now 100 KiB, and cold.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(100 * 1024)
        .unwrap();
    let cold = evict(&file);
    client.write_all(b"go").unwrap();
    let mut got = Vec::new();
    let _ = client.read_to_end(&mut got);
    assert!(
        got.len() <= 100 * 1024,
        "no more than the file holds: {}",
        got.len()
    );
    let error = errors
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the channel failed");
    assert!(
        error.contains("cut.bin"),
        "the error names the file: {error}"
    );
    if cold {
        assert!(loader.counts().failed >= 1, "{:?}", loader.counts());
    }
    // The loop serves on.
    let mut other = TcpStream::connect(server.local_addr()).unwrap();
    other.write_all(b"open").unwrap();
    other.read_exact(&mut k).unwrap();
    assert_eq!(&k, b"k");
    drop((client, other));
    server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Many channels at once on one loop, each downloading the same cold file
/// in small windows through a loaders' queue too short for them all: every
/// load's wake-up must arrive (a lost one hangs its download), every byte
/// must arrive in order, and windows the full queue refused go out
/// unloaded, still whole.
#[test]
fn many_channels_downloading_cold_files_in_small_windows_all_finish_whole() {
    const CLIENTS: usize = 12;
    const FILE: usize = 6 << 20;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cold-many-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("many.bin");
    let content = pattern(FILE);
    std::fs::write(&file, &content).unwrap();
    let loader = FileLoader::builder()
        .threads(2)
        .window(64 * 1024)
        .read_ahead(128 * 1024)
        .queue(4)
        .start()
        .unwrap();
    let server = serve(&file, &loader);
    let addr = server.local_addr();
    for round in 0..3 {
        let cold = evict(&file);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
                    .unwrap();
                c.write_all(b"go").unwrap();
                c
            })
            .collect();
        let readers: Vec<_> = clients
            .into_iter()
            .map(|mut c| {
                std::thread::spawn(move || {
                    let mut got = vec![0u8; FILE];
                    c.read_exact(&mut got).map(|_| got)
                })
            })
            .collect();
        for (i, r) in readers.into_iter().enumerate() {
            let got = r.join().unwrap().unwrap_or_else(|e| {
                panic!(
                    "round {round}, client {i}: the download stalled ({e}); {:?}",
                    loader.counts()
                )
            });
            assert!(
                got == content,
                "round {round}, client {i}: the file arrived whole"
            );
        }
        eprintln!("round {round} (evicted: {cold}): {:?}", loader.counts());
    }
    let counts = loader.counts();
    if counts.windows_loaded > 0 {
        assert_eq!(counts.failed, 0, "{counts:?}");
    }
    server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A window whose pages another reader has in flight from the disk (here
/// the kernel, asked with `POSIX_FADV_WILLNEED` just before the request)
/// counts as cached to `cachestat`, and a loop sending it would wait for
/// the reads in its `sendfile`. The channel asks whether the window is
/// read in, and has a loader wait for it instead. The file is one window
/// long, so only such a window can be loaded: the loop's own checks
/// otherwise find it all cached. The reads take about 2 ms and the
/// request's trip to the loop a fraction of that; a disk faster than
/// that is tried up to 10 times.
#[test]
fn a_window_another_reader_has_in_flight_goes_to_a_loader() {
    const FILE: usize = 4 << 20;
    let Some((dir, file, content)) = cold_file("in-flight", FILE) else {
        return;
    };
    let loader = FileLoader::builder().window(FILE as u64).start().unwrap();
    let server = serve(&file, &loader);
    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let reader = std::fs::File::open(&file).unwrap();
    let mut got = vec![0u8; FILE];
    let mut loaded = false;
    for _ in 0..10 {
        assert!(evict(&file));
        // SAFETY: posix_fadvise on an open descriptor; it only advises
        // (here: start reading the whole file in, and return).
        let rc = unsafe {
            libc::posix_fadvise(
                std::os::fd::AsRawFd::as_raw_fd(&reader),
                0,
                FILE as libc::off_t,
                libc::POSIX_FADV_WILLNEED,
            )
        };
        assert_eq!(rc, 0);
        let before = loader.counts().windows_loaded;
        client.write_all(b"go").unwrap();
        client.read_exact(&mut got).unwrap();
        assert!(got == content, "the file arrived whole and in order");
        if loader.counts().windows_loaded > before {
            loaded = true;
            break;
        }
    }
    assert!(
        loaded,
        "a window in flight from the disk was never loaded: {:?}",
        loader.counts()
    );
    drop(client);
    server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
