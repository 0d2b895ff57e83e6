// A stage that owns events cannot be added where others may read the same
// event at once: only `Graph::then_owner` takes it.
use gyre_ringbuffer::{Disruptor, Stage};

fn main() {
    let mut graph = Disruptor::builder(8, String::new).single_producer().unwrap();
    graph.handle_events_with(Stage::owner(|e: &mut String, _: i64, _: bool| e.clear()));
}
