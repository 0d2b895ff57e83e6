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

use super::floor::{read_some, start_with, Floor, FloorConn, ScratchBuffer};
use mio::net::TcpStream;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;

/// Name prefix of the TLS floor server's thread.
pub const TLS_FLOOR_THREADS: &str = "tls-floor";

struct Conn {
    stream: TcpStream,
    tls: rustls::ServerConnection,
}

/// Starts the TLS floor server on an ephemeral loopback port.
pub fn start(config: Arc<rustls::ServerConfig>) -> io::Result<Floor> {
    start_with(TLS_FLOOR_THREADS, false, move |stream| {
        let mut tls = rustls::ServerConnection::new(config.clone()).ok()?;
        // Records wait in rustls until the socket takes them (as in Gyre's
        // layer), rather than refusing a write.
        tls.set_buffer_limit(None);
        Some(Conn { stream, tls })
    })
}

/// The read buffer and the plaintext buffer, reused for every read.
#[derive(Default)]
struct Scratch {
    read: ScratchBuffer,
    plain: ScratchBuffer,
}

impl FloorConn for Conn {
    type Scratch = Scratch;

    fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    fn serve(&mut self, scratch: &mut Scratch) -> io::Result<()> {
        echo(self, &mut scratch.read.0, &mut scratch.plain.0)
    }
}

/// Sends what rustls holds, then reads, decrypts and echoes until a short
/// read; an error or EOF ends the connection.
fn echo(conn: &mut Conn, buf: &mut [u8], plain: &mut Vec<u8>) -> io::Result<()> {
    send(conn)?;
    loop {
        let Some(n) = read_some(&mut conn.stream, buf)? else {
            return Ok(());
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
