//! The TLS echo benchmark's parts: a certificate made at start, the two
//! TLS echo servers (Gyre's TLS layer under its echo handler, and
//! tokio-rustls under tokio's standard echo task, both on rustls with the
//! `ring` provider), and a single-threaded rustls load generator on mio
//! that drives either: closed-loop echo (connections x in flight) and a
//! handshake rate (full handshakes, no resumption).

use super::load::Report;
use super::servers::{Running, GYRE_THREADS, TOKIO_THREADS};
use super::window::Window;
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A self-made CA's `localhost` certificate, its key, and the CA.
pub struct Certs {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    ca: CertificateDer<'static>,
}

impl Certs {
    /// Makes them (ECDSA P-256, rcgen's default, through gyre-testkit).
    pub fn new() -> Certs {
        use rustls::pki_types::pem::PemObject;
        let ca = gyre_testkit::certs::TestCa::new("bench CA");
        let leaf = ca.issue(&["localhost"]);
        Certs {
            chain: vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).expect("cert")],
            key: PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key"),
            ca: CertificateDer::from_pem_slice(ca.pem().as_bytes()).expect("CA"),
        }
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// The server configuration both servers use.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let config = rustls::ServerConfig::builder_with_provider(Self::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .expect("server config");
        Arc::new(config)
    }

    /// The generator's client configuration (no resumption, so every
    /// connection is a full handshake).
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).expect("root");
        let mut config = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        Arc::new(config)
    }
}

impl Default for Certs {
    fn default() -> Self {
        Self::new()
    }
}

/// Gyre's TLS echo server: the echo example's handler behind the TLS
/// layer, on `workers` epoll loops.
pub fn gyre(workers: usize, config: Arc<rustls::ServerConfig>) -> Running {
    use gyre_reactor::{EventLoopGroup, Pipeline, ServerBootstrap, TlsAcceptor};
    let tls = TlsAcceptor::from_config(config);
    let group = EventLoopGroup::builder()
        .threads(workers)
        .name(GYRE_THREADS)
        .build()
        .expect("loops");
    let server = ServerBootstrap::new()
        .group(group)
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new().tls_server(&tls).inbound(gyre_echo::Echo)
        })
        .expect("bind");
    let addr = server.local_addr();
    Running::new(addr, move || {
        server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5))
    })
}

