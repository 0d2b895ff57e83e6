// The owner may move out of the slot, but cannot keep the slot itself past
// `on_event`: the ring reuses it.
use gyre_ringbuffer::{Disruptor, OwningHandler, Stage};

struct Keeper<'a> {
    slot: Option<&'a mut String>,
}

impl<'a> OwningHandler<String> for Keeper<'a> {
    fn on_event(&mut self, event: &mut String, _sequence: i64, _end_of_batch: bool) {
        self.slot = Some(event);
    }
}

fn main() {
    let graph = Disruptor::builder(8, String::new).single_producer().unwrap();
    let _ = graph.then_owner(Stage::owner(Keeper { slot: None }));
}
