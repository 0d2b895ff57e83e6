//! `splice(2)`: moving bytes from one socket to another through a pipe,
//! without them entering user space.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking pipe: the kernel buffer `splice` moves bytes through.
///
/// ```
/// use gyre_zerocopy::{Pipe, Splice};
///
/// // A 1 MiB pipe (when the system allows it) for a splice that moves
/// // large bodies in fewer calls.
/// let pipe = Pipe::with_capacity(1 << 20)?;
/// assert!(pipe.capacity() >= 64 * 1024);
/// let splice = Splice::with_pipe(pipe);
/// assert_eq!(splice.buffered(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A pipe with the kernel's default capacity (64 KiB on Linux).
    pub fn new() -> io::Result<Self> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are fresh descriptors we own.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut pipe = Pipe {
            read,
            write,
            capacity: 0,
        };
        pipe.capacity = pipe.query_capacity()?;
        Ok(pipe)
    }

    /// A pipe of at least `bytes` capacity (the kernel rounds up to pages
    /// and caps unprivileged pipes at `/proc/sys/fs/pipe-max-size`).
    pub fn with_capacity(bytes: usize) -> io::Result<Self> {
        let mut pipe = Self::new()?;
        let want = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own.
        if unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_SETPIPE_SZ, want) } < 0 {
            return Err(io::Error::last_os_error());
        }
        pipe.capacity = pipe.query_capacity()?;
        Ok(pipe)
    }

    fn query_capacity(&self) -> io::Result<usize> {
        // SAFETY: F_GETPIPE_SZ on a pipe descriptor we own.
        let n = unsafe { libc::fcntl(self.write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// How many bytes the pipe holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The end bytes are read from.
    pub fn read_end(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The end bytes are written to.
    pub fn write_end(&self) -> BorrowedFd<'_> {
        self.write.as_fd()
    }
}

/// Calls `splice(2)` once, non-blocking, retrying on `EINTR`.
fn splice_once(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: null offsets (both ends are streams); the kernel touches
        // no user memory, and both descriptors are borrowed from live owners.
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// What one [`Splice::pump`] did.
///
/// ```
/// use gyre_zerocopy::Splice;
/// use std::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let source = TcpStream::connect(listener.local_addr()?)?;
/// let (from, _) = listener.accept()?;
/// let to = TcpStream::connect(listener.local_addr()?)?;
/// from.set_nonblocking(true)?;
/// to.set_nonblocking(true)?;
/// // Nothing sent yet: nothing moved, not finished.
/// let pumped = Splice::new()?.pump(&from, &to)?;
/// assert_eq!((pumped.moved, pumped.finished), (0, false));
/// # drop(source);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pumped {
    /// Bytes delivered to the destination by this call.
    pub moved: usize,
    /// The source has ended and everything it sent has been delivered: the
    /// caller can shut down the destination's write side.
    pub finished: bool,
}

/// One direction of a splice proxy: source socket -> pipe -> destination
/// socket, with the pipe's contents tracked between calls.
///
/// Both sockets must be non-blocking. Call [`pump`](Splice::pump) whenever
/// either becomes ready; it moves bytes until the source is empty, the
/// destination is full, or the source has ended.
///
/// ```
/// use gyre_zerocopy::Splice;
/// use std::io::{Read, Write};
/// use std::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let mut client = TcpStream::connect(listener.local_addr()?)?;
/// let (from, _) = listener.accept()?;
/// let to_peer = TcpStream::connect(listener.local_addr()?)?;
/// let (mut to, _) = listener.accept()?;
/// from.set_nonblocking(true)?;
/// to_peer.set_nonblocking(true)?;
///
/// client.write_all(b"through the pipe")?;
/// drop(client);
/// let mut splice = Splice::new()?;
/// while !splice.pump(&from, &to_peer)?.finished {
///     std::thread::yield_now();
/// }
/// drop(to_peer);
/// let mut got = String::new();
/// to.read_to_string(&mut got)?;
/// assert_eq!(got, "through the pipe");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Splice {
    pipe: Pipe,
    in_pipe: usize,
    source_done: bool,
    total: u64,
}

impl Splice {
    /// A direction with its own default-sized pipe.
    pub fn new() -> io::Result<Self> {
        Ok(Self::with_pipe(Pipe::new()?))
    }

    /// A direction through `pipe`.
    pub fn with_pipe(pipe: Pipe) -> Self {
        Splice {
            pipe,
            in_pipe: 0,
            source_done: false,
            total: 0,
        }
    }

    /// Bytes delivered to the destination so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes read from the source but not yet delivered.
    pub fn buffered(&self) -> usize {
        self.in_pipe
    }

    /// Whether the source has ended and everything has been delivered.
    pub fn is_finished(&self) -> bool {
        self.source_done && self.in_pipe == 0
    }

    /// Moves bytes from `from` to `to` until one side would block or the
    /// source ends. Errors from either socket are returned as they are.
    pub fn pump(&mut self, from: &impl AsFd, to: &impl AsFd) -> io::Result<Pumped> {
        let (from, to) = (from.as_fd().as_raw_fd(), to.as_fd().as_raw_fd());
        let mut moved = 0;
        loop {
            if self.in_pipe > 0 {
                match splice_once(self.pipe.read.as_raw_fd(), to, self.in_pipe) {
                    Ok(n) => {
                        self.in_pipe -= n;
                        moved += n;
                        self.total += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
                continue;
            }
            if self.source_done {
                break;
            }
            match splice_once(from, self.pipe.write.as_raw_fd(), self.pipe.capacity) {
                Ok(0) => self.source_done = true,
                Ok(n) => self.in_pipe += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(Pumped {
            moved,
            finished: self.is_finished(),
        })
    }
}
