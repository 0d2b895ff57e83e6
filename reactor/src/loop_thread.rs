//! Whether the calling thread runs an event loop. The calls that wait for
//! a loop's answer (a loop's metrics, a blocking connect, a bind) check it
//! and refuse at once on a loop thread, as Netty's blocking waits throw
//! there: a handler that made one would otherwise block its own loop, and
//! when the answer was to come from that same loop, block it forever.
//! Uses only `std` and the error type.

use crate::error::Error;
use std::cell::Cell;

thread_local! {
    /// Set once, by each loop's thread as it starts.
    static ON_LOOP: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as an event loop's (for its whole life).
pub(crate) fn mark() {
    ON_LOOP.with(|on| on.set(true));
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
    ON_LOOP.with(Cell::get)
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
            mark();
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
