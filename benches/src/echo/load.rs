//! A single-threaded echo load generator on mio.
//!
//! Closed loop: `connections` connections each keep `in_flight` messages of
//! `size` bytes outstanding, sending a new one as each echo completes.
//! Fixed rate: messages leave at `rate` per second in total, round-robin over
//! the connections, and each round trip is timed from when the message was
//! *due* to be sent, not when it was, so a stalled server cannot hide its
//! stall by slowing the generator down (no coordinated omission).

pub use super::window::Report;
use super::window::Window;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One load shape.
#[derive(Clone, Debug)]
pub struct Load {
    /// Connections.
    pub connections: usize,
    /// Messages outstanding per connection (closed loop).
    pub in_flight: usize,
    /// Bytes per message.
    pub size: usize,
    /// Messages per second in total; `None` for a closed loop.
    pub rate: Option<u64>,
    /// Time before measuring starts.
    pub warmup: Duration,
    /// Time measured.
    pub duration: Duration,
    /// Poll without sleeping, so the generator's own wake-up is not part of
    /// each round trip (closed loop only).
    pub spin: bool,
    /// A process-wide event counter (a counting allocator's) to read at the
    /// start and end of the measured window; see [`Report::counted`].
    pub counter: Option<&'static std::sync::atomic::AtomicU64>,
}

struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    out_pos: usize,
    sent: VecDeque<Instant>,
    partial: usize,
}

impl Conn {
    fn queue(&mut self, payload: &[u8], at: Instant) {
        self.out.extend_from_slice(payload);
        self.sent.push_back(at);
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(())
    }
}

/// Drives `load` against the echo server at `addr`.
///
/// # Errors
/// If a connection fails or the server closes one.
pub fn run(addr: SocketAddr, load: &Load, server_threads: &str) -> io::Result<Report> {
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(load.connections);
    for i in 0..load.connections {
        let std = std::net::TcpStream::connect(addr)?;
        std.set_nodelay(true)?;
        std.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(std);
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conns.push(Conn {
            stream,
            out: Vec::new(),
            out_pos: 0,
            sent: VecDeque::new(),
            partial: 0,
        });
    }
    let payload = vec![0x5au8; load.size];
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let start = Instant::now();
    let mut window = Window::new(load.warmup, load.duration, server_threads).counting(load.counter);
    let end = window.end();
    let interval = load
        .rate
        .map(|r| Duration::from_nanos(1_000_000_000 / r.max(1)));
    let mut next_send = start;
    let mut next_conn = 0;

    if interval.is_none() {
        for c in conns.iter_mut() {
            for _ in 0..load.in_flight {
                c.queue(&payload, start);
            }
            c.flush()?;
        }
    }
    loop {
        let now = Instant::now();
        if !window.tick(now) {
            break;
        }
        if let Some(interval) = interval {
            while next_send <= now {
                let c = &mut conns[next_conn];
                c.queue(&payload, next_send);
                c.flush()?;
                next_conn = (next_conn + 1) % conns.len();
                next_send += interval;
            }
        }
        let timeout = match interval {
            // epoll_wait counts whole milliseconds (mio rounds up), so a
            // sleep until the next send could leave it up to 1 ms late, and
            // that lateness would be charged to the server as latency. Poll
            // without sleeping when the next send is due within 2 ms.
            Some(_) => match next_send.saturating_duration_since(Instant::now()) {
                t if t < Duration::from_millis(2) => Duration::ZERO,
                t => t - Duration::from_millis(1),
            },
            None if load.spin => Duration::ZERO,
            None => Duration::from_millis(10),
        };
        poll.poll(
            &mut events,
            Some(timeout.min(end.saturating_duration_since(now))),
        )?;
        for event in events.iter() {
            let c = &mut conns[event.token().0];
            if event.is_writable() {
                c.flush()?;
            }
            if !event.is_readable() {
                continue;
            }
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => return Err(io::Error::other("server closed a connection")),
                    Ok(n) => {
                        c.partial += n;
                        let done = Instant::now();
                        while c.partial >= load.size {
                            c.partial -= load.size;
                            let sent = c.sent.pop_front().expect("echo of an unsent message");
                            window.record(sent, done);
                            if interval.is_none() {
                                c.queue(&payload, done);
                            }
                        }
                        if n < buf.len() {
                            // Drained: the next bytes raise a new edge, so
                            // skip the read that would only say EAGAIN (a
                            // third of this thread's syscalls otherwise).
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            c.flush()?;
        }
    }
    Ok(window.report())
}
