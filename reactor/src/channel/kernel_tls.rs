//! A channel whose TLS record layer the kernel runs (kTLS): switching it
//! on for the TLS layer, reading with each record's content type, and our
//! `close_notify` at a graceful close. Uses the kernel interface in
//! `crate::ktls`; the TLS layer above decides when to switch.

use super::read::Received;
use super::Channel;
use crate::ktls::{self, RECORD_ALERT, RECORD_DATA, RECORD_HANDSHAKE};
use std::io;
use std::os::fd::AsRawFd;

/// An alert's description for `close_notify` (RFC 8446, section 6).
const CLOSE_NOTIFY: u8 = 0;

impl Channel {
    /// Whether the kernel's TLS could take this channel's socket: a TCP
    /// connection, open, on a kernel found to have kTLS (and on an io_uring
    /// loop, one [prepared](Self::prepare_kernel_tls) for it).
    pub(crate) fn kernel_tls_possible(&self) -> bool {
        #[cfg(feature = "io-uring")]
        if self.ring.on_ring && !self.uses_readiness() {
            return false;
        }
        self.kernel_tls_possible && self.stream.is_some() && !self.failed && ktls::available()
    }

    /// Readies the channel for the TLS layer to hand its session to the
    /// kernel later, which it asks for in its `active`: whether it may.
    /// On an io_uring loop this moves the channel to readiness I/O, as
    /// epoll's: the channel then reads with its own `recvmsg`, which
    /// carries each record's type, and no receive of the ring's can take
    /// ciphertext past the moment of the switch.
    pub(crate) fn prepare_kernel_tls(&self) -> bool {
        if !self.kernel_tls_possible || !ktls::available() {
            return false;
        }
        #[cfg(feature = "io-uring")]
        if self.ring.on_ring {
            return self.use_readiness();
        }
        true
    }

    /// Attaches the kernel's TLS to the socket (`TCP_ULP`); until
    /// [`install_kernel_tls`](Self::install_kernel_tls) the socket carries
    /// bytes as before.
    pub(crate) fn attach_kernel_tls(&self) -> io::Result<()> {
        match &self.stream {
            Some(stream) if self.kernel_tls_possible => ktls::attach(stream.as_raw_fd()),
            _ => Err(io::Error::from(io::ErrorKind::Unsupported)),
        }
    }

    /// Gives the session's keys to the kernel, on a socket
    /// [`attach_kernel_tls`](Self::attach_kernel_tls) attached; from here
    /// on the channel reads and writes plaintext. An error leaves the
    /// session unusable (rustls has given its keys up).
    pub(crate) fn install_kernel_tls(
        &self,
        version: rustls::ProtocolVersion,
        secrets: rustls::ExtractedSecrets,
    ) -> io::Result<()> {
        let stream = self
            .stream
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        ktls::install(stream.as_raw_fd(), version, secrets)?;
        self.kernel_tls.set(true);
        Ok(())
    }

    /// One read of a kTLS socket: application data as any read's bytes;
    /// the peer's `close_notify` as the end of input; any other alert, or
    /// a post-handshake message, as an error that closes the channel.
    pub(super) fn read_record(&mut self) -> io::Result<Received> {
        let stream = self.stream.as_ref().expect("reading a closed channel");
        let mut control = [0u8; 2];
        let record = ktls::recv_record(stream.as_raw_fd(), &mut self.read_buf, &mut control)?;
        match record.content_type {
            // A kTLS read stops where a record of another type begins, so a
            // short one says nothing about what is left: it is reported as
            // full, and the loop reads on until the socket would block.
            RECORD_DATA => Ok(Received {
                len: record.len,
                asked: record.len,
                sender: None,
            }),
            RECORD_ALERT if control[1] == CLOSE_NOTIFY => Ok(Received {
                len: 0,
                asked: 0,
                sender: None,
            }),
            RECORD_ALERT => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the peer sent TLS alert {} (level {}) under kernel TLS",
                    control[1], control[0]
                ),
            )),
            RECORD_HANDSHAKE => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the peer sent a post-handshake TLS message (a key update), \
                 which a kernel-TLS connection cannot take",
            )),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a TLS record of content type {other} under kernel TLS"),
            )),
        }
    }

    /// Before a graceful close of a kTLS socket: our `close_notify`, so the
    /// peer can tell the end from a truncation. Best effort, as any write
    /// at a close.
    pub(super) fn kernel_tls_close_notify(&self) {
        if !self.kernel_tls.get() || self.failed {
            return;
        }
        if let Some(stream) = &self.stream {
            if let Err(error) = ktls::send_close_notify(stream.as_raw_fd()) {
                tracing::debug!(peer = ?self.peer, %error, "close_notify not sent");
            }
        }
    }
}
