// Nothing can be added after the owner stage: it would read events the
// owner may be changing.
use gyre_ringbuffer::{Disruptor, Stage};

fn main() {
    let graph = Disruptor::builder(8, String::new).single_producer().unwrap();
    let mut owned = graph.then_owner(Stage::owner(|e: &mut String, _: i64, _: bool| e.clear()));
    owned.handle_events_with(Stage::new(|_: &String, _: i64, _: bool| {}));
}
