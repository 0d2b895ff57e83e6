//! Where one group answer goes: the asking connection's handle, its
//! sequence number, the request's correlation id and version, and the
//! throttle its request quota earned. Uses the server's sequencer (and its
//! response encoder).

use crate::protocol::throttle::ThrottleTime;
use crate::server::sequencer::{encoded, Frame, Sequenced};
use gyre_reactor::ChannelHandle;
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use std::cell::Cell;

/// Where one answer goes.
///
/// A call dropped unanswered (held by state that went away, or taken
/// from state to be answered when a panic struck) closes its connection:
/// the connection's later answers wait behind this one, so leaving it
/// unanswered would stall the connection for good, while a client whose
/// connection closes reconnects and asks again. The one exception is the
/// call of the request a panic struck in the middle of: see `isolated`.
#[derive(Debug)]
pub struct Call {
    pub(super) correlation_id: i32,
    pub(super) version: i16,
    /// `None` once answered.
    pub(super) handle: Option<ChannelHandle<Sequenced>>,
    pub(super) seq: u64,
    /// The throttle (ms) the answer carries at least (a request quota's).
    pub(super) throttle_ms: i32,
    /// The coordinator's number for the request this answers (from 1).
    pub(super) request_no: u64,
}

thread_local! {
    /// The number of the request this thread is handling inside
    /// [`isolated`] (0: none), and whether a panic dropped its call
    /// unanswered.
    static IN_HAND: Cell<(u64, bool)> = const { Cell::new((0, false)) };
}

/// Runs `handle`, which handles request `no` and catches its own panic.
/// Also says whether that panic dropped request `no`'s call unanswered:
/// if so, the call did not close its connection, and the caller answers
/// it instead (an error, in the request's shape), as Kafka answers a
/// request whose handler threw. A call the panic did not drop is still
/// held by state, which answers it; a call already answered needs
/// nothing more.
pub(super) fn isolated<T>(no: u64, handle: impl FnOnce() -> T) -> (T, bool) {
    IN_HAND.with(|h| h.set((no, false)));
    let handled = handle();
    let (_, dropped) = IN_HAND.with(|h| h.replace((0, false)));
    (handled, dropped)
}

impl Call {
    pub(super) fn send<M: Encodable + HeaderVersion + ThrottleTime>(mut self, mut body: M) {
        body.throttle_at_least(self.throttle_ms);
        let frame = encoded(self.correlation_id, self.version, &body);
        self.answer(frame);
    }

    /// Leaves the answer to whoever the request was handed on to (the
    /// log writer, through the connection's own responder, in the same
    /// place in the order): dropped, the call then neither answers nor
    /// closes the connection.
    pub(super) fn handed_on(mut self) {
        self.handle = None;
    }

    fn answer(&mut self, frame: Frame) {
        if let Some(handle) = self.handle.take() {
            // A closed connection has nobody left to answer.
            let _ = handle.write_and_flush(Sequenced {
                seq: self.seq,
                frame,
            });
        }
    }

    /// Whether this is the call of the request in hand, dropped by a
    /// panic: its answer is left to [`isolated`]'s caller.
    fn left_to_the_handler(&self) -> bool {
        if !std::thread::panicking() {
            return false;
        }
        IN_HAND.with(|h| match h.get() {
            (no, _) if no != 0 && no == self.request_no => {
                h.set((no, true));
                true
            }
            _ => false,
        })
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.handle.is_some() && self.left_to_the_handler() {
            return;
        }
        self.answer(Frame::Close);
    }
}
