// The slot lent to a publish closure cannot be kept after the call.
use gyre_ringbuffer::{Disruptor, Stage};

fn main() {
    let mut graph = Disruptor::builder(8, || 0u64).single_producer().unwrap();
    graph.handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}));
    let (mut producer, _disruptor) = graph.start().unwrap();
    let mut kept: Option<&mut u64> = None;
    producer.publish(|slot| kept = Some(slot)).unwrap();
    *kept.unwrap() = 1;
}
