//! What a server's connections share to protect it from clients that hold
//! connections without finishing requests (slowloris): a cap on open
//! connections and a deadline for each request head, which tightens while
//! the server is near its cap. Knows only `std`.
//!
//! The idle timer cannot catch a client that trickles one header byte a
//! second: every byte is progress. A head deadline can, but a generous one
//! (10 s by default, for slow mobile links) still lets a few hundred such
//! clients hold every slot for 10 s at a time. So once three quarters of
//! the slots are taken the deadline drops to `head_timeout_under_load`
//! (1 s by default): far longer than any real client needs to send a head
//! it has in hand, far shorter than a trickle needs, so slots churn and
//! normal clients get in.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The limits of one server, shared by all its connections.
///
/// ```
/// use gyre_fileserver::ConnectionLimits;
/// use std::time::Duration;
///
/// let limits = ConnectionLimits::new(2, Duration::from_secs(10), Duration::from_secs(1));
/// let a = limits.admit();
/// let b = limits.admit();
/// let c = limits.admit();
/// assert!(a.admitted() && b.admitted() && !c.admitted());
/// assert_eq!(limits.head_timeout(), Duration::from_secs(1)); // full: tight
/// drop((a, b, c));
/// assert_eq!(limits.head_timeout(), Duration::from_secs(10));
/// ```
#[derive(Debug)]
pub struct ConnectionLimits {
    max_connections: usize,
    head_timeout: Duration,
    head_timeout_under_load: Duration,
    open: AtomicUsize,
}

impl ConnectionLimits {
    /// At most `max_connections` open at once; a request head must be
    /// complete within `head_timeout` of its first byte, or within
    /// `head_timeout_under_load` while three quarters of the connections
    /// are taken.
    pub fn new(
        max_connections: usize,
        head_timeout: Duration,
        head_timeout_under_load: Duration,
    ) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            max_connections: max_connections.max(1),
            head_timeout,
            head_timeout_under_load: head_timeout_under_load.min(head_timeout),
            open: AtomicUsize::new(0),
        })
    }

    /// Counts a new connection; the slot says whether it fits (one that
    /// does not is answered 503 and closed). Dropping the slot frees it.
    pub fn admit(self: &Arc<Self>) -> ConnectionSlot {
        let before = self.open.fetch_add(1, Ordering::Relaxed);
        ConnectionSlot {
            limits: Arc::clone(self),
            admitted: before < self.max_connections,
        }
    }

    /// Connections open now (refused ones included until they close).
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The most connections served at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// The head deadline while the server is near its cap.
    pub fn head_timeout_under_load(&self) -> Duration {
        self.head_timeout_under_load
    }

    /// The head deadline that applies now, by how full the server is.
    pub fn head_timeout(&self) -> Duration {
        if self.open() * 4 >= self.max_connections * 3 {
            self.head_timeout_under_load
        } else {
            self.head_timeout
        }
    }
}

/// One connection's place in its server's count.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    admitted: bool,
}

impl ConnectionSlot {
    /// Whether the connection fits under the cap.
    pub fn admitted(&self) -> bool {
        self.admitted
    }

    /// The server's limits.
    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The default connection cap for a process allowed `open_files`
/// descriptors: each connection may hold its socket and a file being sent
/// (and, while it sends the file, a pipe's two ends where the reactor's
/// `FileSend::Auto` measured splicing faster), and some are kept back for
/// the process itself.
pub fn default_max_connections(open_files: u64) -> usize {
    (open_files.saturating_sub(64) / 4).max(16) as usize
}
