//! Where a call's answer goes ([`Sink`]) and what it is ([`Answer`]), and
//! how a blocking call waits for its own ([`wait_for`], [`wait_beside`]).
//! Uses the consumer's error and reply slot, and the reactor's wait beside
//! a socket; the pending-call table above it hands each call's sink its
//! answer.

use super::error::RpcError;
pub(crate) use super::reply::Answer;
use super::reply::Reply;
use gyre_reactor::promise::Promise;
use gyre_reactor::{ChannelHandle, InputWait};
use std::time::Duration;

/// How long a caller woken by its connection's input watches for its
/// answer before it sleeps the usual way. The loop, woken by the same
/// input, must read, decode and settle the call: 5-20 µs on the VMs we
/// measure on. Input that turns out to be someone else's costs the caller
/// this much watching (it yields its core meanwhile), once.
const WATCH: Duration = Duration::from_micros(50);

/// How far past its deadline a caller sleeping beside the socket gives
/// up on it and sleeps on its reply slot alone (the loop answers a timed
/// out call with `Timeout` and rings, so this is a safety margin only).
const BESIDE_SLACK: Duration = Duration::from_secs(1);

/// Where a call's answer goes.
pub(crate) enum Sink {
    /// To the one future waiting for it (its slot comes from the
    /// consumer's pool, so an asynchronous call allocates no channel).
    One(Promise<Answer>),
    /// To a blocking caller, on its thread's reusable reply channel.
    Reply(Reply),
    /// To a caller waiting on several calls at once (forking, broadcast),
    /// tagged with the call's index among them.
    Many {
        tx: crossbeam_channel::Sender<(usize, Answer)>,
        index: usize,
    },
}

impl Sink {
    pub(crate) fn send(self, answer: Answer) {
        // A caller that stopped waiting has nobody to tell.
        match self {
            Sink::One(promise) => promise.complete(answer),
            Sink::Reply(reply) => reply.send(answer),
            Sink::Many { tx, index } => drop(tx.send((index, answer))),
        }
    }
}

/// Runs `start` with a sink for one call and waits for its answer on this
/// thread's reply slot. If `start` fails, its sink has been dropped (and
/// has answered `Closed`): that answer is discarded and `start`'s error
/// returned. (Calls wait with [`wait_beside`]; tests use this.)
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

/// [`wait_for`], for a call that `start` may send from this thread on
/// `handle` with nothing else in flight (it returns `true` if it did):
/// the next input on the socket is then most likely the answer, so the
/// thread sleeps beside the socket
/// ([`ChannelHandle::wait_for_input`]) and, woken by input, watches for
/// the answer for up to [`WATCH`] before it sleeps on its reply slot. The
/// kernel wakes it as it wakes the loop, in parallel, instead of the loop
/// waking it after its own wake-up, read and decode.
pub(crate) fn wait_beside<W>(
    handle: &ChannelHandle<W>,
    timeout: Duration,
    start: impl FnOnce(Sink) -> Result<bool, RpcError>,
) -> Answer {
    let (reply, waiter) = Reply::for_this_thread();
    match start(Sink::Reply(reply)) {
        Ok(alone) => {
            if let (true, Some(alarm)) = (alone, waiter.alarm()) {
                let ready = || waiter.is_ready();
                if handle.wait_for_input(alarm, ready, timeout + BESIDE_SLACK) == InputWait::Input {
                    waiter.watch(WATCH);
                }
            }
            waiter.recv()
        }
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
