// A single-producer ring has exactly one producer: its handle cannot be cloned.
use gyre_ringbuffer::{Disruptor, Stage};

fn main() {
    let mut graph = Disruptor::builder(8, || 0u64).single_producer().unwrap();
    graph.handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}));
    let (producer, _disruptor) = graph.start().unwrap();
    let _second = producer.clone();
}
