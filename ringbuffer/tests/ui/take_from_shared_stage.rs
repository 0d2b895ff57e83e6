// A stage that shares the event (here with the owner after it) is lent it
// immutably: it cannot move the message out.
use gyre_ringbuffer::{Disruptor, Stage};

fn main() {
    let mut graph = Disruptor::builder(8, String::new).single_producer().unwrap();
    graph.handle_events_with(Stage::new(|e: &String, _: i64, _: bool| {
        let _mine: String = std::mem::take(e);
    }));
}
