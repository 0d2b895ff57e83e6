//! A connection-churn load generator on mio: `slots` connections at a
//! time, each opened with a non-blocking connect, sent one message, its
//! echo read, then closed with a reset (`SO_LINGER` 0, so no `TIME_WAIT`
//! piles up on the generator's side and runs out of ports), and a new one
//! opened in its place. It measures what the closed-loop load's window
//! leaves out: the server's accept, set-up and tear-down per connection
//! (connections served per second, and each one's time from connect to
//! echo).

use super::load::Report;
use super::window::Window;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Socket, Type};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One slot's connection.
struct Slot {
    stream: Option<TcpStream>,
    /// Bumped per connection, so an event for the one closed before is
    /// told apart (its token carries the generation).
    generation: usize,
    started: Instant,
    sent: bool,
    got: usize,
}

fn open(
    poll: &Poll,
    addr: SocketAddr,
    slot: &mut Slot,
    index: usize,
    slots: usize,
) -> io::Result<()> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_linger(Some(Duration::ZERO))?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let mut stream = TcpStream::from_std(socket.into());
    slot.generation += 1;
    let token = Token(slot.generation * slots + index);
    poll.registry()
        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
    slot.stream = Some(stream);
    slot.started = Instant::now();
    slot.sent = false;
    slot.got = 0;
    Ok(())
}

/// Churns connections against the echo server at `addr` for `warmup`
/// then `duration`; `messages` in the report counts connections served in
/// the measured window, `latency` each one's connect-to-echo time.
///
/// # Errors
/// If a connection fails (refused, reset before its echo).
pub fn run(
    addr: SocketAddr,
    slots: usize,
    size: usize,
    warmup: Duration,
    duration: Duration,
    server_threads: &str,
) -> io::Result<Report> {
    let mut poll = Poll::new()?;
    let mut window = Window::new(warmup, duration, server_threads);
    let start = Instant::now();
    let mut table: Vec<Slot> = (0..slots)
        .map(|_| Slot {
            stream: None,
            generation: 0,
            started: start,
            sent: false,
            got: 0,
        })
        .collect();
    for (i, slot) in table.iter_mut().enumerate() {
        open(&poll, addr, slot, i, slots)?;
    }
    let payload = vec![0x5au8; size];
    let mut buf = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(1024);
    loop {
        let now = Instant::now();
        if !window.tick(now) {
            break;
        }
        poll.poll(
            &mut events,
            Some(window.end().saturating_duration_since(now)),
        )?;
        for event in events.iter() {
            let (index, generation) = (event.token().0 % slots, event.token().0 / slots);
            let slot = &mut table[index];
            if slot.generation != generation {
                continue; // the connection before, already closed
            }
            let Some(stream) = slot.stream.as_mut() else {
                continue;
            };
            if let Some(e) = stream.take_error()? {
                return Err(e);
            }
            if event.is_writable() && !slot.sent {
                match stream.write(&payload) {
                    Ok(n) if n == payload.len() => slot.sent = true,
                    Ok(_) => return Err(io::Error::other("a short write of one small message")),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                    Err(e) => return Err(e),
                }
            }
            if !event.is_readable() {
                continue;
            }
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => return Err(io::Error::other("server closed a connection")),
                    Ok(n) => slot.got += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if slot.got >= size {
                window.record(slot.started, Instant::now());
                // Dropped: closed with a reset (linger 0).
                let mut done = slot.stream.take().expect("open");
                poll.registry().deregister(&mut done)?;
                drop(done);
                open(&poll, addr, slot, index, slots)?;
            }
        }
    }
    Ok(window.report())
}
