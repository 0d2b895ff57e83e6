//! A client connect's outcome, handed from the loop that makes the
//! connection to whoever waits for it: a thread ([`Connecting::wait`]) or a
//! task (`Connecting` is a `Future`). Uses the handle and error types only.
//!
//! One mutex-guarded slot per connect (not per message): the loop fills it
//! once, and wakes the thread or the task that waits.

use crate::error::Error;
use crate::handle::ChannelHandle;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

/// Where a client connects: what its errors name.
#[derive(Clone, Debug)]
pub(crate) enum Endpoint {
    Inet(SocketAddr),
    Unix(PathBuf),
}

impl Endpoint {
    /// The connect to here failed with `source`.
    pub(crate) fn failed(&self, source: io::Error) -> Error {
        match self {
            Endpoint::Inet(addr) => Error::Connect {
                addr: *addr,
                source,
            },
            Endpoint::Unix(path) => Error::Io(io::Error::new(
                source.kind(),
                format!("cannot connect to {}: {source}", path.display()),
            )),
        }
    }

    /// The connect to here took longer than `timeout_ms`.
    pub(crate) fn timed_out(&self, timeout_ms: u64) -> Error {
        match self {
            Endpoint::Inet(addr) => Error::ConnectTimeout {
                addr: *addr,
                timeout_ms,
            },
            Endpoint::Unix(path) => Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "connect to {} timed out after {timeout_ms} ms",
                    path.display()
                ),
            )),
        }
    }
}

struct Slot<W> {
    outcome: Option<Result<ChannelHandle<W>, Error>>,
    /// The loop has answered (the outcome may have been taken since).
    done: bool,
    waker: Option<Waker>,
}

struct Shared<W> {
    slot: Mutex<Slot<W>>,
    filled: Condvar,
}

/// The loop's side: answers the connect once.
pub(crate) struct ConnectReply<W>(Arc<Shared<W>>);

impl<W> ConnectReply<W> {
    /// A reply and the caller's side of it.
    pub(crate) fn new() -> (ConnectReply<W>, Connecting<W>) {
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot {
                outcome: None,
                done: false,
                waker: None,
            }),
            filled: Condvar::new(),
        });
        (ConnectReply(shared.clone()), Connecting(shared))
    }

    /// Hands over the outcome and wakes the waiter.
    pub(crate) fn send(self, outcome: Result<ChannelHandle<W>, Error>) {
        self.finish(outcome);
    }

    /// The outcome, unless one was given already.
    fn finish(&self, outcome: Result<ChannelHandle<W>, Error>) {
        let waker = {
            let mut slot = self.0.slot.lock().unwrap_or_else(|e| e.into_inner());
            if slot.done {
                return;
            }
            slot.outcome = Some(outcome);
            slot.done = true;
            slot.waker.take()
        };
        self.0.filled.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<W> Drop for ConnectReply<W> {
    fn drop(&mut self) {
        // Dropped unanswered: the loop stopped with the connect in it.
        self.finish(Err(Error::LoopShutDown));
    }
}

/// A connect in progress (from
/// [`Bootstrap::connect_async`](crate::Bootstrap::connect_async)): a
/// future of the channel's handle for any executor, or
/// [`wait`](Self::wait) from a thread. The connect goes on whether or not
/// anyone waits; dropping this does not cancel it.
///
/// ```
/// use gyre_reactor::{Bootstrap, EventLoopGroup, Pipeline};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let group = EventLoopGroup::new(1)?;
/// // Returns at once; the loop connects.
/// let connecting = Bootstrap::new(group.clone()).connect_async(listener.local_addr()?, |_| Pipeline::new());
/// let handle = connecting.wait()?;
/// assert!(handle.is_open());
/// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Connecting<W>(Arc<Shared<W>>);

impl<W> std::fmt::Debug for Connecting<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let done = self.0.slot.lock().map(|s| s.done).unwrap_or(true);
        f.debug_struct("Connecting").field("done", &done).finish()
    }
}

impl<W> Connecting<W> {
    /// A connect that failed before it reached a loop.
    pub(crate) fn failed(error: Error) -> Self {
        let (reply, connecting) = ConnectReply::new();
        reply.send(Err(error));
        connecting
    }

    /// Blocks the calling thread until the connect completes. On an event
    /// loop's thread it does not wait (the loop it would wait for may be
    /// this one): unless the connect has already completed, it returns
    /// [`Error::WouldBlockLoop`], and the connect goes on without a handle
    /// to it; there, await it as a future or look with
    /// [`try_take`](Self::try_take) instead.
    ///
    /// # Errors
    /// [`Error::Connect`] (refused, unreachable), [`Error::ConnectTimeout`],
    /// [`Error::LoopShutDown`] or [`Error::WouldBlockLoop`].
    pub fn wait(self) -> Result<ChannelHandle<W>, Error> {
        let mut slot = self.0.slot.lock().unwrap_or_else(|e| e.into_inner());
        if !slot.done {
            crate::loop_thread::refuse_to_wait("Connecting::wait")?;
        }
        while !slot.done {
            slot = self.0.filled.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
        slot.outcome.take().unwrap_or(Err(Error::LoopShutDown))
    }

    /// The outcome if the connect has completed, without waiting.
    pub fn try_take(&mut self) -> Option<Result<ChannelHandle<W>, Error>> {
        self.0
            .slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .outcome
            .take()
    }
}

impl<W> Future for Connecting<W> {
    type Output = Result<ChannelHandle<W>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.0.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.done {
            return Poll::Ready(slot.outcome.take().unwrap_or(Err(Error::LoopShutDown)));
        }
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
