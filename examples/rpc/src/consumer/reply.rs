//! Where a blocking call's answer comes back: one reply slot per calling
//! thread, made once and reused by every blocking call the thread makes, so
//! a call allocates no one-shot channel. The slot holds the thread's
//! [`Alarm`] too, which the connection's loop rings after each answer it
//! puts there, so the thread may sleep beside the connection's socket
//! instead of on the channel (see [`super::wait::wait_for_answer`]).
//!
//! A thread waits on one blocking call at a time, and every call is
//! settled exactly once (answer, timeout or close), by the connection's
//! loop or, for a call that read its own answer, by the caller itself, so
//! one slot is enough and never holds an answer across calls. A [`Reply`] dropped
//! without an answer (the call never left, or its loop went away) answers
//! [`RpcError::Closed`] itself, because the thread's own sender keeps the
//! channel open and a plain drop would leave the caller waiting forever.

use super::error::RpcError;
use crate::protocol::Status;
use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use gyre_reactor::Alarm;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a call's waiter receives: the status and body of the answer.
pub(crate) type Answer = Result<(Status, Bytes), RpcError>;

/// A thread's reply channel and alarm.
struct Slot {
    tx: Sender<Answer>,
    rx: Receiver<Answer>,
    /// `None` if the process had no descriptor to spare for it: the
    /// thread then always sleeps on the channel.
    alarm: Option<Alarm>,
}

impl Slot {
    fn new(alarm: bool) -> Slot {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let alarm = if alarm { Alarm::new().ok() } else { None };
        Slot { tx, rx, alarm }
    }
}

thread_local! {
    static SLOT: Arc<Slot> = Arc::new(Slot::new(true));
}

/// The sending end a blocking call hands to the connection.
pub(crate) struct Reply(Option<Arc<Slot>>);

/// The receiving end the blocking caller keeps.
pub(crate) struct Waiter(Arc<Slot>);

impl Reply {
    /// This thread's reply slot: the sending end to hand to one call, and
    /// the receiving end to wait on. During the thread's own teardown the
    /// thread-local may be gone: a slot for this call alone then, without
    /// an alarm.
    pub(crate) fn for_this_thread() -> (Reply, Waiter) {
        let slot = SLOT
            .try_with(Arc::clone)
            .unwrap_or_else(|_| Arc::new(Slot::new(false)));
        (Reply(Some(slot.clone())), Waiter(slot))
    }

    pub(crate) fn send(mut self, answer: Answer) {
        if let Some(slot) = self.0.take() {
            deliver(&slot, answer);
        }
    }
}

/// Puts `answer` in the slot, then rings the waiter (after: the alarm's
/// protocol needs the answer visible first).
fn deliver(slot: &Slot, answer: Answer) {
    // The slot is empty: its caller took the last answer before starting
    // this call. Never block the loop on it regardless.
    let _ = slot.tx.try_send(answer);
    if let Some(alarm) = &slot.alarm {
        alarm.ring();
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            deliver(&slot, Err(RpcError::Closed));
        }
    }
}

impl Waiter {
    /// Sleeps until the answer comes. Every call is settled by its loop
    /// (answer, timeout or close), and a reply dropped unsettled answers
    /// `Closed`, so this returns.
    pub(crate) fn recv(&self) -> Answer {
        self.0.rx.recv().unwrap_or(Err(RpcError::Closed))
    }

    /// Whether the answer is in.
    pub(crate) fn is_ready(&self) -> bool {
        !self.0.rx.is_empty()
    }

    /// Drops an answer left for a call that never left.
    pub(crate) fn discard(&self) {
        let _ = self.0.rx.try_recv();
    }

    /// The thread's alarm, if it has one.
    pub(crate) fn alarm(&self) -> Option<&Alarm> {
        self.0.alarm.as_ref()
    }

    /// Watches for the answer for at most `window`, yielding the core.
    pub(crate) fn watch(&self, window: Duration) {
        let until = Instant::now() + window;
        while !self.is_ready() && Instant::now() < until {
            // Yield, not spin: the kernel may have woken the loop onto
            // this very core, and the answer needs the loop to run.
            std::thread::yield_now();
        }
    }
}
