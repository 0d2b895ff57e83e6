//! Responses in request order. Kafka clients match responses to requests
//! by position on the connection (kafka-python raises on a mismatch), but
//! the broker answers some requests on the loop and others later from the
//! log writer or the group coordinator. Each request that will be answered
//! gets the connection's next sequence number; the [`Sequencer`], the
//! outbound layer next to the socket, holds early answers until every
//! answer before them has gone out.

use crate::protocol::response;
use bytes::Bytes;
use gyre_reactor::{Outbound, OutboundContext, OutboundHandler};
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

/// A response on its way out.
#[derive(Debug)]
pub enum Frame {
    /// One encoded response.
    Bytes(Bytes),
    /// A response in pieces (a fetch response around file regions).
    Parts(Vec<Outbound>),
    /// No response: close the connection once the responses before this
    /// one are out (a request that cannot be answered).
    Close,
}

/// A response with its place in the connection's order.
#[derive(Debug)]
pub struct Sequenced {
    /// The request's sequence number on its connection.
    pub seq: u64,
    /// The response.
    pub frame: Frame,
}

/// The outbound layer that puts responses in order.
#[derive(Debug)]
pub struct Sequencer {
    next: u64,
    /// Answers that came early: index `i` holds sequence `next + 1 + i`.
    early: VecDeque<Option<Frame>>,
    /// How many responses have gone out, shared with the connection's
    /// inbound handler so it can bound the requests in flight.
    sent: Rc<Cell<u64>>,
    closed: bool,
}

impl Sequencer {
    /// A sequencer that counts what it sends in `sent`.
    pub fn new(sent: Rc<Cell<u64>>) -> Self {
        Sequencer {
            next: 0,
            early: VecDeque::new(),
            sent,
            closed: false,
        }
    }

    fn emit(&mut self, ctx: &mut impl OutboundContext<Self>, frame: Frame) {
        if self.closed {
            return;
        }
        match frame {
            Frame::Bytes(b) => ctx.write(Outbound::Bytes(b)),
            Frame::Parts(parts) => parts.into_iter().for_each(|p| ctx.write(p)),
            Frame::Close => {
                self.closed = true;
                ctx.flush();
                ctx.close();
            }
        }
        self.next += 1;
        self.sent.set(self.next);
    }
}

impl OutboundHandler for Sequencer {
    type Write = Sequenced;
    type Pass = Outbound;

    fn write(&mut self, ctx: &mut impl OutboundContext<Self>, msg: Sequenced) {
        let Some(ahead) = msg.seq.checked_sub(self.next) else {
            debug_assert!(false, "response {} answered twice", msg.seq);
            return;
        };
        if ahead > 0 {
            let i = ahead as usize - 1;
            if self.early.len() <= i {
                self.early.resize_with(i + 1, || None);
            }
            self.early[i] = Some(msg.frame);
            return;
        }
        self.emit(ctx, msg.frame);
        // `early[0]` is now the new `next`: send the run that is ready, and
        // drop the slot of the first answer still out.
        while let Some(Some(frame)) = self.early.pop_front() {
            self.emit(ctx, frame);
        }
    }
}

/// `body` encoded, or a close if it cannot be (a broker bug, logged).
pub(crate) fn encoded<M: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    body: &M,
) -> Frame {
    match response::encode(correlation_id, version, body) {
        Ok(bytes) => Frame::Bytes(bytes),
        Err(e) => {
            tracing::error!(error = %e, "closing a connection: its response cannot be encoded");
            Frame::Close
        }
    }
}
