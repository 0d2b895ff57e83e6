//! Whether the calling thread runs an event loop, and which. The calls
//! that wait for a loop's answer (a loop's metrics, a blocking connect, a
//! bind) check it and refuse at once on a loop thread, as Netty's blocking
//! waits throw there: a handler that made one would otherwise block its
//! own loop, and when the answer was to come from that same loop, block
//! it forever. A loop's own thread queuing work for that loop need not
//! wake it (`LoopShared::ring`): it is awake, and looks at its queues
//! before it next sleeps. Uses only `std` and the error type.

use crate::error::Error;
use std::cell::Cell;

thread_local! {
    /// Set once, by each loop's thread as it starts: the address of what
    /// the loop shares with other threads (0 on any other thread), which
    /// names the loop for as long as the thread runs it.
    static ON_LOOP: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as the thread of the loop whose shared state
/// is at `loop_id` (not 0), for the thread's whole life.
pub(crate) fn mark(loop_id: usize) {
    debug_assert_ne!(loop_id, 0);
    ON_LOOP.with(|on| on.set(loop_id));
}

/// Whether the calling thread runs the loop whose shared state is at
/// `loop_id`: Netty's `inEventLoop` for that loop, one thread-local read.
pub(crate) fn runs(loop_id: usize) -> bool {
    ON_LOOP.with(Cell::get) == loop_id
}

/// Whether the calling thread runs an event loop (of any group), as
/// Netty's `inEventLoop` asks of one loop: what a library on the reactor
/// checks before a call of its own that would wait.
///
/// ```
/// use gyre_reactor::{is_event_loop_thread, EventLoopGroup};
///
/// assert!(!is_event_loop_thread());
/// let group = EventLoopGroup::new(1)?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// group.next().execute(move || tx.send(is_event_loop_thread()).unwrap())?;
/// assert!(rx.recv()?);
/// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn is_event_loop_thread() -> bool {
    ON_LOOP.with(Cell::get) != 0
}

/// `Err(Error::WouldBlockLoop)` naming `operation` when called on an event
/// loop's thread, where waiting would block that loop.
pub(crate) fn refuse_to_wait(operation: &'static str) -> Result<(), Error> {
    if is_event_loop_thread() {
        Err(Error::WouldBlockLoop { operation })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_marked_thread_is_refused() {
        std::thread::spawn(|| {
            assert!(refuse_to_wait("metrics").is_ok());
            assert!(!runs(8));
            mark(8);
            assert!(runs(8) && !runs(16));
            let refused = refuse_to_wait("metrics").unwrap_err();
            assert!(matches!(
                refused,
                Error::WouldBlockLoop {
                    operation: "metrics"
                }
            ));
            assert!(refused.to_string().contains("metrics"), "{refused}");
        })
        .join()
        .unwrap();
        // Another thread is not marked by it.
        assert!(!is_event_loop_thread());
    }
}
