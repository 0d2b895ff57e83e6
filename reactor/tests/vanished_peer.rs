//! A peer that vanishes (a pulled cable, a host gone without a reset), over
//! a real link the kernel can lose: a veth pair into a network namespace
//! of the test's own, whose far end is taken down mid-connection. With
//! `ChannelOptions::tcp_user_timeout` the server's channel fails with the
//! kernel's `ETIMEDOUT` soon after; without it the same connection is
//! still open (the kernel retransmits for some 15 minutes).
//!
//! Needs root and iproute2's `ip` (`scripts/test` installs it); where
//! either is missing the test says so and passes without running.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_reactor::{
    ChannelOptions, Error, InboundContext, InboundHandler, Pipeline, ServerBootstrap,
};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A namespace with one end of a veth pair, the other end here: the
/// server listens on `host`, clients in the namespace reach it.
struct Link {
    ns: String,
    host_end: String,
    peer_end: String,
    host: std::net::Ipv4Addr,
    peer: std::net::Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Link {
    fn new() -> Result<Link, String> {
        sweep_dead_links();
        let pid = std::process::id();
        let net = [10, 243, (pid >> 6) as u8, ((pid & 63) * 4) as u8];
        let link = Link {
            ns: format!("gyre-vanish-{pid}"),
            host_end: format!("gv{pid}a"),
            peer_end: format!("gv{pid}b"),
            host: [net[0], net[1], net[2], net[3] + 1].into(),
            peer: [net[0], net[1], net[2], net[3] + 2].into(),
        };
        ip(&["netns", "add", &link.ns])?;
        let (host, peer) = (format!("{}/30", link.host), format!("{}/30", link.peer));
        ip(&[
            "link",
            "add",
            &link.host_end,
            "type",
            "veth",
            "peer",
            "name",
            &link.peer_end,
            "netns",
            &link.ns,
        ])?;
        ip(&["addr", "add", &host, "dev", &link.host_end])?;
        ip(&["link", "set", &link.host_end, "up"])?;
        link.in_ns(&["addr", "add", &peer, "dev", &link.peer_end])?;
        link.in_ns(&["link", "set", &link.peer_end, "up"])?;
        link.in_ns(&["link", "set", "lo", "up"])?;
        Ok(link)
    }

    fn in_ns(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["netns", "exec", &self.ns, "ip"];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Connects to `addr` from inside the namespace: a thread of its own
    /// enters it (a network namespace is per thread), and the socket stays
    /// in it wherever it is used after.
    fn connect(&self, addr: SocketAddr) -> TcpStream {
        let path = format!("/var/run/netns/{}", self.ns);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            // SAFETY: setns on a descriptor we hold open; it changes only
            // this thread's network namespace, and the thread ends here.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap()
        })
        .join()
        .unwrap()
    }

    /// The far end goes dark: what the server sends is lost, and no reset
    /// or acknowledgement comes back.
    fn vanish(&self) {
        self.in_ns(&["link", "set", &self.peer_end, "down"])
            .unwrap();
    }
}

/// Removes the namespaces (and so their veth pairs) of test processes
/// killed before their `Link` was dropped.
fn sweep_dead_links() {
    let Ok(entries) = std::fs::read_dir("/var/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("gyre-vanish-") else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["link", "del", &format!("gv{pid}a")]);
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_end]);
        let _ = ip(&["netns", "del", &self.ns]);
    }
}

#[derive(Debug)]
enum Seen {
    Active,
    Error(String),
    Inactive(Instant),
}

/// Sends a tick every 50 ms, so there is always data in flight for the
/// kernel to wait on an acknowledgement of; reports what happened.
struct Ticker(mpsc::Sender<Seen>);

impl InboundHandler for Ticker {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.schedule_repeating(Duration::from_millis(50), Duration::from_millis(50), 0);
        let _ = self.0.send(Seen::Active);
    }

    fn read(&mut self, _: &mut impl InboundContext<Self>, _: BytesMut) {}

    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, _: u64) {
        ctx.write_and_flush(Bytes::from_static(b"tick"));
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: Error) {
        let _ = self.0.send(Seen::Error(error.to_string()));
        ctx.close();
    }

    fn inactive(&mut self, _: &mut impl InboundContext<Self>) {
        let _ = self.0.send(Seen::Inactive(Instant::now()));
    }
}

fn ticker_server(
    host: std::net::Ipv4Addr,
    options: ChannelOptions,
) -> (gyre_reactor::Server, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .child_options(options)
        .bind(SocketAddr::from((host, 0)), move |_| {
            Pipeline::new().inbound(Ticker(tx.clone()))
        })
        .unwrap();
    (server, rx)
}

/// Reads ticks until one arrives: the connection is up and flowing.
fn first_tick(s: &mut TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b).expect("a tick over the link");
    assert_eq!(&b, b"tick");
}

#[test]
fn a_vanished_peer_fails_the_channel_after_the_user_timeout_and_not_without_it() {
    // SAFETY: geteuid reads the caller's id; no memory is passed.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: making a network namespace needs root");
        return;
    }
    let link = match Link::new() {
        Ok(link) => link,
        Err(e) => {
            eprintln!("skipped: no network namespace with a veth pair here ({e})");
            return;
        }
    };
    let (timed, timed_seen) = ticker_server(
        link.host,
        ChannelOptions::default().tcp_user_timeout(Duration::from_secs(1)),
    );
    let (plain, plain_seen) = ticker_server(link.host, ChannelOptions::default());
    let mut a = link.connect(timed.local_addr());
    let mut b = link.connect(plain.local_addr());
    for (seen, s) in [(&timed_seen, &mut a), (&plain_seen, &mut b)] {
        assert!(matches!(
            seen.recv_timeout(Duration::from_secs(5)),
            Ok(Seen::Active)
        ));
        first_tick(s);
    }
    eprintln!("peer {} gone dark", link.peer);
    let gone = Instant::now();
    link.vanish();

    // The timed channel fails: the kernel's ETIMEDOUT, then inactive. The
    // bound is generous (retransmissions back off; the timeout is checked
    // at the next one after it passes), not a measure of speed.
    let mut error = None;
    let closed = loop {
        match timed_seen.recv_timeout(Duration::from_secs(30)) {
            Ok(Seen::Error(e)) => error = Some(e),
            Ok(Seen::Inactive(at)) => break at,
            Ok(Seen::Active) => panic!("a second connection"),
            Err(_) => panic!(
                "the channel with a 1 s user timeout still open 30 s after its peer vanished"
            ),
        }
    };
    let after = closed - gone;
    eprintln!("closed {after:?} after the peer vanished: {error:?}");
    let error = error.expect("the channel failed with an error before it closed");
    assert!(
        error.to_lowercase().contains("timed out"),
        "not the kernel's ETIMEDOUT: {error}"
    );

    // The same loss without the option: the connection is still held,
    // its ticks queued for retransmission, as long again and more.
    std::thread::sleep(after + Duration::from_secs(2));
    match plain_seen.try_recv() {
        Err(mpsc::TryRecvError::Empty) => {}
        other => panic!("the channel without a user timeout gave up too: {other:?}"),
    }
    drop((a, b));
    timed.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
    plain.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}
