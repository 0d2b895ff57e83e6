//! Sending a [`FileRegion`] to a socket through a pipe with `splice(2)`:
//! file to pipe, pipe to socket, the bytes staying in the kernel, as
//! `sendfile` keeps them. Which of the two is faster depends on the host:
//! on the AMD EPYC VMs `sendfile` sends a file over loopback TCP at ~1.9x a
//! copy loop, on the Intel Xeon ones at ~0.85x, where splicing through a
//! 1 MiB pipe wins (issue 22). The reactor measures both on the host it
//! runs on and takes the faster (its channel option `file_send`, by
//! default `FileSend::Auto`); the zero-copy bench measures both too.
//!
//! Uses the [`Pipe`] of the socket-to-socket splice and the region's own
//! accounting: the region counts bytes that reached the socket, the pipe
//! what it holds read from the file and not yet sent.

use crate::error::Error;
use crate::file_region::FileRegion;
use crate::splice::Pipe;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

/// A pipe a file region is spliced through.
///
/// It belongs to one region at a time: bytes it holds are that region's
/// next bytes, so a region must be sent until it is done before the pipe
/// serves another (a channel sends its queue in order, so it does).
///
/// ```
/// use gyre_zerocopy::{FileRegion, RegionPipe};
/// use std::io::Read;
/// use std::net::{TcpListener, TcpStream};
/// # let dir = std::env::temp_dir().join(format!("gyre-doc-rp-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let path = dir.join("hello.txt");
/// std::fs::write(&path, "hello, world")?;
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let sender = TcpStream::connect(listener.local_addr()?)?;
/// let (mut receiver, _) = listener.accept()?;
/// let mut pipe = RegionPipe::new(1 << 20)?;
/// let mut region = FileRegion::open_range(&path, 7, 5)?;
/// while !region.is_done() {
///     pipe.send(&mut region, &sender)?;
/// }
/// drop(sender);
/// let mut got = String::new();
/// receiver.read_to_string(&mut got)?;
/// assert_eq!(got, "world");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RegionPipe {
    pipe: Pipe,
    held: usize,
}

