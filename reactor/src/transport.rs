//! `Transport`: which kernel interface a group's loops drive their sockets
//! with.

/// How an event loop talks to the kernel.
///
/// Chosen per [`EventLoopGroup`](crate::EventLoopGroup) (or for the group
/// a [`ServerBootstrap`](crate::ServerBootstrap) makes for itself). Both
/// transports keep the same channel, pipeline, handle, timer and idle
/// contracts, so switching is one option.
///
/// ```
/// use gyre_reactor::{EventLoopGroup, Transport};
///
/// // io_uring where the kernel allows it (and the `io-uring` feature is on),
/// // epoll otherwise; the group says which it chose.
/// let group = EventLoopGroup::builder()
///     .transport(Transport::Auto)
///     .auto_prefers(Transport::IoUring)
///     .threads(1)
///     .build()?;
/// assert_ne!(group.transport(), Transport::Auto);
/// group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Readiness with epoll (through mio); works everywhere. The default.
    #[default]
    Epoll,
    /// Completions with io_uring, one ring per loop thread. Needs the
    /// `io-uring` cargo feature and Linux 6.0 or later; if the kernel
    /// refuses (old kernel, `io_uring_disabled`, seccomp, a missing
    /// opcode), making the group fails with an error that says why.
    IoUring,
    /// Let gyre choose: the group's preference
    /// ([`EventLoopGroupBuilder::auto_prefers`], by default epoll, because
    /// our benchmarks do not yet favour io_uring); when that is io_uring and
    /// the kernel refuses it, epoll with a `tracing` warning that says why.
    ///
    /// [`EventLoopGroupBuilder::auto_prefers`]: crate::EventLoopGroupBuilder::auto_prefers
    Auto,
}

impl std::str::FromStr for Transport {
    type Err = String;

    /// `epoll`, `io_uring` (or `io-uring`, `uring`) or `auto`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "epoll" => Ok(Transport::Epoll),
            "io_uring" | "io-uring" | "uring" => Ok(Transport::IoUring),
            "auto" => Ok(Transport::Auto),
            other => Err(format!(
                "unknown transport {other:?}: expected epoll, io_uring or auto"
            )),
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Epoll => "epoll",
            Transport::IoUring => "io_uring",
            Transport::Auto => "auto",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Transport;

    #[test]
    fn parses_and_prints_names() {
        for t in [Transport::Epoll, Transport::IoUring, Transport::Auto] {
            assert_eq!(t.to_string().parse::<Transport>(), Ok(t));
        }
        assert_eq!("io-uring".parse(), Ok(Transport::IoUring));
        assert_eq!("EPOLL".parse(), Ok(Transport::Epoll));
        assert!("kqueue"
            .parse::<Transport>()
            .unwrap_err()
            .contains("kqueue"));
    }
}
