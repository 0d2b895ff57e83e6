//! How other threads hand work to a loop without a lock.
//!
//! Two small flags make the protocol, both model-checked in `loom-tests`:
//!
//! * A [`Mailbox`] is one channel's queue of commands from
//!   [`ChannelHandle`](crate::ChannelHandle)s. Its `scheduled` flag makes sure
//!   the channel's token is put in the loop's inbox once per batch of
//!   commands, not once per command.
//! * A [`Doorbell`] belongs to a loop. Its `rung` flag makes sure the loop's
//!   `mio::Waker` (an `eventfd` write, a system call) is rung once per sleep,
//!   not once per message.
//!
//! Both follow the same rule: the producer publishes its item *before* it
//! flips the flag with an acquire-release swap, and the consumer clears the
//! flag with a swap *before* it looks at the queue. Swaps on one atomic are
//! totally ordered, so either the producer's swap comes first (the
//! consumer's clear reads `true`, synchronises with it, and its look sees
//! the item) or the consumer's clear comes first (the producer reads
//! `false` and schedules or wakes again). No item is ever left behind with
//! the flag clear. A mailbox is cleared before each drain; the doorbell
//! only when the loop is about to sleep, before its last look at its
//! queues, so a loop that is awake (busy, or turning without sleeping) is
//! never woken: its producers make no system call.
//!
//! Closing is the same race with the roles turned: the loop closes, then
//! drains what is left for the last time, while a producer that found the
//! mailbox open pushes. Each side puts a sequentially consistent fence
//! between its write (the item; the flag) and its read (the flag; the
//! queue), so at least one sees the other: the loop's drain takes the
//! item, or the producer sees the close and drops what is queued itself.
//! No item is stranded in a closed mailbox, where whatever it carries (a
//! caller's reply channel, say) would wait for the last handle to go.

use crate::sync::{fence, AtomicBool, AtomicUsize, Ordering};
use crossbeam_queue::SegQueue;

/// One channel's queue of cross-thread commands.
///
/// The queue is crossbeam's lock-free segmented queue: a push is a few atomic
/// operations and allocates one block per 31 items, not one per item.
pub struct Mailbox<T> {
    queue: SegQueue<T>,
    scheduled: AtomicBool,
    closed: AtomicBool,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Mailbox<T> {
    /// An empty, open mailbox.
    pub fn new() -> Self {
        Mailbox {
            queue: SegQueue::new(),
            scheduled: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Queues `item`. Returns `Ok(true)` when the caller must tell the loop
    /// (the mailbox was not yet scheduled), `Ok(false)` when a notice is
    /// already on its way or the mailbox closed as the item went in (it is
    /// then dropped, as the loop drops what a closing channel had queued),
    /// and gives the item back if the mailbox was closed before.
    pub fn push(&self, item: T) -> Result<bool, T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(item);
        }
        self.queue.push(item);
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            // The loop's last drain may have missed it: do it for the loop.
            while self.queue.pop().is_some() {}
            return Ok(false);
        }
        Ok(!self.scheduled.swap(true, Ordering::AcqRel))
    }

    /// Called by the loop before it drains: from here on, a new push
    /// schedules the mailbox again.
    pub fn begin_drain(&self) {
        self.scheduled.swap(false, Ordering::AcqRel);
    }

    /// Called by the loop when it stopped draining with items perhaps
    /// left: `true` if it must put the channel in its inbox again, `false`
    /// if a push since `begin_drain` already did (so a channel is in the
    /// inbox once, however often it is put back).
    pub fn reschedule(&self) -> bool {
        !self.scheduled.swap(true, Ordering::AcqRel)
    }

    /// The next queued item, if any.
    pub fn pop(&self) -> Option<T> {
        self.queue.pop()
    }

    /// Whether nothing is queued (a direct write may go ahead of nothing).
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Refuses every later push. Items already queued stay until popped:
    /// the loop drains them after this; a push racing the close drops its
    /// own (see the module comment).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        fence(Ordering::SeqCst);
    }

    /// Whether [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A loop's "you have mail" flag, in front of its waker.
pub struct Doorbell {
    rung: AtomicBool,
    /// How many times a producer actually had to wake the loop; exposed for
    /// tests and the benchmark's curiosity, never on the loop's hot path.
    wakes: AtomicUsize,
}

impl Default for Doorbell {
    fn default() -> Self {
        Self::new()
    }
}

impl Doorbell {
    /// A doorbell nobody has rung.
    pub fn new() -> Self {
        Doorbell {
            rung: AtomicBool::new(false),
            wakes: AtomicUsize::new(0),
        }
    }

    /// Called by a producer after it published its item. Runs `wake` only
    /// if the bell was not already rung since the loop last answered.
    pub fn ring(&self, wake: impl FnOnce()) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            self.wakes.fetch_add(1, Ordering::Relaxed);
            wake();
        }
    }

    /// Called by the loop when it is about to sleep, before it looks at
    /// its queues for the last time: from here on, a producer wakes it.
    pub fn answer(&self) {
        self.rung.swap(false, Ordering::AcqRel);
    }

    /// How many rings actually woke the loop.
    #[cfg_attr(not(loom), allow(dead_code))] // read by the loom models and tests
    pub fn wakes(&self) -> usize {
        self.wakes.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn mailbox_schedules_once_per_batch() {
        let m = Mailbox::new();
        assert_eq!(m.push(1), Ok(true));
        assert_eq!(m.push(2), Ok(false));
        m.begin_drain();
        assert_eq!(m.pop(), Some(1));
        assert_eq!(m.pop(), Some(2));
        assert_eq!(m.push(3), Ok(true));
        m.close();
        assert_eq!(m.push(4), Err(4));
    }

    #[test]
    fn doorbell_wakes_once_until_answered() {
        let d = Doorbell::new();
        let mut woken = 0;
        d.ring(|| woken += 1);
        d.ring(|| woken += 1);
        assert_eq!(woken, 1);
        d.answer();
        d.ring(|| woken += 1);
        assert_eq!(woken, 2);
        assert_eq!(d.wakes(), 2);
    }
}
