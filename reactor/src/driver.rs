//! The kernel interface a loop drives: epoll readiness through mio's
//! `Registry`, or an io_uring ring. Plain data; the verbs that dispatch on
//! it live with what they act on (the channel's in `channel`, a listener's
//! in `listeners`), each `match` once.

use mio::Registry;

/// The kernel interface a loop drives.
pub(crate) enum Driver {
    /// Readiness: channels register with epoll and make their own syscalls.
    Epoll(Registry),
    /// Completions: channels queue operations on the loop's ring.
    #[cfg(feature = "io-uring")]
    Uring(Box<crate::uring::UringDriver>),
}
