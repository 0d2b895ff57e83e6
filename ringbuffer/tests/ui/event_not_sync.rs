// An event type that is not `Sync` (a `Cell`) cannot be shared by stages
// reading it from several threads at once.
use gyre_ringbuffer::Disruptor;
use std::cell::Cell;

fn main() {
    let _graph = Disruptor::builder(8, || Cell::new(0u64)).multi_producer();
}
