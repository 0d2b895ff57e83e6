//! Where a call's answer goes ([`Sink`]) and what it is ([`Answer`]).
//! Uses the consumer's error and reply slot; the pending-call table above
//! it hands each call's sink its answer, and `wait` makes a blocking
//! call's.

#[cfg(test)]
use super::error::RpcError;
pub(crate) use super::reply::Answer;
use super::reply::Reply;
use gyre_reactor::promise::Promise;

/// Where a call's answer goes.
pub(crate) enum Sink {
    /// To the one future waiting for it (its slot comes from the
    /// consumer's pool, so an asynchronous call allocates no channel).
    One(Promise<Answer>),
    /// To a blocking caller, on its thread's reusable reply channel.
    Reply(Reply),
}

impl Sink {
    pub(crate) fn send(self, answer: Answer) {
        // A caller that stopped waiting has nobody to tell.
        match self {
            Sink::One(promise) => promise.complete(answer),
            Sink::Reply(reply) => reply.send(answer),
        }
    }
}

/// Runs `start` with a sink for one call and waits for its answer on this
/// thread's reply slot. If `start` fails, its sink has been dropped (and
/// has answered `Closed`): that answer is discarded and `start`'s error
/// returned. (Calls wait with `wait::wait_for_answer`; tests use this.)
#[cfg(test)]
pub(crate) fn wait_for(start: impl FnOnce(Sink) -> Result<(), RpcError>) -> Answer {
    let (reply, waiter) = Reply::for_this_thread();
    match start(Sink::Reply(reply)) {
        Ok(()) => waiter.recv(),
        Err(e) => {
            waiter.discard();
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
