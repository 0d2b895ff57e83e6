//! What goes wrong with TLS: loading certificates and keys (each error
//! names the file), building a configuration, and a connection's handshake
//! or records (each names the peer). A leaf: knows only rustls's error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A TLS failure: configuration (naming the file or the setting) or a
/// connection's (naming the peer).
///
/// ```
/// use gyre_reactor::{TlsError, TlsIdentity};
///
/// match TlsIdentity::from_pem_files("/no/such/cert.pem", "/no/such/key.pem") {
///     Err(TlsError::Read { path, .. }) => assert_eq!(path, std::path::Path::new("/no/such/cert.pem")),
///     other => panic!("expected a read error naming the file, got {other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file's PEM could not be parsed, or held nothing of the kind
    /// wanted.
    #[error("{}: {what}", path.display())]
    Pem {
        /// The file (or `<memory>` for PEM given as bytes).
        path: PathBuf,
        /// What was wrong: "no certificate", "no private key", a parse error.
        what: String,
    },
    /// rustls refused the configuration (a key that does not match its
    /// certificate, an unusable CA file, ...).
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    /// A client was given a server name that is neither a DNS name nor an
    /// IP address.
    #[error("invalid TLS server name {name:?}")]
    ServerName {
        /// The name given.
        name: String,
    },
    /// The handshake failed: a bad or expired certificate, no shared
    /// protocol or cipher, an unknown server name, garbage instead of a
    /// hello.
    #[error("TLS handshake with {} failed: {source}", peer_name(peer))]
    Handshake {
        /// The peer, if known.
        peer: Option<SocketAddr>,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The handshake did not finish within its timeout.
    #[error("TLS handshake with {} timed out after {timeout:?}", peer_name(peer))]
    HandshakeTimeout {
        /// The peer, if known.
        peer: Option<SocketAddr>,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// The connection closed before its handshake finished.
    #[error("{} closed the connection during the TLS handshake", peer_name(peer))]
    ClosedInHandshake {
        /// The peer, if known.
        peer: Option<SocketAddr>,
    },
    /// A record after the handshake was refused (corrupt, out of order, an
    /// alert from the peer).
    #[error("TLS error on the connection with {}: {source}", peer_name(peer))]
    Record {
        /// The peer, if known.
        peer: Option<SocketAddr>,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// Handing the session's keys to the kernel failed after rustls had
    /// given them up, so the connection cannot go on (see
    /// [`TlsAcceptorBuilder::kernel_tls`](crate::TlsAcceptorBuilder::kernel_tls)).
    #[error(
        "kernel TLS on the connection with {} failed: {source}",
        peer_name(peer)
    )]
    KernelTls {
        /// The peer, if known.
        peer: Option<SocketAddr>,
        /// Why: rustls refusing its keys, or the kernel refusing them.
        source: std::io::Error,
    },
}

fn peer_name(peer: &Option<SocketAddr>) -> String {
    peer.map_or_else(|| "the peer".to_owned(), |p| p.to_string())
}
