//! The floor: the least an epoll echo server can do per message, as a ruler
//! for the others (not a product, and not a peer to beat).
//!
//! One thread, one `mio::Poll`, a `recv` into one reused buffer and a `send`
//! of what came straight back; nothing between them (no pipeline, no
//! handler, no outbound queue beyond what a partial write leaves). It reads
//! the way gyre does (stop at a short read: on Linux the next data raises a
//! new edge) and, in the busy case, polls without sleeping all the time.
//! Whatever rate it reaches with the same load generator is the most any
//! server built on epoll readiness, `recv` and `send` can reach here, so
//! `floor/tokio` bounds what `gyre/tokio` can ever show on this machine.
//! Its loop (accept, poll, a slot per connection) also runs the TLS floor
//! (`tls_floor`), through the two implementations of `FloorConn`.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Name prefix of the floor server's thread.
pub const FLOOR_THREADS: &str = "floor-echo";

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// A running floor server (this one, or the TLS floor).
pub struct Floor {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: std::thread::JoinHandle<()>,
}

impl Floor {
    /// Stops the server and joins its thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        let _ = self.thread.join();
    }
}

/// A connection of a floor server: what the shared loop serves.
pub(crate) trait FloorConn: Sized {
    /// Buffers the server's one thread reuses for every connection.
    type Scratch: Default;

    /// Its socket, to register.
    fn stream(&mut self) -> &mut TcpStream;

    /// Runs a readiness event; an error or EOF ends the connection.
    fn serve(&mut self, scratch: &mut Self::Scratch) -> io::Result<()>;
}

/// Starts a floor server on an ephemeral loopback port, its one thread
/// named `name`: `open` makes each accepted connection (`None` refuses
/// it), `busy` polls with a zero timeout instead of sleeping.
pub(crate) fn start_with<C, F>(name: &str, busy: bool, open: F) -> io::Result<Floor>
where
    C: FloorConn,
    F: FnMut(TcpStream) -> Option<C> + Send + 'static,
{
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().expect("addr"))?;
    let addr = listener.local_addr()?;
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || serve(poll, listener, &stopping, busy, open))?;
    Ok(Floor {
        addr,
        stop,
        waker,
        thread,
    })
}

fn serve<C: FloorConn>(
    mut poll: Poll,
    listener: TcpListener,
    stop: &AtomicBool,
    busy: bool,
    mut open: impl FnMut(TcpStream) -> Option<C>,
) {
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<C>> = Vec::new();
    let mut scratch = C::Scratch::default();
    let timeout = busy.then_some(Duration::ZERO);
    while !stop.load(Ordering::Acquire) {
        if poll.poll(&mut events, timeout).is_err() {
            continue;
        }
        for event in events.iter() {
            match event.token() {
                WAKER => {}
                LISTENER => accept_all(&poll, &listener, &mut conns, &mut open),
                Token(i) => {
                    let Some(conn) = conns.get_mut(i).and_then(Option::as_mut) else {
                        continue;
                    };
                    if conn.serve(&mut scratch).is_err() {
                        conns[i] = None;
                    }
                }
            }
        }
    }
}

fn accept_all<C: FloorConn>(
    poll: &Poll,
    listener: &TcpListener,
    conns: &mut Vec<Option<C>>,
    open: &mut impl FnMut(TcpStream) -> Option<C>,
) {
    while let Ok((stream, _)) = listener.accept() {
        let _ = stream.set_nodelay(true);
        let Some(mut conn) = open(stream) else {
            continue;
        };
        let slot = conns.iter().position(Option::is_none).unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        let interest = Interest::READABLE | Interest::WRITABLE;
        if poll
            .registry()
            .register(conn.stream(), Token(slot), interest)
            .is_ok()
        {
            conns[slot] = Some(conn);
        }
    }
}

/// A plain floor connection.
struct Conn {
    stream: TcpStream,
    /// What a partial `send` left, sent before anything newer.
    unsent: Vec<u8>,
}

/// Starts the floor server on an ephemeral loopback port; `busy` polls with
/// a zero timeout instead of sleeping.
pub fn start(busy: bool) -> io::Result<Floor> {
    start_with(FLOOR_THREADS, busy, |stream| {
        Some(Conn {
            stream,
            unsent: Vec::new(),
        })
    })
}

/// A 64 KiB buffer, zeroed once and reused for every read (or, in the
/// TLS floor, for the plaintext too).
pub(crate) struct ScratchBuffer(pub(crate) Vec<u8>);

impl Default for ScratchBuffer {
    fn default() -> Self {
        ScratchBuffer(vec![0u8; 64 * 1024])
    }
}

impl FloorConn for Conn {
    type Scratch = ScratchBuffer;

    fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    fn serve(&mut self, scratch: &mut ScratchBuffer) -> io::Result<()> {
        echo(self, &mut scratch.0)
    }
}

/// Sends what is owed, then reads and echoes until a short read; an error
/// or EOF ends the connection.
fn echo(conn: &mut Conn, buf: &mut [u8]) -> io::Result<()> {
    if !conn.unsent.is_empty() {
        let unsent = std::mem::take(&mut conn.unsent);
        send(conn, &unsent)?;
    }
    loop {
        let Some(n) = read_some(&mut conn.stream, buf)? else {
            return Ok(());
        };
        send(conn, &buf[..n])?;
        if n < buf.len() {
            return Ok(());
        }
    }
}

/// One read: `None` once the socket has nothing more for now; EOF is an
/// error (it ends the connection).
pub(crate) fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        return match stream.read(buf) {
            Ok(0) => Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

/// Writes `data` after anything already owed; keeps what the socket
/// would not take (the writable edge brings us back).
fn send(conn: &mut Conn, data: &[u8]) -> io::Result<()> {
    if !conn.unsent.is_empty() {
        conn.unsent.extend_from_slice(data);
        return Ok(());
    }
    let mut sent = 0;
    while sent < data.len() {
        match conn.stream.write(&data[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    conn.unsent.extend_from_slice(&data[sent..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn echoes_every_byte_including_what_a_full_socket_held_back() {
        let floor = start(false).expect("start");
        let mut client = std::net::TcpStream::connect(floor.addr).expect("connect");
        // More than the socket buffers hold, sent before reading anything:
        // the server must keep what `send` refused and finish it later.
        let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        let writer = {
            let mut w = client.try_clone().expect("clone");
            let data = data.clone();
            std::thread::spawn(move || w.write_all(&data).expect("write"))
        };
        let mut back = vec![0u8; data.len()];
        client.read_exact(&mut back).expect("read");
        writer.join().expect("writer");
        assert!(back == data, "the echo differs from what was sent");
        floor.stop();
    }
}
