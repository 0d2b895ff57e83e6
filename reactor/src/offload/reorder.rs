//! The offload layer's outbound half: answers coming back from business
//! threads become the answer alone, in the order the handlers sent them or
//! (with [`Order::Arrival`]) in the order their requests arrived, held back
//! until the answers before them are in. Each answer also ends a request's
//! flight, which may let reading resume. Uses the job's `Answer`, the
//! arrival-order sequencer, the flow and the handler traits; runs on the
//! loop's thread.

use super::arrival::ArrivalOrder;
use super::flow::{Flow, Pause};
use super::job::Answer;
use crate::handler::{OutboundContext, OutboundHandler};
use std::rc::Rc;

/// In what order a connection's answers reach its socket.
///
/// ```
/// # use bytes::Bytes;
/// # use gyre_reactor::{Job, OffloadStage, Order};
/// # use gyre_ringbuffer::{Disruptor, Stage};
/// # let mut graph = Disruptor::builder(8, Job::<Bytes, Bytes>::default).multi_producer()?;
/// # graph.handle_events_with(Stage::new(|_: &Job<Bytes, Bytes>, _: i64, _: bool| {}));
/// # let (producer, _disruptor) = graph.start()?;
/// // A pipelined protocol without request ids: answers in request order.
/// let stage = OffloadStage::new(producer).order(Order::Arrival);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// As the business handlers send them (the default): an answer never
    /// waits for another.
    #[default]
    Completion,
    /// In the order the requests arrived, as protocols without request ids
    /// need (HTTP/1.1 pipelining, Redis, Kafka): an early answer waits for
    /// the ones before it.
    Arrival,
}

/// Puts answers in order and ends their requests' flight. The layer
/// [`Pipeline::offload`](crate::Pipeline::offload) places before the
/// [`Offload`](crate::Offload) layer; it appears in a pipeline's type and
/// is never made by hand.
pub struct Reorder<W> {
    order: Order,
    flow: Rc<Flow>,
    /// Early answers, held (arrival order only).
    arrival: ArrivalOrder<W>,
}

impl<W> Reorder<W> {
    pub(crate) fn new(order: Order, flow: Rc<Flow>) -> Self {
        Reorder {
            order,
            flow,
            arrival: ArrivalOrder::default(),
        }
    }
}

impl<W: 'static> OutboundHandler for Reorder<W> {
    type Write = Answer<W>;
    type Pass = W;

    fn write(&mut self, ctx: &mut impl OutboundContext<Self>, answer: Answer<W>) {
        self.flow.answered();
        match self.order {
            Order::Completion => {
                if let Some(body) = answer.body {
                    ctx.write(body);
                }
            }
            Order::Arrival => {
                self.arrival
                    .take(answer.seq, answer.body, |body| ctx.write(body));
            }
        }
        // Held requests are the offload layer's to publish (on its retry
        // timer); with none held, this answer may let reading go on.
        if self.flow.is_paused(Pause::InFlight)
            && !self.flow.is_paused(Pause::Held)
            && !self.flow.at_limit()
            && self.flow.resume(Pause::InFlight)
        {
            ctx.set_auto_read(true);
        }
    }
}
