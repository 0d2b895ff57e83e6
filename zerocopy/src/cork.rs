//! A TCP socket corked for the length of a file send: only whole segments
//! leave it until the cork comes off, which sends the last partial one.
//!
//! Why: the kernel sends a file to a socket a pipeful (16 pages) at a
//! time, `sendfile` and `splice` alike, and lets go of the socket between
//! pipefuls. An acknowledgement that arrives then pushes out whatever
//! partial segment the last pipeful left, as Nagle's rules or
//! `TCP_NODELAY` allow. On the Intel Xeon VM a 1 GiB `sendfile` over
//! loopback put out about 11,000 such runts beside its 16,000 full
//! segments, with twice the acknowledgements and three times the context
//! switches of a copy loop, and ran at 1.6-1.8 GiB/s against the copy
//! loop's 2.7-3.0; corked, at 2.8-3.9 GiB/s with half the CPU
//! (BENCHMARKS.md, issue 22, twenty-eighth session). This is what nginx's
//! `tcp_nopush` does around `sendfile`. `gyre-reactor`'s channels cork
//! themselves while they send a file; this is for a socket of your own.
//!
//! Uses `socket2` on a borrowed descriptor; knows nothing of files.

use socket2::SockRef;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// `TCP_CORK` on a socket until this is dropped (or
/// [`release`](Cork::release)d).
///
/// While corked, the kernel sends only full segments; taking the cork off
/// sends what is left at once. A cork left on holds a partial segment for
/// up to 200 ms, which is why this is a guard. Cork a long send (a file
/// of more than 64 KiB, a header followed by one); a short one is one
/// `sendmsg` to the kernel and has no runts to prevent.
///
/// ```
/// use gyre_zerocopy::{Cork, FileRegion};
/// use std::io::Read;
/// use std::net::{TcpListener, TcpStream};
/// # let dir = std::env::temp_dir().join(format!("gyre-doc-cork-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("big");
/// std::fs::write(&path, vec![b'x'; 300_000])?;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let socket = TcpStream::connect(listener.local_addr()?)?;
/// let (mut peer, _) = listener.accept()?;
/// let reader = std::thread::spawn(move || {
///     let mut got = Vec::new();
///     peer.read_to_end(&mut got).map(|_| got.len())
/// });
///
/// let mut region = FileRegion::open(&path)?;
/// {
///     let _cork = Cork::on(&socket)?;
///     while !region.is_done() {
///         region.transfer_to(&socket)?;
///     }
/// } // the cork comes off here, and the last partial segment goes out
/// drop(socket);
/// assert_eq!(reader.join().unwrap()?, 300_000);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "the socket is corked only while the guard lives"]
pub struct Cork<'a> {
    socket: BorrowedFd<'a>,
}

impl<'a> Cork<'a> {
    /// Corks `socket` (sets `TCP_CORK`). Fails if the socket is not TCP
    /// (`ENOPROTOOPT` or `EOPNOTSUPP`) or the kernel refuses; the error
    /// says which option failed, with the system's error kind kept.
    pub fn on(socket: &'a impl AsFd) -> io::Result<Cork<'a>> {
        let socket = socket.as_fd();
        set_cork(socket, true)?;
        Ok(Cork { socket })
    }

    /// Takes the cork off now, and says whether that worked (dropping the
    /// guard does the same and ignores a failure).
    pub fn release(self) -> io::Result<()> {
        let socket = self.socket;
        std::mem::forget(self);
        set_cork(socket, false)
    }
}

/// Sets or clears `TCP_CORK`, naming the option and the descriptor in the
/// error.
fn set_cork(socket: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    SockRef::from(&socket).set_tcp_cork(on).map_err(|e| {
        let what = if on { "set" } else { "clear" };
        io::Error::new(
            e.kind(),
            format!(
                "cannot {what} TCP_CORK on descriptor {}: {e}",
                socket.as_raw_fd()
            ),
        )
    })
}

impl Drop for Cork<'_> {
    fn drop(&mut self) {
        // Nothing to do with a failure here: the socket goes on uncorked
        // or, if the kernel refused, the cork's 200 ms timer sends the
        // rest.
        let _ = SockRef::from(&self.socket).set_tcp_cork(false);
    }
}

#[cfg(test)]
mod tests {
    use super::Cork;
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::net::UnixStream;

    fn tcp() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (peer, _) = listener.accept().unwrap();
        (socket, peer)
    }

    fn corked(s: &TcpStream) -> bool {
        socket2::SockRef::from(s).tcp_cork().unwrap()
    }

    #[test]
    fn the_cork_is_on_while_the_guard_lives_and_off_after() {
        let (socket, _peer) = tcp();
        assert!(!corked(&socket));
        let cork = Cork::on(&socket).unwrap();
        assert!(corked(&socket));
        drop(cork);
        assert!(!corked(&socket));
        let cork = Cork::on(&socket).unwrap();
        cork.release().unwrap();
        assert!(!corked(&socket));
    }

    #[test]
    fn a_unix_socket_cannot_be_corked_and_the_error_says_so() {
        let (a, _b) = UnixStream::pair().unwrap();
        let e = Cork::on(&a).unwrap_err();
        assert!(e.to_string().contains("cannot set TCP_CORK"), "{e}");
    }
}
