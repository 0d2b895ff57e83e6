//! Unix domain stream sockets, on both transports: a Gyre server echoes
//! for many std clients at once, a Gyre client talks to a Gyre server
//! through a line codec, idle events fire, a file region goes out with
//! sendfile, graceful shutdown delivers what is queued, and failures name
//! the path.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
use gyre_reactor::{
    Bootstrap, IdleStateHandler, InboundContext, InboundHandler, Outbound, Pipeline,
    ServerBootstrap, UserEvent,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// A fresh directory of this test's own.
fn test_dir(name: &str) -> PathBuf {
    gyre_testkit::scratch_dir(&format!("unix-{name}"))
}

fn socket_path(name: &str) -> PathBuf {
    test_dir(name).join("s.sock")
}

#[test]
fn a_unix_server_echoes_for_many_clients_at_once() {
    let path = socket_path("unix-echo");
    let server = ServerBootstrap::new()
        .group(common::group(2))
        .bind_unix(&path, || Pipeline::new().inbound(common::Echo))
        .unwrap();
    assert_eq!(server.unix_path(), Some(path.as_path()));
    let threads: Vec<_> = (0..20u8)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&path).unwrap();
                let msg = vec![i; 64 * 1024 + i as usize];
                let mut w = s.try_clone().unwrap();
                let send = msg.clone();
                let writer = std::thread::spawn(move || w.write_all(&send).unwrap());
                let mut back = vec![0; msg.len()];
                s.read_exact(&mut back).unwrap();
                writer.join().unwrap();
                assert_eq!(back, msg);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let m = server.metrics().unwrap();
    assert_eq!(m.accepted, 20);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    assert!(UnixStream::connect(&path).is_err(), "no longer accepting");
}

/// Upper-cases lines; reports idleness.
struct Shout(mpsc::Sender<&'static str>);

impl InboundHandler for Shout {
    type Read = Bytes;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, line: Bytes) {
        ctx.write_and_flush(Bytes::from(line.to_ascii_uppercase()));
    }

    fn user_event(&mut self, _: &mut impl InboundContext<Self>, event: UserEvent) {
        if let UserEvent::Idle(_) = event {
            let _ = self.0.send("idle");
        }
    }
}

/// Hands lines it reads to the test.
struct Collect(mpsc::Sender<Bytes>);

impl InboundHandler for Collect {
    type Read = Bytes;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, _: &mut impl InboundContext<Self>, line: Bytes) {
        let _ = self.0.send(line);
    }
}

#[test]
fn a_gyre_client_talks_to_a_gyre_server_with_codecs_and_idle_events() {
    let path = socket_path("unix-codec");
    let (idle_tx, idle_rx) = mpsc::channel();
    let idle_tx = std::sync::Mutex::new(idle_tx);
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind_unix(&path, move || {
            Pipeline::new()
                .inbound(IdleStateHandler::new(
                    Duration::from_millis(100),
                    Duration::ZERO,
                    Duration::ZERO,
                ))
                .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
                .inbound(Shout(idle_tx.lock().unwrap().clone()))
        })
        .unwrap();
    let group = common::group(1);
    let (tx, rx) = mpsc::channel();
    let handle = Bootstrap::new(group.clone())
        .connect_unix(&path, move || {
            Pipeline::new()
                .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
                .inbound(Collect(tx))
        })
        .unwrap();
    for word in ["alpha", "beta"] {
        handle.write_and_flush(Bytes::from(word)).unwrap();
    }
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "ALPHA");
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "BETA");
    assert_eq!(
        idle_rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        "idle"
    );
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

/// Answers any input with the file region it was given.
struct SendFile(gyre_zerocopy::SharedFile, u64);

impl InboundHandler for SendFile {
    type Read = BytesMut;
    type Pass = ();
    type Write = Outbound;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
        let region = gyre_zerocopy::FileRegion::new(self.0.clone(), 0, self.1).unwrap();
        ctx.write(Outbound::from(region));
        ctx.close(); // after what is queued
    }
}

#[test]
fn a_file_region_goes_to_a_unix_peer_and_shutdown_delivers_it() {
    let dir = test_dir("unix-file");
    let file_path = dir.join("body");
    let body: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file_path, &body).unwrap();
    let file = gyre_zerocopy::SharedFile::open(&file_path).unwrap();
    let path = socket_path("unix-file-sock");
    let len = body.len() as u64;
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind_unix(&path, move || {
            Pipeline::with_file_regions().inbound(SendFile(file.clone(), len))
        })
        .unwrap();
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(b"go").unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), body.len());
    assert!(got == body, "the file arrives whole");
    server.shutdown_gracefully(Duration::from_millis(10), Duration::from_secs(5));
}

#[test]
fn failures_name_the_path() {
    let path = socket_path("unix-errors");
    let group = common::group(1);
    // Nobody listens.
    let e = Bootstrap::new(group.clone())
        .connect_unix(&path, Pipeline::new)
        .unwrap_err();
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    assert_eq!(e.io_kind(), Some(std::io::ErrorKind::NotFound));
    // Already bound.
    let server = ServerBootstrap::new()
        .group(group.clone())
        .bind_unix(&path, || Pipeline::new().inbound(common::Echo))
        .unwrap();
    let e = ServerBootstrap::new()
        .group(group.clone())
        .bind_unix(&path, || Pipeline::new().inbound(common::Echo))
        .unwrap_err();
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    assert_eq!(e.io_kind(), Some(std::io::ErrorKind::AddrInUse));
    // A line through the server still works.
    let s = UnixStream::connect(&path).unwrap();
    (&s).write_all(b"ping\n").unwrap();
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).unwrap();
    assert_eq!(line, "ping\n");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
