//! A TCP proxy that forwards each connection to an upstream with
//! `splice(2)`: bytes go socket -> pipe -> socket and never enter user
//! space. One thread on `mio`; each direction is a
//! [`gyre_zerocopy::Splice`].
//!
//! A direction whose source ends is finished by shutting down the write
//! side of its destination, so half-closes pass through; when both
//! directions are finished, or either socket fails, both are closed.

use gyre_zerocopy::Splice;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection tokens: `FIRST + 2 * slot + side` (0 client, 1 upstream).
const FIRST: usize = 2;

/// A running proxy, made by [`start`]; it stops when dropped or
/// [`stop`](Proxy::stop)ped.
///
/// ```
/// use gyre_echo::proxy;
///
/// let upstream = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let proxy = proxy::start("127.0.0.1:0".parse()?, upstream.local_addr()?)?;
/// let _client = std::net::TcpStream::connect(proxy.local_addr())?;
/// // The proxy dials the upstream for its client.
/// let (_upstream_side, _) = upstream.accept()?;
/// proxy.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Proxy {
    local_addr: SocketAddr,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Where the proxy listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Closes every proxied connection and stops the proxy's thread.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.waker.wake();
            let _ = thread.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Starts a proxy listening on `listen` that forwards every connection to
/// `upstream`.
///
/// ```
/// use gyre_echo::{proxy, start, EchoConfig};
/// use std::io::{Read, Write};
///
/// let echo = start(&EchoConfig {
///     addr: "127.0.0.1:0".parse().unwrap(),
///     workers: 1,
///     ..EchoConfig::default()
/// })?;
/// let proxy = proxy::start("127.0.0.1:0".parse().unwrap(), echo.local_addr())?;
/// let mut client = std::net::TcpStream::connect(proxy.local_addr())?;
/// client.write_all(b"via splice")?;
/// let mut got = [0u8; 10];
/// client.read_exact(&mut got)?;
/// assert_eq!(&got, b"via splice");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn start(listen: SocketAddr, upstream: SocketAddr) -> io::Result<Proxy> {
    let poll = Poll::new()?;
    let mut listener = TcpListener::bind(listen)?;
    let local_addr = listener.local_addr()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let thread = std::thread::Builder::new()
        .name("gyre-splice-proxy".into())
        .spawn(move || run(poll, listener, upstream))?;
    Ok(Proxy {
        local_addr,
        waker,
        thread: Some(thread),
    })
}

/// One proxied connection.
struct Pair {
    client: TcpStream,
    upstream: TcpStream,
    /// client -> upstream.
    up: Splice,
    /// upstream -> client.
    down: Splice,
    up_shut: bool,
    down_shut: bool,
}

impl Pair {
    /// Moves what can move both ways; `Ok(true)` when both directions
    /// have finished.
    fn drive(&mut self) -> io::Result<bool> {
        if !self.up_shut && self.up.pump(&self.client, &self.upstream)?.finished {
            self.upstream.shutdown(Shutdown::Write)?;
            self.up_shut = true;
        }
        if !self.down_shut && self.down.pump(&self.upstream, &self.client)?.finished {
            self.client.shutdown(Shutdown::Write)?;
            self.down_shut = true;
        }
        Ok(self.up_shut && self.down_shut)
    }
}

fn run(mut poll: Poll, listener: TcpListener, upstream: SocketAddr) {
    let mut events = Events::with_capacity(256);
    let mut pairs: Vec<Option<Pair>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!(error = %e, "proxy poll failed; stopping");
            return;
        }
        for event in events.iter() {
            match event.token() {
                WAKER => return,
                LISTENER => accept_all(&poll, &listener, upstream, &mut pairs, &mut free),
                Token(t) => {
                    let slot = (t - FIRST) / 2;
                    let Some(pair) = pairs.get_mut(slot).and_then(Option::as_mut) else {
                        continue;
                    };
                    let outcome = pair.drive();
                    if !matches!(outcome, Ok(false)) {
                        if let Err(e) = outcome {
                            tracing::debug!(error = %e, "proxied connection failed");
                        }
                        if let Some(mut pair) = pairs[slot].take() {
                            let _ = poll.registry().deregister(&mut pair.client);
                            let _ = poll.registry().deregister(&mut pair.upstream);
                        }
                        free.push(slot);
                    }
                }
            }
        }
    }
}

fn accept_all(
    poll: &Poll,
    listener: &TcpListener,
    upstream: SocketAddr,
    pairs: &mut Vec<Option<Pair>>,
    free: &mut Vec<usize>,
) {
    loop {
        let (client, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                return;
            }
        };
        let slot = free.pop().unwrap_or_else(|| {
            pairs.push(None);
            pairs.len() - 1
        });
        match open_pair(poll, client, upstream, slot) {
            Ok(pair) => pairs[slot] = Some(pair),
            Err(e) => {
                tracing::warn!(%peer, error = %e, "could not open the upstream side");
                free.push(slot);
            }
        }
    }
}

fn open_pair(
    poll: &Poll,
    mut client: TcpStream,
    upstream: SocketAddr,
    slot: usize,
) -> io::Result<Pair> {
    let _ = client.set_nodelay(true);
    // Non-blocking connect: until it completes, splicing into it reports
    // "would block", and a refusal surfaces as that direction's error.
    let mut up = TcpStream::connect(upstream)?;
    let _ = up.set_nodelay(true);
    let both = Interest::READABLE | Interest::WRITABLE;
    poll.registry()
        .register(&mut client, Token(FIRST + 2 * slot), both)?;
    poll.registry()
        .register(&mut up, Token(FIRST + 2 * slot + 1), both)?;
    Ok(Pair {
        client,
        upstream: up,
        up: Splice::new()?,
        down: Splice::new()?,
        up_shut: false,
        down_shut: false,
    })
}
