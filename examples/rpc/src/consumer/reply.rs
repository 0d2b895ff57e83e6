//! Where a blocking call's answer comes back: one reply channel per calling
//! thread, made once and reused by every blocking call the thread makes, so
//! a call allocates no one-shot channel.
//!
//! A thread waits on one blocking call at a time and the connection's loop
//! settles every call exactly once (answer, timeout or close), so one slot
//! is enough and never holds an answer across calls. A [`Reply`] dropped
//! without an answer (the call never left, or its loop went away) answers
//! [`RpcError::Closed`] itself, because the thread's own sender keeps the
//! channel open and a plain drop would leave the caller waiting forever.

use super::error::RpcError;
use crate::protocol::Status;
use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};

/// What a call's waiter receives: the status and body of the answer.
pub(crate) type Answer = Result<(Status, Bytes), RpcError>;

thread_local! {
    static REPLY: (Sender<Answer>, Receiver<Answer>) = crossbeam_channel::bounded(1);
}

/// The sending end a blocking call hands to the connection.
pub(crate) struct Reply(Option<Sender<Answer>>);

impl Reply {
    /// This thread's reply channel: the sending end to hand to one call,
    /// and the receiving end to wait on. During the thread's own teardown
    /// the thread-local may be gone: a channel for this call alone then.
    pub(crate) fn for_this_thread() -> (Reply, Receiver<Answer>) {
        let (tx, rx) = REPLY
            .try_with(|(tx, rx)| (tx.clone(), rx.clone()))
            .unwrap_or_else(|_| crossbeam_channel::bounded(1));
        (Reply(Some(tx)), rx)
    }

    pub(crate) fn send(mut self, answer: Answer) {
        if let Some(tx) = self.0.take() {
            // The slot is empty: its caller took the last answer before
            // starting this call. Never block the loop on it regardless.
            let _ = tx.try_send(answer);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.try_send(Err(RpcError::Closed));
        }
    }
}
