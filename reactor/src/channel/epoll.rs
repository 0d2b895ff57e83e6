//! A channel's I/O on an epoll loop: registration with the loop's registry
//! for edge-triggered readiness, and deregistration on release. Its reads
//! and writes are plain non-blocking system calls the channel makes itself
//! (`read_once`, `write_out`), so this side is small; `uring` is its
//! counterpart for completions.
//!
//! A channel that lends its input registers twice: the socket for
//! writable edges, and a duplicate of its descriptor for readable ones
//! (epoll keeps one registration per descriptor, so the two can be
//! changed apart). A thread that holds the input turns the readable one
//! off while it reads the socket itself (`crate::lend`): the answers it
//! reads then do not wake the loop to find the input lent. The duplicate
//! is the gate's to close, with the socket (`crate::direct`). Without a
//! descriptor to spare the channel registers once, and a holder's reads
//! wake the loop as they did before.

use super::Channel;
use mio::unix::SourceFd;
use mio::{Interest, Registry};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

impl Channel {
    /// Registers the socket for readable and writable edges (through two
    /// descriptors if it lends its input).
    pub(super) fn epoll_register(&mut self, registry: &Registry) -> io::Result<()> {
        let lends = self.opts.lends_input() && self.gate_wanted();
        let stream = self.stream.as_mut().expect("registering a closed channel");
        let reads = if lends {
            duplicate(stream.as_raw_fd())
        } else {
            None
        };
        let read_fd = match reads {
            Some(reads) => {
                registry.register(stream, self.token, Interest::WRITABLE)?;
                let read_fd = reads.as_raw_fd();
                registry.register(&mut SourceFd(&read_fd), self.token, Interest::READABLE)?;
                // The gate closes it from here on.
                reads.into_raw_fd()
            }
            None => {
                registry.register(stream, self.token, Interest::READABLE | Interest::WRITABLE)?;
                -1
            }
        };
        self.open_gate(read_fd);
        Ok(())
    }

    /// Deregisters and closes the socket, and drops the buffers: nothing
    /// but this channel holds them.
    pub(super) fn epoll_release(&mut self, registry: &Registry) {
        if let Some(mut stream) = self.stream.take() {
            let _ = registry.deregister(&mut stream);
            if let Some(read_fd) = self.direct.as_ref().and_then(|g| g.read_fd()) {
                let _ = registry.deregister(&mut SourceFd(&read_fd));
            }
            if self.input_lent() {
                // Its holder may be asleep waiting for input: the shutdown
                // wakes it with the end of input. The descriptor is still
                // open (not yet retired, so no holder has closed it).
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
            // Dropping the stream closes the descriptor, unless a direct
            // writer is in its `send` or a thread holds the input: the
            // last of them closes it when it leaves.
            if let Some(gate) = &self.direct {
                if gate.retire() {
                    if let Some(read_fd) = gate.read_fd() {
                        crate::socket::close_from_any_thread(read_fd);
                    }
                } else {
                    let _ = stream.into_raw_fd();
                }
            }
        }
        self.release_buffers();
    }
}

/// A duplicate of `fd` (close-on-exec), or `None` when the process has
/// no descriptor to spare: the channel then registers once.
fn duplicate(fd: std::os::fd::RawFd) -> Option<OwnedFd> {
    // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` reads no memory; `fd` is the
    // channel's open socket.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        tracing::debug!(
            error = %io::Error::last_os_error(),
            "no descriptor for a separate input registration"
        );
        return None;
    }
    // SAFETY: `dup` is a new descriptor nobody else owns.
    Some(unsafe { OwnedFd::from_raw_fd(dup) })
}