/// `splice(2)` once, non-blocking, retrying on `EINTR`; `offset` is the
/// file position for a file source (the kernel advances it).
fn splice(
    from: RawFd,
    offset: Option<&mut i64>,
    to: RawFd,
    len: usize,
    more: bool,
) -> io::Result<usize> {
    let offset = offset.map_or(std::ptr::null_mut(), |o| o as *mut i64);
    let flags =
        libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK | if more { libc::SPLICE_F_MORE } else { 0 };
    loop {
        // SAFETY: both descriptors are borrowed from live owners for the
        // call; `offset` is null or points at an exclusive `i64` (`loff_t`)
        // the kernel reads and updates, and nothing else of ours is touched.
        let n = unsafe { libc::splice(from, offset, to, std::ptr::null_mut(), len, flags) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl RegionPipe {
    /// A pipe of at least `capacity` bytes (the kernel rounds up to pages
    /// and caps it at `/proc/sys/fs/pipe-max-size`, 1 MiB by default).
    pub fn new(capacity: usize) -> io::Result<Self> {
        Ok(RegionPipe {
            pipe: Pipe::with_capacity(capacity)?,
            held: 0,
        })
    }

    /// The pipe's capacity.
    pub fn capacity(&self) -> usize {
        self.pipe.capacity()
    }

    /// Bytes read from the region's file and not yet sent.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Sends the next part of `region` to `socket`: what the pipe holds,
    /// then up to a pipeful more from the file. Returns the bytes that
    /// reached the socket (the region advances by as much).
    ///
    /// `Ok(0)` with the region not done means the socket is full (it is
    /// non-blocking and would block): call again when it is writable.
    /// Errors name the file; a file that ends before the region does is
    /// [`Error::Truncated`].
    pub fn send(&mut self, region: &mut FileRegion, socket: &impl AsFd) -> Result<usize, Error> {
        self.send_up_to(region, socket, usize::MAX)
    }

    /// As [`send`](Self::send), reading nothing of the file more than
    /// `most` bytes past where the region stands at the call (bytes the
    /// pipe holds already count, and go out first): for a sender that
    /// knows only so much of the region is in the page cache.
    pub fn send_up_to(
        &mut self,
        region: &mut FileRegion,
        socket: &impl AsFd,
        most: usize,
    ) -> Result<usize, Error> {
        self.send_within(region, socket, most, usize::MAX)
    }

    /// As [`send_up_to`](Self::send_up_to), moving no more than `sent_most`
    /// bytes to the socket in all, what the pipe holds included: for a
    /// sender held to a rate, whose allowance the pipe's leftovers from
    /// the call before must not overrun. The rest stays in the pipe for
    /// the next call.
    ///
    /// ```no_run
    /// use gyre_zerocopy::{FileRegion, RegionPipe, SharedFile};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let socket = std::net::TcpStream::connect("127.0.0.1:8080")?;
    /// socket.set_nonblocking(true)?;
    /// let file = SharedFile::open("/var/data/video.mp4")?;
    /// let mut region = FileRegion::new(file.clone(), 0, file.len()?)?;
    /// let mut pipe = RegionPipe::new(1 << 20)?;
    /// // 64 KiB at most this time, whatever the pipe holds.
    /// let sent = pipe.send_within(&mut region, &socket, 64 << 10, 64 << 10)?;
    /// assert!(sent <= 64 << 10);
    /// # Ok(()) }
    /// ```
    pub fn send_within(
        &mut self,
        region: &mut FileRegion,
        socket: &impl AsFd,
        most: usize,
        sent_most: usize,
    ) -> Result<usize, Error> {
        let out = socket.as_fd().as_raw_fd();
        let mut sent = 0;
        let mut filled = false;
        loop {
            let room = sent_most.saturating_sub(sent);
            if self.held > 0 && room > 0 {
                let len = self.held.min(room);
                let more = region.remaining() > len as u64;
                match splice(self.pipe.read_end().as_raw_fd(), None, out, len, more) {
                    Ok(n) => {
                        self.held -= n;
                        region.advance(n as u64);
                        sent += n;
                        if self.held > 0 && n < len {
                            continue;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(sent),
                    Err(e) => return Err(Error::io("splice", region.file().path(), e)),
                }
            }
            // One pipeful per call, as `transfer_to` makes one `sendfile`.
            if region.is_done() || filled || self.held > 0 {
                return Ok(sent);
            }
            let mut position = region.position() as i64;
            let count = region.remaining().min(self.capacity() as u64) as usize;
            let count = count
                .min(most.saturating_sub(sent))
                .min(sent_most.saturating_sub(sent));
            if count == 0 {
                return Ok(sent);
            }
            let input = region.file().as_fd().as_raw_fd();
            match splice(
                input,
                Some(&mut position),
                self.pipe.write_end().as_raw_fd(),
                count,
                false,
            ) {
                Ok(0) => return Err(region.truncated_error()),
                Ok(n) => self.held = n,
                Err(e) => return Err(Error::io("splice", region.file().path(), e)),
            }
            filled = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SharedFile;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_region_larger_than_the_pipe_and_the_socket_buffer_arrives_whole() {
        let path = std::env::temp_dir().join(format!("gyre-rp-{}", std::process::id()));
        let data: Vec<u8> = (0..(8u32 << 20))
            .map(|i| (i * 7 + i / 4096) as u8)
            .collect();
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&data)
            .unwrap();
        // Small socket buffers, and a reader that starts only once the
        // socket has filled: the send must wait on the socket, however
        // fast a reader would be.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&listener)
            .set_recv_buffer_size(64 << 10)
            .unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        socket2::SockRef::from(&sender)
            .set_send_buffer_size(64 << 10)
            .unwrap();
        sender.set_nonblocking(true).unwrap();
        let (mut receiver, _) = listener.accept().unwrap();
        let (start, started) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let _ = started.recv();
            let mut got = Vec::new();
            receiver.read_to_end(&mut got).unwrap();
            got
        });
        let file = SharedFile::open(&path).unwrap();
        let mut region = FileRegion::new(file, 1000, data.len() as u64 - 2000).unwrap();
        let mut pipe = RegionPipe::new(1 << 20).unwrap();
        let mut would_block = 0;
        while !region.is_done() {
            if pipe.send(&mut region, &sender).unwrap() == 0 {
                would_block += 1;
                let _ = start.send(());
                std::thread::yield_now();
            }
        }
        let _ = start.send(());
        assert_eq!(pipe.held(), 0);
        drop(sender);
        let got = reader.join().unwrap();
        assert!(got == data[1000..data.len() - 1000], "every byte, in order");
        assert!(would_block > 0, "the socket filled at least once");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn send_up_to_reads_no_further_into_the_file_than_it_is_told() {
        let path = std::env::temp_dir().join(format!("gyre-rp-most-{}", std::process::id()));
        std::fs::write(&path, vec![5u8; 256 * 1024]).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        sender.set_nonblocking(true).unwrap();
        let (mut receiver, _) = listener.accept().unwrap();
        let mut region = FileRegion::open(&path).unwrap();
        let mut pipe = RegionPipe::new(128 * 1024).unwrap();
        // Nothing known cached: nothing read.
        assert_eq!(pipe.send_up_to(&mut region, &sender, 0).unwrap(), 0);
        assert_eq!((region.transferred(), pipe.held()), (0, 0));
        // 4 KiB known: at most 4 KiB read, though the pipe holds 128.
        let sent = pipe.send_up_to(&mut region, &sender, 4096).unwrap();
        assert_eq!(region.transferred() + pipe.held() as u64, 4096);
        assert_eq!(sent as u64, region.transferred());
        while !region.is_done() {
            pipe.send(&mut region, &sender).unwrap();
            let mut sink = vec![0u8; 256 * 1024];
            let _ = receiver.read(&mut sink).unwrap();
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn send_within_moves_no_more_than_told_though_the_pipe_holds_more() {
        let path = std::env::temp_dir().join(format!("gyre-rp-within-{}", std::process::id()));
        let data: Vec<u8> = (0..512 * 1024u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        sender.set_nonblocking(true).unwrap();
        let (mut receiver, _) = listener.accept().unwrap();
        // Fill the socket, so the pipe keeps what it read.
        let filler = vec![0u8; 64 * 1024];
        let mut filled = 0;
        loop {
            match sender.write(&filler) {
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let mut region = FileRegion::open(&path).unwrap();
        let mut pipe = RegionPipe::new(128 * 1024).unwrap();
        assert_eq!(pipe.send_up_to(&mut region, &sender, 64 * 1024).unwrap(), 0);
        assert_eq!(
            pipe.held(),
            64 * 1024,
            "read into the pipe, the socket full"
        );
        // The reader takes the filler: room for far more than 4 KiB.
        let mut sink = vec![0u8; filled];
        receiver.read_exact(&mut sink).unwrap();
        let sent = pipe
            .send_within(&mut region, &sender, usize::MAX, 4096)
            .unwrap();
        assert_eq!(sent, 4096, "the pipe held 64 KiB; 4 KiB allowed");
        assert_eq!((region.transferred(), pipe.held()), (4096, 60 * 1024));
        // And the bytes go on in order.
        while !region.is_done() {
            pipe.send(&mut region, &sender).unwrap();
        }
        drop(sender);
        let mut got = Vec::new();
        receiver.read_to_end(&mut got).unwrap();
        assert!(got == data, "every byte, in order");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_file_shorter_than_its_region_is_reported_truncated() {
        let path = std::env::temp_dir().join(format!("gyre-rp-short-{}", std::process::id()));
        std::fs::write(&path, vec![1u8; 4096]).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_receiver, _) = listener.accept().unwrap();
        let mut region = FileRegion::open(&path).unwrap();
        // The file shrinks after the region was made.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(100)
            .unwrap();
        let mut pipe = RegionPipe::new(1 << 16).unwrap();
        let mut result = pipe.send(&mut region, &sender);
        while matches!(result, Ok(n) if n > 0) {
            result = pipe.send(&mut region, &sender);
        }
        assert!(matches!(result, Err(Error::Truncated { .. })), "{result:?}");
        assert_eq!(region.transferred(), 100);
        std::fs::remove_file(&path).unwrap();
    }

    /// The reactor's `FileSend::Auto` sends with `sendfile` until its probe
    /// has measured, then may splice the rest of a region it had begun:
    /// both send from the region's position, so the bytes arrive once
    /// each, in order.
    #[test]
    fn a_region_begun_with_sendfile_finishes_spliced() {
        let path = std::env::temp_dir().join(format!("gyre-rp-switch-{}", std::process::id()));
        let data: Vec<u8> = (0..(3u32 << 20))
            .map(|i| (i * 13 + i / 977) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut receiver, _) = listener.accept().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            receiver.read_to_end(&mut got).unwrap();
            got
        });
        let mut region = FileRegion::open(&path).unwrap();
        while region.transferred() < 1 << 20 {
            region.transfer_to(&sender).unwrap();
        }
        let mut pipe = RegionPipe::new(1 << 16).unwrap();
        while !region.is_done() {
            pipe.send(&mut region, &sender).unwrap();
        }
        drop(sender);
        let got = reader.join().unwrap();
        assert!(got == data, "every byte once, in order");
        std::fs::remove_file(&path).unwrap();
    }
}
