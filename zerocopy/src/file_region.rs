//! `FileRegion`: part of a file, sent to a socket with `sendfile(2)`.

use crate::error::Error;
use crate::shared_file::SharedFile;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

/// The most `sendfile` moves in one call on Linux.
pub(crate) const MAX_SENDFILE: u64 = 0x7fff_f000;

/// A range of a file to send to a socket without copying it through user
/// space.
///
/// [`transfer_to`](FileRegion::transfer_to) hands the next part to the
/// kernel with `sendfile(2)` and remembers how far it got, so on a
/// non-blocking socket it is called again when the socket is writable,
/// until [`is_done`](FileRegion::is_done).
///
/// A region must lie within its file when it is made; if the file shrinks
/// while the region is being sent, the transfer ends with
/// [`Error::Truncated`] instead of hanging or quietly sending less.
///
/// ```
/// use gyre_zerocopy::FileRegion;
/// use std::io::Read;
/// use std::net::{TcpListener, TcpStream};
/// # let dir = std::env::temp_dir().join(format!("gyre-doc-region-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("greeting.txt");
/// std::fs::write(&path, b"hello, world")?;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let sender = TcpStream::connect(listener.local_addr()?)?;
/// let (mut receiver, _) = listener.accept()?;
///
/// // Bytes 7..12 of the file: "world".
/// let mut region = FileRegion::open_range(&path, 7, 5)?;
/// while !region.is_done() {
///     region.transfer_to(&sender)?;
/// }
/// drop(sender);
/// let mut got = String::new();
/// receiver.read_to_string(&mut got)?;
/// assert_eq!(got, "world");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileRegion {
    file: SharedFile,
    offset: u64,
    len: u64,
    transferred: u64,
}

impl FileRegion {
    /// The region `offset .. offset + len` of `file`; an error if it
    /// reaches past the file's current end.
    pub fn new(file: SharedFile, offset: u64, len: u64) -> Result<Self, Error> {
        file.check_range(offset, len)?;
        Ok(Self::unchecked(file, offset, len))
    }

    /// A region already known to lie within its file (part of a checked
    /// one).
    pub(crate) fn unchecked(file: SharedFile, offset: u64, len: u64) -> Self {
        FileRegion {
            file,
            offset,
            len,
            transferred: 0,
        }
    }

    /// The whole of `file`, as long as it is now.
    pub fn whole(file: SharedFile) -> Result<Self, Error> {
        let len = file.len()?;
        Self::new(file, 0, len)
    }

