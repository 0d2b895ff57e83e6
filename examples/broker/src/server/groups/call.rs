//! Where one group answer goes: the asking connection's handle, its
//! sequence number, the request's correlation id and version, and the
//! throttle its request quota earned. Uses the server's sequencer (and its
//! response encoder).

use crate::protocol::throttle::ThrottleTime;
use crate::server::sequencer::{encoded, Frame, Sequenced};
use gyre_reactor::ChannelHandle;
use kafka_protocol::protocol::{Encodable, HeaderVersion};

/// Where one answer goes.
///
/// A call dropped unanswered (by a panic on the coordinator's thread, or
/// held by state that went away) closes its connection: the connection's
/// later answers wait behind this one, so leaving it unanswered would
/// stall the connection for good, while a client whose connection closes
/// reconnects and asks again.
#[derive(Debug)]
pub struct Call {
    pub(super) correlation_id: i32,
    pub(super) version: i16,
    /// `None` once answered.
    pub(super) handle: Option<ChannelHandle<Sequenced>>,
    pub(super) seq: u64,
    /// The throttle (ms) the answer carries at least (a request quota's).
    pub(super) throttle_ms: i32,
}

impl Call {
    pub(super) fn send<M: Encodable + HeaderVersion + ThrottleTime>(mut self, mut body: M) {
        body.throttle_at_least(self.throttle_ms);
        let frame = encoded(self.correlation_id, self.version, &body);
        self.answer(frame);
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
}

impl Drop for Call {
    fn drop(&mut self) {
        self.answer(Frame::Close);
    }
}
