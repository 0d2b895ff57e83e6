//! A channel's I/O on an epoll loop: registration with the loop's registry
//! for edge-triggered readiness, and deregistration on release. Its reads
//! and writes are plain non-blocking system calls the channel makes itself
//! (`read_once`, `write_out`), so this side is small; `uring` is its
//! counterpart for completions.

use super::Channel;
use mio::{Interest, Registry};
use std::io;

impl Channel {
    /// Registers the socket for readable and writable edges.
    pub(super) fn epoll_register(&mut self, registry: &Registry) -> io::Result<()> {
        let stream = self.stream.as_mut().expect("registering a closed channel");
        registry.register(stream, self.token, Interest::READABLE | Interest::WRITABLE)?;
        self.open_gate();
        Ok(())
    }

    /// Deregisters and closes the socket, and drops the buffers: nothing
    /// but this channel holds them.
    pub(super) fn epoll_release(&mut self, registry: &Registry) {
        if let Some(mut stream) = self.stream.take() {
            let _ = registry.deregister(&mut stream);
            if self.input_lent() {
                // Its holder may be asleep waiting for input: the shutdown
                // wakes it with the end of input. The descriptor is still
                // open (not yet retired, so no holder has closed it).
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
            // Dropping the stream closes the descriptor, unless a direct
            // writer is in its `send`: it closes it when it leaves.
            if let Some(gate) = &self.direct {
                if !gate.retire() {
                    let _ = stream.into_raw_fd();
                }
            }
        }
        self.release_buffers();
    }
}