    /// Opens `path` and makes a region of all of it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::whole(SharedFile::open(path)?)
    }

    /// Opens `path` and makes the region `offset .. offset + len` of it.
    pub fn open_range(path: impl AsRef<Path>, offset: u64, len: u64) -> Result<Self, Error> {
        Self::new(SharedFile::open(path)?, offset, len)
    }

    /// The file.
    pub fn file(&self) -> &SharedFile {
        &self.file
    }

    /// Where the region starts in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The region's length.
    #[allow(clippy::len_without_is_empty)] // `is_done` is the question callers ask
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Bytes sent so far.
    pub fn transferred(&self) -> u64 {
        self.transferred
    }

    /// Bytes still to send.
    pub fn remaining(&self) -> u64 {
        self.len - self.transferred
    }

    /// Whether every byte has been sent.
    pub fn is_done(&self) -> bool {
        self.transferred == self.len
    }

    /// The file offset the next byte comes from.
    pub fn position(&self) -> u64 {
        self.offset + self.transferred
    }

    /// Records that `n` more bytes were sent by other means (an io_uring
    /// splice, say). Panics if that passes the region's end.
    pub fn advance(&mut self, n: u64) {
        assert!(n <= self.remaining(), "advanced past the end of the region");
        self.transferred += n;
    }

    /// The error for a transfer that found the end of the file before the
    /// end of the region (for transports that read the file themselves).
    pub fn truncated_error(&self) -> Error {
        self.truncated()
    }

    /// Sends as much of the rest of the region as `socket` takes in one
    /// `sendfile(2)` call and returns how much that was.
    ///
    /// `Ok(0)` with bytes remaining means the socket is full (it is
    /// non-blocking and would block): call again when it is writable. A
    /// blocking socket sends everything, or fails. Errors carry the file
    /// and the system error; if the file ended before the region did, the
    /// error is [`Error::Truncated`].
    ///
    /// One call may run long: into a socket whose reader keeps up (on
    /// loopback, say) the kernel goes on until the region is done, and
    /// moved a whole 1 GiB in one call of 130-330 ms on the AMD EPYC VM.
    /// A thread that serves other sockets between calls, as an event loop
    /// does, wants [`transfer_up_to`](FileRegion::transfer_up_to).
    ///
    /// Into a Unix socket, give the socket room first: it keeps its
    /// 208 KiB send buffer however much is queued (TCP widens its own),
    /// and `sendfile` then waits on the reader every few pages. Asking
    /// for 1 MiB of `SO_SNDBUF` made it 3-4x faster on the Zen 5 VM;
    /// `gyre-reactor`'s channels do so themselves while they send files.
    ///
    /// Into a TCP socket to a peer on this host, take it off BBR first
    /// ([`unpace_local`](crate::unpace_local)): BBR paces a CPU-bound
    /// loopback sender to its own rate, 2.5-3.4 GiB/s for most 1 GiB
    /// sends on the Intel Xeon VM against 13-18 without pacing.
    ///
    /// Into a TCP socket, cork it for a long region ([`Cork`](crate::Cork)):
    /// the kernel sends a file a pipeful at a time, and between pipefuls
    /// an acknowledgement pushes out the partial segment each leaves. On
    /// the Intel Xeon VM corking took a 1 GiB send over loopback from
    /// 1.6-1.8 to 2.8-3.9 GiB/s at half the CPU.
    pub fn transfer_to(&mut self, socket: &impl AsFd) -> Result<usize, Error> {
        self.transfer_up_to(socket, MAX_SENDFILE as usize)
    }

    /// As [`transfer_to`](FileRegion::transfer_to), but one call moves at
    /// most `limit` bytes (at least one), so a thread that shares itself
    /// among sockets is back within one `limit`'s worth of sending however
    /// fast the reader is.
    ///
    /// ```
    /// use gyre_zerocopy::FileRegion;
    /// use std::io::Read;
    /// use std::net::{TcpListener, TcpStream};
    /// # let dir = std::env::temp_dir().join(format!("gyre-doc-up-to-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("digits.txt");
    /// std::fs::write(&path, b"0123456789")?;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let sender = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut receiver, _) = listener.accept()?;
    ///
    /// let mut region = FileRegion::open(&path)?;
    /// assert_eq!(region.transfer_up_to(&sender, 4)?, 4);
    /// assert_eq!(region.remaining(), 6);
    /// while !region.is_done() {
    ///     region.transfer_up_to(&sender, 4)?;
    /// }
    /// drop(sender);
    /// let mut got = String::new();
    /// receiver.read_to_string(&mut got)?;
    /// assert_eq!(got, "0123456789");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transfer_up_to(&mut self, socket: &impl AsFd, limit: usize) -> Result<usize, Error> {
        let limit = (limit.max(1) as u64).min(MAX_SENDFILE);
        let out = socket.as_fd().as_raw_fd();
        let input = self.file.as_fd().as_raw_fd();
        while !self.is_done() {
            let mut position = (self.offset + self.transferred) as libc::off_t;
            let count = self.remaining().min(limit) as usize;
            // SAFETY: both descriptors are open for the length of the call
            // (borrowed from live owners); `position` is a valid, exclusive
            // `off_t` the kernel updates. sendfile reads and writes nothing
            // else of ours.
            let sent = unsafe { libc::sendfile(out, input, &mut position, count) };
            if sent > 0 {
                self.transferred += sent as u64;
                return Ok(sent as usize);
            }
            if sent == 0 {
                return Err(self.truncated());
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(Error::io("sendfile", self.file.path(), e)),
            }
        }
        Ok(0)
    }

    /// The error for a `sendfile` that found the end of the file early.
    fn truncated(&self) -> Error {
        let position = self.offset + self.transferred;
        match self.file.len() {
            Ok(file_len) => Error::Truncated {
                path: self.file.path().to_owned(),
                position,
                remaining: self.remaining(),
                file_len,
            },
            Err(e) => e,
        }
    }
}
