//! What other threads share with a loop: the waker that rouses it, the
//! doorbell that rings it at most once per sleep, the inbox of channels
//! whose mailboxes have news, the queue of tasks for the loop itself
//! (generic here, so this knows nothing of the loop's state), and the
//! loop's epoll registry. Uses the mailbox's doorbell and mio's waker and
//! registry.

use crate::error::Error;
use crate::mailbox::Doorbell;
use crate::transport::Transport;
use crossbeam_queue::SegQueue;
use mio::{Token, Waker};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// How other threads wake a sleeping loop.
pub(crate) enum Wake {
    /// epoll: mio's waker.
    Mio(Waker),
    /// io_uring: an eventfd the ring keeps a read pending on.
    #[cfg(feature = "io-uring")]
    EventFd(std::os::fd::OwnedFd),
}

impl Wake {
    fn wake(&self) -> io::Result<()> {
        match self {
            Wake::Mio(w) => w.wake(),
            #[cfg(feature = "io-uring")]
            Wake::EventFd(fd) => crate::eventfd::signal(fd),
        }
    }
}

/// What other threads share with a loop.
pub(crate) struct LoopShared<T> {
    pub(crate) waker: Wake,
    pub(crate) doorbell: Doorbell,
    /// Channels whose handles' mailboxes have news.
    pub(crate) inbox: SegQueue<Token>,
    /// Work for the loop itself (its own type: the loop's state).
    pub(crate) tasks: SegQueue<T>,
    pub(crate) alive: AtomicBool,
    pub(crate) index: usize,
    pub(crate) transport: Transport,
    /// The loop's epoll registry (a descriptor of its own for the same
    /// epoll, so it lives as long as this does): the holder of a
    /// channel's input turns the channel's readable registration off and
    /// on through it (`crate::lend`). `None` on io_uring.
    pub(crate) registry: Option<mio::Registry>,
}

impl<T> LoopShared<T> {
    pub(crate) fn notify_channel(&self, token: Token) {
        self.inbox.push(token);
        self.ring();
    }

    pub(crate) fn ring(&self) {
        self.doorbell.ring(|| {
            if let Err(e) = self.waker.wake() {
                tracing::error!(error = %e, "failed to wake event loop");
            }
        });
    }

    pub(crate) fn execute(&self, task: T) -> Result<(), Error> {
        if !self.alive.load(Ordering::Acquire) {
            return Err(Error::LoopShutDown);
        }
        self.tasks.push(task);
        self.ring();
        Ok(())
    }
}
