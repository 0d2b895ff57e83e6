//! The TLS floor: the least a rustls echo server can do per message, as a
//! ruler for the TLS bench (not a product, and not a peer to beat).
//!
//! One thread, one `mio::Poll`, and per connection a rustls
//! `ServerConnection` and nothing else: a `recv` into one reused buffer,
//! the ciphertext fed to rustls, the plaintext of the whole read gathered
//! into one reused buffer and written back to rustls at once (so each read
//! becomes one record, as Gyre's flush makes it), and rustls's records
//! written straight to the socket. No pipeline, no runtime, no queue of
//! our own. Whatever rate it reaches under the same load generator is about
//! the most a server built on rustls's buffered API can reach here, so
//! `floor/tokio-rustls` bounds what `gyre/tokio-rustls` can show on this
//! machine, and `gyre/floor` says what Gyre's layers cost above it.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Name prefix of the TLS floor server's thread.
pub const TLS_FLOOR_THREADS: &str = "tls-floor";

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// A running TLS floor server.
pub struct TlsFloor {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: std::thread::JoinHandle<()>,
}

impl TlsFloor {
    /// Stops the server and joins its thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        let _ = self.thread.join();
    }
}

struct Conn {
    stream: TcpStream,
    tls: rustls::ServerConnection,
}

/// Starts the TLS floor server on an ephemeral loopback port.
pub fn start(config: Arc<rustls::ServerConfig>) -> io::Result<TlsFloor> {
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().expect("addr"))?;
    let addr = listener.local_addr()?;
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name(TLS_FLOOR_THREADS.into())
        .spawn(move || serve(poll, listener, &stopping, &config))?;
    Ok(TlsFloor {
        addr,
        stop,
        waker,
        thread,
    })
}

fn serve(
    mut poll: Poll,
    listener: TcpListener,
    stop: &AtomicBool,
    config: &Arc<rustls::ServerConfig>,
) {
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut plain = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Acquire) {
        if poll.poll(&mut events, None).is_err() {
            continue;
        }
        for event in events.iter() {
            match event.token() {
                WAKER => {}
                LISTENER => accept_all(&poll, &listener, &mut conns, config),
                Token(i) => {
                    let Some(conn) = conns.get_mut(i).and_then(Option::as_mut) else {
                        continue;
                    };
                    if echo(conn, &mut buf, &mut plain).is_err() {
                        conns[i] = None;
                    }
                }
            }
        }
    }
}

fn accept_all(
    poll: &Poll,
    listener: &TcpListener,
    conns: &mut Vec<Option<Conn>>,
    config: &Arc<rustls::ServerConfig>,
) {
    while let Ok((mut stream, _)) = listener.accept() {
        let _ = stream.set_nodelay(true);
        let Ok(mut tls) = rustls::ServerConnection::new(config.clone()) else {
            continue;
        };
        // Records wait in rustls until the socket takes them (as in Gyre's
        // layer), rather than refusing a write.
        tls.set_buffer_limit(None);
        let slot = conns.iter().position(Option::is_none).unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        let interest = Interest::READABLE | Interest::WRITABLE;
        if poll
            .registry()
            .register(&mut stream, Token(slot), interest)
            .is_ok()
        {
            conns[slot] = Some(Conn { stream, tls });
        }
    }
}

/// Sends what rustls holds, then reads, decrypts and echoes until a short
/// read; an error or EOF ends the connection.
fn echo(conn: &mut Conn, buf: &mut [u8], plain: &mut Vec<u8>) -> io::Result<()> {
    send(conn)?;
    loop {
        let n = match conn.stream.read(buf) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // Decrypted as it is fed (rustls holds only so much plaintext),
        // into `plain`, which is zeroed once and only grows.
        let mut input = &buf[..n];
        let mut len = 0;
        while !input.is_empty() {
            conn.tls.read_tls(&mut input)?;
            conn.tls.process_new_packets().map_err(io::Error::other)?;
            loop {
                if len == plain.len() {
                    plain.resize(2 * len, 0);
                }
                match conn.tls.reader().read(&mut plain[len..]) {
                    Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                    Ok(got) => len += got,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        if len > 0 {
            conn.tls.writer().write_all(&plain[..len])?;
        }
        send(conn)?;
        if n < buf.len() {
            return Ok(());
        }
    }
}

/// Writes rustls's records until it has none or the socket is full (the
/// writable edge brings us back).
fn send(conn: &mut Conn) -> io::Result<()> {
    while conn.tls.wants_write() {
        match conn.tls.write_tls(&mut conn.stream) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo::tls::Certs;

    #[test]
    fn echoes_every_byte_over_tls() {
        let certs = Certs::new();
        let floor = start(certs.server_config()).expect("start");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(certs.client_config(), name).expect("client");
        let sock = std::net::TcpStream::connect(floor.addr).expect("connect");
        let mut tls = rustls::StreamOwned::new(conn, sock);
        // More than a record and more than the socket buffers hold in one
        // go, in pieces, read back whole.
        let data: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
        let mut back = vec![0u8; data.len()];
        for (piece, into) in data.chunks(100_000).zip(back.chunks_mut(100_000)) {
            tls.write_all(piece).expect("write");
            tls.read_exact(into).expect("read");
        }
        assert!(back == data, "the echo differs from what was sent");
        floor.stop();
    }
}
