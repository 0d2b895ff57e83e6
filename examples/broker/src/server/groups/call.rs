//! Where one group answer goes: the asking connection's handle, its
//! sequence number and the request's correlation id and version. Uses the
//! server's sequencer (and its response encoder).

use crate::server::sequencer::{encoded, Sequenced};
use gyre_reactor::ChannelHandle;
use kafka_protocol::protocol::{Encodable, HeaderVersion};

/// Where one answer goes.
#[derive(Debug)]
pub struct Call {
    pub(super) correlation_id: i32,
    pub(super) version: i16,
    pub(super) handle: ChannelHandle<Sequenced>,
    pub(super) seq: u64,
}

impl Call {
    pub(super) fn send<M: Encodable + HeaderVersion>(self, body: &M) {
        let frame = encoded(self.correlation_id, self.version, body);
        // A closed connection has nobody left to answer.
        let _ = self.handle.write_and_flush(Sequenced {
            seq: self.seq,
            frame,
        });
    }
}