/// tokio-rustls's TLS echo server: tokio's standard echo task (as in
/// [`super::servers::tokio`]: `TCP_NODELAY`, a 4 KiB buffer) over a
/// `TlsStream`, on a `workers`-thread runtime.
pub fn tokio(workers: usize, config: Arc<rustls::ServerConfig>) -> Running {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(TOKIO_THREADS)
        .enable_io()
        .build()
        .expect("tokio runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    rt.spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let _ = socket.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if tls.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Running::new(addr, move || rt.shutdown_timeout(Duration::from_secs(5)))
}

struct Conn {
    stream: TcpStream,
    tls: rustls::ClientConnection,
    sent: VecDeque<Instant>,
    partial: usize,
}

impl Conn {
    fn open(
        addr: SocketAddr,
        config: &Arc<rustls::ClientConfig>,
        poll: &Poll,
        token: usize,
    ) -> io::Result<Conn> {
        let std = std::net::TcpStream::connect(addr)?;
        std.set_nodelay(true)?;
        std.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(std);
        poll.registry().register(
            &mut stream,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let name = ServerName::try_from("localhost").expect("name");
        let tls = rustls::ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
        Ok(Conn {
            stream,
            tls,
            sent: VecDeque::new(),
            partial: 0,
        })
    }

    fn queue(&mut self, payload: &[u8], at: Instant) -> io::Result<()> {
        self.tls.writer().write_all(payload)?;
        self.sent.push_back(at);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what arrived; the plaintext byte count (`None` at EOF).
    fn receive(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut plain = 0;
        loop {
            match self.tls.read_tls(&mut self.stream) {
                Ok(0) => return Ok(None),
                Ok(_) => {
                    self.tls.process_new_packets().map_err(io::Error::other)?;
                    loop {
                        match self.tls.reader().read(buf) {
                            Ok(0) => return Ok(None),
                            Ok(n) => plain += n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(plain)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Closed-loop TLS echo: `connections` x `in_flight` messages of `size`
/// bytes, timed from send to echo (handshakes happen before the warm-up
/// ends and are not timed).
///
/// # Errors
/// If a connection fails.
#[allow(clippy::too_many_arguments)]
pub fn echo(
    addr: SocketAddr,
    client: &Arc<rustls::ClientConfig>,
    connections: usize,
    in_flight: usize,
    size: usize,
    warmup: Duration,
    duration: Duration,
    server_threads: &str,
) -> io::Result<Report> {
    let mut poll = Poll::new()?;
    let mut conns = (0..connections)
        .map(|i| Conn::open(addr, client, &poll, i))
        .collect::<io::Result<Vec<_>>>()?;
    let payload = vec![0x5au8; size];
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let start = Instant::now();
    let mut window = Window::new(warmup, duration, server_threads);
    for c in conns.iter_mut() {
        for _ in 0..in_flight {
            c.queue(&payload, start)?;
        }
        c.flush()?;
    }
    loop {
        let now = Instant::now();
        if !window.tick(now) {
            break;
        }
        poll.poll(
            &mut events,
            Some(Duration::from_millis(10).min(window.end().saturating_duration_since(now))),
        )?;
        for event in events.iter() {
            let c = &mut conns[event.token().0];
            if event.is_readable() {
                let Some(n) = c.receive(&mut buf)? else {
                    return Err(io::Error::other("server closed a connection"));
                };
                c.partial += n;
                let done = Instant::now();
                while c.partial >= size {
                    c.partial -= size;
                    let sent = c.sent.pop_front().expect("echo of an unsent message");
                    window.record(sent, done);
                    c.queue(&payload, done)?;
                }
            }
            c.flush()?;
        }
    }
    Ok(window.report())
}

/// Full handshakes per second for `duration`: `parallel` connections at a
/// time, each handshaking, echoing one byte and closing; timed from
/// connect to echo.
///
/// # Errors
/// If a connection fails.
pub fn handshakes(
    addr: SocketAddr,
    client: &Arc<rustls::ClientConfig>,
    parallel: usize,
    duration: Duration,
    server_threads: &str,
) -> io::Result<Report> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
    let mut slots: Vec<Option<(Conn, Instant)>> = (0..parallel).map(|_| None).collect();
    let cpu_at_start = super::cpu::threads_cpu(server_threads);
    let generator_at_start = crate::stats::thread_cpu_time();
    let start = Instant::now();
    let end = start + duration;
    let mut done_count = 0u64;
    let open = |slot: &mut Option<(Conn, Instant)>, poll: &Poll, i: usize| -> io::Result<()> {
        let at = Instant::now();
        let mut c = Conn::open(addr, client, poll, i)?;
        c.queue(b"x", at)?;
        c.flush()?;
        *slot = Some((c, at));
        Ok(())
    };
    for (i, slot) in slots.iter_mut().enumerate() {
        open(slot, &poll, i)?;
    }
    while Instant::now() < end {
        poll.poll(&mut events, Some(Duration::from_millis(10)))?;
        for event in events.iter() {
            let i = event.token().0;
            let Some((c, at)) = slots[i].as_mut() else {
                continue;
            };
            if event.is_readable() {
                match c.receive(&mut buf)? {
                    Some(n) if n > 0 => {
                        let ns = at.elapsed().as_nanos() as u64;
                        latency.saturating_record(ns.max(1));
                        done_count += 1;
                        if let Some((mut c, _)) = slots[i].take() {
                            let _ = poll.registry().deregister(&mut c.stream);
                        }
                        open(&mut slots[i], &poll, i)?;
                        continue;
                    }
                    Some(_) => {}
                    None => return Err(io::Error::other("server closed a connection")),
                }
            }
            if let Some((c, _)) = slots[i].as_mut() {
                c.flush()?;
            }
        }
    }
    Ok(Report {
        server_cpu: super::cpu::threads_cpu(server_threads).saturating_sub(cpu_at_start),
        generator_cpu: crate::stats::thread_cpu_time().saturating_sub(generator_at_start),
        counted: 0,
        messages: done_count,
        elapsed: start.elapsed(),
        latency,
    })
}
