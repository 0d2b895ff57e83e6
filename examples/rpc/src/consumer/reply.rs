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
use super::pending::{Answer, Sink};
use crossbeam_channel::{Receiver, Sender};

thread_local! {
    static REPLY: (Sender<Answer>, Receiver<Answer>) = crossbeam_channel::bounded(1);
}

/// The sending end a blocking call hands to the connection.
pub(crate) struct Reply(Option<Sender<Answer>>);

impl Reply {
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

/// Runs `start` with a sink for one call and waits for its answer on this
/// thread's reply channel. If `start` fails, its sink has been dropped (and
/// has answered `Closed`): that answer is discarded and `start`'s error
/// returned.
pub(crate) fn wait_for(start: impl FnOnce(Sink) -> Result<(), RpcError>) -> Answer {
    // During the thread's own teardown the thread-local may be gone: a
    // channel for this call alone then.
    let (tx, rx) = REPLY
        .try_with(|(tx, rx)| (tx.clone(), rx.clone()))
        .unwrap_or_else(|_| crossbeam_channel::bounded(1));
    match start(Sink::Reply(Reply(Some(tx)))) {
        Ok(()) => rx.recv().unwrap_or(Err(RpcError::Closed)),
        Err(e) => {
            let _ = rx.try_recv();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Status;
    use bytes::Bytes;

    #[test]
    fn answers_come_back_call_after_call_on_one_channel() {
        for i in 0..100u8 {
            let got = wait_for(|sink| {
                std::thread::spawn(move || sink.send(Ok((Status::Ok, Bytes::from(vec![i])))));
                Ok(())
            });
            assert_eq!(got.unwrap().1, Bytes::from(vec![i]));
        }
    }

    #[test]
    fn a_sink_dropped_unanswered_answers_closed() {
        let got = wait_for(|sink| {
            std::thread::spawn(move || drop(sink));
            Ok(())
        });
        assert!(matches!(got, Err(RpcError::Closed)));
        // Nothing is left over for the next call.
        let next = wait_for(|sink| {
            sink.send(Ok((Status::Ok, Bytes::from_static(b"next"))));
            Ok(())
        });
        assert_eq!(next.unwrap().1, "next");
    }

    #[test]
    fn a_call_that_never_left_returns_its_error_and_leaves_no_answer() {
        let got = wait_for(|sink| {
            drop(sink);
            Err(RpcError::NoProvider("s".into()))
        });
        assert!(matches!(got, Err(RpcError::NoProvider(_))));
        let next = wait_for(|sink| {
            sink.send(Ok((Status::Ok, Bytes::from_static(b"clean"))));
            Ok(())
        });
        assert_eq!(next.unwrap().1, "clean");
    }
}
