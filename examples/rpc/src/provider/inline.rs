//! Answers made while their call is being read: a deferred method that
//! answers before it returns (an asynchronous method's future ready at its
//! first poll, a deferred method answering at once) hands its frame back
//! to the connection's handler, which writes it with the read's other
//! answers, as a plain method's answer is, instead of sending it through
//! the connection's handle (a mailbox, and a pass through the loop's
//! inbox after the read). Uses only `bytes` and `std`.
//!
//! One sink per thread, open only while a handler starts a deferred call.
//! A call started while it is open carries its ticket; its answer goes
//! into the sink only if the same ticket is still open, so an answer made
//! later, or on another thread, or for another call (a method answering a
//! responder it kept from earlier, perhaps of another connection), goes
//! the usual way.

use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

/// Which opening of which thread's sink a call was started in: unique in
/// the process (the thread's number and a count that does not wrap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    thread: u64,
    count: u64,
}

/// The next thread to open a sink gets this number (from 1).
static THREADS: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's number, taken at its first opening (0: none yet).
    static THREAD: Cell<u64> = const { Cell::new(0) };
    /// The ticket open now, if any, and how many this thread has given.
    static OPEN: Cell<Option<Ticket>> = const { Cell::new(None) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
    /// The frames answered under the open ticket, in answer order. Kept
    /// between openings, so a busy connection allocates it once.
    static FRAMES: RefCell<Vec<Bytes>> = const { RefCell::new(Vec::new()) };
}

/// Opens this thread's sink for one call about to start; its ticket.
pub(crate) fn open() -> Ticket {
    let thread = THREAD.with(|t| {
        if t.get() == 0 {
            t.set(THREADS.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    });
    let count = COUNT.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let ticket = Ticket { thread, count };
    OPEN.with(|open| open.set(Some(ticket)));
    ticket
}

/// Keeps `frame` for the handler if `ticket` is the one open on this
/// thread; gives it back otherwise.
pub(crate) fn keep(ticket: Option<Ticket>, frame: Bytes) -> Result<(), Bytes> {
    if ticket.is_none() || OPEN.with(Cell::get) != ticket {
        return Err(frame);
    }
    FRAMES.with(|frames| match frames.try_borrow_mut() {
        Ok(mut frames) => {
            frames.push(frame);
            Ok(())
        }
        Err(_) => Err(frame),
    })
}

/// Closes the sink and hands `write` the frames kept under it, in order.
pub(crate) fn close(mut write: impl FnMut(Bytes)) {
    OPEN.with(|open| open.set(None));
    // Taken out first: `write` may run code that answers again (it will
    // find the sink closed).
    let mut frames = FRAMES.with(|frames| std::mem::take(&mut *frames.borrow_mut()));
    for frame in frames.drain(..) {
        write(frame);
    }
    FRAMES.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.capacity() < frames.capacity() {
            *kept = frames;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed() -> Vec<Bytes> {
        let mut got = Vec::new();
        close(|f| got.push(f));
        got
    }

    #[test]
    fn only_the_open_ticket_is_kept() {
        let first = Some(open());
        assert_eq!(keep(first, Bytes::from_static(b"a")), Ok(()));
        assert_eq!(keep(first, Bytes::from_static(b"b")), Ok(()));
        // A call started with the sink closed.
        assert!(keep(None, Bytes::from_static(b"x")).is_err());
        assert_eq!(closed(), [&b"a"[..], b"b"]);
        // Closed: the same ticket answering later goes its own way.
        assert!(keep(first, Bytes::from_static(b"late")).is_err());
        let second = Some(open());
        assert_ne!(first, second);
        assert!(keep(first, Bytes::from_static(b"old")).is_err());
        assert_eq!(keep(second, Bytes::from_static(b"c")), Ok(()));
        assert_eq!(closed(), [&b"c"[..]]);
        assert!(closed().is_empty());
    }

    #[test]
    fn another_thread_has_its_own_sink() {
        let here = open();
        // Another thread's first opening: not the same ticket, though it
        // is that thread's first as this may be this one's.
        let (there, refused) = std::thread::spawn(move || {
            let there = open();
            (there, keep(Some(here), Bytes::from_static(b"t")).is_err())
        })
        .join()
        .unwrap();
        assert_ne!(here, there);
        assert!(refused);
        assert!(keep(Some(there), Bytes::from_static(b"u")).is_err());
        assert!(closed().is_empty());
    }
}
