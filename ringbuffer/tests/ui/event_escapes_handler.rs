// A handler cannot keep the event it was lent past `on_event`.
use gyre_ringbuffer::{Disruptor, EventHandler, Stage};

struct Keeper<'a> {
    last: Option<&'a u64>,
}

impl<'a> EventHandler<u64> for Keeper<'a> {
    fn on_event(&mut self, event: &u64, _sequence: i64, _end_of_batch: bool) {
        self.last = Some(event);
    }
}

fn main() {
    let mut graph = Disruptor::builder(8, || 0u64).single_producer().unwrap();
    graph.handle_events_with(Stage::new(Keeper { last: None }));
}
